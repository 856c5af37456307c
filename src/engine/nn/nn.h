/*
 * engine/nn: the networks of Stable Diffusion 1.x/2.x, on float32 with engine/ops: the text
 * encoders (CLIP ViT-L/14 of SD1: quick_gelu, every layer + final LayerNorm; OpenCLIP ViT-H/14
 * of SD2: exact GELU, the configured number of layers + ln_final), the UNet (LDM
 * openaimodel.UNetModel: ResBlocks, SpatialTransformers with conv or Linear proj_in, GEGLU,
 * 4 or 9 input channels, eps or v output) and both halves of the VAE (AutoencoderKL). Shapes,
 * epsilons and activations follow engine-notes section 4 and come from isd_wt_config.
 *
 * Two kinds of objects:
 *  - a NETWORK (isd_nn_text, isd_nn_unet, isd_nn_vae_dec, isd_nn_vae_enc), built once from an
 *    open model: its layers, each weight a view into the model's file bytes (the model must
 *    outlive the network). Immutable after build: any number of threads may run one network at
 *    the same time, each through its own runner and ops context.
 *  - a RUNNER (struct isd_nn_run), planned for one network, one ops context and one input shape
 *    (batch, latent or image size, context length): it owns every buffer a forward pass needs
 *    (activations, the ops workspace, the weight staging buffer). Forward passes then allocate
 *    nothing. A runner is used by one thread at a time; plan a new one for another shape or
 *    after changing the ops context's thread count.
 *
 * Weights: the file dtype stays in the mmap. F32 tensors (4-byte aligned) are used in place;
 * F16/BF16 matrices are converted at each use into the runner's float32 staging buffer (sized
 * for the largest weight, or the largest pair used together; F16C conversion runs at about
 * 3 G values/s, under 1% of a UNet pass in a profile), so memory stays near the file size:
 * measured peak RSS of an F16 SD1.5 txt2img at 512x512 2.0 GB, against 5.9 GB with
 * isd_nn_options.resident = 1 (float32 copies of every weight: no conversion, and no speed
 * difference measurable here; see docs/performance.md). Norm scales and biases are always copied at
 * build (they are small). With CFG, evaluate the prompt and the negative prompt as one batch of 2:
 * every weight is then converted once per step.
 *
 * Layouts: images and latents NCHW float32 (x[b][c][h][w]); token ids int32 [batch][77];
 * text output and UNet context [batch][tokens][width]; VAE images in [-1, 1] (decoder output
 * not clamped). The UNet takes one timestep per batch item (fractional allowed).
 *
 * Errors: 0 or a negative ISD_ENG_E* code with a message naming the layer: EINVAL (a shape
 * the network cannot take, a runner planned for something else, a token id out of range),
 * ENOMEM, EMISSING/ESHAPE (build: a tensor absent or of the wrong shape), EUNSUPPORTED (an
 * architecture outside SD1/SD2), ECANCELLED (the abort hook). Limits: batch 1..ISD_NN_BATCH_MAX,
 * UNet context up to ISD_NN_CONTEXT_MAX tokens, sizes whose buffers fit in size_t.
 *
 * Hooks (all optional): `debug` receives named intermediates as they are computed
 * ("clip.embeddings", "clip.layer.N", "clip.final"; "unet.time_embed", "unet.input_blocks.N",
 * "unet.middle_block", "unet.output_blocks.N", "unet.out"; "vae.decoder.conv_in",
 * "vae.decoder.mid", "vae.decoder.up.N", "vae.decoder.out"; "vae.encoder.conv_in",
 * "vae.encoder.down.N", "vae.encoder.mid", "vae.encoder.out", "vae.encoder.mean") - the names of
 * tests/reference/ldm_ref.py. `abort` is polled between blocks; nonzero stops the pass with
 * ISD_ENG_ECANCELLED.
 *
 *     struct isd_nn_unet *unet;
 *     struct isd_nn_run *run;
 *     if (isd_nn_unet_build(model, NULL, &unet, &err) < 0 ||
 *         isd_nn_unet_plan(unet, ops, 2, 64, 64, 77, &run, &err) < 0) ...
 *     float t[2] = {999, 999};
 *     isd_nn_unet_forward(unet, run, x, t, context, eps, NULL, &err);   // allocates nothing
 *     isd_nn_run_free(run);
 *     isd_nn_unet_free(unet);
 */
#ifndef ISD_ENGINE_NN_H
#define ISD_ENGINE_NN_H

#include "engine/core/core.h"
#include "engine/ops/ops.h"
#include "engine/weights/weights.h"

#include <stddef.h>
#include <stdint.h>

#define ISD_NN_BATCH_MAX   64
#define ISD_NN_CONTEXT_MAX (77 * 32) /* UNet context tokens (A1111-style 75-token chunks) */
#define ISD_NN_TOKENS      77        /* text encoder sequence length */

struct isd_nn_options {
    int resident; /* 1: float32 copies of every weight (fast, 2x an F16 file's memory) */
};

/* resident = 0. A NULL options pointer means the same. */
void isd_nn_options_init(struct isd_nn_options *o);

/* A tensor shown to the debug hook: row-major float32, shape[0..ndim-1]. */
struct isd_nn_tensor {
    const float *data;
    int ndim;
    int shape[4];
};

struct isd_nn_hooks {
    void (*debug)(void *ctx, const char *name, const struct isd_nn_tensor *t);
    int (*abort)(void *ctx); /* polled between blocks: nonzero -> ISD_ENG_ECANCELLED */
    void *ctx;
};

struct isd_nn_run;
void isd_nn_run_free(struct isd_nn_run *run);
/* Bytes the runner holds (activations + workspace + staging). */
size_t isd_nn_run_bytes(const struct isd_nn_run *run);
/* Floating-point operations of one forward pass of the planned shape (2 per multiply-add;
 * convolutions, linears and the two attention products, as engine-notes section 5 counts). */
