/*
 * The VAE (LDM AutoencoderKL, ldm/modules/diffusionmodules/model.py), both halves:
 *
 *   decoder(z): post_quant_conv(z / scale) -> conv_in -> mid (ResnetBlock, AttnBlock,
 *               ResnetBlock) -> up.L-1 .. up.0 (num_res_blocks+1 ResnetBlocks each, nearest x2
 *               + conv3 after every level but 0) -> conv_out(silu(norm_out(.)))
 *   encoder(x): conv_in -> down.0 .. down.L-1 (num_res_blocks ResnetBlocks each, then a stride-2
 *               conv on the input padded (0,1,0,1) after every level but the last) -> mid ->
 *               conv_out(silu(norm_out(.))) -> quant_conv -> mean (first half) * scale
 *
 *   ResnetBlock(x) = shortcut(x) + conv2(silu(GN(conv1(silu(GN(x))))))   (GN eps 1e-6; shortcut
 *                    a 1x1 conv nin_shortcut when channels change)
 *   AttnBlock(x)   = x + proj_out(softmax(q k^T / sqrt(C)) v), q/k/v/proj_out 1x1 convs of GN(x)
 *                    (computed on tokens [HW][C]: the weights are [C][C] views), one head
 *
 * Buffers of a runner (floats): X, Y the current activation and the next one (ping-pong,
 * sized for the largest activation, upsampled ones included), H the ResnetBlock's conv1 output
 * and the attention's normalised input, TOK, QKV, ATT the attention's tokens.
 */
#include "engine/nn/nn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAE     "first_stage_model."
#define RES_MAX 8 /* ResnetBlocks per level */

struct vres { /* ResnetBlock */
    int c_in, c_out;
    struct isd_nn_param n1_g, n1_b; /* norm1 [c_in] */
    struct isd_nn_param c1_w, c1_b; /* conv1 [c_out][c_in][3][3], [c_out] */
    struct isd_nn_param n2_g, n2_b; /* norm2 [c_out] */
    struct isd_nn_param c2_w, c2_b; /* conv2 [c_out][c_out][3][3], [c_out] */
    struct isd_nn_param sc_w, sc_b; /* nin_shortcut [c_out][c_in][1][1] if c_in != c_out */
};

struct vattn { /* AttnBlock (mid.attn_1) */
    int c;
    struct isd_nn_param n_g, n_b;     /* norm [c] */
    struct isd_nn_param qkv_w, qkv_b; /* q|k|v fused [3c][c], [3c] */
    struct isd_nn_param po_w, po_b;   /* proj_out [c][c], [c] */
};

struct vlevel {
    int c_in, c_out; /* channels into the first block and out of the level */
    int n;           /* ResnetBlocks */
    struct vres res[RES_MAX + 1];
    int resample;                 /* 1: up/down-sampling conv after the blocks */
    struct isd_nn_param s_w, s_b; /* upsample.conv / downsample.conv [c_out][c_out][3][3] */
};

struct vmid {
    struct vres r1, r2; /* block_1, block_2 */
    struct vattn attn;  /* attn_1 */
};

struct isd_nn_vae_dec {
    struct isd_wt_vae_config cfg;
    struct isd_nn_param pq_w, pq_b; /* post_quant_conv [z][embed][1][1], [z] */
    struct isd_nn_param in_w, in_b; /* decoder.conv_in [ch*mult[L-1]][z][3][3] */
    struct vmid mid;
    struct vlevel up[ISD_WT_MAX_LEVELS]; /* decoder.up.l (run from L-1 down to 0) */
    struct isd_nn_param no_g, no_b;      /* decoder.norm_out [ch*mult[0]] */
    struct isd_nn_param out_w, out_b;    /* decoder.conv_out [out_channels][ch*mult[0]][3][3] */
    struct isd_nn_weights weights;
};

struct isd_nn_vae_enc {
    struct isd_wt_vae_config cfg;
    struct isd_nn_param in_w, in_b;        /* encoder.conv_in [ch][in_channels][3][3] */
    struct vlevel down[ISD_WT_MAX_LEVELS]; /* encoder.down.l */
    struct vmid mid;
    struct isd_nn_param no_g, no_b;   /* encoder.norm_out [ch*mult[L-1]] */
    struct isd_nn_param out_w, out_b; /* encoder.conv_out [2z][ch*mult[L-1]][3][3] */
    struct isd_nn_param q_w, q_b;     /* quant_conv [2*embed][2z][1][1], [2*embed] */
    struct isd_nn_weights weights;
};

