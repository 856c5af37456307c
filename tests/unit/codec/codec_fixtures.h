/*
 * codec_fixtures: test images and files for the codec tests, made here with the libraries
 * directly (libpng, libjpeg, libwebp) so the decoder is checked against files it did not
 * write itself. Header-only (static inline) so every test binary can include it.
 */
#ifndef ISD_CODEC_FIXTURES_H
#define ISD_CODEC_FIXTURES_H

#include "buf/buf.h"
#include "codec/codec.h"
#include "image/image.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <webp/encode.h>

/* Gradients, a checkerboard of sharp edges (16-pixel squares; the solid box is on the same
 * grid when w/2 and h/2 are multiples of 16), a fully transparent band on the left, a
 * semi-transparent gradient band next to it, and a half-transparent disc. */
static inline struct isd_image *fx_test_image(int w, int h, bool alpha)
{
    struct isd_error err;
    struct isd_image *im = isd_image_new(w, h, &err);
    if (!im)
        return NULL;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = isd_image_px(im, x, y);
            p[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            p[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            p[2] = ((x / 16 + y / 16) & 1) ? 220 : 40;
            if (x >= w / 2 && y >= h / 2 && x < w / 2 + 32 && y < h / 2 + 32) { /* solid box */
                p[0] = 250;
                p[1] = 20;
                p[2] = 20;
            }
            uint8_t a = 255;
            if (alpha) {
                int dx = x - 3 * w / 4, dy = y - h / 4;
                if (x < w / 8)
                    a = 0;
                else if (x < w / 4)
                    a = (uint8_t)(32 + (x - w / 8) * 160 / (w / 8 > 0 ? w / 8 : 1));
                else if (dx * dx + dy * dy < (w / 8) * (w / 8))
                    a = 128;
            }
            p[3] = a;
        }
    }
    im->has_alpha = alpha;
    return im;
}

static inline size_t fx_encode(const struct isd_image *im, enum isd_format f, int compression,
                               bool keep_alpha, struct isd_buf *out)
{
    struct isd_error err;
    struct isd_encode_opts o = {.format = f, .compression = compression, .keep_alpha = keep_alpha};
    isd_buf_init(out, 64u << 20);
    if (isd_codec_encode_buf(im, &o, out, &err) < 0) {
        fprintf(stderr, "encode failed: %s\n", err.message);
        return 0;
    }
    return out->len;
}

/* ---- PNG files of any colour type through libpng ---- */

struct fx_mem {
    struct isd_buf *b;
};

static inline void fx_png_write(png_structp png, png_bytep d, size_t n)
{
    struct fx_mem *m = png_get_io_ptr(png);
    if (isd_buf_append(m->b, d, n) < 0)
        png_error(png, "fixture buffer full");
}

static inline void fx_png_flush(png_structp png)
{
    (void)png;
}

/* Sample value of channel c at (x, y) for a given depth: a pattern that uses the whole range. */
static inline unsigned fx_sample(int x, int y, int c, int depth)
{
    unsigned max = (1u << (depth > 8 ? 8 : depth)) - 1;
    unsigned v = (unsigned)(x * 7 + y * 13 + c * 61) % (max + 1);
    return depth == 16 ? v * 257 : v; /* 16-bit: v * 257 scales back to exactly v */
}

static inline uint8_t fx_to8(unsigned v, int depth)
{
    if (depth == 16)
        return (uint8_t)(v / 257);
    return (uint8_t)(v * 255 / ((1u << depth) - 1));
}

/* The palette used for colour type 3: entry i. */
static inline void fx_palette_entry(int i, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(i * 3);
    rgb[1] = (uint8_t)(255 - i);
    rgb[2] = (uint8_t)(i * 7);
}

#define FX_TRNS_GREY     5u /* grey sample made transparent by tRNS (before scaling) */
#define FX_PALETTE_ALPHA 4  /* palette entries 0..3 get alpha 60 * i */

/*
 * Writes a w x h PNG of the given colour type, depth and interlace (0/1) into out; with
 * `trns`, a tRNS chunk (grey: FX_TRNS_GREY; RGB: the colour of pixel (0,0); palette: the
 * first FX_PALETTE_ALPHA entries). If `expect` is not NULL it receives the RGBA8 pixels a
 * correct decoder must produce (w*h*4 bytes).
 */
