/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's schema, as a list of migration steps keyed on PRAGMA
 * user_version. A fresh database gets every step; an existing one the steps
 * newer than its version. Each step runs in one transaction together with
 * the user_version update, so a crash leaves the database at a step boundary.
 * A step, once released, never changes: a new schema is a new step.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "berth/util.h"
#include "registry/registry-internal.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

/*
 * Schema version 1.
 *
 * classes: one row per container class seen in a configuration.
 *   name         the class_name
 *   config       the class's configuration as JSON, as last registered
 *   config_hash  SHA-256 (hex) of `config`, to tell a changed configuration
 *   created      ms since the epoch, first registered
 *   updated      ms since the epoch, config last changed
 *
 * instances: one row per instance ever addressed; rows are never deleted
 * (a record outlives its containers, as a Durable Object outlives its
 * isolate).
 *   id            64 hex: SHA-256 of (class, name) for named instances,
 *                 random for unique ids
 *   class         the class (must be registered)
 *   name          the name given to idFromName; NULL for a unique id
 *   state         stopped | running | healthy | stopping | stopped_with_code
 *   last_change   ms since the epoch of the last state change
 *   exit_code, exit_signal, oom, stop_reason
 *                 how the last container ended (NULL / 0 when it has not)
 *   overrides     JSON of the last start's options (envVars, entrypoint,
 *                 enableInternet, ...)
 *   labels        JSON object: the container's labels
 *   created       ms since the epoch
 *   last_activity ms since the epoch of the last request, as flushed from
 *                 the daemon's memory; 0: never
 *   Indexes: id (primary key), (class, name) unique: lookup by name;
 *   (class, id): a class's instances in id order (paging);
 *   (class, state): counting a class's running instances (max_instances).
 *
 * events: an append-only log, pruned from its old end.
 *   seq       AUTOINCREMENT: never reused, even after the newest events were
 *             pruned, so a client's "after seq N" stays meaningful
 *   time      ms since the epoch
 *   class, instance  what it is about (NULL for the daemon's own events);
 *             no foreign keys: the log must take any event cheaply
 *   type      e.g. "state", "oom"
 *   data      JSON, or NULL
 *   Indexes: seq (the rowid), (class, seq) and (instance, seq) for a
 *   class's or an instance's events in order.
 *
 * STRICT tables: a value of the wrong type is an error, not a conversion.
 */
static const char schema_v1[] =
        "CREATE TABLE classes ("
        "  name TEXT PRIMARY KEY NOT NULL,"
        "  config TEXT NOT NULL CONSTRAINT config_json CHECK (json_valid(config)),"
        "  config_hash TEXT NOT NULL,"
        "  created INTEGER NOT NULL,"
        "  updated INTEGER NOT NULL"
        ") STRICT;"
        "CREATE TABLE instances ("
        "  id TEXT PRIMARY KEY NOT NULL CONSTRAINT id_hex"
        "    CHECK (length(id) = 64 AND id NOT GLOB '*[^0-9a-f]*'),"
        "  class TEXT NOT NULL REFERENCES classes (name),"
        "  name TEXT,"
        "  state TEXT NOT NULL DEFAULT 'stopped' CONSTRAINT state_name CHECK (state IN"
        "    ('stopped', 'running', 'healthy', 'stopping', 'stopped_with_code')),"
        "  last_change INTEGER NOT NULL,"
        "  exit_code INTEGER,"
        "  exit_signal INTEGER,"
        "  oom INTEGER NOT NULL DEFAULT 0,"
        "  stop_reason TEXT,"
        "  overrides TEXT CONSTRAINT overrides_json"
        "    CHECK (overrides IS NULL OR json_valid(overrides)),"
        "  labels TEXT CONSTRAINT labels_json CHECK (labels IS NULL OR json_valid(labels)),"
        "  created INTEGER NOT NULL,"
        "  last_activity INTEGER NOT NULL DEFAULT 0,"
        "  UNIQUE (class, name)"
        ") STRICT;"
        "CREATE INDEX instances_class_id ON instances (class, id);"
        "CREATE INDEX instances_class_state ON instances (class, state);"
        "CREATE TABLE events ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  time INTEGER NOT NULL,"
        "  class TEXT,"
        "  instance TEXT,"
        "  type TEXT NOT NULL,"
        "  data TEXT CONSTRAINT data_json CHECK (data IS NULL OR json_valid(data))"
        ") STRICT;"
        "CREATE INDEX events_class ON events (class, seq);"
        "CREATE INDEX events_instance ON events (instance, seq);"
        "PRAGMA application_id = " STRINGIFY(BERTH_REGISTRY_APPLICATION_ID) ";";

