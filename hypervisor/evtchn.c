/*
 * Event channels, client side (libxenevtchn shape). Each bound port has two
 * fds from the hypervisor: `in`, the read end of a pipe the peer writes into
 * (we watch it), and `out`, the write end of the peer's pipe — notify is one
 * write(2), no round trip. A byte in the pipe is the port's pending bit (they
 * coalesce: one read drains them). Pipes, not one eventfd both sides share:
 * each side's file is its own, so a peer cannot make our reads or writes
 * block (by clearing O_NONBLOCK on a shared file, or saturating it).
 *
 * The handle's fd is a level-triggered epoll set over every `in`. Masks live
 * here: pending() drains the pipe, masks the port and returns it; unmask()
 * just clears the mask — no syscall on the common path. Only if an event
 * arrives while the port is masked does pending() take the port out of the
 * epoll set (leaving the byte, so the port stays pending); unmask() then puts
 * it back and, the pipe being readable, it fires at once, as on Xen. So a
 * masked port never makes the fd spin: at most one wakeup shows it before it
 * is parked. With a single port, pending() skips epoll_wait and just tries
 * the read: a wakeup costs the caller's poll and one read.
 *
 * notify() may run in other threads while the owner unbinds: the `out` fd
 * numbers are never closed while the handle lives; an unbound port's number
 * is pointed at a sink (/dev/null, dup2) and reused for the next port, so a
 * racing notify writes to a real file (at worst a lost event on a port being
 * unbound), never to an unrelated one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/client.h"
#include "hypervisor/evtchn.h"

struct ec_port {
	int in;           /* -1: not ours */
	int out;
	bool masked;
	bool parked;      /* out of the epoll set: pending while masked */
};

struct pv_evtchn {
	struct hvc c;
	int epfd;
	int sink;
	struct ec_port *ports;  /* c.max_port + 1 */
	int *spare;             /* out fd numbers to reuse */
	unsigned nspare, cap_spare;
	uint32_t ready[64];     /* ports from the last epoll_wait */
	unsigned nready, iready;
	unsigned nbound;
	evtchn_port_t last;     /* the port, when nbound == 1 */
};

struct pv_evtchn *pv_evtchn_open(const char *hv_path)
{
	struct pv_evtchn *ec = calloc(1, sizeof(*ec));
	int r;

	if (!ec) {
		errno = ENOMEM;
		return NULL;
	}
	ec->epfd = ec->sink = -1;
	r = hvc_open(&ec->c, hv_path, 0);
	if (r < 0)
		goto fail;
	/* Nothing to apply for ports (the pipes survive rebinding), but
	 * consume PORT_CLOSED notices so they do not pile up in the daemon. */
	ec->c.consume = true;
	ec->ports = calloc((size_t)ec->c.max_port + 1, sizeof(*ec->ports));
	ec->epfd = epoll_create1(EPOLL_CLOEXEC);
	ec->sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
	r = !ec->ports ? -ENOMEM : ec->epfd < 0 || ec->sink < 0 ? -errno : 0;
	if (r < 0)
		goto fail;
	for (uint32_t p = 0; p <= ec->c.max_port; p++)
		ec->ports[p].in = ec->ports[p].out = -1;
	return ec;
fail:
	pv_evtchn_close(ec);
	errno = -r;
	return NULL;
}

void pv_evtchn_close(struct pv_evtchn *ec)
{
	if (!ec)
		return;
	hvc_close(&ec->c); /* the hypervisor closes every port we held */
	for (uint32_t p = 0; ec->ports && p <= ec->c.max_port; p++) {
		if (ec->ports[p].in >= 0)
			close(ec->ports[p].in);
		if (ec->ports[p].out >= 0)
			close(ec->ports[p].out);
	}
	for (unsigned i = 0; i < ec->nspare; i++)
		close(ec->spare[i]);
	if (ec->epfd >= 0)
		close(ec->epfd);
	if (ec->sink >= 0)
		close(ec->sink);
	free(ec->ports);
	free(ec->spare);
	free(ec);
}

