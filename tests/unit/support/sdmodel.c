/* Random-weight Stable Diffusion model writer (see sdmodel.h). */
#include "support/sdmodel.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sdmodel writes little-endian files straight from host memory"
#endif

enum { INIT_W, INIT_NORM, INIT_BIAS, INIT_EMB, INIT_POS };

#define UNET "model.diffusion_model."
#define VAE  "first_stage_model."
#define TEXT "cond_stage_model.transformer.text_model."
#define OC   "cond_stage_model.model."

/* ---- presets ---- */

static const struct isd_sdm_config presets[] = {
    {.name = "tiny-sd1",
     .sd2 = 0,
     .in_channels = 4,
     .out_channels = 4,
     .model_channels = 32,
     .levels = 2,
     .channel_mult = {1, 2},
     .num_res_blocks = 1,
     .attn_levels = 3,
     .depth = 1,
     .context_dim = 32,
     .linear_proj = 0,
     .num_heads = 8,
     .heads_meta = 1,
     .openclip = 0,
     .text_width = 32,
     .text_layers = 2,
     .text_heads = 4,
     .text_mlp = 64,
     .vocab = 49408,
     .positions = 77,
     .text_heads_meta = 1,
     .vae_ch = 32,
     .vae_levels = 4,
     .vae_mult = {1, 1, 1, 1},
     .vae_res_blocks = 1,
     .z_channels = 4,
     .embed_dim = 4},
    {.name = "tiny-sd2",
     .sd2 = 1,
     .in_channels = 4,
     .out_channels = 4,
     .model_channels = 32,
     .levels = 2,
     .channel_mult = {1, 2},
     .num_res_blocks = 1,
     .attn_levels = 3,
     .depth = 1,
     .context_dim = 32,
     .linear_proj = 1,
     .num_head_channels = 16,
     .heads_meta = 1,
     .openclip = 1,
     .text_width = 32,
     .text_layers = 3,
     .text_heads = 4,
     .text_mlp = 64,
     .vocab = 49408,
     .positions = 77,
     .text_heads_meta = 1,
     .vae_ch = 32,
     .vae_levels = 4,
     .vae_mult = {1, 1, 1, 1},
     .vae_res_blocks = 1,
     .z_channels = 4,
     .embed_dim = 4,
     .v_prediction = 1},
    {.name = "tiny-inpaint",
     .sd2 = 0,
     .in_channels = 9,
     .out_channels = 4,
     .model_channels = 32,
     .levels = 2,
     .channel_mult = {1, 2},
     .num_res_blocks = 1,
     .attn_levels = 3,
     .depth = 1,
     .context_dim = 32,
     .linear_proj = 0,
     .num_heads = 8,
     .heads_meta = 1,
     .openclip = 0,
     .text_width = 32,
     .text_layers = 2,
     .text_heads = 4,
     .text_mlp = 64,
     .vocab = 49408,
     .positions = 77,
     .text_heads_meta = 1,
     .vae_ch = 32,
     .vae_levels = 4,
     .vae_mult = {1, 1, 1, 1},
     .vae_res_blocks = 1,
     .z_channels = 4,
     .embed_dim = 4},
    {.name = "sd15",
     .sd2 = 0,
     .in_channels = 4,
     .out_channels = 4,
     .model_channels = 320,
     .levels = 4,
     .channel_mult = {1, 2, 4, 4},
     .num_res_blocks = 2,
     .attn_levels = 7,
     .depth = 1,
     .context_dim = 768,
     .linear_proj = 0,
     .num_heads = 8,
     .openclip = 0,
     .text_width = 768,
     .text_layers = 12,
     .text_heads = 12,
     .text_mlp = 3072,
     .vocab = 49408,
     .positions = 77,
     .vae_ch = 128,
     .vae_levels = 4,
     .vae_mult = {1, 2, 4, 4},
     .vae_res_blocks = 2,
     .z_channels = 4,
     .embed_dim = 4},
    {.name = "sd21",
     .sd2 = 1,
     .in_channels = 4,
     .out_channels = 4,
     .model_channels = 320,
     .levels = 4,
     .channel_mult = {1, 2, 4, 4},
     .num_res_blocks = 2,
     .attn_levels = 7,
     .depth = 1,
     .context_dim = 1024,
     .linear_proj = 1,
     .num_head_channels = 64,
     .openclip = 1,
     .text_width = 1024,
     .text_layers = 24,
     .text_heads = 16,
     .text_mlp = 4096,
     .vocab = 49408,
     .positions = 77,
     .vae_ch = 128,
     .vae_levels = 4,
     .vae_mult = {1, 2, 4, 4},
     .vae_res_blocks = 2,
     .z_channels = 4,
     .embed_dim = 4,
     .v_prediction = 1},
};

int isd_sdm_preset(const char *name, struct isd_sdm_config *cfg)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) {
            *cfg = presets[i];
            return 0;
        }
    return -1;
}

void isd_sdm_options_init(struct isd_sdm_options *o)
{
    memset(o, 0, sizeof *o);
    o->layout = ISD_SDM_SINGLE;
    o->dtype = ISD_SDM_F32;
    o->seed = 1;
}

/* ---- numbers: PRNG (splitmix64 + xoshiro256**) and rounding ---- */

