/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration module: what `berthd --check-config` prints for bad
 * files (exact messages, with file:line:col), and what good files load into.
 * Every test writes `config.jsonc` into a scratch directory that is the
 * working directory, next to an image directory `img/` and a `Dockerfile`.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "config/config.h"

static char top[PATH_MAX]; /* the repository: tests run from there */
static char dir[PATH_MAX]; /* the scratch directory */

/* --- helpers --------------------------------------------------------------- */

static void write_config(const char *text, mode_t mode)
{
	berth_error_t err;

	unlink("config.jsonc");
	if (berth_write_file("config.jsonc", text, strlen(text), mode, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(chmod("config.jsonc", mode), 0);
}

/* Write `text` (mode 0600) and load it. */
static int load_text(const char *text, struct berth_config **cfg, struct berth_config_diags *d)
{
	berth_error_t err;

	write_config(text, 0600);
	return berth_config_load("config.jsonc", cfg, d, &err);
}

/* All messages, one per line: what --check-config prints. */
static char *joined(const struct berth_config_diags *d)
{
	char *out = xstrdup("");

	for (size_t i = 0; i < d->count; i++) {
		char *more = xasprintf("%s%s%s", out, i ? "\n" : "", d->items[i].message);
		free(out);
		out = more;
	}
	return out;
}

/* `s` with %DIR% replaced by the scratch directory. */
static char *expand(const char *s)
{
	const char *at = strstr(s, "%DIR%");

	if (at == NULL)
		return xstrdup(s);
	return xasprintf("%.*s%s%s", (int)(at - s), s, dir, at + 5);
}

/* Load `text`; everything printed must be `expected` exactly. */
static bool check_output(size_t row, const char *text, const char *expected, bool want_ok)
{
	struct berth_config_diags d = {0};
	struct berth_config *cfg = NULL;
	cleanup_free char *got = NULL;
	cleanup_free char *want = expand(expected);
	int r = load_text(text, &cfg, &d);
	bool ok = true;

	got = joined(&d);
	if (strcmp(got, want) != 0) {
		print_error("row %zu:\n   got: %s\nwanted: %s\n", row, got, want);
		ok = false;
	}
	if (want_ok != (r == 0) || want_ok != (cfg != NULL) || (!want_ok && r != -EINVAL)) {
		print_error("row %zu: load returned %d, expected %s\n", row, r,
		            want_ok ? "success" : "-EINVAL");
		ok = false;
	}
	berth_config_free(cfg);
	berth_config_diags_free(&d);
	return ok;
}

/* Load `text`, which must load without errors or warnings. */
static struct berth_config *load_good(const char *text)
{
	struct berth_config_diags d = {0};
	struct berth_config *cfg = NULL;
	cleanup_free char *got = NULL;

	load_text(text, &cfg, &d);
	got = joined(&d);
	if (d.count != 0 || cfg == NULL)
		fail_msg("unexpected diagnostics:\n%s", got);
	berth_config_diags_free(&d);
	return cfg;
}

/*
 * Templates. OBJ: one object in containers[], at 3:5, its members from line 4
 * (column 7). CLASS: class "Web" with image ./img; EXTRA from line 6, column 7.
 * BERTH: class "Web" (defaultPort 8080) and a berth section; EXTRA from line 4,
 * column 5. ROUTE: one route at 6:7 on a listening data plane; its members
 * from line 7, column 9.
 */
#define OBJ(body)    "{\n  \"containers\": [\n    {\n" body "    },\n  ],\n}\n"
#define CLASS(extra) OBJ("      \"class_name\": \"Web\",\n      \"image\": \"./img\",\n" extra)
#define BERTH(extra)                                                                              \
	"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\", \"defaultPort\": " \
	"8080}],\n  \"berth\": {\n" extra "  },\n}\n"
#define ROUTE(members)                                                                    \
	BERTH("    \"listen\": \"127.0.0.1:8080\",\n    \"routes\": [\n      {\n" members \
	      "      },\n    ],\n")
#define R_SINGLETON "        \"instance\": \"singleton\",\n"
#define R_WEB       "        \"class\": \"Web\",\n"

#define IMAGE_KINDS                                                                            \
	"a root filesystem directory, an OCI image layout (DIR or DIR:TAG), an image archive " \
	"(FILE or FILE:TAG) or a registry reference"
#define DURATION "(use 30s, 10m, 2h or seconds)"
#define PICKS                                                                                    \
	"{\"name\": \"...\"}, {\"path_segment\": N}, {\"header\": \"X-...\"}, {\"host_label\": " \
	"N}, "                                                                                   \
	"{\"random\": N}, {\"least_loaded\": N} or \"singleton\""
#define ADDR "(e.g. \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \"[::1]:8080\")"

struct row {
	const char *text;
	const char *expected;
};

/* --- bad configurations ---------------------------------------------------- */

static const struct row bad_rows[] = {
        /* syntax and the top level */
        {"{\n  \"a\": 1 \"b\": 2\n}\n",
         "config.jsonc:2:10: syntax error: '}' expected near '\"b\"'"},
        {"{\n  // fine\n  \"containers\": [{\"class_name\": tru}],\n}\n",
         "config.jsonc:3:33: syntax error: invalid token near 'tru'"},
        {"{\n  /* never closed\n}\n", "config.jsonc:2:3: syntax error: a /* comment is not closed"},
        {"{\"x\": \"é\" \"y\"}", "config.jsonc:1:11: syntax error: '}' expected near '\"y\"'"},
        {"// nothing but a comment\n",
         "config.jsonc:1:1: the file is empty; a configuration is a JSON object ({ ... })"},
        {"[]", "config.jsonc:1:1: the configuration must be a JSON object ({ ... }), not an array"},
        {"{\"containers\": {}}",
         "config.jsonc:1:2: containers: is an object, expected an array of containers"},
        {"{\"containers\": [\"Web\"]}",
         "config.jsonc:1:17: containers[0]: is a string, expected an object"},
        /* class_name */
        {OBJ("      \"image\": \"./img\",\n"),
         "config.jsonc:3:5: containers[0]: \"class_name\" is required (the name of the "
         "container's Durable Object class, e.g. \"MyContainer\")"},
        {OBJ("      \"class_name\": 42,\n      \"image\": \"./img\",\n"),
         "config.jsonc:4:7: containers[0].class_name: is a number, expected a string"},
        {OBJ("      \"class_name\": \"\",\n      \"image\": \"./img\",\n"),
         "config.jsonc:4:7: containers[0].class_name: is empty (use the class's JavaScript name, "
         "e.g. \"MyContainer\")"},
        {OBJ("      \"class_name\": \"my-container\",\n      \"image\": \"./img\",\n"),
         "config.jsonc:4:7: containers[0].class_name: \"my-container\" is not a JavaScript class "
         "name (letters, digits, _ and $, not starting with a digit, at most 128)"},
        {"{\n  \"containers\": [\n    {\"class_name\": \"Web\", \"image\": \"./img\"},\n"
         "    {\"class_name\": \"Web\", \"image\": \"./img\"},\n  ],\n}\n",
         "config.jsonc:4:6: containers[1].class_name: \"Web\" is already used by containers[0]"},
        /* image */
        {OBJ("      \"class_name\": \"Web\",\n"),
         "config.jsonc:3:5: containers[0]: \"image\" is required (" IMAGE_KINDS ")"},
        {OBJ("      \"class_name\": \"Web\",\n      \"image\": 42,\n"),
         "config.jsonc:5:7: containers[0].image: is a number, expected a string"},
        {OBJ("      \"class_name\": \"Web\",\n      \"image\": \"\",\n"),
         "config.jsonc:5:7: containers[0].image: is empty (use " IMAGE_KINDS ")"},
        {OBJ("      \"class_name\": \"Web\",\n      \"image\": \"./nope\",\n"),
         "config.jsonc:5:7: containers[0].image: \"./nope\" does not exist (resolved to "
         "%DIR%/nope)"},
        {OBJ("      \"class_name\": \"Web\",\n      \"image\": \"registry.example.com/App:v1\",\n"),
         "config.jsonc:5:7: containers[0].image: \"registry.example.com/App:v1\": image reference "
         "`registry.example.com/App:v1`: `App` is not a valid name component (lowercase letters "
         "and digits, separated by `.`, `_`, `__` or `-`)"},
        {OBJ("      \"class_name\": \"Web\",\n      \"image\": \"nginx\",\n"),
         "config.jsonc:5:7: containers[0].image: \"nginx\" does not exist (resolved to "
         "%DIR%/nginx; for Docker Hub's image write \"docker.io/library/nginx:latest\")"},
        /* wrangler's fields */
        {CLASS("      \"name\": 5,\n"),
         "config.jsonc:6:7: containers[0].name: is a number, expected a string"},
        {CLASS("      \"image_vars\": {\"V\": 1},\n"),
         "config.jsonc:6:22: containers[0].image_vars.V: is a number, expected a string (write "
         "\"1\")"},
        {CLASS("      \"max_instances\": 0,\n"),
         "config.jsonc:6:7: containers[0].max_instances: 0 is not allowed (at least 1; leave "
         "max_instances out for no limit)"},
        {CLASS("      \"max_instances\": -3,\n"),
         "config.jsonc:6:7: containers[0].max_instances: -3 is negative, expected a whole number "
         "of at least 1"},
        {CLASS("      \"max_instances\": 1.5,\n"),
         "config.jsonc:6:7: containers[0].max_instances: 1.5 is not a whole number"},
        {CLASS("      \"max_instances\": \"10\",\n"),
         "config.jsonc:6:7: containers[0].max_instances: is a string, expected a whole number of "
         "at least 1"},
        {CLASS("      \"instance_type\": \"standrad-1\",\n"),
         "config.jsonc:6:7: containers[0].instance_type: \"standrad-1\" is not an instance type "
         "(did you mean \"standard-1\"?)"},
        {CLASS("      \"instance_type\": \"huge\",\n"),
         "config.jsonc:6:7: containers[0].instance_type: \"huge\" is not an instance type (use "
         "lite, basic, standard-1, standard-2, standard-3, standard-4 or {\"vcpu\": 1, "
         "\"memory_mib\": 4096, \"disk_mb\": 8000})"},
        {CLASS("      \"instance_type\": [\"lite\"],\n"),
         "config.jsonc:6:7: containers[0].instance_type: is an array, expected an instance type "
         "name or {\"vcpu\", \"memory_mib\", \"disk_mb\"}"},
        {CLASS("      \"instance_type\": {\"vcpu\": 0},\n"),
         "config.jsonc:6:25: containers[0].instance_type.vcpu: 0 is out of range (more than 0, at "
         "most 1024)"},
        {CLASS("      \"instance_type\": {\"memory_mib\": 8},\n"),
         "config.jsonc:6:25: containers[0].instance_type.memory_mib: 8 is out of range "
         "(16-1048576)"},
        {CLASS("      \"instance_type\": {\"disk_mb\": \"4G\"},\n"),
         "config.jsonc:6:25: containers[0].instance_type.disk_mb: is a string, expected a whole "
         "number of MB (e.g. 4000)"},
        /* the Container class's properties */
        {CLASS("      \"defaultPort\": 70000,\n"),
         "config.jsonc:6:7: containers[0].defaultPort: 70000 is out of range (1-65535)"},
        {CLASS("      \"defaultPort\": 0,\n"),
         "config.jsonc:6:7: containers[0].defaultPort: 0 is out of range (1-65535)"},
        {CLASS("      \"defaultPort\": \"8080\",\n"),
         "config.jsonc:6:7: containers[0].defaultPort: is a string, expected a port number "
         "(1-65535)"},
        {CLASS("      \"requiredPorts\": 8080,\n"),
         "config.jsonc:6:7: containers[0].requiredPorts: is a number, expected an array of port "
         "numbers (e.g. [8080, 9090])"},
        {CLASS("      \"requiredPorts\": [8080, \"9090\"],\n"),
         "config.jsonc:6:31: containers[0].requiredPorts[1]: is a string, expected a port number "
         "(1-65535)"},
        {CLASS("      \"sleepAfter\": -5,\n"), "config.jsonc:6:7: containers[0].sleepAfter: -5 is "
                                               "negative, expected a duration " DURATION},
        {CLASS("      \"sleepAfter\": \"0s\",\n"),
         "config.jsonc:6:7: containers[0].sleepAfter: \"0s\" must be longer than zero"},
        {CLASS("      \"sleepAfter\": true,\n"),
         "config.jsonc:6:7: containers[0].sleepAfter: is a boolean, expected a duration " DURATION},
        {CLASS("      \"sleepAfter\": \"99999999999999h\",\n"),
         "config.jsonc:6:7: containers[0].sleepAfter: \"99999999999999h\" is too long"},
        {CLASS("      \"enableInternet\": \"yes\",\n"),
         "config.jsonc:6:7: containers[0].enableInternet: is a string, expected true or false"},
        {CLASS("      \"envVars\": {\"PORT\": 8080},\n"),
         "config.jsonc:6:19: containers[0].envVars.PORT: is a number, expected a string (write "
         "\"8080\")"},
        {CLASS("      \"envVars\": [\"A=1\"],\n"),
         "config.jsonc:6:7: containers[0].envVars: is an array, expected an object of strings "
         "({\"NAME\": \"value\"})"},
        {CLASS("      \"envVars\": {\"A=B\": \"x\"},\n"),
         "config.jsonc:6:19: containers[0].envVars[\"A=B\"]: \"A=B\" has \"=\" in it, which a "
         "variable name cannot have"},
        {CLASS("      \"envVars\": {\"\": \"x\"},\n"),
         "config.jsonc:6:19: containers[0].envVars[\"\"]: an empty variable name is not allowed"},
        {CLASS("      \"entrypoint\": \"/bin/server\",\n"),
         "config.jsonc:6:7: containers[0].entrypoint: is a string, expected an array of strings "
         "(e.g. [\"/bin/server\", \"--port\", \"8080\"])"},
        {CLASS("      \"entrypoint\": [],\n"),
         "config.jsonc:6:7: containers[0].entrypoint: is empty (leave it out to run the image's "
         "own command)"},
        {CLASS("      \"entrypoint\": [\"\"],\n"),
         "config.jsonc:6:22: containers[0].entrypoint[0]: is empty, expected the program to run"},
        {CLASS("      \"entrypoint\": [\"httpd\", 8080],\n"),
         "config.jsonc:6:31: containers[0].entrypoint[1]: is a number, expected a string"},
        {CLASS("      \"pingEndpoint\": \"http://localhost/health\",\n"),
         "config.jsonc:6:7: containers[0].pingEndpoint: \"http://localhost/health\" must not have "
         "a scheme: readiness checks fetch http://<pingEndpoint> (write \"localhost/health\")"},
        {CLASS("      \"pingEndpoint\": \"\",\n"),
         "config.jsonc:6:7: containers[0].pingEndpoint: is empty (leave it out for \"ping\")"},
        {CLASS("      \"labels\": {\"team\": {\"a\": 1}},\n"),
         "config.jsonc:6:18: containers[0].labels.team: is an object, expected a string"},
        /* berth's own class fields */
        {CLASS("      \"stopGracePeriod\": \"soon\",\n"),
         "config.jsonc:6:7: containers[0].stopGracePeriod: \"soon\" is not a duration " DURATION},
        {CLASS("      \"instanceGetTimeoutMS\": \"8s\",\n"),
         "config.jsonc:6:7: containers[0].instanceGetTimeoutMS: is a string, expected a number of "
         "milliseconds (e.g. 8000)"},
        {CLASS("      \"portReadyTimeoutMS\": 0,\n"),
         "config.jsonc:6:7: containers[0].portReadyTimeoutMS: 0 is out of range (1-86400000)"},
        {CLASS("      \"readyOn\": \"2xx\",\n"),
         "config.jsonc:6:7: containers[0].readyOn: \"2xx\" is not an HTTP status range (use e.g. "
         "\"200-399\" or 200: codes from 100 to 599, the lower first)"},
        {CLASS("      \"readyOn\": \"500-200\",\n"),
         "config.jsonc:6:7: containers[0].readyOn: \"500-200\" is not an HTTP status range (use "
         "e.g. \"200-399\" or 200: codes from 100 to 599, the lower first)"},
        {CLASS("      \"readyOn\": true,\n"),
         "config.jsonc:6:7: containers[0].readyOn: is a boolean, expected an HTTP status range "
         "(e.g. \"200-399\" or 200)"},
        {CLASS("      \"onStart\": \"ftp://example.com/hook\",\n"),
         "config.jsonc:6:7: containers[0].onStart: \"ftp://example.com/hook\" is not an http:// "
         "or https:// URL"},
        {CLASS("      \"onActivityExpired\": \"http://\",\n"),
         "config.jsonc:6:7: containers[0].onActivityExpired: \"http://\" is not an http:// or "
         "https:// URL"},
        {CLASS("      \"sleepAfter\": \"1m\",\n      \"sleepAfter\": \"2m\",\n"),
         "config.jsonc:7:7: containers[0].sleepAfter: is set twice (first at 6:7)"},
        /* durable_objects and migrations */
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\"}],\n"
         "  \"durable_objects\": [],\n}\n",
         "config.jsonc:3:3: durable_objects: is an array, expected an object ({\"bindings\": "
         "[...]})"},
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\"}],\n"
         "  \"durable_objects\": {\n    \"bindings\": [{\"name\": \"WEB\"}],\n  },\n}\n",
         "config.jsonc:2:19: warning: containers[0].class_name: \"Web\" has no Durable Object "
         "binding or migration, which wrangler deploy refuses; berth serves it anyway\n"
         "config.jsonc:4:18: durable_objects.bindings[0]: \"class_name\" is required (the Durable "
         "Object class, e.g. \"MyContainer\")"},
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\"}],\n"
         "  \"migrations\": [{\"new_sqlite_classes\": [\"Web\"]}],\n}\n",
         "config.jsonc:3:18: migrations[0]: \"tag\" is required (a unique name of the migration, "
         "e.g. \"v1\")"},
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\"}],\n"
         "  \"migrations\": [{\"tag\": \"v1\", \"new_sqlite_classes\": \"Web\"}],\n}\n",
         "config.jsonc:2:19: warning: containers[0].class_name: \"Web\" has no Durable Object "
         "binding or migration, which wrangler deploy refuses; berth serves it anyway\n"
         "config.jsonc:3:32: migrations[0].new_sqlite_classes: is a string, expected an array of "
         "class names"},
        /* the berth section */
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\"}],\n"
         "  \"berth\": \"yes\",\n}\n",
         "config.jsonc:3:3: berth: is a string, expected an object of berth's settings "
         "({\"listen\": ..., \"routes\": [...]})"},
        {BERTH("    \"listen\": \"8080\",\n"),
         "config.jsonc:4:5: berth.listen: \"8080\" is not HOST:PORT " ADDR},
        {BERTH("    \"listen\": 8080,\n"),
         "config.jsonc:4:5: berth.listen: is a number, expected a string \"HOST:PORT\" " ADDR},
        {BERTH("    \"listen\": \":8080\",\n"),
         "config.jsonc:4:5: berth.listen: \":8080\" has no host (use \"0.0.0.0:8080\" for every "
         "interface or \"127.0.0.1:8080\" for this host only)"},
        {BERTH("    \"listen\": \"127.0.0.1:70000\",\n"),
         "config.jsonc:4:5: berth.listen: \"127.0.0.1:70000\" has port 70000, expected 1-65535"},
        {BERTH("    \"listen\": \"::1:8080\",\n"),
         "config.jsonc:4:5: berth.listen: \"::1:8080\" is not HOST:PORT (write an IPv6 address in "
         "brackets, as in \"[::1]:8080\")"},
        {BERTH("    \"listen\": \"[::1]8080\",\n"),
         "config.jsonc:4:5: berth.listen: \"[::1]8080\" is not HOST:PORT " ADDR},
        {BERTH("    \"api\": {\"listen\": \"0.0.0.0:9000\"},\n"),
         "config.jsonc:4:13: berth.api.listen: \"0.0.0.0:9000\" needs a token: set berth.api.token "
         "(clients then send \"Authorization: Bearer <token>\"), or set "
         "berth.api.insecure_no_token to true to let anyone who can reach it in (local "
         "development only)"},
        {BERTH("    \"api\": {\"listen\": \"localhost\"},\n"),
         "config.jsonc:4:13: berth.api.listen: \"localhost\" is not HOST:PORT " ADDR},
        {BERTH("    \"api\": {\"token\": \"abc def ghi jkl mno\"},\n"),
         "config.jsonc:4:13: berth.api.token: has spaces or control characters, which an "
         "Authorization header cannot carry"},
        {BERTH("    \"api\": {\"insecure_no_token\": \"yes\"},\n"),
         "config.jsonc:4:13: berth.api.insecure_no_token: is a string, expected true or false"},
        {BERTH("    \"api\": [],\n"),
         "config.jsonc:4:5: berth.api: is an array, expected an object ({\"socket\": ..., "
         "\"listen\": ..., \"token\": ...})"},
        {BERTH("    \"state_dir\": \"\",\n"),
         "config.jsonc:4:5: berth.state_dir: is empty, expected a path"},
        {BERTH("    \"limits\": {\"memory\": \"lots\"},\n"),
         "config.jsonc:4:16: berth.limits.memory: \"lots\" is not a size (use e.g. 256M, 1.5G or a "
         "number of bytes)"},
        {BERTH("    \"limits\": {\"memory\": \"0G\"},\n"),
         "config.jsonc:4:16: berth.limits.memory: \"0G\" must be greater than zero"},
        {BERTH("    \"limits\": {\"memory\": \"99999999999T\"},\n"),
         "config.jsonc:4:16: berth.limits.memory: \"99999999999T\" is too large"},
        {BERTH("    \"limits\": {\"vcpu\": 0},\n"),
         "config.jsonc:4:16: berth.limits.vcpu: 0 is not a number of vCPUs (more than 0, at most "
         "1024; e.g. 2, 0.5 or \"1/16\")"},
        {BERTH("    \"log\": {\"level\": \"verbose\"},\n"),
         "config.jsonc:4:13: berth.log.level: \"verbose\" is not a log level (use error, warn, "
         "info "
         "or debug)"},
        {BERTH("    \"log\": {\"level\": \"warning\"},\n"),
         "config.jsonc:4:13: berth.log.level: \"warning\" is not a log level (did you mean "
         "\"warn\"?)"},
        {BERTH("    \"log\": {\"max_files\": 0},\n"),
         "config.jsonc:4:13: berth.log.max_files: 0 is out of range (1-100)"},
        {BERTH("    \"proxy\": {\"header_timeout\": \"soon\"},\n"),
         "config.jsonc:4:15: berth.proxy.header_timeout: \"soon\" is not a duration (use 30s, 10m, "
         "2h or seconds)"},
        {BERTH("    \"proxy\": {\"max_header_size\": \"10\"},\n"),
         "config.jsonc:4:15: berth.proxy.max_header_size: must be between 1K and 1M"},
        {BERTH("    \"proxy\": {\"max_connections\": 0},\n"),
         "config.jsonc:4:15: berth.proxy.max_connections: 0 is out of range (1-1000000)"},
        {BERTH("    \"proxy\": {\"busy_poll_us\": 1001},\n"),
         "config.jsonc:4:15: berth.proxy.busy_poll_us: 1001 is out of range (0-1000)"},
        {BERTH("    \"proxy\": {\"busy_poll_us\": \"50us\"},\n"),
         "config.jsonc:4:15: berth.proxy.busy_poll_us: is a string, expected microseconds of "
         "polling (0 turns it off)"},
        {BERTH("    \"proxy\": [],\n"),
         "config.jsonc:4:5: berth.proxy: is an array, expected an object ({\"max_header_size\": "
         "\"32K\", ...})"},
        {BERTH("    \"routes\": {},\n"),
         "config.jsonc:4:5: berth.routes: is an object, expected an array of routes"},
        {BERTH("    \"hooks\": \"secret\",\n"),
         "config.jsonc:4:5: berth.hooks: is a string, expected an object ({\"secret\": ...})"},
        {BERTH("    \"hooks\": {\"secret\": 42},\n"),
         "config.jsonc:4:15: berth.hooks.secret: is a number, expected a string"},
        {BERTH("    \"hooks\": {\"secret\": \"\"},\n"),
         "config.jsonc:4:15: berth.hooks.secret: is empty"},
        /* routes */
        {ROUTE(R_SINGLETON),
         "config.jsonc:6:7: berth.routes[0]: \"class\" is required (the container class that "
         "serves the route)"},
        {ROUTE("        \"class\": \"Wbe\",\n" R_SINGLETON),
         "config.jsonc:7:9: berth.routes[0].class: \"Wbe\" is not a container class of this file "
         "(did you mean \"Web\"?)"},
        {ROUTE("        \"class\": \"Api\",\n" R_SINGLETON),
         "config.jsonc:7:9: berth.routes[0].class: \"Api\" is not a container class of this file "
         "(classes: Web)"},
        {ROUTE(R_WEB), "config.jsonc:6:7: berth.routes[0]: \"instance\" is required (" PICKS ")"},
        {ROUTE(R_WEB "        \"instance\": \"single\",\n"),
         "config.jsonc:8:9: berth.routes[0].instance: \"single\" is not an instance choice "
         "(use " PICKS ")"},
        {ROUTE(R_WEB "        \"instance\": 5,\n"),
         "config.jsonc:8:9: berth.routes[0].instance: is a number, expected " PICKS},
        {ROUTE(R_WEB "        \"instance\": {},\n"),
         "config.jsonc:8:9: berth.routes[0].instance: is empty (use " PICKS ")"},
        {ROUTE(R_WEB "        \"instance\": {\"random\": 3, \"header\": \"X-A\"},\n"),
         "config.jsonc:8:9: berth.routes[0].instance: has both \"random\" and \"header\"; use one"},
        {ROUTE(R_WEB "        \"instance\": {\"nmae\": \"a\"},\n"),
         "config.jsonc:8:22: berth.routes[0].instance.nmae: is not an instance choice (did you "
         "mean \"name\"?)"},
        {ROUTE(R_WEB "        \"instance\": {\"name\": \"\"},\n"),
         "config.jsonc:8:22: berth.routes[0].instance.name: is empty"},
        {ROUTE(R_WEB "        \"instance\": {\"path_segment\": -1},\n"),
         "config.jsonc:8:22: berth.routes[0].instance.path_segment: -1 is negative, expected a "
         "segment number (0 is the first)"},
        {ROUTE(R_WEB "        \"instance\": {\"header\": \"X Tenant\"},\n"),
         "config.jsonc:8:22: berth.routes[0].instance.header: \"X Tenant\" is not a header name "
         "(e.g. \"X-Tenant\")"},
        {ROUTE(R_WEB "        \"instance\": {\"host_label\": 1000},\n"),
         "config.jsonc:8:22: berth.routes[0].instance.host_label: 1000 is out of range (0-126)"},
        {ROUTE(R_WEB "        \"instance\": {\"random\": 0},\n"),
         "config.jsonc:8:22: berth.routes[0].instance.random: 0 is out of range (1-1024)"},
        {ROUTE(R_WEB "        \"instance\": {\"least_loaded\": \"3\"},\n"),
         "config.jsonc:8:22: berth.routes[0].instance.least_loaded: is a string, expected a number "
         "of instances (at least 1)"},
        {ROUTE("        \"match\": {\"path_prefix\": \"api\"},\n" R_WEB R_SINGLETON),
         "config.jsonc:7:19: berth.routes[0].match.path_prefix: \"api\" must start with \"/\" "
         "(e.g. \"/api/\")"},
        {ROUTE("        \"match\": {\"host\": \"example.com:8080\"},\n" R_WEB R_SINGLETON),
         "config.jsonc:7:19: berth.routes[0].match.host: \"example.com:8080\" is not a host name "
         "(e.g. \"app.example.com\" or \"*.example.com\", without a port)"},
        {ROUTE("        \"match\": \"/api\",\n" R_WEB R_SINGLETON),
         "config.jsonc:7:9: berth.routes[0].match: is a string, expected an object "
         "({\"path_prefix\": \"/api/\", \"host\": \"app.example.com\"})"},
        {ROUTE(R_WEB R_SINGLETON "        \"port\": \"80\",\n"),
         "config.jsonc:9:9: berth.routes[0].port: is a string, expected a port number (1-65535)"},
        {ROUTE(R_WEB R_SINGLETON "        \"strip_prefix\": \"yes\",\n"),
         "config.jsonc:9:9: berth.routes[0].strip_prefix: is a string, expected true or false"},
        {"{\n  \"containers\": [{\"class_name\": \"Worker\", \"image\": \"./img\"}],\n"
         "  \"berth\": {\n    \"listen\": \"127.0.0.1:8080\",\n"
         "    \"routes\": [{\"class\": \"Worker\", \"instance\": \"singleton\"}],\n  },\n}\n",
         "config.jsonc:5:16: berth.routes[0]: has no port: class \"Worker\" has no defaultPort "
         "(set "
         "\"port\" here or \"defaultPort\" in containers[0])"},
        /* The brief's example, in a file that looks like one. */
        {"// berth configuration\n{\n  \"$schema\": \"node_modules/wrangler/config-schema.json\",\n"
         "  \"name\": \"my-app\",\n  \"main\": \"src/index.ts\",\n"
         "  \"compatibility_date\": \"2025-06-20\",\n  /*\n   * The containers.\n   */\n"
         "  \"containers\": [\n    {\n      \"class_name\": \"MyContainer\",\n"
         "      \"image\": \"./img\",\n      \"sleepAfter\": \"10 minutes\",\n    },\n  ],\n}\n",
         "config.jsonc:14:7: containers[0].sleepAfter: \"10 minutes\" is not a duration (use 30s, "
         "10m, 2h or seconds)"},
};

