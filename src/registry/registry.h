/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry: berthd's durable state in one SQLite database,
 * STATE_DIR/registry.db. It holds the classes (the configuration each was
 * last started with), one record per instance (Durable-Object style: the same
 * class and name always give the same id and the same record, which outlives
 * every container started for it), and an event log.
 *
 * Every call is synchronous and, unless it runs inside
 * berth_registry_transact(), one transaction of its own: when a call that
 * writes returns 0, what it wrote is on disk (see registry.c for the
 * synchronous setting and why). Calls block on disk I/O, so the daemon makes
 * them from worker threads, never from its event loop. A handle may be shared
 * by threads; calls on one handle are serialised.
 *
 * Activity (the time an instance last handled a request) changes on every
 * request; the daemon keeps it in memory and writes it in batches with
 * berth_registry_flush_activity().
 *
 * Errors: 0 or a negative errno, with `err` filled with a message that names
 * the registry file or the object. Distinct codes a caller acts on:
 *   -ENOENT  no such instance or class
 *   -ESTALE  a compare-and-set found another state than expected
 *   -EEXIST  an id that belongs to another class
 *   -EINVAL  invalid arguments (a malformed id, invalid JSON)
 *   -EBUSY   the state directory or the database is held by another process
 *   -EIO     the database file is corrupt or not a berth registry
 */
#ifndef BERTH_REGISTRY_H
#define BERTH_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth/error.h"
#include "instance/state.h"

/* ---- Instance ids ---------------------------------------------------------------------------- */

/* An instance id is 64 lowercase hexadecimal characters (256 bits). */
#define BERTH_ID_LEN 64

/*
 * The id of instance `name` of class `class_name` (idFromName): SHA-256 over
 * a domain-separated, length-prefixed encoding of both, so that it is the
 * same on every host and after every restart, and so that no two (class,
 * name) pairs share an encoding ("a"/"bc" and "ab"/"c" differ). The
 * encoding is described in id.c and must never change.
 */
void berth_id_from_name(const char *class_name, const char *name, char out[BERTH_ID_LEN + 1]);

/* A new random id (newUniqueId), from getrandom(). */
int berth_id_unique(char out[BERTH_ID_LEN + 1], berth_error_t *err);

/* Whether `s` is a well-formed id: exactly 64 lowercase hex characters. */
bool berth_id_valid(const char *s);

/* ---- The state directory lock ---------------------------------------------------------------- */

/*
 * Create `state_dir` (0700) when missing and take an exclusive flock on
 * STATE_DIR/berthd.lock, writing our pid into it. Fails with -EBUSY and a
 * message naming the directory and the holder's pid when another process
 * holds it. On success *lock_fd is the lock's descriptor (O_CLOEXEC, so no
 * container inherits it); the lock lasts until it is closed.
 */
int berth_registry_lock_state_dir(const char *state_dir, int *lock_fd, berth_error_t *err);

/* ---- Opening --------------------------------------------------------------------------------- */

struct berth_registry;

struct berth_registry_options {
	/* Events kept by the automatic pruning: at most this many (0: 100000). */
	uint64_t events_keep;
	/* ... and none older than this (0: no age bound). */
	int64_t events_max_age_ms;
	/* How long a call waits for another connection's write lock (0: 5000). */
	int busy_timeout_ms;
};

/*
 * Open (creating when missing) STATE_DIR/registry.db, bring its schema up to
 * date, and return a handle. `opts` may be NULL for the defaults. Refused
 * with a message naming the file: a file that is not an SQLite database or
 * is corrupt (-EIO), an SQLite database of another application (-EIO), a
 * schema newer than this code (-EPROTO). Open reads the file's header and
 * schema only, whatever the number of records. The daemon takes
 * berth_registry_lock_state_dir() first; open itself does not, so that tests
 * and offline tools can read a registry.
 */
int berth_registry_open(const char *state_dir, const struct berth_registry_options *opts,
                        struct berth_registry **out, berth_error_t *err);

/* Finalise every statement and close the database. NULL is fine. */
void berth_registry_close(struct berth_registry *reg);

/* The database file's path. */
const char *berth_registry_path(const struct berth_registry *reg);

/*
 * Run `fn` inside one transaction: it is committed when `fn` returns 0 and
 * rolled back when it returns a negative errno (which is returned; `fn`
 * fills `err`). Registry calls made by `fn` on `reg` join the transaction
 * (a failed call undoes only its own changes), so that, e.g., a state change
 * and its event are written together, or many records with one sync. Other
 * threads' calls on `reg` wait until it ends. `fn` must not close `reg`.
 */
typedef int (*berth_registry_tx_fn)(struct berth_registry *reg, void *data, berth_error_t *err);
int berth_registry_transact(struct berth_registry *reg, berth_registry_tx_fn fn, void *data,
                            berth_error_t *err);

/*
 * PRAGMA integrity_check and foreign_key_check over the whole file: 0 when
 * both find nothing, -EIO with the first problem otherwise. Reads every
 * page: for `berthd --check` and tests, not for every start.
 */
