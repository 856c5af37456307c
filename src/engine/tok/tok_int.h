/*
 * tok_int: internals of engine/tok shared by its .c files: the generated Unicode/HTML tables
 * (tok_tables.c, from tests/reference/tok_gen_tables.py) and the text normalisation of
 * tok_text.c. Not for use outside src/engine/tok.
 */
#ifndef ISD_ENGINE_TOK_INT_H
#define ISD_ENGINE_TOK_INT_H

#include "engine/core/core.h"

#include <stddef.h>
#include <stdint.h>

/* Python str.lower() single-code-point mappings: c in first..last step stride -> c + delta. */
struct isd_tok_lower_run {
    uint32_t first, last;
    uint32_t stride;
    int32_t delta;
};

struct isd_tok_range {
    uint32_t first, last; /* inclusive */
};

/* html.entities.html5: `name` without the leading '&' (with its ';' where the key has one),
 * the replacement as one or two code points (cp[1] == 0: one). */
struct isd_tok_entity {
    const char *name;
    uint32_t cp[2];
};

/* html._invalid_charrefs: numeric reference -> replacement code point */
struct isd_tok_charref {
    uint32_t num;
    uint32_t cp;
};

extern const struct isd_tok_lower_run isd_tok_lower_runs[];
extern const size_t isd_tok_lower_count;
extern const struct isd_tok_range isd_tok_case_ignorable[];
extern const size_t isd_tok_case_ignorable_count;
extern const struct isd_tok_range isd_tok_cased[];
extern const size_t isd_tok_cased_count;
extern const uint32_t isd_tok_isspace[]; /* str.isspace() */
extern const size_t isd_tok_isspace_count;
extern const uint32_t isd_tok_re_space[]; /* the regex module's \s */
extern const size_t isd_tok_re_space_count;
extern const struct isd_tok_entity isd_tok_entities[]; /* sorted by name (bytes) */
extern const size_t isd_tok_entity_count;
extern const struct isd_tok_charref isd_tok_invalid_charrefs[]; /* sorted by num */
extern const size_t isd_tok_invalid_charref_count;
extern const struct isd_tok_range isd_tok_invalid_codepoints[]; /* sorted */
extern const size_t isd_tok_invalid_codepoint_count;

/* Decodes UTF-8 (strict: no overlongs, surrogates or values above U+10FFFF) into code points.
 * out must hold len entries; *n receives the count. Returns 0 or the byte offset + 1 of the
 * first invalid sequence (so 0 means valid). */
size_t isd_tok_utf8_decode(const char *s, size_t len, uint32_t *out, size_t *n);
/* Encodes one code point; returns its length (1..4). */
size_t isd_tok_utf8_put(uint32_t c, char *out);

/* simple_tokenizer's text cleaning, minus ftfy, on code points:
 * html.unescape(html.unescape(text)).strip(), whitespace runs -> " ", strip(), lower().
 * in[n] is consumed (used as scratch); out must hold 2 * n + 1 entries (lower() can double
 * the length). Returns the output length. */
size_t isd_tok_clean(uint32_t *in, size_t n, uint32_t *out);

/* Single steps, exposed for the unit tests. Each returns the output length. */
size_t isd_tok_html_unescape(const uint32_t *in, size_t n, uint32_t *out); /* out: n entries */
size_t isd_tok_lower(const uint32_t *in, size_t n, uint32_t *out);         /* out: 2n entries */

#endif
