/*
 * The public ops: argument checks (sizes, overflow, aliasing, workspace), then dispatch to the
 * reference (ref.c) or fast (gemm.c, conv.c, attn.c, eltwise.c) implementation. Layout ops
 * (concat, upsample, transpose, embeddings) are plain copies and have one implementation.
 */
#include "engine/ops/ops_int.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define BAD(ctx, ...) isd_op_fail(ctx, ISD_ENG_EINVAL, __VA_ARGS__)

/* *r = a * b; 0 on overflow of size_t or of the float byte count */
static int mul_ok(size_t a, size_t b, size_t *r)
{
    if (a != 0 && b > SIZE_MAX / sizeof(float) / a)
        return 0;
    *r = a * b;
    return 1;
}

static int mul3_ok(size_t a, size_t b, size_t c, size_t *r)
{
    size_t t;
    return mul_ok(a, b, &t) && mul_ok(t, c, r);
}

static int mul4_ok(size_t a, size_t b, size_t c, size_t d, size_t *r)
{
    size_t t;
    return mul3_ok(a, b, c, &t) && mul_ok(t, d, r);
}

/* do [a, a+na) and [b, b+nb) (in floats) overlap? */
static int overlaps(const float *a, size_t na, const float *b, size_t nb)
{
    uintptr_t a0 = (uintptr_t)a, a1 = a0 + na * sizeof(float);
    uintptr_t b0 = (uintptr_t)b, b1 = b0 + nb * sizeof(float);
    return na && nb && a0 < b1 && b0 < a1;
}

/* y may be exactly x, or disjoint from it */
static int same_or_disjoint(const float *x, const float *y, size_t n)
{
    return x == y || !overlaps(x, n, y, n);
}

/* ---- GEMMs ---- */

/* floats spanned by a rows x cols matrix with leading dimension ld */
static size_t extent(int rows, int cols, int ld)
{
    return (size_t)(rows - 1) * (size_t)ld + (size_t)cols;
}

static int check_gemm(struct isd_op_ctx *ctx, const struct isd_op_gemm_args *g)
{
    if (g->batch < 1 || g->m < 1 || g->n < 1 || g->k < 1)
        return BAD(ctx, "gemm: batch %d, m %d, n %d, k %d must be >= 1", g->batch, g->m, g->n,
                   g->k);
    if (!g->a || !g->b || !g->c)
        return BAD(ctx, "gemm: NULL matrix");
    int ar = g->trans_a ? g->k : g->m, ac = g->trans_a ? g->m : g->k;
    int br = g->trans_b ? g->n : g->k, bc = g->trans_b ? g->k : g->n;
    if (g->lda < ac || g->ldb < bc || g->ldc < g->n)
        return BAD(ctx, "gemm: leading dimension too small (lda %d, ldb %d, ldc %d)", g->lda,
                   g->ldb, g->ldc);
    size_t ea = extent(ar, ac, g->lda), eb = extent(br, bc, g->ldb),
           ec = extent(g->m, g->n, g->ldc);
    size_t last;
    if (!mul_ok((size_t)g->batch - 1, g->stride_a, &last) || last > SIZE_MAX / 8 - ea ||
        !mul_ok((size_t)g->batch - 1, g->stride_b, &last) || last > SIZE_MAX / 8 - eb ||
        !mul_ok((size_t)g->batch - 1, g->stride_c, &last) || last > SIZE_MAX / 8 - ec)
        return BAD(ctx, "gemm: batch strides overflow");
    if (g->batch > 1 && g->stride_c < ec)
        return BAD(ctx, "gemm: stride_c %zu smaller than one C (%zu)", g->stride_c, ec);
    size_t ta = ea + (size_t)(g->batch - 1) * g->stride_a;
    size_t tb = eb + (size_t)(g->batch - 1) * g->stride_b;
    size_t tc = ec + (size_t)(g->batch - 1) * g->stride_c;
    if (overlaps(g->c, tc, g->a, ta) || overlaps(g->c, tc, g->b, tb))
        return BAD(ctx, "gemm: C overlaps A or B");
    return 0;
}

