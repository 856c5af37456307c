/*
 * The diffusion generator on tiny random-weight models written at test time (tiny-sd1 and
 * tiny-inpaint from tests/unit/support/sdmodel, a small synthetic CLIP vocabulary): size
 * planning, quality -> steps, extension fields, seeds, edits with and without masks (kept
 * pixels exact), the inpainting checkpoint, variations, partial images, cancellation (running
 * and waiting for a context), concurrent runs, options and load errors.
 */
#include "support/test.h"

#include "diffusion/diffusion.h"
#include "engine/engine.h"
#include "support/clipvocab.h"
#include "support/sdmodel.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SIDE 32 /* native_size of the test generators; the tiny UNet needs multiples of 16 */

static char tmp[4096], vocab_dir[4200], sd1_path[4200], inpaint_path[4200];
static struct isd_generator *gen;  /* tiny-sd1, native 32, steps 2/3/4 of euler */
static struct isd_engine *eng;     /* the same model, driven directly: the reference */
static struct isd_op_ctx *eng_ops; /* one thread, like the generator's context */

static void write_model(const char *preset, const char *path)
{
    struct isd_sdm_config cfg;
    struct isd_sdm_options o;
    char msg[512];
    assert_int_equal(isd_sdm_preset(preset, &cfg), 0);
    isd_sdm_options_init(&o);
    o.seed = 11;
    if (isd_sdm_write(&cfg, &o, path, msg, sizeof msg) < 0)
        fail_msg("write %s: %s", path, msg);
}

static void test_options(struct isd_diffusion_options *o, const char *checkpoint)
{
    isd_diffusion_options_init(o);
    o->checkpoint = checkpoint;
    o->tokenizer = vocab_dir;
    o->native_size = SIDE;
    o->steps[ISD_DQ_LOW] = 2;
    o->steps[ISD_DQ_MEDIUM] = 3;
    o->steps[ISD_DQ_HIGH] = 4;
    for (int q = 0; q < ISD_DQ__COUNT; q++)
        o->sampler[q] = "euler";
    o->scheduler = "discrete";
    o->threads = 1;
}

static struct isd_generator *new_gen(const struct isd_diffusion_options *o)
{
    struct isd_error err = {0};
    struct isd_generator *g = isd_diffusion_new(o, &err);
    if (!g)
        fail_msg("isd_diffusion_new: %s", err.message);
    return g;
}

static int setup(void **state)
{
    (void)state;
    struct isd_eng_error ee = {0};
    snprintf(tmp, sizeof tmp, "%s", isd_test_tmpdir());
    snprintf(vocab_dir, sizeof vocab_dir, "%s/vocab", tmp);
    snprintf(sd1_path, sizeof sd1_path, "%s/tiny-sd1.safetensors", tmp);
    snprintf(inpaint_path, sizeof inpaint_path, "%s/tiny-inpaint.safetensors", tmp);
    assert_int_equal(mkdir(vocab_dir, 0700), 0);
    if (isd_cv_write(vocab_dir, ISD_CV_SMALL, 3, &ee) < 0)
        fail_msg("vocab: %s", ee.msg);
    write_model("tiny-sd1", sd1_path);
    write_model("tiny-inpaint", inpaint_path);
    struct isd_diffusion_options o;
    test_options(&o, sd1_path);
    gen = new_gen(&o);
    struct isd_engine_options eo;
    isd_engine_options_init(&eo);
    eo.model = sd1_path;
    eo.tokenizer = vocab_dir;
    eo.threads = 1;
    if (isd_engine_load(&eo, &eng, &ee) < 0)
        fail_msg("engine: %s", ee.msg);
    struct isd_op_ctx_params p = {.threads = 1};
    eng_ops = isd_op_ctx_new(&p, &ee);
    assert_non_null(eng_ops);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    isd_gen_free(gen);
    isd_op_ctx_free(eng_ops);
    isd_engine_free(eng);
    return 0;
}

/* ---- helpers ---- */

static void request(struct isd_gen_request *r, const char *prompt)
{
    memset(r, 0, sizeof *r);
    r->op = ISD_GEN_GENERATE;
    r->model = "tiny";
    r->prompt = prompt;
    r->prompt_len = strlen(prompt);
    r->width = SIDE;
    r->height = SIDE;
    r->quality = "medium";
    r->n = 1;
    r->seed = 42;
}

/* every hook call of a run */
struct rec {
    int progress;               /* progress calls */
    int n_steps;                /* n_steps of the last progress call */
    int step[10];               /* last progress step of each image */
    int partials[10];           /* partial calls per image */
    int partial_index[10][4];   /* their indices ... */
    int partial_at[10][4];      /* ... and the progress step each followed */
    int partial_w, partial_h;   /* size of the last partial */
    int done[10];               /* image_done calls per image */
    int done_order[10], n_done; /* image_done indices in call order */
    const struct isd_image *done_img[10];
    int abort_after;              /* > 0: should_abort true once this many progress calls */
    int abort_polls;              /* should_abort calls */
    int abort_after_polls;        /* > 0: should_abort true after this many polls */
    int partial_rc;               /* what the partial hook returns */
    atomic_int hold;              /* progress blocks while set (tests of waiting) */
    atomic_int started;           /* set by the first progress call */
    struct isd_gen_report report; /* filled by run() */
};

static bool rec_abort(void *ctx)
{
    struct rec *r = ctx;
    r->abort_polls++;
    if (r->abort_after_polls > 0 && r->abort_polls >= r->abort_after_polls)
        return true;
    return r->abort_after > 0 && r->progress >= r->abort_after;
}

