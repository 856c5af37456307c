/*
 * Fast element-wise ops, norms and softmax: the ISA's vectorised kernels (ctx->kern) applied
 * to contiguous pieces, spread over the pool when the array is large enough to pay for it.
 * Reductions (GroupNorm groups, LayerNorm and softmax rows) are never split between workers,
 * so results are the same for any thread count.
 */
#include "engine/ops/ops_int.h"

#include <math.h>

/* below this many elements per worker, waking the pool costs more than it saves */
#define MIN_CHUNK 16384

struct act_job {
    const struct isd_op_kern *k;
    enum isd_op_act act;
    const float *x;
    float *y;
};

static void act_range(void *arg, size_t begin, size_t end)
{
    const struct act_job *j = arg;
    const float *x = j->x + begin;
    float *y = j->y + begin;
    size_t n = end - begin;
    switch (j->act) {
    case ISD_OP_ACT_SILU:
        j->k->silu(y, x, n);
        break;
    case ISD_OP_ACT_GELU:
        j->k->gelu(y, x, n);
        break;
    case ISD_OP_ACT_QUICK_GELU:
        j->k->quick_gelu(y, x, n);
        break;
    case ISD_OP_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case ISD_OP_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    }
}

void isd_op_fast_act(struct isd_op_ctx *ctx, enum isd_op_act act, size_t n, const float *x,
                     float *y)
{
    struct act_job j = {ctx->kern, act, x, y};
    isd_op_parallel_for(ctx, n, MIN_CHUNK, act_range, &j);
}

struct geglu_job {
    const struct isd_op_kern *k;
    int cols;
    const float *x;
    float *y;
};

static void geglu_rows(void *arg, size_t begin, size_t end)
{
    const struct geglu_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        const float *a = j->x + r * 2 * j->cols;
        j->k->geglu(j->y + r * j->cols, a, a + j->cols, (size_t)j->cols);
    }
}

void isd_op_fast_geglu(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y)
{
    struct geglu_job j = {ctx->kern, cols, x, y};
    isd_op_parallel_for(ctx, (size_t)rows, MIN_CHUNK / (size_t)cols + 1, geglu_rows, &j);
}

/* ---- GroupNorm: two-pass statistics per (batch, group), then one normalising pass ---- */

struct gn_job {
    const struct isd_op_kern *k;
    int c, hw, groups, silu;
    float eps;
    const float *x, *gamma, *beta;
    float *y;
};

static void gn_items(void *arg, size_t begin, size_t end)
{
    const struct gn_job *j = arg;
    int cpg = j->c / j->groups;
    size_t len = (size_t)cpg * j->hw;
    for (size_t item = begin; item < end; item++) {
        int g = (int)(item % (size_t)j->groups);
        const float *x = j->x + item * len;
        float *y = j->y + item * len;
        double mean = x[0] + j->k->sum(x, len, x[0]) / (double)len;
        float mean_hi = (float)mean;
        double mean_lo = mean - mean_hi; /* matters when |mean| >> std (eps 1e-6 cases) */
        double var = j->k->sum_sq_dev(x, len, mean_hi) / (double)len - mean_lo * mean_lo;
        double rstd = 1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)j->eps);
        for (int cc = 0; cc < cpg; cc++) {
            int ch = g * cpg + cc;
            double a = rstd * (j->gamma ? j->gamma[ch] : 1.0), b = j->beta ? j->beta[ch] : 0.0;
            size_t off = (size_t)cc * j->hw;
            /* y = (x - mean_hi) a + (b - mean_lo a) */
            j->k->norm(y + off, x + off, (size_t)j->hw, mean_hi, (float)a, (float)(b - mean_lo * a),
                       j->silu);
        }
    }
}

void isd_op_fast_group_norm(struct isd_op_ctx *ctx, int n, int c, int hw, int groups, float eps,
                            const float *x, const float *gamma, const float *beta, float *y,
                            int flags)
{
    struct gn_job j = {ctx->kern, c, hw,    groups, (flags & ISD_OP_SILU) != 0,
                       eps,       x, gamma, beta,   y};
    size_t len = (size_t)(c / groups) * hw;
    isd_op_parallel_for(ctx, (size_t)n * groups, MIN_CHUNK / len + 1, gn_items, &j);
}

struct ln_job {
    const struct isd_op_kern *k;
    int cols;
    float eps;
    const float *x, *gamma, *beta;
    float *y;
};

static void ln_rows(void *arg, size_t begin, size_t end)
{
    const struct ln_job *j = arg;
    size_t n = (size_t)j->cols;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * n;
        double mean = x[0] + j->k->sum(x, n, x[0]) / (double)n;
        float mean_hi = (float)mean;
        double mean_lo = mean - mean_hi;
        double var = j->k->sum_sq_dev(x, n, mean_hi) / (double)n - mean_lo * mean_lo;
        double rstd = 1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)j->eps);
        j->k->norm_vec(j->y + r * n, x, n, mean_hi, (float)rstd, (float)(-mean_lo * rstd), j->gamma,
                       j->beta);
    }
}

