/* Name canonicalisation: diffusers -> LDM, OpenCLIP -> HF CLIP (see weights.h). */
#include "engine/weights/weights_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define UNET "model.diffusion_model."
#define VAE  "first_stage_model."
#define TEXT "cond_stage_model.transformer.text_model."

/* s advanced past the literal `p`, or NULL (NULL in, NULL out). */
static const char *lit(const char *s, const char *p)
{
    size_t n = strlen(p);
    return s && strncmp(s, p, n) == 0 ? s + n : NULL;
}

/* s advanced past "<index>." (no leading zeros, at most 5 digits), or NULL. */
static const char *idx(const char *s, int *v)
{
    if (!s)
        return NULL;
    int n = 0, digits = 0;
    while (*s >= '0' && *s <= '9') {
        if (digits == 5 || (digits == 1 && n == 0))
            return NULL;
        n = n * 10 + (*s - '0');
        s++;
        digits++;
    }
    if (digits == 0 || *s != '.')
        return NULL;
    *v = n;
    return s + 1;
}

/* "weight" or "bias" (all that is left of the name), or NULL. */
static const char *param(const char *s)
{
    return s && (strcmp(s, "weight") == 0 || strcmp(s, "bias") == 0) ? s : NULL;
}

/* Writes the canonical name; 0 (ignore) when it does not fit. */
__attribute__((format(printf, 2, 3))) static int put(struct isd_wt_canon *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
    c->split3 = 0;
    c->suffix = NULL;
    return n > 0 && (size_t)n < sizeof c->name;
}

struct rename {
    const char *from, *to;
};

/* For s = "<from>weight|bias" of one table row: sets *to and returns the param, else NULL. */
static const char *renamed(const char *s, const struct rename *map, size_t n, const char **to)
{
    for (size_t i = 0; s && i < n; i++) {
        const char *p = param(lit(s, map[i].from));
        if (p) {
            *to = map[i].to;
            return p;
        }
    }
    return NULL;
}

#define RENAMED(s, map, to) renamed(s, map, sizeof map / sizeof map[0], to)

/* ---- UNet ---- */

static const struct rename unet_res[] = {
    {"norm1.", "in_layers.0."},          {"conv1.", "in_layers.2."},
    {"time_emb_proj.", "emb_layers.1."}, {"norm2.", "out_layers.0."},
    {"conv2.", "out_layers.3."},         {"conv_shortcut.", "skip_connection."},
};

static const struct rename unet_top[] = {
    {"time_embedding.linear_1.", "time_embed.0."},
    {"time_embedding.linear_2.", "time_embed.2."},
    {"conv_in.", "input_blocks.0.0."},
    {"conv_norm_out.", "out.0."},
    {"conv_out.", "out.2."},
};

static int map_diff_unet(const struct isd_wt_diff_shape *sh, const char *s, struct isd_wt_canon *c)
{
    const char *t, *p, *to;
    int i = 0, j = 0, stride = sh->unet_res_blocks + 1;
    if ((p = RENAMED(s, unet_top, &to)))
        return put(c, UNET "%s%s", to, p);
    if ((t = idx(lit(s, "down_blocks."), &i))) {
        if ((p = RENAMED(idx(lit(t, "resnets."), &j), unet_res, &to)))
            return put(c, UNET "input_blocks.%d.0.%s%s", i * stride + j + 1, to, p);
        if ((p = idx(lit(t, "attentions."), &j)))
            return put(c, UNET "input_blocks.%d.1.%s", i * stride + j + 1, p);
        if ((p = param(lit(t, "downsamplers.0.conv."))))
            return put(c, UNET "input_blocks.%d.0.op.%s", (i + 1) * stride, p);
        return 0;
    }
    if ((t = lit(s, "mid_block."))) {
        if ((p = RENAMED(idx(lit(t, "resnets."), &j), unet_res, &to)) && j < 2)
            return put(c, UNET "middle_block.%d.%s%s", j ? 2 : 0, to, p);
        if ((p = lit(t, "attentions.0.")))
            return put(c, UNET "middle_block.1.%s", p);
        return 0;
    }
    if ((t = idx(lit(s, "up_blocks."), &i))) {
        if ((p = RENAMED(idx(lit(t, "resnets."), &j), unet_res, &to)))
            return put(c, UNET "output_blocks.%d.0.%s%s", i * stride + j, to, p);
        if ((p = idx(lit(t, "attentions."), &j)))
            return put(c, UNET "output_blocks.%d.1.%s", i * stride + j, p);
        if ((p = param(lit(t, "upsamplers.0.conv.")))) {
            int at = i < 31 && (sh->unet_up_attn >> i & 1) ? 2 : 1;
            return put(c, UNET "output_blocks.%d.%d.conv.%s", i * stride + stride - 1, at, p);
        }
    }
    return 0;
}

