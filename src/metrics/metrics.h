/*
 * metrics: counters, gauges and histograms for operators, exposed in the Prometheus text
 * format (version 0.0.4) by GET /metrics.
 *
 * A registry holds metric families declared at start-up (name, help, type, label names,
 * histogram buckets). Updates are cheap and thread-safe from any thread: the child series for
 * a label combination is found by hashing the label values into a small open-addressing table
 * read without locks (series are published with release/acquire atomics and never move);
 * only creating a new series takes the family's mutex. Values are updated with atomics:
 * integral counter adds and histogram bucket counts with 64-bit fetch-add, doubles (gauges,
 * fractional counter adds, histogram sums) with a compare-and-swap loop on their bits.
 *
 * Limits. At most ISD_METRICS_MAX_SERIES label combinations per family; once a family has
 * that many, updates for a new combination go to one overflow series whose labels are all
 * "other" (so a family exposes at most ISD_METRICS_MAX_SERIES + 1 series), and a client
 * choosing model names cannot grow memory without bound. Label values are normalised before
 * lookup: invalid UTF-8 is replaced by U+FFFD, then the value is cut to at most
 * ISD_METRICS_MAX_VALUE bytes on a UTF-8 boundary; values equal after that share a series.
 * A NULL `values` array or entry counts as "".
 *
 * Semantics. isd_metric_add applies to counters and gauges, isd_metric_set to gauges,
 * isd_metric_observe to histograms; any other pairing (and any update of a gauge_fn or of a
 * NULL family) is ignored. Counters only go up: negative and NaN adds are ignored; adding 0
 * creates the series at 0. NaN observations are ignored; an observation v is counted in the
 * first bucket with v <= le. A labelled family shows no series until its first update; a
 * family without labels always shows its one series. If memory runs out while creating a
 * series, that update is dropped.
 *
 * Exposition (isd_metrics_write): families in declaration order, each with `# HELP` (omitted
 * when help is NULL or "") and `# TYPE`, series in creation order. Label values are escaped
 * (\\, \", \n), help text too (\\, \n). Sample values: integers up to 2^53 without exponent,
 * NaN, +Inf, -Inf, otherwise the shortest round-trip form as Go's strconv 'g' -1 writes it
 * (0.25, 1e-07); bucket bounds (le) in that same form ("1", "0.005", "1e+06"), "+Inf" last.
 * Histograms: cumulative _bucket lines, then _sum and _count; _count always equals the +Inf
 * bucket, but under concurrent observations _sum may be a few observations ahead or behind.
 * Numbers assume the C locale for LC_NUMERIC (the default; do not call setlocale for it).
 *
 * Threading: declare families before other threads use the registry (declarations are
 * serialised and safe, but meant for start-up). isd_metric_* and isd_metrics_write are safe
 * from any thread at any time; a gauge_fn callback runs on the thread calling
 * isd_metrics_write and must be thread-safe itself. isd_metrics_free only when no other
 * thread uses the registry.
 *
 * Ownership: isd_metrics_new() / isd_metrics_free(); family handles belong to the registry
 * and live until isd_metrics_free(). Names, help, label names and buckets are copied.
 *
 *     struct isd_metrics *m = isd_metrics_new();
 *     struct isd_metric *req = isd_metrics_counter(m, "imagesd_requests_total",
 *                                  "Requests by endpoint, model and status.",
 *                                  3, (const char *[]){"endpoint", "model", "status"});
 *     isd_metric_add(req, 1, (const char *[]){"generations", "gpt-image-1", "200"});
 *     struct isd_metric *lat = isd_metrics_histogram(m, "imagesd_request_seconds", "...",
 *                                  0, NULL, buckets, n_buckets);
 *     isd_metric_observe(lat, 0.25, NULL);
 *     isd_metrics_write(m, &buf);   // text exposition
 */
#ifndef ISD_METRICS_H
#define ISD_METRICS_H

#include "buf/buf.h"

#include <stddef.h>
#include <stdint.h>

#define ISD_METRICS_MAX_LABELS  4
#define ISD_METRICS_MAX_SERIES  256
#define ISD_METRICS_MAX_BUCKETS 24
#define ISD_METRICS_MAX_VALUE   128 /* bytes of a label value after normalisation */

/* Content-Type of the exposition, for the HTTP layer. */
#define ISD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct isd_metrics;
struct isd_metric;

/* NULL when out of memory. */
struct isd_metrics *isd_metrics_new(void);
void isd_metrics_free(struct isd_metrics *m);

/* Declares a family; NULL on a bad name (must match [a-zA-Z_:][a-zA-Z0-9_:]*), a name already
 * used in the registry (histograms also own name_bucket, name_sum and name_count), a bad label
 * name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not repeated, not "le" in a
 * histogram), n_labels outside 0..ISD_METRICS_MAX_LABELS, or out of memory. */
struct isd_metric *isd_metrics_counter(struct isd_metrics *m, const char *name, const char *help,
                                       int n_labels, const char *const *labels);
struct isd_metric *isd_metrics_gauge(struct isd_metrics *m, const char *name, const char *help,
                                     int n_labels, const char *const *labels);
/* `buckets`: 0..ISD_METRICS_MAX_BUCKETS strictly increasing finite upper bounds; +Inf is
 * implied (a final +Inf given explicitly is accepted and dropped). NULL on anything else. */
struct isd_metric *isd_metrics_histogram(struct isd_metrics *m, const char *name, const char *help,
                                         int n_labels, const char *const *labels,
                                         const double *buckets, int n_buckets);
/* A gauge without labels whose value is read(ctx) at exposition time; NULL when read is NULL. */
struct isd_metric *isd_metrics_gauge_fn(struct isd_metrics *m, const char *name, const char *help,
                                        double (*read)(void *ctx), void *ctx);

/* `values` has one entry per label name (NULL when the family has none). See "Semantics". */
void isd_metric_add(struct isd_metric *c, double v, const char *const *values);
void isd_metric_set(struct isd_metric *g, double v, const char *const *values);
void isd_metric_observe(struct isd_metric *h, double v, const char *const *values);

/* Appends the text exposition of every family to `out`. Returns 0, or -ISD_E_TOO_LARGE /
 * -ISD_E_NOMEM from the buffer, in which case `out` is left as it was. */
int isd_metrics_write(struct isd_metrics *m, struct isd_buf *out);

#endif
