/*
 * store, API keys: the shape of created keys and ids, only hashes on disk, lookups (exact
 * secret only), revocation, listing, the key count across connections, and the schema upgrade
 * from version 1 (images only) to version 2.
 */
#include "support/test.h"
#include "support/usagedb.h"

#include "store/store.h"

#include <ctype.h>
#include <dirent.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static bool url_safe(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

static void key_and_id_shapes(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    char seen[8][ISD_KEY_SECRET_LEN + 1];
    char ids[8][ISD_KEY_ID_LEN + 1];
    for (int k = 0; k < 8; k++) {
        struct isd_key key;
        char secret[ISD_KEY_SECRET_LEN + 1];
        memset(secret, 'Z', sizeof secret);
        int64_t before = (int64_t)time(NULL);
        isd_test_key_create(st, "ci", 10, 20, 3, k == 0, &key, secret);
        int64_t after = (int64_t)time(NULL);
        assert_int_equal(strlen(secret), ISD_KEY_SECRET_LEN);
        assert_memory_equal(secret, "sk-", 3);
        for (int i = 3; i < ISD_KEY_SECRET_LEN; i++)
            if (!url_safe(secret[i]))
                fail_msg("secret character %d is '%c'", i, secret[i]);
        assert_int_equal(strlen(key.id), ISD_KEY_ID_LEN);
        assert_memory_equal(key.id, "key_", 4);
        for (int i = 4; i < ISD_KEY_ID_LEN; i++)
            assert_non_null(strchr("0123456789abcdef", key.id[i]));
        assert_string_equal(key.name, "ci");
        assert_int_equal(key.rpm, 10);
        assert_int_equal(key.ipm, 20);
        assert_int_equal(key.max_concurrent, 3);
        assert_int_equal(key.admin, k == 0);
        assert_true(key.created >= before && key.created <= after);
        assert_int_equal(key.last_used, 0);
        assert_int_equal(key.revoked, 0);
        for (int j = 0; j < k; j++) {
            assert_string_not_equal(seen[j], secret);
            assert_string_not_equal(ids[j], key.id);
        }
        memcpy(seen[k], secret, sizeof secret);
        memcpy(ids[k], key.id, sizeof key.id);
    }
    assert_int_equal(isd_store_key_count(st), 8);
    isd_store_close(st);
}

/* Whether any file directly in `dir` contains `needle`. */
static bool dir_contains(const char *dir, const void *needle, size_t len)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d))) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
            continue;
        size_t n;
        unsigned char *p = isd_test_read_file(path, &n);
        if (p && n >= len)
            found = memmem(p, n, needle, len) != NULL;
        free(p);
    }
    closedir(d);
    return found;
}

static void secret_not_stored_only_its_hash(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_key key;
    char secret[ISD_KEY_SECRET_LEN + 1];
    isd_test_key_create(st, "ci", 0, 0, 0, false, &key, secret);
    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, ISD_KEY_SECRET_LEN, hash);
    /* while open (rows may be in the WAL) and after close (checkpointed into the database) */
    for (int pass = 0; pass < 2; pass++) {
        assert_false(dir_contains(dir, secret, ISD_KEY_SECRET_LEN));
        assert_false(dir_contains(dir, secret + 3, ISD_KEY_SECRET_LEN - 3));
        /* no long piece of the secret either */
        assert_false(dir_contains(dir, secret + 10, 16));
        assert_true(dir_contains(dir, hash, sizeof hash));
        assert_true(dir_contains(dir, key.id, ISD_KEY_ID_LEN));
        if (pass == 0)
            isd_store_close(st);
    }
}

