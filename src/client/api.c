/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests to berthd's control API with libcurl's easy interface: over the
 * unix socket or TCP, with the bearer token, answers read whole (bounded)
 * or streamed to a callback, and every failure turned into one message a
 * person can act on.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "berth/util.h"
#include "berth/version.h"
#include "client/client.h"

#define ANSWER_MAX         (16u << 20) /* a whole answer (ps pages 1000 records at a time) */
#define ERROR_ANSWER_MAX   (64u << 10) /* the body of an error answer to a streamed request */
#define TOKEN_MAX          4096
#define CONNECT_TIMEOUT_MS 10000L

struct berth_client {
	CURL *curl;
	char *socket_path; /* NULL on TCP */
	char *base;        /* "http://berth" on the socket, else the TCP base URL */
	char *where;       /* how messages name berthd: the socket's path or the base URL */
	char *auth;        /* "Authorization: Bearer ..." or NULL */
	char errbuf[CURL_ERROR_SIZE];
};

struct buffer {
	char *data;
	size_t len, max;
	bool too_big;
};

static void buffer_append(struct buffer *b, const char *data, size_t len)
{
	if (b->len + len > b->max) {
		b->too_big = true;
		return;
	}
	b->data = xrealloc(b->data, b->len + len + 1);
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static int read_token_file(const char *path, char **token, berth_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char buf[TOKEN_MAX + 1];
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", path);
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0)
		return berth_error_set(err, errno, "read `%s`", path);
	if (len == sizeof(buf) - 1)
		return berth_error_set(err, 0, "`%s` is too large for a token (at most %d bytes)",
		                       path, TOKEN_MAX - 1);
	buf[len] = '\0';
	/* A trailing newline (echo TOKEN > file) is not part of the token. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
	                   buf[len - 1] == '\t'))
		buf[--len] = '\0';
	if (len == 0)
		return berth_error_set(err, 0, "`%s` holds no token", path);
	*token = xstrdup(buf);
	return 0;
}

static bool token_valid(const char *t)
{
	/* Anything else could end the header line early: refuse it rather than send it. */
	for (; *t != '\0'; t++)
		if ((unsigned char)*t < 0x21 || (unsigned char)*t == 0x7f)
			return false;
	return true;
}

int berth_client_open(const struct berth_client_opts *o, struct berth_client **out,
                      berth_error_t *err)
{
	struct berth_client *c;
	cleanup_free char *token = NULL;
	const char *host = o->host, *sock = o->socket;
	char *base = NULL;

	if (host != NULL && sock != NULL)
		return berth_error_set(err, 0, "--host and --socket exclude each other");
	if (host == NULL && sock == NULL) {
		host = getenv("BERTH_HOST");
		if (host != NULL && *host == '\0')
			host = NULL;
		if (host == NULL) {
			sock = getenv("BERTH_SOCKET");
			if (sock == NULL || *sock == '\0')
				sock = BERTH_CLIENT_DEFAULT_SOCKET;
		}
	}
	if (host != NULL && berth_client_base_url(host, &base, err) < 0)
		return berth_error_wrap(err, "%s", o->host != NULL ? "--host" : "$BERTH_HOST");
	if (sock != NULL && *sock == '\0')
		return berth_error_set(err, 0, "--socket: the path is empty");
	if (o->token_file != NULL) {
		if (read_token_file(o->token_file, &token, err) < 0) {
			free(base);
			berth_error_wrap(err, "--token-file");
			/* Not a usage error: the file is wrong, not the command line. */
			return -EIO;
		}
	} else if (getenv("BERTH_TOKEN") != NULL && *getenv("BERTH_TOKEN") != '\0') {
		token = xstrdup(getenv("BERTH_TOKEN"));
	}
	if (token != NULL && !token_valid(token)) {
		free(base);
		berth_error_set(err, 0, "the token contains spaces or control characters");
		return -EIO;
	}

	c = xcalloc(1, sizeof(*c));
	if (base != NULL) {
		c->base = base;
		c->where = xstrdup(base);
	} else {
		c->socket_path = xstrdup(sock);
		/* The host is a placeholder: berthd serves whatever Host on its socket. */
		c->base = xstrdup("http://berth");
		c->where = xstrdup(sock);
	}
	if (token != NULL)
		c->auth = xasprintf("Authorization: Bearer %s", token);
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		berth_client_close(c);
		berth_error_set(err, 0, "cannot initialise libcurl");
		return -EIO;
	}
	*out = c;
	return 0;
}

void berth_client_close(struct berth_client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	free(c->socket_path);
	free(c->base);
	free(c->where);
	if (c->auth != NULL)
		explicit_bzero(c->auth, strlen(c->auth));
	free(c->auth);
	free(c);
}

