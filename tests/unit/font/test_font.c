#include "support/test.h"

#include "font/font.h"
#include "image/image.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t white[4] = {255, 255, 255, 255};
static const uint8_t black[4] = {0, 0, 0, 255};

static struct isd_font *font_or_fail(const char *path)
{
    struct isd_error err = {0};
    struct isd_font *f = isd_font_new(path, &err);
    if (!f)
        fail_msg("isd_font_new(%s): %s", path ? path : "default", err.message);
    return f;
}

static struct isd_image *blank(int w, int h)
{
    struct isd_error err = {0};
    struct isd_image *im = isd_image_new(w, h, &err);
    assert_non_null(im);
    return im;
}

static size_t count_alpha(const struct isd_image *im, int lo, int hi)
{
    size_t c = 0;
    for (size_t i = 0; i < (size_t)im->width * (size_t)im->height; i++)
        c += im->rgba[4 * i + 3] >= lo && im->rgba[4 * i + 3] <= hi;
    return c;
}

static void load_errors(void **state)
{
    (void)state;
    struct isd_error err = {0};
    assert_null(isd_font_new("/nonexistent/font.ttf", &err));
    assert_int_equal(err.id, ISD_E_IO);
    char path[4200];
    snprintf(path, sizeof path, "%s/not-a-font.ttf", isd_test_tmpdir());
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("this is not a font at all", fp);
    fclose(fp);
    isd_err_clear(&err);
    assert_null(isd_font_new(path, &err));
    assert_int_equal(err.id, ISD_E_IO);
    isd_font_free(NULL);
    struct isd_font *f = font_or_fail(NULL);
    struct isd_font *b = font_or_fail(ISD_FONT_DEFAULT_BOLD_PATH);
    isd_font_free(f);
    isd_font_free(b);
}

static void measure_grows_with_size_and_text(void **state)
{
    (void)state;
    struct isd_font *f = font_or_fail(NULL);
    struct isd_error err = {0};
    int w0, w20, w40, wlong, wspace;
    assert_int_equal(isd_font_measure(f, 20, "", 0, &w0, &err), 0);
    assert_int_equal(w0, 0);
    assert_int_equal(isd_font_measure(f, 20, "Hello", 5, &w20, &err), 0);
    assert_int_equal(isd_font_measure(f, 40, "Hello", 5, &w40, &err), 0);
    assert_int_equal(isd_font_measure(f, 20, "Hello world", 11, &wlong, &err), 0);
    assert_int_equal(isd_font_measure(f, 20, "Hello ", 6, &wspace, &err), 0);
    assert_true(w20 > 20 && w20 < 100);
    assert_true(w40 > w20 * 3 / 2 && w40 < w20 * 5 / 2);
    assert_true(wlong > wspace && wspace > w20);
    struct isd_font_metrics m;
    assert_int_equal(isd_font_metrics(f, 20, &m, &err), 0);
    assert_true(m.ascent > 10 && m.ascent <= 24);
    assert_true(m.descent > 0 && m.descent < 10);
    assert_true(m.line_height >= m.ascent + m.descent);
    /* out-of-range sizes are clamped, not refused */
    int wtiny, whuge;
    assert_int_equal(isd_font_measure(f, 0, "Hi", 2, &wtiny, &err), 0);
    assert_int_equal(isd_font_measure(f, 1 << 30, "Hi", 2, &whuge, &err), 0);
    assert_true(wtiny < whuge);
    isd_font_free(f);
}

/* Drawing on transparent pixels gives exactly the text colour with the coverage as alpha. */
static void draw_on_transparent(void **state)
{
    (void)state;
    struct isd_font *f = font_or_fail(NULL);
    struct isd_error err = {0};
    struct isd_image *im = blank(120, 48);
    const uint8_t c[4] = {200, 50, 10, 255};
    assert_int_equal(isd_font_draw(f, im, 32, 4, 36, "Og&", 3, c, NULL, &err), 0);
    size_t partial = 0, full = 0;
    for (size_t i = 0; i < 120 * 48; i++) {
        const uint8_t *p = im->rgba + 4 * i;
        if (p[3] == 0) {
            assert_int_equal(p[0] | p[1] | p[2], 0);
            continue;
        }
        assert_int_equal(p[0], 200);
        assert_int_equal(p[1], 50);
        assert_int_equal(p[2], 10);
        full += p[3] == 255;
        partial += p[3] < 255;
    }
    assert_true(full > 100);
    assert_true(partial > 20); /* anti-aliased edges */
    isd_image_free(im);

    /* half-transparent colour: alpha is coverage * 128 / 255 at most */
    im = blank(120, 48);
    const uint8_t half[4] = {10, 20, 30, 128};
    assert_int_equal(isd_font_draw(f, im, 32, 4, 36, "Og&", 3, half, NULL, &err), 0);
    assert_true(count_alpha(im, 128, 128) > 100);
    assert_int_equal(count_alpha(im, 129, 255), 0);
    isd_image_free(im);
    isd_font_free(f);
}

