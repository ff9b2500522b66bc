#include "guest/ifwatch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "netif/link.h"

#define TRACEFS "/sys/kernel/tracing"
#define TRACEFS_MAGIC_ 0x74726163
#define MAX_FOLLOW 16
#define MAX_IOCTLS 64
#define SIOCSIFFLAGS_ "0x8914"

struct ioctl_rec {
	int pid;
	uint64_t t_ns;
	bool ours;        /* in our netns (decided when read) */
};

struct gr_ifwatch {
	struct nif_linkmon *mon;
	char inst[256];           /* instance dir, "" if none */
	int pipe_fd;              /* trace_pipe, -1 if none */
	char why[160];
	char netns[64];           /* readlink /proc/self/ns/net */
	struct { int ifindex; bool up; } f[MAX_FOLLOW];
	unsigned nf;
	struct ioctl_rec rec[MAX_IOCTLS];
	unsigned nrec;
	char partial[512];        /* an unfinished trace_pipe line */
	size_t plen;
};

static int write_file(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pv_write_all(fd, val, strlen(val)) < 0)
		r = -errno;
	close(fd);
	return r;
}

static bool is_tracefs(const char *path)
{
	struct statfs s;
	return statfs(path, &s) == 0 && s.f_type == TRACEFS_MAGIC_;
}

static void remove_instance(const char *inst)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/events/syscalls/sys_enter_ioctl", inst);
	write_file(p, "enable", "0");
	if (rmdir(inst) < 0 && errno != ENOENT)
		pv_warn("ifwatch: cannot remove tracefs instance %s: %s", inst, strerror(errno));
}

/* Instances left by a pvnet-guest that died without cleaning up. */
static void remove_stale_instances(void)
{
	DIR *dir = opendir(TRACEFS "/instances");
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		int pid;
		char inst[512];
		if (sscanf(e->d_name, "pvnet-%d-", &pid) != 1 || pid <= 0 || strlen(e->d_name) > 200)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(inst, sizeof(inst), TRACEFS "/instances/%.200s", e->d_name);
		remove_instance(inst);
	}
	closedir(dir);
}

static int setup_tracefs(struct gr_ifwatch *w, const char *tag)
{
	char ev[PATH_MAX], p[PATH_MAX];
	int r;

	if (!is_tracefs(TRACEFS)) {
		if (mount("nodev", TRACEFS, "tracefs", 0, NULL) < 0) {
			snprintf(w->why, sizeof(w->why), "cannot mount tracefs at " TRACEFS ": %s",
				 strerror(errno));
			return -errno;
		}
	}
	remove_stale_instances();
	snprintf(w->inst, sizeof(w->inst), TRACEFS "/instances/pvnet-%d-%.32s", (int)getpid(),
		 tag && *tag ? tag : "guest");
	if (mkdir(w->inst, 0700) < 0 && errno != EEXIST) {
		snprintf(w->why, sizeof(w->why), "cannot create tracefs instance: %s", strerror(errno));
		w->inst[0] = '\0';
		return -errno;
	}
	snprintf(ev, sizeof(ev), "%s/events/syscalls/sys_enter_ioctl", w->inst);
	if ((r = write_file(w->inst, "trace_clock", "mono")) < 0 ||
	    (r = write_file(ev, "filter", "cmd == " SIOCSIFFLAGS_)) < 0 ||
	    (r = write_file(ev, "enable", "1")) < 0) {
		snprintf(w->why, sizeof(w->why), "cannot enable the sys_enter_ioctl tracepoint: %s",
			 strerror(-r));
		remove_instance(w->inst);
		w->inst[0] = '\0';
		return r;
	}
	snprintf(p, sizeof(p), "%s/trace_pipe", w->inst);
	w->pipe_fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (w->pipe_fd < 0) {
		snprintf(w->why, sizeof(w->why), "cannot open trace_pipe: %s", strerror(errno));
		remove_instance(w->inst);
		w->inst[0] = '\0';
		return -errno;
	}
	return 0;
}

struct gr_ifwatch *gr_ifwatch_open(const char *tag)
{
	struct gr_ifwatch *w = calloc(1, sizeof(*w));
	ssize_t n;

	if (!w)
		return NULL;
	w->pipe_fd = -1;
	w->mon = nif_linkmon_open();
	if (!w->mon) {
		int e = errno;
		free(w);
		errno = e;
		return NULL;
	}
	n = readlink("/proc/self/ns/net", w->netns, sizeof(w->netns) - 1);
	w->netns[n > 0 ? n : 0] = '\0';
	if (setup_tracefs(w, tag) < 0)
		pv_warn("ifwatch: open/close method will be 'unknown': %s", w->why);
	return w;
}

void gr_ifwatch_close(struct gr_ifwatch *w)
{
	if (!w)
		return;
	if (w->pipe_fd >= 0)
		close(w->pipe_fd);
	if (w->inst[0])
		remove_instance(w->inst);
	nif_linkmon_close(w->mon);
	free(w);
}

int gr_ifwatch_fd(const struct gr_ifwatch *w) { return nif_linkmon_fd(w->mon); }

const char *gr_ifwatch_why(const struct gr_ifwatch *w)
{
	return w->pipe_fd >= 0 ? NULL : w->why;
}

int gr_ifwatch_follow(struct gr_ifwatch *w, int ifindex, bool created)
{
	struct nif_link_info li = { 0 };
	int r;

	if (w->nf == MAX_FOLLOW)
		return -ENOSPC;
	if (!created && (r = nif_link_get(ifindex, &li)) < 0)
		return r;
	w->f[w->nf].ifindex = ifindex;
	w->f[w->nf].up = (li.flags & IFF_UP) != 0;
	w->nf++;
	return 0;
}

