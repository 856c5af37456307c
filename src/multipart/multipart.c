/*
 * multipart.c: the streaming multipart/form-data parser (contract in multipart.h).
 *
 * The body is scanned for the delimiter D = "\r\n--" boundary. D holds a single '\r' (at 0;
 * the boundary is printable ASCII), so no proper suffix of a partial match can start another
 * match: on a mismatch the held-back bytes are exactly D[0..match) and are emitted from
 * p->delim, and scanning resumes at the byte that failed. Part data is therefore delivered
 * straight from the caller's chunks (memchr jumps between candidate '\r', with Horspool
 * shifts over dense CR/LF runs), never copied.
 * The first line may be "--boundary" without a CRLF: the parser starts as if "\r\n" had
 * been matched already (virtual_crlf).
 */
#include "multipart/multipart.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define PFX "multipart body: "

enum mp_state {
    MP_PREAMBLE,    /* before the first delimiter: bytes are counted and ignored */
    MP_DATA,        /* inside a part's body */
    MP_DELIM_AFTER, /* a whole delimiter matched (held back): the next byte decides */
    MP_DELIM_DASH,  /* delimiter + '-' (held back): the next byte decides */
    MP_PADDING,     /* after a boundary: spaces and tabs until CR or LF */
    MP_PADDING_LF,  /* after a boundary line's CR: LF expected */
    MP_HEADERS,     /* collecting a part's header block */
    MP_EPILOGUE,    /* after the closing delimiter: everything is ignored */
    MP_FAILED,      /* an error was returned: it is returned again */
};

/* ---- small string helpers (views: pointer + length, no NUL assumed) ---- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* s[0..n) equals the lower-case literal `lit`, ignoring ASCII case. */
static bool ieq(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i])
            return false;
    return true;
}

