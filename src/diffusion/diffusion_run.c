/*
 * One request of the diffusion generator (diffusion.h): the request mapped onto one engine call
 * (batch n) on a free ops context, the engine's hooks turned into the generator's (progress,
 * partial images from the preview latent, cancellation), and the results resized to the output
 * size with a masked edit's kept pixels put back.
 */
#include "diffusion/diffusion_int.h"

#include "engine/sample/sample.h"
#include "engine/tok/tok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Latent -> RGB preview: rgb = L^T f, with L the 4 channels of the denoised *scaled* latent
 * (the sampler's space, what the engine's preview hook gives) and f the SD 1.x factors of
 * ComfyUI, comfy/latent_formats.py, class SD15 `latent_rgb_factors` (ComfyUI also uses them for
 * SD 2.x); latent_preview.py then maps [-1, 1] to [0, 1] with (v + 1) / 2 and clamps, as here.
 */
static const float latent_rgb[4][3] = {
    /*   R        G        B   */
    {0.3512f, 0.2297f, 0.3227f},
    {0.3250f, 0.4974f, 0.2350f},
    {-0.2829f, 0.1762f, 0.2721f},
    {-0.2120f, -0.2616f, -0.7177f},
};

/* one run's state, seen by the engine hooks */
struct run {
    struct isd_diffusion *d;
    const struct isd_gen_request *req;
    const struct isd_gen_hooks *hooks;
    struct isd_error *err;
    int out_w, out_h;                       /* output size */
    int gen_w, gen_h;                       /* generation size */
    int next_partial[ISD_ENGINE_BATCH_MAX]; /* per image: the next partial index */
    int stop_rc;                            /* < 0: a hook asked to stop (or failed) */
    int steps_done;                         /* progress calls: steps run, all images */
    int first_image;                        /* index of the engine's image 0 in the request */
    char *prompt;                           /* NUL-terminated copy of the prompt */
    uint8_t *init_rgb;                      /* edits/variations: inputs[0] at gen size, RGB */
    uint8_t *mask;                          /* masked edits: gen size, 255 = repaint */
    const struct isd_image *keep_mask;      /* masked edits: at output size, alpha >= 128 keeps */
    const struct isd_image *keep_base;      /* masked edits: inputs[0] at output size */
    struct isd_image *owned[2];             /* keep_mask/keep_base when resized here */
};

static int cancelled(struct isd_error *err)
{
    return isd_err_set(err, ISD_E_CANCELLED, NULL, "image generation was cancelled");
}

/* ---- pixels ---- */

static uint8_t over_white(unsigned c, unsigned a)
{
    return (uint8_t)((c * a + 255u * (255u - a) + 127u) / 255u);
}

/* RGBA -> RGB flattened on white */
static void flatten_rgb(const struct isd_image *im, uint8_t *rgb)
{
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = im->rgba + 4 * i;
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = over_white(p[c], p[3]);
    }
}

static bool has_repaint_alpha(const struct isd_image *im)
{
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++)
        if (im->rgba[4 * i + 3] < 128)
            return true;
    return false;
}

/* RGB bytes (w x h) -> a new opaque image */
static struct isd_image *image_from_rgb(const uint8_t *rgb, int w, int h, struct isd_error *err)
{
    struct isd_image *im = isd_image_new(w, h, err);
    if (!im)
        return NULL;
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) {
        memcpy(im->rgba + 4 * i, rgb + 3 * i, 3);
        im->rgba[4 * i + 3] = 255;
    }
    im->has_alpha = false;
    return im;
}

/* gen-size RGB -> output-size image with the kept pixels of a masked edit */
static struct isd_image *finish_image(const struct run *r, const uint8_t *rgb,
                                      struct isd_error *err)
{
    struct isd_image *gen = image_from_rgb(rgb, r->gen_w, r->gen_h, err);
    if (!gen)
        return NULL;
    struct isd_image *im = isd_image_resize(gen, r->out_w, r->out_h, err);
    isd_image_free(gen);
    if (!im || !r->keep_mask)
        return im;
    size_t n = (size_t)r->out_w * r->out_h;
    for (size_t i = 0; i < n; i++) {
        if (r->keep_mask->rgba[4 * i + 3] < 128)
            continue;
        const uint8_t *s = r->keep_base->rgba + 4 * i;
        uint8_t *dst = im->rgba + 4 * i;
        for (int c = 0; c < 3; c++)
            dst[c] = over_white(s[c], s[3]);
        dst[3] = 255;
    }
    im->has_alpha = false;
    return im;
}

