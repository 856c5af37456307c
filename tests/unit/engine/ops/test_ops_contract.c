/*
 * engine/ops contract: (1) ops run with exactly the workspace they report (allocated to the
 * byte, also misaligned, so ASan flags any overrun) and call malloc zero times; (2) bad
 * arguments fail with ISD_ENG_EINVAL and a message, never a crash; (3) results with 1, 2 and 3
 * threads agree: bitwise for ops that never split a reduction (attention, norms, softmax,
 * element-wise), within 1e-6 relative L2 for the sgemm-partitioned ones (conv, linear, gemm).
 *
 * Allocation counting: under ASan/TSan through the sanitizer's malloc hook, otherwise by
 * interposing malloc & co. in this binary (glibc's __libc_* functions do the work). Every
 * thread's allocations count, so OpenBLAS's or the pool's would too.
 */
#include "ops_test.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>

static atomic_long n_allocs;
static atomic_int counting;

static void count_alloc(void)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&n_allocs, 1);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
void __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                               void (*free_hook)(const volatile void *));

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    count_alloc();
}

static void on_free(const volatile void *p)
{
    (void)p;
}

static void install_alloc_counter(void)
{
    static int done;
    if (!done)
        __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    done = 1;
}
#else
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);
void __libc_free(void *p);

void *malloc(size_t n)
{
    count_alloc();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    count_alloc();
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    count_alloc();
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}

void *memalign(size_t align, size_t n)
{
    count_alloc();
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count_alloc();
    return __libc_memalign(align, n);
}

int posix_memalign(void **p, size_t align, size_t n)
{
    count_alloc();
    *p = __libc_memalign(align, n);
    return *p ? 0 : ENOMEM;
}

static void install_alloc_counter(void)
{
}
#endif

static void count_start(void)
{
    install_alloc_counter();
    atomic_store(&n_allocs, 0);
    atomic_store(&counting, 1);
}

static long count_stop(void)
{
    atomic_store(&counting, 0);
    return atomic_load(&n_allocs);
}

/* ---- (1) workspace and allocations ---- */

static const struct isd_op_conv2d_shape conv_shapes[] = {
    {1, 64, 64, 64, 32, 3, 3, 1, 1, 1, 1, 1}, /* several row tiles */
    {1, 320, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1},  /* c_out split */
    {2, 16, 13, 17, 24, 3, 3, 2, 1, 1, 1, 1}, /* stride 2, odd */
    {1, 8, 31, 20, 8, 3, 3, 2, 0, 0, 1, 1},   /* VAE pad */
    {1, 48, 32, 32, 16, 1, 1, 1, 0, 0, 0, 0}, /* direct 1x1: no workspace */
    {1, 8, 128, 128, 3, 3, 3, 1, 1, 1, 1, 1}, /* many tiles, c_out 3 */
    {1, 3, 5, 5, 4, 5, 5, 1, 2, 2, 2, 2},     /* 5x5 kernel */
};

static void run_conv_exact_ws(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s,
                              int misalign)
{
    int ho, wo;
    assert_int_equal(isd_op_conv2d_out_size(s, &ho, &wo), 0);
    size_t nx = (size_t)s->n * s->c_in * s->h * s->w,
           nw = (size_t)s->c_out * s->c_in * s->kh * s->kw;
    size_t ny = (size_t)s->n * s->c_out * ho * wo, need;
    float *x = rand_array(nx, 1.0f, 1), *w = rand_array(nw, 0.1f, 2);
    float *b = rand_array((size_t)s->c_out, 0.1f, 3), *y = xmalloc(ny * sizeof *y);
    assert_int_equal(isd_op_conv2d_workspace(ctx, s, &need), 0);
    char *buf = xmalloc(need + (size_t)misalign);
    void *ws = buf + misalign;
    assert_int_equal(isd_op_conv2d(ctx, s, x, w, b, y, 0, ws, need), 0); /* warm-up */
    count_start();
    int rc = isd_op_conv2d(ctx, s, x, w, b, y, ISD_OP_ACCUMULATE, ws, need);
    long allocs = count_stop();
    assert_int_equal(rc, 0);
    if (allocs != 0)
        fail_msg("conv %dx%d c_in %d c_out %d: %ld allocations", s->kh, s->kw, s->c_in, s->c_out,
                 allocs);
    if (need > 0) /* one byte short is refused */
        assert_int_equal(isd_op_conv2d(ctx, s, x, w, b, y, 0, ws, need - 1), ISD_ENG_EINVAL);
    free(buf);
    free(x);
    free(w);
    free(b);
    free(y);
}

