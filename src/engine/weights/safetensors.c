/* Safetensors reader: mmap + strict header validation (see weights.h for the rules). */
#include "engine/weights/weights.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct isd_wt_st {
    char *label;                      /* path or label for messages */
    void *map;                        /* our mmap, or NULL when the bytes are the caller's */
    size_t map_len;                   /* bytes mapped */
    const unsigned char *data;        /* start of the data buffer (8 + N) */
    size_t data_len;                  /* bytes of the data buffer */
    struct isd_wt_st_tensor *tensors; /* sorted by name */
    size_t count;
    char *names; /* every tensor name, NUL-terminated, one block */
    char **meta; /* 2 * meta_count strings: key, value, key, value... sorted by key */
    size_t meta_count;
};

static int is_usable(int dt)
{
    return dt == ISD_ENG_DT_F32 || dt == ISD_ENG_DT_F16 || dt == ISD_ENG_DT_BF16;
}

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A JSON integer >= 0, or -1. */
static int64_t json_natural(const json_t *v)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t i = json_integer_value(v);
    return i < 0 ? -1 : (int64_t)i;
}

static int parse_shape(const struct isd_wt_st *st, const char *name, const json_t *shape,
                       struct isd_wt_st_tensor *t, struct isd_eng_error *err)
{
    if (!json_is_array(shape))
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: tensor '%s': \"shape\" is not an array",
                            st->label, name);
    size_t nd = json_array_size(shape);
    if (nd > ISD_WT_MAX_DIMS)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: tensor '%s': %zu dimensions (at most %d supported)", st->label,
                            name, nd, ISD_WT_MAX_DIMS);
    uint64_t numel = 1;
    for (size_t d = 0; d < ISD_WT_MAX_DIMS; d++)
        t->shape[d] = 1;
    for (size_t d = 0; d < nd; d++) {
        int64_t n = json_natural(json_array_get(shape, d));
        if (n < 0)
            return isd_eng_fail(err, ISD_ENG_EFORMAT,
                                "%s: tensor '%s': shape[%zu] is not a non-negative integer",
                                st->label, name, d);
        if (n != 0 && numel > UINT64_MAX / (uint64_t)n)
            return isd_eng_fail(err, ISD_ENG_EFORMAT,
                                "%s: tensor '%s': the shape's element count overflows", st->label,
                                name);
        numel *= (uint64_t)n;
        t->shape[d] = n;
    }
    t->ndim = (int)nd;
    t->numel = numel;
    return 0;
}

