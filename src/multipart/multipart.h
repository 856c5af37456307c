/*
 * multipart: a streaming multipart/form-data parser (RFC 7578 / RFC 2046) and a form
 * collector with limits, for uploads that must never be held twice in memory.
 *
 * Why our own parser: libmicrohttpd's post processor can only be driven by a live connection,
 * which rules out fuzzing and unit-testing our limits, and it reports malformed bodies as one
 * yes/no. This parser is a resumable state machine fed with arbitrary chunks (byte by byte
 * works), it stores nothing of the body itself, and it reports exactly what went wrong.
 *
 * Parser: isd_mp_parser_init() takes the request's Content-Type header (media type
 * multipart/form-data, any case; the boundary parameter, any case, quoted or not, 1..70
 * printable ASCII characters, no trailing space) and callbacks (each may be NULL):
 *   part_begin(ctx, part)  the part's headers are parsed: name (from Content-Disposition
 *                          form-data; name="..."), filename when given (filename="..." or
 *                          RFC 5987 filename*=UTF-8''..., which wins), content type as sent,
 *                          parameters included (NULL when absent). The strings live until
 *                          the next part_begin or release: callers copy what they keep.
 *   part_data(ctx, p, n)   body bytes of the current part, in order (possibly many calls,
 *                          n > 0); `p` points into the caller's chunk or the parser's state
 *   part_end(ctx)          the part is complete (its closing delimiter was seen)
 * A callback returns 0 or a negative error id to stop parsing (returned by feed(); the parser
 * writes "multipart body: part N: ..." with the id's name into the isd_error).
 * isd_mp_parser_feed() consumes bytes; isd_mp_parser_finish() checks that the closing
 * boundary was seen. After an error, feed() and finish() return the same error again.
 *
 * What is accepted: a preamble before the first delimiter (ignored, at most
 * ISD_MP_PREAMBLE_MAX bytes); the first boundary line without a leading CRLF; transport
 * padding (spaces, tabs) after a boundary; an epilogue after the closing "--" (ignored);
 * header lines ended by CRLF or a bare LF (the delimiter inside the body must be CRLF "--"
 * boundary: a bare LF there is data); folded header lines (joined with spaces); header names
 * in any case; unknown headers and parameters (ignored); parameter values quoted (\" and \\
 * are escapes, any other backslash is kept) or not (an unquoted value runs to the next ';',
 * trimmed). "\r\n--boundary" followed by anything but '-', space, tab, CR or LF is not a
 * delimiter and stays data (as Go's mime/multipart does). Repeated part names are allowed
 * (image[]). Values are not percent-decoded, except filename* (UTF-8 or ISO-8859-1 charset,
 * converted to UTF-8).
 *
 * Errors: -ISD_E_BAD_BODY with a message starting "multipart body: ": a Content-Type that is
 * not multipart/form-data ("... is not multipart/form-data", so the caller can word its own),
 * a missing, duplicate or invalid boundary; a body that does not start with the boundary;
 * a boundary line with bytes other than padding after it; part headers over
 * ISD_MP_HEADER_MAX bytes, with a control character or NUL, a line without a colon, a
 * duplicate Content-Disposition or Content-Type, a disposition other than form-data, a
 * malformed parameter, a part without a name; more than ISD_MP_MAX_PARTS parts; a body that
 * ends before the closing boundary (truncated, or a boundary that never closes).
 *
 * Form collector: an isd_form gathers parts into fields with ceilings: at most `max_files` file
 * parts (beyond that they are counted, not stored), file parts up to `max_file_bytes` each,
 * text parts up to `max_text_bytes` each, all stored bytes up to `max_total_bytes`. A part over
 * a ceiling is not an error here: the field records `overflow = true` and its true size in
 * `size`, stores exactly the first bytes that fit (whatever the chunking) and the API layer
 * words the error. File contents are stored once, in the field's buffer (the only copy of the
 * upload); a big part's buffer grows geometrically (glibc mremaps large blocks: no copy, and
 * untouched pages are not resident). Its callbacks fail only with -ISD_E_NOMEM.
 *
 * Ownership: the caller owns parser and form structs (_init/_release); the parser allocates
 * nothing (its state is ~33 KiB, mostly the header block). Field names, filenames, content
 * types and values are owned by the form. Not thread-safe; one request each.
 *
 *     struct isd_form form;
 *     isd_form_init(&form, &(struct isd_form_limits){...});
 *     struct isd_mp_parser p;
 *     if (isd_mp_parser_init(&p, content_type, &isd_form_callbacks, &form, &err) < 0) ...
 *     while (chunk) if (isd_mp_parser_feed(&p, data, n, &err) < 0) ...
 *     if (isd_mp_parser_finish(&p, &err) < 0) ...
 *     ... form.fields[i] ...
 *     isd_mp_parser_release(&p); isd_form_release(&form);
 */
