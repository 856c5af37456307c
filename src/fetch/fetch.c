/* fetch: see fetch.h for the contract. */
#include "fetch/fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define HOST_MAX       253                    /* a DNS name; IPv6 literals are shorter */
#define PIN_ADDRS      16                     /* addresses handed to libcurl for one name */
#define ADDR_TEXT      (INET6_ADDRSTRLEN + 2) /* "[v6]" */
#define PIN_TEXT       (HOST_MAX + 8 + PIN_ADDRS * (ADDR_TEXT + 1))
#define TIMEOUT_MAX_MS (24L * 3600 * 1000) /* longer timeouts are cut to a day */
#define SCHEME_SHOW    20                  /* bytes of an unsupported scheme quoted in a message */

/* ---- address classification ---- */

struct v4_range {
    uint32_t net; /* host byte order */
    int bits;
};

static const struct v4_range v4_not_public[] = {
    {0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10}, {0x7f000000, 8},  {0xa9fe0000, 16},
    {0xac100000, 12}, {0xc0000000, 24}, {0xc0000200, 24}, {0xc0586300, 24}, {0xc0a80000, 16},
    {0xc6120000, 15}, {0xc6336400, 24}, {0xcb007100, 24}, {0xe0000000, 4},  {0xf0000000, 4},
};

struct v6_range {
    uint8_t prefix[16];
    int bits;
};

static const struct v6_range v6_global_unicast = {{0x20}, 3};
static const struct v6_range v6_mapped = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96};
static const struct v6_range v6_nat64 = {{0x00, 0x64, 0xff, 0x9b}, 96};
static const struct v6_range v6_6to4 = {{0x20, 0x02}, 16};

/* globally reachable exceptions inside 2001::/23 (IANA special-purpose registry) */
static const struct v6_range v6_public_in_2001[] = {
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, 128},
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02}, 128},
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03}, 128},
    {{0x20, 0x01, 0x00, 0x03}, 32},
    {{0x20, 0x01, 0x00, 0x04, 0x01, 0x12}, 48},
    {{0x20, 0x01, 0x00, 0x20}, 28},
    {{0x20, 0x01, 0x00, 0x30}, 28},
};

/* not public although inside 2000::/3 */
static const struct v6_range v6_not_public_global[] = {
    {{0x20, 0x01}, 23},             /* IETF protocol assignments */
    {{0x20, 0x01, 0x0d, 0xb8}, 32}, /* documentation */
    {{0x3f, 0xff}, 20},             /* documentation */
};

static bool v4_public(uint32_t a)
{
    for (size_t i = 0; i < sizeof v4_not_public / sizeof v4_not_public[0]; i++) {
        uint32_t mask = UINT32_MAX << (32 - v4_not_public[i].bits);
        if ((a & mask) == v4_not_public[i].net)
            return false;
    }
    return true;
}

