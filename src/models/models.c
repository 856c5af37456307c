#include "models/models.h"

#include "diffusion/diffusion.h"
#include "mock/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct isd_catalogue {
    struct isd_model *models;
    size_t n;
    struct isd_generator *mock; /* the one mock generator every mock model shares */
    struct isd_generator **own; /* generators made for one entry (diffusion), freed with it */
    size_t n_own;
};

static const struct {
    const char *name;
    enum isd_profile_id profile;
    int64_t created;
} builtin[] = {
    {"dall-e-2", ISD_PROFILE_DALL_E_2, 1698798177},
    {"dall-e-3", ISD_PROFILE_DALL_E_3, 1698785189},
    {"gpt-image-1", ISD_PROFILE_GPT_IMAGE_1, 1745517030},
    {"gpt-image-1-mini", ISD_PROFILE_GPT_IMAGE_1_MINI, 1759708800},
    {"gpt-image-1.5", ISD_PROFILE_GPT_IMAGE_1_5, 1765843200},
    {"chatgpt-image-latest", ISD_PROFILE_GPT_IMAGE_1_5, 1765843200},
    {"gpt-image-2", ISD_PROFILE_GPT_IMAGE_2, 1776729600},
    {"gpt-image-2-2026-04-21", ISD_PROFILE_GPT_IMAGE_2, 1776729600},
};

static struct isd_model *find_mut(struct isd_catalogue *cat, const char *name)
{
    for (size_t i = 0; i < cat->n; i++)
        if (strcmp(cat->models[i].name, name) == 0)
            return &cat->models[i];
    return NULL;
}

/* Adds a model or returns the existing one of that name (to be overwritten). */
static struct isd_model *add_model(struct isd_catalogue *cat, const char *name,
                                   struct isd_error *err)
{
    struct isd_model *m = find_mut(cat, name);
    if (m)
        return m;
    struct isd_model *grown = realloc(cat->models, sizeof *grown * (cat->n + 1));
    if (!grown) {
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
        return NULL;
    }
    cat->models = grown;
    m = &cat->models[cat->n++];
    memset(m, 0, sizeof *m);
    m->name = strdup(name);
    m->owned_by = strdup("system");
    if (!m->name || !m->owned_by) {
        isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
        return NULL;
    }
    return m;
}

static int set_owned_by(struct isd_model *m, const char *v, struct isd_error *err)
{
    char *copy = strdup(v);
    if (!copy)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    free(m->owned_by);
    m->owned_by = copy;
    return 0;
}

static bool is_builtin_name(const char *name)
{
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i].name, name) == 0)
            return true;
    return false;
}

static int parse_bool(const char *v, bool *out)
{
    if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

/* The section's `generator` value ("mock" when absent); -1 and a message when unknown. */
static int section_generator(const struct isd_config_section *s, const char *file, const char **out,
                             struct isd_error *err)
{
    *out = "mock";
    for (size_t i = 0; i < s->n_entries; i++) {
        const struct isd_config_entry *e = &s->entries[i];
        if (strcmp(e->key, "generator") != 0)
            continue;
        if (strcmp(e->value, "mock") != 0 && strcmp(e->value, "diffusion") != 0)
            return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                               "config file %s line %d: model \"%s\": unknown generator "
                               "'%s' (mock, diffusion)",
                               file, e->line, s->name, e->value);
        *out = strcmp(e->value, "mock") == 0 ? "mock" : "diffusion";
    }
    return 0;
}

/* Keeps a generator made for one entry; frees it on failure. */
static int own_generator(struct isd_catalogue *cat, struct isd_generator *g, struct isd_error *err)
{
    struct isd_generator **grown = realloc(cat->own, sizeof *grown * (cat->n_own + 1));
    if (!grown) {
        isd_gen_free(g);
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    }
    cat->own = grown;
    cat->own[cat->n_own++] = g;
    return 0;
}