char *berth_client_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *ret;

	if (e == NULL)
		abort(); /* only on out of memory, as the x-allocators */
	ret = xstrdup(e);
	curl_free(e);
	return ret;
}

char *berth_client_instance_path(const char *class_name, const char *name, const char *suffix)
{
	cleanup_free char *c = berth_client_escape(class_name);
	cleanup_free char *n = berth_client_escape(name);

	return xasprintf("/v1/classes/%s/instances/%s%s", c, n, suffix);
}

/* Why the exchange failed, in a person's terms. */
static int transport_error(struct berth_client *c, CURLcode rc, berth_error_t *err)
{
	long os_errno = 0;
	const char *why;

	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (os_errno != 0)
		why = strerror((int)os_errno);
	else if (c->errbuf[0] != '\0')
		why = c->errbuf;
	else
		why = curl_easy_strerror(rc);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
		/* The hint fits only when nothing listens there. */
		return berth_error_set_plain(
		        err, (int)os_errno, "cannot reach berthd at %s: %s%s", c->where, why,
		        os_errno == ENOENT || os_errno == ECONNREFUSED ? " (is berthd running?)"
		                                                       : "");
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return berth_error_set_plain(err, (int)os_errno,
		                             "lost the connection to berthd at %s: %s", c->where,
		                             why);
	default:
		return berth_error_set_plain(err, (int)os_errno, "berthd at %s: %s", c->where, why);
	}
}

/*
 * The errors a command tells apart, by their code: berth's own in lower
 * case (file_not_found), the sandbox protocol's in upper case.
 */
static const struct {
	const char *code;
	int errnum;
} error_codes[] = {
        {"file_not_found", ENOENT}, {"process_not_found", ESRCH},  {"is_directory", EISDIR},
        {"not_directory", ENOTDIR}, {"permission_denied", EACCES}, {"read_only", EROFS},
        {"file_exists", EEXIST},    {"file_too_large", EFBIG},     {"command_not_found", ENOEXEC},
        {"no_space", ENOSPC},
};

/*
 * The message of an error answer: berthd's {"error": {"code", "message"}},
 * or the sandbox protocol's {"code", "message", ...}; its code, when it is
 * one of error_codes, as err->code (the message does not spell it out).
 */
static int answer_error(long status, const struct buffer *b, berth_error_t *err)
{
	json_t *j = b->data != NULL ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	const json_t *e = json_object_get(j, "error");
	const char *msg = NULL, *code = NULL;
	int errnum = 0;

	if (json_is_object(e)) {
		msg = json_string_value(json_object_get(e, "message"));
		code = json_string_value(json_object_get(e, "code"));
	} else if (json_is_string(json_object_get(j, "code"))) {
		msg = json_string_value(json_object_get(j, "message"));
		code = json_string_value(json_object_get(j, "code"));
	}
	for (size_t i = 0; code != NULL && i < BERTH_ARRAY_SIZE(error_codes); i++)
		if (strcasecmp(code, error_codes[i].code) == 0)
			errnum = error_codes[i].errnum;
	if (msg != NULL)
		berth_error_set_plain(err, errnum, "%s", msg);
	else
		berth_error_set_plain(err, errnum,
		                      "berthd answered HTTP %ld without an error message", status);
	json_decref(j);
	return -EIO;
}

/* Options every request has; the headers list is the caller's to free after the transfer. */
static struct curl_slist *prepare(struct berth_client *c, const char *path, bool json_body)
{
	cleanup_free char *url = xasprintf("%s%s", c->base, path);
	struct curl_slist *h = NULL;

	curl_easy_reset(c->curl);
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	if (c->socket_path != NULL)
		curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->auth != NULL)
		h = curl_slist_append(h, c->auth);
	if (json_body)
		h = curl_slist_append(h, "Content-Type: application/json");
	/* berthd answers at once; waiting for a 100 Continue would only add a round trip. */
	h = curl_slist_append(h, "Expect:");
	if (h == NULL)
		abort();
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	return h;
}

static size_t on_whole(char *data, size_t size, size_t n, void *arg)
{
	struct buffer *b = arg;

	buffer_append(b, data, size * n);
	return b->too_big ? 0 : size * n;
}