static void test_bad_configs(void **state)
{
	size_t failed = 0;
	(void)state;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(bad_rows); i++)
		failed += !check_output(i, bad_rows[i].text, bad_rows[i].expected, false);
	if (failed)
		fail_msg("%zu of %zu rows differ", failed, BERTH_ARRAY_SIZE(bad_rows));
}

/* --- warnings: the file loads ---------------------------------------------- */

static const struct row warning_rows[] = {
        {"{\n  \"name\": \"app\",\n  \"compatibility_date\": \"2025-06-20\",\n"
         "  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\"}],\n"
         "  \"contianers\": [],\n}\n",
         "config.jsonc:5:3: warning: unknown field \"contianers\" (did you mean \"containers\"?)"},
        {CLASS("      \"sleep_after\": \"1m\",\n"),
         "config.jsonc:6:7: warning: containers[0]: unknown field \"sleep_after\" (did you mean "
         "\"sleepAfter\"?)"},
        {CLASS("      \"color\": \"blue\",\n"),
         "config.jsonc:6:7: warning: containers[0]: unknown field \"color\""},
        {CLASS("      \"instance_type\": {\"vcpu\": 1, \"memory\": 512},\n"),
         "config.jsonc:6:36: warning: containers[0].instance_type: unknown field \"memory\" (did "
         "you mean \"memory_mib\"?)"},
        {BERTH("    \"listne\": \"127.0.0.1:80\",\n"),
         "config.jsonc:4:5: warning: berth: unknown field \"listne\" (did you mean \"listen\"?)"},
        {OBJ("      \"class_name\": \"Web\",\n      \"image\": \"./Dockerfile\",\n"),
         "config.jsonc:5:7: warning: containers[0].image: \"./Dockerfile\" is a Dockerfile, which "
         "berth does not build yet: instances of this class cannot start (use " IMAGE_KINDS ")"},
        {CLASS("      \"instance_type\": \"dev\",\n"),
         "config.jsonc:6:7: warning: containers[0].instance_type: \"dev\" is the old name of "
         "\"lite\"; wrangler will stop accepting it"},
        {CLASS("      \"requiredPorts\": [8080, 8080],\n"),
         "config.jsonc:6:31: warning: containers[0].requiredPorts[1]: port 8080 is listed twice"},
        {CLASS("      \"deniedHosts\": [\"example.com\"],\n"),
         "config.jsonc:6:7: warning: containers[0].deniedHosts: is not supported by berth yet and "
         "is ignored"},
        /* wrangler's own fields pass without a word */
        {CLASS("      \"rollout_step_percentage\": [10, 100],\n      \"scheduling_policy\": "
               "\"moon\",\n      \"image_build_context\": \".\",\n"),
         ""},
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\"}],\n"
         "  \"durable_objects\": {\"bindings\": [{\"name\": \"OTHER\", \"class_name\": "
         "\"Other\"}]},\n}\n",
         "config.jsonc:2:19: warning: containers[0].class_name: \"Web\" has no Durable Object "
         "binding or migration, which wrangler deploy refuses; berth serves it anyway"},
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\"}],\n"
         "  \"durable_objects\": {\"bindings\": [\n"
         "    {\"name\": \"WEB\", \"class_name\": \"Web\", \"script_name\": \"other\"},\n  "
         "]},\n}\n",
         "config.jsonc:4:42: warning: durable_objects.bindings[0].script_name: binds container "
         "class \"Web\" from another Worker, which wrangler refuses (a container's Durable Object "
         "must be defined in its own Worker); berth ignores script_name"},
        {ROUTE(R_WEB R_SINGLETON "        \"strip_prefix\": true,\n"),
         "config.jsonc:9:9: warning: berth.routes[0].strip_prefix: has no effect without "
         "match.path_prefix"},
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\", \"defaultPort\": "
         "80}],\n  \"berth\": {\n    \"listen\": \"127.0.0.1:8080\",\n    \"routes\": [\n"
         "      {\"match\": {\"path_prefix\": \"/a/\"}, \"class\": \"Web\", \"instance\": "
         "\"singleton\"},\n"
         "      {\"match\": {\"path_prefix\": \"/a/b/\"}, \"class\": \"Web\", \"instance\": "
         "\"singleton\"},\n    ],\n  },\n}\n",
         "config.jsonc:7:7: warning: berth.routes[1]: is never used: berth.routes[0] matches its "
         "requests first"},
        {"{\n  \"containers\": [{\"class_name\": \"Web\", \"image\": \"./img\", \"defaultPort\": "
         "80, \"max_instances\": 2}],\n  \"berth\": {\n    \"listen\": \"127.0.0.1:8080\",\n"
         "    \"routes\": [{\"class\": \"Web\", \"instance\": {\"random\": 5}}],\n  },\n}\n",
         "config.jsonc:5:33: warning: berth.routes[0].instance: spreads requests over 5 "
         "instances, but containers[0].max_instances is 2: some requests will find none free"},
        {BERTH("    \"routes\": [{\"class\": \"Web\", \"instance\": \"singleton\"}],\n"),
         "config.jsonc:4:5: warning: berth.routes: nothing serves these routes: berth.listen is "
         "not set"},
        {BERTH("    \"api\": {\"token\": \"short\"},\n"),
         "config.jsonc:4:13: warning: berth.api.token: is short (5 characters); use at least 16 "
         "random ones, e.g. from `openssl rand -hex 32`"},
        {BERTH("    \"api\": {\"token\": \"0123456789abcdef0123\", \"insecure_no_token\": "
               "true},\n"),
         "config.jsonc:4:46: warning: berth.api.insecure_no_token: is ignored: berth.api.token is "
         "set, and is required"},
        {BERTH("    \"hooks\": {\"secret\": \"short\"},\n"),
         "config.jsonc:4:15: warning: berth.hooks.secret: is short (5 characters); use at least "
         "16 random ones, e.g. from `openssl rand -hex 32`"},
        {BERTH("    \"hooks\": {\"secret\": \"0123456789abcdef\", \"key\": 1},\n"),
         "config.jsonc:4:45: warning: berth.hooks: unknown field \"key\""},
        {"{}", "config.jsonc:1:1: warning: no container classes are defined: berthd has nothing to "
               "run"},
};

