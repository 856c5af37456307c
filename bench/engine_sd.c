/*
 * bench/engine_sd: the networks at full SD1.5 size on a random-weight checkpoint (the real
 * shapes, F16 by default) for a 512x512 image: seconds per text-encoder pass (batch 2), UNet
 * evaluation (batch 1 and batch 2 = CFG) and VAE decode, their GFLOP/s from the planned FLOP
 * counts, and the ratio of that rate to a large square cblas_sgemm (2048^3, OpenBLAS with the
 * same thread count) timed just before each repetition (the machine is shared: a ratio per
 * pair is steadier than absolute times; medians are printed). "cpu" is the CPU time the pass
 * used per wall second (2.0 = both threads ran all along), and the per-cpu-s ratio compares
 * GFLOP per CPU-second of the pass and of the sgemm, which does not depend on how much of the
 * machine the run was given. Then, in a fresh process, a whole 512x512 txt2img through the
 * engine API: wall time and peak RSS (VmHWM).
 *
 *   engine_sd [-m model] [-t threads] [-r runs] [-s steps] [--resident] [--no-txt2img]
 *     -m  checkpoint (default /tmp/isd-bench-sd15-f16.safetensors, written on first use by
 *         the random-weight writer: about 2 GB, never committed)
 *     -t  threads (default 2)   -r  repetitions of each network (default 3)
 *     -s  txt2img steps (default 4; the peak memory does not depend on it)
 *     --resident  float32 copies of the weights instead of converting F16 per layer
 *   engine_sd --compare-winograd [-m model] [-t threads] [-r runs] [--resident]
 *     the UNet (batch 2) and the VAE decoder, each timed alternately with 3x3 convs on im2col
 *     (an ops ctx made with ISD_OPS_WINOGRAD=0) and on the default choice (Winograd where
 *     faster): best times, median of the per-pair ratios im2col/default, relative L2
 *     difference of the outputs.
 *   engine_sd --check PREFIX -m model
 *     runs the text encoder (PREFIX.ids: 77 int32), the UNet on an 8x8 latent at t = 637.5
 *     (PREFIX.x, PREFIX.ctx32) and the VAE decoder on a 2x2 latent (PREFIX.z) and writes
 *     PREFIX.c_ctx, PREFIX.c_eps, PREFIX.c_img (float32): tests/reference/nn_fullsize.py
 *     compares them with the float64 reference on full-size models.
 */
#include "engine/engine.h"
#include "engine/nn/nn.h"
#include "support/clipvocab.h"
#include "support/sdmodel.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS  16
#define VOCAB_DIR "/tmp/isd-bench-vocab"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
           u.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what, const struct isd_eng_error *err)
{
    fprintf(stderr, "engine_sd: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("out of memory", NULL);
    return p;
}

static float *rand_floats(size_t n, float scale)
{
    static unsigned long long s = 0x9E3779B97F4A7C15ull;
    float *p = xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = scale * (float)((double)(s >> 40) / 16777216.0 * 2.0 - 1.0);
    }
    return p;
}

/* a "VmHWM" / "VmRSS" line of /proc/self/status, in kB */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static long vm_hwm_kb(void)
{
    return status_kb("VmHWM");
}

/* ---- reference sgemm: 2048^3 with OpenBLAS's own threads ---- */

enum { SGEMM_N = 2048 };
static float *sa, *sb, *sc;
static int bench_threads = 2;

static double sgemm_cpu_rate; /* GFLOP per CPU-second of the last sgemm_rate() */

static double sgemm_rate(void)
{
    openblas_set_num_threads(bench_threads);
    double flop = 2.0 * SGEMM_N * SGEMM_N * (double)SGEMM_N, c0 = cpu_seconds(), t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, SGEMM_N, SGEMM_N, SGEMM_N, 1.0f, sa,
                SGEMM_N, sb, SGEMM_N, 0.0f, sc, SGEMM_N);
    double t = now() - t0, c = cpu_seconds() - c0;
    openblas_set_num_threads(1); /* the ops rule: one BLAS thread per pool worker */
    sgemm_cpu_rate = flop / c / 1e9;
    return flop / t / 1e9;
}

/* ---- timing a network ---- */

