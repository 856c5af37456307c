/*
 * api_int: internals shared by the api module's files (not for other modules).
 * jw: a small JSON writer that appends to an isd_buf, pretty (OpenAI's 2-space style) or
 * compact (SSE data lines), escaping every string (invalid UTF-8 becomes U+FFFD) and able to
 * base64-encode a binary value in place, so multi-megabyte images are written once.
 * Errors are sticky: the first failing append sets rc and later calls do nothing.
 */
#ifndef ISD_API_INT_H
#define ISD_API_INT_H

#include "api/api.h"

#include <jansson.h>

#define JW_MAX_DEPTH 16

struct jw {
    struct isd_buf *out;
    bool pretty;
    int depth;
    bool has_items[JW_MAX_DEPTH]; /* per open container */
    bool after_key;               /* a key was just written; the value follows inline */
    int rc;                       /* 0 or the first error */
};

void jw_init(struct jw *w, struct isd_buf *out, bool pretty);
void jw_object_begin(struct jw *w);
void jw_object_end(struct jw *w);
void jw_array_begin(struct jw *w);
void jw_array_end(struct jw *w);
void jw_key(struct jw *w, const char *key);
void jw_string(struct jw *w, const char *s);
void jw_stringn(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, long long v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
void jw_base64(struct jw *w, const void *data, size_t n);

/* "'a'", "'a' and 'b'", "'a', 'b', and 'c'" (conj "and") or with "or". */
int api_quote_list(char *out, size_t cap, const char *const *values, const char *conj);
/* "a string", "an integer", "a decimal number", "a boolean", "null", "an object", "an array". */
const char *api_json_type_phrase(const json_t *v);
bool api_in_list(const char *s, const char *const *list);

#endif
