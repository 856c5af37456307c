/*
 * Route handlers. They run on the connection thread and stay quick: parse and validate, then
 * hand slow work to a job.
 */
#include "server/server_int.h"

#include "sign/sign.h"
#include "sys/sys.h"
#include "text/text.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool srv_content_type_is(struct isd_http_request *req, const char *want)
{
    const char *ct = isd_http_header(req, "content-type");
    if (!ct)
        return false;
    const char *semi = strchr(ct, ';');
    struct isd_str media = {ct, semi ? (size_t)(semi - ct) : strlen(ct)};
    return isd_str_ieq(isd_str_trim(media), want);
}

static void respond_bad_content_type(struct isd_http_request *req, const char *accepted)
{
    const char *ct = isd_http_header(req, "content-type");
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

void srv_handle_generations(struct isd_http_request *req, void *ctx)
{
    struct server *srv = ctx;
    if (!srv_content_type_is(req, "application/json")) {
        respond_bad_content_type(req, "'application/json'");
        return;
    }
    size_t len;
    const char *body = isd_http_body(req, &len);
    struct isd_images_request ireq;
    struct isd_error err;
    if (isd_api_parse_generation(body, len, &srv->resolver, &ireq, &err) < 0) {
        srv_note_model(req, &ireq);
        srv_respond_error(req, &err);
        return;
    }
    srv_note_request(req, &ireq);
    srv_start_images_job(srv, req, &ireq);
}

static void model_info(const struct isd_model *m, struct isd_api_model_info *out)
{
    out->id = m->name;
    out->created = m->created;
    out->owned_by = m->owned_by;
}

void srv_handle_models(struct isd_http_request *req, void *ctx)
{
    struct server *srv = ctx;
    size_t n = isd_catalogue_count(srv->catalogue);
    struct isd_api_model_info *infos = calloc(n ? n : 1, sizeof *infos);
    struct isd_buf body;
    isd_buf_init(&body, 16 << 20);
    int rc = -ISD_E_NOMEM;
    if (infos) {
        for (size_t i = 0; i < n; i++)
            model_info(isd_catalogue_at(srv->catalogue, i), &infos[i]);
        rc = isd_api_write_model_list(&body, infos, n);
    }
    free(infos);
    if (rc < 0) {
        isd_buf_release(&body);
        struct isd_error e;
        isd_err_set(&e, ISD_E_NOMEM, NULL, "The server is out of memory.");
        srv_respond_error(req, &e);
        return;
    }
    srv_respond_json(req, 200, &body);
}

void srv_handle_model(struct isd_http_request *req, void *ctx)
{
    struct server *srv = ctx;
    const char *id = isd_http_path_rest(req);
    const struct isd_model *m = isd_catalogue_find(srv->catalogue, id, strlen(id));
    struct isd_error e;
    if (!m) {
        char quoted[260];
        isd_err_quote(quoted, id, strlen(id), 256);
        isd_err_set(&e, ISD_E_MODEL_UNKNOWN, NULL,
                    "The model `%s` does not exist or you do not have access to it.", quoted);
        srv_respond_error(req, &e);
        return;
    }
    struct isd_api_model_info info;
    model_info(m, &info);
    struct isd_buf body;
    isd_buf_init(&body, 1 << 20);
    if (isd_api_write_model(&body, &info) < 0) {
        isd_buf_release(&body);
        isd_err_set(&e, ISD_E_NOMEM, NULL, "The server is out of memory.");
        srv_respond_error(req, &e);
        return;
    }
    srv_respond_json(req, 200, &body);
}

void srv_handle_health(struct isd_http_request *req, void *ctx)
{
    struct server *srv = ctx;
    struct isd_jobs_stats st;
    isd_jobs_stats(srv->jobs, &st);
    json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I}", "status", "ok",
                          "workers", st.workers, "busy", st.busy, "queued", st.queued, "submitted",
                          (json_int_t)st.submitted, "completed", (json_int_t)st.completed,
                          "cancelled", (json_int_t)st.cancelled, "rejected_busy",
                          (json_int_t)st.rejected_busy, "timed_out", (json_int_t)st.timed_out);
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!text) {
        struct isd_error e;
        isd_err_set(&e, ISD_E_NOMEM, NULL, "The server is out of memory.");
        srv_respond_error(req, &e);
        return;
    }
    srv_respond(req, 200, "application/json", text, strlen(text), NULL, 0);
}

static const char *mime_for(const char *file)
{
    const char *dot = strrchr(file, '.');
    if (dot && strcmp(dot, ".jpg") == 0)
        return "image/jpeg";
    if (dot && strcmp(dot, ".webp") == 0)
        return "image/webp";
    return "image/png";
}

void srv_handle_image_file(struct isd_http_request *req, void *ctx)
{
    struct server *srv = ctx;
    const char *file = isd_http_path_rest(req);
    const char *exp = isd_http_query(req, "expires");
    const char *sig = isd_http_query(req, "sig");
    struct isd_error e;
    char *end = NULL;
    errno = 0;
    long long expires = exp ? strtoll(exp, &end, 10) : 0;
    bool well_formed = exp && sig && *exp && end && *end == '\0' && errno == 0;
    enum isd_sign_result v = well_formed
                                 ? isd_sign_check(isd_store_secret(srv->store), file, expires, sig,
                                                  strlen(sig), isd_time_unix())
                                 : ISD_SIGN_BAD;
    if (v == ISD_SIGN_BAD) {
        isd_err_set(&e, ISD_E_FORBIDDEN, NULL,
                    "This image link is invalid: its signature does not match.");
        srv_respond_error(req, &e);
        return;
    }
    if (v == ISD_SIGN_EXPIRED) {
        isd_err_set(&e, ISD_E_NOT_FOUND, NULL, "This image link has expired.");
        srv_respond_error(req, &e);
        return;
    }
    char path[4608];
    int fd = -1;
    struct stat st;
    if (isd_store_image_path(srv->store, file, path, sizeof path) == 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        isd_err_set(&e, ISD_E_NOT_FOUND, NULL, "The image behind this link no longer exists.");
        srv_respond_error(req, &e);
        return;
    }
    char cache[64];
    long long left = expires - isd_time_unix();
    snprintf(cache, sizeof cache, "private, max-age=%lld", left > 0 ? left : 0);
    struct isd_http_header h[] = {{"cache-control", cache}};
    isd_http_respond_file(req, 200, mime_for(file), fd, (uint64_t)st.st_size, h, 1);
}

void srv_note_request(struct isd_http_request *req, const struct isd_images_request *r)
{
    struct srv_request *sr = srv_request_of(req);
    if (!sr)
        return;
    snprintf(sr->model, sizeof sr->model, "%s", r->model);
    sr->n = r->n;
    snprintf(sr->size, sizeof sr->size, "%s", r->size);
    sr->quality = r->quality;
    sr->output_format = isd_format_name(r->output_format);
}

void srv_note_model(struct isd_http_request *req, const struct isd_images_request *r)
{
    struct srv_request *sr = srv_request_of(req);
    if (sr && r->profile)
        snprintf(sr->model, sizeof sr->model, "%s", r->model);
}
