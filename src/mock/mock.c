#include "mock/mock.h"

#include "font/font.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mock {
    struct isd_font *regular; /* the facts */
    struct isd_font *bold;    /* the prompt */
    int stage_delay_ms;       /* pause after each stage */
};

/* ---- PRNG, hashing, colours ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ULL;
    return mix64(*s);
}

/* Uniform-enough integer in [lo, hi] (hi >= lo). */
static int rng_int(uint64_t *s, int lo, int hi)
{
    return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h ^ n);
}

static uint32_t pack(unsigned r, unsigned g, unsigned b, unsigned a)
{
    uint8_t px[4] = {(uint8_t)r, (uint8_t)g, (uint8_t)b, (uint8_t)a};
    uint32_t v;
    memcpy(&v, px, 4);
    return v;
}

static inline unsigned div255(unsigned x)
{
    return (x + 128 + ((x + 128) >> 8)) >> 8;
}

struct rgb {
    int r, g, b;
};

/* HSV to RGB; h in degrees, s and v 0..255. */
static struct rgb hsv(int h, int s, int v)
{
    h %= 360;
    if (h < 0)
        h += 360;
    int f = (h % 60) * 255 / 60;
    int p = v * (255 - s) / 255;
    int q = v * (255 - s * f / 255) / 255;
    int t = v * (255 - s * (255 - f) / 255) / 255;
    switch (h / 60) {
    case 0:
        return (struct rgb){v, t, p};
    case 1:
        return (struct rgb){q, v, p};
    case 2:
        return (struct rgb){p, v, t};
    case 3:
        return (struct rgb){p, q, v};
    case 4:
        return (struct rgb){t, p, v};
    default:
        return (struct rgb){v, p, q};
    }
}

static struct rgb mix_rgb(struct rgb a, struct rgb b, int t) /* t 0..255 toward b */
{
    return (struct rgb){a.r + (b.r - a.r) * t / 255, a.g + (b.g - a.g) * t / 255,
                        a.b + (b.b - a.b) * t / 255};
}

/* ---- the pattern ---- */

enum shape { SHAPE_STRIPES, SHAPE_CHECKER, SHAPE_RINGS, SHAPE_CIRCLES, SHAPE_DOTS, SHAPE__COUNT };

#define MAX_CIRCLES 12

struct circle {
    int x, y, r;
};

/* A projection x*dx + y*dy onto 16.16 fixed point: (x*dx + y*dy - min) * scale. */
struct axis {
    int64_t dx, dy;
    int64_t min;
    int64_t scale;
};

struct pattern {
    int w, h;
    enum shape shape;
    uint32_t bg[256];     /* opaque background by gradient position */
    uint32_t fg[256];     /* opaque shape colour by gradient position */
    uint32_t bg_out[256]; /* the generated image's background (transparent: 0) */
    uint32_t fg_out[256]; /* the generated image's shapes (transparent: alpha 200) */
    struct axis grad;     /* gradient position, 8.24: t = value >> 24 */
    struct axis u, v;     /* stripes/checker coordinates in periods, 16.16 */
    uint32_t duty;        /* stripes: part of each period inside, of 65536 */
    int cx, cy;           /* rings: centre */
    float inv_period;     /* rings: 1 / ring width */
    int n_circles;
    struct circle circles[MAX_CIRCLES];
    int spacing, radius, ox, oy; /* dots: lattice step, dot radius, lattice origin */
};

static void axis_init(struct axis *a, int64_t dx, int64_t dy, int w, int h, double per_unit)
{
    int64_t c[4] = {0, (w - 1) * dx, (h - 1) * dy, (w - 1) * dx + (h - 1) * dy};
    a->dx = dx;
    a->dy = dy;
    a->min = c[0];
    for (int i = 1; i < 4; i++)
        if (c[i] < a->min)
            a->min = c[i];
    a->scale = (int64_t)llround(per_unit);
    if (a->scale < 1)
        a->scale = 1;
}

static int64_t axis_range(const struct axis *a, int w, int h)
{
    int64_t c[4] = {0, (w - 1) * a->dx, (h - 1) * a->dy, (w - 1) * a->dx + (h - 1) * a->dy};
    int64_t max = c[0];
    for (int i = 1; i < 4; i++)
        if (c[i] > max)
            max = c[i];
    return max - a->min;
}

static void pick_direction(uint64_t *rng, int64_t *dx, int64_t *dy, int r)
{
    do {
        *dx = rng_int(rng, -r, r);
        *dy = rng_int(rng, -r, r);
    } while (*dx == 0 && *dy == 0);
}

