/*
 * `imagesd engine ...`: the diffusion engine from the command line, without the server.
 *
 *   imagesd engine txt2img --model PATH [--tokenizer DIR] --prompt TEXT [--negative TEXT]
 *                          [--width 512] [--height 512] [--steps 20] [--guidance 7.5]
 *                          [--sampler euler_a] [--scheduler discrete] [--seed N] [--batch N]
 *                          [--threads N] [--resident] [--quiet] -o out.png
 *
 * Progress goes to stderr; Ctrl-C cancels between two network blocks. With --batch N > 1 the
 * images are written as out-0.png, out-1.png... Exit status: 0 done, 1 failed, 2 usage.
 */
#include "cli/cli.h"

#include "codec/codec.h"
#include "engine/engine.h"
#include "sys/sys.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imagesd engine txt2img --model PATH [--tokenizer DIR] --prompt TEXT\n"
            "                              [--negative TEXT] [--width 512] [--height 512]\n"
            "                              [--steps 20] [--guidance 7.5] [--sampler euler_a]\n"
            "                              [--scheduler discrete] [--seed N] [--batch N]\n"
            "                              [--threads N] [--resident] [--quiet] -o out.png\n"
            "\n"
            "  --model      single-file .safetensors checkpoint or diffusers folder (SD 1.x/2.x)\n"
            "  --tokenizer  folder with vocab.json and merges.txt (a diffusers folder's\n"
            "               tokenizer/ is used by default)\n"
            "  --sampler    euler, euler_a, heun, dpm++2m, lcm\n"
            "  --scheduler  discrete, karras, exponential, sgm_uniform, trailing, lcm\n"
            "  --batch      images (seed, seed+1, ...), written as out-0.png, out-1.png...\n"
            "  --threads    worker threads (default: all cores)\n"
            "  --resident   keep float32 copies of the weights (about twice the memory)\n");
}

struct progress {
    int quiet;
    int64_t t0;
};

static void on_progress(void *ctx, int image, int step, int steps)
{
    struct progress *p = ctx;
    if (p->quiet)
        return;
    double s = (double)(isd_mono_ns() - p->t0) / 1e9;
    fprintf(stderr, "\rimage %d: step %d/%d (%.1f s)%s", image + 1, step, steps, s,
            step == steps ? "\n" : "");
    fflush(stderr);
}

static int on_abort(void *ctx)
{
    (void)ctx;
    return interrupted;
}

