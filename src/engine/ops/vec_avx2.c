/* AVX2 + FMA instance of the vectorised kernels (vec_kern.h); selected at run time. */
#include "engine/ops/ops_int.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

typedef __m256 vf;
#define VW       8
#define KN(name) name##_avx2
#define KNAME    "avx2"

static const int32_t lane_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256i lanes(size_t n)
{
    return _mm256_loadu_si256((const __m256i *)(lane_mask + 8 - n));
}
static inline vf v_load(const float *p)
{
    return _mm256_loadu_ps(p);
}
static inline vf v_loadn(const float *p, size_t n, float fill)
{
    __m256i m = lanes(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void v_store(float *p, vf v)
{
    _mm256_storeu_ps(p, v);
}
static inline void v_storen(float *p, vf v, size_t n)
{
    _mm256_maskstore_ps(p, lanes(n), v);
}
#define v_set1(x)        _mm256_set1_ps(x)
#define v_add(a, b)      _mm256_add_ps(a, b)
#define v_sub(a, b)      _mm256_sub_ps(a, b)
#define v_mul(a, b)      _mm256_mul_ps(a, b)
#define v_div(a, b)      _mm256_div_ps(a, b)
#define v_max(a, b)      _mm256_max_ps(a, b)
#define v_fmadd(a, b, c) _mm256_fmadd_ps(a, b, c)
#define v_round(a)       _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define v_lt(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ))
static inline vf v_abs(vf a)
{
    return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}
/* p * 2^n in two steps so that n in [-150, 130] never leaves the normal exponent range */
static inline vf v_ldexp(vf p, vf n)
{
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    vf s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    vf s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
static inline float v_hsum(vf a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float v_hmax(vf a)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline void v_mul_split(vf a, vf b, vf *hi, vf *lo)
{
    *hi = _mm256_mul_ps(a, b);
    *lo = _mm256_fmsub_ps(a, b, *hi);
}

#include "engine/ops/vec_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
