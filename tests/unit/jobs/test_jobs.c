/*
 * jobs: the bounded queue, the worker pool and the monitor. Jobs here block on a gate the test
 * opens, count their callbacks under one mutex and signal a condition variable at every
 * callback, so the test waits for events instead of sleeping. The only polling is inside a
 * blocked run(), which must notice cancel_reason (set by the monitor without a signal): it
 * re-checks every 2 ms, with a 5 s deadline everywhere so a broken pool fails instead of
 * hanging. The monitor runs every 10 ms.
 */
#include "support/test.h"

#include "jobs/jobs.h"
#include "sys/sys.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_S 5
#define POLL_MS    10

struct harness {
    pthread_mutex_t m;
    pthread_cond_t cv;
    bool gate_open; /* blocked run()s return */
    int started;    /* run() entered */
    int releases;   /* release() called */
    int discards;   /* discard() called */
    bool timed_out; /* a run() gave up waiting: the pool is broken */
    /* release() observations for heap jobs (which are freed there) */
    struct isd_jobs *jobs;
    int busy_seen[16];
    uint64_t completed_seen[16];
};

struct tjob {
    struct isd_job job; /* first: callbacks cast back */
    struct harness *h;
    int index;
    bool block;
    bool heap;
    atomic_int poll_result;
    atomic_int polls;
    /* under h->m */
    int runs, releases, discards, discard_reason;
    bool saw_stop;
    int stop_reason;
};

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void job_run(struct isd_job *job)
{
    struct tjob *t = (struct tjob *)job;
    struct harness *h = t->h;
    pthread_mutex_lock(&h->m);
    t->runs++;
    h->started++;
    pthread_cond_broadcast(&h->cv);
    int64_t give_up = isd_mono_ns() + (int64_t)DEADLINE_S * 1000000000;
    while (t->block && !h->gate_open) {
        if (isd_job_should_stop(job)) {
            t->saw_stop = true;
            t->stop_reason = atomic_load(&job->cancel_reason);
            break;
        }
        if (isd_mono_ns() > give_up) {
            h->timed_out = true;
            break;
        }
        struct timespec ts;
        deadline_in(&ts, 2);
        pthread_cond_timedwait(&h->cv, &h->m, &ts);
    }
    pthread_mutex_unlock(&h->m);
}

static void job_release(struct isd_job *job)
{
    struct tjob *t = (struct tjob *)job;
    struct harness *h = t->h;
    if (t->heap && h->jobs) {
        /* the job has left the pool: it is not counted busy, and it is counted completed */
        struct isd_jobs_stats st;
        isd_jobs_stats(h->jobs, &st);
        h->busy_seen[t->index] = st.busy;
        h->completed_seen[t->index] = st.completed;
    }
    pthread_mutex_lock(&h->m);
    t->releases++;
    h->releases++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->m);
    if (t->heap)
        free(t);
}

static void job_discard(struct isd_job *job, int reason)
{
    struct tjob *t = (struct tjob *)job;
    struct harness *h = t->h;
    pthread_mutex_lock(&h->m);
    t->discards++;
    t->discard_reason = reason;
    h->discards++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->m);
    if (t->heap)
        free(t);
}

static int job_poll(struct isd_job *job)
{
    struct tjob *t = (struct tjob *)job;
    atomic_fetch_add(&t->polls, 1);
    return atomic_load(&t->poll_result);
}

static void harness_init(struct harness *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->m, NULL);
    pthread_cond_init(&h->cv, NULL);
}

static void harness_release(struct harness *h)
{
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->m);
}

static void tjob_init(struct tjob *t, struct harness *h, bool block)
{
    memset(t, 0, sizeof *t);
    t->h = h;
    t->block = block;
    t->job.run = job_run;
    t->job.release = job_release;
    t->job.discard = job_discard;
    t->job.poll = job_poll;
}

/* Waits until *count >= target (count guarded by h->m); false after the deadline. */
static bool wait_count(struct harness *h, const int *count, int target)
{
    struct timespec ts;
    deadline_in(&ts, DEADLINE_S * 1000L);
    pthread_mutex_lock(&h->m);
    int rc = 0;
    while (*count < target && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&h->cv, &h->m, &ts);
    bool ok = *count >= target;
    pthread_mutex_unlock(&h->m);
    return ok;
}