const struct berth_registry_migration berth_registry_migrations[] = {
        {1, "classes, instances and events", schema_v1},
};
const size_t berth_registry_migrations_n = BERTH_ARRAY_SIZE(berth_registry_migrations);

static int read_int(sqlite3 *db, const char *path, const char *sql, int *out, berth_error_t *err)
{
	cleanup_finalize sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return berth_registry_db_error(db, NULL, rc, err, "open registry `%s`", path);
	*out = sqlite3_column_int(st, 0);
	return 0;
}

int berth_registry_check_application(sqlite3 *db, const char *path, berth_error_t *err)
{
	int app, version, tables, ret;

	ret = read_int(db, path, "PRAGMA application_id", &app, err);
	if (ret < 0)
		return ret;
	if (app == BERTH_REGISTRY_APPLICATION_ID)
		return 0;
	if (app != 0)
		return berth_error_set_plain(
		        err, EIO,
		        "open registry `%s`: the file belongs to another program "
		        "(application_id %#x)",
		        path, (unsigned)app);
	ret = read_int(db, path, "PRAGMA user_version", &version, err);
	if (ret < 0)
		return ret;
	ret = read_int(db, path, "SELECT count(*) FROM sqlite_schema", &tables, err);
	if (ret < 0)
		return ret;
	/* A new, empty file gets the schema; one with tables but no mark is not ours. */
	if (version != 0 || tables != 0)
		return berth_error_set_plain(
		        err, EIO,
		        "open registry `%s`: the file is an SQLite database of "
		        "another program (it has tables but no berth mark)",
		        path);
	return 0;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Apply one step (or nothing, when another process applied it meanwhile). */
static int apply(sqlite3 *db, const char *path, const struct berth_registry_migration *step,
                 berth_error_t *err)
{
	char set_version[64];
	int version, rc, ret;

	rc = exec(db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return berth_registry_db_error(db, NULL, rc, err,
		                               "migrate registry `%s` to schema version %d", path,
		                               step->version);
	ret = read_int(db, path, "PRAGMA user_version", &version, err);
	if (ret < 0)
		goto fail;
	if (version < step->version) {
		snprintf(set_version, sizeof(set_version), "PRAGMA user_version = %d",
		         step->version);
		rc = exec(db, step->sql);
		if (rc == SQLITE_OK)
			rc = exec(db, set_version);
		if (rc != SQLITE_OK) {
			ret = berth_registry_db_error(
			        db, NULL, rc, err,
			        "migrate registry `%s` to schema version %d (%s)", path,
			        step->version, step->what);
			goto fail;
		}
	}
	rc = exec(db, "COMMIT");
	if (rc != SQLITE_OK) {
		ret = berth_registry_db_error(db, NULL, rc, err,
		                              "migrate registry `%s` to schema version %d", path,
		                              step->version);
		goto fail;
	}
	return 0;
fail:
	if (!sqlite3_get_autocommit(db))
		exec(db, "ROLLBACK");
	return ret;
}

int berth_registry_migrate(sqlite3 *db, const char *path,
                           const struct berth_registry_migration *steps, size_t n,
                           berth_error_t *err)
{
	int latest = n > 0 ? steps[n - 1].version : 0;
	int version, ret;

	ret = read_int(db, path, "PRAGMA user_version", &version, err);
	if (ret < 0)
		return ret;
	if (version > latest)
		return berth_error_set_plain(err, EPROTO,
		                             "open registry `%s`: schema version %d is newer than "
		                             "this berth knows (%d); upgrade berth, or use another "
		                             "state directory",
		                             path, version, latest);
	for (size_t i = 0; i < n; i++) {
		if (steps[i].version <= version)
			continue;
		ret = apply(db, path, &steps[i], err);
		if (ret < 0)
			return ret;
	}
	return 0;
}