static void pattern_init(struct pattern *p, uint64_t key, int w, int h, const char *style,
                         bool transparent)
{
    uint64_t rng = key;
    int s = w < h ? w : h;
    p->w = w;
    p->h = h;

    /* palette: a base hue and two related ones */
    static const int schemes[][2] = {{180, 30}, {120, 240}, {30, 60}, {150, 210}, {200, 320}};
    int hue = rng_int(&rng, 0, 359);
    const int *off = schemes[rng_int(&rng, 0, 4)];
    int sat_lo = 150, sat_hi = 220;
    if (style && strcmp(style, "vivid") == 0)
        sat_lo = 225, sat_hi = 255;
    else if (style && strcmp(style, "natural") == 0)
        sat_lo = 60, sat_hi = 120;
    struct rgb c0 = hsv(hue, rng_int(&rng, sat_lo, sat_hi), rng_int(&rng, 170, 255));
    struct rgb c1 = hsv(hue + off[0], rng_int(&rng, sat_lo, sat_hi), rng_int(&rng, 70, 170));
    struct rgb c2 = hsv(hue + off[1], rng_int(&rng, sat_lo, sat_hi), rng_int(&rng, 160, 255));
    for (int t = 0; t < 256; t++) {
        struct rgb g = mix_rgb(c0, c1, t);
        struct rgb f = mix_rgb(c2, mix_rgb(c1, c0, t), 70);
        p->bg[t] = pack((unsigned)g.r, (unsigned)g.g, (unsigned)g.b, 255);
        p->fg[t] = pack((unsigned)f.r, (unsigned)f.g, (unsigned)f.b, 255);
        p->bg_out[t] = transparent ? 0 : p->bg[t];
        p->fg_out[t] =
            transparent ? pack((unsigned)f.r, (unsigned)f.g, (unsigned)f.b, 200) : p->fg[t];
    }

    /* gradient: t = 0..255 across the image along a random direction */
    int64_t gx, gy;
    pick_direction(&rng, &gx, &gy, 8);
    axis_init(&p->grad, gx, gy, w, h, 1.0);
    int64_t range = axis_range(&p->grad, w, h);
    p->grad.scale = (((int64_t)255) << 24) / (range > 0 ? range : 1);

    p->shape = (enum shape)rng_int(&rng, 0, SHAPE__COUNT - 1);
    int period = s / 20 + rng_int(&rng, 0, s / 8 > 0 ? s / 8 : 0);
    if (period < 4)
        period = 4;
    int64_t ux, uy;
    pick_direction(&rng, &ux, &uy, 6);
    double len = sqrt((double)(ux * ux + uy * uy));
    axis_init(&p->u, ux, uy, w, h, 65536.0 / (len * period));
    axis_init(&p->v, -uy, ux, w, h, 65536.0 / (len * period));
    p->duty = (uint32_t)rng_int(&rng, 20000, 45000);

    p->cx = rng_int(&rng, -w / 4, w + w / 4);
    p->cy = rng_int(&rng, -h / 4, h + h / 4);
    p->inv_period = 1.0f / (float)period;

    p->n_circles = rng_int(&rng, 5, MAX_CIRCLES);
    for (int i = 0; i < p->n_circles; i++) {
        int r = rng_int(&rng, s / 12 + 2, s / 3 + 3);
        p->circles[i] =
            (struct circle){rng_int(&rng, -r / 2, w + r / 2), rng_int(&rng, -r / 2, h + r / 2), r};
    }

    p->spacing = rng_int(&rng, s / 10 + 4, s / 5 + 5);
    p->radius = p->spacing * rng_int(&rng, 20, 42) / 100 + 1;
    p->ox = rng_int(&rng, 0, p->spacing - 1);
    p->oy = rng_int(&rng, 0, p->spacing - 1);
}

static void fill_span(uint8_t *in, int w, int64_t x0, int64_t x1, bool toggle)
{
    if (x0 < 0)
        x0 = 0;
    if (x1 > w - 1)
        x1 = w - 1;
    for (int64_t x = x0; x <= x1; x++)
        in[x] = toggle ? (uint8_t)(in[x] ^ 1) : 1;
}

