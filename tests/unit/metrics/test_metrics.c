#include "support/test.h"

#include "buf/buf.h"
#include "err/err.h"
#include "metrics/metrics.h"
#include "text/text.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define L(...) ((const char *[]){__VA_ARGS__})

/* The exposition as one NUL-terminated string; the caller frees it. */
static char *expose(struct isd_metrics *m)
{
    struct isd_buf b;
    isd_buf_init(&b, 64u << 20);
    assert_int_equal(isd_metrics_write(m, &b), 0);
    size_t n;
    char *text = isd_buf_detach(&b, &n);
    if (!text)
        text = calloc(1, 1);
    assert_non_null(text);
    assert_true(isd_utf8_count(text, n, NULL));
    return text;
}

/* ---- a strict parser for the text format as we write it ---- */

#define P_MAX_LABELS (ISD_METRICS_MAX_LABELS + 1) /* + le */

struct p_sample {
    char name[160];
    int n_labels;
    char label[P_MAX_LABELS][64];
    char value[P_MAX_LABELS][ISD_METRICS_MAX_VALUE + 1];
    double v;
};

struct p_family {
    char name[128];
    char type[16];
    bool has_help;
    char help[2048];
    int first, n; /* samples [first, first + n) */
};

struct p_text {
    struct p_family fam[256];
    int n_fam;
    struct p_sample *s;
    int n_s, cap_s;
};

static bool is_name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return true;
    return !first && c >= '0' && c <= '9';
}

/* Reads a name at *p into out; fails the test when empty or too long. */
static void p_name(const char **p, char *out, size_t cap, bool colon, int line)
{
    size_t n = 0;
    while (is_name_char((*p)[n], n == 0, colon))
        n++;
    if (n == 0 || n >= cap)
        fail_msg("line %d: bad name at '%.20s'", line, *p);
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
}

