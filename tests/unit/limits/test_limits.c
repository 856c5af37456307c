/*
 * limits: the per-key token buckets (requests and images per window) and concurrency slots.
 * The clock is an argument of isd_limits_take(), so every test drives it with explicit
 * nanosecond values: nothing sleeps. Also the Go-style durations of the reset headers and a
 * few threads hammering a handful of keys.
 */
#include "support/test.h"

#include "limits/limits.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SEC 1000000000LL /* ns */
#define T0  (1000 * SEC) /* an arbitrary start on the monotonic clock */

/* Seconds as ns, rounded up: the first instant at which `s` seconds have passed. */
static int64_t ns_ceil(double s)
{
    return (int64_t)ceil(s * 1e9);
}

static int take(struct isd_limits *l, const char *key, const struct isd_limit_rule *r, int requests,
                int images, bool slot, int64_t now, struct isd_limit_state *st)
{
    return isd_limits_take(l, key, r, requests, images, slot, now, st);
}

static void buckets_start_full(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    assert_non_null(l);
    struct isd_limit_rule r = {.rpm = 3, .ipm = 5, .max_concurrent = 0};
    struct isd_limit_state st;
    /* a peek (nothing asked) shows both buckets full */
    assert_int_equal(take(l, "key_a", &r, 0, 0, false, T0, &st), 0);
    assert_int_equal(st.refused, ISD_LIMIT_NONE);
    assert_int_equal(st.limit_requests, 3);
    assert_int_equal(st.remaining_requests, 3);
    assert_int_equal(st.limit_images, 5);
    assert_int_equal(st.remaining_images, 5);
    assert_float_equal(st.reset_requests, 0.0, 1e-12);
    assert_float_equal(st.reset_images, 0.0, 1e-12);
    assert_int_equal(st.in_flight, 0);
    /* the first real request sees full buckets and leaves limit - asked */
    assert_int_equal(take(l, "key_b", &r, 1, 5, false, T0, &st), 0);
    assert_int_equal(st.remaining_requests, 2);
    assert_int_equal(st.remaining_images, 0);
    isd_limits_free(l);
}

static void requests_until_refused(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.rpm = 3};
    struct isd_limit_state st;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0, &st), 0);
        assert_int_equal(st.remaining_requests, 2 - i);
    }
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0, &st), -1);
    assert_int_equal(st.refused, ISD_LIMIT_REQUESTS);
    assert_int_equal(st.remaining_requests, 0);
    /* one token refills in 60 s / 3 = 20 s */
    assert_float_equal(st.retry_after, 20.0, 1e-9);
    /* halfway there: 10 s left */
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0 + 10 * SEC, &st), -1);
    assert_float_equal(st.retry_after, 10.0, 1e-9);
    /* one microsecond early: still refused; on time: admitted */
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0 + 20 * SEC - 1000, &st), -1);
    assert_true(st.retry_after > 0 && st.retry_after < 1e-5);
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0 + 20 * SEC, &st), 0);
    assert_int_equal(st.remaining_requests, 0);
    isd_limits_free(l);
}

static void images_until_refused(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.ipm = 5};
    struct isd_limit_state st;
    assert_int_equal(take(l, "key_a", &r, 0, 2, false, T0, &st), 0);
    assert_int_equal(st.remaining_images, 3);
    assert_int_equal(take(l, "key_a", &r, 0, 2, false, T0, &st), 0);
    assert_int_equal(st.remaining_images, 1);
    /* 2 asked, 1 left: the missing one takes 60 / 5 = 12 s */
    assert_int_equal(take(l, "key_a", &r, 0, 2, false, T0, &st), -1);
    assert_int_equal(st.refused, ISD_LIMIT_IMAGES);
    assert_float_equal(st.retry_after, 12.0, 1e-9);
    assert_int_equal(st.remaining_images, 1);
    /* what is left can still be taken */
    assert_int_equal(take(l, "key_a", &r, 0, 1, false, T0, &st), 0);
    assert_int_equal(st.remaining_images, 0);
    /* now 2 missing: 24 s */
    assert_int_equal(take(l, "key_a", &r, 0, 2, false, T0, &st), -1);
    assert_float_equal(st.retry_after, 24.0, 1e-9);
    assert_int_equal(take(l, "key_a", &r, 0, 2, false, T0 + 24 * SEC, &st), 0);
    assert_int_equal(st.remaining_images, 0);
    isd_limits_free(l);
}

