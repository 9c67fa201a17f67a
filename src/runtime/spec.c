/* SPDX-License-Identifier: Apache-2.0 */
/* Requests from the runtime library to the berth-runtime helper, as JSON in a memfd. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "runtime-internal.h"

/* A request is small (argv, env, paths); anything bigger is a mistake. */
#define REQUEST_MAX (4u * 1024u * 1024u)

void berth_runtime_cgroup_config(struct berth_cgroup_config *cfg, berth_error_t *err)
{
	const char *root = getenv("BERTH_CGROUP_ROOT");
	const char *parent = getenv("BERTH_CGROUP_PARENT");

	(void)err;
	cfg->root = root != NULL && *root != '\0' ? root : BERTH_CGROUP_ROOT;
	cfg->parent = parent != NULL && *parent != '\0' ? parent : BERTH_CGROUP_PARENT;
	cfg->mode = BERTH_CGROUP_V2; /* to be detected */
}

bool berth_container_id_valid(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;

	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool alnum =
		        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return false;
	}
	return true;
}

static json_t *strv_to_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* The array's strings stay owned by `a`; the returned vector by the caller. */
static int strv_from_json(json_t *a, const char *what, char ***out, berth_error_t *err)
{
	size_t i;
	json_t *v;
	char **r;

	if (!json_is_array(a))
		return berth_error_set_plain(err, EINVAL, "request: `%s` is not an array", what);
	r = xcalloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach (a, i, v) {
		if (!json_is_string(v)) {
			free(r);
			return berth_error_set_plain(err, EINVAL,
			                             "request: `%s[%zu]` is not a string", what, i);
		}
		r[i] = (char *)json_string_value(v);
	}
	*out = r;
	return 0;
}

/* argv (non-empty) and env of a request; the vectors are the caller's, the strings json's. */
static int decode_command(json_t *json, char ***argv, char ***env, berth_error_t *err)
{
	int r = strv_from_json(json_object_get(json, "argv"), "argv", argv, err);

	if (r < 0)
		return r;
	r = strv_from_json(json_object_get(json, "env"), "env", env, err);
	if (r < 0)
		return r;
	if ((*argv)[0] == NULL)
		return berth_error_set_plain(err, EINVAL, "request: empty argv");
	return 0;
}

static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static uint64_t get_u64(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));
	return v > 0 ? (uint64_t)v : 0;
}

static const char *const net_modes[] = {
        [BERTH_NET_LOOPBACK] = "loopback",
        [BERTH_NET_NONE] = "none",
        [BERTH_NET_BRIDGE] = "bridge",
};

static const char *net_name(enum berth_net_mode mode)
{
	return (size_t)mode < BERTH_ARRAY_SIZE(net_modes) ? net_modes[mode] : "loopback";
}

static enum berth_net_mode net_mode(const char *name)
{
	for (size_t i = 0; name != NULL && i < BERTH_ARRAY_SIZE(net_modes); i++)
		if (strcmp(net_modes[i], name) == 0)
			return (enum berth_net_mode)i;
	return BERTH_NET_LOOPBACK;
}

json_t *berth_start_request_encode(const struct berth_container_spec *spec)
{
	json_t *limits = json_pack(
	        "{s:I, s:I, s:I, s:I}", "memory", (json_int_t)spec->limits.memory_bytes, "nanocpus",
	        (json_int_t)spec->limits.nanocpus, "pids", (json_int_t)spec->limits.pids, "disk",
	        (json_int_t)spec->limits.disk_bytes);

	json_t *log = spec->log_dir == NULL
	                      ? json_null()
	                      : json_pack("{s:s, s:I, s:I}", "dir", spec->log_dir, "max_bytes",
	                                  (json_int_t)spec->log_max_bytes, "max_files",
	                                  (json_int_t)spec->log_max_files);

	return json_pack(
	        "{s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:b, s:s, s:b, s:o, s:o, s:I}",
	        "id", spec->id, "rootfs", str_or_null(spec->rootfs), "layers",
	        spec->layers != NULL ? strv_to_json(spec->layers) : json_null(), "state_dir",
	        spec->state_dir, "argv", strv_to_json(spec->argv), "env", strv_to_json(spec->env),
	        "workdir", str_or_null(spec->workdir), "hostname", str_or_null(spec->hostname),
	        "uid", (json_int_t)spec->uid, "gid", (json_int_t)spec->gid, "read_only",
	        spec->read_only, "net", net_name(spec->net), "die_with_parent",
	        spec->die_with_parent, "limits", limits, "log", log, "caller",
	        (json_int_t)getpid());
}