int berth_registry_check(struct berth_registry *reg, berth_error_t *err);

/* ---- Classes --------------------------------------------------------------------------------- */

struct berth_registry_class {
	char *name;
	char *config;                       /* JSON, as given to upsert */
	char config_hash[BERTH_ID_LEN + 1]; /* SHA-256 of `config`, hex */
	int64_t created_ms;                 /* first registered */
	int64_t updated_ms;                 /* config last changed */
};

enum berth_registry_upsert {
	BERTH_REGISTRY_UNCHANGED = 0,
	BERTH_REGISTRY_CREATED,
	BERTH_REGISTRY_UPDATED,
};

/*
 * Register class `name` with its configuration (valid JSON; pass it in a
 * canonical form, e.g. json_dumps(JSON_SORT_KEYS | JSON_COMPACT), since a
 * change is told by comparing hashes of the text). `outcome` (may be NULL)
 * says whether it was new, changed or the same.
 */
int berth_registry_upsert_class(struct berth_registry *reg, const char *name,
                                const char *config_json, enum berth_registry_upsert *outcome,
                                berth_error_t *err);

/* Class `name` (-ENOENT when unknown). Free with berth_registry_class_clear(). */
int berth_registry_get_class(struct berth_registry *reg, const char *name,
                             struct berth_registry_class *out, berth_error_t *err);

/* Every class, by name. Free with berth_registry_classes_free(). */
int berth_registry_list_classes(struct berth_registry *reg, struct berth_registry_class **out,
                                size_t *n, berth_error_t *err);

void berth_registry_class_clear(struct berth_registry_class *c);
void berth_registry_classes_free(struct berth_registry_class *v, size_t n);

/* ---- Instances ------------------------------------------------------------------------------- */

/* Instance states are the lifecycle's (instance/state.h); filters take sets of them. */
#define BERTH_STATE_BIT(s) (1u << (s))
#define BERTH_STATE_ANY    (-1) /* for `expected`: no compare-and-set */

struct berth_registry_instance {
	char id[BERTH_ID_LEN + 1];
	char *class_name;
	char *name; /* NULL for an instance of a unique id */
	enum berth_state state;
	int64_t last_change_ms; /* when `state` last changed */
	bool has_exit_code;     /* the last container's exit, when it has one */
	int exit_code;
	int exit_signal; /* the signal that ended it, or 0 */
	bool oom;        /* it was killed for lack of memory */
	char *stop_reason;
	char *overrides; /* JSON of the last start's options (envVars, entrypoint, ...), or NULL */
	char *labels;    /* JSON object, or NULL */
	int64_t created_ms;
	int64_t last_activity_ms; /* as last flushed; 0: never */
};

void berth_registry_instance_clear(struct berth_registry_instance *inst);
void berth_registry_instances_free(struct berth_registry_instance *v, size_t n);

/*
 * The instance with id `id` (-ENOENT when there is none). Clear `out` after
 * use; these calls zero it first, so clearing it after a failure is fine too.
 */
int berth_registry_get(struct berth_registry *reg, const char *id,
                       struct berth_registry_instance *out, berth_error_t *err);

/* The instance `name` of class `class_name` (-ENOENT when there is none). */
int berth_registry_get_by_name(struct berth_registry *reg, const char *class_name, const char *name,
                               struct berth_registry_instance *out, berth_error_t *err);

/*
 * The record of instance `name` of class `class_name`, created (stopped,
 * with id berth_id_from_name()) when there is none, atomically: concurrent
 * callers, in this or another process, all get the same record, and exactly
 * one of them sees *created (may be NULL) true. The class must be registered
 * (-ENOENT otherwise).
 */
int berth_registry_get_or_create(struct berth_registry *reg, const char *class_name,
                                 const char *name, struct berth_registry_instance *out,
                                 bool *created, berth_error_t *err);

/*
 * The same for an instance addressed by a unique id (from berth_id_unique();
 * its record has no name). -EEXIST when `id` belongs to another class.
 */
int berth_registry_get_or_create_id(struct berth_registry *reg, const char *class_name,
                                    const char *id, struct berth_registry_instance *out,
                                    bool *created, berth_error_t *err);

struct berth_registry_state_change {
	enum berth_state state;
	/*
	 * The exit of the container, replacing what the record held; the zero
	 * value (no exit code, no signal, no OOM, no reason) clears it, which
	 * is what a start wants.
	 */
	bool has_exit_code;
	int exit_code;
	int exit_signal;
	bool oom;
	const char *stop_reason;
	int64_t time_ms; /* 0: now */
};

/*
 * Set the state (and exit information, and last_change) of instance `id`.
 * With `expected` a state, only when the record is in that state now:
 * otherwise -ESTALE, with the state found in *actual (may be NULL), so a
 * caller learns that another thread moved the instance first. BERTH_STATE_ANY
 * updates unconditionally. -ENOENT when there is no such instance.
 */
