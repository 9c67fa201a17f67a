/* SPDX-License-Identifier: Apache-2.0 */
/* Records on the report pipe between the helper's side and the caller. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "berth/fs.h"
#include "runtime-internal.h"

struct wire {
	uint32_t type;
	int32_t value; /* PID, HELPER: the pid; ERROR: errno */
	uint32_t kind;
	uint32_t len; /* bytes of message that follow */
};

_Static_assert(sizeof(struct wire) + BERTH_ERROR_MSG_MAX <= PIPE_BUF,
               "a report record must fit one atomic pipe write");

static void send_record(int fd, uint32_t type, int32_t value, uint32_t kind, const char *msg)
{
	char buf[sizeof(struct wire) + BERTH_ERROR_MSG_MAX];
	struct wire w = {.type = type, .value = value, .kind = kind};

	w.len = msg != NULL ? (uint32_t)strnlen(msg, BERTH_ERROR_MSG_MAX - 1) : 0;
	memcpy(buf, &w, sizeof(w));
	if (w.len > 0)
		memcpy(buf + sizeof(w), msg, w.len);
	/* Nothing to do if the reader is gone: it has given up on us. */
	(void)berth_write_all(fd, buf, sizeof(w) + w.len);
}

void berth_report_pid(int fd, pid_t pid)
{
	send_record(fd, BERTH_REPORT_PID, (int32_t)pid, 0, NULL);
}

void berth_report_helper(int fd, pid_t pid)
{
	send_record(fd, BERTH_REPORT_HELPER, (int32_t)pid, 0, NULL);
}

void berth_report_error(int fd, const berth_error_t *err)
{
	send_record(fd, BERTH_REPORT_ERROR, err->code, (uint32_t)err->kind, err->message);
}

int berth_report_read(int fd, struct berth_report *rec)
{
	struct wire w;
	ssize_t n;

	memset(rec, 0, sizeof(*rec));
	n = berth_read_all(fd, &w, sizeof(w));
	if (n < 0)
		return (int)n;
	if (n == 0)
		return 0;
	if ((size_t)n != sizeof(w) || w.len >= BERTH_ERROR_MSG_MAX)
		return -EPROTO;
	rec->type = (enum berth_report_type)w.type;
	if (w.type == BERTH_REPORT_PID || w.type == BERTH_REPORT_HELPER) {
		rec->pid = (pid_t)w.value;
		return 1;
	}
	if (w.type != BERTH_REPORT_ERROR)
		return -EPROTO;
	n = berth_read_all(fd, rec->error.message, w.len);
	if (n != (ssize_t)w.len)
		return n < 0 ? (int)n : -EPROTO;
	rec->error.message[w.len] = '\0';
	rec->error.code = w.value;
	rec->error.kind = (enum berth_error_kind)w.kind;
	return 1;
}
