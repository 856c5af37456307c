/*
 * engine/tok: the CLIP byte-level BPE tokenizer of Stable Diffusion's text encoders, loaded
 * from a model's tokenizer files (HF CLIPTokenizer: tokenizer/vocab.json + merges.txt).
 *
 * Encoding follows openai/CLIP clip/simple_tokenizer.py (HF's slow CLIPTokenizer with ftfy
 * does the same) without ftfy:
 *   1. html.unescape twice (the full HTML5 table of Python 3.11: &amp; &lt; &gt; &quot; &apos;
 *      &nbsp; ... 2231 names, with and without ';' where HTML allows, longest-prefix rule;
 *      numeric &#NN; &#xNN; with html's replacements for 0, 0x80-0x9f, surrogates, > U+10FFFF
 *      and its dropped control/non-character code points), then strip();
 *   2. runs of whitespace (the regex module's \s) -> one space, strip();
 *   3. lower() with Python's full mapping (U+0130 -> "i\u0307", final sigma), from tables
 *      generated out of Python 3.11 / Unicode 14.0;
 *   4. split with the CLIP pattern (PCRE2, UTF + UCP + caseless)
 *      <|startoftext|> | <|endoftext|> | 's 't 're 've 'm 'll 'd | \p{L}+ | \p{N} | other runs
 *      (so digits are one token each); each piece's UTF-8 bytes map to byte characters
 *      (bytes_to_unicode), the last one with "</w>", and merge by rank (lowest first, all
 *      occurrences left to right, as simple_tokenizer.bpe does). Every byte has a token, so
 *      nothing is unknown. A piece "<|startoftext|>"/"<|endoftext|>" is that special token.
 * Known differences from Python (see tests/reference/README.md): characters first assigned in
 * Unicode 15 (PCRE2 10.42 knows Unicode 14, the regex module 15: 4388 code points, e.g. CJK
 * Extension H) are "other" here but letters/numbers there; numeric references longer than
 * 4300 digits make Python raise and give U+FFFD here; the case and whitespace tables are
 * Python 3.11's (Unicode 14), so a Python with another Unicode version can differ on the
 * characters that version changed. HF's CLIPTokenizer *without* ftfy
 * installed uses BERT's BasicTokenizer instead and differs more (no html unescape, CJK split).
 *
 * Sequences: [BOS 49406] + up to 75 tokens + [EOS 49407] + padding to 77. SD1 (CLIP ViT-L)
 * pads with EOS, SD2 (OpenCLIP) with 0: the caller gives the pad id. Longer prompts are
 * truncated (BOS, the first 75 tokens, EOS). For A1111-style long prompts, take the raw
 * tokens (isd_tok_encode) and wrap each 75-token chunk with isd_tok_sequence(); the text
 * encoder runs each 77-token sequence and the contexts are concatenated.
 *
 * Ownership: isd_tok_load returns a heap object freed by isd_tok_free (NULL is fine); it is
 * immutable, so encoding is thread-safe (each call allocates its own scratch memory).
 * Errors: ISD_ENG_EIO (unreadable file), ISD_ENG_EFORMAT (malformed vocab.json/merges.txt,
 * with the file and line), ISD_ENG_EINVAL (text not UTF-8 or over ISD_TOK_TEXT_MAX),
 * ISD_ENG_ENOMEM. Limits: each file at most ISD_TOK_FILE_MAX bytes, ids below
 * ISD_TOK_VOCAB_MAX; like HF, at most ISD_TOK_MERGES_MAX merges are used (later lines are
 * ignored); merges.txt lines must be exactly "a b" after a first "#version" line.
 *
 *     struct isd_tok *tok;
 *     if (isd_tok_load(&tok, "m/tokenizer/vocab.json", "m/tokenizer/merges.txt", &err) < 0) ...
 *     int32_t ids[ISD_TOK_CONTEXT];
 *     isd_tok_encode_padded(tok, prompt, strlen(prompt), ISD_TOK_PAD_EOS, ids, NULL, &err);
 *     isd_tok_free(tok);
 */
#ifndef ISD_ENGINE_TOK_H
#define ISD_ENGINE_TOK_H

#include "engine/core/core.h"

#include <stddef.h>
#include <stdint.h>

#define ISD_TOK_CONTEXT    77           /* tokens per text-encoder sequence */
#define ISD_TOK_CHUNK      75           /* prompt tokens per sequence (between BOS and EOS) */
#define ISD_TOK_PAD_EOS    (-1)         /* pad id meaning "the EOS id" (SD1) */
#define ISD_TOK_TEXT_MAX   (256 * 1024) /* bytes of prompt text */
#define ISD_TOK_FILE_MAX   (16 << 20)   /* bytes of vocab.json or merges.txt */
#define ISD_TOK_VOCAB_MAX  (1 << 20)    /* ids are below this */
#define ISD_TOK_MERGES_MAX 48894        /* HF CLIPTokenizer keeps merges[1 : 49152-256-2+1] */

struct isd_tok;

int isd_tok_load(struct isd_tok **out, const char *vocab_json, const char *merges_txt,
                 struct isd_eng_error *err);
void isd_tok_free(struct isd_tok *tok);

/* Raw tokens of a prompt (no BOS/EOS, no truncation): writes up to cap ids and sets *n to the
 * full count (which may exceed cap, as snprintf does). */
int isd_tok_encode(const struct isd_tok *tok, const char *text, size_t len, int32_t *ids,
                   size_t cap, size_t *n, struct isd_eng_error *err);

/* BOS + ids[0 .. min(n, 75)) + EOS, padded with pad_id (ISD_TOK_PAD_EOS: the EOS id) to 77. */
void isd_tok_sequence(const struct isd_tok *tok, const int32_t *ids, size_t n, int32_t pad_id,
                      int32_t out[ISD_TOK_CONTEXT]);
/* isd_tok_encode + isd_tok_sequence; *n_tokens (may be NULL) gets the untruncated count. */
int isd_tok_encode_padded(const struct isd_tok *tok, const char *text, size_t len, int32_t pad_id,
                          int32_t out[ISD_TOK_CONTEXT], size_t *n_tokens,
                          struct isd_eng_error *err);
/* Sequences needed for n raw tokens in 75-token chunks (at least 1). */
size_t isd_tok_chunk_count(size_t n);

int32_t isd_tok_bos(const struct isd_tok *tok);
int32_t isd_tok_eos(const struct isd_tok *tok);
/* One more than the largest id. */
int32_t isd_tok_vocab_size(const struct isd_tok *tok);
/* The id of a vocabulary string (byte-level form, e.g. "cat</w>"), or -1. */
int32_t isd_tok_id(const struct isd_tok *tok, const char *token, size_t len);
/* The vocabulary string of an id (NUL-terminated; *len may be NULL), or NULL. */
const char *isd_tok_token(const struct isd_tok *tok, int32_t id, size_t *len);

#endif