static bool v6_in(const uint8_t a[16], const struct v6_range *r)
{
    int full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(a, r->prefix, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (r->prefix[full] & mask);
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool v6_public(const uint8_t a[16])
{
    if (v6_in(a, &v6_mapped) || v6_in(a, &v6_nat64))
        return v4_public(load_be32(a + 12));
    if (!v6_in(a, &v6_global_unicast))
        return false;
    if (v6_in(a, &v6_6to4))
        return v4_public(load_be32(a + 2));
    for (size_t i = 0; i < sizeof v6_public_in_2001 / sizeof v6_public_in_2001[0]; i++)
        if (v6_in(a, &v6_public_in_2001[i]))
            return true;
    for (size_t i = 0; i < sizeof v6_not_public_global / sizeof v6_not_public_global[0]; i++)
        if (v6_in(a, &v6_not_public_global[i]))
            return false;
    return true;
}

bool isd_fetch_address_public(const struct sockaddr *sa)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        return v4_public(ntohl(in.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        return v6_public(in6.sin6_addr.s6_addr);
    }
    return false;
}

static bool address_allowed(const struct isd_fetch_options *o, const struct sockaddr *sa)
{
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return false;
    if (o->allow_private)
        return true;
    if (o->address_allowed)
        return o->address_allowed(sa, o->address_ctx);
    return isd_fetch_address_public(sa);
}

/* ---- start-up ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT; /* written once, under global_once */

static void global_init_once(void)
{
    global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int isd_fetch_global_init(struct isd_error *err)
{
    pthread_once(&global_once, global_init_once);
    if (global_result != CURLE_OK)
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "fetch: curl_global_init failed: %s",
                           curl_easy_strerror(global_result));
    return 0;
}

/* ---- time ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- name resolution with a deadline ---- */

/* getaddrinfo has no timeout, so it runs in a detached thread while the caller waits on a
 * condition variable until the deadline. Whoever drops the last reference frees the job:
 * the caller when the answer came in time, else the thread when getaddrinfo returns. */
struct resolve_job {
    atomic_int refs;         /* caller + thread */
    pthread_mutex_t lock;    /* guards done, rc, res */
    pthread_cond_t finished; /* signalled when done */
    bool done;
    int rc;               /* getaddrinfo's result */
    struct addrinfo *res; /* owned by the job until the caller takes it */
    char host[HOST_MAX + 3];
};

static void resolve_job_unref(struct resolve_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    if (j->res)
        freeaddrinfo(j->res);
    pthread_cond_destroy(&j->finished);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static void *resolve_thread(void *arg)
{
    struct resolve_job *j = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(j->host, NULL, &hints, &res);
    pthread_mutex_lock(&j->lock);
    j->rc = rc;
    j->res = rc == 0 ? res : NULL;
    j->done = true;
    pthread_cond_signal(&j->finished);
    pthread_mutex_unlock(&j->lock);
    resolve_job_unref(j);
    return NULL;
}

static struct resolve_job *resolve_job_new(const char *host)
{
    struct resolve_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    atomic_init(&j->refs, 2);
    snprintf(j->host, sizeof j->host, "%s", host);
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        goto out_free;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&j->finished, &ca);
    pthread_condattr_destroy(&ca);
    if (crc != 0)
        goto out_free;
    if (pthread_mutex_init(&j->lock, NULL) != 0)
        goto out_cond;
    return j;
out_cond:
    pthread_cond_destroy(&j->finished);
out_free:
    free(j);
    return NULL;
}

enum resolve_result { RESOLVED = 0, RESOLVE_FAILED = -1, RESOLVE_TIMEOUT = -2, RESOLVE_NOMEM = -3 };

/* Resolves `host` before the monotonic `deadline` (ms); *res must be freed with freeaddrinfo. */
static enum resolve_result resolve(const char *host, int64_t deadline, struct addrinfo **res)
{
    *res = NULL;
    struct resolve_job *j = resolve_job_new(host);
    if (!j)
        return RESOLVE_NOMEM;
    pthread_attr_t attr;
    pthread_t tid;
    if (pthread_attr_init(&attr) != 0) {
        atomic_store(&j->refs, 1);
        resolve_job_unref(j);
        return RESOLVE_NOMEM;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int trc = pthread_create(&tid, &attr, resolve_thread, j);
    pthread_attr_destroy(&attr);
    if (trc != 0) {
        atomic_store(&j->refs, 1); /* no thread holds it */
        resolve_job_unref(j);
        return RESOLVE_NOMEM;
    }
    struct timespec until = {.tv_sec = (time_t)(deadline / 1000),
                             .tv_nsec = (long)(deadline % 1000) * 1000000};
    enum resolve_result r = RESOLVE_TIMEOUT;
    pthread_mutex_lock(&j->lock);
    while (!j->done) {
        int w = pthread_cond_timedwait(&j->finished, &j->lock, &until);
        if (w == ETIMEDOUT)
            break;
    }
    if (j->done) {
        r = j->rc == 0 ? RESOLVED : j->rc == EAI_MEMORY ? RESOLVE_NOMEM : RESOLVE_FAILED;
        *res = j->res;
        j->res = NULL;
    }
    pthread_mutex_unlock(&j->lock);
    resolve_job_unref(j);
    return r;
}

/* ---- one hop's target: a checked URL and the addresses to pin ---- */

struct target {
    CURLU *url;              /* normalised; borrowed from the caller */
    char host[HOST_MAX + 3]; /* as libcurl uses it: lower case, IPv6 literals in [] */
    char pin[PIN_TEXT];      /* CURLOPT_RESOLVE entry "host:port:a,b"; "" for literals */
    long port;               /* explicit or the scheme's default */
};

static int url_error(struct isd_error *err, const char *what)
{
    return isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "remote image: %s", what);
}

static bool url_has(CURLU *u, CURLUPart part)
{
    char *s = NULL;
    CURLUcode rc = curl_url_get(u, part, &s, 0);
    curl_free(s);
    return rc == CURLUE_OK;
}

static int check_scheme(CURLU *u, struct isd_error *err)
{
    char *scheme = NULL;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !scheme) {
        curl_free(scheme);
        return url_error(err, "malformed URL");
    }
    if (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) {
        curl_free(scheme);
        return 0;
    }
    char shown[SCHEME_SHOW + 4];
    isd_err_quote(shown, scheme, strlen(scheme), SCHEME_SHOW);
    curl_free(scheme);
    return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                       "remote image: unsupported URL scheme '%s' (only http and https)", shown);
}

