/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sd_notify from the event loop. sd_notify() sends one datagram on a unix
 * socket of systemd's and returns; it never waits for an answer, so it is
 * called on the loop directly.
 */
#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <uv.h>

#include "berth/log.h"
#include "berth/util.h"
#include "daemon/daemon.h"
#include "daemon/instances.h"
#include "daemon/notify.h"

/* How often STATUS= is brought up to date when the watchdog does not tick faster. */
#define STATUS_PERIOD_MS 5000

struct berthd_notify {
	uv_timer_t timer;
	uint64_t watchdog_usec; /* 0: no watchdog */
	bool reload_failed;     /* the last reload kept the previous configuration */
	bool warned;            /* a failed send was logged (once is enough) */
	char status[192];       /* the last STATUS= sent */
};

static void send_message(struct berthd_notify *n, const char *msg)
{
	int r = sd_notify(0, msg);

	if (r < 0 && !n->warned) {
		n->warned = true;
		berth_warn("notify systemd (NOTIFY_SOCKET=%s): %s", getenv("NOTIFY_SOCKET"),
		           strerror(-r));
	}
}

static void format_status(struct berthd *d, char *buf, size_t size)
{
	size_t active = berthd_instances_active(d);
	size_t classes = d->config->n_classes;

	if (d->stopping) {
		snprintf(buf, size, "stopping: %zu instance%s left", active,
		         active == 1 ? "" : "s");
		return;
	}
	snprintf(buf, size, "%zu instance%s active, %zu container class%s%s", active,
	         active == 1 ? "" : "s", classes, classes == 1 ? "" : "es",
	         d->notify->reload_failed
	                 ? "; the last reload failed, the previous configuration runs"
	                 : "");
}

/*
 * Send `what` (READY=1, ...) with STATUS= when it changed since the last
 * send, or with `force`. The status rides in the same datagram, so systemd
 * never shows READY=1 with a stale status.
 */
static void notify(struct berthd *d, const char *what, bool force)
{
	struct berthd_notify *n = d->notify;
	char status[sizeof(n->status)];
	char msg[sizeof(n->status) + 128];
	bool changed;
	int len = 0;

	format_status(d, status, sizeof(status));
	changed = force || strcmp(status, n->status) != 0;
	if (what == NULL && !changed)
		return;
	msg[0] = '\0';
	if (what != NULL)
		len = snprintf(msg, sizeof(msg), "%s\n", what);
	if (changed) {
		snprintf(msg + len, sizeof(msg) - (size_t)len, "STATUS=%s\n", status);
		memcpy(n->status, status, sizeof(status));
	}
	send_message(n, msg);
}

static void on_tick(uv_timer_t *t)
{
	struct berthd *d = t->data;

	if (d->notify->watchdog_usec != 0)
		notify(d, "WATCHDOG=1", false);
	else
		notify(d, NULL, false);
}

void berthd_notify_init(struct berthd *d)
{
	struct berthd_notify *n;
	uint64_t usec = 0, period_ms = STATUS_PERIOD_MS;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	n = xcalloc(1, sizeof(*n));
	d->notify = n;
	/*
	 * > 0 when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is our pid
	 * (a variable inherited from a parent service is not meant for us).
	 */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		n->watchdog_usec = usec;
		/* Half the interval, as sd_watchdog_enabled(3) advises. */
		if (usec / 2000 < period_ms)
			period_ms = usec / 2000 > 0 ? usec / 2000 : 1;
		berth_debug("systemd watchdog: %" PRIu64 " ms, pinged every %" PRIu64 " ms",
		            usec / 1000, period_ms);
	}
	uv_timer_init(d->loop, &n->timer);
	n->timer.data = d;
	uv_timer_start(&n->timer, on_tick, period_ms, period_ms);
	/* The timer alone must not keep the loop (and so berthd) running. */
	uv_unref((uv_handle_t *)&n->timer);
}

void berthd_notify_ready(struct berthd *d)
{
	if (d->notify != NULL)
		notify(d, "READY=1", true);
}

void berthd_notify_reloading(struct berthd *d)
{
	struct timespec now;
	char what[80];

	if (d->notify == NULL)
		return;
	/*
	 * Type=notify-reload matches RELOADING=1 to the reload it asked for by
	 * this timestamp, taken after the signal arrived.
	 */
	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(what, sizeof(what), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	         (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000);
	notify(d, what, false);
}

void berthd_notify_reloaded(struct berthd *d, bool ok)
{
	if (d->notify == NULL)
		return;
	d->notify->reload_failed = !ok;
	notify(d, "READY=1", true);
}

void berthd_notify_stopping(struct berthd *d)
{
	if (d->notify != NULL)
		notify(d, "STOPPING=1", true);
}

static void on_closed(uv_handle_t *h)
{
	/* The timer is the struct's first member. */
	static_assert(offsetof(struct berthd_notify, timer) == 0, "timer first");
	free(h);
}

void berthd_notify_close(struct berthd *d)
{
	struct berthd_notify *n = d->notify;

	if (n == NULL)
		return;
	d->notify = NULL;
	uv_close((uv_handle_t *)&n->timer, on_closed);
}
