/*
 * Text cleaning of openai/CLIP simple_tokenizer.py without ftfy (see tok.h):
 *     text = whitespace_clean(html.unescape(html.unescape(text)).strip()).lower()
 * on Unicode code points, with Python 3.11's semantics taken from generated tables
 * (tok_tables.c): html.unescape's full HTML5 entity table and numeric-reference rules,
 * str.strip()'s whitespace, the regex module's \s, and str.lower() including U+0130 and the
 * Final_Sigma rule.
 */
#include "engine/tok/tok_int.h"

#include <string.h>

size_t isd_tok_utf8_decode(const char *s, size_t len, uint32_t *out, size_t *n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < len) {
        uint32_t c = p[i], min;
        size_t extra;
        if (c < 0x80) {
            out[k++] = c;
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            c &= 0x1f, extra = 1, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            c &= 0x0f, extra = 2, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            c &= 0x07, extra = 3, min = 0x10000;
        } else {
            return i + 1;
        }
        if (len - i <= extra)
            return i + 1;
        for (size_t j = 1; j <= extra; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return i + 1;
            c = c << 6 | (p[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return i + 1;
        out[k++] = c;
        i += extra + 1;
    }
    *n = k;
    return 0;
}

size_t isd_tok_utf8_put(uint32_t c, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xc0 | c >> 6);
        o[1] = (unsigned char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xe0 | c >> 12);
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | c >> 18);
    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (c & 0x3f));
    return 4;
}

static int in_ranges(const struct isd_tok_range *r, size_t count, uint32_t c)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < r[mid].first)
            hi = mid;
        else if (c > r[mid].last)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int in_list(const uint32_t *list, size_t count, uint32_t c)
{
    for (size_t i = 0; i < count; i++)
        if (list[i] == c)
            return 1;
    return 0;
}

/* ---- html.unescape ---------------------------------------------------------------------- */

static int is_digit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(uint32_t c)
{
    if (is_digit(c))
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* html._replace_charref for a numeric reference (num saturated above 0x10ffff) */
static size_t numeric_ref(uint32_t num, uint32_t *out)
{
    size_t lo = 0, hi = isd_tok_invalid_charref_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (isd_tok_invalid_charrefs[mid].num == num) {
            out[0] = isd_tok_invalid_charrefs[mid].cp;
            return 1;
        }
        if (isd_tok_invalid_charrefs[mid].num < num)
            lo = mid + 1;
        else
            hi = mid;
    }
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) {
        out[0] = 0xfffd;
        return 1;
    }
    if (in_ranges(isd_tok_invalid_codepoints, isd_tok_invalid_codepoint_count, num))
        return 0;
    out[0] = num;
    return 1;
}

/* The entity whose name is exactly name[0..len) (ASCII), or NULL. */
static const struct isd_tok_entity *find_entity(const uint32_t *name, size_t len)
{
    char key[40];
    if (len >= sizeof key)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (name[i] >= 0x80)
            return NULL;
        key[i] = (char)name[i];
    }
    key[len] = '\0';
    size_t lo = 0, hi = isd_tok_entity_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(key, isd_tok_entities[mid].name);
        if (cmp == 0)
            return &isd_tok_entities[mid];
        if (cmp > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static size_t put_entity(const struct isd_tok_entity *e, uint32_t *out)
{
    out[0] = e->cp[0];
    if (e->cp[1] == 0)
        return 1;
    out[1] = e->cp[1];
    return 2;
}

/* Matches html's _charref at in[i] == '&':
 *   &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
 * On a match writes the replacement to out, sets *used to the match length and returns the
 * number of code points written; returns -1 when nothing matches at i. */
static long charref(const uint32_t *in, size_t n, size_t i, uint32_t *out, size_t *used)
{
    size_t j = i + 1;
    if (j < n && in[j] == '#') {
        j++;
        int hex = j < n && (in[j] == 'x' || in[j] == 'X');
        if (hex)
            j++;
        size_t start = j;
        uint32_t num = 0;
        while (j < n && (hex ? hex_value(in[j]) >= 0 : is_digit(in[j]))) {
            uint32_t dv = (uint32_t)(hex ? hex_value(in[j]) : (int)(in[j] - '0'));
            num = num > 0x10ffff ? num : num * (hex ? 16u : 10u) + dv;
            j++;
        }
        if (j == start)
            return -1;
        if (j < n && in[j] == ';')
            j++;
        *used = j - i;
        return (long)numeric_ref(num, out);
    }
    size_t start = j;
    while (j < n && j - start < 32) {
        uint32_t c = in[j];
        if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
            c == ';')
            break;
        j++;
    }
    if (j == start)
        return -1;
    if (j < n && in[j] == ';')
        j++;
    *used = j - i;
    size_t len = j - start;
    const uint32_t *name = in + start;
    const struct isd_tok_entity *e = find_entity(name, len);
    if (e)
        return (long)put_entity(e, out);
    /* the longest prefix (at least 2 characters) that is an entity, then the rest as is */
    for (size_t x = len - 1; x > 1; x--) {
        e = find_entity(name, x);
        if (e) {
            size_t k = put_entity(e, out);
            memcpy(out + k, name + x, (len - x) * sizeof *out);
            return (long)(k + len - x);
        }
    }
    out[0] = '&';
    memcpy(out + 1, name, len * sizeof *out);
    return (long)(len + 1);
}

