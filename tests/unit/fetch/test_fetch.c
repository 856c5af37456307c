/*
 * fetch: address classification, and isd_fetch_url against a tiny HTTP server run by this
 * test on 127.0.0.1 (no internet needed). The server counts the connections it accepts, so
 * "refused before connecting" is checked, not assumed: after a refused fetch, one control
 * fetch must raise the count by exactly one (a stray connection from the refused fetch would
 * still be queued and counted first).
 */
#include "support/test.h"

#include "buf/buf.h"
#include "err/err.h"
#include "fetch/fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- address table ---- */

struct addr_case {
    const char *addr;
    bool is_public;
};

static const struct addr_case addr_cases[] = {
    /* IPv4 public */
    {"8.8.8.8", true},
    {"1.1.1.1", true},
    {"93.184.216.34", true},
    {"9.255.255.255", true},
    {"11.0.0.0", true},
    {"100.63.255.255", true},
    {"100.128.0.0", true},
    {"126.255.255.255", true},
    {"128.0.0.0", true},
    {"169.253.255.255", true},
    {"169.255.0.0", true},
    {"172.15.255.255", true},
    {"172.32.0.0", true},
    {"192.0.1.1", true},
    {"192.0.3.1", true},
    {"192.88.98.1", true},
    {"192.167.255.255", true},
    {"192.169.0.0", true},
    {"198.17.255.255", true},
    {"198.20.0.0", true},
    {"203.0.114.1", true},
    {"223.255.255.255", true},
    /* IPv4 not public */
    {"0.0.0.0", false},
    {"0.255.255.255", false},
    {"10.0.0.1", false},
    {"10.255.255.255", false},
    {"100.64.0.1", false},
    {"100.127.255.255", false},
    {"127.0.0.1", false},
    {"127.255.255.254", false},
    {"169.254.169.254", false},
    {"172.16.0.1", false},
    {"172.31.255.255", false},
    {"192.0.0.1", false},
    {"192.0.0.170", false},
    {"192.0.2.1", false},
    {"192.88.99.1", false},
    {"192.168.1.1", false},
    {"198.18.0.1", false},
    {"198.19.255.255", false},
    {"198.51.100.7", false},
    {"203.0.113.9", false},
    {"224.0.0.1", false},
    {"239.255.255.250", false},
    {"240.0.0.1", false},
    {"255.255.255.255", false},
    /* IPv6 public */
    {"2001:4860:4860::8888", true},
    {"2606:4700:4700::1111", true},
    {"2a00:1450:4001:80e::200e", true},
    {"2000::1", true},
    {"3ffe::1", true},
    {"2001:200::1", true}, /* just past 2001::/23 */
    {"2001:1::1", true},
    {"2001:1::2", true},
    {"2001:3::1", true},
    {"2001:4:112::1", true},
    {"2001:20::1", true},
    {"2001:30::1", true},
    {"::ffff:8.8.8.8", true},
    {"64:ff9b::808:808", true},
    {"2002:808:808::1", true},
    /* IPv6 not public */
    {"::", false},
    {"::1", false},
    {"::127.0.0.1", false},
    {"::8.8.8.8", false}, /* IPv4-compatible, deprecated */
    {"::ffff:127.0.0.1", false},
    {"::ffff:7f00:1", false},
    {"::ffff:10.1.2.3", false},
    {"::ffff:169.254.169.254", false},
    {"::ffff:0.0.0.0", false},
    {"64:ff9b::7f00:1", false},
    {"64:ff9b::a00:1", false},
    {"64:ff9b:1::1", false},
    {"100::1", false},
    {"2001::1", false}, /* Teredo */
    {"2001:2::1", false},
    {"2001:10::1", false},
    {"2001:1::4", false},
    {"2001:1ff:ffff::1", false},
    {"2001:db8::1", false},
    {"2001:db8:ffff::1", false},
    {"2002:7f00:1::1", false},   /* 6to4 of 127.0.0.1 */
    {"2002:c0a8:101::1", false}, /* 6to4 of 192.168.1.1 */
    {"3fff::1", false},
    {"5f00::1", false},
    {"fc00::1", false},
    {"fd12:3456:789a::1", false},
    {"fe80::1", false},
    {"febf::1", false},
    {"fec0::1", false},
    {"ff02::1", false},
    {"ff0e::1", false},
    {"4000::1", false},
    {"1::1", false},
};

static bool classify(const char *text)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    return isd_fetch_address_public((struct sockaddr *)&ss);
}

