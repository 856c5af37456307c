/*
 * store: the data directory (database, secret, images): creation and reopening, the secret's
 * checks, put_image and its index, the public-name check of image_path, the expiry sweep,
 * leftover temporary files and concurrent writers.
 */
#include "support/test.h"
#include "support/usagedb.h"

#include "store/store.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* <dir>/images/<name> */
static char *image_file(const char *dir, const char *name)
{
    static char buf[4400];
    snprintf(buf, sizeof buf, "%s/images/%s", dir, name);
    return buf;
}

static unsigned file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

static int read_whole(const char *path, unsigned char *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(out, 1, cap, f);
    fclose(f);
    return (int)n;
}

static bool is_image_id(const char *id)
{
    if (strlen(id) != ISD_STORE_ID_LEN || strncmp(id, "img_", 4) != 0)
        return false;
    for (int i = 4; i < ISD_STORE_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static void open_creates_everything(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/a/b/data", isd_test_tmpdir());
    struct isd_error err;
    struct isd_store *st = isd_store_open(dir, &err);
    if (!st)
        print_error("%s\n", err.message);
    assert_non_null(st);
    assert_string_equal(isd_store_dir(st), dir);
    assert_true(isd_test_file_size(isd_test_path_in(dir, "imagesd.db")) > 0);
    assert_int_equal(isd_test_file_size(isd_test_path_in(dir, "secret.key")), 32);
    assert_int_equal(file_mode(isd_test_path_in(dir, "secret.key")), 0600);
    assert_int_equal(file_mode(dir), 0700);
    struct stat sti;
    assert_int_equal(stat(isd_test_path_in(dir, "images"), &sti), 0);
    assert_true(S_ISDIR(sti.st_mode));

    unsigned char secret[64];
    assert_int_equal(read_whole(isd_test_path_in(dir, "secret.key"), secret, sizeof secret), 32);
    assert_memory_equal(isd_store_secret(st), secret, 32);
    static const uint8_t zero[32];
    assert_memory_not_equal(secret, zero, 32);
    assert_int_equal(isd_store_image_count(st), 0);
    isd_store_close(st);
    assert_int_equal(isd_test_schema_version(dir), ISD_STORE_SCHEMA_VERSION);
    isd_store_close(NULL);

    /* two data dirs get different secrets */
    char dir2[4300];
    snprintf(dir2, sizeof dir2, "%s2", dir);
    st = isd_store_open(dir2, &err);
    assert_non_null(st);
    assert_memory_not_equal(isd_store_secret(st), secret, 32);
    isd_store_close(st);
}

static void reopen_keeps_secret_schema_and_images(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_error err;
    struct isd_store *st = isd_test_store_open(dir);
    uint8_t secret[32];
    memcpy(secret, isd_store_secret(st), 32);
    char id[ISD_STORE_ID_LEN + 1];
    assert_int_equal(isd_store_put_image(st, "abc", 3, ISD_FMT_PNG, 2000000000, "req_1", id, &err),
                     0);
    isd_store_close(st);

    for (int round = 0; round < 2; round++) {
        st = isd_test_store_open(dir);
        assert_memory_equal(isd_store_secret(st), secret, 32);
        assert_int_equal(isd_store_image_count(st), 1);
        isd_store_close(st);
        assert_int_equal(isd_test_schema_version(dir), ISD_STORE_SCHEMA_VERSION);
    }
}

static void bad_secret_refused(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 10, 31, 33, 64, 100, 5000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const char *dir = isd_test_tmpdir();
        unsigned char junk[5000];
        memset(junk, 0xAB, sizeof junk);
        isd_test_write_file(isd_test_path_in(dir, "secret.key"), junk, sizes[i]);
        struct isd_error err;
        memset(&err, 0, sizeof err);
        struct isd_store *st = isd_store_open(dir, &err);
        if (st)
            print_error("a %zu-byte secret.key was accepted\n", sizes[i]);
        isd_store_close(st);
        assert_null(st);
        assert_int_equal(err.id, ISD_E_IO);
        assert_non_null(strstr(err.message, "secret.key"));
        /* the bad secret is left alone (links signed with it are not silently broken) */
        assert_int_equal(isd_test_file_size(isd_test_path_in(dir, "secret.key")), (long)sizes[i]);
    }
}

/* Regression test (fixed): a secret.key larger than 64 bytes is refused with a wrong reason:
 * "cannot read <dir>/secret.key: File exists". load_secret() (src/store/store.c) reads it into a
 * 64-byte isd_buf; the read fails with -ISD_E_TOO_LARGE, and the code then looks at `errno`, which
 * no failing call set: it still holds EEXIST from isd_mkdirs(). (Were it ever ENOENT, a new
 * secret would be written over the existing file.) Expected the same message as for other
 * wrong sizes: "...secret.key: expected 32 bytes; delete it to make a new secret...". */
static void oversized_secret_message(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    unsigned char junk[100];
    memset(junk, 0xAB, sizeof junk);
    isd_test_write_file(isd_test_path_in(dir, "secret.key"), junk, sizeof junk);
    struct isd_error err;
    memset(&err, 0, sizeof err);
    struct isd_store *st = isd_store_open(dir, &err);
    isd_store_close(st);
    assert_null(st);
    if (!strstr(err.message, "expected 32 bytes"))
        print_error("message: %s\n", err.message);
    assert_non_null(strstr(err.message, "expected 32 bytes"));
}

static void newer_schema_refused(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_error err;
    struct isd_store *st = isd_test_store_open(dir);
    isd_store_close(st);
    isd_test_sql_exec(dir, "PRAGMA user_version = 99");
    st = isd_store_open(dir, &err);
    isd_store_close(st);
    assert_null(st);
    assert_non_null(strstr(err.message, "schema version 99"));
}

static void open_refuses_a_file_as_dir(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    isd_test_write_file(isd_test_path_in(dir, "plain"), "x", 1);
    struct isd_error err;
    struct isd_store *st = isd_store_open(isd_test_path_in(dir, "plain"), &err);
    isd_store_close(st);
    assert_null(st);
    assert_int_equal(err.id, ISD_E_IO);
}

static void put_image_writes_and_indexes(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_error err;
    struct isd_store *st = isd_test_store_open(dir);
    static const struct {
        enum isd_format fmt;
        const char *ext;
    } fmts[] = {{ISD_FMT_PNG, "png"}, {ISD_FMT_JPEG, "jpg"}, {ISD_FMT_WEBP, "webp"}};
    char ids[3][ISD_STORE_ID_LEN + 1];
    unsigned char payload[3][777];
    for (int k = 0; k < 3; k++) {
        memset(payload[k], 'a' + k, sizeof payload[k]);
        memset(ids[k], '#', sizeof ids[k]);
        assert_int_equal(isd_store_put_image(st, payload[k], sizeof payload[k], fmts[k].fmt,
                                             2000000000, "req_x", ids[k], &err),
                         0);
        assert_true(is_image_id(ids[k]));
        char name[256], path[4600];
        snprintf(name, sizeof name, "%s.%s", ids[k], fmts[k].ext);
        assert_int_equal(isd_store_image_path(st, name, path, sizeof path), 0);
        assert_string_equal(path, image_file(dir, name));
        unsigned char back[1000];
        assert_int_equal(read_whole(path, back, sizeof back), 777);
        assert_memory_equal(back, payload[k], 777);
        assert_int_equal(file_mode(path), 0600);
        assert_int_equal(isd_store_image_count(st), k + 1);
    }
    assert_string_not_equal(ids[0], ids[1]);
    assert_string_not_equal(ids[1], ids[2]);
    /* an empty image and a NULL request id are fine */
    char id[ISD_STORE_ID_LEN + 1];
    assert_int_equal(isd_store_put_image(st, "", 0, ISD_FMT_PNG, 2000000000, NULL, id, &err), 0);
    assert_int_equal(isd_store_image_count(st), 4);
    /* no temporary file is left behind */
    DIR *d = opendir(isd_test_path_in(dir, "images"));
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        assert_null(strstr(e->d_name, ".tmp"));
    }
    closedir(d);
    assert_int_equal(files, 4);
    isd_store_close(st);
}