int berth_registry_set_state(struct berth_registry *reg, const char *id, int expected,
                             const struct berth_registry_state_change *change,
                             enum berth_state *actual, berth_error_t *err);

/*
 * Store the options of a start (`overrides`: JSON of envVars, entrypoint,
 * enableInternet, ...) and the container's labels (a JSON object); NULL
 * clears either.
 */
int berth_registry_set_overrides(struct berth_registry *reg, const char *id,
                                 const char *overrides_json, const char *labels_json,
                                 berth_error_t *err);

/*
 * Reset what belongs to the instance's container (destroy): state stopped,
 * exit information, stop reason, overrides, labels and activity cleared. The
 * record itself stays: id, class, name and creation time are its identity.
 */
int berth_registry_destroy(struct berth_registry *reg, const char *id, berth_error_t *err);

struct berth_registry_filter {
	const char *class_name; /* NULL: every class */
	unsigned states;        /* BERTH_STATE_BIT()s; 0: every state */
	const char *after_id;   /* only ids after this one (paging); NULL: from the start */
	size_t limit;           /* at most this many; 0: no limit */
};

/*
 * Call `fn` for each instance that matches `filter` (may be NULL), in id
 * order. The record is the callee's to take apart: whatever it leaves in it
 * is freed after the call. A non-zero return from `fn` stops the walk (and
 * is not an error). `fn` must not call into the registry: the walk holds a
 * read transaction and the handle.
 */
typedef int (*berth_registry_instance_fn)(struct berth_registry_instance *inst, void *data);
int berth_registry_foreach(struct berth_registry *reg, const struct berth_registry_filter *filter,
                           berth_registry_instance_fn fn, void *data, berth_error_t *err);

/* The same into an array; free it with berth_registry_instances_free(). */
int berth_registry_list(struct berth_registry *reg, const struct berth_registry_filter *filter,
                        struct berth_registry_instance **out, size_t *n, berth_error_t *err);

/* How many instances of class `class_name` are in one of `states` (max_instances). */
int berth_registry_count(struct berth_registry *reg, const char *class_name, unsigned states,
                         uint64_t *count, berth_error_t *err);

/* ---- Activity -------------------------------------------------------------------------------- */

struct berth_registry_activity {
	char id[BERTH_ID_LEN + 1];
	int64_t last_activity_ms;
};

/*
 * Write the last activity of `n` instances in one transaction. Activity only
 * moves forward: an older time than the record's is ignored, and so is an id
 * without a record. `updated` (may be NULL) receives how many records changed.
 */
int berth_registry_flush_activity(struct berth_registry *reg,
                                  const struct berth_registry_activity *items, size_t n,
                                  size_t *updated, berth_error_t *err);

/* ---- Events ---------------------------------------------------------------------------------- */

struct berth_registry_event {
	int64_t seq; /* increases with every event; never reused */
	int64_t time_ms;
	char *class_name;  /* or NULL */
	char *instance_id; /* or NULL */
	char *type;
	char *data; /* JSON, or NULL */
};

void berth_registry_event_clear(struct berth_registry_event *ev);
void berth_registry_events_free(struct berth_registry_event *v, size_t n);

/*
 * Append an event (`type` like "state" or "oom"; `data_json` valid JSON or
 * NULL; class and instance may be NULL for the daemon's own events) and
 * return its seq in *seq (may be NULL). Every so many appends, the events
 * beyond the bounds given at open are pruned in the same transaction.
 */
int berth_registry_append_event(struct berth_registry *reg, const char *class_name,
                                const char *instance_id, const char *type, const char *data_json,
                                int64_t *seq, berth_error_t *err);

/* The same with the event's time given (ms since the epoch; 0: now), e.g. a state's lastChange. */
int berth_registry_append_event_at(struct berth_registry *reg, const char *class_name,
                                   const char *instance_id, const char *type, const char *data_json,
                                   int64_t time_ms, int64_t *seq, berth_error_t *err);

struct berth_registry_event_filter {
	int64_t after_seq;       /* events with a greater seq (0: from the oldest) */
	const char *class_name;  /* NULL: any */
	const char *instance_id; /* NULL: any */
	size_t limit;            /* at most this many; 0: no limit */
};

/* Events matching `filter` (NULL: all), oldest first. Free with berth_registry_events_free(). */
int berth_registry_list_events(struct berth_registry *reg,
                               const struct berth_registry_event_filter *filter,
                               struct berth_registry_event **out, size_t *n, berth_error_t *err);

/* The seq of the newest event, or 0 when there is none (where a live stream starts). */
int berth_registry_last_event_seq(struct berth_registry *reg, int64_t *seq, berth_error_t *err);

/*
 * Delete all but the newest `keep` events (0: no count bound), and the
 * events before `before_ms` (ms since the epoch; 0: no age bound). The log
 * is taken to be in time order: pruning by age stops at the first event at or
 * after `before_ms`. `deleted` may be NULL.
 */
int berth_registry_prune_events(struct berth_registry *reg, uint64_t keep, int64_t before_ms,
                                uint64_t *deleted, berth_error_t *err);

#endif
