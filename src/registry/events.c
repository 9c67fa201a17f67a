/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event log: appended by the daemon (state changes, OOM kills, ...),
 * read by /v1/events and `berth events`, pruned from its old end. seq is an
 * AUTOINCREMENT key: numbers grow and are never handed out twice, so a client
 * that saw seq N can always ask for what came after it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "registry/registry-internal.h"

#define EVENT_COLUMNS "seq, time, class, instance, type, data"

void berth_registry_event_clear(struct berth_registry_event *ev)
{
	if (ev == NULL)
		return;
	free(ev->class_name);
	free(ev->instance_id);
	free(ev->type);
	free(ev->data);
	memset(ev, 0, sizeof(*ev));
}

void berth_registry_events_free(struct berth_registry_event *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		berth_registry_event_clear(&v[i]);
	free(v);
}

/* ---- pruning ---- */

/* Delete the events up to and including seq `last`. */
static int delete_through(struct berth_registry *reg, int64_t last, uint64_t *deleted,
                          berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_stmt(reg, BERTH_STMT_EVENT_PRUNE_SEQ,
	                          "DELETE FROM events WHERE seq <= ?1", &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, last);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return berth_registry_error(reg, rc, err, "prune events");
	*deleted += (uint64_t)sqlite3_changes(reg->db);
	return 0;
}

/* One cached query returning a single integer (0 for no row or NULL). */
static int query_int(struct berth_registry *reg, enum berth_registry_stmt slot, const char *sql,
                     int64_t bind, int64_t *out, berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_stmt(reg, slot, sql, &st, err);
	if (ret < 0)
		return ret;
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, bind);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		*out = 0;
		return 0;
	}
	if (rc != SQLITE_ROW)
		return berth_registry_error(reg, rc, err, "read events");
	*out = sqlite3_column_int64(st, 0);
	return 0;
}

