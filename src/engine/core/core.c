#include "engine/core/core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int isd_eng_fail(struct isd_eng_error *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

const char *isd_eng_code_name(int code)
{
    switch (code) {
    case ISD_ENG_OK:
        return "ok";
    case ISD_ENG_EIO:
        return "io";
    case ISD_ENG_EFORMAT:
        return "format";
    case ISD_ENG_ENOMEM:
        return "nomem";
    case ISD_ENG_EINVAL:
        return "invalid";
    case ISD_ENG_EMISSING:
        return "missing";
    case ISD_ENG_ESHAPE:
        return "shape";
    case ISD_ENG_EUNSUPPORTED:
        return "unsupported";
    case ISD_ENG_ECANCELLED:
        return "cancelled";
    default:
        return "unknown";
    }
}

static const struct {
    const char *name;
    size_t size;
} dtypes[ISD_ENG_DT__COUNT] = {
    [ISD_ENG_DT_F32] = {"F32", 4},         [ISD_ENG_DT_F16] = {"F16", 2},
    [ISD_ENG_DT_BF16] = {"BF16", 2},       [ISD_ENG_DT_F64] = {"F64", 8},
    [ISD_ENG_DT_I64] = {"I64", 8},         [ISD_ENG_DT_I32] = {"I32", 4},
    [ISD_ENG_DT_I16] = {"I16", 2},         [ISD_ENG_DT_I8] = {"I8", 1},
    [ISD_ENG_DT_U8] = {"U8", 1},           [ISD_ENG_DT_BOOL] = {"BOOL", 1},
    [ISD_ENG_DT_U16] = {"U16", 2},         [ISD_ENG_DT_U32] = {"U32", 4},
    [ISD_ENG_DT_U64] = {"U64", 8},         [ISD_ENG_DT_F8_E4M3] = {"F8_E4M3", 1},
    [ISD_ENG_DT_F8_E5M2] = {"F8_E5M2", 1},
};

const char *isd_eng_dtype_name(enum isd_eng_dtype t)
{
    return (unsigned)t < ISD_ENG_DT__COUNT ? dtypes[t].name : "?";
}

int isd_eng_dtype_parse(const char *name, size_t len)
{
    for (int i = 0; i < ISD_ENG_DT__COUNT; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0)
            return i;
    return -1;
}

size_t isd_eng_dtype_size(enum isd_eng_dtype t)
{
    return (unsigned)t < ISD_ENG_DT__COUNT ? dtypes[t].size : 0;
}

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float isd_eng_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf / nan */
        return bits_to_f32(sign | 0x7f800000 | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return bits_to_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

float isd_eng_bf16_to_f32(uint16_t b)
{
    return bits_to_f32((uint32_t)b << 16);
}

uint16_t isd_eng_f32_to_bf16(float f)
{
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) /* nan: keep it quiet */
        return (uint16_t)((u >> 16) | 0x40);
    uint32_t rounding = 0x7fff + ((u >> 16) & 1);
    return (uint16_t)((u + rounding) >> 16);
}

uint16_t isd_eng_f32_to_f16(float f)
{
    uint32_t u = f32_to_bits(f);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t abs = u & 0x7fffffff;
    if (abs > 0x7f800000) /* nan */
        return (uint16_t)(sign | 0x7e00);
    if (abs >= 0x477ff000) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (abs < 0x38800000) { /* below the smallest normal f16: subnormal or zero */
        float a = bits_to_f32(abs);
        /* a * 2^24 rounded to nearest even gives the subnormal mantissa */
        float m = nearbyintf(a * 0x1p24f);
        return (uint16_t)(sign | (uint32_t)m);
    }
    uint32_t exp = ((abs >> 23) - 112) << 10;
    uint32_t man = (abs >> 13) & 0x3ff;
    uint32_t rest = abs & 0x1fff;
    uint32_t h = exp | man;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++; /* may carry into the exponent, which is correct */
    return (uint16_t)(sign | h);
}

int isd_eng_convert_to_f32(enum isd_eng_dtype t, const void *src, float *dst, size_t n)
{
    const unsigned char *s = src;
    switch (t) {
    case ISD_ENG_DT_F32:
        memcpy(dst, src, n * 4);
        return 0;
    case ISD_ENG_DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = isd_eng_f16_to_f32(h);
        }
        return 0;
    case ISD_ENG_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, s + 2 * i, 2);
            dst[i] = isd_eng_bf16_to_f32(b);
        }
        return 0;
    default:
        return ISD_ENG_EUNSUPPORTED;
    }
}
