/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "registry/registry-internal.h"

/* ---- helpers ---- */

struct fixture {
	char dir[64];
	struct berth_registry *reg;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_dir(char dir[64])
{
	snprintf(dir, 64, "/tmp/berth-registry-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
	berth_error_t err;
	if (berth_rmtree(dir, &err) < 0)
		fprintf(stderr, "cleanup: %s\n", err.message);
}

static struct berth_registry *open_ok(const char *dir, const struct berth_registry_options *opts)
{
	struct berth_registry *reg = NULL;
	berth_error_t err;
	int ret = berth_registry_open(dir, opts, &reg, &err);
	if (ret < 0)
		fail_msg("open: %s", err.message);
	return reg;
}

static void register_class(struct berth_registry *reg, const char *name)
{
	berth_error_t err;
	if (berth_registry_upsert_class(reg, name, "{\"image\":\"./rootfs\"}", NULL, &err) < 0)
		fail_msg("upsert: %s", err.message);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	make_dir(f->dir);
	f->reg = open_ok(f->dir, NULL);
	register_class(f->reg, "web");
	register_class(f->reg, "worker");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	berth_registry_close(f->reg);
	remove_dir(f->dir);
	free(f);
	return 0;
}

static int setup_dir(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	make_dir(f->dir);
	*state = f;
	return 0;
}

/* One integer from a raw SQL query on the database file, outside the registry. */
static int64_t raw_int(const char *dir, const char *sql)
{
	cleanup_free char *path = xasprintf("%s/registry.db", dir);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(
	        sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
	        SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* ---- opening and migrations ---- */

static void test_open_fresh(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/registry.db", f->dir);
	struct stat sb;
	char link[256], target[512];
	int fds = 0;

	f->reg = open_ok(f->dir, NULL);
	assert_string_equal(berth_registry_path(f->reg), path);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Every descriptor SQLite holds on the database is close-on-exec. */
	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, path, strlen(path)) != 0)
			continue;
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		fds++;
	}
	assert_true(fds >= 1);
	berth_registry_close(f->reg);
	f->reg = NULL;

	assert_int_equal(raw_int(f->dir, "PRAGMA user_version"),
	                 berth_registry_migrations[berth_registry_migrations_n - 1].version);
	assert_int_equal(raw_int(f->dir, "PRAGMA application_id"), BERTH_REGISTRY_APPLICATION_ID);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
	                                 "AND name IN ('classes', 'instances', 'events')"),
	                 3);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
	                                 "AND name NOT LIKE 'sqlite_%'"),
	                 4);
	/* WAL is a property of the file; it stays after close. */
	{
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), 0);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
}

static void test_reopen_keeps_data(void **state)
{
	struct fixture *f = *state;
	struct berth_registry_instance inst, again;
	struct berth_registry_state_change run = {.state = BERTH_STATE_RUNNING, .time_ms = 1234};
	struct berth_registry_class cls;
	berth_error_t err;
	int64_t seq;
	bool created;

	f->reg = open_ok(f->dir, NULL);
	register_class(f->reg, "web");
	assert_int_equal(
	        berth_registry_get_or_create(f->reg, "web", "alice", &inst, &created, &err), 0);
	assert_true(created);
	assert_int_equal(
	        berth_registry_set_state(f->reg, inst.id, BERTH_STATE_STOPPED, &run, NULL, &err),
	        0);
	assert_int_equal(berth_registry_append_event(f->reg, "web", inst.id, "state",
	                                             "{\"state\":\"running\"}", &seq, &err),
	                 0);
	berth_registry_close(f->reg);

	f->reg = open_ok(f->dir, NULL);
	assert_int_equal(berth_registry_get(f->reg, inst.id, &again, &err), 0);
	assert_string_equal(again.class_name, "web");
	assert_string_equal(again.name, "alice");
	assert_int_equal(again.state, BERTH_STATE_RUNNING);
	assert_int_equal(again.last_change_ms, 1234);
	assert_int_equal(berth_registry_get_class(f->reg, "web", &cls, &err), 0);
	assert_string_equal(cls.config, "{\"image\":\"./rootfs\"}");
	assert_int_equal(berth_registry_last_event_seq(f->reg, &seq, &err), 0);
	assert_int_equal(seq, 1);
	berth_registry_class_clear(&cls);
	berth_registry_instance_clear(&inst);
	berth_registry_instance_clear(&again);
}

static void test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/registry.db", f->dir);
	cleanup_free char *expected = NULL;
	struct berth_registry *reg = NULL;
	berth_error_t err;

	berth_registry_close(open_ok(f->dir, NULL));
	raw_exec(path, "PRAGMA user_version = 99");
	assert_int_equal(berth_registry_open(f->dir, NULL, &reg, &err), -EPROTO);
	assert_null(reg);
	expected = xasprintf("open registry `%s`: schema version 99 is newer than this berth knows "
	                     "(1); upgrade berth, or use another state directory",
	                     path);
	assert_string_equal(err.message, expected);
}

static void test_not_a_database(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/registry.db", f->dir);
	cleanup_free char *expected = xasprintf("open registry `%s`: file is not a database", path);
	static const char junk[] = "this is not an SQLite database, but it is long enough to be "
	                           "read as one and rejected for its header\n";
	struct berth_registry *reg = NULL;
	berth_error_t err;

	assert_int_equal(berth_write_file(path, junk, sizeof(junk), 0600, &err), 0);
	assert_int_equal(berth_registry_open(f->dir, NULL, &reg, &err), -EIO);
	assert_string_equal(err.message, expected);
}

static void test_foreign_database(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/registry.db", f->dir);
	cleanup_free char *expected = NULL;
	struct berth_registry *reg = NULL;
	berth_error_t err;

	raw_exec(path, "CREATE TABLE instances (x)");
	assert_int_equal(berth_registry_open(f->dir, NULL, &reg, &err), -EIO);
	expected =
	        xasprintf("open registry `%s`: the file is an SQLite database of another program "
	                  "(it has tables but no berth mark)",
	                  path);
	assert_string_equal(err.message, expected);

	unlink(path);
	raw_exec(path, "PRAGMA application_id = 42");
	assert_int_equal(berth_registry_open(f->dir, NULL, &reg, &err), -EIO);
	free(expected);
	expected = xasprintf("open registry `%s`: the file belongs to another program "
	                     "(application_id 0x2a)",
	                     path);
	assert_string_equal(err.message, expected);
}

static void test_unopenable(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/registry.db", f->dir);
	cleanup_free char *prefix = xasprintf("open registry `%s`: ", path);
	struct berth_registry *reg = NULL;
	berth_error_t err;

	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(berth_registry_open(f->dir, NULL, &reg, &err) < 0);
	printf("registry.db a directory: %s\n", err.message);
	assert_memory_equal(err.message, prefix, strlen(prefix));
	rmdir(path);
}