static void address_table(void **state)
{
    (void)state;
    int wrong = 0;
    for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
        bool got = classify(addr_cases[i].addr);
        if (got != addr_cases[i].is_public) {
            print_error("%s: expected %s\n", addr_cases[i].addr,
                        addr_cases[i].is_public ? "public" : "not public");
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

static void address_other_families(void **state)
{
    (void)state;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_false(isd_fetch_address_public((struct sockaddr *)&un));
    assert_false(isd_fetch_address_public(NULL));
}

/* ---- the test server ---- */

#define BODY_LEN 5000

static struct {
    int listen_fd;
    int stop[2]; /* a byte on stop[1] ends the server thread */
    int port;
    atomic_int connections;
    pthread_t thread;
    unsigned char body[BODY_LEN];
} srv;

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Waits until the client closes (or 5 s pass): the "server that sends nothing". */
static void wait_for_close(int fd)
{
    char tmp[512];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return;
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r <= 0)
            return;
    }
}

/* Reads the request head; returns the request target ("/path?query") or "" on failure. */
static void read_target(int fd, char *target, size_t cap)
{
    char req[8192];
    size_t n = 0;
    target[0] = '\0';
    while (n < sizeof req - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return;
        ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    const char *sp = strchr(req, ' ');
    if (!sp)
        return;
    const char *end = strchr(sp + 1, ' ');
    if (!end || (size_t)(end - sp - 1) >= cap)
        return;
    memcpy(target, sp + 1, (size_t)(end - sp - 1));
    target[end - sp - 1] = '\0';
}

static void serve(int fd, const char *target)
{
    char head[10000];
    if (strcmp(target, "/ok") == 0) {
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Type: Image/PNG; charset=binary\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n\r\n",
                 BODY_LEN);
        send_str(fd, head);
        send_all(fd, srv.body, BODY_LEN);
    } else if (strcmp(target, "/noctype") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
    } else if (strcmp(target, "/chunked") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: image/webp\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        for (int off = 0; off < BODY_LEN; off += 1000) {
            snprintf(head, sizeof head, "%x\r\n", 1000);
            send_str(fd, head);
            send_all(fd, srv.body + off, 1000);
            send_str(fd, "\r\n");
        }
        send_str(fd, "0\r\n\r\n");
    } else if (strncmp(target, "/r?", 3) == 0 || strncmp(target, "/r307?", 6) == 0) {
        bool r307 = target[2] == '3';
        snprintf(head, sizeof head,
                 "HTTP/1.1 %s\r\nLocation: %s\r\nContent-Length: 5\r\n"
                 "Connection: close\r\n\r\nmoved",
                 r307 ? "307 Temporary Redirect" : "302 Found", target + (r307 ? 6 : 3));
        send_str(fd, head);
    } else if (strcmp(target, "/loop") == 0) {
        send_str(fd, "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
    } else if (strcmp(target, "/noloc") == 0) {
        send_str(fd, "HTTP/1.1 302 Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (strcmp(target, "/404-big") == 0) {
        send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 100000000\r\n"
                     "Connection: close\r\n\r\n");
        wait_for_close(fd);
    } else if (strcmp(target, "/huge") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n");
        for (int i = 0; i < 64 * 1024 * 1024 / BODY_LEN; i++) {
            ssize_t w = send(fd, srv.body, BODY_LEN, MSG_NOSIGNAL);
            if (w <= 0)
                break;
        }
    } else if (strcmp(target, "/biglength") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                     "Content-Length: 1000000000\r\nConnection: close\r\n\r\n");
        wait_for_close(fd); /* no body: a client that waits for it would time out */
    } else if (strcmp(target, "/slow") == 0) {
        wait_for_close(fd);
    } else if (strcmp(target, "/slow-body") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n");
        send_all(fd, srv.body, 10);
        wait_for_close(fd);
    } else {
        send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
                     "not found");
    }
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = srv.listen_fd, .events = POLLIN},
                              {.fd = srv.stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        int fd = accept(srv.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&srv.connections, 1);
        char target[4096];
        read_target(fd, target, sizeof target);
        serve(fd, target);
        shutdown(fd, SHUT_WR);
        wait_for_close(fd);
        close(fd);
    }
}

static int server_start(void **state)
{
    (void)state;
    for (int i = 0; i < BODY_LEN; i++)
        srv.body[i] = (unsigned char)(i * 7 % 251);
    srv.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(srv.listen_fd, 64) != 0 ||
        getsockname(srv.listen_fd, (struct sockaddr *)&a, &len) != 0 || pipe(srv.stop) != 0)
        return -1;
    srv.port = ntohs(a.sin_port);
    atomic_init(&srv.connections, 0);
    struct isd_error err = {0};
    if (isd_fetch_global_init(&err) != 0)
        return -1;
    return pthread_create(&srv.thread, NULL, server_main, NULL) == 0 ? 0 : -1;
}

