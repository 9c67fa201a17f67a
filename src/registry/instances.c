/* SPDX-License-Identifier: Apache-2.0 */
/* Instance records: lookup, create-or-get, state, overrides, listing, activity. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "registry/registry-internal.h"

#define INSTANCE_COLUMNS                                                                  \
	"id, class, name, state, last_change, exit_code, exit_signal, oom, stop_reason, " \
	"overrides, labels, created, last_activity"

/* Every state, so that a filter of 0 binds them all. */
#define ALL_STATES (BERTH_STATE_BIT(BERTH_STATE_COUNT) - 1)
#define STOPPED_STATES \
	(BERTH_STATE_BIT(BERTH_STATE_STOPPED) | BERTH_STATE_BIT(BERTH_STATE_STOPPED_WITH_CODE))

void berth_registry_instance_clear(struct berth_registry_instance *inst)
{
	if (inst == NULL)
		return;
	free(inst->class_name);
	free(inst->name);
	free(inst->stop_reason);
	free(inst->overrides);
	free(inst->labels);
	memset(inst, 0, sizeof(*inst));
}

void berth_registry_instances_free(struct berth_registry_instance *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		berth_registry_instance_clear(&v[i]);
	free(v);
}

static int invalid_id(const char *what, const char *id, berth_error_t *err)
{
	return berth_error_set_plain(err, EINVAL, "%s: `%s` is not an instance id (64 hex digits)",
	                             what, id != NULL ? id : "(null)");
}

/* Fill `out` from a row of INSTANCE_COLUMNS. */
static int read_instance(struct berth_registry *reg, sqlite3_stmt *st,
                         struct berth_registry_instance *out, berth_error_t *err)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *state = (const char *)sqlite3_column_text(st, 3);
	enum berth_state s;

	/* The schema's CHECKs make both impossible short of a damaged file. */
	if (!berth_id_valid(id) || state == NULL || !berth_state_parse(state, &s))
		return berth_error_set_plain(err, EIO, "registry `%s`: instance `%s` has a bad %s",
		                             reg->path, id != NULL ? id : "(null)",
		                             berth_id_valid(id) ? "state" : "id");
	memset(out, 0, sizeof(*out));
	memcpy(out->id, id, BERTH_ID_LEN + 1);
	out->class_name = berth_registry_column_strdup(st, 1);
	out->name = berth_registry_column_strdup(st, 2);
	out->state = s;
	out->last_change_ms = sqlite3_column_int64(st, 4);
	out->has_exit_code = sqlite3_column_type(st, 5) != SQLITE_NULL;
	out->exit_code = sqlite3_column_int(st, 5);
	out->exit_signal = sqlite3_column_int(st, 6);
	out->oom = sqlite3_column_int(st, 7) != 0;
	out->stop_reason = berth_registry_column_strdup(st, 8);
	out->overrides = berth_registry_column_strdup(st, 9);
	out->labels = berth_registry_column_strdup(st, 10);
	out->created_ms = sqlite3_column_int64(st, 11);
	out->last_activity_ms = sqlite3_column_int64(st, 12);
	return 0;
}

/* Step a lookup of one instance; -ENOENT (err untouched) when there is no row. */
static int step_one(struct berth_registry *reg, sqlite3_stmt *st,
                    struct berth_registry_instance *out, berth_error_t *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return berth_registry_error(reg, rc, err, "get instance");
	return read_instance(reg, st, out, err);
}

