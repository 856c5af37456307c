/*
 * JPEG through libjpeg-turbo's libjpeg API: probe (jpeg_read_header only), decode to RGBA8
 * (grey and YCbCr straight to RGBA by the library, CMYK/YCCK converted here), encode from
 * RGBA8 (JCS_EXT_RGBA input, no conversion copy) writing into the sink's staging buffer.
 *
 * libjpeg reports errors through error_exit, which we make record the message and longjmp.
 * Each setjmp lives in a small function that only reads its arguments; the caller owns the
 * jpeg struct and destroys it on every path. Warnings are swallowed, except a premature end
 * of data, which is an error here (a truncated upload is refused, not grey-filled).
 */
#include "codec/codec_int.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* A progressive file can make the decoder walk the whole image once per scan; real encoders
 * write about 10 scans. More than this is refused as a CPU bomb (libjpeg-turbo's tools use a
 * similar cap). */
#define JPEG_MAX_SCANS 100

_Static_assert(sizeof(size_t) <= sizeof(unsigned long), "jpeg_mem_src takes an unsigned long");

struct jpeg_err {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to it */
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
};

static void jpeg_fail(j_common_ptr cinfo)
{
    struct jpeg_err *je = (struct jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, je->msg);
    longjmp(je->jmp, 1);
}

static void jpeg_fail_with(j_common_ptr cinfo, const char *msg)
{
    struct jpeg_err *je = (struct jpeg_err *)cinfo->err;
    snprintf(je->msg, sizeof je->msg, "%s", msg);
    longjmp(je->jmp, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level >= 0)
        return; /* trace messages */
    if (cinfo->err->msg_code == JWRN_JPEG_EOF)
        jpeg_fail_with(cinfo, "the file is truncated");
    cinfo->err->num_warnings++; /* other corrupt-data warnings: decode on, quietly */
}

static void jpeg_quiet(j_common_ptr cinfo)
{
    (void)cinfo;
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS)
        jpeg_fail_with(cinfo, "too many progressive scans");
}

static void jpeg_err_init(struct jpeg_err *je)
{
    jpeg_std_error(&je->pub);
    je->pub.error_exit = jpeg_fail;
    je->pub.emit_message = jpeg_on_message;
    je->pub.output_message = jpeg_quiet;
    snprintf(je->msg, sizeof je->msg, "libjpeg error");
}

static int bad_jpeg(struct isd_error *err, const char *why)
{
    return isd_err_set(err, ISD_E_INVALID_IMAGE, NULL, "invalid JPEG image: %s", why);
}

/* ---- probing ---- */

static int jpeg_header_at(j_decompress_ptr cinfo, struct jpeg_err *je, const uint8_t *data,
                          size_t n)
{
    if (setjmp(je->jmp))
        return -1;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)n);
    jpeg_read_header(cinfo, TRUE);
    return 0;
}

static const char *jpeg_mode(int components)
{
    return components == 1 ? "L" : components == 3 ? "RGB" : components == 4 ? "CMYK" : NULL;
}

int isd_codec_jpeg_probe(const uint8_t *data, size_t n, struct isd_image_info *info,
                         struct isd_error *err)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_err je;
    memset(&cinfo, 0, sizeof cinfo);
    jpeg_err_init(&je);
    cinfo.err = &je.pub;
    int rc = 0;
    if (jpeg_header_at(&cinfo, &je, data, n) < 0) {
        rc = bad_jpeg(err, je.msg);
        goto out;
    }
    const char *mode = jpeg_mode(cinfo.num_components);
    if (!mode) {
        rc = isd_err_set(err, ISD_E_INVALID_IMAGE, NULL,
                         "unsupported JPEG image: %d colour components", cinfo.num_components);
        goto out;
    }
    info->format = ISD_FMT_JPEG;
    info->width = (int)cinfo.image_width;
    info->height = (int)cinfo.image_height;
    info->channels = cinfo.num_components;
    info->has_alpha = false;
    info->mode = mode;
out:
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

/* ---- decoding ---- */

static uint8_t mul255(unsigned a, unsigned b)
{
    return (uint8_t)((a * b + 127) / 255);
}

/* CMYK (4 bytes per pixel, in place) to RGBA. Adobe (Photoshop) files store inverted values,
 * so the ink-free channel is 255 - ink already; plain CMYK is inverted here. */
