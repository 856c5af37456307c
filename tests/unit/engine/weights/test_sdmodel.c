/*
 * The random-weight model writer itself (tests/unit/support/sdmodel): the full-size architectures
 * against the published parameter counts and block facts (engine-notes 4.1-4.3, 5), the diffusers
 * and OpenCLIP names, determinism, and the initialisation rules (10.1).
 */
#include "support/test.h"

#include "engine/weights/weights.h"
#include "support/sdmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct isd_sdm_tensor *find(const struct isd_sdm_tensor *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

static uint64_t count_of(const struct isd_sdm_config *c, const char *name)
{
    struct isd_sdm_tensor *v;
    size_t n;
    assert_int_equal(isd_sdm_tensors(c, &v, &n), 0);
    const struct isd_sdm_tensor *t = find(v, n, name);
    assert_non_null(t);
    uint64_t k = t->numel;
    free(v);
    return k;
}

static void published_parameter_counts(void **state)
{
    (void)state;
    struct isd_sdm_config c;
    assert_int_equal(isd_sdm_preset("sd15", &c), 0);
    assert_int_equal(isd_sdm_param_count(&c, ISD_SDM_UNET), 859520964);
    assert_int_equal(isd_sdm_param_count(&c, ISD_SDM_TEXT), 123060480);
    /* TAESD's table counts the Encoder/Decoder modules: without quant_conv / post_quant_conv */
    uint64_t qc = count_of(&c, "first_stage_model.quant_conv.weight") +
                  count_of(&c, "first_stage_model.quant_conv.bias");
    uint64_t pqc = count_of(&c, "first_stage_model.post_quant_conv.weight") +
                   count_of(&c, "first_stage_model.post_quant_conv.bias");
    assert_int_equal(qc, 72);
    assert_int_equal(pqc, 20);
    assert_int_equal(isd_sdm_param_count(&c, ISD_SDM_VAE_ENC) - qc, 34163592);
    assert_int_equal(isd_sdm_param_count(&c, ISD_SDM_VAE_DEC) - pqc, 49490179);
    assert_int_equal(isd_sdm_preset("sd21", &c), 0);
    assert_int_equal(isd_sdm_param_count(&c, ISD_SDM_UNET), 865910724);
    /* OpenCLIP-H text tower: 354.03 M with text_projection (1024 x 1024), which we do not run */
    assert_int_equal(isd_sdm_param_count(&c, ISD_SDM_TEXT) + 1024 * 1024, 354032640);
    assert_int_equal(isd_sdm_param_count(&c, ISD_SDM_VAE_DEC) - pqc, 49490179);
    /* tiny CLIP with the full vocabulary: 1.6 M */
    assert_int_equal(isd_sdm_preset("tiny-sd1", &c), 0);
    assert_int_equal(isd_sdm_param_count(&c, ISD_SDM_TEXT), 1600672);
    assert_int_equal(isd_sdm_preset("nope", &c), -1);
}

