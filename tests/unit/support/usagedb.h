/*
 * usagedb: helpers for the unit tests of the store (tests/unit/store) and the usage ledger
 * (tests/unit/ledger): paths and files in a data directory, a store opened or a row appended
 * that fails the test when it cannot be, the plain usage row "req_%08d" those tests record, and
 * the database read through an SQLite connection of the test's own (never through the store,
 * so never importing the journal: what it sees is what was imported).
 *
 * Every helper that can fail ends the current cmocka test (fail_msg or an assert) instead of
 * returning an error: call them from a test or from what a test calls, on the test's thread
 * (cmocka's failure jumps back into that thread). isd_test_path_in() and isd_test_journal_of()
 * return one of 8 static buffers in turn: use the path at once or copy it; not thread-safe.
 * What a helper allocates (isd_test_read_file, isd_test_usage_totals) the caller frees.
 *
 *     const char *dir = isd_test_tmpdir();
 *     struct isd_store *st = isd_test_store_open(dir);
 *     isd_test_usage_append_range(st, 0, 3);             // rows req_00000000 .. req_00000002
 *     isd_test_usage_import(st, true);
 *     isd_test_expect_usage_range(dir, 0, 3);            // those three, once each, no other
 *     isd_store_close(st);
 */
#ifndef ISD_TEST_USAGEDB_H
#define ISD_TEST_USAGEDB_H

#include "store/store.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- paths and files ---- */

/* "<dir>/<name>" in one of 8 static buffers used in turn. */
const char *isd_test_path_in(const char *dir, const char *name);
/* "<dir>/usage.journal", as isd_test_path_in(). */
const char *isd_test_journal_of(const char *dir);
/* The file's size; -1 when it does not exist. */
long isd_test_file_size(const char *path);
/* The whole file, malloc'd with a NUL after its *n bytes; NULL when it cannot be opened. */
unsigned char *isd_test_read_file(const char *path, size_t *n);
/* Creates (or empties) the file and writes the n bytes. */
void isd_test_write_file(const char *path, const void *p, size_t n);
/* Appends the n bytes to the file, creating it when missing. */
void isd_test_append_file(const char *path, const void *p, size_t n);
/* Sleeps about `us` microseconds. */
void isd_test_pause_us(long us);

/* ---- the store ---- */

struct isd_store *isd_test_store_open(const char *dir);
void isd_test_key_create(struct isd_store *st, const char *name, long rpm, long ipm, long conc,
                         bool admin, struct isd_key *key, char secret[ISD_KEY_SECRET_LEN + 1]);
/* A plain row number i: request id "req_%08d", time 1700000000000 + i, key "key_%016x" of
 * i % 3, model "model-<i % 2>", generations, n 1, 64x64, low, png, status 200, 100 bytes out,
 * 1.5 ms in all. */
void isd_test_usage_row(struct isd_usage_row *r, int i);
void isd_test_usage_append(struct isd_store *st, const struct isd_usage_row *r);
/* Appends isd_test_usage_row() first .. first + count - 1. */
void isd_test_usage_append_range(struct isd_store *st, int first, int count);
struct isd_usage_import isd_test_usage_import(struct isd_store *st, bool owner);
void isd_test_usage_insert(struct isd_store *st, const struct isd_usage_row *rows, size_t n);
struct isd_usage_total *isd_test_usage_totals(struct isd_store *st, int64_t since,
                                              enum isd_usage_group by, size_t *n);

/* ---- the database, through a connection of the test's own ---- */

/* <dir>/imagesd.db (created when missing), with a 5 s busy timeout; sqlite3_close() it. */
sqlite3 *isd_test_db_open(const char *dir);
void isd_test_sql_exec(const char *dir, const char *sql);
/* The first column of the first row of `sql`, as an integer. */
long long isd_test_sql_int(const char *dir, const char *sql);
/* PRAGMA user_version, read through a read-only connection. */
int isd_test_schema_version(const char *dir);
/* Rows in the usage table; -1 when it cannot be read (no table). */
long long isd_test_usage_rows(const char *dir);
/* One text column (an SQL expression) of the row with `request_id`; "(null)" for NULL. */
void isd_test_usage_column(const char *dir, const char *request_id, const char *column, char *out,
                           size_t cap);
/* The usage table holds the rows "req_%08d" for each i < n with want[i], each once, and no
 * other row. */
void isd_test_expect_usage_exactly(const char *dir, const bool *want, int n);
/* ... for each i in [first, first + count). */
void isd_test_expect_usage_range(const char *dir, int first, int count);

#endif
