/*
 * Hypervisor benchmark (suite `bench`): each figure next to its baseline
 * measured in the same run on the same machine.
 *   - event channel: notify-to-wake latency (ping-pong between two processes,
 *     half the round trip) and the maximum notify rate, against a bare
 *     eventfd ping-pong / write loop;
 *   - grant map+unmap per second, one per call and 64 per batch;
 *   - grant copy throughput, batches of 1, 16 and 64 copies of 4 KiB, against
 *     memcpy of the same pages between the same memories.
 * Each figure is the median of short runs alternating with its baseline. The
 * ping-pongs run with both processes pinned, on one CPU and on two, since
 * where the scheduler puts them changes a wakeup's cost tenfold on a VM.
 * Never fails on speed: it prints figures and ratios for BENCHMARKS.md.
 * PVNET_BENCH_SCALE (default 1) multiplies the run lengths.
 */
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "common/util.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/hv.h"
#include "hypervisor/tests/hvtest.h"

#define RUNS 5
#define LRUNS 7
#define NPAGES 64

static struct hvt_daemon H;
static char guest_sock[256];
static double scale = 1.0;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static int pin_parent = -1, pin_child = -1;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu < 0) {
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	} else {
		CPU_SET(cpu, &set);
	}
	(void)sched_setaffinity(0, sizeof(set), &set);
}

/* ---- event channels ------------------------------------------------------------------ */

struct pingpong {
	int efd[2];     /* bare eventfds: parent->child, child->parent */
	int rt[2];      /* bare SEQPACKET pair */
	int sv[2];
};

/* The bare baselines' partner: eventfd ping-pong rounds, then socket
 * round trips, as many as the parent announces. */
static int bare_child(void *arg)
{
	struct pingpong *x = arg;
	uint64_t v = 1;
	char buf[64];
	int rounds;

	pin(pin_child);
	rounds = (int)hvt_get(x->sv[1]);

	for (int r = 0; r < rounds; r++) {
		int iters = (int)hvt_get(x->sv[1]);
		for (int i = 0; i < iters; i++) {
			CHECK(read(x->efd[0], &v, 8) == 8);
			CHECK(write(x->efd[1], &v, 8) == 8);
		}
		for (int i = 0; i < iters; i++) {
			CHECK(recv(x->rt[1], buf, sizeof(buf), 0) == 32);
			CHECK(send(x->rt[1], buf, 32, 0) == 32);
		}
	}
	return 0;
}

/* One round: eventfd one-way latency (half the round trip) and the
 * SEQPACKET round trip, both in microseconds. */
static void bare_round(struct pingpong *x, int iters, double *lat, double *rtt)
{
	uint64_t v = 1, t0;
	char buf[64] = { 0 };

	hvt_put(x->sv[0], (uint32_t)iters);
	t0 = pv_now_ns();
	for (int i = 0; i < iters; i++) {
		CHECK(write(x->efd[0], &v, 8) == 8);
		CHECK(read(x->efd[1], &v, 8) == 8);
	}
	*lat = (double)(pv_now_ns() - t0) / iters / 2 / 1000.0;
	t0 = pv_now_ns();
	for (int i = 0; i < iters; i++) {
		CHECK(send(x->rt[0], buf, 32, 0) == 32);
		CHECK(recv(x->rt[0], buf, sizeof(buf), 0) == 32);
	}
	*rtt = (double)(pv_now_ns() - t0) / iters / 1000.0;
}

static pid_t bare_open(struct pingpong *x, int rounds)
{
	pid_t pid;

	x->efd[0] = eventfd(0, EFD_CLOEXEC);
	x->efd[1] = eventfd(0, EFD_CLOEXEC);
	hvt_pipe(x->rt);
	hvt_pipe(x->sv);
	pid = hvt_fork(bare_child, x);
	hvt_put(x->sv[0], (uint32_t)rounds);
	return pid;
}

