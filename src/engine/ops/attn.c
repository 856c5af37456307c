/*
 * Fast attention, flash-attention style: for each (batch, head, block of BQ queries), walk the
 * keys in blocks of BK: S = scale * Q_blk K_blk^T (sgemm), keep a running row max m and row
 * sum l, P = exp(S - m_new) in place, rescale the accumulated output by exp(m_old - m_new) and
 * add P V_blk (sgemm). The output block is accumulated transposed, O^T [d][BQ], so that the
 * queries are OpenBLAS's long M dimension (M = d_head = 40 runs its kernels poorly); at the
 * end o = (O^T)^T / l. Per worker only a BQ x BK score tile (256 KB) and O^T exist, never the
 * Lq x Lk matrix. Measured (bench/engine_ops, 2-core Zen 4): 0.65 of the sgemm rate at
 * d_head 40, 0.7 at 64/80, 0.9 at 512; the rest is sgemm packing (d_head is small) and exp.
 *
 * Items are handed out dynamically (causal rows differ in cost); each item is computed the same
 * way whichever worker takes it, so results do not depend on the thread count.
 */
#include "engine/ops/ops_int.h"

#include <math.h>
#include <stdatomic.h>

#define BQ 128 /* queries per block */
#define BK 512 /* keys per block */

/* per worker: S [bq][bk], O^T [d][bq], m, l and corr [bq] */
static size_t worker_floats(const struct isd_op_attn_shape *s)
{
    size_t bq = (size_t)(s->lq < BQ ? s->lq : BQ), bk = (size_t)(s->lk < BK ? s->lk : BK);
    return bq * bk + (size_t)s->d_head * bq + 3 * bq;
}

size_t isd_op_attention_ws_fast(const struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s)
{
    return (size_t)ctx->threads * (worker_floats(s) * sizeof(float) + ISD_OP_ALIGN);
}

struct attn_job {
    const struct isd_op_kern *kern;
    const struct isd_op_attn_shape *s;
    const float *q, *k, *v;
    float *o;
    char *ws;
    int q_blocks;
    atomic_size_t next;
};

struct attn_bufs {
    float *s;    /* scores / probabilities [nq][nk] */
    float *ot;   /* output accumulator, transposed [d][nq] */
    float *m;    /* running row max [nq] */
    float *l;    /* running row sum [nq] */
    float *corr; /* e^(m_old - m_new) of the current key block [nq] */
};

static void attn_item(struct attn_job *j, size_t item, const struct attn_bufs *w)
{
    const struct isd_op_attn_shape *s = j->s;
    const struct isd_op_kern *kern = j->kern;
    int qb = (int)(item % (size_t)j->q_blocks);
    int h = (int)(item / (size_t)j->q_blocks % (size_t)s->heads);
    size_t b = item / (size_t)j->q_blocks / (size_t)s->heads;
    int i0 = qb * BQ, nq = s->lq - i0 < BQ ? s->lq - i0 : BQ, d = s->d_head;
    size_t hoff = (size_t)h * d;
    const float *q = j->q + (b * s->lq + i0) * s->ldq + hoff;
    const float *k = j->k + b * s->lk * s->ldk + hoff;
    const float *v = j->v + b * s->lk * s->ldv + hoff;
    float *o = j->o + (b * s->lq + i0) * s->ldo + hoff;
    int k_end = s->lk;
    if (s->causal && i0 + nq < k_end)
        k_end = i0 + nq;
    for (int j0 = 0; j0 < k_end; j0 += BK) {
        int nk = k_end - j0 < BK ? k_end - j0 : BK, first = j0 == 0, rescale = 0;
        isd_op_sgemm(kern, 0, 1, nq, nk, d, s->scale, q, s->ldq, k + (size_t)j0 * s->ldk, s->ldk,
                     0.0f, w->s, nk);
        for (int r = 0; r < nq; r++) {
            float *row = w->s + (size_t)r * nk;
            if (s->causal) {
                for (int c = i0 + r + 1 - j0 < 0 ? 0 : i0 + r + 1 - j0; c < nk; c++)
                    row[c] = -INFINITY;
            }
            float mx = kern->max(row, (size_t)nk);
            float m_new = first || mx > w->m[r] ? mx : w->m[r];
            float sum = kern->exp_sum(row, row, (size_t)nk, m_new);
            if (first) {
                w->l[r] = sum;
            } else {
                w->corr[r] = expf(w->m[r] - m_new);
                w->l[r] = w->l[r] * w->corr[r] + sum;
                rescale |= w->corr[r] != 1.0f;
            }
            w->m[r] = m_new;
        }
        if (rescale) {
            for (int e = 0; e < d; e++)
                kern->mul(w->ot + (size_t)e * nq, w->ot + (size_t)e * nq, w->corr, (size_t)nq);
        }
        /* O^T[d][nq] (+)= V^T P^T: the queries are OpenBLAS's (column-major) M dimension,
         * which its kernels handle far better than M = d_head (40) */
        isd_op_sgemm(kern, 1, 1, d, nq, nk, 1.0f, v + (size_t)j0 * s->ldv, s->ldv, w->s, nk,
                     first ? 0.0f : 1.0f, w->ot, nq);
    }
    for (int r = 0; r < nq; r++) {
        float inv = 1.0f / w->l[r], *orow = o + (size_t)r * s->ldo;
        for (int e = 0; e < d; e++)
            orow[e] = w->ot[(size_t)e * nq + r] * inv;
    }
}

static void attn_worker(void *arg, int wi, int nw)
{
    (void)nw;
    struct attn_job *j = arg;
    size_t per = worker_floats(j->s) * sizeof(float) + ISD_OP_ALIGN;
    size_t bq = (size_t)(j->s->lq < BQ ? j->s->lq : BQ);
    size_t bk = (size_t)(j->s->lk < BK ? j->s->lk : BK);
    struct attn_bufs w;
    w.s = isd_op_align(j->ws + (size_t)wi * per);
    w.ot = w.s + bq * bk;
    w.m = w.ot + (size_t)j->s->d_head * bq;
    w.l = w.m + bq;
    w.corr = w.l + bq;
    size_t items = (size_t)j->s->batch * j->s->heads * j->q_blocks;
    for (;;) {
        size_t item = atomic_fetch_add(&j->next, 1);
        if (item >= items)
            break;
        attn_item(j, item, &w);
    }
}

void isd_op_fast_attention(struct isd_op_ctx *ctx, const struct isd_op_attn_shape *s,
                           const float *q, const float *k, const float *v, float *o, void *ws)
{
    struct attn_job j = {ctx->kern, s, q, k, v, o, ws, (s->lq + BQ - 1) / BQ, 0};
    size_t items = (size_t)s->batch * s->heads * j.q_blocks;
    isd_op_parallel(ctx, items < (size_t)ctx->threads ? (int)items : ctx->threads, attn_worker, &j);
}
