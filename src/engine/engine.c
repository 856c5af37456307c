/*
 * The engine API (engine.h): loading a model into its networks, and the generation pipeline
 * prompt -> tokens -> text encoder -> sampler over the UNet -> VAE decoder -> 8-bit RGB, with
 * the optional init image and mask.
 */
#include "engine/engine.h"

#include "engine/nn/nn.h"
#include "engine/sample/sample.h"
#include "engine/tok/tok.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LATENT_C 4 /* latent channels of SD 1.x/2.x */

struct isd_engine {
    struct isd_wt_model *model;    /* the mapped files; every network points into it */
    struct isd_wt_config cfg;      /* its architecture, prediction resolved */
    struct isd_tok *tok;           /* CLIP BPE tokenizer */
    struct isd_nn_text *text;      /* text encoder */
    struct isd_nn_unet *unet;      /* denoiser network */
    struct isd_nn_vae_dec *dec;    /* latent -> image */
    struct isd_nn_vae_enc *enc;    /* image -> latent (img2img, inpainting) */
    struct isd_smp_schedule sched; /* training noise schedule (sigma(t)) */
    int keep_pages;                /* never drop mapped pages between phases */
    struct isd_op_ctx *ops;        /* the engine's own ops context (isd_engine_generate) */
    pthread_mutex_t mu;            /* serialises isd_engine_generate on ops */
};

void isd_engine_options_init(struct isd_engine_options *o)
{
    memset(o, 0, sizeof *o);
    o->prediction = ISD_WT_AUTO;
}

void isd_engine_request_init(struct isd_engine_request *r)
{
    memset(r, 0, sizeof *r);
    r->prompt = "";
    r->width = 512;
    r->height = 512;
    r->steps = 20;
    r->guidance = 7.5;
    r->sampler = "euler_a";
    r->scheduler = "discrete";
    r->batch_count = 1;
    r->strength = 0.75;
}

void isd_engine_result_release(struct isd_engine_result *r)
{
    if (!r)
        return;
    free(r->rgb);
    memset(r, 0, sizeof *r);
}

const struct isd_wt_config *isd_engine_config(const struct isd_engine *e)
{
    return &e->cfg;
}

int isd_engine_size_multiple(const struct isd_engine *e)
{
    return isd_nn_vae_dec_factor(e->dec) * isd_nn_unet_size_multiple(e->unet);
}

/* ---- load ---- */

static int load_tokenizer(struct isd_engine *e, const struct isd_engine_options *o,
                          struct isd_eng_error *err)
{
    const struct isd_wt_paths *p = isd_wt_model_paths(e->model);
    char vocab[4096], merges[4096];
    if (o->tokenizer) {
        int a = snprintf(vocab, sizeof vocab, "%s/vocab.json", o->tokenizer);
        int b = snprintf(merges, sizeof merges, "%s/merges.txt", o->tokenizer);
        if (a < 0 || b < 0 || (size_t)a >= sizeof vocab || (size_t)b >= sizeof merges)
            return isd_eng_fail(err, ISD_ENG_EINVAL, "tokenizer path too long");
    } else if (p->vocab && p->merges) {
        snprintf(vocab, sizeof vocab, "%s", p->vocab);
        snprintf(merges, sizeof merges, "%s", p->merges);
    } else {
        return isd_eng_fail(err, ISD_ENG_EMISSING,
                            "%s: no tokenizer found: give a folder with vocab.json and "
                            "merges.txt (single-file checkpoints carry none)",
                            o->model);
    }
    int rc = isd_tok_load(&e->tok, vocab, merges, err);
    if (rc < 0)
        return rc;
    if (isd_tok_vocab_size(e->tok) > e->cfg.text.vocab_size)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "tokenizer has %d tokens, the text encoder only %d",
                            (int)isd_tok_vocab_size(e->tok), e->cfg.text.vocab_size);
    return 0;
}