/* A DNS name as we accept it: ASCII letters, digits, '-', '_' and '.', lower-cased in place. */
static bool host_name_ok(char *h)
{
    if (!*h)
        return false;
    for (char *p = h; *p; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            *p = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                   c == '.'))
            return false;
    }
    return true;
}

static int refused(const struct target *t, struct isd_error *err)
{
    return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                       "remote image: refused to fetch from %s: not a public address", t->host);
}

/* An IP literal (what libcurl will connect to, without resolving): checked, nothing to pin. */
static int check_literal(const struct target *t, const struct isd_fetch_options *o, bool *is_lit,
                         struct isd_error *err)
{
    struct sockaddr_storage ss = {0};
    *is_lit = true;
    if (t->host[0] == '[') {
        char bare[HOST_MAX + 1];
        size_t n = strlen(t->host);
        if (n < 3 || t->host[n - 1] != ']' || n - 2 >= sizeof bare)
            return url_error(err, "malformed URL");
        memcpy(bare, t->host + 1, n - 2);
        bare[n - 2] = '\0';
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, bare, &in6->sin6_addr) != 1)
            return url_error(err, "malformed URL");
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        if (inet_pton(AF_INET, t->host, &in->sin_addr) != 1) {
            *is_lit = false;
            return 0;
        }
    }
    return address_allowed(o, (struct sockaddr *)&ss) ? 0 : refused(t, err);
}

static int resolve_error(const struct target *t, enum resolve_result r, long timeout_ms,
                         struct isd_error *err)
{
    if (r == RESOLVE_NOMEM)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "remote image: out of memory resolving %s",
                           t->host);
    if (r == RESOLVE_TIMEOUT)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                           "remote image: could not resolve host %s within %ld ms", t->host,
                           timeout_ms);
    return isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "remote image: could not resolve host %s",
                       t->host);
}

/* Resolves a host name, checks every address, and writes the CURLOPT_RESOLVE entry. */
static int check_name(struct target *t, const struct isd_fetch_options *o, int64_t deadline,
                      struct isd_error *err)
{
    struct addrinfo *res = NULL;
    enum resolve_result r = resolve(t->host, deadline, &res);
    if (r != RESOLVED)
        return resolve_error(t, r, o->timeout_ms, err);
    int n = snprintf(t->pin, sizeof t->pin, "%s:%ld:", t->host, t->port);
    size_t used = (size_t)n, pinned = 0;
    int rc = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        if (!a->ai_addr || !address_allowed(o, a->ai_addr)) {
            rc = refused(t, err);
            break;
        }
        char text[INET6_ADDRSTRLEN];
        const void *bin = a->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        if (pinned == PIN_ADDRS || !inet_ntop(a->ai_family, bin, text, sizeof text))
            continue; /* still checked above, just not handed to libcurl */
        bool v6 = a->ai_family == AF_INET6;
        n = snprintf(t->pin + used, sizeof t->pin - used, "%s%s%s%s", pinned ? "," : "",
                     v6 ? "[" : "", text, v6 ? "]" : "");
        if (n < 0 || (size_t)n >= sizeof t->pin - used)
            break;
        used += (size_t)n;
        pinned++;
    }
    freeaddrinfo(res);
    if (rc == 0 && pinned == 0)
        rc = resolve_error(t, RESOLVE_FAILED, o->timeout_ms, err);
    return rc;
}

