#include "log/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum isd_log_level isd_log_min_level = ISD_LOG_INFO;
static enum isd_log_format log_format = ISD_LOG_LOGFMT;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void isd_log_configure(enum isd_log_level level, enum isd_log_format format, int fd)
{
    isd_log_min_level = level;
    log_format = format;
    log_fd = fd;
}

int isd_log_parse_level(const char *s, enum isd_log_level *out)
{
    for (int i = 0; i <= ISD_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum isd_log_level)i;
            return 0;
        }
    }
    return -1;
}

int isd_log_parse_format(const char *s, enum isd_log_format *out)
{
    if (strcmp(s, "logfmt") == 0)
        *out = ISD_LOG_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *out = ISD_LOG_JSON;
    else
        return -1;
    return 0;
}

static void put(struct isd_logline *l, const char *s, size_t n)
{
    /* keep 2 bytes for the closing "}\n" */
    if (l->len + n + 2 > sizeof l->text) {
        l->truncated = true;
        return;
    }
    memcpy(l->text + l->len, s, n);
    l->len += n;
}

static void putc_(struct isd_logline *l, char c)
{
    put(l, &c, 1);
}

static bool logfmt_needs_quotes(const char *v, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

/* Escapes a value for a JSON string or a quoted logfmt value (the same rules suffice). */
static void put_escaped(struct isd_logline *l, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char tmp[8];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put(l, tmp, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            put(l, tmp, 6);
        } else {
            putc_(l, (char)c);
        }
    }
}

static void put_key(struct isd_logline *l, const char *key)
{
    if (log_format == ISD_LOG_JSON) {
        put(l, ",\"", 2);
        put_escaped(l, key, strlen(key));
        put(l, "\":", 2);
    } else {
        putc_(l, ' ');
        put(l, key, strlen(key));
        putc_(l, '=');
    }
}

void isd_log_strn(struct isd_logline *l, const char *key, const char *value, size_t n)
{
    put_key(l, key);
    if (log_format == ISD_LOG_JSON || logfmt_needs_quotes(value, n)) {
        putc_(l, '"');
        put_escaped(l, value, n);
        putc_(l, '"');
    } else {
        put(l, value, n);
    }
}

void isd_log_str(struct isd_logline *l, const char *key, const char *value)
{
    if (!value) {
        put_key(l, key);
        if (log_format == ISD_LOG_JSON)
            put(l, "null", 4);
        return;
    }
    isd_log_strn(l, key, value, strlen(value));
}

void isd_log_int(struct isd_logline *l, const char *key, int64_t value)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)value);
    put_key(l, key);
    put(l, tmp, (size_t)n);
}

void isd_log_double(struct isd_logline *l, const char *key, double value)
{
    char tmp[48];
    int n = snprintf(tmp, sizeof tmp, "%.3f", value);
    put_key(l, key);
    put(l, tmp, (size_t)n);
}

void isd_log_begin(struct isd_logline *l, enum isd_log_level level, const char *event)
{
    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);

    l->len = 0;
    l->truncated = false;
    if (log_format == ISD_LOG_JSON) {
        put(l, "{\"ts\":\"", 7);
        put(l, stamp, strlen(stamp));
        putc_(l, '"');
    } else {
        put(l, "ts=", 3);
        put(l, stamp, strlen(stamp));
    }
    isd_log_str(l, "level", level_names[level < ISD_LOG_OFF ? level : ISD_LOG_ERROR]);
    isd_log_str(l, "event", event);
}

void isd_log_end(struct isd_logline *l)
{
    if (l->truncated) {
        /* put() reserved room for the closers; mark the cut in logfmt only */
        if (log_format == ISD_LOG_LOGFMT && l->len + 12 <= sizeof l->text - 2)
            put(l, " truncated=1", 12);
    }
    if (log_format == ISD_LOG_JSON)
        l->text[l->len++] = '}';
    l->text[l->len++] = '\n';
    const char *p = l->text;
    size_t left = l->len;
    while (left > 0) {
        ssize_t w = write(log_fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
}

void isd_log_event(enum isd_log_level level, const char *event, const char *key, const char *value)
{
    if (!ISD_LOG_ON(level))
        return;
    struct isd_logline l;
    isd_log_begin(&l, level, event);
    if (key)
        isd_log_str(&l, key, value);
    isd_log_end(&l);
}
