/*
 * server_int: state shared by the server module's files.
 */
#ifndef ISD_SERVER_INT_H
#define ISD_SERVER_INT_H

#include "api/api.h"
#include "config/config.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "models/models.h"
#include "server/server.h"
#include "store/store.h"

struct server {
    const struct isd_config *cfg;
    struct isd_store *store;
    struct isd_catalogue *catalogue;
    struct isd_api_resolver resolver;
    struct isd_jobs *jobs;
    struct isd_http_server *http;
    char public_url[1024]; /* base of image links, no trailing slash */
    uint64_t mock_seed;
};

/* handlers.c */
void srv_handle_generations(struct isd_http_request *req, void *ctx);
void srv_handle_models(struct isd_http_request *req, void *ctx);
void srv_handle_model(struct isd_http_request *req, void *ctx);
void srv_handle_health(struct isd_http_request *req, void *ctx);
void srv_handle_image_file(struct isd_http_request *req, void *ctx);
/* Sends `e` as the OpenAI error envelope (with retry headers for 429/5xx). */
void srv_respond_error(struct isd_http_request *req, const struct isd_error *e);
/* Sends a JSON body built in `body` (taken over). */
void srv_respond_json(struct isd_http_request *req, int status, struct isd_buf *body);
/* True when the Content-Type's media type is `want` (case-insensitive, parameters ignored). */
bool srv_content_type_is(struct isd_http_request *req, const char *want);

/* upload.c: edits and variations (multipart or JSON bodies, consumed as they arrive). */
int srv_upload_body(struct isd_http_request *req, void *ctx, const char *data, size_t n);
void srv_upload_free(void *user);
void srv_handle_edits(struct isd_http_request *req, void *ctx);
void srv_handle_variations(struct isd_http_request *req, void *ctx);

/* generate.c: runs a validated images request as a job; takes over `ireq`. */
void srv_start_images_job(struct server *srv, struct isd_http_request *req,
                          struct isd_images_request *ireq);
/* ... or a JSON edit body still to validate (on the worker); takes over `body`. */
void srv_start_edit_json_job(struct server *srv, struct isd_http_request *req,
                             struct isd_buf *body);

#endif
