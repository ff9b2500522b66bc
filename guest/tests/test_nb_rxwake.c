/*
 * pvnet-netback's rx wake-up (commit c106b6b): the newest rx producer netback
 * has seen must be the last one it loaded anywhere, also in the middle of an
 * rx round. With only the round start's value, requests posted during a
 * round and picked up by a mid-round reload move the consumer past that
 * value; when the frontend then refills the whole ring in one go, its
 * notification carries a producer more than a ring ahead of the stale value,
 * the event-storm check (netback/queue.c handle_port) reads it as "no work",
 * and a queue blocked on rx buffers is never kicked: every frame for the
 * guest waits in the vif's TAP until the drain timer throws it away (frames
 * lost to the guest after migrations under load).
 *
 * The frontend here is netback's own test frontend (netback/tests/tfront.c,
 * a private netns with pvnet-xenstored, pvnet-hypervisor and pvnet-netback),
 * driven as a netfront that posts its rx buffers late and in batches while
 * the host keeps a stream of frames queued for it. Each cycle:
 *   1. netback is blocked on buffers (req_event ahead of req_prod, every
 *      response pushed); the frontend reaps the responses;
 *   2. it posts X buffers (crossing req_event: one notification; netback
 *      starts a round at producer P0);
 *   3. after a varying delay it posts Y more without a notification (the
 *      event index is already behind): if they land inside that round,
 *      netback's mid-round reload takes them and consumes past P0;
 *   4. once netback blocks again, the frontend reaps and refills the whole
 *      ring (one notification; the producer is now consumer + 256, i.e. more
 *      than a ring past P0);
 *   5. netback must answer within STALL_MS (the drain and stall timers are
 *      set far beyond the test): a queue that stays silent with frames
 *      waiting and a full ring posted is the stall of the bug.
 * Without the fix it stalls within the first few cycles (at most 221 seen,
 * with two CPU hogs running); with it, 1000 cycles (~300000 frames) take
 * 1.5 s (up to ~4 s on a loaded machine).
 * At the end every frame the host sent must have reached the frontend
 * exactly once and netback's to_guest dropped count must be 0.
 *
 * Usage: test-guest-nb-rxwake [cycles]. Needs root and /dev/net/tun (77).
 * Output: ok / not ok lines and "N passed, N failed".
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "netif/link.h"
#include "netif/tests/netns_test.h"
#include "netback/tests/tfront.h"

static int pass, fail;

#define CHECK(cond, ...) do {							\
	if (cond) { pass++; printf("ok - "); printf(__VA_ARGS__); printf("\n"); }	\
	else { fail++; printf("not ok - "); printf(__VA_ARGS__);		\
	       printf(" (%s:%d)\n", __FILE__, __LINE__); }				\
	fflush(stdout);								\
} while (0)

static const uint8_t host_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
/* A Linux netfront: one queue, rx-notify, SG and GSO (netback then needs 18
 * posted requests before it reads a frame: NB_RX_MAX_PAGES + the GSO hole;
 * the test reads the number from netback's first req_event). */
static const struct tf_vif_opts linux_fe = { .nqueues = 1, .num_queues_key = -1 };
#define STALL_MS 2000         /* silence that is a stall (the drain timer is 600 s) */
#define RSIZE PV_NET_RX_RING_SIZE
#define BACKLOG 360u          /* frames kept queued for the guest (the TAP holds 500) */
#define NSEQ (1u << 20)
#define SEQ_OFF 42u           /* UDP payload: "RXWK" + be32 sequence number */

struct run {
	struct tf_env *e;
	struct tf_vif *v;
	uint32_t sent, got, dups, other;
	uint8_t *seen;            /* NSEQ bits */
	unsigned need;            /* requests netback wants posted before it reads a frame */
	bool stalled;
};

/* A missing counter reads as all ones, so that "== 0" cannot pass on it. */
static unsigned long long stat_value(struct tf_env *e, struct tf_vif *v, const char *dir, const char *key)
{
	return tf_vif_stat(e, v, dir, key, ~0ull);
}

