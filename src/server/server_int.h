/*
 * server_int: state shared by the server module's files.
 */
#ifndef ISD_SERVER_INT_H
#define ISD_SERVER_INT_H

#include "api/api.h"
#include "config/config.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "ledger/ledger.h"
#include "limits/limits.h"
#include "metrics/metrics.h"
#include "models/models.h"
#include "server/server.h"
#include "store/store.h"

/* Route tags (isd_http_route.tag). */
enum srv_route {
    ROUTE_GENERATIONS = 0,
    ROUTE_EDITS,
    ROUTE_VARIATIONS,
    ROUTE_MODELS,
    ROUTE_MODEL,
    ROUTE_HEALTH,
    ROUTE_IMAGE_FILE,
    ROUTE_METRICS,
};

/* Metric families the server updates (observe.c). */
struct srv_metrics {
    struct isd_metrics *registry;
    struct isd_metric *requests;    /* counter {endpoint, model, status} */
    struct isd_metric *images;      /* counter {endpoint, model} */
    struct isd_metric *bytes_out;   /* counter {endpoint} */
    struct isd_metric *cancelled;   /* counter {reason} */
    struct isd_metric *queue_wait;  /* histogram seconds */
    struct isd_metric *generation;  /* histogram seconds {model} */
    struct isd_metric *encoding;    /* histogram seconds */
    struct isd_metric *total;       /* histogram seconds {endpoint} */
    struct isd_metric *ledger_fail; /* counter */
};

struct server {
    const struct isd_config *cfg;
    struct isd_store *store;
    struct isd_catalogue *catalogue;
    struct isd_api_resolver resolver;
    struct isd_jobs *jobs;
    struct isd_ledger *ledger;
    struct isd_limits *limits;
    struct srv_metrics metrics;
    struct isd_http_server *http;
    struct isd_http_server *metrics_http; /* --metrics-listen, or NULL */
    char public_url[1024];                /* base of image links, no trailing slash */
    uint64_t mock_seed;
};

struct upload;

/* What the server knows of one request (the http request's user state): who asked, the facts
 * the ledger, the access log and the metrics record, and an upload being received. Written
 * by the connection thread, then by the job's worker, then read when the answer goes out:
 * each hand-over goes through a lock (job queue, ledger queue, http resume). */
struct srv_request {
    struct server *srv;
    int route;          /* enum srv_route, -1 when no route matched */
    int64_t arrived_ms; /* unix ms */
    struct isd_key key; /* the caller's key, when has_key */
    bool has_key;
    bool slot;                     /* holds one of the key's concurrent-job slots */
    struct isd_limit_state limits; /* for the x-ratelimit-* headers, when has_limits */
    bool has_limits;
    struct upload *upload; /* edits and variations */
    /* facts (image API requests) */
    const char *endpoint; /* "generations" | "edits" | "variations"; NULL otherwise */
    char model[128];
    int n;
    char size[24];
    const char *quality;
    const char *output_format;
    int partials; /* partial images sent */
    long in_text, in_image, out_tokens;
    double ms_queue, ms_render, ms_encode;
    int gen_steps;     /* the generator's own units: denoising steps, */
    double megapixels; /* and pixels generated (local models) */
    int status;        /* the status sent */
    const char *error_code;
};

struct srv_request *srv_request_of(struct isd_http_request *req);
/* Records the validated request's facts (model, n, size, quality, format). */
void srv_note_request(struct isd_http_request *req, const struct isd_images_request *r);
/* Records the model of a request that failed validation, when it was resolved. */
void srv_note_model(struct isd_http_request *req, const struct isd_images_request *r);

/* auth.c: the admit hook (API keys, request rate), key masking, image-rate admission. */
int srv_admit(struct isd_http_request *req, void *ctx, struct isd_error *e);
void srv_request_free(void *user);
/* Takes `images` image tokens (and, with `slot`, a concurrent-job slot) from the caller's key;
 * -ISD_E_RATE_LIMIT with the message filled when a limit refuses. No key: always 0. */
int srv_take_images(struct isd_http_request *req, int images, bool slot, struct isd_error *e);
/* Whether requests need a key: a key was ever created. */
bool srv_auth_required(struct server *srv);

/* respond.c: every answer of the server goes out through these. They add the rate-limit
 * headers and, for image API requests, write the ledger row before the answer is sent. */
void srv_respond(struct isd_http_request *req, int status, const char *content_type, char *body,
                 size_t len, const struct isd_http_header *headers, size_t n_headers);
void srv_respond_error(struct isd_http_request *req, const struct isd_error *e);
void srv_respond_json(struct isd_http_request *req, int status, struct isd_buf *body);
/* The http module's on_error hook. */
void srv_on_error(struct isd_http_request *req, void *ctx, const struct isd_error *e);
/* Begins an SSE stream with the rate-limit headers. */
int srv_stream_begin(struct isd_http_request *req, const struct isd_http_header *headers,
                     size_t n_headers);
/* Ends a stream after its ledger row (status 200, or `e`'s code) is committed. */
void srv_stream_end(struct isd_http_request *req, uint64_t bytes, const struct isd_error *e);
/* The access log and metrics for a finished request (http on_done hook). */
void srv_request_done(void *ctx, struct isd_http_request *req, int status, uint64_t bytes,
                      bool client_aborted);

/* observe.c */
/* The route's name in metrics, logs and the ledger: "generations", "models", ... (static). */
const char *srv_route_name(int route);
int srv_metrics_init(struct server *srv, struct isd_error *err);
void srv_metrics_release(struct server *srv);
void srv_handle_metrics(struct isd_http_request *req, void *ctx);

/* handlers.c */
void srv_handle_generations(struct isd_http_request *req, void *ctx);
void srv_handle_models(struct isd_http_request *req, void *ctx);
void srv_handle_model(struct isd_http_request *req, void *ctx);
void srv_handle_health(struct isd_http_request *req, void *ctx);
void srv_handle_image_file(struct isd_http_request *req, void *ctx);
/* True when the Content-Type's media type is `want` (case-insensitive, parameters ignored). */
bool srv_content_type_is(struct isd_http_request *req, const char *want);

/* upload.c: edits and variations (multipart or JSON bodies, consumed as they arrive). */
int srv_upload_body(struct isd_http_request *req, void *ctx, const char *data, size_t n);
void srv_upload_release(struct upload *u);
void srv_handle_edits(struct isd_http_request *req, void *ctx);
void srv_handle_variations(struct isd_http_request *req, void *ctx);

/* generate.c: runs a validated images request as a job; takes over `ireq`. */
void srv_start_images_job(struct server *srv, struct isd_http_request *req,
                          struct isd_images_request *ireq);
/* ... or a JSON edit body still to validate (on the worker); takes over `body`. */
void srv_start_edit_json_job(struct server *srv, struct isd_http_request *req,
                             struct isd_buf *body);

#endif
