#include "font/font.h"

#include "text/text.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* One rendered glyph at one size; immutable once published in a cache. */
struct glyph {
    int advance;   /* pen advance, 26.6 fixed point */
    int left;      /* bitmap's left edge relative to the pen, pixels */
    int top;       /* bitmap's top row above the baseline, pixels */
    int w;         /* bitmap width, pixels */
    int h;         /* bitmap height, pixels */
    uint8_t cov[]; /* w * h coverage bytes, row-major */
};

/* The glyph cache of one pixel size. */
struct size_cache {
    int px;                          /* pixel size */
    struct isd_font_metrics metrics; /* at px */
    _Atomic(struct glyph *) *glyphs; /* num_glyphs slots, NULL until rendered; NULL array for an
                                        uncached (over budget) size */
};

struct cp_gid {
    uint32_t cp;  /* code point >= 0x10000 */
    uint32_t gid; /* its glyph */
};

struct isd_font {
    pthread_mutex_t lock; /* guards lib, face, cur_px, cache_bytes and cache insertions */
    FT_Library lib;
    FT_Face face;
    int cur_px;            /* size last set on face; 0 = none */
    size_t cache_bytes;    /* bytes held by the caches */
    int num_glyphs;        /* glyphs in the face */
    uint16_t *bmp;         /* 0x10000 entries: BMP code point -> glyph id, 0 = .notdef */
    struct cp_gid *astral; /* cmap entries >= 0x10000, sorted by cp */
    size_t n_astral;       /* their count */
    uint32_t space_gid;    /* glyph of U+0020 */
    const char *ellipsis;  /* "…" when the font has U+2026, else "..." */
    size_t ellipsis_len;   /* its bytes */
    _Atomic(struct size_cache *) sizes[ISD_FONT_MAX_PX + 1]; /* published size caches */
};

enum cp_kind { CP_SKIP, CP_SPACE, CP_NEWLINE, CP_GLYPH };

static enum cp_kind classify(uint32_t cp)
{
    if (cp == '\n')
        return CP_NEWLINE;
    if (cp == ' ' || cp == '\t')
        return CP_SPACE;
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
        return CP_SKIP;
    return CP_GLYPH;
}

static int clamp_px(int px)
{
    return px < ISD_FONT_MIN_PX ? ISD_FONT_MIN_PX : px > ISD_FONT_MAX_PX ? ISD_FONT_MAX_PX : px;
}

static uint32_t glyph_of(const struct isd_font *f, uint32_t cp)
{
    if (cp < 0x10000)
        return f->bmp[cp];
    size_t lo = 0, hi = f->n_astral;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->astral[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n_astral && f->astral[lo].cp == cp ? f->astral[lo].gid : 0;
}

/* ---- loading ---- */

static int load_cmap(struct isd_font *f, struct isd_error *err)
{
    f->bmp = calloc(0x10000, sizeof *f->bmp);
    if (!f->bmp)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a font cmap");
    size_t cap = 0;
    FT_UInt gid;
    FT_ULong cp = FT_Get_First_Char(f->face, &gid);
    while (gid != 0) {
        if (cp < 0x10000 && gid <= UINT16_MAX) {
            f->bmp[cp] = (uint16_t)gid;
        } else if (cp >= 0x10000 && cp <= 0x10FFFF) {
            if (f->n_astral == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                struct cp_gid *p = realloc(f->astral, ncap * sizeof *p);
                if (!p)
                    return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a font cmap");
                f->astral = p;
                cap = ncap;
            }
            f->astral[f->n_astral++] = (struct cp_gid){(uint32_t)cp, gid};
        }
        cp = FT_Get_Next_Char(f->face, cp, &gid);
    }
    /* FreeType walks the cmap in increasing code point order; verify rather than assume. */
    for (size_t i = 1; i < f->n_astral; i++) {
        if (f->astral[i - 1].cp >= f->astral[i].cp) {
            f->n_astral = 0;
            break;
        }
    }
    return 0;
}

struct isd_font *isd_font_new(const char *path, struct isd_error *err)
{
    if (!path)
        path = ISD_FONT_DEFAULT_PATH;
    struct isd_font *f = calloc(1, sizeof *f);
    if (!f) {
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a font");
        return NULL;
    }
    for (size_t i = 0; i <= ISD_FONT_MAX_PX; i++)
        atomic_init(&f->sizes[i], NULL);
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        isd_err_set(err, ISD_E_NOMEM, NULL, "cannot create a font lock");
        return NULL;
    }
    if (FT_Init_FreeType(&f->lib) != 0) {
        f->lib = NULL;
        isd_err_set(err, ISD_E_NOMEM, NULL, "cannot initialise FreeType");
        goto fail;
    }
    if (FT_New_Face(f->lib, path, 0, &f->face) != 0) {
        f->face = NULL;
        isd_err_set(err, ISD_E_IO, NULL, "cannot load the font file %s", path);
        goto fail;
    }
    if (!FT_IS_SCALABLE(f->face) || FT_Select_Charmap(f->face, FT_ENCODING_UNICODE) != 0 ||
        f->face->num_glyphs < 1) {
        isd_err_set(err, ISD_E_IO, NULL, "%s is not a scalable Unicode font", path);
        goto fail;
    }
    f->num_glyphs = (int)f->face->num_glyphs;
    if (load_cmap(f, err) < 0)
        goto fail;
    f->space_gid = glyph_of(f, ' ');
    if (glyph_of(f, 0x2026)) {
        f->ellipsis = "\xE2\x80\xA6";
        f->ellipsis_len = 3;
    } else {
        f->ellipsis = "...";
        f->ellipsis_len = 3;
    }
    return f;
fail:
    isd_font_free(f);
    return NULL;
}

