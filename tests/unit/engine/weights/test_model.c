/*
 * Model layouts, canonical names and configuration inference, on random-weight models written
 * by tests/unit/support/sdmodel (an independent implementation of the architectures).
 */
#include "support/test.h"

#include "engine/weights/weights.h"
#include "support/sdmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmp;
static const char *const presets[] = {"tiny-sd1", "tiny-sd2", "tiny-inpaint"};
static const char *const dtype_names[] = {"f32", "f16", "bf16"};
enum { SEED = 1234 };

/* Writes a model and returns its path (static buffer, overwritten by the next call). */
static const char *write_model(const char *preset, const struct isd_sdm_options *o, const char *tag)
{
    static char path[4096];
    struct isd_sdm_config cfg;
    char msg[512];
    assert_int_equal(isd_sdm_preset(preset, &cfg), 0);
    snprintf(path, sizeof path, "%s/%s-%s-%s-%s%s", tmp, preset,
             o->layout == ISD_SDM_DIFFUSERS ? "diff" : "single", dtype_names[o->dtype],
             tag ? tag : "m", o->layout == ISD_SDM_DIFFUSERS ? "" : ".safetensors");
    if (isd_sdm_write(&cfg, o, path, msg, sizeof msg) < 0)
        fail_msg("write %s: %s", path, msg);
    return path;
}

static void opts(struct isd_sdm_options *o, int layout, int dtype)
{
    isd_sdm_options_init(o);
    o->layout = layout;
    o->dtype = dtype;
    o->seed = SEED;
    o->exact = 1;
}

static struct isd_wt_model *open_ok(const char *path, const struct isd_wt_options *wo)
{
    struct isd_wt_model *m = NULL;
    struct isd_eng_error err = {0};
    if (isd_wt_model_open(path, wo, &m, &err) < 0)
        fail_msg("open %s: %s", path, err.msg);
    return m;
}

/* Opens and expects `code`, with `needle` in the message; returns 1 when it matched. */
static int open_fails(const char *path, const struct isd_wt_options *wo, int code,
                      const char *needle)
{
    struct isd_wt_model *m = NULL;
    struct isd_eng_error err = {0};
    int rc = isd_wt_model_open(path, wo, &m, &err);
    isd_wt_model_free(m);
    if (rc != code || (needle && !strstr(err.msg, needle))) {
        print_error("open %s: rc %d (want %d), \"%s\" (want \"%s\")\n", path, rc, code, err.msg,
                    needle ? needle : "");
        return 0;
    }
    assert_null(rc == 0 ? NULL : m);
    return 1;
}

/* ---- configuration of every tiny preset, layout and dtype ---- */

static void check_config(const char *preset, int layout, const struct isd_wt_model *m)
{
    const struct isd_wt_config *c = isd_wt_model_config(m);
    int sd2 = strcmp(preset, "tiny-sd2") == 0;
    assert_int_equal(c->family, sd2 ? ISD_WT_SD2 : ISD_WT_SD1);
    assert_int_equal(c->prediction, sd2 ? ISD_WT_PRED_V : ISD_WT_PRED_EPS);
    const struct isd_wt_unet_config *u = &c->unet;
    assert_int_equal(u->in_channels, strcmp(preset, "tiny-inpaint") == 0 ? 9 : 4);
    assert_int_equal(u->out_channels, 4);
    assert_int_equal(u->model_channels, 32);
    assert_int_equal(u->num_levels, 2);
    assert_int_equal(u->channel_mult[0], 1);
    assert_int_equal(u->channel_mult[1], 2);
    assert_int_equal(u->num_res_blocks, 1);
    assert_int_equal(u->attn_levels, 3);
    assert_int_equal(u->transformer_depth, 1);
    assert_int_equal(u->context_dim, 32);
    assert_int_equal(u->proj, sd2 ? ISD_WT_PROJ_LINEAR : ISD_WT_PROJ_CONV);
    assert_int_equal(u->num_heads, sd2 ? 0 : 8);
    assert_int_equal(u->num_head_channels, sd2 ? 16 : 0);
    assert_int_equal(u->time_embed_dim, 128);
    assert_true(u->gn_eps == 1e-5 && u->st_gn_eps == 1e-6 && u->ln_eps == 1e-5);
    int h, d;
    assert_int_equal(isd_wt_unet_heads(u, 32, &h, &d), 0);
    assert_int_equal(h, sd2 ? 2 : 8);
    assert_int_equal(d, sd2 ? 16 : 4);
    assert_int_equal(isd_wt_unet_heads(u, 64, &h, &d), 0);
    assert_int_equal(h, sd2 ? 4 : 8);
    const struct isd_wt_text_config *t = &c->text;
    assert_int_equal(t->kind, sd2 ? ISD_WT_TEXT_OPENCLIP : ISD_WT_TEXT_CLIP_L);
    assert_int_equal(t->width, 32);
    /* SD2: 3 layers in the single file (penultimate rule), 2 stored by diffusers */
    assert_int_equal(t->num_layers, sd2 ? (layout == ISD_SDM_SINGLE ? 3 : 2) : 2);
    assert_int_equal(t->layers_run, 2);
    assert_int_equal(t->heads, 4);
    assert_int_equal(t->mlp_dim, 64);
    assert_int_equal(t->vocab_size, 49408);
    assert_int_equal(t->max_positions, 77);
    assert_int_equal(t->pad_id, sd2 ? 0 : 49407);
    assert_true(t->ln_eps == 1e-5);
    const struct isd_wt_vae_config *v = &c->vae;
    assert_int_equal(v->in_channels, 3);
    assert_int_equal(v->out_channels, 3);
    assert_int_equal(v->ch, 32);
    assert_int_equal(v->num_levels, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(v->ch_mult[i], 1);
    assert_int_equal(v->num_res_blocks, 1);
    assert_int_equal(v->z_channels, 4);
    assert_int_equal(v->embed_dim, 4);
    assert_true(v->scale_factor == 0.18215);
    assert_true(v->gn_eps == 1e-6);
}

/* Every canonical tensor of the architecture: shape, and values equal to the writer's
 * (exact mode: identical float32 whatever the layout and dtype). Returns tensors checked. */
static size_t check_values(const char *preset, int layout, const struct isd_wt_model *m)
{
    struct isd_sdm_config cfg;
    struct isd_sdm_tensor *list;
    size_t n, checked = 0, skipped = 0;
    assert_int_equal(isd_sdm_preset(preset, &cfg), 0);
    assert_int_equal(isd_sdm_tensors(&cfg, &list, &n), 0);
    float *want = NULL, *got = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        const struct isd_sdm_tensor *t = &list[i];
        struct isd_wt_view v;
        if (layout == ISD_SDM_DIFFUSERS && cfg.openclip && t->layer == cfg.text_layers - 1) {
            assert_int_equal(isd_wt_get(m, t->name, &v), ISD_ENG_EMISSING); /* truncated */
            skipped++;
            continue;
        }
        if (isd_wt_get(m, t->name, &v) < 0)
            fail_msg("%s: canonical tensor %s missing", preset, t->name);
        int ndim = t->vae_attn ? 2 : t->ndim;
        assert_int_equal(v.ndim, ndim);
        for (int d = 0; d < ndim; d++)
            assert_int_equal(v.shape[d], t->shape[d]);
        assert_int_equal(v.numel, t->numel);
        if (t->numel > cap) {
            cap = t->numel;
            want = realloc(want, cap * sizeof *want);
            got = realloc(got, cap * sizeof *got);
        }
        isd_sdm_tensor_values(t, SEED, 1, want, t->numel);
        assert_int_equal(isd_wt_view_to_f32(&v, got, cap), 0);
        if (memcmp(want, got, t->numel * sizeof *got) != 0)
            fail_msg("%s: values of %s differ (dtype %s)", preset, t->name,
                     isd_eng_dtype_name(v.dtype));
        checked++;
    }
    if (layout == ISD_SDM_DIFFUSERS && cfg.openclip)
        assert_int_equal(skipped, 16); /* one whole layer */
    free(want);
    free(got);
    free(list);
    return checked;
}