typedef int (*pass_fn)(void *arg, struct isd_eng_error *err);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* one cold pass (first touch of the weights), then `runs` pairs (sgemm, pass) */
static void time_pass(const char *name, pass_fn fn, void *arg, double flops, int runs)
{
    struct isd_eng_error err = {0};
    double t[MAX_RUNS], ratio[MAX_RUNS], rate[MAX_RUNS], cpu[MAX_RUNS], cratio[MAX_RUNS];
    double t0 = now();
    if (fn(arg, &err) < 0)
        die(name, &err);
    double cold = now() - t0;
    for (int i = 0; i < runs; i++) {
        rate[i] = sgemm_rate();
        double c0 = cpu_seconds();
        t0 = now();
        if (fn(arg, &err) < 0)
            die(name, &err);
        t[i] = now() - t0;
        double c = cpu_seconds() - c0;
        cpu[i] = c / t[i];
        ratio[i] = flops / t[i] / 1e9 / rate[i];
        cratio[i] = flops / c / 1e9 / sgemm_cpu_rate;
    }
    double best = t[0], worst = t[0];
    for (int i = 1; i < runs; i++) {
        best = t[i] < best ? t[i] : best;
        worst = t[i] > worst ? t[i] : worst;
    }
    double tm = median(t, runs), rm = median(ratio, runs), sm = median(rate, runs);
    double cm = median(cpu, runs), cr = median(cratio, runs);
    printf("%-20s %6.1f GFLOP  cold %6.2f s  best %6.2f  median %6.2f  worst %6.2f s  "
           "%6.1f GFLOP/s  sgemm %5.1f GFLOP/s  ratio %.2f  cpu %.2f  per-cpu-s ratio %.2f\n",
           name, flops / 1e9, cold, best, tm, worst, flops / tm / 1e9, sm, rm, cm, cr);
    fflush(stdout);
}

struct text_arg {
    const struct isd_nn_text *net;
    struct isd_nn_run *run;
    int32_t ids[2 * 77];
    float *out;
};

static int text_pass(void *p, struct isd_eng_error *err)
{
    struct text_arg *a = p;
    return isd_nn_text_forward(a->net, a->run, a->ids, a->out, NULL, err);
}

struct unet_arg {
    const struct isd_nn_unet *net;
    struct isd_nn_run *run;
    float *x, *ctx, *out, t[2];
};

static int unet_pass(void *p, struct isd_eng_error *err)
{
    struct unet_arg *a = p;
    return isd_nn_unet_forward(a->net, a->run, a->x, a->t, a->ctx, a->out, NULL, err);
}

struct vae_arg {
    const struct isd_nn_vae_dec *net;
    struct isd_nn_run *run;
    float *z, *img;
};

static int vae_pass(void *p, struct isd_eng_error *err)
{
    struct vae_arg *a = p;
    return isd_nn_vae_dec_forward(a->net, a->run, a->z, a->img, NULL, err);
}