static const struct isd_op_attn_shape attn_shapes[] = {
    {.batch = 1, .heads = 2, .lq = 700, .lk = 600, .d_head = 40},
    {.batch = 2, .heads = 3, .lq = 77, .lk = 77, .d_head = 64, .causal = 1},
    {.batch = 1, .heads = 4, .lq = 300, .lk = 77, .d_head = 24},
    {.batch = 1, .heads = 1, .lq = 5, .lk = 1030, .d_head = 8, .causal = 0},
};

static void run_attn_exact_ws(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s,
                              int misalign)
{
    size_t width = (size_t)s->heads * s->d_head, need;
    float *q = rand_array(s->batch * s->lq * width, 1.0f, 4);
    float *k = rand_array(s->batch * s->lk * width, 1.0f, 5);
    float *v = rand_array(s->batch * s->lk * width, 1.0f, 6);
    float *o = xmalloc(s->batch * s->lq * width * sizeof *o);
    assert_int_equal(isd_op_attention_workspace(ctx, s, &need), 0);
    assert_true(need > 0);
    char *buf = xmalloc(need + (size_t)misalign);
    void *ws = buf + misalign;
    assert_int_equal(isd_op_attention(ctx, s, q, k, v, o, ws, need), 0);
    count_start();
    int rc = isd_op_attention(ctx, s, q, k, v, o, ws, need);
    long allocs = count_stop();
    assert_int_equal(rc, 0);
    if (allocs != 0)
        fail_msg("attention %dx%d: %ld allocations", s->lq, s->lk, allocs);
    assert_int_equal(isd_op_attention(ctx, s, q, k, v, o, ws, need - 1), ISD_ENG_EINVAL);
    assert_non_null(strstr(isd_op_error(ctx)->msg, "workspace"));
    free(buf);
    free(q);
    free(k);
    free(v);
    free(o);
}

static void exact_workspace_no_allocs(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) { /* fast, then reference */
        for (int threads = 1; threads <= 3; threads += 2) {
            struct isd_op_ctx *ctx = ctx_new(threads, mode, 0);
            for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++)
                for (int mis = 0; mis <= 4; mis += 4)
                    run_conv_exact_ws(ctx, &conv_shapes[i], mis);
            for (size_t i = 0; i < sizeof attn_shapes / sizeof attn_shapes[0]; i++)
                for (int mis = 0; mis <= 12; mis += 12)
                    run_attn_exact_ws(ctx, &attn_shapes[i], mis);
            isd_op_ctx_free(ctx);
        }
    }
}

