/*
 * mock: the "mock" generator, a fast deterministic test renderer (not a model) for offline
 * development and CI of client apps. Its images visibly reflect the request, so an app's tests
 * can check real behaviour. Same request -> byte-identical pixels, on any thread.
 *
 * Every image i of a request is keyed by K = mix(hash(prompt bytes), isd_gen_image_seed(seed,
 * i)); K drives a splitmix64 PRNG that picks a palette (three HSV colours; dall-e-3 style
 * "vivid" saturates them, "natural" mutes them) and a pattern: a linear gradient at a random
 * direction under one of stripes, rotated checker, rings, XOR-ed circles or a dot lattice.
 *
 * Text (white on dark translucent panels, DejaVu Sans; sizes relative to the shorter side s
 * of the text area, never below 10 px; nothing is drawn in an area whose s is under 40 px):
 *   top left:    the prompt (bold), wrapped, at the largest of s/10, s/14, s/20 px at which it
 *                fits, else at s/20 truncated with "…";
 *   bottom left: at s/22 px, "<model> · <W>x<H> · <quality>[ · <style>]", "image i of n"
 *                (1-based; "variation i of n" for variations), "seed 0x<request seed, hex>".
 *                Left out when the area cannot also hold two prompt lines (the prompt wins).
 *
 * Operations:
 *   GENERATE   the pattern and the text over the whole image.
 *   EDIT with a mask: inputs[0] is resized to the output size (isd_image_resize; an exact copy
 *              when the size is unchanged) and the mask likewise with nearest-neighbour
 *              sampling (it stays crisp). The repaint layer is the pattern, or, when more inputs
 *              are given, inputs[1..] tiled over the pattern (as for an edit without a mask).
 *              With m the mask alpha of a pixel: m = 255 keeps the input pixel bit for bit
 *              (alpha too on transparent requests, see below); m = 0 takes the layer pixel;
 *              otherwise the two are mixed in premultiplied alpha with weights m and 255 - m.
 *              The text is laid out inside the bounding box of the pixels with m < 128 and drawn
 *              on the layer, so it shows only where the mask repaints (none in a tiny region).
 *   EDIT without a mask: every input, each resized to one cell of a near-square grid (row by
 *              row, cells as equal as the size allows), composited over the background, then
 *              the pattern laid over it at 25% ("atop": colour only, alpha unchanged), then the
 *              text.
 *   VARIATION  inputs[0] resized to the output size and composited over the background; each
 *              variant is hue-rotated by a multiple of 30 degrees (distinct for i < 11), mirrored
 *              when a seed bit says so, overlaid atop with the pattern at 22%, and labelled
 *              "variation i of n" (no prompt panel).
 *
 * Transparency: on transparent requests the background is transparent black (0,0,0,0), pattern
 * shapes have alpha 200, panels alpha 150 and fully covered text pixels alpha 255; edits keep
 * the input's alpha; has_alpha is true. On opaque requests the background is the gradient, an
 * input's transparent parts show the pattern (no-mask edits, variations), every output alpha is
 * 255 and has_alpha is false: kept pixels of a masked edit keep their RGB exactly and get alpha
 * 255.
 *
 * Partial images (k = partial_images, 1..3): coarse to sharp, all at the final size, emitted in
 * order as the image's work proceeds: partial 0 is the pattern (masked edits: pattern composited
 * into the input) pixelated into blocks of max(2, s/16) pixels (k = 1: s/32), without text,
 * right after the pattern is painted; partials 1 and 2 are the image with its text pixelated
 * into blocks of max(2, s/64) and max(2, s/256) pixels (s = shorter side). Blocks average in
 * premultiplied alpha. should_abort is checked before every image and after every stage and
 * partial; progress(i, step, 3 + k) follows each stage.
 *
 * Errors: -ISD_E_INVALID_VALUE for n outside 1..10, partial_images outside 0..3, a bad size, an
 * edit or variation without inputs; -ISD_E_INVALID_MASK for a mask whose size differs from
 * inputs[0]; -ISD_E_CANCELLED on abort; -ISD_E_NOMEM; a hook's negative return is passed on.
 * On any error with a valid n, every out[] entry is freed and NULL (an invalid n leaves out[]
 * untouched).
 *
 * Threading: one generator serves concurrent run() calls; its only shared state is the fonts,
 * whose glyph caches are thread-safe (src/font). Memory per run: the output images plus about
 * three W x H RGBA buffers.
 *
 *     struct isd_mock_options o = {0};                     // DejaVu Sans from fonts-dejavu-core
 *     struct isd_generator *g = isd_mock_new(&o, &err);
 *     isd_gen_run(g, &req, &hooks, out, &err);
 *     isd_gen_free(g);
 */
#ifndef ISD_MOCK_H
#define ISD_MOCK_H

#include "err/err.h"
#include "gen/gen.h"

#define ISD_MOCK_MAX_N 10

struct isd_mock_options {
    const char *font_path;      /* facts text; NULL: ISD_FONT_DEFAULT_PATH */
    const char *bold_font_path; /* prompt text; NULL: ISD_FONT_DEFAULT_BOLD_PATH */
    int stage_delay_ms;         /* sleep after each stage (0: none), for testing clients'
                                   progress and cancellation; sliced so aborts stay prompt */
};

/* A new mock generator (opts may be NULL for the defaults); fails with -ISD_E_IO when a font
 * cannot be loaded. Free it with isd_gen_free(). */
struct isd_generator *isd_mock_new(const struct isd_mock_options *opts, struct isd_error *err);

#endif