static void test_warnings(void **state)
{
	size_t failed = 0;
	(void)state;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(warning_rows); i++)
		failed += !check_output(i, warning_rows[i].text, warning_rows[i].expected, true);
	if (failed)
		fail_msg("%zu of %zu rows differ", failed, BERTH_ARRAY_SIZE(warning_rows));
}

/* --- more bad files --------------------------------------------------------- */

static void test_all_errors_are_collected(void **state)
{
	struct berth_config_diags d = {0};
	struct berth_config *cfg = NULL;
	berth_error_t err;
	(void)state;

	write_config(CLASS("      \"max_instances\": 0,\n      \"sleepAfter\": \"soon\",\n"
	                   "      \"enableInternet\": 1,\n      \"defaultPort\": -1,\n"
	                   "      \"labels\": [],\n      \"colour\": 1,\n"),
	             0600);
	assert_int_equal(berth_config_load("config.jsonc", &cfg, &d, &err), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err.message, "`config.jsonc`: 5 errors");
	assert_int_equal(d.errors, 5);
	assert_int_equal(d.warnings, 1);
	/* In the order of the file, whatever order they were found in. */
	for (size_t i = 0; i < d.count; i++) {
		assert_int_equal(d.items[i].line, 6 + i);
		assert_int_equal(d.items[i].col, 7);
	}
	assert_string_equal(d.items[5].path, "containers[0]");
	assert_int_equal(d.items[5].severity, BERTH_CONFIG_WARNING);
	assert_string_equal(d.items[1].path, "containers[0].sleepAfter");
	assert_string_equal(d.items[1].text, "\"soon\" is not a duration " DURATION);
	berth_config_diags_free(&d);
}

