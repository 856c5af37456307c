/*
 * Denoiser wrappers (see sample.h): k-diffusion's DiscreteEpsDDPMDenoiser (eps) and
 * DiscreteVDDPMDenoiser (v) with sigma_data 1, plus classifier-free guidance on the denoised
 * estimates as k-diffusion's CFGDenoiser and A1111 do.
 */
#include "engine/sample/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int isd_smp_denoiser_init(struct isd_smp_denoiser *d, size_t n,
                          const struct isd_smp_schedule *sched, enum isd_smp_pred pred,
                          double cfg_scale, struct isd_smp_model model, struct isd_eng_error *err)
{
    memset(d, 0, sizeof *d);
    if (n == 0 || n > ISD_SMP_LATENT_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "denoiser: latent of %zu floats (1..%d)", n,
                            ISD_SMP_LATENT_MAX);
    if (!sched || !sched->sigmas || !model.eval)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "denoiser: no schedule or no model");
    if (pred != ISD_SMP_PRED_EPS && pred != ISD_SMP_PRED_V)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "denoiser: unknown prediction type %d", (int)pred);
    if (!isfinite(cfg_scale))
        return isd_eng_fail(err, ISD_ENG_EINVAL, "denoiser: guidance scale is not finite");
    d->x_in = malloc(2 * n * sizeof *d->x_in);
    d->out = malloc(2 * n * sizeof *d->out);
    if (!d->x_in || !d->out) {
        isd_smp_denoiser_release(d);
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "denoiser: out of memory");
    }
    d->sched = sched;
    d->model = model;
    d->pred = pred;
    d->cfg_scale = cfg_scale;
    d->n = n;
    return 0;
}

void isd_smp_denoiser_release(struct isd_smp_denoiser *d)
{
    free(d->x_in);
    free(d->out);
    memset(d, 0, sizeof *d);
}

int isd_smp_denoise(struct isd_smp_denoiser *d, const float *x, double sigma, float *out,
                    struct isd_eng_error *err)
{
    size_t n = d->n;
    int batch = d->cfg_scale == 1.0 ? 1 : 2;
    double s2 = sigma * sigma + 1.0;
    double c_in = 1.0 / sqrt(s2);
    double c_skip, c_out; /* D = c_skip x + c_out prediction */
    if (d->pred == ISD_SMP_PRED_EPS) {
        c_skip = 1.0;
        c_out = -sigma;
    } else {
        c_skip = 1.0 / s2;
        c_out = -sigma / sqrt(s2);
    }
    for (size_t i = 0; i < n; i++)
        d->x_in[i] = (float)(c_in * x[i]);
    if (batch == 2)
        memcpy(d->x_in + n, d->x_in, n * sizeof *d->x_in);
    double t = isd_smp_sigma_to_t(d->sched, sigma);
    int rc = d->model.eval(d->model.ctx, d->x_in, batch, t, d->out, err);
    if (rc < 0) {
        if (err && err->code == 0)
            isd_eng_fail(err, rc, "denoiser: the model failed at t = %g (%s)", t,
                         isd_eng_code_name(rc));
        return rc;
    }
    d->calls++;
    d->items += batch;
    const float *pc = d->out, *pu = d->out + n;
    if (batch == 1) {
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(c_skip * x[i] + c_out * pc[i]);
        return 0;
    }
    double scale = d->cfg_scale;
    for (size_t i = 0; i < n; i++) {
        double dc = c_skip * x[i] + c_out * pc[i];
        double du = c_skip * x[i] + c_out * pu[i];
        out[i] = (float)(du + scale * (dc - du));
    }
    return 0;
}
