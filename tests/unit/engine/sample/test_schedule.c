/* Noise schedules and t <-> sigma against the float64 reference (tests/reference/gen_sampling.py).
 */
#include "support/test.h"

#include "engine/sample/sample.h"
#include "smp_golden.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Relative tolerance for tables and step schedules: the C code computes in double like the
 * reference; the differences are libm ulps (measured max below 1e-13). */
#define SCHED_RTOL 1e-9

static struct smp_golden golden;
static struct isd_smp_schedule sched_ldm, sched_cos;

static int setup(void **state)
{
    (void)state;
    if (smp_golden_load(&golden, SMP_GOLDEN_DIR "sampling.bin") < 0)
        return -1;
    struct isd_eng_error err = {0};
    if (isd_smp_schedule_init_linear(&sched_ldm, 1000, 0.00085, 0.012, &err) < 0)
        return -1;
    const struct smp_golden_rec *a = smp_golden_find(&golden, "alphas cosine");
    if (!a || a->count != 1000)
        return -1;
    double alphas[1000];
    for (int i = 0; i < 1000; i++)
        alphas[i] = smp_golden_f64(a, (size_t)i);
    return isd_smp_schedule_init_alphas(&sched_cos, alphas, 1000, &err) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    isd_smp_schedule_release(&sched_ldm);
    isd_smp_schedule_release(&sched_cos);
    smp_golden_free(&golden);
    return 0;
}

static const struct isd_smp_schedule *sched_named(const char *name)
{
    return strcmp(name, "ldm") == 0 ? &sched_ldm : &sched_cos;
}

static double rel_err(double got, double want)
{
    double d = fabs(got - want);
    return want == 0 ? d : d / fabs(want);
}

static void ldm_table_is_sd(void **state)
{
    (void)state;
    const struct smp_golden_rec *r = smp_golden_find(&golden, "sigmas ldm");
    assert_non_null(r);
    assert_int_equal(r->count, 1000);
    double worst = 0;
    for (int i = 0; i < 1000; i++) {
        double e = rel_err(sched_ldm.sigmas[i], smp_golden_f64(r, (size_t)i));
        worst = e > worst ? e : worst;
    }
    print_message("# sigma table: max rel err %.3g\n", worst);
    assert_true(worst < SCHED_RTOL);
    /* the well-known SD endpoints */
    assert_true(fabs(sched_ldm.sigmas[0] - 0.0292) < 1e-4);
    assert_true(fabs(sched_ldm.sigmas[999] - 14.6146) < 1e-4);
}

static void sigma_t_conversions_match(void **state)
{
    (void)state;
    const char *names[] = {"ldm", "cosine"};
    double worst = 0;
    for (int k = 0; k < 2; k++) {
        char key[64];
        const struct isd_smp_schedule *s = sched_named(names[k]);
        snprintf(key, sizeof key, "s2t_in %s", names[k]);
        const struct smp_golden_rec *in = smp_golden_find(&golden, key);
        snprintf(key, sizeof key, "s2t_out %s", names[k]);
        const struct smp_golden_rec *out = smp_golden_find(&golden, key);
        assert_non_null(in);
        assert_non_null(out);
        for (size_t i = 0; i < in->count; i++) {
            double want = smp_golden_f64(out, i);
            double got = isd_smp_sigma_to_t(s, smp_golden_f64(in, i));
            double e = fabs(got - want) / 1000.0; /* relative to the t range */
            if (e > SCHED_RTOL)
                fail_msg("%s sigma_to_t(%g) = %.17g, want %.17g", names[k], smp_golden_f64(in, i),
                         got, want);
            worst = e > worst ? e : worst;
        }
        snprintf(key, sizeof key, "t2s_in %s", names[k]);
        in = smp_golden_find(&golden, key);
        snprintf(key, sizeof key, "t2s_out %s", names[k]);
        out = smp_golden_find(&golden, key);
        assert_non_null(in);
        assert_non_null(out);
        for (size_t i = 0; i < in->count; i++) {
            double want = smp_golden_f64(out, i);
            double got = isd_smp_t_to_sigma(s, smp_golden_f64(in, i));
            double e = rel_err(got, want);
            if (e > SCHED_RTOL)
                fail_msg("%s t_to_sigma(%g) = %.17g, want %.17g", names[k], smp_golden_f64(in, i),
                         got, want);
            worst = e > worst ? e : worst;
        }
    }
    print_message("# t<->sigma: max rel err %.3g\n", worst);
}