enum { B_X, B_Y, B_H, B_TOK, B_QKV, B_ATT };

/* ---- build ---- */

static int build_res(struct isd_nn_build *b, struct vres *r, const char *pre, int c_in, int c_out)
{
    const int64_t vi[1] = {c_in}, vo[1] = {c_out}, k1[4] = {c_out, c_in, 3, 3},
                  k2[4] = {c_out, c_out, 3, 3}, sc[4] = {c_out, c_in, 1, 1};
    int rc;
    r->c_in = c_in;
    r->c_out = c_out;
    if ((rc = isd_nn_param_get(b, &r->n1_g, 1, vi, "%snorm1.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->n1_b, 1, vi, "%snorm1.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->c1_w, 4, k1, "%sconv1.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->c1_b, 1, vo, "%sconv1.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->n2_g, 1, vo, "%snorm2.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->n2_b, 1, vo, "%snorm2.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->c2_w, 4, k2, "%sconv2.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &r->c2_b, 1, vo, "%sconv2.bias", pre)) < 0)
        return rc;
    if (c_in == c_out)
        return 0;
    if ((rc = isd_nn_param_get(b, &r->sc_w, 4, sc, "%snin_shortcut.weight", pre)) < 0)
        return rc;
    return isd_nn_param_get(b, &r->sc_b, 1, vo, "%snin_shortcut.bias", pre);
}

static int build_attn(struct isd_nn_build *b, struct vattn *a, const char *pre, int c)
{
    const int64_t v[1] = {c}, m[2] = {c, c};
    char q[ISD_NN_NAME_MAX], k[ISD_NN_NAME_MAX], vv[ISD_NN_NAME_MAX];
    const char *const names[3] = {q, k, vv};
    int rc;
    a->c = c;
    if ((rc = isd_nn_param_get(b, &a->n_g, 1, v, "%snorm.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &a->n_b, 1, v, "%snorm.bias", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &a->po_w, 2, m, "%sproj_out.weight", pre)) < 0 ||
        (rc = isd_nn_param_get(b, &a->po_b, 1, v, "%sproj_out.bias", pre)) < 0)
        return rc;
    isd_nn_fmt(q, "%sq.weight", pre);
    isd_nn_fmt(k, "%sk.weight", pre);
    isd_nn_fmt(vv, "%sv.weight", pre);
    if ((rc = isd_nn_param_fuse(b, &a->qkv_w, names, 3, 2, m)) < 0)
        return rc;
    isd_nn_fmt(q, "%sq.bias", pre);
    isd_nn_fmt(k, "%sk.bias", pre);
    isd_nn_fmt(vv, "%sv.bias", pre);
    return isd_nn_param_fuse(b, &a->qkv_b, names, 3, 1, v);
}

static int build_mid(struct isd_nn_build *b, struct vmid *m, const char *half, int c)
{
    char pre[ISD_NN_NAME_MAX];
    int rc;
    isd_nn_fmt(pre, VAE "%s.mid.block_1.", half);
    if ((rc = build_res(b, &m->r1, pre, c, c)) < 0)
        return rc;
    isd_nn_fmt(pre, VAE "%s.mid.attn_1.", half);
    if ((rc = build_attn(b, &m->attn, pre, c)) < 0)
        return rc;
    isd_nn_fmt(pre, VAE "%s.mid.block_2.", half);
    return build_res(b, &m->r2, pre, c, c);
}

static int conv_param(struct isd_nn_build *b, struct isd_nn_param *w, struct isd_nn_param *bias,
                      int c_out, int c_in, int k, const char *pre)
{
    const int64_t ws[4] = {c_out, c_in, k, k}, bs[1] = {c_out};
    int rc = isd_nn_param_get(b, w, 4, ws, "%sweight", pre);
    return rc < 0 ? rc : isd_nn_param_get(b, bias, 1, bs, "%sbias", pre);
}

static int check_config(const struct isd_wt_vae_config *c, struct isd_eng_error *err)
{
    if (c->num_levels < 1 || c->num_levels > ISD_WT_MAX_LEVELS || c->num_res_blocks < 1 ||
        c->num_res_blocks > RES_MAX || c->ch < 32 || c->z_channels < 1 || c->embed_dim < 1 ||
        c->in_channels < 1 || c->out_channels < 1 || !(c->scale_factor > 0))
        return isd_eng_fail(err, ISD_ENG_EUNSUPPORTED,
                            "vae: unsupported configuration (%d levels, %d blocks, ch %d, "
                            "scale %g)",
                            c->num_levels, c->num_res_blocks, c->ch, c->scale_factor);
    for (int l = 0; l < c->num_levels; l++)
        if (c->ch_mult[l] < 1 || (c->ch * c->ch_mult[l]) % 32 != 0)
            return isd_eng_fail(err, ISD_ENG_EUNSUPPORTED,
                                "vae: level %d width %d is not a multiple of 32", l,
                                c->ch * c->ch_mult[l]);
    return 0;
}

int isd_nn_vae_dec_build(const struct isd_wt_model *m, const struct isd_nn_options *o,
                         struct isd_nn_vae_dec **out, struct isd_eng_error *err)
{
    *out = NULL;
    const struct isd_wt_vae_config *c = &isd_wt_model_config(m)->vae;
    int rc = check_config(c, err);
    if (rc < 0)
        return rc;
    struct isd_nn_vae_dec *d = calloc(1, sizeof *d);
    if (!d)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "vae decoder: out of memory");
    d->cfg = *c;
    struct isd_nn_build b = {m, &d->weights, o ? o->resident : 0, err};
    int L = c->num_levels, ch_top = c->ch * c->ch_mult[L - 1], ch0 = c->ch * c->ch_mult[0];
    char pre[ISD_NN_NAME_MAX];
    if ((rc = conv_param(&b, &d->pq_w, &d->pq_b, c->z_channels, c->embed_dim, 1,
                         VAE "post_quant_conv.")) < 0 ||
        (rc = conv_param(&b, &d->in_w, &d->in_b, ch_top, c->z_channels, 3,
                         VAE "decoder.conv_in.")) < 0 ||
        (rc = build_mid(&b, &d->mid, "decoder", ch_top)) < 0)
        goto fail;
    int block_in = ch_top;
    for (int l = L - 1; l >= 0; l--) {
        struct vlevel *lv = &d->up[l];
        lv->c_in = block_in;
        lv->c_out = c->ch * c->ch_mult[l];
        lv->n = c->num_res_blocks + 1;
        for (int i = 0; i < lv->n; i++) {
            isd_nn_fmt(pre, VAE "decoder.up.%d.block.%d.", l, i);
            if ((rc = build_res(&b, &lv->res[i], pre, block_in, lv->c_out)) < 0)
                goto fail;
            block_in = lv->c_out;
        }
        if (l != 0) {
            lv->resample = 1;
            isd_nn_fmt(pre, VAE "decoder.up.%d.upsample.conv.", l);
            if ((rc = conv_param(&b, &lv->s_w, &lv->s_b, lv->c_out, lv->c_out, 3, pre)) < 0)
                goto fail;
        }
    }
    const int64_t v0[1] = {ch0};
    if ((rc = isd_nn_param_get(&b, &d->no_g, 1, v0, VAE "decoder.norm_out.weight")) < 0 ||
        (rc = isd_nn_param_get(&b, &d->no_b, 1, v0, VAE "decoder.norm_out.bias")) < 0 ||
        (rc = conv_param(&b, &d->out_w, &d->out_b, c->out_channels, ch0, 3,
                         VAE "decoder.conv_out.")) < 0 ||
        (rc = isd_nn_weights_finish(&b)) < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    isd_nn_vae_dec_free(d);
    return rc;
}

void isd_nn_vae_dec_free(struct isd_nn_vae_dec *net)
{
    if (!net)
        return;
    isd_nn_weights_release(&net->weights);
    free(net);
}

int isd_nn_vae_dec_factor(const struct isd_nn_vae_dec *net)
{
    return 1 << (net->cfg.num_levels - 1);
}

void isd_nn_vae_dec_drop_pages(const struct isd_nn_vae_dec *net)
{
    if (net)
        isd_nn_weights_drop_pages(&net->weights);
}

int isd_nn_vae_enc_build(const struct isd_wt_model *m, const struct isd_nn_options *o,
                         struct isd_nn_vae_enc **out, struct isd_eng_error *err)
{
    *out = NULL;
    const struct isd_wt_vae_config *c = &isd_wt_model_config(m)->vae;
    int rc = check_config(c, err);
    if (rc < 0)
        return rc;
    struct isd_nn_vae_enc *en = calloc(1, sizeof *en);
    if (!en)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "vae encoder: out of memory");
    en->cfg = *c;
    struct isd_nn_build b = {m, &en->weights, o ? o->resident : 0, err};
    int L = c->num_levels, block_in = c->ch;
    char pre[ISD_NN_NAME_MAX];
    if ((rc = conv_param(&b, &en->in_w, &en->in_b, c->ch, c->in_channels, 3,
                         VAE "encoder.conv_in.")) < 0)
        goto fail;
    for (int l = 0; l < L; l++) {
        struct vlevel *lv = &en->down[l];
        lv->c_in = block_in;
        lv->c_out = c->ch * c->ch_mult[l];
        lv->n = c->num_res_blocks;
        for (int i = 0; i < lv->n; i++) {
            isd_nn_fmt(pre, VAE "encoder.down.%d.block.%d.", l, i);
            if ((rc = build_res(&b, &lv->res[i], pre, block_in, lv->c_out)) < 0)
                goto fail;
            block_in = lv->c_out;
        }
        if (l != L - 1) {
            lv->resample = 1;
            isd_nn_fmt(pre, VAE "encoder.down.%d.downsample.conv.", l);
            if ((rc = conv_param(&b, &lv->s_w, &lv->s_b, lv->c_out, lv->c_out, 3, pre)) < 0)
                goto fail;
        }
    }
    const int64_t vt[1] = {block_in};
    if ((rc = build_mid(&b, &en->mid, "encoder", block_in)) < 0 ||
        (rc = isd_nn_param_get(&b, &en->no_g, 1, vt, VAE "encoder.norm_out.weight")) < 0 ||
        (rc = isd_nn_param_get(&b, &en->no_b, 1, vt, VAE "encoder.norm_out.bias")) < 0 ||
        (rc = conv_param(&b, &en->out_w, &en->out_b, 2 * c->z_channels, block_in, 3,
                         VAE "encoder.conv_out.")) < 0 ||
        (rc = conv_param(&b, &en->q_w, &en->q_b, 2 * c->embed_dim, 2 * c->z_channels, 1,
                         VAE "quant_conv.")) < 0 ||
        (rc = isd_nn_weights_finish(&b)) < 0)
        goto fail;
    *out = en;
    return 0;
fail:
    isd_nn_vae_enc_free(en);
    return rc;
}

void isd_nn_vae_enc_free(struct isd_nn_vae_enc *net)
{
    if (!net)
        return;
    isd_nn_weights_release(&net->weights);
    free(net);
}

void isd_nn_vae_enc_drop_pages(const struct isd_nn_vae_enc *net)
{
    if (net)
        isd_nn_weights_drop_pages(&net->weights);
}

/* ---- plan ---- */

static void max_into(size_t *dst, size_t v)
{
    if (v > *dst)
        *dst = v;
}

static void plan_res(struct isd_nn_plan *p, const struct vres *r, int batch, int h, int w)
{
    size_t bt = (size_t)batch, hw = (size_t)h * w;
    struct isd_op_conv2d_shape k1 = isd_nn_conv3(batch, r->c_in, h, w, r->c_out, 1);
    struct isd_op_conv2d_shape k2 = isd_nn_conv3(batch, r->c_out, h, w, r->c_out, 1);
    isd_nn_plan_conv(p, &k1);
    isd_nn_plan_conv(p, &k2);
    if (r->c_in != r->c_out) {
        struct isd_op_conv2d_shape sc = isd_nn_conv1(batch, r->c_in, h, w, r->c_out);
        isd_nn_plan_conv(p, &sc);
    }
    max_into(&p->buf_floats[B_X], bt * r->c_in * hw);
    max_into(&p->buf_floats[B_X], bt * r->c_out * hw);
    max_into(&p->buf_floats[B_H], bt * r->c_out * hw);
}

static struct isd_op_attn_shape attn_shape(const struct vattn *a, int batch, int hw)
{
    struct isd_op_attn_shape s = {.batch = batch,
                                  .heads = 1,
                                  .lq = hw,
                                  .lk = hw,
                                  .d_head = a->c,
                                  .ldq = 3 * a->c,
                                  .ldk = 3 * a->c,
                                  .ldv = 3 * a->c};
    return s;
}

static void plan_mid(struct isd_nn_plan *p, const struct vmid *m, int batch, int h, int w)
{
    size_t n = (size_t)batch * h * w, c = (size_t)m->attn.c;
    plan_res(p, &m->r1, batch, h, w);
    plan_res(p, &m->r2, batch, h, w);
    struct isd_op_attn_shape as = attn_shape(&m->attn, batch, h * w);
    isd_nn_plan_linear(p, n, c, 3 * c);
    isd_nn_plan_attn(p, &as);
    isd_nn_plan_linear(p, n, c, c);
    max_into(&p->buf_floats[B_H], n * c);
    max_into(&p->buf_floats[B_TOK], n * c);
    max_into(&p->buf_floats[B_QKV], n * 3 * c);
    max_into(&p->buf_floats[B_ATT], n * c);
}

static int check_size(int batch, int h, int w, int limit, const char *what,
                      struct isd_eng_error *err)
{
    if (batch < 1 || batch > ISD_NN_BATCH_MAX || h < 1 || w < 1 || h > limit || w > limit)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "%s: batch %d (1..%d), size %dx%d (1..%d)", what,
                            batch, ISD_NN_BATCH_MAX, w, h, limit);
    return 0;
}

int isd_nn_vae_dec_plan(const struct isd_nn_vae_dec *net, struct isd_op_ctx *ops, int batch, int h,
                        int w, struct isd_nn_run **out, struct isd_eng_error *err)
{
    *out = NULL;
    if (!net || !ops)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "vae decoder: NULL network or ops context");
    int rc = check_size(batch, h, w, 2048, "vae decoder", err);
    if (rc < 0)
        return rc;
    const struct isd_wt_vae_config *c = &net->cfg;
    struct isd_nn_plan p = {.ops = ops};
    size_t bt = (size_t)batch;
    struct isd_op_conv2d_shape pq = isd_nn_conv1(batch, c->embed_dim, h, w, c->z_channels);
    struct isd_op_conv2d_shape ci =
        isd_nn_conv3(batch, c->z_channels, h, w, net->up[c->num_levels - 1].c_in, 1);
    isd_nn_plan_conv(&p, &pq);
    isd_nn_plan_conv(&p, &ci);
    max_into(&p.buf_floats[B_H], bt * c->embed_dim * h * w);
    max_into(&p.buf_floats[B_X], bt * c->z_channels * h * w);
    plan_mid(&p, &net->mid, batch, h, w);
    for (int l = c->num_levels - 1; l >= 0; l--) {
        const struct vlevel *lv = &net->up[l];
        for (int i = 0; i < lv->n; i++)
            plan_res(&p, &lv->res[i], batch, h, w);
        if (lv->resample) {
            h *= 2;
            w *= 2;
            struct isd_op_conv2d_shape us = isd_nn_conv3(batch, lv->c_out, h, w, lv->c_out, 1);
            isd_nn_plan_conv(&p, &us);
            max_into(&p.buf_floats[B_X], bt * lv->c_out * h * w);
        }
    }
    struct isd_op_conv2d_shape co = isd_nn_conv3(batch, net->up[0].c_out, h, w, c->out_channels, 1);
    isd_nn_plan_conv(&p, &co);
    p.buf_floats[B_Y] = p.buf_floats[B_X];
    return isd_nn_run_alloc(&p, &net->weights, ISD_NN_VAE_DEC, net, batch, h, w, 0, out, err);
}

int isd_nn_vae_enc_plan(const struct isd_nn_vae_enc *net, struct isd_op_ctx *ops, int batch,
                        int height, int width, struct isd_nn_run **out, struct isd_eng_error *err)
{
    *out = NULL;
    if (!net || !ops)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "vae encoder: NULL network or ops context");
    const struct isd_wt_vae_config *c = &net->cfg;
    int f = 1 << (c->num_levels - 1),
        rc = check_size(batch, height, width, 16384, "vae encoder", err);
    if (rc < 0)
        return rc;
    if (height % f || width % f)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "vae encoder: image %dx%d is not a multiple of %d",
                            width, height, f);
    struct isd_nn_plan p = {.ops = ops};
    size_t bt = (size_t)batch;
    int h = height, w = width;
    struct isd_op_conv2d_shape ci = isd_nn_conv3(batch, c->in_channels, h, w, c->ch, 1);
    isd_nn_plan_conv(&p, &ci);
    max_into(&p.buf_floats[B_X], bt * c->ch * h * w);
    for (int l = 0; l < c->num_levels; l++) {
        const struct vlevel *lv = &net->down[l];
        for (int i = 0; i < lv->n; i++)
            plan_res(&p, &lv->res[i], batch, h, w);
        if (lv->resample) {
            struct isd_op_conv2d_shape ds = isd_nn_conv3(batch, lv->c_out, h, w, lv->c_out, 2);
            ds.pad_top = ds.pad_left = 0;
            isd_nn_plan_conv(&p, &ds);
            h /= 2;
            w /= 2;
        }
    }
    plan_mid(&p, &net->mid, batch, h, w);
    int ct = net->down[c->num_levels - 1].c_out;
    struct isd_op_conv2d_shape co = isd_nn_conv3(batch, ct, h, w, 2 * c->z_channels, 1);
    struct isd_op_conv2d_shape qc = isd_nn_conv1(batch, 2 * c->z_channels, h, w, 2 * c->embed_dim);
    isd_nn_plan_conv(&p, &co);
    isd_nn_plan_conv(&p, &qc);
    max_into(&p.buf_floats[B_H], bt * 2 * c->embed_dim * h * w);
    p.buf_floats[B_Y] = p.buf_floats[B_X];
    return isd_nn_run_alloc(&p, &net->weights, ISD_NN_VAE_ENC, net, batch, height, width, 0, out,
                            err);
}

