#include "err/err.h"

#include <stdio.h>
#include <string.h>

struct err_row {
    const char *name;
    int status;
    const char *type;
    const char *code;
};

static const struct err_row err_table[ISD_E__COUNT] = {[ISD_OK] = {"ISD_OK", 200, "", NULL},
#define ISD_ERR_ROW_(id, status, type, code) [id] = {#id, status, type, code},
                                                       ISD_ERRORS(ISD_ERR_ROW_)
#undef ISD_ERR_ROW_
};

static const struct err_row *row(enum isd_err_id id)
{
    if ((int)id < 0 || id >= ISD_E__COUNT)
        return &err_table[ISD_E_INTERNAL];
    return &err_table[id];
}

int isd_err_status(enum isd_err_id id)
{
    return row(id)->status;
}

const char *isd_err_type(enum isd_err_id id)
{
    return row(id)->type;
}

const char *isd_err_code(enum isd_err_id id)
{
    return row(id)->code;
}

const char *isd_err_name(enum isd_err_id id)
{
    return row(id)->name;
}

/* Length of the longest prefix of s[0..n) that ends on a UTF-8 character boundary. */
static size_t utf8_floor(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int isd_err_setv(struct isd_error *e, enum isd_err_id id, const char *param, const char *fmt,
                 va_list ap)
{
    e->id = id;
    char p[ISD_ERR_PARAM_MAX];
    p[0] = '\0';
    if (param) { /* `param` may point into `e` itself */
        size_t n = strlen(param);
        if (n >= sizeof p)
            n = utf8_floor(param, sizeof p - 1);
        memcpy(p, param, n);
        p[n] = '\0';
    }
    memcpy(e->param, p, sizeof p);
    int n = vsnprintf(e->message, sizeof e->message, fmt, ap);
    if (n >= (int)sizeof e->message) {
        size_t keep = utf8_floor(e->message, sizeof e->message - 4);
        memcpy(e->message + keep, "...", 4);
    }
    return -(int)id;
}

int isd_err_set(struct isd_error *e, enum isd_err_id id, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = isd_err_setv(e, id, param, fmt, ap);
    va_end(ap);
    return rc;
}

void isd_err_clear(struct isd_error *e)
{
    e->id = ISD_OK;
    e->param[0] = '\0';
    e->message[0] = '\0';
}

void isd_err_quote(char *out, const char *s, size_t len, size_t max)
{
    if (len <= max) {
        memcpy(out, s, len);
        out[len] = '\0';
        return;
    }
    size_t keep = max;
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(out, s, keep);
    memcpy(out + keep, "...", 4);
}