static int model_from_section(struct isd_catalogue *cat, const struct isd_config *cfg,
                              const struct isd_config_section *s, struct isd_error *err)
{
    const char *file = cfg->config_file ? cfg->config_file : "config";
    if (s->name[0] == '\0' || strlen(s->name) >= 128)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                           "config file %s line %d: a model name must have 1 to 127 characters",
                           file, s->line);
    const char *kind;
    if (section_generator(s, file, &kind, err) < 0)
        return -(int)err->id;
    bool diffusion = strcmp(kind, "diffusion") == 0;
    struct isd_diffusion_options dopt;
    isd_diffusion_options_init(&dopt);
    struct isd_model *m = add_model(cat, s->name, err);
    if (!m)
        return -ISD_E_NOMEM;
    m->profile = NULL;
    m->generator_kind = kind;
    m->gen = cat->mock;
    m->created = 0;
    /* local models take the extension fields unless they stand in for an OpenAI model */
    m->extensions = diffusion && !is_builtin_name(s->name);
    for (size_t i = 0; i < s->n_entries; i++) {
        const struct isd_config_entry *e = &s->entries[i];
        int rc = 1;
        if (strcmp(e->key, "profile") == 0) {
            m->profile = isd_api_profile_by_name(e->value);
            if (!m->profile)
                return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                                   "config file %s line %d: model \"%s\": unknown profile '%s' "
                                   "(dall-e-2, dall-e-3, gpt-image-1, gpt-image-1-mini, "
                                   "gpt-image-1.5, gpt-image-2)",
                                   file, e->line, s->name, e->value);
        } else if (strcmp(e->key, "generator") == 0) {
            /* read above */
        } else if (strcmp(e->key, "owned_by") == 0) {
            if (set_owned_by(m, e->value, err) < 0)
                return -ISD_E_NOMEM;
        } else if (strcmp(e->key, "extensions") == 0 && diffusion) {
            if (parse_bool(e->value, &m->extensions) < 0)
                return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                                   "config file %s line %d: model \"%s\": extensions: expected "
                                   "true or false, got '%s'",
                                   file, e->line, s->name, e->value);
        } else if (diffusion && (rc = isd_diffusion_option_set(&dopt, e->key, e->value, err)) < 0) {
            char detail[ISD_ERR_MESSAGE_MAX];
            snprintf(detail, sizeof detail, "%s", err->message);
            return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                               "config file %s line %d: model \"%s\": %s", file, e->line, s->name,
                               detail);
        } else if (rc == 1) {
            return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                               "config file %s line %d: model \"%s\": unknown key '%s'", file,
                               e->line, s->name, e->key);
        }
    }
    if (!m->profile)
        return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                           "config file %s line %d: model \"%s\" needs a profile", file, s->line,
                           s->name);
    if (diffusion) {
        if (!dopt.checkpoint)
            return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                               "config file %s line %d: model \"%s\" needs a checkpoint (a "
                               ".safetensors file or a diffusers folder)",
                               file, s->line, s->name);
        struct isd_generator *g = isd_diffusion_new(&dopt, err);
        if (!g) {
            char detail[ISD_ERR_MESSAGE_MAX];
            snprintf(detail, sizeof detail, "%s", err->message);
            return isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                               "config file %s line %d: model \"%s\": %s", file, s->line, s->name,
                               detail);
        }
        if (own_generator(cat, g, err) < 0)
            return -(int)err->id;
        m->gen = g;
    }
    m->gen->ops->caps(m->gen->state, &m->caps);
    return 0;
}

int isd_catalogue_new(const struct isd_config *cfg, struct isd_catalogue **out,
                      struct isd_error *err)
{
    struct isd_catalogue *cat = calloc(1, sizeof *cat);
    if (!cat)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
    struct isd_mock_options mo = {.font_path = cfg->font,
                                  .stage_delay_ms = (int)cfg->mock_delay_ms};
    cat->mock = isd_mock_new(&mo, err);
    if (!cat->mock)
        goto fail;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        struct isd_model *m = add_model(cat, builtin[i].name, err);
        if (!m)
            goto fail;
        m->profile = isd_api_profile(builtin[i].profile);
        m->generator_kind = "mock";
        m->gen = cat->mock;
        m->gen->ops->caps(m->gen->state, &m->caps);
        m->created = builtin[i].created;
    }
    for (size_t i = 0; i < cfg->n_sections; i++) {
        const struct isd_config_section *s = &cfg->sections[i];
        if (strcmp(s->kind, "model") != 0) {
            isd_err_set(err, ISD_E_INVALID_VALUE, NULL,
                        "config file %s line %d: unknown section kind '%s' (model)",
                        cfg->config_file ? cfg->config_file : "config", s->line, s->kind);
            goto fail;
        }
        if (model_from_section(cat, cfg, s, err) < 0)
            goto fail;
    }
    *out = cat;
    return 0;
fail:
    isd_catalogue_free(cat);
    return -(int)(err->id ? err->id : ISD_E_INTERNAL);
}

void isd_catalogue_free(struct isd_catalogue *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->n; i++) {
        free(cat->models[i].name);
        free(cat->models[i].owned_by);
    }
    free(cat->models);
    for (size_t i = 0; i < cat->n_own; i++)
        isd_gen_free(cat->own[i]);
    free(cat->own);
    isd_gen_free(cat->mock);
    free(cat);
}

const struct isd_model *isd_catalogue_find(const struct isd_catalogue *cat, const char *name,
                                           size_t len)
{
    for (size_t i = 0; i < cat->n; i++) {
        const char *m = cat->models[i].name;
        if (strlen(m) == len && memcmp(m, name, len) == 0)
            return &cat->models[i];
    }
    return NULL;
}

size_t isd_catalogue_count(const struct isd_catalogue *cat)
{
    return cat->n;
}

const struct isd_model *isd_catalogue_at(const struct isd_catalogue *cat, size_t i)
{
    return i < cat->n ? &cat->models[i] : NULL;
}

static const struct isd_profile *resolve(void *ctx, const char *model, size_t len)
{
    const struct isd_model *m = isd_catalogue_find(ctx, model, len);
    return m ? m->profile : NULL;
}

static bool takes_extensions(void *ctx, const char *model, size_t len)
{
    const struct isd_model *m = isd_catalogue_find(ctx, model, len);
    return m && m->extensions;
}

void isd_catalogue_resolver(const struct isd_catalogue *cat, const struct isd_config *cfg,
                            struct isd_api_resolver *out)
{
    out->ctx = (void *)cat;
    out->lookup = resolve;
    out->extensions = takes_extensions;
    out->default_model = cfg->default_model;
    out->default_gpt_model = cfg->default_gpt_model;
    out->default_edit_model = cfg->default_edit_model;
    out->remote_images = cfg->remote_images != 0;
}
