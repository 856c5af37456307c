/*
 * Weights and runners shared by the networks: parameter lookup and residency, the runner's
 * buffers, and the executor's op wrappers (weights staged from F16/BF16 into float32 at use).
 */
#include "engine/nn/nn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALIGN_FLOATS 16   /* 64 bytes */
#define SMALL_FLOATS 4096 /* tensors up to this size (norms, biases, tiny mats) are copied */

static size_t round_floats(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

void isd_nn_options_init(struct isd_nn_options *o)
{
    memset(o, 0, sizeof *o);
}

/* ---- build ---- */

static int reg(struct isd_nn_build *b, struct isd_nn_param *p)
{
    struct isd_nn_weights *w = b->w;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        void *q = realloc(w->list, cap * sizeof *w->list);
        if (!q)
            return isd_eng_fail(b->err, ISD_ENG_ENOMEM, "nn: out of memory");
        w->list = q;
        w->cap = cap;
    }
    w->list[w->n++] = p;
    return 0;
}

static int lookup(struct isd_nn_build *b, struct isd_nn_param *p, int ndim, const int64_t *shape,
                  const char *name, int optional)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    struct isd_wt_view v;
    if (optional && isd_wt_get(b->model, name, &v) != 0)
        return 0;
    int rc;
    if (ndim > 0) {
        rc = isd_wt_need(b->model, name, ndim, shape, &v, b->err);
    } else {
        rc = isd_wt_get(b->model, name, &v);
        if (rc < 0)
            return isd_eng_fail(b->err, ISD_ENG_EMISSING, "%s: tensor missing", name);
    }
    if (rc < 0)
        return rc;
    if (v.dtype != ISD_ENG_DT_F32 && v.dtype != ISD_ENG_DT_F16 && v.dtype != ISD_ENG_DT_BF16)
        return isd_eng_fail(b->err, ISD_ENG_ESHAPE, "%s: dtype %s is not F32/F16/BF16", name,
                            isd_eng_dtype_name(v.dtype));
    p->parts = 1;
    p->ndim = v.ndim;
    p->v[0] = v;
    p->numel = v.numel;
    return reg(b, p);
}

static int vlookup(struct isd_nn_build *b, struct isd_nn_param *p, int ndim, const int64_t *shape,
                   int optional, const char *fmt, va_list ap)
{
    char name[ISD_NN_NAME_MAX];
    int n = vsnprintf(name, sizeof name, fmt, ap);
    if (n < 0 || (size_t)n >= sizeof name)
        return isd_eng_fail(b->err, ISD_ENG_EINVAL, "nn: tensor name too long");
    return lookup(b, p, ndim, shape, name, optional);
}

