/*
 * smp_golden: reads the "ISDGOLD1" golden files written by tests/reference/smp_golden.py
 * (format in tests/reference/README.md). Header-only: each test binary includes it.
 *
 *     struct smp_golden g;
 *     smp_golden_load(&g, "tests/goldens/engine/sample/rng.bin");
 *     for (size_t i = 0; i < g.count; i++) ... g.recs[i].name, .dtype, .count, .data
 *     smp_golden_free(&g);
 */
#ifndef ISD_TEST_SMP_GOLDEN_H
#define ISD_TEST_SMP_GOLDEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SMP_G_F64 = 0, SMP_G_F32 = 1, SMP_G_U32 = 2, SMP_G_I64 = 3 };

struct smp_golden_rec {
    char name[256];
    uint32_t dtype;
    uint64_t count;
    const void *data; /* into smp_golden.buf; little-endian, may be unaligned: use the getters */
};

struct smp_golden {
    unsigned char *buf;
    size_t len;
    struct smp_golden_rec *recs;
    size_t count;
};

static inline size_t smp_golden_elem_size(uint32_t dtype)
{
    return dtype == SMP_G_F64 || dtype == SMP_G_I64 ? 8 : 4;
}

static inline uint32_t smp_rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t smp_rd64(const unsigned char *p)
{
    return (uint64_t)smp_rd32(p) | (uint64_t)smp_rd32(p + 4) << 32;
}

/* Returns 0, or -1 with a message on stderr. */
static inline int smp_golden_load(struct smp_golden *g, const char *path)
{
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return -1;
    }
    long len = ftell(f);
    rewind(f);
    g->buf = malloc(len > 0 ? (size_t)len : 1);
    if (!g->buf || len < 8 || fread(g->buf, 1, (size_t)len, f) != (size_t)len ||
        memcmp(g->buf, "ISDGOLD1", 8) != 0) {
        fprintf(stderr, "%s: not an ISDGOLD1 file\n", path);
        fclose(f);
        free(g->buf);
        g->buf = NULL;
        return -1;
    }
    fclose(f);
    g->len = (size_t)len;
    size_t pos = 8, cap = 0;
    while (pos < g->len) {
        if (g->len - pos < 4)
            goto bad;
        uint32_t nl = smp_rd32(g->buf + pos);
        pos += 4;
        if (nl >= sizeof g->recs[0].name || g->len - pos < (size_t)nl + 12)
            goto bad;
        if (g->count == cap) {
            cap = cap ? cap * 2 : 64;
            void *p = realloc(g->recs, cap * sizeof *g->recs);
            if (!p)
                goto bad;
            g->recs = p;
        }
        struct smp_golden_rec *r = &g->recs[g->count];
        memcpy(r->name, g->buf + pos, nl);
        r->name[nl] = '\0';
        pos += nl;
        r->dtype = smp_rd32(g->buf + pos);
        r->count = smp_rd64(g->buf + pos + 4);
        pos += 12;
        if (r->dtype > SMP_G_I64 || r->count > (g->len - pos) / smp_golden_elem_size(r->dtype))
            goto bad;
        r->data = g->buf + pos;
        pos += (size_t)r->count * smp_golden_elem_size(r->dtype);
        g->count++;
    }
    return 0;
bad:
    fprintf(stderr, "%s: malformed record at byte %zu\n", path, pos);
    free(g->buf);
    free(g->recs);
    memset(g, 0, sizeof *g);
    return -1;
}

static inline void smp_golden_free(struct smp_golden *g)
{
    free(g->buf);
    free(g->recs);
    memset(g, 0, sizeof *g);
}

static inline const struct smp_golden_rec *smp_golden_find(const struct smp_golden *g,
                                                           const char *name)
{
    for (size_t i = 0; i < g->count; i++)
        if (strcmp(g->recs[i].name, name) == 0)
            return &g->recs[i];
    return NULL;
}

static inline double smp_golden_f64(const struct smp_golden_rec *r, size_t i)
{
    const unsigned char *p = (const unsigned char *)r->data;
    if (r->dtype == SMP_G_F64) {
        uint64_t u = smp_rd64(p + 8 * i);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    if (r->dtype == SMP_G_F32) {
        uint32_t u = smp_rd32(p + 4 * i);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    if (r->dtype == SMP_G_U32)
        return smp_rd32(p + 4 * i);
    return (double)(int64_t)smp_rd64(p + 8 * i);
}

static inline uint64_t smp_golden_u64(const struct smp_golden_rec *r, size_t i)
{
    const unsigned char *p = (const unsigned char *)r->data;
    return r->dtype == SMP_G_U32 ? smp_rd32(p + 4 * i) : smp_rd64(p + 8 * i);
}

/* Path of a golden file relative to the repository root (tests run from the root). */
#define SMP_GOLDEN_DIR "tests/goldens/engine/sample/"

#endif