/* diffusers scheduler_config.json, else LDM's scaled_linear 0.00085..0.012 over 1000 steps */
static int load_schedule(struct isd_engine *e, struct isd_eng_error *err)
{
    const struct isd_wt_scheduler *s = isd_wt_model_scheduler(e->model);
    if (!s || !s->present)
        return isd_smp_schedule_init_linear(&e->sched, 1000, 0.00085, 0.012, err);
    if (s->beta_schedule[0] == '\0' || strcmp(s->beta_schedule, "scaled_linear") == 0)
        return isd_smp_schedule_init_linear(&e->sched, s->num_train_timesteps, s->beta_start,
                                            s->beta_end, err);
    if (strcmp(s->beta_schedule, "linear") != 0)
        return isd_eng_fail(err, ISD_ENG_EUNSUPPORTED, "scheduler: beta_schedule '%s'",
                            s->beta_schedule);
    int n = s->num_train_timesteps;
    if (n < 2 || n > ISD_SMP_TRAIN_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "scheduler: %d training timesteps", n);
    double *a = malloc((size_t)n * sizeof *a), prod = 1.0;
    if (!a)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "scheduler: out of memory");
    for (int i = 0; i < n; i++) { /* diffusers "linear": betas = linspace(start, end) */
        prod *= 1.0 - (s->beta_start + (s->beta_end - s->beta_start) * i / (n - 1));
        a[i] = prod;
    }
    int rc = isd_smp_schedule_init_alphas(&e->sched, a, n, err);
    free(a);
    return rc;
}

/* stable-diffusion.cpp's test for SD2 checkpoints of unknown prediction type: one UNet pass on
 * a constant 8x8 latent (0.5) at t = 999 with a constant context; v-prediction models give
 * mean(out - x) < -1 */
static int probe_prediction(struct isd_engine *e, struct isd_eng_error *err)
{
    int m = isd_nn_unet_size_multiple(e->unet), side = m > 8 ? m : 8, ctx_len = 2;
    int c_in = e->cfg.unet.in_channels, dim = e->cfg.unet.context_dim;
    size_t n = (size_t)c_in * side * side, no = (size_t)e->cfg.unet.out_channels * side * side;
    struct isd_nn_run *run = NULL;
    float *x = malloc(n * sizeof *x), *out = malloc(no * sizeof *out);
    float *ctx = malloc((size_t)ctx_len * dim * sizeof *ctx), t = 999.0f;
    int rc = x && out && ctx ? 0 : isd_eng_fail(err, ISD_ENG_ENOMEM, "probe: out of memory");
    if (rc == 0)
        rc = isd_nn_unet_plan(e->unet, e->ops, 1, side, side, ctx_len, &run, err);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f;
        for (size_t i = 0; i < (size_t)ctx_len * dim; i++)
            ctx[i] = 0.5f;
        rc = isd_nn_unet_forward(e->unet, run, x, &t, ctx, out, NULL, err);
    }
    if (rc == 0) {
        double mean = 0;
        for (size_t i = 0; i < no; i++)
            mean += (double)out[i] - (double)x[i % n];
        mean /= (double)no;
        e->cfg.prediction = mean < -1 ? ISD_WT_PRED_V : ISD_WT_PRED_EPS;
    }
    isd_nn_run_free(run);
    free(x);
    free(out);
    free(ctx);
    return rc;
}

