/*
 * toolstack/cli.h — what every `pvnet` verb shares.
 *
 * What: the CLI context (state root, where the pvnet programs are, output
 * mode), the verb table entry type, the one way to fail (one clear line on
 * stderr, non-zero exit), and small helpers: running commands (ip, ...),
 * key=value state files, name validation, the mutation lock.
 * Thread: the CLI is single-threaded.
 * Errors: helpers return 0 / -errno and print nothing; verbs return the exit
 * status (0 ok, 1 error, 2 usage) and are the only code that prints.
 * Ownership: strings returned through out-parameters belong to the caller.
 */
#ifndef PVNET_TOOLSTACK_CLI_H
#define PVNET_TOOLSTACK_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CLI_DEFAULT_ROOT "/run/pvnet"
#define CLI_NAME_MAX 12   /* netns/veth names are built from it (IFNAMSIZ) */

struct cli {
	char root[256];     /* state root: $PVNET_ROOT or /run/pvnet */
	char bindir[256];   /* where pvnet-* programs live (next to pvnet) */
	bool json;
	bool quiet;
	int lockfd;
};

struct cli_verb {
	const char *name;
	int (*run)(struct cli *c, int argc, char **argv);
	const char *args;
	const char *help;
};

/* Print "pvnet: <message>" to stderr; returns 1 (the exit status). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a usage line for `verb`; returns 2. */
int cli_usage(const struct cli_verb *v);
/* Progress line on stdout unless quiet. */
void cli_note(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Take the root's lock for a mutating verb (blocks up to 30 s). */
int cli_lock(struct cli *c);
void cli_unlock(struct cli *c);

/* Names: 1..CLI_NAME_MAX chars of [a-zA-Z0-9_-], starting with a letter. */
bool cli_valid_name(const char *name);

/* "<root>/<fmt...>" into buf. */
int cli_path(const struct cli *c, char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Full path of a pvnet program (pvnet-xenstored ...). */
int cli_prog(const struct cli *c, const char *prog, char *buf, size_t len);

/* Run argv (NULL-terminated); returns the exit status (or -errno). With
 * `err`, stderr+stdout are captured there (NUL-terminated, truncated). */
int cli_run(char *const argv[], char *err, size_t errlen);
/* Convenience: cli_run with a printf-built argument list is deliberately not
 * offered: build argv arrays, no shell quoting. */
int cli_runv(char *err, size_t errlen, const char *arg0, ...) __attribute__((sentinel));

/* key=value state files: atomic write (tmp + rename), lookup by key. */
int cli_kv_write(const char *path, const char *const *kv, unsigned n); /* kv: k0,v0,k1,v1.. */
int cli_kv_get(const char *path, const char *key, char *val, size_t len);
int cli_kv_set(const char *path, const char *key, const char *val);
/* rm -rf `path` (state directories only). */
int cli_rmtree(const char *path);
bool cli_exists(const char *path);
/* From /proc/PID/stat: the state letter (R, S, Z...) and the start time in
 * clock ticks since boot (with the pid, it names one process for good).
 * 0 or -errno. */
int cli_proc_stat(pid_t pid, char *state, unsigned long long *starttime);
bool cli_pid_alive(pid_t pid);

#endif
