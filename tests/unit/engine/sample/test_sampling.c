/*
 * Denoisers and samplers: whole trajectories on a toy analytic network against the float64
 * reference (tests/reference/gen_sampling.py), with noise from the torch-compatible RNG;
 * img2img slicing, masked blending, CFG batching and evaluation counts, the step hook
 * (progress, cancel) and argument checks.
 */
#include "support/test.h"

#include "engine/sample/sample.h"
#include "smp_golden.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LC 4
#define LH 5
#define LW 7
#define LN (LC * LH * LW)

/* Trajectory tolerance, per step: max |x - ref| <= TRAJ_RTOL * max |ref| + TRAJ_ATOL. The C
 * side keeps latents, network input and output in float32 (as the engine does), the
 * reference everything in float64; the measured worst case is printed. */
#define TRAJ_RTOL 1e-5
#define TRAJ_ATOL 1e-6

static struct smp_golden golden;

static int setup(void **state)
{
    (void)state;
    return smp_golden_load(&golden, SMP_GOLDEN_DIR "sampling.bin");
}

static int teardown(void **state)
{
    (void)state;
    smp_golden_free(&golden);
    return 0;
}

/* The toy network (keep identical to toy_model() in gen_sampling.py). */
struct toy {
    int fail_at_call; /* > 0: return ISD_ENG_EIO on that call */
    int calls;
    int last_batch;
};

static int toy_model(void *ctx, const float *x_in, int batch, double t, float *out,
                     struct isd_eng_error *err)
{
    struct toy *toy = ctx;
    toy->calls++;
    toy->last_batch = batch;
    if (toy->fail_at_call && toy->calls == toy->fail_at_call)
        return isd_eng_fail(err, ISD_ENG_EIO, "toy: failing as asked");
    for (int b = 0; b < batch; b++) {
        for (int i = 0; i < LN; i++) {
            double x = x_in[b * LN + i];
            double p = 0.6 * x * (1 + 0.3 * cos(t / 150.0)) + 0.4 * sin(1.7 * x + 0.01 * t) +
                       0.05 * ((i % 5) - 2);
            if (b == 1)
                p = p + 0.2 * cos(x) - 0.1;
            out[b * LN + i] = (float)p;
        }
    }
    return 0;
}

struct sched_pair {
    struct isd_smp_schedule ldm, cosine;
};

static void schedules_init(struct sched_pair *sp)
{
    struct isd_eng_error err = {0};
    assert_int_equal(isd_smp_schedule_init_linear(&sp->ldm, 1000, 0.00085, 0.012, &err), 0);
    const struct smp_golden_rec *a = smp_golden_find(&golden, "alphas cosine");
    assert_non_null(a);
    double alphas[1000];
    for (int i = 0; i < 1000; i++)
        alphas[i] = smp_golden_f64(a, (size_t)i);
    assert_int_equal(isd_smp_schedule_init_alphas(&sp->cosine, alphas, 1000, &err), 0);
}

static void schedules_release(struct sched_pair *sp)
{
    isd_smp_schedule_release(&sp->ldm);
    isd_smp_schedule_release(&sp->cosine);
}

static void read_f32(const char *name, float *out, size_t n)
{
    const struct smp_golden_rec *r = smp_golden_find(&golden, name);
    assert_non_null(r);
    assert_int_equal(r->count, n);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)smp_golden_f64(r, i);
}

struct traj_case {
    char sampler[16], pred[8], sched[16], alphas[16];
    int steps, seed, mask;
    double cfg, strength;
};

static int parse_case(const char *key, struct traj_case *c)
{
    return sscanf(key, "%15s %7s %15s %d %lf %d %lf %d %15s", c->sampler, c->pred, c->sched,
                  &c->steps, &c->cfg, &c->seed, &c->strength, &c->mask, c->alphas) == 9
               ? 0
               : -1;
}

