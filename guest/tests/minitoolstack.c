#include "guest/tests/minitoolstack.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>

#include "common/util.h"
#include "common/xen.h"
#include "hypervisor/hv.h"
#include "toolstack/domain.h"
#include "toolstack/tsx.h"

#define P(...) (snprintf(path, sizeof(path), __VA_ARGS__), path)

static const char *build_dir(void)
{
	const char *b = getenv("PVNET_BUILD");
	return b && *b ? b : "build";
}

/* fork/exec argv with --ready-fd; return once it wrote "ready". */
static pid_t spawn_ready(char *const argv[], const char *log)
{
	int p[2], n = 0;
	char fdarg[16], c;
	pid_t pid;
	char *args[64];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	while (argv[n] && n < 60) {
		args[n] = argv[n];
		n++;
	}
	snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
	args[n++] = "--ready-fd";
	args[n++] = fdarg;
	args[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fcntl(p[1], F_SETFD, 0);
		execv(args[0], args);
		_exit(127);
	}
	close(p[1]);
	n = (int)read(p[0], &c, 1);
	close(p[0]);
	if (n != 1) {
		int st;
		waitpid(pid, &st, 0);
		fprintf(stderr, "mts: %s did not start (see %s)\n", args[0], log ? log : "stderr");
		return -EIO;
	}
	return pid;
}

static void stop_pid(pid_t *pid)
{
	int st;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, &st, 0);
	*pid = 0;
}

int mts_host_start(struct mts_host *h, const char *dir, const char *name)
{
	char prog[512], log[400];
	int r;

	memset(h, 0, sizeof(*h));
	pv_strlcpy(h->name, name, sizeof(h->name));
	snprintf(h->dir, sizeof(h->dir), "%s/%s", dir, name);
	snprintf(h->xs_dir, sizeof(h->xs_dir), "%s/xenstored", h->dir);
	snprintf(h->hv_dir, sizeof(h->hv_dir), "%s/hypervisor", h->dir);
	snprintf(h->xs_sock, sizeof(h->xs_sock), "%s/socket", h->xs_dir);
	snprintf(h->hv_sock, sizeof(h->hv_sock), "%s/socket", h->hv_dir);
	if ((r = pv_mkdir_p(h->xs_dir, 0755)) < 0 || (r = pv_mkdir_p(h->hv_dir, 0755)) < 0)
		return r;

	snprintf(prog, sizeof(prog), "%s/pvnet-hypervisor", build_dir());
	snprintf(log, sizeof(log), "%s/hypervisor.log", h->dir);
	h->hvd = spawn_ready((char *[]){ prog, "--rundir", h->hv_dir, NULL }, log);
	if (h->hvd < 0)
		return (int)h->hvd;
	snprintf(prog, sizeof(prog), "%s/pvnet-xenstored", build_dir());
	snprintf(log, sizeof(log), "%s/xenstored.log", h->dir);
	h->xsd = spawn_ready((char *[]){ prog, "--rundir", h->xs_dir, NULL }, log);
	if (h->xsd < 0) {
		r = (int)h->xsd;
		h->xsd = 0;
		mts_host_stop(h);
		return r;
	}
	h->hv = pv_hv_open(h->hv_sock);
	h->xs = tsx_open(h->xs_sock);
	if (!h->hv || !h->xs) {
		fprintf(stderr, "mts: cannot connect to host %s's daemons\n", name);
		mts_host_stop(h);
		return -EIO;
	}
	/* What xen-init-dom0 writes for dom0. */
	tsx_write(h->xs, XBT_NULL, "/local/domain/0/name", "Domain-0");
	tsx_write(h->xs, XBT_NULL, "/local/domain/0/domid", "0");
	h->mem = pv_hv_map_own_memory(h->hv, NULL, &h->mem_pages);
	h->pa = h->mem ? pv_pagealloc_new(h->mem, h->mem_pages, 0) : NULL;
	if (!h->pa) {
		mts_host_stop(h);
		return -ENOMEM;
	}
	return 0;
}

