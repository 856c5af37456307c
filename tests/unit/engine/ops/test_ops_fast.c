/*
 * engine/ops fast path against the reference path at realistic SD shapes (fewer output channels
 * where the naive reference would be slow under ASan), odd sizes that do not divide the tiles,
 * and every code path of the fast kernels: im2col tiles, c_out splits, direct 1x1, stride 2,
 * Winograd F(2x2,3x3) (odd sizes, several blocks per worker, across images; default choice on
 * both sides of its thresholds),
 * the VAE's asymmetric padding, multi-block flash attention with and without causal mask,
 * fused-QKV strides, GroupNorm eps 1e-5/1e-6, and each vector ISA this CPU has.
 *
 * Tolerances (the reference is float64-accurate, see test_ops_golden.c):
 *   GEMMs, convs, attention, norms, softmax: rel L2 <= 1e-5 and max|err| <= 1e-5 max|ref| + 1e-6;
 *   element-wise ops: max|err| <= 1e-5 max|ref| + 1e-6.
 */
#include "ops_test.h"

static struct isd_op_ctx *ref_ctx, *fast_ctx;
static struct isd_op_ctx *wino_ctx, *im2col_ctx, *wino3_ctx; /* ISD_OPS_WINOGRAD all/0/all */
static struct isd_op_ctx *isa_ctx[3]; /* scalar, avx2, avx512 when available */
static int n_isa;

