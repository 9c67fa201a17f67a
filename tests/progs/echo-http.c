/*
 * echo-server: HTTP/1.x request parsing, body decoding and the routes.
 *
 * The parser is deliberately small and strict (this is a test peer, not
 * berth's proxy): one request line, token header names, no obs-fold, CRLF or
 * bare LF line ends, Content-Length or chunked but never both. Anything else
 * is a 400 and the connection is closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/base16.h>
#include <nettle/base64.h>

#include "echo-server.h"

#define LINE_MAX_BYTES    4096
#define TRAILER_MAX_BYTES 65536
#define DELAY_MAX_MS      3600000ULL

/* Chunked request body decoder phases. */
enum { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };

struct slice {
	const char *p;
	size_t n;
};

struct header {
	struct slice name;
	struct slice value;
};

struct head {
	struct slice method;
	struct slice target;
	struct slice path;
	struct slice query;
	bool http10;
	size_t n_headers;
	struct header headers[ECHO_MAX_HEADERS];
};

static const struct {
	const char *path;
	enum echo_route route;
} routes[] = {
        {"/echo-body", ECHO_ROUTE_ECHO_BODY}, {"/chunked", ECHO_ROUTE_CHUNKED},
        {"/bytes", ECHO_ROUTE_BYTES},         {"/slow", ECHO_ROUTE_SLOW},
        {"/status", ECHO_ROUTE_STATUS},       {"/close", ECHO_ROUTE_CLOSE},
        {"/half", ECHO_ROUTE_HALF},           {"/ws", ECHO_ROUTE_WS},
        {"/health", ECHO_ROUTE_HEALTH},
};

static const struct {
	unsigned code;
	const char *reason;
} reasons[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {418, "I'm a teapot"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Content"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
};

/* A 64-byte line, repeated, is the body of /bytes, /chunked and /half:
 * easy to check by eye, and `wc -l` counts it. */
static const char pattern[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ.\n";
#define PATTERN_LEN (sizeof(pattern) - 1)

static const char *reason_of(unsigned code)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (reasons[i].code == code)
			return reasons[i].reason;
	}
	return "Unknown";
}

static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool slice_eq(struct slice s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static bool slice_caseeq(struct slice s, const char *lit)
{
	return s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0;
}

static struct slice trim(struct slice s)
{
	while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
		s.n--;
	return s;
}

/* The first value of a header, or an empty slice with p == NULL. */
static struct slice header_get(const struct head *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n_headers; i++) {
		if (slice_caseeq(h->headers[i].name, name))
			return h->headers[i].value;
	}
	return (struct slice){NULL, 0};
}

/* Whether any `name` header lists `token` in its comma-separated value. */
static bool header_has_token(const struct head *h, const char *name, const char *token)
{
	size_t i;

	for (i = 0; i < h->n_headers; i++) {
		struct slice v = h->headers[i].value;

		if (!slice_caseeq(h->headers[i].name, name))
			continue;
		while (v.n > 0) {
			const char *comma = memchr(v.p, ',', v.n);
			size_t len = comma ? (size_t)(comma - v.p) : v.n;

			if (slice_caseeq(trim((struct slice){v.p, len}), token))
				return true;
			v.p += comma ? len + 1 : len;
			v.n -= comma ? len + 1 : len;
		}
	}
	return false;
}

/* Parses one line [p, end) that ended in LF (not included), dropping a CR
 * before it. Returns 0 or an HTTP status. */
