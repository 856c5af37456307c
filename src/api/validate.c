/*
 * Validation of /v1/images/generations bodies, in the order the contract records (§7.3):
 * unknown keys → model → parameters the model does not take → prompt → n → quality →
 * response_format → output_format → output_compression → size → moderation → background →
 * style → user → stream → partial_images → combinations (png compression, transparency).
 * JSON null counts as omitted for every nullable parameter (§3), except that parameters a
 * GPT model does not take are refused even when null.
 */
#include "api/api_int.h"

#include "text/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values quoted back to the client are cut to this many bytes. */
#define QUOTE_MAX 256

static const char *const generation_params[] = {
    "prompt", "model",      "n",          "quality",        "response_format",
    "output_format",        "output_compression",           "size",
    "moderation", "background", "style",  "user",           "stream",
    "partial_images",       NULL};

/* Parameters only GPT image models take: their presence selects the GPT default model. */
static const char *const gpt_only_params[] = {"output_format", "output_compression", "background",
                                              "moderation",    "stream",             "partial_images",
                                              NULL};

static const char *const output_formats[] = {"png", "webp", "jpeg", NULL};
static const char *const moderations[] = {"auto", "low", NULL};
static const char *const backgrounds[] = {"transparent", "opaque", "auto", NULL};
static const char *const styles[] = {"vivid", "natural", NULL};
static const char *const response_formats[] = {"url", "b64_json", NULL};

/* Parse state shared by the field validators. */
struct parse {
    json_t *root;
    bool ints_as_reals; /* the body had integers too large for int64 and was re-read */
    struct isd_error *err;
};

int isd_api_err_unknown_param(struct isd_error *e, const char *name)
{
    char q[QUOTE_MAX + 4];
    isd_err_quote(q, name, strlen(name), QUOTE_MAX);
    return isd_err_set(e, ISD_E_UNKNOWN_PARAM, name, "Unknown parameter: '%s'.", q);
}

int isd_api_err_missing_param(struct isd_error *e, const char *name)
{
    return isd_err_set(e, ISD_E_MISSING_PARAM, name, "Missing required parameter: '%s'.", name);
}

static int err_type(struct parse *p, const char *name, const char *expected, const json_t *v)
{
    return isd_err_set(p->err, ISD_E_INVALID_TYPE, name,
                       "Invalid type for '%s': expected %s, but got %s instead.", name, expected,
                       api_json_type_phrase(v));
}

static int err_supported(struct isd_error *e, enum isd_err_id id, const char *name,
                         const char *value, const char *const *supported)
{
    char list[512], q[QUOTE_MAX + 4];
    api_quote_list(list, sizeof list, supported, "and");
    isd_err_quote(q, value, strlen(value), QUOTE_MAX);
    return isd_err_set(e, id, name, "Invalid value: '%s'. Supported values are: %s.", q, list);
}

/* The value of `name`, or NULL when absent or JSON null. */
static json_t *present(struct parse *p, const char *name)
{
    json_t *v = json_object_get(p->root, name);
    return (v && !json_is_null(v)) ? v : NULL;
}

