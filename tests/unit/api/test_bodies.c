/*
 * api bodies: ImagesResponse (§5.2), ErrorResponse (§7.1) and the model list, as written by
 * isd_api_write_images / isd_api_write_error / isd_api_write_model(_list). Exact text for the
 * recorded examples (key order, 2-space pretty printing), then every body parsed back with
 * jansson: key order, value types, base64 payloads, escaping of hostile messages.
 */
#include "support/test.h"

#include "api/api.h"
#include "buf/buf.h"
#include "err/err.h"
#include "text/text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct isd_profile *fake_lookup(void *ctx, const char *model, size_t len)
{
    (void)ctx;
    char name[64];
    if (len >= sizeof name)
        return NULL;
    memcpy(name, model, len);
    name[len] = '\0';
    if (strcmp(name, "chatgpt-image-latest") == 0)
        return isd_api_profile_by_name("gpt-image-1.5");
    if (strcmp(name, "gpt-image-2-2026-04-21") == 0)
        return isd_api_profile_by_name("gpt-image-2");
    return isd_api_profile_by_name(name);
}

static const struct isd_api_resolver resolver = {
    .lookup = fake_lookup, .default_model = "dall-e-2", .default_gpt_model = "gpt-image-1"};

static void parse_request(const char *body, struct isd_images_request *r)
{
    struct isd_error err;
    int rc = isd_api_parse_generation(body, strlen(body), &resolver, r, &err);
    if (rc < 0)
        print_error("%s: %s\n", body, err.message);
    assert_int_equal(rc, 0);
}

static json_t *load(const struct isd_buf *b)
{
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, 0, &je);
    if (!j)
        print_error("not JSON (%s at %d): %.2000s\n", je.text, je.position, b->data);
    assert_non_null(j);
    return j;
}

/* The keys of `obj`, in order, are exactly `keys` (NULL-terminated). */
static void assert_keys(const json_t *obj, const char *const *keys)
{
    assert_true(json_is_object(obj));
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        (void)v;
        if (!keys[i] || strcmp(k, keys[i]) != 0) {
            print_error("key %zu is '%s', expected '%s'\n", i, k, keys[i] ? keys[i] : "(end)");
            fail();
        }
        i++;
    }
    if (keys[i]) {
        print_error("missing key '%s'\n", keys[i]);
        fail();
    }
}

static void assert_b64_is(const json_t *v, const void *bytes, size_t n)
{
    assert_true(json_is_string(v));
    struct isd_buf d;
    isd_buf_init(&d, 1 << 24);
    assert_int_equal(isd_base64_decode(&d, json_string_value(v), json_string_length(v)), 0);
    assert_int_equal(d.len, n);
    if (n)
        assert_memory_equal(d.data, bytes, n);
    isd_buf_release(&d);
}

static const unsigned char png_magic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

/* §5.2, gpt-image-1-mini, byte for byte. */
static void gpt_image_1_mini_recorded_body(void **state)
{
    (void)state;
    struct isd_images_request r;
    parse_request("{\"prompt\":\"x\",\"model\":\"gpt-image-1-mini\"}", &r);
    struct isd_api_image im = {.bytes = png_magic, .n_bytes = sizeof png_magic};
    struct isd_usage u = {
        .input_text_tokens = 238, .input_image_tokens = 0, .output_image_tokens = 4160};
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    assert_int_equal(isd_api_write_images(&b, &r, 1776443191, &im, 1, &u), 0);
    assert_string_equal(b.data, "{\n"
                                "  \"created\": 1776443191,\n"
                                "  \"background\": \"opaque\",\n"
                                "  \"data\": [\n"
                                "    {\n"
                                "      \"b64_json\": \"iVBORw0KGgo=\"\n"
                                "    }\n"
                                "  ],\n"
                                "  \"output_format\": \"png\",\n"
                                "  \"quality\": \"high\",\n"
                                "  \"size\": \"1024x1024\",\n"
                                "  \"usage\": {\n"
                                "    \"input_tokens\": 238,\n"
                                "    \"input_tokens_details\": {\n"
                                "      \"image_tokens\": 0,\n"
                                "      \"text_tokens\": 238\n"
                                "    },\n"
                                "    \"output_tokens\": 4160,\n"
                                "    \"total_tokens\": 4398\n"
                                "  }\n"
                                "}");
    isd_buf_release(&b);
    isd_images_request_release(&r);
}