/* A registry the caller may not read (the daemon started as the wrong user). */
static void test_unreadable(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/registry.db", f->dir);
	cleanup_free char *expected = NULL;
	char msg[BERTH_ERROR_MSG_MAX] = "";
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (geteuid() != 0) {
		printf("skipped: switching to another user needs root (CI runs as root)\n");
		skip();
	}
	berth_registry_close(open_ok(f->dir, NULL));
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct berth_registry *reg = NULL;
		berth_error_t err;
		int ret;

		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		ret = berth_registry_open(f->dir, NULL, &reg, &err);
		if (ret == 0)
			_exit(3);
		if (berth_write_all(p[1], err.message, strlen(err.message)) < 0)
			_exit(4);
		_exit(ret == -EACCES ? 0 : 5);
	}
	close(p[1]);
	n = read(p[0], msg, sizeof(msg) - 1);
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(n > 0);
	msg[n] = '\0';
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	expected = xasprintf("open registry `%s`: unable to open database file: Permission denied",
	                     path);
	assert_string_equal(msg, expected);
}

static void test_corrupt_pages(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/registry.db", f->dir);
	struct berth_registry_instance inst;
	struct berth_registry *reg = NULL;
	char junk[4096];
	berth_error_t err;
	char name[32];
	int fd, ret;

	f->reg = open_ok(f->dir, NULL);
	register_class(f->reg, "web");
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(
		        berth_registry_get_or_create(f->reg, "web", name, &inst, NULL, &err), 0);
		berth_registry_instance_clear(&inst);
	}
	berth_registry_close(f->reg); /* checkpoints: everything is in the main file now */
	f->reg = NULL;
	memset(junk, 0xa5, sizeof(junk));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (off_t page = 2; page < 40; page += 3)
		assert_int_equal(pwrite(fd, junk, sizeof(junk), page * 4096), sizeof(junk));
	close(fd);

	/* Either open notices (it reads the schema) or the check does; both name the file. */
	ret = berth_registry_open(f->dir, NULL, &reg, &err);
	if (ret == 0) {
		ret = berth_registry_check(reg, &err);
		berth_registry_close(reg);
	}
	printf("corrupt pages: %s\n", err.message);
	assert_int_equal(ret, -EIO);
	assert_non_null(strstr(err.message, path));
}

/* Damage that leaves every page readable shows in the check's rows. */
static void test_check_reports(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/registry.db", f->dir);
	cleanup_free char *expected = NULL;
	berth_error_t err;

	f->reg = open_ok(f->dir, NULL);
	assert_int_equal(berth_registry_check(f->reg, &err), 0);
	berth_registry_close(f->reg);
	/* A record whose class is missing: only a writer without foreign keys can make one. */
	raw_exec(path, "INSERT INTO instances (id, class, name, last_change, created) VALUES "
	               "('0000000000000000000000000000000000000000000000000000000000000000', "
	               "'ghost', 'x', 1, 1)");
	f->reg = open_ok(f->dir, NULL);
	assert_int_equal(berth_registry_check(f->reg, &err), -EIO);
	expected = xasprintf("registry `%s` failed foreign_key_check: instances 1 classes 0", path);
	assert_string_equal(err.message, expected);
}

