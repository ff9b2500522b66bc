/*
 * Event channels, client side (libxenevtchn shape). Each bound port has
 * three fds from the hypervisor: `in`, the read end of a pipe the peer
 * writes into (we watch it), `out`, the write end of the peer's pipe, and
 * the channel's flags page (a sealed memfd both sides map, proto.h
 * HVP_EC_FLAGS_SIZE): one pending flag per side. notify() sets the peer's
 * flag and writes one byte into its pipe only when the flag goes from 0 to
 * 1, so notifications coalesce before any syscall; taking an event clears
 * our flag. Pipes, not one eventfd both sides share: each side's file is its
 * own, so a peer cannot make our reads or writes block (by clearing
 * O_NONBLOCK on a shared file, or saturating it).
 *
 * Two ways to wait:
 * - The handle's fd (pv_evtchn_fd), a level-triggered epoll set over every
 *   `in`. pending() asks it which ports are readable, drains the pipe, then
 *   clears the flag, and it is an event if the flag was set (in that order:
 *   a byte written after the drain stays and makes the port readable again;
 *   none is lost). Masks live here:
 *   pending() returns the port masked; unmask() just clears the mask — no
 *   syscall on the common path. Only if an event arrives while the port is
 *   masked does pending() take the port out of the epoll set (leaving the
 *   byte, so the port stays pending); unmask() then puts it back and, the
 *   pipe being readable, it fires at once, as on Xen. So a masked port never
 *   makes the fd spin. With a single port, pending() skips epoll_wait and
 *   just tries the read.
 * - Attached (pv_evtchn_attach): every `in` sits edge-triggered in the
 *   caller's own epoll set, so a notification wakes the caller's epoll_wait
 *   directly, without a nested set. pending() then makes no syscall: it
 *   looks at the flags of the bound ports. The pipes are not read per event:
 *   with the 0->1 rule an honest peer has written at most one byte per event
 *   we took (plus one), so pending() drains a pipe once every
 *   EC_DRAIN_EVERY events it took from it, long before 64 KiB fill it. A
 *   port found pending while masked stays so (its flag set, so the peer
 *   writes nothing more); unmask() re-arms its registration (EPOLL_CTL_MOD
 *   of a readable fd reports it again) so that it fires, as on Xen.
 * A peer that lies with the flags (sets ours without writing, clears its
 * own, fills our pipe) only loses or invents events on its own channel; one
 * that writes bytes without the flag wakes us for nothing: drivers count a
 * wake-up without an event as an event storm's (evtchn.h). Attached mode
 * needs a kernel that wakes an edge-triggered pipe reader at every write
 * (Linux 5.14+): attach() asks once and refuses otherwise.
 *
 * notify() may run in other threads while the owner unbinds: the `out` fd
 * numbers are never closed while the handle lives; an unbound port's number
 * is pointed at a sink (/dev/null, dup2) and reused for the next port, so a
 * racing notify writes to a real file (at worst a lost event on a port being
 * unbound), never to an unrelated one. Likewise a flags page, once unbound,
 * is replaced by private anonymous memory at the same address (MAP_FIXED),
 * and an address is reused only after EC_RETIRED_KEEP later unbinds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/client.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/proto.h"

#define EC_DRAIN_EVERY 256u   /* attached: events taken between two drains of a pipe */
#define EC_RETIRED_KEEP 64u   /* unbound flag pages kept before their address is reused */

struct ec_port {
	int in;           /* -1: not ours */
	int out;
	uint32_t *mine;   /* our pending flag (the peer sets it) */
	uint32_t *peer;   /* the peer's (we set it) */
	void *page;
	bool masked;
	bool parked;      /* out of the epoll set: pending while masked */
	bool eof;         /* no writer left: out of the epoll set for good */
	uint32_t takes;   /* attached: events taken since the last drain */
};

