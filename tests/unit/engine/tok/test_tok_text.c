/*
 * Text cleaning (html unescape, whitespace, lower) against Python's results recorded in
 * tests/goldens/engine/tok/tokens.json, UTF-8 handling, and the encode/sequence API.
 */
#include "support/test.h"

#include "engine/tok/tok.h"
#include "engine/tok/tok_int.h"
#include "support/clipvocab.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "tests/goldens/engine/tok/tokens.json"

static json_t *golden;
static struct isd_tok *tok; /* the small preset */

static int setup(void **state)
{
    (void)state;
    json_error_t je;
    golden = json_load_file(GOLDEN, JSON_ALLOW_NUL, &je);
    if (!golden)
        return -1;
    const char *dir = isd_test_tmpdir();
    struct isd_eng_error err = {0};
    char vocab[4200], merges[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    if (isd_cv_write(dir, ISD_CV_SMALL, 1, &err) < 0 || isd_tok_load(&tok, vocab, merges, &err) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    isd_tok_free(tok);
    json_decref(golden);
    return 0;
}

/* UTF-8 of the cleaned text; returns a malloc'd string and its length. */
static char *clean_utf8(const char *text, size_t len, size_t *out_len)
{
    uint32_t *cps = malloc((len + 1) * sizeof *cps), *out = malloc((2 * len + 1) * sizeof *out);
    assert_non_null(cps);
    assert_non_null(out);
    size_t n;
    assert_int_equal(isd_tok_utf8_decode(text, len, cps, &n), 0);
    size_t k = isd_tok_clean(cps, n, out);
    char *s = malloc(4 * k + 1);
    assert_non_null(s);
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        m += isd_tok_utf8_put(out[i], s + m);
    s[m] = '\0';
    free(cps);
    free(out);
    *out_len = m;
    return s;
}

static void cleaning_matches_python(void **state)
{
    (void)state;
    const json_t *text = json_object_get(golden, "text");
    const json_t *prompts = json_object_get(text, "prompts"),
                 *clean = json_object_get(text, "clean");
    assert_int_equal(json_array_size(prompts), json_array_size(clean));
    assert_true(json_array_size(prompts) >= 40);
    for (size_t i = 0; i < json_array_size(prompts); i++) {
        const json_t *p = json_array_get(prompts, i), *c = json_array_get(clean, i);
        size_t n;
        char *got = clean_utf8(json_string_value(p), json_string_length(p), &n);
        if (n != json_string_length(c) || memcmp(got, json_string_value(c), n) != 0)
            fail_msg("prompt %zu: cleaned to \"%s\", want \"%s\"", i, got, json_string_value(c));
        free(got);
    }
}

static void every_html5_entity(void **state)
{
    (void)state;
    const json_t *text = json_object_get(golden, "text");
    const json_t *in = json_object_get(text, "entities_in"),
                 *want = json_object_get(text, "entities_out");
    size_t len = json_string_length(in);
    uint32_t *cps = malloc(len * sizeof *cps), *tmp = malloc(len * sizeof *tmp);
    assert_non_null(cps);
    assert_non_null(tmp);
    size_t n;
    assert_int_equal(isd_tok_utf8_decode(json_string_value(in), len, cps, &n), 0);
    size_t k = isd_tok_html_unescape(cps, n, tmp);
    k = isd_tok_html_unescape(tmp, k, cps);
    char *got = malloc(4 * k + 1);
    assert_non_null(got);
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        m += isd_tok_utf8_put(cps[i], got + m);
    got[m] = '\0';
    const char *w = json_string_value(want);
    if (m != json_string_length(want) || memcmp(got, w, m) != 0) {
        size_t at = 0;
        while (at < m && got[at] == w[at])
            at++;
        fail_msg("entities differ at byte %zu: \"%.40s\" vs \"%.40s\"", at, got + at, w + at);
    }
    free(got);
    free(cps);
    free(tmp);
}

static void lower_matches_python_everywhere(void **state)
{
    (void)state;
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t c = 0; c < 0x110000; c++) {
        if (c >= 0xd800 && c < 0xe000)
            continue;
        uint32_t out[2];
        size_t k = isd_tok_lower(&c, 1, out);
        for (size_t i = 0; i < k; i++) {
            char b[4];
            size_t n = isd_tok_utf8_put(out[i], b);
            for (size_t j = 0; j < n; j++) {
                h ^= (unsigned char)b[j];
                h *= 0x100000001b3ull;
            }
        }
    }
    char hex[32];
    snprintf(hex, sizeof hex, "%016" PRIx64, h);
    assert_string_equal(
        hex, json_string_value(json_object_get(json_object_get(golden, "text"), "lower_fnv1a64")));
}

static void utf8_is_strict(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len, bad_at; /* 0: valid; else offset + 1 */
    } cases[] = {
        {"abc", 3, 0},
        {"\xc3\xa9", 2, 0},
        {"\xf0\x9f\x90\xb1", 4, 0},
        {"\xf4\x8f\xbf\xbf", 4, 0},
        {"a\xc0\x80", 3, 2},        /* overlong NUL */
        {"\xe0\x80\xaf", 3, 1},     /* overlong '/' */
        {"ab\xed\xa0\x80", 5, 3},   /* surrogate */
        {"\xf4\x90\x80\x80", 4, 1}, /* above U+10FFFF */
        {"\xe2\x82", 2, 1},         /* truncated */
        {"\x80", 1, 1},             /* lone continuation */
        {"\xf8\x88\x80\x80\x80", 5, 1},
        {"\xc3\x28", 2, 1},
    };
    uint32_t out[8];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        assert_int_equal(isd_tok_utf8_decode(cases[i].s, cases[i].len, out, &n), cases[i].bad_at);
    }
    struct isd_eng_error err = {0};
    size_t n;
    int32_t ids[8];
    assert_int_equal(isd_tok_encode(tok, "ok \xed\xa0\x80", 6, ids, 8, &n, &err), ISD_ENG_EINVAL);
    assert_non_null(strstr(err.msg, "byte 3"));
    assert_int_equal(n, 0);
}

