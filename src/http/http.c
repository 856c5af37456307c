#include "http/http.h"

#include "log/log.h"
#include "sys/sys.h"
#include "text/text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct isd_http_server {
    struct isd_http_config cfg;
    struct MHD_Daemon *daemon;
    int port;
    bool quiesced;
};

struct isd_http_request {
    struct isd_http_server *server;
    struct MHD_Connection *conn;
    const char *method; /* MHD-owned, valid for the request */
    const char *path;   /* MHD-owned, without the query string */
    const struct isd_http_route *route;
    const char *path_rest; /* points into path */
    char request_id[40];   /* req_ + 32 hex */
    int64_t start_ns;
    int fd;     /* the client socket (for hangup polls) */
    void *user; /* the handler's state */
    struct isd_buf body;
    uint64_t body_bytes_in; /* body bytes received (streamed routes) */
    bool body_stopped;      /* on_body refused more: the rest is dropped */
    bool body_too_large;
    bool refused;             /* answered with `refusal`: the body is dropped */
    struct isd_error refusal; /* why: 404, 405, 413, or the admit hook's reason */
    bool dispatched;          /* the handler was called */
    _Atomic int refs;         /* server + deferred responder + stream response */

    pthread_mutex_t lock;          /* guards everything below */
    pthread_cond_t stream_space;   /* stream writers wait for the buffer to drain */
    bool deferred;                 /* the connection is (or was) suspended for a response */
    bool resumed;                  /* a deferred response arrived */
    struct MHD_Response *response; /* ready to be queued by the connection thread */
    int status;
    bool queued;         /* the response went to MHD */
    bool finished;       /* MHD reported the request complete */
    bool client_gone;    /* ... and not as a success, or a hangup was seen */
    uint64_t body_bytes; /* length of the queued body (0 for streams) */
    /* stream state */
    bool streaming;
    struct isd_buf stream_buf; /* unsent bytes from stream_sent */
    size_t stream_sent;        /* offset of the first unsent byte */
    bool stream_ended;
    bool reader_waiting;    /* the content reader suspended the connection */
    int64_t stream_last_ns; /* last write by the producer */
    uint64_t stream_bytes;  /* total bytes handed to MHD */
};

static void request_unref(struct isd_http_request *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->user && r->server->cfg.user_free)
        r->server->cfg.user_free(r->user);
    if (r->response)
        MHD_destroy_response(r->response);
    isd_buf_release(&r->body);
    isd_buf_release(&r->stream_buf);
    pthread_cond_destroy(&r->stream_space);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static struct isd_http_request *request_new(struct isd_http_server *s, struct MHD_Connection *conn,
                                            const char *method, const char *url)
{
    struct isd_http_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->server = s;
    r->conn = conn;
    r->method = method;
    r->path = url;
    r->path_rest = "";
    r->start_ns = isd_mono_ns();
    atomic_init(&r->refs, 1);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->stream_space, NULL);
    isd_buf_init(&r->body, 0);
    isd_buf_init(&r->stream_buf, SIZE_MAX / 2);
    uint8_t rnd[16];
    isd_random_bytes(rnd, sizeof rnd);
    memcpy(r->request_id, "req_", 4);
    isd_hex_to(r->request_id + 4, rnd, sizeof rnd);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    return r;
}

/* ---- routing ---- */

static bool path_matches(const char *pattern, const char *path, const char **rest)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*') {
        if (strncmp(pattern, path, n - 1) != 0 || path[n - 1] == '\0')
            return false;
        *rest = path + n - 1;
        return true;
    }
    *rest = "";
    return strcmp(pattern, path) == 0;
}

static bool method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* The route for (method, path); *path_known tells whether any route has that path. */
static const struct isd_http_route *find_route(const struct isd_http_server *s, const char *method,
                                               const char *path, bool *path_known,
                                               const char **rest)
{
    *path_known = false;
    for (size_t i = 0; i < s->cfg.n_routes; i++) {
        const struct isd_http_route *rt = &s->cfg.routes[i];
        const char *tail;
        if (!path_matches(rt->path, path, &tail))
            continue;
        *path_known = true;
        if (method_matches(rt->method, method)) {
            *rest = tail;
            return rt;
        }
    }
    return NULL;
}

/* ---- responses ---- */