int isd_op_gemm_batched(struct isd_op_ctx *ctx, int batch, int trans_a, int trans_b, int m, int n,
                        int k, float alpha, const float *a, int lda, size_t stride_a,
                        const float *b, int ldb, size_t stride_b, float beta, float *c, int ldc,
                        size_t stride_c)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    struct isd_op_gemm_args g = {
        batch, trans_a != 0, trans_b != 0, m,   n,        k,        alpha,   beta, a, b,
        c,     lda,          ldb,          ldc, stride_a, stride_b, stride_c};
    int rc = check_gemm(ctx, &g);
    if (rc < 0)
        return rc;
    if (ctx->reference)
        isd_op_ref_gemm(ctx, &g);
    else
        isd_op_fast_gemm(ctx, &g);
    return 0;
}

int isd_op_gemm(struct isd_op_ctx *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    return isd_op_gemm_batched(ctx, 1, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta,
                               c, ldc, 0);
}

int isd_op_linear(struct isd_op_ctx *ctx, int rows, int in, int out, const float *x, const float *w,
                  const float *bias, float *y, int flags)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t nx = 0, nw = 0, ny = 0;
    if (rows < 1 || in < 1 || out < 1)
        return BAD(ctx, "linear: rows %d, in %d, out %d must be >= 1", rows, in, out);
    if (!x || !w || !y)
        return BAD(ctx, "linear: NULL x, w or y");
    if (!mul_ok((size_t)rows, (size_t)in, &nx) || !mul_ok((size_t)out, (size_t)in, &nw) ||
        !mul_ok((size_t)rows, (size_t)out, &ny))
        return BAD(ctx, "linear: size overflows");
    if (overlaps(y, ny, x, nx) || overlaps(y, ny, w, nw) || (bias && overlaps(y, ny, bias, out)))
        return BAD(ctx, "linear: y overlaps an input");
    if (ctx->reference)
        isd_op_ref_linear(ctx, rows, in, out, x, w, bias, y, flags);
    else
        isd_op_fast_linear(ctx, rows, in, out, x, w, bias, y, flags);
    return 0;
}

/* ---- conv2d ---- */

int isd_op_conv2d_out_size(const struct isd_op_conv2d_shape *s, int *h_out, int *w_out)
{
    if (!s || s->n < 1 || s->c_in < 1 || s->h < 1 || s->w < 1 || s->c_out < 1 || s->kh < 1 ||
        s->kw < 1 || s->stride < 1 || s->pad_top < 0 || s->pad_left < 0 || s->pad_bottom < 0 ||
        s->pad_right < 0)
        return ISD_ENG_EINVAL;
    long ph = (long)s->h + s->pad_top + s->pad_bottom, pw = (long)s->w + s->pad_left + s->pad_right;
    if (ph < s->kh || pw < s->kw || ph > INT_MAX || pw > INT_MAX)
        return ISD_ENG_EINVAL;
    int ho = (int)((ph - s->kh) / s->stride + 1), wo = (int)((pw - s->kw) / s->stride + 1);
    if (h_out)
        *h_out = ho;
    if (w_out)
        *w_out = wo;
    return 0;
}

/* checks the shape; fills the output size and the element counts */
static int check_conv(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int *ho, int *wo,
                      size_t *nx, size_t *nw, size_t *ny)
{
    if (!s)
        return BAD(ctx, "conv2d: NULL shape");
    if (isd_op_conv2d_out_size(s, ho, wo) < 0)
        return BAD(ctx,
                   "conv2d: bad shape n %d c_in %d h %d w %d c_out %d kernel %dx%d stride %d "
                   "pad %d,%d,%d,%d",
                   s->n, s->c_in, s->h, s->w, s->c_out, s->kh, s->kw, s->stride, s->pad_top,
                   s->pad_left, s->pad_bottom, s->pad_right);
    size_t plane, k;
    if (!mul4_ok((size_t)s->n, (size_t)s->c_in, (size_t)s->h, (size_t)s->w, nx) ||
        !mul4_ok((size_t)s->c_out, (size_t)s->c_in, (size_t)s->kh, (size_t)s->kw, nw) ||
        !mul_ok((size_t)*ho, (size_t)*wo, &plane) ||
        !mul3_ok((size_t)s->n, (size_t)s->c_out, plane, ny) ||
        !mul3_ok((size_t)s->c_in, (size_t)s->kh, (size_t)s->kw, &k) || plane > INT_MAX ||
        k > INT_MAX)
        return BAD(ctx, "conv2d: size overflows");
    return 0;
}

