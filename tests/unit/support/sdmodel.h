/*
 * sdmodel: writes random-weight Stable Diffusion 1.x/2.x models with the REAL architectures
 * (every tensor the LDM / diffusers files have for the UNet, the text encoder and both halves of
 * the VAE), for tests, tools/mksdmodel and the PyTorch reference.
 *
 * Independent of src/engine on purpose (its own names, shapes, f16/bf16 rounding and PRNG), so
 * that the loader is checked against a second implementation; it needs libc and jansson only.
 *
 * Values are deterministic from (seed, canonical name): every layout and dtype of one seed holds
 * the same numbers, up to the dtype's rounding. With `exact`, every value is first rounded to one
 * representable in both BF16 and F16, so all layouts and dtypes convert to identical float32.
 * Init (engine-notes 10.1): weights and embeddings ~N(0, 0.02) (Irwin-Hall of 4 uniforms; position
 * embeddings 0.01), norm scales 1 +- 0.1, biases +- 0.05, nothing zero-initialised.
 *
 * Layouts:
 *  - single: one safetensors file with LDM names (VAE attention as 1x1 convs; SD2 text encoder in
 *    OpenCLIP naming with fused attn.in_proj_* and text_projection; SD1 adds an I64 position_ids),
 *    plus alphas_cumprod (F32), model_ema.decay (F32 scalar), model_ema.num_updates (I64 scalar).
 *  - diffusers: a folder with model_index.json, scheduler/scheduler_config.json,
 *    {unet,text_encoder,vae}/config.json and the three safetensors files (named *.fp16.safetensors
 *    when the dtype is F16). The SD2 text encoder is stored truncated to layers - 1, as diffusers
 *    ships it.
 * Metadata: "format": "pt", "sdc.preset", "sdc.prediction" (eps|v), and where shapes cannot tell:
 * "sdc.num_heads" / "sdc.num_head_channels", "sdc.text_heads".
 *
 * Files are streamed (a 64 KiB buffer per tensor chunk, never a whole model): sd15 in F16 is
 * about 2 GB. Errors: -1 and a message in the caller's buffer.
 *
 *     struct isd_sdm_config cfg;
 *     struct isd_sdm_options o;
 *     char msg[256];
 *     isd_sdm_preset("tiny-sd1", &cfg);
 *     isd_sdm_options_init(&o);
 *     o.layout = ISD_SDM_DIFFUSERS;
 *     if (isd_sdm_write(&cfg, &o, "/tmp/tiny", msg, sizeof msg) < 0) ...
 */
#ifndef ISD_TEST_SDMODEL_H
#define ISD_TEST_SDMODEL_H

#include <stddef.h>
#include <stdint.h>

enum isd_sdm_layout { ISD_SDM_SINGLE = 0, ISD_SDM_DIFFUSERS = 1 };
enum isd_sdm_dtype { ISD_SDM_F32 = 0, ISD_SDM_F16 = 1, ISD_SDM_BF16 = 2 };
enum isd_sdm_part {
    ISD_SDM_UNET = 0,
    ISD_SDM_TEXT,
    ISD_SDM_VAE_ENC,
    ISD_SDM_VAE_DEC,
    ISD_SDM_PARTS
};

#define ISD_SDM_NAME_MAX 160

struct isd_sdm_config {
    const char *name; /* preset name, written as metadata sdc.preset */
    int sd2;          /* 0: SD1 conventions, 1: SD2 */
    /* UNet */
    int in_channels;    /* 4, 9 for inpainting */
    int out_channels;   /* 4 */
    int model_channels; /* 320 */
    int levels;         /* len(channel_mult) <= 4 */
    int channel_mult[4];
    int num_res_blocks;
    unsigned attn_levels; /* bit l: level l has SpatialTransformers */
    int depth;            /* transformer depth */
    int context_dim;
    int linear_proj;       /* proj_in/out Linear (SD2) instead of 1x1 conv */
    int num_heads;         /* > 0: fixed heads */
    int num_head_channels; /* > 0: fixed head width */
    int heads_meta;        /* write sdc.num_heads / sdc.num_head_channels */
    /* text encoder */
    int openclip; /* OpenCLIP single-file naming, GELU, penultimate layer */
    int text_width, text_layers, text_heads, text_mlp, vocab, positions;
    int text_heads_meta; /* write sdc.text_heads */
    /* VAE */
    int vae_ch, vae_levels, vae_mult[4], vae_res_blocks, z_channels, embed_dim;
    int v_prediction; /* prediction type v instead of eps */
};

