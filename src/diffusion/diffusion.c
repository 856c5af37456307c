/*
 * The diffusion generator (diffusion.h): options, loading, the pool of ops contexts and size
 * planning. One request's work (run) is in diffusion_run.c.
 */
#include "diffusion/diffusion_int.h"

#include "engine/sample/sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SAMPLER_NAMES   "euler, euler_a, heun, dpm++2m, lcm"
#define SCHEDULER_NAMES "discrete, karras, exponential, sgm_uniform, trailing, lcm"

/* ---- options ---- */

void isd_diffusion_options_init(struct isd_diffusion_options *o)
{
    static const int steps[ISD_DQ__COUNT] = {10, 20, 40};
    memset(o, 0, sizeof *o);
    for (int q = 0; q < ISD_DQ__COUNT; q++) {
        o->steps[q] = steps[q];
        o->sampler[q] = "dpm++2m";
    }
    o->scheduler = "karras";
    o->guidance = 7.5;
    o->negative_prompt = "";
    o->edit_strength = 0.75;
    o->variation_strength = 0.6;
    o->variation_prompt = "";
    o->concurrency = 1;
}

/* A whole decimal integer in [lo, hi] (no sign games, no trailing bytes). */
static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* A finite decimal number in [lo, hi] ((lo, hi] when open_lo). */
static int parse_double(const char *s, double lo, double hi, int open_lo, double *out)
{
    char *end;
    if (!s || !*s || (*s != '-' && *s != '.' && (*s < '0' || *s > '9')))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi || (open_lo && v == lo))
        return -1;
    *out = v;
    return 0;
}

static int bad(struct isd_error *err, const char *key, const char *value, const char *expected)
{
    char quoted[68];
    isd_err_quote(quoted, value ? value : "", value ? strlen(value) : 0, 64);
    return isd_err_set(err, ISD_E_INVALID_VALUE, key, "%s: expected %s, got '%s'", key, expected,
                       quoted);
}

static const char *const quality_names[ISD_DQ__COUNT] = {"low", "medium", "high"};

static int set_quality_option(struct isd_diffusion_options *o, const char *key, const char *value,
                              struct isd_error *err)
{
    for (int q = 0; q < ISD_DQ__COUNT; q++) {
        char name[32];
        snprintf(name, sizeof name, "steps_%s", quality_names[q]);
        if (strcmp(key, name) == 0)
            return parse_int(value, 1, ISD_DIFFUSION_STEPS_MAX, &o->steps[q]) < 0
                       ? bad(err, key, value, "an integer from 1 to 1000")
                       : 0;
        snprintf(name, sizeof name, "sampler_%s", quality_names[q]);
        if (strcmp(key, name) == 0) {
            if (!value || isd_smp_kind_parse(value) < 0)
                return bad(err, key, value, "one of " SAMPLER_NAMES);
            o->sampler[q] = value;
            return 0;
        }
    }
    return 1;
}

static int set_string(const char **field, const char *key, const char *value, int allow_empty,
                      struct isd_error *err)
{
    if (!value || (!allow_empty && !*value))
        return bad(err, key, value, "a non-empty path");
    *field = value;
    return 0;
}

