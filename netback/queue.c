/*
 * The queue thread: set-up (rings, event channels), the event loop, event
 * channel handling with storm throttling, revocation notices, teardown.
 * The data path itself is in tx.c and rx.c.
 *
 * Loop shape: fd callbacks only record work (tx_kick, rx_kick); after each
 * epoll round the thread runs one bounded tx round and one bounded rx round
 * (64 packets each, like NAPI's weight), and polls again without sleeping
 * while a round reports more work. So neither direction starves the other
 * and every ring batch costs one grant map and one grant unmap round trip.
 */
#include "netback/queue_priv.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#include "netback/vif.h"

const struct nb_qstats *nb_queue_stats(const struct nb_queue *q) { return &q->st; }

void nb_queue_set_rate(struct nb_queue *q, uint64_t credit_bytes, uint64_t credit_usec)
{
	atomic_store(&q->credit_bytes, credit_bytes);
	atomic_store(&q->credit_usec, credit_usec);
	atomic_fetch_add(&q->rate_gen, 1);
}

void nb_q_fatal(struct nb_queue *q, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nb_vif_fatal(q->cfg.vif, msg);
}

void nb_q_tap_watch(struct nb_queue *q, bool on)
{
	if (q->tap_watched == on)
		return;
	if (pv_loop_mod_fd(q->loop, q->cfg.tap_fd, on ? EPOLLIN : 0) == 0)
		q->tap_watched = on;
}

void nb_q_notify(struct nb_queue *q, evtchn_port_t port)
{
	int r = pv_evtchn_notify(q->ec, port);

	if (r < 0 && r != -EINVAL)
		pv_log_rl(&q->rl, PV_LOG_WARN, "%s: notify port %u: %s", q->name, port, strerror(-r));
}

void nb_q_check_gone(struct nb_queue *q)
{
	if (!q->dead && q->gt && pv_gnttab_granter_gone(q->gt, q->cfg.domid))
		nb_q_domain_gone(q);
}

void nb_q_domain_gone(struct nb_queue *q)
{
	if (q->dead)
		return;
	/* Our views of its memory are (or are about to be) revoked: from now
	 * on not a byte of the rings or buffers is touched. */
	q->dead = true;
	q->rx_ring_mapped = q->tx_ring_mapped = false;
	nb_q_tap_watch(q, false);
	pv_info("%s: frontend domain %u gone", q->name, q->cfg.domid);
	nb_vif_domain_gone(q->cfg.vif);
}

/* Stop processing for good (vif disabled or domain gone): ports stay
 * masked, the TAP is no longer read. */
static void go_idle(struct nb_queue *q)
{
	if (q->idle)
		return;
	q->idle = true;
	q->tx_kick = q->rx_kick = q->ctrl_kick = false;
	nb_q_tap_watch(q, false);
	/* Attached, the ports go back to the handle's own set, which nobody
	 * watches (events on them cost us nothing now), then the watch goes;
	 * if they cannot, the watch stays (on_evtchn leaves them masked). */
	if (q->ec_watch != -1 && (q->ec_watch >= 0 || pv_evtchn_attach(q->ec, -1, 0) == 0)) {
		(void)pv_loop_del_fd(q->loop, q->ec_watch);
		q->ec_watch = -1;
	}
	if (q->stalled) {
		q->stalled = false;
		nb_vif_queue_stalled(q->cfg.vif, false);
	}
}

/* ---- event channels ------------------------------------------------------ */

static void unmask_port(struct nb_queue *q, evtchn_port_t port)
{
	int r = pv_evtchn_unmask(q->ec, port);

	if (r < 0)
		pv_log_rl(&q->rl, PV_LOG_WARN, "%s: unmask port %u: %s", q->name, port, strerror(-r));
}

static void on_unmask_timer(struct pv_loop *loop, void *arg)
{
	struct nb_unmask *u = arg;
	struct nb_queue *q = u->q;

	(void)loop;
	u->timer = 0;
	if (!q->idle && !q->dead)
		unmask_port(q, u->which == 0 ? q->tx_port : u->which == 1 ? q->rx_port : nb_ctrl_port(q));
}

/* After an event on `port` (unmask[which]) that found work or not: count
 * it for the storm rule, then unmask now, after the storm delay, or (keep)
 * leave it masked for the round that will unmask it. */