/* On opaque pixels the result is a linear blend: black on white gives greys, alpha stays 255. */
static void draw_over_opaque(void **state)
{
    (void)state;
    struct isd_font *f = font_or_fail(NULL);
    struct isd_error err = {0};
    struct isd_image *im = blank(120, 48);
    isd_image_fill(im, 255, 255, 255, 255);
    assert_int_equal(isd_font_draw(f, im, 32, 4, 36, "Og&", 3, black, NULL, &err), 0);
    size_t dark = 0, grey = 0;
    for (size_t i = 0; i < 120 * 48; i++) {
        const uint8_t *p = im->rgba + 4 * i;
        assert_int_equal(p[3], 255);
        assert_int_equal(p[0], p[1]);
        assert_int_equal(p[1], p[2]);
        dark += p[0] == 0;
        grey += p[0] > 0 && p[0] < 255;
    }
    assert_true(dark > 100);
    assert_true(grey > 20);
    isd_image_free(im);

    /* over a half-transparent pixel: alpha grows, colour moves toward the text */
    im = blank(60, 40);
    isd_image_fill(im, 0, 0, 255, 100);
    assert_int_equal(isd_font_draw(f, im, 30, 2, 30, "M", 1, white, NULL, &err), 0);
    size_t opaque = 0;
    for (size_t i = 0; i < 60 * 40; i++) {
        const uint8_t *p = im->rgba + 4 * i;
        assert_true(p[3] >= 100);
        if (p[3] == 255) {
            opaque++;
            assert_int_equal(p[0], 255);
        } else if (p[3] > 100) {
            assert_true(p[0] > 0 && p[2] == 255);
        }
    }
    assert_true(opaque > 50);
    isd_image_free(im);
    isd_font_free(f);
}

static void clip_and_bounds(void **state)
{
    (void)state;
    struct isd_font *f = font_or_fail(NULL);
    struct isd_error err = {0};
    struct isd_image *im = blank(100, 40);
    struct isd_font_rect clip = {30, 0, 20, 40};
    assert_int_equal(isd_font_draw(f, im, 30, 0, 30, "MMMMMMMM", 8, white, &clip, &err), 0);
    size_t inside = 0;
    for (int y = 0; y < 40; y++) {
        for (int x = 0; x < 100; x++) {
            uint8_t a = isd_image_px(im, x, y)[3];
            if (x < 30 || x >= 50)
                assert_int_equal(a, 0);
            else
                inside += a > 0;
        }
    }
    assert_true(inside > 50);
    /* far outside the image, negative or huge coordinates: nothing drawn, no crash */
    struct isd_image *im2 = blank(50, 50);
    assert_int_equal(isd_font_draw(f, im2, 40, -100000, 20, "abc", 3, white, NULL, &err), 0);
    assert_int_equal(isd_font_draw(f, im2, 40, 2000000000, 20, "abc", 3, white, NULL, &err), 0);
    assert_int_equal(isd_font_draw(f, im2, 40, 0, -2000000000, "abc", 3, white, NULL, &err), 0);
    assert_int_equal(isd_font_draw(f, im2, 40, -30, 2000000000, "abc", 3, white, NULL, &err), 0);
    struct isd_font_rect away = {-5000, -5000, 10, 10};
    assert_int_equal(isd_font_draw(f, im2, 40, 0, 30, "abc", 3, white, &away, &err), 0);
    assert_int_equal(count_alpha(im2, 1, 255), 0);
    /* partly outside on the left and top */
    assert_int_equal(isd_font_draw(f, im2, 40, -10, 10, "W", 1, white, NULL, &err), 0);
    assert_true(count_alpha(im2, 1, 255) > 0);
    isd_image_free(im);
    isd_image_free(im2);
    isd_font_free(f);
}