struct isd_sdm_options {
    int layout; /* enum isd_sdm_layout */
    int dtype;  /* enum isd_sdm_dtype */
    uint64_t seed;
    int exact;               /* values exactly representable in BF16 and F16 */
    int legacy_vae_attn;     /* diffusers VAE attention as query/key/value/proj_attn */
    const char *omit;        /* tests: a file tensor name to leave out */
    const char *reshape;     /* tests: a file tensor name whose shape is changed ... */
    int reshape_dim;         /* ... in this dimension ... */
    int64_t reshape_value;   /* ... to this value */
    int no_metadata;         /* tests: write no sdc.* metadata */
    const char *const *meta; /* tests: more metadata, "key", "value", ..., NULL (every file) */
    int sparse;              /* tests: write the headers only and extend each file to its
                              * full size with a hole (zeros, no disk): the loader checks names
                              * and shapes of full-size models without writing gigabytes */
};

/* One tensor of the architecture. */
struct isd_sdm_tensor {
    char name[ISD_SDM_NAME_MAX]; /* canonical: LDM names; text encoder in HF names under
                                  * cond_stage_model.transformer.text_model. */
    char diff[ISD_SDM_NAME_MAX]; /* name in the diffusers component file */
    char oc[ISD_SDM_NAME_MAX];   /* OpenCLIP single-file name; "" for fused k/v parts */
    int fuse;                    /* 3 on the q of a fused OpenCLIP in_proj (q, k, v follow) */
    int part;                    /* enum isd_sdm_part */
    int ndim;                    /* as stored in the LDM file */
    int64_t shape[4];
    int vae_attn; /* LDM [C,C,1,1], diffusers and canonical [C,C] */
    int layer;    /* text encoder layer index, -1 elsewhere */
    uint64_t numel;
    int init; /* internal: initialisation kind */
};

/* 0, or -1 for an unknown name. Presets: tiny-sd1, tiny-sd2, tiny-inpaint, sd15, sd21. */
int isd_sdm_preset(const char *name, struct isd_sdm_config *cfg);
void isd_sdm_options_init(struct isd_sdm_options *o);

/* Every tensor of the architecture, in file order (malloc'd array, caller frees). 0 or -1. */
int isd_sdm_tensors(const struct isd_sdm_config *cfg, struct isd_sdm_tensor **list, size_t *n);
/* Parameters of one part (sum of numel). */
uint64_t isd_sdm_param_count(const struct isd_sdm_config *cfg, int part);

/* The first n values of canonical tensor `name` as written with (seed, exact), before dtype
 * rounding. 0, or -1 if the name is not in the architecture. */
int isd_sdm_values(const struct isd_sdm_config *cfg, uint64_t seed, int exact, const char *name,
                   float *dst, size_t n);

/* The same for one tensor of isd_sdm_tensors() (no lookup). */
void isd_sdm_tensor_values(const struct isd_sdm_tensor *t, uint64_t seed, int exact, float *dst,
                           size_t n);

/* Writes the model at `path` (a file for single, a folder for diffusers). */
int isd_sdm_write(const struct isd_sdm_config *cfg, const struct isd_sdm_options *o,
                  const char *path, char *msg, size_t cap);

/* Rounds to the nearest value exactly representable in both BF16 and F16. */
float isd_sdm_exact(float x);

#endif
