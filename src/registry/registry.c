/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry handle: opening the database, the connection's settings, the
 * statement cache, transactions and errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "registry/registry-internal.h"

/* ---- errors ---- */

/*
 * What an SQLite primary result code means for a caller. `sys`: the
 * operating system's errno (sqlite3_system_errno) says more than SQLite's
 * message, and is appended to it.
 */
static const struct {
	int rc;
	int errnum;
	bool sys;
} rc_errnos[] = {
        {SQLITE_BUSY, EBUSY, false},      {SQLITE_LOCKED, EBUSY, false},
        {SQLITE_NOMEM, ENOMEM, false},    {SQLITE_READONLY, EROFS, true},
        {SQLITE_IOERR, EIO, true},        {SQLITE_CORRUPT, EIO, false},
        {SQLITE_NOTADB, EIO, false},      {SQLITE_FULL, ENOSPC, true},
        {SQLITE_CANTOPEN, ENOENT, true},  {SQLITE_PERM, EACCES, false},
        {SQLITE_AUTH, EACCES, false},     {SQLITE_CONSTRAINT, EINVAL, false},
        {SQLITE_MISMATCH, EINVAL, false}, {SQLITE_TOOBIG, E2BIG, false},
        {SQLITE_RANGE, EINVAL, false},    {SQLITE_PROTOCOL, EIO, false},
        {SQLITE_SCHEMA, EAGAIN, false},
};

int berth_registry_db_error(sqlite3 *db, const char *path, int rc, berth_error_t *err,
                            const char *fmt, ...)
{
	char context[BERTH_ERROR_MSG_MAX];
	const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	int errnum = EIO, sys = 0;
	va_list ap;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(rc_errnos); i++) {
		if (rc_errnos[i].rc != (rc & 0xff))
			continue;
		errnum = rc_errnos[i].errnum;
		if (rc_errnos[i].sys && db != NULL)
			sys = sqlite3_system_errno(db);
		break;
	}
	if (sys > 0)
		errnum = sys;
	/* sqlite3_errmsg() describes the last call on `db`, which may not be `rc`'s. */
	if (db != NULL && (sqlite3_extended_errcode(db) & 0xff) != (rc & 0xff))
		msg = sqlite3_errstr(rc);
	va_start(ap, fmt);
	vsnprintf(context, sizeof(context), fmt, ap);
	va_end(ap);
	if (path != NULL)
		berth_error_set_plain(err, errnum, "%s: registry `%s`: %s", context, path, msg);
	else
		berth_error_set_plain(err, errnum, "%s: %s", context, msg);
	if (sys > 0 && err != NULL) {
		size_t len = strlen(err->message);
		snprintf(err->message + len, sizeof(err->message) - len, ": %s", strerror(sys));
	}
	return -errnum;
}

/* ---- statements ---- */

int berth_registry_stmt(struct berth_registry *reg, enum berth_registry_stmt id, const char *sql,
                        sqlite3_stmt **out, berth_error_t *err)
{
	int rc;

	if (reg->stmts[id] == NULL) {
		rc = sqlite3_prepare_v3(reg->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &reg->stmts[id], NULL);
		if (rc != SQLITE_OK)
			return berth_registry_error(reg, rc, err, "prepare `%s`", sql);
	}
	*out = reg->stmts[id];
	return 0;
}

void berth_registry_stmt_resetp(sqlite3_stmt **st)
{
	if (*st == NULL)
		return;
	sqlite3_reset(*st);
	sqlite3_clear_bindings(*st);
}

void berth_registry_finalizep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}

int berth_registry_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

char *berth_registry_column_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	if (s == NULL)
		return NULL;
	return xstrndup((const char *)s, (size_t)sqlite3_column_bytes(st, i));
}

int64_t berth_registry_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- locking and transactions ---- */

struct berth_registry *berth_registry_lock(struct berth_registry *reg)
{
	pthread_mutex_lock(&reg->mutex);
	return reg;
}

void berth_registry_unlockp(struct berth_registry **reg)
{
	if (*reg != NULL)
		pthread_mutex_unlock(&(*reg)->mutex);
}

