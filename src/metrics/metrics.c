#include "metrics/metrics.h"

#include "err/err.h"
#include "text/text.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open-addressing table of a family's series: a power of two, at most half full. */
#define TABLE_SLOTS 512
_Static_assert((TABLE_SLOTS & (TABLE_SLOTS - 1)) == 0, "TABLE_SLOTS is a power of two");
_Static_assert(TABLE_SLOTS >= 2 * ISD_METRICS_MAX_SERIES, "the table stays at most half full");

#define CACHE_LINE 64
#define LE_MAX     32                 /* bytes of a formatted bucket bound, NUL included */
#define EXACT_INT  9007199254740992.0 /* 2^53: integers up to here are exact doubles */
_Static_assert(ISD_METRICS_MAX_VALUE <= 0xFFFF, "series lens are unsigned short");

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

enum family_type { FAMILY_COUNTER, FAMILY_GAUGE, FAMILY_HISTOGRAM, FAMILY_GAUGE_FN };

/* One child series: a label combination and its value. Allocated on a cache-line boundary so
 * two series never share a line; the values updated by every call sit on their own line, away
 * from the key that lookups read. Never moved or freed before the registry. */
struct series {
    uint64_t hash;                               /* of the normalised values, see hash_values */
    const char *values[ISD_METRICS_MAX_LABELS];  /* normalised label values, in this block */
    unsigned short lens[ISD_METRICS_MAX_LABELS]; /* their lengths, <= ISD_METRICS_MAX_VALUE */
    _Alignas(CACHE_LINE) _Atomic uint64_t whole; /* counter: sum of integral adds */
    _Atomic uint64_t bits;     /* double bits: gauge value, counter fractional adds, hist. sum */
    _Atomic uint64_t counts[]; /* histogram: per bucket, not cumulative; n_buckets + 1 (+Inf) */
};

struct isd_metric {
    _Atomic(struct isd_metric *) next;        /* next family in declaration order */
    enum family_type type;                    /* what the family is */
    char *name;                               /* metric name */
    char *help;                               /* valid UTF-8, NULL for no # HELP line */
    int n_labels;                             /* 0..ISD_METRICS_MAX_LABELS */
    char *labels[ISD_METRICS_MAX_LABELS];     /* label names */
    int n_buckets;                            /* histogram: finite bounds, +Inf implied */
    double bounds[ISD_METRICS_MAX_BUCKETS];   /* histogram: strictly increasing */
    char le[ISD_METRICS_MAX_BUCKETS][LE_MAX]; /* histogram: bounds formatted for le="" */
    double (*read)(void *ctx);                /* gauge_fn: the value at exposition */
    void *ctx;                                /* gauge_fn: argument of read */
    pthread_mutex_t insert_lock;              /* serialises series creation */
    _Atomic(struct series *) other;           /* the overflow series once the cap is reached */
    _Atomic int n_series;                     /* entries published in order[] */
    _Atomic(struct series *) order[ISD_METRICS_MAX_SERIES + 1]; /* creation order */
    _Atomic(struct series *) table[TABLE_SLOTS];                /* by hash, linear probing */
};

struct isd_metrics {
    pthread_mutex_t lock;               /* serialises declarations */
    _Atomic(struct isd_metric *) first; /* families in declaration order */
    struct isd_metric *last;            /* under lock */
};

/* ---- label values: normalisation and hashing ---- */

/* Normalises a label value: invalid UTF-8 becomes U+FFFD, then the value is cut to at most
 * ISD_METRICS_MAX_VALUE bytes on a code point boundary. Returns a view into `s` when that is
 * a prefix of it (the common case), else into `scratch` (ISD_METRICS_MAX_VALUE bytes). */
