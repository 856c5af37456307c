/*
 * log: structured event lines on stderr, one write(2) per line.
 *
 * Each line is an event with typed fields, rendered as logfmt
 *     ts=2026-11-21T09:00:00.123Z level=info event=listening addr=127.0.0.1:8080
 * or as one JSON object per line, chosen once at start with isd_log_configure().
 * Build a line with begin / fields / end; fields are escaped, never interpreted.
 * ISD_LOG_ON(level) checks the level before any formatting work is done:
 *
 *     if (ISD_LOG_ON(ISD_LOG_INFO)) {
 *         struct isd_logline l;
 *         isd_log_begin(&l, ISD_LOG_INFO, "listening");
 *         isd_log_str(&l, "addr", addr);
 *         isd_log_end(&l);
 *     }
 * or for the common one-string case: isd_log_event(ISD_LOG_WARN, "no_keys", "msg", "...");
 *
 * Never log API keys, prompts or base64 payloads: callers pass only safe facts.
 * Threading: lines from several threads never interleave (a line is one write).
 * isd_log_configure() is called before threads start.
 */
#ifndef ISD_LOG_H
#define ISD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum isd_log_level { ISD_LOG_DEBUG = 0, ISD_LOG_INFO, ISD_LOG_WARN, ISD_LOG_ERROR, ISD_LOG_OFF };
enum isd_log_format { ISD_LOG_LOGFMT = 0, ISD_LOG_JSON };

extern enum isd_log_level isd_log_min_level;
#define ISD_LOG_ON(level) ((level) >= isd_log_min_level)

void isd_log_configure(enum isd_log_level level, enum isd_log_format format, int fd);
/* Parses "debug|info|warn|error|off"; returns 0 or -1. */
int isd_log_parse_level(const char *s, enum isd_log_level *out);
int isd_log_parse_format(const char *s, enum isd_log_format *out);

#define ISD_LOGLINE_MAX 2048

struct isd_logline {
    char text[ISD_LOGLINE_MAX]; /* the line being built */
    size_t len;                 /* bytes used */
    bool truncated;             /* a field did not fit */
};

void isd_log_begin(struct isd_logline *l, enum isd_log_level level, const char *event);
void isd_log_str(struct isd_logline *l, const char *key, const char *value);
void isd_log_strn(struct isd_logline *l, const char *key, const char *value, size_t n);
void isd_log_int(struct isd_logline *l, const char *key, int64_t value);
void isd_log_double(struct isd_logline *l, const char *key, double value);
void isd_log_end(struct isd_logline *l);

/* One event with up to one string field (key may be NULL). */
void isd_log_event(enum isd_log_level level, const char *event, const char *key, const char *value);

#endif