static int setup(void **state)
{
    (void)state;
    ref_ctx = ctx_new(2, 1, 0);
    fast_ctx = ctx_new(2, 0, 0);
    wino_ctx = ctx_new_winograd(2, "all");
    im2col_ctx = ctx_new_winograd(2, "0");
    wino3_ctx = ctx_new_winograd(3, "all");
    static const int isas[] = {ISD_OP_ISA_SCALAR, ISD_OP_ISA_AVX2, ISD_OP_ISA_AVX512};
    for (int i = 0; i < 3; i++)
        if (isa_available(isas[i]))
            isa_ctx[n_isa++] = ctx_new(2, 0, isas[i]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    isd_op_ctx_free(ref_ctx);
    isd_op_ctx_free(fast_ctx);
    isd_op_ctx_free(wino_ctx);
    isd_op_ctx_free(im2col_ctx);
    isd_op_ctx_free(wino3_ctx);
    for (int i = 0; i < n_isa; i++)
        isd_op_ctx_free(isa_ctx[i]);
    n_isa = 0;
    return 0;
}

static void expect_close(const char *what, const float *got, const float *ref, size_t n,
                         int gemm_like)
{
    double *r = widen(ref, n);
    if (gemm_like)
        check_gemm_like(what, got, r, n, 1e-5, 1e-5, 1e-6);
    else
        check_elementwise(what, got, r, n, 1e-5, 1e-6);
    free(r);
}

/* ---- conv2d ---- */

static void conv_case(const char *what, struct isd_op_conv2d_shape s, int flags, int with_bias)
{
    int ho, wo;
    assert_int_equal(isd_op_conv2d_out_size(&s, &ho, &wo), 0);
    size_t nx = (size_t)s.n * s.c_in * s.h * s.w, nw = (size_t)s.c_out * s.c_in * s.kh * s.kw;
    size_t ny = (size_t)s.n * s.c_out * ho * wo;
    float *x = rand_array(nx, 1.0f, 1), *w = rand_array(nw, 0.05f, 2);
    float *b = with_bias ? rand_array((size_t)s.c_out, 0.5f, 3) : NULL;
    float *y_ref = rand_array(ny, 1.0f, 4), *y = copy_array(y_ref, ny);
    size_t need;
    assert_int_equal(isd_op_conv2d_workspace(fast_ctx, &s, &need), 0);
    void *ws = ws_alloc(need);
    assert_int_equal(isd_op_conv2d(ref_ctx, &s, x, w, b, y_ref, flags, ws, need),
                     0); /* same threads */
    assert_int_equal(isd_op_conv2d(fast_ctx, &s, x, w, b, y, flags, ws, need), 0);
    expect_close(what, y, y_ref, ny, 1);
    free(ws);
    free(x);
    free(w);
    free(b);
    free(y_ref);
    free(y);
}

#define CONV3(n, ci, h, w, co, st)                                                                 \
    (struct isd_op_conv2d_shape)                                                                   \
    {                                                                                              \
        n, ci, h, w, co, 3, 3, st, 1, 1, 1, 1                                                      \
    }

/* ---- Winograd F(2x2,3x3) ---- */

/* s on a ctx forced to Winograd (and on a 3-thread one) against the reference, and the default
 * ctx's choice: Winograd iff default_wino (told apart by the workspace size it asks for) */
static void wino_case(const char *what, struct isd_op_conv2d_shape s, int flags, int with_bias,
                      int default_wino)
{
    int ho, wo;
    assert_int_equal(isd_op_conv2d_out_size(&s, &ho, &wo), 0);
    size_t nx = (size_t)s.n * s.c_in * s.h * s.w, nw = (size_t)s.c_out * s.c_in * 9;
    size_t ny = (size_t)s.n * s.c_out * ho * wo;
    float *x = rand_array(nx, 1.0f, 11), *w = rand_array(nw, 0.05f, 12);
    float *b = with_bias ? rand_array((size_t)s.c_out, 0.5f, 13) : NULL;
    float *prior = rand_array(ny, 1.0f, 14), *y_ref = copy_array(prior, ny);
    float *y = xmalloc(ny * sizeof *y);
    size_t need_w, need_w3, need_i, need_d;
    assert_int_equal(isd_op_conv2d_workspace(wino_ctx, &s, &need_w), 0);
    assert_int_equal(isd_op_conv2d_workspace(wino3_ctx, &s, &need_w3), 0);
    assert_int_equal(isd_op_conv2d_workspace(im2col_ctx, &s, &need_i), 0);
    assert_int_equal(isd_op_conv2d_workspace(fast_ctx, &s, &need_d), 0);
    assert_true(need_w != need_i);
    assert_int_equal(need_d, default_wino ? need_w : need_i);
    size_t need = need_w > need_w3 ? need_w : need_w3;
    need = need > need_i ? need : need_i;
    void *ws = ws_alloc(need);
    assert_int_equal(isd_op_conv2d(ref_ctx, &s, x, w, b, y_ref, flags, ws, need), 0);
    struct isd_op_ctx *ctxs[] = {wino_ctx, wino3_ctx, fast_ctx};
    const char *names[] = {"winograd", "winograd 3 threads", "default"};
    for (int i = 0; i < 3; i++) {
        char label[160];
        snprintf(label, sizeof label, "%s %s", what, names[i]);
        memcpy(y, prior, ny * sizeof *y);
        assert_int_equal(isd_op_conv2d(ctxs[i], &s, x, w, b, y, flags, ws, need), 0);
        expect_close(label, y, y_ref, ny, 1);
    }
    /* a workspace one byte short of Winograd's is refused */
    assert_int_equal(isd_op_conv2d(wino_ctx, &s, x, w, b, y, flags, ws, need_w - 1),
                     ISD_ENG_EINVAL);
    free(ws);
    free(x);
    free(w);
    free(b);
    free(prior);
    free(y_ref);
    free(y);
}

static void conv_winograd_threshold(void **state)
{
    (void)state; /* default: Winograd from 256 output pixels (n*h*w) and 32 input channels on */
    wino_case("wino 48->40 @16x16", CONV3(1, 48, 16, 16, 40, 1), 0, 1, 1);
    wino_case("wino 48->40 @15x17 acc no bias", CONV3(1, 48, 15, 17, 40, 1), ISD_OP_ACCUMULATE, 0,
              0);
    wino_case("wino 48->40 @8x8 batch 4", CONV3(4, 48, 8, 8, 40, 1), 0, 1, 1);
    wino_case("wino 32->24 @23x23 acc", CONV3(1, 32, 23, 23, 24, 1), ISD_OP_ACCUMULATE, 1, 1);
    wino_case("wino 31->16 @40x40", CONV3(1, 31, 40, 40, 16, 1), 0, 1, 0);
    wino_case("wino 24->40 @7x9 batch 2", CONV3(2, 24, 7, 9, 40, 1), 0, 1, 0);
}

static void conv_winograd_shapes(void **state)
{
    (void)state;
    /* UNet-like K = 2880; few tiles per worker (c_out split over the workers) */
    wino_case("wino 320->24 @32x32 batch 2", CONV3(2, 320, 32, 32, 24, 1), 0, 1, 1);
    wino_case("wino 320->64 @8x7 batch 2 acc", CONV3(2, 320, 8, 7, 64, 1), ISD_OP_ACCUMULATE, 1, 0);
    wino_case("wino 64->40 @16x16 batch 2 no bias", CONV3(2, 64, 16, 16, 40, 1), 0, 0, 1);
    /* several blocks per worker, blocks across the two images, odd sizes */
    wino_case("wino 16->8 @75x77 batch 2 acc", CONV3(2, 16, 75, 77, 8, 1), ISD_OP_ACCUMULATE, 1, 0);
    wino_case("wino 40->8 @75x77 batch 2", CONV3(2, 40, 75, 77, 8, 1), 0, 0, 1);
    /* a tile row of 151 tiles: cut into runs of at most 128 */
    wino_case("wino 8->4 @5x301 acc", CONV3(1, 8, 5, 301, 4, 1), ISD_OP_ACCUMULATE, 1, 0);
    /* 1-pixel-wide and tiny images: every tile is an edge tile */
    wino_case("wino 8->4 @1x5", CONV3(1, 8, 1, 5, 4, 1), 0, 1, 0);
    wino_case("wino 8->4 @2x2 batch 2 acc", CONV3(2, 8, 2, 2, 4, 1), ISD_OP_ACCUMULATE, 1, 0);
}

static void conv_unet_level0(void **state)
{
    (void)state; /* 320 input channels at 64x64 (K = 2880), several row tiles */
    conv_case("conv 320->32 3x3 @64x64", CONV3(1, 320, 64, 64, 32, 1), 0, 1);
}

static void conv_many_outputs(void **state)
{
    (void)state; /* c_out 320 at 32x32 */
    conv_case("conv 64->320 3x3 @32x32", CONV3(1, 64, 32, 32, 320, 1), 0, 1);
}

static void conv_small_image_split_cout(void **state)
{
    (void)state; /* 8x8 with K = 11520: one tile, c_out split between workers (80 = 5 x 16) */
    conv_case("conv 1280->80 3x3 @8x8", CONV3(1, 1280, 8, 8, 80, 1), 0, 1);
}

static void conv_odd_accumulate(void **state)
{
    (void)state; /* 13x17, batch 2, y += conv(x) + b */
    conv_case("conv 64->48 3x3 @13x17 accumulate", CONV3(2, 64, 13, 17, 48, 1), ISD_OP_ACCUMULATE,
              1);
    conv_case("conv 64->48 3x3 @13x17 accumulate no bias", CONV3(2, 64, 13, 17, 48, 1),
              ISD_OP_ACCUMULATE, 0);
}

static void conv_stride2(void **state)
{
    (void)state; /* UNet downsample: symmetric pad 1, stride 2 */
    conv_case("conv 320->32 3x3 s2 @64x64", CONV3(1, 320, 64, 64, 32, 2), 0, 1);
    conv_case("conv 24->16 3x3 s2 @13x17", CONV3(1, 24, 13, 17, 16, 2), 0, 1);
}

static void conv_vae_down(void **state)
{
    (void)state; /* VAE downsample: pad (0,1,0,1), stride 2 */
    struct isd_op_conv2d_shape s = {1, 128, 128, 128, 16, 3, 3, 2, 0, 0, 1, 1};
    conv_case("conv 128->16 3x3 s2 pad0011 @128x128", s, 0, 1);
    struct isd_op_conv2d_shape odd = {2, 8, 15, 9, 8, 3, 3, 2, 0, 0, 1, 1};
    conv_case("conv 8->8 3x3 s2 pad0011 @15x9", odd, 0, 1);
}

static void conv_1x1_direct(void **state)
{
    (void)state;
    struct isd_op_conv2d_shape s = {1, 640, 64, 64, 32, 1, 1, 1, 0, 0, 0, 0};
    conv_case("conv 640->32 1x1 @64x64", s, 0, 1);
    struct isd_op_conv2d_shape small = {1, 2560, 8, 8, 64, 1, 1, 1, 0, 0, 0, 0};
    conv_case("conv 2560->64 1x1 @8x8 (c_out split)", small, 0, 1);
    struct isd_op_conv2d_shape acc = {2, 40, 13, 17, 24, 1, 1, 1, 0, 0, 0, 0};
    conv_case("conv 40->24 1x1 @13x17 accumulate", acc, ISD_OP_ACCUMULATE, 1);
}

static void conv_large_image(void **state)
{
    (void)state; /* VAE-like: many row tiles, c_out 3 (conv_out), batch 2 */
    conv_case("conv 16->16 3x3 @256x256", CONV3(1, 16, 256, 256, 16, 1), 0, 1);
    conv_case("conv 32->3 3x3 @64x64", CONV3(1, 32, 64, 64, 3, 1), 0, 1);
    conv_case("conv 32->32 3x3 @24x24 batch 2", CONV3(2, 32, 24, 24, 32, 1), 0, 1);
}

/* ---- attention ---- */

/* q/k/v live in buffers of rows x ld (ld >= heads*d); checks every ISA */
static void attn_case(const char *what, struct isd_op_attn_shape s)
{
    int width = s.heads * s.d_head;
    int ldq = s.ldq ? s.ldq : width, ldk = s.ldk ? s.ldk : width, ldv = s.ldv ? s.ldv : width;
    size_t nq = (size_t)s.batch * s.lq * ldq, nk = (size_t)s.batch * s.lk * ldk;
    size_t nv = (size_t)s.batch * s.lk * ldv, no = (size_t)s.batch * s.lq * width;
    float *q = rand_array(nq, 2.0f, 11), *k = rand_array(nk, 2.0f, 12);
    float *v = rand_array(nv, 1.0f, 13);
    float *o_ref = xmalloc(no * sizeof *o_ref), *o = xmalloc(no * sizeof *o);
    size_t need;
    assert_int_equal(isd_op_attention_workspace(ref_ctx, &s, &need), 0);
    void *ws = ws_alloc(need);
    assert_int_equal(isd_op_attention(ref_ctx, &s, q, k, v, o_ref, ws, need), 0);
    free(ws);
    for (int i = 0; i < n_isa; i++) {
        char label[160];
        snprintf(label, sizeof label, "%s [%s]", what, isd_op_impl_name(isa_ctx[i]));
        assert_int_equal(isd_op_attention_workspace(isa_ctx[i], &s, &need), 0);
        ws = ws_alloc(need);
        memset(o, 0xff, no * sizeof *o);
        assert_int_equal(isd_op_attention(isa_ctx[i], &s, q, k, v, o, ws, need), 0);
        expect_close(label, o, o_ref, no, 1);
        free(ws);
    }
    free(q);
    free(k);
    free(v);
    free(o_ref);
    free(o);
}

static void attention_self_4096(void **state)
{
    (void)state; /* UNet level 0 self-attention, one head of the eight */
    attn_case(
        "attention 1h 4096x4096 d40",
        (struct isd_op_attn_shape){.batch = 1, .heads = 1, .lq = 4096, .lk = 4096, .d_head = 40});
}

static void attention_cross_77(void **state)
{
    (void)state;
    attn_case(
        "attention 8h 4096x77 d40",
        (struct isd_op_attn_shape){.batch = 1, .heads = 8, .lq = 4096, .lk = 77, .d_head = 40});
}

static void attention_causal_blocks(void **state)
{
    (void)state; /* causal over several 128-query and 512-key blocks, odd length */
    attn_case("attention 2h 1100x1100 d32 causal",
              (struct isd_op_attn_shape){
                  .batch = 1, .heads = 2, .lq = 1100, .lk = 1100, .d_head = 32, .causal = 1});
    attn_case("attention 1h 700x300 d16 causal (lq > lk)",
              (struct isd_op_attn_shape){
                  .batch = 1, .heads = 1, .lq = 700, .lk = 300, .d_head = 16, .causal = 1});
}

static void attention_clip_fused_qkv(void **state)
{
    (void)state; /* CLIP: 12 heads x 64, causal, q/k/v slices of one [77][3*768] buffer */
    struct isd_op_attn_shape s = {.batch = 2,
                                  .heads = 12,
                                  .lq = 77,
                                  .lk = 77,
                                  .d_head = 64,
                                  .ldq = 3 * 768,
                                  .ldk = 3 * 768,
                                  .ldv = 3 * 768,
                                  .causal = 1};
    size_t n = (size_t)2 * 77 * 3 * 768, no = (size_t)2 * 77 * 768;
    float *qkv = rand_array(n, 2.0f, 21);
    float *o_ref = xmalloc(no * sizeof *o_ref), *o = xmalloc(no * sizeof *o);
    size_t need;
    assert_int_equal(isd_op_attention_workspace(ref_ctx, &s, &need), 0);
    void *ws = ws_alloc(need);
    assert_int_equal(isd_op_attention(ref_ctx, &s, qkv, qkv + 768, qkv + 1536, o_ref, ws, need), 0);
    free(ws);
    assert_int_equal(isd_op_attention_workspace(fast_ctx, &s, &need), 0);
    ws = ws_alloc(need);
    assert_int_equal(isd_op_attention(fast_ctx, &s, qkv, qkv + 768, qkv + 1536, o, ws, need), 0);
    expect_close("attention clip fused qkv", o, o_ref, no, 1);
    free(ws);
    free(qkv);
    free(o_ref);
    free(o);
}

static void attention_wide_heads(void **state)
{
    (void)state; /* VAE-like wide heads and SD2's 64-wide heads, Lq != Lk */
    attn_case(
        "attention 2h 600x600 d160",
        (struct isd_op_attn_shape){.batch = 1, .heads = 2, .lq = 600, .lk = 600, .d_head = 160});
    attn_case(
        "attention 5h 1024x300 d64 batch 2",
        (struct isd_op_attn_shape){.batch = 2, .heads = 5, .lq = 1024, .lk = 300, .d_head = 64});
}

/* ---- GEMMs ---- */

static void linear_case(const char *what, int rows, int in, int out, int with_bias, int flags)
{
    float *x = rand_array((size_t)rows * in, 1.0f, 31), *w = rand_array((size_t)out * in, 0.1f, 32);
    float *b = with_bias ? rand_array((size_t)out, 0.5f, 33) : NULL;
    float *y_ref = rand_array((size_t)rows * out, 1.0f, 34),
          *y = copy_array(y_ref, (size_t)rows * out);
    assert_int_equal(isd_op_linear(ref_ctx, rows, in, out, x, w, b, y_ref, flags), 0);
    assert_int_equal(isd_op_linear(fast_ctx, rows, in, out, x, w, b, y, flags), 0);
    expect_close(what, y, y_ref, (size_t)rows * out, 1);
    free(x);
    free(w);
    free(b);
    free(y_ref);
    free(y);
}

static void linear_shapes(void **state)
{
    (void)state;
    linear_case("linear 4096 x 320->320", 4096, 320, 320, 1, 0);
    linear_case("linear 4096 x 320->2560 (GEGLU proj)", 4096, 320, 2560, 1, 0);
    linear_case("linear 77 x 768->320 no bias (cross K/V)", 77, 768, 320, 0, 0);
    linear_case("linear 1000 x 333->77 accumulate", 1000, 333, 77, 1, ISD_OP_ACCUMULATE);
    linear_case("linear 77 x 1024->4096 accumulate no bias", 77, 1024, 4096, 0, ISD_OP_ACCUMULATE);
}

static void gemm_batched_transposes(void **state)
{
    (void)state;
    int batch = 3, m = 300, n = 200, k = 100;
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 1;
            size_t sa = (size_t)(ta ? k : m) * lda, sb = (size_t)(tb ? n : k) * ldb;
            size_t sc = (size_t)m * ldc;
            float *a = rand_array(sa * batch, 1.0f, 41), *b = rand_array(sb * batch, 1.0f, 42);
            float *c_ref = rand_array(sc * batch, 1.0f, 43), *c = copy_array(c_ref, sc * batch);
            assert_int_equal(isd_op_gemm_batched(ref_ctx, batch, ta, tb, m, n, k, 0.75f, a, lda, sa,
                                                 b, ldb, sb, -0.5f, c_ref, ldc, sc),
                             0);
            assert_int_equal(isd_op_gemm_batched(fast_ctx, batch, ta, tb, m, n, k, 0.75f, a, lda,
                                                 sa, b, ldb, sb, -0.5f, c, ldc, sc),
                             0);
            char label[64];
            snprintf(label, sizeof label, "gemm batched trans %d%d", ta, tb);
            expect_close(label, c, c_ref, sc * batch, 1);
            free(a);
            free(b);
            free(c_ref);
            free(c);
        }
    }
    /* one big single GEMM, split between workers */
    float *a = rand_array(1024 * 512, 1.0f, 44), *b = rand_array(512 * 700, 1.0f, 45);
    float *c_ref = xmalloc(1024 * 700 * sizeof(float)), *c = xmalloc(1024 * 700 * sizeof(float));
    assert_int_equal(
        isd_op_gemm(ref_ctx, 0, 0, 1024, 700, 512, 1.0f, a, 512, b, 700, 0.0f, c_ref, 700), 0);
    assert_int_equal(
        isd_op_gemm(fast_ctx, 0, 0, 1024, 700, 512, 1.0f, a, 512, b, 700, 0.0f, c, 700), 0);
    expect_close("gemm 1024x700x512", c, c_ref, 1024 * 700, 1);
    free(a);
    free(b);
    free(c_ref);
    free(c);
}