static void test_unreadable_file(void **state)
{
	struct berth_config_diags d = {0};
	struct berth_config *cfg = (struct berth_config *)1;
	berth_error_t err;
	cleanup_free char *big = NULL;
	(void)state;

	assert_int_equal(berth_config_load("missing.jsonc", &cfg, &d, &err), -ENOENT);
	assert_null(cfg);
	assert_int_equal(d.count, 1);
	assert_string_equal(d.items[0].message,
	                    "missing.jsonc: cannot be read: No such file or directory");
	assert_int_equal(d.items[0].line, 0);
	berth_config_diags_free(&d);

	big = xmalloc(5u << 20);
	memset(big, ' ', (5u << 20) - 1);
	big[(5u << 20) - 1] = '\0';
	write_config(big, 0600);
	assert_int_equal(berth_config_load("config.jsonc", &cfg, &d, &err), -EFBIG);
	assert_string_equal(d.items[0].message,
	                    "config.jsonc: is larger than 4 MiB, too large for a configuration");
	berth_config_diags_free(&d);
}

static void test_long_values_are_cut(void **state)
{
	char sock[140], text[400], want[400];
	(void)state;

	memset(sock, 'x', sizeof(sock));
	memcpy(sock, "/run/", 5);
	sock[sizeof(sock) - 1] = '\0';
	snprintf(text, sizeof(text), BERTH("    \"api\": {\"socket\": \"%s\"},\n"), sock);
	/* The value as written, cut at 57 bytes: the quote and 56 of the path. */
	snprintf(
	        want, sizeof(want),
	        "config.jsonc:4:13: berth.api.socket: \"%.56s... is too long for a unix socket (at "
	        "most 107 bytes, resolved)",
	        sock);
	assert_true(check_output(0, text, want, false));
}