/* ---- engine hooks ---- */

/* The step after which partial j of k is taken when the image runs `steps` steps, or 0 for
 * none: ceil((j + 1) steps / (k + 1)) when steps > k (all before the last step); otherwise one
 * partial after each step but the last. */
static int partial_step(int j, int k, int steps)
{
    if (steps > k)
        return ((j + 1) * steps + k) / (k + 1);
    return j + 1 < steps ? j + 1 : 0;
}

static void on_progress(void *ctx, int image, int step, int steps)
{
    struct run *r = ctx;
    r->steps_done++;
    if (r->hooks && r->hooks->progress)
        r->hooks->progress(r->hooks->ctx, r->first_image + image, step, steps);
}

static int on_abort(void *ctx)
{
    struct run *r = ctx;
    return r->stop_rc < 0 ||
           (r->hooks && r->hooks->should_abort && r->hooks->should_abort(r->hooks->ctx));
}

/* the denoised latent [4][h][w] -> an RGB preview at the output size */
static struct isd_image *project_latent(const struct run *r, const float *latent, int h, int w,
                                        struct isd_error *err)
{
    struct isd_image *small = isd_image_new(w, h, err);
    if (!small)
        return NULL;
    size_t hw = (size_t)h * w;
    for (size_t i = 0; i < hw; i++) {
        uint8_t *px = small->rgba + 4 * i;
        for (int c = 0; c < 3; c++) {
            float v = 0;
            for (int k = 0; k < 4; k++)
                v += latent[k * hw + i] * latent_rgb[k][c];
            v = (v + 1.0f) * 0.5f;
            v = v < 0 ? 0 : v > 1 ? 1 : v; /* NaN stays NaN: caught below */
            px[c] = v == v ? (uint8_t)floorf(255.0f * v + 0.5f) : 0;
        }
        px[3] = 255;
    }
    struct isd_image *im = isd_image_resize(small, r->out_w, r->out_h, err);
    isd_image_free(small);
    if (im)
        im->has_alpha = false;
    return im;
}

static void on_preview(void *ctx, int image, int step, int steps, const float *latent, int channels,
                       int h, int w)
{
    struct run *r = ctx;
    int k = r->req->partial_images;
    image += r->first_image;
    if (r->stop_rc < 0 || !r->hooks || !r->hooks->partial || channels != 4 || image < 0 ||
        image >= ISD_ENGINE_BATCH_MAX)
        return;
    int j = r->next_partial[image];
    if (j >= k || step != partial_step(j, k, steps))
        return;
    r->next_partial[image]++;
    struct isd_image *im = project_latent(r, latent, h, w, r->err);
    if (!im) {
        r->stop_rc = -(int)r->err->id;
        return;
    }
    int rc = r->hooks->partial(r->hooks->ctx, image, j, im);
    isd_image_free(im);
    if (rc < 0) {
        isd_err_set(r->err, ISD_E_CANCELLED, NULL, "the partial image hook stopped the job");
        r->stop_rc = rc;
    }
}

/* ---- the request ---- */

static enum isd_diffusion_quality quality_of(const char *q)
{
    if (q && strcmp(q, "low") == 0)
        return ISD_DQ_LOW;
    if (q && (strcmp(q, "high") == 0 || strcmp(q, "hd") == 0))
        return ISD_DQ_HIGH;
    return ISD_DQ_MEDIUM; /* medium, standard, anything else */
}

/* the shared checks (gen.h), the prompt's length and the extension fields' ranges */
static int validate(const struct isd_gen_request *req, struct isd_error *err)
{
    int rc = isd_gen_request_check(req, err);
    if (rc < 0)
        return rc;
    if (req->prompt && req->prompt_len > ISD_TOK_TEXT_MAX)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "prompt", "prompt longer than %d bytes",
                           ISD_TOK_TEXT_MAX);
    const struct isd_gen_extensions *x = &req->ext;
    if (x->steps < 0 || x->steps > ISD_DIFFUSION_STEPS_MAX)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "steps", "steps must be between 1 and %d",
                           ISD_DIFFUSION_STEPS_MAX);
    if (!(x->guidance == 0 || (x->guidance >= 1 && x->guidance <= 100)))
        return isd_err_set(err, ISD_E_INVALID_VALUE, "guidance_scale",
                           "guidance_scale must be between 1 and 100");
    if (x->sampler && isd_smp_kind_parse(x->sampler) < 0)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "sampler",
                           "unknown sampler (euler, euler_a, heun, dpm++2m, lcm)");
    if (!(x->strength == 0 || (x->strength > 0 && x->strength <= 1)))
        return isd_err_set(err, ISD_E_INVALID_VALUE, "strength",
                           "strength must be above 0 and at most 1");
    return 0;
}