/* §5.2, gpt-image-2: output_tokens_details between output_tokens and total_tokens. */
static void gpt_image_2_recorded_body(void **state)
{
    (void)state;
    struct isd_images_request r;
    parse_request("{\"prompt\":\"x\",\"model\":\"gpt-image-2\"}", &r);
    /* the recorded auto size, which the validator itself never produces */
    r.width = r.height = 1254;
    snprintf(r.size, sizeof r.size, "1254x1254");
    struct isd_api_image im = {.bytes = "abc", .n_bytes = 3};
    struct isd_usage u;
    isd_api_usage(&r, 0, 0, &u);
    assert_int_equal(u.output_image_tokens, 2058);
    u.input_text_tokens = 238; /* the recorded prompt's count */
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    assert_int_equal(isd_api_write_images(&b, &r, 1780014415, &im, 1, &u), 0);
    assert_string_equal(b.data, "{\n"
                                "  \"created\": 1780014415,\n"
                                "  \"background\": \"opaque\",\n"
                                "  \"data\": [\n"
                                "    {\n"
                                "      \"b64_json\": \"YWJj\"\n"
                                "    }\n"
                                "  ],\n"
                                "  \"output_format\": \"png\",\n"
                                "  \"quality\": \"medium\",\n"
                                "  \"size\": \"1254x1254\",\n"
                                "  \"usage\": {\n"
                                "    \"input_tokens\": 238,\n"
                                "    \"input_tokens_details\": {\n"
                                "      \"image_tokens\": 0,\n"
                                "      \"text_tokens\": 238\n"
                                "    },\n"
                                "    \"output_tokens\": 2058,\n"
                                "    \"output_tokens_details\": {\n"
                                "      \"image_tokens\": 2058,\n"
                                "      \"text_tokens\": 0\n"
                                "    },\n"
                                "    \"total_tokens\": 2296\n"
                                "  }\n"
                                "}");
    isd_buf_release(&b);
    isd_images_request_release(&r);
}

static const char *const gpt_keys[] = {"created", "background", "data",  "output_format",
                                       "quality", "size",       "usage", NULL};
static const char *const usage_keys[] = {"input_tokens", "input_tokens_details", "output_tokens",
                                         "total_tokens", NULL};
static const char *const usage_keys_2[] = {"input_tokens",  "input_tokens_details",
                                           "output_tokens", "output_tokens_details",
                                           "total_tokens",  NULL};
static const char *const details_keys[] = {"image_tokens", "text_tokens", NULL};

