/*
 * The engine API end to end on the tiny models: whole txt2img runs against the PyTorch
 * reference (tests/reference/gen_nn.py, traj.bin: tokenizer -> text encoder -> k-diffusion
 * sampler with CFG 7.5 -> VAE -> 8 bits; within +-1 LSB per pixel), layouts and dtypes giving
 * identical images, img2img and masks (exact identities), hooks (progress, preview, abort
 * within one step), concurrent generations, and the errors of bad requests.
 */
#include "engine/nn/nn_test.h"

#include "engine/engine.h"
#include "engine/tok/tok.h"
#include "support/clipvocab.h"

#include <pthread.h>
#include <sys/stat.h>

static struct smp_golden traj;
static char vocab_dir[4096];
static char sd1_path[1024], sd2_path[1024];
static struct isd_engine *sd1, *sd2;

#define TRAJ_PROMPT "a photograph of an astronaut riding a horse, 8k"

static struct isd_engine *load(const char *model, int threads)
{
    struct isd_engine_options o;
    struct isd_engine *e = NULL;
    struct isd_eng_error err = {0};
    isd_engine_options_init(&o);
    o.model = model;
    o.tokenizer = vocab_dir;
    o.threads = threads;
    if (isd_engine_load(&o, &e, &err) < 0)
        fail_msg("load %s: %s", model, err.msg);
    return e;
}

static int setup(void **state)
{
    (void)state;
    struct isd_eng_error err = {0};
    nn_golden_load(&traj, "traj.bin");
    int n = snprintf(vocab_dir, sizeof vocab_dir, "%s/vocab", nn_tmp());
    assert_true(n > 0 && (size_t)n < sizeof vocab_dir);
    assert_int_equal(mkdir(vocab_dir, 0700), 0);
    if (isd_cv_write(vocab_dir, ISD_CV_FULL, (uint64_t)smp_golden_f64(nn_rec(&traj, "params"), 5),
                     &err) < 0)
        fail_msg("vocab: %s", err.msg);
    nn_write_model("tiny-sd1", (uint64_t)nn_rec_i64(&traj, "sd1 seed", 0), ISD_SDM_SINGLE,
                   ISD_SDM_F32, 1, sd1_path, sizeof sd1_path);
    nn_write_model("tiny-sd2", (uint64_t)nn_rec_i64(&traj, "sd2 seed", 0), ISD_SDM_SINGLE,
                   ISD_SDM_F32, 1, sd2_path, sizeof sd2_path);
    sd1 = load(sd1_path, 2);
    sd2 = load(sd2_path, 2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    isd_engine_free(sd1);
    isd_engine_free(sd2);
    smp_golden_free(&traj);
    return 0;
}

static void traj_request(struct isd_engine_request *rq, const char *sampler, const char *sched)
{
    const struct smp_golden_rec *p = nn_rec(&traj, "params");
    isd_engine_request_init(rq);
    rq->prompt = TRAJ_PROMPT;
    rq->negative_prompt = "";
    rq->width = (int)smp_golden_f64(p, 0);
    rq->height = (int)smp_golden_f64(p, 1);
    rq->steps = (int)smp_golden_f64(p, 2);
    rq->guidance = smp_golden_f64(p, 3);
    rq->seed = (uint64_t)smp_golden_f64(p, 4);
    rq->sampler = sampler;
    rq->scheduler = sched;
}

/* records every hook call */
struct record {
    int progress, preview, last_step, steps, images;
    int abort_after; /* > 0: abort once this many progress calls happened */
    int abort_polls;
    float last[4 * 64 * 64];
    size_t last_n;
};

static void rec_progress(void *ctx, int image, int step, int steps)
{
    struct record *r = ctx;
    assert_int_equal(step, r->progress % steps + 1); /* in order, 1..steps per image */
    assert_int_equal(image, r->progress / steps);
    r->progress++;
    r->last_step = step;
    r->steps = steps;
    r->images = image + 1;
}

static void rec_preview(void *ctx, int image, int step, int steps, const float *latent, int c,
                        int h, int w)
{
    struct record *r = ctx;
    (void)image;
    (void)step;
    (void)steps;
    r->preview++;
    r->last_n = (size_t)c * h * w;
    assert_true(r->last_n <= sizeof r->last / sizeof r->last[0]);
    memcpy(r->last, latent, r->last_n * sizeof *latent);
}

static int rec_abort(void *ctx)
{
    struct record *r = ctx;
    r->abort_polls++;
    return r->abort_after > 0 && r->progress >= r->abort_after;
}

static void generate_ok(struct isd_engine *e, const struct isd_engine_request *rq,
                        struct record *rec, struct isd_engine_result *res)
{
    struct isd_engine_hooks h = {rec_progress, rec_abort, rec_preview, rec};
    struct isd_eng_error err = {0};
    if (isd_engine_generate(e, rq, rec ? &h : NULL, res, &err) < 0)
        fail_msg("generate: %s", err.msg);
    assert_int_equal(res->count, rq->batch_count);
    assert_int_equal(res->width, rq->width);
    assert_int_equal(res->height, rq->height);
}

/* the prompt's tokens and context as the reference made them */
static void check_text(struct isd_engine *e, const char *fam)
{
    struct isd_tok *tok = NULL;
    struct isd_eng_error err = {0};
    char vocab[4200], merges[4200], key[64];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", vocab_dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", vocab_dir);
    assert_int_equal(isd_tok_load(&tok, vocab, merges, &err), 0);
    const struct isd_wt_config *cfg = isd_engine_config(e);
    int32_t ids[2][77];
    isd_tok_encode_padded(tok, TRAJ_PROMPT, strlen(TRAJ_PROMPT), cfg->text.pad_id, ids[0], NULL,
                          &err);
    isd_tok_encode_padded(tok, "", 0, cfg->text.pad_id, ids[1], NULL, &err);
    snprintf(key, sizeof key, "%s ids", fam);
    for (int i = 0; i < 2 * 77; i++)
        assert_int_equal(ids[i / 77][i % 77], nn_rec_i64(&traj, key, (size_t)i));
    isd_tok_free(tok);
}