/* Accepts NaN, +Inf, -Inf or -?d+(.d+)?(e[+-]dd+)? and nothing else. */
static double p_value(const char *s, int line)
{
    if (strcmp(s, "NaN") == 0)
        return NAN;
    if (strcmp(s, "+Inf") == 0)
        return INFINITY;
    if (strcmp(s, "-Inf") == 0)
        return -INFINITY;
    const char *p = s;
    if (*p == '-')
        p++;
    bool ok = *p >= '0' && *p <= '9';
    while (*p >= '0' && *p <= '9')
        p++;
    if (ok && *p == '.') {
        p++;
        ok = *p >= '0' && *p <= '9';
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (ok && *p == 'e') {
        p++;
        ok = (*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9';
        p += 2;
        while (ok && *p >= '0' && *p <= '9')
            p++;
    }
    if (!ok || *p)
        fail_msg("line %d: bad value '%s'", line, s);
    return strtod(s, NULL);
}

static struct p_sample *p_new_sample(struct p_text *t)
{
    if (t->n_s == t->cap_s) {
        t->cap_s = t->cap_s ? 2 * t->cap_s : 256;
        t->s = realloc(t->s, (size_t)t->cap_s * sizeof *t->s);
        assert_non_null(t->s);
    }
    struct p_sample *s = &t->s[t->n_s++];
    memset(s, 0, sizeof *s);
    return s;
}

static void p_sample_line(struct p_text *t, const char *p, int line)
{
    if (t->n_fam == 0)
        fail_msg("line %d: sample before any # TYPE", line);
    struct p_family *f = &t->fam[t->n_fam - 1];
    struct p_sample *s = p_new_sample(t);
    f->n++;
    p_name(&p, s->name, sizeof s->name, true, line);
    if (*p == '{') {
        p++;
        for (;;) {
            if (s->n_labels == P_MAX_LABELS)
                fail_msg("line %d: too many labels", line);
            p_name(&p, s->label[s->n_labels], sizeof s->label[0], false, line);
            for (int i = 0; i < s->n_labels; i++)
                if (strcmp(s->label[i], s->label[s->n_labels]) == 0)
                    fail_msg("line %d: label repeated", line);
            if (p[0] != '=' || p[1] != '"')
                fail_msg("line %d: expected =\"", line);
            p += 2;
            char *v = s->value[s->n_labels];
            size_t n = 0;
            for (; *p != '"'; p++) {
                char c = *p;
                if (c == '\0' || c == '\n')
                    fail_msg("line %d: unterminated label value", line);
                if (c == '\\') {
                    p++;
                    c = *p == 'n' ? '\n' : *p == '\\' ? '\\' : *p == '"' ? '"' : 0;
                    if (!c)
                        fail_msg("line %d: bad escape", line);
                }
                if (n >= ISD_METRICS_MAX_VALUE)
                    fail_msg("line %d: label value over %d bytes", line, ISD_METRICS_MAX_VALUE);
                v[n++] = c;
            }
            v[n] = '\0';
            p++;
            s->n_labels++;
            if (*p == '}')
                break;
            if (*p != ',')
                fail_msg("line %d: expected , or }", line);
            p++;
        }
        p++;
    }
    if (*p != ' ')
        fail_msg("line %d: expected one space before the value", line);
    s->v = p_value(p + 1, line);
}

static void p_help(struct p_text *t, const char *p, int line, char *help, bool *has_help)
{
    (void)t;
    size_t n = 0;
    for (; *p; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            c = *p == 'n' ? '\n' : *p == '\\' ? '\\' : 0;
            if (!c)
                fail_msg("line %d: bad escape in help", line);
        }
        if (n + 1 >= 2048)
            fail_msg("line %d: help too long for the test", line);
        help[n++] = c;
    }
    help[n] = '\0';
    *has_help = true;
}

/* Parses the whole exposition, failing the test on any deviation from the format. */
static void p_parse(struct p_text *t, const char *text)
{
    memset(t, 0, sizeof *t);
    size_t len = strlen(text);
    assert_true(isd_utf8_count(text, len, NULL));
    if (len)
        assert_int_equal(text[len - 1], '\n');
    char *copy = strdup(text);
    assert_non_null(copy);
    char pending_help[2048];
    char pending_name[128] = "";
    bool has_help = false;
    int line = 0;
    for (char *p = copy, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        *nl = '\0';
        line++;
        if (strncmp(p, "# HELP ", 7) == 0) {
            if (has_help)
                fail_msg("line %d: two HELP lines", line);
            const char *q = p + 7;
            p_name(&q, pending_name, sizeof pending_name, true, line);
            if (*q != ' ')
                fail_msg("line %d: expected a space after the name", line);
            p_help(t, q + 1, line, pending_help, &has_help);
        } else if (strncmp(p, "# TYPE ", 7) == 0) {
            assert_true(t->n_fam < 256);
            struct p_family *f = &t->fam[t->n_fam];
            memset(f, 0, sizeof *f);
            const char *q = p + 7;
            p_name(&q, f->name, sizeof f->name, true, line);
            if (*q != ' ')
                fail_msg("line %d: expected a space after the name", line);
            q++;
            if (strcmp(q, "counter") && strcmp(q, "gauge") && strcmp(q, "histogram"))
                fail_msg("line %d: bad type '%s'", line, q);
            snprintf(f->type, sizeof f->type, "%s", q);
            if (has_help && strcmp(pending_name, f->name) != 0)
                fail_msg("line %d: HELP for another name", line);
            for (int i = 0; i < t->n_fam; i++)
                if (strcmp(t->fam[i].name, f->name) == 0)
                    fail_msg("line %d: family %s twice", line, f->name);
            f->has_help = has_help;
            if (has_help)
                memcpy(f->help, pending_help, sizeof f->help);
            has_help = false;
            f->first = t->n_s;
            t->n_fam++;
        } else if (p[0] == '#') {
            fail_msg("line %d: unexpected comment", line);
        } else {
            if (has_help)
                fail_msg("line %d: HELP not followed by TYPE", line);
            p_sample_line(t, p, line);
        }
    }
    if (has_help)
        fail_msg("HELP at the end");
    free(copy);
}

static void p_free(struct p_text *t)
{
    free(t->s);
}

/* Same label names and values in the same order, ignoring `le` when skip_le. */
static bool same_labels(const struct p_sample *a, const struct p_sample *b, bool skip_le)
{
    int na = a->n_labels, nb = b->n_labels;
    if (skip_le && na > 0 && strcmp(a->label[na - 1], "le") == 0)
        na--;
    if (skip_le && nb > 0 && strcmp(b->label[nb - 1], "le") == 0)
        nb--;
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (strcmp(a->label[i], b->label[i]) || strcmp(a->value[i], b->value[i]))
            return false;
    return true;
}

static bool has_suffix(const char *name, const char *base, const char *suffix)
{
    size_t n = strlen(base);
    return strncmp(name, base, n) == 0 && strcmp(name + n, suffix) == 0;
}

/* Checks the structure of every family: names, no duplicate series, histograms complete. */
static void p_check(const struct p_text *t)
{
    for (int i = 0; i < t->n_fam; i++) {
        const struct p_family *f = &t->fam[i];
        const struct p_sample *s = t->s + f->first;
        if (strcmp(f->type, "histogram") != 0) {
            for (int j = 0; j < f->n; j++) {
                assert_string_equal(s[j].name, f->name);
                if (strcmp(f->type, "counter") == 0)
                    assert_true(s[j].v >= 0 || isnan(s[j].v));
                for (int k = 0; k < j; k++)
                    assert_false(same_labels(&s[j], &s[k], false));
            }
            continue;
        }
        int j = 0;
        while (j < f->n) {
            const struct p_sample *first = &s[j];
            double prev_le = -INFINITY, prev_count = 0;
            bool first_bucket = true;
            while (j < f->n && has_suffix(s[j].name, f->name, "_bucket")) {
                const struct p_sample *b = &s[j];
                assert_true(b->n_labels > 0);
                assert_string_equal(b->label[b->n_labels - 1], "le");
                assert_true(same_labels(b, first, true));
                double le = p_value(b->value[b->n_labels - 1], 0);
                assert_true(first_bucket || le > prev_le);
                assert_true(b->v >= prev_count && b->v == floor(b->v));
                prev_le = le;
                prev_count = b->v;
                first_bucket = false;
                j++;
            }
            assert_true(prev_le == INFINITY);
            assert_true(j + 1 < f->n);
            assert_true(has_suffix(s[j].name, f->name, "_sum"));
            assert_true(same_labels(&s[j], first, true));
            assert_true(has_suffix(s[j + 1].name, f->name, "_count"));
            assert_true(same_labels(&s[j + 1], first, true));
            assert_true(s[j + 1].v == prev_count);
            for (int k = 0; k < j; k++)
                if (has_suffix(s[k].name, f->name, "_sum"))
                    assert_false(same_labels(&s[k], &s[j], true));
            j += 2;
        }
    }
}

static const struct p_family *p_family_named(const struct p_text *t, const char *name)
{
    for (int i = 0; i < t->n_fam; i++)
        if (strcmp(t->fam[i].name, name) == 0)
            return &t->fam[i];
    fail_msg("family %s missing", name);
    return NULL;
}

/* The sample of family f named name+suffix with these label values (and le when not NULL). */
static const struct p_sample *p_find(const struct p_text *t, const struct p_family *f,
                                     const char *suffix, int n, const char *const *values,
                                     const char *le)
{
    for (int i = f->first; i < f->first + f->n; i++) {
        const struct p_sample *s = &t->s[i];
        if (!has_suffix(s->name, f->name, suffix) || s->n_labels != n + (le != NULL))
            continue;
        bool eq = true;
        for (int k = 0; k < n && eq; k++)
            eq = strcmp(s->value[k], values[k]) == 0;
        if (eq && le)
            eq = strcmp(s->value[n], le) == 0;
        if (eq)
            return s;
    }
    return NULL;
}

/* The _bucket sample of family f with these label values whose le reads back as `le`. */
static const struct p_sample *p_find_bucket(const struct p_text *t, const struct p_family *f, int n,
                                            const char *const *values, double le)
{
    for (int i = f->first; i < f->first + f->n; i++) {
        const struct p_sample *s = &t->s[i];
        if (!has_suffix(s->name, f->name, "_bucket") || s->n_labels != n + 1)
            continue;
        bool eq = p_value(s->value[n], 0) == le;
        for (int k = 0; k < n && eq; k++)
            eq = strcmp(s->value[k], values[k]) == 0;
        if (eq)
            return s;
    }
    return NULL;
}

/* ---- exact exposition of a small registry ---- */

static double read_double(void *ctx)
{
    return *(const double *)ctx;
}

static void exposition_exact(void **state)
{
    (void)state;
    struct isd_metrics *m = isd_metrics_new();
    assert_non_null(m);
    struct isd_metric *req =
        isd_metrics_counter(m, "imagesd_requests_total", "Requests by endpoint, model and status.",
                            3, L("endpoint", "model", "status"));
    struct isd_metric *temp = isd_metrics_gauge(
        m, "imagesd_temperature", "Help with \\ backslash\nand \"newline\".", 0, NULL);
    double depth = 7;
    struct isd_metric *qd =
        isd_metrics_gauge_fn(m, "imagesd_queue_depth", "Jobs waiting.", read_double, &depth);
    struct isd_metric *lat =
        isd_metrics_histogram(m, "imagesd_request_seconds", "Total latency.", 1, L("endpoint"),
                              (const double[]){0.005, 0.25, 1, 2.5}, 4);
    struct isd_metric *plain =
        isd_metrics_histogram(m, "imagesd_encode_seconds", NULL, 0, NULL, (const double[]){0.5}, 1);
    struct isd_metric *idle = isd_metrics_gauge(m, "imagesd_idle", "", 1, L("model"));
    assert_non_null(req);
    assert_non_null(temp);
    assert_non_null(qd);
    assert_non_null(lat);
    assert_non_null(plain);
    assert_non_null(idle);

    isd_metric_add(req, 1, L("generations", "gpt-image-1", "200"));
    isd_metric_add(req, 2, L("generations", "gpt-image-1", "200"));
    isd_metric_add(req, 1, L("edits", "a\"b\\c\nd", "400"));
    isd_metric_add(req, -5, L("generations", "gpt-image-1", "200"));
    isd_metric_add(req, 0.5, L("variations", "m", "500"));
    isd_metric_set(temp, -3.25, NULL);
    isd_metric_observe(lat, 0.005, L("generations"));
    isd_metric_observe(lat, 0.1, L("generations"));
    isd_metric_observe(lat, 3, L("generations"));
    isd_metric_observe(lat, 1, L("edits"));
    isd_metric_observe(plain, 0.75, NULL);

    char *text = expose(m);
    const char *want =
        "# HELP imagesd_requests_total Requests by endpoint, model and status.\n"
        "# TYPE imagesd_requests_total counter\n"
        "imagesd_requests_total{endpoint=\"generations\",model=\"gpt-image-1\",status=\"200\"} 3\n"
        "imagesd_requests_total{endpoint=\"edits\",model=\"a\\\"b\\\\c\\nd\",status=\"400\"} 1\n"
        "imagesd_requests_total{endpoint=\"variations\",model=\"m\",status=\"500\"} 0.5\n"
        "# HELP imagesd_temperature Help with \\\\ backslash\\nand \"newline\".\n"
        "# TYPE imagesd_temperature gauge\n"
        "imagesd_temperature -3.25\n"
        "# HELP imagesd_queue_depth Jobs waiting.\n"
        "# TYPE imagesd_queue_depth gauge\n"
        "imagesd_queue_depth 7\n"
        "# HELP imagesd_request_seconds Total latency.\n"
        "# TYPE imagesd_request_seconds histogram\n"
        "imagesd_request_seconds_bucket{endpoint=\"generations\",le=\"0.005\"} 1\n"
        "imagesd_request_seconds_bucket{endpoint=\"generations\",le=\"0.25\"} 2\n"
        "imagesd_request_seconds_bucket{endpoint=\"generations\",le=\"1\"} 2\n"
        "imagesd_request_seconds_bucket{endpoint=\"generations\",le=\"2.5\"} 2\n"
        "imagesd_request_seconds_bucket{endpoint=\"generations\",le=\"+Inf\"} 3\n"
        "imagesd_request_seconds_sum{endpoint=\"generations\"} 3.105\n"
        "imagesd_request_seconds_count{endpoint=\"generations\"} 3\n"
        "imagesd_request_seconds_bucket{endpoint=\"edits\",le=\"0.005\"} 0\n"
        "imagesd_request_seconds_bucket{endpoint=\"edits\",le=\"0.25\"} 0\n"
        "imagesd_request_seconds_bucket{endpoint=\"edits\",le=\"1\"} 1\n"
        "imagesd_request_seconds_bucket{endpoint=\"edits\",le=\"2.5\"} 1\n"
        "imagesd_request_seconds_bucket{endpoint=\"edits\",le=\"+Inf\"} 1\n"
        "imagesd_request_seconds_sum{endpoint=\"edits\"} 1\n"
        "imagesd_request_seconds_count{endpoint=\"edits\"} 1\n"
        "# TYPE imagesd_encode_seconds histogram\n"
        "imagesd_encode_seconds_bucket{le=\"0.5\"} 0\n"
        "imagesd_encode_seconds_bucket{le=\"+Inf\"} 1\n"
        "imagesd_encode_seconds_sum 0.75\n"
        "imagesd_encode_seconds_count 1\n"
        "# TYPE imagesd_idle gauge\n";
    assert_string_equal(text, want);
    free(text);

    /* the gauge_fn is read at each exposition; later updates show */
    depth = 0.125;
    isd_metric_add(req, 4, L("generations", "gpt-image-1", "200"));
    text = expose(m);
    assert_non_null(strstr(text, "\nimagesd_queue_depth 0.125\n"));
    assert_non_null(strstr(text, "status=\"200\"} 7\n"));
    struct p_text t;
    p_parse(&t, text);
    p_check(&t);
    assert_int_equal(t.n_fam, 6);
    p_free(&t);
    free(text);
    isd_metrics_free(m);
}

/* ---- number formatting ---- */

static void sample_values_formatted(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-1, "-1"},
        {1e6, "1000000"},
        {123456789, "123456789"},
        {9007199254740992.0, "9007199254740992"},
        {9007199254740994.0, "9.007199254740994e+15"},
        {1e21, "1e+21"},
        {0.1, "0.1"},
        {-2.5, "-2.5"},
        {1.0 / 3, "0.3333333333333333"},
        {1e-7, "1e-07"},
        {0.0001, "0.0001"},
        {0.00001234, "1.234e-05"},
        {123456.5, "123456.5"},
        {1234567.5, "1.2345675e+06"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {5e-324, "5e-324"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    struct isd_metrics *m = isd_metrics_new();
    struct isd_metric *g = isd_metrics_gauge(m, "g", NULL, 0, NULL);
    assert_non_null(g);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        isd_metric_set(g, cases[i].v, NULL);
        char *text = expose(m);
        char want[128];
        snprintf(want, sizeof want, "# TYPE g gauge\ng %s\n", cases[i].text);
        assert_string_equal(text, want);
        free(text);
    }
    isd_metrics_free(m);
}

static void bucket_bounds_formatted(void **state)
{
    (void)state;
    static const double bounds[] = {-0.5, 0,   1e-05, 0.0001, 0.005, 0.1,     1.0 / 3,
                                    1,    2.5, 10,    100000, 1e6,   1234567, 1e21};
    static const char *const les[] = {
        "-0.5", "0",      "1e-05", "0.0001",       "0.005", "0.1", "0.3333333333333333", "1", "2.5",
        "10",   "100000", "1e+06", "1.234567e+06", "1e+21", "+Inf"};
    int n = (int)(sizeof bounds / sizeof bounds[0]);
    struct isd_metrics *m = isd_metrics_new();
    struct isd_metric *h = isd_metrics_histogram(m, "h", NULL, 0, NULL, bounds, n);
    assert_non_null(h);
    isd_metric_observe(h, 1, NULL); /* le is inclusive: counted from le="1" on */
    char *text = expose(m);
    struct isd_buf want;
    isd_buf_init(&want, 1 << 16);
    assert_int_equal(isd_buf_append_str(&want, "# TYPE h histogram\n"), 0);
    for (int i = 0; i <= n; i++)
        assert_int_equal(isd_buf_printf(&want, "h_bucket{le=\"%s\"} %d\n", les[i], i >= 7), 0);
    assert_int_equal(isd_buf_append_str(&want, "h_sum 1\nh_count 1\n"), 0);
    assert_string_equal(text, want.data);
    isd_buf_release(&want);
    free(text);
    isd_metrics_free(m);
}

/* ---- label values ---- */

/* The value exposed for the single series of a one-label counter after adding `raw`. */
static void check_label(const char *raw, const char *want)
{
    struct isd_metrics *m = isd_metrics_new();
    struct isd_metric *c = isd_metrics_counter(m, "c", NULL, 1, L("v"));
    isd_metric_add(c, 1, L(raw));
    char *text = expose(m);
    struct p_text t;
    p_parse(&t, text);
    assert_int_equal(t.n_s, 1);
    assert_string_equal(t.s[0].value[0], want);
    p_free(&t);
    free(text);
    isd_metrics_free(m);
}

static void label_values_cut_and_repaired(void **state)
{
    (void)state;
    char a200[201], a127e[130], a126e[129], a127ff[129], want127[128], want128[129];
    memset(a200, 'a', 200);
    a200[200] = '\0';
    memset(want127, 'a', 127);
    want127[127] = '\0';
    memset(want128, 'a', 128);
    want128[128] = '\0';
    memcpy(a127e, want127, 127);
    memcpy(a127e + 127, "\xC3\xA9", 3); /* é would end at byte 129 */
    memcpy(a126e, want127, 126);
    memcpy(a126e + 126, "\xC3\xA9", 3);
    memcpy(a127ff, want127, 127);
    memcpy(a127ff, want127, 127);
    memcpy(a127ff + 127, "\xFF", 2); /* U+FFFD would not fit */
    char want126e[129];
    memcpy(want126e, a126e, 129);

    check_label(a200, want128);
    check_label(a127e, want127);
    check_label(a126e, want126e);
    check_label(a127ff, want127);
    check_label("a\xFF"
                "b",
                "a\xEF\xBF\xBD"
                "b");
    check_label("\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD");                 /* overlong '/' */
    check_label("\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
    check_label("x\xE2\x82", "x\xEF\xBF\xBD\xEF\xBF\xBD");               /* truncated */
    check_label("\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    check_label("caf\xC3\xA9 \xF0\x9F\x98\x80 \xEF\xBF\xBD",
                "caf\xC3\xA9 \xF0\x9F\x98\x80 \xEF\xBF\xBD");
    check_label("", "");
    check_label(NULL, "");

    /* values equal after the cut share one series */
    struct isd_metrics *m = isd_metrics_new();
    struct isd_metric *c = isd_metrics_counter(m, "c", NULL, 2, L("a", "b"));
    char longer[300];
    memcpy(longer, a200, 201);
    longer[150] = 'z';
    isd_metric_add(c, 1, L(a200, "x"));
    isd_metric_add(c, 2, L(longer, "x"));
    isd_metric_add(c, 4, L("\xFE", "x"));
    isd_metric_add(c, 8, L("\xFF", "x"));
    isd_metric_add(c, 16, NULL); /* no values: all "" */
    char *text = expose(m);
    struct p_text t;
    p_parse(&t, text);
    assert_int_equal(t.n_s, 3);
    assert_string_equal(t.s[0].value[0], want128);
    assert_true(t.s[0].v == 3);
    assert_string_equal(t.s[1].value[0], "\xEF\xBF\xBD");
    assert_true(t.s[1].v == 12);
    assert_string_equal(t.s[2].value[0], "");
    assert_string_equal(t.s[2].value[1], "");
    assert_true(t.s[2].v == 16);
    p_free(&t);
    free(text);
    isd_metrics_free(m);
}

static void help_repaired_and_escaped(void **state)
{
    (void)state;
    struct isd_metrics *m = isd_metrics_new();
    assert_non_null(isd_metrics_counter(m, "c", "bad \xFF byte, \\ and\nline", 0, NULL));
    char *text = expose(m);
    assert_string_equal(text, "# HELP c bad \xEF\xBF\xBD byte, \\\\ and\\nline\n"
                              "# TYPE c counter\n"
                              "c 0\n");
    free(text);
    isd_metrics_free(m);
}

/* ---- semantics of updates ---- */

static void update_rules(void **state)
{
    (void)state;
    struct isd_metrics *m = isd_metrics_new();
    struct isd_metric *c = isd_metrics_counter(m, "c", NULL, 1, L("k"));
    struct isd_metric *g = isd_metrics_gauge(m, "g", NULL, 1, L("k"));
    struct isd_metric *h = isd_metrics_histogram(m, "h", NULL, 0, NULL, (const double[]){1}, 1);
    double fnv = 2;
    struct isd_metric *fn = isd_metrics_gauge_fn(m, "fn", NULL, read_double, &fnv);
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(h);
    assert_non_null(fn);

    isd_metric_add(c, 0, L("zero"));   /* creates the series at 0 */
    isd_metric_add(c, -1, L("neg"));   /* ignored, creates nothing */
    isd_metric_add(c, NAN, L("zero")); /* ignored */
    isd_metric_add(c, -INFINITY, L("zero"));
    isd_metric_set(c, 100, L("zero"));   /* not a gauge: ignored */
    isd_metric_observe(c, 1, L("zero")); /* not a histogram: ignored */
    isd_metric_add(c, 2.25, L("frac"));  /* fractional */
    isd_metric_add(c, 3, L("frac"));     /* integral */
    isd_metric_add(c, 1e300, L("huge")); /* beyond 2^53: double path */
    isd_metric_add(c, 1e300, L("huge"));
    isd_metric_add(c, INFINITY, L("inf"));
    isd_metric_add(g, 5, L("a"));
    isd_metric_add(g, -7.5, L("a"));
    isd_metric_set(g, NAN, L("nan"));
    isd_metric_observe(g, 1, L("a"));
    isd_metric_add(h, 1, NULL);
    isd_metric_set(h, 1, NULL);
    isd_metric_observe(h, NAN, NULL); /* ignored */
    isd_metric_observe(h, INFINITY, NULL);
    isd_metric_observe(h, -INFINITY, NULL);
    isd_metric_add(fn, 1, NULL);
    isd_metric_set(fn, 1, NULL);
    isd_metric_add(NULL, 1, NULL);
    isd_metric_set(NULL, 1, NULL);
    isd_metric_observe(NULL, 1, NULL);

    char *text = expose(m);
    assert_string_equal(text, "# TYPE c counter\n"
                              "c{k=\"zero\"} 0\n"
                              "c{k=\"frac\"} 5.25\n"
                              "c{k=\"huge\"} 2e+300\n"
                              "c{k=\"inf\"} +Inf\n"
                              "# TYPE g gauge\n"
                              "g{k=\"a\"} -2.5\n"
                              "g{k=\"nan\"} NaN\n"
                              "# TYPE h histogram\n"
                              "h_bucket{le=\"1\"} 1\n"
                              "h_bucket{le=\"+Inf\"} 2\n"
                              "h_sum NaN\n"
                              "h_count 2\n"
                              "# TYPE fn gauge\n"
                              "fn 2\n");
    free(text);
    assert_int_equal(isd_metrics_write(NULL, NULL), 0);
    isd_metrics_free(m);
    isd_metrics_free(NULL);
}

static void write_failure_leaves_buffer(void **state)
{
    (void)state;
    struct isd_metrics *m = isd_metrics_new();
    struct isd_metric *c = isd_metrics_counter(m, "c", "help", 1, L("k"));
    for (int i = 0; i < 50; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        isd_metric_add(c, i, L(v));
    }
    struct isd_buf b;
    isd_buf_init(&b, 200);
    assert_int_equal(isd_buf_append_str(&b, "prefix\n"), 0);
    assert_int_equal(isd_metrics_write(m, &b), -ISD_E_TOO_LARGE);
    assert_string_equal(b.data, "prefix\n");
    assert_int_equal(b.len, 7);
    isd_buf_release(&b);
    isd_metrics_free(m);
}

/* ---- the series cap ---- */

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t k = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, k) == 0;
    return n;
}

