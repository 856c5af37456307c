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