struct rng {
    uint64_t s[4];
};

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the canonical name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    uint64_t x = h ^ (seed * 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static float rng_value(struct rng *r, int init)
{
    uint64_t x = rng_next(r);
    float u = (float)(x >> 40) * 0x1p-24f; /* [0, 1), exact */
    switch (init) {
    case INIT_NORM:
        return 1.0f + 0.1f * (2 * u - 1);
    case INIT_BIAS:
        return 0.05f * (2 * u - 1);
    default: {
        /* Irwin-Hall: the sum of four 16-bit uniforms, centred (exact in float), standardised
         * (its standard deviation is 37837.23) and scaled to 0.02 (position embeddings 0.01) */
        int32_t sum = (int32_t)(x & 0xffff) + (int32_t)(x >> 16 & 0xffff) +
                      (int32_t)(x >> 32 & 0xffff) + (int32_t)(x >> 48) - 131070;
        return (float)sum * (init == INIT_POS ? 0.01f / 37837.23f : 0.02f / 37837.23f);
    }
    }
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t to_bf16(float f)
{
    uint32_t u = bits(f);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)(u >> 16 | 0x40);
    return (uint16_t)((u + 0x7fff + (u >> 16 & 1)) >> 16);
}

static float from_bf16(uint16_t h)
{
    return from_bits((uint32_t)h << 16);
}

static uint16_t to_f16(float f)
{
    uint32_t u = bits(f), sign = u >> 16 & 0x8000, a = u & 0x7fffffff;
    if (a > 0x7f800000)
        return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000) /* >= 65520: inf */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000) /* below 2^-14: subnormal grid of 2^-24, round half even */
        return (uint16_t)(sign | (uint32_t)lrintf(from_bits(a) * 0x1p24f));
    uint32_t h = ((a >> 23) - 112) << 10 | (a >> 13 & 0x3ff), rest = a & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

static float from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = h >> 10 & 0x1f, m = h & 0x3ff;
    if (e == 0) /* zero or subnormal: m * 2^-24, exact in float */
        return from_bits(sign | bits((float)m * 0x1p-24f));
    if (e == 31)
        return from_bits(sign | 0x7f800000 | m << 13);
    return from_bits(sign | (e + 112) << 23 | m << 13);
}

float isd_sdm_exact(float x)
{
    return from_f16(to_f16(from_bf16(to_bf16(x))));
}

/* ---- the architecture ---- */

struct list {
    struct isd_sdm_tensor *v;
    size_t n, cap;
    int failed;
    int part;  /* part of the tensors being emitted */
    int layer; /* text layer being emitted, or -1 */
};

static struct isd_sdm_tensor *emit(struct list *l, int init, int ndim, const int64_t *shape,
                                   const char *name, const char *diff)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 512;
        struct isd_sdm_tensor *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->failed = 1;
            return NULL;
        }
        l->v = v;
        l->cap = cap;
    }
    struct isd_sdm_tensor *t = &l->v[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->diff, sizeof t->diff, "%s", diff);
    t->part = l->part;
    t->layer = l->layer;
    t->init = init;
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < 4; d++) {
        t->shape[d] = d < ndim ? shape[d] : 1;
        t->numel *= (uint64_t)t->shape[d];
    }
    return t;
}

#define SHAPE(...)                                                                                 \
    (const int64_t[])                                                                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

/* One parameter "<L>.<s>" / "<D>.<s>". */
static struct isd_sdm_tensor *param(struct list *l, int init, const char *L, const char *D,
                                    const char *s, int ndim, const int64_t *shape)
{
    char a[ISD_SDM_NAME_MAX], b[ISD_SDM_NAME_MAX];
    snprintf(a, sizeof a, "%s.%s", L, s);
    snprintf(b, sizeof b, "%s.%s", D, s);
    return emit(l, init, ndim, shape, a, b);
}

static void norm(struct list *l, const char *L, const char *D, int64_t c)
{
    param(l, INIT_NORM, L, D, "weight", 1, SHAPE(c));
    param(l, INIT_BIAS, L, D, "bias", 1, SHAPE(c));
}

static void linear(struct list *l, const char *L, const char *D, int64_t in, int64_t out, int bias)
{
    param(l, INIT_W, L, D, "weight", 2, SHAPE(out, in));
    if (bias)
        param(l, INIT_BIAS, L, D, "bias", 1, SHAPE(out));
}

static void conv(struct list *l, const char *L, const char *D, int64_t in, int64_t out, int64_t k)
{
    param(l, INIT_W, L, D, "weight", 4, SHAPE(out, in, k, k));
    param(l, INIT_BIAS, L, D, "bias", 1, SHAPE(out));
}