static struct isd_str normalise(const char *s, char *scratch)
{
    if (!s)
        return (struct isd_str){"", 0};
    size_t n = 0;
    while (n < ISD_METRICS_MAX_VALUE && (unsigned char)s[n] - 1u < 0x7Fu)
        n++; /* ASCII without NUL */
    if (s[n] == '\0' || n == ISD_METRICS_MAX_VALUE)
        return (struct isd_str){s, n};
    /* A sequence starting within the first MAX_VALUE bytes ends within MAX_VALUE + 4; no
     * need to look further, since every input byte gives at least one output byte. */
    size_t len = strnlen(s, ISD_METRICS_MAX_VALUE + 4), i = 0, o = 0;
    while (i < len) {
        size_t start = i;
        uint32_t cp = isd_utf8_next(s, len, &i);
        const char *src = s + start;
        size_t k = i - start;
        if (cp == 0xFFFD) {
            src = "\xEF\xBF\xBD";
            k = 3;
        }
        if (o + k > ISD_METRICS_MAX_VALUE)
            break;
        memcpy(scratch + o, src, k);
        o += k;
    }
    return (struct isd_str){scratch, o};
}

/* FNV-1a over each value followed by 0xFF, a byte that valid UTF-8 never contains. */
static uint64_t hash_values(const struct isd_str *v, int n)
{
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)v[i].p;
        for (size_t j = 0; j < v[i].n; j++)
            h = (h ^ p[j]) * FNV_PRIME;
        h = (h ^ 0xFF) * FNV_PRIME;
    }
    return h;
}

/* ---- series lookup and creation ---- */

static bool series_matches(const struct series *s, uint64_t hash, const struct isd_str *v, int n)
{
    if (s->hash != hash)
        return false;
    for (int i = 0; i < n; i++)
        if (s->lens[i] != v[i].n || memcmp(s->values[i], v[i].p, v[i].n) != 0)
            return false;
    return true;
}

/* Lock-free: slots only go from NULL to a series, and a series never moves. */
static struct series *table_find(struct isd_metric *f, uint64_t hash, const struct isd_str *v)
{
    for (size_t i = hash & (TABLE_SLOTS - 1);; i = (i + 1) & (TABLE_SLOTS - 1)) {
        struct series *s = atomic_load_explicit(&f->table[i], memory_order_acquire);
        if (!s || series_matches(s, hash, v, f->n_labels))
            return s;
    }
}

static size_t series_counts(const struct isd_metric *f)
{
    return f->type == FAMILY_HISTOGRAM ? (size_t)f->n_buckets + 1 : 0;
}

