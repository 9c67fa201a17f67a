/* SPDX-License-Identifier: Apache-2.0 */
/*
 * durable_objects and migrations, as wrangler has them. berth does not need
 * them (a class of containers[] is served as it is), but a wrangler project
 * has them, so they are checked for shape, and a container class that
 * wrangler would refuse to deploy is pointed out with a warning.
 */
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "config/config-internal.h"

static const char *const do_fields[] = {"bindings", NULL};
static const char *const binding_fields[] = {"name", "class_name", "script_name", "environment",
                                             NULL};
static const char *const migration_fields[] = {"tag",
                                               "new_classes",
                                               "new_sqlite_classes",
                                               "renamed_classes",
                                               "deleted_classes",
                                               "transferred_classes",
                                               NULL};
static const char *const migration_class_lists[] = {"new_classes", "new_sqlite_classes",
                                                    "deleted_classes", NULL};

/* A required string member; returns it, or NULL after saying what is wrong. */
static const char *required_string(struct berth_config_ctx *c, const char *path, const json_t *obj,
                                   const char *name, const char *what)
{
	const json_t *v = json_object_get(obj, name);
	cleanup_free char *p = berth_config_path_member(path, name);
	const char *s;

	if (v == NULL) {
		berth_config_error(c, path, "\"%s\" is required (%s)", name, what);
		return NULL;
	}
	if (!berth_config_get_string(c, p, v, false, &s))
		return NULL;
	return s;
}

static const char *optional_string(struct berth_config_ctx *c, const char *path, const json_t *obj,
                                   const char *name)
{
	const json_t *v = json_object_get(obj, name);
	cleanup_free char *p = NULL;
	const char *s;

	if (v == NULL)
		return NULL;
	p = berth_config_path_member(path, name);
	return berth_config_get_string(c, p, v, false, &s) ? s : NULL;
}

static void load_bindings(struct berth_config_ctx *c, const json_t *bindings)
{
	const char *path = "durable_objects.bindings";
	struct berth_config *cfg = c->cfg;
	size_t i;
	json_t *obj;

	if (!json_is_array(bindings)) {
		berth_config_type_error(c, path, bindings, "an array of bindings");
		return;
	}
	cfg->bindings = xcalloc(json_array_size(bindings) + 1, sizeof(*cfg->bindings));
	json_array_foreach (bindings, i, obj) {
		cleanup_free char *p = berth_config_path_index(path, i);
		const char *name, *class_name, *script;
		struct berth_config_binding *b;
		if (!json_is_object(obj)) {
			berth_config_type_error(
			        c, p, obj,
			        "an object ({\"name\": \"MY_CONTAINER\", \"class_name\": "
			        "\"MyContainer\"})");
			continue;
		}
		berth_config_unknown_fields(c, p, obj, binding_fields, NULL);
		name = required_string(
		        c, p, obj, "name",
		        "the binding's name in the Worker's env, e.g. \"MY_CONTAINER\"");
		class_name = required_string(c, p, obj, "class_name",
		                             "the Durable Object class, e.g. \"MyContainer\"");
		script = optional_string(c, p, obj, "script_name");
		optional_string(c, p, obj, "environment");
		if (name == NULL || class_name == NULL)
			continue;
		b = &cfg->bindings[cfg->n_bindings++];
		b->name = xstrdup(name);
		b->class_name = xstrdup(class_name);
		b->script_name = script ? xstrdup(script) : NULL;
		if (script != NULL && berth_config_find_class(cfg, class_name) != NULL) {
			cleanup_free char *sp = berth_config_path_member(p, "script_name");
			berth_config_warn(
			        c, sp,
			        "binds container class \"%s\" from another Worker, which wrangler "
			        "refuses (a container's Durable Object must be defined in its "
			        "own Worker); berth ignores script_name",
			        class_name);
		}
	}
}

static void load_class_list(struct berth_config_ctx *c, const char *path, const json_t *obj,
                            const char *name)
{
	const json_t *v = json_object_get(obj, name);
	cleanup_free char *p = NULL;
	cleanup_strv char **list = NULL;

	if (v == NULL)
		return;
	p = berth_config_path_member(path, name);
	berth_config_get_string_array(c, p, v, "an array of class names", &list);
}

