/*
 * The usage journal: usage.journal in the data directory, where ledger rows are appended (one
 * write(2) each) before they are imported into the usage table in batches.
 *
 * A record is  "ISDL" | u32 payload length | u32 CRC-32 of the payload | payload  (little
 * endian). The payload is a format byte (1) and the row's fields in a fixed order (that of
 * struct isd_usage_row): strings as
 * u16 length (0xFFFF for NULL) and bytes, integers as i64, times as f64.
 *
 * The table usage_journal holds how far the journal was imported (`consumed`, a byte offset).
 * An import reads it, inserts the complete records after it and moves it, in one transaction,
 * so rows are imported once whoever imports. Only the owner (the appending process, holding
 * journal_lock so that nothing is appended meanwhile) truncates the journal once it is fully
 * imported; a `consumed` beyond the file's end means the file was truncated after the offset
 * was read, and the import starts from 0.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC          "ISDL"
#define HEADER_BYTES   12
#define PAYLOAD_MAX    2048
#define FORMAT_VERSION 1
#define READ_CHUNK     (1 << 20)
#define COMPACT_BYTES  (1 << 20) /* the owner truncates a fully imported journal beyond this */
#define NULL_STRING    0xFFFF

/* ---- encoding ---- */

struct writer {
    unsigned char *p;
    size_t len;
};

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_i64(struct writer *w, int64_t v)
{
    for (int i = 0; i < 8; i++)
        w->p[w->len++] = (unsigned char)((uint64_t)v >> (8 * i));
}

static void put_f64(struct writer *w, double v)
{
    int64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_i64(w, bits);
}

/* Strings are cut to 255 bytes: every field of a row is shorter. */
static void put_str(struct writer *w, const char *s)
{
    size_t n = s ? strnlen(s, 255) : NULL_STRING;
    w->p[w->len++] = (unsigned char)(n & 0xFF);
    w->p[w->len++] = (unsigned char)(n >> 8);
    if (s) {
        memcpy(w->p + w->len, s, n);
        w->len += n;
    }
}

/* Encodes `r` as a whole record into `out` (at least HEADER_BYTES + PAYLOAD_MAX); its size. */
static size_t encode_record(const struct isd_usage_row *r, unsigned char *out)
{
    struct writer w = {out + HEADER_BYTES, 0};
    w.p[w.len++] = FORMAT_VERSION;
    put_str(&w, r->request_id);
    put_i64(&w, r->time_ms);
    put_str(&w, r->key_id);
    put_str(&w, r->endpoint);
    put_str(&w, r->model);
    put_i64(&w, r->n);
    put_str(&w, r->size);
    put_str(&w, r->quality);
    put_str(&w, r->output_format);
    put_i64(&w, r->partial_images);
    put_i64(&w, r->status);
    put_str(&w, r->error_code);
    put_i64(&w, r->input_text_tokens);
    put_i64(&w, r->input_image_tokens);
    put_i64(&w, r->output_tokens);
    put_i64(&w, (int64_t)r->bytes_out);
    put_f64(&w, r->ms_queue);
    put_f64(&w, r->ms_render);
    put_f64(&w, r->ms_encode);
    put_f64(&w, r->ms_total);
    put_i64(&w, r->steps);
    put_f64(&w, r->megapixels);
    memcpy(out, MAGIC, 4);
    put_u32(out + 4, (uint32_t)w.len);
    put_u32(out + 8, (uint32_t)crc32(0L, w.p, (uInt)w.len));
    return HEADER_BYTES + w.len;
}

/* ---- decoding ---- */

/* A decoded row and the storage of its string fields. */
struct decoded {
    struct isd_usage_row row;
    char endpoint[256], quality[256], output_format[256], error_code[256];
};

struct reader {
    const unsigned char *p;
    size_t len, at;
    bool bad;
};

