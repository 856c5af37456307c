/*
 * engine/weights: Stable Diffusion 1.x/2.x checkpoints, read in place through a read-only mmap.
 *
 * Two layers:
 *  - isd_wt_st_*: one safetensors file. The header is validated strictly before anything is
 *    used: 8-byte little-endian length N <= 100 MB with 8 + N <= file size; a UTF-8 JSON object
 *    without duplicate keys; optional "__metadata__" (string -> string); every tensor
 *    {"dtype","shape","data_offsets"} and nothing else, a known dtype, at most 8 non-negative
 *    dimensions whose product (and byte size) does not overflow, end - begin == numel * dtype
 *    size, and the tensors tiling the data buffer exactly: no overlap, no hole, no trailing byte
 *    (as the reference implementation requires). Dtypes other than F32/F16/BF16 are accepted and
 *    flagged `usable = 0` (e.g. int64 position_ids).
 *  - isd_wt_model_*: a whole model, every tensor reachable under ONE canonical name (below), and
 *    the architecture (struct isd_wt_config) inferred from names, shapes and metadata, then
 *    checked against the full list of tensors that architecture needs.
 *
 * Layouts accepted by isd_wt_model_open(path):
 *  - a single-file LDM checkpoint (path is a regular file): model.diffusion_model.*,
 *    first_stage_model.*, and either cond_stage_model.transformer.[text_model.]* (SD1, HF CLIP
 *    names) or cond_stage_model.model.* (SD2, OpenCLIP names with fused attn.in_proj_*);
 *  - a diffusers folder (path is a directory): unet/diffusion_pytorch_model[.fp16].safetensors,
 *    text_encoder/model[.fp16].safetensors, vae/diffusion_pytorch_model[.fp16].safetensors;
 *    model_index.json, {text_encoder,vae}/config.json and scheduler/scheduler_config.json are
 *    read when present; tokenizer/{vocab.json,merges.txt} are located (paths exposed).
 * Tensors of no interest (model_ema.*, betas, text_projection, logit_scale, unmapped diffusers
 * names...) are ignored and counted; "alphas_cumprod" is kept when present (canonical name
 * "alphas_cumprod"); single-file names under the UNet/VAE/HF-CLIP prefixes are indexed as they
 * are, extra ones included (e.g. the I64 position_ids, flagged by its dtype).
 *
 * Canonical names:
 *  - UNet: the LDM names, "model.diffusion_model.input_blocks.1.0.in_layers.0.weight"...
 *    (diffusers names mapped with the table of engine-notes section 4.1, for any
 *    num_res_blocks R: down_blocks.i.resnets.j -> input_blocks.{i(R+1)+j+1}.0, ...).
 *  - VAE: the LDM names, "first_stage_model.decoder.up.3.block.0.conv1.weight"... Attention
 *    q/k/v/proj_out weights are always 2-D [C,C] views (LDM stores [C,C,1,1]; same bytes).
 *    diffusers decoder.up_blocks.i is LDM decoder.up.(n-1-i); both the to_q/to_k/to_v/to_out.0
 *    and the older query/key/value/proj_attn attention names are understood.
 *  - Text encoder: HF CLIPTextModel names under "cond_stage_model.transformer.text_model."
 *    for both CLIP-L and OpenCLIP-H: embeddings.{token_embedding,position_embedding}.weight,
 *    encoder.layers.N.{layer_norm1,layer_norm2,self_attn.{q,k,v,out}_proj,mlp.fc1,mlp.fc2}.
 *    {weight,bias}, final_layer_norm.{weight,bias}. OpenCLIP maps token_embedding.weight,
 *    positional_embedding, ln_final, transformer.resblocks.N.{ln_1,ln_2,attn.out_proj,mlp.c_fc,
 *    mlp.c_proj} to those; the fused attn.in_proj_weight [3C,C] / in_proj_bias [3C] becomes
 *    three views q,k,v (rows 0..C-1, C..2C-1, 2C..3C-1: contiguous, no copy).
 *
 * Architecture (struct isd_wt_config) precedence, highest first: the caller's override
 * (options), "__metadata__" keys of the files ("sdc.*", table below), the diffusers config files,
 * then rules: SD1 = 8 heads, SD2 = 64-channel heads; text heads = width / 64; the text encoder
 * runs every stored layer (SD1, and diffusers SD2 files, which are stored already truncated)
 * except for an OpenCLIP single file, whose last layer is skipped (SD2 "penultimate"); the final
 * LayerNorm is always applied. Metadata keys: sdc.family (sd1|sd2), sdc.prediction
 * (eps|epsilon|v|v_prediction), sdc.num_heads, sdc.num_head_channels, sdc.text_heads,
 * sdc.text_act (quick_gelu|gelu), sdc.text_layers_run, sdc.text_pad, sdc.vae_scale.
 *
 * Ownership: isd_wt_st_open/isd_wt_model_open return heap objects freed by the matching _free
 * (NULL is a no-op). Views, names, paths and configs point into the object and stay valid until
 * it is freed. isd_wt_st_parse and isd_wt_model_open_mem do NOT copy the bytes they are given:
 * they must outlive the object. Tensor data is never copied: it may be unaligned, so read it
 * with isd_wt_view_to_f32() (or memcpy).
 *
 * Errors: 0 or a negative ISD_ENG_E* code, with a message naming the file and tensor:
 * EIO (open/mmap), EFORMAT (malformed file or JSON), ENOMEM, EMISSING (required tensor or file
 * absent), ESHAPE (a tensor with the wrong shape or an unusable dtype), EUNSUPPORTED (valid file,
 * architecture we do not run), EINVAL (bad argument or override).
 *
 * Limits: header <= 100 MB; <= 8 dimensions per tensor; JSON config files <= 1 MB; canonical
 * names < ISD_WT_NAME_MAX bytes (longer names are ignored as unknown).
 *
 * Threading: objects are immutable after open; any number of threads may read them.
 *
 * Usage:
 *     struct isd_wt_model *m;
 *     struct isd_eng_error err = {0};
 *     if (isd_wt_model_open("v1-5.safetensors", NULL, &m, &err) < 0)
 *         fprintf(stderr, "%s\n", err.msg);
 *     const struct isd_wt_config *cfg = isd_wt_model_config(m);
 *     struct isd_wt_view v;
 *     if (isd_wt_get(m, "model.diffusion_model.out.2.weight", &v) == 0)
 *         isd_wt_view_to_f32(&v, buf, cap);       // buf holds v.numel floats
 *     isd_wt_model_free(m);
 */
