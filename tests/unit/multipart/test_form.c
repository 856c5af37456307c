/* form collector: file count limit, per-part and total ceilings (flags, true sizes, exact
 * prefixes whatever the chunking), empty and repeated parts. */
#include "support/test.h"

#include "mp_fixtures.h"

#include <stdlib.h>
#include <string.h>

#define CT "multipart/form-data; boundary=openai-0sx3k1"

static void add_file(struct mp_body *b, const char *name, const char *filename, const char *data,
                     size_t n)
{
    mp_adds(b, "--openai-0sx3k1\r\nContent-Disposition: form-data; name=\"");
    mp_adds(b, name);
    mp_adds(b, "\"; filename=\"");
    mp_adds(b, filename);
    mp_adds(b, "\"\r\nContent-Type: image/png\r\n\r\n");
    mp_add(b, data, n);
    mp_adds(b, "\r\n");
}

static void add_text(struct mp_body *b, const char *name, const char *value)
{
    mp_adds(b, "--openai-0sx3k1\r\nContent-Disposition: form-data; name=\"");
    mp_adds(b, name);
    mp_adds(b, "\"\r\n\r\n");
    mp_adds(b, value);
    mp_adds(b, "\r\n");
}

static void close_body(struct mp_body *b)
{
    mp_adds(b, "--openai-0sx3k1--\r\n");
}

/* Bytes i % 251 so every prefix is distinguishable. */
static char *pattern(size_t n, int salt)
{
    char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((i + (size_t)salt) % 251);
    return p;
}

static void seventeenth_file_dropped(void **state)
{
    (void)state;
    struct mp_body b = {0};
    char *data = pattern(1000, 0);
    for (int i = 0; i < 17; i++) {
        char fn[32];
        snprintf(fn, sizeof fn, "f%d.png", i);
        add_file(&b, "image[]", fn, data, 100 + (size_t)i);
    }
    add_text(&b, "prompt", "otters");
    close_body(&b);
    const struct isd_form_limits lim = {16, 1 << 20, 1000, 8 << 20};
    for (size_t c = 0; c < MP_N_CHUNKINGS; c++) {
        struct mp_result r;
        assert_int_equal(mp_run(&r, CT, b.p, b.n, mp_chunkings[c], &lim), 0);
        assert_int_equal(r.form.n_fields, 18);
        assert_int_equal(r.form.n_files_seen, 17);
        size_t stored = 0;
        for (int i = 0; i < 17; i++) {
            const struct isd_form_field *f = &r.form.fields[i];
            char fn[32];
            snprintf(fn, sizeof fn, "f%d.png", i);
            assert_string_equal(f->filename, fn);
            assert_true(f->is_file);
            assert_int_equal(f->size, 100 + (size_t)i);
            assert_false(f->overflow);
            if (i < 16) {
                assert_false(f->dropped);
                assert_int_equal(f->value.len, 100 + (size_t)i);
                assert_memory_equal(f->value.data, data, f->value.len);
                stored += f->value.len;
            } else {
                assert_true(f->dropped);
                assert_int_equal(f->value.len, 0);
                assert_null(f->value.data);
                assert_string_equal(f->name, "image[]");
                assert_string_equal(f->content_type, "image/png");
            }
        }
        assert_string_equal(r.form.fields[17].value.data, "otters");
        stored += 6;
        assert_int_equal(r.form.total_stored, stored);
        assert_false(r.form.total_overflow);
        mp_done(&r);
    }
    free(data);
    free(b.p);
}

/* A file and a text part over their ceilings: flags, true sizes, and exactly the first
 * `ceiling` bytes stored in every chunking; the other parts are untouched. */
static void part_ceilings(void **state)
{
    (void)state;
    struct mp_body b = {0};
    char *big = pattern(5000, 3);
    add_file(&b, "image", "big.png", big, 5000);
    add_file(&b, "mask", "exact.png", big, 1000);
    add_text(&b, "prompt", "0123456789abcdef");
    add_text(&b, "size", "0123456789");
    close_body(&b);
    const struct isd_form_limits lim = {16, 1000, 10, 1 << 20};
    for (size_t c = 0; c < MP_N_CHUNKINGS; c++) {
        struct mp_result r;
        assert_int_equal(mp_run(&r, CT, b.p, b.n, mp_chunkings[c], &lim), 0);
        assert_int_equal(r.form.n_fields, 4);
        const struct isd_form_field *f = r.form.fields;
        assert_true(f[0].overflow);
        assert_int_equal(f[0].size, 5000);
        assert_int_equal(f[0].value.len, 1000);
        assert_memory_equal(f[0].value.data, big, 1000);
        assert_false(f[1].overflow); /* exactly at the ceiling */
        assert_int_equal(f[1].size, 1000);
        assert_memory_equal(f[1].value.data, big, 1000);
        assert_true(f[2].overflow);
        assert_int_equal(f[2].size, 16);
        assert_string_equal(f[2].value.data, "0123456789");
        assert_false(f[3].overflow);
        assert_string_equal(f[3].value.data, "0123456789");
        assert_false(r.form.total_overflow);
        assert_int_equal(r.form.total_stored, 2020);
        mp_done(&r);
    }
    free(big);
    free(b.p);
}