static void step_schedules_match(void **state)
{
    (void)state;
    int seen = 0;
    double worst = 0;
    double out[ISD_SMP_STEPS_MAX + 1];
    for (size_t k = 0; k < golden.count; k++) {
        const struct smp_golden_rec *r = &golden.recs[k];
        char name[16], kind[32];
        int steps;
        if (sscanf(r->name, "sched %15s %31s %d", name, kind, &steps) != 3)
            continue;
        int id = isd_smp_sched_parse(kind);
        assert_true(id >= 0);
        assert_int_equal(r->count, (size_t)steps + 1);
        struct isd_eng_error err = {0};
        int rc = isd_smp_sigmas(sched_named(name), (enum isd_smp_sched)id, steps, out, &err);
        if (rc < 0)
            fail_msg("%s: %s", r->name, err.msg);
        for (int i = 0; i <= steps; i++) {
            double want = smp_golden_f64(r, (size_t)i), e = rel_err(out[i], want);
            if (e > SCHED_RTOL)
                fail_msg("%s: sigma[%d] = %.17g, want %.17g", r->name, i, out[i], want);
            worst = e > worst ? e : worst;
        }
        assert_true(out[steps] == 0.0);
        seen++;
    }
    print_message("# %d step schedules: max rel err %.3g\n", seen, worst);
    assert_true(seen >= 2 * 6 * 11);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    struct isd_smp_schedule s;
    double out[64];
    assert_int_equal(isd_smp_schedule_init_linear(&s, 1, 0.00085, 0.012, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_schedule_init_linear(&s, 1000, 0.0, 0.012, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_schedule_init_linear(&s, 1000, 0.02, 0.012, &err), ISD_ENG_EINVAL);
    double not_decreasing[3] = {0.9, 0.95, 0.5};
    assert_int_equal(isd_smp_schedule_init_alphas(&s, not_decreasing, 3, &err), ISD_ENG_EINVAL);
    assert_non_null(strstr(err.msg, "decreasing"));
    double zero_snr[3] = {0.9, 0.5, 0.0};
    assert_int_equal(isd_smp_schedule_init_alphas(&s, zero_snr, 3, &err), ISD_ENG_EINVAL);
    isd_smp_schedule_release(&s); /* a failed init leaves a releasable struct */
    assert_int_equal(isd_smp_sigmas(&sched_ldm, ISD_SMP_SCHED_KARRAS, 0, out, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_sigmas(&sched_ldm, ISD_SMP_SCHED_LCM, 51, NULL, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_sigmas(&sched_ldm, (enum isd_smp_sched)99, 4, out, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(isd_smp_sched_parse("nope"), -1);
    assert_int_equal(isd_smp_sched_parse("normal"), ISD_SMP_SCHED_DISCRETE);
    for (int k = 0; k < ISD_SMP_SCHED__COUNT; k++)
        assert_int_equal(isd_smp_sched_parse(isd_smp_sched_name((enum isd_smp_sched)k)), k);
    /* out-of-range t and sigma clamp to the table ends */
    assert_true(rel_err(isd_smp_t_to_sigma(&sched_ldm, -5), sched_ldm.sigmas[0]) < 1e-14);
    assert_true(rel_err(isd_smp_t_to_sigma(&sched_ldm, 5000), sched_ldm.sigmas[999]) < 1e-14);
    assert_true(isd_smp_sigma_to_t(&sched_ldm, 0.0) == 0.0);
    assert_true(isd_smp_sigma_to_t(&sched_ldm, 1e9) == 999.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ldm_table_is_sd),
        cmocka_unit_test(sigma_t_conversions_match),
        cmocka_unit_test(step_schedules_match),
        cmocka_unit_test(bad_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
