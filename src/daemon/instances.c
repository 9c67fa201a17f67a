/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The instance manager (see instances.h). An active instance is a struct
 * instance in a hash table by id; it moves through the lifecycle table
 * (instance/state.h) on the loop, and every move is persisted in order
 * (persist.c). Runtime calls run on the thread pool.
 *
 *   start:  START (running) ─▶ runtime start (pool) ─▶ exit watch on the
 *           init's pidfd ─▶ readiness probes (1, 2, 4, … ms, then every 300) ─▶ READY
 *           ─▶ callers answered once that state is durable ─▶ sleepAfter
 *   stop:   STOP (stopping) ─▶ signal ─▶ SIGKILL after the grace period
 *   exit:   pidfd readable ─▶ EXIT_CLEAN / EXIT_ERROR ─▶ runtime destroy
 *           (pool) ─▶ the struct goes; the record stays
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/log.h"
#include "berth/parse.h"
#include "berth/runtime.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "daemon/daemon.h"
#include "daemon/images.h"
#include "daemon/instances.h"
#include "daemon/persist.h"
#include "daemon/probe.h"

#define BUCKETS          1024
#define PROBE_INTERVAL   300  /* ms, as the library polls; but see probe_delay() */
#define PROBE_TIMEOUT_MS 5000 /* per attempt, the library's PING_TIMEOUT_MS */
/*
 * Activity is kept in memory and written this long after it first changed,
 * all changed instances in one transaction: a request never waits for
 * SQLite, and a crash loses at most this much of it.
 */
#define ACTIVITY_FLUSH_MS 5000

struct waiter {
	berthd_start_cb cb;
	void *arg;
	/*
	 * A lease's acquire: answered as soon as the instance is ready, not
	 * once that state is durable (see became_ready()).
	 */
	bool on_ready;
	struct waiter *next;
};

/* A start that must wait until the previous container of its name is gone. */
struct pending_start {
	char *class_name;
	char *name;
	struct berthd_start_options opts; /* its own references and copies */
	berthd_start_cb cb;
	void *arg;
	bool on_ready;
	struct pending_start *next;
};

enum timer_use {
	TIMER_NONE,
	TIMER_PROBE, /* the next readiness attempt */
	TIMER_SLEEP, /* sleepAfter */
	TIMER_GRACE, /* SIGKILL after the stop's grace period */
};

struct instance {
	struct berthd *d;
	char id[BERTH_ID_LEN + 1];
	char *class_name;
	char *name;
	enum berth_state state;
	int64_t last_change_ms;
	/*
	 * How the last container ended, as written with the state (the API
	 * shows it with the state before the write is durable).
	 */
	bool has_exit;
	struct berth_exit exit;
	/* the class's settings, as of the start */
	uint64_t sleep_after_ms;
	uint64_t stop_grace_ms;
	uint64_t port_ready_timeout_ms;
	char *ping_endpoint;
	uint16_t ready_min, ready_max;
	uint16_t *ports;
	size_t n_ports;
	bool wait_for_ports;
	struct berth_limits limits;
	/* the container */
	struct berth_container *ctr;
	bool starting; /* the runtime start is under way */
	uv_poll_t exit_poll;
	bool exit_poll_open;
	uv_timer_t timer;
	enum timer_use timer_use;
	struct berthd_probe *probe;
	size_t probe_port;
	unsigned probe_attempt; /* failed attempts since the last success */
	int64_t ready_deadline_ms;
	/* who waits */
	struct waiter *start_waiters;
	struct waiter *destroy_waiters;
	struct pending_start *pending; /* starts for after this container */
	/* stopping */
	bool stop_requested;
	int stop_signal;
	char *stop_reason;
	bool destroy_requested;
	bool detached; /* left running for the next berthd (live restore) */
	/* Labels (JSON) to write with the next state change, and the start's overrides with them.
	 */
	char *labels_update, *overrides_kept;
	/* activity */
	int64_t last_activity_ms;
	bool activity_dirty; /* not yet written */
	unsigned inflight;
	/*
	 * Leases that use the container handle (berthd_lease_container()): its
	 * destroy or release waits for the last of them.
	 */
	unsigned ctr_holds;
	struct reap_job *deferred_reap;
	struct berth_container *deferred_release;
	int busy; /* thread-pool jobs holding this struct */
	/*
	 * The housekeeping after this start waits until its callers are
	 * answered: it makes network namespaces, a millisecond of kernel work
	 * that would compete with the readiness probe and the first request.
	 */
	bool housekeeping_deferred;
	bool released;
	struct instance *next; /* hash chain */
};

struct berthd_instances {
	struct instance *buckets[BUCKETS];
	size_t count;
	/*
	 * Unlinked, their handle closing: on_released() still records their
	 * activity. libuv runs close callbacks last-closed first, so the last
	 * one to go is not always the last one unlinked.
	 */
	size_t releasing;
	uv_timer_t activity_timer; /* armed while some activity is unwritten */
	struct berth_registry_activity *released_activity; /* of instances already gone */
	size_t n_released_activity;
	void (*shutdown_done)(struct berthd *d);
	bool housekeeping;       /* a housekeeping job is queued or running */
	bool housekeeping_again; /* and another is wanted after it */
	bool refill_warned;      /* a failure to fill the netns pool was logged once */
	bool bridged;            /* a bridged start ran: keep bridged slots too */
	bool swept_cgroups;      /* the first housekeeping looked for retired cgroups */
};

static void release_if_idle(struct instance *in);
static void detach(struct instance *in);
static void start_answer(berthd_start_cb cb, void *arg, int status, const char *code,
                         const char *message, const char *id);
static void begin_stop(struct instance *in, int signal, uint64_t grace_ms, const char *reason);
static void start_instance(struct berthd *d, const struct berth_config_class *cls, const char *name,
                           const struct berthd_start_options *opts, berthd_start_cb cb, void *arg,
                           bool on_ready);
static void housekeeping_after_start(struct instance *in);

/* ---- the table ---- */

