/* Model layouts (single file, diffusers folder) and the canonical tensor index. */
#include "engine/weights/weights_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_FILES = 3 };

struct entry {
    struct isd_wt_view view; /* view.name is owned (strdup) */
    const char *source;      /* the tensor's name in its file */
    const char *file;        /* the file's label */
};

struct isd_wt_model {
    int layout;                         /* enum isd_wt_layout */
    struct isd_wt_st *files[MAX_FILES]; /* UNet, text encoder, VAE order; may repeat NULL */
    struct entry *entries;              /* sorted by canonical name */
    size_t count, cap;
    size_t ignored;      /* source tensors with no canonical name */
    char *path_store[9]; /* owned strings behind `paths` */
    struct isd_wt_paths paths;
    struct isd_wt_scheduler sched;
    struct isd_wt_config cfg;
};

void isd_wt_options_init(struct isd_wt_options *o)
{
    memset(o, 0, sizeof *o);
    o->components = ISD_WT_ALL;
    struct isd_wt_config *c = &o->override;
    /* every int field to ISD_WT_AUTO, every double to -1 */
    c->family = c->prediction = ISD_WT_AUTO;
    struct isd_wt_unet_config *u = &c->unet;
    u->in_channels = u->out_channels = u->model_channels = u->num_levels = ISD_WT_AUTO;
    for (int i = 0; i < ISD_WT_MAX_LEVELS; i++)
        u->channel_mult[i] = c->vae.ch_mult[i] = ISD_WT_AUTO;
    u->num_res_blocks = u->attn_levels = u->transformer_depth = u->context_dim = ISD_WT_AUTO;
    u->proj = u->num_heads = u->num_head_channels = u->time_embed_dim = ISD_WT_AUTO;
    u->gn_eps = u->st_gn_eps = u->ln_eps = -1;
    struct isd_wt_text_config *t = &c->text;
    t->kind = t->width = t->num_layers = t->layers_run = t->heads = ISD_WT_AUTO;
    t->mlp_dim = t->vocab_size = t->max_positions = t->pad_id = ISD_WT_AUTO;
    t->ln_eps = -1;
    struct isd_wt_vae_config *v = &c->vae;
    v->in_channels = v->out_channels = v->ch = v->num_levels = ISD_WT_AUTO;
    v->num_res_blocks = v->z_channels = v->embed_dim = ISD_WT_AUTO;
    v->scale_factor = v->gn_eps = -1;
}

/* ---- small file helpers ---- */

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* "a/b" (malloc'd), or NULL. */
static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    char *s = malloc(la + lb + 2);
    if (s) {
        memcpy(s, a, la);
        s[la] = '/';
        memcpy(s + la + 1, b, lb + 1);
    }
    return s;
}

/* Reads a JSON object file of at most ISD_WT_CONFIG_MAX bytes. */
static int load_json(const char *path, json_t **out, struct isd_eng_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: %s", path, strerror(errno));
    char *buf = malloc(ISD_WT_CONFIG_MAX + 1);
    if (!buf) {
        fclose(f);
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, ISD_WT_CONFIG_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = 0;
    if (bad) {
        rc = isd_eng_fail(err, ISD_ENG_EIO, "%s: read error", path);
    } else if (n > ISD_WT_CONFIG_MAX) {
        rc =
            isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: larger than %u bytes", path, ISD_WT_CONFIG_MAX);
    } else {
        json_error_t jerr;
        *out = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
        if (!*out)
            rc = isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: invalid JSON: %s (line %d)", path,
                              jerr.text, jerr.line);
        else if (!json_is_object(*out))
            rc = isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: not a JSON object", path);
    }
    free(buf);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* Optional integer member: 0 (absent or set), EFORMAT when of another type. */
static int json_int_field(const char *path, const json_t *o, const char *key, int *v,
                          struct isd_eng_error *err)
{
    const json_t *x = json_object_get(o, key);
    if (!x || json_is_null(x))
        return 0;
    if (!json_is_integer(x) || json_integer_value(x) < INT32_MIN ||
        json_integer_value(x) > INT32_MAX)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: \"%s\" is not an integer", path, key);
    *v = (int)json_integer_value(x);
    return 0;
}

