/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Message heads for the proxy (see proxy.h): stored as slices of one buffer
 * per connection, reused from request to request, so parsing a head costs
 * copies and no allocations once the buffers have grown; and rewritten for
 * the other side into one buffer, which goes out in one write with the body
 * bytes that follow it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "berth/util.h"
#include "http/http.h"
#include "proxy/proxy.h"

/* ---- buffers ---- */

int berth_proxy_buf_add(struct berth_proxy_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->max)
		return -E2BIG;
	if (b->len + n > b->cap) {
		size_t cap = b->cap > 0 ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int berth_proxy_buf_str(struct berth_proxy_buf *b, const char *s)
{
	return berth_proxy_buf_add(b, s, strlen(s));
}

void berth_proxy_buf_free(struct berth_proxy_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- heads ---- */

void berth_proxy_head_init(struct berth_proxy_head *h, size_t max_bytes, size_t max_fields)
{
	memset(h, 0, sizeof(*h));
	h->buf.max = max_bytes;
	h->max_fields = max_fields;
}

void berth_proxy_head_reset(struct berth_proxy_head *h)
{
	h->buf.len = 0;
	h->n_fields = 0;
	h->target = h->target_len = 0;
	h->in_value = false;
}

void berth_proxy_head_free(struct berth_proxy_head *h)
{
	berth_proxy_buf_free(&h->buf);
	free(h->fields);
	h->fields = NULL;
	h->n_fields = h->cap_fields = 0;
}

int berth_proxy_head_target(struct berth_proxy_head *h, const char *at, size_t n)
{
	if (h->target_len == 0)
		h->target = (uint32_t)h->buf.len;
	if (berth_proxy_buf_add(&h->buf, at, n) < 0)
		return -E2BIG;
	h->target_len += (uint32_t)n;
	return 0;
}

int berth_proxy_head_name(struct berth_proxy_head *h, const char *at, size_t n)
{
	struct berth_proxy_field *f;

	if (h->n_fields == 0 || h->in_value) {
		if (h->n_fields == h->max_fields)
			return -E2BIG;
		if (h->n_fields == h->cap_fields) {
			h->cap_fields = h->cap_fields > 0 ? h->cap_fields * 2 : 32;
			h->fields = xrealloc(h->fields, h->cap_fields * sizeof(*h->fields));
		}
		f = &h->fields[h->n_fields++];
		f->name = (uint32_t)h->buf.len;
		f->name_len = f->value = f->value_len = 0;
		h->in_value = false;
	}
	f = &h->fields[h->n_fields - 1];
	if (berth_proxy_buf_add(&h->buf, at, n) < 0)
		return -E2BIG;
	f->name_len += (uint32_t)n;
	return 0;
}

int berth_proxy_head_value(struct berth_proxy_head *h, const char *at, size_t n)
{
	struct berth_proxy_field *f;

	if (h->n_fields == 0)
		return -EINVAL;
	f = &h->fields[h->n_fields - 1];
	if (!h->in_value) {
		h->in_value = true;
		f->value = (uint32_t)h->buf.len;
	}
	if (berth_proxy_buf_add(&h->buf, at, n) < 0)
		return -E2BIG;
	f->value_len += (uint32_t)n;
	return 0;
}

static bool name_is(const struct berth_proxy_head *h, size_t i, const char *name, size_t len)
{
	return h->fields[i].name_len == len &&
	       strncasecmp(h->buf.data + h->fields[i].name, name, len) == 0;
}

const char *berth_proxy_head_get(const struct berth_proxy_head *h, const char *name, size_t *len)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < h->n_fields; i++) {
		if (name_is(h, i, name, nl)) {
			*len = h->fields[i].value_len;
			return h->buf.data + h->fields[i].value;
		}
	}
	*len = 0;
	return NULL;
}

