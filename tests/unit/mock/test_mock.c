#include "support/test.h"

#include "gen/gen.h"
#include "image/image.h"
#include "mock/mock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct isd_generator *gen; /* shared by the tests: fonts load once */

/* With ISD_TEST_DUMP=dir set, writes an image as dir/name.pam (RGB_ALPHA) for a human to look
 * at; nothing otherwise. */
static void dump(const char *name, const struct isd_image *im)
{
    const char *dir = getenv("ISD_TEST_DUMP");
    if (!dir || !*dir)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.pam", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fprintf(f, "P7\nWIDTH %d\nHEIGHT %d\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n",
            im->width, im->height);
    fwrite(im->rgba, 4, (size_t)im->width * (size_t)im->height, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    struct isd_error err = {0};
    gen = isd_mock_new(NULL, &err);
    if (!gen)
        fprintf(stderr, "isd_mock_new: %s\n", err.message);
    return gen ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    isd_gen_free(gen);
    return 0;
}

static struct isd_gen_request request(const char *prompt, int w, int h, int n)
{
    return (struct isd_gen_request){.op = ISD_GEN_GENERATE,
                                    .model = "gpt-image-1",
                                    .prompt = prompt,
                                    .prompt_len = prompt ? strlen(prompt) : 0,
                                    .width = w,
                                    .height = h,
                                    .quality = "high",
                                    .n = n,
                                    .seed = 42};
}

/* Runs req with hooks and expects success; out[] gets req->n images. */
static void run_ok(const struct isd_gen_request *req, const struct isd_gen_hooks *hooks,
                   struct isd_image **out)
{
    struct isd_error err = {0};
    int rc = isd_gen_run(gen, req, hooks, out, &err);
    if (rc != 0)
        fail_msg("run failed: %d %s", rc, err.message);
    for (int i = 0; i < req->n; i++) {
        assert_non_null(out[i]);
        assert_int_equal(out[i]->width, req->width);
        assert_int_equal(out[i]->height, req->height);
    }
}

static struct isd_image *run_one(const struct isd_gen_request *req)
{
    struct isd_image *out[ISD_MOCK_MAX_N];
    run_ok(req, NULL, out);
    for (int i = 1; i < req->n; i++)
        isd_image_free(out[i]);
    return out[0];
}

static void free_all(struct isd_image **out, int n)
{
    for (int i = 0; i < n; i++)
        isd_image_free(out[i]);
}

static bool same(const struct isd_image *a, const struct isd_image *b)
{
    return a->width == b->width && a->height == b->height &&
           memcmp(a->rgba, b->rgba, (size_t)a->width * (size_t)a->height * 4) == 0;
}

/* Pixels that differ in any channel inside [x0,x1) x [y0,y1). */
static size_t diff_in(const struct isd_image *a, const struct isd_image *b, int x0, int y0, int x1,
                      int y1)
{
    size_t d = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            d += memcmp(isd_image_px(a, x, y), isd_image_px(b, x, y), 4) != 0;
    return d;
}

/* Opaque pure white pixels (only text is pure white) inside a box. */
static size_t white_in(const struct isd_image *im, int x0, int y0, int x1, int y1)
{
    size_t c = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            c += memcmp(isd_image_px(im, x, y), "\xff\xff\xff\xff", 4) == 0;
    return c;
}

static double mean_abs_error(const struct isd_image *a, const struct isd_image *b)
{
    size_t n = (size_t)a->width * (size_t)a->height * 4;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (uint64_t)abs((int)a->rgba[i] - (int)b->rgba[i]);
    return (double)sum / (double)n;
}

/* A deterministic noisy input image with values in 0..200 (never text white). */
static struct isd_image *noise_image(int w, int h, uint32_t seed, bool alpha)
{
    struct isd_error err = {0};
    struct isd_image *im = isd_image_new(w, h, &err);
    assert_non_null(im);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
        for (int k = 0; k < 3; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            im->rgba[4 * i + k] = (uint8_t)((x >> 8) % 201);
        }
        im->rgba[4 * i + 3] = alpha ? (uint8_t)((i % 3) * 120) : 255;
    }
    im->has_alpha = alpha;
    return im;
}

static struct isd_image *solid(int w, int h, uint8_t r, uint8_t g, uint8_t b)
{
    struct isd_error err = {0};
    struct isd_image *im = isd_image_new(w, h, &err);
    assert_non_null(im);
    isd_image_fill(im, r, g, b, 255);
    return im;
}

/* ---- generations ---- */

static void caps_are_full(void **state)
{
    (void)state;
    struct isd_gen_caps c;
    gen->ops->caps(gen->state, &c);
    assert_true(c.edits && c.masks && c.variations && c.partials && c.transparency);
    assert_int_equal(c.max_n, 10);
    assert_string_equal(gen->ops->name, "mock");
}