static void storm_unmask(struct nb_queue *q, struct nb_storm *storm, evtchn_port_t port, unsigned which,
			 bool work, bool keep)
{
	uint64_t delay;

	if (!work)
		nb_stat_add(&q->st.spurious_events, 1);
	delay = nb_storm_event(storm, !work);
	if (delay == NB_STORM_IS_FATAL) {
		nb_q_fatal(q, "event storm: %u consecutive events without work on port %u",
			   NB_STORM_FATAL, port);
		return;
	}
	if (delay == 0) {
		if (keep)
			q->tx_unmask_pending = true;
		else
			unmask_port(q, port);
		return;
	}
	if (!q->unmask[which].timer)
		q->unmask[which].timer = pv_loop_add_timer(q->loop, delay, on_unmask_timer, &q->unmask[which]);
}

/* One event on `port`: is there work (Linux's lateeoi handlers ask the same
 * question), then unmask now or after the storm delay. */
static void handle_port(struct nb_queue *q, evtchn_port_t port)
{
	bool is_tx = port == q->tx_port, is_rx = port == q->rx_port, work = false, tx_work = false;
	struct nb_storm *storm = is_tx ? &q->storm_tx : &q->storm_rx;

	if (is_tx) {
		RING_IDX prod = __atomic_load_n(&q->tx.sring->req_prod, __ATOMIC_ACQUIRE);
		if (prod != q->tx.req_cons) {
			work = tx_work = true;
			q->tx_kick = true;
		}
	}
	if (is_rx) {
		RING_IDX prod = __atomic_load_n(&q->rx.sring->req_prod, __ATOMIC_ACQUIRE);
		/* Work only if requests were posted: a producer moved back (or
		 * absurdly far) is no work, else flipping it between two values
		 * would hide an event storm. Posted requests stay within a ring
		 * of the last value seen (rx rounds update it too). */
		if (prod - q->rx_seen_prod - 1 < RING_SIZE(&q->rx)) {
			work = true;
			q->rx_seen_prod = prod;
			if (q->rx_blocked)
				q->rx_kick = true;
		}
	}
	/* As NAPI keeps the interrupt off while it polls: the tx port stays
	 * masked until a tx round finds the ring idle (run()). */
	storm_unmask(q, storm, port, is_tx ? 0 : 1, work, tx_work);
}

/* An event on the control ring's port: answer what is queued. */
static void handle_ctrl(struct nb_queue *q, evtchn_port_t port)
{
	storm_unmask(q, nb_ctrl_storm(q), port, 2, nb_ctrl_event(q), false);
}

static void on_evtchn(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_queue *q = arg;
	bool any = false;
	int port;

	(void)loop; (void)fd; (void)events;
	while ((port = pv_evtchn_pending(q->ec)) > 0) {
		any = true;
		if (q->idle || q->dead)
			continue;  /* leave it masked */
		if ((evtchn_port_t)port == q->tx_port || (evtchn_port_t)port == q->rx_port)
			handle_port(q, (evtchn_port_t)port);
		else if (q->ctrl && (evtchn_port_t)port == nb_ctrl_port(q))
			handle_ctrl(q, (evtchn_port_t)port);
		else
			unmask_port(q, (evtchn_port_t)port);
	}
	/* A wake-up without any event: our doorbell rung without the flag
	 * that makes it one (an honest frontend leaves at most a couple in a
	 * row: an edge whose event we took already, one while masked). Masking
	 * does not stop these, so a frontend that keeps writing is an event
	 * storm of its own. */
	if (any) {
		q->empty_wakes = 0;
	} else if (++q->empty_wakes >= NB_EMPTY_WAKES_FATAL && !q->idle && !q->dead) {
		nb_stat_add(&q->st.spurious_events, q->empty_wakes);
		nb_q_fatal(q, "event storm: %u wake-ups in a row without an event", q->empty_wakes);
	}
}