static void series_cap_and_other(void **state)
{
    (void)state;
    struct isd_metrics *m = isd_metrics_new();
    struct isd_metric *c = isd_metrics_counter(m, "c", NULL, 2, L("model", "status"));
    struct isd_metric *h =
        isd_metrics_histogram(m, "h", NULL, 1, L("model"), (const double[]){1}, 1);
    struct isd_metric *pre = isd_metrics_counter(m, "pre", NULL, 1, L("model"));
    char v[32];
    isd_metric_add(pre, 100, L("other")); /* "other" as an ordinary first series */
    for (int i = 0; i < ISD_METRICS_MAX_SERIES + 40; i++) {
        snprintf(v, sizeof v, "m%d", i);
        isd_metric_add(c, 1, L(v, "200"));
        isd_metric_observe(h, 0.5, L(v));
        isd_metric_add(pre, 1, L(v));
    }
    isd_metric_add(c, 1, L("m0", "200"));    /* an existing series still counts */
    isd_metric_add(c, 1, L("fresh", "500")); /* a new one goes to other */
    isd_metric_add(c, 1, L("other", "other"));
    char *text = expose(m);
    struct p_text t;
    p_parse(&t, text);
    p_check(&t);

    const struct p_family *fc = p_family_named(&t, "c");
    assert_int_equal(fc->n, ISD_METRICS_MAX_SERIES + 1);
    assert_true(p_find(&t, fc, "", 2, L("m0", "200"), NULL)->v == 2);
    snprintf(v, sizeof v, "m%d", ISD_METRICS_MAX_SERIES - 1);
    assert_true(p_find(&t, fc, "", 2, L(v, "200"), NULL)->v == 1);
    snprintf(v, sizeof v, "m%d", ISD_METRICS_MAX_SERIES);
    assert_null(p_find(&t, fc, "", 2, L(v, "200"), NULL));
    assert_null(p_find(&t, fc, "", 2, L("fresh", "500"), NULL));
    const struct p_sample *other = &t.s[fc->first + fc->n - 1];
    assert_string_equal(other->value[0], "other");
    assert_string_equal(other->value[1], "other");
    assert_true(other->v == 40 + 2);

    const struct p_family *fh = p_family_named(&t, "h");
    assert_int_equal(fh->n, (ISD_METRICS_MAX_SERIES + 1) * 4);
    assert_true(p_find(&t, fh, "_count", 1, L("other"), NULL)->v == 40);

    /* "other" existed before the cap: the overflow adds to it, no second series */
    const struct p_family *fp = p_family_named(&t, "pre");
    assert_int_equal(fp->n, ISD_METRICS_MAX_SERIES);
    assert_true(p_find(&t, fp, "", 1, L("other"), NULL)->v == 100 + 41);
    assert_int_equal(count_lines(text, "pre{model=\"other\"}"), 1);
    p_free(&t);
    free(text);
    isd_metrics_free(m);
}

