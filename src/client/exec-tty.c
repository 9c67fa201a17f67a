/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berth exec -t`: the command on a terminal of the container's, over a
 * WebSocket (GET .../exec upgraded; wslay frames over the connection libcurl
 * opened). The first message says what to run and the window's size; then
 * the keyboard goes as binary messages (with -i), window changes as
 * {"type": "resize"}, and the terminal's output comes back as binary
 * messages until {"type": "exit", "exitCode"}. With -i on a terminal,
 * berth's own terminal is raw meanwhile, so that ^C and the like reach the
 * command; it is restored on every way out.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include <wslay/wslay.h>

#include "berth/base64.h"
#include "berth/util.h"
#include "client/client.h"

struct session {
	struct berth_client *c;
	wslay_event_context_ptr ws;
	char *leftover; /* bytes that came with the 101 */
	size_t leftover_len;
	int exit_code; /* -1 until the exit message */
	char *error;
	bool closed;
};

static int winch_pipe[2] = {-1, -1};
static struct termios saved_termios;
static bool termios_saved;

static void restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
	termios_saved = false;
}

static void on_winch(int sig)
{
	int saved = errno;
	(void)sig;
	if (write(winch_pipe[1], "w", 1) < 0) {
		/* A full pipe already says the window changed. */
	}
	errno = saved;
}

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data)
{
	struct session *s = user_data;
	ssize_t n;
	(void)flags;

	if (s->leftover_len > 0) {
		n = (ssize_t)(len < s->leftover_len ? len : s->leftover_len);
		memcpy(buf, s->leftover, (size_t)n);
		memmove(s->leftover, s->leftover + n, s->leftover_len - (size_t)n);
		s->leftover_len -= (size_t)n;
		return n;
	}
	n = berth_client_raw_recv(s->c, buf, len);
	if (n == -EAGAIN) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n <= 0) {
		s->closed = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
	struct session *s = user_data;
	ssize_t n = berth_client_raw_send(s->c, data, len);
	(void)flags;

	if (n == -EAGAIN) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n < 0) {
		s->closed = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return n;
}

static int ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user_data)
{
	(void)ctx;
	(void)user_data;
	return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user_data)
{
	struct session *s = user_data;
	(void)ctx;

	if (arg->opcode == WSLAY_BINARY_FRAME) {
		size_t off = 0;
		while (off < arg->msg_length) {
			ssize_t n = write(STDOUT_FILENO, arg->msg + off, arg->msg_length - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	} else if (arg->opcode == WSLAY_TEXT_FRAME) {
		json_t *m = json_loadb((const char *)arg->msg, arg->msg_length, 0, NULL);
		const char *type = json_string_value(json_object_get(m, "type"));
		if (type != NULL && strcmp(type, "exit") == 0)
			s->exit_code = (int)json_integer_value(json_object_get(m, "exitCode"));
		else if (type != NULL && strcmp(type, "error") == 0) {
			const char *e = json_string_value(json_object_get(m, "error"));
			free(s->error);
			s->error = xstrdup(e != NULL ? e : "the command failed");
		}
		json_decref(m);
	} else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		s->closed = true;
	}
}

static void queue(struct session *s, uint8_t opcode, const void *data, size_t len)
{
	struct wslay_event_msg m = {opcode, data, len};
	wslay_event_queue_msg(s->ws, &m);
}

static void queue_json(struct session *s, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);

	queue(s, WSLAY_TEXT_FRAME, text, strlen(text));
	free(text);
	json_decref(j);
}

static void window_size(json_t *o)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
		json_object_set_new(o, "cols", json_integer(ws.ws_col));
		json_object_set_new(o, "rows", json_integer(ws.ws_row));
	}
}

int berth_client_exec_tty(struct berth_client *c, const char *path, json_t *command,
                          bool interactive)
{
	static const struct wslay_event_callbacks callbacks = {
	        .recv_callback = ws_recv,
	        .send_callback = ws_send,
	        .genmask_callback = ws_genmask,
	        .on_msg_recv_callback = on_msg,
	};
	struct session s = {.c = c, .exit_code = -1};
	unsigned char nonce[16];
	cleanup_free char *key = NULL;
	cleanup_free char *headers = NULL;
	struct sigaction sa;
	bool stdin_open = interactive;
	berth_error_t err;
	long status = 0;
	int ret;

	if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
		return berth_client_fail(&(berth_error_t){.message = "no random bytes"});
	key = berth_base64_encode(nonce, sizeof(nonce), NULL);
	headers = xasprintf("Upgrade: websocket\r\nSec-WebSocket-Key: %s\r\n"
	                    "Sec-WebSocket-Version: 13\r\n",
	                    key);
	if (berth_client_upgrade(c, path, headers, &s.leftover, &s.leftover_len, &status, &err) < 0)
		return berth_client_fail(&err);
	if (wslay_event_context_client_init(&s.ws, &callbacks, &s) != 0)
		abort(); /* out of memory, as the x-allocators */
	window_size(command);
	queue_json(&s, json_incref(command));
	if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_winch;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGWINCH, &sa, NULL);
	}
	if (interactive && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
		struct termios raw = saved_termios;
		termios_saved = true;
		atexit(restore_terminal);
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSADRAIN, &raw);
	}
	while (!s.closed) {
		struct pollfd p[3] = {
		        {.fd = berth_client_socket(c), .events = POLLIN},
		        {.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN},
		        {.fd = winch_pipe[0], .events = POLLIN},
		};
		if (wslay_event_want_write(s.ws))
			p[0].events |= POLLOUT;
		if (s.leftover_len > 0) {
			/* Frames that came with the answer's head: read them first. */
			if (wslay_event_recv(s.ws) != 0)
				break;
			continue;
		}
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents & POLLIN) {
			char drain[64];
			json_t *resize = json_pack("{s:s}", "type", "resize");
			while (read(winch_pipe[0], drain, sizeof(drain)) > 0)
				;
			window_size(resize);
			queue_json(&s, resize);
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			char buf[16384];
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n > 0) {
				queue(&s, WSLAY_BINARY_FRAME, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				/* The input's end, as a terminal says it: ^D. */
				stdin_open = false;
				queue(&s, WSLAY_BINARY_FRAME, "\x04", 1);
			}
		}
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && wslay_event_recv(s.ws) != 0)
			break;
		if (wslay_event_want_write(s.ws) && wslay_event_send(s.ws) != 0)
			break;
	}
	restore_terminal();
	wslay_event_context_free(s.ws);
	free(s.leftover);
	if (s.error != NULL && s.exit_code < 0) {
		fprintf(stderr, "berth: %s\n", s.error);
		/* As a shell says, and as berth exec without a terminal does. */
		ret = strstr(s.error, "executable not found") != NULL ? 127
		      : strstr(s.error, "permission denied executing") != NULL
		              ? 126
		              : BERTH_CLIENT_EXIT_FAILED;
	} else if (s.exit_code < 0) {
		fprintf(stderr, "berth: the connection ended before the command did\n");
		ret = BERTH_CLIENT_EXIT_FAILED;
	} else {
		ret = s.exit_code;
	}
	free(s.error);
	return ret;
}
