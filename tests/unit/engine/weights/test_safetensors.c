/* The safetensors reader: valid files, and every kind of broken header (engine-notes 6, 10.7). */
#include "support/test.h"

#include "engine/weights/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* 8-byte length + header + `data_len` bytes of data (byte i = i & 0xff). Caller frees. */
static unsigned char *make(const char *header, size_t data_len, size_t *len)
{
    size_t n = strlen(header);
    unsigned char *b = malloc(8 + n + data_len + 1);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    for (size_t i = 0; i < data_len; i++)
        b[8 + n + i] = (unsigned char)i;
    *len = 8 + n + data_len;
    return b;
}

/* Parses `header` + data and expects `code` with `needle` in the message (when code < 0). */
static void expect(const char *header, size_t data_len, int code, const char *needle)
{
    size_t len;
    unsigned char *b = make(header, data_len, &len);
    struct isd_wt_st *st = NULL;
    struct isd_eng_error err = {0};
    int rc = isd_wt_st_parse(b, len, "t.safetensors", &st, &err);
    if (rc != code || (code < 0 && !strstr(err.msg, needle)))
        fail_msg("header %s: rc %d (want %d), message \"%s\" (want \"%s\")", header, rc, code,
                 err.msg, needle ? needle : "");
    if (code < 0) {
        assert_null(st);
        assert_int_equal(err.code, code);
        assert_non_null(strstr(err.msg, "t.safetensors")); /* names the file */
    }
    isd_wt_st_free(st);
    free(b);
}

#define T8 "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void valid_file(void **state)
{
    (void)state;
    const char *h = "{\"__metadata__\":{\"format\":\"pt\",\"sdc.num_heads\":\"8\"},"
                    "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"ids\":{\"dtype\":\"I64\",\"shape\":[1,3],\"data_offsets\":[32,56]},"
                    "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[56,58]},"
                    "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[58,58]}}   ";
    size_t len;
    unsigned char *b = make(h, 58, &len);
    struct isd_wt_st *st;
    struct isd_eng_error err = {0};
    assert_int_equal(isd_wt_st_parse(b, len, NULL, &st, &err), 0);
    assert_int_equal(isd_wt_st_count(st), 5);
    const char *order[] = {"a", "b", "ids", "s", "z"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(isd_wt_st_at(st, i)->name, order[i]);
    assert_null(isd_wt_st_at(st, 5));
    const struct isd_wt_st_tensor *a = isd_wt_st_find(st, "a");
    assert_non_null(a);
    assert_int_equal(a->dtype, ISD_ENG_DT_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->shape[2], 1);
    assert_int_equal(a->numel, 6);
    assert_int_equal(a->nbytes, 24);
    assert_true(a->usable);
    size_t data0 = 8 + strlen(h);
    assert_ptr_equal(a->data, b + data0);
    const struct isd_wt_st_tensor *bt = isd_wt_st_find(st, "b");
    assert_ptr_equal(bt->data, b + data0 + 24);
    assert_int_equal(bt->offset, 24);
    assert_false(isd_wt_st_find(st, "ids")->usable);
    assert_int_equal(isd_wt_st_find(st, "ids")->dtype, ISD_ENG_DT_I64);
    const struct isd_wt_st_tensor *s = isd_wt_st_find(st, "s");
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    assert_int_equal(isd_wt_st_find(st, "z")->numel, 0);
    assert_null(isd_wt_st_find(st, "c"));
    assert_null(isd_wt_st_find(st, ""));
    assert_string_equal(isd_wt_st_meta(st, "format"), "pt");
    assert_string_equal(isd_wt_st_meta(st, "sdc.num_heads"), "8");
    assert_null(isd_wt_st_meta(st, "nope"));
    assert_int_equal(isd_wt_st_meta_count(st), 2);
    const char *v;
    assert_string_equal(isd_wt_st_meta_at(st, 0, &v), "format");
    assert_string_equal(v, "pt");
    assert_string_equal(isd_wt_st_label(st), "(memory)");
    isd_wt_st_free(st);
    isd_wt_st_free(NULL);
    free(b);
}

static void empty_and_minimal(void **state)
{
    (void)state;
    expect("{}", 0, 0, NULL);
    expect("{\"__metadata__\":{}}", 0, 0, NULL);
    expect("{\"a\":" T8 "}", 8, 0, NULL);
    expect("{}", 3, ISD_ENG_EFORMAT, "no tensor describes");
}

static void truncated_and_bad_length(void **state)
{
    (void)state;
    struct isd_wt_st *st;
    struct isd_eng_error err = {0};
    unsigned char small[7] = {2, 0, 0, 0, 0, 0, 0};
    assert_int_equal(isd_wt_st_parse(small, 7, "x", &st, &err), ISD_ENG_EFORMAT);
    assert_non_null(strstr(err.msg, "too short"));
    assert_int_equal(isd_wt_st_parse(small, 0, "x", &st, &err), ISD_ENG_EFORMAT);

    /* length beyond the file, and beyond 100 MB */
    unsigned char b[16] = {0};
    b[0] = 9;
    memcpy(b + 8, "{}      ", 8);
    assert_int_equal(isd_wt_st_parse(b, 16, "x", &st, &err), ISD_ENG_EFORMAT);
    assert_non_null(strstr(err.msg, "exceeds the file"));
    uint64_t big = ISD_WT_HEADER_MAX + 1ull;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(big >> (8 * i));
    assert_int_equal(isd_wt_st_parse(b, 16, "x", &st, &err), ISD_ENG_EFORMAT);
    assert_non_null(strstr(err.msg, "100000000-byte limit"));
    memset(b, 0xff, 8);
    assert_int_equal(isd_wt_st_parse(b, 16, "x", &st, &err), ISD_ENG_EFORMAT);
    /* zero-length header */
    memset(b, 0, 8);
    assert_int_equal(isd_wt_st_parse(b, 16, "x", &st, &err), ISD_ENG_EFORMAT);

    /* every truncation of a valid file fails cleanly */
    size_t len;
    unsigned char *full = make("{\"a\":" T8 ",\"b\":{\"dtype\":\"F16\",\"shape\":[3],"
                               "\"data_offsets\":[8,14]}}",
                               14, &len);
    assert_int_equal(isd_wt_st_parse(full, len, "x", &st, &err), 0);
    isd_wt_st_free(st);
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, full, cut);
        assert_int_equal(isd_wt_st_parse(p, cut, "x", &st, &err), ISD_ENG_EFORMAT);
        assert_null(st);
        free(p);
    }
    free(full);
}

