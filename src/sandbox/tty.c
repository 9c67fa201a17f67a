/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An interactive exec: GET .../exec upgraded to a WebSocket (wslay frames
 * over the HTTP server's raw connection). The client's first message is a
 * JSON text {argv, env, cwd, cols, rows}; then its binary messages are the
 * terminal's input and its text messages {"type": "resize", cols, rows}.
 * berthd sends the terminal's output as binary messages and, once the
 * command has exited and its output is drained, {"type": "exit",
 * "exitCode"} and a close frame.
 *
 * The pty is the container's own: its master is opened as /dev/pts/ptmx
 * of the container's devpts instance (through its root, as files are), and
 * the slave comes from TIOCGPTPEER, so that `tty` inside names it; the
 * slave becomes the command's controlling terminal (the runtime's exec
 * with `tty`), so ^C and job control work. A client that leaves takes the
 * command's tree with it; while the command runs, the instance is leased.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <nettle/sha1.h>
#include <wslay/wslay.h>

#include "berth/base64.h"
#include "berth/fs.h"
#include "berth/log.h"
#include "berth/runtime.h"
#include "berth/util.h"
#include "sandbox/sandbox-internal.h"

#define WS_GUID      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MSG_MAX      (1u << 20) /* a message from the client */
#define INPUT_MAX    (1u << 20) /* terminal input not yet taken by the pty */
#define OUTPUT_CHUNK (64u * 1024)

struct tty {
	struct sbx_call *c; /* holds the lease; answered with the upgrade */
	struct berth_http_raw *raw;
	wslay_event_context_ptr ws;
	char *in; /* bytes from the client not yet taken by wslay */
	size_t in_len;
	bool started; /* the first message (the command) came */
	struct sbx_proc *proc;
	int master;
	uv_poll_t poll;
	bool poll_open;
	int poll_events;
	char *input; /* for the pty, not yet written */
	size_t input_len;
	bool client_gone, exited, master_eof, behind;
	bool ending; /* the start failed inside a wslay callback: end after it */
	int exit_code;
};

static void tty_update_poll(struct tty *t);
static void tty_maybe_end(struct tty *t);

static void on_poll_closed(uv_handle_t *h)
{
	struct tty *t = h->data;

	t->poll_open = false;
	tty_maybe_end(t);
}

/* Everything is over (the command, the client or the socket): free once closed. */
static void tty_maybe_end(struct tty *t)
{
	if (!t->exited && t->proc != NULL)
		return;
	if (t->poll_open) {
		if (!uv_is_closing((uv_handle_t *)&t->poll))
			uv_close((uv_handle_t *)&t->poll, on_poll_closed);
		return;
	}
	if (t->proc != NULL)
		sbx_proc_release(steal_pointer(&t->proc));
	if (t->raw != NULL && !t->client_gone)
		berth_http_raw_close(t->raw);
	berth_close_keep_errno(t->master);
	if (t->ws != NULL)
		wslay_event_context_free(t->ws);
	free(t->in);
	free(t->input);
	sbx_call_end(t->c);
	free(t);
}

static void ws_flush(struct tty *t)
{
	if (t->ws != NULL && !t->client_gone && wslay_event_want_write(t->ws))
		wslay_event_send(t->ws);
}

static void send_text(struct tty *t, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, strlen(text)};

	if (!t->client_gone)
		wslay_event_queue_msg(t->ws, &m);
	free(text);
	json_decref(j);
}

/* Terminal output: as binary messages, as long as the client keeps up. */
static void read_master(struct tty *t)
{
	char buf[OUTPUT_CHUNK];

	while (!t->master_eof) {
		ssize_t n = read(t->master, buf, sizeof(buf));
		struct wslay_event_msg m = {WSLAY_BINARY_FRAME, (const uint8_t *)buf, 0};

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* EIO: no slave is open any more. */
			t->master_eof = true;
			break;
		}
		m.msg_length = (size_t)n;
		if (!t->client_gone)
			wslay_event_queue_msg(t->ws, &m);
		ws_flush(t);
		if (t->raw != NULL && !t->client_gone &&
		    berth_http_raw_queued(t->raw) > 1024 * 1024) {
			t->behind = true;
			break;
		}
	}
}

