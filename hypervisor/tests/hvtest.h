/*
 * hypervisor/tests/hvtest.h — helpers for the multi-process tests and the
 * benchmark: start/stop a pvnet-hypervisor in a temporary run directory,
 * run a function in a child process (a "domain"), pass small values between
 * processes, and check whether touching an address faults.
 * Children report failures with CHECK(), which prints and exits 1 (cmocka's
 * asserts belong to the parent).
 * Thread: single-threaded test programs. Errors: helpers abort the test.
 */
#ifndef PVNET_HYPERVISOR_TESTS_HVTEST_H
#define PVNET_HYPERVISOR_TESTS_HVTEST_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed (errno %d)\n", \
	__FILE__, __LINE__, #c, errno); _exit(1); } } while (0)
#define CHECK_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); if (a_ != b_) { \
	fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
	#a, a_, #b, b_); _exit(1); } } while (0)

struct hvt_daemon {
	pid_t pid;
	char dir[64];
	char sock[96];
};

static inline __attribute__((noreturn)) void hvt_fail(const char *what)
{
	fprintf(stderr, "hvtest: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Start build/pvnet-hypervisor in a new temporary rundir; wait until ready. */
static inline void hvt_start(struct hvt_daemon *d, const char *extra_arg)
{
	const char *build = getenv("PVNET_BUILD");
	char prog[512];
	int p[2];
	char buf[8];
	struct pollfd pfd;

	snprintf(d->dir, sizeof(d->dir), "/tmp/pvhv-test.XXXXXX");
	if (!mkdtemp(d->dir))
		hvt_fail("mkdtemp");
	snprintf(d->sock, sizeof(d->sock), "%s/socket", d->dir);
	snprintf(prog, sizeof(prog), "%s/pvnet-hypervisor", build ? build : "build");
	if (pipe(p) < 0)
		hvt_fail("pipe");
	d->pid = fork();
	if (d->pid < 0)
		hvt_fail("fork");
	if (d->pid == 0) {
		/* Never outlive the test, even if it is killed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(p[1], 3);
		execl(prog, prog, "--rundir", d->dir, "--ready-fd", "3", "--log-level", "warn",
		      extra_arg, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	if (poll(&pfd, 1, 20000) != 1 || read(p[0], buf, sizeof(buf)) <= 0)
		hvt_fail("daemon did not get ready");
	close(p[0]);
}

/* Exit status of a child: its code, or 128 + signal. */
static inline int hvt_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* SIGTERM the daemon; returns its exit status (0 = clean stop). */
static inline int hvt_stop(struct hvt_daemon *d)
{
	char cmd[128];
	int st;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	st = hvt_wait(d->pid);
	d->pid = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "hvtest: could not remove %s\n", d->dir);
	return st;
}

/* Run fn(arg) in a child (alarm: 60 s); returns its pid. */
static inline pid_t hvt_fork(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		hvt_fail("fork");
	if (pid == 0) {
		alarm(60);
		_exit(fn(arg));
	}
	return pid;
}

/* A pair of connected sockets to pass 32-bit values between processes. */
static inline void hvt_pipe(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		hvt_fail("socketpair");
}

static inline void hvt_put(int fd, uint32_t v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		hvt_fail("hvt_put");
}

static inline uint32_t hvt_get(int fd)
{
	uint32_t v;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 30000) != 1 || read(fd, &v, sizeof(v)) != sizeof(v))
		hvt_fail("hvt_get");
	return v;
}

/* Does reading (or writing) `addr` fault? Asked of the kernel through a
 * pipe (EFAULT), so neither signals nor sanitizers get involved. */
static inline bool hvt_faults(volatile uint8_t *addr, bool for_write)
{
	int p[2];
	char c = 0x5a;
	bool f;

	if (pipe(p) < 0)
		hvt_fail("pipe");
	if (for_write) {
		if (write(p[1], &c, 1) != 1)
			hvt_fail("pipe write");
		f = read(p[0], (void *)addr, 1) < 0 && errno == EFAULT;
	} else {
		f = write(p[1], (const void *)addr, 1) < 0 && errno == EFAULT;
	}
	close(p[0]);
	close(p[1]);
	return f;
}

#endif
