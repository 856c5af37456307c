/* Portable one-lane instance of the vectorised kernels (vec_kern.h): the fallback for CPUs
 * without AVX2/FMA, and the definition of what the vector versions compute. */
#include "engine/ops/ops_int.h"

#include <math.h>

typedef float vf;
#define VW       1
#define KN(name) name##_scalar
#define KNAME    "scalar"

static inline vf v_load(const float *p)
{
    return *p;
}
static inline vf v_loadn(const float *p, size_t n, float fill)
{
    return n ? *p : fill;
}
static inline void v_store(float *p, vf v)
{
    *p = v;
}
static inline void v_storen(float *p, vf v, size_t n)
{
    if (n)
        *p = v;
}
static inline vf v_set1(float x)
{
    return x;
}
static inline vf v_add(vf a, vf b)
{
    return a + b;
}
static inline vf v_sub(vf a, vf b)
{
    return a - b;
}
static inline vf v_mul(vf a, vf b)
{
    return a * b;
}
static inline vf v_div(vf a, vf b)
{
    return a / b;
}
static inline vf v_max(vf a, vf b)
{
    return a > b ? a : b;
}
static inline vf v_abs(vf a)
{
    return fabsf(a);
}
static inline vf v_fmadd(vf a, vf b, vf c)
{
    return a * b + c;
}
/* nearest-even for |a| < 2^22 (exp's argument is clamped far below that) */
static inline vf v_round(vf a)
{
    volatile float magic = 12582912.0f; /* 1.5 * 2^23; volatile keeps the two steps */
    float t = a + magic;
    return t - magic;
}
static inline vf v_lt(vf a, vf b, vf x, vf y)
{
    return a < b ? x : y;
}
static inline vf v_ldexp(vf p, vf n)
{
    if (!(n >= -200.0f && n <= 200.0f))
        return p * n; /* NaN in, NaN out */
    return ldexpf(p, (int)n);
}
static inline float v_hsum(vf a)
{
    return a;
}
static inline float v_hmax(vf a)
{
    return a;
}
static inline void v_mul_split(vf a, vf b, vf *hi, vf *lo)
{
    double d = (double)a * b; /* exact: 24 + 24 bits */
    *hi = (float)d;
    *lo = (float)(d - *hi);
}

#include "engine/ops/vec_kern.h"
