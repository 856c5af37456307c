/*
 * /v1/images/edits (multipart §3.2 and JSON §3.3) and /v1/images/variations (§3.4).
 * Order: unknown keys → model → parameters the model does not take → prompt → images (and the
 * mask) → n → the options → extension fields (local models) → combinations, then `size: auto`
 * from the first image. The extension fields (strength included) are known keys only when the
 * model, as named or by default, takes them (api_extensions_allowed).
 * JSON edits check image contents (type, size, header) after the parameters, because remote
 * images are fetched only once the request is otherwise valid (isd_api_check_inputs).
 */
#include "api/api_int.h"

#include "multipart/multipart.h"
#include "text/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB            (1024L * 1024L)
#define IMAGE_URL_MAX 20971520 /* ImageRefParam.image_url maxLength */

static const char *const edit_form_fields[] = {"image",
                                               "image[]",
                                               "mask",
                                               "prompt",
                                               "model",
                                               "n",
                                               "size",
                                               "quality",
                                               "response_format",
                                               "output_format",
                                               "output_compression",
                                               "background",
                                               "input_fidelity",
                                               "stream",
                                               "partial_images",
                                               "user",
                                               NULL};

static const char *const edit_json_keys[] = {"images",
                                             "prompt",
                                             "mask",
                                             "model",
                                             "n",
                                             "quality",
                                             "input_fidelity",
                                             "size",
                                             "user",
                                             "output_format",
                                             "output_compression",
                                             "moderation",
                                             "background",
                                             "stream",
                                             "partial_images",
                                             NULL};

static const char *const variation_fields[] = {"image", "model", "n", "response_format",
                                               "size",  "user",  NULL};

/* Edit parameters dall-e-2 does not take. */
static const char *const gpt_edit_params[] = {"output_format",  "output_compression", "background",
                                              "input_fidelity", "moderation",         NULL};

static const char *const gpt_mimes[] = {"image/jpeg", "image/png", "image/webp", NULL};
static const char *const png_mimes[] = {"image/png", NULL};

/* ---- shared pieces ---- */