/* Wait for our port, take it, unmask it: what a pvnet driver does per event
 * (its loop waits in epoll_wait; the handle is attached to that epoll set,
 * pv_evtchn_attach, as netback's and netfront's are). */
static void ec_wait(struct pv_evtchn *ec, int port, int loop_fd)
{
	struct epoll_event ev;
	int p;

	for (;;) {
		while (epoll_wait(loop_fd, &ev, 1, -1) < 0 && errno == EINTR)
			;
		p = pv_evtchn_pending(ec);
		if (p == port)
			break;
	}
	CHECK(pv_evtchn_unmask(ec, (evtchn_port_t)port) == 0);
}

static int loop_fd_for(struct pv_evtchn *ec)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);

	CHECK(ep >= 0 && pv_evtchn_attach(ec, ep, 1) == 0);
	return ep;
}

static int ec_child(void *arg)
{
	struct pingpong *x = arg;
	struct pv_evtchn *ec = pv_evtchn_open(guest_sock);
	int port, rounds;

	int lfd;

	pin(pin_child);
	CHECK(ec);
	lfd = loop_fd_for(ec);
	port = pv_evtchn_bind_unbound_port(ec, 0);
	CHECK(port > 0);
	hvt_put(x->sv[1], (uint32_t)port);
	rounds = (int)hvt_get(x->sv[1]);
	for (int r = 0; r < rounds; r++) {
		int iters = (int)hvt_get(x->sv[1]);
		for (int i = 0; i < iters; i++) {
			ec_wait(ec, port, lfd);
			CHECK(pv_evtchn_notify(ec, (evtchn_port_t)port) == 0);
		}
	}
	pv_evtchn_close(ec);
	close(lfd);
	return 0;
}

struct ec_pair {
	struct pingpong x;
	struct pv_evtchn *ec;
	int port, lfd;
	pid_t child;
};

static void ec_pair_open(struct ec_pair *e, int rounds)
{
	hvt_pipe(e->x.sv);
	e->child = hvt_fork(ec_child, &e->x);
	e->ec = pv_evtchn_open(H.sock);
	CHECK(e->ec);
	e->lfd = loop_fd_for(e->ec);
	e->port = pv_evtchn_bind_interdomain(e->ec, 1, hvt_get(e->x.sv[0]));
	CHECK(e->port > 0);
	CHECK(pv_evtchn_pending(e->ec) == e->port); /* the binding's first event */
	CHECK(pv_evtchn_unmask(e->ec, (evtchn_port_t)e->port) == 0);
	hvt_put(e->x.sv[0], (uint32_t)rounds);
}

static double ec_latency_us(struct ec_pair *e, int iters)
{
	uint64_t t0;

	hvt_put(e->x.sv[0], (uint32_t)iters);
	t0 = pv_now_ns();
	for (int i = 0; i < iters; i++) {
		CHECK(pv_evtchn_notify(e->ec, (evtchn_port_t)e->port) == 0);
		ec_wait(e->ec, e->port, e->lfd);
	}
	return (double)(pv_now_ns() - t0) / iters / 2 / 1000.0;
}

/* Notify rate: the sender writes as fast as it can for `ms`; the receiver
 * counts wakeups. Returns the sender's rate; *wakeups the receiver's. */
struct rate {
	int efd;              /* bare */
	int sv[2];
	bool pv;
	int port;
};

