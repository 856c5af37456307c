#include "ledger/ledger.h"

#include "log/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct isd_ledger {
    struct isd_store *store;
    bool enabled;
    pthread_mutex_t lock;
    pthread_cond_t work; /* rows appended, or stopping */
    bool pending;        /* rows appended since the last import started */
    bool stopping;
    bool started;
    pthread_t thread;
    struct isd_ledger_stats stats;
};

/* Imports the journal; counts and logs the outcome. */
static int import(struct isd_ledger *l, struct isd_error *err)
{
    struct isd_usage_import got;
    int rc = isd_store_usage_import(l->store, true, &got, err);
    pthread_mutex_lock(&l->lock);
    if (rc < 0) {
        l->stats.import_failures++;
    } else {
        l->stats.imported += got.rows;
        l->stats.batches += got.rows > 0;
        l->stats.damaged_bytes += got.damaged_bytes;
    }
    pthread_mutex_unlock(&l->lock);
    if (rc < 0)
        isd_log_event(ISD_LOG_ERROR, "ledger_import_failed", "msg", err->message);
    else if (got.damaged_bytes)
        isd_log_event(ISD_LOG_WARN, "ledger_journal_damaged", "msg",
                      "skipped unreadable bytes in usage.journal (a record cut short by a "
                      "killed process, or a damaged disk)");
    return rc;
}

static void *importer_main(void *arg)
{
    struct isd_ledger *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stopping) {
        while (!l->pending && !l->stopping)
            pthread_cond_wait(&l->work, &l->lock);
        /* let rows gather for a while: one transaction for all of them */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += ISD_LEDGER_IMPORT_INTERVAL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!l->stopping && pthread_cond_timedwait(&l->work, &l->lock, &until) == 0) {
        }
        l->pending = false;
        pthread_mutex_unlock(&l->lock);
        struct isd_error err;
        import(l, &err);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int isd_ledger_new(struct isd_store *st, bool enabled, struct isd_ledger **out,
                   struct isd_error *err)
{
    struct isd_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    l->store = st;
    l->enabled = enabled;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->work, NULL);
    if (enabled) {
        int rc = import(l, err); /* what a killed process left */
        if (rc < 0) {
            isd_ledger_free(l);
            return rc;
        }
        if (pthread_create(&l->thread, NULL, importer_main, l) != 0) {
            isd_ledger_free(l);
            return isd_err_set(err, ISD_E_INTERNAL, NULL, "cannot start the ledger thread");
        }
        l->started = true;
    }
    *out = l;
    return 0;
}

void isd_ledger_free(struct isd_ledger *l)
{
    if (!l)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->lock);
        l->stopping = true;
        pthread_cond_signal(&l->work);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
        struct isd_error err;
        import(l, &err);
    }
    pthread_cond_destroy(&l->work);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int isd_ledger_record(struct isd_ledger *l, const struct isd_usage_row *row)
{
    if (!l->enabled)
        return 0;
    struct isd_error err;
    int rc = isd_store_usage_append(l->store, row, &err);
    pthread_mutex_lock(&l->lock);
    if (rc < 0) {
        l->stats.failures++;
    } else {
        l->stats.rows++;
        if (!l->pending) {
            l->pending = true;
            pthread_cond_signal(&l->work);
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (rc < 0)
        isd_log_event(ISD_LOG_ERROR, "ledger_write_failed", "msg", err.message);
    return rc < 0 ? -1 : 0;
}

int isd_ledger_flush(struct isd_ledger *l, struct isd_error *err)
{
    return l->enabled ? import(l, err) : 0;
}

bool isd_ledger_enabled(const struct isd_ledger *l)
{
    return l->enabled;
}

void isd_ledger_stats(struct isd_ledger *l, struct isd_ledger_stats *out)
{
    pthread_mutex_lock(&l->lock);
    *out = l->stats;
    pthread_mutex_unlock(&l->lock);
}