static int locked_int(struct harness *h, const int *v)
{
    pthread_mutex_lock(&h->m);
    int x = *v;
    pthread_mutex_unlock(&h->m);
    return x;
}

static void open_gate(struct harness *h)
{
    pthread_mutex_lock(&h->m);
    h->gate_open = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->m);
}

static struct isd_jobs *new_jobs(int workers, int queue_size, int poll_ms)
{
    struct isd_jobs *jobs = NULL;
    struct isd_error err;
    struct isd_jobs_config cfg = {.workers = workers, .queue_size = queue_size, .poll_ms = poll_ms};
    assert_int_equal(isd_jobs_new(&cfg, &jobs, &err), 0);
    assert_non_null(jobs);
    return jobs;
}

static void workers_run_jobs(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(2, 8, POLL_MS);
    struct tjob t[10];
    for (int i = 0; i < 10; i++) {
        tjob_init(&t[i], &h, false);
        assert_int_equal(isd_jobs_submit(jobs, &t[i].job), 0);
    }
    assert_true(wait_count(&h, &h.releases, 10));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(t[i].runs, 1);
        assert_int_equal(t[i].releases, 1);
        assert_int_equal(t[i].discards, 0);
        assert_true(t[i].job.submitted_ns > 0);
        assert_true(t[i].job.started_ns >= t[i].job.submitted_ns);
    }
    struct isd_jobs_stats st;
    isd_jobs_stats(jobs, &st);
    assert_int_equal(st.workers, 2);
    assert_int_equal(st.submitted, 10);
    assert_int_equal(st.completed, 10);
    assert_int_equal(st.busy, 0);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.rejected_busy, 0);
    assert_int_equal(st.cancelled, 0);
    assert_int_equal(st.discarded, 0);
    assert_int_equal(isd_jobs_drain(jobs, 1.0), 0);
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

/* Capacity = workers + queue_size; one more is refused at once with -ISD_E_BUSY. */
static void capacity_is_workers_plus_queue(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(2, 3, POLL_MS);
    struct tjob t[8];
    for (int i = 0; i < 5; i++) {
        tjob_init(&t[i], &h, true);
        assert_int_equal(isd_jobs_submit(jobs, &t[i].job), 0);
    }
    assert_true(wait_count(&h, &h.started, 2));
    tjob_init(&t[5], &h, true);
    tjob_init(&t[6], &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &t[5].job), -ISD_E_BUSY);
    assert_int_equal(isd_jobs_submit(jobs, &t[6].job), -ISD_E_BUSY);
    struct isd_jobs_stats st;
    isd_jobs_stats(jobs, &st);
    assert_int_equal(st.busy, 2);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.submitted, 5);
    assert_int_equal(st.rejected_busy, 2);
    assert_int_equal(locked_int(&h, &h.started), 2); /* nothing beyond the workers runs */

    open_gate(&h);
    assert_true(wait_count(&h, &h.releases, 5));
    /* refused jobs were never touched */
    assert_int_equal(t[5].runs + t[5].releases + t[5].discards, 0);
    /* room again */
    tjob_init(&t[7], &h, false);
    assert_int_equal(isd_jobs_submit(jobs, &t[7].job), 0);
    assert_true(wait_count(&h, &h.releases, 6));
    isd_jobs_stats(jobs, &st);
    assert_int_equal(st.completed, 6);
    assert_int_equal(st.submitted, 6);
    assert_int_equal(st.busy + st.queued, 0);
    isd_jobs_free(jobs);
    harness_release(&h);

    /* queue_size 0: only what the workers take */
    harness_init(&h);
    jobs = new_jobs(1, 0, POLL_MS);
    tjob_init(&t[0], &h, true);
    tjob_init(&t[1], &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &t[0].job), 0);
    assert_int_equal(isd_jobs_submit(jobs, &t[1].job), -ISD_E_BUSY);
    assert_true(wait_count(&h, &h.started, 1));
    assert_int_equal(isd_jobs_submit(jobs, &t[1].job), -ISD_E_BUSY);
    open_gate(&h);
    assert_true(wait_count(&h, &h.releases, 1));
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

