/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bin/berth-image: the image store for programs that cannot link it. `berth`
 * is static and must not carry libcurl and libarchive, so `berth run --image`
 * execs this helper, which imports or pulls the image and prints what the
 * runtime needs as JSON on stdout:
 *
 *   berth-image resolve [OPTIONS] SOURCE
 *     {"kind": "image", "manifest": DIGEST, "layers": [DIR, ...] (top first),
 *      "config": {Entrypoint, Cmd, Env, ...}}
 *     {"kind": "rootfs", "rootfs": DIR}         (a plain root directory)
 *   berth-image pull [OPTIONS] REF              pull (again), print the digest
 *   berth-image import [OPTIONS] PATH[:TAG]     import a layout or archive
 *   berth-image ls [--json]                     the images in the store
 *   berth-image inspect NAME|DIGEST             one image as JSON
 *   berth-image rm NAME|DIGEST                  forget a name (blobs stay)
 *   berth-image prune [--json]                  remove what nothing uses
 *
 * $BERTH_INSECURE_REGISTRIES (comma-separated) and $BERTH_AUTH_FILE give
 * defaults for --insecure-registry and --auth-file.
 *
 * Progress and errors go to stderr; the exit status is 0 or 1 (2: usage).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berth/image.h"
#include "berth/log.h"
#include "berth/parse.h"
#include "berth/util.h"

#define DEFAULT_STATE_DIR "/var/lib/berth"
#define MAX_INSECURE      32

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: berth image COMMAND [OPTIONS] [IMAGE]\n"
	        "\n"
	        "Commands:\n"
	        "  pull REF          pull from a registry (again), print the digest\n"
	        "  import PATH[:TAG] import an OCI layout (DIR or DIR:TAG) or an image archive\n"
	        "                    (FILE or FILE:TAG, TAG one of its RepoTags)\n"
	        "  ls                list the images\n"
	        "  inspect IMAGE     an image's record, layers and config, as JSON\n"
	        "  rm IMAGE          forget a name (its blobs and layers stay until a prune)\n"
	        "  prune             remove what no image and no running container uses\n"
	        "  resolve IMAGE     import or pull unless stored; print layers and config\n"
	        "                    (what `berth run --image` uses)\n"
	        "\n"
	        "Options:\n"
	        "      --state-dir DIR           the store is DIR/images "
	        "(default " DEFAULT_STATE_DIR ")\n"
	        "      --insecure-registry HOST  reach HOST[:PORT] over plain HTTP (repeatable;\n"
	        "                                also $BERTH_INSECURE_REGISTRIES, "
	        "comma-separated)\n"
	        "      --auth-file FILE          credentials, as Docker's config.json (also\n"
	        "                                $BERTH_AUTH_FILE)\n"
	        "      --limit-rate SIZE         at most SIZE bytes per second per download\n"
	        "      --max-concurrent-downloads N  blobs fetched at once (default 3)\n"
	        "      --pull                    resolve: pull a reference even when stored\n"
	        "      --json                    ls, prune: JSON; pull: progress events and the\n"
	        "                                result as JSON lines\n"
	        "  -q, --quiet                   no progress on stderr\n"
	        "  -h, --help                    show this help\n"
	        "\n"
	        "IMAGE is a reference (docker.io/library/busybox:1.36, localhost:5000/app),\n"
	        "a manifest digest, or a recorded name (oci:/abs/dir:tag, archive:/abs/file).\n");
}

enum {
	OPT_STATE_DIR = 256,
	OPT_INSECURE,
	OPT_AUTH_FILE,
	OPT_PULL,
	OPT_LIMIT_RATE,
	OPT_CONCURRENT,
	OPT_JSON,
};

