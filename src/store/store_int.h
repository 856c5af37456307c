/*
 * store_int: what the store module's files share (not for other modules).
 */
#ifndef ISD_STORE_INT_H
#define ISD_STORE_INT_H

#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>

struct isd_store {
    char dir[4096];        /* data directory */
    char images_dir[4200]; /* dir/images */
    sqlite3 *db;           /* one connection, used under `lock` */
    pthread_mutex_t lock;  /* serialises database access */
    uint8_t secret[32];    /* link-signing key */
    /* cached under `lock` */
    long keys_count;          /* keys ever created, valid for keys_version */
    long long keys_version;   /* PRAGMA data_version when counted; -1 = recount */
    struct store_cached_key { /* keys found recently, valid for keys_version */
        unsigned char hash[32];
        struct isd_key key;
        bool used;
    } key_cache[16];
    int key_cache_next;         /* round-robin slot to replace */
    sqlite3_stmt *data_version; /* prepared once */
    sqlite3_stmt *key_find;
    sqlite3_stmt *usage_insert;
    sqlite3_stmt *key_touch;
    /* the usage journal (store_journal.c) */
    pthread_mutex_t journal_lock; /* appends, and the import that may truncate */
    int journal_fd;               /* O_APPEND, opened at the first append; -1 before */
};

int store_db_fail(struct isd_store *st, struct isd_error *err, const char *what);
/* Prepares `sql` into *s unless already done; 0 or -1. Called with the lock held. */
int store_prepare_once(struct isd_store *st, sqlite3_stmt **s, const char *sql);
void store_finalize_statements(struct isd_store *st);
/* The ledger's statements (insert, key touch), prepared once; then one row, in the caller's
 * transaction. Called with the lock held. */
int store_usage_prepare(struct isd_store *st);
int store_usage_insert_row(struct isd_store *st, const struct isd_usage_row *r);

#endif
