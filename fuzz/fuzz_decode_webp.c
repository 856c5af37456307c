/*
 * fuzz_decode_webp: isd_codec_probe + isd_codec_decode on arbitrary bytes (the corpus holds
 * WebP files, valid and broken), with the limits an upload gets (4096 per side, 16M pixels).
 * Checks: only 0 / -ISD_E_INVALID_IMAGE / -ISD_E_INVALID_VALUE come back; a decode agrees
 * with the probe; small decoded images re-encode as WebP (alpha kept) and decode to the same
 * size with the alpha plane exact. Any violation aborts.
 */
#include "codec/codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROUND_TRIP_MAX_PIXELS (256 * 256)

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void round_trip(const struct isd_image *im)
{
    struct isd_encode_opts o = {
        .format = ISD_FMT_WEBP, .compression = 50, .keep_alpha = im->has_alpha};
    struct isd_buf b;
    struct isd_error err;
    isd_buf_init(&b, 64u << 20);
    check(isd_codec_encode_buf(im, &o, &b, &err) == 0);
    check(isd_codec_sniff(b.data, b.len) == ISD_FMT_WEBP);
    struct isd_image *back = NULL;
    check(isd_codec_decode(b.data, b.len, NULL, &back, &err) == 0);
    check(back->width == im->width && back->height == im->height);
    size_t n = (size_t)im->width * (size_t)im->height;
    for (size_t i = 0; i < n; i++) /* lossless alpha plane */
        check(back->rgba[4 * i + 3] == (im->has_alpha ? im->rgba[4 * i + 3] : 255));
    isd_image_free(back);
    isd_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct isd_error err;
    struct isd_image_info info;
    int probed = isd_codec_probe(data, size, &info, &err);
    check(probed == 0 || probed == -ISD_E_INVALID_IMAGE);

    struct isd_decode_limits lim = {.max_side = 4096, .max_pixels = 16u << 20};
    struct isd_image *im = NULL;
    int rc = isd_codec_decode(data, size, &lim, &im, &err);
    check(rc == 0 || rc == -ISD_E_INVALID_IMAGE || rc == -ISD_E_INVALID_VALUE);
    if (rc < 0) {
        check(im == NULL && err.id == (enum isd_err_id)(-rc));
        return 0;
    }
    check(probed == 0 && im->width == info.width && im->height == info.height);
    check(im->width <= lim.max_side && im->height <= lim.max_side);
    if ((size_t)im->width * (size_t)im->height <= ROUND_TRIP_MAX_PIXELS)
        round_trip(im);
    isd_image_free(im);
    return 0;
}
