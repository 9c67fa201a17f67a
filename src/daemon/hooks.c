/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lifecycle webhooks (see hooks.h). libcurl's multi interface is driven by
 * the loop: curl tells which sockets to watch (CURLMOPT_SOCKETFUNCTION, a
 * uv_poll_t each) and when to call it back (CURLMOPT_TIMERFUNCTION, one
 * uv_timer_t); nothing here blocks or polls.
 *
 * A delivery is one POST of one hook for one event. Deliveries wait in one
 * queue, oldest first, bounded at QUEUE_MAX (beyond that the oldest goes,
 * with a warning); at most ACTIVE_MAX run at once, each attempt bounded by
 * ATTEMPT_TIMEOUT_MS. Connection errors, timeouts, 5xx and 429 are retried
 * after 1, 2, 4, 8 s (or a longer Retry-After, capped), ATTEMPTS in all;
 * anything else, and the last failure, is final and logged. Deliveries are
 * independent of each other: a receiver orders them by X-Berth-Event-Id.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <nettle/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/log.h"
#include "berth/util.h"
#include "berth/version.h"
#include "daemon/daemon.h"
#include "daemon/hooks.h"

#define QUEUE_MAX          1000  /* deliveries waiting or running */
#define ACTIVE_MAX         8     /* transfers at once */
#define ATTEMPTS           5     /* the first and four retries */
#define BACKOFF_FIRST_MS   1000  /* then doubled: 1, 2, 4, 8 s */
#define RETRY_AFTER_MAX_MS 60000 /* a receiver's Retry-After, at most */
#define ATTEMPT_TIMEOUT_MS 10000
#define SHUTDOWN_GRACE_MS  2000

struct delivery {
	struct berthd_hooks *h;
	const char *hook; /* "onStop", ... (static) */
	char *url;
	char *body;
	char *what; /* "onStop of Class/name (event 12)", for the log */
	int64_t seq;
	unsigned attempts; /* made so far */
	uint64_t due_ms;   /* uv_now() from which the next attempt may start */
	CURL *easy;        /* while an attempt runs */
	struct curl_slist *headers;
	char error[CURL_ERROR_SIZE];
	struct delivery *prev, *next; /* the queue, oldest first */
};

/* A socket curl wants watched. */
struct watch {
	uv_poll_t poll;
	curl_socket_t fd;
	struct berthd_hooks *h;
	struct watch *prev, *next;
};

struct berthd_hooks {
	struct berthd *d;
	CURLM *multi;           /* made with the first delivery (curl_ready()) */
	bool curl_failed;       /* ... which failed: said once, every delivery fails */
	uv_timer_t curl_timer;  /* when curl wants to be called back */
	uv_timer_t retry_timer; /* the earliest waiting delivery falls due */
	uv_timer_t grace_timer; /* shutdown's bound */
	struct delivery *head, *tail;
	size_t queued, active;
	struct watch *watches;
	unsigned open_handles; /* the module is freed when the last one closes */
	bool shutting_down;    /* failures are final; new deliveries get one attempt */
	bool closing;          /* everything is being torn down */
	char user_agent[64];
};

static void pump(struct berthd_hooks *h);
static void close_all(struct berthd_hooks *h);

/* ---- which hooks an event fires ---- */

/* Stop reasons that mean berth (or its user) asked for the end. */
static const char *const requested_reasons[] = {
        "stop_requested",
        "activity_expired",
        "daemon_shutdown",
        "destroyed",
};

static bool requested(const char *reason)
{
	if (reason == NULL)
		return false;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(requested_reasons); i++)
		if (strcmp(reason, requested_reasons[i]) == 0)
			return true;
	return false;
}

