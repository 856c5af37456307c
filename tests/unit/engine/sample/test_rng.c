/* The torch-compatible RNG against goldens from PyTorch 1.13.1 (tests/reference/gen_rng.py). */
#include "support/test.h"

#include "engine/sample/sample.h"
#include "smp_golden.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct smp_golden golden;

static int load(void **state)
{
    (void)state;
    return smp_golden_load(&golden, SMP_GOLDEN_DIR "rng.bin");
}

static int unload(void **state)
{
    (void)state;
    smp_golden_free(&golden);
    return 0;
}

static enum isd_smp_rng_kind kind_of(const char *name)
{
    return strcmp(name, "avx2") == 0 ? ISD_SMP_RNG_TORCH_AVX2 : ISD_SMP_RNG_TORCH_SCALAR;
}

/* Compares n floats; returns the number that differ in bits, and the largest difference. */
static size_t compare_f32(const float *got, const struct smp_golden_rec *r, double *maxdiff)
{
    size_t bad = 0;
    *maxdiff = 0;
    for (size_t i = 0; i < r->count; i++) {
        float want = (float)smp_golden_f64(r, i);
        if (memcmp(&got[i], &want, sizeof want) != 0) {
            bad++;
            double d = fabs((double)got[i] - want);
            if (d > *maxdiff || isnan(d))
                *maxdiff = d;
        }
    }
    return bad;
}

static void mt_stream_matches(void **state)
{
    (void)state;
    int seen = 0;
    for (size_t k = 0; k < golden.count; k++) {
        const struct smp_golden_rec *r = &golden.recs[k];
        uint64_t seed;
        if (sscanf(r->name, "u32 %" SCNu64, &seed) != 1)
            continue;
        struct isd_smp_rng rng;
        isd_smp_rng_seed(&rng, seed, ISD_SMP_RNG_TORCH_AVX2);
        for (size_t i = 0; i < r->count; i++) {
            uint32_t got = isd_smp_rng_u32(&rng), want = (uint32_t)smp_golden_u64(r, i);
            if (got != want)
                fail_msg("seed %" PRIu64 " word %zu: %08x, want %08x", seed, i, got, want);
        }
        seen++;
    }
    assert_int_equal(seen, 6);
}

static void randn_matches_torch_bit_exact(void **state)
{
    (void)state;
    int seen = 0;
    for (size_t k = 0; k < golden.count; k++) {
        const struct smp_golden_rec *r = &golden.recs[k];
        char kind[16];
        uint64_t seed;
        size_t n;
        if (sscanf(r->name, "randn %15s %" SCNu64 " %zu", kind, &seed, &n) != 3)
            continue;
        assert_int_equal(r->count, n);
        float *got = malloc(n * sizeof *got);
        assert_non_null(got);
        struct isd_smp_rng rng;
        isd_smp_rng_seed(&rng, seed, kind_of(kind));
        isd_smp_rng_randn(&rng, got, n);
        double maxdiff;
        size_t bad = compare_f32(got, r, &maxdiff);
        free(got);
        if (bad)
            fail_msg("%s: %zu of %zu values differ (max %g)", r->name, bad, n, maxdiff);
        seen++;
    }
    assert_int_equal(seen, 2 * (6 * 6 + 2));
}

static void sequential_draws_match(void **state)
{
    (void)state;
    const struct smp_golden_rec *sizes = smp_golden_find(&golden, "seq_sizes");
    assert_non_null(sizes);
    int seen = 0;
    for (size_t k = 0; k < golden.count; k++) {
        const struct smp_golden_rec *r = &golden.recs[k];
        char kind[16];
        uint64_t seed;
        if (sscanf(r->name, "seq %15s %" SCNu64, kind, &seed) != 2)
            continue;
        float *got = malloc(r->count * sizeof *got);
        assert_non_null(got);
        struct isd_smp_rng rng;
        isd_smp_rng_seed(&rng, seed, kind_of(kind));
        size_t pos = 0;
        for (size_t i = 0; i < sizes->count; i++) {
            size_t n = (size_t)smp_golden_u64(sizes, i);
            assert_true(pos + n <= r->count);
            isd_smp_rng_randn(&rng, got + pos, n);
            pos += n;
        }
        assert_int_equal(pos, r->count);
        double maxdiff;
        size_t bad = compare_f32(got, r, &maxdiff);
        free(got);
        if (bad)
            fail_msg("%s: %zu values differ (max %g)", r->name, bad, maxdiff);
        seen++;
    }
    assert_int_equal(seen, 12);
}

/* The two kernels agree within float rounding (a few ulps), and both look normal. */
static void kernels_agree_and_are_normal(void **state)
{
    (void)state;
    enum { N = 1 << 16 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    struct isd_smp_rng ra, rb;
    isd_smp_rng_seed(&ra, 1234, ISD_SMP_RNG_TORCH_AVX2);
    isd_smp_rng_seed(&rb, 1234, ISD_SMP_RNG_TORCH_SCALAR);
    isd_smp_rng_randn(&ra, a, N);
    isd_smp_rng_randn(&rb, b, N);
    double maxdiff = 0, sum = 0, sum2 = 0;
    for (int i = 0; i < N; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > maxdiff)
            maxdiff = d;
        sum += a[i];
        sum2 += (double)a[i] * a[i];
    }
    double mean = sum / N, var = sum2 / N - mean * mean;
    assert_true(maxdiff < 4e-6);
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(var - 1.0) < 0.02);
    free(a);
    free(b);
}

static void reseeding_resets_the_cached_normal(void **state)
{
    (void)state;
    struct isd_smp_rng r;
    float a[3], b[3];
    isd_smp_rng_seed(&r, 7, ISD_SMP_RNG_TORCH_AVX2);
    isd_smp_rng_randn(&r, a, 3); /* leaves one cached sample */
    isd_smp_rng_seed(&r, 7, ISD_SMP_RNG_TORCH_AVX2);
    isd_smp_rng_randn(&r, b, 3);
    assert_memory_equal(a, b, sizeof a);
    /* a seed >= 2^32 keeps its low 32 bits */
    struct isd_smp_rng hi, lo;
    isd_smp_rng_seed(&hi, (UINT64_C(1) << 32) + 99, ISD_SMP_RNG_TORCH_AVX2);
    isd_smp_rng_seed(&lo, 99, ISD_SMP_RNG_TORCH_AVX2);
    for (int i = 0; i < 700; i++)
        assert_int_equal(isd_smp_rng_u32(&hi), isd_smp_rng_u32(&lo));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mt_stream_matches),
        cmocka_unit_test(randn_matches_torch_bit_exact),
        cmocka_unit_test(sequential_draws_match),
        cmocka_unit_test(kernels_agree_and_are_normal),
        cmocka_unit_test(reseeding_resets_the_cached_normal),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
