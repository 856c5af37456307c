/* Weight conversion to float32, with an F16C fast path chosen at run time. */
#include "engine/weights/weights.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

static void f16_scalar(const unsigned char *s, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = isd_eng_f16_to_f32(h);
    }
}

#if HAVE_X86
__attribute__((target("avx,f16c"))) static void f16_f16c(const unsigned char *s, float *dst,
                                                         size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    f16_scalar(s + 2 * i, dst + i, n - i);
}
#endif

#if HAVE_X86
/* CPUID: AVX and F16C, and the OS saves the YMM registers (XCR0 bits 1 and 2). */
static int detect_f16c(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || !(c & bit_F16C))
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 6) == 6;
}
#endif

int isd_wt_have_f16c(void)
{
#if HAVE_X86
    static _Atomic int have = -1; /* every thread computes the same value */
    if (have < 0)
        have = detect_f16c();
    return have;
#else
    return 0;
#endif
}

void isd_wt_f16_to_f32(const void *src, float *dst, size_t n)
{
#if HAVE_X86
    if (isd_wt_have_f16c()) {
        f16_f16c(src, dst, n);
        return;
    }
#endif
    f16_scalar(src, dst, n);
}

void isd_wt_bf16_to_f32(const void *src, float *dst, size_t n)
{
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t b;
        memcpy(&b, s + 2 * i, 2);
        uint32_t u = (uint32_t)b << 16;
        memcpy(&dst[i], &u, 4);
    }
}

int isd_wt_view_range_to_f32(const struct isd_wt_view *v, size_t first, size_t n, float *dst)
{
    if (first > v->numel || n > v->numel - first)
        return ISD_ENG_EINVAL;
    const unsigned char *s = v->data;
    switch (v->dtype) {
    case ISD_ENG_DT_F32:
        if (n)
            memcpy(dst, s + 4 * first, 4 * n);
        return 0;
    case ISD_ENG_DT_F16:
        isd_wt_f16_to_f32(s + 2 * first, dst, n);
        return 0;
    case ISD_ENG_DT_BF16:
        isd_wt_bf16_to_f32(s + 2 * first, dst, n);
        return 0;
    case ISD_ENG_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * (first + i), 8);
            dst[i] = (float)d;
        }
        return 0;
    default:
        return ISD_ENG_EUNSUPPORTED;
    }
}

int isd_wt_view_to_f32(const struct isd_wt_view *v, float *dst, size_t cap)
{
    if (cap < v->numel)
        return ISD_ENG_EINVAL;
    return isd_wt_view_range_to_f32(v, 0, v->numel, dst);
}