/* Builds "<pre>.<fmt...>" into buf. */
__attribute__((format(printf, 4, 5))) static const char *sub(char *buf, size_t cap, const char *pre,
                                                             const char *fmt, ...)
{
    int n = snprintf(buf, cap, "%s%s", pre, *pre ? "." : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

#define NAME_BUFS char a[ISD_SDM_NAME_MAX], b[ISD_SDM_NAME_MAX]
#define LA(...)   sub(a, sizeof a, L, __VA_ARGS__)
#define DB(...)   sub(b, sizeof b, D, __VA_ARGS__)

static void unet_res(struct list *l, const char *L, const char *D, int64_t in, int64_t out,
                     int64_t temb)
{
    NAME_BUFS;
    norm(l, LA("in_layers.0"), DB("norm1"), in);
    conv(l, LA("in_layers.2"), DB("conv1"), in, out, 3);
    linear(l, LA("emb_layers.1"), DB("time_emb_proj"), temb, out, 1);
    norm(l, LA("out_layers.0"), DB("norm2"), out);
    conv(l, LA("out_layers.3"), DB("conv2"), out, out, 3);
    if (in != out)
        conv(l, LA("skip_connection"), DB("conv_shortcut"), in, out, 1);
}

static void unet_st(struct list *l, const struct isd_sdm_config *c, const char *L, const char *D,
                    int64_t ch)
{
    NAME_BUFS;
    norm(l, LA("norm"), DB("norm"), ch);
    if (c->linear_proj)
        linear(l, LA("proj_in"), DB("proj_in"), ch, ch, 1);
    else
        conv(l, LA("proj_in"), DB("proj_in"), ch, ch, 1);
    for (int d = 0; d < c->depth; d++) {
        char bl[ISD_SDM_NAME_MAX], bd[ISD_SDM_NAME_MAX];
        const char *BL = sub(bl, sizeof bl, L, "transformer_blocks.%d", d);
        const char *BD = sub(bd, sizeof bd, D, "transformer_blocks.%d", d);
        for (int at = 1; at <= 2; at++) {
            int64_t kv = at == 1 ? ch : c->context_dim;
            linear(l, sub(a, sizeof a, BL, "attn%d.to_q", at),
                   sub(b, sizeof b, BD, "attn%d.to_q", at), ch, ch, 0);
            linear(l, sub(a, sizeof a, BL, "attn%d.to_k", at),
                   sub(b, sizeof b, BD, "attn%d.to_k", at), kv, ch, 0);
            linear(l, sub(a, sizeof a, BL, "attn%d.to_v", at),
                   sub(b, sizeof b, BD, "attn%d.to_v", at), kv, ch, 0);
            linear(l, sub(a, sizeof a, BL, "attn%d.to_out.0", at),
                   sub(b, sizeof b, BD, "attn%d.to_out.0", at), ch, ch, 1);
        }
        for (int n = 1; n <= 3; n++)
            norm(l, sub(a, sizeof a, BL, "norm%d", n), sub(b, sizeof b, BD, "norm%d", n), ch);
        linear(l, sub(a, sizeof a, BL, "ff.net.0.proj"), sub(b, sizeof b, BD, "ff.net.0.proj"), ch,
               8 * ch, 1);
        linear(l, sub(a, sizeof a, BL, "ff.net.2"), sub(b, sizeof b, BD, "ff.net.2"), 4 * ch, ch,
               1);
    }
    if (c->linear_proj)
        linear(l, LA("proj_out"), DB("proj_out"), ch, ch, 1);
    else
        conv(l, LA("proj_out"), DB("proj_out"), ch, ch, 1);
}

static void unet(struct list *l, const struct isd_sdm_config *c)
{
    NAME_BUFS;
    const char *L = UNET "input_blocks", *D = "down_blocks";
    int64_t mc = c->model_channels, te = 4 * mc, ch = mc, skips[64];
    int ns = 0, k = 1, last = c->levels - 1;
    l->part = ISD_SDM_UNET;
    linear(l, UNET "time_embed.0", "time_embedding.linear_1", mc, te, 1);
    linear(l, UNET "time_embed.2", "time_embedding.linear_2", te, te, 1);
    conv(l, UNET "input_blocks.0.0", "conv_in", c->in_channels, mc, 3);
    skips[ns++] = ch;
    for (int lv = 0; lv <= last; lv++) {
        int64_t out = mc * c->channel_mult[lv];
        for (int r = 0; r < c->num_res_blocks; r++, k++) {
            unet_res(l, LA("%d.0", k), DB("%d.resnets.%d", lv, r), ch, out, te);
            ch = out;
            if (c->attn_levels >> lv & 1)
                unet_st(l, c, LA("%d.1", k), DB("%d.attentions.%d", lv, r), ch);
            skips[ns++] = ch;
        }
        if (lv < last) {
            conv(l, LA("%d.0.op", k++), DB("%d.downsamplers.0.conv", lv), ch, ch, 3);
            skips[ns++] = ch;
        }
    }
    unet_res(l, UNET "middle_block.0", "mid_block.resnets.0", ch, ch, te);
    unet_st(l, c, UNET "middle_block.1", "mid_block.attentions.0", ch);
    unet_res(l, UNET "middle_block.2", "mid_block.resnets.1", ch, ch, te);
    L = UNET "output_blocks";
    D = "up_blocks";
    k = 0;
    for (int lv = last; lv >= 0; lv--) {
        int64_t out = mc * c->channel_mult[lv];
        int up = last - lv;
        for (int r = 0; r <= c->num_res_blocks; r++, k++) {
            unet_res(l, LA("%d.0", k), DB("%d.resnets.%d", up, r), ch + skips[--ns], out, te);
            ch = out;
            int at = 1;
            if (c->attn_levels >> lv & 1)
                unet_st(l, c, LA("%d.%d", k, at++), DB("%d.attentions.%d", up, r), ch);
            if (lv > 0 && r == c->num_res_blocks)
                conv(l, LA("%d.%d.conv", k, at), DB("%d.upsamplers.0.conv", up), ch, ch, 3);
        }
    }
    norm(l, UNET "out.0", "conv_norm_out", ch);
    conv(l, UNET "out.2", "conv_out", ch, c->out_channels, 3);
}

/* Text encoder layer i parameter "<hf>.<suffix>", OpenCLIP "<oc>.<suffix>" (oc may be NULL). */
static struct isd_sdm_tensor *text_param(struct list *l, int i, const char *hf, const char *oc,
                                         const char *suffix, int init, int ndim,
                                         const int64_t *shape)
{
    char a[ISD_SDM_NAME_MAX], b[ISD_SDM_NAME_MAX];
    snprintf(a, sizeof a, TEXT "encoder.layers.%d.%s.%s", i, hf, suffix);
    snprintf(b, sizeof b, "text_model.encoder.layers.%d.%s.%s", i, hf, suffix);
    struct isd_sdm_tensor *t = emit(l, init, ndim, shape, a, b);
    if (t && oc)
        snprintf(t->oc, sizeof t->oc, OC "transformer.resblocks.%d.%s.%s", i, oc, suffix);
    return t;
}

static void text_linear(struct list *l, int i, const char *hf, const char *oc, int64_t in,
                        int64_t out)
{
    text_param(l, i, hf, oc, "weight", INIT_W, 2, SHAPE(out, in));
    text_param(l, i, hf, oc, "bias", INIT_BIAS, 1, SHAPE(out));
}

static void text_norm(struct list *l, int i, const char *hf, const char *oc, int64_t c)
{
    text_param(l, i, hf, oc, "weight", INIT_NORM, 1, SHAPE(c));
    text_param(l, i, hf, oc, "bias", INIT_BIAS, 1, SHAPE(c));
}

static void text(struct list *l, const struct isd_sdm_config *c)
{
    int64_t w = c->text_width, m = c->text_mlp;
    struct isd_sdm_tensor *t;
    l->part = ISD_SDM_TEXT;
    l->layer = -1;
    t = emit(l, INIT_EMB, 2, SHAPE(c->vocab, w), TEXT "embeddings.token_embedding.weight",
             "text_model.embeddings.token_embedding.weight");
    if (t)
        snprintf(t->oc, sizeof t->oc, OC "token_embedding.weight");
    t = emit(l, INIT_POS, 2, SHAPE(c->positions, w), TEXT "embeddings.position_embedding.weight",
             "text_model.embeddings.position_embedding.weight");
    if (t)
        snprintf(t->oc, sizeof t->oc, OC "positional_embedding");
    for (int i = 0; i < c->text_layers; i++) {
        static const char *const qkv[] = {"self_attn.q_proj", "self_attn.k_proj",
                                          "self_attn.v_proj"};
        l->layer = i;
        text_norm(l, i, "layer_norm1", "ln_1", w);
        /* q, k, v weights, then their biases: consecutive, so they fuse into OpenCLIP's in_proj */
        for (int j = 0; j < 3; j++)
            if ((t = text_param(l, i, qkv[j], NULL, "weight", INIT_W, 2, SHAPE(w, w))) && j == 0) {
                t->fuse = 3;
                snprintf(t->oc, sizeof t->oc, OC "transformer.resblocks.%d.attn.in_proj_weight", i);
            }
        for (int j = 0; j < 3; j++)
            if ((t = text_param(l, i, qkv[j], NULL, "bias", INIT_BIAS, 1, SHAPE(w))) && j == 0) {
                t->fuse = 3;
                snprintf(t->oc, sizeof t->oc, OC "transformer.resblocks.%d.attn.in_proj_bias", i);
            }
        text_linear(l, i, "self_attn.out_proj", "attn.out_proj", w, w);
        text_norm(l, i, "layer_norm2", "ln_2", w);
        text_linear(l, i, "mlp.fc1", "mlp.c_fc", w, m);
        text_linear(l, i, "mlp.fc2", "mlp.c_proj", m, w);
    }
    l->layer = -1;
    if ((t = emit(l, INIT_NORM, 1, SHAPE(w), TEXT "final_layer_norm.weight",
                  "text_model.final_layer_norm.weight")))
        snprintf(t->oc, sizeof t->oc, OC "ln_final.weight");
    if ((t = emit(l, INIT_BIAS, 1, SHAPE(w), TEXT "final_layer_norm.bias",
                  "text_model.final_layer_norm.bias")))
        snprintf(t->oc, sizeof t->oc, OC "ln_final.bias");
}

static void vae_res(struct list *l, const char *L, const char *D, int64_t in, int64_t out)
{
    NAME_BUFS;
    norm(l, LA("norm1"), DB("norm1"), in);
    conv(l, LA("conv1"), DB("conv1"), in, out, 3);
    norm(l, LA("norm2"), DB("norm2"), out);
    conv(l, LA("conv2"), DB("conv2"), out, out, 3);
    if (in != out)
        conv(l, LA("nin_shortcut"), DB("conv_shortcut"), in, out, 1);
}

static void vae_mid(struct list *l, const char *L, const char *D, int64_t ch)
{
    NAME_BUFS;
    static const char *const ldm[] = {"q", "k", "v", "proj_out"};
    static const char *const dif[] = {"to_q", "to_k", "to_v", "to_out.0"};
    vae_res(l, LA("mid.block_1"), DB("mid_block.resnets.0"), ch, ch);
    norm(l, LA("mid.attn_1.norm"), DB("mid_block.attentions.0.group_norm"), ch);
    for (int i = 0; i < 4; i++) {
        struct isd_sdm_tensor *t =
            param(l, INIT_W, LA("mid.attn_1.%s", ldm[i]), DB("mid_block.attentions.0.%s", dif[i]),
                  "weight", 4, SHAPE(ch, ch, 1, 1));
        if (t)
            t->vae_attn = 1;
        param(l, INIT_BIAS, LA("mid.attn_1.%s", ldm[i]), DB("mid_block.attentions.0.%s", dif[i]),
              "bias", 1, SHAPE(ch));
    }
    vae_res(l, LA("mid.block_2"), DB("mid_block.resnets.1"), ch, ch);
}

static void vae(struct list *l, const struct isd_sdm_config *c)
{
    NAME_BUFS;
    int64_t ch = c->vae_ch, z = c->z_channels, e = c->embed_dim, in = ch;
    int last = c->vae_levels - 1;
    const char *L = VAE "encoder", *D = "encoder";
    l->part = ISD_SDM_VAE_ENC;
    conv(l, LA("conv_in"), DB("conv_in"), 3, ch, 3);
    for (int i = 0; i <= last; i++) {
        int64_t out = ch * c->vae_mult[i];
        for (int j = 0; j < c->vae_res_blocks; j++, in = out)
            vae_res(l, LA("down.%d.block.%d", i, j), DB("down_blocks.%d.resnets.%d", i, j), in,
                    out);
        if (i < last)
            conv(l, LA("down.%d.downsample.conv", i), DB("down_blocks.%d.downsamplers.0.conv", i),
                 out, out, 3);
    }
    vae_mid(l, L, D, in);
    norm(l, LA("norm_out"), DB("conv_norm_out"), in);
    conv(l, LA("conv_out"), DB("conv_out"), in, 2 * z, 3);
    conv(l, VAE "quant_conv", "quant_conv", 2 * z, 2 * e, 1);
    l->part = ISD_SDM_VAE_DEC;
    L = VAE "decoder";
    D = "decoder";
    in = ch * c->vae_mult[last];
    conv(l, VAE "post_quant_conv", "post_quant_conv", e, z, 1);
    conv(l, LA("conv_in"), DB("conv_in"), z, in, 3);
    vae_mid(l, L, D, in);
    for (int i = last; i >= 0; i--) {
        int64_t out = ch * c->vae_mult[i];
        for (int j = 0; j <= c->vae_res_blocks; j++, in = out)
            vae_res(l, LA("up.%d.block.%d", i, j), DB("up_blocks.%d.resnets.%d", last - i, j), in,
                    out);
        if (i > 0)
            conv(l, LA("up.%d.upsample.conv", i), DB("up_blocks.%d.upsamplers.0.conv", last - i),
                 out, out, 3);
    }
    norm(l, LA("norm_out"), DB("conv_norm_out"), in);
    conv(l, LA("conv_out"), DB("conv_out"), in, 3, 3);
}

int isd_sdm_tensors(const struct isd_sdm_config *cfg, struct isd_sdm_tensor **list, size_t *n)
{
    struct list l = {.layer = -1};
    *list = NULL;
    *n = 0;
    if (cfg->levels < 1 || cfg->levels > 4 || cfg->vae_levels < 1 || cfg->vae_levels > 4 ||
        cfg->num_res_blocks < 1 || cfg->levels * (cfg->num_res_blocks + 1) > 60)
        return -1;
    unet(&l, cfg);
    text(&l, cfg);
    vae(&l, cfg);
    if (l.failed) {
        free(l.v);
        return -1;
    }
    *list = l.v;
    *n = l.n;
    return 0;
}

uint64_t isd_sdm_param_count(const struct isd_sdm_config *cfg, int part)
{
    struct isd_sdm_tensor *v;
    size_t n;
    uint64_t sum = 0;
    if (isd_sdm_tensors(cfg, &v, &n) < 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].part == part)
            sum += v[i].numel;
    free(v);
    return sum;
}

static float value(struct rng *r, int init, int exact)
{
    float x = rng_value(r, init);
    return exact ? isd_sdm_exact(x) : x;
}

void isd_sdm_tensor_values(const struct isd_sdm_tensor *t, uint64_t seed, int exact, float *dst,
                           size_t n)
{
    struct rng r;
    rng_seed(&r, seed, t->name);
    for (size_t k = 0; k < n; k++)
        dst[k] = value(&r, t->init, exact);
}

int isd_sdm_values(const struct isd_sdm_config *cfg, uint64_t seed, int exact, const char *name,
                   float *dst, size_t n)
{
    struct isd_sdm_tensor *v;
    size_t count;
    int rc = -1;
    if (isd_sdm_tensors(cfg, &v, &count) < 0)
        return -1;
    for (size_t i = 0; i < count && rc < 0; i++)
        if (strcmp(v[i].name, name) == 0) {
            isd_sdm_tensor_values(&v[i], seed, exact, dst, n);
            rc = 0;
        }
    free(v);
    return rc;
}

/* ---- files ---- */

enum { DT_F32 = ISD_SDM_F32, DT_F16 = ISD_SDM_F16, DT_BF16 = ISD_SDM_BF16, DT_I64 };
enum { EX_NONE, EX_ALPHAS, EX_POSIDS, EX_EMA_DECAY, EX_EMA_UPDATES, EX_RANDOM };

struct ftensor {
    char name[ISD_SDM_NAME_MAX];
    int dtype;
    int ndim;
    int64_t shape[4];
    const struct isd_sdm_tensor *src[3]; /* canonical sources: 3 for a fused in_proj */
    int nsrc;
    int extra; /* EX_*: a tensor outside the architecture */
    uint64_t numel;
    uint64_t offset; /* in the data buffer */
};

struct file {
    struct ftensor *v;
    size_t n, cap;
};

static struct ftensor *file_add(struct file *f, const char *name, int dtype, int ndim,
                                const int64_t *shape)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 256;
        struct ftensor *v = realloc(f->v, cap * sizeof *v);
        if (!v)
            return NULL;
        f->v = v;
        f->cap = cap;
    }
    struct ftensor *t = &f->v[f->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    return t;
}