/* A refused take shortly before retry_after must not delay the admission past retry_after:
 * the buckets are kept in integers (credit in limit x ns), so refills never lose a fraction
 * of a token to rounding (e.g. ipm=5, empty, 2 images: retry_after 24 s, a take at 24 s - 1 us
 * then one at 24 s is admitted). */
static void early_retry_does_not_delay_admission(void **state)
{
    (void)state;
    int bad = 0;
    char first[160] = "";
    for (long limit = 1; limit <= 20; limit++) {
        for (int need = 1; need <= limit; need++) {
            struct isd_limits *l = isd_limits_new(60.0);
            struct isd_limit_rule r = {.ipm = limit};
            struct isd_limit_state st;
            int ok = take(l, "key_a", &r, 0, (int)limit, false, T0, &st) == 0 &&
                     take(l, "key_a", &r, 0, need, false, T0, &st) == -1;
            int64_t wait = ns_ceil(st.retry_after);
            ok = ok && take(l, "key_a", &r, 0, need, false, T0 + wait - 1000, &st) == -1;
            if (ok && take(l, "key_a", &r, 0, need, false, T0 + wait, &st) != 0) {
                if (!bad++)
                    snprintf(first, sizeof first,
                             "ipm=%ld, %d images: refused at retry_after=%.9f s", limit, need,
                             (double)wait / 1e9);
            }
            isd_limits_free(l);
            if (!ok)
                fail_msg("ipm=%ld need=%d: setup failed", limit, need);
        }
    }
    if (bad)
        print_error("%d of 210 cases; first: %s\n", bad, first);
    assert_int_equal(bad, 0);
}

/* For limits that do not divide the window evenly, waiting exactly retry_after (rounded up to
 * the nanosecond) is enough, and 1 us less is not. */
static void retry_after_is_exact_for_odd_limits(void **state)
{
    (void)state;
    static const struct {
        double window;
        long rpm, ipm;
        int images;
    } cases[] = {
        {60.0, 7, 0, 0}, {60.0, 0, 13, 3},  {0.5, 3, 0, 0},
        {1.0, 0, 9, 4},  {60.0, 11, 17, 5}, {3600.0, 1, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct isd_limits *l = isd_limits_new(cases[c].window);
        struct isd_limit_rule r = {.rpm = cases[c].rpm, .ipm = cases[c].ipm};
        int req = r.rpm > 0;
        struct isd_limit_state st;
        int64_t now = T0;
        for (int round = 0; round < 20; round++) {
            /* drain, then wait exactly what we are told */
            while (take(l, "key_odd", &r, req, cases[c].images, false, now, &st) == 0)
                ;
            assert_true(st.retry_after > 0);
            int64_t wait = ns_ceil(st.retry_after);
            assert_int_equal(
                take(l, "key_odd", &r, req, cases[c].images, false, now + wait - 1000, &st), -1);
            now += wait;
            if (take(l, "key_odd", &r, req, cases[c].images, false, now, &st) != 0)
                fail_msg("case %zu round %d: refused %g s after being told to wait", c, round,
                         (double)wait / 1e9);
        }
        isd_limits_free(l);
    }
}

static void refill_up_to_the_limit_only(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.rpm = 3, .ipm = 6};
    struct isd_limit_state st;
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(l, "key_a", &r, 1, 2, false, T0, &st), 0);
    assert_int_equal(st.remaining_requests, 0);
    assert_int_equal(st.remaining_images, 0);
    /* 20 s: one request and two images back */
    assert_int_equal(take(l, "key_a", &r, 0, 0, false, T0 + 20 * SEC, &st), 0);
    assert_int_equal(st.remaining_requests, 1);
    assert_int_equal(st.remaining_images, 2);
    /* a day later: full, not more */
    int64_t later = T0 + 86400 * SEC;
    assert_int_equal(take(l, "key_a", &r, 0, 0, false, later, &st), 0);
    assert_int_equal(st.remaining_requests, 3);
    assert_int_equal(st.remaining_images, 6);
    assert_float_equal(st.reset_requests, 0.0, 1e-12);
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(l, "key_a", &r, 1, 2, false, later, &st), 0);
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, later, &st), -1);
    assert_int_equal(take(l, "key_a", &r, 0, 1, false, later, &st), -1);
    isd_limits_free(l);
}