static void trim(const char **s, const char **e)
{
    while (*s < *e && is_ws(**s))
        (*s)++;
    while (*e > *s && is_ws((*e)[-1]))
        (*e)--;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int bad(struct isd_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct isd_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = isd_err_setv(err, ISD_E_BAD_BODY, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- header parameters: "; key=value" lists (Content-Type, Content-Disposition) ---- */

struct mp_param {
    const char *key; /* parameter name as sent */
    size_t key_len;
    const char *val; /* raw value: inside the quotes when quoted, escapes still in */
    size_t val_len;
    bool quoted;
};

enum { PARAM_END = 0, PARAM_OK = 1, PARAM_MALFORMED = -1, PARAM_UNTERMINATED = -2 };

/* Reads the next "; key=value" at *s (before end) and advances *s past it. Returns PARAM_OK,
 * PARAM_END (only spaces or a trailing ';' left), or a negative PARAM_ value. In a quoted
 * value \" and \\ are escapes; an unquoted value runs to the next ';' (trimmed). */
static int next_param(const char **s, const char *end, struct mp_param *out)
{
    const char *c = *s;
    while (c < end && is_ws(*c))
        c++;
    if (c == end)
        return PARAM_END;
    if (*c != ';')
        return PARAM_MALFORMED;
    c++;
    while (c < end && is_ws(*c))
        c++;
    if (c == end)
        return PARAM_END;
    const char *key = c;
    while (c < end && *c != '=' && *c != ';')
        c++;
    if (c == end || *c != '=')
        return PARAM_MALFORMED;
    const char *key_end = c;
    trim(&key, &key_end);
    if (key == key_end)
        return PARAM_MALFORMED;
    out->key = key;
    out->key_len = (size_t)(key_end - key);
    c++;
    while (c < end && is_ws(*c))
        c++;
    if (c < end && *c == '"') {
        const char *v = ++c;
        for (;;) {
            if (c == end)
                return PARAM_UNTERMINATED;
            if (*c == '\\' && c + 1 < end && (c[1] == '"' || c[1] == '\\'))
                c += 2;
            else if (*c == '"')
                break;
            else
                c++;
        }
        out->val = v;
        out->val_len = (size_t)(c - v);
        out->quoted = true;
        c++;
    } else {
        const char *v = c;
        while (c < end && *c != ';')
            c++;
        const char *v_end = c;
        trim(&v, &v_end);
        out->val = v;
        out->val_len = (size_t)(v_end - v);
        out->quoted = false;
    }
    *s = c;
    return PARAM_OK;
}

/* Writes the parameter's value without quotes and escapes into out (room for val_len bytes);
 * returns its length. */
static size_t unquote(const struct mp_param *pm, char *out)
{
    if (!pm->quoted) {
        memcpy(out, pm->val, pm->val_len);
        return pm->val_len;
    }
    size_t n = 0;
    for (size_t i = 0; i < pm->val_len; i++) {
        char c = pm->val[i];
        if (c == '\\' && i + 1 < pm->val_len && (pm->val[i + 1] == '"' || pm->val[i + 1] == '\\'))
            c = pm->val[++i];
        out[n++] = c;
    }
    return n;
}

/* ---- Content-Type of the request ---- */

static int parse_content_type(struct isd_mp_parser *p, const char *ct, struct isd_error *err)
{
    if (!ct)
        return bad(err, PFX "the request has no Content-Type, so it is not multipart/form-data");
    const char *end = ct + strlen(ct);
    const char *c = memchr(ct, ';', (size_t)(end - ct));
    if (!c)
        c = end;
    const char *media = ct, *media_end = c;
    trim(&media, &media_end);
    if (!ieq(media, (size_t)(media_end - media), "multipart/form-data")) {
        char quoted[64 + 4];
        isd_err_quote(quoted, ct, (size_t)(end - ct), 64);
        return bad(err, PFX "the Content-Type '%s' is not multipart/form-data", quoted);
    }
    char boundary[2 * ISD_MP_BOUNDARY_MAX + 2];
    size_t blen = 0;
    bool found = false;
    struct mp_param pm;
    int rc;
    while ((rc = next_param(&c, end, &pm)) == PARAM_OK) {
        if (!ieq(pm.key, pm.key_len, "boundary"))
            continue;
        if (found)
            return bad(err, PFX "more than one boundary in Content-Type");
        found = true;
        if (pm.val_len > sizeof boundary) /* unquoting at most halves the length */
            return bad(err, PFX "the boundary in Content-Type must be 1 to %d characters",
                       ISD_MP_BOUNDARY_MAX);
        blen = unquote(&pm, boundary);
    }
    if (rc < 0)
        return bad(err, PFX "malformed parameters in Content-Type");
    if (!found)
        return bad(err, PFX "missing boundary in Content-Type");
    if (blen < 1 || blen > ISD_MP_BOUNDARY_MAX)
        return bad(err, PFX "the boundary in Content-Type must be 1 to %d characters, not %zu",
                   ISD_MP_BOUNDARY_MAX, blen);
    for (size_t i = 0; i < blen; i++)
        if (boundary[i] < 0x20 || boundary[i] > 0x7e)
            return bad(err, PFX "invalid boundary in Content-Type: only printable ASCII");
    if (boundary[blen - 1] == ' ')
        return bad(err, PFX "invalid boundary in Content-Type: it ends with a space");
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary, blen);
    p->delim_len = 4 + blen;
    p->delim[p->delim_len] = '\0';
    /* Horspool's bad-character shifts: how far the next possible delimiter start is when a
       window's last byte is c (the delimiter length when c is not in the delimiter) */
    memset(p->shift, (int)p->delim_len, sizeof p->shift);
    for (size_t j = 0; j + 1 < p->delim_len; j++)
        p->shift[(unsigned char)p->delim[j]] = (unsigned char)(p->delim_len - 1 - j);
    return 0;
}

/* ---- a part's header block ---- */

/* Room for n bytes and a NUL in p->values; NULL when full (decoded values are never longer
 * than the raw block, so only a bug could get there). */
static char *values_room(struct isd_mp_parser *p, size_t n)
{
    if (n >= sizeof p->values - p->values_len)
        return NULL;
    return p->values + p->values_len;
}

/* Seals a value of n bytes written at values_room(): NUL-terminates it and returns it. */
static const char *values_seal(struct isd_mp_parser *p, size_t n)
{
    char *v = p->values + p->values_len;
    v[n] = '\0';
    p->values_len += n + 1;
    return v;
}

static const char *put_param(struct isd_mp_parser *p, const struct mp_param *pm)
{
    char *out = values_room(p, pm->val_len);
    return out ? values_seal(p, unquote(pm, out)) : NULL;
}

static const char *put_text(struct isd_mp_parser *p, const char *s, size_t n)
{
    char *out = values_room(p, n);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    return values_seal(p, n);
}

/* RFC 5987 ext-value: charset'language'percent-encoded. UTF-8 is kept as is, ISO-8859-1 is
 * converted to UTF-8. NULL for another charset, a bad escape or a NUL byte. */
static const char *put_ext_value(struct isd_mp_parser *p, const struct mp_param *pm)
{
    const char *s = pm->val, *end = s + pm->val_len;
    const char *q1 = memchr(s, '\'', pm->val_len);
    if (!q1)
        return NULL;
    const char *q2 = memchr(q1 + 1, '\'', (size_t)(end - q1 - 1));
    if (!q2)
        return NULL;
    bool latin1;
    if (ieq(s, (size_t)(q1 - s), "utf-8"))
        latin1 = false;
    else if (ieq(s, (size_t)(q1 - s), "iso-8859-1"))
        latin1 = true;
    else
        return NULL;
    s = q2 + 1;
    /* every output byte comes from at least as many input bytes (%XX -> 2 in ISO-8859-1) */
    char *out = values_room(p, (size_t)(end - s));
    if (!out)
        return NULL;
    size_t n = 0;
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c == '%') {
            if (end - s < 3 || hex_value(s[1]) < 0 || hex_value(s[2]) < 0)
                return NULL;
            c = (unsigned char)(hex_value(s[1]) * 16 + hex_value(s[2]));
            s += 3;
        } else {
            if (latin1 && c >= 0x80) /* raw 8-bit is not an attr-char */
                return NULL;
            s++;
        }
        if (c == 0)
            return NULL;
        if (latin1 && c >= 0x80) {
            out[n++] = (char)(0xc0 | (c >> 6));
            out[n++] = (char)(0x80 | (c & 0x3f));
        } else {
            out[n++] = (char)c;
        }
    }
    return values_seal(p, n);
}