static void on_gnttab(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_queue *q = arg;
	struct pv_notice n[8];
	int k;

	(void)loop; (void)fd; (void)events;
	while ((k = pv_gnttab_poll_notices(q->gt, n, PV_ARRAY_SIZE(n))) > 0) {
		for (int i = 0; i < k; i++)
			if ((n[i].type == PV_NOTICE_DOMAIN_GONE || n[i].type == PV_NOTICE_MAPPINGS_REVOKED) &&
			    n[i].domid == q->cfg.domid)
				nb_q_domain_gone(q);
		if (k < (int)PV_ARRAY_SIZE(n))
			break;
	}
}

bool nb_q_revoked(struct nb_queue *q)
{
	struct pollfd p = { .fd = pv_gnttab_fd(q->gt), .events = POLLIN };

	if (!q->dead && poll(&p, 1, 0) > 0)
		on_gnttab(q->loop, p.fd, POLLIN, q);
	return q->dead;
}

bool nb_q_copy(struct nb_queue *q, unsigned n, struct pv_gnttab_copy_seg *segs)
{
	uint64_t local = pv_gnttab_local_copies(q->gt);
	int r = pv_gnttab_grant_copy(q->gt, n, segs);

	nb_stat_add(&q->st.copy_batches, 1);
	if (r < 0) {
		nb_q_fatal(q, "grant copy batch failed: %s", strerror(-r));
		return false;
	}
	if (pv_gnttab_local_copies(q->gt) - local == n)
		return true;
	nb_stat_add(&q->st.hv_copy_batches, 1);
	return !nb_q_revoked(q);
}

static void on_tap(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_queue *q = arg;

	(void)loop; (void)fd; (void)events;
	q->tap_readable = true;
	q->rx_kick = true;
}

static void on_stop(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_queue *q = arg;
	uint64_t v;

	(void)events;
	(void)!read(fd, &v, sizeof(v));
	if (atomic_load_explicit(&q->stop_flag, memory_order_acquire))
		pv_loop_stop(loop);
}

/* Ready, not yet serving: wait for nb_queue_go (true) or a stop (false).
 * Events and frames that arrive meanwhile stay pending. */
static bool wait_go(struct nb_queue *q)
{
	for (;;) {
		struct pollfd p = { .fd = q->stop_efd, .events = POLLIN };
		uint64_t v;

		if (atomic_load_explicit(&q->stop_flag, memory_order_acquire))
			return false;
		if (atomic_load_explicit(&q->go, memory_order_acquire))
			return true;
		if (poll(&p, 1, -1) > 0)
			(void)!read(q->stop_efd, &v, sizeof(v));
	}
}

/* ---- set-up and teardown ------------------------------------------------- */

static int map_rings(struct nb_queue *q)
{
	struct pv_gnttab_map_op ops[2] = {
		{ .domid = q->cfg.domid, .ref = q->cfg.tx_ring_ref },
		{ .domid = q->cfg.domid, .ref = q->cfg.rx_ring_ref },
	};
	struct netif_tx_sring *txs;
	struct netif_rx_sring *rxs;
	RING_IDX rsp_prod, req_prod;
	int r = pv_gnttab_map_batch(q->gt, 2, ops);

	if (r < 0)
		return r;
	if (ops[0].status == GNTST_okay) {
		q->tx_ring_handle = ops[0].handle;
		q->tx_ring_mapped = true;
	}
	if (ops[1].status == GNTST_okay) {
		q->rx_ring_handle = ops[1].handle;
		q->rx_ring_mapped = true;
	}
	if (!q->tx_ring_mapped || !q->rx_ring_mapped)
		return -ENOENT;  /* as xenbus_map_ring_valloc */
	if (nb_q_revoked(q))
		return -ENOENT;  /* the domain went away meanwhile */

	/* xenvif_map_frontend_data_rings: attach at the frontend's response
	 * index, refuse impossible producer indices. */
	txs = ops[0].addr;
	rsp_prod = __atomic_load_n(&txs->rsp_prod, __ATOMIC_ACQUIRE);
	req_prod = __atomic_load_n(&txs->req_prod, __ATOMIC_ACQUIRE);
	BACK_RING_ATTACH(&q->tx, txs, rsp_prod, PV_PAGE_SIZE);
	if (req_prod - rsp_prod > RING_SIZE(&q->tx)) {
		pv_warn("%s: tx ring: req_prod %u rsp_prod %u", q->name, req_prod, rsp_prod);
		return -EIO;
	}
	rxs = ops[1].addr;
	rsp_prod = __atomic_load_n(&rxs->rsp_prod, __ATOMIC_ACQUIRE);
	req_prod = __atomic_load_n(&rxs->req_prod, __ATOMIC_ACQUIRE);
	BACK_RING_ATTACH(&q->rx, rxs, rsp_prod, PV_PAGE_SIZE);
	if (req_prod - rsp_prod > RING_SIZE(&q->rx)) {
		pv_warn("%s: rx ring: req_prod %u rsp_prod %u", q->name, req_prod, rsp_prod);
		return -EIO;
	}
	q->rx_mapped = q->rx.req_cons;
	q->rx_seen_prod = req_prod;
	return 0;
}