int isd_engine_load(const struct isd_engine_options *o, struct isd_engine **out,
                    struct isd_eng_error *err)
{
    *out = NULL;
    if (!o || !o->model)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "engine: no model path");
    if (o->prediction != ISD_WT_AUTO && o->prediction != ISD_WT_PRED_EPS &&
        o->prediction != ISD_WT_PRED_V)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "engine: unknown prediction %d", o->prediction);
    struct isd_engine *e = calloc(1, sizeof *e);
    if (!e)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory");
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        free(e);
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: cannot create a mutex");
    }
    e->keep_pages = o->keep_pages;
    struct isd_nn_options no;
    isd_nn_options_init(&no);
    no.resident = o->resident;
    struct isd_op_ctx_params op = {.threads = o->threads};
    int rc = isd_wt_model_open(o->model, o->weights, &e->model, err);
    if (rc == 0) {
        e->cfg = *isd_wt_model_config(e->model);
        if (o->prediction != ISD_WT_AUTO)
            e->cfg.prediction = o->prediction;
        if ((e->ops = isd_op_ctx_new(&op, err)) == NULL)
            rc = err ? err->code : ISD_ENG_ENOMEM;
    }
    if (rc == 0)
        rc = load_tokenizer(e, o, err);
    if (rc == 0)
        rc = isd_nn_text_build(e->model, &no, &e->text, err);
    if (rc == 0)
        rc = isd_nn_unet_build(e->model, &no, &e->unet, err);
    if (rc == 0)
        rc = isd_nn_vae_dec_build(e->model, &no, &e->dec, err);
    if (rc == 0)
        rc = isd_nn_vae_enc_build(e->model, &no, &e->enc, err);
    if (rc == 0)
        rc = load_schedule(e, err);
    if (rc == 0 && o->resident && !o->keep_pages) { /* the copies are made: free the pages */
        isd_nn_text_drop_pages(e->text);
        isd_nn_unet_drop_pages(e->unet);
        isd_nn_vae_dec_drop_pages(e->dec);
        isd_nn_vae_enc_drop_pages(e->enc);
    }
    if (rc == 0 && e->cfg.prediction == ISD_WT_PRED_UNKNOWN) {
        if (e->cfg.family == ISD_WT_SD2)
            rc = probe_prediction(e, err);
        else
            e->cfg.prediction = ISD_WT_PRED_EPS;
    }
    if (rc < 0) {
        isd_engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void isd_engine_free(struct isd_engine *e)
{
    if (!e)
        return;
    isd_nn_text_free(e->text);
    isd_nn_unet_free(e->unet);
    isd_nn_vae_dec_free(e->dec);
    isd_nn_vae_enc_free(e->enc);
    isd_tok_free(e->tok);
    isd_smp_schedule_release(&e->sched);
    isd_op_ctx_free(e->ops);
    isd_wt_model_free(e->model);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* ---- images <-> tensors ---- */

/* [3][h][w] in [-1, 1] -> RGB bytes: clamp((x+1)/2, 0, 1), floor(255 v + 0.5) */
static void image_to_rgb(const float *img, int h, int w, uint8_t *rgb)
{
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            double v = ((double)img[c * plane + i] + 1.0) / 2.0;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            rgb[3 * i + c] = (uint8_t)floor(255.0 * v + 0.5);
        }
}

/* RGB bytes -> [3][h][w] in [-1, 1]; pixels with mask >= 128 become 0 (grey) when mask is set */
static void rgb_to_image(const uint8_t *rgb, const uint8_t *mask, int h, int w, float *img)
{
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            img[c * plane + i] =
                mask && mask[i] >= 128 ? 0.0f : (float)(rgb[3 * i + c] / 127.5 - 1.0);
}

/* Nearest sampling of the mask to latent size (the top-left pixel of each factor x factor
 * block, as torch's interpolate(mode="nearest") picks), binarised at 128. */
static void mask_to_latent(const uint8_t *mask, int width, int factor, int lh, int lw, float *out)
{
    for (int y = 0; y < lh; y++)
        for (int x = 0; x < lw; x++)
            out[(size_t)y * lw + x] =
                mask[(size_t)y * factor * width + (size_t)x * factor] >= 128 ? 1.0f : 0.0f;
}

static void hooks_for_nn(const struct isd_engine_hooks *h, struct isd_nn_hooks *nh)
{
    memset(nh, 0, sizeof *nh);
    if (h && h->abort) {
        nh->abort = h->abort;
        nh->ctx = h->ctx;
    }
}

static int aborted(const struct isd_engine_hooks *h, struct isd_eng_error *err)
{
    if (h && h->abort && h->abort(h->ctx))
        return isd_eng_fail(err, ISD_ENG_ECANCELLED, "engine: cancelled");
    return 0;
}

/* rgb (optionally with the masked pixels set to grey) -> scaled latent [4][H/f][W/f] */
static int encode_rgb(const struct isd_engine *e, struct isd_op_ctx *ops, const uint8_t *rgb,
                      const uint8_t *mask, int width, int height, float *latent,
                      const struct isd_nn_hooks *nh, struct isd_eng_error *err)
{
    struct isd_nn_run *run = NULL;
    float *img = malloc((size_t)3 * width * height * sizeof *img);
    if (!img)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory for the init image");
    int rc = isd_nn_vae_enc_plan(e->enc, ops, 1, height, width, &run, err);
    if (rc == 0) {
        if (rgb)
            rgb_to_image(rgb, mask, height, width, img);
        else
            memset(img, 0, (size_t)3 * width * height * sizeof *img);
        rc = isd_nn_vae_enc_forward(e->enc, run, img, latent, nh, err);
    }
    isd_nn_run_free(run);
    free(img);
    return rc;
}

static int check_image_size(const struct isd_engine *e, int width, int height,
                            struct isd_eng_error *err)
{
    int m = isd_engine_size_multiple(e);
    if (width < 8 || height < 8 || width > ISD_ENGINE_SIDE_MAX || height > ISD_ENGINE_SIDE_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "size %dx%d outside 8..%d", width, height,
                            ISD_ENGINE_SIDE_MAX);
    if (width % 8 || height % 8)
        return isd_eng_fail(err, ISD_ENG_EINVAL,
                            "size %dx%d: width and height must be multiples of 8", width, height);
    if (width % m || height % m)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "size %dx%d: this model needs multiples of %d",
                            width, height, m);
    return 0;
}