/* The total ceiling cuts the part that reaches it (prefix, overflow) and stores nothing of
 * the later parts; their true sizes are still known. */
static void total_ceiling(void **state)
{
    (void)state;
    struct mp_body b = {0};
    char *data = pattern(3000, 7);
    add_file(&b, "image[]", "a.png", data, 1200);
    add_file(&b, "image[]", "b.png", data + 1, 1200);
    add_text(&b, "prompt", "too late");
    add_text(&b, "empty", "");
    close_body(&b);
    const struct isd_form_limits lim = {16, 2000, 100, 2000};
    for (size_t c = 0; c < MP_N_CHUNKINGS; c++) {
        struct mp_result r;
        assert_int_equal(mp_run(&r, CT, b.p, b.n, mp_chunkings[c], &lim), 0);
        const struct isd_form_field *f = r.form.fields;
        assert_int_equal(r.form.n_fields, 4);
        assert_false(f[0].overflow);
        assert_int_equal(f[0].value.len, 1200);
        assert_true(f[1].overflow);
        assert_int_equal(f[1].size, 1200);
        assert_int_equal(f[1].value.len, 800);
        assert_memory_equal(f[1].value.data, data + 1, 800);
        assert_true(f[2].overflow);
        assert_int_equal(f[2].size, 8);
        assert_int_equal(f[2].value.len, 0);
        assert_string_equal(f[2].value.data, "");
        assert_false(f[3].overflow); /* nothing to store, nothing lost */
        assert_string_equal(f[3].value.data, "");
        assert_true(r.form.total_overflow);
        assert_int_equal(r.form.total_stored, 2000);
        mp_done(&r);
    }
    /* a part over its own ceiling while the total still has room is not a total overflow */
    const struct isd_form_limits lim2 = {16, 1000, 100, 2200};
    struct mp_result r;
    assert_int_equal(mp_run(&r, CT, b.p, b.n, MP_BYTES, &lim2), 0);
    assert_true(r.form.fields[0].overflow);
    assert_true(r.form.fields[1].overflow);
    assert_int_equal(r.form.total_stored, 2000 + 8);
    assert_false(r.form.total_overflow);
    mp_done(&r);
    free(data);
    free(b.p);
}

/* Zero ceilings everywhere: nothing stored, everything counted, nothing crashes. */
static void zero_limits(void **state)
{
    (void)state;
    struct mp_body b = {0};
    add_file(&b, "image", "a.png", "abc", 3);
    add_text(&b, "prompt", "x");
    add_text(&b, "n", "");
    close_body(&b);
    const struct isd_form_limits lim = {0, 0, 0, 0};
    struct mp_result r;
    assert_int_equal(mp_run(&r, CT, b.p, b.n, 5, &lim), 0);
    assert_int_equal(r.form.n_fields, 3);
    assert_true(r.form.fields[0].dropped);
    assert_int_equal(r.form.fields[0].size, 3);
    assert_true(r.form.fields[1].overflow);
    assert_int_equal(r.form.fields[1].size, 1);
    assert_string_equal(r.form.fields[1].value.data, "");
    assert_false(r.form.fields[2].overflow);
    assert_int_equal(r.form.n_files_seen, 1);
    assert_int_equal(r.form.total_stored, 0);
    assert_false(r.form.total_overflow);
    mp_done(&r);
    free(b.p);
}

/* Release after a failed parse frees what was collected (ASan checks for leaks), and a
 * released form can be released again. */
static void release_after_error(void **state)
{
    (void)state;
    struct mp_body b = {0};
    add_file(&b, "image", "a.png", "abc", 3);
    add_text(&b, "prompt", "x");
    mp_adds(&b, "--openai-0sx3k1\r\nContent-Disposition: form-data\r\n\r\n");
    struct mp_result r;
    assert_int_equal(mp_run(&r, CT, b.p, b.n, MP_BYTES, NULL), -ISD_E_BAD_BODY);
    assert_string_equal(r.err.message, "multipart body: part 3: no name in Content-Disposition");
    assert_int_equal(r.form.n_fields, 2);
    mp_done(&r);
    assert_null(r.form.fields);
    assert_int_equal(r.form.n_fields, 0);
    mp_done(&r);
    free(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seventeenth_file_dropped),
        cmocka_unit_test(part_ceilings),
        cmocka_unit_test(total_ceiling),
        cmocka_unit_test(zero_limits),
        cmocka_unit_test(release_after_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
