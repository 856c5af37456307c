/*
 * fuzz_multipart: arbitrary bodies through the multipart parser (src/multipart) and the form
 * collector, with small limits so every ceiling is reached.
 * Input: byte 0 picks the boundary (low 3 bits) and how the Content-Type spells it (bits 3-4:
 * plain, quoted, upper-case parameter name after another parameter, unusual spacing; when
 * bits 5-7 are all set, the Content-Type is instead the input up to the first '\n' after
 * byte 1); byte 1 the chunking (0: whole, 1: byte by byte, else random sizes seeded by it); the
 * rest is the body. Checks, aborting on a violation: the body parsed whole and chunked gives the
 * same result (return value, message, every field byte for byte); callbacks come in order (begin,
 * data with n > 0, end); the form keeps its invariants (stored bytes within each ceiling and the
 * total, true sizes, overflow exactly when bytes were not stored, dropped exactly for files past
 * max_files).
 */
#include "multipart/multipart.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const boundaries[8] = {
    "openai-k2x9q8w7e1h",
    "----formdata-undici-068719547513",
    "------------------------d74496d66958873e",
    "6b0d1e9c2f5f4e2c8e0f0d6e3a5b7c9d",
    "B",
    "XyZ",
    "a'()+_,-./:=? z",
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
};

static const struct isd_form_limits limits = {2, 64, 16, 200};

struct run {
    struct isd_form form;
    struct isd_error err;
    int rc;
    bool in_part;
};

static void check(bool ok)
{
    if (!ok)
        abort();
}

static int on_begin(void *ctx, const struct isd_mp_part *part)
{
    struct run *r = ctx;
    check(!r->in_part && part->name);
    r->in_part = true;
    return isd_form_callbacks.part_begin(&r->form, part);
}

static int on_data(void *ctx, const void *data, size_t n)
{
    struct run *r = ctx;
    check(r->in_part && n > 0 && data);
    return isd_form_callbacks.part_data(&r->form, data, n);
}

static int on_end(void *ctx)
{
    struct run *r = ctx;
    check(r->in_part);
    r->in_part = false;
    return isd_form_callbacks.part_end(&r->form);
}

static const struct isd_mp_callbacks callbacks = {on_begin, on_data, on_end};

static struct isd_mp_parser parser; /* ~33 KiB: not on the fuzzer's stack */

static uint32_t next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static void parse(struct run *r, const char *ct, const uint8_t *body, size_t n, unsigned chunking)
{
    memset(r, 0, sizeof *r);
    isd_form_init(&r->form, &limits);
    uint64_t seed = chunking;
    r->rc = isd_mp_parser_init(&parser, ct, &callbacks, r, &r->err);
    size_t off = 0;
    while (r->rc == 0 && off < n) {
        size_t k = n - off;
        if (chunking == 1)
            k = 1;
        else if (chunking > 1 && k > 1)
            k = 1 + next_rand(&seed) % (next_rand(&seed) % 8 == 0 ? 300 : 12);
        if (k > n - off)
            k = n - off;
        r->rc = isd_mp_parser_feed(&parser, body + off, k, &r->err);
        off += k;
    }
    if (r->rc == 0)
        r->rc = isd_mp_parser_finish(&parser, &r->err);
    isd_mp_parser_release(&parser);
    check(r->rc == 0 || (r->rc == -ISD_E_BAD_BODY && r->err.id == ISD_E_BAD_BODY &&
                         strncmp(r->err.message, "multipart body: ", 16) == 0));
    check(r->rc < 0 || !r->in_part);
}

static void check_form(const struct isd_form *f)
{
    check(f->n_fields <= ISD_MP_MAX_PARTS);
    size_t stored = 0;
    int files = 0;
    for (size_t i = 0; i < f->n_fields; i++) {
        const struct isd_form_field *fd = &f->fields[i];
        check(fd->name != NULL);
        check(fd->is_file == (fd->filename != NULL));
        size_t ceiling = fd->is_file ? limits.max_file_bytes : limits.max_text_bytes;
        check(fd->value.len <= ceiling && fd->value.len <= fd->size);
        if (fd->is_file)
            files++;
        check(fd->dropped == (fd->is_file && files > limits.max_files));
        if (fd->dropped) {
            check(fd->value.data == NULL && fd->value.len == 0 && !fd->overflow);
        } else {
            check(fd->value.data != NULL && fd->value.data[fd->value.len] == '\0');
            check(fd->overflow == (fd->size > fd->value.len));
        }
        stored += fd->value.len;
    }
    check(files == f->n_files_seen);
    check(stored == f->total_stored && stored <= limits.max_total_bytes);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const struct run *a, const struct run *b)
{
    check(a->rc == b->rc);
    if (a->rc < 0)
        check(strcmp(a->err.message, b->err.message) == 0);
    check(a->form.n_fields == b->form.n_fields);
    check(a->form.n_files_seen == b->form.n_files_seen);
    check(a->form.total_stored == b->form.total_stored);
    check(a->form.total_overflow == b->form.total_overflow);
    for (size_t i = 0; i < a->form.n_fields; i++) {
        const struct isd_form_field *x = &a->form.fields[i], *y = &b->form.fields[i];
        check(same_str(x->name, y->name) && same_str(x->filename, y->filename) &&
              same_str(x->content_type, y->content_type));
        check(x->size == y->size && x->overflow == y->overflow && x->dropped == y->dropped);
        check(x->value.len == y->value.len);
        check(x->value.len == 0 || memcmp(x->value.data, y->value.data, x->value.len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *bd = boundaries[data[0] & 7];
    char ct[160];
    switch ((data[0] >> 3) & 3) {
    case 0:
        snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", bd);
        break;
    case 1:
        snprintf(ct, sizeof ct, "multipart/form-data; boundary=\"%s\"", bd);
        break;
    case 2:
        snprintf(ct, sizeof ct, "Multipart/Form-Data; charset=utf-8; BOUNDARY=%s", bd);
        break;
    default:
        snprintf(ct, sizeof ct, "multipart/form-data ;boundary = \"%s\" ;", bd);
        break;
    }
    unsigned chunking = data[1];
    const uint8_t *body = data + 2;
    size_t n = size - 2;
    if ((data[0] >> 5) == 7) { /* the Content-Type comes from the input too */
        const uint8_t *nl = memchr(body, '\n', n);
        size_t len = nl ? (size_t)(nl - body) : n;
        size_t skip = nl ? len + 1 : len;
        if (len >= sizeof ct)
            len = skip = sizeof ct - 1;
        memcpy(ct, body, len);
        ct[len] = '\0'; /* an embedded NUL just ends it early */
        body += skip;
        n -= skip;
    }

    static struct run whole, chunked;
    parse(&whole, ct, body, n, 0);
    check_form(&whole.form);
    parse(&chunked, ct, body, n, chunking ? chunking : 1);
    check_form(&chunked.form);
    check_same(&whole, &chunked);
    isd_form_release(&whole.form);
    isd_form_release(&chunked.form);
    return 0;
}
