/*
 * Noise schedules (see sample.h): the training sigma table, t <-> sigma as k-diffusion's
 * DiscreteSchedule (external.py), and the step schedules of k-diffusion (get_sigmas,
 * get_sigmas_karras, get_sigmas_exponential), ComfyUI (sgm_uniform) and diffusers (trailing
 * timestep spacing, LCMScheduler).
 */
#include "engine/sample/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int isd_smp_schedule_init_alphas(struct isd_smp_schedule *s, const double *alphas_cumprod, int n,
                                 struct isd_eng_error *err)
{
    memset(s, 0, sizeof *s);
    if (n < 2 || n > ISD_SMP_TRAIN_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "schedule: %d training timesteps (2..%d)", n,
                            ISD_SMP_TRAIN_MAX);
    for (int i = 0; i < n; i++) {
        double a = alphas_cumprod[i];
        if (!(a > 0.0 && a < 1.0))
            return isd_eng_fail(err, ISD_ENG_EINVAL,
                                "schedule: alphas_cumprod[%d] = %g is not in (0, 1)", i, a);
        if (i > 0 && !(a < alphas_cumprod[i - 1]))
            return isd_eng_fail(err, ISD_ENG_EINVAL,
                                "schedule: alphas_cumprod is not strictly decreasing at %d", i);
    }
    s->sigmas = malloc((size_t)n * sizeof *s->sigmas);
    s->log_sigmas = malloc((size_t)n * sizeof *s->log_sigmas);
    if (!s->sigmas || !s->log_sigmas) {
        isd_smp_schedule_release(s);
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "schedule: out of memory");
    }
    s->n = n;
    for (int i = 0; i < n; i++) {
        double a = alphas_cumprod[i];
        s->sigmas[i] = sqrt((1.0 - a) / a);
        s->log_sigmas[i] = log(s->sigmas[i]);
    }
    return 0;
}

int isd_smp_schedule_init_linear(struct isd_smp_schedule *s, int n, double beta_start,
                                 double beta_end, struct isd_eng_error *err)
{
    memset(s, 0, sizeof *s);
    if (n < 2 || n > ISD_SMP_TRAIN_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "schedule: %d training timesteps (2..%d)", n,
                            ISD_SMP_TRAIN_MAX);
    if (!(beta_start > 0.0 && beta_start <= beta_end && beta_end < 1.0))
        return isd_eng_fail(err, ISD_ENG_EINVAL,
                            "schedule: betas %g..%g (need 0 < start <= end < 1)", beta_start,
                            beta_end);
    double *alphas = malloc((size_t)n * sizeof *alphas);
    if (!alphas)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "schedule: out of memory");
    double r0 = sqrt(beta_start), r1 = sqrt(beta_end), prod = 1.0;
    for (int i = 0; i < n; i++) {
        double r = r0 + (double)i / (double)(n - 1) * (r1 - r0);
        prod *= 1.0 - r * r;
        alphas[i] = prod;
    }
    int rc = isd_smp_schedule_init_alphas(s, alphas, n, err);
    free(alphas);
    return rc;
}

void isd_smp_schedule_release(struct isd_smp_schedule *s)
{
    free(s->sigmas);
    free(s->log_sigmas);
    memset(s, 0, sizeof *s);
}

double isd_smp_sigma_to_t(const struct isd_smp_schedule *s, double sigma)
{
    double ls = log(sigma);
    /* low = the last index with log_sigmas[i] <= ls (0 if none), at most n - 2 */
    int lo = 0, hi = s->n - 1;
    if (!(ls >= s->log_sigmas[0]))
        lo = 0;
    else {
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (s->log_sigmas[mid] <= ls)
                lo = mid;
            else
                hi = mid - 1;
        }
    }
    if (lo > s->n - 2)
        lo = s->n - 2;
    double low = s->log_sigmas[lo], high = s->log_sigmas[lo + 1];
    double w = (low - ls) / (low - high);
    if (!(w > 0.0)) /* also NaN (sigma 0 gives -inf) */
        w = 0.0;
    if (w > 1.0)
        w = 1.0;
    return (1.0 - w) * lo + w * (lo + 1);
}

double isd_smp_t_to_sigma(const struct isd_smp_schedule *s, double t)
{
    if (!(t > 0.0))
        t = 0.0;
    if (t > s->n - 1)
        t = s->n - 1;
    double fl = floor(t);
    int lo = (int)fl, hi = (int)ceil(t);
    double w = t - fl;
    return exp((1.0 - w) * s->log_sigmas[lo] + w * s->log_sigmas[hi]);
}

