/*
 * sys: thin wrappers over the operating system that several modules need: clocks, secure
 * random bytes, directories and whole-file reads and atomic writes.
 *
 * Functions return 0 or a negative error id and fill an optional caller-owned isd_error
 * (NULL allowed) with the path and errno text. Thread-safe.
 */
#ifndef ISD_SYS_H
#define ISD_SYS_H

#include "buf/buf.h"
#include "err/err.h"

#include <stddef.h>
#include <stdint.h>

int64_t isd_time_unix(void); /* wall clock, seconds */
int64_t isd_time_ms(void);   /* wall clock, milliseconds */
int64_t isd_mono_ns(void);   /* monotonic clock, nanoseconds */
double isd_mono_sec(void);   /* monotonic clock, seconds */

/* Fills `p` with n cryptographically secure random bytes (getrandom). */
int isd_random_bytes(void *p, size_t n);

/* mkdir -p with mode 0700 for new directories. */
int isd_mkdirs(const char *path, struct isd_error *err);
/* Appends the whole file to `out` (its ceiling applies). */
int isd_read_file(const char *path, struct isd_buf *out, struct isd_error *err);
/* Writes via a temporary file in the same directory, fsync and rename, with `mode`. */
int isd_write_file_atomic(const char *path, const void *data, size_t n, unsigned mode,
                          struct isd_error *err);
/* Writes all n bytes to fd, retrying on EINTR and short writes. */
int isd_write_all(int fd, const void *data, size_t n);

#endif