int mts_host_add_netback(struct mts_host *h, const char *netns, unsigned max_queues)
{
	char prog[512], log[400], dir[320], q[16], cmd[256];
	char *argv[16];
	unsigned n = 0;
	int r;

	snprintf(cmd, sizeof(cmd), "ip -n %s link add xenbr0 type bridge && ip -n %s link set xenbr0 up",
		 netns, netns);
	if (system(cmd) != 0)
		return -EIO;
	pv_strlcpy(h->netns, netns, sizeof(h->netns));
	snprintf(dir, sizeof(dir), "%s/netback", h->dir);
	if ((r = pv_mkdir_p(dir, 0755)) < 0)
		return r;
	snprintf(prog, sizeof(prog), "%s/pvnet-netback", build_dir());
	snprintf(log, sizeof(log), "%s/netback.log", h->dir);
	snprintf(q, sizeof(q), "%u", max_queues);
	argv[n++] = "/usr/sbin/ip";
	argv[n++] = "netns";
	argv[n++] = "exec";
	argv[n++] = (char *)netns;
	argv[n++] = prog;
	argv[n++] = "--xenstore";
	argv[n++] = h->xs_sock;
	argv[n++] = "--hypervisor";
	argv[n++] = h->hv_sock;
	argv[n++] = "--rundir";
	argv[n++] = dir;
	if (max_queues) {
		argv[n++] = "--max-queues";
		argv[n++] = q;
	}
	argv[n] = NULL;
	h->nbd = spawn_ready(argv, log);
	if (h->nbd < 0) {
		r = (int)h->nbd;
		h->nbd = 0;
		return r;
	}
	return 0;
}

void mts_host_stop(struct mts_host *h)
{
	stop_pid(&h->nbd);
	if (h->pa)
		pv_pagealloc_free(h->pa);
	h->pa = NULL;
	if (h->xs)
		xs_close(h->xs);
	h->xs = NULL;
	if (h->hv)
		pv_hv_close(h->hv);
	h->hv = NULL;
	stop_pid(&h->xsd);
	stop_pid(&h->hvd);
}

void mts_xs_domain_sock(const struct mts_host *h, uint32_t domid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/domains/%u.sock", h->xs_dir, domid);
}

int mts_hv_domain_sock(const struct mts_host *h, uint32_t domid, char *buf, size_t len)
{
	return pv_hv_domain_socket(h->hv, domid, buf, len);
}

/* libxl's layout comes from the toolstack (toolstack/domain.c). A domain's
 * uuid is derived from its id so that it can be found again at destroy. */
static void dom_spec_of(struct dom_spec *s, uint32_t domid)
{
	memset(s, 0, sizeof(*s));
	s->domid = domid;
	s->backend_domid = 0;
	s->mem_kb = 65536;
	snprintf(s->name, sizeof(s->name), "test-%u", domid);
	snprintf(s->uuid, sizeof(s->uuid), "00000000-0000-4000-8000-%012x", domid);
}

int mts_domain_create(struct mts_host *h, uint32_t *domid, bool incoming, unsigned mem_pages)
{
	struct pv_domain_config cfg = { .domid = *domid, .mem_pages = mem_pages, .incoming = incoming };
	struct dom_spec spec;
	int r;

	snprintf(cfg.name, sizeof(cfg.name), "test-%u", *domid);
	r = pv_hv_domain_create(h->hv, &cfg, domid);
	if (r < 0) {
		fprintf(stderr, "mts: creating a domain on %s: %s\n", h->name, strerror(-r));
		return r;
	}
	dom_spec_of(&spec, *domid);
	r = dom_write_skeleton(h->xs, &spec);
	if (r == 0)
		r = dom_introduce(h->xs, &spec);
	if (r < 0)
		fprintf(stderr, "mts: xenstore layout of domain %u: %s\n", *domid, strerror(-r));
	return r;
}

int mts_domain_destroy(struct mts_host *h, uint32_t domid)
{
	struct dom_spec spec;

	dom_spec_of(&spec, domid);
	dom_remove_domain(h->xs, &spec);
	return pv_hv_domain_destroy(h->hv, domid);
}

