/* codec: hostile input. Empty and tiny files, every truncation of small valid files, corrupt
 * chunks, absurd and zero sizes, trailing garbage, random byte flips, scan bombs. Each must
 * give the right negative id (or, where documented, a clean decode), never a crash, and the
 * libraries must print nothing on stderr. */
#include "support/test.h"

#include "codec/codec.h"
#include "codec_fixtures.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- stderr watch: the libraries must stay quiet ---- */

struct quiet {
    int saved;
    char path[512];
};

static void quiet_begin(struct quiet *q)
{
    snprintf(q->path, sizeof q->path, "%s/stderr.txt", isd_test_tmpdir());
    fflush(stderr);
    q->saved = dup(2);
    int fd = open(q->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(q->saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
}

/* Restores stderr and returns how many bytes were written to it meanwhile. */
static long quiet_end(struct quiet *q)
{
    fflush(stderr);
    dup2(q->saved, 2);
    close(q->saved);
    struct stat st;
    assert_int_equal(stat(q->path, &st), 0);
    return (long)st.st_size;
}

/* ---- helpers ---- */

static int decode(const void *data, size_t n, struct isd_image **im)
{
    struct isd_error err = {0};
    struct isd_decode_limits lim = {.max_side = 4096, .max_pixels = 16u << 20};
    *im = (struct isd_image *)&err; /* any non-NULL value: decode must reset it */
    int rc = isd_codec_decode(data, n, &lim, im, &err);
    if (rc < 0) {
        assert_null(*im);
        assert_int_equal(err.id, -rc);
        assert_true(err.message[0] != '\0');
    } else {
        assert_non_null(*im);
    }
    return rc;
}

static void expect_invalid(const void *data, size_t n)
{
    struct isd_image *im;
    struct isd_error err = {0};
    struct isd_image_info info;
    assert_int_equal(isd_codec_probe(data, n, &info, &err), -ISD_E_INVALID_IMAGE);
    assert_int_equal(decode(data, n, &im), -ISD_E_INVALID_IMAGE);
}

/* Small valid files of every kind, with their full decode. */
enum { F_PNG, F_PNG_PAL_INTERLACED, F_JPEG, F_JPEG_PROGRESSIVE, F_WEBP, F_WEBP_LOSSLESS, F_N };

static void make_file(int kind, struct isd_buf *b)
{
    struct isd_image *src = fx_test_image(40, 30, true);
    switch (kind) {
    case F_PNG:
        fx_encode(src, ISD_FMT_PNG, 100, true, b);
        break;
    case F_PNG_PAL_INTERLACED:
        fx_png(b, 40, 30, 3, 4, 1, true, NULL);
        break;
    case F_JPEG:
        fx_encode(src, ISD_FMT_JPEG, 80, false, b);
        break;
    case F_JPEG_PROGRESSIVE:
        fx_jpeg(b, 40, 30, 3, 80, -1, false);
        break;
    case F_WEBP:
        fx_encode(src, ISD_FMT_WEBP, 80, true, b);
        break;
    default:
        fx_webp_lossless(src, b);
    }
    isd_image_free(src);
}

/* ---- tests ---- */

static void empty_and_tiny(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    struct isd_image *im;
    struct isd_error err = {0};
    struct isd_image_info info;
    assert_int_equal(isd_codec_probe(NULL, 0, &info, &err), -ISD_E_INVALID_IMAGE);
    assert_int_equal(isd_codec_decode(NULL, 0, NULL, &im, &err), -ISD_E_INVALID_IMAGE);
    assert_null(im);
    expect_invalid("", 0);
    expect_invalid("\x89", 1);
    expect_invalid("\xff", 1);
    expect_invalid("R", 1);
    expect_invalid("\x89PNG", 4);
    expect_invalid("\x89PNG\r\n\x1a\n", 8);
    expect_invalid("\xff\xd8\xff", 3);
    expect_invalid("\xff\xd8\xff\xd9", 4);
    expect_invalid("RIFF\0\0\0\0WEBP", 12);
    expect_invalid("RIFF\x04\0\0\0WEBPVP8 ", 16);
    expect_invalid("GIF89a\x01\0\x01\0\0\0\0", 13);
    expect_invalid("BM\0\0\0\0\0\0\0\0\0\0\0\0", 14);
    assert_int_equal(quiet_end(&q), 0);
}

/* Every prefix of every small file. PNG: success exactly from the IEND chunk on (IEND itself
 * is not required, see codec.h), with the full image. JPEG: every prefix fails, even the one
 * that lacks only EOI (libjpeg reads past the last MCU and meets the end of data). WebP:
 * every prefix fails (the RIFF size says more is due). */
static void every_truncation(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    for (int kind = 0; kind < F_N; kind++) {
        struct isd_buf b;
        make_file(kind, &b);
        struct isd_image *full;
        assert_int_equal(decode(b.data, b.len, &full), 0);
        const uint8_t *d = (const uint8_t *)b.data;
        size_t ok_from = b.len;
        if (kind == F_PNG || kind == F_PNG_PAL_INTERLACED)
            ok_from = fx_png_find(d, b.len, "IEND");
        int successes = 0;
        for (size_t n = 0; n < b.len; n++) {
            struct isd_image *im;
            int rc = decode(d, n, &im);
            if (n < ok_from) {
                if (rc != -ISD_E_INVALID_IMAGE)
                    print_message("# kind %d prefix %zu of %zu: rc %d\n", kind, n, b.len, rc);
                assert_int_equal(rc, -ISD_E_INVALID_IMAGE);
            } else if (rc == 0) {
                assert_memory_equal(im->rgba, full->rgba, 40 * 30 * 4);
                successes++;
                isd_image_free(im);
            }
        }
        print_message("# kind %d: %zu bytes, %d prefixes decode\n", kind, b.len, successes);
        assert_int_equal(successes, (int)(b.len - ok_from));
        isd_image_free(full);
        isd_buf_release(&b);
    }
    assert_int_equal(quiet_end(&q), 0);
}

static void png_corrupt_idat(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    struct isd_buf b;
    make_file(F_PNG, &b);
    uint8_t *d = (uint8_t *)b.data;
    size_t idat = fx_png_find(d, b.len, "IDAT");
    assert_true(idat > 0);
    uint32_t len = fx_get32(d + idat);
    struct isd_image *im;
    struct isd_error err = {0};

    d[idat + 8 + len - 1] ^= 0x01; /* last byte (zlib's Adler-32): caught before the CRC */
    assert_int_equal(decode(d, b.len, &im), -ISD_E_INVALID_IMAGE);
    d[idat + 8 + len - 1] ^= 0x01;

    d[idat + 8 + len] ^= 0x80; /* only the CRC field changed */
    assert_int_equal(isd_codec_decode(d, b.len, NULL, &im, &err), -ISD_E_INVALID_IMAGE);
    assert_non_null(strstr(err.message, "CRC"));
    d[idat + 8 + len] ^= 0x80;

    d[idat + 8 + len / 2] ^= 0x55; /* data changed mid-stream: inflate or filter error first */
    assert_int_equal(decode(d, b.len, &im), -ISD_E_INVALID_IMAGE);
    d[idat + 8 + len / 2] ^= 0x55;
    assert_int_equal(decode(d, b.len, &im), 0); /* restored */
    isd_image_free(im);

    d[idat + 8] ^= 0xFF; /* zlib header broken, CRC fixed: the inflater refuses */
    fx_fix_crc(d + idat);
    assert_int_equal(decode(d, b.len, &im), -ISD_E_INVALID_IMAGE);
    d[idat + 8] ^= 0xFF;
    fx_fix_crc(d + idat);

    memset(d + idat + 8 + 2, 0xFF, len - 2); /* deflate data replaced, CRC fixed */
    fx_fix_crc(d + idat);
    assert_int_equal(decode(d, b.len, &im), -ISD_E_INVALID_IMAGE);
    isd_buf_release(&b);
    assert_int_equal(quiet_end(&q), 0);
}

/* Inserts chunk `type` with `data` before the chunk at offset `at`; bad_crc spoils its CRC. */
static void insert_chunk(struct isd_buf *b, size_t at, const char *type, const void *data,
                         uint32_t len, bool bad_crc)
{
    struct isd_buf o;
    isd_buf_init(&o, 64u << 20);
    uint8_t head[8];
    fx_put32(head, len);
    memcpy(head + 4, type, 4);
    isd_buf_append(&o, b->data, at);
    isd_buf_append(&o, head, 8);
    isd_buf_append(&o, data, len);
    uint8_t crc[4];
    fx_put32(crc, fx_crc((const uint8_t *)o.data + at + 4, (size_t)len + 4) ^ (bad_crc ? 1 : 0));
    isd_buf_append(&o, crc, 4);
    isd_buf_append(&o, b->data + at, b->len - at);
    isd_buf_release(b);
    *b = o;
}

static void remove_chunk(struct isd_buf *b, size_t at)
{
    size_t n = 12 + (size_t)fx_get32((const uint8_t *)b->data + at);
    memmove(b->data + at, b->data + at + n, b->len - at - n);
    b->len -= n;
}

/* Ancillary chunks: libpng's policy, a bad CRC drops the chunk. tRNS too, so the probe and the
 * decoder agree that such a file has no transparency. */
static void png_ancillary_crc_policy(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    struct isd_buf b;
    fx_png(&b, 16, 16, 2, 8, 0, false, NULL);
    size_t idat = fx_png_find((const uint8_t *)b.data, b.len, "IDAT");
    insert_chunk(&b, idat, "tEXt", "Comment\0hello", 13, true);
    struct isd_image *im;
    assert_int_equal(decode(b.data, b.len, &im), 0);
    isd_image_free(im);

    uint8_t trns[6] = {0, 0, 0, 61, 0, 122}; /* the colour of pixel (0, 0) */
    idat = fx_png_find((const uint8_t *)b.data, b.len, "IDAT");
    insert_chunk(&b, idat, "tRNS", trns, 6, true);
    struct isd_error err = {0};
    struct isd_image_info info;
    assert_int_equal(isd_codec_probe(b.data, b.len, &info, &err), 0);
    assert_false(info.has_alpha);
    assert_int_equal(decode(b.data, b.len, &im), 0);
    assert_false(im->has_alpha);
    assert_int_equal(im->rgba[3], 255);
    isd_image_free(im);
    isd_buf_release(&b);

    fx_png(&b, 16, 16, 2, 8, 0, false, NULL); /* the same tRNS with a good CRC counts */
    idat = fx_png_find((const uint8_t *)b.data, b.len, "IDAT");
    insert_chunk(&b, idat, "tRNS", trns, 6, false);
    assert_int_equal(isd_codec_probe(b.data, b.len, &info, &err), 0);
    assert_true(info.has_alpha);
    assert_int_equal(decode(b.data, b.len, &im), 0);
    assert_true(im->has_alpha);
    assert_int_equal(im->rgba[3], 0);
    isd_image_free(im);
    isd_buf_release(&b);
    assert_int_equal(quiet_end(&q), 0);
}

static void png_structure_errors(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    struct isd_buf b;
    uint8_t *d;
    /* palette image without PLTE */
    fx_png(&b, 16, 16, 3, 8, 0, false, NULL);
    d = (uint8_t *)b.data;
    size_t plte = fx_png_find(d, b.len, "PLTE");
    memcpy(d + plte + 4, "pLTe", 4); /* now an unknown ancillary chunk */
    fx_fix_crc(d + plte);
    struct isd_image *im;
    assert_int_equal(decode(d, b.len, &im), -ISD_E_INVALID_IMAGE);
    isd_buf_release(&b);

    /* IHDR CRC wrong; bad colour type / depth pairs; unknown interlace method */
    struct {
        size_t off;
        uint8_t val;
        bool fix;
    } edits[] = {{29, 0, false}, {24, 3, true},  {25, 1, true},
                 {25, 7, true},  {24, 16, true}, {28, 2, true}};
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        fx_png(&b, 16, 16, 3, 4, 0, false, NULL);
        d = (uint8_t *)b.data;
        d[edits[i].off] = edits[i].val == 0 ? (uint8_t)(d[edits[i].off] ^ 1) : edits[i].val;
        if (edits[i].fix)
            fx_fix_crc(d + 8);
        expect_invalid(d, b.len);
        isd_buf_release(&b);
    }

    /* palette indices past the end of a 4-entry palette: decoded as black, no crash */
    fx_png(&b, 16, 16, 3, 8, 0, false, NULL);
    plte = fx_png_find((const uint8_t *)b.data, b.len, "PLTE");
    remove_chunk(&b, plte);
    uint8_t pal[12] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
    insert_chunk(&b, plte, "PLTE", pal, 12, false);
    assert_int_equal(decode(b.data, b.len, &im), 0);
    assert_memory_equal(isd_image_px(im, 1, 0), "\x28\x32\x3c\xff", 4); /* index 1 */
    assert_memory_equal(isd_image_px(im, 10, 0), "\0\0\0\xff", 4);      /* index 10 */
    isd_image_free(im);
    isd_buf_release(&b);
    assert_int_equal(quiet_end(&q), 0);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Decodes with the test limits and with none (the image module's), both must refuse with
 * -ISD_E_INVALID_VALUE; adds the time spent to *spent. */
static void expect_over_limits(const void *d, size_t n, double *spent)
{
    struct isd_image *im;
    struct isd_error err = {0};
    double t0 = now();
    int rc1 = decode(d, n, &im);
    int rc2 = isd_codec_decode(d, n, NULL, &im, &err);
    *spent += now() - t0;
    assert_int_equal(rc1, -ISD_E_INVALID_VALUE);
    assert_int_equal(rc2, -ISD_E_INVALID_VALUE);
}

/* Sets a PNG's IHDR size, fixing the CRC. */
static void png_set_size(uint8_t *d, uint32_t w, uint32_t h)
{
    fx_put32(d + 16, w);
    fx_put32(d + 20, h);
    fx_fix_crc(d + 8);
}

/* Offset of a JPEG's SOFn marker. */
static size_t jpeg_sof(const uint8_t *d, size_t n)
{
    for (size_t i = 2; i + 9 < n; i++)
        if (d[i] == 0xFF && (d[i + 1] == 0xC0 || d[i + 1] == 0xC1 || d[i + 1] == 0xC2))
            return i;
    return 0;
}

/* Small files claiming 60000x60000 (WebP: 16383x16383, its maximum) are refused by the limits,
 * instantly, before any pixel memory exists. Zero sizes are invalid images. */
static void absurd_and_zero_sizes(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    struct isd_error err = {0};
    struct isd_image_info info;
    struct isd_image *im;
    struct isd_buf b;

    make_file(F_PNG, &b);
    uint8_t *d = (uint8_t *)b.data;
    png_set_size(d, 60000, 60000);
    assert_int_equal(isd_codec_probe(d, b.len, &info, &err), 0);
    assert_int_equal(info.width, 60000);
    double spent = 0;
    expect_over_limits(d, b.len, &spent);
    png_set_size(d, 4096, 4097); /* just over the side limit */
    assert_int_equal(decode(d, b.len, &im), -ISD_E_INVALID_VALUE);
    png_set_size(d, 4096, 4096); /* within the limits: a data error, not a limit */
    assert_int_equal(decode(d, b.len, &im), -ISD_E_INVALID_IMAGE);
    png_set_size(d, 0x80000000u, 1);
    expect_invalid(d, b.len);
    png_set_size(d, 0, 30);
    expect_invalid(d, b.len);
    png_set_size(d, 40, 0);
    expect_invalid(d, b.len);
    isd_buf_release(&b);

    make_file(F_JPEG, &b);
    d = (uint8_t *)b.data;
    size_t sof = jpeg_sof(d, b.len);
    assert_true(sof > 0);
    d[sof + 5] = 0xEA; /* height 60000 */
    d[sof + 6] = 0x60;
    d[sof + 7] = 0xEA; /* width 60000 */
    d[sof + 8] = 0x60;
    assert_int_equal(isd_codec_probe(d, b.len, &info, &err), 0);
    assert_int_equal(info.height, 60000);
    expect_over_limits(d, b.len, &spent);
    d[sof + 7] = 0; /* width 0 */
    d[sof + 8] = 0;
    expect_invalid(d, b.len);
    isd_buf_release(&b);

    struct isd_image *src = fx_test_image(40, 30, false);
    fx_encode(src, ISD_FMT_WEBP, 80, false, &b); /* simple "VP8 " file */
    isd_image_free(src);
    d = (uint8_t *)b.data;
    assert_memory_equal(d + 12, "VP8 ", 4);
    assert_true(d[23] == 0x9d && d[24] == 0x01 && d[25] == 0x2a); /* key frame start code */
    d[26] = 0xFF; /* width 16383 (14 bits, no scaling) */
    d[27] = 0x3F;
    d[28] = 0xFF;
    d[29] = 0x3F;
    assert_int_equal(isd_codec_probe(d, b.len, &info, &err), 0);
    assert_int_equal(info.width, 16383);
    expect_over_limits(d, b.len, &spent);
    d[26] = 0;
    d[27] = 0;
    expect_invalid(d, b.len);
    isd_buf_release(&b);

    print_message("# 6 over-limit decodes refused in %.3f ms in all\n", spent * 1e3);
    assert_true(spent < 0.5); /* microseconds in practice; this only catches real decoding */
    assert_int_equal(quiet_end(&q), 0);
}

/* Bytes after the image are ignored (like PIL and browsers): same pixels. */
static void trailing_garbage(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    for (int kind = 0; kind < F_N; kind++) {
        struct isd_buf b;
        make_file(kind, &b);
        struct isd_image *clean, *im;
        assert_int_equal(decode(b.data, b.len, &clean), 0);
        uint32_t r = 99;
        for (int i = 0; i < 1000; i++) {
            r = r * 1664525u + 1013904223u;
            uint8_t c = (uint8_t)(r >> 24);
            isd_buf_append(&b, &c, 1);
        }
        isd_buf_append(&b, "IEND\xff\xd9\xff\xd8RIFF", 12);
        assert_int_equal(decode(b.data, b.len, &im), 0);
        assert_memory_equal(im->rgba, clean->rgba, 40 * 30 * 4);
        assert_int_equal(im->has_alpha, clean->has_alpha);
        isd_image_free(im);
        isd_image_free(clean);
        isd_buf_release(&b);
    }
    assert_int_equal(quiet_end(&q), 0);
}

/* A progressive JPEG with 137 scans is refused (CPU bomb guard); libjpeg's standard
 * progression (10 scans) is not. Components other than 1, 3, 4 are unsupported. */
static void jpeg_scan_bomb_and_components(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    struct isd_buf b;
    struct isd_image *im;
    struct isd_error err = {0};
    fx_jpeg(&b, 64, 64, 1, 90, 1, false);
    assert_int_equal(isd_codec_decode(b.data, b.len, NULL, &im, &err), -ISD_E_INVALID_IMAGE);
    assert_non_null(strstr(err.message, "scans"));
    isd_buf_release(&b);
    fx_jpeg(&b, 64, 64, 3, 90, -1, false);
    assert_int_equal(decode(b.data, b.len, &im), 0);
    isd_image_free(im);
    isd_buf_release(&b);
    fx_jpeg(&b, 16, 16, 2, 90, 0, false);
    expect_invalid(b.data, b.len);
    isd_buf_release(&b);
    assert_int_equal(quiet_end(&q), 0);
}

/* Random 1..4-byte flips (fixed seed), 400 per file: only clean results. */
static void random_flips(void **state)
{
    (void)state;
    struct quiet q;
    quiet_begin(&q);
    uint32_t r = 12345;
    int outcomes[3] = {0};
    for (int kind = 0; kind < F_N; kind++) {
        struct isd_buf b;
        make_file(kind, &b);
        uint8_t *copy = malloc(b.len);
        for (int iter = 0; iter < 400; iter++) {
            memcpy(copy, b.data, b.len);
            r = r * 1664525u + 1013904223u;
            int flips = 1 + (int)(r >> 30);
            for (int k = 0; k < flips; k++) {
                r = r * 1664525u + 1013904223u;
                size_t at = (r >> 8) % b.len;
                r = r * 1664525u + 1013904223u;
                copy[at] ^= (uint8_t)(1u + (r >> 25));
            }
            struct isd_image *im;
            int rc = decode(copy, b.len, &im);
            assert_true(rc == 0 || rc == -ISD_E_INVALID_IMAGE || rc == -ISD_E_INVALID_VALUE);
            outcomes[rc == 0 ? 0 : rc == -ISD_E_INVALID_IMAGE ? 1 : 2]++;
            if (rc == 0) {
                assert_true(im->width >= 1 && im->width <= 4096);
                assert_true(im->height >= 1 && im->height <= 4096);
                isd_image_free(im);
            }
        }
        free(copy);
        isd_buf_release(&b);
    }
    print_message("# flips: %d decoded, %d invalid image, %d over limits\n", outcomes[0],
                  outcomes[1], outcomes[2]);
    assert_int_equal(quiet_end(&q), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_and_tiny),       cmocka_unit_test(every_truncation),
        cmocka_unit_test(png_corrupt_idat),     cmocka_unit_test(png_ancillary_crc_policy),
        cmocka_unit_test(png_structure_errors), cmocka_unit_test(absurd_and_zero_sizes),
        cmocka_unit_test(trailing_garbage),     cmocka_unit_test(jpeg_scan_bomb_and_components),
        cmocka_unit_test(random_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