double isd_nn_run_flops(const struct isd_nn_run *run);

/* ---- text encoder ---- */

struct isd_nn_text;

int isd_nn_text_build(const struct isd_wt_model *m, const struct isd_nn_options *o,
                      struct isd_nn_text **out, struct isd_eng_error *err);
void isd_nn_text_free(struct isd_nn_text *net);
/* Output width (768 / 1024) and the token id used for padding (SD1: EOS, SD2: 0). */
int isd_nn_text_width(const struct isd_nn_text *net);
int isd_nn_text_pad_id(const struct isd_nn_text *net);
int isd_nn_text_plan(const struct isd_nn_text *net, struct isd_op_ctx *ops, int batch,
                     struct isd_nn_run **out, struct isd_eng_error *err);
/* ids [batch][77] -> out [batch][77][width]. */
int isd_nn_text_forward(const struct isd_nn_text *net, struct isd_nn_run *run, const int32_t *ids,
                        float *out, const struct isd_nn_hooks *hooks, struct isd_eng_error *err);

/* ---- UNet ---- */

struct isd_nn_unet;

int isd_nn_unet_build(const struct isd_wt_model *m, const struct isd_nn_options *o,
                      struct isd_nn_unet **out, struct isd_eng_error *err);
void isd_nn_unet_free(struct isd_nn_unet *net);
const struct isd_wt_unet_config *isd_nn_unet_config(const struct isd_nn_unet *net);
/* Latent sizes must be multiples of this (2^(levels-1): the skips must match). */
int isd_nn_unet_size_multiple(const struct isd_nn_unet *net);
/* h x w latent, ctx_len context tokens (any length >= 1, 77 per text sequence). */
int isd_nn_unet_plan(const struct isd_nn_unet *net, struct isd_op_ctx *ops, int batch, int h, int w,
                     int ctx_len, struct isd_nn_run **out, struct isd_eng_error *err);
/* x [batch][in_channels][h][w], t [batch], context [batch][ctx_len][context_dim] ->
 * out [batch][out_channels][h][w] (eps or v, as the model predicts). */
int isd_nn_unet_forward(const struct isd_nn_unet *net, struct isd_nn_run *run, const float *x,
                        const float *t, const float *context, float *out,
                        const struct isd_nn_hooks *hooks, struct isd_eng_error *err);
/* The 9-channel input of an inpainting UNet (LDM hybrid conditioning):
 * y[b] = cat(x[b] (4), mask[b] (1), masked_latent[b] (4)) along channels, hw = h*w. */
void isd_nn_inpaint_input(int batch, size_t hw, const float *x, const float *mask,
                          const float *masked_latent, float *y);

/* ---- VAE ---- */

struct isd_nn_vae_dec;

int isd_nn_vae_dec_build(const struct isd_wt_model *m, const struct isd_nn_options *o,
                         struct isd_nn_vae_dec **out, struct isd_eng_error *err);
void isd_nn_vae_dec_free(struct isd_nn_vae_dec *net);
/* Image pixels per latent pixel along each side (8 for SD). */
int isd_nn_vae_dec_factor(const struct isd_nn_vae_dec *net);
/* Latent h x w. */
int isd_nn_vae_dec_plan(const struct isd_nn_vae_dec *net, struct isd_op_ctx *ops, int batch, int h,
                        int w, struct isd_nn_run **out, struct isd_eng_error *err);
/* Scaled latent z [batch][4][h][w] (the UNet's space) -> image [batch][3][8h][8w], about
 * [-1, 1], not clamped. */
int isd_nn_vae_dec_forward(const struct isd_nn_vae_dec *net, struct isd_nn_run *run, const float *z,
                           float *image, const struct isd_nn_hooks *hooks,
                           struct isd_eng_error *err);

struct isd_nn_vae_enc;

int isd_nn_vae_enc_build(const struct isd_wt_model *m, const struct isd_nn_options *o,
                         struct isd_nn_vae_enc **out, struct isd_eng_error *err);
void isd_nn_vae_enc_free(struct isd_nn_vae_enc *net);
/* Image H x W, multiples of the downsampling factor (8 for SD). */
int isd_nn_vae_enc_plan(const struct isd_nn_vae_enc *net, struct isd_op_ctx *ops, int batch,
                        int height, int width, struct isd_nn_run **out, struct isd_eng_error *err);
/* image [batch][3][H][W] in [-1, 1] -> scaled posterior mean [batch][4][H/8][W/8]
 * (the mode of the latent distribution times the scale factor, 0.18215). */
int isd_nn_vae_enc_forward(const struct isd_nn_vae_enc *net, struct isd_nn_run *run,
                           const float *image, float *latent, const struct isd_nn_hooks *hooks,
                           struct isd_eng_error *err);

/* ---- memory ---- */

/* Gives back this network's share of a file mapping to the kernel (madvise MADV_DONTNEED on
 * the whole pages inside its weights): resident set size drops, and the next use faults the
 * pages in again from the page cache. Read-only file mappings lose nothing; ONLY call these
 * for models opened from files with isd_wt_model_open (never isd_wt_model_open_mem, whose
 * bytes may be anonymous memory that would be zeroed). Safe while other threads run the
 * network (they fault pages back in). */
void isd_nn_text_drop_pages(const struct isd_nn_text *net);
void isd_nn_unet_drop_pages(const struct isd_nn_unet *net);
void isd_nn_vae_dec_drop_pages(const struct isd_nn_vae_dec *net);
void isd_nn_vae_enc_drop_pages(const struct isd_nn_vae_enc *net);

#endif
