/*
 * common/daemon.h — what every pvnet daemon does the same way.
 *
 * What: the shared command-line options (--rundir, --log-file, --log-level,
 * --daemon, --pidfile, --ready-fd), logging set-up, daemonising, a signalfd
 * for SIGTERM/SIGINT/SIGHUP, and the "ready" handshake.
 * With --daemon, pv_daemon_start() forks; the parent exits 0 only once the
 * child calls pv_daemon_ready() (so the sockets exist when the command
 * returns), or 1 if the child dies first. --ready-fd N: write "ready\n" to fd N
 * and close it, for supervisors (the toolstack) that start us in foreground.
 * Thread: call from main() before starting threads.
 * Errors: 0 or -errno; option errors are printed to stderr (user-facing).
 */
#ifndef PVNET_COMMON_DAEMON_H
#define PVNET_COMMON_DAEMON_H

#include <getopt.h>
#include <stdbool.h>

struct pv_daemon_opts {
	const char *rundir;
	const char *log_file;
	const char *pidfile;
	int log_level;     /* enum pv_log_level, -1 = default (info) */
	bool daemonize;
	int ready_fd;      /* -1 if none */
	int notify_fd;     /* internal: pipe to the parent when daemonised */
};

/* Long options shared by all daemons; splice into your option table. */
#define PV_DAEMON_LONGOPTS \
	{ "rundir",    required_argument, 0, 0x1001 }, \
	{ "log-file",  required_argument, 0, 0x1002 }, \
	{ "log-level", required_argument, 0, 0x1003 }, \
	{ "daemon",    no_argument,       0, 0x1004 }, \
	{ "foreground", no_argument,      0, 0x1005 }, \
	{ "pidfile",   required_argument, 0, 0x1006 }, \
	{ "ready-fd",  required_argument, 0, 0x1007 }

#define PV_DAEMON_HELP \
	"  --rundir DIR         run directory for sockets and state (required)\n" \
	"  --log-file FILE      append log lines to FILE instead of stderr\n" \
	"  --log-level LEVEL    err, warn, info (default) or debug\n" \
	"  --daemon             detach; return once the daemon is ready\n" \
	"  --foreground         stay in the foreground (default)\n" \
	"  --pidfile FILE       write the daemon's pid to FILE\n" \
	"  --ready-fd N         write \"ready\\n\" to fd N once serving, then close it\n"

void pv_daemon_opts_init(struct pv_daemon_opts *o);
/* 1 = consumed, 0 = not a common option, -1 = bad value (message printed). */
int pv_daemon_opt(struct pv_daemon_opts *o, int opt, const char *arg);
/* Logging, rundir creation, fork if --daemon, pidfile. 0 or -errno. */
int pv_daemon_start(struct pv_daemon_opts *o, const char *prog);
/* Block SIGTERM/SIGINT/SIGHUP, ignore SIGPIPE; return a signalfd or -errno. */
int pv_daemon_signalfd(void);
/* Tell the parent/supervisor we are serving. */
void pv_daemon_ready(struct pv_daemon_opts *o);
/* Remove the pidfile. */
void pv_daemon_stop(struct pv_daemon_opts *o);

#endif