static int get_locked(struct berth_registry *reg, const char *id,
                      struct berth_registry_instance *out, berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret;

	ret = berth_registry_stmt(reg, BERTH_STMT_INST_GET,
	                          "SELECT " INSTANCE_COLUMNS " FROM instances WHERE id = ?1", &st,
	                          err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	return step_one(reg, st, out, err);
}

int berth_registry_get(struct berth_registry *reg, const char *id,
                       struct berth_registry_instance *out, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	int ret;

	memset(out, 0, sizeof(*out));
	if (!berth_id_valid(id))
		return invalid_id("get instance", id, err);
	ret = get_locked(reg, id, out, err);
	if (ret == -ENOENT)
		return berth_error_set_plain(err, ENOENT, "no instance `%s`", id);
	return ret;
}

int berth_registry_get_by_name(struct berth_registry *reg, const char *class_name, const char *name,
                               struct berth_registry_instance *out, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = berth_registry_stmt(reg, BERTH_STMT_INST_GET_BY_NAME,
	                          "SELECT " INSTANCE_COLUMNS
	                          " FROM instances WHERE class = ?1 AND name = ?2",
	                          &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(st, 1, class_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	ret = step_one(reg, st, out, err);
	if (ret == -ENOENT)
		return berth_error_set_plain(err, ENOENT, "no instance `%s/%s`", class_name, name);
	return ret;
}

/* The record found for `id` must be the one asked for (another class: a unique id reused). */
static int check_identity(const struct berth_registry_instance *inst, const char *class_name,
                          const char *name, berth_error_t *err)
{
	if (strcmp(inst->class_name, class_name) == 0 &&
	    (name == NULL || (inst->name != NULL && strcmp(inst->name, name) == 0)))
		return 0;
	return berth_error_set_plain(err, EEXIST,
	                             "instance id `%s` belongs to class `%s`, not `%s`", inst->id,
	                             inst->class_name, class_name);
}

static int insert(struct berth_registry *reg, const char *class_name, const char *name,
                  const char *id, bool *created, berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	/*
	 * DO NOTHING covers a creator that came first, in another process too.
	 * It applies to uniqueness only: a class that is not registered still
	 * fails, as a FOREIGN KEY constraint.
	 */
	ret = berth_registry_stmt(reg, BERTH_STMT_INST_INSERT,
	                          "INSERT INTO instances (id, class, name, last_change, created) "
	                          "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING",
	                          &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, class_name, -1, SQLITE_STATIC);
	berth_registry_bind_text(st, 3, name);
	sqlite3_bind_int64(st, 4, berth_registry_now_ms());
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		return berth_error_set_plain(err, ENOENT, "class `%s` is not registered",
		                             class_name);
	if (rc != SQLITE_DONE)
		return berth_registry_error(reg, rc, err, "insert record");
	*created = sqlite3_changes(reg->db) > 0;
	return 0;
}

/*
 * Create-or-get. The common case, an existing record, is a plain read
 * (find() below); only a missing one takes the write lock, and then the
 * INSERT ... DO NOTHING and the read inside the same transaction settle a
 * race with another creator, in this process or another.
 */
static int ensure(struct berth_registry *reg, const char *class_name, const char *name,
                  const char *id, struct berth_registry_instance *out, bool *created,
                  berth_error_t *err)
{
	bool made = false;
	int ret;

	ret = berth_registry_tx_begin(reg, err);
	if (ret < 0)
		return ret;
	ret = insert(reg, class_name, name, id, &made, err);
	if (ret == 0) {
		ret = get_locked(reg, id, out, err);
		if (ret == -ENOENT)
			ret = berth_error_set_plain(err, EIO, "the new record vanished");
	}
	if (ret == 0) {
		ret = check_identity(out, class_name, name, err);
		if (ret < 0)
			berth_registry_instance_clear(out);
	}
	if (ret < 0) {
		berth_registry_tx_rollback(reg);
		return ret;
	}
	ret = berth_registry_tx_commit(reg, err);
	if (ret < 0) {
		berth_registry_instance_clear(out);
		return ret;
	}
	if (created != NULL)
		*created = made;
	return 0;
}

/* The fast path of ensure(): 1 when the record exists (and is the one asked for). */
static int find(struct berth_registry *reg, const char *class_name, const char *name,
                const char *id, struct berth_registry_instance *out, bool *created,
                berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	int ret = get_locked(reg, id, out, err);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	ret = check_identity(out, class_name, name, err);
	if (ret < 0) {
		berth_registry_instance_clear(out);
		return ret;
	}
	if (created != NULL)
		*created = false;
	return 1;
}

int berth_registry_get_or_create(struct berth_registry *reg, const char *class_name,
                                 const char *name, struct berth_registry_instance *out,
                                 bool *created, berth_error_t *err)
{
	char id[BERTH_ID_LEN + 1];
	int ret;

	memset(out, 0, sizeof(*out));
	if (class_name == NULL || *class_name == '\0' || name == NULL)
		return berth_error_set_plain(err, EINVAL, "create instance: no class or no name");
	berth_id_from_name(class_name, name, id);
	ret = find(reg, class_name, name, id, out, created, err);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	ret = ensure(reg, class_name, name, id, out, created, err);
	if (ret < 0)
		return berth_error_wrap(err, "create instance `%s/%s`", class_name, name);
	return 0;
}

int berth_registry_get_or_create_id(struct berth_registry *reg, const char *class_name,
                                    const char *id, struct berth_registry_instance *out,
                                    bool *created, berth_error_t *err)
{
	int ret;

	memset(out, 0, sizeof(*out));
	if (class_name == NULL || *class_name == '\0')
		return berth_error_set_plain(err, EINVAL, "create instance: no class");
	if (!berth_id_valid(id))
		return invalid_id("create instance", id, err);
	ret = find(reg, class_name, NULL, id, out, created, err);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	ret = ensure(reg, class_name, NULL, id, out, created, err);
	if (ret < 0)
		return berth_error_wrap(err, "create instance `%s`", id);
	return 0;
}

/* ---- changes ---- */

/* After an UPDATE of `id` changed nothing: was it missing, or in another state? */
static int explain_unchanged(struct berth_registry *reg, const char *id, int expected,
                             enum berth_state *actual, berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	enum berth_state s;
	const char *name;
	int ret, rc;

	ret = berth_registry_stmt(reg, BERTH_STMT_INST_STATE,
	                          "SELECT state FROM instances WHERE id = ?1", &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return berth_error_set_plain(err, ENOENT, "no instance `%s`", id);
	if (rc != SQLITE_ROW)
		return berth_registry_error(reg, rc, err, "get state of instance `%s`", id);
	name = (const char *)sqlite3_column_text(st, 0);
	if (name == NULL || !berth_state_parse(name, &s))
		return berth_error_set_plain(
		        err, EIO, "registry `%s`: instance `%s` has a bad state", reg->path, id);
	if (actual != NULL)
		*actual = s;
	return berth_error_set_plain(err, ESTALE, "instance `%s` is %s, not %s", id,
	                             berth_state_name(s),
	                             berth_state_name((enum berth_state)expected));
}

static int set_state(struct berth_registry *reg, const char *id, int expected,
                     const struct berth_registry_state_change *c, enum berth_state *actual,
                     berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_stmt(reg, BERTH_STMT_INST_SET_STATE,
	                          "UPDATE instances SET state = ?2, last_change = ?3, "
	                          "exit_code = ?4, exit_signal = ?5, oom = ?6, stop_reason = ?7 "
	                          "WHERE id = ?1 AND (?8 IS NULL OR state = ?8)",
	                          &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, berth_state_name(c->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, c->time_ms != 0 ? c->time_ms : berth_registry_now_ms());
	if (c->has_exit_code)
		sqlite3_bind_int(st, 4, c->exit_code);
	if (c->exit_signal != 0)
		sqlite3_bind_int(st, 5, c->exit_signal);
	sqlite3_bind_int(st, 6, c->oom);
	berth_registry_bind_text(st, 7, c->stop_reason);
	if (expected != BERTH_STATE_ANY)
		sqlite3_bind_text(st, 8, berth_state_name((enum berth_state)expected), -1,
		                  SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return berth_registry_error(reg, rc, err, "set state of instance `%s`", id);
	if (sqlite3_changes(reg->db) == 0)
		return explain_unchanged(reg, id, expected, actual, err);
	return 0;
}

int berth_registry_set_state(struct berth_registry *reg, const char *id, int expected,
                             const struct berth_registry_state_change *change,
                             enum berth_state *actual, berth_error_t *err)
{
	int ret;

	if (!berth_id_valid(id))
		return invalid_id("set state", id, err);
	if ((unsigned)change->state >= BERTH_STATE_COUNT ||
	    (expected != BERTH_STATE_ANY && (unsigned)expected >= BERTH_STATE_COUNT))
		return berth_error_set_plain(err, EINVAL,
		                             "set state of instance `%s`: no such state", id);
	ret = berth_registry_tx_begin(reg, err);
	if (ret < 0)
		return ret;
	ret = set_state(reg, id, expected, change, actual, err);
	if (ret < 0) {
		berth_registry_tx_rollback(reg);
		return ret;
	}
	return berth_registry_tx_commit(reg, err);
}

/*
 * One UPDATE of instance ?1 in its own transaction: `texts` bind ?2, ?3, ...
 * and a non-zero `time_ms` the parameter after them.
 */
static int update_one(struct berth_registry *reg, enum berth_registry_stmt slot, const char *sql,
                      const char *id, const char *what, const char *const *texts, size_t ntexts,
                      int64_t time_ms, berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_tx_begin(reg, err);
	if (ret < 0)
		return ret;
	ret = berth_registry_stmt(reg, slot, sql, &st, err);
	if (ret == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		for (size_t i = 0; i < ntexts; i++)
			berth_registry_bind_text(st, 2 + (int)i, texts[i]);
		if (time_ms != 0)
			sqlite3_bind_int64(st, 2 + (int)ntexts, time_ms);
		rc = sqlite3_step(st);
		if (rc == SQLITE_CONSTRAINT_CHECK)
			ret = berth_error_set_plain(
			        err, EINVAL, "%s of instance `%s`: not valid JSON", what, id);
		else if (rc != SQLITE_DONE)
			ret = berth_registry_error(reg, rc, err, "%s of instance `%s`", what, id);
		else if (sqlite3_changes(reg->db) == 0)
			ret = berth_error_set_plain(err, ENOENT, "no instance `%s`", id);
	}
	berth_registry_stmt_resetp(&st);
	if (ret < 0) {
		berth_registry_tx_rollback(reg);
		return ret;
	}
	return berth_registry_tx_commit(reg, err);
}

int berth_registry_set_overrides(struct berth_registry *reg, const char *id,
                                 const char *overrides_json, const char *labels_json,
                                 berth_error_t *err)
{
	const char *texts[] = {overrides_json, labels_json};

	if (!berth_id_valid(id))
		return invalid_id("set overrides", id, err);
	return update_one(reg, BERTH_STMT_INST_SET_OVERRIDES,
	                  "UPDATE instances SET overrides = ?2, labels = ?3 WHERE id = ?1", id,
	                  "set overrides", texts, BERTH_ARRAY_SIZE(texts), 0, err);
}

int berth_registry_destroy(struct berth_registry *reg, const char *id, berth_error_t *err)
{
	if (!berth_id_valid(id))
		return invalid_id("destroy instance", id, err);
	return update_one(reg, BERTH_STMT_INST_DESTROY,
	                  "UPDATE instances SET state = 'stopped', last_change = ?2, "
	                  "exit_code = NULL, exit_signal = NULL, oom = 0, stop_reason = NULL, "
	                  "overrides = NULL, labels = NULL, last_activity = 0 WHERE id = ?1",
	                  id, "destroy", NULL, 0, berth_registry_now_ms(), err);
}

/* ---- listing and counting ---- */

/* Bind the state names of `states` (0: all) to parameters first..first+4; NULL never matches. */
static void bind_states(sqlite3_stmt *st, int first, unsigned states)
{
	if (states == 0)
		states = ALL_STATES;
	for (int s = 0; s < BERTH_STATE_COUNT; s++)
		if (states & BERTH_STATE_BIT(s))
			sqlite3_bind_text(st, first + s, berth_state_name((enum berth_state)s), -1,
			                  SQLITE_STATIC);
}

int berth_registry_foreach(struct berth_registry *reg, const struct berth_registry_filter *filter,
                           berth_registry_instance_fn fn, void *data, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	cleanup_stmt sqlite3_stmt *st = NULL;
	const struct berth_registry_filter all = {0};
	int ret, rc;

	if (filter == NULL)
		filter = &all;
	/*
	 * The class index (class, id) serves both a class filter and the
	 * order. Without one, a listing of live states only (berthd's start-up
	 * looks for the running instances; `berth ps`) goes through the index
	 * (class, state) for every class and sorts the few it finds: walking
	 * the ids would read every record, 100,000 sleeping ones through
	 * SQLite's page cache. Said, not left to the planner, which cannot know
	 * that most records sleep. Any other listing walks the ids in order and
	 * can stop at its limit.
	 */
	if (filter->class_name != NULL)
		ret = berth_registry_stmt(
		        reg, BERTH_STMT_INST_LIST_CLASS,
		        "SELECT " INSTANCE_COLUMNS " FROM instances "
		        "WHERE class = ?8 AND id > ?1 AND state IN (?2, ?3, ?4, ?5, ?6) "
		        "ORDER BY id LIMIT ?7",
		        &st, err);
	else if (filter->states != 0 && (filter->states & STOPPED_STATES) == 0)
		ret = berth_registry_stmt(reg, BERTH_STMT_INST_LIST_LIVE,
		                          "SELECT " INSTANCE_COLUMNS
		                          " FROM instances INDEXED BY instances_class_state "
		                          "WHERE class IN (SELECT name FROM classes) AND state IN "
		                          "(?2, ?3, ?4, ?5, ?6) "
		                          "AND id > ?1 ORDER BY id LIMIT ?7",
		                          &st, err);
	else
		ret = berth_registry_stmt(reg, BERTH_STMT_INST_LIST,
		                          "SELECT " INSTANCE_COLUMNS " FROM instances "
		                          "WHERE id > ?1 AND state IN (?2, ?3, ?4, ?5, ?6) "
		                          "ORDER BY id LIMIT ?7",
		                          &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(st, 1, filter->after_id != NULL ? filter->after_id : "", -1,
	                  SQLITE_STATIC);
	bind_states(st, 2, filter->states);
	sqlite3_bind_int64(st, 7, filter->limit > 0 ? (int64_t)filter->limit : -1);
	if (filter->class_name != NULL)
		sqlite3_bind_text(st, 8, filter->class_name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct berth_registry_instance inst;

		ret = read_instance(reg, st, &inst, err);
		if (ret < 0)
			return ret;
		ret = fn(&inst, data);
		berth_registry_instance_clear(&inst);
		if (ret != 0)
			return 0;
	}
	if (rc != SQLITE_DONE)
		return berth_registry_error(reg, rc, err, "list instances");
	return 0;
}

struct collect {
	struct berth_registry_instance *v;
	size_t len, cap;
};

static int collect_one(struct berth_registry_instance *inst, void *data)
{
	struct collect *c = data;

	if (c->len == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	/* Take the record over, strings and all; foreach then frees nothing. */
	c->v[c->len++] = *inst;
	memset(inst, 0, sizeof(*inst));
	return 0;
}

int berth_registry_list(struct berth_registry *reg, const struct berth_registry_filter *filter,
                        struct berth_registry_instance **out, size_t *n, berth_error_t *err)
{
	struct collect c = {0};
	int ret;

	ret = berth_registry_foreach(reg, filter, collect_one, &c, err);
	if (ret < 0) {
		berth_registry_instances_free(c.v, c.len);
		return ret;
	}
	*out = c.v;
	*n = c.len;
	return 0;
}

int berth_registry_count(struct berth_registry *reg, const char *class_name, unsigned states,
                         uint64_t *count, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_stmt(reg, BERTH_STMT_INST_COUNT,
	                          "SELECT count(*) FROM instances "
	                          "WHERE class = ?1 AND state IN (?2, ?3, ?4, ?5, ?6)",
	                          &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(st, 1, class_name, -1, SQLITE_STATIC);
	bind_states(st, 2, states);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return berth_registry_error(reg, rc, err, "count instances of class `%s`",
		                            class_name);
	*count = (uint64_t)sqlite3_column_int64(st, 0);
	return 0;
}

/* ---- activity ---- */

static int flush_activity(struct berth_registry *reg, const struct berth_registry_activity *items,
                          size_t n, size_t *updated, berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_stmt(reg, BERTH_STMT_INST_ACTIVITY,
	                          "UPDATE instances SET last_activity = ?2 "
	                          "WHERE id = ?1 AND last_activity < ?2",
	                          &st, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_text(st, 1, items[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, items[i].last_activity_ms);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			return berth_registry_error(reg, rc, err, "flush activity of instance `%s`",
			                            items[i].id);
		*updated += (size_t)sqlite3_changes(reg->db);
		sqlite3_reset(st);
	}
	return 0;
}

int berth_registry_flush_activity(struct berth_registry *reg,
                                  const struct berth_registry_activity *items, size_t n,
                                  size_t *updated, berth_error_t *err)
{
	size_t count = 0;
	int ret;

	if (n == 0) {
		if (updated != NULL)
			*updated = 0;
		return 0;
	}
	ret = berth_registry_tx_begin(reg, err);
	if (ret < 0)
		return ret;
	ret = flush_activity(reg, items, n, &count, err);
	if (ret < 0) {
		berth_registry_tx_rollback(reg);
		return ret;
	}
	ret = berth_registry_tx_commit(reg, err);
	if (ret < 0)
		return ret;
	if (updated != NULL)
		*updated = count;
	return 0;
}