int isd_nn_param_get(struct isd_nn_build *b, struct isd_nn_param *p, int ndim, const int64_t *shape,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vlookup(b, p, ndim, shape, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int isd_nn_param_opt(struct isd_nn_build *b, struct isd_nn_param *p, int ndim, const int64_t *shape,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vlookup(b, p, ndim, shape, 1, fmt, ap);
    va_end(ap);
    return rc;
}

int isd_nn_param_fuse(struct isd_nn_build *b, struct isd_nn_param *p, const char *const *names,
                      int n, int ndim, const int64_t *part_shape)
{
    if (n < 1 || n > ISD_NN_PARTS_MAX)
        return isd_eng_fail(b->err, ISD_ENG_EINVAL, "nn: bad fuse");
    struct isd_nn_param part;
    memset(p, 0, sizeof *p);
    for (int i = 0; i < n; i++) {
        int rc = lookup(b, &part, ndim, part_shape, names[i], 0);
        if (rc < 0)
            return rc;
        b->w->n--; /* unregister the part: p stands for it */
        if (i == 0) {
            memcpy(p->name, part.name, sizeof p->name);
            p->ndim = part.ndim;
        }
        p->v[i] = part.v[0];
        p->numel += part.numel;
    }
    p->parts = n;
    return reg(b, p);
}

int isd_nn_stage_pair(struct isd_nn_build *b, struct isd_nn_param *a, struct isd_nn_param *c)
{
    struct isd_nn_weights *w = b->w;
    if (w->n_pairs == w->cap_pairs) {
        size_t cap = w->cap_pairs ? 2 * w->cap_pairs : 16;
        void *q = realloc(w->pairs, cap * sizeof *w->pairs);
        if (!q)
            return isd_eng_fail(b->err, ISD_ENG_ENOMEM, "nn: out of memory");
        w->pairs = q;
        w->cap_pairs = cap;
    }
    w->pairs[w->n_pairs][0] = a;
    w->pairs[w->n_pairs][1] = c;
    w->n_pairs++;
    return 0;
}

/* F32 parts, 4-byte aligned and back to back in the file: usable in place */
static int in_place(const struct isd_nn_param *p)
{
    for (int i = 0; i < p->parts; i++) {
        if (p->v[i].dtype != ISD_ENG_DT_F32 || (uintptr_t)p->v[i].data % sizeof(float) != 0)
            return 0;
        if (i > 0 &&
            (const char *)p->v[i - 1].data + p->v[i - 1].nbytes != (const char *)p->v[i].data)
            return 0;
    }
    return 1;
}

static int copy_parts(const struct isd_nn_param *p, float *dst)
{
    for (int i = 0; i < p->parts; i++) {
        int rc = isd_wt_view_to_f32(&p->v[i], dst, p->v[i].numel);
        if (rc < 0)
            return rc;
        dst += p->v[i].numel;
    }
    return 0;
}

static int wants_copy(const struct isd_nn_build *b, const struct isd_nn_param *p)
{
    if (p->gather)
        return 0;
    return p->ndim <= 1 || p->numel <= SMALL_FLOATS || (b->resident && !in_place(p));
}

static size_t staged(const struct isd_nn_param *p)
{
    return p && p->parts && !p->f32 && !p->gather ? round_floats(p->numel) : 0;
}

int isd_nn_weights_finish(struct isd_nn_build *b)
{
    struct isd_nn_weights *w = b->w;
    size_t total = 0;
    for (size_t i = 0; i < w->n; i++)
        if (wants_copy(b, w->list[i]))
            total += round_floats(w->list[i]->numel);
    if (total) {
        w->store = aligned_alloc(64, total * sizeof(float));
        if (!w->store)
            return isd_eng_fail(b->err, ISD_ENG_ENOMEM, "nn: out of memory for %zu weights", total);
        w->store_floats = total;
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        struct isd_nn_param *p = w->list[i];
        if (wants_copy(b, p)) {
            int rc = copy_parts(p, w->store + off);
            if (rc < 0)
                return isd_eng_fail(b->err, rc, "%s: cannot convert to float32", p->name);
            p->f32 = w->store + off;
            off += round_floats(p->numel);
        } else if (!p->gather && in_place(p)) {
            p->f32 = p->v[0].data;
        }
    }
    size_t need = 0;
    for (size_t i = 0; i < w->n; i++)
        if (staged(w->list[i]) > need)
            need = staged(w->list[i]);
    for (size_t i = 0; i < w->n_pairs; i++) {
        size_t s = staged(w->pairs[i][0]) + staged(w->pairs[i][1]);
        if (s > need)
            need = s;
    }
    w->stage_floats = need;
    return 0;
}

void isd_nn_weights_release(struct isd_nn_weights *w)
{
    free(w->list);
    free(w->store);
    free(w->pairs);
    memset(w, 0, sizeof *w);
}

void isd_nn_weights_drop_pages(const struct isd_nn_weights *w)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0)
        return;
    uintptr_t page = (uintptr_t)ps;
    for (size_t i = 0; i < w->n; i++) {
        const struct isd_nn_param *p = w->list[i];
        for (int j = 0; j < p->parts; j++) {
            uintptr_t a = (uintptr_t)p->v[j].data, e = a + p->v[j].nbytes;
            a = (a + page - 1) & ~(page - 1);
            e &= ~(page - 1);
            if (e > a)
                (void)madvise((void *)a, e - a, MADV_DONTNEED);
        }
    }
}

/* ---- runner ---- */

void isd_nn_plan_conv(struct isd_nn_plan *p, const struct isd_op_conv2d_shape *s)
{
    int ho, wo;
    size_t ws = 0;
    if (isd_op_conv2d_out_size(s, &ho, &wo) < 0 || isd_op_conv2d_workspace(p->ops, s, &ws) < 0) {
        p->failed = 1;
        return;
    }
    if (ws > p->ws_bytes)
        p->ws_bytes = ws;
    p->flops += 2.0 * s->n * s->c_out * ho * wo * (double)s->c_in * s->kh * s->kw;
}

void isd_nn_plan_attn(struct isd_nn_plan *p, const struct isd_op_attn_shape *s)
{
    size_t ws = 0;
    if (isd_op_attention_workspace(p->ops, s, &ws) < 0) {
        p->failed = 1;
        return;
    }
    if (ws > p->ws_bytes)
        p->ws_bytes = ws;
    p->flops += 4.0 * s->batch * s->heads * (double)s->lq * s->lk * s->d_head;
}

void isd_nn_plan_linear(struct isd_nn_plan *p, size_t rows, size_t in, size_t out)
{
    p->flops += 2.0 * (double)rows * (double)in * (double)out;
}

