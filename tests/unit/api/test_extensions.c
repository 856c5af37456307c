/*
 * api extension fields of local models (api.h struct isd_api_extensions): seed, steps,
 * guidance_scale, negative_prompt, sampler and (edits, variations) strength, through all four
 * validators: JSON generations, JSON edits, multipart edits and multipart variations.
 * - accepted with their boundaries for models whose resolver says they take extensions;
 * - refused as unknown parameters for OpenAI models (named, by default, or when the callback
 *   is NULL), with exactly the error an unknown key gets today, also where other errors apply;
 * - type, range and list errors with OpenAI's wording; absent and null fields leave zeros.
 * Bodies are written with ' for " (converted before parsing). Every failed parse must leave
 * nothing allocated (ASan/LSan run the whole binary).
 */
#include "support/test.h"

#include "api/api.h"
#include "buf/buf.h"
#include "codec/codec.h"
#include "err/err.h"
#include "image/image.h"
#include "multipart/multipart.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake catalogue: the OpenAI models plus two local ones ---- */

/* sd-turbo: a local model under GPT rules (JSON and multipart edits); sd-classic: under
 * dall-e-2 rules (variations, prompts of at most 1000 characters). */
static const struct isd_profile *fake_lookup(void *ctx, const char *model, size_t len)
{
    (void)ctx;
    static const struct {
        const char *alias, *profile;
    } aliases[] = {
        {"chatgpt-image-latest", "gpt-image-1.5"},
        {"gpt-image-2-2026-04-21", "gpt-image-2"},
        {"sd-turbo", "gpt-image-1"},
        {"sd-classic", "dall-e-2"},
    };
    char name[64];
    if (len >= sizeof name)
        return NULL;
    memcpy(name, model, len);
    name[len] = '\0';
    if (strlen(name) != len)
        return NULL;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].alias) == 0)
            return isd_api_profile_by_name(aliases[i].profile);
    return isd_api_profile_by_name(name);
}

static bool fake_extensions(void *ctx, const char *model, size_t len)
{
    (void)ctx;
    return len > 3 && memcmp(model, "sd-", 3) == 0;
}

/* OpenAI models by default; the local models take extensions. */
static const struct isd_api_resolver res_openai = {
    .lookup = fake_lookup,
    .default_model = "dall-e-2",
    .default_gpt_model = "gpt-image-1",
    .default_edit_model = "gpt-image-1",
    .extensions = fake_extensions,
};
/* Local models by default. */
static const struct isd_api_resolver res_local = {
    .lookup = fake_lookup,
    .default_model = "sd-classic",
    .default_gpt_model = "sd-turbo",
    .default_edit_model = "sd-turbo",
    .extensions = fake_extensions,
};
/* No extensions callback: no model takes them. */
static const struct isd_api_resolver res_none = {
    .lookup = fake_lookup,
    .default_model = "dall-e-2",
    .default_gpt_model = "gpt-image-1",
    .default_edit_model = "gpt-image-1",
};

/* ---- requests of the four kinds ---- */

enum kind { GEN = 0, EDIT_JSON, EDIT_FORM, VARIATION, KIND__COUNT };
#define K_GEN       (1u << GEN)
#define K_EDIT_JSON (1u << EDIT_JSON)
#define K_EDIT_FORM (1u << EDIT_FORM)
#define K_VARIATION (1u << VARIATION)
#define K_JSON      (K_GEN | K_EDIT_JSON)
#define K_FORM      (K_EDIT_FORM | K_VARIATION)
#define K_EDITS     (K_EDIT_JSON | K_EDIT_FORM | K_VARIATION)
#define K_ALL       (K_JSON | K_FORM)

static const char *const kind_names[] = {"generation", "JSON edit", "multipart edit", "variation"};

/* The local model each kind is tried with. */
static const char *const local_model[] = {"sd-turbo", "sd-turbo", "sd-turbo", "sd-classic"};

/* One extension field: a JSON literal ' for "; in a form, a quoted literal is sent without its
 * quotes and anything else as written. `text` (when set) is what a form sends instead. */
struct fld {
    const char *name;
    const char *value;
    const char *text;
};

/* A 16x16 RGBA PNG, made once: valid for GPT edits and dall-e-2 edits and variations. */
static struct isd_buf png;
static struct isd_buf png_b64;

static int make_png(void **state)
{
    (void)state;
    struct isd_error err;
    struct isd_image *im = isd_image_new(16, 16, &err);
    if (!im)
        return -1;
    isd_image_fill(im, 200, 100, 50, 255);
    im->has_alpha = true;
    struct isd_encode_opts o = {.format = ISD_FMT_PNG, .compression = 100, .keep_alpha = true};
    isd_buf_init(&png, 1 << 20);
    isd_buf_init(&png_b64, 1 << 20);
    int rc = isd_codec_encode_buf(im, &o, &png, &err);
    isd_image_free(im);
    if (rc == 0)
        rc = isd_base64_encode(&png_b64, png.data, png.len);
    return rc;
}

static int free_png(void **state)
{
    (void)state;
    isd_buf_release(&png);
    isd_buf_release(&png_b64);
    return 0;
}

static void add_json(struct isd_buf *b, const char *quoted)
{
    for (const char *p = quoted; *p; p++)
        assert_int_equal(isd_buf_append(b, *p == '\'' ? "\"" : p, 1), 0);
}

static char *json_body(enum kind k, const char *model, const char *prompt, const struct fld *fields,
                       size_t n)
{
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    assert_int_equal(isd_buf_printf(&b, "{\"prompt\":\"%s\"", prompt), 0);
    if (model)
        assert_int_equal(isd_buf_printf(&b, ",\"model\":\"%s\"", model), 0);
    if (k == EDIT_JSON)
        assert_int_equal(isd_buf_printf(&b,
                                        ",\"images\":[{\"image_url\":\"data:image/png;base64,"
                                        "%.*s\"}]",
                                        (int)png_b64.len, png_b64.data),
                         0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(isd_buf_printf(&b, ",\"%s\":", fields[i].name), 0);
        add_json(&b, fields[i].value);
    }
    assert_int_equal(isd_buf_append_str(&b, "}"), 0);
    return isd_buf_detach(&b, NULL);
}

#define BOUNDARY "imagesd-ext-7q3"

static void form_text(struct isd_buf *b, const char *name, const char *value, size_t len)
{
    assert_int_equal(isd_buf_printf(b,
                                    "--" BOUNDARY "\r\nContent-Disposition: form-data; "
                                    "name=\"%s\"\r\n\r\n",
                                    name),
                     0);
    assert_int_equal(isd_buf_append(b, value, len), 0);
    assert_int_equal(isd_buf_append_str(b, "\r\n"), 0);
}

