/*
 * Fast conv2d: for each block of output rows of one image, im2col of just those rows into the
 * worker's slice of the workspace (K = c_in*kh*kw rows of P = rows*w_out pixels), then one
 * sgemm Y[c_out][P] = W[c_out][K] . col[K][P] written straight into the NCHW output (ldc =
 * h_out*w_out). The weights are used in their PyTorch layout as the GEMM's A. A 1x1 stride-1
 * unpadded conv skips im2col: the input image already is col.
 *
 * Work items are (image, row tile, c_out block). Tiles are sized so a col tile stays cache
 * sized (COL_BYTES_MAX) but holds enough pixels (TILE_PIXELS) to amortise packing the weights;
 * when an image has fewer tiles than workers (16x16 and 8x8 UNet levels), c_out is split
 * instead, so each worker streams only its share of the (up to 59 MB) weights.
 *
 * 3x3 stride-1 pad-1 convs with a large output go to Winograd F(2x2,3x3) instead
 * (winograd.c, isd_op_use_winograd).
 */
#include "engine/ops/ops_int.h"

#include <string.h>

/* Measured on the 2-core Zen 4 (bench/engine_ops): 1024..8192 pixels and 6..48 MB caps are
 * within the noise of each other for the UNet and VAE shapes; this keeps 2 workers' tiles in L3. */
#define TILE_PIXELS   2048               /* wanted pixels per tile (GEMM N) */
#define COL_BYTES_MAX ((size_t)12 << 20) /* cap on one worker's im2col tile */
#define MIN_PIXELS    256                /* do not split rows below this many pixels */

struct conv_plan {
    int direct;        /* 1x1, stride 1, no padding: no im2col */
    int k;             /* c_in * kh * kw */
    int tile_rows;     /* output rows per tile */
    int n_tiles;       /* tiles per image */
    int m_parts;       /* c_out blocks per tile */
    size_t col_floats; /* im2col floats per worker */
};

static void plan_conv(const struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho,
                      int wo, struct conv_plan *p)
{
    memset(p, 0, sizeof *p);
    p->direct = s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad_top == 0 && s->pad_left == 0 &&
                s->pad_bottom == 0 && s->pad_right == 0;
    p->k = s->c_in * s->kh * s->kw;
    int threads = ctx->threads;
    if (p->direct) {
        p->tile_rows = ho;
    } else {
        int rows = (TILE_PIXELS + wo - 1) / wo;
        while (rows > 1 && (size_t)p->k * rows * wo * sizeof(float) > COL_BYTES_MAX)
            rows--;
        p->tile_rows = rows < ho ? rows : ho;
    }
    p->n_tiles = (ho + p->tile_rows - 1) / p->tile_rows;
    p->m_parts = 1;
    long row_jobs = (long)s->n * p->n_tiles;
    if (row_jobs < threads) {
        long pixels = (long)s->n * ho * wo;
        int want = (int)((threads + s->n - 1) / s->n); /* tiles per image to feed all */
        if (pixels >= (long)threads * MIN_PIXELS && want <= ho) {
            p->tile_rows = (ho + want - 1) / want;
            p->n_tiles = (ho + p->tile_rows - 1) / p->tile_rows;
        } else {
            int parts = (int)((threads + row_jobs - 1) / row_jobs);
            int units = (s->c_out + 15) / 16;
            p->m_parts = parts < units ? parts : units;
        }
    }
    p->col_floats = p->direct ? 0 : (size_t)p->k * p->tile_rows * wo;
}

size_t isd_op_conv2d_ws_fast(const struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s,
                             int ho, int wo)
{
    if (isd_op_use_winograd(ctx, s, ho, wo))
        return isd_op_winograd_ws(ctx, s, ho, wo);
    struct conv_plan p;
    plan_conv(ctx, s, ho, wo, &p);
    if (p.direct)
        return 0;
    return (size_t)ctx->threads * (p.col_floats * sizeof(float) + ISD_OP_ALIGN);
}