/* ---- declarations ---- */

static void bad_declarations_refused(void **state)
{
    (void)state;
    struct isd_metrics *m = isd_metrics_new();
    const double b2[] = {1, 2};
    assert_non_null(isd_metrics_counter(m, "ok_name:total", NULL, 0, NULL));
    assert_non_null(isd_metrics_histogram(m, "lat", NULL, 0, NULL, b2, 2));
    assert_non_null(isd_metrics_counter(m, "_x1", NULL, 2, L("a_1", "_b")));

    static const char *const bad_names[] = {"", "1abc", "a-b", "a b", "a.b", "é", "a\n"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        assert_null(isd_metrics_counter(m, bad_names[i], NULL, 0, NULL));
    assert_null(isd_metrics_counter(m, NULL, NULL, 0, NULL));
    assert_null(isd_metrics_counter(NULL, "x", NULL, 0, NULL));

    /* names already exposed */
    assert_null(isd_metrics_gauge(m, "ok_name:total", NULL, 0, NULL));
    assert_null(isd_metrics_counter(m, "lat_count", NULL, 0, NULL));
    assert_null(isd_metrics_gauge(m, "lat_bucket", NULL, 0, NULL));
    assert_null(isd_metrics_gauge_fn(m, "lat_sum", NULL, read_double, NULL));
    assert_null(isd_metrics_histogram(m, "lat", NULL, 0, NULL, b2, 2));
    assert_non_null(isd_metrics_counter(m, "y_sum", NULL, 0, NULL));
    assert_null(isd_metrics_histogram(m, "y", NULL, 0, NULL, b2, 2));
    assert_non_null(isd_metrics_counter(m, "lat_total", NULL, 0, NULL));

    /* labels */
    assert_null(isd_metrics_counter(m, "l1", NULL, 1, L("__reserved")));
    assert_null(isd_metrics_counter(m, "l2", NULL, 1, L("a:b")));
    assert_null(isd_metrics_counter(m, "l3", NULL, 1, L("1a")));
    assert_null(isd_metrics_counter(m, "l4", NULL, 1, L("")));
    assert_null(isd_metrics_counter(m, "l5", NULL, 2, L("a", "a")));
    assert_null(isd_metrics_counter(m, "l6", NULL, 5, L("a", "b", "c", "d", "e")));
    assert_null(isd_metrics_counter(m, "l7", NULL, -1, NULL));
    assert_null(isd_metrics_counter(m, "l8", NULL, 1, NULL));
    assert_null(isd_metrics_counter(m, "l9", NULL, 1, L(NULL)));
    assert_null(isd_metrics_histogram(m, "l10", NULL, 1, L("le"), b2, 2));
    assert_non_null(isd_metrics_counter(m, "l11", NULL, 1, L("le")));
    assert_non_null(isd_metrics_counter(m, "l12", NULL, 4, L("a", "b", "c", "d")));

    /* buckets */
    double many[ISD_METRICS_MAX_BUCKETS + 1];
    for (int i = 0; i <= ISD_METRICS_MAX_BUCKETS; i++)
        many[i] = i;
    assert_null(isd_metrics_histogram(m, "b1", NULL, 0, NULL, many, ISD_METRICS_MAX_BUCKETS + 1));
    assert_non_null(isd_metrics_histogram(m, "b2", NULL, 0, NULL, many, ISD_METRICS_MAX_BUCKETS));
    many[ISD_METRICS_MAX_BUCKETS] = INFINITY; /* a final +Inf is dropped */
    assert_non_null(
        isd_metrics_histogram(m, "b3", NULL, 0, NULL, many, ISD_METRICS_MAX_BUCKETS + 1));
    assert_null(isd_metrics_histogram(m, "b4", NULL, 0, NULL, (const double[]){1, 1}, 2));
    assert_null(isd_metrics_histogram(m, "b5", NULL, 0, NULL, (const double[]){2, 1}, 2));
    assert_null(isd_metrics_histogram(m, "b6", NULL, 0, NULL, (const double[]){NAN}, 1));
    assert_null(isd_metrics_histogram(m, "b7", NULL, 0, NULL, (const double[]){-INFINITY, 1}, 2));
    assert_null(isd_metrics_histogram(m, "b8", NULL, 0, NULL, NULL, 2));
    assert_null(isd_metrics_histogram(m, "b9", NULL, 0, NULL, b2, -1));
    assert_non_null(isd_metrics_histogram(m, "b10", NULL, 0, NULL, NULL, 0));
    assert_non_null(isd_metrics_histogram(m, "b11", NULL, 0, NULL, (const double[]){INFINITY}, 1));
    assert_null(isd_metrics_gauge_fn(m, "f1", NULL, NULL, NULL));

    char *text = expose(m);
    struct p_text t;
    p_parse(&t, text);
    p_check(&t);
    assert_int_equal(t.n_fam, 11);
    assert_int_equal(p_family_named(&t, "b10")->n, 3); /* +Inf, _sum, _count */
    assert_int_equal(p_family_named(&t, "b11")->n, 3);
    assert_int_equal(p_family_named(&t, "b3")->n, ISD_METRICS_MAX_BUCKETS + 3);
    p_free(&t);
    free(text);
    isd_metrics_free(m);
}

/* ---- a random registry against a model, through the strict parser ---- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static int rnd_below(int n)
{
    return (int)(rnd() % (uint32_t)n);
}

/* Length of a well-formed UTF-8 sequence at s (Unicode table 3-7), 0 if none. */
static size_t wellformed_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c == 0xE0)
        len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        len = 3;
    else if (c == 0xED)
        len = 3, hi = 0x9F;
    else if (c == 0xF0)
        len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        len = 4;
    else if (c == 0xF4)
        len = 4, hi = 0x8F;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* The model's normalisation: each byte not starting a well-formed sequence becomes U+FFFD,
 * then whole characters up to `cap` bytes. */
