/*
 * engine: the diffusion engine's public API. Load a Stable Diffusion 1.x/2.x model once
 * (single-file LDM checkpoint or diffusers folder; F32, F16 or BF16), then generate images:
 * tokenize the prompt and the negative prompt, run the text encoder, sample the latent with the
 * UNet (classifier-free guidance as one batch of 2), decode it with the VAE, return 8-bit RGB.
 * Also img2img (an init image and a strength) and inpainting (a mask: latent blending with any
 * model, the 9-channel input with an inpainting model).
 *
 *     struct isd_engine_options o;
 *     isd_engine_options_init(&o);
 *     o.model = "v1-5-pruned-emaonly.fp16.safetensors";
 *     o.tokenizer = "clip-tokenizer/";           // vocab.json + merges.txt
 *     struct isd_engine *eng;
 *     if (isd_engine_load(&o, &eng, &err) < 0) ...
 *     struct isd_engine_request rq;
 *     isd_engine_request_init(&rq);                // 512x512, 20 steps, CFG 7.5, euler_a
 *     rq.prompt = "a lighthouse at dawn";
 *     struct isd_engine_result res;
 *     if (isd_engine_generate(eng, &rq, NULL, &res, &err) < 0) ...
 *     ... res.rgb: res.count images of res.width x res.height x 3 bytes
 *     isd_engine_result_release(&res);
 *     isd_engine_free(eng);
 *
 * What a request does (k-diffusion conventions, engine-notes 4.5): the schedule comes from the
 * model's scheduler_config.json (diffusers) or LDM's scaled_linear betas (a checkpoint's own
 * alphas_cumprod is ignored, so both layouts agree); prompts longer than 75 tokens are split
 * into 75-token chunks encoded separately and concatenated (A1111 style; the shorter of prompt
 * and negative prompt is padded with empty chunks; at most ISD_ENGINE_CHUNKS_MAX chunks, the
 * rest is cut); image i of a batch uses seed + i: noise from the torch-compatible generator
 * (torch.manual_seed(seed); torch.randn(4*h*w), AVX2 kernel), start latent sigma_max * noise;
 * images are clamp((x+1)/2, 0, 1) rounded to 8 bits (floor(255 v + 0.5)).
 * img2img: the init image (RGB, request size) goes through the VAE encoder (posterior mean),
 * the last floor(steps * strength) steps of the schedule run from init + sigma * noise.
 * Mask (255 = repaint): binarised at 128 and sampled to latent size (nearest); with a regular
 * model the latent outside the mask is reset after every step (isd_smp_blend); with a
 * 9-channel inpainting model the UNet input is cat(x, mask, VAE(init with the hole at 0)).
 * txt2img on an inpainting model uses mask 1 and the latent of a grey (0) image.
 * Prediction type: the model's metadata or scheduler_config.json, else eps for SD1; SD2
 * without either is probed as stable-diffusion.cpp does (one UNet pass on a constant 8x8
 * latent at t = 999: v-prediction when mean(out - x) < -1); options.prediction overrides.
 *
 * Memory: weights stay in the file's mapping (F16/BF16 converted layer by layer at use), so an
 * F16 SD1.5 txt2img at 512x512 needs about 2 GB. Buffers are planned per request and freed
 * after it. Between phases (text encoder -> UNet -> VAE) the finished network's pages are
 * given back to the kernel (they stay in the page cache) unless options.keep_pages is set.
 *
 * Threads: a loaded engine is read-only. isd_engine_generate() runs on the engine's own ops
 * context (options.threads workers) and serialises concurrent calls with a mutex.
 * isd_engine_generate_with() runs on the caller's ops context and takes no lock: several
 * threads may generate at once, each with its own context (threads add up: keep their sum at
 * the core count). With concurrent generations set options.keep_pages (dropping pages another
 * thread is using is harmless but costs page faults). Hooks run on the generating thread.
 *
 * Errors: 0 or a negative ISD_ENG_E* code with a message: EINVAL (a request field out of range,
 * with its name: size not a multiple of 8, steps 0, unknown sampler...), EMISSING (no
 * tokenizer, missing tensors), ECANCELLED (the abort hook), and what loading can return.
 * Limits: ISD_ENGINE_SIDE_MAX pixels per side, ISD_ENGINE_BATCH_MAX images per request, steps up
 * to ISD_SMP_STEPS_MAX (lcm: 50), prompts up to ISD_TOK_TEXT_MAX bytes.
 */
#ifndef ISD_ENGINE_H
#define ISD_ENGINE_H

#include "engine/core/core.h"
#include "engine/ops/ops.h"
#include "engine/weights/weights.h"

#include <stddef.h>
#include <stdint.h>

#define ISD_ENGINE_SIDE_MAX   2048 /* pixels per side */
#define ISD_ENGINE_BATCH_MAX  16   /* images per request */
#define ISD_ENGINE_CHUNKS_MAX 8    /* 75-token chunks per prompt */