int isd_op_conv2d_workspace(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s,
                            size_t *bytes)
{
    if (!ctx || !bytes)
        return ISD_ENG_EINVAL;
    int ho, wo;
    size_t nx = 0, nw = 0, ny = 0;
    int rc = check_conv(ctx, s, &ho, &wo, &nx, &nw, &ny);
    if (rc < 0)
        return rc;
    /* the reference needs none; report the fast size so switching modes needs no re-plan */
    *bytes = isd_op_conv2d_ws_fast(ctx, s, ho, wo);
    return 0;
}

int isd_op_conv2d(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, const float *x,
                  const float *w, const float *bias, float *y, int flags, void *ws, size_t ws_size)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    int ho, wo;
    size_t nx = 0, nw = 0, ny = 0;
    int rc = check_conv(ctx, s, &ho, &wo, &nx, &nw, &ny);
    if (rc < 0)
        return rc;
    if (!x || !w || !y)
        return BAD(ctx, "conv2d: NULL x, w or y");
    if (overlaps(y, ny, x, nx) || overlaps(y, ny, w, nw) ||
        (bias && overlaps(y, ny, bias, (size_t)s->c_out)))
        return BAD(ctx, "conv2d: y overlaps an input");
    /* the size *_workspace() reports, in both modes (the reference needs none) */
    size_t need = isd_op_conv2d_ws_fast(ctx, s, ho, wo);
    if (need && (!ws || ws_size < need))
        return BAD(ctx, "conv2d: workspace of %zu bytes, %zu needed", ws ? ws_size : 0, need);
    if (need &&
        (overlaps(ws, need / sizeof(float), y, ny) || overlaps(ws, need / sizeof(float), x, nx)))
        return BAD(ctx, "conv2d: workspace overlaps x or y");
    if (ctx->reference)
        isd_op_ref_conv2d(ctx, s, ho, wo, x, w, bias, y, flags);
    else
        isd_op_fast_conv2d(ctx, s, ho, wo, x, w, bias, y, flags, ws);
    return 0;
}

/* ---- attention ---- */

/* validates s and resolves its defaults (ld*, scale) into *r; element extents in n[4] */
static int check_attn(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s,
                      struct isd_op_attn_shape *r, size_t n[4])
{
    if (!s)
        return BAD(ctx, "attention: NULL shape");
    *r = *s;
    if (s->batch < 1 || s->heads < 1 || s->lq < 1 || s->lk < 1 || s->d_head < 1 || s->ldq < 0 ||
        s->ldk < 0 || s->ldv < 0 || s->ldo < 0 || !isfinite(s->scale))
        return BAD(ctx, "attention: bad shape batch %d heads %d lq %d lk %d d_head %d", s->batch,
                   s->heads, s->lq, s->lk, s->d_head);
    if ((long)s->heads * s->d_head > INT_MAX)
        return BAD(ctx, "attention: heads * d_head overflows");
    int width = s->heads * s->d_head;
    int *ld[4] = {&r->ldq, &r->ldk, &r->ldv, &r->ldo};
    for (int i = 0; i < 4; i++) {
        if (*ld[i] == 0)
            *ld[i] = width;
        if (*ld[i] < width)
            return BAD(ctx, "attention: row stride %d < heads*d_head %d", *ld[i], width);
        int rows = i == 0 || i == 3 ? s->lq : s->lk;
        size_t total;
        if (!mul3_ok((size_t)s->batch, (size_t)rows, (size_t)*ld[i], &total))
            return BAD(ctx, "attention: size overflows");
        n[i] = total - (size_t)(*ld[i] - width);
    }
    if (r->scale == 0.0f)
        r->scale = (float)(1.0 / sqrt((double)s->d_head));
    return 0;
}

int isd_op_attention_workspace(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s,
                               size_t *bytes)
{
    if (!ctx || !bytes)
        return ISD_ENG_EINVAL;
    struct isd_op_attn_shape r;
    size_t n[4];
    int rc = check_attn(ctx, s, &r, n);
    if (rc < 0)
        return rc;
    size_t a = isd_op_attention_ws_ref(ctx, &r), b = isd_op_attention_ws_fast(ctx, &r);
    *bytes = a > b ? a : b;
    return 0;
}