/* The form text of a field: its `text`, or the JSON literal without its quotes. */
static void form_field(struct isd_buf *b, const struct fld *f)
{
    const char *v = f->text ? f->text : f->value;
    size_t len = strlen(v);
    if (!f->text && len >= 2 && v[0] == '\'' && v[len - 1] == '\'')
        v++, len -= 2;
    form_text(b, f->name, v, len);
}

/* Parses a multipart body of the kind into a form (the caller releases it). */
static void parse_form(struct isd_buf *body, struct isd_form *form)
{
    struct isd_form_limits lim = {
        .max_files = 17,
        .max_file_bytes = 50u << 20,
        .max_text_bytes = 256 * 1024,
        .max_total_bytes = 64u << 20,
    };
    isd_form_init(form, &lim);
    struct isd_mp_parser *mp = malloc(sizeof *mp);
    assert_non_null(mp);
    struct isd_error err;
    assert_int_equal(isd_mp_parser_init(mp, "multipart/form-data; boundary=" BOUNDARY,
                                        &isd_form_callbacks, form, &err),
                     0);
    assert_int_equal(isd_mp_parser_feed(mp, body->data, body->len, &err), 0);
    assert_int_equal(isd_mp_parser_finish(mp, &err), 0);
    isd_mp_parser_release(mp);
    free(mp);
}

/* Builds and validates one request. Forms: model (when set), prompt (edits), the image, then
 * the fields in order. */
static int run(enum kind k, const struct isd_api_resolver *res, const char *model,
               const char *prompt, const struct fld *fields, size_t n, struct isd_images_request *r,
               struct isd_error *err)
{
    memset(err, 0x5A, sizeof *err);
    memset(r, 0x5A, sizeof *r);
    if (k == GEN || k == EDIT_JSON) {
        char *body = json_body(k, model, prompt, fields, n);
        int rc = k == GEN ? isd_api_parse_generation(body, strlen(body), res, r, err)
                          : isd_api_parse_edit_json(body, strlen(body), res, r, err);
        free(body);
        return rc;
    }
    struct isd_buf b;
    isd_buf_init(&b, 1 << 24);
    if (model)
        form_text(&b, "model", model, strlen(model));
    if (k == EDIT_FORM)
        form_text(&b, "prompt", prompt, strlen(prompt));
    assert_int_equal(isd_buf_append_str(&b, "--" BOUNDARY "\r\nContent-Disposition: form-data; "
                                            "name=\"image\"; filename=\"a.png\"\r\n"
                                            "Content-Type: image/png\r\n\r\n"),
                     0);
    assert_int_equal(isd_buf_append(&b, png.data, png.len), 0);
    assert_int_equal(isd_buf_append_str(&b, "\r\n"), 0);
    for (size_t i = 0; i < n; i++)
        form_field(&b, &fields[i]);
    assert_int_equal(isd_buf_append_str(&b, "--" BOUNDARY "--\r\n"), 0);
    struct isd_form form;
    parse_form(&b, &form);
    isd_buf_release(&b);
    int rc = k == EDIT_FORM ? isd_api_parse_edit_form(&form, res, "req_ext", r, err)
                            : isd_api_parse_variation_form(&form, res, "req_ext", r, err);
    isd_form_release(&form);
    return rc;
}

static void describe(enum kind k, const char *model, const struct fld *f, size_t n)
{
    print_error("  %s, model %s:", kind_names[k], model ? model : "(omitted)");
    for (size_t i = 0; i < n; i++)
        print_error(" %s=%s", f[i].name, f[i].text ? f[i].text : f[i].value);
    print_error("\n");
}

/* Runs and checks the exact error; a failed parse must have released everything. */
static void expect_error(enum kind k, const struct isd_api_resolver *res, const char *model,
                         const char *prompt, const struct fld *f, size_t n, enum isd_err_id id,
                         const char *param, const char *message)
{
    struct isd_images_request r;
    struct isd_error err;
    int rc = run(k, res, model, prompt, f, n, &r, &err);
    bool ok = rc == -(int)id && err.id == id && strcmp(err.param, param) == 0 &&
              strcmp(err.message, message) == 0;
    bool clean = rc >= 0 || (r.prompt == NULL && r.user == NULL && r.ext.negative_prompt == NULL &&
                             r.n_inputs == 0);
    if (!ok || !clean) {
        describe(k, model, f, n);
        print_error("  expected: %s param=%s\n            %s\n  got:      rc=%d %s param=%s%s\n"
                    "            %s\n",
                    isd_err_name(id), param, message, rc, rc < 0 ? isd_err_name(err.id) : "OK",
                    rc < 0 ? err.param : "-", clean ? "" : " (request not released)",
                    rc < 0 ? err.message : "");
        if (rc == 0)
            isd_images_request_release(&r);
        fail();
    }
    if (rc == 0)
        isd_images_request_release(&r);
}

static void expect_ok(enum kind k, const struct isd_api_resolver *res, const char *model,
                      const struct fld *f, size_t n, struct isd_images_request *r)
{
    struct isd_error err;
    int rc = run(k, res, model, "a cat", f, n, r, &err);
    if (rc != 0) {
        describe(k, model, f, n);
        print_error("  expected success, got %s param=%s\n            %s\n", isd_err_name(err.id),
                    err.param, err.message);
        fail();
    }
}

#define UNKNOWN(p)        "Unknown parameter: '" p "'."
#define TYPE(p, exp, got) "Invalid type for '" p "': expected " exp ", but got " got " instead."
#define CONVERT(p, what)                                                                           \
    "Invalid type for '" p "': expected " what ", but got a string value that could not be "       \
    "converted into " what "."
#define INT_BELOW(p, min, got)                                                                     \
    "Invalid '" p "': integer below minimum value. Expected a value >= " min ", but got " got      \
    " instead."
#define INT_ABOVE(p, max, got)                                                                     \
    "Invalid '" p "': integer above maximum value. Expected a value <= " max ", but got " got      \
    " instead."
#define DEC_BELOW(p, op_min, got)                                                                  \
    "Invalid '" p "': decimal below minimum value. Expected a value " op_min ", but got " got      \
    " instead."
#define DEC_ABOVE(p, max, got)                                                                     \
    "Invalid '" p "': decimal above maximum value. Expected a value <= " max ", but got " got      \
    " instead."