/* Row y of the pattern: in[x] = 1 inside a shape, t[x] = gradient position. */
static void pattern_row(const struct pattern *p, int y, uint8_t *in, uint8_t *t)
{
    int w = p->w;
    int64_t acc = (y * p->grad.dy - p->grad.min) * p->grad.scale;
    int64_t step = p->grad.dx * p->grad.scale;
    for (int x = 0; x < w; x++, acc += step)
        t[x] = (uint8_t)(acc >> 24);

    switch (p->shape) {
    case SHAPE_STRIPES: {
        int64_t a = (y * p->u.dy - p->u.min) * p->u.scale, da = p->u.dx * p->u.scale;
        for (int x = 0; x < w; x++, a += da)
            in[x] = (uint32_t)(a & 0xFFFF) < p->duty;
        break;
    }
    case SHAPE_CHECKER: {
        int64_t a = (y * p->u.dy - p->u.min) * p->u.scale, da = p->u.dx * p->u.scale;
        int64_t b = (y * p->v.dy - p->v.min) * p->v.scale, db = p->v.dx * p->v.scale;
        for (int x = 0; x < w; x++, a += da, b += db)
            in[x] = (uint8_t)(((a >> 16) ^ (b >> 16)) & 1);
        break;
    }
    case SHAPE_RINGS: {
        int64_t dy = y - p->cy;
        for (int x = 0; x < w; x++) {
            int64_t dx = x - p->cx;
            float d = sqrtf((float)(dx * dx + dy * dy));
            in[x] = (uint8_t)((int)(d * p->inv_period) & 1);
        }
        break;
    }
    case SHAPE_CIRCLES:
        memset(in, 0, (size_t)w);
        for (int i = 0; i < p->n_circles; i++) {
            const struct circle *c = &p->circles[i];
            int64_t dy = y - c->y, rr = (int64_t)c->r * c->r;
            if (dy * dy > rr)
                continue;
            int64_t half = (int64_t)sqrtf((float)(rr - dy * dy));
            fill_span(in, w, c->x - half, c->x + half, true);
        }
        break;
    case SHAPE_DOTS: {
        memset(in, 0, (size_t)w);
        int sp = p->spacing, r = p->radius;
        int j0 = (y - p->oy + sp * 4) / sp - 4; /* floor for y - oy >= -4 sp */
        for (int j = j0 - 1; j <= j0 + 1; j++) {
            int64_t dy = y - (p->oy + (int64_t)j * sp);
            if (dy * dy > (int64_t)r * r)
                continue;
            int64_t half = (int64_t)sqrtf((float)((int64_t)r * r - dy * dy));
            int shift = (j & 1) ? sp / 2 : 0;
            for (int64_t cx = p->ox + shift - sp; cx - half < w; cx += sp)
                fill_span(in, w, cx - half, cx + half, false);
        }
        break;
    }
    default:
        memset(in, 0, (size_t)w);
        break;
    }
}

/* ---- pixels ---- */

/* Straight-alpha "over": src onto dst. */
static inline void over_px(uint8_t *d, const uint8_t *s)
{
    unsigned sa = s[3];
    if (sa == 255 || d[3] == 0) {
        memcpy(d, s, 4);
        return;
    }
    if (sa == 0)
        return;
    if (d[3] == 255) {
        for (int k = 0; k < 3; k++)
            d[k] = (uint8_t)div255(s[k] * sa + d[k] * (255 - sa));
        return;
    }
    unsigned dd = d[3] * (255 - sa);
    unsigned den = sa * 255 + dd;
    for (int k = 0; k < 3; k++)
        d[k] = (uint8_t)((s[k] * sa * 255 + d[k] * dd + den / 2) / den);
    d[3] = (uint8_t)div255(den);
}

static void fill_rect_over(struct isd_image *im, struct isd_font_rect r,
                           const struct isd_font_rect *clip, const uint8_t c[4])
{
    int x0 = r.x > clip->x ? r.x : clip->x, y0 = r.y > clip->y ? r.y : clip->y;
    int x1 = r.x + r.w < clip->x + clip->w ? r.x + r.w : clip->x + clip->w;
    int y1 = r.y + r.h < clip->y + clip->h ? r.y + r.h : clip->y + clip->h;
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > im->width)
        x1 = im->width;
    if (y1 > im->height)
        y1 = im->height;
    /* opaque rows go through a table per channel (the over_px result for d[3] = 255) */
    uint8_t lut[3][256];
    for (unsigned v = 0; v < 256; v++)
        for (int k = 0; k < 3; k++)
            lut[k][v] = (uint8_t)div255(c[k] * c[3] + v * (255u - c[3]));
    for (int y = y0; y < y1; y++) {
        uint8_t *p = isd_image_px(im, x0, y);
        bool opaque = true;
        for (int x = 0; x < x1 - x0 && opaque; x++)
            opaque = p[4 * x + 3] == 255;
        if (opaque && c[3] > 0) {
            for (int x = x0; x < x1; x++, p += 4) {
                p[0] = lut[0][p[0]];
                p[1] = lut[1][p[1]];
                p[2] = lut[2][p[2]];
            }
        } else {
            for (int x = x0; x < x1; x++, p += 4)
                over_px(p, c);
        }
    }
}