/* ---- norms, softmax, activations ---- */

static void group_norm_case(const char *what, int n, int c, int hw, float eps, float offset,
                            int flags)
{
    size_t total = (size_t)n * c * hw;
    float *x = rand_array(total, 2.0f, 51);
    for (size_t i = 0; i < total; i++)
        x[i] += offset;
    float *g = rand_array((size_t)c, 0.2f, 52), *b = rand_array((size_t)c, 0.2f, 53);
    for (int i = 0; i < c; i++)
        g[i] += 1.0f;
    float *y_ref = xmalloc(total * sizeof *y_ref), *y = xmalloc(total * sizeof *y);
    assert_int_equal(isd_op_group_norm(ref_ctx, n, c, hw, 32, eps, x, g, b, y_ref, flags), 0);
    for (int i = 0; i < n_isa; i++) {
        char label[160];
        snprintf(label, sizeof label, "%s [%s]", what, isd_op_impl_name(isa_ctx[i]));
        assert_int_equal(isd_op_group_norm(isa_ctx[i], n, c, hw, 32, eps, x, g, b, y, flags), 0);
        expect_close(label, y, y_ref, total, 1);
    }
    free(x);
    free(g);
    free(b);
    free(y_ref);
    free(y);
}

static void group_norm_shapes(void **state)
{
    (void)state;
    group_norm_case("group_norm 320 @64x64 eps 1e-5", 1, 320, 4096, 1e-5f, 0.0f, 0);
    group_norm_case("group_norm+silu 320 @64x64 eps 1e-5", 1, 320, 4096, 1e-5f, 0.0f, ISD_OP_SILU);
    group_norm_case("group_norm 640 @32x32 eps 1e-6 offset 20", 2, 640, 1024, 1e-6f, 20.0f, 0);
    group_norm_case("group_norm+silu 64 @13x17 eps 1e-6", 2, 64, 13 * 17, 1e-6f, 0.5f, ISD_OP_SILU);
    group_norm_case("group_norm+silu 128 @128x128 eps 1e-6 (VAE)", 1, 128, 128 * 128, 1e-6f, -3.0f,
                    ISD_OP_SILU);
}

