/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime's helper protocol (requests, report records) and instance types. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/runtime.h"
#include "runtime/runtime-internal.h"

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static void test_id_validation(void **state)
{
	char long_id[130];
	(void)state;
	assert_true(berth_container_id_valid("web"));
	assert_true(berth_container_id_valid("run-0a1b.c_d"));
	assert_false(berth_container_id_valid(""));
	assert_false(berth_container_id_valid(NULL));
	assert_false(berth_container_id_valid("-web"));
	assert_false(berth_container_id_valid(".hidden"));
	assert_false(berth_container_id_valid("a/b"));
	assert_false(berth_container_id_valid(".."));
	assert_false(berth_container_id_valid("sp ace"));
	memset(long_id, 'a', 128);
	long_id[128] = '\0';
	assert_true(berth_container_id_valid(long_id));
	long_id[128] = 'a';
	long_id[129] = '\0';
	assert_false(berth_container_id_valid(long_id));
}

static void test_start_request_round_trip(void **state)
{
	struct berth_container_spec spec = {
	        .id = "web",
	        .rootfs = "/images/web",
	        .state_dir = "/var/lib/berth",
	        .argv = ARGV((char *)"httpd", (char *)"-f"),
	        .env = ARGV((char *)"A=1", (char *)"B=two words"),
	        .workdir = "/srv",
	        .uid = 1000,
	        .gid = 50,
	        .read_only = true,
	        .net = BERTH_NET_NONE,
	        .die_with_parent = true,
	        .limits = {.memory_bytes = 256u << 20, .nanocpus = 62500000, .pids = 99},
	};
	struct berth_start_request req;
	berth_error_t err;
	json_t *json;
	json_t *back;
	int fd;
	(void)state;

	json = berth_start_request_encode(&spec);
	fd = berth_request_memfd(json, &err);
	json_decref(json);
	assert_true(fd >= 0);
	assert_int_equal(berth_request_read(fd, &back, &err), 0);
	close(fd);
	assert_int_equal(berth_start_request_decode(back, &req, &err), 0);
	assert_string_equal(req.spec.id, "web");
	assert_string_equal(req.spec.rootfs, "/images/web");
	assert_string_equal(req.argv[0], "httpd");
	assert_string_equal(req.argv[1], "-f");
	assert_null(req.argv[2]);
	assert_string_equal(req.env[1], "B=two words");
	assert_string_equal(req.spec.workdir, "/srv");
	assert_null(req.spec.hostname);
	assert_int_equal(req.spec.uid, 1000);
	assert_int_equal(req.spec.gid, 50);
	assert_true(req.spec.read_only);
	assert_true(req.spec.die_with_parent);
	assert_int_equal(req.spec.net, BERTH_NET_NONE);
	assert_int_equal(req.spec.limits.memory_bytes, 256u << 20);
	assert_int_equal(req.spec.limits.nanocpus, 62500000);
	assert_int_equal(req.spec.limits.pids, 99);
	assert_string_equal(req.container_dir, "/var/lib/berth/containers/web");
	berth_start_request_free(&req);

	/* Every network mode survives the trip. */
	for (int mode = BERTH_NET_LOOPBACK; mode <= BERTH_NET_BRIDGE; mode++) {
		spec.net = (enum berth_net_mode)mode;
		json = berth_start_request_encode(&spec);
		assert_int_equal(berth_start_request_decode(json, &req, &err), 0);
		assert_int_equal(req.spec.net, mode);
		berth_start_request_free(&req);
	}
}

static void test_bad_requests(void **state)
{
	struct berth_start_request req;
	berth_error_t err;
	json_t *json;
	(void)state;

	json = json_pack("{s:s, s:s, s:s, s:[], s:[]}", "id", "web", "rootfs", "/r", "state_dir",
	                 "/s", "argv", "env");
	assert_int_equal(berth_start_request_decode(json, &req, &err), -EINVAL);
	assert_string_equal(err.message, "request: empty argv");
	berth_start_request_free(&req);

	json = json_pack("{s:s, s:s, s:s, s:[i], s:[]}", "id", "web", "rootfs", "/r", "state_dir",
	                 "/s", "argv", 5, "env");
	assert_int_equal(berth_start_request_decode(json, &req, &err), -EINVAL);
	assert_string_equal(err.message, "request: `argv[0]` is not a string");
	berth_start_request_free(&req);

	json = json_pack("{s:s}", "id", "../x");
	assert_int_equal(berth_start_request_decode(json, &req, &err), -EINVAL);
	berth_start_request_free(&req);
}

static void test_report_records(void **state)
{
	struct berth_report rec;
	berth_error_t err = {0};
	int fds[2];
	(void)state;

	assert_int_equal(pipe(fds), 0);
	berth_report_pid(fds[1], 4242);
	berth_error_set_plain(&err, ENOENT, "executable not found in image: /bin/nope");
	err.kind = BERTH_ERROR_KIND_EXEC;
	berth_report_error(fds[1], &err);
	close(fds[1]);

	assert_int_equal(berth_report_read(fds[0], &rec), 1);
	assert_int_equal(rec.type, BERTH_REPORT_PID);
	assert_int_equal(rec.pid, 4242);
	assert_int_equal(berth_report_read(fds[0], &rec), 1);
	assert_int_equal(rec.type, BERTH_REPORT_ERROR);
	assert_int_equal(rec.error.code, ENOENT);
	assert_int_equal(rec.error.kind, BERTH_ERROR_KIND_EXEC);
	assert_string_equal(rec.error.message, "executable not found in image: /bin/nope");
	assert_int_equal(berth_report_read(fds[0], &rec), 0);
	close(fds[0]);

	/* A truncated record is a protocol error, not a record. */
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "\1\0\0", 3), 3);
	close(fds[1]);
	assert_int_equal(berth_report_read(fds[0], &rec), -EPROTO);
	close(fds[0]);
}

static void test_instance_types(void **state)
{
	const struct berth_instance_type *t;
	(void)state;

	t = berth_instance_type_lookup("lite");
	assert_non_null(t);
	assert_int_equal(t->limits.memory_bytes, 256u << 20);
	assert_int_equal(t->limits.nanocpus, 62500000);
	assert_int_equal(t->limits.disk_bytes, 2000000000ull);
	assert_memory_equal(&berth_instance_type_lookup("dev")->limits, &t->limits,
	                    sizeof(t->limits));
	t = berth_instance_type_lookup("standard-4");
	assert_int_equal(t->limits.memory_bytes, 12ull << 30);
	assert_int_equal(t->limits.nanocpus, 4000000000ull);
	assert_memory_equal(&berth_instance_type_lookup("standard")->limits,
	                    &berth_instance_type_lookup("standard-1")->limits, sizeof(t->limits));
	assert_int_equal(berth_instance_type_lookup("basic")->limits.nanocpus, 250000000);
	assert_null(berth_instance_type_lookup("huge"));
	assert_null(berth_instance_type_lookup("Lite"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_id_validation),
	        cmocka_unit_test(test_start_request_round_trip),
	        cmocka_unit_test(test_bad_requests),
	        cmocka_unit_test(test_report_records),
	        cmocka_unit_test(test_instance_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
