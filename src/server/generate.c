/*
 * The images job: a validated request runs on a worker: (edits and variations: validate a
 * JSON edit, fetch remote images, decode the inputs) → generator → codec → (store + signed
 * link) → ImagesResponse JSON, or, with stream: true, server-sent events as the generator
 * produces partial and final images. The connection thread only validated the request and
 * sends what the worker hands it. Per-stage times go out in a Server-Timing header.
 *
 * Streams (§6): the stream starts with the first event, so an error before it is still a
 * plain JSON error; after it, an `error` event. n > 1: each image's partials, then its
 * completed event, image after image. A comment line ": keep-alive" goes out when nothing
 * was sent for `sse_keepalive` seconds (15).
 */
#include "server/server_int.h"

#include "codec/codec.h"
#include "fetch/fetch.h"
#include "log/log.h"
#include "sign/sign.h"
#include "sys/sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_N 10

struct images_job {
    struct isd_job job; /* first: the jobs module hands this pointer back */
    struct server *srv;
    struct isd_http_request *req;
    const struct isd_model *model;                /* known once the request is validated */
    struct isd_images_request ireq;               /* owned */
    struct isd_buf json;                          /* a JSON edit body still to validate, or empty */
    struct isd_image *inputs[ISD_API_MAX_INPUTS]; /* decoded inputs (edits, variations) */
    struct isd_image *mask;                       /* decoded mask, the size of inputs[0] */
    long input_tokens;                            /* usage of the input images */
    uint64_t seed;                                /* the generator's request seed */
    char seeds_header[256];                       /* x-imagesd-seeds, or "" */
    struct isd_gen_report report;                 /* the generator's units */
    int64_t deadline_ns;                          /* monotonic time after which the job times out */
    _Atomic bool answered;                        /* a response went out: nothing left to poll */
    /* streaming */
    _Atomic bool stream_started; /* the event stream (and its 200) has begun */
    int partials[MAX_N];         /* partial images sent per image */
    int completed;               /* completed events sent */
    struct isd_buf encoded;      /* one streamed image, encoded */
    struct isd_buf event;        /* one event frame */
    uint64_t stream_bytes;       /* event bytes handed to the stream */
    double wait_ms, render_ms, encode_ms, body_ms;
};

static void job_free(struct images_job *j)
{
    isd_images_request_release(&j->ireq);
    isd_buf_release(&j->json);
    for (int i = 0; i < ISD_API_MAX_INPUTS; i++)
        isd_image_free(j->inputs[i]);
    isd_image_free(j->mask);
    isd_buf_release(&j->encoded);
    isd_buf_release(&j->event);
    isd_http_release(j->req);
    free(j);
}

static void job_release(struct isd_job *job)
{
    job_free((struct images_job *)job);
}

/* The facts the ledger and the access log record (srv_request). */
static void note_times(struct images_job *j)
{
    struct srv_request *sr = srv_request_of(j->req);
    if (!sr)
        return;
    sr->ms_queue = j->wait_ms;
    sr->ms_render = j->render_ms;
    sr->ms_encode = j->encode_ms;
    sr->gen_steps = j->report.steps;
    sr->megapixels = j->report.megapixels;
}

static void note_usage(struct images_job *j, const struct isd_usage *u)
{
    struct srv_request *sr = srv_request_of(j->req);
    if (!sr)
        return;
    sr->in_text += u->input_text_tokens;
    sr->in_image += u->input_image_tokens;
    sr->out_tokens += u->output_image_tokens;
}

static void count_cancelled(struct images_job *j, int reason)
{
    const char *why = reason == -ISD_E_TIMEOUT       ? "timeout"
                      : reason == -ISD_E_UNAVAILABLE ? "shutdown"
                                                     : "client_gone";
    isd_metric_add(j->srv->metrics.cancelled, 1, (const char *[]){why});
}

