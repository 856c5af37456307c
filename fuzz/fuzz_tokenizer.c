/*
 * fuzz_tokenizer: arbitrary bytes as a prompt for the CLIP tokenizer (src/engine/tok), with the
 * small synthetic vocabulary of tests/unit/support/clipvocab.c written to a temporary
 * directory on the first call (and removed once loaded). Checks the API's invariants: ids in
 * range, the full count reported whatever the buffer, BOS/EOS/padding in the 77-token form.
 */
#include "engine/tok/tok.h"
/* fuzz targets link only the library: take the vocabulary writer's source directly */
#include "support/clipvocab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct isd_tok *tok;

static void load_once(void)
{
    if (tok)
        return;
    const char *base = getenv("TMPDIR");
    char dir[4096], vocab[4200], merges[4200];
    snprintf(dir, sizeof dir, "%s/fuzz-tokenizer-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    struct isd_eng_error err = {0};
    int rc = isd_cv_write(dir, ISD_CV_SMALL, 0, &err);
    if (rc == 0)
        rc = isd_tok_load(&tok, vocab, merges, &err);
    unlink(vocab);
    unlink(merges);
    rmdir(dir);
    if (rc < 0) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_once();
    const char *text = (const char *)data;
    struct isd_eng_error err = {0};
    int32_t ids[96];
    size_t n = 0, n_count = 0;
    int rc = isd_tok_encode(tok, text, size, ids, 96, &n, &err);
    if (rc < 0) {
        if (rc != ISD_ENG_EINVAL || n != 0)
            abort(); /* only bad UTF-8 or an oversized prompt may fail */
        return 0;
    }
    if (isd_tok_encode(tok, text, size, NULL, 0, &n_count, &err) < 0 || n_count != n)
        abort();
    int32_t vocab = isd_tok_vocab_size(tok);
    for (size_t i = 0; i < n && i < 96; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            abort();
    int32_t seq[ISD_TOK_CONTEXT];
    size_t total;
    if (isd_tok_encode_padded(tok, text, size, 0, seq, &total, &err) < 0 || total != n)
        abort();
    size_t used = n < ISD_TOK_CHUNK ? n : ISD_TOK_CHUNK;
    if (seq[0] != isd_tok_bos(tok) || seq[used + 1] != isd_tok_eos(tok))
        abort();
    for (size_t i = 0; i < used && i < 96; i++)
        if (seq[1 + i] != ids[i])
            abort();
    for (size_t i = used + 2; i < ISD_TOK_CONTEXT; i++)
        if (seq[i] != 0)
            abort();
    return 0;
}
