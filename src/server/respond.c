/*
 * Every answer of the server leaves through here. Two things happen on the way: the caller's
 * rate-limit headers are added (x-ratelimit-*, like OpenAI's), and for image API requests the
 * usage-ledger row is written (appended to the journal, a few microseconds) before the answer
 * is released, so that a request whose response was sent is in the ledger even if the process
 * is killed right after.
 */
#include "server/server_int.h"

#include "log/log.h"
#include "sys/sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 16

/* An answer being put together. */
struct answer {
    struct isd_http_request *req;
    int status;
    const char *content_type;
    char *body;      /* handed to isd_http_respond */
    size_t len;      /* body length, or the bytes a stream sent */
    bool stream_end; /* end a stream instead of sending a body */
    struct isd_http_header headers[MAX_HEADERS];
    size_t n_headers;
    char text[2048]; /* storage for the header strings */
    size_t used;
};

static const char *keep(struct answer *p, const char *s)
{
    size_t n = strlen(s) + 1;
    if (p->used + n > sizeof p->text)
        return "";
    char *d = p->text + p->used;
    memcpy(d, s, n);
    p->used += n;
    return d;
}

static void add_header(struct answer *p, const char *name, const char *value)
{
    if (p->n_headers < MAX_HEADERS)
        p->headers[p->n_headers++] = (struct isd_http_header){keep(p, name), keep(p, value)};
}

static void add_limit_headers(struct answer *p, const struct srv_request *sr)
{
    if (!sr || !sr->has_limits)
        return;
    const struct isd_limit_state *l = &sr->limits;
    char num[32], dur[32];
    if (l->limit_requests > 0) {
        snprintf(num, sizeof num, "%ld", l->limit_requests);
        add_header(p, "x-ratelimit-limit-requests", num);
        snprintf(num, sizeof num, "%ld", l->remaining_requests > 0 ? l->remaining_requests : 0);
        add_header(p, "x-ratelimit-remaining-requests", num);
        isd_limits_duration(l->reset_requests, dur, sizeof dur);
        add_header(p, "x-ratelimit-reset-requests", dur);
    }
    if (l->limit_images > 0) {
        snprintf(num, sizeof num, "%ld", l->limit_images);
        add_header(p, "x-ratelimit-limit-images", num);
        snprintf(num, sizeof num, "%ld", l->remaining_images > 0 ? l->remaining_images : 0);
        add_header(p, "x-ratelimit-remaining-images", num);
        isd_limits_duration(l->reset_images, dur, sizeof dur);
        add_header(p, "x-ratelimit-reset-images", dur);
    }
}

static void release(struct answer *p)
{
    if (p->stream_end)
        isd_http_stream_end(p->req);
    else
        isd_http_respond(p->req, p->status, p->content_type, p->body, p->len, p->headers,
                         p->n_headers);
}

static void fill_row(const struct srv_request *sr, struct isd_http_request *req, int status,
                     uint64_t bytes, struct isd_usage_row *row)
{
    memset(row, 0, sizeof *row);
    row->time_ms = sr->arrived_ms;
    snprintf(row->request_id, sizeof row->request_id, "%s", isd_http_request_id(req));
    if (sr->has_key)
        snprintf(row->key_id, sizeof row->key_id, "%s", sr->key.id);
    row->endpoint = sr->endpoint;
    snprintf(row->model, sizeof row->model, "%s", sr->model);
    row->n = sr->n;
    snprintf(row->size, sizeof row->size, "%s", sr->size);
    row->quality = sr->quality;
    row->output_format = sr->output_format;
    row->partial_images = sr->partials;
    row->status = status;
    row->error_code = sr->error_code; /* NULL unless the request failed (streams too) */
    row->input_text_tokens = sr->in_text;
    row->input_image_tokens = sr->in_image;
    row->output_tokens = status < 400 ? sr->out_tokens : 0;
    row->bytes_out = bytes;
    row->ms_queue = sr->ms_queue;
    row->ms_render = sr->ms_render;
    row->ms_encode = sr->ms_encode;
    row->ms_total = (double)(isd_mono_ns() - isd_http_start_ns(req)) / 1e6;
    row->steps = sr->gen_steps;
    row->megapixels = sr->megapixels;
}