void berthd_hooks_signature(const char *secret, const char *body,
                            char out[BERTHD_HOOKS_SIGNATURE_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	struct hmac_sha256_ctx ctx;
	uint8_t mac[SHA256_DIGEST_SIZE];
	char *o = out;

	hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
	hmac_sha256_update(&ctx, strlen(body), (const uint8_t *)body);
	hmac_sha256_digest(&ctx, sizeof(mac), mac);
	o += sprintf(o, "sha256=");
	for (size_t i = 0; i < sizeof(mac); i++) {
		*o++ = hex[mac[i] >> 4];
		*o++ = hex[mac[i] & 15];
	}
	*o = '\0';
}

unsigned berthd_hooks_for_event(const char *type, const char *data)
{
	json_t *o = data != NULL ? json_loads(data, 0, NULL) : NULL;
	const char *reason = json_string_value(json_object_get(o, "reason"));
	json_int_t code = json_integer_value(json_object_get(o, "exitCode"));
	json_int_t signal = json_integer_value(json_object_get(o, "signal"));
	bool oom = json_is_true(json_object_get(o, "oom"));
	unsigned hooks = 0;

	/*
	 * As @cloudflare/containers: onStart once the container answers,
	 * onStop on any end, onError when it ended in a way nobody asked for
	 * (or never started), onActivityExpired when sleepAfter ran out.
	 */
	if (strcmp(type, "ready") == 0)
		hooks = BERTHD_HOOK_ON_START;
	else if (strcmp(type, "start_failed") == 0)
		hooks = BERTHD_HOOK_ON_ERROR;
	else if (strcmp(type, "stop") == 0 && reason != NULL &&
	         strcmp(reason, "activity_expired") == 0)
		hooks = BERTHD_HOOK_ON_ACTIVITY_EXPIRED;
	else if (strcmp(type, "exited") == 0) {
		hooks = BERTHD_HOOK_ON_STOP;
		if (oom || ((code != 0 || signal != 0) && !requested(reason)))
			hooks |= BERTHD_HOOK_ON_ERROR;
	}
	json_decref(o);
	return hooks;
}

/* ---- the queue ---- */

static void delivery_free(struct delivery *dl)
{
	struct berthd_hooks *h = dl->h;

	if (dl->easy != NULL) {
		curl_multi_remove_handle(h->multi, dl->easy);
		curl_easy_cleanup(dl->easy);
		h->active--;
	}
	curl_slist_free_all(dl->headers);
	if (dl->prev != NULL)
		dl->prev->next = dl->next;
	else
		h->head = dl->next;
	if (dl->next != NULL)
		dl->next->prev = dl->prev;
	else
		h->tail = dl->prev;
	h->queued--;
	free(dl->url);
	free(dl->body);
	free(dl->what);
	free(dl);
}

static void enqueue(struct berthd_hooks *h, struct delivery *dl)
{
	if (h->queued >= QUEUE_MAX) {
		berth_warn("webhooks: %d deliveries pending; dropping the oldest, %s", QUEUE_MAX,
		           h->head->what);
		delivery_free(h->head);
	}
	dl->h = h;
	dl->prev = h->tail;
	if (h->tail != NULL)
		h->tail->next = dl;
	else
		h->head = dl;
	h->tail = dl;
	h->queued++;
}

/* ---- curl on the loop ---- */

static void on_watch_closed(uv_handle_t *handle)
{
	struct watch *w = handle->data;
	struct berthd_hooks *h = w->h;

	free(w);
	if (--h->open_handles == 0 && h->closing)
		close_all(h);
}

static void unwatch(struct watch *w)
{
	struct berthd_hooks *h = w->h;

	/* A later REMOVE for this socket must not find the watch again. */
	if (h->multi != NULL)
		curl_multi_assign(h->multi, w->fd, NULL);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		h->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	/* Stopped now, while curl's socket is still open; freed once closed. */
	uv_poll_stop(&w->poll);
	uv_close((uv_handle_t *)&w->poll, on_watch_closed);
}

/* Read what curl has finished; defined with the attempts below. */
static void collect(struct berthd_hooks *h);

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct watch *w = p->data;
	struct berthd_hooks *h = w->h;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, w->fd, flags, &running);
	collect(h);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct berthd_hooks *h = userp;
	struct watch *w = socketp;
	int events = 0, r;
	(void)easy;

	/* curl says so before it closes the socket: the watch must go first. */
	if (what == CURL_POLL_REMOVE) {
		if (w != NULL)
			unwatch(w);
		return 0;
	}
	if (h->closing)
		return 0;
	if (w == NULL) {
		w = xcalloc(1, sizeof(*w));
		r = uv_poll_init_socket(h->d->loop, &w->poll, fd);
		if (r < 0) {
			berth_warn("webhooks: watch socket %d: %s", fd, uv_strerror(r));
			free(w);
			return -1;
		}
		w->poll.data = w;
		w->fd = fd;
		w->h = h;
		w->next = h->watches;
		if (h->watches != NULL)
			h->watches->prev = w;
		h->watches = w;
		h->open_handles++;
		curl_multi_assign(h->multi, fd, w);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	r = uv_poll_start(&w->poll, events, on_poll);
	return r < 0 ? -1 : 0;
}

