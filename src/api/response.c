/*
 * Response bodies as OpenAI serves them (§5.2, §7.1): pretty-printed with a 2-space indent,
 * keys in the recorded order.
 */
#include "api/api_int.h"

static void write_usage(struct jw *w, const struct isd_images_request *r, const struct isd_usage *u)
{
    long input = u->input_text_tokens + u->input_image_tokens;
    jw_key(w, "usage");
    jw_object_begin(w);
    jw_key(w, "input_tokens");
    jw_int(w, input);
    jw_key(w, "input_tokens_details");
    jw_object_begin(w);
    jw_key(w, "image_tokens");
    jw_int(w, u->input_image_tokens);
    jw_key(w, "text_tokens");
    jw_int(w, u->input_text_tokens);
    jw_object_end(w);
    jw_key(w, "output_tokens");
    jw_int(w, u->output_image_tokens);
    if (r->profile->output_tokens_details) {
        jw_key(w, "output_tokens_details");
        jw_object_begin(w);
        jw_key(w, "image_tokens");
        jw_int(w, u->output_image_tokens);
        jw_key(w, "text_tokens");
        jw_int(w, 0);
        jw_object_end(w);
    }
    jw_key(w, "total_tokens");
    jw_int(w, input + u->output_image_tokens);
    jw_object_end(w);
}

static void write_image(struct jw *w, const struct isd_images_request *r,
                        const struct isd_api_image *im)
{
    jw_object_begin(w);
    if (!r->profile->gpt && r->response_format == ISD_RF_URL) {
        jw_key(w, "url");
        jw_string(w, im->url ? im->url : "");
    } else {
        jw_key(w, "b64_json");
        jw_base64(w, im->bytes, im->n_bytes);
    }
    if (im->revised_prompt) {
        jw_key(w, "revised_prompt");
        jw_string(w, im->revised_prompt);
    }
    jw_object_end(w);
}

int isd_api_write_images(struct isd_buf *out, const struct isd_images_request *r, int64_t created,
                         const struct isd_api_image *images, int n, const struct isd_usage *usage)
{
    struct jw w;
    jw_init(&w, out, true);
    /* the base64 payloads dominate: reserve once instead of growing through copies */
    size_t need = 1024;
    for (int i = 0; i < n; i++)
        need += (images[i].n_bytes + 2) / 3 * 4 + (images[i].url ? 2048 : 0) + 64;
    if (isd_buf_reserve(out, need) < 0)
        return -ISD_E_TOO_LARGE;
    jw_object_begin(&w);
    jw_key(&w, "created");
    jw_int(&w, created);
    bool gpt = r->profile->gpt;
    if (gpt) {
        jw_key(&w, "background");
        jw_string(&w, r->transparent ? "transparent" : "opaque");
    }
    jw_key(&w, "data");
    jw_array_begin(&w);
    for (int i = 0; i < n; i++)
        write_image(&w, r, &images[i]);
    jw_array_end(&w);
    if (gpt) {
        jw_key(&w, "output_format");
        jw_string(&w, isd_format_name(r->output_format));
        jw_key(&w, "quality");
        jw_string(&w, r->quality);
        jw_key(&w, "size");
        jw_string(&w, r->size);
        if (usage)
            write_usage(&w, r, usage);
    }
    jw_object_end(&w);
    return w.rc;
}

static void write_error_object(struct jw *w, const struct isd_error *e)
{
    jw_object_begin(w);
    jw_key(w, "message");
    jw_string(w, e->message);
    jw_key(w, "type");
    jw_string(w, isd_err_type(e->id));
    jw_key(w, "param");
    if (e->param[0])
        jw_string(w, e->param);
    else
        jw_null(w);
    jw_key(w, "code");
    const char *code = isd_err_code(e->id);
    if (code)
        jw_string(w, code);
    else
        jw_null(w);
    jw_object_end(w);
}

int isd_api_write_error(struct isd_buf *out, const struct isd_error *e)
{
    struct jw w;
    jw_init(&w, out, true);
    jw_object_begin(&w);
    jw_key(&w, "error");
    write_error_object(&w, e);
    jw_object_end(&w);
    return w.rc;
}

static const char *event_type(const struct isd_images_request *r, bool completed)
{
    if (r->endpoint == ISD_EP_EDITS)
        return completed ? "image_edit.completed" : "image_edit.partial_image";
    return completed ? "image_generation.completed" : "image_generation.partial_image";
}

