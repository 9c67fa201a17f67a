/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry pulls: the Docker Registry HTTP API v2 / OCI distribution spec
 * over libcurl.
 *
 *   GET /v2/NAME/manifests/REF  (Accept: OCI and Docker manifests and lists)
 *     401 + WWW-Authenticate: Bearer realm=,service=,scope=  → GET the realm
 *     for a token (with basic credentials when the auth file has some), retry
 *   an index or manifest list → the linux/amd64 entry, fetched by digest
 *   GET /v2/NAME/blobs/DIGEST   config and layers, several at once (curl
 *     multi), each into a resumable partial file: a pull that was killed
 *     goes on where it stopped (Range), and every blob is checked against
 *     its digest before the store gives it its name
 *
 * HTTPS with the system's CA store; plain HTTP only for registries the
 * caller marks insecure and for loopback addresses (as Docker does).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <nettle/base64.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "berth/log.h"
#include "berth/util.h"
#include "image-internal.h"

#define TOKEN_MAX      (1u << 20)
#define ERROR_BODY_MAX (64u * 1024u)
#define HEADER_MAX     4096
#define CONCURRENCY    3

struct puller {
	struct berth_image_store *s;
	const struct berth_image_ref *ref;
	const struct berth_pull_options *opts;
	char *name;     /* the reference as the user wrote it, canonical */
	char *base;     /* scheme://host/v2/REPOSITORY */
	bool insecure;  /* plain HTTP */
	char *auth;     /* "Authorization: ..." header, or NULL */
	char *userpass; /* from the auth file, or NULL */
	/* A blob request refused for an expired token: the challenge to answer. */
	char challenge[HEADER_MAX];
	/* Layers are unpacked while the others download (see below). */
	struct unpacker *unpacker;
};

static void unpacker_offer(struct unpacker *u, const char *digest);

/* One response: bounded body, the headers we need. */
struct response {
	char *body;
	size_t len, max;
	bool too_big;
	char content_type[128];
	char www_auth[HEADER_MAX];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct response *r = arg;
	size_t len = size * n;

	if (r->len + len > r->max) {
		r->too_big = true;
		return 0;
	}
	r->body = xrealloc(r->body, r->len + len + 1);
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/* "Name: value\r\n" → value into `out` when the name matches. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t max)
{
	size_t n = strlen(name);
	size_t vlen;

	if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return;
	line += n + 1;
	len -= n + 1;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	vlen = len < max - 1 ? len : max - 1;
	memcpy(out, line, vlen);
	out[vlen] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct response *r = arg;
	size_t len = size * n;

	/* A redirect's headers come first: keep only the last response's. */
	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
		r->content_type[0] = '\0';
		r->www_auth[0] = '\0';
	}
	header_value(data, len, "Content-Type", r->content_type, sizeof(r->content_type));
	header_value(data, len, "WWW-Authenticate", r->www_auth, sizeof(r->www_auth));
	return len;
}

static bool is_loopback(const char *hostport)
{
	char host[256];
	const char *end;
	struct in_addr a4;
	size_t n;

	if (hostport[0] == '[') {
		end = strchr(hostport, ']');
		if (end == NULL)
			return false;
		n = (size_t)(end - hostport - 1);
		return n == 3 && strncmp(hostport + 1, "::1", 3) == 0;
	}
	end = strchr(hostport, ':');
	n = end != NULL ? (size_t)(end - hostport) : strlen(hostport);
	if (n >= sizeof(host))
		return false;
	memcpy(host, hostport, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static bool cancelled(const struct puller *p)
{
	return p->opts->cancel != NULL && __atomic_load_n(p->opts->cancel, __ATOMIC_RELAXED) != 0;
}

/* curl asks about once a second, and at every chunk: a non-zero answer aborts. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cancelled(arg) ? 1 : 0;
}

static CURL *new_handle(struct puller *p, const char *url, struct curl_slist *headers)
{
	CURL *c = curl_easy_init();

	if (c == NULL)
		abort(); /* curl_easy_init fails only without memory */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, p->insecure ? "http,https" : "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, p->insecure ? "http,https" : "https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A transfer that stalls for a minute is given up (and resumed by the next pull). */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth");
	if (p->opts->max_rate > 0)
		curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)p->opts->max_rate);
	if (p->opts->cancel != NULL) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
	}
	return c;
}