static void test_migration_steps(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = xasprintf("%s/steps.db", f->dir);
	const struct berth_registry_migration good[] = {
	        {1, "a", "CREATE TABLE a (x); INSERT INTO a VALUES (1);"},
	        {2, "b", "ALTER TABLE a ADD COLUMN y; CREATE TABLE b (z);"},
	};
	const struct berth_registry_migration bad[] = {
	        good[0],
	        good[1],
	        {3, "broken", "CREATE TABLE c (x); INSERT INTO missing VALUES (1);"},
	};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	berth_error_t err;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* A fresh database gets every step; applying again changes nothing. */
	assert_int_equal(berth_registry_migrate(db, path, good, 1, &err), 0);
	assert_int_equal(berth_registry_migrate(db, path, good, 2, &err), 0);
	assert_int_equal(berth_registry_migrate(db, path, good, 2, &err), 0);
	/* A failing step leaves the database at the last good one, with nothing of its own. */
	assert_true(berth_registry_migrate(db, path, bad, 3, &err) < 0);
	assert_non_null(strstr(err.message, "to schema version 3 (broken)"));
	assert_non_null(strstr(err.message, "no such table: missing"));
	assert_int_equal(
	        sqlite3_prepare_v2(db,
	                           "SELECT (SELECT user_version FROM pragma_user_version), "
	                           "(SELECT count(*) FROM sqlite_schema WHERE name = 'c'), "
	                           "(SELECT count(*) FROM a)",
	                           -1, &st, NULL),
	        SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	assert_int_equal(sqlite3_column_int(st, 1), 0);
	assert_int_equal(sqlite3_column_int(st, 2), 1);
	sqlite3_finalize(st);
	assert_true(sqlite3_get_autocommit(db));
	sqlite3_close(db);
}

/* ---- ids ---- */

static void test_id_vectors(void **state)
{
	static const struct {
		const char *class_name, *name, *id;
	} vectors[] = {
	        {"Counter", "alice",
	         "dfcae3642c1d6dc2abc8a0a5c0713ecdc2d273cd98e7edac684c45cd87d3d5fb"},
	        {"a", "bc", "408bcdb9d84fda6af11880e83398d14f6df234685c90732308b23474661f5197"},
	        {"ab", "c", "07c3ea308cb18c7d8fa63f8e72672e7085fd0ac92ad502d73b9480bd3202e38a"},
	        {"MyContainer", "",
	         "eba426ca9c544a4ffeff1431e2006472cec57547d8438cb213a5231ac31eac13"},
	        {"MyContainer", "singleton",
	         "6cd405a94f38734777017e6683aa37eb4ad4e6dfa753979c3efcb9972e9ad6a0"},
	        {"web",
	         "\xc3\xbc"
	         "n\xc3\xaf"
	         "code/ with spaces",
	         "56f78cd03210ef4d13c2981e5910896a7e18c0dfccd96a0bea1f82dd4ccd03b2"},
	};
	char id[BERTH_ID_LEN + 1];
	(void)state;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(vectors); i++) {
		berth_id_from_name(vectors[i].class_name, vectors[i].name, id);
		assert_string_equal(id, vectors[i].id);
		assert_true(berth_id_valid(id));
	}
	assert_false(berth_id_valid(NULL));
	assert_false(berth_id_valid(""));
	assert_false(
	        berth_id_valid("DFCAE3642C1D6DC2ABC8A0A5C0713ECDC2D273CD98E7EDAC684C45CD87D3D5FB"));
	assert_false(
	        berth_id_valid("dfcae3642c1d6dc2abc8a0a5c0713ecdc2d273cd98e7edac684c45cd87d3d5f"));
	assert_false(berth_id_valid(
	        "dfcae3642c1d6dc2abc8a0a5c0713ecdc2d273cd98e7edac684c45cd87d3d5fb0"));
	assert_false(
	        berth_id_valid("gfcae3642c1d6dc2abc8a0a5c0713ecdc2d273cd98e7edac684c45cd87d3d5fb"));
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_unique_ids(void **state)
{
	enum { N = 1000 };
	static char ids[N][BERTH_ID_LEN + 1];
	berth_error_t err;
	(void)state;

	for (int i = 0; i < N; i++) {
		assert_int_equal(berth_id_unique(ids[i], &err), 0);
		assert_int_equal(strlen(ids[i]), BERTH_ID_LEN);
		assert_true(berth_id_valid(ids[i]));
	}
	qsort(ids, N, sizeof(ids[0]), compare_ids);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
}

/* ---- classes ---- */

static void test_classes(void **state)
{
	struct fixture *f = *state;
	enum berth_registry_upsert outcome;
	struct berth_registry_class *v = NULL, c;
	char hash[BERTH_ID_LEN + 1];
	berth_error_t err;
	size_t n;

	assert_int_equal(berth_registry_upsert_class(f->reg, "api", "{\"a\":1}", &outcome, &err),
	                 0);
	assert_int_equal(outcome, BERTH_REGISTRY_CREATED);
	assert_int_equal(berth_registry_upsert_class(f->reg, "api", "{\"a\":1}", &outcome, &err),
	                 0);
	assert_int_equal(outcome, BERTH_REGISTRY_UNCHANGED);
	assert_int_equal(berth_registry_upsert_class(f->reg, "api", "{\"a\":2}", &outcome, &err),
	                 0);
	assert_int_equal(outcome, BERTH_REGISTRY_UPDATED);
	assert_int_equal(berth_registry_upsert_class(f->reg, "api", "{\"a\":", &outcome, &err),
	                 -EINVAL);
	assert_string_equal(err.message,
	                    "register class `api`: its configuration is not valid JSON");

	assert_int_equal(berth_registry_get_class(f->reg, "api", &c, &err), 0);
	assert_string_equal(c.config, "{\"a\":2}");
	berth_registry_sha256_hex("{\"a\":2}", 7, hash);
	assert_string_equal(c.config_hash, hash);
	assert_true(c.updated_ms >= c.created_ms);
	berth_registry_class_clear(&c);
	assert_int_equal(berth_registry_get_class(f->reg, "nope", &c, &err), -ENOENT);
	assert_string_equal(err.message, "no class `nope`");

	assert_int_equal(berth_registry_list_classes(f->reg, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].name, "api");
	assert_string_equal(v[1].name, "web");
	assert_string_equal(v[2].name, "worker");
	berth_registry_classes_free(v, n);
}

/* ---- instances ---- */

static void test_get_or_create(void **state)
{
	struct fixture *f = *state;
	struct berth_registry_instance a, b, c;
	char id[BERTH_ID_LEN + 1], unique[BERTH_ID_LEN + 1];
	berth_error_t err;
	bool created = false;

	assert_int_equal(berth_registry_get_or_create(f->reg, "web", "alice", &a, &created, &err),
	                 0);
	assert_true(created);
	assert_int_equal(berth_registry_get_or_create(f->reg, "web", "alice", &b, &created, &err),
	                 0);
	assert_false(created);
	berth_id_from_name("web", "alice", id);
	assert_string_equal(a.id, id);
	assert_string_equal(b.id, id);
	assert_string_equal(b.class_name, "web");
	assert_string_equal(b.name, "alice");
	assert_int_equal(b.state, BERTH_STATE_STOPPED);
	assert_int_equal(b.created_ms, a.created_ms);
	assert_int_equal(b.last_change_ms, a.created_ms);
	assert_false(b.has_exit_code);
	assert_null(b.overrides);
	assert_int_equal(b.last_activity_ms, 0);
	berth_registry_instance_clear(&b);

	assert_int_equal(berth_registry_get(f->reg, id, &b, &err), 0);
	assert_string_equal(b.name, "alice");
	berth_registry_instance_clear(&b);
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "alice", &b, &err), 0);
	assert_string_equal(b.id, id);
	berth_registry_instance_clear(&b);
	/* The same name in another class is another instance. */
	assert_int_equal(
	        berth_registry_get_or_create(f->reg, "worker", "alice", &c, &created, &err), 0);
	assert_true(created);
	assert_string_not_equal(c.id, id);
	berth_registry_instance_clear(&c);

	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "bob", &b, &err), -ENOENT);
	assert_string_equal(err.message, "no instance `web/bob`");
	berth_id_from_name("web", "bob", id);
	assert_int_equal(berth_registry_get(f->reg, id, &b, &err), -ENOENT);
	assert_int_equal(berth_registry_get(f->reg, "xyz", &b, &err), -EINVAL);
	assert_string_equal(err.message,
	                    "get instance: `xyz` is not an instance id (64 hex digits)");
	assert_int_equal(berth_registry_get_or_create(f->reg, "nope", "x", &b, NULL, &err),
	                 -ENOENT);
	assert_string_equal(err.message,
	                    "create instance `nope/x`: class `nope` is not registered");

	/* Unique ids: no name, and bound to their class. */
	assert_int_equal(berth_id_unique(unique, &err), 0);
	assert_int_equal(berth_registry_get_or_create_id(f->reg, "web", unique, &b, &created, &err),
	                 0);
	assert_true(created);
	assert_null(b.name);
	berth_registry_instance_clear(&b);
	assert_int_equal(berth_registry_get_or_create_id(f->reg, "web", unique, &b, &created, &err),
	                 0);
	assert_false(created);
	berth_registry_instance_clear(&b);
	assert_int_equal(
	        berth_registry_get_or_create_id(f->reg, "worker", unique, &b, &created, &err),
	        -EEXIST);
	/* A named instance's id, asked for as a unique one of another class. */
	assert_int_equal(berth_registry_get_or_create_id(f->reg, "worker", a.id, &b, NULL, &err),
	                 -EEXIST);
	berth_registry_instance_clear(&a);
}

struct racer {
	const char *dir;
	struct berth_registry *shared; /* NULL: open a handle of its own */
	unsigned created;
	int failures;
	char ids[200][BERTH_ID_LEN + 1];
	pthread_barrier_t *start;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct berth_registry *reg = r->shared;
	struct berth_registry_instance inst;
	berth_error_t err;
	char name[32];
	bool created;

	if (reg == NULL && berth_registry_open(r->dir, NULL, &reg, &err) < 0) {
		r->failures++;
		return NULL;
	}
	pthread_barrier_wait(r->start);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "%s-%d", r->shared ? "shared" : "own", i);
		if (berth_registry_get_or_create(reg, "web", name, &inst, &created, &err) < 0) {
			fprintf(stderr, "race: %s\n", err.message);
			r->failures++;
			continue;
		}
		r->created += created;
		memcpy(r->ids[i], inst.id, sizeof(inst.id));
		berth_registry_instance_clear(&inst);
	}
	if (r->shared == NULL)
		berth_registry_close(reg);
	return NULL;
}

/* Concurrent creators of the same names, with a handle each and sharing one. */
static void test_concurrent_create(void **state)
{
	struct fixture *f = *state;
	pthread_barrier_t start;
	uint64_t count;
	berth_error_t err;

	for (int shared = 0; shared < 2; shared++) {
		struct racer r[4];
		pthread_t t[4];

		pthread_barrier_init(&start, NULL, 4);
		for (int i = 0; i < 4; i++) {
			r[i] = (struct racer){.dir = f->dir, .start = &start};
			r[i].shared = shared ? f->reg : NULL;
			assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&start);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(r[i].failures, 0);
			for (int k = 0; k < 200; k++)
				assert_string_equal(r[i].ids[k], r[0].ids[k]);
		}
		/* Each name was created exactly once among the racers. */
		assert_int_equal(r[0].created + r[1].created + r[2].created + r[3].created, 200);
	}
	assert_int_equal(berth_registry_count(f->reg, "web", 0, &count, &err), 0);
	assert_int_equal(count, 400);
}

