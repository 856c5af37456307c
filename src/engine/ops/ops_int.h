/*
 * engine/ops internals: the context and its thread pool, the per-ISA kernel tables, and the
 * reference/fast implementations that ops.c dispatches to after validating arguments.
 * Not for use outside src/engine/ops.
 */
#ifndef ISD_ENGINE_OPS_INT_H
#define ISD_ENGINE_OPS_INT_H

#include "engine/ops/ops.h"

#include <pthread.h>
#include <stddef.h>

#define ISD_OP_MAX_THREADS 256
#define ISD_OP_ALIGN       64 /* workspace sub-buffers start on cache lines */

/* Vectorised kernels on contiguous arrays; one table per ISA (vec_scalar.c, vec_avx2.c,
 * vec_avx512.c, all generated from vec_kern.h). Outputs may equal inputs. */
struct isd_op_kern {
    const char *name;
    void (*silu)(float *y, const float *x, size_t n);
    void (*gelu)(float *y, const float *x, size_t n);
    void (*quick_gelu)(float *y, const float *x, size_t n);
    void (*geglu)(float *y, const float *a, const float *gate, size_t n); /* y = a*gelu(gate) */
    void (*add)(float *y, const float *a, const float *b, size_t n);
    void (*mul)(float *y, const float *a, const float *b, size_t n);
    void (*axpby)(float *y, float alpha, const float *x, float beta, size_t n);
    void (*scale_shift)(float *y, const float *x, size_t n, float a, float b); /* y = a*x+b */
    float (*max)(const float *x, size_t n);                                    /* -inf for n == 0 */
    float (*exp_sum)(float *y, const float *x, size_t n, float shift); /* y = e^(x-shift), sum */
    double (*sum)(const float *x, size_t n, float shift);              /* sum (x - shift) */
    double (*sum_sq_dev)(const float *x, size_t n, float mean);        /* sum (x-mean)^2 */
    /* y = (x - mean) * a + b, then SiLU if silu */
    void (*norm)(float *y, const float *x, size_t n, float mean, float a, float b, int silu);
    /* y[i] = ((x[i] - mean) * rstd + shift) * g[i] + b[i]; g/b may be NULL (1/0) */
    void (*norm_vec)(float *y, const float *x, size_t n, float mean, float rstd, float shift,
                     const float *g, const float *b);
};

extern const struct isd_op_kern isd_op_kern_scalar;
extern const struct isd_op_kern isd_op_kern_avx2;
extern const struct isd_op_kern isd_op_kern_avx512;

struct isd_op_worker {
    struct isd_op_ctx *ctx;
    int id;
    unsigned long gen0; /* ctx->gen when the thread was created */
};

/* When 3x3 stride-1 pad-1 convs use Winograd F(2x2,3x3) (winograd.c) */
enum isd_op_wino {
    ISD_OP_WINO_AUTO = 0, /* where measured faster (large outputs, enough channels) */
    ISD_OP_WINO_NEVER,    /* im2col + sgemm always */
    ISD_OP_WINO_ALL,      /* every such conv (tests, benchmarks) */
};

struct isd_op_ctx {
    int threads;                    /* pool size including the calling thread */
    int reference;                  /* 1: naive reference loops */
    int winograd;                   /* enum isd_op_wino, from env ISD_OPS_WINOGRAD */
    const struct isd_op_kern *kern; /* vectorised kernels of the chosen ISA */
    struct isd_eng_error err;       /* detail of the last failure */

    /* pool: workers 1..threads-1 wait for a new generation, run job(arg, id, job_workers) */
    pthread_t *tids;               /* [threads - 1] */
    struct isd_op_worker *workers; /* [threads - 1] */
    int started;                   /* threads actually started */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long gen; /* job generation; bumped to wake the workers */
    int busy;          /* workers still running the current job */
    int stop;
    int job_workers; /* workers taking part in the current job */
    void (*job)(void *arg, int worker, int workers);
    void *job_arg;
};

/* Runs fn(arg, w, workers) for w in [0, workers) on the pool (w = 0 on the caller) and returns
 * when all have finished. workers is clamped to [1, ctx->threads]. */
void isd_op_parallel(struct isd_op_ctx *ctx, int workers, void (*fn)(void *arg, int w, int nw),
                     void *arg);
/* Splits [0, n) into `parts` near-equal contiguous ranges; range i is [*begin, *end). */
void isd_op_split(size_t n, int parts, int i, size_t *begin, size_t *end);
/* Calls fn(arg, begin, end) on contiguous ranges of [0, n) in parallel, each of at least
 * min_chunk items (fewer workers for small n). */
void isd_op_parallel_for(struct isd_op_ctx *ctx, size_t n, size_t min_chunk,
                         void (*fn)(void *arg, size_t begin, size_t end), void *arg);