/* Checks the URL in `t->url` for this hop (see fetch.h) and fills the rest of `t`. */
static int prepare_target(struct target *t, const struct isd_fetch_options *o, int64_t deadline,
                          struct isd_error *err)
{
    t->pin[0] = '\0';
    t->host[0] = '\0';
    int rc = check_scheme(t->url, err);
    if (rc < 0)
        return rc;
    if (url_has(t->url, CURLUPART_USER) || url_has(t->url, CURLUPART_PASSWORD) ||
        url_has(t->url, CURLUPART_OPTIONS))
        return url_error(err, "URLs with credentials (user@host) are not accepted");
    if (url_has(t->url, CURLUPART_ZONEID))
        return url_error(err, "IPv6 zone identifiers are not accepted");

    char *host = NULL, *port = NULL;
    CURLUcode hc = curl_url_get(t->url, CURLUPART_HOST, &host, 0);
    CURLUcode pc = curl_url_get(t->url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    bool ok = hc == CURLUE_OK && pc == CURLUE_OK && host && port && *host &&
              strlen(host) < sizeof t->host;
    if (ok) {
        snprintf(t->host, sizeof t->host, "%s", host);
        char *end;
        t->port = strtol(port, &end, 10);
        ok = *end == '\0' && t->port > 0 && t->port <= 65535;
    }
    curl_free(host);
    curl_free(port);
    if (!ok)
        return url_error(err, "malformed URL");

    bool literal;
    rc = check_literal(t, o, &literal, err);
    if (rc < 0 || literal)
        return rc;
    if (!host_name_ok(t->host))
        return url_error(err, "host names must be ASCII (internationalised names as xn--)");
    /* libcurl must look up exactly the (lower-cased) name we pinned */
    CURLUcode sc = curl_url_set(t->url, CURLUPART_HOST, t->host, 0);
    if (sc == CURLUE_OUT_OF_MEMORY)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "remote image: out of memory");
    if (sc != CURLUE_OK)
        return url_error(err, "malformed URL");
    return check_name(t, o, deadline, err);
}

/* Parses an absolute URL, or `ref` relative to `base` (a redirect's Location). */
static int parse_url(CURLU *base, const char *ref, CURLU **out, struct isd_error *err)
{
    *out = NULL;
    if (strlen(ref) > ISD_FETCH_URL_MAX)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "remote image: URL longer than %d bytes",
                           ISD_FETCH_URL_MAX);
    CURLU *u = base ? curl_url_dup(base) : curl_url();
    if (!u)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "remote image: out of memory");
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, ref, CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK) {
        curl_url_cleanup(u);
        if (rc == CURLUE_OUT_OF_MEMORY)
            return isd_err_set(err, ISD_E_NOMEM, NULL, "remote image: out of memory");
        return url_error(err, "malformed URL");
    }
    *out = u;
    return 0;
}

/* ---- one transfer ---- */