/* poll() cancelling a queued job: discarded promptly with its reason, never run; slot free. */
static void queued_job_cancelled_by_poll(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(1, 2, POLL_MS);
    struct tjob a, b, c, d, e;
    tjob_init(&a, &h, true);
    tjob_init(&b, &h, true);
    tjob_init(&c, &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    assert_true(wait_count(&h, &h.started, 1));
    assert_int_equal(isd_jobs_submit(jobs, &b.job), 0);
    assert_int_equal(isd_jobs_submit(jobs, &c.job), 0);
    int64_t t0 = isd_mono_ns();
    atomic_store(&b.poll_result, -ISD_E_CANCELLED);
    assert_true(wait_count(&h, &h.discards, 1));
    double elapsed = (double)(isd_mono_ns() - t0) / 1e9;
    print_message("queued job discarded %.0f ms after poll() said so (period %d ms)\n",
                  elapsed * 1e3, POLL_MS);
    assert_true(elapsed < 1.0);
    assert_int_equal(locked_int(&h, &b.discards), 1);
    assert_int_equal(locked_int(&h, &b.discard_reason), -ISD_E_CANCELLED);
    assert_int_equal(locked_int(&h, &b.runs), 0);

    /* its slot is free: A runs, C and D wait; E is one too many */
    tjob_init(&d, &h, true);
    tjob_init(&e, &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &d.job), 0);
    assert_int_equal(isd_jobs_submit(jobs, &e.job), -ISD_E_BUSY);

    struct isd_jobs_stats st;
    isd_jobs_stats(jobs, &st);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.timed_out, 0);
    assert_int_equal(st.discarded, 1);
    assert_int_equal(st.rejected_busy, 1);
    assert_int_equal(st.queued, 2);

    open_gate(&h);
    assert_true(wait_count(&h, &h.releases, 3));
    assert_int_equal(locked_int(&h, &b.releases), 0);
    assert_int_equal(locked_int(&h, &c.runs), 1);
    assert_int_equal(locked_int(&h, &d.runs), 1);
    isd_jobs_stats(jobs, &st);
    assert_int_equal(st.completed, 3);
    assert_int_equal(st.submitted, st.completed + st.discarded);
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

/* Waits until the monitor has polled `t` at least once: from then on the monitor is either
 * in its pass (holding the pool's lock) or waiting, so a signal cannot miss it. */
static bool wait_first_pass(struct tjob *t)
{
    int64_t give_up = isd_mono_ns() + (int64_t)DEADLINE_S * 1000000000;
    while (atomic_load(&t->polls) == 0) {
        if (isd_mono_ns() > give_up)
            return false;
        usleep(1000);
    }
    return true;
}

#define SLOW_POLL_MS 300

