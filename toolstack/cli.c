#include "toolstack/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("pvnet: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_usage(const struct cli_verb *v)
{
	fprintf(stderr, "usage: pvnet %s %s\n  %s\n", v->name, v->args, v->help);
	return 2;
}

void cli_note(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	if (c->quiet)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

int cli_lock(struct cli *c)
{
	char path[512];
	int fd, r;

	if (c->lockfd >= 0)  /* already ours (verbs called from verbs) */
		return 0;
	if ((r = pv_mkdir_p(c->root, 0755)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/lock", c->root);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (int i = 0; i < 3000; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			c->lockfd = fd;
			return 0;
		}
		if (errno != EWOULDBLOCK)
			break;
		pv_sleep_ns(10000000);
	}
	r = -errno;
	close(fd);
	return r ? r : -ETIMEDOUT;
}

void cli_unlock(struct cli *c)
{
	if (c->lockfd >= 0) {
		close(c->lockfd);
		c->lockfd = -1;
	}
}

bool cli_valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > CLI_NAME_MAX)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

int cli_path(const struct cli *c, char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(buf, len, "%s/", c->root), m;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	m = vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return (m < 0 || (size_t)(n + m) >= len) ? -ENAMETOOLONG : 0;
}

int cli_prog(const struct cli *c, const char *prog, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", c->bindir, prog);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return access(buf, X_OK) == 0 ? 0 : -ENOENT;
}

int cli_run(char *const argv[], char *err, size_t errlen)
{
	int p[2] = { -1, -1 }, status;
	pid_t pid;

	if (err && pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (err) {
			dup2(p[1], 1);
			dup2(p[1], 2);
		} else if (devnull >= 0) {
			dup2(devnull, 1);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (err) {
		size_t got = 0;
		ssize_t n;
		close(p[1]);
		while ((n = read(p[0], err + got, errlen - 1 - got)) > 0 && got + (size_t)n < errlen - 1)
			got += (size_t)n;
		if (n > 0)
			got += (size_t)n;
		err[got < errlen ? got : errlen - 1] = '\0';
		while (got && (err[got - 1] == '\n' || err[got - 1] == ' '))
			err[--got] = '\0';
		/* Drain the rest so the child never blocks on a full pipe. */
		char sink[256];
		while (read(p[0], sink, sizeof(sink)) > 0)
			;
		close(p[0]);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int cli_runv(char *err, size_t errlen, const char *arg0, ...)
{
	char *argv[64];
	va_list ap;
	unsigned n = 0;

	argv[n++] = (char *)arg0;
	va_start(ap, arg0);
	while (n < 63 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return cli_run(argv, err, errlen);
}

int cli_kv_write(const char *path, const char *const *kv, unsigned n)
{
	char tmp[600];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	for (unsigned i = 0; i + 1 < n * 2; i += 2)
		fprintf(f, "%s=%s\n", kv[i], kv[i + 1]);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}

int cli_kv_get(const char *path, const char *key, char *val, size_t len)
{
	char line[1024];
	size_t kl = strlen(key);
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, kl) && line[kl] == '=') {
			char *v = line + kl + 1;
			v[strcspn(v, "\n")] = '\0';
			pv_strlcpy(val, v, len);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}

int cli_kv_set(const char *path, const char *key, const char *val)
{
	char lines[64][1024], tmp[600];
	unsigned n = 0;
	size_t kl = strlen(key);
	bool done = false;
	FILE *f = fopen(path, "r");

	if (f) {
		while (n < 64 && fgets(lines[n], sizeof(lines[n]), f))
			n++;
		fclose(f);
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		if (!strncmp(lines[i], key, kl) && lines[i][kl] == '=') {
			fprintf(f, "%s=%s\n", key, val);
			done = true;
		} else {
			fputs(lines[i], f);
		}
	}
	if (!done)
		fprintf(f, "%s=%s\n", key, val);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}

int cli_rmtree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char sub[1024];

	if (!d)
		return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			cli_rmtree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	return rmdir(path) == 0 ? 0 : -errno;
}

bool cli_exists(const char *path) { return access(path, F_OK) == 0; }

int cli_proc_stat(pid_t pid, char *state, unsigned long long *starttime)
{
	char path[64], buf[1024], *p, *end;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = pv_read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* Field 2, the command name, is in parentheses and may hold any byte:
	 * the fields are counted from its last ')'. */
	if (!(p = strrchr(buf, ')')) || p[1] != ' ' || !p[2])
		return -EIO;
	*state = p[2];
	p++;                                   /* the space before field 3 */
	for (int field = 3; field < 22; field++)
		if (!(p = strchr(p + 1, ' ')))
			return -EIO;
	errno = 0;
	*starttime = strtoull(p + 1, &end, 10);
	return errno || end == p + 1 ? -EIO : 0;
}

bool cli_pid_alive(pid_t pid)
{
	unsigned long long start;
	char state;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return false;
	/* A zombie is dead: its parent (init, for a daemon) has not reaped it
	 * yet, or never will (a container's pid 1 that does not reap). */
	return cli_proc_stat(pid, &state, &start) < 0 || (state != 'Z' && state != 'X');
}