static void write_master(struct tty *t)
{
	while (t->input_len > 0) {
		ssize_t n = write(t->master, t->input, t->input_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			t->input_len = 0; /* the terminal is gone; so is its input */
			break;
		}
		memmove(t->input, t->input + n, t->input_len - (size_t)n);
		t->input_len -= (size_t)n;
	}
}

static void on_master(uv_poll_t *h, int status, int events)
{
	struct tty *t = h->data;
	(void)status;

	if (events & UV_WRITABLE)
		write_master(t);
	if (events & (UV_READABLE | UV_DISCONNECT))
		read_master(t);
	tty_update_poll(t);
}

static void tty_update_poll(struct tty *t)
{
	int want = 0;

	if (!t->poll_open || uv_is_closing((uv_handle_t *)&t->poll))
		return;
	if (!t->master_eof && !t->behind)
		want |= UV_READABLE;
	if (t->input_len > 0 && !t->master_eof)
		want |= UV_WRITABLE;
	if (want == t->poll_events)
		return;
	t->poll_events = want;
	if (want == 0)
		uv_poll_stop(&t->poll);
	else
		uv_poll_start(&t->poll, want, on_master);
}

static void on_raw_drain(void *arg)
{
	struct tty *t = arg;

	if (t->behind) {
		t->behind = false;
		tty_update_poll(t);
	}
}

static void set_size(struct tty *t, json_t *msg)
{
	json_t *cols = json_object_get(msg, "cols"), *rows = json_object_get(msg, "rows");
	struct winsize ws = {0};

	if (!json_is_integer(cols) || !json_is_integer(rows) || json_integer_value(cols) <= 0 ||
	    json_integer_value(rows) <= 0 || json_integer_value(cols) > 10000 ||
	    json_integer_value(rows) > 10000)
		return;
	ws.ws_col = (unsigned short)json_integer_value(cols);
	ws.ws_row = (unsigned short)json_integer_value(rows);
	ioctl(t->master, TIOCSWINSZ, &ws);
}

static const struct sbx_proc_ops tty_proc_ops;

/* The container's own pty: master from its devpts, slave through TIOCGPTPEER. */
static int open_pty(struct tty *t, int *slave, berth_error_t *err)
{
	struct berth_container *ctr = berthd_lease_container(t->c->lease);
	struct pollfd pfd = {.fd = ctr != NULL ? berth_container_pidfd(ctr) : -1, .events = POLLIN};
	cleanup_close int root = -1;
	char path[64];
	int unlock = 0;

	if (ctr == NULL)
		return berth_error_set_plain(err, ESRCH, "the container has ended");
	snprintf(path, sizeof(path), "/proc/%d/root", (int)berth_container_pid(ctr));
	root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0 || poll(&pfd, 1, 0) != 0)
		return berth_error_set_plain(err, ESRCH, "the container has ended");
	t->master = berth_open_in_root(root, "/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK, 0);
	if (t->master < 0)
		return berth_error_set(err, -t->master, "open the container's /dev/pts/ptmx");
	if (ioctl(t->master, TIOCSPTLCK, &unlock) < 0)
		return berth_error_set(err, errno, "unlock the pty");
	*slave = ioctl(t->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0)
		return berth_error_set(err, errno, "open the pty's terminal");
	return 0;
}

static void fail_text(struct tty *t, const char *message)
{
	send_text(t, json_pack("{s:s, s:s}", "type", "error", "error", message));
	/* wslay sends control frames first: the message goes out before the close is queued. */
	ws_flush(t);
	wslay_event_queue_close(t->ws, 1011, NULL, 0);
	ws_flush(t);
}

/* The command could not start: say why; the end comes after wslay's callback returns. */
static void fail_start(struct tty *t, const char *message)
{
	fail_text(t, message);
	t->ending = true;
}

