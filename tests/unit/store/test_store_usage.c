/*
 * store, usage ledger: rows inserted in batches and the totals `imagesd usage` prints, grouped
 * by nothing, key, model and UTC day, with the since filter; errors and images counted the
 * documented way; the keys' last use.
 */
#include "support/test.h"
#include "support/usagedb.h"

#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2023-11-14 00:00:00 UTC in ms */
#define DAY0 1699920000000LL
#define HOUR 3600000LL
#define DAY  (24 * HOUR)

static struct isd_usage_row row_of(int64_t time_ms, const char *key, const char *model, int status,
                                   int n, long in_text, long in_image, long out, uint64_t bytes,
                                   double ms)
{
    static int seq;
    struct isd_usage_row r;
    memset(&r, 0, sizeof r);
    r.time_ms = time_ms;
    snprintf(r.request_id, sizeof r.request_id, "req_%d", ++seq);
    snprintf(r.key_id, sizeof r.key_id, "%s", key);
    r.endpoint = "generations";
    snprintf(r.model, sizeof r.model, "%s", model);
    r.n = n;
    snprintf(r.size, sizeof r.size, "1024x1024");
    r.quality = "low";
    r.output_format = "png";
    r.status = status;
    r.error_code = status >= 400 ? "invalid_value" : NULL;
    r.input_text_tokens = in_text;
    r.input_image_tokens = in_image;
    r.output_tokens = out;
    r.bytes_out = bytes;
    r.ms_total = ms;
    return r;
}

static void expect_total(const struct isd_usage_total *t, const char *group, long requests,
                         long errors, long images, long in, long out, uint64_t bytes, double ms)
{
    assert_string_equal(t->group, group);
    assert_int_equal(t->requests, requests);
    assert_int_equal(t->errors, errors);
    assert_int_equal(t->images, images);
    assert_int_equal(t->input_tokens, in);
    assert_int_equal(t->output_tokens, out);
    assert_int_equal(t->bytes_out, bytes);
    assert_float_equal(t->ms_total, ms, 1e-9);
}

#define KA "key_00000000000000aa"
#define KB "key_00000000000000bb"

/* Eight rows over two UTC days, two keys and no key, two models and none. */
static void insert_sample(struct isd_store *st)
{
    struct isd_usage_row rows[] = {
        /* day 0 */
        row_of(DAY0 + 1 * HOUR, KA, "gpt-image-1", 200, 2, 10, 0, 100, 5000, 10.5),
        row_of(DAY0 + 2 * HOUR, KA, "gpt-image-1", 400, 3, 7, 0, 0, 300, 1.25),
        row_of(DAY0 + 3 * HOUR, KB, "dall-e-2", 200, 1, 5, 20, 50, 6000000000ULL, 100.0),
        row_of(DAY0 + 24 * HOUR - 1, "", "", 401, 1, 0, 0, 0, 200, 0.5),
        /* day 1 */
        row_of(DAY0 + DAY, KA, "dall-e-2", 200, 4, 1, 2, 3, 400, 2.0),
        row_of(DAY0 + DAY + 5 * HOUR, KB, "gpt-image-1", 500, 2, 8, 8, 0, 100, 3.0),
        row_of(DAY0 + DAY + 6 * HOUR, "", "gpt-image-1", 200, 1, 4, 0, 9, 10, 4.0),
        row_of(DAY0 + DAY + 7 * HOUR, KB, "gpt-image-1", 399, 5, 0, 0, 1, 1, 0.25),
    };
    /* in two batches */
    isd_test_usage_insert(st, rows, 3);
    isd_test_usage_insert(st, rows + 3, sizeof rows / sizeof rows[0] - 3);
}

/* The totals of insert_sample()'s rows in a fresh store, grouped `by`: `groups` of them. */
static struct isd_usage_total *sample_totals(enum isd_usage_group by, size_t groups)
{
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    insert_sample(st);
    size_t n;
    struct isd_usage_total *t = isd_test_usage_totals(st, 0, by, &n);
    isd_store_close(st);
    assert_int_equal(n, groups);
    return t;
}