static int parse_tensor(struct isd_wt_st *st, const char *name, const json_t *v,
                        struct isd_wt_st_tensor *t, struct isd_eng_error *err)
{
    if (!json_is_object(v))
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: tensor '%s': entry is not an object",
                            st->label, name);
    const char *key;
    json_t *field;
    json_object_foreach((json_t *)v, key, field)
    {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: tensor '%s': unknown field \"%s\"",
                                st->label, name, key);
    }
    const json_t *dtype = json_object_get(v, "dtype");
    const json_t *shape = json_object_get(v, "shape");
    const json_t *offs = json_object_get(v, "data_offsets");
    if (!dtype || !shape || !offs)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: tensor '%s': missing \"%s\"", st->label,
                            name,
                            !dtype   ? "dtype"
                            : !shape ? "shape"
                                     : "data_offsets");
    if (!json_is_string(dtype))
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: tensor '%s': \"dtype\" is not a string",
                            st->label, name);
    int dt = isd_eng_dtype_parse(json_string_value(dtype), json_string_length(dtype));
    if (dt < 0)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: tensor '%s': unknown dtype \"%.32s\"",
                            st->label, name, json_string_value(dtype));
    t->dtype = dt;
    t->usable = is_usable(dt);
    int rc = parse_shape(st, name, shape, t, err);
    if (rc < 0)
        return rc;
    uint64_t esize = isd_eng_dtype_size(dt);
    if (t->numel > UINT64_MAX / esize || t->numel * esize > SIZE_MAX)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: tensor '%s': byte size overflows", st->label,
                            name);
    t->nbytes = (size_t)(t->numel * esize);
    if (!json_is_array(offs) || json_array_size(offs) != 2)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: tensor '%s': \"data_offsets\" is not [begin, end]", st->label,
                            name);
    int64_t begin = json_natural(json_array_get(offs, 0));
    int64_t end = json_natural(json_array_get(offs, 1));
    if (begin < 0 || end < 0 || end < begin)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: tensor '%s': \"data_offsets\" must be integers 0 <= begin <= end",
                            st->label, name);
    if ((uint64_t)end > st->data_len)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: tensor '%s': data_offsets [%lld, %lld) exceed the data buffer "
                            "(%zu bytes; truncated file?)",
                            st->label, name, (long long)begin, (long long)end, st->data_len);
    if ((uint64_t)(end - begin) != t->nbytes)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: tensor '%s': data_offsets span %lld bytes but %s%s holds %zu",
                            st->label, name, (long long)(end - begin), isd_eng_dtype_name(dt),
                            t->ndim ? " shape" : " scalar", t->nbytes);
    t->offset = (size_t)begin;
    t->data = st->data + begin;
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const struct isd_wt_st_tensor *x = *(const struct isd_wt_st_tensor *const *)a;
    const struct isd_wt_st_tensor *y = *(const struct isd_wt_st_tensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct isd_wt_st_tensor *)a)->name,
                  ((const struct isd_wt_st_tensor *)b)->name);
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The tensors must tile [0, data_len) exactly. */
static int check_tiling(struct isd_wt_st *st, struct isd_eng_error *err)
{
    if (st->count == 0) {
        if (st->data_len)
            return isd_eng_fail(err, ISD_ENG_EFORMAT,
                                "%s: %zu data bytes but no tensor describes them", st->label,
                                st->data_len);
        return 0;
    }
    struct isd_wt_st_tensor **order = malloc(st->count * sizeof *order);
    if (!order)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory", st->label);
    for (size_t i = 0; i < st->count; i++)
        order[i] = &st->tensors[i];
    qsort(order, st->count, sizeof *order, cmp_offset);
    size_t expect = 0;
    int rc = 0;
    for (size_t i = 0; i < st->count && rc == 0; i++) {
        const struct isd_wt_st_tensor *t = order[i];
        if (t->offset < expect)
            rc = isd_eng_fail(err, ISD_ENG_EFORMAT,
                              "%s: tensor '%s' (bytes %zu..%zu) overlaps tensor '%s'", st->label,
                              t->name, t->offset, t->offset + t->nbytes, order[i - 1]->name);
        else if (t->offset > expect)
            rc = isd_eng_fail(err, ISD_ENG_EFORMAT,
                              "%s: hole of %zu bytes in the data buffer before tensor '%s' "
                              "(the buffer must be contiguous)",
                              st->label, t->offset - expect, t->name);
        expect = t->offset + t->nbytes;
    }
    if (rc == 0 && expect != st->data_len)
        rc = isd_eng_fail(err, ISD_ENG_EFORMAT,
                          "%s: %zu bytes after the last tensor (the buffer must be contiguous)",
                          st->label, st->data_len - expect);
    free(order);
    return rc;
}

static int parse_metadata(struct isd_wt_st *st, json_t *meta, struct isd_eng_error *err)
{
    if (!json_is_object(meta))
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: \"__metadata__\" is not an object",
                            st->label);
    size_t n = json_object_size(meta);
    st->meta = calloc(2 * n + 1, sizeof *st->meta);
    if (!st->meta)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory", st->label);
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v)
    {
        if (!json_is_string(v))
            return isd_eng_fail(err, ISD_ENG_EFORMAT,
                                "%s: \"__metadata__\" value of \"%.64s\" is not a string",
                                st->label, key);
        char *k = strdup(key), *s = strdup(json_string_value(v));
        st->meta[2 * st->meta_count] = k;
        st->meta[2 * st->meta_count + 1] = s;
        st->meta_count++;
        if (!k || !s)
            return isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory", st->label);
    }
    qsort(st->meta, st->meta_count, 2 * sizeof *st->meta, cmp_meta);
    return 0;
}

static int parse_header(struct isd_wt_st *st, json_t *root, struct isd_eng_error *err)
{
    size_t n = json_object_size(root), names_len = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") != 0)
            names_len += strlen(key) + 1;
    }
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    st->names = malloc(names_len ? names_len : 1);
    if (!st->tensors || !st->names)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory", st->label);
    char *np = st->names;
    json_object_foreach(root, key, v)
    {
        int rc;
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(st, v, err);
        } else {
            struct isd_wt_st_tensor *t = &st->tensors[st->count];
            size_t len = strlen(key);
            memcpy(np, key, len + 1);
            t->name = np;
            np += len + 1;
            rc = parse_tensor(st, t->name, v, t, err);
            st->count++;
        }
        if (rc < 0)
            return rc;
    }
    qsort(st->tensors, st->count, sizeof *st->tensors, cmp_name);
    return check_tiling(st, err);
}