static inline int fx_png(struct isd_buf *out, int w, int h, int color_type, int depth,
                         int interlace, bool trns, uint8_t *expect)
{
    int channels = color_type == 0 || color_type == 3 ? 1
                   : color_type == 4                  ? 2
                   : color_type == 2                  ? 3
                                                      : 4;
    size_t rowbytes = ((size_t)w * (size_t)channels * (size_t)depth + 7) / 8;
    uint8_t *rows = calloc((size_t)h, rowbytes);
    png_bytep *rp = malloc(sizeof *rp * (size_t)h);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    struct fx_mem m = {out};
    isd_buf_init(out, 64u << 20);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(rp);
        return -1;
    }
    unsigned pal_max = (1u << depth) - 1;
    for (int y = 0; y < h; y++) {
        uint8_t *row = rows + (size_t)y * rowbytes;
        rp[y] = row;
        for (int x = 0; x < w; x++) {
            unsigned s[4];
            for (int c = 0; c < channels; c++) {
                s[c] = color_type == 3 ? (unsigned)(x + 3 * y) % (pal_max + 1)
                                       : fx_sample(x, y, c, depth);
                size_t bit = ((size_t)x * (size_t)channels + (size_t)c) * (size_t)depth;
                if (depth == 16) {
                    row[bit / 8] = (uint8_t)(s[c] >> 8);
                    row[bit / 8 + 1] = (uint8_t)s[c];
                } else if (depth == 8) {
                    row[bit / 8] = (uint8_t)s[c];
                } else {
                    row[bit / 8] |= (uint8_t)(s[c] << (8 - depth - bit % 8));
                }
            }
            if (!expect)
                continue;
            uint8_t *e = expect + ((size_t)y * (size_t)w + (size_t)x) * 4;
            switch (color_type) {
            case 0:
                e[0] = e[1] = e[2] = fx_to8(s[0], depth);
                e[3] = trns && s[0] == (depth == 16 ? FX_TRNS_GREY * 257 : FX_TRNS_GREY) ? 0 : 255;
                break;
            case 2:
                for (int c = 0; c < 3; c++)
                    e[c] = fx_to8(s[c], depth);
                e[3] = trns && s[0] == fx_sample(0, 0, 0, depth) &&
                               s[1] == fx_sample(0, 0, 1, depth) &&
                               s[2] == fx_sample(0, 0, 2, depth)
                           ? 0
                           : 255;
                break;
            case 3:
                fx_palette_entry((int)s[0], e);
                e[3] = trns && s[0] < FX_PALETTE_ALPHA ? (uint8_t)(60 * s[0]) : 255;
                break;
            case 4:
                e[0] = e[1] = e[2] = fx_to8(s[0], depth);
                e[3] = fx_to8(s[1], depth);
                break;
            default:
                for (int c = 0; c < 4; c++)
                    e[c] = fx_to8(s[c], depth);
            }
        }
    }
    png_set_write_fn(png, &m, fx_png_write, fx_png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, 0, 0);
    if (color_type == 3) {
        png_color pal[256];
        for (int i = 0; i <= (int)pal_max; i++) {
            uint8_t rgb[3];
            fx_palette_entry(i, rgb);
            pal[i].red = rgb[0];
            pal[i].green = rgb[1];
            pal[i].blue = rgb[2];
        }
        png_set_PLTE(png, info, pal, (int)pal_max + 1);
        if (trns) {
            png_byte a[FX_PALETTE_ALPHA];
            for (int i = 0; i < FX_PALETTE_ALPHA; i++)
                a[i] = (png_byte)(60 * i);
            png_set_tRNS(png, info, a, FX_PALETTE_ALPHA, NULL);
        }
    } else if (trns) {
        png_color_16 c = {0};
        c.gray = (png_uint_16)(depth == 16 ? FX_TRNS_GREY * 257 : FX_TRNS_GREY);
        c.red = (png_uint_16)fx_sample(0, 0, 0, depth);
        c.green = (png_uint_16)fx_sample(0, 0, 1, depth);
        c.blue = (png_uint_16)fx_sample(0, 0, 2, depth);
        png_set_tRNS(png, info, NULL, 0, &c);
    }
    png_write_info(png, info);
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(rp);
    return 0;
}

/* ---- JPEG files through libjpeg (grey, CMYK, progressive with a custom scan count) ---- */

struct fx_jpeg_sink {
    struct jpeg_destination_mgr pub;
    struct isd_buf *b;
    JOCTET buf[4096];
};

static inline void fx_jpeg_init(j_compress_ptr c)
{
    struct fx_jpeg_sink *s = (struct fx_jpeg_sink *)c->dest;
    s->pub.next_output_byte = s->buf;
    s->pub.free_in_buffer = sizeof s->buf;
}

static inline boolean fx_jpeg_empty(j_compress_ptr c)
{
    struct fx_jpeg_sink *s = (struct fx_jpeg_sink *)c->dest;
    isd_buf_append(s->b, s->buf, sizeof s->buf);
    fx_jpeg_init(c);
    return TRUE;
}

static inline void fx_jpeg_term(j_compress_ptr c)
{
    struct fx_jpeg_sink *s = (struct fx_jpeg_sink *)c->dest;
    isd_buf_append(s->b, s->buf, sizeof s->buf - s->pub.free_in_buffer);
}