static void tiny_models_every_layout_and_dtype(void **state)
{
    (void)state;
    for (size_t p = 0; p < 3; p++) {
        size_t first_count = 0;
        for (int layout = 0; layout < 2; layout++)
            for (int dt = 0; dt < 3; dt++) {
                struct isd_sdm_options o;
                opts(&o, layout, dt);
                const char *path = write_model(presets[p], &o, "exact");
                struct isd_wt_model *m = open_ok(path, NULL);
                assert_int_equal(isd_wt_model_layout(m),
                                 layout ? ISD_WT_LAYOUT_DIFFUSERS : ISD_WT_LAYOUT_SINGLE);
                check_config(presets[p], layout, m);
                size_t n = check_values(presets[p], layout, m);
                if (layout == 0 && dt == 0)
                    first_count = n;
                else if (strcmp(presets[p], "tiny-sd2") != 0 || layout == 0)
                    assert_int_equal(n, first_count);
                struct isd_wt_view v;
                assert_int_equal(isd_wt_get(m, "model.diffusion_model.out.2.weight", &v), 0);
                assert_int_equal(v.dtype, dt == 0   ? ISD_ENG_DT_F32
                                          : dt == 1 ? ISD_ENG_DT_F16
                                                    : ISD_ENG_DT_BF16);
                isd_wt_model_free(m);
            }
    }
}

/* Without --exact, F32 files hold the generated floats and F16/BF16 their rounding. */
static void inexact_values_round_like_torch(void **state)
{
    (void)state;
    const char *name = "model.diffusion_model.input_blocks.1.1.proj_in.weight";
    float want[1024], got[1024];
    struct isd_sdm_config cfg;
    isd_sdm_preset("tiny-sd1", &cfg);
    assert_int_equal(isd_sdm_values(&cfg, SEED, 0, name, want, 1024), 0);
    int exact_seen = 0;
    for (int dt = 0; dt < 3; dt++) {
        struct isd_sdm_options o;
        opts(&o, ISD_SDM_SINGLE, dt);
        o.exact = 0;
        struct isd_wt_model *m = open_ok(write_model("tiny-sd1", &o, "inexact"), NULL);
        struct isd_wt_view v;
        assert_int_equal(isd_wt_get(m, name, &v), 0);
        assert_int_equal(v.numel, 1024);
        assert_int_equal(isd_wt_view_to_f32(&v, got, 1024), 0);
        for (int i = 0; i < 1024; i++) {
            float w = dt == 0   ? want[i]
                      : dt == 1 ? isd_eng_f16_to_f32(isd_eng_f32_to_f16(want[i]))
                                : isd_eng_bf16_to_f32(isd_eng_f32_to_bf16(want[i]));
            assert_true(memcmp(&w, &got[i], 4) == 0);
            exact_seen += dt == 0 && isd_sdm_exact(want[i]) == want[i];
        }
        isd_wt_model_free(m);
    }
    assert_true(exact_seen < 10); /* the inexact values really are not pre-rounded */
}