/* ---- forward ---- */

/* y = shortcut(x) + conv2(silu(GN(conv1(silu(GN(x)))))); x is destroyed */
static int res_forward(struct isd_nn_exec *e, const struct vres *r, double eps, int bt, int h,
                       int w, float *x, float *y)
{
    float *hb = isd_nn_buf(e->run, B_H);
    int hw = h * w, rc;
    struct isd_op_conv2d_shape k1 = isd_nn_conv3(bt, r->c_in, h, w, r->c_out, 1);
    struct isd_op_conv2d_shape k2 = isd_nn_conv3(bt, r->c_out, h, w, r->c_out, 1);
    if (r->sc_w.parts) {
        struct isd_op_conv2d_shape sc = isd_nn_conv1(bt, r->c_in, h, w, r->c_out);
        if ((rc = isd_nn_conv(e, &r->sc_w, &r->sc_b, &sc, x, y, 0)) < 0)
            return rc;
    } else {
        memcpy(y, x, (size_t)bt * r->c_in * hw * sizeof *y);
    }
    if ((rc = isd_nn_group_norm(e, &r->n1_g, &r->n1_b, bt, r->c_in, hw, eps, x, x, ISD_OP_SILU)) <
            0 ||
        (rc = isd_nn_conv(e, &r->c1_w, &r->c1_b, &k1, x, hb, 0)) < 0 ||
        (rc = isd_nn_group_norm(e, &r->n2_g, &r->n2_b, bt, r->c_out, hw, eps, hb, hb,
                                ISD_OP_SILU)) < 0)
        return rc;
    return isd_nn_conv(e, &r->c2_w, &r->c2_b, &k2, hb, y, ISD_OP_ACCUMULATE);
}

