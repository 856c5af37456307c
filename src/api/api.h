/*
 * api: everything that makes imagesd indistinguishable from the OpenAI Images API:
 * model profiles (per-model parameter rules), request validation in the recorded order with
 * the exact error messages, resolution of `auto` values, token usage by the published tables,
 * and the JSON bodies (ImagesResponse, ErrorResponse, SSE events) as OpenAI serves them
 * (pretty-printed, 2-space indent, the recorded key order).
 * The contract is ../shared/spec/images-api-contract.md; section numbers below refer to it.
 *
 * Validation takes the raw body, a model resolver (the catalogue) and the defaults, and fills
 * a caller-owned `struct isd_images_request` with resolved values, or an isd_error whose id,
 * param and message are exactly what the client must see. Nothing here does I/O or knows
 * about HTTP; the server module maps isd_error ids to status codes (err.h).
 *
 *     struct isd_images_request req;
 *     if (isd_api_parse_generation(body, len, &resolver, &req, &err) < 0)
 *         return send_error(&err);
 *     ... generate, then isd_api_write_images(&out, &req, created, images, &usage) ...
 *     isd_images_request_release(&req);
 *
 * Ownership: strings in isd_images_request are owned by it (release frees them); profiles
 * are static. Thread-safe: no shared mutable state.
 */
#ifndef ISD_API_H
#define ISD_API_H

#include "buf/buf.h"
#include "codec/codec.h"
#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- model profiles (§4) ---- */

enum isd_profile_id {
    ISD_PROFILE_DALL_E_2 = 0,
    ISD_PROFILE_DALL_E_3,
    ISD_PROFILE_GPT_IMAGE_1,
    ISD_PROFILE_GPT_IMAGE_1_MINI,
    ISD_PROFILE_GPT_IMAGE_1_5,
    ISD_PROFILE_GPT_IMAGE_2,
    ISD_PROFILE__COUNT
};

enum isd_size_rule {
    ISD_SIZES_LISTED_INVALID_VALUE, /* fixed list; invalid → "Invalid value: ... Supported..." */
    ISD_SIZES_LISTED_INVALID_SIZE,  /* fixed list; invalid → "The size is not supported..." */
    ISD_SIZES_FREE,                 /* gpt-image-2: any WxH within the §4.2 rules */
};

enum isd_usage_rule { ISD_USAGE_NONE, ISD_USAGE_GPT_IMAGE_1_TABLE, ISD_USAGE_GPT_IMAGE_2 };

struct isd_profile {
    enum isd_profile_id id;
    const char *name;             /* "gpt-image-1" */
    bool gpt;                     /* a GPT image model: b64 only, echo fields, usage */
    int max_prompt_chars;         /* code points */
    int max_n;                    /* 10, or 1 for dall-e-3 */
    const char *const *qualities; /* advertised quality values (NULL-terminated) */
    const char *quality_auto;     /* what "auto" resolves to */
    enum isd_size_rule size_rule; /* how sizes are checked */
    const char *const *sizes;     /* advertised sizes for listed rules (NULL-terminated) */
    const char *size_auto;        /* what "auto" resolves to */
    bool transparency;            /* background "transparent" allowed */
    bool streaming;               /* stream / partial_images */
    bool input_fidelity;          /* edits: input_fidelity may be set */
    enum isd_usage_rule usage;    /* how output tokens are counted */
    bool output_tokens_details;   /* usage carries output_tokens_details */
    bool edits;                   /* /v1/images/edits */
    bool variations;              /* /v1/images/variations */
    int max_edit_images;          /* 16 for GPT, 1 for dall-e-2 */
    long max_image_bytes;         /* per input image: 50 MB GPT, 4 MB dall-e-2 */
};

const struct isd_profile *isd_api_profile(enum isd_profile_id id);
/* Profile named `name` exactly ("dall-e-2", ..., "gpt-image-2"), or NULL. */
const struct isd_profile *isd_api_profile_by_name(const char *name);

/* The catalogue as the validator sees it: name → profile, or NULL when the model is unknown. */
struct isd_api_resolver {
    void *ctx;
    const struct isd_profile *(*lookup)(void *ctx, const char *model, size_t len);
    const char *default_model;      /* generations naming no model */
    const char *default_gpt_model;  /* ... but using a GPT-only parameter */
    const char *default_edit_model; /* edits naming no model */
    bool remote_images;             /* JSON edits may name http(s) image URLs */
    /* Whether `model` takes the extension fields (struct isd_api_extensions): local models.
     * NULL: no model does. For other models those fields are unknown parameters, exactly as
     * OpenAI answers them. */
    bool (*extensions)(void *ctx, const char *model, size_t len);
};

/* Extension fields of local models (not OpenAI parameters; refused as unknown parameters for
 * models without extensions). Absent fields keep the zero value: the model's default. */
