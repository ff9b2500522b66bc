/*
 * Sockets and connections. The run directory holds `socket` (dom0) and
 * `domains/<domid>.sock` (one per domain, made at create, removed at
 * destroy); a connection is the domain of the socket it was accepted on.
 * All sockets are SOCK_SEQPACKET and non-blocking. Replies go out at once;
 * if the socket is full (a client that sends without reading), the reply is
 * kept and the connection is not read again until it has gone: at most one
 * reply is ever pending per connection, so a client cannot make the daemon
 * buffer without bound, nor block it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/hvd.h"

#define READ_BURST 16

static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

static int make_listener(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* ---- connections --------------------------------------------------------- */

void hvd_conn_watch(struct hvd_conn *c)
{
	uint32_t ev = EPOLLRDHUP;

	if (c->fd < 0 || !c->h->loop)
		return;
	if (c->out)
		ev |= EPOLLOUT;
	else if (!c->paused)
		ev |= EPOLLIN;
	pv_loop_mod_fd(c->h->loop, c->fd, ev);
}

static bool flush_out(struct hvd_conn *c)
{
	ssize_t n = pv_send_fds(c->fd, c->out, c->out_len, c->out_fds, c->out_nfds);

	if (n == -EAGAIN)
		return false;
	if (n < 0)
		c->dead = true;
	for (unsigned i = 0; i < c->out_nfds; i++)
		close(c->out_fds[i]);
	free(c->out);
	c->out = NULL;
	c->out_nfds = 0;
	return true;
}

void hvd_send(struct hvd_conn *c, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	ssize_t n;

	if (c->fd < 0 || c->dead)
		return;
	if (c->out) {
		/* Cannot happen: we stop reading while a reply is pending. */
		pv_log_rl(&c->rl, PV_LOG_ERR, "d%u: second pending reply, dropping the connection",
			  c->dom->domid);
		c->dead = true;
		return;
	}
	n = pv_send_fds(c->fd, buf, len, fds, nfds);
	if (n >= 0)
		return;
	if (n != -EAGAIN) {
		c->dead = true;
		return;
	}
	c->out = malloc(len);
	if (!c->out) {
		c->dead = true;
		return;
	}
	memcpy(c->out, buf, len);
	c->out_len = len;
	c->out_nfds = 0;
	for (unsigned i = 0; i < nfds; i++) {
		int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (d < 0) {
			/* A reply short of an fd would pair the client's views
			 * and fds wrongly: no reply at all, the connection ends. */
			pv_log_rl(&c->rl, PV_LOG_WARN, "d%u: keeping a reply's fds: %s; connection closed",
				  c->dom->domid, strerror(errno));
			c->dead = true;
			return;
		}
		c->out_fds[c->out_nfds++] = d;
	}
	hvd_conn_watch(c);
}

static void conn_io(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct hvd_conn *c = arg;
	struct hvd *h = c->h;

	if ((events & EPOLLOUT) && c->out && flush_out(c))
		hvd_conn_watch(c);
	for (int i = 0; i < READ_BURST && !c->paused && !c->out && !c->dead; i++) {
		int fds[4];
		unsigned nfds = PV_ARRAY_SIZE(fds);
		ssize_t n = pv_recv_fds(fd, h->rx.bytes, sizeof(h->rx.bytes), fds, &nfds);

		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			c->dead = true;
			break;
		}
		hvd_dispatch(c, (size_t)n, fds, nfds);
	}
	if (c->dead || ((events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && (c->paused || c->out)))
		hvd_conn_close(c);
}

struct hvd_conn *hvd_conn_new(struct hvd *h, struct hvd_domain *dom, int fd)
{
	struct hvd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->h = h;
	c->dom = dom;
	c->fd = fd;
	c->notice_fd = c->notice_peer = -1;
	c->rl = (struct pv_ratelimit)PV_RATELIMIT_INIT(1000, 5);
	hvd_mt_init(&c->mt, &dom->mappings_held, dom->max_maptrack);
	hvd_mt_charge(&c->mt, &dom->maptrack_cap);
	if (fd >= 0 && h->loop &&
	    pv_loop_add_fd(h->loop, fd, EPOLLIN | EPOLLRDHUP, conn_io, c) < 0) {
		free(c);
		return NULL;
	}
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	dom->nconns++;
	return c;
}