/* Run a cached statement that returns no rows; `what` says what for a message. */
static int run(struct berth_registry *reg, enum berth_registry_stmt id, const char *sql,
               const char *what, berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_stmt(reg, id, sql, &st, err);
	if (ret < 0)
		return ret;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return berth_registry_error(reg, rc, err, "%s", what);
	return 0;
}

int berth_registry_tx_begin(struct berth_registry *reg, berth_error_t *err)
{
	int ret;

	berth_registry_lock(reg);
	if (reg->tx_depth == 0)
		ret = run(reg, BERTH_STMT_BEGIN, "BEGIN IMMEDIATE", "begin transaction", err);
	else if (sqlite3_get_autocommit(reg->db))
		/*
		 * Some errors (SQLITE_FULL, SQLITE_IOERR) roll back the whole
		 * transaction, not just the call that met them. A SAVEPOINT now
		 * would start a new transaction and commit this call on its own,
		 * outside the caller's.
		 */
		ret = berth_error_set_plain(err, EIO,
		                            "registry `%s`: the transaction was rolled back by an "
		                            "earlier error",
		                            reg->path);
	else
		ret = run(reg, BERTH_STMT_SAVEPOINT, "SAVEPOINT op", "begin savepoint", err);
	if (ret < 0) {
		pthread_mutex_unlock(&reg->mutex);
		return ret;
	}
	reg->tx_depth++;
	return 0;
}

void berth_registry_tx_rollback(struct berth_registry *reg)
{
	berth_error_t ignored;

	reg->tx_depth--;
	if (reg->tx_depth > 0) {
		/* ROLLBACK TO keeps the savepoint open; RELEASE closes it. */
		if (run(reg, BERTH_STMT_ROLLBACK_TO, "ROLLBACK TO op", "roll back", &ignored) == 0)
			run(reg, BERTH_STMT_RELEASE, "RELEASE op", "release", &ignored);
	} else if (!sqlite3_get_autocommit(reg->db)) {
		/* Some errors (SQLITE_FULL, SQLITE_IOERR) have rolled back already. */
		run(reg, BERTH_STMT_ROLLBACK, "ROLLBACK", "roll back", &ignored);
	}
	pthread_mutex_unlock(&reg->mutex);
}

int berth_registry_tx_commit(struct berth_registry *reg, berth_error_t *err)
{
	int ret;

	if (reg->tx_depth > 1)
		ret = run(reg, BERTH_STMT_RELEASE, "RELEASE op", "release", err);
	else
		ret = run(reg, BERTH_STMT_COMMIT, "COMMIT", "commit", err);
	if (ret < 0) {
		/* A failed COMMIT may leave the transaction open (SQLITE_BUSY): end it. */
		berth_registry_tx_rollback(reg);
		return ret;
	}
	reg->tx_depth--;
	pthread_mutex_unlock(&reg->mutex);
	return 0;
}

int berth_registry_transact(struct berth_registry *reg, berth_registry_tx_fn fn, void *data,
                            berth_error_t *err)
{
	int ret;

	ret = berth_registry_tx_begin(reg, err);
	if (ret < 0)
		return ret;
	ret = fn(reg, data, err);
	if (ret < 0) {
		berth_registry_tx_rollback(reg);
		return ret;
	}
	return berth_registry_tx_commit(reg, err);
}

/* ---- opening ---- */

/*
 * Run one statement of our own (a PRAGMA) and return the first column of its
 * first row in `value` (may be NULL), up to `len` bytes.
 */
static int pragma(sqlite3 *db, const char *path, const char *sql, char *value, size_t len,
                  berth_error_t *err)
{
	cleanup_finalize sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return berth_registry_db_error(db, NULL, rc, err, "open registry `%s`", path);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return berth_registry_db_error(db, NULL, rc, err, "open registry `%s`", path);
	if (value != NULL) {
		const unsigned char *s = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
		snprintf(value, len, "%s", s != NULL ? (const char *)s : "");
	}
	return 0;
}