/* x += proj_out(attention(q, k, v of GN(x))), in place; one head of width C */
static int attn_forward(struct isd_nn_exec *e, const struct vattn *a, double eps, int bt, int hw,
                        float *x)
{
    const struct isd_nn_run *run = e->run;
    float *hb = isd_nn_buf(run, B_H), *tok = isd_nn_buf(run, B_TOK);
    float *qkv = isd_nn_buf(run, B_QKV), *att = isd_nn_buf(run, B_ATT);
    int c = a->c, n = bt * hw, rc;
    struct isd_op_attn_shape as = attn_shape(a, bt, hw);
    if ((rc = isd_nn_group_norm(e, &a->n_g, &a->n_b, bt, c, hw, eps, x, hb, 0)) < 0)
        return rc;
    if ((rc = isd_op_transpose(e->ops, bt, c, hw, hb, tok)) < 0)
        return isd_nn_op_fail(e, rc, &a->qkv_w);
    if ((rc = isd_nn_linear(e, &a->qkv_w, &a->qkv_b, n, tok, qkv, 0)) < 0 ||
        (rc = isd_nn_attention(e, &as, qkv, qkv + c, qkv + 2 * c, att, a->qkv_w.name)) < 0 ||
        (rc = isd_nn_linear(e, &a->po_w, &a->po_b, n, att, tok, 0)) < 0)
        return rc;
    if ((rc = isd_op_transpose(e->ops, bt, hw, c, tok, hb)) < 0 ||
        (rc = isd_op_add(e->ops, (size_t)n * c, x, hb, x)) < 0)
        return isd_nn_op_fail(e, rc, &a->po_w);
    return 0;
}