static void rec_progress(void *ctx, int index, int step, int n_steps)
{
    struct rec *r = ctx;
    assert_true(index >= 0 && index < 10);
    assert_int_equal(step, r->step[index] + 1); /* 1..n_steps in order */
    r->step[index] = step;
    r->n_steps = n_steps;
    r->progress++;
    r->started = 1;
    while (r->hold) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

static int rec_partial(void *ctx, int index, int pi, const struct isd_image *img)
{
    struct rec *r = ctx;
    assert_int_equal(r->done[index], 0); /* partials come before image_done */
    assert_true(r->partials[index] < 4);
    r->partial_index[index][r->partials[index]] = pi;
    r->partial_at[index][r->partials[index]] = r->step[index];
    r->partials[index]++;
    r->partial_w = img->width;
    r->partial_h = img->height;
    assert_false(img->has_alpha);
    return r->partial_rc;
}

static int rec_done(void *ctx, int index, const struct isd_image *img)
{
    struct rec *r = ctx;
    r->done[index]++;
    r->done_img[index] = img;
    r->done_order[r->n_done++] = index;
    return 0;
}

static struct isd_gen_hooks hooks_of(struct rec *r)
{
    return (struct isd_gen_hooks){r, rec_abort, rec_progress, rec_partial, rec_done, &r->report};
}

/* runs req on g and checks the images; out[] must be freed by the caller */
static void run_ok(struct isd_generator *g, const struct isd_gen_request *req, struct rec *r,
                   struct isd_image **out)
{
    struct rec local;
    if (!r) {
        memset(&local, 0, sizeof local);
        r = &local;
    }
    struct isd_gen_hooks h = hooks_of(r);
    struct isd_error err = {0};
    int rc = isd_gen_run(g, req, &h, out, &err);
    if (rc < 0)
        fail_msg("run: %d %s (param %s)", rc, err.message, err.param);
    for (int i = 0; i < req->n; i++) {
        assert_non_null(out[i]);
        assert_int_equal(out[i]->width, req->width);
        assert_int_equal(out[i]->height, req->height);
        assert_false(out[i]->has_alpha);
        assert_int_equal(r->done[i], 1);
        assert_ptr_equal(r->done_img[i], out[i]);
        assert_int_equal(r->done_order[i], i);
    }
}

static struct isd_image *run_one(struct isd_generator *g, const struct isd_gen_request *req)
{
    struct isd_image *out[10] = {0};
    assert_int_equal(req->n, 1);
    run_ok(g, req, NULL, out);
    return out[0];
}

static bool same_pixels(const struct isd_image *a, const struct isd_image *b)
{
    return a->width == b->width && a->height == b->height &&
           memcmp(a->rgba, b->rgba, (size_t)a->width * a->height * 4) == 0;
}

/* mean |a - b| over the RGB values */
static double mean_diff(const struct isd_image *a, const struct isd_image *b)
{
    size_t n = (size_t)a->width * a->height;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            sum += fabs((double)a->rgba[4 * i + c] - b->rgba[4 * i + c]);
    return sum / (3.0 * (double)n);
}

/* A w x h input: a smooth, strongly coloured picture (orange to purple), opaque. */
static struct isd_image *picture(int w, int h)
{
    struct isd_error err = {0};
    struct isd_image *im = isd_image_new(w, h, &err);
    assert_non_null(im);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = isd_image_px(im, x, y);
            p[0] = (uint8_t)(230 - 100 * y / h);
            p[1] = (uint8_t)(120 + 60 * sin(x * 0.3));
            p[2] = (uint8_t)(30 + 150 * x / w);
            p[3] = 255;
        }
    return im;
}

/* A mask of w x h: alpha 0 (repaint) inside the centre square [w/4, 3w/4), 255 elsewhere. */
static struct isd_image *centre_mask(int w, int h)
{
    struct isd_error err = {0};
    struct isd_image *m = isd_image_new(w, h, &err);
    assert_non_null(m);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = isd_image_px(m, x, y);
            bool hole = x >= w / 4 && x < 3 * w / 4 && y >= h / 4 && y < 3 * h / 4;
            p[0] = p[1] = p[2] = 0;
            p[3] = hole ? 0 : 255;
        }
    m->has_alpha = true;
    return m;
}

static void free_images(struct isd_image **out, int n)
{
    for (int i = 0; i < n; i++) {
        isd_image_free(out[i]);
        out[i] = NULL;
    }
}

/* ---- the engine driven directly, as the generator should drive it ---- */

/* what the generator should ask the engine for a 32x32 request of the test generator */
static void engine_request(struct isd_engine_request *rq, const char *prompt, int steps)
{
    isd_engine_request_init(rq);
    rq->prompt = prompt;
    rq->negative_prompt = "";
    rq->width = SIDE;
    rq->height = SIDE;
    rq->steps = steps;
    rq->guidance = 7.5;
    rq->sampler = "euler";
    rq->scheduler = "discrete";
    rq->seed = 42;
}

struct latent_capture {
    int step;       /* capture the preview latent of image 0 after this step */
    float lat[256]; /* [4][h][w] */
    int h, w;
};

static void capture_preview(void *ctx, int image, int step, int steps, const float *latent,
                            int channels, int h, int w)
{
    struct latent_capture *c = ctx;
    (void)steps;
    if (image == 0 && step == c->step) {
        assert_int_equal(channels, 4);
        assert_true((size_t)4 * h * w <= sizeof c->lat / sizeof c->lat[0]);
        memcpy(c->lat, latent, sizeof(float) * 4 * h * w);
        c->h = h;
        c->w = w;
    }
}

/* runs rq on the reference engine; the RGB of image `index` as an opaque image */
static struct isd_image *engine_image(const struct isd_engine_request *rq, int index,
                                      struct latent_capture *cap)
{
    struct isd_engine_result res;
    struct isd_eng_error ee = {0};
    struct isd_engine_hooks h = {NULL, NULL, capture_preview, cap};
    if (isd_engine_generate_with(eng, eng_ops, rq, cap ? &h : NULL, &res, &ee) < 0)
        fail_msg("engine: %s", ee.msg);
    struct isd_error err = {0};
    struct isd_image *im = isd_image_new(res.width, res.height, &err);
    assert_non_null(im);
    size_t n = (size_t)res.width * res.height;
    for (size_t i = 0; i < n; i++) {
        memcpy(im->rgba + 4 * i, res.rgb + 3 * (n * index + i), 3);
        im->rgba[4 * i + 3] = 255;
    }
    isd_engine_result_release(&res);
    return im;
}

/* an opaque image's RGB bytes (malloc'd) */
static uint8_t *rgb_of(const struct isd_image *im)
{
    size_t n = (size_t)im->width * im->height;
    uint8_t *rgb = malloc(3 * n);
    assert_non_null(rgb);
    for (size_t i = 0; i < n; i++)
        memcpy(rgb + 3 * i, im->rgba + 4 * i, 3);
    return rgb;
}

/* ---- size planning ---- */

static void expect_plan(int native, int m, int w, int h, int ew, int eh)
{
    int gw = 0, gh = 0;
    isd_diffusion_plan(native, m, w, h, &gw, &gh);
    if (gw != ew || gh != eh)
        fail_msg("plan(native %d, multiple %d, %dx%d) = %dx%d, expected %dx%d", native, m, w, h, gw,
                 gh, ew, eh);
    /* the rule is symmetric */
    isd_diffusion_plan(native, m, h, w, &gw, &gh);
    assert_int_equal(gw, eh);
    assert_int_equal(gh, ew);
}