/* every op without a workspace, on a warm context, allocates nothing */
static void other_ops_no_allocs(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        struct isd_op_ctx *ctx = ctx_new(2, mode, 0);
        size_t n = 64 * 1024;
        float *a = rand_array(n, 2.0f, 7), *b = rand_array(n, 2.0f, 8), *y = xmalloc(2 * n * 4);
        int32_t ids[4] = {1, 2, 3, 0};
        for (int pass = 0; pass < 2; pass++) { /* pass 0 warms up, pass 1 counts */
            if (pass)
                count_start();
            int rc = 0;
            rc |= isd_op_gemm(ctx, 0, 1, 128, 128, 256, 1.0f, a, 256, b, 256, 0.0f, y, 128);
            /* small NN with n % 16 in [1, 8], k >= 32: OpenBLAS's small kernel would malloc */
            rc |= isd_op_gemm(ctx, 0, 0, 20, 17, 40, 1.0f, a, 40, b, 17, 0.5f, y, 17);
            rc |= isd_op_gemm_batched(ctx, 4, 1, 0, 64, 32, 16, 1.0f, a, 64, 1024, b, 32, 512, 0.5f,
                                      y, 32, 2048);
            rc |= isd_op_linear(ctx, 200, 160, 96, a, b, a + 50000, y, 0);
            rc |= isd_op_group_norm(ctx, 2, 64, 500, 32, 1e-6f, a, b, b + 64, y, ISD_OP_SILU);
            rc |= isd_op_layer_norm(ctx, 200, 320, 1e-5f, a, b, b + 320, y);
            rc |= isd_op_softmax(ctx, 200, 320, a, y);
            rc |= isd_op_silu(ctx, n, a, y);
            rc |= isd_op_gelu(ctx, n, a, y);
            rc |= isd_op_quick_gelu(ctx, n, a, y);
            rc |= isd_op_relu(ctx, n, a, y);
            rc |= isd_op_tanh(ctx, n, a, y);
            rc |= isd_op_geglu(ctx, 100, 320, a, y);
            rc |= isd_op_add(ctx, n, a, b, y);
            rc |= isd_op_mul(ctx, n, a, b, y);
            rc |= isd_op_scale(ctx, n, a, 3.0f, y);
            rc |= isd_op_axpby(ctx, n, 1.0f, a, 2.0f, y);
            rc |= isd_op_add_bias(ctx, 2, 64, 500, a, b, 64, y);
            rc |= isd_op_add_bias(ctx, 500, 64, 1, a, b, 0, y);
            rc |= isd_op_concat_channels(ctx, 2, 16, 8, 100, a, b, y);
            rc |= isd_op_upsample_nearest2x(ctx, 16, 30, 40, a, y);
            rc |= isd_op_transpose(ctx, 2, 100, 300, a, y);
            rc |= isd_op_timestep_embedding(ctx, 2, a, 320, 10000.0f, y);
            rc |= isd_op_embedding(ctx, 4, 64, ids, a, 10, b, y);
            long allocs = pass ? count_stop() : 0;
            assert_int_equal(rc, 0);
            if (allocs != 0)
                fail_msg("%s: %ld allocations in the element-wise/GEMM ops", isd_op_impl_name(ctx),
                         allocs);
        }
        free(a);
        free(b);
        free(y);
        isd_op_ctx_free(ctx);
    }
}

/* ---- (2) errors ---- */

static void expect_einval(struct isd_op_ctx *ctx, int rc, const char *what)
{
    if (rc != ISD_ENG_EINVAL)
        fail_msg("%s: returned %d, expected EINVAL", what, rc);
    assert_int_equal(isd_op_error(ctx)->code, ISD_ENG_EINVAL);
    assert_true(strlen(isd_op_error(ctx)->msg) > 0);
}

