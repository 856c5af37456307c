/*
 * diffusion: the `diffusion` generator (src/gen) on the native engine (src/engine): a local
 * Stable Diffusion 1.x/2.x checkpoint behind the Images API. It maps each request honestly:
 *
 * - Size: the engine generates at the model's native resolution class (native_size^2 pixels,
 *   the requested aspect ratio, sides multiples of the engine's size multiple) and the result is
 *   resized to the requested size (isd_image_resize). SD 1.x/2.x were trained at 512/768
 *   pixels: asked for 1024^2 directly they repeat subjects and take 4-5x the time (attention
 *   grows with the square of the pixel count). isd_diffusion_plan_size() says which size a
 *   request is generated at: the ideal size (native_size^2 pixels at the requested aspect,
 *   scaled down to fit ISD_ENGINE_SIDE_MAX, up to reach one multiple m) has four neighbours
 *   with sides multiples of m (each side rounded down and up, kept within m..SIDE_MAX); the
 *   one closest in aspect ratio (|log ratio|) wins, then the one closest in area, then the
 *   larger. E.g. with m 64 and native 512: 1024x1024 -> 512x512, 1536x1024 -> 576x384,
 *   3840x2160 -> 704x384.
 * - quality low/medium/high (dall-e-3's standard = medium, hd = high; anything else = medium)
 *   picks the steps and sampler of the model entry (defaults: 10, 20, 40 steps of dpm++2m with
 *   karras sigmas).
 * - Generations: txt2img with the prompt and the entry's negative prompt.
 * - Edits use inputs[0] only (further inputs are ignored). Inputs are flattened on white to RGB
 *   and resized to the generation size. Without a mask: img2img at edit_strength (0.75). With a
 *   mask (alpha < 128 = repaint: alpha 0 is the OpenAI convention; for an edit without a mask
 *   whose first image has pixels with alpha < 128, that alpha is the mask, as for dall-e-2):
 *   inpainting at strength 1 by latent blending, or a 9-channel inpainting checkpoint's native
 *   path (the engine decides from the model); the mask is resized to the generation size with
 *   nearest sampling. Then, at the output size, every pixel the mask keeps (alpha >= 128) is
 *   the input's own pixel flattened on white (the input and mask resized to the output size
 *   only when it differs: exact when the output size is the input size).
 * - Variations: img2img from inputs[0] at variation_strength (0.6) with variation_prompt ("");
 *   the request's prompt is not used.
 * - n images: one engine call with batch n (image i uses seed + i: caps.sequential_seeds);
 *   image_done(i) is called for each image in order once the engine has returned. When the
 *   caller takes images one by one (an image_done hook and n > 1: a stream, where image i's
 *   previews and completed event come before image i+1's), one engine call per image instead,
 *   which gives the same images.
 * - Transparency: none (caps.transparency false; the server refuses background "transparent");
 *   outputs are opaque (has_alpha false).
 * - Partial images: k = partial_images previews per image, of the denoised estimate after steps
 *   ceil((j + 1) S / (k + 1)), j = 0..k-1, for an image that runs S sampling steps (img2img
 *   runs fewer than `steps`): evenly spaced, never the last step. When S <= k, fewer come: one
 *   after each step but the last (S - 1 partials, indices 0..S-2; none for S = 1). Each is
 *   projected from the latent to RGB with a fixed 4x3 matrix (no VAE pass), then resized to the
 *   output size. A partial hook returning < 0 stops the run, which returns that value.
 * - Extension fields (struct isd_gen_extensions) override steps, guidance, negative prompt,
 *   sampler and strength (edits and variations; with a mask it replaces the 1). Cancellation:
 *   should_abort is polled by the engine between network blocks and after every step.
 * - Report: steps = sampling steps run, summed over the images (also on failure);
 *   megapixels = gen_w * gen_h * n / 1e6 on success, 0 on failure.
 *
 * Errors: -ISD_E_INVALID_VALUE with the field ("n", "size", "partial_images", "image", "steps",
 * "guidance_scale", "sampler", "strength", "prompt") for values outside what the engine takes;
 * -ISD_E_INVALID_MASK for a mask whose size differs from inputs[0]; -ISD_E_CANCELLED when
 * should_abort says so (while running or while waiting for a context); -ISD_E_NOMEM; any other
 * engine failure is -ISD_E_GENERATOR with the engine's message. On any error with a valid n,
 * every out[] entry is NULL (an invalid n leaves out[] untouched).
 *
 * Concurrency: `concurrency` generations run at once (default 1), each on its own ops context of
 * threads/concurrency threads (threads 0 = the online cores; at least 1 each), sharing the
 * loaded weights (the engine keeps its pages mapped when concurrency > 1); other requests wait
 * for a context, polling should_abort every 20 ms.
 *
 * Ownership: isd_diffusion_new() loads the model (at once: the weights are mapped, not read)
 * and returns a generator freed with isd_gen_free(). Options' strings are copied by
 * isd_diffusion_new(); isd_diffusion_option_set() only points at the value it is given.
 *
 *     struct isd_diffusion_options o;
 *     isd_diffusion_options_init(&o);
 *     if (isd_diffusion_option_set(&o, "checkpoint", "/models/sd15.safetensors", &err) != 0) ...
 *     struct isd_generator *g = isd_diffusion_new(&o, &err);   // NULL: err names the problem
 *     isd_gen_run(g, &req, &hooks, out, &err);
 *     isd_gen_free(g);
 */
