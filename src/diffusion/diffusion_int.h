/*
 * diffusion internals shared by diffusion.c (options, loading, the context pool, size planning)
 * and diffusion_run.c (one request).
 */
#ifndef ISD_DIFFUSION_INT_H
#define ISD_DIFFUSION_INT_H

#include "diffusion/diffusion.h"
#include "engine/engine.h"

#include <pthread.h>

#define ISD_DIFFUSION_MAX_N           10   /* caps.max_n (<= ISD_ENGINE_BATCH_MAX) */
#define ISD_DIFFUSION_STEPS_MAX       1000 /* ISD_SMP_STEPS_MAX */
#define ISD_DIFFUSION_THREADS_MAX     256  /* an ops context's limit */
#define ISD_DIFFUSION_CONCURRENCY_MAX 16
#define ISD_DIFFUSION_WAIT_MS         20 /* abort polling while waiting for a context */

struct isd_diffusion {
    struct isd_engine *engine; /* loaded once, read-only, shared by every run */
    int native_size;           /* side of the native resolution class (resolved) */
    int multiple;              /* generation sides are multiples of this */
    int steps[ISD_DQ__COUNT];
    char *sampler[ISD_DQ__COUNT]; /* owned copies of the options' strings */
    char *scheduler;
    char *negative_prompt;
    char *variation_prompt;
    double guidance, edit_strength, variation_strength;
    /* ops contexts: one generation at a time on each */
    struct isd_op_ctx *ops[ISD_DIFFUSION_CONCURRENCY_MAX];
    int busy[ISD_DIFFUSION_CONCURRENCY_MAX]; /* under mu */
    int n_ops;                               /* contexts created */
    int threads_each;                        /* threads of each context */
    pthread_mutex_t mu;                      /* guards busy[] */
    pthread_cond_t cv;                       /* a context became free (CLOCK_MONOTONIC) */
    int sync_ready;                          /* mu and cv were initialised */
};

/* The generator's run() (diffusion_run.c). */
int isd_diffusion_run_(void *state, const struct isd_gen_request *req,
                       const struct isd_gen_hooks *hooks, struct isd_image **out,
                       struct isd_error *err);

/* Takes a free ops context (its index in *slot), waiting in ISD_DIFFUSION_WAIT_MS periods and
 * polling hooks->should_abort between them: 0, or -ISD_E_CANCELLED. */
int isd_diffusion_acquire_(struct isd_diffusion *d, const struct isd_gen_hooks *hooks, int *slot,
                           struct isd_error *err);
void isd_diffusion_release_(struct isd_diffusion *d, int slot);

#endif