static RING_IDX load(const RING_IDX *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/* The host sends frames to the guest until BACKLOG are on their way. */
static void top_up(struct run *r)
{
	uint8_t f[128];
	size_t len = tf_mk_udp4(f, r->v->mac, host_mac, 32, 0);

	while (r->sent - r->got < BACKLOG && r->sent < NSEQ) {
		uint32_t s = r->sent;

		memcpy(f + SEQ_OFF, "RXWK", 4);
		f[SEQ_OFF + 4] = (uint8_t)(s >> 24);
		f[SEQ_OFF + 5] = (uint8_t)(s >> 16);
		f[SEQ_OFF + 6] = (uint8_t)(s >> 8);
		f[SEQ_OFF + 7] = (uint8_t)s;
		if (tf_host_send(r->e, NULL, f, len) < 0)
			break;
		r->sent++;
	}
}

/* Reap every rx response (one slot per frame: small, no GSO), recording
 * the sequence numbers. No buffer is posted again here. */
static void reap(struct run *r)
{
	struct tf_queue *q = &r->v->q[0];
	RING_IDX rp = load(&q->rx.sring->rsp_prod);

	for (; q->rx.rsp_cons != rp; q->rx.rsp_cons++) {
		netif_rx_response_t rsp = *RING_GET_RESPONSE(&q->rx, q->rx.rsp_cons);
		const uint8_t *d = q->rx_pages[rsp.id & (RSIZE - 1)] + rsp.offset;
		uint32_t s;

		if (rsp.status < (int16_t)(SEQ_OFF + 8) || rsp.offset + (unsigned)rsp.status > PV_PAGE_SIZE ||
		    (rsp.flags & (NETRXF_more_data | NETRXF_extra_info)) || memcmp(d, r->v->mac, 6) ||
		    memcmp(d + SEQ_OFF, "RXWK", 4)) {
			r->other++;   /* the host stack's own chatter (IPv6 and the like) */
			continue;
		}
		s = (uint32_t)d[SEQ_OFF + 4] << 24 | (uint32_t)d[SEQ_OFF + 5] << 16 |
		    (uint32_t)d[SEQ_OFF + 6] << 8 | d[SEQ_OFF + 7];
		if (s >= NSEQ)
			continue;
		if (r->seen[s >> 3] & (1u << (s & 7)))
			r->dups++;
		else
			r->got++;
		r->seen[s >> 3] |= (uint8_t)(1u << (s & 7));
	}
	RING_FINAL_CHECK_FOR_RESPONSES(&q->rx, rp);
}

/* Post n buffers (or as many as the ring takes); notifies only if the
 * producer crosses netback's req_event, as netfront does (tf_rx_post, which
 * does not say whether it notified). True if it notified. */
static bool post(struct run *r, unsigned n)
{
	struct tf_queue *q = &r->v->q[0];
	int notify;

	for (unsigned i = 0; i < n && RING_FREE_REQUESTS(&q->rx) > 0; i++) {
		RING_IDX idx = q->rx.req_prod_pvt++;
		netif_rx_request_t *req = RING_GET_REQUEST(&q->rx, idx);

		req->id = (uint16_t)(idx & (RSIZE - 1));
		req->gref = q->rx_refs[idx & (RSIZE - 1)];
	}
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&q->rx, notify);
	if (notify)
		tf_notify(r->v, 0, false);
	return notify;
}

/* Netback is blocked on rx buffers and has pushed every response: its
 * req_event is ahead of the producer and `need` past its consumer. */
static bool blocked(struct run *r)
{
	netif_rx_sring_t *s = r->v->q[0].rx.sring;
	RING_IDX ev = load(&s->req_event), prod = load(&s->req_prod), rsp = load(&s->rsp_prod);

	return ev - prod - 1 < RSIZE && ev - rsp == r->need;
}

/* Wait until netback is blocked again, keeping the host's stream queued.
 * False if it stays silent for timeout_ms with frames waiting and buffers
 * posted (the stall). */
static bool wait_blocked(struct run *r, int timeout_ms)
{
	struct tf_queue *q = &r->v->q[0];
	uint64_t last = pv_now_ns();
	RING_IDX rsp = load(&q->rx.sring->rsp_prod);

	for (;;) {
		top_up(r);
		if (blocked(r))
			return true;
		if (load(&q->rx.sring->rsp_prod) != rsp) {
			rsp = load(&q->rx.sring->rsp_prod);
			last = pv_now_ns();
		} else if (pv_now_ns() - last > (uint64_t)timeout_ms * 1000000u) {
			return false;
		}
		sched_yield();
	}
}

/* What the rings looked like when netback stopped answering. */
static void stall_note(struct run *r, const char *when)
{
	netif_rx_sring_t *s = r->v->q[0].rx.sring;

	r->stalled = true;
	printf("# stalled %s: rx req_prod %u req_event %u rsp_prod %u (%u buffers posted, none "
	       "answered for %d ms), %u frames waiting for the guest\n", when, load(&s->req_prod),
	       load(&s->req_event), load(&s->rsp_prod), load(&s->req_prod) - load(&s->rsp_prod),
	       STALL_MS, r->sent - r->got);
}

static void spin_us(unsigned us)
{
	uint64_t end = pv_now_ns() + (uint64_t)us * 1000u;

	while (pv_now_ns() < end)
		;
}

