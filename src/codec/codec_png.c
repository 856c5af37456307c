/*
 * PNG through libpng: header probe (own parser of the signature, IHDR and the chunks before
 * the first IDAT), decode to RGBA8, encode from RGBA8.
 *
 * libpng reports errors by calling our error function, which records the message and
 * longjmps back. Every setjmp lives in a small function that only reads its arguments; the
 * resources (png structs, row pointers, the image) belong to its caller, which frees them on
 * every path. Nothing is ever printed: warnings are swallowed.
 */
#include "codec/codec_int.h"

#include <png.h>
#include <stdio.h>
#include <zlib.h> /* Z_RLE only: zlib itself is libpng's business */
#include <stdlib.h>
#include <string.h>

#define PNG_SIG_BYTES       8
#define PNG_IHDR_END        33 /* signature + length + "IHDR" + 13 data bytes + CRC */
#define PNG_CHUNK_MAX       0x7FFFFFFFu
#define PNG_MSG_MAX         160
/* Encoder settings; the measurements behind them are in codec.h. */
#define PNG_ENCODE_STRATEGY Z_RLE
#define PNG_ENCODE_FILTERS  PNG_FILTER_UP

/* Shared by the error/warning handlers and the memory reader. */
struct png_io {
    const uint8_t *data; /* input (decode) */
    size_t n;
    size_t pos;
    struct isd_codec_out *out; /* output (encode) */
    char msg[PNG_MSG_MAX];     /* libpng's error message */
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* CRC-32 (ISO 3309, as PNG uses it) of the few bytes the probe checks: bitwise is enough. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static bool chunk_crc_ok(const uint8_t *chunk, uint32_t len)
{
    return crc32_of(chunk + 4, (size_t)len + 4) == be32(chunk + 8 + len);
}

/* PIL's mode for a PNG colour type and bit depth (PngImagePlugin._MODES); NULL if invalid. */
static const char *png_mode(int color_type, int depth, int *channels)
{
    switch (color_type) {
    case 0: /* grey */
        *channels = 1;
        if (depth == 1)
            return "1";
        if (depth == 2 || depth == 4 || depth == 8)
            return "L";
        return depth == 16 ? "I;16" : NULL;
    case 2: /* RGB */
        *channels = 3;
        return depth == 8 || depth == 16 ? "RGB" : NULL;
    case 3: /* palette */
        *channels = 1;
        return depth == 1 || depth == 2 || depth == 4 || depth == 8 ? "P" : NULL;
    case 4: /* grey + alpha; PIL reads the 16-bit form as RGBA */
        *channels = 2;
        return depth == 8 ? "LA" : depth == 16 ? "RGBA" : NULL;
    case 6: /* RGBA */
        *channels = 4;
        return depth == 8 || depth == 16 ? "RGBA" : NULL;
    default:
        return NULL;
    }
}

static int bad_png(struct isd_error *err, const char *why)
{
    return isd_err_set(err, ISD_E_INVALID_IMAGE, NULL, "invalid PNG image: %s", why);
}

/* Walks the chunks between IHDR and the first IDAT looking for a tRNS with a good CRC. Stops
 * quietly at the end of the data: the probe reads headers, the decoder judges the rest. */
static bool png_has_trns(const uint8_t *d, size_t n)
{
    size_t pos = PNG_IHDR_END;
    while (n - pos >= 12) {
        uint32_t len = be32(d + pos);
        if (len > PNG_CHUNK_MAX || len > n - pos - 12)
            return false;
        const uint8_t *type = d + pos + 4;
        if (memcmp(type, "IDAT", 4) == 0 || memcmp(type, "IEND", 4) == 0)
            return false;
        if (memcmp(type, "tRNS", 4) == 0 && chunk_crc_ok(d + pos, len))
            return true;
        pos += 12 + (size_t)len;
    }
    return false;
}

int isd_codec_png_probe(const uint8_t *d, size_t n, struct isd_image_info *info,
                        struct isd_error *err)
{
    if (n < PNG_IHDR_END)
        return bad_png(err, "the header is truncated");
    if (be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4) != 0)
        return bad_png(err, "the first chunk is not a valid IHDR");
    if (!chunk_crc_ok(d + 8, 13))
        return bad_png(err, "IHDR checksum mismatch");
    uint32_t w = be32(d + 16), h = be32(d + 20);
    int depth = d[24], color_type = d[25];
    if (w == 0 || h == 0)
        return bad_png(err, "zero width or height");
    if (w > PNG_CHUNK_MAX || h > PNG_CHUNK_MAX)
        return bad_png(err, "width or height out of range");
    int channels = 0;
    const char *mode = png_mode(color_type, depth, &channels);
    if (!mode)
        return bad_png(err, "invalid colour type and bit depth");
    if (d[26] != 0 || d[27] != 0 || d[28] > 1)
        return bad_png(err, "unknown compression, filter or interlace method");
    info->format = ISD_FMT_PNG;
    info->width = (int)w;
    info->height = (int)h;
    info->channels = channels;
    info->mode = mode;
    info->has_alpha = (color_type & 4) != 0 || png_has_trns(d, n);
    return 0;
}