#define SAMPLERS         "'euler', 'euler_a', 'heun', 'dpm++2m', and 'lcm'"
#define SAMPLER_VALUE(v) "Invalid value: '" v "'. Supported values are: " SAMPLERS "."
#define SEED_MAX         "9007199254740991"
/* decimal range errors share the integer ids until err.h has the decimal codes (api_int.h) */
#define E_DEC_BELOW      ISD_E_DEC_BELOW_MIN
#define E_DEC_ABOVE      ISD_E_DEC_ABOVE_MAX

/* ---- accepted values ---- */

struct ok_case {
    unsigned kinds;
    struct fld f;
    /* expected ext (negative_prompt compared as a string; NULL: none) */
    bool has_seed;
    uint64_t seed;
    int steps;
    double guidance;
    const char *negative;
    const char *sampler;
    double strength;
};

static const struct ok_case ok_cases[] = {
    {K_ALL, {"seed", "0", NULL}, .has_seed = true, .seed = 0},
    {K_ALL, {"seed", "42", NULL}, .has_seed = true, .seed = 42},
    {K_ALL, {"seed", SEED_MAX, NULL}, .has_seed = true, .seed = 9007199254740991ULL},
    {K_FORM, {"seed", "", "+7"}, .has_seed = true, .seed = 7},
    {K_JSON, {"seed", "null", NULL}},
    {K_ALL, {"steps", "1", NULL}, .steps = 1},
    {K_ALL, {"steps", "150", NULL}, .steps = 150},
    {K_ALL, {"steps", "25", NULL}, .steps = 25},
    {K_JSON, {"steps", "null", NULL}},
    {K_ALL, {"guidance_scale", "1", NULL}, .guidance = 1.0},
    {K_ALL, {"guidance_scale", "1.0", NULL}, .guidance = 1.0},
    {K_ALL, {"guidance_scale", "30", NULL}, .guidance = 30.0},
    {K_ALL, {"guidance_scale", "30.0", NULL}, .guidance = 30.0},
    {K_ALL, {"guidance_scale", "7.5", NULL}, .guidance = 7.5},
    {K_ALL, {"guidance_scale", "0.3e1", NULL}, .guidance = 3.0},
    {K_ALL, {"guidance_scale", "3E+1", NULL}, .guidance = 30.0},
    {K_FORM, {"guidance_scale", "", "12."}, .guidance = 12.0},
    {K_FORM, {"guidance_scale", "", "+2"}, .guidance = 2.0},
    {K_JSON, {"guidance_scale", "null", NULL}},
    {K_ALL, {"negative_prompt", "'blurry, low quality'", NULL}, .negative = "blurry, low quality"},
    {K_ALL, {"negative_prompt", "''", NULL}, .negative = ""},
    {K_ALL,
     {"negative_prompt",
      "'\xc3\xbcn\xc3\xaf"
      "c\xc3\xb6"
      "d\xc3\xa9 \xe6\xbc\xa2'",
      NULL},
     .negative = "\xc3\xbcn\xc3\xaf"
                 "c\xc3\xb6"
                 "d\xc3\xa9 \xe6\xbc\xa2"},
    {K_JSON, {"negative_prompt", "null", NULL}},
    {K_ALL, {"sampler", "'euler'", NULL}, .sampler = "euler"},
    {K_ALL, {"sampler", "'euler_a'", NULL}, .sampler = "euler_a"},
    {K_ALL, {"sampler", "'heun'", NULL}, .sampler = "heun"},
    {K_ALL, {"sampler", "'dpm++2m'", NULL}, .sampler = "dpm++2m"},
    {K_ALL, {"sampler", "'lcm'", NULL}, .sampler = "lcm"},
    {K_JSON, {"sampler", "null", NULL}},
    {K_EDITS, {"strength", "1", NULL}, .strength = 1.0},
    {K_EDITS, {"strength", "1.0", NULL}, .strength = 1.0},
    {K_EDITS, {"strength", "0.5", NULL}, .strength = 0.5},
    {K_EDITS, {"strength", "1e-9", NULL}, .strength = 1e-9},
    {K_EDITS, {"strength", "0.000001", NULL}, .strength = 0.000001},
    {K_EDIT_JSON, {"strength", "null", NULL}},
};

static void check_ext(const struct isd_api_extensions *x, bool has_seed, uint64_t seed, int steps,
                      double guidance, const char *negative, const char *sampler, double strength)
{
    assert_int_equal(x->has_seed, has_seed);
    assert_int_equal(x->seed, seed);
    assert_int_equal(x->steps, steps);
    assert_true(x->guidance_scale == guidance);
    if (negative) {
        assert_non_null(x->negative_prompt);
        assert_string_equal(x->negative_prompt, negative);
    } else {
        assert_null(x->negative_prompt);
    }
    if (sampler)
        assert_string_equal(x->sampler, sampler);
    else
        assert_null(x->sampler);
    assert_true(x->strength == strength);
}

static void every_field_accepted_with_its_boundaries(void **state)
{
    (void)state;
    int runs = 0;
    for (enum kind k = 0; k < KIND__COUNT; k++) {
        for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
            const struct ok_case *c = &ok_cases[i];
            if (!(c->kinds & (1u << k)))
                continue;
            struct isd_images_request r;
            expect_ok(k, &res_openai, local_model[k], &c->f, 1, &r);
            assert_string_equal(r.model, local_model[k]);
            check_ext(&r.ext, c->has_seed, c->seed, c->steps, c->guidance, c->negative, c->sampler,
                      c->strength);
            isd_images_request_release(&r);
            assert_null(r.ext.negative_prompt);
            runs++;
        }
    }
    assert_true(runs > 100);
}

/* The sampler is the static string of the list, not a copy of the request's bytes. */
static void sampler_is_the_static_string(void **state)
{
    (void)state;
    const char *seen[KIND__COUNT];
    for (enum kind k = 0; k < KIND__COUNT; k++) {
        struct fld f = {"sampler", "'heun'", NULL};
        struct isd_images_request r;
        expect_ok(k, &res_openai, local_model[k], &f, 1, &r);
        seen[k] = r.ext.sampler;
        isd_images_request_release(&r);
        assert_string_equal(seen[k], "heun"); /* still readable after release */
        assert_ptr_equal(seen[k], seen[0]);
    }
}

