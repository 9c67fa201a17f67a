/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/log.h"
#include "berth/util.h"
#include "daemon/daemon.h"
#include "daemon/persist.h"
#include "http/http.h"
#include "images.h"

#define INSECURE_MAX 32

/*
 * The events of one resolve of an image, in the registry's event log:
 * "started" as soon as the worker finds the store without the image and
 * begins to fetch it (the worker wakes the loop through `async`, as only
 * the loop may queue registry writes), then "done" or "failed" once the
 * work is over. An image the store has makes no event at all.
 */
struct berthd_image_events {
	uv_async_t async; /* first: its close callback frees the struct */
	struct berthd *d;
	char *class_name, *instance_id, *name, *image;
	const char *type;  /* "image_pull" or "image_import" */
	int started;       /* set by the worker, atomically */
	bool started_sent; /* the loop's */
	/* The outcome, written by the worker before its work is done. */
	bool have_outcome;
	int result;
	char digest[BERTH_DIGEST_MAX];
	char *error;
};

static void emit(struct berthd_image_events *ev, const char *phase)
{
	json_t *data = json_pack("{s:s, s:s}", "image", ev->image, "phase", phase);
	cleanup_free char *text = NULL;

	if (ev->name != NULL)
		json_object_set_new(data, "name", json_string(ev->name));
	if (strcmp(phase, "done") == 0 && ev->digest[0] != '\0')
		json_object_set_new(data, "digest", json_string(ev->digest));
	if (strcmp(phase, "failed") == 0)
		json_object_set_new(data, "error",
		                    json_string(ev->error != NULL ? ev->error : "unknown error"));
	text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	berthd_persist_event(ev->d, ev->class_name, ev->instance_id, ev->type, text);
}

static void send_started(struct berthd_image_events *ev)
{
	if (ev->started_sent || !__atomic_load_n(&ev->started, __ATOMIC_ACQUIRE))
		return;
	ev->started_sent = true;
	emit(ev, "started");
}

static void on_fetching_async(uv_async_t *h)
{
	send_started(h->data);
}

/* On the worker: berth_pull_options.fetching. */
static void on_fetching(void *arg)
{
	struct berthd_image_events *ev = arg;

	if (ev == NULL)
		return;
	__atomic_store_n(&ev->started, 1, __ATOMIC_RELEASE);
	uv_async_send(&ev->async);
}

/* On the worker: what became of the image. */
static void set_outcome(struct berthd_image_events *ev, int r, const char *digest,
                        const berth_error_t *err)
{
	if (ev == NULL)
		return;
	ev->have_outcome = true;
	ev->result = r;
	if (r == 0 && digest != NULL)
		snprintf(ev->digest, sizeof(ev->digest), "%s", digest);
	if (r < 0)
		ev->error = xstrdup(err->message);
}

struct berthd_image_events *berthd_image_events_new(struct berthd *d, const char *class_name,
                                                    const char *instance_id, const char *name,
                                                    const char *image)
{
	struct berthd_image_events *ev = xcalloc(1, sizeof(*ev));

	ev->d = d;
	ev->class_name = class_name != NULL ? xstrdup(class_name) : NULL;
	ev->instance_id = instance_id != NULL ? xstrdup(instance_id) : NULL;
	ev->name = name != NULL ? xstrdup(name) : NULL;
	ev->image = xstrdup(image);
	/* Paths are absolute; anything else is a registry reference (config/image.c). */
	ev->type = image[0] == '/' ? "image_import" : "image_pull";
	uv_async_init(d->loop, &ev->async, on_fetching_async);
	ev->async.data = ev;
	return ev;
}

static void free_events(uv_handle_t *h)
{
	struct berthd_image_events *ev = h->data;

	free(ev->class_name);
	free(ev->instance_id);
	free(ev->name);
	free(ev->image);
	free(ev->error);
	free(ev);
}

void berthd_image_events_end(struct berthd_image_events *ev)
{
	if (ev == NULL)
		return;
	/* The worker's wake-up may not have been handled yet: "started" goes first. */
	send_started(ev);
	if (ev->have_outcome && ev->result == 0 && ev->started_sent)
		emit(ev, "done");
	else if (ev->have_outcome && ev->result < 0 && ev->result != -EISDIR)
		/* Also without "started": the source could not even be read. */
		emit(ev, "failed");
	uv_close((uv_handle_t *)&ev->async, free_events);
}

static void parse_insecure(char **list, char *insecure[INSECURE_MAX + 1])
{
	size_t n = 0;

	memset(insecure, 0, (INSECURE_MAX + 1) * sizeof(char *));
	if (getenv("BERTH_INSECURE_REGISTRIES") != NULL) {
		char *save = NULL;
		*list = xstrdup(getenv("BERTH_INSECURE_REGISTRIES"));
		for (char *h = strtok_r(*list, ",", &save); h != NULL && n < INSECURE_MAX;
		     h = strtok_r(NULL, ",", &save))
			insecure[n++] = h;
	}
}