/* OpenCLIP's fused in_proj becomes three contiguous views, no copy. */
static void openclip_split_views(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    opts(&o, ISD_SDM_SINGLE, ISD_SDM_BF16);
    struct isd_wt_model *m = open_ok(write_model("tiny-sd2", &o, "exact"), NULL);
    for (int layer = 0; layer < 3; layer++)
        for (int b = 0; b < 2; b++) {
            struct isd_wt_view q, k, v;
            char name[256];
            const char *what = b ? "bias" : "weight";
#define GET(view, x)                                                                               \
    snprintf(name, sizeof name,                                                                    \
             "cond_stage_model.transformer.text_model.encoder.layers.%d.self_attn.%s_proj.%s",     \
             layer, x, what);                                                                      \
    assert_int_equal(isd_wt_get(m, name, &view), 0)
            GET(q, "q");
            GET(k, "k");
            GET(v, "v");
            assert_int_equal(q.ndim, b ? 1 : 2);
            assert_int_equal(q.shape[0], 32);
            assert_int_equal(q.nbytes, b ? 64 : 2048);
            assert_ptr_equal(k.data, (const char *)q.data + q.nbytes);
            assert_ptr_equal(v.data, (const char *)k.data + k.nbytes);
        }
    isd_wt_model_free(m);
}

/* ---- every tensor deleted in turn must be named ---- */

static void each_missing_tensor_is_named(const char *preset, int layout)
{
    struct isd_sdm_config cfg;
    struct isd_sdm_tensor *list;
    size_t n, tried = 0;
    assert_int_equal(isd_sdm_preset(preset, &cfg), 0);
    assert_int_equal(isd_sdm_tensors(&cfg, &list, &n), 0);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const struct isd_sdm_tensor *t = &list[i];
        struct isd_sdm_options o;
        opts(&o, layout, ISD_SDM_F16);
        o.sparse = 1;
        const char *expect = t->name;
        if (layout == ISD_SDM_DIFFUSERS) {
            if (cfg.openclip && t->part == ISD_SDM_TEXT && t->layer == cfg.text_layers - 1)
                continue;
            o.omit = t->diff;
        } else if (t->part == ISD_SDM_TEXT && cfg.openclip) {
            if (!t->oc[0])
                continue; /* k/v: part of the fused tensor omitted with q */
            o.omit = t->oc;
        } else {
            o.omit = t->name;
        }
        const char *path = write_model(preset, &o, "omit");
        bad += !open_fails(path, NULL, ISD_ENG_EMISSING, expect);
        tried++;
    }
    free(list);
    assert_int_equal(bad, 0);
    assert_true(tried > 300);
}

static void missing_tensors_single_sd1(void **state)
{
    (void)state;
    each_missing_tensor_is_named("tiny-sd1", ISD_SDM_SINGLE);
}

static void missing_tensors_single_sd2_openclip(void **state)
{
    (void)state;
    each_missing_tensor_is_named("tiny-sd2", ISD_SDM_SINGLE);
}

static void missing_tensors_diffusers(void **state)
{
    (void)state;
    each_missing_tensor_is_named("tiny-inpaint", ISD_SDM_DIFFUSERS);
    each_missing_tensor_is_named("tiny-sd2", ISD_SDM_DIFFUSERS);
}

/* Tensors outside the architecture may be absent. */
static void extras_are_optional(void **state)
{
    (void)state;
    static const char *const extras[] = {
        "alphas_cumprod", "model_ema.decay", "model_ema.num_updates",
        "cond_stage_model.transformer.text_model.embeddings.position_ids"};
    for (int i = 0; i < 4; i++) {
        struct isd_sdm_options o;
        opts(&o, ISD_SDM_SINGLE, ISD_SDM_F16);
        o.sparse = 1;
        o.omit = extras[i];
        isd_wt_model_free(open_ok(write_model("tiny-sd1", &o, "extra"), NULL));
    }
    struct isd_sdm_options o;
    opts(&o, ISD_SDM_SINGLE, ISD_SDM_F16);
    o.sparse = 1;
    o.omit = "cond_stage_model.model.text_projection";
    isd_wt_model_free(open_ok(write_model("tiny-sd2", &o, "extra"), NULL));
}

/* ---- wrong shapes ---- */

static int reshaped_fails(const char *preset, int layout, const char *name, int dim, int64_t v,
                          int code, const char *needle)
{
    struct isd_sdm_options o;
    opts(&o, layout, ISD_SDM_F32);
    o.sparse = 1;
    o.reshape = name;
    o.reshape_dim = dim;
    o.reshape_value = v;
    return open_fails(write_model(preset, &o, "shape"), NULL, code, needle);
}