static void deterministic_and_sensitive(void **state)
{
    (void)state;
    struct isd_gen_request req = request("a red fox in the snow", 256, 256, 3);
    struct isd_image *a[3], *b[3];
    run_ok(&req, NULL, a);
    run_ok(&req, NULL, b);
    for (int i = 0; i < 3; i++)
        assert_true(same(a[i], b[i]));
    /* the n images of a request differ visibly: most pixels change */
    assert_true(diff_in(a[0], a[1], 0, 0, 256, 256) > 256 * 256 / 2);
    assert_true(diff_in(a[1], a[2], 0, 0, 256, 256) > 256 * 256 / 2);

    struct isd_gen_request other = req;
    other.n = 1;
    struct isd_image *one = run_one(&other);
    /* n changes only the facts ("image 1 of 1"), at the bottom */
    assert_int_equal(diff_in(one, a[0], 0, 0, 256, 192), 0);
    assert_true(diff_in(one, a[0], 0, 192, 256, 256) > 10);
    isd_image_free(one);

    other.prompt = "a red fox in the snoW";
    one = run_one(&other);
    assert_true(diff_in(one, a[0], 0, 0, 256, 256) > 256 * 256 / 2);
    isd_image_free(one);

    other = req;
    other.seed = 43;
    other.n = 1;
    one = run_one(&other);
    assert_true(diff_in(one, a[0], 0, 0, 256, 256) > 256 * 256 / 2);
    isd_image_free(one);

    other = req;
    other.width = 512;
    other.n = 1;
    one = run_one(&other);
    assert_int_equal(one->width, 512);
    isd_image_free(one);

    other = req;
    other.style = "vivid";
    other.n = 1;
    struct isd_image *vivid = run_one(&other);
    other.style = "natural";
    struct isd_image *natural = run_one(&other);
    /* saturation: mean (max - min) channel spread */
    uint64_t sv = 0, sn = 0;
    for (size_t i = 0; i < 256 * 256; i++) {
        const uint8_t *p = vivid->rgba + 4 * i, *q = natural->rgba + 4 * i;
        int pmax = p[0] > p[1] ? (p[0] > p[2] ? p[0] : p[2]) : (p[1] > p[2] ? p[1] : p[2]);
        int pmin = p[0] < p[1] ? (p[0] < p[2] ? p[0] : p[2]) : (p[1] < p[2] ? p[1] : p[2]);
        int qmax = q[0] > q[1] ? (q[0] > q[2] ? q[0] : q[2]) : (q[1] > q[2] ? q[1] : q[2]);
        int qmin = q[0] < q[1] ? (q[0] < q[2] ? q[0] : q[2]) : (q[1] < q[2] ? q[1] : q[2]);
        sv += (uint64_t)(pmax - pmin);
        sn += (uint64_t)(qmax - qmin);
    }
    assert_true(sv > sn * 3 / 2);
    isd_image_free(vivid);
    isd_image_free(natural);
    free_all(a, 3);
    free_all(b, 3);
}

static void sizes_honoured(void **state)
{
    (void)state;
    static const int sizes[][2] = {{256, 256}, {1024, 1536}, {3840, 2160}, {1, 1}, {37, 5}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        struct isd_gen_request req = request("size check", sizes[i][0], sizes[i][1], 1);
        struct isd_image *im = run_one(&req);
        assert_false(im->has_alpha);
        isd_image_free(im);
    }
}

static void transparency(void **state)
{
    (void)state;
    struct isd_gen_request req = request("a sticker", 256, 256, 2);
    req.transparent = true;
    struct isd_image *out[2];
    run_ok(&req, NULL, out);
    for (int i = 0; i < 2; i++) {
        size_t zero = 0, full = 0;
        for (size_t p = 0; p < 256 * 256; p++) {
            const uint8_t *px = out[i]->rgba + 4 * p;
            zero += px[3] == 0;
            if (px[3] == 255) { /* only text is opaque */
                full++;
                assert_true(px[0] >= 240 && px[1] >= 240 && px[2] >= 240);
            }
        }
        assert_true(out[i]->has_alpha);
        assert_true(zero > 1000);
        assert_true(full > 50 && white_in(out[i], 0, 0, 256, 256) > 50);
    }
    free_all(out, 2);

    req.transparent = false;
    run_ok(&req, NULL, out);
    for (int i = 0; i < 2; i++) {
        assert_false(out[i]->has_alpha);
        for (size_t p = 0; p < 256 * 256; p++)
            assert_int_equal(out[i]->rgba[4 * p + 3], 255);
    }
    free_all(out, 2);
}

