#include "server/server_int.h"

#include "fetch/fetch.h"
#include "log/log.h"
#include "sys/sys.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Body ceilings come from the config (set_route_limits); GET routes take no body. */
static struct isd_http_route routes[] = {
    {"POST", "/v1/images/generations", srv_handle_generations, 0},
    {"POST", "/v1/images/edits", srv_handle_edits, 0, srv_upload_body},
    {"POST", "/v1/images/variations", srv_handle_variations, 0, srv_upload_body},
    {"GET", "/v1/models", srv_handle_models, 0},
    {"GET", "/v1/models/*", srv_handle_model, 0},
    {"GET", "/healthz", srv_handle_health, 0},
    {"GET", "/images/*", srv_handle_image_file, 0},
};

static const struct isd_http_header fixed_headers[] = {
    {"openai-version", "2020-10-01"},
    {"access-control-allow-origin", "*"},
    {"access-control-expose-headers", "x-request-id, openai-processing-ms, openai-version, "
                                      "retry-after, retry-after-ms, server-timing"},
    {"x-content-type-options", "nosniff"},
};

static int error_body(const struct isd_error *e, struct isd_buf *out)
{
    return isd_api_write_error(out, e);
}

/* One access line per request (request id, method, path, status, ms, bytes); never bodies,
 * prompts or keys. */
static void access_log(void *ctx, struct isd_http_request *req, int status, uint64_t bytes,
                       bool client_aborted)
{
    (void)ctx;
    if (!ISD_LOG_ON(ISD_LOG_INFO))
        return;
    struct isd_logline l;
    isd_log_begin(&l, ISD_LOG_INFO, "access");
    isd_log_str(&l, "request_id", isd_http_request_id(req));
    isd_log_str(&l, "method", isd_http_method(req));
    isd_log_str(&l, "path", isd_http_path(req));
    isd_log_int(&l, "status", status);
    isd_log_double(&l, "ms", (double)(isd_mono_ns() - isd_http_start_ns(req)) / 1e6);
    isd_log_int(&l, "bytes", (int64_t)bytes);
    if (client_aborted)
        isd_log_str(&l, "client", "aborted");
    isd_log_end(&l);
}

/* "http://HOST:PORT" for the readiness line and the default public URL. A wildcard listen
 * address is replaced by loopback in links (set --public-url when serving other hosts). */