struct transfer {
    const struct isd_fetch_options *opts;
    CURL *curl;
    struct isd_buf *out;
    size_t start;                         /* out->len before the fetch; restored on failure */
    size_t cap;                           /* body ceiling */
    long status;                          /* response code, read at the first body byte; 0 before */
    bool too_large;                       /* body passed `cap` */
    bool nomem;                           /* appending to `out` failed */
    bool refused;                         /* the socket check refused an address */
    bool location_bad;                    /* Location longer than ISD_FETCH_URL_MAX */
    char location[ISD_FETCH_URL_MAX + 1]; /* of the last response; "" if none */
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *x = ud;
    (void)size; /* always 1 */
    if (x->status == 0)
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->status != 200)
        return 0; /* not the image: stop reading, the status says what happened */
    if (n > x->cap - (x->out->len - x->start)) {
        x->too_large = true;
        return 0;
    }
    if (isd_buf_append(x->out, p, n) < 0) {
        x->nomem = true;
        return 0;
    }
    return n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *x = ud;
    (void)size;                                 /* always 1 */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response: forget the last one's */
        x->location[0] = '\0';
        x->location_bad = false;
    } else if (n > 9 && strncasecmp(p, "location:", 9) == 0) {
        size_t b = 9, e = n;
        while (b < e && (p[b] == ' ' || p[b] == '\t'))
            b++;
        while (e > b &&
               (p[e - 1] == '\r' || p[e - 1] == '\n' || p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        if (e - b > ISD_FETCH_URL_MAX || memchr(p + b, '\0', e - b)) {
            x->location_bad = true;
        } else {
            memcpy(x->location, p + b, e - b);
            x->location[e - b] = '\0';
        }
    }
    return n;
}

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct transfer *x = ud;
    struct sockaddr_storage ss = {0};
    size_t len = a->addrlen < sizeof ss ? a->addrlen : sizeof ss;
    memcpy(&ss, &a->addr, len);
    if (purpose != CURLSOCKTYPE_IPCXN || !address_allowed(x->opts, (struct sockaddr *)&ss)) {
        x->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

#define SETOPT(h, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt(h, opt, val) != CURLE_OK)                                             \
            return -1;                                                                             \
    } while (0)

static int configure(CURL *h, const struct target *t, struct curl_slist *pin, long timeout_ms,
                     struct transfer *x)
{
    SETOPT(h, CURLOPT_CURLU, t->url);
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L); /* we follow, checking each target */
    if (pin)
        SETOPT(h, CURLOPT_RESOLVE, pin);
    SETOPT(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SETOPT(h, CURLOPT_OPENSOCKETDATA, x);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, x);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, x);
    if (x->cap > 0)
        SETOPT(h, CURLOPT_MAXFILESIZE_LARGE,
               (curl_off_t)(x->cap < INT64_MAX ? x->cap : (size_t)INT64_MAX));
    SETOPT(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    /* "" disables proxies, including http_proxy/https_proxy/all_proxy from the environment:
     * the server's environment must not decide where client-given URLs go. */
    SETOPT(h, CURLOPT_PROXY, "");
    SETOPT(h, CURLOPT_USERAGENT, "imagesd");
    SETOPT(h, CURLOPT_ACCEPT_ENCODING, "identity");
    SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
    return 0;
}

enum hop_result { HOP_DONE = 0, HOP_REDIRECT = 1 };

static bool is_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static int transfer_error(const struct target *t, const struct transfer *x, CURLcode cc,
                          struct isd_error *err)
{
    if (x->nomem)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "remote image: out of memory");
    if (x->refused)
        return refused(t, err);
    if (x->too_large || cc == CURLE_FILESIZE_EXCEEDED)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                           "remote image: larger than %zu bytes from %s", x->cap, t->host);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                           "remote image: timed out after %ld ms fetching from %s",
                           x->opts->timeout_ms, t->host);
    if (cc == CURLE_COULDNT_CONNECT)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "remote image: could not connect to %s",
                           t->host);
    if (cc == CURLE_OUT_OF_MEMORY)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "remote image: out of memory");
    if (cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION ||
        cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CIPHER ||
        cc == CURLE_SSL_ISSUER_ERROR)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "remote image: TLS error with %s (%s)",
                           t->host, curl_easy_strerror(cc));
    return isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "remote image: fetching from %s failed (%s)",
                       t->host, curl_easy_strerror(cc));
}

/* Copies the media type of a Content-Type value: lower case, no parameters, no spaces. */
static void media_type(const char *v, char *out, size_t cap)
{
    if (!out || cap == 0)
        return;
    out[0] = '\0';
    if (!v)
        return;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, "; \t");
    if (n >= cap)
        return;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] - 'A' + 'a' : v[i]);
    out[n] = '\0';
}

/* Runs one request for the checked target. HOP_DONE with the body appended, HOP_REDIRECT with
 * the redirect's target in *next, or a negative error. */