static void layer_norm_softmax(void **state)
{
    (void)state;
    static const int shapes[][2] = {{4096, 320}, {77, 768}, {77, 1024}, {1000, 1283}};
    for (int s = 0; s < 4; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t total = (size_t)rows * cols;
        float *x = rand_array(total, 4.0f, 61), *g = rand_array((size_t)cols, 0.2f, 62);
        float *b = rand_array((size_t)cols, 0.2f, 63);
        for (size_t i = 0; i < total; i++)
            x[i] += 1.5f;
        float *y_ref = xmalloc(total * sizeof *y_ref), *y = xmalloc(total * sizeof *y);
        assert_int_equal(isd_op_layer_norm(ref_ctx, rows, cols, 1e-5f, x, g, b, y_ref), 0);
        for (int i = 0; i < n_isa; i++) {
            assert_int_equal(isd_op_layer_norm(isa_ctx[i], rows, cols, 1e-5f, x, g, b, y), 0);
            expect_close("layer_norm", y, y_ref, total, 1);
        }
        assert_int_equal(isd_op_softmax(ref_ctx, rows, cols, x, y_ref), 0);
        for (int i = 0; i < n_isa; i++) {
            assert_int_equal(isd_op_softmax(isa_ctx[i], rows, cols, x, y), 0);
            expect_close("softmax", y, y_ref, total, 1);
        }
        free(x);
        free(g);
        free(b);
        free(y_ref);
        free(y);
    }
}