static void run_traj(struct isd_engine *e, const char *fam, const char *sampler, const char *sched)
{
    struct isd_engine_request rq;
    struct isd_engine_result res;
    struct record rec = {0};
    char key[96];
    traj_request(&rq, sampler, sched);
    check_text(e, fam);
    generate_ok(e, &rq, &rec, &res);
    assert_int_equal(rec.progress, rq.steps);
    assert_int_equal(rec.preview, rq.steps);
    /* the last step ends at sigma 0, where euler and dpm++2m return the denoised estimate:
     * the last preview is the final latent */
    snprintf(key, sizeof key, "%s %s %s latents", fam, sampler, sched);
    const struct smp_golden_rec *lat = nn_rec(&traj, key);
    assert_int_equal(lat->count, (size_t)rq.steps * rec.last_n);
    struct smp_golden_rec last = *lat;
    last.count = rec.last_n;
    last.data = (const unsigned char *)lat->data + (size_t)(rq.steps - 1) * rec.last_n * 4;
    struct nn_diff d = nn_diff(rec.last, &last);
    printf("# %s %s %s: final latent rel-L2 %.2e\n", fam, sampler, sched, d.rel_l2);
    assert_true(d.rel_l2 < 1e-4);
    snprintf(key, sizeof key, "%s %s %s rgb", fam, sampler, sched);
    const struct smp_golden_rec *rgb = nn_rec(&traj, key);
    size_t n = (size_t)3 * rq.width * rq.height;
    assert_int_equal(rgb->count, n);
    int worst = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        int diff = abs((int)res.rgb[i] - (int)smp_golden_u64(rgb, i));
        worst = diff > worst ? diff : worst;
        off += diff != 0;
    }
    printf("# %s %s %s: 8-bit image max |diff| %d LSB, %d of %zu values differ\n", fam, sampler,
           sched, worst, off, n);
    assert_true(worst <= 1);
    isd_engine_result_release(&res);
}