static void respond_job_error(struct images_job *j, int reason)
{
    struct isd_error e;
    if (reason != -ISD_E_INTERNAL)
        count_cancelled(j, reason);
    switch (reason) {
    case -ISD_E_INTERNAL:
        isd_err_set(&e, ISD_E_INTERNAL, NULL,
                    "The server had an error while processing your request. Sorry about that!");
        break;
    case -ISD_E_UNAVAILABLE:
        isd_err_set(&e, ISD_E_UNAVAILABLE, NULL,
                    "The server is shutting down and did not start your request. Please retry.");
        break;
    case -ISD_E_TIMEOUT:
        isd_err_set(&e, ISD_E_TIMEOUT, NULL,
                    "The request did not finish within %ld seconds and was stopped.",
                    j->srv->cfg->request_timeout);
        break;
    default:
        isd_err_set(&e, ISD_E_CANCELLED, NULL, "The request was cancelled.");
        break;
    }
    srv_respond_error(j->req, &e);
}

/* Answers a job that ends before its images: the cancel reason wins over `err`. */
static void respond_failure(struct images_job *j, const struct isd_error *err)
{
    int reason = atomic_load(&j->job.cancel_reason);
    atomic_store(&j->answered, true);
    note_times(j);
    if (reason)
        respond_job_error(j, reason);
    else
        srv_respond_error(j->req, err);
}

static int job_poll(struct isd_job *job)
{
    struct images_job *j = (struct images_job *)job;
    if (atomic_load(&j->answered))
        return 0;
    if (isd_http_client_gone(j->req))
        return -ISD_E_CANCELLED;
    if (isd_mono_ns() > j->deadline_ns)
        return -ISD_E_TIMEOUT;
    if (atomic_load(&j->stream_started))
        isd_http_stream_keepalive(j->req, ": keep-alive\n\n", j->srv->cfg->sse_keepalive * 1000);
    return 0;
}

static void job_discard(struct isd_job *job, int reason)
{
    struct images_job *j = (struct images_job *)job;
    respond_job_error(j, reason);
    job_free(j);
}

static bool hook_should_abort(void *ctx)
{
    return isd_job_should_stop(ctx);
}

/* The dall-e-3 "revised prompt": the mock does not rewrite prompts, it returns the prompt with
 * its whitespace collapsed, which is what it drew. */