static void find_by_exact_secret_only(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    struct isd_key a, b, found;
    char sa[ISD_KEY_SECRET_LEN + 1], sb[ISD_KEY_SECRET_LEN + 1];
    isd_test_key_create(st, "first", 1, 2, 3, true, &a, sa);
    isd_test_key_create(st, "second", 0, 0, 0, false, &b, sb);
    assert_int_equal(isd_store_key_find(st, sa, strlen(sa), &found), 0);
    assert_string_equal(found.id, a.id);
    assert_string_equal(found.name, "first");
    assert_int_equal(found.rpm, 1);
    assert_int_equal(found.ipm, 2);
    assert_int_equal(found.max_concurrent, 3);
    assert_true(found.admin);
    assert_int_equal(found.created, a.created);
    assert_int_equal(isd_store_key_find(st, sb, strlen(sb), &found), 0);
    assert_string_equal(found.id, b.id);
    assert_false(found.admin);
    /* the secret need not be NUL-terminated: only len bytes count */
    char padded[64];
    snprintf(padded, sizeof padded, "%s trailing", sa);
    assert_int_equal(isd_store_key_find(st, padded, ISD_KEY_SECRET_LEN, &found), 0);
    assert_string_equal(found.id, a.id);

    assert_int_equal(isd_store_key_find(st, "", 0, &found), -ISD_E_AUTH_INVALID);
    assert_int_equal(isd_store_key_find(st, "sk-", 3, &found), -ISD_E_AUTH_INVALID);
    assert_int_equal(isd_store_key_find(st, sa, ISD_KEY_SECRET_LEN - 1, &found),
                     -ISD_E_AUTH_INVALID);
    assert_int_equal(isd_store_key_find(st, padded, ISD_KEY_SECRET_LEN + 1, &found),
                     -ISD_E_AUTH_INVALID);
    assert_int_equal(isd_store_key_find(st, a.id, strlen(a.id), &found), -ISD_E_AUTH_INVALID);
    /* every one-character change, at every position */
    for (int i = 0; i < ISD_KEY_SECRET_LEN; i++) {
        char off[ISD_KEY_SECRET_LEN + 1];
        memcpy(off, sa, sizeof off);
        off[i] = off[i] == 'A' ? 'B' : 'A';
        if (isd_store_key_find(st, off, ISD_KEY_SECRET_LEN, &found) != -ISD_E_AUTH_INVALID)
            fail_msg("secret with character %d changed was accepted", i);
    }
    /* the hash itself is not a secret */
    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)sa, ISD_KEY_SECRET_LEN, hash);
    assert_int_equal(isd_store_key_find(st, (const char *)hash, sizeof hash, &found),
                     -ISD_E_AUTH_INVALID);
    isd_store_close(st);
}

/* More keys than any small cache of recent lookups: each is found as itself, every time, and a
 * revoked one is refused even right after being found. */
static void many_keys_found_and_revoked(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    struct isd_store *other = isd_test_store_open(dir);
    enum { N = 40 };
    struct isd_key keys[N], found;
    char secrets[N][ISD_KEY_SECRET_LEN + 1];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", i);
        isd_test_key_create(st, name, i, 0, 0, false, &keys[i], secrets[i]);
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N; i++) {
            int j = (i * 7 + round) % N;
            assert_int_equal(isd_store_key_find(st, secrets[j], ISD_KEY_SECRET_LEN, &found), 0);
            assert_string_equal(found.id, keys[j].id);
            assert_int_equal(found.rpm, j);
        }
    struct isd_error err;
    /* revoked through this connection and through the other one */
    for (int i = 0; i < N; i += 3) {
        struct isd_store *via = i % 2 ? other : st;
        assert_int_equal(isd_store_key_find(st, secrets[i], ISD_KEY_SECRET_LEN, &found), 0);
        assert_int_equal(isd_store_key_revoke(via, keys[i].id, &err), 0);
        assert_int_equal(isd_store_key_find(st, secrets[i], ISD_KEY_SECRET_LEN, &found),
                         -ISD_E_AUTH_INVALID);
    }
    for (int i = 0; i < N; i++) {
        int want = i % 3 == 0 ? -ISD_E_AUTH_INVALID : 0;
        assert_int_equal(isd_store_key_find(st, secrets[i], ISD_KEY_SECRET_LEN, &found), want);
        assert_int_equal(isd_store_key_find(other, secrets[i], ISD_KEY_SECRET_LEN, &found), want);
    }
    assert_int_equal(isd_store_key_count(st), N);
    assert_int_equal(isd_store_key_count(other), N);
    isd_store_close(other);
    isd_store_close(st);
}