static unsigned parse_request_line(struct slice line, struct head *h)
{
	const char *sp1 = memchr(line.p, ' ', line.n), *sp2, *q;
	struct slice version;
	size_t i;

	if (!sp1)
		return 400;
	h->method = (struct slice){line.p, (size_t)(sp1 - line.p)};
	sp2 = memchr(sp1 + 1, ' ', (size_t)(line.p + line.n - sp1 - 1));
	if (!sp2 || h->method.n == 0)
		return 400;
	h->target = (struct slice){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
	version = (struct slice){sp2 + 1, (size_t)(line.p + line.n - sp2 - 1)};
	for (i = 0; i < h->method.n; i++) {
		if (!is_tchar((unsigned char)h->method.p[i]))
			return 400;
	}
	if (h->target.n == 0)
		return 400;
	for (i = 0; i < h->target.n; i++) {
		unsigned char ch = (unsigned char)h->target.p[i];

		if (ch <= ' ' || ch == 0x7f)
			return 400;
	}
	if (slice_eq(version, "HTTP/1.1"))
		h->http10 = false;
	else if (slice_eq(version, "HTTP/1.0"))
		h->http10 = true;
	else if (version.n == 8 && memcmp(version.p, "HTTP/", 5) == 0)
		return 505;
	else
		return 400;
	q = memchr(h->target.p, '?', h->target.n);
	h->path = (struct slice){h->target.p, q ? (size_t)(q - h->target.p) : h->target.n};
	h->query = q ? (struct slice){q + 1, (size_t)(h->target.p + h->target.n - q - 1)}
	             : (struct slice){"", 0};
	return 0;
}

static unsigned parse_header_line(struct slice line, struct head *h)
{
	const char *colon = memchr(line.p, ':', line.n);
	struct header *hd;
	size_t i;

	/* A continuation line (obs-fold) starts with whitespace. */
	if (!colon || colon == line.p)
		return 400;
	if (h->n_headers == ECHO_MAX_HEADERS)
		return 431;
	hd = &h->headers[h->n_headers++];
	hd->name = (struct slice){line.p, (size_t)(colon - line.p)};
	hd->value = trim((struct slice){colon + 1, (size_t)(line.p + line.n - colon - 1)});
	for (i = 0; i < hd->name.n; i++) {
		if (!is_tchar((unsigned char)hd->name.p[i]))
			return 400;
	}
	for (i = 0; i < hd->value.n; i++) {
		unsigned char ch = (unsigned char)hd->value.p[i];

		if ((ch < ' ' && ch != '\t') || ch == 0x7f)
			return 400;
	}
	return 0;
}

/* Parses a complete head of len bytes (ending in its blank line). */
static unsigned parse_head(const char *p, size_t len, struct head *h)
{
	const char *end = p + len;
	bool first = true;

	h->n_headers = 0;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		struct slice line = {p, (size_t)(lf - p)};
		unsigned status;

		if (line.n > 0 && line.p[line.n - 1] == '\r')
			line.n--;
		p = lf + 1;
		if (line.n == 0)
			return first ? 400 : 0;
		status = first ? parse_request_line(line, h) : parse_header_line(line, h);
		if (status)
			return status;
		first = false;
	}
	return 400;
}

/* Finds the blank line that ends a head. Returns the head's length, or 0. */
static size_t head_length(const char *p, size_t len)
{
	const char *end = p + len, *lf = p;

	while ((lf = memchr(lf, '\n', (size_t)(end - lf))) != NULL) {
		lf++;
		if (lf < end && *lf == '\n')
			return (size_t)(lf + 1 - p);
		if (lf + 1 < end && lf[0] == '\r' && lf[1] == '\n')
			return (size_t)(lf + 2 - p);
	}
	return 0;
}

/* Looks up a decimal query parameter: 1 found, 0 absent, -1 malformed. */
static int query_uint(struct slice query, const char *key, uint64_t max, uint64_t *out)
{
	size_t klen = strlen(key);
	const char *p = query.p, *end = query.p + query.n;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;

		if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			uint64_t v = 0;
			const char *d = p + klen + 1;

			if (d == stop)
				return -1;
			for (; d < stop; d++) {
				if (*d < '0' || *d > '9' || v > (max - (uint64_t)(*d - '0')) / 10)
					return -1;
				v = v * 10 + (uint64_t)(*d - '0');
			}
			*out = v;
			return 1;
		}
		p = stop + 1;
	}
	return 0;
}

/* Writes s as a JSON string. Bytes that are not valid UTF-8 become U+FFFD,
 * so the document always parses. */