void isd_op_fast_layer_norm(struct isd_op_ctx *ctx, int rows, int cols, float eps, const float *x,
                            const float *gamma, const float *beta, float *y)
{
    struct ln_job j = {ctx->kern, cols, eps, x, gamma, beta, y};
    isd_op_parallel_for(ctx, (size_t)rows, MIN_CHUNK / (size_t)cols + 1, ln_rows, &j);
}

struct softmax_job {
    const struct isd_op_kern *k;
    int cols;
    const float *x;
    float *y;
};

static void softmax_rows(void *arg, size_t begin, size_t end)
{
    const struct softmax_job *j = arg;
    size_t n = (size_t)j->cols;
    for (size_t r = begin; r < end; r++) {
        float *y = j->y + r * n;
        float mx = j->k->max(j->x + r * n, n);
        float sum = j->k->exp_sum(y, j->x + r * n, n, mx);
        j->k->scale_shift(y, y, n, 1.0f / sum, 0.0f);
    }
}

void isd_op_fast_softmax(struct isd_op_ctx *ctx, int rows, int cols, const float *x, float *y)
{
    struct softmax_job j = {ctx->kern, cols, x, y};
    isd_op_parallel_for(ctx, (size_t)rows, MIN_CHUNK / (size_t)cols + 1, softmax_rows, &j);
}

/* ---- arithmetic ---- */

struct bin_job {
    const struct isd_op_kern *k;
    enum isd_op_binary op;
    float alpha, beta;
    const float *a, *b;
    float *y;
};

static void binary_range(void *arg, size_t begin, size_t end)
{
    const struct bin_job *j = arg;
    if (j->op == ISD_OP_BIN_ADD)
        j->k->add(j->y + begin, j->a + begin, j->b + begin, end - begin);
    else
        j->k->mul(j->y + begin, j->a + begin, j->b + begin, end - begin);
}

void isd_op_fast_binary(struct isd_op_ctx *ctx, enum isd_op_binary op, size_t n, const float *a,
                        const float *b, float *y)
{
    struct bin_job j = {ctx->kern, op, 0, 0, a, b, y};
    isd_op_parallel_for(ctx, n, MIN_CHUNK, binary_range, &j);
}

static void axpby_range(void *arg, size_t begin, size_t end)
{
    const struct bin_job *j = arg;
    j->k->axpby(j->y + begin, j->alpha, j->a + begin, j->beta, end - begin);
}

void isd_op_fast_axpby(struct isd_op_ctx *ctx, size_t n, float alpha, const float *x, float beta,
                       float *y)
{
    struct bin_job j = {ctx->kern, ISD_OP_BIN_ADD, alpha, beta, x, NULL, y};
    isd_op_parallel_for(ctx, n, MIN_CHUNK, axpby_range, &j);
}

static void scale_range(void *arg, size_t begin, size_t end)
{
    const struct bin_job *j = arg;
    j->k->scale_shift(j->y + begin, j->a + begin, end - begin, j->alpha, 0.0f);
}

void isd_op_fast_scale(struct isd_op_ctx *ctx, size_t n, const float *x, float s, float *y)
{
    struct bin_job j = {ctx->kern, ISD_OP_BIN_MUL, s, 0, x, NULL, y};
    isd_op_parallel_for(ctx, n, MIN_CHUNK, scale_range, &j);
}

struct bias_job {
    const struct isd_op_kern *k;
    int c;
    size_t inner, bias_stride;
    const float *x, *bias;
    float *y;
};

/* inner > 1: one (i, ch) plane per item, a scalar added to a run of `inner` values */
static void bias_planes(void *arg, size_t begin, size_t end)
{
    const struct bias_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        size_t i = r / (size_t)j->c, ch = r % (size_t)j->c;
        float bv = j->bias[i * j->bias_stride + ch];
        j->k->scale_shift(j->y + r * j->inner, j->x + r * j->inner, j->inner, 1.0f, bv);
    }
}

/* inner == 1: rows of c values plus a bias vector */
static void bias_rows(void *arg, size_t begin, size_t end)
{
    const struct bias_job *j = arg;
    size_t c = (size_t)j->c;
    for (size_t i = begin; i < end; i++)
        j->k->add(j->y + i * c, j->x + i * c, j->bias + i * j->bias_stride, c);
}

void isd_op_fast_add_bias(struct isd_op_ctx *ctx, int n, int c, size_t inner, const float *x,
                          const float *bias, size_t bias_stride, float *y)
{
    struct bias_job j = {ctx->kern, c, inner, bias_stride, x, bias, y};
    if (inner == 1)
        isd_op_parallel_for(ctx, (size_t)n, MIN_CHUNK / (size_t)c + 1, bias_rows, &j);
    else
        isd_op_parallel_for(ctx, (size_t)n * c, MIN_CHUNK / inner + 1, bias_planes, &j);
}
