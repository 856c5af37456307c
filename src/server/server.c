#include "server/server_int.h"

#include "fetch/fetch.h"
#include "log/log.h"
#include "sys/sys.h"

#include <errno.h>
#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Body ceilings come from the config (set_route_limits); GET routes take no body. */
static struct isd_http_route routes[] = {
    {ROUTE_GENERATIONS, "POST", "/v1/images/generations", srv_handle_generations, 0, NULL},
    {ROUTE_EDITS, "POST", "/v1/images/edits", srv_handle_edits, 0, srv_upload_body},
    {ROUTE_VARIATIONS, "POST", "/v1/images/variations", srv_handle_variations, 0, srv_upload_body},
    {ROUTE_MODELS, "GET", "/v1/models", srv_handle_models, 0, NULL},
    {ROUTE_MODEL, "GET", "/v1/models/*", srv_handle_model, 0, NULL},
    {ROUTE_HEALTH, "GET", "/healthz", srv_handle_health, 0, NULL},
    {ROUTE_IMAGE_FILE, "GET", "/images/*", srv_handle_image_file, 0, NULL},
    {ROUTE_METRICS, "GET", "/metrics", srv_handle_metrics, 0, NULL},
};

/* --metrics-listen: /metrics alone, without authentication (keep that address private) */
static struct isd_http_route metrics_routes[] = {
    {ROUTE_METRICS, "GET", "/metrics", srv_handle_metrics, 0, NULL},
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

/* True when every address `listen`'s host resolves to is a loopback address. */
static bool listens_on_loopback(const char *listen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    if (n >= sizeof host)
        return false;
    memcpy(host, listen, n);
    host[n] = '\0';
    char *h = host;
    if (h[0] == '[' && n > 1 && h[n - 1] == ']') {
        h[n - 1] = '\0';
        h++;
    }
    if (!h[0])
        return false; /* all interfaces */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(h, NULL, &hints, &ai) != 0)
        return false;
    bool loopback = ai != NULL;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            uint32_t ip = ntohl(((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr);
            loopback = loopback && (ip >> 24) == 127;
        } else if (a->ai_family == AF_INET6) {
            loopback =
                loopback && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr);
        } else {
            loopback = false;
        }
    }
    freeaddrinfo(ai);
    return loopback;
}

/* The secure default: with no API key, serve loopback only (with a warning), unless told. */
static int check_auth_default(struct server *srv, struct isd_error *err)
{
    const struct isd_config *cfg = srv->cfg;
    if (isd_store_key_count(srv->store) > 0)
        return 0;
    if (listens_on_loopback(cfg->listen)) {
        isd_log_event(ISD_LOG_WARN, "auth_disabled", "msg",
                      "no API keys exist: requests are accepted without one on this loopback "
                      "address (create keys with `imagesd keys create`)");
        return 0;
    }
    if (cfg->insecure_no_auth) {
        isd_log_event(ISD_LOG_WARN, "auth_disabled", "msg",
                      "no API keys exist and --insecure-no-auth is set: anyone who can reach "
                      "this address may use the server");
        return 0;
    }
    return isd_err_set(err, ISD_E_INVALID_VALUE, "listen",
                       "refusing to listen on %s without API keys: create one with `imagesd "
                       "keys create --name NAME --data-dir %s`, or pass --insecure-no-auth",
                       cfg->listen, cfg->data_dir);
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
    const char *defaults[] = {cfg->default_model, cfg->default_gpt_model, cfg->default_edit_model};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (!isd_catalogue_find(srv->catalogue, defaults[i], strlen(defaults[i])))
            return isd_err_set(err, ISD_E_INVALID_VALUE, "default-model",
                               "default model '%s' is not in the model catalogue", defaults[i]);
    struct isd_jobs_config jc = {
        .workers = (int)cfg->workers, .queue_size = (int)cfg->queue_size, .poll_ms = 100};
    rc = isd_jobs_new(&jc, &srv->jobs, err);
    if (rc < 0)
        return rc;
    if ((rc = isd_ledger_new(srv->store, cfg->ledger != 0, &srv->ledger, err)) < 0)
        return rc;
    srv->limits = isd_limits_new((double)cfg->rate_window);
    if (!srv->limits)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    if ((rc = srv_metrics_init(srv, err)) < 0 ||
        (rc = isd_http_check_listen(cfg->listen, err)) < 0 ||
        (rc = check_auth_default(srv, err)) < 0)
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
        .admit = srv_admit,
        .on_error = srv_on_error,
        .user_free = srv_request_free,
        .on_done = srv_request_done,
    };
    rc = isd_http_start(&hc, &srv->http, err);
    if (rc < 0)
        return rc;
    if (cfg->metrics_listen) {
        struct isd_http_config mc = hc;
        mc.listen = cfg->metrics_listen;
        mc.routes = metrics_routes;
        mc.n_routes = 1;
        mc.admit = NULL;
        if ((rc = isd_http_start(&mc, &srv->metrics_http, err)) < 0)
            return rc;
        char url[300];
        base_url(cfg->metrics_listen, isd_http_port(srv->metrics_http), false, url, sizeof url);
        isd_log_event(ISD_LOG_INFO, "metrics_listening", "url", url);
    }
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
    if (srv->metrics_http)
        isd_http_quiesce(srv->metrics_http);
    if (srv->jobs) {
        int left = isd_jobs_drain(srv->jobs, (double)srv->cfg->drain_timeout);
        if (left > 0)
            isd_log_event(ISD_LOG_WARN, "drain_timeout", "msg",
                          "jobs still running after the grace period were cancelled");
        isd_jobs_free(srv->jobs); /* joins workers: every answer was written to the ledger */
    }
    isd_ledger_free(srv->ledger); /* imports the last rows */
    isd_http_stop(srv->http);
    isd_http_stop(srv->metrics_http);
    isd_limits_free(srv->limits);
    srv_metrics_release(srv);
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