static void json_string(struct echo_buf *b, const char *s, size_t n)
{
	size_t i = 0;

	echo_buf_append(b, "\"", 1);
	while (i < n) {
		unsigned char ch = (unsigned char)s[i];
		size_t len = 0, k;

		if (ch == '"' || ch == '\\') {
			echo_buf_printf(b, "\\%c", ch);
			i++;
			continue;
		}
		if (ch < 0x20 || ch == 0x7f) {
			echo_buf_printf(b, "\\u%04x", ch);
			i++;
			continue;
		}
		if (ch < 0x80) {
			echo_buf_append(b, &s[i++], 1);
			continue;
		}
		if (ch >= 0xc2 && ch <= 0xdf)
			len = 2;
		else if (ch >= 0xe0 && ch <= 0xef)
			len = 3;
		else if (ch >= 0xf0 && ch <= 0xf4)
			len = 4;
		for (k = 1; len && k < len; k++) {
			if (i + k >= n || ((unsigned char)s[i + k] & 0xc0) != 0x80)
				len = 0;
		}
		/* Overlong forms, surrogates and code points past U+10FFFF. */
		if (len == 3 && ((ch == 0xe0 && (unsigned char)s[i + 1] < 0xa0) ||
		                 (ch == 0xed && (unsigned char)s[i + 1] >= 0xa0)))
			len = 0;
		if (len == 4 && ((ch == 0xf0 && (unsigned char)s[i + 1] < 0x90) ||
		                 (ch == 0xf4 && (unsigned char)s[i + 1] >= 0x90)))
			len = 0;
		if (len == 0) {
			echo_buf_append(b, "\\ufffd", 6);
			i++;
			continue;
		}
		echo_buf_append(b, &s[i], len);
		i += len;
	}
	echo_buf_append(b, "\"", 1);
}

static bool same_name(struct slice a, struct slice b)
{
	return a.n == b.n && strncasecmp(a.p, b.p, a.n) == 0;
}

/* Writes `"name":"value"` for header i: the name in lower case, and the
 * values of all headers of that name joined by ", ", as a list-valued field
 * would be. */
static void json_header(struct echo_buf *b, const struct head *h, size_t i)
{
	struct slice name = h->headers[i].name;
	struct echo_buf tmp = {0};
	bool first = true;
	size_t j;

	for (j = 0; j < name.n; j++) {
		char ch = name.p[j];

		ch = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
		echo_buf_append(&tmp, &ch, 1);
	}
	json_string(b, tmp.data, tmp.len);
	echo_buf_append(b, ":", 1);
	echo_buf_reset(&tmp);
	for (j = i; j < h->n_headers; j++) {
		if (!same_name(h->headers[j].name, name))
			continue;
		if (!first)
			echo_buf_append(&tmp, ", ", 2);
		echo_buf_append(&tmp, h->headers[j].value.p, h->headers[j].value.n);
		first = false;
	}
	json_string(b, tmp.data ? tmp.data : "", tmp.len);
	echo_buf_free(&tmp);
}

/* The part of the echo document known once the head is parsed. */
static void json_begin(struct echo_buf *b, const struct head *h)
{
	size_t i, j;

	echo_buf_reset(b);
	echo_buf_append(b, "{\"method\":", 10);
	json_string(b, h->method.p, h->method.n);
	echo_buf_append(b, ",\"path\":", 8);
	json_string(b, h->path.p, h->path.n);
	echo_buf_append(b, ",\"query\":", 9);
	json_string(b, h->query.p, h->query.n);
	echo_buf_printf(b, ",\"version\":\"HTTP/1.%d\",\"headers\":{", h->http10 ? 0 : 1);
	for (i = 0; i < h->n_headers; i++) {
		bool seen = false;

		/* Each name once, where it first appears. */
		for (j = 0; j < i && !seen; j++)
			seen = same_name(h->headers[i].name, h->headers[j].name);
		if (seen)
			continue;
		if (b->data[b->len - 1] != '{')
			echo_buf_append(b, ",", 1);
		json_header(b, h, i);
	}
	echo_buf_append(b, "},", 2);
}

/* Queues a response head. length: the Content-Length, or -1 for chunked,
 * or -2 for none (204, 304, 101). extra: more header lines, CRLF-ended. */