static void revoke_and_list(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    struct isd_key a, b, found;
    char sa[ISD_KEY_SECRET_LEN + 1], sb[ISD_KEY_SECRET_LEN + 1];
    isd_test_key_create(st, "a", 0, 0, 0, false, &a, sa);
    isd_test_key_create(st, "b", 0, 0, 0, false, &b, sb);
    struct isd_error err;
    /* found (and so remembered) before the revocation */
    assert_int_equal(isd_store_key_find(st, sa, ISD_KEY_SECRET_LEN, &found), 0);
    int64_t before = (int64_t)time(NULL);
    assert_int_equal(isd_store_key_revoke(st, a.id, &err), 0);
    int64_t after = (int64_t)time(NULL);
    assert_int_equal(isd_store_key_find(st, sa, ISD_KEY_SECRET_LEN, &found), -ISD_E_AUTH_INVALID);
    /* the other key still works */
    assert_int_equal(isd_store_key_find(st, sb, ISD_KEY_SECRET_LEN, &found), 0);
    assert_string_equal(found.id, b.id);
    /* twice, unknown ids, empty: not found */
    assert_int_equal(isd_store_key_revoke(st, a.id, &err), -ISD_E_NOT_FOUND);
    assert_non_null(strstr(err.message, a.id));
    assert_int_equal(isd_store_key_revoke(st, "key_0000000000000000", &err), -ISD_E_NOT_FOUND);
    assert_int_equal(isd_store_key_revoke(st, "", &err), -ISD_E_NOT_FOUND);
    struct isd_key *keys;
    size_t n;
    assert_int_equal(isd_store_key_list(st, &keys, &n, &err), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].id, a.id) == 0) {
            assert_true(keys[i].revoked >= before && keys[i].revoked <= after);
        } else {
            assert_string_equal(keys[i].id, b.id);
            assert_int_equal(keys[i].revoked, 0);
        }
    }
    free(keys);
    /* revocation survives reopening */
    const char *dir = isd_store_dir(st);
    char path[4200];
    snprintf(path, sizeof path, "%s", dir);
    isd_store_close(st);
    st = isd_test_store_open(path);
    assert_int_equal(isd_store_key_find(st, sa, ISD_KEY_SECRET_LEN, &found), -ISD_E_AUTH_INVALID);
    assert_int_equal(isd_store_key_find(st, sb, ISD_KEY_SECRET_LEN, &found), 0);
    isd_store_close(st);
}

static void list_empty(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    struct isd_key *keys = (struct isd_key *)1;
    size_t n = 99;
    struct isd_error err;
    assert_int_equal(isd_store_key_list(st, &keys, &n, &err), 0);
    assert_int_equal(n, 0);
    free(keys);
    assert_int_equal(isd_store_key_count(st), 0);
    isd_store_close(st);
}

/* Keys are listed oldest first, also when created in the same second (created has one-second
 * resolution; the list orders by created, then rowid). */
static void list_oldest_first_with_fields(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    enum { N = 8 };
    struct isd_key made[N];
    for (int i = 0; i < N; i++) {
        char name[32], secret[ISD_KEY_SECRET_LEN + 1];
        snprintf(name, sizeof name, "key number %d", i);
        isd_test_key_create(st, name, i * 10, i * 100, i, i % 2 == 1, &made[i], secret);
    }
    struct isd_key *keys;
    size_t n;
    struct isd_error err;
    assert_int_equal(isd_store_key_list(st, &keys, &n, &err), 0);
    assert_int_equal(n, N);
    /* the same fields, whatever the order */
    for (int i = 0; i < N; i++) {
        const struct isd_key *k = NULL;
        for (size_t j = 0; j < n; j++)
            if (strcmp(keys[j].id, made[i].id) == 0)
                k = &keys[j];
        assert_non_null(k);
        assert_string_equal(k->name, made[i].name);
        assert_int_equal(k->rpm, i * 10);
        assert_int_equal(k->ipm, i * 100);
        assert_int_equal(k->max_concurrent, i);
        assert_int_equal(k->admin, i % 2 == 1);
        assert_int_equal(k->created, made[i].created);
        assert_int_equal(k->last_used, 0);
        assert_int_equal(k->revoked, 0);
    }
    /* oldest first: the order they were created in */
    int wrong = -1;
    char msg[200] = "";
    for (int i = 0; i < N && wrong < 0; i++)
        if (strcmp(keys[i].id, made[i].id) != 0) {
            wrong = i;
            snprintf(msg, sizeof msg, "list position %d holds \"%s\"", i, keys[i].name);
        }
    free(keys);
    isd_store_close(st);
    if (wrong >= 0)
        fail_msg("%s", msg);
}