static void test_txt2img_sd1_euler(void **state)
{
    (void)state;
    run_traj(sd1, "sd1", "euler", "discrete");
}

static void test_txt2img_sd1_dpmpp(void **state)
{
    (void)state;
    run_traj(sd1, "sd1", "dpm++2m", "karras");
}

static void test_txt2img_sd2_euler(void **state)
{
    (void)state;
    assert_int_equal(isd_engine_config(sd2)->prediction, ISD_WT_PRED_V);
    assert_int_equal(isd_engine_config(sd2)->text.pad_id, 0);
    run_traj(sd2, "sd2", "euler", "discrete");
}

static void test_txt2img_sd2_dpmpp(void **state)
{
    (void)state;
    run_traj(sd2, "sd2", "dpm++2m", "karras");
}

/* a small, fast request on tiny-sd1 */
static void small_request(struct isd_engine_request *rq)
{
    isd_engine_request_init(rq);
    rq->prompt = "a red cube";
    rq->negative_prompt = "blurry";
    rq->width = 32;
    rq->height = 48;
    rq->steps = 3;
    rq->seed = 7;
    rq->sampler = "euler_a";
}

static void test_hooks(void **state)
{
    (void)state;
    struct isd_engine_request rq;
    struct isd_engine_result res;
    struct record rec = {0};
    small_request(&rq);
    rq.batch_count = 2;
    generate_ok(sd1, &rq, &rec, &res);
    assert_int_equal(rec.progress, 2 * rq.steps);
    assert_int_equal(rec.preview, 2 * rq.steps);
    assert_int_equal(rec.images, 2);
    assert_int_equal(rec.last_n, (size_t)4 * 4 * 6);
    assert_true(rec.abort_polls > 2 * rq.steps); /* also polled inside the networks */
    /* image 1 is image 0 of the request with seed + 1 */
    struct isd_engine_result one;
    rq.batch_count = 1;
    rq.seed = 8;
    generate_ok(sd1, &rq, NULL, &one);
    size_t bytes = (size_t)3 * rq.width * rq.height;
    assert_memory_equal(one.rgb, res.rgb + bytes, bytes);
    assert_memory_not_equal(res.rgb, res.rgb + bytes, bytes);
    isd_engine_result_release(&one);
    isd_engine_result_release(&res);
}

/* abort requested during step k: the engine stops within that step */
static void test_abort(void **state)
{
    (void)state;
    struct isd_engine_request rq;
    struct isd_engine_result res;
    struct isd_eng_error err = {0};
    small_request(&rq);
    rq.steps = 6;
    for (int k = 1; k <= 3; k++) {
        struct record rec = {.abort_after = k};
        struct isd_engine_hooks h = {rec_progress, rec_abort, rec_preview, &rec};
        int rc = isd_engine_generate(sd1, &rq, &h, &res, &err);
        assert_int_equal(rc, ISD_ENG_ECANCELLED);
        assert_int_equal(err.code, ISD_ENG_ECANCELLED);
        assert_int_equal(rec.progress, k);
        assert_null(res.rgb);
        assert_int_equal(res.count, 0);
    }
}

static int abort_always(void *ctx)
{
    (void)ctx;
    return 1;
}

static void test_abort_immediately(void **state)
{
    (void)state;
    struct isd_engine_request rq;
    struct isd_engine_result res;
    struct isd_eng_error err = {0};
    struct record rec = {0};
    struct isd_engine_hooks h = {rec_progress, abort_always, NULL, &rec};
    small_request(&rq);
    assert_int_equal(isd_engine_generate(sd1, &rq, &h, &res, &err), ISD_ENG_ECANCELLED);
    assert_int_equal(rec.progress, 0);
}