static int get_int(struct parse *p, const char *name, long min, long max, long def, long *out)
{
    json_t *v = present(p, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (json_is_integer(v)) {
        long long ll = json_integer_value(v);
        if (ll < min)
            return isd_err_set(p->err, ISD_E_INT_BELOW_MIN, name,
                               "Invalid '%s': integer below minimum value. Expected a value >= "
                               "%ld, but got %lld instead.",
                               name, min, ll);
        if (ll > max)
            return isd_err_set(p->err, ISD_E_INT_ABOVE_MAX, name,
                               "Invalid '%s': integer above maximum value. Expected a value <= "
                               "%ld, but got %lld instead.",
                               name, max, ll);
        *out = (long)ll;
        return 0;
    }
    /* Integers beyond int64 were read as reals: still integers, just absurd ones. */
    double d = json_is_real(v) ? json_real_value(v) : 0.5;
    if (p->ints_as_reals && d == floor(d)) {
        if (d < (double)min)
            return isd_err_set(p->err, ISD_E_INT_BELOW_MIN, name,
                               "Invalid '%s': integer below minimum value. Expected a value >= "
                               "%ld, but got %.0f instead.",
                               name, min, d);
        if (d > (double)max)
            return isd_err_set(p->err, ISD_E_INT_ABOVE_MAX, name,
                               "Invalid '%s': integer above maximum value. Expected a value <= "
                               "%ld, but got %.0f instead.",
                               name, max, d);
        *out = (long)d;
        return 0;
    }
    return err_type(p, name, "an integer", v);
}

/* A string parameter restricted to `allowed` (advertised in messages); values in `hidden` are
 * accepted without being advertised. Stores the matching static string in *out. */
static int get_enum(struct parse *p, const char *name, const char *const *allowed,
                    const char *const *hidden, const char *def, const char **out)
{
    json_t *v = present(p, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_string(v)) {
        char expected[512] = "one of ";
        api_quote_list(expected + 7, sizeof expected - 7, allowed, "or");
        return err_type(p, name, expected, v);
    }
    const char *s = json_string_value(v);
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(s, *a) == 0 && strlen(*a) == json_string_length(v))
            return (*out = *a), 0;
    for (const char *const *a = hidden; a && *a; a++)
        if (strcmp(s, *a) == 0 && strlen(*a) == json_string_length(v))
            return (*out = *a), 0;
    return err_supported(p->err, ISD_E_INVALID_VALUE, name, s, allowed);
}

static int check_unknown_keys(struct parse *p, const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach(p->root, key, v)
    {
        if (!api_in_list(key, known))
            return isd_api_err_unknown_param(p->err, key);
    }
    return 0;
}

static bool uses_any(struct parse *p, const char *const *names)
{
    for (; *names; names++)
        if (present(p, *names))
            return true;
    return false;
}

static int resolve_model(struct parse *p, const struct isd_api_resolver *res,
                         const char *const *gpt_params, struct isd_images_request *out)
{
    json_t *v = present(p, "model");
    const char *name;
    size_t len;
    if (v) {
        if (!json_is_string(v))
            return err_type(p, "model", "a string", v);
        name = json_string_value(v);
        len = json_string_length(v);
    } else {
        name = uses_any(p, gpt_params) ? res->default_gpt_model : res->default_model;
        len = strlen(name);
    }
    const struct isd_profile *prof = res->lookup(res->ctx, name, len);
    if (!prof || len >= sizeof out->model || strlen(name) != len) {
        char q[QUOTE_MAX + 4];
        isd_err_quote(q, name, len, QUOTE_MAX);
        return isd_err_set(p->err, ISD_E_NO_SUCH_MODEL, "model", "The model '%s' does not exist.",
                           q);
    }
    memcpy(out->model, name, len);
    out->model[len] = '\0';
    out->profile = prof;
    return 0;
}

/* Parameters valid for the endpoint but not for this model. */
static int check_profile_params(struct parse *p, const struct isd_profile *prof)
{
    if (prof->gpt) {
        /* refused even when null (§3.1) */
        if (json_object_get(p->root, "response_format"))
            return isd_api_err_unknown_param(p->err, "response_format");
        if (json_object_get(p->root, "style"))
            return isd_api_err_unknown_param(p->err, "style");
        return 0;
    }
    for (const char *const *n = gpt_only_params; *n; n++) {
        if (strcmp(*n, "stream") == 0 || strcmp(*n, "partial_images") == 0)
            continue; /* refused with a clearer message below */
        if (present(p, *n))
            return isd_api_err_unknown_param(p->err, *n);
    }
    if (prof->id != ISD_PROFILE_DALL_E_3 && present(p, "style"))
        return isd_api_err_unknown_param(p->err, "style");
    return 0;
}

