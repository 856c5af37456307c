/* codec: names, sniffing, round trips per format, compression mapping, sinks, limits. */
#include "support/test.h"

#include "codec/codec.h"
#include "codec_fixtures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W 256
#define H 192

/* Error of b against a; PSNR in dB. */
struct diff {
    double mae;  /* mean absolute error */
    double psnr; /* 10 log10(255^2 / mse) */
    int max;     /* largest absolute error */
};

enum { CMP_RGB, CMP_ALPHA, CMP_LUMA };
enum {
    CMP_ALL = 0,
    CMP_VISIBLE = 1,  /* skip pixels with alpha 0 in a (their RGB may legally change) */
    CMP_INTERIOR = 2, /* only pixels 3+ away from the checkerboard edges of fx_test_image */
};

static bool interior(int x, int y)
{
    return x % 16 >= 3 && x % 16 <= 12 && y % 16 >= 3 && y % 16 <= 12;
}

static struct diff compare(const struct isd_image *a, const struct isd_image *b, int what,
                           int where)
{
    double sum = 0, sq = 0;
    long count = 0;
    double max = 0;
    for (int y = 0; y < a->height; y++) {
        for (int x = 0; x < a->width; x++) {
            const uint8_t *p = isd_image_px(a, x, y), *q = isd_image_px(b, x, y);
            if (((where & CMP_VISIBLE) && p[3] == 0) || ((where & CMP_INTERIOR) && !interior(x, y)))
                continue;
            double d[3];
            int n = 0;
            if (what == CMP_RGB) {
                for (int c = 0; c < 3; c++)
                    d[n++] = fabs((double)p[c] - (double)q[c]);
            } else if (what == CMP_ALPHA) {
                d[n++] = fabs((double)p[3] - (double)q[3]);
            } else {
                d[n++] =
                    fabs(0.299 * (p[0] - q[0]) + 0.587 * (p[1] - q[1]) + 0.114 * (p[2] - q[2]));
            }
            for (int i = 0; i < n; i++) {
                sum += d[i];
                sq += d[i] * d[i];
                max = d[i] > max ? d[i] : max;
                count++;
            }
        }
    }
    struct diff r = {sum / (double)count, 99.0, (int)lrint(max)};
    if (sq > 0)
        r.psnr = 10.0 * log10(255.0 * 255.0 / (sq / (double)count));
    return r;
}