static void on_curl_timer(uv_timer_t *t)
{
	struct berthd_hooks *h = t->data;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(h);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
	struct berthd_hooks *h = userp;
	(void)multi;

	if (h->closing)
		return 0;
	/*
	 * Never call curl back from inside this callback (curl forbids it):
	 * a timeout of 0 runs on the next turn of the loop.
	 */
	if (timeout_ms < 0)
		uv_timer_stop(&h->curl_timer);
	else
		uv_timer_start(&h->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

/* ---- attempts ---- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* Failures of the transport worth another attempt; the rest will not change. */
static const CURLcode transient[] = {
        CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT,   CURLE_OPERATION_TIMEDOUT,
        CURLE_SEND_ERROR,           CURLE_RECV_ERROR,        CURLE_GOT_NOTHING,
        CURLE_PARTIAL_FILE,         CURLE_SSL_CONNECT_ERROR, CURLE_HTTP2,
        CURLE_HTTP2_STREAM,
};

static bool is_transient(CURLcode c)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(transient); i++)
		if (transient[i] == c)
			return true;
	return false;
}

/*
 * libcurl, set up for the first delivery rather than at start-up: berthd
 * loads it only then (ondemand.c), so a daemon without webhooks never
 * carries it. false when it cannot be (said once).
 */