static void add_headers(struct isd_http_request *r, struct MHD_Response *resp,
                        const char *content_type, const struct isd_http_header *headers,
                        size_t n_headers)
{
    const struct isd_http_config *cfg = &r->server->cfg;
    if (content_type)
        MHD_add_response_header(resp, "content-type", content_type);
    MHD_add_response_header(resp, "x-request-id", r->request_id);
    for (size_t i = 0; i < cfg->n_fixed_headers; i++)
        MHD_add_response_header(resp, cfg->fixed_headers[i].name, cfg->fixed_headers[i].value);
    if (cfg->processing_header) {
        char ms[32];
        snprintf(ms, sizeof ms, "%lld", (long long)((isd_mono_ns() - r->start_ns) / 1000000));
        MHD_add_response_header(resp, cfg->processing_header, ms);
    }
    for (size_t i = 0; i < n_headers; i++)
        MHD_add_response_header(resp, headers[i].name, headers[i].value);
}

/* Hands a finished response to the connection: queued now when on the connection thread
 * inside the handler, or after resuming a deferred connection. Consumes the deferred
 * reference when `from_deferred` is set. */
static void deliver(struct isd_http_request *r, struct MHD_Response *resp, int status)
{
    pthread_mutex_lock(&r->lock);
    bool deferred = r->deferred;
    if (r->response || r->queued || r->streaming) {
        /* a second response is a programming error; keep the first */
        pthread_mutex_unlock(&r->lock);
        MHD_destroy_response(resp);
        isd_log_event(ISD_LOG_ERROR, "http_double_response", "request_id", r->request_id);
        return;
    }
    r->response = resp;
    r->status = status;
    if (deferred) {
        r->resumed = true;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
    if (deferred)
        request_unref(r);
}

void isd_http_respond(struct isd_http_request *r, int status, const char *content_type, char *body,
                      size_t len, const struct isd_http_header *headers, size_t n_headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!resp) {
        free(body);
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        status = 500;
    }
    add_headers(r, resp, content_type, headers, n_headers);
    pthread_mutex_lock(&r->lock);
    r->body_bytes = len;
    pthread_mutex_unlock(&r->lock);
    deliver(r, resp, status);
}

void isd_http_respond_error(struct isd_http_request *r, const struct isd_error *e,
                            const struct isd_http_header *headers, size_t n_headers)
{
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    if (r->server->cfg.error_body(e, &b) < 0) {
        isd_buf_reset(&b);
        isd_buf_append_str(&b, "{\"error\":{\"message\":\"internal error\",\"type\":"
                               "\"server_error\",\"param\":null,\"code\":null}}");
    }
    size_t len;
    char *body = isd_buf_detach(&b, &len);
    isd_http_respond(r, isd_err_status(e->id), "application/json", body, len, headers, n_headers);
}

void isd_http_respond_file(struct isd_http_request *r, int status, const char *content_type, int fd,
                           uint64_t size, const struct isd_http_header *headers, size_t n_headers)
{
    struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
    if (!resp) {
        close(fd);
        struct isd_error e;
        isd_err_set(&e, ISD_E_INTERNAL, NULL, "The server could not send the file.");
        isd_http_respond_error(r, &e, NULL, 0);
        return;
    }
    add_headers(r, resp, content_type, headers, n_headers);
    pthread_mutex_lock(&r->lock);
    r->body_bytes = size;
    pthread_mutex_unlock(&r->lock);
    deliver(r, resp, status);
}

bool isd_http_is_deferred(struct isd_http_request *r)
{
    pthread_mutex_lock(&r->lock);
    bool d = r->deferred;
    pthread_mutex_unlock(&r->lock);
    return d;
}

void isd_http_defer(struct isd_http_request *r)
{
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_lock(&r->lock);
    r->deferred = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->lock);
}