static void text_is_drawn(void **state)
{
    (void)state;
    struct isd_gen_request req = request("HELLO WORLD", 256, 256, 1);
    struct isd_image *with = run_one(&req);
    req.prompt = "";
    req.prompt_len = 0;
    struct isd_image *without = run_one(&req);
    /* the prompt panel is in the top half, the facts in the bottom quarter */
    assert_true(white_in(with, 0, 0, 256, 128) > 200);
    assert_int_equal(white_in(without, 0, 0, 256, 128), 0);
    assert_true(white_in(without, 0, 192, 256, 256) > 100);
    isd_image_free(with);
    isd_image_free(without);

    /* same pattern, different facts ("image 1 of 1" vs "image 1 of 2"): only the facts panel
     * at the bottom left changes */
    req = request("facts", 256, 256, 1);
    struct isd_image *n1 = run_one(&req);
    req.n = 2;
    struct isd_image *n2 = run_one(&req);
    assert_true(diff_in(n1, n2, 0, 192, 256, 256) > 10);
    assert_int_equal(diff_in(n1, n2, 0, 0, 256, 192), 0);
    isd_image_free(n1);
    isd_image_free(n2);

    /* the text scales with the image */
    req = request("HELLO WORLD", 1024, 1024, 1);
    struct isd_image *big = run_one(&req);
    assert_true(white_in(big, 0, 0, 1024, 512) > 200 * 12);
    isd_image_free(big);
}

/* ---- edits ---- */

static void mask_keeps_and_repaints(void **state)
{
    (void)state;
    for (int transparent = 0; transparent < 2; transparent++) {
        struct isd_image *in = noise_image(256, 256, 7, transparent);
        struct isd_error err = {0};
        struct isd_image *mask = isd_image_new(256, 256, &err);
        assert_non_null(mask);
        /* left half kept (alpha 255), right half repainted (0), a half-alpha column at 127 */
        for (int y = 0; y < 256; y++)
            for (int x = 0; x < 256; x++)
                memcpy(isd_image_px(mask, x, y),
                       x < 127    ? "\0\0\0\xff"
                       : x == 127 ? "\0\0\0\x80"
                                  : "\0\0\0\0",
                       4);
        struct isd_gen_request req = request("PAINT HERE", 256, 256, 2);
        req.op = ISD_GEN_EDIT;
        req.inputs[0] = in;
        req.n_inputs = 1;
        req.mask = mask;
        req.transparent = transparent;
        struct isd_image *out[2];
        run_ok(&req, NULL, out);
        dump(transparent ? "mask_half_transparent" : "mask_half", out[0]);
        for (int i = 0; i < 2; i++) {
            for (int y = 0; y < 256; y++) {
                const uint8_t *a = isd_image_px(out[i], 0, y), *b = isd_image_px(in, 0, y);
                if (transparent)
                    assert_memory_equal(a, b, 127 * 4); /* bit for bit, alpha too */
                for (int x = 0; x < 127; x++) {
                    assert_memory_equal(a + 4 * x, b + 4 * x, 3);
                    assert_int_equal(a[4 * x + 3], transparent ? b[4 * x + 3] : 255);
                }
            }
            assert_true(diff_in(out[i], in, 128, 0, 256, 256) > 128 * 256 * 9 / 10);
            /* the prompt is drawn inside the repainted half */
            assert_true(white_in(out[i], 128, 0, 256, 256) > 100);
            assert_int_equal(out[i]->has_alpha, transparent);
        }
        assert_true(diff_in(out[0], out[1], 128, 0, 256, 256) > 128 * 256 / 2);
        free_all(out, 2);
        isd_image_free(in);
        isd_image_free(mask);
    }
}

static void mask_half_alpha_blends(void **state)
{
    (void)state;
    struct isd_image *in = solid(64, 64, 0, 0, 0);
    struct isd_error err = {0};
    struct isd_image *mask = isd_image_new(64, 64, &err);
    assert_non_null(mask);
    isd_image_fill(mask, 0, 0, 0, 127);
    struct isd_gen_request req = request("", 64, 64, 1);
    req.op = ISD_GEN_EDIT;
    req.inputs[0] = in;
    req.n_inputs = 1;
    req.mask = mask;
    struct isd_image *out = run_one(&req);
    isd_image_fill(mask, 0, 0, 0, 0);
    struct isd_image *full = run_one(&req);
    /* output = (input * 127 + layer * 128) / 255 with input black: about half the layer */
    for (size_t i = 0; i < 64 * 64; i++) {
        for (int k = 0; k < 3; k++) {
            int want = (full->rgba[4 * i + k] * 128 + 127) / 255;
            assert_true(abs(out->rgba[4 * i + k] - want) <= 1);
        }
    }
    isd_image_free(out);
    isd_image_free(full);
    isd_image_free(in);
    isd_image_free(mask);
}