/* The first message: what to run. */
static void start_command(struct tty *t, const char *text, size_t len)
{
	json_auto_t *msg = json_loadb(text, len, 0, NULL);
	json_t *argv_j = json_object_get(msg, "argv"), *env = json_object_get(msg, "env"), *e;
	const char *cwd = json_string_value(json_object_get(msg, "cwd"));
	struct sbx_proc_spec spec = {.tty = -1};
	char **argv, **envv = NULL;
	berth_error_t err;
	size_t i;
	int slave = -1;

	t->started = true;
	if (!json_is_array(argv_j) || json_array_size(argv_j) == 0 ||
	    json_array_size(argv_j) > 4096)
		return fail_start(t, "argv: must be a non-empty array of strings");
	json_array_foreach (argv_j, i, e)
		if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e))
			return fail_start(t, "argv: must be a non-empty array of strings");
	if (cwd != NULL && cwd[0] != '/')
		return fail_start(t, "cwd: must be an absolute path");
	if (env != NULL && !json_is_null(env)) {
		const char *k;
		if (!json_is_object(env))
			return fail_start(t, "env: must be an object of strings");
		json_object_foreach (env, k, e)
			if (!json_is_string(e) || *k == '\0' || strchr(k, '=') != NULL)
				return fail_start(t, "env: must be an object of strings");
	}
	if (open_pty(t, &slave, &err) < 0)
		return fail_start(t, err.message);
	set_size(t, msg);
	argv = xcalloc(json_array_size(argv_j) + 1, sizeof(char *));
	json_array_foreach (argv_j, i, e)
		argv[i] = xstrdup(json_string_value(e));
	/* A terminal's programs expect TERM; the client's own, else a common one. */
	{
		json_t *with_term = json_is_object(env) ? json_copy(env) : json_object();
		if (json_object_get(with_term, "TERM") == NULL)
			json_object_set_new(with_term, "TERM", json_string("xterm-256color"));
		envv = sbx_env_merge(berth_container_env(berthd_lease_container(t->c->lease)),
		                     with_term);
		json_decref(with_term);
	}
	spec.argv = argv;
	spec.env = envv;
	spec.cwd = cwd;
	spec.tty = slave;
	t->proc = sbx_proc_start(t->c->d, t->c->lease, &spec, &tty_proc_ops, t);
	berth_strv_free(argv);
	berth_strv_free(envv);
	close(slave);
	uv_poll_init(t->c->d->loop, &t->poll, t->master);
	t->poll.data = t;
	t->poll_open = true;
	tty_update_poll(t);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user_data)
{
	struct tty *t = user_data;
	(void)ctx;

	if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		/* The client is done: so is the command. */
		if (t->proc != NULL && !t->exited)
			sbx_proc_kill(t->proc);
		return;
	}
	if (!t->started) {
		if (arg->opcode == WSLAY_TEXT_FRAME)
			start_command(t, (const char *)arg->msg, arg->msg_length);
		else
			fail_start(t, "the first message must be the command, as JSON text");
		return;
	}
	if (arg->opcode == WSLAY_BINARY_FRAME) {
		if (t->input_len + arg->msg_length > INPUT_MAX)
			return; /* a terminal that reads nothing: drop rather than grow */
		t->input = xrealloc(t->input, t->input_len + arg->msg_length + 1);
		memcpy(t->input + t->input_len, arg->msg, arg->msg_length);
		t->input_len += arg->msg_length;
		write_master(t);
		tty_update_poll(t);
	} else if (arg->opcode == WSLAY_TEXT_FRAME) {
		json_auto_t *m = json_loadb((const char *)arg->msg, arg->msg_length, 0, NULL);
		const char *type = json_string_value(json_object_get(m, "type"));
		if (type != NULL && strcmp(type, "resize") == 0 && t->master >= 0)
			set_size(t, m);
	}
}

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data)
{
	struct tty *t = user_data;
	(void)flags;

	if (t->in_len == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > t->in_len)
		len = t->in_len;
	memcpy(buf, t->in, len);
	memmove(t->in, t->in + len, t->in_len - len);
	t->in_len -= len;
	return (ssize_t)len;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
	struct tty *t = user_data;
	(void)flags;

	if (t->client_gone || berth_http_raw_write(t->raw, data, len) < 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void on_raw_data(void *arg, const char *data, size_t len)
{
	struct tty *t = arg;

	t->in = xrealloc(t->in, t->in_len + len);
	memcpy(t->in + t->in_len, data, len);
	t->in_len += len;
	if (wslay_event_recv(t->ws) != 0) {
		/* Not WebSocket: the connection goes, and with it the command. */
		t->client_gone = true;
		berth_http_raw_close(t->raw);
		if (t->proc != NULL && !t->exited)
			sbx_proc_kill(t->proc);
		tty_maybe_end(t);
		return;
	}
	ws_flush(t);
	if (t->ending || (!t->started && wslay_event_get_close_received(t->ws))) {
		/* It could not begin, or was closed before it did. */
		t->exited = true;
		tty_maybe_end(t);
	}
}

static void on_raw_close(void *arg)
{
	struct tty *t = arg;

	t->client_gone = true;
	if (t->proc != NULL && !t->exited)
		sbx_proc_kill(t->proc);
	if (t->proc == NULL)
		t->exited = true;
	tty_maybe_end(t);
}

static const struct berth_http_raw_ops raw_ops = {on_raw_data, on_raw_drain, on_raw_close};

static void tty_started(struct sbx_proc *p, const berth_error_t *err)
{
	struct tty *t = p->data;

	if (err != NULL) {
		fail_text(t, err->message);
		t->exited = true;
		tty_maybe_end(t);
	}
}

static void tty_output(struct sbx_proc *p, int stream, const char *data, size_t len)
{
	(void)p;
	(void)stream;
	(void)data;
	(void)len;
}

static void tty_exited(struct sbx_proc *p)
{
	struct tty *t = p->data;

	t->exited = true;
	t->exit_code = p->exit_code;
	/* What the command wrote last is in the master still: all of it goes first. */
	t->behind = false;
	read_master(t);
	if (!t->client_gone) {
		send_text(t, json_pack("{s:s, s:i}", "type", "exit", "exitCode", p->exit_code));
		ws_flush(t);
		wslay_event_queue_close(t->ws, 1000, NULL, 0);
		ws_flush(t);
	}
	tty_maybe_end(t);
}

static const struct sbx_proc_ops tty_proc_ops = {tty_started, tty_output, tty_exited};

void sbx_tty_call(struct sbx_call *c);

void sbx_tty_call(struct sbx_call *c)
{
	static const struct wslay_event_callbacks callbacks = {
	        .recv_callback = ws_recv,
	        .send_callback = ws_send,
	        .on_msg_recv_callback = on_msg,
	};
	const char *key = berth_http_header(c->req, "sec-websocket-key");
	const char *version = berth_http_header(c->req, "sec-websocket-version");
	uint8_t digest[SHA1_DIGEST_SIZE];
	struct sha1_ctx sha;
	cleanup_free char *accept = NULL;
	cleanup_free char *headers = NULL;
	struct tty *t;

	if (key == NULL || strlen(key) > 64 || version == NULL || strcmp(version, "13") != 0)
		return sbx_call_fail(c, "VALIDATION_FAILED",
		                     "an interactive exec is a WebSocket (version 13) upgrade");
	sha1_init(&sha);
	sha1_update(&sha, strlen(key), (const uint8_t *)key);
	sha1_update(&sha, strlen(WS_GUID), (const uint8_t *)WS_GUID);
	sha1_digest(&sha, sizeof(digest), digest);
	accept = berth_base64_encode(digest, sizeof(digest), NULL);
	headers = xasprintf("Upgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n", accept);
	t = xcalloc(1, sizeof(*t));
	t->c = c;
	t->master = -1;
	if (wslay_event_context_server_init(&t->ws, &callbacks, t) != 0)
		abort(); /* out of memory, as the x-allocators */
	wslay_event_config_set_max_recv_msg_length(t->ws, MSG_MAX);
	t->raw = berth_http_upgrade(steal_pointer(&c->req), headers, &raw_ops, t);
	if (t->raw == NULL) {
		t->client_gone = true;
		t->exited = true;
		tty_maybe_end(t);
	}
}