static void model_normalise(const char *raw, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)(raw ? raw : "");
    size_t n = strlen((const char *)s), o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = wellformed_len(s + i, n - i);
        const char *piece = k ? (const char *)s + i : "\xEF\xBF\xBD";
        size_t pk = k ? k : 3;
        if (o + pk > cap)
            break;
        memcpy(out + o, piece, pk);
        o += pk;
        i += k ? k : 1;
    }
    out[o] = '\0';
}

#define R_FAMILIES 12
#define R_COMBOS   16

struct r_series {
    char raw[ISD_METRICS_MAX_LABELS][220];                        /* as passed */
    char norm[ISD_METRICS_MAX_LABELS][ISD_METRICS_MAX_VALUE + 1]; /* as exposed */
};

struct r_value {
    bool seen;
    double v;                                     /* counter, gauge; histogram sum */
    uint64_t counts[ISD_METRICS_MAX_BUCKETS + 1]; /* histogram, per bucket */
};

struct r_family {
    int type; /* 0 counter, 1 gauge, 2 histogram, 3 gauge_fn */
    char name[64];
    char help[160];
    int n_labels;
    char labels[ISD_METRICS_MAX_LABELS][16];
    double bounds[ISD_METRICS_MAX_BUCKETS];
    int n_buckets;
    struct r_series combos[R_COMBOS];
    struct r_value values[R_COMBOS]; /* by the first combo with the same normalised values */
    double fn_value;
    struct isd_metric *h;
};