struct isd_engine_options {
    const char *model;     /* single .safetensors file or diffusers folder (required) */
    const char *tokenizer; /* folder with vocab.json + merges.txt; NULL: the model's tokenizer/ */
    int threads;           /* workers of the engine's own ops context; 0: online cores */
    int resident;          /* 1: float32 copies of every weight (faster, 2x the memory of F16) */
    int keep_pages;        /* 1: never give mapped weight pages back between phases */
    int prediction;        /* ISD_WT_AUTO, or enum isd_wt_prediction to override the model */
    const struct isd_wt_options *weights; /* loader options/overrides; NULL: defaults */
};

/* model/tokenizer NULL, threads 0, resident 0, keep_pages 0, prediction ISD_WT_AUTO. */
void isd_engine_options_init(struct isd_engine_options *o);

struct isd_engine;

int isd_engine_load(const struct isd_engine_options *o, struct isd_engine **out,
                    struct isd_eng_error *err);
void isd_engine_free(struct isd_engine *e);

/* The inferred architecture (family, prediction as resolved at load, UNet/text/VAE shapes). */
const struct isd_wt_config *isd_engine_config(const struct isd_engine *e);
/* Width and height must be multiples of this (8 x the UNet's 2^(levels-1): 64 for SD). */
int isd_engine_size_multiple(const struct isd_engine *e);

struct isd_engine_request {
    const char *prompt;          /* UTF-8; NULL means "" */
    const char *negative_prompt; /* NULL means "" (the unconditional prompt) */
    int width, height;           /* pixels: multiples of isd_engine_size_multiple() */
    int steps;                   /* sampling steps, >= 1 */
    double guidance;             /* CFG scale; 1: no negative pass (half the UNet work) */
    const char *sampler;         /* euler, euler_a, heun, dpm++2m, lcm; NULL: euler_a */
    const char *scheduler;       /* discrete, karras, exponential, sgm_uniform, trailing, lcm;
                                    NULL: discrete */
    uint64_t seed;               /* image i uses seed + i */
    int batch_count;             /* images, 1..ISD_ENGINE_BATCH_MAX */
    /* img2img / inpainting (all optional) */
    const uint8_t *init_rgb; /* width*height*3 bytes RGB, or NULL (txt2img) */
    double strength;         /* with init_rgb: share of the schedule that runs, (0, 1] */
    const uint8_t *mask;     /* width*height bytes, >= 128: repaint; needs init_rgb */
};

/* prompt "", 512x512, 20 steps, guidance 7.5, euler_a, discrete, seed 0, 1 image,
 * strength 0.75, no init image or mask. */
void isd_engine_request_init(struct isd_engine_request *r);

struct isd_engine_hooks {
    /* after each sampling step: step 1..steps of image 0..count-1 */
    void (*progress)(void *ctx, int image, int step, int steps);
    /* polled between network blocks and after every step; nonzero -> ISD_ENG_ECANCELLED */
    int (*abort)(void *ctx);
    /* after each step: the denoised estimate D (scaled latent, [channels][height][width]) */
    void (*preview)(void *ctx, int image, int step, int steps, const float *latent, int channels,
                    int height, int width);
    void *ctx;
};

struct isd_engine_result {
    int count, width, height;
    uint8_t *rgb; /* count images of height*width*3 bytes (RGB, rows top to bottom), malloc'd */
};

/* Frees rgb (the caller owns it; plain free() does the same) and zeroes the struct. */
void isd_engine_result_release(struct isd_engine_result *r);

/* hooks may be NULL. On failure *res is zeroed and nothing is to be freed. */
int isd_engine_generate(struct isd_engine *e, const struct isd_engine_request *req,
                        const struct isd_engine_hooks *hooks, struct isd_engine_result *res,
                        struct isd_eng_error *err);
/* The same on the caller's ops context (no lock; see Threads). */
int isd_engine_generate_with(const struct isd_engine *e, struct isd_op_ctx *ops,
                             const struct isd_engine_request *req,
                             const struct isd_engine_hooks *hooks, struct isd_engine_result *res,
                             struct isd_eng_error *err);

/* Building blocks for callers that drive the pipeline themselves (previews, tests):
 * RGB image (width*height*3) -> scaled latent [4][height/8][width/8] (posterior mean), and
 * scaled latent [4][h][w] -> RGB (8h x 8w x 3). */
int isd_engine_encode_image(const struct isd_engine *e, struct isd_op_ctx *ops, const uint8_t *rgb,
                            int width, int height, float *latent, struct isd_eng_error *err);
int isd_engine_decode_latent(const struct isd_engine *e, struct isd_op_ctx *ops,
                             const float *latent, int h, int w, uint8_t *rgb,
                             struct isd_eng_error *err);

#endif
