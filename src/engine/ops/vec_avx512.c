/* AVX-512 (F/BW/DQ/VL) instance of the vectorised kernels (vec_kern.h); selected at run time. */
#include "engine/ops/ops_int.h"

#include <immintrin.h>
#include <math.h>

#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#endif

typedef __m512 vf;
#define VW       16
#define KN(name) name##_avx512
#define KNAME    "avx512"

static inline __mmask16 lanes(size_t n)
{
    return (__mmask16)((1u << n) - 1u);
}
static inline vf v_load(const float *p)
{
    return _mm512_loadu_ps(p);
}
static inline vf v_loadn(const float *p, size_t n, float fill)
{
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), lanes(n), p);
}
static inline void v_store(float *p, vf v)
{
    _mm512_storeu_ps(p, v);
}
static inline void v_storen(float *p, vf v, size_t n)
{
    _mm512_mask_storeu_ps(p, lanes(n), v);
}
#define v_set1(x)        _mm512_set1_ps(x)
#define v_add(a, b)      _mm512_add_ps(a, b)
#define v_sub(a, b)      _mm512_sub_ps(a, b)
#define v_mul(a, b)      _mm512_mul_ps(a, b)
#define v_div(a, b)      _mm512_div_ps(a, b)
#define v_max(a, b)      _mm512_max_ps(a, b)
#define v_abs(a)         _mm512_abs_ps(a)
#define v_fmadd(a, b, c) _mm512_fmadd_ps(a, b, c)
#define v_round(a)       _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define v_lt(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x)
#define v_ldexp(p, n)    _mm512_scalef_ps(p, n)
#define v_hsum(a)        _mm512_reduce_add_ps(a)
#define v_hmax(a)        _mm512_reduce_max_ps(a)
static inline void v_mul_split(vf a, vf b, vf *hi, vf *lo)
{
    *hi = _mm512_mul_ps(a, b);
    *lo = _mm512_fmsub_ps(a, b, *hi);
}

#include "engine/ops/vec_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