static void put_image_fails_cleanly(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_error err;
    struct isd_store *st = isd_test_store_open(dir);
    assert_int_equal(rmdir(isd_test_path_in(dir, "images")), 0);
    char id[ISD_STORE_ID_LEN + 1];
    assert_int_equal(isd_store_put_image(st, "abc", 3, ISD_FMT_PNG, 1, NULL, id, &err), -ISD_E_IO);
    assert_non_null(strstr(err.message, "images"));
    assert_int_equal(isd_store_image_count(st), 0);
    isd_store_close(st);
}

static void image_path_accepts_only_public_names(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_store *st = isd_test_store_open(dir);
    char path[4600];
    static const char *const good[] = {
        "img_0123456789abcdef0123456789abcdef.png",
        "img_0123456789abcdef0123456789abcdef.jpg",
        "img_ffffffffffffffffffffffffffffffff.webp",
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(isd_store_image_path(st, good[i], path, sizeof path), 0);
        assert_string_equal(path, image_file(dir, good[i]));
    }
    static const char *const bad[] = {
        "",
        "../secret.key",
        "../imagesd.db",
        "img_../../secret.key",
        "img_0123456789abcdef0123456789abcdef.png/../../secret.key",
        "img_0123456789abcdef0123456789abcdef.png/",
        "img_0123456789abcdef0123456789abcde.png",   /* 31 hex */
        "img_0123456789abcdef0123456789abcdef0.png", /* 33 hex */
        "img_0123456789ABCDEF0123456789abcdef.png",  /* upper case */
        "img_0123456789abcdeg0123456789abcdef.png",  /* not hex */
        "img_0123456789abcdef0123456789abcdef.PNG",
        "img_0123456789abcdef0123456789abcdef.jpeg",
        "img_0123456789abcdef0123456789abcdef.gif",
        "img_0123456789abcdef0123456789abcdef.png.tmp",
        "img_0123456789abcdef0123456789abcdef.png.tmp.abc",
        "img_0123456789abcdef0123456789abcdef",
        "img_0123456789abcdef0123456789abcdef.",
        "IMG_0123456789abcdef0123456789abcdef.png",
        "/img_0123456789abcdef0123456789abcdef.png",
        "./img_0123456789abcdef0123456789abcdef.png",
        "img_0123456789abcdef0123456789abcdef.png ",
        "img_0123456789abcdef0123456789abcdef..png",
        "secret.key",
        "imagesd.db",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(path, "untouched");
        if (isd_store_image_path(st, bad[i], path, sizeof path) != -ISD_E_NOT_FOUND) {
            print_error("'%s' accepted as %s\n", bad[i], path);
            fail();
        }
    }
    /* a path buffer too small is refused rather than cut */
    char small[16];
    assert_int_equal(isd_store_image_path(st, good[0], small, sizeof small), -ISD_E_NOT_FOUND);
    isd_store_close(st);
}