static void test_state_transitions(void **state)
{
	struct fixture *f = *state;
	struct berth_registry_instance inst;
	struct berth_registry_state_change c = {.state = BERTH_STATE_RUNNING, .time_ms = 1000};
	enum berth_state actual = BERTH_STATE_STOPPED;
	cleanup_free char *expected = NULL;
	char missing[BERTH_ID_LEN + 1];
	berth_error_t err;

	assert_int_equal(berth_registry_get_or_create(f->reg, "web", "s", &inst, NULL, &err), 0);
	assert_int_equal(
	        berth_registry_set_state(f->reg, inst.id, BERTH_STATE_STOPPED, &c, &actual, &err),
	        0);
	c = (struct berth_registry_state_change){.state = BERTH_STATE_HEALTHY, .time_ms = 2000};
	assert_int_equal(
	        berth_registry_set_state(f->reg, inst.id, BERTH_STATE_RUNNING, &c, &actual, &err),
	        0);
	/* A stale expectation: another thread moved the instance first. */
	c = (struct berth_registry_state_change){.state = BERTH_STATE_RUNNING, .time_ms = 2500};
	assert_int_equal(
	        berth_registry_set_state(f->reg, inst.id, BERTH_STATE_STOPPED, &c, &actual, &err),
	        -ESTALE);
	assert_int_equal(actual, BERTH_STATE_HEALTHY);
	expected = xasprintf("instance `%s` is healthy, not stopped", inst.id);
	assert_string_equal(err.message, expected);
	berth_registry_instance_clear(&inst);
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "s", &inst, &err), 0);
	assert_int_equal(inst.state, BERTH_STATE_HEALTHY);
	assert_int_equal(inst.last_change_ms, 2000);
	berth_registry_instance_clear(&inst);

	c = (struct berth_registry_state_change){.state = BERTH_STATE_STOPPING, .time_ms = 3000};
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "s", &inst, &err), 0);
	assert_int_equal(
	        berth_registry_set_state(f->reg, inst.id, BERTH_STATE_HEALTHY, &c, NULL, &err), 0);
	c = (struct berth_registry_state_change){.state = BERTH_STATE_STOPPED_WITH_CODE,
	                                         .has_exit_code = true,
	                                         .exit_code = 137,
	                                         .exit_signal = 9,
	                                         .oom = true,
	                                         .stop_reason = "oom",
	                                         .time_ms = 4000};
	assert_int_equal(berth_registry_set_state(f->reg, inst.id, BERTH_STATE_ANY, &c, NULL, &err),
	                 0);
	berth_registry_instance_clear(&inst);
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "s", &inst, &err), 0);
	assert_int_equal(inst.state, BERTH_STATE_STOPPED_WITH_CODE);
	assert_int_equal(inst.last_change_ms, 4000);
	assert_true(inst.has_exit_code);
	assert_int_equal(inst.exit_code, 137);
	assert_int_equal(inst.exit_signal, 9);
	assert_true(inst.oom);
	assert_string_equal(inst.stop_reason, "oom");

	/* A new start clears the last exit (the zero value of the change). */
	c = (struct berth_registry_state_change){.state = BERTH_STATE_RUNNING};
	assert_int_equal(berth_registry_set_state(f->reg, inst.id, BERTH_STATE_STOPPED_WITH_CODE,
	                                          &c, NULL, &err),
	                 0);
	berth_registry_instance_clear(&inst);
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "s", &inst, &err), 0);
	assert_false(inst.has_exit_code);
	assert_int_equal(inst.exit_signal, 0);
	assert_false(inst.oom);
	assert_null(inst.stop_reason);
	assert_true(inst.last_change_ms > 4000); /* now */

	berth_id_from_name("web", "never", missing);
	assert_int_equal(berth_registry_set_state(f->reg, missing, BERTH_STATE_ANY, &c, NULL, &err),
	                 -ENOENT);
	assert_int_equal(
	        berth_registry_set_state(f->reg, missing, BERTH_STATE_STOPPED, &c, NULL, &err),
	        -ENOENT);
	berth_registry_instance_clear(&inst);
}

static void test_overrides_and_destroy(void **state)
{
	struct fixture *f = *state;
	struct berth_registry_instance inst;
	struct berth_registry_state_change c = {.state = BERTH_STATE_STOPPED_WITH_CODE,
	                                        .has_exit_code = true,
	                                        .exit_code = 2,
	                                        .stop_reason = "exit"};
	struct berth_registry_activity act;
	cleanup_free char *expected = NULL;
	berth_error_t err;

	assert_int_equal(berth_registry_get_or_create(f->reg, "web", "o", &inst, NULL, &err), 0);
	assert_int_equal(berth_registry_set_overrides(f->reg, inst.id,
	                                              "{\"envVars\":{\"A\":\"1\"},\"entrypoint\":"
	                                              "[\"/bin/sh\"],\"enableInternet\":false}",
	                                              "{\"team\":\"x\"}", &err),
	                 0);
	assert_int_equal(berth_registry_set_overrides(f->reg, inst.id, "{nope", NULL, &err),
	                 -EINVAL);
	expected = xasprintf("set overrides of instance `%s`: not valid JSON", inst.id);
	assert_string_equal(err.message, expected);
	assert_int_equal(berth_registry_set_state(f->reg, inst.id, BERTH_STATE_ANY, &c, NULL, &err),
	                 0);
	snprintf(act.id, sizeof(act.id), "%s", inst.id);
	act.last_activity_ms = 5000;
	assert_int_equal(berth_registry_flush_activity(f->reg, &act, 1, NULL, &err), 0);
	berth_registry_instance_clear(&inst);

	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "o", &inst, &err), 0);
	assert_string_equal(inst.overrides,
	                    "{\"envVars\":{\"A\":\"1\"},\"entrypoint\":[\"/bin/sh\"],"
	                    "\"enableInternet\":false}");
	assert_string_equal(inst.labels, "{\"team\":\"x\"}");
	assert_int_equal(inst.last_activity_ms, 5000);
	assert_int_equal(berth_registry_destroy(f->reg, inst.id, &err), 0);
	berth_registry_instance_clear(&inst);
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "o", &inst, &err), 0);
	assert_int_equal(inst.state, BERTH_STATE_STOPPED);
	assert_false(inst.has_exit_code);
	assert_null(inst.stop_reason);
	assert_null(inst.overrides);
	assert_null(inst.labels);
	assert_int_equal(inst.last_activity_ms, 0);
	assert_string_equal(inst.name, "o"); /* the record stays */
	berth_registry_instance_clear(&inst);
}

static int count_cb(struct berth_registry_instance *inst, void *data)
{
	size_t *n = data;
	(void)inst;
	return ++*n >= 7;
}

