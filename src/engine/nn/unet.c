/*
 * The UNet (LDM openaimodel.UNetModel), config-driven:
 *
 *   emb = time_embed.2(silu(time_embed.0(timestep_embedding(t))))
 *   input_blocks: conv_in, then per level num_res_blocks x [ResBlock (+ SpatialTransformer)]
 *                 and a stride-2 conv between levels; every block's output is kept (skips)
 *   middle_block: ResBlock, SpatialTransformer, ResBlock
 *   output_blocks: per level (deepest first) num_res_blocks+1 x [ResBlock on cat(h, skip)
 *                 (+ SpatialTransformer)], nearest x2 + conv after the last of each level but 0
 *   out: conv3(silu(GroupNorm(h)))
 *
 *   ResBlock(x):   y = skip(x) + conv2(silu(GN2(conv1(silu(GN1(x))) + Linear(silu(emb)))))
 *   SpatialTransformer(x): x + proj_out(blocks(proj_in(GN(x))))  (GN eps 1e-6; proj 1x1 conv
 *                  on NCHW for SD1, Linear on tokens for SD2)
 *   BasicTransformerBlock: t += attn1(LN1 t); t += attn2(LN2 t, context); t += ff(LN3 t),
 *                  ff = ff.net.2(a * gelu(gate)), [a | gate] = ff.net.0.proj(.)
 *
 * Buffers of a runner (floats; B batch, hw the latent pixels of a level):
 *   SKIP   every input block's output, one after the other
 *   A, B   the current activation and the one being made (ping-pong), sized for the largest
 *          activation (the concatenated input of an output block, or an upsampled one)
 *   T, H   ResBlock/transformer temporaries (GN output, conv1 output, NCHW <-> tokens)
 *   TOK, NRM, QKV, ATT, KV, FF   transformer tokens [B*hw][C]... (FF: FF_ROWS rows at a time)
 *   EMB    timestep embeddings and the per-ResBlock projection
 */
#include "engine/nn/nn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNET           "model.diffusion_model."
#define BLOCKS_MAX     128  /* input (or output) blocks */
#define RES_BLOCKS_MAX 8    /* num_res_blocks */
#define FF_ROWS        1024 /* tokens per feed-forward chunk */

struct resblock {
    int c_in, c_out;
    struct isd_nn_param gn1_g, gn1_b;     /* in_layers.0 [c_in] */
    struct isd_nn_param conv1_w, conv1_b; /* in_layers.2 [c_out][c_in][3][3], [c_out] */
    struct isd_nn_param emb_w, emb_b;     /* emb_layers.1 [c_out][time_embed_dim], [c_out] */
    struct isd_nn_param gn2_g, gn2_b;     /* out_layers.0 [c_out] */
    struct isd_nn_param conv2_w, conv2_b; /* out_layers.3 [c_out][c_out][3][3], [c_out] */
    struct isd_nn_param skip_w, skip_b;   /* skip_connection [c_out][c_in][1][1] if c_in != c_out */
};

struct tblock {                         /* BasicTransformerBlock */
    struct isd_nn_param ln1_g, ln1_b;   /* norm1 [c] */
    struct isd_nn_param qkv;            /* attn1.to_q|to_k|to_v fused [3c][c] (no bias) */
    struct isd_nn_param out1_w, out1_b; /* attn1.to_out.0 [c][c], [c] */
    struct isd_nn_param ln2_g, ln2_b;   /* norm2 [c] */
    struct isd_nn_param q2;             /* attn2.to_q [c][c] */
    struct isd_nn_param kv2;            /* attn2.to_k|to_v fused [2c][context_dim] */
    struct isd_nn_param out2_w, out2_b; /* attn2.to_out.0 [c][c], [c] */
    struct isd_nn_param ln3_g, ln3_b;   /* norm3 [c] */
    struct isd_nn_param ff1_w, ff1_b;   /* ff.net.0.proj [8c][c], [8c] */
    struct isd_nn_param ff2_w, ff2_b;   /* ff.net.2 [c][4c], [c] */
};

struct transformer { /* SpatialTransformer */
    int c, heads, d_head, depth;
    int linear;                       /* proj_in/out: Linear [c][c] (SD2), else conv [c][c][1][1] */
    struct isd_nn_param gn_g, gn_b;   /* norm [c] */
    struct isd_nn_param pin_w, pin_b; /* proj_in */
    struct isd_nn_param pout_w, pout_b; /* proj_out */
    struct tblock *blocks;              /* [depth] */
};

enum block_kind { CONV_IN, RES, DOWN, MIDDLE };

struct block {                 /* one TimestepEmbedSequential */
    int kind;                  /* enum block_kind */
    int level;                 /* resolution of its input: latent size >> level */
    int c_in, c_out;           /* channels in and out */
    int has_attn, up;          /* + SpatialTransformer; + Upsample (output level - 1) */
    struct resblock res, res2; /* res2: the middle block's second ResBlock */
    struct transformer attn;
    struct isd_nn_param conv_w, conv_b; /* conv_in / downsample op / upsample conv */
};

struct isd_nn_unet {
    struct isd_wt_unet_config cfg;
    struct isd_nn_param t1_w, t1_b; /* time_embed.0 [ted][model_channels], [ted] */
    struct isd_nn_param t2_w, t2_b; /* time_embed.2 [ted][ted], [ted] */
    struct block *in;               /* [n_in] input_blocks */
    int n_in;
    struct block mid;  /* middle_block */
    struct block *out; /* [n_out] output_blocks */
    int n_out;
    struct isd_nn_param gn_g, gn_b;   /* out.0 [model_channels] */
    struct isd_nn_param out_w, out_b; /* out.2 [out_channels][model_channels][3][3] */
    struct isd_nn_weights weights;
};

enum { B_SKIP, B_A, B_B, B_T, B_H, B_TOK, B_NRM, B_QKV, B_ATT, B_KV, B_FF, B_EMB };