/*
 * Create the database file ourselves, so that it (and the -wal and -shm
 * files, which SQLite gives the same mode) is 0600: instance records carry
 * start options, which may hold secrets in envVars. The new directory entry
 * is synced: a commit that SQLite syncs is durable only if the file is.
 */
static int create_file(const char *dir, const char *path, berth_error_t *err)
{
	cleanup_close int fd = -1;
	cleanup_close int dfd = -1;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		/* Existing (or a directory, a symlink): SQLite opens it, or says why not. */
		if (errno == EEXIST)
			return 0;
		return berth_error_set(err, errno, "create registry `%s`", path);
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_set(err, errno, "open `%s`", dir);
	if (fsync(fd) < 0 || fsync(dfd) < 0)
		return berth_error_set(err, errno, "sync registry `%s`", path);
	return 0;
}

/*
 * The connection's settings. synchronous is FULL, not NORMAL:
 *
 * In WAL mode both keep the database consistent through a crash of the
 * process or of the machine: a commit is a frame appended to the WAL, and a
 * torn or missing tail is ignored on recovery. They differ in durability.
 * NORMAL syncs the WAL only at checkpoints, so after a power loss or kernel
 * crash the last commits can be gone although the calls that made them
 * returned success (after a mere kill -9 they survive either way: the data
 * is in the page cache). FULL syncs the WAL at every commit, so a call that
 * returned 0 is on disk. The registry's writes are few and small (a state
 * change, an event; activity goes in batches), so one fdatasync each is
 * cheap, and the daemon must not restart believing an instance stopped that
 * it had recorded as started (or forget an id it handed out).
 */