static int prune(struct berth_registry *reg, uint64_t keep, int64_t before_ms, uint64_t *deleted,
                 berth_error_t *err)
{
	int64_t newest, first_kept;
	int ret;

	ret = query_int(reg, BERTH_STMT_EVENT_LAST, "SELECT max(seq) FROM events", 0, &newest, err);
	if (ret < 0 || newest == 0)
		return ret;
	/*
	 * Committed seqs have no gaps (an append that rolls back also rolls
	 * back its number), so the newest `keep` events are those after
	 * newest - keep.
	 */
	if (keep > 0 && (uint64_t)newest > keep) {
		ret = delete_through(reg, newest - (int64_t)keep, deleted, err);
		if (ret < 0)
			return ret;
	}
	if (before_ms > 0) {
		/*
		 * No index on time: walk from the oldest event to the first one
		 * recent enough, which costs as many rows as get deleted.
		 */
		ret = query_int(reg, BERTH_STMT_EVENT_FIRST_SINCE,
		                "SELECT seq FROM events WHERE time >= ?1 ORDER BY seq LIMIT 1",
		                before_ms, &first_kept, err);
		if (ret < 0)
			return ret;
		ret = delete_through(reg, first_kept > 0 ? first_kept - 1 : newest, deleted, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int berth_registry_prune_auto(struct berth_registry *reg, berth_error_t *err)
{
	uint64_t deleted = 0;
	int64_t before = 0;

	if (reg->events_max_age_ms > 0)
		before = berth_registry_now_ms() - reg->events_max_age_ms;
	return prune(reg, reg->events_keep, before, &deleted, err);
}

int berth_registry_prune_events(struct berth_registry *reg, uint64_t keep, int64_t before_ms,
                                uint64_t *deleted, berth_error_t *err)
{
	uint64_t count = 0;
	int ret;

	ret = berth_registry_tx_begin(reg, err);
	if (ret < 0)
		return ret;
	ret = prune(reg, keep, before_ms, &count, err);
	if (ret < 0) {
		berth_registry_tx_rollback(reg);
		return ret;
	}
	ret = berth_registry_tx_commit(reg, err);
	if (ret < 0)
		return ret;
	if (deleted != NULL)
		*deleted = count;
	return 0;
}

/* ---- appending ---- */

static int append(struct berth_registry *reg, const char *class_name, const char *instance_id,
                  const char *type, const char *data, int64_t time_ms, int64_t *seq,
                  berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_stmt(reg, BERTH_STMT_EVENT_APPEND,
	                          "INSERT INTO events (time, class, instance, type, data) "
	                          "VALUES (?1, ?2, ?3, ?4, ?5)",
	                          &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, time_ms > 0 ? time_ms : berth_registry_now_ms());
	berth_registry_bind_text(st, 2, class_name);
	berth_registry_bind_text(st, 3, instance_id);
	sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
	berth_registry_bind_text(st, 5, data);
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_CHECK)
		return berth_error_set_plain(err, EINVAL,
		                             "append event `%s`: data is not valid JSON", type);
	if (rc != SQLITE_DONE)
		return berth_registry_error(reg, rc, err, "append event `%s`", type);
	*seq = sqlite3_last_insert_rowid(reg->db);
	/* Pruning a few at a time keeps every append cheap; a bulk prune would stall one. */
	if (++reg->appends_since_prune >= BERTH_REGISTRY_PRUNE_EVERY) {
		reg->appends_since_prune = 0;
		return berth_registry_prune_auto(reg, err);
	}
	return 0;
}

int berth_registry_append_event_at(struct berth_registry *reg, const char *class_name,
                                   const char *instance_id, const char *type, const char *data_json,
                                   int64_t time_ms, int64_t *seq, berth_error_t *err)
{
	int64_t got = 0;
	int ret;

	if (type == NULL || *type == '\0')
		return berth_error_set_plain(err, EINVAL, "append event: no type");
	ret = berth_registry_tx_begin(reg, err);
	if (ret < 0)
		return ret;
	ret = append(reg, class_name, instance_id, type, data_json, time_ms, &got, err);
	if (ret < 0) {
		berth_registry_tx_rollback(reg);
		return ret;
	}
	ret = berth_registry_tx_commit(reg, err);
	if (ret < 0)
		return ret;
	if (seq != NULL)
		*seq = got;
	return 0;
}

int berth_registry_append_event(struct berth_registry *reg, const char *class_name,
                                const char *instance_id, const char *type, const char *data_json,
                                int64_t *seq, berth_error_t *err)
{
	return berth_registry_append_event_at(reg, class_name, instance_id, type, data_json, 0, seq,
	                                      err);
}

/* ---- reading ---- */

int berth_registry_list_events(struct berth_registry *reg,
                               const struct berth_registry_event_filter *filter,
                               struct berth_registry_event **out, size_t *n, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	cleanup_stmt sqlite3_stmt *st = NULL;
	const struct berth_registry_event_filter all = {0};
	struct berth_registry_event *v = NULL;
	size_t len = 0, cap = 0;
	int ret, rc;

	if (filter == NULL)
		filter = &all;

	/* An instance's index narrows the most; a class filter then checks each row. */
	if (filter->instance_id != NULL)
		ret = berth_registry_stmt(reg, BERTH_STMT_EVENT_LIST_INSTANCE,
		                          "SELECT " EVENT_COLUMNS " FROM events "
		                          "WHERE instance = ?4 AND seq > ?1 "
		                          "AND (?3 IS NULL OR class = ?3) ORDER BY seq LIMIT ?2",
		                          &st, err);
	else if (filter->class_name != NULL)
		ret = berth_registry_stmt(reg, BERTH_STMT_EVENT_LIST_CLASS,
		                          "SELECT " EVENT_COLUMNS " FROM events "
		                          "WHERE class = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2",
		                          &st, err);
	else
		ret = berth_registry_stmt(reg, BERTH_STMT_EVENT_LIST,
		                          "SELECT " EVENT_COLUMNS " FROM events "
		                          "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
		                          &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, filter->after_seq);
	sqlite3_bind_int64(st, 2, filter->limit > 0 ? (int64_t)filter->limit : -1);
	if (filter->class_name != NULL)
		sqlite3_bind_text(st, 3, filter->class_name, -1, SQLITE_STATIC);
	if (filter->instance_id != NULL)
		sqlite3_bind_text(st, 4, filter->instance_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct berth_registry_event *ev;

		if (len == cap) {
			cap = cap ? 2 * cap : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		ev = &v[len++];
		ev->seq = sqlite3_column_int64(st, 0);
		ev->time_ms = sqlite3_column_int64(st, 1);
		ev->class_name = berth_registry_column_strdup(st, 2);
		ev->instance_id = berth_registry_column_strdup(st, 3);
		ev->type = berth_registry_column_strdup(st, 4);
		ev->data = berth_registry_column_strdup(st, 5);
	}
	if (rc != SQLITE_DONE) {
		berth_registry_events_free(v, len);
		return berth_registry_error(reg, rc, err, "list events");
	}
	*out = v;
	*n = len;
	return 0;
}

int berth_registry_last_event_seq(struct berth_registry *reg, int64_t *seq, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);

	/* sqlite_sequence remembers the last number even when every event was pruned. */
	return query_int(reg, BERTH_STMT_EVENT_SEQUENCE,
	                 "SELECT seq FROM sqlite_sequence WHERE name = 'events'", 0, seq, err);
}