static int server_stop(void **state)
{
    (void)state;
    if (write(srv.stop[1], "x", 1) != 1)
        return -1;
    pthread_join(srv.thread, NULL);
    close(srv.listen_fd);
    close(srv.stop[0]);
    close(srv.stop[1]);
    return 0;
}

/* ---- helpers ---- */

static const char *url(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *url(const char *fmt, ...)
{
    static char u[16][512];
    static int next;
    char *s = u[next++ % 16];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s, sizeof u[0], fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof u[0]);
    return s;
}

/* `tmpl` with every "{p}" replaced by the server's port (static storage, like url()). */
static const char *with_port(const char *tmpl)
{
    static char u[4][512];
    static int next;
    char *s = u[next++ % 4];
    char port[16];
    snprintf(port, sizeof port, "%d", srv.port);
    size_t n = 0;
    for (const char *p = tmpl; *p; p++) {
        const char *piece = p;
        size_t len = 1;
        if (strncmp(p, "{p}", 3) == 0) {
            piece = port;
            len = strlen(port);
            p += 2;
        }
        assert_true(n + len < sizeof u[0]);
        memcpy(s + n, piece, len);
        n += len;
    }
    s[n] = '\0';
    return s;
}

static const struct isd_fetch_options open_opts = {
    .max_bytes = 1 << 20, .timeout_ms = 5000, .max_redirects = 3, .allow_private = true};
static const struct isd_fetch_options strict_opts = {
    .max_bytes = 1 << 20, .timeout_ms = 5000, .max_redirects = 3, .allow_private = false};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fetches and expects a failure with -ISD_E_INVALID_VALUE whose message contains `part`. */
static void expect_refusal(const char *u, const struct isd_fetch_options *o, const char *part)
{
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    isd_buf_append_str(&b, "keep");
    struct isd_error err = {0};
    char ct[64] = "junk";
    int rc = isd_fetch_url(u, o, &b, ct, sizeof ct, &err);
    if (rc != -ISD_E_INVALID_VALUE || !strstr(err.message, part))
        print_error("%s: rc %d, message \"%s\", expected \"%s\"\n", u, rc, err.message, part);
    assert_int_equal(rc, -ISD_E_INVALID_VALUE);
    assert_non_null(strstr(err.message, part));
    assert_non_null(strstr(err.message, "remote image: "));
    assert_string_equal(err.param, "");
    assert_int_equal(b.len, 4); /* left as it was */
    assert_string_equal(b.data, "keep");
    assert_string_equal(ct, "");
    isd_buf_release(&b);
}

/* Fetches /ok and checks the whole body and media type arrived. */
static void expect_ok(const char *u, const struct isd_fetch_options *o)
{
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    struct isd_error err = {0};
    char ct[64];
    int rc = isd_fetch_url(u, o, &b, ct, sizeof ct, &err);
    if (rc != 0)
        print_error("%s: %s\n", u, err.message);
    assert_int_equal(rc, 0);
    assert_int_equal(b.len, BODY_LEN);
    assert_memory_equal(b.data, srv.body, BODY_LEN);
    assert_string_equal(ct, "image/png");
    isd_buf_release(&b);
}

/* Proves no connection reached the server since `before` (see the top of the file). */
static void assert_no_connection_since(int before)
{
    expect_ok(url("http://127.0.0.1:%d/ok", srv.port), &open_opts);
    assert_int_equal(atomic_load(&srv.connections), before + 1);
}

static int connections(void)
{
    return atomic_load(&srv.connections);
}

/* ---- functional cases (allow_private: the server is on loopback) ---- */

static void fetch_ok_appends(void **state)
{
    (void)state;
    int before = connections();
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    isd_buf_append_str(&b, "prefix");
    struct isd_error err = {0};
    char ct[64];
    assert_int_equal(
        isd_fetch_url(url("http://127.0.0.1:%d/ok", srv.port), &open_opts, &b, ct, sizeof ct, &err),
        0);
    assert_int_equal(b.len, 6 + BODY_LEN);
    assert_memory_equal(b.data, "prefix", 6);
    assert_memory_equal(b.data + 6, srv.body, BODY_LEN);
    assert_string_equal(ct, "image/png"); /* "Image/PNG; charset=binary" */
    assert_int_equal(connections(), before + 1);
    isd_buf_release(&b);
}

