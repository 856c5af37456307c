/*
 * ledger: a row is in usage.journal when isd_ledger_record() returns; the ledger's thread
 * imports it into the usage table within a bounded time, without a flush, in few batches
 * under a burst; isd_ledger_new() imports what a previous process left (a torn last record
 * skipped and logged); isd_ledger_free() imports the rest; values and strings are copied at
 * record; many threads; the disabled ledger writes nothing; append and import failures are
 * counted and logged, and the rows recorded meanwhile are imported once it works again.
 *
 * The usage table is read through a separate SQLite connection that never imports, so that
 * what it sees is what the ledger imported.
 */
#include "support/test.h"
#include "support/usagedb.h"

#include "ledger/ledger.h"
#include "log/log.h"
#include "store/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 5000 /* for what the ledger's thread does by itself */
#define POLL_US     2000 /* between two looks while waiting for it */

/* ---- helpers ---- */

static struct isd_ledger *new_ledger(struct isd_store *st, bool enabled)
{
    struct isd_error err;
    struct isd_ledger *l = NULL;
    if (isd_ledger_new(st, enabled, &l, &err) < 0)
        fail_msg("isd_ledger_new: %s", err.message);
    assert_non_null(l);
    return l;
}

static void record(struct isd_ledger *l, int i)
{
    struct isd_usage_row r;
    isd_test_usage_row(&r, i);
    assert_int_equal(isd_ledger_record(l, &r), 0);
}

static struct isd_ledger_stats stats_of(struct isd_ledger *l)
{
    struct isd_ledger_stats s;
    isd_ledger_stats(l, &s);
    return s;
}

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Polls until the table holds `want` rows; false after DEADLINE_MS. */
static bool wait_for_rows(const char *dir, long long want)
{
    long long end = mono_ms() + DEADLINE_MS;
    for (;;) {
        if (isd_test_usage_rows(dir) == want)
            return true;
        if (mono_ms() > end)
            return false;
        isd_test_pause_us(POLL_US);
    }
}

/* Polls until the ledger counted `want` imported rows; false after DEADLINE_MS. */
static bool wait_for_imported(struct isd_ledger *l, uint64_t want)
{
    long long end = mono_ms() + DEADLINE_MS;
    for (;;) {
        if (stats_of(l).imported == want)
            return true;
        if (mono_ms() > end)
            return false;
        isd_test_pause_us(POLL_US);
    }
}

static bool file_contains(const char *path, const char *needle)
{
    size_t n;
    unsigned char *p = isd_test_read_file(path, &n);
    bool found = p && memmem(p, n, needle, strlen(needle)) != NULL;
    free(p);
    return found;
}

/* Sends the log lines to <dir>/log.txt (before any ledger thread runs: isd_log_configure()
 * is not thread-safe); log_to_stderr() undoes it once the ledger is freed. */
static int log_to_file(const char *dir, char *path, size_t cap)
{
    snprintf(path, cap, "%s/log.txt", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    isd_log_configure(ISD_LOG_INFO, ISD_LOG_LOGFMT, fd);
    return fd;
}

static void log_to_stderr(int fd)
{
    isd_log_configure(ISD_LOG_INFO, ISD_LOG_LOGFMT, 2);
    close(fd);
}

/* ---- tests ---- */

/* When record() returns, the row is in usage.journal: in the file, and imported by another
 * connection (another process) even if the ledger's thread has not run yet. */
static void row_in_journal_when_record_returns(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_store *other = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    char journal[4400]; /* a copy: isd_test_journal_of()'s buffers are reused */
    snprintf(journal, sizeof journal, "%s", isd_test_journal_of(dir));
    for (int i = 0; i < 20; i++) {
        long before = isd_test_file_size(journal);
        record(l, i);
        assert_true(isd_test_file_size(journal) > before);
        char id[16];
        snprintf(id, sizeof id, "req_%08d", i);
        assert_true(file_contains(journal, id));
        /* whoever imports it, it is in the table after this import, once */
        struct isd_error err;
        assert_int_equal(isd_store_usage_import(other, false, NULL, &err), 0);
        assert_int_equal(isd_test_usage_rows(dir), i + 1);
    }
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, 20);
    assert_int_equal(s.failures, 0);
    isd_ledger_free(l);
    isd_test_expect_usage_range(dir, 0, 20);
    isd_store_close(other);
    isd_store_close(st);
}

