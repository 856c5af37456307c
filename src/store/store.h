/*
 * store: the data directory. It holds
 *   imagesd.db      SQLite database (WAL), schema versioned with PRAGMA user_version
 *   secret.key      32 random bytes (mode 0600): the key that signs image links
 *   images/         stored images served through signed links, named <id>.<ext>
 *   usage.journal   usage rows appended before they are imported into the database
 * The database holds the image index (id, format, size, created, expires, request id), the
 * API keys (schema 2: only a SHA-256 of each key is kept) and the usage ledger (one row per
 * image API request). WAL with synchronous=NORMAL: a committed row is in the WAL file, so it
 * survives the process being killed (not a power cut).
 *
 * Ownership: isd_store_open() returns a heap object freed by isd_store_close(NULL-safe).
 * Threading: every function may be called from any thread; database access is serialised by
 * an internal mutex (statements are short). Errors: negative ids with detail in the caller's
 * isd_error (path and SQLite message).
 *
 *     struct isd_store *st = isd_store_open("./imagesd-data", &err);
 *     char id[ISD_STORE_ID_LEN + 1];
 *     isd_store_put_image(st, png, n, ISD_FMT_PNG, now + 3600, "req_...", id, &err);
 *     isd_store_sweep(st, now, &deleted, &err);
 */
#ifndef ISD_STORE_H
#define ISD_STORE_H

#include "codec/codec.h"
#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISD_STORE_ID_LEN         36 /* "img_" + 32 hex */
#define ISD_STORE_SCHEMA_VERSION 3

struct isd_store;

struct isd_store *isd_store_open(const char *data_dir, struct isd_error *err);
void isd_store_close(struct isd_store *st);

/* The link-signing key (32 bytes), created on first open. */
const uint8_t *isd_store_secret(const struct isd_store *st);
const char *isd_store_dir(const struct isd_store *st);

/* Writes the encoded image to images/<id>.<ext> and records it; *id_out receives the id. */
int isd_store_put_image(struct isd_store *st, const void *bytes, size_t n, enum isd_format fmt,
                        int64_t expires, const char *request_id, char id_out[ISD_STORE_ID_LEN + 1],
                        struct isd_error *err);
/* Path of a stored file given its public name "<id>.<ext>"; -ISD_E_NOT_FOUND when the name is
 * not of that shape (it is never used to walk the file system otherwise). */
int isd_store_image_path(const struct isd_store *st, const char *file, char *path, size_t cap);
/* Deletes images whose link expired before `now`; *deleted counts them. */
int isd_store_sweep(struct isd_store *st, int64_t now, int *deleted, struct isd_error *err);
/* Number of indexed images (for tests and metrics). */
long isd_store_image_count(struct isd_store *st);

/* ---- API keys ----
 * A key is "sk-" followed by 43 URL-safe characters (32 random bytes, base64url). It is shown
 * once, at creation; the store keeps its SHA-256. Lookups hash the presented key and find the
 * row by hash (an index lookup), then compare the hashes with CRYPTO_memcmp: the time taken
 * depends on the hash, not on how much of the key matched. */
#define ISD_KEY_SECRET_LEN 46
#define ISD_KEY_ID_LEN     20 /* "key_" + 16 hex */

struct isd_key {
    char id[ISD_KEY_ID_LEN + 1];
    char name[128];
    long rpm;            /* requests per minute; 0 = unlimited */
    long ipm;            /* images per minute; 0 = unlimited */
    long max_concurrent; /* jobs at once; 0 = unlimited */
    bool admin;          /* may read /metrics */
    int64_t created;     /* unix seconds */
    int64_t last_used;   /* unix seconds; 0 = never; kept to the minute (written at most once a
                            minute per key, so the ledger's commits stay small) */
    int64_t revoked;     /* unix seconds; 0 = active */
};

/* Creates a key; `secret` receives it (NUL-terminated), the only time it exists in clear. */
int isd_store_key_create(struct isd_store *st, const char *name, long rpm, long ipm,
                         long max_concurrent, bool admin, struct isd_key *out,
                         char secret[ISD_KEY_SECRET_LEN + 1], struct isd_error *err);
