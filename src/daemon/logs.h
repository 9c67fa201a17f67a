/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /v1/classes/C/instances/N/logs: an instance's container output, as the
 * CRI log records its init writes to STATE_DIR/logs/ID/container.log (and the
 * rotated container.log.1 ... .K), oldest first. `tail=N` keeps the last N
 * records, found by reading backwards; `follow=1` streams new records as
 * they are written, across rotations, until the client or berthd goes;
 * `since` (RFC 3339 or milliseconds) drops older records. File reads run on
 * the thread pool, 64 KiB at a time, and pause while the client is behind.
 */
#ifndef BERTH_DAEMON_LOGS_H
#define BERTH_DAEMON_LOGS_H

#include "http/http.h"

struct berthd;

void berthd_logs_init(struct berthd *d);

/*
 * Take over `req`, a GET of the logs of instance `id` (a 64-hex id whose
 * record exists): answer it as a text/plain stream, or with an error.
 */
void berthd_logs_serve(struct berthd *d, struct berth_http_request *req, const char *id);

/* End every log stream (shutdown). */
void berthd_logs_close(struct berthd *d);

#endif