/* The text of a laid-out line with its ellipsis, for comparing. */
static void line_text(const struct isd_font_layout *l, int i, char *dst, size_t cap)
{
    const struct isd_font_line *ln = &l->lines[i];
    snprintf(dst, cap, "%.*s%s", (int)(ln->end - ln->start), l->text + ln->start,
             ln->ellipsis ? "\xE2\x80\xA6" : "");
}

static void layout_wraps_words(void **state)
{
    (void)state;
    struct isd_font *f = font_or_fail(NULL);
    struct isd_error err = {0};
    const char *s = "the quick brown fox jumps over the lazy dog";
    struct isd_font_layout l;
    int wfox;
    assert_int_equal(isd_font_measure(f, 20, "the quick brown fox", 19, &wfox, &err), 0);
    assert_int_equal(isd_font_layout(f, 20, wfox, 10, s, strlen(s), &l, &err), 0);
    assert_false(l.truncated);
    assert_true(l.n_lines >= 3);
    char buf[256];
    line_text(&l, 0, buf, sizeof buf);
    assert_string_equal(buf, "the quick brown fox");
    assert_int_equal(l.lines[0].width, wfox);
    /* the lines, joined with spaces, are the text */
    char joined[256] = "";
    for (int i = 0; i < l.n_lines; i++) {
        assert_true(l.lines[i].width <= wfox);
        line_text(&l, i, buf, sizeof buf);
        strcat(joined, i ? " " : "");
        strcat(joined, buf);
    }
    assert_string_equal(joined, s);
    assert_int_equal(l.height, l.n_lines * l.metrics.line_height);

    /* too few lines: the last one ends with an ellipsis and still fits */
    assert_int_equal(isd_font_layout(f, 20, wfox, 2, s, strlen(s), &l, &err), 0);
    assert_true(l.truncated);
    assert_int_equal(l.n_lines, 2);
    assert_true(l.lines[1].ellipsis);
    assert_true(l.lines[1].width <= wfox);
    assert_false(l.lines[0].ellipsis);

    /* hard breaks, blank lines kept, trailing ones dropped */
    const char *nl = "one\n\ntwo\n\n\n";
    assert_int_equal(isd_font_layout(f, 20, 1000, 10, nl, strlen(nl), &l, &err), 0);
    assert_int_equal(l.n_lines, 3);
    line_text(&l, 2, buf, sizeof buf);
    assert_string_equal(buf, "two");
    assert_int_equal(l.lines[1].width, 0);

    /* a word longer than the line is broken between characters */
    const char *lw = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(isd_font_layout(f, 20, 60, 64, lw, strlen(lw), &l, &err), 0);
    assert_false(l.truncated);
    assert_true(l.n_lines > 3);
    size_t total = 0;
    for (int i = 0; i < l.n_lines; i++) {
        assert_true(l.lines[i].width <= 60 && l.lines[i].width > 30);
        total += l.lines[i].end - l.lines[i].start;
    }
    assert_int_equal(total, strlen(lw));

    /* nothing fits: zero lines, truncated */
    assert_int_equal(isd_font_layout(f, 20, 0, 3, s, strlen(s), &l, &err), 0);
    assert_int_equal(l.n_lines, 0);
    assert_true(l.truncated);
    assert_int_equal(isd_font_layout(f, 20, 100, 0, s, strlen(s), &l, &err), 0);
    assert_int_equal(l.n_lines, 0);
    assert_int_equal(isd_font_layout(f, 20, 100, 3, "  \n ", 4, &l, &err), 0);
    assert_int_equal(l.n_lines, 0);
    assert_false(l.truncated);
    isd_font_free(f);
}