/* The ledger's thread imports recorded rows by itself, in a bounded time, again and again. */
static void rows_reach_the_table_without_flush(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    for (int round = 0; round < 3; round++) {
        long long start = mono_ms();
        for (int i = 0; i < 10; i++)
            record(l, round * 10 + i);
        if (!wait_for_rows(dir, (round + 1) * 10))
            fail_msg("round %d: %lld of %d rows in the table after %d ms", round,
                     isd_test_usage_rows(dir), (round + 1) * 10, DEADLINE_MS);
        assert_true(wait_for_imported(l, (uint64_t)(round + 1) * 10));
        long long took = mono_ms() - start;
        print_message("# round %d imported after %lld ms\n", round, took);
        struct isd_ledger_stats s = stats_of(l);
        assert_true(s.batches >= (uint64_t)round + 1);
        assert_int_equal(s.import_failures, 0);
    }
    isd_test_expect_usage_range(dir, 0, 30);
    isd_ledger_free(l);
    isd_store_close(st);
}

/* Rows recorded in a burst go in together: far fewer imports than rows. */
static void burst_imported_in_few_batches(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    enum { N = 400 };
    for (int i = 0; i < N; i++)
        record(l, i);
    assert_true(wait_for_imported(l, N));
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, N);
    print_message("# %d rows in %llu batches\n", N, (unsigned long long)s.batches);
    assert_true(s.batches >= 1);
    assert_true(s.batches <= N / 10);
    assert_int_equal(isd_test_usage_rows(dir), N);
    isd_ledger_free(l);
    isd_store_close(st);
}

/* Rows that arrive one by one, a millisecond apart, wait for each other too: the thread lets
 * rows gather for ISD_LEDGER_IMPORT_INTERVAL_MS before it imports, not one import per row. */
static void paced_rows_share_a_batch(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    enum { N = 10 };
    long long start = mono_ms();
    for (int i = 0; i < N; i++) {
        record(l, i);
        isd_test_pause_us(1000);
    }
    long long took = mono_ms() - start;
    assert_true(wait_for_imported(l, N));
    struct isd_ledger_stats s = stats_of(l);
    print_message("# %d rows over %lld ms in %llu batches\n", N, took,
                  (unsigned long long)s.batches);
    /* 10 ms of rows fit in one 50 ms window; 3 leaves room for a slow machine */
    assert_true(s.batches >= 1 && s.batches <= 3);
    isd_ledger_free(l);
    isd_test_expect_usage_range(dir, 0, N);
    isd_store_close(st);
}

/* isd_ledger_flush() imports at once. */
static void flush_imports_now(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    struct isd_error err;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 7; i++)
            record(l, round * 7 + i);
        assert_int_equal(isd_ledger_flush(l, &err), 0);
        assert_int_equal(isd_test_usage_rows(dir), (round + 1) * 7);
    }
    assert_int_equal(isd_ledger_flush(l, &err), 0); /* nothing to do */
    isd_ledger_free(l);
    isd_test_expect_usage_range(dir, 0, 35);
    isd_store_close(st);
}

/* The imported rows carry the values recorded, strings included, though the caller reused
 * its buffers right after record(). */