static int json_num_field(const char *path, const json_t *o, const char *key, double *v,
                          struct isd_eng_error *err)
{
    const json_t *x = json_object_get(o, key);
    if (!x || json_is_null(x))
        return 0;
    if (!json_is_number(x))
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: \"%s\" is not a number", path, key);
    *v = json_number_value(x);
    return 0;
}

static int json_str_field(const char *path, const json_t *o, const char *key, char *v, size_t cap,
                          struct isd_eng_error *err)
{
    const json_t *x = json_object_get(o, key);
    if (!x || json_is_null(x))
        return 0;
    if (!json_is_string(x) || json_string_length(x) >= cap)
        return isd_eng_fail(err, ISD_ENG_EFORMAT, "%s: \"%s\" is not a string of < %zu bytes", path,
                            key, cap);
    memcpy(v, json_string_value(x), json_string_length(x) + 1);
    return 0;
}

/* ---- the canonical index ---- */

static int add_entry(struct isd_wt_model *m, const char *name, const struct isd_wt_st *st,
                     const struct isd_wt_st_tensor *t, struct isd_eng_error *err)
{
    if (m->count == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        struct entry *e = realloc(m->entries, cap * sizeof *e);
        if (!e)
            return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory indexing tensors");
        m->entries = e;
        m->cap = cap;
    }
    struct entry *e = &m->entries[m->count];
    memset(e, 0, sizeof *e);
    if (!(e->view.name = strdup(name)))
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory indexing tensors");
    m->count++;
    e->source = t->name;
    e->file = isd_wt_st_label(st);
    if (t->ndim > 4)
        return isd_eng_fail(err, ISD_ENG_ESHAPE, "%s: tensor '%s' has %d dimensions (max 4)",
                            e->file, t->name, t->ndim);
    e->view.dtype = t->dtype;
    e->view.ndim = t->ndim;
    for (int d = 0; d < 4; d++)
        e->view.shape[d] = t->shape[d];
    e->view.numel = (size_t)t->numel;
    e->view.data = t->data;
    e->view.nbytes = t->nbytes;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* VAE attention 1x1-conv weights [C,C,1,1] become [C,C] views. */
static void squeeze_vae_attn(struct isd_wt_view *v)
{
    if (strncmp(v->name, "first_stage_model.", 18) != 0 || v->ndim != 4 || v->shape[2] != 1 ||
        v->shape[3] != 1)
        return;
    if (ends_with(v->name, ".q.weight") || ends_with(v->name, ".k.weight") ||
        ends_with(v->name, ".v.weight") || ends_with(v->name, ".proj_out.weight")) {
        if (!strstr(v->name, ".attn_1.") && !strstr(v->name, ".attn."))
            return;
        v->ndim = 2;
    }
}

/* OpenCLIP in_proj [3C,C] / [3C]: three views. */
static int add_split(struct isd_wt_model *m, const struct isd_wt_canon *c,
                     const struct isd_wt_st *st, const struct isd_wt_st_tensor *t,
                     struct isd_eng_error *err)
{
    int want = strcmp(c->suffix, "weight") == 0 ? 2 : 1;
    if (t->ndim != want || t->shape[0] % 3 != 0 || t->shape[0] == 0)
        return isd_eng_fail(err, ISD_ENG_ESHAPE,
                            "%s: tensor '%s' must be %s with a first dimension divisible by 3",
                            isd_wt_st_label(st), t->name, want == 2 ? "[3C, C]" : "[3C]");
    static const char part[3] = {'q', 'k', 'v'};
    size_t bytes = t->nbytes / 3;
    for (int i = 0; i < 3; i++) {
        char name[ISD_WT_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s%c_proj.%s", c->name, part[i], c->suffix);
        int rc = add_entry(m, name, st, t, err);
        if (rc < 0)
            return rc;
        struct isd_wt_view *v = &m->entries[m->count - 1].view;
        v->shape[0] = t->shape[0] / 3;
        v->numel = (size_t)t->numel / 3;
        v->nbytes = bytes;
        v->data = (const unsigned char *)t->data + i * bytes;
    }
    return 0;
}

static int index_file(struct isd_wt_model *m, const struct isd_wt_st *st, int source,
                      struct isd_eng_error *err)
{
    struct isd_wt_diff_shape shape = {0};
    isd_wt_scan_diffusers(source, st, &shape);
    for (size_t i = 0; i < isd_wt_st_count(st); i++) {
        const struct isd_wt_st_tensor *t = isd_wt_st_at(st, i);
        struct isd_wt_canon c;
        int rc;
        if (!isd_wt_map_name(source, &shape, t->name, &c)) {
            m->ignored++;
            continue;
        }
        if (c.split3) {
            rc = add_split(m, &c, st, t, err);
        } else {
            rc = add_entry(m, c.name, st, t, err);
            if (rc == 0)
                squeeze_vae_attn(&m->entries[m->count - 1].view);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->view.name, ((const struct entry *)b)->view.name);
}

static int sort_index(struct isd_wt_model *m, struct isd_eng_error *err)
{
    if (m->count)
        qsort(m->entries, m->count, sizeof *m->entries, cmp_entry);
    for (size_t i = 1; i < m->count; i++) {
        const struct entry *a = &m->entries[i - 1], *b = &m->entries[i];
        if (strcmp(a->view.name, b->view.name) == 0)
            return isd_eng_fail(err, ISD_ENG_EFORMAT,
                                "tensors '%s' (%s) and '%s' (%s) are both '%s'", a->source, a->file,
                                b->source, b->file, a->view.name);
    }
    return 0;
}

/* ---- lookups ---- */

int isd_wt_get(const struct isd_wt_model *m, const char *name, struct isd_wt_view *view)
{
    size_t lo = 0, hi = m->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, m->entries[mid].view.name);
        if (c == 0) {
            *view = m->entries[mid].view;
            return 0;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return ISD_ENG_EMISSING;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

int isd_wt_need(const struct isd_wt_model *m, const char *name, int ndim, const int64_t *shape,
                struct isd_wt_view *view, struct isd_eng_error *err)
{
    struct isd_wt_view v;
    if (isd_wt_get(m, name, &v) < 0)
        return isd_eng_fail(err, ISD_ENG_EMISSING, "tensor '%s' is missing", name);
    if (v.dtype != ISD_ENG_DT_F32 && v.dtype != ISD_ENG_DT_F16 && v.dtype != ISD_ENG_DT_BF16)
        return isd_eng_fail(err, ISD_ENG_ESHAPE, "tensor '%s' has dtype %s (F32/F16/BF16 only)",
                            name, isd_eng_dtype_name(v.dtype));
    int same = v.ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = v.shape[d] == shape[d];
    if (!same) {
        char want[96], got[96];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, v.ndim, v.shape);
        return isd_eng_fail(err, ISD_ENG_ESHAPE, "tensor '%s' has shape %s, expected %s", name, got,
                            want);
    }
    if (view)
        *view = v;
    return 0;
}

const char *isd_wt_model_meta(const struct isd_wt_model *m, const char *key)
{
    for (int i = 0; i < MAX_FILES; i++) {
        const char *v = m->files[i] ? isd_wt_st_meta(m->files[i], key) : NULL;
        if (v)
            return v;
    }
    return NULL;
}

const struct isd_wt_config *isd_wt_model_config(const struct isd_wt_model *m)
{
    return &m->cfg;
}

int isd_wt_model_layout(const struct isd_wt_model *m)
{
    return m->layout;
}

const struct isd_wt_paths *isd_wt_model_paths(const struct isd_wt_model *m)
{
    return &m->paths;
}

const struct isd_wt_scheduler *isd_wt_model_scheduler(const struct isd_wt_model *m)
{
    return &m->sched;
}

size_t isd_wt_model_count(const struct isd_wt_model *m)
{
    return m->count;
}

const struct isd_wt_view *isd_wt_model_at(const struct isd_wt_model *m, size_t i)
{
    return i < m->count ? &m->entries[i].view : NULL;
}

size_t isd_wt_model_ignored(const struct isd_wt_model *m)
{
    return m->ignored;
}

void isd_wt_model_free(struct isd_wt_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        free((char *)m->entries[i].view.name);
    free(m->entries);
    for (int i = 0; i < MAX_FILES; i++)
        isd_wt_st_free(m->files[i]);
    for (size_t i = 0; i < sizeof m->path_store / sizeof m->path_store[0]; i++)
        free(m->path_store[i]);
    free(m);
}

/* ---- opening ---- */

static void default_scheduler(struct isd_wt_scheduler *s)
{
    memset(s, 0, sizeof *s);
    s->beta_start = 0.00085;
    s->beta_end = 0.012;
    snprintf(s->beta_schedule, sizeof s->beta_schedule, "scaled_linear");
    s->num_train_timesteps = 1000;
    s->steps_offset = 1;
}

static void default_hints(struct isd_wt_hints *h, int layout)
{
    h->openclip_names = 0;
    h->layout = layout;
    h->text_kind = h->text_heads = h->text_layers = h->prediction = ISD_WT_AUTO;
    h->vae_scale = -1;
}

/* Keeps `s` (owned) as path slot `slot`; returns it. */
static const char *keep(struct isd_wt_model *m, int slot, char *s)
{
    free(m->path_store[slot]);
    m->path_store[slot] = s;
    return s;
}

static int finish(struct isd_wt_model *m, const struct isd_wt_options *opt,
                  struct isd_wt_hints *hints, struct isd_eng_error *err)
{
    int rc = sort_index(m, err);
    if (rc < 0)
        return rc;
    return isd_wt_infer(m, opt, hints, &m->cfg, err);
}

static int open_single(struct isd_wt_model *m, struct isd_wt_st *st,
                       const struct isd_wt_options *opt, struct isd_eng_error *err)
{
    m->layout = ISD_WT_LAYOUT_SINGLE;
    m->files[0] = st;
    struct isd_wt_hints hints;
    default_hints(&hints, m->layout);
    for (size_t i = 0; i < isd_wt_st_count(st); i++)
        if (strncmp(isd_wt_st_at(st, i)->name, "cond_stage_model.model.", 23) == 0) {
            hints.openclip_names = 1;
            break;
        }
    int rc = index_file(m, st, ISD_WT_SRC_SINGLE, err);
    if (rc < 0)
        return rc;
    return finish(m, opt, &hints, err);
}

/* root/sub/base.safetensors or root/sub/base.fp16.safetensors (malloc'd), or NULL. */
static char *pick_component(const char *root, const char *sub, const char *base, int prefer_fp16)
{
    char plain[512], half[512];
    int a = snprintf(plain, sizeof plain, "%s/%s.safetensors", sub, base);
    int b = snprintf(half, sizeof half, "%s/%s.fp16.safetensors", sub, base);
    if (a < 0 || b < 0 || (size_t)a >= sizeof plain || (size_t)b >= sizeof half)
        return NULL;
    char *p = join(root, plain), *h = join(root, half);
    char *pick = NULL;
    if (p && h) {
        int hp = is_file(p), hh = is_file(h);
        if (hh && (prefer_fp16 || !hp))
            pick = h, h = NULL;
        else if (hp)
            pick = p, p = NULL;
    }
    free(p);
    free(h);
    return pick;
}

static int read_text_config(const char *path, struct isd_wt_hints *h, struct isd_eng_error *err)
{
    json_t *o;
    int rc = load_json(path, &o, err);
    if (rc < 0)
        return rc;
    char act[32] = "";
    if ((rc = json_str_field(path, o, "hidden_act", act, sizeof act, err)) == 0 &&
        (rc = json_int_field(path, o, "num_attention_heads", &h->text_heads, err)) == 0)
        rc = json_int_field(path, o, "num_hidden_layers", &h->text_layers, err);
    json_decref(o);
    if (rc < 0)
        return rc;
    if (strcmp(act, "quick_gelu") == 0)
        h->text_kind = ISD_WT_TEXT_CLIP_L;
    else if (strcmp(act, "gelu") == 0)
        h->text_kind = ISD_WT_TEXT_OPENCLIP;
    else if (act[0])
        return isd_eng_fail(err, ISD_ENG_EUNSUPPORTED, "%s: hidden_act \"%s\" not supported", path,
                            act);
    return 0;
}

static int read_vae_config(const char *path, struct isd_wt_hints *h, struct isd_eng_error *err)
{
    json_t *o;
    int rc = load_json(path, &o, err);
    if (rc == 0)
        rc = json_num_field(path, o, "scaling_factor", &h->vae_scale, err);
    json_decref(o);
    return rc;
}

static int read_scheduler(const char *path, struct isd_wt_scheduler *s, struct isd_wt_hints *h,
                          struct isd_eng_error *err)
{
    json_t *o;
    int rc = load_json(path, &o, err);
    if (rc < 0)
        return rc;
    if ((rc = json_str_field(path, o, "prediction_type", s->prediction_type,
                             sizeof s->prediction_type, err)) == 0 &&
        (rc = json_num_field(path, o, "beta_start", &s->beta_start, err)) == 0 &&
        (rc = json_num_field(path, o, "beta_end", &s->beta_end, err)) == 0 &&
        (rc = json_str_field(path, o, "beta_schedule", s->beta_schedule, sizeof s->beta_schedule,
                             err)) == 0 &&
        (rc = json_int_field(path, o, "num_train_timesteps", &s->num_train_timesteps, err)) == 0 &&
        (rc = json_str_field(path, o, "timestep_spacing", s->timestep_spacing,
                             sizeof s->timestep_spacing, err)) == 0)
        rc = json_int_field(path, o, "steps_offset", &s->steps_offset, err);
    json_decref(o);
    if (rc < 0)
        return rc;
    s->present = 1;
    if (strcmp(s->prediction_type, "epsilon") == 0)
        h->prediction = ISD_WT_PRED_EPS;
    else if (strcmp(s->prediction_type, "v_prediction") == 0)
        h->prediction = ISD_WT_PRED_V;
    if (s->num_train_timesteps < 1 || s->num_train_timesteps > 100000 || !(s->beta_start > 0) ||
        !(s->beta_end >= s->beta_start) || s->beta_end >= 1)
        return isd_eng_fail(err, ISD_ENG_EFORMAT,
                            "%s: implausible schedule (num_train_timesteps %d, betas %g..%g)", path,
                            s->num_train_timesteps, s->beta_start, s->beta_end);
    return 0;
}

/* Optional file `rel` under root: 1 and its path kept in `slot` / *field when it exists, else 0. */
static int optional_file(struct isd_wt_model *m, int slot, const char *rel, const char **field,
                         struct isd_eng_error *err)
{
    char *p = join(m->paths.root, rel);
    if (!p)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory");
    if (!is_file(p)) {
        free(p);
        return 0;
    }
    *field = keep(m, slot, p);
    return 1;
}

/* unet/, text_encoder/, vae/: the safetensors files of the wanted components, indexed. */
static int open_components(struct isd_wt_model *m, const struct isd_wt_options *opt,
                           struct isd_eng_error *err)
{
    static const struct {
        const char *sub, *base;
        int want, source;
    } parts[MAX_FILES] = {
        {"unet", "diffusion_pytorch_model", ISD_WT_UNET, ISD_WT_SRC_DIFF_UNET},
        {"text_encoder", "model", ISD_WT_TEXT, ISD_WT_SRC_DIFF_TEXT},
        {"vae", "diffusion_pytorch_model", ISD_WT_VAE_ENC | ISD_WT_VAE_DEC, ISD_WT_SRC_DIFF_VAE},
    };
    const char **fields[MAX_FILES] = {&m->paths.unet, &m->paths.text_encoder, &m->paths.vae};
    const char *root = m->paths.root;
    for (int i = 0; i < MAX_FILES; i++) {
        if (!(opt->components & parts[i].want))
            continue;
        char *p = pick_component(root, parts[i].sub, parts[i].base, opt->prefer_fp16);
        if (!p)
            return isd_eng_fail(err, ISD_ENG_EMISSING,
                                "%s: no %s/%s[.fp16].safetensors (not a diffusers folder?)", root,
                                parts[i].sub, parts[i].base);
        *fields[i] = keep(m, 1 + i, p);
        int rc = isd_wt_st_open(p, &m->files[i], err);
        if (rc == 0)
            rc = index_file(m, m->files[i], parts[i].source, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* model_index.json (checked), the scheduler config (parsed), tokenizer/ (located). */
static int side_files(struct isd_wt_model *m, struct isd_wt_hints *hints, struct isd_eng_error *err)
{
    int rc = optional_file(m, 4, "model_index.json", &m->paths.model_index, err);
    if (rc > 0) {
        json_t *o;
        if ((rc = load_json(m->paths.model_index, &o, err)) < 0)
            return rc;
        json_decref(o);
    }
    if (rc < 0 ||
        (rc = optional_file(m, 5, "scheduler/scheduler_config.json", &m->paths.scheduler_config,
                            err)) < 0 ||
        (rc && (rc = read_scheduler(m->paths.scheduler_config, &m->sched, hints, err)) < 0) ||
        (rc = optional_file(m, 6, "tokenizer/vocab.json", &m->paths.vocab, err)) < 0 ||
        (rc = optional_file(m, 7, "tokenizer/merges.txt", &m->paths.merges, err)) < 0)
        return rc;
    char *td = join(m->paths.root, "tokenizer");
    if (!td)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory");
    if (is_dir(td))
        m->paths.tokenizer_dir = keep(m, 8, td);
    else
        free(td);
    return 0;
}

/* `read` on root/rel when that file exists. */
static int read_config(const char *root, const char *rel,
                       int (*read)(const char *, struct isd_wt_hints *, struct isd_eng_error *),
                       struct isd_wt_hints *hints, struct isd_eng_error *err)
{
    char *p = join(root, rel);
    if (!p)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory");
    int rc = is_file(p) ? read(p, hints, err) : 0;
    free(p);
    return rc;
}

static int open_diffusers(struct isd_wt_model *m, const struct isd_wt_options *opt,
                          struct isd_eng_error *err)
{
    struct isd_wt_hints hints;
    m->layout = ISD_WT_LAYOUT_DIFFUSERS;
    default_hints(&hints, m->layout);
    int rc = open_components(m, opt, err);
    if (rc == 0)
        rc = side_files(m, &hints, err);
    if (rc == 0 && (opt->components & ISD_WT_TEXT))
        rc = read_config(m->paths.root, "text_encoder/config.json", read_text_config, &hints, err);
    if (rc == 0 && (opt->components & (ISD_WT_VAE_ENC | ISD_WT_VAE_DEC)))
        rc = read_config(m->paths.root, "vae/config.json", read_vae_config, &hints, err);
    return rc < 0 ? rc : finish(m, opt, &hints, err);
}

static struct isd_wt_model *model_new(const char *root)
{
    struct isd_wt_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    default_scheduler(&m->sched);
    if (!(m->paths.root = keep(m, 0, strdup(root)))) {
        free(m);
        return NULL;
    }
    return m;
}

static const struct isd_wt_options *options_or_default(const struct isd_wt_options *opt,
                                                       struct isd_wt_options *def)
{
    if (opt)
        return opt;
    isd_wt_options_init(def);
    return def;
}

int isd_wt_model_open(const char *path, const struct isd_wt_options *opt, struct isd_wt_model **out,
                      struct isd_eng_error *err)
{
    *out = NULL;
    struct isd_wt_options def;
    opt = options_or_default(opt, &def);
    if ((opt->components & ~ISD_WT_ALL) || !(opt->components & ISD_WT_ALL))
        return isd_eng_fail(err, ISD_ENG_EINVAL, "options: bad components mask %#x",
                            (unsigned)opt->components);
    struct stat sb;
    if (stat(path, &sb) < 0)
        return isd_eng_fail(err, ISD_ENG_EIO, "%s: %s", path, strerror(errno));
    struct isd_wt_model *m = model_new(path);
    if (!m)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory");
    int rc;
    if (S_ISDIR(sb.st_mode)) {
        rc = open_diffusers(m, opt, err);
    } else {
        struct isd_wt_st *st;
        rc = isd_wt_st_open(path, &st, err);
        if (rc == 0) {
            m->paths.unet = m->paths.text_encoder = m->paths.vae = m->paths.root;
            rc = open_single(m, st, opt, err);
        }
    }
    if (rc < 0) {
        isd_wt_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int isd_wt_model_open_mem(const void *buf, size_t len, const struct isd_wt_options *opt,
                          struct isd_wt_model **out, struct isd_eng_error *err)
{
    *out = NULL;
    struct isd_wt_options def;
    opt = options_or_default(opt, &def);
    if ((opt->components & ~ISD_WT_ALL) || !(opt->components & ISD_WT_ALL))
        return isd_eng_fail(err, ISD_ENG_EINVAL, "options: bad components mask %#x",
                            (unsigned)opt->components);
    struct isd_wt_model *m = model_new("(memory)");
    if (!m)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "out of memory");
    struct isd_wt_st *st;
    int rc = isd_wt_st_parse(buf, len, "(memory)", &st, err);
    if (rc == 0)
        rc = open_single(m, st, opt, err);
    if (rc < 0) {
        isd_wt_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
