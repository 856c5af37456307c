/*
 * codec: PNG, JPEG and WebP in and out, through libpng, libjpeg-turbo and libwebp.
 *
 * Encoding writes through a sink callback (stb_image_write style) so a large output is never
 * copied twice; isd_codec_encode_buf() is the convenience form that appends to an isd_buf (on
 * failure the buffer is left as it was). Decoding always probes the header first (format,
 * dimensions, stored channels) and refuses images over the caller's limits before any pixel
 * is decoded, so a small file that claims 60000x60000 pixels costs nothing (decompression
 * bombs).
 *
 * Encoding, channels: keep_alpha writes 4 channels (PNG RGBA; WebP with its alpha plane),
 * otherwise 3 (alpha dropped, not composited); the image's has_alpha is not consulted. JPEG
 * never has alpha. libwebp itself omits the alpha plane when every alpha byte is 255, so such
 * a WebP probes as RGB even with keep_alpha.
 *
 * output_compression (0..100) maps to:
 *   JPEG: libjpeg quality = max(1, compression), 4:2:0 chroma subsampling below 90, 4:4:4
 *         from 90 up; optimised Huffman tables; baseline (not progressive).
 *   WebP: lossy, quality = compression, method ISD_CODEC_WEBP_METHOD; the alpha plane is
 *         lossless (alpha is exact); 100 is lossy q100. RGB under fully transparent pixels may
 *         change (libwebp's default, exact = 0). At most 16383 pixels per side (WebP's limit):
 *         larger images fail with -ISD_E_INVALID_VALUE.
 *   PNG:  ignored (the API only allows 100); 8-bit, non-interlaced, zlib strategy Z_RLE with
 *         the Up filter on every row (ISD_CODEC_PNG_LEVEL is passed to zlib but, under Z_RLE,
 *         every level 1..9 gives the same output).
 *
 * Why Z_RLE + Up: 1024x1024 RGB, one run on the dev box (gcc -O2, zlib 1.2.13, libpng
 * 1.6.39), bytes and ms, on (a) gradients + text-like strokes, (b) a photo-like 1/f fractal
 * texture (the closest proxy for diffusion outputs), (c) gradients + iid noise of +-4:
 *                                        (a)            (b)            (c)
 *     libpng defaults (L6, Z_FILTERED,   140 KB  52 ms  945 KB 383 ms  1527 KB 335 ms
 *       adaptive filters)
 *     zlib L1, Up                        249 KB  11 ms 1126 KB  50 ms  1847 KB  39 ms
 *     Z_RLE, Up            (chosen)      506 KB  17 ms  908 KB  47 ms  1588 KB  28 ms
 *     Z_RLE, Paeth                       452 KB  18 ms  868 KB  60 ms  1590 KB  41 ms
 *     Z_RLE, adaptive filters            452 KB  28 ms  859 KB  82 ms  1519 KB  53 ms
 * On photo-like content Z_RLE + Up is as small as libpng's defaults at about 8x the speed;
 * only flat synthetic images come out larger (still 3x faster). RGBA costs about 20% more.
 * Through this API, same box, one run, image (b): PNG RGB 32 ms / 900 KB, RGBA 43 ms /
 * 1086 KB; JPEG q90 7.7 ms / 124 KB, q75 3.7 ms / 42 KB; WebP q100 82 ms / 121 KB, q75 56 ms /
 * 17 KB; decoding any of them 2..17 ms.
 *
 * Decoding: every PNG variant (palette, tRNS, grey 1..16 bits, grey+alpha, 16-bit scaled to
 * 8, interlaced), JPEG grey, YCbCr, RGB and CMYK/YCCK (Adobe-inverted when an Adobe marker is
 * present, as Photoshop writes them), WebP lossy/lossless with alpha; always RGBA8 out, and
 * has_alpha true when the file has an alpha channel or transparency (tRNS), even if every
 * pixel is opaque. Leniency: bytes after the image (after IEND, EOI or the RIFF size) are
 * ignored, and a PNG may lack IEND once its IDAT chunks are complete; a JPEG, though, must be
 * complete up to EOI (libjpeg-turbo reads past the last MCU, so even a missing EOI counts as
 * truncated). PNG follows libpng's CRC policy (a bad CRC on a critical chunk is an error, an
 * ancillary chunk with a bad CRC is dropped); every PNG ancillary chunk except tRNS is skipped
 * unread (no colour management: gAMA/iCCP are ignored, as PIL does). A truncated JPEG is an
 * error (not grey-filled), libjpeg's other corrupt-data warnings are not; a JPEG with more
 * than 100 progressive scans is refused (CPU bomb); animated WebP is refused.
 * Libraries never write to stderr: their errors become messages here.
 *
 * Errors: -ISD_E_INVALID_IMAGE for undecodable or unsupported input (message says why, without
 * an image index: the API layer adds "for image N"), -ISD_E_INVALID_VALUE when the image is
 * over the limits, -ISD_E_NOMEM, and whatever the sink returns (encode_buf: -ISD_E_TOO_LARGE
 * past the buffer's ceiling).
 * Threading: every call is independent and thread-safe (no shared state).
 *
 *     struct isd_encode_opts o = {.format = ISD_FMT_PNG, .compression = 100, .keep_alpha = 1};
 *     struct isd_buf png; isd_buf_init(&png, 64 << 20);
 *     if (isd_codec_encode_buf(img, &o, &png, &err) < 0) ...
 *
 *     struct isd_decode_limits lim = {.max_side = 4096, .max_pixels = 16u << 20};
 *     struct isd_image *im;
 *     if (isd_codec_decode(bytes, n, &lim, &im, &err) < 0) ...
 */