/* The registry's own words from an error body ({"errors": [{"code", "message"}]}). */
static void registry_error(const struct response *resp, char *out, size_t max)
{
	json_t *doc = resp->body != NULL ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
	json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	if (code != NULL || msg != NULL)
		snprintf(out, max, ": %s%s%s", code ? code : "", code && msg ? ": " : "",
		         msg ? msg : "");
	else
		out[0] = '\0';
	json_decref(doc);
}

static struct curl_slist *auth_headers(struct puller *p, const char *accept)
{
	struct curl_slist *h = NULL;

	if (accept != NULL)
		h = curl_slist_append(h, accept);
	if (p->auth != NULL)
		h = curl_slist_append(h, p->auth);
	return h;
}

/* A simple GET; *status gets the HTTP status. */
static int get(struct puller *p, const char *url, const char *accept, bool with_auth, size_t max,
               struct response *resp, long *status, berth_error_t *err)
{
	struct curl_slist *h = with_auth ? auth_headers(p, accept)
	                                 : (accept ? curl_slist_append(NULL, accept) : NULL);
	CURL *c = new_handle(p, url, h);
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	memset(resp, 0, sizeof(*resp));
	resp->max = max;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (!with_auth && p->userpass != NULL) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, p->userpass);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (resp->too_big)
		return berth_error_set_plain(
		        err, EFBIG, "GET %s: the answer is larger than %zu bytes", url, max);
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return berth_error_set_plain(err, ECANCELED, "cancelled");
	if (rc != CURLE_OK)
		return berth_error_set_plain(err, EHOSTUNREACH, "GET %s: %s", url,
		                             errbuf[0] ? errbuf : curl_easy_strerror(rc));
	return 0;
}

