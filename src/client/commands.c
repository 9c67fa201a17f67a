/* SPDX-License-Identifier: Apache-2.0 */
/* The client's commands, their help, and how a failure or a bad command line is told. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "berth/util.h"
#include "client/client.h"

#define CONNECTION_HELP                                                                        \
	"\n"                                                                                   \
	"Connection (every command):\n"                                                        \
	"      --socket PATH       berthd's unix socket ($BERTH_SOCKET; default\n"             \
	"                          " BERTH_CLIENT_DEFAULT_SOCKET ")\n"                         \
	"      --host HOST:PORT    berthd's API on TCP, or its http(s):// URL ($BERTH_HOST)\n" \
	"      --token-file FILE   the bearer token for TCP, read from FILE ($BERTH_TOKEN)\n"  \
	"  -h, --help              show this help\n"

static const struct berth_client_command commands[] = {
        {"ps", "list instances", //
         "usage: berth ps [--class CLASS] [--all] [--json]\n"
         "\n"
         "List instances: their class, name, state, when it last changed, and how\n"
         "their last container exited. Without --all, only active ones (running,\n"
         "healthy or stopping).\n"
         "\n"
         "Options:\n"
         "      --class CLASS       only instances of CLASS\n"
         "  -a, --all               every instance berthd has a record of\n"
         "      --json              the API's records, {\"instances\": [...]}\n" CONNECTION_HELP,
         berth_client_cmd_ps},
        {"inspect", "show an instance's record", //
         "usage: berth inspect CLASS/NAME\n"
         "\n"
         "Print the record berthd keeps of the instance, as indented JSON: its id,\n"
         "state, last exit, stop reason and creation time. Every name exists: one\n"
         "that never ran is shown stopped.\n" CONNECTION_HELP,
         berth_client_cmd_inspect},
        {"state", "show an instance's state", //
         "usage: berth state [--json] CLASS/NAME\n"
         "\n"
         "Print the instance's state (stopped, running, healthy, stopping or\n"
         "stopped_with_code with its exit code) and when it was entered.\n"
         "\n"
         "Options:\n"
         "      --json              the API's answer, {\"status\", \"lastChange\", "
         "...}\n" CONNECTION_HELP,
         berth_client_cmd_state},
        {"start", "start an instance and wait until it is ready", //
         "usage: berth start [OPTIONS] CLASS/NAME [-- COMMAND [ARG...]]\n"
         "\n"
         "Start the instance (nothing happens if it runs already) and wait until\n"
         "its ports accept connections. Options apply to this container only; the\n"
         "class's configuration provides the rest. A COMMAND after `--` replaces\n"
         "the class's entrypoint.\n"
         "\n"
         "Options:\n"
         "  -e, --env KEY=VALUE     an environment variable (repeatable)\n"
         "  -l, --label KEY=VALUE   a label (repeatable)\n"
         "      --internet          allow outbound network access\n"
         "      --no-internet       deny it (default: the class's enableInternet)\n"
         "  -p, --port PORT         wait for PORT rather than the class's ports\n"
         "                          (repeatable)\n"
         "      --no-wait           answer once the container runs, without waiting\n"
         "                          for its ports\n"
         "      --json              print the instance's record\n" CONNECTION_HELP,
         berth_client_cmd_start},
        {"stop", "stop an instance", //
         "usage: berth stop [OPTIONS] CLASS/NAME\n"
         "\n"
         "Send the instance's container a signal (SIGTERM), then SIGKILL when the\n"
         "grace period ends, and wait until it has exited. The record stays.\n"
         "\n"
         "Options:\n"
         "  -s, --signal SIGNAL     the first signal, by name or number (default TERM)\n"
         "  -g, --grace DURATION    time before SIGKILL, e.g. 5s, 500ms, 1m (default:\n"
         "                          the class's stopGracePeriod)\n"
         "      --no-wait           return once the stop has begun\n"
         "      --json              print the instance's record\n" CONNECTION_HELP,
         berth_client_cmd_stop},
        {"destroy", "stop an instance and remove its container", //
         "usage: berth destroy [--json] CLASS/NAME\n"
         "\n"
         "Kill the instance's container at once, remove it and its writable layer,\n"
         "and reset the record to stopped (the record itself stays).\n"
         "\n"
         "Options:\n"
         "      --json              print the instance's record\n" CONNECTION_HELP,
         berth_client_cmd_destroy},
        {"renew", "keep an instance awake", //
         "usage: berth renew [--json] CLASS/NAME\n"
         "\n"
         "Count as activity: the instance's sleepAfter timer starts again. Fails\n"
         "when the instance has no running container.\n"
         "\n"
         "Options:\n"
         "      --json              print the instance's record\n" CONNECTION_HELP,
         berth_client_cmd_renew},
        {"logs", "print an instance's output", //
         "usage: berth logs [OPTIONS] CLASS/NAME\n"
         "\n"
         "Print what the instance's container wrote: its stdout to stdout and its\n"
         "stderr to stderr.\n"
         "\n"
         "Options:\n"
         "  -f, --follow            keep printing new output until Ctrl-C\n"
         "  -n, --tail N            only the last N lines\n"
         "  -t, --timestamps        prefix each line with its time (RFC 3339, "
         "UTC)\n" CONNECTION_HELP,
         berth_client_cmd_logs},
        {"events", "print lifecycle events", //
         "usage: berth events [OPTIONS]\n"
         "\n"
         "Print recorded events (start, ready, stop, exited, start_failed,\n"
         "destroyed), one a line: time, type, CLASS/NAME and details. With\n"
         "--follow, new events as they happen (from now on, or after --since).\n"
         "\n"
         "Options:\n"
         "      --class CLASS       only events of CLASS\n"
         "      --name NAME         only events of the instance CLASS/NAME (needs --class)\n"
         "      --since SEQ         only events after the one numbered SEQ\n"
         "  -f, --follow            keep printing new events until Ctrl-C\n"
         "      --json              each event as the API's JSON object, one a "
         "line\n" CONNECTION_HELP,
         berth_client_cmd_events},
        {"classes", "list container classes", //
         "usage: berth classes [--json]\n"
         "\n"
         "List the container classes berthd serves: image, instance type, port,\n"
         "sleepAfter and max_instances.\n"
         "\n"
         "Options:\n"
         "      --json              the API's answer, {\"classes\": [...]}\n" CONNECTION_HELP,
         berth_client_cmd_classes},
        {"exec", "run a command in an instance's container", //
         "usage: berth exec [OPTIONS] CLASS/NAME [--] COMMAND [ARG...]\n"
         "\n"
         "Run COMMAND in the instance's container (started if it sleeps), with the\n"
         "container's namespaces, user, capabilities and limits, without a shell.\n"
         "Its stdout and stderr are printed as they come, byte for byte, and berth\n"
         "exits with its exit status (127: not in the image, 126: cannot run). While\n"
         "it runs, the instance stays awake. Options end at CLASS/NAME.\n"
         "\n"
         "Options:\n"
         "  -e, --env KEY=VALUE     an environment variable (repeatable)\n"
         "  -w, --workdir DIR       where it runs (absolute; default /)\n"
         "  -i, --interactive       send berth's stdin to it: without -t read to its end\n"
         "                          first (up to 16 MiB); otherwise its stdin is empty\n"
         "  -t, --tty               on a terminal of the container's (a pty), over a\n"
         "                          WebSocket: with -i, berth's terminal is raw meanwhile\n"
         "                          and ^C reaches the command (berth exec -it APP/x sh)\n"
         "      --timeout DURATION  kill it, and whatever it started, after DURATION\n"
         "                          (e.g. 30s, 500ms; not with -t)\n" CONNECTION_HELP,
         berth_client_cmd_exec},
        {"cp", "copy a file into or out of an instance's container", //
         "usage: berth cp SRC DST\n"
         "\n"
         "Copy one file between here and an instance's container (started if it\n"
         "sleeps). One of SRC and DST is CLASS/NAME:/PATH, a path in the container;\n"
         "the other a local path, or `-` for stdin or stdout. The bytes are streamed\n"
         "both ways, so files of any size work.\n"
         "\n"
         "  berth cp ./notes.txt App/alice:/workspace/notes.txt    upload\n"
         "  berth cp App/alice:/workspace/out.bin .                download into a\n"
         "                                                         directory\n"
         "  tar c src | berth cp - App/alice:/tmp/src.tar          from stdin\n"
         "\n"
         "An existing directory as DST (or a path ending in `/`) receives the file\n"
         "under SRC's name, as cp does. An upload is named in the container only\n"
         "once it is whole, with the container user's ownership; an existing file\n"
         "keeps its mode. A download is written beside DST and renamed over it at\n"
         "the end: a failed one leaves nothing behind. Directories are refused.\n"
         "A local path with a colon in its first component is written ./a:b.\n" CONNECTION_HELP,
         berth_client_cmd_cp},
        {"ls", "list files in an instance's container", //
         "usage: berth ls [-a] [-R] [--json] CLASS/NAME[:PATH]\n"
         "\n"
         "List a directory of the instance's container (started if it sleeps):\n"
         "type, mode, size, modification time (UTC) and name, sorted by name.\n"
         "Without PATH, the sandbox's working directory (/workspace); a relative\n"
         "PATH is taken from there.\n"
         "\n"
         "Options:\n"
         "  -a, --all               include names that start with `.`\n"
         "  -R, --recursive         the directories below too (NAME is then the path\n"
         "                          below PATH)\n"
         "      --json              the API's answer, {\"files\": [...], "
         "\"count\"}\n" CONNECTION_HELP,
         berth_client_cmd_ls},
        {"proc", "start, list, follow and kill background processes", //
         "usage: berth proc start [OPTIONS] CLASS/NAME [--] COMMAND [ARG...]\n"
         "       berth proc ls CLASS/NAME\n"
         "       berth proc logs [-f] CLASS/NAME ID\n"
         "       berth proc kill [-s SIGNAL] CLASS/NAME ID\n"
         "       berth proc kill --all CLASS/NAME\n"
         "\n"
         "Background processes in an instance's container (the sandbox's processes):\n"
         "they run on after berth returns, keep the instance awake while they run, and\n"
         "their output is kept (16 MiB of each stream).\n"
         "\n"
         "start   Start COMMAND with its ARGs exactly as given (quoted for the\n"
         "        sandbox's shell; for shell syntax, give sh -c '...') and print its\n"
         "        id. Options end at CLASS/NAME.\n"
         "          -e, --env KEY=VALUE     an environment variable (repeatable)\n"
         "          -w, --workdir DIR       where it runs (absolute; default: the\n"
         "                                  sandbox's working directory, /workspace)\n"
         "              --id ID             its id (default proc-N)\n"
         "              --timeout DURATION  kill it, and its children, after DURATION\n"
         "              --json              print the API's answer\n"
         "ls      The instance's processes, oldest first: id, pid, status (running,\n"
         "        completed, failed, killed, error), exit code, command, start.\n"
         "        --json: the API's answer, {\"processes\": [...]}.\n"
         "logs    What it wrote so far, stdout to stdout and stderr to stderr. With\n"
         "        -f (--follow), and then what it writes until it exits; berth then\n"
         "        exits with its exit status (137 when it was killed).\n"
         "kill    Kill it and every process it started (SIGKILL), wait until it has\n"
         "        exited, and print its status. -s, --signal SIGNAL (a name or number)\n"
         "        other than KILL: send that to it and its process group instead, and\n"
         "        return at once (it may handle it). --all: kill every running process\n"
         "        of the instance.\n" CONNECTION_HELP,
         berth_client_cmd_proc},
};

void berth_client_list(FILE *f)
{
	fprintf(f, "usage: berth [CONNECTION OPTIONS] COMMAND [OPTIONS]\n\nCommands:\n");
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun `berth COMMAND --help` for the options of a command.\n");
}

const struct berth_client_command *berth_client_command_find(const char *name)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int berth_client_usage_error(const char *command, const char *fmt, ...)
{
	char msg[BERTH_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "berth: %s\n", msg);
	if (command != NULL)
		fprintf(stderr, "Run `berth %s --help` for its usage.\n", command);
	else
		fprintf(stderr, "Run `berth help` for the commands.\n");
	return BERTH_CLIENT_EXIT_USAGE;
}

int berth_client_help(const char *command)
{
	const struct berth_client_command *c = berth_client_command_find(command);

	if (c == NULL)
		return berth_client_usage_error(NULL, "unknown command `%s`", command);
	fputs(c->usage, stdout);
	return 0;
}

int berth_client_connect(const char *command, const struct berth_client_opts *o,
                         struct berth_client **c)
{
	berth_error_t err;
	int r = berth_client_open(o, c, &err);

	if (r == -EINVAL)
		return berth_client_usage_error(command, "%s", err.message);
	if (r < 0)
		return berth_client_fail(&err);
	return 0;
}

int berth_client_instance_operand(const char *command, int argc, char **argv, char **class_name,
                                  const char **name)
{
	berth_error_t err;

	if (optind >= argc)
		return berth_client_usage_error(command, "which instance? Give CLASS/NAME");
	if (optind + 1 < argc)
		return berth_client_usage_error(command, "unexpected argument `%s`",
		                                argv[optind + 1]);
	if (berth_client_parse_instance(argv[optind], class_name, name, &err) < 0)
		return berth_client_usage_error(command, "%s", err.message);
	return 0;
}

int berth_client_fail(const berth_error_t *err)
{
	fprintf(stderr, "berth: %s\n", err->message);
	return BERTH_CLIENT_EXIT_FAILED;
}