static int bind_ports(struct nb_queue *q)
{
	int r = pv_evtchn_bind_interdomain(q->ec, q->cfg.domid, q->cfg.tx_evtchn);

	if (r < 0)
		return r;
	q->tx_port = (evtchn_port_t)r;
	if (q->cfg.rx_evtchn == q->cfg.tx_evtchn) {
		q->rx_port = q->tx_port;
		return 0;
	}
	r = pv_evtchn_bind_interdomain(q->ec, q->cfg.domid, q->cfg.rx_evtchn);
	if (r < 0)
		return r;
	q->rx_port = (evtchn_port_t)r;
	return 0;
}

static int setup(struct nb_queue *q)
{
	uint64_t tag;
	int r, epfd;

	/* Handed over opened when the vif was made (saves two connections to
	 * the hypervisor per queue in the blackout), else opened here. */
	q->gt = q->cfg.gt ? q->cfg.gt : pv_gnttab_open(q->cfg.hv_path);
	q->cfg.gt = NULL;
	if (!q->gt)
		return -errno;
	if (q->cfg.hv_copies)
		pv_gnttab_set_local(q->gt, false);
	q->ec = q->cfg.ec ? q->cfg.ec : pv_evtchn_open(q->cfg.hv_path);
	q->cfg.ec = NULL;
	if (!q->ec)
		return -errno;
	if ((r = map_rings(q)) < 0 || (r = bind_ports(q)) < 0)
		return r;
	/* Pages of dom0 memory for grant copies both ways; a queue that
	 * cannot have them maps the frontend's pages instead. */
	if (q->cfg.own && pv_gnttab_set_own_memory(q->gt, q->cfg.own->base, q->cfg.own->npages) == 0) {
		q->copybuf_frame = pv_page_alloc(q->cfg.own->pa, NB_TX_COPY_PAGES);
		if (q->copybuf_frame >= 0)
			q->copybuf = pv_page_addr(q->cfg.own->pa, (uint32_t)q->copybuf_frame);
		q->rxbuf_frame = pv_page_alloc(q->cfg.own->pa, NB_RX_MAX_SLOTS);
		if (q->rxbuf_frame >= 0)
			q->rxbuf = pv_page_addr(q->cfg.own->pa, (uint32_t)q->rxbuf_frame);
	}
	if ((r = nb_ctrl_setup(q)) < 0)
		return r;
	q->loop = pv_loop_new();
	if (!q->loop)
		return -ENOMEM;
	/* The ports fire edge-triggered straight into the loop's set: a
	 * frontend's notify wakes this thread without a nested set, and
	 * taking the event costs no syscall. */
	if ((r = pv_loop_add_fd(q->loop, q->stop_efd, EPOLLIN, on_stop, q)) < 0 ||
	    (r = pv_loop_add_tag(q->loop, on_evtchn, q, &q->ec_watch, &epfd, &tag)) < 0)
		return r;
	if ((r = pv_evtchn_attach(q->ec, epfd, tag)) == -EOPNOTSUPP) {
		/* PVNET_EVTCHN_LEVEL: the handle's own fd, waited on level-triggered. */
		pv_info("%s: event channels on the handle's fd (level-triggered)", q->name);
		(void)pv_loop_del_fd(q->loop, q->ec_watch);
		q->ec_watch = pv_evtchn_fd(q->ec);
		r = pv_loop_add_fd(q->loop, q->ec_watch, EPOLLIN, on_evtchn, q);
	}
	if (r < 0 ||
	    (r = pv_loop_add_fd(q->loop, pv_gnttab_fd(q->gt), EPOLLIN, on_gnttab, q)) < 0 ||
	    (r = pv_loop_add_fd(q->loop, q->cfg.tap_fd, EPOLLIN, on_tap, q)) < 0)
		return r;
	q->tap_watched = true;
	nb_rx_layout(&q->cfg.caps.rx, false, &q->rx_layout);
	nb_rx_layout(&q->cfg.caps.rx, true, &q->rx_layout_h);
	q->rxl = &q->rx_layout;
	q->rx_hash_gen = nb_vif_hash_gen(q->cfg.vif) - 1;   /* read it at the first round */
	for (unsigned i = 0; i < PV_ARRAY_SIZE(q->unmask); i++)
		q->unmask[i] = (struct nb_unmask){ .q = q, .which = i };
	q->remaining_credit = q->cfg.credit_bytes;
	q->credit_window_start = pv_now_ns();
	return 0;
}

