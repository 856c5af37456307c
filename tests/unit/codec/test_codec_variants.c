/* codec: probe results (PIL modes) and decoded pixels for every PNG colour type and depth,
 * JPEG grey/RGB/CMYK/progressive, WebP lossy/lossless with and without alpha. The files are
 * written by libpng/libjpeg/libwebp directly, not by our encoder. */
#include "support/test.h"

#include "codec/codec.h"
#include "codec_fixtures.h"

#include <stdlib.h>
#include <string.h>

#define PW 37 /* odd sizes exercise bit packing and the Adam7 passes */
#define PH 23

struct png_case {
    int color_type, depth, interlace;
    bool trns;
    const char *mode;
    int channels;
    bool has_alpha;
};

static const struct png_case png_cases[] = {
    {0, 1, 0, false, "1", 1, false},     {0, 2, 0, false, "L", 1, false},
    {0, 4, 0, false, "L", 1, false},     {0, 8, 0, false, "L", 1, false},
    {0, 16, 0, false, "I;16", 1, false}, {0, 8, 0, true, "L", 1, true},
    {0, 16, 0, true, "I;16", 1, true},   {2, 8, 0, false, "RGB", 3, false},
    {2, 16, 0, false, "RGB", 3, false},  {2, 8, 0, true, "RGB", 3, true},
    {3, 1, 0, false, "P", 1, false},     {3, 2, 0, false, "P", 1, false},
    {3, 4, 0, false, "P", 1, false},     {3, 8, 0, false, "P", 1, false},
    {3, 8, 0, true, "P", 1, true},       {3, 4, 0, true, "P", 1, true},
    {4, 8, 0, false, "LA", 2, true},     {4, 16, 0, false, "RGBA", 2, true},
    {6, 8, 0, false, "RGBA", 4, true},   {6, 16, 0, false, "RGBA", 4, true},
    {2, 8, 1, false, "RGB", 3, false},   {6, 8, 1, false, "RGBA", 4, true},
    {0, 4, 1, false, "L", 1, false},     {3, 2, 1, true, "P", 1, true},
    {4, 16, 1, false, "RGBA", 2, true},
};

static void png_every_colour_type(void **state)
{
    (void)state;
    uint8_t *expect = malloc((size_t)PW * PH * 4);
    for (size_t i = 0; i < sizeof png_cases / sizeof png_cases[0]; i++) {
        const struct png_case *c = &png_cases[i];
        print_message("# png colour type %d depth %d interlace %d trns %d\n", c->color_type,
                      c->depth, c->interlace, c->trns);
        struct isd_buf b;
        assert_int_equal(fx_png(&b, PW, PH, c->color_type, c->depth, c->interlace, c->trns, expect),
                         0);
        struct isd_error err = {0};
        struct isd_image_info info;
        assert_int_equal(isd_codec_probe(b.data, b.len, &info, &err), 0);
        assert_int_equal(info.format, ISD_FMT_PNG);
        assert_int_equal(info.width, PW);
        assert_int_equal(info.height, PH);
        assert_string_equal(info.mode, c->mode);
        assert_int_equal(info.channels, c->channels);
        assert_int_equal(info.has_alpha, c->has_alpha);

        struct isd_image *im = NULL;
        assert_int_equal(isd_codec_decode(b.data, b.len, NULL, &im, &err), 0);
        assert_int_equal(im->width, PW);
        assert_int_equal(im->height, PH);
        assert_int_equal(im->has_alpha, c->has_alpha);
        assert_memory_equal(im->rgba, expect, (size_t)PW * PH * 4);
        isd_image_free(im);
        isd_buf_release(&b);
    }
    free(expect);
}

/* The probe reads headers only: the first chunks are enough, pixels need not be there. */
static void png_probe_needs_only_headers(void **state)
{
    (void)state;
    struct isd_buf b;
    assert_int_equal(fx_png(&b, PW, PH, 3, 8, 0, true, NULL), 0);
    size_t idat = fx_png_find((const uint8_t *)b.data, b.len, "IDAT");
    assert_true(idat > 33);
    struct isd_error err = {0};
    struct isd_image_info info;
    assert_int_equal(isd_codec_probe(b.data, idat, &info, &err), 0);
    assert_true(info.has_alpha); /* tRNS precedes IDAT */
    assert_int_equal(isd_codec_probe(b.data, 33, &info, &err), 0);
    assert_int_equal(info.width, PW);
    assert_false(info.has_alpha); /* tRNS not seen: only IHDR was given */
    assert_int_equal(isd_codec_probe(b.data, 32, &info, &err), -ISD_E_INVALID_IMAGE);
    isd_buf_release(&b);
}

