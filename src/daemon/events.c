/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "berth/parse.h"
#include "berth/util.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/hooks.h"

#define KEEPALIVE_MS 15000
#define HISTORY_MAX  10000 /* events replayed to a new subscriber, at most */

struct subscriber {
	struct berthd *d;
	struct berth_http_request *req;
	char *class_name;  /* or NULL */
	char *instance_id; /* or NULL */
	int64_t last_seq;  /* the newest event sent: never twice, never backwards */
	struct subscriber *next;
};

struct berthd_events {
	struct subscriber *subs;
	uv_timer_t keepalive;
	bool timer_running;
};

static struct berthd_events *events_of(struct berthd *d)
{
	return d->events;
}

void berthd_events_init(struct berthd *d)
{
	d->events = xcalloc(1, sizeof(struct berthd_events));
	uv_timer_init(d->loop, &d->events->keepalive);
	d->events->keepalive.data = d;
}

static void unsubscribe(struct subscriber *s)
{
	struct subscriber **p = &events_of(s->d)->subs;

	for (; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	berth_http_stream_end(s->req);
	free(s->class_name);
	free(s->instance_id);
	free(s);
}

static void on_gone(struct berth_http_request *req, void *arg)
{
	(void)req;
	unsubscribe(arg);
}

static bool matches(const struct subscriber *s, const struct berth_registry_event *ev)
{
	if (s->class_name != NULL &&
	    (ev->class_name == NULL || strcmp(s->class_name, ev->class_name) != 0))
		return false;
	if (s->instance_id != NULL &&
	    (ev->instance_id == NULL || strcmp(s->instance_id, ev->instance_id) != 0))
		return false;
	return true;
}

/* Send one event; false when the subscriber had to go (gone, or too slow). */
static bool send_event(struct subscriber *s, const struct berth_registry_event *ev)
{
	json_error_t jerr;
	json_t *data = ev->data != NULL ? json_loads(ev->data, 0, &jerr) : NULL;
	json_t *o = json_pack("{s:I, s:I, s:o, s:o, s:s, s:o}", "seq", (json_int_t)ev->seq, "time",
	                      (json_int_t)ev->time_ms, "class",
	                      ev->class_name != NULL ? json_string(ev->class_name) : json_null(),
	                      "instance",
	                      ev->instance_id != NULL ? json_string(ev->instance_id) : json_null(),
	                      "type", ev->type, "data", data != NULL ? data : json_null());
	cleanup_free char *text = json_dumps(o, JSON_COMPACT);
	cleanup_free char *frame =
	        xasprintf("id: %lld\nevent: %s\ndata: %s\n\n", (long long)ev->seq, ev->type, text);
	int r;

	json_decref(o);
	if (ev->seq <= s->last_seq)
		return true;
	s->last_seq = ev->seq;
	r = berth_http_stream_write(s->req, frame, strlen(frame));
	/*
	 * A client that does not read is cut off rather than buffered for
	 * without bound; it can reconnect with Last-Event-ID.
	 */
	return r == 0;
}

static void on_keepalive(uv_timer_t *t)
{
	struct berthd *d = t->data;

	for (struct subscriber *s = events_of(d)->subs, *next; s != NULL; s = next) {
		next = s->next;
		if (berth_http_stream_write(s->req, ": keepalive\n\n", 13) != 0)
			unsubscribe(s);
	}
	if (events_of(d)->subs == NULL) {
		uv_timer_stop(t);
		events_of(d)->timer_running = false;
	}
}

void berthd_events_subscribe(struct berthd *d, struct berth_http_request *req)
{
	struct berth_registry_event_filter f = {.limit = HISTORY_MAX};
	struct berth_registry_event *history = NULL;
	struct subscriber *s;
	cleanup_free char *class_name = berth_http_query_param(req, "class");
	cleanup_free char *name = berth_http_query_param(req, "name");
	cleanup_free char *instance = berth_http_query_param(req, "instance");
	cleanup_free char *since = berth_http_query_param(req, "since");
	cleanup_free char *follow = berth_http_query_param(req, "follow");
	const char *last_id = berth_http_header(req, "last-event-id");
	berth_error_t err;
	uint64_t after = 0;
	size_t n = 0;

	if (since == NULL && last_id != NULL)
		since = xstrdup(last_id);
	if (since != NULL && berth_parse_u64(since, 0, INT64_MAX, &after, &err) < 0) {
		berth_http_respond_error(req, 400, "bad_request", "since: %s", err.message);
		return;
	}
	if (follow != NULL && strcmp(follow, "0") != 0 && strcmp(follow, "1") != 0) {
		berth_http_respond_error(req, 400, "bad_request", "follow: use 0 or 1");
		return;
	}
	if (name != NULL && class_name == NULL) {
		berth_http_respond_error(req, 400, "bad_request", "name needs class");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->req = req;
	s->class_name = steal_pointer(&class_name);
	if (name != NULL) {
		s->instance_id = xmalloc(BERTH_ID_LEN + 1);
		berth_id_from_name(s->class_name, name, s->instance_id);
	} else {
		s->instance_id = steal_pointer(&instance);
	}
	/* Without `since`, only what happens from now on. */
	if (since == NULL) {
		int64_t last = 0;
		berth_registry_last_event_seq(d->reader, &last, NULL);
		after = (uint64_t)last;
	}
	s->last_seq = (int64_t)after;
	berth_http_stream_begin(req, 200, "text/event-stream",
	                        "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
	berth_http_request_on_gone(req, on_gone, s);
	s->next = events_of(d)->subs;
	events_of(d)->subs = s;

	f.after_seq = (int64_t)after;
	f.class_name = s->class_name;
	f.instance_id = s->instance_id;
	if (berth_registry_list_events(d->reader, &f, &history, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (!send_event(s, &history[i])) {
				berth_registry_events_free(history, n);
				unsubscribe(s);
				return;
			}
		}
		berth_registry_events_free(history, n);
	}
	/* follow=0: the history only, for clients that want a finished answer (`berth events`). */
	if (follow != NULL && strcmp(follow, "0") == 0) {
		unsubscribe(s);
		return;
	}
	if (!events_of(d)->timer_running) {
		uv_timer_start(&events_of(d)->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
		events_of(d)->timer_running = true;
	}
}

void berthd_events_publish(struct berthd *d, const struct berth_registry_event *ev)
{
	berthd_hooks_event(d, ev);
	for (struct subscriber *s = events_of(d)->subs, *next; s != NULL; s = next) {
		next = s->next;
		if (matches(s, ev) && !send_event(s, ev))
			unsubscribe(s);
	}
}

void berthd_events_close(struct berthd *d)
{
	while (events_of(d)->subs != NULL)
		unsubscribe(events_of(d)->subs);
	uv_close((uv_handle_t *)&events_of(d)->keepalive, NULL);
}