#ifndef ISD_ENGINE_WEIGHTS_H
#define ISD_ENGINE_WEIGHTS_H

#include "engine/core/core.h"

#include <stddef.h>
#include <stdint.h>

#define ISD_WT_MAX_DIMS      8
#define ISD_WT_HEADER_MAX    100000000u /* bytes of JSON header, as the reference */
#define ISD_WT_NAME_MAX      256
#define ISD_WT_MAX_LEVELS    8
#define ISD_WT_CONFIG_MAX    (1u << 20) /* bytes of a diffusers JSON config file */
#define ISD_WT_SCHED_STR_MAX 32

/* ---- one safetensors file ---- */

struct isd_wt_st_tensor {
    const char *name;               /* as in the file, NUL-terminated */
    int dtype;                      /* enum isd_eng_dtype */
    int ndim;                       /* 0 (scalar) .. ISD_WT_MAX_DIMS */
    int64_t shape[ISD_WT_MAX_DIMS]; /* shape[ndim..] are 1 */
    uint64_t numel;                 /* product of the shape (1 for a scalar) */
    const void *data;               /* into the file bytes; unaligned */
    size_t nbytes;                  /* numel * dtype size */
    size_t offset;                  /* begin offset inside the data buffer */
    int usable;                     /* dtype is F32, F16 or BF16 */
};

struct isd_wt_st;

/* Maps `path` read-only and validates it. */
int isd_wt_st_open(const char *path, struct isd_wt_st **out, struct isd_eng_error *err);
/* Validates `len` bytes at `buf` (not copied: they must outlive the object); `label` names the
 * bytes in messages (copied; may be NULL). */
int isd_wt_st_parse(const void *buf, size_t len, const char *label, struct isd_wt_st **out,
                    struct isd_eng_error *err);
void isd_wt_st_free(struct isd_wt_st *st);

const char *isd_wt_st_label(const struct isd_wt_st *st);
/* Tensors, sorted by name. */
size_t isd_wt_st_count(const struct isd_wt_st *st);
const struct isd_wt_st_tensor *isd_wt_st_at(const struct isd_wt_st *st, size_t i);
/* Binary search; NULL when absent. */
const struct isd_wt_st_tensor *isd_wt_st_find(const struct isd_wt_st *st, const char *name);
/* "__metadata__": the value of `key`, or NULL. */
const char *isd_wt_st_meta(const struct isd_wt_st *st, const char *key);
size_t isd_wt_st_meta_count(const struct isd_wt_st *st);
/* i-th metadata pair (sorted by key); returns the key and sets *value. */
const char *isd_wt_st_meta_at(const struct isd_wt_st *st, size_t i, const char **value);

/* ---- architecture ---- */