static void long_name_truncated_not_overrun(void **state)
{
    (void)state;
    struct isd_store *st = isd_test_store_open(isd_test_tmpdir());
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    struct isd_key key, found;
    char secret[ISD_KEY_SECRET_LEN + 1];
    isd_test_key_create(st, name, 0, 0, 0, false, &key, secret);
    assert_int_equal(strlen(key.name), sizeof key.name - 1);
    assert_int_equal(isd_store_key_find(st, secret, ISD_KEY_SECRET_LEN, &found), 0);
    assert_string_equal(found.name, key.name);
    isd_store_close(st);
}

static void count_includes_revoked_and_other_connections(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *a = isd_test_store_open(dir);
    struct isd_store *b = isd_test_store_open(dir);
    assert_int_equal(isd_store_key_count(a), 0);
    assert_int_equal(isd_store_key_count(b), 0);
    struct isd_key k1, k2, found;
    char s1[ISD_KEY_SECRET_LEN + 1], s2[ISD_KEY_SECRET_LEN + 1];
    isd_test_key_create(a, "one", 0, 0, 0, false, &k1, s1);
    assert_int_equal(isd_store_key_count(a), 1);
    /* b counted before (cached): it still sees the new key, and can use it */
    assert_int_equal(isd_store_key_count(b), 1);
    assert_int_equal(isd_store_key_find(b, s1, ISD_KEY_SECRET_LEN, &found), 0);
    isd_test_key_create(b, "two", 0, 0, 0, false, &k2, s2);
    assert_int_equal(isd_store_key_count(b), 2);
    assert_int_equal(isd_store_key_count(a), 2);
    /* b has found k2 (and may remember it) before a revokes it */
    assert_int_equal(isd_store_key_find(b, s2, ISD_KEY_SECRET_LEN, &found), 0);
    assert_int_equal(isd_store_key_find(a, s2, ISD_KEY_SECRET_LEN, &found), 0);
    /* revoking all of them does not bring the count to 0 */
    struct isd_error err;
    assert_int_equal(isd_store_key_revoke(a, k1.id, &err), 0);
    assert_int_equal(isd_store_key_revoke(a, k2.id, &err), 0);
    assert_int_equal(isd_store_key_count(a), 2);
    assert_int_equal(isd_store_key_count(b), 2);
    /* both see the revocation at once */
    assert_int_equal(isd_store_key_find(b, s2, ISD_KEY_SECRET_LEN, &found), -ISD_E_AUTH_INVALID);
    assert_int_equal(isd_store_key_find(a, s2, ISD_KEY_SECRET_LEN, &found), -ISD_E_AUTH_INVALID);
    assert_int_equal(isd_store_key_find(b, s1, ISD_KEY_SECRET_LEN, &found), -ISD_E_AUTH_INVALID);
    /* other writes by a do not confuse b's cache */
    struct isd_usage_row row = {
        .time_ms = 1, .request_id = "req_1", .endpoint = "generations", .status = 200};
    isd_test_usage_insert(a, &row, 1);
    assert_int_equal(isd_store_key_count(b), 2);
    struct isd_key k3;
    char s3[ISD_KEY_SECRET_LEN + 1];
    isd_test_key_create(a, "three", 0, 0, 0, false, &k3, s3);
    assert_int_equal(isd_store_key_count(b), 3);
    isd_store_close(a);
    isd_store_close(b);
    /* and after reopening */
    a = isd_test_store_open(dir);
    assert_int_equal(isd_store_key_count(a), 3);
    isd_store_close(a);
}