static void expect_einval(struct isd_engine_request *rq, const char *needle)
{
    struct isd_engine_result res;
    struct isd_eng_error err = {0};
    int rc = isd_engine_generate(sd1, rq, NULL, &res, &err);
    if (rc != ISD_ENG_EINVAL || !strstr(err.msg, needle))
        fail_msg("expected EINVAL with '%s', got %d '%s'", needle, rc, err.msg);
    assert_null(res.rgb);
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct isd_engine_request rq;
    uint8_t img[32 * 48 * 3] = {0}, mask[32 * 48] = {0};
    small_request(&rq);
    rq.width = 36;
    expect_einval(&rq, "multiples of 8");
    small_request(&rq);
    rq.height = 40; /* a multiple of 8, not of 16 (the tiny UNet downsamples once) */
    expect_einval(&rq, "multiples of 16");
    small_request(&rq);
    rq.width = 0;
    expect_einval(&rq, "size");
    small_request(&rq);
    rq.width = 4096;
    expect_einval(&rq, "size");
    small_request(&rq);
    rq.steps = 0;
    expect_einval(&rq, "steps");
    small_request(&rq);
    rq.steps = 100000;
    expect_einval(&rq, "steps");
    small_request(&rq);
    rq.sampler = "ddim";
    expect_einval(&rq, "unknown sampler 'ddim'");
    small_request(&rq);
    rq.scheduler = "cosine";
    expect_einval(&rq, "unknown scheduler 'cosine'");
    small_request(&rq);
    rq.guidance = NAN;
    expect_einval(&rq, "guidance");
    small_request(&rq);
    rq.batch_count = 0;
    expect_einval(&rq, "batch");
    small_request(&rq);
    rq.batch_count = ISD_ENGINE_BATCH_MAX + 1;
    expect_einval(&rq, "batch");
    small_request(&rq);
    rq.mask = mask;
    expect_einval(&rq, "mask needs an init image");
    small_request(&rq);
    rq.init_rgb = img;
    rq.strength = 0;
    expect_einval(&rq, "strength");
    small_request(&rq);
    rq.sampler = "lcm";
    rq.scheduler = "lcm";
    rq.steps = 51;
    struct isd_engine_result res;
    struct isd_eng_error err = {0};
    assert_int_equal(isd_engine_generate(sd1, &rq, NULL, &res, &err), ISD_ENG_EINVAL);
    assert_int_equal(isd_engine_generate(NULL, &rq, NULL, &res, &err), ISD_ENG_EINVAL);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct isd_engine_options o;
    struct isd_engine *e = NULL;
    struct isd_eng_error err = {0};
    isd_engine_options_init(&o);
    assert_int_equal(isd_engine_load(&o, &e, &err), ISD_ENG_EINVAL); /* no model */
    o.model = sd1_path;                                              /* no tokenizer */
    assert_int_equal(isd_engine_load(&o, &e, &err), ISD_ENG_EMISSING);
    assert_non_null(strstr(err.msg, "tokenizer"));
    o.model = "/nonexistent/model.safetensors";
    o.tokenizer = vocab_dir;
    assert_true(isd_engine_load(&o, &e, &err) < 0);
    assert_null(e);
    o.model = sd1_path;
    o.prediction = 7;
    assert_int_equal(isd_engine_load(&o, &e, &err), ISD_ENG_EINVAL);
}

static void generate_on(const char *path, const struct isd_engine_request *rq, uint8_t *out)
{
    struct isd_engine *e = load(path, 2);
    struct isd_engine_result res;
    generate_ok(e, rq, NULL, &res);
    memcpy(out, res.rgb, (size_t)3 * rq->width * rq->height);
    isd_engine_result_release(&res);
    isd_engine_free(e);
}

/* Every layout and dtype of an --exact model holds the same float32 weights: text encoder,
 * UNet, VAE encoder and decoder must then give bit-identical images. */