static bool curl_ready(struct berthd_hooks *h)
{
	CURLcode c;

	if (h->multi != NULL)
		return true;
	if (h->curl_failed)
		return false;
	c = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (c != CURLE_OK) {
		berth_error_log("webhooks: libcurl: %s; webhooks are disabled",
		                curl_easy_strerror(c));
		h->curl_failed = true;
		return false;
	}
	h->multi = curl_multi_init();
	if (h->multi == NULL) {
		berth_error_log("webhooks: libcurl could not be set up; webhooks are disabled");
		curl_global_cleanup();
		h->curl_failed = true;
		return false;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return true;
}

static int start_attempt(struct berthd_hooks *h, struct delivery *dl)
{
	CURLMcode mc;

	if (!curl_ready(h))
		return -1;
	dl->easy = curl_easy_init();
	if (dl->easy == NULL)
		return -1;
	dl->error[0] = '\0';
	curl_easy_setopt(dl->easy, CURLOPT_URL, dl->url);
	curl_easy_setopt(dl->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(dl->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(dl->easy, CURLOPT_POSTFIELDS, dl->body);
	curl_easy_setopt(dl->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(dl->body));
	curl_easy_setopt(dl->easy, CURLOPT_HTTPHEADER, dl->headers);
	curl_easy_setopt(dl->easy, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(dl->easy, CURLOPT_TIMEOUT_MS, (long)ATTEMPT_TIMEOUT_MS);
	/* Signals belong to the loop; name lookups run on curl's own thread. */
	curl_easy_setopt(dl->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(dl->easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(dl->easy, CURLOPT_ERRORBUFFER, dl->error);
	curl_easy_setopt(dl->easy, CURLOPT_PRIVATE, dl);
	mc = curl_multi_add_handle(h->multi, dl->easy);
	if (mc != CURLM_OK) {
		berth_warn("webhooks: %s: %s", dl->what, curl_multi_strerror(mc));
		curl_easy_cleanup(dl->easy);
		dl->easy = NULL;
		return -1;
	}
	dl->attempts++;
	h->active++;
	return 0;
}

/* How an attempt ended: done (delivered or given up) or again at dl->due_ms. */
static void finish_attempt(struct berthd_hooks *h, struct delivery *dl, CURLcode result)
{
	long status = 0;
	curl_off_t retry_after_s = 0;
	uint64_t wait_ms;
	bool retry;
	char why[CURL_ERROR_SIZE + 64];

	curl_easy_getinfo(dl->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(dl->easy, CURLINFO_RETRY_AFTER, &retry_after_s);
	curl_multi_remove_handle(h->multi, dl->easy);
	curl_easy_cleanup(dl->easy);
	dl->easy = NULL;
	h->active--;

	if (result == CURLE_OK && status >= 200 && status <= 299) {
		berth_debug("webhooks: delivered %s (attempt %u)", dl->what, dl->attempts);
		delivery_free(dl);
		return;
	}
	if (result != CURLE_OK) {
		snprintf(why, sizeof(why), "%s",
		         dl->error[0] != '\0' ? dl->error : curl_easy_strerror(result));
		retry = is_transient(result);
	} else {
		snprintf(why, sizeof(why), "the receiver answered %ld%s", status,
		         status >= 300 && status <= 399 ? " (redirects are not followed)" : "");
		retry = status >= 500 || status == 429;
	}
	if (!retry || dl->attempts >= ATTEMPTS || h->shutting_down) {
		berth_error_log("webhooks: %s failed after %u attempt%s: %s%s", dl->what,
		                dl->attempts, dl->attempts == 1 ? "" : "s", why,
		                h->shutting_down && retry ? " (berthd is stopping)" : "");
		delivery_free(dl);
		return;
	}
	wait_ms = (uint64_t)BACKOFF_FIRST_MS << (dl->attempts - 1);
	if ((status == 429 || status == 503) && retry_after_s > 0) {
		/* Not sooner than the receiver asks, nor later than the cap. */
		uint64_t asked = retry_after_s > RETRY_AFTER_MAX_MS / 1000
		                         ? RETRY_AFTER_MAX_MS
		                         : (uint64_t)retry_after_s * 1000;
		if (asked > wait_ms)
			wait_ms = asked;
	}
	berth_info("webhooks: %s: %s; attempt %u of %d in %llu ms", dl->what, why, dl->attempts + 1,
	           ATTEMPTS, (unsigned long long)wait_ms);
	dl->due_ms = uv_now(h->d->loop) + wait_ms;
}

static void collect(struct berthd_hooks *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		void *dl = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &dl);
		finish_attempt(h, dl, msg->data.result);
	}
	pump(h);
}

static void on_retry_timer(uv_timer_t *t)
{
	pump(t->data);
}

/* Start what is due (as many as may run at once); wake up for the next one. */
static void pump(struct berthd_hooks *h)
{
	uint64_t now = uv_now(h->d->loop), next = UINT64_MAX;

	if (h->closing)
		return;
	for (struct delivery *dl = h->head, *following; dl != NULL; dl = following) {
		following = dl->next;
		if (dl->easy != NULL)
			continue;
		if (dl->due_ms > now) {
			if (dl->due_ms < next)
				next = dl->due_ms;
			continue;
		}
		if (h->active >= ACTIVE_MAX)
			continue;
		if (start_attempt(h, dl) < 0) {
			berth_error_log("webhooks: %s: could not be sent; giving up", dl->what);
			delivery_free(dl);
		}
	}
	if (next != UINT64_MAX)
		uv_timer_start(&h->retry_timer, on_retry_timer, next - now, 0);
	else
		uv_timer_stop(&h->retry_timer);
	if (h->shutting_down && h->queued == 0)
		close_all(h);
}

/* ---- events ---- */

static void on_handle_closed(uv_handle_t *handle)
{
	struct berthd_hooks *h = handle->data;

	if (--h->open_handles == 0 && h->closing)
		close_all(h);
}

void berthd_hooks_init(struct berthd *d)
{
	struct berthd_hooks *h = xcalloc(1, sizeof(*h));

	h->d = d;
	snprintf(h->user_agent, sizeof(h->user_agent), "berth/%s", BERTH_VERSION);
	uv_timer_init(d->loop, &h->curl_timer);
	uv_timer_init(d->loop, &h->retry_timer);
	uv_timer_init(d->loop, &h->grace_timer);
	h->curl_timer.data = h->retry_timer.data = h->grace_timer.data = h;
	h->open_handles = 3;
	d->hooks = h;
}

static const char *hook_url(const struct berth_config_class *cls, unsigned hook)
{
	switch (hook) {
	case BERTHD_HOOK_ON_START:
		return cls->on_start;
	case BERTHD_HOOK_ON_STOP:
		return cls->on_stop;
	case BERTHD_HOOK_ON_ERROR:
		return cls->on_error;
	case BERTHD_HOOK_ON_ACTIVITY_EXPIRED:
		return cls->on_activity_expired;
	}
	return NULL;
}

static const struct {
	unsigned bit;
	const char *name;
} hook_names[] = {
        {BERTHD_HOOK_ON_START, "onStart"},
        {BERTHD_HOOK_ON_ACTIVITY_EXPIRED, "onActivityExpired"},
        {BERTHD_HOOK_ON_ERROR, "onError"},
        {BERTHD_HOOK_ON_STOP, "onStop"},
};

/* The body: who and what, then the event's own fields (which cannot replace those). */
static char *body_of(const char *hook, const struct berth_registry_event *ev, json_t *data)
{
	json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:I, s:I}", "hook", hook, "class",
	                      ev->class_name, "name",
	                      json_is_string(json_object_get(data, "name"))
	                              ? json_incref(json_object_get(data, "name"))
	                              : json_null(),
	                      "id", ev->instance_id, "event", ev->type, "seq", (json_int_t)ev->seq,
	                      "time", (json_int_t)ev->time_ms);
	char *text;

	if (o == NULL)
		return NULL; /* not UTF-8: the registry's strings always are */
	if (json_is_object(data))
		json_object_update_missing(o, data);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

void berthd_hooks_event(struct berthd *d, const struct berth_registry_event *ev)
{
	struct berthd_hooks *h = d->hooks;
	const struct berth_config_class *cls;
	const char *name;
	unsigned hooks;
	json_t *data;

	if (h == NULL || h->closing || ev->class_name == NULL || ev->instance_id == NULL ||
	    ev->type == NULL)
		return;
	cls = berth_config_find_class(d->config, ev->class_name);
	if (cls == NULL)
		return;
	hooks = berthd_hooks_for_event(ev->type, ev->data);
	if (hooks == 0)
		return;
	data = ev->data != NULL ? json_loads(ev->data, 0, NULL) : NULL;
	name = json_string_value(json_object_get(data, "name"));
	if (name == NULL)
		name = ev->instance_id;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(hook_names); i++) {
		const char *url = hook_url(cls, hook_names[i].bit);
		struct delivery *dl;
		char header[64], *body;

		if (!(hooks & hook_names[i].bit) || url == NULL)
			continue;
		body = body_of(hook_names[i].name, ev, data);
		if (body == NULL) {
			berth_error_log("webhooks: %s of %s/%s (event %lld): no body (bad UTF-8)",
			                hook_names[i].name, ev->class_name, name,
			                (long long)ev->seq);
			continue;
		}
		dl = xcalloc(1, sizeof(*dl));
		dl->hook = hook_names[i].name;
		dl->url = xstrdup(url);
		dl->seq = ev->seq;
		dl->body = body;
		dl->what = xasprintf("%s of %s/%s (event %lld)", dl->hook, ev->class_name, name,
		                     (long long)ev->seq);
		dl->headers = curl_slist_append(NULL, "Content-Type: application/json");
		snprintf(header, sizeof(header), "X-Berth-Event-Id: %lld", (long long)ev->seq);
		dl->headers = curl_slist_append(dl->headers, header);
		snprintf(header, sizeof(header), "X-Berth-Hook: %s", dl->hook);
		dl->headers = curl_slist_append(dl->headers, header);
		if (d->config->berth.hooks_secret != NULL) {
			char sig[BERTHD_HOOKS_SIGNATURE_SIZE];
			char line[sizeof("X-Berth-Signature: ") + BERTHD_HOOKS_SIGNATURE_SIZE];

			/* Read when the event happens, as the URLs: a reload applies to the next.
			 */
			berthd_hooks_signature(d->config->berth.hooks_secret, body, sig);
			snprintf(line, sizeof(line), "X-Berth-Signature: %s", sig);
			dl->headers = curl_slist_append(dl->headers, line);
		}
		/* No "Expect: 100-continue" round trip: bodies are small. */
		dl->headers = curl_slist_append(dl->headers, "Expect:");
		if (dl->headers == NULL)
			abort(); /* out of memory, as the x-allocators */
		dl->due_ms = uv_now(d->loop);
		enqueue(h, dl);
	}
	json_decref(data);
	pump(h);
}

/* ---- shutdown ---- */

static void on_grace_over(uv_timer_t *t)
{
	struct berthd_hooks *h = t->data;

	berth_warn("webhooks: abandoning %zu pending deliver%s: berthd is stopping", h->queued,
	           h->queued == 1 ? "y" : "ies");
	close_all(h);
}

/*
 * Tear down: the deliveries, then curl (each socket's watch goes when curl
 * says it closes the socket), then the timers; the module is freed when the
 * last handle has closed. Called again from the close callbacks.
 */
static void close_all(struct berthd_hooks *h)
{
	if (!h->closing) {
		h->closing = true;
		while (h->head != NULL)
			delivery_free(h->head);
		if (h->multi != NULL) {
			curl_multi_cleanup(h->multi);
			h->multi = NULL;
			curl_global_cleanup();
		}
		/* None should be left; if one is, it is no longer curl's. */
		while (h->watches != NULL)
			unwatch(h->watches);
		uv_close((uv_handle_t *)&h->curl_timer, on_handle_closed);
		uv_close((uv_handle_t *)&h->retry_timer, on_handle_closed);
		uv_close((uv_handle_t *)&h->grace_timer, on_handle_closed);
		return;
	}
	if (h->open_handles > 0)
		return;
	h->d->hooks = NULL;
	free(h);
}

void berthd_hooks_shutdown(struct berthd *d)
{
	struct berthd_hooks *h = d->hooks;

	if (h == NULL || h->shutting_down)
		return;
	h->shutting_down = true;
	if (h->queued == 0) {
		close_all(h);
		return;
	}
	berth_info("webhooks: %zu deliver%s pending; waiting up to %d ms", h->queued,
	           h->queued == 1 ? "y" : "ies", SHUTDOWN_GRACE_MS);
	/* What waits for a retry gets its last attempt now. */
	for (struct delivery *dl = h->head; dl != NULL; dl = dl->next)
		if (dl->easy == NULL)
			dl->due_ms = uv_now(d->loop);
	uv_timer_start(&h->grace_timer, on_grace_over, SHUTDOWN_GRACE_MS, 0);
	pump(h);
}