static struct isd_image *decode_ok(const struct isd_buf *b)
{
    struct isd_error err = {0};
    struct isd_image *im = NULL;
    int rc = isd_codec_decode(b->data, b->len, NULL, &im, &err);
    if (rc < 0)
        fprintf(stderr, "decode: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_non_null(im);
    return im;
}

static void probe_ok(const struct isd_buf *b, struct isd_image_info *info)
{
    struct isd_error err = {0};
    assert_int_equal(isd_codec_probe(b->data, b->len, info, &err), 0);
}

static void names_and_parse(void **state)
{
    (void)state;
    enum isd_format f = ISD_FMT_UNKNOWN;
    assert_string_equal(isd_format_name(ISD_FMT_PNG), "png");
    assert_string_equal(isd_format_name(ISD_FMT_JPEG), "jpeg");
    assert_string_equal(isd_format_name(ISD_FMT_WEBP), "webp");
    assert_string_equal(isd_format_name(ISD_FMT_UNKNOWN), "unknown");
    assert_string_equal(isd_format_mime(ISD_FMT_PNG), "image/png");
    assert_string_equal(isd_format_mime(ISD_FMT_JPEG), "image/jpeg");
    assert_string_equal(isd_format_mime(ISD_FMT_WEBP), "image/webp");
    assert_string_equal(isd_format_ext(ISD_FMT_JPEG), "jpg");
    assert_string_equal(isd_format_ext(ISD_FMT_WEBP), "webp");
    assert_string_equal(isd_format_ext((enum isd_format)42), "bin");
    assert_int_equal(isd_format_parse("jpeg", &f), 0);
    assert_int_equal(f, ISD_FMT_JPEG);
    assert_int_equal(isd_format_parse("webp", &f), 0);
    assert_int_equal(f, ISD_FMT_WEBP);
    assert_int_equal(isd_format_parse("png", &f), 0);
    assert_int_equal(f, ISD_FMT_PNG);
    assert_int_equal(isd_format_parse("jpg", &f), -ISD_E_INVALID_VALUE);
    assert_int_equal(isd_format_parse("PNG", &f), -ISD_E_INVALID_VALUE);
    assert_int_equal(isd_format_parse("", &f), -ISD_E_INVALID_VALUE);
    assert_int_equal(isd_format_parse(NULL, &f), -ISD_E_INVALID_VALUE);
}

static void sniff_magic(void **state)
{
    (void)state;
    assert_int_equal(isd_codec_sniff("\x89PNG\r\n\x1a\n", 8), ISD_FMT_PNG);
    assert_int_equal(isd_codec_sniff("\x89PNG\r\n\x1a", 7), ISD_FMT_UNKNOWN);
    assert_int_equal(isd_codec_sniff("\xff\xd8\xff\xe0", 4), ISD_FMT_JPEG);
    assert_int_equal(isd_codec_sniff("\xff\xd8", 2), ISD_FMT_UNKNOWN);
    assert_int_equal(isd_codec_sniff("RIFF\x10\0\0\0WEBPVP8 ", 16), ISD_FMT_WEBP);
    assert_int_equal(isd_codec_sniff("RIFF\x10\0\0\0WAVEfmt ", 16), ISD_FMT_UNKNOWN);
    assert_int_equal(isd_codec_sniff("GIF89a", 6), ISD_FMT_UNKNOWN);
    assert_int_equal(isd_codec_sniff("", 0), ISD_FMT_UNKNOWN);
}

static void png_round_trip_exact(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(W, H, true);
    struct isd_buf b;
    assert_true(fx_encode(src, ISD_FMT_PNG, 100, true, &b) > 0);
    assert_int_equal(isd_codec_sniff(b.data, b.len), ISD_FMT_PNG);
    struct isd_image_info info;
    probe_ok(&b, &info);
    assert_int_equal(info.format, ISD_FMT_PNG);
    assert_int_equal(info.width, W);
    assert_int_equal(info.height, H);
    assert_int_equal(info.channels, 4);
    assert_true(info.has_alpha);
    assert_string_equal(info.mode, "RGBA");
    struct isd_image *out = decode_ok(&b);
    assert_int_equal(out->width, W);
    assert_int_equal(out->height, H);
    assert_true(out->has_alpha);
    assert_memory_equal(out->rgba, src->rgba, (size_t)W * H * 4);
    isd_image_free(out);
    isd_image_free(src);
    isd_buf_release(&b);
}

static void png_without_alpha_is_rgb(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(W, H, true);
    struct isd_buf b;
    assert_true(fx_encode(src, ISD_FMT_PNG, 100, false, &b) > 0);
    struct isd_image_info info;
    probe_ok(&b, &info);
    assert_int_equal(info.channels, 3);
    assert_false(info.has_alpha);
    assert_string_equal(info.mode, "RGB");
    struct isd_image *out = decode_ok(&b);
    assert_false(out->has_alpha);
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            assert_memory_equal(isd_image_px(out, x, y), isd_image_px(src, x, y), 3);
            assert_int_equal(isd_image_px(out, x, y)[3], 255);
        }
    }
    isd_image_free(out);
    isd_image_free(src);
    isd_buf_release(&b);
}

/* keep_alpha means 4 channels even when every pixel is opaque. */
static void png_keep_alpha_on_opaque_image(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(64, 64, false);
    struct isd_buf b;
    assert_true(fx_encode(src, ISD_FMT_PNG, 100, true, &b) > 0);
    struct isd_image_info info;
    probe_ok(&b, &info);
    assert_int_equal(info.channels, 4);
    assert_true(info.has_alpha);
    struct isd_image *out = decode_ok(&b);
    assert_true(out->has_alpha); /* the file has an alpha channel, even if all 255 */
    assert_memory_equal(out->rgba, src->rgba, 64 * 64 * 4);
    isd_image_free(out);
    isd_image_free(src);
    isd_buf_release(&b);
}

/* q90 is 4:4:4. Measured on this image (libjpeg-turbo 2.1.5): RGB PSNR 50.9 dB, MAE 0.48,
 * luma PSNR 55.2 dB, max error 3 away from the checkerboard edges. Asserted with margin: RGB
 * PSNR >= 44, MAE <= 1.5, luma PSNR >= 48, interior max error <= 8. */
