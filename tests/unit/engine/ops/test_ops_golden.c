/*
 * engine/ops against PyTorch float64 goldens (tests/reference/gen_ops.py), every op at small
 * odd shapes, for every implementation this CPU runs: the reference path and the fast path with
 * each kernel set (scalar, AVX2, AVX-512), and the fast path with every 3x3 stride-1 conv on
 * Winograd F(2x2,3x3) (ISD_OPS_WINOGRAD=all), all on a pool of 2 threads.
 *
 * Tolerances:
 *   reference path: every element equals the float64 truth rounded to float: |err| <= 2^-23
 *     |ref| + 1e-10 max|ref| (check_rounded);
 *   fast path, element-wise ops: max|err| <= 1e-5 max|ref| + 1e-6;
 *   fast path, GEMMs/convs/attention/norms/softmax: rel L2 <= 1e-5 and the element-wise bound;
 *   layout ops, embeddings, timestep embedding (one implementation): as the reference.
 */
#include "ops_test.h"

enum { N_IMPLS_MAX = 5 };

struct impl {
    const char *name;
    struct isd_op_ctx *ctx;
    int reference;
};

static struct impl impls[N_IMPLS_MAX];
static int n_impls;

static int setup(void **state)
{
    (void)state;
    static const int isas[] = {ISD_OP_ISA_SCALAR, ISD_OP_ISA_AVX2, ISD_OP_ISA_AVX512};
    static const char *names[] = {"fast/scalar", "fast/avx2", "fast/avx512"};
    impls[n_impls++] = (struct impl){"reference", ctx_new(2, 1, 0), 1};
    for (int i = 0; i < 3; i++)
        if (isa_available(isas[i]))
            impls[n_impls++] = (struct impl){names[i], ctx_new(2, 0, isas[i]), 0};
    /* every 3x3 stride-1 pad-1 conv on Winograd F(2x2,3x3), whatever its size */
    impls[n_impls++] = (struct impl){"fast/winograd", ctx_new_winograd(2, "all"), 0};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_impls; i++)
        isd_op_ctx_free(impls[i].ctx);
    n_impls = 0;
    return 0;
}

static void check(const struct impl *im, const char *what, const float *got, const double *ref,
                  size_t n, int gemm_like)
{
    char label[128];
    snprintf(label, sizeof label, "%s %s", im->name, what);
    if (im->reference)
        check_rounded(label, got, ref, n);
    else if (gemm_like)
        check_gemm_like(label, got, ref, n, 1e-5, 1e-5, 1e-6);
    else
        check_elementwise(label, got, ref, n, 1e-5, 1e-6);
}

static int golden_has(const struct golden *g, const char *name)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->a[i].name, name) == 0)
            return 1;
    return 0;
}

/* ---- conv2d ---- */

static void conv_golden(const char *name)
{
    struct golden g;
    golden_load(&g, name);
    const int32_t *sh = golden_i32(&g, "shape", NULL);
    struct isd_op_conv2d_shape s = {sh[0], sh[1], sh[2], sh[3], sh[4],  sh[5],
                                    sh[6], sh[7], sh[8], sh[9], sh[10], sh[11]};
    const float *x = golden_f32(&g, "x", NULL), *w = golden_f32(&g, "w", NULL);
    const float *b = golden_has(&g, "b") ? golden_f32(&g, "b", NULL) : NULL;
    size_t ny;
    const double *ref = golden_f64(&g, "y", &ny);
    int ho, wo;
    assert_int_equal(isd_op_conv2d_out_size(&s, &ho, &wo), 0);
    assert_int_equal((size_t)s.n * s.c_out * ho * wo, ny);
    float *y = xmalloc(ny * sizeof *y);
    float *prior = rand_array(ny, 1.0f, 7);
    double *ref_acc = xmalloc(ny * sizeof *ref_acc);
    for (size_t i = 0; i < ny; i++)
        ref_acc[i] = ref[i] + prior[i];
    for (int i = 0; i < n_impls; i++) {
        size_t need;
        assert_int_equal(isd_op_conv2d_workspace(impls[i].ctx, &s, &need), 0);
        void *ws = ws_alloc(need);
        assert_int_equal(isd_op_conv2d(impls[i].ctx, &s, x, w, b, y, 0, ws, need), 0);
        check(&impls[i], name, y, ref, ny, 1);
        memcpy(y, prior, ny * sizeof *y);
        assert_int_equal(isd_op_conv2d(impls[i].ctx, &s, x, w, b, y, ISD_OP_ACCUMULATE, ws, need),
                         0);
        if (impls[i].reference) /* y = float(prior + conv): one rounding of the exact sum */
            check_rounded("reference conv accumulate", y, ref_acc, ny);
        else
            check_gemm_like("fast conv accumulate", y, ref_acc, ny, 1e-5, 1e-5, 1e-6);
        free(ws);
    }
    free(y);
    free(prior);
    free(ref_acc);
    golden_free(&g);
}

