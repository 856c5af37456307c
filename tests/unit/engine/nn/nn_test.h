/*
 * Shared helpers of the engine/nn and engine tests (header-only: each test_*.c is its own
 * binary): writing the tiny random-weight models the goldens were made from (the C writer of
 * tests/unit/support/sdmodel, same preset and seed) with the attention "sharpening" patch of
 * tests/reference/gen_nn.py, capturing named intermediates through the debug hook, and error
 * measures against the golden records (tests/goldens/engine/nn, "ISDGOLD1" records).
 */
#ifndef ISD_TEST_NN_TEST_H
#define ISD_TEST_NN_TEST_H

#include "support/test.h"

#include "engine/nn/nn.h"
#include "engine/sample/smp_golden.h"
#include "support/sdmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NN_GOLDEN_DIR "tests/goldens/engine/nn/"

static inline void *nn_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* ---- goldens ---- */

static inline void nn_golden_load(struct smp_golden *g, const char *file)
{
    char path[512];
    snprintf(path, sizeof path, NN_GOLDEN_DIR "%s", file);
    if (smp_golden_load(g, path) < 0)
        fail_msg("cannot load %s (run the tests from the repository root)", path);
}

static inline const struct smp_golden_rec *nn_rec(const struct smp_golden *g, const char *name)
{
    const struct smp_golden_rec *r = smp_golden_find(g, name);
    if (!r)
        fail_msg("golden record '%s' missing", name);
    return r;
}

/* A record as floats (malloc'd; count in *n if not NULL). */
static inline float *nn_rec_f32(const struct smp_golden *g, const char *name, size_t *n)
{
    const struct smp_golden_rec *r = nn_rec(g, name);
    float *v = nn_xmalloc(r->count * sizeof *v);
    for (size_t i = 0; i < r->count; i++)
        v[i] = (float)smp_golden_f64(r, i);
    if (n)
        *n = r->count;
    return v;
}

static inline int64_t nn_rec_i64(const struct smp_golden *g, const char *name, size_t i)
{
    const struct smp_golden_rec *r = nn_rec(g, name);
    assert_true(i < r->count);
    return (int64_t)smp_golden_f64(r, i);
}

/* ---- error measures ---- */

struct nn_diff {
    double rel_l2;  /* ||got - ref|| / ||ref|| */
    double max_abs; /* max |got - ref| */
    double max_ref; /* max |ref| */
};

static inline struct nn_diff nn_diff(const float *got, const struct smp_golden_rec *ref)
{
    double num = 0, den = 0;
    struct nn_diff d = {0, 0, 0};
    for (size_t i = 0; i < ref->count; i++) {
        double r = smp_golden_f64(ref, i), e = (double)got[i] - r;
        num += e * e;
        den += r * r;
        if (fabs(e) > d.max_abs || e != e)
            d.max_abs = e != e ? INFINITY : fabs(e);
        if (fabs(r) > d.max_ref)
            d.max_ref = fabs(r);
    }
    d.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    if (num != num)
        d.rel_l2 = INFINITY;
    return d;
}

/* Compares n values with golden `name`; prints the measure; fails above rel_l2 tol. */
static inline double nn_check(const struct smp_golden *g, const char *name, const float *got,
                              size_t n, double tol)
{
    const struct smp_golden_rec *r = nn_rec(g, name);
    if (r->count != n)
        fail_msg("%s: %zu values, golden has %llu", name, n, (unsigned long long)r->count);
    struct nn_diff d = nn_diff(got, r);
    printf("# %-34s rel-L2 %.2e  max|err| %.2e (max|ref| %.3g)  tol %.0e\n", name, d.rel_l2,
           d.max_abs, d.max_ref, tol);
    if (!(d.rel_l2 <= tol))
        fail_msg("%s: relative L2 error %.3e above %.1e", name, d.rel_l2, tol);
    return d.rel_l2;
}

/* ---- capturing the debug hook ---- */

#define NN_CAPTURE_MAX 64

struct nn_capture {
    int n;
    char name[NN_CAPTURE_MAX][48];
    float *data[NN_CAPTURE_MAX];
    size_t count[NN_CAPTURE_MAX];
    int shape[NN_CAPTURE_MAX][4];
};

static inline void nn_capture_hook(void *ctx, const char *name, const struct isd_nn_tensor *t)
{
    struct nn_capture *c = ctx;
    assert_true(c->n < NN_CAPTURE_MAX);
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    int k = c->n++;
    snprintf(c->name[k], sizeof c->name[k], "%s", name);
    c->data[k] = nn_xmalloc(n * sizeof(float));
    memcpy(c->data[k], t->data, n * sizeof(float));
    c->count[k] = n;
    for (int i = 0; i < 4; i++)
        c->shape[k][i] = i < t->ndim ? t->shape[i] : 1;
}

static inline void nn_capture_free(struct nn_capture *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->data[i]);
    memset(c, 0, sizeof *c);
}

static inline const float *nn_captured(const struct nn_capture *c, const char *name, size_t *n)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->name[i], name) == 0) {
            if (n)
                *n = c->count[i];
            return c->data[i];
        }
    fail_msg("intermediate '%s' was not reported by the debug hook", name);
    return NULL;
}

/* ---- the models ---- */

