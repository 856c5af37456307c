/* codec: format names, sniffing, the sink staging, and dispatch to the per-format files. */
#include "codec/codec_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const format_names[] = {"png", "jpeg", "webp"};
static const char *const format_mimes[] = {"image/png", "image/jpeg", "image/webp"};
static const char *const format_exts[] = {"png", "jpg", "webp"};

static bool format_known(enum isd_format f)
{
    return f == ISD_FMT_PNG || f == ISD_FMT_JPEG || f == ISD_FMT_WEBP;
}

const char *isd_format_name(enum isd_format f)
{
    return format_known(f) ? format_names[f] : "unknown";
}

const char *isd_format_mime(enum isd_format f)
{
    return format_known(f) ? format_mimes[f] : "application/octet-stream";
}

const char *isd_format_ext(enum isd_format f)
{
    return format_known(f) ? format_exts[f] : "bin";
}

int isd_format_parse(const char *name, enum isd_format *out)
{
    for (int f = ISD_FMT_PNG; name && f <= ISD_FMT_WEBP; f++) {
        if (strcmp(name, format_names[f]) == 0) {
            *out = (enum isd_format)f;
            return 0;
        }
    }
    return -ISD_E_INVALID_VALUE;
}

/* ---- sink staging ---- */

int isd_codec_out_flush(struct isd_codec_out *out)
{
    if (out->rc < 0 || out->used == 0)
        return out->rc;
    int rc = out->sink(out->ctx, out->stage, out->used);
    out->used = 0;
    if (rc < 0)
        out->rc = rc;
    return out->rc;
}

int isd_codec_out_write(struct isd_codec_out *out, const void *p, size_t n)
{
    if (out->rc < 0)
        return out->rc;
    if (n <= sizeof out->stage - out->used) {
        memcpy(out->stage + out->used, p, n);
        out->used += n;
        return 0;
    }
    if (isd_codec_out_flush(out) < 0)
        return out->rc;
    if (n <= sizeof out->stage / 2) {
        memcpy(out->stage, p, n);
        out->used = n;
        return 0;
    }
    int rc = out->sink(out->ctx, p, n); /* large: straight through, no copy */
    if (rc < 0)
        out->rc = rc;
    return out->rc;
}

/* ---- encoding ---- */

static int check_encode_args(const struct isd_image *img, const struct isd_encode_opts *opts,
                             struct isd_error *err)
{
    if (!img || !img->rgba || img->width < 1 || img->height < 1 ||
        img->width > ISD_IMAGE_MAX_SIDE || img->height > ISD_IMAGE_MAX_SIDE ||
        (uint64_t)img->width * (uint64_t)img->height > ISD_IMAGE_MAX_PIXELS)
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot encode an invalid image");
    if (!opts || !format_known(opts->format))
        return isd_err_set(err, ISD_E_INVALID_VALUE, "output_format", "unsupported output format");
    if (opts->compression < 0 || opts->compression > 100)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "output_compression",
                           "output_compression %d is outside 0..100", opts->compression);
    return 0;
}

int isd_codec_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                     isd_sink_fn sink, void *ctx, struct isd_error *err)
{
    int rc = check_encode_args(img, opts, err);
    if (rc < 0)
        return rc;
    struct isd_codec_out *out = malloc(sizeof *out);
    if (!out)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the image encoder");
    out->sink = sink;
    out->ctx = ctx;
    out->rc = 0;
    out->used = 0;

    switch (opts->format) {
    case ISD_FMT_PNG:
        rc = isd_codec_png_encode(img, opts, out, err);
        break;
    case ISD_FMT_JPEG:
        rc = isd_codec_jpeg_encode(img, opts, out, err);
        break;
    default:
        rc = isd_codec_webp_encode(img, opts, out, err);
        break;
    }
    if (rc == 0)
        rc = isd_codec_out_flush(out);
    if (rc < 0 && rc == out->rc)
        isd_err_set(err, (enum isd_err_id) - rc, NULL, "writing the encoded %s image failed (%s)",
                    isd_format_name(opts->format), isd_err_name((enum isd_err_id) - rc));
    free(out);
    return rc;
}