static void fetch_without_content_type(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 100);
    struct isd_error err = {0};
    char ct[64] = "junk";
    assert_int_equal(isd_fetch_url(url("http://127.0.0.1:%d/noctype", srv.port), &open_opts, &b, ct,
                                   sizeof ct, &err),
                     0);
    assert_string_equal(b.data, "abc");
    assert_string_equal(ct, "");
    isd_buf_release(&b);
    isd_buf_init(&b, 1 << 20);
    /* a media type that does not fit is not cut: "" */
    char small[6];
    assert_int_equal(isd_fetch_url(url("http://127.0.0.1:%d/ok", srv.port), &open_opts, &b, small,
                                   sizeof small, &err),
                     0);
    assert_string_equal(small, "");
    /* no content_type buffer at all */
    isd_buf_release(&b);
    isd_buf_init(&b, 1 << 20);
    assert_int_equal(
        isd_fetch_url(url("http://127.0.0.1:%d/ok", srv.port), &open_opts, &b, NULL, 0, &err), 0);
    assert_int_equal(b.len, BODY_LEN);
    isd_buf_release(&b);
}

static void fetch_size_cap_boundaries(void **state)
{
    (void)state;
    struct isd_fetch_options o = open_opts;
    o.max_bytes = BODY_LEN;
    expect_ok(url("http://127.0.0.1:%d/ok", srv.port), &o);
    o.max_bytes = BODY_LEN - 1;
    expect_refusal(url("http://127.0.0.1:%d/ok", srv.port), &o, "larger than 4999 bytes");
    /* without Content-Length the cut happens while reading */
    expect_refusal(url("http://127.0.0.1:%d/chunked", srv.port), &o, "larger than 4999 bytes");
    o.max_bytes = BODY_LEN;
    struct isd_buf b;
    isd_buf_init(&b, 1 << 20);
    struct isd_error err = {0};
    char ct[64];
    assert_int_equal(
        isd_fetch_url(url("http://127.0.0.1:%d/chunked", srv.port), &o, &b, ct, sizeof ct, &err),
        0);
    assert_int_equal(b.len, BODY_LEN);
    assert_memory_equal(b.data, srv.body, BODY_LEN);
    assert_string_equal(ct, "image/webp");
    isd_buf_release(&b);
}

static void fetch_buffer_ceiling_applies(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, BODY_LEN + 2);
    isd_buf_append_str(&b, "abc"); /* room left: BODY_LEN - 1 */
    struct isd_error err = {0};
    int rc = isd_fetch_url(url("http://127.0.0.1:%d/ok", srv.port), &open_opts, &b, NULL, 0, &err);
    assert_int_equal(rc, -ISD_E_INVALID_VALUE);
    assert_non_null(strstr(err.message, "larger than 4999 bytes from 127.0.0.1"));
    assert_int_equal(b.len, 3);
    isd_buf_release(&b);
    /* max_bytes 0: the buffer's ceiling alone */
    struct isd_fetch_options o = open_opts;
    o.max_bytes = 0;
    isd_buf_init(&b, BODY_LEN);
    assert_int_equal(isd_fetch_url(url("http://127.0.0.1:%d/ok", srv.port), &o, &b, NULL, 0, &err),
                     0);
    assert_int_equal(b.len, BODY_LEN);
    isd_buf_release(&b);
}

static void fetch_huge_body_cut_early(void **state)
{
    (void)state;
    struct isd_fetch_options o = open_opts;
    o.max_bytes = 64 * 1024;
    int64_t t0 = mono_ms();
    expect_refusal(url("http://127.0.0.1:%d/huge", srv.port), &o, "larger than 65536 bytes");
    assert_true(mono_ms() - t0 < 3000);
}

static void fetch_content_length_refused_before_body(void **state)
{
    (void)state;
    struct isd_fetch_options o = open_opts;
    o.max_bytes = 64 * 1024;
    o.timeout_ms = 3000;
    int64_t t0 = mono_ms();
    /* the server sends the head only: a client waiting for the body would time out */
    expect_refusal(url("http://127.0.0.1:%d/biglength", srv.port), &o, "larger than 65536 bytes");
    assert_true(mono_ms() - t0 < 1500);
}

static void fetch_http_errors(void **state)
{
    (void)state;
    expect_refusal(url("http://127.0.0.1:%d/missing", srv.port), &open_opts,
                   "remote image: HTTP 404 from 127.0.0.1");
    struct isd_fetch_options o = open_opts;
    o.max_bytes = 1000;
    int64_t t0 = mono_ms();
    /* a 404 announcing a body larger than the cap is still reported as the 404 */
    expect_refusal(url("http://127.0.0.1:%d/404-big", srv.port), &o,
                   "remote image: HTTP 404 from 127.0.0.1");
    assert_true(mono_ms() - t0 < 3000);
    expect_refusal(url("http://127.0.0.1:%d/noloc", srv.port), &open_opts,
                   "remote image: HTTP 302 from 127.0.0.1");
}