static void base_url(const char *listen, int port, bool for_links, char *out, size_t cap)
{
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : strlen(listen);
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(hl < sizeof host ? hl : sizeof host - 1), listen);
    if (for_links && (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0'))
        snprintf(host, sizeof host, "127.0.0.1");
    if (for_links && strcmp(host, "[::]") == 0)
        snprintf(host, sizeof host, "[::1]");
    snprintf(out, cap, "http://%s:%d", host, port);
}

static void set_route_limits(const struct isd_config *cfg)
{
    routes[0].max_body = cfg->max_body_bytes;
    routes[1].max_body = cfg->max_upload_bytes;
    routes[2].max_body = cfg->max_upload_bytes;
}

static int start(struct server *srv, struct isd_error *err)
{
    const struct isd_config *cfg = srv->cfg;
    srv->mock_seed = (uint64_t)cfg->mock_seed;
    srv->store = isd_store_open(cfg->data_dir, err);
    if (!srv->store)
        return -(int)err->id;
    int rc = isd_catalogue_new(cfg, &srv->catalogue, err);
    if (rc < 0)
        return rc;
    isd_catalogue_resolver(srv->catalogue, cfg, &srv->resolver);
    if (!isd_catalogue_find(srv->catalogue, cfg->default_model, strlen(cfg->default_model)) ||
        !isd_catalogue_find(srv->catalogue, cfg->default_gpt_model, strlen(cfg->default_gpt_model)))
        return isd_err_set(err, ISD_E_INVALID_VALUE, "default-model",
                           "default-model '%s' / default-gpt-model '%s': not in the model "
                           "catalogue",
                           cfg->default_model, cfg->default_gpt_model);
    struct isd_jobs_config jc = {
        .workers = (int)cfg->workers, .queue_size = (int)cfg->queue_size, .poll_ms = 100};
    rc = isd_jobs_new(&jc, &srv->jobs, err);
    if (rc < 0)
        return rc;
    set_route_limits(cfg);
    struct isd_http_config hc = {
        .listen = cfg->listen,
        .routes = routes,
        .n_routes = sizeof routes / sizeof routes[0],
        .ctx = srv,
        .error_body = error_body,
        .fixed_headers = fixed_headers,
        .n_fixed_headers = sizeof fixed_headers / sizeof fixed_headers[0],
        .processing_header = "openai-processing-ms",
        .connection_timeout = 120,
        .stream_buffer = 8u << 20,
        .user_free = srv_upload_free,
        .on_done = access_log,
    };
    rc = isd_http_start(&hc, &srv->http, err);
    if (rc < 0)
        return rc;
    if (cfg->public_url) {
        size_t n = strlen(cfg->public_url);
        while (n > 0 && cfg->public_url[n - 1] == '/')
            n--;
        snprintf(srv->public_url, sizeof srv->public_url, "%.*s", (int)n, cfg->public_url);
    } else {
        base_url(cfg->listen, isd_http_port(srv->http), true, srv->public_url,
                 sizeof srv->public_url);
    }
    return 0;
}

static void stop(struct server *srv)
{
    if (srv->http)
        isd_http_quiesce(srv->http);
    if (srv->jobs) {
        int left = isd_jobs_drain(srv->jobs, (double)srv->cfg->drain_timeout);
        if (left > 0)
            isd_log_event(ISD_LOG_WARN, "drain_timeout", "msg",
                          "jobs still running after the grace period were cancelled");
        isd_jobs_free(srv->jobs); /* joins workers: every deferred request has its answer */
    }
    isd_http_stop(srv->http);
    isd_catalogue_free(srv->catalogue);
    isd_store_close(srv->store);
}

static void sweep(struct server *srv)
{
    struct isd_error err;
    int deleted = 0;
    if (isd_store_sweep(srv->store, isd_time_unix(), &deleted, &err) < 0)
        isd_log_event(ISD_LOG_ERROR, "sweep_failed", "msg", err.message);
    else if (deleted > 0 && ISD_LOG_ON(ISD_LOG_INFO)) {
        struct isd_logline l;
        isd_log_begin(&l, ISD_LOG_INFO, "sweep");
        isd_log_int(&l, "deleted", deleted);
        isd_log_end(&l);
    }
}

/* Waits for SIGINT/SIGTERM, sweeping expired images meanwhile; returns the signal. */
static int wait_for_signal(struct server *srv, const sigset_t *set)
{
    for (;;) {
        struct timespec ts = {.tv_sec = srv->cfg->sweep_interval};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return sig;
        if (sig < 0 && errno == EAGAIN)
            sweep(srv);
    }
}

int isd_server_run(const struct isd_config *cfg, struct isd_error *err)
{
    enum isd_log_level level = ISD_LOG_INFO;
    enum isd_log_format format = ISD_LOG_LOGFMT;
    isd_log_parse_level(cfg->log_level, &level);
    isd_log_parse_format(cfg->log_format, &format);
    isd_log_configure(level, format, 2);

    /* Every thread started from here on inherits the blocked signals; main waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Large buffers (uploads, images) come from mmap and go back to the system when freed, so
     * resident memory follows the live data instead of the high-water mark. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    struct server srv = {.cfg = cfg};
    int rc = isd_fetch_global_init(err);
    if (rc < 0)
        return rc;
    rc = start(&srv, err);
    if (rc < 0) {
        stop(&srv);
        return rc;
    }
    char ready[300];
    base_url(cfg->listen, isd_http_port(srv.http), false, ready, sizeof ready);
    printf("listening on %s\n", ready);
    fflush(stdout);
    struct isd_logline l;
    isd_log_begin(&l, ISD_LOG_INFO, "started");
    isd_log_str(&l, "url", ready);
    isd_log_str(&l, "data_dir", cfg->data_dir);
    isd_log_str(&l, "public_url", srv.public_url);
    isd_log_int(&l, "models", (int64_t)isd_catalogue_count(srv.catalogue));
    isd_log_end(&l);

    int sig = wait_for_signal(&srv, &set);
    /* a second signal ends the process at once */
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    isd_log_event(ISD_LOG_INFO, "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
    stop(&srv);
    isd_log_event(ISD_LOG_INFO, "stopped", NULL, NULL);
    return 0;
}
