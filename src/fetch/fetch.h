/*
 * fetch: downloads an image given by URL for a JSON edit (`images: [{"image_url": ...}]`),
 * with the guards a server that fetches on behalf of clients needs (no SSRF).
 *
 * Checks, in order, for the URL and again for every redirect target:
 *   - at most ISD_FETCH_URL_MAX bytes, parsed by libcurl's URL API (the same parser libcurl
 *     then uses, so the host we check is the host it connects to); scheme http or https only;
 *     no user name, password or login options; no IPv6 zone id; host names in ASCII (IDNs
 *     must be given as punycode, xn--...).
 *   - IP literals in any form libcurl accepts (127.0.0.1, 2130706433, 0x7f.1, 0177.0.0.1,
 *     127.1, [::1], [::ffff:127.0.0.1]) are checked as the address they mean; host names are
 *     resolved with getaddrinfo (within the deadline) and EVERY address must be allowed, else
 *     the fetch is refused before any connection is made.
 *   - the connection is pinned to the checked addresses (CURLOPT_RESOLVE), so libcurl never
 *     resolves the name again (no DNS rebinding), and the address of every socket libcurl
 *     opens is checked once more (CURLOPT_OPENSOCKETFUNCTION) as a second line of defence.
 * "Allowed" means: anything when `allow_private`; else `address_allowed(sa, ctx)` when given;
 * else isd_fetch_address_public(), which refuses (everything else is public):
 *   IPv4  0/8 (this network), 10/8, 172.16/12, 192.168/16 (RFC 1918), 100.64/10 (CGNAT),
 *         127/8 (loopback), 169.254/16 (link-local, cloud metadata), 192.0.0/24 (IETF),
 *         192.0.2/24, 198.51.100/24, 203.0.113/24 (documentation), 192.88.99/24 (6to4 relay),
 *         198.18/15 (benchmarking), 224/4 (multicast), 240/4 (reserved, incl. broadcast).
 *   IPv6  everything outside 2000::/3 (global unicast): so ::, ::1, ::/96 (IPv4-compatible),
 *         100::/64 (discard), fc00::/7 (ULA), fe80::/10 (link-local), fec0::/10, ff00::/8
 *         (multicast), 64:ff9b:1::/48 (local NAT64), 5f00::/16 -- EXCEPT ::ffff:0:0/96
 *         (IPv4-mapped) and 64:ff9b::/96 (NAT64), judged by the embedded IPv4 address;
 *         inside 2000::/3: 2002::/16 (6to4) judged by its embedded IPv4 address, and
 *         2001::/23 (IETF protocol assignments, incl. Teredo 2001::/32, benchmarking
 *         2001:2::/48, ORCHID 2001:10::/28), 2001:db8::/32 and 3fff::/20 (documentation)
 *         refused, except the globally reachable 2001:1::1-3, 2001:3::/32 (AMT),
 *         2001:4:112::/48 (AS112), 2001:20::/28 (ORCHIDv2) and 2001:30::/28 (DET).
 *   Other address families are never public.
 *
 * Transfer: libcurl, one easy handle per hop, protocols http and https only (also for
 * redirects), TLS peer and host verification on, no proxy (CURLOPT_PROXY "" -- the server's
 * environment, e.g. http_proxy, must not change where client-given URLs go, nor let a proxy
 * reach what the checks above refuse), User-Agent "imagesd", Accept-Encoding identity.
 * Redirects (301, 302, 303, 307, 308 with a Location) are followed by this module, not by
 * libcurl, up to `max_redirects`; each target goes through every check above. Only status
 * 200 is success. The body is capped at min(max_bytes, room left in `out`): a larger
 * Content-Length is refused before the body is read, and a body without one is cut off as
 * soon as it passes the cap. `timeout_ms` bounds the whole fetch: name resolution, connects,
 * transfers and all redirects together.
 *
 * Ownership: `out` is the caller's; on success the body is appended to it, on failure it is
 * left as it was. `content_type` is a caller buffer.
 * Errors: -ISD_E_INVALID_VALUE for anything about the URL or the remote side, with a message
 * "remote image: ..." naming the host only (never the path or query) and the reason:
 * malformed URL, scheme, credentials, host not public, DNS failure, connection failure,
 * HTTP status other than 200 ("remote image: HTTP 404 from example.com"), too large,
 * timeout, too many redirects, TLS failure. `param` is left empty: the caller knows which
 * field ("images[2]") held the URL and may set it. -ISD_E_NOMEM when memory runs out;
 * -ISD_E_INTERNAL for invalid options or when libcurl cannot be initialised.
 * Threading: isd_fetch_url and isd_fetch_address_public are thread-safe. Call
 * isd_fetch_global_init() once at start-up, before any thread starts (curl_global_init is
 * only guaranteed thread-safe on some builds); isd_fetch_url calls it too, guarded by
 * pthread_once, so a forgotten call is not a crash. A name resolution that outlives the
 * deadline finishes in a detached thread that frees its own memory.
 *
 *     struct isd_fetch_options o = {.max_bytes = 20 << 20, .timeout_ms = 10000,
 *                                   .max_redirects = 3};
 *     struct isd_buf body; isd_buf_init(&body, o.max_bytes);
 *     char ctype[128];
 *     if (isd_fetch_url(url, &o, &body, ctype, sizeof ctype, &err) < 0) ...
 */
#ifndef ISD_FETCH_H
#define ISD_FETCH_H

#include "buf/buf.h"
#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>

#define ISD_FETCH_URL_MAX 8192 /* bytes of a URL or a redirect's Location */

struct sockaddr;

struct isd_fetch_options {
    size_t max_bytes;   /* body ceiling; 0 = only `out`'s own ceiling */
    long timeout_ms;    /* whole fetch, redirects and DNS included; > 0 (a day at most) */
    int max_redirects;  /* 0 = none followed (a redirect is then an error); must be >= 0 */
    bool allow_private; /* permit every address (loopback, private, link-local...) */
    /* Optional policy replacing isd_fetch_address_public() when allow_private is false (an
     * operator allowlist; the tests). Called with AF_INET/AF_INET6 addresses, from the
     * calling thread only; must be thread-safe if the options are shared. */
    bool (*address_allowed)(const struct sockaddr *sa, void *ctx);
    void *address_ctx; /* passed to address_allowed */
};

/* curl_global_init, once (pthread_once); 0 or -ISD_E_INTERNAL. */
int isd_fetch_global_init(struct isd_error *err);
/* Fetches `url`, appending the body to `out`. `content_type` (may be NULL with ct_cap 0)
 * receives the response's media type, lower case, without parameters ("image/png" of
 * "Image/PNG; charset=binary"); "" when there is none or it does not fit in ct_cap. */
int isd_fetch_url(const char *url, const struct isd_fetch_options *opts, struct isd_buf *out,
                  char *content_type, size_t ct_cap, struct isd_error *err);
/* True when the address (sockaddr_in / sockaddr_in6) is public, by the rules above. */
bool isd_fetch_address_public(const struct sockaddr *sa);

#endif