/* An empty ledger: no groups by key, model or day; the total is one row of zeros. */
static void empty_ledger_has_no_rows(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    for (int by = ISD_USAGE_BY_KEY; by <= ISD_USAGE_BY_DAY; by++) {
        size_t n = 99;
        struct isd_usage_total *t = isd_test_usage_totals(st, 0, (enum isd_usage_group)by, &n);
        assert_int_equal(n, 0);
        free(t);
    }
    /* an empty insert is fine and adds nothing */
    struct isd_error err;
    assert_int_equal(isd_store_usage_insert(st, NULL, 0, &err), 0);
    size_t n;
    struct isd_usage_total *t = isd_test_usage_totals(st, 0, ISD_USAGE_ALL, &n);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].group, "all");
    assert_int_equal(t[0].requests, 0);
    assert_int_equal(t[0].errors, 0);
    assert_int_equal(t[0].images, 0);
    assert_int_equal(t[0].bytes_out, 0);
    assert_true(t[0].ms_total == 0.0 && t[0].megapixels == 0.0 && t[0].steps == 0);
    free(t);
    isd_store_close(st);
}

static void totals_all(void **state)
{
    (void)state;
    struct isd_usage_total *t = sample_totals(ISD_USAGE_ALL, 1);
    /* errors: 400, 401, 500 (399 is not); images: 2 + 1 + 4 + 1 + 5 from status < 400 */
    expect_total(&t[0], "all", 8, 3, 13, 10 + 7 + 25 + 3 + 16 + 4, 100 + 50 + 3 + 9 + 1,
                 5000 + 300 + 6000000000ULL + 200 + 400 + 100 + 10 + 1,
                 10.5 + 1.25 + 100.0 + 0.5 + 2.0 + 3.0 + 4.0 + 0.25);
    free(t);
}

static void totals_by_key(void **state)
{
    (void)state;
    struct isd_usage_total *t = sample_totals(ISD_USAGE_BY_KEY, 3);
    /* no key shows as "-" (sorted first) */
    expect_total(&t[0], "-", 2, 1, 1, 4, 9, 210, 4.5);
    expect_total(&t[1], KA, 3, 1, 6, 20, 103, 5700, 13.75);
    expect_total(&t[2], KB, 3, 1, 6, 41, 51, 6000000101ULL, 103.25);
    free(t);
}

static void totals_by_model(void **state)
{
    (void)state;
    struct isd_usage_total *t = sample_totals(ISD_USAGE_BY_MODEL, 3);
    expect_total(&t[0], "-", 1, 1, 0, 0, 0, 200, 0.5);
    expect_total(&t[1], "dall-e-2", 2, 0, 5, 28, 53, 6000000400ULL, 102.0);
    expect_total(&t[2], "gpt-image-1", 5, 2, 8, 37, 110, 5411, 19.0);
    free(t);
}

static void totals_by_utc_day(void **state)
{
    (void)state;
    struct isd_usage_total *t = sample_totals(ISD_USAGE_BY_DAY, 2);
    /* 23:59:59.999 belongs to the first day, 00:00:00.000 to the second */
    expect_total(&t[0], "2023-11-14", 4, 2, 3, 42, 150, 6000005500ULL, 112.25);
    expect_total(&t[1], "2023-11-15", 4, 1, 10, 23, 13, 511, 9.25);
    free(t);
}

static void since_filters_rows(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    insert_sample(st);
    size_t n;
    /* since is inclusive: the row at exactly DAY0 + DAY counts */
    struct isd_usage_total *t = isd_test_usage_totals(st, DAY0 + DAY, ISD_USAGE_ALL, &n);
    assert_int_equal(n, 1);
    expect_total(&t[0], "all", 4, 1, 10, 23, 13, 511, 9.25);
    free(t);
    t = isd_test_usage_totals(st, DAY0 + DAY + 1, ISD_USAGE_BY_KEY, &n);
    assert_int_equal(n, 2);
    expect_total(&t[0], "-", 1, 0, 1, 4, 9, 10, 4.0);
    expect_total(&t[1], KB, 2, 1, 5, 16, 1, 101, 3.25);
    free(t);
    t = isd_test_usage_totals(st, DAY0 + DAY - 1, ISD_USAGE_BY_DAY, &n);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].group, "2023-11-14");
    assert_int_equal(t[0].requests, 1);
    assert_int_equal(t[1].requests, 4);
    free(t);
    /* after the last row: nothing */
    t = isd_test_usage_totals(st, DAY0 + 2 * DAY, ISD_USAGE_BY_MODEL, &n);
    assert_int_equal(n, 0);
    free(t);
    isd_store_close(st);
}

static int64_t last_used_of(struct isd_store *st, const char *id)
{
    struct isd_key *keys;
    size_t n;
    struct isd_error err;
    assert_int_equal(isd_store_key_list(st, &keys, &n, &err), 0);
    int64_t t = -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].id, id) == 0)
            t = keys[i].last_used;
    free(keys);
    return t;
}