static void conv_3x3_s1(void **state)
{
    (void)state;
    conv_golden("conv2d_3x3_s1");
}

static void conv_3x3_s2(void **state)
{
    (void)state;
    conv_golden("conv2d_3x3_s2");
}

static void conv_3x3_s2_vae_pad(void **state)
{
    (void)state;
    conv_golden("conv2d_3x3_s2_vae");
}

static void conv_1x1_nobias(void **state)
{
    (void)state;
    conv_golden("conv2d_1x1");
}

/* ---- GEMMs ---- */

static void linear(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "linear");
    const float *x = golden_f32(&g, "x", NULL), *w = golden_f32(&g, "w", NULL);
    const float *b = golden_f32(&g, "b", NULL);
    const double *ref = golden_f64(&g, "y", NULL), *ref_nb = golden_f64(&g, "y_nobias", NULL);
    float y[35];
    double twice[35];
    for (int i = 0; i < 35; i++)
        twice[i] = 2 * ref[i];
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(isd_op_linear(impls[i].ctx, 7, 12, 5, x, w, b, y, 0), 0);
        check(&impls[i], "linear", y, ref, 35, 1);
        assert_int_equal(isd_op_linear(impls[i].ctx, 7, 12, 5, x, w, b, y, ISD_OP_ACCUMULATE), 0);
        if (!impls[i].reference)
            check(&impls[i], "linear accumulate", y, twice, 35, 1);
        assert_int_equal(isd_op_linear(impls[i].ctx, 7, 12, 5, x, w, NULL, y, 0), 0);
        check(&impls[i], "linear no bias", y, ref_nb, 35, 1);
    }
    golden_free(&g);
}

static void bmm(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "bmm");
    const float *a = golden_f32(&g, "a", NULL), *b = golden_f32(&g, "b", NULL);
    const double *ref = golden_f64(&g, "c", NULL);
    float c[60];
    for (int i = 0; i < n_impls; i++) {
        memset(c, 0xff, sizeof c); /* NaN: beta = 0 must ignore it */
        assert_int_equal(isd_op_gemm_batched(impls[i].ctx, 3, 0, 0, 4, 5, 6, 1.0f, a, 6, 24, b, 5,
                                             30, 0.0f, c, 5, 20),
                         0);
        check(&impls[i], "bmm", c, ref, 60, 1);
    }
    golden_free(&g);
}

static void gemm_transposed(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "gemm_tt");
    const float *a = golden_f32(&g, "a", NULL), *b = golden_f32(&g, "b", NULL);
    const float *c0 = golden_f32(&g, "c0", NULL);
    float alpha = golden_f32(&g, "alpha", NULL)[0], beta = golden_f32(&g, "beta", NULL)[0];
    const double *ref = golden_f64(&g, "c", NULL);
    float c[20];
    for (int i = 0; i < n_impls; i++) {
        memcpy(c, c0, sizeof c);
        assert_int_equal(isd_op_gemm(impls[i].ctx, 1, 1, 4, 5, 6, alpha, a, 4, b, 6, beta, c, 5),
                         0);
        check(&impls[i], "gemm_tt", c, ref, 20, 1);
    }
    golden_free(&g);
}

