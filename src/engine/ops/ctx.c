/* The ops context: its persistent thread pool, the ISA choice and the error detail. */
#include "engine/ops/ops_int.h"

#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int isd_op_fail(struct isd_op_ctx *ctx, int code, const char *fmt, ...)
{
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err.msg, sizeof ctx->err.msg, fmt, ap);
        va_end(ap);
        ctx->err.code = code;
    }
    return code;
}

static void *worker_main(void *arg)
{
    struct isd_op_worker *wk = arg;
    struct isd_op_ctx *ctx = wk->ctx;
    pthread_mutex_lock(&ctx->mu);
    unsigned long seen = wk->gen0; /* not ctx->gen: a job may have started before we ran */
    for (;;) {
        while (ctx->gen == seen && !ctx->stop)
            pthread_cond_wait(&ctx->wake, &ctx->mu);
        if (ctx->stop)
            break;
        seen = ctx->gen;
        if (wk->id >= ctx->job_workers)
            continue;
        void (*job)(void *, int, int) = ctx->job;
        void *job_arg = ctx->job_arg;
        int nw = ctx->job_workers;
        pthread_mutex_unlock(&ctx->mu);
        job(job_arg, wk->id, nw);
        pthread_mutex_lock(&ctx->mu);
        if (--ctx->busy == 0)
            pthread_cond_signal(&ctx->done);
    }
    pthread_mutex_unlock(&ctx->mu);
    return NULL;
}

void isd_op_parallel(struct isd_op_ctx *ctx, int workers, void (*fn)(void *arg, int w, int nw),
                     void *arg)
{
    if (workers > ctx->threads)
        workers = ctx->threads;
    if (workers <= 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&ctx->mu);
    ctx->job = fn;
    ctx->job_arg = arg;
    ctx->job_workers = workers;
    ctx->busy = workers - 1;
    ctx->gen++;
    pthread_cond_broadcast(&ctx->wake);
    pthread_mutex_unlock(&ctx->mu);
    fn(arg, 0, workers);
    pthread_mutex_lock(&ctx->mu);
    while (ctx->busy > 0)
        pthread_cond_wait(&ctx->done, &ctx->mu);
    pthread_mutex_unlock(&ctx->mu);
}

void isd_op_split(size_t n, int parts, int i, size_t *begin, size_t *end)
{
    size_t q = n / (size_t)parts, r = n % (size_t)parts, ui = (size_t)i;
    *begin = ui * q + (ui < r ? ui : r);
    *end = *begin + q + (ui < r ? 1 : 0);
}

struct range_job {
    size_t n;
    void (*fn)(void *arg, size_t begin, size_t end);
    void *arg;
};

static void range_worker(void *arg, int w, int nw)
{
    struct range_job *j = arg;
    size_t b, e;
    isd_op_split(j->n, nw, w, &b, &e);
    if (b < e)
        j->fn(j->arg, b, e);
}

void isd_op_parallel_for(struct isd_op_ctx *ctx, size_t n, size_t min_chunk,
                         void (*fn)(void *arg, size_t begin, size_t end), void *arg)
{
    if (n == 0)
        return;
    if (min_chunk == 0)
        min_chunk = 1;
    size_t want = n / min_chunk;
    int workers = want >= (size_t)ctx->threads ? ctx->threads : (int)(want ? want : 1);
    if (workers <= 1) {
        fn(arg, 0, n);
        return;
    }
    struct range_job j = {n, fn, arg};
    isd_op_parallel(ctx, workers, range_worker, &j);
}

static void pool_stop(struct isd_op_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    ctx->stop = 1;
    pthread_cond_broadcast(&ctx->wake);
    pthread_mutex_unlock(&ctx->mu);
    for (int i = 0; i < ctx->started; i++)
        pthread_join(ctx->tids[i], NULL);
    ctx->started = 0;
    ctx->stop = 0;
    free(ctx->tids);
    free(ctx->workers);
    ctx->tids = NULL;
    ctx->workers = NULL;
}

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > ISD_OP_MAX_THREADS ? ISD_OP_MAX_THREADS : (int)n;
}