/* Every GPT profile and option mix, parsed back: keys, types, resolved echoes, payloads. */
static void gpt_bodies_parse_back(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *background, *format, *quality, *size;
    } cases[] = {
        {"{'prompt':'x','model':'gpt-image-1'}", "opaque", "png", "medium", "1024x1024"},
        {"{'prompt':'x','model':'gpt-image-1-mini','n':3}", "opaque", "png", "high", "1024x1024"},
        {"{'prompt':'x','model':'gpt-image-1.5','background':'transparent','output_format':'webp'}",
         "transparent", "webp", "medium", "1024x1024"},
        {"{'prompt':'x','model':'chatgpt-image-latest','output_format':'jpeg','output_compression':"
         "10,"
         "'size':'1536x1024','quality':'low'}",
         "opaque", "jpeg", "low", "1536x1024"},
        {"{'prompt':'x','model':'gpt-image-2','size':'2048x1152','quality':'high','n':2}", "opaque",
         "png", "high", "2048x1152"},
        {"{'prompt':'x','model':'gpt-image-2-2026-04-21','background':'auto'}", "opaque", "png",
         "medium", "1024x1024"},
        {"{'prompt':'x','model':'gpt-image-1','background':'transparent','size':'auto'}",
         "transparent", "png", "medium", "1024x1024"},
    };
    unsigned char payload[3][1000];
    unsigned seed = 99;
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof payload[k]; i++) {
            seed = seed * 1103515245u + 12345u;
            payload[k][i] = (unsigned char)(seed >> 16);
        }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char body[512];
        snprintf(body, sizeof body, "%s", cases[c].body);
        for (char *p = body; *p; p++)
            if (*p == '\'')
                *p = '"';
        struct isd_images_request r;
        parse_request(body, &r);
        struct isd_api_image ims[3];
        for (int k = 0; k < r.n; k++)
            ims[k] = (struct isd_api_image){.bytes = payload[k], .n_bytes = 1000 - 100 * (size_t)k};
        struct isd_usage u;
        isd_api_usage(&r, 17, 1, &u);
        struct isd_buf b;
        isd_buf_init(&b, 1 << 20);
        assert_int_equal(isd_api_write_images(&b, &r, 1700000000, ims, r.n, &u), 0);
        /* pretty: 2-space indentation, no tabs, one key per line */
        assert_null(strchr(b.data, '\t'));
        assert_non_null(strstr(b.data, "\n  \"created\": 1700000000,\n"));
        json_t *j = load(&b);
        assert_keys(j, gpt_keys);
        assert_int_equal(json_integer_value(json_object_get(j, "created")), 1700000000);
        assert_string_equal(json_string_value(json_object_get(j, "background")),
                            cases[c].background);
        assert_string_equal(json_string_value(json_object_get(j, "output_format")),
                            cases[c].format);
        assert_string_equal(json_string_value(json_object_get(j, "quality")), cases[c].quality);
        assert_string_equal(json_string_value(json_object_get(j, "size")), cases[c].size);
        json_t *data = json_object_get(j, "data");
        assert_int_equal(json_array_size(data), (size_t)r.n);
        for (int k = 0; k < r.n; k++) {
            static const char *const item_keys[] = {"b64_json", NULL};
            json_t *item = json_array_get(data, (size_t)k);
            assert_keys(item, item_keys);
            assert_b64_is(json_object_get(item, "b64_json"), payload[k], ims[k].n_bytes);
        }
        json_t *usage = json_object_get(j, "usage");
        assert_keys(usage, r.profile->output_tokens_details ? usage_keys_2 : usage_keys);
        json_t *details = json_object_get(usage, "input_tokens_details");
        assert_keys(details, details_keys);
        long in = (long)json_integer_value(json_object_get(usage, "input_tokens"));
        long out = (long)json_integer_value(json_object_get(usage, "output_tokens"));
        assert_int_equal(json_integer_value(json_object_get(details, "image_tokens")), 17);
        assert_int_equal(json_integer_value(json_object_get(details, "text_tokens")),
                         u.input_text_tokens);
        assert_int_equal(in, 17 + u.input_text_tokens);
        assert_int_equal(out, u.output_image_tokens);
        assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), in + out);
        if (r.profile->output_tokens_details) {
            json_t *od = json_object_get(usage, "output_tokens_details");
            assert_keys(od, details_keys);
            assert_int_equal(json_integer_value(json_object_get(od, "image_tokens")), out);
            assert_int_equal(json_integer_value(json_object_get(od, "text_tokens")), 0);
        }
        json_decref(j);
        isd_buf_release(&b);
        isd_images_request_release(&r);
    }
}

/* Edge payloads: empty image, every byte value; no usage given → no usage key. */
static void gpt_payload_edges(void **state)
{
    (void)state;
    struct isd_images_request r;
    parse_request("{\"prompt\":\"x\",\"model\":\"gpt-image-1\",\"n\":2}", &r);
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    struct isd_api_image ims[2] = {{.bytes = "", .n_bytes = 0}, {.bytes = all, .n_bytes = 256}};
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    assert_int_equal(isd_api_write_images(&b, &r, 0, ims, 2, NULL), 0);
    json_t *j = load(&b);
    static const char *const keys[] = {"created", "background", "data", "output_format",
                                       "quality", "size",       NULL};
    assert_keys(j, keys);
    json_t *data = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "b64_json")),
                        "");
    assert_b64_is(json_object_get(json_array_get(data, 1), "b64_json"), all, 256);
    json_decref(j);
    isd_buf_release(&b);
    isd_images_request_release(&r);
}