/* The lower-case media type essence of a Content-Type value ("image/png; x=y" → "image/png"). */
static char *media_type(const char *ct, size_t len)
{
    size_t n = 0;
    while (n < len && ct[n] != ';')
        n++;
    struct isd_str s = isd_str_trim((struct isd_str){ct, n});
    char *out = malloc(s.n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[s.n] = '\0';
    return out;
}

static int check_edit_model(struct isd_error *e, const struct isd_images_request *r)
{
    if (!r->profile->edits)
        return isd_err_set(e, ISD_E_INVALID_VALUE, "model",
                           "The model '%s' does not support image edits.", r->model);
    return 0;
}

/* Parameters edits take in general but not this model. */
static int check_edit_profile_params(struct params *p, const struct isd_profile *prof)
{
    if (prof->gpt) {
        if (api_param(p, "response_format").kind != PV_ABSENT)
            return isd_api_err_unknown_param(p->err, "response_format");
        return 0;
    }
    for (const char *const *n = gpt_edit_params; *n; n++) {
        enum pv_kind k = api_param(p, *n).kind;
        if (k != PV_ABSENT && k != PV_NULL)
            return isd_api_err_unknown_param(p->err, *n);
    }
    return 0;
}

static bool list_has(const char *const *list, const char *s)
{
    return s && api_in_list(s, list);
}

static int err_mimetype(struct isd_error *e, const char *field, const char *got,
                        const char *const *supported)
{
    char list[256], q[260];
    api_quote_list(list, sizeof list, supported, "and");
    isd_err_quote(q, got, strlen(got), 200);
    return isd_err_set(e, ISD_E_UNSUPPORTED_MIMETYPE, field,
                       "Invalid file '%s': unsupported mimetype ('%s'). Supported file formats "
                       "are %s.",
                       field, q, list);
}

static int err_undecodable(struct isd_error *e, int index, const char *request_id)
{
    return isd_err_set(e, ISD_E_INVALID_IMAGE, NULL,
                       "Invalid image file or mode for image %d, please check your image file. If "
                       "you believe this is an error, contact us at help.openai.com and include "
                       "the request ID %s.",
                       index + 1, request_id);
}

/* Type, size and header of input i (§3.2, §4.1 notes). */
static int check_image(struct isd_images_request *r, int i, bool variation, const char *request_id,
                       struct isd_error *e)
{
    const struct isd_profile *prof = r->profile;
    struct isd_api_input *in = &r->inputs[i];
    bool dalle = !prof->gpt;
    const char *const *mimes = dalle ? png_mimes : gpt_mimes;
    const char *ct = in->content_type ? in->content_type : "application/octet-stream";
    if (!list_has(mimes, ct))
        return err_mimetype(e, in->field, ct, mimes);
    if ((long)in->bytes.len >= prof->max_image_bytes)
        return isd_err_set(e, ISD_E_INVALID_VALUE, in->field,
                           dalle ? "Uploaded image must be a PNG and less than 4 MB."
                                 : "Uploaded image must be less than 50 MB.");
    struct isd_error probe_err;
    if (isd_codec_probe(in->bytes.data ? in->bytes.data : "", in->bytes.len, &in->info,
                        &probe_err) < 0)
        return err_undecodable(e, i, request_id);
    const struct isd_image_info *info = &in->info;
    if (info->width > ISD_IMAGE_MAX_SIDE || info->height > ISD_IMAGE_MAX_SIDE ||
        (uint64_t)info->width * (uint64_t)info->height > ISD_IMAGE_MAX_PIXELS)
        return isd_err_set(e, ISD_E_INVALID_VALUE, in->field,
                           "Image %d is too large: %dx%d pixels. Images may have at most %u "
                           "pixels and %d per side.",
                           i + 1, info->width, info->height, ISD_IMAGE_MAX_PIXELS,
                           ISD_IMAGE_MAX_SIDE);
    if (!dalle)
        return 0;
    if (info->format != ISD_FMT_PNG)
        return isd_err_set(e, ISD_E_INVALID_VALUE, in->field,
                           "Uploaded image must be a PNG and less than 4 MB.");
    if (info->width != info->height)
        return isd_err_set(e, ISD_E_INVALID_VALUE, in->field,
                           "Invalid input image - image must be square, got %dx%d.", info->width,
                           info->height);
    if (!variation && strcmp(info->mode, "RGBA") != 0 && strcmp(info->mode, "LA") != 0 &&
        strcmp(info->mode, "L") != 0)
        return isd_err_set(e, ISD_E_INVALID_VALUE, in->field,
                           "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got %s.",
                           info->mode);
    return 0;
}

static int check_mask(struct isd_images_request *r, struct isd_error *e)
{
    struct isd_api_input *m = &r->mask;
    const char *ct = m->content_type ? m->content_type : "application/octet-stream";
    if (!list_has(png_mimes, ct))
        return err_mimetype(e, "mask", ct, png_mimes);
    if ((long)m->bytes.len >= ISD_API_MASK_MAX_BYTES)
        return isd_err_set(e, ISD_E_INVALID_MASK, "mask",
                           "Uploaded mask must be a PNG and less than 4 MB.");
    struct isd_error probe_err;
    if (isd_codec_probe(m->bytes.data ? m->bytes.data : "", m->bytes.len, &m->info, &probe_err) <
            0 ||
        m->info.format != ISD_FMT_PNG)
        return isd_err_set(e, ISD_E_INVALID_MASK, "mask",
                           "Invalid mask image format - mask image could not be read as a PNG");
    const struct isd_image_info *first = &r->inputs[0].info;
    if (m->info.width != first->width || m->info.height != first->height)
        return isd_err_set(e, ISD_E_INVALID_MASK, "mask",
                           "Invalid mask image format - mask size does not match image size");
    if (!m->info.has_alpha)
        return isd_err_set(e, ISD_E_INVALID_MASK, "mask",
                           "Invalid mask image format - mask image missing alpha channel");
    return 0;
}

static int check_contents(struct isd_images_request *r, bool variation, const char *request_id,
                          struct isd_error *e)
{
    for (int i = 0; i < r->n_inputs; i++) {
        int rc = check_image(r, i, variation, request_id, e);
        if (rc < 0)
            return rc;
    }
    if (r->has_mask) {
        int rc = check_mask(r, e);
        if (rc < 0)
            return rc;
    }
    r->inputs_checked = true;
    return 0;
}

/* `size: auto` on a GPT edit: the allowed size nearest the first image's aspect ratio; for
 * gpt-image-2, that aspect at about 1024x1024 pixels, multiples of 16, within §4.2. */
static void resolve_size_from_input(struct isd_images_request *r)
{
    if (!r->size_from_input || r->n_inputs == 0)
        return;
    double aspect = (double)r->inputs[0].info.width / (double)r->inputs[0].info.height;
    long w, h;
    if (r->profile->size_rule == ISD_SIZES_FREE) {
        if (aspect > 3.0)
            aspect = 3.0;
        if (aspect < 1.0 / 3.0)
            aspect = 1.0 / 3.0;
        w = lround(sqrt(1048576.0 * aspect) / 16.0) * 16;
        h = lround(sqrt(1048576.0 / aspect) / 16.0) * 16;
        while (w * h < 655360)
            w += 16, h += 16;
        if (w > 3 * h)
            w = 3 * h;
        if (h > 3 * w)
            h = 3 * w;
    } else {
        static const long sizes[3][2] = {{1024, 1024}, {1536, 1024}, {1024, 1536}};
        int best = 0;
        double best_d = INFINITY;
        for (int i = 0; i < 3; i++) {
            double d = fabs(log(aspect) - log((double)sizes[i][0] / (double)sizes[i][1]));
            if (d < best_d)
                best_d = d, best = i;
        }
        w = sizes[best][0];
        h = sizes[best][1];
    }
    r->width = (int)w;
    r->height = (int)h;
    snprintf(r->size, sizeof r->size, "%ldx%ld", w, h);
}

int isd_api_check_inputs(struct isd_images_request *r, const char *request_id,
                         struct isd_error *err)
{
    int rc = check_contents(r, r->endpoint == ISD_EP_VARIATIONS, request_id, err);
    if (rc == 0)
        resolve_size_from_input(r);
    return rc;
}

long isd_api_input_image_tokens(const struct isd_images_request *r)
{
    if (r->profile->usage == ISD_USAGE_NONE)
        return 0;
    bool high = strcmp(r->input_fidelity, "high") == 0;
    long tokens = 0;
    for (int i = 0; i < r->n_inputs; i++)
        tokens +=
            isd_api_image_input_tokens(r->inputs[i].info.width, r->inputs[i].info.height, high);
    return tokens;
}

/* ---- multipart forms ---- */

static int check_form_fields(struct params *p, const char *const *known)
{
    for (size_t i = 0; i < p->form->n_fields; i++) {
        const char *name = p->form->fields[i].name;
        if (api_in_list(name, known) || (p->extensions && api_in_list(name, api_ext_edit_params)))
            continue;
        if (strcmp(name, "images") == 0)
            return isd_err_set(p->err, ISD_E_UNKNOWN_PARAM, "images",
                               "Unknown parameter: 'images'. For multipart/form-data use 'image' "
                               "or 'image[]'.");
        return isd_api_err_unknown_param(p->err, name);
    }
    return 0;
}

static int move_file(struct isd_form_field *f, struct isd_api_input *in, const char *field,
                     struct isd_error *e)
{
    snprintf(in->field, sizeof in->field, "%s", field);
    if (f->content_type) {
        in->content_type = media_type(f->content_type, strlen(f->content_type));
        if (!in->content_type)
            return isd_err_set(e, ISD_E_NOMEM, NULL, "out of memory");
    }
    in->bytes = f->value;
    isd_buf_init(&f->value, 0);
    return 0;
}

/* image / image[] files (and the mask) of a form, moved into the request. */
static int take_form_images(struct params *p, struct isd_images_request *r, bool allow_mask)
{
    const struct isd_profile *prof = r->profile;
    int count = 0;
    for (size_t i = 0; i < p->form->n_fields; i++) {
        struct isd_form_field *f = &p->form->fields[i];
        bool image = strcmp(f->name, "image") == 0 || strcmp(f->name, "image[]") == 0;
        if (image) {
            char param[32];
            snprintf(param, sizeof param, "image[%d]", count);
            if (!f->is_file)
                return isd_err_set(p->err, ISD_E_INVALID_TYPE, param,
                                   "Invalid type for '%s': expected a file, but got a string "
                                   "instead.",
                                   param);
            if (count < ISD_API_MAX_INPUTS && !f->dropped) {
                if (f->overflow) /* over the largest allowed file: refuse on its true size */
                    return isd_err_set(p->err, ISD_E_INVALID_VALUE, "image",
                                       prof->gpt
                                           ? "Uploaded image must be less than 50 MB."
                                           : "Uploaded image must be a PNG and less than 4 MB.");
                int rc = move_file(f, &r->inputs[r->n_inputs], "image", p->err);
                r->n_inputs++;
                if (rc < 0)
                    return rc;
            }
            count++;
        } else if (allow_mask && strcmp(f->name, "mask") == 0 && !r->has_mask) {
            if (!f->is_file)
                return isd_err_set(p->err, ISD_E_INVALID_TYPE, "mask",
                                   "Invalid type for 'mask': expected a file, but got a string "
                                   "instead.");
            if (f->overflow || f->dropped)
                return isd_err_set(p->err, ISD_E_INVALID_MASK, "mask",
                                   "Uploaded mask must be a PNG and less than 4 MB.");
            r->has_mask = true;
            int rc = move_file(f, &r->mask, "mask", p->err);
            if (rc < 0)
                return rc;
        }
    }
    if (count == 0)
        return isd_api_err_missing_param(p->err, "image");
    if (count > prof->max_edit_images)
        return isd_err_set(p->err, ISD_E_ARRAY_TOO_LONG, "image",
                           "Invalid 'image': array too long. Expected an array with maximum "
                           "length %d, but got an array with length %d instead.",
                           prof->max_edit_images, count);
    return 0;
}

int isd_api_parse_edit_form(struct isd_form *form, const struct isd_api_resolver *res,
                            const char *request_id, struct isd_images_request *out,
                            struct isd_error *err)
{
    api_request_defaults(out, ISD_EP_EDITS);
    struct params p = {.form = form, .err = err};
    p.extensions = api_extensions_allowed(&p, res, res->default_edit_model);
    int rc;
    if ((rc = check_form_fields(&p, edit_form_fields)) ||
        (rc = api_resolve_model(&p, res, res->default_edit_model, out)) ||
        (rc = check_edit_model(err, out)) || (rc = check_edit_profile_params(&p, out->profile)) ||
        (rc = api_get_prompt(&p, out->profile, out)) || (rc = take_form_images(&p, out, true)) ||
        (rc = check_contents(out, false, request_id, err)) ||
        (rc = api_get_n(&p, out->profile, out)) || (rc = api_get_options(&p, out->profile, out)) ||
        (rc = api_get_extensions(&p, out->profile, out)) ||
        (rc = api_check_combinations(&p, out->profile, out)))
        goto fail;
    resolve_size_from_input(out);
    return 0;
fail:
    isd_images_request_release(out);
    return rc;
}

int isd_api_parse_variation_form(struct isd_form *form, const struct isd_api_resolver *res,
                                 const char *request_id, struct isd_images_request *out,
                                 struct isd_error *err)
{
    static const char *const only_dalle2[] = {"dall-e-2", NULL};
    api_request_defaults(out, ISD_EP_VARIATIONS);
    struct params p = {.form = form, .err = err};
    p.extensions = api_extensions_allowed(&p, res, "dall-e-2");
    int rc;
    if ((rc = check_form_fields(&p, variation_fields)) ||
        (rc = api_resolve_model(&p, res, "dall-e-2", out)))
        goto fail;
    if (!out->profile->variations) {
        rc = api_err_supported(err, ISD_E_INVALID_VALUE, "model", out->model, strlen(out->model),
                               only_dalle2);
        goto fail;
    }
    if ((rc = take_form_images(&p, out, false)) ||
        (rc = check_contents(out, true, request_id, err)) ||
        (rc = api_get_n(&p, out->profile, out)) || (rc = api_get_options(&p, out->profile, out)) ||
        (rc = api_get_extensions(&p, out->profile, out)) ||
        (rc = api_check_combinations(&p, out->profile, out)))
        goto fail;
    return 0;
fail:
    isd_images_request_release(out);
    return rc;
}

/* ---- JSON edits ---- */

static int check_json_keys(struct params *p)
{
    const char *key;
    json_t *v;
    json_object_foreach(p->root, key, v)
    {
        if (strcmp(key, "image") == 0 || strcmp(key, "image[]") == 0)
            return isd_err_set(p->err, ISD_E_INVALID_VALUE, key,
                               "Unknown parameter: '%s'. For application/json on "
                               "/v1/images/edits, use 'images' (array).",
                               key);
        if (!api_in_list(key, edit_json_keys) &&
            !(p->extensions && api_in_list(key, api_ext_edit_params)))
            return isd_api_err_unknown_param(p->err, key);
    }
    return 0;
}

/* "data:image/png;base64,...." → media type and decoded bytes. */
static int decode_data_url(const char *url, size_t len, struct isd_api_input *in, const char *param,
                           long max_bytes, struct isd_error *e)
{
    const char *comma = memchr(url, ',', len);
    const char *meta = url + 5;
    size_t meta_len = comma ? (size_t)(comma - meta) : 0;
    if (!comma || meta_len < 7 || memcmp(comma - 7, ";base64", 7) != 0)
        return isd_err_set(e, ISD_E_INVALID_VALUE, param,
                           "Invalid '%s': a data URL must be base64-encoded "
                           "(data:image/png;base64,...).",
                           param);
    in->content_type = media_type(meta, meta_len - 7);
    if (!in->content_type)
        return isd_err_set(e, ISD_E_NOMEM, NULL, "out of memory");
    if (in->content_type[0] == '\0') {
        free(in->content_type);
        in->content_type = strdup("text/plain"); /* RFC 2397's default */
    }
    const char *data = comma + 1;
    size_t n = len - (size_t)(data - url);
    isd_buf_init(&in->bytes, (size_t)max_bytes);
    if (isd_base64_decode(&in->bytes, data, n) < 0)
        return isd_err_set(e, ISD_E_INVALID_VALUE, param,
                           "Invalid '%s': the data URL is not valid base64 or the image is larger "
                           "than %ld bytes.",
                           param, max_bytes - 1);
    return 0;
}

static bool starts_with_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && isd_str_ieq((struct isd_str){s, n}, prefix);
}

