/*
 * Uploads for /v1/images/edits and /v1/images/variations. The body is consumed as it arrives,
 * on the connection thread: a multipart body goes through the streaming parser into a form
 * whose file parts are the only copy of the upload; a JSON edit body is buffered (it must be
 * whole to be parsed) and validated on a worker, since it may hold large data: URLs or name
 * remote images to fetch.
 */
#include "server/server_int.h"

#include "multipart/multipart.h"

#include <stdlib.h>
#include <string.h>

#define MB (1024L * 1024L)

enum upload_kind { UPLOAD_NONE, UPLOAD_MULTIPART, UPLOAD_JSON };

struct upload {
    enum upload_kind kind;
    struct isd_mp_parser parser; /* multipart */
    bool parser_ready;
    struct isd_form form; /* multipart fields */
    struct isd_buf json;  /* JSON body */
    bool failed;          /* receiving stopped on `err` */
    struct isd_error err;
};

void srv_upload_release(struct upload *u)
{
    if (!u)
        return;
    if (u->parser_ready)
        isd_mp_parser_release(&u->parser);
    isd_form_release(&u->form);
    isd_buf_release(&u->json);
    free(u);
}

static struct upload *upload_of(struct isd_http_request *req, struct server *srv)
{
    struct srv_request *sr = srv_request_of(req);
    if (!sr)
        return NULL;
    if (sr->upload)
        return sr->upload;
    struct upload *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    sr->upload = u;
    struct isd_form_limits lim = {
        .max_files = ISD_API_MAX_INPUTS + 1, /* 16 images and a mask */
        .max_file_bytes = (size_t)(50 * MB), /* the largest image any model takes */
        .max_text_bytes = 256 * 1024,        /* a 32000-character prompt in UTF-8 */
        .max_total_bytes = (size_t)srv->cfg->max_upload_bytes,
    };
    isd_form_init(&u->form, &lim);
    isd_buf_init(&u->json, (size_t)srv->cfg->max_upload_bytes);
    if (srv_content_type_is(req, "multipart/form-data")) {
        u->kind = UPLOAD_MULTIPART;
        const char *ct = isd_http_header(req, "content-type");
        if (isd_mp_parser_init(&u->parser, ct, &isd_form_callbacks, &u->form, &u->err) < 0)
            u->failed = true;
        else
            u->parser_ready = true;
    } else if (srv_content_type_is(req, "application/json")) {
        u->kind = UPLOAD_JSON;
    }
    return u;
}

int srv_upload_body(struct isd_http_request *req, void *ctx, const char *data, size_t n)
{
    struct upload *u = upload_of(req, ctx);
    if (!u || u->failed || u->kind == UPLOAD_NONE)
        return -1;
    int rc;
    if (u->kind == UPLOAD_MULTIPART)
        rc = isd_mp_parser_feed(&u->parser, data, n, &u->err);
    else if ((rc = isd_buf_append(&u->json, data, n)) < 0)
        isd_err_set(&u->err, ISD_E_TOO_LARGE, NULL, "Request body too large.");
    if (rc < 0)
        u->failed = true;
    return rc;
}

static void respond_bad_content_type(struct isd_http_request *req, bool json_too)
{
    const char *ct = isd_http_header(req, "content-type");
    const char *accepted =
        json_too ? "'multipart/form-data' or 'application/json'" : "'multipart/form-data'";
    struct isd_error e;
    char quoted[260];
    if (ct) {
        isd_err_quote(quoted, ct, strlen(ct), 256);
        isd_err_set(&e, ISD_E_CONTENT_TYPE, NULL,
                    "Unsupported content type. This API method only accepts %s requests, but you "
                    "specified the header 'Content-Type: %s'. Please try again with a supported "
                    "content type.",
                    accepted, quoted);
    } else {
        isd_err_set(&e, ISD_E_CONTENT_TYPE, NULL,
                    "Unsupported content type. This API method only accepts %s requests, but you "
                    "did not specify a Content-Type header. Please try again with a supported "
                    "content type.",
                    accepted);
    }
    srv_respond_error(req, &e);
}

/* The form of a multipart upload, complete and well formed, or an error already sent. */
static struct isd_form *finish_form(struct isd_http_request *req, struct upload *u)
{
    if (!u->failed && isd_mp_parser_finish(&u->parser, &u->err) < 0)
        u->failed = true;
    if (u->failed) {
        srv_respond_error(req, &u->err);
        return NULL;
    }
    return &u->form;
}

void srv_handle_edits(struct isd_http_request *req, void *ctx)
{
    struct server *srv = ctx;
    struct upload *u = upload_of(req, srv);
    struct isd_error err;
    if (!u) {
        isd_err_set(&err, ISD_E_NOMEM, NULL, "The server is out of memory.");
        srv_respond_error(req, &err);
        return;
    }
    if (u->kind == UPLOAD_NONE) {
        respond_bad_content_type(req, true);
        return;
    }
    if (u->kind == UPLOAD_JSON) {
        if (u->failed) {
            srv_respond_error(req, &u->err);
            return;
        }
        /* validated on a worker: data: URLs to decode, remote images to fetch */
        srv_start_edit_json_job(srv, req, &u->json);
        return;
    }
    struct isd_form *form = finish_form(req, u);
    if (!form)
        return;
    struct isd_images_request ireq;
    if (isd_api_parse_edit_form(form, &srv->resolver, isd_http_request_id(req), &ireq, &err) < 0) {
        srv_respond_error(req, &err);
        return;
    }
    srv_start_images_job(srv, req, &ireq);
}

void srv_handle_variations(struct isd_http_request *req, void *ctx)
{
    struct server *srv = ctx;
    struct upload *u = upload_of(req, srv);
    struct isd_error err;
    if (!u) {
        isd_err_set(&err, ISD_E_NOMEM, NULL, "The server is out of memory.");
        srv_respond_error(req, &err);
        return;
    }
    if (u->kind != UPLOAD_MULTIPART) {
        respond_bad_content_type(req, false);
        return;
    }
    struct isd_form *form = finish_form(req, u);
    if (!form)
        return;
    struct isd_images_request ireq;
    if (isd_api_parse_variation_form(form, &srv->resolver, isd_http_request_id(req), &ireq, &err) <
        0) {
        srv_respond_error(req, &err);
        return;
    }
    srv_start_images_job(srv, req, &ireq);
}
