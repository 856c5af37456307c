/*
 * limits: per-key rate limits, the way OpenAI limits image requests: requests per minute,
 * images per minute (a request for n images takes n) and jobs running at once.
 *
 * Each per-minute limit is a token bucket holding `limit` tokens that refills at limit/window
 * per second (window = 60 s, shorter in tests): a client may burst up to the limit and then
 * gets limit per window. Buckets are kept in integers (exact: waiting retry_after admits). A
 * request is admitted only when every bucket has what it needs; then it takes them all. When
 * refused, `retry_after` says how long until it would be admitted. The concurrency slot taken by an
 * admitted job is given back with isd_limits_release(). `remaining` and `reset` (time until the
 * bucket is full again) fill the x-ratelimit-* headers.
 *
 * Keys are identified by their id string (any length); state is created on first use and kept for
 * the life of the limiter (one small entry per key). Thread-safe (one mutex; operations are O(1)).
 *
 *     struct isd_limits *l = isd_limits_new(60.0);
 *     struct isd_limit_rule rule = {.rpm = 60, .ipm = 5, .max_concurrent = 2};
 *     struct isd_limit_state st;
 *     if (isd_limits_take(l, "key_ab12", &rule, 1, 4, isd_mono_ns(), &st) < 0) → 429
 *     ... isd_limits_release(l, "key_ab12");
 */
#ifndef ISD_LIMITS_H
#define ISD_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

struct isd_limits;

struct isd_limit_rule {
    long rpm;            /* requests per window; 0 = unlimited */
    long ipm;            /* images per window; 0 = unlimited */
    long max_concurrent; /* jobs at once; 0 = unlimited */
};

enum isd_limit_kind {
    ISD_LIMIT_NONE = 0,
    ISD_LIMIT_REQUESTS,
    ISD_LIMIT_IMAGES,
    ISD_LIMIT_CONCURRENT
};

struct isd_limit_state {
    enum isd_limit_kind refused;             /* which limit refused the request, or NONE */
    double retry_after;                      /* seconds until it would be admitted (refused only) */
    long limit_requests, remaining_requests; /* after this request; limit 0 = none */
    double reset_requests;                   /* seconds until the requests bucket is full */
    long limit_images, remaining_images;
    double reset_images;
    long in_flight; /* jobs running for the key, this one included */
};

struct isd_limits *isd_limits_new(double window_seconds);
void isd_limits_free(struct isd_limits *l);

/* Takes `requests` (0 or 1) request tokens and `images` image tokens, and a concurrency slot
 * when `slot` is true. Returns 0 (admitted) or -1 (refused: nothing taken). `state` is filled
 * either way. */
int isd_limits_take(struct isd_limits *l, const char *key, const struct isd_limit_rule *rule,
                    int requests, int images, bool slot, int64_t now_ns,
                    struct isd_limit_state *state);
/* Gives back a concurrency slot taken by isd_limits_take(). */
void isd_limits_release(struct isd_limits *l, const char *key);
/* Formats seconds the way OpenAI's reset headers do (Go durations: "1s", "120ms", "6m0s"). */
void isd_limits_duration(double seconds, char *out, int cap);

#endif