/* mid: block_1 (cur -> other), attn_1 (in place), block_2 (other -> cur) */
static int mid_forward(struct isd_nn_exec *e, const struct vmid *m, double eps, int bt, int h,
                       int w, float *cur, float *other)
{
    int rc = res_forward(e, &m->r1, eps, bt, h, w, cur, other);
    if (rc < 0 || (rc = attn_forward(e, &m->attn, eps, bt, h * w, other)) < 0 ||
        (rc = res_forward(e, &m->r2, eps, bt, h, w, other, cur)) < 0)
        return rc;
    return 0;
}

static void swap(float **a, float **b)
{
    float *t = *a;
    *a = *b;
    *b = t;
}

int isd_nn_vae_dec_forward(const struct isd_nn_vae_dec *net, struct isd_nn_run *run, const float *z,
                           float *image, const struct isd_nn_hooks *hooks,
                           struct isd_eng_error *err)
{
    int rc = isd_nn_run_check(run, ISD_NN_VAE_DEC, net, err);
    if (rc < 0)
        return rc;
    if (!z || !image)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "vae decoder: NULL input or output");
    struct isd_nn_exec e;
    isd_nn_exec_init(&e, run, hooks, err, "vae decoder");
    const struct isd_wt_vae_config *c = &net->cfg;
    int bt = run->batch, f = isd_nn_vae_dec_factor(net), h = run->h / f, w = run->w / f;
    double eps = c->gn_eps;
    float *cur = isd_nn_buf(run, B_X), *other = isd_nn_buf(run, B_Y), *hb = isd_nn_buf(run, B_H);
    size_t nz = (size_t)bt * c->embed_dim * h * w;
    struct isd_op_conv2d_shape pq = isd_nn_conv1(bt, c->embed_dim, h, w, c->z_channels);
    struct isd_op_conv2d_shape ci =
        isd_nn_conv3(bt, c->z_channels, h, w, net->up[c->num_levels - 1].c_in, 1);
    if ((rc = isd_op_scale(e.ops, nz, z, (float)(1.0 / c->scale_factor), hb)) < 0)
        return isd_nn_op_fail(&e, rc, &net->pq_w);
    if ((rc = isd_nn_conv(&e, &net->pq_w, &net->pq_b, &pq, hb, other, 0)) < 0 ||
        (rc = isd_nn_conv(&e, &net->in_w, &net->in_b, &ci, other, cur, 0)) < 0)
        return rc;
    isd_nn_debug(&e, "vae.decoder.conv_in", cur, 4, bt, ci.c_out, h, w);
    if ((rc = isd_nn_check_abort(&e)) < 0 ||
        (rc = mid_forward(&e, &net->mid, eps, bt, h, w, cur, other)) < 0)
        return rc;
    isd_nn_debug(&e, "vae.decoder.mid", cur, 4, bt, ci.c_out, h, w);
    for (int l = c->num_levels - 1; l >= 0; l--) {
        const struct vlevel *lv = &net->up[l];
        for (int i = 0; i < lv->n; i++) {
            if ((rc = isd_nn_check_abort(&e)) < 0 ||
                (rc = res_forward(&e, &lv->res[i], eps, bt, h, w, cur, other)) < 0)
                return rc;
            swap(&cur, &other);
        }
        if (lv->resample) {
            struct isd_op_conv2d_shape us = isd_nn_conv3(bt, lv->c_out, 2 * h, 2 * w, lv->c_out, 1);
            if ((rc = isd_op_upsample_nearest2x(e.ops, bt * lv->c_out, h, w, cur, other)) < 0)
                return isd_nn_op_fail(&e, rc, &lv->s_w);
            if ((rc = isd_nn_conv(&e, &lv->s_w, &lv->s_b, &us, other, cur, 0)) < 0)
                return rc;
            h *= 2;
            w *= 2;
        }
        char name[32];
        snprintf(name, sizeof name, "vae.decoder.up.%d", l);
        isd_nn_debug(&e, name, cur, 4, bt, lv->c_out, h, w);
    }
    int c0 = net->up[0].c_out;
    struct isd_op_conv2d_shape co = isd_nn_conv3(bt, c0, h, w, c->out_channels, 1);
    if ((rc = isd_nn_group_norm(&e, &net->no_g, &net->no_b, bt, c0, h * w, eps, cur, cur,
                                ISD_OP_SILU)) < 0 ||
        (rc = isd_nn_conv(&e, &net->out_w, &net->out_b, &co, cur, image, 0)) < 0)
        return rc;
    isd_nn_debug(&e, "vae.decoder.out", image, 4, bt, c->out_channels, h, w);
    return 0;
}