int isd_diffusion_option_set(struct isd_diffusion_options *o, const char *key, const char *value,
                             struct isd_error *err)
{
    int rc = set_quality_option(o, key, value, err);
    if (rc != 1)
        return rc;
    if (strcmp(key, "checkpoint") == 0)
        return set_string(&o->checkpoint, key, value, 0, err);
    if (strcmp(key, "tokenizer") == 0)
        return set_string(&o->tokenizer, key, value, 0, err);
    if (strcmp(key, "negative_prompt") == 0)
        return set_string(&o->negative_prompt, key, value, 1, err);
    if (strcmp(key, "variation_prompt") == 0)
        return set_string(&o->variation_prompt, key, value, 1, err);
    if (strcmp(key, "native_size") == 0) {
        int v;
        if (parse_int(value, 0, ISD_ENGINE_SIDE_MAX, &v) < 0 || (v > 0 && v < 8))
            return bad(err, key, value, "0 (the model's default) or an integer from 8 to 2048");
        o->native_size = v;
        return 0;
    }
    if (strcmp(key, "scheduler") == 0) {
        if (!value || isd_smp_sched_parse(value) < 0)
            return bad(err, key, value, "one of " SCHEDULER_NAMES);
        o->scheduler = value;
        return 0;
    }
    if (strcmp(key, "guidance") == 0)
        return parse_double(value, 1, 100, 0, &o->guidance) < 0
                   ? bad(err, key, value, "a number from 1 to 100 (1: no guidance)")
                   : 0;
    if (strcmp(key, "edit_strength") == 0 || strcmp(key, "variation_strength") == 0) {
        double *f = key[0] == 'e' ? &o->edit_strength : &o->variation_strength;
        return parse_double(value, 0, 1, 1, f) < 0
                   ? bad(err, key, value, "a number above 0 and at most 1")
                   : 0;
    }
    if (strcmp(key, "threads") == 0)
        return parse_int(value, 0, ISD_DIFFUSION_THREADS_MAX, &o->threads) < 0
                   ? bad(err, key, value, "0 (the online cores) or an integer from 1 to 256")
                   : 0;
    if (strcmp(key, "concurrency") == 0)
        return parse_int(value, 1, ISD_DIFFUSION_CONCURRENCY_MAX, &o->concurrency) < 0
                   ? bad(err, key, value, "an integer from 1 to 16")
                   : 0;
    if (strcmp(key, "resident") == 0) {
        if (value && (strcmp(value, "1") == 0 || strcmp(value, "true") == 0))
            o->resident = 1;
        else if (value && (strcmp(value, "0") == 0 || strcmp(value, "false") == 0))
            o->resident = 0;
        else
            return bad(err, key, value, "true, false, 1 or 0");
        return 0;
    }
    return 1;
}

/* ---- the generator ---- */

static char *dup_str(const char *s, int *failed)
{
    char *d = strdup(s ? s : "");
    if (!d)
        *failed = 1;
    return d;
}

static void diffusion_destroy(void *state)
{
    struct isd_diffusion *d = state;
    if (!d)
        return;
    for (int i = 0; i < d->n_ops; i++)
        isd_op_ctx_free(d->ops[i]);
    if (d->sync_ready) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
    }
    isd_engine_free(d->engine);
    for (int q = 0; q < ISD_DQ__COUNT; q++)
        free(d->sampler[q]);
    free(d->scheduler);
    free(d->negative_prompt);
    free(d->variation_prompt);
    free(d);
}

static void diffusion_caps(void *state, struct isd_gen_caps *out)
{
    (void)state;
    *out = (struct isd_gen_caps){.edits = true,
                                 .masks = true,
                                 .variations = true,
                                 .partials = true,
                                 .transparency = false,
                                 .max_n = ISD_DIFFUSION_MAX_N,
                                 .extensions = true,
                                 .sequential_seeds = true};
}

static const struct isd_gen_ops diffusion_ops = {.name = "diffusion",
                                                 .caps = diffusion_caps,
                                                 .run = isd_diffusion_run_,
                                                 .destroy = diffusion_destroy};

/* Checks what option_set checks, for options filled in directly. */
static int check_options(const struct isd_diffusion_options *o, struct isd_error *err)
{
    if (!o->checkpoint || !*o->checkpoint)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "checkpoint",
                           "checkpoint: required (a .safetensors file or a diffusers folder)");
    for (int q = 0; q < ISD_DQ__COUNT; q++) {
        char key[32];
        snprintf(key, sizeof key, "steps_%s", quality_names[q]);
        if (o->steps[q] < 1 || o->steps[q] > ISD_DIFFUSION_STEPS_MAX)
            return isd_err_set(err, ISD_E_INVALID_VALUE, key,
                               "%s: expected an integer from 1 to 1000, got %d", key, o->steps[q]);
        snprintf(key, sizeof key, "sampler_%s", quality_names[q]);
        if (!o->sampler[q] || isd_smp_kind_parse(o->sampler[q]) < 0)
            return bad(err, key, o->sampler[q], "one of " SAMPLER_NAMES);
    }
    if (!o->scheduler || isd_smp_sched_parse(o->scheduler) < 0)
        return bad(err, "scheduler", o->scheduler, "one of " SCHEDULER_NAMES);
    if (!(o->guidance >= 1 && o->guidance <= 100))
        return isd_err_set(err, ISD_E_INVALID_VALUE, "guidance",
                           "guidance: expected a number from 1 to 100");
    if (!(o->edit_strength > 0 && o->edit_strength <= 1) ||
        !(o->variation_strength > 0 && o->variation_strength <= 1))
        return isd_err_set(err, ISD_E_INVALID_VALUE, "edit_strength",
                           "edit_strength and variation_strength: expected a number above 0 "
                           "and at most 1");
    if (o->native_size < 0 || o->native_size > ISD_ENGINE_SIDE_MAX ||
        (o->native_size > 0 && o->native_size < 8))
        return isd_err_set(err, ISD_E_INVALID_VALUE, "native_size",
                           "native_size: expected 0 or an integer from 8 to 2048");
    if (o->threads < 0 || o->threads > ISD_DIFFUSION_THREADS_MAX)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "threads",
                           "threads: expected 0 or an integer from 1 to 256");
    if (o->concurrency < 1 || o->concurrency > ISD_DIFFUSION_CONCURRENCY_MAX)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "concurrency",
                           "concurrency: expected an integer from 1 to 16");
    return 0;
}