int isd_engine_encode_image(const struct isd_engine *e, struct isd_op_ctx *ops, const uint8_t *rgb,
                            int width, int height, float *latent, struct isd_eng_error *err)
{
    if (!e || !ops || !rgb || !latent)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "encode: NULL argument");
    int rc = check_image_size(e, width, height, err);
    return rc < 0 ? rc : encode_rgb(e, ops, rgb, NULL, width, height, latent, NULL, err);
}

/* count latents [4][h][w] -> count RGB images */
static int decode_latents(const struct isd_engine *e, struct isd_op_ctx *ops, const float *latents,
                          int count, int h, int w, uint8_t *rgb, const struct isd_nn_hooks *nh,
                          struct isd_eng_error *err)
{
    int f = isd_nn_vae_dec_factor(e->dec);
    size_t npix = (size_t)h * f * w * f;
    struct isd_nn_run *run = NULL;
    float *img = malloc(3 * npix * sizeof *img);
    if (!img)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory for the image");
    int rc = isd_nn_vae_dec_plan(e->dec, ops, 1, h, w, &run, err);
    for (int i = 0; rc == 0 && i < count; i++) {
        rc = isd_nn_vae_dec_forward(e->dec, run, latents + (size_t)i * LATENT_C * h * w, img, nh,
                                    err);
        if (rc == 0)
            image_to_rgb(img, h * f, w * f, rgb + (size_t)i * 3 * npix);
    }
    isd_nn_run_free(run);
    free(img);
    return rc;
}

int isd_engine_decode_latent(const struct isd_engine *e, struct isd_op_ctx *ops,
                             const float *latent, int h, int w, uint8_t *rgb,
                             struct isd_eng_error *err)
{
    if (!e || !ops || !latent || !rgb || h < 1 || w < 1)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "decode: bad argument");
    return decode_latents(e, ops, latent, 1, h, w, rgb, NULL, err);
}

/* ---- text ---- */

/* Encodes the prompt (and the negative prompt when batch is 2) into ctx [batch][77k][width],
 * k 75-token chunks each (the shorter padded with empty chunks). */
static int encode_text(const struct isd_engine *e, struct isd_op_ctx *ops, const char *const *texts,
                       int batch, float **ctx, int *ctx_len, const struct isd_nn_hooks *nh,
                       struct isd_eng_error *err)
{
    enum { CAP = ISD_ENGINE_CHUNKS_MAX * ISD_TOK_CHUNK };
    int32_t *raw = malloc((size_t)2 * CAP * sizeof *raw), *ids = NULL;
    size_t n[2] = {0, 0}, k = 1;
    struct isd_nn_run *run = NULL;
    int rc = raw ? 0 : isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory");
    *ctx = NULL;
    for (int b = 0; rc == 0 && b < batch; b++) {
        const char *t = texts[b] ? texts[b] : "";
        rc = isd_tok_encode(e->tok, t, strlen(t), raw + (size_t)b * CAP, CAP, &n[b], err);
        if (n[b] > CAP)
            n[b] = CAP; /* longer prompts are cut (ISD_ENGINE_CHUNKS_MAX) */
        if (isd_tok_chunk_count(n[b]) > k)
            k = isd_tok_chunk_count(n[b]);
    }
    size_t seqs = (size_t)batch * k, width = (size_t)isd_nn_text_width(e->text);
    if (rc == 0) {
        ids = malloc(seqs * ISD_TOK_CONTEXT * sizeof *ids);
        *ctx = malloc(seqs * ISD_TOK_CONTEXT * width * sizeof **ctx);
        if (!ids || !*ctx)
            rc = isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory for the prompt");
    }
    for (int b = 0; rc == 0 && b < batch; b++)
        for (size_t j = 0; j < k; j++) {
            size_t first = j * ISD_TOK_CHUNK;
            size_t len = n[b] > first ? n[b] - first : 0;
            isd_tok_sequence(e->tok, raw + (size_t)b * CAP + first,
                             len > ISD_TOK_CHUNK ? ISD_TOK_CHUNK : len, isd_nn_text_pad_id(e->text),
                             ids + ((size_t)b * k + j) * ISD_TOK_CONTEXT);
        }
    if (rc == 0)
        rc = isd_nn_text_plan(e->text, ops, (int)seqs, &run, err);
    if (rc == 0)
        rc = isd_nn_text_forward(e->text, run, ids, *ctx, nh, err);
    isd_nn_run_free(run);
    free(raw);
    free(ids);
    if (rc < 0) {
        free(*ctx);
        *ctx = NULL;
        return rc;
    }
    *ctx_len = (int)(k * ISD_TOK_CONTEXT);
    return 0;
}