static void jpeg_round_trip_q90(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(W, H, true);
    struct isd_buf b;
    assert_true(fx_encode(src, ISD_FMT_JPEG, 90, true, &b) > 0);
    assert_int_equal(isd_codec_sniff(b.data, b.len), ISD_FMT_JPEG);
    struct isd_image_info info;
    probe_ok(&b, &info);
    assert_int_equal(info.width, W);
    assert_int_equal(info.height, H);
    assert_int_equal(info.channels, 3);
    assert_false(info.has_alpha);
    assert_string_equal(info.mode, "RGB");
    struct isd_image *out = decode_ok(&b);
    assert_false(out->has_alpha);
    for (size_t i = 0; i < (size_t)W * H; i++)
        assert_int_equal(out->rgba[4 * i + 3], 255);
    struct diff rgb = compare(src, out, CMP_RGB, CMP_ALL);
    struct diff luma = compare(src, out, CMP_LUMA, CMP_ALL);
    struct diff in = compare(src, out, CMP_RGB, CMP_INTERIOR);
    print_message("# jpeg q90: rgb psnr %.2f mae %.2f, luma psnr %.2f, interior max %d\n", rgb.psnr,
                  rgb.mae, luma.psnr, in.max);
    assert_true(rgb.psnr >= 44.0);
    assert_true(rgb.mae <= 1.5);
    assert_true(luma.psnr >= 48.0);
    assert_true(in.max <= 8);
    isd_image_free(out);
    isd_image_free(src);
    isd_buf_release(&b);
}

/* Lossy q100 is 4:2:0: the saturated blue checkerboard edges of the test image lose chroma
 * (RGB PSNR measured 27.0 dB over visible pixels, libwebp 1.2.4), while luma (50.6 dB) and
 * areas away from those edges (max error 8) are near-exact; the alpha plane is lossless.
 * Asserted: alpha exact, luma PSNR >= 44, interior max error <= 14, RGB PSNR >= 24, all over
 * visible pixels. */
static void webp_round_trip_q100(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(W, H, true);
    struct isd_buf b;
    assert_true(fx_encode(src, ISD_FMT_WEBP, 100, true, &b) > 0);
    assert_int_equal(isd_codec_sniff(b.data, b.len), ISD_FMT_WEBP);
    struct isd_image_info info;
    probe_ok(&b, &info);
    assert_int_equal(info.width, W);
    assert_int_equal(info.height, H);
    assert_int_equal(info.channels, 4);
    assert_true(info.has_alpha);
    assert_string_equal(info.mode, "RGBA");
    struct isd_image *out = decode_ok(&b);
    assert_true(out->has_alpha);
    struct diff alpha = compare(src, out, CMP_ALPHA, CMP_ALL);
    struct diff rgb = compare(src, out, CMP_RGB, CMP_VISIBLE);
    struct diff luma = compare(src, out, CMP_LUMA, CMP_VISIBLE);
    struct diff in = compare(src, out, CMP_RGB, CMP_VISIBLE | CMP_INTERIOR);
    print_message("# webp q100: rgb psnr %.2f, luma psnr %.2f, interior max %d, alpha max %d\n",
                  rgb.psnr, luma.psnr, in.max, alpha.max);
    assert_int_equal(alpha.max, 0);
    assert_true(luma.psnr >= 44.0);
    assert_true(in.max <= 14);
    assert_true(rgb.psnr >= 24.0);
    isd_image_free(out);
    isd_image_free(src);
    isd_buf_release(&b);
}

static void webp_without_alpha_is_rgb(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(W, H, true);
    struct isd_buf b;
    assert_true(fx_encode(src, ISD_FMT_WEBP, 80, false, &b) > 0);
    struct isd_image_info info;
    probe_ok(&b, &info);
    assert_int_equal(info.channels, 3);
    assert_false(info.has_alpha);
    assert_string_equal(info.mode, "RGB");
    struct isd_image *out = decode_ok(&b);
    assert_false(out->has_alpha);
    for (size_t i = 0; i < (size_t)W * H; i++)
        assert_int_equal(out->rgba[4 * i + 3], 255);
    isd_image_free(out);
    isd_image_free(src);
    isd_buf_release(&b);
}

