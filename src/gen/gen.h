/*
 * gen: the generator interface. A generator turns a validated, resolved request into n RGBA
 * images. Three implementations exist or are planned: mock (src/mock), diffusion (the native
 * engine) and upstream (an OpenAI-compatible provider).
 *
 * The API layer has already validated everything: sizes are final, `quality` is resolved
 * (never "auto"), the prompt is valid UTF-8. A generator knows nothing of HTTP or JSON.
 *
 * run() executes on a worker thread. It produces out[0..n-1] (heap images the caller frees
 * with isd_image_free) and, as each image is final, calls hooks->image_done (borrowed pointer).
 * Between units of work it calls hooks->should_abort and returns -ISD_E_CANCELLED promptly when
 * it says true, after freeing whatever it made (out[] entries set to NULL).
 * Partial images: when req->partial_images = k > 0, the generator calls hooks->partial up to k
 * times per image, with partial_index 0..k-1 in order, before that image's image_done.
 * Every hook pointer may be NULL.
 *
 * Lifecycle: a generator is created by its module (e.g. isd_mock_new) and freed with
 * isd_gen_free(); one generator serves concurrent run() calls from several workers, so run()
 * must not mutate shared state without its own locking.
 */
#ifndef ISD_GEN_H
#define ISD_GEN_H

#include "err/err.h"
#include "image/image.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum isd_gen_op { ISD_GEN_GENERATE = 0, ISD_GEN_EDIT, ISD_GEN_VARIATION };

#define ISD_GEN_MAX_INPUTS 16

/* Settings of local models a request may carry (the API's extension fields). 0 or NULL means
 * the model's default. Set only for generators whose caps say `extensions`. */
struct isd_gen_extensions {
    int steps;                   /* denoising steps */
    double guidance;             /* classifier-free guidance scale */
    const char *negative_prompt; /* NUL-terminated UTF-8 */
    const char *sampler;         /* a name the generator knows (the API checked the list) */
    double strength;             /* edits/variations: share of the schedule run, (0, 1] */
};

/* What a run did, in the generator's own units (for the usage ledger). */
struct isd_gen_report {
    int steps;         /* denoising steps run, summed over the images */
    double megapixels; /* pixels generated (before any resizing), summed, / 1e6 */
};

struct isd_gen_request {
    enum isd_gen_op op;
    const char *model;   /* public model name, e.g. "gpt-image-1" */
    const char *prompt;  /* UTF-8, not NUL-terminated necessarily; may be empty */
    size_t prompt_len;   /* bytes */
    int width;           /* resolved output width */
    int height;          /* resolved output height */
    const char *quality; /* resolved: low|medium|high|standard|hd */
    const char *style;   /* dall-e-3: vivid|natural; otherwise NULL */
    bool transparent;    /* resolved background is transparent: output needs real alpha */
    int n;               /* images to produce, 1..10 */
    uint64_t seed;       /* request seed; image i uses a seed derived from (seed, i): seed + i
                            exactly when caps.sequential_seeds */
    int partial_images;  /* partial images per image wanted, 0..3 */
    const struct isd_image *inputs[ISD_GEN_MAX_INPUTS]; /* edits/variations: decoded inputs */
    int n_inputs;                                       /* 0 for generations */
    const struct isd_image *mask; /* edits: same size as inputs[0]; alpha 0 = repaint */
    struct isd_gen_extensions ext;
};

struct isd_gen_hooks {
    void *ctx;
    /* True when the job must stop (client gone, timeout, shutdown). Cheap; call often. */
    bool (*should_abort)(void *ctx);
    /* Progress of image `index`: `step` of `n_steps` done. */
    void (*progress)(void *ctx, int index, int step, int n_steps);
    /* A partial image of image `index`; the image is borrowed for the call. Return < 0 to stop
     * generating (the generator then returns that value). */
    int (*partial)(void *ctx, int index, int partial_index, const struct isd_image *img);
    /* Image `index` is final; borrowed (the generator still returns it in out[]). Return < 0 to
     * stop generating. */
    int (*image_done)(void *ctx, int index, const struct isd_image *img);
    /* Filled by run() when not NULL (also when it fails: what was done until then). */
    struct isd_gen_report *report;
};

/* What a generator can do; the API layer refuses requests outside it. */
struct isd_gen_caps {
    bool edits;
    bool masks;
    bool variations;
    bool partials;
    bool transparency;
    int max_n;
    bool extensions;       /* takes struct isd_gen_extensions */
    bool sequential_seeds; /* image i uses exactly seed + i, so the seeds can be reported and a
                              request's seed reproduces its images */
};

struct isd_gen_ops {
    const char *name; /* "mock", "diffusion", "upstream" */
    void (*caps)(void *state, struct isd_gen_caps *out);
    int (*run)(void *state, const struct isd_gen_request *req, const struct isd_gen_hooks *hooks,
               struct isd_image **out, struct isd_error *err);
    void (*destroy)(void *state);
};

struct isd_generator {
    const struct isd_gen_ops *ops;
    void *state;
};

static inline int isd_gen_run(struct isd_generator *g, const struct isd_gen_request *req,
                              const struct isd_gen_hooks *hooks, struct isd_image **out,
                              struct isd_error *err)
{
    return g->ops->run(g->state, req, hooks, out, err);
}

/* Frees the generator and its state; NULL is a no-op. */
void isd_gen_free(struct isd_generator *g);

/* The checks every generator's run() makes of what the API layer should already have checked:
 * the size within the image module's limits, partial_images 0..3, and for edits and
 * variations 1..ISD_GEN_MAX_INPUTS non-NULL inputs and a mask (if any) of the first input's
 * size. 0, or a negative isd_err id with *err set. */
int isd_gen_request_check(const struct isd_gen_request *req, struct isd_error *err);

/* Seed of image `index` of a request: a 64-bit mix of (seed, index), never equal across i. */
uint64_t isd_gen_image_seed(uint64_t request_seed, int index);

#endif
