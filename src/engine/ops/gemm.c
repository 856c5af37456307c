/*
 * Fast GEMM and linear: cblas_sgemm (OpenBLAS, single-threaded per call) on blocks of C,
 * spread over the pool. A matrix is split along its larger output dimension into one block
 * per worker (multiples of 16 rows/columns), so each worker packs only its share of the
 * operand it splits and the whole of the other.
 */
#include "engine/ops/ops_int.h"

#include <cblas.h>
#include <string.h>

/* below this many multiply-adds a matrix is not split */
#define MIN_SPLIT_MACS (1u << 21)

struct gemm_job {
    const struct isd_op_kern *kern;
    const struct isd_op_gemm_args *g;
    int parts;   /* blocks per matrix */
    int split_m; /* blocks are ranges of rows (else columns) */
};

void isd_op_sgemm(const struct isd_op_kern *kern, int trans_a, int trans_b, int m, int n, int k,
                  float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                  float *c, int ldc)
{
    if (!trans_a && !trans_b && (double)m * n * k <= ISD_OP_SMALL_NN) {
        /* C row i = beta C_i + sum_p (alpha a_ip) B_p: one axpy per (i, p) */
        for (int i = 0; i < m; i++) {
            float *ci = c + (size_t)i * ldc;
            if (beta == 0.0f)
                memset(ci, 0, (size_t)n * sizeof *ci);
            else if (beta != 1.0f)
                kern->scale_shift(ci, ci, (size_t)n, beta, 0.0f);
            for (int p = 0; p < k; p++)
                kern->axpby(ci, alpha * a[(size_t)i * lda + p], b + (size_t)p * ldb, 1.0f,
                            (size_t)n);
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* block `part` of `parts` along a dimension of size n, in multiples of 16 */
static void block_range(int n, int parts, int part, int *lo, int *hi)
{
    int units = (n + 15) / 16;
    size_t b, e;
    isd_op_split((size_t)units, parts, part, &b, &e);
    *lo = (int)b * 16 < n ? (int)b * 16 : n;
    *hi = (int)e * 16 < n ? (int)e * 16 : n;
}

static void gemm_block(const struct gemm_job *j, size_t bi, int lo, int hi)
{
    const struct isd_op_gemm_args *g = j->g;
    int split_m = j->split_m;
    if (lo >= hi)
        return;
    const float *a = g->a + bi * g->stride_a, *b = g->b + bi * g->stride_b;
    float *c = g->c + bi * g->stride_c;
    int m = g->m, n = g->n;
    if (split_m) {
        a += g->trans_a ? (size_t)lo : (size_t)lo * g->lda;
        c += (size_t)lo * g->ldc;
        m = hi - lo;
    } else {
        b += g->trans_b ? (size_t)lo * g->ldb : (size_t)lo;
        c += lo;
        n = hi - lo;
    }
    isd_op_sgemm(j->kern, g->trans_a, g->trans_b, m, n, g->k, g->alpha, a, g->lda, b, g->ldb,
                 g->beta, c, g->ldc);
}

static void gemm_worker(void *arg, int w, int nw)
{
    const struct gemm_job *j = arg;
    size_t begin, end;
    isd_op_split((size_t)j->g->batch * j->parts, nw, w, &begin, &end);
    for (size_t item = begin; item < end; item++) {
        int lo, hi;
        block_range(j->split_m ? j->g->m : j->g->n, j->parts, (int)(item % (size_t)j->parts), &lo,
                    &hi);
        gemm_block(j, item / (size_t)j->parts, lo, hi);
    }
}

static int parts_per_matrix(const struct isd_op_ctx *ctx, int batch, int m, int n, int k)
{
    double macs = (double)m * n * k;
    if (ctx->threads <= 1 || batch >= ctx->threads || macs < MIN_SPLIT_MACS)
        return 1;
    int parts = (ctx->threads + batch - 1) / batch;
    int units = ((m > n ? m : n) + 15) / 16;
    return parts < units ? parts : units;
}

void isd_op_fast_gemm(struct isd_op_ctx *ctx, const struct isd_op_gemm_args *g)
{
    struct gemm_job j = {ctx->kern, g, parts_per_matrix(ctx, g->batch, g->m, g->n, g->k),
                         g->m >= g->n};
    size_t items = (size_t)g->batch * j.parts;
    isd_op_parallel(ctx, items < (size_t)ctx->threads ? (int)items : ctx->threads, gemm_worker, &j);
}

struct linear_job {
    const struct isd_op_kern *kern;
    int rows, in, out, flags, parts, split_m;
    const float *x, *w, *bias;
    float *y;
};

static void linear_worker(void *arg, int wi, int nw)
{
    const struct linear_job *j = arg;
    size_t pb, pe;
    isd_op_split((size_t)j->parts, nw, wi, &pb, &pe);
    for (size_t part = pb; part < pe; part++) {
        int lo, hi;
        block_range(j->split_m ? j->rows : j->out, j->parts, (int)part, &lo, &hi);
        if (lo >= hi)
            continue;
        int r0 = j->split_m ? lo : 0, r1 = j->split_m ? hi : j->rows;
        int c0 = j->split_m ? 0 : lo, c1 = j->split_m ? j->out : hi;
        float beta = 0.0f;
        if (j->flags & ISD_OP_ACCUMULATE)
            beta = 1.0f;
        if (j->bias) {
            for (int r = r0; r < r1; r++) {
                float *y = j->y + (size_t)r * j->out + c0;
                if (j->flags & ISD_OP_ACCUMULATE)
                    j->kern->add(y, y, j->bias + c0, (size_t)(c1 - c0));
                else
                    memcpy(y, j->bias + c0, (size_t)(c1 - c0) * sizeof *y);
            }
            beta = 1.0f;
        }
        isd_op_sgemm(j->kern, 0, 1, r1 - r0, c1 - c0, j->in, 1.0f, j->x + (size_t)r0 * j->in, j->in,
                     j->w + (size_t)c0 * j->in, j->in, beta, j->y + (size_t)r0 * j->out + c0,
                     j->out);
    }
}

void isd_op_fast_linear(struct isd_op_ctx *ctx, int rows, int in, int out, const float *x,
                        const float *w, const float *bias, float *y, int flags)
{
    struct linear_job j = {ctx->kern, rows, in, out, flags, 1, rows >= out, x, w, bias, y};
    j.parts = parts_per_matrix(ctx, 1, rows, out, in);
    isd_op_parallel(ctx, j.parts, linear_worker, &j);
}