static void sd15_block_facts(void **state)
{
    (void)state;
    struct isd_sdm_config c;
    struct isd_sdm_tensor *v;
    size_t n;
    isd_sdm_preset("sd15", &c);
    assert_int_equal(isd_sdm_tensors(&c, &v, &n), 0);
    /* output blocks see cat(h, skip): these input widths */
    static const int64_t in[12] = {2560, 2560, 2560, 2560, 2560, 1920,
                                   1920, 1280, 960,  960,  640,  640};
    for (int k = 0; k < 12; k++) {
        char name[128];
        snprintf(name, sizeof name, "model.diffusion_model.output_blocks.%d.0.in_layers.0.weight",
                 k);
        const struct isd_sdm_tensor *t = find(v, n, name);
        assert_non_null(t);
        assert_int_equal(t->shape[0], in[k]);
        snprintf(name, sizeof name, "model.diffusion_model.output_blocks.%d.1.norm.weight", k);
        assert_true((find(v, n, name) != NULL) == (k >= 3)); /* blocks 3-11 have attention */
    }
    assert_non_null(find(v, n, "model.diffusion_model.output_blocks.2.1.conv.weight"));
    assert_non_null(find(v, n, "model.diffusion_model.output_blocks.5.2.conv.weight"));
    assert_non_null(find(v, n, "model.diffusion_model.output_blocks.8.2.conv.weight"));
    assert_null(find(v, n, "model.diffusion_model.output_blocks.11.2.conv.weight"));
    for (int k = 1; k <= 11; k++) {
        char name[128];
        snprintf(name, sizeof name, "model.diffusion_model.input_blocks.%d.1.norm.weight", k);
        int attn = k == 1 || k == 2 || k == 4 || k == 5 || k == 7 || k == 8;
        assert_true((find(v, n, name) != NULL) == attn);
        snprintf(name, sizeof name, "model.diffusion_model.input_blocks.%d.0.op.weight", k);
        assert_true((find(v, n, name) != NULL) == (k == 3 || k == 6 || k == 9));
    }
    const struct isd_sdm_tensor *t = find(
        v, n, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight");
    assert_true(t && t->shape[0] == 2560 && t->shape[1] == 320);
    t = find(v, n, "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight");
    assert_true(t && t->shape[0] == 1280 && t->shape[1] == 768);
    t = find(v, n, "model.diffusion_model.input_blocks.1.1.proj_in.weight");
    assert_true(t && t->ndim == 4 && t->shape[2] == 1);
    t = find(v, n, "first_stage_model.decoder.mid.attn_1.q.weight");
    assert_true(t && t->ndim == 4 && t->shape[0] == 512 && t->vae_attn);
    t = find(v, n, "first_stage_model.decoder.up.1.block.0.nin_shortcut.weight");
    assert_true(t && t->shape[0] == 256 && t->shape[1] == 512);
    t = find(v, n, "first_stage_model.encoder.conv_out.weight");
    assert_true(t && t->shape[0] == 8);
    free(v);
}

static void names_in_every_layout(void **state)
{
    (void)state;
    struct isd_sdm_config c;
    struct isd_sdm_tensor *v;
    size_t n;
    isd_sdm_preset("sd21", &c);
    assert_int_equal(isd_sdm_tensors(&c, &v, &n), 0);
    static const char *const pairs[][2] = {
        {"model.diffusion_model.time_embed.0.weight", "time_embedding.linear_1.weight"},
        {"model.diffusion_model.input_blocks.0.0.bias", "conv_in.bias"},
        {"model.diffusion_model.input_blocks.4.0.in_layers.0.weight",
         "down_blocks.1.resnets.0.norm1.weight"},
        {"model.diffusion_model.input_blocks.4.0.skip_connection.weight",
         "down_blocks.1.resnets.0.conv_shortcut.weight"},
        {"model.diffusion_model.input_blocks.5.1.proj_in.weight",
         "down_blocks.1.attentions.1.proj_in.weight"},
        {"model.diffusion_model.input_blocks.9.0.op.weight",
         "down_blocks.2.downsamplers.0.conv.weight"},
        {"model.diffusion_model.middle_block.2.emb_layers.1.weight",
         "mid_block.resnets.1.time_emb_proj.weight"},
        {"model.diffusion_model.output_blocks.2.1.conv.weight",
         "up_blocks.0.upsamplers.0.conv.weight"},
        {"model.diffusion_model.output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias"},
        {"model.diffusion_model.output_blocks.11.1.transformer_blocks.0.attn1.to_q.weight",
         "up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_q.weight"},
        {"model.diffusion_model.out.0.weight", "conv_norm_out.weight"},
        {"model.diffusion_model.out.2.weight", "conv_out.weight"},
        {"first_stage_model.decoder.up.3.block.0.conv1.weight",
         "decoder.up_blocks.0.resnets.0.conv1.weight"},
        {"first_stage_model.decoder.up.1.upsample.conv.weight",
         "decoder.up_blocks.2.upsamplers.0.conv.weight"},
        {"first_stage_model.encoder.down.1.block.0.nin_shortcut.bias",
         "encoder.down_blocks.1.resnets.0.conv_shortcut.bias"},
        {"first_stage_model.encoder.mid.attn_1.proj_out.weight",
         "encoder.mid_block.attentions.0.to_out.0.weight"},
        {"first_stage_model.decoder.mid.attn_1.norm.bias",
         "decoder.mid_block.attentions.0.group_norm.bias"},
        {"first_stage_model.encoder.norm_out.weight", "encoder.conv_norm_out.weight"},
        {"cond_stage_model.transformer.text_model.encoder.layers.3.mlp.fc2.bias",
         "text_model.encoder.layers.3.mlp.fc2.bias"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const struct isd_sdm_tensor *t = find(v, n, pairs[i][0]);
        if (!t)
            fail_msg("missing %s", pairs[i][0]);
        assert_string_equal(t->diff, pairs[i][1]);
    }
    static const char *const oc[][2] = {
        {"cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
         "cond_stage_model.model.token_embedding.weight"},
        {"cond_stage_model.transformer.text_model.embeddings.position_embedding.weight",
         "cond_stage_model.model.positional_embedding"},
        {"cond_stage_model.transformer.text_model.encoder.layers.7.self_attn.q_proj.weight",
         "cond_stage_model.model.transformer.resblocks.7.attn.in_proj_weight"},
        {"cond_stage_model.transformer.text_model.encoder.layers.7.self_attn.k_proj.weight", ""},
        {"cond_stage_model.transformer.text_model.encoder.layers.7.self_attn.q_proj.bias",
         "cond_stage_model.model.transformer.resblocks.7.attn.in_proj_bias"},
        {"cond_stage_model.transformer.text_model.encoder.layers.7.self_attn.out_proj.weight",
         "cond_stage_model.model.transformer.resblocks.7.attn.out_proj.weight"},
        {"cond_stage_model.transformer.text_model.encoder.layers.0.layer_norm2.bias",
         "cond_stage_model.model.transformer.resblocks.0.ln_2.bias"},
        {"cond_stage_model.transformer.text_model.encoder.layers.23.mlp.fc1.weight",
         "cond_stage_model.model.transformer.resblocks.23.mlp.c_fc.weight"},
        {"cond_stage_model.transformer.text_model.final_layer_norm.weight",
         "cond_stage_model.model.ln_final.weight"},
    };
    for (size_t i = 0; i < sizeof oc / sizeof oc[0]; i++) {
        const struct isd_sdm_tensor *t = find(v, n, oc[i][0]);
        assert_non_null(t);
        assert_string_equal(t->oc, oc[i][1]);
    }
    /* fused q, k, v are consecutive and the same shape */
    const struct isd_sdm_tensor *q = find(v, n, oc[2][0]);
    assert_int_equal(q->fuse, 3);
    assert_string_equal(q[1].name, oc[3][0]);
    assert_true(strstr(q[2].name, "v_proj.weight") != NULL);
    free(v);
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

static void deterministic_files(void **state)
{
    (void)state;
    const char *dir = isd_test_tmpdir();
    struct isd_sdm_config c;
    struct isd_sdm_options o;
    char a[4200], b[4200], msg[256];
    isd_sdm_preset("tiny-sd2", &c);
    isd_sdm_options_init(&o);
    o.dtype = ISD_SDM_BF16;
    o.seed = 7;
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    assert_int_equal(isd_sdm_write(&c, &o, a, msg, sizeof msg), 0);
    assert_int_equal(isd_sdm_write(&c, &o, b, msg, sizeof msg), 0);
    size_t la, lb;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(y);
    o.seed = 8;
    assert_int_equal(isd_sdm_write(&c, &o, b, msg, sizeof msg), 0);
    y = slurp(b, &lb);
    assert_int_equal(la, lb); /* same header and sizes ... */
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | x[i];
    assert_int_equal(hn % 8, 0); /* header padded: the data starts 8-byte aligned */
    assert_memory_equal(x, y, 8 + hn);
    assert_memory_not_equal(x + 8 + hn, y + 8 + hn, la - 8 - hn); /* ... other values */
    free(x);
    free(y);
    assert_int_equal(isd_sdm_write(&c, &o, "/nonexistent-dir/x.safetensors", msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "nonexistent-dir"));
    o.dtype = 7;
    assert_int_equal(isd_sdm_write(&c, &o, a, msg, sizeof msg), -1);
}

/* Weights ~N(0, 0.02), norm scales 1 +- 0.1, biases within +-0.05, nothing all-zero. */
static void initialisation(void **state)
{
    (void)state;
    struct isd_sdm_config c;
    struct isd_sdm_tensor *v;
    size_t n;
    isd_sdm_preset("tiny-sd1", &c);
    assert_int_equal(isd_sdm_tensors(&c, &v, &n), 0);
    float *x = malloc(2000000 * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        const struct isd_sdm_tensor *t = &v[i];
        size_t k = t->numel < 2000000 ? (size_t)t->numel : 2000000;
        isd_sdm_tensor_values(t, 3, 0, x, k);
        double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t j = 0; j < k; j++) {
            sum += x[j];
            sq += (double)x[j] * x[j];
            lo = fmin(lo, x[j]);
            hi = fmax(hi, x[j]);
        }
        assert_true(hi > lo); /* never constant, never all zero */
        const char *s = t->name;
        size_t len = strlen(s);
        int bias = len > 5 && strcmp(s + len - 5, ".bias") == 0;
        int is_norm = !bias && t->ndim == 1;
        if (bias) {
            assert_true(lo >= -0.05 && hi <= 0.05);
        } else if (is_norm) {
            assert_true(lo >= 0.9 && hi <= 1.1);
        } else if (k >= 4096) {
            double mean = sum / (double)k, sd = sqrt(sq / (double)k - mean * mean);
            double want = strstr(s, "position_embedding") ? 0.01 : 0.02;
            if (fabs(mean) > 0.1 * want || fabs(sd - want) > 0.05 * want)
                fail_msg("%s: mean %g sd %g", s, mean, sd);
        }
    }
    free(x);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(published_parameter_counts),
        cmocka_unit_test(sd15_block_facts),
        cmocka_unit_test(names_in_every_layout),
        cmocka_unit_test(deterministic_files),
        cmocka_unit_test(initialisation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
