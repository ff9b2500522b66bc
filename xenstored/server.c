/*
 * Sockets and connections. Each connection is read when the core is not
 * throttling it; bytes the core did not take yet stay in the connection's
 * input buffer and are fed again once its replies drain. Output is written
 * right after each request (most replies never need EPOLLOUT); what the
 * socket does not take waits for EPOLLOUT.
 */
#include "xenstored/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define INBUF 16384u   /* per connection; the core reassembles longer messages */

struct listener {
	struct listener *next;
	struct xsd_server *srv;
	int fd;
	unsigned domid;
	bool priv;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct sconn {
	struct sconn *next, *prev;   /* all connections */
	struct sconn *dnext;         /* dirty list: output to flush */
	struct xsd_server *srv;
	struct xsd_conn *xc;
	int fd;
	bool dirty;
	uint32_t events;             /* current epoll interest */
	size_t inlen;
	uint8_t in[INBUF];
};

struct xsd_server {
	struct pv_loop *loop;
	struct xsd_core *core;
	char *rundir;
	struct listener *listeners;
	struct sconn *conns;
	struct sconn *dirty;
};

static struct pv_ratelimit io_rl = PV_RATELIMIT_INIT(5000, 10);

static void conn_close(struct sconn *s, const char *why)
{
	struct xsd_server *srv = s->srv;

	if (why)
		pv_log_rl(&io_rl, PV_LOG_INFO, "domain %u connection closed: %s",
			  xsd_conn_domid(s->xc), why);
	if (s->dirty) {
		struct sconn **pp = &srv->dirty;
		while (*pp != s)
			pp = &(*pp)->dnext;
		*pp = s->dnext;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->conns = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pv_loop_del_fd(srv->loop, s->fd);
	close(s->fd);
	xsd_conn_free(s->xc);
	free(s);
}

static void set_interest(struct sconn *s)
{
	uint32_t ev = 0;

	if (!xsd_conn_throttled(s->xc) && s->inlen < INBUF)
		ev |= EPOLLIN;
	if (xsd_conn_pending(s->xc))
		ev |= EPOLLOUT;
	if (ev != s->events) {
		s->events = ev;
		pv_loop_mod_fd(s->srv->loop, s->fd, ev);
	}
}

/* Write what the socket takes. false: the connection was closed. */
static bool flush(struct sconn *s)
{
	struct iovec iov[64];
	int n;

	while ((n = xsd_conn_output(s->xc, iov, 64)) > 0) {
		ssize_t w = writev(s->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			conn_close(s, strerror(errno));
			return false;
		}
		xsd_conn_sent(s->xc, (size_t)w);
	}
	return true;
}

/* Hand buffered input to the core. false: the connection was closed. */
static bool feed(struct sconn *s)
{
	long used;

	if (!s->inlen)
		return true;
	used = xsd_conn_input(s->xc, s->in, s->inlen);
	if (used < 0) {
		conn_close(s, used == -EPROTO ? "payload over 4096 bytes" : "domain released");
		return false;
	}
	s->inlen -= (size_t)used;
	if (s->inlen)
		memmove(s->in, s->in + used, s->inlen);
	return true;
}

/* Flush every connection that got output; feed those that were unthrottled. */
static void flush_dirty(struct xsd_server *srv)
{
	while (srv->dirty) {
		struct sconn *s = srv->dirty;
		srv->dirty = s->dnext;
		s->dirty = false;
		if (!flush(s))
			continue;
		if (s->inlen && !xsd_conn_throttled(s->xc)) {
			if (!feed(s))
				continue;
		}
		set_interest(s);
	}
}

static void conn_event(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct sconn *s = arg;
	struct xsd_server *srv = s->srv;

	(void)loop;
	(void)fd;
	if (events & EPOLLOUT) {
		if (!flush(s))
			goto out;
		if (s->inlen && !xsd_conn_throttled(s->xc) && !feed(s))
			goto out;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = 0;
		if (s->inlen < INBUF && !xsd_conn_throttled(s->xc)) {
			n = read(s->fd, s->in + s->inlen, INBUF - s->inlen);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				conn_close(s, NULL);
				goto out;
			}
		}
		if (n > 0) {
			s->inlen += (size_t)n;
			if (!feed(s))
				goto out;
		}
	}
	if (!flush(s))
		goto out;
	set_interest(s);
out:
	flush_dirty(srv);
}

static void accept_event(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct listener *l = arg;
	struct xsd_server *srv = l->srv;
	struct sconn *s;
	int cfd;

	(void)events;
	cfd = pv_accept(fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (cfd == -EMFILE || cfd == -ENFILE)
			pv_log_rl(&io_rl, PV_LOG_WARN, "domain %u: connection refused: %s", l->domid,
				  strerror(-cfd));
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->xc = xsd_conn_new(srv->core, l->domid, l->priv))) {
		pv_log_rl(&io_rl, PV_LOG_WARN, "domain %u: connection refused: %s", l->domid,
			  s && errno == EMFILE ? "too many connections" : "out of memory");
		free(s);
		close(cfd);
		return;
	}
	s->srv = srv;
	s->fd = cfd;
	s->events = EPOLLIN;
	xsd_conn_set_user(s->xc, s);
	if (pv_loop_add_fd(loop, cfd, EPOLLIN, conn_event, s) < 0) {
		xsd_conn_free(s->xc);
		free(s);
		close(cfd);
		return;
	}
	s->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = s;
	srv->conns = s;
}