int pv_evtchn_fd(const struct pv_evtchn *ec) { return ec->epfd; }

static struct ec_port *ours(struct pv_evtchn *ec, evtchn_port_t port)
{
	if (port == 0 || port > ec->c.max_port || ec->ports[port].in < 0)
		return NULL;
	return &ec->ports[port];
}

static bool is_fifo(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* Take the port the reply of alloc_unbound / bind_interdomain gave us. */
static int install(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = port };
	struct ec_port *p;
	int in, out, r = 0;

	if (ec->c.nfds != 2 || port == 0 || port > ec->c.max_port || ec->ports[port].in >= 0) {
		hvc_drop_fds(&ec->c);
		return -EPROTO;
	}
	in = ec->c.fds[0];
	out = ec->c.fds[1];
	ec->c.nfds = 0;
	/* Two pipe ends, and never blocking (a blocking one would hang
	 * pending() or notify()): we set that ourselves rather than trust it. */
	if (!is_fifo(in) || !is_fifo(out))
		r = -EPROTO;
	else if (pv_set_nonblock(in, true) < 0 || pv_set_nonblock(out, true) < 0 ||
		 epoll_ctl(ec->epfd, EPOLL_CTL_ADD, in, &ev) < 0)
		r = -errno;
	if (r < 0) {
		close(in);
		close(out);
		return r;
	}
	if (ec->nspare) {
		int slot = ec->spare[--ec->nspare];
		if (dup3(out, slot, O_CLOEXEC) >= 0) {
			close(out);
			out = slot;
		} else {
			ec->spare[ec->nspare++] = slot;
		}
	}
	p = &ec->ports[port];
	p->in = in;
	p->masked = p->parked = false;
	__atomic_store_n(&p->out, out, __ATOMIC_RELEASE);
	ec->nbound++;
	ec->last = port;
	return (int)port;
}

static int port_call(struct pv_evtchn *ec, uint16_t op, const void *payload, size_t len,
		     void *reply)
{
	struct hvc_req rq = { .op = op, .payload = payload, .len = len, .fd = -1 };
	int r = hvc_call(&ec->c, &rq);

	if (r >= 0 && ec->c.rep_len != len)
		r = -EPROTO;
	if (r >= 0)
		memcpy(reply, ec->c.rep_payload, len);
	return r;
}

int pv_evtchn_bind_unbound_port(struct pv_evtchn *ec, uint32_t remote_domid)
{
	struct evtchn_alloc_unbound a = { .dom = DOMID_SELF, .remote_dom = (domid_t)remote_domid };
	int r;

	if (remote_domid > 0xFFFF)
		return -EINVAL;
	r = port_call(ec, HVP_EC_ALLOC_UNBOUND, &a, sizeof(a), &a);
	r = r < 0 ? r : install(ec, a.port);
	hvc_drop_fds(&ec->c);
	hvc_sync(&ec->c);
	return r;
}

int pv_evtchn_bind_interdomain(struct pv_evtchn *ec, uint32_t remote_domid,
			       evtchn_port_t remote_port)
{
	struct evtchn_bind_interdomain b = { .remote_dom = (domid_t)remote_domid,
					     .remote_port = remote_port };
	int r;

	if (remote_domid > 0xFFFF)
		return -EINVAL;
	r = port_call(ec, HVP_EC_BIND, &b, sizeof(b), &b);
	r = r < 0 ? r : install(ec, b.local_port);
	hvc_drop_fds(&ec->c);
	hvc_sync(&ec->c);
	return r;
}

/* Keep the number of an unbound port's `out` fd, pointed at the sink. */
static void retire_out(struct pv_evtchn *ec, int out)
{
	if (ec->nspare == ec->cap_spare) {
		unsigned ncap = ec->cap_spare * 2 + 8;
		int *s = realloc(ec->spare, ncap * sizeof(*s));
		if (!s) {
			close(out);
			return;
		}
		ec->spare = s;
		ec->cap_spare = ncap;
	}
	if (dup3(ec->sink, out, O_CLOEXEC) < 0) {
		close(out);
		return;
	}
	ec->spare[ec->nspare++] = out;
}