/* ---- attention ---- */

static void attention_golden(const char *name)
{
    struct golden g;
    golden_load(&g, name);
    const int32_t *sh = golden_i32(&g, "shape", NULL);
    struct isd_op_attn_shape s = {.batch = sh[0],
                                  .heads = sh[1],
                                  .lq = sh[2],
                                  .lk = sh[3],
                                  .d_head = sh[4],
                                  .causal = sh[5],
                                  .scale = golden_f32(&g, "scale", NULL)[0]};
    const float *q = golden_f32(&g, "q", NULL), *k = golden_f32(&g, "k", NULL);
    const float *v = golden_f32(&g, "v", NULL);
    size_t no;
    const double *ref = golden_f64(&g, "o", &no);
    float *o = xmalloc(no * sizeof *o);
    for (int i = 0; i < n_impls; i++) {
        size_t need;
        assert_int_equal(isd_op_attention_workspace(impls[i].ctx, &s, &need), 0);
        void *ws = ws_alloc(need);
        assert_int_equal(isd_op_attention(impls[i].ctx, &s, q, k, v, o, ws, need), 0);
        check(&impls[i], name, o, ref, no, 1);
        free(ws);
    }
    free(o);
    golden_free(&g);
}

static void attention_multihead(void **state)
{
    (void)state;
    attention_golden("attention");
}

static void attention_causal(void **state)
{
    (void)state;
    attention_golden("attention_causal");
}

static void attention_causal_rect(void **state)
{
    (void)state;
    attention_golden("attention_causal_rect");
}

static void attention_scale(void **state)
{
    (void)state;
    attention_golden("attention_scale");
}

/* ---- norms ---- */

static void group_norm_golden(const char *name, int flags)
{
    struct golden g;
    golden_load(&g, name);
    const int32_t *sh = golden_i32(&g, "shape", NULL);
    float eps = golden_f32(&g, "eps", NULL)[0];
    const float *x = golden_f32(&g, "x", NULL), *ga = golden_f32(&g, "gamma", NULL);
    const float *be = golden_f32(&g, "beta", NULL);
    size_t n;
    const double *ref = golden_f64(&g, "y", &n);
    float *y = xmalloc(n * sizeof *y);
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(
            isd_op_group_norm(impls[i].ctx, sh[0], sh[1], sh[2], sh[3], eps, x, ga, be, y, flags),
            0);
        check(&impls[i], name, y, ref, n, 1);
        if (golden_has(&g, "y_noaffine")) {
            assert_int_equal(isd_op_group_norm(impls[i].ctx, sh[0], sh[1], sh[2], sh[3], eps, x,
                                               NULL, NULL, y, 0),
                             0);
            check(&impls[i], "group_norm no affine", y, golden_f64(&g, "y_noaffine", NULL), n, 1);
        }
        /* in place */
        memcpy(y, x, n * sizeof *y);
        assert_int_equal(
            isd_op_group_norm(impls[i].ctx, sh[0], sh[1], sh[2], sh[3], eps, y, ga, be, y, flags),
            0);
        check(&impls[i], "group_norm in place", y, ref, n, 1);
    }
    free(y);
    golden_free(&g);
}

static void group_norm_eps5(void **state)
{
    (void)state;
    group_norm_golden("group_norm", 0);
}

static void group_norm_silu_eps6(void **state)
{
    (void)state;
    group_norm_golden("group_norm_silu", ISD_OP_SILU);
}

static void layer_norm(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "layer_norm");
    float eps = golden_f32(&g, "eps", NULL)[0];
    const float *x = golden_f32(&g, "x", NULL), *ga = golden_f32(&g, "gamma", NULL);
    const float *be = golden_f32(&g, "beta", NULL);
    const double *ref = golden_f64(&g, "y", NULL);
    float y[120];
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(isd_op_layer_norm(impls[i].ctx, 6, 20, eps, x, ga, be, y), 0);
        check(&impls[i], "layer_norm", y, ref, 120, 1);
    }
    golden_free(&g);
}

