/*
 * Event channels, client side (libxenevtchn shape). Each bound port has
 * three fds from the hypervisor: `bell`, our doorbell (an eventfd the peer
 * rings; we watch it), `ring`, the peer's doorbell (we ring it), and the
 * channel's flags page (a sealed memfd both sides map, proto.h
 * HVP_EC_FLAGS_SIZE): one pending flag per side. notify() sets the peer's
 * flag and rings its doorbell only when the flag goes from 0 to 1, so
 * notifications coalesce before any syscall; taking an event clears our
 * flag.
 *
 * A doorbell is an eventfd whose count starts at 1 and that nobody reads:
 * ringing it is writing a zero. Adding 0 to the count always fits (it never
 * exceeds 2^64-2), so that write never blocks, whatever the shared file's
 * flags — a peer cannot make our notify block by clearing O_NONBLOCK or
 * saturating the count — and it still wakes the eventfd's waiters, which an
 * edge-triggered epoll entry reports because the count is above 0. A peer
 * that reads our doorbell down to 0 silences the events sent to this port
 * (as one that never notifies does). Every doorbell sits edge-triggered in
 * an epoll set:
 * - The handle's own set (pv_evtchn_fd, what libxenevtchn gives): the fd is
 *   readable while some doorbell rang since pending() last emptied the set.
 *   pending() empties it (one epoll_wait), looks at the flags, and re-arms
 *   the ports still pending besides the one it returns (O(bound ports)):
 *   a notify after the emptying leaves the fd readable again, so none is
 *   lost, and the fd stays readable exactly while something is pending.
 * - Attached (pv_evtchn_attach): the caller's set, so a notification wakes
 *   the caller's epoll_wait directly, without a nested set; pending() then
 *   never makes a syscall.
 * Masks live here: pending() returns the port masked; unmask() just clears
 * the mask, except for a port found pending while masked (its flag set, so
 * the peer rings no more): unmask() re-arms its doorbell (EPOLL_CTL_MOD of a
 * ready fd reports it again) so that it fires, as on Xen. A masked port
 * never makes the fd spin.
 * A peer that lies with the flags (sets ours without ringing, clears its
 * own) only loses or invents events on its own channel; one that rings
 * without the flag wakes us for nothing: drivers count a wake-up without an
 * event as an event storm's (evtchn.h).
 *
 * notify() may run in other threads while the owner unbinds: the `ring` fd
 * numbers are never closed while the handle lives; an unbound port's number
 * is pointed at a sink (/dev/null, dup2) and reused for the next port, so a
 * racing notify writes to a real file (at worst a lost event on a port being
 * unbound, or one wake-up with nothing to take on a channel bound right
 * after, whose fd number it got), never into an unrelated file. Likewise a
 * flags page, once unbound, is replaced by private anonymous memory at the same address (MAP_FIXED),
 * and an address is reused only after EC_RETIRED_KEEP later unbinds. Room
 * for both is reserved before a port is taken, so unbind never allocates.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/client.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/proto.h"

#define EC_RETIRED_KEEP 64u   /* unbound flag pages kept before their address is reused */

static const uint64_t ring_zero;   /* what ringing a doorbell writes */

struct ec_port {
	int bell;         /* ours, the peer rings it; -1: not ours */
	int ring;         /* the peer's */
	uint32_t *mine;   /* our pending flag (the peer sets it) */
	uint32_t *peer;   /* the peer's (we set it) */
	void *page;
	bool masked;
};

struct pv_evtchn {
	struct hvc c;
	int epfd;
	int sink;
	struct ec_port *ports;  /* c.max_port + 1 */
	int *spare;             /* ring fd numbers to reuse */
	unsigned nspare, cap_spare;
	void **retired;         /* unbound flag pages (anonymous now), oldest first */
	unsigned nretired, cap_retired;
	evtchn_port_t *bound;   /* the bound ports, for pending()'s scan */
	unsigned nbound, next;  /* next: where the scan starts (round robin) */
	int att_epfd;           /* attached: the caller's epoll set, else -1 */
	uint64_t att_tag;
};