/* A secret in a file others can read: one warning, and the value still taken. */
static void check_readable_secret(const char *text, const char *want, const char *value,
                                  char *const *(*field)(const struct berth_config *cfg))
{
	struct berth_config_diags d = {0};
	struct berth_config *cfg = NULL;
	berth_error_t err;

	write_config(text, 0644);
	assert_int_equal(berth_config_load("config.jsonc", &cfg, &d, &err), 0);
	assert_int_equal(d.count, 1);
	assert_string_equal(d.items[0].message, want);
	assert_string_equal(*field(cfg), value);
	berth_config_free(cfg);
	berth_config_diags_free(&d);
}

static char *const *api_token_of(const struct berth_config *cfg)
{
	return &cfg->berth.api_token;
}

static char *const *hooks_secret_of(const struct berth_config *cfg)
{
	return &cfg->berth.hooks_secret;
}

static void test_secrets_readable_by_others(void **state)
{
	(void)state;
	check_readable_secret(BERTH("    \"api\": {\"token\": \"0123456789abcdef0123\"},\n"),
	                      "config.jsonc:4:13: warning: berth.api.token: every user of this "
	                      "host can read config.jsonc, and so the token (chmod o-r "
	                      "config.jsonc)",
	                      "0123456789abcdef0123", api_token_of);
	check_readable_secret(BERTH("    \"hooks\": {\"secret\": \"0123456789abcdef0123\"},\n"),
	                      "config.jsonc:4:15: warning: berth.hooks.secret: every user of this "
	                      "host can read config.jsonc, and so the secret (chmod o-r "
	                      "config.jsonc)",
	                      "0123456789abcdef0123", hooks_secret_of);
}

/* --- good configurations --------------------------------------------------- */

static void test_defaults(void **state)
{
	struct berth_config *cfg = load_good("{\"containers\": [{\"class_name\": \"A\", \"image\": "
	                                     "\"img\"}]}");
	const struct berth_config_class *a;
	cleanup_free char *img = xasprintf("%s/img", dir);
	cleanup_free char *path = xasprintf("%s/config.jsonc", dir);
	(void)state;

	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->dir, dir);
	assert_int_equal(cfg->n_classes, 1);
	a = &cfg->classes[0];
	assert_string_equal(a->class_name, "A");
	assert_null(a->name);
	assert_string_equal(a->image, "img");
	assert_string_equal(a->image_path, img);
	assert_null(a->image_build_context);
	assert_null(a->image_vars[0]);
	assert_int_equal(a->max_instances, 0);
	assert_string_equal(a->instance_type.name, "lite");
	assert_int_equal(a->instance_type.limits.memory_bytes, 256u << 20);
	assert_int_equal(a->instance_type.limits.nanocpus, 62500000);
	assert_int_equal(a->instance_type.limits.disk_bytes, 2000000000ull);
	assert_int_equal(a->default_port, 0);
	assert_null(a->required_ports);
	assert_int_equal(a->n_required_ports, 0);
	assert_int_equal(a->sleep_after_ms, 600000);
	assert_null(a->env[0]);
	assert_null(a->entrypoint);
	assert_true(a->enable_internet);
	assert_string_equal(a->ping_endpoint, "ping");
	assert_null(a->labels[0]);
	assert_int_equal(a->stop_grace_ms, 10000);
	assert_int_equal(a->instance_get_timeout_ms, 8000);
	assert_int_equal(a->port_ready_timeout_ms, 20000);
	assert_int_equal(a->ready_status_min, 0);
	assert_int_equal(a->ready_status_max, 0);
	assert_null(a->on_start);
	assert_null(a->on_stop);
	assert_null(a->on_error);
	assert_null(a->on_activity_expired);

	assert_int_equal(cfg->n_bindings, 0);
	assert_null(cfg->berth.listen.host);
	assert_string_equal(cfg->berth.api_socket, "/run/berth/berth.sock");
	assert_null(cfg->berth.api_listen.host);
	assert_null(cfg->berth.api_token);
	assert_false(cfg->berth.api_insecure_no_token);
	assert_null(cfg->berth.hooks_secret);
	assert_string_equal(cfg->berth.state_dir, "/var/lib/berth");
	assert_int_equal(cfg->berth.limits_memory_bytes, 0);
	assert_int_equal(cfg->berth.limits_nanocpus, 0);
	assert_int_equal(cfg->berth.log_max_bytes, 10u << 20);
	assert_int_equal(cfg->berth.log_max_files, 2);
	assert_int_equal(cfg->berth.log_level, BERTH_LOG_INFO);
	assert_int_equal(cfg->berth.n_routes, 0);
	assert_int_equal(cfg->berth.proxy.max_header_bytes, 32 * 1024);
	assert_int_equal(cfg->berth.proxy.header_timeout_ms, 10000);
	assert_int_equal(cfg->berth.proxy.max_body_bytes, 0);
	assert_int_equal(cfg->berth.proxy.upstream_keepalive, 64);
	assert_int_equal(cfg->berth.proxy.wait_timeout_ms, 30000);
	assert_int_equal(cfg->berth.proxy.busy_poll_us, 50);
	berth_config_free(cfg);
}

