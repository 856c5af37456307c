/*
 * The usage ledger: one row per image API request, written in batches (one transaction each),
 * and the totals `imagesd usage` prints.
 */
#include "store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_finalize_statements(struct isd_store *st)
{
    sqlite3_finalize(st->key_find);
    sqlite3_finalize(st->data_version);
    st->data_version = NULL;
    sqlite3_finalize(st->usage_insert);
    sqlite3_finalize(st->key_touch);
    st->key_find = st->usage_insert = st->key_touch = NULL;
}

int store_prepare_once(struct isd_store *st, sqlite3_stmt **s, const char *sql)
{
    if (*s)
        return 0;
    return sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) == SQLITE_OK
               ? 0
               : -1;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

/* SQLite stores NaN as NULL, which the NOT NULL columns refuse */
static double nan_as_zero(double v)
{
    return isnan(v) ? 0.0 : v;
}

int store_usage_insert_row(struct isd_store *st, const struct isd_usage_row *r)
{
    sqlite3_stmt *s = st->usage_insert;
    /* the NOT NULL columns: one odd row must not fail the rows committed with it */
    sqlite3_bind_text(s, 1, r->request_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, r->time_ms);
    bind_text_or_null(s, 3, r->key_id);
    sqlite3_bind_text(s, 4, r->endpoint ? r->endpoint : "", -1, SQLITE_TRANSIENT);
    bind_text_or_null(s, 5, r->model);
    sqlite3_bind_int(s, 6, r->n);
    bind_text_or_null(s, 7, r->size);
    bind_text_or_null(s, 8, r->quality);
    bind_text_or_null(s, 9, r->output_format);
    sqlite3_bind_int(s, 10, r->partial_images);
    sqlite3_bind_int(s, 11, r->status);
    bind_text_or_null(s, 12, r->error_code);
    sqlite3_bind_int64(s, 13, r->input_text_tokens);
    sqlite3_bind_int64(s, 14, r->input_image_tokens);
    sqlite3_bind_int64(s, 15, r->output_tokens);
    sqlite3_bind_int64(s, 16, (sqlite3_int64)r->bytes_out);
    sqlite3_bind_double(s, 17, nan_as_zero(r->ms_queue));
    sqlite3_bind_double(s, 18, nan_as_zero(r->ms_render));
    sqlite3_bind_double(s, 19, nan_as_zero(r->ms_encode));
    sqlite3_bind_double(s, 20, nan_as_zero(r->ms_total));
    sqlite3_bind_int(s, 21, r->steps);
    sqlite3_bind_double(s, 22, nan_as_zero(r->megapixels));
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    sqlite3_reset(s);
    if (rc == 0 && r->key_id[0]) {
        sqlite3_stmt *t = st->key_touch;
        sqlite3_bind_int64(t, 1, r->time_ms / 1000);
        sqlite3_bind_text(t, 2, r->key_id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(t) == SQLITE_DONE ? 0 : -1;
        sqlite3_reset(t);
    }
    return rc;
}

int store_usage_prepare(struct isd_store *st)
{
    return store_prepare_once(
               st, &st->usage_insert,
               "INSERT INTO usage (request_id, time_ms, key_id, endpoint, model, n, size, "
               "quality, output_format, partial_images, status, error_code, "
               "input_text_tokens, input_image_tokens, output_tokens, bytes_out, ms_queue, "
               "ms_render, ms_encode, ms_total, steps, megapixels) VALUES (?, ?, ?, ?, ?, ?, "
               "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") < 0 ||
                   store_prepare_once(st, &st->key_touch,
                                      "UPDATE api_keys SET last_used = ?1 WHERE id = ?2 AND "
                                      "last_used < ?1 - 60") < 0
               ? -1
               : 0;
}

int isd_store_usage_insert(struct isd_store *st, const struct isd_usage_row *rows, size_t n,
                           struct isd_error *err)
{
    if (n == 0)
        return 0;
    pthread_mutex_lock(&st->lock);
    int rc = 0;
    if (store_usage_prepare(st) < 0) {
        rc = store_db_fail(st, err, "preparing the ledger");
        goto out;
    }
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = store_db_fail(st, err, "writing the ledger");
        goto out;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        if (store_usage_insert_row(st, &rows[i]) < 0)
            rc = store_db_fail(st, err, "writing the ledger");
    if (rc == 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = store_db_fail(st, err, "committing the ledger");
    if (rc < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int isd_store_usage_totals(struct isd_store *st, int64_t since_ms, enum isd_usage_group by,
                           struct isd_usage_total **out, size_t *n, struct isd_error *err)
{
    static const char *const group_expr[] = {
        [ISD_USAGE_ALL] = "'all'",
        [ISD_USAGE_BY_KEY] = "coalesce(key_id, '-')",
        [ISD_USAGE_BY_MODEL] = "coalesce(model, '-')",
        [ISD_USAGE_BY_DAY] = "strftime('%Y-%m-%d', time_ms / 1000, 'unixepoch')",
    };
    char sql[768];
    snprintf(sql, sizeof sql,
             "SELECT %s AS g, count(*), sum(status >= 400), "
             "sum(CASE WHEN status < 400 THEN n ELSE 0 END), "
             "sum(input_text_tokens + input_image_tokens), sum(output_tokens), sum(bytes_out), "
             "sum(ms_total), sum(steps), sum(megapixels) FROM usage WHERE time_ms >= ?%s",
             group_expr[by], by == ISD_USAGE_ALL ? "" : " GROUP BY g ORDER BY g");
    *out = NULL;
    *n = 0;
    int imported = isd_store_usage_import(st, false, NULL, err);
    if (imported < 0)
        return imported;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        rc = store_db_fail(st, err, "reading the ledger");
        goto done;
    }
    sqlite3_bind_int64(s, 1, since_ms);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct isd_usage_total *grown = realloc(*out, sizeof **out * (*n + 1));
        if (!grown) {
            rc = isd_err_set(err, ISD_E_NOMEM, NULL, "out of memory");
            goto done;
        }
        *out = grown;
        struct isd_usage_total *t = &(*out)[(*n)++];
        memset(t, 0, sizeof *t);
        snprintf(t->group, sizeof t->group, "%s", (const char *)sqlite3_column_text(s, 0));
        t->requests = (long)sqlite3_column_int64(s, 1);
        t->errors = (long)sqlite3_column_int64(s, 2);
        t->images = (long)sqlite3_column_int64(s, 3);
        t->input_tokens = (long)sqlite3_column_int64(s, 4);
        t->output_tokens = (long)sqlite3_column_int64(s, 5);
        t->bytes_out = (uint64_t)sqlite3_column_int64(s, 6);
        t->ms_total = sqlite3_column_double(s, 7);
        t->steps = (long)sqlite3_column_int64(s, 8);
        t->megapixels = sqlite3_column_double(s, 9);
    }
    if (step != SQLITE_DONE)
        rc = store_db_fail(st, err, "reading the ledger");
done:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