static void teardown(struct nb_queue *q)
{
	uint32_t handles[2];
	int16_t status[2];
	unsigned n = 0;

	if (q->gt && !q->dead)
		nb_rx_release(q);
	if (q->tx_ring_mapped)
		handles[n++] = q->tx_ring_handle;
	if (q->rx_ring_mapped)
		handles[n++] = q->rx_ring_handle;
	if (n && q->gt)
		(void)pv_gnttab_unmap_batch(q->gt, n, handles, status);
	q->tx_ring_mapped = q->rx_ring_mapped = false;
	if (q->stalled) {
		q->stalled = false;
		nb_vif_queue_stalled(q->cfg.vif, false);
	}
	nb_ctrl_teardown(q);
	/* The handle first: its ports leave the loop's set before it goes. */
	if (q->ec)
		pv_evtchn_close(q->ec);  /* unbinds our ports */
	q->ec = NULL;
	q->ec_watch = -1;
	pv_loop_free(q->loop);
	q->loop = NULL;
	if (q->copybuf_frame >= 0)
		pv_page_free(q->cfg.own->pa, (uint32_t)q->copybuf_frame, NB_TX_COPY_PAGES);
	if (q->rxbuf_frame >= 0)
		pv_page_free(q->cfg.own->pa, (uint32_t)q->rxbuf_frame, NB_RX_MAX_SLOTS);
	q->copybuf_frame = q->rxbuf_frame = -1;
	q->copybuf = q->rxbuf = NULL;
	if (q->gt)
		pv_gnttab_close(q->gt);
	q->gt = NULL;
}

static void report_init(struct nb_queue *q, int err)
{
	pthread_mutex_lock(&q->init_lock);
	q->init_err = err;
	q->init_done = true;
	pthread_cond_signal(&q->init_cond);
	pthread_mutex_unlock(&q->init_lock);
}

void nb_q_flush(struct nb_queue *q)
{
	int notify;

	if (q->nunmap) {
		int r = pv_gnttab_unmap_batch(q->gt, q->nunmap, q->unmap, q->unmap_status);

		nb_stat_add(&q->st.unmap_batches, 1);
		if (r < 0)
			pv_log_rl(&q->rl, PV_LOG_WARN, "%s: grant unmap batch failed: %s", q->name, strerror(-r));
		q->nunmap = 0;
		if (nb_q_revoked(q))
			return;
	}
	/* Only now that we no longer use the grants do the responses go; not
	 * into a ring whose domain has just ended (moved: its pages may
	 * already be another ring's on the new host). */
	nb_q_check_gone(q);
	if (q->dead)
		return;
	if (q->tx_dirty) {
		q->tx_dirty = false;
		RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&q->tx, notify);
		if (notify)
			nb_q_notify(q, q->tx_port);
	}
	if (q->rx_dirty) {
		q->rx_dirty = false;
		q->rx.rsp_prod_pvt = q->rx.req_cons;
		RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&q->rx, notify);
		if (notify)
			nb_q_notify(q, q->rx_port);
	}
	if (q->tx_fatal[0]) {
		nb_q_fatal(q, "%s", q->tx_fatal);
		q->tx_fatal[0] = '\0';
	}
}

/* May the data path touch the rings? Not once the vif is disabled or the
 * domain is gone (checked again between the tx and rx rounds). */