static void wrong_shapes(void **state)
{
    (void)state;
    int ok = 1;
    ok &= reshaped_fails("tiny-sd1", 0, "model.diffusion_model.input_blocks.1.0.in_layers.2.weight",
                         1, 33, ISD_ENG_ESHAPE,
                         "'model.diffusion_model.input_blocks.1.0.in_layers.2.weight' has shape "
                         "[32,33,3,3], expected [32,32,3,3]");
    ok &=
        reshaped_fails("tiny-sd1", 0, "model.diffusion_model.output_blocks.0.0.in_layers.2.weight",
                       1, 64, ISD_ENG_ESHAPE, "output_blocks.0.0.in_layers.2.weight");
    ok &= reshaped_fails("tiny-sd1", 0,
                         "model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_k."
                         "weight",
                         1, 33, ISD_ENG_ESHAPE, "attn2.to_k.weight");
    ok &= reshaped_fails("tiny-sd1", 0, "first_stage_model.decoder.up.1.block.0.conv1.weight", 1,
                         64, ISD_ENG_ESHAPE, "decoder.up.1.block.0.conv1.weight");
    ok &= reshaped_fails("tiny-sd1", 0, "first_stage_model.encoder.mid.attn_1.q.weight", 2, 3,
                         ISD_ENG_ESHAPE, "encoder.mid.attn_1.q.weight' has shape [32,32,3,1]");
    ok &= reshaped_fails("tiny-sd1", 0,
                         "cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc1.weight",
                         0, 65, ISD_ENG_ESHAPE, "layers.1.mlp.fc1.weight");
    ok &= reshaped_fails("tiny-sd2", 0,
                         "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight", 0,
                         95, ISD_ENG_ESHAPE, "divisible by 3");
    ok &= reshaped_fails("tiny-sd2", 0,
                         "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_bias", 0, 99,
                         ISD_ENG_ESHAPE, "self_attn.q_proj.bias' has shape [33]");
    ok &= reshaped_fails("tiny-sd2", 1, "down_blocks.1.attentions.0.proj_in.weight", 1, 32,
                         ISD_ENG_ESHAPE, "input_blocks.3.1.proj_in.weight");
    ok &= reshaped_fails("tiny-sd1", 1, "decoder.up_blocks.0.resnets.1.conv2.weight", 0, 64,
                         ISD_ENG_ESHAPE, "first_stage_model.decoder.up.3.block.1.conv2.weight");
    ok &= reshaped_fails("tiny-sd1", 0, "model.diffusion_model.input_blocks.0.0.weight", 0, 48,
                         ISD_ENG_ESHAPE, "width 32 is not a multiple of model_channels 48");
    assert_true(ok);
}

/* ---- overrides, metadata, JSON side files ---- */

static void overrides_and_rules(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    struct isd_wt_options wo;
    opts(&o, ISD_SDM_SINGLE, ISD_SDM_F16);
    o.sparse = 1;
    o.no_metadata = 1;
    const char *p1 = write_model("tiny-sd1", &o, "nometa");
    /* width 32 cannot give 64-channel text heads: the metadata key is needed */
    assert_true(open_fails(p1, NULL, ISD_ENG_EUNSUPPORTED, "sdc.text_heads"));
    isd_wt_options_init(&wo);
    wo.override.text.heads = 4;
    struct isd_wt_model *m = open_ok(p1, &wo);
    assert_int_equal(isd_wt_model_config(m)->unet.num_heads, 8); /* SD1 rule */
    assert_int_equal(isd_wt_model_config(m)->prediction, ISD_WT_PRED_UNKNOWN);
    isd_wt_model_free(m);
    wo.override.unet.num_head_channels = 16;
    wo.override.prediction = ISD_WT_PRED_V;
    wo.override.text.pad_id = 0;
    wo.override.text.layers_run = 1;
    wo.override.vae.scale_factor = 1.0;
    m = open_ok(p1, &wo);
    const struct isd_wt_config *c = isd_wt_model_config(m);
    assert_int_equal(c->unet.num_heads, 0);
    assert_int_equal(c->unet.num_head_channels, 16);
    assert_int_equal(c->prediction, ISD_WT_PRED_V);
    assert_int_equal(c->text.pad_id, 0);
    assert_int_equal(c->text.layers_run, 1);
    assert_true(c->vae.scale_factor == 1.0);
    isd_wt_model_free(m);
    wo.override.text.layers_run = 3;
    assert_true(open_fails(p1, &wo, ISD_ENG_EMISSING, "must run 3 layers but 2 are stored"));
    isd_wt_options_init(&wo);
    wo.override.text.heads = 4;
    wo.override.unet.in_channels = 9; /* shapes then disagree */
    assert_true(open_fails(p1, &wo, ISD_ENG_ESHAPE, "input_blocks.0.0.weight' has shape"));
    isd_wt_options_init(&wo);
    wo.override.text.heads = 4;
    wo.override.unet.num_heads = 3;
    assert_true(open_fails(p1, &wo, ISD_ENG_EUNSUPPORTED, "does not split into heads"));
    wo.override.unet.num_heads = 8;
    wo.override.unet.model_channels = 48; /* GroupNorm(32) cannot split it */
    assert_true(open_fails(p1, &wo, ISD_ENG_EUNSUPPORTED, "multiple of 32"));
    wo.components = 0;
    assert_true(open_fails(p1, &wo, ISD_ENG_EINVAL, "components"));

    /* SD2 without metadata: 64-channel heads by rule do not fit width 32 */
    const char *p2 = write_model("tiny-sd2", &o, "nometa");
    isd_wt_options_init(&wo);
    wo.override.text.heads = 4;
    assert_true(open_fails(p2, &wo, ISD_ENG_EUNSUPPORTED, "num_head_channels 64"));
    wo.override.unet.num_head_channels = 16;
    m = open_ok(p2, &wo);
    assert_int_equal(isd_wt_model_config(m)->family, ISD_WT_SD2);
    assert_int_equal(isd_wt_model_config(m)->text.kind, ISD_WT_TEXT_OPENCLIP);
    assert_int_equal(isd_wt_model_config(m)->text.layers_run, 2);
    isd_wt_model_free(m);
    wo.override.family = ISD_WT_SD1;
    wo.override.text.kind = ISD_WT_TEXT_CLIP_L;
    m = open_ok(p2, &wo);
    assert_int_equal(isd_wt_model_config(m)->family, ISD_WT_SD1);
    assert_int_equal(isd_wt_model_config(m)->text.kind, ISD_WT_TEXT_CLIP_L);
    assert_int_equal(isd_wt_model_config(m)->text.pad_id, 49407);
    isd_wt_model_free(m);
}

