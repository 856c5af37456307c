/*
 * http: the HTTP server, on libmicrohttpd (see docs/http.md for why that library and how it is
 * used). One internal polling thread (epoll) owns every connection; it parses headers, collects
 * bodies within per-route ceilings and calls route handlers, which must be quick: anything slow
 * (rendering, encoding, disk) is handed to another thread with isd_http_defer() and answered
 * later with isd_http_respond*() or a stream, from any thread.
 *
 * Requests: a handler receives a struct isd_http_request (opaque). It must end in exactly one
 * response: isd_http_respond(), isd_http_respond_file(), or isd_http_stream_begin() ... _end().
 * If the handler does not respond before returning it must have called isd_http_defer(),
 * which suspends the connection until the response arrives. References: the server holds one
 * reference to a request; isd_http_defer() adds one for the deferred responder, which that
 * responder gives up by responding (or by isd_http_stream_end()). The request is freed when
 * both are gone, so a deferred responder may respond after the client left.
 *
 * Bodies: Content-Length over the route's `max_body` is refused before the body is read
 * (413); chunked bodies are cut at the ceiling. Every response carries `x-request-id`
 * (req_ + 32 hex), the configured fixed headers, and `<processing header>` in milliseconds.
 * Error bodies (404 unknown route, 405 wrong method, 413) come from the `error_body` hook, so
 * this module knows nothing of the OpenAI error format.
 *
 * Streams: after isd_http_stream_begin(), isd_http_stream_write() appends bytes that the
 * connection thread sends as soon as the socket takes them; when more than `stream_buffer`
 * bytes wait unsent, the writer blocks (backpressure) until they drain or the client leaves
 * (then -ISD_E_CANCELLED).
 *
 * Client disconnects: MHD does not watch a suspended connection, so isd_http_client_gone()
 * polls the socket (POLLRDHUP); callers poll it from their own watchdog.
 *
 * Threading: start/stop from the main thread; respond/stream functions from any thread.
 */
#ifndef ISD_HTTP_H
#define ISD_HTTP_H

#include "buf/buf.h"
#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct isd_http_request;
struct isd_http_server;

struct isd_http_header {
    const char *name;
    const char *value;
};

struct isd_http_route {
    int tag;            /* the caller's name for the route (isd_http_route_tag) */
    const char *method; /* "GET", "POST", ...; GET routes also answer HEAD */
    const char *path;   /* exact path, or a prefix ending in '*', e.g. "/images/" + '*' */
    void (*handler)(struct isd_http_request *req, void *ctx);
    long max_body; /* largest body accepted (bytes); 0 = none */
    /* Optional: the body is handed over as it arrives instead of being buffered (uploads).
     * Called on the connection thread for each piece, in order; a negative return stops the
     * calls (the rest of the body is read and dropped) and the handler, which still runs at
     * the end, finds out from its own state (isd_http_user). */
    int (*on_body)(struct isd_http_request *req, void *ctx, const char *data, size_t n);
};

struct isd_http_config {
    const char *listen; /* "HOST:PORT", "[v6]:PORT"; port 0 = any free port */
    const struct isd_http_route *routes;
    size_t n_routes;
    void *ctx; /* passed to handlers */
    /* Writes the body of an error response for `e` (the status comes from err.h). */
    int (*error_body)(const struct isd_error *e, struct isd_buf *out);
    const struct isd_http_header *fixed_headers; /* added to every response */
    size_t n_fixed_headers;
    const char *processing_header; /* e.g. "openai-processing-ms"; NULL = none */
    unsigned connection_timeout;   /* idle seconds before a connection is closed */
    size_t stream_buffer;          /* unsent stream bytes before writers block */
    /* Optional: called on the connection thread once a request's route is known and its
     * headers are read, before its body (authentication, request-rate limits). Returns 0 to
     * go on, or fills `e` and returns < 0 to refuse the request. */
    int (*admit)(struct isd_http_request *req, void *ctx, struct isd_error *e);
    /* Optional: answers every refusal (the admit hook's, 404, 405, 413); it must respond,
     * possibly after deferring. NULL: isd_http_respond_error. A refused request is answered at
     * once when the client has no body to send (or awaits "100 Continue"), otherwise after its
     * body has been read and dropped, so that clients read the answer instead of a reset. */
    void (*on_error)(struct isd_http_request *req, void *ctx, const struct isd_error *e);
    /* Frees a request's user state (isd_http_set_user) when the request itself is freed. */
    void (*user_free)(void *user);
    /* Called once per request when it is finished (on the connection thread): for the access
     * log. `status` is 0 when no response was sent; `bytes` is the body length sent. */
    void (*on_done)(void *ctx, struct isd_http_request *req, int status, uint64_t bytes,
                    bool client_aborted);
};