#define ISD_API_EXT_SEED_MAX     9007199254740991LL /* 2^53 - 1: exact in every JSON client */
#define ISD_API_EXT_STEPS_MAX    150
#define ISD_API_EXT_GUIDANCE_MAX 30.0
struct isd_api_extensions {
    bool has_seed;
    uint64_t seed;         /* 0..ISD_API_EXT_SEED_MAX; image i uses seed + i */
    int steps;             /* 1..ISD_API_EXT_STEPS_MAX */
    double guidance_scale; /* 1..ISD_API_EXT_GUIDANCE_MAX (1: no guidance) */
    char *negative_prompt; /* owned, valid UTF-8, at most the profile's prompt length */
    const char *sampler;   /* static: euler, euler_a, heun, dpm++2m, lcm */
    double strength;       /* edits and variations only: (0, 1] */
};

/* ---- requests ---- */

enum isd_endpoint { ISD_EP_GENERATIONS = 0, ISD_EP_EDITS, ISD_EP_VARIATIONS };
enum isd_response_format { ISD_RF_URL = 0, ISD_RF_B64_JSON };

#define ISD_API_MAX_INPUTS     16
#define ISD_API_MASK_MAX_BYTES (4L * 1024 * 1024)

/* An input image of an edit or variation, as the request gives it, before decoding. */
struct isd_api_input {
    char field[40];             /* the parameter for messages: "image", "images[3]", "mask" */
    char *content_type;         /* declared media type, lower case, owned; NULL = none */
    struct isd_buf bytes;       /* the encoded file (owned), once known */
    char *url;                  /* JSON edits: an http(s) URL still to fetch, owned */
    struct isd_image_info info; /* header probe, after isd_api_check_inputs */
};
struct isd_images_request {
    enum isd_endpoint endpoint;
    const struct isd_profile *profile;
    char model[128];               /* public model name as resolved */
    char *prompt;                  /* owned, NUL-terminated, valid UTF-8 */
    size_t prompt_len;             /* bytes */
    size_t prompt_chars;           /* code points */
    int n;                         /* 1..10 */
    const char *quality;           /* resolved, static string: low|medium|high|standard|hd */
    const char *quality_requested; /* as requested ("auto" when absent), static string */
    enum isd_response_format response_format; /* DALL·E: url (default) or b64_json */
    enum isd_format output_format;            /* GPT: png (default), jpeg, webp; DALL·E: png */
    int output_compression;                   /* 0..100, default 100 */
    int width, height;                        /* resolved size */
    char size[24];                            /* resolved "WxH" */
    char size_requested[24];          /* as requested, "auto" when absent (truncated if absurd) */
    bool transparent;                 /* resolved background */
    const char *background_requested; /* "transparent" | "opaque" | "auto" */
    const char *moderation;           /* "auto" | "low" */
    const char *style;                /* dall-e-3: "vivid" (default) | "natural"; else NULL */
    char *user;                       /* owned or NULL */
    bool stream;
    int partial_images;         /* 0..3 */
    const char *input_fidelity; /* edits: "low" | "high" (resolved) */
    /* edits and variations */
    struct isd_api_input inputs[ISD_API_MAX_INPUTS]; /* images, in order */
    int n_inputs;
    struct isd_api_input mask; /* valid when has_mask */
    bool has_mask;
    bool size_from_input;          /* size "auto" of an edit: resolved from inputs[0] */
    struct isd_api_extensions ext; /* local models only */
    bool inputs_checked;           /* isd_api_check_inputs() has run */
};

/* Validates a /v1/images/generations JSON body (§3.1, §7.3 order) into `out`. */
int isd_api_parse_generation(const char *body, size_t len, const struct isd_api_resolver *res,
                             struct isd_images_request *out, struct isd_error *err);

struct isd_form; /* src/multipart */
/* Validates a multipart /v1/images/edits form (§3.2) completely, including the images (type,
 * size, header, mask rules: isd_api_check_inputs). File contents move from `form` into `out`
 * (no copy). `request_id` is quoted in the undecodable-image message. */
int isd_api_parse_edit_form(struct isd_form *form, const struct isd_api_resolver *res,
                            const char *request_id, struct isd_images_request *out,
                            struct isd_error *err);
/* Validates a JSON /v1/images/edits body (§3.3): parameters, image references (data: URLs are
 * decoded into inputs[i].bytes; http(s) URLs are left in inputs[i].url for the caller to fetch
 * when the resolver allows remote images). The caller then calls isd_api_check_inputs(). */
int isd_api_parse_edit_json(const char *body, size_t len, const struct isd_api_resolver *res,
                            struct isd_images_request *out, struct isd_error *err);
