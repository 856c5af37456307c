/*
 * server: `imagesd serve`. Wires the modules together: config → store (data directory) →
 * catalogue (models and generators) → jobs (worker pool) → http (routes), prints the
 * readiness line `listening on http://HOST:PORT` on stdout, and runs until SIGINT or SIGTERM.
 *
 * Routes:
 *   POST /v1/images/generations   validate (api) on the connection thread, then a job
 *   POST /v1/images/edits         multipart (streamed, validated at its end) or JSON (a job)
 *   POST /v1/images/variations    multipart
 *   GET  /v1/models, /v1/models/{id}
 *   GET  /healthz                 {"status":"ok", ...job counters}
 *   GET  /images/{id}.{ext}?expires=&sig=   stored images behind signed links (no auth)
 * Shutdown: on the first SIGINT/SIGTERM the server stops accepting connections, refuses
 * waiting jobs with 503, gives running jobs `drain_timeout` seconds, then exits 0. A second
 * signal exits at once. Expired images are swept every `sweep_interval` seconds by the main
 * thread.
 *
 * Returns 0 after a clean shutdown, or a negative id with `err` filled when it cannot start.
 */
#ifndef ISD_SERVER_H
#define ISD_SERVER_H

#include "config/config.h"
#include "err/err.h"

int isd_server_run(const struct isd_config *cfg, struct isd_error *err);

#endif