static int parse_disposition(struct isd_mp_parser *p, const char *v, const char *end,
                             struct isd_mp_part *part, struct isd_error *err)
{
    const char *c = memchr(v, ';', (size_t)(end - v));
    if (!c)
        c = end;
    const char *type = v, *type_end = c;
    trim(&type, &type_end);
    if (!ieq(type, (size_t)(type_end - type), "form-data"))
        return bad(err, PFX "part %d: Content-Disposition is not form-data", p->n_parts);
    struct mp_param pm, filename = {0}, filename_ext = {0};
    bool has_name = false, has_filename = false, has_filename_ext = false;
    int rc;
    while ((rc = next_param(&c, end, &pm)) == PARAM_OK) {
        bool *seen = NULL;
        if (ieq(pm.key, pm.key_len, "name"))
            seen = &has_name;
        else if (ieq(pm.key, pm.key_len, "filename"))
            seen = &has_filename;
        else if (ieq(pm.key, pm.key_len, "filename*"))
            seen = &has_filename_ext;
        else
            continue;
        if (*seen)
            return bad(err, PFX "part %d: more than one %.*s parameter in Content-Disposition",
                       p->n_parts, (int)pm.key_len, pm.key);
        *seen = true;
        if (seen == &has_name)
            part->name = put_param(p, &pm);
        else if (seen == &has_filename)
            filename = pm;
        else
            filename_ext = pm;
    }
    if (rc == PARAM_UNTERMINATED)
        return bad(err, PFX "part %d: unterminated quoted string in Content-Disposition",
                   p->n_parts);
    if (rc < 0)
        return bad(err, PFX "part %d: malformed Content-Disposition parameters", p->n_parts);
    if (has_filename_ext) {
        size_t mark = p->values_len;
        part->filename = put_ext_value(p, &filename_ext);
        if (!part->filename) {
            p->values_len = mark;
            if (!has_filename)
                return bad(err,
                           PFX "part %d: unsupported or malformed filename* in "
                               "Content-Disposition",
                           p->n_parts);
        }
    }
    if (!part->filename && has_filename)
        part->filename = put_param(p, &filename);
    if ((has_name && !part->name) || ((has_filename || has_filename_ext) && !part->filename))
        return bad(err, PFX "part %d: part headers too large", p->n_parts); /* unreachable */
    return 0;
}