static void all_fields_together(void **state)
{
    (void)state;
    const struct fld f[] = {
        {"seed", "1234", NULL},          {"steps", "30", NULL},
        {"guidance_scale", "6.5", NULL}, {"negative_prompt", "'text, watermark'", NULL},
        {"sampler", "'lcm'", NULL},      {"strength", "0.8", NULL},
    };
    for (enum kind k = 0; k < KIND__COUNT; k++) {
        size_t n = k == GEN ? 5 : 6;
        struct isd_images_request r;
        expect_ok(k, &res_openai, local_model[k], f, n, &r);
        check_ext(&r.ext, true, 1234, 30, 6.5, "text, watermark", "lcm", k == GEN ? 0.0 : 0.8);
        /* the OpenAI fields are unaffected */
        if (k != VARIATION)
            assert_string_equal(r.prompt, "a cat");
        assert_int_equal(r.n, 1);
        assert_int_equal(r.n_inputs, k == GEN ? 0 : 1);
        isd_images_request_release(&r);
    }
}

static void absent_fields_leave_zeros(void **state)
{
    (void)state;
    for (enum kind k = 0; k < KIND__COUNT; k++) {
        const struct isd_api_resolver *resolvers[] = {&res_openai, &res_local, &res_none};
        const char *models[] = {local_model[k], "gpt-image-1", "dall-e-2", NULL};
        for (size_t ri = 0; ri < 3; ri++) {
            for (size_t mi = 0; mi < 4; mi++) {
                if (k == EDIT_JSON && models[mi] && strcmp(models[mi], "dall-e-2") == 0)
                    continue; /* JSON edits are for GPT profiles */
                if (k == VARIATION && models[mi] && strcmp(models[mi], "gpt-image-1") == 0)
                    continue; /* variations are dall-e-2's */
                struct isd_images_request r;
                expect_ok(k, resolvers[ri], models[mi], NULL, 0, &r);
                check_ext(&r.ext, false, 0, 0, 0.0, NULL, NULL, 0.0);
                isd_images_request_release(&r);
            }
        }
    }
    /* JSON null for every field of a local model: omitted */
    const struct fld nulls[] = {
        {"seed", "null", NULL},
        {"steps", "null", NULL},
        {"guidance_scale", "null", NULL},
        {"sampler", "null", NULL},
        {"negative_prompt", "null", NULL},
        {"strength", "null", NULL},
    };
    struct isd_images_request r;
    expect_ok(GEN, &res_openai, "sd-turbo", nulls, 5, &r);
    check_ext(&r.ext, false, 0, 0, 0.0, NULL, NULL, 0.0);
    isd_images_request_release(&r);
    expect_ok(EDIT_JSON, &res_openai, "sd-turbo", nulls, 6, &r);
    check_ext(&r.ext, false, 0, 0, 0.0, NULL, NULL, 0.0);
    isd_images_request_release(&r);
}

/* ---- bad values ---- */

struct err_case {
    unsigned kinds;
    struct fld f;
    enum isd_err_id id;
    const char *message;
};