static void test_layouts_and_dtypes(void **state)
{
    (void)state;
    struct isd_engine_request rq;
    small_request(&rq);
    size_t n = (size_t)3 * rq.width * rq.height;
    uint8_t *init = nn_xmalloc(n), *ref = nn_xmalloc(n), *got = nn_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        init[i] = (uint8_t)(i * 37 % 251);
    rq.init_rgb = init; /* img2img: the VAE encoder takes part too */
    rq.strength = 0.7;
    generate_on(sd1_path, &rq, ref);
    uint64_t seed = (uint64_t)nn_rec_i64(&traj, "sd1 seed", 0);
    for (int layout = 0; layout < 2; layout++)
        for (int dt = 0; dt < 3; dt++) {
            if (layout == ISD_SDM_SINGLE && dt == ISD_SDM_F32)
                continue;
            char path[1024];
            nn_write_model("tiny-sd1", seed, layout, dt, 1, path, sizeof path);
            generate_on(path, &rq, got);
            printf("# %s %s: %s\n", layout ? "diffusers" : "single", nn_dtype_names[dt],
                   memcmp(ref, got, n) ? "DIFFERENT" : "identical");
            assert_memory_equal(ref, got, n);
        }
    free(init);
    free(ref);
    free(got);
}

/* img2img and masks, by identities that need no reference:
 *  - mask all 0 (keep everything): blending resets the latent to the init latent after the
 *    last step, so the result is decode(encode(init));
 *  - mask all 255 (repaint everything) is img2img without a mask;
 *  - the steps that run are the last floor(steps * strength). */
static void test_img2img_and_mask(void **state)
{
    (void)state;
    struct isd_engine_request rq;
    struct isd_engine_result a, b, c;
    struct isd_eng_error err = {0};
    struct record rec = {0};
    small_request(&rq);
    rq.steps = 8;
    size_t npix = (size_t)rq.width * rq.height, n = 3 * npix;
    uint8_t *init = nn_xmalloc(n), *keep = nn_xmalloc(npix), *all = nn_xmalloc(npix);
    uint8_t *round = nn_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        init[i] = (uint8_t)(128 + 100 * sin(0.05 * (double)i));
    memset(keep, 0, npix);
    memset(all, 255, npix);
    rq.init_rgb = init;
    rq.strength = 0.5;
    generate_ok(sd1, &rq, &rec, &a);
    assert_int_equal(rec.progress, 4);
    assert_int_equal(rec.steps, 4);
    rq.mask = all;
    generate_ok(sd1, &rq, NULL, &b);
    assert_memory_equal(a.rgb, b.rgb, n);
    rq.mask = keep;
    generate_ok(sd1, &rq, NULL, &c);
    float lat[4 * 6 * 4];
    assert_int_equal(isd_engine_encode_image(sd1, NULL, init, rq.width, rq.height, lat, &err),
                     ISD_ENG_EINVAL); /* NULL ops */
    struct isd_op_ctx *ops = nn_ops(1);
    assert_int_equal(isd_engine_encode_image(sd1, ops, init, rq.width, rq.height, lat, &err), 0);
    assert_int_equal(
        isd_engine_decode_latent(sd1, ops, lat, rq.height / 8, rq.width / 8, round, &err), 0);
    int worst = 0;
    for (size_t i = 0; i < n; i++)
        worst =
            abs((int)c.rgb[i] - (int)round[i]) > worst ? abs((int)c.rgb[i] - (int)round[i]) : worst;
    printf("# mask 0: max |result - decode(encode(init))| = %d LSB\n", worst);
    assert_true(worst <= 1); /* 1 thread vs 2: sgemm partitions may differ in the last bit */
    assert_memory_not_equal(a.rgb, c.rgb, n);
    isd_op_ctx_free(ops);
    isd_engine_result_release(&a);
    isd_engine_result_release(&b);
    isd_engine_result_release(&c);
    free(init);
    free(keep);
    free(all);
    free(round);
}

struct thread_job {
    const struct isd_engine_request *rq;
    uint8_t *out;
    int rc;
};