static struct ftensor *file_add_src(struct file *f, const char *name, int dtype,
                                    const struct isd_sdm_tensor *src, int two_d)
{
    int ndim = two_d ? 2 : src->ndim;
    struct ftensor *t = file_add(f, name, dtype, ndim, src->shape);
    if (t) {
        t->src[0] = src;
        t->nsrc = 1;
    }
    return t;
}

/* A tensor outside the architecture; 1 on success. */
static int add_extra(struct file *f, const char *name, int dtype, int ndim, const int64_t *shape,
                     int extra)
{
    struct ftensor *t = file_add(f, name, dtype, ndim, shape);
    if (t)
        t->extra = extra;
    return t != NULL;
}

static size_t dtype_size(int dt)
{
    return dt == DT_F32 ? 4 : dt == DT_I64 ? 8 : 2;
}

/* Element counts and offsets; applies the omit/reshape test options. */
static void layout_file(struct file *f, const struct isd_sdm_options *o)
{
    uint64_t off = 0;
    size_t w = 0;
    for (size_t i = 0; i < f->n; i++) {
        struct ftensor *t = &f->v[i];
        if (o->omit && strcmp(t->name, o->omit) == 0)
            continue;
        if (o->reshape && strcmp(t->name, o->reshape) == 0 && o->reshape_dim >= 0 &&
            o->reshape_dim < t->ndim)
            t->shape[o->reshape_dim] = o->reshape_value;
        t->numel = 1;
        for (int d = 0; d < t->ndim; d++)
            t->numel *= (uint64_t)t->shape[d];
        t->offset = off;
        off += t->numel * dtype_size(t->dtype);
        f->v[w++] = *t;
    }
    f->n = w;
}