static void more_images_than_the_limit_never_pass(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.rpm = 100, .ipm = 4};
    struct isd_limit_state st;
    for (int64_t t = 0; t < 5; t++) {
        int64_t now = T0 + t * 3600 * SEC;
        assert_int_equal(take(l, "key_a", &r, 1, 5, false, now, &st), -1);
        assert_int_equal(st.refused, ISD_LIMIT_IMAGES);
        assert_float_equal(st.retry_after, 60.0, 1e-12);
        /* nothing taken */
        assert_int_equal(st.remaining_images, 4);
        assert_int_equal(st.remaining_requests, 100);
    }
    /* the limit itself passes */
    assert_int_equal(take(l, "key_a", &r, 1, 4, false, T0 + 5 * 3600 * SEC, &st), 0);
    /* with a shorter window, retry_after is that window */
    struct isd_limits *fast = isd_limits_new(2.5);
    assert_int_equal(take(fast, "key_a", &r, 0, 100, false, T0, &st), -1);
    assert_float_equal(st.retry_after, 2.5, 1e-12);
    isd_limits_free(fast);
    isd_limits_free(l);
}

static void concurrency_slots(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.max_concurrent = 2};
    struct isd_limit_state st;
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), 0);
    assert_int_equal(st.in_flight, 1);
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), 0);
    assert_int_equal(st.in_flight, 2);
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), -1);
    assert_int_equal(st.refused, ISD_LIMIT_CONCURRENT);
    assert_true(st.retry_after > 0);
    assert_int_equal(st.in_flight, 2);
    /* without asking for a slot, a busy key is not refused and holds no new slot */
    assert_int_equal(take(l, "key_a", &r, 0, 0, false, T0, &st), 0);
    assert_int_equal(st.in_flight, 2);
    isd_limits_release(l, "key_a");
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), 0);
    assert_int_equal(st.in_flight, 2);
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), -1);
    /* unknown keys: harmless, and create nothing that would count later */
    isd_limits_release(l, "key_never_seen");
    isd_limits_release(l, "");
    assert_int_equal(take(l, "key_never_seen", &r, 0, 0, true, T0, &st), 0);
    assert_int_equal(st.in_flight, 1);
    /* releasing more than was taken never goes below zero */
    for (int i = 0; i < 5; i++)
        isd_limits_release(l, "key_a");
    assert_int_equal(take(l, "key_a", &r, 0, 0, false, T0, &st), 0);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), 0);
    assert_int_equal(st.in_flight, 1);
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), 0);
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), -1);
    isd_limits_free(l);
}

