/*
 * Samplers (see sample.h), after crowsonkb/k-diffusion k_diffusion/sampling.py: sample_euler,
 * sample_euler_ancestral, sample_heun, sample_dpmpp_2m (s_churn 0, eta 1, s_noise 1) and
 * sample_lcm. Latents are float32; per-element arithmetic is done in double.
 */
#include "engine/sample/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[ISD_SMP__COUNT] = {
    [ISD_SMP_EULER] = "euler",      [ISD_SMP_EULER_A] = "euler_a", [ISD_SMP_HEUN] = "heun",
    [ISD_SMP_DPMPP_2M] = "dpm++2m", [ISD_SMP_LCM] = "lcm",
};

const char *isd_smp_kind_name(enum isd_smp_kind k)
{
    return (unsigned)k < ISD_SMP__COUNT ? kind_names[k] : "?";
}

int isd_smp_kind_parse(const char *name)
{
    for (int i = 0; i < ISD_SMP__COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    if (strcmp(name, "dpmpp_2m") == 0)
        return ISD_SMP_DPMPP_2M;
    return -1;
}

int isd_smp_sampler_init(struct isd_smp_sampler *s, enum isd_smp_kind kind, int channels,
                         int height, int width, struct isd_eng_error *err)
{
    memset(s, 0, sizeof *s);
    if ((unsigned)kind >= ISD_SMP__COUNT)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sampler: unknown sampler %d", (int)kind);
    if (channels < 1 || height < 1 || width < 1 ||
        (double)channels * height * width > ISD_SMP_LATENT_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sampler: latent %dx%dx%d out of range", channels,
                            height, width);
    size_t n = (size_t)channels * (size_t)height * (size_t)width;
    s->denoised = malloc(n * sizeof *s->denoised);
    s->aux = malloc(n * sizeof *s->aux);
    if (kind == ISD_SMP_HEUN)
        s->aux2 = malloc(n * sizeof *s->aux2);
    if (!s->denoised || !s->aux || (kind == ISD_SMP_HEUN && !s->aux2)) {
        isd_smp_sampler_release(s);
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "sampler: out of memory");
    }
    s->kind = kind;
    s->channels = channels;
    s->height = height;
    s->width = width;
    s->n = n;
    return 0;
}

void isd_smp_sampler_release(struct isd_smp_sampler *s)
{
    free(s->denoised);
    free(s->aux);
    free(s->aux2);
    memset(s, 0, sizeof *s);
}

int isd_smp_img2img_start(int steps, double strength)
{
    if (steps < 1 || steps > ISD_SMP_STEPS_MAX || !(strength >= 0.0 && strength <= 1.0))
        return -1;
    return steps - (int)floor(steps * strength);
}

void isd_smp_noise_latent(float *x, const float *init, const float *noise, double sigma, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((init ? (double)init[i] : 0.0) + sigma * noise[i]);
}

/* x = m x + (1 - m) (init + sigma_next noise), m per pixel, shared by the channels */
static void blend_step(const struct isd_smp_sampler *s, const struct isd_smp_blend *b, float *x,
                       double sigma_next)
{
    size_t plane = (size_t)s->height * (size_t)s->width;
    for (int c = 0; c < s->channels; c++) {
        size_t base = (size_t)c * plane;
        for (size_t p = 0; p < plane; p++) {
            size_t i = base + p;
            double m = b->mask[p];
            double keep = (double)b->init[i] + sigma_next * b->noise[i];
            x[i] = (float)(m * x[i] + (1.0 - m) * keep);
        }
    }
}

/* x += (x - D) / sigma * (target - sigma): the Euler move towards `target` */
static void euler_move(float *x, const float *D, size_t n, double sigma, double target)
{
    double dt = target - sigma;
    for (size_t i = 0; i < n; i++) {
        double d = ((double)x[i] - D[i]) / sigma;
        x[i] = (float)(x[i] + d * dt);
    }
}

static int step_heun(struct isd_smp_sampler *s, struct isd_smp_denoiser *den, float *x,
                     double sigma, double sigma_next, struct isd_eng_error *err)
{
    size_t n = s->n;
    const float *D = s->denoised;
    if (sigma_next == 0.0) {
        euler_move(x, D, n, sigma, sigma_next);
        return 0;
    }
    float *x2 = s->aux, *D2 = s->aux2;
    double dt = sigma_next - sigma;
    for (size_t i = 0; i < n; i++)
        x2[i] = (float)(x[i] + ((double)x[i] - D[i]) / sigma * dt);
    int rc = isd_smp_denoise(den, x2, sigma_next, D2, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        double d = ((double)x[i] - D[i]) / sigma;
        double d2 = ((double)x2[i] - D2[i]) / sigma_next;
        x[i] = (float)(x[i] + (d + d2) / 2.0 * dt);
    }
    return 0;
}

/* DPM++ 2M; `prev` is the previous step's D and sigma (NULL on the first step) */
static void step_dpmpp_2m(size_t n, float *x, const float *D, const float *prev, double sigma_prev,
                          double sigma, double sigma_next)
{
    if (sigma_next == 0.0) {
        memcpy(x, D, n * sizeof *x);
        return;
    }
    double t = -log(sigma), t_next = -log(sigma_next);
    double h = t_next - t;
    double ratio = sigma_next / sigma, gain = -expm1(-h);
    if (!prev) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(ratio * x[i] + gain * D[i]);
        return;
    }
    double h_last = t - (-log(sigma_prev));
    double r = h_last / h;
    double a = 1.0 + 1.0 / (2.0 * r), b = 1.0 / (2.0 * r);
    for (size_t i = 0; i < n; i++) {
        double dd = a * D[i] - b * prev[i];
        x[i] = (float)(ratio * x[i] + gain * dd);
    }
}

