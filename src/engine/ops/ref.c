/*
 * Reference implementations: the plainest loops that compute each op's definition, with
 * double accumulation and double intermediate math, rounded to float once at the end. They run
 * on the pool (each output element is computed by exactly one worker with the same loop, so
 * results do not depend on the thread count). The tests compare them with PyTorch float64.
 */
#include "engine/ops/ops_int.h"

#include <math.h>
#include <string.h>

/* ---- GEMM ---- */

struct gemm_job {
    const struct isd_op_gemm_args *g;
};

static void ref_gemm_rows(void *arg, size_t begin, size_t end)
{
    const struct isd_op_gemm_args *g = ((struct gemm_job *)arg)->g;
    for (size_t r = begin; r < end; r++) {
        size_t bi = r / (size_t)g->m;
        int i = (int)(r % (size_t)g->m);
        const float *a = g->a + bi * g->stride_a;
        const float *b = g->b + bi * g->stride_b;
        float *c = g->c + bi * g->stride_c;
        for (int j = 0; j < g->n; j++) {
            double s = 0.0;
            for (int p = 0; p < g->k; p++) {
                double av = g->trans_a ? a[(size_t)p * g->lda + i] : a[(size_t)i * g->lda + p];
                double bv = g->trans_b ? b[(size_t)j * g->ldb + p] : b[(size_t)p * g->ldb + j];
                s += av * bv;
            }
            float *cp = c + (size_t)i * g->ldc + j;
            double prior = g->beta == 0.0f ? 0.0 : (double)g->beta * *cp;
            *cp = (float)((double)g->alpha * s + prior);
        }
    }
}

void isd_op_ref_gemm(struct isd_op_ctx *ctx, const struct isd_op_gemm_args *g)
{
    struct gemm_job j = {g};
    isd_op_parallel_for(ctx, (size_t)g->batch * g->m, 1, ref_gemm_rows, &j);
}

struct linear_job {
    int in, out, flags;
    const float *x, *w, *bias;
    float *y;
};

static void ref_linear_rows(void *arg, size_t begin, size_t end)
{
    const struct linear_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->in;
        float *y = j->y + r * j->out;
        for (int o = 0; o < j->out; o++) {
            const float *w = j->w + (size_t)o * j->in;
            double s = j->bias ? j->bias[o] : 0.0;
            for (int i = 0; i < j->in; i++)
                s += (double)x[i] * w[i];
            if (j->flags & ISD_OP_ACCUMULATE)
                s += y[o];
            y[o] = (float)s;
        }
    }
}

void isd_op_ref_linear(struct isd_op_ctx *ctx, int rows, int in, int out, const float *x,
                       const float *w, const float *bias, float *y, int flags)
{
    struct linear_job j = {in, out, flags, x, w, bias, y};
    isd_op_parallel_for(ctx, (size_t)rows, 1, ref_linear_rows, &j);
}

/* ---- conv2d ---- */

struct conv_job {
    const struct isd_op_conv2d_shape *s;
    int ho, wo, flags;
    const float *x, *w, *bias;
    float *y;
};

/* one output row (n, co, oy) per item */
static void ref_conv_rows(void *arg, size_t begin, size_t end)
{
    const struct conv_job *j = arg;
    const struct isd_op_conv2d_shape *s = j->s;
    for (size_t item = begin; item < end; item++) {
        int oy = (int)(item % (size_t)j->ho);
        int co = (int)(item / (size_t)j->ho % (size_t)s->c_out);
        size_t n = item / (size_t)j->ho / (size_t)s->c_out;
        const float *x = j->x + n * s->c_in * s->h * s->w;
        float *y = j->y + ((n * s->c_out + co) * j->ho + oy) * (size_t)j->wo;
        for (int ox = 0; ox < j->wo; ox++) {
            double acc = j->bias ? j->bias[co] : 0.0;
            for (int ci = 0; ci < s->c_in; ci++) {
                for (int ky = 0; ky < s->kh; ky++) {
                    int iy = oy * s->stride + ky - s->pad_top;
                    if (iy < 0 || iy >= s->h)
                        continue;
                    for (int kx = 0; kx < s->kw; kx++) {
                        int ix = ox * s->stride + kx - s->pad_left;
                        if (ix < 0 || ix >= s->w)
                            continue;
                        size_t wi = (((size_t)co * s->c_in + ci) * s->kh + ky) * s->kw + kx;
                        size_t xi = ((size_t)ci * s->h + iy) * s->w + ix;
                        acc += (double)j->w[wi] * x[xi];
                    }
                }
            }
            if (j->flags & ISD_OP_ACCUMULATE)
                acc += y[ox];
            y[ox] = (float)acc;
        }
    }
}