static void upgrade_from_v1_keeps_images(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    /* a version 1 database as imagesd 1 left it: the images table only */
    isd_test_sql_exec(dir,
                      "CREATE TABLE images (id TEXT PRIMARY KEY, ext TEXT NOT NULL, "
                      "bytes INTEGER NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL, "
                      "request_id TEXT);"
                      "CREATE INDEX images_expires ON images(expires);"
                      "INSERT INTO images VALUES "
                      "('img_00000000000000000000000000000001', 'png', 10, 1, 4000000000, 'req_a'),"
                      "('img_00000000000000000000000000000002', 'jpg', 20, 1, 4000000000, 'req_b'),"
                      "('img_00000000000000000000000000000003', 'webp', 30, 1, 5, NULL);"
                      "PRAGMA user_version = 1;");
    assert_int_equal(isd_test_schema_version(dir), 1);
    struct isd_store *st = isd_test_store_open(dir);
    assert_int_equal(isd_test_schema_version(dir), ISD_STORE_SCHEMA_VERSION);
    assert_int_equal(isd_store_image_count(st), 3);
    /* the new tables work */
    assert_int_equal(isd_store_key_count(st), 0);
    struct isd_key key, found;
    char secret[ISD_KEY_SECRET_LEN + 1];
    isd_test_key_create(st, "after upgrade", 0, 0, 0, false, &key, secret);
    assert_int_equal(isd_store_key_find(st, secret, ISD_KEY_SECRET_LEN, &found), 0);
    struct isd_error err;
    struct isd_usage_row row = {
        .time_ms = 1000, .request_id = "req_c", .endpoint = "edits", .status = 200, .n = 1};
    snprintf(row.key_id, sizeof row.key_id, "%s", key.id);
    isd_test_usage_insert(st, &row, 1);
    /* the old rows are still swept as before */
    int deleted = 0;
    assert_int_equal(isd_store_sweep(st, 100, &deleted, &err), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(isd_store_image_count(st), 2);
    isd_store_close(st);
    /* reopening does not migrate again */
    st = isd_test_store_open(dir);
    assert_int_equal(isd_test_schema_version(dir), ISD_STORE_SCHEMA_VERSION);
    assert_int_equal(isd_store_key_count(st), 1);
    assert_int_equal(isd_store_image_count(st), 2);
    isd_store_close(st);
}

static void newer_schema_refused_clearly(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    isd_store_close(st);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", ISD_STORE_SCHEMA_VERSION + 1);
    isd_test_sql_exec(dir, sql);
    struct isd_error err;
    memset(&err, 0, sizeof err);
    st = isd_store_open(dir, &err);
    isd_store_close(st);
    assert_null(st);
    assert_int_equal(err.id, ISD_E_IO);
    char want[64];
    snprintf(want, sizeof want, "schema version %d", ISD_STORE_SCHEMA_VERSION + 1);
    if (!strstr(err.message, want) || !strstr(err.message, "newer") || !strstr(err.message, dir))
        fail_msg("message: %s", err.message);
    /* left as it was */
    assert_int_equal(isd_test_schema_version(dir), ISD_STORE_SCHEMA_VERSION + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_and_id_shapes),
        cmocka_unit_test(secret_not_stored_only_its_hash),
        cmocka_unit_test(find_by_exact_secret_only),
        cmocka_unit_test(many_keys_found_and_revoked),
        cmocka_unit_test(revoke_and_list),
        cmocka_unit_test(list_empty),
        cmocka_unit_test(list_oldest_first_with_fields),
        cmocka_unit_test(long_name_truncated_not_overrun),
        cmocka_unit_test(count_includes_revoked_and_other_connections),
        cmocka_unit_test(upgrade_from_v1_keeps_images),
        cmocka_unit_test(newer_schema_refused_clearly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
