/*
 * Shared helpers of the engine/ops unit tests (header-only: each test_*.c is its own binary):
 * the golden-file reader (format: tests/reference/README.md, "engine/ops goldens"),
 * deterministic random arrays, error measures with a printed diagnosis, and contexts for every
 * implementation this CPU can run (reference, fast with scalar/AVX2/AVX-512 kernels).
 */
#ifndef ISD_TEST_OPS_TEST_H
#define ISD_TEST_OPS_TEST_H

#include "support/test.h"

#include "engine/ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_DIR        "tests/goldens/engine/ops"
#define GOLDEN_MAX_ARRAYS 32

/* ---- allocation that fails the test instead of returning NULL ---- */

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* ---- golden files ---- */

struct golden_array {
    char name[64];
    char kind; /* 'f' float32, 'd' float64, 'i' int32 */
    int ndim;
    unsigned dims[8];
    size_t count;
    void *data; /* aligned copy, owned by the golden */
};

struct golden {
    char path[512];
    int n;
    struct golden_array a[GOLDEN_MAX_ARRAYS];
};

static inline uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Loads GOLDEN_DIR/<name>.bin (the directory can be overridden with ISD_GOLDEN_DIR). */
static inline void golden_load(struct golden *g, const char *name)
{
    const char *dir = getenv("ISD_GOLDEN_DIR");
    memset(g, 0, sizeof *g);
    snprintf(g->path, sizeof g->path, "%s/%s.bin", dir ? dir : GOLDEN_DIR, name);
    FILE *f = fopen(g->path, "rb");
    if (!f)
        fail_msg("cannot open golden %s (run the tests from the repository root)", g->path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(size > 12);
    unsigned char *buf = xmalloc((size_t)size);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    assert_memory_equal(buf, "ISDOPSG1", 8);
    size_t off = 12, end = (size_t)size;
    g->n = (int)rd_u32(buf + 8);
    assert_true(g->n > 0 && g->n <= GOLDEN_MAX_ARRAYS);
    for (int i = 0; i < g->n; i++) {
        struct golden_array *a = &g->a[i];
        assert_true(off + 2 <= end);
        size_t len = (size_t)buf[off] | (size_t)buf[off + 1] << 8;
        off += 2;
        assert_true(len < sizeof a->name && off + len + 2 <= end);
        memcpy(a->name, buf + off, len);
        off += len;
        a->kind = (char)buf[off];
        a->ndim = buf[off + 1];
        off += 2;
        assert_true(a->ndim <= 8 && off + 4 * (size_t)a->ndim <= end);
        a->count = 1;
        for (int d = 0; d < a->ndim; d++) {
            a->dims[d] = rd_u32(buf + off);
            a->count *= a->dims[d];
            off += 4;
        }
        size_t esize = a->kind == 'd' ? 8 : 4;
        assert_true(a->kind == 'f' || a->kind == 'd' || a->kind == 'i');
        assert_true(off + a->count * esize <= end);
        a->data = xmalloc(a->count * esize);
        memcpy(a->data, buf + off, a->count * esize); /* little-endian host assumed (x86) */
        off += a->count * esize;
    }
    assert_int_equal(off, end);
    free(buf);
}

static inline void golden_free(struct golden *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->a[i].data);
    g->n = 0;
}

static inline const struct golden_array *golden_find(const struct golden *g, const char *name,
                                                     char kind)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->a[i].name, name) == 0) {
            if (g->a[i].kind != kind)
                fail_msg("%s: array %s has kind %c, expected %c", g->path, name, g->a[i].kind,
                         kind);
            return &g->a[i];
        }
    fail_msg("%s: no array %s", g->path, name);
    return NULL;
}

static inline const float *golden_f32(const struct golden *g, const char *name, size_t *n)
{
    const struct golden_array *a = golden_find(g, name, 'f');
    if (n)
        *n = a->count;
    return a->data;
}

static inline const double *golden_f64(const struct golden *g, const char *name, size_t *n)
{
    const struct golden_array *a = golden_find(g, name, 'd');
    if (n)
        *n = a->count;
    return a->data;
}

static inline const int32_t *golden_i32(const struct golden *g, const char *name, size_t *n)
{
    const struct golden_array *a = golden_find(g, name, 'i');
    if (n)
        *n = a->count;
    return a->data;
}

/* ---- deterministic random data (xorshift64, uniform in [-scale, scale)) ---- */

static inline float *rand_array(size_t n, float scale, uint64_t seed)
{
    float *p = xmalloc(n * sizeof *p);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = scale * (float)((double)(s >> 40) / 16777216.0 * 2.0 - 1.0);
    }
    return p;
}