#ifndef ISD_DIFFUSION_H
#define ISD_DIFFUSION_H

#include "err/err.h"
#include "gen/gen.h"

enum isd_diffusion_quality { ISD_DQ_LOW = 0, ISD_DQ_MEDIUM, ISD_DQ_HIGH, ISD_DQ__COUNT };

struct isd_diffusion_options {
    const char *checkpoint; /* .safetensors file or diffusers folder (required) */
    const char *tokenizer;  /* folder with vocab.json + merges.txt; NULL: the model's tokenizer/ */
    int native_size;        /* side of the native resolution class; 0: 512 (SD2 v-pred: 768) */
    int steps[ISD_DQ__COUNT];
    const char *sampler[ISD_DQ__COUNT];
    const char *scheduler; /* karras */
    double guidance;       /* 7.5 */
    const char *negative_prompt;
    double edit_strength;      /* 0.75 */
    double variation_strength; /* 0.6 */
    const char *variation_prompt;
    int threads;     /* in all, split over the contexts: each gets threads / concurrency (at
                        least 1); 0: the online cores */
    int concurrency; /* generations at once, each on its own ops context (1) */
    int resident;    /* float32 copies of the weights (engine option) */
};

void isd_diffusion_options_init(struct isd_diffusion_options *o);
/* Sets one option from a model entry of the config file (`key = value`): 0 when set, 1 when
 * `key` is not a diffusion option, or an error naming the key and the accepted values. The
 * strings must outlive the options (the config keeps them). Keys: checkpoint, tokenizer,
 * native_size, steps_low, steps_medium, steps_high, sampler_low, sampler_medium, sampler_high,
 * scheduler, guidance, negative_prompt, edit_strength, variation_strength, variation_prompt,
 * threads, concurrency, resident. Values: checkpoint/tokenizer non-empty; native_size 0 or
 * 8..2048; steps_* 1..1000; sampler_* euler, euler_a, heun, dpm++2m, lcm; scheduler discrete,
 * karras, exponential, sgm_uniform, trailing, lcm; guidance 1..100 (1: no negative pass);
 * edit_strength, variation_strength (0, 1]; threads 0..256; concurrency 1..16; resident
 * true, false, 1, 0. Numbers are plain decimals, nothing around them. */
int isd_diffusion_option_set(struct isd_diffusion_options *o, const char *key, const char *value,
                             struct isd_error *err);
/* Checks the options (as option_set does), loads the model and starts the ops contexts. NULL
 * with err set on failure: ISD_E_INVALID_VALUE naming the option (param "checkpoint" and the
 * path in the message when the model cannot be loaded), ISD_E_IO, ISD_E_NOMEM. */
struct isd_generator *isd_diffusion_new(const struct isd_diffusion_options *o,
                                        struct isd_error *err);

/* The size a w x h request is generated at (before resizing to w x h). g must come from
 * isd_diffusion_new(). */
void isd_diffusion_plan_size(const struct isd_generator *g, int w, int h, int *gen_w, int *gen_h);
/* The same rule for any native size and size multiple (pure; what plan_size uses). */
void isd_diffusion_plan(int native_size, int multiple, int w, int h, int *gen_w, int *gen_h);

#endif
