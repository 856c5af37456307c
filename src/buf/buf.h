/*
 * buf: a growable byte buffer with a ceiling fixed at init (curl's dynbuf idea).
 *
 * The caller owns the struct; the buffer owns `data` until isd_buf_detach() hands it over
 * ("you now own the storage") or isd_buf_release() frees it. `data` is always NUL-terminated
 * when non-NULL (the NUL is not counted in `len`), so text can be used as a C string.
 * Appends that would pass `max` fail with -ISD_E_TOO_LARGE and leave the buffer unchanged;
 * allocation failure gives -ISD_E_NOMEM. Size arithmetic is overflow-checked.
 *
 *     struct isd_buf b;
 *     isd_buf_init(&b, 1 << 20);
 *     if (isd_buf_append(&b, p, n) < 0) ...
 *     isd_buf_release(&b);
 *
 * Not thread-safe; one owner at a time.
 */
#ifndef ISD_BUF_H
#define ISD_BUF_H

#include <stddef.h>

struct isd_buf {
    char *data; /* bytes, NUL-terminated when non-NULL; NULL until the first append */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated, not counting the terminating NUL slot */
    size_t max; /* ceiling on len */
};

void isd_buf_init(struct isd_buf *b, size_t max);
void isd_buf_release(struct isd_buf *b);
/* Empties the buffer, keeping its storage. */
void isd_buf_reset(struct isd_buf *b);
/* Makes room for `extra` more bytes without changing len. */
int isd_buf_reserve(struct isd_buf *b, size_t extra);
int isd_buf_append(struct isd_buf *b, const void *p, size_t n);
int isd_buf_append_str(struct isd_buf *b, const char *s);
int isd_buf_printf(struct isd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the storage (may be NULL when empty) and resets the buffer; the caller frees it. */
char *isd_buf_detach(struct isd_buf *b, size_t *len);

#endif