/* ---- streams ---- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct isd_http_request *r = cls;
    pthread_mutex_lock(&r->lock);
    size_t avail = r->stream_buf.len - r->stream_sent;
    ssize_t ret;
    if (avail > 0) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, r->stream_buf.data + r->stream_sent, n);
        r->stream_sent += n;
        r->stream_bytes += n;
        if (r->stream_sent == r->stream_buf.len) {
            isd_buf_reset(&r->stream_buf);
            r->stream_sent = 0;
        }
        pthread_cond_broadcast(&r->stream_space);
        ret = (ssize_t)n;
    } else if (r->stream_ended) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        r->reader_waiting = true;
        MHD_suspend_connection(r->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return ret;
}

static void stream_response_freed(void *cls)
{
    request_unref(cls);
}

int isd_http_stream_begin(struct isd_http_request *r, int status, const char *content_type,
                          const struct isd_http_header *headers, size_t n_headers)
{
    atomic_fetch_add(&r->refs, 1); /* held by the response until MHD frees it */
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 32 * 1024, stream_reader, r, stream_response_freed);
    if (!resp) {
        request_unref(r);
        return -ISD_E_NOMEM;
    }
    add_headers(r, resp, content_type, headers, n_headers);
    pthread_mutex_lock(&r->lock);
    r->stream_last_ns = isd_mono_ns();
    pthread_mutex_unlock(&r->lock);
    /* deliver() refuses when streaming is already set, so mark it after */
    pthread_mutex_lock(&r->lock);
    bool deferred = r->deferred;
    r->response = resp;
    r->status = status;
    r->streaming = true;
    if (deferred) {
        r->resumed = true;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int isd_http_stream_write(struct isd_http_request *r, const void *data, size_t len)
{
    size_t cap = r->server->cfg.stream_buffer ? r->server->cfg.stream_buffer : (8u << 20);
    pthread_mutex_lock(&r->lock);
    while (!r->client_gone && !r->finished && r->stream_buf.len - r->stream_sent > cap)
        pthread_cond_wait(&r->stream_space, &r->lock);
    int rc = 0;
    if (r->client_gone || r->finished) {
        rc = -ISD_E_CANCELLED;
    } else if (isd_buf_append(&r->stream_buf, data, len) < 0) {
        rc = -ISD_E_NOMEM;
    } else {
        r->stream_last_ns = isd_mono_ns();
        if (r->reader_waiting) {
            r->reader_waiting = false;
            MHD_resume_connection(r->conn);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int64_t isd_http_stream_idle_ms(struct isd_http_request *r)
{
    pthread_mutex_lock(&r->lock);
    int64_t ms = (isd_mono_ns() - r->stream_last_ns) / 1000000;
    pthread_mutex_unlock(&r->lock);
    return ms;
}

bool isd_http_stream_keepalive(struct isd_http_request *r, const char *text, int64_t idle_ms)
{
    bool wrote = false;
    pthread_mutex_lock(&r->lock);
    int64_t now = isd_mono_ns();
    if (r->streaming && !r->stream_ended && !r->finished && !r->client_gone &&
        r->stream_buf.len == r->stream_sent && now - r->stream_last_ns >= idle_ms * 1000000 &&
        isd_buf_append_str(&r->stream_buf, text) == 0) {
        r->stream_last_ns = now;
        wrote = true;
        if (r->reader_waiting) {
            r->reader_waiting = false;
            MHD_resume_connection(r->conn);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return wrote;
}

void isd_http_stream_end(struct isd_http_request *r)
{
    pthread_mutex_lock(&r->lock);
    r->stream_ended = true;
    if (r->reader_waiting) {
        r->reader_waiting = false;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
    request_unref(r); /* the deferred reference */
}

void isd_http_retain(struct isd_http_request *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void isd_http_release(struct isd_http_request *r)
{
    request_unref(r);
}

bool isd_http_client_gone(struct isd_http_request *r)
{
    pthread_mutex_lock(&r->lock);
    bool gone = r->client_gone || r->finished;
    if (!gone && r->fd >= 0) {
        /* MHD closes the socket only after reporting completion, which takes this lock: the
         * descriptor is still ours here */
        struct pollfd p = {.fd = r->fd, .events = POLLRDHUP};
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            gone = r->client_gone = true;
    }
    if (gone)
        pthread_cond_broadcast(&r->stream_space);
    pthread_mutex_unlock(&r->lock);
    return gone;
}

/* ---- accessors ---- */

const char *isd_http_method(const struct isd_http_request *r)
{
    return r->method;
}

const char *isd_http_path(const struct isd_http_request *r)
{
    return r->path;
}

const char *isd_http_path_rest(const struct isd_http_request *r)
{
    return r->path_rest;
}

const char *isd_http_header(const struct isd_http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *isd_http_query(const struct isd_http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *isd_http_body(const struct isd_http_request *r, size_t *len)
{
    *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

const char *isd_http_request_id(const struct isd_http_request *r)
{
    return r->request_id;
}

int isd_http_route_tag(const struct isd_http_request *r)
{
    return r->route ? r->route->tag : -1;
}

int64_t isd_http_start_ns(const struct isd_http_request *r)
{
    return r->start_ns;
}

void isd_http_set_user(struct isd_http_request *r, void *user)
{
    r->user = user;
}

void *isd_http_user(const struct isd_http_request *r)
{
    return r->user;
}

/* ---- the MHD callbacks ---- */

static enum MHD_Result queue_ready(struct isd_http_request *r)
{
    pthread_mutex_lock(&r->lock);
    struct MHD_Response *resp = r->response;
    int status = r->status;
    r->response = NULL;
    if (resp)
        r->queued = true;
    pthread_mutex_unlock(&r->lock);
    if (!resp)
        return MHD_YES;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void preflight(struct isd_http_request *r)
{
    const char *want = isd_http_header(r, "access-control-request-headers");
    struct isd_http_header h[] = {
        {"access-control-allow-methods", "GET, POST, OPTIONS"},
        {"access-control-allow-headers",
         want ? want : "authorization, content-type, openai-organization, openai-project"},
        {"access-control-max-age", "600"},
    };
    isd_http_respond(r, 204, NULL, NULL, 0, h, sizeof h / sizeof h[0]);
}

/* Answers a refused request through the server's error hook (or directly). */
static void answer_refusal(struct isd_http_server *s, struct isd_http_request *r)
{
    r->dispatched = true;
    if (s->cfg.on_error)
        s->cfg.on_error(r, s->cfg.ctx, &r->refusal);
    else
        isd_http_respond_error(r, &r->refusal, NULL, 0);
}

/* Refuses a request whose headers are read. A client with no body to send, or waiting for
 * "100 Continue", is answered now. One already sending a body is answered once it is read
 * (and dropped): most clients, Node's fetch among them, report a reset instead of our answer
 * if the connection closes under them. An absurdly large declared body is answered at once. */
static void refuse(struct isd_http_server *s, struct isd_http_request *r, const struct isd_error *e)
{
    r->refused = true;
    r->refusal = *e;
    const char *cl = isd_http_header(r, "content-length");
    const char *te = isd_http_header(r, "transfer-encoding");
    const char *expect = isd_http_header(r, "expect");
    unsigned long long declared = 0;
    if (cl) {
        char *end;
        errno = 0;
        declared = strtoull(cl, &end, 10);
        if (errno || *end)
            declared = ULLONG_MAX;
    }
    long limit = r->route ? r->route->max_body : 0;
    unsigned long long drain_cap = 4ULL * (unsigned long long)limit + (64ULL << 20);
    bool no_body = (!cl || declared == 0) && !te;
    if (no_body || declared > drain_cap || (expect && strcasecmp(expect, "100-continue") == 0))
        answer_refusal(s, r);
}

static void refuse_with(struct isd_http_server *s, struct isd_http_request *r, enum isd_err_id id,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void refuse_with(struct isd_http_server *s, struct isd_http_request *r, enum isd_err_id id,
                        const char *fmt, ...)
{
    struct isd_error e;
    va_list ap;
    va_start(ap, fmt);
    isd_err_setv(&e, id, NULL, fmt, ap);
    va_end(ap);
    refuse(s, r, &e);
}

static void first_call(struct isd_http_server *s, struct isd_http_request *r)
{
    bool path_known;
    const char *rest = "";
    r->route = find_route(s, r->method, r->path, &path_known, &rest);
    r->path_rest = rest;
    if (!r->route) {
        /* OpenAI's wording: "Invalid URL (POST /x)", "Invalid method for URL (GET /x)" */
        if (path_known && strcmp(r->method, "OPTIONS") == 0)
            preflight(r);
        else if (path_known)
            refuse_with(s, r, ISD_E_METHOD, "Invalid method for URL (%s %s)", r->method, r->path);
        else
            refuse_with(s, r, ISD_E_NO_ROUTE, "Invalid URL (%s %s)", r->method, r->path);
        return;
    }
    r->body.max = (size_t)r->route->max_body;
    struct isd_error e;
    if (s->cfg.admit && s->cfg.admit(r, s->cfg.ctx, &e) < 0) {
        refuse(s, r, &e);
        return;
    }
    const char *cl = isd_http_header(r, "content-length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || *end || n > (unsigned long long)r->route->max_body)
            refuse_with(s, r, ISD_E_TOO_LARGE,
                        "Request body too large for %s: the limit is %ld bytes.", r->path,
                        r->route->max_body);
    }
}

/* One piece of request body: buffered within the route's ceiling, or handed to on_body. */
static void take_body(struct isd_http_server *s, struct isd_http_request *r, const char *data,
                      size_t n)
{
    if (r->body_too_large || r->refused || r->queued || r->response)
        return;
    if (!r->route->on_body) {
        if (isd_buf_append(&r->body, data, n) < 0) {
            r->body_too_large = true;
            isd_buf_release(&r->body);
        }
        return;
    }
    r->body_bytes_in += n;
    if (r->body_bytes_in > (uint64_t)r->route->max_body) {
        r->body_too_large = true;
        return;
    }
    if (!r->body_stopped && r->route->on_body(r, s->cfg.ctx, data, n) < 0)
        r->body_stopped = true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct isd_http_server *s = cls;
    struct isd_http_request *r = *con_cls;
    if (!r) {
        r = request_new(s, conn, method, url);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        first_call(s, r);
        return queue_ready(r);
    }
    if (*upload_size) {
        take_body(s, r, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->queued)
        return MHD_YES;
    if (r->response)
        return queue_ready(r);
    if (r->dispatched)
        return MHD_YES; /* resumed without a response yet: nothing to do */
    if (r->body_too_large && !r->refused)
        refuse_with(s, r, ISD_E_TOO_LARGE, "Request body too large for %s: the limit is %ld bytes.",
                    r->path, r->route->max_body);
    if (r->refused) {
        if (!r->dispatched)
            answer_refusal(s, r);
    } else {
        r->dispatched = true;
        r->route->handler(r, s->cfg.ctx);
    }
    pthread_mutex_lock(&r->lock);
    bool answered = r->response != NULL || r->deferred;
    pthread_mutex_unlock(&r->lock);
    if (!answered) {
        struct isd_error e;
        isd_err_set(&e, ISD_E_INTERNAL, NULL,
                    "The server had an error while processing your "
                    "request. Sorry about that!");
        isd_http_respond_error(r, &e, NULL, 0);
    }
    return queue_ready(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct isd_http_server *s = cls;
    struct isd_http_request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&r->lock);
    r->finished = true;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        r->client_gone = true;
    pthread_cond_broadcast(&r->stream_space);
    int status = r->queued ? r->status : 0;
    uint64_t bytes = r->streaming ? r->stream_bytes : r->body_bytes;
    bool aborted = r->client_gone;
    pthread_mutex_unlock(&r->lock);
    if (s->cfg.on_done)
        s->cfg.on_done(s->cfg.ctx, r, status, bytes, aborted);
    request_unref(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!ISD_LOG_ON(ISD_LOG_DEBUG))
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    isd_log_event(ISD_LOG_DEBUG, "mhd", "msg", msg);
}

/* "HOST:PORT" / "[v6]:PORT" → socket address. */
static int resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, bool *v6,
                          struct isd_error *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1])
        return isd_err_set(err, ISD_E_INVALID_VALUE, "listen",
                           "listen address '%s': expected HOST:PORT", listen);
    size_t hl = (size_t)(colon - listen);
    const char *h = listen;
    if (listen[0] == '[' && colon[-1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "listen", "listen host is too long");
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (rc != 0)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "listen", "listen address '%s': %s", listen,
                           gai_strerror(rc));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    return 0;
}

int isd_http_check_listen(const char *listen, struct isd_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    bool v6;
    return resolve_listen(listen, &ss, &sl, &v6, err);
}

int isd_http_start(const struct isd_http_config *cfg, struct isd_http_server **out,
                   struct isd_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    bool v6 = false;
    int rc = resolve_listen(cfg->listen, &ss, &sl, &v6, err);
    if (rc < 0)
        return rc;
    struct isd_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    s->cfg = *cfg;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->connection_timeout ? cfg->connection_timeout : 120u, MHD_OPTION_CONNECTION_LIMIT,
        4096u, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 512u,
        MHD_OPTION_END);
    if (!s->daemon) {
        int e = errno;
        free(s);
        return isd_err_set(err, ISD_E_IO, "listen", "cannot listen on %s: %s", cfg->listen,
                           e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    *out = s;
    return 0;
}

int isd_http_port(const struct isd_http_server *s)
{
    return s->port;
}

void isd_http_quiesce(struct isd_http_server *s)
{
    if (s->quiesced)
        return;
    s->quiesced = true;
    int fd = MHD_quiesce_daemon(s->daemon);
    if (fd >= 0)
        close(fd);
}

void isd_http_stop(struct isd_http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