static void mask_edit_resizes(void **state)
{
    (void)state;
    struct isd_image *in = noise_image(128, 96, 3, false);
    struct isd_error err = {0};
    struct isd_image *mask = isd_image_new(128, 96, &err);
    assert_non_null(mask);
    /* 16-pixel checker of kept/repainted cells: nearest-neighbour keeps it crisp at 2x */
    for (int y = 0; y < 96; y++)
        for (int x = 0; x < 128; x++)
            isd_image_px(mask, x, y)[3] = ((x / 16 + y / 16) & 1) ? 255 : 0;
    struct isd_gen_request req = request("resized edit", 256, 192, 1);
    req.op = ISD_GEN_EDIT;
    req.inputs[0] = in;
    req.n_inputs = 1;
    req.mask = mask;
    struct isd_image *out = run_one(&req);
    struct isd_image *ref = isd_image_resize(in, 256, 192, &err);
    assert_non_null(ref);
    size_t kept = 0, changed = 0;
    for (int y = 0; y < 192; y++) {
        for (int x = 0; x < 256; x++) {
            bool keep = ((x / 32 + y / 32) & 1) != 0;
            bool eq = memcmp(isd_image_px(out, x, y), isd_image_px(ref, x, y), 4) == 0;
            if (keep) {
                assert_true(eq);
                kept++;
            } else {
                changed += !eq;
            }
        }
    }
    assert_int_equal(kept, 256 * 192 / 2);
    assert_true(changed > kept * 9 / 10);
    isd_image_free(out);
    isd_image_free(ref);

    /* mask of a different size than the image: refused */
    struct isd_image *small = isd_image_new(64, 48, &err);
    assert_non_null(small);
    req.mask = small;
    struct isd_image *o[1] = {(struct isd_image *)1};
    assert_int_equal(isd_gen_run(gen, &req, NULL, o, &err), -ISD_E_INVALID_MASK);
    isd_image_free(small);
    isd_image_free(in);
    isd_image_free(mask);
}

static void mask_text_only_in_region(void **state)
{
    (void)state;
    struct isd_image *in = noise_image(256, 256, 11, false);
    struct isd_error err = {0};
    struct isd_image *mask = isd_image_new(256, 256, &err);
    assert_non_null(mask);
    isd_image_fill(mask, 0, 0, 0, 255);
    for (int y = 140; y < 240; y++)
        for (int x = 140; x < 250; x++)
            isd_image_px(mask, x, y)[3] = 0;
    struct isd_gen_request req = request("TEXT IN THE HOLE", 256, 256, 1);
    req.op = ISD_GEN_EDIT;
    req.inputs[0] = in;
    req.n_inputs = 1;
    req.mask = mask;
    struct isd_image *out = run_one(&req);
    dump("mask_hole", out);
    for (int y = 0; y < 256; y++)
        for (int x = 0; x < 256; x++)
            if (!(x >= 140 && x < 250 && y >= 140 && y < 240))
                assert_memory_equal(isd_image_px(out, x, y), isd_image_px(in, x, y), 4);
    assert_true(white_in(out, 140, 140, 250, 240) > 100);
    isd_image_free(out);

    /* a tiny hole gets the pattern only */
    isd_image_fill(mask, 0, 0, 0, 255);
    for (int y = 10; y < 20; y++)
        for (int x = 10; x < 30; x++)
            isd_image_px(mask, x, y)[3] = 0;
    out = run_one(&req);
    assert_int_equal(white_in(out, 0, 0, 256, 256), 0);
    assert_true(diff_in(out, in, 10, 10, 30, 20) > 150);
    assert_int_equal(diff_in(out, in, 0, 0, 256, 256), diff_in(out, in, 10, 10, 30, 20));
    isd_image_free(out);
    isd_image_free(in);
    isd_image_free(mask);
}

static void composition_uses_every_input(void **state)
{
    (void)state;
    enum { N_IN = 5 };
    struct isd_image *in[N_IN];
    for (int i = 0; i < N_IN; i++)
        in[i] = solid(40 + i * 10, 30 + i * 7, (uint8_t)(i * 50), (uint8_t)(200 - i * 40), 90);
    struct isd_gen_request req = request("combine these", 256, 256, 1);
    req.op = ISD_GEN_EDIT;
    req.n_inputs = N_IN;
    for (int i = 0; i < N_IN; i++)
        req.inputs[i] = in[i];
    struct isd_image *base = run_one(&req);
    dump("composition", base);
    struct isd_image *again = run_one(&req);
    assert_true(same(base, again));
    isd_image_free(again);
    for (int i = 0; i < N_IN; i++) {
        struct isd_image *changed = solid(17, 23, 255, 0, 255);
        req.inputs[i] = changed;
        struct isd_image *out = run_one(&req);
        assert_true(diff_in(out, base, 0, 0, 256, 256) > 256 * 256 / 12);
        isd_image_free(out);
        isd_image_free(changed);
        req.inputs[i] = in[i];
    }
    /* the prompt is drawn over the composition */
    assert_true(white_in(base, 0, 0, 256, 128) > 100);

    /* a transparent composition keeps the inputs' alpha where the panels are not */
    struct isd_image *clear = noise_image(64, 64, 5, false);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 32; x++)
            isd_image_px(clear, x, y)[3] = 0;
    clear->has_alpha = true;
    req.n_inputs = 1;
    req.inputs[0] = clear;
    req.transparent = true;
    struct isd_image *t = run_one(&req);
    dump("composition_transparent", t);
    assert_true(t->has_alpha);
    size_t zero = 0;
    for (size_t p = 0; p < 256 * 256; p++)
        zero += t->rgba[4 * p + 3] == 0;
    assert_true(zero > 256 * 256 / 4);
    isd_image_free(t);
    isd_image_free(clear);
    for (int i = 0; i < N_IN; i++)
        isd_image_free(in[i]);
    isd_image_free(base);
}

