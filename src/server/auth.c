/*
 * Authentication and rate limits, decided from the request's headers before its body is read
 * (the http admit hook), and the image-rate admission once a request's n is known.
 *
 * Every /v1/ route needs `Authorization: Bearer <key>` (or HTTP Basic with the key as the
 * password, as OpenAI's message suggests) whenever the store holds an active key; image links
 * and /healthz never do; /metrics always needs an admin key (--metrics-listen serves it on a
 * separate address without one).
 * Before any key was created, requests are accepted: the server only starts that way on a
 * loopback address or with --insecure-no-auth (server.c). Once one was, keys are required even
 * after all of them are revoked. Keys are looked up on every request, so a key
 * revoked with `imagesd keys revoke` is refused at once.
 */
#include "server/server_int.h"

#include "sys/sys.h"
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char missing_key_message[] =
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys.";

struct srv_request *srv_request_of(struct isd_http_request *req)
{
    return isd_http_user(req);
}

void srv_request_free(void *user)
{
    struct srv_request *sr = user;
    if (!sr)
        return;
    if (sr->slot)
        isd_limits_release(sr->srv->limits, sr->key.id);
    srv_upload_release(sr->upload);
    free(sr);
}

/* Once any key was created (revoked ones count), every request needs a valid key. */
bool srv_auth_required(struct server *srv)
{
    return isd_store_key_count(srv->store) > 0;
}

/* the ledger's endpoint of an image API route; NULL for the others */
static const char *endpoint_of(int route)
{
    bool image = route == ROUTE_GENERATIONS || route == ROUTE_EDITS || route == ROUTE_VARIATIONS;
    return image ? srv_route_name(route) : NULL;
}

/* The key as OpenAI shows a wrong one: short strings as they are; longer ones keep their
 * prefix ("sk-", "sk-proj-") and last four characters, the rest starred. */
static void mask_key(const char *key, size_t len, char *out, size_t cap)
{
    if (len < 12) {
        isd_err_quote(out, key, len, cap > 8 ? cap - 8 : 0);
        return;
    }
    size_t prefix = 0;
    for (size_t i = 0; i < len && i < 8; i++)
        if (key[i] == '-')
            prefix = i + 1;
    size_t stars = len - prefix - 4;
    if (stars > 120)
        stars = 120;
    size_t o = 0;
    for (size_t i = 0; i < prefix && o + 1 < cap; i++)
        out[o++] = key[i];
    for (size_t i = 0; i < stars && o + 1 < cap; i++)
        out[o++] = '*';
    for (size_t i = len - 4; i < len && o + 1 < cap; i++)
        out[o++] = key[i];
    out[o] = '\0';
}

/* The key from "Bearer <key>" or "Basic base64(':<key>')"; NULL when there is none. */
static const char *presented_key(struct isd_http_request *req, char *decoded, size_t cap,
                                 size_t *len)
{
    const char *h = isd_http_header(req, "authorization");
    if (!h)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        const char *k = h + 7;
        while (*k == ' ')
            k++;
        size_t n = strlen(k);
        while (n > 0 && k[n - 1] == ' ')
            n--;
        *len = n;
        return n ? k : NULL;
    }
    if (strncasecmp(h, "Basic ", 6) == 0) {
        struct isd_buf b;
        isd_buf_init(&b, cap - 1);
        const char *k = h + 6;
        const char *colon;
        if (isd_base64_decode(&b, k, strlen(k)) < 0 || !b.data ||
            !(colon = memchr(b.data, ':', b.len))) {
            isd_buf_release(&b);
            return NULL;
        }
        size_t n = b.len - (size_t)(colon + 1 - b.data);
        memcpy(decoded, colon + 1, n);
        decoded[n] = '\0';
        isd_buf_release(&b);
        *len = n;
        return n ? decoded : NULL;
    }
    return NULL;
}

/* "1min" for the standard window, otherwise the window in seconds (short windows in tests). */
static void window_text(const struct server *srv, char *out, size_t cap)
{
    long w = srv->cfg->rate_window;
    if (w == 60)
        snprintf(out, cap, "1min");
    else
        snprintf(out, cap, "%lds", w);
}

