/*
 * engine/core: what every part of the diffusion engine shares: its error type and the tensor
 * element types found in checkpoint files, with exact conversions to float32.
 *
 * The engine (src/engine/...) knows nothing of HTTP, the API's JSON or the rest of imagesd; it
 * depends on libc, libm, pthreads, BLAS, and for reading model files jansson (safetensors
 * headers, vocab.json, scheduler_config.json) and PCRE2 (the CLIP pre-tokenizer). Its fallible
 * functions return 0 or a negative ISD_ENG_E* code and fill a caller-owned `struct isd_eng_error`
 * (may be NULL) with a message that names the file, tensor or parameter at fault:
 *
 *     struct isd_eng_error err = {0};
 *     if (isd_eng_something(..., &err) < 0)
 *         fprintf(stderr, "%s\n", err.msg);
 *
 * Threading: pure functions; an error struct belongs to one thread.
 */
#ifndef ISD_ENGINE_CORE_H
#define ISD_ENGINE_CORE_H

#include <stddef.h>
#include <stdint.h>

enum isd_eng_code {
    ISD_ENG_OK = 0,
    ISD_ENG_EIO = -1,          /* open/read/mmap failed */
    ISD_ENG_EFORMAT = -2,      /* malformed file (header, offsets, JSON...) */
    ISD_ENG_ENOMEM = -3,       /* allocation failed */
    ISD_ENG_EINVAL = -4,       /* bad argument (size not a multiple of 8, steps < 1...) */
    ISD_ENG_EMISSING = -5,     /* a required tensor or file is absent */
    ISD_ENG_ESHAPE = -6,       /* a tensor has the wrong shape or dtype */
    ISD_ENG_EUNSUPPORTED = -7, /* valid but not supported (architecture, dtype) */
    ISD_ENG_ECANCELLED = -8,   /* the abort hook asked to stop */
};

#define ISD_ENG_ERRMSG_MAX 512

struct isd_eng_error {
    int code;                     /* ISD_ENG_OK or the negative code returned */
    char msg[ISD_ENG_ERRMSG_MAX]; /* human-readable detail */
};

/* Fills `e` (if not NULL) and returns `code`. */
int isd_eng_fail(struct isd_eng_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *isd_eng_code_name(int code);

/* Element types of safetensors files (names as in the format: "F32", "F16", "BF16", ...). */
enum isd_eng_dtype {
    ISD_ENG_DT_F32 = 0,
    ISD_ENG_DT_F16,
    ISD_ENG_DT_BF16,
    ISD_ENG_DT_F64,
    ISD_ENG_DT_I64,
    ISD_ENG_DT_I32,
    ISD_ENG_DT_I16,
    ISD_ENG_DT_I8,
    ISD_ENG_DT_U8,
    ISD_ENG_DT_BOOL,
    ISD_ENG_DT_U16,
    ISD_ENG_DT_U32,
    ISD_ENG_DT_U64,
    ISD_ENG_DT_F8_E4M3,
    ISD_ENG_DT_F8_E5M2,
    ISD_ENG_DT__COUNT
};

const char *isd_eng_dtype_name(enum isd_eng_dtype t);
/* "F16" -> ISD_ENG_DT_F16; returns -1 for an unknown name. */
int isd_eng_dtype_parse(const char *name, size_t len);
size_t isd_eng_dtype_size(enum isd_eng_dtype t);

/* Exact widening conversions (F16 subnormals, infinities and NaN preserved). */
float isd_eng_f16_to_f32(uint16_t h);
float isd_eng_bf16_to_f32(uint16_t b);
/* Round-to-nearest-even narrowing, as torch's .half() / .bfloat16() do. */
uint16_t isd_eng_f32_to_f16(float f);
uint16_t isd_eng_f32_to_bf16(float f);
/* Converts n elements of F32/F16/BF16 (unaligned source allowed) to float32. */
int isd_eng_convert_to_f32(enum isd_eng_dtype t, const void *src, float *dst, size_t n);

#endif