static void test_list_and_count(void **state)
{
	struct fixture *f = *state;
	struct berth_registry_instance inst, *v = NULL;
	struct berth_registry_state_change run = {.state = BERTH_STATE_RUNNING};
	struct berth_registry_filter filter = {0};
	char name[32], after[BERTH_ID_LEN + 1] = "";
	berth_error_t err;
	uint64_t count;
	size_t n, seen = 0, calls = 0;

	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		assert_int_equal(berth_registry_get_or_create(f->reg, i < 30 ? "web" : "worker",
		                                              name, &inst, NULL, &err),
		                 0);
		if (i % 3 == 0)
			assert_int_equal(berth_registry_set_state(f->reg, inst.id, BERTH_STATE_ANY,
			                                          &run, NULL, &err),
			                 0);
		berth_registry_instance_clear(&inst);
	}
	assert_int_equal(berth_registry_list(f->reg, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 50);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(v[i - 1].id, v[i].id) < 0);
	berth_registry_instances_free(v, n);

	filter.class_name = "web";
	assert_int_equal(berth_registry_list(f->reg, &filter, &v, &n, &err), 0);
	assert_int_equal(n, 30);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i].class_name, "web");
	berth_registry_instances_free(v, n);

	filter.states = BERTH_STATE_BIT(BERTH_STATE_RUNNING);
	assert_int_equal(berth_registry_list(f->reg, &filter, &v, &n, &err), 0);
	assert_int_equal(n, 10); /* 0, 3, ..., 27 */
	berth_registry_instances_free(v, n);
	assert_int_equal(berth_registry_count(f->reg, "web", filter.states, &count, &err), 0);
	assert_int_equal(count, 10);
	assert_int_equal(berth_registry_count(f->reg, "worker",
	                                      BERTH_STATE_BIT(BERTH_STATE_RUNNING) |
	                                              BERTH_STATE_BIT(BERTH_STATE_HEALTHY),
	                                      &count, &err),
	                 0);
	assert_int_equal(count, 7); /* 30, 33, ..., 48 */
	assert_int_equal(berth_registry_count(f->reg, "worker", 0, &count, &err), 0);
	assert_int_equal(count, 20);

	/* Paging through a class, 8 at a time. */
	filter = (struct berth_registry_filter){.class_name = "worker", .limit = 8};
	for (;;) {
		filter.after_id = after[0] ? after : NULL;
		assert_int_equal(berth_registry_list(f->reg, &filter, &v, &n, &err), 0);
		if (n == 0)
			break;
		assert_true(n <= 8);
		assert_true(strcmp(v[0].id, after) > 0);
		snprintf(after, sizeof(after), "%s", v[n - 1].id);
		seen += n;
		berth_registry_instances_free(v, n);
	}
	free(v);
	assert_int_equal(seen, 20);

	/* The live ones of every class (through the class and state index), in id order, paged. */
	filter = (struct berth_registry_filter){.states = BERTH_STATE_BIT(BERTH_STATE_RUNNING) |
	                                                  BERTH_STATE_BIT(BERTH_STATE_HEALTHY) |
	                                                  BERTH_STATE_BIT(BERTH_STATE_STOPPING)};
	assert_int_equal(berth_registry_list(f->reg, &filter, &v, &n, &err), 0);
	assert_int_equal(n, 17); /* 0, 3, ..., 48 */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i].state, BERTH_STATE_RUNNING);
		if (i > 0)
			assert_true(strcmp(v[i - 1].id, v[i].id) < 0);
	}
	berth_registry_instances_free(v, n);
	after[0] = '\0';
	seen = 0;
	filter.limit = 5;
	for (;;) {
		filter.after_id = after[0] ? after : NULL;
		assert_int_equal(berth_registry_list(f->reg, &filter, &v, &n, &err), 0);
		if (n == 0)
			break;
		assert_true(n <= 5);
		assert_true(strcmp(v[0].id, after) > 0);
		snprintf(after, sizeof(after), "%s", v[n - 1].id);
		seen += n;
		berth_registry_instances_free(v, n);
	}
	free(v);
	assert_int_equal(seen, 17);

	/* A callback stops the walk. */
	assert_int_equal(berth_registry_foreach(f->reg, NULL, count_cb, &calls, &err), 0);
	assert_int_equal(calls, 7);
}

/* ---- transactions ---- */

struct tx_args {
	const char *name;
	int fail;
};

static int tx_body(struct berth_registry *reg, void *data, berth_error_t *err)
{
	struct tx_args *a = data;
	struct berth_registry_instance inst;
	struct berth_registry_state_change c = {.state = BERTH_STATE_RUNNING};
	char missing[BERTH_ID_LEN + 1];
	int ret;

	ret = berth_registry_get_or_create(reg, "web", a->name, &inst, NULL, err);
	if (ret < 0)
		return ret;
	ret = berth_registry_append_event(reg, "web", inst.id, "created", NULL, NULL, err);
	berth_registry_instance_clear(&inst);
	if (ret < 0)
		return ret;
	/* A failing call inside the transaction undoes only itself. */
	berth_id_from_name("web", "missing", missing);
	assert_int_equal(berth_registry_set_state(reg, missing, BERTH_STATE_ANY, &c, NULL, err),
	                 -ENOENT);
	if (a->fail)
		return berth_error_set_plain(err, EINTR, "changed my mind");
	return 0;
}

static void test_transact(void **state)
{
	struct fixture *f = *state;
	struct tx_args ok = {"tx-ok", 0}, bad = {"tx-bad", 1};
	struct berth_registry_instance inst;
	struct berth_registry_event *ev = NULL;
	berth_error_t err;
	size_t n;

	assert_int_equal(berth_registry_transact(f->reg, tx_body, &ok, &err), 0);
	assert_int_equal(berth_registry_transact(f->reg, tx_body, &bad, &err), -EINTR);
	assert_string_equal(err.message, "changed my mind");
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "tx-ok", &inst, &err), 0);
	berth_registry_instance_clear(&inst);
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "tx-bad", &inst, &err), -ENOENT);
	assert_int_equal(berth_registry_list_events(f->reg, NULL, &ev, &n, &err), 0);
	assert_int_equal(n, 1);
	berth_registry_events_free(ev, n);
}

struct hold {
	struct berth_registry *other;
	int ret;
	berth_error_t err;
};

static int hold_body(struct berth_registry *reg, void *data, berth_error_t *err)
{
	struct hold *h = data;
	struct berth_registry_instance inst;
	(void)reg;
	(void)err;

	/* `reg` holds the write lock; a second connection waits, then gives up. */
	h->ret = berth_registry_get_or_create(h->other, "web", "blocked", &inst, NULL, &h->err);
	return 0;
}

static void test_busy(void **state)
{
	struct fixture *f = *state;
	const struct berth_registry_options opts = {.busy_timeout_ms = 50};
	struct hold h = {0};
	cleanup_free char *expected = NULL;
	berth_error_t err;

	h.other = open_ok(f->dir, &opts);
	assert_int_equal(berth_registry_transact(f->reg, hold_body, &h, &err), 0);
	assert_int_equal(h.ret, -EBUSY);
	expected = xasprintf("create instance `web/blocked`: begin transaction: registry `%s`: "
	                     "database is locked",
	                     berth_registry_path(f->reg));
	assert_string_equal(h.err.message, expected);
	berth_registry_close(h.other);
}

/* ---- events ---- */