static void bad_arguments(void **state)
{
    (void)state;
    struct isd_op_ctx *ctx = ctx_new(2, 0, 0);
    float *buf = rand_array(4096, 1.0f, 9), *out = xmalloc(4096 * sizeof(float));
    char ws[256];
    size_t bytes;

    /* conv shapes */
    struct isd_op_conv2d_shape s = {1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1};
    struct isd_op_conv2d_shape bad = s;
    bad.c_in = 0;
    expect_einval(ctx, isd_op_conv2d_workspace(ctx, &bad, &bytes), "conv c_in 0");
    bad = s;
    bad.pad_left = -1;
    expect_einval(ctx, isd_op_conv2d(ctx, &bad, buf, buf, NULL, out, 0, ws, 256), "conv pad -1");
    bad = s;
    bad.h = 1;
    bad.pad_top = bad.pad_bottom = 0; /* kernel taller than the padded input */
    expect_einval(ctx, isd_op_conv2d(ctx, &bad, buf, buf, NULL, out, 0, ws, 256), "conv h < kh");
    bad = s;
    bad.stride = 0;
    assert_int_equal(isd_op_conv2d_out_size(&bad, NULL, NULL), ISD_ENG_EINVAL);
    expect_einval(ctx, isd_op_conv2d_workspace(ctx, &bad, &bytes), "conv stride 0");
    bad = s;
    bad.n = bad.c_in = bad.h = bad.w = 1 << 20; /* size overflows: refused before any access */
    expect_einval(ctx, isd_op_conv2d(ctx, &bad, buf, buf, NULL, out, 0, ws, 256), "conv overflow");
    expect_einval(ctx, isd_op_conv2d(ctx, &s, buf, buf, NULL, buf + 10, 0, ws, 256),
                  "conv y overlaps x");
    expect_einval(ctx, isd_op_conv2d(ctx, &s, NULL, buf, NULL, out, 0, ws, 256), "conv x NULL");
    expect_einval(ctx, isd_op_conv2d(ctx, &s, buf, buf, NULL, out, 0, NULL, 0), "conv ws NULL");

    /* attention */
    struct isd_op_attn_shape a = {.batch = 1, .heads = 2, .lq = 8, .lk = 8, .d_head = 4};
    struct isd_op_attn_shape ab = a;
    ab.ldq = 7; /* < heads * d_head */
    expect_einval(ctx, isd_op_attention_workspace(ctx, &ab, &bytes), "attention ldq < width");
    ab = a;
    ab.scale = INFINITY;
    expect_einval(ctx, isd_op_attention_workspace(ctx, &ab, &bytes), "attention scale inf");
    ab = a;
    ab.heads = 1 << 16;
    ab.d_head = 1 << 16;
    expect_einval(ctx, isd_op_attention_workspace(ctx, &ab, &bytes), "attention width overflow");
    assert_int_equal(isd_op_attention_workspace(ctx, &a, &bytes), 0);
    float *wsp = xmalloc(bytes);
    expect_einval(ctx, isd_op_attention(ctx, &a, buf, buf, buf, buf + 32, wsp, bytes),
                  "attention o overlaps q");
    expect_einval(ctx, isd_op_attention(ctx, &a, buf, buf, buf, out, buf, bytes),
                  "attention workspace overlaps q");
    assert_int_equal(isd_op_attention(ctx, &a, buf, buf + 100, buf + 200, out, wsp, bytes), 0);
    free(wsp);

    /* norms, gemms, element-wise */
    expect_einval(ctx, isd_op_group_norm(ctx, 1, 48, 16, 32, 1e-5f, buf, NULL, NULL, out, 0),
                  "group_norm groups does not divide c");
    expect_einval(ctx, isd_op_group_norm(ctx, 1, 64, 16, 32, -1.0f, buf, NULL, NULL, out, 0),
                  "group_norm eps < 0");
    expect_einval(ctx, isd_op_group_norm(ctx, 1, 64, 16, 32, 1e-5f, buf, NULL, NULL, buf + 1, 0),
                  "group_norm partial overlap");
    expect_einval(ctx, isd_op_layer_norm(ctx, 0, 16, 1e-5f, buf, NULL, NULL, out),
                  "layer_norm rows 0");
    expect_einval(ctx, isd_op_layer_norm(ctx, 4, 16, NAN, buf, NULL, NULL, out),
                  "layer_norm eps NaN");
    expect_einval(ctx, isd_op_softmax(ctx, 4, -1, buf, out), "softmax cols -1");
    expect_einval(ctx, isd_op_gemm(ctx, 0, 0, 4, 4, 4, 1.0f, buf, 3, buf, 4, 0.0f, out, 4),
                  "gemm lda < k");
    expect_einval(ctx, isd_op_gemm(ctx, 0, 0, 4, 4, 4, 1.0f, buf, 4, buf, 4, 0.0f, buf + 8, 4),
                  "gemm c overlaps a");
    expect_einval(
        ctx,
        isd_op_gemm_batched(ctx, 2, 0, 0, 4, 4, 4, 1.0f, buf, 4, 16, buf, 4, 16, 0.0f, out, 4, 8),
        "gemm batched stride_c < one C");
    expect_einval(ctx, isd_op_linear(ctx, 4, 8, 8, buf, buf, NULL, buf + 4, 0),
                  "linear y overlaps x");
    expect_einval(ctx, isd_op_silu(ctx, 100, buf, buf + 1), "silu partial overlap");
    expect_einval(ctx, isd_op_gelu(ctx, 10, NULL, out), "gelu x NULL");
    assert_int_equal(isd_op_gelu(ctx, 0, NULL, NULL), 0); /* empty is fine */
    expect_einval(ctx, isd_op_geglu(ctx, 4, 8, buf, buf + 8), "geglu overlap");
    expect_einval(ctx, isd_op_add_bias(ctx, 2, 4, 0, buf, buf, 0, out), "add_bias inner 0");
    expect_einval(ctx, isd_op_concat_channels(ctx, 1, 2, 2, 4, buf, buf + 8, buf + 4),
                  "concat overlap");
    expect_einval(ctx, isd_op_upsample_nearest2x(ctx, 1, 4, 4, buf, buf + 8), "upsample overlap");
    expect_einval(ctx, isd_op_transpose(ctx, 1, 4, 4, buf, buf), "transpose in place");
    expect_einval(ctx, isd_op_timestep_embedding(ctx, 1, buf, 0, 10000.0f, out), "timestep dim 0");
    int32_t ids[3] = {1, 10, 2};
    expect_einval(ctx, isd_op_embedding(ctx, 3, 4, ids, buf, 10, NULL, out), "embedding id 10");
    assert_non_null(strstr(isd_op_error(ctx)->msg, "id 10"));
    ids[1] = -1;
    expect_einval(ctx, isd_op_embedding(ctx, 3, 4, ids, buf, 10, NULL, out), "embedding id -1");

    /* NULL context: EINVAL, nothing to record into */
    assert_int_equal(isd_op_silu(NULL, 4, buf, out), ISD_ENG_EINVAL);
    assert_int_equal(isd_op_conv2d(NULL, &s, buf, buf, NULL, out, 0, ws, 256), ISD_ENG_EINVAL);
    assert_null(isd_op_error(NULL));
    free(buf);
    free(out);
    isd_op_ctx_free(ctx);
    isd_op_ctx_free(NULL);
}

