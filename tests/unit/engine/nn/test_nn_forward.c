/*
 * The runner contract of the networks: forward passes allocate nothing (every malloc in the
 * process is counted while they run: AddressSanitizer's allocator hooks under ASan, an
 * interposed malloc family otherwise), results do not depend on how often a runner is reused
 * nor on resident vs staged weights, the abort hook stops a pass, and bad shapes or mismatched
 * runners give clear errors.
 */
#include "nn_test.h"

#include <stdatomic.h>

static atomic_long allocs;
static atomic_int counting;

#if defined(__SANITIZE_ADDRESS__)
/* from <sanitizer/allocator_interface.h> (not shipped with gcc here; exported by libasan) */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (atomic_load(&counting))
        atomic_fetch_add(&allocs, 1);
}

static void on_free(const volatile void *p)
{
    (void)p;
}

static void install_counter(void)
{
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
/* glibc: the executable's malloc family wins over libc's; count and forward */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static void count(void)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocs, 1);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    count();
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t a, size_t n)
{
    count();
    return __libc_memalign(a, n);
}

int posix_memalign(void **p, size_t a, size_t n)
{
    count();
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}

void free(void *p)
{
    __libc_free(p);
}

static void install_counter(void)
{
}
#endif

static struct isd_op_ctx *ops;
static struct isd_wt_model *model;
static struct smp_golden golden;