static void respond_head(struct echo_conn *c, unsigned status, const char *type, int64_t length,
                         const char *extra)
{
	struct echo_buf *o = &c->out;

	echo_buf_printf(o, "HTTP/1.1 %u %s\r\n", status, reason_of(status));
	if (type)
		echo_buf_printf(o, "Content-Type: %s\r\n", type);
	if (length >= 0)
		echo_buf_printf(o, "Content-Length: %lld\r\n", (long long)length);
	else if (length == -1)
		echo_buf_printf(o, "Transfer-Encoding: chunked\r\n");
	echo_buf_printf(o, "X-Echo-Connection-Id: %llu\r\nX-Echo-Requests-On-Connection: %llu\r\n",
	                (unsigned long long)c->id, (unsigned long long)c->requests);
	if (status != 101 && !c->req.keep_alive)
		echo_buf_printf(o, "Connection: close\r\n");
	echo_buf_printf(o, "%s\r\n", extra ? extra : "");
}

static void finish_response(struct echo_conn *c)
{
	c->state = c->req.keep_alive && !c->eof ? ECHO_READ_HEAD : ECHO_DRAIN;
}

static void respond_full(struct echo_conn *c, unsigned status, const char *type, const char *body,
                         size_t len, const char *extra)
{
	bool no_body = status == 204 || status == 304;

	respond_head(c, status, no_body ? NULL : type, no_body ? -2 : (int64_t)len, extra);
	if (!no_body && !c->req.head_only)
		echo_buf_append(&c->out, body, len);
	finish_response(c);
}

/* Refuses a request and closes the connection after the answer. */
static int respond_error(struct echo_conn *c, unsigned status, const char *why, const char *extra)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%u %s: %s\n", status, reason_of(status), why);

	c->req.keep_alive = false;
	respond_full(c, status, "text/plain", body, (size_t)n, extra);
	return 1;
}

static void fill_pattern(struct echo_conn *c, size_t n)
{
	char *p = echo_buf_reserve(&c->out, n);
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = pattern[(c->req.gen_offset + i) % PATTERN_LEN];
	c->req.gen_offset += n;
	c->out.len += n;
}

/* Produces response body up to the output high-water mark. */
static int generate(struct echo_conn *c)
{
	struct echo_request *r = &c->req;
	bool done = false;
	int progress = 0;

	if (c->deadline_ms != 0)
		return 0;
	while (!done && echo_buf_pending(&c->out) < ECHO_OUT_HIGH) {
		progress = 1;
		if (r->gen_left > 0) {
			size_t room = ECHO_OUT_HIGH - echo_buf_pending(&c->out);
			size_t n = r->gen_left < room ? (size_t)r->gen_left : room;

			fill_pattern(c, n);
			r->gen_left -= n;
			continue;
		}
		if (r->route != ECHO_ROUTE_CHUNKED || r->head_only) {
			done = true;
			break;
		}
		if (r->gen_in_chunk) {
			if (!r->unframed)
				echo_buf_append(&c->out, "\r\n", 2);
			r->gen_in_chunk = false;
			if (--r->gen_chunks > 0 && r->delay_ms > 0) {
				echo_conn_set_timer(c, r->delay_ms);
				return 1;
			}
			continue;
		}
		if (r->gen_chunks == 0) {
			if (!r->unframed)
				echo_buf_append(&c->out, "0\r\n\r\n", 5);
			done = true;
			break;
		}
		if (!r->unframed)
			echo_buf_printf(&c->out, "%llx\r\n", (unsigned long long)r->size);
		r->gen_left = r->size;
		r->gen_in_chunk = true;
	}
	if (done)
		finish_response(c);
	return progress;
}