size_t isd_tok_html_unescape(const uint32_t *in, size_t n, uint32_t *out)
{
    size_t k = 0, i = 0;
    while (i < n) {
        size_t used;
        long w;
        if (in[i] == '&' && (w = charref(in, n, i, out + k, &used)) >= 0) {
            k += (size_t)w;
            i += used;
        } else {
            out[k++] = in[i++];
        }
    }
    return k;
}

/* ---- whitespace and case ---------------------------------------------------------------- */

static int is_py_space(uint32_t c)
{
    return in_list(isd_tok_isspace, isd_tok_isspace_count, c);
}

static int is_re_space(uint32_t c)
{
    return in_list(isd_tok_re_space, isd_tok_re_space_count, c);
}

static uint32_t lower1(uint32_t c)
{
    size_t lo = 0, hi = isd_tok_lower_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct isd_tok_lower_run *r = &isd_tok_lower_runs[mid];
        if (c < r->first)
            hi = mid;
        else if (c > r->last)
            lo = mid + 1;
        else
            return (c - r->first) % r->stride == 0 ? (uint32_t)((int32_t)c + r->delta) : c;
    }
    return c;
}

/* CPython's handle_capital_sigma: U+03A3 at i lowercases to final U+03C2 when preceded by a
 * cased letter and not followed by one, skipping case-ignorable code points either way. */
static int final_sigma(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i;
    uint32_t c = 0;
    int found = 0;
    while (j > 0) {
        c = s[--j];
        if (!in_ranges(isd_tok_case_ignorable, isd_tok_case_ignorable_count, c)) {
            found = 1;
            break;
        }
    }
    if (!found || !in_ranges(isd_tok_cased, isd_tok_cased_count, c))
        return 0;
    for (j = i + 1; j < n; j++) {
        c = s[j];
        if (!in_ranges(isd_tok_case_ignorable, isd_tok_case_ignorable_count, c))
            return !in_ranges(isd_tok_cased, isd_tok_cased_count, c);
    }
    return 1;
}

size_t isd_tok_lower(const uint32_t *in, size_t n, uint32_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c == 0x130) { /* LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + COMBINING DOT ABOVE */
            out[k++] = 'i';
            out[k++] = 0x307;
        } else if (c == 0x3a3) {
            out[k++] = final_sigma(in, n, i) ? 0x3c2 : 0x3c3;
        } else {
            out[k++] = lower1(c);
        }
    }
    return k;
}

/* str.strip(): [*start, *end) without leading and trailing isspace() code points */
static void strip(const uint32_t *s, size_t *start, size_t *end)
{
    while (*start < *end && is_py_space(s[*start]))
        (*start)++;
    while (*end > *start && is_py_space(s[*end - 1]))
        (*end)--;
}

size_t isd_tok_clean(uint32_t *in, size_t n, uint32_t *out)
{
    /* html.unescape twice: in -> out -> in (neither grows the text) */
    size_t m = isd_tok_html_unescape(in, n, out);
    m = isd_tok_html_unescape(out, m, in);
    size_t start = 0, end = m;
    strip(in, &start, &end);
    /* whitespace_clean: runs of \s -> one space, then strip() again */
    size_t k = 0;
    for (size_t i = start; i < end; i++) {
        if (is_re_space(in[i])) {
            if (i == start || !is_re_space(in[i - 1]))
                out[k++] = ' ';
        } else {
            out[k++] = in[i];
        }
    }
    start = 0;
    end = k;
    strip(out, &start, &end);
    /* lower() from out[start..end) into in: needs up to twice the room, so go through out */
    size_t len = end - start;
    memmove(in, out + start, len * sizeof *in);
    return isd_tok_lower(in, len, out);
}