static int parse_int(const char *name, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "imagesd engine: %s must be an integer in %ld..%ld\n", name, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_double(const char *name, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end) {
        fprintf(stderr, "imagesd engine: %s must be a number\n", name);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_seed(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-') {
        fprintf(stderr, "imagesd engine: --seed must be a non-negative integer\n");
        return -1;
    }
    *out = x;
    return 0;
}

/* out.png -> out-3.png for image 3 of a batch */
static int image_path(const char *out, int index, int count, char *dst, size_t cap)
{
    int n;
    if (count == 1) {
        n = snprintf(dst, cap, "%s", out);
    } else {
        const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
        if (!dot || (slash && dot < slash))
            dot = out + strlen(out);
        n = snprintf(dst, cap, "%.*s-%d%s", (int)(dot - out), out, index, dot);
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int write_png(const uint8_t *rgb, int width, int height, const char *path)
{
    struct isd_error err = {0};
    struct isd_image *im = isd_image_new(width, height, &err);
    struct isd_buf png;
    isd_buf_init(&png, (size_t)1 << 30);
    int rc = -1;
    if (!im) {
        fprintf(stderr, "imagesd engine: %s\n", err.message);
        return -1;
    }
    for (size_t i = 0; i < (size_t)width * height; i++) {
        memcpy(im->rgba + 4 * i, rgb + 3 * i, 3);
        im->rgba[4 * i + 3] = 255;
    }
    struct isd_encode_opts o = {.format = ISD_FMT_PNG, .compression = 100, .keep_alpha = false};
    if (isd_codec_encode_buf(im, &o, &png, &err) < 0 ||
        isd_write_file_atomic(path, png.data, png.len, 0644, &err) < 0)
        fprintf(stderr, "imagesd engine: %s: %s\n", path, err.message);
    else
        rc = 0;
    isd_buf_release(&png);
    isd_image_free(im);
    return rc;
}

struct args {
    struct isd_engine_options o;
    struct isd_engine_request rq;
    const char *out;
    int quiet;
};

/* 0, or 2 after printing a usage error */
static int parse_args(int argc, char **argv, struct args *a)
{
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(k, "--resident") == 0) {
            a->o.resident = 1;
            continue;
        }
        if (strcmp(k, "--quiet") == 0) {
            a->quiet = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "imagesd engine: %s needs a value (see --help)\n", k);
            return 2;
        }
        i++;
        if (strcmp(k, "--model") == 0)
            a->o.model = v;
        else if (strcmp(k, "--tokenizer") == 0)
            a->o.tokenizer = v;
        else if (strcmp(k, "--prompt") == 0)
            a->rq.prompt = v;
        else if (strcmp(k, "--negative") == 0)
            a->rq.negative_prompt = v;
        else if (strcmp(k, "--width") == 0)
            rc = parse_int(k, v, 8, ISD_ENGINE_SIDE_MAX, &a->rq.width);
        else if (strcmp(k, "--height") == 0)
            rc = parse_int(k, v, 8, ISD_ENGINE_SIDE_MAX, &a->rq.height);
        else if (strcmp(k, "--steps") == 0)
            rc = parse_int(k, v, 1, 1000, &a->rq.steps);
        else if (strcmp(k, "--guidance") == 0)
            rc = parse_double(k, v, &a->rq.guidance);
        else if (strcmp(k, "--sampler") == 0)
            a->rq.sampler = v;
        else if (strcmp(k, "--scheduler") == 0)
            a->rq.scheduler = v;
        else if (strcmp(k, "--seed") == 0)
            rc = parse_seed(v, &a->rq.seed);
        else if (strcmp(k, "--batch") == 0)
            rc = parse_int(k, v, 1, ISD_ENGINE_BATCH_MAX, &a->rq.batch_count);
        else if (strcmp(k, "--threads") == 0)
            rc = parse_int(k, v, 0, 256, &a->o.threads);
        else if (strcmp(k, "-o") == 0 || strcmp(k, "--output") == 0)
            a->out = v;
        else {
            fprintf(stderr, "imagesd engine: unknown option '%s' (see --help)\n", k);
            return 2;
        }
        if (rc < 0)
            return 2;
    }
    if (!a->o.model || !a->out) {
        fprintf(stderr, "imagesd engine txt2img: --model and -o are required (see --help)\n");
        return 2;
    }
    return 0;
}

static int txt2img(int argc, char **argv)
{
    struct args a = {0};
    isd_engine_options_init(&a.o);
    isd_engine_request_init(&a.rq);
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    struct isd_eng_error err = {0};
    struct isd_engine *eng = NULL;
    struct isd_engine_result res = {0};
    struct progress prog = {a.quiet, isd_mono_ns()};
    struct isd_engine_hooks hooks = {.progress = on_progress, .abort = on_abort, .ctx = &prog};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    if (isd_engine_load(&a.o, &eng, &err) < 0) {
        fprintf(stderr, "imagesd engine: %s\n", err.msg);
        return 1;
    }
    if (!a.quiet)
        fprintf(stderr, "loaded %s in %.1f s\n", a.o.model,
                (double)(isd_mono_ns() - prog.t0) / 1e9);
    prog.t0 = isd_mono_ns();
    if (isd_engine_generate(eng, &a.rq, &hooks, &res, &err) < 0) {
        fprintf(stderr, "%simagesd engine: %s\n", a.quiet ? "" : "\n", err.msg);
        isd_engine_free(eng);
        return err.code == ISD_ENG_EINVAL ? 2 : 1;
    }
    rc = 0;
    size_t bytes = (size_t)3 * res.width * res.height;
    for (int i = 0; rc == 0 && i < res.count; i++) {
        char path[4096];
        if (image_path(a.out, i, res.count, path, sizeof path) < 0) {
            fprintf(stderr, "imagesd engine: output path too long\n");
            rc = 1;
        } else if (write_png(res.rgb + (size_t)i * bytes, res.width, res.height, path) < 0) {
            rc = 1;
        } else if (!a.quiet) {
            fprintf(stderr, "wrote %s (seed %" PRIu64 ", %.1f s)\n", path, a.rq.seed + (uint64_t)i,
                    (double)(isd_mono_ns() - prog.t0) / 1e9);
        }
    }
    isd_engine_result_release(&res);
    isd_engine_free(eng);
    return rc;
}

int isd_cli_engine(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    if (strcmp(argv[1], "txt2img") == 0)
        return txt2img(argc, argv);
    fprintf(stderr, "imagesd engine: unknown command '%s' (txt2img)\n", argv[1]);
    usage(stderr);
    return 2;
}