static void draw_layout_places_lines(void **state)
{
    (void)state;
    struct isd_font *f = font_or_fail(NULL);
    struct isd_error err = {0};
    struct isd_font_layout l;
    const char *s = "HHHH HHHH HHHH";
    int w4;
    assert_int_equal(isd_font_measure(f, 16, "HHHH", 4, &w4, &err), 0);
    assert_int_equal(isd_font_layout(f, 16, w4 + 2, 5, s, strlen(s), &l, &err), 0);
    assert_int_equal(l.n_lines, 3);
    struct isd_image *im = blank(200, 200);
    assert_int_equal(isd_font_draw_layout(f, im, &l, 10, 20, white, NULL, &err), 0);
    /* ink only inside the layout's box (H has no descender or overshoot) */
    size_t ink = 0;
    for (int y = 0; y < 200; y++) {
        for (int x = 0; x < 200; x++) {
            if (isd_image_px(im, x, y)[3] == 0)
                continue;
            ink++;
            assert_true(x >= 10 && x < 10 + l.width + 1);
            assert_true(y >= 20 && y < 20 + l.height);
        }
    }
    assert_true(ink > 200);
    /* every line has ink at its baseline row - 1 */
    for (int i = 0; i < 3; i++) {
        int base = 20 + l.metrics.ascent + i * l.metrics.line_height;
        size_t row = 0;
        for (int x = 0; x < 200; x++)
            row += isd_image_px(im, x, base - 1)[3] > 0;
        assert_true(row > 8);
    }
    isd_image_free(im);
    isd_font_free(f);
}

/* Invalid UTF-8, NUL, controls, emoji, CJK, RTL, combining marks, huge inputs: never crash, and
 * glyphs the font lacks still show (as .notdef). */
static void hostile_text(void **state)
{
    (void)state;
    struct isd_font *f = font_or_fail(NULL);
    struct isd_error err = {0};
#define SAMPLE(lit)                                                                                \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }
    static const struct {
        const char *s;
        size_t n;
    } samples[] = {
        SAMPLE("\xff\xfe\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82"), /* invalid sequences */
        SAMPLE("a\0b\0\0c\x01\x7f\xc2\x85"),                            /* NUL and controls */
        SAMPLE("\xf0\x9f\x98\x80\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x9a\x80"), /* emoji, ZWJ */
        SAMPLE("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe4\xb8\xad\xe6\x96\x87"), /* CJK */
        SAMPLE("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd8\xb3\xd9\x84\xd8\xa7\xd9\x85"), /* Hebrew,
                                                                                        Arabic */
        SAMPLE("e\xcc\x81\xcc\x82\xcc\x83\xcc\x84\xcc\x85 a\xcd\xa3\xcd\xa3"), /* combining marks */
        SAMPLE("\t\t\n\r\n \xe2\x80\x8b\xef\xbb\xbf"), /* spaces, ZWSP, BOM */
    };
#undef SAMPLE
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        struct isd_image *im = blank(200, 100);
        struct isd_font_layout l;
        int w;
        assert_int_equal(isd_font_measure(f, 24, samples[i].s, samples[i].n, &w, &err), 0);
        assert_int_equal(isd_font_layout(f, 24, 150, 3, samples[i].s, samples[i].n, &l, &err), 0);
        assert_int_equal(isd_font_draw_layout(f, im, &l, 5, 5, white, NULL, &err), 0);
        if (i == 3) /* CJK is not in DejaVu Sans: .notdef boxes are drawn */
            assert_true(count_alpha(im, 1, 255) > 50);
        isd_image_free(im);
    }
    /* 32000 random bytes and 32000 characters of words */
    size_t n = 32000;
    char *big = malloc(n);
    assert_non_null(big);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big[i] = (char)(x >> 24);
    }
    struct isd_image *im = blank(300, 300);
    struct isd_font_layout l;
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(isd_font_layout(f, 20, 280, 12, big, n, &l, &err), 0);
        assert_true(l.n_lines <= 12 && l.n_lines > 0);
        assert_true(l.width <= 280);
        assert_true(l.truncated);
        assert_int_equal(isd_font_draw_layout(f, im, &l, 10, 10, white, NULL, &err), 0);
        int w;
        assert_int_equal(isd_font_measure(f, 20, big, n, &w, &err), 0);
        assert_true(w > 1000);
        assert_int_equal(isd_font_draw(f, im, 20, 0, 200, big, n, white, NULL, &err), 0);
        for (size_t i = 0; i < n; i++)
            big[i] = "lorem ipsum "[i % 12];
    }
    assert_true(l.lines[l.n_lines - 1].ellipsis);
    isd_image_free(im);
    free(big);
    isd_font_free(f);
}