static void random_text(char *out, size_t max)
{
    static const char *const pool[] = {"gpt-image-1",
                                       "dall-e-2",
                                       "a\"b",
                                       "back\\slash",
                                       "new\nline",
                                       "",
                                       "\xC3\xA9t\xC3\xA9",
                                       "\xF0\x9F\x98\x80",
                                       "\xFF\xFE",
                                       "\xE2\x82",
                                       "\xED\xA0\x80",
                                       "\xC0\x80",
                                       "{}=,\" "};
    int kind = rnd_below(3);
    if (kind == 0) {
        snprintf(out, max, "%s", pool[rnd_below((int)(sizeof pool / sizeof pool[0]))]);
        return;
    }
    size_t n = (size_t)rnd_below(kind == 1 ? 12 : (int)max - 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(1 + rnd_below(255));
    out[n] = '\0';
}

static double random_double(void)
{
    switch (rnd_below(6)) {
    case 0:
        return rnd_below(1000);
    case 1:
        return (rnd_below(2000) - 1000) / 8.0;
    case 2:
        return ldexp((double)rnd() * (1 + rnd_below(1000)), rnd_below(200) - 100);
    case 3:
        return (rnd_below(2) ? 1 : -1) * pow(10, rnd_below(600) - 300) * (1 + rnd() / 4e9);
    case 4: {
        static const double special[] = {
            0, -0.0, NAN, INFINITY, -INFINITY, DBL_MAX, 5e-324, 9007199254740993.0, 1e15 + 0.5};
        return special[rnd_below((int)(sizeof special / sizeof special[0]))];
    }
    default:
        return rnd() / 3.0;
    }
}

static void r_declare(struct isd_metrics *m, struct r_family *f, int index)
{
    f->type = rnd_below(4);
    char tail[12];
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:";
    int nt = rnd_below(10);
    for (int i = 0; i < nt; i++)
        tail[i] = chars[rnd_below((int)sizeof chars - 1)];
    tail[nt] = '\0';
    snprintf(f->name, sizeof f->name, "%c%d_%s", "abc_:"[rnd_below(5)], index, tail);
    random_text(f->help, 40);
    f->n_labels = f->type == 3 ? 0 : rnd_below(ISD_METRICS_MAX_LABELS + 1);
    const char *names[ISD_METRICS_MAX_LABELS];
    for (int i = 0; i < f->n_labels; i++) {
        snprintf(f->labels[i], sizeof f->labels[i], "%c%d", "abcxyz_"[rnd_below(7)], i);
        names[i] = f->labels[i];
    }
    /* increasing bounds of mixed magnitudes; every third one a short decimal like 0.005 */
    double b = -5 + rnd_below(5);
    f->n_buckets = rnd_below(ISD_METRICS_MAX_BUCKETS + 1);
    for (int i = 0; i < f->n_buckets; i++) {
        double next = b + ldexp(1 + rnd() / 4e9, rnd_below(20) - 10);
        double decimal = ceil(next * 1000) / 1000;
        b = i % 3 == 0 && decimal > b ? decimal : next;
        f->bounds[i] = b;
    }
    switch (f->type) {
    case 0:
        f->h = isd_metrics_counter(m, f->name, f->help, f->n_labels, names);
        break;
    case 1:
        f->h = isd_metrics_gauge(m, f->name, f->help, f->n_labels, names);
        break;
    case 2:
        f->h =
            isd_metrics_histogram(m, f->name, f->help, f->n_labels, names, f->bounds, f->n_buckets);
        break;
    default:
        f->fn_value = random_double();
        f->h = isd_metrics_gauge_fn(m, f->name, f->help, read_double, &f->fn_value);
    }
    assert_non_null(f->h);
    for (int c = 0; c < R_COMBOS; c++)
        for (int i = 0; i < f->n_labels; i++) {
            random_text(f->combos[c].raw[i], 200);
            model_normalise(f->combos[c].raw[i], f->combos[c].norm[i], ISD_METRICS_MAX_VALUE);
        }
}

/* The model slot of combo c: the first combo with the same normalised values. */
static struct r_value *r_slot(struct r_family *f, int c)
{
    for (int k = 0;; k++) {
        bool eq = true;
        for (int i = 0; i < f->n_labels && eq; i++)
            eq = strcmp(f->combos[k].norm[i], f->combos[c].norm[i]) == 0;
        if (eq)
            return &f->values[k];
    }
}

static void r_update(struct r_family *f)
{
    int c = rnd_below(R_COMBOS);
    const char *values[ISD_METRICS_MAX_LABELS];
    for (int i = 0; i < f->n_labels; i++)
        values[i] = f->combos[c].raw[i];
    struct r_value *slot = r_slot(f, c);
    if (f->type == 0) {
        double v = rnd_below(4) ? rnd_below(1000) : rnd_below(64) / 8.0;
        if (rnd_below(20) == 0)
            v = -v; /* ignored */
        isd_metric_add(f->h, v, values);
        if (v >= 0) {
            slot->v += v;
            slot->seen = true;
        }
    } else if (f->type == 1) {
        double v = random_double();
        if (rnd_below(2)) {
            isd_metric_set(f->h, v, values);
            slot->v = v;
        } else {
            isd_metric_add(f->h, v, values);
            slot->v += v;
        }
        slot->seen = true;
    } else if (f->type == 2) {
        double v = rnd_below(3) == 0 && f->n_buckets > 0 ? f->bounds[rnd_below(f->n_buckets)]
                                                         : random_double();
        isd_metric_observe(f->h, v, values);
        if (isnan(v))
            return;
        int b = 0;
        while (b < f->n_buckets && v > f->bounds[b])
            b++;
        slot->counts[b]++;
        slot->v += v;
        slot->seen = true;
    } else {
        f->fn_value = random_double();
    }
}

static bool same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static void r_verify(struct r_family *fams, const struct p_text *t)
{
    assert_int_equal(t->n_fam, R_FAMILIES);
    for (int fi = 0; fi < R_FAMILIES; fi++) {
        struct r_family *f = &fams[fi];
        const struct p_family *pf = &t->fam[fi];
        static const char *const types[] = {"counter", "gauge", "histogram", "gauge"};
        assert_string_equal(pf->name, f->name);
        assert_string_equal(pf->type, types[f->type]);
        char help[200];
        model_normalise(f->help, help, sizeof help - 1);
        assert_int_equal(pf->has_help, help[0] != '\0');
        if (pf->has_help)
            assert_string_equal(pf->help, help);
        if (f->type == 3) {
            assert_int_equal(pf->n, 1);
            assert_true(same_double(t->s[pf->first].v, f->fn_value));
            continue;
        }
        int lines = 0;
        for (int c = 0; c < R_COMBOS; c++) {
            struct r_value *slot = r_slot(f, c);
            if (slot != &f->values[c])
                continue; /* a duplicate after normalisation */
            const char *values[ISD_METRICS_MAX_LABELS];
            for (int i = 0; i < f->n_labels; i++)
                values[i] = f->combos[c].norm[i];
            bool shown = slot->seen || f->n_labels == 0;
            if (f->type != 2) {
                const struct p_sample *s = p_find(t, pf, "", f->n_labels, values, NULL);
                assert_int_equal(s != NULL, shown);
                if (s)
                    assert_true(same_double(s->v, slot->v));
                lines += shown;
                continue;
            }
            const struct p_sample *s = p_find(t, pf, "_sum", f->n_labels, values, NULL);
            assert_int_equal(s != NULL, shown);
            if (!s)
                continue;
            assert_true(same_double(s->v, slot->v));
            uint64_t total = 0;
            for (int b = 0; b <= f->n_buckets; b++) {
                total += slot->counts[b];
                double le = b < f->n_buckets ? f->bounds[b] : INFINITY;
                const struct p_sample *bs = p_find_bucket(t, pf, f->n_labels, values, le);
                assert_non_null(bs);
                assert_true(bs->v == (double)total);
            }
            assert_true(p_find(t, pf, "_count", f->n_labels, values, NULL)->v == (double)total);
            lines += f->n_buckets + 3;
        }
        assert_int_equal(pf->n, lines);
    }
}

static void random_registry_parses_strictly(void **state)
{
    (void)state;
    struct r_family *fams = calloc(R_FAMILIES, sizeof *fams);
    assert_non_null(fams);
    for (int round = 0; round < 30; round++) {
        rng_state = 0x9E3779B97F4A7C15ull * (uint64_t)(round + 1);
        memset(fams, 0, R_FAMILIES * sizeof *fams);
        struct isd_metrics *m = isd_metrics_new();
        for (int i = 0; i < R_FAMILIES; i++)
            r_declare(m, &fams[i], i);
        for (int u = 0; u < 600; u++)
            r_update(&fams[rnd_below(R_FAMILIES)]);
        char *text = expose(m);
        struct p_text t;
        p_parse(&t, text);
        p_check(&t);
        r_verify(fams, &t);
        p_free(&t);
        free(text);
        isd_metrics_free(m);
    }
    free(fams);
}

/* ---- threads ---- */

#define T_THREADS 4
#define T_UPDATES 100000
#define T_COMBOS  50

struct t_shared {
    struct isd_metrics *m;
    struct isd_metric *requests, *frac, *inflight, *lat;
    const char *combo[T_COMBOS][3];
    char models[T_COMBOS][24];
    _Atomic int running;
    char *snapshot[4]; /* expositions taken during the updates */
    int write_errors;
};

static const double t_obs[4] = {0.0078125, 0.0625, 0.5, 8};
static const double t_bounds[4] = {0.01, 0.1, 1, 5};

static int t_combo(int thread, int k)
{
    return (k * 7 + thread) % T_COMBOS;
}

struct t_arg {
    struct t_shared *sh;
    int id;
};

static void *t_worker(void *p)
{
    struct t_arg *a = p;
    struct t_shared *sh = a->sh;
    for (int k = 0; k < T_UPDATES; k++) {
        const char *const *v = sh->combo[t_combo(a->id, k)];
        isd_metric_add(sh->requests, 1, v);
        isd_metric_observe(sh->lat, t_obs[k % 4], v);
        if (k % 4 == 0) {
            isd_metric_add(sh->frac, 0.25, v);
            isd_metric_add(sh->inflight, 1, NULL);
        }
    }
    return NULL;
}

static void *t_reader(void *p)
{
    struct t_shared *sh = p;
    int n = 0;
    while (atomic_load(&sh->running)) {
        struct isd_buf b;
        isd_buf_init(&b, 64u << 20);
        if (isd_metrics_write(sh->m, &b) < 0)
            sh->write_errors++;
        if (n < 4 && b.data) {
            free(sh->snapshot[n]);
            sh->snapshot[n++] = isd_buf_detach(&b, NULL);
        } else if (n == 4) {
            n = 0; /* keep refreshing the snapshots */
        }
        isd_buf_release(&b);
    }
    return NULL;
}

static void concurrent_totals_exact(void **state)
{
    (void)state;
    static struct t_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.m = isd_metrics_new();
    const char *const names[] = {"endpoint", "model", "status"};
    sh.requests = isd_metrics_counter(sh.m, "requests_total", "r", 3, names);
    sh.frac = isd_metrics_counter(sh.m, "frac_total", "f", 3, names);
    sh.inflight = isd_metrics_gauge(sh.m, "inflight", "g", 0, NULL);
    sh.lat = isd_metrics_histogram(sh.m, "latency_seconds", "l", 3, names, t_bounds, 4);
    static const char *const endpoints[] = {"generations", "edits", "variations"};
    for (int c = 0; c < T_COMBOS; c++) {
        snprintf(sh.models[c], sizeof sh.models[c], "model-%d", c);
        sh.combo[c][0] = endpoints[c % 3];
        sh.combo[c][1] = sh.models[c];
        sh.combo[c][2] = c % 2 ? "200" : "500";
    }
    atomic_store(&sh.running, 1);
    pthread_t reader, workers[T_THREADS];
    struct t_arg args[T_THREADS];
    assert_int_equal(pthread_create(&reader, NULL, t_reader, &sh), 0);
    for (int i = 0; i < T_THREADS; i++) {
        args[i] = (struct t_arg){&sh, i};
        assert_int_equal(pthread_create(&workers[i], NULL, t_worker, &args[i]), 0);
    }
    for (int i = 0; i < T_THREADS; i++)
        pthread_join(workers[i], NULL);
    atomic_store(&sh.running, 0);
    pthread_join(reader, NULL);
    assert_int_equal(sh.write_errors, 0);

    /* expected values, replayed on one thread */
    static double want_req[T_COMBOS], want_frac[T_COMBOS], want_sum[T_COMBOS];
    static uint64_t want_counts[T_COMBOS][5];
    memset(want_req, 0, sizeof want_req);
    memset(want_frac, 0, sizeof want_frac);
    memset(want_sum, 0, sizeof want_sum);
    memset(want_counts, 0, sizeof want_counts);
    for (int i = 0; i < T_THREADS; i++)
        for (int k = 0; k < T_UPDATES; k++) {
            int c = t_combo(i, k);
            want_req[c]++;
            want_frac[c] += k % 4 == 0 ? 0.25 : 0;
            want_sum[c] += t_obs[k % 4];
            want_counts[c][k % 4 == 3 ? 4 : k % 4]++; /* 8 > 5: the +Inf bucket */
        }

    char *text = expose(sh.m);
    struct p_text t;
    p_parse(&t, text);
    p_check(&t);
    const struct p_family *fr = p_family_named(&t, "requests_total");
    const struct p_family *ff = p_family_named(&t, "frac_total");
    const struct p_family *fl = p_family_named(&t, "latency_seconds");
    assert_int_equal(fr->n, T_COMBOS);
    assert_int_equal(fl->n, T_COMBOS * 7); /* 4 bounds and +Inf, _sum, _count */
    assert_true(t.s[p_family_named(&t, "inflight")->first].v == T_THREADS * T_UPDATES / 4);
    for (int c = 0; c < T_COMBOS; c++) {
        assert_true(p_find(&t, fr, "", 3, sh.combo[c], NULL)->v == want_req[c]);
        assert_true(p_find(&t, ff, "", 3, sh.combo[c], NULL)->v == want_frac[c]);
        assert_true(p_find(&t, fl, "_sum", 3, sh.combo[c], NULL)->v == want_sum[c]);
        uint64_t total = 0;
        static const char *const les[] = {"0.01", "0.1", "1", "5", "+Inf"};
        for (int b = 0; b < 5; b++) {
            total += want_counts[c][b];
            assert_true(p_find(&t, fl, "_bucket", 3, sh.combo[c], les[b])->v == (double)total);
        }
        assert_true(total == T_THREADS * T_UPDATES / T_COMBOS);
    }
    p_free(&t);
    free(text);

    /* expositions taken mid-flight are well-formed too */
    for (int i = 0; i < 4; i++) {
        if (!sh.snapshot[i])
            continue;
        p_parse(&t, sh.snapshot[i]);
        p_check(&t);
        p_free(&t);
        free(sh.snapshot[i]);
    }
    isd_metrics_free(sh.m);
}

/* One thread creates series; another updates each one only after a relaxed counter says it
 * exists, so it finds them on the lock-free path and never takes the insert lock: the only
 * synchronisation is the table's release/acquire, which ThreadSanitizer checks. */
#define PUB_SERIES 200

struct pub_shared {
    struct isd_metric *c;
    char names[PUB_SERIES][24];
    _Atomic int created;
};

static void *pub_creator(void *p)
{
    struct pub_shared *sh = p;
    for (int i = 0; i < PUB_SERIES; i++) {
        isd_metric_add(sh->c, 1, L(sh->names[i]));
        atomic_store_explicit(&sh->created, i + 1, memory_order_relaxed);
    }
    return NULL;
}

static void *pub_finder(void *p)
{
    struct pub_shared *sh = p;
    for (int seen = 0; seen < PUB_SERIES;) {
        int n = atomic_load_explicit(&sh->created, memory_order_relaxed);
        for (; seen < n; seen++)
            isd_metric_add(sh->c, 2, L(sh->names[seen]));
    }
    return NULL;
}

static void lookups_synchronise_with_creation(void **state)
{
    (void)state;
    static struct pub_shared sh;
    memset(&sh, 0, sizeof sh);
    struct isd_metrics *m = isd_metrics_new();
    sh.c = isd_metrics_counter(m, "c", NULL, 1, L("k"));
    for (int i = 0; i < PUB_SERIES; i++)
        snprintf(sh.names[i], sizeof sh.names[i], "series-%d", i);
    pthread_t a, b;
    assert_int_equal(pthread_create(&b, NULL, pub_finder, &sh), 0);
    assert_int_equal(pthread_create(&a, NULL, pub_creator, &sh), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    char *text = expose(m);
    struct p_text t;
    p_parse(&t, text);
    assert_int_equal(t.n_s, PUB_SERIES);
    for (int i = 0; i < PUB_SERIES; i++) {
        assert_string_equal(t.s[i].value[0], sh.names[i]); /* creation order */
        assert_true(t.s[i].v == 3);
    }
    p_free(&t);
    free(text);
    isd_metrics_free(m);
}

/* ---- micro-benchmark (printed, not asserted) ---- */

/* calls per measurement; fewer under sanitizers, whose numbers mean little anyway */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define B_OPS 100000
#else
#define B_OPS 1000000
#endif

struct b_arg {
    struct isd_metric *c, *h;
    const char *const *labels;
    int observe;
    double ns;
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *b_run(void *p)
{
    struct b_arg *a = p;
    double t0 = now_ns();
    if (a->observe)
        for (int i = 0; i < B_OPS; i++)
            isd_metric_observe(a->h, (i & 1023) * 0.001, a->labels);
    else
        for (int i = 0; i < B_OPS; i++)
            isd_metric_add(a->c, 1, a->labels);
    a->ns = (now_ns() - t0) / B_OPS;
    return NULL;
}

/* ns per call on each of n threads (n = 1 or 2), on one series or on one each. */
static double b_measure(struct isd_metric *c, struct isd_metric *h, int observe, int n, bool same)
{
    static const char *const l1[] = {"generations", "gpt-image-1", "200"};
    static const char *const l2[] = {"edits", "gpt-image-1", "200"};
    struct b_arg a[2] = {{c, h, l1, observe, 0}, {c, h, same ? l1 : l2, observe, 0}};
    pthread_t th[2];
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, b_run, &a[i]), 0);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        worst = a[i].ns > worst ? a[i].ns : worst;
    }
    return worst;
}