static void metadata_keys(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    opts(&o, ISD_SDM_SINGLE, ISD_SDM_F16);
    o.sparse = 1;
    const char *good[] = {"sdc.family",
                          "sd2",
                          "sdc.text_act",
                          "gelu",
                          "sdc.text_layers_run",
                          "1",
                          "sdc.text_pad",
                          "7",
                          "sdc.vae_scale",
                          "0.5",
                          "sdc.prediction",
                          "epsilon",
                          NULL};
    o.meta = good;
    struct isd_wt_model *m = open_ok(write_model("tiny-sd1", &o, "meta"), NULL);
    const struct isd_wt_config *c = isd_wt_model_config(m);
    assert_int_equal(c->family, ISD_WT_SD2);
    assert_int_equal(c->text.kind, ISD_WT_TEXT_OPENCLIP);
    assert_int_equal(c->text.layers_run, 1);
    assert_int_equal(c->text.pad_id, 7);
    assert_true(c->vae.scale_factor == 0.5);
    assert_int_equal(c->prediction, ISD_WT_PRED_EPS);
    assert_int_equal(c->unet.num_heads, 8); /* sdc.num_heads still wins over the SD2 rule */
    assert_string_equal(isd_wt_model_meta(m, "sdc.preset"), "tiny-sd1");
    isd_wt_model_free(m);
    static const char *const bad[][3] = {
        {"sdc.num_heads", "eight", "sdc.num_heads"},
        {"sdc.num_heads", "0", "sdc.num_heads"},
        {"sdc.num_head_channels", "-4", "sdc.num_heads"}, /* num_heads wins, so still fine? */
        {"sdc.prediction", "x0", "sdc.prediction"},
        {"sdc.family", "sdxl", "sdc.family"},
        {"sdc.text_act", "relu", "sdc.text_act"},
        {"sdc.text_heads", "4x", "sdc.text_heads"},
        {"sdc.vae_scale", "-1", "sdc.vae_scale"},
        {"sdc.vae_scale", "nan", "sdc.vae_scale"},
        {"sdc.text_pad", "99999999", "sdc.text_pad"},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *meta[] = {bad[i][0], bad[i][1], NULL};
        o.meta = meta;
        const char *p = write_model("tiny-sd1", &o, "badmeta");
        if (i == 2) /* sdc.num_heads is present and read first: the bad key is never looked at */
            isd_wt_model_free(open_ok(p, NULL));
        else
            ok &= open_fails(p, NULL, ISD_ENG_EFORMAT, bad[i][2]);
    }
    assert_true(ok);
}