static char *revised_prompt(const char *prompt)
{
    size_t n = strlen(prompt);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool space = true;
    for (size_t i = 0; i < n; i++) {
        char c = prompt[i];
        bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (ws) {
            if (!space)
                out[o++] = ' ';
            space = true;
        } else {
            out[o++] = c;
            space = false;
        }
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return out;
}

/* ---- inputs of edits and variations ---- */

/* A JSON edit: validate it, fetch its remote images, check them all (on this worker). */
static int prepare_json_edit(struct images_job *j, struct isd_error *err)
{
    const struct isd_config *cfg = j->srv->cfg;
    int rc = isd_api_parse_edit_json(j->json.data ? j->json.data : "", j->json.len,
                                     &j->srv->resolver, &j->ireq, err);
    isd_buf_release(&j->json);
    if (rc < 0) {
        srv_note_model(j->req, &j->ireq);
        j->ireq.profile = NULL; /* released: nothing of it may be used */
        return rc;
    }
    srv_note_request(j->req, &j->ireq);
    if ((rc = srv_take_images(j->req, j->ireq.n, false, err)) < 0)
        return rc;
    struct isd_fetch_options fo = {.max_bytes = (size_t)cfg->remote_image_max_bytes,
                                   .timeout_ms = cfg->remote_image_timeout * 1000,
                                   .max_redirects = 3,
                                   .allow_private = cfg->remote_images_private != 0};
    struct isd_api_input *all[ISD_API_MAX_INPUTS + 1];
    int n = 0;
    for (int i = 0; i < j->ireq.n_inputs; i++)
        all[n++] = &j->ireq.inputs[i];
    if (j->ireq.has_mask)
        all[n++] = &j->ireq.mask;
    for (int i = 0; i < n; i++) {
        struct isd_api_input *in = all[i];
        if (!in->url)
            continue;
        if (isd_job_should_stop(&j->job))
            return -ISD_E_CANCELLED;
        char ctype[128];
        struct isd_error ferr;
        isd_buf_release(&in->bytes);
        isd_buf_init(&in->bytes, fo.max_bytes);
        if (isd_fetch_url(in->url, &fo, &in->bytes, ctype, sizeof ctype, &ferr) < 0) {
            char param[64];
            snprintf(param, sizeof param, "%s.image_url", in->field);
            return isd_err_set(err, ISD_E_INVALID_VALUE, param, "Invalid '%s': %s", param,
                               ferr.message);
        }
        free(in->content_type);
        in->content_type = strdup(ctype);
    }
    return isd_api_check_inputs(&j->ireq, isd_http_request_id(j->req), err);
}

static int err_undecodable(struct images_job *j, int index, struct isd_error *err)
{
    return isd_err_set(err, ISD_E_INVALID_IMAGE, NULL,
                       "Invalid image file or mode for image %d, please check your image file. If "
                       "you believe this is an error, contact us at help.openai.com and include "
                       "the request ID %s.",
                       index + 1, isd_http_request_id(j->req));
}

/* Decodes the inputs one at a time, shrinking each to fit the output size at once (a
 * generator never needs more) and dropping its encoded bytes as soon as it is decoded, so the
 * worker never holds a decoded image larger than the output next to its upload. */
static int decode_inputs(struct images_job *j, struct isd_error *err)
{
    struct isd_images_request *r = &j->ireq;
    struct isd_decode_limits lim = {.max_side = ISD_IMAGE_MAX_SIDE,
                                    .max_pixels = ISD_IMAGE_MAX_PIXELS};
    for (int i = 0; i < r->n_inputs; i++) {
        struct isd_api_input *in = &r->inputs[i];
        struct isd_image *im = NULL;
        struct isd_error derr;
        if (isd_codec_decode(in->bytes.data, in->bytes.len, &lim, &im, &derr) < 0)
            return err_undecodable(j, i, err);
        isd_buf_release(&in->bytes);
        isd_err_clear(err);
        struct isd_image *fitted = isd_image_shrink_to_fit(im, r->width, r->height, err);
        if (fitted) {
            isd_image_free(im);
            im = fitted;
        } else if (err->id != ISD_OK) {
            isd_image_free(im);
            return -(int)err->id;
        }
        j->inputs[i] = im;
        if (isd_job_should_stop(&j->job))
            return -ISD_E_CANCELLED;
    }
    if (!r->has_mask)
        return 0;
    struct isd_image *m = NULL;
    struct isd_error derr;
    if (isd_codec_decode(r->mask.bytes.data, r->mask.bytes.len, &lim, &m, &derr) < 0)
        return isd_err_set(err, ISD_E_INVALID_MASK, "mask",
                           "Invalid mask image format - mask image could not be read as a PNG");
    isd_buf_release(&r->mask.bytes);
    /* the mask follows the first image, which may have been shrunk */
    if (m->width != j->inputs[0]->width || m->height != j->inputs[0]->height) {
        struct isd_image *mm =
            isd_image_resize_nearest(m, j->inputs[0]->width, j->inputs[0]->height, err);
        isd_image_free(m);
        if (!mm)
            return -(int)err->id;
        m = mm;
    }
    j->mask = m;
    return 0;
}

/* What the API allows but this model's generator cannot do. */
static int check_caps(const struct isd_model *m, const struct isd_images_request *r,
                      struct isd_error *err)
{
    if (r->transparent && !m->caps.transparency)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "background",
                           "The model '%s' cannot make transparent backgrounds (it has no alpha "
                           "channel). Use background 'opaque' or 'auto'.",
                           m->name);
    if (r->n > m->caps.max_n)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "n",
                           "Invalid 'n': the model '%s' makes at most %d images per request.",
                           m->name, m->caps.max_n);
    return 0;
}

/* The request seed: for generators whose image i uses seed + i, the request's `seed` or a new
 * random one, reported in x-imagesd-seeds; otherwise the mock's configured seed. */
