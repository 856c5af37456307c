#include "image/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool size_ok(int width, int height)
{
    return width >= 1 && height >= 1 && width <= ISD_IMAGE_MAX_SIDE &&
           height <= ISD_IMAGE_MAX_SIDE &&
           (uint64_t)width * (uint64_t)height <= ISD_IMAGE_MAX_PIXELS;
}

struct isd_image *isd_image_new(int width, int height, struct isd_error *err)
{
    if (!size_ok(width, height)) {
        isd_err_set(err, ISD_E_INVALID_VALUE, NULL, "image size %dx%d is out of range", width,
                    height);
        return NULL;
    }
    struct isd_image *im = malloc(sizeof *im);
    uint8_t *px = calloc((size_t)width * (size_t)height, 4);
    if (!im || !px) {
        free(im);
        free(px);
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory for a %dx%d image", width, height);
        return NULL;
    }
    im->width = width;
    im->height = height;
    im->has_alpha = false;
    im->rgba = px;
    return im;
}

void isd_image_free(struct isd_image *im)
{
    if (!im)
        return;
    free(im->rgba);
    free(im);
}

struct isd_image *isd_image_clone(const struct isd_image *im, struct isd_error *err)
{
    struct isd_image *c = isd_image_new(im->width, im->height, err);
    if (!c)
        return NULL;
    memcpy(c->rgba, im->rgba, (size_t)im->width * (size_t)im->height * 4);
    c->has_alpha = im->has_alpha;
    return c;
}

void isd_image_fill(struct isd_image *im, uint8_t r, uint8_t g, uint8_t b, uint8_t a)
{
    size_t n = (size_t)im->width * (size_t)im->height;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = im->rgba + 4 * i;
        p[0] = r;
        p[1] = g;
        p[2] = b;
        p[3] = a;
    }
    im->has_alpha = a != 255;
}

void isd_image_make_opaque(struct isd_image *im)
{
    size_t n = (size_t)im->width * (size_t)im->height;
    for (size_t i = 0; i < n; i++)
        im->rgba[4 * i + 3] = 255;
    im->has_alpha = false;
}

bool isd_image_scan_alpha(struct isd_image *im)
{
    size_t n = (size_t)im->width * (size_t)im->height;
    im->has_alpha = false;
    for (size_t i = 0; i < n; i++) {
        if (im->rgba[4 * i + 3] != 255) {
            im->has_alpha = true;
            break;
        }
    }
    return im->has_alpha;
}

/* One output sample's contributions: `count` source indices from `first`, weights summing to 1. */
struct taps {
    int first;
    int count;
    float *w; /* count weights */
};

/* Triangle filter whose radius grows with the shrink factor: bilinear when enlarging,
 * an area-like average when shrinking. */
static struct taps *make_taps(int src, int dst, float **storage)
{
    float scale = (float)src / (float)dst;
    float support = scale > 1.0f ? scale : 1.0f;
    int max_taps = (int)ceilf(support) * 2 + 2;
    struct taps *t = malloc(sizeof *t * (size_t)dst);
    float *w = malloc(sizeof *w * (size_t)dst * (size_t)max_taps);
    if (!t || !w) {
        free(t);
        free(w);
        return NULL;
    }
    for (int o = 0; o < dst; o++) {
        float center = ((float)o + 0.5f) * scale - 0.5f;
        int lo = (int)floorf(center - support) + 1;
        int hi = (int)ceilf(center + support) - 1;
        if (lo < 0)
            lo = 0;
        if (hi > src - 1)
            hi = src - 1;
        if (hi - lo + 1 > max_taps)
            hi = lo + max_taps - 1;
        float *ws = w + (size_t)o * (size_t)max_taps;
        float sum = 0;
        int count = 0;
        for (int i = lo; i <= hi; i++) {
            float d = fabsf((float)i - center) / support;
            float v = d < 1.0f ? 1.0f - d : 0.0f;
            ws[count++] = v;
            sum += v;
        }
        if (count == 0 || sum <= 0) { /* degenerate: nearest sample */
            int nearest = (int)lrintf(center);
            lo = nearest < 0 ? 0 : (nearest >= src ? src - 1 : nearest);
            ws[0] = 1.0f;
            count = 1;
            sum = 1.0f;
        }
        for (int i = 0; i < count; i++)
            ws[i] /= sum;
        t[o].first = lo;
        t[o].count = count;
        t[o].w = ws;
    }
    *storage = w;
    return t;
}