static void limits_and_edges(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    size_t n = 99;
    char *big = malloc(ISD_TOK_TEXT_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', ISD_TOK_TEXT_MAX + 1);
    assert_int_equal(isd_tok_encode(tok, big, ISD_TOK_TEXT_MAX + 1, NULL, 0, &n, &err),
                     ISD_ENG_EINVAL);
    /* the largest prompts: one piece of 256 KiB letters, BPE in O(n log n) */
    assert_int_equal(isd_tok_encode(tok, big, ISD_TOK_TEXT_MAX, NULL, 0, &n, &err), 0);
    assert_true(n > 0 && n <= ISD_TOK_TEXT_MAX);
    for (size_t i = 0; i < ISD_TOK_TEXT_MAX; i++)
        big[i] = "photograph"[i % 10];
    assert_int_equal(isd_tok_encode(tok, big, ISD_TOK_TEXT_MAX, NULL, 0, &n, &err), 0);
    assert_true(n > 0 && n < ISD_TOK_TEXT_MAX / 2);
    /* a count-only call */
    assert_int_equal(isd_tok_encode(tok, "a cat", 5, NULL, 0, &n, &err), 0);
    assert_int_equal(n, 2);
    free(big);
    /* empty and blank prompts: BOS EOS pad... */
    int32_t seq[ISD_TOK_CONTEXT];
    size_t total = 9;
    assert_int_equal(isd_tok_encode_padded(tok, " \t\n", 3, 0, seq, &total, &err), 0);
    assert_int_equal(total, 0);
    assert_int_equal(seq[0], isd_tok_bos(tok));
    assert_int_equal(seq[1], isd_tok_eos(tok));
    for (int i = 2; i < ISD_TOK_CONTEXT; i++)
        assert_int_equal(seq[i], 0);
    assert_int_equal(isd_tok_encode_padded(tok, "", 0, ISD_TOK_PAD_EOS, seq, NULL, &err), 0);
    for (int i = 1; i < ISD_TOK_CONTEXT; i++)
        assert_int_equal(seq[i], isd_tok_eos(tok));
}

static void sequences_and_chunks(void **state)
{
    (void)state;
    int32_t ids[200], seq[ISD_TOK_CONTEXT];
    for (int i = 0; i < 200; i++)
        ids[i] = 1000 + i;
    isd_tok_sequence(tok, ids, 200, 7, seq);
    assert_int_equal(seq[0], isd_tok_bos(tok));
    for (int i = 0; i < ISD_TOK_CHUNK; i++)
        assert_int_equal(seq[1 + i], ids[i]);
    assert_int_equal(seq[76], isd_tok_eos(tok));
    isd_tok_sequence(tok, ids + 150, 50, 7, seq);
    assert_int_equal(seq[50], ids[199]);
    assert_int_equal(seq[51], isd_tok_eos(tok));
    assert_int_equal(seq[52], 7);
    assert_int_equal(seq[76], 7);
    assert_int_equal(isd_tok_chunk_count(0), 1);
    assert_int_equal(isd_tok_chunk_count(75), 1);
    assert_int_equal(isd_tok_chunk_count(76), 2);
    assert_int_equal(isd_tok_chunk_count(150), 2);
    assert_int_equal(isd_tok_chunk_count(151), 3);
    /* a long prompt truncated in the padded form, whole in the raw form */
    const char *p = "one two three four five six seven eight nine ten eleven twelve thirteen";
    char text[2048] = "";
    for (int i = 0; i < 8; i++)
        strcat(text, p), strcat(text, ", ");
    struct isd_eng_error err = {0};
    size_t n, total;
    int32_t raw[400];
    assert_int_equal(isd_tok_encode(tok, text, strlen(text), raw, 400, &n, &err), 0);
    assert_true(n > 75 && n <= 400);
    assert_int_equal(isd_tok_encode_padded(tok, text, strlen(text), 0, seq, &total, &err), 0);
    assert_int_equal(total, n);
    assert_memory_equal(seq + 1, raw, ISD_TOK_CHUNK * sizeof *raw);
    assert_int_equal(seq[76], isd_tok_eos(tok));
}

static void ids_and_strings(void **state)
{
    (void)state;
    size_t len;
    assert_int_equal(isd_tok_vocab_size(tok), 2048);
    assert_int_equal(isd_tok_id(tok, "<|startoftext|>", 15), isd_tok_bos(tok));
    assert_string_equal(isd_tok_token(tok, isd_tok_eos(tok), &len), "<|endoftext|>");
    assert_int_equal(len, 13);
    assert_int_equal(isd_tok_id(tok, "a</w>", 5), 256 + 'a' - '!');
    assert_string_equal(isd_tok_token(tok, 0, NULL), "!");
    assert_null(isd_tok_token(tok, -1, NULL));
    assert_null(isd_tok_token(tok, 2048, NULL));
    assert_int_equal(isd_tok_id(tok, "no such token", 13), -1);
    /* a space byte is U+0120, newline U+010A */
    assert_true(isd_tok_id(tok, "\xc4\xa0", 2) >= 0);
    assert_true(isd_tok_id(tok, "\xc4\x8a</w>", 6) >= 256);
}

struct worker {
    const char *text;
    int32_t ids[256];
    size_t n;
    int rc;
};

static void *encode_many(void *arg)
{
    struct worker *w = arg;
    struct isd_eng_error err = {0};
    for (int i = 0; i < 200 && w->rc == 0; i++)
        w->rc = isd_tok_encode(tok, w->text, strlen(w->text), w->ids, 256, &w->n, &err);
    return NULL;
}

/* The tokenizer is read-only after loading: two threads can encode at once. */
static void concurrent_encoding(void **state)
{
    (void)state;
    struct worker a = {.text = "caf\xc3\xa9 &amp; \xe6\x9d\xb1\xe4\xba\xac, highly detailed, 8k"};
    struct worker b = {.text = "ΟΔΥΣΣΕΥΣ the quick brown fox (masterpiece:1.2)"};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, encode_many, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, encode_many, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    struct worker c = a;
    encode_many(&c);
    assert_int_equal(c.n, a.n);
    assert_memory_equal(c.ids, a.ids, a.n * sizeof *a.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cleaning_matches_python),
        cmocka_unit_test(every_html5_entity),
        cmocka_unit_test(lower_matches_python_everywhere),
        cmocka_unit_test(utf8_is_strict),
        cmocka_unit_test(limits_and_edges),
        cmocka_unit_test(sequences_and_chunks),
        cmocka_unit_test(ids_and_strings),
        cmocka_unit_test(concurrent_encoding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