/* ---- VAE ---- */

static const struct rename vae_res[] = {
    {"norm1.", "norm1."},
    {"conv1.", "conv1."},
    {"norm2.", "norm2."},
    {"conv2.", "conv2."},
    {"conv_shortcut.", "nin_shortcut."},
};

static const struct rename vae_attn[] = {
    {"group_norm.", "norm."},    {"to_q.", "q."},  {"to_k.", "k."}, {"to_v.", "v."},
    {"to_out.0.", "proj_out."},  {"query.", "q."}, {"key.", "k."},  {"value.", "v."},
    {"proj_attn.", "proj_out."},
};

static const struct rename vae_top[] = {
    {"quant_conv.", "quant_conv."},
    {"post_quant_conv.", "post_quant_conv."},
};

static const struct rename vae_coder[] = {
    {"conv_in.", "conv_in."},
    {"conv_out.", "conv_out."},
    {"conv_norm_out.", "norm_out."},
};

static int map_diff_vae(const struct isd_wt_diff_shape *sh, const char *s, struct isd_wt_canon *c)
{
    const char *t, *m, *p, *to, *coder;
    int i = 0, j = 0;
    if ((p = RENAMED(s, vae_top, &to)))
        return put(c, VAE "%s%s", to, p);
    if ((t = lit(s, "encoder.")))
        coder = "encoder";
    else if ((t = lit(s, "decoder.")))
        coder = "decoder";
    else
        return 0;
    if ((p = RENAMED(t, vae_coder, &to)))
        return put(c, VAE "%s.%s%s", coder, to, p);
    if ((m = lit(t, "mid_block."))) {
        if ((p = RENAMED(idx(lit(m, "resnets."), &j), vae_res, &to)) && j < 2)
            return put(c, VAE "%s.mid.block_%d.%s%s", coder, j + 1, to, p);
        if ((p = RENAMED(lit(m, "attentions.0."), vae_attn, &to)))
            return put(c, VAE "%s.mid.attn_1.%s%s", coder, to, p);
        return 0;
    }
    if (coder[0] == 'e' && (m = idx(lit(t, "down_blocks."), &i))) {
        if ((p = RENAMED(idx(lit(m, "resnets."), &j), vae_res, &to)))
            return put(c, VAE "encoder.down.%d.block.%d.%s%s", i, j, to, p);
        if ((p = param(lit(m, "downsamplers.0.conv."))))
            return put(c, VAE "encoder.down.%d.downsample.conv.%s", i, p);
        return 0;
    }
    if (coder[0] == 'd' && (m = idx(lit(t, "up_blocks."), &i))) {
        int level = sh->vae_up_levels - 1 - i;
        if (level < 0)
            return 0;
        if ((p = RENAMED(idx(lit(m, "resnets."), &j), vae_res, &to)))
            return put(c, VAE "decoder.up.%d.block.%d.%s%s", level, j, to, p);
        if ((p = param(lit(m, "upsamplers.0.conv."))))
            return put(c, VAE "decoder.up.%d.upsample.conv.%s", level, p);
    }
    return 0;
}

/* ---- text encoder ---- */