static void respond_echo(struct echo_conn *c)
{
	struct echo_request *r = &c->req;
	uint8_t digest[SHA256_DIGEST_SIZE];
	char hex[BASE16_ENCODE_LENGTH(SHA256_DIGEST_SIZE) + 1];

	sha256_digest(&r->sha, sizeof(digest), digest);
	base16_encode_update(hex, sizeof(digest), digest);
	hex[sizeof(hex) - 1] = '\0';
	echo_buf_printf(&r->json, "\"body_length\":%llu,\"body_sha256\":\"%s\",\"port\":%u,",
	                (unsigned long long)r->body_length, hex, c->port);
	echo_buf_append(&r->json, "\"hostname\":", 11);
	json_string(&r->json, echo_hostname, strlen(echo_hostname));
	echo_buf_append(&r->json, ",\"remote_addr\":", 15);
	json_string(&r->json, c->remote, strlen(c->remote));
	echo_buf_printf(&r->json, ",\"connection_id\":%llu,\"request_number\":%llu}\n",
	                (unsigned long long)c->id, (unsigned long long)c->requests);
	respond_full(c, 200, "application/json", r->json.data, r->json.len, NULL);
}

/* The request body is complete: start the response. */
static int begin_response(struct echo_conn *c)
{
	struct echo_request *r = &c->req;
	char body[64];
	int n;

	switch (r->route) {
	case ECHO_ROUTE_ECHO:
		respond_echo(c);
		return 1;
	case ECHO_ROUTE_ECHO_BODY:
		if (r->framing == ECHO_BODY_CHUNKED && !r->head_only)
			echo_buf_append(&c->out, "0\r\n\r\n", 5);
		finish_response(c);
		return 1;
	case ECHO_ROUTE_HEALTH:
		respond_full(c, 200, "text/plain", "ok", 2, NULL);
		return 1;
	case ECHO_ROUTE_STATUS:
		n = snprintf(body, sizeof(body), "status %u\n", r->status);
		respond_full(c, r->status, "text/plain", body, (size_t)n, NULL);
		return 1;
	case ECHO_ROUTE_SLOW:
		c->state = ECHO_RESPOND;
		echo_conn_set_timer(c, r->delay_ms ? r->delay_ms : 1);
		return 1;
	case ECHO_ROUTE_CLOSE:
		/* Abruptly: a reset, no response at all. */
		c->reset = true;
		return -1;
	case ECHO_ROUTE_HALF:
		respond_head(c, 200, "application/octet-stream", (int64_t)r->n, NULL);
		r->gen_left = r->head_only ? 0 : r->n / 2;
		r->keep_alive = false;
		c->state = ECHO_RESPOND;
		return 1;
	case ECHO_ROUTE_BYTES:
		respond_head(c, 200, "application/octet-stream", (int64_t)r->n, NULL);
		r->gen_left = r->head_only ? 0 : r->n;
		c->state = ECHO_RESPOND;
		return 1;
	case ECHO_ROUTE_CHUNKED:
		/* An HTTP/1.0 client cannot read chunked coding: send the same
		 * pieces unframed and mark the end by closing. */
		r->unframed = r->http10;
		if (r->unframed)
			r->keep_alive = false;
		respond_head(c, 200, "text/plain", r->unframed ? -2 : -1, NULL);
		r->gen_chunks = r->n;
		c->state = ECHO_RESPOND;
		return 1;
	case ECHO_ROUTE_WS:
		break;
	}
	return -1;
}

void echo_http_timer(struct echo_conn *c)
{
	char body[64];
	int n;

	/* /chunked simply resumes generating; /slow answers now. */
	if (c->req.route == ECHO_ROUTE_SLOW) {
		n = snprintf(body, sizeof(body), "slept %llu ms\n",
		             (unsigned long long)c->req.delay_ms);
		respond_full(c, 200, "text/plain", body, (size_t)n, NULL);
	}
}

static void body_data(struct echo_conn *c, const char *p, size_t n)
{
	struct echo_request *r = &c->req;

	r->body_length += n;
	if (r->route != ECHO_ROUTE_ECHO_BODY) {
		sha256_update(&r->sha, n, (const uint8_t *)p);
		return;
	}
	if (r->head_only)
		return;
	if (r->framing == ECHO_BODY_CHUNKED)
		echo_buf_printf(&c->out, "%zx\r\n", n);
	echo_buf_append(&c->out, p, n);
	if (r->framing == ECHO_BODY_CHUNKED)
		echo_buf_append(&c->out, "\r\n", 2);
}

/* Finds the end of a line at p: returns its length with the LF, 0 if not
 * complete yet, -1 if longer than allowed. */
