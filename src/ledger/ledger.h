/*
 * ledger: the usage ledger as the server writes it (one row per image API request), so that a
 * request whose response was sent is in the ledger even if the process is killed right after.
 *
 * isd_ledger_record() appends the row to the store's usage journal on the caller's thread (one
 * write(2), a few microseconds; no transaction on the request's path) and returns once the row
 * is there: the caller then sends its response. A thread of the ledger imports the journal into
 * the database in batches, at most IMPORT_INTERVAL_MS after a row arrives (store.h explains the
 * journal). isd_ledger_new() first imports what a previous process left (after a crash), and
 * isd_ledger_free() imports the rest. If a row cannot be written the error is logged and
 * counted, and the caller answers anyway: a broken disk must not block every response.
 *
 * Ownership: the row is copied at isd_ledger_record(). Thread-safe.
 *
 *     isd_ledger_new(store, true, &ledger, &err);
 *     isd_ledger_record(ledger, &row);   then send the response
 *     isd_ledger_free(ledger);
 */
#ifndef ISD_LEDGER_H
#define ISD_LEDGER_H

#include "err/err.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

#define ISD_LEDGER_IMPORT_INTERVAL_MS 50

struct isd_ledger;

struct isd_ledger_stats {
    uint64_t rows;            /* appended to the journal */
    uint64_t imported;        /* moved into the database */
    uint64_t batches;         /* imports that moved rows */
    uint64_t failures;        /* rows that could not be appended */
    uint64_t import_failures; /* imports that failed (retried at the next one) */
    uint64_t damaged_bytes;   /* skipped in the journal */
};

int isd_ledger_new(struct isd_store *st, bool enabled, struct isd_ledger **out,
                   struct isd_error *err);
void isd_ledger_free(struct isd_ledger *l);
/* Appends `row`; 0, or -1 when it could not be written (logged and counted). No-op (0) when
 * the ledger is disabled. */
int isd_ledger_record(struct isd_ledger *l, const struct isd_usage_row *row);
/* Imports what has been appended so far, now, on the calling thread. */
int isd_ledger_flush(struct isd_ledger *l, struct isd_error *err);
bool isd_ledger_enabled(const struct isd_ledger *l);
void isd_ledger_stats(struct isd_ledger *l, struct isd_ledger_stats *out);

#endif