static const char *const sched_names[ISD_SMP_SCHED__COUNT] = {
    [ISD_SMP_SCHED_DISCRETE] = "discrete",       [ISD_SMP_SCHED_KARRAS] = "karras",
    [ISD_SMP_SCHED_EXPONENTIAL] = "exponential", [ISD_SMP_SCHED_SGM_UNIFORM] = "sgm_uniform",
    [ISD_SMP_SCHED_TRAILING] = "trailing",       [ISD_SMP_SCHED_LCM] = "lcm",
};

const char *isd_smp_sched_name(enum isd_smp_sched k)
{
    return (unsigned)k < ISD_SMP_SCHED__COUNT ? sched_names[k] : "?";
}

int isd_smp_sched_parse(const char *name)
{
    for (int i = 0; i < ISD_SMP_SCHED__COUNT; i++)
        if (strcmp(name, sched_names[i]) == 0)
            return i;
    if (strcmp(name, "normal") == 0 || strcmp(name, "uniform") == 0)
        return ISD_SMP_SCHED_DISCRETE;
    return -1;
}

/* linspace(a, b, count)[i] (count 1 gives a) */
static double linspace_at(double a, double b, int count, int i)
{
    return count == 1 ? a : a + (double)i / (double)(count - 1) * (b - a);
}

/* diffusers' trailing spacing: np.round(np.arange(n, 0, -n / steps)) - 1, computed the way
 * numpy's arange fills (first + i * (second - first)), round half to even. */
static int trailing_t(int n, int steps, int i)
{
    double step = -(double)n / steps;
    double delta = ((double)n + step) - (double)n;
    return (int)nearbyint((double)n + i * delta) - 1;
}

/* diffusers' LCMScheduler.set_timesteps (strength 1): the origin grid (1..50) * (n // 50) - 1,
 * reversed, indexed by floor(linspace(0, 50, steps, endpoint=False)). */
static int lcm_t(int n, int steps, int i)
{
    int k = n / ISD_SMP_LCM_ORIGIN;
    int idx = (int)floor(i * ((double)ISD_SMP_LCM_ORIGIN / steps));
    return (ISD_SMP_LCM_ORIGIN - idx) * k - 1;
}

int isd_smp_sigmas(const struct isd_smp_schedule *s, enum isd_smp_sched kind, int steps,
                   double *out, struct isd_eng_error *err)
{
    if (steps < 1 || steps > ISD_SMP_STEPS_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sigmas: %d steps (1..%d)", steps,
                            ISD_SMP_STEPS_MAX);
    if ((unsigned)kind >= ISD_SMP_SCHED__COUNT)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sigmas: unknown schedule %d", (int)kind);
    int n = s->n;
    double t_max = n - 1;
    double smin = s->sigmas[0], smax = s->sigmas[n - 1];
    if (kind == ISD_SMP_SCHED_TRAILING && steps > n)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "sigmas: trailing needs steps <= %d", n);
    if (kind == ISD_SMP_SCHED_LCM && (steps > ISD_SMP_LCM_ORIGIN || n < ISD_SMP_LCM_ORIGIN))
        return isd_eng_fail(err, ISD_ENG_EINVAL,
                            "sigmas: lcm needs steps <= %d and >= %d training timesteps",
                            ISD_SMP_LCM_ORIGIN, ISD_SMP_LCM_ORIGIN);
    for (int i = 0; i < steps; i++) {
        switch (kind) {
        case ISD_SMP_SCHED_DISCRETE:
            out[i] = isd_smp_t_to_sigma(s, linspace_at(t_max, 0.0, steps, i));
            break;
        case ISD_SMP_SCHED_KARRAS: {
            const double rho = 7.0;
            double min_inv = pow(smin, 1.0 / rho), max_inv = pow(smax, 1.0 / rho);
            double ramp = linspace_at(0.0, 1.0, steps, i);
            out[i] = pow(max_inv + ramp * (min_inv - max_inv), rho);
            break;
        }
        case ISD_SMP_SCHED_EXPONENTIAL:
            out[i] = exp(linspace_at(log(smax), log(smin), steps, i));
            break;
        case ISD_SMP_SCHED_SGM_UNIFORM:
            out[i] = isd_smp_t_to_sigma(s, linspace_at(t_max, 0.0, steps + 1, i));
            break;
        case ISD_SMP_SCHED_TRAILING:
            out[i] = s->sigmas[trailing_t(n, steps, i)];
            break;
        case ISD_SMP_SCHED_LCM:
            out[i] = s->sigmas[lcm_t(n, steps, i)];
            break;
        default:
            break;
        }
    }
    out[steps] = 0.0;
    return 0;
}