int isd_nn_vae_enc_forward(const struct isd_nn_vae_enc *net, struct isd_nn_run *run,
                           const float *image, float *latent, const struct isd_nn_hooks *hooks,
                           struct isd_eng_error *err)
{
    int rc = isd_nn_run_check(run, ISD_NN_VAE_ENC, net, err);
    if (rc < 0)
        return rc;
    if (!image || !latent)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "vae encoder: NULL input or output");
    struct isd_nn_exec e;
    isd_nn_exec_init(&e, run, hooks, err, "vae encoder");
    const struct isd_wt_vae_config *c = &net->cfg;
    int bt = run->batch, h = run->h, w = run->w;
    double eps = c->gn_eps;
    float *cur = isd_nn_buf(run, B_X), *other = isd_nn_buf(run, B_Y), *hb = isd_nn_buf(run, B_H);
    struct isd_op_conv2d_shape ci = isd_nn_conv3(bt, c->in_channels, h, w, c->ch, 1);
    if ((rc = isd_nn_conv(&e, &net->in_w, &net->in_b, &ci, image, cur, 0)) < 0)
        return rc;
    isd_nn_debug(&e, "vae.encoder.conv_in", cur, 4, bt, c->ch, h, w);
    for (int l = 0; l < c->num_levels; l++) {
        const struct vlevel *lv = &net->down[l];
        for (int i = 0; i < lv->n; i++) {
            if ((rc = isd_nn_check_abort(&e)) < 0 ||
                (rc = res_forward(&e, &lv->res[i], eps, bt, h, w, cur, other)) < 0)
                return rc;
            swap(&cur, &other);
        }
        if (lv->resample) {
            struct isd_op_conv2d_shape ds = isd_nn_conv3(bt, lv->c_out, h, w, lv->c_out, 2);
            ds.pad_top = ds.pad_left = 0; /* LDM pads (0,1,0,1): right and bottom only */
            if ((rc = isd_nn_conv(&e, &lv->s_w, &lv->s_b, &ds, cur, other, 0)) < 0)
                return rc;
            swap(&cur, &other);
            h /= 2;
            w /= 2;
        }
        char name[32];
        snprintf(name, sizeof name, "vae.encoder.down.%d", l);
        isd_nn_debug(&e, name, cur, 4, bt, lv->c_out, h, w);
    }
    int ct = net->down[c->num_levels - 1].c_out;
    if ((rc = isd_nn_check_abort(&e)) < 0 ||
        (rc = mid_forward(&e, &net->mid, eps, bt, h, w, cur, other)) < 0)
        return rc;
    isd_nn_debug(&e, "vae.encoder.mid", cur, 4, bt, ct, h, w);
    struct isd_op_conv2d_shape co = isd_nn_conv3(bt, ct, h, w, 2 * c->z_channels, 1);
    struct isd_op_conv2d_shape qc = isd_nn_conv1(bt, 2 * c->z_channels, h, w, 2 * c->embed_dim);
    if ((rc = isd_nn_group_norm(&e, &net->no_g, &net->no_b, bt, ct, h * w, eps, cur, cur,
                                ISD_OP_SILU)) < 0 ||
        (rc = isd_nn_conv(&e, &net->out_w, &net->out_b, &co, cur, other, 0)) < 0)
        return rc;
    isd_nn_debug(&e, "vae.encoder.out", other, 4, bt, 2 * c->z_channels, h, w);
    if ((rc = isd_nn_conv(&e, &net->q_w, &net->q_b, &qc, other, hb, 0)) < 0)
        return rc;
    size_t plane = (size_t)c->embed_dim * h * w;
    for (int b = 0; b < bt; b++) { /* mean = the first embed_dim channels of the moments */
        rc = isd_op_scale(e.ops, plane, hb + (size_t)b * 2 * plane, (float)c->scale_factor,
                          latent + (size_t)b * plane);
        if (rc < 0)
            return isd_nn_op_fail(&e, rc, &net->q_w);
    }
    isd_nn_debug(&e, "vae.encoder.mean", latent, 4, bt, c->embed_dim, h, w);
    return 0;
}