static void *alloc_floats(size_t n)
{
    if (n > SIZE_MAX / sizeof(float) - 64)
        return NULL;
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

int isd_nn_run_alloc(const struct isd_nn_plan *plan, const struct isd_nn_weights *w, int kind,
                     const void *net, int batch, int h, int w_, int ctx_len,
                     struct isd_nn_run **out, struct isd_eng_error *err)
{
    *out = NULL;
    if (plan->failed)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "nn: a layer cannot take this shape (%s)",
                            isd_op_error(plan->ops)->msg);
    struct isd_nn_run *r = calloc(1, sizeof *r);
    if (!r)
        return isd_eng_fail(err, ISD_ENG_ENOMEM, "nn: out of memory");
    r->kind = kind;
    r->net = net;
    r->ops = plan->ops;
    r->batch = batch;
    r->h = h;
    r->w = w_;
    r->ctx_len = ctx_len;
    r->flops = plan->flops;
    size_t total = 0;
    for (int i = 0; i < ISD_NN_BUFS; i++) {
        r->buf[i] = total;
        size_t n = round_floats(plan->buf_floats[i]);
        if (n < plan->buf_floats[i] || total > SIZE_MAX / sizeof(float) - n)
            goto too_big;
        total += n;
    }
    r->arena_floats = total;
    r->stage_floats = w->stage_floats;
    r->ws_bytes = plan->ws_bytes;
    r->arena = alloc_floats(total);
    r->stage = alloc_floats(w->stage_floats);
    r->ws = aligned_alloc(64, (plan->ws_bytes + 63) / 64 * 64 + 64);
    if (!r->arena || !r->stage || !r->ws) {
        isd_nn_run_free(r);
        return isd_eng_fail(err, ISD_ENG_ENOMEM,
                            "nn: out of memory for buffers (%zu MB activations, %zu MB staging, "
                            "%zu MB workspace)",
                            total * sizeof(float) >> 20, w->stage_floats * sizeof(float) >> 20,
                            plan->ws_bytes >> 20);
    }
    *out = r;
    return 0;
too_big:
    free(r);
    return isd_eng_fail(err, ISD_ENG_EINVAL, "nn: buffers for this shape exceed the address space");
}

void isd_nn_run_free(struct isd_nn_run *run)
{
    if (!run)
        return;
    free(run->arena);
    free(run->stage);
    free(run->ws);
    free(run);
}

size_t isd_nn_run_bytes(const struct isd_nn_run *run)
{
    return run ? (run->arena_floats + run->stage_floats) * sizeof(float) + run->ws_bytes : 0;
}

double isd_nn_run_flops(const struct isd_nn_run *run)
{
    return run ? run->flops : 0;
}

int isd_nn_run_check(const struct isd_nn_run *run, int kind, const void *net,
                     struct isd_eng_error *err)
{
    if (!run || !net)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "nn: NULL network or runner");
    if (run->kind != kind || run->net != net)
        return isd_eng_fail(err, ISD_ENG_EINVAL, "nn: runner planned for another network");
    return 0;
}

/* ---- executor ---- */

void isd_nn_exec_init(struct isd_nn_exec *e, struct isd_nn_run *run,
                      const struct isd_nn_hooks *hooks, struct isd_eng_error *err,
                      const char *where)
{
    e->ops = run->ops;
    e->run = run;
    e->stage_used = 0;
    e->hooks = hooks;
    e->err = err;
    e->where = where;
}

int isd_nn_w(struct isd_nn_exec *e, const struct isd_nn_param *p, const float **out)
{
    *out = NULL;
    if (!p || !p->parts)
        return 0;
    if (p->f32) {
        *out = p->f32;
        return 0;
    }
    size_t need = round_floats(p->numel);
    if (p->gather || need > e->run->stage_floats - e->stage_used)
        return isd_eng_fail(e->err, ISD_ENG_EINVAL, "%s: staging buffer too small (bug)", p->name);
    float *dst = e->run->stage + e->stage_used;
    int rc = copy_parts(p, dst);
    if (rc < 0)
        return isd_eng_fail(e->err, rc, "%s: cannot convert to float32", p->name);
    e->stage_used += need;
    *out = dst;
    return 0;
}

int isd_nn_op_fail(struct isd_nn_exec *e, int rc, const struct isd_nn_param *layer)
{
    return isd_eng_fail(e->err, rc, "%s: %s: %s", e->where, layer ? layer->name : "op",
                        isd_op_error(e->ops)->msg);
}

int isd_nn_check_abort(struct isd_nn_exec *e)
{
    if (e->hooks && e->hooks->abort && e->hooks->abort(e->hooks->ctx))
        return isd_eng_fail(e->err, ISD_ENG_ECANCELLED, "%s: cancelled", e->where);
    return 0;
}