static const struct option options[] = {
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"insecure-registry", required_argument, NULL, OPT_INSECURE},
        {"auth-file", required_argument, NULL, OPT_AUTH_FILE},
        {"pull", no_argument, NULL, OPT_PULL},
        {"limit-rate", required_argument, NULL, OPT_LIMIT_RATE},
        {"max-concurrent-downloads", required_argument, NULL, OPT_CONCURRENT},
        {"quiet", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

/*
 * Progress of a pull: a bar per blob on a terminal (redrawn in place), or a
 * JSON object per event on stdout with --json.
 */
#define BARS_MAX  256
#define BAR_WIDTH 30

struct bars {
	bool json;
	size_t n, drawn;
	struct {
		char digest[BERTH_DIGEST_MAX];
		uint64_t done, total;
		bool finished;
	} b[BARS_MAX];
};

static void draw(struct bars *bs)
{
	if (bs->drawn > 0)
		fprintf(stderr, "\033[%zuA", bs->drawn);
	for (size_t i = 0; i < bs->n; i++) {
		char bar[BAR_WIDTH + 1];
		size_t fill = bs->b[i].total > 0
		                      ? (size_t)(bs->b[i].done * BAR_WIDTH / bs->b[i].total)
		                      : 0;

		if (fill > BAR_WIDTH)
			fill = BAR_WIDTH;
		memset(bar, ' ', BAR_WIDTH);
		memset(bar, '=', fill);
		bar[BAR_WIDTH] = '\0';
		fprintf(stderr, "\r\033[K%.12s  [%s]  %7.1f / %.1f MiB%s\n", bs->b[i].digest + 7,
		        bar, (double)bs->b[i].done / 1048576.0, (double)bs->b[i].total / 1048576.0,
		        bs->b[i].finished ? "  done" : "");
	}
	bs->drawn = bs->n;
	fflush(stderr);
}

static void on_progress(const struct berth_pull_progress *p, void *arg)
{
	struct bars *bs = arg;
	size_t i;

	if (bs->json) {
		json_t *ev = json_pack("{s:s, s:I, s:I, s:b}", "digest", p->digest, "done",
		                       (json_int_t)p->done, "total", (json_int_t)p->total,
		                       "finished", p->finished);
		json_dumpf(ev, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		fflush(stdout);
		json_decref(ev);
		return;
	}
	for (i = 0; i < bs->n; i++)
		if (strcmp(bs->b[i].digest, p->digest) == 0)
			break;
	if (i == bs->n) {
		if (bs->n == BARS_MAX)
			return;
		bs->n++;
		snprintf(bs->b[i].digest, sizeof(bs->b[i].digest), "%s", p->digest);
	}
	bs->b[i].done = p->done;
	bs->b[i].total = p->total;
	bs->b[i].finished = p->finished;
	draw(bs);
}

static int print_json(json_t *doc)
{
	int r = json_dumpf(doc, stdout, JSON_COMPACT);

	json_decref(doc);
	if (r < 0 || fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
		berth_error_log("write the answer: %s", strerror(errno));
		return 1;
	}
	return 0;
}

static int resolve(struct berth_image_store *s, const char *source,
                   const struct berth_pull_options *opts, bool pull)
{
	struct berth_image *img = NULL;
	berth_error_t err;
	json_t *layers;
	int r;

	r = berth_image_resolve(s, source, opts, pull, &img, &err);
	if (r == -EISDIR)
		return print_json(json_pack("{s:s, s:s}", "kind", "rootfs", "rootfs", source));
	if (r < 0) {
		berth_error_log("%s", err.message);
		return 1;
	}
	layers = json_array();
	for (size_t i = 0; i < img->nlayers; i++)
		json_array_append_new(layers, json_string(img->layer_dirs[i]));
	r = print_json(json_pack("{s:s, s:s, s:o, s:O}", "kind", "image", "manifest",
	                         img->manifest_digest, "layers", layers, "config", img->config));
	berth_image_free(img);
	return r;
}

static int pull(struct berth_image_store *s, const char *source,
                const struct berth_pull_options *opts, bool as_json)
{
	struct berth_image_ref ref;
	char digest[BERTH_DIGEST_MAX];
	berth_error_t err;
	int r;

	if (berth_image_ref_parse(source, &ref, &err) < 0) {
		berth_error_log("%s", err.message);
		return 1;
	}
	r = berth_image_pull(s, &ref, opts, digest, &err);
	berth_image_ref_free(&ref);
	if (r < 0) {
		if (as_json)
			print_json(json_pack("{s:s}", "error", err.message));
		berth_error_log("%s", err.message);
		return 1;
	}
	if (as_json)
		return print_json(json_pack("{s:s}", "image", digest));
	printf("%s\n", digest);
	return 0;
}

static int import(struct berth_image_store *s, const char *source)
{
	enum berth_image_source_kind kind;
	cleanup_free char *path = NULL;
	cleanup_free char *tag = NULL;
	char digest[BERTH_DIGEST_MAX];
	berth_error_t err;
	int r;

	r = berth_image_source_classify(source, &kind, &path, &tag, &err);
	if (r == 0 && kind == BERTH_IMAGE_SOURCE_LAYOUT)
		r = berth_image_import_layout(s, path, tag, digest, &err);
	else if (r == 0 && kind == BERTH_IMAGE_SOURCE_ARCHIVE)
		r = berth_image_import_archive(s, path, tag, digest, &err);
	else if (r == 0)
		r = berth_error_set_plain(
		        &err, EINVAL, "`%s` is neither an OCI image layout nor an image archive",
		        source);
	if (r < 0) {
		berth_error_log("%s", err.message);
		return 1;
	}
	printf("%s\n", digest);
	return 0;
}

static int list(struct berth_image_store *s, bool as_json)
{
	json_t *out = NULL, *d, *v;
	berth_error_t err;
	size_t i, k;

	if (berth_image_store_list(s, &out, &err) < 0) {
		berth_error_log("%s", err.message);
		return 1;
	}
	if (as_json)
		return print_json(out);
	printf("%-50s  %-12s  %6s  %10s\n", "NAME", "DIGEST", "LAYERS", "SIZE");
	json_array_foreach (out, i, d) {
		json_array_foreach (json_object_get(d, "tags"), k, v)
			printf("%-50s  %.12s  %6zu  %8.1f MB\n", json_string_value(v),
			       json_string_value(json_object_get(d, "digest")) + 7,
			       json_array_size(json_object_get(d, "layers")),
			       (double)json_integer_value(json_object_get(d, "size")) / 1e6);
	}
	json_decref(out);
	return 0;
}

static int inspect(struct berth_image_store *s, const char *name)
{
	json_t *d = NULL;
	berth_error_t err;

	if (berth_image_store_inspect(s, name, &d, &err) < 0) {
		berth_error_log("%s", err.message);
		return 1;
	}
	return print_json(d);
}

static int remove_name(struct berth_image_store *s, const char *name)
{
	cleanup_free char *key = berth_image_record_name(name);
	berth_error_t err;

	if (berth_image_store_untag(s, key, &err) < 0) {
		berth_error_log("%s", err.message);
		return 1;
	}
	return 0;
}

static int prune(struct berth_image_store *s, bool as_json)
{
	struct berth_prune_report rep;
	berth_error_t err;

	if (berth_image_store_prune(s, &rep, &err) < 0) {
		berth_error_log("%s", err.message);
		return 1;
	}
	if (as_json)
		return print_json(json_pack("{s:I, s:I, s:I, s:b}", "blobs", (json_int_t)rep.blobs,
		                            "layers", (json_int_t)rep.layers, "bytes",
		                            (json_int_t)rep.bytes, "layersKept",
		                            rep.layers_kept_all));
	printf("removed %llu blob%s (%.1f MB) and %llu layer%s\n", (unsigned long long)rep.blobs,
	       rep.blobs == 1 ? "" : "s", (double)rep.bytes / 1e6, (unsigned long long)rep.layers,
	       rep.layers == 1 ? "" : "s");
	if (rep.layers_kept_all)
		printf("layers kept: a running container's layers could not be known\n");
	return 0;
}

int main(int argc, char **argv)
{
	static struct bars bars;
	struct berth_pull_options opts = {0};
	char *insecure[MAX_INSECURE + 1] = {0};
	const char *state_dir = DEFAULT_STATE_DIR;
	struct berth_image_store *s = NULL;
	size_t ninsecure = 0;
	bool force_pull = false, as_json = false;
	const char *verb;
	berth_error_t err;
	int opt, status;

	berth_log_init("berth-image", BERTH_LOG_INFO);
	/* Defaults from the environment, so that `berth run --image` passes them on. */
	opts.auth_file = getenv("BERTH_AUTH_FILE");
	if (getenv("BERTH_INSECURE_REGISTRIES") != NULL) {
		char *list = xstrdup(getenv("BERTH_INSECURE_REGISTRIES")), *save = NULL;
		for (char *h = strtok_r(list, ",", &save); h != NULL && ninsecure < MAX_INSECURE;
		     h = strtok_r(NULL, ",", &save))
			insecure[ninsecure++] = h; /* `list` lives as long as the process */
	}
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "qh", options, NULL)) != -1) {
		switch (opt) {
		case OPT_STATE_DIR:
			state_dir = optarg;
			break;
		case OPT_INSECURE:
			if (ninsecure == MAX_INSECURE) {
				berth_error_log("too many --insecure-registry options");
				return 2;
			}
			insecure[ninsecure++] = optarg;
			break;
		case OPT_AUTH_FILE:
			opts.auth_file = optarg;
			break;
		case OPT_PULL:
			force_pull = true;
			break;
		case OPT_LIMIT_RATE:
			if (berth_parse_size(optarg, &opts.max_rate, &err) < 0) {
				berth_error_log("--limit-rate: %s", err.message);
				return 2;
			}
			break;
		case OPT_CONCURRENT: {
			uint64_t v;
			if (berth_parse_u64(optarg, 1, 64, &v, &err) < 0) {
				berth_error_log("--max-concurrent-downloads: %s", err.message);
				return 2;
			}
			opts.concurrency = (unsigned)v;
			break;
		}
		case 'q':
			opts.quiet = true;
			break;
		case OPT_JSON:
			as_json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	opts.insecure = insecure;
	/* Bars on a terminal; JSON events with `pull --json`; else a line per blob. */
	bars.json = as_json && strcmp(verb, "pull") == 0;
	if (bars.json || (!opts.quiet && isatty(STDERR_FILENO))) {
		opts.progress = on_progress;
		opts.progress_arg = &bars;
	}
	if (strcmp(verb, "ls") == 0 || strcmp(verb, "prune") == 0) {
		if (optind + 1 != argc) {
			berth_error_log("%s takes no arguments", verb);
			return 2;
		}
		if (berth_image_store_open(state_dir, &s, &err) < 0) {
			berth_error_log("%s", err.message);
			return 1;
		}
		status = strcmp(verb, "ls") == 0 ? list(s, as_json) : prune(s, as_json);
		berth_image_store_free(s);
		return status;
	}
	if (optind + 1 != argc - 1) {
		berth_error_log("%s: give exactly one image", verb);
		return 2;
	}
	if (berth_image_store_open(state_dir, &s, &err) < 0) {
		berth_error_log("%s", err.message);
		return 1;
	}
	if (strcmp(verb, "resolve") == 0)
		status = resolve(s, argv[optind + 1], &opts, force_pull);
	else if (strcmp(verb, "pull") == 0)
		status = pull(s, argv[optind + 1], &opts, as_json);
	else if (strcmp(verb, "import") == 0)
		status = import(s, argv[optind + 1]);
	else if (strcmp(verb, "inspect") == 0)
		status = inspect(s, argv[optind + 1]);
	else if (strcmp(verb, "rm") == 0)
		status = remove_name(s, argv[optind + 1]);
	else {
		berth_error_log("unknown command `%s` (resolve, pull, import, ls, inspect, rm or "
		                "prune)",
		                verb);
		status = 2;
	}
	berth_image_store_free(s);
	return status;
}
