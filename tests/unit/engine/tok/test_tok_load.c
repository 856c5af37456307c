/* Loading tokenizer files: valid variants load, malformed ones fail with a clear error. */
#include "support/test.h"

#include "engine/tok/tok.h"
#include "support/clipvocab.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[4096], good_vocab[4200], good_merges[4200];
static char *merges_text; /* the small preset's merges.txt */
static size_t merges_len;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", isd_test_tmpdir());
    struct isd_eng_error err = {0};
    if (isd_cv_write(dir, ISD_CV_SMALL, 3, &err) < 0)
        return -1;
    snprintf(good_vocab, sizeof good_vocab, "%s/vocab.json", dir);
    snprintf(good_merges, sizeof good_merges, "%s/merges.txt", dir);
    merges_text = slurp(good_merges, &merges_len);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(merges_text);
    return 0;
}

/* Loads (vocab, merges); expects `code`, and `needle` in the message when failing. */
static void expect_load(const char *vocab, const char *merges, int code, const char *needle)
{
    struct isd_tok *tok = (struct isd_tok *)1;
    struct isd_eng_error err = {0};
    int rc = isd_tok_load(&tok, vocab, merges, &err);
    if (rc != code)
        fail_msg("load: %d (%s), want %d", rc, err.msg, code);
    if (code == 0) {
        assert_non_null(tok);
        isd_tok_free(tok);
        return;
    }
    assert_null(tok);
    assert_int_equal(err.code, code);
    if (needle && !strstr(err.msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

/* Writes a vocab.json made from the good one by `edit` and tries it. */
static void vocab_case(void (*edit)(json_t *), int code, const char *needle)
{
    json_error_t je;
    json_t *v = json_load_file(good_vocab, 0, &je);
    assert_non_null(v);
    edit(v);
    char path[4300];
    snprintf(path, sizeof path, "%s/edited-vocab.json", dir);
    assert_int_equal(json_dump_file(v, path, 0), 0);
    json_decref(v);
    expect_load(path, good_merges, code, needle);
}

static void merges_case(const char *text, int code, const char *needle)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/edited-merges.txt", dir);
    spit(path, text, strlen(text));
    expect_load(good_vocab, path, code, needle);
}

static void drop_eos(json_t *v)
{
    json_object_del(v, "<|endoftext|>");
}

static void drop_byte(json_t *v)
{
    json_object_del(v, "\xc4\x8a"); /* U+010A: the byte 0x0a (newline) */
}

static void dup_id(json_t *v)
{
    json_object_set_new(v, "zzz-not-a-token", json_integer(5));
}

static void string_id(json_t *v)
{
    json_object_set_new(v, "x!", json_string("7"));
}

static void negative_id(json_t *v)
{
    json_object_set_new(v, "x!", json_integer(-1));
}

static void huge_id(json_t *v)
{
    json_object_set_new(v, "x!", json_integer(ISD_TOK_VOCAB_MAX));
}

static void sparse_id(json_t *v)
{
    json_object_set_new(v, "x!", json_integer(100000)); /* a gap is fine */
}

static void clear_all(json_t *v)
{
    json_object_clear(v);
}

static void good_files_load(void **state)
{
    (void)state;
    expect_load(good_vocab, good_merges, 0, NULL);
    vocab_case(sparse_id, 0, NULL);
}

static void missing_files(void **state)
{
    (void)state;
    expect_load("/nonexistent/vocab.json", good_merges, ISD_ENG_EIO, "/nonexistent/vocab.json");
    expect_load(good_vocab, "/nonexistent/merges.txt", ISD_ENG_EIO, "merges.txt");
}

static void malformed_vocab(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/bad-vocab.json", dir);
    spit(path, "{\"a\": 1,\n \"b\": }", 16);
    expect_load(path, good_merges, ISD_ENG_EFORMAT, "bad-vocab.json:2:");
    spit(path, "[1, 2]", 6);
    expect_load(path, good_merges, ISD_ENG_EFORMAT, "not a JSON object");
    spit(path, "{\"a\": 1, \"a\": 2}", 16);
    expect_load(path, good_merges, ISD_ENG_EFORMAT, "duplicate");
    spit(path, "", 0);
    expect_load(path, good_merges, ISD_ENG_EFORMAT, "bad-vocab.json");
    spit(path, "{\"a\\u0000b\": 1}", 15);
    expect_load(path, good_merges, ISD_ENG_EFORMAT, "bad-vocab.json");
    vocab_case(drop_eos, ISD_ENG_EFORMAT, "<|endoftext|>");
    vocab_case(drop_byte, ISD_ENG_EFORMAT, "byte 0x0a");
    vocab_case(dup_id, ISD_ENG_EFORMAT, "id 5 is given to");
    vocab_case(string_id, ISD_ENG_EFORMAT, "\"x!\": id must be an integer");
    vocab_case(negative_id, ISD_ENG_EFORMAT, "id must be an integer");
    vocab_case(huge_id, ISD_ENG_EFORMAT, "id must be an integer");
    vocab_case(clear_all, ISD_ENG_EFORMAT, "empty vocabulary");
}

static void oversized_file(void **state)
{
    (void)state;
    char path[4300];
    snprintf(path, sizeof path, "%s/huge.json", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fseek(f, ISD_TOK_FILE_MAX, SEEK_SET), 0);
    fputc(' ', f);
    fclose(f);
    expect_load(path, good_merges, ISD_ENG_EFORMAT, "larger than");
    expect_load(good_vocab, path, ISD_ENG_EFORMAT, "larger than");
}

/* The small merges.txt with its line `lineno` (1-based) replaced by `line`. */
static char *with_line(size_t lineno, const char *line)
{
    size_t cap = merges_len + strlen(line) + 2, k = 0, cur = 1;
    char *out = malloc(cap);
    assert_non_null(out);
    for (size_t i = 0; i < merges_len;) {
        const char *nl = memchr(merges_text + i, '\n', merges_len - i);
        size_t n = nl ? (size_t)(nl - (merges_text + i)) : merges_len - i;
        if (cur == lineno) {
            memcpy(out + k, line, strlen(line));
            k += strlen(line);
        } else {
            memcpy(out + k, merges_text + i, n);
            k += n;
        }
        out[k++] = '\n';
        i += n + 1;
        cur++;
    }
    out[k] = '\0';
    return out;
}

static void malformed_merges(void **state)
{
    (void)state;
    static const struct {
        size_t line;
        const char *text, *needle;
    } cases[] = {
        {1, "version 0.2", ":1: expected a \"#version\""},
        {5, "ab", ":5: expected \"a b\""},
        {6, "a  b", ":6: expected \"a b\""},
        {7, "a b c", ":7: expected \"a b\""},
        {8, " a", ":8: expected \"a b\""},
        {9, "a ", ":9: expected \"a b\""},
        {10, "a\tb", ":10: expected \"a b\""},
        {11, "", ":11: expected \"a b\""},
        {12, "qqq# zz", ":12: \"qqq#\" is not in the vocabulary"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = with_line(cases[i].line, cases[i].text);
        merges_case(text, ISD_ENG_EFORMAT, cases[i].needle);
        free(text);
    }
    /* both parts known, their concatenation not */
    struct isd_tok *tok;
    struct isd_eng_error err = {0};
    assert_int_equal(isd_tok_load(&tok, good_vocab, good_merges, &err), 0);
    char line[16] = "", joined[16];
    for (int x = 'A'; x <= 'Z' && !line[0]; x++)
        for (int y = 'A'; y <= 'Z' && !line[0]; y++) {
            snprintf(joined, sizeof joined, "%c%c", x, y);
            if (isd_tok_id(tok, joined, 2) < 0)
                snprintf(line, sizeof line, "%c %c", x, y);
        }
    isd_tok_free(tok);
    assert_true(line[0] != '\0');
    char needle[64];
    snprintf(needle, sizeof needle, ":13: \"%c%c\" is not in the vocabulary", line[0], line[2]);
    char *bad = with_line(13, line);
    merges_case(bad, ISD_ENG_EFORMAT, needle);
    free(bad);
    /* a merge repeated later: the message names both lines */
    const char *second = strchr(merges_text, '\n') + 1;
    const char *end = strchr(second, '\n');
    char first_merge[256];
    snprintf(first_merge, sizeof first_merge, "%.*s", (int)(end - second), second);
    char *text = with_line(20, first_merge);
    merges_case(text, ISD_ENG_EFORMAT, ":20: duplicate merge");
    assert_non_null(strstr(text, first_merge));
    free(text);
    merges_case("", ISD_ENG_EFORMAT, "empty file");
    merges_case("\n\n", ISD_ENG_EFORMAT, "empty file");
    merges_case("#version: 0.2\nab\0cd\n", ISD_ENG_EFORMAT, "expected"); /* cut at NUL by strlen */
    char path[4300];
    snprintf(path, sizeof path, "%s/nul-merges.txt", dir);
    spit(path, "#version: 0.2\na\0b\n", 18);
    expect_load(good_vocab, path, ISD_ENG_EFORMAT, ":2: NUL byte");
}

/* CRLF line ends, trailing blank lines and a header-only file are accepted, like HF. */
static void lenient_merges(void **state)
{
    (void)state;
    merges_case("#version: 0.2\n", 0, NULL);
    merges_case("#version: 0.2", 0, NULL);
    size_t cap = merges_len * 2 + 16, k = 0;
    char *crlf = malloc(cap);
    assert_non_null(crlf);
    for (size_t i = 0; i < merges_len; i++) {
        if (merges_text[i] == '\n')
            crlf[k++] = '\r';
        crlf[k++] = merges_text[i];
    }
    memcpy(crlf + k, "\r\n\r\n\n", 6);
    merges_case(crlf, 0, NULL);
    free(crlf);

    /* CRLF gives the same tokens as LF */
    struct isd_tok *a, *b;
    struct isd_eng_error err = {0};
    char path[4300];
    snprintf(path, sizeof path, "%s/edited-merges.txt", dir);
    assert_int_equal(isd_tok_load(&a, good_vocab, good_merges, &err), 0);
    assert_int_equal(isd_tok_load(&b, good_vocab, path, &err), 0);
    const char *p = "the quick brown fox, highly detailed portrait";
    int32_t ia[64], ib[64];
    size_t na, nb;
    assert_int_equal(isd_tok_encode(a, p, strlen(p), ia, 64, &na, &err), 0);
    assert_int_equal(isd_tok_encode(b, p, strlen(p), ib, 64, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    isd_tok_free(a);
    isd_tok_free(b);
    isd_tok_free(NULL);
}

/* Like HF, merges past the first 48894 are ignored (the full preset has exactly that many). */
static void merges_beyond_the_limit_are_ignored(void **state)
{
    (void)state; /* runs last: a new tmpdir removes the small preset's */
    const char *d = isd_test_tmpdir();
    struct isd_eng_error err = {0};
    assert_int_equal(isd_cv_write(d, ISD_CV_FULL, 0, &err), 0);
    char vocab[4200], merges[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", d);
    snprintf(merges, sizeof merges, "%s/merges.txt", d);
    FILE *f = fopen(merges, "ab");
    assert_non_null(f);
    fputs("this line is not even a merge\n", f);
    fclose(f);
    expect_load(vocab, merges, 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_files_load),
        cmocka_unit_test(missing_files),
        cmocka_unit_test(malformed_vocab),
        cmocka_unit_test(oversized_file),
        cmocka_unit_test(malformed_merges),
        cmocka_unit_test(lenient_merges),
        cmocka_unit_test(merges_beyond_the_limit_are_ignored),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
