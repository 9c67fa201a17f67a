/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A class's image for a start: imported or pulled into the store
 * (STATE/images) the first time an instance of the class starts, then the
 * layers and the config's command, environment, working directory and user
 * put into the container's spec. Runs on a worker thread (it blocks on disk
 * and network), never on the loop.
 */
#ifndef BERTH_DAEMON_IMAGES_H
#define BERTH_DAEMON_IMAGES_H

#include <stdint.h>

#include "berth/error.h"
#include "berth/image-run.h"
#include "berth/image.h"
#include "berth/runtime.h"

/* What the spec points into, freed after the start. */
struct berthd_image_prep {
	struct berth_image *img;
	struct berth_image_run run;
	char *rootfs;
	uint16_t port; /* the image's one exposed TCP port, or 0 */
};

/*
 * Resolve `source` (a class's image_path) and fill `spec`: layers (or the
 * rootfs of a plain directory), argv (`entrypoint` when given, which
 * replaces the image's ENTRYPOINT and CMD, else the image's), env (the
 * image's, then `env` over it), workdir and uid/gid from the config.
 * Registries given in $BERTH_INSECURE_REGISTRIES (comma-separated) are
 * reached over plain HTTP, and $BERTH_AUTH_FILE has credentials.
 */
int berthd_image_prepare(const char *state_dir, const char *source, char *const *entrypoint,
                         char *const *env, const int *cancel, struct berth_container_spec *spec,
                         struct berthd_image_prep *prep, berth_error_t *err);
void berthd_image_prep_free(struct berthd_image_prep *prep);

struct berthd;

/*
 * At start and after a reload: pull, on worker threads, every class's
 * registry image the store does not have yet, so that first starts find it
 * there (each class's outcome is logged). A pull that fails here is tried
 * again by the class's first start. Pulls stop when d->images_cancel is set
 * (shutdown), keeping what they downloaded.
 */
void berthd_images_prefetch(struct berthd *d);

struct berth_http_request;

/*
 * /v1/images (each on a worker thread):
 *   GET    /v1/images         every image (digest, tags, layers, size)
 *   GET    /v1/images/NAME    one, with its config; NAME a reference or digest
 *   POST   /v1/images/pull    {"image": "REF"}: pull (again); answers when done,
 *                              or with ?stream=1 (or Accept: text/event-stream)
 *                              streams "progress" events, then "done" or "error"
 *   DELETE /v1/images/NAME    forget the name (blobs and layers stay)
 *   POST   /v1/images/prune   remove what no image and no living container uses
 */
void berthd_images_api(struct berthd *d, struct berth_http_request *req);

#endif
