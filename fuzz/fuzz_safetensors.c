/*
 * fuzz_safetensors: the safetensors header parser on arbitrary bytes, then (when it accepts
 * them) the single-file model layer: name canonicalisation, configuration inference and the
 * full tensor check. Every tensor and view it reports is read end to end, so ASan sees any
 * pointer outside the input.
 *
 * Two input forms:
 *  - a safetensors file, as is;
 *  - 'Z', u32 little-endian L (<= 16 MiB), then a JSON header: the target builds the file
 *    (length + header + L zero bytes). Seeds of this form hold the headers of real tiny models
 *    (~60 KB instead of 6 MB), so mutations reach deep into inference and validation.
 */
#include "engine/weights/weights.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static unsigned touch(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned x = 0;
    for (size_t i = 0; i < n; i++)
        x += b[i];
    return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *data, size_t size)
{
    struct isd_wt_st *st;
    struct isd_eng_error err = {0};
    volatile unsigned sink = 0;
    if (isd_wt_st_parse(data, size, "fuzz", &st, &err) < 0)
        return;
    for (size_t i = 0; i < isd_wt_st_count(st); i++) {
        const struct isd_wt_st_tensor *t = isd_wt_st_at(st, i);
        sink += touch(t->data, t->nbytes);
        sink += isd_wt_st_find(st, t->name) == t;
    }
    for (size_t i = 0; i < isd_wt_st_meta_count(st); i++) {
        const char *v;
        const char *k = isd_wt_st_meta_at(st, i, &v);
        sink += isd_wt_st_meta(st, k) == v;
    }
    isd_wt_st_free(st);

    /* the model layer, once per component set, so a missing part does not hide the others */
    static const int sets[] = {ISD_WT_ALL, ISD_WT_UNET, ISD_WT_TEXT, ISD_WT_VAE_DEC};
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        struct isd_wt_options o;
        struct isd_wt_model *m;
        isd_wt_options_init(&o);
        o.components = sets[s];
        int rc = isd_wt_model_open_mem(data, size, &o, &m, &err);
        if (rc < 0)
            continue;
        for (size_t i = 0; i < isd_wt_model_count(m); i++) {
            const struct isd_wt_view *v = isd_wt_model_at(m, i);
            float f[64];
            size_t n = v->numel < 64 ? v->numel : 64;
            sink += touch(v->data, v->nbytes);
            if (isd_wt_view_range_to_f32(v, v->numel - n, n, f) == 0)
                sink += n ? (unsigned)(f[0] == f[0]) : 0;
        }
        isd_wt_model_free(m);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5 || data[0] != 'Z') {
        run(data, size);
        return 0;
    }
    size_t zeros =
        (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 | (size_t)data[4] << 24;
    size_t n = size - 5;
    if (zeros > (16u << 20))
        return 0;
    uint8_t *file = calloc(1, 8 + n + zeros);
    if (!file)
        return 0;
    for (int i = 0; i < 8; i++)
        file[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(file + 8, data + 5, n);
    run(file, 8 + n + zeros);
    free(file);
    return 0;
}