static inline float *copy_array(const float *src, size_t n)
{
    float *p = xmalloc(n * sizeof *p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static inline double *widen(const float *x, size_t n)
{
    double *p = xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = x[i];
    return p;
}

/* ---- error measures ---- */

struct err_stats {
    double max_abs;   /* max |got - ref| */
    double max_ref;   /* max |ref| */
    double rel_l2;    /* ||got - ref|| / ||ref|| */
    size_t worst;     /* index of max_abs */
    size_t nonfinite; /* got is NaN/Inf where ref is finite */
};

static inline struct err_stats err_stats(const float *got, const double *ref, size_t n)
{
    struct err_stats s = {0};
    double e2 = 0.0, r2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = ref[i], e = fabs((double)got[i] - r);
        if (!isfinite((double)got[i]) && isfinite(r))
            s.nonfinite++;
        if (e > s.max_abs || (isnan(e) && !isnan(s.max_abs))) {
            s.max_abs = e;
            s.worst = i;
        }
        s.max_ref = fmax(s.max_ref, fabs(r));
        e2 += e * e;
        r2 += r * r;
    }
    s.rel_l2 = r2 > 0.0 ? sqrt(e2 / r2) : sqrt(e2);
    return s;
}

/* Element-wise: max|err| <= rel * max|ref| + abs_tol. */
static inline void check_elementwise(const char *what, const float *got, const double *ref,
                                     size_t n, double rel, double abs_tol)
{
    struct err_stats s = err_stats(got, ref, n);
    double bound = rel * s.max_ref + abs_tol;
    if (getenv("ISD_TEST_VERBOSE"))
        printf("# %-50s rel L2 %.2e  max|err| %.2e  max|ref| %.2e  (bound %.2e)\n", what, s.rel_l2,
               s.max_abs, s.max_ref, bound);
    if (s.nonfinite || !(s.max_abs <= bound))
        fail_msg("%s: max|err| %.3g at [%zu] (got %.9g, ref %.9g) > %.3g (max|ref| %.3g), "
                 "%zu non-finite",
                 what, s.max_abs, s.worst, (double)got[s.worst], ref[s.worst], bound, s.max_ref,
                 s.nonfinite);
}

/* Reductions/GEMMs: relative L2 error <= rel_l2 and element-wise max|err| <= rel * max|ref| +
 * abs_tol. */
static inline void check_gemm_like(const char *what, const float *got, const double *ref, size_t n,
                                   double rel_l2, double rel, double abs_tol)
{
    struct err_stats s = err_stats(got, ref, n);
    if (s.nonfinite || !(s.rel_l2 <= rel_l2))
        fail_msg("%s: rel L2 %.3g > %.3g (max|err| %.3g at [%zu], %zu non-finite)", what, s.rel_l2,
                 rel_l2, s.max_abs, s.worst, s.nonfinite);
    check_elementwise(what, got, ref, n, rel, abs_tol);
}

/* The reference path against float64 truth: every element is the truth rounded to float, up to
 * one ulp (2^-23 relative) plus 1e-10 * max|ref| for results that cancel to ~0. */
static inline void check_rounded(const char *what, const float *got, const double *ref, size_t n)
{
    struct err_stats s = err_stats(got, ref, n);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        double bound = ldexp(fabs(ref[i]), -23) + 1e-10 * s.max_ref;
        if (!(e <= bound))
            fail_msg("%s: [%zu] got %.9g, ref %.17g: err %.3g > %.3g", what, i, (double)got[i],
                     ref[i], e, bound);
    }
}

/* ---- contexts ---- */

static inline struct isd_op_ctx *ctx_new(int threads, int reference, int isa)
{
    struct isd_eng_error err = {0};
    struct isd_op_ctx_params p = {.threads = threads, .reference = reference, .isa = isa};
    struct isd_op_ctx *ctx = isd_op_ctx_new(&p, &err);
    if (!ctx)
        fail_msg("isd_op_ctx_new(threads %d, reference %d, isa %d): %s", threads, reference, isa,
                 err.msg);
    return ctx;
}

/* A fast-path ctx made with the environment variable ISD_OPS_WINOGRAD set to mode ("0": 3x3
 * convs always on im2col, "all": always on Winograd); the variable is restored afterwards. */
static inline struct isd_op_ctx *ctx_new_winograd(int threads, const char *mode)
{
    const char *old = getenv("ISD_OPS_WINOGRAD");
    char *saved = old ? strdup(old) : NULL;
    setenv("ISD_OPS_WINOGRAD", mode, 1);
    struct isd_op_ctx *ctx = ctx_new(threads, 0, 0);
    if (saved)
        setenv("ISD_OPS_WINOGRAD", saved, 1);
    else
        unsetenv("ISD_OPS_WINOGRAD");
    free(saved);
    return ctx;
}

/* Is this ISA available here? (ctx creation fails with EUNSUPPORTED otherwise) */
static inline int isa_available(int isa)
{
    struct isd_eng_error err = {0};
    struct isd_op_ctx_params p = {.threads = 1, .isa = isa};
    struct isd_op_ctx *ctx = isd_op_ctx_new(&p, &err);
    if (!ctx) {
        assert_int_equal(err.code, ISD_ENG_EUNSUPPORTED);
        return 0;
    }
    isd_op_ctx_free(ctx);
    return 1;
}

/* Workspace of exactly `bytes` (so ASan flags any overrun); never NULL. */
static inline void *ws_alloc(size_t bytes)
{
    return xmalloc(bytes);
}

#endif