/* ---- sampling ---- */

/* what the denoiser's model callback needs */
struct unet_call {
    const struct isd_engine *e;
    struct isd_nn_run *run;
    const float *context; /* [batch][ctx_len][context_dim] */
    const float *mask;    /* inpainting UNet: [batch][h*w] */
    const float *masked;  /* inpainting UNet: [batch][4][h*w] */
    float *xin;           /* inpainting UNet: [batch][9][h*w] */
    size_t hw;            /* latent pixels */
    struct isd_nn_hooks hooks;
};

static int unet_eval(void *ctx, const float *x_in, int batch, double t, float *out,
                     struct isd_eng_error *err)
{
    struct unet_call *c = ctx;
    float ts[2] = {(float)t, (float)t};
    if (batch < 1 || batch > 2)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "engine: model called with batch %d", batch);
    if (c->xin) {
        isd_nn_inpaint_input(batch, c->hw, x_in, c->mask, c->masked, c->xin);
        x_in = c->xin;
    }
    return isd_nn_unet_forward(c->e->unet, c->run, x_in, ts, c->context, out, &c->hooks, err);
}

struct step_call {
    const struct isd_engine_hooks *h;
    int image, lh, lw;
};

static int on_step(void *ctx, int i, int n, const float *x, const float *denoised)
{
    (void)x;
    struct step_call *s = ctx;
    const struct isd_engine_hooks *h = s->h;
    if (h->progress)
        h->progress(h->ctx, s->image, i + 1, n);
    if (h->preview)
        h->preview(h->ctx, s->image, i + 1, n, denoised, LATENT_C, s->lh, s->lw);
    return h->abort && h->abort(h->ctx);
}

/* everything a request needs beyond the request itself */
struct job {
    const struct isd_engine *e;
    struct isd_op_ctx *ops;
    const struct isd_engine_request *rq;
    const struct isd_engine_hooks *hooks;
    struct isd_nn_hooks nh;
    int kind, sched, batch; /* sampler, schedule, UNet batch (2 with CFG) */
    int lh, lw;             /* latent size */
    size_t n;               /* floats of one latent */
    double *sigmas;         /* [steps + 1] */
    int start;              /* first sigma used (img2img) */
    float *context;         /* [batch][ctx_len][dim] */
    int ctx_len;
    float *init;     /* clean init latent [n] (img2img), or NULL */
    float *mask_lat; /* [batch][lh*lw] latent mask, or NULL */
    float *masked;   /* [batch][n] latent of the masked image (inpainting UNet) */
    float *latents;  /* [count][n] results */
};

static int validate(const struct isd_engine *e, const struct isd_engine_request *r, struct job *j,
                    struct isd_eng_error *err)
{
    int rc = check_image_size(e, r->width, r->height, err);
    if (rc < 0)
        return rc;
    if (r->steps < 1 || r->steps > ISD_SMP_STEPS_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "steps %d outside 1..%d", r->steps,
                            ISD_SMP_STEPS_MAX);
    if (!isfinite(r->guidance) || r->guidance < 0 || r->guidance > 100)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "guidance %g outside 0..100", r->guidance);
    if (r->batch_count < 1 || r->batch_count > ISD_ENGINE_BATCH_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "batch count %d outside 1..%d", r->batch_count,
                            ISD_ENGINE_BATCH_MAX);
    const char *sampler = r->sampler ? r->sampler : "euler_a";
    const char *sched = r->scheduler ? r->scheduler : "discrete";
    if ((j->kind = isd_smp_kind_parse(sampler)) < 0)
        return isd_eng_fail(err, ISD_ENG_EINVAL,
                            "unknown sampler '%s' (euler, euler_a, heun, dpm++2m, lcm)", sampler);
    if ((j->sched = isd_smp_sched_parse(sched)) < 0)
        return isd_eng_fail(err, ISD_ENG_EINVAL,
                            "unknown scheduler '%s' (discrete, karras, exponential, "
                            "sgm_uniform, trailing, lcm)",
                            sched);
    if (r->mask && !r->init_rgb)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "a mask needs an init image");
    if (r->init_rgb && !(r->strength > 0 && r->strength <= 1))
        return isd_eng_fail(err, ISD_ENG_EINVAL, "strength %g outside (0, 1]", r->strength);
    return 0;
}