static void test_plan(void **state)
{
    (void)state;
    /* SD 1.x: multiples of 64 around 512^2 */
    expect_plan(512, 64, 1024, 1024, 512, 512);
    expect_plan(512, 64, 256, 256, 512, 512);   /* small requests are upscaled */
    expect_plan(512, 64, 1536, 1024, 576, 384); /* exactly 3:2, 84% of the area */
    expect_plan(512, 64, 1024, 768, 576, 448);  /* 4:3 -> 1.29 beats 1.43 */
    expect_plan(512, 64, 3840, 2160, 704, 384); /* gpt-image-2 4K: 1.83 vs 1.78 */
    expect_plan(512, 64, 3000, 1000, 896, 320); /* 3:1 -> 2.8 */
    expect_plan(512, 64, 16, 1024, 64, 2048);   /* 1:64: one multiple by the side max */
    /* SD 2.x v-prediction: 768 */
    expect_plan(768, 64, 1024, 1024, 768, 768);
    expect_plan(768, 64, 1536, 1024, 960, 640);
    /* a native size past the side limit keeps the aspect: 2048 x 1152 is exactly 16:9 */
    expect_plan(2048, 64, 3840, 2160, 2048, 1152);
    /* small multiples: exact ratios become reachable */
    expect_plan(512, 8, 1536, 1024, 624, 416);
    expect_plan(32, 16, 1024, 1024, 32, 32);
    expect_plan(32, 16, 1536, 1024, 48, 32);
    expect_plan(32, 16, 3840, 2160, 32, 16); /* 2:1 is closer to 16:9 than 3:2 */
    expect_plan(32, 16, 40, 24, 48, 32);
    expect_plan(16, 16, 4000, 1000, 64, 16); /* scaled up to one multiple: exactly 4:1 */
    /* every gpt-image-2-like size from 256 to 3840 in steps of 128: sides multiples of 64 in
     * range, each within one multiple of the ideal side */
    for (int w = 256; w <= 3840; w += 128)
        for (int h = 256; h <= 3840; h += 128) {
            int gw, gh;
            isd_diffusion_plan(512, 64, w, h, &gw, &gh);
            assert_true(gw % 64 == 0 && gh % 64 == 0 && gw >= 64 && gh >= 64);
            assert_true(gw <= ISD_ENGINE_SIDE_MAX && gh <= ISD_ENGINE_SIDE_MAX);
            double ideal_w = 512 * sqrt((double)w / h), ideal_h = 512 * sqrt((double)h / w);
            assert_true(fabs(gw - ideal_w) < 64 && fabs(gh - ideal_h) < 64);
        }
    /* the generator's plan: native 32, tiny-sd1's multiple 16; native 0 = 512 for SD1 */
    int gw, gh;
    isd_diffusion_plan_size(gen, 1536, 1024, &gw, &gh);
    assert_int_equal(gw, 48);
    assert_int_equal(gh, 32);
    struct isd_diffusion_options o;
    test_options(&o, sd1_path);
    o.native_size = 0;
    struct isd_generator *g = new_gen(&o);
    isd_diffusion_plan_size(g, 1024, 1024, &gw, &gh);
    assert_int_equal(gw, 512);
    assert_int_equal(gh, 512);
    isd_diffusion_plan_size(g, 1536, 1024, &gw, &gh);
    assert_int_equal(gw, 624); /* multiples of 16: exactly 3:2 */
    assert_int_equal(gh, 416);
    isd_gen_free(g);
}

/* ---- generations ---- */

static void test_caps(void **state)
{
    (void)state;
    struct isd_gen_caps c;
    gen->ops->caps(gen->state, &c);
    assert_true(c.edits && c.masks && c.variations && c.partials);
    assert_false(c.transparency);
    assert_int_equal(c.max_n, 10);
    assert_true(c.extensions && c.sequential_seeds);
    assert_string_equal(gen->ops->name, "diffusion");
}

static void test_generate(void **state)
{
    (void)state;
    struct isd_gen_request req;
    struct isd_image *out[10] = {0};
    struct rec r = {0};
    request(&req, "a red cube on a table");
    req.width = 40; /* not a multiple: generated at 48x32, resized */
    req.height = 24;
    req.n = 2;
    run_ok(gen, &req, &r, out);
    assert_int_equal(r.progress, 2 * 3);
    assert_int_equal(r.report.steps, 2 * 3);
    assert_true(fabs(r.report.megapixels - 48.0 * 32 * 2 / 1e6) < 1e-12);
    assert_false(same_pixels(out[0], out[1]));
    /* not a flat image */
    int lo = 255, hi = 0;
    for (int i = 0; i < 40 * 24; i++) {
        lo = out[0]->rgba[4 * i] < lo ? out[0]->rgba[4 * i] : lo;
        hi = out[0]->rgba[4 * i] > hi ? out[0]->rgba[4 * i] : hi;
        assert_int_equal(out[0]->rgba[4 * i + 3], 255);
    }
    printf("# txt2img red channel range %d..%d\n", lo, hi);
    assert_true(hi > lo);
    free_images(out, 2);
    /* at the native size nothing is resized: exactly the engine's txt2img, image i seed + i */
    req.width = req.height = SIDE;
    run_ok(gen, &req, NULL, out);
    struct isd_engine_request rq;
    engine_request(&rq, "a red cube on a table", 3);
    rq.batch_count = 2;
    for (int i = 0; i < 2; i++) {
        struct isd_image *ref = engine_image(&rq, i, NULL);
        assert_true(same_pixels(ref, out[i]));
        isd_image_free(ref);
    }
    free_images(out, 2);
}

