/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry writes, off the loop and in order. Every write (a state change
 * with its event, a record's creation, a destroy) is queued here and run on
 * libuv's thread pool one at a time: two changes of one instance can never
 * land out of order, and the loop never waits for an fsync. A write's `done`
 * callback runs on the loop once the write is durable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/log.h"
#include "berth/util.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/persist.h"

struct berthd_write {
	uv_work_t work;
	struct berthd *d;
	struct berthd_write *next;
	enum {
		W_STATE,
		W_DESTROY,
		W_ACTIVITY,
	} kind;
	struct berth_registry_activity *activity; /* W_ACTIVITY */
	size_t n_activity;
	char id[BERTH_ID_LEN + 1];
	char *class_name;
	char *name;
	struct berth_registry_state_change change;
	char *stop_reason;
	char *event_type;
	char *event_data;
	char *overrides;
	char *labels;
	berthd_write_done done;
	void *arg;
	int64_t seq; /* of the event, once appended */
	int64_t time_ms;
	int result;
	berth_error_t err;
};

static void run_next(struct berthd *d);

static void write_free(struct berthd_write *w)
{
	free(w->class_name);
	free(w->name);
	free(w->stop_reason);
	free(w->event_type);
	free(w->event_data);
	free(w->overrides);
	free(w->labels);
	free(w->activity);
	free(w);
}

static int apply(struct berth_registry *reg, void *data, berth_error_t *err)
{
	struct berthd_write *w = data;
	struct berth_registry_instance rec = {0};
	int r = 0;

	if (w->kind == W_ACTIVITY)
		return berth_registry_flush_activity(reg, w->activity, w->n_activity, NULL, err);
	if (w->name != NULL) {
		/* The first start of a name creates its record. */
		r = berth_registry_get_or_create(reg, w->class_name, w->name, &rec, NULL, err);
		berth_registry_instance_clear(&rec);
		if (r < 0)
			return r;
	}
	if (w->kind == W_DESTROY) {
		r = berth_registry_destroy(reg, w->id, err);
		if (r == -ENOENT)
			return 0; /* a name that never ran: nothing to reset */
	} else {
		w->change.stop_reason = w->stop_reason;
		r = berth_registry_set_state(reg, w->id, BERTH_STATE_ANY, &w->change, NULL, err);
		if (r == 0 && (w->overrides != NULL || w->labels != NULL))
			r = berth_registry_set_overrides(reg, w->id, w->overrides, w->labels, err);
	}
	if (r == 0 && w->event_type != NULL)
		r = berth_registry_append_event_at(reg, w->class_name, w->id, w->event_type,
		                                   w->event_data, w->time_ms, &w->seq, err);
	return r;
}

static void work(uv_work_t *req)
{
	struct berthd_write *w = req->data;

	/* One transaction: the state and its event are durable together. */
	w->result = berth_registry_transact(w->d->registry, apply, w, &w->err);
}

static void after(uv_work_t *req, int status)
{
	struct berthd_write *w = req->data;
	struct berthd *d = w->d;

	(void)status;
	d->writing = false;
	if (w->result < 0 && w->kind == W_ACTIVITY)
		berth_warn("registry: activity of %zu instances: %s", w->n_activity,
		           w->err.message);
	else if (w->result < 0)
		berth_error_log("registry: instance %s: %s", w->id, w->err.message);
	if (w->result == 0 && w->seq > 0) {
		/* Durable now: tell the event streams. */
		struct berth_registry_event ev = {
		        .seq = w->seq,
		        .time_ms = w->time_ms,
		        .class_name = w->class_name,
		        .instance_id = w->id,
		        .type = w->event_type,
		        .data = w->event_data,
		};
		berthd_events_publish(d, &ev);
	}
	if (w->done != NULL)
		w->done(w->result, w->result < 0 ? w->err.message : NULL, w->arg);
	write_free(w);
	run_next(d);
}

static void run_next(struct berthd *d)
{
	struct berthd_write *w = d->write_head;

	if (d->writing || w == NULL)
		return;
	d->write_head = w->next;
	if (d->write_head == NULL)
		d->write_tail = NULL;
	d->writing = true;
	w->work.data = w;
	uv_queue_work(d->loop, &w->work, work, after);
}

static void enqueue(struct berthd *d, struct berthd_write *w)
{
	w->d = d;
	if (d->write_tail != NULL)
		d->write_tail->next = w;
	else
		d->write_head = w;
	d->write_tail = w;
	run_next(d);
}

void berthd_persist_state(struct berthd *d, const struct berthd_state_write *sw,
                          berthd_write_done done, void *arg)
{
	struct berthd_write *w = xcalloc(1, sizeof(*w));

	w->kind = W_STATE;
	memcpy(w->id, sw->id, sizeof(w->id));
	w->class_name = xstrdup(sw->class_name);
	w->name = sw->name != NULL ? xstrdup(sw->name) : NULL;
	w->change.state = sw->state;
	w->change.has_exit_code = sw->has_exit_code;
	w->change.exit_code = sw->exit_code;
	w->change.exit_signal = sw->exit_signal;
	w->change.oom = sw->oom;
	w->change.time_ms = sw->time_ms;
	w->time_ms = sw->time_ms != 0 ? sw->time_ms : berthd_now_ms();
	w->stop_reason = sw->stop_reason != NULL ? xstrdup(sw->stop_reason) : NULL;
	w->event_type = sw->event_type != NULL ? xstrdup(sw->event_type) : NULL;
	w->event_data = sw->event_data != NULL ? xstrdup(sw->event_data) : NULL;
	w->overrides = sw->overrides != NULL ? xstrdup(sw->overrides) : NULL;
	w->labels = sw->labels != NULL ? xstrdup(sw->labels) : NULL;
	w->done = done;
	w->arg = arg;
	enqueue(d, w);
}

void berthd_persist_destroy(struct berthd *d, const char *class_name, const char *id,
                            berthd_write_done done, void *arg)
{
	struct berthd_write *w = xcalloc(1, sizeof(*w));

	w->kind = W_DESTROY;
	snprintf(w->id, sizeof(w->id), "%s", id);
	w->class_name = xstrdup(class_name);
	w->event_type = xstrdup("destroyed");
	w->time_ms = berthd_now_ms();
	w->done = done;
	w->arg = arg;
	enqueue(d, w);
}

void berthd_persist_activity(struct berthd *d, struct berth_registry_activity *items, size_t n)
{
	struct berthd_write *w = xcalloc(1, sizeof(*w));

	w->kind = W_ACTIVITY;
	w->activity = items;
	w->n_activity = n;
	enqueue(d, w);
}

bool berthd_persist_idle(const struct berthd *d)
{
	return !d->writing && d->write_head == NULL;
}