static bool active(struct nb_queue *q)
{
	nb_q_check_gone(q);
	if (!q->idle && (q->dead || nb_vif_disabled(q->cfg.vif)))
		go_idle(q);
	return !q->idle;
}

static void run(struct nb_queue *q)
{
	/* Requests and frames may already be waiting. */
	q->tx_kick = q->rx_kick = true;
	q->ctrl_kick = q->ctrl != NULL;
	for (;;) {
		bool busy = q->tx_kick || q->rx_kick || q->ctrl_kick;

		if (pv_loop_run_once(q->loop, busy ? 0 : -1) < 0)
			break;
		if (atomic_load_explicit(&q->stop_flag, memory_order_acquire))
			break;
		if (q->tx_kick && active(q))
			q->tx_kick = nb_tx_round(q);
		if (q->rx_kick && active(q))
			q->rx_kick = nb_rx_round(q);
		if (q->ctrl_kick) {
			if (active(q))
				(void)nb_ctrl_event(q);
			else
				q->ctrl_kick = false;   /* never spin on a disabled vif */
		}
		if (!q->dead)
			nb_q_flush(q);
		if (!q->tx_kick && q->tx_unmask_pending && active(q)) {
			q->tx_unmask_pending = false;
			unmask_port(q, q->tx_port);
		}
	}
}

/* Name the thread (the kernel keeps 15 bytes: "vif1.0-q0", for top -H and
 * perf) and pin it next to the frontend's thread of the same queue (netfront
 * pins its own by the same number): a notify then wakes a thread on this
 * CPU, and the frame's bytes stay in its cache. The domid spreads the guests
 * over the CPUs. Before the queue reports ready, so a connected vif's
 * threads are where they will stay. */
static void place_thread(struct nb_queue *q)
{
	char comm[16];
	int r;

	pv_strlcpy(comm, q->name, sizeof(comm));
	(void)pthread_setname_np(pthread_self(), comm);
	if (!q->cfg.affinity)
		return;
	r = pv_pin_thread_index(pv_queue_cpu_index(q->cfg.domid, nb_vif_devid(q->cfg.vif), q->cfg.id));
	if (r < 0)
		pv_log(PV_LOG_WARN, "%s: cannot pin to a CPU: %s", q->name, strerror(-r));
	else
		pv_log(PV_LOG_DEBUG, "%s: on CPU %d", q->name, r);
}

static void *thread_main(void *arg)
{
	struct nb_queue *q = arg;
	int r;

	place_thread(q);
	r = setup(q);
	if (r < 0) {
		teardown(q);
		report_init(q, r);
		return NULL;
	}
	report_init(q, 0);
	if (wait_go(q))
		run(q);
	teardown(q);
	return NULL;
}

static void queue_free(struct nb_queue *q)
{
	if (!q)
		return;
	/* Handles handed over but never taken by a thread that did not run. */
	if (q->cfg.gt)
		pv_gnttab_close(q->cfg.gt);
	if (q->cfg.ec)
		pv_evtchn_close(q->cfg.ec);
	if (q->stop_efd >= 0)
		close(q->stop_efd);
	pthread_mutex_destroy(&q->init_lock);
	pthread_cond_destroy(&q->init_cond);
	free(q->tx_reqs);
	free(q->tx_pkts);
	free(q->tx_ops);
	free(q->tx_copy);
	free(q->tx_copy_off);
	free(q->tx_copy_len);
	free(q->rx_win);
	free(q->rx_ops);
	free(q->unmap);
	free(q->unmap_status);
	free(q->spill);
	free(q);
}