static void test_jsonc(void **state)
{
	/* Comments and trailing commas everywhere; "//" and "/ *" inside strings are text. */
	struct berth_config *cfg = load_good(
	        "\xef\xbb\xbf// a byte order mark, then a comment\n"
	        "/* a block\n   comment */ {\n"
	        "  \"containers\": [ // the classes\n"
	        "    {\n"
	        "      \"class_name\": /* inline */ \"Web\",\n"
	        "      \"image\": \"./img\", // trailing\n"
	        "      \"onStart\": \"http://hooks.example/start\", // a URL is not a comment\n"
	        "      \"envVars\": {\"GLOB\": \"/*.txt\", \"Q\": \"say \\\"hi\\\" // not a "
	        "comment\",},\n"
	        "      \"entrypoint\": [\"a\", \"b\",],\n"
	        "    },\n"
	        "  ],\n"
	        "} // the end\n");
	const struct berth_config_class *a = &cfg->classes[0];
	(void)state;

	assert_string_equal(a->class_name, "Web");
	assert_string_equal(a->on_start, "http://hooks.example/start");
	assert_string_equal(a->env[0], "GLOB=/*.txt");
	assert_string_equal(a->env[1], "Q=say \"hi\" // not a comment");
	assert_null(a->env[2]);
	assert_string_equal(a->entrypoint[0], "a");
	assert_string_equal(a->entrypoint[1], "b");
	assert_null(a->entrypoint[2]);
	berth_config_free(cfg);

	/* Positions count characters, and a byte order mark is none. */
	assert_true(check_output(0, "\xef\xbb\xbf{\"é\": 1, \"containers\": 5}",
	                         "config.jsonc:1:2: warning: unknown field \"é\"\n"
	                         "config.jsonc:1:10: containers: is a number, expected an array of "
	                         "containers",
	                         false));
}

static void test_image_paths(void **state)
{
	cleanup_free char *img = xasprintf("%s/img", dir);
	cleanup_free char *text = NULL;
	const char *base = strrchr(dir, '/') + 1;
	struct berth_config *cfg;
	(void)state;

	text = xasprintf("{\"containers\": [\n"
	                 "  {\"class_name\": \"A\", \"image\": \"./img\"},\n"
	                 "  {\"class_name\": \"B\", \"image\": \"img/\"},\n"
	                 "  {\"class_name\": \"C\", \"image\": \"../%s/./img\"},\n"
	                 "  {\"class_name\": \"D\", \"image\": \"%s/img\"},\n"
	                 "  {\"class_name\": \"E\", \"image\": \"img\", \"image_build_context\": "
	                 "\"ctx/..\"},\n"
	                 "]}",
	                 base, dir);
	cfg = load_good(text);
	assert_int_equal(cfg->n_classes, 5);
	for (size_t i = 0; i < cfg->n_classes; i++)
		assert_string_equal(cfg->classes[i].image_path, img);
	/* The original string is kept for messages and the API. */
	assert_string_equal(cfg->classes[0].image, "./img");
	{
		cleanup_free char *c = xasprintf("../%s/./img", base);
		assert_string_equal(cfg->classes[2].image, c);
	}
	assert_string_equal(cfg->classes[4].image_build_context, dir);
	berth_config_free(cfg);
}

/* Registry references, in the canonical form the image store records them by; PATH:TAG. */
static void test_image_references(void **state)
{
	cleanup_free char *layout = xasprintf("%s/layout", dir);
	cleanup_free char *marker = xasprintf("%s/layout/oci-layout", dir);
	cleanup_free char *tagged = xasprintf("%s/layout:v2", dir);
	cleanup_free char *archive = xasprintf("%s/app.tar", dir);
	cleanup_free char *archive_tagged = xasprintf("%s/app.tar:team/app:1.2", dir);
	struct berth_config *cfg;
	(void)state;

	assert_int_equal(mkdir(layout, 0755), 0);
	assert_int_equal(berth_write_file(marker, "{}", 2, 0644, NULL), 0);
	assert_int_equal(berth_write_file(archive, "", 0, 0644, NULL), 0);
	cfg = load_good("{\"containers\": [\n"
	                "  {\"class_name\": \"A\", \"image\": \"busybox:1.36\"},\n"
	                "  {\"class_name\": \"B\", \"image\": \"localhost:5000/team/app\"},\n"
	                "  {\"class_name\": \"C\", \"image\": \"r.example/app@sha256:"
	                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"},\n"
	                "  {\"class_name\": \"D\", \"image\": \"./layout:v2\"},\n"
	                "  {\"class_name\": \"E\", \"image\": \"./app.tar:team/app:1.2\"},\n"
	                "]}");
	assert_string_equal(cfg->classes[0].image_path, "docker.io/library/busybox:1.36");
	assert_string_equal(cfg->classes[1].image_path, "localhost:5000/team/app:latest");
	assert_string_equal(cfg->classes[2].image_path,
	                    "r.example/app@sha256:"
	                    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_string_equal(cfg->classes[3].image_path, tagged);
	assert_string_equal(cfg->classes[4].image_path, archive_tagged);
	berth_config_free(cfg);
	berth_rmtree(layout, NULL);
	unlink(archive);
}

static void test_instance_types(void **state)
{
	static const char *const names[] = {"lite",       "basic",      "standard-1", "standard-2",
	                                    "standard-3", "standard-4", "standard",   "dev"};
	struct berth_config *cfg;
	(void)state;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(names); i++) {
		struct berth_config_diags d = {0};
		cleanup_free char *text =
		        xasprintf("{\"containers\": [{\"class_name\": \"A\", \"image\": \"img\", "
		                  "\"instance_type\": \"%s\"}]}",
		                  names[i]);
		const struct berth_instance_type *t = berth_instance_type_lookup(names[i]);
		assert_int_equal(load_text(text, &cfg, &d), 0);
		assert_string_equal(cfg->classes[0].instance_type.name, names[i]);
		assert_memory_equal(&cfg->classes[0].instance_type.limits, &t->limits,
		                    sizeof(t->limits));
		berth_config_free(cfg);
		berth_config_diags_free(&d);
	}

	cfg = load_good(
	        "{\"containers\": [\n"
	        "  {\"class_name\": \"A\", \"image\": \"img\", \"instance_type\": {\"vcpu\": "
	        "0.5, \"memory_mib\": 512, \"disk_mb\": 4000}},\n"
	        "  {\"class_name\": \"B\", \"image\": \"img\", \"instance_type\": {\"vcpu\": "
	        "2}},\n"
	        "  {\"class_name\": \"C\", \"image\": \"img\", \"instance_type\": {}},\n"
	        "]}");
	assert_null(cfg->classes[0].instance_type.name);
	assert_int_equal(cfg->classes[0].instance_type.limits.nanocpus, 500000000);
	assert_int_equal(cfg->classes[0].instance_type.limits.memory_bytes, 512u << 20);
	assert_int_equal(cfg->classes[0].instance_type.limits.disk_bytes, 4000000000ull);
	assert_int_equal(cfg->classes[0].instance_type.limits.pids,
	                 berth_instance_type_lookup("lite")->limits.pids);
	/* What is left out is wrangler's default: lite's. */
	assert_int_equal(cfg->classes[1].instance_type.limits.nanocpus, 2000000000);
	assert_int_equal(cfg->classes[1].instance_type.limits.memory_bytes, 256u << 20);
	assert_int_equal(cfg->classes[1].instance_type.limits.disk_bytes, 2000000000ull);
	assert_int_equal(cfg->classes[2].instance_type.limits.nanocpus, 62500000);
	berth_config_free(cfg);
}