static void networks(const char *model, int resident, int runs)
{
    struct isd_eng_error err = {0};
    struct isd_wt_model *m = NULL;
    struct isd_nn_options no;
    struct isd_op_ctx_params op = {.threads = bench_threads};
    isd_nn_options_init(&no);
    no.resident = resident;
    double t0 = now();
    if (isd_wt_model_open(model, NULL, &m, &err) < 0)
        die(model, &err);
    struct isd_op_ctx *ops = isd_op_ctx_new(&op, &err);
    if (!ops)
        die("ops", &err);
    struct isd_nn_text *text = NULL;
    struct isd_nn_unet *unet = NULL;
    struct isd_nn_vae_dec *dec = NULL;
    if (isd_nn_text_build(m, &no, &text, &err) < 0 || isd_nn_unet_build(m, &no, &unet, &err) < 0 ||
        isd_nn_vae_dec_build(m, &no, &dec, &err) < 0)
        die("build", &err);
    printf("model %s, %s weights, %d threads (%s kernels), built in %.1f s\n", model,
           resident ? "resident float32" : "file-dtype (per-layer conversion)", bench_threads,
           isd_op_impl_name(ops), now() - t0);

    struct text_arg ta = {.net = text};
    for (int i = 0; i < 2 * 77; i++)
        ta.ids[i] = i % 77 == 0 ? 49406 : (i * 7919 + 13) % 49406;
    ta.out = xmalloc((size_t)2 * 77 * isd_nn_text_width(text) * sizeof(float));
    if (isd_nn_text_plan(text, ops, 2, &ta.run, &err) < 0)
        die("text plan", &err);
    time_pass("text encoder (b=2)", text_pass, &ta, isd_nn_run_flops(ta.run), runs);
    isd_nn_run_free(ta.run);
    free(ta.out);

    int dim = isd_nn_unet_config(unet)->context_dim;
    for (int batch = 1; batch <= 2; batch++) {
        struct unet_arg ua = {.net = unet, .t = {999, 999}};
        ua.x = rand_floats((size_t)batch * 4 * 64 * 64, 1.0f);
        ua.ctx = rand_floats((size_t)batch * 77 * dim, 1.0f);
        ua.out = xmalloc((size_t)batch * 4 * 64 * 64 * sizeof(float));
        if (isd_nn_unet_plan(unet, ops, batch, 64, 64, 77, &ua.run, &err) < 0)
            die("unet plan", &err);
        printf("unet b=%d runner: %zu MB\n", batch, isd_nn_run_bytes(ua.run) >> 20);
        time_pass(batch == 1 ? "unet 64x64 (b=1)" : "unet 64x64 (b=2)", unet_pass, &ua,
                  isd_nn_run_flops(ua.run), runs);
        isd_nn_run_free(ua.run);
        free(ua.x);
        free(ua.ctx);
        free(ua.out);
    }

    struct vae_arg va = {.net = dec};
    va.z = rand_floats((size_t)4 * 64 * 64, 1.0f);
    va.img = xmalloc((size_t)3 * 512 * 512 * sizeof(float));
    if (isd_nn_vae_dec_plan(dec, ops, 1, 64, 64, &va.run, &err) < 0)
        die("vae plan", &err);
    printf("vae decoder runner: %zu MB\n", isd_nn_run_bytes(va.run) >> 20);
    time_pass("vae decode 512x512", vae_pass, &va, isd_nn_run_flops(va.run), runs);
    isd_nn_run_free(va.run);
    free(va.z);
    free(va.img);

    isd_nn_text_free(text);
    isd_nn_unet_free(unet);
    isd_nn_vae_dec_free(dec);
    isd_op_ctx_free(ops);
    isd_wt_model_free(m);
    printf("peak RSS of this process so far: %ld MB\n", vm_hwm_kb() >> 10);
}

/* ---- 3x3 convs on im2col against the default (Winograd where faster) ---- */

static double rel_l2_diff(const float *a, const float *b, size_t n)
{
    double e2 = 0, r2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        e2 += d * d;
        r2 += (double)b[i] * b[i];
    }
    return r2 > 0 ? sqrt(e2 / r2) : sqrt(e2);
}

/* fn(arg[0]) on im2col and fn(arg[1]) on the default, alternately; out[i] holds n floats */
static void compare_pair(const char *name, pass_fn fn, void *arg[2], float *out[2], size_t n,
                         int runs)
{
    struct isd_eng_error err = {0};
    double t[2][MAX_RUNS] = {{0}}, ratio[MAX_RUNS] = {0};
    for (int k = 0; k < 2; k++) /* cold passes */
        if (fn(arg[k], &err) < 0)
            die(name, &err);
    for (int i = 0; i < runs; i++) {
        for (int k = 0; k < 2; k++) {
            double t0 = now();
            if (fn(arg[k], &err) < 0)
                die(name, &err);
            t[k][i] = now() - t0;
        }
        ratio[i] = t[0][i] / t[1][i];
    }
    double best[2] = {t[0][0], t[1][0]};
    for (int i = 1; i < runs; i++)
        for (int k = 0; k < 2; k++)
            best[k] = t[k][i] < best[k] ? t[k][i] : best[k];
    printf("%-20s im2col best %6.2f s  default best %6.2f s  ratio im2col/default %.2f median "
           "of %d pairs  rel L2 diff %.1e\n",
           name, best[0], best[1], median(ratio, runs), runs, rel_l2_diff(out[1], out[0], n));
    fflush(stdout);
}