static void micro_benchmark(void **state)
{
    (void)state;
    struct isd_metrics *m = isd_metrics_new();
    const char *const names[] = {"endpoint", "model", "status"};
    struct isd_metric *c = isd_metrics_counter(m, "c_total", NULL, 3, names);
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    struct isd_metric *h = isd_metrics_histogram(m, "h_seconds", NULL, 3, names, bounds, 11);
    for (int observe = 0; observe < 2; observe++) {
        double one = b_measure(c, h, observe, 1, true);
        double same = b_measure(c, h, observe, 2, true);
        double apart = b_measure(c, h, observe, 2, false);
        printf("# bench %s, 3 labels: %.1f ns/call on 1 thread, %.1f ns on 2 threads on one "
               "series, %.1f ns on 2 threads on two series\n",
               observe ? "isd_metric_observe (11 buckets)" : "isd_metric_add", one, same, apart);
    }
    fflush(stdout);
    isd_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exposition_exact),
        cmocka_unit_test(sample_values_formatted),
        cmocka_unit_test(bucket_bounds_formatted),
        cmocka_unit_test(label_values_cut_and_repaired),
        cmocka_unit_test(help_repaired_and_escaped),
        cmocka_unit_test(update_rules),
        cmocka_unit_test(write_failure_leaves_buffer),
        cmocka_unit_test(series_cap_and_other),
        cmocka_unit_test(bad_declarations_refused),
        cmocka_unit_test(random_registry_parses_strictly),
        cmocka_unit_test(concurrent_totals_exact),
        cmocka_unit_test(lookups_synchronise_with_creation),
        cmocka_unit_test(micro_benchmark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