void isd_nn_debug(struct isd_nn_exec *e, const char *name, const float *data, int ndim, int d0,
                  int d1, int d2, int d3)
{
    if (!e->hooks || !e->hooks->debug)
        return;
    struct isd_nn_tensor t = {data, ndim, {d0, d1, d2, d3}};
    e->hooks->debug(e->hooks->ctx, name, &t);
}

int isd_nn_conv(struct isd_nn_exec *e, const struct isd_nn_param *w, const struct isd_nn_param *b,
                const struct isd_op_conv2d_shape *s, const float *x, float *y, int flags)
{
    const float *wd, *bd;
    int rc;
    isd_nn_stage_reset(e);
    if ((rc = isd_nn_w(e, w, &wd)) < 0 || (rc = isd_nn_w(e, b, &bd)) < 0)
        return rc;
    rc = isd_op_conv2d(e->ops, s, x, wd, bd, y, flags, e->run->ws, e->run->ws_bytes);
    return rc < 0 ? isd_nn_op_fail(e, rc, w) : 0;
}

int isd_nn_linear(struct isd_nn_exec *e, const struct isd_nn_param *w, const struct isd_nn_param *b,
                  int rows, const float *x, float *y, int flags)
{
    const float *wd, *bd;
    int rc;
    isd_nn_stage_reset(e);
    if ((rc = isd_nn_w(e, w, &wd)) < 0 || (rc = isd_nn_w(e, b, &bd)) < 0)
        return rc;
    int out = (int)w->v[0].shape[0], in = (int)w->v[0].shape[1];
    for (int i = 1; i < w->parts; i++)
        out += (int)w->v[i].shape[0];
    rc = isd_op_linear(e->ops, rows, in, out, x, wd, bd, y, flags);
    return rc < 0 ? isd_nn_op_fail(e, rc, w) : 0;
}

int isd_nn_group_norm(struct isd_nn_exec *e, const struct isd_nn_param *g,
                      const struct isd_nn_param *b, int n, int c, int hw, double eps,
                      const float *x, float *y, int flags)
{
    const float *gd, *bd;
    int rc;
    isd_nn_stage_reset(e);
    if ((rc = isd_nn_w(e, g, &gd)) < 0 || (rc = isd_nn_w(e, b, &bd)) < 0)
        return rc;
    rc = isd_op_group_norm(e->ops, n, c, hw, 32, (float)eps, x, gd, bd, y, flags);
    return rc < 0 ? isd_nn_op_fail(e, rc, g) : 0;
}

int isd_nn_layer_norm(struct isd_nn_exec *e, const struct isd_nn_param *g,
                      const struct isd_nn_param *b, int rows, int cols, double eps, const float *x,
                      float *y)
{
    const float *gd, *bd;
    int rc;
    isd_nn_stage_reset(e);
    if ((rc = isd_nn_w(e, g, &gd)) < 0 || (rc = isd_nn_w(e, b, &bd)) < 0)
        return rc;
    rc = isd_op_layer_norm(e->ops, rows, cols, (float)eps, x, gd, bd, y);
    return rc < 0 ? isd_nn_op_fail(e, rc, g) : 0;
}

int isd_nn_attention(struct isd_nn_exec *e, const struct isd_op_attn_shape *s, const float *q,
                     const float *k, const float *v, float *o, const char *what)
{
    int rc = isd_op_attention(e->ops, s, q, k, v, o, e->run->ws, e->run->ws_bytes);
    if (rc < 0)
        return isd_eng_fail(e->err, rc, "%s: %s: %s", e->where, what, isd_op_error(e->ops)->msg);
    return 0;
}

struct isd_op_conv2d_shape isd_nn_conv3(int n, int c_in, int h, int w, int c_out, int stride)
{
    struct isd_op_conv2d_shape s = {.n = n,
                                    .c_in = c_in,
                                    .h = h,
                                    .w = w,
                                    .c_out = c_out,
                                    .kh = 3,
                                    .kw = 3,
                                    .stride = stride,
                                    .pad_top = 1,
                                    .pad_left = 1,
                                    .pad_bottom = 1,
                                    .pad_right = 1};
    return s;
}

struct isd_op_conv2d_shape isd_nn_conv1(int n, int c_in, int h, int w, int c_out)
{
    struct isd_op_conv2d_shape s = {
        .n = n, .c_in = c_in, .h = h, .w = w, .c_out = c_out, .kh = 1, .kw = 1, .stride = 1};
    return s;
}

int isd_nn_fmt(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, ISD_NN_NAME_MAX, fmt, ap);
    va_end(ap);
    return n < 0 || n >= ISD_NN_NAME_MAX ? -1 : 0;
}