struct recorder {
    float *xs;        /* [steps][LN] latents after each step */
    int steps;        /* steps seen */
    int n;            /* steps announced by the sampler */
    int cancel_after; /* > 0: ask to stop after that many steps */
    double preview_sum;
};

static int record_step(void *ctx, int i, int n, const float *x, const float *denoised)
{
    struct recorder *rec = ctx;
    assert_int_equal(i, rec->steps);
    rec->n = n;
    memcpy(rec->xs + (size_t)i * LN, x, LN * sizeof *x);
    rec->preview_sum += denoised[0];
    rec->steps++;
    return rec->cancel_after > 0 && rec->steps >= rec->cancel_after;
}

static void trajectories_match_reference(void **state)
{
    (void)state;
    struct sched_pair sp;
    schedules_init(&sp);
    float init[LN], mask[LH * LW];
    read_f32("init", init, LN);
    read_f32("mask", mask, LH * LW);
    int seen = 0;
    double worst = 0;
    for (size_t k = 0; k < golden.count; k++) {
        const struct smp_golden_rec *r = &golden.recs[k];
        if (strncmp(r->name, "traj ", 5) != 0)
            continue;
        const char *key = r->name + 5;
        struct traj_case c;
        assert_int_equal(parse_case(key, &c), 0);
        const struct isd_smp_schedule *sch = strcmp(c.alphas, "ldm") == 0 ? &sp.ldm : &sp.cosine;
        struct isd_eng_error err = {0};
        double sigmas[ISD_SMP_STEPS_MAX + 1];
        int sched_id = isd_smp_sched_parse(c.sched), kind = isd_smp_kind_parse(c.sampler);
        assert_true(sched_id >= 0 && kind >= 0);
        assert_int_equal(isd_smp_sigmas(sch, (enum isd_smp_sched)sched_id, c.steps, sigmas, &err),
                         0);
        int start = isd_smp_img2img_start(c.steps, c.strength);
        assert_true(start >= 0 && start <= c.steps);
        int run_steps = c.steps - start;
        assert_int_equal(r->count, (size_t)run_steps * LN);

        struct toy toy = {0};
        struct isd_smp_model model = {toy_model, &toy};
        struct isd_smp_denoiser den;
        enum isd_smp_pred pred = strcmp(c.pred, "v") == 0 ? ISD_SMP_PRED_V : ISD_SMP_PRED_EPS;
        assert_int_equal(isd_smp_denoiser_init(&den, LN, sch, pred, c.cfg, model, &err), 0);
        struct isd_smp_sampler smp;
        assert_int_equal(isd_smp_sampler_init(&smp, (enum isd_smp_kind)kind, LC, LH, LW, &err), 0);
        struct isd_smp_rng rng;
        isd_smp_rng_seed(&rng, (uint64_t)c.seed, ISD_SMP_RNG_TORCH_AVX2);
        float noise[LN], x[LN];
        isd_smp_rng_randn(&rng, noise, LN);
        int use_init = c.strength < 1.0 || c.mask;
        isd_smp_noise_latent(x, use_init ? init : NULL, noise, sigmas[start], LN);
        struct isd_smp_blend blend = {mask, init, noise};
        struct recorder rec = {0};
        rec.xs = calloc((size_t)run_steps * LN, sizeof *rec.xs);
        assert_non_null(rec.xs);
        struct isd_smp_hooks hooks = {record_step, &rec};
        int rc = isd_smp_sampler_run(&smp, &den, sigmas + start, run_steps, x, &rng,
                                     c.mask ? &blend : NULL, &hooks, &err);
        if (rc < 0)
            fail_msg("%s: %s", key, err.msg);
        assert_int_equal(rec.steps, run_steps);
        assert_memory_equal(x, rec.xs + (size_t)(run_steps - 1) * LN, sizeof x);

        double case_worst = 0;
        for (int s = 0; s < run_steps; s++) {
            double ref_max = 0, err_max = 0;
            for (int i = 0; i < LN; i++) {
                double want = smp_golden_f64(r, (size_t)s * LN + (size_t)i);
                double d = fabs(rec.xs[(size_t)s * LN + (size_t)i] - want);
                ref_max = fabs(want) > ref_max ? fabs(want) : ref_max;
                err_max = d > err_max ? d : err_max;
            }
            if (err_max > TRAJ_RTOL * ref_max + TRAJ_ATOL)
                fail_msg("%s: step %d: max err %g vs max |ref| %g", key, s, err_max, ref_max);
            double rel = err_max / (ref_max > 0 ? ref_max : 1);
            case_worst = rel > case_worst ? rel : case_worst;
        }
        worst = case_worst > worst ? case_worst : worst;

        char calls_key[300];
        snprintf(calls_key, sizeof calls_key, "calls %s", key);
        const struct smp_golden_rec *calls = smp_golden_find(&golden, calls_key);
        assert_non_null(calls);
        assert_int_equal(den.calls, (long)smp_golden_u64(calls, 0));
        assert_int_equal(den.items, (long)smp_golden_u64(calls, 1));
        assert_int_equal(toy.calls, den.calls);
        assert_int_equal(toy.last_batch, c.cfg == 1.0 ? 1 : 2);

        free(rec.xs);
        isd_smp_sampler_release(&smp);
        isd_smp_denoiser_release(&den);
        seen++;
    }
    print_message("# %d trajectories: worst per-step max|err| / max|ref| = %.3g\n", seen, worst);
    assert_true(seen >= 16);
    schedules_release(&sp);
}