static int fail(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t cap, const char *fmt, ...)
{
    if (msg && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *dtype_name(int dt)
{
    static const char *const names[] = {"F32", "F16", "BF16", "I64"};
    return names[dt];
}

static char *header_json(const struct file *f, json_t *meta, size_t *len)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    if (meta)
        json_object_set(root, "__metadata__", meta);
    for (size_t i = 0; i < f->n; i++) {
        const struct ftensor *t = &f->v[i];
        json_t *shape = json_array(), *e = json_object();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(e, "dtype", json_string(dtype_name(t->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[II]", (json_int_t)t->offset,
                                      (json_int_t)(t->offset + t->numel * dtype_size(t->dtype))));
        json_object_set_new(root, t->name, e);
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s)
        *len = strlen(s);
    return s;
}

enum { CHUNK = 16384 };

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

/* F16C: round-to-nearest-even in hardware, 8 at a time (files are written 4x faster). */
__attribute__((target("avx,f16c"))) static void encode_f16c(const float *x, size_t n,
                                                            unsigned char *out)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        uint16_t h = to_f16(x[i]);
        memcpy(out + 2 * i, &h, 2);
    }
}

static int have_f16c(void)
{
    static _Atomic int have = -1;
    if (have < 0) {
        unsigned a, b, c, d, lo = 0, hi = 0;
        int ok =
            __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) && (c & bit_AVX) && (c & bit_F16C);
        if (ok)
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        have = ok && (lo & 6) == 6;
    }
    return have;
}
#endif

