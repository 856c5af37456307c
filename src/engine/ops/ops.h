/*
 * engine/ops: every tensor operation the SD1.x/2.x networks (CLIP text encoders, UNet, VAE,
 * TAESD) need, on float32 arrays, in two implementations behind one API:
 *
 *   - the REFERENCE path: naive, obviously correct loops with double accumulation, used by the
 *     tests and selectable for a whole network (params.reference = 1);
 *   - the FAST path (default): GEMMs through OpenBLAS cblas_sgemm, convolutions as im2col tiled
 *     by output rows + sgemm (1x1 convolutions as one direct GEMM; 3x3 stride-1 pad-1 ones with
 *     a large output as Winograd F(2x2,3x3) with 16 sgemms), attention computed in tiles
 *     with a running max/sum softmax (the Lq x Lk score matrix is never materialised), and our
 *     own vectorised kernels (AVX-512 / AVX2+FMA / scalar, chosen at run time) for norms,
 *     softmax and activations.
 *
 * Layouts (all arrays dense, row-major, float32, native endianness):
 *   images      NCHW: x[n][c][h][w]
 *   tokens      [rows][cols] (a "b n c" tensor is rows = b*n); attention heads are interleaved
 *               along cols as in LDM: token t, head h, dim e lives at t*ld + h*d_head + e
 *   linear      weight [out][in] (PyTorch nn.Linear), bias [out]
 *   conv2d      weight [c_out][c_in][kh][kw] (PyTorch nn.Conv2d), bias [c_out]
 *
 * Ownership: ops never keep a pointer after they return and never allocate: all memory (inputs,
 * outputs, workspace) belongs to the caller. An op that needs scratch memory (conv2d,
 * attention) takes a caller-provided workspace of at least the size its *_workspace()
 * function reports for the same ctx and shape (in either mode; EINVAL if smaller): plan the
 * sizes once per resolution, allocate one buffer of the maximum, reuse it for every call. Any
 * alignment works (ops align inside the reported size). A forward pass therefore calls malloc
 * zero times: OpenBLAS keeps its own packing buffers (mmapped once, on first use), and the
 * small NN products for which OpenBLAS 0.3.21 would malloc run in our own loop instead.
 *
 * Aliasing: element-wise ops, norms and softmax accept y == x (in place); add/mul accept y == a
 * or y == b. Any other overlap between an output and an input is not allowed (GEMMs, conv2d,
 * attention, geglu, transpose, concat, upsample, embedding).
 *
 * Errors: every op returns 0 or a negative ISD_ENG_E* code: ISD_ENG_EINVAL for a NULL pointer,
 * a non-positive size, a size product that overflows, a workspace smaller than required or an
 * out-of-range token id. The detail (which op, which argument) is kept in the ctx, read with
 * isd_op_error(). Ops do not check for NaN/Inf in data: they propagate them as float math does.
 *
 * Threads: one place owns the thread count, the ctx. isd_op_ctx_new() sets OpenBLAS to ONE
 * thread (process-wide: openblas_set_num_threads(1)) and starts a persistent pool of
 * params.threads workers (default: online cores; the calling thread is worker 0). Every op
 * partitions its work over that pool; a worker may call cblas_sgemm, which then runs
 * single-threaded in that worker. So BLAS threads x our threads = 1 x n <= cores, and the two
 * are never nested. Nothing else in the process may change OpenBLAS's thread count. A ctx is
 * used by one thread at a time (ops on one ctx do not run concurrently); two ctx used at the
 * same time add their thread counts. Results do not depend on the thread count except through
 * sgemm's partitioning (conv2d, gemm, linear): equal within float rounding (see the tests).
 *
 * Usage (plan once per resolution, then run; the run allocates nothing):
 *     struct isd_op_ctx *ops = isd_op_ctx_new(NULL, &err); // fast path, all cores
 *     struct isd_op_conv2d_shape cs = {.n = 1, .c_in = 320, .h = 64, .w = 64,
 *                                      .c_out = 320, .kh = 3, .kw = 3, .stride = 1,
 *                                      .pad_top = 1, .pad_left = 1,
 *                                      .pad_bottom = 1, .pad_right = 1};
 *     size_t need;
 *     isd_op_conv2d_workspace(ops, &cs, &need);
 *     void *ws = malloc(need);
 *     if (isd_op_conv2d(ops, &cs, x, w, b, y, 0, ws, need) < 0)
 *         fprintf(stderr, "%s\n", isd_op_error(ops)->msg);
 *     isd_op_ctx_free(ops);
 */
#ifndef ISD_ENGINE_OPS_H
#define ISD_ENGINE_OPS_H

#include "engine/core/core.h"

#include <stddef.h>
#include <stdint.h>

/* ---- context: thread pool, implementation choice, last error ---- */