/* q100 JPEG: each decoded channel within a few levels of what was written. */
static int jpeg_max_error(const struct isd_image *im, int components, bool adobe)
{
    int max = 0;
    for (int y = 0; y < im->height; y++) {
        for (int x = 0; x < im->width; x++) {
            const uint8_t *p = isd_image_px(im, x, y);
            int want[3];
            if (components == 4) { /* Adobe-inverted CMYK: R = C * K / 255 */
                unsigned k = fx_cmyk_sample(x, y, 3);
                k = adobe ? k : 255 - k;
                for (int c = 0; c < 3; c++) {
                    unsigned v = fx_cmyk_sample(x, y, c);
                    want[c] = (int)(((adobe ? v : 255 - v) * k + 127) / 255);
                }
            } else {
                for (int c = 0; c < 3; c++)
                    want[c] =
                        (int)fx_jpeg_sample(x, y, components == 1 ? 0 : c, im->width, components);
            }
            for (int c = 0; c < 3; c++) {
                int d = abs(want[c] - p[c]);
                max = d > max ? d : max;
            }
            if (p[3] != 255)
                return 999;
        }
    }
    return max;
}

static void jpeg_grey_rgb_cmyk(void **state)
{
    (void)state;
    /* q100 4:4:4; measured max errors 0 (L), 1 (RGB), 1 (CMYK) */
    struct {
        int components, scans;
        bool adobe;
        const char *mode;
        int max_error;
    } cases[] = {
        {1, 0, false, "L", 2},    {3, 0, false, "RGB", 3}, {4, 0, true, "CMYK", 3},
        {4, 0, false, "CMYK", 3}, {1, -1, false, "L", 2},  {3, -1, false, "RGB", 3},
        {4, -1, true, "CMYK", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct isd_buf b;
        fx_jpeg(&b, 64, 48, cases[i].components, 100, cases[i].scans, !cases[i].adobe);
        struct isd_error err = {0};
        struct isd_image_info info;
        assert_int_equal(isd_codec_probe(b.data, b.len, &info, &err), 0);
        assert_int_equal(info.format, ISD_FMT_JPEG);
        assert_int_equal(info.width, 64);
        assert_int_equal(info.height, 48);
        assert_string_equal(info.mode, cases[i].mode);
        assert_int_equal(info.channels, cases[i].components);
        assert_false(info.has_alpha);
        struct isd_image *im = NULL;
        assert_int_equal(isd_codec_decode(b.data, b.len, NULL, &im, &err), 0);
        assert_false(im->has_alpha);
        int e = jpeg_max_error(im, cases[i].components, cases[i].adobe);
        print_message("# jpeg %s scans %d adobe %d: max error %d\n", cases[i].mode, cases[i].scans,
                      cases[i].adobe, e);
        assert_true(e <= cases[i].max_error);
        isd_image_free(im);
        isd_buf_release(&b);
    }
}

static void webp_modes(void **state)
{
    (void)state;
    struct isd_image *alpha = fx_test_image(64, 48, true);
    struct isd_image *opaque = fx_test_image(64, 48, false);
    struct {
        const struct isd_image *im;
        bool lossless;
        bool keep_alpha;
        const char *mode;
    } cases[] = {
        {alpha, false, true, "RGBA"}, {alpha, false, false, "RGB"}, {opaque, false, true, "RGB"},
        {alpha, true, true, "RGBA"},  {opaque, true, true, "RGB"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct isd_buf b;
        if (cases[i].lossless)
            assert_true(fx_webp_lossless(cases[i].im, &b) > 0);
        else
            assert_true(fx_encode(cases[i].im, ISD_FMT_WEBP, 75, cases[i].keep_alpha, &b) > 0);
        struct isd_error err = {0};
        struct isd_image_info info;
        assert_int_equal(isd_codec_probe(b.data, b.len, &info, &err), 0);
        assert_int_equal(info.format, ISD_FMT_WEBP);
        assert_string_equal(info.mode, cases[i].mode);
        bool has_alpha = strcmp(cases[i].mode, "RGBA") == 0;
        assert_int_equal(info.channels, has_alpha ? 4 : 3);
        assert_int_equal(info.has_alpha, has_alpha);
        struct isd_image *im = NULL;
        assert_int_equal(isd_codec_decode(b.data, b.len, NULL, &im, &err), 0);
        assert_int_equal(im->has_alpha, has_alpha);
        if (cases[i].lossless) { /* exact, except RGB under alpha 0 (libwebp drops it) */
            for (size_t p = 0; p < 64 * 48; p++) {
                const uint8_t *s = cases[i].im->rgba + 4 * p, *d = im->rgba + 4 * p;
                assert_int_equal(s[3], d[3]);
                if (s[3] != 0)
                    assert_memory_equal(s, d, 3);
            }
        }
        isd_image_free(im);
        isd_buf_release(&b);
    }
    isd_image_free(alpha);
    isd_image_free(opaque);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_every_colour_type),
        cmocka_unit_test(png_probe_needs_only_headers),
        cmocka_unit_test(jpeg_grey_rgb_cmyk),
        cmocka_unit_test(webp_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
