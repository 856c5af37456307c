/* Architecture inference from canonical names/shapes/metadata, then a full tensor check. */
#include "engine/weights/weights_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U "model.diffusion_model."
#define V "first_stage_model."
#define T "cond_stage_model.transformer.text_model."

enum { DIM_MAX = 1 << 24, BLOCKS_MAX = 64, TEXT_LAYERS_MAX = 256 };

struct infer {
    const struct isd_wt_model *m;
    struct isd_eng_error *err;
    const char *root;
};

/* ---- name queries ---- */

/* Some canonical name starts with `prefix`. */
static int has_prefix(const struct isd_wt_model *m, const char *prefix)
{
    size_t lo = 0, hi = isd_wt_model_count(m), n = strlen(prefix);
    while (lo < hi) { /* first name >= prefix */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(isd_wt_model_at(m, mid)->name, prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < isd_wt_model_count(m) && strncmp(isd_wt_model_at(m, lo)->name, prefix, n) == 0;
}

__attribute__((format(printf, 2, 3))) static int has(const struct isd_wt_model *m, const char *fmt,
                                                     ...)
{
    char name[ISD_WT_NAME_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return has_prefix(m, name);
}

/* 1 + the largest N of names "<prefix>N.", 0 when there is none. */
static int count_index(const struct isd_wt_model *m, const char *prefix)
{
    size_t n = strlen(prefix), count = isd_wt_model_count(m);
    long best = -1;
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(isd_wt_model_at(m, mid)->name, prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < count; i++) {
        const char *s = isd_wt_model_at(m, i)->name;
        if (strncmp(s, prefix, n) != 0)
            break;
        char *end;
        errno = 0;
        long v = strtol(s + n, &end, 10);
        if (end != s + n && *end == '.' && s[n] >= '0' && s[n] <= '9' && errno == 0 && v > best &&
            v < 1000000)
            best = v;
    }
    return (int)(best + 1);
}

/* Dimension d of the first existing tensor of the NULL-terminated `names` (formatted with one
 * int argument `k`), checked to be in 1..DIM_MAX. EMISSING names the first when none exists. */
static int dim_of(struct infer *in, int *out, int d, int k, const char *const *names)
{
    char first[ISD_WT_NAME_MAX + 64] = "";
    for (int i = 0; names[i]; i++) {
        char name[ISD_WT_NAME_MAX + 64];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(name, sizeof name, names[i], k);
#pragma GCC diagnostic pop
        if (i == 0)
            memcpy(first, name, sizeof name);
        struct isd_wt_view v;
        if (isd_wt_get(in->m, name, &v) < 0)
            continue;
        if (d >= v.ndim || v.shape[d] < 1 || v.shape[d] > DIM_MAX)
            return isd_eng_fail(in->err, ISD_ENG_ESHAPE,
                                "%s: tensor '%s' has no usable dimension %d", in->root, name, d);
        *out = (int)v.shape[d];
        return 0;
    }
    return isd_eng_fail(in->err, ISD_ENG_EMISSING, "%s: tensor '%s' is missing", in->root, first);
}

#define DIM(in, out, d, k, ...) dim_of(in, out, d, k, (const char *const[]){__VA_ARGS__, NULL})

/* ---- metadata ---- */

/* 1 and *v when `key` holds an integer in [lo, hi]; 0 when absent; EFORMAT otherwise. */
static int meta_int(struct infer *in, const char *key, int lo, int hi, int *v)
{
    const char *s = isd_wt_model_meta(in->m, key);
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (end == s || *end || errno || x < lo || x > hi)
        return isd_eng_fail(in->err, ISD_ENG_EFORMAT,
                            "%s: metadata %s=\"%.32s\" is not an integer in [%d, %d]", in->root,
                            key, s, lo, hi);
    *v = (int)x;
    return 1;
}

static int meta_double(struct infer *in, const char *key, double *v)
{
    const char *s = isd_wt_model_meta(in->m, key);
    if (!s)
        return 0;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(x) || x <= 0)
        return isd_eng_fail(in->err, ISD_ENG_EFORMAT,
                            "%s: metadata %s=\"%.32s\" is not a positive number", in->root, key, s);
    *v = x;
    return 1;
}

struct word {
    const char *word;
    int value;
};

/* 1 and *v when `key` holds one of `words` (NULL-terminated); 0 when absent; EFORMAT else. */
static int meta_word(struct infer *in, const char *key, const struct word *words, int *v)
{
    const char *s = isd_wt_model_meta(in->m, key);
    if (!s)
        return 0;
    for (int i = 0; words[i].word; i++)
        if (strcmp(s, words[i].word) == 0) {
            *v = words[i].value;
            return 1;
        }
    return isd_eng_fail(in->err, ISD_ENG_EFORMAT, "%s: metadata %s=\"%.32s\" is not recognised",
                        in->root, key, s);
}

/* ---- structure ---- */

static int res_width(struct infer *in, const char *prefix, int k, int *w)
{
    char a[128], b[128], c[128];
    snprintf(a, sizeof a, "%s%%d.0.out_layers.3.weight", prefix);
    snprintf(b, sizeof b, "%s%%d.0.in_layers.2.weight", prefix);
    snprintf(c, sizeof c, "%s%%d.0.emb_layers.1.weight", prefix);
    return DIM(in, w, 0, k, a, b, c);
}

/* Input block k, the nres-th ResBlock of `level`: attention must be on all blocks of a level or
 * none; the first block gives the level's width. */
static int level_block(struct infer *in, struct isd_wt_unet_config *u, int level, int k, int nres,
                       int *attn)
{
    int a = has(in->m, U "input_blocks.%d.1.", k), w, rc;
    if (nres > 0 && a != *attn)
        return isd_eng_fail(in->err, ISD_ENG_EMISSING,
                            "%s: tensors '" U "input_blocks.%d.1.*' are missing (UNet level %d "
                            "has attention on some blocks only)",
                            in->root, a ? k - 1 : k, level);
    *attn = a;
    if (nres > 0)
        return 0;
    if ((rc = res_width(in, U "input_blocks.", k, &w)) < 0)
        return rc;
    if (w % u->model_channels)
        return isd_eng_fail(in->err, ISD_ENG_ESHAPE,
                            "%s: UNet level %d width %d is not a multiple of model_channels %d",
                            in->root, level, w, u->model_channels);
    u->channel_mult[level] = w / u->model_channels;
    return 0;
}

/* Level `level` ends before input block k (a downsampler, or the end). */
static int close_level(struct infer *in, struct isd_wt_unet_config *u, int level, int nres,
                       int attn, int k)
{
    if (nres == 0)
        return isd_eng_fail(in->err, ISD_ENG_EMISSING,
                            "%s: tensor '" U "input_blocks.%d.0.in_layers.0.weight' is missing",
                            in->root, k);
    if (level > 0 && nres != u->num_res_blocks)
        return isd_eng_fail(in->err, ISD_ENG_EMISSING,
                            "%s: UNet level %d has %d ResBlocks, level 0 has %d (tensors "
                            "'" U "input_blocks.%d.*' missing?)",
                            in->root, level, nres, u->num_res_blocks, k);
    if (nres > BLOCKS_MAX)
        return isd_eng_fail(in->err, ISD_ENG_EUNSUPPORTED, "%s: %d ResBlocks per level", in->root,
                            nres);
    u->num_res_blocks = nres;
    u->attn_levels |= attn << level;
    u->num_levels = level + 1;
    return 0;
}

/* input_blocks: per level, ResBlocks (each with or without a SpatialTransformer), then a
 * downsampler except after the last level. */
static int infer_levels(struct infer *in, struct isd_wt_unet_config *u)
{
    int nin = count_index(in->m, U "input_blocks."), k = 1, rc;
    u->num_levels = u->num_res_blocks = u->attn_levels = 0;
    for (int level = 0;; level++) {
        int nres = 0, attn = 0;
        if (level == ISD_WT_MAX_LEVELS)
            return isd_eng_fail(in->err, ISD_ENG_EUNSUPPORTED, "%s: more than %d UNet levels",
                                in->root, ISD_WT_MAX_LEVELS);
        for (; k < nin && !has(in->m, U "input_blocks.%d.0.op.", k); k++, nres++)
            if ((rc = level_block(in, u, level, k, nres, &attn)) < 0)
                return rc;
        if ((rc = close_level(in, u, level, nres, attn, k)) < 0)
            return rc;
        if (k++ >= nin)
            return 0; /* no downsampler: that was the last level */
    }
}

static int infer_unet(struct infer *in, struct isd_wt_unet_config *u)
{
    int rc;
    if ((rc = DIM(in, &u->in_channels, 1, 0, U "input_blocks.0.0.weight")) < 0 ||
        (rc = DIM(in, &u->model_channels, 0, 0, U "input_blocks.0.0.weight",
                  U "input_blocks.0.0.bias")) < 0 ||
        (rc = DIM(in, &u->out_channels, 0, 0, U "out.2.weight", U "out.2.bias")) < 0 ||
        (rc = DIM(in, &u->time_embed_dim, 0, 0, U "time_embed.0.weight", U "time_embed.0.bias",
                  U "time_embed.2.bias")) < 0 ||
        (rc = DIM(in, &u->context_dim, 1, 0,
                  U "middle_block.1.transformer_blocks.0.attn2.to_k.weight",
                  U "middle_block.1.transformer_blocks.0.attn2.to_v.weight")) < 0)
        return rc;
    if ((rc = infer_levels(in, u)) < 0)
        return rc;
    u->transformer_depth = count_index(in->m, U "middle_block.1.transformer_blocks.");
    if (u->transformer_depth < 1 || u->transformer_depth > BLOCKS_MAX)
        return isd_eng_fail(in->err, ISD_ENG_EMISSING,
                            "%s: tensor '" U "middle_block.1.transformer_blocks.0.norm1.weight' "
                            "is missing",
                            in->root);
    struct isd_wt_view v;
    if (isd_wt_get(in->m, U "middle_block.1.proj_in.weight", &v) < 0 &&
        isd_wt_get(in->m, U "middle_block.1.proj_out.weight", &v) < 0)
        return isd_eng_fail(in->err, ISD_ENG_EMISSING,
                            "%s: tensor '" U "middle_block.1.proj_in.weight' is missing", in->root);
    u->proj = v.ndim == 2 ? ISD_WT_PROJ_LINEAR : ISD_WT_PROJ_CONV;
    u->num_heads = u->num_head_channels = 0;
    u->gn_eps = 1e-5;
    u->st_gn_eps = 1e-6;
    u->ln_eps = 1e-5;
    return 0;
}

static int infer_text(struct infer *in, struct isd_wt_text_config *t)
{
    int rc;
    if ((rc = DIM(in, &t->vocab_size, 0, 0, T "embeddings.token_embedding.weight")) < 0 ||
        (rc = DIM(in, &t->width, 1, 0, T "embeddings.token_embedding.weight",
                  T "final_layer_norm.weight")) < 0 ||
        (rc = DIM(in, &t->max_positions, 0, 0, T "embeddings.position_embedding.weight")) < 0 ||
        (rc = DIM(in, &t->mlp_dim, 0, 0, T "encoder.layers.0.mlp.fc1.weight",
                  T "encoder.layers.0.mlp.fc1.bias")) < 0)
        return rc;
    t->num_layers = count_index(in->m, T "encoder.layers.");
    if (t->num_layers > TEXT_LAYERS_MAX)
        return isd_eng_fail(in->err, ISD_ENG_EUNSUPPORTED, "%s: %d text encoder layers", in->root,
                            t->num_layers);
    t->ln_eps = 1e-5;
    return 0;
}

static int vae_block_width(struct infer *in, const char *level_fmt, int i, int *w)
{
    char a[128], b[128], c[128];
    snprintf(a, sizeof a, "%s.block.0.conv2.weight", level_fmt);
    snprintf(b, sizeof b, "%s.block.0.conv1.weight", level_fmt);
    snprintf(c, sizeof c, "%s.block.0.norm2.weight", level_fmt);
    return DIM(in, w, 0, i, a, b, c);
}

static int infer_vae(struct infer *in, int comps, struct isd_wt_vae_config *v)
{
    int enc = comps & ISD_WT_VAE_ENC, rc, two_z = 0, two_e = 0;
    const char *lv = enc ? V "encoder.down.%d" : V "decoder.up.%d";
    if ((rc = DIM(in, &v->ch, enc ? 0 : 1, 0,
                  enc ? V "encoder.conv_in.weight" : V "decoder.conv_out.weight",
                  enc ? V "encoder.conv_in.bias" : V "decoder.norm_out.weight")) < 0)
        return rc;
    if (enc) {
        if ((rc = DIM(in, &v->in_channels, 1, 0, V "encoder.conv_in.weight")) < 0 ||
            (rc = DIM(in, &two_z, 0, 0, V "encoder.conv_out.weight", V "encoder.conv_out.bias")) <
                0 ||
            (rc = DIM(in, &two_e, 0, 0, V "quant_conv.weight", V "quant_conv.bias")) < 0)
            return rc;
        v->z_channels = two_z / 2;
        v->embed_dim = two_e / 2;
        v->num_levels = count_index(in->m, V "encoder.down.");
        v->num_res_blocks = count_index(in->m, V "encoder.down.0.block.");
    }
    if (comps & ISD_WT_VAE_DEC) {
        if ((rc = DIM(in, &v->out_channels, 0, 0, V "decoder.conv_out.weight",
                      V "decoder.conv_out.bias")) < 0 ||
            (rc = DIM(in, &v->z_channels, 1, 0, V "decoder.conv_in.weight",
                      V "post_quant_conv.weight")) < 0 ||
            (rc = DIM(in, &v->embed_dim, 1, 0, V "post_quant_conv.weight")) < 0)
            return rc;
        int levels = count_index(in->m, V "decoder.up.");
        int blocks = count_index(in->m, V "decoder.up.0.block.") - 1;
        if (enc && (levels != v->num_levels || blocks != v->num_res_blocks))
            return isd_eng_fail(in->err, ISD_ENG_EMISSING,
                                "%s: VAE decoder has %d levels x %d blocks, encoder %d x %d "
                                "(missing tensors?)",
                                in->root, levels, blocks + 1, v->num_levels, v->num_res_blocks);
        v->num_levels = levels;
        v->num_res_blocks = blocks;
    }
    if (!enc)
        v->in_channels = v->out_channels;
    if (!(comps & ISD_WT_VAE_DEC))
        v->out_channels = v->in_channels;
    if (v->num_levels < 1 || v->num_levels > ISD_WT_MAX_LEVELS || v->num_res_blocks < 1 ||
        v->num_res_blocks > BLOCKS_MAX)
        return isd_eng_fail(in->err, ISD_ENG_EMISSING,
                            "%s: VAE with %d levels x %d blocks (tensors '%s.block.*' missing?)",
                            in->root, v->num_levels, v->num_res_blocks, V "encoder.down.0");
    for (int i = 0; i < v->num_levels; i++) {
        int w;
        if ((rc = vae_block_width(in, lv, i, &w)) < 0)
            return rc;
        if (w % v->ch)
            return isd_eng_fail(in->err, ISD_ENG_ESHAPE,
                                "%s: VAE level %d width %d is not a multiple of ch %d", in->root, i,
                                w, v->ch);
        v->ch_mult[i] = w / v->ch;
    }
    v->gn_eps = 1e-6;
    return 0;
}

/* ---- overrides ---- */

#define OV(field)                                                                                  \
    do {                                                                                           \
        if (ov->field != ISD_WT_AUTO)                                                              \
            cfg->field = ov->field;                                                                \
    } while (0)
#define OVD(field)                                                                                 \
    do {                                                                                           \
        if (ov->field >= 0)                                                                        \
            cfg->field = ov->field;                                                                \
    } while (0)

/* Shape-derived fields: the tensors must then agree. */
static void override_structure(struct isd_wt_config *cfg, const struct isd_wt_config *ov)
{
    OV(unet.in_channels);
    OV(unet.out_channels);
    OV(unet.model_channels);
    OV(unet.num_levels);
    OV(unet.num_res_blocks);
    OV(unet.attn_levels);
    OV(unet.transformer_depth);
    OV(unet.context_dim);
    OV(unet.proj);
    OV(unet.time_embed_dim);
    OVD(unet.gn_eps);
    OVD(unet.st_gn_eps);
    OVD(unet.ln_eps);
    for (int i = 0; i < ISD_WT_MAX_LEVELS; i++) {
        OV(unet.channel_mult[i]);
        OV(vae.ch_mult[i]);
    }
    OV(text.width);
    OV(text.num_layers);
    OV(text.mlp_dim);
    OV(text.vocab_size);
    OV(text.max_positions);
    OVD(text.ln_eps);
    OV(vae.in_channels);
    OV(vae.out_channels);
    OV(vae.ch);
    OV(vae.num_levels);
    OV(vae.num_res_blocks);
    OV(vae.z_channels);
    OV(vae.embed_dim);
    OVD(vae.gn_eps);
}

/* ---- semantics (not visible in shapes) ---- */

static const struct word family_words[] = {{"sd1", ISD_WT_SD1}, {"sd2", ISD_WT_SD2}, {0}};
static const struct word pred_words[] = {{"eps", ISD_WT_PRED_EPS},
                                         {"epsilon", ISD_WT_PRED_EPS},
                                         {"v", ISD_WT_PRED_V},
                                         {"v_prediction", ISD_WT_PRED_V},
                                         {0}};
static const struct word act_words[] = {
    {"quick_gelu", ISD_WT_TEXT_CLIP_L}, {"gelu", ISD_WT_TEXT_OPENCLIP}, {0}};

static int infer_family(struct infer *in, const struct isd_wt_options *opt,
                        const struct isd_wt_hints *h, struct isd_wt_config *cfg)
{
    int rc, comps = opt->components;
    if (opt->override.family != ISD_WT_AUTO) {
        cfg->family = opt->override.family;
        return 0;
    }
    if ((rc = meta_word(in, "sdc.family", family_words, &cfg->family)) != 0)
        return rc < 0 ? rc : 0;
    if ((comps & ISD_WT_TEXT) && h->openclip_names)
        cfg->family = ISD_WT_SD2;
    else if ((comps & ISD_WT_UNET) && cfg->unet.context_dim == 1024)
        cfg->family = ISD_WT_SD2;
    else if ((comps & ISD_WT_UNET) && cfg->unet.context_dim == 768)
        cfg->family = ISD_WT_SD1;
    else if ((comps & ISD_WT_UNET) && cfg->unet.proj == ISD_WT_PROJ_LINEAR)
        cfg->family = ISD_WT_SD2;
    else if ((comps & ISD_WT_TEXT) && cfg->text.width == 1024)
        cfg->family = ISD_WT_SD2;
    else
        cfg->family = ISD_WT_SD1;
    return 0;
}

static int infer_unet_heads(struct infer *in, const struct isd_wt_unet_config *ov, int family,
                            struct isd_wt_unet_config *u)
{
    int rc, v;
    u->num_heads = u->num_head_channels = 0;
    if (ov->num_heads > 0) {
        u->num_heads = ov->num_heads;
    } else if (ov->num_head_channels > 0) {
        u->num_head_channels = ov->num_head_channels;
    } else if ((rc = meta_int(in, "sdc.num_heads", 1, 4096, &v)) != 0) {
        if (rc < 0)
            return rc;
        u->num_heads = v;
    } else if ((rc = meta_int(in, "sdc.num_head_channels", 1, 1 << 16, &v)) != 0) {
        if (rc < 0)
            return rc;
        u->num_head_channels = v;
    } else if (family == ISD_WT_SD2) {
        u->num_head_channels = 64;
    } else {
        u->num_heads = 8;
    }
    return 0;
}

/* The text encoder's MLP activation. */
static int infer_text_kind(struct infer *in, int ov, const struct isd_wt_hints *h, int family,
                           int *kind)
{
    int rc;
    if (ov != ISD_WT_AUTO)
        *kind = ov;
    else if ((rc = meta_word(in, "sdc.text_act", act_words, kind)) != 0)
        return rc < 0 ? rc : 0;
    else if (h->text_kind > 0)
        *kind = h->text_kind;
    else if (h->openclip_names || family == ISD_WT_SD2)
        *kind = ISD_WT_TEXT_OPENCLIP;
    else
        *kind = ISD_WT_TEXT_CLIP_L;
    return 0;
}

/* How many layers run before final_layer_norm. */
static int infer_text_layers_run(struct infer *in, int ov, const struct isd_wt_hints *h,
                                 struct isd_wt_text_config *t)
{
    int rc;
    if (ov != ISD_WT_AUTO)
        t->layers_run = ov;
    else if ((rc = meta_int(in, "sdc.text_layers_run", 1, TEXT_LAYERS_MAX, &t->layers_run)) != 0)
        return rc < 0 ? rc : 0;
    else if (h->layout == ISD_WT_LAYOUT_SINGLE && h->openclip_names)
        t->layers_run = t->num_layers - 1; /* SD2 "penultimate" */
    else if (h->text_layers > 0 && h->text_layers < t->num_layers)
        t->layers_run = h->text_layers; /* config.json declares fewer layers than stored */
    else
        t->layers_run = t->num_layers;
    return 0;
}

static int infer_text_semantics(struct infer *in, const struct isd_wt_text_config *ov,
                                const struct isd_wt_hints *h, int family,
                                struct isd_wt_text_config *t)
{
    int rc;
    if ((rc = infer_text_kind(in, ov->kind, h, family, &t->kind)) < 0 ||
        (rc = infer_text_layers_run(in, ov->layers_run, h, t)) < 0)
        return rc;
    if (ov->heads != ISD_WT_AUTO)
        t->heads = ov->heads;
    else if ((rc = meta_int(in, "sdc.text_heads", 1, 4096, &t->heads)) != 0) {
        if (rc < 0)
            return rc;
    } else if (h->text_heads > 0) {
        t->heads = h->text_heads;
    } else {
        t->heads = t->width % 64 == 0 ? t->width / 64 : 0;
    }
    if (ov->pad_id != ISD_WT_AUTO)
        t->pad_id = ov->pad_id;
    else if ((rc = meta_int(in, "sdc.text_pad", 0, 1 << 24, &t->pad_id)) != 0) {
        if (rc < 0)
            return rc;
    } else {
        t->pad_id = family == ISD_WT_SD2 ? 0 : t->vocab_size - 1; /* SD1 pads with EOS */
    }
    return 0;
}

static int infer_semantics(struct infer *in, const struct isd_wt_options *opt,
                           const struct isd_wt_hints *h, struct isd_wt_config *cfg)
{
    const struct isd_wt_config *ov = &opt->override;
    int rc = infer_family(in, opt, h, cfg);
    if (rc < 0)
        return rc;
    if (ov->prediction != ISD_WT_AUTO)
        cfg->prediction = ov->prediction;
    else if ((rc = meta_word(in, "sdc.prediction", pred_words, &cfg->prediction)) < 0)
        return rc;
    else if (rc == 0)
        cfg->prediction = h->prediction > 0 ? h->prediction : ISD_WT_PRED_UNKNOWN;
    if ((opt->components & ISD_WT_UNET) &&
        (rc = infer_unet_heads(in, &ov->unet, cfg->family, &cfg->unet)) < 0)
        return rc;
    if ((opt->components & ISD_WT_TEXT) &&
        (rc = infer_text_semantics(in, &ov->text, h, cfg->family, &cfg->text)) < 0)
        return rc;
    if (opt->components & (ISD_WT_VAE_ENC | ISD_WT_VAE_DEC)) {
        cfg->vae.scale_factor = 0.18215;
        if (ov->vae.scale_factor >= 0)
            cfg->vae.scale_factor = ov->vae.scale_factor;
        else if ((rc = meta_double(in, "sdc.vae_scale", &cfg->vae.scale_factor)) < 0)
            return rc;
        else if (rc == 0 && h->vae_scale > 0)
            cfg->vae.scale_factor = h->vae_scale;
    }
    return 0;
}

/* ---- validation: every tensor the architecture needs ---- */

struct check {
    const struct isd_wt_model *m;
    struct isd_eng_error *err;
    const char *root;
    int rc;
};

__attribute__((format(printf, 4, 5))) static void expect(struct check *c, int ndim,
                                                         const int64_t *shape, const char *fmt, ...)
{
    if (c->rc)
        return;
    char name[ISD_WT_NAME_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    c->rc = isd_wt_need(c->m, name, ndim, shape, NULL, c->err);
    if (c->rc < 0 && c->err) {
        char msg[ISD_ENG_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", c->err->msg);
        isd_eng_fail(c->err, c->rc, "%s: %s", c->root, msg);
    }
}

#define SHAPE(...)                                                                                 \
    (const int64_t[])                                                                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

static void norm(struct check *c, const char *p, int64_t ch)
{
    expect(c, 1, SHAPE(ch), "%s.weight", p);
    expect(c, 1, SHAPE(ch), "%s.bias", p);
}

static void linear(struct check *c, const char *p, int64_t in, int64_t out, int bias)
{
    expect(c, 2, SHAPE(out, in), "%s.weight", p);
    if (bias)
        expect(c, 1, SHAPE(out), "%s.bias", p);
}

static void conv(struct check *c, const char *p, int64_t in, int64_t out, int64_t k)
{
    expect(c, 4, SHAPE(out, in, k, k), "%s.weight", p);
    expect(c, 1, SHAPE(out), "%s.bias", p);
}

__attribute__((format(printf, 3, 4))) static const char *fmt(char *buf, size_t cap, const char *f,
                                                             ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
    return buf;
}

#define P(...) fmt(p, sizeof p, __VA_ARGS__)

static void unet_res(struct check *c, const char *pre, int64_t in, int64_t out, int64_t temb)
{
    char p[ISD_WT_NAME_MAX];
    norm(c, P("%s.in_layers.0", pre), in);
    conv(c, P("%s.in_layers.2", pre), in, out, 3);
    linear(c, P("%s.emb_layers.1", pre), temb, out, 1);
    norm(c, P("%s.out_layers.0", pre), out);
    conv(c, P("%s.out_layers.3", pre), out, out, 3);
    if (in != out)
        conv(c, P("%s.skip_connection", pre), in, out, 1);
}

static void unet_st(struct check *c, const struct isd_wt_unet_config *u, const char *pre,
                    int64_t ch)
{
    char p[ISD_WT_NAME_MAX];
    int64_t x = u->context_dim;
    norm(c, P("%s.norm", pre), ch);
    for (int io = 0; io < 2; io++) {
        const char *n = io ? "proj_out" : "proj_in";
        if (u->proj == ISD_WT_PROJ_LINEAR)
            linear(c, P("%s.%s", pre, n), ch, ch, 1);
        else
            conv(c, P("%s.%s", pre, n), ch, ch, 1);
    }
    for (int d = 0; d < u->transformer_depth; d++) {
        for (int a = 1; a <= 2; a++) {
            linear(c, P("%s.transformer_blocks.%d.attn%d.to_q", pre, d, a), ch, ch, 0);
            linear(c, P("%s.transformer_blocks.%d.attn%d.to_k", pre, d, a), a == 1 ? ch : x, ch, 0);
            linear(c, P("%s.transformer_blocks.%d.attn%d.to_v", pre, d, a), a == 1 ? ch : x, ch, 0);
            linear(c, P("%s.transformer_blocks.%d.attn%d.to_out.0", pre, d, a), ch, ch, 1);
        }
        for (int n = 1; n <= 3; n++)
            norm(c, P("%s.transformer_blocks.%d.norm%d", pre, d, n), ch);
        linear(c, P("%s.transformer_blocks.%d.ff.net.0.proj", pre, d), ch, 8 * ch, 1);
        linear(c, P("%s.transformer_blocks.%d.ff.net.2", pre, d), 4 * ch, ch, 1);
    }
}

static void check_unet(struct check *c, const struct isd_wt_unet_config *u)
{
    char p[ISD_WT_NAME_MAX];
    int64_t mc = u->model_channels, te = u->time_embed_dim, ch = mc;
    int64_t skips[ISD_WT_MAX_LEVELS * (BLOCKS_MAX + 1) + 1];
    int nskip = 0, k = 1;
    linear(c, U "time_embed.0", mc, te, 1);
    linear(c, U "time_embed.2", te, te, 1);
    conv(c, U "input_blocks.0.0", u->in_channels, mc, 3);
    skips[nskip++] = ch;
    for (int l = 0; l < u->num_levels; l++) {
        for (int r = 0; r < u->num_res_blocks; r++, k++) {
            int64_t out = mc * u->channel_mult[l];
            unet_res(c, P(U "input_blocks.%d.0", k), ch, out, te);
            ch = out;
            if (u->attn_levels >> l & 1)
                unet_st(c, u, P(U "input_blocks.%d.1", k), ch);
            skips[nskip++] = ch;
        }
        if (l + 1 < u->num_levels) {
            conv(c, P(U "input_blocks.%d.0.op", k++), ch, ch, 3);
            skips[nskip++] = ch;
        }
    }
    unet_res(c, U "middle_block.0", ch, ch, te);
    unet_st(c, u, U "middle_block.1", ch);
    unet_res(c, U "middle_block.2", ch, ch, te);
    k = 0;
    for (int l = u->num_levels - 1; l >= 0; l--) {
        for (int r = 0; r <= u->num_res_blocks; r++, k++) {
            int64_t out = mc * u->channel_mult[l];
            unet_res(c, P(U "output_blocks.%d.0", k), ch + skips[--nskip], out, te);
            ch = out;
            int at = 1;
            if (u->attn_levels >> l & 1)
                unet_st(c, u, P(U "output_blocks.%d.%d", k, at++), ch);
            if (l > 0 && r == u->num_res_blocks)
                conv(c, P(U "output_blocks.%d.%d.conv", k, at), ch, ch, 3);
        }
    }
    norm(c, U "out.0", ch);
    conv(c, U "out.2", ch, u->out_channels, 3);
}

static void check_text(struct check *c, const struct isd_wt_text_config *t)
{
    char p[ISD_WT_NAME_MAX];
    int64_t w = t->width, m = t->mlp_dim;
    expect(c, 2, SHAPE(t->vocab_size, w), T "embeddings.token_embedding.weight");
    expect(c, 2, SHAPE(t->max_positions, w), T "embeddings.position_embedding.weight");
    for (int i = 0; i < t->num_layers; i++) {
        static const char *const proj[] = {"q", "k", "v", "out"};
        norm(c, P(T "encoder.layers.%d.layer_norm1", i), w);
        for (int j = 0; j < 4; j++)
            linear(c, P(T "encoder.layers.%d.self_attn.%s_proj", i, proj[j]), w, w, 1);
        norm(c, P(T "encoder.layers.%d.layer_norm2", i), w);
        linear(c, P(T "encoder.layers.%d.mlp.fc1", i), w, m, 1);
        linear(c, P(T "encoder.layers.%d.mlp.fc2", i), m, w, 1);
    }
    norm(c, T "final_layer_norm", w);
}

static void vae_res(struct check *c, const char *pre, int64_t in, int64_t out)
{
    char p[ISD_WT_NAME_MAX];
    norm(c, P("%s.norm1", pre), in);
    conv(c, P("%s.conv1", pre), in, out, 3);
    norm(c, P("%s.norm2", pre), out);
    conv(c, P("%s.conv2", pre), out, out, 3);
    if (in != out)
        conv(c, P("%s.nin_shortcut", pre), in, out, 1);
}

static void vae_mid(struct check *c, const char *coder, int64_t ch)
{
    char p[ISD_WT_NAME_MAX];
    static const char *const qkvo[] = {"q", "k", "v", "proj_out"};
    vae_res(c, P(V "%s.mid.block_1", coder), ch, ch);
    norm(c, P(V "%s.mid.attn_1.norm", coder), ch);
    for (int i = 0; i < 4; i++)
        linear(c, P(V "%s.mid.attn_1.%s", coder, qkvo[i]), ch, ch, 1);
    vae_res(c, P(V "%s.mid.block_2", coder), ch, ch);
}

static void check_vae(struct check *c, const struct isd_wt_vae_config *v, int comps)
{
    char p[ISD_WT_NAME_MAX];
    int64_t ch = v->ch, z = v->z_channels, e = v->embed_dim;
    int last = v->num_levels - 1;
    if (comps & ISD_WT_VAE_ENC) {
        int64_t in = ch;
        conv(c, V "encoder.conv_in", v->in_channels, ch, 3);
        for (int i = 0; i <= last; i++) {
            int64_t out = ch * v->ch_mult[i];
            for (int j = 0; j < v->num_res_blocks; j++, in = out)
                vae_res(c, P(V "encoder.down.%d.block.%d", i, j), in, out);
            if (i < last)
                conv(c, P(V "encoder.down.%d.downsample.conv", i), out, out, 3);
        }
        vae_mid(c, "encoder", in);
        norm(c, V "encoder.norm_out", in);
        conv(c, V "encoder.conv_out", in, 2 * z, 3);
        conv(c, V "quant_conv", 2 * z, 2 * e, 1);
    }
    if (comps & ISD_WT_VAE_DEC) {
        int64_t in = ch * v->ch_mult[last];
        conv(c, V "post_quant_conv", e, z, 1);
        conv(c, V "decoder.conv_in", z, in, 3);
        vae_mid(c, "decoder", in);
        for (int i = last; i >= 0; i--) {
            int64_t out = ch * v->ch_mult[i];
            for (int j = 0; j <= v->num_res_blocks; j++, in = out)
                vae_res(c, P(V "decoder.up.%d.block.%d", i, j), in, out);
            if (i > 0)
                conv(c, P(V "decoder.up.%d.upsample.conv", i), out, out, 3);
        }
        norm(c, V "decoder.norm_out", in);
        conv(c, V "decoder.conv_out", in, v->out_channels, 3);
    }
}

/* Ranges and divisibility the forward pass relies on. */
static int check_unet_numbers(struct infer *in, const struct isd_wt_unet_config *u)
{
    if (u->num_levels < 1 || u->num_levels > ISD_WT_MAX_LEVELS || u->num_res_blocks < 1 ||
        u->num_res_blocks > BLOCKS_MAX || u->model_channels < 1 || u->model_channels > DIM_MAX ||
        u->transformer_depth < 1 || u->transformer_depth > BLOCKS_MAX || u->in_channels < 1 ||
        u->out_channels < 1 || u->context_dim < 1 || u->time_embed_dim < 1 ||
        (u->proj != ISD_WT_PROJ_CONV && u->proj != ISD_WT_PROJ_LINEAR))
        return isd_eng_fail(in->err, ISD_ENG_EINVAL, "%s: UNet configuration out of range",
                            in->root);
    if (u->model_channels % 32)
        return isd_eng_fail(in->err, ISD_ENG_EUNSUPPORTED,
                            "%s: UNet model_channels %d is not a multiple of 32 (GroupNorm)",
                            in->root, u->model_channels);
    for (int l = 0; l < u->num_levels; l++) {
        int mult = u->channel_mult[l], h, d;
        if (mult < 1 || mult > 64)
            return isd_eng_fail(in->err, ISD_ENG_EINVAL, "%s: UNet channel_mult[%d] = %d", in->root,
                                l, mult);
        int ch = u->model_channels * mult;
        /* SpatialTransformers at attention levels, and in the middle block (last width) */
        if (((u->attn_levels >> l & 1) || l == u->num_levels - 1) &&
            isd_wt_unet_heads(u, ch, &h, &d) < 0)
            return isd_eng_fail(in->err, ISD_ENG_EUNSUPPORTED,
                                "%s: UNet width %d does not split into heads (num_heads %d, "
                                "num_head_channels %d)",
                                in->root, ch, u->num_heads, u->num_head_channels);
    }
    return 0;
}

static int check_text_numbers(struct infer *in, const struct isd_wt_text_config *t)
{
    if (t->width < 1 || t->num_layers < 1 || t->num_layers > TEXT_LAYERS_MAX || t->mlp_dim < 1 ||
        t->vocab_size < 1 || t->max_positions < 1 ||
        (t->kind != ISD_WT_TEXT_CLIP_L && t->kind != ISD_WT_TEXT_OPENCLIP))
        return isd_eng_fail(in->err, ISD_ENG_EINVAL, "%s: text encoder configuration out of range",
                            in->root);
    if (t->heads < 1 || t->width % t->heads)
        return isd_eng_fail(in->err, ISD_ENG_EUNSUPPORTED,
                            "%s: text width %d does not split into %d heads (set metadata "
                            "sdc.text_heads)",
                            in->root, t->width, t->heads);
    if (t->layers_run < 1 || t->layers_run > t->num_layers)
        return isd_eng_fail(in->err, ISD_ENG_EMISSING,
                            "%s: the text encoder must run %d layers but %d are stored", in->root,
                            t->layers_run, t->num_layers);
    if (t->pad_id < 0 || t->pad_id >= t->vocab_size)
        return isd_eng_fail(in->err, ISD_ENG_EINVAL, "%s: pad token %d outside the vocabulary",
                            in->root, t->pad_id);
    return 0;
}

static int check_vae_numbers(struct infer *in, const struct isd_wt_vae_config *v)
{
    if (v->ch < 1 || v->ch > DIM_MAX || v->num_levels < 1 || v->num_levels > ISD_WT_MAX_LEVELS ||
        v->num_res_blocks < 1 || v->num_res_blocks > BLOCKS_MAX || v->z_channels < 1 ||
        v->embed_dim < 1 || v->in_channels < 1 || v->out_channels < 1 || !(v->scale_factor > 0))
        return isd_eng_fail(in->err, ISD_ENG_EINVAL, "%s: VAE configuration out of range",
                            in->root);
    for (int l = 0; l < v->num_levels; l++)
        if (v->ch_mult[l] < 1 || v->ch_mult[l] > 64 || v->ch * v->ch_mult[l] % 32)
            return isd_eng_fail(in->err, ISD_ENG_EUNSUPPORTED,
                                "%s: VAE level %d width is not a multiple of 32 (GroupNorm)",
                                in->root, l);
    return 0;
}

static int check_numbers(struct infer *in, const struct isd_wt_config *cfg, int comps)
{
    int rc = 0;
    if (comps & ISD_WT_UNET)
        rc = check_unet_numbers(in, &cfg->unet);
    if (rc == 0 && (comps & ISD_WT_TEXT))
        rc = check_text_numbers(in, &cfg->text);
    if (rc == 0 && (comps & (ISD_WT_VAE_ENC | ISD_WT_VAE_DEC)))
        rc = check_vae_numbers(in, &cfg->vae);
    return rc;
}

int isd_wt_unet_heads(const struct isd_wt_unet_config *u, int channels, int *heads, int *head_dim)
{
    int h = u->num_heads > 0 ? u->num_heads
            : u->num_head_channels > 0 && channels % u->num_head_channels == 0
                ? channels / u->num_head_channels
                : 0;
    if (h < 1 || channels < 1 || channels % h)
        return ISD_ENG_EUNSUPPORTED;
    *heads = h;
    *head_dim = channels / h;
    return 0;
}

int isd_wt_infer(const struct isd_wt_model *m, const struct isd_wt_options *opt,
                 const struct isd_wt_hints *hints, struct isd_wt_config *cfg,
                 struct isd_eng_error *err)
{
    struct infer in = {m, err, isd_wt_model_paths(m)->root};
    int comps = opt->components, rc = 0;
    memset(cfg, 0, sizeof *cfg);
    if ((comps & ISD_WT_UNET) && (rc = infer_unet(&in, &cfg->unet)) < 0)
        return rc;
    if ((comps & ISD_WT_TEXT) && (rc = infer_text(&in, &cfg->text)) < 0)
        return rc;
    if ((comps & (ISD_WT_VAE_ENC | ISD_WT_VAE_DEC)) && (rc = infer_vae(&in, comps, &cfg->vae)) < 0)
        return rc;
    override_structure(cfg, &opt->override);
    if ((rc = infer_semantics(&in, opt, hints, cfg)) < 0 ||
        (rc = check_numbers(&in, cfg, comps)) < 0)
        return rc;
    struct check c = {m, err, in.root, 0};
    if (comps & ISD_WT_UNET)
        check_unet(&c, &cfg->unet);
    if (comps & ISD_WT_TEXT)
        check_text(&c, &cfg->text);
    if (comps & (ISD_WT_VAE_ENC | ISD_WT_VAE_DEC))
        check_vae(&c, &cfg->vae, comps);
    return c.rc;
}