static int configure(struct berth_registry *reg, int busy_timeout_ms, berth_error_t *err)
{
	char mode[16];
	int ret;

	sqlite3_extended_result_codes(reg->db, 1);
	sqlite3_busy_timeout(reg->db, busy_timeout_ms);
	/* No writable_schema and other ways to corrupt the file through SQL. */
	sqlite3_db_config(reg->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	/* "text" is a string, never a column name that happens to be missing. */
	sqlite3_db_config(reg->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
	sqlite3_db_config(reg->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
	/*
	 * trusted_schema stays on: the schema's CHECKs call json_valid(), which
	 * SQLite 3.40 does not mark innocuous. The file is 0600 in the daemon's
	 * own state directory; whoever can rewrite it can rewrite berthd's
	 * configuration as well.
	 */

	/* The first statement reads the file header: a file that is not a database fails here. */
	ret = pragma(reg->db, reg->path, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err);
	if (ret < 0)
		return ret;
	if (strcmp(mode, "wal") != 0)
		return berth_error_set_plain(
		        err, EIO,
		        "open registry `%s`: cannot use WAL mode (journal mode "
		        "is `%s`; is the file system a network one?)",
		        reg->path, mode);
	ret = pragma(reg->db, reg->path, "PRAGMA synchronous = FULL", NULL, 0, err);
	if (ret < 0)
		return ret;
	ret = pragma(reg->db, reg->path, "PRAGMA foreign_keys = ON", NULL, 0, err);
	if (ret < 0)
		return ret;
	/*
	 * Savepoints (every call inside berth_registry_transact() is one) keep
	 * the pages they change in a sub-journal: in memory, not in a temporary
	 * file. The page cache grows to 16 MiB as it is used: 100k records
	 * take about 30 MiB on disk, and a cache a fraction of that keeps the
	 * b-tree interiors in memory.
	 */
	ret = pragma(reg->db, reg->path, "PRAGMA temp_store = MEMORY", NULL, 0, err);
	if (ret < 0)
		return ret;
	ret = pragma(reg->db, reg->path, "PRAGMA cache_size = -16384", NULL, 0, err);
	if (ret < 0)
		return ret;
	/* Truncate the WAL after a checkpoint that let it grow past 64 MiB. */
	return pragma(reg->db, reg->path, "PRAGMA journal_size_limit = 67108864", NULL, 0, err);
}

static void registry_freep(struct berth_registry **reg)
{
	berth_registry_close(*reg);
}

int berth_registry_open(const char *state_dir, const struct berth_registry_options *opts,
                        struct berth_registry **out, berth_error_t *err)
{
	__attribute__((cleanup(registry_freep))) struct berth_registry *reg = NULL;
	const struct berth_registry_options defaults = {0};
	pthread_mutexattr_t attr;
	int ret, rc;

	if (opts == NULL)
		opts = &defaults;
	ret = berth_mkdir_p(state_dir, 0700, err);
	if (ret < 0)
		return berth_error_wrap(err, "open registry");

	reg = xcalloc(1, sizeof(*reg));
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&reg->mutex, &attr);
	pthread_mutexattr_destroy(&attr);
	reg->path = xasprintf("%s/%s", state_dir, BERTH_REGISTRY_FILE);
	reg->events_keep = opts->events_keep ? opts->events_keep : BERTH_REGISTRY_EVENTS_KEEP;
	reg->events_max_age_ms = opts->events_max_age_ms;

	ret = create_file(state_dir, reg->path, err);
	if (ret < 0)
		return ret;
	/*
	 * The default threading mode (serialised) stays: the handle's mutex
	 * already serialises our calls, and SQLite's own costs nothing next to
	 * a sync. SQLite opens its files O_CLOEXEC.
	 */
	rc = sqlite3_open_v2(reg->path, &reg->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		return berth_registry_db_error(reg->db, NULL, rc, err, "open registry `%s`",
		                               reg->path);
	ret = configure(reg,
	                opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms
	                                          : BERTH_REGISTRY_BUSY_TIMEOUT_MS,
	                err);
	if (ret < 0)
		return ret;
	ret = berth_registry_check_application(reg->db, reg->path, err);
	if (ret < 0)
		return ret;
	ret = berth_registry_migrate(reg->db, reg->path, berth_registry_migrations,
	                             berth_registry_migrations_n, err);
	if (ret < 0)
		return ret;
	*out = steal_pointer(&reg);
	return 0;
}

void berth_registry_close(struct berth_registry *reg)
{
	if (reg == NULL)
		return;
	for (size_t i = 0; i < BERTH_STMT_COUNT; i++)
		sqlite3_finalize(reg->stmts[i]);
	/*
	 * The last connection to close checkpoints the WAL into the database
	 * and removes it; a failure leaves the WAL for the next open to recover.
	 */
	sqlite3_close_v2(reg->db);
	pthread_mutex_destroy(&reg->mutex);
	free(reg->path);
	free(reg);
}

const char *berth_registry_path(const struct berth_registry *reg)
{
	return reg->path;
}

/* Collect the rows of a check pragma; "ok" or no rows means nothing was found. */
static int check_pragma(struct berth_registry *reg, const char *sql, berth_error_t *err)
{
	cleanup_finalize sqlite3_stmt *st = NULL;
	char problems[512] = "";
	size_t used = 0;
	unsigned found = 0;
	int rc;

	rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return berth_registry_error(reg, rc, err, "check");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int cols = sqlite3_column_count(st);
		const unsigned char *first = sqlite3_column_text(st, 0);

		if (cols == 1 && first != NULL && strcmp((const char *)first, "ok") == 0)
			continue;
		/* foreign_key_check rows: table, rowid, parent, fkid. */
		for (int c = 0; c < cols && used < sizeof(problems); c++) {
			const unsigned char *v = sqlite3_column_text(st, c);
			int n = snprintf(problems + used, sizeof(problems) - used, "%s%s",
			                 c == 0 ? (found ? "; " : "") : " ",
			                 v != NULL ? (const char *)v : "null");
			used += n > 0 ? (size_t)n : 0;
		}
		found++;
	}
	if (rc != SQLITE_DONE)
		return berth_registry_error(reg, rc, err, "check");
	if (found > 0)
		return berth_error_set_plain(err, EIO, "registry `%s` failed %s: %s", reg->path,
		                             sql + strlen("PRAGMA "), problems);
	return 0;
}

int berth_registry_check(struct berth_registry *reg, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	int ret;

	ret = check_pragma(reg, "PRAGMA integrity_check", err);
	if (ret < 0)
		return ret;
	return check_pragma(reg, "PRAGMA foreign_key_check", err);
}
