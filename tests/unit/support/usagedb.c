#include "support/usagedb.h"

#include "support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PATH_CAP 4400

/* ---- paths and files ---- */

const char *isd_test_path_in(const char *dir, const char *name)
{
    static char buf[8][PATH_CAP];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, PATH_CAP, "%s/%s", dir, name);
    return p;
}

const char *isd_test_journal_of(const char *dir)
{
    return isd_test_path_in(dir, "usage.journal");
}

long isd_test_file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

unsigned char *isd_test_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0, got;
    unsigned char *p = malloc(cap + 1);
    assert_non_null(p);
    while ((got = fread(p + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            p = realloc(p, cap + 1);
            assert_non_null(p);
        }
    }
    fclose(f);
    p[len] = '\0';
    *n = len;
    return p;
}

static void put_file(const char *path, const char *mode, const void *p, size_t n)
{
    FILE *f = fopen(path, mode);
    if (!f)
        fail_msg("fopen(%s, %s) failed", path, mode);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

void isd_test_write_file(const char *path, const void *p, size_t n)
{
    put_file(path, "wb", p, n);
}

void isd_test_append_file(const char *path, const void *p, size_t n)
{
    put_file(path, "ab", p, n);
}

void isd_test_pause_us(long us)
{
    struct timespec t = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&t, NULL);
}

/* ---- the store ---- */

struct isd_store *isd_test_store_open(const char *dir)
{
    struct isd_error err;
    struct isd_store *st = isd_store_open(dir, &err);
    if (!st)
        fail_msg("isd_store_open(%s): %s", dir, err.message);
    return st;
}

void isd_test_key_create(struct isd_store *st, const char *name, long rpm, long ipm, long conc,
                         bool admin, struct isd_key *key, char secret[ISD_KEY_SECRET_LEN + 1])
{
    struct isd_error err;
    if (isd_store_key_create(st, name, rpm, ipm, conc, admin, key, secret, &err) < 0)
        fail_msg("isd_store_key_create: %s", err.message);
}

void isd_test_usage_row(struct isd_usage_row *r, int i)
{
    memset(r, 0, sizeof *r);
    r->time_ms = 1700000000000LL + i;
    snprintf(r->request_id, sizeof r->request_id, "req_%08d", i);
    snprintf(r->key_id, sizeof r->key_id, "key_%016x", (unsigned)(i % 3));
    r->endpoint = "generations";
    snprintf(r->model, sizeof r->model, "model-%d", i % 2);
    r->n = 1;
    snprintf(r->size, sizeof r->size, "64x64");
    r->quality = "low";
    r->output_format = "png";
    r->status = 200;
    r->bytes_out = 100;
    r->ms_total = 1.5;
}

void isd_test_usage_append(struct isd_store *st, const struct isd_usage_row *r)
{
    struct isd_error err;
    if (isd_store_usage_append(st, r, &err) < 0)
        fail_msg("isd_store_usage_append: %s", err.message);
}

void isd_test_usage_append_range(struct isd_store *st, int first, int count)
{
    for (int i = first; i < first + count; i++) {
        struct isd_usage_row r;
        isd_test_usage_row(&r, i);
        isd_test_usage_append(st, &r);
    }
}

struct isd_usage_import isd_test_usage_import(struct isd_store *st, bool owner)
{
    struct isd_usage_import got = {99, 99};
    struct isd_error err;
    if (isd_store_usage_import(st, owner, &got, &err) < 0)
        fail_msg("isd_store_usage_import(owner=%d): %s", owner, err.message);
    return got;
}

void isd_test_usage_insert(struct isd_store *st, const struct isd_usage_row *rows, size_t n)
{
    struct isd_error err;
    if (isd_store_usage_insert(st, rows, n, &err) < 0)
        fail_msg("isd_store_usage_insert: %s", err.message);
}

struct isd_usage_total *isd_test_usage_totals(struct isd_store *st, int64_t since,
                                              enum isd_usage_group by, size_t *n)
{
    struct isd_usage_total *t = NULL;
    struct isd_error err;
    if (isd_store_usage_totals(st, since, by, &t, n, &err) < 0)
        fail_msg("isd_store_usage_totals: %s", err.message);
    return t;
}

/* ---- the database ---- */

static void db_path(const char *dir, char *out)
{
    snprintf(out, PATH_CAP, "%s/imagesd.db", dir);
}

sqlite3 *isd_test_db_open(const char *dir)
{
    char path[PATH_CAP];
    db_path(dir, path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

void isd_test_sql_exec(const char *dir, const char *sql)
{
    sqlite3 *db = isd_test_db_open(dir);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

long long isd_test_sql_int(const char *dir, const char *sql)
{
    sqlite3 *db = isd_test_db_open(dir);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long long v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

int isd_test_schema_version(const char *dir)
{
    char path[PATH_CAP];
    db_path(dir, path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

long long isd_test_usage_rows(const char *dir)
{
    sqlite3 *db = isd_test_db_open(dir);
    sqlite3_stmt *s;
    long long n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM usage", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            n = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return n;
}

void isd_test_usage_column(const char *dir, const char *request_id, const char *column, char *out,
                           size_t cap)
{
    char sql[1024];
    int len = snprintf(sql, sizeof sql, "SELECT %s FROM usage WHERE request_id = ?", column);
    assert_true(len > 0 && (size_t)len < sizeof sql);
    sqlite3 *db = isd_test_db_open(dir);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_bind_text(s, 1, request_id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(out, cap, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

void isd_test_expect_usage_exactly(const char *dir, const bool *want, int n)
{
    bool *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    sqlite3 *db = isd_test_db_open(dir);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT request_id, count(*) FROM usage GROUP BY "
                                        "request_id",
                                        -1, &s, NULL),
                     SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        int copies = sqlite3_column_int(s, 1);
        int i = -1;
        if (sscanf(id, "req_%d", &i) != 1 || i < 0 || i >= n || !want[i])
            fail_msg("unexpected row %s", id);
        if (copies != 1)
            fail_msg("row %s imported %d times", id, copies);
        seen[i] = true;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    for (int i = 0; i < n; i++)
        if (want[i] && !seen[i])
            fail_msg("row req_%08d missing", i);
    free(seen);
}

void isd_test_expect_usage_range(const char *dir, int first, int count)
{
    bool *want = calloc((size_t)(first + count), 1);
    assert_non_null(want);
    for (int i = first; i < first + count; i++)
        want[i] = true;
    isd_test_expect_usage_exactly(dir, want, first + count);
    free(want);
}