/* §5.2: DALL·E bodies are {created, data[{url|b64_json[, revised_prompt]}]}, no usage. */
static void dalle_shapes(void **state)
{
    (void)state;
    static const char *const top[] = {"created", "data", NULL};
    static const char *const url_only[] = {"url", NULL};
    static const char *const b64_only[] = {"b64_json", NULL};
    static const char *const url_revised[] = {"url", "revised_prompt", NULL};
    static const char *const b64_revised[] = {"b64_json", "revised_prompt", NULL};
    static const struct {
        const char *body;
        bool revised;
        const char *const *item;
    } cases[] = {
        {"{\"prompt\":\"x\",\"model\":\"dall-e-2\"}", false, url_only},
        {"{\"prompt\":\"x\",\"model\":\"dall-e-2\",\"n\":2,\"response_format\":\"b64_json\"}",
         false, b64_only},
        {"{\"prompt\":\"x\",\"model\":\"dall-e-3\"}", true, url_revised},
        {"{\"prompt\":\"x\",\"model\":\"dall-e-3\",\"response_format\":\"b64_json\"}", true,
         b64_revised},
        {"{\"prompt\":\"x\"}", false, url_only},
    };
    const char *url = "http://127.0.0.1:8080/images/img_0123456789abcdef0123456789abcdef.png"
                      "?expires=1700003600&sig=abc-_";
    const char *revised = "A \"quoted\" cat\nwith a hat \xE2\x80\x94 and \\ backslash";
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct isd_images_request r;
        parse_request(cases[c].body, &r);
        struct isd_api_image ims[2];
        for (int k = 0; k < r.n; k++)
            ims[k] = (struct isd_api_image){
                .bytes = png_magic,
                .n_bytes = sizeof png_magic,
                .url = r.response_format == ISD_RF_URL ? url : NULL,
                .revised_prompt = cases[c].revised ? revised : NULL,
            };
        struct isd_usage u = {.input_text_tokens = 5, .output_image_tokens = 7};
        struct isd_buf b;
        isd_buf_init(&b, 1 << 20);
        assert_int_equal(isd_api_write_images(&b, &r, 1713833628, ims, r.n, &u), 0);
        json_t *j = load(&b);
        assert_keys(j, top);
        json_t *data = json_object_get(j, "data");
        assert_int_equal(json_array_size(data), (size_t)r.n);
        for (int k = 0; k < r.n; k++) {
            json_t *item = json_array_get(data, (size_t)k);
            assert_keys(item, cases[c].item);
            if (r.response_format == ISD_RF_URL)
                assert_string_equal(json_string_value(json_object_get(item, "url")), url);
            else
                assert_b64_is(json_object_get(item, "b64_json"), png_magic, sizeof png_magic);
            if (cases[c].revised)
                assert_string_equal(json_string_value(json_object_get(item, "revised_prompt")),
                                    revised);
        }
        json_decref(j);
        isd_buf_release(&b);
        isd_images_request_release(&r);
    }

    /* the recorded dall-e-2 shape, byte for byte */
    struct isd_images_request r;
    parse_request("{\"prompt\":\"x\",\"model\":\"dall-e-2\",\"response_format\":\"b64_json\","
                  "\"size\":\"256x256\"}",
                  &r);
    struct isd_api_image im = {.bytes = "abc", .n_bytes = 3};
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    assert_int_equal(isd_api_write_images(&b, &r, 1749225577, &im, 1, NULL), 0);
    assert_string_equal(b.data, "{\n"
                                "  \"created\": 1749225577,\n"
                                "  \"data\": [\n"
                                "    {\n"
                                "      \"b64_json\": \"YWJj\"\n"
                                "    }\n"
                                "  ]\n"
                                "}");
    isd_buf_release(&b);
    isd_images_request_release(&r);
}

/* A ceiling too small for the payload is an error, not a truncated body. */
static void images_ceiling(void **state)
{
    (void)state;
    struct isd_images_request r;
    parse_request("{\"prompt\":\"x\",\"model\":\"gpt-image-1\"}", &r);
    static unsigned char big[3000];
    struct isd_api_image im = {.bytes = big, .n_bytes = sizeof big};
    struct isd_buf b;
    isd_buf_init(&b, 2000);
    assert_true(isd_api_write_images(&b, &r, 1, &im, 1, NULL) < 0);
    isd_buf_release(&b);
    isd_images_request_release(&r);
}

