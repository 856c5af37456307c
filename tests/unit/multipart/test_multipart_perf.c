/* multipart measurements: parser throughput on a large random body in 64 KiB chunks, and the
 * peak resident memory of the form collector storing one 50 MiB file part. The numbers are
 * printed as "# ..." lines; the limits asserted are loose (a shared machine) and apply only to
 * optimised builds without sanitizers (ASan's realloc always copies and adds shadow memory). */
#include "support/test.h"

#include "mp_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif
#ifdef __OPTIMIZE__
#define MEASURED (!SANITIZED)
#else
#define MEASURED 0
#endif

#define CHUNK (64 * 1024)
#define BD    "openai-k2x9q8w7e1h"
#define CT    "multipart/form-data; boundary=" BD
#define HEAD                                                                                       \
    "--" BD "\r\nContent-Disposition: form-data; name=\"image[]\"; filename=\"big.png\"\r\n"       \
    "Content-Type: image/png\r\n\r\n"
#define TAIL "\r\n--" BD "--\r\n"
#define MIB  (1024.0 * 1024.0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill_random(char *p, size_t n, uint64_t seed)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t r = mp_rand(&seed);
        memcpy(p + i, &r, 4);
    }
    for (; i < n; i++)
        p[i] = (char)(mp_rand(&seed) >> 8);
}

struct counter {
    size_t bytes;
    int parts;
};

static int count_begin(void *ctx, const struct isd_mp_part *part)
{
    (void)part;
    ((struct counter *)ctx)->parts++;
    return 0;
}

static int count_data(void *ctx, const void *data, size_t n)
{
    (void)data;
    ((struct counter *)ctx)->bytes += n;
    return 0;
}

/* Parses HEAD + total bytes from src + TAIL in 64 KiB chunks (src holds `span` bytes, repeated
 * when shorter than total); returns MB/s of the data part. */
static double parse_throughput(const char *src, size_t span, size_t total, struct counter *c)
{
    struct isd_mp_parser *p = malloc(sizeof *p);
    struct isd_error err = {0};
    const struct isd_mp_callbacks cb = {count_begin, count_data, NULL};
    memset(c, 0, sizeof *c);
    assert_int_equal(isd_mp_parser_init(p, CT, &cb, c, &err), 0);
    assert_int_equal(isd_mp_parser_feed(p, HEAD, strlen(HEAD), &err), 0);
    double t0 = now();
    for (size_t off = 0; off < total; off += CHUNK)
        if (isd_mp_parser_feed(p, src + off % span, CHUNK, &err) < 0)
            fail_msg("%s", err.message);
    double t1 = now();
    assert_int_equal(isd_mp_parser_feed(p, TAIL, strlen(TAIL), &err), 0);
    assert_int_equal(isd_mp_parser_finish(p, &err), 0);
    isd_mp_parser_release(p);
    free(p);
    return (double)total / 1e6 / (t1 - t0);
}

/* Fills n bytes with a repeated pattern. */
static void fill_pattern(char *p, size_t n, const char *pat)
{
    size_t k = strlen(pat);
    for (size_t i = 0; i < n; i++)
        p[i] = pat[i % k];
}

static void parser_throughput(void **state)
{
    (void)state;
    size_t total = MEASURED ? (size_t)200 << 20 : (size_t)16 << 20;
    const char *note = MEASURED ? "" : " (unoptimised or sanitized build)";
    size_t block = 1 << 20; /* a multiple of CHUNK */
    char *buf = malloc(total);
    struct counter c;

    /* random data, a 1 MiB block repeated: the chunk is hot in cache, as a received one is */
    fill_random(buf, block, 42);
    double hot = parse_throughput(buf, block, total, &c);
    assert_int_equal(c.parts, 1);
    assert_int_equal(c.bytes, total);
    /* random data, all distinct: memory bandwidth included */
    fill_random(buf, total, 43);
    double cold = parse_throughput(buf, total, total, &c);
    assert_int_equal(c.bytes, total);
    /* hostile data: CRs only, CRLFs only, or delimiters missing their last byte */
    fill_pattern(buf, block, "\r");
    double cr = parse_throughput(buf, block, total / 4, &c);
    assert_int_equal(c.bytes, total / 4);
    fill_pattern(buf, block, "\r\n");
    double crlf = parse_throughput(buf, block, total / 4, &c);
    assert_int_equal(c.bytes, total / 4);
    fill_pattern(buf, block + CHUNK, "\r\n--openai-k2x9q8w7e1"); /* never a whole one */
    double near = parse_throughput(buf, block - block % 21, total / 4, &c);
    assert_int_equal(c.bytes, total / 4);
    free(buf);
    print_message("# multipart parse, %zu MiB of random data in 64 KiB chunks: %.0f MB/s hot "
                  "(1 MiB block repeated), %.0f MB/s cold (distinct bytes)%s\n",
                  total >> 20, hot, cold, note);
    print_message("# multipart parse, hostile data: %.0f MB/s all CR, %.0f MB/s all CRLF, "
                  "%.0f MB/s delimiters without their last byte%s\n",
                  cr, crlf, near, note);
    if (MEASURED)
        assert_true(hot > 300.0 && cold > 300.0 && cr > 300.0 && crlf > 300.0 && near > 300.0);
}