/* A denoiser with s = 1 calls the network with batch 1; the steps are the ones expected. */
static void evaluation_counts(void **state)
{
    (void)state;
    struct sched_pair sp;
    schedules_init(&sp);
    struct isd_eng_error err = {0};
    double sigmas[11];
    assert_int_equal(isd_smp_sigmas(&sp.ldm, ISD_SMP_SCHED_KARRAS, 10, sigmas, &err), 0);
    const struct {
        enum isd_smp_kind kind;
        double cfg;
        long calls, items;
    } want[] = {
        {ISD_SMP_EULER, 1.0, 10, 10}, {ISD_SMP_EULER, 7.5, 10, 20}, {ISD_SMP_EULER_A, 0.0, 10, 20},
        {ISD_SMP_HEUN, 1.0, 19, 19},  {ISD_SMP_HEUN, 2.0, 19, 38},  {ISD_SMP_DPMPP_2M, 1.0, 10, 10},
        {ISD_SMP_LCM, 1.0, 10, 10},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        struct toy toy = {0};
        struct isd_smp_denoiser den;
        struct isd_smp_sampler smp;
        struct isd_smp_rng rng;
        float x[LN];
        assert_int_equal(isd_smp_denoiser_init(&den, LN, &sp.ldm, ISD_SMP_PRED_EPS, want[k].cfg,
                                               (struct isd_smp_model){toy_model, &toy}, &err),
                         0);
        assert_int_equal(isd_smp_sampler_init(&smp, want[k].kind, LC, LH, LW, &err), 0);
        isd_smp_rng_seed(&rng, 3, ISD_SMP_RNG_TORCH_AVX2);
        isd_smp_rng_randn(&rng, x, LN);
        isd_smp_noise_latent(x, NULL, x, sigmas[0], LN);
        assert_int_equal(isd_smp_sampler_run(&smp, &den, sigmas, 10, x, &rng, NULL, NULL, &err), 0);
        assert_int_equal(den.calls, want[k].calls);
        assert_int_equal(den.items, want[k].items);
        for (int i = 0; i < LN; i++)
            assert_true(isfinite(x[i]));
        isd_smp_sampler_release(&smp);
        isd_smp_denoiser_release(&den);
    }
    schedules_release(&sp);
}

