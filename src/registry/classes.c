/* SPDX-License-Identifier: Apache-2.0 */
/* Container classes: the configuration each class was last registered with. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "registry/registry-internal.h"

#define CLASS_COLUMNS "name, config, config_hash, created, updated"

static void read_class(sqlite3_stmt *st, struct berth_registry_class *out)
{
	const unsigned char *hash = sqlite3_column_text(st, 2);

	memset(out, 0, sizeof(*out));
	out->name = berth_registry_column_strdup(st, 0);
	out->config = berth_registry_column_strdup(st, 1);
	snprintf(out->config_hash, sizeof(out->config_hash), "%s",
	         hash != NULL ? (const char *)hash : "");
	out->created_ms = sqlite3_column_int64(st, 3);
	out->updated_ms = sqlite3_column_int64(st, 4);
}

void berth_registry_class_clear(struct berth_registry_class *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->config);
	memset(c, 0, sizeof(*c));
}

void berth_registry_classes_free(struct berth_registry_class *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		berth_registry_class_clear(&v[i]);
	free(v);
}

static int upsert(struct berth_registry *reg, const char *name, const char *config,
                  enum berth_registry_upsert *outcome, berth_error_t *err)
{
	cleanup_stmt sqlite3_stmt *find = NULL;
	cleanup_stmt sqlite3_stmt *write = NULL;
	char hash[BERTH_ID_LEN + 1];
	int64_t now = berth_registry_now_ms();
	int ret, rc;

	berth_registry_sha256_hex(config, strlen(config), hash);
	ret = berth_registry_stmt(reg, BERTH_STMT_CLASS_HASH,
	                          "SELECT config_hash FROM classes WHERE name = ?1", &find, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(find, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(find);
	if (rc == SQLITE_ROW) {
		const char *old = (const char *)sqlite3_column_text(find, 0);
		if (old != NULL && strcmp(old, hash) == 0) {
			*outcome = BERTH_REGISTRY_UNCHANGED;
			return 0;
		}
		*outcome = BERTH_REGISTRY_UPDATED;
		ret = berth_registry_stmt(reg, BERTH_STMT_CLASS_UPDATE,
		                          "UPDATE classes SET config = ?2, config_hash = ?3, "
		                          "updated = ?4 WHERE name = ?1",
		                          &write, err);
	} else if (rc == SQLITE_DONE) {
		*outcome = BERTH_REGISTRY_CREATED;
		ret = berth_registry_stmt(reg, BERTH_STMT_CLASS_INSERT,
		                          "INSERT INTO classes (" CLASS_COLUMNS
		                          ") VALUES (?1, ?2, ?3, ?4, ?4)",
		                          &write, err);
	} else {
		return berth_registry_error(reg, rc, err, "register class `%s`", name);
	}
	if (ret < 0)
		return ret;
	sqlite3_bind_text(write, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(write, 2, config, -1, SQLITE_STATIC);
	sqlite3_bind_text(write, 3, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(write, 4, now);
	rc = sqlite3_step(write);
	if (rc == SQLITE_CONSTRAINT_CHECK)
		return berth_error_set_plain(
		        err, EINVAL, "register class `%s`: its configuration is not valid JSON",
		        name);
	if (rc != SQLITE_DONE)
		return berth_registry_error(reg, rc, err, "register class `%s`", name);
	return 0;
}

int berth_registry_upsert_class(struct berth_registry *reg, const char *name,
                                const char *config_json, enum berth_registry_upsert *outcome,
                                berth_error_t *err)
{
	enum berth_registry_upsert ignored;
	int ret;

	if (name == NULL || *name == '\0')
		return berth_error_set_plain(err, EINVAL, "register class: the name is empty");
	if (config_json == NULL)
		return berth_error_set_plain(err, EINVAL, "register class `%s`: no configuration",
		                             name);
	ret = berth_registry_tx_begin(reg, err);
	if (ret < 0)
		return ret;
	ret = upsert(reg, name, config_json, outcome != NULL ? outcome : &ignored, err);
	if (ret < 0) {
		berth_registry_tx_rollback(reg);
		return ret;
	}
	return berth_registry_tx_commit(reg, err);
}

int berth_registry_get_class(struct berth_registry *reg, const char *name,
                             struct berth_registry_class *out, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	cleanup_stmt sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = berth_registry_stmt(reg, BERTH_STMT_CLASS_GET,
	                          "SELECT " CLASS_COLUMNS " FROM classes WHERE name = ?1", &st,
	                          err);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return berth_error_set_plain(err, ENOENT, "no class `%s`", name);
	if (rc != SQLITE_ROW)
		return berth_registry_error(reg, rc, err, "get class `%s`", name);
	read_class(st, out);
	return 0;
}

int berth_registry_list_classes(struct berth_registry *reg, struct berth_registry_class **out,
                                size_t *n, berth_error_t *err)
{
	REGISTRY_LOCKED(reg);
	cleanup_stmt sqlite3_stmt *st = NULL;
	struct berth_registry_class *v = NULL;
	size_t len = 0, cap = 0;
	int ret, rc;

	ret = berth_registry_stmt(reg, BERTH_STMT_CLASS_LIST,
	                          "SELECT " CLASS_COLUMNS " FROM classes ORDER BY name", &st, err);
	if (ret < 0)
		return ret;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? 2 * cap : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		read_class(st, &v[len++]);
	}
	if (rc != SQLITE_DONE) {
		berth_registry_classes_free(v, len);
		return berth_registry_error(reg, rc, err, "list classes");
	}
	*out = v;
	*n = len;
	return 0;
}
