/*
 * Body of the vectorised kernels, included once per ISA by vec_scalar.c, vec_avx2.c and
 * vec_avx512.c (no include guard on purpose). The including file defines:
 *   vf, VW (lanes), KN(name) (suffixes the ISA),
 *   v_load, v_loadn(p, n, fill) (n < VW lanes, rest = fill), v_store, v_storen(p, v, n),
 *   v_set1, v_add, v_sub, v_mul, v_div, v_max, v_abs, v_fmadd(a, b, c) = a*b + c,
 *   v_round (to nearest even), v_lt(a, b, x, y) = a < b ? x : y (per lane),
 *   v_ldexp(p, n) = p * 2^n for integer-valued n in [-150, 130],
 *   v_mul_split(a, b, &hi, &lo): hi + lo == a*b exactly, v_hsum, v_hmax.
 *
 * Accuracy (float32 against libm in double; asserted in tests/unit/engine/ops/test_ops_vec.c,
 * maxima measured on all three ISAs over [-20, 20]):
 *   exp: Cody-Waite reduction + Cephes' degree-6 polynomial, ~1-2 ulp; takes its argument as an
 *        unevaluated hi + lo pair so that callers can pass rounding errors in; +inf above
 *        88.72, gradual underflow below -87.3, 0 below -104.
 *   gelu(x) = x Phi(x), Phi via erfc with RELATIVE accuracy for all x (no 1 + erf(x)
 *        cancellation): x Phi(-|x|) = x 0.5 t exp(-x^2/2 + P(t)), t = 2sqrt2/(2sqrt2 + |x|),
 *        P a degree-11 polynomial in (t - 0.5802) (Chebyshev fit of log(erfc(z)/t) + z^2 on
 *        |x| <= 14.8: max error 3.0e-9 in exact arithmetic, 1.3e-7 evaluated in float;
 *        derived by tests/reference/ops_fit_gelu.py),
 *        x^2/2 carried exactly (hi + lo) into exp: 4.7 ulp max.
 *   silu = x / (1 + e^-x): 2.4 ulp; quick_gelu = x / (1 + e^(-1.702 x)) with 1.702 x carried
 *        exactly: 2.3 ulp; softmax (e^(x - max) with the subtraction's error carried, sums in
 *        float over 64-value blocks, in double across blocks): 3.0 ulp.
 */

#define EXP_LOG2E  1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO -2.12194440e-4f

/* e^(hi + lo) with |lo| small (a few ulp of hi) */
static inline vf KN(exp_hl)(vf hi, vf lo)
{
    hi = v_lt(hi, v_set1(-104.0f), v_set1(-104.0f), hi);
    hi = v_lt(v_set1(89.0f), hi, v_set1(89.0f), hi);
    vf n = v_round(v_mul(hi, v_set1(EXP_LOG2E)));
    vf r = v_fmadd(n, v_set1(-EXP_LN2_HI), hi); /* exact */
    r = v_fmadd(n, v_set1(-EXP_LN2_LO), r);
    r = v_add(r, lo);
    vf p = v_set1(1.9875691500e-4f);
    p = v_fmadd(p, r, v_set1(1.3981999507e-3f));
    p = v_fmadd(p, r, v_set1(8.3334519073e-3f));
    p = v_fmadd(p, r, v_set1(4.1665795894e-2f));
    p = v_fmadd(p, r, v_set1(1.6666665459e-1f));
    p = v_fmadd(p, r, v_set1(5.0000001201e-1f));
    p = v_add(v_fmadd(p, v_mul(r, r), r), v_set1(1.0f));
    return v_ldexp(p, n);
}

static inline vf KN(exp)(vf x)
{
    return KN(exp_hl)(x, v_set1(0.0f));
}

/* silu(x) = x / (1 + e^-x) */
static inline vf KN(silu1)(vf x)
{
    vf e = KN(exp)(v_sub(v_set1(0.0f), x));
    return v_div(x, v_add(v_set1(1.0f), e));
}

/* quick_gelu(x) = x / (1 + e^(-1.702 x)); -1.702 x is carried as an exact hi + lo pair (and
 * 1.702 as float hi + lo), or its rounding would cost up to 40 ulp at x = -20 */
static inline vf KN(quick_gelu1)(vf x)
{
    const float a_hi = 1.70200002193450928f, a_lo = -2.19345092773e-08f; /* a_hi + a_lo = 1.702 */
    vf hi, lo, xc = v_lt(x, v_set1(-64.0f), v_set1(-64.0f), x);          /* keeps lo small; e^109 */
    xc = v_lt(v_set1(64.0f), xc, v_set1(64.0f), xc);                     /* is inf, e^-109 is 0 */
    v_mul_split(xc, v_set1(-a_hi), &hi, &lo);
    lo = v_fmadd(xc, v_set1(-a_lo), lo);
    vf e = KN(exp_hl)(hi, lo);
    return v_div(x, v_add(v_set1(1.0f), e));
}

