#include "buf/buf.h"

#include "err/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void isd_buf_init(struct isd_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void isd_buf_release(struct isd_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void isd_buf_reset(struct isd_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int isd_buf_reserve(struct isd_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return -ISD_E_TOO_LARGE;
    size_t need = b->len + extra;
    if (need <= b->cap && b->data)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    if (cap < need)
        cap = need;
    char *p = realloc(b->data, cap + 1);
    if (!p)
        return -ISD_E_NOMEM;
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return 0;
}

int isd_buf_append(struct isd_buf *b, const void *p, size_t n)
{
    int rc = isd_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int isd_buf_append_str(struct isd_buf *b, const char *s)
{
    return isd_buf_append(b, s, strlen(s));
}

int isd_buf_printf(struct isd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ISD_E_INTERNAL;
    int rc = isd_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *isd_buf_detach(struct isd_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