static void fetch_slow_server_times_out(void **state)
{
    (void)state;
    struct isd_fetch_options o = open_opts;
    o.timeout_ms = 300;
    int64_t t0 = mono_ms();
    expect_refusal(url("http://127.0.0.1:%d/slow", srv.port), &o,
                   "timed out after 300 ms fetching from 127.0.0.1");
    int64_t took = mono_ms() - t0;
    assert_true(took >= 250 && took < 2000);
    t0 = mono_ms();
    expect_refusal(url("http://127.0.0.1:%d/slow-body", srv.port), &o, "timed out after 300 ms");
    took = mono_ms() - t0;
    assert_true(took >= 250 && took < 2000);
}

static void fetch_redirects_followed(void **state)
{
    (void)state;
    int before = connections();
    expect_ok(url("http://127.0.0.1:%d/r?/ok", srv.port), &open_opts);
    assert_int_equal(connections(), before + 2);
    /* to another host name (localhost, from /etc/hosts) and absolute */
    expect_ok(url("http://127.0.0.1:%d/r?http://localhost:%d/ok", srv.port, srv.port), &open_opts);
    expect_ok(url("http://127.0.0.1:%d/r307?//127.0.0.1:%d/ok", srv.port, srv.port), &open_opts);
    /* a chain of two within max_redirects 2 */
    struct isd_fetch_options o = open_opts;
    o.max_redirects = 2;
    expect_ok(url("http://127.0.0.1:%d/r?/r?/ok", srv.port), &o);
}

static void fetch_redirect_limits(void **state)
{
    (void)state;
    int before = connections();
    expect_refusal(url("http://127.0.0.1:%d/loop", srv.port), &open_opts,
                   "more than 3 redirects from 127.0.0.1");
    assert_int_equal(connections(), before + 4);
    struct isd_fetch_options o = open_opts;
    o.max_redirects = 0;
    before = connections();
    expect_refusal(url("http://127.0.0.1:%d/r?/ok", srv.port), &o,
                   "more than 0 redirects from 127.0.0.1");
    assert_no_connection_since(before + 1);
}

static void fetch_redirect_to_other_schemes_refused(void **state)
{
    (void)state;
    const char *targets[] = {"file:///etc/passwd", "ftp://127.0.0.1:{p}/ok",
                             "gopher://127.0.0.1:{p}/", "dict://127.0.0.1:{p}/x"};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        const char *loc = with_port(targets[i]);
        int before = connections();
        expect_refusal(url("http://127.0.0.1:%d/r?%s", srv.port, loc), &open_opts,
                       "unsupported URL scheme");
        assert_no_connection_since(before + 1);
    }
    expect_refusal(url("http://127.0.0.1:%d/r?http://u:p@127.0.0.1:%d/ok", srv.port, srv.port),
                   &open_opts, "credentials");
    expect_refusal(url("http://127.0.0.1:%d/r?http://[::1", srv.port), &open_opts,
                   "invalid redirect from 127.0.0.1");
}

/* A policy in which exactly 127.0.0.1 counts as public: the test server plays a public host,
 * every other loopback or private address is refused as in production. */