static void test_quality_steps(void **state)
{
    (void)state;
    static const struct {
        const char *quality;
        int steps;
    } cases[] = {{"low", 2}, {"medium", 3}, {"high", 4},   {"standard", 3},
                 {"hd", 4},  {"auto", 3},   {"unknown", 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct isd_gen_request req;
        struct isd_image *out[10] = {0};
        struct rec r = {0};
        request(&req, "a lighthouse");
        req.quality = cases[i].quality;
        run_ok(gen, &req, &r, out);
        assert_int_equal(r.progress, cases[i].steps);
        assert_int_equal(r.n_steps, cases[i].steps);
        assert_int_equal(r.report.steps, cases[i].steps);
        free_images(out, 1);
    }
}

static void test_extensions(void **state)
{
    (void)state;
    struct isd_gen_request req;
    request(&req, "a lighthouse at dawn");
    struct isd_image *base = run_one(gen, &req), *again = run_one(gen, &req);
    assert_true(same_pixels(base, again)); /* same seed, same pixels */
    isd_image_free(again);

    struct rec r = {0};
    struct isd_image *out[10] = {0};
    req.ext.steps = 5;
    run_ok(gen, &req, &r, out);
    assert_int_equal(r.progress, 5);
    assert_false(same_pixels(base, out[0]));
    free_images(out, 1);
    req.ext.steps = 0;

    const char *samplers[] = {"euler_a", "heun", "dpm++2m"};
    for (int i = 0; i < 3; i++) {
        req.ext.sampler = samplers[i];
        struct isd_image *im = run_one(gen, &req);
        printf("# sampler %s: mean |diff| to euler %.2f\n", samplers[i], mean_diff(base, im));
        assert_false(same_pixels(base, im));
        isd_image_free(im);
    }
    req.ext.sampler = NULL;

    req.ext.guidance = 2.0;
    struct isd_image *im = run_one(gen, &req);
    assert_false(same_pixels(base, im));
    isd_image_free(im);
    req.ext.guidance = 0;

    req.ext.negative_prompt = "fog, rain";
    im = run_one(gen, &req);
    assert_false(same_pixels(base, im));
    isd_image_free(im);
    req.ext.negative_prompt = NULL;

    req.seed = 43;
    im = run_one(gen, &req);
    assert_false(same_pixels(base, im));
    isd_image_free(im);
    isd_image_free(base);
}

/* image i of an n-image request is the single image of seed + i */
static void test_sequential_seeds(void **state)
{
    (void)state;
    struct isd_gen_request req;
    struct isd_image *out[10] = {0};
    request(&req, "three pebbles");
    req.n = 3;
    req.seed = 1000;
    run_ok(gen, &req, NULL, out);
    for (int i = 0; i < 3; i++) {
        struct isd_gen_request one = req;
        one.n = 1;
        one.seed = 1000 + (uint64_t)i;
        struct isd_image *im = run_one(gen, &one);
        assert_true(same_pixels(im, out[i]));
        isd_image_free(im);
    }
    free_images(out, 3);
}

/* ---- edits and variations ---- */

static void edit_request(struct isd_gen_request *req, const struct isd_image *in,
                         const struct isd_image *mask)
{
    request(req, "a painting");
    req->op = ISD_GEN_EDIT;
    req->inputs[0] = in;
    req->n_inputs = 1;
    req->mask = mask;
    req->width = in->width;
    req->height = in->height;
}

/* An edit without a mask is the engine's img2img of the input at edit_strength (0.75), or
 * ext.strength. (Whether it "keeps the input's colours" cannot be seen with random weights: the
 * tiny VAE decodes every latent to about the same mean colour, the input's round trip
 * included, so the test checks the exact engine request instead.) */
static void test_edit_without_mask(void **state)
{
    (void)state;
    struct isd_image *in = picture(SIDE, SIDE);
    struct isd_gen_request req;
    struct rec r = {0};
    struct isd_image *out[10] = {0};
    edit_request(&req, in, NULL);
    req.quality = "high"; /* 4 steps at strength 0.75: the last 3 run */
    run_ok(gen, &req, &r, out);
    assert_int_equal(r.progress, 3);
    assert_int_equal(r.n_steps, 3);
    struct isd_engine_request rq;
    engine_request(&rq, "a painting", 4);
    uint8_t *init = rgb_of(in);
    rq.init_rgb = init;
    rq.strength = 0.75;
    struct isd_image *ref = engine_image(&rq, 0, NULL);
    assert_true(same_pixels(ref, out[0]));
    isd_image_free(ref);
    assert_false(same_pixels(out[0], in));
    struct isd_gen_request t2i;
    request(&t2i, "a painting");
    t2i.quality = "high";
    struct isd_image *txt = run_one(gen, &t2i);
    printf("# mean |diff| to the input: edit %.1f, txt2img %.1f\n", mean_diff(out[0], in),
           mean_diff(txt, in));
    assert_false(same_pixels(out[0], txt));
    /* ext.strength: half the schedule */
    req.ext.strength = 0.5;
    memset(&r, 0, sizeof r);
    struct isd_image *light[10] = {0};
    run_ok(gen, &req, &r, light);
    assert_int_equal(r.n_steps, 2);
    rq.strength = 0.5;
    ref = engine_image(&rq, 0, NULL);
    assert_true(same_pixels(ref, light[0]));
    isd_image_free(ref);
    free_images(light, 1);
    /* transparent pixels are flattened on white (none repaints: alpha >= 128) */
    struct isd_error err = {0};
    struct isd_image *veiled = isd_image_clone(in, &err);
    for (int i = 0; i < SIDE * SIDE; i++) {
        uint8_t *p = veiled->rgba + 4 * i;
        p[3] = 200;
        for (int c = 0; c < 3; c++)
            init[3 * i + c] = (uint8_t)((p[c] * 200 + 255 * 55 + 127) / 255);
    }
    veiled->has_alpha = true;
    req.inputs[0] = veiled;
    req.ext.strength = 0;
    struct isd_image *v = run_one(gen, &req);
    rq.strength = 0.75;
    ref = engine_image(&rq, 0, NULL);
    assert_true(same_pixels(ref, v));
    isd_image_free(ref);
    isd_image_free(v);
    isd_image_free(veiled);
    free(init);
    isd_image_free(txt);
    free_images(out, 1);
    isd_image_free(in);
}

static void check_kept(const struct isd_image *got, const struct isd_image *src,
                       const struct isd_image *mask, int *kept, int *changed)
{
    *kept = *changed = 0;
    for (int y = 0; y < got->height; y++)
        for (int x = 0; x < got->width; x++) {
            const uint8_t *g = isd_image_px(got, x, y), *s = isd_image_px(src, x, y);
            if (isd_image_px(mask, x, y)[3] >= 128) {
                if (memcmp(g, s, 3) != 0 || g[3] != 255)
                    fail_msg("kept pixel (%d,%d) changed: %d %d %d vs %d %d %d", x, y, g[0], g[1],
                             g[2], s[0], s[1], s[2]);
                ++*kept;
            } else {
                *changed += memcmp(g, s, 3) != 0;
            }
        }
}

static void test_edit_with_mask(void **state)
{
    (void)state;
    struct isd_image *in = picture(SIDE, SIDE), *mask = centre_mask(SIDE, SIDE);
    struct isd_gen_request req;
    struct rec r = {0};
    struct isd_image *out[10] = {0};
    edit_request(&req, in, mask);
    req.n = 2;
    run_ok(gen, &req, &r, out);
    assert_int_equal(r.n_steps, 3); /* strength 1: every step */
    for (int i = 0; i < 2; i++) {
        int kept, changed;
        check_kept(out[i], in, mask, &kept, &changed);
        assert_int_equal(kept, SIDE * SIDE * 3 / 4);
        assert_true(changed > SIDE * SIDE / 8);
    }
    assert_false(same_pixels(out[0], out[1]));
    /* the repainted pixels are the engine's, asked with mask 255 in the hole at strength 1 */
    struct isd_engine_request rq;
    engine_request(&rq, "a painting", 3);
    uint8_t *init = rgb_of(in), emask[SIDE * SIDE];
    for (int i = 0; i < SIDE * SIDE; i++)
        emask[i] = mask->rgba[4 * i + 3] < 128 ? 255 : 0;
    rq.init_rgb = init;
    rq.mask = emask;
    rq.strength = 1.0;
    rq.batch_count = 2;
    for (int k = 0; k < 2; k++) {
        struct isd_image *ref = engine_image(&rq, k, NULL);
        for (int i = 0; i < SIDE * SIDE; i++)
            if (emask[i])
                assert_memory_equal(ref->rgba + 4 * i, out[k]->rgba + 4 * i, 4);
        isd_image_free(ref);
    }
    free(init);
    free_images(out, 2);

    /* another output size: the kept pixels are the input resized to it */
    req.n = 1;
    req.width = 48;
    req.height = 40;
    run_ok(gen, &req, NULL, out);
    struct isd_error err = {0};
    struct isd_image *src = isd_image_resize(in, 48, 40, &err);
    struct isd_image *m = isd_image_resize_nearest(mask, 48, 40, &err);
    int kept, changed;
    check_kept(out[0], src, m, &kept, &changed);
    assert_true(kept > 0 && changed > 0);
    isd_image_free(src);
    isd_image_free(m);
    free_images(out, 1);
    isd_image_free(mask);
    isd_image_free(in);
}

/* An input whose alpha is the mask (no mask given) is the same edit as the opaque input with
 * that alpha as its mask. */
static void test_edit_transparency_as_mask(void **state)
{
    (void)state;
    struct isd_image *mask = centre_mask(SIDE, SIDE), *opaque = picture(SIDE, SIDE);
    struct isd_error err = {0};
    struct isd_image *holed = isd_image_clone(opaque, &err);
    for (int i = 0; i < SIDE * SIDE; i++)
        if (mask->rgba[4 * i + 3] == 0) {
            memset(holed->rgba + 4 * i, 255, 3); /* white: flattening on white changes nothing */
            memset(opaque->rgba + 4 * i, 255, 3);
            holed->rgba[4 * i + 3] = 0;
        }
    holed->has_alpha = true;
    struct isd_gen_request req;
    edit_request(&req, holed, NULL);
    struct isd_image *a = run_one(gen, &req);
    edit_request(&req, opaque, mask);
    struct isd_image *b = run_one(gen, &req);
    assert_true(same_pixels(a, b));
    int kept, changed;
    check_kept(a, opaque, mask, &kept, &changed);
    assert_true(changed > 0);
    /* the same picture without holes is a plain img2img: every pixel may change */
    edit_request(&req, opaque, NULL);
    struct isd_image *c = run_one(gen, &req);
    assert_false(same_pixels(a, c));
    isd_image_free(a);
    isd_image_free(b);
    isd_image_free(c);
    isd_image_free(holed);
    isd_image_free(opaque);
    isd_image_free(mask);
}

static void test_inpainting_checkpoint(void **state)
{
    (void)state;
    struct isd_diffusion_options o;
    test_options(&o, inpaint_path);
    struct isd_generator *g = new_gen(&o);
    struct isd_image *in = picture(SIDE, SIDE), *mask = centre_mask(SIDE, SIDE);
    struct isd_gen_request req;
    edit_request(&req, in, mask);
    struct isd_image *a = run_one(g, &req);
    int kept, changed;
    check_kept(a, in, mask, &kept, &changed);
    assert_true(changed > 0);
    /* the 9-channel UNet sees the masked image: another input under the kept area changes
     * the repainted pixels too (latent blending with the 4-channel model would not look) */
    struct isd_image *other = picture(SIDE, SIDE);
    for (int i = 0; i < SIDE * SIDE; i++)
        if (mask->rgba[4 * i + 3] == 255)
            other->rgba[4 * i + 1] = (uint8_t)(255 - other->rgba[4 * i + 1]);
    req.inputs[0] = other;
    struct isd_image *b = run_one(g, &req);
    int differ = 0;
    for (int i = 0; i < SIDE * SIDE; i++)
        if (mask->rgba[4 * i + 3] == 0)
            differ += memcmp(a->rgba + 4 * i, b->rgba + 4 * i, 3) != 0;
    assert_true(differ > 0);
    /* txt2img works on an inpainting checkpoint as well */
    struct isd_gen_request t2i;
    request(&t2i, "a house");
    struct isd_image *c = run_one(g, &t2i);
    isd_image_free(a);
    isd_image_free(b);
    isd_image_free(c);
    isd_image_free(other);
    isd_image_free(in);
    isd_image_free(mask);
    isd_gen_free(g);
}

static void test_variations(void **state)
{
    (void)state;
    struct isd_image *in = picture(SIDE, SIDE);
    struct isd_gen_request req;
    struct rec r = {0};
    struct isd_image *out[10] = {0};
    request(&req, "ignored");
    req.op = ISD_GEN_VARIATION;
    req.inputs[0] = in;
    req.n_inputs = 1;
    req.n = 2;
    req.quality = "high"; /* 4 steps at strength 0.6: the last 2 run */
    run_ok(gen, &req, &r, out);
    assert_int_equal(r.n_steps, 2);
    assert_false(same_pixels(out[0], in));
    assert_false(same_pixels(out[0], out[1]));
    struct isd_engine_request rq;
    engine_request(&rq, "", 4);
    uint8_t *init = rgb_of(in);
    rq.init_rgb = init;
    rq.strength = 0.6;
    rq.batch_count = 2;
    for (int k = 0; k < 2; k++) {
        struct isd_image *ref = engine_image(&rq, k, NULL);
        assert_true(same_pixels(ref, out[k]));
        isd_image_free(ref);
    }
    free(init);
    /* the request's prompt is not used; variation_prompt is */
    struct isd_gen_request other = req;
    other.n = 1;
    other.prompt = "something else entirely";
    other.prompt_len = strlen(other.prompt);
    struct isd_image *a = run_one(gen, &other);
    assert_true(same_pixels(a, out[0]));
    struct isd_diffusion_options o;
    test_options(&o, sd1_path);
    o.variation_prompt = "a watercolour";
    struct isd_generator *g = new_gen(&o);
    struct isd_image *b = run_one(g, &other);
    assert_false(same_pixels(a, b));
    /* ext.strength replaces variation_strength */
    other.ext.strength = 1.0;
    struct rec r2 = {0};
    struct isd_image *c[10] = {0};
    run_ok(gen, &other, &r2, c);
    assert_int_equal(r2.n_steps, 4);
    isd_gen_free(g);
    isd_image_free(a);
    isd_image_free(b);
    free_images(c, 1);
    free_images(out, 2);
    isd_image_free(in);
}

/* ---- partial images ---- */

static void check_partials(int steps, int k, int n, int expect_count)
{
    struct isd_gen_request req;
    struct rec r = {0};
    struct isd_image *out[10] = {0};
    request(&req, "a meadow");
    req.width = 40;
    req.height = 24;
    req.n = n;
    req.partial_images = k;
    req.ext.steps = steps;
    run_ok(gen, &req, &r, out);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r.partials[i], expect_count);
        for (int j = 0; j < expect_count; j++) {
            int at = steps > k ? ((j + 1) * steps + k) / (k + 1) : j + 1;
            assert_int_equal(r.partial_index[i][j], j);
            assert_int_equal(r.partial_at[i][j], at);
            assert_true(at < steps);
        }
    }
    if (expect_count > 0) {
        assert_int_equal(r.partial_w, 40);
        assert_int_equal(r.partial_h, 24);
    }
    free_images(out, n);
}