static int pool_start(struct isd_op_ctx *ctx, int threads)
{
    ctx->threads = 1;
    if (threads <= 1)
        return 0;
    ctx->tids = calloc((size_t)threads - 1, sizeof *ctx->tids);
    ctx->workers = calloc((size_t)threads - 1, sizeof *ctx->workers);
    if (!ctx->tids || !ctx->workers) {
        pool_stop(ctx);
        return isd_op_fail(ctx, ISD_ENG_ENOMEM, "ops: cannot allocate a pool of %d threads",
                           threads);
    }
    for (int i = 0; i < threads - 1; i++) {
        ctx->workers[i].ctx = ctx;
        ctx->workers[i].id = i + 1;
        ctx->workers[i].gen0 = ctx->gen;
        if (pthread_create(&ctx->tids[i], NULL, worker_main, &ctx->workers[i]) != 0) {
            pool_stop(ctx);
            return isd_op_fail(ctx, ISD_ENG_ENOMEM, "ops: cannot start thread %d of %d", i + 1,
                               threads);
        }
        ctx->started = i + 1;
    }
    ctx->threads = threads;
    return 0;
}

int isd_op_set_threads(struct isd_op_ctx *ctx, int threads)
{
    if (!ctx)
        return ISD_ENG_EINVAL;
    if (threads < 0 || threads > ISD_OP_MAX_THREADS)
        return isd_op_fail(ctx, ISD_ENG_EINVAL, "ops: threads %d outside [0, %d]", threads,
                           ISD_OP_MAX_THREADS);
    if (threads == 0)
        threads = online_cores();
    pool_stop(ctx);
    return pool_start(ctx, threads);
}

static const struct isd_op_kern *pick_kern(int isa)
{
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    switch (isa) {
    case ISD_OP_ISA_AUTO:
        return avx512 ? &isd_op_kern_avx512 : avx2 ? &isd_op_kern_avx2 : &isd_op_kern_scalar;
    case ISD_OP_ISA_SCALAR:
        return &isd_op_kern_scalar;
    case ISD_OP_ISA_AVX2:
        return avx2 ? &isd_op_kern_avx2 : NULL;
    case ISD_OP_ISA_AVX512:
        return avx512 ? &isd_op_kern_avx512 : NULL;
    default:
        return NULL;
    }
}

struct isd_op_ctx *isd_op_ctx_new(const struct isd_op_ctx_params *params, struct isd_eng_error *err)
{
    struct isd_op_ctx_params p = {0};
    if (params)
        p = *params;
    if (p.threads < 0 || p.threads > ISD_OP_MAX_THREADS) {
        isd_eng_fail(err, ISD_ENG_EINVAL, "ops: threads %d outside [0, %d]", p.threads,
                     ISD_OP_MAX_THREADS);
        return NULL;
    }
    const struct isd_op_kern *kern = pick_kern(p.isa);
    if (!kern) {
        isd_eng_fail(err, ISD_ENG_EUNSUPPORTED, "ops: instruction set %d not supported here",
                     p.isa);
        return NULL;
    }
    struct isd_op_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        isd_eng_fail(err, ISD_ENG_ENOMEM, "ops: out of memory");
        return NULL;
    }
    ctx->reference = p.reference != 0;
    const char *wino = getenv("ISD_OPS_WINOGRAD");
    ctx->winograd = !wino || !*wino            ? ISD_OP_WINO_AUTO
                    : strcmp(wino, "0") == 0   ? ISD_OP_WINO_NEVER
                    : strcmp(wino, "all") == 0 ? ISD_OP_WINO_ALL
                                               : ISD_OP_WINO_AUTO;
    ctx->kern = kern;
    pthread_mutex_init(&ctx->mu, NULL);
    pthread_cond_init(&ctx->wake, NULL);
    pthread_cond_init(&ctx->done, NULL);
    /* The pool owns parallelism: OpenBLAS runs single-threaded inside each worker. */
    openblas_set_num_threads(1);
    if (pool_start(ctx, p.threads ? p.threads : online_cores()) < 0) {
        isd_eng_fail(err, ctx->err.code, "%s", ctx->err.msg);
        isd_op_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

void isd_op_ctx_free(struct isd_op_ctx *ctx)
{
    if (!ctx)
        return;
    pool_stop(ctx);
    pthread_cond_destroy(&ctx->done);
    pthread_cond_destroy(&ctx->wake);
    pthread_mutex_destroy(&ctx->mu);
    free(ctx);
}

int isd_op_threads(const struct isd_op_ctx *ctx)
{
    return ctx ? ctx->threads : 0;
}

const char *isd_op_impl_name(const struct isd_op_ctx *ctx)
{
    if (!ctx)
        return "none";
    return ctx->reference ? "reference" : ctx->kern->name;
}

const struct isd_eng_error *isd_op_error(const struct isd_op_ctx *ctx)
{
    return ctx ? &ctx->err : NULL;
}
