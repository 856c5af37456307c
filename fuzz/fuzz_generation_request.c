/*
 * fuzz_generation_request: arbitrary bytes as a /v1/images/generations body through
 * isd_api_parse_generation() with a fake catalogue (the six profiles, chatgpt-image-latest and
 * gpt-image-2-2026-04-21 as aliases, and sd-local: a local model under gpt-image-1's rules that
 * takes the extension fields). Then:
 *   accepted → the request's invariants hold (limits, resolved values, combinations, extension
 *              fields in range and only for sd-local), and the ImagesResponse for tiny fake
 *              images parses as JSON with the profile's keys;
 *   refused  → rc == -err.id, the message is non-empty valid UTF-8, nothing is left allocated,
 *              and the ErrorResponse parses as JSON with exactly message, type, param, code.
 * Any violation aborts. The corpus (fuzz/corpus/fuzz_generation_request/) holds valid bodies
 * for every profile, the error cases of tests/integration/generations_errors.test.mjs,
 * extension fields (ext_*: valid for sd-local, refused or unknown otherwise) and hostile JSON
 * (deep nesting, huge numbers, invalid UTF-8, NUL).
 */
#include "api/api.h"
#include "buf/buf.h"
#include "err/err.h"
#include "text/text.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_MODEL "sd-local"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_generation_request: %s\n", what);
        abort();
    }
}

static const struct isd_profile *fake_lookup(void *ctx, const char *model, size_t len)
{
    (void)ctx;
    char name[64];
    if (len >= sizeof name)
        return NULL;
    memcpy(name, model, len);
    name[len] = '\0';
    if (strlen(name) != len)
        return NULL;
    if (strcmp(name, "chatgpt-image-latest") == 0)
        return isd_api_profile_by_name("gpt-image-1.5");
    if (strcmp(name, "gpt-image-2-2026-04-21") == 0)
        return isd_api_profile_by_name("gpt-image-2");
    if (strcmp(name, LOCAL_MODEL) == 0)
        return isd_api_profile_by_name("gpt-image-1");
    return isd_api_profile_by_name(name);
}

static bool fake_extensions(void *ctx, const char *model, size_t len)
{
    (void)ctx;
    return len == strlen(LOCAL_MODEL) && memcmp(model, LOCAL_MODEL, len) == 0;
}

static const struct isd_api_resolver resolver = {.lookup = fake_lookup,
                                                 .default_model = "dall-e-2",
                                                 .default_gpt_model = "gpt-image-1",
                                                 .extensions = fake_extensions};

