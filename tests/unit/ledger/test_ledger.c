/*
 * ledger: rows committed by the writer thread and done() called once per row, in order, only
 * when the row is visible to another connection; group commit; the disabled ledger; free
 * committing what is queued; a failing database. A "gate" row whose done() blocks holds the
 * writer so that rows can be queued behind it deterministically.
 *
 * done() runs on the writer thread, where cmocka's asserts must not be used: callbacks record
 * what they see and the test thread asserts afterwards.
 */
#include "support/test.h"

#include "ledger/ledger.h"
#include "log/log.h"
#include "store/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---- */

static struct isd_store *open_store(const char *dir)
{
    struct isd_error err;
    struct isd_store *st = isd_store_open(dir, &err);
    if (!st)
        fail_msg("isd_store_open(%s): %s", dir, err.message);
    return st;
}

static struct isd_ledger *new_ledger(struct isd_store *st, bool enabled)
{
    struct isd_error err;
    struct isd_ledger *l = NULL;
    assert_int_equal(isd_ledger_new(st, enabled, &l, &err), 0);
    assert_non_null(l);
    return l;
}

static void make_row(struct isd_usage_row *r, int i)
{
    memset(r, 0, sizeof *r);
    r->time_ms = 1700000000000LL + i;
    snprintf(r->request_id, sizeof r->request_id, "req_%08d", i);
    snprintf(r->key_id, sizeof r->key_id, "key_%016x", i % 3);
    r->endpoint = "generations";
    snprintf(r->model, sizeof r->model, "model-%d", i % 2);
    r->n = 1;
    snprintf(r->size, sizeof r->size, "64x64");
    r->status = 200;
    r->bytes_out = 100;
    r->ms_total = 1.5;
}

/* Rows in the usage table as another connection sees them now; -1 on error. */
static long committed_rows(struct isd_store *st)
{
    struct isd_usage_total *t;
    size_t n;
    struct isd_error err;
    if (isd_store_usage_totals(st, 0, ISD_USAGE_ALL, &t, &n, &err) < 0)
        return -1;
    long rows = n ? t[0].requests : 0;
    free(t);
    return rows;
}

/* Counts done() calls; the test thread waits on it. */
struct tally {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    long calls;
};

static void tally_init(struct tally *t)
{
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->changed, NULL);
    t->calls = 0;
}

static void tally_release(struct tally *t)
{
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->lock);
}

/* Counts a call and stores its rank in *seq, under the lock the waiter reads through. */
static void tally_add(struct tally *t, long *seq)
{
    pthread_mutex_lock(&t->lock);
    *seq = t->calls++;
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
}