int isd_op_fail(struct isd_op_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rounds p up to ISD_OP_ALIGN. */
static inline void *isd_op_align(void *p)
{
    uintptr_t u = (uintptr_t)p;
    return (void *)((u + ISD_OP_ALIGN - 1) & ~(uintptr_t)(ISD_OP_ALIGN - 1));
}

/* ---- implementations (arguments already validated by ops.c) ---- */

/* Row-major single-threaded sgemm, the only way ops call BLAS: cblas_sgemm, except NN
 * products of at most ISD_OP_SMALL_NN multiply-adds, which run in our own loop (OpenBLAS
 * 0.3.21's AVX-512 small-matrix NN kernel mallocs a scratch buffer; the other transpositions
 * do not, see test_ops_contract.c). */
#define ISD_OP_SMALL_NN 1e6
void isd_op_sgemm(const struct isd_op_kern *kern, int trans_a, int trans_b, int m, int n, int k,
                  float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                  float *c, int ldc);

struct isd_op_gemm_args {
    int batch, trans_a, trans_b, m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
    size_t stride_a, stride_b, stride_c;
};
void isd_op_ref_gemm(struct isd_op_ctx *ctx, const struct isd_op_gemm_args *g);
void isd_op_fast_gemm(struct isd_op_ctx *ctx, const struct isd_op_gemm_args *g);
void isd_op_fast_linear(struct isd_op_ctx *ctx, int rows, int in, int out, const float *x,
                        const float *w, const float *bias, float *y, int flags);
void isd_op_ref_linear(struct isd_op_ctx *ctx, int rows, int in, int out, const float *x,
                       const float *w, const float *bias, float *y, int flags);

size_t isd_op_conv2d_ws_fast(const struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s,
                             int ho, int wo);
void isd_op_ref_conv2d(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho, int wo,
                       const float *x, const float *w, const float *bias, float *y, int flags);
/* winograd.c: 3x3 stride-1 pad-1 convs with a large enough output (isd_op_use_winograd) */
int isd_op_use_winograd(const struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho,
                        int wo);
size_t isd_op_winograd_ws(const struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho,
                          int wo);
void isd_op_winograd_conv2d(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho,
                            int wo, const float *x, const float *w, const float *bias, float *y,
                            int flags, void *ws);
void isd_op_fast_conv2d(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho, int wo,
                        const float *x, const float *w, const float *bias, float *y, int flags,
                        void *ws);

/* attention: shape with ld* and scale already resolved */
size_t isd_op_attention_ws_ref(const struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s);
size_t isd_op_attention_ws_fast(const struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s);
void isd_op_ref_attention(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s, const float *q,
                          const float *k, const float *v, float *o, void *ws);
void isd_op_fast_attention(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s,
                           const float *q, const float *k, const float *v, float *o, void *ws);

/* norms and activations: reference (ref.c) and fast (eltwise.c) */
enum isd_op_act {
    ISD_OP_ACT_SILU,
    ISD_OP_ACT_GELU,
    ISD_OP_ACT_QUICK_GELU,
    ISD_OP_ACT_RELU,
    ISD_OP_ACT_TANH
};
void isd_op_ref_act(struct isd_op_ctx *ctx, enum isd_op_act act, size_t n, const float *x,
                    float *y);
void isd_op_fast_act(struct isd_op_ctx *ctx, enum isd_op_act act, size_t n, const float *x,
                     float *y);
void isd_op_ref_geglu(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y);
void isd_op_fast_geglu(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y);
void isd_op_ref_group_norm(struct isd_op_ctx *ctx, int n, int c, int hw, int groups, float eps,
                           const float *x, const float *gamma, const float *beta, float *y,
                           int flags);
void isd_op_fast_group_norm(struct isd_op_ctx *ctx, int n, int c, int hw, int groups, float eps,
                            const float *x, const float *gamma, const float *beta, float *y,
                            int flags);
void isd_op_ref_layer_norm(struct isd_op_ctx *ctx, int rows, int cols, float eps, const float *x,
                           const float *gamma, const float *beta, float *y);
void isd_op_fast_layer_norm(struct isd_op_ctx *ctx, int rows, int cols, float eps, const float *x,
                            const float *gamma, const float *beta, float *y);
void isd_op_ref_softmax(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y);
void isd_op_fast_softmax(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y);

enum isd_op_binary { ISD_OP_BIN_ADD, ISD_OP_BIN_MUL };
void isd_op_ref_binary(struct isd_op_ctx *ctx, enum isd_op_binary op, size_t n, const float *a,
                       const float *b, float *y);
void isd_op_fast_binary(struct isd_op_ctx *ctx, enum isd_op_binary op, size_t n, const float *a,
                        const float *b, float *y);
void isd_op_ref_axpby(struct isd_op_ctx *ctx, size_t n, float alpha, const float *x, float beta,
                      float *y);
void isd_op_fast_axpby(struct isd_op_ctx *ctx, size_t n, float alpha, const float *x, float beta,
                       float *y);
void isd_op_ref_scale(struct isd_op_ctx *ctx, size_t n, const float *x, float s, float *y);
void isd_op_fast_scale(struct isd_op_ctx *ctx, size_t n, const float *x, float s, float *y);
void isd_op_ref_add_bias(struct isd_op_ctx *ctx, int n, int c, size_t inner, const float *x,
                         const float *bias, size_t bias_stride, float *y);
void isd_op_fast_add_bias(struct isd_op_ctx *ctx, int n, int c, size_t inner, const float *x,
                          const float *bias, size_t bias_stride, float *y);

#endif