/* CFG s = 1 gives exactly the conditional D; other s follow D_u + s (D_c - D_u). */
static void guidance_formula(void **state)
{
    (void)state;
    struct sched_pair sp;
    schedules_init(&sp);
    struct isd_eng_error err = {0};
    float x[LN], d1[LN], d0[LN], d3[LN];
    for (int i = 0; i < LN; i++)
        x[i] = (float)(3.0 * sin(0.5 * i));
    struct toy toy = {0};
    struct isd_smp_model model = {toy_model, &toy};
    const double scales[3] = {1.0, 0.0, 3.0};
    float *outs[3] = {d1, d0, d3};
    for (int k = 0; k < 3; k++) {
        struct isd_smp_denoiser den;
        assert_int_equal(
            isd_smp_denoiser_init(&den, LN, &sp.ldm, ISD_SMP_PRED_V, scales[k], model, &err), 0);
        assert_int_equal(isd_smp_denoise(&den, x, 2.5, outs[k], &err), 0);
        assert_int_equal(toy.last_batch, k == 0 ? 1 : 2);
        isd_smp_denoiser_release(&den);
    }
    /* s = 3: D_u + 3 (D_c - D_u) = 3 D_c - 2 D_u, with D_c from s = 1 and D_u from s = 0 */
    for (int i = 0; i < LN; i++)
        assert_true(fabs(d3[i] - (3.0 * d1[i] - 2.0 * d0[i])) < 1e-5 * (1 + fabs(d3[i])));
    /* v-prediction by hand at one element */
    double s = 2.5, s2 = s * s + 1, t = isd_smp_sigma_to_t(&sp.ldm, s);
    double xin = (float)(x[7] / sqrt(s2));
    double v = (float)(0.6 * xin * (1 + 0.3 * cos(t / 150.0)) + 0.4 * sin(1.7 * xin + 0.01 * t) +
                       0.05 * ((7 % 5) - 2));
    double want = x[7] / s2 - s / sqrt(s2) * v;
    assert_true(fabs(d1[7] - want) < 1e-6 * (1 + fabs(want)));
    schedules_release(&sp);
}

/* The hook sees every step in order and can stop the run within one step. */
static void hook_cancels_within_a_step(void **state)
{
    (void)state;
    struct sched_pair sp;
    schedules_init(&sp);
    struct isd_eng_error err = {0};
    double sigmas[21];
    assert_int_equal(isd_smp_sigmas(&sp.ldm, ISD_SMP_SCHED_DISCRETE, 20, sigmas, &err), 0);
    for (int kind = 0; kind < ISD_SMP__COUNT; kind++) {
        struct toy toy = {0};
        struct isd_smp_denoiser den;
        struct isd_smp_sampler smp;
        struct isd_smp_rng rng;
        float x[LN];
        assert_int_equal(isd_smp_denoiser_init(&den, LN, &sp.ldm, ISD_SMP_PRED_EPS, 5.0,
                                               (struct isd_smp_model){toy_model, &toy}, &err),
                         0);
        assert_int_equal(isd_smp_sampler_init(&smp, (enum isd_smp_kind)kind, LC, LH, LW, &err), 0);
        isd_smp_rng_seed(&rng, 9, ISD_SMP_RNG_TORCH_AVX2);
        isd_smp_rng_randn(&rng, x, LN);
        struct recorder rec = {0};
        rec.xs = calloc(20 * LN, sizeof *rec.xs);
        rec.cancel_after = 3;
        struct isd_smp_hooks hooks = {record_step, &rec};
        memset(&err, 0, sizeof err);
        int rc = isd_smp_sampler_run(&smp, &den, sigmas, 20, x, &rng, NULL, &hooks, &err);
        assert_int_equal(rc, ISD_ENG_ECANCELLED);
        assert_int_equal(err.code, ISD_ENG_ECANCELLED);
        assert_int_equal(rec.steps, 3);
        assert_int_equal(rec.n, 20);
        assert_int_equal(den.calls, kind == ISD_SMP_HEUN ? 6 : 3);
        free(rec.xs);
        isd_smp_sampler_release(&smp);
        isd_smp_denoiser_release(&den);
    }
    schedules_release(&sp);
}