static void rows_keep_their_values(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    for (int i = 0; i < 3; i++) {
        struct isd_usage_row row;
        isd_test_usage_row(&row, i);
        row.status = i == 2 ? 500 : 200;
        row.n = 2;
        row.input_text_tokens = 10;
        row.input_image_tokens = 5;
        row.output_tokens = 7;
        assert_int_equal(isd_ledger_record(l, &row), 0);
    }
    char endpoint[32] = "edits", quality[32] = "high", format[32] = "webp",
         code[64] = "moderation_blocked";
    struct isd_usage_row row;
    isd_test_usage_row(&row, 3);
    row.endpoint = endpoint;
    row.quality = quality;
    row.output_format = format;
    row.error_code = code;
    row.status = 400;
    assert_int_equal(isd_ledger_record(l, &row), 0);
    snprintf(endpoint, sizeof endpoint, "XXXXXXXX");
    snprintf(quality, sizeof quality, "XXXXXXXX");
    snprintf(format, sizeof format, "XXXXXXXX");
    snprintf(code, sizeof code, "XXXXXXXX");
    memset(&row, 'Y', sizeof row);
    assert_true(wait_for_rows(dir, 4));

    size_t n;
    struct isd_usage_total *t = isd_test_usage_totals(st, 0, ISD_USAGE_BY_MODEL, &n);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].group, "model-0");
    assert_int_equal(t[0].requests, 2);
    assert_int_equal(t[0].errors, 1);
    assert_int_equal(t[0].images, 2);
    assert_int_equal(t[0].input_tokens, 30);
    assert_int_equal(t[0].output_tokens, 14);
    assert_int_equal(t[0].bytes_out, 200);
    assert_float_equal(t[0].ms_total, 3.0, 1e-12);
    assert_string_equal(t[1].group, "model-1");
    assert_int_equal(t[1].requests, 2);
    assert_int_equal(t[1].errors, 1);
    assert_int_equal(t[1].images, 2);
    free(t);

    char got[256];
    isd_test_usage_column(dir, "req_00000003",
                          "endpoint || ',' || quality || ',' || output_format || ',' || "
                          "error_code || ',' || status || ',' || key_id || ',' || time_ms",
                          got, sizeof got);
    assert_string_equal(got, "edits,high,webp,moderation_blocked,400,key_0000000000000000,"
                             "1700000000003");
    isd_ledger_free(l);
    isd_store_close(st);
}

struct recorder {
    struct isd_ledger *l;
    int first, count;
    int failures;
};

static void *recorder_main(void *arg)
{
    struct recorder *r = arg;
    for (int i = r->first; i < r->first + r->count; i++) {
        struct isd_usage_row row;
        isd_test_usage_row(&row, i);
        if (isd_ledger_record(r->l, &row) != 0)
            r->failures++;
    }
    return NULL;
}

/* 4 threads record at once, while the ledger's thread imports: every row once. */
static void many_threads_record(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    enum { PER = 500, N = 4 * PER };
    pthread_t t[4];
    struct recorder r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct recorder){l, i * PER, PER, 0};
        assert_int_equal(pthread_create(&t[i], NULL, recorder_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(r[i].failures, 0);
    }
    struct isd_error err;
    assert_int_equal(isd_ledger_flush(l, &err), 0);
    assert_int_equal(isd_test_usage_rows(dir), N);
    /* the thread's last import may still be counting */
    assert_true(wait_for_imported(l, N));
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, N);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.import_failures, 0);
    assert_true(s.batches >= 1 && s.batches < s.rows);
    isd_ledger_free(l);
    isd_test_expect_usage_range(dir, 0, N);
    isd_store_close(st);
}

static void disabled_ledger_writes_nothing(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, false);
    assert_false(isd_ledger_enabled(l));
    for (int i = 0; i < 5; i++)
        record(l, i);
    struct isd_error err;
    assert_int_equal(isd_ledger_flush(l, &err), 0);
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, 0);
    assert_int_equal(s.imported, 0);
    assert_int_equal(s.batches, 0);
    assert_int_equal(s.failures, 0);
    isd_ledger_free(l);
    assert_int_equal(isd_test_file_size(isd_test_journal_of(dir)), -1);
    assert_int_equal(isd_test_usage_rows(dir), 0);
    isd_ledger_free(NULL);
    isd_store_close(st);
}

/* free() imports what is still in the journal: rows recorded and freed at once. */
static void free_imports_the_rest(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    enum { N = 300 };
    for (int round = 0; round < 3; round++) {
        struct isd_ledger *l = new_ledger(st, true);
        assert_true(isd_ledger_enabled(l));
        for (int i = 0; i < N; i++)
            record(l, round * N + i);
        isd_ledger_free(l);
        assert_int_equal(isd_test_usage_rows(dir), (round + 1) * N);
    }
    isd_test_expect_usage_range(dir, 0, 3 * N);
    isd_store_close(st);
}

