#include "common/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

void pv_daemon_opts_init(struct pv_daemon_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->log_level = -1;
	o->ready_fd = -1;
	o->notify_fd = -1;
}

int pv_daemon_opt(struct pv_daemon_opts *o, int opt, const char *arg)
{
	unsigned v;

	switch (opt) {
	case 0x1001: o->rundir = arg; return 1;
	case 0x1002: o->log_file = arg; return 1;
	case 0x1003:
		o->log_level = pv_log_parse_level(arg);
		if (o->log_level < 0) {
			fprintf(stderr, "unknown log level '%s' (err, warn, info, debug)\n", arg);
			return -1;
		}
		return 1;
	case 0x1004: o->daemonize = true; return 1;
	case 0x1005: o->daemonize = false; return 1;
	case 0x1006: o->pidfile = arg; return 1;
	case 0x1007:
		if (pv_parse_uint(arg, 1 << 20, &v) < 0) {
			fprintf(stderr, "--ready-fd needs a file descriptor number\n");
			return -1;
		}
		o->ready_fd = (int)v;
		return 1;
	}
	return 0;
}

int pv_daemon_start(struct pv_daemon_opts *o, const char *prog)
{
	int r;

	pv_log_init(prog);
	if (o->log_level >= 0)
		pv_log_set_level((enum pv_log_level)o->log_level);
	if (o->log_file && (r = pv_log_set_file(o->log_file)) < 0) {
		fprintf(stderr, "%s: cannot open log file %s: %s\n", prog, o->log_file, strerror(-r));
		return r;
	}
	if (o->rundir && (r = pv_mkdir_p(o->rundir, 0755)) < 0) {
		fprintf(stderr, "%s: cannot create run directory %s: %s\n", prog, o->rundir, strerror(-r));
		return r;
	}
	if (o->daemonize) {
		int p[2];
		pid_t pid;
		char c;

		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid > 0) {
			close(p[1]);
			/* Exit 0 once the child says it is ready; 1 if it dies. */
			exit(read(p[0], &c, 1) == 1 ? 0 : 1);
		}
		close(p[0]);
		o->notify_fd = p[1];
		if (setsid() < 0)
			return -errno;
		if (chdir("/") < 0)
			return -errno;
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			if (o->log_file)
				dup2(devnull, 2);
			if (devnull > 2)
				close(devnull);
		}
	}
	if (o->pidfile) {
		char buf[32];
		int fd = open(o->pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int n;
		if (fd < 0)
			return -errno;
		n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
		r = (int)pv_write_all(fd, buf, (size_t)n);
		close(fd);
		if (r < 0)
			return r;
	}
	return 0;
}

int pv_daemon_signalfd(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -EINVAL;
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

void pv_daemon_ready(struct pv_daemon_opts *o)
{
	if (o->notify_fd >= 0) {
		(void)pv_write_all(o->notify_fd, "r", 1);
		close(o->notify_fd);
		o->notify_fd = -1;
	}
	if (o->ready_fd >= 0) {
		(void)pv_write_all(o->ready_fd, "ready\n", 6);
		close(o->ready_fd);
		o->ready_fd = -1;
	}
}

void pv_daemon_stop(struct pv_daemon_opts *o)
{
	if (o->pidfile)
		unlink(o->pidfile);
}