int nb_queue_spawn(const struct nb_queue_cfg *cfg, struct nb_queue **out, char *err, size_t errlen)
{
	const unsigned ring = PV_NET_TX_RING_SIZE > PV_NET_RX_RING_SIZE ? PV_NET_TX_RING_SIZE
									: PV_NET_RX_RING_SIZE;
	struct nb_queue *q = calloc(1, sizeof(*q));
	int r;

	if (!q) {
		snprintf(err, errlen, "allocating queue");
		if (cfg->gt)
			pv_gnttab_close(cfg->gt);
		if (cfg->ec)
			pv_evtchn_close(cfg->ec);
		return -ENOMEM;
	}
	q->cfg = *cfg;
	q->stop_efd = q->ec_watch = -1;
	q->copybuf_frame = q->rxbuf_frame = -1;
	pthread_mutex_init(&q->init_lock, NULL);
	pthread_cond_init(&q->init_cond, NULL);
	snprintf(q->name, sizeof(q->name), "%s-q%u", nb_vif_name(cfg->vif), cfg->id);
	q->rl = (struct pv_ratelimit)PV_RATELIMIT_INIT(5000, 10);
	atomic_store(&q->credit_bytes, cfg->credit_bytes);
	atomic_store(&q->credit_usec, cfg->credit_usec);
	q->tx_reqs = calloc(ring, sizeof(*q->tx_reqs));
	q->tx_pkts = calloc(NB_TX_BATCH, sizeof(*q->tx_pkts));
	q->tx_ops = calloc(ring, sizeof(*q->tx_ops));
	q->tx_copy = calloc(NB_TX_COPY_PAGES, sizeof(*q->tx_copy));
	q->tx_copy_off = calloc(ring, sizeof(*q->tx_copy_off));
	q->tx_copy_len = calloc(ring, sizeof(*q->tx_copy_len));
	q->rx_win = calloc(ring, sizeof(*q->rx_win));
	q->rx_ops = calloc(ring, sizeof(*q->rx_ops));
	q->unmap = calloc(2 * ring, sizeof(*q->unmap));
	q->unmap_status = calloc(2 * ring, sizeof(*q->unmap_status));
	q->spill = malloc(NB_RX_SPILL);
	for (unsigned i = 0; q->rx_win && i < ring; i++)
		q->rx_win[i].status = GNTST_general_error;
	q->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!q->tx_reqs || !q->tx_pkts || !q->tx_ops || !q->tx_copy || !q->tx_copy_off ||
	    !q->tx_copy_len || !q->unmap || !q->unmap_status ||
	    !q->rx_win || !q->rx_ops || !q->spill || q->stop_efd < 0) {
		snprintf(err, errlen, "allocating queue %u", cfg->id);
		queue_free(q);
		return -ENOMEM;
	}
	r = pthread_create(&q->thread, NULL, thread_main, q);
	if (r != 0) {
		snprintf(err, errlen, "starting queue thread: %s", strerror(r));
		queue_free(q);
		return -r;
	}
	q->thread_started = true;
	*out = q;
	return 0;
}

int nb_queue_ready(struct nb_queue *q, char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&q->init_lock);
	while (!q->init_done)
		pthread_cond_wait(&q->init_cond, &q->init_lock);
	pthread_mutex_unlock(&q->init_lock);
	if (q->init_err >= 0)
		return 0;
	r = q->init_err;
	pthread_join(q->thread, NULL);
	q->thread_started = false;
	/* Linux's messages for a failed xenvif_connect_ctrl / _data. */
	if (q->ctrl_failed)
		snprintf(err, errlen, "mapping shared-frame %u port %u", q->cfg.ctrl_ring_ref, q->cfg.ctrl_evtchn);
	else
		snprintf(err, errlen, "mapping shared-frames %u/%u port tx %u rx %u", q->cfg.tx_ring_ref,
			 q->cfg.rx_ring_ref, q->cfg.tx_evtchn, q->cfg.rx_evtchn);
	pv_warn("%s: %s: %s", q->name, err, strerror(-r));
	queue_free(q);
	return r;
}

void nb_queue_go(struct nb_queue *q)
{
	uint64_t one = 1;

	if (!q || atomic_exchange_explicit(&q->go, true, memory_order_acq_rel))
		return;
	if (write(q->stop_efd, &one, sizeof(one)) < 0)
		pv_warn("%s: waking the queue thread: %s", q->name, strerror(errno));
}

void nb_queue_stop(struct nb_queue *q, struct nb_qstats *final)
{
	uint64_t one = 1;

	if (!q)
		return;
	atomic_store_explicit(&q->stop_flag, true, memory_order_release);
	if (write(q->stop_efd, &one, sizeof(one)) < 0)
		pv_warn("%s: waking the queue thread: %s", q->name, strerror(errno));
	if (q->thread_started)
		pthread_join(q->thread, NULL);
	if (final)
		memcpy(final, &q->st, sizeof(*final));
	queue_free(q);
}
