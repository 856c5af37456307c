/*
 * Operator metrics (Prometheus text at GET /metrics) and the access log line, both written when
 * a request is finished (the http on_done hook, on the connection thread: only counters and
 * a log write happen there).
 */
#include "server/server_int.h"

#include "log/log.h"
#include "sys/sys.h"

#include <stdio.h>
#include <string.h>

static const double seconds_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,    5,     10,   30,    60,   120, 300,  600};
#define N_BUCKETS ((int)(sizeof seconds_buckets / sizeof seconds_buckets[0]))

static double read_queued(void *ctx)
{
    struct isd_jobs_stats st;
    isd_jobs_stats(((struct server *)ctx)->jobs, &st);
    return st.queued;
}

static double read_busy(void *ctx)
{
    struct isd_jobs_stats st;
    isd_jobs_stats(((struct server *)ctx)->jobs, &st);
    return st.busy;
}

static double read_workers(void *ctx)
{
    struct isd_jobs_stats st;
    isd_jobs_stats(((struct server *)ctx)->jobs, &st);
    return st.workers;
}

static double read_rejected(void *ctx)
{
    struct isd_jobs_stats st;
    isd_jobs_stats(((struct server *)ctx)->jobs, &st);
    return (double)st.rejected_busy;
}

static double read_ledger_failures(void *ctx)
{
    struct isd_ledger_stats st;
    isd_ledger_stats(((struct server *)ctx)->ledger, &st);
    return (double)st.failures;
}

int srv_metrics_init(struct server *srv, struct isd_error *err)
{
    struct srv_metrics *m = &srv->metrics;
    m->registry = isd_metrics_new();
    if (!m->registry)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for metrics");
    struct isd_metrics *r = m->registry;
    static const char *const req_labels[] = {"endpoint", "model", "status"};
    static const char *const img_labels[] = {"endpoint", "model"};
    static const char *const ep_labels[] = {"endpoint"};
    static const char *const model_labels[] = {"model"};
    static const char *const reason_labels[] = {"reason"};
    m->requests = isd_metrics_counter(
        r, "imagesd_requests_total", "Requests by endpoint, model and HTTP status.", 3, req_labels);
    m->images = isd_metrics_counter(r, "imagesd_images_total",
                                    "Images produced, by endpoint and model.", 2, img_labels);
    m->bytes_out = isd_metrics_counter(r, "imagesd_response_bytes_total",
                                       "Response body bytes sent, by endpoint.", 1, ep_labels);
    m->cancelled =
        isd_metrics_counter(r, "imagesd_jobs_cancelled_total",
                            "Jobs stopped before they finished, by reason.", 1, reason_labels);
    m->queue_wait =
        isd_metrics_histogram(r, "imagesd_queue_wait_seconds", "Time jobs waited for a worker.", 0,
                              NULL, seconds_buckets, N_BUCKETS);
    m->generation = isd_metrics_histogram(r, "imagesd_generation_seconds",
                                          "Time generators took per request, by model.", 1,
                                          model_labels, seconds_buckets, N_BUCKETS);
    m->encoding = isd_metrics_histogram(r, "imagesd_encoding_seconds",
                                        "Time spent encoding images per request.", 0, NULL,
                                        seconds_buckets, N_BUCKETS);
    m->total = isd_metrics_histogram(r, "imagesd_request_duration_seconds",
                                     "Time from a request's arrival to its answer, by endpoint.", 1,
                                     ep_labels, seconds_buckets, N_BUCKETS);
    if (!m->requests || !m->images || !m->bytes_out || !m->cancelled || !m->queue_wait ||
        !m->generation || !m->encoding || !m->total ||
        !isd_metrics_gauge_fn(r, "imagesd_queue_depth", "Jobs waiting for a worker.", read_queued,
                              srv) ||
        !isd_metrics_gauge_fn(r, "imagesd_workers_busy", "Workers running a job.", read_busy,
                              srv) ||
        !isd_metrics_gauge_fn(r, "imagesd_workers", "Worker threads.", read_workers, srv) ||
        !isd_metrics_gauge_fn(r, "imagesd_queue_rejections",
                              "Requests refused because the queue was full, since start.",
                              read_rejected, srv) ||
        !isd_metrics_gauge_fn(r, "imagesd_ledger_failures",
                              "Usage rows that could not be written, since start.",
                              read_ledger_failures, srv))
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot declare the metrics");
    return 0;
}