static void compare_winograd(const char *model, int resident, int runs)
{
    struct isd_eng_error err = {0};
    struct isd_wt_model *m = NULL;
    struct isd_nn_options no;
    struct isd_op_ctx_params op = {.threads = bench_threads};
    isd_nn_options_init(&no);
    no.resident = resident;
    if (isd_wt_model_open(model, NULL, &m, &err) < 0)
        die(model, &err);
    setenv("ISD_OPS_WINOGRAD", "0", 1);
    struct isd_op_ctx *ops[2] = {isd_op_ctx_new(&op, &err), NULL};
    unsetenv("ISD_OPS_WINOGRAD");
    ops[1] = isd_op_ctx_new(&op, &err);
    if (!ops[0] || !ops[1])
        die("ops", &err);
    struct isd_nn_unet *unet = NULL;
    struct isd_nn_vae_dec *dec = NULL;
    if (isd_nn_unet_build(m, &no, &unet, &err) < 0 || isd_nn_vae_dec_build(m, &no, &dec, &err) < 0)
        die("build", &err);
    printf("compare 3x3 convs: im2col vs default (Winograd where faster), %d threads, %s\n",
           bench_threads, resident ? "resident float32" : "file-dtype weights");

    int dim = isd_nn_unet_config(unet)->context_dim;
    size_t nx = (size_t)2 * 4 * 64 * 64;
    float *x = rand_floats(nx, 1.0f), *ctx = rand_floats((size_t)2 * 77 * dim, 1.0f);
    struct unet_arg ua[2];
    float *uo[2];
    void *uarg[2];
    for (int k = 0; k < 2; k++) {
        uo[k] = xmalloc(nx * sizeof(float));
        ua[k] = (struct unet_arg){.net = unet, .x = x, .ctx = ctx, .out = uo[k], .t = {999, 999}};
        if (isd_nn_unet_plan(unet, ops[k], 2, 64, 64, 77, &ua[k].run, &err) < 0)
            die("unet plan", &err);
        uarg[k] = &ua[k];
    }
    printf("unet b=2 runners: im2col %zu MB, default %zu MB\n", isd_nn_run_bytes(ua[0].run) >> 20,
           isd_nn_run_bytes(ua[1].run) >> 20);
    compare_pair("unet 64x64 (b=2)", unet_pass, uarg, uo, nx, runs);
    for (int k = 0; k < 2; k++) {
        isd_nn_run_free(ua[k].run);
        free(uo[k]);
    }
    free(x);
    free(ctx);

    size_t ni = (size_t)3 * 512 * 512;
    float *z = rand_floats((size_t)4 * 64 * 64, 1.0f);
    struct vae_arg va[2];
    float *vo[2];
    void *varg[2];
    for (int k = 0; k < 2; k++) {
        vo[k] = xmalloc(ni * sizeof(float));
        va[k] = (struct vae_arg){.net = dec, .z = z, .img = vo[k]};
        if (isd_nn_vae_dec_plan(dec, ops[k], 1, 64, 64, &va[k].run, &err) < 0)
            die("vae plan", &err);
        varg[k] = &va[k];
    }
    printf("vae decoder runners: im2col %zu MB, default %zu MB\n",
           isd_nn_run_bytes(va[0].run) >> 20, isd_nn_run_bytes(va[1].run) >> 20);
    compare_pair("vae decode 512x512", vae_pass, varg, vo, ni, runs);
    for (int k = 0; k < 2; k++) {
        isd_nn_run_free(va[k].run);
        free(vo[k]);
    }
    free(z);
    isd_nn_unet_free(unet);
    isd_nn_vae_dec_free(dec);
    isd_op_ctx_free(ops[0]);
    isd_op_ctx_free(ops[1]);
    isd_wt_model_free(m);
    printf("peak RSS: %ld MB\n", vm_hwm_kb() >> 10);
}

/* ---- a whole txt2img, in a fresh process ---- */

struct steps_seen {
    double t0, last;
};

static void on_progress(void *ctx, int image, int step, int steps)
{
    struct steps_seen *s = ctx;
    (void)image;
    double t = now();
    printf("  step %d/%d  %.2f s\n", step, steps, t - s->last);
    fflush(stdout);
    s->last = t;
}

