/* Weight conversion to float32: the F16C fast path against core's exact scalar conversion. */
#include "support/test.h"

#include "engine/weights/weights.h"
#include "support/sdmodel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Every F16 value, at every alignment and for every tail length up to 17. */
static void f16_every_value(void **state)
{
    (void)state;
    unsigned char *src = malloc(2 * 65536 + 1);
    float *dst = malloc(65536 * sizeof *dst);
    for (int off = 0; off < 2; off++) {
        for (uint32_t i = 0; i < 65536; i++) {
            uint16_t h = (uint16_t)i;
            memcpy(src + off + 2 * i, &h, 2);
        }
        isd_wt_f16_to_f32(src + off, dst, 65536);
        for (uint32_t i = 0; i < 65536; i++) {
            float want = isd_eng_f16_to_f32((uint16_t)i);
            if (isnan(want))
                assert_true(isnan(dst[i]) && signbit(dst[i]) == signbit(want));
            else if (f32_bits(want) != f32_bits(dst[i]))
                fail_msg("f16 %04x: %a, want %a", i, dst[i], want);
        }
        for (size_t n = 0; n <= 17; n++) {
            float out[18];
            out[n] = 42;
            isd_wt_f16_to_f32(src + off + 2 * 1000, out, n);
            for (size_t k = 0; k < n; k++)
                assert_true(f32_bits(out[k]) == f32_bits(isd_eng_f16_to_f32((uint16_t)(1000 + k))));
            assert_true(out[n] == 42); /* nothing written past n */
        }
    }
    print_message("# F16C path: %s\n", isd_wt_have_f16c() ? "yes" : "no (scalar)");
    free(src);
    free(dst);
}

static void bf16_every_value(void **state)
{
    (void)state;
    unsigned char *src = malloc(2 * 65536 + 1);
    float *dst = malloc(65536 * sizeof *dst);
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        memcpy(src + 1 + 2 * i, &h, 2);
    }
    isd_wt_bf16_to_f32(src + 1, dst, 65536);
    for (uint32_t i = 0; i < 65536; i++)
        assert_true(f32_bits(dst[i]) == f32_bits(isd_eng_bf16_to_f32((uint16_t)i)));
    free(src);
    free(dst);
}

static void view_conversion(void **state)
{
    (void)state;
    float f[5] = {1, -2, 0.5f, 3e-8f, 65504};
    double d[5] = {1, -2, 0.5, 3e-8, 1e300};
    uint16_t h[5], b[5];
    for (int i = 0; i < 5; i++) {
        h[i] = isd_eng_f32_to_f16(f[i]);
        b[i] = isd_eng_f32_to_bf16(f[i]);
    }
    unsigned char raw[64];
    float out[6];
    struct isd_wt_view v = {.name = "x", .ndim = 1, .shape = {5, 1, 1, 1}, .numel = 5};
    /* unaligned F32 */
    memcpy(raw + 1, f, sizeof f);
    v.dtype = ISD_ENG_DT_F32;
    v.data = raw + 1;
    assert_int_equal(isd_wt_view_to_f32(&v, out, 5), 0);
    assert_memory_equal(out, f, sizeof f);
    v.dtype = ISD_ENG_DT_F16;
    v.data = h;
    assert_int_equal(isd_wt_view_to_f32(&v, out, 6), 0);
    for (int i = 0; i < 5; i++)
        assert_true(out[i] == isd_eng_f16_to_f32(h[i]));
    v.dtype = ISD_ENG_DT_BF16;
    v.data = b;
    assert_int_equal(isd_wt_view_range_to_f32(&v, 2, 3, out), 0);
    for (int i = 0; i < 3; i++)
        assert_true(out[i] == isd_eng_bf16_to_f32(b[2 + i]));
    v.dtype = ISD_ENG_DT_F64;
    v.data = d;
    assert_int_equal(isd_wt_view_to_f32(&v, out, 5), 0);
    assert_true(out[2] == 0.5f && out[3] == (float)3e-8 && isinf(out[4]));
    /* errors */
    assert_int_equal(isd_wt_view_to_f32(&v, out, 4), ISD_ENG_EINVAL);
    assert_int_equal(isd_wt_view_range_to_f32(&v, 3, 3, out), ISD_ENG_EINVAL);
    assert_int_equal(isd_wt_view_range_to_f32(&v, 6, 0, out), ISD_ENG_EINVAL);
    assert_int_equal(isd_wt_view_range_to_f32(&v, 5, 0, out), 0);
    assert_int_equal(isd_wt_view_range_to_f32(&v, SIZE_MAX, 2, out), ISD_ENG_EINVAL);
    v.dtype = ISD_ENG_DT_I64;
    assert_int_equal(isd_wt_view_to_f32(&v, out, 5), ISD_ENG_EUNSUPPORTED);
}

/* The writer's own rounding (independent code) agrees with core's, and "exact" values are
 * fixed points of both narrowings. */
static void writer_rounding_agrees(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    int tested = 0;
    for (int i = 0; i < 2000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        float f;
        uint32_t u = (uint32_t)x;
        /* bias towards the interesting ranges: around f16 subnormals, normal, overflow */
        if (i % 4 == 0)
            u = (u & 0x807fffff) | ((uint32_t)(100 + (x >> 32) % 60) << 23);
        memcpy(&f, &u, 4);
        if (isnan(f))
            continue;
        float e = isd_sdm_exact(f);
        assert_true(isd_eng_f16_to_f32(isd_eng_f32_to_f16(e)) == e);
        assert_true(isd_eng_bf16_to_f32(isd_eng_f32_to_bf16(e)) == e);
        /* the exact value is the bf16 rounding, then (only for tiny or huge values) the f16 one */
        float bf = isd_eng_bf16_to_f32(isd_eng_f32_to_bf16(f));
        float want = isd_eng_f16_to_f32(isd_eng_f32_to_f16(bf));
        assert_true(e == want || (isnan(e) && isnan(want)));
        tested++;
    }
    assert_true(tested > 1900000);
    assert_true(isd_sdm_exact(0.02f) != 0.02f);
    assert_true(isd_sdm_exact(1.0f) == 1.0f);
    assert_true(isd_sdm_exact(1e-9f) == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(f16_every_value),
        cmocka_unit_test(bf16_every_value),
        cmocka_unit_test(view_conversion),
        cmocka_unit_test(writer_rounding_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
