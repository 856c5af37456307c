#include "store/store_int.h"

#include "sys/sys.h"
#include "text/text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Schema migrations: entry i brings the database from version i to i + 1. */
static const char *const migrations[] = {
    "CREATE TABLE images ("
    "  id TEXT PRIMARY KEY,"
    "  ext TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  request_id TEXT"
    ");"
    "CREATE INDEX images_expires ON images(expires);",
    /* 2: API keys (hashes only) and the usage ledger */
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  rpm INTEGER NOT NULL DEFAULT 0,"
    "  ipm INTEGER NOT NULL DEFAULT 0,"
    "  max_concurrent INTEGER NOT NULL DEFAULT 0,"
    "  admin INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL DEFAULT 0,"
    "  revoked INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE usage ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  request_id TEXT NOT NULL,"
    "  key_id TEXT,"
    "  endpoint TEXT NOT NULL,"
    "  model TEXT,"
    "  n INTEGER NOT NULL DEFAULT 0,"
    "  size TEXT,"
    "  quality TEXT,"
    "  output_format TEXT,"
    "  partial_images INTEGER NOT NULL DEFAULT 0,"
    "  status INTEGER NOT NULL,"
    "  error_code TEXT,"
    "  input_text_tokens INTEGER NOT NULL DEFAULT 0,"
    "  input_image_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  bytes_out INTEGER NOT NULL DEFAULT 0,"
    "  ms_queue REAL NOT NULL DEFAULT 0,"
    "  ms_render REAL NOT NULL DEFAULT 0,"
    "  ms_encode REAL NOT NULL DEFAULT 0,"
    "  ms_total REAL NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX usage_time ON usage(time_ms);",
    /* 3: how far usage.journal was imported */
    "CREATE TABLE usage_journal ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  consumed INTEGER NOT NULL"
    ");"
    "INSERT INTO usage_journal VALUES (1, 0);"
    /* and the local models' units */
    "ALTER TABLE usage ADD COLUMN steps INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE usage ADD COLUMN megapixels REAL NOT NULL DEFAULT 0;",
};

int store_db_fail(struct isd_store *st, struct isd_error *err, const char *what)
{
    return isd_err_set(err, ISD_E_IO, NULL, "database %s/imagesd.db: %s: %s", st->dir, what,
                       sqlite3_errmsg(st->db));
}

