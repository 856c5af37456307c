/*
 * Parameter validation shared by every endpoint, and the /v1/images/generations body.
 *
 * Order, as the contract records it (§7.3): unknown keys → model → parameters the model does
 * not take → prompt → (images) → n → quality → response_format → output_format →
 * output_compression → size → moderation → background → style → input_fidelity → user →
 * stream → partial_images → extension fields (local models: seed, steps, guidance_scale,
 * negative_prompt, sampler, strength) → combinations (png compression, transparency, streaming).
 * JSON null counts as omitted for every nullable parameter (§3), except that parameters a GPT
 * model does not take are refused even when null. Multipart text fields are strings: integers,
 * numbers and booleans are converted from them, with the contract's "could not be converted"
 * message.
 */
#include "api/api_int.h"

#include "multipart/multipart.h"
#include "text/text.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values quoted back to the client are cut to this many bytes. */
#define QUOTE_MAX 256

static const char *const generation_params[] = {"prompt",
                                                "model",
                                                "n",
                                                "quality",
                                                "response_format",
                                                "output_format",
                                                "output_compression",
                                                "size",
                                                "moderation",
                                                "background",
                                                "style",
                                                "user",
                                                "stream",
                                                "partial_images",
                                                NULL};

/* The extension fields of local models (api.h): known keys only when the model takes them. */
const char *const api_ext_generation_params[] = {"seed",    "steps",           "guidance_scale",
                                                 "sampler", "negative_prompt", NULL};
const char *const api_ext_edit_params[] = {
    "seed", "steps", "guidance_scale", "sampler", "negative_prompt", "strength", NULL};
static const char *const samplers[] = {"euler", "euler_a", "heun", "dpm++2m", "lcm", NULL};

_Static_assert(ISD_API_EXT_SEED_MAX <= LONG_MAX, "seeds are read with api_get_int (long)");

/* Parameters only GPT image models take: their presence selects the GPT default model. */
static const char *const gpt_only_params[] = {
    "output_format", "output_compression", "background", "moderation",
    "stream",        "partial_images",     NULL};

static const char *const output_formats[] = {"png", "webp", "jpeg", NULL};
static const char *const moderations[] = {"auto", "low", NULL};
static const char *const backgrounds[] = {"transparent", "opaque", "auto", NULL};
static const char *const styles[] = {"vivid", "natural", NULL};
static const char *const response_formats[] = {"url", "b64_json", NULL};
static const char *const fidelities[] = {"high", "low", NULL};

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

/* ---- parameter access ---- */

struct pval api_param(struct params *p, const char *name)
{
    struct pval v = {.kind = PV_ABSENT};
    if (p->root) {
        json_t *j = json_object_get(p->root, name);
        if (j) {
            v.kind = json_is_null(j) ? PV_NULL : PV_JSON;
            v.json = j;
        }
        return v;
    }
    for (size_t i = 0; p->form && i < p->form->n_fields; i++) {
        struct isd_form_field *f = &p->form->fields[i];
        if (strcmp(f->name, name) != 0)
            continue;
        v.kind = f->is_file ? PV_FILE : PV_TEXT;
        v.text = f->value.data ? f->value.data : "";
        v.len = f->value.len;
        return v;
    }
    return v;
}

/* The phrase for what was received, for "Invalid type" messages. */
static const char *got_phrase(struct pval v, const char *converting)
{
    static __thread char buf[96];
    switch (v.kind) {
    case PV_JSON:
        return api_json_type_phrase(v.json);
    case PV_NULL:
        return "null";
    case PV_FILE:
        return "a file";
    case PV_TEXT:
        if (!converting)
            return "a string";
        snprintf(buf, sizeof buf, "a string value that could not be converted into %s", converting);
        return buf;
    default:
        return "nothing";
    }
}