/* components 1 (grey), 2 (JCS_UNKNOWN, which no decoder here accepts), 3 (RGB) or 4 (CMYK,
 * raw values given by fx_cmyk_sample; libjpeg adds an Adobe marker). Samples follow
 * fx_jpeg_sample. scans: 0 baseline, -1 libjpeg's standard progressive script (about 10
 * scans), 1 a progressive file with 11 + 126 * components scans. */
static inline unsigned fx_cmyk_sample(int x, int y, int c)
{
    return (unsigned)(x * 3 + y * 5 + c * 50) & 255;
}

static inline unsigned fx_jpeg_sample(int x, int y, int k, int w, int components)
{
    if (components == 4)
        return fx_cmyk_sample(x, y, k);
    return (unsigned)(x * 120 / (w > 1 ? w - 1 : 1)) + (unsigned)k * 40 + ((unsigned)y & 31);
}

static inline void fx_jpeg(struct isd_buf *out, int w, int h, int components, int quality,
                           int scans, bool no_adobe)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    struct fx_jpeg_sink sink = {.pub = {.init_destination = fx_jpeg_init,
                                        .empty_output_buffer = fx_jpeg_empty,
                                        .term_destination = fx_jpeg_term}};
    isd_buf_init(out, 64u << 20);
    sink.b = out;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    c.dest = &sink.pub;
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = components;
    c.in_color_space = components == 1   ? JCS_GRAYSCALE
                       : components == 3 ? JCS_RGB
                       : components == 4 ? JCS_CMYK
                                         : JCS_UNKNOWN;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1; /* 4:4:4 */
    if (no_adobe)
        c.write_Adobe_marker = FALSE;
    jpeg_scan_info *script = NULL;
    if (scans < 0)
        jpeg_simple_progression(&c);
    if (scans > 0) {
        /* DC first at Al=10 + 10 refinements, then each AC coefficient: a first scan at
         * Al=1 and one refinement: 11 + 2 * 63 * components scans (grey: 137). */
        int n = 0;
        script = calloc(16 + 2 * 63 * (size_t)components, sizeof *script);
        script[n].comps_in_scan = components;
        for (int ci = 0; ci < components; ci++)
            script[n].component_index[ci] = ci;
        script[n].Ss = script[n].Se = 0;
        script[n].Ah = 0;
        script[n].Al = 10;
        n++;
        for (int al = 9; al >= 0; al--, n++) {
            script[n] = script[0];
            script[n].Ah = al + 1;
            script[n].Al = al;
        }
        for (int ci = 0; ci < components; ci++) {
            for (int k = 1; k < 64; k++) {
                script[n].comps_in_scan = 1;
                script[n].component_index[0] = ci;
                script[n].Ss = script[n].Se = k;
                script[n].Ah = 0;
                script[n].Al = 1;
                n++;
                script[n] = script[n - 1];
                script[n].Ah = 1;
                script[n].Al = 0;
                n++;
            }
        }
        c.scan_info = script;
        c.num_scans = n;
    }
    jpeg_start_compress(&c, TRUE);
    JSAMPLE *row = malloc((size_t)w * (size_t)components);
    while (c.next_scanline < c.image_height) {
        int y = (int)c.next_scanline;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < components; k++)
                row[x * components + k] = (JSAMPLE)fx_jpeg_sample(x, y, k, w, components);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    free(script);
}

/* A lossless WebP of `im` (exact RGBA). */
static inline size_t fx_webp_lossless(const struct isd_image *im, struct isd_buf *out)
{
    uint8_t *p = NULL;
    size_t n = WebPEncodeLosslessRGBA(im->rgba, im->width, im->height, im->width * 4, &p);
    isd_buf_init(out, 64u << 20);
    isd_buf_append(out, p, n);
    WebPFree(p);
    return n;
}

/* Big-endian helpers and PNG CRC for patching headers. */
static inline void fx_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t fx_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t fx_crc(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

/* Recomputes the CRC of the chunk starting at `chunk` (its length field). */
static inline void fx_fix_crc(uint8_t *chunk)
{
    uint32_t len = fx_get32(chunk);
    fx_put32(chunk + 8 + len, fx_crc(chunk + 4, (size_t)len + 4));
}

/* Offset of the first chunk of `type` in a PNG, or 0. */
static inline size_t fx_png_find(const uint8_t *d, size_t n, const char *type)
{
    size_t pos = 8;
    while (pos + 12 <= n) {
        uint32_t len = fx_get32(d + pos);
        if (memcmp(d + pos + 4, type, 4) == 0)
            return pos;
        pos += 12 + (size_t)len;
    }
    return 0;
}

#endif
