/*
 * bench/engine_ops: speed of the engine's ops (src/engine/ops) at the real SD1.5 shapes for a
 * 512x512 image (64x64 latent), as GFLOP/s and as a ratio to the rate of one large square
 * cblas_sgemm (2048^3, OpenBLAS with all threads) measured in the same run.
 *
 *   engine_ops [-t threads] [-r reps] [-f filter] [-n]
 *     -t  pool threads (default: online cores)    -r  repetitions per op (3)
 *     -f  only ops whose name contains filter      -n  also time the naive reference path
 *
 * The machine is shared, so its speed drifts during a run: each repetition of a compute-bound
 * op is paired with a 2048^3 sgemm timed just before it, and the ratio is taken per pair.
 * Each line: op, shape, best and median ms, GFLOP/s of the best, then the median and the best
 * of the per-pair ratios to sgemm. Memory-bound ops print GB/s (bytes read + written) instead.
 * With -n, the reference path's time on the same op (for the big ones on a slice of it, scaled
 * by FLOPs) and the speed-up of the fast path.
 *
 *   engine_ops -w [-t threads] [-r reps] [-f filter]
 *     compares the two fast paths of 3x3 stride-1 convs (UNet and VAE shapes, batch 2):
 *     im2col + sgemm (a ctx made with ISD_OPS_WINOGRAD=0) against Winograd F(2x2,3x3) (a ctx
 *     made with ISD_OPS_WINOGRAD=all), timed alternately; prints both best times, the median
 *     (min..max) of the per-pair time ratios im2col/winograd (> 1: Winograd faster), the
 *     relative L2 difference of the outputs, both workspace sizes and the default's choice.
 */
#include "engine/ops/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS 16

static int reps = 3, with_naive = 0;
static const char *filter = "";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static unsigned long long rng = 0x9E3779B97F4A7C15ull;