/* Import or pull `source` (unless the store has it) and load it. */
static int resolve(const char *state_dir, const char *source, const int *cancel,
                   struct berthd_image_events *ev, struct berth_image **img, berth_error_t *err)
{
	struct berth_pull_options opts = {
	        .auth_file = getenv("BERTH_AUTH_FILE"),
	        .cancel = cancel,
	        .fetching = ev != NULL ? on_fetching : NULL,
	        .fetching_arg = ev,
	};
	struct berth_image_store *store = NULL;
	cleanup_free char *list = NULL;
	char *insecure[INSECURE_MAX + 1];
	int r;

	parse_insecure(&list, insecure);
	opts.insecure = insecure;
	r = berth_image_store_open(state_dir, &store, err);
	if (r == 0) {
		r = berth_image_resolve(store, source, &opts, false, img, err);
		berth_image_store_free(store);
	}
	set_outcome(ev, r, r == 0 ? (*img)->manifest_digest : NULL, err);
	return r;
}

int berthd_image_prepare(const char *state_dir, const char *source, char *const *entrypoint,
                         char *const *env, const int *cancel, struct berthd_image_events *ev,
                         struct berth_container_spec *spec, struct berthd_image_prep *prep,
                         berth_error_t *err)
{
	int r;

	memset(prep, 0, sizeof(*prep));
	r = resolve(state_dir, source, cancel, ev, &prep->img, err);
	if (r == -EISDIR) {
		/* A plain root directory: no config, so the class must say what to run. */
		if (entrypoint == NULL)
			return berth_error_set_plain(err, EINVAL,
			                             "its class has no entrypoint, and a root "
			                             "directory image has no command of its own");
		prep->rootfs = xstrdup(source);
		spec->rootfs = prep->rootfs;
		spec->argv = entrypoint;
		spec->env = env;
		return 0;
	}
	if (r < 0)
		return r;
	r = berth_image_run_config(prep->img->config, entrypoint, NULL, env, &prep->run, err);
	if (r < 0)
		return berth_error_wrap(err, "image `%s`", source);
	spec->rootfs = NULL;
	spec->layers = prep->img->layer_dirs;
	spec->argv = prep->run.argv;
	spec->env = prep->run.env;
	spec->workdir = prep->run.workdir;
	prep->port = prep->run.port;
	if (prep->run.user != NULL) {
		r = berth_image_user(prep->img->layer_dirs, prep->run.user, &spec->uid, &spec->gid,
		                     err);
		if (r < 0)
			return berth_error_wrap(err, "image `%s`", source);
	}
	return 0;
}

void berthd_image_prep_free(struct berthd_image_prep *prep)
{
	berth_image_free(prep->img);
	berth_image_run_free(&prep->run);
	free(prep->rootfs);
	memset(prep, 0, sizeof(*prep));
}

struct prefetch {
	uv_work_t work;
	char *class_name, *source, *state_dir;
	const int *cancel;
	struct berthd_image_events *events;
	berth_error_t err;
	int result;
};

static void prefetch_work(uv_work_t *w)
{
	struct prefetch *p = w->data;
	struct berth_image *img = NULL;

	p->result = resolve(p->state_dir, p->source, p->cancel, p->events, &img, &p->err);
	berth_image_free(img);
}

static void prefetch_done(uv_work_t *w, int status)
{
	struct prefetch *p = w->data;

	berthd_image_events_end(p->events);
	if (status == UV_ECANCELED || p->result == -ECANCELED)
		berth_info("class `%s`: pull of `%s` stopped", p->class_name, p->source);
	else if (p->result < 0)
		berth_warn("class `%s`: image `%s`: %s (its first start tries again)",
		           p->class_name, p->source, p->err.message);
	else
		berth_info("class `%s`: image `%s` ready", p->class_name, p->source);
	free(p->class_name);
	free(p->source);
	free(p->state_dir);
	free(p);
}

void berthd_images_prefetch(struct berthd *d)
{
	for (size_t i = 0; i < d->config->n_classes; i++) {
		const struct berth_config_class *cls = &d->config->classes[i];
		struct prefetch *p;

		/* Paths are absolute; anything else is a registry reference (config/image.c). */
		if (cls->image_path == NULL || cls->image_path[0] == '/')
			continue;
		p = xcalloc(1, sizeof(*p));
		p->work.data = p;
		p->class_name = xstrdup(cls->class_name);
		p->source = xstrdup(cls->image_path);
		p->state_dir = xstrdup(d->config->berth.state_dir);
		p->cancel = &d->images_cancel;
		/* A class's pull, for no instance in particular. */
		p->events =
		        berthd_image_events_new(d, cls->class_name, NULL, NULL, cls->image_path);
		uv_queue_work(d->loop, &p->work, prefetch_work, prefetch_done);
	}
}