static void response_free(struct response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* key="value" pairs of a challenge; `out` gets the value of `key`. */
static bool challenge_param(const char *ch, const char *key, char *out, size_t max)
{
	size_t n = strlen(key);

	for (const char *p = ch; (p = strcasestr(p, key)) != NULL; p += n) {
		if ((p == ch || p[-1] == ' ' || p[-1] == ',') && p[n] == '=' && p[n + 1] == '"') {
			const char *v = p + n + 2, *end = strchr(v, '"');
			size_t len;
			if (end == NULL)
				return false;
			len = (size_t)(end - v);
			if (len >= max)
				return false;
			memcpy(out, v, len);
			out[len] = '\0';
			return true;
		}
	}
	return false;
}

/* The WWW-Authenticate dance: a token for Bearer, the credentials for Basic. */
static int authenticate(struct puller *p, const char *challenge, berth_error_t *err)
{
	char realm[1024], service[512] = "", scope[512];
	cleanup_free char *url = NULL;
	struct response resp;
	json_t *doc;
	const char *token;
	long status = 0;
	int r;

	if (strncasecmp(challenge, "Basic", 5) == 0) {
		if (p->userpass == NULL)
			return berth_error_set_plain(
			        err, EACCES,
			        "registry `%s` wants a user name and password, "
			        "and the auth file has none for it",
			        p->ref->registry);
		free(p->auth);
		{
			size_t len = strlen(p->userpass);
			char *b64 = xmalloc(BASE64_ENCODE_RAW_LENGTH(len) + 1);
			base64_encode_raw(b64, len, (const uint8_t *)p->userpass);
			b64[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
			p->auth = xasprintf("Authorization: Basic %s", b64);
			free(b64);
		}
		return 0;
	}
	if (strncasecmp(challenge, "Bearer", 6) != 0 ||
	    !challenge_param(challenge, "realm", realm, sizeof(realm)))
		return berth_error_set_plain(err, EACCES,
		                             "registry `%s` asks for authentication berth does not "
		                             "know: %s",
		                             p->ref->registry, challenge);
	challenge_param(challenge, "service", service, sizeof(service));
	if (!challenge_param(challenge, "scope", scope, sizeof(scope)))
		snprintf(scope, sizeof(scope), "repository:%s:pull", p->ref->repository);
	{
		CURL *c = curl_easy_init();
		char *es = curl_easy_escape(c, service, 0);
		char *esc = curl_easy_escape(c, scope, 0);
		url = xasprintf("%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?',
		                es, esc);
		curl_free(es);
		curl_free(esc);
		curl_easy_cleanup(c);
	}
	r = get(p, url, NULL, false, TOKEN_MAX, &resp, &status, err);
	if (r < 0)
		return berth_error_wrap(err, "get a token");
	if (status != 200) {
		char why[256];
		registry_error(&resp, why, sizeof(why));
		response_free(&resp);
		return berth_error_set_plain(err, EACCES,
		                             "the token server of `%s` refused a token for %s "
		                             "(HTTP %ld%s)",
		                             p->ref->registry, scope, status, why);
	}
	doc = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
	response_free(&resp);
	token = json_string_value(json_object_get(doc, "token"));
	if (token == NULL)
		token = json_string_value(json_object_get(doc, "access_token"));
	if (token == NULL || *token == '\0' || strpbrk(token, "\r\n") != NULL) {
		json_decref(doc);
		return berth_error_set_plain(err, EACCES,
		                             "the token server of `%s` answered without a token",
		                             p->ref->registry);
	}
	free(p->auth);
	p->auth = xasprintf("Authorization: Bearer %s", token);
	json_decref(doc);
	return 0;
}

/* GET with the authentication dance once, if the registry asks for it. */
static int registry_get(struct puller *p, const char *url, const char *accept, size_t max,
                        struct response *resp, long *status, berth_error_t *err)
{
	int r = get(p, url, accept, true, max, resp, status, err);

	if (r < 0)
		return r;
	if (*status == 401 && resp->www_auth[0] != '\0') {
		char challenge[HEADER_MAX];
		snprintf(challenge, sizeof(challenge), "%s", resp->www_auth);
		response_free(resp);
		r = authenticate(p, challenge, err);
		if (r < 0)
			return r;
		r = get(p, url, accept, true, max, resp, status, err);
	}
	return r;
}

static const char manifest_accept[] = "Accept: " BERTH_MEDIA_OCI_INDEX ", " BERTH_MEDIA_OCI_MANIFEST
                                      ", " BERTH_MEDIA_DOCKER_LIST ", " BERTH_MEDIA_DOCKER_MANIFEST;

/* Fetch a manifest (or index) by tag or digest into the store. */
static int fetch_manifest(struct puller *p, const char *reference, char digest[BERTH_DIGEST_MAX],
                          json_t **doc, char *media_type, size_t mt_len, berth_error_t *err)
{
	cleanup_free char *url = xasprintf("%s/manifests/%s", p->base, reference);
	struct response resp;
	json_error_t jerr;
	long status = 0;
	int r;

	r = registry_get(p, url, manifest_accept, BERTH_MANIFEST_MAX, &resp, &status, err);
	if (r < 0)
		return r;
	if (status != 200) {
		char why[256];
		registry_error(&resp, why, sizeof(why));
		response_free(&resp);
		if (status == 404)
			return berth_error_set_plain(
			        err, ENOENT, "`%s` is not in registry `%s` (%s not found%s)",
			        p->name, p->ref->registry, reference, why);
		if (status == 401 || status == 403)
			return berth_error_set_plain(
			        err, EACCES, "registry `%s` refused access to `%s` (HTTP %ld%s)",
			        p->ref->registry, p->ref->repository, status, why);
		return berth_error_set_plain(err, EIO, "GET %s: HTTP %ld%s", url, status, why);
	}
	berth_digest_of(resp.body ? resp.body : "", resp.len, digest);
	if (berth_digest_valid(reference) && strcmp(reference, digest) != 0) {
		response_free(&resp);
		return berth_error_set_plain(err, EBADMSG,
		                             "the manifest served for %s has digest %s", reference,
		                             digest);
	}
	*doc = json_loadb(resp.body ? resp.body : "", resp.len, 0, &jerr);
	if (*doc == NULL) {
		response_free(&resp);
		return berth_error_set_plain(err, EINVAL, "manifest %s is not JSON: %s", reference,
		                             jerr.text);
	}
	snprintf(media_type, mt_len, "%s", resp.content_type);
	{
		char *semi = strchr(media_type, ';');
		if (semi != NULL)
			*semi = '\0';
	}
	r = berth_image_store_put(p->s, resp.body ? resp.body : "", resp.len, digest, NULL, err);
	response_free(&resp);
	if (r < 0) {
		json_decref(*doc);
		*doc = NULL;
	}
	return r;
}

/* ---- blobs, several at once ---- */

struct download {
	struct puller *p;
	char digest[BERTH_DIGEST_MAX];
	uint64_t size; /* from the manifest; 0 when unknown */
	struct berth_blob_writer w;
	CURL *c;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	long status;
	bool started, writer_failed, done;
	uint64_t resumed_at;
	char www_auth[HEADER_MAX];
	struct response error_body; /* a non-2xx answer's body, for the message */
	berth_error_t err;
};

static size_t on_blob_data(char *data, size_t size, size_t n, void *arg)
{
	struct download *d = arg;
	size_t len = size * n;

	if (!d->started) {
		d->started = true;
		curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &d->status);
		/* A server that ignores Range answers 200 with the whole blob. */
		if (d->status == 200 && d->w.offset > 0) {
			d->resumed_at = 0;
			if (berth_blob_writer_reset(&d->w, &d->err) < 0) {
				d->writer_failed = true;
				return 0;
			}
		}
	}
	if (d->status != 200 && d->status != 206)
		return on_body(data, size, n, &d->error_body);
	if (d->size > 0 && d->w.offset + len > d->size) {
		berth_error_set_plain(&d->err, EBADMSG,
		                      "blob %s is larger than the %llu bytes "
		                      "the manifest says",
		                      d->digest, (unsigned long long)d->size);
		d->writer_failed = true;
		return 0;
	}
	if (berth_blob_writer_write(&d->w, data, len, &d->err) < 0) {
		d->writer_failed = true;
		return 0;
	}
	return len;
}

static size_t on_blob_header(char *data, size_t size, size_t n, void *arg)
{
	struct download *d = arg;
	size_t len = size * n;

	/* Redirects: the final response's status decides. */
	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
		d->started = false;
		d->www_auth[0] = '\0';
	}
	header_value(data, len, "WWW-Authenticate", d->www_auth, sizeof(d->www_auth));
	return len;
}

