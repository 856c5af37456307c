/*
 * Fast 3x3 stride-1 pad-1 conv2d by Winograd F(2x2,3x3) (Lavin & Gray 2015): the output is cut
 * into 2x2 tiles, each computed from a 4x4 input patch d as Y = A^T [(G g G^T) . (B^T d B)] A.
 * Over all channels the elementwise product becomes 16 GEMMs (one per point k of the 4x4
 * transformed tile): M_k[c_out][tiles] = U_k[c_out][c_in] . V_k[c_in][tiles]. That is 16
 * multiply-adds per 4 outputs per (c_out, c_in) instead of 36: 2.25x fewer FLOPs, paid for by
 * the transforms (memory bound) and by GEMMs with a smaller K (c_in instead of 9 c_in).
 *
 *   1. U = G g G^T for every (c_out, c_in) into the shared start of the workspace, in parallel
 *      over c_out (recomputed per call: the engine converts weights per layer, nothing cached);
 *   2. the tiles of all images, numbered img-major then row-major, are cut into blocks of nb
 *      tiles; each worker takes a contiguous range of blocks and for each: input transform
 *      into its V[16][c_in][nb], 16 sgemms into its M[16][c_out][nb], output transform into y
 *      (+ bias, y += with ISD_OP_ACCUMULATE). A last tile row/column past an odd output size
 *      reads zeros and writes only its valid outputs. When there are fewer blocks than
 *      workers, work items are (block, c_out range) instead, as in conv.c.
 *
 * Rounding: the transforms add at most 4 terms with coefficients 1 and 1/2, so the error
 * stays within a small factor of the direct GEMM's (measured in test_ops_fast.c).
 */
#include "engine/ops/ops_int.h"

#include <string.h>

/* From bench/engine_ops -w on the 2-core Zen 4 (time im2col / Winograd, 2 threads): 1.5-2.1 on
 * the UNet and VAE shapes from 2x 1280ch @16x16 (512 pixels) up, 1.06 at 1x 1280ch @16x16
 * (256 pixels), 0.84 at 2x 1280ch @8x8 (128 pixels), 0.17 for the 4-channel conv_in. */
#define WINO_MIN_PIXELS   256                /* fewer output pixels n*h_out*w_out: im2col */
#define WINO_MIN_CHANNELS 32                 /* fewer input channels: transforms outweigh */
#define WINO_MAX_CHANNELS 4096               /* keeps U and the block sizes far from overflow */
#define WINO_BLOCK_BYTES  ((size_t)16 << 20) /* cap on one worker's V + M */
#define WINO_FEW_TILES    64                 /* fewer tiles per worker: split c_out instead */
#define WINO_BLOCK_MIN    16                 /* tiles per block, at least */
#define WINO_BLOCK_MAX    512                /* tiles per block, at most */

struct wino_plan {
    int th, tw;       /* tile rows and columns per image */
    size_t tiles;     /* n * th * tw */
    int nb;           /* tiles per block (V/M row length) */
    size_t blocks;    /* ceil(tiles / nb) */
    int m_parts;      /* c_out blocks per tile block (work items: blocks * m_parts) */
    size_t u_floats;  /* 16 * c_out * c_in */
    size_t v_floats;  /* 16 * c_in * nb, per worker */
    int m_rows;       /* c_out rows of M: all of them, or the largest c_out part */
    size_t m_floats;  /* 16 * m_rows * nb, per worker */
    size_t ws_stride; /* bytes of one worker's V + M, alignment included */
};

int isd_op_use_winograd(const struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho,
                        int wo)
{
    if (ctx->winograd == ISD_OP_WINO_NEVER || s->kh != 3 || s->kw != 3 || s->stride != 1 ||
        s->pad_top != 1 || s->pad_left != 1 || s->pad_bottom != 1 || s->pad_right != 1 ||
        s->c_in > WINO_MAX_CHANNELS || s->c_out > WINO_MAX_CHANNELS)
        return 0;
    return ctx->winograd == ISD_OP_WINO_ALL ||
           ((long)s->n * ho * wo >= WINO_MIN_PIXELS && s->c_in >= WINO_MIN_CHANNELS);
}

