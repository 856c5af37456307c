/*
 * text: byte-string helpers used across modules: UTF-8 validation and counting, base64
 * (standard and URL-safe), hex, and small string views.
 *
 * Functions take explicit lengths and never assume NUL termination of their inputs.
 * Encoders append to a caller-owned isd_buf (so its ceiling applies) and return 0 or a
 * negative error id. Pure functions; thread-safe.
 */
#ifndef ISD_TEXT_H
#define ISD_TEXT_H

#include "buf/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A view into bytes owned by someone else. */
struct isd_str {
    const char *p;
    size_t n;
};

/* Validates UTF-8 (no overlongs, no surrogates, <= U+10FFFF). Returns true when valid and
 * stores the number of code points in *count (may be NULL). */
bool isd_utf8_count(const char *s, size_t n, size_t *count);
/* Decodes one code point at s[*i], advancing *i; returns U+FFFD on a bad sequence. */
uint32_t isd_utf8_next(const char *s, size_t n, size_t *i);

/* Exact output sizes. */
size_t isd_base64_encoded_len(size_t n);
/* Appends base64 (RFC 4648 standard alphabet with padding, or URL-safe without padding). */
int isd_base64_encode(struct isd_buf *out, const void *data, size_t n);
int isd_base64url_encode(struct isd_buf *out, const void *data, size_t n);
/* Encodes into `dst`, which must hold isd_base64_encoded_len(n) bytes; returns bytes written. */
size_t isd_base64_encode_to(char *dst, const void *data, size_t n);
/* Decodes standard or URL-safe base64 (padding optional, no whitespace); -ISD_E_INVALID_VALUE
 * on a bad character or length. */
int isd_base64_decode(struct isd_buf *out, const char *s, size_t n);

int isd_hex_encode(struct isd_buf *out, const void *data, size_t n);
/* Lowercase hex into dst (2n + 1 bytes, NUL-terminated). */
void isd_hex_to(char *dst, const void *data, size_t n);

/* ASCII case-insensitive equality of a view and a C string. */
bool isd_str_ieq(struct isd_str a, const char *b);
bool isd_str_eq(struct isd_str a, const char *b);
/* Trims ASCII spaces and tabs at both ends. */
struct isd_str isd_str_trim(struct isd_str s);

#endif