/* One ImageRefParam ({image_url} or {file_id}, exactly one, nothing else). */
static int image_ref(struct params *p, const json_t *obj, const char *param,
                     const struct isd_api_resolver *res, long max_bytes, struct isd_api_input *in)
{
    char sub[80];
    if (!json_is_object(obj)) {
        struct pval v = {.kind = PV_JSON, .json = obj};
        return api_err_type(p, param, "an object", v);
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        if (strcmp(key, "image_url") != 0 && strcmp(key, "file_id") != 0) {
            snprintf(sub, sizeof sub, "%s.%.40s", param, key);
            return isd_api_err_unknown_param(p->err, sub);
        }
    }
    json_t *url = json_object_get(obj, "image_url");
    json_t *file = json_object_get(obj, "file_id");
    if ((url != NULL) == (file != NULL))
        return isd_err_set(p->err, ISD_E_INVALID_VALUE, param,
                           "Invalid '%s': expected exactly one of 'image_url' or 'file_id'.",
                           param);
    if (file) {
        snprintf(sub, sizeof sub, "%s.file_id", param);
        return isd_err_set(p->err, ISD_E_UNSUPPORTED, sub,
                           "Invalid '%s': file IDs are not supported by this server. Send the "
                           "image as a base64 data URL in 'image_url', or upload it with "
                           "multipart/form-data.",
                           sub);
    }
    snprintf(sub, sizeof sub, "%s.image_url", param);
    snprintf(in->field, sizeof in->field, "%s", param);
    if (!json_is_string(url)) {
        struct pval v = {.kind = json_is_null(url) ? PV_NULL : PV_JSON, .json = url};
        return api_err_type(p, sub, "a string", v);
    }
    const char *s = json_string_value(url);
    size_t len = json_string_length(url);
    if (len > IMAGE_URL_MAX)
        return isd_err_set(p->err, ISD_E_STRING_TOO_LONG, sub,
                           "Invalid '%s': string too long. Expected a string with maximum length "
                           "%d, but got a string with length %zu instead.",
                           sub, IMAGE_URL_MAX, len);
    if (starts_with_ci(s, len, "data:"))
        return decode_data_url(s, len, in, sub, max_bytes, p->err);
    if (starts_with_ci(s, len, "http://") || starts_with_ci(s, len, "https://")) {
        if (!res->remote_images)
            return isd_err_set(p->err, ISD_E_UNSUPPORTED, sub,
                               "Invalid '%s': this server does not fetch remote images. Send the "
                               "image as a base64 data URL (data:image/png;base64,...).",
                               sub);
        in->url = strndup(s, len);
        isd_buf_init(&in->bytes, (size_t)max_bytes);
        return in->url ? 0 : isd_err_set(p->err, ISD_E_NOMEM, NULL, "out of memory");
    }
    return isd_err_set(p->err, ISD_E_INVALID_VALUE, sub,
                       "Invalid '%s': expected a base64 data URL (data:image/png;base64,...) or "
                       "an http(s) URL.",
                       sub);
}

