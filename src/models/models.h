/*
 * models: the model catalogue. It maps each public model name to the profile whose API rules
 * apply and to the generator that makes its images, and lists the names for GET /v1/models.
 *
 * Built in (no config file needed): every OpenAI image model name, served by the mock
 * generator with its own profile: dall-e-2, dall-e-3, gpt-image-1, gpt-image-1-mini,
 * gpt-image-1.5, chatgpt-image-latest (gpt-image-1.5 rules), gpt-image-2 and
 * gpt-image-2-2026-04-21 (gpt-image-2 rules).
 * The config file adds or replaces entries with `[model "NAME"]` sections:
 *     [model "my-mock"]
 *     profile = gpt-image-1      ; whose API rules apply (required)
 *     generator = mock           ; mock (default) or diffusion
 *     owned_by = me              ; optional, for /v1/models
 *     [model "sd15"]
 *     profile = gpt-image-1
 *     generator = diffusion      ; a local Stable Diffusion model, loaded at start
 *     checkpoint = /models/v1-5-pruned-emaonly.fp16.safetensors
 *     extensions = true          ; take seed, steps... (default: true unless the entry's name
 *                                ; is an OpenAI model name, which keeps OpenAI's exact rules)
 *     ...                        ; the diffusion options (src/diffusion/diffusion.h)
 * Unknown keys or values are refused at load with the file line.
 *
 * Ownership: isd_catalogue_new() returns a heap catalogue (isd_catalogue_free, NULL-safe) that
 * owns its entries and generators; entries stay valid until it is freed.
 * Threading: read-only after creation; generators are shared by all workers.
 */
#ifndef ISD_MODELS_H
#define ISD_MODELS_H

#include "api/api.h"
#include "config/config.h"
#include "err/err.h"
#include "gen/gen.h"

#include <stddef.h>
#include <stdint.h>

struct isd_model {
    char *name;                        /* public model name */
    const struct isd_profile *profile; /* API rules */
    const char *generator_kind;        /* "mock" | "diffusion" */
    struct isd_generator *gen;         /* shared; owned by the catalogue */
    struct isd_gen_caps caps;          /* what the generator can do */
    bool extensions;                   /* requests may carry the extension fields */
    int64_t created;                   /* unix time shown by /v1/models */
    char *owned_by;                    /* shown by /v1/models */
};

struct isd_catalogue;

int isd_catalogue_new(const struct isd_config *cfg, struct isd_catalogue **out,
                      struct isd_error *err);
void isd_catalogue_free(struct isd_catalogue *cat);

const struct isd_model *isd_catalogue_find(const struct isd_catalogue *cat, const char *name,
                                           size_t len);
size_t isd_catalogue_count(const struct isd_catalogue *cat);
const struct isd_model *isd_catalogue_at(const struct isd_catalogue *cat, size_t i);
/* The api module's view of the catalogue (lookup + the configured default models). */
void isd_catalogue_resolver(const struct isd_catalogue *cat, const struct isd_config *cfg,
                            struct isd_api_resolver *out);

#endif