int mts_vif_add(struct mts_host *h, uint32_t domid, unsigned devid, const char *mac)
{
	struct dom_spec spec;
	struct dom_vif v = { .devid = devid };
	int r;

	dom_spec_of(&spec, domid);
	pv_strlcpy(v.mac, mac, sizeof(v.mac));
	pv_strlcpy(v.bridge, "xenbr0", sizeof(v.bridge));
	r = dom_write_vif(h->xs, &spec, &v);
	if (r < 0)
		fprintf(stderr, "mts: vif %u of domain %u: %s\n", devid, domid, strerror(-r));
	return r;
}

int mts_wait_value(struct mts_host *h, const char *path, const char *want, int timeout_ms)
{
	return tsx_wait_value(h->xs, path, want, timeout_ms);
}

int mts_guest_start(struct mts_guest *g, struct mts_host *h, uint32_t domid, const char *netns,
		    const char *dir, const char *const *extra)
{
	char prog[512], xs[320], hv[320];
	char *argv[48];
	unsigned n = 0;
	int r;

	memset(g, 0, sizeof(*g));
	g->host = h;
	g->domid = domid;
	pv_strlcpy(g->netns, netns, sizeof(g->netns));
	snprintf(g->control, sizeof(g->control), "%s/guest-%s.sock", dir, netns);
	snprintf(g->log, sizeof(g->log), "%s/guest-%s.log", dir, netns);
	snprintf(prog, sizeof(prog), "%s/pvnet-guest", build_dir());
	mts_xs_domain_sock(h, domid, xs, sizeof(xs));
	if ((r = mts_hv_domain_sock(h, domid, hv, sizeof(hv))) < 0)
		return r;
	argv[n++] = prog;
	argv[n++] = "--xenstore";
	argv[n++] = xs;
	argv[n++] = "--hypervisor";
	argv[n++] = hv;
	argv[n++] = "--netns";
	argv[n++] = (char *)netns;
	argv[n++] = "--control";
	argv[n++] = g->control;
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	for (unsigned i = 0; extra && extra[i] && n < 44; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	g->pid = spawn_ready(argv, g->log);
	return g->pid < 0 ? (int)g->pid : 0;
}

int mts_guest_stop(struct mts_guest *g)
{
	int st = 0;

	if (g->pid <= 0)
		return -ESRCH;
	kill(g->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(g->pid, &st, WNOHANG) == g->pid) {
			g->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	kill(g->pid, SIGKILL);
	waitpid(g->pid, &st, 0);
	g->pid = 0;
	return -ETIMEDOUT;
}

char *mts_control(const struct mts_guest *g, const char *cmd)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t cap = 1 << 16, n = 0;
	char *out;
	ssize_t k;
	int s;

	if (strlen(g->control) >= sizeof(a.sun_path))
		return NULL;
	strcpy(a.sun_path, g->control);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    pv_write_all(s, cmd, strlen(cmd)) < 0 || pv_write_all(s, "\n", 1) < 0) {
		if (s >= 0)
			close(s);
		return NULL;
	}
	shutdown(s, SHUT_WR);
	out = malloc(cap);
	while (out && (k = read(s, out + n, cap - n - 1)) > 0) {
		n += (size_t)k;
		if (n + 1 == cap) {
			char *o2 = realloc(out, cap * 2);
			if (!o2) {
				free(out);
				out = NULL;
				break;
			}
			out = o2;
			cap *= 2;
		}
	}
	close(s);
	if (out)
		out[n] = '\0';
	return out;
}

int mts_suspend(struct mts_guest *g)
{
	struct mts_host *h = g->host;
	char path[96];
	int r;

	if (!tsx_write(h->xs, XBT_NULL, P("/local/domain/%u/control/shutdown", g->domid), "suspend"))
		return -errno;
	r = mts_wait_value(h, path, "", 10000);
	if (r < 0) {
		fprintf(stderr, "mts: domain %u did not acknowledge the suspend request\n", g->domid);
		return r;
	}
	r = pv_hv_domain_wait(h->hv, g->domid, 1u << PV_DOM_SUSPENDED, 10000);
	if (r < 0)
		fprintf(stderr, "mts: domain %u did not suspend: %s\n", g->domid, strerror(-r));
	return r;
}