static int json_images(struct params *p, const struct isd_api_resolver *res,
                       struct isd_images_request *r)
{
    json_t *arr = json_object_get(p->root, "images");
    if (!arr || json_is_null(arr))
        return isd_api_err_missing_param(p->err, "images");
    if (!json_is_array(arr)) {
        struct pval v = {.kind = PV_JSON, .json = arr};
        return api_err_type(p, "images", "an array of objects", v);
    }
    size_t n = json_array_size(arr);
    if (n == 0)
        return isd_err_set(p->err, ISD_E_EMPTY_ARRAY, "images",
                           "Invalid 'images': empty array. Expected an array with minimum length "
                           "1, but got an empty array instead.");
    if (n > (size_t)r->profile->max_edit_images)
        return isd_err_set(p->err, ISD_E_ARRAY_TOO_LONG, "images",
                           "Invalid 'images': array too long. Expected an array with maximum "
                           "length %d, but got an array with length %zu instead.",
                           r->profile->max_edit_images, n);
    for (size_t i = 0; i < n; i++) {
        char param[40];
        snprintf(param, sizeof param, "images[%zu]", i);
        int rc = image_ref(p, json_array_get(arr, i), param, res, r->profile->max_image_bytes + 1,
                           &r->inputs[r->n_inputs]);
        r->n_inputs++;
        if (rc < 0)
            return rc;
    }
    json_t *mask = json_object_get(p->root, "mask");
    if (mask && !json_is_null(mask)) {
        r->has_mask = true;
        int rc = image_ref(p, mask, "mask", res, ISD_API_MASK_MAX_BYTES + 1, &r->mask);
        snprintf(r->mask.field, sizeof r->mask.field, "mask");
        if (rc < 0)
            return rc;
    }
    return 0;
}

