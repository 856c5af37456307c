/*
 * engine/sample: everything between the network and the latent: the torch-compatible random
 * generator, the DDPM noise schedule and its sigma tables, the denoiser wrappers (eps and v
 * prediction, classifier-free guidance) and the samplers (k-diffusion conventions).
 *
 * RNG. `struct isd_smp_rng` reproduces `torch.manual_seed(seed); torch.randn(n)` on the CPU in
 * float32: the same MT19937 word stream (torch keeps the low 32 bits of the seed), the same
 * uniform -> normal transforms (size < 16: double Box-Muller with torch's cached second sample;
 * size >= 16: blocks of 16 uniforms, pairs i and i+8, the last 16 redrawn when n % 16 != 0).
 * The transcendental functions of the n >= 16 path depend on torch's CPU kernel, so two kinds
 * exist: ISD_SMP_RNG_TORCH_AVX2 (torch's AVX2 kernel, avx_mathfun polynomials with the fused
 * multiply-adds GCC emitted in torch 1.13.1's Debian build) and ISD_SMP_RNG_TORCH_SCALAR (the
 * default/AVX-512 kernel: libm logf/cosf/sinf). Both are bit-exact against torch 1.13.1 here.
 * Successive randn calls continue the stream as successive torch.randn calls do.
 *
 * Schedule. `struct isd_smp_schedule` holds sigma(t) for the training timesteps
 * (sigma = sqrt((1 - alphas_cumprod) / alphas_cumprod)), built from LDM's scaled_linear betas or
 * from a checkpoint's alphas_cumprod; t <-> sigma interpolate linearly in log sigma
 * (k-diffusion DiscreteSchedule). isd_smp_sigmas() writes a step schedule of steps+1 sigmas,
 * decreasing, ending with 0. All in double.
 *
 * Denoiser. The network is a callback evaluating a batch of 1 or 2 latents (item 0: prompt,
 * item 1: negative prompt) already scaled by c_in = 1/sqrt(sigma^2+1), at timestep t(sigma);
 * it returns eps or v. `struct isd_smp_denoiser` turns that into D(x, sigma) (the denoised
 * estimate), doing classifier-free guidance D = D_u + s (D_c - D_u) by asking for a batch of 2;
 * s == 1 evaluates the prompt only (batch of 1). Any other s, 0 included, uses the formula.
 *
 * Samplers. isd_smp_sampler_run() runs euler, euler_a (eta 1), heun, dpm++2m or lcm over a
 * sigma schedule, drawing ancestral noise from the rng, with an optional per-step hook
 * (progress, preview of D, cancel) and optional masked latent blending for inpainting. img2img:
 * start at index isd_smp_img2img_start(steps, strength) of the schedule with
 * isd_smp_noise_latent(x, init, noise, sigmas[start]).
 *
 * Ownership: every struct here is caller storage with _init/_release (release is idempotent
 * and accepts a zeroed struct); the sampler and denoiser allocate their buffers at init and
 * nothing per step. Errors: negative ISD_ENG_E* codes with a message in the error struct.
 * Limits: training timesteps 2..ISD_SMP_TRAIN_MAX, steps 1..ISD_SMP_STEPS_MAX (lcm: 1..50),
 * latent elements up to ISD_SMP_LATENT_MAX. Threading: one thread per struct; the schedule is
 * read-only after init and may be shared.
 *
 *     struct isd_smp_schedule sch; struct isd_smp_denoiser den; struct isd_smp_sampler smp;
 *     struct isd_smp_rng rng; double sig[21];
 *     isd_smp_schedule_init_linear(&sch, 1000, 0.00085, 0.012, &err);
 *     isd_smp_sigmas(&sch, ISD_SMP_SCHED_KARRAS, 20, sig, &err);
 *     isd_smp_denoiser_init(&den, 4 * 64 * 64, &sch, ISD_SMP_PRED_EPS, 7.0, model, &err);
 *     isd_smp_sampler_init(&smp, ISD_SMP_DPMPP_2M, 4, 64, 64, &err);
 *     isd_smp_rng_seed(&rng, seed, ISD_SMP_RNG_TORCH_AVX2);
 *     isd_smp_rng_randn(&rng, noise, n);
 *     isd_smp_noise_latent(x, NULL, noise, sig[0], n);
 *     rc = isd_smp_sampler_run(&smp, &den, sig, 20, x, &rng, NULL, &hooks, &err);
 */
#ifndef ISD_ENGINE_SAMPLE_H
#define ISD_ENGINE_SAMPLE_H

#include "engine/core/core.h"

#include <stddef.h>
#include <stdint.h>