static void inserts_touch_keys_forward_only(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    struct isd_key a, b;
    char sa[ISD_KEY_SECRET_LEN + 1], sb[ISD_KEY_SECRET_LEN + 1];
    isd_test_key_create(st, "a", 0, 0, 0, false, &a, sa);
    isd_test_key_create(st, "b", 0, 0, 0, false, &b, sb);
    assert_int_equal(last_used_of(st, a.id), 0);
    struct isd_usage_row r = row_of(DAY0 + 1500, a.id, "m", 200, 1, 0, 0, 0, 0, 0);
    isd_test_usage_insert(st, &r, 1);
    assert_int_equal(last_used_of(st, a.id), (DAY0 + 1500) / 1000);
    assert_int_equal(last_used_of(st, b.id), 0);
    /* an older row (failed ones count as use too) does not move it back */
    r = row_of(DAY0 - HOUR, a.id, "m", 429, 1, 0, 0, 0, 0, 0);
    isd_test_usage_insert(st, &r, 1);
    assert_int_equal(last_used_of(st, a.id), (DAY0 + 1500) / 1000);
    /* in one batch: the newest wins whatever the order */
    struct isd_usage_row batch[3] = {
        row_of(DAY0 + 5 * HOUR, a.id, "m", 200, 1, 0, 0, 0, 0, 0),
        row_of(DAY0 + 9 * HOUR, b.id, "m", 500, 1, 0, 0, 0, 0, 0),
        row_of(DAY0 + 2 * HOUR, a.id, "m", 200, 1, 0, 0, 0, 0, 0),
    };
    isd_test_usage_insert(st, batch, 3);
    assert_int_equal(last_used_of(st, a.id), (DAY0 + 5 * HOUR) / 1000);
    assert_int_equal(last_used_of(st, b.id), (DAY0 + 9 * HOUR) / 1000);
    /* rows for an unknown key or none are recorded and touch nothing */
    struct isd_usage_row other[2] = {
        row_of(DAY0 + 10 * HOUR, "key_ffffffffffffffff", "m", 200, 1, 0, 0, 0, 0, 0),
        row_of(DAY0 + 10 * HOUR, "", "m", 200, 1, 0, 0, 0, 0, 0),
    };
    isd_test_usage_insert(st, other, 2);
    assert_int_equal(last_used_of(st, a.id), (DAY0 + 5 * HOUR) / 1000);
    size_t n;
    struct isd_usage_total *t = isd_test_usage_totals(st, 0, ISD_USAGE_ALL, &n);
    assert_int_equal(t[0].requests, 7);
    free(t);
    /* a revoked key's row is still recorded */
    struct isd_error err;
    assert_int_equal(isd_store_key_revoke(st, b.id, &err), 0);
    r = row_of(DAY0 + 11 * HOUR, b.id, "m", 401, 1, 0, 0, 0, 0, 0);
    isd_test_usage_insert(st, &r, 1);
    t = isd_test_usage_totals(st, 0, ISD_USAGE_BY_KEY, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].group, b.id) == 0)
            assert_int_equal(t[i].requests, 2);
    free(t);
    isd_store_close(st);
}

static void large_batch_and_reopen(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    enum { N = 2000 };
    struct isd_usage_row *rows = calloc(N, sizeof *rows);
    assert_non_null(rows);
    for (int i = 0; i < N; i++)
        rows[i] = row_of(DAY0 + i * 1000LL, i % 2 ? KA : KB, "m", i % 10 == 0 ? 400 : 200, 2, 1, 1,
                         1, 1, 0.5);
    isd_test_usage_insert(st, rows, N);
    free(rows);
    isd_store_close(st);
    st = isd_test_store_open(dir);
    size_t n;
    struct isd_usage_total *t = isd_test_usage_totals(st, 0, ISD_USAGE_ALL, &n);
    assert_int_equal(n, 1);
    expect_total(&t[0], "all", N, N / 10, 2 * (N - N / 10), 2 * N, N, N, 0.5 * N);
    free(t);
    isd_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_ledger_has_no_rows),
        cmocka_unit_test(totals_all),
        cmocka_unit_test(totals_by_key),
        cmocka_unit_test(totals_by_model),
        cmocka_unit_test(totals_by_utc_day),
        cmocka_unit_test(since_filters_rows),
        cmocka_unit_test(inserts_touch_keys_forward_only),
        cmocka_unit_test(large_batch_and_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
