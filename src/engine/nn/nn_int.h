/*
 * engine/nn internals: weights as the networks see them (struct isd_nn_param), the build
 * helpers that look them up and decide where their float32 data comes from, the runner, and
 * the per-pass executor with its op wrappers (weight staging, error messages naming the
 * layer, the debug and abort hooks). Not for use outside src/engine/nn.
 */
#ifndef ISD_ENGINE_NN_INT_H
#define ISD_ENGINE_NN_INT_H

#include "engine/nn/nn.h"

#include <stdarg.h>

#define ISD_NN_PARTS_MAX 3
#define ISD_NN_NAME_MAX  160

/* One weight: up to three file tensors concatenated along dimension 0 (a fused q|k|v). */
struct isd_nn_param {
    char name[ISD_NN_NAME_MAX];             /* canonical name of the first part (for messages) */
    int parts;                              /* 0: absent (optional weight), else 1..3 */
    int ndim;                               /* of the first part */
    struct isd_wt_view v[ISD_NN_PARTS_MAX]; /* the file tensors (mmap) */
    size_t numel;                           /* total elements of all parts */
    const float *f32;                       /* float32 data ready to use; NULL: staged per use */
    int gather;                             /* read by rows (token embedding): never staged */
};

/* What every network shares: its parameters and their float32 copies. */
struct isd_nn_weights {
    struct isd_nn_param **list; /* every parameter of the network (pointers into it) */
    size_t n, cap;
    float *store; /* float32 copies (small tensors; all with `resident`) */
    size_t store_floats;
    size_t stage_floats; /* staging buffer a runner needs (floats, with alignment) */
    /* parameters staged together: pairs (a, b) whose staged sizes add up */
    struct isd_nn_param *(*pairs)[2];
    size_t n_pairs, cap_pairs;
};

struct isd_nn_build {
    const struct isd_wt_model *model;
    struct isd_nn_weights *w;
    int resident;
    struct isd_eng_error *err;
};

/* Looks up the canonical name (printf format) with the given shape (ndim 0: any shape) into
 * p and registers it. Returns 0 or EMISSING/ESHAPE/ENOMEM. */