#define ISD_SMP_TRAIN_MAX  10000     /* training timesteps in a schedule */
#define ISD_SMP_STEPS_MAX  1000      /* sampling steps */
#define ISD_SMP_LCM_ORIGIN 50        /* LCM's original inference grid */
#define ISD_SMP_LATENT_MAX (1 << 26) /* floats in one latent */

/* ---- torch-compatible random numbers ---------------------------------------------------- */

enum isd_smp_rng_kind {
    ISD_SMP_RNG_TORCH_AVX2 = 0, /* torch CPU randn, AVX2 kernel (avx_mathfun) */
    ISD_SMP_RNG_TORCH_SCALAR,   /* torch CPU randn, default/AVX-512 kernel (libm) */
};

struct isd_smp_rng {
    uint32_t mt[624];           /* MT19937 state words */
    int next;                   /* index of the next word to temper; 624: regenerate first */
    int has_cached;             /* torch's next_double_normal_sample is set */
    double cached;              /* that sample (the sin half of the last small-size pair) */
    enum isd_smp_rng_kind kind; /* transform used for n >= 16 */
};

/* Same as torch.manual_seed(seed) (seeds >= 2^32 keep their low 32 bits, as torch does; a
 * negative Python seed s is the uint64 s + 2^64). Resets the cached normal. */
void isd_smp_rng_seed(struct isd_smp_rng *r, uint64_t seed, enum isd_smp_rng_kind kind);
/* The next raw MT19937 output word. */
uint32_t isd_smp_rng_u32(struct isd_smp_rng *r);
/* Same as torch.randn(n) (float32, contiguous) on this generator: n values into out. */
void isd_smp_rng_randn(struct isd_smp_rng *r, float *out, size_t n);

/* ---- noise schedule --------------------------------------------------------------------- */

struct isd_smp_schedule {
    int n;              /* training timesteps (1000 for SD) */
    double *sigmas;     /* [n] sigma(t), strictly increasing */
    double *log_sigmas; /* [n] log(sigmas) */
};

/* LDM "scaled_linear": beta_i = (sqrt(b0) + i/(n-1) (sqrt(b1) - sqrt(b0)))^2; SD uses
 * n 1000, b0 0.00085, b1 0.012. */
int isd_smp_schedule_init_linear(struct isd_smp_schedule *s, int n, double beta_start,
                                 double beta_end, struct isd_eng_error *err);
/* From a checkpoint's alphas_cumprod[n]: each in (0, 1), strictly decreasing. */
int isd_smp_schedule_init_alphas(struct isd_smp_schedule *s, const double *alphas_cumprod, int n,
                                 struct isd_eng_error *err);
void isd_smp_schedule_release(struct isd_smp_schedule *s);

/* Fractional timestep for sigma (clamped to [0, n-1]) and back, by linear interpolation in
 * log sigma between integer timesteps. */
double isd_smp_sigma_to_t(const struct isd_smp_schedule *s, double sigma);
double isd_smp_t_to_sigma(const struct isd_smp_schedule *s, double t);

/* Step schedules (n = training timesteps):
 *   discrete     t = linspace(n-1, 0, steps), k-diffusion get_sigmas (A1111 "normal")
 *   karras       Karras et al., rho 7, from sigma(n-1) down to sigma(0)
 *   exponential  exp(linspace(log sigma_max, log sigma_min, steps))
 *   sgm_uniform  t = linspace(n-1, 0, steps+1)[:-1] (ComfyUI; for turbo models)
 *   trailing     t = round(arange(n, 0, -n/steps)) - 1 (diffusers "trailing"; turbo models)
 *   lcm          diffusers LCMScheduler: steps taken from the 50-step grid t = (n/50)(k+1) - 1 */
enum isd_smp_sched {
    ISD_SMP_SCHED_DISCRETE = 0,
    ISD_SMP_SCHED_KARRAS,
    ISD_SMP_SCHED_EXPONENTIAL,
    ISD_SMP_SCHED_SGM_UNIFORM,
    ISD_SMP_SCHED_TRAILING,
    ISD_SMP_SCHED_LCM,
    ISD_SMP_SCHED__COUNT
};

const char *isd_smp_sched_name(enum isd_smp_sched k);
/* "karras" -> ISD_SMP_SCHED_KARRAS; -1 if unknown. */
int isd_smp_sched_parse(const char *name);
/* Writes steps+1 sigmas (the last is 0) into out. */
int isd_smp_sigmas(const struct isd_smp_schedule *s, enum isd_smp_sched kind, int steps,
                   double *out, struct isd_eng_error *err);

/* ---- denoiser (network wrapper + classifier-free guidance) ------------------------------ */

enum isd_smp_pred {
    ISD_SMP_PRED_EPS = 0, /* the network predicts the noise */
    ISD_SMP_PRED_V,       /* v-prediction (SD 2.x 768-v) */
};