/* isd_jobs_cancel() wakes the monitor: a queued job goes at once, not at the next period. */
static void cancel_wakes_the_monitor(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(1, 1, SLOW_POLL_MS);
    struct tjob a, b;
    tjob_init(&a, &h, true);
    tjob_init(&b, &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    assert_true(wait_count(&h, &h.started, 1));
    assert_int_equal(isd_jobs_submit(jobs, &b.job), 0);
    assert_true(wait_first_pass(&a));
    int64_t t0 = isd_mono_ns();
    isd_jobs_cancel(jobs, &b.job, -ISD_E_CANCELLED);
    assert_true(wait_count(&h, &h.discards, 1));
    double ms = (double)(isd_mono_ns() - t0) / 1e6;
    print_message("cancelled queued job discarded after %.0f ms (period %d ms)\n", ms,
                  SLOW_POLL_MS);
    assert_true(ms < SLOW_POLL_MS / 2);
    assert_int_equal(locked_int(&h, &b.discard_reason), -ISD_E_CANCELLED);
    assert_int_equal(locked_int(&h, &b.runs), 0);
    open_gate(&h);
    assert_true(wait_count(&h, &h.releases, 1));
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

/* Regression test (fixed): isd_jobs_cancel() wakes the monitor with a bare pthread_cond_signal()
 * and the monitor waits without a predicate (src/jobs/jobs.c, isd_jobs_cancel / monitor_main), so
 * the wakeup is lost whenever the monitor is not waiting at that instant: while it runs
 * discard_list() (lock released), or before its first wait right after isd_jobs_new(). The
 * cancelled queued job then waits a whole period (100 ms by default) instead of going "promptly".
 * Seen here deterministically: B is cancelled while the monitor is inside C's discard(); B goes
 * only at the next period (~300 ms). The same race made an earlier version of
 * cancel_wakes_the_monitor fail 2 runs in 3 under ASan. Fix: a "cancel pending" flag checked before
 * waiting, or let isd_jobs_cancel() unlink a queued job itself under the lock and discard it. */
struct discard_gate {
    pthread_mutex_t m;
    pthread_cond_t cv;
    bool inside, may_leave;
};

static struct discard_gate dgate;

static void gated_discard(struct isd_job *job, int reason)
{
    pthread_mutex_lock(&dgate.m);
    dgate.inside = true;
    pthread_cond_broadcast(&dgate.cv);
    struct timespec ts;
    deadline_in(&ts, DEADLINE_S * 1000L);
    while (!dgate.may_leave && pthread_cond_timedwait(&dgate.cv, &dgate.m, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&dgate.m);
    job_discard(job, reason);
}

static void cancel_during_a_discard_is_not_lost(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    memset(&dgate, 0, sizeof dgate);
    pthread_mutex_init(&dgate.m, NULL);
    pthread_cond_init(&dgate.cv, NULL);
    struct isd_jobs *jobs = new_jobs(1, 2, SLOW_POLL_MS);
    struct tjob a, b, c;
    tjob_init(&a, &h, true);
    tjob_init(&b, &h, true);
    tjob_init(&c, &h, true);
    c.job.discard = gated_discard;
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    assert_true(wait_count(&h, &h.started, 1));
    assert_int_equal(isd_jobs_submit(jobs, &b.job), 0);
    assert_int_equal(isd_jobs_submit(jobs, &c.job), 0);
    assert_true(wait_first_pass(&a));
    isd_jobs_cancel(jobs, &c.job, -ISD_E_CANCELLED);
    /* the monitor is now inside C's discard(), without the pool's lock */
    struct timespec ts;
    deadline_in(&ts, DEADLINE_S * 1000L);
    pthread_mutex_lock(&dgate.m);
    while (!dgate.inside && pthread_cond_timedwait(&dgate.cv, &dgate.m, &ts) != ETIMEDOUT)
        ;
    bool inside = dgate.inside;
    pthread_mutex_unlock(&dgate.m);
    int64_t t0 = isd_mono_ns();
    isd_jobs_cancel(jobs, &b.job, -ISD_E_CANCELLED);
    pthread_mutex_lock(&dgate.m);
    dgate.may_leave = true;
    pthread_cond_broadcast(&dgate.cv);
    pthread_mutex_unlock(&dgate.m);
    bool discarded = wait_count(&h, &h.discards, 2);
    double ms = (double)(isd_mono_ns() - t0) / 1e6;
    print_message("B discarded %.0f ms after its cancel (period %d ms)\n", ms, SLOW_POLL_MS);
    open_gate(&h);
    wait_count(&h, &h.releases, 1);
    isd_jobs_free(jobs);
    pthread_cond_destroy(&dgate.cv);
    pthread_mutex_destroy(&dgate.m);
    harness_release(&h);
    assert_true(inside);
    assert_true(discarded);
    assert_true(ms < SLOW_POLL_MS / 2);
}

/* poll() cancelling a running job: cancel_reason is set, run() sees it and stops early;
 * the job is released (not discarded). */
static uint64_t monitor_passes(struct isd_jobs *jobs)
{
    struct isd_jobs_stats st;
    isd_jobs_stats(jobs, &st);
    return st.monitor_passes;
}

/* An idle pool's monitor does not wake up; a submitted job is polled every poll_ms while it
 * runs, and once the pool is empty again the polling stops. */
static void idle_monitor_sleeps(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(1, 0, POLL_MS);
    usleep(10 * POLL_MS * 1000);
    assert_int_equal(monitor_passes(jobs), 0);
    struct tjob a;
    tjob_init(&a, &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    assert_true(wait_count(&h, &h.started, 1));
    int64_t give_up = isd_mono_ns() + (int64_t)DEADLINE_S * 1000000000;
    while (atomic_load(&a.polls) < 3 && isd_mono_ns() < give_up)
        usleep(POLL_MS * 1000);
    assert_true(atomic_load(&a.polls) >= 3);
    open_gate(&h);
    assert_true(wait_count(&h, &h.releases, 1));
    /* the count settles (after the pass that finds the pool empty) and then stays */
    uint64_t before, after = monitor_passes(jobs);
    do {
        before = after;
        usleep(10 * POLL_MS * 1000);
        after = monitor_passes(jobs);
    } while (after != before && isd_mono_ns() < give_up);
    assert_int_equal(after, before);
    assert_true(after >= 3);
    usleep(20 * POLL_MS * 1000);
    assert_int_equal(monitor_passes(jobs), after);
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

static void running_job_cancelled_by_poll(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(1, 0, POLL_MS);
    struct tjob a;
    tjob_init(&a, &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    assert_true(wait_count(&h, &h.started, 1));
    assert_false(isd_job_should_stop(&a.job));
    atomic_store(&a.poll_result, -ISD_E_CANCELLED);
    assert_true(wait_count(&h, &h.releases, 1));
    pthread_mutex_lock(&h.m);
    assert_true(a.saw_stop);
    assert_int_equal(a.stop_reason, -ISD_E_CANCELLED);
    assert_int_equal(a.discards, 0);
    assert_int_equal(a.releases, 1);
    pthread_mutex_unlock(&h.m);
    struct isd_jobs_stats st;
    isd_jobs_stats(jobs, &st);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.timed_out, 0);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.discarded, 0);
    assert_int_equal(st.busy, 0);
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

static void timeouts_counted(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(1, 1, POLL_MS);
    struct tjob a, b;
    tjob_init(&a, &h, true);
    tjob_init(&b, &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    assert_true(wait_count(&h, &h.started, 1));
    assert_int_equal(isd_jobs_submit(jobs, &b.job), 0);
    atomic_store(&b.poll_result, -ISD_E_TIMEOUT); /* overdue while waiting */
    assert_true(wait_count(&h, &h.discards, 1));
    assert_int_equal(locked_int(&h, &b.discard_reason), -ISD_E_TIMEOUT);
    atomic_store(&a.poll_result, -ISD_E_TIMEOUT); /* overdue while running */
    assert_true(wait_count(&h, &h.releases, 1));
    assert_int_equal(locked_int(&h, &a.stop_reason), -ISD_E_TIMEOUT);
    struct isd_jobs_stats st;
    isd_jobs_stats(jobs, &st);
    assert_int_equal(st.timed_out, 2);
    assert_int_equal(st.cancelled, 2);
    assert_int_equal(st.discarded, 1);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.submitted, st.completed + st.discarded);
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

/* drain: queued jobs discarded with -ISD_E_UNAVAILABLE before it returns, the running one
 * outlives the grace: drain returns 1 and asks it to stop; later submits are refused. */
static void drain_gives_up_after_grace(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(1, 3, POLL_MS);
    struct tjob a, q[3], late;
    tjob_init(&a, &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    assert_true(wait_count(&h, &h.started, 1));
    for (int i = 0; i < 3; i++) {
        tjob_init(&q[i], &h, true);
        assert_int_equal(isd_jobs_submit(jobs, &q[i].job), 0);
    }
    int64_t t0 = isd_mono_ns();
    int left = isd_jobs_drain(jobs, 0.05);
    double elapsed = (double)(isd_mono_ns() - t0) / 1e9;
    assert_int_equal(left, 1);
    assert_true(elapsed >= 0.045 && elapsed < 2.0);
    /* every queued job was discarded before drain returned */
    pthread_mutex_lock(&h.m);
    assert_int_equal(h.discards, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(q[i].discards, 1);
        assert_int_equal(q[i].discard_reason, -ISD_E_UNAVAILABLE);
        assert_int_equal(q[i].runs, 0);
    }
    pthread_mutex_unlock(&h.m);
    /* the running job was asked to stop */
    assert_true(wait_count(&h, &h.releases, 1));
    assert_int_equal(locked_int(&h, &a.stop_reason), -ISD_E_UNAVAILABLE);

    tjob_init(&late, &h, false);
    assert_int_equal(isd_jobs_submit(jobs, &late.job), -ISD_E_UNAVAILABLE);
    struct isd_jobs_stats st;
    isd_jobs_stats(jobs, &st);
    assert_int_equal(st.discarded, 3);
    assert_int_equal(st.submitted, 4);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.rejected_busy, 0);
    assert_int_equal(st.submitted, st.completed + st.discarded);
    assert_int_equal(isd_jobs_drain(jobs, 0.0), 0); /* again: nothing left */
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

struct drainer {
    struct isd_jobs *jobs;
    struct harness *h;
    bool calling;
    int left;
    double seconds;
};

static void *drain_thread(void *arg)
{
    struct drainer *d = arg;
    pthread_mutex_lock(&d->h->m);
    d->calling = true;
    pthread_cond_broadcast(&d->h->cv);
    pthread_mutex_unlock(&d->h->m);
    int64_t t0 = isd_mono_ns();
    d->left = isd_jobs_drain(d->jobs, 10.0);
    d->seconds = (double)(isd_mono_ns() - t0) / 1e9;
    return NULL;
}

/* drain waits for running jobs that finish within the grace, and does not stop them. */
static void drain_waits_for_running(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(2, 2, POLL_MS);
    struct tjob a, b;
    tjob_init(&a, &h, true);
    tjob_init(&b, &h, true);
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    assert_int_equal(isd_jobs_submit(jobs, &b.job), 0);
    assert_true(wait_count(&h, &h.started, 2));
    struct drainer d = {.jobs = jobs, .h = &h};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain_thread, &d), 0);
    pthread_mutex_lock(&h.m);
    struct timespec ts;
    deadline_in(&ts, DEADLINE_S * 1000L);
    while (!d.calling && pthread_cond_timedwait(&h.cv, &h.m, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&h.m);
    open_gate(&h);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(d.left, 0);
    assert_true(d.seconds < 5.0); /* returned because the jobs ended, not at the grace */
    assert_true(wait_count(&h, &h.releases, 2));
    pthread_mutex_lock(&h.m);
    assert_false(a.saw_stop);
    assert_false(b.saw_stop);
    assert_int_equal(a.discards + b.discards, 0);
    pthread_mutex_unlock(&h.m);
    struct tjob late;
    tjob_init(&late, &h, false);
    assert_int_equal(isd_jobs_submit(jobs, &late.job), -ISD_E_UNAVAILABLE);
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    harness_release(&h);
}

/* release() is called once per run job, after it left the pool (not busy, counted completed);
 * the owner frees the job there and the pool never touches it again (ASan would tell). */
static void release_after_leaving_the_pool(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    struct isd_jobs *jobs = new_jobs(1, 8, POLL_MS);
    h.jobs = jobs;
    for (int i = 0; i < 6; i++) {
        struct tjob *t = malloc(sizeof *t);
        assert_non_null(t);
        tjob_init(t, &h, false);
        t->heap = true;
        t->index = i;
        assert_int_equal(isd_jobs_submit(jobs, &t->job), 0);
    }
    assert_true(wait_count(&h, &h.releases, 6));
    /* one worker, first in first out */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(h.busy_seen[i], 0);
        assert_int_equal(h.completed_seen[i], (uint64_t)i + 1);
    }
    /* discarded heap jobs are freed by their owner too */
    struct tjob *blocker = malloc(sizeof *blocker), *waiting = malloc(sizeof *waiting);
    tjob_init(blocker, &h, true);
    tjob_init(waiting, &h, true);
    blocker->heap = waiting->heap = true;
    blocker->index = 6;
    waiting->index = 7;
    assert_int_equal(isd_jobs_submit(jobs, &blocker->job), 0);
    assert_true(wait_count(&h, &h.started, 7));
    assert_int_equal(isd_jobs_submit(jobs, &waiting->job), 0);
    atomic_store(&waiting->poll_result, -ISD_E_CANCELLED);
    assert_true(wait_count(&h, &h.discards, 1));
    open_gate(&h);
    assert_true(wait_count(&h, &h.releases, 7));
    assert_int_equal(isd_jobs_drain(jobs, 1.0), 0);
    isd_jobs_free(jobs);
    assert_false(h.timed_out);
    assert_int_equal(h.releases, 7);
    assert_int_equal(h.discards, 1);
    harness_release(&h);
}

/* The header once promised that poll() ran without the pool's lock while monitor_pass() held
 * it. The contract now says what the code does, and why: the lock keeps a running job from
 * being released while it is polled, so poll() must be quick and must not call back into the
 * pool. Detected here without deadlocking: inside poll(), another thread calls
 * isd_jobs_stats() and poll() waits up to 300 ms to see whether it returns. */
struct lock_probe {
    pthread_mutex_t m;
    pthread_cond_t cv;
    struct isd_jobs *jobs;
    bool request, done, quit, checked, lock_held;
};

static struct lock_probe probe;

static void *probe_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&probe.m);
    for (;;) {
        while (!probe.request && !probe.quit)
            pthread_cond_wait(&probe.cv, &probe.m);
        if (probe.quit)
            break;
        probe.request = false;
        pthread_mutex_unlock(&probe.m);
        struct isd_jobs_stats st;
        isd_jobs_stats(probe.jobs, &st); /* blocks while the pool's lock is held */
        pthread_mutex_lock(&probe.m);
        probe.done = true;
        pthread_cond_broadcast(&probe.cv);
    }
    pthread_mutex_unlock(&probe.m);
    return NULL;
}

static int probing_poll(struct isd_job *job)
{
    (void)job;
    pthread_mutex_lock(&probe.m);
    if (!probe.checked) {
        probe.checked = true;
        probe.done = false;
        probe.request = true;
        pthread_cond_broadcast(&probe.cv);
        struct timespec ts;
        deadline_in(&ts, 300);
        while (!probe.done && pthread_cond_timedwait(&probe.cv, &probe.m, &ts) != ETIMEDOUT)
            ;
        probe.lock_held = !probe.done;
        pthread_cond_broadcast(&probe.cv);
    }
    pthread_mutex_unlock(&probe.m);
    return 0;
}

/* The contract (jobs.h): poll() runs with the pool's lock held, which is what keeps a running
 * job from being released while it is polled; poll() must therefore be quick. */
static void poll_runs_under_the_pool_lock(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    memset(&probe, 0, sizeof probe);
    pthread_mutex_init(&probe.m, NULL);
    pthread_cond_init(&probe.cv, NULL);
    struct isd_jobs *jobs = new_jobs(1, 0, POLL_MS);
    probe.jobs = jobs;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, probe_thread, NULL), 0);
    struct tjob a;
    tjob_init(&a, &h, true);
    a.job.poll = probing_poll;
    assert_int_equal(isd_jobs_submit(jobs, &a.job), 0);
    /* wait until the probe has run once (and its isd_jobs_stats returned) */
    struct timespec ts;
    deadline_in(&ts, DEADLINE_S * 1000L);
    pthread_mutex_lock(&probe.m);
    while (!(probe.checked && probe.done) &&
           pthread_cond_timedwait(&probe.cv, &probe.m, &ts) != ETIMEDOUT)
        ;
    bool checked = probe.checked, held = probe.lock_held;
    probe.quit = true;
    pthread_cond_broadcast(&probe.cv);
    pthread_mutex_unlock(&probe.m);
    assert_int_equal(pthread_join(th, NULL), 0);
    open_gate(&h);
    assert_true(wait_count(&h, &h.releases, 1));
    isd_jobs_free(jobs);
    pthread_cond_destroy(&probe.cv);
    pthread_mutex_destroy(&probe.m);
    harness_release(&h);
    assert_true(checked);
    assert_true(held);
}

static void sizes_and_free(void **state)
{
    (void)state;
    isd_jobs_free(NULL);
    struct isd_jobs *jobs = new_jobs(0, 0, 0); /* workers 0 = online CPUs, poll 0 = 100 ms */
    struct isd_jobs_stats st;
    isd_jobs_stats(jobs, &st);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(st.workers, cpus > 0 ? cpus : 1);
    isd_jobs_free(jobs);             /* idle pool, no drain: joins cleanly */
    jobs = new_jobs(3, -5, POLL_MS); /* a negative queue is no queue */
    struct harness h;
    harness_init(&h);
    struct tjob t[4];
    for (int i = 0; i < 4; i++)
        tjob_init(&t[i], &h, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(isd_jobs_submit(jobs, &t[i].job), 0);
    assert_int_equal(isd_jobs_submit(jobs, &t[3].job), -ISD_E_BUSY);
    open_gate(&h);
    assert_true(wait_count(&h, &h.releases, 3));
    isd_jobs_free(jobs);
    harness_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(workers_run_jobs),
        cmocka_unit_test(capacity_is_workers_plus_queue),
        cmocka_unit_test(queued_job_cancelled_by_poll),
        cmocka_unit_test(cancel_wakes_the_monitor),
        cmocka_unit_test(cancel_during_a_discard_is_not_lost),
        cmocka_unit_test(running_job_cancelled_by_poll),
        cmocka_unit_test(idle_monitor_sleeps),
        cmocka_unit_test(timeouts_counted),
        cmocka_unit_test(drain_gives_up_after_grace),
        cmocka_unit_test(drain_waits_for_running),
        cmocka_unit_test(release_after_leaving_the_pool),
        cmocka_unit_test(poll_runs_under_the_pool_lock),
        cmocka_unit_test(sizes_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