static void softmax(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "softmax");
    const float *x = golden_f32(&g, "x", NULL);
    const double *ref = golden_f64(&g, "y", NULL);
    float y[52];
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(isd_op_softmax(impls[i].ctx, 4, 13, x, y), 0);
        check(&impls[i], "softmax", y, ref, 52, 1);
        memcpy(y, x, sizeof y);
        assert_int_equal(isd_op_softmax(impls[i].ctx, 4, 13, y, y), 0);
        check(&impls[i], "softmax in place", y, ref, 52, 1);
    }
    golden_free(&g);
}

/* ---- activations ---- */

static void activations(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "activations");
    size_t n;
    const float *x = golden_f32(&g, "x", &n);
    static const char *names[] = {"silu", "gelu", "quick_gelu", "relu", "tanh"};
    int (*fns[])(struct isd_op_ctx *, size_t, const float *,
                 float *) = {isd_op_silu, isd_op_gelu, isd_op_quick_gelu, isd_op_relu, isd_op_tanh};
    float *y = xmalloc(n * sizeof *y);
    for (int i = 0; i < n_impls; i++) {
        for (int f = 0; f < 5; f++) {
            const double *ref = golden_f64(&g, names[f], NULL);
            assert_int_equal(fns[f](impls[i].ctx, n, x, y), 0);
            check(&impls[i], names[f], y, ref, n, 0);
            memcpy(y, x, n * sizeof *y);
            assert_int_equal(fns[f](impls[i].ctx, n, y, y), 0); /* in place */
            check(&impls[i], names[f], y, ref, n, 0);
        }
    }
    free(y);
    golden_free(&g);
}

static void geglu(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "geglu");
    const float *x = golden_f32(&g, "x", NULL);
    const double *ref = golden_f64(&g, "y", NULL);
    float y[35];
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(isd_op_geglu(impls[i].ctx, 5, 7, x, y), 0);
        check(&impls[i], "geglu", y, ref, 35, 0);
    }
    golden_free(&g);
}

/* ---- arithmetic ---- */

static void eltwise(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "eltwise");
    const float *a = golden_f32(&g, "a", NULL), *b = golden_f32(&g, "b", NULL);
    float s = golden_f32(&g, "s", NULL)[0], alpha = golden_f32(&g, "alpha", NULL)[0];
    float beta = golden_f32(&g, "beta", NULL)[0];
    float y[37];
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(isd_op_add(impls[i].ctx, 37, a, b, y), 0);
        check(&impls[i], "add", y, golden_f64(&g, "add", NULL), 37, 0);
        assert_int_equal(isd_op_mul(impls[i].ctx, 37, a, b, y), 0);
        check(&impls[i], "mul", y, golden_f64(&g, "mul", NULL), 37, 0);
        assert_int_equal(isd_op_scale(impls[i].ctx, 37, a, s, y), 0);
        check(&impls[i], "scale", y, golden_f64(&g, "scale", NULL), 37, 0);
        memcpy(y, b, sizeof y);
        assert_int_equal(isd_op_axpby(impls[i].ctx, 37, alpha, a, beta, y), 0);
        check(&impls[i], "axpby", y, golden_f64(&g, "axpby", NULL), 37, 0);
        memcpy(y, a, sizeof y);
        assert_int_equal(isd_op_add(impls[i].ctx, 37, y, b, y), 0); /* y == a */
        check(&impls[i], "add in place", y, golden_f64(&g, "add", NULL), 37, 0);
    }
    golden_free(&g);
}

static void add_bias(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "add_bias");
    const float *x = golden_f32(&g, "x", NULL), *bias = golden_f32(&g, "bias", NULL);
    const float *emb = golden_f32(&g, "emb", NULL), *rows = golden_f32(&g, "rows", NULL);
    const float *rb = golden_f32(&g, "row_bias", NULL);
    float y[30];
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(isd_op_add_bias(impls[i].ctx, 2, 3, 5, x, bias, 0, y), 0);
        check(&impls[i], "channel bias", y, golden_f64(&g, "y_channel", NULL), 30, 0);
        assert_int_equal(isd_op_add_bias(impls[i].ctx, 2, 3, 5, x, emb, 3, y), 0);
        check(&impls[i], "emb bias", y, golden_f64(&g, "y_emb", NULL), 30, 0);
        assert_int_equal(isd_op_add_bias(impls[i].ctx, 4, 6, 1, rows, rb, 0, y), 0);
        check(&impls[i], "row bias", y, golden_f64(&g, "y_rows", NULL), 24, 0);
    }
    golden_free(&g);
}