int isd_op_attention(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s, const float *q,
                     const float *k, const float *v, float *o, void *ws, size_t ws_size)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    struct isd_op_attn_shape r;
    size_t n[4];
    int rc = check_attn(ctx, s, &r, n);
    if (rc < 0)
        return rc;
    if (!q || !k || !v || !o)
        return BAD(ctx, "attention: NULL q, k, v or o");
    if (overlaps(o, n[3], q, n[0]) || overlaps(o, n[3], k, n[1]) || overlaps(o, n[3], v, n[2]))
        return BAD(ctx, "attention: o overlaps q, k or v");
    size_t need_ref = isd_op_attention_ws_ref(ctx, &r), need = isd_op_attention_ws_fast(ctx, &r);
    if (need_ref > need)
        need = need_ref; /* what isd_op_attention_workspace() reports */
    if (!ws || ws_size < need)
        return BAD(ctx, "attention: workspace of %zu bytes, %zu needed", ws ? ws_size : 0, need);
    if (overlaps(ws, need / sizeof(float), o, n[3]) ||
        overlaps(ws, need / sizeof(float), q, n[0]) ||
        overlaps(ws, need / sizeof(float), k, n[1]) || overlaps(ws, need / sizeof(float), v, n[2]))
        return BAD(ctx, "attention: workspace overlaps an operand");
    if (ctx->reference)
        isd_op_ref_attention(ctx, &r, q, k, v, o, ws);
    else
        isd_op_fast_attention(ctx, &r, q, k, v, o, ws);
    return 0;
}

/* ---- norms ---- */

int isd_op_group_norm(struct isd_op_ctx *ctx, int n, int c, int hw, int groups, float eps,
                      const float *x, const float *gamma, const float *beta, float *y, int flags)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t total;
    if (n < 1 || c < 1 || hw < 1 || groups < 1 || c % groups != 0)
        return BAD(ctx, "group_norm: n %d, c %d, hw %d, groups %d (must divide c)", n, c, hw,
                   groups);
    if (!(eps >= 0.0f) || !isfinite(eps))
        return BAD(ctx, "group_norm: eps %g", (double)eps);
    if (!x || !y)
        return BAD(ctx, "group_norm: NULL x or y");
    if (!mul3_ok((size_t)n, (size_t)c, (size_t)hw, &total))
        return BAD(ctx, "group_norm: size overflows");
    if (!same_or_disjoint(x, y, total))
        return BAD(ctx, "group_norm: y partially overlaps x");
    if (ctx->reference)
        isd_op_ref_group_norm(ctx, n, c, hw, groups, eps, x, gamma, beta, y, flags);
    else
        isd_op_fast_group_norm(ctx, n, c, hw, groups, eps, x, gamma, beta, y, flags);
    return 0;
}

int isd_op_layer_norm(struct isd_op_ctx *ctx, int rows, int cols, float eps, const float *x,
                      const float *gamma, const float *beta, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t total;
    if (rows < 1 || cols < 1)
        return BAD(ctx, "layer_norm: rows %d, cols %d", rows, cols);
    if (!(eps >= 0.0f) || !isfinite(eps))
        return BAD(ctx, "layer_norm: eps %g", (double)eps);
    if (!x || !y)
        return BAD(ctx, "layer_norm: NULL x or y");
    if (!mul_ok((size_t)rows, (size_t)cols, &total))
        return BAD(ctx, "layer_norm: size overflows");
    if (!same_or_disjoint(x, y, total))
        return BAD(ctx, "layer_norm: y partially overlaps x");
    if (ctx->reference)
        isd_op_ref_layer_norm(ctx, rows, cols, eps, x, gamma, beta, y);
    else
        isd_op_fast_layer_norm(ctx, rows, cols, eps, x, gamma, beta, y);
    return 0;
}

int isd_op_softmax(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t total;
    if (rows < 1 || cols < 1)
        return BAD(ctx, "softmax: rows %d, cols %d", rows, cols);
    if (!x || !y)
        return BAD(ctx, "softmax: NULL x or y");
    if (!mul_ok((size_t)rows, (size_t)cols, &total))
        return BAD(ctx, "softmax: size overflows");
    if (!same_or_disjoint(x, y, total))
        return BAD(ctx, "softmax: y partially overlaps x");
    if (ctx->reference)
        isd_op_ref_softmax(ctx, rows, cols, x, y);
    else
        isd_op_fast_softmax(ctx, rows, cols, x, y);
    return 0;
}

/* ---- activations and arithmetic ---- */