size_t berth_proxy_head_count(const struct berth_proxy_head *h, const char *name)
{
	size_t nl = strlen(name), n = 0;

	for (size_t i = 0; i < h->n_fields; i++)
		n += name_is(h, i, name, nl);
	return n;
}

size_t berth_proxy_head_clean(struct berth_proxy_head *h)
{
	size_t kept = 0;

	for (size_t i = 0; i < h->n_fields; i++) {
		struct berth_proxy_field f = h->fields[i];
		char *v = h->buf.data + f.value;

		/* http-parser lets any byte start a value; RFC 9110 5.5 allows SP for it. */
		for (uint32_t k = 0; k < f.value_len; k++)
			if (berth_http_is_ctl(v[k]))
				v[k] = ' ';

		while (f.name_len > 0 && (h->buf.data[f.name + f.name_len - 1] == ' ' ||
		                          h->buf.data[f.name + f.name_len - 1] == '\t'))
			f.name_len--;
		if (berth_http_is_token(h->buf.data + f.name, f.name_len))
			h->fields[kept++] = f;
	}
	kept = h->n_fields - kept;
	h->n_fields -= kept;
	return kept;
}

/* ---- the raw head's line structure ---- */

int berth_proxy_scan_head(struct berth_proxy_scan *s, const char *p, size_t n, size_t *end,
                          const char **why)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (s->state == 1) {
			/* after a CR */
			if (c != '\n') {
				*why = "a bare CR in the request head";
				return -EPROTO;
			}
			s->state = 0;
			if (s->line_len == 0 && s->started) {
				*end = i + 1;
				*s = (struct berth_proxy_scan){0};
				return 1;
			}
			s->line_len = 0;
			continue;
		}
		if (c == '\r') {
			s->state = 1;
			continue;
		}
		if (c == '\n') {
			*why = "a bare LF in the request head";
			return -EPROTO;
		}
		if (s->line_len == 0 && s->started && (c == ' ' || c == '\t')) {
			*why = "an obs-fold (a header line continued on the next)";
			return -EPROTO;
		}
		/*
		 * RFC 9110 5.5: no controls but HTAB in a field. http-parser
		 * refuses them inside a value but not as its first byte (a NUL
		 * included), and would hand them on.
		 */
		if (berth_http_is_ctl(c)) {
			*why = "a control character in the request head";
			return -EPROTO;
		}
		s->line_len++;
		s->started = true;
	}
	*end = n;
	return 0;
}

/* ---- rewriting ---- */

#define MAX_TOKENS 16

struct tokens {
	struct {
		const char *p;
		size_t len;
	} t[MAX_TOKENS];
	size_t n;
};

/* The names a Connection header lists (those headers are hop-by-hop too). */
static void connection_tokens(const struct berth_proxy_head *h, struct tokens *tk)
{
	tk->n = 0;
	for (size_t i = 0; i < h->n_fields; i++) {
		const char *v, *end;

		if (!name_is(h, i, "connection", 10))
			continue;
		v = berth_proxy_field_value(h, i);
		end = v + h->fields[i].value_len;
		while (v < end && tk->n < MAX_TOKENS) {
			const char *s, *e;

			while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
				v++;
			s = v;
			while (v < end && *v != ',')
				v++;
			e = v;
			while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (e > s) {
				tk->t[tk->n].p = s;
				tk->t[tk->n].len = (size_t)(e - s);
				tk->n++;
			}
		}
	}
}

static bool token_listed(const struct tokens *tk, const char *name, size_t len)
{
	for (size_t i = 0; i < tk->n; i++)
		if (tk->t[i].len == len && strncasecmp(tk->t[i].p, name, len) == 0)
			return true;
	return false;
}

