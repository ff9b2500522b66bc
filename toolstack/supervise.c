#include "toolstack/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "toolstack/cli.h"

#define SUP_MAX_CHILDREN 8

struct sup {
	const char *dir;
	struct sup_child *ch;
	unsigned n;
	pid_t pid[SUP_MAX_CHILDREN];
	bool dead[SUP_MAX_CHILDREN];
};

static void sup_path(const struct sup *s, char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", s->dir, file);
}

static void sup_event(const struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sup_event(const struct sup *s, const char *fmt, ...)
{
	char path[512], ts[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	FILE *f;

	sup_path(s, path, sizeof(path), "events.log");
	f = fopen(path, "a");
	if (!f)
		return;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(f, "%s ", ts);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static void sup_set(const struct sup *s, const char *key, const char *val)
{
	char path[512];
	sup_path(s, path, sizeof(path), "status");
	cli_kv_set(path, key, val);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "stopped (status 0x%x)", status);
}

/* In the forked child: enter the namespace, send output to the log, exec. */
static void exec_child(const struct sup *s, const struct sup_child *c, int ready_w)
{
	char logp[512], fdarg[16];
	const char *argv[SUP_MAX_ARGS + 3];
	unsigned n = 0;
	int fd;

	if (c->netns) {
		char nsp[300];
		snprintf(nsp, sizeof(nsp), "/run/netns/%s", c->netns);
		fd = open(nsp, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			fprintf(stderr, "cannot enter network namespace %s: %s\n", c->netns, strerror(errno));
			_exit(126);
		}
		close(fd);
	}
	snprintf(logp, sizeof(logp), "%s/%s.log", s->dir, c->name);
	fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	while (n < SUP_MAX_ARGS && c->argv[n]) {
		argv[n] = c->argv[n];
		n++;
	}
	if (c->ready_fd) {
		snprintf(fdarg, sizeof(fdarg), "%d", ready_w);
		argv[n++] = "--ready-fd";
		argv[n++] = fdarg;
	}
	argv[n] = NULL;
	/* Restore default signal handling for the daemon. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], (char *const *)argv);
	fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void stop_children(struct sup *s, int grace_ms)
{
	for (int i = (int)s->n - 1; i >= 0; i--) {
		int status;
		if (s->pid[i] <= 0 || s->dead[i])
			continue;
		kill(s->pid[i], SIGTERM);
		for (int t = 0; t < grace_ms / 10; t++) {
			if (waitpid(s->pid[i], &status, WNOHANG) == s->pid[i]) {
				s->dead[i] = true;
				break;
			}
			pv_sleep_ns(10000000);
		}
		if (!s->dead[i]) {
			kill(s->pid[i], SIGKILL);
			waitpid(s->pid[i], &status, 0);
			s->dead[i] = true;
			sup_event(s, "%s did not stop within %d ms: killed", s->ch[i].name, grace_ms);
		}
	}
}

/* Start child i and wait for its "ready"; 0 or -1 with a reason. */
static int start_one(struct sup *s, unsigned i, int timeout_ms, char *err, size_t errlen)
{
	const struct sup_child *c = &s->ch[i];
	int p[2] = { -1, -1 }, status;
	char key[64], buf[16];

	if (c->ready_fd && pipe(p) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t me = getpid();
	s->pid[i] = fork();
	if (s->pid[i] < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (s->pid[i] == 0) {
		/* A daemon never outlives its supervisor (killed, or crashed):
		 * unsupervised, nobody would see it fail or stop it. */
		pv_die_with_parent(me, SIGTERM);
		if (c->ready_fd)
			close(p[0]);
		exec_child(s, c, p[1]);
	}
	snprintf(key, sizeof(key), "%s.pid", c->name);
	snprintf(buf, sizeof(buf), "%d", (int)s->pid[i]);
	sup_set(s, key, buf);
	snprintf(key, sizeof(key), "%s.state", c->name);
	sup_set(s, key, "starting");
	if (!c->ready_fd) {
		sup_set(s, key, "running");
		return 0;
	}
	close(p[1]);
	for (int waited = 0;; waited += 20) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int r = poll(&pfd, 1, 20);
		if (r > 0) {
			char msg[16];
			ssize_t n = read(p[0], msg, sizeof(msg));
			if (n > 0) {
				close(p[0]);
				sup_set(s, key, "running");
				return 0;
			}
			/* EOF without "ready": it died or closed the fd. */
		}
		if (waitpid(s->pid[i], &status, WNOHANG) == s->pid[i]) {
			char why[96];
			s->dead[i] = true;
			describe_status(status, why, sizeof(why));
			snprintf(err, errlen, "%s %s before it was ready (see %s/%s.log)", c->name, why, s->dir, c->name);
			close(p[0]);
			return -1;
		}
		if (waited >= timeout_ms) {
			snprintf(err, errlen, "%s not ready after %d ms (see %s/%s.log)", c->name, timeout_ms, s->dir, c->name);
			close(p[0]);
			return -1;
		}
	}
}

static void supervise_loop(struct sup *s, int sfd)
{
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));
		if (n != sizeof(si))
			continue;
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP) {
			stop_children(s, 5000);
			sup_set(s, "state", "stopped");
			sup_event(s, "stopped on request");
			return;
		}
		if (si.ssi_signo != SIGCHLD)
			continue;
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			for (unsigned i = 0; i < s->n; i++) {
				char why[96], key[64], val[160];
				if (s->pid[i] != pid || s->dead[i])
					continue;
				s->dead[i] = true;
				describe_status(status, why, sizeof(why));
				snprintf(key, sizeof(key), "%s.state", s->ch[i].name);
				sup_set(s, key, why);
				snprintf(val, sizeof(val), "degraded: %s %s", s->ch[i].name, why);
				sup_set(s, "state", val);
				sup_event(s, "%s (pid %d) %s", s->ch[i].name, (int)pid, why);
			}
		}
	}
}