static int rate_child(void *arg)
{
	struct rate *r = arg;
	struct pv_evtchn *ec = NULL;
	uint64_t wakeups = 0, v;
	int port = 0;

	if (r->pv) {
		CHECK(ec = pv_evtchn_open(guest_sock));
		port = pv_evtchn_bind_unbound_port(ec, 0);
		CHECK(port > 0);
		hvt_put(r->sv[1], (uint32_t)port);
	}
	hvt_put(r->sv[1], 0); /* ready */
	for (;;) {
		struct pollfd p[2] = { { .fd = r->pv ? pv_evtchn_fd(ec) : r->efd, .events = POLLIN },
				       { .fd = r->sv[1], .events = POLLIN } };
		CHECK(poll(p, 2, -1) > 0);
		if (p[1].revents)
			break;
		if (r->pv) {
			if (pv_evtchn_pending(ec) == port) {
				wakeups++;
				CHECK(pv_evtchn_unmask(ec, (evtchn_port_t)port) == 0);
			}
		} else if (read(r->efd, &v, 8) == 8) {
			wakeups++;
		}
	}
	(void)hvt_get(r->sv[1]);
	hvt_put(r->sv[1], (uint32_t)wakeups);
	pv_evtchn_close(ec);
	return 0;
}

static double notify_rate(bool pv, int ms, double *wakeups_per_s)
{
	struct rate r = { .pv = pv };
	struct pv_evtchn *ec = NULL;
	uint64_t n = 0, t0, dt, v = 1;
	int port = 0;
	pid_t pid;

	hvt_pipe(r.sv);
	r.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pid = hvt_fork(rate_child, &r);
	if (pv) {
		CHECK(ec = pv_evtchn_open(H.sock));
		port = pv_evtchn_bind_interdomain(ec, 1, hvt_get(r.sv[0]));
		CHECK(port > 0);
	}
	(void)hvt_get(r.sv[0]);
	t0 = pv_now_ns();
	do {
		for (int i = 0; i < 256; i++) {
			if (pv)
				CHECK(pv_evtchn_notify(ec, (evtchn_port_t)port) == 0);
			else
				CHECK(write(r.efd, &v, 8) == 8);
		}
		n += 256;
		dt = pv_now_ns() - t0;
	} while (dt < (uint64_t)ms * 1000000u);
	hvt_put(r.sv[0], 1);
	*wakeups_per_s = hvt_get(r.sv[0]) / (dt / 1e9);
	CHECK(hvt_wait(pid) == 0);
	pv_evtchn_close(ec);
	close(r.efd);
	close(r.sv[0]);
	close(r.sv[1]);
	return n / (dt / 1e9);
}

/* ---- grants ------------------------------------------------------------------------------ */

struct grants {
	struct pv_hv *ghv;
	uint8_t *gmem;
	size_t gpages;
	struct pv_gntshr *gs;
	grant_ref_t refs[NPAGES];
	uint8_t *gpage0;            /* the granted pages, contiguous */
	struct pv_hv *hv0;
	uint8_t *mem0;
	size_t pages0;
	struct pv_gnttab *gt;
};

static void grants_open(struct grants *g)
{
	struct pv_pagealloc *pa;

	CHECK(g->ghv = pv_hv_open(guest_sock));
	CHECK(g->gmem = pv_hv_map_own_memory(g->ghv, NULL, &g->gpages));
	CHECK(g->gs = pv_gntshr_open(g->ghv));
	CHECK(pa = pv_pagealloc_new(g->gmem, g->gpages, 0));
	CHECK(g->gpage0 = pv_gntshr_share_pages(g->gs, pa, 0, NPAGES, g->refs, true));
	memset(g->gpage0, 0x11, NPAGES * PV_PAGE_SIZE);
	pv_pagealloc_free(pa);
	CHECK(g->hv0 = pv_hv_open(H.sock));
	CHECK(g->mem0 = pv_hv_map_own_memory(g->hv0, NULL, &g->pages0));
	CHECK(g->gt = pv_gnttab_open(H.sock));
	CHECK(pv_gnttab_set_own_memory(g->gt, g->mem0, g->pages0) == 0);
	memset(g->mem0, 0x22, NPAGES * PV_PAGE_SIZE);
}