static void remaining_and_reset(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.rpm = 60, .ipm = 10};
    struct isd_limit_state st;
    assert_int_equal(take(l, "key_a", &r, 1, 4, false, T0, &st), 0);
    assert_int_equal(st.limit_requests, 60);
    assert_int_equal(st.remaining_requests, 59);
    assert_float_equal(st.reset_requests, 1.0, 1e-9);
    assert_int_equal(st.limit_images, 10);
    assert_int_equal(st.remaining_images, 6);
    assert_float_equal(st.reset_images, 24.0, 1e-9);
    /* 3 s later: 3 requests back (capped at 60), 0.5 image back, so 6 whole images */
    assert_int_equal(take(l, "key_a", &r, 0, 0, false, T0 + 3 * SEC, &st), 0);
    assert_int_equal(st.remaining_requests, 60);
    assert_float_equal(st.reset_requests, 0.0, 1e-9);
    assert_int_equal(st.remaining_images, 6);
    assert_float_equal(st.reset_images, 21.0, 1e-9);
    /* a refusal reports the state too */
    assert_int_equal(take(l, "key_a", &r, 1, 7, false, T0 + 3 * SEC, &st), -1);
    assert_int_equal(st.remaining_requests, 60);
    assert_int_equal(st.remaining_images, 6);
    assert_float_equal(st.reset_images, 21.0, 1e-9);
    /* limits of 0 report 0 */
    struct isd_limit_rule none = {0};
    assert_int_equal(take(l, "key_b", &none, 1, 3, false, T0, &st), 0);
    assert_int_equal(st.limit_requests, 0);
    assert_int_equal(st.limit_images, 0);
    assert_int_equal(st.remaining_requests, 0);
    assert_float_equal(st.reset_requests, 0.0, 1e-12);
    isd_limits_free(l);
}

static void keys_are_independent(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.rpm = 2, .ipm = 2, .max_concurrent = 1};
    struct isd_limit_state st;
    assert_int_equal(take(l, "key_a", &r, 1, 2, true, T0, &st), 0);
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0, &st), 0);
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0, &st), -1);
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), -1);
    /* many other keys, some sharing hash chains with key_a, are untouched */
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof key, "key_%016x", i);
        assert_int_equal(take(l, key, &r, 1, 2, true, T0, &st), 0);
        assert_int_equal(st.remaining_requests, 1);
        assert_int_equal(st.remaining_images, 0);
        assert_int_equal(st.in_flight, 1);
    }
    isd_limits_release(l, "key_000000000000002a");
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), -1);
    assert_int_equal(take(l, "key_000000000000002a", &r, 0, 0, true, T0, &st), 0);
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0, &st), -1);
    isd_limits_free(l);
}

static void unlimited_rules_never_refuse(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule none = {0};
    struct isd_limit_state st;
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(take(l, "key_a", &none, 1, 1000, true, T0, &st), 0);
        assert_int_equal(st.refused, ISD_LIMIT_NONE);
    }
    assert_int_equal(st.in_flight, 10000);
    /* one limit set, the others still unlimited */
    struct isd_limit_rule images_only = {.ipm = 2};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(take(l, "key_b", &images_only, 1, 0, true, T0, &st), 0);
    assert_int_equal(take(l, "key_b", &images_only, 1, 2, true, T0, &st), 0);
    assert_int_equal(take(l, "key_b", &images_only, 0, 1, false, T0, &st), -1);
    assert_int_equal(st.refused, ISD_LIMIT_IMAGES);
    struct isd_limit_rule requests_only = {.rpm = 1};
    assert_int_equal(take(l, "key_c", &requests_only, 1, 100000, true, T0, &st), 0);
    assert_int_equal(take(l, "key_c", &requests_only, 0, 100000, true, T0, &st), 0);
    assert_int_equal(take(l, "key_c", &requests_only, 1, 0, false, T0, &st), -1);
    assert_int_equal(st.refused, ISD_LIMIT_REQUESTS);
    isd_limits_free(l);
}

