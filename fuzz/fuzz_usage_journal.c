/*
 * fuzz_usage_journal: arbitrary bytes as usage.journal (src/store/store_journal.c) in two
 * temporary data directories, imported by the server (owner) in one and by another process
 * (non-owner) then the server in the other. An input that starts with 'W' is instead a list
 * of payloads (u16 little-endian length, bytes), each wrapped in a record with a correct
 * magic, length and CRC-32 (a trailing incomplete item is appended raw): that reaches the
 * payload decoder and the database, which random bytes cannot get past the CRC to.
 *
 * Checks, besides not crashing: every import succeeds; a non-owner imports a prefix and, once
 * stopped, stays stopped; the owner then imports exactly what an owner alone imports, and
 * skips as many bytes; the owner's position ends at the file's end; rows appended afterwards
 * are imported once, by anyone.
 */
#include "store/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK_BYTES (1 << 20) /* the import's read size: the prefix check holds below it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[4096];

static void remove_base(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_usage_journal: could not remove %s\n", base);
}

static void setup_once(void)
{
    if (base[0])
        return;
    const char *tmp = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/fuzz-usage-journal-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base))
        abort();
    atexit(remove_base);
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_usage_journal: %s\n", what);
        abort();
    }
}

/* A data directory with no database and no journal (the secret and images/ are kept). */
static void reset_dir(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "%s/%s", base, name);
    check(mkdir(dir, 0700) == 0 || errno == EEXIST, "cannot make the data directory");
    static const char *const files[] = {"imagesd.db", "imagesd.db-wal", "imagesd.db-shm",
                                        "usage.journal"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The journal's bytes for this input (see the top comment); *n their count. */
static unsigned char *journal_bytes(const uint8_t *data, size_t size, size_t *n)
{
    if (size == 0 || data[0] != 'W') {
        unsigned char *out = malloc(size ? size : 1);
        check(out != NULL, "out of memory");
        memcpy(out, data, size);
        *n = size;
        return out;
    }
    /* each item grows by at most 12 - 2 bytes */
    unsigned char *out = malloc(size * 6 + 12);
    check(out != NULL, "out of memory");
    size_t at = 1, len = 0;
    while (at < size) {
        if (size - at < 2) {
            memcpy(out + len, data + at, size - at);
            len += size - at;
            break;
        }
        size_t item = (size_t)data[at] | (size_t)data[at + 1] << 8;
        if (size - at - 2 < item) {
            memcpy(out + len, data + at, size - at);
            len += size - at;
            break;
        }
        memcpy(out + len, "ISDL", 4);
        put_u32(out + len + 4, (uint32_t)item);
        put_u32(out + len + 8, (uint32_t)crc32(0L, data + at + 2, (uInt)item));
        memcpy(out + len + 12, data + at + 2, item);
        len += 12 + item;
        at += 2 + item;
    }
    *n = len;
    return out;
}

static void write_journal(const char *dir, const unsigned char *p, size_t n)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/usage.journal", dir);
    FILE *f = fopen(path, "wb");
    check(f != NULL, "cannot write the journal");
    check(fwrite(p, 1, n, f) == n, "cannot write the journal");
    check(fclose(f) == 0, "cannot write the journal");
}

static struct isd_store *open_store(const char *dir)
{
    struct isd_error err;
    struct isd_store *st = isd_store_open(dir, &err);
    if (!st)
        fprintf(stderr, "fuzz_usage_journal: %s\n", err.message);
    check(st != NULL, "cannot open the store");
    return st;
}

static struct isd_usage_import import(struct isd_store *st, bool owner)
{
    struct isd_usage_import got;
    struct isd_error err;
    if (isd_store_usage_import(st, owner, &got, &err) < 0) {
        fprintf(stderr, "fuzz_usage_journal: import (owner=%d): %s\n", owner, err.message);
        abort();
    }
    return got;
}

/* The saved position, read through a connection of its own. */
static long long consumed_of(const char *dir)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/imagesd.db", dir);
    sqlite3 *db;
    sqlite3_stmt *s;
    long long v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT consumed FROM usage_journal", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return v;
}

static long long journal_size(const char *dir)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/usage.journal", dir);
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

static long total_requests(struct isd_store *st)
{
    struct isd_usage_total *t;
    size_t n;
    struct isd_error err;
    check(isd_store_usage_totals(st, 0, ISD_USAGE_ALL, &t, &n, &err) == 0, "totals failed");
    long requests = n ? t[0].requests : 0;
    free(t);
    return requests;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    size_t n;
    unsigned char *journal = journal_bytes(data, size, &n);
    char alone_dir[4200], shared_dir[4200];
    reset_dir(alone_dir, sizeof alone_dir, "alone");
    reset_dir(shared_dir, sizeof shared_dir, "shared");
    write_journal(alone_dir, journal, n);
    write_journal(shared_dir, journal, n);
    free(journal);

    /* the server, alone */
    struct isd_store *alone = open_store(alone_dir);
    struct isd_usage_import all = import(alone, true);
    check(consumed_of(alone_dir) == (long long)n, "the owner did not read to the end");
    check(all.damaged_bytes <= n, "more bytes skipped than there are");
    check(total_requests(alone) == (long)all.rows, "rows counted differ from rows imported");
    isd_store_close(alone);

    /* another process first, then the server */
    struct isd_store *st = open_store(shared_dir);
    struct isd_usage_import first = import(st, false);
    check(first.damaged_bytes == 0, "a non-owner skipped bytes");
    long long stopped = consumed_of(shared_dir);
    struct isd_usage_import again = import(st, false);
    check(again.rows == 0 && consumed_of(shared_dir) == stopped, "a non-owner moved on");
    struct isd_usage_import rest = import(st, true);
    check(consumed_of(shared_dir) == (long long)n, "the owner did not read to the end");
    if (n < CHUNK_BYTES) {
        check(first.rows + rest.rows == all.rows, "rows differ from an owner alone's");
        check(rest.damaged_bytes == all.damaged_bytes, "skipped bytes differ");
    }

    /* afterwards the journal works: appended rows are imported once, by anyone */
    for (int i = 0; i < 3; i++) {
        struct isd_usage_row r;
        memset(&r, 0, sizeof r);
        r.time_ms = 1700000000000LL + i;
        snprintf(r.request_id, sizeof r.request_id, "req_after_%d", i);
        r.endpoint = "generations";
        r.status = 200;
        struct isd_error err;
        check(isd_store_usage_append(st, &r, &err) == 0, "append failed");
    }
    struct isd_usage_import after = import(st, false);
    check(after.rows == 3 && after.damaged_bytes == 0, "appended rows not imported");
    check(import(st, true).rows == 0, "rows imported twice");
    check(consumed_of(shared_dir) == journal_size(shared_dir), "position not at the end");
    check(total_requests(st) == (long)(first.rows + rest.rows + 3), "rows lost or doubled");
    isd_store_close(st);
    return 0;
}