static int get_prompt(struct parse *p, const struct isd_profile *prof,
                      struct isd_images_request *out)
{
    json_t *v = json_object_get(p->root, "prompt");
    if (!v)
        return isd_api_err_missing_param(p->err, "prompt");
    if (!json_is_string(v))
        return err_type(p, "prompt", "a string", v);
    size_t len = json_string_length(v), chars = 0;
    if (len == 0)
        return isd_err_set(p->err, ISD_E_EMPTY_STRING, "prompt",
                           "Invalid 'prompt': empty string. Expected a string with minimum length "
                           "1, but got an empty string instead.");
    isd_utf8_count(json_string_value(v), len, &chars); /* jansson guarantees UTF-8 */
    if (chars > (size_t)prof->max_prompt_chars)
        return isd_err_set(p->err, ISD_E_STRING_TOO_LONG, "prompt",
                           "Invalid 'prompt': string too long. Expected a string with maximum "
                           "length %d, but got a string with length %zu instead.",
                           prof->max_prompt_chars, chars);
    out->prompt = strndup(json_string_value(v), len);
    if (!out->prompt)
        return isd_err_set(p->err, ISD_E_NOMEM, NULL, "out of memory");
    out->prompt_len = len;
    out->prompt_chars = chars;
    return 0;
}

static int get_n(struct parse *p, const struct isd_profile *prof, struct isd_images_request *out)
{
    long n;
    int rc = get_int(p, "n", 1, 10, 1, &n);
    if (rc < 0)
        return rc;
    if (n > prof->max_n)
        return isd_err_set(p->err, ISD_E_INVALID_REQUEST, NULL,
                           "You must provide n=%d for this model.", prof->max_n);
    out->n = (int)n;
    return 0;
}

/* Parses "WxH" with plain decimal digits; false on anything else. */
static bool parse_wxh(const char *s, size_t len, long *w, long *h)
{
    size_t i = 0;
    long a = 0, b = 0;
    if (len == 0 || s[0] < '0' || s[0] > '9')
        return false;
    while (i < len && s[i] >= '0' && s[i] <= '9' && a < 100000)
        a = a * 10 + (s[i++] - '0');
    if (i >= len || s[i] != 'x')
        return false;
    i++;
    if (i >= len)
        return false;
    while (i < len && s[i] >= '0' && s[i] <= '9' && b < 100000)
        b = b * 10 + (s[i++] - '0');
    if (i != len)
        return false;
    *w = a;
    *h = b;
    return true;
}