static int buf_sink(void *ctx, const void *data, size_t n)
{
    return isd_buf_append(ctx, data, n);
}

int isd_codec_encode_buf(const struct isd_image *img, const struct isd_encode_opts *opts,
                         struct isd_buf *out, struct isd_error *err)
{
    size_t start = out->len;
    int rc = isd_codec_encode(img, opts, buf_sink, out, err);
    if (rc < 0) {
        if (rc == -ISD_E_TOO_LARGE)
            isd_err_set(err, ISD_E_TOO_LARGE, NULL,
                        "the encoded %s image is over the %zu-byte output limit",
                        isd_format_name(opts->format), out->max);
        out->len = start; /* no partial image left behind */
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* ---- probing and decoding ---- */

enum isd_format isd_codec_sniff(const void *data, size_t n)
{
    const unsigned char *p = data;
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return ISD_FMT_PNG;
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return ISD_FMT_JPEG;
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return ISD_FMT_WEBP;
    return ISD_FMT_UNKNOWN;
}

int isd_codec_probe(const void *data, size_t n, struct isd_image_info *info, struct isd_error *err)
{
    memset(info, 0, sizeof *info);
    info->format = ISD_FMT_UNKNOWN;
    info->mode = "";
    if (!data || n == 0)
        return isd_err_set(err, ISD_E_INVALID_IMAGE, NULL, "the image file is empty");
    int rc;
    switch (isd_codec_sniff(data, n)) {
    case ISD_FMT_PNG:
        rc = isd_codec_png_probe(data, n, info, err);
        break;
    case ISD_FMT_JPEG:
        rc = isd_codec_jpeg_probe(data, n, info, err);
        break;
    case ISD_FMT_WEBP:
        rc = isd_codec_webp_probe(data, n, info, err);
        break;
    default:
        return isd_err_set(err, ISD_E_INVALID_IMAGE, NULL,
                           "unrecognised image format (expected PNG, JPEG or WebP)");
    }
    if (rc == 0 && (info->width < 1 || info->height < 1))
        rc = isd_err_set(err, ISD_E_INVALID_IMAGE, NULL, "the %s image has zero width or height",
                         isd_format_name(info->format));
    return rc;
}

static int check_limits(const struct isd_image_info *info, const struct isd_decode_limits *limits,
                        struct isd_error *err)
{
    long max_side = ISD_IMAGE_MAX_SIDE;
    unsigned long max_pixels = ISD_IMAGE_MAX_PIXELS;
    if (limits && limits->max_side > 0 && limits->max_side < max_side)
        max_side = limits->max_side;
    if (limits && limits->max_pixels > 0 && limits->max_pixels < max_pixels)
        max_pixels = limits->max_pixels;
    if (info->width > max_side || info->height > max_side)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                           "the image is %dx%d pixels; the largest side accepted is %ld",
                           info->width, info->height, max_side);
    if ((unsigned long long)info->width * (unsigned long long)info->height > max_pixels)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                           "the image is %dx%d pixels; at most %lu pixels are accepted",
                           info->width, info->height, max_pixels);
    return 0;
}

int isd_codec_decode(const void *data, size_t n, const struct isd_decode_limits *limits,
                     struct isd_image **out, struct isd_error *err)
{
    *out = NULL;
    struct isd_image_info info;
    int rc = isd_codec_probe(data, n, &info, err);
    if (rc < 0)
        return rc;
    rc = check_limits(&info, limits, err);
    if (rc < 0)
        return rc;
    struct isd_image *img = isd_image_new(info.width, info.height, err);
    if (!img)
        return -(int)err->id;
    switch (info.format) {
    case ISD_FMT_PNG:
        rc = isd_codec_png_decode(data, n, img, err);
        break;
    case ISD_FMT_JPEG:
        rc = isd_codec_jpeg_decode(data, n, img, err);
        break;
    default:
        rc = isd_codec_webp_decode(data, n, img, err);
        break;
    }
    if (rc < 0) {
        isd_image_free(img);
        return rc;
    }
    *out = img;
    return 0;
}