/* Under insert_lock, with fewer than ISD_METRICS_MAX_SERIES + 1 series. */
static struct series *series_create(struct isd_metric *f, uint64_t hash, const struct isd_str *v)
{
    size_t head = sizeof(struct series) + series_counts(f) * sizeof(uint64_t);
    head = (head + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    size_t size = head;
    for (int i = 0; i < f->n_labels; i++)
        size += v[i].n + 1;
    size = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    struct series *s = aligned_alloc(CACHE_LINE, size);
    if (!s)
        return NULL;
    memset(s, 0, size); /* zero atomics: 0 counts and +0.0 bits */
    s->hash = hash;
    char *text = (char *)s + head;
    for (int i = 0; i < f->n_labels; i++) {
        memcpy(text, v[i].p, v[i].n);
        text[v[i].n] = '\0';
        s->values[i] = text;
        s->lens[i] = (unsigned short)v[i].n;
        text += v[i].n + 1;
    }
    int n = atomic_load_explicit(&f->n_series, memory_order_relaxed);
    atomic_store_explicit(&f->order[n], s, memory_order_relaxed);
    atomic_store_explicit(&f->n_series, n + 1, memory_order_release);
    size_t i = hash & (TABLE_SLOTS - 1);
    while (atomic_load_explicit(&f->table[i], memory_order_relaxed))
        i = (i + 1) & (TABLE_SLOTS - 1);
    atomic_store_explicit(&f->table[i], s, memory_order_release);
    return s;
}

/* Under insert_lock, at the cap: the series labelled "other" everywhere. */
static struct series *series_other(struct isd_metric *f)
{
    struct isd_str v[ISD_METRICS_MAX_LABELS];
    for (int i = 0; i < f->n_labels; i++)
        v[i] = (struct isd_str){"other", 5};
    uint64_t hash = hash_values(v, f->n_labels);
    struct series *s = table_find(f, hash, v);
    if (!s)
        s = series_create(f, hash, v);
    if (s)
        atomic_store_explicit(&f->other, s, memory_order_release);
    return s;
}

static struct series *series_insert(struct isd_metric *f, uint64_t hash, const struct isd_str *v)
{
    pthread_mutex_lock(&f->insert_lock);
    struct series *s = table_find(f, hash, v);
    if (!s) {
        if (atomic_load_explicit(&f->n_series, memory_order_relaxed) < ISD_METRICS_MAX_SERIES)
            s = series_create(f, hash, v);
        else
            s = series_other(f);
    }
    pthread_mutex_unlock(&f->insert_lock);
    return s;
}

/* The series for `values`, created if new; NULL only when out of memory. */
static struct series *series_get(struct isd_metric *f, const char *const *values)
{
    char scratch[ISD_METRICS_MAX_LABELS][ISD_METRICS_MAX_VALUE];
    struct isd_str v[ISD_METRICS_MAX_LABELS];
    for (int i = 0; i < f->n_labels; i++)
        v[i] = normalise(values ? values[i] : NULL, scratch[i]);
    uint64_t hash = hash_values(v, f->n_labels);
    struct series *s = table_find(f, hash, v);
    if (s)
        return s;
    s = atomic_load_explicit(&f->other, memory_order_acquire);
    if (s)
        return s; /* at the cap: no lock for the overflow */
    return series_insert(f, hash, v);
}

/* ---- atomic doubles ---- */

static uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ---- updates ---- */

void isd_metric_add(struct isd_metric *c, double v, const char *const *values)
{
    if (!c)
        return;
    if (c->type == FAMILY_COUNTER) {
        if (!(v >= 0))
            return; /* negative or NaN: counters only go up */
        struct series *s = series_get(c, values);
        if (!s)
            return;
        if (v <= EXACT_INT && (double)(uint64_t)v == v)
            atomic_fetch_add_explicit(&s->whole, (uint64_t)v, memory_order_relaxed);
        else
            atomic_add_double(&s->bits, v);
    } else if (c->type == FAMILY_GAUGE) {
        struct series *s = series_get(c, values);
        if (s)
            atomic_add_double(&s->bits, v);
    }
}

void isd_metric_set(struct isd_metric *g, double v, const char *const *values)
{
    if (!g || g->type != FAMILY_GAUGE)
        return;
    struct series *s = series_get(g, values);
    if (s)
        atomic_store_explicit(&s->bits, double_bits(v), memory_order_relaxed);
}

void isd_metric_observe(struct isd_metric *h, double v, const char *const *values)
{
    if (!h || h->type != FAMILY_HISTOGRAM || isnan(v))
        return;
    struct series *s = series_get(h, values);
    if (!s)
        return;
    int b = 0;
    while (b < h->n_buckets && v > h->bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->counts[b], 1, memory_order_relaxed);
    atomic_add_double(&s->bits, v);
}

/* ---- number formatting ---- */

/* Writes finite, non-zero `v` as Go's strconv.FormatFloat(v, 'g', -1, 64) does: the shortest
 * digits that read back as v, in exponent form ("1e+06", "1.5e-07") when the decimal exponent
 * is below -4 or at least 6 (Go's rule for the shortest form). `out` holds 32 bytes. */
static void format_shortest(char *out, double v)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp is [-]d[.ddd]e(+|-)dd[d] */
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[20];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 18)
            digits[nd++] = *p;
    int exp = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char *o = out;
    if (neg)
        *o++ = '-';
    if (exp < -4 || exp >= 6) {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        *o++ = 'e';
        *o++ = exp < 0 ? '-' : '+';
        int e = exp < 0 ? -exp : exp; /* 0..324 for a double */
        if (e >= 100)
            *o++ = (char)('0' + e / 100);
        *o++ = (char)('0' + e / 10 % 10);
        *o++ = (char)('0' + e % 10);
        *o = '\0';
        return;
    }
    if (exp < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > exp; i--)
            *o++ = '0';
        memcpy(o, digits, (size_t)nd);
        o += nd;
    } else {
        for (int i = 0; i <= exp || i < nd; i++) {
            if (i == exp + 1)
                *o++ = '.';
            *o++ = i < nd ? digits[i] : '0';
        }
    }
    *o = '\0';
}