/* Past ISD_FONT_CACHE_MAX_BYTES glyphs are rendered per call: same advances, same pixels. */
static void cache_budget_overflow(void **state)
{
    (void)state;
    struct isd_font *f = font_or_fail(NULL);
    struct isd_error err = {0};
    /* 286 distinct glyphs at the largest size: each bitmap is a few hundred KiB */
    char text[94 + 192 * 2];
    size_t n = 0;
    for (int i = 0; i < 94; i++)
        text[n++] = (char)('!' + i);
    for (int i = 0; i < 192; i++) { /* U+00C0..U+017F, Latin letters, 2 bytes each */
        unsigned cp = 0xC0 + (unsigned)i;
        text[n++] = (char)(0xC0 | (cp >> 6));
        text[n++] = (char)(0x80 | (cp & 0x3F));
    }
    int w1, w2;
    assert_int_equal(isd_font_measure(f, ISD_FONT_MAX_PX, text, n, &w1, &err), 0);
    assert_int_equal(isd_font_measure(f, ISD_FONT_MAX_PX, text, n, &w2, &err), 0);
    assert_int_equal(w1, w2);
    assert_true(w1 > 286 * ISD_FONT_MAX_PX / 3);
    /* the last glyph (U+017F) is past the budget: drawn from a temporary, same as a fresh font */
    struct isd_font *fresh = font_or_fail(NULL);
    struct isd_image *a = blank(700, 1100), *b = blank(700, 1100);
    assert_int_equal(
        isd_font_draw(f, a, ISD_FONT_MAX_PX, 20, 900, text + n - 2, 2, white, NULL, &err), 0);
    assert_int_equal(
        isd_font_draw(fresh, b, ISD_FONT_MAX_PX, 20, 900, text + n - 2, 2, white, NULL, &err), 0);
    assert_true(count_alpha(a, 255, 255) > 10000);
    assert_memory_equal(a->rgba, b->rgba, 700 * 1100 * 4);
    isd_image_free(a);
    isd_image_free(b);
    isd_font_free(fresh);
    isd_font_free(f);
}

/* ---- concurrency: cold caches filled from four threads give the same pixels as serial ---- */

#define N_THREADS 4

struct render_job {
    struct isd_font *font;
    int seed;
    struct isd_image *out;
};

static const char *const phrases[] = {
    "The quick brown fox jumps over the lazy dog",
    "Sphinx of black quartz, judge my vow \xe2\x80\x94 0123456789",
    "\xc3\x89t\xc3\xa9 \xc3\xa0 Z\xc3\xbcrich, \xce\xb1\xce\xb2\xce\xb3 \xd0\xb6\xd1\x83\xd0\xba",
    "pack my box with five dozen liquor jugs!?",
};

static void render_sample(struct isd_font *f, int seed, struct isd_image *im)
{
    struct isd_error err = {0};
    for (int k = 0; k < 12; k++) {
        int px = 8 + ((seed * 7 + k * 5) % 40);
        const char *s = phrases[(seed + k) % 4];
        struct isd_font_layout l;
        assert_int_equal(isd_font_layout(f, px, 180, 4, s, strlen(s), &l, &err), 0);
        const uint8_t c[4] = {(uint8_t)(k * 20), 255, (uint8_t)(255 - k * 20), 200};
        assert_int_equal(isd_font_draw_layout(f, im, &l, k * 3, k * 14, c, NULL, &err), 0);
    }
}

static void *render_thread(void *arg)
{
    struct render_job *j = arg;
    render_sample(j->font, j->seed, j->out);
    return NULL;
}

static void concurrent_equals_serial(void **state)
{
    (void)state;
    struct isd_font *serial_font = font_or_fail(NULL);
    struct isd_font *shared_font = font_or_fail(NULL);
    struct render_job jobs[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (struct render_job){shared_font, i, blank(200, 200)};
        assert_int_equal(pthread_create(&th[i], NULL, render_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < N_THREADS; i++) {
        struct isd_image *ref = blank(200, 200);
        render_sample(serial_font, i, ref);
        assert_true(count_alpha(ref, 1, 255) > 1000);
        assert_memory_equal(ref->rgba, jobs[i].out->rgba, 200 * 200 * 4);
        isd_image_free(ref);
        isd_image_free(jobs[i].out);
    }
    isd_font_free(serial_font);
    isd_font_free(shared_font);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_errors),
        cmocka_unit_test(measure_grows_with_size_and_text),
        cmocka_unit_test(draw_on_transparent),
        cmocka_unit_test(draw_over_opaque),
        cmocka_unit_test(clip_and_bounds),
        cmocka_unit_test(layout_wraps_words),
        cmocka_unit_test(draw_layout_places_lines),
        cmocka_unit_test(hostile_text),
        cmocka_unit_test(cache_budget_overflow),
        cmocka_unit_test(concurrent_equals_serial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
