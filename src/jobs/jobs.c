#include "jobs/jobs.h"

#include "log/log.h"
#include "sys/sys.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* An intrusive doubly linked list of jobs. */
struct job_list {
    struct isd_job *head;
    struct isd_job *tail;
    int count;
};

struct isd_jobs {
    pthread_mutex_t lock;
    pthread_cond_t work_ready; /* a job was queued, or stopping */
    pthread_cond_t job_ended;  /* a running job ended (drain waits on it) */
    pthread_cond_t monitor_cv; /* wakes the monitor: stopping, a cancel, a submit while idle */
    struct job_list queued;
    struct job_list running;
    int queue_size;
    int poll_ms;
    bool draining;     /* submit refuses */
    bool wake_monitor; /* a cancellation waits for the monitor's next pass */
    bool monitor_idle; /* no jobs: the monitor sleeps until a submit wakes it */
    bool stopping;     /* threads exit */
    pthread_t *workers;
    int n_workers;
    pthread_t monitor;
    bool monitor_started;
    struct isd_jobs_stats stats;
};

static void list_push(struct job_list *l, struct isd_job *j)
{
    j->next_ = NULL;
    j->prev_ = l->tail;
    if (l->tail)
        l->tail->next_ = j;
    else
        l->head = j;
    l->tail = j;
    l->count++;
}

static void list_remove(struct job_list *l, struct isd_job *j)
{
    if (j->prev_)
        j->prev_->next_ = j->next_;
    else
        l->head = j->next_;
    if (j->next_)
        j->next_->prev_ = j->prev_;
    else
        l->tail = j->prev_;
    j->next_ = j->prev_ = NULL;
    l->count--;
}

static void *worker_main(void *arg)
{
    struct isd_jobs *jobs = arg;
    pthread_mutex_lock(&jobs->lock);
    for (;;) {
        while (!jobs->stopping && jobs->queued.count == 0)
            pthread_cond_wait(&jobs->work_ready, &jobs->lock);
        if (jobs->stopping)
            break;
        struct isd_job *job = jobs->queued.head;
        list_remove(&jobs->queued, job);
        job->running_ = true;
        job->started_ns = isd_mono_ns();
        list_push(&jobs->running, job);
        pthread_mutex_unlock(&jobs->lock);

        job->run(job);

        pthread_mutex_lock(&jobs->lock);
        list_remove(&jobs->running, job);
        jobs->stats.completed++;
        pthread_mutex_unlock(&jobs->lock);
        job->release(job);
        pthread_mutex_lock(&jobs->lock);
        pthread_cond_broadcast(&jobs->job_ended);
    }
    pthread_mutex_unlock(&jobs->lock);
    return NULL;
}

/* One monitor pass: asks every job whether it must stop; returns the queued jobs to discard
 * as a list (already unlinked). Called with the lock held. */
static struct isd_job *monitor_pass(struct isd_jobs *jobs)
{
    struct isd_job *discard_head = NULL;
    for (struct isd_job *j = jobs->queued.head; j;) {
        struct isd_job *next = j->next_;
        int reason = atomic_load(&j->cancel_reason);
        if (!reason && j->poll)
            reason = j->poll(j);
        if (reason) {
            atomic_store(&j->cancel_reason, reason);
            list_remove(&jobs->queued, j);
            jobs->stats.cancelled++;
            jobs->stats.timed_out += reason == -ISD_E_TIMEOUT;
            jobs->stats.discarded++;
            j->next_ = discard_head;
            discard_head = j;
        }
        j = next;
    }
    for (struct isd_job *j = jobs->running.head; j; j = j->next_) {
        if (atomic_load(&j->cancel_reason) || !j->poll)
            continue;
        int reason = j->poll(j);
        if (reason) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&j->cancel_reason, &expected, reason)) {
                jobs->stats.cancelled++;
                jobs->stats.timed_out += reason == -ISD_E_TIMEOUT;
            }
        }
    }
    return discard_head;
}

static void discard_list(struct isd_job *j)
{
    while (j) {
        struct isd_job *next = j->next_;
        j->next_ = NULL;
        j->discard(j, atomic_load(&j->cancel_reason));
        j = next;
    }
}

static void *monitor_main(void *arg)
{
    struct isd_jobs *jobs = arg;
    pthread_mutex_lock(&jobs->lock);
    while (!jobs->stopping) {
        /* nothing to watch: no periodic wake-ups until a job is submitted */
        while (!jobs->stopping && !jobs->wake_monitor && jobs->queued.count == 0 &&
               jobs->running.count == 0) {
            jobs->monitor_idle = true;
            pthread_cond_wait(&jobs->monitor_cv, &jobs->lock);
        }
        jobs->monitor_idle = false;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)jobs->poll_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        /* the flag makes a wake-up that came while the monitor was busy count */
        while (!jobs->wake_monitor && !jobs->stopping &&
               pthread_cond_timedwait(&jobs->monitor_cv, &jobs->lock, &until) != ETIMEDOUT)
            ;
        jobs->wake_monitor = false;
        if (jobs->stopping)
            break;
        jobs->stats.monitor_passes++;
        struct isd_job *discards = monitor_pass(jobs);
        if (discards) {
            pthread_mutex_unlock(&jobs->lock);
            discard_list(discards);
            pthread_mutex_lock(&jobs->lock);
        }
    }
    pthread_mutex_unlock(&jobs->lock);
    return NULL;
}