struct pv_evtchn {
	struct hvc c;
	int epfd;
	int sink;
	struct ec_port *ports;  /* c.max_port + 1 */
	int *spare;             /* out fd numbers to reuse */
	unsigned nspare, cap_spare;
	void **retired;         /* unbound flag pages (anonymous now), oldest first */
	unsigned nretired, cap_retired;
	uint32_t ready[64];     /* ports from the last epoll_wait */
	unsigned nready, iready;
	evtchn_port_t *bound;   /* attached: the bound ports, for pending()'s scan */
	unsigned nbound, next;  /* next: where the scan starts (round robin) */
	evtchn_port_t last;     /* the port, when nbound == 1 */
	int att_epfd;           /* attached: the caller's epoll set, else -1 */
	uint64_t att_tag;
};

struct pv_evtchn *pv_evtchn_open(const char *hv_path)
{
	struct pv_evtchn *ec = calloc(1, sizeof(*ec));
	int r;

	if (!ec) {
		errno = ENOMEM;
		return NULL;
	}
	ec->epfd = ec->sink = ec->att_epfd = -1;
	r = hvc_open(&ec->c, hv_path, 0);
	if (r < 0)
		goto fail;
	/* Nothing to apply for ports (the pipes survive rebinding), but
	 * consume PORT_CLOSED notices so they do not pile up in the daemon. */
	ec->c.consume = true;
	ec->ports = calloc((size_t)ec->c.max_port + 1, sizeof(*ec->ports));
	ec->bound = calloc((size_t)ec->c.max_port + 1, sizeof(*ec->bound));
	ec->epfd = epoll_create1(EPOLL_CLOEXEC);
	ec->sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
	r = !ec->ports || !ec->bound ? -ENOMEM : ec->epfd < 0 || ec->sink < 0 ? -errno : 0;
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
		struct ec_port *q = &ec->ports[p];

		if (q->in >= 0) {
			/* The daemon shares our read end: closing ours alone
			 * would leave it registered in the caller's set. */
			if (ec->att_epfd >= 0)
				(void)epoll_ctl(ec->att_epfd, EPOLL_CTL_DEL, q->in, NULL);
			close(q->in);
		}
		if (q->out >= 0)
			close(q->out);
		if (q->page)
			munmap(q->page, HVP_EC_FLAGS_SIZE);
	}
	for (unsigned i = 0; i < ec->nspare; i++)
		close(ec->spare[i]);
	for (unsigned i = 0; i < ec->nretired; i++)
		munmap(ec->retired[i], HVP_EC_FLAGS_SIZE);
	if (ec->epfd >= 0)
		close(ec->epfd);
	if (ec->sink >= 0)
		close(ec->sink);
	free(ec->ports);
	free(ec->bound);
	free(ec->spare);
	free(ec->retired);
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

/* Register `in` where this handle's events are awaited. */
static int watch_in(struct pv_evtchn *ec, int op, int in, evtchn_port_t port)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = port };

	if (ec->att_epfd >= 0) {
		ev.events = EPOLLIN | EPOLLET;
		ev.data.u64 = ec->att_tag;
		return epoll_ctl(ec->att_epfd, op, in, &ev) < 0 ? -errno : 0;
	}
	return epoll_ctl(ec->epfd, op, in, op == EPOLL_CTL_DEL ? NULL : &ev) < 0 ? -errno : 0;
}