/* §4.2: gpt-image-2 sizes. */
static int check_free_size(struct parse *p, const char *s, size_t len, long *w, long *h)
{
    char q[QUOTE_MAX + 4];
    isd_err_quote(q, s, len, QUOTE_MAX);
    if (!parse_wxh(s, len, w, h) || *w == 0 || *h == 0)
        return isd_err_set(p->err, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. Expected WIDTHxHEIGHT, for example '1824x1024'.",
                           q);
    if (*w % 16 || *h % 16)
        return isd_err_set(p->err, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. Width and height must both be divisible by 16.", q);
    long lo = *w < *h ? *w : *h, hi = *w < *h ? *h : *w;
    if (hi > 3840)
        return isd_err_set(p->err, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. The longest edge must be at most 3840 pixels.", q);
    if (hi > 3 * lo)
        return isd_err_set(p->err, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. The aspect ratio must be between 1:3 and 3:1.", q);
    long px = *w * *h;
    if (px < 655360 || px > 8294400)
        return isd_err_set(p->err, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. The total number of pixels must be between 655360 "
                           "and 8294400.",
                           q);
    return 0;
}

static int get_size(struct parse *p, const struct isd_profile *prof,
                    struct isd_images_request *out)
{
    json_t *v = present(p, "size");
    const char *s = "auto";
    size_t len = 4;
    if (v) {
        if (!json_is_string(v))
            return err_type(p, "size", "a string", v);
        s = json_string_value(v);
        len = json_string_length(v);
    }
    snprintf(out->size_requested, sizeof out->size_requested, "%.*s",
             (int)(len < sizeof out->size_requested ? len : sizeof out->size_requested - 1), s);
    long w = 0, h = 0;
    if (len == 4 && memcmp(s, "auto", 4) == 0) {
        parse_wxh(prof->size_auto, strlen(prof->size_auto), &w, &h);
    } else if (prof->size_rule == ISD_SIZES_FREE) {
        int rc = check_free_size(p, s, len, &w, &h);
        if (rc < 0)
            return rc;
    } else {
        bool ok = strlen(s) == len && api_in_list(s, prof->sizes);
        if (!ok && prof->size_rule == ISD_SIZES_LISTED_INVALID_SIZE)
            return isd_err_set(p->err, ISD_E_INVALID_SIZE, NULL,
                               "The size is not supported by this model.");
        if (!ok)
            return err_supported(p->err, ISD_E_INVALID_VALUE, "size", s, prof->sizes);
        parse_wxh(s, len, &w, &h);
    }
    out->width = (int)w;
    out->height = (int)h;
    snprintf(out->size, sizeof out->size, "%ldx%ld", w, h);
    return 0;
}

static int get_bool(struct parse *p, const char *name, bool *out)
{
    json_t *v = present(p, name);
    if (!v) {
        *out = false;
        return 0;
    }
    if (!json_is_boolean(v))
        return err_type(p, name, "a boolean", v);
    *out = json_is_true(v);
    return 0;
}

static int get_user(struct parse *p, struct isd_images_request *out)
{
    json_t *v = present(p, "user");
    if (!v)
        return 0;
    if (!json_is_string(v))
        return err_type(p, "user", "a string", v);
    out->user = strndup(json_string_value(v), json_string_length(v));
    return out->user ? 0 : isd_err_set(p->err, ISD_E_NOMEM, NULL, "out of memory");
}

/* quality ... partial_images, for any endpoint (the caller has resolved the profile). */
static int get_options(struct parse *p, const struct isd_profile *prof,
                       struct isd_images_request *out)
{
    static const char *const auto_only[] = {"auto", NULL};
    int rc;
    const char *q;
    if ((rc = get_enum(p, "quality", prof->qualities, prof->gpt ? NULL : auto_only, "auto", &q)))
        return rc;
    out->quality_requested = q;
    out->quality = strcmp(q, "auto") == 0 ? prof->quality_auto : q;

    const char *rf = "url";
    if (!prof->gpt && (rc = get_enum(p, "response_format", response_formats, NULL, "url", &rf)))
        return rc;
    out->response_format = strcmp(rf, "b64_json") == 0 ? ISD_RF_B64_JSON : ISD_RF_URL;

    const char *of;
    if ((rc = get_enum(p, "output_format", output_formats, NULL, "png", &of)))
        return rc;
    isd_format_parse(of, &out->output_format);

    long comp;
    if ((rc = get_int(p, "output_compression", 0, 100, 100, &comp)))
        return rc;
    out->output_compression = (int)comp;

    if ((rc = get_size(p, prof, out)))
        return rc;
    if ((rc = get_enum(p, "moderation", moderations, NULL, "auto", &out->moderation)))
        return rc;
    if ((rc = get_enum(p, "background", backgrounds, NULL, "auto", &out->background_requested)))
        return rc;
    out->transparent = strcmp(out->background_requested, "transparent") == 0;
    if (prof->id == ISD_PROFILE_DALL_E_3) {
        if ((rc = get_enum(p, "style", styles, NULL, "vivid", &out->style)))
            return rc;
    }
    if ((rc = get_user(p, out)))
        return rc;
    if ((rc = get_bool(p, "stream", &out->stream)))
        return rc;
    long partials;
    if ((rc = get_int(p, "partial_images", 0, 3, 0, &partials)))
        return rc;
    out->partial_images = (int)partials;
    return 0;
}

/* Rules that involve several parameters (§3.1, §4.1). */
static int check_combinations(struct parse *p, const struct isd_profile *prof,
                              struct isd_images_request *out)
{
    if (out->output_format == ISD_FMT_PNG && out->output_compression < 100)
        return isd_err_set(p->err, ISD_E_PNG_COMPRESSION, NULL,
                           "Compression less than 100 is not supported for PNG output format");
    if (out->transparent && !prof->transparency)
        return isd_err_set(p->err, ISD_E_GEN_INVALID_VALUE, "background",
                           "Transparent background is not supported for this model.");
    if (out->transparent && out->output_format == ISD_FMT_JPEG)
        return isd_err_set(p->err, ISD_E_INVALID_VALUE, "background",
                           "Transparent background requires output_format to be png or webp, "
                           "but got 'jpeg'.");
    if (out->stream && !prof->streaming)
        return isd_err_set(p->err, ISD_E_INVALID_VALUE, "stream",
                           "Streaming is not supported for the model '%s'. It is supported for "
                           "the GPT image models only.",
                           out->model);
    return 0;
}

/* Reads the body; integers beyond int64 make jansson fail, so such bodies are read again with
 * every integer as a real, and get_int() treats integral reals as (absurd) integers. */
static json_t *load_body(const char *body, size_t len, bool *ints_as_reals, struct isd_error *err)
{
    json_error_t je;
    *ints_as_reals = false;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root && json_error_code(&je) == json_error_numeric_overflow) {
        root = json_loadb(body, len, JSON_DECODE_INT_AS_REAL, &je);
        *ints_as_reals = root != NULL;
    }
    if (!root)
        isd_err_set(err, ISD_E_BAD_JSON, NULL,
                    "We could not parse the JSON body of your request. (HINT: This likely means "
                    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                    "payload, but what was sent was not valid JSON. If you have trouble figuring "
                    "out how to fix this, please contact us through our help center at "
                    "help.openai.com.)");
    return root;
}

static void request_defaults(struct isd_images_request *r, enum isd_endpoint ep)
{
    memset(r, 0, sizeof *r);
    r->endpoint = ep;
    r->n = 1;
    r->output_format = ISD_FMT_PNG;
    r->output_compression = 100;
    r->quality_requested = "auto";
    r->background_requested = "auto";
    r->moderation = "auto";
    r->input_fidelity = "low";
}

int isd_api_parse_generation(const char *body, size_t len, const struct isd_api_resolver *res,
                             struct isd_images_request *out, struct isd_error *err)
{
    request_defaults(out, ISD_EP_GENERATIONS);
    struct parse p = {.err = err};
    p.root = load_body(body, len, &p.ints_as_reals, err);
    if (!p.root)
        return -ISD_E_BAD_JSON;
    int rc;
    if (!json_is_object(p.root)) {
        rc = isd_err_set(err, ISD_E_INVALID_TYPE, NULL,
                         "Invalid type for request body: expected an object, but got %s instead.",
                         api_json_type_phrase(p.root));
        goto out;
    }
    if ((rc = check_unknown_keys(&p, generation_params)) ||
        (rc = resolve_model(&p, res, gpt_only_params, out)) ||
        (rc = check_profile_params(&p, out->profile)) ||
        (rc = get_prompt(&p, out->profile, out)) || (rc = get_n(&p, out->profile, out)) ||
        (rc = get_options(&p, out->profile, out)) ||
        (rc = check_combinations(&p, out->profile, out)))
        goto out;
    if (!out->profile->gpt)
        out->output_format = ISD_FMT_PNG;
out:
    json_decref(p.root);
    if (rc < 0)
        isd_images_request_release(out);
    return rc;
}

void isd_images_request_release(struct isd_images_request *r)
{
    free(r->prompt);
    free(r->user);
    r->prompt = NULL;
    r->user = NULL;
}
