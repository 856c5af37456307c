#include "sys/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t isd_time_unix(void)
{
    return (int64_t)time(NULL);
}

int64_t isd_time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t isd_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double isd_mono_sec(void)
{
    return (double)isd_mono_ns() / 1e9;
}

int isd_random_bytes(void *p, size_t n)
{
    unsigned char *d = p;
    while (n > 0) {
        ssize_t got = getrandom(d, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -ISD_E_IO;
        }
        d += got;
        n -= (size_t)got;
    }
    return 0;
}

static int sys_fail(struct isd_error *err, const char *what, const char *path)
{
    int e = errno;
    if (err)
        return isd_err_set(err, ISD_E_IO, NULL, "%s '%s': %s", what, path, strerror(e));
    return -ISD_E_IO;
}

int isd_mkdirs(const char *path, struct isd_error *err)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return sys_fail(err, "cannot create directory", path);
    }
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char saved = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
            return sys_fail(err, "cannot create directory", tmp);
        tmp[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return sys_fail(err, "cannot access directory", path);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return sys_fail(err, "not a directory", path);
    }
    return 0;
}

int isd_read_file(const char *path, struct isd_buf *out, struct isd_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_fail(err, "cannot open", path);
    char chunk[65536];
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int rc = sys_fail(err, "cannot read", path);
            close(fd);
            return rc;
        }
        if (got == 0)
            break;
        int rc = isd_buf_append(out, chunk, (size_t)got);
        if (rc < 0) {
            close(fd);
            if (err)
                return isd_err_set(err, (enum isd_err_id) - rc, NULL, "file '%s' is too large",
                                   path);
            return rc;
        }
    }
    close(fd);
    return 0;
}

int isd_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -ISD_E_IO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int isd_write_file_atomic(const char *path, const void *data, size_t n, unsigned mode,
                          struct isd_error *err)
{
    char tmp[4200];
    int len = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (len < 0 || (size_t)len >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return sys_fail(err, "cannot write", path);
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return sys_fail(err, "cannot create", tmp);
    if (fchmod(fd, (mode_t)mode) < 0 || isd_write_all(fd, data, n) < 0 || fsync(fd) < 0) {
        int rc = sys_fail(err, "cannot write", tmp);
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int rc = sys_fail(err, "cannot rename to", path);
        unlink(tmp);
        return rc;
    }
    return 0;
}