static int run_hop(const struct target *t, struct transfer *x, long timeout_ms, CURLU **next,
                   char *content_type, size_t ct_cap, struct isd_error *err)
{
    *next = NULL;
    struct curl_slist *pin = NULL;
    if (t->pin[0] && !(pin = curl_slist_append(NULL, t->pin)))
        return isd_err_set(err, ISD_E_NOMEM, NULL, "remote image: out of memory");
    CURL *h = curl_easy_init();
    if (!h) {
        curl_slist_free_all(pin);
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "fetch: curl_easy_init failed");
    }
    x->curl = h;
    x->status = 0;
    x->too_large = x->nomem = x->refused = x->location_bad = false;
    x->location[0] = '\0';
    int rc;
    if (configure(h, t, pin, timeout_ms, x) < 0) {
        rc = isd_err_set(err, ISD_E_INTERNAL, NULL, "fetch: libcurl refused an option");
        goto out;
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200 && cc == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        media_type(ct, content_type, ct_cap);
        rc = HOP_DONE;
    } else if (status != 0 && status != 200 && !x->nomem) {
        if (is_redirect(status) && (x->location[0] || x->location_bad)) {
            rc = x->location_bad ? -ISD_E_INVALID_VALUE : parse_url(t->url, x->location, next, err);
            if (rc == 0)
                rc = HOP_REDIRECT;
            else if (rc != -ISD_E_NOMEM)
                rc = isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                                 "remote image: invalid redirect from %s", t->host);
        } else {
            rc = isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "remote image: HTTP %ld from %s",
                             status, t->host);
        }
    } else {
        rc = transfer_error(t, x, cc == CURLE_OK ? CURLE_RECV_ERROR : cc, err);
    }
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(pin);
    x->curl = NULL;
    return rc;
}

/* ---- the public entry ---- */

static int check_options(const char *url, const struct isd_fetch_options *o,
                         const struct isd_buf *out, struct isd_error *err)
{
    if (!url || !o || !out || o->timeout_ms <= 0 || o->max_redirects < 0 || out->len > out->max)
        return isd_err_set(err, ISD_E_INTERNAL, NULL, "fetch: invalid arguments");
    return isd_fetch_global_init(err);
}

int isd_fetch_url(const char *url, const struct isd_fetch_options *opts, struct isd_buf *out,
                  char *content_type, size_t ct_cap, struct isd_error *err)
{
    if (content_type && ct_cap > 0)
        content_type[0] = '\0';
    int rc = check_options(url, opts, out, err);
    if (rc < 0)
        return rc;
    struct transfer *x = calloc(1, sizeof *x); /* 8 KiB of Location: not on the stack */
    if (!x)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "remote image: out of memory");
    x->opts = opts;
    x->out = out;
    x->start = out->len;
    size_t room = out->max - out->len;
    x->cap = opts->max_bytes > 0 && opts->max_bytes < room ? opts->max_bytes : room;

    long timeout_ms = opts->timeout_ms < TIMEOUT_MAX_MS ? opts->timeout_ms : TIMEOUT_MAX_MS;
    int64_t deadline = now_ms() + timeout_ms;
    struct target t = {0};
    rc = parse_url(NULL, url, &t.url, err);
    for (int hop = 0; rc == 0; hop++) {
        rc = prepare_target(&t, opts, deadline, err);
        if (rc < 0)
            break;
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            rc = isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                             "remote image: timed out after %ld ms fetching from %s",
                             opts->timeout_ms, t.host);
            break;
        }
        CURLU *next = NULL;
        rc = run_hop(&t, x, (long)left, &next, content_type, ct_cap, err);
        if (rc != HOP_REDIRECT)
            break;
        curl_url_cleanup(t.url);
        t.url = next;
        if (hop == opts->max_redirects) {
            rc = isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                             "remote image: more than %d redirects from %s", opts->max_redirects,
                             t.host);
            break;
        }
        rc = 0;
    }
    curl_url_cleanup(t.url);
    if (rc < 0) {
        out->len = x->start;
        if (out->data)
            out->data[out->len] = '\0';
    }
    free(x);
    return rc < 0 ? rc : 0;
}