int sup_start(const char *dir, struct sup_child *children, unsigned n, int ready_timeout_ms,
	      char *err, size_t errlen)
{
	int rep[2];
	pid_t pid;
	char msg[512];
	ssize_t got;
	int status;

	if (n == 0 || n > SUP_MAX_CHILDREN)
		return -EINVAL;
	if (pipe2(rep, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct sup s = { .dir = dir, .ch = children, .n = n };
		char path[512], buf[16];
		sigset_t set;
		int sfd;

		close(rep[0]);
		/* Keep nothing of the CLI's (its lock above all) but the report
		 * pipe, which becomes fd 3. */
		if (rep[1] != 3) {
			dup3(rep[1], 3, O_CLOEXEC);
			close(rep[1]);
			rep[1] = 3;
		}
		close_range(4, ~0U, 0);
		/* Detach from the CLI; a grandchild becomes the supervisor. */
		if (setsid() < 0 || (pid = fork()) < 0)
			_exit(1);
		if (pid > 0)
			_exit(0);
		sigemptyset(&set);
		sigaddset(&set, SIGCHLD);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		sigprocmask(SIG_BLOCK, &set, NULL);
		signal(SIGPIPE, SIG_IGN);
		sfd = signalfd(-1, &set, SFD_CLOEXEC);
		snprintf(path, sizeof(path), "%s/supervisor.pid", dir);
		snprintf(buf, sizeof(buf), "%d", (int)getpid());
		{
			char start[32] = "", state;
			unsigned long long st;
			if (cli_proc_stat(getpid(), &state, &st) == 0)
				snprintf(start, sizeof(start), "%llu", st);
			cli_kv_write(path, (const char *const[]){ "pid", buf, "start", start }, 2);
		}
		sup_set(&s, "state", "starting");
		for (unsigned i = 0; i < n; i++) {
			if (start_one(&s, i, ready_timeout_ms, msg, sizeof(msg)) < 0) {
				stop_children(&s, 2000);
				sup_set(&s, "state", "stopped");
				sup_event(&s, "start failed: %s", msg);
				(void)!write(rep[1], msg, strlen(msg));
				snprintf(path, sizeof(path), "%s/supervisor.pid", dir);
				unlink(path);
				_exit(1);
			}
		}
		sup_set(&s, "state", "running");
		sup_event(&s, "started");
		(void)!write(rep[1], "ok", 2);
		close(rep[1]);
		{
			int devnull = open("/dev/null", O_RDWR);
			if (devnull >= 0) {
				dup2(devnull, 0);
				dup2(devnull, 1);
				dup2(devnull, 2);
				close(devnull);
			}
		}
		supervise_loop(&s, sfd);
		snprintf(path, sizeof(path), "%s/supervisor.pid", dir);
		unlink(path);
		_exit(0);
	}
	close(rep[1]);
	waitpid(pid, &status, 0);
	got = pv_read_full(rep[0], msg, sizeof(msg) - 1);
	close(rep[0]);
	if (got == 2 && !memcmp(msg, "ok", 2))
		return 0;
	if (got <= 0)
		snprintf(err, errlen, "the supervisor died while starting");
	else {
		msg[got] = '\0';
		pv_strlcpy(err, msg, errlen);
	}
	return -EIO;
}

int sup_pid(const char *dir)
{
	char path[512], val[32];
	unsigned long long want, now;
	unsigned pid;
	char state;

	snprintf(path, sizeof(path), "%s/supervisor.pid", dir);
	if (cli_kv_get(path, "pid", val, sizeof(val)) < 0 || pv_parse_uint(val, 1u << 30, &pid) < 0)
		return 0;
	if (!cli_pid_alive((pid_t)pid))
		return 0;
	/* A supervisor killed without cleaning up leaves its pid behind, and
	 * the pid may since have gone to another process: it is ours only if
	 * it started when the file says. */
	if (cli_kv_get(path, "start", val, sizeof(val)) == 0 && val[0]) {
		char *end;
		errno = 0;
		want = strtoull(val, &end, 10);
		if (errno || *end || cli_proc_stat((pid_t)pid, &state, &now) < 0 || now != want)
			return 0;
	}
	return (int)pid;
}

int sup_stop(const char *dir, int timeout_ms)
{
	int pid = sup_pid(dir);

	if (!pid)
		return 0;
	kill(pid, SIGTERM);
	for (int t = 0; t < timeout_ms / 10; t++) {
		if (!cli_pid_alive(pid))
			return 0;
		pv_sleep_ns(10000000);
	}
	return -ETIMEDOUT;
}

void sup_state(const char *dir, char *buf, size_t len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/status", dir);
	if (cli_kv_get(path, "state", buf, len) < 0)
		pv_strlcpy(buf, "stopped", len);
	if (!sup_pid(dir) && strncmp(buf, "stopped", 7))
		pv_strlcpy(buf, "stopped (supervisor gone)", len);
}
