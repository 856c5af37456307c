/*
 * Torch-compatible CPU random numbers (see sample.h). The reference is PyTorch 1.13.1:
 * aten/src/ATen/core/MT19937RNGEngine.h (the engine), ATen/core/DistributionsHelper.h
 * (normal_distribution<double>, used when n < 16) and native/cpu/DistributionTemplates.h
 * (normal_fill / normal_fill_AVX2, used when n >= 16).
 *
 * Each arithmetic step below is its own statement on purpose: the results must be rounded
 * exactly where torch's binary rounds them, so nothing may be contracted into an FMA unless
 * written as fmaf() (GCC contracts across statements only with -ffp-contract=fast, which
 * -std=c17 turns off; clang contracts only within one expression).
 */
#include "engine/sample/sample.h"

#include <math.h>
#include <string.h>

#define MT_N 624
#define MT_M 397

void isd_smp_rng_seed(struct isd_smp_rng *r, uint64_t seed, enum isd_smp_rng_kind kind)
{
    r->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + i;
    r->next = MT_N;
    r->has_cached = 0;
    r->cached = 0;
    r->kind = kind;
}

static void mt_twist(uint32_t *mt)
{
    for (int k = 0; k < MT_N; k++) {
        uint32_t y = (mt[k] & 0x80000000u) | (mt[(k + 1) % MT_N] & 0x7fffffffu);
        mt[k] = mt[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
}

uint32_t isd_smp_rng_u32(struct isd_smp_rng *r)
{
    if (r->next >= MT_N) {
        mt_twist(r->mt);
        r->next = 0;
    }
    uint32_t y = r->mt[r->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* at::uniform_real_distribution<float>(0, 1): 24 random bits. */
static float uniform_f32(struct isd_smp_rng *r)
{
    return (float)(isd_smp_rng_u32(r) & 0xffffffu) * (1.0f / 16777216.0f);
}

/* at::uniform_real_distribution<double>(0, 1): 53 bits of random64() = (first << 32) | second. */
static double uniform_f64(struct isd_smp_rng *r)
{
    uint64_t hi = isd_smp_rng_u32(r);
    uint64_t lo = isd_smp_rng_u32(r);
    return (double)(((hi << 32) | lo) & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* at::normal_distribution<double>(0, 1) with the generator's cached second sample. */
static double normal_f64(struct isd_smp_rng *r)
{
    if (r->has_cached) {
        r->has_cached = 0;
        return r->cached;
    }
    double u1 = uniform_f64(r);
    double u2 = uniform_f64(r);
    double radius = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * M_PI * u1;
    r->cached = radius * sin(theta);
    r->has_cached = 1;
    return radius * cos(theta);
}

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* avx_mathfun.h log256_ps, one lane, with the contractions of torch's AVX2 build. */
static float avx_logf(float x)
{
    int invalid = x <= 0.0f;
    if (!(x >= bits_to_f32(0x00800000u))) /* _mm256_max_ps(x, min_norm_pos) */
        x = bits_to_f32(0x00800000u);
    int32_t exponent = (int32_t)(f32_to_bits(x) >> 23) - 0x7f;
    x = bits_to_f32((f32_to_bits(x) & ~0x7f800000u) | f32_to_bits(0.5f));
    float e = (float)exponent;
    e = e + 1.0f;
    int below = x < 0.707106781186547524f;
    float tmp = below ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = 7.0376836292E-2f;
    y = fmaf(y, x, -1.1514610310E-1f);
    y = fmaf(y, x, 1.1676998740E-1f);
    y = fmaf(y, x, -1.2420140846E-1f);
    y = fmaf(y, x, 1.4249322787E-1f);
    y = fmaf(y, x, -1.6668057665E-1f);
    y = fmaf(y, x, 2.0000714765E-1f);
    y = fmaf(y, x, -2.4999993993E-1f);
    y = fmaf(y, x, 3.3333331174E-1f);
    y = y * x;
    float eq1 = e * -2.12194440e-4f;
    y = fmaf(y, z, eq1);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    x = fmaf(e, 0.693359375f, x);
    if (invalid)
        x = bits_to_f32(0xffffffffu); /* NaN, as the or with the all-ones mask gives */
    return x;
}

/* avx_mathfun.h sincos256_ps, one lane, with the contractions of torch's AVX2 build. */
static void avx_sincosf(float x, float *s, float *c)
{
    uint32_t sign_sin = f32_to_bits(x) & 0x80000000u;
    x = bits_to_f32(f32_to_bits(x) & 0x7fffffffu);
    float y = x * 1.27323954473516f; /* 4 / pi */
    int32_t j = (int32_t)y;
    j = (j + 1) & ~1;
    y = (float)j;
    uint32_t swap_sin = (uint32_t)(j & 4) << 29;
    int poly_sin = (j & 2) == 0;
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    sign_sin ^= swap_sin;
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    float z = x * x;
    float yc = fmaf(2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    float half_z = z * 0.5f;
    yc = fmaf(yc, z, -half_z);
    yc = yc + 1.0f;
    float ys = fmaf(-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);
    float sin_part = poly_sin ? ys : 0.0f;
    float cos_part = poly_sin ? 0.0f : yc;
    ys = ys - sin_part;
    yc = yc - cos_part;
    float sv = cos_part + sin_part;
    float cv = yc + ys;
    *s = bits_to_f32(f32_to_bits(sv) ^ sign_sin);
    *c = bits_to_f32(f32_to_bits(cv) ^ sign_cos);
}

/* normal_fill_16 (scalar kernel) or normal_fill_16_AVX2 on 16 uniforms in place. */
static void normal_fill_16(float *d, enum isd_smp_rng_kind kind)
{
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius, s, c;
        if (kind == ISD_SMP_RNG_TORCH_AVX2) {
            float l = avx_logf(u1);
            float m = -2.0f * l;
            radius = sqrtf(m);
            float theta = (float)(2.0 * M_PI) * u2;
            avx_sincosf(theta, &s, &c);
        } else {
            float l = logf(u1);
            float m = -2.0f * l;
            radius = sqrtf(m);
            float theta = (float)(2.0 * M_PI * (double)u2);
            c = cosf(theta);
            s = sinf(theta);
        }
        d[j] = radius * c;
        d[j + 8] = radius * s;
    }
}

void isd_smp_rng_randn(struct isd_smp_rng *r, float *out, size_t n)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = (float)normal_f64(r);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = uniform_f32(r);
    for (size_t i = 0; i + 16 <= n; i += 16)
        normal_fill_16(out + i, r->kind);
    if (n % 16 != 0) {
        /* torch redraws the last 16 values, overwriting part of the last full block */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = uniform_f32(r);
        normal_fill_16(tail, r->kind);
    }
}