/* What a previous process leaves: rows 0 .. count - 1 appended to the journal, not imported. */
static void previous_process_appends(const char *dir, int count)
{
    struct isd_store *previous = isd_test_store_open(dir);
    isd_test_usage_append_range(previous, 0, count);
    isd_store_close(previous);
}

/* A previous process appended rows and died before importing them: the next ledger imports
 * them when it starts, before any row of its own. */
static void new_imports_what_a_previous_process_left(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    previous_process_appends(dir, 20);
    assert_int_equal(isd_test_usage_rows(dir), 0);

    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    /* already there: no waiting */
    assert_int_equal(isd_test_usage_rows(dir), 20);
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.imported, 20);
    assert_int_equal(s.batches, 1);
    assert_int_equal(s.rows, 0);
    assert_int_equal(s.damaged_bytes, 0);
    record(l, 20);
    isd_ledger_free(l);
    isd_test_expect_usage_range(dir, 0, 21);
    /* and a ledger started on an imported journal imports nothing again */
    l = new_ledger(st, true);
    assert_int_equal(stats_of(l).imported, 0);
    isd_ledger_free(l);
    isd_test_expect_usage_range(dir, 0, 21);
    isd_store_close(st);
}

/* ...and the previous process was killed in the middle of a write: the torn record is
 * skipped, counted and logged; the rows before it are imported, the rows after it too. */
static void new_skips_a_torn_leftover_and_logs_it(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    previous_process_appends(dir, 5);
    long size = isd_test_file_size(isd_test_journal_of(dir));
    assert_int_equal(truncate(isd_test_journal_of(dir), size - 10), 0);

    char log_path[4200];
    int log_fd = log_to_file(dir, log_path, sizeof log_path);
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.imported, 4);
    assert_true(s.damaged_bytes > 0 && s.damaged_bytes < (uint64_t)size / 4);
    assert_int_equal(isd_test_usage_rows(dir), 4);
    record(l, 5);
    record(l, 6);
    isd_ledger_free(l);
    log_to_stderr(log_fd);
    assert_true(file_contains(log_path, "ledger_journal_damaged"));
    assert_int_equal(isd_test_usage_rows(dir), 6);
    for (int i = 0; i < 7; i++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) = %d FROM usage WHERE request_id = "
                 "'req_%08d'",
                 i == 4 ? 0 : 1, i);
        if (isd_test_sql_int(dir, sql) != 1)
            fail_msg("req_%08d: wrong count", i);
    }
    isd_store_close(st);
}

/* A row that cannot be appended: record() returns -1, the failure is counted and logged as
 * ledger_write_failed, and the ledger records again once the journal can be written. */
static void append_failure_counted_and_logged(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    char log_path[4200];
    int log_fd = log_to_file(dir, log_path, sizeof log_path);
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    /* a directory where the journal should be: it cannot be opened for writing */
    char journal[4400]; /* a copy: isd_test_journal_of()'s buffers are reused */
    snprintf(journal, sizeof journal, "%s", isd_test_journal_of(dir));
    assert_int_equal(mkdir(journal, 0700), 0);
    for (int i = 0; i < 3; i++) {
        struct isd_usage_row r;
        isd_test_usage_row(&r, i);
        assert_int_equal(isd_ledger_record(l, &r), -1);
    }
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.failures, 3);
    assert_int_equal(s.rows, 0);
    assert_true(file_contains(log_path, "ledger_write_failed"));
    assert_true(file_contains(log_path, "usage.journal"));
    assert_int_equal(rmdir(journal), 0);
    record(l, 3);
    assert_true(wait_for_rows(dir, 1));
    s = stats_of(l);
    assert_int_equal(s.failures, 3);
    assert_int_equal(s.rows, 1);
    isd_ledger_free(l);
    log_to_stderr(log_fd);
    isd_test_expect_usage_range(dir, 3, 1);
    isd_store_close(st);
}