static void choose_seed(struct images_job *j)
{
    j->seeds_header[0] = '\0';
    if (!j->model->caps.sequential_seeds) {
        j->seed = j->srv->mock_seed;
        return;
    }
    if (j->ireq.ext.has_seed) {
        j->seed = j->ireq.ext.seed;
    } else {
        uint64_t r = 0;
        if (isd_random_bytes(&r, sizeof r) < 0)
            r = (uint64_t)isd_mono_ns();
        j->seed = r & (uint64_t)ISD_API_EXT_SEED_MAX; /* a seed a client can send back */
    }
    size_t at = 0;
    for (int i = 0; i < j->ireq.n && at < sizeof j->seeds_header; i++)
        at += (size_t)snprintf(j->seeds_header + at, sizeof j->seeds_header - at, "%s%llu",
                               i ? "," : "", (unsigned long long)(j->seed + (uint64_t)i));
}

/* Everything between an accepted request and the generator. */
static int prepare(struct images_job *j, struct isd_error *err)
{
    int rc = 0;
    if (!j->ireq.profile && (rc = prepare_json_edit(j, err)) < 0)
        return rc;
    j->model = isd_catalogue_find(j->srv->catalogue, j->ireq.model, strlen(j->ireq.model));
    if (!j->model)
        return isd_err_set(err, ISD_E_NO_SUCH_MODEL, "model", "The model '%s' does not exist.",
                           j->ireq.model);
    if ((rc = check_caps(j->model, &j->ireq, err)) < 0)
        return rc;
    choose_seed(j);
    if (j->ireq.n_inputs > 0) {
        j->input_tokens = isd_api_input_image_tokens(&j->ireq);
        rc = decode_inputs(j, err);
    }
    return rc;
}

static void fill_gen_request(const struct images_job *j, struct isd_gen_request *g)
{
    const struct isd_images_request *r = &j->ireq;
    memset(g, 0, sizeof *g);
    g->op = r->endpoint == ISD_EP_EDITS        ? ISD_GEN_EDIT
            : r->endpoint == ISD_EP_VARIATIONS ? ISD_GEN_VARIATION
                                               : ISD_GEN_GENERATE;
    g->model = r->model;
    g->prompt = r->prompt ? r->prompt : "";
    g->prompt_len = r->prompt_len;
    g->width = r->width;
    g->height = r->height;
    g->quality = r->quality;
    g->style = r->style;
    g->transparent = r->transparent;
    g->n = r->n;
    g->seed = j->seed;
    if (j->model->extensions) {
        g->ext = (struct isd_gen_extensions){.steps = r->ext.steps,
                                             .guidance = r->ext.guidance_scale,
                                             .negative_prompt = r->ext.negative_prompt,
                                             .sampler = r->ext.sampler,
                                             .strength = r->ext.strength};
    }
    g->partial_images = r->stream ? r->partial_images : 0;
    for (int i = 0; i < r->n_inputs; i++)
        g->inputs[i] = j->inputs[i];
    g->n_inputs = r->n_inputs;
    g->mask = j->mask;
}

/* ---- plain responses ---- */

/* Encodes every image and, for url responses, stores it and signs a link. */
static int encode_all(struct images_job *j, struct isd_image **images, struct isd_buf *encoded,
                      char **urls, struct isd_error *err)
{
    const struct isd_images_request *r = &j->ireq;
    struct isd_encode_opts opts = {.format = r->output_format,
                                   .compression = r->output_compression,
                                   .keep_alpha = r->transparent};
    bool want_url = !r->profile->gpt && r->response_format == ISD_RF_URL;
    for (int i = 0; i < r->n; i++) {
        int rc = isd_codec_encode_buf(images[i], &opts, &encoded[i], err);
        if (rc < 0)
            return rc;
        if (!want_url)
            continue;
        int64_t expires = isd_time_unix() + j->srv->cfg->url_ttl;
        char id[ISD_STORE_ID_LEN + 1];
        rc = isd_store_put_image(j->srv->store, encoded[i].data, encoded[i].len, r->output_format,
                                 expires, isd_http_request_id(j->req), id, err);
        if (rc < 0)
            return rc;
        char file[64], sig[ISD_SIGN_LEN + 1];
        snprintf(file, sizeof file, "%s.%s", id, isd_format_ext(r->output_format));
        isd_sign_make(isd_store_secret(j->srv->store), file, expires, sig);
        if (asprintf(&urls[i], "%s/images/%s?expires=%lld&sig=%s", j->srv->public_url, file,
                     (long long)expires, sig) < 0) {
            urls[i] = NULL;
            return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
        }
    }
    return 0;
}