void hvd_conn_close(struct hvd_conn *c)
{
	struct hvd *h = c->h;

	hvd_conn_release(c);
	c->dom->nconns--;
	if (c->fd >= 0) {
		if (h->loop)
			pv_loop_del_fd(h->loop, c->fd);
		close(c->fd);
	}
	for (unsigned i = 0; i < c->out_nfds; i++)
		close(c->out_fds[i]);
	free(c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

/* ---- notices --------------------------------------------------------------- */

void hvd_notice(struct hvd_conn *c, enum pv_notice_type type, uint32_t domid, uint32_t port,
		uint32_t incarnation)
{
	struct hvp_notice *n;

	for (unsigned i = 0; i < c->nq_len; i++) {
		n = &c->nq[i];
		if (n->type == type && n->domid == domid && n->port == port &&
		    n->incarnation == incarnation)
			return;
	}
	if (c->nq_len == HVD_MAX_NOTICES) {
		pv_log_rl(&c->rl, PV_LOG_WARN, "d%u: notice queue full, oldest notice dropped",
			  c->dom->domid);
		memmove(c->nq, c->nq + 1, (c->nq_len - 1) * sizeof(*c->nq));
		c->nq_len--;
	}
	if (c->nq_len == c->nq_cap) {
		unsigned ncap = c->nq_cap ? c->nq_cap * 2 : 8;
		struct hvp_notice *nq = realloc(c->nq, ncap * sizeof(*nq));
		if (!nq) {
			pv_log_rl(&c->rl, PV_LOG_ERR, "d%u: out of memory for a notice", c->dom->domid);
			return;
		}
		c->nq = nq;
		c->nq_cap = ncap;
	}
	n = &c->nq[c->nq_len++];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->domid = domid;
	n->port = port;
	n->incarnation = incarnation;
	n->seq = ++c->nq_seq;
	if (c->nq_len == 1)
		hvd_notice_signal(c);
}

void hvd_notice_signal(struct hvd_conn *c)
{
	/* A full queue (EAGAIN) is readable anyway. */
	if (c->notice_fd >= 0 && send(c->notice_fd, "n", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK)
		pv_log_rl(&c->rl, PV_LOG_WARN, "notice socket: %s", strerror(errno));
}

/* ---- listening --------------------------------------------------------------- */

static void on_accept(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct hvd_domain *d = arg;

	for (int i = 0; i < 16; i++) {
		int s = pv_accept(fd, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (s < 0) {
			if (s != -EAGAIN && s != -EINTR)
				pv_log_rl(&d->h->rl, PV_LOG_WARN, "accept on d%u: %s%s", d->domid,
					  strerror(-s), s == -EMFILE ? " (connection refused)" : "");
			return;
		}
		if (d->domid != 0 && d->nconns >= HVD_MAX_CONNS_DOMU) {
			pv_log_rl(&d->h->rl, PV_LOG_WARN, "d%u: more than %u connections, refused",
				  d->domid, HVD_MAX_CONNS_DOMU);
			close(s);
			continue;
		}
		if (!hvd_conn_new(d->h, d, s)) {
			pv_log_rl(&d->h->rl, PV_LOG_WARN, "d%u: cannot take a connection", d->domid);
			close(s);
		}
	}
}

int hvd_listen_domain(struct hvd *h, struct hvd_domain *d)
{
	char name[32];
	int fd, r;

	if (!h->o.rundir)
		return 0;
	if (d->domid == 0) {
		d->sock_path = path_join(h->o.rundir, "socket");
	} else {
		snprintf(name, sizeof(name), "domains/%u.sock", d->domid);
		d->sock_path = path_join(h->o.rundir, name);
	}
	if (!d->sock_path)
		return -ENOMEM;
	fd = make_listener(d->sock_path);
	if (fd < 0) {
		free(d->sock_path);
		d->sock_path = NULL;
		return fd;
	}
	r = h->loop ? pv_loop_add_fd(h->loop, fd, EPOLLIN, on_accept, d) : 0;
	if (r < 0) {
		close(fd);
		unlink(d->sock_path);
		free(d->sock_path);
		d->sock_path = NULL;
		return r;
	}
	d->listen_fd = fd;
	return 0;
}

/* Refuse to start over a live daemon; clear what a dead one left. */
static int prepare_rundir(const char *rundir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *sock = path_join(rundir, "socket"), *doms = path_join(rundir, "domains");
	int r = -ENOMEM, fd;
	DIR *dir;

	if (!sock || !doms)
		goto out;
	if (strlen(rundir) + sizeof("/domains/32767.sock") > sizeof(sa.sun_path)) {
		r = -ENAMETOOLONG;
		goto out;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		int live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (live) {
			r = -EADDRINUSE;
			goto out;
		}
	}
	r = pv_mkdir_p(doms, 0755);
	if (r < 0)
		goto out;
	dir = opendir(doms);
	if (dir) {
		struct dirent *e;
		while ((e = readdir(dir)))
			if (strstr(e->d_name, ".sock"))
				unlinkat(dirfd(dir), e->d_name, 0);
		closedir(dir);
	}
	r = 0;
out:
	free(sock);
	free(doms);
	return r;
}

struct hvd *hvd_new(const struct hvd_opts *opts, struct pv_loop *loop)
{
	struct hvd *h = calloc(1, sizeof(*h));
	int r;

	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	h->o = *opts;
	h->loop = loop;
	h->rl = (struct pv_ratelimit)PV_RATELIMIT_INIT(1000, 10);
#define DEF(f, v) if (!h->o.f) h->o.f = (v)
	DEF(mem_pages, HVD_DEF_MEM_PAGES);
	DEF(dom0_mem_pages, HVD_DEF_MEM_PAGES);
	DEF(grant_frames, HVD_DEF_GRANT_FRAMES);
	DEF(max_maptrack, HVD_DEF_MAX_MAPTRACK);
	DEF(max_ports, HVD_DEF_MAX_PORTS);
	DEF(dom0_max_ports, HVD_DEF_DOM0_PORTS);
#undef DEF
	if (h->o.mem_pages > HVD_MAX_MEM_PAGES || h->o.dom0_mem_pages > HVD_MAX_MEM_PAGES ||
	    h->o.grant_frames > HVD_MAX_GRANT_FRAMES || h->o.max_maptrack > HVD_MAX_MAPTRACK ||
	    h->o.max_ports > HVD_MAX_PORTS || h->o.dom0_max_ports > HVD_MAX_PORTS) {
		r = -EINVAL;
		goto fail;
	}
	if (h->o.rundir && (r = prepare_rundir(h->o.rundir)) < 0)
		goto fail;
	r = hvd_domain_create_dom0(h);
	if (r < 0)
		goto fail;
	return h;
fail:
	free(h);
	errno = -r;
	return NULL;
}

void hvd_free(struct hvd *h)
{
	if (!h)
		return;
	while (h->conns)
		hvd_conn_close(h->conns);
	for (uint32_t id = 1; id < DOMID_FIRST_RESERVED && h->ndomains > 1; id++)
		if (h->dom[id])
			hvd_domain_destroy(h, h->dom[id]);
	if (h->dom[0])
		hvd_domain_destroy(h, h->dom[0]);
	free(h);
}