static void test_partials(void **state)
{
    (void)state;
    check_partials(8, 1, 1, 1); /* after step 4 */
    check_partials(8, 2, 2, 2); /* after 3 and 6 */
    check_partials(8, 3, 1, 3); /* after 2, 4, 6 */
    check_partials(4, 3, 2, 3); /* after 1, 2, 3 */
    check_partials(5, 2, 1, 2); /* after 2 and 4 */
    check_partials(3, 3, 1, 2); /* S <= k: after 1 and 2 only */
    check_partials(1, 2, 1, 0); /* one step: nothing before the last */
}

static int keep_partial(void *ctx, int index, int pi, const struct isd_image *img)
{
    struct isd_image **kept = ctx;
    struct isd_error err = {0};
    assert_int_equal(index, 0);
    assert_int_equal(pi, 0);
    *kept = isd_image_clone(img, &err);
    return 0;
}

/* A partial is the denoised latent of its step times the published SD 1.x latent -> RGB factors
 * (ComfyUI comfy/latent_formats.py SD15.latent_rgb_factors), (v + 1) / 2 clamped, then resized
 * to the output size. */
static void test_partial_projection(void **state)
{
    (void)state;
    static const double factors[4][3] = {{0.3512, 0.2297, 0.3227},
                                         {0.3250, 0.4974, 0.2350},
                                         {-0.2829, 0.1762, 0.2721},
                                         {-0.2120, -0.2616, -0.7177}};
    struct isd_gen_request req;
    struct isd_image *out[10] = {0}, *partial = NULL;
    struct isd_gen_hooks h = {.ctx = &partial, .partial = keep_partial};
    struct isd_error err = {0};
    request(&req, "a meadow");
    req.partial_images = 1;
    req.ext.steps = 4; /* the partial follows step 2 */
    req.width = 40;
    req.height = 56;
    int gw, gh;
    isd_diffusion_plan_size(gen, 40, 56, &gw, &gh);
    assert_int_equal(gw, 32); /* 40x56 is generated at 32x48 (aspect 0.67 vs 0.71) */
    assert_int_equal(gh, 48);
    assert_int_equal(isd_gen_run(gen, &req, &h, out, &err), 0);
    assert_non_null(partial);
    struct isd_engine_request rq;
    struct latent_capture cap = {.step = 2};
    engine_request(&rq, "a meadow", 4);
    rq.width = gw;
    rq.height = gh;
    struct isd_image *final = engine_image(&rq, 0, &cap);
    isd_image_free(final);
    assert_int_equal(cap.w, gw / 8);
    assert_int_equal(cap.h, gh / 8);
    struct isd_image *small = isd_image_new(cap.w, cap.h, &err);
    size_t hw = (size_t)cap.w * cap.h;
    int lo = 255, hi = 0;
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 4; c++) {
            if (c == 3) {
                small->rgba[4 * i + 3] = 255;
                continue;
            }
            double v = 0;
            for (int k = 0; k < 4; k++)
                v += cap.lat[k * hw + i] * factors[k][c];
            v = fmin(1.0, fmax(0.0, (v + 1) / 2));
            small->rgba[4 * i + c] = (uint8_t)floor(255 * v + 0.5);
            lo = small->rgba[4 * i + c] < lo ? small->rgba[4 * i + c] : lo;
            hi = small->rgba[4 * i + c] > hi ? small->rgba[4 * i + c] : hi;
        }
    struct isd_image *expect = isd_image_resize(small, 40, 56, &err);
    int worst = 0;
    for (size_t i = 0; i < (size_t)40 * 56 * 4; i++) {
        int d = abs((int)expect->rgba[i] - (int)partial->rgba[i]);
        worst = d > worst ? d : worst;
    }
    printf("# partial: projected values %d..%d, max |diff| to the reference %d\n", lo, hi, worst);
    assert_true(hi > lo);
    assert_true(worst <= 1); /* float vs double rounding of the projection */
    isd_image_free(expect);
    isd_image_free(small);
    isd_image_free(partial);
    free_images(out, 1);
}

