/*
 * form.c: the form collector, parser callbacks that store parts into an isd_form under its
 * limits (contract in multipart.h). Every stored byte is copied exactly once, from the
 * parser's chunk into the field's buffer.
 */
#include "multipart/multipart.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void isd_form_init(struct isd_form *f, const struct isd_form_limits *limits)
{
    memset(f, 0, sizeof *f);
    f->limits = *limits;
}

void isd_form_release(struct isd_form *f)
{
    for (size_t i = 0; i < f->n_fields; i++) {
        struct isd_form_field *fd = &f->fields[i];
        free(fd->name);
        free(fd->filename);
        free(fd->content_type);
        isd_buf_release(&fd->value);
    }
    free(f->fields);
    f->fields = NULL;
    f->n_fields = 0;
    f->n_files_seen = 0;
    f->total_stored = 0;
    f->total_overflow = false;
}

/* Makes room for one more field. The capacity is implied by n_fields (4, then powers of
 * two), as struct isd_form has no capacity member; the parser caps parts at
 * ISD_MP_MAX_PARTS. */
static int grow_fields(struct isd_form *f)
{
    size_t n = f->n_fields;
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return 0;
    size_t cap = n ? 2 * n : 4;
    struct isd_form_field *p = realloc(f->fields, cap * sizeof *p);
    if (!p)
        return -ISD_E_NOMEM;
    f->fields = p;
    return 0;
}

static int copy_str(char **dst, const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    *dst = malloc(n + 1);
    if (!*dst)
        return -ISD_E_NOMEM;
    memcpy(*dst, s, n + 1);
    return 0;
}

static int form_part_begin(void *ctx, const struct isd_mp_part *part)
{
    struct isd_form *f = ctx;
    if (grow_fields(f) < 0)
        return -ISD_E_NOMEM;
    struct isd_form_field *fd = &f->fields[f->n_fields++];
    memset(fd, 0, sizeof *fd);
    fd->is_file = part->filename != NULL;
    isd_buf_init(&fd->value, fd->is_file ? f->limits.max_file_bytes : f->limits.max_text_bytes);
    if (fd->is_file) {
        if (f->n_files_seen < INT_MAX)
            f->n_files_seen++;
        fd->dropped = f->n_files_seen > f->limits.max_files;
    }
    if (copy_str(&fd->name, part->name) < 0 || copy_str(&fd->filename, part->filename) < 0 ||
        copy_str(&fd->content_type, part->content_type) < 0)
        return -ISD_E_NOMEM;
    if (!fd->dropped && isd_buf_reserve(&fd->value, 0) < 0) /* value.data = "" */
        return -ISD_E_NOMEM;
    return 0;
}

static int form_part_data(void *ctx, const void *data, size_t n)
{
    struct isd_form *f = ctx;
    if (f->n_fields == 0)
        return -ISD_E_INTERNAL;
    struct isd_form_field *fd = &f->fields[f->n_fields - 1];
    fd->size = n > SIZE_MAX - fd->size ? SIZE_MAX : fd->size + n;
    if (fd->dropped)
        return 0;
    size_t room = fd->value.max > fd->value.len ? fd->value.max - fd->value.len : 0;
    size_t total_room = f->limits.max_total_bytes > f->total_stored
                            ? f->limits.max_total_bytes - f->total_stored
                            : 0;
    size_t want = n < room ? n : room;
    size_t take = want < total_room ? want : total_room;
    if (take < want)
        f->total_overflow = true;
    if (take < n)
        fd->overflow = true;
    if (take == 0)
        return 0;
    int rc = isd_buf_append(&fd->value, data, take);
    if (rc < 0)
        return rc;
    f->total_stored += take;
    return 0;
}

static int form_part_end(void *ctx)
{
    struct isd_form *f = ctx;
    return f->n_fields ? 0 : -ISD_E_INTERNAL;
}

const struct isd_mp_callbacks isd_form_callbacks = {
    .part_begin = form_part_begin,
    .part_data = form_part_data,
    .part_end = form_part_end,
};