static double map_unmap_rate(struct grants *g, unsigned batch, int ms)
{
	struct pv_gnttab_map_op ops[NPAGES];
	uint32_t handles[NPAGES];
	int16_t st[NPAGES];
	uint64_t n = 0, t0 = pv_now_ns(), dt;

	do {
		for (unsigned i = 0; i < batch; i++)
			ops[i] = (struct pv_gnttab_map_op){ .domid = 1, .ref = g->refs[i] };
		CHECK(pv_gnttab_map_batch(g->gt, batch, ops) == 0);
		for (unsigned i = 0; i < batch; i++) {
			CHECK(ops[i].status == GNTST_okay);
			handles[i] = ops[i].handle;
		}
		CHECK(pv_gnttab_unmap_batch(g->gt, batch, handles, st) == 0);
		n += batch;
		dt = pv_now_ns() - t0;
	} while (dt < (uint64_t)ms * 1000000u);
	return n / (dt / 1e9);
}

/* Grant copy guest -> dom0, `batch` pages of 4 KiB per call: bytes/s. */
static double copy_rate(struct grants *g, unsigned batch, int ms)
{
	struct pv_gnttab_copy_seg segs[NPAGES];
	uint64_t bytes = 0, t0 = pv_now_ns(), dt;

	do {
		for (unsigned i = 0; i < batch; i++) {
			segs[i] = (struct pv_gnttab_copy_seg){ .len = PV_PAGE_SIZE,
							       .flags = PV_GNTCOPY_source_gref };
			segs[i].source.foreign.domid = 1;
			segs[i].source.foreign.ref = g->refs[i];
			segs[i].dest.virt = g->mem0 + (size_t)i * PV_PAGE_SIZE;
		}
		CHECK(pv_gnttab_grant_copy(g->gt, batch, segs) == 0);
		for (unsigned i = 0; i < batch; i++)
			CHECK(segs[i].status == GNTST_okay);
		bytes += (uint64_t)batch * PV_PAGE_SIZE;
		dt = pv_now_ns() - t0;
	} while (dt < (uint64_t)ms * 1000000u);
	return bytes / (dt / 1e9);
}

/* The same pages with memcpy, in this process. */
static double memcpy_rate(struct grants *g, unsigned batch, int ms)
{
	uint64_t bytes = 0, t0 = pv_now_ns(), dt;

	do {
		for (unsigned i = 0; i < batch; i++)
			memcpy(g->mem0 + (size_t)i * PV_PAGE_SIZE, g->gpage0 + (size_t)i * PV_PAGE_SIZE,
			       PV_PAGE_SIZE);
		__asm__ __volatile__("" ::: "memory");
		bytes += (uint64_t)batch * PV_PAGE_SIZE;
		dt = pv_now_ns() - t0;
	} while (dt < (uint64_t)ms * 1000000u);
	return bytes / (dt / 1e9);
}

