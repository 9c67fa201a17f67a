/* probe: shared helpers of the in-container test probe (see README.md). */
#ifndef BERTH_TESTS_PROBE_H
#define BERTH_TESTS_PROBE_H

/* Exit code when the probe itself could not run (bad usage, fork failed),
 * as opposed to a probe that ran and reported a refusal. */
#define PROBE_EXIT_USAGE 2

/* The symbolic name of an errno value ("EPERM"), or "errno-N" for one the
 * table does not know. The result stays valid until the next call. */
const char *probe_errno_name(int err);

/* The symbolic name of a signal without its SIG prefix ("TERM"), or NULL. */
const char *probe_signal_name(int sig);

/* `probe syscall NAME|all`. */
int probe_syscall_main(int argc, char **argv);

#endif
