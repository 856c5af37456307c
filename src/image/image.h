/*
 * image: the in-memory raster every module exchanges: 8-bit RGBA, row-major, no padding.
 *
 * Ownership: isd_image_new() / isd_image_clone() / isd_image_resize() return a heap image the
 * caller frees with isd_image_free() (NULL is a no-op). Pixels belong to the image.
 * `has_alpha` says whether the alpha channel carries information; when false every alpha
 * byte is 255 and encoders may drop the channel.
 *
 * Limits: width and height are 1..ISD_IMAGE_MAX_SIDE and width*height <= ISD_IMAGE_MAX_PIXELS,
 * so byte counts never overflow; constructors refuse anything larger with -ISD_E_INVALID_VALUE
 * (via a NULL return and the caller's isd_error).
 *
 *     struct isd_image *im = isd_image_new(1024, 1024, &err);
 *     uint8_t *px = isd_image_px(im, x, y);   // px[0..3] = R, G, B, A
 *     isd_image_free(im);
 *
 * Pure data and functions; an image is used by one thread at a time unless only read.
 */
#ifndef ISD_IMAGE_H
#define ISD_IMAGE_H

#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISD_IMAGE_MAX_SIDE   16384
#define ISD_IMAGE_MAX_PIXELS (64u * 1024u * 1024u)

struct isd_image {
    int width;      /* pixels, 1..ISD_IMAGE_MAX_SIDE */
    int height;     /* pixels, 1..ISD_IMAGE_MAX_SIDE */
    bool has_alpha; /* alpha carries information (otherwise all 255) */
    uint8_t *rgba;  /* width * height * 4 bytes, owned */
};

/* A new image, every pixel transparent black (0,0,0,0) and has_alpha false. */
struct isd_image *isd_image_new(int width, int height, struct isd_error *err);
void isd_image_free(struct isd_image *im);
struct isd_image *isd_image_clone(const struct isd_image *im, struct isd_error *err);

static inline uint8_t *isd_image_px(const struct isd_image *im, int x, int y)
{
    return im->rgba + ((size_t)y * (size_t)im->width + (size_t)x) * 4;
}

/* Fills every pixel with one colour. */
void isd_image_fill(struct isd_image *im, uint8_t r, uint8_t g, uint8_t b, uint8_t a);
/* Sets alpha to 255 everywhere and has_alpha to false. */
void isd_image_make_opaque(struct isd_image *im);
/* Recomputes has_alpha from the pixels (true when any alpha byte is not 255). */
bool isd_image_scan_alpha(struct isd_image *im);

/* Resamples to width x height: area averaging when shrinking, bilinear when enlarging,
 * with alpha-premultiplied filtering so transparent pixels do not bleed colour. When the size
 * is unchanged the result is an exact copy. */
struct isd_image *isd_image_resize(const struct isd_image *src, int width, int height,
                                   struct isd_error *err);

/* Nearest-neighbour resampling (for masks, which must stay crisp); exact copy at equal size. */
struct isd_image *isd_image_resize_nearest(const struct isd_image *src, int width, int height,
                                           struct isd_error *err);
/* When `src` is larger than width x height on either side, a copy shrunk to fit inside it
 * (aspect kept, area filtering); otherwise NULL with no error (use src as it is). */
struct isd_image *isd_image_shrink_to_fit(const struct isd_image *src, int width, int height,
                                          struct isd_error *err);

#endif