enum isd_wt_family { ISD_WT_FAMILY_UNKNOWN = 0, ISD_WT_SD1 = 1, ISD_WT_SD2 = 2 };
enum isd_wt_prediction { ISD_WT_PRED_UNKNOWN = 0, ISD_WT_PRED_EPS = 1, ISD_WT_PRED_V = 2 };
enum isd_wt_text_kind {
    ISD_WT_TEXT_UNKNOWN = 0,
    ISD_WT_TEXT_CLIP_L = 1,  /* quick_gelu MLP (OpenAI CLIP) */
    ISD_WT_TEXT_OPENCLIP = 2 /* exact (erf) GELU MLP */
};
enum isd_wt_proj { ISD_WT_PROJ_UNKNOWN = 0, ISD_WT_PROJ_CONV = 1, ISD_WT_PROJ_LINEAR = 2 };

/* Every field is an int/double so that ISD_WT_AUTO can mark "not overridden" (see options). */
struct isd_wt_unet_config {
    int in_channels;                     /* 4, or 9 for inpainting (input_blocks.0.0) */
    int out_channels;                    /* 4 (out.2) */
    int model_channels;                  /* 320 */
    int num_levels;                      /* len(channel_mult) */
    int channel_mult[ISD_WT_MAX_LEVELS]; /* ResBlock width / model_channels per level */
    int num_res_blocks;                  /* ResBlocks per input level (output levels: +1) */
    int attn_levels;                     /* bit l set: level l has SpatialTransformers */
    int transformer_depth;               /* BasicTransformerBlocks per SpatialTransformer */
    int context_dim;                     /* attn2.to_k input width: 768 / 1024 */
    int proj;                            /* enum isd_wt_proj: proj_in/proj_out kind */
    int num_heads;         /* > 0: fixed head count (SD1: 8); 0 when num_head_channels rules */
    int num_head_channels; /* > 0: fixed head width (SD2: 64); 0 when num_heads rules */
    int time_embed_dim;    /* 4 * model_channels */
    double gn_eps;         /* ResBlock / out.0 GroupNorm(32): 1e-5 */
    double st_gn_eps;      /* SpatialTransformer GroupNorm: 1e-6 */
    double ln_eps;         /* transformer LayerNorms: 1e-5 */
};

struct isd_wt_text_config {
    int kind;          /* enum isd_wt_text_kind (decides the MLP activation) */
    int width;         /* 768 / 1024 */
    int num_layers;    /* layers stored in the file */
    int layers_run;    /* layers to run before final_layer_norm (SD2 single file: stored - 1) */
    int heads;         /* width / 64 unless metadata says otherwise */
    int mlp_dim;       /* fc1 output width */
    int vocab_size;    /* 49408 */
    int max_positions; /* 77 */
    int pad_id;        /* pad token: SD1 49407 (EOS), SD2 0 */
    double ln_eps;     /* 1e-5 */
};

struct isd_wt_vae_config {
    int in_channels;                /* 3 (image channels, encoder.conv_in) */
    int out_channels;               /* 3 (decoder.conv_out) */
    int ch;                         /* 128 */
    int num_levels;                 /* len(ch_mult) */
    int ch_mult[ISD_WT_MAX_LEVELS]; /* 1,2,4,4 */
    int num_res_blocks;             /* encoder blocks per level (decoder: +1) */
    int z_channels;                 /* 4 (encoder.conv_out gives 2 * z_channels: double_z) */
    int embed_dim;                  /* 4 (quant_conv: 2*z -> 2*embed_dim) */
    double scale_factor;            /* 0.18215 */
    double gn_eps;                  /* 1e-6 */
};

struct isd_wt_config {
    int family;     /* enum isd_wt_family */
    int prediction; /* enum isd_wt_prediction */
    struct isd_wt_unet_config unet;
    struct isd_wt_text_config text;
    struct isd_wt_vae_config vae;
};

/* Heads and head width of a SpatialTransformer with `channels` channels under `u`'s rule.
 * Returns 0, or ISD_ENG_EUNSUPPORTED when channels do not split evenly. */
int isd_wt_unet_heads(const struct isd_wt_unet_config *u, int channels, int *heads, int *head_dim);

/* diffusers scheduler/scheduler_config.json (defaults: the LDM schedule, present = 0). */
struct isd_wt_scheduler {
    int present;                                 /* the file was found and parsed */
    char prediction_type[ISD_WT_SCHED_STR_MAX];  /* "epsilon", "v_prediction"... or "" */
    double beta_start;                           /* 0.00085 */
    double beta_end;                             /* 0.012 */
    char beta_schedule[ISD_WT_SCHED_STR_MAX];    /* "scaled_linear" */
    int num_train_timesteps;                     /* 1000 */
    char timestep_spacing[ISD_WT_SCHED_STR_MAX]; /* "leading", "trailing"... or "" */
    int steps_offset;                            /* 1 */
};