static int check_unary(struct isd_op_ctx *ctx, const char *op, size_t n, const float *x,
                       const float *y)
{
    if (n > SIZE_MAX / sizeof(float))
        return BAD(ctx, "%s: size overflows", op);
    if (n && (!x || !y))
        return BAD(ctx, "%s: NULL x or y", op);
    if (!same_or_disjoint(x, y, n))
        return BAD(ctx, "%s: y partially overlaps x", op);
    return 0;
}

static int act(struct isd_op_ctx *ctx, enum isd_op_act a, const char *op, size_t n, const float *x,
               float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    int rc = check_unary(ctx, op, n, x, y);
    if (rc < 0 || n == 0)
        return rc;
    if (ctx->reference)
        isd_op_ref_act(ctx, a, n, x, y);
    else
        isd_op_fast_act(ctx, a, n, x, y);
    return 0;
}

int isd_op_silu(struct isd_op_ctx *ctx, size_t n, const float *x, float *y)
{
    return act(ctx, ISD_OP_ACT_SILU, "silu", n, x, y);
}

int isd_op_gelu(struct isd_op_ctx *ctx, size_t n, const float *x, float *y)
{
    return act(ctx, ISD_OP_ACT_GELU, "gelu", n, x, y);
}

int isd_op_quick_gelu(struct isd_op_ctx *ctx, size_t n, const float *x, float *y)
{
    return act(ctx, ISD_OP_ACT_QUICK_GELU, "quick_gelu", n, x, y);
}

int isd_op_relu(struct isd_op_ctx *ctx, size_t n, const float *x, float *y)
{
    return act(ctx, ISD_OP_ACT_RELU, "relu", n, x, y);
}

int isd_op_tanh(struct isd_op_ctx *ctx, size_t n, const float *x, float *y)
{
    return act(ctx, ISD_OP_ACT_TANH, "tanh", n, x, y);
}

int isd_op_geglu(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t ny, nx;
    if (rows < 1 || cols < 1)
        return BAD(ctx, "geglu: rows %d, cols %d", rows, cols);
    if (!x || !y)
        return BAD(ctx, "geglu: NULL x or y");
    if (!mul_ok((size_t)rows, (size_t)cols, &ny) || !mul_ok(ny, 2, &nx))
        return BAD(ctx, "geglu: size overflows");
    if (overlaps(x, nx, y, ny))
        return BAD(ctx, "geglu: y overlaps x");
    if (ctx->reference)
        isd_op_ref_geglu(ctx, rows, cols, x, y);
    else
        isd_op_fast_geglu(ctx, rows, cols, x, y);
    return 0;
}

static int binary(struct isd_op_ctx *ctx, enum isd_op_binary op, const char *name, size_t n,
                  const float *a, const float *b, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    int rc = check_unary(ctx, name, n, a, y);
    if (rc == 0)
        rc = check_unary(ctx, name, n, b, y);
    if (rc < 0 || n == 0)
        return rc;
    if (ctx->reference)
        isd_op_ref_binary(ctx, op, n, a, b, y);
    else
        isd_op_fast_binary(ctx, op, n, a, b, y);
    return 0;
}

int isd_op_add(struct isd_op_ctx *ctx, size_t n, const float *a, const float *b, float *y)
{
    return binary(ctx, ISD_OP_BIN_ADD, "add", n, a, b, y);
}

int isd_op_mul(struct isd_op_ctx *ctx, size_t n, const float *a, const float *b, float *y)
{
    return binary(ctx, ISD_OP_BIN_MUL, "mul", n, a, b, y);
}

int isd_op_scale(struct isd_op_ctx *ctx, size_t n, const float *x, float s, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    int rc = check_unary(ctx, "scale", n, x, y);
    if (rc < 0 || n == 0)
        return rc;
    if (ctx->reference)
        isd_op_ref_scale(ctx, n, x, s, y);
    else
        isd_op_fast_scale(ctx, n, x, s, y);
    return 0;
}

int isd_op_axpby(struct isd_op_ctx *ctx, size_t n, float alpha, const float *x, float beta,
                 float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    int rc = check_unary(ctx, "axpby", n, x, y);
    if (rc < 0 || n == 0)
        return rc;
    if (ctx->reference)
        isd_op_ref_axpby(ctx, n, alpha, x, beta, y);
    else
        isd_op_fast_axpby(ctx, n, alpha, x, beta, y);
    return 0;
}