static int stop_partial(void *ctx, int index, int pi, const struct isd_image *img)
{
    (void)ctx;
    (void)index;
    (void)pi;
    (void)img;
    return -7;
}

static void test_partial_stops(void **state)
{
    (void)state;
    struct isd_gen_request req;
    struct rec r = {0};
    struct isd_image *out[10] = {(void *)1, (void *)1};
    struct isd_gen_hooks h = hooks_of(&r);
    struct isd_error err = {0};
    h.partial = stop_partial;
    request(&req, "a meadow");
    req.n = 2;
    req.partial_images = 1;
    req.ext.steps = 6;
    assert_int_equal(isd_gen_run(gen, &req, &h, out, &err), -7);
    assert_null(out[0]);
    assert_null(out[1]);
    assert_int_equal(r.progress, 3); /* stopped within the step of the partial */
    assert_int_equal(r.n_done, 0);
    assert_int_equal(r.report.steps, 3);
    assert_true(r.report.megapixels == 0);
}

/* ---- cancellation and concurrency ---- */

static void test_abort(void **state)
{
    (void)state;
    struct isd_gen_request req;
    struct rec r = {.abort_after = 1};
    struct isd_image *out[10] = {(void *)1, (void *)1, (void *)1};
    struct isd_gen_hooks h = hooks_of(&r);
    struct isd_error err = {0};
    request(&req, "a storm");
    req.n = 3;
    req.ext.steps = 20;
    assert_int_equal(isd_gen_run(gen, &req, &h, out, &err), -ISD_E_CANCELLED);
    assert_int_equal(err.id, ISD_E_CANCELLED);
    assert_int_equal(r.progress, 1); /* the step after which it was asked */
    for (int i = 0; i < 3; i++)
        assert_null(out[i]);
    assert_int_equal(r.n_done, 0);
    /* asked before anything ran */
    struct rec r2 = {.abort_after_polls = 1};
    h = hooks_of(&r2);
    assert_int_equal(isd_gen_run(gen, &req, &h, out, &err), -ISD_E_CANCELLED);
    assert_int_equal(r2.progress, 0);
    assert_null(out[0]);
}