static void refused_take_takes_nothing(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.rpm = 5, .ipm = 3, .max_concurrent = 1};
    struct isd_limit_state st;
    assert_int_equal(take(l, "key_a", &r, 1, 2, true, T0, &st), 0);
    assert_int_equal(st.remaining_requests, 4);
    assert_int_equal(st.remaining_images, 1);
    assert_int_equal(st.in_flight, 1);
    /* refused by images: no request token, no slot taken */
    isd_limits_release(l, "key_a");
    assert_int_equal(take(l, "key_a", &r, 1, 2, true, T0, &st), -1);
    assert_int_equal(st.refused, ISD_LIMIT_IMAGES);
    assert_int_equal(st.remaining_requests, 4);
    assert_int_equal(st.remaining_images, 1);
    assert_int_equal(st.in_flight, 0);
    /* refused by the slot: no request or image token taken */
    assert_int_equal(take(l, "key_a", &r, 0, 0, true, T0, &st), 0);
    assert_int_equal(take(l, "key_a", &r, 1, 1, true, T0, &st), -1);
    assert_int_equal(st.refused, ISD_LIMIT_CONCURRENT);
    assert_int_equal(st.remaining_requests, 4);
    assert_int_equal(st.remaining_images, 1);
    assert_int_equal(st.in_flight, 1);
    /* drain the requests; a refused request takes no image */
    for (int i = 0; i < 4; i++)
        assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0, &st), 0);
    assert_int_equal(take(l, "key_a", &r, 1, 1, false, T0, &st), -1);
    assert_int_equal(st.refused, ISD_LIMIT_REQUESTS);
    assert_int_equal(st.remaining_images, 1);
    assert_int_equal(take(l, "key_a", &r, 0, 1, false, T0, &st), 0);
    assert_int_equal(st.remaining_images, 0);
    isd_limits_free(l);
}

/* When both buckets are short, retry_after is the longer of the two waits, so a client that
 * waits retry_after is admitted. */
static void retry_after_covers_every_bucket(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.rpm = 2, .ipm = 60};
    struct isd_limit_state st;
    assert_int_equal(take(l, "key_a", &r, 1, 60, false, T0, &st), 0);
    assert_int_equal(take(l, "key_a", &r, 1, 0, false, T0, &st), 0);
    /* both empty: a request refills in 30 s, 60 images in 60 s */
    assert_int_equal(take(l, "key_a", &r, 1, 60, false, T0, &st), -1);
    assert_true(st.refused == ISD_LIMIT_REQUESTS || st.refused == ISD_LIMIT_IMAGES);
    int64_t wait = ns_ceil(st.retry_after);
    int rc = take(l, "key_a", &r, 1, 60, false, T0 + wait, &st);
    isd_limits_free(l);
    if (rc != 0)
        print_error("told to wait %g s, refused then (%s)\n", (double)wait / 1e9,
                    st.refused == ISD_LIMIT_IMAGES ? "images" : "requests");
    assert_int_equal(rc, 0);
}

/* Keys of any length are told apart and limited (no fixed-size copy of the key). */
static void long_keys_are_limited_too(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct isd_limit_rule r = {.rpm = 1, .max_concurrent = 1};
    struct isd_limit_state st;
    const char *key = "key_0123456789abcdef0123456789abcdef";
    const char *other = "key_0123456789abcdef0123456789abcdeX";
    int first = take(l, key, &r, 1, 0, true, T0, &st);
    int second_request = take(l, key, &r, 1, 0, false, T0, &st);
    int second_slot = take(l, key, &r, 0, 0, true, T0, &st);
    /* and two long keys sharing a long prefix are still two keys */
    int other_key = take(l, other, &r, 1, 0, true, T0, &st);
    isd_limits_free(l);
    assert_int_equal(first, 0);
    assert_int_equal(second_request, -1);
    assert_int_equal(second_slot, -1);
    assert_int_equal(other_key, 0);
}