/* Every key, active and revoked, oldest first; the caller frees *keys. */
int isd_store_key_list(struct isd_store *st, struct isd_key **keys, size_t *n,
                       struct isd_error *err);
/* Revokes an active key; -ISD_E_NOT_FOUND when there is none with that id. */
int isd_store_key_revoke(struct isd_store *st, const char *id, struct isd_error *err);
/* The active key matching `secret`, or -ISD_E_AUTH_INVALID (unknown or revoked). Sees keys
 * created or revoked by other processes at once. */
int isd_store_key_find(struct isd_store *st, const char *secret, size_t len, struct isd_key *out);
/* Keys ever created, revoked ones included (cached; recounted when any connection changed the
 * database). Once a key exists, revoking them all must not open the server again. */
long isd_store_key_count(struct isd_store *st);

/* ---- usage ledger ---- */
struct isd_usage_row {
    int64_t time_ms; /* when the request arrived, unix milliseconds */
    char request_id[40];
    char key_id[ISD_KEY_ID_LEN + 1]; /* "" without a key */
    const char *endpoint;            /* "generations" | "edits" | "variations" */
    char model[128];                 /* "" when not known */
    int n;
    char size[24];
    const char *quality; /* NULL when not known */
    const char *output_format;
    int partial_images;
    int status;             /* HTTP status sent */
    const char *error_code; /* OpenAI error code or NULL */
    long input_text_tokens;
    long input_image_tokens;
    long output_tokens;
    uint64_t bytes_out;
    double ms_queue, ms_render, ms_encode, ms_total;
    /* local models' own units (0 for others): denoising steps run, megapixels generated */
    int steps;
    double megapixels;
};

/* Inserts rows in one transaction and updates their keys' last use. */
int isd_store_usage_insert(struct isd_store *st, const struct isd_usage_row *rows, size_t n,
                           struct isd_error *err);

enum isd_usage_group { ISD_USAGE_ALL = 0, ISD_USAGE_BY_KEY, ISD_USAGE_BY_MODEL, ISD_USAGE_BY_DAY };

struct isd_usage_total {
    char group[160]; /* key id (or "-"), model, or YYYY-MM-DD (UTC); "all" */
    long requests;
    long errors;       /* status >= 400 */
    long images;       /* n of successful requests */
    long input_tokens; /* text + image */
    long output_tokens;
    uint64_t bytes_out;
    double ms_total;   /* sum of request times */
    long steps;        /* local models: denoising steps */
    double megapixels; /* local models: pixels generated / 1e6 */
};

/* The usage journal. A request's row reaches the ledger in two steps: isd_store_usage_append()
 * writes it to usage.journal with one write(2) (a few microseconds; from then on it survives
 * the process being killed), and isd_store_usage_import() moves the journal's rows into the
 * usage table in one transaction together with how far it read, so every row is imported
 * exactly once whoever imports (the server's ledger thread, `imagesd usage`, a restart after a
 * crash). Records carry a magic, a length and a CRC-32; a torn or damaged one is never
 * imported. Thread-safe; appends from several threads and processes do not interleave. */
int isd_store_usage_append(struct isd_store *st, const struct isd_usage_row *row,
                           struct isd_error *err);

struct isd_usage_import {
    size_t rows;          /* imported */
    size_t damaged_bytes; /* skipped (owner only) */
};
/* `owner`: the caller is the one process that appends (the server). It reads to the end with
 * its appends paused, skips damaged bytes (a record cut short by a killed process, a broken
 * disk) and truncates the journal once all of it is imported and it passed 1 MB. Others stop
 * at the first record they cannot read, which may be one being written. `out` may be NULL. */
int isd_store_usage_import(struct isd_store *st, bool owner, struct isd_usage_import *out,
                           struct isd_error *err);

/* Totals of the rows since `since_ms` (0 = all), grouped, after importing the journal (as a
 * non-owner); ISD_USAGE_ALL gives one row, of zeros when there are none. The caller frees *out. */
int isd_store_usage_totals(struct isd_store *st, int64_t since_ms, enum isd_usage_group by,
                           struct isd_usage_total **out, size_t *n, struct isd_error *err);

#endif
