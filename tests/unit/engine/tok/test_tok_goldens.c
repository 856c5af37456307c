/*
 * The tokenizer against tests/goldens/engine/tok/tokens.json, made by
 * tests/reference/gen_tokenizer.py with a Python port of openai/CLIP's simple_tokenizer on
 * the same synthetic vocabularies (written here again by isd_cv_write).
 */
#include "support/test.h"

#include "engine/tok/tok.h"
#include "support/clipvocab.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "tests/goldens/engine/tok/tokens.json"

static json_t *golden;

static int setup(void **state)
{
    (void)state;
    json_error_t je;
    golden = json_load_file(GOLDEN, JSON_ALLOW_NUL, &je);
    if (!golden)
        fprintf(stderr, "%s:%d: %s\n", GOLDEN, je.line, je.text);
    return golden ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(golden);
    return 0;
}

static uint64_t fnv1a64_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint64_t h = 0xcbf29ce484222325ull;
    int c;
    while ((c = getc(f)) != EOF) {
        h ^= (unsigned char)c;
        h *= 0x100000001b3ull;
    }
    fclose(f);
    return h;
}

/* Writes the vocabulary a golden section was made with and checks it is byte-identical. */
static struct isd_tok *load_vocab(const json_t *section)
{
    const char *size = json_string_value(json_object_get(section, "size"));
    json_int_t seed = json_integer_value(json_object_get(section, "seed"));
    assert_non_null(size);
    const char *dir = isd_test_tmpdir();
    struct isd_eng_error err = {0};
    enum isd_cv_size preset = strcmp(size, "small") == 0 ? ISD_CV_SMALL : ISD_CV_FULL;
    assert_int_equal(isd_cv_write(dir, preset, (uint64_t)seed, &err), 0);
    char vocab[4200], merges[4200], hex[32];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    snprintf(hex, sizeof hex, "%016" PRIx64, fnv1a64_file(vocab));
    if (strcmp(hex, json_string_value(json_object_get(section, "vocab_fnv1a64"))) != 0)
        fail_msg("the %s vocab.json differs from the goldens' (regenerate them with "
                 "tests/reference/gen_tokenizer.py)",
                 size);
    snprintf(hex, sizeof hex, "%016" PRIx64, fnv1a64_file(merges));
    if (strcmp(hex, json_string_value(json_object_get(section, "merges_fnv1a64"))) != 0)
        fail_msg("the %s merges.txt differs from the goldens'", size);
    struct isd_tok *tok;
    if (isd_tok_load(&tok, vocab, merges, &err) < 0)
        fail_msg("load: %s", err.msg);
    assert_int_equal(isd_tok_vocab_size(tok), isd_cv_vocab_size(preset));
    assert_int_equal(isd_tok_vocab_size(tok),
                     json_integer_value(json_object_get(section, "vocab_size")));
    assert_int_equal(isd_tok_bos(tok), json_integer_value(json_object_get(section, "bos")));
    assert_int_equal(isd_tok_eos(tok), json_integer_value(json_object_get(section, "eos")));
    return tok;
}

static void expect_ids(const char *what, size_t idx, const json_t *want, const int32_t *got,
                       size_t n)
{
    if (json_array_size(want) != n)
        fail_msg("case %zu %s: %zu ids, want %zu", idx, what, n, json_array_size(want));
    for (size_t i = 0; i < n; i++) {
        json_int_t w = json_integer_value(json_array_get(want, i));
        if (w != got[i])
            fail_msg("case %zu %s: id %zu is %d, want %d", idx, what, i, (int)got[i], (int)w);
    }
}

static void run_section(const json_t *section)
{
    struct isd_tok *tok = load_vocab(section);
    const json_t *cases = json_object_get(section, "cases");
    assert_true(json_array_size(cases) >= 40);
    size_t idx;
    const json_t *c;
    json_array_foreach(cases, idx, c)
    {
        const json_t *prompt = json_object_get(c, "prompt");
        const char *text = json_string_value(prompt);
        size_t len = json_string_length(prompt);
        struct isd_eng_error err = {0};
        const json_t *raw = json_object_get(c, "raw");
        size_t want_n = json_array_size(raw), n;
        int32_t *ids = malloc((want_n + 1) * sizeof *ids);
        assert_non_null(ids);
        if (isd_tok_encode(tok, text, len, ids, want_n + 1, &n, &err) < 0)
            fail_msg("case %zu: %s", idx, err.msg);
        expect_ids("raw", idx, raw, ids, n);
        /* a short buffer still reports the full count */
        size_t n2;
        assert_int_equal(isd_tok_encode(tok, text, len, ids, want_n / 2, &n2, &err), 0);
        assert_int_equal(n2, want_n);
        free(ids);
        int32_t seq[ISD_TOK_CONTEXT];
        size_t total;
        assert_int_equal(isd_tok_encode_padded(tok, text, len, ISD_TOK_PAD_EOS, seq, &total, &err),
                         0);
        assert_int_equal(total, want_n);
        expect_ids("sd1", idx, json_object_get(c, "sd1"), seq, ISD_TOK_CONTEXT);
        assert_int_equal(isd_tok_encode_padded(tok, text, len, 0, seq, NULL, &err), 0);
        expect_ids("sd2", idx, json_object_get(c, "sd2"), seq, ISD_TOK_CONTEXT);
    }
    isd_tok_free(tok);
}

static void full_vocab_matches_reference(void **state)
{
    (void)state;
    run_section(json_array_get(json_object_get(golden, "vocabs"), 0));
}

static void small_vocab_matches_reference(void **state)
{
    (void)state;
    run_section(json_array_get(json_object_get(golden, "vocabs"), 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_vocab_matches_reference),
        cmocka_unit_test(small_vocab_matches_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