static void job_release(struct job *j)
{
    free(j->sigmas);
    free(j->context);
    free(j->init);
    free(j->mask_lat);
    free(j->masked);
    free(j->latents);
}

static int inpaint_unet(const struct isd_engine *e)
{
    return e->cfg.unet.in_channels == 9;
}

/* init image, mask and masked-image latents (VAE encoder) */
static int prepare_images(struct job *j, struct isd_eng_error *err)
{
    const struct isd_engine *e = j->e;
    const struct isd_engine_request *r = j->rq;
    size_t hw = (size_t)j->lh * j->lw;
    int f = isd_nn_vae_dec_factor(e->dec), rc = 0;
    if (r->init_rgb) {
        if (!(j->init = malloc(j->n * sizeof *j->init)))
            return isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory");
        if ((rc = encode_rgb(e, j->ops, r->init_rgb, NULL, r->width, r->height, j->init, &j->nh,
                             err)) < 0)
            return rc;
    }
    if (!r->mask && !inpaint_unet(e))
        return 0;
    if (!(j->mask_lat = malloc(2 * hw * sizeof *j->mask_lat)))
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory");
    for (size_t i = 0; i < hw; i++)
        j->mask_lat[i] = 1.0f; /* no mask: all repainted */
    if (r->mask)
        mask_to_latent(r->mask, r->width, f, j->lh, j->lw, j->mask_lat);
    memcpy(j->mask_lat + hw, j->mask_lat, hw * sizeof *j->mask_lat);
    if (!inpaint_unet(e))
        return 0;
    if (!(j->masked = malloc(2 * j->n * sizeof *j->masked)))
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory");
    rc = encode_rgb(e, j->ops, r->init_rgb, r->init_rgb ? r->mask : NULL, r->width, r->height,
                    j->masked, &j->nh, err);
    if (rc == 0)
        memcpy(j->masked + j->n, j->masked, j->n * sizeof *j->masked);
    return rc;
}

static int sample_all(struct job *j, struct isd_eng_error *err)
{
    const struct isd_engine *e = j->e;
    const struct isd_engine_request *r = j->rq;
    struct isd_smp_denoiser den;
    struct isd_smp_sampler smp;
    struct isd_smp_rng rng;
    struct unet_call call = {
        .e = e, .context = j->context, .hw = (size_t)j->lh * j->lw, .hooks = j->nh};
    struct isd_smp_model model = {unet_eval, &call};
    int steps = r->steps - j->start, rc;
    float *noise = malloc(j->n * sizeof *noise);
    memset(&den, 0, sizeof den);
    memset(&smp, 0, sizeof smp);
    if (!noise)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory");
    rc = isd_nn_unet_plan(e->unet, j->ops, j->batch, j->lh, j->lw, j->ctx_len, &call.run, err);
    if (rc == 0 && inpaint_unet(e)) {
        call.mask = j->mask_lat;
        call.masked = j->masked;
        call.xin = malloc((size_t)j->batch * 9 * j->lh * j->lw * sizeof *call.xin);
        if (!call.xin)
            rc = isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory");
    }
    if (rc == 0)
        rc = isd_smp_denoiser_init(&den, j->n, &e->sched,
                                   e->cfg.prediction == ISD_WT_PRED_V ? ISD_SMP_PRED_V
                                                                      : ISD_SMP_PRED_EPS,
                                   r->guidance, model, err);
    if (rc == 0)
        rc = isd_smp_sampler_init(&smp, j->kind, LATENT_C, j->lh, j->lw, err);
    for (int i = 0; rc == 0 && i < r->batch_count; i++) {
        float *x = j->latents + (size_t)i * j->n;
        struct step_call sc = {j->hooks, i, j->lh, j->lw};
        struct isd_smp_hooks sh = {on_step, &sc};
        isd_smp_rng_seed(&rng, r->seed + (uint64_t)i, ISD_SMP_RNG_TORCH_AVX2);
        isd_smp_rng_randn(&rng, noise, j->n);
        isd_smp_noise_latent(x, j->init, noise, j->sigmas[j->start], j->n);
        if (steps == 0) /* strength so small that no step runs: the init latent itself */
            memcpy(x, j->init, j->n * sizeof *x);
        struct isd_smp_blend blend = {j->mask_lat, j->init, noise};
        int use_blend = j->mask_lat && j->init && !inpaint_unet(e);
        if (steps > 0)
            rc = isd_smp_sampler_run(&smp, &den, j->sigmas + j->start, steps, x, &rng,
                                     use_blend ? &blend : NULL, j->hooks ? &sh : NULL, err);
    }
    isd_smp_sampler_release(&smp);
    isd_smp_denoiser_release(&den);
    isd_nn_run_free(call.run);
    free(call.xin);
    free(noise);
    return rc;
}