int isd_http_start(const struct isd_http_config *cfg, struct isd_http_server **out,
                   struct isd_error *err);
/* Checks that `listen` is a HOST:PORT that resolves, without binding it. */
int isd_http_check_listen(const char *listen, struct isd_error *err);
/* The bound host (as configured) and port (the real one when 0 was asked for). */
int isd_http_port(const struct isd_http_server *s);
/* Stops accepting new connections; existing ones continue. */
void isd_http_quiesce(struct isd_http_server *s);
/* Stops the server; every deferred request must have been answered. NULL-safe. */
void isd_http_stop(struct isd_http_server *s);

/* ---- request accessors (valid until the request is finished) ---- */
const char *isd_http_method(const struct isd_http_request *r);
const char *isd_http_path(const struct isd_http_request *r);
/* The part of the path matched by a trailing '*' in the route; "" otherwise. */
const char *isd_http_path_rest(const struct isd_http_request *r);
const char *isd_http_header(const struct isd_http_request *r, const char *name);
const char *isd_http_query(const struct isd_http_request *r, const char *name);
const char *isd_http_body(const struct isd_http_request *r, size_t *len);
const char *isd_http_request_id(const struct isd_http_request *r);
/* The matched route's tag, or -1 when no route matched. */
int isd_http_route_tag(const struct isd_http_request *r);
int64_t isd_http_start_ns(const struct isd_http_request *r); /* monotonic arrival time */
/* Per-request slot for the handler's own state, freed with the request by the config's
 * user_free hook. */
void isd_http_set_user(struct isd_http_request *r, void *user);
void *isd_http_user(const struct isd_http_request *r);

/* Extra references for code that keeps a request after answering it (e.g. a job the monitor
 * may still poll); each retain needs one release. */
void isd_http_retain(struct isd_http_request *r);
void isd_http_release(struct isd_http_request *r);

/* True when the client closed or reset its connection (cheap: one poll(2) with 0 timeout). */
bool isd_http_client_gone(struct isd_http_request *r);

/* ---- responding ---- */
void isd_http_defer(struct isd_http_request *r);
/* True once isd_http_defer() was called for the request. */
bool isd_http_is_deferred(struct isd_http_request *r);
/* Takes ownership of `body` (malloc'd, may be NULL when len is 0). Headers are copied. */
void isd_http_respond(struct isd_http_request *r, int status, const char *content_type, char *body,
                      size_t len, const struct isd_http_header *headers, size_t n_headers);
/* An error response: status from err.h, body from the error_body hook. */
void isd_http_respond_error(struct isd_http_request *r, const struct isd_error *e,
                            const struct isd_http_header *headers, size_t n_headers);
/* Sends `size` bytes of the open file `fd` (closed by this module). */
void isd_http_respond_file(struct isd_http_request *r, int status, const char *content_type, int fd,
                           uint64_t size, const struct isd_http_header *headers, size_t n_headers);

int isd_http_stream_begin(struct isd_http_request *r, int status, const char *content_type,
                          const struct isd_http_header *headers, size_t n_headers);
/* 0, or -ISD_E_CANCELLED when the client is gone. Blocks while the buffer is full. */
int isd_http_stream_write(struct isd_http_request *r, const void *data, size_t len);
/* Milliseconds since bytes were last written to the stream (for keep-alives). */
int64_t isd_http_stream_idle_ms(struct isd_http_request *r);
/* Appends `text` only when nothing was written for `idle_ms` and nothing waits unsent; never
 * blocks (safe from a watchdog). Returns true when it was written. */
bool isd_http_stream_keepalive(struct isd_http_request *r, const char *text, int64_t idle_ms);
/* Ends the stream and gives up the deferred reference. */
void isd_http_stream_end(struct isd_http_request *r);

#endif
