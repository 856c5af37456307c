/*
 * font: UTF-8 text measured, wrapped and drawn onto RGBA images through FreeType.
 *
 * A font is one TrueType/OpenType file loaded once (isd_font_new, freed with isd_font_free;
 * NULL is a no-op). Text is drawn at a pixel size (ISD_FONT_MIN_PX..ISD_FONT_MAX_PX; other
 * sizes are clamped) with anti-aliased coverage composited "over" the image in straight alpha:
 * drawing colour C with alpha a at coverage c onto pixel (D, d) gives
 *     s = a*c/255,  out_a = s + d*(255-s)/255,  out_rgb = (C*s + D*d*(255-s)/255) / out_a,
 * so on a transparent pixel the result is exactly C with alpha s, and on an opaque one a plain
 * linear blend. Integer arithmetic only: the same call gives the same bytes on every thread.
 *
 * Text handling: bytes are decoded as UTF-8; invalid sequences become U+FFFD. Control
 * characters (C0 except tab and newline, DEL, C1) are skipped, tab counts as a space, newline
 * is a hard line break (a space when drawing a single line). Code points the font lacks are
 * drawn as the font's .notdef box. No shaping: no kerning, ligatures or bidi; right-to-left
 * text is drawn in logical order and combining marks use the font's zero-width mark glyphs.
 *
 * Wrapping (isd_font_layout): greedy, breaking at spaces; a word wider than the line is broken
 * between characters. At most max_lines lines (<= ISD_FONT_MAX_LINES); when text remains, the
 * last line is cut so that it and a trailing "…" (U+2026) fit, and `truncated` is set. Work is
 * proportional to the text that fits, not to the input length.
 *
 * Threading: every function may be called concurrently on one font. Rendered glyphs are cached
 * per (pixel size, glyph) and never freed before isd_font_free; cache reads are lock-free
 * (acquire loads of published, immutable entries), a miss takes the font's mutex, which also
 * serialises every FreeType call (an FT_Face is not thread-safe). The cache holds at most
 * ISD_FONT_CACHE_MAX_BYTES; past that, glyphs are rendered per call into a temporary buffer
 * (correct, slower).
 *
 * Errors: isd_font_new fails with -ISD_E_IO (file missing or not a font) or -ISD_E_NOMEM.
 * Measuring and drawing fail only with -ISD_E_NOMEM. A glyph FreeType cannot render is drawn
 * as nothing with its advance.
 *
 *     struct isd_font *f = isd_font_new(ISD_FONT_DEFAULT_PATH, &err);
 *     struct isd_font_layout l;
 *     isd_font_layout(f, 24, 400, 3, text, len, &l, &err);
 *     isd_font_draw_layout(f, img, &l, 10, 10, (const uint8_t[4]){255, 255, 255, 255},
 *                          NULL, &err);
 *     isd_font_free(f);
 */
#ifndef ISD_FONT_H
#define ISD_FONT_H

#include "err/err.h"
#include "image/image.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISD_FONT_DEFAULT_PATH      "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#define ISD_FONT_DEFAULT_BOLD_PATH "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

#define ISD_FONT_MIN_PX          4
#define ISD_FONT_MAX_PX          1024
#define ISD_FONT_MAX_LINES       64
#define ISD_FONT_CACHE_MAX_BYTES (64u * 1024u * 1024u)

struct isd_font;

/* A rectangle in image pixels: [x, x + w) x [y, y + h). */
struct isd_font_rect {
    int x;
    int y;
    int w;
    int h;
};

/* Vertical metrics at one pixel size, in whole pixels. */
struct isd_font_metrics {
    int ascent;      /* baseline to the top of the tallest glyphs, > 0 */
    int descent;     /* baseline to the bottom of the lowest glyphs, >= 0 */
    int line_height; /* baseline-to-baseline distance */
};

/* One wrapped line: bytes [start, end) of the laid-out text. */
struct isd_font_line {
    size_t start;
    size_t end;
    int width;     /* advance width in pixels, the ellipsis included */
    bool ellipsis; /* "…" drawn after the bytes */
};

/* The result of isd_font_layout: caller-owned storage, no allocation. `text` is borrowed and
 * must stay valid while the layout is drawn. */
struct isd_font_layout {
    const char *text; /* the laid-out bytes (borrowed) */
    size_t len;       /* their count */
    int px;           /* pixel size used (after clamping) */
    struct isd_font_metrics metrics;
    int n_lines;    /* 0..max_lines */
    int width;      /* widest line in pixels */
    int height;     /* n_lines * line_height */
    bool truncated; /* text was left out (the last line ends with "…") */
    struct isd_font_line lines[ISD_FONT_MAX_LINES];
};

/* Loads the font file at `path` (NULL: ISD_FONT_DEFAULT_PATH). */
struct isd_font *isd_font_new(const char *path, struct isd_error *err);
void isd_font_free(struct isd_font *f);

/* Vertical metrics at pixel size px. */
int isd_font_metrics(struct isd_font *f, int px, struct isd_font_metrics *out,
                     struct isd_error *err);

/* Advance width in pixels of `s` drawn as one line (newlines count as spaces). */
int isd_font_measure(struct isd_font *f, int px, const char *s, size_t n, int *width,
                     struct isd_error *err);

/* Draws `s` as one line with its pen starting at x and its baseline at y. Pixels outside the
 * image, or outside `clip` when not NULL, are left alone. */
int isd_font_draw(struct isd_font *f, struct isd_image *im, int px, int x, int y, const char *s,
                  size_t n, const uint8_t rgba[4], const struct isd_font_rect *clip,
                  struct isd_error *err);

/* Wraps `s` to lines of at most max_width pixels, at most max_lines (clamped to
 * ISD_FONT_MAX_LINES) lines. max_width < 1 or max_lines < 1 gives zero lines (truncated when
 * the text has anything to draw). */
int isd_font_layout(struct isd_font *f, int px, int max_width, int max_lines, const char *s,
                    size_t n, struct isd_font_layout *out, struct isd_error *err);

/* Draws a layout with the top of its first line at y (line i's baseline is
 * y + ascent + i * line_height) and every line starting at x. */
int isd_font_draw_layout(struct isd_font *f, struct isd_image *im, const struct isd_font_layout *l,
                         int x, int y, const uint8_t rgba[4], const struct isd_font_rect *clip,
                         struct isd_error *err);

#endif
