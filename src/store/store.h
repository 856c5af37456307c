/*
 * store: the data directory. It holds
 *   imagesd.db      SQLite database (WAL), schema versioned with PRAGMA user_version
 *   secret.key      32 random bytes (mode 0600): the key that signs image links
 *   images/         stored images served through signed links, named <id>.<ext>
 * The database holds the image index (id, format, size, created, expires, request id);
 * later schema versions add API keys and the usage ledger.
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

#include <stddef.h>
#include <stdint.h>

#define ISD_STORE_ID_LEN         36 /* "img_" + 32 hex */
#define ISD_STORE_SCHEMA_VERSION 1

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

#endif