static void context_params(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    struct isd_op_ctx_params p = {.threads = -1};
    assert_null(isd_op_ctx_new(&p, &err));
    assert_int_equal(err.code, ISD_ENG_EINVAL);
    p.threads = 100000;
    assert_null(isd_op_ctx_new(&p, &err));
    p = (struct isd_op_ctx_params){.isa = 99};
    assert_null(isd_op_ctx_new(&p, &err));
    assert_int_equal(err.code, ISD_ENG_EUNSUPPORTED);

    struct isd_op_ctx *ctx = isd_op_ctx_new(NULL, &err); /* defaults: all cores */
    assert_non_null(ctx);
    assert_true(isd_op_threads(ctx) >= 1);
    assert_string_not_equal(isd_op_impl_name(ctx), "reference");
    /* the workspace follows the thread count */
    struct isd_op_conv2d_shape s = {1, 32, 64, 64, 32, 3, 3, 1, 1, 1, 1, 1};
    size_t w1, w3;
    assert_int_equal(isd_op_set_threads(ctx, 1), 0);
    assert_int_equal(isd_op_threads(ctx), 1);
    assert_int_equal(isd_op_conv2d_workspace(ctx, &s, &w1), 0);
    assert_int_equal(isd_op_set_threads(ctx, 3), 0);
    assert_int_equal(isd_op_threads(ctx), 3);
    assert_int_equal(isd_op_conv2d_workspace(ctx, &s, &w3), 0);
    assert_true(w3 > w1);
    assert_int_equal(isd_op_set_threads(ctx, -2), ISD_ENG_EINVAL);
    assert_int_equal(isd_op_threads(ctx), 3);
    isd_op_ctx_free(ctx);

    p = (struct isd_op_ctx_params){.threads = 1, .reference = 1};
    ctx = isd_op_ctx_new(&p, &err);
    assert_non_null(ctx);
    assert_string_equal(isd_op_impl_name(ctx), "reference");
    assert_int_equal(isd_op_error(ctx)->code, ISD_ENG_OK);
    isd_op_ctx_free(ctx);
}

/* ---- (3) thread counts ---- */