/* The HF CLIPTextModel parts we run ("text_model." already consumed). */
static int map_hf_text(const char *s, struct isd_wt_canon *c)
{
    if (lit(s, "embeddings.") || lit(s, "encoder.") || lit(s, "final_layer_norm."))
        return put(c, TEXT "%s", s);
    return 0;
}

static const struct rename openclip_layer[] = {
    {"ln_1.", "layer_norm1."},
    {"ln_2.", "layer_norm2."},
    {"attn.out_proj.", "self_attn.out_proj."},
    {"mlp.c_fc.", "mlp.fc1."},
    {"mlp.c_proj.", "mlp.fc2."},
};

static int map_openclip(const char *s, struct isd_wt_canon *c)
{
    const char *t, *p, *to;
    int n = 0;
    if (strcmp(s, "token_embedding.weight") == 0)
        return put(c, TEXT "embeddings.token_embedding.weight");
    if (strcmp(s, "positional_embedding") == 0)
        return put(c, TEXT "embeddings.position_embedding.weight");
    if ((p = param(lit(s, "ln_final."))))
        return put(c, TEXT "final_layer_norm.%s", p);
    if (!(t = idx(lit(s, "transformer.resblocks."), &n)))
        return 0; /* text_projection, logit_scale, visual.*: not used */
    if ((p = RENAMED(t, openclip_layer, &to)))
        return put(c, TEXT "encoder.layers.%d.%s%s", n, to, p);
    const char *suffix = strcmp(t, "attn.in_proj_weight") == 0 ? "weight"
                         : strcmp(t, "attn.in_proj_bias") == 0 ? "bias"
                                                               : NULL;
    if (!suffix || !put(c, TEXT "encoder.layers.%d.self_attn.", n))
        return 0;
    c->split3 = 1;
    c->suffix = suffix;
    return 1;
}

static int map_single(const char *s, struct isd_wt_canon *c)
{
    const char *t;
    if (lit(s, UNET) || lit(s, VAE))
        return put(c, "%s", s);
    if ((t = lit(s, "cond_stage_model.transformer."))) {
        const char *u = lit(t, "text_model."); /* older transformers had no text_model level */
        return map_hf_text(u ? u : t, c);
    }
    if ((t = lit(s, "cond_stage_model.model.")))
        return map_openclip(t, c);
    if (strcmp(s, "alphas_cumprod") == 0)
        return put(c, "alphas_cumprod");
    return 0; /* model_ema.*, betas, alphas_cumprod_prev, ... */
}

int isd_wt_map_name(int source, const struct isd_wt_diff_shape *shape, const char *name,
                    struct isd_wt_canon *c)
{
    const char *t;
    switch (source) {
    case ISD_WT_SRC_SINGLE:
        return map_single(name, c);
    case ISD_WT_SRC_DIFF_UNET:
        return map_diff_unet(shape, name, c);
    case ISD_WT_SRC_DIFF_VAE:
        return map_diff_vae(shape, name, c);
    case ISD_WT_SRC_DIFF_TEXT:
        return (t = lit(name, "text_model.")) && map_hf_text(t, c);
    default:
        return 0;
    }
}

void isd_wt_scan_diffusers(int source, const struct isd_wt_st *st, struct isd_wt_diff_shape *sh)
{
    for (size_t k = 0; k < isd_wt_st_count(st); k++) {
        const char *s = isd_wt_st_at(st, k)->name, *t;
        int i = 0, j = 0;
        if (source == ISD_WT_SRC_DIFF_UNET) {
            if ((t = idx(lit(s, "down_blocks."), &i)) && idx(lit(t, "resnets."), &j) &&
                j + 1 > sh->unet_res_blocks)
                sh->unet_res_blocks = j + 1;
            if ((t = idx(lit(s, "up_blocks."), &i)) && i < 31 && lit(t, "attentions."))
                sh->unet_up_attn |= 1 << i;
        } else if (source == ISD_WT_SRC_DIFF_VAE) {
            if (idx(lit(s, "decoder.up_blocks."), &i) && i + 1 > sh->vae_up_levels)
                sh->vae_up_levels = i + 1;
        }
    }
}