static void compression_is_monotonic(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(W, H, true);
    enum isd_format fmts[] = {ISD_FMT_JPEG, ISD_FMT_WEBP};
    for (int f = 0; f < 2; f++) {
        size_t size[3];
        int levels[3] = {10, 50, 100};
        for (int i = 0; i < 3; i++) {
            struct isd_buf b;
            size[i] = fx_encode(src, fmts[f], levels[i], true, &b);
            assert_true(size[i] > 0);
            isd_buf_release(&b);
        }
        assert_true(size[0] < size[1]);
        assert_true(size[1] < size[2]);
    }
    /* compression 0 is legal (JPEG quality 1, WebP quality 0) */
    struct isd_buf b;
    assert_true(fx_encode(src, ISD_FMT_JPEG, 0, false, &b) > 0);
    isd_buf_release(&b);
    assert_true(fx_encode(src, ISD_FMT_WEBP, 0, false, &b) > 0);
    isd_buf_release(&b);
    isd_image_free(src);
}

/* A sink that records every call into a buffer, optionally failing after `fail_after` bytes. */
struct rec_sink {
    struct isd_buf bytes;
    int calls;
    size_t fail_after;
    int fail_rc;
};

static int rec_write(void *ctx, const void *data, size_t n)
{
    struct rec_sink *s = ctx;
    s->calls++;
    if (s->fail_rc && s->bytes.len + n > s->fail_after)
        return s->fail_rc;
    return isd_buf_append(&s->bytes, data, n);
}

/* The sink sees the same bytes as encode_buf, in few large pieces. */
static void sink_gets_whole_stream(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(512, 512, true);
    enum isd_format fmts[] = {ISD_FMT_PNG, ISD_FMT_JPEG, ISD_FMT_WEBP};
    for (int f = 0; f < 3; f++) {
        struct isd_buf ref;
        assert_true(fx_encode(src, fmts[f], 90, true, &ref) > 0);
        struct rec_sink s = {.fail_rc = 0};
        isd_buf_init(&s.bytes, 64u << 20);
        struct isd_error err = {0};
        struct isd_encode_opts o = {.format = fmts[f], .compression = 90, .keep_alpha = true};
        assert_int_equal(isd_codec_encode(src, &o, rec_write, &s, &err), 0);
        assert_int_equal(s.bytes.len, ref.len);
        assert_memory_equal(s.bytes.data, ref.data, ref.len);
        /* staging: at most one call per 16 KiB of output, plus a few */
        assert_true((size_t)s.calls <= ref.len / 16384 + 4);
        isd_buf_release(&s.bytes);
        isd_buf_release(&ref);
    }
    isd_image_free(src);
}

static void sink_error_stops_encoding(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(512, 512, true);
    enum isd_format fmts[] = {ISD_FMT_PNG, ISD_FMT_JPEG, ISD_FMT_WEBP};
    for (int f = 0; f < 3; f++) {
        struct isd_buf ref;
        assert_true(fx_encode(src, fmts[f], 100, true, &ref) > 2000);
        size_t fail_points[] = {0, 1000, ref.len / 2, ref.len - 1};
        isd_buf_release(&ref);
        for (int k = 0; k < 4; k++) {
            struct rec_sink s = {.fail_after = fail_points[k], .fail_rc = -ISD_E_IO};
            isd_buf_init(&s.bytes, 64u << 20);
            struct isd_error err = {0};
            struct isd_encode_opts o = {.format = fmts[f], .compression = 100, .keep_alpha = 1};
            assert_int_equal(isd_codec_encode(src, &o, rec_write, &s, &err), -ISD_E_IO);
            assert_int_equal(err.id, ISD_E_IO);
            assert_true(s.bytes.len <= fail_points[k]);
            isd_buf_release(&s.bytes);
        }
    }
    isd_image_free(src);
}