int isd_api_parse_edit_json(const char *body, size_t len, const struct isd_api_resolver *res,
                            struct isd_images_request *out, struct isd_error *err)
{
    api_request_defaults(out, ISD_EP_EDITS);
    struct params p = {.err = err};
    p.root = api_load_json(body, len, &p.huge_ints, err);
    if (!p.root)
        return -(int)err->id;
    p.extensions = api_extensions_allowed(&p, res, res->default_edit_model);
    int rc;
    if ((rc = check_json_keys(&p)) ||
        (rc = api_resolve_model(&p, res, res->default_edit_model, out)) ||
        (rc = check_edit_model(err, out)))
        goto out;
    if (!out->profile->gpt) {
        rc = isd_err_set(err, ISD_E_INVALID_VALUE, "model",
                         "The model '%s' takes edits as multipart/form-data only; JSON edits are "
                         "for the GPT image models.",
                         out->model);
        goto out;
    }
    if ((rc = check_edit_profile_params(&p, out->profile)) ||
        (rc = api_get_prompt(&p, out->profile, out)) || (rc = json_images(&p, res, out)) ||
        (rc = api_get_n(&p, out->profile, out)) || (rc = api_get_options(&p, out->profile, out)) ||
        (rc = api_get_extensions(&p, out->profile, out)) ||
        (rc = api_check_combinations(&p, out->profile, out)))
        goto out;
out:
    json_decref(p.root);
    if (rc < 0)
        isd_images_request_release(out);
    return rc;
}
