/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image module's pure parts and the store on a temporary directory:
 * references, digests, verified and resumable blob writes, layer unpacking
 * (whiteouts, opaque directories, refused paths), index selection and the
 * image config's rules. Unpacking as overlayfs wants it needs root (device
 * nodes, trusted.* attributes); those cases say so when skipped.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/fs.h"
#include "berth/image-run.h"
#include "berth/image.h"
#include "berth/util.h"

static void test_ref_parse(void **state)
{
	static const struct {
		const char *in, *registry, *repository, *tag, *digest;
	} good[] = {
	        {"busybox", "docker.io", "library/busybox", "latest", NULL},
	        {"busybox:1.36", "docker.io", "library/busybox", "1.36", NULL},
	        {"team/app", "docker.io", "team/app", "latest", NULL},
	        {"docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest",
	         NULL},
	        {"registry.example:5000/team/app:1.2", "registry.example:5000", "team/app", "1.2",
	         NULL},
	        {"localhost/app", "localhost", "app", "latest", NULL},
	        {"localhost:5000/a/b/c:v_1.0-x", "localhost:5000", "a/b/c", "v_1.0-x", NULL},
	        {"127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", NULL},
	        {"[::1]:5000/app:t", "[::1]:5000", "app", "t", NULL},
	        {"a.b/x__y/z--w", "a.b", "x__y/z--w", "latest", NULL},
	        {"app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	         "docker.io", "library/app", NULL,
	         "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	        {"r.io/"
	         "app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	         "r.io", "app", "1",
	         "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	};
	static const struct {
		const char *in, *msg;
	} bad[] = {
	        {"", "empty image reference"},
	        {"Busybox", "image reference `Busybox`: `Busybox` is not a valid name component"},
	        {"a//b", "image reference `a//b`: `` is not a valid name component"},
	        {"app:", "image reference `app:`: `` is not a valid tag"},
	        {"app:-x", "image reference `app:-x`: `-x` is not a valid tag"},
	        {"app@sha256:12", "image reference `app@sha256:12`: `sha256:12` is not a digest"},
	        {"app@md5:0123", "is not a digest"},
	        {"-app", "`-app` is not a valid name component"},
	        {"app_", "`app_` is not a valid name component"},
	        {"a.b:x/app", "`a.b:x` is not a valid registry host"},
	        {"a.b:123456/app", "is not a valid registry host"},
	        {"r.io/a..b", "`a..b` is not a valid name component"},
	        {"r.io/a-_-b", "`a-_-b` is not a valid name component"},
	};
	struct berth_image_ref ref;
	berth_error_t err;
	(void)state;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(good); i++) {
		if (berth_image_ref_parse(good[i].in, &ref, &err) < 0)
			fail_msg("`%s`: %s", good[i].in, err.message);
		assert_string_equal(ref.registry, good[i].registry);
		assert_string_equal(ref.repository, good[i].repository);
		if (good[i].tag == NULL)
			assert_null(ref.tag);
		else
			assert_string_equal(ref.tag, good[i].tag);
		if (good[i].digest == NULL)
			assert_null(ref.digest);
		else
			assert_string_equal(ref.digest, good[i].digest);
		berth_image_ref_free(&ref);
	}
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(bad); i++) {
		if (berth_image_ref_parse(bad[i].in, &ref, &err) != -EINVAL)
			fail_msg("`%s` was not refused", bad[i].in);
		if (strstr(err.message, bad[i].msg) == NULL)
			fail_msg("`%s`: message `%s` lacks `%s`", bad[i].in, err.message,
			         bad[i].msg);
	}
	/* 255 characters at most, counted as Docker does: with the registry, normalized. */
	{
		char name[300];
		memset(name, 'a', sizeof(name));
		name[255 - strlen("docker.io/library/")] = '\0';
		assert_int_equal(berth_image_ref_parse(name, &ref, NULL), 0);
		berth_image_ref_free(&ref);
		name[strlen(name)] = 'a';
		name[256 - strlen("docker.io/library/")] = '\0';
		assert_int_equal(berth_image_ref_parse(name, &ref, &err), -EINVAL);
		assert_non_null(
		        strstr(err.message, "longer than 255 characters (with its registry)"));
	}
	assert_int_equal(berth_image_ref_parse("busybox", &ref, NULL), 0);
	{
		cleanup_free char *s = berth_image_ref_string(&ref);
		assert_string_equal(s, "docker.io/library/busybox:latest");
		assert_string_equal(berth_image_ref_endpoint(&ref), "registry-1.docker.io");
	}
	berth_image_ref_free(&ref);
}