static void masked_edit_with_references(void **state)
{
    (void)state;
    struct isd_image *in = noise_image(128, 128, 1, false);
    struct isd_image *ref_a = solid(32, 32, 250, 10, 10);
    struct isd_image *ref_b = solid(32, 32, 10, 10, 250);
    struct isd_error err = {0};
    struct isd_image *mask = isd_image_new(128, 128, &err);
    assert_non_null(mask);
    isd_image_fill(mask, 0, 0, 0, 0);
    struct isd_gen_request req = request("", 128, 128, 1);
    req.op = ISD_GEN_EDIT;
    req.inputs[0] = in;
    req.inputs[1] = ref_a;
    req.n_inputs = 2;
    req.mask = mask;
    struct isd_image *a = run_one(&req);
    req.inputs[1] = ref_b;
    struct isd_image *b = run_one(&req);
    assert_true(diff_in(a, b, 0, 0, 128, 128) > 128 * 128 * 9 / 10);
    isd_image_free(a);
    isd_image_free(b);
    isd_image_free(in);
    isd_image_free(ref_a);
    isd_image_free(ref_b);
    isd_image_free(mask);
}

/* ---- variations ---- */

static void variations_distinct_and_deterministic(void **state)
{
    (void)state;
    struct isd_image *in = noise_image(64, 80, 9, false);
    struct isd_gen_request req = request(NULL, 256, 256, 6);
    req.op = ISD_GEN_VARIATION;
    req.model = "dall-e-2";
    req.quality = "standard";
    req.inputs[0] = in;
    req.n_inputs = 1;
    struct isd_image *a[6], *b[6];
    run_ok(&req, NULL, a);
    run_ok(&req, NULL, b);
    dump("variation_0", a[0]);
    dump("variation_1", a[1]);
    for (int i = 0; i < 6; i++) {
        assert_true(same(a[i], b[i]));
        assert_false(a[i]->has_alpha);
        for (int k = i + 1; k < 6; k++)
            assert_true(diff_in(a[i], a[k], 0, 0, 256, 256) > 256 * 256 / 2);
        assert_true(white_in(a[i], 0, 192, 256, 256) > 50);  /* "variation i of n" */
        assert_int_equal(white_in(a[i], 0, 0, 256, 128), 0); /* no prompt panel */
    }
    /* another input gives other variants */
    struct isd_image *other = noise_image(64, 80, 10, false);
    req.inputs[0] = other;
    struct isd_image *o[6];
    run_ok(&req, NULL, o);
    for (int i = 0; i < 6; i++)
        assert_false(same(a[i], o[i]));
    free_all(o, 6);
    free_all(a, 6);
    free_all(b, 6);
    isd_image_free(other);
    isd_image_free(in);
}

/* ---- partial images, progress, abort ---- */

struct recorder {
    int events[64];                 /* 100 * image + partial index, or 1000 + image for done */
    int n_events;                   /* count */
    struct isd_image *partials[10]; /* copies of image 0's partials */
    int n_partials;                 /* partials seen in total */
    int abort_after_partials;       /* should_abort true once this many partials came; 0: never */
    int done_rc;                    /* image_done's return */
    int last_step[10];              /* progress: last step per image */
    int n_steps;                    /* progress: n_steps seen */
    bool progress_ok;               /* steps increase by one */
};

static bool rec_abort(void *ctx)
{
    struct recorder *r = ctx;
    return r->abort_after_partials > 0 && r->n_partials >= r->abort_after_partials;
}

static void rec_progress(void *ctx, int index, int step, int n_steps)
{
    struct recorder *r = ctx;
    if (step != r->last_step[index] + 1 || (r->n_steps && n_steps != r->n_steps))
        r->progress_ok = false;
    r->last_step[index] = step;
    r->n_steps = n_steps;
}

static int rec_partial(void *ctx, int index, int pi, const struct isd_image *img)
{
    struct recorder *r = ctx;
    if (r->n_events < 64)
        r->events[r->n_events++] = 100 * index + pi;
    if (index == 0 && pi < 10) {
        struct isd_error err = {0};
        r->partials[pi] = isd_image_clone(img, &err);
    }
    r->n_partials++;
    return 0;
}