/* Map a channel's flags page: at a retired address if one is old enough. */
static void *map_flags(struct pv_evtchn *ec, int fd)
{
	void *want = NULL, *p;
	int flags = MAP_SHARED;

	if (!pv_fd_covers(fd, HVP_EC_FLAGS_SIZE))
		return NULL;
	if (ec->nretired > EC_RETIRED_KEEP) {
		want = ec->retired[0];
		flags |= MAP_FIXED;
	}
	p = mmap(want, HVP_EC_FLAGS_SIZE, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (want) {
		ec->nretired--;
		memmove(ec->retired, ec->retired + 1, ec->nretired * sizeof(*ec->retired));
	}
	return p;
}

/* An unbound port's page: private memory from now on, for racing notifies
 * (the address is never unmapped while the handle lives). */
static void retire_flags(struct pv_evtchn *ec, void *page)
{
	if (ec->nretired == ec->cap_retired) {
		unsigned ncap = ec->cap_retired * 2 + 8;
		void **r = realloc(ec->retired, ncap * sizeof(*r));

		if (r) {
			ec->retired = r;
			ec->cap_retired = ncap;
		}
	}
	if (mmap(page, HVP_EC_FLAGS_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return;  /* still the channel's page: a stale notify is a spurious event */
	if (ec->nretired < ec->cap_retired)
		ec->retired[ec->nretired++] = page;  /* else kept out of reuse for good */
}

/* Take the port the reply of alloc_unbound / bind_interdomain gave us.
 * `bound`: bind_interdomain, whose new port is pending once. */
static int install(struct pv_evtchn *ec, evtchn_port_t port, bool bound)
{
	uint32_t side = ec->c.rep.arg[0];
	struct ec_port *p;
	void *page = NULL;
	int in, out, r = 0;

	if (ec->c.nfds != 3 || port == 0 || port > ec->c.max_port || ec->ports[port].in >= 0 ||
	    side > 1) {
		hvc_drop_fds(&ec->c);
		return -EPROTO;
	}
	in = ec->c.fds[0];
	out = ec->c.fds[1];
	/* Two pipe ends, and never blocking (a blocking one would hang
	 * pending() or notify()): we set that ourselves rather than trust it.
	 * The flags: a memfd that cannot shrink under our mapping. */
	if (!is_fifo(in) || !is_fifo(out) || !(page = map_flags(ec, ec->c.fds[2])))
		r = -EPROTO;
	else if (pv_set_nonblock(in, true) < 0 || pv_set_nonblock(out, true) < 0)
		r = -errno;
	else
		r = watch_in(ec, EPOLL_CTL_ADD, in, port);
	close(ec->c.fds[2]);
	ec->c.nfds = 0;
	if (r < 0) {
		close(in);
		close(out);
		if (page)  /* maybe a retired address a stale notify still holds */
			retire_flags(ec, page);
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
	p->masked = p->parked = p->eof = false;
	p->takes = 0;
	p->page = page;
	p->mine = (uint32_t *)((uint8_t *)page + side * HVP_EC_FLAG_STRIDE);
	__atomic_store_n(&p->peer, (uint32_t *)((uint8_t *)page + (1 - side) * HVP_EC_FLAG_STRIDE),
			 __ATOMIC_RELAXED);
	if (bound) {
		static const char one = 1;

		/* Our first event: its byte is in the pipe already (dispatch.c). */
		__atomic_store_n(p->mine, 1, __ATOMIC_SEQ_CST);
		/* The port we bound to may have outlived an earlier peer that
		 * set its flag and never wrote (it died, or unbound, in
		 * between): with the flag set nobody would write again. */
		if (__atomic_load_n(p->peer, __ATOMIC_SEQ_CST))
			(void)!write(out, &one, 1);
	}
	__atomic_store_n(&p->out, out, __ATOMIC_RELEASE);
	ec->bound[ec->nbound++] = port;
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
	r = r < 0 ? r : install(ec, a.port, false);
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
	r = r < 0 ? r : install(ec, b.local_port, true);
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
	if (!p->parked && !p->eof)
		(void)watch_in(ec, EPOLL_CTL_DEL, p->in, port);
	close(p->in);
	p->in = -1;
	for (unsigned i = 0; i < ec->nbound; i++)
		if (ec->bound[i] == port) {
			ec->bound[i] = ec->bound[--ec->nbound];
			break;
		}
	if (ec->nbound == 1)
		ec->last = ec->bound[0];
	out = p->out;
	__atomic_store_n(&p->out, -1, __ATOMIC_RELEASE);
	__atomic_store_n(&p->peer, NULL, __ATOMIC_RELEASE);
	retire_out(ec, out);
	retire_flags(ec, p->page);
	p->page = NULL;
	hvc_sync(&ec->c);
	return 0;
}

int pv_evtchn_notify(struct pv_evtchn *ec, evtchn_port_t port)
{
	static const char one = 1;
	uint32_t *peer;
	int fd;

	if (port == 0 || port > ec->c.max_port)
		return -EINVAL;
	fd = __atomic_load_n(&ec->ports[port].out, __ATOMIC_ACQUIRE);
	if (fd < 0)
		return -EINVAL;
	/* Pending already: the peer has (or will have) its byte. The
	 * exchange is a full barrier: our ring writes before it are seen by
	 * a peer that clears the flag and then reads the ring. */
	peer = __atomic_load_n(&ec->ports[port].peer, __ATOMIC_ACQUIRE);
	/* Both of the same binding (unbind clears `out` first, install sets
	 * it last): else the port changed under us, and the event is lost
	 * with the binding it was for. */
	if (!peer || __atomic_load_n(&ec->ports[port].out, __ATOMIC_ACQUIRE) != fd)
		return 0;
	if (__atomic_exchange_n(peer, 1, __ATOMIC_SEQ_CST) != 0)
		return 0;
	/* EAGAIN means the pipe is full: the peer is pending anyway. */
	if (write(fd, &one, 1) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

int pv_evtchn_test_write(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct ec_port *p = ours(ec, port);

	if (!p)
		return -EINVAL;
	return write(p->out, "!", 1) < 0 && errno != EAGAIN ? -errno : 0;
}

/* Read what is in port's pipe (at most its 64 KiB: a peer writing as fast
 * as we read must not keep us here); false at end of file (no writer left). */
static bool drain(struct ec_port *p)
{
	char v[4096];
	ssize_t n;
	int i = 0;

	while ((n = read(p->in, v, sizeof(v))) == (ssize_t)sizeof(v) && ++i < 16)
		;
	return n != 0;
}

/* Level-triggered: take port's event if it has one, masked and cleared, as
 * Xen returns it. */
static bool take(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct ec_port *p = ours(ec, port);
	char v[256];
	ssize_t n;

	if (!p || p->parked || p->eof)
		return false;
	if (p->masked) {
		/* Pending while masked: park it, keep the byte (the pending bit). */
		if (watch_in(ec, EPOLL_CTL_DEL, p->in, port) == 0)
			p->parked = true;
		return false;
	}
	/* Our own read end (only the hypervisor, which never reads, shares
	 * it): drained of every notification so far, they coalesce. Then the
	 * flag: a notify after the read leaves a byte, so none is lost. */
	n = read(p->in, v, sizeof(v));
	if (n == (ssize_t)sizeof(v))
		(void)drain(p);  /* an end of file after data shows next time */
	if (n == 0) {
		/* Every writer gone (the channel ended): level-triggered,
		 * that would report it forever. */
		if (watch_in(ec, EPOLL_CTL_DEL, p->in, port) == 0)
			p->eof = true;
		return false;
	}
	/* The flag says whether it is an event: bytes without it are stale
	 * (left from a time the port was attached, or a lying peer's). */
	if (n < 0 || !__atomic_exchange_n(p->mine, 0, __ATOMIC_SEQ_CST))
		return false;
	p->masked = true;
	return true;
}

/* Attached: the next bound port whose flag is set and that is not masked. */
static int scan(struct pv_evtchn *ec)
{
	for (unsigned k = 0; k < ec->nbound; k++) {
		unsigned i = (ec->next + k) % ec->nbound;
		struct ec_port *p = &ec->ports[ec->bound[i]];

		if (p->masked || !__atomic_load_n(p->mine, __ATOMIC_RELAXED))
			continue;
		if (++p->takes >= EC_DRAIN_EVERY) {
			(void)drain(p);
			p->takes = 0;
		}
		/* Full barrier: the peer's ring writes are seen after this. */
		__atomic_exchange_n(p->mine, 0, __ATOMIC_SEQ_CST);
		p->masked = true;
		ec->next = i + 1;
		return (int)ec->bound[i];
	}
	return -EAGAIN;
}

int pv_evtchn_pending(struct pv_evtchn *ec)
{
	if (ec->att_epfd >= 0)
		return scan(ec);
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
	struct ec_port *p = ours(ec, port);
	int r;

	if (!p)
		return -EINVAL;
	p->masked = false;
	if (ec->att_epfd >= 0) {
		/* Pending while masked: no new edge will come (the peer sees
		 * the flag set), so report the readable pipe again. */
		if (__atomic_load_n(p->mine, __ATOMIC_SEQ_CST) && !p->eof)
			return watch_in(ec, EPOLL_CTL_MOD, p->in, port);
		return 0;
	}
	if (p->parked) {
		/* Back in the set; its byte is there, so it fires at once. */
		if ((r = watch_in(ec, EPOLL_CTL_ADD, p->in, port)) < 0)
			return r;
		p->parked = false;
	}
	return 0;
}

/* Register every bound port in `to` (the caller's set, edge-triggered, or
 * ours when to < 0), then take them out of where they were. */
static int move_ports(struct pv_evtchn *ec, int to, uint64_t tag)
{
	int from = ec->att_epfd >= 0 ? ec->att_epfd : ec->epfd;

	for (unsigned i = 0; i < ec->nbound; i++) {
		evtchn_port_t port = ec->bound[i];
		struct ec_port *p = &ec->ports[port];
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = tag };
		int r;

		if (to < 0)
			ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = port };
		if (epoll_ctl(to < 0 ? ec->epfd : to, EPOLL_CTL_ADD, p->in, &ev) < 0) {
			r = -errno;
			for (unsigned j = 0; j < i; j++)
				(void)epoll_ctl(to < 0 ? ec->epfd : to, EPOLL_CTL_DEL,
						ec->ports[ec->bound[j]].in, NULL);
			return r;
		}
	}
	for (unsigned i = 0; i < ec->nbound; i++) {
		struct ec_port *p = &ec->ports[ec->bound[i]];

		if (ec->att_epfd >= 0 || (!p->parked && !p->eof))
			(void)epoll_ctl(from, EPOLL_CTL_DEL, p->in, NULL);
		p->parked = p->eof = false;
		p->takes = 0;
	}
	ec->nready = ec->iready = 0;
	ec->att_epfd = to;
	ec->att_tag = tag;
	return 0;
}

/* Attached, the pipes keep their bytes between drains: every write must
 * wake an edge-triggered reader, also into a pipe that is not empty. Linux
 * does so since 5.14 (for epoll: "pipe: make pipe writes always wake up
 * readers"); 5.5-5.13 woke only on empty -> non-empty. Asked once, of a
 * private pipe: 1 yes, 0 no, -errno could not tell. */
static int every_write_wakes(void)
{
	static int answer = 2;   /* 2: not asked yet */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int a = __atomic_load_n(&answer, __ATOMIC_ACQUIRE), p[2], ep, r = 1;

	if (a != 2)
		return a;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) < 0)
		r = -errno;
	/* Two writes, the second into a pipe that is not empty: an edge each? */
	for (int i = 0; r == 1 && i < 2; i++) {
		if (write(p[1], "x", 1) != 1)
			r = -errno;
		else if (epoll_wait(ep, &ev, 1, 0) != 1)
			r = 0;
	}
	if (ep >= 0)
		close(ep);
	close(p[0]);
	close(p[1]);
	if (r >= 0)
		__atomic_store_n(&answer, r, __ATOMIC_RELEASE);
	return r;
}

int pv_evtchn_attach(struct pv_evtchn *ec, int epfd, uint64_t tag)
{
	int r = 1;

	if (epfd < 0)
		return ec->att_epfd < 0 ? 0 : move_ports(ec, -1, 0);
	if (ec->att_epfd >= 0)
		return -EINVAL;
	if (getenv("PVNET_EVTCHN_LEVEL") || (r = every_write_wakes()) == 0)
		return -EOPNOTSUPP;
	if (r < 0)
		return r;
	return move_ports(ec, epfd, tag);
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