/* ---- /v1/images ---- */

enum image_op { OP_LIST, OP_INSPECT, OP_PULL, OP_REMOVE, OP_PRUNE };

struct image_call {
	uv_work_t work;
	struct berth_http_request *req;
	enum image_op op;
	char *name, *state_dir;
	const int *cancel;
	json_t *result;
	berth_error_t err;
	int r;
	/*
	 * A pull streamed as server-sent events: the pulling thread leaves the
	 * latest progress of each blob in `pending` (so it stays small however
	 * slow the client) and wakes the loop, which writes them out.
	 */
	bool stream, client_gone;
	uv_async_t async;
	pthread_mutex_t lock;
	json_t *pending;                    /* digest → the last progress event */
	struct berthd_image_events *events; /* a pull's */
};

static void on_pull_progress(const struct berth_pull_progress *p, void *arg)
{
	struct image_call *c = arg;
	json_t *ev =
	        json_pack("{s:s, s:I, s:I, s:b}", "digest", p->digest, "done", (json_int_t)p->done,
	                  "total", (json_int_t)p->total, "finished", p->finished);

	pthread_mutex_lock(&c->lock);
	json_object_set_new(c->pending, p->digest, ev);
	pthread_mutex_unlock(&c->lock);
	uv_async_send(&c->async);
}

static void send_event(struct image_call *c, const char *type, json_t *data)
{
	cleanup_free char *text = json_dumps(data, JSON_COMPACT);
	cleanup_free char *frame = xasprintf("event: %s\ndata: %s\n\n", type, text);

	if (!c->client_gone && berth_http_stream_write(c->req, frame, strlen(frame)) < 0)
		c->client_gone = true;
}

/* On the loop: what the pulling thread reported since the last wake-up. */
static void flush_progress(uv_async_t *h)
{
	struct image_call *c = h->data;
	json_t *pending, *ev;
	const char *digest;

	pthread_mutex_lock(&c->lock);
	pending = c->pending;
	c->pending = json_object();
	pthread_mutex_unlock(&c->lock);
	json_object_foreach (pending, digest, ev)
		send_event(c, "progress", ev);
	json_decref(pending);
}

static void image_call_work(uv_work_t *w)
{
	struct image_call *c = w->data;
	struct berth_pull_options opts = {
	        .auth_file = getenv("BERTH_AUTH_FILE"),
	        .cancel = c->cancel,
	        .progress = c->stream ? on_pull_progress : NULL,
	        .progress_arg = c,
	};
	struct berth_image_store *s = NULL;
	cleanup_free char *list = NULL;
	char *insecure[INSECURE_MAX + 1];

	c->r = berth_image_store_open(c->state_dir, &s, &c->err);
	if (c->r < 0) {
		set_outcome(c->events, c->r, NULL, &c->err);
		return;
	}
	switch (c->op) {
	case OP_LIST:
		c->r = berth_image_store_list(s, &c->result, &c->err);
		break;
	case OP_INSPECT:
		c->r = berth_image_store_inspect(s, c->name, &c->result, &c->err);
		break;
	case OP_REMOVE: {
		cleanup_free char *key = berth_image_record_name(c->name);
		c->r = berth_image_store_untag(s, key, &c->err);
		if (c->r == 0)
			c->result = json_pack("{s:s}", "removed", key);
		break;
	}
	case OP_PRUNE: {
		struct berth_prune_report rep;
		c->r = berth_image_store_prune(s, &rep, &c->err);
		if (c->r == 0)
			c->result =
			        json_pack("{s:I, s:I, s:I, s:b}", "blobs", (json_int_t)rep.blobs,
			                  "layers", (json_int_t)rep.layers, "bytes",
			                  (json_int_t)rep.bytes, "layersKept", rep.layers_kept_all);
		break;
	}
	case OP_PULL: {
		struct berth_image_ref ref;
		char digest[BERTH_DIGEST_MAX];

		parse_insecure(&list, insecure);
		opts.insecure = insecure;
		c->r = berth_image_ref_parse(c->name, &ref, &c->err);
		if (c->r < 0) {
			c->r = -EDOM; /* the caller's mistake: 400, and no event */
			break;
		}
		on_fetching(c->events);
		c->r = berth_image_pull(s, &ref, &opts, digest, &c->err);
		berth_image_ref_free(&ref);
		set_outcome(c->events, c->r, digest, &c->err);
		if (c->r == 0)
			c->r = berth_image_store_inspect(s, digest, &c->result, &c->err);
		break;
	}
	}
	berth_image_store_free(s);
}