static void put_file(const char *dir, const char *rel, const char *text)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void diffusers_side_files(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    opts(&o, ISD_SDM_DIFFUSERS, ISD_SDM_F32);
    o.sparse = 1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", write_model("tiny-sd2", &o, "side"));
    struct isd_wt_model *m = open_ok(dir, NULL);
    const struct isd_wt_scheduler *s = isd_wt_model_scheduler(m);
    assert_true(s->present);
    assert_string_equal(s->prediction_type, "v_prediction");
    assert_true(s->beta_start == 0.00085 && s->beta_end == 0.012);
    assert_string_equal(s->beta_schedule, "scaled_linear");
    assert_int_equal(s->num_train_timesteps, 1000);
    assert_string_equal(s->timestep_spacing, "leading");
    assert_int_equal(s->steps_offset, 1);
    const struct isd_wt_paths *p = isd_wt_model_paths(m);
    assert_string_equal(p->root, dir);
    assert_non_null(strstr(p->unet, "/unet/diffusion_pytorch_model.safetensors"));
    assert_non_null(strstr(p->text_encoder, "/text_encoder/model.safetensors"));
    assert_non_null(strstr(p->vae, "/vae/diffusion_pytorch_model.safetensors"));
    assert_non_null(strstr(p->model_index, "/model_index.json"));
    assert_non_null(strstr(p->scheduler_config, "/scheduler/scheduler_config.json"));
    assert_null(p->tokenizer_dir);
    assert_null(p->vocab);
    isd_wt_model_free(m);

    /* tokenizer files are located */
    char tok[4200];
    snprintf(tok, sizeof tok, "%s/tokenizer", dir);
    assert_int_equal(mkdir(tok, 0755), 0);
    put_file(dir, "tokenizer/vocab.json", "{}");
    put_file(dir, "tokenizer/merges.txt", "#version: 0.2\n");
    m = open_ok(dir, NULL);
    p = isd_wt_model_paths(m);
    assert_string_equal(p->tokenizer_dir, tok);
    assert_non_null(strstr(p->vocab, "tokenizer/vocab.json"));
    assert_non_null(strstr(p->merges, "tokenizer/merges.txt"));
    isd_wt_model_free(m);

    /* the prediction type comes from the scheduler when metadata does not say */
    const char *nometa[] = {"sdc.prediction", "", NULL};
    (void)nometa;
    put_file(dir, "scheduler/scheduler_config.json",
             "{\"prediction_type\": \"epsilon\", \"timestep_spacing\": \"trailing\"}");
    m = open_ok(dir, NULL);
    assert_int_equal(isd_wt_model_config(m)->prediction, ISD_WT_PRED_V); /* metadata wins */
    assert_string_equal(isd_wt_model_scheduler(m)->timestep_spacing, "trailing");
    assert_int_equal(isd_wt_model_scheduler(m)->num_train_timesteps, 1000); /* default kept */
    isd_wt_model_free(m);

    int ok = 1;
    put_file(dir, "scheduler/scheduler_config.json", "{\"beta_start\": \"x\"}");
    ok &= open_fails(dir, NULL, ISD_ENG_EFORMAT, "\"beta_start\" is not a number");
    put_file(dir, "scheduler/scheduler_config.json", "{\"steps_offset\": 1.5}");
    ok &= open_fails(dir, NULL, ISD_ENG_EFORMAT, "\"steps_offset\" is not an integer");
    put_file(dir, "scheduler/scheduler_config.json", "{\"num_train_timesteps\": 0}");
    ok &= open_fails(dir, NULL, ISD_ENG_EFORMAT, "implausible");
    put_file(dir, "scheduler/scheduler_config.json", "{\"prediction_type\": \"epsilon\",");
    ok &= open_fails(dir, NULL, ISD_ENG_EFORMAT, "scheduler_config.json: invalid JSON");
    put_file(dir, "scheduler/scheduler_config.json",
             "{\"timestep_spacing\": \"a string much longer than thirty-one bytes\"}");
    ok &= open_fails(dir, NULL, ISD_ENG_EFORMAT, "timestep_spacing");
    put_file(dir, "scheduler/scheduler_config.json", "{}");
    put_file(dir, "model_index.json", "[]");
    ok &= open_fails(dir, NULL, ISD_ENG_EFORMAT, "model_index.json: not a JSON object");
    put_file(dir, "model_index.json", "{}");
    put_file(dir, "text_encoder/config.json", "{\"hidden_act\": \"relu\"}");
    ok &= open_fails(dir, NULL, ISD_ENG_EUNSUPPORTED, "hidden_act \"relu\"");
    /* text_encoder/config.json: activation and declared layer count */
    put_file(dir, "text_encoder/config.json",
             "{\"hidden_act\": \"quick_gelu\", \"num_hidden_layers\": 1}");
    put_file(dir, "vae/config.json", "{\"scaling_factor\": 0.13025}");
    assert_true(ok);
    m = open_ok(dir, NULL);
    const struct isd_wt_config *c = isd_wt_model_config(m);
    assert_int_equal(c->text.kind, ISD_WT_TEXT_CLIP_L);
    assert_int_equal(c->text.layers_run, 1);
    assert_int_equal(c->text.num_layers, 2);
    assert_true(c->vae.scale_factor == 0.13025);
    assert_false(isd_wt_model_scheduler(m)->present == 0);
    isd_wt_model_free(m);
}

static void components_and_missing_files(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    struct isd_wt_options wo;
    opts(&o, ISD_SDM_DIFFUSERS, ISD_SDM_F16);
    o.sparse = 1;
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s", write_model("tiny-sd1", &o, "parts"));
    snprintf(p, sizeof p, "%s/text_encoder/model.fp16.safetensors", dir);
    assert_int_equal(unlink(p), 0);
    assert_true(open_fails(dir, NULL, ISD_ENG_EMISSING, "text_encoder/model[.fp16].safetensors"));
    isd_wt_options_init(&wo);
    wo.components = ISD_WT_UNET | ISD_WT_VAE_DEC;
    struct isd_wt_model *m = open_ok(dir, &wo);
    const struct isd_wt_config *c = isd_wt_model_config(m);
    assert_int_equal(c->unet.model_channels, 32);
    assert_int_equal(c->text.width, 0);
    assert_int_equal(c->vae.ch, 32);
    assert_int_equal(c->vae.num_levels, 4);
    assert_int_equal(c->vae.z_channels, 4);
    assert_null(isd_wt_model_paths(m)->text_encoder);
    isd_wt_model_free(m);
    /* scheduler and model_index are optional */
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", dir);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/model_index.json", dir);
    assert_int_equal(unlink(p), 0);
    wo.components = ISD_WT_VAE_ENC;
    m = open_ok(dir, &wo);
    assert_false(isd_wt_model_scheduler(m)->present);
    assert_true(isd_wt_model_scheduler(m)->beta_end == 0.012);
    assert_null(isd_wt_model_paths(m)->model_index);
    assert_int_equal(isd_wt_model_config(m)->vae.in_channels, 3);
    isd_wt_model_free(m);
    assert_true(open_fails(tmp, NULL, ISD_ENG_EMISSING, "not a diffusers folder"));
    snprintf(p, sizeof p, "%s/nothing-here", tmp);
    assert_true(open_fails(p, NULL, ISD_ENG_EIO, "nothing-here"));
}