static void *thread_main(void *arg)
{
    struct thread_job *j = arg;
    struct isd_op_ctx_params p = {.threads = 1};
    struct isd_eng_error err = {0};
    struct isd_engine_result res;
    struct isd_op_ctx *ops = isd_op_ctx_new(&p, &err);
    j->rc = ops ? isd_engine_generate_with(sd1, ops, j->rq, NULL, &res, &err) : -1;
    if (j->rc == 0) {
        memcpy(j->out, res.rgb, (size_t)3 * j->rq->width * j->rq->height);
        isd_engine_result_release(&res);
    }
    isd_op_ctx_free(ops);
    return NULL;
}

/* two threads sharing one engine, each with its own ops context, match a serial run */
static void test_concurrent(void **state)
{
    (void)state;
    struct isd_engine_request rq[2];
    small_request(&rq[0]);
    small_request(&rq[1]);
    rq[1].seed = 99;
    rq[1].prompt = "a blue sphere";
    size_t n = (size_t)3 * rq[0].width * rq[0].height;
    struct thread_job jobs[2], serial[2];
    pthread_t tid[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (struct thread_job){&rq[i], nn_xmalloc(n), -1};
        serial[i] = (struct thread_job){&rq[i], nn_xmalloc(n), -1};
        thread_main(&serial[i]);
        assert_int_equal(serial[i].rc, 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, thread_main, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_memory_equal(jobs[i].out, serial[i].out, n);
        free(jobs[i].out);
        free(serial[i].out);
    }
}

/* an SD2 checkpoint that does not say its prediction type is probed (sd.cpp's test); the
 * option overrides both the file and the probe */
static void test_prediction(void **state)
{
    (void)state;
    struct isd_sdm_config cfg;
    struct isd_sdm_options o;
    struct isd_engine_options eo;
    struct isd_engine *e = NULL;
    struct isd_eng_error err = {0};
    char msg[256], path[4200];
    static const char *const meta[] = {"sdc.num_head_channels", "16", "sdc.text_heads", "4", NULL};
    assert_int_equal(isd_sdm_preset("tiny-sd2", &cfg), 0);
    isd_sdm_options_init(&o);
    o.no_metadata = 1;
    o.meta = meta;
    int n = snprintf(path, sizeof path, "%s/sd2-nometa.safetensors", nn_tmp());
    assert_true(n > 0 && (size_t)n < sizeof path);
    assert_int_equal(isd_sdm_write(&cfg, &o, path, msg, sizeof msg), 0);
    isd_engine_options_init(&eo);
    eo.model = path;
    eo.tokenizer = vocab_dir;
    eo.threads = 1;
    if (isd_engine_load(&eo, &e, &err) < 0)
        fail_msg("%s", err.msg);
    int probed = isd_engine_config(e)->prediction;
    printf("# probed prediction of a random tiny SD2: %s\n", probed == ISD_WT_PRED_V ? "v" : "eps");
    assert_true(probed == ISD_WT_PRED_V || probed == ISD_WT_PRED_EPS);
    isd_engine_free(e);
    for (int p = ISD_WT_PRED_EPS; p <= ISD_WT_PRED_V; p++) {
        eo.prediction = p;
        assert_int_equal(isd_engine_load(&eo, &e, &err), 0);
        assert_int_equal(isd_engine_config(e)->prediction, p);
        isd_engine_free(e);
    }
    eo.model = sd2_path; /* the file says v */
    eo.prediction = ISD_WT_PRED_EPS;
    assert_int_equal(isd_engine_load(&eo, &e, &err), 0);
    assert_int_equal(isd_engine_config(e)->prediction, ISD_WT_PRED_EPS);
    isd_engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt2img_sd1_euler),
        cmocka_unit_test(test_txt2img_sd1_dpmpp),
        cmocka_unit_test(test_txt2img_sd2_euler),
        cmocka_unit_test(test_txt2img_sd2_dpmpp),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_abort_immediately),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_prediction),
        cmocka_unit_test(test_layouts_and_dtypes),
        cmocka_unit_test(test_img2img_and_mask),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