static int build_body(struct images_job *j, struct isd_buf *encoded, char **urls,
                      struct isd_buf *body, struct isd_error *err)
{
    const struct isd_images_request *r = &j->ireq;
    struct isd_api_image items[MAX_N];
    char *revised = NULL;
    if (r->profile->id == ISD_PROFILE_DALL_E_3 && !(revised = revised_prompt(r->prompt)))
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    for (int i = 0; i < r->n; i++) {
        items[i] = (struct isd_api_image){.bytes = encoded[i].data,
                                          .n_bytes = encoded[i].len,
                                          .url = urls[i],
                                          .revised_prompt = revised};
    }
    struct isd_usage usage;
    isd_api_usage(r, j->input_tokens, 0, &usage);
    note_usage(j, &usage);
    int rc = isd_api_write_images(body, r, isd_time_unix(), items, r->n,
                                  r->profile->gpt ? &usage : NULL);
    free(revised);
    if (rc < 0)
        return isd_err_set(err, (enum isd_err_id) - rc, NULL,
                           "The response is larger than the server allows.");
    return 0;
}

static void respond_images(struct images_job *j, struct isd_buf *body)
{
    char timing[160];
    snprintf(timing, sizeof timing,
             "queue;dur=%.2f, render;dur=%.2f, encode;dur=%.2f, body;dur=%.2f, total;dur=%.2f",
             j->wait_ms, j->render_ms, j->encode_ms, j->body_ms,
             (double)(isd_mono_ns() - isd_http_start_ns(j->req)) / 1e6);
    struct isd_http_header h[] = {{"server-timing", timing}, {"x-imagesd-seeds", j->seeds_header}};
    size_t len;
    char *data = isd_buf_detach(body, &len);
    note_times(j);
    srv_respond(j->req, 200, "application/json", data, len, h, j->seeds_header[0] ? 2 : 1);
}

static void run_plain(struct images_job *j)
{
    struct isd_error err;
    isd_err_clear(&err);
    struct isd_image *images[MAX_N] = {0};
    struct isd_buf encoded[MAX_N];
    char *urls[MAX_N] = {0};
    struct isd_buf body;
    isd_buf_init(&body, SIZE_MAX / 2);
    for (int i = 0; i < MAX_N; i++)
        isd_buf_init(&encoded[i], 256u << 20);

    struct isd_gen_request g;
    fill_gen_request(j, &g);
    struct isd_gen_hooks hooks = {
        .ctx = &j->job, .should_abort = hook_should_abort, .report = &j->report};
    int64_t t0 = isd_mono_ns();
    int rc = isd_gen_run(j->model->gen, &g, &hooks, images, &err);
    int64_t t1 = isd_mono_ns();
    j->render_ms = (double)(t1 - t0) / 1e6;
    if (rc == 0)
        rc = encode_all(j, images, encoded, urls, &err);
    int64_t t2 = isd_mono_ns();
    j->encode_ms = (double)(t2 - t1) / 1e6;
    if (rc == 0)
        rc = build_body(j, encoded, urls, &body, &err);
    j->body_ms = (double)(isd_mono_ns() - t2) / 1e6;

    if (rc < 0 || atomic_load(&j->job.cancel_reason)) {
        respond_failure(j, &err);
    } else {
        atomic_store(&j->answered, true);
        respond_images(j, &body);
    }
    for (int i = 0; i < MAX_N; i++) {
        isd_image_free(images[i]);
        isd_buf_release(&encoded[i]);
        free(urls[i]);
    }
    isd_buf_release(&body);
}

/* ---- streaming ---- */