/* Averages blocks of b x b pixels in place, in premultiplied alpha. */
static int pixelate(struct isd_image *im, int b, struct isd_error *err)
{
    int w = im->width, h = im->height, cols = (w + b - 1) / b;
    uint64_t *sum = malloc(sizeof *sum * 4 * (size_t)cols);
    if (!sum)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a partial image");
    for (int y0 = 0; y0 < h; y0 += b) {
        int y1 = y0 + b < h ? y0 + b : h;
        memset(sum, 0, sizeof *sum * 4 * (size_t)cols);
        for (int y = y0; y < y1; y++) {
            const uint8_t *p = isd_image_px(im, 0, y);
            for (int c = 0; c < cols; c++) {
                int n = c * b + b < w ? b : w - c * b;
                uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* n <= 16384: no overflow */
                for (int x = 0; x < n; x++, p += 4) {
                    s0 += (uint32_t)p[0] * p[3];
                    s1 += (uint32_t)p[1] * p[3];
                    s2 += (uint32_t)p[2] * p[3];
                    s3 += p[3];
                }
                uint64_t *s = sum + 4 * c;
                s[0] += s0;
                s[1] += s1;
                s[2] += s2;
                s[3] += s3;
            }
        }
        for (int c = 0; c < cols; c++) {
            uint64_t *s = sum + 4 * c;
            int x0 = c * b, x1 = x0 + b < w ? x0 + b : w;
            uint64_t count = (uint64_t)(x1 - x0) * (uint64_t)(y1 - y0);
            uint8_t px[4] = {0, 0, 0, 0};
            if (s[3] > 0) {
                for (int k = 0; k < 3; k++)
                    px[k] = (uint8_t)((s[k] + s[3] / 2) / s[3]);
                px[3] = (uint8_t)((s[3] + count / 2) / count);
            }
            for (int y = y0; y < y1; y++) {
                uint8_t *p = isd_image_px(im, x0, y);
                for (int x = x0; x < x1; x++, p += 4)
                    memcpy(p, px, 4);
            }
        }
    }
    free(sum);
    return 0;
}

/* Output alpha policy: transparent requests keep alpha, others are opaque. */
static void finish_alpha(struct isd_image *im, bool transparent)
{
    if (transparent)
        im->has_alpha = true;
    else
        isd_image_make_opaque(im);
}

/* Masked mix: m = 255 keeps base exactly, 0 takes layer, else premultiplied mix. */
static void mask_mix(struct isd_image *dst, const struct isd_image *base,
                     const struct isd_image *layer, const uint8_t *mask)
{
    size_t n = (size_t)dst->width * (size_t)dst->height;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = base->rgba + 4 * i, *l = layer->rgba + 4 * i;
        uint8_t *d = dst->rgba + 4 * i;
        unsigned m = mask[i];
        if (m == 255) {
            memcpy(d, b, 4);
        } else if (m == 0) {
            memcpy(d, l, 4);
        } else {
            unsigned wb = b[3] * m, wl = l[3] * (255 - m), a = wb + wl;
            if (a == 0) {
                memset(d, 0, 4);
                continue;
            }
            for (int k = 0; k < 3; k++)
                d[k] = (uint8_t)((b[k] * wb + l[k] * wl + a / 2) / a);
            d[3] = (uint8_t)div255(a);
        }
    }
}

/* ---- hue rotation (variations) ---- */

/* cos and sin of k * 30 degrees, k = 0..11, as exact-enough literals (no libm). */
static const double cos30[12] = {1,  0.8660254037844387,  0.5,  0, -0.5, -0.8660254037844387,
                                 -1, -0.8660254037844387, -0.5, 0, 0.5,  0.8660254037844387};
static const double sin30[12] = {0, 0.5,  0.8660254037844387,  1,  0.8660254037844387,  0.5,
                                 0, -0.5, -0.8660254037844387, -1, -0.8660254037844387, -0.5};

/* The luminance-preserving hue rotation matrix (as SVG feColorMatrix hueRotate), 4.12. */
static void hue_matrix(int k, int m[9])
{
    double c = cos30[k % 12], s = sin30[k % 12];
    double f[9] = {0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715,
                   0.072 - c * 0.072 + s * 0.928, 0.213 - c * 0.213 + s * 0.143,
                   0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283,
                   0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715,
                   0.072 + c * 0.928 + s * 0.072};
    for (int i = 0; i < 9; i++)
        m[i] = (int)llround(f[i] * 4096.0);
}