static void download_setup(struct download *d)
{
	cleanup_free char *url = xasprintf("%s/blobs/%s", d->p->base, d->digest);

	d->headers = auth_headers(d->p, NULL);
	if (d->w.offset > 0) {
		char range[64];
		snprintf(range, sizeof(range), "Range: bytes=%llu-",
		         (unsigned long long)d->w.offset);
		d->headers = curl_slist_append(d->headers, range);
		d->resumed_at = d->w.offset;
	}
	d->c = new_handle(d->p, url, d->headers);
	d->error_body.max = ERROR_BODY_MAX;
	curl_easy_setopt(d->c, CURLOPT_WRITEFUNCTION, on_blob_data);
	curl_easy_setopt(d->c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(d->c, CURLOPT_HEADERFUNCTION, on_blob_header);
	curl_easy_setopt(d->c, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(d->c, CURLOPT_ERRORBUFFER, d->errbuf);
	curl_easy_setopt(d->c, CURLOPT_PRIVATE, d);
}

/* A finished transfer: commit the blob (checked) or say what went wrong. */
static int download_finish(struct download *d, CURLcode rc)
{
	long status = 0;

	curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &status);
	if (d->writer_failed) {
		berth_blob_writer_abort(&d->w);
		return berth_error_ret(&d->err);
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		berth_blob_writer_abort(&d->w);
		return berth_error_set_plain(&d->err, ECANCELED, "cancelled");
	}
	if (rc != CURLE_OK) {
		berth_blob_writer_abort(&d->w); /* the partial file stays, to be resumed */
		return berth_error_set_plain(&d->err, EIO, "blob %s: %s", d->digest,
		                             d->errbuf[0] ? d->errbuf : curl_easy_strerror(rc));
	}
	if (status == 401 && d->www_auth[0] != '\0') {
		/* The token expired during a long pull: the caller gets a new one and goes on. */
		berth_blob_writer_abort(&d->w);
		snprintf(d->p->challenge, sizeof(d->p->challenge), "%s", d->www_auth);
		return berth_error_set_plain(&d->err, EKEYEXPIRED,
		                             "blob %s: the registry wants a new token", d->digest);
	}
	if (status != 200 && status != 206) {
		char why[256];
		registry_error(&d->error_body, why, sizeof(why));
		berth_blob_writer_abort(&d->w);
		return berth_error_set_plain(&d->err, status == 404 ? ENOENT : EIO,
		                             "blob %s: HTTP %ld%s", d->digest, status, why);
	}
	if (berth_blob_writer_commit(&d->w, d->digest, NULL, &d->err) < 0)
		return berth_error_wrap(&d->err, "blob %s", d->digest);
	if (!d->p->opts->quiet && d->p->opts->progress == NULL) {
		char resumed[64] = "";
		if (d->resumed_at > 0)
			snprintf(resumed, sizeof(resumed), " (resumed at %.1f MiB)",
			         (double)d->resumed_at / (1024.0 * 1024.0));
		berth_info("%s: %.12s: %.1f MiB%s", d->p->name, d->digest + 7,
		           (double)d->size / (1024.0 * 1024.0), resumed);
	}
	return 0;
}

#define PROGRESS_INTERVAL_MS 250

static void report(struct puller *p, const struct download *d, bool finished)
{
	struct berth_pull_progress pr = {
	        .digest = d->digest,
	        .done = finished ? d->size : d->w.offset,
	        .total = d->size,
	        .finished = finished,
	};

	if (p->opts->progress != NULL)
		p->opts->progress(&pr, p->opts->progress_arg);
	if (finished && p->unpacker != NULL)
		unpacker_offer(p->unpacker, d->digest);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int download_all(struct puller *p, struct download *ds, size_t n, berth_error_t *err)
{
	uint64_t last_report = 0;
	CURLM *m = curl_multi_init();
	unsigned limit = p->opts->concurrency ? p->opts->concurrency : CONCURRENCY;
	size_t next = 0, running = 0;
	int r = 0;

	for (;;) {
		CURLMsg *msg;
		int still, left;

		/* Start as many as the limit allows; stop starting after a failure. */
		while (r == 0 && next < n && running < limit) {
			struct download *d = &ds[next++];
			if (berth_image_store_has_blob(p->s, d->digest)) {
				d->done = true;
				report(p, d, true);
				continue;
			}
			r = berth_blob_writer_open(p->s, d->digest, &d->w, err);
			if (r == -EEXIST) {
				/* Another pull stored it while we waited for it. */
				r = 0;
				d->done = true;
				report(p, d, true);
				continue;
			}
			if (r < 0)
				break;
			if (d->size > 0 && d->w.offset == d->size) {
				/* A complete partial file from an earlier pull: just check it. */
				r = berth_blob_writer_commit(&d->w, d->digest, NULL, err);
				d->done = true;
				if (r == 0)
					report(p, d, true);
				continue;
			}
			report(p, d, false);
			download_setup(d);
			curl_multi_add_handle(m, d->c);
			running++;
		}
		if (running == 0 || r != 0)
			break;
		curl_multi_perform(m, &still);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct download *d;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
			curl_multi_remove_handle(m, d->c);
			running--;
			if (download_finish(d, msg->data.result) < 0) {
				if (r == 0) {
					*err = d->err;
					r = berth_error_ret(err);
				}
			} else {
				report(p, d, true);
			}
			d->done = true;
			curl_easy_cleanup(d->c);
			d->c = NULL;
			curl_slist_free_all(d->headers);
			d->headers = NULL;
			response_free(&d->error_body);
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, PROGRESS_INTERVAL_MS, NULL);
		if (p->opts->progress != NULL && now_ms() - last_report >= PROGRESS_INTERVAL_MS) {
			last_report = now_ms();
			for (size_t i = 0; i < n; i++)
				if (ds[i].c != NULL)
					report(p, &ds[i], false);
		}
	}
	/* After a failure: the others stop, keeping what they have for the next pull. */
	for (size_t i = 0; i < n; i++) {
		if (ds[i].c != NULL) {
			curl_multi_remove_handle(m, ds[i].c);
			curl_easy_cleanup(ds[i].c);
			curl_slist_free_all(ds[i].headers);
			response_free(&ds[i].error_body);
			berth_blob_writer_abort(&ds[i].w);
		}
	}
	curl_multi_cleanup(m);
	return r;
}

/* Credentials for the registry from a Docker-style config.json ("auths"). */
static int load_credentials(struct puller *p, berth_error_t *err)
{
	json_t *doc = NULL, *entry = NULL, *auths;
	const char *key;
	json_t *v;
	int r;

	if (p->opts->auth_file == NULL)
		return 0;
	r = berth_image_read_json(p->opts->auth_file, 1u << 20, &doc, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return berth_error_wrap(err, "auth file");
	auths = json_object_get(doc, "auths");
	json_object_foreach (auths, key, v) {
		const char *k = key;
		if (strncmp(k, "https://", 8) == 0)
			k += 8;
		else if (strncmp(k, "http://", 7) == 0)
			k += 7;
		if (strncmp(k, p->ref->registry, strlen(p->ref->registry)) == 0 &&
		    (k[strlen(p->ref->registry)] == '\0' || k[strlen(p->ref->registry)] == '/')) {
			entry = v;
			break;
		}
	}
	if (entry != NULL) {
		const char *b64 = json_string_value(json_object_get(entry, "auth"));
		const char *user = json_string_value(json_object_get(entry, "username"));
		const char *pass = json_string_value(json_object_get(entry, "password"));
		if (b64 != NULL) {
			struct base64_decode_ctx ctx;
			size_t len = BASE64_DECODE_LENGTH(strlen(b64));
			uint8_t *buf = xmalloc(len + 1);
			base64_decode_init(&ctx);
			if (!base64_decode_update(&ctx, &len, buf, strlen(b64), b64) ||
			    !base64_decode_final(&ctx) || memchr(buf, ':', len) == NULL) {
				free(buf);
				json_decref(doc);
				return berth_error_set_plain(
				        err, EINVAL,
				        "auth file `%s`: the \"auth\" of `%s` is "
				        "not base64 of USER:PASSWORD",
				        p->opts->auth_file, p->ref->registry);
			}
			buf[len] = '\0';
			p->userpass = (char *)buf;
		} else if (user != NULL && pass != NULL) {
			p->userpass = xasprintf("%s:%s", user, pass);
		}
	}
	json_decref(doc);
	return 0;
}

static void puller_free(struct puller *p)
{
	free(p->name);
	free(p->base);
	free(p->auth);
	if (p->userpass != NULL)
		explicit_bzero(p->userpass, strlen(p->userpass));
	free(p->userpass);
}

/*
 * Unpacking while downloading: as soon as a layer's blob is stored, a
 * worker thread unpacks it (the diff ids come from the config, fetched
 * first), so that a pull ends about when its last download does.
 */
#define UNPACKERS_MAX 4

struct unpacker {
	struct berth_image_store *s;
	const struct berth_image_manifest *m;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool *queued; /* per layer */
	size_t *queue, head, tail;
	bool closed;
	pthread_t threads[UNPACKERS_MAX];
	size_t nthreads;
	int r;
	berth_error_t err;
};

static void *unpacker_main(void *arg)
{
	struct unpacker *u = arg;

	for (;;) {
		berth_error_t err;
		char *dir = NULL;
		size_t i;
		int r;

		pthread_mutex_lock(&u->lock);
		while (u->head == u->tail && !u->closed)
			pthread_cond_wait(&u->cond, &u->lock);
		if (u->head == u->tail) {
			pthread_mutex_unlock(&u->lock);
			return NULL;
		}
		i = u->queue[u->head++];
		pthread_mutex_unlock(&u->lock);
		r = berth_image_store_layer(u->s, u->m->layers[i].digest, u->m->layers[i].diff_id,
		                            &dir, &err);
		free(dir);
		if (r < 0) {
			pthread_mutex_lock(&u->lock);
			if (u->r == 0) {
				u->r = r;
				u->err = err;
			}
			pthread_mutex_unlock(&u->lock);
		}
	}
}

static void unpacker_offer(struct unpacker *u, const char *digest)
{
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->m->nlayers; i++) {
		if (!u->queued[i] && strcmp(u->m->layers[i].digest, digest) == 0) {
			u->queued[i] = true;
			u->queue[u->tail++] = i;
		}
	}
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

static void unpacker_start(struct unpacker *u, struct berth_image_store *s,
                           const struct berth_image_manifest *m)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = cpus > 0 && cpus < UNPACKERS_MAX ? (size_t)cpus : UNPACKERS_MAX;

	memset(u, 0, sizeof(*u));
	u->s = s;
	u->m = m;
	u->queued = xcalloc(m->nlayers + 1, sizeof(*u->queued));
	u->queue = xcalloc(m->nlayers + 1, sizeof(*u->queue));
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	while (u->nthreads < want &&
	       pthread_create(&u->threads[u->nthreads], NULL, unpacker_main, u) == 0)
		u->nthreads++;
}

/* Wait for the unpacking of what was offered; its first failure, if any. */
static int unpacker_finish(struct unpacker *u, berth_error_t *err)
{
	int r;

	pthread_mutex_lock(&u->lock);
	u->closed = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	for (size_t i = 0; i < u->nthreads; i++)
		pthread_join(u->threads[i], NULL);
	r = u->r;
	if (r < 0 && err != NULL)
		*err = u->err;
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u->queued);
	free(u->queue);
	return r;
}