static void tally_wait(struct tally *t, long calls)
{
    pthread_mutex_lock(&t->lock);
    while (t->calls < calls)
        pthread_cond_wait(&t->changed, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

static long tally_get(struct tally *t)
{
    pthread_mutex_lock(&t->lock);
    long n = t->calls;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* One row's callback context. */
struct probe {
    struct tally *tally;
    struct isd_store *other; /* second connection to check visibility from, or NULL */
    int calls;               /* done() calls for this row */
    long seq;                /* order of the call among all rows */
    long visible;            /* rows the other connection counted from inside done() */
    pthread_t thread;        /* where done() ran */
};

static void probe_done(void *ctx)
{
    struct probe *p = ctx;
    p->calls++;
    p->thread = pthread_self();
    if (p->other)
        p->visible = committed_rows(p->other);
    tally_add(p->tally, &p->seq); /* last: the test thread may read p once counted */
}

/* A row whose done() blocks the writer thread until opened. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool entered, open;
};

static void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->changed, NULL);
    g->entered = g->open = false;
}

static void gate_release(struct gate *g)
{
    pthread_cond_destroy(&g->changed);
    pthread_mutex_destroy(&g->lock);
}

static void gate_done(void *ctx)
{
    struct gate *g = ctx;
    pthread_mutex_lock(&g->lock);
    g->entered = true;
    pthread_cond_broadcast(&g->changed);
    while (!g->open)
        pthread_cond_wait(&g->changed, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/* Records a row whose done() holds the writer, and returns once the writer is held. */
static void gate_close(struct gate *g, struct isd_ledger *l)
{
    struct isd_usage_row row;
    make_row(&row, 999999);
    assert_int_equal(isd_ledger_record(l, &row, gate_done, g), 0);
    pthread_mutex_lock(&g->lock);
    while (!g->entered)
        pthread_cond_wait(&g->changed, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
}

static struct isd_ledger_stats stats_of(struct isd_ledger *l)
{
    struct isd_ledger_stats s;
    isd_ledger_stats(l, &s);
    return s;
}

/* ---- tests ---- */

static void rows_done_in_order_after_commit(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    struct isd_store *other = open_store(dir);
    struct isd_ledger *l = new_ledger(st, true);
    struct tally tally;
    tally_init(&tally);
    enum { N = 40 };
    struct probe p[N];
    memset(p, 0, sizeof p);
    for (int i = 0; i < N; i++) {
        p[i].tally = &tally;
        p[i].other = other;
        struct isd_usage_row row;
        make_row(&row, i);
        assert_int_equal(isd_ledger_record(l, &row, probe_done, &p[i]), 0);
    }
    tally_wait(&tally, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(p[i].calls, 1);
        assert_int_equal(p[i].seq, i);
        /* the other connection already counted this row and every one before it */
        if (p[i].visible < i + 1)
            fail_msg("row %d: done() called when the other connection saw %ld rows", i,
                     p[i].visible);
        assert_false(pthread_equal(p[i].thread, pthread_self()));
    }
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, N);
    assert_int_equal(s.failures, 0);
    assert_true(s.batches >= 1 && s.batches <= s.rows);
    isd_ledger_free(l);
    /* still exactly once each after free */
    for (int i = 0; i < N; i++)
        assert_int_equal(p[i].calls, 1);
    assert_int_equal(committed_rows(other), N);
    tally_release(&tally);
    isd_store_close(other);
    isd_store_close(st);
}

/* The committed rows carry the values recorded. */
static void rows_keep_their_values(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    struct isd_ledger *l = new_ledger(st, true);
    struct tally tally;
    tally_init(&tally);
    struct probe p[3];
    memset(p, 0, sizeof p);
    for (int i = 0; i < 3; i++) {
        struct isd_usage_row row;
        make_row(&row, i);
        row.status = i == 2 ? 500 : 200;
        row.n = 2;
        row.input_text_tokens = 10;
        row.input_image_tokens = 5;
        row.output_tokens = 7;
        p[i].tally = &tally;
        assert_int_equal(isd_ledger_record(l, &row, probe_done, &p[i]), 0);
    }
    tally_wait(&tally, 3);
    struct isd_usage_total *t;
    size_t n;
    struct isd_error err;
    assert_int_equal(isd_store_usage_totals(st, 0, ISD_USAGE_BY_MODEL, &t, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].group, "model-0");
    assert_int_equal(t[0].requests, 2);
    assert_int_equal(t[0].errors, 1);
    assert_int_equal(t[0].images, 2);
    assert_int_equal(t[0].input_tokens, 30);
    assert_int_equal(t[0].output_tokens, 14);
    assert_int_equal(t[0].bytes_out, 200);
    assert_string_equal(t[1].group, "model-1");
    assert_int_equal(t[1].requests, 1);
    assert_int_equal(t[1].images, 2);
    free(t);
    isd_ledger_free(l);
    tally_release(&tally);
    isd_store_close(st);
}

struct recorder {
    struct isd_ledger *l;
    struct tally *tally;
    struct probe *probes;
    int first, count;
};

static void *recorder_main(void *arg)
{
    struct recorder *r = arg;
    for (int i = r->first; i < r->first + r->count; i++) {
        struct isd_usage_row row;
        make_row(&row, i);
        r->probes[i].tally = r->tally;
        isd_ledger_record(r->l, &row, probe_done, &r->probes[i]);
    }
    return NULL;
}

/* Records `per_thread` rows from each of 4 threads; returns when they are all queued. */
static void record_from_threads(struct isd_ledger *l, struct tally *tally, struct probe *p,
                                int per_thread)
{
    pthread_t t[4];
    struct recorder r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct recorder){l, tally, p, i * per_thread, per_thread};
        assert_int_equal(pthread_create(&t[i], NULL, recorder_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

static void group_commit_from_threads(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    struct isd_store *other = open_store(dir);
    struct isd_ledger *l = new_ledger(st, true);
    struct tally tally;
    tally_init(&tally);
    enum { PER = 500, N = 4 * PER };
    struct probe *p = calloc(N, sizeof *p);
    assert_non_null(p);
    record_from_threads(l, &tally, p, PER);
    tally_wait(&tally, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(p[i].calls, 1);
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, N);
    assert_int_equal(s.failures, 0);
    assert_true(s.batches >= 1 && s.batches <= s.rows);
    assert_int_equal(committed_rows(other), N);
    isd_ledger_free(l);
    free(p);
    tally_release(&tally);
    isd_store_close(other);
    isd_store_close(st);
}

/* Rows queued while the writer is busy go in together: one transaction for the lot. */
static void queued_rows_share_a_transaction(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    struct isd_store *other = open_store(dir);
    struct isd_ledger *l = new_ledger(st, true);
    struct tally tally;
    tally_init(&tally);
    struct gate g;
    gate_init(&g);
    gate_close(&g, l);
    assert_int_equal(stats_of(l).batches, 1);
    enum { PER = 50, N = 4 * PER };
    struct probe p[N];
    memset(p, 0, sizeof p);
    record_from_threads(l, &tally, p, PER);
    assert_int_equal(tally_get(&tally), 0);
    assert_int_equal(committed_rows(other), 1);
    gate_open(&g);
    tally_wait(&tally, N);
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, N + 1);
    /* the gate's transaction and one more */
    assert_int_equal(s.batches, 2);
    assert_int_equal(committed_rows(other), N + 1);
    /* per thread, in the order recorded */
    for (int t = 0; t < 4; t++)
        for (int i = t * PER + 1; i < (t + 1) * PER; i++)
            assert_true(p[i].seq > p[i - 1].seq);
    isd_ledger_free(l);
    gate_release(&g);
    tally_release(&tally);
    isd_store_close(other);
    isd_store_close(st);
}

static void disabled_ledger_calls_done_at_once(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    struct isd_ledger *l = new_ledger(st, false);
    struct tally tally;
    tally_init(&tally);
    struct probe p[5];
    memset(p, 0, sizeof p);
    for (int i = 0; i < 5; i++) {
        struct isd_usage_row row;
        make_row(&row, i);
        p[i].tally = &tally;
        assert_int_equal(isd_ledger_record(l, &row, probe_done, &p[i]), 0);
        /* already called, on this thread */
        assert_int_equal(p[i].calls, 1);
        assert_true(pthread_equal(p[i].thread, pthread_self()));
    }
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, 0);
    assert_int_equal(s.batches, 0);
    assert_int_equal(s.failures, 0);
    isd_ledger_free(l);
    assert_int_equal(committed_rows(st), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(p[i].calls, 1);
    tally_release(&tally);
    isd_store_close(st);
}

struct delayed_open {
    struct gate *gate;
};

static void *open_later(void *arg)
{
    struct delayed_open *d = arg;
    /* give the test thread time to enter isd_ledger_free(); correct either way */
    usleep(50 * 1000);
    gate_open(d->gate);
    return NULL;
}

static void free_commits_what_is_queued(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    struct isd_store *other = open_store(dir);
    struct tally tally;
    tally_init(&tally);
    enum { N = 300 };
    struct probe p[N];
    memset(p, 0, sizeof p);

    /* rows recorded and freed at once */
    struct isd_ledger *l = new_ledger(st, true);
    for (int i = 0; i < N; i++) {
        struct isd_usage_row row;
        make_row(&row, i);
        p[i].tally = &tally;
        assert_int_equal(isd_ledger_record(l, &row, probe_done, &p[i]), 0);
    }
    isd_ledger_free(l);
    assert_int_equal(tally_get(&tally), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(p[i].calls, 1);
        assert_int_equal(p[i].seq, i);
    }
    assert_int_equal(committed_rows(other), N);

    /* rows certainly still queued when free starts: the writer is held by a gate */
    struct gate g;
    gate_init(&g);
    l = new_ledger(st, true);
    gate_close(&g, l);
    memset(p, 0, sizeof p);
    for (int i = 0; i < N; i++) {
        struct isd_usage_row row;
        make_row(&row, N + i);
        p[i].tally = &tally;
        assert_int_equal(isd_ledger_record(l, &row, probe_done, &p[i]), 0);
    }
    assert_int_equal(tally_get(&tally), N);
    struct delayed_open d = {&g};
    pthread_t opener;
    assert_int_equal(pthread_create(&opener, NULL, open_later, &d), 0);
    isd_ledger_free(l);
    assert_int_equal(pthread_join(opener, NULL), 0);
    assert_int_equal(tally_get(&tally), 2 * N);
    for (int i = 0; i < N; i++)
        assert_int_equal(p[i].calls, 1);
    assert_int_equal(committed_rows(other), 2 * N + 1);
    gate_release(&g);
    tally_release(&tally);
    isd_store_close(other);
    isd_store_close(st);
}

/* Reads the error events the ledger logs into a file instead of stderr. */
static int log_to_file(const char *dir, char *path, size_t cap)
{
    snprintf(path, cap, "%s/log.txt", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    isd_log_configure(ISD_LOG_INFO, ISD_LOG_LOGFMT, fd);
    return fd;
}

static bool file_contains(const char *path, const char *needle)
{
    char buf[8192];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void exec_sql(struct isd_store *st, const char *sql)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/imagesd.db", isd_store_dir(st));
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void failing_store_still_calls_done(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    /* before the writer thread starts: isd_log_configure() is not thread-safe */
    char log_path[4200];
    int log_fd = log_to_file(dir, log_path, sizeof log_path);
    struct isd_ledger *l = new_ledger(st, true);
    struct tally tally;
    tally_init(&tally);

    /* one good row first, so the insert statement is prepared before the table goes */
    struct probe first = {.tally = &tally};
    struct isd_usage_row row;
    make_row(&row, 0);
    assert_int_equal(isd_ledger_record(l, &row, probe_done, &first), 0);
    tally_wait(&tally, 1);
    assert_int_equal(stats_of(l).rows, 1);

    exec_sql(st, "DROP TABLE usage");
    enum { N = 5 };
    struct probe p[N];
    memset(p, 0, sizeof p);
    for (int i = 0; i < N; i++) {
        make_row(&row, 1 + i);
        p[i].tally = &tally;
        assert_int_equal(isd_ledger_record(l, &row, probe_done, &p[i]), 0);
    }
    tally_wait(&tally, 1 + N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(p[i].calls, 1);
        assert_int_equal(p[i].seq, 1 + i);
    }
    struct isd_ledger_stats s = stats_of(l);
    assert_int_equal(s.rows, 1);
    assert_int_equal(s.failures, N);
    assert_true(s.batches >= 2 && s.batches <= 1 + N);
    assert_true(file_contains(log_path, "ledger_write_failed"));

    /* the table back: the ledger writes again */
    exec_sql(st, "CREATE TABLE usage (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, "
                 "request_id TEXT NOT NULL, key_id TEXT, endpoint TEXT NOT NULL, model TEXT, "
                 "n INTEGER NOT NULL DEFAULT 0, size TEXT, quality TEXT, output_format TEXT, "
                 "partial_images INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL, "
                 "error_code TEXT, input_text_tokens INTEGER NOT NULL DEFAULT 0, "
                 "input_image_tokens INTEGER NOT NULL DEFAULT 0, "
                 "output_tokens INTEGER NOT NULL DEFAULT 0, "
                 "bytes_out INTEGER NOT NULL DEFAULT 0, ms_queue REAL NOT NULL DEFAULT 0, "
                 "ms_render REAL NOT NULL DEFAULT 0, ms_encode REAL NOT NULL DEFAULT 0, "
                 "ms_total REAL NOT NULL DEFAULT 0)");
    struct probe last = {.tally = &tally};
    make_row(&row, 100);
    assert_int_equal(isd_ledger_record(l, &row, probe_done, &last), 0);
    tally_wait(&tally, 2 + N);
    assert_int_equal(last.calls, 1);
    s = stats_of(l);
    assert_int_equal(s.rows, 2);
    assert_int_equal(s.failures, N);
    assert_int_equal(committed_rows(st), 1);

    isd_ledger_free(l);
    isd_log_configure(ISD_LOG_INFO, ISD_LOG_LOGFMT, 2);
    close(log_fd);
    tally_release(&tally);
    isd_store_close(st);
}

/* A database locked by another process past the busy timeout fails the same way: done() is
 * called and the failure counted. */
static void locked_database_still_calls_done(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    /* before the writer thread starts: isd_log_configure() is not thread-safe */
    char log_path[4200];
    int log_fd = log_to_file(dir, log_path, sizeof log_path);
    struct isd_ledger *l = new_ledger(st, true);
    struct tally tally;
    tally_init(&tally);
    char path[4200];
    snprintf(path, sizeof path, "%s/imagesd.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct probe p = {.tally = &tally};
    struct isd_usage_row row;
    make_row(&row, 0);
    assert_int_equal(isd_ledger_record(l, &row, probe_done, &p), 0);
    tally_wait(&tally, 1); /* after the store's 5 s busy timeout */
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(p.calls, 1);
    assert_int_equal(stats_of(l).failures, 1);
    assert_int_equal(stats_of(l).rows, 0);
    assert_true(file_contains(log_path, "ledger_write_failed"));
    isd_ledger_free(l);
    isd_log_configure(ISD_LOG_INFO, ISD_LOG_LOGFMT, 2);
    close(log_fd);
    assert_int_equal(committed_rows(st), 0);
    tally_release(&tally);
    isd_store_close(st);
}

static const char *column_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(out, cap, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(s);
    return out;
}

/* A row is copied at isd_ledger_record(), its strings included: the caller may reuse or free
 * them at once. */
static void row_strings_copied_at_record(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = open_store(dir);
    struct isd_ledger *l = new_ledger(st, true);
    struct tally tally;
    tally_init(&tally);
    struct gate g;
    gate_init(&g);
    gate_close(&g, l);
    char endpoint[32] = "edits", quality[32] = "high", format[32] = "webp",
         code[64] = "moderation_blocked";
    struct isd_usage_row row;
    make_row(&row, 1);
    row.endpoint = endpoint;
    row.quality = quality;
    row.output_format = format;
    row.error_code = code;
    row.status = 400;
    struct probe p = {.tally = &tally};
    assert_int_equal(isd_ledger_record(l, &row, probe_done, &p), 0);
    /* the caller's buffers are reused right after record() */
    snprintf(endpoint, sizeof endpoint, "XXXXXXXX");
    snprintf(quality, sizeof quality, "XXXXXXXX");
    snprintf(format, sizeof format, "XXXXXXXX");
    snprintf(code, sizeof code, "XXXXXXXX");
    gate_open(&g);
    tally_wait(&tally, 1);
    char path[4200], got[64];
    snprintf(path, sizeof path, "%s/imagesd.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *sql = "SELECT endpoint || ',' || quality || ',' || output_format || ',' || "
                      "error_code FROM usage WHERE request_id = 'req_00000001'";
    column_text(db, sql, got, sizeof got);
    sqlite3_close(db);
    isd_ledger_free(l);
    gate_release(&g);
    tally_release(&tally);
    isd_store_close(st);
    assert_string_equal(got, "edits,high,webp,moderation_blocked");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_done_in_order_after_commit),
        cmocka_unit_test(rows_keep_their_values),
        cmocka_unit_test(group_commit_from_threads),
        cmocka_unit_test(queued_rows_share_a_transaction),
        cmocka_unit_test(disabled_ledger_calls_done_at_once),
        cmocka_unit_test(free_commits_what_is_queued),
        cmocka_unit_test(failing_store_still_calls_done),
        cmocka_unit_test(locked_database_still_calls_done),
        cmocka_unit_test(row_strings_copied_at_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