/* Writes the ledger row of image API requests, then sends `p`. */
static void dispatch(struct answer *p)
{
    struct srv_request *sr = srv_request_of(p->req);
    if (sr)
        sr->status = p->status;
    if (sr && sr->endpoint && isd_ledger_enabled(sr->srv->ledger)) {
        struct isd_usage_row row;
        fill_row(sr, p->req, p->status, p->len, &row);
        isd_ledger_record(sr->srv->ledger, &row);
    }
    release(p);
}

void srv_respond(struct isd_http_request *req, int status, const char *content_type, char *body,
                 size_t len, const struct isd_http_header *headers, size_t n_headers)
{
    struct answer a = {
        .req = req, .status = status, .content_type = content_type, .body = body, .len = len};
    for (size_t i = 0; i < n_headers; i++)
        add_header(&a, headers[i].name, headers[i].value);
    add_limit_headers(&a, srv_request_of(req));
    dispatch(&a);
}

void srv_respond_json(struct isd_http_request *req, int status, struct isd_buf *body)
{
    size_t len;
    char *data = isd_buf_detach(body, &len);
    srv_respond(req, status, "application/json", data, len, NULL, 0);
}

void srv_respond_error(struct isd_http_request *req, const struct isd_error *e)
{
    struct srv_request *sr = srv_request_of(req);
    if (sr)
        sr->error_code = isd_err_code(e->id) ? isd_err_code(e->id) : isd_err_name(e->id);
    struct isd_http_header h[3];
    size_t n = 0;
    char secs[32], ms[32];
    int status = isd_err_status(e->id);
    if (e->id == ISD_E_AUTH_MISSING || e->id == ISD_E_AUTH_INVALID) {
        h[n++] = (struct isd_http_header){"www-authenticate", "Bearer realm=\"imagesd\""};
    } else if (e->id == ISD_E_RATE_LIMIT && sr && sr->has_limits) {
        double wait = sr->limits.retry_after > 0.001 ? sr->limits.retry_after : 0.001;
        snprintf(secs, sizeof secs, "%ld", (long)(wait + 0.999));
        snprintf(ms, sizeof ms, "%.0f", wait * 1000.0 + 0.5);
        h[n++] = (struct isd_http_header){"retry-after", secs};
        h[n++] = (struct isd_http_header){"retry-after-ms", ms};
    } else if (status == 429 || status == 503) {
        h[n++] = (struct isd_http_header){"retry-after", "1"};
        h[n++] = (struct isd_http_header){"retry-after-ms", "1000"};
    } else if (e->id == ISD_E_TIMEOUT || e->id == ISD_E_CANCELLED) {
        /* the same request would take as long again */
        h[n++] = (struct isd_http_header){"x-should-retry", "false"};
    }
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    if (isd_api_write_error(&b, e) < 0) {
        isd_buf_reset(&b);
        isd_buf_append_str(&b, "{\"error\":{\"message\":\"internal error\",\"type\":"
                               "\"server_error\",\"param\":null,\"code\":null}}");
    }
    size_t len;
    char *body = isd_buf_detach(&b, &len);
    srv_respond(req, status, "application/json", body, len, h, n);
}

void srv_on_error(struct isd_http_request *req, void *ctx, const struct isd_error *e)
{
    (void)ctx;
    srv_respond_error(req, e);
}

int srv_stream_begin(struct isd_http_request *req, const struct isd_http_header *headers,
                     size_t n_headers)
{
    struct answer a = {0};
    for (size_t i = 0; i < n_headers; i++)
        add_header(&a, headers[i].name, headers[i].value);
    add_limit_headers(&a, srv_request_of(req));
    return isd_http_stream_begin(req, 200, "text/event-stream", a.headers, a.n_headers);
}

void srv_stream_end(struct isd_http_request *req, uint64_t bytes, const struct isd_error *e)
{
    struct srv_request *sr = srv_request_of(req);
    if (sr && e && e->id != ISD_OK)
        sr->error_code = isd_err_code(e->id) ? isd_err_code(e->id) : isd_err_name(e->id);
    struct answer a = {.req = req, .status = 200, .len = bytes, .stream_end = true};
    dispatch(&a);
}