enum isd_op_isa {
    ISD_OP_ISA_AUTO = 0, /* best the CPU supports */
    ISD_OP_ISA_SCALAR,   /* portable C (any x86-64 or other CPU) */
    ISD_OP_ISA_AVX2,     /* AVX2 + FMA */
    ISD_OP_ISA_AVX512,   /* AVX-512 F/BW/DQ/VL */
};

/* A zeroed struct asks for the defaults. */
struct isd_op_ctx_params {
    int threads;   /* workers including the caller; 0 = online cores; at most 256 */
    int reference; /* 1: every op runs the naive reference loops (tests, debugging) */
    int isa;       /* enum isd_op_isa; forcing one the CPU lacks fails with EUNSUPPORTED */
};

struct isd_op_ctx;

/* Creates a context (starts threads-1 pool threads). params may be NULL. Returns NULL and fills
 * err on failure. Reads the environment variable ISD_OPS_WINOGRAD once, here: unset = 3x3
 * stride-1 pad-1 convs use Winograd F(2x2,3x3) where it was measured faster (at least 256
 * output pixels n*h_out*w_out, at least 32 input channels); "0" = never (im2col + sgemm, e.g. to
 * compare); "all" = every such conv (tests, benchmarks). Winograd rounds differently from im2col
 * (outputs differ by ~6e-7 relative L2 at SD shapes; both stay under 1e-6 against float64 in the
 * tests) and needs a larger workspace (up to ~130 MB for the 1280-channel 16x16 convs). */
struct isd_op_ctx *isd_op_ctx_new(const struct isd_op_ctx_params *params,
                                  struct isd_eng_error *err);
void isd_op_ctx_free(struct isd_op_ctx *ctx);
/* Resizes the pool (0 = online cores). Workspace sizes depend on it: re-plan afterwards. */
int isd_op_set_threads(struct isd_op_ctx *ctx, int threads);
int isd_op_threads(const struct isd_op_ctx *ctx);
/* "reference", "avx512", "avx2" or "scalar". */
const char *isd_op_impl_name(const struct isd_op_ctx *ctx);
/* Detail of the last failed call on ctx (code ISD_ENG_OK if none failed yet). */
const struct isd_eng_error *isd_op_error(const struct isd_op_ctx *ctx);

/* Flags for conv2d, linear and group_norm. */
#define ISD_OP_ACCUMULATE 1 /* conv2d/linear: y += op(x) instead of y = op(x) (residual adds) */
#define ISD_OP_SILU       2 /* group_norm: apply SiLU after the affine transform */

/* ---- GEMMs ---- */

/* C = alpha * op(A) * op(B) + beta * C, row-major like cblas_sgemm (RowMajor): op(A) is m x k,
 * op(B) is k x n; trans_* != 0 transposes. beta == 0 ignores C's prior content (even NaN). */