static void encode(int dt, const float *x, size_t n, unsigned char *out)
{
#if defined(__x86_64__)
    if (dt == DT_F16 && have_f16c()) {
        encode_f16c(x, n, out);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        if (dt == DT_F32) {
            memcpy(out + 4 * i, &x[i], 4);
        } else {
            uint16_t h = dt == DT_F16 ? to_f16(x[i]) : to_bf16(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
    }
}

/* Streams `n` values of one canonical source (seeded by its name). */
static int write_stream(FILE *fp, int dt, uint64_t seed, int exact, const char *name, int init,
                        uint64_t n)
{
    static _Thread_local float x[CHUNK];
    static _Thread_local unsigned char out[CHUNK * 4];
    struct rng r;
    rng_seed(&r, seed, name);
    while (n) {
        size_t k = n < CHUNK ? (size_t)n : CHUNK;
        for (size_t i = 0; i < k; i++)
            x[i] = value(&r, init, exact);
        encode(dt, x, k, out);
        if (fwrite(out, dtype_size(dt), k, fp) != k)
            return -1;
        n -= k;
    }
    return 0;
}

static int write_extra(FILE *fp, const struct ftensor *t)
{
    double prod = 1;
    for (uint64_t i = 0; i < t->numel; i++) {
        unsigned char b[8];
        if (t->extra == EX_ALPHAS) { /* LDM scaled_linear schedule, 1000 steps */
            double n = (double)(t->numel > 1 ? t->numel - 1 : 1);
            double beta = sqrt(0.00085) + (double)i / n * (sqrt(0.012) - sqrt(0.00085));
            prod *= 1 - beta * beta;
            float v = (float)prod;
            memcpy(b, &v, 4);
        } else if (t->extra == EX_EMA_DECAY) {
            float v = 0.9999f;
            memcpy(b, &v, 4);
        } else {
            int64_t v = t->extra == EX_POSIDS ? (int64_t)(i % (uint64_t)t->shape[t->ndim - 1]) : 0;
            memcpy(b, &v, 8);
        }
        if (fwrite(b, dtype_size(t->dtype), 1, fp) != 1)
            return -1;
    }
    return 0;
}

static int write_tensor(FILE *fp, const struct ftensor *t, const struct isd_sdm_options *o)
{
    if (t->extra == EX_RANDOM)
        return write_stream(fp, t->dtype, o->seed, o->exact, t->name, INIT_W, t->numel);
    if (t->extra != EX_NONE)
        return write_extra(fp, t);
    uint64_t each = t->numel / (uint64_t)t->nsrc;
    for (int s = 0; s < t->nsrc; s++)
        if (write_stream(fp, t->dtype, o->seed, o->exact, t->src[s]->name, t->src[s]->init, each) <
            0)
            return -1;
    return 0;
}

static int write_st(const char *path, struct file *f, json_t *meta, const struct isd_sdm_options *o,
                    char *msg, size_t cap)
{
    layout_file(f, o);
    size_t len = 0;
    char *hdr = header_json(f, meta, &len);
    if (!hdr)
        return fail(msg, cap, "%s: cannot build the header", path);
    size_t padded = (len + 7) / 8 * 8; /* pad with spaces, as the reference writer does */
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(hdr);
        return fail(msg, cap, "%s: %s", path, strerror(errno));
    }
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    unsigned char n8[8];
    for (int i = 0; i < 8; i++)
        n8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int rc = fwrite(n8, 1, 8, fp) == 8 && fwrite(hdr, 1, len, fp) == len ? 0 : -1;
    for (size_t i = len; rc == 0 && i < padded; i++)
        rc = fputc(' ', fp) == EOF ? -1 : 0;
    free(hdr);
    if (o->sparse && rc == 0) {
        uint64_t end =
            f->n ? f->v[f->n - 1].offset + f->v[f->n - 1].numel * dtype_size(f->v[f->n - 1].dtype)
                 : 0;
        rc = fflush(fp) == 0 && ftruncate(fileno(fp), (off_t)(8 + padded + end)) == 0 ? 0 : -1;
    }
    for (size_t i = 0; rc == 0 && !o->sparse && i < f->n; i++)
        rc = write_tensor(fp, &f->v[i], o);
    if (fclose(fp) != 0)
        rc = -1;
    if (rc < 0)
        return fail(msg, cap, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* "format", "sdc.preset", "sdc.prediction" and the heads keys (UNet / text files), then the
 * caller's extra keys (which win). */
static json_t *metadata(const struct isd_sdm_config *c, const struct isd_sdm_options *o,
                        int unet_keys, int text_keys)
{
    json_t *m = json_object();
    char num[32];
    json_object_set_new(m, "format", json_string("pt"));
    if (!o->no_metadata) {
        json_object_set_new(m, "sdc.preset", json_string(c->name ? c->name : "custom"));
        if (unet_keys)
            json_object_set_new(m, "sdc.prediction", json_string(c->v_prediction ? "v" : "eps"));
        if (unet_keys && c->heads_meta) {
            int heads = c->num_heads > 0;
            snprintf(num, sizeof num, "%d", heads ? c->num_heads : c->num_head_channels);
            json_object_set_new(m, heads ? "sdc.num_heads" : "sdc.num_head_channels",
                                json_string(num));
        }
        if (text_keys && c->text_heads_meta) {
            snprintf(num, sizeof num, "%d", c->text_heads);
            json_object_set_new(m, "sdc.text_heads", json_string(num));
        }
    }
    for (int i = 0; o->meta && o->meta[i] && o->meta[i + 1]; i += 2)
        json_object_set_new(m, o->meta[i], json_string(o->meta[i + 1]));
    return m;
}

static int write_single(const struct isd_sdm_config *c, const struct isd_sdm_options *o,
                        const struct isd_sdm_tensor *v, size_t n, const char *path, char *msg,
                        size_t cap)
{
    struct file f = {0};
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++) {
        const struct isd_sdm_tensor *t = &v[i];
        struct ftensor *x;
        if (t->part == ISD_SDM_TEXT && c->openclip) {
            if (!t->oc[0])
                continue; /* k/v part of a fused in_proj */
            ok = (x = file_add_src(&f, t->oc, o->dtype, t, 0)) != NULL;
            if (ok && t->fuse == 3) {
                x->src[1] = t + 1;
                x->src[2] = t + 2;
                x->nsrc = 3;
                x->shape[0] *= 3;
            }
        } else {
            ok = file_add_src(&f, t->name, o->dtype, t, 0) != NULL;
        }
    }
    int64_t w = c->text_width, p = c->positions;
    if (c->openclip)
        ok = ok && add_extra(&f, OC "text_projection", o->dtype, 2, SHAPE(w, w), EX_RANDOM);
    else
        ok = ok && add_extra(&f, TEXT "embeddings.position_ids", DT_I64, 2, SHAPE(1, p), EX_POSIDS);
    ok = ok && add_extra(&f, "alphas_cumprod", DT_F32, 1, SHAPE(1000), EX_ALPHAS);
    ok = ok && add_extra(&f, "model_ema.decay", DT_F32, 0, NULL, EX_EMA_DECAY);
    ok = ok && add_extra(&f, "model_ema.num_updates", DT_I64, 0, NULL, EX_EMA_UPDATES);
    int rc = ok ? 0 : fail(msg, cap, "out of memory");
    if (rc == 0) {
        json_t *meta = metadata(c, o, 1, 1);
        rc = write_st(path, &f, meta, o, msg, cap);
        json_decref(meta);
    }
    free(f.v);
    return rc;
}

/* Replaces the first "from" in s by "to" (in place, s has ISD_SDM_NAME_MAX bytes). */
static void replace(char *s, const char *from, const char *to)
{
    char *p = strstr(s, from);
    if (!p)
        return;
    char tail[ISD_SDM_NAME_MAX];
    snprintf(tail, sizeof tail, "%s", p + strlen(from));
    snprintf(p, ISD_SDM_NAME_MAX - (size_t)(p - s), "%s%s", to, tail);
}

static int mkdirs(const char *root, const char *subdir, char *msg, size_t cap)
{
    char p[4096];
    snprintf(p, sizeof p, "%s%s%s", root, subdir ? "/" : "", subdir ? subdir : "");
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return fail(msg, cap, "%s: %s", p, strerror(errno));
    return 0;
}

static int dump(json_t *j, const char *root, const char *rel, char *msg, size_t cap)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    int rc =
        j && json_dump_file(j, p, JSON_INDENT(2)) == 0 ? 0 : fail(msg, cap, "%s: write failed", p);
    json_decref(j);
    return rc;
}

static json_t *int_array(const int *v, int n, int scale)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer((json_int_t)v[i] * scale));
    return a;
}