/* RFC 9110 7.6.1's hop-by-hop headers, and every Proxy-* one. */
static bool hop_by_hop(const char *name, size_t len)
{
	static const struct {
		const char *name;
		size_t len;
	} hop[] = {
	        {"connection", 10}, {"keep-alive", 10}, {"te", 2},
	        {"trailer", 7},     {"upgrade", 7},     {"transfer-encoding", 17},
	};

	if (len >= 6 && strncasecmp(name, "proxy-", 6) == 0)
		return true;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(hop); i++)
		if (hop[i].len == len && strncasecmp(name, hop[i].name, len) == 0)
			return true;
	return false;
}

static bool is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static int add_field(struct berth_proxy_buf *out, const struct berth_proxy_head *h, size_t i)
{
	const struct berth_proxy_field *f = &h->fields[i];

	if (berth_proxy_buf_add(out, h->buf.data + f->name, f->name_len) < 0 ||
	    berth_proxy_buf_add(out, ": ", 2) < 0 ||
	    berth_proxy_buf_add(out, h->buf.data + f->value, f->value_len) < 0 ||
	    berth_proxy_buf_add(out, "\r\n", 2) < 0)
		return -E2BIG;
	return 0;
}

static int add_length(struct berth_proxy_buf *out, uint64_t n)
{
	char line[48];
	int len = snprintf(line, sizeof(line), "Content-Length: %llu\r\n", (unsigned long long)n);

	return berth_proxy_buf_add(out, line, (size_t)len);
}

int berth_proxy_build_request(const struct berth_proxy_head *h, const struct berth_proxy_request *r,
                              struct berth_proxy_buf *out)
{
	struct tokens tk;
	bool have_host = false, have_xff = false;
	const char *host = NULL;
	size_t host_len = 0;
	int e = 0;

	connection_tokens(h, &tk);
	e |= berth_proxy_buf_str(out, r->method);
	e |= berth_proxy_buf_add(out, " ", 1);
	e |= berth_proxy_buf_add(out, r->target, r->target_len);
	e |= berth_proxy_buf_add(out, " HTTP/1.1\r\n", 11);
	for (size_t i = 0; i < h->n_fields; i++) {
		const char *name = berth_proxy_field_name(h, i);
		size_t len = h->fields[i].name_len;

		if (hop_by_hop(name, len) || token_listed(&tk, name, len) ||
		    is(name, len, "content-length") || is(name, len, "expect") ||
		    is(name, len, "x-forwarded-proto") || is(name, len, "x-forwarded-host") ||
		    is(name, len, "x-forwarded-for"))
			continue;
		if (is(name, len, "host")) {
			have_host = true;
			host = berth_proxy_field_value(h, i);
			host_len = h->fields[i].value_len;
		}
		e |= add_field(out, h, i);
	}
	if (!have_host)
		e |= berth_proxy_buf_str(out, "Host: localhost\r\n");
	/* Every earlier hop's X-Forwarded-For, in order, then the client. */
	for (size_t i = 0; i < h->n_fields; i++) {
		if (!name_is(h, i, "x-forwarded-for", 15) || h->fields[i].value_len == 0)
			continue;
		e |= berth_proxy_buf_str(out, have_xff ? ", " : "X-Forwarded-For: ");
		e |= berth_proxy_buf_add(out, berth_proxy_field_value(h, i),
		                         h->fields[i].value_len);
		have_xff = true;
	}
	e |= berth_proxy_buf_str(out, have_xff ? ", " : "X-Forwarded-For: ");
	e |= berth_proxy_buf_str(out, r->client_ip);
	e |= berth_proxy_buf_str(out, "\r\nX-Forwarded-Proto: ");
	e |= berth_proxy_buf_str(out, r->proto);
	e |= berth_proxy_buf_add(out, "\r\n", 2);
	if (host != NULL) {
		e |= berth_proxy_buf_str(out, "X-Forwarded-Host: ");
		e |= berth_proxy_buf_add(out, host, host_len);
		e |= berth_proxy_buf_add(out, "\r\n", 2);
	}
	if (r->framing == BERTH_PROXY_BODY_LENGTH)
		e |= add_length(out, r->length);
	else if (r->framing == BERTH_PROXY_BODY_CHUNKED)
		e |= berth_proxy_buf_str(out, "Transfer-Encoding: chunked\r\n");
	if (r->websocket)
		e |= berth_proxy_buf_str(out, "Connection: upgrade\r\nUpgrade: websocket\r\n");
	e |= berth_proxy_buf_add(out, "\r\n", 2);
	return e != 0 ? -E2BIG : 0;
}

