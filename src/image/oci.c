/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image manifests, indexes (manifest lists) and configs: the OCI image spec
 * and Docker's schema 2, which have the same shape under other media types.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "image-internal.h"

#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
/* An image with more layers than this is refused (Docker's limit is 127 in practice). */
#define LAYERS_MAX 500

static const char *const layer_types[] = {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
};

bool berth_image_is_index(json_t *doc, const char *media_type)
{
	const char *mt = json_string_value(json_object_get(doc, "mediaType"));

	if (mt == NULL || *mt == '\0')
		mt = media_type;
	if (mt != NULL &&
	    (strcmp(mt, BERTH_MEDIA_OCI_INDEX) == 0 || strcmp(mt, BERTH_MEDIA_DOCKER_LIST) == 0))
		return true;
	/* An OCI index need not name its media type; "manifests" gives it away. */
	return json_is_array(json_object_get(doc, "manifests")) &&
	       json_object_get(doc, "layers") == NULL;
}

static bool platform_matches(json_t *platform)
{
	const char *os = json_string_value(json_object_get(platform, "os"));
	const char *arch = json_string_value(json_object_get(platform, "architecture"));

	return os != NULL && arch != NULL && strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0;
}

int berth_image_index_select(json_t *index, const char *ref_name, char digest[BERTH_DIGEST_MAX],
                             char *media_type, size_t media_type_len, berth_error_t *err)
{
	json_t *manifests = json_object_get(index, "manifests");
	json_t *m, *chosen = NULL;
	size_t i, candidates = 0;
	char names[512] = "";
	size_t used = 0;

	if (!json_is_array(manifests))
		return berth_error_set_plain(err, EINVAL, "the index has no \"manifests\" array");
	json_array_foreach (manifests, i, m) {
		const char *name = json_string_value(
		        json_object_get(json_object_get(m, "annotations"), REF_NAME_ANNOTATION));
		json_t *platform = json_object_get(m, "platform");

		if (name != NULL && used + strlen(name) + 4 < sizeof(names))
			used += (size_t)snprintf(names + used, sizeof(names) - used, "%s`%s`",
			                         used ? ", " : "", name);
		if (ref_name != NULL && (name == NULL || strcmp(name, ref_name) != 0))
			continue;
		/* Entries without a platform are taken as the host's (OCI layouts often omit it).
		 */
		if (platform != NULL && !platform_matches(platform))
			continue;
		candidates++;
		if (chosen == NULL ||
		    (platform != NULL && json_object_get(chosen, "platform") == NULL))
			chosen = m;
	}
	if (chosen == NULL) {
		if (ref_name != NULL)
			return berth_error_set_plain(err, ENOENT, "no image tagged `%s`%s%s%s",
			                             ref_name, used ? " (there are: " : "", names,
			                             used ? ")" : "");
		return berth_error_set_plain(err, ENOENT, "no image for linux/amd64");
	}
	if (ref_name == NULL && candidates > 1 && used > 0 &&
	    json_object_get(chosen, "platform") == NULL)
		return berth_error_set_plain(err, EINVAL,
		                             "%zu images; pick one with :TAG (there are: %s)",
		                             candidates, names);
	if (!berth_digest_valid(json_string_value(json_object_get(chosen, "digest"))))
		return berth_error_set_plain(err, EINVAL,
		                             "an index entry has no valid sha256 digest");
	snprintf(digest, BERTH_DIGEST_MAX, "%s",
	         json_string_value(json_object_get(chosen, "digest")));
	if (media_type != NULL) {
		const char *mt = json_string_value(json_object_get(chosen, "mediaType"));
		snprintf(media_type, media_type_len, "%s", mt != NULL ? mt : "");
	}
	return 0;
}

static int descriptor(json_t *d, const char *what, char digest[BERTH_DIGEST_MAX], uint64_t *size,
                      berth_error_t *err)
{
	const char *dg = json_string_value(json_object_get(d, "digest"));
	json_t *sz = json_object_get(d, "size");

	if (!json_is_object(d))
		return berth_error_set_plain(err, EINVAL, "manifest: %s is missing", what);
	if (!berth_digest_valid(dg))
		return berth_error_set_plain(
		        err, EINVAL, "manifest: %s has no valid digest (sha256 only)", what);
	if (sz != NULL && (!json_is_integer(sz) || json_integer_value(sz) < 0))
		return berth_error_set_plain(err, EINVAL, "manifest: %s has a bad size", what);
	snprintf(digest, BERTH_DIGEST_MAX, "%s", dg);
	*size = sz != NULL ? (uint64_t)json_integer_value(sz) : 0;
	return 0;
}

int berth_image_manifest_parse(json_t *doc, struct berth_image_manifest *m, berth_error_t *err)
{
	json_t *layers = json_object_get(doc, "layers");
	json_t *l;
	size_t i;
	int r;

	memset(m, 0, sizeof(*m));
	if (json_integer_value(json_object_get(doc, "schemaVersion")) != 2)
		return berth_error_set_plain(err, EINVAL,
		                             "manifest: schemaVersion is not 2 (schema 1 images "
		                             "are not supported)");
	r = descriptor(json_object_get(doc, "config"), "the config", m->config_digest,
	               &m->config_size, err);
	if (r < 0)
		return r;
	if (!json_is_array(layers))
		return berth_error_set_plain(err, EINVAL, "manifest: no \"layers\" array");
	if (json_array_size(layers) > LAYERS_MAX)
		return berth_error_set_plain(err, E2BIG, "manifest: more than %d layers",
		                             LAYERS_MAX);
	m->nlayers = json_array_size(layers);
	m->layers = xcalloc(m->nlayers + 1, sizeof(*m->layers));
	json_array_foreach (layers, i, l) {
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		char what[32];
		bool known = mt == NULL;

		snprintf(what, sizeof(what), "layer %zu", i);
		for (size_t k = 0; !known && k < BERTH_ARRAY_SIZE(layer_types); k++)
			known = strcmp(mt, layer_types[k]) == 0;
		if (!known) {
			r = berth_error_set_plain(
			        err, EINVAL,
			        "manifest: layer %zu has media type `%s`, which is "
			        "not an image layer",
			        i, mt);
			berth_image_manifest_free(m);
			return r;
		}
		r = descriptor(l, what, m->layers[i].digest, &m->layers[i].size, err);
		if (r < 0) {
			berth_image_manifest_free(m);
			return r;
		}
	}
	return 0;
}

int berth_image_config_diff_ids(json_t *config, struct berth_image_manifest *m, berth_error_t *err)
{
	json_t *ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
	json_t *v;
	size_t i;

	if (!json_is_array(ids) || json_array_size(ids) != m->nlayers)
		return berth_error_set_plain(err, EINVAL,
		                             "image config: rootfs.diff_ids does not list one "
		                             "digest per layer (%zu layers)",
		                             m->nlayers);
	json_array_foreach (ids, i, v) {
		if (!berth_digest_valid(json_string_value(v)))
			return berth_error_set_plain(err, EINVAL,
			                             "image config: diff_ids[%zu] is not a sha256 "
			                             "digest",
			                             i);
		snprintf(m->layers[i].diff_id, BERTH_DIGEST_MAX, "%s", json_string_value(v));
	}
	return 0;
}

void berth_image_manifest_free(struct berth_image_manifest *m)
{
	free(m->layers);
	memset(m, 0, sizeof(*m));
}