/* The doorbells rest on this: a zero written to an eventfd whose count is
 * above 0 wakes an edge-triggered epoll reader, every time. Asked once, of
 * a private eventfd: 1 yes, 0 no, -errno could not tell. */
static int zero_write_wakes(void)
{
	static int answer = 2;   /* 2: not asked yet */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int a = __atomic_load_n(&answer, __ATOMIC_ACQUIRE), fd, ep, r = 1;

	if (a != 2)
		return a;
	fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		r = -errno;
	else if (epoll_wait(ep, &ev, 1, 0) != 1)   /* ready when added */
		r = 0;
	for (int i = 0; r == 1 && i < 2; i++) {
		if (write(fd, &ring_zero, sizeof(ring_zero)) != (ssize_t)sizeof(ring_zero))
			r = -errno;
		else if (epoll_wait(ep, &ev, 1, 0) != 1)
			r = 0;
	}
	if (ep >= 0)
		close(ep);
	close(fd);
	if (r >= 0)
		__atomic_store_n(&answer, r, __ATOMIC_RELEASE);
	return r;
}

struct pv_evtchn *pv_evtchn_open(const char *hv_path)
{
	struct pv_evtchn *ec = calloc(1, sizeof(*ec));
	int r;

	if (!ec) {
		errno = ENOMEM;
		return NULL;
	}
	ec->epfd = ec->sink = ec->att_epfd = -1;
	r = zero_write_wakes();
	if (r == 0)
		r = -EOPNOTSUPP;
	if (r >= 0)
		r = hvc_open(&ec->c, hv_path, 0);
	if (r < 0)
		goto fail;
	/* Nothing to apply for ports (the doorbells survive rebinding), but
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
		ec->ports[p].bell = ec->ports[p].ring = -1;
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

		if (q->bell >= 0) {
			/* The peer shares our doorbell: closing our fd alone
			 * would leave it registered in the caller's set. */
			if (ec->att_epfd >= 0)
				(void)epoll_ctl(ec->att_epfd, EPOLL_CTL_DEL, q->bell, NULL);
			close(q->bell);
		}
		if (q->ring >= 0)
			close(q->ring);
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
	if (port == 0 || port > ec->c.max_port || ec->ports[port].bell < 0)
		return NULL;
	return &ec->ports[port];
}

/* An eventfd (what the kernel names it: there is no S_IS* for it). Only an
 * eventfd takes a zero write that cannot block. */
static bool is_eventfd(int fd)
{
	static const char want[] = "anon_inode:[eventfd]";
	char path[64], name[sizeof(want) + 1];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, name, sizeof(name));
	return n == (ssize_t)sizeof(want) - 1 && memcmp(name, want, (size_t)n) == 0;
}

/* Register (or re-arm, or remove) port's doorbell where this handle's events
 * are awaited. */
static int watch(struct pv_evtchn *ec, int op, evtchn_port_t port)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = port };
	int set = ec->epfd;

	if (ec->att_epfd >= 0) {
		set = ec->att_epfd;
		ev.data.u64 = ec->att_tag;
	}
	return epoll_ctl(set, op, ec->ports[port].bell, op == EPOLL_CTL_DEL ? NULL : &ev) < 0
		? -errno : 0;
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

/* Room for everything unbinding a port retires (its ring fd number, its
 * flags page), made before the port is taken (every bound port and every
 * spare or retired one has a place), so that retiring never allocates and
 * never has to choose between closing a number and leaking it. */