/* ---- libpng callbacks ---- */

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof io->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png; /* warnings (bad ancillary CRCs, extra data...) are not errors: stay quiet */
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep dst, size_t len)
{
    struct png_io *io = png_get_io_ptr(png);
    if (len > io->n - io->pos)
        png_error(png, "the file is truncated");
    memcpy(dst, io->data + io->pos, len);
    io->pos += len;
}

static void png_write_out(png_structp png, png_bytep src, size_t len)
{
    struct png_io *io = png_get_io_ptr(png);
    if (isd_codec_out_write(io->out, src, len) < 0)
        png_error(png, "output sink failed");
}

static void png_flush_out(png_structp png)
{
    (void)png; /* the staging is flushed once at the end */
}

/* ---- decoding ---- */

/* Sets the transforms that turn any PNG into 8-bit RGBA; returns has_alpha. */
static bool png_to_rgba(png_structp png, png_infop info)
{
    int color_type = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (trns)
        png_set_tRNS_to_alpha(png);
    if (depth == 16)
        png_set_scale_16(png);
    if (!(color_type & PNG_COLOR_MASK_COLOR))
        png_set_gray_to_rgb(png);
    bool alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 || trns;
    if (!alpha)
        png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return alpha;
}

/* The only function of the decoder with a setjmp; it modifies no local after it. */
static int png_decode_rows(png_structp png, png_infop info, struct isd_image *img, png_bytepp rows)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    /* Refuse what the probe did not promise, before libpng allocates row buffers. */
    png_set_user_limits(png, (png_uint_32)img->width, (png_uint_32)img->height);
    png_set_chunk_malloc_max(png, 8000000); /* libpng's default ceiling, made explicit */
    png_set_chunk_cache_max(png, 1000);
    /* Skip every ancillary chunk but tRNS: no colour management, no text, no zTXt bombs. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != (png_uint_32)img->width ||
        png_get_image_height(png, info) != (png_uint_32)img->height)
        png_error(png, "size differs from the probed header");
    img->has_alpha = png_to_rgba(png, info);
    if (png_get_rowbytes(png, info) != (size_t)img->width * 4)
        png_error(png, "unexpected row layout after conversion");
    png_read_image(png, rows);
    /* No png_read_end(): pixels are complete here; a missing IEND or trailing bytes are
     * tolerated, like most viewers and PIL do. */
    return 0;
}

int isd_codec_png_decode(const uint8_t *data, size_t n, struct isd_image *img,
                         struct isd_error *err)
{
    struct png_io io = {.data = data, .n = n, .pos = 0, .msg = "libpng error"};
    png_bytepp rows = malloc(sizeof *rows * (size_t)img->height);
    png_structp png =
        rows ? png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning)
             : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc;
    if (!info) {
        rc = isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the PNG decoder");
        goto out;
    }
    for (int y = 0; y < img->height; y++)
        rows[y] = isd_image_px(img, 0, y);
    png_set_read_fn(png, &io, png_read_mem);
    rc = png_decode_rows(png, info, img, rows) == 0 ? 0 : bad_png(err, io.msg);
out:
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    free(rows);
    return rc;
}

/* ---- encoding ---- */

static int png_encode_rows(png_structp png, png_infop info, const struct isd_image *img, bool alpha)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 alpha ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, ISD_CODEC_PNG_LEVEL);
    png_set_compression_strategy(png, PNG_ENCODE_STRATEGY);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_ENCODE_FILTERS);
    png_set_compression_buffer_size(png, ISD_CODEC_STAGE_BYTES);
    png_write_info(png, info);
    if (!alpha)
        png_set_filler(png, 0, PNG_FILLER_AFTER); /* 4-byte input rows, RGB written */
    for (int y = 0; y < img->height; y++)
        png_write_row(png, isd_image_px(img, 0, y));
    png_write_end(png, NULL);
    return 0;
}

int isd_codec_png_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                         struct isd_codec_out *out, struct isd_error *err)
{
    struct png_io io = {.out = out, .msg = "libpng error"};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc;
    if (!info) {
        rc = isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the PNG encoder");
        goto out;
    }
    png_set_write_fn(png, &io, png_write_out, png_flush_out);
    rc = png_encode_rows(png, info, img, opts->keep_alpha);
    if (rc < 0)
        rc = out->rc < 0 ? out->rc
                         : isd_err_set(err, ISD_E_INTERNAL, NULL, "PNG encoder: %s", io.msg);
out:
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    return rc;
}