int isd_nn_param_get(struct isd_nn_build *b, struct isd_nn_param *p, int ndim, const int64_t *shape,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same for an optional tensor: p->parts = 0 when absent (shape still checked if present). */
int isd_nn_param_opt(struct isd_nn_build *b, struct isd_nn_param *p, int ndim, const int64_t *shape,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* p = cat(names[0], ..., names[n-1]) along dim 0 (n <= 3), each part of shape part_shape. */
int isd_nn_param_fuse(struct isd_nn_build *b, struct isd_nn_param *p, const char *const *names,
                      int n, int ndim, const int64_t *part_shape);
/* a and b are staged at the same time (e.g. the two FF matrices). */
int isd_nn_stage_pair(struct isd_nn_build *b, struct isd_nn_param *a, struct isd_nn_param *c);
/* After every parameter is registered: float32 copies (small tensors, or all when resident),
 * in-place F32 views, and the staging size. */
int isd_nn_weights_finish(struct isd_nn_build *b);
void isd_nn_weights_release(struct isd_nn_weights *w);
void isd_nn_weights_drop_pages(const struct isd_nn_weights *w);

/* ---- runner ---- */

enum isd_nn_kind { ISD_NN_TEXT = 1, ISD_NN_UNET, ISD_NN_VAE_DEC, ISD_NN_VAE_ENC };

#define ISD_NN_BUFS 12

struct isd_nn_run {
    int kind;                 /* enum isd_nn_kind */
    const void *net;          /* the network it was planned for */
    struct isd_op_ctx *ops;   /* borrowed */
    int batch, h, w, ctx_len; /* the planned shape */
    float *arena;             /* activations */
    size_t arena_floats;
    size_t buf[ISD_NN_BUFS]; /* offsets of the network's buffers in the arena (floats) */
    float *stage;            /* staging buffer for F16/BF16 weights */
    size_t stage_floats;
    void *ws; /* ops workspace */
    size_t ws_bytes;
    double flops; /* of one forward pass */
};

/* Sizes a network's plan fills in before isd_nn_run_alloc. */
struct isd_nn_plan {
    size_t buf_floats[ISD_NN_BUFS]; /* size of each buffer (0: unused) */
    size_t ws_bytes;                /* max workspace of any op */
    double flops;
    struct isd_op_ctx *ops;
    int failed; /* an ops *_workspace call failed (shape invalid) */
};

void isd_nn_plan_conv(struct isd_nn_plan *p, const struct isd_op_conv2d_shape *s);
void isd_nn_plan_attn(struct isd_nn_plan *p, const struct isd_op_attn_shape *s);
void isd_nn_plan_linear(struct isd_nn_plan *p, size_t rows, size_t in, size_t out);
/* Allocates the runner for `plan` (buffers aligned to 64 bytes). */
int isd_nn_run_alloc(const struct isd_nn_plan *plan, const struct isd_nn_weights *w, int kind,
                     const void *net, int batch, int h, int w_, int ctx_len,
                     struct isd_nn_run **out, struct isd_eng_error *err);
/* Checks that run was planned for (kind, net); EINVAL otherwise. */
int isd_nn_run_check(const struct isd_nn_run *run, int kind, const void *net,
                     struct isd_eng_error *err);
static inline float *isd_nn_buf(const struct isd_nn_run *run, int i)
{
    return run->arena + run->buf[i];
}

/* ---- executor: one forward pass ---- */

struct isd_nn_exec {
    struct isd_op_ctx *ops;
    struct isd_nn_run *run;
    size_t stage_used;                /* floats of the staging buffer in use */
    const struct isd_nn_hooks *hooks; /* may be NULL */
    struct isd_eng_error *err;
    const char *where; /* network name for messages ("unet", ...) */
};

void isd_nn_exec_init(struct isd_nn_exec *e, struct isd_nn_run *run,
                      const struct isd_nn_hooks *hooks, struct isd_eng_error *err,
                      const char *where);
/* Float32 data of p into *out: in place, a copy, or converted now into the staging buffer
 * (staged data stays valid until isd_nn_stage_reset, which every op wrapper below calls
 * first). *out = NULL when p is absent. 0 or EINVAL (staging buffer too small: a bug). */
int isd_nn_w(struct isd_nn_exec *e, const struct isd_nn_param *p, const float **out);
static inline void isd_nn_stage_reset(struct isd_nn_exec *e)
{
    e->stage_used = 0;
}
/* ops failure -> err (with the op's message and the layer); returns the code. */
int isd_nn_op_fail(struct isd_nn_exec *e, int rc, const struct isd_nn_param *layer);
int isd_nn_check_abort(struct isd_nn_exec *e);
void isd_nn_debug(struct isd_nn_exec *e, const char *name, const float *data, int ndim, int d0,
                  int d1, int d2, int d3);

/* Op wrappers: stage the weights, run, turn failures into a message naming the weight. */
int isd_nn_conv(struct isd_nn_exec *e, const struct isd_nn_param *w, const struct isd_nn_param *b,
                const struct isd_op_conv2d_shape *s, const float *x, float *y, int flags);
int isd_nn_linear(struct isd_nn_exec *e, const struct isd_nn_param *w, const struct isd_nn_param *b,
                  int rows, const float *x, float *y, int flags);
int isd_nn_group_norm(struct isd_nn_exec *e, const struct isd_nn_param *g,
                      const struct isd_nn_param *b, int n, int c, int hw, double eps,
                      const float *x, float *y, int flags);
int isd_nn_layer_norm(struct isd_nn_exec *e, const struct isd_nn_param *g,
                      const struct isd_nn_param *b, int rows, int cols, double eps, const float *x,
                      float *y);
int isd_nn_attention(struct isd_nn_exec *e, const struct isd_op_attn_shape *s, const float *q,
                     const float *k, const float *v, float *o, const char *what);

/* conv2d shape helpers */
struct isd_op_conv2d_shape isd_nn_conv3(int n, int c_in, int h, int w, int c_out, int stride);
struct isd_op_conv2d_shape isd_nn_conv1(int n, int c_in, int h, int w, int c_out);

/* Formats a tensor name into dst[ISD_NN_NAME_MAX]; -1 when it does not fit (such a name is
 * then simply not found). */
int isd_nn_fmt(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
