/*
 * The text encoders: CLIP ViT-L/14 (SD1) and the OpenCLIP ViT-H/14 text tower (SD2), both under
 * HF CLIPTextModel canonical names (the weights module maps OpenCLIP's names and splits its
 * fused in_proj). Pre-LayerNorm transformer with causal self-attention:
 *
 *   x = token_embedding[ids] + position_embedding
 *   for each of the layers_run layers:
 *       x += out_proj(attention_causal(q, k, v of layer_norm1(x)))
 *       x += fc2(act(fc1(layer_norm2(x))))      act: quick_gelu (CLIP-L) or exact GELU (OpenCLIP)
 *   out = final_layer_norm(x)
 */
#include "engine/nn/nn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT "cond_stage_model.transformer.text_model."

struct text_layer {
    struct isd_nn_param ln1_g, ln1_b; /* layer_norm1 [width] */
    struct isd_nn_param qkv_w;        /* self_attn.{q,k,v}_proj.weight fused [3*width][width] */
    struct isd_nn_param qkv_b;        /* self_attn.{q,k,v}_proj.bias fused [3*width] */
    struct isd_nn_param out_w, out_b; /* self_attn.out_proj [width][width], [width] */
    struct isd_nn_param ln2_g, ln2_b; /* layer_norm2 [width] */
    struct isd_nn_param fc1_w, fc1_b; /* mlp.fc1 [mlp][width], [mlp] */
    struct isd_nn_param fc2_w, fc2_b; /* mlp.fc2 [width][mlp], [width] */
};

struct isd_nn_text {
    struct isd_wt_text_config cfg;
    struct isd_nn_param tok_emb;      /* embeddings.token_embedding [vocab][width] (by rows) */
    struct isd_nn_param pos_emb;      /* embeddings.position_embedding [positions][width] */
    struct text_layer *layers;        /* [cfg.layers_run] */
    struct isd_nn_param lnf_g, lnf_b; /* final_layer_norm [width] */
    struct isd_nn_weights weights;
};

/* buffers of a runner: tokens N = batch * 77 */
enum { B_X, B_H, B_QKV, B_ATT, B_MLP };

static int build_layer(struct isd_nn_build *b, struct text_layer *l, int i, int64_t width,
                       int64_t mlp)
{
    const int64_t vec[1] = {width}, mat[2] = {width, width}, fc1[2] = {mlp, width},
                  fc2[2] = {width, mlp}, mlpv[1] = {mlp};
    char q[ISD_NN_NAME_MAX], k[ISD_NN_NAME_MAX], v[ISD_NN_NAME_MAX];
    const char *const qkv[3] = {q, k, v};
    int rc;
#define L TEXT "encoder.layers.%d."
    if ((rc = isd_nn_param_get(b, &l->ln1_g, 1, vec, L "layer_norm1.weight", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->ln1_b, 1, vec, L "layer_norm1.bias", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->out_w, 2, mat, L "self_attn.out_proj.weight", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->out_b, 1, vec, L "self_attn.out_proj.bias", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->ln2_g, 1, vec, L "layer_norm2.weight", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->ln2_b, 1, vec, L "layer_norm2.bias", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->fc1_w, 2, fc1, L "mlp.fc1.weight", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->fc1_b, 1, mlpv, L "mlp.fc1.bias", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->fc2_w, 2, fc2, L "mlp.fc2.weight", i)) < 0 ||
        (rc = isd_nn_param_get(b, &l->fc2_b, 1, vec, L "mlp.fc2.bias", i)) < 0)
        return rc;
    isd_nn_fmt(q, L "self_attn.q_proj.weight", i);
    isd_nn_fmt(k, L "self_attn.k_proj.weight", i);
    isd_nn_fmt(v, L "self_attn.v_proj.weight", i);
    if ((rc = isd_nn_param_fuse(b, &l->qkv_w, qkv, 3, 2, mat)) < 0)
        return rc;
    isd_nn_fmt(q, L "self_attn.q_proj.bias", i);
    isd_nn_fmt(k, L "self_attn.k_proj.bias", i);
    isd_nn_fmt(v, L "self_attn.v_proj.bias", i);
#undef L
    return isd_nn_param_fuse(b, &l->qkv_b, qkv, 3, 1, vec);
}

