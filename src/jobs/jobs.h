/*
 * jobs: a bounded queue of jobs served by a fixed pool of worker threads, plus a monitor
 * thread that notices abandoned and overdue jobs.
 *
 * A job is a caller-owned struct isd_job embedded in the caller's request state. Submitting
 * either accepts it (0) or refuses it at once: -ISD_E_BUSY when `queue_size` jobs are already
 * waiting, -ISD_E_UNAVAILABLE while draining. An accepted job ends in exactly one of:
 *   run(job), then release(job)   on a worker. run() does the work (job->cancel_reason may be
 *                 set meanwhile: run() looks at it through isd_job_should_stop() between steps
 *                 and finishes early); release() follows once the job has left the pool, and is
 *                 where the owner frees it (the job must stay valid until then: the monitor
 *                 may poll it while run() executes).
 *   discard(job, reason)  when it can never run: reason -ISD_E_CANCELLED (its client left
 *                 while it waited) or -ISD_E_UNAVAILABLE (the server is draining). The owner
 *                 frees it there too.
 * After release() or discard() is called, the jobs module never touches the job again.
 *
 * The monitor calls job->poll(job) every `poll_ms` for every queued and running job (with no
 * jobs it sleeps until the next submit: an idle pool has no periodic wake-ups), on the
 * monitor thread, WITH the pool's lock held (so the job cannot be released meanwhile): poll()
 * must be quick (no blocking I/O) and must not call isd_jobs_* functions. It returns a negative
 * reason to cancel the job
 * (-ISD_E_CANCELLED for a client gone, -ISD_E_TIMEOUT), 0 otherwise. A queued job cancelled
 * this way is removed from the queue and discarded at once (its slot is free again); a running
 * one gets job->cancel_reason set and must stop at its next check.
 *
 * Sizes: `workers` threads (0 = online CPUs), `queue_size` waiting jobs (0 = none may wait).
 * Threading: submit/stats/drain from any thread. Counters are for operators and metrics.
 *
 *     isd_jobs_new(&(struct isd_jobs_config){.workers = 2, .queue_size = 64}, &jobs, &err);
 *     job->run = my_run; job->release = my_free; job->discard = my_discard; job->poll = my_poll;
 *     if (isd_jobs_submit(jobs, job) < 0) respond 429 / 503;
 *     isd_jobs_drain(jobs, 30.0);  isd_jobs_free(jobs);
 */
#ifndef ISD_JOBS_H
#define ISD_JOBS_H

#include "err/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct isd_job {
    void (*run)(struct isd_job *job);
    void (*release)(struct isd_job *job);
    void (*discard)(struct isd_job *job, int reason);
    int (*poll)(struct isd_job *job); /* optional */
    _Atomic int cancel_reason;        /* 0, or why the job must stop (negative error id) */
    int64_t submitted_ns;             /* set by submit (monotonic) */
    int64_t started_ns;               /* set when a worker takes it; 0 while queued */
    /* owned by the jobs module while the job is inside it */
    struct isd_job *next_;
    struct isd_job *prev_;
    bool running_;
};

struct isd_jobs_config {
    int workers;    /* worker threads; 0 = number of online CPUs */
    int queue_size; /* jobs allowed to wait for a worker */
    int poll_ms;    /* monitor period; 0 = 100 ms */
};

struct isd_jobs_stats {
    int workers;             /* threads in the pool */
    int busy;                /* jobs running now */
    int queued;              /* jobs waiting now */
    uint64_t submitted;      /* accepted since start */
    uint64_t completed;      /* run() returned */
    uint64_t rejected_busy;  /* refused because the queue was full */
    uint64_t cancelled;      /* cancelled by poll() while queued or running */
    uint64_t timed_out;      /* of those, for -ISD_E_TIMEOUT */
    uint64_t discarded;      /* never ran (cancelled while queued, or drained) */
    uint64_t monitor_passes; /* times the monitor polled the jobs (none while there are none) */
};

struct isd_jobs;

int isd_jobs_new(const struct isd_jobs_config *cfg, struct isd_jobs **out, struct isd_error *err);
int isd_jobs_submit(struct isd_jobs *jobs, struct isd_job *job);
/* True when the job should stop; run() calls it between units of work. */
static inline bool isd_job_should_stop(struct isd_job *job)
{
    return atomic_load_explicit(&job->cancel_reason, memory_order_relaxed) != 0;
}
/* Marks a job as to be cancelled (any thread); a queued job is discarded by the monitor. */
void isd_jobs_cancel(struct isd_jobs *jobs, struct isd_job *job, int reason);
void isd_jobs_stats(struct isd_jobs *jobs, struct isd_jobs_stats *out);
/* Stops accepting, discards waiting jobs with -ISD_E_UNAVAILABLE, waits up to `grace_s`
 * seconds for running jobs; returns the number still running when it gave up. */
int isd_jobs_drain(struct isd_jobs *jobs, double grace_s);
/* Joins the threads (after drain) and frees; running jobs must have finished. NULL-safe. */
void isd_jobs_free(struct isd_jobs *jobs);

#endif