/* A sample value: NaN, +Inf, -Inf, integers up to 2^53 in plain digits, else shortest. */
static void format_value(char *out, double v)
{
    if (isnan(v))
        strcpy(out, "NaN");
    else if (isinf(v))
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        strcpy(out, "0");
    else if (fabs(v) <= EXACT_INT && v == trunc(v))
        snprintf(out, 32, "%.0f", v);
    else
        format_shortest(out, v);
}

/* ---- declarations ---- */

static bool name_valid(const char *s, bool colon)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':')))
            return false;
    }
    return true;
}

static const char *const hist_suffixes[] = {"", "_bucket", "_sum", "_count"};

/* a + sa == b + sb */
static bool concat_equal(const char *a, const char *sa, const char *b, const char *sb)
{
    size_t la = strlen(a), lb = strlen(b), n = la + strlen(sa);
    if (n != lb + strlen(sb))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((i < la ? a[i] : sa[i - la]) != (i < lb ? b[i] : sb[i - lb]))
            return false;
    return true;
}

/* Under the registry lock: does any name `name` exposes clash with an existing family's? */
static bool name_taken(struct isd_metrics *m, const char *name, enum family_type type)
{
    int nn = type == FAMILY_HISTOGRAM ? 4 : 1;
    for (struct isd_metric *f = atomic_load_explicit(&m->first, memory_order_relaxed); f;
         f = atomic_load_explicit(&f->next, memory_order_relaxed)) {
        int nf = f->type == FAMILY_HISTOGRAM ? 4 : 1;
        for (int i = 0; i < nn; i++)
            for (int j = 0; j < nf; j++)
                if (concat_equal(name, hist_suffixes[i], f->name, hist_suffixes[j]))
                    return true;
    }
    return false;
}

static bool labels_valid(int n, const char *const *labels, enum family_type type)
{
    if (n < 0 || n > ISD_METRICS_MAX_LABELS || (n > 0 && !labels))
        return false;
    for (int i = 0; i < n; i++) {
        if (!name_valid(labels[i], false) || strncmp(labels[i], "__", 2) == 0)
            return false;
        if (type == FAMILY_HISTOGRAM && strcmp(labels[i], "le") == 0)
            return false;
        for (int j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0)
                return false;
    }
    return true;
}

/* Help text as valid UTF-8 (invalid sequences become U+FFFD); NULL for none. */
static char *help_copy(const char *help, bool *nomem)
{
    *nomem = false;
    if (!help || !*help)
        return NULL;
    size_t n = strlen(help), i = 0, o = 0;
    if (n > (SIZE_MAX - 1) / 3) {
        *nomem = true;
        return NULL;
    }
    char *out = malloc(3 * n + 1);
    if (!out) {
        *nomem = true;
        return NULL;
    }
    while (i < n) {
        size_t start = i;
        uint32_t cp = isd_utf8_next(help, n, &i);
        if (cp == 0xFFFD) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(out + o, help + start, i - start);
            o += i - start;
        }
    }
    out[o] = '\0';
    return out;
}