#ifndef ISD_MULTIPART_H
#define ISD_MULTIPART_H

#include "buf/buf.h"
#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>

#define ISD_MP_MAX_PARTS    256
#define ISD_MP_HEADER_MAX   16384 /* bytes of one part's header block, blank line included */
#define ISD_MP_BOUNDARY_MAX 70    /* RFC 2046 */
#define ISD_MP_PREAMBLE_MAX 16384 /* bytes ignored before the first boundary */

struct isd_mp_part {
    const char *name;         /* form field name (NUL-terminated, may contain any bytes) */
    const char *filename;     /* NULL when the part is not a file */
    const char *content_type; /* NULL when the part declares none */
};

struct isd_mp_callbacks {
    int (*part_begin)(void *ctx, const struct isd_mp_part *part);
    int (*part_data)(void *ctx, const void *data, size_t n);
    int (*part_end)(void *ctx);
};

struct isd_mp_parser; /* defined below: caller-allocated, fields private */

int isd_mp_parser_init(struct isd_mp_parser *p, const char *content_type,
                       const struct isd_mp_callbacks *cb, void *ctx, struct isd_error *err);
int isd_mp_parser_feed(struct isd_mp_parser *p, const void *data, size_t n, struct isd_error *err);
int isd_mp_parser_finish(struct isd_mp_parser *p, struct isd_error *err);
void isd_mp_parser_release(struct isd_mp_parser *p);

/* ---- form collector ---- */

struct isd_form_limits {
    int max_files;          /* file parts stored; more are counted in n_files_seen */
    size_t max_file_bytes;  /* per file part */
    size_t max_text_bytes;  /* per text part */
    size_t max_total_bytes; /* all stored bytes */
};

struct isd_form_field {
    char *name;           /* owned */
    char *filename;       /* owned; NULL for a text part */
    char *content_type;   /* owned; NULL when absent */
    bool is_file;         /* the part had a filename (even an empty one) */
    struct isd_buf value; /* the stored bytes (file contents or text); data is "" when empty
                             and NULL only for a dropped part */
    size_t size;          /* true size of the part, even when not stored */
    bool overflow;        /* not all of the part was stored (its own ceiling, or the form's
                             total: see total_overflow): value holds a prefix only */
    bool dropped;         /* a file part beyond max_files: nothing stored */
};

struct isd_form {
    struct isd_form_limits limits;
    struct isd_form_field *fields; /* in the order received */
    size_t n_fields;
    int n_files_seen;    /* file parts received, stored or not */
    size_t total_stored; /* bytes held */
    bool total_overflow; /* max_total_bytes was reached */
};

void isd_form_init(struct isd_form *f, const struct isd_form_limits *limits);
void isd_form_release(struct isd_form *f);
/* Callbacks that fill an isd_form (ctx = the form). */
extern const struct isd_mp_callbacks isd_form_callbacks;

/* ---- parser state (private to multipart.c; here so callers can own the storage) ---- */
struct isd_mp_parser {
    const struct isd_mp_callbacks *cb;       /* never NULL after init (callbacks inside may be) */
    void *ctx;                               /* passed to the callbacks */
    int state;                               /* enum mp_state in multipart.c */
    int failed_rc;                           /* the error repeated once state is failed */
    char delim[4 + ISD_MP_BOUNDARY_MAX + 1]; /* "\r\n--" + boundary, NUL-terminated */
    size_t delim_len;                        /* 5..74 */
    unsigned char shift[256];                /* Horspool shift per byte value (see scan_body) */
    size_t match;                            /* bytes of delim matched and held back (they are
                                                delim[0..match): emitted from there if data) */
    bool virtual_crlf;              /* match counts the CRLF assumed before the first line */
    bool in_part;                   /* between part_begin and part_end */
    size_t preamble_len;            /* bytes ignored before the first boundary */
    int n_parts;                    /* parts begun: the current part's number */
    size_t header_len;              /* bytes in header */
    size_t line_start;              /* offset in header of the line being received */
    char header[ISD_MP_HEADER_MAX]; /* the current part's raw header block */
    size_t values_len;              /* bytes used in values */
    char values[ISD_MP_HEADER_MAX]; /* decoded name, filename, content type (NUL-ended;
                                       never longer than the raw block they come from) */
};

#endif
