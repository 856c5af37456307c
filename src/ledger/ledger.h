/*
 * ledger: writes the usage ledger (one row per image API request) on its own thread, and says
 * when each row is committed, so the server sends a response only after its row is safe: a
 * request whose response was sent is in the ledger even if the process is killed right after.
 *
 * Rows queue in memory; the writer thread takes everything queued and commits it in one
 * transaction (group commit), then calls each row's done(ctx) in order, on the writer thread.
 * A commit writes the SQLite WAL (no fsync: synchronous=NORMAL), which survives a killed
 * process. When the ledger is disabled, done(ctx) is called at once on the caller's thread.
 * If a commit fails, the error is logged and done() is still called: a broken disk must not
 * block every response (the failure is visible in the logs and metrics).
 *
 * Ownership: a row is copied, strings included, at isd_ledger_record(). isd_ledger_free()
 * commits what is queued and calls the remaining done() hooks before returning. Thread-safe.
 *
 *     isd_ledger_new(store, true, &ledger, &err);
 *     isd_ledger_record(ledger, &row, send_response, req);
 *     isd_ledger_free(ledger);
 */
#ifndef ISD_LEDGER_H
#define ISD_LEDGER_H

#include "err/err.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct isd_ledger;

struct isd_ledger_stats {
    uint64_t rows;     /* committed */
    uint64_t batches;  /* transactions */
    uint64_t failures; /* rows whose commit failed */
};

int isd_ledger_new(struct isd_store *st, bool enabled, struct isd_ledger **out,
                   struct isd_error *err);
void isd_ledger_free(struct isd_ledger *l);
/* Queues `row`; done(ctx) follows its commit. Returns 0 (done will be called exactly once). */
int isd_ledger_record(struct isd_ledger *l, const struct isd_usage_row *row,
                      void (*done)(void *ctx), void *ctx);
/* Commits `row` on the calling thread and returns when it is committed (for threads that may
 * write to disk, e.g. workers: one hand-over fewer than isd_ledger_record). A failure is
 * logged and counted like the writer thread's. No-op when the ledger is disabled. */
void isd_ledger_commit(struct isd_ledger *l, const struct isd_usage_row *row);
bool isd_ledger_enabled(const struct isd_ledger *l);
void isd_ledger_stats(struct isd_ledger *l, struct isd_ledger_stats *out);

#endif