int isd_nn_text_build(const struct isd_wt_model *m, const struct isd_nn_options *o,
                      struct isd_nn_text **out, struct isd_eng_error *err)
{
    *out = NULL;
    const struct isd_wt_text_config *c = &isd_wt_model_config(m)->text;
    if (c->kind != ISD_WT_TEXT_CLIP_L && c->kind != ISD_WT_TEXT_OPENCLIP)
        return isd_eng_fail(err, ISD_ENG_EUNSUPPORTED, "text encoder: unknown kind (not loaded?)");
    if (c->width < 1 || c->heads < 1 || c->width % c->heads || c->layers_run < 1 ||
        c->layers_run > c->num_layers || c->max_positions < ISD_NN_TOKENS || c->mlp_dim < 1)
        return isd_eng_fail(err, ISD_ENG_EUNSUPPORTED,
                            "text encoder: unsupported shape (width %d, %d heads, %d of %d "
                            "layers, %d positions)",
                            c->width, c->heads, c->layers_run, c->num_layers, c->max_positions);
    struct isd_nn_text *t = calloc(1, sizeof *t);
    if (!t)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "text encoder: out of memory");
    t->cfg = *c;
    t->layers = calloc((size_t)c->layers_run, sizeof *t->layers);
    struct isd_nn_build b = {m, &t->weights, o ? o->resident : 0, err};
    int rc = t->layers ? 0 : isd_eng_fail(err, ISD_ENG_ENOMEM, "text encoder: out of memory");
    const int64_t width = c->width, tok[2] = {c->vocab_size, width},
                  pos[2] = {c->max_positions, width}, vec[1] = {width};
    if (rc == 0)
        rc = isd_nn_param_get(&b, &t->tok_emb, 2, tok, TEXT "embeddings.token_embedding.weight");
    t->tok_emb.gather = 1;
    if (rc == 0)
        rc = isd_nn_param_get(&b, &t->pos_emb, 2, pos, TEXT "embeddings.position_embedding.weight");
    for (int i = 0; rc == 0 && i < c->layers_run; i++)
        rc = build_layer(&b, &t->layers[i], i, width, c->mlp_dim);
    if (rc == 0)
        rc = isd_nn_param_get(&b, &t->lnf_g, 1, vec, TEXT "final_layer_norm.weight");
    if (rc == 0)
        rc = isd_nn_param_get(&b, &t->lnf_b, 1, vec, TEXT "final_layer_norm.bias");
    if (rc == 0)
        rc = isd_nn_weights_finish(&b);
    if (rc < 0) {
        isd_nn_text_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void isd_nn_text_free(struct isd_nn_text *net)
{
    if (!net)
        return;
    isd_nn_weights_release(&net->weights);
    free(net->layers);
    free(net);
}

int isd_nn_text_width(const struct isd_nn_text *net)
{
    return net->cfg.width;
}

int isd_nn_text_pad_id(const struct isd_nn_text *net)
{
    return net->cfg.pad_id;
}

void isd_nn_text_drop_pages(const struct isd_nn_text *net)
{
    if (net)
        isd_nn_weights_drop_pages(&net->weights);
}

static struct isd_op_attn_shape attn_shape(const struct isd_nn_text *net, int batch)
{
    int width = net->cfg.width;
    struct isd_op_attn_shape s = {.batch = batch,
                                  .heads = net->cfg.heads,
                                  .lq = ISD_NN_TOKENS,
                                  .lk = ISD_NN_TOKENS,
                                  .d_head = width / net->cfg.heads,
                                  .ldq = 3 * width,
                                  .ldk = 3 * width,
                                  .ldv = 3 * width,
                                  .causal = 1};
    return s;
}

int isd_nn_text_plan(const struct isd_nn_text *net, struct isd_op_ctx *ops, int batch,
                     struct isd_nn_run **out, struct isd_eng_error *err)
{
    *out = NULL;
    if (!net || !ops || batch < 1 || batch > ISD_NN_BATCH_MAX)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "text encoder: batch %d outside 1..%d", batch,
                            ISD_NN_BATCH_MAX);
    size_t n = (size_t)batch * ISD_NN_TOKENS, width = (size_t)net->cfg.width;
    size_t mlp = (size_t)net->cfg.mlp_dim;
    struct isd_nn_plan p = {.ops = ops};
    p.buf_floats[B_X] = n * width;
    p.buf_floats[B_H] = n * width;
    p.buf_floats[B_QKV] = n * 3 * width;
    p.buf_floats[B_ATT] = n * width;
    p.buf_floats[B_MLP] = n * mlp;
    struct isd_op_attn_shape as = attn_shape(net, batch);
    for (int i = 0; i < net->cfg.layers_run; i++) {
        isd_nn_plan_linear(&p, n, width, 3 * width);
        isd_nn_plan_attn(&p, &as);
        isd_nn_plan_linear(&p, n, width, width);
        isd_nn_plan_linear(&p, n, width, mlp);
        isd_nn_plan_linear(&p, n, mlp, width);
    }
    return isd_nn_run_alloc(&p, &net->weights, ISD_NN_TEXT, net, batch, ISD_NN_TOKENS, 1, 0, out,
                            err);
}