/* ---- errors ---- */

static void error_exact_body(void **state)
{
    (void)state;
    struct isd_error e;
    isd_err_set(&e, ISD_E_INT_BELOW_MIN, "n",
                "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 "
                "instead.");
    struct isd_buf b;
    isd_buf_init(&b, 1 << 16);
    assert_int_equal(isd_api_write_error(&b, &e), 0);
    assert_string_equal(b.data, "{\n"
                                "  \"error\": {\n"
                                "    \"message\": \"Invalid 'n': integer below minimum value. "
                                "Expected a value >= 1, but got 0 instead.\",\n"
                                "    \"type\": \"invalid_request_error\",\n"
                                "    \"param\": \"n\",\n"
                                "    \"code\": \"integer_below_min_value\"\n"
                                "  }\n"
                                "}");
    isd_buf_release(&b);

    /* param and code null */
    isd_err_set(&e, ISD_E_INVALID_REQUEST, NULL, "You must provide n=1 for this model.");
    isd_buf_init(&b, 1 << 16);
    assert_int_equal(isd_api_write_error(&b, &e), 0);
    assert_string_equal(b.data, "{\n"
                                "  \"error\": {\n"
                                "    \"message\": \"You must provide n=1 for this model.\",\n"
                                "    \"type\": \"invalid_request_error\",\n"
                                "    \"param\": null,\n"
                                "    \"code\": null\n"
                                "  }\n"
                                "}");
    isd_buf_release(&b);
}

/* Every error id: the envelope has exactly message, type, param, code, in that order. */
static void error_every_id(void **state)
{
    (void)state;
    static const char *const outer[] = {"error", NULL};
    static const char *const inner[] = {"message", "type", "param", "code", NULL};
    for (int id = 1; id < ISD_E__COUNT; id++) {
        struct isd_error e;
        isd_err_set(&e, (enum isd_err_id)id, (id % 2) ? "size" : NULL, "message %d", id);
        struct isd_buf b;
        isd_buf_init(&b, 1 << 16);
        assert_int_equal(isd_api_write_error(&b, &e), 0);
        json_t *j = load(&b);
        assert_keys(j, outer);
        json_t *o = json_object_get(j, "error");
        assert_keys(o, inner);
        char want[32];
        snprintf(want, sizeof want, "message %d", id);
        assert_string_equal(json_string_value(json_object_get(o, "message")), want);
        assert_string_equal(json_string_value(json_object_get(o, "type")),
                            isd_err_type((enum isd_err_id)id));
        json_t *param = json_object_get(o, "param");
        if (id % 2)
            assert_string_equal(json_string_value(param), "size");
        else
            assert_true(json_is_null(param));
        json_t *code = json_object_get(o, "code");
        const char *want_code = isd_err_code((enum isd_err_id)id);
        if (want_code)
            assert_string_equal(json_string_value(code), want_code);
        else
            assert_true(json_is_null(code));
        json_decref(j);
        isd_buf_release(&b);
    }
}

/* Hostile text in messages and params: the body is still JSON, valid UTF-8, with no raw
 * control characters, and decodes to the text (invalid sequences as U+FFFD). */
