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

/* ---- parameters, from a JSON object or a multipart form ---- */

struct isd_form;

/* A parameter as the request carries it. */
enum pv_kind { PV_ABSENT, PV_NULL, PV_JSON, PV_TEXT, PV_FILE };
struct pval {
    enum pv_kind kind;
    const json_t *json; /* PV_JSON */
    const char *text;   /* PV_TEXT: the field's bytes (not NUL-safe: use len) */
    size_t len;
};

/* Where the parameters come from, and where errors go. */
struct params {
    json_t *root;          /* a JSON object, or NULL */
    struct isd_form *form; /* a multipart form, or NULL */
    bool huge_ints;        /* the JSON body had integers beyond int64 (read as reals) */
    bool extensions;       /* the model takes the extension fields (api_extensions_allowed) */
    struct isd_error *err;
};

struct pval api_param(struct params *p, const char *name);
int api_get_int(struct params *p, const char *name, long min, long max, long def, long *out);
int api_get_enum(struct params *p, const char *name, const char *const *allowed,
                 const char *const *hidden, const char *def, const char **out);
/* A number (JSON integer or real; a decimal literal in a text field) in [min, max], or in
 * (min, max] when `min_exclusive`; `def` when absent or null. OpenAI's "decimal" wording. */
int api_get_number(struct params *p, const char *name, double min, bool min_exclusive, double max,
                   double def, double *out);
int api_get_bool(struct params *p, const char *name, bool *out);
/* A string parameter (JSON string or text field) copied out, valid UTF-8; NULL when absent. */
int api_get_string(struct params *p, const char *name, char **out, size_t *len);
int api_err_type(struct params *p, const char *name, const char *expected, struct pval v);
int api_err_supported(struct isd_error *e, enum isd_err_id id, const char *name, const char *value,
                      size_t len, const char *const *supported);
int api_get_prompt(struct params *p, const struct isd_profile *prof,
                   struct isd_images_request *out);
int api_get_n(struct params *p, const struct isd_profile *prof, struct isd_images_request *out);
/* quality, response_format, output_format, output_compression, size, moderation (when
 * `moderation` is set), background, style (dall-e-3), input_fidelity (edits), user, stream,
 * partial_images: whichever the endpoint takes. */
int api_get_options(struct params *p, const struct isd_profile *prof,
                    struct isd_images_request *out);
/* Extension fields of local models (api.h struct isd_api_extensions), when p->extensions:
 * seed, steps, guidance_scale, negative_prompt, sampler, then strength (edits, variations). */
int api_get_extensions(struct params *p, const struct isd_profile *prof,
                       struct isd_images_request *out);
/* Whether the request's model (named by a string `model`, else `dflt`, the default it would get)
 * takes the extension fields, by res->extensions. Asked before the unknown-key check, so that
 * for other models those fields are unknown keys at the place any unknown key is refused. */
bool api_extensions_allowed(struct params *p, const struct isd_api_resolver *res, const char *dflt);
/* The extension fields as known keys: generations (no strength), edits and variations. */
extern const char *const api_ext_generation_params[];
extern const char *const api_ext_edit_params[];
/* Ids of the decimal range errors (codes decimal_below_min_value, decimal_above_max_value). */
#define API_E_DEC_BELOW_MIN ISD_E_DEC_BELOW_MIN
#define API_E_DEC_ABOVE_MAX ISD_E_DEC_ABOVE_MAX
int api_check_combinations(struct params *p, const struct isd_profile *prof,
                           struct isd_images_request *out);
int api_resolve_model(struct params *p, const struct isd_api_resolver *res, const char *dflt,
                      struct isd_images_request *out);
json_t *api_load_json(const char *body, size_t len, bool *huge_ints, struct isd_error *err);
void api_request_defaults(struct isd_images_request *r, enum isd_endpoint ep);
bool api_parse_wxh(const char *s, size_t len, long *w, long *h);
/* gpt-image-2 size rules (§4.2) for w x h; `shown` is quoted in the message. */
int api_check_free_size(struct isd_error *e, const char *shown, long w, long h);

/* "'a'", "'a' and 'b'", "'a', 'b', and 'c'" (conj "and") or with "or". */
int api_quote_list(char *out, size_t cap, const char *const *values, const char *conj);
/* "a string", "an integer", "a decimal number", "a boolean", "null", "an object", "an array". */
const char *api_json_type_phrase(const json_t *v);
bool api_in_list(const char *s, const char *const *list);
/* A double as Python's repr() writes it ("31.5", "0.0", "1e-05", "1e+16"): the shortest digits
 * that read back to `d`, for quoting numbers in messages. `out` holds at least 32 bytes. */
void api_format_real(char *out, size_t cap, double d);

#endif