static int rec_done(void *ctx, int index, const struct isd_image *img)
{
    struct recorder *r = ctx;
    (void)img;
    if (r->n_events < 64)
        r->events[r->n_events++] = 1000 + index;
    return r->done_rc;
}

static struct isd_gen_hooks rec_hooks(struct recorder *r)
{
    memset(r, 0, sizeof *r);
    r->progress_ok = true;
    return (struct isd_gen_hooks){.ctx = r,
                                  .should_abort = rec_abort,
                                  .progress = rec_progress,
                                  .partial = rec_partial,
                                  .image_done = rec_done};
}

static void partial_images_refine(void **state)
{
    (void)state;
    for (int k = 1; k <= 3; k++) {
        for (int transparent = 0; transparent < 2; transparent++) {
            struct recorder r;
            struct isd_gen_hooks hooks = rec_hooks(&r);
            struct isd_gen_request req = request("partials please", 256, 256, 2);
            req.partial_images = k;
            req.transparent = transparent;
            struct isd_image *out[2];
            run_ok(&req, &hooks, out);
            /* order: image 0's partials 0..k-1 then done, then image 1's */
            assert_int_equal(r.n_events, 2 * (k + 1));
            for (int i = 0; i < 2; i++) {
                for (int p = 0; p < k; p++)
                    assert_int_equal(r.events[i * (k + 1) + p], 100 * i + p);
                assert_int_equal(r.events[i * (k + 1) + k], 1000 + i);
            }
            assert_true(r.progress_ok);
            assert_int_equal(r.n_steps, 3 + k);
            assert_int_equal(r.last_step[0], 3 + k);
            assert_int_equal(r.last_step[1], 3 + k);
            double prev = 1e9;
            if (k == 3 && !transparent) {
                dump("partial_0", r.partials[0]);
                dump("partial_1", r.partials[1]);
                dump("partial_2", r.partials[2]);
                dump("partial_final", out[0]);
            }
            for (int p = 0; p < k; p++) {
                assert_int_equal(r.partials[p]->width, 256);
                assert_int_equal(r.partials[p]->height, 256);
                assert_int_equal(r.partials[p]->has_alpha, transparent);
                double mae = mean_abs_error(r.partials[p], out[0]);
                assert_true(mae > 0 && mae < prev);
                prev = mae;
                isd_image_free(r.partials[p]);
            }
            /* partials do not change the final image */
            struct isd_gen_request plain = req;
            plain.partial_images = 0;
            struct isd_image *ref[2];
            run_ok(&plain, NULL, ref);
            assert_true(same(ref[0], out[0]) && same(ref[1], out[1]));
            free_all(ref, 2);
            free_all(out, 2);
        }
    }
    /* the first partial has no text: n = 1 and n = 2 (other facts text, same pattern) give the
     * same partial 0 and different partials 1 */
    struct recorder r1, r2;
    struct isd_gen_hooks h1 = rec_hooks(&r1), h2 = rec_hooks(&r2);
    struct isd_gen_request req = request("HELLO WORLD", 256, 256, 1);
    req.partial_images = 2;
    struct isd_image *out[2];
    run_ok(&req, &h1, out);
    isd_image_free(out[0]);
    req.n = 2;
    run_ok(&req, &h2, out);
    free_all(out, 2);
    assert_true(same(r1.partials[0], r2.partials[0]));
    assert_false(same(r1.partials[1], r2.partials[1]));
    for (int p = 0; p < 2; p++) {
        isd_image_free(r1.partials[p]);
        isd_image_free(r2.partials[p]);
    }
}