/* Validates a multipart /v1/images/variations form (§3.4), image included. */
int isd_api_parse_variation_form(struct isd_form *form, const struct isd_api_resolver *res,
                                 const char *request_id, struct isd_images_request *out,
                                 struct isd_error *err);
/* The image checks of an edit or variation, once every input's bytes are present: declared
 * media type, size, header (decodable, within limits), the dall-e-2 rules (square PNG in
 * RGBA/LA/L), the mask rules (PNG with alpha, < 4 MB, same size as the first image), and
 * `size: auto` resolved from the first image. Headers only: no pixel is decoded here. */
int isd_api_check_inputs(struct isd_images_request *r, const char *request_id,
                         struct isd_error *err);
/* Input image tokens of the request's inputs (§9.4). */
long isd_api_input_image_tokens(const struct isd_images_request *r);
void isd_images_request_release(struct isd_images_request *r);

/* ---- usage (§9) ---- */

struct isd_usage {
    long input_text_tokens;
    long input_image_tokens;
    long output_image_tokens; /* includes +100 per streamed partial image */
};

/* Estimated prompt tokens (see docs/api.md "Text tokens"): an o200k-style pre-tokenisation,
 * one token per short word, punctuation run or digit triple, long words split every 6 bytes,
 * non-ASCII letters one token per 2 characters. */
long isd_api_text_tokens(const char *text, size_t len);
/* Output image tokens of one image of `w`x`h` at a resolved quality for a profile; 0 for
 * profiles without usage. */
long isd_api_image_output_tokens(const struct isd_profile *p, const char *quality, int w, int h);
/* Input image tokens of one w x h input for an edit (§9.4): shortest side scaled to 512,
 * 512-px tiles, 65 + 129 per tile, plus the high-fidelity surcharge when `high_fidelity`. */
long isd_api_image_input_tokens(int w, int h, bool high_fidelity);
/* The usage of a whole request: text once, output per image, +100 per partial sent. */
void isd_api_usage(const struct isd_images_request *r, long input_image_tokens, int partials_sent,
                   struct isd_usage *out);

/* ---- response bodies ---- */

/* One produced image as the response carries it. */
struct isd_api_image {
    const void *bytes; /* encoded image for b64_json (base64-encoded while written) */
    size_t n_bytes;
    const char *url;            /* signed link when response_format is url, else NULL */
    const char *revised_prompt; /* dall-e-3 only, else NULL */
};

/* ImagesResponse (§5): GPT → created, background, data[{b64_json}], output_format, quality,
 * size, usage; DALL·E → created, data[{url|b64_json[, revised_prompt]}]. */
int isd_api_write_images(struct isd_buf *out, const struct isd_images_request *r, int64_t created,
                         const struct isd_api_image *images, int n, const struct isd_usage *usage);
/* ErrorResponse (§7.1): {"error": {"message", "type", "param", "code"}}. */
int isd_api_write_error(struct isd_buf *out, const struct isd_error *e);

/* ---- server-sent events (§6) ----
 * One frame: "event: <type>\ndata: <compact JSON>\n\n", where <type> is
 * image_generation.partial_image / image_generation.completed (generations) or
 * image_edit.partial_image / image_edit.completed (edits), repeated as the JSON "type".
 * Fields: type, b64_json, created_at, size, quality, background, output_format, then
 * partial_image_index (partials) or usage (completed: ImagesUsage key order total_tokens,
 * input_tokens, output_tokens, input_tokens_details{text_tokens, image_tokens}).
 * With n > 1 the images are streamed one after the other, each with its partials then its
 * completed event; the input tokens are reported on the first completed event only, so the
 * sum over the events equals the non-streaming usage. */
int isd_api_write_partial_event(struct isd_buf *out, const struct isd_images_request *r,
                                int64_t created_at, const void *bytes, size_t n, int partial_index);
int isd_api_write_completed_event(struct isd_buf *out, const struct isd_images_request *r,
                                  int64_t created_at, const void *bytes, size_t n,
                                  const struct isd_usage *usage);
/* An error after the stream started: event "error", data {"type":"error","error":{...}}
 * (the SDKs throw on a truthy "error" key). */
int isd_api_write_error_event(struct isd_buf *out, const struct isd_error *e);

/* Model objects for GET /v1/models and /v1/models/{id}. */
struct isd_api_model_info {
    const char *id;
    int64_t created;
    const char *owned_by;
};
/* {"id", "object": "model", "created", "owned_by"} */
int isd_api_write_model(struct isd_buf *out, const struct isd_api_model_info *m);
/* {"object": "list", "data": [model...]} */
int isd_api_write_model_list(struct isd_buf *out, const struct isd_api_model_info *models,
                             size_t n);

/* Error helpers with the contract's exact wording, shared by the validators. */
int isd_api_err_unknown_param(struct isd_error *e, const char *name);
int isd_api_err_missing_param(struct isd_error *e, const char *name);

#endif
