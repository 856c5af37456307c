/*
 * mp_fixtures: shared by the multipart tests. mp_run() parses a body with the form collector
 * in one of several chunkings (whole, byte by byte, random sizes from a seed), and checks the
 * order of the callbacks on the way (begin, data..., end; data never empty).
 */
#ifndef MP_FIXTURES_H
#define MP_FIXTURES_H

#include "multipart/multipart.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MP_WHOLE = 0, MP_BYTES = 1 }; /* other chunking values: the seed of random sizes */

struct mp_result {
    struct isd_form form;
    struct isd_error err;
    int rc;     /* first negative result of init, feed or finish; 0 on success */
    int begins; /* callbacks seen */
    int ends;
    int order_errors; /* begin inside a part, data or end outside one, empty data */
    bool in_part;
};

static int rec_begin(void *ctx, const struct isd_mp_part *part)
{
    struct mp_result *r = ctx;
    if (r->in_part)
        r->order_errors++;
    r->in_part = true;
    r->begins++;
    return isd_form_callbacks.part_begin(&r->form, part);
}

static int rec_data(void *ctx, const void *data, size_t n)
{
    struct mp_result *r = ctx;
    if (!r->in_part || n == 0)
        r->order_errors++;
    return isd_form_callbacks.part_data(&r->form, data, n);
}

static int rec_end(void *ctx)
{
    struct mp_result *r = ctx;
    if (!r->in_part)
        r->order_errors++;
    r->in_part = false;
    r->ends++;
    return isd_form_callbacks.part_end(&r->form);
}

static const struct isd_mp_callbacks mp_recorder = {rec_begin, rec_data, rec_end};

static inline uint32_t mp_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

/* Size of the next chunk: byte by byte, everything, or random (mostly small, to split
 * delimiters at every place, sometimes large). */
static inline size_t mp_chunk(unsigned chunking, uint64_t *seed, size_t left)
{
    size_t n;
    if (chunking == MP_WHOLE)
        n = left;
    else if (chunking == MP_BYTES)
        n = 1;
    else if (mp_rand(seed) % 4 == 0)
        n = 1 + mp_rand(seed) % 4096;
    else
        n = 1 + mp_rand(seed) % 90;
    return n < left ? n : left;
}

static const struct isd_form_limits mp_big_limits = {16, 1 << 20, 1 << 16, 8 << 20};

/* Parses body[0..n) into r->form (limits NULL: mp_big_limits). r->rc says how it went. */
static inline int mp_run(struct mp_result *r, const char *content_type, const void *body, size_t n,
                         unsigned chunking, const struct isd_form_limits *limits)
{
    memset(r, 0, sizeof *r);
    isd_form_init(&r->form, limits ? limits : &mp_big_limits);
    struct isd_mp_parser *p = malloc(sizeof *p);
    if (!p)
        abort();
    uint64_t seed = chunking;
    r->rc = isd_mp_parser_init(p, content_type, &mp_recorder, r, &r->err);
    const char *s = body;
    size_t off = 0;
    while (r->rc == 0 && off < n) {
        size_t k = mp_chunk(chunking, &seed, n - off);
        r->rc = isd_mp_parser_feed(p, s + off, k, &r->err);
        off += k;
    }
    if (r->rc == 0)
        r->rc = isd_mp_parser_finish(p, &r->err);
    isd_mp_parser_release(p);
    free(p);
    return r->rc;
}

static inline void mp_done(struct mp_result *r)
{
    isd_form_release(&r->form);
}

/* Chunkings every body is tried with. */
static const unsigned mp_chunkings[] = {MP_WHOLE, MP_BYTES, 2, 3, 5, 7, 11, 13, 1234, 99991};
#define MP_N_CHUNKINGS (sizeof mp_chunkings / sizeof mp_chunkings[0])

/* A growable body under construction (test helper; aborts on allocation failure). */
struct mp_body {
    char *p;
    size_t n, cap;
};

static inline void mp_add(struct mp_body *b, const void *s, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static inline void mp_adds(struct mp_body *b, const char *s)
{
    mp_add(b, s, strlen(s));
}

#endif
