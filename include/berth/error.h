/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error objects for multi-step operations (container setup, config loading).
 *
 * A fallible function takes a `berth_error_t *err` as its last argument and
 * returns a negative errno value on failure after filling `err`; each layer
 * that passes the failure up may prefix context with berth_error_wrap(). The
 * resulting message reads like
 *     start container `web`: mount proc on `/proc`: Permission denied
 * and is what a user sees. Messages are lowercase and name the object.
 * A message is always one line: control characters that reach it with a
 * value from a request, a file or a container (a newline in a duration
 * from the API, say) are shown as '?', so that a log line is never split
 * or forged by what it quotes.
 */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

#include <stddef.h>

#define BERTH_ERROR_MSG_MAX 1024

/*
 * What kind of failure, where a caller must tell them apart (the runtime
 * marks a command that could not be executed, which `berth run` reports
 * with status 126/127 instead of 125).
 */
enum berth_error_kind {
	BERTH_ERROR_KIND_NONE = 0,
	BERTH_ERROR_KIND_EXEC, /* the container's command could not be executed */
};

typedef struct berth_error {
	int code; /* errno value, or 0 when the failure has none */
	enum berth_error_kind kind;
	char message[BERTH_ERROR_MSG_MAX];
} berth_error_t;

/*
 * Fill `err` with a formatted message; when `errnum` is non-zero,
 * ": strerror(errnum)" is appended. Returns -errnum, or -EINVAL when errnum is
 * 0, so that callers can write `return berth_error_set(err, errno, ...)`.
 * `err` may be NULL (the message is dropped).
 */
int berth_error_set(berth_error_t *err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * Like berth_error_set(), for messages that already say what happened
 * ("container `web` is already running"): `errnum` is recorded as the code,
 * but not spelled out in the message.
 */
int berth_error_set_plain(berth_error_t *err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Prefix the message in `err` with "context: ". Returns -err->code or -EINVAL. */
int berth_error_wrap(berth_error_t *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Reset `err` to "no error" (kind NONE). */
void berth_error_clear(berth_error_t *err);

/* The return value that matches a filled `err`: -code, or -EINVAL when code is 0. */
int berth_error_ret(const berth_error_t *err);

#endif