static int child_txt2img(const char *model, int resident, int steps)
{
    struct isd_engine_options o;
    struct isd_engine *e = NULL;
    struct isd_eng_error err = {0};
    isd_engine_options_init(&o);
    o.model = model;
    o.tokenizer = VOCAB_DIR;
    o.threads = bench_threads;
    o.resident = resident;
    double t0 = now(), c0 = cpu_seconds();
    if (isd_engine_load(&o, &e, &err) < 0)
        die("load", &err);
    double t_load = now() - t0;
    printf("engine loaded in %.1f s: RSS %ld MB (peak so far %ld MB)\n", t_load,
           status_kb("VmRSS") >> 10, vm_hwm_kb() >> 10);
    struct isd_engine_request rq;
    isd_engine_request_init(&rq);
    rq.prompt = "a photograph of an astronaut riding a horse";
    rq.steps = steps;
    rq.sampler = "euler_a";
    rq.seed = 1;
    struct steps_seen seen = {now(), now()};
    struct isd_engine_hooks h = {.progress = on_progress, .ctx = &seen};
    struct isd_engine_result res;
    double t1 = now();
    if (isd_engine_generate(e, &rq, &h, &res, &err) < 0)
        die("generate", &err);
    double t_gen = now() - t1, wall = now() - t0;
    printf("txt2img 512x512, %d steps (euler_a, CFG 7.5): load %.1f s, generate %.1f s "
           "(text + %d UNet b=2 + VAE), after the last step %.1f s; peak RSS (VmHWM) %ld MB; "
           "cpu %.2f\n",
           steps, t_load, t_gen, steps, now() - seen.last, vm_hwm_kb() >> 10,
           (cpu_seconds() - c0) / wall);
    isd_engine_result_release(&res);
    isd_engine_free(e);
    return 0;
}

static void *read_exact(const char *prefix, const char *ext, size_t n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s.%s", prefix, ext);
    void *b = xmalloc(n);
    FILE *f = fopen(p, "rb");
    if (!f || fread(b, 1, n, f) != n)
        die(p, NULL);
    fclose(f);
    return b;
}

static void write_exact(const char *prefix, const char *ext, const void *b, size_t n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s.%s", prefix, ext);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0)
        die(p, NULL);
}

static int check(const char *model, const char *prefix)
{
    struct isd_eng_error err = {0};
    struct isd_wt_model *m = NULL;
    struct isd_op_ctx_params op = {.threads = bench_threads};
    struct isd_nn_text *t = NULL;
    struct isd_nn_unet *u = NULL;
    struct isd_nn_vae_dec *d = NULL;
    struct isd_nn_run *rt = NULL, *ru = NULL, *rd = NULL;
    struct isd_op_ctx *ops = NULL;
    if (isd_wt_model_open(model, NULL, &m, &err) < 0 || !(ops = isd_op_ctx_new(&op, &err)) ||
        isd_nn_text_build(m, NULL, &t, &err) < 0 || isd_nn_unet_build(m, NULL, &u, &err) < 0 ||
        isd_nn_vae_dec_build(m, NULL, &d, &err) < 0)
        die(model, &err);
    size_t w = (size_t)isd_nn_text_width(t), dim = (size_t)isd_nn_unet_config(u)->context_dim;
    int32_t *ids = read_exact(prefix, "ids", 77 * sizeof *ids);
    float *x = read_exact(prefix, "x", 4 * 64 * sizeof(float));
    float *z = read_exact(prefix, "z", 4 * 4 * sizeof(float));
    float *ctx_in = read_exact(prefix, "ctx32", 77 * dim * sizeof(float));
    float *ctx = xmalloc(77 * w * sizeof *ctx), *eps = xmalloc(4 * 64 * sizeof *eps);
    float *img = xmalloc(3 * 16 * 16 * sizeof *img), ts = 637.5f;
    if (isd_nn_text_plan(t, ops, 1, &rt, &err) < 0 ||
        isd_nn_text_forward(t, rt, ids, ctx, NULL, &err) < 0 ||
        isd_nn_unet_plan(u, ops, 1, 8, 8, 77, &ru, &err) < 0 ||
        isd_nn_unet_forward(u, ru, x, &ts, ctx_in, eps, NULL, &err) < 0 ||
        isd_nn_vae_dec_plan(d, ops, 1, 2, 2, &rd, &err) < 0 ||
        isd_nn_vae_dec_forward(d, rd, z, img, NULL, &err) < 0)
        die("check", &err);
    write_exact(prefix, "c_ctx", ctx, 77 * w * sizeof *ctx);
    write_exact(prefix, "c_eps", eps, 4 * 64 * sizeof *eps);
    write_exact(prefix, "c_img", img, 3 * 16 * 16 * sizeof *img);
    isd_nn_run_free(rt);
    isd_nn_run_free(ru);
    isd_nn_run_free(rd);
    isd_nn_text_free(t);
    isd_nn_unet_free(u);
    isd_nn_vae_dec_free(d);
    isd_op_ctx_free(ops);
    isd_wt_model_free(m);
    free(ids);
    free(x);
    free(z);
    free(ctx_in);
    free(ctx);
    free(eps);
    free(img);
    return 0;
}