#define NN_SHARPEN 16.0 /* keep equal to SHARPEN in tests/reference/gen_nn.py */

static inline int nn_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The tensors gen_nn.py sharpens, in every layout's file names (LDM, diffusers, OpenCLIP). */
static inline size_t nn_sharpen_count(const char *name, size_t numel)
{
    static const char *const suffixes[] = {
        "attn1.to_q.weight",        "attn1.to_k.weight",         "attn2.to_q.weight",
        "attn2.to_k.weight",        "self_attn.q_proj.weight",   "self_attn.k_proj.weight",
        "mid.attn_1.q.weight",      "mid.attn_1.k.weight",       "attentions.0.to_q.weight",
        "attentions.0.to_k.weight", "attentions.0.query.weight", "attentions.0.key.weight"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (nn_ends_with(name, suffixes[i]))
            return numel;
    if (nn_ends_with(name, "attn.in_proj_weight"))
        return numel / 3 * 2; /* the q and k rows of OpenCLIP's fused [3C][C] */
    return 0;
}

/* Multiplies the sharpened tensors of one safetensors file by NN_SHARPEN, in place (exact in
 * every dtype: a power of two). */
static inline void nn_sharpen_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *buf = nn_xmalloc((size_t)len);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    struct isd_wt_st *st = NULL;
    struct isd_eng_error err = {0};
    if (isd_wt_st_parse(buf, (size_t)len, path, &st, &err) < 0)
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < isd_wt_st_count(st); i++) {
        const struct isd_wt_st_tensor *t = isd_wt_st_at(st, i);
        size_t n = nn_sharpen_count(t->name, t->numel);
        unsigned char *p = buf + ((const unsigned char *)t->data - buf);
        for (size_t j = 0; j < n; j++) {
            if (t->dtype == ISD_ENG_DT_F32) {
                float v;
                memcpy(&v, p + 4 * j, 4);
                v *= (float)NN_SHARPEN;
                memcpy(p + 4 * j, &v, 4);
            } else {
                uint16_t h;
                memcpy(&h, p + 2 * j, 2);
                int f16 = t->dtype == ISD_ENG_DT_F16;
                float v =
                    (f16 ? isd_eng_f16_to_f32(h) : isd_eng_bf16_to_f32(h)) * (float)NN_SHARPEN;
                h = f16 ? isd_eng_f32_to_f16(v) : isd_eng_f32_to_bf16(v);
                memcpy(p + 2 * j, &h, 2);
            }
        }
    }
    isd_wt_st_free(st);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, (size_t)len, f), (size_t)len);
    assert_int_equal(fclose(f), 0);
    free(buf);
}

static const char *const nn_dtype_names[] = {"f32", "f16", "bf16"};

/* One temporary directory per test binary (isd_test_tmpdir() replaces the previous one). */
static inline const char *nn_tmp(void)
{
    static char dir[4096];
    if (!dir[0])
        snprintf(dir, sizeof dir, "%s", isd_test_tmpdir());
    return dir;
}

/* Writes preset (seed, exact) in the given layout and dtype under the test's temporary
 * directory, sharpened as gen_nn.py does, and returns its path in `path`. */
static inline void nn_write_model(const char *preset, uint64_t seed, int layout, int dtype,
                                  int exact, char *path, size_t cap)
{
    struct isd_sdm_config cfg;
    struct isd_sdm_options o;
    char msg[512];
    assert_int_equal(isd_sdm_preset(preset, &cfg), 0);
    isd_sdm_options_init(&o);
    o.layout = layout;
    o.dtype = dtype;
    o.seed = seed;
    o.exact = exact;
    int len =
        snprintf(path, cap, "%s/%s-%llu-%s-%s-%d%s", nn_tmp(), preset, (unsigned long long)seed,
                 layout == ISD_SDM_DIFFUSERS ? "diff" : "single", nn_dtype_names[dtype], exact,
                 layout == ISD_SDM_DIFFUSERS ? "" : ".safetensors");
    assert_true(len > 0 && (size_t)len < cap);
    if (isd_sdm_write(&cfg, &o, path, msg, sizeof msg) < 0)
        fail_msg("write %s: %s", path, msg);
    if (layout == ISD_SDM_SINGLE) {
        nn_sharpen_file(path);
        return;
    }
    static const char *const parts[] = {"unet/diffusion_pytorch_model", "text_encoder/model",
                                        "vae/diffusion_pytorch_model"};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        int n = snprintf(p, sizeof p, "%s/%s%s.safetensors", path, parts[i],
                         dtype == ISD_SDM_F16 ? ".fp16" : "");
        assert_true(n > 0 && (size_t)n < sizeof p);
        nn_sharpen_file(p);
    }
}

static inline struct isd_wt_model *nn_open_model(const char *path)
{
    struct isd_wt_model *m = NULL;
    struct isd_eng_error err = {0};
    if (isd_wt_model_open(path, NULL, &m, &err) < 0)
        fail_msg("open %s: %s", path, err.msg);
    return m;
}

static inline struct isd_op_ctx *nn_ops(int threads)
{
    struct isd_op_ctx_params p = {.threads = threads};
    struct isd_eng_error err = {0};
    struct isd_op_ctx *ops = isd_op_ctx_new(&p, &err);
    if (!ops)
        fail_msg("ops: %s", err.msg);
    return ops;
}

#endif