void isd_op_ref_conv2d(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho, int wo,
                       const float *x, const float *w, const float *bias, float *y, int flags)
{
    struct conv_job j = {s, ho, wo, flags, x, w, bias, y};
    isd_op_parallel_for(ctx, (size_t)s->n * s->c_out * ho, 1, ref_conv_rows, &j);
}

/* ---- attention ---- */

size_t isd_op_attention_ws_ref(const struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s)
{
    /* one row of lk double scores per worker */
    return (size_t)ctx->threads * ((size_t)s->lk * sizeof(double) + ISD_OP_ALIGN);
}

struct attn_job {
    const struct isd_op_attn_shape *s;
    const float *q, *k, *v;
    float *o;
    char *ws;
};

/* items are (batch, head, query) triples, split in contiguous ranges per worker */
static void ref_attn_worker(void *arg, int w, int nw)
{
    const struct attn_job *j = arg;
    const struct isd_op_attn_shape *s = j->s;
    double *p = isd_op_align(j->ws + (size_t)w * ((size_t)s->lk * sizeof(double) + ISD_OP_ALIGN));
    size_t begin, end;
    isd_op_split((size_t)s->batch * s->heads * s->lq, nw, w, &begin, &end);
    for (size_t item = begin; item < end; item++) {
        int i = (int)(item % (size_t)s->lq);
        int h = (int)(item / (size_t)s->lq % (size_t)s->heads);
        size_t b = item / (size_t)s->lq / (size_t)s->heads;
        const float *q = j->q + (b * s->lq + i) * s->ldq + (size_t)h * s->d_head;
        int nk = s->causal ? (i + 1 < s->lk ? i + 1 : s->lk) : s->lk;
        double mx = -INFINITY;
        for (int t = 0; t < nk; t++) {
            const float *k = j->k + (b * s->lk + t) * s->ldk + (size_t)h * s->d_head;
            double d = 0.0;
            for (int e = 0; e < s->d_head; e++)
                d += (double)q[e] * k[e];
            p[t] = d * s->scale;
            if (p[t] > mx)
                mx = p[t];
        }
        double sum = 0.0;
        for (int t = 0; t < nk; t++) {
            p[t] = exp(p[t] - mx);
            sum += p[t];
        }
        float *o = j->o + (b * s->lq + i) * s->ldo + (size_t)h * s->d_head;
        for (int e = 0; e < s->d_head; e++) {
            double acc = 0.0;
            for (int t = 0; t < nk; t++)
                acc += p[t] * j->v[(b * s->lk + t) * s->ldv + (size_t)h * s->d_head + e];
            o[e] = (float)(acc / sum);
        }
    }
}

void isd_op_ref_attention(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s, const float *q,
                          const float *k, const float *v, float *o, void *ws)
{
    struct attn_job j = {s, q, k, v, o, ws};
    isd_op_parallel(ctx, ctx->threads, ref_attn_worker, &j);
}

/* ---- activations ---- */

static double act1(enum isd_op_act act, double x)
{
    switch (act) {
    case ISD_OP_ACT_SILU:
        return x / (1.0 + exp(-x));
    case ISD_OP_ACT_GELU:
        return 0.5 * x * erfc(-x / sqrt(2.0));
    case ISD_OP_ACT_QUICK_GELU:
        return x / (1.0 + exp(-1.702 * x));
    case ISD_OP_ACT_RELU:
        return x < 0.0 ? 0.0 : x;
    case ISD_OP_ACT_TANH:
        return tanh(x);
    }
    return x;
}