/* Download blobs; a token that expired meanwhile is renewed once and the rest fetched. */
static int fetch_blobs(struct puller *p, struct download *ds, size_t n, berth_error_t *err)
{
	int r = download_all(p, ds, n, err);

	if (r == -EKEYEXPIRED) {
		/* Once: a new token, then the blobs not yet stored (partial ones resume). */
		r = authenticate(p, p->challenge, err);
		for (size_t i = 0; r == 0 && i < n; i++) {
			ds[i].started = ds[i].writer_failed = ds[i].done = false;
			ds[i].status = 0;
			ds[i].resumed_at = 0;
			ds[i].w.fd = -1;
		}
		if (r == 0)
			r = download_all(p, ds, n, err);
		if (r == -EKEYEXPIRED)
			r = berth_error_set_plain(
			        err, EACCES, "registry `%s` refused a blob again with a new token",
			        p->ref->registry);
	}
	return r;
}

int berth_image_pull(struct berth_image_store *s, const struct berth_image_ref *ref,
                     const struct berth_pull_options *opts, char digest[BERTH_DIGEST_MAX],
                     berth_error_t *err)
{
	static const struct berth_pull_options defaults = {0};
	struct puller p = {.s = s, .ref = ref, .opts = opts != NULL ? opts : &defaults};
	struct berth_image_manifest m = {0};
	struct unpacker unpacker;
	struct download *ds = NULL;
	json_t *doc = NULL;
	char media_type[128];
	size_t n = 0;
	int r;

	pthread_once(&curl_once, init_curl);
	p.name = berth_image_ref_string(ref);
	p.insecure = is_loopback(berth_image_ref_endpoint(ref));
	for (size_t i = 0; !p.insecure && p.opts->insecure != NULL && p.opts->insecure[i]; i++)
		p.insecure = strcmp(p.opts->insecure[i], ref->registry) == 0;
	p.base = xasprintf("%s://%s/v2/%s", p.insecure ? "http" : "https",
	                   berth_image_ref_endpoint(ref), ref->repository);
	r = load_credentials(&p, err);
	if (r < 0)
		goto out;
	if (!p.opts->quiet)
		berth_info("%s: pulling from %s", p.name, p.base);
	r = fetch_manifest(&p, ref->digest != NULL ? ref->digest : ref->tag, digest, &doc,
	                   media_type, sizeof(media_type), err);
	if (r < 0)
		goto out;
	if (berth_image_is_index(doc, media_type)) {
		char chosen[BERTH_DIGEST_MAX];
		r = berth_image_index_select(doc, NULL, chosen, NULL, 0, err);
		json_decref(doc);
		doc = NULL;
		if (r < 0)
			goto out;
		r = fetch_manifest(&p, chosen, digest, &doc, media_type, sizeof(media_type), err);
		if (r < 0)
			goto out;
		if (berth_image_is_index(doc, media_type)) {
			r = berth_error_set_plain(err, EINVAL,
			                          "the linux/amd64 entry is another index");
			goto out;
		}
	}
	r = berth_image_manifest_parse(doc, &m, err);
	if (r < 0)
		goto out;
	ds = xcalloc(m.nlayers + 1, sizeof(*ds));
	snprintf(ds[n].digest, sizeof(ds[n].digest), "%s", m.config_digest);
	ds[n].size = m.config_size;
	ds[n].p = &p;
	n++;
	for (size_t i = 0; i < m.nlayers; i++) {
		bool dup = false;
		for (size_t k = 0; k < n; k++)
			dup = dup || strcmp(ds[k].digest, m.layers[i].digest) == 0;
		if (dup)
			continue;
		snprintf(ds[n].digest, sizeof(ds[n].digest), "%s", m.layers[i].digest);
		ds[n].size = m.layers[i].size;
		ds[n].p = &p;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		ds[i].w.fd = -1;
	/* The config first: its diff ids let layers be unpacked as they arrive. */
	r = fetch_blobs(&p, ds, 1, err);
	if (r == 0) {
		json_t *config = NULL;
		r = berth_image_store_read_json(s, m.config_digest, &config, err);
		if (r == 0)
			r = berth_image_config_diff_ids(config, &m, err);
		json_decref(config);
	}
	if (r < 0)
		goto out;
	unpacker_start(&unpacker, s, &m);
	p.unpacker = &unpacker;
	r = fetch_blobs(&p, ds + 1, n - 1, err);
	p.unpacker = NULL;
	if (r == 0)
		r = unpacker_finish(&unpacker, err);
	else
		unpacker_finish(&unpacker, NULL);
	if (r < 0)
		goto out;
	r = berth_image_store_commit_image(s, p.name, digest, NULL, err);
	if (r == 0 && !p.opts->quiet)
		berth_info("%s: %s, %zu layers", p.name, digest, m.nlayers);
out:
	if (r < 0)
		berth_error_wrap(err, "pull `%s`", p.name);
	free(ds);
	berth_image_manifest_free(&m);
	json_decref(doc);
	puller_free(&p);
	return r;
}