/* "event: <type>\ndata: " then the common fields; the caller closes the object. */
static void begin_event(struct jw *w, const struct isd_images_request *r, bool completed,
                        int64_t created_at, const void *bytes, size_t n)
{
    const char *type = event_type(r, completed);
    if (isd_buf_reserve(w->out, (n + 2) / 3 * 4 + 1024) < 0) {
        w->rc = -ISD_E_TOO_LARGE;
        return;
    }
    if (w->rc == 0)
        w->rc = isd_buf_printf(w->out, "event: %s\ndata: ", type);
    jw_object_begin(w);
    jw_key(w, "type");
    jw_string(w, type);
    jw_key(w, "b64_json");
    jw_base64(w, bytes, n);
    jw_key(w, "created_at");
    jw_int(w, created_at);
    jw_key(w, "size");
    jw_string(w, r->size);
    jw_key(w, "quality");
    jw_string(w, r->quality);
    jw_key(w, "background");
    jw_string(w, r->transparent ? "transparent" : "opaque");
    jw_key(w, "output_format");
    jw_string(w, isd_format_name(r->output_format));
}

static int end_event(struct jw *w)
{
    jw_object_end(w);
    if (w->rc == 0)
        w->rc = isd_buf_append(w->out, "\n\n", 2);
    return w->rc;
}

int isd_api_write_partial_event(struct isd_buf *out, const struct isd_images_request *r,
                                int64_t created_at, const void *bytes, size_t n, int partial_index)
{
    struct jw w;
    jw_init(&w, out, false);
    begin_event(&w, r, false, created_at, bytes, n);
    jw_key(&w, "partial_image_index");
    jw_int(&w, partial_index);
    return end_event(&w);
}

int isd_api_write_completed_event(struct isd_buf *out, const struct isd_images_request *r,
                                  int64_t created_at, const void *bytes, size_t n,
                                  const struct isd_usage *u)
{
    struct jw w;
    jw_init(&w, out, false);
    begin_event(&w, r, true, created_at, bytes, n);
    long input = u->input_text_tokens + u->input_image_tokens;
    jw_key(&w, "usage");
    jw_object_begin(&w);
    jw_key(&w, "total_tokens");
    jw_int(&w, input + u->output_image_tokens);
    jw_key(&w, "input_tokens");
    jw_int(&w, input);
    jw_key(&w, "output_tokens");
    jw_int(&w, u->output_image_tokens);
    jw_key(&w, "input_tokens_details");
    jw_object_begin(&w);
    jw_key(&w, "text_tokens");
    jw_int(&w, u->input_text_tokens);
    jw_key(&w, "image_tokens");
    jw_int(&w, u->input_image_tokens);
    jw_object_end(&w);
    jw_object_end(&w);
    return end_event(&w);
}

int isd_api_write_error_event(struct isd_buf *out, const struct isd_error *e)
{
    struct jw w;
    jw_init(&w, out, false);
    if (isd_buf_append_str(out, "event: error\ndata: ") < 0)
        return -ISD_E_NOMEM;
    jw_object_begin(&w);
    jw_key(&w, "type");
    jw_string(&w, "error");
    jw_key(&w, "error");
    write_error_object(&w, e);
    jw_object_end(&w);
    if (w.rc == 0)
        w.rc = isd_buf_append(out, "\n\n", 2);
    return w.rc;
}

static void write_model(struct jw *w, const struct isd_api_model_info *m)
{
    jw_object_begin(w);
    jw_key(w, "id");
    jw_string(w, m->id);
    jw_key(w, "object");
    jw_string(w, "model");
    jw_key(w, "created");
    jw_int(w, m->created);
    jw_key(w, "owned_by");
    jw_string(w, m->owned_by);
    jw_object_end(w);
}

int isd_api_write_model(struct isd_buf *out, const struct isd_api_model_info *m)
{
    struct jw w;
    jw_init(&w, out, true);
    write_model(&w, m);
    return w.rc;
}

int isd_api_write_model_list(struct isd_buf *out, const struct isd_api_model_info *models, size_t n)
{
    struct jw w;
    jw_init(&w, out, true);
    jw_object_begin(&w);
    jw_key(&w, "object");
    jw_string(&w, "list");
    jw_key(&w, "data");
    jw_array_begin(&w);
    for (size_t i = 0; i < n; i++)
        write_model(&w, &models[i]);
    jw_array_end(&w);
    jw_object_end(&w);
    return w.rc;
}