void srv_metrics_release(struct server *srv)
{
    isd_metrics_free(srv->metrics.registry);
    srv->metrics.registry = NULL;
}

void srv_handle_metrics(struct isd_http_request *req, void *ctx)
{
    struct server *srv = ctx;
    struct isd_buf b;
    isd_buf_init(&b, 64u << 20);
    if (isd_metrics_write(srv->metrics.registry, &b) < 0) {
        isd_buf_release(&b);
        struct isd_error e;
        isd_err_set(&e, ISD_E_NOMEM, NULL, "The metrics could not be written.");
        srv_respond_error(req, &e);
        return;
    }
    size_t len;
    char *text = isd_buf_detach(&b, &len);
    srv_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL, 0);
}

const char *srv_route_name(int route)
{
    switch (route) {
    case ROUTE_GENERATIONS:
        return "generations";
    case ROUTE_EDITS:
        return "edits";
    case ROUTE_VARIATIONS:
        return "variations";
    case ROUTE_MODELS:
    case ROUTE_MODEL:
        return "models";
    case ROUTE_HEALTH:
        return "healthz";
    case ROUTE_IMAGE_FILE:
        return "image_file";
    case ROUTE_METRICS:
        return "metrics";
    default:
        return "unknown";
    }
}

static void update_metrics(struct server *srv, const struct srv_request *sr, int route, int status,
                           uint64_t bytes, double seconds)
{
    struct srv_metrics *m = &srv->metrics;
    if (!m->registry)
        return;
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    const char *endpoint = srv_route_name(route);
    const char *model = sr && sr->model[0] ? sr->model : "-";
    isd_metric_add(m->requests, 1, (const char *[]){endpoint, model, code});
    isd_metric_add(m->bytes_out, (double)bytes, (const char *[]){endpoint});
    isd_metric_observe(m->total, seconds, (const char *[]){endpoint});
    if (!sr || !sr->endpoint)
        return;
    if (status == 200 && sr->n > 0)
        isd_metric_add(m->images, sr->n, (const char *[]){endpoint, model});
    if (sr->ms_render > 0) {
        isd_metric_observe(m->queue_wait, sr->ms_queue / 1e3, NULL);
        isd_metric_observe(m->generation, sr->ms_render / 1e3, (const char *[]){model});
        isd_metric_observe(m->encoding, sr->ms_encode / 1e3, NULL);
    }
}

void srv_request_done(void *ctx, struct isd_http_request *req, int status, uint64_t bytes,
                      bool client_aborted)
{
    struct server *srv = ctx;
    struct srv_request *sr = srv_request_of(req);
    double ms = (double)(isd_mono_ns() - isd_http_start_ns(req)) / 1e6;
    int route = isd_http_route_tag(req);
    update_metrics(srv, sr, route, status, bytes, ms / 1e3);
    if (!ISD_LOG_ON(ISD_LOG_INFO))
        return;
    /* one access line; never keys, prompts or image data */
    struct isd_logline l;
    isd_log_begin(&l, ISD_LOG_INFO, "access");
    isd_log_str(&l, "request_id", isd_http_request_id(req));
    isd_log_str(&l, "key_id", sr && sr->has_key ? sr->key.id : "-");
    isd_log_str(&l, "method", isd_http_method(req));
    isd_log_str(&l, "path", isd_http_path(req));
    isd_log_int(&l, "status", status);
    if (sr && sr->endpoint) {
        isd_log_str(&l, "model", sr->model[0] ? sr->model : "-");
        isd_log_int(&l, "n", sr->n);
        isd_log_str(&l, "size", sr->size[0] ? sr->size : "-");
        if (sr->error_code)
            isd_log_str(&l, "error", sr->error_code);
    }
    isd_log_double(&l, "ms", ms);
    isd_log_int(&l, "bytes", (int64_t)bytes);
    if (client_aborted)
        isd_log_str(&l, "client", "aborted");
    isd_log_end(&l);
}
