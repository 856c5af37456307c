/*
 * WebP through libwebp: probe (WebPGetFeatures), decode to RGBA8 into the caller's image
 * (external memory, no copy), encode with the advanced API so the bytes stream to the sink.
 * libwebp never prints and reports errors as status codes.
 */
#include "codec/codec_int.h"

#include <webp/decode.h>
#include <webp/encode.h>

static const char *webp_status_text(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY:
        return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
        return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
        return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        return "unsupported feature";
    case VP8_STATUS_NOT_ENOUGH_DATA:
        return "the file is truncated";
    default:
        return "decoding failed";
    }
}

static int bad_webp(struct isd_error *err, VP8StatusCode s)
{
    if (s == VP8_STATUS_OUT_OF_MEMORY)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory decoding a WebP image");
    return isd_err_set(err, ISD_E_INVALID_IMAGE, NULL, "invalid WebP image: %s",
                       webp_status_text(s));
}

int isd_codec_webp_probe(const uint8_t *data, size_t n, struct isd_image_info *info,
                         struct isd_error *err)
{
    WebPBitstreamFeatures f;
    VP8StatusCode s = WebPGetFeatures(data, n, &f);
    if (s != VP8_STATUS_OK)
        return bad_webp(err, s);
    info->format = ISD_FMT_WEBP;
    info->width = f.width;
    info->height = f.height;
    info->has_alpha = f.has_alpha != 0;
    info->channels = f.has_alpha ? 4 : 3;
    info->mode = f.has_alpha ? "RGBA" : "RGB";
    return 0;
}

int isd_codec_webp_decode(const uint8_t *data, size_t n, struct isd_image *img,
                          struct isd_error *err)
{
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg))
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "libwebp version mismatch");
    VP8StatusCode s = WebPGetFeatures(data, n, &cfg.input);
    if (s != VP8_STATUS_OK)
        return bad_webp(err, s);
    if (cfg.input.width != img->width || cfg.input.height != img->height)
        return isd_err_set(err, ISD_E_INVALID_IMAGE, NULL,
                           "invalid WebP image: size differs from the probed header");
    if (cfg.input.has_animation)
        return isd_err_set(err, ISD_E_INVALID_IMAGE, NULL,
                           "unsupported WebP image: animated WebP is not supported");
    cfg.output.colorspace = MODE_RGBA; /* straight (not premultiplied) alpha */
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = img->rgba;
    cfg.output.u.RGBA.stride = img->width * 4;
    cfg.output.u.RGBA.size = (size_t)img->width * (size_t)img->height * 4;
    s = WebPDecode(data, n, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* no-op for external memory, kept for symmetry */
    if (s != VP8_STATUS_OK)
        return bad_webp(err, s);
    img->has_alpha = cfg.input.has_alpha != 0;
    return 0;
}

static int webp_write(const uint8_t *data, size_t n, const WebPPicture *pic)
{
    return isd_codec_out_write(pic->custom_ptr, data, n) == 0;
}

int isd_codec_webp_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                          struct isd_codec_out *out, struct isd_error *err)
{
    if (img->width > WEBP_MAX_DIMENSION || img->height > WEBP_MAX_DIMENSION)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                           "a %dx%d image is too large for WebP (at most %d per side)", img->width,
                           img->height, WEBP_MAX_DIMENSION);
    WebPConfig cfg;
    WebPPicture pic;
    if (!WebPConfigInit(&cfg) || !WebPPictureInit(&pic))
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "libwebp version mismatch");
    cfg.quality = (float)opts->compression;
    cfg.method = ISD_CODEC_WEBP_METHOD;
    cfg.alpha_compression = 1; /* lossless alpha plane */
    cfg.alpha_quality = 100;
    pic.width = img->width;
    pic.height = img->height;
    pic.writer = webp_write;
    pic.custom_ptr = out;
    int stride = img->width * 4;
    int ok = opts->keep_alpha ? WebPPictureImportRGBA(&pic, img->rgba, stride)
                              : WebPPictureImportRGBX(&pic, img->rgba, stride);
    int rc = 0;
    if (!ok)
        rc = isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the WebP encoder");
    else if (!WebPEncode(&cfg, &pic))
        rc = out->rc < 0 ? out->rc
             : pic.error_code == VP8_ENC_ERROR_OUT_OF_MEMORY
                 ? isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory encoding WebP")
                 : isd_err_set(err, ISD_E_INTERNAL, NULL, "WebP encoder failed (error %d)",
                               (int)pic.error_code);
    WebPPictureFree(&pic);
    return rc;
}