struct job {
    struct isd_generator *g;
    struct isd_gen_request req;
    struct rec rec;
    struct isd_image *out[10];
    int rc;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct isd_gen_hooks h = hooks_of(&j->rec);
    struct isd_error err = {0};
    j->rc = isd_gen_run(j->g, &j->req, &h, j->out, &err);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    struct isd_diffusion_options o;
    test_options(&o, sd1_path);
    o.concurrency = 2;
    o.threads = 2;
    struct isd_generator *g = new_gen(&o);
    struct job jobs[2];
    memset(jobs, 0, sizeof jobs);
    request(&jobs[0].req, "a red cube");
    request(&jobs[1].req, "a blue sphere");
    jobs[1].req.seed = 99;
    jobs[1].req.n = 2;
    struct isd_image *serial[2][10] = {{0}};
    for (int i = 0; i < 2; i++) {
        jobs[i].g = g;
        run_ok(gen, &jobs[i].req, NULL, serial[i]);
    }
    /* both hold a context at once: each waits in its first step until the other started */
    jobs[0].rec.hold = jobs[1].rec.hold = 1;
    pthread_t tid[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, job_main, &jobs[i]), 0);
    for (int spins = 0; !(jobs[0].rec.started && jobs[1].rec.started); spins++) {
        assert_true(spins < 30000); /* 60 s */
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    jobs[0].rec.hold = jobs[1].rec.hold = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        for (int k = 0; k < jobs[i].req.n; k++)
            assert_true(same_pixels(jobs[i].out[k], serial[i][k]));
        free_images(jobs[i].out, jobs[i].req.n);
        free_images(serial[i], jobs[i].req.n);
    }
    isd_gen_free(g);
}