static void encode_buf_ceiling_leaves_buffer(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(W, H, true);
    struct isd_buf b;
    isd_buf_init(&b, 2000);
    assert_int_equal(isd_buf_append(&b, "prefix", 6), 0);
    struct isd_error err = {0};
    struct isd_encode_opts o = {.format = ISD_FMT_PNG, .compression = 100, .keep_alpha = true};
    assert_int_equal(isd_codec_encode_buf(src, &o, &b, &err), -ISD_E_TOO_LARGE);
    assert_int_equal(err.id, ISD_E_TOO_LARGE);
    assert_non_null(strstr(err.message, "2000"));
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "prefix");
    isd_buf_release(&b);
    isd_image_free(src);
}

static void encode_bad_arguments(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(16, 16, false);
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    struct isd_error err = {0};
    struct isd_encode_opts o = {.format = ISD_FMT_UNKNOWN, .compression = 100};
    assert_int_equal(isd_codec_encode_buf(src, &o, &b, &err), -ISD_E_INVALID_VALUE);
    o.format = ISD_FMT_JPEG;
    o.compression = 101;
    assert_int_equal(isd_codec_encode_buf(src, &o, &b, &err), -ISD_E_INVALID_VALUE);
    o.compression = -1;
    assert_int_equal(isd_codec_encode_buf(src, &o, &b, &err), -ISD_E_INVALID_VALUE);
    assert_int_equal(b.len, 0);
    isd_image_free(src);
    /* WebP stops at 16383 pixels per side */
    struct isd_image *wide = isd_image_new(16384, 1, &err);
    assert_non_null(wide);
    o.format = ISD_FMT_WEBP;
    o.compression = 50;
    assert_int_equal(isd_codec_encode_buf(wide, &o, &b, &err), -ISD_E_INVALID_VALUE);
    o.format = ISD_FMT_PNG; /* PNG and JPEG take it */
    o.compression = 100;
    assert_int_equal(isd_codec_encode_buf(wide, &o, &b, &err), 0);
    struct isd_image *back = decode_ok(&b);
    assert_int_equal(back->width, 16384);
    isd_image_free(back);
    isd_image_free(wide);
    isd_buf_release(&b);
}

static void decode_limits(void **state)
{
    (void)state;
    struct isd_image *src = fx_test_image(300, 200, false);
    enum isd_format fmts[] = {ISD_FMT_PNG, ISD_FMT_JPEG, ISD_FMT_WEBP};
    for (int f = 0; f < 3; f++) {
        struct isd_buf b;
        assert_true(fx_encode(src, fmts[f], 90, false, &b) > 0);
        struct isd_error err = {0};
        struct isd_image *im = (struct isd_image *)&err; /* must be reset to NULL */
        struct isd_decode_limits side = {.max_side = 299, .max_pixels = 1000000};
        assert_int_equal(isd_codec_decode(b.data, b.len, &side, &im, &err), -ISD_E_INVALID_VALUE);
        assert_null(im);
        assert_non_null(strstr(err.message, "300x200"));
        struct isd_decode_limits pixels = {.max_side = 300, .max_pixels = 59999};
        assert_int_equal(isd_codec_decode(b.data, b.len, &pixels, &im, &err), -ISD_E_INVALID_VALUE);
        struct isd_decode_limits exact = {.max_side = 300, .max_pixels = 60000};
        assert_int_equal(isd_codec_decode(b.data, b.len, &exact, &im, &err), 0);
        isd_image_free(im);
        struct isd_decode_limits zero = {0}; /* 0 = the image module's ceilings */
        assert_int_equal(isd_codec_decode(b.data, b.len, &zero, &im, &err), 0);
        isd_image_free(im);
        isd_buf_release(&b);
    }
    isd_image_free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_and_parse),
        cmocka_unit_test(sniff_magic),
        cmocka_unit_test(png_round_trip_exact),
        cmocka_unit_test(png_without_alpha_is_rgb),
        cmocka_unit_test(png_keep_alpha_on_opaque_image),
        cmocka_unit_test(jpeg_round_trip_q90),
        cmocka_unit_test(webp_round_trip_q100),
        cmocka_unit_test(webp_without_alpha_is_rgb),
        cmocka_unit_test(compression_is_monotonic),
        cmocka_unit_test(sink_gets_whole_stream),
        cmocka_unit_test(sink_error_stops_encoding),
        cmocka_unit_test(encode_buf_ceiling_leaves_buffer),
        cmocka_unit_test(encode_bad_arguments),
        cmocka_unit_test(decode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