static void case_late_batches(struct tf_env *e, unsigned cycles)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_dom *d = tf_dom_new(e);
	struct tf_vif v;
	struct run r = { .e = e, .v = &v };
	uint64_t t0;
	unsigned c, x, y, delay = 20, late = 0;
	int rc;

	o.rx_post = 0;
	o.no_rx_post = true;     /* the buffers come late */
	if (!d || (rc = tf_vif_add(e, d, 0, &v)) < 0 || (rc = tf_vif_connect(&v, &o, false)) < 0) {
		CHECK(0, "connect a vif");
		return;
	}
	r.seen = calloc(NSEQ / 8, 1);
	if (!r.seen) {
		CHECK(0, "memory");
		return;
	}
	/* Teach the bridge the guest's MAC (frames to it go to the vif only). */
	{
		uint8_t f[128];
		size_t len = tf_mk_udp4(f, host_mac, v.mac, 40, 1);
		int16_t st = 99;

		CHECK(tf_tx(&v, 0, f, len, 0, NULL, 0, &st) == 0 && st == NETIF_RSP_OKAY, "a frame from the guest");
	}
	/* Nothing posted yet: netback's first rx round asked to be told when
	 * `need` requests are (SHARED_RING_INIT left req_event at 1). */
	for (int t = 0; t < 1000 && load(&v.q[0].rx.sring->req_event) == 1; t++)
		pv_sleep_ns(1000000);
	r.need = load(&v.q[0].rx.sring->req_event) - v.q[0].rx.sring->rsp_prod;
	CHECK(r.need >= 1 && r.need <= 19, "netback waits for %u posted rx requests", r.need);
	if (r.need < 1 || r.need > 19)
		goto out;
	t0 = pv_now_ns();
	/* First buffers: netback takes frames until it runs short and blocks. */
	top_up(&r);
	post(&r, 2 * r.need);
	if (!wait_blocked(&r, STALL_MS)) {
		CHECK(0, "netback blocks once the first buffers are used");
		goto out;
	}
	for (c = 0; c < cycles; c++) {
		reap(&r);
		top_up(&r);
		/* 2. X buffers: one notification, netback starts a round. With
		 * need - 1 left over it takes X frames before it runs short and
		 * loads the producer again; if Y is there by then it takes Y more
		 * (Y >= need: past P0). X + Y < NB_RX_BATCH (64): the same round
		 * then ends blocked, else the next round would load afresh. */
		y = r.need + c % 4;
		x = 63 - y - (c * 7) % 8;
		post(&r, x);
		/* 3. Y more while that round runs. The round's end cannot be seen
		 * from here, but a Y that came after it crosses the new req_event
		 * and notifies: the delay then shrinks, else it grows, so Y keeps
		 * landing just before the round runs short (a little jitter on
		 * top). */
		spin_us(delay + (c * 37) % 8);
		if (post(&r, y)) {
			late++;
			delay -= delay > 4 ? delay / 4 : delay > 0;
		} else if (delay < 2000) {
			delay += 2;
		}
		if (!wait_blocked(&r, STALL_MS)) {
			stall_note(&r, "after the late batch");
			break;
		}
		reap(&r);
		top_up(&r);
		/* 4. The whole ring at once. */
		post(&r, RSIZE);
		/* 5. Netback must take them. */
		if (!wait_blocked(&r, STALL_MS)) {
			stall_note(&r, "after the whole ring was posted");
			break;
		}
	}
	printf("# %u cycles in %.2f s: %u frames sent, %u received; the late batch came after the "
	       "round %u times, last delay %u us\n", c, (double)(pv_now_ns() - t0) / 1e9, r.sent, r.got,
	       late, delay);
	CHECK(!r.stalled, "netback never stalls on the rx ring with buffers posted and frames waiting "
	      "(%u cycles done)", c);
	/* Everything still on its way is delivered once buffers are there. */
	{
		uint64_t end = pv_now_ns() + (r.stalled ? 500000000ull : 3000000000ull);

		while (r.got + r.dups < r.sent && pv_now_ns() < end) {
			reap(&r);
			post(&r, RSIZE);
			usleep(200);
		}
	}
	CHECK(r.got == r.sent, "every frame sent to the guest was received (%u of %u)", r.got, r.sent);
	CHECK(r.dups == 0, "none twice (%u)", r.dups);
	CHECK(stat_value(e, &v, "to_guest", "dropped") == 0, "netback dropped no frame to the guest");
	printf("# netback counted %llu spurious events (a notification racing a mid-round reload is one)\n",
	       stat_value(e, &v, "vif", "spurious_events"));
out:
	free(r.seen);
}

static struct tf_env env;
static bool env_started;

/* The daemons die with us (PR_SET_PDEATHSIG) and the namespace with them;
 * the run directory is removed here, also on SIGINT/SIGTERM. */
static void cleanup(void)
{
	if (env_started) {
		env_started = false;
		tf_env_stop(&env);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	exit(130);
}

int main(int argc, char **argv)
{
	/* Neither timer may wake the queue during the test: a stall timeout
	 * of 0 would mean "no rx-notify: poll the ring every millisecond",
	 * which hides the bug. */
	struct tf_env_opts o = { .netback_args = "--rx-drain-timeout 600000 --rx-stall-timeout 600000" };
	unsigned cycles = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000;
	struct tf_env *e = &env;
	int r;

	signal(SIGPIPE, SIG_IGN);   /* a daemon or peer that goes mid-write */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The bridge, the host port and the vif exist only in our namespace. */
	if ((r = nif_test_enter_netns()) != 0)
		return r;
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	env_started = true;
	r = tf_env_start(e, &o);
	if (r == 77) {
		printf("SKIP: pvnet-xenstored, pvnet-hypervisor or pvnet-netback not built\n");
		return 77;
	}
	if (r < 0) {
		CHECK(0, "environment: %s", strerror(-r));
	} else {
		case_late_batches(e, cycles);
		if (fail)
			tf_env_dump_logs(e);
	}
	cleanup();
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