static void abort_after_first_partial(void **state)
{
    (void)state;
    struct recorder r;
    struct isd_gen_hooks hooks = rec_hooks(&r);
    r.abort_after_partials = 1;
    struct isd_gen_request req = request("stop me", 512, 512, 3);
    req.partial_images = 3;
    struct isd_image *out[3] = {(struct isd_image *)1, (struct isd_image *)1,
                                (struct isd_image *)1};
    struct isd_error err = {0};
    assert_int_equal(isd_gen_run(gen, &req, &hooks, out, &err), -ISD_E_CANCELLED);
    assert_int_equal(err.id, ISD_E_CANCELLED);
    for (int i = 0; i < 3; i++)
        assert_null(out[i]);
    assert_int_equal(r.n_partials, 1);
    assert_int_equal(r.n_events, 1); /* no image_done */
    isd_image_free(r.partials[0]);

    /* abort in the second image, after the first completed: its output is freed too */
    hooks = rec_hooks(&r);
    r.abort_after_partials = 4;
    req.partial_images = 3;
    for (int i = 0; i < 3; i++)
        out[i] = (struct isd_image *)1;
    assert_int_equal(isd_gen_run(gen, &req, &hooks, out, &err), -ISD_E_CANCELLED);
    for (int i = 0; i < 3; i++)
        assert_null(out[i]);
    assert_int_equal(r.n_partials, 4);
    for (int p = 0; p < 3; p++)
        isd_image_free(r.partials[p]);

    /* a hook refusing an image stops the job with its value */
    hooks = rec_hooks(&r);
    r.done_rc = -ISD_E_IO;
    req.partial_images = 0;
    assert_int_equal(isd_gen_run(gen, &req, &hooks, out, &err), -ISD_E_IO);
    for (int i = 0; i < 3; i++)
        assert_null(out[i]);
    assert_int_equal(r.n_events, 1);

    /* masked edit and variation abort as well */
    struct isd_image *in = noise_image(128, 128, 2, false);
    struct isd_image *mask = solid(128, 128, 0, 0, 0);
    isd_image_fill(mask, 0, 0, 0, 0);
    hooks = rec_hooks(&r);
    r.abort_after_partials = 1;
    req = request("edit", 128, 128, 2);
    req.op = ISD_GEN_EDIT;
    req.inputs[0] = in;
    req.n_inputs = 1;
    req.mask = mask;
    req.partial_images = 2;
    assert_int_equal(isd_gen_run(gen, &req, &hooks, out, &err), -ISD_E_CANCELLED);
    assert_null(out[0]);
    assert_null(out[1]);
    isd_image_free(r.partials[0]);
    hooks = rec_hooks(&r);
    r.abort_after_partials = 1;
    req.op = ISD_GEN_VARIATION;
    req.mask = NULL;
    assert_int_equal(isd_gen_run(gen, &req, &hooks, out, &err), -ISD_E_CANCELLED);
    assert_null(out[0]);
    isd_image_free(r.partials[0]);
    isd_image_free(in);
    isd_image_free(mask);
}

static bool always(void *ctx)
{
    (void)ctx;
    return true;
}

static void abort_before_start_and_stage_delay(void **state)
{
    (void)state;
    struct isd_gen_hooks hooks = {.should_abort = always};
    struct isd_gen_request req = request("x", 64, 64, 2);
    struct isd_image *out[2];
    struct isd_error err = {0};
    assert_int_equal(isd_gen_run(gen, &req, &hooks, out, &err), -ISD_E_CANCELLED);
    assert_null(out[0]);
    assert_null(out[1]);

    /* with a stage delay, an abort during the pause stops the job before the next stage */
    struct isd_mock_options o = {.stage_delay_ms = 25};
    struct isd_generator *slow = isd_mock_new(&o, &err);
    assert_non_null(slow);
    struct recorder r;
    hooks = rec_hooks(&r);
    r.abort_after_partials = 1;
    req.partial_images = 2;
    assert_int_equal(isd_gen_run(slow, &req, &hooks, out, &err), -ISD_E_CANCELLED);
    assert_int_equal(r.n_partials, 1);
    isd_image_free(r.partials[0]);
    hooks = rec_hooks(&r);
    req.n = 1;
    assert_int_equal(isd_gen_run(slow, &req, &hooks, out, &err), 0);
    assert_int_equal(r.n_partials, 2);
    isd_image_free(r.partials[0]);
    isd_image_free(r.partials[1]);
    isd_image_free(out[0]);
    isd_gen_free(slow);

    /* font paths are honoured */
    struct isd_mock_options bad = {.font_path = "/nonexistent.ttf"};
    assert_null(isd_mock_new(&bad, &err));
    assert_int_equal(err.id, ISD_E_IO);
}

static void invalid_requests(void **state)
{
    (void)state;
    struct isd_error err = {0};
    struct isd_image *out[ISD_MOCK_MAX_N + 1];
    struct isd_gen_request req = request("x", 64, 64, 0);
    assert_int_equal(isd_gen_run(gen, &req, NULL, out, &err), -ISD_E_INVALID_VALUE);
    req.n = 11;
    assert_int_equal(isd_gen_run(gen, &req, NULL, out, &err), -ISD_E_INVALID_VALUE);
    req.n = 1;
    req.partial_images = 4;
    assert_int_equal(isd_gen_run(gen, &req, NULL, out, &err), -ISD_E_INVALID_VALUE);
    req.partial_images = 0;
    req.width = 0;
    assert_int_equal(isd_gen_run(gen, &req, NULL, out, &err), -ISD_E_INVALID_VALUE);
    assert_null(out[0]);
    req.width = 20000;
    assert_int_equal(isd_gen_run(gen, &req, NULL, out, &err), -ISD_E_INVALID_VALUE);
    req.width = 64;
    req.op = ISD_GEN_EDIT;
    assert_int_equal(isd_gen_run(gen, &req, NULL, out, &err), -ISD_E_INVALID_VALUE);
    req.op = ISD_GEN_VARIATION;
    assert_int_equal(isd_gen_run(gen, &req, NULL, out, &err), -ISD_E_INVALID_VALUE);
    req.n_inputs = 1;
    assert_int_equal(isd_gen_run(gen, &req, NULL, out, &err), -ISD_E_INVALID_VALUE);
    /* NULL model, quality and prompt are tolerated */
    req = request(NULL, 64, 64, 1);
    req.model = NULL;
    req.quality = NULL;
    req.prompt_len = 5;
    struct isd_image *im = run_one(&req);
    isd_image_free(im);
}