int main(void)
{
	struct pv_domain_config cfg = { .name = "bench" };
	const char *s = getenv("PVNET_BENCH_SCALE");
	double a[RUNS], b[RUNS], w[RUNS], w2[RUNS], rtt[2] = { 0, 0 }, lat_bare, lat_pv;
	struct pingpong bare;
	struct ec_pair e;
	pid_t bare_pid;
	struct grants g = { 0 };
	struct pv_hv *hv;
	uint32_t d;
	int iters, ms;

	signal(SIGPIPE, SIG_IGN);   /* a daemon that goes mid-call */
	if (s && atof(s) > 0)
		scale = atof(s);
	iters = (int)(5000 * scale);
	ms = (int)(300 * scale);
	hvt_start(&H, NULL);
	CHECK(hv = pv_hv_open(H.sock));
	CHECK(pv_hv_domain_create(hv, &cfg, &d) == 0 && d == 1);
	CHECK(pv_hv_domain_socket(hv, 1, guest_sock, sizeof(guest_sock)) == 0);

	printf("# pvnet-hypervisor benchmark (median of %d runs each, baseline in the same run)\n",
	       RUNS);
	/* Event channels: ping-pong on one CPU, then on two. */
	for (int place = 0; place < 2; place++) {
		double la[LRUNS], lb[LRUNS], lr[LRUNS];

		pin_parent = 0;
		pin_child = place;
		if (place == 1 && sysconf(_SC_NPROCESSORS_ONLN) < 2)
			break;
		pin(pin_parent);
		ec_pair_open(&e, LRUNS);
		bare_pid = bare_open(&bare, LRUNS);
		for (int r = 0; r < LRUNS; r++) {
			bare_round(&bare, iters, &la[r], &lr[r]);
			lb[r] = ec_latency_us(&e, iters);
		}
		CHECK(hvt_wait(e.child) == 0);
		CHECK(hvt_wait(bare_pid) == 0);
		pv_evtchn_close(e.ec);
		close(e.lfd);
		lat_bare = median(la, LRUNS);
		lat_pv = median(lb, LRUNS);
		rtt[place] = median(lr, LRUNS);
		printf("evtchn notify->wake, %s   bare eventfd %7.2f us   pv_evtchn %7.2f us   "
		       "ratio %.2fx (target <= 1.20x)\n", place ? "two CPUs" : "one CPU ",
		       lat_bare, lat_pv, lat_pv / lat_bare);
	}
	pin_parent = pin_child = -1;
	pin(-1);
	for (int r = 0; r < RUNS; r++) {
		a[r] = notify_rate(false, ms, &w[r]);
		b[r] = notify_rate(true, ms, &w2[r]);
	}
	printf("evtchn max notify rate        bare eventfd %7.2f M/s  pv_evtchn %7.2f M/s  "
	       "ratio %.2f   (receiver wakeups: bare %.0f/s, pv %.0f/s)\n",
	       median(a, RUNS) / 1e6, median(b, RUNS) / 1e6, median(b, RUNS) / median(a, RUNS),
	       median(w, RUNS), median(w2, RUNS));

	/* Grants: every call is one round trip to the daemon (pinned too). */
	printf("reference: bare SOCK_SEQPACKET round trip, one CPU %.2f us, two CPUs %.2f us\n",
	       rtt[0], rtt[1]);
	grants_open(&g);
	for (int place = 0; place < 2; place++) {
		const char *where = place ? "two CPUs" : "one CPU ";
		cpu_set_t set;

		if (place == 1 && sysconf(_SC_NPROCESSORS_ONLN) < 2)
			break;
		CPU_ZERO(&set);
		CPU_SET(0, &set);
		(void)sched_setaffinity(H.pid, sizeof(set), &set);
		pin(place);
		for (int r = 0; r < RUNS; r++) {
			a[r] = map_unmap_rate(&g, 1, ms);
			b[r] = map_unmap_rate(&g, NPAGES, ms);
		}
		printf("grant map+unmap, %s       single %9.0f ops/s   batch of 64 %9.0f ops/s   "
		       "(%.1fx)\n", where, median(a, RUNS), median(b, RUNS),
		       median(b, RUNS) / median(a, RUNS));
		for (unsigned batch = 1; batch <= NPAGES; batch *= batch == 1 ? 16 : 4) {
			for (int r = 0; r < RUNS; r++) {
				a[r] = memcpy_rate(&g, batch, ms);
				b[r] = copy_rate(&g, batch, ms);
			}
			printf("grant copy %2u x 4 KiB, %s memcpy %6.2f GB/s   grant copy %6.2f GB/s   "
			       "ratio %3.0f%%%s\n", batch, where, median(a, RUNS) / 1e9,
			       median(b, RUNS) / 1e9, 100 * median(b, RUNS) / median(a, RUNS),
			       batch == NPAGES ? " (target >= 70%)" : "");
		}
	}
	fflush(stdout);
	pv_gnttab_close(g.gt);
	pv_gntshr_close(g.gs);
	pv_hv_close(g.ghv);
	pv_hv_close(g.hv0);
	pv_hv_close(hv);
	return hvt_stop(&H) == 0 ? 0 : 1;
}