static const struct err_case err_cases[] = {
    /* seed */
    {K_ALL, {"seed", "-1", NULL}, ISD_E_INT_BELOW_MIN, INT_BELOW("seed", "0", "-1")},
    {K_ALL,
     {"seed", "9007199254740992", NULL},
     ISD_E_INT_ABOVE_MAX,
     INT_ABOVE("seed", SEED_MAX, "9007199254740992")},
    {K_JSON,
     {"seed", "18446744073709551616", NULL},
     ISD_E_INT_ABOVE_MAX,
     INT_ABOVE("seed", SEED_MAX, "18446744073709551616")},
    {K_JSON,
     {"seed", "1.5", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("seed", "an integer", "a decimal number")},
    {K_JSON,
     {"seed", "1.0", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("seed", "an integer", "a decimal number")},
    {K_JSON, {"seed", "'5'", NULL}, ISD_E_INVALID_TYPE, TYPE("seed", "an integer", "a string")},
    {K_JSON, {"seed", "true", NULL}, ISD_E_INVALID_TYPE, TYPE("seed", "an integer", "a boolean")},
    {K_JSON, {"seed", "[1]", NULL}, ISD_E_INVALID_TYPE, TYPE("seed", "an integer", "an array")},
    {K_FORM, {"seed", "", "abc"}, ISD_E_INVALID_TYPE, CONVERT("seed", "an integer")},
    {K_FORM, {"seed", "", "1.5"}, ISD_E_INVALID_TYPE, CONVERT("seed", "an integer")},
    {K_FORM, {"seed", "", ""}, ISD_E_INVALID_TYPE, CONVERT("seed", "an integer")},
    /* steps */
    {K_ALL, {"steps", "0", NULL}, ISD_E_INT_BELOW_MIN, INT_BELOW("steps", "1", "0")},
    {K_ALL, {"steps", "-3", NULL}, ISD_E_INT_BELOW_MIN, INT_BELOW("steps", "1", "-3")},
    {K_ALL, {"steps", "151", NULL}, ISD_E_INT_ABOVE_MAX, INT_ABOVE("steps", "150", "151")},
    {K_ALL, {"steps", "500", NULL}, ISD_E_INT_ABOVE_MAX, INT_ABOVE("steps", "150", "500")},
    {K_JSON,
     {"steps", "20.5", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("steps", "an integer", "a decimal number")},
    {K_JSON, {"steps", "'20'", NULL}, ISD_E_INVALID_TYPE, TYPE("steps", "an integer", "a string")},
    {K_FORM, {"steps", "", "twenty"}, ISD_E_INVALID_TYPE, CONVERT("steps", "an integer")},
    /* guidance_scale */
    {K_ALL,
     {"guidance_scale", "31.5", NULL},
     E_DEC_ABOVE,
     DEC_ABOVE("guidance_scale", "30", "31.5")},
    {K_ALL,
     {"guidance_scale", "30.000001", NULL},
     E_DEC_ABOVE,
     DEC_ABOVE("guidance_scale", "30", "30.000001")},
    {K_ALL, {"guidance_scale", "31", NULL}, E_DEC_ABOVE, DEC_ABOVE("guidance_scale", "30", "31")},
    {K_ALL,
     {"guidance_scale", "0.5", NULL},
     E_DEC_BELOW,
     DEC_BELOW("guidance_scale", ">= 1", "0.5")},
    {K_ALL, {"guidance_scale", "0", NULL}, E_DEC_BELOW, DEC_BELOW("guidance_scale", ">= 1", "0")},
    {K_ALL,
     {"guidance_scale", "0.99999", NULL},
     E_DEC_BELOW,
     DEC_BELOW("guidance_scale", ">= 1", "0.99999")},
    {K_ALL, {"guidance_scale", "-2", NULL}, E_DEC_BELOW, DEC_BELOW("guidance_scale", ">= 1", "-2")},
    /* reals are quoted as Python's repr writes them; form text as sent */
    {K_JSON,
     {"guidance_scale", "0.0", NULL},
     E_DEC_BELOW,
     DEC_BELOW("guidance_scale", ">= 1", "0.0")},
    {K_FORM,
     {"guidance_scale", "", "0.0"},
     E_DEC_BELOW,
     DEC_BELOW("guidance_scale", ">= 1", "0.0")},
    {K_JSON,
     {"guidance_scale", "1e20", NULL},
     E_DEC_ABOVE,
     DEC_ABOVE("guidance_scale", "30", "1e+20")},
    {K_JSON,
     {"guidance_scale", "100000.0", NULL},
     E_DEC_ABOVE,
     DEC_ABOVE("guidance_scale", "30", "100000.0")},
    {K_FORM,
     {"guidance_scale", "", "1e20"},
     E_DEC_ABOVE,
     DEC_ABOVE("guidance_scale", "30", "1e20")},
    {K_FORM,
     {"guidance_scale", "", "1e999"},
     E_DEC_ABOVE,
     DEC_ABOVE("guidance_scale", "30", "1e999")},
    {K_FORM,
     {"guidance_scale", "", "-1e999"},
     E_DEC_BELOW,
     DEC_BELOW("guidance_scale", ">= 1", "-1e999")},
    {K_JSON,
     {"guidance_scale", "1e-7", NULL},
     E_DEC_BELOW,
     DEC_BELOW("guidance_scale", ">= 1", "1e-07")},
    {K_JSON,
     {"guidance_scale", "'7'", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("guidance_scale", "a decimal number", "a string")},
    {K_JSON,
     {"guidance_scale", "false", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("guidance_scale", "a decimal number", "a boolean")},
    {K_JSON,
     {"guidance_scale", "{}", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("guidance_scale", "a decimal number", "an object")},
    {K_FORM,
     {"guidance_scale", "", "abc"},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", ""},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", "7.5x"},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", " 7"},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", "nan"},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", "inf"},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", "0x10"},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", "1e"},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", "."},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    {K_FORM,
     {"guidance_scale", "", "7,5"},
     ISD_E_INVALID_TYPE,
     CONVERT("guidance_scale", "a decimal number")},
    /* negative_prompt */
    {K_JSON,
     {"negative_prompt", "5", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("negative_prompt", "a string", "an integer")},
    {K_JSON,
     {"negative_prompt", "['a']", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("negative_prompt", "a string", "an array")},
    {K_FORM,
     {"negative_prompt", "", "bad \xff utf-8"},
     ISD_E_INVALID_VALUE,
     "Invalid 'negative_prompt': the value is not valid UTF-8 text."},
    {K_FORM,
     {"negative_prompt", "", "\xc3"},
     ISD_E_INVALID_VALUE,
     "Invalid 'negative_prompt': the value is not valid UTF-8 text."},
    {K_FORM,
     {"negative_prompt", "", "\xed\xa0\x80"}, /* a surrogate */
     ISD_E_INVALID_VALUE,
     "Invalid 'negative_prompt': the value is not valid UTF-8 text."},
    /* sampler */
    {K_ALL, {"sampler", "'ddim'", NULL}, ISD_E_INVALID_VALUE, SAMPLER_VALUE("ddim")},
    {K_ALL, {"sampler", "'EULER'", NULL}, ISD_E_INVALID_VALUE, SAMPLER_VALUE("EULER")},
    {K_ALL, {"sampler", "'dpmpp_2m'", NULL}, ISD_E_INVALID_VALUE, SAMPLER_VALUE("dpmpp_2m")},
    {K_ALL, {"sampler", "''", NULL}, ISD_E_INVALID_VALUE, SAMPLER_VALUE("")},
    {K_JSON,
     {"sampler", "1", NULL},
     ISD_E_INVALID_TYPE,
     "Invalid type for 'sampler': expected one of 'euler', 'euler_a', 'heun', 'dpm++2m', or "
     "'lcm', but got an integer instead."},
    /* strength */
    {K_EDITS, {"strength", "0", NULL}, E_DEC_BELOW, DEC_BELOW("strength", "> 0", "0")},
    {K_EDIT_JSON, {"strength", "0.0", NULL}, E_DEC_BELOW, DEC_BELOW("strength", "> 0", "0.0")},
    {K_EDITS, {"strength", "-0.5", NULL}, E_DEC_BELOW, DEC_BELOW("strength", "> 0", "-0.5")},
    {K_EDITS, {"strength", "1.5", NULL}, E_DEC_ABOVE, DEC_ABOVE("strength", "1", "1.5")},
    {K_EDITS, {"strength", "2", NULL}, E_DEC_ABOVE, DEC_ABOVE("strength", "1", "2")},
    {K_EDITS,
     {"strength", "1.0000001", NULL},
     E_DEC_ABOVE,
     DEC_ABOVE("strength", "1", "1.0000001")},
    {K_EDIT_JSON,
     {"strength", "'0.5'", NULL},
     ISD_E_INVALID_TYPE,
     TYPE("strength", "a decimal number", "a string")},
    {K_FORM, {"strength", "", "half"}, ISD_E_INVALID_TYPE, CONVERT("strength", "a decimal number")},
};

static void bad_values(void **state)
{
    (void)state;
    int runs = 0;
    for (enum kind k = 0; k < KIND__COUNT; k++) {
        for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
            const struct err_case *c = &err_cases[i];
            if (!(c->kinds & (1u << k)))
                continue;
            expect_error(k, &res_openai, local_model[k], "a cat", &c->f, 1, c->id, c->f.name,
                         c->message);
            runs++;
        }
    }
    assert_true(runs > 150);
}

/* A file part where a text field belongs. */
static void file_where_a_value_belongs(void **state)
{
    (void)state;
    for (enum kind k = EDIT_FORM; k <= VARIATION; k++) {
        struct isd_buf b;
        isd_buf_init(&b, 1 << 20);
        form_text(&b, "model", local_model[k], strlen(local_model[k]));
        if (k == EDIT_FORM)
            form_text(&b, "prompt", "x", 1);
        assert_int_equal(isd_buf_append_str(&b, "--" BOUNDARY "\r\nContent-Disposition: form-data; "
                                                "name=\"image\"; filename=\"a.png\"\r\n"
                                                "Content-Type: image/png\r\n\r\n"),
                         0);
        assert_int_equal(isd_buf_append(&b, png.data, png.len), 0);
        assert_int_equal(isd_buf_append_str(&b,
                                            "\r\n--" BOUNDARY "\r\nContent-Disposition: form-data; "
                                            "name=\"steps\"; filename=\"s.txt\"\r\n\r\n20\r\n"
                                            "--" BOUNDARY "--\r\n"),
                         0);
        struct isd_form form;
        parse_form(&b, &form);
        isd_buf_release(&b);
        struct isd_images_request r;
        struct isd_error err;
        int rc = k == EDIT_FORM ? isd_api_parse_edit_form(&form, &res_openai, "req", &r, &err)
                                : isd_api_parse_variation_form(&form, &res_openai, "req", &r, &err);
        isd_form_release(&form);
        assert_int_equal(rc, -ISD_E_INVALID_TYPE);
        assert_string_equal(err.param, "steps");
        assert_string_equal(err.message, TYPE("steps", "an integer", "a file"));
    }
}

/* At most the profile's prompt length, in characters (code points), like `prompt`. */
static void negative_prompt_length(void **state)
{
    (void)state;
    static const struct {
        const char *model;
        int max;
    } limits[] = {{"sd-classic", 1000}, {"sd-turbo", 32000}};
    for (size_t li = 0; li < 2; li++) {
        int max = limits[li].max;
        /* max two-byte characters: bytes well over the limit, characters at it */
        size_t cap = (size_t)(max + 1) * 2 + 3;
        char *quoted = malloc(cap);
        assert_non_null(quoted);
        for (int extra = 0; extra <= 1; extra++) {
            size_t n = 0;
            quoted[n++] = '\'';
            for (int i = 0; i < max + extra; i++) {
                quoted[n++] = '\xc3';
                quoted[n++] = '\xa9';
            }
            quoted[n++] = '\'';
            quoted[n] = '\0';
            struct fld f = {"negative_prompt", quoted, NULL};
            for (enum kind k = 0; k < KIND__COUNT; k++) {
                bool gpt = strcmp(limits[li].model, "sd-turbo") == 0;
                if ((k == EDIT_JSON && !gpt) || (k == VARIATION && gpt))
                    continue;
                if (!extra) {
                    struct isd_images_request r;
                    expect_ok(k, &res_openai, limits[li].model, &f, 1, &r);
                    size_t chars = 0;
                    assert_true(isd_utf8_count(r.ext.negative_prompt, strlen(r.ext.negative_prompt),
                                               &chars));
                    assert_int_equal(chars, (size_t)max);
                    isd_images_request_release(&r);
                } else {
                    char msg[256];
                    snprintf(msg, sizeof msg,
                             "Invalid 'negative_prompt': string too long. Expected a string with "
                             "maximum length %d, but got a string with length %d instead.",
                             max, max + 1);
                    expect_error(k, &res_openai, limits[li].model, "a cat", &f, 1,
                                 ISD_E_STRING_TOO_LONG, "negative_prompt", msg);
                }
            }
        }
        free(quoted);
    }
}

/* ---- refused as unknown parameters where the model takes no extensions ---- */

static const struct fld valid_fields[] = {
    {"seed", "7", NULL},
    {"steps", "20", NULL},
    {"guidance_scale", "7.5", NULL},
    {"negative_prompt", "'blurry'", NULL},
    {"sampler", "'euler'", NULL},
    {"strength", "0.5", NULL},
};

static void unknown_for_openai_models(void **state)
{
    (void)state;
    /* model (NULL: omitted) and extra fields that pick the default */
    static const struct {
        enum kind k;
        const struct isd_api_resolver *res;
        const char *model;
        const char *extra_name, *extra_value;
    } setups[] = {
        {GEN, &res_openai, "gpt-image-1", NULL, NULL},
        {GEN, &res_openai, "gpt-image-1-mini", NULL, NULL},
        {GEN, &res_openai, "gpt-image-1.5", NULL, NULL},
        {GEN, &res_openai, "gpt-image-2", NULL, NULL},
        {GEN, &res_openai, "chatgpt-image-latest", NULL, NULL},
        {GEN, &res_openai, "dall-e-2", NULL, NULL},
        {GEN, &res_openai, "dall-e-3", NULL, NULL},
        {GEN, &res_openai, NULL, NULL, NULL},               /* default dall-e-2 */
        {GEN, &res_openai, NULL, "output_format", "'png'"}, /* default gpt-image-1 */
        {GEN, &res_local, NULL, "output_format", "null"},   /* null: still sd-classic... */
        {GEN, &res_none, "sd-turbo", NULL, NULL},           /* no callback */
        {GEN, &res_none, NULL, NULL, NULL},
        {EDIT_JSON, &res_openai, "gpt-image-1", NULL, NULL},
        {EDIT_JSON, &res_openai, "gpt-image-2", NULL, NULL},
        {EDIT_JSON, &res_openai, NULL, NULL, NULL}, /* default gpt-image-1 */
        {EDIT_JSON, &res_none, "sd-turbo", NULL, NULL},
        {EDIT_FORM, &res_openai, "gpt-image-1", NULL, NULL},
        {EDIT_FORM, &res_openai, "dall-e-2", NULL, NULL},
        {EDIT_FORM, &res_openai, NULL, NULL, NULL},
        {EDIT_FORM, &res_none, "sd-classic", NULL, NULL},
        {VARIATION, &res_openai, "dall-e-2", NULL, NULL},
        {VARIATION, &res_openai, NULL, NULL, NULL}, /* default dall-e-2 */
        {VARIATION, &res_local, NULL, NULL, NULL},  /* variations: dall-e-2 */
        {VARIATION, &res_none, "sd-classic", NULL, NULL},
    };
    int runs = 0;
    for (size_t s = 0; s < sizeof setups / sizeof setups[0]; s++) {
        for (size_t i = 0; i < sizeof valid_fields / sizeof valid_fields[0]; i++) {
            struct fld f[2];
            size_t n = 0;
            if (setups[s].extra_name)
                f[n++] = (struct fld){setups[s].extra_name, setups[s].extra_value, NULL};
            f[n++] = valid_fields[i];
            char msg[64];
            snprintf(msg, sizeof msg, "Unknown parameter: '%s'.", valid_fields[i].name);
            if (setups[s].res == &res_local) {
                /* the local default takes extensions: only strength on generations is unknown
                 * there, and variations have no local default */
                if (setups[s].k == GEN && strcmp(valid_fields[i].name, "strength") != 0) {
                    struct isd_images_request r;
                    expect_ok(GEN, setups[s].res, NULL, f, n, &r);
                    assert_string_equal(r.model, "sd-classic");
                    isd_images_request_release(&r);
                    continue;
                }
            }
            expect_error(setups[s].k, setups[s].res, setups[s].model, "a cat", f, n,
                         ISD_E_UNKNOWN_PARAM, valid_fields[i].name, msg);
            runs++;
        }
    }
    assert_true(runs > 100);
}

static void strength_unknown_on_generations(void **state)
{
    (void)state;
    const struct fld f[] = {{"strength", "0.5", NULL}};
    expect_error(GEN, &res_openai, "sd-turbo", "a cat", f, 1, ISD_E_UNKNOWN_PARAM, "strength",
                 UNKNOWN("strength"));
    expect_error(GEN, &res_openai, "sd-classic", "a cat", f, 1, ISD_E_UNKNOWN_PARAM, "strength",
                 UNKNOWN("strength"));
    expect_error(GEN, &res_local, NULL, "a cat", f, 1, ISD_E_UNKNOWN_PARAM, "strength",
                 UNKNOWN("strength"));
    /* even invalid, even null: unknown keys come first */
    const struct fld g[] = {{"steps", "0", NULL}, {"strength", "null", NULL}};
    expect_error(GEN, &res_openai, "sd-turbo", "", g, 2, ISD_E_UNKNOWN_PARAM, "strength",
                 UNKNOWN("strength"));
}

/* A body template (' for ", @ for the key) made into JSON. */
static char *with_key(const char *tmpl, const char *key)
{
    struct isd_buf b;
    isd_buf_init(&b, 4096);
    for (const char *p = tmpl; *p; p++) {
        if (*p == '@')
            assert_int_equal(isd_buf_append_str(&b, key), 0);
        else
            assert_int_equal(isd_buf_append(&b, *p == '\'' ? "\"" : p, 1), 0);
    }
    char *s = isd_buf_detach(&b, NULL);
    assert_non_null(s);
    return s;
}

/* For models without extensions, an extension field answers exactly what any unknown key
 * answers in its place, whatever else is wrong with the request: each body is parsed with the
 * field and with a made-up key in the same place, and the two errors must be the same. */
static void unknown_wins_where_any_unknown_key_does(void **state)
{
    (void)state;
    static const char *const json_bodies[] = {
        /* @ is the key */
        "{'prompt':'x','@':1}",
        "{'@':1,'prompt':'x'}",
        "{'prompt':'','@':1}",
        "{'@':1}",
        "{'model':'nope','prompt':'x','@':1}",
        "{'model':5,'prompt':'x','@':1}",
        "{'model':null,'prompt':'x','@':1}",
        "{'model':'dall-e-2','prompt':'x','n':0,'@':1}",
        "{'model':'dall-e-3','prompt':'x','n':2,'@':1}",
        "{'model':'gpt-image-1','prompt':'x','style':'vivid','@':1}",
        "{'model':'gpt-image-1','prompt':'x','response_format':null,'@':1}",
        "{'model':'dall-e-2','prompt':'x','output_format':'png','@':1}",
        "{'model':'gpt-image-1','prompt':'x','output_compression':50,'@':1}",
        "{'prompt':'x','mask':null,'@':1}",
        "{'prompt':'x','zzz':1,'@':1}",
        "{'prompt':'x','@':1,'zzz':1}",
        "{'prompt':'x','@':'not a number'}",
        "{'prompt':'x','@':-5}",
        "{'prompt':'x','@':null}",
        "{'prompt':'x','model':'sd-turbo','@':1}", /* with res_none below */
    };
    static const char *const names[] = {"seed",    "steps",           "guidance_scale",
                                        "sampler", "negative_prompt", "strength"};
    for (size_t bi = 0; bi < sizeof json_bodies / sizeof json_bodies[0]; bi++) {
        for (int ep = 0; ep < 2; ep++) { /* generations, JSON edits */
            for (size_t ni = 0; ni < sizeof names / sizeof names[0]; ni++) {
                const struct isd_api_resolver *res =
                    strstr(json_bodies[bi], "sd-turbo") ? &res_none : &res_openai;
                struct isd_error e1, e2;
                struct isd_images_request r;
                char *b1 = with_key(json_bodies[bi], names[ni]);
                char *b2 = with_key(json_bodies[bi], "bogus_param");
                int (*parse)(const char *, size_t, const struct isd_api_resolver *,
                             struct isd_images_request *, struct isd_error *) =
                    ep == 0 ? isd_api_parse_generation : isd_api_parse_edit_json;
                int rc1 = parse(b1, strlen(b1), res, &r, &e1);
                if (rc1 == 0)
                    isd_images_request_release(&r);
                int rc2 = parse(b2, strlen(b2), res, &r, &e2);
                if (rc2 == 0)
                    isd_images_request_release(&r);
                bool same = rc1 == rc2 && rc1 < 0 && e1.id == e2.id;
                if (same && strcmp(e2.param, "bogus_param") == 0) {
                    char want[64];
                    snprintf(want, sizeof want, "Unknown parameter: '%s'.", names[ni]);
                    same = strcmp(e2.message, UNKNOWN("bogus_param")) == 0 &&
                           strcmp(e1.param, names[ni]) == 0 && strcmp(e1.message, want) == 0;
                } else if (same) {
                    same = strcmp(e1.param, e2.param) == 0 && strcmp(e1.message, e2.message) == 0;
                }
                if (!same) {
                    print_error("  %s: %s\n    rc=%d %s param=%s %s\n  vs %s\n    rc=%d %s "
                                "param=%s %s\n",
                                ep ? "JSON edit" : "generation", b1, rc1, isd_err_name(e1.id),
                                e1.param, e1.message, b2, rc2, isd_err_name(e2.id), e2.param,
                                e2.message);
                    free(b1);
                    free(b2);
                    fail();
                }
                free(b1);
                free(b2);
            }
        }
    }
}

/* The same for forms: the unknown field beats a missing image, a model that does not exist or
 * does not do variations, a missing prompt. */
static void unknown_wins_in_forms(void **state)
{
    (void)state;
    static const struct {
        enum kind k;
        const char *model; /* NULL: omitted */
        const char *prompt;
    } setups[] = {
        {EDIT_FORM, "dall-e-2", ""},    {EDIT_FORM, "nope", "x"}, {EDIT_FORM, "dall-e-3", "x"},
        {VARIATION, "gpt-image-1", ""}, {VARIATION, "nope", ""},  {VARIATION, NULL, ""},
    };
    for (size_t s = 0; s < sizeof setups / sizeof setups[0]; s++) {
        for (size_t i = 0; i < sizeof valid_fields / sizeof valid_fields[0]; i++) {
            char msg[64];
            snprintf(msg, sizeof msg, "Unknown parameter: '%s'.", valid_fields[i].name);
            expect_error(setups[s].k, &res_openai, setups[s].model, setups[s].prompt,
                         &valid_fields[i], 1, ISD_E_UNKNOWN_PARAM, valid_fields[i].name, msg);
            struct fld bogus = {"bogus_param", valid_fields[i].value, NULL};
            expect_error(setups[s].k, &res_openai, setups[s].model, setups[s].prompt, &bogus, 1,
                         ISD_E_UNKNOWN_PARAM, "bogus_param", UNKNOWN("bogus_param"));
        }
    }
}

/* For local models the extension fields are checked after the OpenAI options and before the
 * rules that combine parameters, in the order seed, steps, guidance_scale, negative_prompt,
 * sampler, strength. */
static void order_for_local_models(void **state)
{
    (void)state;
    {
        const struct fld f[] = {{"steps", "0", NULL}};
        expect_error(GEN, &res_openai, "sd-turbo", "", f, 1, ISD_E_EMPTY_STRING, "prompt",
                     "Invalid 'prompt': empty string. Expected a string with minimum length 1, "
                     "but got an empty string instead.");
    }
    {
        const struct fld f[] = {{"partial_images", "4", NULL}, {"steps", "0", NULL}};
        expect_error(GEN, &res_openai, "sd-turbo", "x", f, 2, ISD_E_INT_ABOVE_MAX, "partial_images",
                     INT_ABOVE("partial_images", "3", "4"));
    }
    {
        const struct fld f[] = {{"output_compression", "50", NULL}, {"steps", "0", NULL}};
        expect_error(GEN, &res_openai, "sd-turbo", "x", f, 2, ISD_E_INT_BELOW_MIN, "steps",
                     INT_BELOW("steps", "1", "0"));
    }
    {
        const struct fld f[] = {{"steps", "0", NULL}, {"seed", "-1", NULL}};
        expect_error(GEN, &res_openai, "sd-turbo", "x", f, 2, ISD_E_INT_BELOW_MIN, "seed",
                     INT_BELOW("seed", "0", "-1"));
    }
    {
        const struct fld f[] = {{"sampler", "'ddim'", NULL},
                                {"negative_prompt", "1", NULL},
                                {"guidance_scale", "0", NULL}};
        expect_error(GEN, &res_openai, "sd-turbo", "x", f, 3, E_DEC_BELOW, "guidance_scale",
                     DEC_BELOW("guidance_scale", ">= 1", "0"));
        expect_error(GEN, &res_openai, "sd-turbo", "x", f, 2, ISD_E_INVALID_TYPE, "negative_prompt",
                     TYPE("negative_prompt", "a string", "an integer"));
    }
    {
        const struct fld f[] = {{"strength", "2", NULL}, {"sampler", "'ddim'", NULL}};
        expect_error(EDIT_JSON, &res_openai, "sd-turbo", "x", f, 2, ISD_E_INVALID_VALUE, "sampler",
                     SAMPLER_VALUE("ddim"));
        expect_error(EDIT_FORM, &res_openai, "sd-turbo", "x", f, 2, ISD_E_INVALID_VALUE, "sampler",
                     SAMPLER_VALUE("ddim"));
    }
    {
        /* unknown keys before every value, wherever they are */
        const struct fld f[] = {{"seed", "-1", NULL}, {"bogus", "1", NULL}};
        for (enum kind k = 0; k < KIND__COUNT; k++)
            expect_error(k, &res_openai, local_model[k], "x", f, 2, ISD_E_UNKNOWN_PARAM, "bogus",
                         UNKNOWN("bogus"));
    }
    {
        /* a multipart edit's images are checked before the extension fields */
        const struct fld f[] = {{"image", "", "not a file"}, {"seed", "-1", NULL}};
        expect_error(EDIT_FORM, &res_openai, "sd-turbo", "x", f, 2, ISD_E_INVALID_TYPE, "image[1]",
                     "Invalid type for 'image[1]': expected a file, but got a string "
                     "instead.");
    }
}

/* A local default model takes the extensions without naming it. */
static void local_default_model(void **state)
{
    (void)state;
    const struct fld f[] = {{"seed", "3", NULL}};
    struct isd_images_request r;
    expect_ok(GEN, &res_local, NULL, f, 1, &r);
    assert_string_equal(r.model, "sd-classic");
    assert_true(r.ext.has_seed);
    isd_images_request_release(&r);
    const struct fld g[] = {{"background", "'opaque'", NULL}, {"steps", "9", NULL}};
    expect_ok(GEN, &res_local, NULL, g, 2, &r);
    assert_string_equal(r.model, "sd-turbo"); /* a GPT-only parameter picks the GPT default */
    assert_int_equal(r.ext.steps, 9);
    isd_images_request_release(&r);
    expect_ok(EDIT_JSON, &res_local, NULL, f, 1, &r);
    assert_string_equal(r.model, "sd-turbo");
    assert_int_equal(r.ext.seed, 3);
    isd_images_request_release(&r);
    expect_ok(EDIT_FORM, &res_local, NULL, f, 1, &r);
    assert_string_equal(r.model, "sd-turbo");
    assert_int_equal(r.ext.seed, 3);
    isd_images_request_release(&r);
    /* naming an OpenAI model turns them off again */
    expect_error(GEN, &res_local, "gpt-image-1", "x", f, 1, ISD_E_UNKNOWN_PARAM, "seed",
                 UNKNOWN("seed"));
    expect_error(EDIT_FORM, &res_local, "dall-e-2", "x", f, 1, ISD_E_UNKNOWN_PARAM, "seed",
                 UNKNOWN("seed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_field_accepted_with_its_boundaries),
        cmocka_unit_test(sampler_is_the_static_string),
        cmocka_unit_test(all_fields_together),
        cmocka_unit_test(absent_fields_leave_zeros),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(file_where_a_value_belongs),
        cmocka_unit_test(negative_prompt_length),
        cmocka_unit_test(unknown_for_openai_models),
        cmocka_unit_test(strength_unknown_on_generations),
        cmocka_unit_test(unknown_wins_where_any_unknown_key_does),
        cmocka_unit_test(unknown_wins_in_forms),
        cmocka_unit_test(order_for_local_models),
        cmocka_unit_test(local_default_model),
    };
    return cmocka_run_group_tests(tests, make_png, free_png);
}