int isd_op_gemm(struct isd_op_ctx *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* batch independent GEMMs; matrix i starts at a + i*stride_a (elements), same for b and c. */
int isd_op_gemm_batched(struct isd_op_ctx *ctx, int batch, int trans_a, int trans_b, int m, int n,
                        int k, float alpha, const float *a, int lda, size_t stride_a,
                        const float *b, int ldb, size_t stride_b, float beta, float *c, int ldc,
                        size_t stride_c);
/* y[rows][out] = x[rows][in] . w[out][in]^T + bias[out] (bias may be NULL);
 * flags ISD_OP_ACCUMULATE: y += that. */
int isd_op_linear(struct isd_op_ctx *ctx, int rows, int in, int out, const float *x, const float *w,
                  const float *bias, float *y, int flags);

/* ---- convolution ---- */

struct isd_op_conv2d_shape {
    int n;          /* batch */
    int c_in, h, w; /* input channels and size */
    int c_out;      /* output channels */
    int kh, kw;     /* kernel size (1x1 and 3x3 in SD; any size >= 1 works) */
    int stride;     /* same in both directions, >= 1 */
    int pad_top, pad_left, pad_bottom, pad_right; /* zero padding, >= 0; VAE down: 0,0,1,1 */
};
/* Output size: h_out = (h + pad_top + pad_bottom - kh) / stride + 1 (same for w); EINVAL if the
 * shape is invalid or the padded input is smaller than the kernel. */
int isd_op_conv2d_out_size(const struct isd_op_conv2d_shape *s, int *h_out, int *w_out);
int isd_op_conv2d_workspace(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s,
                            size_t *bytes);
/* y[n][c_out][h_out][w_out] = conv(x, w) + bias (bias may be NULL); flags: ISD_OP_ACCUMULATE. */
int isd_op_conv2d(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, const float *x,
                  const float *w, const float *bias, float *y, int flags, void *ws, size_t ws_size);

/* ---- attention: o = softmax(q k^T * scale [+ causal mask]) v, per batch and head ---- */

struct isd_op_attn_shape {
    int batch, heads;
    int lq, lk;             /* query and key/value tokens (e.g. 4096 x 77 for cross-attention) */
    int d_head;             /* per-head width; q/k/v/o rows hold heads*d_head values */
    int ldq, ldk, ldv, ldo; /* row strides in floats; 0 = heads*d_head. Batch b starts at
                               row b*lq (q, o) or b*lk (k, v). A fused QKV buffer [L][3C] is
                               q = p, k = p + C, v = p + 2C with ld 3C. */
    int causal;  /* 1: query i sees keys j <= i only (CLIP; top-left aligned when lq != lk) */
    float scale; /* 0 = 1/sqrt(d_head) */
};
int isd_op_attention_workspace(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s,
                               size_t *bytes);
int isd_op_attention(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s, const float *q,
                     const float *k, const float *v, float *o, void *ws, size_t ws_size);

/* ---- normalisation ---- */

/* GroupNorm over x[n][c][hw]: groups divides c; mean and biased variance per (n, group);
 * y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c] (gamma/beta NULL: 1/0);
 * flags ISD_OP_SILU: then y = silu(y). */
int isd_op_group_norm(struct isd_op_ctx *ctx, int n, int c, int hw, int groups, float eps,
                      const float *x, const float *gamma, const float *beta, float *y, int flags);
/* LayerNorm over the last dim of x[rows][cols]; gamma/beta [cols] (NULL: 1/0). */
int isd_op_layer_norm(struct isd_op_ctx *ctx, int rows, int cols, float eps, const float *x,
                      const float *gamma, const float *beta, float *y);
/* Softmax over the last dim of x[rows][cols]. */
int isd_op_softmax(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y);

/* ---- activations on n elements (y may be x) ---- */

int isd_op_silu(struct isd_op_ctx *ctx, size_t n, const float *x, float *y); /* x*sigmoid(x) */
int isd_op_gelu(struct isd_op_ctx *ctx, size_t n, const float *x, float *y); /* exact: x*Phi(x) */
int isd_op_quick_gelu(struct isd_op_ctx *ctx, size_t n, const float *x, float *y); /* x*s(1.702x) */
int isd_op_relu(struct isd_op_ctx *ctx, size_t n, const float *x, float *y);
int isd_op_tanh(struct isd_op_ctx *ctx, size_t n, const float *x, float *y);
/* GEGLU as LDM: x[rows][2*cols] = [a | gate]; y[rows][cols] = a * gelu(gate). */
int isd_op_geglu(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y);

/* ---- element-wise arithmetic (n elements) ---- */

int isd_op_add(struct isd_op_ctx *ctx, size_t n, const float *a, const float *b, float *y);
int isd_op_mul(struct isd_op_ctx *ctx, size_t n, const float *a, const float *b, float *y);
int isd_op_scale(struct isd_op_ctx *ctx, size_t n, const float *x, float s, float *y);
/* y = alpha*x + beta*y */
int isd_op_axpby(struct isd_op_ctx *ctx, size_t n, float alpha, const float *x, float beta,
                 float *y);
/* Broadcast add over x[n][c][inner]: y[i][j][k] = x[i][j][k] + bias[i*bias_stride + j].
 * Conv/channel bias on NCHW: inner = h*w, bias_stride = 0. ResBlock time embedding [n][c]:
 * bias_stride = c. Row bias on tokens [rows][cols]: n = rows, c = cols, inner = 1. */
int isd_op_add_bias(struct isd_op_ctx *ctx, int n, int c, size_t inner, const float *x,
                    const float *bias, size_t bias_stride, float *y);

/* ---- layout and embeddings ---- */

/* y[n][c1+c2][hw] = cat(a[n][c1][hw], b[n][c2][hw]) along channels. */
int isd_op_concat_channels(struct isd_op_ctx *ctx, int n, int c1, int c2, size_t hw, const float *a,
                           const float *b, float *y);
/* Nearest x2: x[nc][h][w] -> y[nc][2h][2w] (nc = batch * channels). */
int isd_op_upsample_nearest2x(struct isd_op_ctx *ctx, int nc, int h, int w, const float *x,
                              float *y);
/* y[b][j][i] = x[b][i][j] for x[batch][rows][cols]: NCHW <-> tokens ("b c (hw) <-> b (hw) c"). */
int isd_op_transpose(struct isd_op_ctx *ctx, int batch, int rows, int cols, const float *x,
                     float *y);
/* Sinusoidal timestep embedding (LDM util.timestep_embedding): half = dim/2,
 * f_j = exp(-ln(max_period) * j / half), y[i] = [cos(t_i f_0..), sin(t_i f_0..)] (+ one zero
 * column when dim is odd). max_period is 10000 in SD. */
int isd_op_timestep_embedding(struct isd_op_ctx *ctx, int n, const float *t, int dim,
                              float max_period, float *y);
/* y[i] = table[ids[i]] + pos[i] (pos may be NULL), rows of dim floats; table has vocab rows.
 * EINVAL when an id is outside [0, vocab). */
int isd_op_embedding(struct isd_op_ctx *ctx, int n, int dim, const int32_t *ids, const float *table,
                     int vocab, const float *pos, float *y);

#endif