static bool only_127_0_0_1(const struct sockaddr *sa, void *ctx)
{
    atomic_int *calls = ctx;
    if (calls)
        atomic_fetch_add(calls, 1);
    if (sa->sa_family != AF_INET)
        return false;
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return in->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

static void fetch_redirect_to_private_refused(void **state)
{
    (void)state;
    atomic_int calls;
    atomic_init(&calls, 0);
    struct isd_fetch_options o = strict_opts;
    o.address_allowed = only_127_0_0_1;
    o.address_ctx = &calls;
    /* control: the "public" host is fetched, redirects and all */
    expect_ok(url("http://127.0.0.1:%d/r?/ok", srv.port), &o);
    assert_true(atomic_load(&calls) >= 2);
    const char *targets[] = {
        "http://127.0.0.2:{p}/ok",
        "http://[::1]:{p}/ok",
        "http://2130706434:{p}/ok",
        "http://0x7f.2:{p}/ok",
        "http://[::ffff:127.0.0.2]:{p}/ok",
        "http://10.0.0.1:{p}/ok",
        "http://169.254.169.254:{p}/latest/meta-data/",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        const char *loc = with_port(targets[i]);
        int before = connections();
        int64_t t0 = mono_ms();
        expect_refusal(url("http://127.0.0.1:%d/r?%s", srv.port, loc), &o, "not a public address");
        assert_true(mono_ms() - t0 < 2000); /* refused, not a connect attempt timing out */
        assert_no_connection_since(before + 1);
    }
}

/* The address of the socket libcurl opens is checked again: a policy that changes its mind
 * after the first check (as DNS rebinding would) stops the connection. */
static bool first_call_only(const struct sockaddr *sa, void *ctx)
{
    (void)sa;
    atomic_int *calls = ctx;
    return atomic_fetch_add(calls, 1) == 0;
}

static void fetch_socket_recheck(void **state)
{
    (void)state;
    atomic_int calls;
    atomic_init(&calls, 0);
    struct isd_fetch_options o = strict_opts;
    o.address_allowed = first_call_only;
    o.address_ctx = &calls;
    int before = connections();
    expect_refusal(url("http://127.0.0.1:%d/ok", srv.port), &o, "not a public address");
    assert_int_equal(atomic_load(&calls), 2);
    assert_no_connection_since(before);
}

/* ---- refusals before any connection ---- */

static void refuse_loopback_in_every_form(void **state)
{
    (void)state;
    const char *forms[] = {
        "http://127.0.0.1:{p}/ok",
        "http://localhost:{p}/ok",
        "http://LocalHost:{p}/ok",
        "http://2130706433:{p}/ok",
        "http://0x7f000001:{p}/ok",
        "http://0x7f.1:{p}/ok",
        "http://0177.0.0.1:{p}/ok",
        "http://127.1:{p}/ok",
        "http://%31%32%37.0.0.1:{p}/ok",
        "http://[::1]:{p}/ok",
        "http://[0:0:0:0:0:0:0:1]:{p}/ok",
        "http://[::ffff:127.0.0.1]:{p}/ok",
        "http://[::ffff:7f00:1]:{p}/ok",
        "http://[::127.0.0.1]:{p}/ok",
        "http://0.0.0.0:{p}/ok",
        "http://0:{p}/ok",
        "http://[::]:{p}/ok",
        "HTTP://127.0.0.1:{p}/ok",
        "https://127.0.0.1:{p}/ok",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        int before = connections();
        expect_refusal(with_port(forms[i]), &strict_opts, "not a public address");
        assert_no_connection_since(before);
    }
    /* numeric-looking names that are no address: refused one way or another */
    const char *odd[] = {"http://127.0.0.1.:{p}/ok", "http://0x7f.1.:{p}/ok",
                         "http://127.0.0.1.nip.invalid:{p}/ok"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        int before = connections();
        expect_refusal(with_port(odd[i]), &strict_opts, "remote image: ");
        assert_no_connection_since(before);
    }
    /* private and metadata addresses are refused without an attempt (no connect timeout) */
    const char *others[] = {"http://10.0.0.1/x",   "http://192.168.0.1/x",
                            "http://172.16.5.4/x", "http://169.254.169.254/latest/meta-data/",
                            "http://100.64.0.1/",  "http://[fd00::1]/",
                            "http://[fe80::1]/",   "http://224.0.0.1/"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        int64_t t0 = mono_ms();
        expect_refusal(others[i], &strict_opts, "not a public address");
        assert_true(mono_ms() - t0 < 1000);
    }
}

static void loopback_forms_mean_loopback(void **state)
{
    (void)state;
    /* the odd forms refused above really reach 127.0.0.1 when private targets are allowed */
    const char *forms[] = {"http://2130706433:{p}/ok", "http://0x7f.1:{p}/ok",
                           "http://0177.0.0.1:{p}/ok", "http://127.1:{p}/ok",
                           "HTTP://LocalHost:{p}/ok"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        int before = connections();
        expect_ok(with_port(forms[i]), &open_opts);
        assert_int_equal(connections(), before + 1);
    }
}

static void refuse_unsupported_schemes(void **state)
{
    (void)state;
    int before = connections();
    const char *urls[] = {"file:///etc/passwd",      "ftp://127.0.0.1:{p}/ok",
                          "gopher://127.0.0.1:{p}/", "dict://127.0.0.1:{p}/",
                          "ws://127.0.0.1:{p}/",     "ldap://127.0.0.1:{p}/",
                          "telnet://127.0.0.1:{p}/", "tftp://127.0.0.1:{p}/x"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
        expect_refusal(with_port(urls[i]), &open_opts, "unsupported URL scheme");
    expect_refusal("data:image/png;base64,iVBORw0KGgo=", &open_opts, "remote image: ");
    assert_no_connection_since(before);
}

static void refuse_malformed_urls(void **state)
{
    (void)state;
    int before = connections();
    const char *urls[] = {"",
                          "http://",
                          "not a url",
                          "127.0.0.1/ok",
                          "//127.0.0.1/ok",
                          "http://a b/",
                          "http://127.0.0.1:99999/ok",
                          "http://127.0.0.1:0/ok",
                          "http://[::1/",
                          "http://[::1]x/",
                          "http://exa\tmple.com/",
                          "http://example.com/\r\nX-Injected: 1"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
        expect_refusal(urls[i], &open_opts, "remote image: malformed URL");
    char *long_url = malloc(ISD_FETCH_URL_MAX + 100);
    assert_non_null(long_url);
    int n = snprintf(long_url, ISD_FETCH_URL_MAX + 100, "http://127.0.0.1:%d/ok?", srv.port);
    memset(long_url + n, 'a', ISD_FETCH_URL_MAX + 50 - (size_t)n);
    long_url[ISD_FETCH_URL_MAX + 50] = '\0';
    expect_refusal(long_url, &open_opts, "URL longer than 8192 bytes");
    free(long_url);
    assert_no_connection_since(before);
}

static void refuse_credentials_zone_and_non_ascii(void **state)
{
    (void)state;
    int before = connections();
    expect_refusal(url("http://user@127.0.0.1:%d/ok", srv.port), &open_opts, "credentials");
    expect_refusal(url("http://user:pw@127.0.0.1:%d/ok", srv.port), &open_opts, "credentials");
    expect_refusal(url("http://:pw@127.0.0.1:%d/ok", srv.port), &open_opts, "credentials");
    expect_refusal(url("http://@127.0.0.1:%d/ok", srv.port), &open_opts, "credentials");
    expect_refusal(url("http://example.com@127.0.0.1:%d/ok", srv.port), &open_opts, "credentials");
    expect_refusal(url("http://127.0.0.1:%d@example.com/ok", srv.port), &open_opts, "credentials");
    expect_refusal(url("http://[fe80::1%%25lo]:%d/ok", srv.port), &open_opts, "zone");
    /* NFKC would turn these into 127.0.0.1 / localhost: refused as non-ASCII instead */
    expect_refusal(url("http://\xe2\x91\xa0\xe2\x91\xa1\xe2\x91\xa6.0.0.1:%d/ok", srv.port),
                   &open_opts, "ASCII");
    expect_refusal(url("http://\xef\xbc\xac\xef\xbc\xaf\xef\xbc\xa3\xef\xbc\xa1\xef\xbc\xac"
                       "host:%d/ok",
                       srv.port),
                   &open_opts, "ASCII");
    expect_refusal("http://b\xc3\xbc"
                   "cher.example/",
                   &open_opts, "ASCII");
    assert_no_connection_since(before);
}

static void refuse_unresolvable_host(void **state)
{
    (void)state;
    struct isd_fetch_options o = open_opts;
    o.timeout_ms = 3000;
    int before = connections();
    expect_refusal("http://no-such-host.invalid/x.png", &o,
                   "could not resolve host no-such-host.invalid");
    expect_refusal(url("http://127.0.0.1:%d/r?http://gone.invalid/x.png", srv.port), &o,
                   "could not resolve host gone.invalid");
    assert_no_connection_since(before + 1);
}

static void refuse_closed_port(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd); /* nothing listens there now */
    expect_refusal(url("http://127.0.0.1:%d/ok", ntohs(a.sin_port)), &open_opts,
                   "could not connect to 127.0.0.1");
}

/* Deadlines shorter than a name lookup: the caller gives up while the resolver thread still
 * runs, and whichever finishes last frees the job (ASan/TSan watch this race). Any outcome is
 * fine except a crash, a leak, a race or a wrong error. */
static void tiny_deadlines_are_safe(void **state)
{
    (void)state;
    struct isd_fetch_options o = open_opts;
    o.timeout_ms = 1;
    int gave_up_resolving = 0, timed_out = 0, fetched = 0;
    for (int i = 0; i < 200; i++) {
        struct isd_buf b;
        isd_buf_init(&b, 1 << 20);
        struct isd_error err = {0};
        int rc = isd_fetch_url(url("http://localhost:%d/ok", srv.port), &o, &b, NULL, 0, &err);
        if (rc == 0) {
            fetched++;
        } else {
            assert_int_equal(rc, -ISD_E_INVALID_VALUE);
            if (strstr(err.message, "could not resolve host localhost within 1 ms"))
                gave_up_resolving++;
            else if (strstr(err.message, "timed out after 1 ms fetching from localhost"))
                timed_out++;
            else
                fail_msg("unexpected: %s", err.message);
        }
        isd_buf_release(&b);
    }
    print_message("# resolver gave up %d, transfer timed out %d, fetched %d\n", gave_up_resolving,
                  timed_out, fetched);
}

/* A proxy in the server's environment must not carry client-given URLs: with http_proxy
 * pointing at the test server, a fetch of a closed port must still fail to connect. */
static void proxy_environment_ignored(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    const char *proxy = url("http://127.0.0.1:%d", srv.port);
    const char *vars[] = {"http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        assert_int_equal(setenv(vars[i], proxy, 1), 0);
    int before = connections();
    expect_refusal(url("http://127.0.0.1:%d/ok", ntohs(a.sin_port)), &open_opts,
                   "could not connect to 127.0.0.1");
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    assert_no_connection_since(before);
}

static void bad_arguments(void **state)
{
    (void)state;
    struct isd_buf b;
    isd_buf_init(&b, 100);
    struct isd_error err = {0};
    struct isd_fetch_options o = open_opts;
    assert_int_equal(isd_fetch_url(NULL, &o, &b, NULL, 0, &err), -ISD_E_INTERNAL);
    o.timeout_ms = 0;
    assert_int_equal(isd_fetch_url("http://127.0.0.1/", &o, &b, NULL, 0, &err), -ISD_E_INTERNAL);
    o.timeout_ms = -5;
    assert_int_equal(isd_fetch_url("http://127.0.0.1/", &o, &b, NULL, 0, &err), -ISD_E_INTERNAL);
    o = open_opts;
    o.timeout_ms = LONG_MAX; /* cut to a day, no overflow */
    expect_ok(url("http://127.0.0.1:%d/ok", srv.port), &o);
    o.max_redirects = -1;
    assert_int_equal(isd_fetch_url("http://127.0.0.1/", &o, &b, NULL, 0, &err), -ISD_E_INTERNAL);
    assert_int_equal(isd_fetch_global_init(&err), 0); /* again: harmless */
    isd_buf_release(&b);
}

/* ---- threads ---- */

static void *fetch_worker(void *arg)
{
    int *fails = arg;
    for (int i = 0; i < 5; i++) {
        struct isd_buf b;
        isd_buf_init(&b, 1 << 20);
        struct isd_error err = {0};
        char ct[64];
        char u[128];
        snprintf(u, sizeof u, "http://localhost:%d/r?/ok", srv.port);
        if (isd_fetch_url(u, &open_opts, &b, ct, sizeof ct, &err) != 0 || b.len != BODY_LEN ||
            memcmp(b.data, srv.body, BODY_LEN) != 0)
            (*fails)++;
        isd_buf_release(&b);
    }
    return NULL;
}

static void fetch_from_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    int fails[4] = {0};
    int before = connections();
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fetch_worker, &fails[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(fails[i], 0);
    }
    assert_int_equal(connections(), before + 4 * 5 * 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(address_table),
        cmocka_unit_test(address_other_families),
        cmocka_unit_test(fetch_ok_appends),
        cmocka_unit_test(fetch_without_content_type),
        cmocka_unit_test(fetch_size_cap_boundaries),
        cmocka_unit_test(fetch_buffer_ceiling_applies),
        cmocka_unit_test(fetch_huge_body_cut_early),
        cmocka_unit_test(fetch_content_length_refused_before_body),
        cmocka_unit_test(fetch_http_errors),
        cmocka_unit_test(fetch_slow_server_times_out),
        cmocka_unit_test(fetch_redirects_followed),
        cmocka_unit_test(fetch_redirect_limits),
        cmocka_unit_test(fetch_redirect_to_other_schemes_refused),
        cmocka_unit_test(fetch_redirect_to_private_refused),
        cmocka_unit_test(fetch_socket_recheck),
        cmocka_unit_test(refuse_loopback_in_every_form),
        cmocka_unit_test(loopback_forms_mean_loopback),
        cmocka_unit_test(refuse_unsupported_schemes),
        cmocka_unit_test(refuse_malformed_urls),
        cmocka_unit_test(refuse_credentials_zone_and_non_ascii),
        cmocka_unit_test(refuse_unresolvable_host),
        cmocka_unit_test(refuse_closed_port),
        cmocka_unit_test(tiny_deadlines_are_safe),
        cmocka_unit_test(proxy_environment_ignored),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(fetch_from_threads),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
