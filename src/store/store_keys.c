/*
 * API keys: created with a random secret shown once, kept as SHA-256 hashes.
 */
#include "store/store_int.h"

#include "sys/sys.h"
#include "text/text.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_COLUMNS "id, name, rpm, ipm, max_concurrent, admin, created, last_used, revoked"

static void key_from_row(sqlite3_stmt *s, struct isd_key *k)
{
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", (const char *)sqlite3_column_text(s, 0));
    snprintf(k->name, sizeof k->name, "%s", (const char *)sqlite3_column_text(s, 1));
    k->rpm = (long)sqlite3_column_int64(s, 2);
    k->ipm = (long)sqlite3_column_int64(s, 3);
    k->max_concurrent = (long)sqlite3_column_int64(s, 4);
    k->admin = sqlite3_column_int(s, 5) != 0;
    k->created = sqlite3_column_int64(s, 6);
    k->last_used = sqlite3_column_int64(s, 7);
    k->revoked = sqlite3_column_int64(s, 8);
}

int isd_store_key_create(struct isd_store *st, const char *name, long rpm, long ipm,
                         long max_concurrent, bool admin, struct isd_key *out,
                         char secret[ISD_KEY_SECRET_LEN + 1], struct isd_error *err)
{
    uint8_t rnd[32], idr[8];
    if (isd_random_bytes(rnd, sizeof rnd) < 0 || isd_random_bytes(idr, sizeof idr) < 0)
        return isd_err_set(err, ISD_E_IO, NULL, "no random bytes for a key");
    struct isd_buf b;
    isd_buf_init(&b, 64);
    isd_buf_append_str(&b, "sk-");
    isd_base64url_encode(&b, rnd, sizeof rnd);
    memcpy(secret, b.data, ISD_KEY_SECRET_LEN + 1);
    isd_buf_release(&b);
    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, ISD_KEY_SECRET_LEN, hash);
    memset(out, 0, sizeof *out);
    memcpy(out->id, "key_", 4);
    isd_hex_to(out->id + 4, idr, sizeof idr);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->rpm = rpm;
    out->ipm = ipm;
    out->max_concurrent = max_concurrent;
    out->admin = admin;
    out->created = isd_time_unix();

    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO api_keys (id, name, hash, rpm, ipm, max_concurrent, admin, "
                           "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = store_db_fail(st, err, "creating a key");
    } else {
        sqlite3_bind_text(s, 1, out->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, out->name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 3, hash, sizeof hash, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, rpm);
        sqlite3_bind_int64(s, 5, ipm);
        sqlite3_bind_int64(s, 6, max_concurrent);
        sqlite3_bind_int(s, 7, admin);
        sqlite3_bind_int64(s, 8, out->created);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_db_fail(st, err, "creating a key");
    }
    sqlite3_finalize(s);
    st->keys_version = -1;
    pthread_mutex_unlock(&st->lock);
    OPENSSL_cleanse(rnd, sizeof rnd);
    if (rc < 0)
        OPENSSL_cleanse(secret, ISD_KEY_SECRET_LEN + 1);
    return rc;
}

int isd_store_key_list(struct isd_store *st, struct isd_key **keys, size_t *n,
                       struct isd_error *err)
{
    *keys = NULL;
    *n = 0;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created, rowid",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = store_db_fail(st, err, "listing keys");
        goto out;
    }
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct isd_key *grown = realloc(*keys, sizeof **keys * (*n + 1));
        if (!grown) {
            rc = isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
            goto out;
        }
        *keys = grown;
        key_from_row(s, &(*keys)[(*n)++]);
    }
    if (step != SQLITE_DONE)
        rc = store_db_fail(st, err, "listing keys");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (rc < 0) {
        free(*keys);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

int isd_store_key_revoke(struct isd_store *st, const char *id, struct isd_error *err)
{
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(st->db, "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked = 0",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = store_db_fail(st, err, "revoking a key");
    } else {
        sqlite3_bind_int64(s, 1, isd_time_unix());
        sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_db_fail(st, err, "revoking a key");
        else if (sqlite3_changes(st->db) == 0)
            rc = isd_err_set(err, ISD_E_NOT_FOUND, NULL, "no active key with id '%s'", id);
    }
    sqlite3_finalize(s);
    st->keys_version = -1;
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* Drops the cached keys and count when another connection changed the database
 * (PRAGMA data_version moved) or this one created or revoked a key (keys_version = -1).
 * Called with the lock held. */
static void check_version(struct isd_store *st)
{
    long long v = -1;
    if (store_prepare_once(st, &st->data_version, "PRAGMA data_version") == 0) {
        if (sqlite3_step(st->data_version) == SQLITE_ROW)
            v = sqlite3_column_int64(st->data_version, 0);
        sqlite3_reset(st->data_version);
    }
    if (v >= 0 && v == st->keys_version)
        return;
    st->keys_version = v;
    st->keys_count = -1;
    memset(st->key_cache, 0, sizeof st->key_cache);
}

int isd_store_key_find(struct isd_store *st, const char *secret, size_t len, struct isd_key *out)
{
    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, len, hash);
    int rc = -ISD_E_AUTH_INVALID;
    pthread_mutex_lock(&st->lock);
    check_version(st);
    for (size_t i = 0; i < sizeof st->key_cache / sizeof st->key_cache[0]; i++) {
        struct store_cached_key *c = &st->key_cache[i];
        if (c->used && CRYPTO_memcmp(c->hash, hash, sizeof hash) == 0) {
            *out = c->key;
            pthread_mutex_unlock(&st->lock);
            return 0;
        }
    }
    if (store_prepare_once(st, &st->key_find,
                           "SELECT " KEY_COLUMNS ", hash FROM api_keys WHERE hash = ? AND "
                           "revoked = 0") == 0) {
        sqlite3_stmt *s = st->key_find;
        sqlite3_bind_blob(s, 1, hash, sizeof hash, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 9) == sizeof hash &&
            CRYPTO_memcmp(sqlite3_column_blob(s, 9), hash, sizeof hash) == 0) {
            key_from_row(s, out);
            rc = 0;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    if (rc == 0) {
        struct store_cached_key *c = &st->key_cache[st->key_cache_next];
        st->key_cache_next = (st->key_cache_next + 1) % 16;
        memcpy(c->hash, hash, sizeof hash);
        c->key = *out;
        c->used = true;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

long isd_store_key_count(struct isd_store *st)
{
    pthread_mutex_lock(&st->lock);
    check_version(st);
    if (st->keys_count < 0) {
        sqlite3_stmt *s;
        long count = 0;
        if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM api_keys", -1, &s, NULL) ==
            SQLITE_OK) {
            if (sqlite3_step(s) == SQLITE_ROW)
                count = (long)sqlite3_column_int64(s, 0);
            sqlite3_finalize(s);
        }
        st->keys_count = count;
    }
    long n = st->keys_count;
    pthread_mutex_unlock(&st->lock);
    return n;
}