static void bad_json(void **state)
{
    (void)state;
    expect("{\"a\":", 0, ISD_ENG_EFORMAT, "invalid JSON");
    expect("[1, 2]", 0, ISD_ENG_EFORMAT, "not a JSON object");
    expect("  {}", 0, ISD_ENG_EFORMAT, "not a JSON object");
    expect("{} x", 0, ISD_ENG_EFORMAT, "invalid JSON");
    expect("{\"a\":" T8 ",\"a\":" T8 "}", 8, ISD_ENG_EFORMAT, "duplicate");
    expect("{\"\xff\xfe\":" T8 "}", 8, ISD_ENG_EFORMAT, "invalid JSON"); /* not UTF-8 */
    expect("{\"a\\u0000\":" T8 "}", 8, ISD_ENG_EFORMAT, "invalid JSON"); /* NUL in a name */
    expect("{\"a\":[]}", 0, ISD_ENG_EFORMAT, "not an object");
    expect("{\"__metadata__\":{\"k\":1}}", 0, ISD_ENG_EFORMAT, "not a string");
    expect("{\"__metadata__\":[]}", 0, ISD_ENG_EFORMAT, "not an object");
}

static void bad_entries(void **state)
{
    (void)state;
    expect("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT,
           "unknown dtype");
    expect("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT,
           "not a string");
    expect("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT, "missing");
    expect("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT, "missing");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, ISD_ENG_EFORMAT, "missing");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
           ISD_ENG_EFORMAT, "unknown field");
    /* shape vs size */
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT,
           "span 8 bytes");
    expect("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT,
           "'a'");
    /* shapes */
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT,
           "non-negative integer");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT,
           "non-negative integer");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, ISD_ENG_EFORMAT,
           "not an array");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
           "\"data_offsets\":[0,8]}}",
           8, ISD_ENG_EFORMAT, "overflows");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8,
           ISD_ENG_EFORMAT, "byte size overflows");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8,
           ISD_ENG_EFORMAT, "invalid JSON"); /* beyond int64: jansson refuses it */
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
           ISD_ENG_EFORMAT, "9 dimensions");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, 0,
           NULL);
    /* offsets */
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, ISD_ENG_EFORMAT,
           "[begin, end]");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, ISD_ENG_EFORMAT,
           "begin <= end");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, ISD_ENG_EFORMAT,
           "begin <= end");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8, ISD_ENG_EFORMAT,
           "exceed the data buffer");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
           "\"data_offsets\":[9223372036854775800,9223372036854775807]}}",
           8, ISD_ENG_EFORMAT, "exceed the data buffer");
}

static void overlaps_and_holes(void **state)
{
    (void)state;
    expect("{\"a\":" T8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
           ISD_ENG_EFORMAT, "overlaps");
    expect("{\"a\":" T8 ",\"b\":" T8 "}", 8, ISD_ENG_EFORMAT, "overlaps"); /* same bytes */
    expect("{\"a\":" T8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8,
           ISD_ENG_EFORMAT, "overlaps"); /* empty tensor inside another */
    expect("{\"a\":" T8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16,
           ISD_ENG_EFORMAT, "hole of 4 bytes");
    expect("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, ISD_ENG_EFORMAT,
           "hole of 4 bytes");
    expect("{\"a\":" T8 "}", 12, ISD_ENG_EFORMAT, "4 bytes after the last tensor");
    /* empty tensors at the start, in between and at the end are fine */
    expect("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":" T8
           ",\"f\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}",
           8, 0, NULL);
}

static void open_errors(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    char path[4200];
    struct isd_wt_st *st;
    struct isd_eng_error err = {0};
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    assert_int_equal(isd_wt_st_open(path, &st, &err), ISD_ENG_EIO);
    assert_non_null(strstr(err.msg, "none.safetensors"));
    assert_int_equal(isd_wt_st_open(dir, &st, &err), ISD_ENG_EIO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(isd_wt_st_open(path, &st, &err), ISD_ENG_EFORMAT);
    assert_non_null(strstr(err.msg, "too short"));
    /* a valid file opens, maps, and its data reads back */
    size_t len;
    unsigned char *b = make("{\"a\":" T8 "}", 8, &len);
    f = fopen(path, "wb");
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
    assert_int_equal(isd_wt_st_open(path, &st, &err), 0);
    assert_string_equal(isd_wt_st_label(st), path);
    assert_memory_equal(isd_wt_st_find(st, "a")->data, b + len - 8, 8);
    isd_wt_st_free(st);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_file),
        cmocka_unit_test(empty_and_minimal),
        cmocka_unit_test(truncated_and_bad_length),
        cmocka_unit_test(bad_json),
        cmocka_unit_test(bad_entries),
        cmocka_unit_test(overlaps_and_holes),
        cmocka_unit_test(open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