static int bitwise_equal(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* results for 2 and 3 threads against 1 thread */
static void threads_agree(void **state)
{
    (void)state;
    struct isd_op_ctx *ctx[3] = {ctx_new(1, 0, 0), ctx_new(2, 0, 0), ctx_new(3, 0, 0)};
    size_t n = (size_t)256 * 64 * 64;
    float *x = rand_array(n, 1.0f, 10), *w = rand_array(256 * 256 * 9, 0.05f, 11);
    float *y[3];
    for (int t = 0; t < 3; t++)
        y[t] = xmalloc(4 * n * sizeof(float));

    /* sgemm-partitioned: conv (tiles and c_out split), linear, gemm: rel L2 <= 1e-6 */
    static const struct isd_op_conv2d_shape cs[] = {
        {1, 256, 64, 64, 64, 3, 3, 1, 1, 1, 1, 1},
        {1, 256, 8, 8, 256, 3, 3, 1, 1, 1, 1, 1},
        {1, 256, 24, 40, 96, 1, 1, 1, 0, 0, 0, 0},
    };
    for (size_t c = 0; c < 3; c++) {
        int ho, wo;
        assert_int_equal(isd_op_conv2d_out_size(&cs[c], &ho, &wo), 0);
        size_t ny = (size_t)cs[c].c_out * ho * wo;
        for (int t = 0; t < 3; t++) {
            size_t need;
            assert_int_equal(isd_op_conv2d_workspace(ctx[t], &cs[c], &need), 0);
            void *ws = ws_alloc(need);
            assert_int_equal(isd_op_conv2d(ctx[t], &cs[c], x, w, w, y[t], 0, ws, need), 0);
            free(ws);
        }
        double *r = widen(y[0], ny);
        check_gemm_like("conv 2 threads vs 1", y[1], r, ny, 1e-6, 1e-6, 0.0);
        check_gemm_like("conv 3 threads vs 1", y[2], r, ny, 1e-6, 1e-6, 0.0);
        print_message("# conv %zu: 2 threads %s, 3 threads %s\n", c,
                      bitwise_equal(y[0], y[1], ny) ? "bitwise equal" : "within rounding",
                      bitwise_equal(y[0], y[2], ny) ? "bitwise equal" : "within rounding");
        free(r);
    }
    for (int t = 0; t < 3; t++)
        assert_int_equal(isd_op_linear(ctx[t], 1000, 256, 320, x, w, w, y[t], 0), 0);
    double *r = widen(y[0], 1000 * 320);
    check_gemm_like("linear threads", y[1], r, 1000 * 320, 1e-6, 1e-6, 0.0);
    check_gemm_like("linear threads", y[2], r, 1000 * 320, 1e-6, 1e-6, 0.0);
    print_message("# linear: %s\n",
                  bitwise_equal(y[0], y[1], 1000 * 320) && bitwise_equal(y[0], y[2], 1000 * 320)
                      ? "bitwise equal"
                      : "within rounding");
    free(r);

    /* never split a reduction: bitwise equal */
    struct isd_op_attn_shape as = {.batch = 1, .heads = 4, .lq = 1000, .lk = 700, .d_head = 40};
    for (int t = 0; t < 3; t++) {
        size_t need;
        assert_int_equal(isd_op_attention_workspace(ctx[t], &as, &need), 0);
        void *ws = ws_alloc(need);
        assert_int_equal(isd_op_attention(ctx[t], &as, x, x + 200000, x + 400000, y[t], ws, need),
                         0);
        free(ws);
    }
    assert_true(bitwise_equal(y[0], y[1], 1000 * 160) && bitwise_equal(y[0], y[2], 1000 * 160));
    for (int t = 0; t < 3; t++)
        assert_int_equal(
            isd_op_group_norm(ctx[t], 2, 256, 2048, 32, 1e-6f, x, w, w + 256, y[t], ISD_OP_SILU),
            0);
    assert_true(bitwise_equal(y[0], y[1], n) && bitwise_equal(y[0], y[2], n));
    for (int t = 0; t < 3; t++)
        assert_int_equal(isd_op_layer_norm(ctx[t], 4096, 256, 1e-5f, x, w, w + 256, y[t]), 0);
    assert_true(bitwise_equal(y[0], y[1], n) && bitwise_equal(y[0], y[2], n));
    for (int t = 0; t < 3; t++)
        assert_int_equal(isd_op_softmax(ctx[t], 1024, 1024, x, y[t]), 0);
    assert_true(bitwise_equal(y[0], y[1], n) && bitwise_equal(y[0], y[2], n));
    for (int t = 0; t < 3; t++)
        assert_int_equal(isd_op_geglu(ctx[t], 2048, 256, x, y[t]), 0);
    assert_true(bitwise_equal(y[0], y[1], n / 2) && bitwise_equal(y[0], y[2], n / 2));

    for (int t = 0; t < 3; t++) {
        free(y[t]);
        isd_op_ctx_free(ctx[t]);
    }
    free(x);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_workspace_no_allocs),
        cmocka_unit_test(other_ops_no_allocs),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(context_params),
        cmocka_unit_test(threads_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