void isd_font_free(struct isd_font *f)
{
    if (!f)
        return;
    for (size_t px = 0; px <= ISD_FONT_MAX_PX; px++) {
        struct size_cache *sc = atomic_load_explicit(&f->sizes[px], memory_order_acquire);
        if (!sc)
            continue;
        for (int g = 0; g < f->num_glyphs; g++)
            free(atomic_load_explicit(&sc->glyphs[g], memory_order_relaxed));
        free(sc->glyphs);
        free(sc);
    }
    if (f->face)
        FT_Done_Face(f->face);
    if (f->lib)
        FT_Done_FreeType(f->lib);
    free(f->bmp);
    free(f->astral);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* ---- the caches (FreeType only under f->lock) ---- */

static bool set_size_locked(struct isd_font *f, int px)
{
    if (f->cur_px == px)
        return true;
    if (FT_Set_Pixel_Sizes(f->face, 0, (FT_UInt)px) != 0) {
        f->cur_px = 0;
        return false;
    }
    f->cur_px = px;
    return true;
}

static void metrics_locked(struct isd_font *f, int px, struct isd_font_metrics *m)
{
    if (!set_size_locked(f, px)) {
        m->ascent = px;
        m->descent = px / 4;
        m->line_height = m->ascent + m->descent;
        return;
    }
    const FT_Size_Metrics *sm = &f->face->size->metrics;
    m->ascent = (int)((sm->ascender + 63) >> 6);
    m->descent = (int)((-sm->descender + 63) >> 6);
    if (m->ascent < 1)
        m->ascent = px;
    if (m->descent < 0)
        m->descent = 0;
    m->line_height = (int)((sm->height + 32) >> 6);
    if (m->line_height < m->ascent + m->descent)
        m->line_height = m->ascent + m->descent;
}

/* Renders glyph gid at px into a new heap glyph (empty bitmap when FreeType fails). */
static struct glyph *render_locked(struct isd_font *f, int px, uint32_t gid)
{
    int advance = 0, left = 0, top = 0, w = 0, h = 0;
    const FT_Bitmap *bm = NULL;
    FT_GlyphSlot slot = f->face->glyph;
    if (set_size_locked(f, px) &&
        FT_Load_Glyph(f->face, gid, FT_LOAD_DEFAULT | FT_LOAD_NO_BITMAP) == 0) {
        advance = (int)slot->advance.x;
        if (FT_Render_Glyph(slot, FT_RENDER_MODE_NORMAL) == 0 &&
            slot->bitmap.pixel_mode == FT_PIXEL_MODE_GRAY && slot->bitmap.width <= 8192 &&
            slot->bitmap.rows <= 8192) {
            bm = &slot->bitmap;
            w = (int)bm->width;
            h = (int)bm->rows;
            left = slot->bitmap_left;
            top = slot->bitmap_top;
        }
    }
    if (advance < 0 || advance > (ISD_FONT_MAX_PX * 64) * 8)
        advance = 0;
    struct glyph *g = malloc(sizeof *g + (size_t)w * (size_t)h);
    if (!g)
        return NULL;
    g->advance = advance;
    g->left = left;
    g->top = top;
    g->w = w;
    g->h = h;
    for (int r = 0; r < h; r++) {
        int pitch = bm->pitch;
        const unsigned char *row = pitch >= 0 ? bm->buffer + (size_t)r * (size_t)pitch
                                              : bm->buffer + (size_t)(h - 1 - r) * (size_t)(-pitch);
        memcpy(g->cov + (size_t)r * (size_t)w, row, (size_t)w);
    }
    return g;
}

/* The cache of size px; when the budget is spent, *tmp is filled (no glyph array) instead. */
static struct size_cache *size_get(struct isd_font *f, int px, struct size_cache *tmp)
{
    px = clamp_px(px);
    struct size_cache *sc = atomic_load_explicit(&f->sizes[px], memory_order_acquire);
    if (sc)
        return sc;
    pthread_mutex_lock(&f->lock);
    sc = atomic_load_explicit(&f->sizes[px], memory_order_relaxed);
    if (!sc) {
        size_t bytes = sizeof *sc + (size_t)f->num_glyphs * sizeof *sc->glyphs;
        if (f->cache_bytes + bytes <= ISD_FONT_CACHE_MAX_BYTES)
            sc = malloc(sizeof *sc);
        if (sc) {
            sc->glyphs = malloc((size_t)f->num_glyphs * sizeof *sc->glyphs);
            if (!sc->glyphs) {
                free(sc);
                sc = NULL;
            }
        }
        if (sc) {
            for (int g = 0; g < f->num_glyphs; g++)
                atomic_init(&sc->glyphs[g], NULL);
            sc->px = px;
            metrics_locked(f, px, &sc->metrics);
            f->cache_bytes += bytes;
            atomic_store_explicit(&f->sizes[px], sc, memory_order_release);
        } else {
            sc = tmp;
            sc->px = px;
            sc->glyphs = NULL;
            metrics_locked(f, px, &sc->metrics);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return sc;
}

/* The glyph gid at sc's size. When *owned is set on return, the glyph was not cached and the
 * caller frees *owned after use. */
static int glyph_get(struct isd_font *f, struct size_cache *sc, uint32_t gid,
                     const struct glyph **out, struct glyph **owned, struct isd_error *err)
{
    *owned = NULL;
    if (gid >= (uint32_t)f->num_glyphs)
        gid = 0;
    if (sc->glyphs) {
        struct glyph *g = atomic_load_explicit(&sc->glyphs[gid], memory_order_acquire);
        if (g) {
            *out = g;
            return 0;
        }
    }
    pthread_mutex_lock(&f->lock);
    struct glyph *g = NULL;
    if (sc->glyphs)
        g = atomic_load_explicit(&sc->glyphs[gid], memory_order_relaxed);
    if (!g) {
        g = render_locked(f, sc->px, gid);
        if (g) {
            size_t bytes = sizeof *g + (size_t)g->w * (size_t)g->h;
            if (sc->glyphs && f->cache_bytes + bytes <= ISD_FONT_CACHE_MAX_BYTES) {
                f->cache_bytes += bytes;
                atomic_store_explicit(&sc->glyphs[gid], g, memory_order_release);
            } else {
                *owned = g;
            }
        }
    }
    pthread_mutex_unlock(&f->lock);
    if (!g)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a glyph");
    *out = g;
    return 0;
}

/* Advance (26.6) of code point cp of kind k (CP_SKIP: 0). */
static int cp_advance(struct isd_font *f, struct size_cache *sc, uint32_t cp, enum cp_kind k,
                      int *adv, struct isd_error *err)
{
    *adv = 0;
    if (k == CP_SKIP)
        return 0;
    uint32_t gid = k == CP_GLYPH ? glyph_of(f, cp) : f->space_gid;
    const struct glyph *g;
    struct glyph *owned;
    int rc = glyph_get(f, sc, gid, &g, &owned, err);
    if (rc < 0)
        return rc;
    *adv = g->advance;
    free(owned);
    return 0;
}

/* ---- drawing ---- */

static inline unsigned div255(unsigned x)
{
    return (x + 128 + ((x + 128) >> 8)) >> 8;
}

/* Composites colour c (straight alpha) at coverage cov onto pixel p. */
static inline void blend_px(uint8_t *p, const uint8_t c[4], unsigned cov)
{
    unsigned s = div255(cov * c[3]);
    if (s == 0)
        return;
    if (s == 255) {
        p[0] = c[0];
        p[1] = c[1];
        p[2] = c[2];
        p[3] = 255;
        return;
    }
    unsigned d = p[3];
    if (d == 255) {
        for (int k = 0; k < 3; k++)
            p[k] = (uint8_t)div255(c[k] * s + p[k] * (255 - s));
        return;
    }
    unsigned dd = d * (255 - s); /* destination weight, 0..65025 */
    unsigned den = s * 255 + dd; /* out alpha * 255, > 0 */
    for (int k = 0; k < 3; k++)
        p[k] = (uint8_t)((c[k] * s * 255 + p[k] * dd + den / 2) / den);
    p[3] = (uint8_t)div255(den);
}

static void blit(struct isd_image *im, const struct isd_font_rect *clip, const struct glyph *g,
                 int gx, int gy, const uint8_t c[4])
{
    int x0 = gx > clip->x ? gx : clip->x;
    int y0 = gy > clip->y ? gy : clip->y;
    int x1 = gx + g->w < clip->x + clip->w ? gx + g->w : clip->x + clip->w;
    int y1 = gy + g->h < clip->y + clip->h ? gy + g->h : clip->y + clip->h;
    for (int y = y0; y < y1; y++) {
        const uint8_t *cov = g->cov + (size_t)(y - gy) * (size_t)g->w + (size_t)(x0 - gx);
        uint8_t *p = isd_image_px(im, x0, y);
        for (int x = x0; x < x1; x++, cov++, p += 4) {
            if (*cov)
                blend_px(p, c, *cov);
        }
    }
}

/* Clip rectangle = image bounds intersected with `clip`. False when empty. */
static bool clip_rect(const struct isd_image *im, const struct isd_font_rect *clip,
                      struct isd_font_rect *out)
{
    int x0 = 0, y0 = 0, x1 = im->width, y1 = im->height;
    if (clip) {
        int64_t cx1 = (int64_t)clip->x + clip->w, cy1 = (int64_t)clip->y + clip->h;
        if (clip->x > x0)
            x0 = clip->x;
        if (clip->y > y0)
            y0 = clip->y;
        if (cx1 < x1)
            x1 = (int)cx1;
        if (cy1 < y1)
            y1 = (int)cy1;
    }
    *out = (struct isd_font_rect){x0, y0, x1 - x0, y1 - y0};
    return x1 > x0 && y1 > y0;
}

/* Draws (or, with im NULL, only measures) s[0..n) as one line; *pen (26.6) advances. Drawing
 * stops once the pen has passed the clip's right edge. */
static int run_line(struct isd_font *f, struct size_cache *sc, struct isd_image *im,
                    const struct isd_font_rect *clip, int x, int y, const char *s, size_t n,
                    const uint8_t c[4], int64_t *pen, struct isd_error *err)
{
    size_t i = 0;
    while (i < n) {
        if (im && x + (*pen >> 6) - 2 * sc->px > (int64_t)clip->x + clip->w)
            return 0;
        uint32_t cp = isd_utf8_next(s, n, &i);
        enum cp_kind k = classify(cp);
        if (k == CP_SKIP)
            continue;
        uint32_t gid = k == CP_GLYPH ? glyph_of(f, cp) : f->space_gid;
        const struct glyph *g;
        struct glyph *owned;
        int rc = glyph_get(f, sc, gid, &g, &owned, err);
        if (rc < 0)
            return rc;
        if (im && k == CP_GLYPH && g->w > 0) {
            int64_t gx = x + ((*pen + 32) >> 6) + g->left;
            int64_t gy = (int64_t)y - g->top;
            if (gx > -(int64_t)g->w - 1 && gx < INT32_MAX / 2 && gy > INT32_MIN / 2 &&
                gy < INT32_MAX / 2)
                blit(im, clip, g, (int)gx, (int)gy, c);
        }
        *pen += g->advance;
        free(owned);
    }
    return 0;
}

int isd_font_metrics(struct isd_font *f, int px, struct isd_font_metrics *out,
                     struct isd_error *err)
{
    (void)err;
    struct size_cache tmp;
    *out = size_get(f, px, &tmp)->metrics;
    return 0;
}

int isd_font_measure(struct isd_font *f, int px, const char *s, size_t n, int *width,
                     struct isd_error *err)
{
    struct size_cache tmp;
    struct size_cache *sc = size_get(f, px, &tmp);
    int64_t pen = 0;
    *width = 0;
    int rc = run_line(f, sc, NULL, NULL, 0, 0, s, n, NULL, &pen, err);
    if (rc < 0)
        return rc;
    int64_t w = (pen + 63) >> 6;
    *width = w > INT32_MAX ? INT32_MAX : (int)w;
    return 0;
}

int isd_font_draw(struct isd_font *f, struct isd_image *im, int px, int x, int y, const char *s,
                  size_t n, const uint8_t rgba[4], const struct isd_font_rect *clip,
                  struct isd_error *err)
{
    struct isd_font_rect r;
    if (!clip_rect(im, clip, &r))
        return 0;
    struct size_cache tmp;
    struct size_cache *sc = size_get(f, px, &tmp);
    int64_t pen = 0;
    return run_line(f, sc, im, &r, x, y, s, n, rgba, &pen, err);
}

/* ---- wrapping ---- */

/* True when s[i..n) holds something drawable. */
static bool has_glyph_from(const char *s, size_t n, size_t i)
{
    while (i < n) {
        if (classify(isd_utf8_next(s, n, &i)) == CP_GLYPH)
            return true;
    }
    return false;
}

/* Lays out one line from s[*pos]; leading spaces are skipped. Returns the line and moves *pos
 * to where the next line starts. Progress is guaranteed: at least one code point is taken. */
static int wrap_line(struct isd_font *f, struct size_cache *sc, const char *s, size_t n,
                     int64_t max_w, size_t *pos, struct isd_font_line *line, struct isd_error *err)
{
    size_t i = *pos;
    while (i < n) { /* skip leading spaces and control characters */
        size_t before = i;
        enum cp_kind k = classify(isd_utf8_next(s, n, &i));
        if (k == CP_GLYPH || k == CP_NEWLINE) {
            i = before;
            break;
        }
    }
    size_t start = i, end = i, next = i;
    int64_t pen = 0, width = 0; /* width: pen after the last glyph, 26.6 */
    size_t brk = 0;             /* byte of the last space after a glyph, 0 = none */
    int64_t brk_width = 0;
    bool have_brk = false, have_glyph = false;
    for (;;) {
        if (i >= n) {
            end = next = i;
            break;
        }
        size_t before = i;
        uint32_t cp = isd_utf8_next(s, n, &i);
        enum cp_kind k = classify(cp);
        if (k == CP_NEWLINE) {
            end = before;
            next = i;
            break;
        }
        int adv;
        int rc = cp_advance(f, sc, cp, k, &adv, err);
        if (rc < 0)
            return rc;
        if (k == CP_SPACE) {
            if (have_glyph && !(have_brk && brk_width == width)) {
                brk = before;
                brk_width = width;
                have_brk = true;
            }
            pen += adv;
            continue;
        }
        if (k == CP_SKIP)
            continue;
        if (have_glyph && ((pen + adv + 63) >> 6) > max_w) {
            if (have_brk) {
                end = next = brk;
                width = brk_width;
            } else {
                end = next = before;
            }
            break;
        }
        pen += adv;
        width = pen;
        have_glyph = true;
        end = i;
    }
    line->start = start;
    line->end = end;
    line->width = (int)((width + 63) >> 6);
    line->ellipsis = false;
    *pos = next;
    return 0;
}

/* Re-lays the line from line->start so that it and the ellipsis fit in max_w. */
static int cut_with_ellipsis(struct isd_font *f, struct size_cache *sc, const char *s, size_t n,
                             int64_t max_w, struct isd_font_line *line, struct isd_error *err)
{
    int64_t ell_pen = 0;
    int rc = run_line(f, sc, NULL, NULL, 0, 0, f->ellipsis, f->ellipsis_len, NULL, &ell_pen, err);
    if (rc < 0)
        return rc;
    int64_t pen = 0, width = 0;
    size_t i = line->start, end = line->start;
    while (i < n) {
        uint32_t cp = isd_utf8_next(s, n, &i);
        enum cp_kind k = classify(cp);
        if (k == CP_NEWLINE)
            break;
        int adv;
        rc = cp_advance(f, sc, cp, k, &adv, err);
        if (rc < 0)
            return rc;
        if (k == CP_GLYPH) {
            if (((pen + adv + ell_pen + 63) >> 6) > max_w)
                break;
            width = pen + adv;
            end = i;
        }
        pen += adv;
    }
    line->end = end;
    line->ellipsis = ((width + ell_pen + 63) >> 6) <= max_w;
    line->width = (int)(((line->ellipsis ? width + ell_pen : width) + 63) >> 6);
    return 0;
}

int isd_font_layout(struct isd_font *f, int px, int max_width, int max_lines, const char *s,
                    size_t n, struct isd_font_layout *out, struct isd_error *err)
{
    struct size_cache tmp;
    struct size_cache *sc = size_get(f, px, &tmp);
    out->text = s;
    out->len = n;
    out->px = sc->px;
    out->metrics = sc->metrics;
    out->n_lines = 0;
    out->width = 0;
    out->height = 0;
    out->truncated = false;
    if (max_lines > ISD_FONT_MAX_LINES)
        max_lines = ISD_FONT_MAX_LINES;
    if (max_width < 1 || max_lines < 1) {
        out->truncated = has_glyph_from(s, n, 0);
        return 0;
    }
    int64_t max_w = max_width;
    size_t pos = 0;
    while (out->n_lines < max_lines && pos < n) {
        if (!has_glyph_from(s, n, pos) && out->n_lines > 0)
            break;
        int rc = wrap_line(f, sc, s, n, max_w, &pos, &out->lines[out->n_lines], err);
        if (rc < 0)
            return rc;
        out->n_lines++;
    }
    /* trailing empty lines (text ending in newlines or spaces) are not drawn */
    while (out->n_lines > 0 && out->lines[out->n_lines - 1].width == 0 &&
           !has_glyph_from(s, out->lines[out->n_lines - 1].end, out->lines[out->n_lines - 1].start))
        out->n_lines--;
    if (out->n_lines == max_lines && has_glyph_from(s, n, pos)) {
        out->truncated = true;
        int rc = cut_with_ellipsis(f, sc, s, n, max_w, &out->lines[out->n_lines - 1], err);
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < out->n_lines; i++) {
        if (out->lines[i].width > out->width)
            out->width = out->lines[i].width;
    }
    out->height = out->n_lines * sc->metrics.line_height;
    return 0;
}

int isd_font_draw_layout(struct isd_font *f, struct isd_image *im, const struct isd_font_layout *l,
                         int x, int y, const uint8_t rgba[4], const struct isd_font_rect *clip,
                         struct isd_error *err)
{
    struct isd_font_rect r;
    if (!clip_rect(im, clip, &r))
        return 0;
    struct size_cache tmp;
    struct size_cache *sc = size_get(f, l->px, &tmp);
    for (int i = 0; i < l->n_lines; i++) {
        const struct isd_font_line *line = &l->lines[i];
        int64_t base = (int64_t)y + l->metrics.ascent + (int64_t)i * l->metrics.line_height;
        if (base - l->metrics.ascent - 2 * sc->px > (int64_t)r.y + r.h)
            break;
        if (base + l->metrics.descent + 2 * sc->px < r.y)
            continue;
        int64_t pen = 0;
        int rc = run_line(f, sc, im, &r, x, (int)base, l->text + line->start,
                          line->end - line->start, rgba, &pen, err);
        if (rc == 0 && line->ellipsis)
            rc = run_line(f, sc, im, &r, x, (int)base, f->ellipsis, f->ellipsis_len, rgba, &pen,
                          err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
