/*
 * toolstack/supervise.h — a supervisor process for a host's daemons or a guest runtime.
 *
 * What: sup_start() forks a detached supervisor that starts each child in
 * order (optionally inside a network namespace), waits until each reports
 * ready (--ready-fd) and only then starts the next; the caller returns once
 * all are ready or one failed (then everything started is stopped and the
 * reason is returned). Afterwards the supervisor reaps its children: a child
 * that dies while not asked to stop is recorded in <dir>/status
 * (state=degraded, <name>.state=...) and appended to <dir>/events.log — it is
 * reported, never silently ignored, and not restarted (a restarted xenstored
 * or hypervisor would have lost every domain). sup_stop() asks the supervisor
 * to stop the children in reverse order (SIGTERM, then SIGKILL after a grace
 * period) and waits for it.
 * Files in <dir>: supervisor.pid, status (key=value), events.log, <name>.log.
 * Thread: call from the single-threaded CLI.
 * Errors: 0 / -errno; a human-readable reason in `err` on failure.
 */
#ifndef PVNET_TOOLSTACK_SUPERVISE_H
#define PVNET_TOOLSTACK_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>

#define SUP_MAX_ARGS 40

struct sup_child {
	const char *name;            /* short name: xenstored, hypervisor, netback, guest */
	const char *argv[SUP_MAX_ARGS]; /* argv[0] = program path; NULL-terminated */
	const char *netns;           /* NULL = stay in the caller's namespace */
	bool ready_fd;               /* append --ready-fd N and wait for "ready" */
};

int sup_start(const char *dir, struct sup_child *children, unsigned n, int ready_timeout_ms,
	      char *err, size_t errlen);
/* 0 if stopped (or not running), -ETIMEDOUT if it would not stop. */
int sup_stop(const char *dir, int timeout_ms);
/* Supervisor pid if alive, else 0. */
int sup_pid(const char *dir);
/* "running", "degraded: <why>", or "stopped" into buf. */
void sup_state(const char *dir, char *buf, size_t len);

#endif