int isd_jobs_new(const struct isd_jobs_config *cfg, struct isd_jobs **out, struct isd_error *err)
{
    struct isd_jobs *jobs = calloc(1, sizeof *jobs);
    if (!jobs)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    pthread_mutex_init(&jobs->lock, NULL);
    pthread_cond_init(&jobs->work_ready, NULL);
    pthread_cond_init(&jobs->job_ended, NULL);
    pthread_cond_init(&jobs->monitor_cv, NULL);
    int n = cfg->workers;
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
    jobs->queue_size = cfg->queue_size < 0 ? 0 : cfg->queue_size;
    jobs->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 100;
    jobs->workers = calloc((size_t)n, sizeof *jobs->workers);
    if (!jobs->workers) {
        isd_jobs_free(jobs);
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&jobs->workers[i], NULL, worker_main, jobs);
        if (rc != 0) {
            isd_jobs_free(jobs);
            return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot start worker thread: %s",
                               strerror(rc));
        }
        jobs->n_workers++;
    }
    int rc = pthread_create(&jobs->monitor, NULL, monitor_main, jobs);
    if (rc != 0) {
        isd_jobs_free(jobs);
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot start the monitor thread: %s",
                           strerror(rc));
    }
    jobs->monitor_started = true;
    jobs->stats.workers = n;
    *out = jobs;
    return 0;
}

int isd_jobs_submit(struct isd_jobs *jobs, struct isd_job *job)
{
    pthread_mutex_lock(&jobs->lock);
    int rc = 0;
    if (jobs->draining || jobs->stopping) {
        rc = -ISD_E_UNAVAILABLE;
    } else if (jobs->queued.count >= jobs->queue_size + (jobs->n_workers - jobs->running.count)) {
        /* room = idle workers (a job handed to them does not wait) + the waiting places */
        jobs->stats.rejected_busy++;
        rc = -ISD_E_BUSY;
    } else {
        atomic_store(&job->cancel_reason, 0);
        job->submitted_ns = isd_mono_ns();
        job->started_ns = 0;
        job->running_ = false;
        list_push(&jobs->queued, job);
        jobs->stats.submitted++;
        pthread_cond_signal(&jobs->work_ready);
        if (jobs->monitor_idle)
            pthread_cond_signal(&jobs->monitor_cv);
    }
    pthread_mutex_unlock(&jobs->lock);
    return rc;
}

void isd_jobs_cancel(struct isd_jobs *jobs, struct isd_job *job, int reason)
{
    pthread_mutex_lock(&jobs->lock);
    int expected = 0;
    if (atomic_compare_exchange_strong(&job->cancel_reason, &expected, reason)) {
        if (job->running_) { /* queued ones are counted when the monitor drops them */
            jobs->stats.cancelled++;
            jobs->stats.timed_out += reason == -ISD_E_TIMEOUT;
        }
        jobs->wake_monitor = true; /* let a queued job be discarded promptly */
        pthread_cond_signal(&jobs->monitor_cv);
    }
    pthread_mutex_unlock(&jobs->lock);
}

void isd_jobs_stats(struct isd_jobs *jobs, struct isd_jobs_stats *out)
{
    pthread_mutex_lock(&jobs->lock);
    *out = jobs->stats;
    out->busy = jobs->running.count;
    out->queued = jobs->queued.count;
    pthread_mutex_unlock(&jobs->lock);
}

int isd_jobs_drain(struct isd_jobs *jobs, double grace_s)
{
    pthread_mutex_lock(&jobs->lock);
    jobs->draining = true;
    struct isd_job *discards = NULL;
    while (jobs->queued.head) {
        struct isd_job *j = jobs->queued.head;
        list_remove(&jobs->queued, j);
        atomic_store(&j->cancel_reason, -ISD_E_UNAVAILABLE);
        jobs->stats.discarded++;
        j->next_ = discards;
        discards = j;
    }
    pthread_mutex_unlock(&jobs->lock);
    discard_list(discards);

    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = (long long)(grace_s * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec += (long)(ns % 1000000000LL);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&jobs->lock);
    while (jobs->running.count > 0) {
        if (pthread_cond_timedwait(&jobs->job_ended, &jobs->lock, &until) == ETIMEDOUT)
            break;
    }
    int left = jobs->running.count;
    /* jobs still running past the grace period are asked to stop */
    for (struct isd_job *j = jobs->running.head; j; j = j->next_) {
        int expected = 0;
        atomic_compare_exchange_strong(&j->cancel_reason, &expected, -ISD_E_UNAVAILABLE);
    }
    pthread_mutex_unlock(&jobs->lock);
    return left;
}

void isd_jobs_free(struct isd_jobs *jobs)
{
    if (!jobs)
        return;
    pthread_mutex_lock(&jobs->lock);
    jobs->stopping = true;
    pthread_cond_broadcast(&jobs->work_ready);
    pthread_cond_broadcast(&jobs->monitor_cv);
    pthread_mutex_unlock(&jobs->lock);
    for (int i = 0; i < jobs->n_workers; i++)
        pthread_join(jobs->workers[i], NULL);
    if (jobs->monitor_started)
        pthread_join(jobs->monitor, NULL);
    free(jobs->workers);
    pthread_cond_destroy(&jobs->work_ready);
    pthread_cond_destroy(&jobs->job_ended);
    pthread_cond_destroy(&jobs->monitor_cv);
    pthread_mutex_destroy(&jobs->lock);
    free(jobs);
}