/* Euler ancestral (eta 1) from sigma to sigma_next, drawing noise into `noise` */
static void step_euler_a(size_t n, float *x, const float *D, float *noise, double sigma,
                         double sigma_next, struct isd_smp_rng *rng)
{
    double up =
        sqrt(sigma_next * sigma_next * (sigma * sigma - sigma_next * sigma_next) / (sigma * sigma));
    if (up > sigma_next)
        up = sigma_next;
    double down = sqrt(sigma_next * sigma_next - up * up);
    euler_move(x, D, n, sigma, down);
    if (sigma_next > 0.0) {
        isd_smp_rng_randn(rng, noise, n);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(x[i] + (double)noise[i] * up);
    }
}

static void step_lcm(size_t n, float *x, const float *D, float *noise, double sigma_next,
                     struct isd_smp_rng *rng)
{
    memcpy(x, D, n * sizeof *x);
    if (sigma_next > 0.0) {
        isd_smp_rng_randn(rng, noise, n);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(x[i] + sigma_next * noise[i]);
    }
}

static int check_run(const struct isd_smp_sampler *s, const struct isd_smp_denoiser *den,
                     const double *sigmas, int steps, const struct isd_smp_rng *rng,
                     const struct isd_smp_blend *blend, struct isd_eng_error *err)
{
    if (!s->denoised || !den->x_in)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sampler: not initialised");
    if (den->n != s->n)
        return isd_eng_fail(err, ISD_ENG_EINVAL,
                            "sampler: latent of %zu floats, denoiser sized for %zu", s->n, den->n);
    if (steps < 0 || steps > ISD_SMP_STEPS_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sampler: %d steps (0..%d)", steps,
                            ISD_SMP_STEPS_MAX);
    for (int i = 0; i <= steps && steps > 0; i++) {
        int last = i == steps;
        if (!(sigmas[i] >= 0.0 && isfinite(sigmas[i])) || (!last && !(sigmas[i] > 0.0)))
            return isd_eng_fail(err, ISD_ENG_EINVAL, "sampler: sigma[%d] = %g", i, sigmas[i]);
        if (i > 0 && !(sigmas[i] < sigmas[i - 1]))
            return isd_eng_fail(err, ISD_ENG_EINVAL, "sampler: sigmas not decreasing at %d", i);
    }
    if ((s->kind == ISD_SMP_EULER_A || s->kind == ISD_SMP_LCM) && !rng)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sampler: %s needs a random generator",
                            isd_smp_kind_name(s->kind));
    if (blend && (!blend->mask || !blend->init || !blend->noise))
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sampler: incomplete blend (mask/init/noise)");
    return 0;
}

int isd_smp_sampler_run(struct isd_smp_sampler *s, struct isd_smp_denoiser *den,
                        const double *sigmas, int steps, float *x, struct isd_smp_rng *rng,
                        const struct isd_smp_blend *blend, const struct isd_smp_hooks *hooks,
                        struct isd_eng_error *err)
{
    int rc = check_run(s, den, sigmas, steps, rng, blend, err);
    if (rc < 0)
        return rc;
    size_t n = s->n;
    float *prev_D = NULL; /* dpm++ 2m: the previous step's D, kept in aux */
    for (int i = 0; i < steps; i++) {
        double sigma = sigmas[i], sigma_next = sigmas[i + 1];
        rc = isd_smp_denoise(den, x, sigma, s->denoised, err);
        if (rc < 0)
            return rc;
        switch (s->kind) {
        case ISD_SMP_EULER:
            euler_move(x, s->denoised, n, sigma, sigma_next);
            break;
        case ISD_SMP_EULER_A:
            step_euler_a(n, x, s->denoised, s->aux, sigma, sigma_next, rng);
            break;
        case ISD_SMP_HEUN:
            rc = step_heun(s, den, x, sigma, sigma_next, err);
            break;
        case ISD_SMP_DPMPP_2M:
            step_dpmpp_2m(n, x, s->denoised, prev_D, i > 0 ? sigmas[i - 1] : 0.0, sigma,
                          sigma_next);
            break;
        case ISD_SMP_LCM:
            step_lcm(n, x, s->denoised, s->aux, sigma_next, rng);
            break;
        default:
            break;
        }
        if (rc < 0)
            return rc;
        if (blend)
            blend_step(s, blend, x, sigma_next);
        if (hooks && hooks->step && hooks->step(hooks->ctx, i, steps, x, s->denoised))
            return isd_eng_fail(err, ISD_ENG_ECANCELLED, "sampler: cancelled after step %d of %d",
                                i + 1, steps);
        if (s->kind == ISD_SMP_DPMPP_2M) {
            /* keep this D as the previous one: swap the buffers instead of copying */
            float *t = s->aux;
            s->aux = s->denoised;
            s->denoised = t;
            prev_D = s->aux;
        }
    }
    return 0;
}