int mts_shutdown(struct mts_guest *g, const char *cmd)
{
	struct mts_host *h = g->host;
	struct pv_domain_info info;
	unsigned want = strcmp(cmd, "reboot") ? SHUTDOWN_poweroff : SHUTDOWN_reboot;
	char path[96];
	int r, st;

	if (!tsx_write(h->xs, XBT_NULL, P("/local/domain/%u/control/shutdown", g->domid), "%s", cmd))
		return -errno;
	r = pv_hv_domain_wait(h->hv, g->domid, 1u << PV_DOM_SHUTDOWN, 10000);
	if (r == 0)
		r = pv_hv_domain_info(h->hv, g->domid, &info);
	if (r == 0 && info.shutdown_reason != want)
		r = -EPROTO;
	for (int i = 0; i < 500 && g->pid > 0; i++) {
		if (waitpid(g->pid, &st, WNOHANG) == g->pid) {
			g->pid = 0;
			return r < 0 ? r : (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		}
		usleep(10000);
	}
	return r < 0 ? r : -ETIMEDOUT;
}

int mts_resume_cancelled(struct mts_guest *g)
{
	int r = pv_hv_domain_resume(g->host->hv, g->domid);

	if (r == 0)
		xs_resume_domain(g->host->xs, g->domid);
	return r;
}

int mts_migrate(struct mts_guest *g, struct mts_host *dst, const unsigned *devids, const char *const *macs,
		unsigned nvifs, mts_prepare_fn prepare, void *arg,
		void (*before_destroy)(void *arg), void *darg)
{
	struct mts_host *src = g->host;
	struct pv_resume_info info;
	uint32_t newid = 0, pages = 0;
	char xs[320];
	int memfd = -1, r;

	/* 1. The destination: incoming domain, its layout, its backends. */
	r = mts_domain_create(dst, &newid, true, 0);
	for (unsigned i = 0; r == 0 && i < nvifs; i++)
		r = mts_vif_add(dst, newid, devids[i], macs[i]);
	if (r == 0 && prepare)
		r = prepare(arg, dst, newid);
	/* As libxl and pvnet's toolstack: a real netback must have probed the
	 * new vifs (InitWait) before the guest is asked to suspend. */
	for (unsigned i = 0; r == 0 && dst->nbd > 0 && i < nvifs; i++) {
		char p[128];
		snprintf(p, sizeof(p), "/local/domain/0/backend/vif/%u/%u/state", newid, devids[i]);
		r = mts_wait_value(dst, p, "2", 10000);
		if (r < 0)
			fprintf(stderr, "mts: netback did not reach InitWait for %s\n", p);
	}
	if (r < 0)
		goto undo_dst;
	/* 2. Ask the guest to suspend. */
	r = mts_suspend(g);
	if (r < 0)
		goto undo_dst;
	/* 3. Move the memory; end the source incarnation. */
	r = pv_hv_domain_export(src->hv, g->domid, &memfd, &pages);
	if (r == 0)
		r = pv_hv_domain_import(dst->hv, newid, memfd, pages);
	if (memfd >= 0)
		close(memfd);
	if (r < 0) {
		fprintf(stderr, "mts: moving the memory: %s\n", strerror(-r));
		mts_resume_cancelled(g);
		goto undo_dst;
	}
	memset(&info, 0, sizeof(info));
	info.new_domid = newid;
	mts_hv_domain_sock(dst, newid, info.hypervisor_path, sizeof(info.hypervisor_path));
	mts_xs_domain_sock(dst, newid, xs, sizeof(xs));
	snprintf(info.start_info, sizeof(info.start_info), "xenstore=%s\nhost=%s\ndomid=%u\n", xs,
		 dst->name, newid);
	r = pv_hv_domain_moved(src->hv, g->domid, &info);
	if (r < 0) {
		fprintf(stderr, "mts: ending the source incarnation: %s\n", strerror(-r));
		mts_resume_cancelled(g);
		goto undo_dst;
	}
	/* 4. The guest resumes on dst; the source goes away. */
	if (before_destroy)
		before_destroy(darg);
	mts_domain_destroy(src, g->domid);
	g->host = dst;
	g->domid = newid;
	return 0;
undo_dst:
	if (newid)
		mts_domain_destroy(dst, newid);
	return r;
}