static void ensure_model(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return;
    struct isd_sdm_config cfg;
    struct isd_sdm_options o;
    char msg[512];
    isd_sdm_preset("sd15", &cfg);
    isd_sdm_options_init(&o);
    o.dtype = ISD_SDM_F16;
    o.seed = 1;
    printf("writing %s (random sd15 weights, F16) ...\n", path);
    fflush(stdout);
    double t0 = now();
    if (isd_sdm_write(&cfg, &o, path, msg, sizeof msg) < 0) {
        fprintf(stderr, "engine_sd: %s\n", msg);
        exit(1);
    }
    printf("written in %.1f s\n", now() - t0);
}

static void ensure_vocab(void)
{
    struct stat st;
    struct isd_eng_error err = {0};
    if (stat(VOCAB_DIR "/merges.txt", &st) == 0)
        return;
    if (mkdir(VOCAB_DIR, 0755) < 0 && errno != EEXIST)
        die(VOCAB_DIR, NULL);
    if (isd_cv_write(VOCAB_DIR, ISD_CV_FULL, 0, &err) < 0)
        die("vocab", &err);
}

int main(int argc, char **argv)
{
    const char *model = "/tmp/isd-bench-sd15-f16.safetensors", *check_prefix = NULL;
    int runs = 3, steps = 4, resident = 0, txt2img = 1, child = 0, compare = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--resident") == 0)
            resident = 1;
        else if (strcmp(argv[i], "--no-txt2img") == 0)
            txt2img = 0;
        else if (strcmp(argv[i], "--child") == 0)
            child = 1;
        else if (strcmp(argv[i], "--compare-winograd") == 0)
            compare = 1;
        else if (v && strcmp(argv[i], "--check") == 0)
            check_prefix = argv[++i];
        else if (v && strcmp(argv[i], "-m") == 0)
            model = argv[++i];
        else if (v && strcmp(argv[i], "-t") == 0)
            bench_threads = atoi(argv[++i]);
        else if (v && strcmp(argv[i], "-r") == 0)
            runs = atoi(argv[++i]);
        else if (v && strcmp(argv[i], "-s") == 0)
            steps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: engine_sd [-m model] [-t threads] [-r runs] [-s steps] "
                            "[--resident] [--no-txt2img] [--compare-winograd]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || bench_threads < 1 || steps < 1)
        return 2;
    if (child)
        return child_txt2img(model, resident, steps);
    if (check_prefix)
        return check(model, check_prefix);
    ensure_model(model);
    if (compare) {
        time_t now_c = time(NULL);
        printf("engine_sd --compare-winograd, %s", ctime(&now_c));
        compare_winograd(model, resident, runs);
        return 0;
    }
    ensure_vocab();
    size_t nn = (size_t)SGEMM_N * SGEMM_N;
    sa = rand_floats(nn, 1.0f);
    sb = rand_floats(nn, 1.0f);
    sc = rand_floats(nn, 1.0f);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    time_t now_t = time(NULL);
    double load[3];
    getloadavg(load, 3);
    printf("engine_sd on %s, %s", host, ctime(&now_t));
    printf("load average before: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    printf("sgemm %d^3 (OpenBLAS, %d threads): %.1f GFLOP/s\n", SGEMM_N, bench_threads,
           sgemm_rate());
    networks(model, resident, runs);
    free(sa);
    free(sb);
    free(sc);
    if (!txt2img)
        return 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char t[16], s[16];
        snprintf(t, sizeof t, "%d", bench_threads);
        snprintf(s, sizeof s, "%d", steps);
        char *args[] = {argv[0],       "--child", "-m",
                        (char *)model, "-t",      t,
                        "-s",          s,         resident ? "--resident" : NULL,
                        NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        die("txt2img child failed", NULL);
    getloadavg(load, 3);
    printf("load average after: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    return 0;
}