static size_t bucket_of(const char *id)
{
	size_t h = 0;
	for (int i = 0; i < 16; i++)
		h = h * 16 + (size_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
	return h % BUCKETS;
}

static struct instance *find(struct berthd *d, const char *id)
{
	for (struct instance *in = d->instances->buckets[bucket_of(id)]; in != NULL; in = in->next)
		if (strcmp(in->id, id) == 0)
			return in;
	return NULL;
}

static void unlink_instance(struct instance *in)
{
	struct instance **p = &in->d->instances->buckets[bucket_of(in->id)];

	for (; *p != NULL; p = &(*p)->next) {
		if (*p == in) {
			*p = in->next;
			in->d->instances->count--;
			return;
		}
	}
}

void berthd_instances_init(struct berthd *d)
{
	d->instances = xcalloc(1, sizeof(*d->instances));
	uv_timer_init(d->loop, &d->instances->activity_timer);
	d->instances->activity_timer.data = d;
	/* It must not keep the loop alive at shutdown (flushed explicitly then). */
	uv_unref((uv_handle_t *)&d->instances->activity_timer);
}

/* ---- housekeeping: the trash, prepared network namespaces ---- */

/*
 * Network namespaces kept ready for starts (netpool.c): the first requests
 * of a cold start do not wait for the kernel to make one. A few hundred KiB
 * of kernel memory each.
 */
#define NETNS_POOL_SIZE 4
/*
 * Bridged ones (enableInternet), made once a bridged start has set the
 * host's bridge up: a veth pair each besides the namespace. Removed when
 * berthd stops.
 */
#define BRIDGE_POOL_SIZE 2

struct housekeeping {
	uv_work_t work;
	struct berthd *d;
	char *state_dir;
	bool fill;
	bool fill_bridged;
	bool drain_bridged; /* berthd stops */
	bool sweep_cgroups; /* at start-up: those `berth run` retired and left */
	berth_error_t err, drain_err;
	int result, drained;
};

static void housekeeping_work(uv_work_t *w)
{
	struct housekeeping *k = w->data;

	BERTH_TRACE("berthd: housekeeping");
	/*
	 * What deferred destroys left: the veths of bridged containers (their
	 * addresses free once they are deleted) and the writable layers in the
	 * trash, ours and `berth run`'s of the same state.
	 */
	if (!k->drain_bridged)
		berth_bridge_sweep_departed(NULL);
	if (k->sweep_cgroups)
		berth_runtime_sweep_cgroups(NULL);
	berth_runtime_sweep(k->state_dir, NULL);
	k->result = k->fill ? berth_netns_pool_fill(NETNS_POOL_SIZE, &k->err) : 0;
	if (k->result == 0 && k->fill_bridged)
		k->result = berth_bridge_pool_fill(BRIDGE_POOL_SIZE, &k->err);
	/* Stopping: our slots go, and the veths of the containers stopped meanwhile. */
	if (k->drain_bridged) {
		k->drained = berth_bridge_pool_drain(&k->drain_err);
		if (k->drained == 0)
			k->drained = berth_bridge_sweep_departed(&k->drain_err);
	}
	BERTH_TRACE("berthd: housekeeping done");
}

static void housekeeping(struct berthd *d);

/* The housekeeping a start put off, now that its callers are answered. */
static void housekeeping_after_start(struct instance *in)
{
	if (!in->housekeeping_deferred)
		return;
	in->housekeeping_deferred = false;
	housekeeping(in->d);
}

static void housekeeping_done(uv_work_t *w, int status)
{
	struct housekeeping *k = w->data;
	struct berthd_instances *is = k->d->instances;

	is->housekeeping = false;
	if (status == 0 && k->result < 0 && !is->refill_warned) {
		/* Starts make their own namespaces then: slower, not broken. */
		berth_warn("%s (starts make their own)", k->err.message);
		is->refill_warned = true;
	}
	if (status == 0 && k->drained < 0)
		berth_warn("remove the prepared bridged network namespaces: %s",
		           k->drain_err.message);
	if (is->housekeeping_again) {
		is->housekeeping_again = false;
		housekeeping(k->d);
	}
	free(k->state_dir);
	free(k);
}

/*
 * On the thread pool: sweep the trash and, unless berthd is stopping, top
 * up the pool. One job at a time, and one more after it if asked meanwhile
 * (a layer moved to the trash after the running job looked is not left).
 */
static void housekeeping(struct berthd *d)
{
	struct berthd_instances *is = d->instances;
	struct housekeeping *k;

	if (is->housekeeping) {
		is->housekeeping_again = true;
		return;
	}
	k = xcalloc(1, sizeof(*k));
	k->work.data = k;
	k->d = d;
	k->state_dir = xstrdup(d->config->berth.state_dir);
	k->fill = !d->stopping;
	k->fill_bridged = !d->stopping && is->bridged;
	k->drain_bridged = d->stopping;
	/*
	 * berthd retires no cgroup of its own (its destroys remove them);
	 * those a `berth run` left, its tidying child gone, are looked for once.
	 */
	k->sweep_cgroups = !is->swept_cgroups;
	is->swept_cgroups = true;
	is->housekeeping = true;
	uv_queue_work(d->loop, &k->work, housekeeping_work, housekeeping_done);
}

/* Write every unwritten activity, in one registry transaction. */
static void flush_activity(struct berthd *d)
{
	struct berthd_instances *is = d->instances;
	size_t n = is->n_released_activity, cap = n + 16;
	struct berth_registry_activity *items = xmalloc(cap * sizeof(*items));

	if (n > 0)
		memcpy(items, is->released_activity, n * sizeof(*items));
	free(is->released_activity);
	is->released_activity = NULL;
	is->n_released_activity = 0;
	for (size_t i = 0; i < BUCKETS; i++) {
		for (struct instance *in = is->buckets[i]; in != NULL; in = in->next) {
			if (!in->activity_dirty)
				continue;
			if (n == cap)
				items = xrealloc(items, (cap *= 2) * sizeof(*items));
			memcpy(items[n].id, in->id, sizeof(items[n].id));
			items[n].last_activity_ms = in->last_activity_ms;
			in->activity_dirty = false;
			n++;
		}
	}
	uv_timer_stop(&is->activity_timer);
	if (n == 0) {
		free(items);
		return;
	}
	berthd_persist_activity(d, items, n);
}

static void on_activity_timer(uv_timer_t *t)
{
	flush_activity(t->data);
}

/* Activity on `in` (a start, a renew, a request): kept in memory, written soon. */
static void touch(struct instance *in)
{
	in->last_activity_ms = berthd_now_ms();
	in->activity_dirty = true;
	if (!uv_is_active((uv_handle_t *)&in->d->instances->activity_timer))
		uv_timer_start(&in->d->instances->activity_timer, on_activity_timer,
		               ACTIVITY_FLUSH_MS, 0);
}

size_t berthd_instances_active(struct berthd *d)
{
	return d->instances->count;
}

/* ---- answering ---- */

static void answer_all(struct waiter **list, const struct berthd_start_result *res)
{
	struct waiter *w = *list;

	*list = NULL;
	while (w != NULL) {
		struct waiter *next = w->next;
		w->cb(res, w->arg);
		free(w);
		w = next;
	}
}

static void add_waiter(struct waiter **list, berthd_start_cb cb, void *arg, bool on_ready)
{
	struct waiter *w = xcalloc(1, sizeof(*w));

	w->cb = cb;
	w->arg = arg;
	w->on_ready = on_ready;
	w->next = *list;
	*list = w;
}

static void fail_waiters(struct instance *in, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void fail_waiters(struct instance *in, int status, const char *code, const char *fmt, ...)
{
	struct berthd_start_result res = {.status = status, .code = code, .id = in->id};
	char message[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	res.message = message;
	answer_all(&in->start_waiters, &res);
}

/* ---- states ---- */

struct persisted {
	struct instance *in;
	bool answer_start; /* answer the start's waiters once durable */
};

static void on_durable(int result, const char *why, void *arg)
{
	struct persisted *p = arg;
	struct instance *in = p->in;

	in->busy--;
	if (p->answer_start) {
		if (result < 0)
			fail_waiters(in, 500, "registry",
			             "the instance's state could not be saved: %s", why);
		else {
			struct berthd_start_result res = {.status = 0, .id = in->id};
			BERTH_TRACE("berthd: answering the start");
			answer_all(&in->start_waiters, &res);
		}
		housekeeping_after_start(in);
	}
	free(p);
	release_if_idle(in);
}

/*
 * Move `in` by `event`, persisting the new state (with an event of the same
 * name). Returns false when the event is not valid in its state.
 */
static bool transition(struct instance *in, enum berth_state_event event,
                       const struct berth_exit *ex, bool answer_start)
{
	struct berthd_state_write w = {0};
	cleanup_free char *data_text = NULL;
	struct persisted *p;
	enum berth_state to;
	json_t *data;

	if (!berth_state_next(in->state, event, &to)) {
		berth_warn("instance %s/%s: %s is not valid when %s", in->class_name, in->name,
		           berth_state_event_name(event), berth_state_name(in->state));
		return false;
	}
	in->state = to;
	in->last_change_ms = berthd_now_ms();
	w.id = in->id;
	w.class_name = in->class_name;
	w.name = in->name;
	w.state = to;
	w.time_ms = in->last_change_ms;
	/* Events are named for what happened; both kinds of exit are "exited". */
	w.event_type = event == BERTH_EVENT_EXIT_CLEAN || event == BERTH_EVENT_EXIT_ERROR
	                       ? "exited"
	                       : berth_state_event_name(event);
	w.stop_reason = in->stop_reason;
	w.labels = in->labels_update;
	w.overrides = in->labels_update != NULL ? in->overrides_kept : NULL;
	data = json_pack("{s:s, s:s}", "name", in->name, "state", berth_state_name(to));
	if (ex != NULL && ex->unknown) {
		/* It ended while no berthd watched and left no word: say only that. */
		json_object_set_new(data, "exitUnknown", json_true());
		json_object_set_new(data, "oom", json_boolean(ex->oom));
		w.oom = ex->oom;
	} else if (ex != NULL) {
		in->has_exit = true;
		in->exit = *ex;
		w.has_exit_code = true;
		w.exit_code = ex->exit_code;
		w.exit_signal = ex->signal;
		w.oom = ex->oom;
		json_object_set_new(data, "exitCode", json_integer(ex->exit_code));
		if (ex->signal != 0)
			json_object_set_new(data, "signal", json_integer(ex->signal));
		json_object_set_new(data, "oom", json_boolean(ex->oom));
	}
	/* Why it stops (the stop event: "activity_expired", ...) and why it ended. */
	if (in->stop_reason != NULL && (event == BERTH_EVENT_STOP || !berth_state_is_active(to)))
		json_object_set_new(data, "reason", json_string(in->stop_reason));
	data_text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	w.event_data = data_text;
	p = xcalloc(1, sizeof(*p));
	p->in = in;
	p->answer_start = answer_start;
	in->busy++;
	berthd_persist_state(in->d, &w, on_durable, p);
	free(in->labels_update);
	free(in->overrides_kept);
	in->labels_update = in->overrides_kept = NULL;
	return true;
}

static void timer_stop(struct instance *in)
{
	uv_timer_stop(&in->timer);
	in->timer_use = TIMER_NONE;
}

static void on_sleep_expired(struct instance *in)
{
	berth_info("instance %s/%s: idle for %llu ms, stopping", in->class_name, in->name,
	           (unsigned long long)in->sleep_after_ms);
	begin_stop(in, SIGTERM, in->stop_grace_ms, "activity_expired");
}

static void on_timer(uv_timer_t *t);

/* sleepAfter counts from now, unless a request or socket is in flight. */
static void arm_sleep(struct instance *in)
{
	if (in->inflight > 0 || in->stop_requested || in->sleep_after_ms == 0)
		return;
	in->timer_use = TIMER_SLEEP;
	uv_timer_start(&in->timer, on_timer, in->sleep_after_ms, 0);
}

/*
 * The instance can take requests. Those who only want a lease on it (a
 * proxied request, a sandbox call) go on at once, in this loop iteration:
 * they report no state, and a request arriving a moment later would be
 * leased at once anyway (the state in memory is healthy). Waiting for the
 * registry's sync (about a millisecond) would only delay a cold request's
 * first byte. An API start, whose answer says the instance is healthy, is
 * answered once that is durable.
 */
static void became_ready(struct instance *in)
{
	struct berthd_start_result res = {.status = 0, .id = in->id};
	struct waiter **p = &in->start_waiters, *ready = NULL;

	BERTH_TRACE("berthd: ready");
	transition(in, BERTH_EVENT_READY, NULL, true);
	while (*p != NULL) {
		struct waiter *w = *p;
		if (!w->on_ready) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		w->next = ready;
		ready = w;
	}
	/* Taken off the list first: a callback may start or stop this instance. */
	answer_all(&ready, &res);
	arm_sleep(in);
}

/* ---- readiness ---- */

static void probe_next(struct instance *in);

/*
 * The wait before the next readiness attempt. A server is usually listening
 * within milliseconds of its exec, and the first attempt comes right after
 * the exec: retrying soon at first takes a cold start from ~300 ms to what
 * the server needs. Then the library's 300 ms.
 */
static uint64_t probe_delay(unsigned attempt)
{
	static const uint64_t ramp[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

	return attempt < BERTH_ARRAY_SIZE(ramp) ? ramp[attempt] : PROBE_INTERVAL;
}

static void on_probe(int result, void *arg)
{
	struct instance *in = arg;

	in->probe = NULL;
	BERTH_TRACE(result == 0 ? "berthd: probe answered" : "berthd: probe failed");
	if (in->ctr == NULL || in->state != BERTH_STATE_RUNNING)
		return;
	if (result == 0) {
		in->probe_attempt = 0;
		if (++in->probe_port < in->n_ports) {
			probe_next(in);
			return;
		}
		became_ready(in);
		return;
	}
	if (berthd_now_ms() >= in->ready_deadline_ms) {
		/*
		 * As the library, the container keeps running; the next start
		 * (or request) waits for its ports again.
		 */
		fail_waiters(in, 504, "port_not_ready",
		             "port %u of %s/%s did not answer within %llu ms (last: %s)",
		             in->ports[in->probe_port], in->class_name, in->name,
		             (unsigned long long)in->port_ready_timeout_ms, strerror(-result));
		housekeeping_after_start(in);
		arm_sleep(in);
		return;
	}
	in->timer_use = TIMER_PROBE;
	uv_timer_start(&in->timer, on_timer, probe_delay(in->probe_attempt++), 0);
}

static void probe_next(struct instance *in)
{
	int64_t left = in->ready_deadline_ms - berthd_now_ms();
	uint64_t timeout =
	        left < PROBE_TIMEOUT_MS ? (uint64_t)(left > 0 ? left : 1) : PROBE_TIMEOUT_MS;
	int r;

	BERTH_TRACE("berthd: probe");
	r = berthd_probe_start(in->d->loop, in->ctr, in->ports[in->probe_port], in->ping_endpoint,
	                       in->ready_min, in->ready_max, timeout, on_probe, in, &in->probe);

	if (r < 0)
		on_probe(r, in);
}

static void wait_for_ports(struct instance *in)
{
	if (!in->wait_for_ports || in->n_ports == 0) {
		/* Nothing to wait for: running is all a caller gets to see. */
		if (in->state == BERTH_STATE_RUNNING && in->n_ports == 0)
			became_ready(in);
		else {
			struct berthd_start_result res = {.status = 0, .id = in->id};
			answer_all(&in->start_waiters, &res);
			arm_sleep(in);
		}
		return;
	}
	timer_stop(in);
	in->probe_port = 0;
	in->probe_attempt = 0;
	in->ready_deadline_ms = berthd_now_ms() + (int64_t)in->port_ready_timeout_ms;
	probe_next(in);
}

/* ---- exit ---- */

struct reap_job {
	uv_work_t work;
	struct instance *in;
	struct berth_container *ctr;
	berth_error_t err;
	int result;
};

static void on_record_destroyed(int result, const char *why, void *arg)
{
	struct instance *in = arg;
	struct berthd_start_result res = {.status = result < 0 ? 500 : 0,
	                                  .code = result < 0 ? "registry" : NULL,
	                                  .message = why,
	                                  .id = in->id};

	answer_all(&in->destroy_waiters, &res);
	in->busy--;
	release_if_idle(in);
}

static void reap_work(uv_work_t *req)
{
	struct reap_job *j = req->data;
	/* The writable layer goes to the trash, for housekeeping() to remove. */
	j->result = berth_container_destroy_deferred(j->ctr, &j->err);
}

static void after_reap(uv_work_t *req, int status)
{
	struct reap_job *j = req->data;
	struct instance *in = j->in;

	(void)status;
	if (j->result < 0)
		berth_warn("instance %s/%s: clean up: %s", in->class_name, in->name,
		           j->err.message);
	free(j);
	housekeeping(in->d);
	if (in->destroy_requested) {
		/* Still busy: released once the reset record is durable. */
		berthd_persist_destroy(in->d, in->class_name, in->id, on_record_destroyed, in);
		return;
	}
	in->busy--;
	release_if_idle(in);
}

static void on_exit_poll_closed(uv_handle_t *h)
{
	struct instance *in = h->data;
	in->busy--;
	release_if_idle(in);
}

/* The container's init has ended (`ex`): record how, answer who waits, clean up. */
static void container_ended(struct instance *in, const struct berth_exit *exit)
{
	struct berth_exit ex = *exit;
	struct reap_job *j;
	enum berth_state_event ev;
	bool was_starting = in->state == BERTH_STATE_RUNNING;

	berthd_probe_cancel(in->probe);
	in->probe = NULL;
	timer_stop(in);

	ev = ex.exit_code == 0 && !ex.oom && !ex.unknown ? BERTH_EVENT_EXIT_CLEAN
	                                                 : BERTH_EVENT_EXIT_ERROR;
	if (ex.oom && in->stop_reason == NULL)
		in->stop_reason = xstrdup("oom");
	if (ex.unknown && in->stop_reason == NULL)
		in->stop_reason = xstrdup("lost");
	if (ex.unknown)
		berth_info("instance %s/%s: ended while berthd was away; how is unknown%s",
		           in->class_name, in->name, ex.oom ? " (out of memory)" : "");
	else
		berth_info("instance %s/%s: exited (%s %d%s)", in->class_name, in->name,
		           ex.signal != 0 ? "signal" : "code",
		           ex.signal != 0 ? ex.signal : ex.exit_code,
		           ex.oom ? ", out of memory" : "");
	transition(in, ev, &ex, false);
	if (was_starting && in->start_waiters != NULL)
		fail_waiters(
		        in, 500, "start_failed",
		        "failed to start container: it exited with %s %d before it was ready%s",
		        ex.signal != 0 ? "signal" : "code",
		        ex.signal != 0 ? ex.signal : ex.exit_code,
		        ex.oom ? " (out of memory)" : "");

	j = xcalloc(1, sizeof(*j));
	j->work.data = j;
	j->in = in;
	j->ctr = steal_pointer(&in->ctr);
	in->busy++;
	if (in->ctr_holds > 0) {
		in->deferred_reap = j;
		return;
	}
	uv_queue_work(in->d->loop, &j->work, reap_work, after_reap);
}

static void on_container_exit(uv_poll_t *h, int status, int events)
{
	struct instance *in = h->data;
	struct berth_exit ex;
	(void)status;
	(void)events;

	if (berth_container_wait(in->ctr, true, &ex, NULL) == -EAGAIN)
		return;
	uv_poll_stop(h);
	in->exit_poll_open = false;
	uv_close((uv_handle_t *)h, on_exit_poll_closed);
	container_ended(in, &ex);
}

/* The init's pidfd becomes readable when it ends. */
static void watch_exit(struct instance *in)
{
	int r;

	uv_poll_init(in->d->loop, &in->exit_poll, berth_container_pidfd(in->ctr));
	in->exit_poll.data = in;
	in->exit_poll_open = true;
	in->busy++; /* until the poll handle is closed */
	r = uv_poll_start(&in->exit_poll, UV_READABLE, on_container_exit);
	if (r < 0)
		berth_error_log("instance %s: watch for exit: %s", in->id, uv_strerror(r));
}

/* ---- start ---- */

struct start_job {
	uv_work_t work;
	struct instance *in;
	struct berth_container_spec spec;
	char **argv, **env;
	char *log_dir;
	char *image;     /* the class's image_path, resolved on the worker thread */
	char *labels;    /* the class's and the start's labels (JSON), for the image's below them */
	char *overrides; /* the start's options (JSON), written again with the labels */
	struct berthd_image_prep prep;
	/* The pull or import, if any, as events of this instance. */
	struct berthd_image_events *image_events;
	struct berth_container *ctr;
	berth_error_t err;
	int result;
};

static void start_work(uv_work_t *req)
{
	struct start_job *j = req->data;

	BERTH_TRACE("berthd: start on a worker");
	/* The container's output goes to its log, kept by its init (see runtime.h). */
	j->spec.stdio[0] = j->spec.stdio[1] = j->spec.stdio[2] = -1;
#ifdef BERTH_TRACE_ENABLED
	/*
	 * make TRACE=1: the helper's and the init's own steps go to berthd's
	 * stderr, beside berthd's. The entrypoint's output still goes to the log.
	 */
	if (j->spec.log_dir != NULL)
		j->spec.stdio[2] = STDERR_FILENO;
#endif
	/* The image: imported or pulled on first use, then its config applies. */
	j->result = berthd_image_prepare(j->spec.state_dir, j->image, j->argv, j->env,
	                                 &j->in->d->images_cancel, j->image_events, &j->spec,
	                                 &j->prep, &j->err);
	if (j->result == 0)
		j->result = berth_container_start(&j->spec, &j->ctr, &j->err);
}

/*
 * The image's Labels under the class's and the start's (`labels`, JSON), as
 * Docker merges them; NULL when the image has none (the record has them all).
 */
static char *image_labels(const struct berth_image *img, const char *labels)
{
	json_t *from_image = img != NULL ? json_object_get(img->config, "Labels") : NULL;
	json_t *merged, *over;
	const char *key;
	json_t *value;
	char *text;

	if (!json_is_object(from_image) || json_object_size(from_image) == 0)
		return NULL;
	merged = json_object();
	json_object_foreach (from_image, key, value)
		if (json_is_string(value))
			json_object_set(merged, key, value);
	over = labels != NULL ? json_loads(labels, 0, NULL) : NULL;
	json_object_update(merged, over);
	json_decref(over);
	text = json_dumps(merged, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(merged);
	return text;
}

static void after_start(uv_work_t *req, int status)
{
	struct start_job *j = req->data;
	struct instance *in = j->in;

	(void)status;
	BERTH_TRACE("berthd: after the start");
	in->busy--;
	in->starting = false;
	/* The image's events before the state's: it was fetched, then the start failed or ran. */
	berthd_image_events_end(j->image_events);
	if (j->result < 0) {
		bool exec = j->err.kind == BERTH_ERROR_KIND_EXEC;
		struct berth_exit ex = {.exit_code = j->err.code == ENOENT ? 127 : 126};

		berth_warn("instance %s/%s: failed to start: %s", in->class_name, in->name,
		           j->err.message);
		/* A command missing from the image is an exit (127), as a shell says. */
		transition(in, exec ? BERTH_EVENT_EXIT_ERROR : BERTH_EVENT_START_FAILED,
		           exec ? &ex : NULL, false);
		fail_waiters(in, 500, "start_failed", "failed to start container: %s",
		             j->err.message);
		goto out;
	}
	in->ctr = j->ctr;
	if (j->spec.net == BERTH_NET_BRIDGE)
		in->d->instances->bridged = true;
	in->labels_update = image_labels(j->prep.img, j->labels);
	if (in->labels_update != NULL)
		in->overrides_kept = steal_pointer(&j->overrides);
	if (in->n_ports == 0 && j->prep.port != 0) {
		/* A single ExposedPorts entry serves as defaultPort when nothing else says. */
		in->n_ports = 1;
		in->ports = xmalloc(sizeof(uint16_t));
		in->ports[0] = j->prep.port;
	}
	watch_exit(in);
	berth_info("instance %s/%s: started (pid %d)", in->class_name, in->name,
	           (int)berth_container_pid(in->ctr));
	in->housekeeping_deferred = true;
	if (in->detached) {
		/* berthd is leaving it running; detach() below. */
	} else if (in->stop_requested) {
		/* A stop or destroy came while the container was being made. */
		int sig = in->stop_signal;
		in->stop_requested = false;
		begin_stop(in, sig, in->stop_grace_ms, in->stop_reason);
	} else {
		wait_for_ports(in);
	}
	/* Unless it still waits for its ports, its callers have their answer. */
	if (in->state != BERTH_STATE_RUNNING || in->start_waiters == NULL)
		housekeeping_after_start(in);
out:
	berthd_image_prep_free(&j->prep);
	free(j->image);
	free(j->labels);
	free(j->overrides);
	berth_strv_free(j->argv);
	berth_strv_free(j->env);
	free((char *)j->spec.hostname);
	free(j->log_dir);
	free(j);
	if (in->detached)
		detach(in);
	release_if_idle(in);
}

/* KEY=VALUE entries of `base`, then those of `over` (an object), the later winning. */
static char **merge_env(char *const *base, json_t *over, char **extra)
{
	size_t cap = berth_strv_len(base) + json_object_size(over) + berth_strv_len(extra) + 1;
	char **out = xcalloc(cap, sizeof(char *));
	size_t n = 0;
	const char *key;
	json_t *value;

	for (size_t i = 0; base != NULL && base[i] != NULL; i++)
		out[n++] = xstrdup(base[i]);
	json_object_foreach (over, key, value) {
		size_t klen = strlen(key);
		for (size_t i = 0; i < n; i++) {
			if (strncmp(out[i], key, klen) == 0 && out[i][klen] == '=') {
				free(out[i]);
				out[i] = out[--n];
				break;
			}
		}
		out[n++] = xasprintf("%s=%s", key, json_string_value(value));
	}
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		out[n++] = extra[i];
	free(extra);
	return out;
}

static char *hostname_for(const struct instance *in)
{
	size_t n = strlen(in->name);
	bool ok = n > 0 && n <= 63 && in->name[0] != '-';

	for (size_t i = 0; ok && i < n; i++) {
		char c = in->name[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-';
	}
	return ok ? xstrdup(in->name) : xstrndup(in->id, 12);
}

static struct instance *instance_alloc(struct berthd *d, const char *class_name, const char *name,
                                       const char *id)
{
	struct instance *in = xcalloc(1, sizeof(*in));
	size_t b;

	in->d = d;
	snprintf(in->id, sizeof(in->id), "%s", id);
	in->class_name = xstrdup(class_name);
	in->name = xstrdup(name);
	in->state = BERTH_STATE_STOPPED;
	uv_timer_init(d->loop, &in->timer);
	in->timer.data = in;
	b = bucket_of(in->id);
	in->next = d->instances->buckets[b];
	d->instances->buckets[b] = in;
	d->instances->count++;
	return in;
}

static struct instance *instance_new(struct berthd *d, const struct berth_config_class *cls,
                                     const char *name)
{
	char id[BERTH_ID_LEN + 1];

	berth_id_from_name(cls->class_name, name, id);
	return instance_alloc(d, cls->class_name, name, id);
}

/* The class's settings that a container keeps for its life. */
static void take_class_settings(struct instance *in, const struct berth_config_class *cls,
                                const struct berthd_start_options *opts)
{
	in->sleep_after_ms = cls->sleep_after_ms;
	in->stop_grace_ms = cls->stop_grace_ms;
	in->port_ready_timeout_ms = cls->port_ready_timeout_ms;
	in->ping_endpoint = xstrdup(cls->ping_endpoint);
	in->ready_min = cls->ready_status_min;
	in->ready_max = cls->ready_status_max;
	in->limits = cls->instance_type.limits;
	in->wait_for_ports = opts == NULL || opts->wait_for_ports;
	if (opts != NULL && opts->ports != NULL) {
		in->n_ports = opts->n_ports;
		in->ports = xmalloc(in->n_ports * sizeof(uint16_t));
		memcpy(in->ports, opts->ports, in->n_ports * sizeof(uint16_t));
	} else if (cls->n_required_ports > 0) {
		in->n_ports = cls->n_required_ports;
		in->ports = xmalloc(in->n_ports * sizeof(uint16_t));
		memcpy(in->ports, cls->required_ports, in->n_ports * sizeof(uint16_t));
	} else if (cls->default_port > 0) {
		in->n_ports = 1;
		in->ports = xmalloc(sizeof(uint16_t));
		in->ports[0] = cls->default_port;
	}
}

static void options_free(struct berthd_start_options *o)
{
	json_decref(o->env_vars);
	json_decref(o->entrypoint);
	json_decref(o->labels);
	free(o->ports);
}

static void on_released(uv_handle_t *h)
{
	struct instance *in = h->data;
	struct berthd *d = in->d;
	struct pending_start *p = in->pending;

	/* The previous container is gone: the starts that waited for that go now. */
	while (p != NULL) {
		struct pending_start *next = p->next;
		const struct berth_config_class *cls =
		        berth_config_find_class(d->config, p->class_name);

		if (d->stopping)
			start_answer(p->cb, p->arg, 503, "shutting_down", "berthd is shutting down",
			             in->id);
		else if (cls == NULL)
			start_answer(p->cb, p->arg, 404, "class_not_found",
			             "the container class is no longer configured", in->id);
		else
			start_instance(d, cls, p->name, &p->opts, p->cb, p->arg, p->on_ready);
		options_free(&p->opts);
		free(p->class_name);
		free(p->name);
		free(p);
		p = next;
	}
	if (in->activity_dirty) {
		struct berthd_instances *is = d->instances;
		struct berth_registry_activity *a;

		is->released_activity =
		        xrealloc(is->released_activity,
		                 (is->n_released_activity + 1) * sizeof(*is->released_activity));
		a = &is->released_activity[is->n_released_activity++];
		memcpy(a->id, in->id, sizeof(a->id));
		a->last_activity_ms = in->last_activity_ms;
	}
	free(in->class_name);
	free(in->name);
	free(in->ping_endpoint);
	free(in->ports);
	free(in->stop_reason);
	free(in->labels_update);
	free(in->overrides_kept);
	free(in);
	d->instances->releasing--;
	if (d->instances->count == 0 && d->instances->releasing == 0 &&
	    d->instances->shutdown_done != NULL) {
		void (*done)(struct berthd *) = d->instances->shutdown_done;
		d->instances->shutdown_done = NULL;
		flush_activity(d);
		uv_close((uv_handle_t *)&d->instances->activity_timer, NULL);
		done(d);
	}
}

/* An instance with no container, nobody waiting and no job in flight leaves memory. */
static void release_if_idle(struct instance *in)
{
	if (in->released || in->busy > 0 || in->ctr != NULL || in->starting || in->exit_poll_open ||
	    in->start_waiters != NULL || (berth_state_is_active(in->state) && !in->detached))
		return;
	in->released = true;
	unlink_instance(in);
	in->d->instances->releasing++;
	uv_close((uv_handle_t *)&in->timer, on_released);
}

/*
 * An instance whose container has ended and is only being cleaned up (its
 * writable layer, cgroup and, bridged, its veth: tens of milliseconds) holds
 * no more memory or CPU, and its state already says stopped.
 */
static bool cleaning_up(const struct instance *in)
{
	return in->ctr == NULL && !in->starting && !berth_state_is_active(in->state);
}

/* Host-wide limits (berth.limits) over every active instance. */
static bool within_host_limits(struct berthd *d, const struct berth_limits *want, char *why,
                               size_t len)
{
	const struct berth_config_daemon *b = &d->config->berth;
	uint64_t mem = want->memory_bytes, cpu = want->nanocpus;

	for (size_t i = 0; i < BUCKETS; i++) {
		for (struct instance *in = d->instances->buckets[i]; in != NULL; in = in->next) {
			if (cleaning_up(in))
				continue;
			mem += in->limits.memory_bytes;
			cpu += in->limits.nanocpus;
		}
	}
	if (b->limits_memory_bytes > 0 && mem > b->limits_memory_bytes) {
		snprintf(why, len, "the host's memory limit (%llu MiB) is reached",
		         (unsigned long long)(b->limits_memory_bytes >> 20));
		return false;
	}
	if (b->limits_nanocpus > 0 && cpu > b->limits_nanocpus) {
		snprintf(why, len, "the host's vCPU limit (%.2f) is reached",
		         (double)b->limits_nanocpus / 1e9);
		return false;
	}
	return true;
}

static size_t active_of_class(struct berthd *d, const char *class_name)
{
	size_t n = 0;

	for (size_t i = 0; i < BUCKETS; i++)
		for (struct instance *in = d->instances->buckets[i]; in != NULL; in = in->next)
			if (!in->released && !cleaning_up(in) &&
			    strcmp(in->class_name, class_name) == 0)
				n++;
	return n;
}

static void queue_start(struct instance *in, const struct berth_config_class *cls, const char *name,
                        const struct berthd_start_options *opts, berthd_start_cb cb, void *arg,
                        bool on_ready)
{
	struct pending_start *p = xcalloc(1, sizeof(*p));

	p->class_name = xstrdup(cls->class_name);
	p->name = xstrdup(name);
	p->opts.enable_internet = -1;
	p->opts.wait_for_ports = true;
	if (opts != NULL) {
		p->opts = *opts;
		json_incref(opts->env_vars);
		json_incref(opts->entrypoint);
		json_incref(opts->labels);
		if (opts->ports != NULL) {
			p->opts.ports = xmalloc(opts->n_ports * sizeof(uint16_t));
			memcpy(p->opts.ports, opts->ports, opts->n_ports * sizeof(uint16_t));
		}
	}
	p->cb = cb;
	p->arg = arg;
	p->on_ready = on_ready;
	p->next = in->pending;
	in->pending = p;
}

static void start_answer(berthd_start_cb cb, void *arg, int status, const char *code,
                         const char *message, const char *id)
{
	struct berthd_start_result res = {
	        .status = status, .code = code, .message = message, .id = id};
	cb(&res, arg);
}

static char *overrides_json(const struct berthd_start_options *o)
{
	json_t *j = json_object();
	char *text;

	if (o != NULL && o->env_vars != NULL)
		json_object_set(j, "envVars", o->env_vars);
	if (o != NULL && o->entrypoint != NULL)
		json_object_set(j, "entrypoint", o->entrypoint);
	if (o != NULL && o->enable_internet >= 0)
		json_object_set_new(j, "enableInternet", json_boolean(o->enable_internet));
	text = json_object_size(j) > 0 ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	return text;
}

static char *labels_json(const struct berth_config_class *cls, json_t *extra)
{
	json_t *j = json_object();
	const char *key;
	json_t *value;
	char *text;

	for (size_t i = 0; cls->labels != NULL && cls->labels[i] != NULL; i++) {
		const char *eq = strchr(cls->labels[i], '=');
		cleanup_free char *k = xstrndup(cls->labels[i], (size_t)(eq - cls->labels[i]));
		json_object_set_new(j, k, json_string(eq + 1));
	}
	json_object_foreach (extra, key, value)
		json_object_set(j, key, value);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return text;
}

/* on_ready: answered once ready rather than once that is durable (see became_ready()). */
static void start_instance(struct berthd *d, const struct berth_config_class *cls, const char *name,
                           const struct berthd_start_options *opts, berthd_start_cb cb, void *arg,
                           bool on_ready)
{
	char id[BERTH_ID_LEN + 1];
	struct instance *in;
	struct start_job *j;
	char why[256];
	char **cf_env;
	cleanup_free char *overrides = NULL;
	cleanup_free char *labels = NULL;
	cleanup_free char *start_text = NULL;
	struct berthd_state_write w = {0};
	json_t *start_data;

	berth_id_from_name(cls->class_name, name, id);
	in = find(d, id);
	if (in != NULL && !in->released) {
		if (in->state == BERTH_STATE_HEALTHY ||
		    (in->state == BERTH_STATE_RUNNING && in->ctr != NULL && opts != NULL &&
		     !opts->wait_for_ports)) {
			start_answer(cb, arg, 0, NULL, NULL, in->id);
			return;
		}
		if (in->state == BERTH_STATE_STOPPING || in->destroy_requested ||
		    !berth_state_is_active(in->state)) {
			/* The last container is on its way out; start afresh once it is gone. */
			queue_start(in, cls, name, opts, cb, arg, on_ready);
			return;
		}
		/* Coalesce: everyone waits for the same container. */
		add_waiter(&in->start_waiters, cb, arg, on_ready);
		if (in->state == BERTH_STATE_RUNNING && in->ctr != NULL && in->probe == NULL &&
		    in->timer_use != TIMER_PROBE)
			wait_for_ports(in); /* it ran but was not ready in time: look again */
		return;
	}
	if (cls->max_instances > 0 && active_of_class(d, cls->class_name) >= cls->max_instances) {
		char msg[256];
		snprintf(msg, sizeof(msg),
		         "there is no container instance available: class `%s` has its maximum of "
		         "%llu running",
		         cls->class_name, (unsigned long long)cls->max_instances);
		start_answer(cb, arg, 503, "max_instances", msg, id);
		return;
	}
	if (!within_host_limits(d, &cls->instance_type.limits, why, sizeof(why))) {
		start_answer(cb, arg, 503, "host_limits", why, id);
		return;
	}

	in = instance_new(d, cls, name);
	take_class_settings(in, cls, opts);
	touch(in);
	add_waiter(&in->start_waiters, cb, arg, on_ready);

	/* running: as the library, from the moment a start begins */
	in->starting = true;
	in->state = BERTH_STATE_RUNNING;
	in->last_change_ms = berthd_now_ms();
	overrides = overrides_json(opts);
	labels = labels_json(cls, opts != NULL ? opts->labels : NULL);
	w.id = in->id;
	w.class_name = in->class_name;
	w.name = in->name;
	w.state = BERTH_STATE_RUNNING;
	w.time_ms = in->last_change_ms;
	w.event_type = "start";
	start_data = json_pack("{s:s, s:s}", "name", in->name, "state", "running");
	start_text = json_dumps(start_data, JSON_COMPACT);
	json_decref(start_data);
	w.event_data = start_text;
	w.overrides = overrides;
	w.labels = labels;
	berthd_persist_state(d, &w, NULL, NULL);

	/* What Cloudflare's runtime sets, with local values. */
	cf_env = xcalloc(7, sizeof(char *));
	cf_env[0] = xasprintf("CLOUDFLARE_DURABLE_OBJECT_ID=%s", in->id);
	cf_env[1] = xasprintf("CLOUDFLARE_APPLICATION_ID=%s",
	                      cls->name != NULL ? cls->name : cls->class_name);
	cf_env[2] = xstrdup("CLOUDFLARE_LOCATION=local");
	cf_env[3] = xstrdup("CLOUDFLARE_REGION=local");
	cf_env[4] = xstrdup("CLOUDFLARE_COUNTRY_A2=XX");
	cf_env[5] = xasprintf("CLOUDFLARE_DEPLOYMENT_ID=local-%.12s", in->id);

	j = xcalloc(1, sizeof(*j));
	j->work.data = j;
	j->in = in;
	j->argv = cls->entrypoint != NULL ? berth_strv_dup(cls->entrypoint) : NULL;
	if (opts != NULL && opts->entrypoint != NULL) {
		size_t i, n = json_array_size(opts->entrypoint);
		json_t *v;
		berth_strv_free(j->argv);
		j->argv = xcalloc(n + 1, sizeof(char *));
		json_array_foreach (opts->entrypoint, i, v)
			j->argv[i] = xstrdup(json_string_value(v));
	}
	j->env = merge_env(cls->env, opts != NULL ? opts->env_vars : NULL, cf_env);
	j->log_dir = xasprintf("%s/logs/%s", d->config->berth.state_dir, in->id);
	j->spec.log_dir = j->log_dir;
	j->spec.log_max_bytes = d->config->berth.log_max_bytes;
	j->spec.log_max_files = d->config->berth.log_max_files;
	j->spec.id = in->id;
	j->image = xstrdup(cls->image_path);
	j->image_events =
	        berthd_image_events_new(d, cls->class_name, in->id, in->name, cls->image_path);
	j->labels = labels != NULL ? xstrdup(labels) : NULL;
	j->overrides = overrides != NULL ? xstrdup(overrides) : NULL;
	j->spec.state_dir = d->config->berth.state_dir;
	j->spec.argv = j->argv;
	j->spec.env = j->env;
	j->spec.hostname = hostname_for(in);
	j->spec.limits = cls->instance_type.limits;
	/* enableInternet: a veth on the host's bridge with NAT; else loopback only. */
	j->spec.net = (opts != NULL && opts->enable_internet >= 0 ? opts->enable_internet
	                                                          : cls->enable_internet)
	                      ? BERTH_NET_BRIDGE
	                      : BERTH_NET_LOOPBACK;
	/* Containers outlive a berthd restart (live restore). */
	j->spec.die_with_parent = false;
	in->busy++;
	BERTH_TRACE("berthd: start queued");
	uv_queue_work(d->loop, &j->work, start_work, after_start);
}

void berthd_instance_start(struct berthd *d, const struct berth_config_class *cls, const char *name,
                           const struct berthd_start_options *opts, berthd_start_cb cb, void *arg)
{
	start_instance(d, cls, name, opts, cb, arg, false);
}

/* ---- stop, destroy, renew ---- */

static void begin_stop(struct instance *in, int signal, uint64_t grace_ms, const char *reason)
{
	berth_error_t err;

	if (reason != NULL && in->stop_reason == NULL)
		in->stop_reason = xstrdup(reason);
	if (in->ctr == NULL) {
		/* Being started: the stop follows as soon as it is. */
		in->stop_requested = true;
		in->stop_signal = signal;
		in->stop_grace_ms = grace_ms;
		return;
	}
	berthd_probe_cancel(in->probe);
	in->probe = NULL;
	if (in->state != BERTH_STATE_STOPPING) {
		if (in->start_waiters != NULL)
			fail_waiters(
			        in, 500, "start_failed",
			        "failed to start container: it was stopped before it was ready");
		transition(in, BERTH_EVENT_STOP, NULL, false);
	}
	if (berth_container_signal(in->ctr, signal, &err) < 0)
		berth_warn("instance %s: %s", in->id, err.message);
	timer_stop(in);
	if (signal != SIGKILL) {
		in->timer_use = TIMER_GRACE;
		uv_timer_start(&in->timer, on_timer, grace_ms, 0);
	}
}

static void on_timer(uv_timer_t *t)
{
	struct instance *in = t->data;
	enum timer_use use = in->timer_use;

	in->timer_use = TIMER_NONE;
	switch (use) {
	case TIMER_PROBE:
		if (in->ctr != NULL && in->state == BERTH_STATE_RUNNING)
			probe_next(in);
		break;
	case TIMER_SLEEP:
		on_sleep_expired(in);
		break;
	case TIMER_GRACE:
		if (in->ctr != NULL) {
			berth_info("instance %s/%s: still running after the grace period; SIGKILL",
			           in->class_name, in->name);
			berth_container_signal(in->ctr, SIGKILL, NULL);
		}
		break;
	case TIMER_NONE:
		break;
	}
}

bool berthd_instance_stop(struct berthd *d, const char *id, int signal, uint64_t grace_ms,
                          const char *reason)
{
	struct instance *in = find(d, id);

	if (in == NULL || in->released || !berth_state_is_active(in->state))
		return false;
	begin_stop(in, signal, grace_ms, reason);
	return true;
}

static void on_destroyed(int result, const char *why, void *arg)
{
	struct waiter *w = arg;
	struct berthd_start_result res = {.status = result < 0 ? 500 : 0,
	                                  .code = result < 0 ? "registry" : NULL,
	                                  .message = why};
	w->cb(&res, w->arg);
	free(w);
}

void berthd_instance_destroy(struct berthd *d, const char *class_name, const char *id,
                             berthd_start_cb cb, void *arg)
{
	struct instance *in = find(d, id);

	/*
	 * No container (never ran, or it has exited and is being cleaned up):
	 * only the record is reset; the running cleanup removes the rest.
	 */
	if (in == NULL || in->released ||
	    (!berth_state_is_active(in->state) && in->ctr == NULL && !in->starting)) {
		struct waiter *w = xcalloc(1, sizeof(*w));
		w->cb = cb;
		w->arg = arg;
		/*
		 * While the cleanup runs (a bridged container's takes tens of ms),
		 * readers see this instance's state from memory: it must say what
		 * the reset record will.
		 */
		if (in != NULL && !in->released) {
			in->state = BERTH_STATE_STOPPED;
			in->last_change_ms = berthd_now_ms();
		}
		berthd_persist_destroy(d, class_name, id, on_destroyed, w);
		return;
	}
	in->destroy_requested = true;
	add_waiter(&in->destroy_waiters, cb, arg, false);
	begin_stop(in, SIGKILL, 0, "destroyed");
}

bool berthd_instance_renew(struct berthd *d, const char *id)
{
	struct instance *in = find(d, id);

	if (in == NULL || in->released || !berth_state_is_active(in->state))
		return false;
	touch(in);
	/* A pending sleep starts counting again; other timers are not sleepAfter's. */
	if (in->timer_use == TIMER_SLEEP)
		arm_sleep(in);
	return true;
}

bool berthd_instance_active_state(struct berthd *d, const char *id, enum berth_state *state,
                                  int64_t *last_change_ms)
{
	struct instance *in = find(d, id);

	if (in == NULL || in->released)
		return false;
	*state = in->state;
	*last_change_ms = in->last_change_ms;
	return true;
}

void berthd_instance_overlay(struct berthd *d, struct berth_registry_instance *r)
{
	struct instance *in = find(d, r->id);

	if (in == NULL || in->released)
		return;
	r->state = in->state;
	r->last_change_ms = in->last_change_ms;
	if (in->has_exit) {
		r->has_exit_code = true;
		r->exit_code = in->exit.exit_code;
		r->exit_signal = in->exit.signal;
		r->oom = in->exit.oom;
	}
	/* Written with every state, so the registry's is this one once durable. */
	free(r->stop_reason);
	r->stop_reason = in->stop_reason != NULL ? xstrdup(in->stop_reason) : NULL;
}

/*
 * Let go of a running container for the next berthd to adopt: its record
 * keeps saying it runs, its init keeps its log, and nobody here watches it.
 */
static void detach(struct instance *in)
{
	in->detached = true;
	if (in->starting)
		return; /* after_start() comes back here */
	berthd_probe_cancel(in->probe);
	in->probe = NULL;
	timer_stop(in);
	if (in->start_waiters != NULL)
		fail_waiters(in, 503, "shutting_down", "berthd is shutting down");
	if (in->exit_poll_open) {
		uv_poll_stop(&in->exit_poll);
		in->exit_poll_open = false;
		uv_close((uv_handle_t *)&in->exit_poll, on_exit_poll_closed);
	}
	if (in->ctr != NULL && in->ctr_holds > 0)
		in->deferred_release = steal_pointer(&in->ctr);
	else if (in->ctr != NULL) {
		berth_container_release(in->ctr);
		in->ctr = NULL;
	}
	release_if_idle(in);
}

void berthd_instances_shutdown(struct berthd *d, bool live_restore, void (*done)(struct berthd *d))
{
	/* The prepared bridged slots go (the loop runs until that job is done). */
	housekeeping(d);
	if (d->instances->count == 0 && d->instances->releasing == 0) {
		flush_activity(d);
		uv_close((uv_handle_t *)&d->instances->activity_timer, NULL);
		done(d);
		return;
	}
	d->instances->shutdown_done = done;
	for (size_t i = 0; i < BUCKETS; i++) {
		struct instance *in = d->instances->buckets[i];
		while (in != NULL) {
			/* detach() may unlink `in` from its chain. */
			struct instance *next = in->next;

			if (in->released)
				;
			else if (live_restore && in->ctr != NULL && !in->destroy_requested &&
			         berth_state_is_active(in->state) &&
			         in->state != BERTH_STATE_STOPPING)
				detach(in);
			else if (live_restore && in->starting)
				detach(in);
			else
				begin_stop(in, SIGTERM, in->stop_grace_ms, "daemon_shutdown");
			in = next;
		}
	}
}

/* ---- leases ---- */

struct berthd_lease {
	struct instance *in;
	struct berth_container *ctr; /* held: see berthd_lease_container() */
};

struct acquire {
	struct berthd *d;
	berthd_lease_cb cb;
	void *arg;
};

static struct berthd_lease *lease_new(struct instance *in)
{
	struct berthd_lease *l = xcalloc(1, sizeof(*l));

	l->in = in;
	in->busy++;
	in->inflight++;
	touch(in);
	/* Never asleep while something is in flight. */
	if (in->timer_use == TIMER_SLEEP)
		timer_stop(in);
	return l;
}

static void on_acquire_started(const struct berthd_start_result *res, void *arg)
{
	struct acquire *a = arg;
	struct instance *in;

	in = res->status == 0 && res->id != NULL ? find(a->d, res->id) : NULL;
	if (res->status != 0 || in == NULL || in->released || in->ctr == NULL) {
		struct berthd_start_result gone = {
		        .status = 500,
		        .code = "start_failed",
		        .message = "failed to start container: it exited right after it was ready",
		        .id = res->id};
		a->cb(res->status != 0 ? res : &gone, NULL, a->arg);
		free(a);
		return;
	}
	a->cb(res, lease_new(in), a->arg);
	free(a);
}

void berthd_instance_acquire(struct berthd *d, const struct berth_config_class *cls,
                             const char *name, berthd_lease_cb cb, void *arg)
{
	char id[BERTH_ID_LEN + 1];
	struct instance *in;
	struct acquire *a;

	/* The hot path (every proxied request): a healthy instance is leased at once. */
	berth_id_from_name(cls->class_name, name, id);
	in = find(d, id);
	if (in != NULL && !in->released && in->state == BERTH_STATE_HEALTHY && in->ctr != NULL) {
		struct berthd_start_result res = {.status = 0, .id = in->id};
		cb(&res, lease_new(in), arg);
		return;
	}
	a = xmalloc(sizeof(*a));
	a->d = d;
	a->cb = cb;
	a->arg = arg;
	start_instance(d, cls, name, NULL, on_acquire_started, a, true);
}

int berthd_lease_connect(struct berthd_lease *l, uint16_t port, berth_error_t *err)
{
	if (l->in->ctr == NULL)
		return berth_error_set_plain(err, ESRCH, "instance %s/%s is not running",
		                             l->in->class_name, l->in->name);
	return berth_container_connect(l->in->ctr, port, err);
}

void berthd_lease_touch(struct berthd_lease *l)
{
	touch(l->in);
}

const char *berthd_lease_id(const struct berthd_lease *l)
{
	return l->in->id;
}

bool berthd_lease_alive(const struct berthd_lease *l)
{
	return l->in->ctr != NULL && l->in->state != BERTH_STATE_STOPPING &&
	       berth_state_is_active(l->in->state);
}

struct berth_container *berthd_lease_container(struct berthd_lease *l)
{
	if (l->ctr == NULL && l->in->ctr != NULL) {
		l->ctr = l->in->ctr;
		l->in->ctr_holds++;
	}
	return l->ctr;
}

/* The last holder of an ended (or detached) container lets its clean-up go on. */
static void drop_ctr_hold(struct instance *in)
{
	if (--in->ctr_holds > 0)
		return;
	if (in->deferred_reap != NULL) {
		struct reap_job *j = steal_pointer(&in->deferred_reap);
		uv_queue_work(in->d->loop, &j->work, reap_work, after_reap);
	}
	if (in->deferred_release != NULL)
		berth_container_release(steal_pointer(&in->deferred_release));
}

void berthd_lease_release(struct berthd_lease *l)
{
	struct instance *in = l->in;

	if (l->ctr != NULL)
		drop_ctr_hold(in);
	free(l);
	in->busy--;
	in->inflight--;
	touch(in);
	/* The last one out starts sleepAfter. */
	if (in->inflight == 0 && in->state == BERTH_STATE_HEALTHY && in->timer_use == TIMER_NONE)
		arm_sleep(in);
	release_if_idle(in);
}

unsigned berthd_instance_inflight(struct berthd *d, const char *id)
{
	struct instance *in = find(d, id);
	return in != NULL && !in->released ? in->inflight : 0;
}

/* ---- live restore ---- */

static void restore_one(struct berth_registry_instance *rec, struct berthd *d)
{
	const struct berth_config_class *cls = berth_config_find_class(d->config, rec->class_name);
	struct berth_container *ctr;
	struct instance *in;
	berth_error_t err;

	in = instance_alloc(d, rec->class_name, rec->name != NULL ? rec->name : rec->id, rec->id);
	in->state = rec->state;
	in->last_change_ms = rec->last_change_ms;
	if (rec->state == BERTH_STATE_STOPPING)
		in->stop_reason = steal_pointer(&rec->stop_reason);
	if (cls != NULL)
		take_class_settings(in, cls, NULL);
	else
		in->stop_grace_ms = 10000;

	/* A few file reads and a pidfd: cheap enough to do before the API opens. */
	if (berth_container_adopt(d->config->berth.state_dir, in->id, &ctr, &err) < 0) {
		/* No trace of the container: it ended with the host, or was removed by hand. */
		struct berth_exit ex = {.exit_code = 255, .unknown = true};

		berth_info("instance %s/%s: its container is gone (%s)", in->class_name, in->name,
		           err.message);
		if (in->stop_reason == NULL)
			in->stop_reason = xstrdup("lost");
		transition(in, BERTH_EVENT_EXIT_ERROR, &ex, false);
		release_if_idle(in);
		return;
	}
	in->ctr = ctr;
	if (berth_container_exit(ctr) != NULL) {
		/* It ended while no berthd watched: recorded as any exit, then cleaned up. */
		container_ended(in, berth_container_exit(ctr));
		return;
	}
	watch_exit(in);
	berth_info("instance %s/%s: adopted its running container (pid %d)", in->class_name,
	           in->name, (int)berth_container_pid(ctr));
	if (cls == NULL) {
		berth_warn("instance %s/%s: class `%s` is no longer configured; stopping it",
		           in->class_name, in->name, in->class_name);
		begin_stop(in, SIGTERM, in->stop_grace_ms, "class_removed");
	} else if (in->state == BERTH_STATE_STOPPING) {
		/* The stop that was under way goes on, with a fresh grace period. */
		begin_stop(in, SIGTERM, in->stop_grace_ms, NULL);
	} else if (in->state == BERTH_STATE_RUNNING) {
		wait_for_ports(in);
	} else {
		/* healthy: sleepAfter counts from now */
		arm_sleep(in);
	}
}

int berthd_instances_restore(struct berthd *d, berth_error_t *err)
{
	struct berth_registry_filter f = {
	        .states = BERTH_STATE_BIT(BERTH_STATE_RUNNING) |
	                  BERTH_STATE_BIT(BERTH_STATE_HEALTHY) |
	                  BERTH_STATE_BIT(BERTH_STATE_STOPPING),
	};

	struct berth_registry_instance *recs = NULL;
	size_t n = 0;
	int r;

	/* Listed first: restoring writes to the registry (from the thread pool). */
	r = berth_registry_list(d->registry, &f, &recs, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		restore_one(&recs[i], d);
	berth_registry_instances_free(recs, n);
	/* Ready for the first cold start. */
	housekeeping(d);
	return 0;
}