static bool in_list(const char *s, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static void check_extensions(const struct isd_images_request *r)
{
    static const char *const samplers[] = {"euler", "euler_a", "heun", "dpm++2m", "lcm", NULL};
    const struct isd_api_extensions *x = &r->ext;
    if (strcmp(r->model, LOCAL_MODEL) != 0) {
        check(!x->has_seed && x->seed == 0 && x->steps == 0 && x->guidance_scale == 0.0 &&
                  !x->negative_prompt && !x->sampler && x->strength == 0.0,
              "extension fields on a model without extensions");
        return;
    }
    check(x->has_seed ? x->seed <= (uint64_t)ISD_API_EXT_SEED_MAX : x->seed == 0, "seed");
    check(x->steps == 0 || (x->steps >= 1 && x->steps <= ISD_API_EXT_STEPS_MAX), "steps");
    check(x->guidance_scale == 0.0 ||
              (x->guidance_scale >= 1.0 && x->guidance_scale <= ISD_API_EXT_GUIDANCE_MAX),
          "guidance_scale");
    check(x->strength == 0.0, "strength on generations");
    check(!x->sampler || in_list(x->sampler, samplers), "sampler");
    if (x->negative_prompt) {
        size_t chars = 0;
        check(isd_utf8_count(x->negative_prompt, strlen(x->negative_prompt), &chars) &&
                  chars <= (size_t)r->profile->max_prompt_chars,
              "negative_prompt");
    }
}

static void check_request(const struct isd_images_request *r)
{
    const struct isd_profile *p = r->profile;
    check(p != NULL, "no profile");
    check(r->model[0] != '\0' && strlen(r->model) < sizeof r->model, "model name");
    check(r->prompt != NULL && strlen(r->prompt) == r->prompt_len, "prompt length");
    size_t chars = 0;
    check(isd_utf8_count(r->prompt, r->prompt_len, &chars), "prompt not UTF-8");
    check(chars == r->prompt_chars, "prompt_chars");
    check(chars >= 1 && chars <= (size_t)p->max_prompt_chars, "prompt limit");
    check(r->n >= 1 && r->n <= p->max_n, "n limit");
    check(r->quality && r->quality_requested, "quality unset");
    check(strcmp(r->quality, "auto") != 0, "quality not resolved");
    check(in_list(r->quality, p->qualities) || strcmp(r->quality, p->quality_auto) == 0,
          "quality not the profile's");
    check(r->width > 0 && r->height > 0, "size");
    char size[32];
    snprintf(size, sizeof size, "%dx%d", r->width, r->height);
    check(strcmp(size, r->size) == 0, "size text");
    if (p->size_rule == ISD_SIZES_FREE) {
        long px = (long)r->width * r->height;
        int lo = r->width < r->height ? r->width : r->height;
        int hi = r->width < r->height ? r->height : r->width;
        check(r->width % 16 == 0 && r->height % 16 == 0 && hi <= 3840 && hi <= 3 * lo &&
                  px >= 655360 && px <= 8294400,
              "free size rules");
    } else {
        check(in_list(r->size, p->sizes), "listed size");
    }
    check(r->output_compression >= 0 && r->output_compression <= 100, "compression");
    check(r->output_format != ISD_FMT_PNG || r->output_compression == 100, "png compression");
    check(r->partial_images >= 0 && r->partial_images <= 3, "partial_images");
    check(!r->transparent || (p->transparency && r->output_format != ISD_FMT_JPEG), "transparency");
    check(!r->stream || p->streaming, "stream");
    if (!p->gpt)
        check(r->output_format == ISD_FMT_PNG, "DALL-E format");
    check((p->id == ISD_PROFILE_DALL_E_3) == (r->style != NULL), "style");
    check(r->moderation && r->background_requested, "enums unset");
    check_extensions(r);
}

static void check_images_body(const struct isd_images_request *r, const struct isd_buf *b)
{
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, 0, &je);
    check(j && json_is_object(j), "response is not a JSON object");
    check(json_is_integer(json_object_get(j, "created")), "created");
    json_t *data = json_object_get(j, "data");
    check(json_is_array(data) && json_array_size(data) == (size_t)r->n, "data");
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *item = json_array_get(data, i);
        bool url = !r->profile->gpt && r->response_format == ISD_RF_URL;
        check(json_is_string(json_object_get(item, url ? "url" : "b64_json")), "data item");
        if (r->profile->id == ISD_PROFILE_DALL_E_3)
            check(json_is_string(json_object_get(item, "revised_prompt")), "revised_prompt");
    }
    if (r->profile->gpt) {
        static const char *const keys[] = {"background", "output_format", "quality", "size"};
        for (int k = 0; k < 4; k++)
            check(json_is_string(json_object_get(j, keys[k])), "GPT echo field");
        json_t *u = json_object_get(j, "usage");
        check(json_is_object(u), "usage");
        json_int_t in = json_integer_value(json_object_get(u, "input_tokens"));
        json_int_t out = json_integer_value(json_object_get(u, "output_tokens"));
        check(in >= 0 && out > 0, "usage counts");
        check(json_integer_value(json_object_get(u, "total_tokens")) == in + out, "total");
        /* the revised prompt (dall-e-3) and every echo must round-trip */
        check(strcmp(json_string_value(json_object_get(j, "size")), r->size) == 0, "size echo");
    } else {
        check(json_object_size(j) == 2, "DALL-E body keys");
    }
    json_decref(j);
}

