#include "gen/gen.h"

#include <stdlib.h>

void isd_gen_free(struct isd_generator *g)
{
    if (!g)
        return;
    if (g->ops && g->ops->destroy)
        g->ops->destroy(g->state);
    free(g);
}

/* splitmix64 finaliser: a bijection, so distinct (seed + index) inputs give distinct outputs. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t isd_gen_image_seed(uint64_t request_seed, int index)
{
    return mix64(request_seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(index + 1));
}

int isd_gen_request_check(const struct isd_gen_request *req, struct isd_error *err)
{
    if (req->width < 1 || req->height < 1 || req->width > ISD_IMAGE_MAX_SIDE ||
        req->height > ISD_IMAGE_MAX_SIDE ||
        (uint64_t)req->width * (uint64_t)req->height > ISD_IMAGE_MAX_PIXELS)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "size", "size %dx%d is out of range",
                           req->width, req->height);
    if (req->partial_images < 0 || req->partial_images > 3)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "partial_images",
                           "partial_images must be between 0 and 3");
    if (req->op == ISD_GEN_GENERATE)
        return 0;
    if (req->n_inputs < 1 || req->n_inputs > ISD_GEN_MAX_INPUTS)
        return isd_err_set(err, ISD_E_INVALID_VALUE, "image",
                           "edits and variations need 1 to %d input images", ISD_GEN_MAX_INPUTS);
    for (int i = 0; i < req->n_inputs; i++)
        if (!req->inputs[i])
            return isd_err_set(err, ISD_E_INVALID_VALUE, "image", "input image %d is missing", i);
    if (req->op == ISD_GEN_EDIT && req->mask &&
        (req->mask->width != req->inputs[0]->width || req->mask->height != req->inputs[0]->height))
        return isd_err_set(err, ISD_E_INVALID_MASK, "mask",
                           "Invalid mask image: the mask must have the same size as the image.");
    return 0;
}