static void model_errors_propagate(void **state)
{
    (void)state;
    struct sched_pair sp;
    schedules_init(&sp);
    struct isd_eng_error err = {0};
    double sigmas[6];
    assert_int_equal(isd_smp_sigmas(&sp.ldm, ISD_SMP_SCHED_KARRAS, 5, sigmas, &err), 0);
    struct toy toy = {.fail_at_call = 4};
    struct isd_smp_denoiser den;
    struct isd_smp_sampler smp;
    float x[LN] = {0};
    assert_int_equal(isd_smp_denoiser_init(&den, LN, &sp.ldm, ISD_SMP_PRED_EPS, 1.0,
                                           (struct isd_smp_model){toy_model, &toy}, &err),
                     0);
    assert_int_equal(isd_smp_sampler_init(&smp, ISD_SMP_HEUN, LC, LH, LW, &err), 0);
    assert_int_equal(isd_smp_sampler_run(&smp, &den, sigmas, 5, x, NULL, NULL, NULL, &err),
                     ISD_ENG_EIO);
    assert_non_null(strstr(err.msg, "failing as asked"));
    assert_int_equal(den.calls, 3);
    isd_smp_sampler_release(&smp);
    isd_smp_denoiser_release(&den);
    schedules_release(&sp);
}

static void img2img_start_and_blend(void **state)
{
    (void)state;
    assert_int_equal(isd_smp_img2img_start(20, 1.0), 0);
    assert_int_equal(isd_smp_img2img_start(20, 0.0), 20);
    assert_int_equal(isd_smp_img2img_start(20, 0.6), 8);
    assert_int_equal(isd_smp_img2img_start(10, 0.75), 3);
    assert_int_equal(isd_smp_img2img_start(3, 0.5), 2);
    assert_int_equal(isd_smp_img2img_start(10, 0.7), 3); /* 10 * 0.7 = 7.000000000000001 */
    assert_int_equal(isd_smp_img2img_start(0, 0.5), -1);
    assert_int_equal(isd_smp_img2img_start(10, 1.5), -1);
    assert_int_equal(isd_smp_img2img_start(10, NAN), -1);

    /* a zero mask keeps the init latent exactly (noised to sigma_next, 0 at the end) */
    struct sched_pair sp;
    schedules_init(&sp);
    struct isd_eng_error err = {0};
    double sigmas[7];
    assert_int_equal(isd_smp_sigmas(&sp.ldm, ISD_SMP_SCHED_KARRAS, 6, sigmas, &err), 0);
    float init[LN], noise[LN], x[LN], mask[LH * LW] = {0};
    read_f32("init", init, LN);
    struct isd_smp_rng rng;
    isd_smp_rng_seed(&rng, 5, ISD_SMP_RNG_TORCH_AVX2);
    isd_smp_rng_randn(&rng, noise, LN);
    isd_smp_noise_latent(x, init, noise, sigmas[0], LN);
    for (int i = 0; i < LN; i++)
        assert_true(x[i] == (float)(init[i] + sigmas[0] * noise[i]));
    struct toy toy = {0};
    struct isd_smp_denoiser den;
    struct isd_smp_sampler smp;
    assert_int_equal(isd_smp_denoiser_init(&den, LN, &sp.ldm, ISD_SMP_PRED_EPS, 4.0,
                                           (struct isd_smp_model){toy_model, &toy}, &err),
                     0);
    assert_int_equal(isd_smp_sampler_init(&smp, ISD_SMP_EULER_A, LC, LH, LW, &err), 0);
    struct isd_smp_blend blend = {mask, init, noise};
    assert_int_equal(isd_smp_sampler_run(&smp, &den, sigmas, 6, x, &rng, &blend, NULL, &err), 0);
    assert_memory_equal(x, init, sizeof x);
    isd_smp_sampler_release(&smp);
    isd_smp_denoiser_release(&den);
    schedules_release(&sp);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    struct sched_pair sp;
    schedules_init(&sp);
    struct isd_eng_error err = {0};
    struct toy toy = {0};
    struct isd_smp_model model = {toy_model, &toy};
    struct isd_smp_denoiser den;
    struct isd_smp_sampler smp;
    assert_int_equal(isd_smp_denoiser_init(&den, 0, &sp.ldm, ISD_SMP_PRED_EPS, 1, model, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_denoiser_init(&den, LN, &sp.ldm, ISD_SMP_PRED_EPS, NAN, model, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_denoiser_init(&den, LN, &sp.ldm, (enum isd_smp_pred)5, 1, model, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_sampler_init(&smp, ISD_SMP__COUNT, LC, LH, LW, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_sampler_init(&smp, ISD_SMP_EULER, 4, 1 << 14, 1 << 14, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_sampler_init(&smp, ISD_SMP_EULER, 0, 8, 8, &err), ISD_ENG_EINVAL);
    isd_smp_sampler_release(&smp);

    assert_int_equal(isd_smp_denoiser_init(&den, LN, &sp.ldm, ISD_SMP_PRED_EPS, 1, model, &err), 0);
    float x[LN] = {0};
    double good[3] = {2.0, 1.0, 0.0}, rising[3] = {1.0, 2.0, 0.0}, zero_mid[3] = {2.0, 0.0, 0.0};
    /* a sampler of another size */
    assert_int_equal(isd_smp_sampler_init(&smp, ISD_SMP_EULER, LC, LH, LW + 1, &err), 0);
    assert_int_equal(isd_smp_sampler_run(&smp, &den, good, 2, x, NULL, NULL, NULL, &err),
                     ISD_ENG_EINVAL);
    isd_smp_sampler_release(&smp);
    /* ancestral samplers need the rng */
    assert_int_equal(isd_smp_sampler_init(&smp, ISD_SMP_EULER_A, LC, LH, LW, &err), 0);
    assert_int_equal(isd_smp_sampler_run(&smp, &den, good, 2, x, NULL, NULL, NULL, &err),
                     ISD_ENG_EINVAL);
    isd_smp_sampler_release(&smp);
    assert_int_equal(isd_smp_sampler_init(&smp, ISD_SMP_EULER, LC, LH, LW, &err), 0);
    assert_int_equal(isd_smp_sampler_run(&smp, &den, rising, 2, x, NULL, NULL, NULL, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_sampler_run(&smp, &den, zero_mid, 2, x, NULL, NULL, NULL, &err),
                     ISD_ENG_EINVAL);
    struct isd_smp_blend half = {NULL, x, x};
    assert_int_equal(isd_smp_sampler_run(&smp, &den, good, 2, x, NULL, &half, NULL, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(den.calls, 0);
    /* zero steps: nothing to do */
    assert_int_equal(isd_smp_sampler_run(&smp, &den, good, 0, x, NULL, NULL, NULL, &err), 0);
    isd_smp_sampler_release(&smp);
    isd_smp_sampler_release(&smp); /* twice is fine */
    isd_smp_denoiser_release(&den);
    for (int k = 0; k < ISD_SMP__COUNT; k++)
        assert_int_equal(isd_smp_kind_parse(isd_smp_kind_name((enum isd_smp_kind)k)), k);
    assert_int_equal(isd_smp_kind_parse("dpmpp_2m"), ISD_SMP_DPMPP_2M);
    assert_int_equal(isd_smp_kind_parse("ddim"), -1);
    schedules_release(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trajectories_match_reference),
        cmocka_unit_test(evaluation_counts),
        cmocka_unit_test(guidance_formula),
        cmocka_unit_test(hook_cancels_within_a_step),
        cmocka_unit_test(model_errors_propagate),
        cmocka_unit_test(img2img_start_and_blend),
        cmocka_unit_test(bad_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