static float *rand_floats(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        p[i] = scale * (float)((double)(rng >> 40) / 16777216.0 * 2.0 - 1.0);
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct timing {
    double best, median;         /* seconds */
    double ratio_med, ratio_max; /* op rate / sgemm rate, per (sgemm, op) pair */
};

/* the op to time: fn(arg) returns 0 on success */
typedef int (*bench_fn)(void *arg);

/* the reference sgemm, timed before each repetition of a compute-bound op */
static bench_fn sgemm_fn;
static void *sgemm_arg;
static double sgemm_gflop;

static double time_once(bench_fn fn, void *arg)
{
    double t0 = now();
    if (fn(arg) != 0) {
        fprintf(stderr, "op failed\n");
        exit(1);
    }
    return now() - t0;
}

/* gflop > 0: pair each repetition with an sgemm and report ratios */
static struct timing time_op(bench_fn fn, void *arg, int n, double gflop)
{
    double t[MAX_REPS], r[MAX_REPS];
    if (n > MAX_REPS)
        n = MAX_REPS;
    for (int i = 0; i < n; i++) {
        double ts = gflop > 0 ? time_once(sgemm_fn, sgemm_arg) : 0.0;
        t[i] = time_once(fn, arg);
        r[i] = gflop > 0 ? (gflop / t[i]) / (sgemm_gflop / ts) : 0.0;
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    qsort(r, (size_t)n, sizeof r[0], cmp_double);
    return (struct timing){t[0], t[n / 2], r[n / 2], r[n - 1]};
}

static int selected(const char *name)
{
    return strstr(name, filter) != NULL;
}

static void report_flops(const char *name, const char *shape, double gflop, struct timing t)
{
    printf("%-20s %-34s %8.2f %8.2f %7.1f GFLOP/s  x sgemm: %4.2f median, %4.2f best\n", name,
           shape, t.best * 1e3, t.median * 1e3, gflop / t.best, t.ratio_med, t.ratio_max);
}

static void report_bytes(const char *name, const char *shape, double gbytes, struct timing t)
{
    printf("%-20s %-34s %8.2f %8.2f %7.1f GB/s\n", name, shape, t.best * 1e3, t.median * 1e3,
           gbytes / t.best);
}

static void report_naive(const char *name, double naive_s, double fast_s)
{
    printf("%-20s %-34s %8.2f ms naive (scaled); fast path %.0fx faster\n", name, "  reference",
           naive_s * 1e3, naive_s / fast_s);
}

/* ---- reference sgemm ---- */

struct sgemm_arg {
    int n, threads;
    float *a, *b, *c;
};

static int run_sgemm(void *p)
{
    struct sgemm_arg *s = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->n, s->n, s->n, 1.0f, s->a, s->n, s->b,
                s->n, 0.0f, s->c, s->n);
    return 0;
}

struct gemm_arg {
    struct isd_op_ctx *ctx;
    int n;
    float *a, *b, *c;
};

static int run_pool_gemm(void *p)
{
    struct gemm_arg *g = p;
    return isd_op_gemm(g->ctx, 0, 0, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f, g->c,
                       g->n);
}

static int run_sgemm_threaded(void *p)
{
    struct sgemm_arg *s = p;
    openblas_set_num_threads(s->threads); /* the reference: OpenBLAS's own threading */
    run_sgemm(s);
    openblas_set_num_threads(1); /* back to the ops' rule: one BLAS thread per worker */
    return 0;
}

static struct sgemm_arg ref_sgemm;

static void bench_sgemm(struct isd_op_ctx *ctx, int threads)
{
    int n = 2048;
    size_t nn = (size_t)n * n;
    ref_sgemm =
        (struct sgemm_arg){n, threads, rand_floats(nn, 1), rand_floats(nn, 1), rand_floats(nn, 1)};
    sgemm_fn = run_sgemm_threaded;
    sgemm_arg = &ref_sgemm;
    sgemm_gflop = 2.0 * n * n * (double)n * 1e-9;
    run_sgemm_threaded(&ref_sgemm);
    struct timing t = time_op(run_sgemm_threaded, &ref_sgemm, reps, sgemm_gflop);
    report_flops("sgemm (OpenBLAS)", "2048^3", sgemm_gflop, t);
    struct gemm_arg g = {ctx, n, ref_sgemm.a, ref_sgemm.b, ref_sgemm.c};
    if (selected("gemm"))
        report_flops("isd_op_gemm (pool)", "2048^3", sgemm_gflop,
                     time_op(run_pool_gemm, &g, reps, sgemm_gflop));
}

/* ---- conv2d ---- */

struct conv_arg {
    struct isd_op_ctx *ctx;
    struct isd_op_conv2d_shape s;
    float *x, *w, *b, *y;
    void *ws;
    size_t ws_size;
};

static int run_conv(void *p)
{
    struct conv_arg *c = p;
    return isd_op_conv2d(c->ctx, &c->s, c->x, c->w, c->b, c->y, 0, c->ws, c->ws_size);
}

static void bench_conv(struct isd_op_ctx *ctx, struct isd_op_ctx *ref, const char *name, int c_in,
                       int c_out, int hw, int k, int stride, int asym)
{
    if (!selected(name))
        return;
    struct isd_op_conv2d_shape s = {1, c_in, hw, hw, c_out, k, k, stride, 0, 0, 0, 0};
    if (k == 3) {
        s.pad_top = s.pad_left = asym ? 0 : 1;
        s.pad_bottom = s.pad_right = 1;
    }
    int ho, wo;
    isd_op_conv2d_out_size(&s, &ho, &wo);
    size_t nx = (size_t)c_in * hw * hw, nw = (size_t)c_out * c_in * k * k;
    struct conv_arg c = {ctx,
                         s,
                         rand_floats(nx, 1),
                         rand_floats(nw, 0.05f),
                         rand_floats((size_t)c_out, 0.1f),
                         rand_floats((size_t)c_out * ho * wo, 1),
                         NULL,
                         0};
    if (isd_op_conv2d_workspace(ctx, &s, &c.ws_size) < 0)
        exit(1);
    c.ws = malloc(c.ws_size ? c.ws_size : 1);
    double gflop = 2.0 * c_out * (double)ho * wo * c_in * k * k * 1e-9;
    char shape[64];
    snprintf(shape, sizeof shape, "%d->%d %dx%d s%d%s @%dx%d", c_in, c_out, k, k, stride,
             asym ? " pad0011" : "", hw, hw);
    run_conv(&c); /* warm up */
    struct timing t = time_op(run_conv, &c, reps, gflop);
    report_flops(name, shape, gflop, t);
    if (with_naive) {
        /* the naive conv on a slice of the output channels, scaled */
        int slice = c_out >= 16 ? c_out / 16 : 1;
        struct conv_arg r = c;
        r.ctx = ref;
        r.s.c_out = slice;
        double t0 = now();
        run_conv(&r);
        double tn = (now() - t0) * c_out / slice;
        report_naive(name, tn, t.best);
    }
    free(c.x);
    free(c.w);
    free(c.b);
    free(c.y);
    free(c.ws);
}

/* ---- Winograd against im2col (-w) ---- */

static int run_conv_into(struct conv_arg *c, float *y)
{
    return isd_op_conv2d(c->ctx, &c->s, c->x, c->w, c->b, y, 0, c->ws, c->ws_size);
}

static void compare_wino(struct isd_op_ctx *wino, struct isd_op_ctx *im2col,
                         struct isd_op_ctx *deflt, const char *name, int n_img, int c_in, int c_out,
                         int hw)
{
    if (!selected(name))
        return;
    struct isd_op_conv2d_shape s = {n_img, c_in, hw, hw, c_out, 3, 3, 1, 1, 1, 1, 1};
    size_t nx = (size_t)n_img * c_in * hw * hw, nw = (size_t)c_out * c_in * 9;
    size_t ny = (size_t)n_img * c_out * hw * hw, ws_a = 0, ws_b = 0, ws_d = 0;
    if (isd_op_conv2d_workspace(wino, &s, &ws_a) < 0 ||
        isd_op_conv2d_workspace(im2col, &s, &ws_b) < 0 ||
        isd_op_conv2d_workspace(deflt, &s, &ws_d) < 0)
        exit(1);
    size_t ws_size = ws_a > ws_b ? ws_a : ws_b;
    struct conv_arg a = {wino,
                         s,
                         rand_floats(nx, 1),
                         rand_floats(nw, 0.05f),
                         rand_floats((size_t)c_out, 0.1f),
                         NULL,
                         malloc(ws_size),
                         ws_size};
    struct conv_arg b = a;
    b.ctx = im2col;
    float *ya = rand_floats(ny, 1), *yb = rand_floats(ny, 1);
    if (!a.ws || run_conv_into(&a, ya) || run_conv_into(&b, yb)) /* warm up */
        exit(1);
    double e2 = 0, r2 = 0;
    for (size_t i = 0; i < ny; i++) {
        double d = (double)ya[i] - yb[i];
        e2 += d * d;
        r2 += (double)yb[i] * yb[i];
    }
    double ta[MAX_REPS], tb[MAX_REPS], ratio[MAX_REPS];
    int n = reps > MAX_REPS ? MAX_REPS : reps;
    for (int i = 0; i < n; i++) {
        double t0 = now();
        run_conv_into(&b, yb);
        double t1 = now();
        run_conv_into(&a, ya);
        double t2 = now();
        tb[i] = t1 - t0;
        ta[i] = t2 - t1;
        ratio[i] = tb[i] / ta[i];
    }
    qsort(ta, (size_t)n, sizeof ta[0], cmp_double);
    qsort(tb, (size_t)n, sizeof tb[0], cmp_double);
    qsort(ratio, (size_t)n, sizeof ratio[0], cmp_double);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx %d->%d @%dx%d", n_img, c_in, c_out, hw, hw);
    double gflop = 2.0 * n_img * c_out * (double)hw * hw * c_in * 9 * 1e-9;
    printf("%-16s %-22s im2col %8.2f ms  winograd %8.2f ms  ratio %4.2f median (%4.2f..%4.2f)  "
           "%6.1f eff. GFLOP/s  rel diff %.1e  ws %.1f/%.1f MB  default: %s\n",
           name, shape, tb[0] * 1e3, ta[0] * 1e3, ratio[n / 2], ratio[0], ratio[n - 1],
           gflop / ta[0], r2 > 0 ? sqrt(e2 / r2) : sqrt(e2), (double)ws_b / 1048576.0,
           (double)ws_a / 1048576.0, ws_d == ws_a && ws_a != ws_b ? "winograd" : "im2col");
    fflush(stdout);
    free(a.x);
    free(a.w);
    free(a.b);
    free(a.ws);
    free(ya);
    free(yb);
}

static int bench_wino(int threads)
{
    struct isd_eng_error err = {0};
    struct isd_op_ctx_params fp = {.threads = threads};
    struct isd_op_ctx *deflt = isd_op_ctx_new(&fp, &err);
    setenv("ISD_OPS_WINOGRAD", "all", 1);
    struct isd_op_ctx *wino = isd_op_ctx_new(&fp, &err);
    setenv("ISD_OPS_WINOGRAD", "0", 1);
    struct isd_op_ctx *im2col = isd_op_ctx_new(&fp, &err);
    unsetenv("ISD_OPS_WINOGRAD");
    if (!wino || !im2col || !deflt) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("engine_ops -w: %d threads, %d reps, im2col vs Winograd F(2x2,3x3), 3x3 s1 convs\n",
           isd_op_threads(wino), reps);
    compare_wino(wino, im2col, deflt, "unet in", 2, 4, 320, 64);
    compare_wino(wino, im2col, deflt, "unet l0", 2, 320, 320, 64);
    compare_wino(wino, im2col, deflt, "unet l1", 2, 640, 640, 32);
    compare_wino(wino, im2col, deflt, "unet l1 in", 2, 320, 640, 32);
    compare_wino(wino, im2col, deflt, "unet l2", 2, 1280, 1280, 16);
    compare_wino(wino, im2col, deflt, "unet l2 n1", 1, 1280, 1280, 16);
    compare_wino(wino, im2col, deflt, "unet l3", 2, 1280, 1280, 8);
    compare_wino(wino, im2col, deflt, "vae 512@64", 2, 512, 512, 64);
    compare_wino(wino, im2col, deflt, "vae 512@128", 2, 512, 512, 128);
    compare_wino(wino, im2col, deflt, "vae 512@256", 2, 512, 512, 256);
    compare_wino(wino, im2col, deflt, "vae 256@256", 2, 256, 256, 256);
    compare_wino(wino, im2col, deflt, "vae 128@512", 2, 128, 128, 512);
    compare_wino(wino, im2col, deflt, "taesd 64@64", 2, 64, 64, 64);
    isd_op_ctx_free(im2col);
    isd_op_ctx_free(wino);
    isd_op_ctx_free(deflt);
    return 0;
}

/* ---- attention ---- */

struct attn_arg {
    struct isd_op_ctx *ctx;
    struct isd_op_attn_shape s;
    float *q, *k, *v, *o;
    void *ws;
    size_t ws_size;
};

static int run_attn(void *p)
{
    struct attn_arg *a = p;
    return isd_op_attention(a->ctx, &a->s, a->q, a->k, a->v, a->o, a->ws, a->ws_size);
}

static void bench_attn(struct isd_op_ctx *ctx, struct isd_op_ctx *ref, const char *name, int heads,
                       int lq, int lk, int d, int causal)
{
    if (!selected(name))
        return;
    struct isd_op_attn_shape s = {1, heads, lq, lk, d, 0, 0, 0, 0, causal, 0};
    size_t w = (size_t)heads * d;
    struct attn_arg a = {ctx,
                         s,
                         rand_floats(lq * w, 1),
                         rand_floats(lk * w, 1),
                         rand_floats(lk * w, 1),
                         rand_floats(lq * w, 1),
                         NULL,
                         0};
    if (isd_op_attention_workspace(ctx, &s, &a.ws_size) < 0)
        exit(1);
    a.ws = malloc(a.ws_size);
    double gflop = 4.0 * heads * (double)lq * lk * d * 1e-9 * (causal ? 0.5 : 1.0);
    char shape[64];
    snprintf(shape, sizeof shape, "%dh x %dx%d d%d%s", heads, lq, lk, d, causal ? " causal" : "");
    run_attn(&a);
    struct timing t = time_op(run_attn, &a, reps, gflop);
    report_flops(name, shape, gflop, t);
    if (with_naive) {
        struct attn_arg r = a;
        r.ctx = ref;
        r.s.lq = lq >= 256 ? lq / 16 : lq; /* a slice of the queries, scaled */
        double t0 = now();
        run_attn(&r);
        report_naive(name, (now() - t0) * lq / r.s.lq, t.best);
    }
    free(a.q);
    free(a.k);
    free(a.v);
    free(a.o);
    free(a.ws);
}

/* ---- linear ---- */

struct linear_arg {
    struct isd_op_ctx *ctx;
    int rows, in, out;
    float *x, *w, *b, *y;
};

static int run_linear(void *p)
{
    struct linear_arg *l = p;
    return isd_op_linear(l->ctx, l->rows, l->in, l->out, l->x, l->w, l->b, l->y, 0);
}

static void bench_linear(struct isd_op_ctx *ctx, struct isd_op_ctx *ref, const char *name, int rows,
                         int in, int out)
{
    if (!selected(name))
        return;
    struct linear_arg l = {ctx,
                           rows,
                           in,
                           out,
                           rand_floats((size_t)rows * in, 1),
                           rand_floats((size_t)out * in, 0.05f),
                           rand_floats((size_t)out, 0.1f),
                           rand_floats((size_t)rows * out, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "%d tokens %d->%d", rows, in, out);
    run_linear(&l);
    double gflop = 2.0 * rows * (double)in * out * 1e-9;
    struct timing t = time_op(run_linear, &l, reps, gflop);
    report_flops(name, shape, gflop, t);
    if (with_naive) {
        struct linear_arg r = l;
        r.ctx = ref;
        r.rows = rows >= 256 ? rows / 16 : rows;
        double t0 = now();
        run_linear(&r);
        report_naive(name, (now() - t0) * rows / r.rows, t.best);
    }
    free(l.x);
    free(l.w);
    free(l.b);
    free(l.y);
}

/* ---- memory-bound ops ---- */

enum mem_op { GN, GN_SILU, LN, SOFTMAX, GELU, SILU, GEGLU, ADD };

struct mem_arg {
    struct isd_op_ctx *ctx;
    enum mem_op op;
    int rows, cols; /* GN: rows = channels, cols = hw */
    float *x, *y, *g, *b;
};

static int run_mem(void *p)
{
    struct mem_arg *m = p;
    size_t n = (size_t)m->rows * m->cols;
    switch (m->op) {
    case GN:
        return isd_op_group_norm(m->ctx, 1, m->rows, m->cols, 32, 1e-5f, m->x, m->g, m->b, m->y, 0);
    case GN_SILU:
        return isd_op_group_norm(m->ctx, 1, m->rows, m->cols, 32, 1e-5f, m->x, m->g, m->b, m->y,
                                 ISD_OP_SILU);
    case LN:
        return isd_op_layer_norm(m->ctx, m->rows, m->cols, 1e-5f, m->x, m->g, m->b, m->y);
    case SOFTMAX:
        return isd_op_softmax(m->ctx, m->rows, m->cols, m->x, m->y);
    case GELU:
        return isd_op_gelu(m->ctx, n, m->x, m->y);
    case SILU:
        return isd_op_silu(m->ctx, n, m->x, m->y);
    case GEGLU:
        return isd_op_geglu(m->ctx, m->rows, m->cols / 2, m->x, m->y);
    case ADD:
        return isd_op_add(m->ctx, n, m->x, m->y, m->y);
    }
    return -1;
}

static void bench_mem(struct isd_op_ctx *ctx, struct isd_op_ctx *ref, const char *name,
                      enum mem_op op, int rows, int cols)
{
    if (!selected(name))
        return;
    size_t n = (size_t)rows * cols;
    struct mem_arg m = {ctx,
                        op,
                        rows,
                        cols,
                        rand_floats(n, 3),
                        rand_floats(n, 1),
                        rand_floats((size_t)(rows > cols ? rows : cols), 1),
                        rand_floats((size_t)(rows > cols ? rows : cols), 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "%d x %d", rows, cols);
    double bytes = (op == GEGLU ? 1.5 : op == ADD ? 3.0 : 2.0) * n * sizeof(float) * 1e-9;
    run_mem(&m);
    struct timing t = time_op(run_mem, &m, reps, 0.0);
    report_bytes(name, shape, bytes, t);
    if (with_naive) {
        struct mem_arg r = m;
        r.ctx = ref;
        struct timing tr = time_op(run_mem, &r, 1, 0.0);
        report_naive(name, tr.best, t.best);
    }
    free(m.x);
    free(m.y);
    free(m.g);
    free(m.b);
}

int main(int argc, char **argv)
{
    int threads = 0, opt, wino = 0;
    while ((opt = getopt(argc, argv, "t:r:f:nw")) != -1) {
        switch (opt) {
        case 't':
            threads = (int)strtol(optarg, NULL, 10);
            break;
        case 'r':
            reps = (int)strtol(optarg, NULL, 10);
            break;
        case 'f':
            filter = optarg;
            break;
        case 'n':
            with_naive = 1;
            break;
        case 'w':
            wino = 1;
            break;
        default:
            fprintf(stderr, "usage: %s [-t threads] [-r reps] [-f filter] [-n] [-w]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;
    if (wino)
        return bench_wino(threads);
    struct isd_eng_error err = {0};
    struct isd_op_ctx_params fp = {.threads = threads}, rp = {.threads = threads, .reference = 1};
    struct isd_op_ctx *ctx = isd_op_ctx_new(&fp, &err), *ref = isd_op_ctx_new(&rp, &err);
    if (!ctx || !ref) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    threads = isd_op_threads(ctx);
    printf("engine_ops: %d threads, kernels %s, %d reps (best and median ms)\n", threads,
           isd_op_impl_name(ctx), reps);
    printf("%-20s %-34s %8s %8s\n", "op", "shape", "best", "median");
    bench_sgemm(ctx, threads);

    /* UNet ResBlock / down / up convs at 64x64 latent */
    bench_conv(ctx, ref, "conv unet l0", 320, 320, 64, 3, 1, 0);
    bench_conv(ctx, ref, "conv unet l1", 640, 640, 32, 3, 1, 0);
    bench_conv(ctx, ref, "conv unet l2", 1280, 1280, 16, 3, 1, 0);
    bench_conv(ctx, ref, "conv unet l3", 1280, 1280, 8, 3, 1, 0);
    bench_conv(ctx, ref, "conv unet in", 4, 320, 64, 3, 1, 0);
    bench_conv(ctx, ref, "conv unet down", 320, 320, 64, 3, 2, 0);
    bench_conv(ctx, ref, "conv unet skip 1x1", 640, 320, 64, 1, 1, 0);
    bench_conv(ctx, ref, "conv unet l3 1x1", 2560, 1280, 8, 1, 1, 0);
    /* VAE decoder / encoder */
    bench_conv(ctx, ref, "conv vae 512@64", 512, 512, 64, 3, 1, 0);
    bench_conv(ctx, ref, "conv vae 512@128", 512, 512, 128, 3, 1, 0);
    bench_conv(ctx, ref, "conv vae 256@256", 256, 256, 256, 3, 1, 0);
    bench_conv(ctx, ref, "conv vae 128@512", 128, 128, 512, 3, 1, 0);
    bench_conv(ctx, ref, "conv vae out", 128, 3, 512, 3, 1, 0);
    bench_conv(ctx, ref, "conv vae down", 128, 128, 512, 3, 2, 1);
    bench_conv(ctx, ref, "conv taesd 64@512", 64, 64, 512, 3, 1, 0);

    /* attention */
    bench_attn(ctx, ref, "attn self l0", 8, 4096, 4096, 40, 0);
    bench_attn(ctx, ref, "attn cross l0", 8, 4096, 77, 40, 0);
    bench_attn(ctx, ref, "attn self l1", 8, 1024, 1024, 80, 0);
    bench_attn(ctx, ref, "attn self sd2 l0", 5, 4096, 4096, 64, 0);
    bench_attn(ctx, ref, "attn vae mid", 1, 4096, 4096, 512, 0);
    bench_attn(ctx, ref, "attn clip causal", 12, 77, 77, 64, 1);

    /* linear */
    bench_linear(ctx, ref, "linear geglu proj", 4096, 320, 2560);
    bench_linear(ctx, ref, "linear ff out", 4096, 1280, 320);
    bench_linear(ctx, ref, "linear q l0", 4096, 320, 320);
    bench_linear(ctx, ref, "linear cross kv", 77, 768, 320);
    bench_linear(ctx, ref, "linear l2 geglu", 256, 1280, 10240);

    /* memory-bound */
    bench_mem(ctx, ref, "group_norm", GN, 320, 4096);
    bench_mem(ctx, ref, "group_norm+silu", GN_SILU, 320, 4096);
    bench_mem(ctx, ref, "group_norm+silu vae", GN_SILU, 128, 512 * 512);
    bench_mem(ctx, ref, "layer_norm", LN, 4096, 320);
    bench_mem(ctx, ref, "softmax", SOFTMAX, 4096, 4096);
    bench_mem(ctx, ref, "gelu", GELU, 4096, 1280);
    bench_mem(ctx, ref, "silu", SILU, 320, 4096);
    bench_mem(ctx, ref, "geglu", GEGLU, 4096, 2560);
    bench_mem(ctx, ref, "add", ADD, 320, 4096);

    free(ref_sgemm.a);
    free(ref_sgemm.b);
    free(ref_sgemm.c);
    isd_op_ctx_free(ref);
    isd_op_ctx_free(ctx);
    return 0;
}
