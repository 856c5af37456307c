/*
 * codec_int: what codec.c shares with the per-format files (codec_png.c, codec_jpeg.c,
 * codec_webp.c). Not for other modules.
 *
 * Encoders write through a struct isd_codec_out: small writes (chunk headers, CRCs) are staged
 * and handed to the sink in large pieces; large writes go straight to the sink, so encoded bytes
 * are never copied twice (the JPEG destination manager even compresses straight into the
 * staging buffer). A sink failure is sticky: out->rc keeps the first negative id, every
 * later write returns it, and the format encoder returns it without touching `err` (codec.c
 * fills `err` for sink failures).
 *
 * Decoders get an image already allocated from the probed header (so limits were checked
 * before any pixel memory exists); they fill its pixels and has_alpha, and fail with
 * -ISD_E_INVALID_IMAGE if the library disagrees with the probe about the size.
 */
#ifndef ISD_CODEC_INT_H
#define ISD_CODEC_INT_H

#include "codec/codec.h"

#include <stdint.h>

#define ISD_CODEC_STAGE_BYTES (32u * 1024u)

struct isd_codec_out {
    isd_sink_fn sink;
    void *ctx;
    int rc;      /* 0, or the first negative id the sink returned (sticky) */
    size_t used; /* staged bytes in stage[] */
    unsigned char stage[ISD_CODEC_STAGE_BYTES];
};

/* Returns 0 or out->rc. */
int isd_codec_out_write(struct isd_codec_out *out, const void *p, size_t n);
int isd_codec_out_flush(struct isd_codec_out *out);

/* Encoders: `img` is valid (1..ISD_IMAGE_MAX_SIDE), opts->compression is 0..100. */
int isd_codec_png_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                         struct isd_codec_out *out, struct isd_error *err);
int isd_codec_jpeg_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                          struct isd_codec_out *out, struct isd_error *err);
int isd_codec_webp_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                          struct isd_codec_out *out, struct isd_error *err);

/* Probes: the data was sniffed as that format (n may still be short). */
int isd_codec_png_probe(const uint8_t *data, size_t n, struct isd_image_info *info,
                        struct isd_error *err);
int isd_codec_jpeg_probe(const uint8_t *data, size_t n, struct isd_image_info *info,
                         struct isd_error *err);
int isd_codec_webp_probe(const uint8_t *data, size_t n, struct isd_image_info *info,
                         struct isd_error *err);

/* Decoders into `img` (width/height from the probe). */
int isd_codec_png_decode(const uint8_t *data, size_t n, struct isd_image *img,
                         struct isd_error *err);
int isd_codec_jpeg_decode(const uint8_t *data, size_t n, struct isd_image *img,
                          struct isd_error *err);
int isd_codec_webp_decode(const uint8_t *data, size_t n, struct isd_image *img,
                          struct isd_error *err);

#endif