static void sweep_deletes_expired(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_error err;
    struct isd_store *st = isd_test_store_open(dir);
    const int64_t now = 1800000000;
    static const int64_t expiries[] = {now - 3600, now - 1, now, now + 1, now + 3600};
    char ids[5][ISD_STORE_ID_LEN + 1];
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            isd_store_put_image(st, "x", 1, ISD_FMT_WEBP, expiries[i], "r", ids[i], &err), 0);
    int deleted = -1;
    assert_int_equal(isd_store_sweep(st, now, &deleted, &err), 0);
    assert_int_equal(deleted, 2); /* expires < now; a link is still valid at its expiry */
    assert_int_equal(isd_store_image_count(st), 3);
    for (int i = 0; i < 5; i++) {
        char name[256], path[4600];
        snprintf(name, sizeof name, "%s.webp", ids[i]);
        assert_int_equal(isd_store_image_path(st, name, path, sizeof path), 0);
        bool exists = access(path, F_OK) == 0;
        assert_int_equal(exists, expiries[i] >= now);
    }
    /* nothing more to do */
    assert_int_equal(isd_store_sweep(st, now, &deleted, &err), 0);
    assert_int_equal(deleted, 0);
    /* a file already gone still has its row removed */
    char name[256], path[4600];
    snprintf(name, sizeof name, "%s.webp", ids[2]);
    assert_int_equal(isd_store_image_path(st, name, path, sizeof path), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(isd_store_sweep(st, now + 2, &deleted, &err), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(isd_store_image_count(st), 1);
    assert_int_equal(isd_store_sweep(st, INT64_MAX, &deleted, &err), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(isd_store_image_count(st), 0);
    isd_store_close(st);
}

static void leftover_temp_files_removed(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_error err;
    struct isd_store *st = isd_test_store_open(dir);
    char id[ISD_STORE_ID_LEN + 1];
    assert_int_equal(isd_store_put_image(st, "keep", 4, ISD_FMT_PNG, 2000000000, "r", id, &err), 0);
    isd_store_close(st);
    const char *images = isd_test_path_in(dir, "images");
    char kept[4600], tmp1[4600], tmp2[4600];
    snprintf(kept, sizeof kept, "%s/%s.png", images, id);
    snprintf(tmp1, sizeof tmp1, "%s/img_0123456789abcdef0123456789abcdef.png.tmp", images);
    snprintf(tmp2, sizeof tmp2, "%s/img_ffffffffffffffffffffffffffffffff.webp.tmp", images);
    isd_test_write_file(tmp1, "half", 4);
    isd_test_write_file(tmp2, "", 0);
    st = isd_test_store_open(dir);
    assert_int_equal(access(tmp1, F_OK), -1);
    assert_int_equal(access(tmp2, F_OK), -1);
    assert_int_equal(access(kept, F_OK), 0);
    assert_int_equal(isd_test_file_size(isd_test_path_in(dir, "secret.key")), 32);
    assert_int_equal(isd_store_image_count(st), 1);
    isd_store_close(st);
}

struct writer {
    struct isd_store *st;
    char ids[25][ISD_STORE_ID_LEN + 1];
    int failures;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 25; i++) {
        struct isd_error err;
        char payload[64];
        int n = snprintf(payload, sizeof payload, "payload %p %d", (void *)w, i);
        if (isd_store_put_image(w->st, payload, (size_t)n, ISD_FMT_JPEG, 2000000000 + i, "req",
                                w->ids[i], &err) < 0)
            w->failures++;
    }
    return NULL;
}

static void concurrent_put_image(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_error err;
    struct isd_store *st = isd_test_store_open(dir);
    static struct writer w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].st = st;
        assert_int_equal(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[i].failures, 0);
    assert_int_equal(isd_store_image_count(st), 100);
    /* all ids distinct, every file there */
    for (int a = 0; a < 100; a++) {
        const char *ia = w[a / 25].ids[a % 25];
        assert_true(is_image_id(ia));
        for (int b = a + 1; b < 100; b++)
            assert_string_not_equal(ia, w[b / 25].ids[b % 25]);
        char name[256], path[4600];
        snprintf(name, sizeof name, "%s.jpg", ia);
        assert_int_equal(isd_store_image_path(st, name, path, sizeof path), 0);
        assert_int_equal(access(path, F_OK), 0);
    }
    int deleted;
    assert_int_equal(isd_store_sweep(st, 2000000000 + 10, &deleted, &err), 0);
    assert_int_equal(deleted, 4 * 10);
    assert_int_equal(isd_store_image_count(st), 60);
    isd_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_creates_everything),
        cmocka_unit_test(reopen_keeps_secret_schema_and_images),
        cmocka_unit_test(bad_secret_refused),
        cmocka_unit_test(oversized_secret_message),
        cmocka_unit_test(newer_schema_refused),
        cmocka_unit_test(open_refuses_a_file_as_dir),
        cmocka_unit_test(put_image_writes_and_indexes),
        cmocka_unit_test(put_image_fails_cleanly),
        cmocka_unit_test(image_path_accepts_only_public_names),
        cmocka_unit_test(sweep_deletes_expired),
        cmocka_unit_test(leftover_temp_files_removed),
        cmocka_unit_test(concurrent_put_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