static void plan_wino(const struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho,
                      int wo, struct wino_plan *p)
{
    memset(p, 0, sizeof *p);
    p->th = (ho + 1) / 2;
    p->tw = (wo + 1) / 2;
    p->tiles = (size_t)s->n * p->th * p->tw;
    size_t per_tile = (size_t)16 * (s->c_in + s->c_out) * sizeof(float);
    size_t nb = WINO_BLOCK_BYTES / per_tile;
    if (nb > WINO_BLOCK_MAX)
        nb = WINO_BLOCK_MAX;
    nb = nb / 16 * 16;
    if (nb < WINO_BLOCK_MIN)
        nb = WINO_BLOCK_MIN;
    size_t threads = (size_t)ctx->threads, total = (p->tiles + nb - 1) / nb;
    p->m_parts = 1;
    if (p->tiles <= threads * WINO_FEW_TILES && p->tiles <= WINO_BLOCK_MAX) {
        /* few tiles (small images): one block, c_out split over the workers, so each
         * streams only its share of U (105 MB at 1280 channels) with GEMMs of N = tiles */
        size_t parts = threads, units = ((size_t)s->c_out + 15) / 16;
        total = 1;
        p->m_parts = (int)(parts < units ? parts : units);
    } else {
        /* equal blocks, a whole number per worker, no larger than the cap */
        total = (total + threads - 1) / threads * threads;
    }
    nb = (p->tiles + total - 1) / total;
    nb = (nb + 15) / 16 * 16; /* rows of V and M start on cache lines */
    p->nb = (int)nb;
    p->blocks = (p->tiles + nb - 1) / nb;
    p->u_floats = (size_t)16 * s->c_out * s->c_in;
    p->v_floats = (size_t)16 * s->c_in * nb;
    size_t units = ((size_t)s->c_out + 15) / 16;
    size_t part_rows = (units + (size_t)p->m_parts - 1) / (size_t)p->m_parts * 16;
    p->m_rows = part_rows < (size_t)s->c_out ? (int)part_rows : s->c_out;
    p->m_floats = (size_t)16 * p->m_rows * nb;
    p->ws_stride = (p->v_floats + p->m_floats) * sizeof(float) + 2 * ISD_OP_ALIGN;
}

size_t isd_op_winograd_ws(const struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho,
                          int wo)
{
    struct wino_plan p;
    plan_wino(ctx, s, ho, wo, &p);
    return p.u_floats * sizeof(float) + ISD_OP_ALIGN + (size_t)ctx->threads * p.ws_stride;
}

struct wino_job {
    const struct isd_op_ctx *ctx;
    const struct isd_op_conv2d_shape *s;
    const struct wino_plan *p;
    int ho, wo, flags;
    const float *x, *w, *bias;
    float *y;
    float *u; /* [16][c_out][c_in] */
    char *ws; /* per-worker V and M after u */
};

/* U[k][co][ci] = (G g G^T)[k] for output channels [begin, end), 16 input channels at a time
 * through a small buffer, so that U is written in runs of 64 bytes rather than one float each */