static void family_free(struct isd_metric *f)
{
    int n = atomic_load_explicit(&f->n_series, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        free(atomic_load_explicit(&f->order[i], memory_order_relaxed));
    for (int i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    pthread_mutex_destroy(&f->insert_lock);
    free(f->name);
    free(f->help);
    free(f);
}

/* What a declaration asks for. */
struct family_spec {
    const char *name;          /* metric name */
    const char *help;          /* help text or NULL */
    enum family_type type;     /* counter, gauge, histogram or gauge_fn */
    int n_labels;              /* label names */
    const char *const *labels; /* n_labels names */
    const double *buckets;     /* histogram: n_buckets validated bounds */
    int n_buckets;             /* histogram: 0..ISD_METRICS_MAX_BUCKETS */
    double (*read)(void *ctx); /* gauge_fn */
    void *ctx;                 /* gauge_fn */
};

static struct isd_metric *family_new(const struct family_spec *spec)
{
    struct isd_metric *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (pthread_mutex_init(&f->insert_lock, NULL) != 0) {
        free(f);
        return NULL;
    }
    f->type = spec->type;
    f->read = spec->read;
    f->ctx = spec->ctx;
    for (int i = 0; i < spec->n_buckets; i++) {
        f->bounds[i] = spec->buckets[i];
        if (spec->buckets[i] == 0)
            strcpy(f->le[i], "0");
        else
            format_shortest(f->le[i], spec->buckets[i]);
    }
    f->n_buckets = spec->n_buckets;
    bool nomem;
    f->help = help_copy(spec->help, &nomem);
    f->name = strdup(spec->name);
    bool failed = nomem || !f->name;
    for (int i = 0; i < spec->n_labels; i++) {
        f->labels[i] = strdup(spec->labels[i]);
        failed = failed || !f->labels[i];
        f->n_labels = i + 1;
    }
    /* a family without labels always shows its one series */
    if (!failed && f->n_labels == 0 && f->type != FAMILY_GAUGE_FN)
        failed = !series_get(f, NULL);
    if (failed) {
        family_free(f);
        return NULL;
    }
    return f;
}

/* Validates the names, builds the family and links it last in the registry. */
static struct isd_metric *declare(struct isd_metrics *m, const struct family_spec *spec)
{
    if (!m || !name_valid(spec->name, true) ||
        !labels_valid(spec->n_labels, spec->labels, spec->type))
        return NULL;
    struct isd_metric *f = family_new(spec);
    if (!f)
        return NULL;
    pthread_mutex_lock(&m->lock);
    bool taken = name_taken(m, spec->name, spec->type);
    if (!taken) {
        if (m->last)
            atomic_store_explicit(&m->last->next, f, memory_order_release);
        else
            atomic_store_explicit(&m->first, f, memory_order_release);
        m->last = f;
    }
    pthread_mutex_unlock(&m->lock);
    if (taken) {
        family_free(f);
        return NULL;
    }
    return f;
}

struct isd_metric *isd_metrics_counter(struct isd_metrics *m, const char *name, const char *help,
                                       int n_labels, const char *const *labels)
{
    struct family_spec spec = {
        .name = name, .help = help, .type = FAMILY_COUNTER, .n_labels = n_labels, .labels = labels};
    return declare(m, &spec);
}

struct isd_metric *isd_metrics_gauge(struct isd_metrics *m, const char *name, const char *help,
                                     int n_labels, const char *const *labels)
{
    struct family_spec spec = {
        .name = name, .help = help, .type = FAMILY_GAUGE, .n_labels = n_labels, .labels = labels};
    return declare(m, &spec);
}

struct isd_metric *isd_metrics_histogram(struct isd_metrics *m, const char *name, const char *help,
                                         int n_labels, const char *const *labels,
                                         const double *buckets, int n_buckets)
{
    if (n_buckets > 0 && buckets && isinf(buckets[n_buckets - 1]) && buckets[n_buckets - 1] > 0)
        n_buckets--; /* an explicit +Inf is implied anyway */
    if (n_buckets < 0 || n_buckets > ISD_METRICS_MAX_BUCKETS || (n_buckets > 0 && !buckets))
        return NULL;
    for (int i = 0; i < n_buckets; i++)
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            return NULL;
    struct family_spec spec = {.name = name,
                               .help = help,
                               .type = FAMILY_HISTOGRAM,
                               .n_labels = n_labels,
                               .labels = labels,
                               .buckets = buckets,
                               .n_buckets = n_buckets};
    return declare(m, &spec);
}

struct isd_metric *isd_metrics_gauge_fn(struct isd_metrics *m, const char *name, const char *help,
                                        double (*read)(void *ctx), void *ctx)
{
    if (!read)
        return NULL;
    struct family_spec spec = {
        .name = name, .help = help, .type = FAMILY_GAUGE_FN, .read = read, .ctx = ctx};
    return declare(m, &spec);
}

struct isd_metrics *isd_metrics_new(void)
{
    struct isd_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void isd_metrics_free(struct isd_metrics *m)
{
    if (!m)
        return;
    struct isd_metric *f = atomic_load_explicit(&m->first, memory_order_relaxed);
    while (f) {
        struct isd_metric *next = atomic_load_explicit(&f->next, memory_order_relaxed);
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- exposition ---- */

/* Appends to a buffer, keeping the first error so callers check once at the end. */
struct writer {
    struct isd_buf *buf; /* destination */
    int rc;              /* 0 or the first negative error */
};

static void put(struct writer *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = isd_buf_append(w->buf, s, n);
}

static void put_str(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

/* Escapes backslash and newline, and double quote when `quote` (label values). */
static void put_escaped(struct writer *w, const char *s, size_t n, bool quote)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc;
        if (s[i] == '\\')
            esc = "\\\\";
        else if (s[i] == '\n')
            esc = "\\n";
        else if (s[i] == '"' && quote)
            esc = "\\\"";
        else
            continue;
        put(w, s + run, i - run);
        put(w, esc, 2);
        run = i + 1;
    }
    put(w, s + run, n - run);
}

/* {a="x",b="y"} or {a="x",le="0.5"}; nothing when there are no labels and no le. */
static void put_labels(struct writer *w, const struct isd_metric *f, const struct series *s,
                       const char *le)
{
    if (f->n_labels == 0 && !le)
        return;
    put(w, "{", 1);
    for (int i = 0; i < f->n_labels; i++) {
        if (i > 0)
            put(w, ",", 1);
        put_str(w, f->labels[i]);
        put(w, "=\"", 2);
        put_escaped(w, s->values[i], s->lens[i], true);
        put(w, "\"", 1);
    }
    if (le) {
        if (f->n_labels > 0)
            put(w, ",", 1);
        put(w, "le=\"", 4);
        put_str(w, le);
        put(w, "\"", 1);
    }
    put(w, "}", 1);
}

static void put_sample(struct writer *w, const struct isd_metric *f, const char *suffix,
                       const struct series *s, const char *le, const char *value)
{
    put_str(w, f->name);
    put_str(w, suffix);
    put_labels(w, f, s, le);
    put(w, " ", 1);
    put_str(w, value);
    put(w, "\n", 1);
}

static void put_histogram(struct writer *w, const struct isd_metric *f, struct series *s)
{
    char value[32];
    uint64_t total = 0;
    for (int b = 0; b <= f->n_buckets; b++) {
        total += atomic_load_explicit(&s->counts[b], memory_order_relaxed);
        snprintf(value, sizeof value, "%llu", (unsigned long long)total);
        put_sample(w, f, "_bucket", s, b < f->n_buckets ? f->le[b] : "+Inf", value);
    }
    format_value(value, bits_double(atomic_load_explicit(&s->bits, memory_order_relaxed)));
    put_sample(w, f, "_sum", s, NULL, value);
    snprintf(value, sizeof value, "%llu", (unsigned long long)total);
    put_sample(w, f, "_count", s, NULL, value);
}

static void put_family(struct writer *w, struct isd_metric *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram", "gauge"};
    if (f->help) {
        put(w, "# HELP ", 7);
        put_str(w, f->name);
        put(w, " ", 1);
        put_escaped(w, f->help, strlen(f->help), false);
        put(w, "\n", 1);
    }
    put(w, "# TYPE ", 7);
    put_str(w, f->name);
    put(w, " ", 1);
    put_str(w, type_names[f->type]);
    put(w, "\n", 1);
    char value[32];
    if (f->type == FAMILY_GAUGE_FN) {
        format_value(value, f->read(f->ctx));
        put_sample(w, f, "", NULL, NULL, value);
        return;
    }
    int n = atomic_load_explicit(&f->n_series, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        struct series *s = atomic_load_explicit(&f->order[i], memory_order_acquire);
        if (f->type == FAMILY_HISTOGRAM) {
            put_histogram(w, f, s);
            continue;
        }
        double v = bits_double(atomic_load_explicit(&s->bits, memory_order_relaxed));
        if (f->type == FAMILY_COUNTER)
            v += (double)atomic_load_explicit(&s->whole, memory_order_relaxed);
        format_value(value, v);
        put_sample(w, f, "", s, NULL, value);
    }
}

int isd_metrics_write(struct isd_metrics *m, struct isd_buf *out)
{
    if (!m)
        return 0;
    struct writer w = {out, 0};
    size_t start = out->len;
    for (struct isd_metric *f = atomic_load_explicit(&m->first, memory_order_acquire); f;
         f = atomic_load_explicit(&f->next, memory_order_acquire))
        put_family(&w, f);
    if (w.rc < 0 && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return w.rc;
}