static int copy_options(struct isd_diffusion *d, const struct isd_diffusion_options *o,
                        struct isd_error *err)
{
    int failed = 0;
    for (int q = 0; q < ISD_DQ__COUNT; q++) {
        d->steps[q] = o->steps[q];
        d->sampler[q] = dup_str(o->sampler[q], &failed);
    }
    d->scheduler = dup_str(o->scheduler, &failed);
    d->negative_prompt = dup_str(o->negative_prompt, &failed);
    d->variation_prompt = dup_str(o->variation_prompt, &failed);
    d->guidance = o->guidance;
    d->edit_strength = o->edit_strength;
    d->variation_strength = o->variation_strength;
    return failed ? isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the options") : 0;
}

static int load_engine(struct isd_diffusion *d, const struct isd_diffusion_options *o,
                       struct isd_error *err)
{
    struct isd_engine_options eo;
    struct isd_eng_error ee = {0};
    isd_engine_options_init(&eo);
    eo.model = o->checkpoint;
    eo.tokenizer = o->tokenizer;
    eo.threads = 1; /* the engine's own context stays unused: runs bring their own */
    eo.resident = o->resident;
    eo.keep_pages = o->concurrency > 1;
    int rc = isd_engine_load(&eo, &d->engine, &ee);
    if (rc == 0)
        return 0;
    enum isd_err_id id = rc == ISD_ENG_ENOMEM ? ISD_E_NOMEM
                         : rc == ISD_ENG_EIO  ? ISD_E_IO
                                              : ISD_E_INVALID_VALUE;
    return isd_err_set(err, id, "checkpoint", "cannot load the model '%s': %s", o->checkpoint,
                       ee.msg);
}

static int make_pool(struct isd_diffusion *d, const struct isd_diffusion_options *o,
                     struct isd_error *err)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot create a condition variable");
    int ok =
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&d->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok)
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot create a condition variable");
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        pthread_cond_destroy(&d->cv);
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot create a mutex");
    }
    d->sync_ready = 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int total = o->threads > 0 ? o->threads : cores > 0 ? (int)cores : 1;
    int each = total / o->concurrency > 0 ? total / o->concurrency : 1;
    struct isd_op_ctx_params p = {.threads = each > 256 ? 256 : each};
    for (int i = 0; i < o->concurrency; i++) {
        struct isd_eng_error ee = {0};
        if (!(d->ops[i] = isd_op_ctx_new(&p, &ee)))
            return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot start the ops threads: %s",
                               ee.msg);
        d->n_ops = i + 1;
    }
    d->threads_each = p.threads;
    return 0;
}

struct isd_generator *isd_diffusion_new(const struct isd_diffusion_options *o,
                                        struct isd_error *err)
{
    if (!o || check_options(o, err) < 0) {
        if (!o)
            isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "no diffusion options");
        return NULL;
    }
    struct isd_diffusion *d = calloc(1, sizeof *d);
    struct isd_generator *g = calloc(1, sizeof *g);
    if (!d || !g) {
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the diffusion generator");
        goto fail;
    }
    if (copy_options(d, o, err) < 0 || load_engine(d, o, err) < 0 || make_pool(d, o, err) < 0)
        goto fail;
    const struct isd_wt_config *cfg = isd_engine_config(d->engine);
    d->native_size = o->native_size > 0 ? o->native_size
                     : cfg->family == ISD_WT_SD2 && cfg->prediction == ISD_WT_PRED_V ? 768
                                                                                     : 512;
    d->multiple = isd_engine_size_multiple(d->engine);
    g->ops = &diffusion_ops;
    g->state = d;
    return g;