/* Where the parts of a model live; NULL when absent. */
struct isd_wt_paths {
    const char *root;             /* the path given to isd_wt_model_open */
    const char *unet;             /* safetensors file holding the UNet (= root for one file) */
    const char *text_encoder;     /* ... the text encoder */
    const char *vae;              /* ... the VAE */
    const char *model_index;      /* diffusers model_index.json */
    const char *scheduler_config; /* diffusers scheduler/scheduler_config.json */
    const char *tokenizer_dir;    /* diffusers tokenizer/ */
    const char *vocab;            /* tokenizer/vocab.json */
    const char *merges;           /* tokenizer/merges.txt */
};

/* ---- a model ---- */

enum isd_wt_component {
    ISD_WT_UNET = 1,
    ISD_WT_TEXT = 2,
    ISD_WT_VAE_ENC = 4,
    ISD_WT_VAE_DEC = 8,
    ISD_WT_ALL = 15
};

enum isd_wt_layout { ISD_WT_LAYOUT_SINGLE = 1, ISD_WT_LAYOUT_DIFFUSERS = 2 };

#define ISD_WT_AUTO (-1) /* an override field left to inference */

struct isd_wt_options {
    int components;  /* ISD_WT_* mask: parts to load, infer and validate (others not opened) */
    int prefer_fp16; /* diffusers: take *.fp16.safetensors even when the plain file exists */
    /* Fields != ISD_WT_AUTO (doubles: >= 0) replace what inference finds; shape-derived fields
     * then still have to match the tensors. Setting num_heads > 0 clears num_head_channels and
     * the reverse. */
    struct isd_wt_config override;
};

/* All components, no override. A NULL options pointer means the same. */
void isd_wt_options_init(struct isd_wt_options *o);

struct isd_wt_view {
    const char *name; /* canonical name (owned by the model) */
    int dtype;        /* enum isd_eng_dtype */
    int ndim;         /* 0..4 */
    int64_t shape[4]; /* shape[ndim..] are 1 */
    size_t numel;
    const void *data; /* into the mmap; unaligned */
    size_t nbytes;
};

struct isd_wt_model;

int isd_wt_model_open(const char *path, const struct isd_wt_options *opt, struct isd_wt_model **out,
                      struct isd_eng_error *err);
/* A single-file checkpoint held in memory (not copied: `buf` must outlive the model). */
int isd_wt_model_open_mem(const void *buf, size_t len, const struct isd_wt_options *opt,
                          struct isd_wt_model **out, struct isd_eng_error *err);
void isd_wt_model_free(struct isd_wt_model *m);

const struct isd_wt_config *isd_wt_model_config(const struct isd_wt_model *m);
int isd_wt_model_layout(const struct isd_wt_model *m); /* enum isd_wt_layout */
const struct isd_wt_paths *isd_wt_model_paths(const struct isd_wt_model *m);
const struct isd_wt_scheduler *isd_wt_model_scheduler(const struct isd_wt_model *m);
/* Metadata value of `key` from any of the model's files (UNet, text encoder, VAE first). */
const char *isd_wt_model_meta(const struct isd_wt_model *m, const char *key);

/* Canonical tensors, sorted by name (includes ignored-dtype ones such as position_ids). */
size_t isd_wt_model_count(const struct isd_wt_model *m);
const struct isd_wt_view *isd_wt_model_at(const struct isd_wt_model *m, size_t i);
/* Source tensors that mapped to no canonical name (model_ema.*, text_projection...). */
size_t isd_wt_model_ignored(const struct isd_wt_model *m);

/* Binary search by canonical name. 0, or ISD_ENG_EMISSING (view untouched). */
int isd_wt_get(const struct isd_wt_model *m, const char *name, struct isd_wt_view *view);
/* isd_wt_get plus checks, with a message: EMISSING, or ESHAPE when the dtype is not
 * F32/F16/BF16 or the shape differs from shape[0..ndim-1]. */
int isd_wt_need(const struct isd_wt_model *m, const char *name, int ndim, const int64_t *shape,
                struct isd_wt_view *view, struct isd_eng_error *err);

/* ---- conversion ---- */

/* Converts the whole view (F32, F16, BF16 or F64) to float32: dst must hold v->numel floats
 * (cap). EINVAL when it does not, EUNSUPPORTED for other dtypes. Exact for F16/BF16. */
int isd_wt_view_to_f32(const struct isd_wt_view *v, float *dst, size_t cap);
/* Elements [first, first + n) of the view, same rules. */
int isd_wt_view_range_to_f32(const struct isd_wt_view *v, size_t first, size_t n, float *dst);
/* n F16 values (unaligned source) to float32: F16C when the CPU has it, else the exact scalar
 * conversion of core.h (identical results; NaN payloads are quietened by F16C). */
void isd_wt_f16_to_f32(const void *src, float *dst, size_t n);
void isd_wt_bf16_to_f32(const void *src, float *dst, size_t n);
/* 1 when isd_wt_f16_to_f32 uses F16C instructions. */
int isd_wt_have_f16c(void);

#endif
