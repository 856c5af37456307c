#include "text/text.h"

#include "err/err.h"

#include <string.h>

uint32_t isd_utf8_next(const char *s, size_t n, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = *i;
    unsigned char c = u[k];
    uint32_t cp;
    size_t len;
    uint32_t min;
    if (c < 0x80) {
        *i = k + 1;
        return c;
    } else if ((c & 0xE0) == 0xC0) {
        cp = c & 0x1F;
        len = 2;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        cp = c & 0x0F;
        len = 3;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        cp = c & 0x07;
        len = 4;
        min = 0x10000;
    } else {
        *i = k + 1;
        return 0xFFFD;
    }
    if (k + len > n) {
        *i = k + 1;
        return 0xFFFD;
    }
    for (size_t j = 1; j < len; j++) {
        if ((u[k + j] & 0xC0) != 0x80) {
            *i = k + 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (u[k + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *i = k + 1;
        return 0xFFFD;
    }
    *i = k + len;
    return cp;
}

bool isd_utf8_count(const char *s, size_t n, size_t *count)
{
    size_t i = 0, c = 0;
    while (i < n) {
        size_t before = i;
        unsigned char b = (unsigned char)s[i];
        uint32_t cp = isd_utf8_next(s, n, &i);
        /* U+FFFD is valid when actually encoded (EF BF BD, 3 bytes). */
        if (cp == 0xFFFD && !(b == 0xEF && i - before == 3))
            return false;
        c++;
    }
    if (count)
        *count = c;
    return true;
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t isd_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

static size_t b64_encode(char *dst, const unsigned char *p, size_t n, const char *alpha, bool pad)
{
    char *d = dst;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        d[0] = alpha[v >> 18];
        d[1] = alpha[(v >> 12) & 63];
        d[2] = alpha[(v >> 6) & 63];
        d[3] = alpha[v & 63];
        d += 4;
    }
    size_t rest = n - i;
    if (rest) {
        uint32_t v = (uint32_t)p[i] << 16 | (rest == 2 ? (uint32_t)p[i + 1] << 8 : 0);
        *d++ = alpha[v >> 18];
        *d++ = alpha[(v >> 12) & 63];
        if (rest == 2)
            *d++ = alpha[(v >> 6) & 63];
        else if (pad)
            *d++ = '=';
        if (pad)
            *d++ = '=';
    }
    return (size_t)(d - dst);
}

size_t isd_base64_encode_to(char *dst, const void *data, size_t n)
{
    return b64_encode(dst, data, n, b64_std, true);
}

static int b64_append(struct isd_buf *out, const void *data, size_t n, const char *alpha, bool pad)
{
    if (n > (SIZE_MAX / 4) * 3 - 3)
        return -ISD_E_TOO_LARGE;
    int rc = isd_buf_reserve(out, isd_base64_encoded_len(n));
    if (rc < 0)
        return rc;
    out->len += b64_encode(out->data + out->len, data, n, alpha, pad);
    out->data[out->len] = '\0';
    return 0;
}

int isd_base64_encode(struct isd_buf *out, const void *data, size_t n)
{
    return b64_append(out, data, n, b64_std, true);
}

int isd_base64url_encode(struct isd_buf *out, const void *data, size_t n)
{
    return b64_append(out, data, n, b64_url, false);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int isd_base64_decode(struct isd_buf *out, const char *s, size_t n)
{
    /* padding: none (URL-safe style), or "=" / "==" completing the last 4-character group */
    size_t pad = 0;
    while (pad < n && s[n - 1 - pad] == '=')
        pad++;
    size_t m = n - pad;
    if (pad > 2 || m % 4 == 1 || (pad > 0 && (n % 4 != 0 || m % 4 != 4 - pad)))
        return -ISD_E_INVALID_VALUE;
    size_t decoded = m / 4 * 3 + (m % 4 == 2 ? 1 : m % 4 == 3 ? 2 : 0);
    int rc = isd_buf_reserve(out, decoded);
    if (rc < 0)
        return rc;
    unsigned char *d = (unsigned char *)out->data + out->len;
    uint32_t acc = 0;
    int bits = 0;
    size_t w = 0;
    for (size_t i = 0; i < m; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            out->data[out->len] = '\0'; /* undo what was written past len */
            return -ISD_E_INVALID_VALUE;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[w++] = (unsigned char)(acc >> bits);
        }
    }
    out->len += w;
    out->data[out->len] = '\0';
    return 0;
}

void isd_hex_to(char *dst, const void *data, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[p[i] >> 4];
        dst[2 * i + 1] = digits[p[i] & 15];
    }
    dst[2 * n] = '\0';
}

int isd_hex_encode(struct isd_buf *out, const void *data, size_t n)
{
    if (n > SIZE_MAX / 2 - 1)
        return -ISD_E_TOO_LARGE;
    int rc = isd_buf_reserve(out, 2 * n);
    if (rc < 0)
        return rc;
    isd_hex_to(out->data + out->len, data, n);
    out->len += 2 * n;
    return 0;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool isd_str_ieq(struct isd_str a, const char *b)
{
    size_t bn = strlen(b);
    if (a.n != bn)
        return false;
    for (size_t i = 0; i < bn; i++)
        if (ascii_lower(a.p[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

bool isd_str_eq(struct isd_str a, const char *b)
{
    size_t bn = strlen(b);
    return a.n == bn && memcmp(a.p, b, bn) == 0;
}

struct isd_str isd_str_trim(struct isd_str s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}