static void image_call_free(struct image_call *c)
{
	json_decref(c->result);
	json_decref(c->pending);
	free(c->name);
	free(c->state_dir);
	if (c->stream)
		pthread_mutex_destroy(&c->lock);
	free(c);
}

static void on_async_closed(uv_handle_t *h)
{
	image_call_free(h->data);
}

static void image_call_done(uv_work_t *w, int status)
{
	struct image_call *c = w->data;

	(void)status;
	berthd_image_events_end(c->events);
	c->events = NULL;
	if (c->stream) {
		flush_progress(&c->async);
		if (c->r == 0)
			send_event(c, "done", c->result);
		else {
			json_t *e = json_pack("{s:s}", "message", c->err.message);
			send_event(c, "error", e);
			json_decref(e);
		}
		berth_http_stream_end(c->req);
		uv_close((uv_handle_t *)&c->async, on_async_closed);
		return;
	}
	/* A client that left meanwhile: the server drops the answer. */
	if (c->r == 0)
		berth_http_respond_json(c->req, 200, steal_pointer(&c->result));
	else if (c->r == -EDOM)
		berth_http_respond_error(c->req, 400, "bad_request", "%s", c->err.message);
	else if (c->r == -ENOENT && c->op != OP_PULL)
		berth_http_respond_error(c->req, 404, "image_not_found", "%s", c->err.message);
	else if (c->op == OP_PULL)
		berth_http_respond_error(c->req, c->r == -ECANCELED ? 503 : 502, "pull_failed",
		                         "%s", c->err.message);
	else
		berth_http_respond_error(c->req, 500, "image_store", "%s", c->err.message);
	image_call_free(c);
}

static void image_call(struct berthd *d, struct berth_http_request *req, enum image_op op,
                       const char *name, bool stream)
{
	struct image_call *c = xcalloc(1, sizeof(*c));

	c->work.data = c;
	if (stream) {
		c->stream = true;
		c->pending = json_object();
		pthread_mutex_init(&c->lock, NULL);
		uv_async_init(d->loop, &c->async, flush_progress);
		c->async.data = c;
		berth_http_stream_begin(req, 200, "text/event-stream",
		                        "Cache-Control: no-cache\r\n");
	}
	c->req = req;
	c->op = op;
	c->name = name != NULL ? xstrdup(name) : NULL;
	c->state_dir = xstrdup(d->config->berth.state_dir);
	c->cancel = &d->images_cancel;
	/* A pull asked for over the API is in the event log too, of no class. */
	if (op == OP_PULL)
		c->events = berthd_image_events_new(d, NULL, NULL, NULL, name);
	uv_queue_work(d->loop, &c->work, image_call_work, image_call_done);
}

/* ?stream=1 or Accept: text/event-stream: progress as server-sent events. */
static bool wants_stream(const struct berth_http_request *req)
{
	cleanup_free char *q = berth_http_query_param(req, "stream");
	const char *accept = berth_http_header(req, "accept");

	return (q != NULL && strcmp(q, "0") != 0 && strcmp(q, "false") != 0) ||
	       (accept != NULL && strstr(accept, "text/event-stream") != NULL);
}

void berthd_images_api(struct berthd *d, struct berth_http_request *req)
{
	/* req->path is /v1/images[/NAME]; NAME may have slashes (a reference). */
	const char *name = req->path + strlen("/v1/images");
	bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;

	while (*name == '/')
		name++;
	if (*name == '\0') {
		if (!get)
			berth_http_respond_error(req, 405, "method_not_allowed", "%s %s: use GET",
			                         req->method, req->path);
		else
			image_call(d, req, OP_LIST, NULL, false);
		return;
	}
	if (strcmp(name, "prune") == 0 && strcmp(req->method, "POST") == 0) {
		image_call(d, req, OP_PRUNE, NULL, false);
		return;
	}
	if (strcmp(name, "pull") == 0 && strcmp(req->method, "POST") == 0) {
		json_t *body =
		        json_loadb(req->body != NULL ? req->body : "", req->body_len, 0, NULL);
		const char *image = json_string_value(json_object_get(body, "image"));

		if (image == NULL)
			berth_http_respond_error(req, 400, "bad_request",
			                         "the body must be {\"image\": \"REFERENCE\"}");
		else
			image_call(d, req, OP_PULL, image, wants_stream(req));
		json_decref(body);
		return;
	}
	if (get)
		image_call(d, req, OP_INSPECT, name, false);
	else if (strcmp(req->method, "DELETE") == 0)
		image_call(d, req, OP_REMOVE, name, false);
	else
		berth_http_respond_error(req, 405, "method_not_allowed", "%s %s: use GET or DELETE",
		                         req->method, req->path);
}