#ifndef ISD_CODEC_H
#define ISD_CODEC_H

#include "buf/buf.h"
#include "err/err.h"
#include "image/image.h"

#include <stdbool.h>
#include <stddef.h>

#define ISD_CODEC_PNG_LEVEL 1 /* zlib level for PNG (see above: irrelevant under Z_RLE) */
#define ISD_CODEC_WEBP_METHOD                                                                      \
    4 /* libwebp effort 0..6; 3 and 4 gave the same size and time                                  \
         here, 0..2 are ~2x faster but 25-40% larger */

enum isd_format { ISD_FMT_PNG = 0, ISD_FMT_JPEG, ISD_FMT_WEBP, ISD_FMT_UNKNOWN };

/* Static strings; ISD_FMT_UNKNOWN (or any other value) gives "unknown",
 * "application/octet-stream" and "bin". */
const char *isd_format_name(enum isd_format f); /* "png", "jpeg", "webp" */
const char *isd_format_mime(enum isd_format f); /* "image/png", "image/jpeg", "image/webp" */
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

/* Encodes img as opts says, in order, through sink (in pieces of up to 32 KiB, or larger ones
 * straight from the encoder). On failure the sink may already have received part of a file.
 * Invalid opts (format, compression outside 0..100) give -ISD_E_INVALID_VALUE. */
int isd_codec_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                     isd_sink_fn sink, void *ctx, struct isd_error *err);
/* Appends the encoded file to out; on failure out keeps its previous contents. */
int isd_codec_encode_buf(const struct isd_image *img, const struct isd_encode_opts *opts,
                         struct isd_buf *out, struct isd_error *err);

/* What the header says, before decoding pixels. */
struct isd_image_info {
    enum isd_format format;
    int width;
    int height;
    int channels;     /* stored: 1 grey/palette, 2 grey+alpha, 3 RGB/YCbCr, 4 RGBA/CMYK */
    bool has_alpha;   /* an alpha channel, or a tRNS chunk (good CRC) before the first IDAT;
                         decoding reports libpng's view, which may differ for a misplaced tRNS */
    const char *mode; /* PIL's mode name (static string), see below */
};
/* Modes as PIL names them. PNG: grey 1-bit "1", 2..8-bit "L", 16-bit "I;16"; RGB "RGB";
 * palette "P" (with or without tRNS); grey+alpha "LA" (16-bit: "RGBA", PIL's quirk; channels
 * stays 2); RGBA "RGBA". JPEG: "L", "RGB" (YCbCr or RGB), "CMYK" (CMYK or YCCK). WebP: "RGB"
 * or "RGBA". */

/* Sniffs the format from magic bytes: PNG, JPEG, WebP (RIFF....WEBP), else ISD_FMT_UNKNOWN. */
enum isd_format isd_codec_sniff(const void *data, size_t n);
/* Reads only headers (PNG: signature, IHDR and the chunks before the first IDAT, for tRNS;
 * JPEG: markers up to the first SOS; WebP: the RIFF/VP8X header). 0, or -ISD_E_INVALID_IMAGE
 * for an empty, unknown, truncated or corrupt header (the data need not be complete). */
int isd_codec_probe(const void *data, size_t n, struct isd_image_info *info, struct isd_error *err);

/* The effective limits are never above the image module's ceilings (ISD_IMAGE_MAX_SIDE,
 * ISD_IMAGE_MAX_PIXELS); a 0 field, or a NULL limits pointer, means those ceilings. */
struct isd_decode_limits {
    int max_side;             /* largest width or height accepted */
    unsigned long max_pixels; /* largest width * height accepted */
};

/* Probes, checks the limits (-ISD_E_INVALID_VALUE, before any pixel memory is allocated),
 * then decodes to RGBA8 (has_alpha set from the file: true when it has an alpha channel or
 * transparency). The caller frees *out with isd_image_free(); *out is NULL on failure. */
int isd_codec_decode(const void *data, size_t n, const struct isd_decode_limits *limits,
                     struct isd_image **out, struct isd_error *err);

#endif
