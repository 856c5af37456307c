#include "limits/limits.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exact integer buckets: one token is `window_ns` units of credit and a bucket of limit L
 * gains L units per nanosecond, so refills never drift and "wait retry_after" always admits.
 * Products of limits (up to 1e9) and nanoseconds need more than 64 bits. */
__extension__ typedef __int128 wide;

struct bucket {
    wide credit;   /* available now (at `stamp`), in token * window_ns units */
    int64_t stamp; /* monotonic ns of `credit` */
};

struct key_state {
    struct bucket requests;
    struct bucket images;
    long in_flight;
    struct key_state *next;
    char key[]; /* NUL-terminated */
};

#define BUCKETS 256

struct isd_limits {
    pthread_mutex_t lock;
    int64_t window_ns;                /* time for a full refill */
    struct key_state *table[BUCKETS]; /* chained by hash of the key id */
};

struct isd_limits *isd_limits_new(double window_seconds)
{
    struct isd_limits *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->lock, NULL);
    if (!(window_seconds > 0) || window_seconds > 1e9)
        window_seconds = 60.0;
    l->window_ns = (int64_t)llround(window_seconds * 1e9);
    if (l->window_ns < 1)
        l->window_ns = 1;
    return l;
}

void isd_limits_free(struct isd_limits *l)
{
    if (!l)
        return;
    for (int i = 0; i < BUCKETS; i++) {
        for (struct key_state *k = l->table[i]; k;) {
            struct key_state *next = k->next;
            free(k);
            k = next;
        }
    }
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

static wide full(long limit, int64_t window_ns)
{
    return (wide)limit * window_ns;
}

/* The key's state, created full; NULL when out of memory. Called with the lock held. */
static struct key_state *state_of(struct isd_limits *l, const char *key,
                                  const struct isd_limit_rule *r, int64_t now)
{
    unsigned h = hash(key);
    for (struct key_state *k = l->table[h]; k; k = k->next)
        if (strcmp(k->key, key) == 0)
            return k;
    size_t len = strlen(key);
    struct key_state *k = calloc(1, sizeof *k + len + 1);
    if (!k)
        return NULL;
    memcpy(k->key, key, len + 1);
    k->requests = (struct bucket){full(r->rpm, l->window_ns), now};
    k->images = (struct bucket){full(r->ipm, l->window_ns), now};
    k->next = l->table[h];
    l->table[h] = k;
    return k;
}

/* Refills `b` up to `limit` for the time since its stamp. */
static void refill(struct bucket *b, long limit, int64_t window_ns, int64_t now)
{
    wide cap = full(limit, window_ns);
    if (now > b->stamp) {
        int64_t elapsed = now - b->stamp;
        b->credit = elapsed >= window_ns ? cap : b->credit + (wide)limit * elapsed;
        b->stamp = now;
    }
    if (b->credit > cap) /* also when the rule was lowered */
        b->credit = cap;
}

/* Nanoseconds until `b` holds `need` tokens (0 when it does). */
static int64_t wait_for(const struct bucket *b, long limit, int64_t window_ns, long need)
{
    wide deficit = (wide)need * window_ns - b->credit;
    if (deficit <= 0)
        return 0;
    return (int64_t)((deficit + limit - 1) / limit);
}

static void fill_state(const struct bucket *b, long limit, int64_t window_ns, long *remaining,
                       double *reset)
{
    *remaining = (long)(b->credit / window_ns);
    wide missing = full(limit, window_ns) - b->credit;
    *reset = (double)((missing + limit - 1) / limit) / 1e9;
}

int isd_limits_take(struct isd_limits *l, const char *key, const struct isd_limit_rule *rule,
                    int requests, int images, bool slot, int64_t now_ns, struct isd_limit_state *st)
{
    memset(st, 0, sizeof *st);
    st->limit_requests = rule->rpm;
    st->limit_images = rule->ipm;
    int64_t w = l->window_ns;
    pthread_mutex_lock(&l->lock);
    struct key_state *k = state_of(l, key, rule, now_ns);
    if (!k) {
        pthread_mutex_unlock(&l->lock);
        return 0; /* out of memory: do not refuse service over bookkeeping */
    }
    if (rule->rpm > 0)
        refill(&k->requests, rule->rpm, w, now_ns);
    if (rule->ipm > 0)
        refill(&k->images, rule->ipm, w, now_ns);
    int64_t wait_req = rule->rpm > 0 ? wait_for(&k->requests, rule->rpm, w, requests) : 0;
    int64_t wait_img = rule->ipm > 0 ? wait_for(&k->images, rule->ipm, w, images) : 0;
    /* a request for more images than the limit can never pass: report a full window */
    if (rule->ipm > 0 && images > rule->ipm)
        wait_img = w;
    bool busy = slot && rule->max_concurrent > 0 && k->in_flight >= rule->max_concurrent;
    /* name the first limit that refuses, and wait until every bucket has enough */
    int64_t wait = wait_req > wait_img ? wait_req : wait_img;
    if (wait_req > 0)
        st->refused = ISD_LIMIT_REQUESTS, st->retry_after = (double)wait / 1e9;
    else if (wait_img > 0)
        st->refused = ISD_LIMIT_IMAGES, st->retry_after = (double)wait / 1e9;
    else if (busy)
        st->refused = ISD_LIMIT_CONCURRENT, st->retry_after = 1.0;
    if (!st->refused) {
        if (rule->rpm > 0)
            k->requests.credit -= (wide)requests * w;
        if (rule->ipm > 0)
            k->images.credit -= (wide)images * w;
        if (slot)
            k->in_flight++;
    }
    if (rule->rpm > 0)
        fill_state(&k->requests, rule->rpm, w, &st->remaining_requests, &st->reset_requests);
    if (rule->ipm > 0)
        fill_state(&k->images, rule->ipm, w, &st->remaining_images, &st->reset_images);
    st->in_flight = k->in_flight;
    pthread_mutex_unlock(&l->lock);
    return st->refused ? -1 : 0;
}

void isd_limits_release(struct isd_limits *l, const char *key)
{
    pthread_mutex_lock(&l->lock);
    for (struct key_state *k = l->table[hash(key)]; k; k = k->next) {
        if (strcmp(k->key, key) == 0) {
            if (k->in_flight > 0)
                k->in_flight--;
            break;
        }
    }
    pthread_mutex_unlock(&l->lock);
}

void isd_limits_duration(double seconds, char *out, int cap)
{
    if (seconds < 0)
        seconds = 0;
    long ms = lround(seconds * 1000.0);
    if (ms < 1000) {
        snprintf(out, (size_t)cap, "%ldms", ms);
        return;
    }
    long total = lround(ceil(seconds - 1e-9));
    if (total < 60)
        snprintf(out, (size_t)cap, "%lds", total);
    else if (total < 3600)
        snprintf(out, (size_t)cap, "%ldm%lds", total / 60, total % 60);
    else
        snprintf(out, (size_t)cap, "%ldh%ldm%lds", total / 3600, total / 60 % 60, total % 60);
}