fail:
    diffusion_destroy(d);
    free(g);
    return NULL;
}

/* ---- the pool of ops contexts ---- */

static bool abort_requested(const struct isd_gen_hooks *h)
{
    return h && h->should_abort && h->should_abort(h->ctx);
}

int isd_diffusion_acquire_(struct isd_diffusion *d, const struct isd_gen_hooks *hooks, int *slot,
                           struct isd_error *err)
{
    pthread_mutex_lock(&d->mu);
    for (;;) {
        for (int i = 0; i < d->n_ops; i++)
            if (!d->busy[i]) {
                d->busy[i] = 1;
                *slot = i;
                pthread_mutex_unlock(&d->mu);
                return 0;
            }
        /* a release between the check and the wait costs at most one period */
        pthread_mutex_unlock(&d->mu);
        if (abort_requested(hooks))
            return isd_err_set(err, ISD_E_CANCELLED, NULL, "image generation was cancelled");
        pthread_mutex_lock(&d->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += ISD_DIFFUSION_WAIT_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int any_free = 0;
        for (int i = 0; i < d->n_ops; i++)
            any_free |= !d->busy[i];
        if (!any_free)
            pthread_cond_timedwait(&d->cv, &d->mu, &until);
    }
}

void isd_diffusion_release_(struct isd_diffusion *d, int slot)
{
    pthread_mutex_lock(&d->mu);
    d->busy[slot] = 0;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* ---- size planning ---- */

struct plan_best {
    double aspect_err; /* |log(candidate aspect) - log(requested aspect)| */
    double area_err;   /* |candidate area - target area| */
    int w, h;
};

static void consider(struct plan_best *b, double target, double log_aspect, int wide, int w, int h)
{
    double ae = fabs(log((double)w / h) - log_aspect);
    double re = fabs((double)w * h - target);
    const double eps = 1e-9;
    int better = b->w == 0 || ae < b->aspect_err - eps;
    if (!better && fabs(ae - b->aspect_err) <= eps) {
        if (re < b->area_err - eps)
            better = 1;
        else if (fabs(re - b->area_err) <= eps) /* a tie: the larger, then the request's way */
            better = (double)w * h > (double)b->w * b->h ||
                     ((double)w * h == (double)b->w * b->h && (wide ? w > b->w : h > b->h));
    }
    if (better)
        *b = (struct plan_best){ae, re, w, h};
}

/* v rounded down (up: `up`) to a multiple of m, within m..max */
static int round_multiple(double v, int m, int max, int up)
{
    double r = (up ? ceil(v / m) : floor(v / m)) * m;
    return r < m ? m : r > max ? max : (int)r;
}

void isd_diffusion_plan(int native_size, int multiple, int width, int height, int *gen_w,
                        int *gen_h)
{
    int m = multiple > 0 && multiple <= ISD_ENGINE_SIDE_MAX ? multiple : 8;
    int max = ISD_ENGINE_SIDE_MAX / m * m, wide = width >= height;
    double aspect = (double)(width > 0 ? width : 1) / (height > 0 ? height : 1);
    double side = native_size > 0 ? native_size : m, target = side * side;
    /* the ideal size: the target area at the requested aspect, scaled into m..max */
    double iw = side * sqrt(aspect), ih = side / sqrt(aspect);
    double s = fmin(1.0, fmin(max / iw, max / ih));
    iw *= s;
    ih *= s;
    s = fmax(1.0, fmax(m / iw, m / ih));
    iw *= s;
    ih *= s;
    /* its four neighbours on the grid of multiples */
    struct plan_best b = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++)
        consider(&b, target, log(aspect), wide, round_multiple(iw, m, max, i & 1),
                 round_multiple(ih, m, max, i >> 1));
    *gen_w = b.w;
    *gen_h = b.h;
}

void isd_diffusion_plan_size(const struct isd_generator *g, int w, int h, int *gen_w, int *gen_h)
{
    const struct isd_diffusion *d = g->state;
    isd_diffusion_plan(d->native_size, d->multiple, w, h, gen_w, gen_h);
}