static void hostile_prompts(void **state)
{
    (void)state;
    static const char nul[] = "before\0after\0\0\xff\xfe";
    struct isd_gen_request req = request(NULL, 256, 256, 1);
    const char *samples[] = {
        "\xff\xfe\xfd\xc0\xaf\xed\xa0\x80\xf8\x88\x80\x80\x80",
        "\xf0\x9f\x98\x80\xf0\x9f\x8e\xa8 emoji \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9",
        "\xe7\x8c\xab\xe3\x81\xae\xe7\xb5\xb5 \xe4\xb8\xad\xe6\x96\x87\xe6\x8f\x90\xe7\xa4\xba",
        "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd8\xb9\xd8\xa7\xd9\x84\xd9\x85 \xe2\x80\xae rtl",
        "Z\xcc\xb5\xcd\x8c\xcd\x9d\xcc\xa1"
        "a\xcc\xb8\xcc\x8d\xcd\x87l\xcc\xb7\xcd\x83g\xcc\xb6o",
    };
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        req.prompt = samples[i];
        req.prompt_len = strlen(samples[i]);
        isd_image_free(run_one(&req));
    }
    req.prompt = nul;
    req.prompt_len = sizeof nul - 1;
    isd_image_free(run_one(&req));

    size_t n = 32000;
    char *big = malloc(n);
    assert_non_null(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big[i] = (char)x;
    }
    req.prompt = big;
    req.prompt_len = n;
    isd_image_free(run_one(&req));
    for (size_t i = 0; i < n; i++)
        big[i] = "a long prompt "[i % 14];
    req.width = 1024;
    req.height = 1024;
    struct isd_image *im = run_one(&req);
    assert_true(white_in(im, 0, 0, 1024, 512) > 1000);
    isd_image_free(im);
    free(big);
}

/* ---- concurrency ---- */

#define N_THREADS 4

struct thread_job {
    struct isd_generator *g;
    struct isd_gen_request req;
    struct isd_image *out[2];
    int rc;
};

static void *thread_run(void *arg)
{
    struct thread_job *j = arg;
    struct isd_error err = {0};
    j->rc = isd_gen_run(j->g, &j->req, NULL, j->out, &err);
    return NULL;
}

static void concurrent_equals_serial(void **state)
{
    (void)state;
    struct isd_error err = {0};
    struct isd_generator *cold = isd_mock_new(NULL, &err); /* empty glyph caches */
    assert_non_null(cold);
    static const char *prompts[N_THREADS] = {"one thread", "two threads \xe2\x9c\x93",
                                             "three, with a longer prompt that wraps a lot",
                                             "four \xc3\xa9\xc3\xa8"};
    static const int sizes[N_THREADS][2] = {{256, 256}, {512, 384}, {300, 500}, {1024, 256}};
    struct thread_job jobs[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] =
            (struct thread_job){.g = cold, .req = request(prompts[i], sizes[i][0], sizes[i][1], 2)};
        jobs[i].req.transparent = i & 1;
        jobs[i].req.seed = (uint64_t)i * 77;
        assert_int_equal(pthread_create(&th[i], NULL, thread_run, &jobs[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(jobs[i].rc, 0);
        struct isd_image *ref[2];
        run_ok(&jobs[i].req, NULL, ref);
        assert_true(same(ref[0], jobs[i].out[0]));
        assert_true(same(ref[1], jobs[i].out[1]));
        free_all(ref, 2);
        free_all(jobs[i].out, 2);
    }
    isd_gen_free(cold);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caps_are_full),
        cmocka_unit_test(deterministic_and_sensitive),
        cmocka_unit_test(sizes_honoured),
        cmocka_unit_test(transparency),
        cmocka_unit_test(text_is_drawn),
        cmocka_unit_test(mask_keeps_and_repaints),
        cmocka_unit_test(mask_half_alpha_blends),
        cmocka_unit_test(mask_edit_resizes),
        cmocka_unit_test(mask_text_only_in_region),
        cmocka_unit_test(composition_uses_every_input),
        cmocka_unit_test(masked_edit_with_references),
        cmocka_unit_test(variations_distinct_and_deterministic),
        cmocka_unit_test(partial_images_refine),
        cmocka_unit_test(abort_after_first_partial),
        cmocka_unit_test(abort_before_start_and_stage_delay),
        cmocka_unit_test(invalid_requests),
        cmocka_unit_test(hostile_prompts),
        cmocka_unit_test(concurrent_equals_serial),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