/* diffusers: *.fp16.safetensors is used when it is the only file, or when asked for. */
static void fp16_variant_choice(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    opts(&o, ISD_SDM_DIFFUSERS, ISD_SDM_F32);
    o.sparse = 1;
    char a[4096], src[4200], dst[4200];
    snprintf(a, sizeof a, "%s", write_model("tiny-sd1", &o, "variant"));
    o.dtype = ISD_SDM_F16;
    const char *b = write_model("tiny-sd1", &o, "variant");
    snprintf(src, sizeof src, "%s/unet/diffusion_pytorch_model.fp16.safetensors", b);
    snprintf(dst, sizeof dst, "%s/unet/diffusion_pytorch_model.fp16.safetensors", a);
    assert_int_equal(rename(src, dst), 0);
    struct isd_wt_view v;
    struct isd_wt_model *m = open_ok(a, NULL);
    assert_int_equal(isd_wt_get(m, "model.diffusion_model.out.2.bias", &v), 0);
    assert_int_equal(v.dtype, ISD_ENG_DT_F32);
    isd_wt_model_free(m);
    struct isd_wt_options wo;
    isd_wt_options_init(&wo);
    wo.prefer_fp16 = 1;
    m = open_ok(a, &wo);
    assert_int_equal(isd_wt_get(m, "model.diffusion_model.out.2.bias", &v), 0);
    assert_int_equal(v.dtype, ISD_ENG_DT_F16);
    assert_non_null(strstr(isd_wt_model_paths(m)->unet, ".fp16.safetensors"));
    isd_wt_model_free(m);
}

static void legacy_vae_attention_names(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    opts(&o, ISD_SDM_DIFFUSERS, ISD_SDM_BF16);
    o.legacy_vae_attn = 1;
    struct isd_wt_model *m = open_ok(write_model("tiny-sd1", &o, "legacy"), NULL);
    check_values("tiny-sd1", ISD_SDM_DIFFUSERS, m);
    isd_wt_model_free(m);
}

static void single_file_extras(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    opts(&o, ISD_SDM_SINGLE, ISD_SDM_F16);
    struct isd_wt_model *m = open_ok(write_model("tiny-sd1", &o, "exact"), NULL);
    struct isd_wt_view v;
    float a[1000];
    assert_int_equal(isd_wt_get(m, "alphas_cumprod", &v), 0);
    assert_int_equal(v.dtype, ISD_ENG_DT_F32);
    assert_int_equal(v.numel, 1000);
    assert_int_equal(isd_wt_view_to_f32(&v, a, 1000), 0);
    assert_true(fabsf(a[0] - 0.99915f) < 1e-6f);
    assert_true(fabs(sqrt((1 - a[999]) / a[999]) - 14.6146) < 1e-3); /* sigma_max */
    for (int i = 1; i < 1000; i++)
        assert_true(a[i] < a[i - 1]);
    /* I64 position_ids: indexed, but not usable as a weight */
    const char *pos = "cond_stage_model.transformer.text_model.embeddings.position_ids";
    assert_int_equal(isd_wt_get(m, pos, &v), 0);
    assert_int_equal(v.dtype, ISD_ENG_DT_I64);
    struct isd_eng_error err = {0};
    int64_t shape[2] = {1, 77};
    assert_int_equal(isd_wt_need(m, pos, 2, shape, &v, &err), ISD_ENG_ESHAPE);
    assert_non_null(strstr(err.msg, "dtype I64"));
    assert_int_equal(isd_wt_need(m, "nope", 2, shape, &v, &err), ISD_ENG_EMISSING);
    assert_non_null(strstr(err.msg, "'nope' is missing"));
    shape[0] = 49408;
    shape[1] = 32;
    assert_int_equal(isd_wt_need(m,
                                 "cond_stage_model.transformer.text_model.embeddings."
                                 "token_embedding.weight",
                                 2, shape, &v, &err),
                     0);
    assert_int_equal(isd_wt_model_ignored(m), 2); /* model_ema.decay, model_ema.num_updates */
    assert_int_equal(isd_wt_get(m, "model_ema.decay", &v), ISD_ENG_EMISSING);
    /* views are sorted and unique */
    for (size_t i = 1; i < isd_wt_model_count(m); i++)
        assert_true(strcmp(isd_wt_model_at(m, i - 1)->name, isd_wt_model_at(m, i)->name) < 0);
    assert_null(isd_wt_model_at(m, isd_wt_model_count(m)));
    isd_wt_model_free(m);
    isd_wt_model_free(NULL);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void truncated_model_files(void **state)
{
    (void)state;
    struct isd_sdm_options o;
    opts(&o, ISD_SDM_SINGLE, ISD_SDM_F16);
    size_t len;
    unsigned char *b = slurp(write_model("tiny-sd1", &o, "exact"), &len);
    /* from memory: the same model */
    struct isd_wt_model *m;
    struct isd_eng_error err = {0};
    assert_int_equal(isd_wt_model_open_mem(b, len, NULL, &m, &err), 0);
    check_config("tiny-sd1", ISD_SDM_SINGLE, m);
    check_values("tiny-sd1", ISD_SDM_SINGLE, m);
    isd_wt_model_free(m);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    size_t cuts[] = {0,         4,     7,         8,       9,       100,    8 + n / 2,
                     8 + n - 1, 8 + n, 8 + n + 1, len / 2, len - 2, len - 1};
    char path[4200];
    snprintf(path, sizeof path, "%s/truncated.safetensors", tmp);
    int ok = 1;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *f = fopen(path, "wb");
        assert_int_equal(fwrite(b, 1, cuts[i], f), cuts[i]);
        fclose(f);
        ok &= open_fails(path, NULL, ISD_ENG_EFORMAT, "truncated.safetensors");
        ok &= isd_wt_model_open_mem(b, cuts[i], NULL, &m, &err) == ISD_ENG_EFORMAT;
    }
    free(b);
    assert_true(ok);
}