static uint8_t clamp_u8(int v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* ---- one request ---- */

struct job {
    struct mock *m;
    const struct isd_gen_request *req;
    const struct isd_gen_hooks *hooks;
    int w, h;                       /* output size */
    uint64_t prompt_hash;           /* hash of the prompt bytes */
    struct isd_image *base;         /* masked edit: inputs[0] at the output size */
    uint8_t *mask;                  /* masked edit: w*h mask alphas at the output size */
    struct isd_image *under;        /* inputs tiled (edits) or resized (variation), or NULL */
    struct isd_font_rect text_area; /* where text may go (w = 0: nowhere) */
    struct isd_image *scratch;      /* partial images, reused */
};

static bool should_abort(const struct job *j)
{
    return j->hooks && j->hooks->should_abort && j->hooks->should_abort(j->hooks->ctx);
}

static int cancelled(struct isd_error *err)
{
    return isd_err_set(err, ISD_E_CANCELLED, NULL, "image generation was cancelled");
}

/* End of a stage: progress, the optional pause, the abort check. */
static int checkpoint(struct job *j, int index, int *step, int n_steps, struct isd_error *err)
{
    ++*step;
    if (j->hooks && j->hooks->progress)
        j->hooks->progress(j->hooks->ctx, index, *step, n_steps);
    for (int left = j->m->stage_delay_ms; left > 0; left -= 10) {
        if (should_abort(j))
            return cancelled(err);
        int ms = left < 10 ? left : 10;
        struct timespec ts = {0, (long)ms * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    return should_abort(j) ? cancelled(err) : 0;
}

/* One row of an edit or variation layer: the input (mirrored, hue-rotated by the 4.12 matrix hm
 * unless NULL) over the background (transparent black, or the opaque pattern), then the pattern
 * laid atop with weight tint/255. */
static void under_row(uint8_t *d, const uint8_t *srow, const uint8_t *in, const uint8_t *t,
                      const struct pattern *p, bool transparent, bool mirror, const int *hm,
                      unsigned tint)
{
    int w = p->w;
    for (int x = 0; x < w; x++, d += 4) {
        uint8_t pat[4];
        memcpy(pat, in[x] ? &p->fg[t[x]] : &p->bg[t[x]], 4);
        const uint8_t *sp = srow + 4 * (mirror ? w - 1 - x : x);
        unsigned r = sp[0], g = sp[1], b = sp[2], a = sp[3];
        if (hm) {
            int ri = (int)r, gi = (int)g, bi = (int)b;
            r = clamp_u8((hm[0] * ri + hm[1] * gi + hm[2] * bi + 2048) >> 12);
            g = clamp_u8((hm[3] * ri + hm[4] * gi + hm[5] * bi + 2048) >> 12);
            b = clamp_u8((hm[6] * ri + hm[7] * gi + hm[8] * bi + 2048) >> 12);
        }
        if (!transparent && a < 255) { /* over the opaque pattern */
            r = div255(r * a + pat[0] * (255 - a));
            g = div255(g * a + pat[1] * (255 - a));
            b = div255(b * a + pat[2] * (255 - a));
            a = 255;
        } /* over transparent black the input stays as it is */
        if (a > 0) {
            r = div255(r * (255 - tint) + pat[0] * tint);
            g = div255(g * (255 - tint) + pat[1] * tint);
            b = div255(b * (255 - tint) + pat[2] * tint);
        } else {
            r = g = b = 0;
        }
        d[0] = (uint8_t)r;
        d[1] = (uint8_t)g;
        d[2] = (uint8_t)b;
        d[3] = (uint8_t)a;
    }
}

/* Paints image i's layer: the pattern, or the inputs over the background with the pattern
 * laid atop. */
static int paint_layer(const struct job *j, int index, const struct pattern *p,
                       struct isd_image *layer, struct isd_error *err)
{
    int w = j->w;
    uint8_t *in = malloc((size_t)w * 2);
    if (!in)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a pattern row");
    uint8_t *t = in + w;
    const struct isd_gen_request *req = j->req;
    bool variation = req->op == ISD_GEN_VARIATION;
    uint64_t rng = mix64(isd_gen_image_seed(req->seed, index) ^ 0x5a5a5a5a5a5a5a5aULL);
    int hm[9];
    hue_matrix(1 + (int)((rng_next(&rng) % 11 + (uint64_t)index * 5) % 11), hm);
    bool mirror = variation && (rng_next(&rng) & 1);
    unsigned tint = variation ? 56 : 64; /* pattern weight laid atop the inputs */
    for (int y = 0; y < j->h; y++) {
        pattern_row(p, y, in, t);
        uint8_t *d = isd_image_px(layer, 0, y);
        if (!j->under) {
            for (int x = 0; x < w; x++)
                memcpy(d + 4 * x, in[x] ? &p->fg_out[t[x]] : &p->bg_out[t[x]], 4);
            continue;
        }
        under_row(d, isd_image_px(j->under, 0, y), in, t, p, req->transparent, mirror,
                  variation ? hm : NULL, tint);
    }
    free(in);
    return 0;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The request facts, lines separated by '\n'. */
static size_t facts_text(char *dst, size_t cap, const struct isd_gen_request *req, int index)
{
    int n =
        snprintf(dst, cap, "%s \xC2\xB7 %dx%d \xC2\xB7 %s%s%s\n%s %d of %d\nseed 0x%llx",
                 req->model ? req->model : "mock", req->width, req->height,
                 req->quality ? req->quality : "auto", req->style ? " \xC2\xB7 " : "",
                 req->style ? req->style : "", req->op == ISD_GEN_VARIATION ? "variation" : "image",
                 index + 1, req->n, (unsigned long long)req->seed);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1; /* a cut display string is acceptable */
}

static const uint8_t panel_rgba[4] = {0, 0, 0, 150};
static const uint8_t text_rgba[4] = {255, 255, 255, 255};

/* Lays the prompt out in `avail` pixels of height: the largest of three sizes at which it fits,
 * else the smallest, truncated. pl->n_lines = 0 when nothing fits. */
static int layout_prompt(const struct job *j, int s, int inner_w, int avail,
                         struct isd_font_layout *pl, struct isd_error *err)
{
    static const int divisors[3] = {10, 14, 20};
    const char *prompt = j->req->prompt;
    size_t prompt_len = prompt ? j->req->prompt_len : 0;
    pl->n_lines = 0;
    for (int k = 0; k < 3 && prompt_len > 0 && avail > 0; k++) {
        int px = clampi(s / divisors[k], 10, ISD_FONT_MAX_PX);
        struct isd_font_metrics fm;
        int rc = isd_font_metrics(j->m->bold, px, &fm, err);
        if (rc < 0)
            return rc;
        int lines = avail / fm.line_height;
        if (lines < 1)
            continue;
        rc = isd_font_layout(j->m->bold, px, inner_w, lines, prompt, prompt_len, pl, err);
        if (rc < 0)
            return rc;
        if (!pl->truncated)
            break;
    }
    return 0;
}

/* The prompt panel (top left) and the facts panel (bottom left) inside j->text_area. When both
 * do not fit (small areas), the prompt wins: two prompt lines at the smallest size come before
 * the facts. */
static int draw_text(const struct job *j, int index, struct isd_image *im, struct isd_error *err)
{
    struct isd_font_rect a = j->text_area;
    int s = a.w < a.h ? a.w : a.h;
    if (s < 40)
        return 0;
    int margin = s / 32 > 3 ? s / 32 : 3, pad = s / 64 > 2 ? s / 64 : 2;
    int inner_w = a.w - 2 * margin - 2 * pad;
    if (inner_w < 16)
        return 0;

    char facts[512];
    size_t facts_len = facts_text(facts, sizeof facts, j->req, index);
    struct isd_font_layout fl;
    int rc = isd_font_layout(j->m->regular, clampi(s / 22, 10, ISD_FONT_MAX_PX), inner_w, 6, facts,
                             facts_len, &fl, err);
    if (rc < 0)
        return rc;
    int facts_h = fl.n_lines > 0 ? fl.height + 2 * pad + margin : 0;
    bool has_prompt = false; /* anything but ASCII spaces and controls */
    for (size_t i = 0; j->req->prompt && i < j->req->prompt_len && !has_prompt; i++) {
        unsigned char c = (unsigned char)j->req->prompt[i];
        has_prompt = c > 0x20 && c != 0x7F;
    }
    struct isd_font_metrics small;
    if ((rc = isd_font_metrics(j->m->bold, clampi(s / 20, 10, ISD_FONT_MAX_PX), &small, err)) < 0)
        return rc;
    if (has_prompt && a.h - 2 * margin - 2 * pad - facts_h < 2 * small.line_height)
        facts_h = 0; /* no room for both */

    struct isd_font_layout pl;
    if ((rc = layout_prompt(j, s, inner_w, a.h - 2 * margin - 2 * pad - facts_h, &pl, err)) < 0)
        return rc;
    if (pl.n_lines > 0) {
        struct isd_font_rect pbox = {a.x + margin, a.y + margin, pl.width + 2 * pad,
                                     pl.height + 2 * pad};
        fill_rect_over(im, pbox, &a, panel_rgba);
        rc = isd_font_draw_layout(j->m->bold, im, &pl, pbox.x + pad, pbox.y + pad, text_rgba, &a,
                                  err);
        if (rc < 0)
            return rc;
    }
    if (facts_h > 0) {
        struct isd_font_rect fbox = {a.x + margin, a.y + a.h - margin - fl.height - 2 * pad,
                                     fl.width + 2 * pad, fl.height + 2 * pad};
        fill_rect_over(im, fbox, &a, panel_rgba);
        rc = isd_font_draw_layout(j->m->regular, im, &fl, fbox.x + pad, fbox.y + pad, text_rgba, &a,
                                  err);
    }
    return rc;
}

/* Emits partial image pi of image i, pixelated into blocks of b pixels. */
static int emit_partial(struct job *j, int index, int pi, int b, const struct isd_image *layer,
                        struct isd_error *err)
{
    if (!j->hooks || !j->hooks->partial)
        return 0;
    if (!j->scratch) {
        j->scratch = isd_image_new(j->w, j->h, err);
        if (!j->scratch)
            return -(int)err->id;
    }
    if (j->mask)
        mask_mix(j->scratch, j->base, layer, j->mask);
    else
        memcpy(j->scratch->rgba, layer->rgba, (size_t)j->w * (size_t)j->h * 4);
    int rc = pixelate(j->scratch, b, err);
    if (rc < 0)
        return rc;
    finish_alpha(j->scratch, j->req->transparent);
    rc = j->hooks->partial(j->hooks->ctx, index, pi, j->scratch);
    if (rc < 0) {
        isd_err_set(err, ISD_E_CANCELLED, NULL, "the partial image hook stopped the job");
        return rc;
    }
    return 0;
}

/* Block size of partial pi of k: coarse to sharp. */
static int partial_block(const struct job *j, int k, int pi)
{
    static const int div[3][3] = {{32, 0, 0}, {16, 64, 0}, {16, 64, 256}};
    int s = j->w < j->h ? j->w : j->h;
    int b = s / div[k - 1][pi];
    return b < 2 ? 2 : b;
}

static int render_image(struct job *j, int index, struct isd_image **out, struct isd_error *err)
{
    const struct isd_gen_request *req = j->req;
    int k = req->partial_images, n_steps = 3 + k, step = 0, rc;
    struct pattern *p = malloc(sizeof *p);
    struct isd_image *layer = isd_image_new(j->w, j->h, err);
    struct isd_image *fin = NULL;
    if (!p || !layer) {
        rc = p ? -(int)err->id : isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a pattern");
        goto out;
    }
    uint64_t key = mix64(j->prompt_hash ^ mix64(isd_gen_image_seed(req->seed, index)));
    pattern_init(p, key, j->w, j->h, req->style, req->transparent);
    if ((rc = paint_layer(j, index, p, layer, err)) < 0 ||
        (rc = checkpoint(j, index, &step, n_steps, err)) < 0)
        goto out;
    if (k > 0 && ((rc = emit_partial(j, index, 0, partial_block(j, k, 0), layer, err)) < 0 ||
                  (rc = checkpoint(j, index, &step, n_steps, err)) < 0))
        goto out;
    if ((rc = draw_text(j, index, layer, err)) < 0 ||
        (rc = checkpoint(j, index, &step, n_steps, err)) < 0)
        goto out;
    for (int pi = 1; pi < k; pi++) {
        if ((rc = emit_partial(j, index, pi, partial_block(j, k, pi), layer, err)) < 0 ||
            (rc = checkpoint(j, index, &step, n_steps, err)) < 0)
            goto out;
    }
    if (j->mask) {
        fin = isd_image_new(j->w, j->h, err);
        if (!fin) {
            rc = -(int)err->id;
            goto out;
        }
        mask_mix(fin, j->base, layer, j->mask);
    } else {
        fin = layer;
        layer = NULL;
    }
    finish_alpha(fin, req->transparent);
    if ((rc = checkpoint(j, index, &step, n_steps, err)) < 0)
        goto out;
    *out = fin;
    fin = NULL;
out:
    isd_image_free(fin);
    isd_image_free(layer);
    free(p);
    return rc;
}

/* ---- per-request preparation ---- */

/* Tiles inputs[0..count) over a transparent w x h image, one near-square grid cell each. */
static struct isd_image *tile_inputs(const struct isd_image *const *inputs, int count, int w, int h,
                                     struct isd_error *err)
{
    struct isd_image *dst = isd_image_new(w, h, err);
    if (!dst)
        return NULL;
    int cols = 1;
    while (cols * cols < count)
        cols++;
    int rows = (count + cols - 1) / cols;
    for (int i = 0; i < count; i++) {
        int r = i / cols, in_row = r == rows - 1 ? count - r * cols : cols, c = i % cols;
        int x0 = (int)((int64_t)c * w / in_row), x1 = (int)((int64_t)(c + 1) * w / in_row);
        int y0 = (int)((int64_t)r * h / rows), y1 = (int)((int64_t)(r + 1) * h / rows);
        if (x1 <= x0 || y1 <= y0)
            continue; /* a cell too small to exist at this output size */
        struct isd_image *cell = isd_image_resize(inputs[i], x1 - x0, y1 - y0, err);
        if (!cell) {
            isd_image_free(dst);
            return NULL;
        }
        for (int y = y0; y < y1; y++)
            memcpy(isd_image_px(dst, x0, y), isd_image_px(cell, 0, y - y0), (size_t)(x1 - x0) * 4);
        isd_image_free(cell);
    }
    return dst;
}

/* The mask's alpha at the output size, nearest neighbour; and the bounding box of the pixels
 * it mostly repaints (m < 128). */
static uint8_t *scale_mask(const struct isd_image *mask, int w, int h, struct isd_font_rect *box,
                           struct isd_error *err)
{
    uint8_t *m = malloc((size_t)w * (size_t)h);
    int *sx = malloc(sizeof *sx * (size_t)w);
    if (!m || !sx) {
        free(m);
        free(sx);
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a mask");
        return NULL;
    }
    for (int x = 0; x < w; x++)
        sx[x] = (int)(((int64_t)2 * x + 1) * mask->width / ((int64_t)2 * w));
    int bx0 = w, by0 = h, bx1 = -1, by1 = -1;
    for (int y = 0; y < h; y++) {
        int syy = (int)(((int64_t)2 * y + 1) * mask->height / ((int64_t)2 * h));
        const uint8_t *src = isd_image_px(mask, 0, syy);
        uint8_t *d = m + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++) {
            d[x] = src[4 * sx[x] + 3];
            if (d[x] < 128) {
                if (x < bx0)
                    bx0 = x;
                if (x > bx1)
                    bx1 = x;
                if (y < by0)
                    by0 = y;
                by1 = y;
            }
        }
    }
    free(sx);
    *box = bx1 < 0 ? (struct isd_font_rect){0, 0, 0, 0}
                   : (struct isd_font_rect){bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1};
    return m;
}

static int prepare(struct job *j, struct isd_error *err)
{
    const struct isd_gen_request *req = j->req;
    j->text_area = (struct isd_font_rect){0, 0, j->w, j->h};
    if (req->op == ISD_GEN_VARIATION) {
        j->under = isd_image_resize(req->inputs[0], j->w, j->h, err);
        return j->under ? 0 : -(int)err->id;
    }
    if (req->op != ISD_GEN_EDIT)
        return 0;
    if (!req->mask) {
        j->under = tile_inputs(req->inputs, req->n_inputs, j->w, j->h, err);
        return j->under ? 0 : -(int)err->id;
    }
    j->base = isd_image_resize(req->inputs[0], j->w, j->h, err);
    if (!j->base)
        return -(int)err->id;
    j->mask = scale_mask(req->mask, j->w, j->h, &j->text_area, err);
    if (!j->mask)
        return -(int)err->id;
    if (req->n_inputs > 1) {
        j->under = tile_inputs(req->inputs + 1, req->n_inputs - 1, j->w, j->h, err);
        if (!j->under)
            return -(int)err->id;
    }
    return 0;
}

static int mock_run(void *state, const struct isd_gen_request *req,
                    const struct isd_gen_hooks *hooks, struct isd_image **out,
                    struct isd_error *err)
{
    if (req->n < 1 || req->n > ISD_MOCK_MAX_N)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "n", "n must be between 1 and %d",
                           ISD_MOCK_MAX_N);
    for (int i = 0; i < req->n; i++)
        out[i] = NULL;
    int rc = isd_gen_request_check(req, err);
    if (rc < 0)
        return rc;
    struct job j = {.m = state, .req = req, .hooks = hooks, .w = req->width, .h = req->height};
    j.prompt_hash = hash_bytes(req->prompt ? req->prompt : "", req->prompt ? req->prompt_len : 0);
    rc = prepare(&j, err);
    for (int i = 0; rc == 0 && i < req->n; i++) {
        if (should_abort(&j)) {
            rc = cancelled(err);
            break;
        }
        rc = render_image(&j, i, &out[i], err);
        if (rc == 0 && hooks && hooks->image_done) {
            int hr = hooks->image_done(hooks->ctx, i, out[i]);
            if (hr < 0) {
                isd_err_set(err, ISD_E_CANCELLED, NULL, "image hook stopped the job");
                rc = hr;
            }
        }
    }
    if (rc < 0) {
        for (int i = 0; i < req->n; i++) {
            isd_image_free(out[i]);
            out[i] = NULL;
        }
    }
    isd_image_free(j.base);
    isd_image_free(j.under);
    isd_image_free(j.scratch);
    free(j.mask);
    return rc;
}

static void mock_caps(void *state, struct isd_gen_caps *out)
{
    (void)state;
    *out = (struct isd_gen_caps){.edits = true,
                                 .masks = true,
                                 .variations = true,
                                 .partials = true,
                                 .transparency = true,
                                 .max_n = ISD_MOCK_MAX_N};
}

static void mock_destroy(void *state)
{
    struct mock *m = state;
    if (!m)
        return;
    isd_font_free(m->regular);
    isd_font_free(m->bold);
    free(m);
}

static const struct isd_gen_ops mock_ops = {
    .name = "mock", .caps = mock_caps, .run = mock_run, .destroy = mock_destroy};

struct isd_generator *isd_mock_new(const struct isd_mock_options *opts, struct isd_error *err)
{
    struct isd_mock_options defaults = {0};
    if (!opts)
        opts = &defaults;
    struct mock *m = calloc(1, sizeof *m);
    struct isd_generator *g = calloc(1, sizeof *g);
    if (!m || !g) {
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for the mock generator");
        goto fail;
    }
    m->stage_delay_ms = opts->stage_delay_ms > 0 ? opts->stage_delay_ms : 0;
    m->regular = isd_font_new(opts->font_path ? opts->font_path : ISD_FONT_DEFAULT_PATH, err);
    if (!m->regular)
        goto fail;
    m->bold =
        isd_font_new(opts->bold_font_path ? opts->bold_font_path : ISD_FONT_DEFAULT_BOLD_PATH, err);
    if (!m->bold)
        goto fail;
    g->ops = &mock_ops;
    g->state = m;
    return g;
fail:
    mock_destroy(m);
    free(g);
    return NULL;
}
