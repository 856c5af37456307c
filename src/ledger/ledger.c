#include "ledger/ledger.h"

#include "log/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct isd_usage_row row; /* its strings point into the buffers below */
    char endpoint[16], quality[16], output_format[16], error_code[64];
    void (*done)(void *ctx);
    void *ctx;
    struct entry *next;
};

#define BATCH_MAX 256

struct isd_ledger {
    struct isd_store *store;
    bool enabled;
    pthread_mutex_t lock;
    pthread_cond_t work; /* rows queued, or stopping */
    struct entry *head, *tail;
    bool stopping;
    bool started;
    pthread_t thread;
    struct isd_ledger_stats stats;
};

static void commit_batch(struct isd_ledger *l, struct entry *batch)
{
    struct isd_usage_row rows[BATCH_MAX];
    struct entry *e = batch;
    while (e) {
        size_t n = 0;
        struct entry *first = e;
        for (; e && n < BATCH_MAX; e = e->next)
            rows[n++] = e->row;
        struct isd_error err;
        int rc = isd_store_usage_insert(l->store, rows, n, &err);
        if (rc < 0)
            isd_log_event(ISD_LOG_ERROR, "ledger_write_failed", "msg", err.message);
        pthread_mutex_lock(&l->lock);
        l->stats.batches++;
        if (rc < 0)
            l->stats.failures += n;
        else
            l->stats.rows += n;
        pthread_mutex_unlock(&l->lock);
        for (struct entry *d = first; d != e;) {
            struct entry *next = d->next;
            d->done(d->ctx);
            free(d);
            d = next;
        }
    }
}

static void *writer_main(void *arg)
{
    struct isd_ledger *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->head && !l->stopping)
            pthread_cond_wait(&l->work, &l->lock);
        struct entry *batch = l->head;
        l->head = l->tail = NULL;
        bool stop = l->stopping && !batch;
        pthread_mutex_unlock(&l->lock);
        if (stop)
            return NULL;
        commit_batch(l, batch);
        pthread_mutex_lock(&l->lock);
    }
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
        if (pthread_create(&l->thread, NULL, writer_main, l) != 0) {
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
    }
    pthread_cond_destroy(&l->work);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Copies `s` (NULL stays NULL) into `buf`, cut to its size: the row's strings are short codes. */
static const char *copy_str(char *buf, size_t cap, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strnlen(s, cap - 1);
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

int isd_ledger_record(struct isd_ledger *l, const struct isd_usage_row *row,
                      void (*done)(void *ctx), void *ctx)
{
    struct entry *e = l->enabled ? malloc(sizeof *e) : NULL;
    if (!e) {
        if (l->enabled) {
            isd_log_event(ISD_LOG_ERROR, "ledger_write_failed", "msg", "out of memory");
            pthread_mutex_lock(&l->lock);
            l->stats.failures++;
            pthread_mutex_unlock(&l->lock);
        }
        done(ctx);
        return 0;
    }
    e->row = *row;
    e->row.endpoint = copy_str(e->endpoint, sizeof e->endpoint, row->endpoint);
    e->row.quality = copy_str(e->quality, sizeof e->quality, row->quality);
    e->row.output_format = copy_str(e->output_format, sizeof e->output_format, row->output_format);
    e->row.error_code = copy_str(e->error_code, sizeof e->error_code, row->error_code);
    e->done = done;
    e->ctx = ctx;
    e->next = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

void isd_ledger_commit(struct isd_ledger *l, const struct isd_usage_row *row)
{
    if (!l->enabled)
        return;
    struct isd_error err;
    int rc = isd_store_usage_insert(l->store, row, 1, &err);
    if (rc < 0)
        isd_log_event(ISD_LOG_ERROR, "ledger_write_failed", "msg", err.message);
    pthread_mutex_lock(&l->lock);
    l->stats.batches++;
    if (rc < 0)
        l->stats.failures++;
    else
        l->stats.rows++;
    pthread_mutex_unlock(&l->lock);
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