static int refuse_rate(struct srv_request *sr, const struct isd_limit_state *st, long asked,
                       struct isd_error *e)
{
    char window[32], retry[32];
    window_text(sr->srv, window, sizeof window);
    isd_limits_duration(st->retry_after, retry, sizeof retry);
    if (st->refused == ISD_LIMIT_CONCURRENT)
        return isd_err_set(e, ISD_E_RATE_LIMIT, NULL,
                           "Rate limit exceeded for concurrent requests on API key %s (%s). "
                           "Limit: %ld at once. Current: %ld. Please try again when a request "
                           "has finished.",
                           sr->key.id, sr->key.name, sr->key.max_concurrent, st->in_flight + 1);
    bool images = st->refused == ISD_LIMIT_IMAGES;
    long limit = images ? st->limit_images : st->limit_requests;
    long remaining = images ? st->remaining_images : st->remaining_requests;
    return isd_err_set(e, ISD_E_RATE_LIMIT, NULL,
                       "Rate limit exceeded for %s per minute on API key %s (%s). Limit: "
                       "%ld/%s. Current: %ld/%s. Please try again in %s.",
                       images ? "images" : "requests", sr->key.id, sr->key.name, limit, window,
                       limit - (remaining > 0 ? remaining : 0) + asked, window, retry);
}

static struct isd_limit_rule rule_of(const struct isd_key *k)
{
    return (struct isd_limit_rule){
        .rpm = k->rpm, .ipm = k->ipm, .max_concurrent = k->max_concurrent};
}

int srv_admit(struct isd_http_request *req, void *ctx, struct isd_error *e)
{
    struct server *srv = ctx;
    struct srv_request *sr = calloc(1, sizeof *sr);
    if (!sr)
        return isd_err_set(e, ISD_E_NOMEM, NULL, "The server is out of memory.");
    sr->srv = srv;
    sr->route = isd_http_route_tag(req);
    sr->arrived_ms = isd_time_ms();
    sr->endpoint = endpoint_of(sr->route);
    isd_http_set_user(req, sr);
    if (sr->route == ROUTE_HEALTH || sr->route == ROUTE_IMAGE_FILE)
        return 0;
    /* /metrics here always needs an admin key; --metrics-listen serves it without one */
    if (sr->route != ROUTE_METRICS && !srv_auth_required(srv))
        return 0;
    char decoded[512];
    size_t len = 0;
    const char *key = presented_key(req, decoded, sizeof decoded, &len);
    if (!key)
        return isd_err_set(e, ISD_E_AUTH_MISSING, NULL, "%s", missing_key_message);
    if (isd_store_key_find(srv->store, key, len, &sr->key) < 0) {
        char masked[200];
        mask_key(key, len, masked, sizeof masked);
        return isd_err_set(e, ISD_E_AUTH_INVALID, NULL,
                           "Incorrect API key provided: %s. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.",
                           masked);
    }
    sr->has_key = true;
    if (sr->route == ROUTE_METRICS && !sr->key.admin)
        return isd_err_set(e, ISD_E_FORBIDDEN, NULL,
                           "Metrics are only available with an admin API key (imagesd keys "
                           "create --admin).");
    if (!sr->endpoint || (sr->key.rpm == 0 && sr->key.ipm == 0))
        return 0;
    struct isd_limit_rule rule = rule_of(&sr->key);
    int rc = isd_limits_take(srv->limits, sr->key.id, &rule, sr->key.rpm > 0, 0, false,
                             isd_mono_ns(), &sr->limits);
    sr->has_limits = true;
    if (rc < 0)
        return refuse_rate(sr, &sr->limits, 1, e);
    return 0;
}

int srv_take_images(struct isd_http_request *req, int images, bool slot, struct isd_error *e)
{
    struct srv_request *sr = srv_request_of(req);
    if (!sr || !sr->has_key || (sr->key.ipm == 0 && (!slot || sr->key.max_concurrent == 0)))
        return 0;
    struct isd_limit_rule rule = rule_of(&sr->key);
    struct isd_limit_state st;
    int rc =
        isd_limits_take(sr->srv->limits, sr->key.id, &rule, 0, images, slot, isd_mono_ns(), &st);
    /* keep the request numbers from admission, take the image numbers from now */
    if (sr->has_limits) {
        sr->limits.limit_images = st.limit_images;
        sr->limits.remaining_images = st.remaining_images;
        sr->limits.reset_images = st.reset_images;
        sr->limits.refused = st.refused;
        sr->limits.retry_after = st.retry_after;
    } else {
        sr->limits = st;
        sr->has_limits = true;
    }
    if (rc < 0)
        return refuse_rate(sr, &st, images, e);
    if (slot)
        sr->slot = true;
    return 0;
}