int isd_engine_generate_with(const struct isd_engine *e, struct isd_op_ctx *ops,
                             const struct isd_engine_request *req,
                             const struct isd_engine_hooks *hooks, struct isd_engine_result *res,
                             struct isd_eng_error *err)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!e || !ops || !req || !res)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "engine: NULL argument");
    struct job j = {.e = e, .ops = ops, .rq = req, .hooks = hooks};
    int rc = validate(e, req, &j, err);
    if (rc < 0)
        return rc;
    int f = isd_nn_vae_dec_factor(e->dec);
    j.lh = req->height / f;
    j.lw = req->width / f;
    j.n = (size_t)LATENT_C * j.lh * j.lw;
    j.batch = req->guidance == 1.0 ? 1 : 2;
    j.start = req->init_rgb ? isd_smp_img2img_start(req->steps, req->strength) : 0;
    hooks_for_nn(hooks, &j.nh);
    size_t npix = (size_t)req->width * req->height;
    j.sigmas = malloc((size_t)(req->steps + 1) * sizeof *j.sigmas);
    j.latents = malloc((size_t)req->batch_count * j.n * sizeof *j.latents);
    res->rgb = malloc((size_t)req->batch_count * 3 * npix);
    if (!j.sigmas || !j.latents || !res->rgb)
        rc = isd_eng_fail(err, ISD_ENG_ENOMEM, "engine: out of memory");
    if (rc == 0 && j.start < 0)
        rc = isd_eng_fail(err, ISD_ENG_EINVAL, "strength %g outside (0, 1]", req->strength);
    if (rc == 0)
        rc = isd_smp_sigmas(&e->sched, j.sched, req->steps, j.sigmas, err);
    if (rc == 0)
        rc = aborted(hooks, err);
    const char *texts[2] = {req->prompt, req->negative_prompt};
    if (rc == 0)
        rc = encode_text(e, ops, texts, j.batch, &j.context, &j.ctx_len, &j.nh, err);
    if (!e->keep_pages)
        isd_nn_text_drop_pages(e->text);
    if (rc == 0)
        rc = prepare_images(&j, err);
    if (!e->keep_pages)
        isd_nn_vae_enc_drop_pages(e->enc);
    if (rc == 0)
        rc = sample_all(&j, err);
    if (!e->keep_pages)
        isd_nn_unet_drop_pages(e->unet);
    if (rc == 0)
        rc = aborted(hooks, err);
    if (rc == 0)
        rc = decode_latents(e, ops, j.latents, req->batch_count, j.lh, j.lw, res->rgb, &j.nh, err);
    if (!e->keep_pages)
        isd_nn_vae_dec_drop_pages(e->dec);
    job_release(&j);
    if (rc < 0) {
        isd_engine_result_release(res);
        return rc;
    }
    res->count = req->batch_count;
    res->width = req->width;
    res->height = req->height;
    return 0;
}

int isd_engine_generate(struct isd_engine *e, const struct isd_engine_request *req,
                        const struct isd_engine_hooks *hooks, struct isd_engine_result *res,
                        struct isd_eng_error *err)
{
    if (!e)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "engine: NULL engine");
    pthread_mutex_lock(&e->mu);
    int rc = isd_engine_generate_with(e, e->ops, req, hooks, res, err);
    pthread_mutex_unlock(&e->mu);
    return rc;
}