static void activations_large(void **state)
{
    (void)state;
    size_t n = (size_t)4096 * 1280 + 7;
    float *x = rand_array(n, 12.0f, 71);
    float *y_ref = xmalloc(n * sizeof *y_ref), *y = xmalloc(n * sizeof *y);
    static const char *names[] = {"silu", "gelu", "quick_gelu", "relu", "tanh"};
    int (*fns[])(struct isd_op_ctx *, size_t, const float *,
                 float *) = {isd_op_silu, isd_op_gelu, isd_op_quick_gelu, isd_op_relu, isd_op_tanh};
    for (int f = 0; f < 5; f++) {
        assert_int_equal(fns[f](ref_ctx, n, x, y_ref), 0);
        for (int i = 0; i < n_isa; i++) {
            char label[64];
            snprintf(label, sizeof label, "%s [%s]", names[f], isd_op_impl_name(isa_ctx[i]));
            assert_int_equal(fns[f](isa_ctx[i], n, x, y), 0);
            expect_close(label, y, y_ref, n, 0);
        }
    }
    /* GEGLU on [4096][2*1280] */
    assert_int_equal(isd_op_geglu(ref_ctx, 2048, 1280, x, y_ref), 0);
    for (int i = 0; i < n_isa; i++) {
        assert_int_equal(isd_op_geglu(isa_ctx[i], 2048, 1280, x, y), 0);
        expect_close("geglu", y, y_ref, (size_t)2048 * 1280, 0);
    }
    free(x);
    free(y_ref);
    free(y);
}