/* ---- the full-size architectures, as sparse files (headers only, data a hole) ---- */

static void full_size_architectures(void **state)
{
    (void)state;
    struct isd_sdm_config cfg;
    struct isd_sdm_options o;
    char msg[512], path[4200];
    static const struct {
        const char *preset;
        int layout, no_meta;
    } cases[] = {
        {"sd15", ISD_SDM_SINGLE, 0},
        {"sd15", ISD_SDM_DIFFUSERS, 1},
        {"sd21", ISD_SDM_SINGLE, 1},
        {"sd21", ISD_SDM_DIFFUSERS, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int sd2 = strcmp(cases[i].preset, "sd21") == 0;
        assert_int_equal(isd_sdm_preset(cases[i].preset, &cfg), 0);
        opts(&o, cases[i].layout, ISD_SDM_F16);
        o.sparse = 1;
        o.no_metadata = cases[i].no_meta;
        snprintf(path, sizeof path, "%s/%s-%zu%s", tmp, cases[i].preset, i,
                 cases[i].layout ? "" : ".safetensors");
        if (isd_sdm_write(&cfg, &o, path, msg, sizeof msg) < 0)
            fail_msg("%s", msg);
        struct isd_wt_model *m = open_ok(path, NULL);
        const struct isd_wt_config *c = isd_wt_model_config(m);
        assert_int_equal(c->family, sd2 ? ISD_WT_SD2 : ISD_WT_SD1);
        /* single files carry sdc.prediction unless no_meta; diffusers have the scheduler */
        assert_int_equal(c->prediction, cases[i].layout == ISD_SDM_SINGLE && cases[i].no_meta
                                            ? ISD_WT_PRED_UNKNOWN
                                        : sd2 ? ISD_WT_PRED_V
                                              : ISD_WT_PRED_EPS);
        assert_int_equal(c->unet.model_channels, 320);
        assert_int_equal(c->unet.num_levels, 4);
        static const int mult[] = {1, 2, 4, 4};
        for (int l = 0; l < 4; l++) {
            assert_int_equal(c->unet.channel_mult[l], mult[l]);
            assert_int_equal(c->vae.ch_mult[l], mult[l]);
        }
        assert_int_equal(c->unet.num_res_blocks, 2);
        assert_int_equal(c->unet.attn_levels, 7);
        assert_int_equal(c->unet.context_dim, sd2 ? 1024 : 768);
        assert_int_equal(c->unet.proj, sd2 ? ISD_WT_PROJ_LINEAR : ISD_WT_PROJ_CONV);
        assert_int_equal(c->unet.num_heads, sd2 ? 0 : 8);
        assert_int_equal(c->unet.num_head_channels, sd2 ? 64 : 0);
        assert_int_equal(c->unet.time_embed_dim, 1280);
        int h, d;
        assert_int_equal(isd_wt_unet_heads(&c->unet, 640, &h, &d), 0);
        assert_int_equal(h, sd2 ? 10 : 8);
        assert_int_equal(d, sd2 ? 64 : 80);
        assert_int_equal(c->text.kind, sd2 ? ISD_WT_TEXT_OPENCLIP : ISD_WT_TEXT_CLIP_L);
        assert_int_equal(c->text.width, sd2 ? 1024 : 768);
        assert_int_equal(c->text.heads, sd2 ? 16 : 12);
        assert_int_equal(c->text.num_layers, sd2 ? (cases[i].layout ? 23 : 24) : 12);
        assert_int_equal(c->text.layers_run, sd2 ? 23 : 12);
        assert_int_equal(c->text.mlp_dim, sd2 ? 4096 : 3072);
        assert_int_equal(c->vae.ch, 128);
        assert_int_equal(c->vae.num_res_blocks, 2);
        /* lookups of every architecture tensor; parameters add up to the published counts */
        struct isd_sdm_tensor *list;
        size_t n;
        uint64_t params = 0;
        assert_int_equal(isd_sdm_tensors(&cfg, &list, &n), 0);
        for (size_t k = 0; k < n; k++) {
            struct isd_wt_view v;
            if (isd_wt_get(m, list[k].name, &v) == 0 && list[k].part == ISD_SDM_UNET)
                params += v.numel;
        }
        assert_int_equal(params, sd2 ? 865910724 : 859520964);
        free(list);
        isd_wt_model_free(m);
    }
}

static int setup(void **state)
{
    (void)state;
    tmp = isd_test_tmpdir();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_models_every_layout_and_dtype),
        cmocka_unit_test(inexact_values_round_like_torch),
        cmocka_unit_test(openclip_split_views),
        cmocka_unit_test(missing_tensors_single_sd1),
        cmocka_unit_test(missing_tensors_single_sd2_openclip),
        cmocka_unit_test(missing_tensors_diffusers),
        cmocka_unit_test(extras_are_optional),
        cmocka_unit_test(wrong_shapes),
        cmocka_unit_test(overrides_and_rules),
        cmocka_unit_test(metadata_keys),
        cmocka_unit_test(diffusers_side_files),
        cmocka_unit_test(components_and_missing_files),
        cmocka_unit_test(fp16_variant_choice),
        cmocka_unit_test(legacy_vae_attention_names),
        cmocka_unit_test(single_file_extras),
        cmocka_unit_test(truncated_model_files),
        cmocka_unit_test(full_size_architectures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