/* ---- build ---- */

static int build_res(struct isd_nn_build *b, struct resblock *r, const char *pre, int c_in,
                     int c_out, int ted)
{
    const int64_t vin[1] = {c_in}, vout[1] = {c_out}, k1[4] = {c_out, c_in, 3, 3},
                  k2[4] = {c_out, c_out, 3, 3}, emb[2] = {c_out, ted}, sk[4] = {c_out, c_in, 1, 1};
    int rc;
    r->c_in = c_in;
    r->c_out = c_out;
    if ((rc = isd_nn_param_get(b, &r->gn1_g, 1, vin, "%sin_layers.0.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->gn1_b, 1, vin, "%sin_layers.0.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->conv1_w, 4, k1, "%sin_layers.2.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->conv1_b, 1, vout, "%sin_layers.2.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->emb_w, 2, emb, "%semb_layers.1.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->emb_b, 1, vout, "%semb_layers.1.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->gn2_g, 1, vout, "%sout_layers.0.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->gn2_b, 1, vout, "%sout_layers.0.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->conv2_w, 4, k2, "%sout_layers.3.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->conv2_b, 1, vout, "%sout_layers.3.bias", pre)) < 0)
        return rc;
    if (c_in == c_out)
        return 0;
    if ((rc = isd_nn_param_get(b, &r->skip_w, 4, sk, "%sskip_connection.weight", pre)) < 0)
        return rc;
    return isd_nn_param_get(b, &r->skip_b, 1, vout, "%sskip_connection.bias", pre);
}

static int build_tblock(struct isd_nn_build *b, struct tblock *t, const char *pre, int c, int cd)
{
    const int64_t v[1] = {c}, m[2] = {c, c}, kv[2] = {c, cd}, f1[2] = {8LL * c, c},
                  f1b[1] = {8LL * c}, f2[2] = {c, 4LL * c};
    char n0[ISD_NN_NAME_MAX], n1[ISD_NN_NAME_MAX], n2[ISD_NN_NAME_MAX];
    const char *const names[3] = {n0, n1, n2};
    int rc;
    if ((rc = isd_nn_param_get(b, &t->ln1_g, 1, v, "%snorm1.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ln1_b, 1, v, "%snorm1.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->out1_w, 2, m, "%sattn1.to_out.0.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->out1_b, 1, v, "%sattn1.to_out.0.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ln2_g, 1, v, "%snorm2.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ln2_b, 1, v, "%snorm2.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->q2, 2, m, "%sattn2.to_q.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->out2_w, 2, m, "%sattn2.to_out.0.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->out2_b, 1, v, "%sattn2.to_out.0.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ln3_g, 1, v, "%snorm3.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ln3_b, 1, v, "%snorm3.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ff1_w, 2, f1, "%sff.net.0.proj.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ff1_b, 1, f1b, "%sff.net.0.proj.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ff2_w, 2, f2, "%sff.net.2.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->ff2_b, 1, v, "%sff.net.2.bias", pre)) < 0)
        return rc;
    isd_nn_fmt(n0, "%sattn1.to_q.weight", pre);
    isd_nn_fmt(n1, "%sattn1.to_k.weight", pre);
    isd_nn_fmt(n2, "%sattn1.to_v.weight", pre);
    if ((rc = isd_nn_param_fuse(b, &t->qkv, names, 3, 2, m)) < 0)
        return rc;
    isd_nn_fmt(n0, "%sattn2.to_k.weight", pre);
    isd_nn_fmt(n1, "%sattn2.to_v.weight", pre);
    if ((rc = isd_nn_param_fuse(b, &t->kv2, names, 2, 2, kv)) < 0)
        return rc;
    return isd_nn_stage_pair(b, &t->ff1_w, &t->ff2_w);
}

static int build_transformer(struct isd_nn_build *b, const struct isd_wt_unet_config *cfg,
                             struct transformer *t, const char *pre, int c)
{
    int rc = isd_wt_unet_heads(cfg, c, &t->heads, &t->d_head);
    if (rc < 0)
        return isd_eng_fail(b->err, rc, "%s: %d channels do not split into heads", pre, c);
    t->c = c;
    t->depth = cfg->transformer_depth;
    t->linear = cfg->proj == ISD_WT_PROJ_LINEAR;
    const int64_t v[1] = {c}, pc[4] = {c, c, 1, 1}, pl[2] = {c, c};
    const int64_t *ps = t->linear ? pl : pc;
    int pn = t->linear ? 2 : 4;
    if ((rc = isd_nn_param_get(b, &t->gn_g, 1, v, "%snorm.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->gn_b, 1, v, "%snorm.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->pin_w, pn, ps, "%sproj_in.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->pin_b, 1, v, "%sproj_in.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->pout_w, pn, ps, "%sproj_out.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &t->pout_b, 1, v, "%sproj_out.bias", pre)) < 0)
        return rc;
    for (int d = 0; d < t->depth; d++) {
        char bp[ISD_NN_NAME_MAX];
        isd_nn_fmt(bp, "%stransformer_blocks.%d.", pre, d);
        if ((rc = build_tblock(b, &t->blocks[d], bp, c, cfg->context_dim)) < 0)
            return rc;
    }
    return 0;
}

/* a 3x3 conv with bias: conv_in, a downsample op or an upsample conv */
static int build_conv(struct isd_nn_build *b, struct block *k, int c_in, int c_out, const char *pre)
{
    const int64_t w[4] = {c_out, c_in, 3, 3}, v[1] = {c_out};
    int rc = isd_nn_param_get(b, &k->conv_w, 4, w, "%sweight", pre);
    return rc < 0 ? rc : isd_nn_param_get(b, &k->conv_b, 1, v, "%sbias", pre);
}

static int alloc_attn(struct isd_nn_unet *u, struct block *k, struct isd_eng_error *err)
{
    k->attn.blocks = calloc((size_t)u->cfg.transformer_depth, sizeof *k->attn.blocks);
    return k->attn.blocks ? 0 : isd_eng_fail(err, ISD_ENG_ENOMEM, "unet: out of memory");
}

/* Lays out the blocks as LDM's UNetModel.__init__ does, and looks their weights up. */
static int build_blocks(struct isd_nn_build *b, struct isd_nn_unet *u)
{
    const struct isd_wt_unet_config *c = &u->cfg;
    int mc = c->model_channels, ted = c->time_embed_dim, ch = mc, chans[BLOCKS_MAX], nch = 0;
    char pre[ISD_NN_NAME_MAX];
    int rc, i = 0;
    struct block *k = &u->in[i++];
    k->kind = CONV_IN;
    k->c_in = c->in_channels;
    k->c_out = mc;
    if ((rc = build_conv(b, k, c->in_channels, mc, UNET "input_blocks.0.0.")) < 0)
        return rc;
    chans[nch++] = mc;
    for (int l = 0; l < c->num_levels; l++) {
        for (int r = 0; r < c->num_res_blocks; r++) {
            k = &u->in[i];
            k->kind = RES;
            k->level = l;
            k->c_in = ch;
            k->c_out = c->channel_mult[l] * mc;
            isd_nn_fmt(pre, UNET "input_blocks.%d.0.", i);
            if ((rc = build_res(b, &k->res, pre, ch, k->c_out, ted)) < 0)
                return rc;
            ch = k->c_out;
            if (c->attn_levels & (1 << l)) {
                k->has_attn = 1;
                isd_nn_fmt(pre, UNET "input_blocks.%d.1.", i);
                if ((rc = alloc_attn(u, k, b->err)) < 0 ||
                    (rc = build_transformer(b, c, &k->attn, pre, ch)) < 0)
                    return rc;
            }
            chans[nch++] = ch;
            i++;
        }
        if (l != c->num_levels - 1) {
            k = &u->in[i];
            k->kind = DOWN;
            k->level = l;
            k->c_in = k->c_out = ch;
            isd_nn_fmt(pre, UNET "input_blocks.%d.0.op.", i);
            if ((rc = build_conv(b, k, ch, ch, pre)) < 0)
                return rc;
            chans[nch++] = ch;
            i++;
        }
    }
    k = &u->mid;
    k->kind = MIDDLE;
    k->level = c->num_levels - 1;
    k->c_in = k->c_out = ch;
    k->has_attn = 1;
    if ((rc = build_res(b, &k->res, UNET "middle_block.0.", ch, ch, ted)) < 0 ||
        (rc = alloc_attn(u, k, b->err)) < 0 ||
        (rc = build_transformer(b, c, &k->attn, UNET "middle_block.1.", ch)) < 0 ||
        (rc = build_res(b, &k->res2, UNET "middle_block.2.", ch, ch, ted)) < 0)
        return rc;
    i = 0;
    for (int l = c->num_levels - 1; l >= 0; l--) {
        for (int r = 0; r <= c->num_res_blocks; r++) {
            k = &u->out[i];
            k->kind = RES;
            k->level = l;
            k->c_in = ch + chans[--nch];
            k->c_out = c->channel_mult[l] * mc;
            isd_nn_fmt(pre, UNET "output_blocks.%d.0.", i);
            if ((rc = build_res(b, &k->res, pre, k->c_in, k->c_out, ted)) < 0)
                return rc;
            ch = k->c_out;
            int part = 1;
            if (c->attn_levels & (1 << l)) {
                k->has_attn = 1;
                isd_nn_fmt(pre, UNET "output_blocks.%d.1.", i);
                if ((rc = alloc_attn(u, k, b->err)) < 0 ||
                    (rc = build_transformer(b, c, &k->attn, pre, ch)) < 0)
                    return rc;
                part = 2;
            }
            if (l > 0 && r == c->num_res_blocks) {
                k->up = 1;
                isd_nn_fmt(pre, UNET "output_blocks.%d.%d.conv.", i, part);
                if ((rc = build_conv(b, k, ch, ch, pre)) < 0)
                    return rc;
            }
            i++;
        }
    }
    return 0;
}

static int check_config(const struct isd_wt_unet_config *c, struct isd_eng_error *err)
{
    if (c->num_levels < 1 || c->num_levels > ISD_WT_MAX_LEVELS || c->num_res_blocks < 1 ||
        c->num_res_blocks > RES_BLOCKS_MAX || c->model_channels < 32 || c->in_channels < 1 ||
        c->out_channels < 1 || c->time_embed_dim < 1 || c->context_dim < 1 ||
        c->transformer_depth < 1 || c->transformer_depth > 16 ||
        (c->proj != ISD_WT_PROJ_CONV && c->proj != ISD_WT_PROJ_LINEAR))
        return isd_eng_fail(err, ISD_ENG_EUNSUPPORTED,
                            "unet: unsupported configuration (%d levels, %d res blocks, %d "
                            "channels, depth %d)",
                            c->num_levels, c->num_res_blocks, c->model_channels,
                            c->transformer_depth);
    for (int l = 0; l < c->num_levels; l++) {
        int ch = c->channel_mult[l] * c->model_channels;
        if (c->channel_mult[l] < 1 || ch % 32 != 0)
            return isd_eng_fail(err, ISD_ENG_EUNSUPPORTED,
                                "unet: level %d has %d channels (GroupNorm needs multiples of 32)",
                                l, ch);
    }
    return 0;
}

int isd_nn_unet_build(const struct isd_wt_model *m, const struct isd_nn_options *o,
                      struct isd_nn_unet **out, struct isd_eng_error *err)
{
    *out = NULL;
    const struct isd_wt_unet_config *c = &isd_wt_model_config(m)->unet;
    int rc = check_config(c, err);
    if (rc < 0)
        return rc;
    struct isd_nn_unet *u = calloc(1, sizeof *u);
    if (!u)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "unet: out of memory");
    u->cfg = *c;
    u->n_in = 1 + c->num_levels * c->num_res_blocks + c->num_levels - 1;
    u->n_out = c->num_levels * (c->num_res_blocks + 1);
    u->in = calloc((size_t)u->n_in, sizeof *u->in);
    u->out = calloc((size_t)u->n_out, sizeof *u->out);
    struct isd_nn_build b = {m, &u->weights, o ? o->resident : 0, err};
    const int64_t mc = c->model_channels, ted = c->time_embed_dim;
    const int64_t t1[2] = {ted, mc}, t2[2] = {ted, ted}, vt[1] = {ted}, vm[1] = {mc},
                  ow[4] = {c->out_channels, mc, 3, 3}, ob[1] = {c->out_channels};
    rc = u->in && u->out ? 0 : isd_eng_fail(err, ISD_ENG_ENOMEM, "unet: out of memory");
    if (rc < 0 || (rc = isd_nn_param_get(&b, &u->t1_w, 2, t1, UNET "time_embed.0.weight")) < 0 ||
        (rc = isd_nn_param_get(&b, &u->t1_b, 1, vt, UNET "time_embed.0.bias")) < 0 ||
        (rc = isd_nn_param_get(&b, &u->t2_w, 2, t2, UNET "time_embed.2.weight")) < 0 ||
        (rc = isd_nn_param_get(&b, &u->t2_b, 1, vt, UNET "time_embed.2.bias")) < 0 ||
        (rc = build_blocks(&b, u)) < 0 ||
        (rc = isd_nn_param_get(&b, &u->gn_g, 1, vm, UNET "out.0.weight")) < 0 ||
        (rc = isd_nn_param_get(&b, &u->gn_b, 1, vm, UNET "out.0.bias")) < 0 ||
        (rc = isd_nn_param_get(&b, &u->out_w, 4, ow, UNET "out.2.weight")) < 0 ||
        (rc = isd_nn_param_get(&b, &u->out_b, 1, ob, UNET "out.2.bias")) < 0 ||
        (rc = isd_nn_weights_finish(&b)) < 0) {
        isd_nn_unet_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

void isd_nn_unet_free(struct isd_nn_unet *net)
{
    if (!net)
        return;
    for (int i = 0; net->in && i < net->n_in; i++)
        free(net->in[i].attn.blocks);
    for (int i = 0; net->out && i < net->n_out; i++)
        free(net->out[i].attn.blocks);
    free(net->mid.attn.blocks);
    free(net->in);
    free(net->out);
    isd_nn_weights_release(&net->weights);
    free(net);
}

const struct isd_wt_unet_config *isd_nn_unet_config(const struct isd_nn_unet *net)
{
    return &net->cfg;
}

int isd_nn_unet_size_multiple(const struct isd_nn_unet *net)
{
    return 1 << (net->cfg.num_levels - 1);
}

void isd_nn_unet_drop_pages(const struct isd_nn_unet *net)
{
    if (net)
        isd_nn_weights_drop_pages(&net->weights);
}

void isd_nn_inpaint_input(int batch, size_t hw, const float *x, const float *mask,
                          const float *masked_latent, float *y)
{
    for (int b = 0; b < batch; b++) {
        float *yb = y + (size_t)b * 9 * hw;
        memcpy(yb, x + (size_t)b * 4 * hw, 4 * hw * sizeof *y);
        memcpy(yb + 4 * hw, mask + (size_t)b * hw, hw * sizeof *y);
        memcpy(yb + 5 * hw, masked_latent + (size_t)b * 4 * hw, 4 * hw * sizeof *y);
    }
}

/* ---- plan ---- */

struct shape {
    int batch, h, w, ctx_len;
};

static size_t level_hw(const struct shape *s, int level)
{
    return (size_t)(s->h >> level) * (size_t)(s->w >> level);
}

static void max_into(size_t *dst, size_t v)
{
    if (v > *dst)
        *dst = v;
}

static struct isd_op_attn_shape self_attn(const struct transformer *t, const struct shape *s,
                                          int level)
{
    struct isd_op_attn_shape a = {.batch = s->batch,
                                  .heads = t->heads,
                                  .lq = (int)level_hw(s, level),
                                  .lk = (int)level_hw(s, level),
                                  .d_head = t->d_head,
                                  .ldq = 3 * t->c,
                                  .ldk = 3 * t->c,
                                  .ldv = 3 * t->c};
    return a;
}

static struct isd_op_attn_shape cross_attn(const struct transformer *t, const struct shape *s,
                                           int level)
{
    struct isd_op_attn_shape a = {.batch = s->batch,
                                  .heads = t->heads,
                                  .lq = (int)level_hw(s, level),
                                  .lk = s->ctx_len,
                                  .d_head = t->d_head,
                                  .ldq = t->c,
                                  .ldk = 2 * t->c,
                                  .ldv = 2 * t->c};
    return a;
}

static void plan_res(struct isd_nn_plan *p, const struct resblock *r, const struct shape *s,
                     int level, int ted)
{
    int h = s->h >> level, w = s->w >> level;
    size_t hw = level_hw(s, level), bt = (size_t)s->batch;
    struct isd_op_conv2d_shape k1 = isd_nn_conv3(s->batch, r->c_in, h, w, r->c_out, 1);
    struct isd_op_conv2d_shape k2 = isd_nn_conv3(s->batch, r->c_out, h, w, r->c_out, 1);
    isd_nn_plan_conv(p, &k1);
    isd_nn_plan_conv(p, &k2);
    isd_nn_plan_linear(p, bt, (size_t)ted, (size_t)r->c_out);
    if (r->c_in != r->c_out) {
        struct isd_op_conv2d_shape sk = isd_nn_conv1(s->batch, r->c_in, h, w, r->c_out);
        isd_nn_plan_conv(p, &sk);
    }
    max_into(&p->buf_floats[B_T], bt * r->c_in * hw);
    max_into(&p->buf_floats[B_H], bt * r->c_out * hw);
}

static void plan_transformer(struct isd_nn_plan *p, const struct transformer *t,
                             const struct shape *s, int level, int cd)
{
    int h = s->h >> level, w = s->w >> level;
    size_t hw = level_hw(s, level), n = (size_t)s->batch * hw, c = (size_t)t->c;
    size_t nk = (size_t)s->batch * s->ctx_len, rows = n < FF_ROWS ? n : FF_ROWS;
    if (t->linear) {
        isd_nn_plan_linear(p, n, c, c);
        isd_nn_plan_linear(p, n, c, c);
    } else {
        struct isd_op_conv2d_shape k = isd_nn_conv1(s->batch, t->c, h, w, t->c);
        isd_nn_plan_conv(p, &k);
        isd_nn_plan_conv(p, &k);
    }
    struct isd_op_attn_shape sa = self_attn(t, s, level), ca = cross_attn(t, s, level);
    for (int d = 0; d < t->depth; d++) {
        isd_nn_plan_linear(p, n, c, 3 * c);
        isd_nn_plan_attn(p, &sa);
        isd_nn_plan_linear(p, n, c, c);
        isd_nn_plan_linear(p, n, c, c);
        isd_nn_plan_linear(p, nk, (size_t)cd, 2 * c);
        isd_nn_plan_attn(p, &ca);
        isd_nn_plan_linear(p, n, c, c);
        isd_nn_plan_linear(p, n, c, 8 * c);
        isd_nn_plan_linear(p, n, 4 * c, c);
    }
    max_into(&p->buf_floats[B_T], n * c);
    max_into(&p->buf_floats[B_H], n * c);
    max_into(&p->buf_floats[B_TOK], n * c);
    max_into(&p->buf_floats[B_NRM], n * c);
    max_into(&p->buf_floats[B_QKV], n * 3 * c);
    max_into(&p->buf_floats[B_ATT], n * c);
    max_into(&p->buf_floats[B_KV], nk * 2 * c);
    max_into(&p->buf_floats[B_FF], rows * 12 * c);
}

/* buffers and workspace of one block at its level; *skip grows by input blocks' outputs */
static void plan_block(struct isd_nn_plan *p, const struct isd_nn_unet *u, const struct block *k,
                       const struct shape *s, int input, size_t *skip)
{
    int h = s->h >> k->level, w = s->w >> k->level, ted = u->cfg.time_embed_dim;
    size_t bt = (size_t)s->batch, hw = level_hw(s, k->level);
    size_t act_in = bt * k->c_in * hw, act_out = bt * k->c_out * hw;
    if (k->kind == CONV_IN) {
        struct isd_op_conv2d_shape cs = isd_nn_conv3(s->batch, k->c_in, h, w, k->c_out, 1);
        isd_nn_plan_conv(p, &cs);
    } else if (k->kind == DOWN) {
        struct isd_op_conv2d_shape cs = isd_nn_conv3(s->batch, k->c_in, h, w, k->c_out, 2);
        isd_nn_plan_conv(p, &cs);
        act_out = bt * k->c_out * level_hw(s, k->level + 1);
    } else {
        plan_res(p, &k->res, s, k->level, ted);
        if (k->kind == MIDDLE)
            plan_res(p, &k->res2, s, k->level, ted);
        if (k->has_attn)
            plan_transformer(p, &k->attn, s, k->level, u->cfg.context_dim);
        if (k->up) {
            struct isd_op_conv2d_shape cs =
                isd_nn_conv3(s->batch, k->c_out, 2 * h, 2 * w, k->c_out, 1);
            isd_nn_plan_conv(p, &cs);
            act_out = 4 * act_out;
        }
    }
    if (input) {
        *skip += act_out;
    } else {
        max_into(&p->buf_floats[B_A], act_in > act_out ? act_in : act_out);
    }
}

int isd_nn_unet_plan(const struct isd_nn_unet *net, struct isd_op_ctx *ops, int batch, int h, int w,
                     int ctx_len, struct isd_nn_run **out, struct isd_eng_error *err)
{
    *out = NULL;
    if (!net || !ops)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "unet: NULL network or ops context");
    int mult = isd_nn_unet_size_multiple(net);
    if (batch < 1 || batch > ISD_NN_BATCH_MAX || ctx_len < 1 || ctx_len > ISD_NN_CONTEXT_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "unet: batch %d (1..%d), context %d (1..%d)",
                            batch, ISD_NN_BATCH_MAX, ctx_len, ISD_NN_CONTEXT_MAX);
    if (h < 1 || w < 1 || h % mult || w % mult || h > 4096 || w > 4096)
        return isd_eng_fail(err, ISD_ENG_EINVAL,
                            "unet: latent %dx%d must be a multiple of %d (at most 4096)", w, h,
                            mult);
    struct shape s = {batch, h, w, ctx_len};
    struct isd_nn_plan p = {.ops = ops};
    const struct isd_wt_unet_config *c = &net->cfg;
    size_t bt = (size_t)batch, skip = 0;
    isd_nn_plan_linear(&p, bt, (size_t)c->model_channels, (size_t)c->time_embed_dim);
    isd_nn_plan_linear(&p, bt, (size_t)c->time_embed_dim, (size_t)c->time_embed_dim);
    for (int i = 0; i < net->n_in; i++)
        plan_block(&p, net, &net->in[i], &s, 1, &skip);
    plan_block(&p, net, &net->mid, &s, 0, &skip);
    for (int i = 0; i < net->n_out; i++)
        plan_block(&p, net, &net->out[i], &s, 0, &skip);
    struct isd_op_conv2d_shape cs =
        isd_nn_conv3(batch, c->model_channels, h, w, c->out_channels, 1);
    isd_nn_plan_conv(&p, &cs);
    p.buf_floats[B_SKIP] = skip;
    /* EMB: the sinusoids [B][model_channels], three [B][ted], a ResBlock's projection [B][c] */
    int cmax = 0;
    for (int l = 0; l < c->num_levels; l++)
        cmax = c->channel_mult[l] > cmax ? c->channel_mult[l] : cmax;
    p.buf_floats[B_EMB] =
        bt * ((size_t)c->model_channels * (1 + (size_t)cmax) + 3 * (size_t)c->time_embed_dim);
    max_into(&p.buf_floats[B_T], bt * c->model_channels * (size_t)h * w);
    p.buf_floats[B_B] = p.buf_floats[B_A];
    return isd_nn_run_alloc(&p, &net->weights, ISD_NN_UNET, net, batch, h, w, ctx_len, out, err);
}

/* ---- forward ---- */

struct unet_pass {
    struct isd_nn_exec e;
    const struct isd_nn_unet *u;
    int batch;
    const float *context; /* [batch][ctx_len][context_dim] */
    int ctx_len;
    const float *embs; /* silu(emb) [batch][ted] */
    float *eo;         /* ResBlock time projection [batch][c_out] */
};

/* y = skip(x) + conv2(silu(GN2(conv1(silu(GN1(x))) + emb_layers(silu(emb))))); x is destroyed
 * when `x_mutable` (else its normalised copy goes to T) */
static int res_forward(struct unet_pass *up, const struct resblock *r, int h, int w, float *x,
                       int x_mutable, float *y)
{
    struct isd_nn_exec *e = &up->e;
    const struct isd_nn_run *run = e->run;
    int bt = up->batch, hw = h * w;
    double eps = up->u->cfg.gn_eps;
    float *t = x_mutable ? x : isd_nn_buf(run, B_T), *hb = isd_nn_buf(run, B_H);
    struct isd_op_conv2d_shape k1 = isd_nn_conv3(bt, r->c_in, h, w, r->c_out, 1);
    struct isd_op_conv2d_shape k2 = isd_nn_conv3(bt, r->c_out, h, w, r->c_out, 1);
    int rc;
    if (r->skip_w.parts) {
        struct isd_op_conv2d_shape sk = isd_nn_conv1(bt, r->c_in, h, w, r->c_out);
        rc = isd_nn_conv(e, &r->skip_w, &r->skip_b, &sk, x, y, 0);
    } else {
        memcpy(y, x, (size_t)bt * r->c_in * hw * sizeof *y);
        rc = 0;
    }
    if (rc < 0 ||
        (rc = isd_nn_group_norm(e, &r->gn1_g, &r->gn1_b, bt, r->c_in, hw, eps, x, t, ISD_OP_SILU)) <
            0 ||
        (rc = isd_nn_conv(e, &r->conv1_w, &r->conv1_b, &k1, t, hb, 0)) < 0 ||
        (rc = isd_nn_linear(e, &r->emb_w, &r->emb_b, bt, up->embs, up->eo, 0)) < 0)
        return rc;
    rc = isd_op_add_bias(e->ops, bt, r->c_out, (size_t)hw, hb, up->eo, (size_t)r->c_out, hb);
    if (rc < 0)
        return isd_nn_op_fail(e, rc, &r->emb_w);
    if ((rc = isd_nn_group_norm(e, &r->gn2_g, &r->gn2_b, bt, r->c_out, hw, eps, hb, hb,
                                ISD_OP_SILU)) < 0)
        return rc;
    return isd_nn_conv(e, &r->conv2_w, &r->conv2_b, &k2, hb, y, ISD_OP_ACCUMULATE);
}

/* the feed-forward of one transformer block, FF_ROWS tokens at a time:
 * tok += ff2(a * gelu(gate)), [a | gate] = ff1(nrm) */
static int ff_forward(struct unet_pass *up, const struct tblock *tb, int n, int c, const float *nrm,
                      float *tok)
{
    struct isd_nn_exec *e = &up->e;
    float *hid = isd_nn_buf(e->run, B_FF), *gl = hid + (size_t)FF_ROWS * 8 * c;
    const float *w1, *b1, *w2, *b2;
    int rc;
    if (n < FF_ROWS)
        gl = hid + (size_t)n * 8 * c;
    isd_nn_stage_reset(e);
    if ((rc = isd_nn_w(e, &tb->ff1_w, &w1)) < 0 || (rc = isd_nn_w(e, &tb->ff1_b, &b1)) < 0 ||
        (rc = isd_nn_w(e, &tb->ff2_w, &w2)) < 0 || (rc = isd_nn_w(e, &tb->ff2_b, &b2)) < 0)
        return rc;
    for (int r0 = 0; r0 < n; r0 += FF_ROWS) {
        int rows = n - r0 < FF_ROWS ? n - r0 : FF_ROWS;
        const float *xin = nrm + (size_t)r0 * c;
        float *y = tok + (size_t)r0 * c;
        if ((rc = isd_op_linear(e->ops, rows, c, 8 * c, xin, w1, b1, hid, 0)) < 0)
            return isd_nn_op_fail(e, rc, &tb->ff1_w);
        if ((rc = isd_op_geglu(e->ops, rows, 4 * c, hid, gl)) < 0)
            return isd_nn_op_fail(e, rc, &tb->ff1_w);
        if ((rc = isd_op_linear(e->ops, rows, 4 * c, c, gl, w2, b2, y, ISD_OP_ACCUMULATE)) < 0)
            return isd_nn_op_fail(e, rc, &tb->ff2_w);
    }
    return 0;
}

static int tblock_forward(struct unet_pass *up, const struct transformer *t,
                          const struct tblock *tb, int hw)
{
    struct isd_nn_exec *e = &up->e;
    const struct isd_nn_run *run = e->run;
    int bt = up->batch, n = bt * hw, c = t->c;
    double eps = up->u->cfg.ln_eps;
    float *tok = isd_nn_buf(run, B_TOK), *nrm = isd_nn_buf(run, B_NRM);
    float *qkv = isd_nn_buf(run, B_QKV), *att = isd_nn_buf(run, B_ATT);
    float *kv = isd_nn_buf(run, B_KV);
    struct shape s = {bt, hw, 1, up->ctx_len};
    struct isd_op_attn_shape sa = self_attn(t, &s, 0), ca = cross_attn(t, &s, 0);
    int rc;
    if ((rc = isd_nn_layer_norm(e, &tb->ln1_g, &tb->ln1_b, n, c, eps, tok, nrm)) < 0 ||
        (rc = isd_nn_linear(e, &tb->qkv, NULL, n, nrm, qkv, 0)) < 0 ||
        (rc = isd_nn_attention(e, &sa, qkv, qkv + c, qkv + 2 * c, att, tb->qkv.name)) < 0 ||
        (rc = isd_nn_linear(e, &tb->out1_w, &tb->out1_b, n, att, tok, ISD_OP_ACCUMULATE)) < 0 ||
        (rc = isd_nn_layer_norm(e, &tb->ln2_g, &tb->ln2_b, n, c, eps, tok, nrm)) < 0 ||
        (rc = isd_nn_linear(e, &tb->q2, NULL, n, nrm, qkv, 0)) < 0 ||
        (rc = isd_nn_linear(e, &tb->kv2, NULL, bt * up->ctx_len, up->context, kv, 0)) < 0 ||
        (rc = isd_nn_attention(e, &ca, qkv, kv, kv + c, att, tb->kv2.name)) < 0 ||
        (rc = isd_nn_linear(e, &tb->out2_w, &tb->out2_b, n, att, tok, ISD_OP_ACCUMULATE)) < 0 ||
        (rc = isd_nn_layer_norm(e, &tb->ln3_g, &tb->ln3_b, n, c, eps, tok, nrm)) < 0)
        return rc;
    return ff_forward(up, tb, n, c, nrm, tok);
}

/* x [B][c][h][w] += proj_out(blocks(proj_in(GN(x)))), in place */
static int transformer_forward(struct unet_pass *up, const struct transformer *t, int h, int w,
                               float *x)
{
    struct isd_nn_exec *e = &up->e;
    const struct isd_nn_run *run = e->run;
    int bt = up->batch, hw = h * w, n = bt * hw, c = t->c;
    float *tt = isd_nn_buf(run, B_T), *hb = isd_nn_buf(run, B_H);
    float *tok = isd_nn_buf(run, B_TOK), *nrm = isd_nn_buf(run, B_NRM);
    struct isd_op_conv2d_shape pc = isd_nn_conv1(bt, c, h, w, c);
    int rc = isd_nn_group_norm(e, &t->gn_g, &t->gn_b, bt, c, hw, up->u->cfg.st_gn_eps, x, tt, 0);
    if (rc < 0)
        return rc;
    if (t->linear) { /* b c h w -> b (h w) c, then Linear */
        if ((rc = isd_op_transpose(e->ops, bt, c, hw, tt, nrm)) < 0)
            return isd_nn_op_fail(e, rc, &t->pin_w);
        rc = isd_nn_linear(e, &t->pin_w, &t->pin_b, n, nrm, tok, 0);
    } else { /* 1x1 conv, then b c h w -> b (h w) c */
        if ((rc = isd_nn_conv(e, &t->pin_w, &t->pin_b, &pc, tt, hb, 0)) < 0)
            return rc;
        if ((rc = isd_op_transpose(e->ops, bt, c, hw, hb, tok)) < 0)
            return isd_nn_op_fail(e, rc, &t->pin_w);
    }
    for (int d = 0; rc == 0 && d < t->depth; d++)
        rc = tblock_forward(up, t, &t->blocks[d], hw);
    if (rc < 0)
        return rc;
    if (t->linear) {
        if ((rc = isd_nn_linear(e, &t->pout_w, &t->pout_b, n, tok, nrm, 0)) < 0)
            return rc;
        if ((rc = isd_op_transpose(e->ops, bt, hw, c, nrm, hb)) < 0 ||
            (rc = isd_op_add(e->ops, (size_t)n * c, x, hb, x)) < 0)
            return isd_nn_op_fail(e, rc, &t->pout_w);
        return 0;
    }
    if ((rc = isd_op_transpose(e->ops, bt, hw, c, tok, hb)) < 0)
        return isd_nn_op_fail(e, rc, &t->pout_w);
    return isd_nn_conv(e, &t->pout_w, &t->pout_b, &pc, hb, x, ISD_OP_ACCUMULATE);
}

static int time_embed(struct unet_pass *up, const float *t)
{
    struct isd_nn_exec *e = &up->e;
    const struct isd_nn_unet *u = up->u;
    int bt = up->batch, mc = u->cfg.model_channels, ted = u->cfg.time_embed_dim;
    float *sinus = isd_nn_buf(e->run, B_EMB), *e1 = sinus + (size_t)bt * mc;
    float *emb = e1 + (size_t)bt * ted, *embs = emb + (size_t)bt * ted;
    int rc = isd_op_timestep_embedding(e->ops, bt, t, mc, 10000.0f, sinus);
    if (rc < 0)
        return isd_nn_op_fail(e, rc, &u->t1_w);
    if ((rc = isd_nn_linear(e, &u->t1_w, &u->t1_b, bt, sinus, e1, 0)) < 0)
        return rc;
    if ((rc = isd_op_silu(e->ops, (size_t)bt * ted, e1, e1)) < 0)
        return isd_nn_op_fail(e, rc, &u->t1_w);
    if ((rc = isd_nn_linear(e, &u->t2_w, &u->t2_b, bt, e1, emb, 0)) < 0)
        return rc;
    isd_nn_debug(e, "unet.time_embed", emb, 2, bt, ted, 1, 1);
    if ((rc = isd_op_silu(e->ops, (size_t)bt * ted, emb, embs)) < 0)
        return isd_nn_op_fail(e, rc, &u->t2_w);
    up->embs = embs;
    up->eo = embs + (size_t)bt * ted;
    return 0;
}

static void debug_block(struct unet_pass *up, const char *prefix, int i, const float *y, int c,
                        int h, int w)
{
    char name[48];
    snprintf(name, sizeof name, "%s.%d", prefix, i);
    isd_nn_debug(&up->e, name, y, 4, up->batch, c, h, w);
}

static int input_blocks(struct unet_pass *up, const float *x, float **slots)
{
    struct isd_nn_exec *e = &up->e;
    const struct isd_nn_unet *u = up->u;
    int bt = up->batch, rc = 0;
    float *dst = isd_nn_buf(e->run, B_SKIP);
    const float *prev = x;
    for (int i = 0; i < u->n_in; i++) {
        const struct block *k = &u->in[i];
        int h = e->run->h >> k->level, w = e->run->w >> k->level, ho = h, wo = w;
        if ((rc = isd_nn_check_abort(e)) < 0)
            return rc;
        if (k->kind == CONV_IN) {
            struct isd_op_conv2d_shape cs = isd_nn_conv3(bt, k->c_in, h, w, k->c_out, 1);
            rc = isd_nn_conv(e, &k->conv_w, &k->conv_b, &cs, prev, dst, 0);
        } else if (k->kind == DOWN) {
            struct isd_op_conv2d_shape cs = isd_nn_conv3(bt, k->c_in, h, w, k->c_out, 2);
            rc = isd_nn_conv(e, &k->conv_w, &k->conv_b, &cs, prev, dst, 0);
            ho = h / 2;
            wo = w / 2;
        } else {
            rc = res_forward(up, &k->res, h, w, (float *)prev, 0, dst);
            if (rc == 0 && k->has_attn)
                rc = transformer_forward(up, &k->attn, h, w, dst);
        }
        if (rc < 0)
            return rc;
        debug_block(up, "unet.input_blocks", i, dst, k->c_out, ho, wo);
        slots[i] = dst;
        prev = dst;
        dst += (size_t)bt * k->c_out * ho * wo;
    }
    return 0;
}

int isd_nn_unet_forward(const struct isd_nn_unet *net, struct isd_nn_run *run, const float *x,
                        const float *t, const float *context, float *out,
                        const struct isd_nn_hooks *hooks, struct isd_eng_error *err)
{
    int rc = isd_nn_run_check(run, ISD_NN_UNET, net, err);
    if (rc < 0)
        return rc;
    if (!x || !t || !context || !out)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "unet: NULL input or output");
    struct unet_pass up = {
        .u = net, .batch = run->batch, .context = context, .ctx_len = run->ctx_len};
    isd_nn_exec_init(&up.e, run, hooks, err, "unet");
    struct isd_nn_exec *e = &up.e;
    float *slots[BLOCKS_MAX];
    if ((rc = time_embed(&up, t)) < 0 || (rc = input_blocks(&up, x, slots)) < 0)
        return rc;
    const struct block *k = &net->mid;
    int bt = run->batch, h = run->h >> k->level, w = run->w >> k->level;
    float *cur = isd_nn_buf(run, B_A), *other = isd_nn_buf(run, B_B);
    int cur_c = k->c_out;
    if ((rc = isd_nn_check_abort(e)) < 0 ||
        (rc = res_forward(&up, &k->res, h, w, slots[net->n_in - 1], 0, other)) < 0 ||
        (rc = transformer_forward(&up, &k->attn, h, w, other)) < 0 ||
        (rc = res_forward(&up, &k->res2, h, w, other, 1, cur)) < 0)
        return rc;
    isd_nn_debug(e, "unet.middle_block", cur, 4, bt, k->c_out, h, w);
    for (int i = 0, top = net->n_in; i < net->n_out; i++) {
        k = &net->out[i];
        h = run->h >> k->level;
        w = run->w >> k->level;
        const float *skip = slots[--top];
        size_t hw = (size_t)h * w;
        if ((rc = isd_nn_check_abort(e)) < 0)
            return rc;
        rc = isd_op_concat_channels(e->ops, bt, cur_c, k->c_in - cur_c, hw, cur, skip, other);
        if (rc < 0)
            return isd_nn_op_fail(e, rc, &k->res.conv1_w);
        if ((rc = res_forward(&up, &k->res, h, w, other, 1, cur)) < 0)
            return rc;
        if (k->has_attn && (rc = transformer_forward(&up, &k->attn, h, w, cur)) < 0)
            return rc;
        if (k->up) {
            struct isd_op_conv2d_shape cs = isd_nn_conv3(bt, k->c_out, 2 * h, 2 * w, k->c_out, 1);
            if ((rc = isd_op_upsample_nearest2x(e->ops, bt * k->c_out, h, w, cur, other)) < 0)
                return isd_nn_op_fail(e, rc, &k->conv_w);
            if ((rc = isd_nn_conv(e, &k->conv_w, &k->conv_b, &cs, other, cur, 0)) < 0)
                return rc;
            h *= 2;
            w *= 2;
        }
        debug_block(&up, "unet.output_blocks", i, cur, k->c_out, h, w);
        cur_c = k->c_out;
    }
    const struct isd_wt_unet_config *c = &net->cfg;
    float *tt = isd_nn_buf(run, B_T);
    struct isd_op_conv2d_shape cs = isd_nn_conv3(bt, c->model_channels, h, w, c->out_channels, 1);
    if ((rc = isd_nn_group_norm(e, &net->gn_g, &net->gn_b, bt, c->model_channels, h * w, c->gn_eps,
                                cur, tt, ISD_OP_SILU)) < 0 ||
        (rc = isd_nn_conv(e, &net->out_w, &net->out_b, &cs, tt, out, 0)) < 0)
        return rc;
    isd_nn_debug(e, "unet.out", out, 4, bt, c->out_channels, h, w);
    return 0;
}