static int listen_on(struct xsd_server *srv, const char *path, unsigned domid, bool priv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct listener *l;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->srv = srv;
	l->domid = domid;
	l->priv = priv;
	pv_strlcpy(l->path, path, sizeof(l->path));
	pv_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		r = -errno;
		free(l);
		return r;
	}
	/* A socket someone still answers on belongs to a running daemon. */
	if (connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN) {
		close(l->fd);
		free(l);
		return -EADDRINUSE;
	}
	unlink(path);
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l->fd, 128) < 0 ||
	    chmod(path, 0600) < 0) {
		r = -errno;
		goto fail;
	}
	r = pv_loop_add_fd(srv->loop, l->fd, EPOLLIN, accept_event, l);
	if (r < 0)
		goto fail;
	l->next = srv->listeners;
	srv->listeners = l;
	return 0;
fail:
	close(l->fd);
	unlink(path);
	free(l);
	return r;
}

static void listener_free(struct xsd_server *srv, struct listener *l)
{
	pv_loop_del_fd(srv->loop, l->fd);
	close(l->fd);
	unlink(l->path);
	free(l);
}

static int domain_new(void *arg, unsigned domid)
{
	struct xsd_server *srv = arg;
	char path[sizeof(((struct listener *)0)->path)];
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/domains/%u.sock", srv->rundir, domid) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	r = listen_on(srv, path, domid, false);
	if (r < 0)
		pv_warn("domain %u: cannot listen on %s: %s", domid, path, strerror(-r));
	else
		pv_info("domain %u introduced: %s", domid, path);
	return r;
}

static void domain_gone(void *arg, unsigned domid)
{
	struct xsd_server *srv = arg;
	struct listener **pp = &srv->listeners;

	while (*pp) {
		struct listener *l = *pp;
		if (!l->priv && l->domid == domid) {
			*pp = l->next;
			listener_free(srv, l);
		} else {
			pp = &l->next;
		}
	}
	for (struct sconn *s = srv->conns, *next; s; s = next) {
		next = s->next;
		if (xsd_conn_dead(s->xc))
			conn_close(s, NULL);
	}
	pv_info("domain %u released", domid);
}

static void conn_output(void *arg, struct xsd_conn *c)
{
	struct xsd_server *srv = arg;
	struct sconn *s = xsd_conn_user(c);

	if (!s || s->dirty)
		return;
	s->dirty = true;
	s->dnext = srv->dirty;
	srv->dirty = s;
}

static const struct xsd_core_ops server_ops = {
	.domain_new = domain_new,
	.domain_gone = domain_gone,
	.conn_output = conn_output,
};

struct xsd_server *xsd_server_new(struct pv_loop *loop, const char *rundir,
				  const struct xsd_config *cfg)
{
	struct xsd_server *srv = calloc(1, sizeof(*srv));
	char path[sizeof(((struct listener *)0)->path)];
	int r = -ENOMEM;

	if (!srv)
		goto fail;
	srv->loop = loop;
	srv->rundir = strdup(rundir);
	srv->core = xsd_core_new(cfg, &server_ops, srv);
	if (!srv->rundir || !srv->core)
		goto fail;
	r = -ENAMETOOLONG;
	if ((size_t)snprintf(path, sizeof(path), "%s/domains", rundir) >= sizeof(path))
		goto fail;
	r = pv_mkdir_p(path, 0755);
	if (r < 0)
		goto fail;
	r = -ENAMETOOLONG;
	if ((size_t)snprintf(path, sizeof(path), "%s/socket", rundir) >= sizeof(path))
		goto fail;
	r = listen_on(srv, path, 0, true);
	if (r < 0)
		goto fail;
	return srv;
fail:
	xsd_server_free(srv);
	errno = -r;
	return NULL;
}

void xsd_server_free(struct xsd_server *srv)
{
	if (!srv)
		return;
	while (srv->conns)
		conn_close(srv->conns, NULL);
	while (srv->listeners) {
		struct listener *l = srv->listeners;
		srv->listeners = l->next;
		listener_free(srv, l);
	}
	xsd_core_free(srv->core);
	free(srv->rundir);
	free(srv);
}
