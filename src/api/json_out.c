#include "api/api_int.h"

#include "text/text.h"

#include <stdio.h>
#include <string.h>

void jw_init(struct jw *w, struct isd_buf *out, bool pretty)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = pretty;
}

static void put(struct jw *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = isd_buf_append(w->out, s, n);
}

static void newline_indent(struct jw *w, int depth)
{
    static const char spaces[] = "                                ";
    put(w, "\n", 1);
    for (int i = 0; i < depth; i++)
        put(w, spaces, 2);
}

/* Separator and indentation before a value or key inside the current container. */
static void before_item(struct jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0)
        return;
    if (w->has_items[w->depth - 1])
        put(w, ",", 1);
    w->has_items[w->depth - 1] = true;
    if (w->pretty)
        newline_indent(w, w->depth);
}

static void open_container(struct jw *w, char c)
{
    before_item(w);
    put(w, &c, 1);
    if (w->depth >= JW_MAX_DEPTH) {
        w->rc = -ISD_E_INTERNAL;
        return;
    }
    w->has_items[w->depth++] = false;
}

static void close_container(struct jw *w, char c)
{
    if (w->depth == 0) {
        w->rc = -ISD_E_INTERNAL;
        return;
    }
    bool had = w->has_items[--w->depth];
    if (w->pretty && had)
        newline_indent(w, w->depth);
    put(w, &c, 1);
}

void jw_object_begin(struct jw *w)
{
    open_container(w, '{');
}

void jw_object_end(struct jw *w)
{
    close_container(w, '}');
}

void jw_array_begin(struct jw *w)
{
    open_container(w, '[');
}

void jw_array_end(struct jw *w)
{
    close_container(w, ']');
}

static void put_escaped(struct jw *w, const char *s, size_t n)
{
    put(w, "\"", 1);
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        put(w, s + i - run, run);
        run = 0;
        char tmp[8];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put(w, tmp, 2);
            i++;
        } else if (c == '\n') {
            put(w, "\\n", 2);
            i++;
        } else if (c == '\r') {
            put(w, "\\r", 2);
            i++;
        } else if (c == '\t') {
            put(w, "\\t", 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            put(w, tmp, 6);
            i++;
        } else {
            size_t start = i;
            uint32_t cp = isd_utf8_next(s, n, &i);
            if (cp == 0xFFFD && !(i - start == 3 && c == 0xEF))
                put(w, "\\ufffd", 6);
            else
                put(w, s + start, i - start);
        }
    }
    put(w, s + i - run, run);
    put(w, "\"", 1);
}

void jw_key(struct jw *w, const char *key)
{
    before_item(w);
    put_escaped(w, key, strlen(key));
    put(w, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
    w->after_key = true;
}

void jw_stringn(struct jw *w, const char *s, size_t n)
{
    before_item(w);
    put_escaped(w, s, n);
}

void jw_string(struct jw *w, const char *s)
{
    jw_stringn(w, s, strlen(s));
}

void jw_int(struct jw *w, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    before_item(w);
    put(w, tmp, (size_t)n);
}

void jw_bool(struct jw *w, bool v)
{
    before_item(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(struct jw *w)
{
    before_item(w);
    put(w, "null", 4);
}

void jw_base64(struct jw *w, const void *data, size_t n)
{
    before_item(w);
    put(w, "\"", 1);
    if (w->rc == 0)
        w->rc = isd_base64_encode(w->out, data, n);
    put(w, "\"", 1);
}

int api_quote_list(char *out, size_t cap, const char *const *values, const char *conj)
{
    size_t count = 0;
    while (values[count])
        count++;
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        const char *sep = "";
        if (i > 0)
            sep = count == 2 ? (conj[0] == 'a' ? " and " : " or ")
                             : (i == count - 1 ? (conj[0] == 'a' ? ", and " : ", or ") : ", ");
        int n = snprintf(out + len, cap - len, "%s'%s'", sep, values[i]);
        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

const char *api_json_type_phrase(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a decimal number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    }
    return "a value";
}

bool api_in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}