static void load_renames(struct berth_config_ctx *c, const char *path, const json_t *obj,
                         const char *name, const char *const *fields)
{
	const json_t *v = json_object_get(obj, name);
	cleanup_free char *p = NULL;
	size_t i;
	json_t *el;

	if (v == NULL)
		return;
	p = berth_config_path_member(path, name);
	if (!json_is_array(v)) {
		berth_config_type_error(c, p, v, "an array of {\"from\": ..., \"to\": ...}");
		return;
	}
	json_array_foreach (v, i, el) {
		cleanup_free char *ep = berth_config_path_index(p, i);
		if (!json_is_object(el)) {
			berth_config_type_error(c, ep, el,
			                        "an object ({\"from\": ..., \"to\": ...})");
			continue;
		}
		berth_config_unknown_fields(c, ep, el, fields, NULL);
		for (size_t f = 0; fields[f] != NULL; f++)
			required_string(c, ep, el, fields[f], "a class name");
	}
}

static void load_migrations(struct berth_config_ctx *c, const json_t *migrations)
{
	static const char *const renamed[] = {"from", "to", NULL};
	static const char *const transferred[] = {"from", "from_script", "to", NULL};
	size_t i;
	json_t *obj;

	if (!json_is_array(migrations)) {
		berth_config_type_error(c, "migrations", migrations, "an array of migrations");
		return;
	}
	json_array_foreach (migrations, i, obj) {
		cleanup_free char *p = berth_config_path_index("migrations", i);
		if (!json_is_object(obj)) {
			berth_config_type_error(
			        c, p, obj,
			        "an object ({\"tag\": \"v1\", \"new_sqlite_classes\": "
			        "[...]})");
			continue;
		}
		berth_config_unknown_fields(c, p, obj, migration_fields, NULL);
		required_string(c, p, obj, "tag", "a unique name of the migration, e.g. \"v1\"");
		for (size_t l = 0; migration_class_lists[l] != NULL; l++)
			load_class_list(c, p, obj, migration_class_lists[l]);
		load_renames(c, p, obj, "renamed_classes", renamed);
		load_renames(c, p, obj, "transferred_classes", transferred);
	}
}

/* Whether a migration of the file creates `class_name`. */
static bool migrated(const json_t *migrations, const char *class_name)
{
	static const char *const lists[] = {"new_classes", "new_sqlite_classes", NULL};
	size_t i, j;
	json_t *m, *name;

	json_array_foreach (migrations, i, m) {
		for (size_t l = 0; lists[l] != NULL; l++) {
			json_array_foreach (json_object_get(m, lists[l]), j, name)
				if (json_is_string(name) &&
				    strcmp(json_string_value(name), class_name) == 0)
					return true;
		}
	}
	return false;
}

void berth_config_load_durable_objects(struct berth_config_ctx *c, const json_t *root)
{
	const json_t *dobj = json_object_get(root, "durable_objects");
	const json_t *migrations = json_object_get(root, "migrations");
	struct berth_config *cfg = c->cfg;

	if (dobj != NULL) {
		if (!json_is_object(dobj)) {
			berth_config_type_error(c, "durable_objects", dobj,
			                        "an object ({\"bindings\": [...]})");
		} else {
			const json_t *bindings = json_object_get(dobj, "bindings");
			berth_config_unknown_fields(c, "durable_objects", dobj, do_fields, NULL);
			if (bindings != NULL)
				load_bindings(c, bindings);
		}
	}
	if (migrations != NULL)
		load_migrations(c, migrations);

	/*
	 * wrangler refuses to deploy a container whose class has neither a binding
	 * nor a migration. A berth-only file has neither section and needs neither;
	 * sections in error were reported already.
	 */
	if (!json_is_object(dobj) && !json_is_array(migrations))
		return;
	for (size_t i = 0; i < cfg->n_classes; i++) {
		const char *name = cfg->classes[i].class_name;
		bool bound = false;
		if (name == NULL)
			continue;
		for (size_t b = 0; b < cfg->n_bindings; b++)
			bound |= strcmp(cfg->bindings[b].class_name, name) == 0;
		if (!bound && !migrated(migrations, name)) {
			cleanup_free char *p =
			        xasprintf("containers[%zu].class_name", c->class_json_index[i]);
			berth_config_warn(
			        c, p,
			        "\"%s\" has no Durable Object binding or migration, which "
			        "wrangler deploy refuses; berth serves it anyway",
			        name);
		}
	}
}