static int write_configs(const struct isd_sdm_config *c, const char *root, char *msg, size_t cap)
{
    json_t *down = json_array(), *up = json_array(), *heads;
    for (int l = 0; l < c->levels; l++) {
        int a = c->attn_levels >> l & 1, ua = c->attn_levels >> (c->levels - 1 - l) & 1;
        json_array_append_new(down, json_string(a ? "CrossAttnDownBlock2D" : "DownBlock2D"));
        json_array_append_new(up, json_string(ua ? "CrossAttnUpBlock2D" : "UpBlock2D"));
    }
    if (c->num_heads > 0) {
        heads = json_integer(c->num_heads); /* diffusers calls the head count attention_head_dim */
    } else {
        heads = json_array();
        for (int l = 0; l < c->levels; l++)
            json_array_append_new(
                heads, json_integer(c->model_channels * c->channel_mult[l] / c->num_head_channels));
    }
    json_t *unet = json_pack(
        "{s:s, s:i, s:i, s:o, s:i, s:i, s:o, s:b, s:o, s:o, s:i}", "_class_name",
        "UNet2DConditionModel", "in_channels", c->in_channels, "out_channels", c->out_channels,
        "block_out_channels", int_array(c->channel_mult, c->levels, c->model_channels),
        "layers_per_block", c->num_res_blocks, "cross_attention_dim", c->context_dim,
        "attention_head_dim", heads, "use_linear_projection", c->linear_proj, "down_block_types",
        down, "up_block_types", up, "sample_size", 64);
    int layers = c->openclip ? c->text_layers - 1 : c->text_layers;
    json_t *text =
        json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f}", "architectures",
                  "CLIPTextModel", "hidden_act", c->openclip ? "gelu" : "quick_gelu", "hidden_size",
                  c->text_width, "intermediate_size", c->text_mlp, "num_attention_heads",
                  c->text_heads, "num_hidden_layers", layers, "max_position_embeddings",
                  c->positions, "vocab_size", c->vocab, "layer_norm_eps", 1e-5);
    json_t *vaecfg = json_pack("{s:s, s:i, s:i, s:i, s:o, s:i, s:i, s:f}", "_class_name",
                               "AutoencoderKL", "in_channels", 3, "out_channels", 3,
                               "latent_channels", c->z_channels, "block_out_channels",
                               int_array(c->vae_mult, c->vae_levels, c->vae_ch), "layers_per_block",
                               c->vae_res_blocks, "norm_num_groups", 32, "scaling_factor", 0.18215);
    json_t *sched =
        json_pack("{s:s, s:f, s:f, s:s, s:i, s:s, s:s, s:i, s:b, s:b}", "_class_name",
                  "PNDMScheduler", "beta_start", 0.00085, "beta_end", 0.012, "beta_schedule",
                  "scaled_linear", "num_train_timesteps", 1000, "prediction_type",
                  c->v_prediction ? "v_prediction" : "epsilon", "timestep_spacing", "leading",
                  "steps_offset", 1, "clip_sample", 0, "set_alpha_to_one", 0);
    json_t *index = json_pack(
        "{s:s, s:[ss], s:[ss], s:[ss], s:[ss], s:[ss]}", "_class_name", "StableDiffusionPipeline",
        "unet", "diffusers", "UNet2DConditionModel", "vae", "diffusers", "AutoencoderKL",
        "text_encoder", "transformers", "CLIPTextModel", "tokenizer", "transformers",
        "CLIPTokenizer", "scheduler", "diffusers", "PNDMScheduler");
    int rc = 0;
    rc |= dump(unet, root, "unet/config.json", msg, cap);
    rc |= dump(text, root, "text_encoder/config.json", msg, cap);
    rc |= dump(vaecfg, root, "vae/config.json", msg, cap);
    rc |= dump(sched, root, "scheduler/scheduler_config.json", msg, cap);
    rc |= dump(index, root, "model_index.json", msg, cap);
    return rc ? -1 : 0;
}