static void test_class_fields(void **state)
{
	struct berth_config *cfg = load_good(CLASS(
	        "      \"name\": \"web-app\",\n"
	        "      \"max_instances\": 3,\n"
	        "      \"image_vars\": {\"VERSION\": \"1.2\"},\n"
	        "      \"defaultPort\": 8080,\n"
	        "      \"requiredPorts\": [8080, 9090, 1],\n"
	        "      \"sleepAfter\": \"1h30m\",\n"
	        "      \"envVars\": {\"B\": \"2\", \"A\": \"x=y\", \"EMPTY\": \"\", \"UTF\": "
	        "\"ü\"},\n"
	        "      \"entrypoint\": [\"/bin/server\", \"--port\", \"\", \"8080\"],\n"
	        "      \"enableInternet\": false,\n"
	        "      \"pingEndpoint\": \"localhost/health\",\n"
	        "      \"labels\": {\"team\": \"infra\", \"app.kubernetes.io/name\": \"web\"},\n"
	        "      \"stopGracePeriod\": 0,\n"
	        "      \"instanceGetTimeoutMS\": 1000,\n"
	        "      \"portReadyTimeoutMS\": 5000.0,\n"
	        "      \"readyOn\": \"200-299\",\n"
	        "      \"onStart\": \"https://hooks.example/start?x=1\",\n"
	        "      \"onStop\": \"http://127.0.0.1:9/stop\",\n"
	        "      \"onError\": \"HTTPS://hooks.example/error\",\n"
	        "      \"onActivityExpired\": \"http://[::1]:8080/expired\",\n"));
	const struct berth_config_class *a = &cfg->classes[0];
	(void)state;

	assert_string_equal(a->name, "web-app");
	assert_int_equal(a->max_instances, 3);
	assert_string_equal(a->image_vars[0], "VERSION=1.2");
	assert_int_equal(a->default_port, 8080);
	assert_int_equal(a->n_required_ports, 3);
	assert_int_equal(a->required_ports[0], 8080);
	assert_int_equal(a->required_ports[1], 9090);
	assert_int_equal(a->required_ports[2], 1);
	assert_int_equal(a->sleep_after_ms, 5400000);
	/* In the file's order, not sorted. */
	assert_string_equal(a->env[0], "B=2");
	assert_string_equal(a->env[1], "A=x=y");
	assert_string_equal(a->env[2], "EMPTY=");
	assert_string_equal(a->env[3], "UTF=ü");
	assert_null(a->env[4]);
	assert_string_equal(a->entrypoint[0], "/bin/server");
	assert_string_equal(a->entrypoint[2], "");
	assert_string_equal(a->entrypoint[3], "8080");
	assert_null(a->entrypoint[4]);
	assert_false(a->enable_internet);
	assert_string_equal(a->ping_endpoint, "localhost/health");
	assert_string_equal(a->labels[0], "team=infra");
	assert_string_equal(a->labels[1], "app.kubernetes.io/name=web");
	assert_null(a->labels[2]);
	assert_int_equal(a->stop_grace_ms, 0);
	assert_int_equal(a->instance_get_timeout_ms, 1000);
	assert_int_equal(a->port_ready_timeout_ms, 5000);
	assert_int_equal(a->ready_status_min, 200);
	assert_int_equal(a->ready_status_max, 299);
	assert_string_equal(a->on_start, "https://hooks.example/start?x=1");
	assert_string_equal(a->on_stop, "http://127.0.0.1:9/stop");
	assert_string_equal(a->on_error, "HTTPS://hooks.example/error");
	assert_string_equal(a->on_activity_expired, "http://[::1]:8080/expired");
	berth_config_free(cfg);
}

static void test_durations_in_config(void **state)
{
	static const struct {
		const char *value;
		uint64_t ms;
	} rows[] = {
	        {"\"30s\"", 30000},     {"\"10m\"", 600000}, {"\"2h\"", 7200000},
	        {"\"1h30m\"", 5400000}, {"\"500ms\"", 500},  {"90", 90000},
	        {"1.5", 1500},          {"\"45\"", 45000},
	};
	(void)state;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(rows); i++) {
		cleanup_free char *text = xasprintf("{\"containers\": [{\"class_name\": \"A\", "
		                                    "\"image\": \"img\", \"sleepAfter\": %s, "
		                                    "\"stopGracePeriod\": %s}]}",
		                                    rows[i].value, rows[i].value);
		struct berth_config *cfg = load_good(text);
		assert_int_equal(cfg->classes[0].sleep_after_ms, rows[i].ms);
		assert_int_equal(cfg->classes[0].stop_grace_ms, rows[i].ms);
		berth_config_free(cfg);
	}
}

static void test_berth_section(void **state)
{
	struct berth_config *cfg = load_good(
	        "{\n"
	        "  \"containers\": [\n"
	        "    {\"class_name\": \"Web\", \"image\": \"img\", \"defaultPort\": 8080},\n"
	        "    {\"class_name\": \"Api\", \"image\": \"img\", \"defaultPort\": 3000, "
	        "\"max_instances\": 4},\n"
	        "  ],\n"
	        "  \"berth\": {\n"
	        "    \"listen\": \"[::]:80\",\n"
	        "    \"api\": {\"socket\": \"run/b.sock\", \"listen\": \"localhost:9000\",\n"
	        "            \"token\": \"0123456789abcdef0123456789abcdef\"},\n"
	        "    \"state_dir\": \"/srv/berth/\",\n"
	        "    \"limits\": {\"memory\": \"8G\", \"vcpu\": \"1/2\"},\n"
	        "    \"log\": {\"max_size\": 1048576, \"max_files\": 5, \"level\": \"debug\"},\n"
	        "    \"routes\": [\n"
	        "      {\"match\": {\"host\": \"API.Example.com\", \"path_prefix\": \"/v1/\"},\n"
	        "       \"class\": \"Api\", \"instance\": {\"least_loaded\": 4}, \"strip_prefix\": "
	        "true},\n"
	        "      {\"match\": {\"host\": \"*.example.com\"}, \"class\": \"Web\",\n"
	        "       \"instance\": {\"host_label\": 0}},\n"
	        "      {\"match\": {\"path_prefix\": \"/u/\"}, \"class\": \"Web\", \"instance\": "
	        "{\"path_segment\": 1}, \"port\": 9090},\n"
	        "      {\"match\": {\"path_prefix\": \"/t/\"}, \"class\": \"Web\", \"instance\": "
	        "{\"header\": \"X-Tenant\"}},\n"
	        "      {\"match\": {\"path_prefix\": \"/r/\"}, \"class\": \"Api\", \"instance\": "
	        "{\"random\": 3}},\n"
	        "      {\"match\": {\"path_prefix\": \"/n/\"}, \"class\": \"Api\", \"instance\": "
	        "{\"name\": \"main\"}},\n"
	        "      {\"class\": \"Web\", \"instance\": \"singleton\"},\n"
	        "    ],\n"
	        "  },\n"
	        "}\n");
	const struct berth_config_daemon *d = &cfg->berth;
	const struct berth_config_route *r = d->routes;
	cleanup_free char *sock = xasprintf("%s/run/b.sock", dir);
	(void)state;

	assert_string_equal(d->listen.host, "::");
	assert_int_equal(d->listen.port, 80);
	assert_string_equal(d->api_socket, sock);
	assert_string_equal(d->api_listen.host, "localhost");
	assert_int_equal(d->api_listen.port, 9000);
	assert_string_equal(d->api_token, "0123456789abcdef0123456789abcdef");
	assert_string_equal(d->state_dir, "/srv/berth");
	assert_int_equal(d->limits_memory_bytes, 8ull << 30);
	assert_int_equal(d->limits_nanocpus, 500000000);
	assert_int_equal(d->log_max_bytes, 1048576);
	assert_int_equal(d->log_max_files, 5);
	assert_int_equal(d->log_level, BERTH_LOG_DEBUG);

	assert_int_equal(d->n_routes, 7);
	assert_string_equal(r[0].host, "api.example.com");
	assert_string_equal(r[0].path_prefix, "/v1/");
	assert_string_equal(r[0].class_name, "Api");
	assert_int_equal(r[0].class_index, 1);
	assert_int_equal(r[0].pick, BERTH_CONFIG_PICK_LEAST_LOADED);
	assert_int_equal(r[0].pick_n, 4);
	assert_int_equal(r[0].port, 3000);
	assert_true(r[0].strip_prefix);
	assert_string_equal(r[1].host, "*.example.com");
	assert_null(r[1].path_prefix);
	assert_int_equal(r[1].pick, BERTH_CONFIG_PICK_HOST_LABEL);
	assert_int_equal(r[1].pick_n, 0);
	assert_int_equal(r[1].port, 8080);
	assert_false(r[1].strip_prefix);
	assert_int_equal(r[2].pick, BERTH_CONFIG_PICK_PATH_SEGMENT);
	assert_int_equal(r[2].pick_n, 1);
	assert_int_equal(r[2].port, 9090);
	assert_int_equal(r[3].pick, BERTH_CONFIG_PICK_HEADER);
	assert_string_equal(r[3].pick_name, "X-Tenant");
	assert_int_equal(r[4].pick, BERTH_CONFIG_PICK_RANDOM);
	assert_int_equal(r[4].pick_n, 3);
	assert_int_equal(r[5].pick, BERTH_CONFIG_PICK_NAME);
	assert_string_equal(r[5].pick_name, "main");
	assert_int_equal(r[6].pick, BERTH_CONFIG_PICK_SINGLETON);
	assert_string_equal(r[6].pick_name, "cf-singleton-container");
	assert_null(r[6].host);
	assert_null(r[6].path_prefix);
	berth_config_free(cfg);

	/* A socket only needs no token; a TCP listener may do without one on request. */
	cfg = load_good(BERTH("    \"api\": {\"listen\": \"127.0.0.1:9000\", "
	                      "\"insecure_no_token\": true},\n"));
	assert_true(cfg->berth.api_insecure_no_token);
	assert_null(cfg->berth.api_token);
	berth_config_free(cfg);
	/* Busy polling: off with 0, up to a millisecond. */
	cfg = load_good(BERTH("    \"proxy\": {\"busy_poll_us\": 0},\n"));
	assert_int_equal(cfg->berth.proxy.busy_poll_us, 0);
	berth_config_free(cfg);
	cfg = load_good(BERTH("    \"proxy\": {\"busy_poll_us\": 1000},\n"));
	assert_int_equal(cfg->berth.proxy.busy_poll_us, 1000);
	berth_config_free(cfg);
}