int pv_evtchn_unbind(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct hvc_req rq = { .op = HVP_EC_CLOSE, .arg = { port, 0 }, .fd = -1 };
	struct ec_port *p = ours(ec, port);
	int out;

	if (!p)
		return -EINVAL;
	/* Whatever the hypervisor says (the port is gone already if our domain
	 * ended), the port is no longer ours. */
	(void)hvc_call(&ec->c, &rq);
	hvc_drop_fds(&ec->c);
	epoll_ctl(ec->epfd, EPOLL_CTL_DEL, p->in, NULL);
	close(p->in);
	p->in = -1;
	ec->nbound--;
	for (evtchn_port_t q = 1; ec->nbound == 1 && q <= ec->c.max_port; q++)
		if (ec->ports[q].in >= 0)
			ec->last = q;
	out = p->out;
	__atomic_store_n(&p->out, -1, __ATOMIC_RELEASE);
	retire_out(ec, out);
	hvc_sync(&ec->c);
	return 0;
}

int pv_evtchn_notify(struct pv_evtchn *ec, evtchn_port_t port)
{
	static const char one = 1;
	int fd;

	if (port == 0 || port > ec->c.max_port)
		return -EINVAL;
	fd = __atomic_load_n(&ec->ports[port].out, __ATOMIC_ACQUIRE);
	if (fd < 0)
		return -EINVAL;
	/* EAGAIN means the pipe is full: the peer is pending anyway. */
	if (write(fd, &one, 1) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

/* Take port's event if it has one: masked and cleared, as Xen returns it. */
static bool take(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct ec_port *p = ours(ec, port);
	char v[256];

	if (!p || p->parked)
		return false;
	if (p->masked) {
		/* Pending while masked: park it, keep the counter (the pending bit). */
		if (epoll_ctl(ec->epfd, EPOLL_CTL_DEL, p->in, NULL) == 0)
			p->parked = true;
		return false;
	}
	/* Our own read end (only the hypervisor, which never reads, shares
	 * it): drained of every notification so far, they coalesce. */
	if (read(p->in, v, sizeof(v)) <= 0)
		return false;
	p->masked = true;
	return true;
}

int pv_evtchn_pending(struct pv_evtchn *ec)
{
	if (ec->nbound == 1 && ec->iready == ec->nready && !ec->ports[ec->last].masked)
		return take(ec, ec->last) ? (int)ec->last : -EAGAIN;
	for (;;) {
		if (ec->iready == ec->nready) {
			struct epoll_event evs[64];
			int n = epoll_wait(ec->epfd, evs, 64, 0);
			if (n <= 0)
				return n < 0 && errno != EINTR ? -errno : -EAGAIN;
			for (int i = 0; i < n; i++)
				ec->ready[i] = evs[i].data.u32;
			ec->nready = (unsigned)n;
			ec->iready = 0;
		}
		evtchn_port_t port = ec->ready[ec->iready++];
		if (take(ec, port))
			return (int)port;
	}
}

int pv_evtchn_unmask(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = port };
	struct ec_port *p = ours(ec, port);

	if (!p)
		return -EINVAL;
	p->masked = false;
	if (p->parked) {
		/* Back in the set; its counter is set, so it fires at once. */
		if (epoll_ctl(ec->epfd, EPOLL_CTL_ADD, p->in, &ev) < 0)
			return -errno;
		p->parked = false;
	}
	return 0;
}

int pv_evtchn_status(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct evtchn_status s = { .dom = DOMID_SELF, .port = port };
	int r = port_call(ec, HVP_EC_STATUS, &s, sizeof(s), &s);

	hvc_drop_fds(&ec->c);
	hvc_sync(&ec->c);
	if (r >= 0 && s.status > EVTCHNSTAT_ipi)
		r = -EPROTO;
	return r < 0 ? r : (int)s.status;
}