/* ---- layout and embeddings ---- */

static void layout_ops(void **state)
{
    (void)state;
    struct golden g;
    float y[96];
    for (int i = 0; i < n_impls; i++) {
        struct isd_op_ctx *ctx = impls[i].ctx;
        golden_load(&g, "concat");
        assert_int_equal(isd_op_concat_channels(ctx, 2, 3, 2, 4, golden_f32(&g, "a", NULL),
                                                golden_f32(&g, "b", NULL), y),
                         0);
        check_rounded("concat", y, golden_f64(&g, "y", NULL), 40);
        golden_free(&g);
        golden_load(&g, "upsample");
        assert_int_equal(isd_op_upsample_nearest2x(ctx, 2, 3, 4, golden_f32(&g, "x", NULL), y), 0);
        check_rounded("upsample", y, golden_f64(&g, "y", NULL), 96);
        golden_free(&g);
        golden_load(&g, "transpose");
        assert_int_equal(isd_op_transpose(ctx, 2, 3, 5, golden_f32(&g, "x", NULL), y), 0);
        check_rounded("transpose", y, golden_f64(&g, "y", NULL), 30);
        golden_free(&g);
    }
}

static void timestep_embedding(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "timestep");
    const float *t = golden_f32(&g, "t", NULL);
    float y[4 * 32];
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(isd_op_timestep_embedding(impls[i].ctx, 4, t, 32, 10000.0f, y), 0);
        check_rounded("timestep dim 32", y, golden_f64(&g, "y32", NULL), 4 * 32);
        assert_int_equal(isd_op_timestep_embedding(impls[i].ctx, 4, t, 7, 10000.0f, y), 0);
        check_rounded("timestep dim 7", y, golden_f64(&g, "y7", NULL), 4 * 7);
    }
    golden_free(&g);
}

static void embedding(void **state)
{
    (void)state;
    struct golden g;
    golden_load(&g, "embedding");
    const float *table = golden_f32(&g, "table", NULL), *pos = golden_f32(&g, "pos", NULL);
    const int32_t *ids = golden_i32(&g, "ids", NULL);
    float y[24];
    for (int i = 0; i < n_impls; i++) {
        assert_int_equal(isd_op_embedding(impls[i].ctx, 4, 6, ids, table, 10, pos, y), 0);
        check_rounded("embedding", y, golden_f64(&g, "y", NULL), 24);
        assert_int_equal(isd_op_embedding(impls[i].ctx, 4, 6, ids, table, 10, NULL, y), 0);
        check_rounded("embedding no pos", y, golden_f64(&g, "y_nopos", NULL), 24);
    }
    golden_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_3x3_s1),
        cmocka_unit_test(conv_3x3_s2),
        cmocka_unit_test(conv_3x3_s2_vae_pad),
        cmocka_unit_test(conv_1x1_nobias),
        cmocka_unit_test(linear),
        cmocka_unit_test(bmm),
        cmocka_unit_test(gemm_transposed),
        cmocka_unit_test(attention_multihead),
        cmocka_unit_test(attention_causal),
        cmocka_unit_test(attention_causal_rect),
        cmocka_unit_test(attention_scale),
        cmocka_unit_test(group_norm_eps5),
        cmocka_unit_test(group_norm_silu_eps6),
        cmocka_unit_test(layer_norm),
        cmocka_unit_test(softmax),
        cmocka_unit_test(activations),
        cmocka_unit_test(geglu),
        cmocka_unit_test(eltwise),
        cmocka_unit_test(add_bias),
        cmocka_unit_test(layout_ops),
        cmocka_unit_test(timestep_embedding),
        cmocka_unit_test(embedding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