int berth_proxy_end_to_end_fields(const struct berth_proxy_head *h, bool keep_length,
                                  bool keep_upgrade, struct berth_proxy_buf *out)
{
	struct tokens tk;
	int e = 0;

	connection_tokens(h, &tk);
	for (size_t i = 0; i < h->n_fields; i++) {
		const char *name = berth_proxy_field_name(h, i);
		size_t len = h->fields[i].name_len;

		if (keep_upgrade && is(name, len, "upgrade")) {
			e |= add_field(out, h, i);
			continue;
		}
		if (hop_by_hop(name, len) || token_listed(&tk, name, len))
			continue;
		if (is(name, len, "content-length") && !keep_length)
			continue;
		e |= add_field(out, h, i);
	}
	return e != 0 ? -E2BIG : 0;
}

int berth_proxy_build_response(const struct berth_proxy_head *h,
                               const struct berth_proxy_response *r, struct berth_proxy_buf *out)
{
	char line[64];
	int e = 0, n;

	n = snprintf(line, sizeof(line), "HTTP/1.1 %u ", r->status);
	e |= berth_proxy_buf_add(out, line, (size_t)n);
	if (r->reason != NULL && r->reason_len > 0)
		e |= berth_proxy_buf_add(out, r->reason, r->reason_len);
	else
		e |= berth_proxy_buf_str(out, berth_http_reason((int)r->status));
	e |= berth_proxy_buf_add(out, "\r\n", 2);
	/* The proxy frames the body; a HEAD's or 304's length stays as said. */
	e |= berth_proxy_end_to_end_fields(h, r->framing == BERTH_PROXY_BODY_NONE, false, out);
	if (r->framing == BERTH_PROXY_BODY_LENGTH)
		e |= add_length(out, r->length);
	else if (r->framing == BERTH_PROXY_BODY_CHUNKED)
		e |= berth_proxy_buf_str(out, "Transfer-Encoding: chunked\r\n");
	if (r->upgrade)
		e |= berth_proxy_buf_str(out, "Connection: upgrade\r\nUpgrade: websocket\r\n");
	else if (!r->keep_alive)
		e |= berth_proxy_buf_str(out, "Connection: close\r\n");
	else if (r->http10)
		e |= berth_proxy_buf_str(out, "Connection: keep-alive\r\n");
	e |= berth_proxy_buf_add(out, "\r\n", 2);
	return e != 0 ? -E2BIG : 0;
}

size_t berth_proxy_chunk_line(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char tmp[16];
	size_t len = 0, i = 0;

	do {
		tmp[len++] = hex[n & 15];
		n >>= 4;
	} while (n > 0);
	while (len > 0)
		out[i++] = tmp[--len];
	out[i++] = '\r';
	out[i++] = '\n';
	return i;
}

int berth_proxy_build_error(unsigned status, const char *code, const char *extra,
                            const char *message, struct berth_proxy_buf *out)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %u %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                 "X-Berth-Error: %s\r\nContent-Length: %zu\r\nConnection: close\r\n",
	                 status, berth_http_reason((int)status), code, strlen(message) + 8);
	int e = 0;

	e |= berth_proxy_buf_add(out, head, (size_t)n);
	if (extra != NULL)
		e |= berth_proxy_buf_str(out, extra);
	e |= berth_proxy_buf_str(out, "\r\nberth: ");
	e |= berth_proxy_buf_str(out, message);
	e |= berth_proxy_buf_add(out, "\n", 1);
	return e != 0 ? -E2BIG : 0;
}
