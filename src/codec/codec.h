/*
 * codec: PNG, JPEG and WebP in and out, through libpng, libjpeg-turbo and libwebp.
 *
 * Encoding writes through a sink callback (stb_image_write style) so a large output is never
 * copied twice; isd_codec_encode_buf() is the convenience form that appends to an isd_buf.
 * Decoding always probes the header first (format, dimensions, stored channels) and refuses
 * images over the caller's limits before any pixel is decoded, so a small file that claims
 * 60000x60000 pixels costs nothing (decompression bombs).
 *
 * output_compression (0..100) maps to:
 *   JPEG: libjpeg quality = max(1, compression), 4:2:0 chroma subsampling below 90, 4:4:4
 *         from 90 up; optimised Huffman tables.
 *   WebP: lossy, quality = compression (alpha kept, lossless alpha plane); 100 is lossy q100.
 *   PNG:  ignored (the API only allows 100); zlib level ISD_CODEC_PNG_LEVEL, adaptive filters.
 *
 * Errors: -ISD_E_INVALID_IMAGE for undecodable or unsupported input (message says why, without
 * an image index: the API layer adds "for image N"), -ISD_E_INVALID_VALUE when the image is
 * over the limits, -ISD_E_NOMEM, and whatever the sink returns.
 * Threading: every call is independent and thread-safe (no shared state).
 *
 *     struct isd_encode_opts o = {.format = ISD_FMT_PNG, .compression = 100, .keep_alpha = 1};
 *     struct isd_buf png; isd_buf_init(&png, 64 << 20);
 *     if (isd_codec_encode_buf(img, &o, &png, &err) < 0) ...
 */
#ifndef ISD_CODEC_H
#define ISD_CODEC_H

#include "buf/buf.h"
#include "err/err.h"
#include "image/image.h"

#include <stdbool.h>
#include <stddef.h>

enum isd_format { ISD_FMT_PNG = 0, ISD_FMT_JPEG, ISD_FMT_WEBP, ISD_FMT_UNKNOWN };

const char *isd_format_name(enum isd_format f); /* "png", "jpeg", "webp" */
const char *isd_format_mime(enum isd_format f); /* "image/png", ... */
const char *isd_format_ext(enum isd_format f);  /* "png", "jpg", "webp" */
/* "png" | "jpeg" | "webp" (exact) → format; -ISD_E_INVALID_VALUE otherwise. */
int isd_format_parse(const char *name, enum isd_format *out);

struct isd_encode_opts {
    enum isd_format format; /* PNG, JPEG or WEBP */
    int compression;        /* output_compression 0..100, see the mapping above */
    bool keep_alpha;        /* PNG/WebP: write the alpha channel; JPEG never has one */
};

/* Receives encoded bytes in order; returns 0 or a negative error id to stop encoding. */
typedef int (*isd_sink_fn)(void *ctx, const void *data, size_t n);

int isd_codec_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                     isd_sink_fn sink, void *ctx, struct isd_error *err);
int isd_codec_encode_buf(const struct isd_image *img, const struct isd_encode_opts *opts,
                         struct isd_buf *out, struct isd_error *err);

/* What the header says, before decoding pixels. */
struct isd_image_info {
    enum isd_format format;
    int width;
    int height;
    int channels;     /* stored channels: 1 (L), 2 (LA), 3 (RGB), 4 (RGBA) */
    bool has_alpha;   /* an alpha channel or a transparency chunk is present */
    const char *mode; /* PIL-style mode name: "L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16"... */
};

/* Sniffs the format from magic bytes: PNG, JPEG, WebP (RIFF....WEBP), else ISD_FMT_UNKNOWN. */
enum isd_format isd_codec_sniff(const void *data, size_t n);
int isd_codec_probe(const void *data, size_t n, struct isd_image_info *info,
                    struct isd_error *err);

struct isd_decode_limits {
    int max_side;             /* largest width or height accepted */
    unsigned long max_pixels; /* largest width * height accepted */
};

/* Probes, checks the limits, then decodes to RGBA8 (has_alpha set from the file: true when
 * it has an alpha channel or transparency). The caller frees *out with isd_image_free(). */
int isd_codec_decode(const void *data, size_t n, const struct isd_decode_limits *limits,
                     struct isd_image **out, struct isd_error *err);

#endif
