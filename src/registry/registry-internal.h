/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the registry's files share: the handle, its statement cache, the
 * transaction helpers and the mapping of SQLite errors to messages.
 */
#ifndef BERTH_REGISTRY_INTERNAL_H
#define BERTH_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "registry/registry.h"

#define BERTH_REGISTRY_FILE      "registry.db"
#define BERTH_REGISTRY_LOCK_FILE "berthd.lock"

/* PRAGMA application_id of a berth registry: 0x62727468, "brth" (decimal for the SQL). */
#define BERTH_REGISTRY_APPLICATION_ID 1651668072

#define BERTH_REGISTRY_EVENTS_KEEP     100000u
#define BERTH_REGISTRY_BUSY_TIMEOUT_MS 5000
/* Appends between two automatic prunings of the event log. */
#define BERTH_REGISTRY_PRUNE_EVERY 1024u

/*
 * The cached statements, one slot each. A slot is prepared on first use with
 * the SQL its (single) call site passes, kept for the handle's lifetime and
 * finalised by berth_registry_close().
 */
enum berth_registry_stmt {
	BERTH_STMT_BEGIN,
	BERTH_STMT_COMMIT,
	BERTH_STMT_ROLLBACK,
	BERTH_STMT_SAVEPOINT,
	BERTH_STMT_RELEASE,
	BERTH_STMT_ROLLBACK_TO,
	BERTH_STMT_CLASS_HASH,
	BERTH_STMT_CLASS_INSERT,
	BERTH_STMT_CLASS_UPDATE,
	BERTH_STMT_CLASS_GET,
	BERTH_STMT_CLASS_LIST,
	BERTH_STMT_INST_GET,
	BERTH_STMT_INST_GET_BY_NAME,
	BERTH_STMT_INST_INSERT,
	BERTH_STMT_INST_STATE,
	BERTH_STMT_INST_SET_STATE,
	BERTH_STMT_INST_SET_OVERRIDES,
	BERTH_STMT_INST_DESTROY,
	BERTH_STMT_INST_LIST,
	BERTH_STMT_INST_LIST_CLASS,
	BERTH_STMT_INST_LIST_LIVE,
	BERTH_STMT_INST_COUNT,
	BERTH_STMT_INST_ACTIVITY,
	BERTH_STMT_EVENT_APPEND,
	BERTH_STMT_EVENT_LIST,
	BERTH_STMT_EVENT_LIST_CLASS,
	BERTH_STMT_EVENT_LIST_INSTANCE,
	BERTH_STMT_EVENT_LAST,
	BERTH_STMT_EVENT_PRUNE_SEQ,
	BERTH_STMT_EVENT_FIRST_SINCE,
	BERTH_STMT_EVENT_SEQUENCE,
	BERTH_STMT_COUNT,
};

struct berth_registry {
	sqlite3 *db;
	char *path;
	/*
	 * Recursive, so that calls made inside berth_registry_transact() on the
	 * thread that holds the transaction go through while other threads wait.
	 */
	pthread_mutex_t mutex;
	int tx_depth; /* 0: no transaction; 1: BEGIN; more: nested SAVEPOINTs */
	sqlite3_stmt *stmts[BERTH_STMT_COUNT];
	uint64_t events_keep;
	int64_t events_max_age_ms;
	unsigned appends_since_prune;
};

/* ---- registry.c ---- */

/* The cached statement `id`, prepared from `sql` on first use. */
int berth_registry_stmt(struct berth_registry *reg, enum berth_registry_stmt id, const char *sql,
                        sqlite3_stmt **out, berth_error_t *err);

/* Reset a cached statement and drop its bindings (cleanup_stmt). */
void berth_registry_stmt_resetp(sqlite3_stmt **st);
/* Finalise a statement of one's own (cleanup_finalize). */
void berth_registry_finalizep(sqlite3_stmt **st);
#define cleanup_stmt     __attribute__((cleanup(berth_registry_stmt_resetp)))
#define cleanup_finalize __attribute__((cleanup(berth_registry_finalizep)))

/*
 * Fill `err` from the SQLite result `rc` of `db`: "CONTEXT: registry
 * `PATH`: SQLite's message" ("CONTEXT: message" when `path` is NULL), with
 * the system error where SQLite has one, and an errno that says what kind of
 * failure it was. Returns -errno.
 */
int berth_registry_db_error(sqlite3 *db, const char *path, int rc, berth_error_t *err,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define berth_registry_error(reg, rc, err, ...) \
	berth_registry_db_error((reg)->db, (reg)->path, (rc), (err), __VA_ARGS__)

/* Serialise a call on the handle; the guard unlocks on every exit path. */
struct berth_registry *berth_registry_lock(struct berth_registry *reg);
void berth_registry_unlockp(struct berth_registry **reg);
#define REGISTRY_LOCKED(reg)                            \
	__attribute__((cleanup(berth_registry_unlockp), \
	               unused)) struct berth_registry *registry_guard_ = berth_registry_lock(reg)

/*
 * A write transaction (BEGIN IMMEDIATE, so that a writer never has to upgrade
 * a read lock, which SQLite would refuse with SQLITE_BUSY at once), or a
 * savepoint when one is open already. begin takes the handle's mutex;
 * commit and rollback give it back. Statements must be reset before commit.
 */
int berth_registry_tx_begin(struct berth_registry *reg, berth_error_t *err);
int berth_registry_tx_commit(struct berth_registry *reg, berth_error_t *err);
void berth_registry_tx_rollback(struct berth_registry *reg);

/* Wall-clock milliseconds since the epoch. */
int64_t berth_registry_now_ms(void);

/* Bind a string, or NULL for a NULL pointer; the string must outlive the step. */
int berth_registry_bind_text(sqlite3_stmt *st, int i, const char *s);
/* A copy of a text column, or NULL for SQL NULL. */
char *berth_registry_column_strdup(sqlite3_stmt *st, int i);

/* ---- id.c ---- */

/* SHA-256 of `len` bytes, as 64 lowercase hex characters. */
void berth_registry_sha256_hex(const char *data, size_t len, char out[BERTH_ID_LEN + 1]);

/* ---- migrations.c ---- */

struct berth_registry_migration {
	int version; /* 1, 2, ...: PRAGMA user_version once applied */
	const char *what;
	const char *sql;
};

/* The schema's steps; the last one's version is what this code writes. */
extern const struct berth_registry_migration berth_registry_migrations[];
extern const size_t berth_registry_migrations_n;

/*
 * Apply the steps of `steps` newer than the database's user_version, each in
 * one transaction that also sets user_version. Refuses (-EPROTO) a database
 * whose version is newer than the last step.
 */
int berth_registry_migrate(sqlite3 *db, const char *path,
                           const struct berth_registry_migration *steps, size_t n,
                           berth_error_t *err);

/*
 * Refuse a file that is an SQLite database of some other program: one with
 * another application_id, or without one but holding tables.
 */
int berth_registry_check_application(sqlite3 *db, const char *path, berth_error_t *err);

/* ---- events.c ---- */

/* Prune with the bounds given at open (called by append every so often). */
int berth_registry_prune_auto(struct berth_registry *reg, berth_error_t *err);

#endif