static int setup(void **state)
{
    (void)state;
    char path[1024];
    install_counter();
    ops = nn_ops(2);
    nn_golden_load(&golden, "sd1.bin");
    nn_write_model("tiny-sd1", (uint64_t)nn_rec_i64(&golden, "seed", 0), ISD_SDM_SINGLE,
                   ISD_SDM_F16, 1, path, sizeof path); /* F16: every matrix is staged */
    model = nn_open_model(path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    isd_wt_model_free(model);
    isd_op_ctx_free(ops);
    smp_golden_free(&golden);
    return 0;
}

static long counted_begin(void)
{
    atomic_store(&allocs, 0);
    atomic_store(&counting, 1);
    return 0;
}

static long counted_end(void)
{
    atomic_store(&counting, 0);
    return atomic_load(&allocs);
}

static void test_no_allocation_in_forward(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    struct isd_nn_text *text = NULL;
    struct isd_nn_unet *unet = NULL;
    struct isd_nn_vae_dec *dec = NULL;
    struct isd_nn_vae_enc *enc = NULL;
    struct isd_nn_run *rt = NULL, *ru = NULL, *rd = NULL, *re = NULL;
    if (isd_nn_text_build(model, NULL, &text, &err) < 0 ||
        isd_nn_unet_build(model, NULL, &unet, &err) < 0 ||
        isd_nn_vae_dec_build(model, NULL, &dec, &err) < 0 ||
        isd_nn_vae_enc_build(model, NULL, &enc, &err) < 0 ||
        isd_nn_text_plan(text, ops, 2, &rt, &err) < 0 ||
        isd_nn_unet_plan(unet, ops, 2, 8, 6, 77, &ru, &err) < 0 ||
        isd_nn_vae_dec_plan(dec, ops, 1, 2, 3, &rd, &err) < 0 ||
        isd_nn_vae_enc_plan(enc, ops, 1, 16, 24, &re, &err) < 0)
        fail_msg("%s", err.msg);
    int32_t ids[2 * 77];
    for (int i = 0; i < 2 * 77; i++)
        ids[i] = (int32_t)nn_rec_i64(&golden, "input.ids", (size_t)i);
    float *x = nn_rec_f32(&golden, "input.unet.x", NULL),
          *t = nn_rec_f32(&golden, "input.unet.t", NULL);
    float *ctx = nn_rec_f32(&golden, "input.unet.context", NULL);
    float *z = nn_rec_f32(&golden, "input.vae.z", NULL),
          *img = nn_rec_f32(&golden, "input.vae.image", NULL);
    float *o_text = nn_xmalloc(2 * 77 * 32 * sizeof(float)), *o_unet = nn_xmalloc(384 * 4);
    float *o_img = nn_xmalloc(3 * 16 * 24 * 4), *o_lat = nn_xmalloc(24 * 4);
    float *first = nn_xmalloc(384 * 4);
    for (int pass = 0; pass < 3; pass++) { /* pass 0 warms OpenBLAS's own buffers up */
        long n;
        counted_begin();
        int rc = isd_nn_text_forward(text, rt, ids, o_text, NULL, &err);
        n = counted_end();
        assert_int_equal(rc, 0);
        if (pass > 0)
            assert_int_equal(n, 0);
        counted_begin();
        rc = isd_nn_unet_forward(unet, ru, x, t, ctx, o_unet, NULL, &err);
        n = counted_end();
        assert_int_equal(rc, 0);
        if (pass > 0)
            assert_int_equal(n, 0);
        counted_begin();
        rc = isd_nn_vae_dec_forward(dec, rd, z, o_img, NULL, &err);
        rc |= isd_nn_vae_enc_forward(enc, re, img, o_lat, NULL, &err);
        n = counted_end();
        assert_int_equal(rc, 0);
        if (pass > 0)
            assert_int_equal(n, 0);
        /* a runner gives the same result on every reuse */
        if (pass == 0)
            memcpy(first, o_unet, 384 * 4);
        else
            assert_memory_equal(first, o_unet, 384 * 4);
    }
    /* sanity: the allocation counter does count */
    counted_begin();
    void *volatile probe = malloc(16);
    long probe_count = counted_end();
    free(probe);
    assert_true(probe_count >= 1);
    nn_check(&golden, "unet.out", o_unet, 384, 2e-5);
    nn_check(&golden, "clip.final", o_text, 2 * 77 * 32, 2e-5);
    free(x);
    free(t);
    free(ctx);
    free(z);
    free(img);
    free(o_text);
    free(o_unet);
    free(o_img);
    free(o_lat);
    free(first);
    isd_nn_run_free(rt);
    isd_nn_run_free(ru);
    isd_nn_run_free(rd);
    isd_nn_run_free(re);
    isd_nn_text_free(text);
    isd_nn_unet_free(unet);
    isd_nn_vae_dec_free(dec);
    isd_nn_vae_enc_free(enc);
}

/* float32 copies of every weight (resident) give the same numbers as per-use staging */
static void test_resident_equals_staged(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    struct isd_nn_options o;
    isd_nn_options_init(&o);
    float *x = nn_rec_f32(&golden, "input.unet.x", NULL),
          *t = nn_rec_f32(&golden, "input.unet.t", NULL);
    float *ctx = nn_rec_f32(&golden, "input.unet.context", NULL);
    float out[2][384];
    for (int r = 0; r < 2; r++) {
        struct isd_nn_unet *u = NULL;
        struct isd_nn_run *run = NULL;
        o.resident = r;
        if (isd_nn_unet_build(model, &o, &u, &err) < 0 ||
            isd_nn_unet_plan(u, ops, 2, 8, 6, 77, &run, &err) < 0 ||
            isd_nn_unet_forward(u, run, x, t, ctx, out[r], NULL, &err) < 0)
            fail_msg("%s", err.msg);
        isd_nn_run_free(run);
        isd_nn_unet_free(u);
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    free(x);
    free(t);
    free(ctx);
}

struct abort_after {
    int polls, limit;
};

static int abort_hook(void *ctx)
{
    struct abort_after *a = ctx;
    return ++a->polls > a->limit;
}

static void test_abort_between_blocks(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    struct isd_nn_unet *u = NULL;
    struct isd_nn_run *run = NULL;
    if (isd_nn_unet_build(model, NULL, &u, &err) < 0 ||
        isd_nn_unet_plan(u, ops, 1, 8, 8, 77, &run, &err) < 0)
        fail_msg("%s", err.msg);
    float x[4 * 64] = {0}, t = 500, ctx[77 * 32] = {0}, out[4 * 64];
    struct abort_after a = {0, 1 << 30};
    struct isd_nn_hooks h = {.abort = abort_hook, .ctx = &a};
    assert_int_equal(isd_nn_unet_forward(u, run, x, &t, ctx, out, &h, &err), 0);
    int polls = a.polls; /* one per block */
    assert_true(polls >= 9);
    for (int limit = 0; limit < polls; limit += 3) {
        a = (struct abort_after){0, limit};
        assert_int_equal(isd_nn_unet_forward(u, run, x, &t, ctx, out, &h, &err),
                         ISD_ENG_ECANCELLED);
        assert_int_equal(a.polls, limit + 1); /* stopped at the first nonzero poll */
    }
    isd_nn_run_free(run);
    isd_nn_unet_free(u);
}

static void test_bad_shapes(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    struct isd_nn_unet *u = NULL;
    struct isd_nn_text *text = NULL;
    struct isd_nn_vae_dec *dec = NULL;
    struct isd_nn_vae_enc *enc = NULL;
    struct isd_nn_run *run = NULL, *rt = NULL;
    assert_int_equal(isd_nn_unet_build(model, NULL, &u, &err), 0);
    assert_int_equal(isd_nn_text_build(model, NULL, &text, &err), 0);
    assert_int_equal(isd_nn_vae_dec_build(model, NULL, &dec, &err), 0);
    assert_int_equal(isd_nn_vae_enc_build(model, NULL, &enc, &err), 0);
    assert_int_equal(isd_nn_unet_size_multiple(u), 2);
    assert_int_equal(isd_nn_unet_plan(u, ops, 1, 7, 8, 77, &run, &err), ISD_ENG_EINVAL);
    assert_non_null(strstr(err.msg, "multiple of 2"));
    assert_null(run);
    assert_int_equal(isd_nn_unet_plan(u, ops, 0, 8, 8, 77, &run, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_nn_unet_plan(u, ops, ISD_NN_BATCH_MAX + 1, 8, 8, 77, &run, &err),
                     ISD_ENG_EINVAL);
    assert_int_equal(isd_nn_unet_plan(u, ops, 1, 8, 8, 0, &run, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_nn_unet_plan(u, ops, 1, 0, 8, 77, &run, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_nn_vae_enc_plan(enc, ops, 1, 20, 24, &run, &err), ISD_ENG_EINVAL);
    assert_non_null(strstr(err.msg, "multiple of 8"));
    assert_int_equal(isd_nn_vae_dec_plan(dec, ops, 1, 0, 3, &run, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_nn_text_plan(text, ops, 0, &run, &err), ISD_ENG_EINVAL);
    /* a runner planned for another network */
    assert_int_equal(isd_nn_text_plan(text, ops, 1, &rt, &err), 0);
    float x[4 * 64] = {0}, t = 1, ctx[77 * 32] = {0}, out[77 * 32];
    assert_int_equal(isd_nn_unet_forward(u, rt, x, &t, ctx, out, NULL, &err), ISD_ENG_EINVAL);
    assert_non_null(strstr(err.msg, "another network"));
    /* token ids outside the vocabulary */
    int32_t ids[77];
    for (int i = 0; i < 77; i++)
        ids[i] = i == 5 ? 49408 : 49407;
    assert_int_equal(isd_nn_text_forward(text, rt, ids, out, NULL, &err), ISD_ENG_EINVAL);
    assert_non_null(strstr(err.msg, "token id 49408"));
    ids[5] = -1;
    assert_int_equal(isd_nn_text_forward(text, rt, ids, out, NULL, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_nn_text_forward(text, rt, NULL, out, NULL, &err), ISD_ENG_EINVAL);
    isd_nn_run_free(rt);
    isd_nn_run_free(NULL);
    isd_nn_unet_free(u);
    isd_nn_text_free(text);
    isd_nn_vae_dec_free(dec);
    isd_nn_vae_enc_free(enc);
    isd_nn_unet_free(NULL);
}

/* networks of components the model was not opened with do not build (the weights module
 * validated only the components it was asked for) */
static void test_build_errors(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    struct isd_wt_options wo;
    struct isd_wt_model *m = NULL;
    struct isd_nn_unet *u = NULL;
    struct isd_nn_text *t = NULL;
    struct isd_nn_vae_dec *d = NULL;
    char path[1024];
    nn_write_model("tiny-sd1", 5, ISD_SDM_SINGLE, ISD_SDM_F32, 0, path, sizeof path);
    isd_wt_options_init(&wo);
    wo.components = ISD_WT_UNET;
    if (isd_wt_model_open(path, &wo, &m, &err) < 0)
        fail_msg("open: %s", err.msg);
    assert_int_equal(isd_nn_text_build(m, NULL, &t, &err), ISD_ENG_EUNSUPPORTED);
    assert_null(t);
    assert_int_equal(isd_nn_vae_dec_build(m, NULL, &d, &err), ISD_ENG_EUNSUPPORTED);
    assert_null(d);
    assert_int_equal(isd_nn_unet_build(m, NULL, &u, &err), 0);
    isd_nn_unet_free(u);
    isd_wt_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_allocation_in_forward),
        cmocka_unit_test(test_resident_equals_staged),
        cmocka_unit_test(test_abort_between_blocks),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_build_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