static void weight_transform(void *arg, size_t begin, size_t end)
{
    const struct wino_job *j = arg;
    size_t c_in = (size_t)j->s->c_in, plane = (size_t)j->s->c_out * c_in;
    float u[16][16]; /* [k][ci - ci0] */
    for (size_t co = begin; co < end; co++) {
        for (size_t ci0 = 0; ci0 < c_in; ci0 += 16) {
            size_t n = c_in - ci0 < 16 ? c_in - ci0 : 16;
            const float *g0 = j->w + (co * c_in + ci0) * 9;
            for (size_t i = 0; i < n; i++) {
                const float *g = g0 + i * 9;
                float t[4][3]; /* G g: rows of g combined */
                for (int c = 0; c < 3; c++) {
                    t[0][c] = g[c];
                    t[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
                    t[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
                    t[3][c] = g[6 + c];
                }
                for (int r = 0; r < 4; r++) { /* (G g) G^T: columns */
                    u[r * 4 + 0][i] = t[r][0];
                    u[r * 4 + 1][i] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
                    u[r * 4 + 2][i] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
                    u[r * 4 + 3][i] = t[r][2];
                }
            }
            float *dst = j->u + co * c_in + ci0;
            for (int k = 0; k < 16; k++)
                memcpy(dst + (size_t)k * plane, u[k], n * sizeof(float));
        }
    }
}

/* A run of consecutive tiles of one tile row: image img, tile row ty, tiles tx .. tx+len-1. */
struct tile_run {
    size_t img;
    int ty, tx, len;
};

#define RUN_MAX 128 /* tiles per run, bounds the row buffers below */

/* the run that starts at tile g (global index), at most `left` tiles long */
static struct tile_run tile_run_at(const struct wino_plan *p, size_t g, int left)
{
    size_t per_img = (size_t)p->th * p->tw, r = g % per_img;
    struct tile_run run = {g / per_img, (int)(r / (size_t)p->tw), (int)(r % (size_t)p->tw), 0};
    run.len = p->tw - run.tx;
    if (run.len > left)
        run.len = left;
    if (run.len > RUN_MAX)
        run.len = RUN_MAX;
    return run;
}

/* dst[i] = row iy of plane xc[h][w] at columns ix0 + i, i < n, zero outside the plane */
static void load_row(const float *xc, int h, int w, int iy, int ix0, int n, float *dst)
{
    if (iy < 0 || iy >= h) {
        memset(dst, 0, (size_t)n * sizeof *dst);
        return;
    }
    int lo = ix0 < 0 ? -ix0 : 0, hi = w - ix0 < n ? w - ix0 : n;
    if (lo > n)
        lo = n;
    if (hi < lo)
        hi = lo;
    memset(dst, 0, (size_t)lo * sizeof *dst);
    memcpy(dst + lo, xc + (size_t)iy * w + ix0 + lo, (size_t)(hi - lo) * sizeof *dst);
    memset(dst + hi, 0, (size_t)(n - hi) * sizeof *dst);
}

/* V[k][ci][t] = (B^T d B)[k] for the nt tiles from tile t0 on. Per run of tiles and channel:
 * the 4 input rows under the run, combined by B^T into 4 rows (b), then B along each row,
 * tile t reading columns 2t .. 2t+3 of them: plain loops over t that the compiler vectorises. */
static void input_transform(const struct wino_job *j, size_t t0, int nt, float *v)
{
    const struct isd_op_conv2d_shape *s = j->s;
    const struct wino_plan *p = j->p;
    size_t plane = (size_t)s->h * s->w, vk = (size_t)s->c_in * p->nb;
    float d[4][2 * RUN_MAX + 2], b[4][2 * RUN_MAX + 2];
    for (int done = 0; done < nt;) {
        struct tile_run run = tile_run_at(p, t0 + (size_t)done, nt - done);
        int iy = 2 * run.ty - 1, ix0 = 2 * run.tx - 1, n = 2 * run.len + 2;
        for (int ci = 0; ci < s->c_in; ci++) {
            const float *xc = j->x + (run.img * s->c_in + (size_t)ci) * plane;
            for (int r = 0; r < 4; r++)
                load_row(xc, s->h, s->w, iy + r, ix0, n, d[r]);
            for (int i = 0; i < n; i++) { /* B^T d */
                b[0][i] = d[0][i] - d[2][i];
                b[1][i] = d[1][i] + d[2][i];
                b[2][i] = d[2][i] - d[1][i];
                b[3][i] = d[1][i] - d[3][i];
            }
            for (int r = 0; r < 4; r++) { /* (B^T d) B */
                float *v0 = v + (size_t)(r * 4) * vk + (size_t)ci * p->nb + done;
                float *v1 = v0 + vk, *v2 = v1 + vk, *v3 = v2 + vk;
                const float *br = b[r];
                for (int t = 0; t < run.len; t++) {
                    v0[t] = br[2 * t] - br[2 * t + 2];
                    v1[t] = br[2 * t + 1] + br[2 * t + 2];
                    v2[t] = br[2 * t + 2] - br[2 * t + 1];
                    v3[t] = br[2 * t + 1] - br[2 * t + 3];
                }
            }
        }
        done += run.len;
    }
}

/* y = A^T M A (+ bias, += with ACCUMULATE) for output channels [c0, c1) of the nt tiles from
 * tile t0 on; M holds rows c0 .. c1-1. Per run and channel: the run's two output rows are
 * computed into a buffer, then written (clipped at odd sizes) or added to y. */
static void output_transform(const struct wino_job *j, size_t t0, int nt, int c0, int c1,
                             const float *m)
{
    const struct isd_op_conv2d_shape *s = j->s;
    const struct wino_plan *p = j->p;
    size_t plane = (size_t)j->ho * j->wo, mk = (size_t)p->m_rows * p->nb;
    int acc = (j->flags & ISD_OP_ACCUMULATE) != 0;
    float o[2][2 * RUN_MAX];
    for (int done = 0; done < nt;) {
        struct tile_run run = tile_run_at(p, t0 + (size_t)done, nt - done);
        int oy = 2 * run.ty, ox = 2 * run.tx;
        int cols = j->wo - ox < 2 * run.len ? j->wo - ox : 2 * run.len;
        int rows = j->ho - oy < 2 ? j->ho - oy : 2;
        for (int co = c0; co < c1; co++) {
            const float *mc[16];
            for (int k = 0; k < 16; k++)
                mc[k] = m + (size_t)k * mk + (size_t)(co - c0) * p->nb + done;
            for (int t = 0; t < run.len; t++) {
                float a[8]; /* A^T M: 2 rows of 4 */
                for (int c = 0; c < 4; c++) {
                    a[c] = mc[c][t] + mc[4 + c][t] + mc[8 + c][t];
                    a[4 + c] = mc[4 + c][t] - mc[8 + c][t] - mc[12 + c][t];
                }
                o[0][2 * t] = a[0] + a[1] + a[2];
                o[0][2 * t + 1] = a[1] - a[2] - a[3];
                o[1][2 * t] = a[4] + a[5] + a[6];
                o[1][2 * t + 1] = a[5] - a[6] - a[7];
            }
            float bv = j->bias ? j->bias[co] : 0.0f;
            float *yc = j->y + (run.img * s->c_out + (size_t)co) * plane + (size_t)oy * j->wo + ox;
            for (int r = 0; r < rows; r++) {
                float *yr = yc + (size_t)r * j->wo;
                if (acc)
                    for (int i = 0; i < cols; i++)
                        yr[i] += o[r][i] + bv;
                else
                    for (int i = 0; i < cols; i++)
                        yr[i] = o[r][i] + bv;
            }
        }
        done += run.len;
    }
}

static void wino_worker(void *arg, int w, int nw)
{
    const struct wino_job *j = arg;
    const struct wino_plan *p = j->p;
    const struct isd_op_conv2d_shape *s = j->s;
    char *base = j->ws + (size_t)w * p->ws_stride;
    float *v = isd_op_align(base);
    float *m = isd_op_align((char *)(v + p->v_floats));
    size_t begin, end, have = (size_t)-1; /* the block whose V is in v */
    isd_op_split(p->blocks * (size_t)p->m_parts, nw, w, &begin, &end);
    size_t uk = (size_t)s->c_out * s->c_in, vk = (size_t)s->c_in * p->nb;
    size_t mk = (size_t)p->m_rows * p->nb, units = ((size_t)s->c_out + 15) / 16, ub, ue;
    for (size_t item = begin; item < end; item++) {
        size_t blk = item / (size_t)p->m_parts, t0 = blk * (size_t)p->nb;
        isd_op_split(units, p->m_parts, (int)(item % (size_t)p->m_parts), &ub, &ue);
        int c0 = (int)(ub * 16) < s->c_out ? (int)(ub * 16) : s->c_out;
        int c1 = (int)(ue * 16) < s->c_out ? (int)(ue * 16) : s->c_out;
        int nt = p->tiles - t0 < (size_t)p->nb ? (int)(p->tiles - t0) : p->nb;
        if (c0 >= c1)
            continue;
        if (blk != have) {
            input_transform(j, t0, nt, v);
            have = blk;
        }
        for (int k = 0; k < 16; k++)
            isd_op_sgemm(j->ctx->kern, 0, 0, c1 - c0, nt, s->c_in, 1.0f,
                         j->u + k * uk + (size_t)c0 * s->c_in, s->c_in, v + k * vk, p->nb, 0.0f,
                         m + k * mk, p->nb);
        output_transform(j, t0, nt, c0, c1, m);
    }
}

void isd_op_winograd_conv2d(struct isd_op_ctx *ctx, const struct isd_op_conv2d_shape *s, int ho,
                            int wo, const float *x, const float *w, const float *bias, float *y,
                            int flags, void *ws)
{
    struct wino_plan p;
    plan_wino(ctx, s, ho, wo, &p);
    float *u = isd_op_align(ws);
    struct wino_job j = {ctx, s, &p, ho, wo, flags, x, w, bias, y, u, (char *)(u + p.u_floats)};
    isd_op_parallel_for(ctx, (size_t)s->c_out, 16, weight_transform, &j);
    size_t items = p.blocks * (size_t)p.m_parts;
    int workers = items < (size_t)ctx->threads ? (int)items : ctx->threads;
    isd_op_parallel(ctx, workers, wino_worker, &j);
}
