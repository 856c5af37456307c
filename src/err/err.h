/*
 * err: the one error vocabulary of imagesd.
 *
 * Every fallible function returns 0 on success or a negative error id (-ISD_E_...). Detail goes
 * into a caller-owned `struct isd_error` (id, param, message): never a global "last error".
 * ISD_ERRORS below is the single table that maps each id to the HTTP status and the OpenAI
 * error `type` and `code` that the API edge puts in the envelope
 *   {"error": {"message", "type", "param", "code"}}
 * Only the API edge turns an isd_error into JSON and logs it, once.
 *
 * Usage:
 *     struct isd_error err = {0};
 *     if (parse(x, &err) < 0)
 *         return respond_error(&err);       // status = isd_err_status(err.id)
 *
 *     return isd_err_set(err, ISD_E_INVALID_VALUE, "size", "Invalid value: '%s'.", v);
 *
 * Threading: the table is constant; an isd_error belongs to one thread at a time.
 */
#ifndef ISD_ERR_H
#define ISD_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* X(id, HTTP status, OpenAI type, OpenAI code or NULL) */
#define ISD_ERRORS(X)                                                                              \
    X(ISD_E_INTERNAL, 500, "server_error", NULL)                                                   \
    X(ISD_E_NOMEM, 500, "server_error", NULL)                                                      \
    X(ISD_E_IO, 500, "server_error", NULL)                                                         \
    X(ISD_E_BAD_JSON, 400, "invalid_request_error", NULL)                                          \
    X(ISD_E_BAD_BODY, 400, "invalid_request_error", NULL)                                          \
    X(ISD_E_CONTENT_TYPE, 400, "invalid_request_error", "unsupported_content_type")                \
    X(ISD_E_TOO_LARGE, 413, "invalid_request_error", "request_too_large")                          \
    X(ISD_E_NO_ROUTE, 404, "invalid_request_error", NULL)                                          \
    X(ISD_E_METHOD, 405, "invalid_request_error", NULL)                                            \
    X(ISD_E_NOT_FOUND, 404, "invalid_request_error", NULL)                                         \
    X(ISD_E_MODEL_UNKNOWN, 404, "invalid_request_error", "model_not_found")                        \
    X(ISD_E_UNKNOWN_PARAM, 400, "invalid_request_error", "unknown_parameter")                      \
    X(ISD_E_MISSING_PARAM, 400, "invalid_request_error", "missing_required_parameter")             \
    X(ISD_E_INVALID_TYPE, 400, "invalid_request_error", "invalid_type")                            \
    X(ISD_E_INVALID_VALUE, 400, "invalid_request_error", "invalid_value")                          \
    X(ISD_E_EMPTY_STRING, 400, "invalid_request_error", "empty_string")                            \
    X(ISD_E_STRING_TOO_LONG, 400, "invalid_request_error", "string_above_max_length")              \
    X(ISD_E_INT_BELOW_MIN, 400, "invalid_request_error", "integer_below_min_value")                \
    X(ISD_E_INT_ABOVE_MAX, 400, "invalid_request_error", "integer_above_max_value")                \
    X(ISD_E_DEC_BELOW_MIN, 400, "invalid_request_error", "decimal_below_min_value")                \
    X(ISD_E_DEC_ABOVE_MAX, 400, "invalid_request_error", "decimal_above_max_value")                \
    X(ISD_E_EMPTY_ARRAY, 400, "invalid_request_error", "empty_array")                              \
    X(ISD_E_ARRAY_TOO_LONG, 400, "invalid_request_error", "array_above_max_length")                \
    X(ISD_E_INVALID_REQUEST, 400, "invalid_request_error", NULL)                                   \
    X(ISD_E_NO_SUCH_MODEL, 400, "image_generation_user_error", "invalid_value")                    \
    X(ISD_E_GEN_INVALID_VALUE, 400, "image_generation_user_error", "invalid_value")                \
    X(ISD_E_INVALID_SIZE, 400, "invalid_request_error", "invalid_size")                            \
    X(ISD_E_PNG_COMPRESSION, 400, "image_generation_user_error", "invalid_png_output_compression") \
    X(ISD_E_UNSUPPORTED_MIMETYPE, 400, "invalid_request_error", "unsupported_file_mimetype")       \
    X(ISD_E_INVALID_IMAGE, 400, "image_generation_user_error", "invalid_image_file")               \
    X(ISD_E_INVALID_MASK, 400, "invalid_request_error", "invalid_value")                           \
    X(ISD_E_INPUT_FIDELITY, 400, "invalid_request_error", "invalid_input_fidelity_model")          \
    X(ISD_E_UNSUPPORTED, 400, "invalid_request_error", "unsupported_value")                        \
    X(ISD_E_AUTH_MISSING, 401, "invalid_request_error", NULL)                                      \
    X(ISD_E_AUTH_INVALID, 401, "invalid_request_error", "invalid_api_key")                         \
    X(ISD_E_FORBIDDEN, 403, "invalid_request_error", NULL)                                         \
    X(ISD_E_RATE_LIMIT, 429, "requests", "rate_limit_exceeded")                                    \
    X(ISD_E_BUSY, 429, "requests", "rate_limit_exceeded")                                          \
    X(ISD_E_TIMEOUT, 504, "server_error", "timeout")                                               \
    X(ISD_E_UNAVAILABLE, 503, "server_error", "server_shutting_down")                              \
    X(ISD_E_CANCELLED, 499, "server_error", "cancelled")                                           \
    X(ISD_E_GENERATOR, 500, "server_error", "generator_failed")

enum isd_err_id {
    ISD_OK = 0,
#define ISD_ERR_ENUM_(id, status, type, code) id,
    ISD_ERRORS(ISD_ERR_ENUM_)
#undef ISD_ERR_ENUM_
        ISD_E__COUNT
};

#define ISD_ERR_PARAM_MAX   128
#define ISD_ERR_MESSAGE_MAX 2048

struct isd_error {
    enum isd_err_id id;                /* ISD_OK while no error was set */
    char param[ISD_ERR_PARAM_MAX];     /* offending parameter; "" means JSON null */
    char message[ISD_ERR_MESSAGE_MAX]; /* human message, exact OpenAI wording where known */
};

/* Fills `e` (param may be NULL) and returns -id, so callers can `return isd_err_set(...)`.
 * The message is truncated (on a UTF-8 boundary) if it does not fit. */
int isd_err_set(struct isd_error *e, enum isd_err_id id, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int isd_err_setv(struct isd_error *e, enum isd_err_id id, const char *param, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));
void isd_err_clear(struct isd_error *e);

int isd_err_status(enum isd_err_id id);       /* HTTP status; 500 for unknown ids */
const char *isd_err_type(enum isd_err_id id); /* OpenAI error type */
const char *isd_err_code(enum isd_err_id id); /* OpenAI error code or NULL */
const char *isd_err_name(enum isd_err_id id); /* "ISD_E_..." for logs and metrics */

/* Copies at most `max` bytes of a client-supplied string for quoting in a message, cut on a
 * UTF-8 boundary with "..." appended when cut. `out` must hold max + 4 bytes. */
void isd_err_quote(char *out, const char *s, size_t len, size_t max);

#endif