static int reserve(struct pv_evtchn *ec)
{
	unsigned need = ec->nbound + 1;

	if (ec->cap_spare < ec->nspare + need) {
		unsigned ncap = (ec->nspare + need) * 2;
		int *s = realloc(ec->spare, ncap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		ec->spare = s;
		ec->cap_spare = ncap;
	}
	if (ec->cap_retired < ec->nretired + need) {
		unsigned ncap = (ec->nretired + need) * 2;
		void **r = realloc(ec->retired, ncap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		ec->retired = r;
		ec->cap_retired = ncap;
	}
	return 0;
}

/* An unbound port's page: private memory from now on, for racing notifies
 * (the address is never unmapped while the handle lives). If the mmap
 * fails the address still maps the channel's page (a stale notify is a
 * spurious event there); reuse maps over it all the same. */
static void retire_flags(struct pv_evtchn *ec, void *page)
{
	(void)mmap(page, HVP_EC_FLAGS_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ec->retired[ec->nretired++] = page;   /* room: reserve() */
}

/* Empty the handle's own set (what makes its fd readable). */
static void harvest(struct pv_evtchn *ec)
{
	struct epoll_event evs[64];

	while (epoll_wait(ec->epfd, evs, 64, 0) == 64)
		;
}

/* Report again, in the handle's own set, every unmasked port whose flag is
 * set (EPOLL_CTL_MOD of a ready doorbell). */
static void rearm_flagged(struct pv_evtchn *ec)
{
	for (unsigned i = 0; i < ec->nbound; i++) {
		struct ec_port *p = &ec->ports[ec->bound[i]];

		if (!p->masked && __atomic_load_n(p->mine, __ATOMIC_SEQ_CST))
			(void)watch(ec, EPOLL_CTL_MOD, ec->bound[i]);
	}
}

/* A doorbell going into our own set reports at once (it is ready from the
 * start), event or not: take that back, so that the handle's fd is
 * readable only for ports that have something. */
static void settle(struct pv_evtchn *ec)
{
	harvest(ec);
	rearm_flagged(ec);
}

/* Take the port the reply of alloc_unbound / bind_interdomain gave us.
 * `bound`: bind_interdomain, whose new port is pending once. */
static int install(struct pv_evtchn *ec, evtchn_port_t port, bool bound)
{
	uint32_t side = ec->c.rep.arg[0];
	struct ec_port *p;
	void *page = NULL;
	int bell, ring, r = 0;

	if (ec->c.nfds != 3 || port == 0 || port > ec->c.max_port || ec->ports[port].bell >= 0 ||
	    side > 1) {
		hvc_drop_fds(&ec->c);
		return -EPROTO;
	}
	if ((r = reserve(ec)) < 0) {
		hvc_drop_fds(&ec->c);
		return r;
	}
	bell = ec->c.fds[0];
	ring = ec->c.fds[1];
	/* Two eventfds (anything else could block a write or never wake us)
	 * and a memfd that cannot shrink under our mapping. */
	if (!is_eventfd(bell) || !is_eventfd(ring) || !(page = map_flags(ec, ec->c.fds[2])))
		r = -EPROTO;
	close(ec->c.fds[2]);
	ec->c.nfds = 0;
	p = &ec->ports[port];
	if (r == 0) {
		p->bell = bell;
		r = watch(ec, EPOLL_CTL_ADD, port);
	}
	if (r < 0) {
		p->bell = -1;
		close(bell);
		close(ring);
		if (page)  /* maybe a retired address a stale notify still holds */
			retire_flags(ec, page);
		return r;
	}
	if (ec->nspare) {
		int slot = ec->spare[--ec->nspare];
		if (dup3(ring, slot, O_CLOEXEC) >= 0) {
			close(ring);
			ring = slot;
		} else {
			ec->spare[ec->nspare++] = slot;
		}
	}
	p->masked = false;
	p->page = page;
	p->mine = (uint32_t *)((uint8_t *)page + side * HVP_EC_FLAG_STRIDE);
	__atomic_store_n(&p->peer, (uint32_t *)((uint8_t *)page + (1 - side) * HVP_EC_FLAG_STRIDE),
			 __ATOMIC_RELAXED);
	if (bound) {
		/* Our first event; the doorbell, ready from the start, was
		 * reported when it went into the set. */
		__atomic_store_n(p->mine, 1, __ATOMIC_SEQ_CST);
		/* The port we bound to may have outlived an earlier peer that
		 * set its flag and never rang (it died, or unbound, in
		 * between): with the flag set nobody would ring again. */
		if (__atomic_load_n(p->peer, __ATOMIC_SEQ_CST))
			(void)!write(ring, &ring_zero, sizeof(ring_zero));
	}
	__atomic_store_n(&p->ring, ring, __ATOMIC_RELEASE);
	ec->bound[ec->nbound++] = port;
	if (ec->att_epfd < 0)
		settle(ec);
	return (int)port;
}

/* The daemon gave us `port` but install() refused it (a lie, or our
 * process cannot check the fds): hand it back, unless it is out of range or
 * already ours (then the lie is about a port we hold, which stays). */
static void disown(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct hvc_req rq = { .op = HVP_EC_CLOSE, .arg = { port, 0 }, .fd = -1 };

	hvc_drop_fds(&ec->c);
	if (port == 0 || port > ec->c.max_port || ec->ports[port].bell >= 0)
		return;
	(void)hvc_call(&ec->c, &rq);
	hvc_drop_fds(&ec->c);
}

/* install() the port a well-formed reply gave, or hand it back. */
static int take(struct pv_evtchn *ec, evtchn_port_t port, bool bound)
{
	int r = install(ec, port, bound);

	if (r < 0)
		disown(ec, port);
	return r;
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
	r = r < 0 ? r : take(ec, a.port, false);
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
	r = r < 0 ? r : take(ec, b.local_port, true);
	hvc_drop_fds(&ec->c);
	hvc_sync(&ec->c);
	return r;
}

/* Keep the number of an unbound port's `ring` fd, pointed at the sink: a
 * racing notify that loaded it must never write into a file opened later
 * under the same number, so the number is not closed while the handle
 * lives. If dup3 fails it still names the old peer's doorbell: a stale ring
 * there is a spurious wake-up. */
static void retire_ring(struct pv_evtchn *ec, int ring)
{
	(void)dup3(ec->sink, ring, O_CLOEXEC);
	ec->spare[ec->nspare++] = ring;   /* room: reserve() */
}

int pv_evtchn_unbind(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct hvc_req rq = { .op = HVP_EC_CLOSE, .arg = { port, 0 }, .fd = -1 };
	struct ec_port *p = ours(ec, port);
	int ring;

	if (!p)
		return -EINVAL;
	/* Whatever the hypervisor says (the port is gone already if our domain
	 * ended), the port is no longer ours. */
	(void)hvc_call(&ec->c, &rq);
	hvc_drop_fds(&ec->c);
	/* Out of the set before the close: the peer's ring keeps the file. */
	(void)watch(ec, EPOLL_CTL_DEL, port);
	close(p->bell);
	p->bell = -1;
	for (unsigned i = 0; i < ec->nbound; i++)
		if (ec->bound[i] == port) {
			ec->bound[i] = ec->bound[--ec->nbound];
			break;
		}
	ring = p->ring;
	__atomic_store_n(&p->ring, -1, __ATOMIC_RELEASE);
	__atomic_store_n(&p->peer, NULL, __ATOMIC_RELEASE);
	retire_ring(ec, ring);
	retire_flags(ec, p->page);
	p->page = NULL;
	hvc_sync(&ec->c);
	return 0;
}

int pv_evtchn_notify(struct pv_evtchn *ec, evtchn_port_t port)
{
	uint32_t *peer;
	int fd;

	if (port == 0 || port > ec->c.max_port)
		return -EINVAL;
	fd = __atomic_load_n(&ec->ports[port].ring, __ATOMIC_ACQUIRE);
	if (fd < 0)
		return -EINVAL;
	peer = __atomic_load_n(&ec->ports[port].peer, __ATOMIC_ACQUIRE);
	/* Both of the same binding (unbind clears `ring` first, install sets
	 * it last): else the port changed under us, and the event is lost
	 * with the binding it was for. */
	if (!peer || __atomic_load_n(&ec->ports[port].ring, __ATOMIC_ACQUIRE) != fd)
		return 0;
	/* Pending already: the peer has (or will have) its ring. The
	 * exchange is a full barrier: our ring writes before it are seen by
	 * a peer that clears the flag and then reads the ring. */
	if (__atomic_exchange_n(peer, 1, __ATOMIC_SEQ_CST) != 0)
		return 0;
	return write(fd, &ring_zero, sizeof(ring_zero)) < 0 ? -errno : 0;
}

int pv_evtchn_test_write(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct ec_port *p = ours(ec, port);

	if (!p)
		return -EINVAL;
	return write(p->ring, &ring_zero, sizeof(ring_zero)) < 0 ? -errno : 0;
}

/* The next bound port whose flag is set and that is not masked: masked and
 * cleared, as Xen returns it. */
static int scan(struct pv_evtchn *ec)
{
	for (unsigned k = 0; k < ec->nbound; k++) {
		unsigned i = (ec->next + k) % ec->nbound;
		struct ec_port *p = &ec->ports[ec->bound[i]];

		if (p->masked || !__atomic_load_n(p->mine, __ATOMIC_RELAXED))
			continue;
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
	/* Attached, the caller's epoll_wait took the wake-ups. Else take
	 * ours before looking at the flags: a notify after that leaves the
	 * fd readable, and one before it is seen here, so the fd stays
	 * readable only while there is something to take. */
	int r;

	if (ec->att_epfd >= 0)
		return scan(ec);
	harvest(ec);
	r = scan(ec);
	/* Level-triggered as libxenevtchn's fd: readable again while other
	 * ports are pending, for a caller that takes one per wake-up. */
	if (r >= 0)
		rearm_flagged(ec);
	return r;
}

int pv_evtchn_unmask(struct pv_evtchn *ec, evtchn_port_t port)
{
	struct ec_port *p = ours(ec, port);

	if (!p)
		return -EINVAL;
	p->masked = false;
	/* Pending while masked: no new ring will come (the peer sees the
	 * flag set), so report the doorbell, ready as ever, again. */
	if (__atomic_load_n(p->mine, __ATOMIC_SEQ_CST))
		return watch(ec, EPOLL_CTL_MOD, port);
	return 0;
}

/* Register every bound port's doorbell in `to` (the caller's set, or ours
 * when to < 0), then take them out of where they were. Going into the
 * caller's set, each reports once (ready from the start): at worst a
 * wake-up for nothing. */
static int move_ports(struct pv_evtchn *ec, int to, uint64_t tag)
{
	int from = ec->att_epfd >= 0 ? ec->att_epfd : ec->epfd, into = to < 0 ? ec->epfd : to;

	for (unsigned i = 0; i < ec->nbound; i++) {
		evtchn_port_t port = ec->bound[i];
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET,
					  .data.u64 = to < 0 ? port : tag };
		int r;

		if (epoll_ctl(into, EPOLL_CTL_ADD, ec->ports[port].bell, &ev) < 0) {
			r = -errno;
			for (unsigned j = 0; j < i; j++)
				(void)epoll_ctl(into, EPOLL_CTL_DEL, ec->ports[ec->bound[j]].bell, NULL);
			return r;
		}
	}
	for (unsigned i = 0; i < ec->nbound; i++)
		(void)epoll_ctl(from, EPOLL_CTL_DEL, ec->ports[ec->bound[i]].bell, NULL);
	ec->att_epfd = to;
	ec->att_tag = tag;
	if (to < 0)
		settle(ec);
	return 0;
}

int pv_evtchn_attach(struct pv_evtchn *ec, int epfd, uint64_t tag)
{
	if (epfd < 0)
		return ec->att_epfd < 0 ? 0 : move_ports(ec, -1, 0);
	if (ec->att_epfd >= 0)
		return -EINVAL;
	if (getenv("PVNET_EVTCHN_LEVEL"))
		return -EOPNOTSUPP;
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