static int stream_send(struct images_job *j)
{
    if (!atomic_load(&j->stream_started)) {
        const struct isd_http_header h[] = {{"cache-control", "no-cache"},
                                            {"x-accel-buffering", "no"},
                                            {"x-imagesd-seeds", j->seeds_header}};
        int rc = srv_stream_begin(j->req, h, j->seeds_header[0] ? 3 : 2);
        if (rc < 0)
            return rc;
        atomic_store(&j->stream_started, true);
    }
    int rc = isd_http_stream_write(j->req, j->event.data, j->event.len);
    if (rc == 0)
        j->stream_bytes += j->event.len;
    return rc;
}

static int encode_for_stream(struct images_job *j, const struct isd_image *img)
{
    const struct isd_images_request *r = &j->ireq;
    struct isd_encode_opts opts = {.format = r->output_format,
                                   .compression = r->output_compression,
                                   .keep_alpha = r->transparent};
    struct isd_error err;
    isd_buf_reset(&j->encoded);
    isd_buf_reset(&j->event);
    return isd_codec_encode_buf(img, &opts, &j->encoded, &err);
}

static int hook_partial(void *ctx, int index, int partial_index, const struct isd_image *img)
{
    struct images_job *j = ctx;
    int rc = encode_for_stream(j, img);
    if (rc == 0)
        rc = isd_api_write_partial_event(&j->event, &j->ireq, isd_time_unix(), j->encoded.data,
                                         j->encoded.len, partial_index);
    if (rc == 0)
        rc = stream_send(j);
    if (rc == 0) {
        j->partials[index]++;
        struct srv_request *sr = srv_request_of(j->req);
        if (sr)
            sr->partials++;
    }
    return rc;
}

/* Usage of one streamed image: its output tokens plus 100 per partial sent for it; the input
 * tokens ride on the first completed event only. */
static void image_usage(const struct images_job *j, int index, struct isd_usage *u)
{
    const struct isd_images_request *r = &j->ireq;
    memset(u, 0, sizeof *u);
    if (j->completed == 0) {
        u->input_text_tokens = isd_api_text_tokens(r->prompt ? r->prompt : "", r->prompt_len);
        u->input_image_tokens = j->input_tokens;
    }
    u->output_image_tokens =
        isd_api_image_output_tokens(r->profile, r->quality, r->width, r->height) +
        100L * j->partials[index];
}

static int hook_image_done(void *ctx, int index, const struct isd_image *img)
{
    struct images_job *j = ctx;
    struct isd_usage u;
    image_usage(j, index, &u);
    note_usage(j, &u);
    int rc = encode_for_stream(j, img);
    if (rc == 0)
        rc = isd_api_write_completed_event(&j->event, &j->ireq, isd_time_unix(), j->encoded.data,
                                           j->encoded.len, &u);
    if (rc == 0)
        rc = stream_send(j);
    if (rc == 0)
        j->completed++;
    return rc;
}

static void run_stream(struct images_job *j)
{
    struct isd_error err;
    isd_err_clear(&err);
    struct isd_image *images[MAX_N] = {0};
    struct isd_gen_request g;
    fill_gen_request(j, &g);
    struct isd_gen_hooks hooks = {.ctx = j,
                                  .should_abort = hook_should_abort,
                                  .partial = hook_partial,
                                  .image_done = hook_image_done,
                                  .report = &j->report};
    int64_t t0 = isd_mono_ns();
    int rc = isd_gen_run(j->model->gen, &g, &hooks, images, &err);
    j->render_ms = (double)(isd_mono_ns() - t0) / 1e6; /* encoding included: it is interleaved */
    for (int i = 0; i < MAX_N; i++)
        isd_image_free(images[i]);
    int reason = atomic_load(&j->job.cancel_reason);
    if (!atomic_load(&j->stream_started)) {
        if (rc == 0 && !reason) /* a generator that produced nothing */
            isd_err_set(&err, ISD_E_INTERNAL, NULL,
                        "The server had an error while processing your request. Sorry about "
                        "that!");
        respond_failure(j, &err);
        return;
    }
    atomic_store(&j->answered, true);
    isd_err_clear(&err);
    if (reason || rc < 0) {
        if (reason == -ISD_E_TIMEOUT)
            isd_err_set(&err, ISD_E_TIMEOUT, NULL,
                        "The request did not finish within %ld seconds and was stopped.",
                        j->srv->cfg->request_timeout);
        else if (reason || rc == -ISD_E_CANCELLED)
            isd_err_set(&err, ISD_E_CANCELLED, NULL, "The request was cancelled.");
        else if (err.id == ISD_OK)
            isd_err_set(&err, ISD_E_GENERATOR, NULL, "The image could not be generated.");
    }
    /* the client is gone after a cancellation: no error event for it */
    if (err.id != ISD_OK && err.id != ISD_E_CANCELLED) {
        isd_buf_reset(&j->event);
        if (isd_api_write_error_event(&j->event, &err) == 0 &&
            isd_http_stream_write(j->req, j->event.data, j->event.len) == 0)
            j->stream_bytes += j->event.len;
    }
    note_times(j);
    srv_stream_end(j->req, j->stream_bytes, &err);
}