/* With one context busy, a second request waits for it and still notices should_abort. */
static void test_wait_cancelled(void **state)
{
    (void)state;
    struct job holder;
    memset(&holder, 0, sizeof holder);
    holder.g = gen;
    request(&holder.req, "a slow one");
    holder.rec.hold = 1;
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, job_main, &holder), 0);
    for (int spins = 0; !holder.rec.started; spins++) {
        assert_true(spins < 30000);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    struct isd_gen_request req;
    struct rec r = {.abort_after_polls = 4};
    struct isd_image *out[10] = {(void *)1};
    struct isd_gen_hooks h = hooks_of(&r);
    struct isd_error err = {0};
    request(&req, "waiting");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(isd_gen_run(gen, &req, &h, out, &err), -ISD_E_CANCELLED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("# cancelled after %d polls while waiting, %.0f ms\n", r.abort_polls, ms);
    assert_int_equal(r.abort_polls, 4);
    assert_int_equal(r.progress, 0);
    assert_null(out[0]);
    assert_true(ms >= 3 * 15.0); /* three timed waits of 20 ms between the polls */
    holder.rec.hold = 0;
    pthread_join(tid, NULL);
    assert_int_equal(holder.rc, 0);
    free_images(holder.out, 1);
}

/* ---- bad requests ---- */

static void expect_error(const struct isd_gen_request *req, enum isd_err_id id, const char *param)
{
    struct isd_image *out[10] = {0};
    struct isd_error err = {0};
    int rc = isd_gen_run(gen, req, NULL, out, &err);
    if (rc != -(int)id || strcmp(err.param, param) != 0)
        fail_msg("expected %s on '%s', got %d %s '%s': %s", isd_err_name(id), param, rc,
                 isd_err_name(err.id), err.param, err.message);
    for (int i = 0; i < 10; i++)
        assert_null(out[i]);
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct isd_gen_request req;
    struct isd_image *in = picture(SIDE, SIDE), *small = centre_mask(16, 16);
    request(&req, "x");
    req.n = 0;
    expect_error(&req, ISD_E_INVALID_VALUE, "n");
    req.n = 11;
    expect_error(&req, ISD_E_INVALID_VALUE, "n");
    request(&req, "x");
    req.width = 0;
    expect_error(&req, ISD_E_INVALID_VALUE, "size");
    request(&req, "x");
    req.partial_images = 4;
    expect_error(&req, ISD_E_INVALID_VALUE, "partial_images");
    request(&req, "x");
    req.ext.steps = -1;
    expect_error(&req, ISD_E_INVALID_VALUE, "steps");
    req.ext.steps = 1001;
    expect_error(&req, ISD_E_INVALID_VALUE, "steps");
    request(&req, "x");
    req.ext.sampler = "ddim";
    expect_error(&req, ISD_E_INVALID_VALUE, "sampler");
    request(&req, "x");
    req.ext.guidance = NAN;
    expect_error(&req, ISD_E_INVALID_VALUE, "guidance_scale");
    request(&req, "x");
    req.ext.strength = 1.5;
    expect_error(&req, ISD_E_INVALID_VALUE, "strength");
    request(&req, "a \xff prompt"); /* the engine's own check: its EINVAL names the field */
    expect_error(&req, ISD_E_INVALID_VALUE, "prompt");
    request(&req, "x");
    req.prompt_len = (size_t)1 << 40; /* never read: refused by its length */
    expect_error(&req, ISD_E_INVALID_VALUE, "prompt");
    request(&req, "x");
    req.op = ISD_GEN_EDIT;
    expect_error(&req, ISD_E_INVALID_VALUE, "image");
    edit_request(&req, in, small);
    expect_error(&req, ISD_E_INVALID_MASK, "mask");
    isd_image_free(in);
    isd_image_free(small);
}

/* ---- options and loading ---- */

static void expect_option_error(const char *key, const char *value, const char *needle)
{
    struct isd_diffusion_options o;
    struct isd_error err = {0};
    isd_diffusion_options_init(&o);
    int rc = isd_diffusion_option_set(&o, key, value, &err);
    if (rc != -ISD_E_INVALID_VALUE || !strstr(err.message, key) || !strstr(err.message, needle))
        fail_msg("%s = '%s': expected an error naming '%s' and '%s', got %d '%s'", key, value, key,
                 needle, rc, err.message);
    assert_string_equal(err.param, key);
}

static void test_option_set(void **state)
{
    (void)state;
    struct isd_diffusion_options o;
    struct isd_error err = {0};
    isd_diffusion_options_init(&o);
    assert_int_equal(o.steps[ISD_DQ_LOW], 10);
    assert_int_equal(o.steps[ISD_DQ_MEDIUM], 20);
    assert_int_equal(o.steps[ISD_DQ_HIGH], 40);
    assert_string_equal(o.sampler[ISD_DQ_MEDIUM], "dpm++2m");
    assert_string_equal(o.scheduler, "karras");
    assert_true(o.guidance == 7.5 && o.edit_strength == 0.75 && o.variation_strength == 0.6);
    assert_int_equal(o.concurrency, 1);
    static const char *const good[][2] = {
        {"checkpoint", "/m/sd.safetensors"},
        {"tokenizer", "/m/tok"},
        {"native_size", "768"},
        {"steps_low", "4"},
        {"steps_medium", "25"},
        {"steps_high", "1000"},
        {"sampler_low", "euler_a"},
        {"sampler_medium", "heun"},
        {"sampler_high", "lcm"},
        {"scheduler", "exponential"},
        {"guidance", "5.5"},
        {"negative_prompt", "blurry, lowres"},
        {"edit_strength", "0.5"},
        {"variation_strength", "1"},
        {"variation_prompt", ""},
        {"threads", "8"},
        {"concurrency", "2"},
        {"resident", "true"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (isd_diffusion_option_set(&o, good[i][0], good[i][1], &err) != 0)
            fail_msg("%s = %s: %s", good[i][0], good[i][1], err.message);
    assert_string_equal(o.checkpoint, "/m/sd.safetensors");
    assert_string_equal(o.tokenizer, "/m/tok");
    assert_int_equal(o.native_size, 768);
    assert_int_equal(o.steps[ISD_DQ_LOW], 4);
    assert_int_equal(o.steps[ISD_DQ_MEDIUM], 25);
    assert_int_equal(o.steps[ISD_DQ_HIGH], 1000);
    assert_string_equal(o.sampler[ISD_DQ_LOW], "euler_a");
    assert_string_equal(o.sampler[ISD_DQ_MEDIUM], "heun");
    assert_string_equal(o.sampler[ISD_DQ_HIGH], "lcm");
    assert_string_equal(o.scheduler, "exponential");
    assert_true(o.guidance == 5.5);
    assert_string_equal(o.negative_prompt, "blurry, lowres");
    assert_true(o.edit_strength == 0.5 && o.variation_strength == 1.0);
    assert_string_equal(o.variation_prompt, "");
    assert_int_equal(o.threads, 8);
    assert_int_equal(o.concurrency, 2);
    assert_int_equal(o.resident, 1);
    assert_int_equal(isd_diffusion_option_set(&o, "resident", "0", &err), 0);
    assert_int_equal(o.resident, 0);
    assert_int_equal(isd_diffusion_option_set(&o, "native_size", "0", &err), 0);
    assert_int_equal(isd_diffusion_option_set(&o, "threads", "0", &err), 0);

    assert_int_equal(isd_diffusion_option_set(&o, "profile", "gpt-image-1", &err), 1);
    assert_int_equal(isd_diffusion_option_set(&o, "steps", "20", &err), 1);
    assert_int_equal(isd_diffusion_option_set(&o, "Checkpoint", "x", &err), 1);

    expect_option_error("checkpoint", "", "path");
    expect_option_error("tokenizer", "", "path");
    expect_option_error("native_size", "512px", "8 to 2048");
    expect_option_error("native_size", "4", "8 to 2048");
    expect_option_error("native_size", "4096", "8 to 2048");
    expect_option_error("native_size", "-512", "8 to 2048");
    expect_option_error("steps_low", "0", "1 to 1000");
    expect_option_error("steps_medium", "twenty", "1 to 1000");
    expect_option_error("steps_high", "1001", "1 to 1000");
    expect_option_error("steps_high", " 20", "1 to 1000");
    expect_option_error("steps_high", "20 ", "1 to 1000");
    expect_option_error("steps_high", "99999999999999999999", "1 to 1000");
    expect_option_error("sampler_low", "ddim", "euler, euler_a, heun, dpm++2m, lcm");
    expect_option_error("sampler_high", "", "dpm++2m");
    expect_option_error("scheduler", "cosine", "karras");
    expect_option_error("guidance", "0.5", "1 to 100");
    expect_option_error("guidance", "nan", "1 to 100");
    expect_option_error("guidance", "inf", "1 to 100");
    expect_option_error("guidance", "7,5", "1 to 100");
    expect_option_error("edit_strength", "0", "above 0");
    expect_option_error("edit_strength", "1.01", "at most 1");
    expect_option_error("variation_strength", "abc", "above 0");
    expect_option_error("threads", "-1", "256");
    expect_option_error("threads", "257", "256");
    expect_option_error("concurrency", "0", "1 to 16");
    expect_option_error("concurrency", "17", "1 to 16");
    expect_option_error("resident", "yes please", "true, false");
}

static void test_new_errors(void **state)
{
    (void)state;
    struct isd_diffusion_options o;
    struct isd_error err = {0};
    isd_diffusion_options_init(&o);
    assert_null(isd_diffusion_new(&o, &err)); /* no checkpoint */
    assert_string_equal(err.param, "checkpoint");
    assert_non_null(strstr(err.message, "checkpoint"));

    char missing[4300];
    snprintf(missing, sizeof missing, "%s/no-such-model.safetensors", tmp);
    test_options(&o, missing);
    isd_err_clear(&err);
    assert_null(isd_diffusion_new(&o, &err));
    printf("# %s\n", err.message);
    assert_non_null(strstr(err.message, missing));
    assert_string_equal(err.param, "checkpoint");

    test_options(&o, sd1_path); /* a checkpoint without a tokenizer */
    o.tokenizer = NULL;
    isd_err_clear(&err);
    assert_null(isd_diffusion_new(&o, &err));
    assert_non_null(strstr(err.message, "tokenizer"));

    test_options(&o, sd1_path); /* values set directly are checked too */
    o.sampler[ISD_DQ_HIGH] = "ddim";
    isd_err_clear(&err);
    assert_null(isd_diffusion_new(&o, &err));
    assert_string_equal(err.param, "sampler_high");
    test_options(&o, sd1_path);
    o.concurrency = 0;
    assert_null(isd_diffusion_new(&o, &err));
    assert_string_equal(err.param, "concurrency");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_quality_steps),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_sequential_seeds),
        cmocka_unit_test(test_edit_without_mask),
        cmocka_unit_test(test_edit_with_mask),
        cmocka_unit_test(test_edit_transparency_as_mask),
        cmocka_unit_test(test_inpainting_checkpoint),
        cmocka_unit_test(test_variations),
        cmocka_unit_test(test_partials),
        cmocka_unit_test(test_partial_projection),
        cmocka_unit_test(test_partial_stops),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_wait_cancelled),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_option_set),
        cmocka_unit_test(test_new_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