static void duration_format(void **state)
{
    (void)state;
    static const struct {
        double seconds;
        const char *want;
    } cases[] = {
        {0.0, "0ms"},
        {0.12, "120ms"},
        {0.001, "1ms"},
        {0.5, "500ms"},
        {0.999, "999ms"},
        {1.0, "1s"},
        {59.0, "59s"},
        {60.0, "1m0s"},
        {61.0, "1m1s"},
        {360.0, "6m0s"},
        {3599.0, "59m59s"},
        {3600.0, "1h0m0s"},
        {3661.0, "1h1m1s"},
        {90000.0, "25h0m0s"},
        {-1.0, "0ms"},
        {-0.001, "0ms"},
        /* whole seconds round up: waiting what the header says is enough */
        {1.2, "2s"},
        {59.5, "1m0s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        memset(out, 'X', sizeof out);
        isd_limits_duration(cases[i].seconds, out, sizeof out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%g s: got \"%s\", want \"%s\"", cases[i].seconds, out, cases[i].want);
    }
    /* a small buffer is truncated, never overrun */
    char small[4] = "abc";
    isd_limits_duration(3661.0, small, sizeof small);
    assert_string_equal(small, "1h1");
}

/* Just under one second rounds to "1s", never "1000ms" (a Go duration). */
static void duration_never_prints_1000ms(void **state)
{
    (void)state;
    char out[32];
    isd_limits_duration(0.9996, out, sizeof out);
    assert_string_equal(out, "1s");
}

/* ---- threads ---- */

#define THREADS    4
#define ITERATIONS 5000
#define KEYS       3

struct worker {
    struct isd_limits *l;
    int id;
    long admitted[KEYS]; /* requests admitted per key */
    long images[KEYS];   /* images admitted per key */
    long max_in_flight;  /* largest in_flight seen by an admitted take */
    long bad_state;      /* refusals without a reason, admissions with one */
};

static const char *const thread_keys[KEYS] = {"key_t0", "key_t1", "key_t2"};
static const struct isd_limit_rule thread_rule = {.rpm = 3000, .ipm = 9000, .max_concurrent = 2};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ITERATIONS; i++) {
        int k = (i + w->id) % KEYS;
        int images = 1 + i % 4;
        struct isd_limit_state st;
        /* every thread uses the same instant: no refill, so the totals are exact */
        int rc = isd_limits_take(w->l, thread_keys[k], &thread_rule, 1, images, true, T0, &st);
        if ((rc == 0) != (st.refused == ISD_LIMIT_NONE))
            w->bad_state++;
        if (rc == 0) {
            w->admitted[k]++;
            w->images[k] += images;
            if (st.in_flight > w->max_in_flight)
                w->max_in_flight = st.in_flight;
            isd_limits_release(w->l, thread_keys[k]);
        }
    }
    return NULL;
}

static void threads_keep_totals_consistent(void **state)
{
    (void)state;
    struct isd_limits *l = isd_limits_new(60.0);
    struct worker w[THREADS];
    pthread_t t[THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].l = l;
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    long all = 0;
    for (int k = 0; k < KEYS; k++) {
        long req = 0, img = 0;
        for (int i = 0; i < THREADS; i++) {
            req += w[i].admitted[k];
            img += w[i].images[k];
        }
        all += req;
        struct isd_limit_state st;
        assert_int_equal(isd_limits_take(l, thread_keys[k], &thread_rule, 0, 0, false, T0, &st), 0);
        /* what is left is exactly what was not admitted */
        assert_int_equal(st.remaining_requests, thread_rule.rpm - req);
        assert_int_equal(st.remaining_images, thread_rule.ipm - img);
        assert_int_equal(st.in_flight, 0);
        assert_true(req > 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].bad_state, 0);
        assert_true(w[i].max_in_flight <= thread_rule.max_concurrent);
    }
    /* 20000 attempts against 3 x 3000 requests: the request buckets ran dry or the images did */
    assert_true(all <= KEYS * thread_rule.rpm);
    isd_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_start_full),
        cmocka_unit_test(requests_until_refused),
        cmocka_unit_test(images_until_refused),
        cmocka_unit_test(retry_after_is_exact_for_odd_limits),
        cmocka_unit_test(early_retry_does_not_delay_admission),
        cmocka_unit_test(refill_up_to_the_limit_only),
        cmocka_unit_test(more_images_than_the_limit_never_pass),
        cmocka_unit_test(concurrency_slots),
        cmocka_unit_test(remaining_and_reset),
        cmocka_unit_test(keys_are_independent),
        cmocka_unit_test(unlimited_rules_never_refuse),
        cmocka_unit_test(refused_take_takes_nothing),
        cmocka_unit_test(retry_after_covers_every_bucket),
        cmocka_unit_test(long_keys_are_limited_too),
        cmocka_unit_test(duration_format),
        cmocka_unit_test(duration_never_prints_1000ms),
        cmocka_unit_test(threads_keep_totals_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