json_t *berth_client_call(struct berth_client *c, const char *method, const char *path,
                          json_t *body, long *status, berth_error_t *err)
{
	struct buffer b = {.max = ANSWER_MAX};
	cleanup_free char *text = NULL;
	struct curl_slist *h;
	json_error_t jerr;
	long code = 0;
	CURLcode rc;
	json_t *j = NULL;

	h = prepare(c, path, body != NULL);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	} else {
		text = body != NULL ? json_dumps(body, JSON_COMPACT) : xstrdup("");
		if (text == NULL)
			abort();
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_whole);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	if (b.too_big) {
		berth_error_set(err, 0, "berthd's answer to %s %s is larger than %u MiB", method,
		                path, ANSWER_MAX >> 20);
		goto out;
	}
	if (rc != CURLE_OK) {
		transport_error(c, rc, err);
		goto out;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		answer_error(code, &b, err);
		goto out;
	}
	if (b.len == 0) {
		j = json_null();
	} else if ((j = json_loadb(b.data, b.len, 0, &jerr)) == NULL) {
		berth_error_set(err, 0, "berthd's answer to %s %s is not JSON: %s", method, path,
		                jerr.text);
		goto out;
	}
	if (status != NULL)
		*status = code;
out:
	free(b.data);
	return j;
}

struct stream {
	struct berth_client *c;
	berth_client_stream_fn fn;
	void *arg;
	berth_error_t *err;
	bool failed;      /* fn said stop */
	struct buffer eb; /* the body of an error answer */
};

static size_t on_stream(char *data, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	long code = 0;

	curl_easy_getinfo(s->c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		buffer_append(&s->eb, data, size * n);
		return s->eb.too_big ? 0 : size * n;
	}
	if (s->fn(data, size * n, s->arg, s->err) < 0) {
		s->failed = true;
		return 0;
	}
	return size * n;
}

const char *berth_client_header(struct berth_client *c, const char *name)
{
	struct curl_header *h;

	if (curl_easy_header(c->curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	return h->value;
}

int berth_client_stream(struct berth_client *c, const char *path, berth_client_stream_fn fn,
                        void *arg, berth_error_t *err)
{
	return berth_client_stream_post(c, path, NULL, fn, arg, NULL, err);
}

int berth_client_stream_post(struct berth_client *c, const char *path, json_t *body,
                             berth_client_stream_fn fn, void *arg, long *status, berth_error_t *err)
{
	struct stream s = {
	        .c = c, .fn = fn, .arg = arg, .err = err, .eb = {.max = ERROR_ANSWER_MAX}};
	struct curl_slist *h = prepare(c, path, body != NULL);
	cleanup_free char *text = NULL;
	long code = 0;
	CURLcode rc;
	int ret = 0;

	if (body == NULL) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	} else {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL)
			abort();
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	}
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (status != NULL)
		*status = code;
	if (s.failed)
		ret = berth_error_ret(err);
	else if (code != 0 && (code < 200 || code > 299))
		ret = answer_error(code, &s.eb, err);
	else if (rc != CURLE_OK)
		ret = transport_error(c, rc, err);
	free(s.eb.data);
	return ret;
}

/* ---- an upload (berth cp) ---- */

struct upload {
	int fd;
	int read_errno; /* reading `fd` failed */
};

static size_t on_upload_read(char *buf, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	ssize_t got;

	do
		got = read(u->fd, buf, size * n);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		u->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	return (size_t)got;
}

json_t *berth_client_upload(struct berth_client *c, const char *path, int fd, int64_t size,
                            const char *what, long *status, berth_error_t *err)
{
	struct buffer b = {.max = ANSWER_MAX};
	struct upload u = {.fd = fd};
	struct curl_slist *h = prepare(c, path, false);
	json_error_t jerr;
	long code = 0;
	CURLcode rc;
	json_t *j = NULL;

	/* Without a size, HTTP/1.1's chunked coding: as many bytes as come. */
	if (size < 0 && (h = curl_slist_append(h, "Transfer-Encoding: chunked")) == NULL)
		abort();
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, on_upload_read);
	curl_easy_setopt(c->curl, CURLOPT_READDATA, &u);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_whole);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (status != NULL)
		*status = code;
	/*
	 * berthd may refuse before the body has all come (no such directory, a
	 * directory there): libcurl then stops sending, and the answer is what
	 * counts, whatever became of the rest.
	 */
	if (u.read_errno != 0)
		berth_error_set(err, u.read_errno, "read `%s`", what);
	else if (b.too_big)
		berth_error_set(err, 0, "berthd's answer to PUT %s is larger than %u MiB", path,
		                ANSWER_MAX >> 20);
	else if (code != 0 && (code < 200 || code > 299))
		answer_error(code, &b, err);
	else if (rc != CURLE_OK)
		transport_error(c, rc, err);
	else if (b.len == 0)
		j = json_null();
	else if ((j = json_loadb(b.data, b.len, 0, &jerr)) == NULL)
		berth_error_set(err, 0, "berthd's answer to PUT %s is not JSON: %s", path,
		                jerr.text);
	free(b.data);
	return j;
}

/* ---- an upgraded connection (berth exec -t) ---- */

#define UPGRADE_HEAD_MAX (16u << 10)