/* Parses header[0..len) (complete lines, each ending with '\n') into *part. */
static int parse_headers(struct isd_mp_parser *p, size_t len, struct isd_mp_part *part,
                         struct isd_error *err)
{
    char *h = p->header;
    for (size_t i = 1; i < len; i++) { /* obsolete line folding: join with spaces */
        if (h[i - 1] == '\n' && is_ws(h[i])) {
            h[i - 1] = ' ';
            if (i >= 2 && h[i - 2] == '\r')
                h[i - 2] = ' ';
        }
    }
    p->values_len = 0;
    bool has_disposition = false, has_type = false;
    size_t pos = 0;
    while (pos < len) {
        const char *line = h + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        if (n && line[n - 1] == '\r')
            n--;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)line[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return bad(err, PFX "part %d: control character in the part headers", p->n_parts);
        }
        const char *colon = memchr(line, ':', n);
        const char *key = line, *key_end = colon;
        if (colon)
            trim(&key, &key_end);
        if (!colon || key == key_end)
            return bad(err, PFX "part %d: malformed header line (expected 'Name: value')",
                       p->n_parts);
        const char *v = colon + 1, *v_end = line + n;
        trim(&v, &v_end);
        size_t key_len = (size_t)(key_end - key);
        if (ieq(key, key_len, "content-disposition")) {
            if (has_disposition)
                return bad(err, PFX "part %d: more than one Content-Disposition", p->n_parts);
            has_disposition = true;
            int rc = parse_disposition(p, v, v_end, part, err);
            if (rc < 0)
                return rc;
        } else if (ieq(key, key_len, "content-type")) {
            if (has_type)
                return bad(err, PFX "part %d: more than one Content-Type", p->n_parts);
            has_type = true;
            part->content_type = put_text(p, v, (size_t)(v_end - v));
            if (!part->content_type)
                return bad(err, PFX "part %d: part headers too large", p->n_parts);
        }
    }
    if (!part->name)
        return bad(err, PFX "part %d: no name in Content-Disposition", p->n_parts);
    return 0;
}

/* ---- body ---- */

static int callback_failed(struct isd_mp_parser *p, int rc, struct isd_error *err)
{
    int id = -rc;
    if (id <= 0 || id >= ISD_E__COUNT)
        id = ISD_E_INTERNAL;
    if (id == ISD_E_NOMEM)
        return isd_err_set(err, ISD_E_NOMEM, NULL, PFX "part %d: out of memory", p->n_parts);
    return isd_err_set(err, (enum isd_err_id)id, NULL, PFX "part %d: refused by the receiver (%s)",
                       p->n_parts, isd_err_name((enum isd_err_id)id));
}

static int no_start(struct isd_error *err, bool over_limit)
{
    if (over_limit)
        return bad(err,
                   PFX "the body does not start with the boundary (none in the first %d bytes)",
                   ISD_MP_PREAMBLE_MAX);
    return bad(err, PFX "the body does not start with the boundary");
}

/* Hands body bytes to part_data, or counts them as preamble before the first boundary. */
static int deliver(struct isd_mp_parser *p, const char *s, size_t n, struct isd_error *err)
{
    if (n == 0)
        return 0;
    if (!p->in_part) {
        p->preamble_len += n;
        if (p->preamble_len > ISD_MP_PREAMBLE_MAX)
            return no_start(err, true);
        return 0;
    }
    if (!p->cb->part_data)
        return 0;
    int rc = p->cb->part_data(p->ctx, s, n);
    return rc < 0 ? callback_failed(p, rc, err) : 0;
}

/* The held-back bytes turned out to be data: deliver them (from the delimiter itself). */
static int flush_held(struct isd_mp_parser *p, struct isd_error *err)
{
    const char *s = p->delim;
    size_t n = p->match;
    if (p->virtual_crlf) { /* the assumed CRLF was never in the body */
        s += 2;
        n -= 2;
        p->virtual_crlf = false;
    }
    p->match = 0;
    return deliver(p, s, n, err);
}

/* The next '\r' in q..end, or NULL: a short look first (dense data), then memchr. */
static const char *next_cr(const char *q, const char *end)
{
    const char *stop = end - q > 16 ? q + 16 : end;
    for (; q < stop; q++)
        if (*q == '\r')
            return q;
    return q < end ? memchr(q, '\r', (size_t)(end - q)) : NULL;
}

/* A delimiter (k == delim_len) or its first k bytes (ending the chunk) start at q. */
static int delim_at(struct isd_mp_parser *p, const char *s, const char *q, size_t k, size_t *used,
                    struct isd_error *err)
{
    *used = (size_t)(q - s) + k;
    p->match = k;
    if (k == p->delim_len)
        p->state = MP_DELIM_AFTER;
    return deliver(p, s, (size_t)(q - s), err);
}

/* Scans s[0..n) (preamble or part data, nothing held back) up to a delimiter or a prefix of
 * one that ends the chunk. memchr jumps between candidate '\r'; a candidate whose window's
 * last byte rules it out also rules out the next shift[that byte] - 1 starts (Horspool), so
 * runs of CR or CRLF are skipped as fast as plain data. */