int isd_op_add_bias(struct isd_op_ctx *ctx, int n, int c, size_t inner, const float *x,
                    const float *bias, size_t bias_stride, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t total, nb;
    if (n < 1 || c < 1 || inner < 1)
        return BAD(ctx, "add_bias: n %d, c %d, inner %zu must be >= 1", n, c, inner);
    if (!x || !bias || !y)
        return BAD(ctx, "add_bias: NULL x, bias or y");
    if (!mul3_ok((size_t)n, (size_t)c, inner, &total) || !mul_ok((size_t)n - 1, bias_stride, &nb) ||
        nb > SIZE_MAX / sizeof(float) - (size_t)c)
        return BAD(ctx, "add_bias: size overflows");
    if (!same_or_disjoint(x, y, total) || overlaps(y, total, bias, nb + (size_t)c))
        return BAD(ctx, "add_bias: y partially overlaps x or overlaps bias");
    if (ctx->reference)
        isd_op_ref_add_bias(ctx, n, c, inner, x, bias, bias_stride, y);
    else
        isd_op_fast_add_bias(ctx, n, c, inner, x, bias, bias_stride, y);
    return 0;
}

/* ---- layout and embeddings (one implementation: copies) ---- */

int isd_op_concat_channels(struct isd_op_ctx *ctx, int n, int c1, int c2, size_t hw, const float *a,
                           const float *b, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t na, nb, ny;
    if (n < 1 || c1 < 1 || c2 < 1 || hw < 1)
        return BAD(ctx, "concat_channels: n %d, c1 %d, c2 %d, hw %zu", n, c1, c2, hw);
    if (!a || !b || !y)
        return BAD(ctx, "concat_channels: NULL a, b or y");
    if (!mul3_ok((size_t)n, (size_t)c1, hw, &na) || !mul3_ok((size_t)n, (size_t)c2, hw, &nb) ||
        na > SIZE_MAX / sizeof(float) - nb)
        return BAD(ctx, "concat_channels: size overflows");
    ny = na + nb;
    if (overlaps(y, ny, a, na) || overlaps(y, ny, b, nb))
        return BAD(ctx, "concat_channels: y overlaps an input");
    size_t sa = (size_t)c1 * hw, sb = (size_t)c2 * hw;
    for (size_t i = 0; i < (size_t)n; i++) {
        memcpy(y + i * (sa + sb), a + i * sa, sa * sizeof *y);
        memcpy(y + i * (sa + sb) + sa, b + i * sb, sb * sizeof *y);
    }
    return 0;
}

struct up_job {
    int h, w;
    const float *x;
    float *y;
};

static void upsample_rows(void *arg, size_t begin, size_t end)
{
    const struct up_job *j = arg;
    size_t w = (size_t)j->w;
    for (size_t r = begin; r < end; r++) { /* r = plane * h + row */
        const float *src = j->x + r * w;
        float *d0 = j->y + r * 4 * w, *d1 = d0 + 2 * w;
        for (size_t i = 0; i < w; i++)
            d0[2 * i] = d0[2 * i + 1] = src[i];
        memcpy(d1, d0, 2 * w * sizeof *d1);
    }
}

int isd_op_upsample_nearest2x(struct isd_op_ctx *ctx, int nc, int h, int w, const float *x,
                              float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t nx, ny;
    if (nc < 1 || h < 1 || w < 1)
        return BAD(ctx, "upsample_nearest2x: nc %d, h %d, w %d", nc, h, w);
    if (!x || !y)
        return BAD(ctx, "upsample_nearest2x: NULL x or y");
    if (!mul3_ok((size_t)nc, (size_t)h, (size_t)w, &nx) || !mul_ok(nx, 4, &ny))
        return BAD(ctx, "upsample_nearest2x: size overflows");
    if (overlaps(x, nx, y, ny))
        return BAD(ctx, "upsample_nearest2x: y overlaps x");
    struct up_job j = {h, w, x, y};
    isd_op_parallel_for(ctx, (size_t)nc * h, 8192 / (size_t)w + 1, upsample_rows, &j);
    return 0;
}

struct tr_job {
    int rows, cols;
    const float *x;
    float *y;
};

