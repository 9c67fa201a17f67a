/* SPDX-License-Identifier: Apache-2.0 */
/* An image as the runtime uses it: its layers unpacked, top first, and its config. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "berth/util.h"
#include "image-internal.h"

void berth_image_free(struct berth_image *img)
{
	if (img == NULL)
		return;
	berth_strv_free(img->layer_dirs);
	json_decref(img->config);
	free(img);
}

/* Layers are unpacked in parallel: decompression and file creation keep a core busy each. */
#define UNPACK_THREADS_MAX 4

struct unpack_jobs {
	struct berth_image_store *s;
	const struct berth_image_manifest *m;
	char **dirs; /* bottom first, as the manifest */
	berth_error_t *errs;
	int *rets;
	size_t next; /* the next layer to take (atomic) */
};

static void *unpack_worker(void *arg)
{
	struct unpack_jobs *j = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->m->nlayers)
		j->rets[i] =
		        berth_image_store_layer(j->s, j->m->layers[i].digest,
		                                j->m->layers[i].diff_id, &j->dirs[i], &j->errs[i]);
	return NULL;
}

static int unpack_layers(struct berth_image_store *s, const struct berth_image_manifest *m,
                         char **dirs, berth_error_t *err)
{
	struct unpack_jobs j = {.s = s, .m = m, .dirs = dirs};
	pthread_t threads[UNPACK_THREADS_MAX];
	size_t nthreads = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = m->nlayers < UNPACK_THREADS_MAX ? m->nlayers : UNPACK_THREADS_MAX;
	int r = 0;

	if (cpus > 0 && (size_t)cpus < want)
		want = (size_t)cpus;
	j.errs = xcalloc(m->nlayers, sizeof(*j.errs));
	j.rets = xcalloc(m->nlayers, sizeof(*j.rets));
	/* This thread works too; the others are extra. */
	while (nthreads + 1 < want &&
	       pthread_create(&threads[nthreads], NULL, unpack_worker, &j) == 0)
		nthreads++;
	unpack_worker(&j);
	for (size_t i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	for (size_t i = 0; i < m->nlayers; i++) {
		if (j.rets[i] < 0) {
			*err = j.errs[i];
			r = j.rets[i];
			break;
		}
	}
	free(j.errs);
	free(j.rets);
	return r;
}

int berth_image_load(struct berth_image_store *s, const char *manifest_digest,
                     struct berth_image **out, berth_error_t *err)
{
	struct berth_image_manifest m = {0};
	struct berth_image *img = NULL;
	json_t *manifest = NULL, *config = NULL, *inner;
	int r;

	*out = NULL;
	r = berth_image_store_read_json(s, manifest_digest, &manifest, err);
	if (r < 0)
		goto out;
	if (berth_image_is_index(manifest, NULL)) {
		r = berth_error_set_plain(err, EINVAL, "%s is an index, not an image manifest",
		                          manifest_digest);
		goto out;
	}
	r = berth_image_manifest_parse(manifest, &m, err);
	if (r < 0)
		goto out;
	if (m.nlayers == 0) {
		r = berth_error_set_plain(err, EINVAL, "the image has no layers");
		goto out;
	}
	r = berth_image_store_read_json(s, m.config_digest, &config, err);
	if (r < 0)
		goto out;
	r = berth_image_config_diff_ids(config, &m, err);
	if (r < 0)
		goto out;
	img = xcalloc(1, sizeof(*img));
	snprintf(img->manifest_digest, sizeof(img->manifest_digest), "%s", manifest_digest);
	snprintf(img->config_digest, sizeof(img->config_digest), "%s", m.config_digest);
	img->nlayers = m.nlayers;
	img->layer_dirs = xcalloc(m.nlayers + 1, sizeof(char *));
	r = unpack_layers(s, &m, img->layer_dirs, err);
	if (r < 0)
		goto out;
	/* overlayfs takes the top layer first; the manifest lists the base first. */
	for (size_t i = 0; i < m.nlayers / 2; i++) {
		char *t = img->layer_dirs[i];
		img->layer_dirs[i] = img->layer_dirs[m.nlayers - 1 - i];
		img->layer_dirs[m.nlayers - 1 - i] = t;
	}
	inner = json_object_get(config, "config");
	img->config = json_is_object(inner) ? json_incref(inner) : json_object();
	*out = steal_pointer(&img);
	r = 0;
out:
	if (img != NULL) {
		/* A partly filled vector: free what is there. */
		for (size_t i = 0; i < img->nlayers; i++)
			free(img->layer_dirs[i]);
		free(img->layer_dirs);
		img->layer_dirs = NULL;
		berth_image_free(img);
	}
	berth_image_manifest_free(&m);
	json_decref(manifest);
	json_decref(config);
	if (r < 0)
		berth_error_wrap(err, "image %s", manifest_digest);
	return r;
}

int berth_image_store_commit_image(struct berth_image_store *s, const char *name,
                                   const char *manifest_digest, const char *stamp,
                                   berth_error_t *err)
{
	struct berth_image *img = NULL;
	int r = berth_image_load(s, manifest_digest, &img, err);

	berth_image_free(img);
	if (r < 0)
		return r;
	return name != NULL ? berth_image_store_tag_stamped(s, name, manifest_digest, stamp, err)
	                    : 0;
}

char *berth_image_record_name(const char *name)
{
	struct berth_image_ref ref;
	char *r;

	if (berth_digest_valid(name) || strncmp(name, "oci:", 4) == 0 ||
	    strncmp(name, "archive:", 8) == 0 || berth_image_ref_parse(name, &ref, NULL) < 0)
		return xstrdup(name);
	r = berth_image_ref_string(&ref);
	berth_image_ref_free(&ref);
	return r;
}

/* A record with what its manifest says: layers and their total size. */
static json_t *describe(struct berth_image_store *s, const char *digest, json_t *rec)
{
	json_t *manifest = NULL, *d;
	struct berth_image_manifest m;
	uint64_t size = 0;

	d = json_pack("{s:s, s:O, s:O, s:O}", "digest", digest, "tags",
	              json_object_get(rec, "tags"), "config", json_object_get(rec, "config"),
	              "created", json_object_get(rec, "created"));
	if (berth_image_store_read_json(s, digest, &manifest, NULL) == 0 &&
	    berth_image_manifest_parse(manifest, &m, NULL) == 0) {
		json_t *layers = json_array();
		for (size_t i = 0; i < m.nlayers; i++) {
			size += m.layers[i].size;
			json_array_append_new(layers,
			                      json_pack("{s:s, s:I}", "digest", m.layers[i].digest,
			                                "size", (json_int_t)m.layers[i].size));
		}
		json_object_set_new(d, "layers", layers);
		json_object_set_new(d, "size", json_integer((json_int_t)size));
		berth_image_manifest_free(&m);
	}
	json_decref(manifest);
	return d;
}

int berth_image_store_list(struct berth_image_store *s, json_t **out, berth_error_t *err)
{
	json_t *records = NULL, *rec;
	const char *digest;
	int r = berth_image_store_records(s, &records, err);

	if (r < 0)
		return r;
	*out = json_array();
	json_object_foreach (records, digest, rec)
		json_array_append_new(*out, describe(s, digest, rec));
	json_decref(records);
	return 0;
}

int berth_image_store_inspect(struct berth_image_store *s, const char *name, json_t **out,
                              berth_error_t *err)
{
	cleanup_free char *key = berth_image_record_name(name);
	json_t *records = NULL, *rec, *config = NULL;
	char digest[BERTH_DIGEST_MAX];
	int r;

	if (berth_digest_valid(key))
		snprintf(digest, sizeof(digest), "%s", key);
	else if (berth_image_store_lookup(s, key, digest, NULL) < 0)
		return berth_error_set_plain(err, ENOENT, "no image named `%s`", name);
	r = berth_image_store_records(s, &records, err);
	if (r < 0)
		return r;
	rec = json_object_get(records, digest);
	if (rec == NULL) {
		json_decref(records);
		return berth_error_set_plain(err, ENOENT, "no image `%s`", name);
	}
	*out = describe(s, digest, rec);
	json_decref(records);
	if (berth_image_store_read_json(s, json_string_value(json_object_get(*out, "config")),
	                                &config, NULL) == 0)
		json_object_set_new(*out, "config", config);
	return 0;
}