static void check_error_body(const struct isd_error *e, const struct isd_buf *b)
{
    bool param_utf8 = isd_utf8_count(e->param, strlen(e->param), NULL);
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, 0, &je);
    check(j && json_is_object(j) && json_object_size(j) == 1, "error body");
    json_t *o = json_object_get(j, "error");
    check(json_is_object(o) && json_object_size(o) == 4, "error object keys");
    static const char *const order[] = {"message", "type", "param", "code"};
    int k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        check(strcmp(key, order[k]) == 0, "error key order");
        k++;
    }
    check(json_is_string(json_object_get(o, "message")), "message");
    check(strcmp(json_string_value(json_object_get(o, "message")), e->message) == 0,
          "message round trip");
    check(strcmp(json_string_value(json_object_get(o, "type")), isd_err_type(e->id)) == 0, "type");
    json_t *param = json_object_get(o, "param");
    if (e->param[0])
        check(json_is_string(param) &&
                  (!param_utf8 || strcmp(json_string_value(param), e->param) == 0),
              "param");
    else
        check(json_is_null(param), "null param");
    json_t *code = json_object_get(o, "code");
    const char *want = isd_err_code(e->id);
    check(want ? json_is_string(code) && strcmp(json_string_value(code), want) == 0
               : json_is_null(code),
          "code");
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct isd_images_request r;
    struct isd_error err;
    memset(&err, 0, sizeof err);
    int rc = isd_api_parse_generation((const char *)data, size, &resolver, &r, &err);
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    if (rc == 0) {
        check_request(&r);
        static const char *const url =
            "http://127.0.0.1:8080/images/img_0123456789abcdef0123456789abcdef.png?expires=1&sig=x";
        struct isd_api_image ims[10];
        unsigned char bytes[10][6];
        for (int i = 0; i < r.n; i++) {
            memcpy(bytes[i], "fake", 4);
            bytes[i][4] = (unsigned char)i;
            bytes[i][5] = 0xFF;
            ims[i] = (struct isd_api_image){
                .bytes = bytes[i],
                .n_bytes = sizeof bytes[i],
                .url = r.response_format == ISD_RF_URL ? url : NULL,
                .revised_prompt = r.profile->id == ISD_PROFILE_DALL_E_3 ? r.prompt : NULL,
            };
        }
        struct isd_usage u;
        isd_api_usage(&r, 0, r.stream ? r.partial_images : 0, &u);
        check(u.input_text_tokens >= 0 && u.input_text_tokens <= (long)r.prompt_len, "text tokens");
        check(isd_api_write_images(&b, &r, 1700000000, ims, r.n, &u) == 0, "write images");
        check_images_body(&r, &b);
        isd_images_request_release(&r);
    } else {
        check(rc == -(int)err.id && err.id != ISD_OK, "rc and err.id disagree");
        check(r.prompt == NULL && r.user == NULL && r.ext.negative_prompt == NULL,
              "request not released on error");
        check(err.message[0] != '\0', "empty message");
        check(isd_utf8_count(err.message, strlen(err.message), NULL), "message not UTF-8");
        /* a param cut to its 127 bytes may end inside a character: known, see the BUG test
         * param_cut_on_a_character_boundary in tests/unit/api/test_validate.c */
        bool param_cut = strlen(err.param) == ISD_ERR_PARAM_MAX - 1;
        check(param_cut || isd_utf8_count(err.param, strlen(err.param), NULL), "param not UTF-8");
        check(isd_err_status(err.id) >= 400, "status");
        check(isd_api_write_error(&b, &err) == 0, "write error");
        check_error_body(&err, &b);
    }
    isd_buf_release(&b);
    return 0;
}