/* col[K][P] for output rows [r0, r1) of one image x[c_in][h][w] */
static void im2col(const struct isd_op_conv2d_shape *s, int wo, const float *x, int r0, int r1,
                   float *col)
{
    size_t npix = (size_t)(r1 - r0) * wo;
    int st = s->stride;
    for (int ci = 0; ci < s->c_in; ci++) {
        const float *xc = x + (size_t)ci * s->h * s->w;
        for (int ky = 0; ky < s->kh; ky++) {
            for (int kx = 0; kx < s->kw; kx++) {
                float *dst = col + (((size_t)ci * s->kh + ky) * s->kw + kx) * npix;
                int off = kx - s->pad_left; /* ix = ox*st + off */
                int lo = off >= 0 ? 0 : (-off + st - 1) / st;
                int hi = s->w - 1 - off < 0 ? 0 : (s->w - 1 - off) / st + 1;
                if (lo > wo)
                    lo = wo;
                if (hi > wo)
                    hi = wo;
                if (hi < lo)
                    hi = lo;
                for (int oy = r0; oy < r1; oy++) {
                    float *d = dst + (size_t)(oy - r0) * wo;
                    int iy = oy * st + ky - s->pad_top;
                    if (iy < 0 || iy >= s->h) {
                        memset(d, 0, (size_t)wo * sizeof *d);
                        continue;
                    }
                    const float *src = xc + (size_t)iy * s->w;
                    if (lo > 0)
                        memset(d, 0, (size_t)lo * sizeof *d);
                    if (st == 1) {
                        memcpy(d + lo, src + lo + off, (size_t)(hi - lo) * sizeof *d);
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            d[ox] = src[ox * st + off];
                    }
                    if (hi < wo)
                        memset(d + hi, 0, (size_t)(wo - hi) * sizeof *d);
                }
            }
        }
    }
}

struct conv_job {
    const struct isd_op_ctx *ctx;
    const struct isd_op_conv2d_shape *s;
    const struct conv_plan *p;
    int ho, wo, flags;
    const float *x, *w, *bias;
    float *y;
    char *ws;
};

static void conv_item(const struct conv_job *j, size_t item, float *col)
{
    const struct isd_op_conv2d_shape *s = j->s;
    const struct conv_plan *p = j->p;
    int part = (int)(item % (size_t)p->m_parts);
    int tile = (int)(item / (size_t)p->m_parts % (size_t)p->n_tiles);
    size_t img = item / (size_t)p->m_parts / (size_t)p->n_tiles;
    int r0 = tile * p->tile_rows, r1 = r0 + p->tile_rows < j->ho ? r0 + p->tile_rows : j->ho;
    size_t units = (size_t)(s->c_out + 15) / 16, ub, ue;
    isd_op_split(units, p->m_parts, part, &ub, &ue);
    int c0 = (int)(ub * 16) < s->c_out ? (int)(ub * 16) : s->c_out;
    int c1 = (int)(ue * 16) < s->c_out ? (int)(ue * 16) : s->c_out;
    if (c0 >= c1 || r0 >= r1)
        return;
    size_t plane = (size_t)j->ho * j->wo, npix = (size_t)(r1 - r0) * j->wo;
    const float *x = j->x + img * s->c_in * s->h * s->w;
    float *y = j->y + (img * s->c_out + c0) * plane + (size_t)r0 * j->wo;
    const float *b;
    int ldb;
    if (p->direct) {
        b = x + (size_t)r0 * j->wo;
        ldb = (int)plane;
    } else {
        im2col(s, j->wo, x, r0, r1, col);
        b = col;
        ldb = (int)npix;
    }
    float beta = (j->flags & ISD_OP_ACCUMULATE) ? 1.0f : 0.0f;
    if (j->bias) {
        for (int co = c0; co < c1; co++) {
            float *yr = y + (size_t)(co - c0) * plane, bv = j->bias[co];
            if (j->flags & ISD_OP_ACCUMULATE) {
                j->ctx->kern->scale_shift(yr, yr, npix, 1.0f, bv);
            } else {
                for (size_t i = 0; i < npix; i++)
                    yr[i] = bv;
            }
        }
        beta = 1.0f;
    }
    isd_op_sgemm(j->ctx->kern, 0, 0, c1 - c0, (int)npix, p->k, 1.0f, j->w + (size_t)c0 * p->k, p->k,
                 b, ldb, beta, y, (int)plane);
}

static void conv_worker(void *arg, int w, int nw)
{
    const struct conv_job *j = arg;
    const struct conv_plan *p = j->p;
    float *col = NULL;
    if (!p->direct)
        col = isd_op_align(j->ws + (size_t)w * (p->col_floats * sizeof(float) + ISD_OP_ALIGN));
    size_t begin, end;
    isd_op_split((size_t)j->s->n * p->n_tiles * p->m_parts, nw, w, &begin, &end);
    for (size_t item = begin; item < end; item++)
        conv_item(j, item, col);
}

void isd_op_fast_conv2d(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho, int wo,
                        const float *x, const float *w, const float *bias, float *y, int flags,
                        void *ws)
{
    if (isd_op_use_winograd(ctx, s, ho, wo)) {
        isd_op_winograd_conv2d(ctx, s, ho, wo, x, w, bias, y, flags, ws);
        return;
    }
    struct conv_plan p;
    plan_conv(ctx, s, ho, wo, &p);
    struct conv_job j = {ctx, s, &p, ho, wo, flags, x, w, bias, y, ws};
    size_t items = (size_t)s->n * p.n_tiles * p.m_parts;
    isd_op_parallel(ctx, items < (size_t)ctx->threads ? (int)items : ctx->threads, conv_worker, &j);
}