static void cmyk_row_to_rgba(uint8_t *p, int width, bool inverted)
{
    for (int x = 0; x < width; x++, p += 4) {
        unsigned c = p[0], m = p[1], y = p[2], k = p[3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        p[0] = mul255(c, k);
        p[1] = mul255(m, k);
        p[2] = mul255(y, k);
        p[3] = 255;
    }
}

static int jpeg_decode_rows(j_decompress_ptr cinfo, struct jpeg_err *je,
                            struct jpeg_progress_mgr *progress, const uint8_t *data, size_t n,
                            struct isd_image *img)
{
    if (setjmp(je->jmp))
        return -1;
    jpeg_create_decompress(cinfo);
    cinfo->progress = progress;
    jpeg_mem_src(cinfo, data, (unsigned long)n);
    jpeg_read_header(cinfo, TRUE);
    if (cinfo->image_width != (JDIMENSION)img->width ||
        cinfo->image_height != (JDIMENSION)img->height || !jpeg_mode(cinfo->num_components))
        jpeg_fail_with((j_common_ptr)cinfo, "header differs from the probe");
    bool cmyk = cinfo->num_components == 4;
    cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGBA;
    jpeg_start_decompress(cinfo);
    if (cinfo->output_width != (JDIMENSION)img->width ||
        cinfo->output_height != (JDIMENSION)img->height || cinfo->output_components != 4)
        jpeg_fail_with((j_common_ptr)cinfo, "unexpected output layout");
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = isd_image_px(img, 0, (int)cinfo->output_scanline);
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1)
            jpeg_fail_with((j_common_ptr)cinfo, "decoder stalled");
        if (cmyk)
            cmyk_row_to_rgba(row, img->width, cinfo->saw_Adobe_marker);
    }
    /* No jpeg_finish_decompress(): every row is out; a missing EOI or trailing bytes are
     * tolerated. */
    return 0;
}

int isd_codec_jpeg_decode(const uint8_t *data, size_t n, struct isd_image *img,
                          struct isd_error *err)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_err je;
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_on_progress};
    memset(&cinfo, 0, sizeof cinfo);
    jpeg_err_init(&je);
    cinfo.err = &je.pub;
    int rc = 0;
    if (jpeg_decode_rows(&cinfo, &je, &progress, data, n, img) < 0)
        rc = bad_jpeg(err, je.msg);
    else
        img->has_alpha = false;
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

/* ---- encoding ---- */

/* The destination writes straight into the sink's staging buffer. */
struct jpeg_dest {
    struct jpeg_destination_mgr pub; /* first */
    struct isd_codec_out *out;
};

static void jpeg_dest_init(j_compress_ptr cinfo)
{
    struct jpeg_dest *d = (struct jpeg_dest *)cinfo->dest;
    if (isd_codec_out_flush(d->out) < 0)
        jpeg_fail_with((j_common_ptr)cinfo, "output sink failed");
    d->pub.next_output_byte = d->out->stage;
    d->pub.free_in_buffer = sizeof d->out->stage;
}

static boolean jpeg_dest_empty(j_compress_ptr cinfo)
{
    struct jpeg_dest *d = (struct jpeg_dest *)cinfo->dest;
    d->out->used = sizeof d->out->stage; /* libjpeg only calls this when the buffer is full */
    jpeg_dest_init(cinfo);
    return TRUE;
}

static void jpeg_dest_term(j_compress_ptr cinfo)
{
    struct jpeg_dest *d = (struct jpeg_dest *)cinfo->dest;
    d->out->used = sizeof d->out->stage - d->pub.free_in_buffer; /* flushed by the caller */
}

static int jpeg_encode_rows(j_compress_ptr cinfo, struct jpeg_err *je, struct jpeg_dest *dest,
                            const struct isd_image *img, int quality)
{
    if (setjmp(je->jmp))
        return -1;
    jpeg_create_compress(cinfo);
    cinfo->dest = &dest->pub;
    cinfo->image_width = (JDIMENSION)img->width;
    cinfo->image_height = (JDIMENSION)img->height;
    cinfo->input_components = 4;
    cinfo->in_color_space = JCS_EXT_RGBA; /* alpha ignored */
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    cinfo->optimize_coding = TRUE;
    if (quality >= 90) { /* 4:4:4; the defaults are 4:2:0 */
        cinfo->comp_info[0].h_samp_factor = 1;
        cinfo->comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(cinfo, TRUE);
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = (JSAMPROW)isd_image_px(img, 0, (int)cinfo->next_scanline);
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    return 0;
}

int isd_codec_jpeg_encode(const struct isd_image *img, const struct isd_encode_opts *opts,
                          struct isd_codec_out *out, struct isd_error *err)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_err je;
    struct jpeg_dest dest = {.pub = {.init_destination = jpeg_dest_init,
                                     .empty_output_buffer = jpeg_dest_empty,
                                     .term_destination = jpeg_dest_term},
                             .out = out};
    memset(&cinfo, 0, sizeof cinfo);
    jpeg_err_init(&je);
    cinfo.err = &je.pub;
    int quality = opts->compression < 1 ? 1 : opts->compression;
    int rc = 0;
    if (jpeg_encode_rows(&cinfo, &je, &dest, img, quality) < 0)
        rc = out->rc < 0 ? out->rc
                         : isd_err_set(err, ISD_E_INTERNAL, NULL, "JPEG encoder: %s", je.msg);
    jpeg_destroy_compress(&cinfo);
    return rc;
}
