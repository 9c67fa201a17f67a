/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry writes, off the loop and in order. Every write (a state change
 * with its event, a record's creation, a destroy, a batch of activity) is
 * queued here for one writer thread of its own, which takes everything
 * queued and commits it in one transaction (group commit: one sync for a
 * burst of 100 starts, not 100). Writes are applied in queue order, so two
 * changes of one instance never land out of order; the loop never waits for
 * an fsync; and registry writes never queue behind container starts on
 * libuv's thread pool. A write's `done` callback runs on the loop, in order,
 * once the write is durable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/log.h"
#include "berth/util.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/persist.h"

/* At most this many writes in one transaction, so one sync never waits for too many. */
#define BATCH_MAX 512

struct berthd_persist {
	uv_async_t async; /* first: its close callback frees the struct */
	pthread_t thread;
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	struct berthd_write *queue_head, *queue_tail; /* to the writer */
	struct berthd_write *done_head, *done_tail;   /* back to the loop */
	bool quit;
	size_t pending; /* the loop's count of writes queued and not yet answered */
};

struct berthd_write {
	struct berthd *d;
	struct berthd_write *next;
	enum {
		W_STATE,
		W_DESTROY,
		W_ACTIVITY,
		W_EVENT, /* an event alone, of no instance's state */
	} kind;
	struct berth_registry_activity *activity; /* W_ACTIVITY */
	size_t n_activity;
	char id[BERTH_ID_LEN + 1]; /* empty: no instance (W_EVENT) */
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
	if (w->kind == W_EVENT)
		return berth_registry_append_event_at(reg, w->class_name, w->id[0] ? w->id : NULL,
		                                      w->event_type, w->event_data, w->time_ms,
		                                      &w->seq, err);
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

static int apply_batch(struct berth_registry *reg, void *data, berth_error_t *err)
{
	for (struct berthd_write *w = data; w != NULL; w = w->next) {
		int r = apply(reg, w, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Commit a batch at once; if that fails, each write alone, so one bad write fails only itself. */
static void write_batch(struct berth_registry *reg, struct berthd_write *batch)
{
	berth_error_t err;
	int r = berth_registry_transact(reg, apply_batch, batch, &err);

	if (r == 0 || batch->next == NULL) {
		for (struct berthd_write *w = batch; w != NULL; w = w->next) {
			w->result = r;
			if (r < 0)
				w->err = err;
		}
		return;
	}
	for (struct berthd_write *w = batch; w != NULL; w = w->next) {
		struct berthd_write *next = w->next;

		w->next = NULL;
		w->seq = 0;
		w->result = berth_registry_transact(reg, apply, w, &w->err);
		w->next = next;
	}
}

static void *writer_main(void *arg)
{
	struct berthd *d = arg;
	struct berthd_persist *p = d->persist;

	pthread_mutex_lock(&p->mutex);
	for (;;) {
		struct berthd_write *batch, *last;
		size_t n = 1;

		while (p->queue_head == NULL && !p->quit)
			pthread_cond_wait(&p->cond, &p->mutex);
		if (p->queue_head == NULL)
			break;
		batch = last = p->queue_head;
		while (last->next != NULL && n < BATCH_MAX) {
			last = last->next;
			n++;
		}
		p->queue_head = last->next;
		if (p->queue_head == NULL)
			p->queue_tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&p->mutex);

		write_batch(d->registry, batch);

		pthread_mutex_lock(&p->mutex);
		if (p->done_tail != NULL)
			p->done_tail->next = batch;
		else
			p->done_head = batch;
		p->done_tail = last;
		uv_async_send(&p->async);
	}
	pthread_mutex_unlock(&p->mutex);
	return NULL;
}

/* On the loop: answer what the writer finished, in order. */
static void on_written(uv_async_t *h)
{
	struct berthd *d = h->data;
	struct berthd_persist *p = d->persist;
	struct berthd_write *w;

	pthread_mutex_lock(&p->mutex);
	w = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->mutex);
	while (w != NULL) {
		struct berthd_write *next = w->next;

		if (w->result < 0 && w->kind == W_ACTIVITY)
			berth_warn("registry: activity of %zu instances: %s", w->n_activity,
			           w->err.message);
		else if (w->result < 0 && w->kind == W_EVENT)
			berth_error_log("registry: %s event of class %s: %s", w->event_type,
			                w->class_name != NULL ? w->class_name : "-",
			                w->err.message);
		else if (w->result < 0)
			berth_error_log("registry: instance %s: %s", w->id, w->err.message);
		if (w->result == 0 && w->seq > 0) {
			/* Durable now: tell the event streams. */
			struct berth_registry_event ev = {
			        .seq = w->seq,
			        .time_ms = w->time_ms,
			        .class_name = w->class_name,
			        .instance_id = w->id[0] ? w->id : NULL,
			        .type = w->event_type,
			        .data = w->event_data,
			};
			berthd_events_publish(d, &ev);
		}
		if (w->done != NULL)
			w->done(w->result, w->result < 0 ? w->err.message : NULL, w->arg);
		write_free(w);
		/* Idle, the handle must not keep the loop alive (see enqueue()). */
		if (--p->pending == 0)
			uv_unref((uv_handle_t *)&p->async);
		w = next;
	}
}

static void enqueue(struct berthd *d, struct berthd_write *w)
{
	struct berthd_persist *p = d->persist;

	w->d = d;
	w->next = NULL;
	/* While a write is pending the loop must not end: the handle holds it. */
	if (p->pending++ == 0)
		uv_ref((uv_handle_t *)&p->async);
	pthread_mutex_lock(&p->mutex);
	if (p->queue_tail != NULL)
		p->queue_tail->next = w;
	else
		p->queue_head = w;
	p->queue_tail = w;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mutex);
}

static void free_persist(uv_handle_t *h)
{
	free((struct berthd_persist *)h);
}

int berthd_persist_init(struct berthd *d, berth_error_t *err)
{
	struct berthd_persist *p = xcalloc(1, sizeof(*p));
	int r;

	pthread_mutex_init(&p->mutex, NULL);
	pthread_cond_init(&p->cond, NULL);
	uv_async_init(d->loop, &p->async, on_written);
	p->async.data = d;
	uv_unref((uv_handle_t *)&p->async);
	d->persist = p;
	r = pthread_create(&p->thread, NULL, writer_main, d);
	if (r != 0) {
		d->persist = NULL;
		uv_close((uv_handle_t *)&p->async, free_persist);
		return berth_error_set(err, r, "start the registry writer");
	}
	return 0;
}

void berthd_persist_shutdown(struct berthd *d)
{
	struct berthd_persist *p = d->persist;

	if (p == NULL)
		return;
	/* Whatever is still queued is written before the thread ends. */
	pthread_mutex_lock(&p->mutex);
	p->quit = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mutex);
	pthread_join(p->thread, NULL);
	on_written(&p->async);
	pthread_mutex_destroy(&p->mutex);
	pthread_cond_destroy(&p->cond);
	d->persist = NULL;
	uv_close((uv_handle_t *)&p->async, free_persist);
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

void berthd_persist_event(struct berthd *d, const char *class_name, const char *instance_id,
                          const char *type, const char *data)
{
	struct berthd_write *w = xcalloc(1, sizeof(*w));

	w->kind = W_EVENT;
	if (instance_id != NULL)
		snprintf(w->id, sizeof(w->id), "%s", instance_id);
	w->class_name = class_name != NULL ? xstrdup(class_name) : NULL;
	w->event_type = xstrdup(type);
	w->event_data = data != NULL ? xstrdup(data) : NULL;
	w->time_ms = berthd_now_ms();
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
	return d->persist == NULL || d->persist->pending == 0;
}
