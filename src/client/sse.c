/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A reader of server-sent events (the WHATWG "event stream" format) fed as
 * bytes arrive: lines end with LF, CRLF or CR; `:` starts a comment (berthd's
 * keepalive); a blank line dispatches the event gathered so far.
 */
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "client/client.h"

void berth_sse_init(struct berth_sse *p, berth_sse_event_fn fn, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->fn = fn;
	p->arg = arg;
}

void berth_sse_free(struct berth_sse *p)
{
	free(p->line);
	free(p->id);
	free(p->type);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

static int dispatch(struct berth_sse *p, berth_error_t *err)
{
	int r;

	/* An event without data is no event (the format's rule), but its type is spent. */
	if (p->data == NULL) {
		free(p->type);
		p->type = NULL;
		return 0;
	}
	/* The data lines were each followed by '\n'; the last one is not part of it. */
	p->data[--p->data_len] = '\0';
	r = p->fn(p->id != NULL ? p->id : "", p->type != NULL ? p->type : "message", p->data,
	          p->arg, err);
	free(p->type);
	free(p->data);
	p->type = NULL;
	p->data = NULL;
	p->data_len = 0;
	return r;
}

static int line(struct berth_sse *p, berth_error_t *err)
{
	const char *l = p->line != NULL ? p->line : "";
	const char *colon, *value;
	size_t name_len;

	if (p->line_len == 0)
		return dispatch(p, err);
	if (l[0] == ':')
		return 0;
	colon = memchr(l, ':', p->line_len);
	name_len = colon != NULL ? (size_t)(colon - l) : p->line_len;
	value = colon != NULL ? colon + 1 : l + p->line_len;
	if (*value == ' ')
		value++;
	if (name_len == 4 && memcmp(l, "data", 4) == 0) {
		size_t vl = strlen(value);
		if (p->data_len + vl + 1 > BERTH_SSE_LINE_MAX)
			return berth_error_set(err, 0, "an event's data is longer than %d bytes",
			                       BERTH_SSE_LINE_MAX);
		p->data = xrealloc(p->data, p->data_len + vl + 2);
		memcpy(p->data + p->data_len, value, vl);
		p->data_len += vl;
		p->data[p->data_len++] = '\n';
		p->data[p->data_len] = '\0';
	} else if (name_len == 5 && memcmp(l, "event", 5) == 0) {
		free(p->type);
		p->type = xstrdup(value);
	} else if (name_len == 2 && memcmp(l, "id", 2) == 0) {
		free(p->id);
		p->id = xstrdup(value);
	}
	/* Other fields (retry) mean nothing to a one-shot reader. */
	return 0;
}

int berth_sse_feed(struct berth_sse *p, const char *data, size_t len, berth_error_t *err)
{
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];

		if (p->skip_lf) {
			p->skip_lf = false;
			if (ch == '\n')
				continue;
		}
		if (ch == '\r' || ch == '\n') {
			int r = line(p, err);
			p->line_len = 0;
			p->skip_lf = ch == '\r';
			if (r < 0)
				return r;
			continue;
		}
		if (ch == '\0')
			return berth_error_set(err, 0, "the event stream contains a NUL byte");
		if (p->line_len + 1 >= BERTH_SSE_LINE_MAX)
			return berth_error_set(err, 0,
			                       "a line of the event stream is longer than %d bytes",
			                       BERTH_SSE_LINE_MAX);
		if (p->line_len + 2 > p->line_cap) {
			p->line_cap = p->line_cap == 0 ? 256 : p->line_cap * 2;
			p->line = xrealloc(p->line, p->line_cap);
		}
		p->line[p->line_len++] = ch;
		p->line[p->line_len] = '\0';
	}
	return 0;
}