static uint8_t to_byte(float v)
{
    if (v <= 0.0f)
        return 0;
    if (v >= 255.0f)
        return 255;
    return (uint8_t)lrintf(v);
}

struct isd_image *isd_image_resize(const struct isd_image *src, int width, int height,
                                   struct isd_error *err)
{
    if (src->width == width && src->height == height)
        return isd_image_clone(src, err);
    struct isd_image *dst = isd_image_new(width, height, err);
    if (!dst)
        return NULL;
    float *xw = NULL, *yw = NULL;
    struct taps *xt = make_taps(src->width, width, &xw);
    struct taps *yt = make_taps(src->height, height, &yw);
    float *row = malloc(sizeof *row * (size_t)src->width * 4);
    if (!xt || !yt || !row) {
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory while resizing");
        isd_image_free(dst);
        dst = NULL;
        goto out;
    }
    for (int oy = 0; oy < height; oy++) {
        /* vertical pass into one premultiplied float row */
        memset(row, 0, sizeof *row * (size_t)src->width * 4);
        for (int k = 0; k < yt[oy].count; k++) {
            float wy = yt[oy].w[k];
            const uint8_t *s = isd_image_px(src, 0, yt[oy].first + k);
            for (int x = 0; x < src->width; x++) {
                float a = s[4 * x + 3] * wy;
                float *r = row + 4 * x;
                r[0] += s[4 * x + 0] * a;
                r[1] += s[4 * x + 1] * a;
                r[2] += s[4 * x + 2] * a;
                r[3] += a;
            }
        }
        /* horizontal pass, then un-premultiply */
        uint8_t *d = isd_image_px(dst, 0, oy);
        for (int ox = 0; ox < width; ox++) {
            float acc[4] = {0, 0, 0, 0};
            for (int k = 0; k < xt[ox].count; k++) {
                const float *r = row + 4 * (xt[ox].first + k);
                float wx = xt[ox].w[k];
                acc[0] += r[0] * wx;
                acc[1] += r[1] * wx;
                acc[2] += r[2] * wx;
                acc[3] += r[3] * wx;
            }
            float a = acc[3];
            if (a > 1e-6f) {
                d[4 * ox + 0] = to_byte(acc[0] / a);
                d[4 * ox + 1] = to_byte(acc[1] / a);
                d[4 * ox + 2] = to_byte(acc[2] / a);
            }
            d[4 * ox + 3] = to_byte(a);
        }
    }
    dst->has_alpha = src->has_alpha;
    if (!src->has_alpha)
        isd_image_make_opaque(dst);
out:
    free(row);
    free(xt);
    free(yt);
    free(xw);
    free(yw);
    return dst;
}

struct isd_image *isd_image_resize_nearest(const struct isd_image *src, int width, int height,
                                           struct isd_error *err)
{
    if (src->width == width && src->height == height)
        return isd_image_clone(src, err);
    struct isd_image *dst = isd_image_new(width, height, err);
    if (!dst)
        return NULL;
    for (int y = 0; y < height; y++) {
        int sy = (int)(((int64_t)y * 2 + 1) * src->height / (2 * (int64_t)height));
        for (int x = 0; x < width; x++) {
            int sx = (int)(((int64_t)x * 2 + 1) * src->width / (2 * (int64_t)width));
            memcpy(isd_image_px(dst, x, y), isd_image_px(src, sx, sy), 4);
        }
    }
    dst->has_alpha = src->has_alpha;
    return dst;
}

struct isd_image *isd_image_shrink_to_fit(const struct isd_image *src, int width, int height,
                                          struct isd_error *err)
{
    if (src->width <= width && src->height <= height)
        return NULL;
    double s = fmin((double)width / src->width, (double)height / src->height);
    int w = (int)lround(src->width * s), h = (int)lround(src->height * s);
    return isd_image_resize(src, w < 1 ? 1 : w, h < 1 ? 1 : h, err);
}