/* x * Phi(x), Phi(x) = 0.5 erfc(-x / sqrt 2) */
static inline vf KN(gelu1)(vf x)
{
    const float c = 2.82842712474619010f; /* 2 sqrt 2 */
    vf ax_in = v_abs(x), ax = v_lt(ax_in, v_set1(14.8f), ax_in, v_set1(14.8f));
    vf t = v_div(v_set1(c), v_add(v_set1(c), ax));
    vf u = v_sub(t, v_set1(0.580223441f));
    vf p = v_set1(-0.0774736404f);
    p = v_fmadd(p, u, v_set1(-0.140571147f));
    p = v_fmadd(p, u, v_set1(0.18606934f));
    p = v_fmadd(p, u, v_set1(0.137120143f));
    p = v_fmadd(p, u, v_set1(-0.254868954f));
    p = v_fmadd(p, u, v_set1(-0.0471295677f));
    p = v_fmadd(p, u, v_set1(0.29662028f));
    p = v_fmadd(p, u, v_set1(-0.0392995626f));
    p = v_fmadd(p, u, v_set1(-0.406952381f));
    p = v_fmadd(p, u, v_set1(0.094490625f));
    p = v_fmadd(p, u, v_set1(1.36816132f));
    p = v_fmadd(p, u, v_set1(-0.562851071f));
    /* exponent -x^2/2 + P = (a + p) + lo, with a = -hi/2 exact; two-sum of a and p */
    vf sq_hi, sq_lo;
    v_mul_split(ax, ax, &sq_hi, &sq_lo);
    vf a = v_mul(sq_hi, v_set1(-0.5f));
    vf s = v_add(a, p);
    vf bb = v_sub(s, a);
    vf err = v_add(v_sub(a, v_sub(s, bb)), v_sub(p, bb));
    vf lo = v_fmadd(sq_lo, v_set1(-0.5f), err);
    /* xw = x * 0.5 erfc(|x|/sqrt2), multiplied in this order so that no factor goes subnormal
     * before the result does; 0 for |x| >= 14.8 (where it is below 1e-49) and for NaN */
    vf xw = v_mul(v_mul(v_mul(x, v_set1(0.5f)), t), KN(exp_hl)(s, lo));
    xw = v_lt(ax_in, v_set1(14.8f), xw, v_set1(0.0f));
    return v_lt(x, v_set1(0.0f), xw, v_sub(x, xw)); /* x Phi(x) = x - x Phi(-x) for x >= 0 */
}

static void KN(silu)(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(y + i, KN(silu1)(v_load(x + i)));
    if (i < n)
        v_storen(y + i, KN(silu1)(v_loadn(x + i, n - i, 0.0f)), n - i);
}

static void KN(quick_gelu)(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(y + i, KN(quick_gelu1)(v_load(x + i)));
    if (i < n)
        v_storen(y + i, KN(quick_gelu1)(v_loadn(x + i, n - i, 0.0f)), n - i);
}

static void KN(gelu)(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(y + i, KN(gelu1)(v_load(x + i)));
    if (i < n)
        v_storen(y + i, KN(gelu1)(v_loadn(x + i, n - i, 0.0f)), n - i);
}

static void KN(geglu)(float *y, const float *a, const float *gate, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(y + i, v_mul(v_load(a + i), KN(gelu1)(v_load(gate + i))));
    if (i < n) {
        size_t m = n - i;
        v_storen(y + i, v_mul(v_loadn(a + i, m, 0.0f), KN(gelu1)(v_loadn(gate + i, m, 0.0f))), m);
    }
}

static void KN(add)(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(y + i, v_add(v_load(a + i), v_load(b + i)));
    if (i < n)
        v_storen(y + i, v_add(v_loadn(a + i, n - i, 0.0f), v_loadn(b + i, n - i, 0.0f)), n - i);
}

static void KN(mul)(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(y + i, v_mul(v_load(a + i), v_load(b + i)));
    if (i < n)
        v_storen(y + i, v_mul(v_loadn(a + i, n - i, 0.0f), v_loadn(b + i, n - i, 0.0f)), n - i);
}

static void KN(axpby)(float *y, float alpha, const float *x, float beta, size_t n)
{
    vf va = v_set1(alpha), vb = v_set1(beta);
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(y + i, v_fmadd(va, v_load(x + i), v_mul(vb, v_load(y + i))));
    if (i < n) {
        size_t m = n - i;
        v_storen(y + i, v_fmadd(va, v_loadn(x + i, m, 0.0f), v_mul(vb, v_loadn(y + i, m, 0.0f))),
                 m);
    }
}

static void KN(scale_shift)(float *y, const float *x, size_t n, float a, float b)
{
    vf va = v_set1(a), vb = v_set1(b);
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(y + i, v_fmadd(va, v_load(x + i), vb));
    if (i < n)
        v_storen(y + i, v_fmadd(va, v_loadn(x + i, n - i, 0.0f), vb), n - i);
}

static float KN(max)(const float *x, size_t n)
{
    vf m = v_set1(-INFINITY);
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        m = v_max(m, v_load(x + i));
    if (i < n)
        m = v_max(m, v_loadn(x + i, n - i, -INFINITY));
    return v_hmax(m);
}

/* e^(x - shift) with the subtraction's rounding error carried into exp (two-sum): without it a
 * spread of 80 between x and shift costs ~40 ulp. Lanes below -103 (masked -inf) get lo = 0. */