static int write_diffusers(const struct isd_sdm_config *c, const struct isd_sdm_options *o,
                           const struct isd_sdm_tensor *v, size_t n, const char *root, char *msg,
                           size_t cap)
{
    static const char *const subdirs[] = {"unet", "text_encoder", "vae", "scheduler"};
    if (mkdirs(root, NULL, msg, cap) < 0)
        return -1;
    for (int i = 0; i < 4; i++)
        if (mkdirs(root, subdirs[i], msg, cap) < 0)
            return -1;
    struct file files[3] = {{0}};
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++) {
        const struct isd_sdm_tensor *t = &v[i];
        int which = t->part == ISD_SDM_UNET ? 0 : t->part == ISD_SDM_TEXT ? 1 : 2;
        if (t->part == ISD_SDM_TEXT && c->openclip && t->layer == c->text_layers - 1)
            continue; /* diffusers stores the SD2 text encoder truncated */
        struct ftensor *x = file_add_src(&files[which], t->diff, o->dtype, t, t->vae_attn);
        ok = x != NULL;
        if (ok && o->legacy_vae_attn && which == 2) {
            replace(x->name, "attentions.0.to_q.", "attentions.0.query.");
            replace(x->name, "attentions.0.to_k.", "attentions.0.key.");
            replace(x->name, "attentions.0.to_v.", "attentions.0.value.");
            replace(x->name, "attentions.0.to_out.0.", "attentions.0.proj_attn.");
        }
    }
    const char *suffix = o->dtype == ISD_SDM_F16 ? ".fp16.safetensors" : ".safetensors";
    static const char *const bases[] = {"unet/diffusion_pytorch_model", "text_encoder/model",
                                        "vae/diffusion_pytorch_model"};
    int rc = ok ? 0 : fail(msg, cap, "out of memory");
    for (int i = 0; rc == 0 && i < 3; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s%s", root, bases[i], suffix);
        json_t *meta = metadata(c, o, i == 0, i == 1);
        rc = write_st(p, &files[i], meta, o, msg, cap);
        json_decref(meta);
    }
    for (int i = 0; i < 3; i++)
        free(files[i].v);
    return rc == 0 ? write_configs(c, root, msg, cap) : rc;
}

int isd_sdm_write(const struct isd_sdm_config *cfg, const struct isd_sdm_options *o,
                  const char *path, char *msg, size_t cap)
{
    struct isd_sdm_tensor *v;
    size_t n;
    if (o->dtype < ISD_SDM_F32 || o->dtype > ISD_SDM_BF16)
        return fail(msg, cap, "bad dtype %d", o->dtype);
    if (isd_sdm_tensors(cfg, &v, &n) < 0)
        return fail(msg, cap, "bad configuration");
    int rc = o->layout == ISD_SDM_DIFFUSERS ? write_diffusers(cfg, o, v, n, path, msg, cap)
                                            : write_single(cfg, o, v, n, path, msg, cap);
    free(v);
    return rc;
}
