/* SPDX-License-Identifier: Apache-2.0 */
/* Loading the file: read, clean, parse, index, then the sections in order. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "config/config-internal.h"

/*
 * The top level: berth's sections, then wrangler's (from its config schema,
 * wrangler 4.x), which configure the Worker and Cloudflare's deployment and
 * are accepted without a word. wrangler's own `routes` are the Worker's;
 * berth's are berth.routes.
 */
static const char *const top_fields[] = {
        "containers", "durable_objects", "migrations", "berth",
        /* wrangler */
        "$schema", "account_id", "ai", "ai_search", "ai_search_namespaces", "alias",
        "analytics_engine_datasets", "artifacts", "assets", "base_dir", "browser", "build",
        "cloudchamber", "compatibility_date", "compatibility_flags", "compliance_region",
        "d1_databases", "data_blobs", "define", "dev", "dispatch_namespaces", "env", "exports",
        "find_additional_modules", "first_party_worker", "flagship", "hyperdrive", "images",
        "jsx_factory", "jsx_fragment", "keep_names", "keep_vars", "kv_namespaces", "legacy_env",
        "limits", "logfwdr", "logpush", "main", "media", "minify", "mtls_certificates", "name",
        "no_bundle", "node_compat", "observability", "pages_build_output_dir", "pipelines",
        "placement", "preserve_file_names", "preview_urls", "previews", "python_modules", "queues",
        "r2_buckets", "ratelimits", "route", "routes", "rules", "secrets", "secrets_store_secrets",
        "send_email", "send_metrics", "services", "site", "stream", "streaming_tail_consumers",
        "tail_consumers", "text_blobs", "triggers", "tsconfig", "unsafe", "unsafe_hello_world",
        "upload_source_maps", "usage_model", "vars", "vectorize", "version_metadata",
        "vpc_networks", "vpc_services", "wasm_modules", "worker_loaders", "workers_dev",
        "workflows", "zone_id", NULL};

/*
 * jansson says where it stopped: past the token it complains about, which
 * it quotes as "near 'TOKEN'" when the token is short. Point at the token.
 */
static size_t syntax_error_offset(const json_error_t *e, size_t len)
{
	const char *near = strstr(e->text, " near '");
	size_t off = e->position > 0 ? (size_t)e->position : 0;

	if (off > len)
		off = len;
	if (near != NULL) {
		const char *tok = near + 7, *end = strrchr(tok, '\'');
		if (end != NULL && (size_t)(end - tok) <= off)
			off -= (size_t)(end - tok);
	}
	return off;
}

static void load_root(struct berth_config_ctx *c, const json_t *root)
{
	const json_t *containers = json_object_get(root, "containers");

	for (size_t i = 0; i < c->idx.n; i++) {
		const struct berth_config_pos *pos = &c->idx.v[i];
		unsigned line, col;
		if (pos->dup_of == SIZE_MAX)
			continue;
		berth_config_linecol(c, c->idx.v[pos->dup_of].key_off, &line, &col);
		berth_config_diag_off(c, BERTH_CONFIG_ERROR, pos->key_off,
		                      "%s%sis set twice (first at %u:%u)", pos->path,
		                      *pos->path ? ": " : "", line, col);
	}
	berth_config_unknown_fields(c, "", root, top_fields, NULL);
	if (containers != NULL)
		berth_config_load_classes(c, containers);
	if (containers == NULL || (json_is_array(containers) && json_array_size(containers) == 0))
		berth_config_diag(c, BERTH_CONFIG_WARNING, containers ? "containers" : "",
		                  "no container classes are defined: berthd has nothing to run");
	berth_config_load_durable_objects(c, root);
	berth_config_load_daemon(c, json_object_get(root, "berth"));
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

/* Parse and validate `text`; the diagnostics say what went wrong. */
static void load_text(struct berth_config_ctx *c)
{
	cleanup_free char *clean = NULL;
	json_error_t jerr;
	size_t bad_off;
	json_t *root;

	const char *nul;

	berth_config_ctx_lines(c);
	/* jansson takes a NUL byte for the end of the text in places: refuse it first. */
	nul = memchr(c->text, '\0', c->len);
	if (nul != NULL) {
		berth_config_diag_off(c, BERTH_CONFIG_ERROR, (size_t)(nul - c->text),
		                      "syntax error: a NUL byte (is this a text file?)");
		return;
	}
	if (berth_config_jsonc_clean(c->text, c->len, &clean, &bad_off) < 0) {
		berth_config_diag_off(c, BERTH_CONFIG_ERROR, bad_off,
		                      "syntax error: a /* comment is not closed");
		return;
	}
	if (is_blank(clean, c->len)) {
		berth_config_diag_off(
		        c, BERTH_CONFIG_ERROR, 0,
		        "the file is empty; a configuration is a JSON object ({ ... })");
		return;
	}
	root = json_loadb(clean, c->len, 0, &jerr);
	if (root == NULL) {
		berth_config_diag_off(c, BERTH_CONFIG_ERROR, syntax_error_offset(&jerr, c->len),
		                      "syntax error: %s", jerr.text);
		return;
	}
	c->root = root;
	if (!json_is_object(root)) {
		berth_config_diag_off(c, BERTH_CONFIG_ERROR, 0,
		                      "the configuration must be a JSON object ({ ... }), not %s",
		                      berth_config_type_name(root));
	} else {
		berth_config_index_build(&c->idx, clean, c->len);
		load_root(c, root);
	}
	json_decref(root);
	c->root = NULL;
}

int berth_config_load(const char *path, struct berth_config **out, struct berth_config_diags *diags,
                      berth_error_t *err)
{
	struct berth_config_ctx c = {.file = path, .diags = diags};
	struct berth_config *cfg = xcalloc(1, sizeof(*cfg));
	cleanup_free char *text = NULL;
	char cwd[PATH_MAX];
	size_t errors = diags->errors;
	struct stat st;
	int r;

	*out = NULL;
	cwd[0] = '\0';
	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) {
		r = -errno;
		berth_config_free(cfg);
		return berth_error_set(err, -r, "config `%s`: getcwd", path);
	}
	cfg->path = berth_config_resolve(cwd, path);
	cfg->dir = xstrndup(cfg->path, (size_t)(strrchr(cfg->path, '/') - cfg->path));
	if (cfg->dir[0] == '\0') {
		free(cfg->dir);
		cfg->dir = xstrdup("/");
	}
	c.cfg = cfg;

	r = berth_read_file_at(AT_FDCWD, path, BERTH_CONFIG_MAX_BYTES, &text, &c.len, err);
	if (r < 0) {
		if (r == -EFBIG)
			berth_config_diag_off(
			        &c, BERTH_CONFIG_ERROR, SIZE_MAX,
			        "is larger than %u MiB, too large for a configuration",
			        BERTH_CONFIG_MAX_BYTES >> 20);
		else
			berth_config_diag_off(&c, BERTH_CONFIG_ERROR, SIZE_MAX,
			                      "cannot be read: %s", strerror(-r));
		berth_config_free(cfg);
		return r;
	}
	c.text = text;
	if (stat(path, &st) == 0)
		c.file_mode = st.st_mode;

	load_text(&c);

	berth_config_index_free(&c.idx);
	free(c.line_starts);
	free(c.class_json_index);
	berth_config_diags_sort(diags);
	if (diags->errors > errors) {
		size_t n = diags->errors - errors;
		berth_config_free(cfg);
		return berth_error_set_plain(err, EINVAL, "`%s`: %zu error%s", path, n,
		                             n == 1 ? "" : "s");
	}
	*out = cfg;
	return 0;
}
