/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd as a systemd service (sd_notify(3)): READY=1 once the control API
 * listens, RELOADING=1 … READY=1 around a SIGHUP reload, STOPPING=1 when
 * shutdown begins, STATUS= with the instance count, and WATCHDOG=1 from a
 * timer on the event loop, so that a loop that hangs stops the pings and
 * systemd restarts berthd. Every call is a no-op without $NOTIFY_SOCKET.
 */
#ifndef BERTH_DAEMON_NOTIFY_H
#define BERTH_DAEMON_NOTIFY_H

#include <stdbool.h>

struct berthd;

/* Read $NOTIFY_SOCKET and the watchdog's settings and start the timer (d->loop must exist). */
void berthd_notify_init(struct berthd *d);

/* READY=1 with the status: the control API listens. */
void berthd_notify_ready(struct berthd *d);

/* RELOADING=1 with MONOTONIC_USEC= (which Type=notify-reload requires). */
void berthd_notify_reloading(struct berthd *d);

/*
 * READY=1: the reload is over. `ok` false (the file had errors) is said in
 * STATUS=, since the previous configuration keeps running.
 */
void berthd_notify_reloaded(struct berthd *d, bool ok);

/* STOPPING=1: shutdown has begun. */
void berthd_notify_stopping(struct berthd *d);

/* Stop the timer and free the state, so the loop can end; later calls send nothing. */
void berthd_notify_close(struct berthd *d);

#endif