/* inputs[0] at the generation size, flattened on white */
static int prepare_init(struct run *r, struct isd_error *err)
{
    struct isd_image *im = isd_image_resize(r->req->inputs[0], r->gen_w, r->gen_h, err);
    if (!im)
        return -(int)err->id;
    r->init_rgb = malloc((size_t)r->gen_w * r->gen_h * 3);
    if (r->init_rgb)
        flatten_rgb(im, r->init_rgb);
    isd_image_free(im);
    return r->init_rgb ? 0 : isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the image");
}

/* the engine's mask at the generation size; the kept pixels' mask and source at output size */
static int prepare_mask(struct run *r, const struct isd_image *mask, struct isd_error *err)
{
    const struct isd_image *src = r->req->inputs[0];
    struct isd_image *m = isd_image_resize_nearest(mask, r->gen_w, r->gen_h, err);
    if (!m)
        return -(int)err->id;
    size_t n = (size_t)r->gen_w * r->gen_h;
    r->mask = malloc(n);
    for (size_t i = 0; r->mask && i < n; i++)
        r->mask[i] = m->rgba[4 * i + 3] < 128 ? 255 : 0;
    isd_image_free(m);
    if (!r->mask)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the mask");
    bool same = src->width == r->out_w && src->height == r->out_h;
    r->keep_base = src;
    r->keep_mask = mask;
    if (!same) {
        r->keep_base = r->owned[0] = isd_image_resize(src, r->out_w, r->out_h, err);
        if (r->keep_base)
            r->keep_mask = r->owned[1] = isd_image_resize_nearest(mask, r->out_w, r->out_h, err);
        if (!r->keep_base || !r->keep_mask)
            return -(int)err->id;
    }
    return 0;
}

/* the engine request of this run (strings and buffers point into r and the generator) */
static int build_request(struct run *r, struct isd_engine_request *rq, struct isd_error *err)
{
    const struct isd_gen_request *req = r->req;
    const struct isd_diffusion *d = r->d;
    const struct isd_gen_extensions *x = &req->ext;
    enum isd_diffusion_quality q = quality_of(req->quality);
    isd_engine_request_init(rq);
    size_t len = req->prompt ? req->prompt_len : 0;
    if (req->op == ISD_GEN_VARIATION) {
        r->prompt = strdup(d->variation_prompt);
    } else if ((r->prompt = malloc(len + 1)) != NULL) {
        if (len)
            memcpy(r->prompt, req->prompt, len);
        r->prompt[len] = '\0';
    }
    if (!r->prompt)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the prompt");
    rq->prompt = r->prompt;
    rq->negative_prompt = x->negative_prompt ? x->negative_prompt : d->negative_prompt;
    rq->width = r->gen_w;
    rq->height = r->gen_h;
    rq->steps = x->steps > 0 ? x->steps : d->steps[q];
    rq->guidance = x->guidance > 0 ? x->guidance : d->guidance;
    rq->sampler = x->sampler ? x->sampler : d->sampler[q];
    rq->scheduler = d->scheduler;
    rq->seed = req->seed;
    rq->batch_count = req->n;
    if (req->op == ISD_GEN_GENERATE)
        return 0;
    int rc = prepare_init(r, err);
    if (rc < 0)
        return rc;
    rq->init_rgb = r->init_rgb;
    rq->strength = req->op == ISD_GEN_VARIATION ? d->variation_strength : d->edit_strength;
    const struct isd_image *mask = NULL;
    if (req->op == ISD_GEN_EDIT)
        mask = req->mask ? req->mask : has_repaint_alpha(req->inputs[0]) ? req->inputs[0] : NULL;
    if (mask) {
        if ((rc = prepare_mask(r, mask, err)) < 0)
            return rc;
        rq->mask = r->mask;
        rq->strength = 1.0;
    }
    if (x->strength > 0)
        rq->strength = x->strength;
    return 0;
}