/* x[i] = token_embedding[ids[i]] + position_embedding[i % 77], converting only those rows */
static int embed(struct isd_nn_exec *e, const struct isd_nn_text *net, const int32_t *ids, int n,
                 float *x)
{
    const struct isd_nn_param *tok = &net->tok_emb;
    int width = net->cfg.width;
    const float *pos;
    int rc = isd_nn_w(e, &net->pos_emb, &pos);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= net->cfg.vocab_size)
            return isd_eng_fail(e->err, ISD_ENG_EINVAL,
                                "text encoder: token id %d at %d outside the vocabulary (%d)",
                                (int)id, i, net->cfg.vocab_size);
        float *row = x + (size_t)i * width;
        rc = isd_wt_view_range_to_f32(&tok->v[0], (size_t)id * width, (size_t)width, row);
        if (rc < 0)
            return isd_eng_fail(e->err, rc, "%s: cannot convert", tok->name);
        const float *p = pos + (size_t)(i % ISD_NN_TOKENS) * width;
        for (int j = 0; j < width; j++)
            row[j] += p[j];
    }
    return 0;
}

static int layer_forward(struct isd_nn_exec *e, const struct isd_nn_text *net,
                         const struct text_layer *l, int batch, float *x)
{
    const struct isd_nn_run *r = e->run;
    int n = batch * ISD_NN_TOKENS, width = net->cfg.width;
    double eps = net->cfg.ln_eps;
    float *h = isd_nn_buf(r, B_H), *qkv = isd_nn_buf(r, B_QKV), *att = isd_nn_buf(r, B_ATT);
    float *mlp = isd_nn_buf(r, B_MLP);
    struct isd_op_attn_shape as = attn_shape(net, batch);
    int rc;
    if ((rc = isd_nn_layer_norm(e, &l->ln1_g, &l->ln1_b, n, width, eps, x, h)) < 0 ||
        (rc = isd_nn_linear(e, &l->qkv_w, &l->qkv_b, n, h, qkv, 0)) < 0 ||
        (rc = isd_nn_attention(e, &as, qkv, qkv + width, qkv + 2 * width, att, "self-attention")) <
            0 ||
        (rc = isd_nn_linear(e, &l->out_w, &l->out_b, n, att, x, ISD_OP_ACCUMULATE)) < 0 ||
        (rc = isd_nn_layer_norm(e, &l->ln2_g, &l->ln2_b, n, width, eps, x, h)) < 0 ||
        (rc = isd_nn_linear(e, &l->fc1_w, &l->fc1_b, n, h, mlp, 0)) < 0)
        return rc;
    size_t count = (size_t)n * net->cfg.mlp_dim;
    rc = net->cfg.kind == ISD_WT_TEXT_CLIP_L ? isd_op_quick_gelu(e->ops, count, mlp, mlp)
                                             : isd_op_gelu(e->ops, count, mlp, mlp);
    if (rc < 0)
        return isd_nn_op_fail(e, rc, &l->fc1_w);
    return isd_nn_linear(e, &l->fc2_w, &l->fc2_b, n, mlp, x, ISD_OP_ACCUMULATE);
}

int isd_nn_text_forward(const struct isd_nn_text *net, struct isd_nn_run *run, const int32_t *ids,
                        float *out, const struct isd_nn_hooks *hooks, struct isd_eng_error *err)
{
    int rc = isd_nn_run_check(run, ISD_NN_TEXT, net, err);
    if (rc < 0)
        return rc;
    if (!ids || !out)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "text encoder: NULL ids or output");
    struct isd_nn_exec e;
    isd_nn_exec_init(&e, run, hooks, err, "text encoder");
    int batch = run->batch, n = batch * ISD_NN_TOKENS, width = net->cfg.width;
    float *x = isd_nn_buf(run, B_X);
    if ((rc = embed(&e, net, ids, n, x)) < 0)
        return rc;
    isd_nn_debug(&e, "clip.embeddings", x, 3, batch, ISD_NN_TOKENS, width, 1);
    for (int i = 0; i < net->cfg.layers_run; i++) {
        char name[32];
        if ((rc = isd_nn_check_abort(&e)) < 0 ||
            (rc = layer_forward(&e, net, &net->layers[i], batch, x)) < 0)
            return rc;
        snprintf(name, sizeof name, "clip.layer.%d", i);
        isd_nn_debug(&e, name, x, 3, batch, ISD_NN_TOKENS, width, 1);
    }
    rc = isd_nn_layer_norm(&e, &net->lnf_g, &net->lnf_b, n, width, net->cfg.ln_eps, x, out);
    if (rc == 0)
        isd_nn_debug(&e, "clip.final", out, 3, batch, ISD_NN_TOKENS, width, 1);
    return rc;
}