static int migrate(struct isd_store *st, struct isd_error *err)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return store_db_fail(st, err, "reading the schema version");
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    int latest = (int)(sizeof migrations / sizeof migrations[0]);
    if (version > latest)
        return isd_err_set(err, ISD_E_IO, NULL,
                           "database %s/imagesd.db has schema version %d, newer than this "
                           "imagesd (%d)",
                           st->dir, version, latest);
    for (int v = version; v < latest; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(st->db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            int rc = store_db_fail(st, err, "migrating the schema");
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    return 0;
}

static int load_secret(struct isd_store *st, struct isd_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/secret.key", st->dir);
    struct stat sb;
    if (stat(path, &sb) < 0) {
        if (errno != ENOENT)
            return isd_err_set(err, ISD_E_IO, NULL, "cannot read %s: %s", path, strerror(errno));
        /* first start: a new secret */
        if (isd_random_bytes(st->secret, sizeof st->secret) < 0)
            return isd_err_set(err, ISD_E_IO, NULL, "no random bytes for the secret");
        return isd_write_file_atomic(path, st->secret, sizeof st->secret, 0600, err);
    }
    struct isd_buf b;
    isd_buf_init(&b, 64);
    int rc = isd_read_file(path, &b, err);
    if (rc == 0 && b.len != sizeof st->secret)
        rc = isd_err_set(err, ISD_E_IO, NULL,
                         "%s: expected 32 bytes, found %s; delete it to make a new secret (all "
                         "issued image links stop working)",
                         path, b.len > sizeof st->secret ? "more" : "fewer");
    else if (rc == 0)
        memcpy(st->secret, b.data, sizeof st->secret);
    else if (err->id == ISD_E_TOO_LARGE)
        rc = isd_err_set(err, ISD_E_IO, NULL,
                         "%s: expected 32 bytes, found more; delete it to make a new secret (all "
                         "issued image links stop working)",
                         path);
    isd_buf_release(&b);
    return rc;
}

/* Leftovers of writes interrupted by a crash. */
static void remove_temp_files(struct isd_store *st)
{
    DIR *d = opendir(st->images_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, ".tmp"))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

struct isd_store *isd_store_open(const char *data_dir, struct isd_error *err)
{
    struct isd_store *st = calloc(1, sizeof *st);
    if (!st) {
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->journal_lock, NULL);
    st->journal_fd = -1;
    st->keys_version = -1;
    snprintf(st->dir, sizeof st->dir, "%s", data_dir);
    snprintf(st->images_dir, sizeof st->images_dir, "%s/images", data_dir);
    char db_path[4200];
    snprintf(db_path, sizeof db_path, "%s/imagesd.db", data_dir);
    if (isd_mkdirs(st->images_dir, err) < 0 || load_secret(st, err) < 0)
        goto fail;
    if (sqlite3_open_v2(db_path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        store_db_fail(st, err, "opening");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK) {
        store_db_fail(st, err, "configuring");
        goto fail;
    }
    if (migrate(st, err) < 0)
        goto fail;
    remove_temp_files(st);
    return st;
fail:
    isd_store_close(st);
    return NULL;
}

void isd_store_close(struct isd_store *st)
{
    if (!st)
        return;
    store_finalize_statements(st);
    if (st->db)
        sqlite3_close(st->db);
    if (st->journal_fd >= 0)
        close(st->journal_fd);
    pthread_mutex_destroy(&st->journal_lock);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

const uint8_t *isd_store_secret(const struct isd_store *st)
{
    return st->secret;
}

const char *isd_store_dir(const struct isd_store *st)
{
    return st->dir;
}

int isd_store_put_image(struct isd_store *st, const void *bytes, size_t n, enum isd_format fmt,
                        int64_t expires, const char *request_id, char id_out[ISD_STORE_ID_LEN + 1],
                        struct isd_error *err)
{
    uint8_t rnd[16];
    if (isd_random_bytes(rnd, sizeof rnd) < 0)
        return isd_err_set(err, ISD_E_IO, NULL, "no random bytes for an image id");
    memcpy(id_out, "img_", 4);
    isd_hex_to(id_out + 4, rnd, sizeof rnd);
    const char *ext = isd_format_ext(fmt);
    char path[4400], tmp[4420];
    snprintf(path, sizeof path, "%s/%s.%s", st->images_dir, id_out, ext);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* no fsync: a link is worth 60 minutes; a crash loses at most the newest files */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return isd_err_set(err, ISD_E_IO, NULL, "cannot create %s: %s", tmp, strerror(errno));
    int wrc = isd_write_all(fd, bytes, n);
    if (close(fd) < 0 || wrc < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return isd_err_set(err, ISD_E_IO, NULL, "cannot write %s: %s", path, strerror(e));
    }
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO images (id, ext, bytes, created, expires, request_id) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = store_db_fail(st, err, "recording an image");
    } else {
        sqlite3_bind_text(s, 1, id_out, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, ext, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)n);
        sqlite3_bind_int64(s, 4, isd_time_unix());
        sqlite3_bind_int64(s, 5, expires);
        sqlite3_bind_text(s, 6, request_id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_db_fail(st, err, "recording an image");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (rc < 0)
        unlink(path);
    return rc;
}

int isd_store_image_path(const struct isd_store *st, const char *file, char *path, size_t cap)
{
    /* img_ + 32 lowercase hex + . + known extension, nothing else */
    size_t len = strlen(file);
    if (len < ISD_STORE_ID_LEN + 4 || memcmp(file, "img_", 4) != 0)
        return -ISD_E_NOT_FOUND;
    for (size_t i = 4; i < ISD_STORE_ID_LEN; i++) {
        char c = file[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -ISD_E_NOT_FOUND;
    }
    const char *ext = file + ISD_STORE_ID_LEN;
    if (strcmp(ext, ".png") != 0 && strcmp(ext, ".jpg") != 0 && strcmp(ext, ".webp") != 0)
        return -ISD_E_NOT_FOUND;
    int n = snprintf(path, cap, "%s/%s", st->images_dir, file);
    return (n < 0 || (size_t)n >= cap) ? -ISD_E_NOT_FOUND : 0;
}

int isd_store_sweep(struct isd_store *st, int64_t now, int *deleted, struct isd_error *err)
{
    *deleted = 0;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT id, ext FROM images WHERE expires < ?", -1, &s, NULL) !=
        SQLITE_OK) {
        rc = store_db_fail(st, err, "sweeping");
        goto out;
    }
    sqlite3_bind_int64(s, 1, now);
    while (sqlite3_step(s) == SQLITE_ROW) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s.%s", st->images_dir,
                 (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1));
        if (unlink(path) == 0 || errno == ENOENT)
            (*deleted)++;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(st->db, "DELETE FROM images WHERE expires < ?", -1, &s, NULL) !=
            SQLITE_OK ||
        (sqlite3_bind_int64(s, 1, now), sqlite3_step(s)) != SQLITE_DONE)
        rc = store_db_fail(st, err, "sweeping");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

long isd_store_image_count(struct isd_store *st)
{
    long n = -1;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM images", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            n = (long)sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}