void gr_ifwatch_unfollow(struct gr_ifwatch *w, int ifindex)
{
	for (unsigned i = 0; i < w->nf; i++)
		if (w->f[i].ifindex == ifindex) {
			w->f[i] = w->f[--w->nf];
			return;
		}
}

int gr_ifwatch_parse_line(const char *line, int *pid, uint64_t *t_ns)
{
	const char *br = strstr(line, " [");
	const char *p, *q;
	char *end;
	long v;

	if (!br || !strstr(line, "sys_ioctl"))
		return -EINVAL;
	/* "<comm>-<pid>" ends just before the spaces in front of "[cpu]". */
	p = br;
	while (p > line && p[-1] == ' ')
		p--;
	q = p;
	while (q > line && q[-1] >= '0' && q[-1] <= '9')
		q--;
	if (q == p || q == line || q[-1] != '-')
		return -EINVAL;
	v = strtol(q, NULL, 10);
	if (v <= 0 || v > INT_MAX)
		return -EINVAL;
	/* The timestamp is the first token after "]" that ends with ':'. */
	p = strchr(br, ']');
	if (!p)
		return -EINVAL;
	for (p++; *p;) {
		double t;
		while (*p == ' ')
			p++;
		q = p;
		while (*q && *q != ' ')
			q++;
		if (q > p && q[-1] == ':') {
			t = strtod(p, &end);
			/* Seconds since boot: finite and sane (NaN fails
			 * too), or the conversion below is undefined. */
			if (end != q - 1 || !(t >= 0 && t < 1e9))
				return -EINVAL;
			*pid = (int)v;
			*t_ns = (uint64_t)(t * 1e9 + 0.5);
			return 0;
		}
		p = q;
	}
	return -EINVAL;
}

/* Same network namespace as us? A process that is gone counts as "maybe". */
static bool pid_in_our_netns(struct gr_ifwatch *w, int pid, bool *gone)
{
	char path[64], ns[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	n = readlink(path, ns, sizeof(ns) - 1);
	if (n < 0) {
		*gone = true;
		return false;
	}
	*gone = false;
	ns[n] = '\0';
	return strcmp(ns, w->netns) == 0;
}

static void add_rec(struct gr_ifwatch *w, int pid, uint64_t t_ns)
{
	bool gone;
	bool ours = pid_in_our_netns(w, pid, &gone);

	if (!ours && !gone)
		return;   /* another namespace's ifconfig */
	if (w->nrec == MAX_IOCTLS) {
		memmove(w->rec, w->rec + 1, sizeof(w->rec[0]) * (MAX_IOCTLS - 1));
		w->nrec--;
	}
	w->rec[w->nrec++] = (struct ioctl_rec){ .pid = pid, .t_ns = t_ns, .ours = ours };
}

static void drain_pipe(struct gr_ifwatch *w)
{
	char buf[4096];
	ssize_t n;

	if (w->pipe_fd < 0)
		return;
	while ((n = read(w->pipe_fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (w->plen < sizeof(w->partial) - 1)
					w->partial[w->plen++] = buf[i];
				continue;
			}
			w->partial[w->plen] = '\0';
			int pid;
			uint64_t t;
			if (gr_ifwatch_parse_line(w->partial, &pid, &t) == 0)
				add_rec(w, pid, t);
			w->plen = 0;
		}
	}
}

/* Take the best ioctl record for a change seen at `now`: one from our netns
 * first, else one whose process is gone (time only). */
static enum gr_how classify(struct gr_ifwatch *w, uint64_t now)
{
	uint64_t window = (uint64_t)GR_IFWATCH_WINDOW_MS * 1000000u;
	int pick = -1;

	if (w->pipe_fd < 0)
		return GR_HOW_UNKNOWN;
	drain_pipe(w);
	for (unsigned i = 0; i < w->nrec; i++) {
		if (w->rec[i].t_ns > now || now - w->rec[i].t_ns > window)
			continue;
		if (w->rec[i].ours) {
			pick = (int)i;
			break;
		}
		if (pick < 0)
			pick = (int)i;
	}
	/* Forget records too old to explain anything. */
	unsigned k = 0;
	for (unsigned i = 0; i < w->nrec; i++)
		if ((int)i != pick && w->rec[i].t_ns <= now && now - w->rec[i].t_ns <= window)
			w->rec[k++] = w->rec[i];
	w->nrec = k;
	return pick >= 0 ? GR_HOW_IOCTL : GR_HOW_NETLINK;
}

struct read_ctx {
	struct gr_ifwatch *w;
	gr_ifwatch_cb cb;
	void *arg;
	int n;
};

static void on_link(void *arg, int ifindex, unsigned flags, unsigned change, bool deleted)
{
	struct read_ctx *c = arg;
	struct gr_ifwatch *w = c->w;
	(void)change;

	for (unsigned i = 0; i < w->nf; i++) {
		bool up = !deleted && (flags & IFF_UP);
		if (w->f[i].ifindex != ifindex || w->f[i].up == up)
			continue;
		w->f[i].up = up;
		c->cb(c->arg, ifindex, up, classify(w, pv_now_ns()));
		c->n++;
	}
}

int gr_ifwatch_read(struct gr_ifwatch *w, gr_ifwatch_cb cb, void *arg)
{
	struct read_ctx c = { .w = w, .cb = cb, .arg = arg };
	int r = nif_linkmon_read(w->mon, on_link, &c);

	if (r == -ENOBUFS) {
		/* Events were lost: re-read the state of what we follow. */
		for (unsigned i = 0; i < w->nf; i++) {
			struct nif_link_info li;
			if (nif_link_get(w->f[i].ifindex, &li) == 0)
				on_link(&c, li.ifindex, li.flags, IFF_UP, false);
		}
		r = 0;
	}
	return r < 0 ? r : c.n;
}