/* Wait until the connection can be read (`out` false) or written; 0 or -errno. */
static int wait_socket(struct berth_client *c, bool out)
{
	curl_socket_t fd = CURL_SOCKET_BAD;
	struct pollfd p;

	curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &fd);
	if (fd == CURL_SOCKET_BAD)
		return -ENOTCONN;
	p.fd = fd;
	p.events = out ? POLLOUT : POLLIN;
	while (poll(&p, 1, (int)CONNECT_TIMEOUT_MS) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

ssize_t berth_client_raw_send(struct berth_client *c, const void *buf, size_t len)
{
	size_t sent = 0;
	CURLcode rc = curl_easy_send(c->curl, buf, len, &sent);

	if (rc == CURLE_AGAIN)
		return -EAGAIN;
	return rc == CURLE_OK ? (ssize_t)sent : -EIO;
}

ssize_t berth_client_raw_recv(struct berth_client *c, void *buf, size_t len)
{
	size_t got = 0;
	CURLcode rc = curl_easy_recv(c->curl, buf, len, &got);

	if (rc == CURLE_AGAIN)
		return -EAGAIN;
	return rc == CURLE_OK ? (ssize_t)got : -EIO;
}

int berth_client_socket(struct berth_client *c)
{
	curl_socket_t fd = CURL_SOCKET_BAD;

	curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &fd);
	return fd == CURL_SOCKET_BAD ? -1 : (int)fd;
}

int berth_client_upgrade(struct berth_client *c, const char *path, const char *headers,
                         char **leftover, size_t *leftover_len, long *status, berth_error_t *err)
{
	struct curl_slist *h = prepare(c, path, false);
	const char *after_scheme = strstr(c->base, "://");
	const char *prefix = after_scheme != NULL ? strchr(after_scheme + 3, '/') : NULL;
	cleanup_free char *req = NULL;
	char head[UPGRADE_HEAD_MAX + 1];
	size_t n = 0, off = 0;
	char *end, *cl;
	CURLcode rc;
	int r;

	*leftover = NULL;
	*leftover_len = 0;
	*status = 0;
	head[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	if (rc != CURLE_OK)
		return transport_error(c, rc, err);
	/* The request by hand: libcurl here has no WebSocket of its own. */
	req = xasprintf("GET %s%s HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth/" BERTH_VERSION
	                "\r\nConnection: Upgrade\r\n%s%s%s\r\n",
	                prefix != NULL ? prefix : "", path, c->auth != NULL ? c->auth : "",
	                c->auth != NULL ? "\r\n" : "", headers);
	while (off < strlen(req)) {
		ssize_t s = berth_client_raw_send(c, req + off, strlen(req) - off);
		if (s == -EAGAIN && (r = wait_socket(c, true)) == 0)
			continue;
		if (s < 0)
			return berth_error_set_plain(
			        err, EIO, "lost the connection to berthd at %s", c->where);
		off += (size_t)s;
	}
	/* The answer's head; an error's body is read by its Content-Length. */
	for (;;) {
		ssize_t g;
		if ((end = strstr(head, "\r\n\r\n")) != NULL)
			break;
		if (n == UPGRADE_HEAD_MAX)
			return berth_error_set_plain(err, EPROTO, "berthd's answer has no end");
		g = berth_client_raw_recv(c, head + n, UPGRADE_HEAD_MAX - n);
		if (g == -EAGAIN && wait_socket(c, false) == 0)
			continue;
		if (g <= 0)
			return berth_error_set_plain(err, EIO, "berthd at %s closed the connection",
			                             c->where);
		n += (size_t)g;
		head[n] = '\0';
	}
	if (sscanf(head, "HTTP/1.%*d %ld", status) != 1)
		return berth_error_set_plain(err, EPROTO, "berthd's answer is not HTTP");
	end += 4;
	if (*status != 101) {
		struct buffer b = {.max = ERROR_ANSWER_MAX};
		size_t want = 0;
		cl = strcasestr(head, "\r\ncontent-length:");
		if (cl != NULL)
			want = (size_t)strtoul(cl + 17, NULL, 10);
		buffer_append(&b, end, n - (size_t)(end - head));
		while (b.len < want && !b.too_big) {
			char buf[4096];
			ssize_t g = berth_client_raw_recv(c, buf, sizeof(buf));
			if (g == -EAGAIN && wait_socket(c, false) == 0)
				continue;
			if (g <= 0)
				break;
			buffer_append(&b, buf, (size_t)g);
		}
		r = answer_error(*status, &b, err);
		free(b.data);
		return r;
	}
	if (n > (size_t)(end - head)) {
		*leftover_len = n - (size_t)(end - head);
		*leftover = xmalloc(*leftover_len);
		memcpy(*leftover, end, *leftover_len);
	}
	return 0;
}