#define USAGE_TABLE                                                                                \
    "CREATE TABLE usage (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, request_id TEXT "       \
    "NOT NULL, key_id TEXT, endpoint TEXT NOT NULL, model TEXT, n INTEGER NOT NULL DEFAULT "       \
    "0, size TEXT, quality TEXT, output_format TEXT, partial_images INTEGER NOT NULL DEFAULT "     \
    "0, status INTEGER NOT NULL, error_code TEXT, input_text_tokens INTEGER NOT NULL DEFAULT "     \
    "0, input_image_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL "            \
    "DEFAULT 0, bytes_out INTEGER NOT NULL DEFAULT 0, ms_queue REAL NOT NULL DEFAULT 0, "          \
    "ms_render REAL NOT NULL DEFAULT 0, ms_encode REAL NOT NULL DEFAULT 0, ms_total REAL NOT "     \
    "NULL DEFAULT 0, steps INTEGER NOT NULL DEFAULT 0, megapixels REAL NOT NULL DEFAULT 0)"

/* An import that fails (here the usage table is gone) is counted and logged; record() still
 * succeeds, the rows wait in the journal, and the next import after the table is back brings
 * in each of them once. */
static void import_failure_counted_and_retried(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    char log_path[4200];
    int log_fd = log_to_file(dir, log_path, sizeof log_path);
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_ledger *l = new_ledger(st, true);
    record(l, 0);
    assert_true(wait_for_imported(l, 1));
    isd_test_sql_exec(dir, "DROP TABLE usage");
    for (int i = 1; i <= 3; i++)
        record(l, i);
    long long end = mono_ms() + DEADLINE_MS;
    while (stats_of(l).import_failures == 0 && mono_ms() < end)
        isd_test_pause_us(POLL_US);
    struct isd_ledger_stats s = stats_of(l);
    assert_true(s.import_failures >= 1);
    assert_int_equal(s.rows, 4);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.imported, 1);
    struct isd_error err;
    assert_true(isd_ledger_flush(l, &err) < 0);
    assert_true(stats_of(l).import_failures >= 2);
    isd_test_sql_exec(dir, USAGE_TABLE);
    record(l, 4);
    assert_true(wait_for_rows(dir, 4));
    assert_true(wait_for_imported(l, 5));
    isd_ledger_free(l);
    log_to_stderr(log_fd);
    assert_true(file_contains(log_path, "ledger_import_failed"));
    isd_test_expect_usage_range(dir, 1, 4);
    isd_store_close(st);
}

/* A journal that cannot be read when the ledger starts: isd_ledger_new() fails with the
 * reason (the server does not start with rows it cannot import). */
static void new_fails_on_an_unreadable_journal(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    assert_int_equal(mkdir(isd_test_journal_of(dir), 0700), 0);
    struct isd_ledger *l = NULL;
    struct isd_error err;
    memset(&err, 0, sizeof err);
    char log_path[4200];
    int log_fd = log_to_file(dir, log_path, sizeof log_path);
    int rc = isd_ledger_new(st, true, &l, &err);
    log_to_stderr(log_fd);
    assert_true(rc < 0);
    assert_null(l);
    assert_non_null(strstr(err.message, "usage.journal"));
    /* disabled, it does not look */
    l = new_ledger(st, false);
    isd_ledger_free(l);
    isd_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(row_in_journal_when_record_returns),
        cmocka_unit_test(rows_reach_the_table_without_flush),
        cmocka_unit_test(burst_imported_in_few_batches),
        cmocka_unit_test(paced_rows_share_a_batch),
        cmocka_unit_test(flush_imports_now),
        cmocka_unit_test(rows_keep_their_values),
        cmocka_unit_test(many_threads_record),
        cmocka_unit_test(disabled_ledger_writes_nothing),
        cmocka_unit_test(free_imports_the_rest),
        cmocka_unit_test(new_imports_what_a_previous_process_left),
        cmocka_unit_test(new_skips_a_torn_leftover_and_logs_it),
        cmocka_unit_test(append_failure_counted_and_logged),
        cmocka_unit_test(import_failure_counted_and_retried),
        cmocka_unit_test(new_fails_on_an_unreadable_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