static void job_run(struct isd_job *job)
{
    struct images_job *j = (struct images_job *)job;
    j->wait_ms = (double)(job->started_ns - job->submitted_ns) / 1e6;
    struct isd_error err;
    isd_err_clear(&err);
    if (prepare(j, &err) < 0 || isd_job_should_stop(job)) {
        respond_failure(j, &err);
        return;
    }
    if (j->ireq.stream)
        run_stream(j);
    else
        run_plain(j);
}

/* ---- starting jobs ---- */

static struct images_job *job_new(struct server *srv, struct isd_http_request *req)
{
    struct images_job *j = calloc(1, sizeof *j);
    if (!j) {
        struct isd_error e;
        isd_err_set(&e, ISD_E_NOMEM, NULL, "The server is out of memory.");
        srv_respond_error(req, &e);
        return NULL;
    }
    j->srv = srv;
    j->req = req;
    isd_http_retain(req); /* the job outlives its answer until release */
    isd_buf_init(&j->json, 0);
    isd_buf_init(&j->encoded, 256u << 20);
    isd_buf_init(&j->event, 512u << 20);
    j->deadline_ns = isd_http_start_ns(req) + (int64_t)srv->cfg->request_timeout * 1000000000;
    j->job.run = job_run;
    j->job.release = job_release;
    j->job.discard = job_discard;
    j->job.poll = job_poll;
    return j;
}

static void submit(struct server *srv, struct isd_http_request *req, struct images_job *j)
{
    /* the key's image rate and a concurrent-job slot (a JSON edit's n is known later) */
    struct isd_error e;
    if (srv_take_images(req, j->ireq.profile ? j->ireq.n : 0, true, &e) < 0) {
        srv_respond_error(req, &e);
        job_free(j);
        return;
    }
    /* suspend before the job can possibly answer */
    isd_http_defer(req);
    int rc = isd_jobs_submit(srv->jobs, &j->job);
    if (rc == 0)
        return;
    if (rc == -ISD_E_BUSY) {
        struct isd_jobs_stats st;
        isd_jobs_stats(srv->jobs, &st);
        isd_err_set(&e, ISD_E_BUSY, NULL,
                    "The server is busy: all %d workers are generating and %d requests are "
                    "waiting. Please retry after a short wait.",
                    st.workers, st.queued);
    } else {
        isd_err_set(&e, ISD_E_UNAVAILABLE, NULL,
                    "The server is shutting down and cannot take new requests.");
    }
    srv_respond_error(req, &e);
    job_free(j);
}

void srv_start_images_job(struct server *srv, struct isd_http_request *req,
                          struct isd_images_request *ireq)
{
    struct images_job *j = job_new(srv, req);
    if (!j) {
        isd_images_request_release(ireq);
        return;
    }
    j->ireq = *ireq;
    memset(ireq, 0, sizeof *ireq);
    submit(srv, req, j);
}

void srv_start_edit_json_job(struct server *srv, struct isd_http_request *req, struct isd_buf *body)
{
    struct images_job *j = job_new(srv, req);
    if (!j)
        return;
    j->json = *body;
    isd_buf_init(body, 0);
    /* j->ireq.profile stays NULL until the worker validates the body (prepare_json_edit) */
    submit(srv, req, j);
}