int berth_start_request_decode(json_t *json, struct berth_start_request *req, berth_error_t *err)
{
	struct berth_container_spec *spec = &req->spec;
	json_t *limits = json_object_get(json, "limits");
	int r;

	memset(req, 0, sizeof(*req));
	req->json = json;
	spec->id = get_str(json, "id");
	spec->rootfs = get_str(json, "rootfs");
	spec->state_dir = get_str(json, "state_dir");
	if (json_is_array(json_object_get(json, "layers"))) {
		r = strv_from_json(json_object_get(json, "layers"), "layers", &req->layers, err);
		if (r < 0)
			return r;
		if (req->layers[0] == NULL)
			return berth_error_set_plain(err, EINVAL, "request: empty layers");
		spec->layers = req->layers;
	}
	if (!berth_container_id_valid(spec->id) || (spec->rootfs == NULL && spec->layers == NULL) ||
	    spec->state_dir == NULL)
		return berth_error_set_plain(err, EINVAL,
		                             "request: missing or invalid id, rootfs or state_dir");
	r = decode_command(json, &req->argv, &req->env, err);
	if (r < 0)
		return r;
	spec->argv = req->argv;
	spec->env = req->env;
	spec->workdir = get_str(json, "workdir");
	spec->hostname = get_str(json, "hostname");
	spec->uid = (uint32_t)get_u64(json, "uid");
	spec->gid = (uint32_t)get_u64(json, "gid");
	spec->read_only = json_is_true(json_object_get(json, "read_only"));
	spec->die_with_parent = json_is_true(json_object_get(json, "die_with_parent"));
	spec->net = net_mode(get_str(json, "net"));
	spec->limits.memory_bytes = get_u64(limits, "memory");
	spec->limits.nanocpus = get_u64(limits, "nanocpus");
	spec->limits.pids = get_u64(limits, "pids");
	spec->limits.disk_bytes = get_u64(limits, "disk");
	for (int i = 0; i < 3; i++)
		spec->stdio[i] = i;
	spec->log_dir = get_str(json_object_get(json, "log"), "dir");
	spec->log_max_bytes = get_u64(json_object_get(json, "log"), "max_bytes");
	spec->log_max_files = (unsigned)get_u64(json_object_get(json, "log"), "max_files");
	req->caller = (pid_t)get_u64(json, "caller");
	req->container_dir = xasprintf("%s/containers/%s", spec->state_dir, spec->id);
	return 0;
}

void berth_start_request_free(struct berth_start_request *req)
{
	free(req->argv);
	free(req->env);
	free(req->layers);
	free((char *)req->container_dir);
	free((char *)req->init_layer);
	free(req->etc_hostname);
	free(req->etc_hosts);
	free(req->etc_resolv);
	json_decref(req->json);
	memset(req, 0, sizeof(*req));
}

json_t *berth_exec_request_encode(pid_t init_pid, const char *id,
                                  const struct berth_exec_spec *spec, char *const *container_env,
                                  uint32_t uid, uint32_t gid)
{
	return json_pack("{s:I, s:s, s:o, s:o, s:o, s:I, s:I, s:b}", "init_pid",
	                 (json_int_t)init_pid, "id", id, "argv", strv_to_json(spec->argv), "env",
	                 strv_to_json(spec->env != NULL ? spec->env : container_env), "workdir",
	                 str_or_null(spec->workdir), "uid",
	                 (json_int_t)(spec->has_user ? spec->uid : uid), "gid",
	                 (json_int_t)(spec->has_user ? spec->gid : gid), "tty", spec->tty);
}

int berth_exec_request_decode(json_t *json, struct berth_exec_request *req, berth_error_t *err)
{
	int r;

	memset(req, 0, sizeof(*req));
	req->json = json;
	req->init_pid = (pid_t)get_u64(json, "init_pid");
	req->id = get_str(json, "id");
	if (req->init_pid <= 0 || !berth_container_id_valid(req->id))
		return berth_error_set_plain(err, EINVAL,
		                             "request: missing or invalid init_pid or id");
	r = decode_command(json, &req->argv, &req->env, err);
	if (r < 0)
		return r;
	req->spec.argv = req->argv;
	req->spec.env = req->env;
	req->spec.workdir = get_str(json, "workdir");
	req->spec.has_user = true;
	req->spec.uid = (uint32_t)get_u64(json, "uid");
	req->spec.gid = (uint32_t)get_u64(json, "gid");
	req->spec.tty = json_is_true(json_object_get(json, "tty"));
	for (int i = 0; i < 3; i++)
		req->spec.stdio[i] = i;
	return 0;
}

void berth_exec_request_free(struct berth_exec_request *req)
{
	free(req->argv);
	free(req->env);
	json_decref(req->json);
	memset(req, 0, sizeof(*req));
}

int berth_request_memfd(json_t *json, berth_error_t *err)
{
	cleanup_free char *text = json_dumps(json, JSON_COMPACT);
	cleanup_close int fd = -1;
	int r;

	if (text == NULL)
		return berth_error_set(err, ENOMEM, "encode request");
	fd = memfd_create("berth-request", MFD_CLOEXEC);
	if (fd < 0)
		return berth_error_set(err, errno, "memfd_create");
	r = berth_write_all(fd, text, strlen(text));
	if (r < 0)
		return berth_error_set(err, -r, "write request");
	if (lseek(fd, 0, SEEK_SET) < 0)
		return berth_error_set(err, errno, "seek request");
	return steal_fd(&fd);
}

int berth_request_read(int fd, json_t **out, berth_error_t *err)
{
	cleanup_free char *buf = NULL;
	json_error_t jerr;
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return berth_error_set(err, errno, "read request");
	if (st.st_size <= 0 || (size_t)st.st_size > REQUEST_MAX)
		return berth_error_set_plain(err, EINVAL, "read request: bad size %lld",
		                             (long long)st.st_size);
	buf = xmalloc((size_t)st.st_size + 1);
	n = pread(fd, buf, (size_t)st.st_size, 0);
	if (n != st.st_size)
		return berth_error_set(err, n < 0 ? errno : EIO, "read request");
	buf[n] = '\0';
	*out = json_loads(buf, 0, &jerr);
	if (*out == NULL)
		return berth_error_set_plain(err, EINVAL, "parse request: %s", jerr.text);
	return 0;
}