static void test_events(void **state)
{
	struct fixture *f = *state;
	struct berth_registry_event *v = NULL;
	struct berth_registry_event_filter filter = {0};
	char a[BERTH_ID_LEN + 1], b[BERTH_ID_LEN + 1];
	berth_error_t err;
	int64_t seq, last;
	uint64_t deleted;
	size_t n;

	berth_id_from_name("web", "a", a);
	berth_id_from_name("worker", "b", b);
	assert_int_equal(berth_registry_last_event_seq(f->reg, &last, &err), 0);
	assert_int_equal(last, 0);
	for (int i = 0; i < 30; i++) {
		char data[64];
		snprintf(data, sizeof(data), "{\"i\":%d}", i);
		assert_int_equal(berth_registry_append_event(f->reg,
		                                             i % 3 == 2 ? NULL
		                                             : i % 3    ? "worker"
		                                                        : "web",
		                                             i % 3 == 2 ? NULL
		                                             : i % 3    ? b
		                                                        : a,
		                                             "state", data, &seq, &err),
		                 0);
		assert_int_equal(seq, i + 1);
	}
	assert_int_equal(berth_registry_append_event(f->reg, NULL, NULL, "x", "{bad", &seq, &err),
	                 -EINVAL);
	assert_string_equal(err.message, "append event `x`: data is not valid JSON");

	assert_int_equal(berth_registry_list_events(f->reg, &filter, &v, &n, &err), 0);
	assert_int_equal(n, 30);
	assert_int_equal(v[0].seq, 1);
	assert_string_equal(v[0].class_name, "web");
	assert_string_equal(v[0].instance_id, a);
	assert_string_equal(v[0].type, "state");
	assert_string_equal(v[0].data, "{\"i\":0}");
	assert_null(v[2].class_name);
	assert_null(v[2].instance_id);
	assert_true(v[0].time_ms > 0);
	berth_registry_events_free(v, n);

	filter = (struct berth_registry_event_filter){.after_seq = 10, .limit = 5};
	assert_int_equal(berth_registry_list_events(f->reg, &filter, &v, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(v[0].seq, 11);
	assert_int_equal(v[4].seq, 15);
	berth_registry_events_free(v, n);

	filter = (struct berth_registry_event_filter){.class_name = "worker"};
	assert_int_equal(berth_registry_list_events(f->reg, &filter, &v, &n, &err), 0);
	assert_int_equal(n, 10);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].seq % 3, 2);
	berth_registry_events_free(v, n);

	filter = (struct berth_registry_event_filter){.instance_id = a, .after_seq = 12};
	assert_int_equal(berth_registry_list_events(f->reg, &filter, &v, &n, &err), 0);
	assert_int_equal(n, 6); /* seq 13, 16, ..., 28 */
	assert_int_equal(v[0].seq, 13);
	berth_registry_events_free(v, n);
	filter.class_name = "worker"; /* instance of another class: nothing */
	assert_int_equal(berth_registry_list_events(f->reg, &filter, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	berth_registry_events_free(v, n);

	/* Prune by count: the newest 12 stay. */
	assert_int_equal(berth_registry_prune_events(f->reg, 12, 0, &deleted, &err), 0);
	assert_int_equal(deleted, 18);
	assert_int_equal(berth_registry_list_events(f->reg, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 12);
	assert_int_equal(v[0].seq, 19);
	berth_registry_events_free(v, n);
	/* Prune by age: everything before a time after the newest. */
	assert_int_equal(berth_registry_prune_events(f->reg, 0, berth_registry_now_ms() + 1000,
	                                             &deleted, &err),
	                 0);
	assert_int_equal(deleted, 12);
	/* Numbers are never reused, even with the log empty. */
	assert_int_equal(berth_registry_last_event_seq(f->reg, &last, &err), 0);
	assert_int_equal(last, 30);
	assert_int_equal(berth_registry_append_event(f->reg, NULL, NULL, "x", NULL, &seq, &err), 0);
	assert_int_equal(seq, 31);
	/* An age in the past deletes nothing recent. */
	assert_int_equal(berth_registry_prune_events(f->reg, 0, 1, &deleted, &err), 0);
	assert_int_equal(deleted, 0);
	/* A given time is the time recorded. */
	{
		struct berth_registry_event *at = NULL;
		struct berth_registry_event_filter af = {.after_seq = 0};
		size_t an = 0;
		int64_t at_seq = 0;
		assert_int_equal(berth_registry_append_event_at(f->reg, NULL, NULL, "at", NULL,
		                                                1234567, &at_seq, &err),
		                 0);
		af.after_seq = at_seq - 1;
		assert_int_equal(berth_registry_list_events(f->reg, &af, &at, &an, &err), 0);
		assert_int_equal(an, 1);
		assert_int_equal(at[0].time_ms, 1234567);
		berth_registry_events_free(at, an);
	}
}

static void test_events_auto_prune(void **state)
{
	struct fixture *f = *state;
	const struct berth_registry_options opts = {.events_keep = 100};
	struct berth_registry_event *v = NULL;
	berth_error_t err;
	size_t n;

	f->reg = open_ok(f->dir, &opts);
	for (unsigned i = 0; i < 3 * BERTH_REGISTRY_PRUNE_EVERY; i++)
		assert_int_equal(
		        berth_registry_append_event(f->reg, NULL, NULL, "tick", NULL, NULL, &err),
		        0);
	assert_int_equal(berth_registry_list_events(f->reg, NULL, &v, &n, &err), 0);
	/* Pruned at the last append (a multiple of the period): exactly the bound is left. */
	assert_int_equal(n, 100);
	assert_int_equal(v[n - 1].seq, 3 * BERTH_REGISTRY_PRUNE_EVERY);
	berth_registry_events_free(v, n);
}

/* ---- activity and scale ---- */

struct bulk {
	const char *class_name;
	int from, count;
	char (*ids)[BERTH_ID_LEN + 1];
};

static int bulk_create(struct berth_registry *reg, void *data, berth_error_t *err)
{
	struct bulk *b = data;
	struct berth_registry_instance inst;
	char name[32];
	int ret;

	for (int i = 0; i < b->count; i++) {
		snprintf(name, sizeof(name), "n%d", b->from + i);
		ret = berth_registry_get_or_create(reg, b->class_name, name, &inst, NULL, err);
		if (ret < 0)
			return ret;
		if (b->ids != NULL)
			memcpy(b->ids[i], inst.id, sizeof(inst.id));
		berth_registry_instance_clear(&inst);
	}
	return 0;
}

static void test_activity_flush(void **state)
{
	struct fixture *f = *state;
	enum { N = 10000 };
	struct berth_registry_activity *items = xcalloc(N + 1, sizeof(*items));
	char(*ids)[BERTH_ID_LEN + 1] = xcalloc(N, sizeof(*ids));
	struct bulk b = {"web", 0, N, ids};
	struct berth_registry_instance inst;
	berth_error_t err;
	size_t updated;
	double t0, t1;

	assert_int_equal(berth_registry_transact(f->reg, bulk_create, &b, &err), 0);
	for (int i = 0; i < N; i++) {
		memcpy(items[i].id, ids[i], sizeof(items[i].id));
		items[i].last_activity_ms = 1000000 + i;
	}
	berth_id_from_name("web", "no-such-record", items[N].id);
	items[N].last_activity_ms = 1;
	t0 = now_s();
	assert_int_equal(berth_registry_flush_activity(f->reg, items, N + 1, &updated, &err), 0);
	t1 = now_s();
	printf("activity flush: %d records in one call: %.1f ms\n", N, (t1 - t0) * 1e3);
	assert_int_equal(updated, N);
	assert_true(t1 - t0 < 10.0);

	assert_int_equal(berth_registry_get(f->reg, ids[1234], &inst, &err), 0);
	assert_int_equal(inst.last_activity_ms, 1001234);
	berth_registry_instance_clear(&inst);
	/* Activity never moves back. */
	items[0].last_activity_ms = 5;
	items[1].last_activity_ms = 2000000;
	assert_int_equal(berth_registry_flush_activity(f->reg, items, 2, &updated, &err), 0);
	assert_int_equal(updated, 1);
	assert_int_equal(berth_registry_get(f->reg, ids[0], &inst, &err), 0);
	assert_int_equal(inst.last_activity_ms, 1000000);
	berth_registry_instance_clear(&inst);
	free(items);
	free(ids);
}

static void test_scale_100k(void **state)
{
	struct fixture *f = *state;
	enum { N = 100000, LOOKUPS = 2000 };
	char(*ids)[BERTH_ID_LEN + 1] = xcalloc(N, sizeof(*ids));
	struct bulk b = {"web", 0, N, ids};
	struct berth_registry_instance inst, *v = NULL;
	struct berth_registry_filter filter = {.class_name = "worker", .limit = 100};
	berth_error_t err;
	uint64_t count;
	char name[32];
	double t0, t1, by_id, by_name, page, cnt;
	size_t n;

	t0 = now_s();
	assert_int_equal(berth_registry_transact(f->reg, bulk_create, &b, &err), 0);
	b = (struct bulk){"worker", 0, 1000, NULL};
	assert_int_equal(berth_registry_transact(f->reg, bulk_create, &b, &err), 0);
	t1 = now_s();
	printf("100k: created %d records in one transaction: %.2f s\n", N + 1000, t1 - t0);

	srand(42);
	t0 = now_s();
	for (int i = 0; i < LOOKUPS; i++) {
		assert_int_equal(berth_registry_get(f->reg, ids[rand() % N], &inst, &err), 0);
		berth_registry_instance_clear(&inst);
	}
	by_id = (now_s() - t0) / LOOKUPS;
	t0 = now_s();
	for (int i = 0; i < LOOKUPS; i++) {
		snprintf(name, sizeof(name), "n%d", rand() % N);
		assert_int_equal(berth_registry_get_by_name(f->reg, "web", name, &inst, &err), 0);
		berth_registry_instance_clear(&inst);
	}
	by_name = (now_s() - t0) / LOOKUPS;
	t0 = now_s();
	assert_int_equal(berth_registry_list(f->reg, &filter, &v, &n, &err), 0);
	page = now_s() - t0;
	assert_int_equal(n, 100);
	berth_registry_instances_free(v, n);
	t0 = now_s();
	assert_int_equal(berth_registry_count(f->reg, "web", BERTH_STATE_BIT(BERTH_STATE_RUNNING),
	                                      &count, &err),
	                 0);
	cnt = now_s() - t0;
	assert_int_equal(count, 0);
	printf("100k: lookup by id %.1f us, by (class, name) %.1f us (mean of %d); "
	       "a page of 100 of a class %.2f ms; count running %.3f ms\n",
	       by_id * 1e6, by_name * 1e6, LOOKUPS, page * 1e3, cnt * 1e3);
	/* Generous bounds: an index must be in use, whatever the machine's load. */
	assert_true(by_id < 5e-3);
	assert_true(by_name < 5e-3);
	assert_true(page < 0.5);

	/*
	 * The running ones among 101,000 sleeping records, as berthd's start-up
	 * looks for them: found without reading the sleeping ones (counted as
	 * pages SQLite had to read, from an empty cache; all of them would be
	 * thousands).
	 */
	{
		struct berth_registry_filter live = {.states =
		                                             BERTH_STATE_BIT(BERTH_STATE_RUNNING) |
		                                             BERTH_STATE_BIT(BERTH_STATE_HEALTHY) |
		                                             BERTH_STATE_BIT(BERTH_STATE_STOPPING)};
		struct berth_registry_state_change run = {.state = BERTH_STATE_RUNNING};
		int cur = 0, hi = 0;

		for (int i = 0; i < 3; i++)
			assert_int_equal(berth_registry_set_state(f->reg, ids[i * 1000],
			                                          BERTH_STATE_ANY, &run, NULL,
			                                          &err),
			                 0);
		berth_registry_close(f->reg);
		f->reg = open_ok(f->dir, NULL);
		sqlite3_db_status(f->reg->db, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 1);
		assert_int_equal(berth_registry_list(f->reg, &live, &v, &n, &err), 0);
		assert_int_equal(n, 3);
		berth_registry_instances_free(v, n);
		sqlite3_db_status(f->reg->db, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0);
		printf("100k: the 3 running ones listed reading %d pages\n", cur);
		assert_true(cur < 100);
	}
	free(ids);
}

/*
 * Every cached statement, after a round of every call: none reads a whole
 * table, except those that must (listing the classes; the walk to the first
 * recent event; the one-row sqlite_sequence), so lookups stay fast at any
 * size.
 */
static void test_query_plans(void **state)
{
	struct fixture *f = *state;
	struct berth_registry_instance inst, *v = NULL;
	struct berth_registry_class *classes = NULL;
	struct berth_registry_event *ev = NULL;
	struct berth_registry_state_change c = {.state = BERTH_STATE_RUNNING};
	struct berth_registry_filter by_class = {.class_name = "web"};
	struct berth_registry_filter live = {.states = BERTH_STATE_BIT(BERTH_STATE_RUNNING)};
	struct berth_registry_event_filter ef = {.class_name = "web"};
	struct berth_registry_activity act = {.last_activity_ms = 1};
	struct berth_registry_class cls;
	berth_error_t err;
	uint64_t count;
	int64_t seq;
	size_t n;

	assert_int_equal(berth_registry_upsert_class(f->reg, "web", "{\"x\":1}", NULL, &err), 0);
	assert_int_equal(berth_registry_get_class(f->reg, "web", &cls, &err), 0);
	berth_registry_class_clear(&cls);
	assert_int_equal(berth_registry_list_classes(f->reg, &classes, &n, &err), 0);
	berth_registry_classes_free(classes, n);
	assert_int_equal(berth_registry_get_or_create(f->reg, "web", "p", &inst, NULL, &err), 0);
	snprintf(act.id, sizeof(act.id), "%s", inst.id);
	assert_int_equal(
	        berth_registry_set_state(f->reg, inst.id, BERTH_STATE_STOPPED, &c, NULL, &err), 0);
	assert_int_equal(
	        berth_registry_set_state(f->reg, inst.id, BERTH_STATE_STOPPED, &c, NULL, &err),
	        -ESTALE);
	assert_int_equal(berth_registry_set_overrides(f->reg, inst.id, "{}", NULL, &err), 0);
	assert_int_equal(berth_registry_flush_activity(f->reg, &act, 1, NULL, &err), 0);
	assert_int_equal(berth_registry_destroy(f->reg, inst.id, &err), 0);
	berth_registry_instance_clear(&inst);
	assert_int_equal(berth_registry_get_by_name(f->reg, "web", "p", &inst, &err), 0);
	berth_registry_instance_clear(&inst);
	assert_int_equal(berth_registry_list(f->reg, NULL, &v, &n, &err), 0);
	berth_registry_instances_free(v, n);
	assert_int_equal(berth_registry_list(f->reg, &by_class, &v, &n, &err), 0);
	berth_registry_instances_free(v, n);
	assert_int_equal(berth_registry_list(f->reg, &live, &v, &n, &err), 0);
	berth_registry_instances_free(v, n);
	assert_int_equal(berth_registry_count(f->reg, "web", 0, &count, &err), 0);
	assert_int_equal(berth_registry_append_event(f->reg, "web", act.id, "t", NULL, &seq, &err),
	                 0);
	assert_int_equal(berth_registry_list_events(f->reg, NULL, &ev, &n, &err), 0);
	berth_registry_events_free(ev, n);
	assert_int_equal(berth_registry_list_events(f->reg, &ef, &ev, &n, &err), 0);
	berth_registry_events_free(ev, n);
	ef.instance_id = act.id;
	assert_int_equal(berth_registry_list_events(f->reg, &ef, &ev, &n, &err), 0);
	berth_registry_events_free(ev, n);
	assert_int_equal(berth_registry_last_event_seq(f->reg, &seq, &err), 0);
	assert_int_equal(berth_registry_prune_events(f->reg, 10, 1, NULL, &err), 0);

	for (int i = 0; i < BERTH_STMT_COUNT; i++) {
		sqlite3_stmt *st = f->reg->stmts[i];
		cleanup_free char *sql = NULL;
		sqlite3_stmt *plan = NULL;
		bool may_scan = i == BERTH_STMT_CLASS_LIST || i == BERTH_STMT_EVENT_FIRST_SINCE ||
		                i == BERTH_STMT_EVENT_SEQUENCE;

		/* Only the error paths of transactions are left unexercised. */
		if (i == BERTH_STMT_ROLLBACK || i == BERTH_STMT_ROLLBACK_TO ||
		    i == BERTH_STMT_SAVEPOINT || i == BERTH_STMT_RELEASE) {
			continue;
		}
		if (st == NULL)
			fail_msg("statement %d was not used", i);
		sql = xasprintf("EXPLAIN QUERY PLAN %s", sqlite3_sql(st));
		assert_int_equal(sqlite3_prepare_v2(f->reg->db, sql, -1, &plan, NULL), SQLITE_OK);
		while (sqlite3_step(plan) == SQLITE_ROW) {
			const char *detail = (const char *)sqlite3_column_text(plan, 3);
			if (strncmp(detail, "SCAN ", 5) == 0 && !may_scan)
				fail_msg("%s: %s", sqlite3_sql(st), detail);
		}
		sqlite3_finalize(plan);
	}
}

/* ---- durability ---- */

/*
 * The child writes records in a loop and acknowledges each on the pipe once
 * the call returned; it is SIGKILLed at a random moment. Each record is a
 * create plus a state change plus an event in one transaction.
 */
static int crash_body(struct berth_registry *reg, void *data, berth_error_t *err)
{
	const char *name = data;
	struct berth_registry_instance inst;
	struct berth_registry_state_change run = {.state = BERTH_STATE_RUNNING};
	int ret;

	ret = berth_registry_get_or_create(reg, "web", name, &inst, NULL, err);
	if (ret < 0)
		return ret;
	ret = berth_registry_set_state(reg, inst.id, BERTH_STATE_STOPPED, &run, NULL, err);
	if (ret == 0)
		ret = berth_registry_append_event(reg, "web", inst.id, "state", "{}", NULL, err);
	berth_registry_instance_clear(&inst);
	return ret;
}

static void crash_child(const char *dir, int round, int fd)
{
	struct berth_registry *reg = NULL;
	struct berth_registry_activity act;
	berth_error_t err;
	char name[32];

	if (berth_registry_open(dir, NULL, &reg, &err) < 0)
		_exit(2);
	register_class(reg, "web");
	for (uint32_t i = 0;; i++) {
		snprintf(name, sizeof(name), "r%d-%" PRIu32, round, i);
		if (berth_registry_transact(reg, crash_body, name, &err) < 0)
			_exit(3);
		/* Activity flushes in between, as the daemon does. */
		if (i % 16 == 15) {
			berth_id_from_name("web", name, act.id);
			act.last_activity_ms = 1;
			if (berth_registry_flush_activity(reg, &act, 1, NULL, &err) < 0)
				_exit(4);
		}
		if (berth_write_all(fd, &i, sizeof(i)) < 0)
			_exit(5);
	}
}

static void test_crash_durability(void **state)
{
	struct fixture *f = *state;
	unsigned total = 0;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int round = 0; round < 5; round++) {
		struct berth_registry_instance inst;
		berth_error_t err;
		uint32_t acked = 0, i;
		bool any = false;
		char name[32];
		int p[2], status;
		pid_t pid;
		long delay_us = 20000 + rand() % 200000;

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		/* No registry is open here: a connection must not cross fork(). */
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(f->dir, round, p[1]);
		}
		close(p[1]);
		usleep((useconds_t)delay_us);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		/* Every acknowledgement the child wrote before it died counts. */
		while (read(p[0], &i, sizeof(i)) == sizeof(i)) {
			acked = i;
			any = true;
		}
		close(p[0]);

		f->reg = open_ok(f->dir, NULL);
		assert_int_equal(berth_registry_check(f->reg, &err), 0);
		for (uint32_t k = 0; any && k <= acked; k++) {
			snprintf(name, sizeof(name), "r%d-%" PRIu32, round, k);
			if (berth_registry_get_by_name(f->reg, "web", name, &inst, &err) < 0)
				fail_msg("round %d: acknowledged record %s is gone: %s", round,
				         name, err.message);
			assert_int_equal(inst.state, BERTH_STATE_RUNNING);
			berth_registry_instance_clear(&inst);
		}
		printf("crash round %d: killed after %ld ms, %u acknowledged records present\n",
		       round, delay_us / 1000, any ? acked + 1 : 0);
		total += any ? acked + 1 : 0;
		berth_registry_close(f->reg);
		f->reg = NULL;
	}
	assert_true(total > 0);
}

/* ---- the state directory lock ---- */

static void test_lock(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *sub = xasprintf("%s/state", f->dir);
	cleanup_free char *expected = NULL;
	berth_error_t err;
	int fd = -1, fd2 = -1, status;
	pid_t pid;

	assert_int_equal(berth_registry_lock_state_dir(sub, &fd, &err), 0);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* flock() locks belong to the open file: a second one fails in this process too. */
	assert_int_equal(berth_registry_lock_state_dir(sub, &fd2, &err), -EBUSY);
	expected = xasprintf("state directory `%s` is in use by another berthd (pid %ld)", sub,
	                     (long)getpid());
	assert_string_equal(err.message, expected);
	assert_int_equal(fd2, -1);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int cfd = -1;
		_exit(berth_registry_lock_state_dir(sub, &cfd, &err) == -EBUSY ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	close(fd);
	assert_int_equal(berth_registry_lock_state_dir(sub, &fd2, &err), 0);
	close(fd2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_open_fresh, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_not_a_database, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_foreign_database, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_unopenable, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_unreadable, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_corrupt_pages, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_check_reports, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_migration_steps, setup_dir, teardown),
	        cmocka_unit_test(test_id_vectors),
	        cmocka_unit_test(test_unique_ids),
	        cmocka_unit_test_setup_teardown(test_classes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_get_or_create, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_concurrent_create, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_state_transitions, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_overrides_and_destroy, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_list_and_count, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_transact, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_events_auto_prune, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_activity_flush, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_scale_100k, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_plans, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_crash_durability, setup_dir, teardown),
	        cmocka_unit_test_setup_teardown(test_lock, setup_dir, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