/* an engine error as an imagesd error */
static int engine_error(const struct run *r, const struct isd_eng_error *ee, int rc,
                        struct isd_error *err)
{
    if (rc == ISD_ENG_ECANCELLED)
        return r->stop_rc < 0 ? r->stop_rc : cancelled(err);
    if (rc == ISD_ENG_ENOMEM)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "diffusion: %s", ee->msg);
    if (rc != ISD_ENG_EINVAL)
        return isd_err_set(err, ISD_E_GENERATOR, NULL, "diffusion: %s", ee->msg);
    static const char *const fields[][2] = {{"steps", "steps"},     {"guidance", "guidance_scale"},
                                            {"sampler", "sampler"}, {"strength", "strength"},
                                            {"size", "size"},       {"prompt", "prompt"},
                                            {"UTF-8", "prompt"},    {"batch", "n"}};
    const char *param = NULL;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !param; i++)
        if (strstr(ee->msg, fields[i][0]))
            param = fields[i][1];
    return isd_err_set(err, ISD_E_INVALID_VALUE, param, "%s", ee->msg);
}

static void run_release(struct run *r)
{
    free(r->prompt);
    free(r->init_rgb);
    free(r->mask);
    isd_image_free(r->owned[0]);
    isd_image_free(r->owned[1]);
}

/* The engine's images as out[first...] images, each announced with image_done. */
static int deliver(struct run *r, const struct isd_engine_result *res, struct isd_image **out,
                   struct isd_error *err)
{
    size_t bytes = (size_t)3 * r->gen_w * r->gen_h;
    for (int k = 0; k < res->count; k++) {
        int i = r->first_image + k;
        out[i] = finish_image(r, res->rgb + (size_t)k * bytes, err);
        if (!out[i])
            return -(int)err->id;
        if (r->hooks && r->hooks->image_done) {
            int rc = r->hooks->image_done(r->hooks->ctx, i, out[i]);
            if (rc < 0) {
                isd_err_set(err, ISD_E_CANCELLED, NULL, "image hook stopped the job");
                return rc;
            }
        }
    }
    return 0;
}

/* The engine call(s): one batch of n images; or, when images are announced one by one
 * (streams: image i's previews and completed event come before image i+1's), one call per
 * image, which gives the same images (image i uses seed + i either way). */
static int generate(struct run *r, struct isd_engine_request *rq, int slot, struct isd_image **out,
                    struct isd_error *err)
{
    bool one_by_one = r->hooks && r->hooks->image_done && r->req->n > 1;
    int calls = one_by_one ? r->req->n : 1;
    uint64_t seed = rq->seed;
    int rc = 0;
    for (int c = 0; c < calls && rc == 0; c++) {
        struct isd_engine_hooks eh = {on_progress, on_abort, on_preview, r};
        struct isd_eng_error ee = {0};
        struct isd_engine_result res = {0};
        r->first_image = one_by_one ? c : 0;
        rq->seed = seed + (uint64_t)r->first_image;
        rq->batch_count = one_by_one ? 1 : r->req->n;
        int erc = isd_engine_generate_with(r->d->engine, r->d->ops[slot], rq, &eh, &res, &ee);
        rc = erc < 0 ? engine_error(r, &ee, erc, err) : deliver(r, &res, out, err);
        isd_engine_result_release(&res);
    }
    rq->seed = seed;
    return rc;
}

int isd_diffusion_run_(void *state, const struct isd_gen_request *req,
                       const struct isd_gen_hooks *hooks, struct isd_image **out,
                       struct isd_error *err)
{
    if (req->n < 1 || req->n > ISD_DIFFUSION_MAX_N)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "n", "n must be between 1 and %d",
                           ISD_DIFFUSION_MAX_N);
    for (int i = 0; i < req->n; i++)
        out[i] = NULL;
    struct run r = {.d = state, .req = req, .hooks = hooks, .err = err};
    struct isd_engine_request rq;
    int slot = -1, rc = validate(req, err);
    r.out_w = req->width;
    r.out_h = req->height;
    if (rc == 0) {
        isd_diffusion_plan(r.d->native_size, r.d->multiple, r.out_w, r.out_h, &r.gen_w, &r.gen_h);
        rc = build_request(&r, &rq, err);
    }
    if (rc == 0)
        rc = isd_diffusion_acquire_(r.d, hooks, &slot, err);
    if (rc == 0) {
        rc = generate(&r, &rq, slot, out, err);
        isd_diffusion_release_(r.d, slot);
    }
    if (hooks && hooks->report) {
        hooks->report->steps = r.steps_done;
        hooks->report->megapixels = rc == 0 ? (double)r.gen_w * r.gen_h * req->n / 1e6 : 0.0;
    }
    if (rc < 0)
        for (int i = 0; i < req->n; i++) {
            isd_image_free(out[i]);
            out[i] = NULL;
        }
    run_release(&r);
    return rc;
}