struct act_job {
    enum isd_op_act act;
    const float *x;
    float *y;
};

static void ref_act_range(void *arg, size_t begin, size_t end)
{
    const struct act_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->y[i] = (float)act1(j->act, j->x[i]);
}

void isd_op_ref_act(struct isd_op_ctx *ctx, enum isd_op_act act, size_t n, const float *x, float *y)
{
    struct act_job j = {act, x, y};
    isd_op_parallel_for(ctx, n, 4096, ref_act_range, &j);
}

struct geglu_job {
    int cols;
    const float *x;
    float *y;
};

static void ref_geglu_rows(void *arg, size_t begin, size_t end)
{
    const struct geglu_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        const float *a = j->x + r * 2 * j->cols, *gate = a + j->cols;
        for (int c = 0; c < j->cols; c++)
            j->y[r * j->cols + c] = (float)(a[c] * act1(ISD_OP_ACT_GELU, gate[c]));
    }
}

void isd_op_ref_geglu(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y)
{
    struct geglu_job j = {cols, x, y};
    isd_op_parallel_for(ctx, (size_t)rows, 1, ref_geglu_rows, &j);
}

/* ---- norms and softmax ---- */

struct gn_job {
    int c, hw, groups, flags;
    float eps;
    const float *x, *gamma, *beta;
    float *y;
};

/* one (batch, group) per item */
static void ref_gn_items(void *arg, size_t begin, size_t end)
{
    const struct gn_job *j = arg;
    int cpg = j->c / j->groups;
    size_t len = (size_t)cpg * j->hw;
    for (size_t item = begin; item < end; item++) {
        int g = (int)(item % (size_t)j->groups);
        const float *x = j->x + item * len;
        float *y = j->y + item * len;
        double mean = 0.0, var = 0.0;
        for (size_t i = 0; i < len; i++)
            mean += x[i];
        mean /= (double)len;
        for (size_t i = 0; i < len; i++)
            var += (x[i] - mean) * (x[i] - mean);
        var /= (double)len;
        double rstd = 1.0 / sqrt(var + (double)j->eps);
        for (int cc = 0; cc < cpg; cc++) {
            int ch = g * cpg + cc;
            double ga = j->gamma ? j->gamma[ch] : 1.0, be = j->beta ? j->beta[ch] : 0.0;
            for (int p = 0; p < j->hw; p++) {
                size_t i = (size_t)cc * j->hw + p;
                double v = (x[i] - mean) * rstd * ga + be;
                if (j->flags & ISD_OP_SILU)
                    v = act1(ISD_OP_ACT_SILU, v);
                y[i] = (float)v;
            }
        }
    }
}

void isd_op_ref_group_norm(struct isd_op_ctx *ctx, int n, int c, int hw, int groups, float eps,
                           const float *x, const float *gamma, const float *beta, float *y,
                           int flags)
{
    struct gn_job j = {c, hw, groups, flags, eps, x, gamma, beta, y};
    isd_op_parallel_for(ctx, (size_t)n * groups, 1, ref_gn_items, &j);
}

struct ln_job {
    int cols;
    float eps;
    const float *x, *gamma, *beta;
    float *y;
};

static void ref_ln_rows(void *arg, size_t begin, size_t end)
{
    const struct ln_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->cols;
        float *y = j->y + r * j->cols;
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < j->cols; i++)
            mean += x[i];
        mean /= j->cols;
        for (int i = 0; i < j->cols; i++)
            var += (x[i] - mean) * (x[i] - mean);
        var /= j->cols;
        double rstd = 1.0 / sqrt(var + (double)j->eps);
        for (int i = 0; i < j->cols; i++) {
            double ga = j->gamma ? j->gamma[i] : 1.0, be = j->beta ? j->beta[i] : 0.0;
            y[i] = (float)((x[i] - mean) * rstd * ga + be);
        }
    }
}