static int scan_body(struct isd_mp_parser *p, const char *s, size_t n, size_t *used,
                     struct isd_error *err)
{
    const char *end = s + n, *d = p->delim;
    size_t len = p->delim_len;
    const char *q = memchr(s, '\r', n);
    while (q) {
        size_t avail = (size_t)(end - q);
        if (avail >= len) {
            unsigned char last = (unsigned char)q[len - 1];
            if (last == (unsigned char)d[len - 1] && memcmp(q, d, len - 1) == 0)
                return delim_at(p, s, q, len, used, err);
            q += p->shift[last];
        } else {
            if (memcmp(q, d, avail) == 0)
                return delim_at(p, s, q, avail, used, err);
            q++;
        }
        q = next_cr(q, end);
    }
    *used = n;
    return deliver(p, s, n, err);
}

/* Continues a partial delimiter match held back from an earlier chunk. */
static int match_more(struct isd_mp_parser *p, const char *s, size_t n, size_t *used,
                      struct isd_error *err)
{
    size_t i = 0;
    while (i < n && p->match < p->delim_len) {
        if (s[i] != p->delim[p->match]) {
            *used = i; /* the failing byte is scanned again */
            return flush_held(p, err);
        }
        p->match++;
        i++;
    }
    if (p->match == p->delim_len)
        p->state = MP_DELIM_AFTER;
    *used = i;
    return 0;
}

/* A delimiter is confirmed: the current part (if any) ends. */
static int end_part(struct isd_mp_parser *p, struct isd_error *err)
{
    p->match = 0;
    p->virtual_crlf = false;
    if (!p->in_part)
        return 0;
    p->in_part = false;
    if (!p->cb->part_end)
        return 0;
    int rc = p->cb->part_end(p->ctx);
    return rc < 0 ? callback_failed(p, rc, err) : 0;
}

static int begin_headers(struct isd_mp_parser *p, struct isd_error *err)
{
    if (p->n_parts >= ISD_MP_MAX_PARTS)
        return bad(err, PFX "more than %d parts", ISD_MP_MAX_PARTS);
    p->n_parts++;
    p->header_len = 0;
    p->line_start = 0;
    p->state = MP_HEADERS;
    return 0;
}

/* The byte after a whole delimiter: '-' (maybe closing), padding, CR or LF end the boundary;
 * anything else makes the delimiter data. */
static int delim_after(struct isd_mp_parser *p, char c, size_t *used, struct isd_error *err)
{
    *used = 1;
    switch (c) {
    case '-':
        p->state = MP_DELIM_DASH;
        return 0;
    case ' ':
    case '\t':
        p->state = MP_PADDING;
        return end_part(p, err);
    case '\r':
        p->state = MP_PADDING_LF;
        return end_part(p, err);
    case '\n': {
        int rc = end_part(p, err);
        return rc < 0 ? rc : begin_headers(p, err);
    }
    default:
        *used = 0;
        p->state = p->in_part ? MP_DATA : MP_PREAMBLE;
        return flush_held(p, err);
    }
}

static int delim_dash(struct isd_mp_parser *p, char c, size_t *used, struct isd_error *err)
{
    if (c == '-') {
        *used = 1;
        p->state = MP_EPILOGUE;
        return end_part(p, err);
    }
    *used = 0;
    p->state = p->in_part ? MP_DATA : MP_PREAMBLE;
    int rc = flush_held(p, err);
    return rc < 0 ? rc : deliver(p, "-", 1, err);
}

static int padding(struct isd_mp_parser *p, char c, size_t *used, struct isd_error *err)
{
    *used = 1;
    if (p->state == MP_PADDING && is_ws(c))
        return 0;
    if (p->state == MP_PADDING && c == '\r') {
        p->state = MP_PADDING_LF;
        return 0;
    }
    if (c == '\n')
        return begin_headers(p, err);
    return bad(err,
               PFX "malformed boundary line before part %d (only spaces may follow the "
                   "boundary)",
               p->n_parts + 1);
}

/* The header block header[0..len) is complete: report the part and start its data. */
static int start_part(struct isd_mp_parser *p, size_t len, struct isd_error *err)
{
    struct isd_mp_part part = {0};
    int rc = parse_headers(p, len, &part, err);
    if (rc < 0)
        return rc;
    p->in_part = true;
    p->match = 0;
    p->state = MP_DATA;
    if (!p->cb->part_begin)
        return 0;
    rc = p->cb->part_begin(p->ctx, &part);
    return rc < 0 ? callback_failed(p, rc, err) : 0;
}

