/*
 * engine/weights internals shared by its .c files (not part of the contract; see weights.h).
 */
#ifndef ISD_ENGINE_WEIGHTS_INT_H
#define ISD_ENGINE_WEIGHTS_INT_H

#include "engine/weights/weights.h"

/* Where a source tensor name comes from. */
enum isd_wt_source {
    ISD_WT_SRC_SINGLE = 0, /* LDM single-file checkpoint */
    ISD_WT_SRC_DIFF_UNET,  /* diffusers unet/ */
    ISD_WT_SRC_DIFF_TEXT,  /* diffusers text_encoder/ (HF CLIPTextModel) */
    ISD_WT_SRC_DIFF_VAE,   /* diffusers vae/ */
};

/* What the diffusers names of a file need to become LDM names (found by a pre-scan). */
struct isd_wt_diff_shape {
    int unet_res_blocks; /* resnets per down block (R): LDM input_blocks stride R + 1 */
    int unet_up_attn;    /* bit i: up_blocks.i has attentions (upsampler at .2, else .1) */
    int vae_up_levels;   /* decoder up_blocks count: up_blocks.i = LDM up.(n-1-i) */
};

/* The canonical name(s) of one source tensor. */
struct isd_wt_canon {
    char name[ISD_WT_NAME_MAX]; /* canonical name; for split3, the "...self_attn." prefix */
    int split3;                 /* OpenCLIP fused in_proj: q/k/v views name + {q,k,v}_proj. */
    const char *suffix;         /* split3: "weight" or "bias" */
};

/* Fills *shape from the names of `st` (diffusers sources; no-op for others). */
void isd_wt_scan_diffusers(int source, const struct isd_wt_st *st, struct isd_wt_diff_shape *shape);
/* 1 when `name` has a canonical name (filled in *c), 0 when it is to be ignored. */
int isd_wt_map_name(int source, const struct isd_wt_diff_shape *shape, const char *name,
                    struct isd_wt_canon *c);

/* Hints from the diffusers JSON files; ISD_WT_AUTO (or < 0) when absent. */
struct isd_wt_hints {
    int openclip_names; /* the text encoder came with OpenCLIP (single-file SD2) names */
    int layout;         /* enum isd_wt_layout */
    int text_kind;      /* text_encoder/config.json hidden_act */
    int text_heads;     /* text_encoder/config.json num_attention_heads */
    int text_layers;    /* text_encoder/config.json num_hidden_layers */
    int prediction;     /* scheduler_config.json prediction_type */
    double vae_scale;   /* vae/config.json scaling_factor */
};

/* Infers the architecture of `m` for the components in `opt`, applies overrides and checks
 * every tensor the result needs. */
int isd_wt_infer(const struct isd_wt_model *m, const struct isd_wt_options *opt,
                 const struct isd_wt_hints *hints, struct isd_wt_config *cfg,
                 struct isd_eng_error *err);

#endif