/* items are (batch, block of 32 rows); 32x32 blocks keep both sides in cache */
static void transpose_blocks(void *arg, size_t begin, size_t end)
{
    const struct tr_job *j = arg;
    size_t rb = ((size_t)j->rows + 31) / 32, plane = (size_t)j->rows * j->cols;
    for (size_t item = begin; item < end; item++) {
        size_t b = item / rb, r0 = item % rb * 32;
        size_t r1 = r0 + 32 < (size_t)j->rows ? r0 + 32 : (size_t)j->rows;
        const float *x = j->x + b * plane;
        float *y = j->y + b * plane;
        for (size_t c0 = 0; c0 < (size_t)j->cols; c0 += 32) {
            size_t c1 = c0 + 32 < (size_t)j->cols ? c0 + 32 : (size_t)j->cols;
            for (size_t r = r0; r < r1; r++)
                for (size_t c = c0; c < c1; c++)
                    y[c * j->rows + r] = x[r * j->cols + c];
        }
    }
}

int isd_op_transpose(struct isd_op_ctx *ctx, int batch, int rows, int cols, const float *x,
                     float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t total;
    if (batch < 1 || rows < 1 || cols < 1)
        return BAD(ctx, "transpose: batch %d, rows %d, cols %d", batch, rows, cols);
    if (!x || !y)
        return BAD(ctx, "transpose: NULL x or y");
    if (!mul3_ok((size_t)batch, (size_t)rows, (size_t)cols, &total))
        return BAD(ctx, "transpose: size overflows");
    if (overlaps(x, total, y, total))
        return BAD(ctx, "transpose: y overlaps x");
    struct tr_job j = {rows, cols, x, y};
    size_t items = (size_t)batch * (((size_t)rows + 31) / 32);
    isd_op_parallel_for(ctx, items, 16384 / (32 * (size_t)cols) + 1, transpose_blocks, &j);
    return 0;
}

int isd_op_timestep_embedding(struct isd_op_ctx *ctx, int n, const float *t, int dim,
                              float max_period, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    if (n < 1 || dim < 1 || (size_t)n > SIZE_MAX / sizeof(float) / (size_t)dim)
        return BAD(ctx, "timestep_embedding: n %d, dim %d", n, dim);
    if (!(max_period > 0.0f) || !isfinite(max_period))
        return BAD(ctx, "timestep_embedding: max_period %g", (double)max_period);
    if (!t || !y)
        return BAD(ctx, "timestep_embedding: NULL t or y");
    int half = dim / 2;
    float c = (float)-log((double)max_period);
    for (int i = 0; i < n; i++) {
        float *yr = y + (size_t)i * dim;
        for (int j = 0; j < half; j++) {
            /* LDM's float32 steps: f = exp(-ln(P) * j / half), args = t * f; exp, cos and sin
             * correctly rounded (computed in double) */
            float a = (float)j * c / (float)half;
            float f = (float)exp((double)a);
            float arg = t[i] * f;
            yr[j] = (float)cos((double)arg);
            yr[half + j] = (float)sin((double)arg);
        }
        if (dim % 2)
            yr[dim - 1] = 0.0f;
    }
    return 0;
}

int isd_op_embedding(struct isd_op_ctx *ctx, int n, int dim, const int32_t *ids, const float *table,
                     int vocab, const float *pos, float *y)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    size_t ny, nt;
    if (n < 1 || dim < 1 || vocab < 1)
        return BAD(ctx, "embedding: n %d, dim %d, vocab %d", n, dim, vocab);
    if (!ids || !table || !y)
        return BAD(ctx, "embedding: NULL ids, table or y");
    if (!mul_ok((size_t)n, (size_t)dim, &ny) || !mul_ok((size_t)vocab, (size_t)dim, &nt))
        return BAD(ctx, "embedding: size overflows");
    if (overlaps(y, ny, table, nt) || (pos && overlaps(y, ny, pos, ny)))
        return BAD(ctx, "embedding: y overlaps table or pos");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return BAD(ctx, "embedding: token %d has id %d outside [0, %d)", i, (int)ids[i], vocab);
    for (int i = 0; i < n; i++) {
        const float *e = table + (size_t)ids[i] * dim;
        float *yr = y + (size_t)i * dim;
        if (pos) {
            const float *p = pos + (size_t)i * dim;
            for (int j = 0; j < dim; j++)
                yr[j] = e[j] + p[j];
        } else {
            memcpy(yr, e, (size_t)dim * sizeof *yr);
        }
    }
    return 0;
}