static int parse_bytes(struct isd_wt_st *st, const unsigned char *p, size_t len,
                       struct isd_eng_error *err)
{
    if (len < 8)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: %zu bytes, too short for a safetensors header (truncated?)",
                            st->label, len);
    uint64_t n = read_le64(p);
    if (n > ISD_WT_HEADER_MAX)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: header length %llu exceeds the %u-byte limit (not a "
                            "safetensors file?)",
                            st->label, (unsigned long long)n, ISD_WT_HEADER_MAX);
    if (n > len - 8)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: header length %llu exceeds the file (%zu bytes; truncated?)",
                            st->label, (unsigned long long)n, len);
    if (n < 2 || p[8] != '{')
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: the header is not a JSON object", st->label);
    st->data = p + 8 + n;
    st->data_len = len - 8 - (size_t)n;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory parsing the header",
                                st->label);
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: invalid JSON header: %s (line %d, column %d)", st->label,
                            jerr.text, jerr.line, jerr.column);
    }
    int rc = 0;
    if (!json_is_object(root))
        rc = isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: the header is not a JSON object", st->label);
    else
        rc = parse_header(st, root, err);
    json_decref(root);
    return rc;
}

static struct isd_wt_st *st_new(const char *label)
{
    struct isd_wt_st *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->label = strdup(label ? label : "(memory)");
    if (!st->label) {
        free(st);
        return NULL;
    }
    return st;
}

int isd_wt_st_parse(const void *buf, size_t len, const char *label, struct isd_wt_st **out,
                    struct isd_eng_error *err)
{
    *out = NULL;
    struct isd_wt_st *st = st_new(label);
    if (!st)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory");
    int rc = parse_bytes(st, buf, len, err);
    if (rc < 0) {
        isd_wt_st_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

int isd_wt_st_open(const char *path, struct isd_wt_st **out, struct isd_eng_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: file too large to map", path);
    }
    size_t len = (size_t)sb.st_size;
    if (len < 8) {
        close(fd);
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: %zu bytes, too short for a safetensors header (truncated?)", path,
                            len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return isd_eng_fail(err, e == ENOMEM ? ISD_ENG_ENOMEM : ISD_ENG_EIO, "%s: mmap: %s", path,
                            strerror(e));
    struct isd_wt_st *st = st_new(path);
    if (!st) {
        munmap(map, len);
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory");
    }
    st->map = map;
    st->map_len = len;
    int rc = parse_bytes(st, map, len, err);
    if (rc < 0) {
        isd_wt_st_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void isd_wt_st_free(struct isd_wt_st *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->map_len);
    if (st->meta)
        for (size_t i = 0; i < 2 * st->meta_count + 1; i++)
            free(st->meta[i]);
    free(st->meta);
    free(st->tensors);
    free(st->names);
    free(st->label);
    free(st);
}

const char *isd_wt_st_label(const struct isd_wt_st *st)
{
    return st->label;
}

size_t isd_wt_st_count(const struct isd_wt_st *st)
{
    return st->count;
}

const struct isd_wt_st_tensor *isd_wt_st_at(const struct isd_wt_st *st, size_t i)
{
    return i < st->count ? &st->tensors[i] : NULL;
}

const struct isd_wt_st_tensor *isd_wt_st_find(const struct isd_wt_st *st, const char *name)
{
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->tensors[mid].name);
        if (c == 0)
            return &st->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *isd_wt_st_meta(const struct isd_wt_st *st, const char *key)
{
    size_t lo = 0, hi = st->meta_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, st->meta[2 * mid]);
        if (c == 0)
            return st->meta[2 * mid + 1];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t isd_wt_st_meta_count(const struct isd_wt_st *st)
{
    return st->meta_count;
}

const char *isd_wt_st_meta_at(const struct isd_wt_st *st, size_t i, const char **value)
{
    if (i >= st->meta_count)
        return NULL;
    if (value)
        *value = st->meta[2 * i + 1];
    return st->meta[2 * i];
}