static void test_wrangler_sections(void **state)
{
	struct berth_config *cfg = load_good(
	        "{\n"
	        "  \"name\": \"app\", \"main\": \"src/index.ts\", \"workers_dev\": true,\n"
	        "  \"routes\": [{\"pattern\": \"example.com/*\", \"zone_name\": "
	        "\"example.com\"}],\n"
	        "  \"vars\": {\"A\": 1}, \"observability\": {\"enabled\": true}, \"env\": "
	        "{\"staging\": "
	        "{}},\n"
	        "  \"containers\": [{\"class_name\": \"Web\", \"image\": \"img\"}],\n"
	        "  \"durable_objects\": {\"bindings\": [\n"
	        "    {\"name\": \"WEB\", \"class_name\": \"Web\"},\n"
	        "    {\"name\": \"COUNTER\", \"class_name\": \"Counter\", \"script_name\": "
	        "\"other\"},\n"
	        "  ]},\n"
	        "  \"migrations\": [{\"tag\": \"v1\", \"new_sqlite_classes\": [\"Web\"]},\n"
	        "                 {\"tag\": \"v2\", \"renamed_classes\": [{\"from\": \"A\", "
	        "\"to\": "
	        "\"B\"}]}],\n"
	        "}\n");
	(void)state;

	assert_int_equal(cfg->n_bindings, 2);
	assert_string_equal(cfg->bindings[0].name, "WEB");
	assert_string_equal(cfg->bindings[0].class_name, "Web");
	assert_null(cfg->bindings[0].script_name);
	assert_string_equal(cfg->bindings[1].script_name, "other");
	/* wrangler's routes are the Worker's, not berth's. */
	assert_int_equal(cfg->berth.n_routes, 0);
	berth_config_free(cfg);
}

static void test_examples(void **state)
{
	struct berth_config_diags d = {0};
	struct berth_config *cfg = NULL;
	cleanup_free char *berth_path = xasprintf("%s/examples/berth.jsonc", top);
	cleanup_free char *wrangler_path = xasprintf("%s/examples/wrangler.jsonc", top);
	cleanup_free char *demo = xasprintf("%s/build/rootfs/demo", top);
	cleanup_free char *want = NULL;
	berth_error_t err;
	(void)state;

	if (berth_config_load(berth_path, &cfg, &d, &err) != 0 || d.count != 0) {
		cleanup_free char *got = joined(&d);
		fail_msg("examples/berth.jsonc (run `make rootfs` first): %s", got);
	}
	assert_int_equal(cfg->n_classes, 2);
	assert_string_equal(cfg->classes[0].class_name, "Site");
	assert_string_equal(cfg->classes[0].image_path, demo);
	assert_string_equal(cfg->classes[1].class_name, "Echo");
	assert_int_equal(cfg->berth.n_routes, 3);
	berth_config_free(cfg);
	berth_config_diags_free(&d);

	/* An unmodified wrangler.jsonc: it loads; berth says what it cannot do with it. */
	assert_int_equal(berth_config_load(wrangler_path, &cfg, &d, &err), 0);
	assert_int_equal(d.errors, 0);
	want = xasprintf(
	        "%s:17:4: warning: containers[0].image: \"./Dockerfile\" is a Dockerfile, "
	        "which berth does not build yet: instances of this class cannot start (use "
	        "" IMAGE_KINDS ")",
	        wrangler_path);
	assert_int_equal(d.count, 1);
	assert_string_equal(d.items[0].message, want);
	assert_string_equal(cfg->classes[0].class_name, "MyContainer");
	assert_int_equal(cfg->classes[0].max_instances, 10);
	assert_string_equal(cfg->classes[0].instance_type.name, "basic");
	assert_string_equal(cfg->bindings[0].name, "MY_CONTAINER");
	berth_config_free(cfg);
	berth_config_diags_free(&d);
}

static void test_class_equal(void **state)
{
	struct berth_config *a, *b;
	const char *text =
	        CLASS("      \"envVars\": {\"A\": \"1\"},\n      \"requiredPorts\": [1, 2],\n"
	              "      \"entrypoint\": [\"x\"],\n");
	(void)state;

	a = load_good(text);
	b = load_good(text);
	assert_true(berth_config_class_equal(&a->classes[0], &b->classes[0]));
	assert_ptr_equal(berth_config_find_class(a, "Web"), &a->classes[0]);
	assert_null(berth_config_find_class(a, "web"));
	berth_config_free(b);

	b = load_good(CLASS("      \"envVars\": {\"A\": \"2\"},\n      \"requiredPorts\": [1, 2],\n"
	                    "      \"entrypoint\": [\"x\"],\n"));
	assert_false(berth_config_class_equal(&a->classes[0], &b->classes[0]));
	berth_config_free(b);
	b = load_good(CLASS("      \"envVars\": {\"A\": \"1\"},\n      \"requiredPorts\": [1, 3],\n"
	                    "      \"entrypoint\": [\"x\"],\n"));
	assert_false(berth_config_class_equal(&a->classes[0], &b->classes[0]));
	berth_config_free(b);
	b = load_good(CLASS("      \"envVars\": {\"A\": \"1\"},\n      \"requiredPorts\": [1, 2],\n"
	                    "      \"entrypoint\": [\"x\", \"y\"],\n"));
	assert_false(berth_config_class_equal(&a->classes[0], &b->classes[0]));
	berth_config_free(b);
	b = load_good(CLASS("      \"envVars\": {\"A\": \"1\"},\n      \"requiredPorts\": [1, 2],\n"
	                    "      \"entrypoint\": [\"x\"],\n      \"sleepAfter\": \"1m\",\n"));
	assert_false(berth_config_class_equal(&a->classes[0], &b->classes[0]));
	berth_config_free(b);
	berth_config_free(a);
}

/* --- setup ----------------------------------------------------------------- */

static int setup(void **state)
{
	berth_error_t err;
	(void)state;

	if (getcwd(top, sizeof(top)) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/berth-config-test.XXXXXX");
	if (mkdtemp(dir) == NULL || chdir(dir) < 0 || mkdir("img", 0755) < 0)
		return -1;
	return berth_write_file("Dockerfile", "FROM scratch\n", 13, 0644, &err);
}

static int teardown(void **state)
{
	berth_error_t err;
	(void)state;

	if (chdir(top) < 0)
		return -1;
	return berth_rmtree(dir, &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bad_configs),
	        cmocka_unit_test(test_warnings),
	        cmocka_unit_test(test_all_errors_are_collected),
	        cmocka_unit_test(test_unreadable_file),
	        cmocka_unit_test(test_long_values_are_cut),
	        cmocka_unit_test(test_secrets_readable_by_others),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_jsonc),
	        cmocka_unit_test(test_image_paths),
	        cmocka_unit_test(test_image_references),
	        cmocka_unit_test(test_instance_types),
	        cmocka_unit_test(test_class_fields),
	        cmocka_unit_test(test_durations_in_config),
	        cmocka_unit_test(test_berth_section),
	        cmocka_unit_test(test_wrangler_sections),
	        cmocka_unit_test(test_examples),
	        cmocka_unit_test(test_class_equal),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