static long line_length(const char *p, size_t avail, size_t max)
{
	const char *lf = memchr(p, '\n', avail < max ? avail : max);

	if (lf)
		return lf - p + 1;
	return avail >= max ? -1 : 0;
}

/* One step of the chunked decoder: 1 progress, 0 needs input, 2 done,
 * -1 malformed. */
static int chunked_step(struct echo_conn *c)
{
	struct echo_request *r = &c->req;
	const char *p = c->in.data + c->in.off;
	size_t avail = echo_buf_pending(&c->in), i;
	uint64_t size = 0;
	long len;

	switch (r->chunk_phase) {
	case CHUNK_SIZE:
		len = line_length(p, avail, LINE_MAX_BYTES);
		if (len <= 0)
			return (int)len;
		for (i = 0; i < (size_t)len - 1; i++) {
			int d = p[i] >= '0' && p[i] <= '9'   ? p[i] - '0'
			        : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
			        : p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 10
			                                     : -1;

			if (d < 0)
				break;
			if (size >> 56)
				return -1;
			size = size * 16 + (uint64_t)d;
		}
		/* After the digits: a chunk extension, or the line end. */
		if (i == 0 || (p[i] != ';' && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' &&
		               !(p[i] == '\r' && i + 2 == (size_t)len)))
			return -1;
		echo_buf_consume(&c->in, (size_t)len);
		r->remaining = size;
		r->chunk_phase = size ? CHUNK_DATA : CHUNK_TRAILER;
		return 1;
	case CHUNK_DATA:
		if (avail == 0)
			return 0;
		if (avail > r->remaining)
			avail = (size_t)r->remaining;
		body_data(c, p, avail);
		echo_buf_consume(&c->in, avail);
		r->remaining -= avail;
		if (r->remaining == 0)
			r->chunk_phase = CHUNK_DATA_END;
		return 1;
	case CHUNK_DATA_END:
		if (avail < 1 || (p[0] == '\r' && avail < 2))
			return 0;
		if (p[0] == '\n')
			echo_buf_consume(&c->in, 1);
		else if (p[0] == '\r' && p[1] == '\n')
			echo_buf_consume(&c->in, 2);
		else
			return -1;
		r->chunk_phase = CHUNK_SIZE;
		return 1;
	case CHUNK_TRAILER:
		len = line_length(p, avail, LINE_MAX_BYTES);
		if (len <= 0)
			return (int)len;
		echo_buf_consume(&c->in, (size_t)len);
		if (len == 1 || (len == 2 && p[0] == '\r'))
			return 2;
		r->trailer_bytes += (size_t)len;
		return r->trailer_bytes > TRAILER_MAX_BYTES ? -1 : 1;
	}
	return -1;
}

static int read_body(struct echo_conn *c)
{
	struct echo_request *r = &c->req;
	int progress = 0, s;

	for (;;) {
		size_t avail = echo_buf_pending(&c->in);

		/* Echoing a body is where backpressure matters: stop taking
		 * input while the client is not reading what we send back. */
		if (r->route == ECHO_ROUTE_ECHO_BODY && echo_buf_pending(&c->out) >= ECHO_OUT_HIGH)
			return progress;
		if (r->framing != ECHO_BODY_CHUNKED) {
			size_t n = avail < r->remaining ? avail : (size_t)r->remaining;

			if (r->remaining == 0)
				return begin_response(c);
			if (n == 0)
				break;
			body_data(c, c->in.data + c->in.off, n);
			echo_buf_consume(&c->in, n);
			r->remaining -= n;
			progress = 1;
			continue;
		}
		s = chunked_step(c);
		if (s == 2)
			return begin_response(c);
		if (s < 0) {
			/* Once /echo-body has answered, an error can only cut the
			 * response short. */
			if (r->route == ECHO_ROUTE_ECHO_BODY)
				return -1;
			return respond_error(c, 400, "malformed chunked body", NULL);
		}
		if (s == 0)
			break;
		progress = 1;
	}
	/* The peer stopped sending in the middle of the body. */
	return c->eof ? -1 : progress;
}