static inline vf KN(exp_diff)(vf x, vf shift)
{
    vf s = v_sub(x, shift), bb = v_sub(s, x);
    vf err = v_sub(v_sub(x, v_sub(s, bb)), v_add(shift, bb));
    err = v_lt(s, v_set1(-103.0f), v_set1(0.0f), err);
    return KN(exp_hl)(s, err);
}

/* y = e^(x - shift); returns sum y, in float lanes over blocks of 64 values, blocks in double */
static float KN(exp_sum)(float *y, const float *x, size_t n, float shift)
{
    vf vs = v_set1(shift);
    double sum = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += 64) {
        size_t e = n - i0 < 64 ? n : i0 + 64, i = i0;
        vf acc = v_set1(0.0f);
        for (; i + VW <= e; i += VW) {
            vf ex = KN(exp_diff)(v_load(x + i), vs);
            v_store(y + i, ex);
            acc = v_add(acc, ex);
        }
        if (i < e) {
            vf ex = KN(exp_diff)(v_loadn(x + i, e - i, -INFINITY), vs);
            v_storen(y + i, ex, e - i);
            acc = v_add(acc, ex);
        }
        sum += v_hsum(acc);
    }
    return (float)sum;
}

/* sum (x - shift), in float lanes over blocks of 256 values, blocks summed in double. With
 * shift near the mean (a sample of x), the float sums carry the data's spread, not its offset. */
static double KN(sum)(const float *x, size_t n, float shift)
{
    double s = 0.0;
    vf sh = v_set1(shift);
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t e = n - i0 < 256 ? n : i0 + 256, i = i0;
        vf acc = v_set1(0.0f);
        for (; i + VW <= e; i += VW)
            acc = v_add(acc, v_sub(v_load(x + i), sh));
        if (i < e)
            acc = v_add(acc, v_sub(v_loadn(x + i, e - i, shift), sh));
        s += v_hsum(acc);
    }
    return s;
}

static double KN(sum_sq_dev)(const float *x, size_t n, float mean)
{
    double s = 0.0;
    vf m = v_set1(mean);
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t e = n - i0 < 256 ? n : i0 + 256, i = i0;
        vf acc = v_set1(0.0f);
        for (; i + VW <= e; i += VW) {
            vf d = v_sub(v_load(x + i), m);
            acc = v_fmadd(d, d, acc);
        }
        if (i < e) {
            vf d = v_sub(v_loadn(x + i, e - i, mean), m);
            acc = v_fmadd(d, d, acc);
        }
        s += v_hsum(acc);
    }
    return s;
}

static void KN(norm)(float *y, const float *x, size_t n, float mean, float a, float b, int silu)
{
    vf vm = v_set1(mean), va = v_set1(a), vb = v_set1(b);
    size_t i = 0;
    if (silu) {
        for (; i + VW <= n; i += VW)
            v_store(y + i, KN(silu1)(v_fmadd(v_sub(v_load(x + i), vm), va, vb)));
        if (i < n) {
            vf t = v_fmadd(v_sub(v_loadn(x + i, n - i, 0.0f), vm), va, vb);
            v_storen(y + i, KN(silu1)(t), n - i);
        }
        return;
    }
    for (; i + VW <= n; i += VW)
        v_store(y + i, v_fmadd(v_sub(v_load(x + i), vm), va, vb));
    if (i < n)
        v_storen(y + i, v_fmadd(v_sub(v_loadn(x + i, n - i, 0.0f), vm), va, vb), n - i);
}

static void KN(norm_vec)(float *y, const float *x, size_t n, float mean, float rstd, float shift,
                         const float *g, const float *b)
{
    vf vm = v_set1(mean), vr = v_set1(rstd), vs = v_set1(shift), one = v_set1(1.0f);
    vf zero = v_set1(0.0f);
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        vf gi = g ? v_load(g + i) : one, bi = b ? v_load(b + i) : zero;
        v_store(y + i, v_fmadd(v_fmadd(v_sub(v_load(x + i), vm), vr, vs), gi, bi));
    }
    if (i < n) {
        size_t m = n - i;
        vf gi = g ? v_loadn(g + i, m, 1.0f) : one, bi = b ? v_loadn(b + i, m, 0.0f) : zero;
        vf t = v_fmadd(v_sub(v_loadn(x + i, m, 0.0f), vm), vr, vs);
        v_storen(y + i, v_fmadd(t, gi, bi), m);
    }
}

const struct isd_op_kern KN(isd_op_kern) = {
    .name = KNAME,
    .silu = KN(silu),
    .gelu = KN(gelu),
    .quick_gelu = KN(quick_gelu),
    .geglu = KN(geglu),
    .add = KN(add),
    .mul = KN(mul),
    .axpby = KN(axpby),
    .scale_shift = KN(scale_shift),
    .max = KN(max),
    .exp_sum = KN(exp_sum),
    .sum = KN(sum),
    .sum_sq_dev = KN(sum_sq_dev),
    .norm = KN(norm),
    .norm_vec = KN(norm_vec),
};