static int64_t get_i64(struct reader *r)
{
    if (r->len - r->at < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[r->at + i] << (8 * i);
    r->at += 8;
    return (int64_t)v;
}

static double get_f64(struct reader *r)
{
    int64_t bits = get_i64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Copies a string field into `buf` (cap bytes); NULL for a NULL field. */
static const char *get_str(struct reader *r, char *buf, size_t cap)
{
    if (r->len - r->at < 2) {
        r->bad = true;
        return NULL;
    }
    size_t n = (size_t)r->p[r->at] | (size_t)r->p[r->at + 1] << 8;
    r->at += 2;
    if (n == NULL_STRING) {
        buf[0] = '\0';
        return NULL;
    }
    if (n >= cap || r->len - r->at < n) {
        r->bad = true;
        buf[0] = '\0';
        return NULL;
    }
    memcpy(buf, r->p + r->at, n);
    buf[n] = '\0';
    r->at += n;
    return buf;
}

static int decode_payload(const unsigned char *p, size_t len, struct decoded *d)
{
    memset(d, 0, sizeof *d);
    struct reader r = {p, len, 1, len < 1 || p[0] != FORMAT_VERSION};
    struct isd_usage_row *row = &d->row;
    get_str(&r, row->request_id, sizeof row->request_id);
    row->time_ms = get_i64(&r);
    get_str(&r, row->key_id, sizeof row->key_id);
    row->endpoint = get_str(&r, d->endpoint, sizeof d->endpoint);
    get_str(&r, row->model, sizeof row->model);
    row->n = (int)get_i64(&r);
    get_str(&r, row->size, sizeof row->size);
    row->quality = get_str(&r, d->quality, sizeof d->quality);
    row->output_format = get_str(&r, d->output_format, sizeof d->output_format);
    row->partial_images = (int)get_i64(&r);
    row->status = (int)get_i64(&r);
    row->error_code = get_str(&r, d->error_code, sizeof d->error_code);
    row->input_text_tokens = (long)get_i64(&r);
    row->input_image_tokens = (long)get_i64(&r);
    row->output_tokens = (long)get_i64(&r);
    row->bytes_out = (uint64_t)get_i64(&r);
    row->ms_queue = get_f64(&r);
    row->ms_render = get_f64(&r);
    row->ms_encode = get_f64(&r);
    row->ms_total = get_f64(&r);
    row->steps = (int)get_i64(&r);
    row->megapixels = get_f64(&r);
    return r.bad || r.at != len ? -1 : 0;
}

enum scan { SCAN_RECORD, SCAN_INCOMPLETE, SCAN_DAMAGED };

/* Looks at the bytes at `p` (n available): a whole valid record (its size in *used and its
 * row in *d), too few bytes for the record it starts, or damage. */
static enum scan scan_record(const unsigned char *p, size_t n, struct decoded *d, size_t *used)
{
    if (n < HEADER_BYTES)
        return memcmp(p, MAGIC, n < 4 ? n : 4) == 0 ? SCAN_INCOMPLETE : SCAN_DAMAGED;
    uint32_t len = get_u32(p + 4);
    if (memcmp(p, MAGIC, 4) != 0 || len == 0 || len > PAYLOAD_MAX)
        return SCAN_DAMAGED;
    if (n - HEADER_BYTES < len)
        return SCAN_INCOMPLETE;
    if ((uint32_t)crc32(0L, p + HEADER_BYTES, len) != get_u32(p + 8) ||
        decode_payload(p + HEADER_BYTES, len, d) < 0)
        return SCAN_DAMAGED;
    *used = HEADER_BYTES + len;
    return SCAN_RECORD;
}

/* ---- append ---- */

static void journal_path(const struct isd_store *st, char *out, size_t cap)
{
    snprintf(out, cap, "%s/usage.journal", st->dir);
}

int isd_store_usage_append(struct isd_store *st, const struct isd_usage_row *row,
                           struct isd_error *err)
{
    unsigned char rec[HEADER_BYTES + PAYLOAD_MAX];
    size_t n = encode_record(row, rec);
    pthread_mutex_lock(&st->journal_lock);
    if (st->journal_fd < 0) {
        char path[4200];
        journal_path(st, path, sizeof path);
        st->journal_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (st->journal_fd < 0) {
            int e = errno;
            pthread_mutex_unlock(&st->journal_lock);
            return isd_err_set(err, ISD_E_IO, NULL, "cannot open %s: %s", path, strerror(e));
        }
    }
    ssize_t w = write(st->journal_fd, rec, n);
    int e = errno;
    if (w > 0 && (size_t)w < n) /* a short write (disk full): cut it off again */
        if (ftruncate(st->journal_fd, lseek(st->journal_fd, 0, SEEK_END) - w) < 0)
            e = errno;
    pthread_mutex_unlock(&st->journal_lock);
    if (w == (ssize_t)n)
        return 0;
    return isd_err_set(err, ISD_E_IO, NULL, "cannot write %s/usage.journal: %s", st->dir,
                       w < 0 ? strerror(e) : "short write");
}

/* ---- import ---- */

static int read_consumed(struct isd_store *st, int64_t *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT consumed FROM usage_journal WHERE id = 1", -1, &s,
                           NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(s) == SQLITE_ROW ? 0 : -1;
    *out = rc == 0 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return rc;
}

static int write_consumed(struct isd_store *st, int64_t v)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "UPDATE usage_journal SET consumed = ? WHERE id = 1", -1, &s,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(s, 1, v);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(s);
    return rc;
}

struct import {
    struct isd_store *st;
    bool owner;
    int fd;
    int64_t size;     /* of the file when the import started */
    int64_t consumed; /* how far it got */
    size_t rows, damaged_bytes;
};

/* Inserts the records from im->consumed up to the end of the file (or, for a non-owner, the
 * first record it cannot read). */
static int import_records(struct import *im, unsigned char *buf, struct isd_error *err)
{
    struct decoded d;
    while (im->consumed < im->size) {
        size_t want =
            im->size - im->consumed < READ_CHUNK ? (size_t)(im->size - im->consumed) : READ_CHUNK;
        ssize_t got = pread(im->fd, buf, want, im->consumed);
        if (got < 0)
            return isd_err_set(err, ISD_E_IO, NULL, "cannot read %s/usage.journal: %s", im->st->dir,
                               strerror(errno));
        if (got == 0)
            break; /* truncated meanwhile (another process's view): nothing more */
        size_t at = 0;
        bool stop = false;
        while (at < (size_t)got && !stop) {
            size_t used = 0;
            enum scan sc = scan_record(buf + at, (size_t)got - at, &d, &used);
            if (sc == SCAN_RECORD) {
                if (store_usage_insert_row(im->st, &d.row) == 0) {
                    im->rows++;
                } else if (sqlite3_errcode(im->st->db) != SQLITE_CONSTRAINT) {
                    return store_db_fail(im->st, err, "importing the usage journal");
                } else if (im->owner) { /* a row the table refuses must not block the rest */
                    im->damaged_bytes += used;
                } else {
                    im->consumed += (int64_t)at;
                    return 0;
                }
                at += used;
            } else if (sc == SCAN_INCOMPLETE && im->consumed + (int64_t)got < im->size) {
                stop = true; /* the record goes on in the next chunk: read from its start */
            } else if (!im->owner) {
                /* being appended right now by the server, or damaged: the owner decides */
                im->consumed += (int64_t)at;
                return 0;
            } else {
                /* the owner holds the append lock, so this is damage (or the unfinished
                 * write of a killed process): skip to the next magic */
                size_t next = at + 1;
                while (next < (size_t)got && memcmp(buf + next, MAGIC, 1) != 0)
                    next++;
                im->damaged_bytes += next - at;
                at = next;
            }
        }
        if (at == 0 && stop) /* one record larger than a chunk cannot happen: damaged */
            return isd_err_set(err, ISD_E_IO, NULL, "%s/usage.journal: damaged record",
                               im->st->dir);
        im->consumed += (int64_t)at;
    }
    return 0;
}

/* The transaction of one import; called with st->lock held and inside BEGIN IMMEDIATE. */
static int import_in_transaction(struct import *im, struct isd_error *err)
{
    struct isd_store *st = im->st;
    if (read_consumed(st, &im->consumed) < 0)
        return store_db_fail(st, err, "reading the usage journal position");
    char path[4200];
    journal_path(st, path, sizeof path);
    im->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (im->fd < 0) {
        if (errno != ENOENT)
            return isd_err_set(err, ISD_E_IO, NULL, "cannot open %s: %s", path, strerror(errno));
        /* no journal (yet, or removed): a new one starts at 0 */
        if (im->consumed != 0 && write_consumed(st, 0) < 0)
            return store_db_fail(st, err, "saving the usage journal position");
        return 0;
    }
    struct stat sb;
    if (fstat(im->fd, &sb) < 0)
        return isd_err_set(err, ISD_E_IO, NULL, "cannot stat %s: %s", path, strerror(errno));
    im->size = sb.st_size;
    if (im->consumed > im->size) /* truncated by the owner after we read the position */
        im->consumed = 0;
    unsigned char *buf = malloc(READ_CHUNK);
    if (!buf)
        return isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory importing the usage journal");
    int rc = store_usage_prepare(st) < 0 ? store_db_fail(st, err, "preparing the ledger")
                                         : import_records(im, buf, err);
    free(buf);
    if (rc < 0)
        return rc;
    if (im->owner && im->consumed == im->size && im->size >= COMPACT_BYTES && st->journal_fd >= 0) {
        if (ftruncate(st->journal_fd, 0) < 0)
            return isd_err_set(err, ISD_E_IO, NULL, "cannot truncate %s: %s", path,
                               strerror(errno));
        im->consumed = 0;
    }
    if (write_consumed(st, im->consumed) < 0)
        return store_db_fail(st, err, "saving the usage journal position");
    return 0;
}

int isd_store_usage_import(struct isd_store *st, bool owner, struct isd_usage_import *out,
                           struct isd_error *err)
{
    struct import im = {.st = st, .owner = owner, .fd = -1};
    if (out)
        *out = (struct isd_usage_import){0};
    pthread_mutex_lock(&st->lock);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = store_db_fail(st, err, "importing the usage journal");
        pthread_mutex_unlock(&st->lock);
        return rc;
    }
    /* the owner stops its own appends while it reads to the end (and may truncate) */
    if (owner)
        pthread_mutex_lock(&st->journal_lock);
    int rc = import_in_transaction(&im, err);
    if (rc == 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = store_db_fail(st, err, "committing the usage journal");
    if (rc < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    if (owner)
        pthread_mutex_unlock(&st->journal_lock);
    pthread_mutex_unlock(&st->lock);
    if (im.fd >= 0)
        close(im.fd);
    if (rc == 0 && out)
        *out = (struct isd_usage_import){im.rows, im.damaged_bytes};
    return rc;
}