/* Kibibytes of a /proc/self/status line ("VmRSS:", "VmHWM:"); -1 when unreadable. */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, k) == 0)
            v = strtol(line + k, NULL, 10);
    fclose(f);
    return v;
}

struct rss_result {
    long before_kib; /* VmRSS before the upload */
    long peak_kib;   /* VmHWM after it */
    double mbs;      /* collector throughput, MB/s */
    int ok;          /* the part was stored whole */
};

/* In a child process (a fresh high-water mark): one part of `size` bytes stored by the form
 * collector with a per-file ceiling of `ceiling`, fed in 64 KiB chunks. `dirty` first raises
 * glibc's dynamic mmap threshold (free of a 24 MiB block), as a long-running server would. */
static struct rss_result measure_rss(size_t size, size_t ceiling, bool dirty)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct rss_result r = {0};
        if (dirty) {
            char *x = malloc(24 << 20);
            memset(x, 1, 24 << 20);
            free(x);
        }
        char *chunk = malloc(CHUNK);
        fill_random(chunk, CHUNK, 7);
        struct isd_form form;
        const struct isd_form_limits lim = {16, ceiling, 1 << 16, (size_t)800 << 20};
        isd_form_init(&form, &lim);
        struct isd_mp_parser *p = malloc(sizeof *p);
        struct isd_error err = {0};
        r.before_kib = status_kib("VmRSS:");
        double t0 = now();
        int rc = isd_mp_parser_init(p, CT, &isd_form_callbacks, &form, &err);
        if (rc == 0)
            rc = isd_mp_parser_feed(p, HEAD, strlen(HEAD), &err);
        for (size_t off = 0; rc == 0 && off < size; off += CHUNK)
            rc = isd_mp_parser_feed(p, chunk, CHUNK, &err);
        if (rc == 0)
            rc = isd_mp_parser_feed(p, TAIL, strlen(TAIL), &err);
        if (rc == 0)
            rc = isd_mp_parser_finish(p, &err);
        double t1 = now();
        r.peak_kib = status_kib("VmHWM:");
        r.mbs = (double)size / 1e6 / (t1 - t0);
        r.ok = rc == 0 && form.n_fields == 1 && form.fields[0].value.len == size &&
               !form.fields[0].overflow &&
               memcmp(form.fields[0].value.data + size - CHUNK, chunk, CHUNK) == 0;
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    struct rss_result r = {0};
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_int_equal(got, (ssize_t)sizeof r);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return r;
}

static void peak_rss_one_50mib_part(void **state)
{
    (void)state;
    const size_t size = (size_t)50 << 20;
    static const struct {
        size_t ceiling;
        bool dirty;
        const char *what;
    } runs[] = {
        {(size_t)50 << 20, false, "ceiling 50 MiB"},
        {(size_t)100 << 20, false, "ceiling 100 MiB"},
        {(size_t)50 << 20, true, "ceiling 50 MiB, mmap threshold raised"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        struct rss_result r = measure_rss(size, runs[i].ceiling, runs[i].dirty);
        assert_true(r.ok);
        double ratio = (double)(r.peak_kib - r.before_kib) * 1024.0 / (double)size;
        print_message("# form collector, one 50 MiB part in 64 KiB chunks (%s): peak RSS "
                      "%.1f MiB over the %.1f MiB before = %.3f x the part; %.0f MB/s%s\n",
                      runs[i].what, (double)(r.peak_kib - r.before_kib) / 1024.0,
                      (double)r.before_kib / 1024.0, ratio, r.mbs,
                      MEASURED ? "" : " (unoptimised or sanitized build: not checked)");
        if (MEASURED)
            assert_true(ratio <= 1.1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parser_throughput),
        cmocka_unit_test(peak_rss_one_50mib_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