static void arithmetic_large(void **state)
{
    (void)state;
    size_t n = (size_t)2 * 320 * 4096;
    float *a = rand_array(n, 3.0f, 81), *b = rand_array(n, 3.0f, 82);
    float *bias = rand_array(2 * 320, 1.0f, 83);
    float *y_ref = xmalloc(n * sizeof *y_ref), *y = xmalloc(n * sizeof *y);
    assert_int_equal(isd_op_add(ref_ctx, n, a, b, y_ref), 0);
    assert_int_equal(isd_op_add(fast_ctx, n, a, b, y), 0);
    expect_close("add", y, y_ref, n, 0);
    assert_int_equal(isd_op_mul(ref_ctx, n, a, b, y_ref), 0);
    assert_int_equal(isd_op_mul(fast_ctx, n, a, b, y), 0);
    expect_close("mul", y, y_ref, n, 0);
    assert_int_equal(isd_op_scale(ref_ctx, n, a, 0.18215f, y_ref), 0);
    assert_int_equal(isd_op_scale(fast_ctx, n, a, 0.18215f, y), 0);
    expect_close("scale", y, y_ref, n, 0);
    memcpy(y_ref, b, n * sizeof *y);
    memcpy(y, b, n * sizeof *y);
    assert_int_equal(isd_op_axpby(ref_ctx, n, -1.25f, a, 0.5f, y_ref), 0);
    assert_int_equal(isd_op_axpby(fast_ctx, n, -1.25f, a, 0.5f, y), 0);
    expect_close("axpby", y, y_ref, n, 0);
    /* channel bias, per-(batch, channel) embedding, row bias on tokens */
    assert_int_equal(isd_op_add_bias(ref_ctx, 2, 320, 4096, a, bias, 0, y_ref), 0);
    assert_int_equal(isd_op_add_bias(fast_ctx, 2, 320, 4096, a, bias, 0, y), 0);
    expect_close("add_bias channel", y, y_ref, n, 0);
    assert_int_equal(isd_op_add_bias(ref_ctx, 2, 320, 4096, a, bias, 320, y_ref), 0);
    assert_int_equal(isd_op_add_bias(fast_ctx, 2, 320, 4096, a, bias, 320, y), 0);
    expect_close("add_bias emb", y, y_ref, n, 0);
    assert_int_equal(isd_op_add_bias(ref_ctx, 8192, 320, 1, a, bias, 0, y_ref), 0);
    assert_int_equal(isd_op_add_bias(fast_ctx, 8192, 320, 1, a, bias, 0, y), 0);
    expect_close("add_bias rows", y, y_ref, n, 0);
    free(a);
    free(b);
    free(bias);
    free(y_ref);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_unet_level0),
        cmocka_unit_test(conv_many_outputs),
        cmocka_unit_test(conv_small_image_split_cout),
        cmocka_unit_test(conv_odd_accumulate),
        cmocka_unit_test(conv_stride2),
        cmocka_unit_test(conv_vae_down),
        cmocka_unit_test(conv_1x1_direct),
        cmocka_unit_test(conv_large_image),
        cmocka_unit_test(conv_winograd_threshold),
        cmocka_unit_test(conv_winograd_shapes),
        cmocka_unit_test(attention_self_4096),
        cmocka_unit_test(attention_cross_77),
        cmocka_unit_test(attention_causal_blocks),
        cmocka_unit_test(attention_clip_fused_qkv),
        cmocka_unit_test(attention_wide_heads),
        cmocka_unit_test(linear_shapes),
        cmocka_unit_test(gemm_batched_transposes),
        cmocka_unit_test(group_norm_shapes),
        cmocka_unit_test(layer_norm_softmax),
        cmocka_unit_test(activations_large),
        cmocka_unit_test(arithmetic_large),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