static int start_websocket(struct echo_conn *c, const struct head *h)
{
	struct slice key = header_get(h, "sec-websocket-key");
	struct slice protocol = header_get(h, "sec-websocket-protocol");
	struct base64_decode_ctx b64;
	uint8_t raw[BASE64_DECODE_LENGTH(24)];
	size_t raw_len = sizeof(raw);
	char accept[29], extra[512];

	if (!header_has_token(h, "upgrade", "websocket") ||
	    !header_has_token(h, "connection", "upgrade"))
		return respond_error(c, 426, "this path speaks WebSocket only",
		                     "Upgrade: websocket\r\n");
	if (!slice_eq(trim(header_get(h, "sec-websocket-version")), "13"))
		return respond_error(c, 426, "unsupported WebSocket version",
		                     "Sec-WebSocket-Version: 13\r\n");
	key = trim(key);
	base64_decode_init(&b64);
	if (h->http10 || !slice_eq(h->method, "GET") || c->req.framing != ECHO_BODY_NONE ||
	    key.n != 24 || !base64_decode_update(&b64, &raw_len, raw, key.n, key.p) ||
	    !base64_decode_final(&b64) || raw_len != 16)
		return respond_error(c, 400, "bad WebSocket handshake", NULL);

	echo_ws_accept(key.p, key.n, accept);
	/* Offered subprotocols: pick the first, so that clients that insist
	 * on one can still be tested through the proxy. */
	if (protocol.p) {
		const char *comma = memchr(protocol.p, ',', protocol.n);
		struct slice first = trim((struct slice){
		        protocol.p, comma ? (size_t)(comma - protocol.p) : protocol.n});

		snprintf(extra, sizeof(extra),
		         "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
		         "%s\r\nSec-WebSocket-Protocol: %.*s\r\n",
		         accept, (int)(first.n < 256 ? first.n : 256), first.p);
	} else {
		snprintf(
		        extra, sizeof(extra),
		        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
		        accept);
	}
	respond_head(c, 101, NULL, -2, extra);
	c->state = ECHO_WS;
	echo_ws_start(c, c->req.has_close_after, c->req.close_after);
	return 1;
}

/* Reads the route's query parameters; false if one is malformed. */
static bool route_params(struct echo_request *r, const struct head *h)
{
	uint64_t status = 200;
	int ok = 1, found;

	switch (r->route) {
	case ECHO_ROUTE_CHUNKED:
		r->n = 5;
		r->size = 16;
		ok = query_uint(h->query, "n", 1000000, &r->n) >= 0 &&
		     query_uint(h->query, "size", 1ULL << 30, &r->size) >= 0 &&
		     query_uint(h->query, "delay_ms", DELAY_MAX_MS, &r->delay_ms) >= 0;
		/* A zero-size chunk would end the body early. */
		if (r->size == 0)
			r->size = 1;
		break;
	case ECHO_ROUTE_BYTES:
	case ECHO_ROUTE_HALF:
		r->n = 1024;
		ok = query_uint(h->query, "n", 1ULL << 50, &r->n) >= 0;
		break;
	case ECHO_ROUTE_SLOW:
		r->delay_ms = 1000;
		ok = query_uint(h->query, "ms", DELAY_MAX_MS, &r->delay_ms) >= 0;
		break;
	case ECHO_ROUTE_STATUS:
		ok = query_uint(h->query, "code", 599, &status) >= 0 && status >= 200;
		r->status = (unsigned)status;
		break;
	case ECHO_ROUTE_WS:
		found = query_uint(h->query, "close_after", UINT64_MAX, &r->close_after);
		ok = found >= 0;
		r->has_close_after = found > 0;
		break;
	default:
		break;
	}
	return ok;
}