/* Collects header lines (CRLF or bare LF) until the empty line. */
static int headers(struct isd_mp_parser *p, const char *s, size_t n, size_t *used,
                   struct isd_error *err)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t take = nl ? (size_t)(nl - (s + i)) + 1 : n - i;
        if (take > sizeof p->header - p->header_len)
            return bad(err, PFX "part %d: part headers too large (over %d bytes)", p->n_parts,
                       ISD_MP_HEADER_MAX);
        memcpy(p->header + p->header_len, s + i, take);
        p->header_len += take;
        i += take;
        if (!nl)
            break;
        size_t line = p->header_len - 1 - p->line_start;
        if (line == 0 || (line == 1 && p->header[p->line_start] == '\r')) {
            *used = i;
            return start_part(p, p->line_start, err);
        }
        p->line_start = p->header_len;
    }
    *used = i;
    return 0;
}

/* ---- public ---- */

static const struct isd_mp_callbacks no_callbacks = {0};

int isd_mp_parser_init(struct isd_mp_parser *p, const char *content_type,
                       const struct isd_mp_callbacks *cb, void *ctx, struct isd_error *err)
{
    p->cb = cb ? cb : &no_callbacks;
    p->ctx = ctx;
    p->state = MP_FAILED;
    p->failed_rc = -ISD_E_BAD_BODY;
    p->delim_len = 0;
    p->match = 0;
    p->virtual_crlf = false;
    p->in_part = false;
    p->preamble_len = 0;
    p->n_parts = 0;
    p->header_len = 0;
    p->line_start = 0;
    p->values_len = 0;
    int rc = parse_content_type(p, content_type, err);
    if (rc < 0)
        return rc;
    p->state = MP_PREAMBLE;
    p->match = 2; /* the first line may start with "--" directly */
    p->virtual_crlf = true;
    return 0;
}

static int failed_again(struct isd_mp_parser *p, struct isd_error *err)
{
    return isd_err_set(err, (enum isd_err_id) - p->failed_rc, NULL,
                       PFX "the parser already failed on this body");
}

int isd_mp_parser_feed(struct isd_mp_parser *p, const void *data, size_t n, struct isd_error *err)
{
    if (p->state == MP_FAILED)
        return failed_again(p, err);
    const char *s = data;
    size_t i = 0;
    while (i < n) {
        size_t used = 0;
        int rc = 0;
        switch (p->state) {
        case MP_PREAMBLE:
        case MP_DATA:
            if (p->match)
                rc = match_more(p, s + i, n - i, &used, err);
            else
                rc = scan_body(p, s + i, n - i, &used, err);
            break;
        case MP_DELIM_AFTER:
            rc = delim_after(p, s[i], &used, err);
            break;
        case MP_DELIM_DASH:
            rc = delim_dash(p, s[i], &used, err);
            break;
        case MP_PADDING:
        case MP_PADDING_LF:
            rc = padding(p, s[i], &used, err);
            break;
        case MP_HEADERS:
            rc = headers(p, s + i, n - i, &used, err);
            break;
        case MP_EPILOGUE:
            used = n - i;
            break;
        default:
            rc = isd_err_set(err, ISD_E_INTERNAL, NULL, PFX "parser in a bad state");
            break;
        }
        if (rc < 0) {
            p->state = MP_FAILED;
            p->failed_rc = rc;
            return rc;
        }
        i += used;
    }
    return 0;
}

int isd_mp_parser_finish(struct isd_mp_parser *p, struct isd_error *err)
{
    int rc;
    if (p->state == MP_EPILOGUE)
        return 0;
    if (p->state == MP_FAILED)
        return failed_again(p, err);
    if (p->n_parts == 0 && !p->in_part && p->preamble_len > 0 &&
        (p->state == MP_PREAMBLE || p->state == MP_DELIM_AFTER || p->state == MP_DELIM_DASH))
        rc = no_start(err, false);
    else
        rc = bad(err, PFX "the body ended before the closing boundary (truncated upload or a "
                          "boundary that never closes)");
    p->state = MP_FAILED;
    p->failed_rc = rc;
    return rc;
}

void isd_mp_parser_release(struct isd_mp_parser *p)
{
    p->state = MP_FAILED;
    p->failed_rc = -ISD_E_INTERNAL;
    p->in_part = false;
}