static void error_escaping(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out; /* what json decodes */
    } cases[] = {
        {"quote \" backslash \\ slash /", "quote \" backslash \\ slash /"},
        {"nl\n cr\r tab\t bs\b ff\f", "nl\n cr\r tab\t bs\b ff\f"},
        {"ctl \x01\x02\x1f del \x7f", "ctl \x01\x02\x1f del \x7f"},
        {"bad \xFF byte", "bad \xEF\xBF\xBD byte"},
        {"truncated \xC3", "truncated \xEF\xBF\xBD"},
        {"lone continuation \x80!", "lone continuation \xEF\xBF\xBD!"},
        {"literal \xEF\xBF\xBD stays", "literal \xEF\xBF\xBD stays"},
        {"emoji \xF0\x9F\x8E\x89 and \xC3\xA9", "emoji \xF0\x9F\x8E\x89 and \xC3\xA9"},
        {"surrogate \xED\xA0\x80", NULL}, /* NULL: only valid UTF-8 with a U+FFFD */
        {"overlong \xC0\xAF", NULL},
        {"too big \xF4\x90\x80\x80", NULL},
        {"<script>'&'</script>", "<script>'&'</script>"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct isd_error e;
        isd_err_set(&e, ISD_E_INVALID_VALUE, cases[c].in, "%s", cases[c].in);
        struct isd_buf b;
        isd_buf_init(&b, 1 << 16);
        assert_int_equal(isd_api_write_error(&b, &e), 0);
        assert_true(isd_utf8_count(b.data, b.len, NULL));
        for (size_t i = 0; i < b.len; i++)
            if ((unsigned char)b.data[i] < 0x20 && b.data[i] != '\n') {
                print_error("case %zu: raw control byte 0x%02x\n", c, (unsigned char)b.data[i]);
                fail();
            }
        json_t *j = load(&b);
        json_t *o = json_object_get(j, "error");
        const char *msg = json_string_value(json_object_get(o, "message"));
        const char *param = json_string_value(json_object_get(o, "param"));
        if (cases[c].out) {
            assert_string_equal(msg, cases[c].out);
            assert_string_equal(param, cases[c].out);
        } else {
            assert_non_null(strstr(msg, "\xEF\xBF\xBD"));
            assert_non_null(strstr(param, "\xEF\xBF\xBD"));
        }
        json_decref(j);
        isd_buf_release(&b);
    }
}

static void error_ceiling(void **state)
{
    (void)state;
    struct isd_error e;
    isd_err_set(&e, ISD_E_BAD_JSON, NULL, "%0500d", 0);
    struct isd_buf b;
    isd_buf_init(&b, 100);
    assert_true(isd_api_write_error(&b, &e) < 0);
    isd_buf_release(&b);
}

/* ---- models ---- */

static void model_list(void **state)
{
    (void)state;
    struct isd_api_model_info models[] = {
        {.id = "gpt-image-1", .created = 1745884800, .owned_by = "system"},
        {.id = "my \"model\"", .created = 0, .owned_by = "imagesd"},
    };
    struct isd_buf b;
    isd_buf_init(&b, 1 << 16);
    assert_int_equal(isd_api_write_model_list(&b, models, 2), 0);
    assert_string_equal(b.data, "{\n"
                                "  \"object\": \"list\",\n"
                                "  \"data\": [\n"
                                "    {\n"
                                "      \"id\": \"gpt-image-1\",\n"
                                "      \"object\": \"model\",\n"
                                "      \"created\": 1745884800,\n"
                                "      \"owned_by\": \"system\"\n"
                                "    },\n"
                                "    {\n"
                                "      \"id\": \"my \\\"model\\\"\",\n"
                                "      \"object\": \"model\",\n"
                                "      \"created\": 0,\n"
                                "      \"owned_by\": \"imagesd\"\n"
                                "    }\n"
                                "  ]\n"
                                "}");
    json_t *j = load(&b);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 1), "id")),
        "my \"model\"");
    json_decref(j);
    isd_buf_release(&b);

    isd_buf_init(&b, 1 << 16);
    assert_int_equal(isd_api_write_model_list(&b, NULL, 0), 0);
    assert_string_equal(b.data, "{\n  \"object\": \"list\",\n  \"data\": []\n}");
    isd_buf_release(&b);

    isd_buf_init(&b, 1 << 16);
    assert_int_equal(isd_api_write_model(&b, &models[0]), 0);
    assert_string_equal(b.data, "{\n"
                                "  \"id\": \"gpt-image-1\",\n"
                                "  \"object\": \"model\",\n"
                                "  \"created\": 1745884800,\n"
                                "  \"owned_by\": \"system\"\n"
                                "}");
    isd_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpt_image_1_mini_recorded_body),
        cmocka_unit_test(gpt_image_2_recorded_body),
        cmocka_unit_test(gpt_bodies_parse_back),
        cmocka_unit_test(gpt_payload_edges),
        cmocka_unit_test(dalle_shapes),
        cmocka_unit_test(images_ceiling),
        cmocka_unit_test(error_exact_body),
        cmocka_unit_test(error_every_id),
        cmocka_unit_test(error_escaping),
        cmocka_unit_test(error_ceiling),
        cmocka_unit_test(model_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