struct isd_smp_model {
    /* Evaluates the network on `batch` (1 or 2) latents of n floats each, stored one after the
     * other in x_in (already multiplied by c_in), at timestep t; item 0 uses the prompt, item 1
     * the negative prompt. Writes batch * n predictions to out. Returns 0 or a negative
     * ISD_ENG_E* code (filling err). */
    int (*eval)(void *ctx, const float *x_in, int batch, double t, float *out,
                struct isd_eng_error *err);
    void *ctx;
};

struct isd_smp_denoiser {
    const struct isd_smp_schedule *sched; /* borrowed: t(sigma) */
    struct isd_smp_model model;           /* the network */
    enum isd_smp_pred pred;               /* what the network predicts */
    double cfg_scale;                     /* guidance scale s; 1 skips the negative prompt */
    size_t n;                             /* floats per latent */
    float *x_in;                          /* [2n] scaled network input */
    float *out;                           /* [2n] network output */
    long calls;                           /* network calls so far */
    long items;                           /* latents evaluated so far (2 per call with CFG) */
};

int isd_smp_denoiser_init(struct isd_smp_denoiser *d, size_t n,
                          const struct isd_smp_schedule *sched, enum isd_smp_pred pred,
                          double cfg_scale, struct isd_smp_model model, struct isd_eng_error *err);
void isd_smp_denoiser_release(struct isd_smp_denoiser *d);
/* D(x, sigma) into out[n] (x and out may not alias). */
int isd_smp_denoise(struct isd_smp_denoiser *d, const float *x, double sigma, float *out,
                    struct isd_eng_error *err);

/* ---- samplers --------------------------------------------------------------------------- */

enum isd_smp_kind {
    ISD_SMP_EULER = 0, /* 1 call per step */
    ISD_SMP_EULER_A,   /* Euler ancestral, eta 1: draws noise after every step but the last */
    ISD_SMP_HEUN,      /* 2 calls per step, the last step plain Euler */
    ISD_SMP_DPMPP_2M,  /* DPM++ 2M (k-diffusion sample_dpmpp_2m) */
    ISD_SMP_LCM,       /* x = D, then + sigma_next * noise */
    ISD_SMP__COUNT
};

const char *isd_smp_kind_name(enum isd_smp_kind k);
/* "euler_a" -> ISD_SMP_EULER_A ("dpm++2m", "dpmpp_2m" both accepted); -1 if unknown. */
int isd_smp_kind_parse(const char *name);

struct isd_smp_hooks {
    /* Called after step i (0-based) of n with the new latent x and the denoised estimate D of
     * that step (a preview). Return nonzero to stop: the sampler returns ISD_ENG_ECANCELLED. */
    int (*step)(void *ctx, int i, int n, const float *x, const float *denoised);
    void *ctx;
};

/* Masked latent blending ("inpainting by blending"): after each step,
 * x = m x + (1 - m) (init + sigma_next noise), with m broadcast over the channels. */
struct isd_smp_blend {
    const float *mask;  /* [h*w] in latent resolution: 1 where the image is edited */
    const float *init;  /* [n] the clean init latent */
    const float *noise; /* [n] the noise the start latent was made with */
};

struct isd_smp_sampler {
    enum isd_smp_kind kind;
    int channels, height, width; /* latent shape (batch 1) */
    size_t n;                    /* channels * height * width */
    float *denoised;             /* [n] D of the current step */
    float *aux;                  /* [n] euler_a/lcm noise, heun x_2, dpm++ previous D */
    float *aux2;                 /* [n] heun D_2 */
};

int isd_smp_sampler_init(struct isd_smp_sampler *s, enum isd_smp_kind kind, int channels,
                         int height, int width, struct isd_eng_error *err);
void isd_smp_sampler_release(struct isd_smp_sampler *s);
/* Runs `steps` steps over sigmas[0..steps] (sigmas[steps] may be 0), updating x[n] in place.
 * rng is needed by euler_a and lcm (may be NULL otherwise); blend and hooks may be NULL. */
int isd_smp_sampler_run(struct isd_smp_sampler *s, struct isd_smp_denoiser *den,
                        const double *sigmas, int steps, float *x, struct isd_smp_rng *rng,
                        const struct isd_smp_blend *blend, const struct isd_smp_hooks *hooks,
                        struct isd_eng_error *err);

/* img2img: index of the first sigma to use, steps - floor(steps * strength) (strength in
 * [0, 1]; 0 -> steps, i.e. nothing to do; 1 -> 0, the whole schedule). Returns -1 if the
 * arguments are out of range. */
int isd_smp_img2img_start(int steps, double strength);
/* x = init + sigma * noise (init NULL: x = sigma * noise, the txt2img start). */
void isd_smp_noise_latent(float *x, const float *init, const float *noise, double sigma, size_t n);

#endif