void isd_op_ref_layer_norm(struct isd_op_ctx *ctx, int rows, int cols, float eps, const float *x,
                           const float *gamma, const float *beta, float *y)
{
    struct ln_job j = {cols, eps, x, gamma, beta, y};
    isd_op_parallel_for(ctx, (size_t)rows, 1, ref_ln_rows, &j);
}

struct softmax_job {
    int cols;
    const float *x;
    float *y;
};

static void ref_softmax_rows(void *arg, size_t begin, size_t end)
{
    const struct softmax_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->cols;
        float *y = j->y + r * j->cols;
        double mx = -INFINITY, sum = 0.0;
        for (int i = 0; i < j->cols; i++)
            mx = x[i] > mx ? x[i] : mx;
        for (int i = 0; i < j->cols; i++)
            sum += exp(x[i] - mx);
        for (int i = 0; i < j->cols; i++)
            y[i] = (float)(exp(x[i] - mx) / sum);
    }
}

void isd_op_ref_softmax(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y)
{
    struct softmax_job j = {cols, x, y};
    isd_op_parallel_for(ctx, (size_t)rows, 1, ref_softmax_rows, &j);
}

/* ---- element-wise ---- */

struct bin_job {
    enum isd_op_binary op;
    float alpha, beta;
    const float *a, *b;
    float *y;
};

static void ref_binary_range(void *arg, size_t begin, size_t end)
{
    const struct bin_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->y[i] = j->op == ISD_OP_BIN_ADD ? (float)((double)j->a[i] + j->b[i])
                                          : (float)((double)j->a[i] * j->b[i]);
}

void isd_op_ref_binary(struct isd_op_ctx *ctx, enum isd_op_binary op, size_t n, const float *a,
                       const float *b, float *y)
{
    struct bin_job j = {op, 0, 0, a, b, y};
    isd_op_parallel_for(ctx, n, 4096, ref_binary_range, &j);
}

static void ref_axpby_range(void *arg, size_t begin, size_t end)
{
    const struct bin_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->y[i] = (float)((double)j->alpha * j->a[i] + (double)j->beta * j->y[i]);
}

void isd_op_ref_axpby(struct isd_op_ctx *ctx, size_t n, float alpha, const float *x, float beta,
                      float *y)
{
    struct bin_job j = {ISD_OP_BIN_ADD, alpha, beta, x, NULL, y};
    isd_op_parallel_for(ctx, n, 4096, ref_axpby_range, &j);
}

static void ref_scale_range(void *arg, size_t begin, size_t end)
{
    const struct bin_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->y[i] = (float)((double)j->alpha * j->a[i]);
}

void isd_op_ref_scale(struct isd_op_ctx *ctx, size_t n, const float *x, float s, float *y)
{
    struct bin_job j = {ISD_OP_BIN_MUL, s, 0, x, NULL, y};
    isd_op_parallel_for(ctx, n, 4096, ref_scale_range, &j);
}

struct bias_job {
    int c;
    size_t inner, bias_stride;
    const float *x, *bias;
    float *y;
};

/* one (i, j) row of `inner` elements per item */
static void ref_bias_rows(void *arg, size_t begin, size_t end)
{
    const struct bias_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        size_t i = r / (size_t)j->c, ch = r % (size_t)j->c;
        double bv = j->bias[i * j->bias_stride + ch];
        for (size_t k = 0; k < j->inner; k++)
            j->y[r * j->inner + k] = (float)(j->x[r * j->inner + k] + bv);
    }
}

void isd_op_ref_add_bias(struct isd_op_ctx *ctx, int n, int c, size_t inner, const float *x,
                         const float *bias, size_t bias_stride, float *y)
{
    struct bias_job j = {c, inner, bias_stride, x, bias, y};
    isd_op_parallel_for(ctx, (size_t)n * c, 1, ref_bias_rows, &j);
}