int api_err_type(struct params *p, const char *name, const char *expected, struct pval v)
{
    const char *converting = NULL;
    if (v.kind == PV_TEXT && strcmp(expected, "an integer") == 0)
        converting = "an integer";
    else if (v.kind == PV_TEXT && strcmp(expected, "a decimal number") == 0)
        converting = "a decimal number";
    else if (v.kind == PV_TEXT && strcmp(expected, "a boolean") == 0)
        converting = "a boolean";
    /* the recorded wording for strings that are not numbers ends without "instead" */
    return isd_err_set(p->err, ISD_E_INVALID_TYPE, name,
                       "Invalid type for '%s': expected %s, but got %s%s.", name, expected,
                       got_phrase(v, converting), converting ? "" : " instead");
}

int api_err_supported(struct isd_error *e, enum isd_err_id id, const char *name, const char *value,
                      size_t len, const char *const *supported)
{
    char list[512], q[QUOTE_MAX + 4];
    api_quote_list(list, sizeof list, supported, "and");
    isd_err_quote(q, value, len, QUOTE_MAX);
    return isd_err_set(e, id, name, "Invalid value: '%s'. Supported values are: %s.", q, list);
}

static int err_below(struct params *p, const char *name, long min, const char *got)
{
    return isd_err_set(p->err, ISD_E_INT_BELOW_MIN, name,
                       "Invalid '%s': integer below minimum value. Expected a value >= %ld, but "
                       "got %s instead.",
                       name, min, got);
}

static int err_above(struct params *p, const char *name, long max, const char *got)
{
    return isd_err_set(p->err, ISD_E_INT_ABOVE_MAX, name,
                       "Invalid '%s': integer above maximum value. Expected a value <= %ld, but "
                       "got %s instead.",
                       name, max, got);
}

/* A multipart integer: optional sign, digits, nothing else (absurd lengths stay integers). */
static bool text_integer(const char *s, size_t len, double *out)
{
    size_t i = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i == len)
        return false;
    double v = 0;
    for (size_t k = i; k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return false;
        v = v * 10 + (s[k] - '0');
    }
    *out = s[0] == '-' ? -v : v;
    return true;
}

/* A JSON real that was an integer beyond int64 in the body (jansson reads those as reals). */
static bool huge_json_integer(const struct params *p, double d)
{
    return p->huge_ints && d == floor(d) && fabs(d) >= 9.2e18;
}

int api_get_int(struct params *p, const char *name, long min, long max, long def, long *out)
{
    struct pval v = api_param(p, name);
    if (v.kind == PV_ABSENT || v.kind == PV_NULL) {
        *out = def;
        return 0;
    }
    char got[64];
    double d;
    if (v.kind == PV_JSON && json_is_integer(v.json)) {
        long long ll = json_integer_value(v.json);
        snprintf(got, sizeof got, "%lld", ll);
        if (ll < min)
            return err_below(p, name, min, got);
        if (ll > max)
            return err_above(p, name, max, got);
        *out = (long)ll;
        return 0;
    }
    bool integral = false;
    if (v.kind == PV_JSON && json_is_real(v.json)) {
        /* integers beyond int64 were read as reals: still integers, just absurd ones */
        d = json_real_value(v.json);
        integral = huge_json_integer(p, d);
    } else if (v.kind == PV_TEXT) {
        integral = text_integer(v.text, v.len, &d);
    }
    if (!integral)
        return api_err_type(p, name, "an integer", v);
    if (v.kind == PV_TEXT) /* as sent, however long */
        isd_err_quote(got, v.text, v.len, sizeof got - 4);
    else
        snprintf(got, sizeof got, "%.0f", d);
    if (d < (double)min)
        return err_below(p, name, min, got);
    if (d > (double)max)
        return err_above(p, name, max, got);
    *out = (long)d;
    return 0;
}

