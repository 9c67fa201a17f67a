/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container logs in the CRI format (what kubelet and containerd write):
 *     2024-05-01T12:00:00.123456789Z stdout F hello
 * A record's header is read into a small buffer; its content is written on
 * as it arrives, so a long line costs no memory and `logs -f` shows it at
 * once. Each stream (stdout, stderr) has its own line in progress: the
 * writer may interleave the two while a line of one is split in P records.
 */
#include <errno.h>
#include <string.h>

#include "client/client.h"

void berth_cri_init(struct berth_cri *p, FILE *out, FILE *err_out, bool timestamps)
{
	memset(p, 0, sizeof(*p));
	p->out = out;
	p->err_out = err_out;
	p->timestamps = timestamps;
}

static int put(FILE *f, const char *data, size_t len)
{
	if (len > 0 && fwrite(data, 1, len, f) != len)
		return errno != 0 ? -errno : -EIO;
	return 0;
}

static FILE *stream_file(struct berth_cri *p)
{
	return p->stream == 0 ? p->out : p->err_out;
}

static void reset(struct berth_cri *p)
{
	p->header_len = 0;
	p->spaces = 0;
	p->in_content = false;
	p->raw = false;
	p->partial = false;
}

/*
 * The header "TIME STREAM TAG" (without the space after it) is complete:
 * take it as a record's, or pass it through as not CRI. The time is checked
 * only for being one word: it is shown as berthd wrote it.
 */
static int header_done(struct berth_cri *p)
{
	const char *h = p->header;
	const char *s1 = memchr(h, ' ', p->header_len);
	const char *s2 =
	        s1 != NULL ? memchr(s1 + 1, ' ', p->header_len - (size_t)(s1 + 1 - h)) : NULL;
	size_t stream_len, tag_len;
	const char *tag;

	if (s1 == NULL || s2 == NULL || s1 == h)
		goto raw;
	stream_len = (size_t)(s2 - s1 - 1);
	tag = s2 + 1;
	tag_len = p->header_len - (size_t)(tag - h);
	if (stream_len == 6 && memcmp(s1 + 1, "stdout", 6) == 0)
		p->stream = 0;
	else if (stream_len == 6 && memcmp(s1 + 1, "stderr", 6) == 0)
		p->stream = 1;
	else
		goto raw;
	if (tag_len != 1 || (tag[0] != 'F' && tag[0] != 'P'))
		goto raw;
	p->partial = tag[0] == 'P';
	p->in_content = true;
	/* A line's time is its first record's. */
	if (p->timestamps && !p->line_open[p->stream]) {
		int r = put(stream_file(p), h, (size_t)(s1 - h) + 1);
		if (r < 0)
			return r;
	}
	p->line_open[p->stream] = true;
	return 0;
raw:
	p->raw = true;
	return put(p->out, h, p->header_len);
}

/* The record's '\n': an F record ends its stream's line, a P record leaves it open. */
static int record_done(struct berth_cri *p)
{
	int r = 0;

	if (p->raw) {
		r = put(p->out, "\n", 1);
	} else if (p->in_content && !p->partial) {
		r = put(stream_file(p), "\n", 1);
		p->line_open[p->stream] = false;
	}
	reset(p);
	return r;
}

int berth_cri_feed(struct berth_cri *p, const char *data, size_t len)
{
	size_t i = 0;
	int r;

	while (i < len) {
		if (p->in_content || p->raw) {
			const char *nl = memchr(data + i, '\n', len - i);
			size_t n = nl != NULL ? (size_t)(nl - (data + i)) : len - i;

			r = put(p->in_content ? stream_file(p) : p->out, data + i, n);
			if (r < 0)
				return r;
			i += n;
			if (nl != NULL) {
				if ((r = record_done(p)) < 0)
					return r;
				i++;
			}
			continue;
		}
		/* The header, a byte at a time (it is short). */
		if (data[i] == '\n') {
			/* "TIME STREAM F" and no space: a record with empty content. */
			if ((r = header_done(p)) < 0 || (r = record_done(p)) < 0)
				return r;
		} else if (data[i] == ' ' && p->spaces == 2) {
			/* Passed through, the line keeps the space that ended its third word. */
			if ((r = header_done(p)) < 0 || (p->raw && (r = put(p->out, " ", 1)) < 0))
				return r;
		} else if (p->header_len == sizeof(p->header)) {
			/* Too long for a header: not CRI. The byte is written with the rest. */
			p->raw = true;
			if ((r = put(p->out, p->header, p->header_len)) < 0)
				return r;
			continue;
		} else {
			if (data[i] == ' ')
				p->spaces++;
			p->header[p->header_len++] = data[i];
		}
		i++;
	}
	return 0;
}

int berth_cri_finish(struct berth_cri *p)
{
	int r;

	/* A record cut short by the end of the stream ends as if its '\n' had come. */
	if (p->header_len > 0 && !p->in_content && !p->raw && (r = header_done(p)) < 0)
		return r;
	if ((p->in_content || p->raw) && (r = record_done(p)) < 0)
		return r;
	for (int s = 0; s < 2; s++) {
		if (p->line_open[s]) {
			p->line_open[s] = false;
			if ((r = put(s == 0 ? p->out : p->err_out, "\n", 1)) < 0)
				return r;
		}
	}
	return 0;
}