static void test_digests(void **state)
{
	char d[BERTH_DIGEST_MAX];
	(void)state;

	berth_digest_of("", 0, d);
	assert_string_equal(
	        d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_true(berth_digest_valid(d));
	assert_false(berth_digest_valid(
	        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	assert_false(berth_digest_valid("sha256:e3b0"));
	assert_false(berth_digest_valid(
	        "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_false(berth_digest_valid(
	        "sha256:../../../etc/passwdxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
	assert_false(berth_digest_valid(NULL));
}

struct fixture {
	char dir[64];
	struct berth_image_store *s;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	berth_error_t err;

	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-test-image-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (berth_image_store_open(f->dir, &f->s, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	berth_image_store_free(f->s);
	berth_rmtree(f->dir, NULL);
	free(f);
	return 0;
}

static size_t count_entries(const char *dir)
{
	cleanup_closedir DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	return n;
}

static void test_blob_verified(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *tmp = xasprintf("%s/images/tmp", f->dir);
	cleanup_free char *blobs = xasprintf("%s/images/blobs/sha256", f->dir);
	char d[BERTH_DIGEST_MAX], want[BERTH_DIGEST_MAX];
	berth_error_t err;

	berth_digest_of("hello", 5, want);
	assert_int_equal(berth_image_store_put(f->s, "hellO", 5, want, d, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "content does not match its digest"));
	assert_false(berth_image_store_has_blob(f->s, want));
	assert_int_equal(count_entries(blobs), 0);
	assert_int_equal(count_entries(tmp), 0);
	assert_int_equal(berth_image_store_put(f->s, "hello", 5, want, d, &err), 0);
	assert_string_equal(d, want);
	assert_true(berth_image_store_has_blob(f->s, want));
	/* Again: already there, still checked. */
	assert_int_equal(berth_image_store_put(f->s, "hello", 5, want, d, &err), 0);
	assert_int_equal(berth_image_store_put(f->s, "hellO", 5, want, d, &err), -EBADMSG);
}

static void test_blob_resume(void **state)
{
	struct fixture *f = *state;
	struct berth_blob_writer w;
	char want[BERTH_DIGEST_MAX];
	berth_error_t err;

	berth_digest_of("0123456789", 10, want);
	assert_int_equal(berth_blob_writer_open(f->s, want, &w, &err), 0);
	assert_int_equal(w.offset, 0);
	assert_int_equal(berth_blob_writer_write(&w, "01234", 5, &err), 0);
	berth_blob_writer_abort(&w); /* interrupted: the partial file stays, not the blob */
	assert_false(berth_image_store_has_blob(f->s, want));
	assert_int_equal(berth_blob_writer_open(f->s, want, &w, &err), 0);
	assert_int_equal(w.offset, 5);
	assert_int_equal(berth_blob_writer_write(&w, "56789", 5, &err), 0);
	assert_int_equal(berth_blob_writer_commit(&w, want, NULL, &err), 0);
	assert_true(berth_image_store_has_blob(f->s, want));
}

/* A tar in a memfd, made with libarchive. */
struct entry {
	const char *path;
	mode_t type;
	const char *data; /* regular files; symlink or hard link target */
	mode_t perm;
};

static int make_tar(const struct entry *es, size_t n, bool gzip)
{
	struct archive *a = archive_write_new();
	int fd = memfd_create("layer", MFD_CLOEXEC);

	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, es[i].path);
		archive_entry_set_perm(e, es[i].perm ? es[i].perm : 0644);
		if (es[i].type == 0) { /* a hard link */
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, es[i].data);
		} else {
			archive_entry_set_filetype(e, es[i].type);
		}
		if (es[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, es[i].data);
		if (es[i].type == AE_IFREG && es[i].data != NULL)
			archive_entry_set_size(e, (la_int64_t)strlen(es[i].data));
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (es[i].type == AE_IFREG && es[i].data != NULL)
			archive_write_data(a, es[i].data, strlen(es[i].data));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int unpack(struct fixture *f, const char *name, const struct entry *es, size_t n, bool gzip,
                  berth_error_t *err)
{
	cleanup_free char *dir = xasprintf("%s/%s", f->dir, name);
	cleanup_close int dfd = -1;
	cleanup_close int fd = make_tar(es, n, gzip);
	char diff[BERTH_DIGEST_MAX];

	mkdir(dir, 0700);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return berth_image_unpack(fd, dfd, NULL, diff, err);
}

static void test_unpack_whiteouts(void **state)
{
	struct fixture *f = *state;
	static const struct entry es[] = {
	        {"./", AE_IFDIR, NULL, 0755},
	        {"./etc/", AE_IFDIR, NULL, 0755},
	        {"./etc/passwd", AE_IFREG, "root:x:0:0::/:/bin/sh\n", 0644},
	        {"./etc/.wh.shadow", AE_IFREG, NULL, 0},
	        {"./opq/.wh..wh..opq", AE_IFREG, NULL, 0},
	        {"./opq/new", AE_IFREG, "n", 0644},
	        {"./bin/suid", AE_IFREG, "s", 04755},
	        {"./bin/link", AE_IFLNK, "/etc/passwd", 0777},
	        {"./bin/hard", 0, "bin/suid", 0},
	        {"./.wh..wh.plnk", AE_IFREG, NULL, 0},
	};
	cleanup_free char *root = xasprintf("%s/wh", f->dir);
	cleanup_free char *p = NULL;
	char buf[8];
	struct stat st, st2;
	berth_error_t err;

	if (geteuid() != 0)
		skip(); /* whiteouts are device nodes, opaque markers trusted.* attributes: root */
	if (unpack(f, "wh", es, BERTH_ARRAY_SIZE(es), true, &err) < 0)
		fail_msg("%s", err.message);
	p = xasprintf("%s/etc/shadow", root);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	free(p);
	p = xasprintf("%s/etc/.wh.shadow", root);
	assert_int_equal(lstat(p, &st), -1);
	free(p);
	p = xasprintf("%s/opq", root);
	assert_int_equal(getxattr(p, "trusted.overlay.opaque", buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'y');
	free(p);
	p = xasprintf("%s/opq/.wh..wh..opq", root);
	assert_int_equal(lstat(p, &st), -1);
	free(p);
	p = xasprintf("%s/bin/suid", root);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	free(p);
	p = xasprintf("%s/bin/hard", root);
	assert_int_equal(lstat(p, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	free(p);
	p = xasprintf("%s/bin/link", root);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* aufs's own bookkeeping is not carried over. */
	assert_int_equal(count_entries(root), 3);
}

static void test_unpack_refuses(void **state)
{
	struct fixture *f = *state;
	static const struct entry dotdot[] = {{"../evil", AE_IFREG, "x", 0644}};
	static const struct entry inner_dotdot[] = {{"a/../../evil", AE_IFREG, "x", 0644}};
	static const struct entry absolute[] = {{"/evil", AE_IFREG, "x", 0644}};
	static const struct entry symlinked[] = {
	        {"link", AE_IFLNK, "/tmp", 0777},
	        {"link/evil", AE_IFREG, "x", 0644},
	};
	static const struct entry hardlink_out[] = {{"h", 0, "../../etc/passwd", 0}};
	static const struct entry through_link[] = {
	        {"link", AE_IFLNK, "/etc", 0777},
	        {"h", 0, "link/passwd", 0},
	};
	berth_error_t err;
	(void)state;

	assert_int_equal(unpack(f, "r1", dotdot, 1, false, &err), -EPERM);
	assert_non_null(strstr(err.message, "`..` in a path is refused"));
	assert_int_equal(unpack(f, "r2", inner_dotdot, 1, false, &err), -EPERM);
	assert_int_equal(unpack(f, "r3", absolute, 1, false, &err), -EPERM);
	assert_non_null(strstr(err.message, "absolute paths are refused"));
	assert_int_equal(unpack(f, "r4", symlinked, 2, false, &err), -EPERM);
	assert_non_null(strstr(err.message, "among its parents, which is refused"));
	assert_int_equal(access("/tmp/evil", F_OK), -1);
	assert_int_equal(unpack(f, "r5", hardlink_out, 1, false, &err), -EPERM);
	assert_true(unpack(f, "r6", through_link, 2, false, &err) < 0);
}

static void test_unpack_diff_id(void **state)
{
	struct fixture *f = *state;
	static const struct entry es[] = {{"a", AE_IFREG, "hello", 0644}};
	cleanup_close int plain = make_tar(es, 1, false);
	cleanup_close int gz = make_tar(es, 1, true);
	cleanup_free char *d1 = xasprintf("%s/d1", f->dir);
	cleanup_free char *d2 = xasprintf("%s/d2", f->dir);
	cleanup_close int f1 = -1;
	cleanup_close int f2 = -1;
	char a[BERTH_DIGEST_MAX], b[BERTH_DIGEST_MAX], want[BERTH_DIGEST_MAX];
	struct stat st;
	char *text;
	berth_error_t err;

	/* The diff id is the digest of the uncompressed tar, whatever the compression. */
	assert_int_equal(fstat(plain, &st), 0);
	text = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, plain, 0);
	berth_digest_of(text, (size_t)st.st_size, want);
	munmap(text, (size_t)st.st_size);
	mkdir(d1, 0700);
	mkdir(d2, 0700);
	f1 = open(d1, O_RDONLY | O_DIRECTORY);
	f2 = open(d2, O_RDONLY | O_DIRECTORY);
	assert_int_equal(berth_image_unpack(plain, f1, NULL, a, &err), 0);
	assert_int_equal(berth_image_unpack(gz, f2, NULL, b, &err), 0);
	assert_string_equal(a, want);
	assert_string_equal(b, want);
}

static void test_index_select(void **state)
{
	json_t *idx = json_loads(
	        "{\"manifests\": ["
	        "{\"digest\": "
	        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
	        " \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\"}},"
	        "{\"digest\": "
	        "\"sha256:2222222222222222222222222222222222222222222222222222222222222222\","
	        " \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
	        " \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}},"
	        "{\"digest\": "
	        "\"sha256:3333333333333333333333333333333333333333333333333333333333333333\","
	        " \"annotations\": {\"org.opencontainers.image.ref.name\": \"v2\"}}]}",
	        0, NULL);
	char d[BERTH_DIGEST_MAX], mt[128];
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_image_index_select(idx, NULL, d, mt, sizeof(mt), &err), 0);
	assert_string_equal(
	        d, "sha256:2222222222222222222222222222222222222222222222222222222222222222");
	assert_string_equal(mt, BERTH_MEDIA_OCI_MANIFEST);
	assert_int_equal(berth_image_index_select(idx, "v2", d, NULL, 0, &err), 0);
	assert_string_equal(
	        d, "sha256:3333333333333333333333333333333333333333333333333333333333333333");
	assert_int_equal(berth_image_index_select(idx, "v3", d, NULL, 0, &err), -ENOENT);
	assert_string_equal(err.message, "no image tagged `v3` (there are: `v2`)");
	json_decref(idx);
	idx = json_loads(
	        "{\"manifests\": [{\"digest\": "
	        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
	        " \"platform\": {\"os\": \"windows\", \"architecture\": \"amd64\"}}]}",
	        0, NULL);
	assert_int_equal(berth_image_index_select(idx, NULL, d, NULL, 0, &err), -ENOENT);
	assert_string_equal(err.message, "no image for linux/amd64");
	json_decref(idx);
}

static void test_manifest_parse(void **state)
{
	json_t *m = json_loads(
	        "{\"schemaVersion\": 2, \"config\": {\"digest\": "
	        "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\", "
	        "\"size\": 7},"
	        " \"layers\": [{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\","
	        " \"digest\": "
	        "\"sha256:2222222222222222222222222222222222222222222222222222222222222222\", "
	        "\"size\": 9}]}",
	        0, NULL);
	json_t *cfg = json_loads(
	        "{\"rootfs\": {\"diff_ids\": "
	        "[\"sha256:3333333333333333333333333333333333333333333333333333333333333333\"]}}",
	        0, NULL);
	struct berth_image_manifest im;
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_image_manifest_parse(m, &im, &err), 0);
	assert_int_equal(im.nlayers, 1);
	assert_int_equal(im.layers[0].size, 9);
	assert_int_equal(berth_image_config_diff_ids(cfg, &im, &err), 0);
	assert_string_equal(
	        im.layers[0].diff_id,
	        "sha256:3333333333333333333333333333333333333333333333333333333333333333");
	berth_image_manifest_free(&im);
	json_object_set_new(json_array_get(json_object_get(m, "layers"), 0), "mediaType",
	                    json_string("application/vnd.cncf.helm.chart.content.v1.tar+gzip"));
	assert_int_equal(berth_image_manifest_parse(m, &im, &err), -EINVAL);
	assert_non_null(strstr(err.message, "which is not an image layer"));
	json_object_set_new(m, "schemaVersion", json_integer(1));
	assert_int_equal(berth_image_manifest_parse(m, &im, &err), -EINVAL);
	assert_non_null(strstr(err.message, "schema 1"));
	json_decref(m);
	json_decref(cfg);
}

static void test_run_config(void **state)
{
	json_t *cfg = json_loads("{\"Entrypoint\": [\"/e\"], \"Cmd\": [\"c1\", \"c2\"],"
	                         " \"Env\": [\"PATH=/bin\", \"A=1\"], \"WorkingDir\": \"/w\","
	                         " \"User\": \"app\", \"ExposedPorts\": {\"8080/tcp\": {}}}",
	                         0, NULL);
	char *cmd[] = {(char *)"x", NULL};
	char *ep[] = {(char *)"/mine", NULL};
	char *env[] = {(char *)"A=2", (char *)"B=3", NULL};
	struct berth_image_run r;
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_image_run_config(cfg, NULL, NULL, NULL, &r, &err), 0);
	assert_string_equal(r.argv[0], "/e");
	assert_string_equal(r.argv[1], "c1");
	assert_string_equal(r.argv[2], "c2");
	assert_null(r.argv[3]);
	assert_string_equal(r.workdir, "/w");
	assert_string_equal(r.user, "app");
	assert_int_equal(r.port, 8080);
	berth_image_run_free(&r);
	/* A command replaces CMD only. */
	assert_int_equal(berth_image_run_config(cfg, NULL, cmd, env, &r, &err), 0);
	assert_string_equal(r.argv[0], "/e");
	assert_string_equal(r.argv[1], "x");
	assert_null(r.argv[2]);
	assert_string_equal(r.env[0], "PATH=/bin");
	assert_string_equal(r.env[1], "A=2");
	assert_string_equal(r.env[2], "B=3");
	assert_null(r.env[3]);
	berth_image_run_free(&r);
	/* An entrypoint replaces both (as @cloudflare/containers' entrypoint). */
	assert_int_equal(berth_image_run_config(cfg, ep, NULL, NULL, &r, &err), 0);
	assert_string_equal(r.argv[0], "/mine");
	assert_null(r.argv[1]);
	berth_image_run_free(&r);
	json_decref(cfg);
	cfg = json_loads("{\"ExposedPorts\": {\"80/tcp\": {}, \"443/tcp\": {}}}", 0, NULL);
	assert_int_equal(berth_image_run_config(cfg, NULL, NULL, NULL, &r, &err), -EINVAL);
	assert_string_equal(err.message,
	                    "the image has no command (no Entrypoint or Cmd) and none was given");
	assert_int_equal(berth_image_exposed_port(cfg), 0);
	json_decref(cfg);
}

static void test_image_user(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *top = xasprintf("%s/top", f->dir);
	cleanup_free char *base = xasprintf("%s/base", f->dir);
	cleanup_free char *p = NULL;
	char *layers[] = {top, base, NULL};
	uint32_t uid, gid;
	berth_error_t err;
	static const char passwd[] = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n";
	static const char group[] = "root:x:0:\nstaff:x:50:\n";

	/* passwd in the base layer, group in the top one: each file from the topmost that has it.
	 */
	p = xasprintf("%s/etc", top);
	assert_int_equal(berth_mkdir_p(p, 0755, &err), 0);
	free(p);
	p = xasprintf("%s/etc", base);
	assert_int_equal(berth_mkdir_p(p, 0755, &err), 0);
	free(p);
	p = xasprintf("%s/etc/passwd", base);
	assert_int_equal(berth_write_file(p, passwd, strlen(passwd), 0644, &err), 0);
	free(p);
	p = xasprintf("%s/etc/group", top);
	assert_int_equal(berth_write_file(p, group, strlen(group), 0644, &err), 0);
	assert_int_equal(berth_image_user(layers, "app", &uid, &gid, &err), 0);
	assert_int_equal(uid, 1000);
	assert_int_equal(gid, 1001);
	assert_int_equal(berth_image_user(layers, "app:staff", &uid, &gid, &err), 0);
	assert_int_equal(gid, 50);
	assert_int_equal(berth_image_user(layers, "1000", &uid, &gid, &err), 0);
	assert_int_equal(gid, 1001);
	assert_int_equal(berth_image_user(layers, "42:7", &uid, &gid, &err), 0);
	assert_int_equal(uid, 42);
	assert_int_equal(gid, 7);
	assert_int_equal(berth_image_user(layers, "nobody", &uid, &gid, &err), -ENOENT);
	assert_string_equal(err.message, "user `nobody` of the image is not in its /etc/passwd");
	assert_int_equal(berth_image_user(layers, "app:wheel", &uid, &gid, &err), -ENOENT);
}

/* A file's whole content (a memfd from make_tar). */
static char *slurp(int fd, size_t *len)
{
	struct stat st;
	char *buf;

	assert_int_equal(fstat(fd, &st), 0);
	buf = xmalloc((size_t)st.st_size + 1);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	*len = (size_t)st.st_size;
	return buf;
}

struct member {
	const char *name;
	const char *data;
	size_t len;
};

/* An uncompressed tar file of regular files, as `docker save` writes. */
static void write_archive(const char *path, const struct member *ms, size_t n)
{
	struct archive *a = archive_write_new();

	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, ms[i].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)ms[i].len);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		archive_write_data(a, ms[i].data, ms[i].len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static void count_fetch(void *arg)
{
	(*(int *)arg)++;
}

/* A `docker save` archive of two images: ARCHIVE:TAG picks one, by RepoTags. */
static void test_archive_tags(void **state)
{
	struct fixture *f = *state;
	static const struct entry one[] = {{"one", AE_IFREG, "1", 0644}};
	static const struct entry two[] = {{"two", AE_IFREG, "2", 0644}};
	cleanup_close int t1 = make_tar(one, 1, false);
	cleanup_close int t2 = make_tar(two, 1, false);
	cleanup_free char *save = xasprintf("%s/save.tar", f->dir);
	cleanup_free char *l1 = NULL, *l2 = NULL, *c1 = NULL, *c2 = NULL, *src = NULL;
	cleanup_free char *p = NULL, *t = NULL;
	char d1[BERTH_DIGEST_MAX], d2[BERTH_DIGEST_MAX], diff[BERTH_DIGEST_MAX];
	char got[BERTH_DIGEST_MAX];
	const char *manifest =
	        "[{\"Config\": \"c1.json\", \"RepoTags\": [\"team/app:1.2\"], \"Layers\": "
	        "[\"l1/layer.tar\"]},"
	        " {\"Config\": \"c2.json\", \"RepoTags\": [\"busybox:latest\"], \"Layers\": "
	        "[\"l2/layer.tar\"]}]";
	struct berth_pull_options opts = {0};
	enum berth_image_source_kind kind;
	struct berth_image *img = NULL;
	size_t n1, n2;
	int fetched = 0;
	berth_error_t err;

	l1 = slurp(t1, &n1);
	l2 = slurp(t2, &n2);
	berth_digest_of(l1, n1, diff);
	c1 = xasprintf("{\"architecture\": \"amd64\", \"os\": \"linux\", \"config\": "
	               "{\"Cmd\": [\"one\"]}, \"rootfs\": {\"type\": \"layers\", "
	               "\"diff_ids\": [\"%s\"]}}",
	               diff);
	berth_digest_of(l2, n2, diff);
	c2 = xasprintf("{\"architecture\": \"amd64\", \"os\": \"linux\", \"config\": "
	               "{\"Cmd\": [\"two\"]}, \"rootfs\": {\"type\": \"layers\", "
	               "\"diff_ids\": [\"%s\"]}}",
	               diff);
	{
		const struct member ms[] = {
		        {"manifest.json", manifest, strlen(manifest)},
		        {"c1.json", c1, strlen(c1)},
		        {"c2.json", c2, strlen(c2)},
		        {"l1/layer.tar", l1, n1},
		        {"l2/layer.tar", l2, n2},
		};
		write_archive(save, ms, BERTH_ARRAY_SIZE(ms));
	}

	/* Several images and no tag: refused, naming the tags to pick from. */
	assert_int_equal(berth_image_import_archive(f->s, save, NULL, d1, &err), -EINVAL);
	p = xasprintf("import `%s`: it holds 2 images; pick one with `%s:TAG` (there are: "
	              "`team/app:1.2`, `busybox:latest`)",
	              save, save);
	assert_string_equal(err.message, p);
	free(steal_pointer(&p));
	assert_int_equal(berth_image_import_archive(f->s, save, "team/app:9", d1, &err), -ENOENT);
	assert_non_null(strstr(err.message, "no image tagged `team/app:9` (there are: "
	                                    "`team/app:1.2`, `busybox:latest`)"));

	/* Picked by its RepoTags entry, as written or as the same reference. */
	assert_int_equal(berth_image_import_archive(f->s, save, "team/app:1.2", d1, &err), 0);
	assert_int_equal(
	        berth_image_import_archive(f->s, save, "docker.io/library/busybox", d2, &err), 0);
	assert_string_not_equal(d1, d2);
	assert_int_equal(berth_image_store_lookup(f->s, "docker.io/team/app:1.2", got, &err), 0);
	assert_string_equal(got, d1);
	assert_int_equal(
	        berth_image_store_lookup(f->s, "docker.io/library/busybox:latest", got, &err), 0);
	assert_string_equal(got, d2);

	/* As a source: FILE:TAG, colons in the tag and all. */
	src = xasprintf("%s:team/app:1.2", save);
	assert_int_equal(berth_image_source_split(src, &kind, &p, &t, &err), 1);
	assert_int_equal(kind, BERTH_IMAGE_SOURCE_ARCHIVE);
	assert_string_equal(p, save);
	assert_string_equal(t, "team/app:1.2");
	free(steal_pointer(&p));
	free(steal_pointer(&t));
	free(steal_pointer(&src));
	src = xasprintf("%s:busybox", save);
	opts.fetching = count_fetch;
	opts.fetching_arg = &fetched;
	assert_int_equal(berth_image_resolve(f->s, src, &opts, false, &img, &err), 0);
	assert_string_equal(
	        json_string_value(json_array_get(json_object_get(img->config, "Cmd"), 0)), "two");
	assert_int_equal(fetched, 1);
	berth_image_free(img);
	/* Unchanged since: from the store, with no fetch to tell of. */
	assert_int_equal(berth_image_resolve(f->s, src, &opts, false, &img, &err), 0);
	assert_int_equal(fetched, 1);
	berth_image_free(img);
	free(steal_pointer(&src));
	src = xasprintf("%s:", save);
	assert_int_equal(berth_image_source_split(src, &kind, &p, &t, &err), -EINVAL);
	assert_non_null(strstr(err.message, "empty tag"));
	free(steal_pointer(&src));
}

/* A colon may be in a path: the split is the one with something on its left, or refused. */
static void test_source_split(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *x = xasprintf("%s/x", f->dir);
	cleanup_free char *xy = xasprintf("%s/x:y", f->dir);
	cleanup_free char *src = NULL, *p = NULL, *t = NULL;
	enum berth_image_source_kind kind;
	berth_error_t err;

	assert_int_equal(berth_write_file(x, "", 0, 0600, NULL), 0);
	src = xasprintf("%s/none:tag", f->dir);
	assert_int_equal(berth_image_source_split(src, &kind, &p, &t, &err), 0);
	assert_null(p);
	free(steal_pointer(&src));
	src = xasprintf("%s:y:z", x);
	assert_int_equal(berth_image_source_split(src, &kind, &p, &t, &err), 1);
	assert_string_equal(p, x);
	assert_string_equal(t, "y:z");
	free(steal_pointer(&p));
	free(steal_pointer(&t));
	/* Now `x:y` is a file too: x with tag y:z, or x:y with tag z? Neither is guessed. */
	assert_int_equal(berth_write_file(xy, "", 0, 0600, NULL), 0);
	assert_int_equal(berth_image_source_split(src, &kind, &p, &t, &err), -EINVAL);
	assert_non_null(strstr(err.message, "is ambiguous"));
	assert_null(p);
	/* A path that exists is that path. */
	assert_int_equal(berth_image_source_classify(xy, &kind, &p, &t, &err), 0);
	assert_int_equal(kind, BERTH_IMAGE_SOURCE_ARCHIVE);
	assert_string_equal(p, xy);
	assert_null(t);
}

/* Unpack `es` under `limits` into a fresh directory NAME. */
static int unpack_limited(struct fixture *f, const char *name, const struct entry *es, size_t n,
                          const struct berth_image_limits *limits, berth_error_t *err)
{
	cleanup_free char *dir = xasprintf("%s/%s", f->dir, name);
	cleanup_close int dfd = -1;
	cleanup_close int fd = make_tar(es, n, true);
	char diff[BERTH_DIGEST_MAX];

	mkdir(dir, 0700);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return berth_image_unpack(fd, dfd, limits, diff, err);
}

/* Decompression bombs: a layer beyond its bounds is refused, whatever it compresses to. */
static void test_unpack_limits(void **state)
{
	struct fixture *f = *state;
	struct berth_image_limits l;
	cleanup_free char *big = xmalloc(5001);
	struct entry one_big[] = {{"big", AE_IFREG, NULL, 0644}};
	struct entry many[40];
	char names[40][8];
	berth_error_t err;

	memset(big, 'x', 5000);
	big[5000] = '\0';
	one_big[0].data = big;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(many); i++) {
		snprintf(names[i], sizeof(names[i]), "f%zu", i);
		many[i] = (struct entry){names[i], AE_IFREG, "small", 0644};
	}
	berth_image_limits_default(&l);
	assert_int_equal(unpack_limited(f, "ok", many, BERTH_ARRAY_SIZE(many), &l, &err), 0);

	/* A file beyond the bound: the decompressed stream passes it first. */
	l.layer_bytes = 4096;
	assert_int_equal(unpack_limited(f, "b1", one_big, 1, &l, &err), -EFBIG);
	assert_string_equal(err.message, "the layer is, once decompressed, more than 4 KiB, the "
	                                 "bound of a layer (BERTH_IMAGE_MAX_LAYER_BYTES): refused");
	/* Small files, but a tar (headers and padding) beyond the bound. */
	assert_int_equal(unpack_limited(f, "b2", many, BERTH_ARRAY_SIZE(many), &l, &err), -EFBIG);
	assert_non_null(strstr(err.message, "once decompressed, more than 4 KiB"));
	/* A sparse file is small in the tar: its size in the header counts, before it is made. */
	{
		cleanup_free char *dir = xasprintf("%s/sparse", f->dir);
		cleanup_free char *file = xasprintf("%s/sparse/huge", f->dir);
		cleanup_close int fd = memfd_create("sparse", MFD_CLOEXEC);
		cleanup_close int dfd = -1;
		struct archive *a = archive_write_new();
		struct archive_entry *e = archive_entry_new();
		char diff[BERTH_DIGEST_MAX];

		archive_write_set_format_pax(a);
		archive_write_add_filter_gzip(a);
		assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
		archive_entry_set_pathname(e, "huge");
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, 1ll << 40);
		archive_entry_sparse_add_entry(e, 0, 5);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		archive_write_data(a, "hello", 5);
		archive_entry_free(e);
		archive_write_close(a);
		archive_write_free(a);
		lseek(fd, 0, SEEK_SET);
		mkdir(dir, 0700);
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		l.layer_bytes = 1ull << 30;
		assert_int_equal(berth_image_unpack(fd, dfd, &l, diff, &err), -EFBIG);
		assert_string_equal(err.message,
		                    "the layer's files add up to more than 1 GiB, the bound of a "
		                    "layer (BERTH_IMAGE_MAX_LAYER_BYTES): refused");
		assert_int_equal(access(file, F_OK), -1);
	}

	berth_image_limits_default(&l);
	l.layer_entries = 39;
	assert_int_equal(unpack_limited(f, "e1", many, BERTH_ARRAY_SIZE(many), &l, &err), -EFBIG);
	assert_string_equal(err.message, "the layer has more than 39 entries, the bound of a layer "
	                                 "(BERTH_IMAGE_MAX_LAYER_ENTRIES): refused");
}

/* The bounds from the environment, for berthd and berth-image alike; bad values are named. */
static void test_limits_env(void **state)
{
	struct berth_image_limits l;
	char text[32];
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_image_limits_from_env(&l, &err), 0);
	assert_int_equal(l.layer_bytes, 16ull << 30);
	assert_int_equal(l.layer_entries, 1u << 20);
	assert_int_equal(l.archive_bytes, 64ull << 30);
	setenv("BERTH_IMAGE_MAX_LAYER_BYTES", "1M", 1);
	setenv("BERTH_IMAGE_MAX_LAYER_ENTRIES", "100", 1);
	setenv("BERTH_IMAGE_MAX_ARCHIVE_BYTES", "2g", 1);
	assert_int_equal(berth_image_limits_from_env(&l, &err), 0);
	assert_int_equal(l.layer_bytes, 1u << 20);
	assert_int_equal(l.layer_entries, 100);
	assert_int_equal(l.archive_bytes, 2ull << 30);
	setenv("BERTH_IMAGE_MAX_LAYER_ENTRIES", "0", 1);
	assert_int_equal(berth_image_limits_from_env(&l, &err), -EINVAL);
	assert_non_null(strstr(err.message, "BERTH_IMAGE_MAX_LAYER_ENTRIES: "));
	unsetenv("BERTH_IMAGE_MAX_LAYER_ENTRIES");
	setenv("BERTH_IMAGE_MAX_LAYER_BYTES", "lots", 1);
	assert_int_equal(berth_image_limits_from_env(&l, &err), -EINVAL);
	assert_non_null(strstr(err.message, "BERTH_IMAGE_MAX_LAYER_BYTES: "));
	unsetenv("BERTH_IMAGE_MAX_LAYER_BYTES");
	unsetenv("BERTH_IMAGE_MAX_ARCHIVE_BYTES");

	berth_image_size_text(16ull << 30, text);
	assert_string_equal(text, "16 GiB");
	berth_image_size_text(1536, text);
	assert_string_equal(text, "1536 bytes");
}

/* A layer refused by its bounds leaves nothing in the store but its blob. */
static void test_layer_refused_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	static const struct entry es[] = {{"a", AE_IFREG, "hello", 0644},
	                                  {"b", AE_IFREG, "world", 0644}};
	cleanup_close int fd = make_tar(es, 2, false);
	cleanup_free char *tar = NULL;
	cleanup_free char *layers = xasprintf("%s/images/layers/sha256", f->dir);
	cleanup_free char *tmp = xasprintf("%s/images/tmp", f->dir);
	struct berth_image_store *s = NULL;
	char diff[BERTH_DIGEST_MAX], blob[BERTH_DIGEST_MAX];
	char *dir = NULL;
	size_t len;
	berth_error_t err;

	tar = slurp(fd, &len);
	berth_digest_of(tar, len, diff);
	assert_int_equal(berth_image_store_put(f->s, tar, len, NULL, blob, &err), 0);
	setenv("BERTH_IMAGE_MAX_LAYER_ENTRIES", "1", 1);
	assert_int_equal(berth_image_store_open(f->dir, &s, &err), 0);
	unsetenv("BERTH_IMAGE_MAX_LAYER_ENTRIES");
	assert_int_equal(berth_image_store_layer(s, blob, diff, &dir, &err), -EFBIG);
	assert_non_null(strstr(err.message, "more than 1 entries"));
	assert_int_equal(count_entries(layers), 0);
	assert_int_equal(count_entries(tmp), 0);
	berth_image_store_free(s);
	/* Within the bounds (the defaults), the same layer unpacks. */
	assert_int_equal(berth_image_store_layer(f->s, blob, diff, &dir, &err), 0);
	assert_int_equal(count_entries(layers), 1);
	free(dir);
}

/* Opening a store removes what killed processes left, once it is old enough. */
static void test_leftovers(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {"dir-old", "blob-old", "partial-old", "dir-new",
	                                    "partial-week"};
	const time_t ages[] = {2 * 86400, 2 * 86400, 8 * 86400, 60, 2 * 86400};
	struct berth_image_store *s2 = NULL;
	berth_error_t err;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(names); i++) {
		cleanup_free char *p = xasprintf("%s/images/tmp/%s", f->dir, names[i]);
		struct timespec ts[2] = {{.tv_sec = time(NULL) - ages[i]},
		                         {.tv_sec = time(NULL) - ages[i]}};
		assert_int_equal(mkdir(p, 0700), 0);
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	}
	assert_int_equal(berth_image_store_open(f->dir, &s2, &err), 0);
	berth_image_store_free(s2);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(names); i++) {
		cleanup_free char *p = xasprintf("%s/images/tmp/%s", f->dir, names[i]);
		bool gone = i < 3;
		if ((access(p, F_OK) < 0) != gone)
			fail_msg("%s: expected %s", names[i], gone ? "removed" : "kept");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ref_parse),
	        cmocka_unit_test(test_digests),
	        cmocka_unit_test_setup_teardown(test_blob_verified, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_blob_resume, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unpack_whiteouts, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unpack_refuses, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unpack_diff_id, setup, teardown),
	        cmocka_unit_test(test_index_select),
	        cmocka_unit_test(test_manifest_parse),
	        cmocka_unit_test(test_run_config),
	        cmocka_unit_test_setup_teardown(test_image_user, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_leftovers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_archive_tags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_source_split, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unpack_limits, setup, teardown),
	        cmocka_unit_test(test_limits_env),
	        cmocka_unit_test_setup_teardown(test_layer_refused_leaves_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