void api_format_real(char *out, size_t cap, double d)
{
    if (!isfinite(d)) {
        snprintf(out, cap, "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
        return;
    }
    int digits = 1; /* significant digits: the fewest that read back to d */
    char e[40];
    for (; digits < 17; digits++) {
        snprintf(e, sizeof e, "%.*e", digits - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    snprintf(e, sizeof e, "%.*e", digits - 1, d);
    int exp10 = atoi(strchr(e, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16) { /* Python's repr switches to exponents there too */
        snprintf(out, cap, "%s", e);
        return;
    }
    int decimals = digits - 1 - exp10;
    if (decimals > 0)
        snprintf(out, cap, "%.*f", decimals, d);
    else
        snprintf(out, cap, "%.0f.0", d);
}

/* A multipart number: [sign] digits [. digits] [e [sign] digits], at least one digit before
 * the exponent; no spaces, inf, nan or hex. Out of double's range reads as +-inf.
 * 1: a number; 0: not one; -ISD_E_NOMEM. */
static int text_number(const char *s, size_t len, double *out)
{
    size_t i = 0, mantissa = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        mantissa++;
    if (i < len && s[i] == '.')
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            mantissa++;
    if (mantissa == 0)
        return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            exp_digits++;
        if (exp_digits == 0)
            return 0;
    }
    if (i != len)
        return 0;
    char small[64];
    char *copy = len < sizeof small ? small : malloc(len + 1); /* strtod wants a C string */
    if (!copy)
        return -ISD_E_NOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    *out = strtod(copy, NULL); /* C locale (see metrics.h): '.' is the decimal point */
    if (copy != small)
        free(copy);
    return 1;
}

static int err_decimal_range(struct params *p, const char *name, bool above, const char *op,
                             double bound, const char *got)
{
    return isd_err_set(p->err, above ? API_E_DEC_ABOVE_MAX : API_E_DEC_BELOW_MIN, name,
                       "Invalid '%s': decimal %s value. Expected a value %s %g, but got %s "
                       "instead.",
                       name, above ? "above maximum" : "below minimum", op, bound, got);
}

int api_get_number(struct params *p, const char *name, double min, bool min_exclusive, double max,
                   double def, double *out)
{
    struct pval v = api_param(p, name);
    if (v.kind == PV_ABSENT || v.kind == PV_NULL) {
        *out = def;
        return 0;
    }
    char got[64];
    double d;
    if (v.kind == PV_JSON && json_is_integer(v.json)) {
        d = (double)json_integer_value(v.json);
        snprintf(got, sizeof got, "%" JSON_INTEGER_FORMAT, json_integer_value(v.json));
    } else if (v.kind == PV_JSON && json_is_real(v.json)) {
        d = json_real_value(v.json);
        if (huge_json_integer(p, d))
            snprintf(got, sizeof got, "%.0f", d); /* as sent */
        else
            api_format_real(got, sizeof got, d);
    } else if (v.kind == PV_TEXT) {
        int rc = text_number(v.text, v.len, &d);
        if (rc < 0)
            return isd_err_set(p->err, ISD_E_NOMEM, NULL, "out of memory");
        if (rc == 0)
            return api_err_type(p, name, "a decimal number", v);
        isd_err_quote(got, v.text, v.len, sizeof got - 4); /* as sent, however long */
    } else {
        return api_err_type(p, name, "a decimal number", v);
    }
    if (min_exclusive ? !(d > min) : !(d >= min))
        return err_decimal_range(p, name, false, min_exclusive ? ">" : ">=", min, got);
    if (!(d <= max))
        return err_decimal_range(p, name, true, "<=", max, got);
    *out = d;
    return 0;
}

/* A string parameter restricted to `allowed` (advertised in messages); values in `hidden` are
 * accepted without being advertised. Stores the matching static string in *out. */
int api_get_enum(struct params *p, const char *name, const char *const *allowed,
                 const char *const *hidden, const char *def, const char **out)
{
    struct pval v = api_param(p, name);
    if (v.kind == PV_ABSENT || v.kind == PV_NULL) {
        *out = def;
        return 0;
    }
    const char *s;
    size_t len;
    if (v.kind == PV_JSON && json_is_string(v.json)) {
        s = json_string_value(v.json);
        len = json_string_length(v.json);
    } else if (v.kind == PV_TEXT) {
        s = v.text;
        len = v.len;
    } else {
        char expected[512] = "one of ";
        api_quote_list(expected + 7, sizeof expected - 7, allowed, "or");
        return api_err_type(p, name, expected, v);
    }
    for (const char *const *a = allowed; *a; a++)
        if (strlen(*a) == len && memcmp(s, *a, len) == 0)
            return (*out = *a), 0;
    for (const char *const *a = hidden; a && *a; a++)
        if (strlen(*a) == len && memcmp(s, *a, len) == 0)
            return (*out = *a), 0;
    return api_err_supported(p->err, ISD_E_INVALID_VALUE, name, s, len, allowed);
}

int api_get_bool(struct params *p, const char *name, bool *out)
{
    struct pval v = api_param(p, name);
    *out = false;
    if (v.kind == PV_ABSENT || v.kind == PV_NULL)
        return 0;
    if (v.kind == PV_JSON && json_is_boolean(v.json)) {
        *out = json_is_true(v.json);
        return 0;
    }
    if (v.kind == PV_TEXT && v.len == 4 && memcmp(v.text, "true", 4) == 0)
        return (*out = true), 0;
    if (v.kind == PV_TEXT && v.len == 5 && memcmp(v.text, "false", 5) == 0)
        return 0;
    return api_err_type(p, name, "a boolean", v);
}

int api_get_string(struct params *p, const char *name, char **out, size_t *len)
{
    struct pval v = api_param(p, name);
    *out = NULL;
    if (len)
        *len = 0;
    if (v.kind == PV_ABSENT || v.kind == PV_NULL)
        return 0;
    const char *s;
    size_t n;
    if (v.kind == PV_JSON && json_is_string(v.json)) {
        s = json_string_value(v.json);
        n = json_string_length(v.json);
    } else if (v.kind == PV_TEXT) {
        s = v.text;
        n = v.len;
        if (!isd_utf8_count(s, n, NULL) || memchr(s, '\0', n))
            return isd_err_set(p->err, ISD_E_INVALID_VALUE, name,
                               "Invalid '%s': the value is not valid UTF-8 text.", name);
    } else {
        return api_err_type(p, name, "a string", v);
    }
    *out = strndup(s, n);
    if (!*out)
        return isd_err_set(p->err, ISD_E_NOMEM, NULL, "out of memory");
    if (len)
        *len = n;
    return 0;
}

/* ---- the parameters ---- */

static bool uses_any(struct params *p, const char *const *names)
{
    for (; *names; names++) {
        enum pv_kind k = api_param(p, *names).kind;
        if (k != PV_ABSENT && k != PV_NULL)
            return true;
    }
    return false;
}

bool api_extensions_allowed(struct params *p, const struct isd_api_resolver *res, const char *dflt)
{
    if (!res->extensions)
        return false;
    struct pval v = api_param(p, "model");
    const char *name = dflt;
    size_t len = dflt ? strlen(dflt) : 0;
    if (v.kind == PV_JSON && json_is_string(v.json)) {
        name = json_string_value(v.json);
        len = json_string_length(v.json);
    } else if (v.kind == PV_TEXT) {
        name = v.text;
        len = v.len;
    } else if (v.kind != PV_ABSENT && v.kind != PV_NULL) {
        return false; /* not a model name: refused later, as for any model */
    }
    return name && res->extensions(res->ctx, name, len);
}

int api_resolve_model(struct params *p, const struct isd_api_resolver *res, const char *dflt,
                      struct isd_images_request *out)
{
    struct pval v = api_param(p, "model");
    const char *name = dflt;
    size_t len = strlen(dflt);
    if (v.kind == PV_JSON && json_is_string(v.json)) {
        name = json_string_value(v.json);
        len = json_string_length(v.json);
    } else if (v.kind == PV_TEXT) {
        name = v.text;
        len = v.len;
    } else if (v.kind != PV_ABSENT && v.kind != PV_NULL) {
        return api_err_type(p, "model", "a string", v);
    }
    const struct isd_profile *prof = res->lookup(res->ctx, name, len);
    if (!prof || len >= sizeof out->model || memchr(name, '\0', len)) {
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

int api_get_prompt(struct params *p, const struct isd_profile *prof, struct isd_images_request *out)
{
    struct pval v = api_param(p, "prompt");
    if (v.kind == PV_ABSENT)
        return isd_api_err_missing_param(p->err, "prompt");
    if (!(v.kind == PV_JSON && json_is_string(v.json)) && v.kind != PV_TEXT)
        return api_err_type(p, "prompt", "a string", v);
    int rc = api_get_string(p, "prompt", &out->prompt, &out->prompt_len);
    if (rc < 0)
        return rc;
    size_t chars = 0;
    isd_utf8_count(out->prompt, out->prompt_len, &chars);
    out->prompt_chars = chars;
    if (out->prompt_len == 0)
        return isd_err_set(p->err, ISD_E_EMPTY_STRING, "prompt",
                           "Invalid 'prompt': empty string. Expected a string with minimum length "
                           "1, but got an empty string instead.");
    if (chars > (size_t)prof->max_prompt_chars)
        return isd_err_set(p->err, ISD_E_STRING_TOO_LONG, "prompt",
                           "Invalid 'prompt': string too long. Expected a string with maximum "
                           "length %d, but got a string with length %zu instead.",
                           prof->max_prompt_chars, chars);
    return 0;
}

int api_get_n(struct params *p, const struct isd_profile *prof, struct isd_images_request *out)
{
    long n;
    int rc = api_get_int(p, "n", 1, 10, 1, &n);
    if (rc < 0)
        return rc;
    if (n > prof->max_n)
        return isd_err_set(p->err, ISD_E_INVALID_REQUEST, NULL,
                           "You must provide n=%d for this model.", prof->max_n);
    out->n = (int)n;
    return 0;
}

/* Parses "WxH" with plain decimal digits; false on anything else. */
bool api_parse_wxh(const char *s, size_t len, long *w, long *h)
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

int api_check_free_size(struct isd_error *e, const char *shown, long w, long h)
{
    if (w % 16 || h % 16)
        return isd_err_set(e, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. Width and height must both be divisible by 16.",
                           shown);
    long lo = w < h ? w : h, hi = w < h ? h : w;
    if (hi > 3840)
        return isd_err_set(e, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. The longest edge must be at most 3840 pixels.",
                           shown);
    if (hi > 3 * lo)
        return isd_err_set(e, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. The aspect ratio must be between 1:3 and 3:1.",
                           shown);
    long px = w * h;
    if (px < 655360 || px > 8294400)
        return isd_err_set(e, ISD_E_GEN_INVALID_VALUE, "size",
                           "Invalid size '%s'. The total number of pixels must be between 655360 "
                           "and 8294400.",
                           shown);
    return 0;
}

static int get_size(struct params *p, const struct isd_profile *prof,
                    struct isd_images_request *out)
{
    struct pval v = api_param(p, "size");
    const char *s = "auto";
    size_t len = 4;
    if (v.kind == PV_JSON && json_is_string(v.json)) {
        s = json_string_value(v.json);
        len = json_string_length(v.json);
    } else if (v.kind == PV_TEXT) {
        s = v.text;
        len = v.len;
    } else if (v.kind != PV_ABSENT && v.kind != PV_NULL) {
        return api_err_type(p, "size", "a string", v);
    }
    size_t keep = len < sizeof out->size_requested ? len : sizeof out->size_requested - 1;
    memcpy(out->size_requested, s, keep);
    out->size_requested[keep] = '\0';
    long w = 0, h = 0;
    char q[QUOTE_MAX + 4];
    isd_err_quote(q, s, len, QUOTE_MAX);
    if (len == 4 && memcmp(s, "auto", 4) == 0) {
        api_parse_wxh(prof->size_auto, strlen(prof->size_auto), &w, &h);
        out->size_from_input = out->endpoint == ISD_EP_EDITS && prof->gpt;
    } else if (prof->size_rule == ISD_SIZES_FREE) {
        if (!api_parse_wxh(s, len, &w, &h) || w == 0 || h == 0)
            return isd_err_set(p->err, ISD_E_GEN_INVALID_VALUE, "size",
                               "Invalid size '%s'. Expected WIDTHxHEIGHT, for example "
                               "'1824x1024'.",
                               q);
        int rc = api_check_free_size(p->err, q, w, h);
        if (rc < 0)
            return rc;
    } else {
        bool ok = false;
        for (const char *const *a = prof->sizes; *a && !ok; a++)
            ok = strlen(*a) == len && memcmp(*a, s, len) == 0;
        if (!ok && prof->size_rule == ISD_SIZES_LISTED_INVALID_SIZE)
            return isd_err_set(p->err, ISD_E_INVALID_SIZE, NULL,
                               "The size is not supported by this model.");
        if (!ok)
            return api_err_supported(p->err, ISD_E_INVALID_VALUE, "size", s, len, prof->sizes);
        api_parse_wxh(s, len, &w, &h);
    }
    out->width = (int)w;
    out->height = (int)h;
    snprintf(out->size, sizeof out->size, "%ldx%ld", w, h);
    return 0;
}

/* The parameters after n, for any endpoint; the endpoint's known-key list has already refused
 * those it does not take, so an absent one just keeps its default. */
int api_get_options(struct params *p, const struct isd_profile *prof,
                    struct isd_images_request *out)
{
    static const char *const auto_only[] = {"auto", NULL};
    int rc;
    const char *q;
    if ((rc =
             api_get_enum(p, "quality", prof->qualities, prof->gpt ? NULL : auto_only, "auto", &q)))
        return rc;
    out->quality_requested = q;
    out->quality = strcmp(q, "auto") == 0 ? prof->quality_auto : q;

    const char *rf = "url";
    if (!prof->gpt && (rc = api_get_enum(p, "response_format", response_formats, NULL, "url", &rf)))
        return rc;
    out->response_format = strcmp(rf, "b64_json") == 0 ? ISD_RF_B64_JSON : ISD_RF_URL;

    const char *of;
    if ((rc = api_get_enum(p, "output_format", output_formats, NULL, "png", &of)))
        return rc;
    isd_format_parse(of, &out->output_format);

    long comp;
    if ((rc = api_get_int(p, "output_compression", 0, 100, 100, &comp)))
        return rc;
    out->output_compression = (int)comp;

    if ((rc = get_size(p, prof, out)))
        return rc;
    if ((rc = api_get_enum(p, "moderation", moderations, NULL, "auto", &out->moderation)))
        return rc;
    if ((rc = api_get_enum(p, "background", backgrounds, NULL, "auto", &out->background_requested)))
        return rc;
    out->transparent = strcmp(out->background_requested, "transparent") == 0;
    if (prof->id == ISD_PROFILE_DALL_E_3 &&
        (rc = api_get_enum(p, "style", styles, NULL, "vivid", &out->style)))
        return rc;
    if ((rc = api_get_enum(p, "input_fidelity", fidelities, NULL, "low", &out->input_fidelity)))
        return rc;
    enum pv_kind fk = api_param(p, "input_fidelity").kind;
    if (fk != PV_ABSENT && fk != PV_NULL && !prof->input_fidelity)
        return isd_err_set(p->err, ISD_E_INPUT_FIDELITY, "input_fidelity",
                           "input_fidelity is not supported for the model '%s'.", out->model);
    if (prof->id == ISD_PROFILE_GPT_IMAGE_2)
        out->input_fidelity = "high"; /* always high fidelity (§3.2) */
    if ((rc = api_get_string(p, "user", &out->user, NULL)))
        return rc;
    if ((rc = api_get_bool(p, "stream", &out->stream)))
        return rc;
    long partials;
    if ((rc = api_get_int(p, "partial_images", 0, 3, 0, &partials)))
        return rc;
    out->partial_images = (int)partials;
    return 0;
}

static int get_negative_prompt(struct params *p, const struct isd_profile *prof,
                               struct isd_api_extensions *x)
{
    size_t len = 0, chars = 0;
    int rc = api_get_string(p, "negative_prompt", &x->negative_prompt, &len);
    if (rc < 0 || !x->negative_prompt)
        return rc;
    isd_utf8_count(x->negative_prompt, len, &chars);
    if (chars > (size_t)prof->max_prompt_chars)
        return isd_err_set(p->err, ISD_E_STRING_TOO_LONG, "negative_prompt",
                           "Invalid 'negative_prompt': string too long. Expected a string with "
                           "maximum length %d, but got a string with length %zu instead.",
                           prof->max_prompt_chars, chars);
    return 0;
}

int api_get_extensions(struct params *p, const struct isd_profile *prof,
                       struct isd_images_request *out)
{
    struct isd_api_extensions *x = &out->ext;
    if (!p->extensions)
        return 0;
    long seed, steps;
    int rc;
    if ((rc = api_get_int(p, "seed", 0, (long)ISD_API_EXT_SEED_MAX, 0, &seed)))
        return rc;
    enum pv_kind sk = api_param(p, "seed").kind;
    x->has_seed = sk != PV_ABSENT && sk != PV_NULL;
    x->seed = (uint64_t)seed;
    if ((rc = api_get_int(p, "steps", 1, ISD_API_EXT_STEPS_MAX, 0, &steps)))
        return rc;
    x->steps = (int)steps;
    if ((rc = api_get_number(p, "guidance_scale", 1.0, false, ISD_API_EXT_GUIDANCE_MAX, 0.0,
                             &x->guidance_scale)) ||
        (rc = get_negative_prompt(p, prof, x)) ||
        (rc = api_get_enum(p, "sampler", samplers, NULL, NULL, &x->sampler)))
        return rc;
    if (out->endpoint != ISD_EP_GENERATIONS &&
        (rc = api_get_number(p, "strength", 0.0, true, 1.0, 0.0, &x->strength)))
        return rc;
    return 0;
}

/* Rules that involve several parameters (§3.1, §4.1). */
int api_check_combinations(struct params *p, const struct isd_profile *prof,
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
    if (!prof->gpt)
        out->output_format = ISD_FMT_PNG;
    return 0;
}

/* A copy of a JSON text where every integer literal too long for int64 (19 digits or more)
 * gets ".0" appended, so jansson reads it as a real instead of failing. Strings are skipped
 * (with their escapes). NULL when out of memory. */
static char *rewrite_huge_integers(const char *s, size_t len, size_t *out_len)
{
    struct isd_buf b;
    isd_buf_init(&b, len + len / 4 + 16);
    size_t i = 0, from = 0;
    bool in_string = false;
    while (i < len) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            i++;
            continue;
        }
        if (c == '"') {
            in_string = true;
            i++;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            i++;
            continue;
        }
        size_t start = i, digits = 0;
        if (c == '-')
            i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
        bool integer = !(i < len && (s[i] == '.' || s[i] == 'e' || s[i] == 'E'));
        while (i < len && (s[i] == '.' || s[i] == 'e' || s[i] == 'E' || s[i] == '+' ||
                           s[i] == '-' || (s[i] >= '0' && s[i] <= '9')))
            i++;
        if (integer && digits >= 19 && i > start) {
            if (isd_buf_append(&b, s + from, i - from) < 0 || isd_buf_append(&b, ".0", 2) < 0) {
                isd_buf_release(&b);
                return NULL;
            }
            from = i;
        }
    }
    if (isd_buf_append(&b, s + from, len - from) < 0) {
        isd_buf_release(&b);
        return NULL;
    }
    return isd_buf_detach(&b, out_len);
}

/* Reads a JSON body. Integers beyond int64 make jansson fail; such bodies are read again with
 * just those integers turned into reals, which api_get_int() then reports as the (absurd)
 * integers they are, while genuine decimals stay decimals. */
json_t *api_load_json(const char *body, size_t len, bool *huge_ints, struct isd_error *err)
{
    json_error_t je;
    *huge_ints = false;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root && json_error_code(&je) == json_error_numeric_overflow) {
        size_t n;
        char *copy = rewrite_huge_integers(body, len, &n);
        if (copy) {
            root = json_loadb(copy, n, 0, &je);
            free(copy);
            *huge_ints = root != NULL;
        }
    }
    if (!root) {
        isd_err_set(err, ISD_E_BAD_JSON, NULL,
                    "We could not parse the JSON body of your request. (HINT: This likely means "
                    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                    "payload, but what was sent was not valid JSON. If you have trouble figuring "
                    "out how to fix this, please contact us through our help center at "
                    "help.openai.com.)");
        return NULL;
    }
    if (!json_is_object(root)) {
        isd_err_set(err, ISD_E_INVALID_TYPE, NULL,
                    "Invalid type for request body: expected an object, but got %s instead.",
                    api_json_type_phrase(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

void api_request_defaults(struct isd_images_request *r, enum isd_endpoint ep)
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

/* ---- /v1/images/generations ---- */

static int check_unknown_keys(struct params *p, const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach(p->root, key, v)
    {
        if (!api_in_list(key, known) &&
            !(p->extensions && api_in_list(key, api_ext_generation_params)))
            return isd_api_err_unknown_param(p->err, key);
    }
    return 0;
}

/* Parameters valid for generations but not for this model. */
static int check_profile_params(struct params *p, const struct isd_profile *prof)
{
    if (prof->gpt) {
        /* refused even when null (§3.1) */
        if (api_param(p, "response_format").kind != PV_ABSENT)
            return isd_api_err_unknown_param(p->err, "response_format");
        if (api_param(p, "style").kind != PV_ABSENT)
            return isd_api_err_unknown_param(p->err, "style");
        return 0;
    }
    for (const char *const *n = gpt_only_params; *n; n++) {
        if (strcmp(*n, "stream") == 0)
            continue; /* refused with a clearer message among the combinations */
        enum pv_kind k = api_param(p, *n).kind;
        if (k != PV_ABSENT && k != PV_NULL)
            return isd_api_err_unknown_param(p->err, *n);
    }
    enum pv_kind sk = api_param(p, "style").kind;
    if (prof->id != ISD_PROFILE_DALL_E_3 && sk != PV_ABSENT && sk != PV_NULL)
        return isd_api_err_unknown_param(p->err, "style");
    return 0;
}

int isd_api_parse_generation(const char *body, size_t len, const struct isd_api_resolver *res,
                             struct isd_images_request *out, struct isd_error *err)
{
    api_request_defaults(out, ISD_EP_GENERATIONS);
    struct params p = {.err = err};
    p.root = api_load_json(body, len, &p.huge_ints, err);
    if (!p.root)
        return -(int)err->id;
    const char *dflt = uses_any(&p, gpt_only_params) ? res->default_gpt_model : res->default_model;
    p.extensions = api_extensions_allowed(&p, res, dflt);
    int rc;
    if ((rc = check_unknown_keys(&p, generation_params)) ||
        (rc = api_resolve_model(&p, res, dflt, out)) ||
        (rc = check_profile_params(&p, out->profile)) ||
        (rc = api_get_prompt(&p, out->profile, out)) || (rc = api_get_n(&p, out->profile, out)) ||
        (rc = api_get_options(&p, out->profile, out)) ||
        (rc = api_get_extensions(&p, out->profile, out)) ||
        (rc = api_check_combinations(&p, out->profile, out)))
        goto out;
out:
    json_decref(p.root);
    if (rc < 0)
        isd_images_request_release(out);
    return rc;
}

static void input_release(struct isd_api_input *in)
{
    free(in->content_type);
    free(in->url);
    isd_buf_release(&in->bytes);
    in->content_type = NULL;
    in->url = NULL;
}

void isd_images_request_release(struct isd_images_request *r)
{
    free(r->prompt);
    free(r->user);
    free(r->ext.negative_prompt);
    r->prompt = NULL;
    r->user = NULL;
    r->ext.negative_prompt = NULL;
    for (int i = 0; i < r->n_inputs; i++)
        input_release(&r->inputs[i]);
    r->n_inputs = 0;
    if (r->has_mask)
        input_release(&r->mask);
    r->has_mask = false;
}