/* Sets up the request from its parsed head and decides how it is framed. */
static int start_request(struct echo_conn *c, const struct head *h)
{
	struct echo_request *r = &c->req;
	struct echo_buf json = r->json;
	struct slice te = trim(header_get(h, "transfer-encoding"));
	size_t i;

	*r = (struct echo_request){.json = json, .route = ECHO_ROUTE_ECHO};
	sha256_init(&r->sha);
	r->head_only = slice_eq(h->method, "HEAD");
	r->http10 = h->http10;
	r->keep_alive = h->http10 ? header_has_token(h, "connection", "keep-alive")
	                          : !header_has_token(h, "connection", "close");
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (slice_eq(h->path, routes[i].path))
			r->route = routes[i].route;
	}

	for (i = 0; i < h->n_headers; i++) {
		struct slice v = h->headers[i].value;
		uint64_t len = 0;
		size_t k;

		if (!slice_caseeq(h->headers[i].name, "content-length"))
			continue;
		for (k = 0; k < v.n; k++) {
			if (v.p[k] < '0' || v.p[k] > '9' || len > (UINT64_MAX - 9) / 10)
				return respond_error(c, 400, "bad content-length", NULL);
			len = len * 10 + (uint64_t)(v.p[k] - '0');
		}
		/* Repeats are allowed only when they agree. */
		if (v.n == 0 || (r->framing == ECHO_BODY_LENGTH && r->remaining != len))
			return respond_error(c, 400, "bad content-length", NULL);
		r->framing = ECHO_BODY_LENGTH;
		r->remaining = len;
	}
	if (te.p) {
		/* Both framings at once is how requests are smuggled. */
		if (r->framing != ECHO_BODY_NONE)
			return respond_error(c, 400, "both content-length and transfer-encoding",
			                     NULL);
		if (!slice_caseeq(te, "chunked"))
			return respond_error(c, 501, "only chunked transfer-encoding", NULL);
		r->framing = ECHO_BODY_CHUNKED;
		r->chunk_phase = CHUNK_SIZE;
	}
	if (!route_params(r, h))
		return respond_error(c, 400, "bad query parameter", NULL);
	if (r->route == ECHO_ROUTE_ECHO)
		json_begin(&r->json, h);
	if (r->route == ECHO_ROUTE_WS)
		return start_websocket(c, h);

	if (!h->http10 && header_has_token(h, "expect", "100-continue") &&
	    (r->framing == ECHO_BODY_CHUNKED || r->remaining > 0))
		echo_buf_printf(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
	if (r->route == ECHO_ROUTE_ECHO_BODY)
		respond_head(c, 200, "application/octet-stream",
		             r->framing == ECHO_BODY_CHUNKED ? -1 : (int64_t)r->remaining, NULL);
	c->state = ECHO_READ_BODY;
	return 1;
}

static int read_head(struct echo_conn *c)
{
	static struct head h; /* large; one request is parsed at a time */
	size_t avail, len;
	unsigned status;
	int r;

	/* Pipelined requests wait until earlier responses drain. */
	if (echo_buf_pending(&c->out) >= ECHO_OUT_HIGH)
		return 0;
	/* Empty lines before a request line are tolerated (RFC 9112 2.2). */
	while (echo_buf_pending(&c->in) > 0 &&
	       (c->in.data[c->in.off] == '\r' || c->in.data[c->in.off] == '\n'))
		echo_buf_consume(&c->in, 1);
	avail = echo_buf_pending(&c->in);
	len = head_length(c->in.data + c->in.off, avail);
	if (len == 0) {
		if (avail >= ECHO_HEAD_MAX) {
			c->requests++;
			return respond_error(c, 431, "request head larger than 64 KiB", NULL);
		}
		if (c->eof) {
			c->state = ECHO_DRAIN;
			return 1;
		}
		return 0;
	}
	c->requests++;
	status = parse_head(c->in.data + c->in.off, len, &h);
	if (status) {
		c->req.keep_alive = false;
		return respond_error(
		        c, status,
		        status == 431 ? "too many header fields" : "malformed request head", NULL);
	}
	r = start_request(c, &h);
	echo_buf_consume(&c->in, len);
	return r;
}

int echo_http_advance(struct echo_conn *c)
{
	switch (c->state) {
	case ECHO_READ_HEAD:
		return read_head(c);
	case ECHO_READ_BODY:
		return read_body(c);
	case ECHO_RESPOND:
		return generate(c);
	default:
		return 0;
	}
}
