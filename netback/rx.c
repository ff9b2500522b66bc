/*
 * Guest receive: vif TAP -> frontend rx ring (rx-copy semantics).
 *
 * Every frame is read from the TAP with one readv laid out by nb_rx_layout
 * (rxplan.h): [vnet header, page(req 0), page(req 1 + holes), ..., spill],
 * `holes` requests kept for the extras a frame may need (GSO when the
 * frontend takes it; HASH while the control ring's hash is in force, the
 * hash computed here per frame, rx_hash_extra).
 * The pages are, as Linux's xenvif_rx_copy_add/flush: our own pages of dom0
 * memory (rxbuf), from which each data slot is then grant-copied into its
 * request's buffer (one copy batch per frame, done in this process, no round
 * trip); or, with --map-grants or without dom0 memory, the frontend's posted
 * buffers themselves, mapped ahead in one batch (the "window" [req_cons,
 * rx_mapped)) and unmapped at the round's end. Each request is copied out of
 * the ring once (the window) and its grant checked then, so that a bad
 * buffer is answered in its own slot before a frame is read for it.
 * A frame is read only when the frontend has posted the whole layout's worth
 * of requests (18 with GSO, else enough pages for the MTU); otherwise the
 * queue blocks: req_event asks the frontend to notify us once that many are
 * posted, the TAP is no longer watched, and the kernel keeps the frames (the
 * TAP queue's own bound). Responses go in the slots of their requests and are
 * pushed at the round's end (nb_q_flush), after the unmap of mapped buffers.
 * Guards (Linux's, adapted): while blocked, frames waiting longer than the
 * drain timeout (10 s; 30 ms without feature-rx-notify) are thrown away; a
 * queue blocked longer than the stall timeout (60 s; off without rx-notify)
 * turns the vif's carrier off ("Guest Rx stalled") until buffers come back.
 * Without feature-rx-notify the ring is polled every millisecond while
 * blocked. A request whose grant cannot be used is answered with the GNTST_*
 * status in its own slot (netfront counts an rx error and re-posts), as Linux
 * answers a failed grant copy; a grant revoked between that check and the
 * copy fails the copy and loses that frame (Linux loses it too).
 */
#include "netback/queue_priv.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "netback/vif.h"

#define RX_MASK (PV_NET_RX_RING_SIZE - 1u)

static struct nb_rx_slotmap *win(struct nb_queue *q, RING_IDX idx) { return &q->rx_win[idx & RX_MASK]; }

/* Load req_prod and check it as RING_REQUEST_PROD_OVERFLOW would. */
static bool rx_load_prod(struct nb_queue *q, RING_IDX *prod)
{
	*prod = __atomic_load_n(&q->rx.sring->req_prod, __ATOMIC_ACQUIRE);
	if (*prod - q->rx.rsp_prod_pvt > RING_SIZE(&q->rx)) {
		nb_q_fatal(q, "rx: Impossible number of requests. req_prod %u, rsp_prod %u, size %u",
			   *prod, q->rx.rsp_prod_pvt, RING_SIZE(&q->rx));
		return false;
	}
	/* Requests once posted stay posted: a producer behind the requests
	 * already taken or mapped (rsp_prod_pvt only moves at the round's
	 * end) would make every count below wrap. */
	if (*prod - q->rx_mapped > RING_SIZE(&q->rx)) {
		nb_q_fatal(q, "rx: req_prod %u went back behind %u requests already taken", *prod,
			   q->rx_mapped);
		return false;
	}
	/* The newest producer seen, for the event-storm check (queue.c):
	 * requests posted later stay within a ring of it. */
	q->rx_seen_prod = *prod;
	return true;
}

/* Map the posted requests [rx_mapped, prod) in one batch. */
static bool rx_map_more(struct nb_queue *q, RING_IDX prod)
{
	unsigned n = prod - q->rx_mapped;
	int r;

	if (n > RING_SIZE(&q->rx)) {   /* rx_load_prod's rule: never here */
		nb_q_fatal(q, "rx: %u requests to map", n);
		return false;
	}
	for (unsigned k = 0; k < n; k++) {
		struct nb_rx_slotmap *s = win(q, q->rx_mapped + k);

		RING_COPY_REQUEST(&q->rx, q->rx_mapped + k, &s->req);
		q->rx_ops[k] = (struct pv_gnttab_map_op){ .domid = q->cfg.domid, .ref = s->req.gref };
		/* Copy mode: nothing to map. The grant is checked now, so that
		 * a bad buffer is answered in its own slot before a frame is
		 * read for it, as a failed map is; one revoked after this
		 * check fails its copy (rx_copy_out) and loses that frame. */
		s->status = q->rxbuf ? pv_gnttab_grant_check(q->gt, q->cfg.domid, s->req.gref, true)
				     : GNTST_okay;
		s->page = NULL;
	}
	if (q->rxbuf) {
		for (unsigned k = 0; k < n; k++) {
			if (win(q, q->rx_mapped + k)->status == GNTST_bad_domain) {
				q->rx_mapped += k + 1;
				nb_q_domain_gone(q);
				return false;
			}
		}
		q->rx_mapped = prod;
		return true;
	}
	r = pv_gnttab_map_batch(q->gt, n, q->rx_ops);
	nb_stat_add(&q->st.map_batches, 1);
	if (r < 0) {
		nb_q_fatal(q, "grant map batch failed: %s", strerror(-r));
		return false;
	}
	if (nb_q_revoked(q))
		return false;
	for (unsigned k = 0; k < n; k++) {
		struct nb_rx_slotmap *s = win(q, q->rx_mapped + k);

		s->status = q->rx_ops[k].status;
		s->handle = q->rx_ops[k].handle;
		s->page = q->rx_ops[k].addr;
		if (s->status == GNTST_bad_domain) {
			q->rx_mapped += k + 1;
			nb_q_domain_gone(q);
			return false;
		}
	}
	q->rx_mapped = prod;
	return true;
}

/* Queue the okay mappings of [from, to) for unmapping (q->unmap). */
static void rx_queue_unmap(struct nb_queue *q, RING_IDX from, RING_IDX to)
{
	for (RING_IDX i = from; i != to; i++) {
		struct nb_rx_slotmap *s = win(q, i);

		if (s->status == GNTST_okay && !q->rxbuf)
			q->unmap[q->nunmap++] = s->handle;
		s->status = GNTST_general_error;
		s->page = NULL;
	}
}

void nb_rx_release(struct nb_queue *q)
{
	if (q->rx_ring_mapped) {
		q->nunmap = 0;
		rx_queue_unmap(q, q->rx.req_cons, q->rx_mapped);
		if (q->nunmap)
			(void)pv_gnttab_unmap_batch(q->gt, q->nunmap, q->unmap, q->unmap_status);
		q->nunmap = 0;
	}
	q->rx_mapped = q->rx.req_cons;
}

/* ---- blocking on rx buffers, drain and stall ----------------------------- */

static void rx_arm_timer(struct nb_queue *q);

static void on_rx_timer(struct pv_loop *loop, void *arg)
{
	struct nb_queue *q = arg;
	uint64_t now = pv_now_ns();

	(void)loop;
	q->timer_rx = 0;
	if (!q->rx_blocked || q->idle || q->dead)
		return;
	if (q->cfg.caps.stall_ms && !q->stalled &&
	    now - q->rx_blocked_since >= (uint64_t)q->cfg.caps.stall_ms * 1000000u) {
		q->stalled = true;
		nb_stat_add(&q->st.rx_stalls, 1);
		nb_vif_queue_stalled(q->cfg.vif, true);
	}
	if (now - q->rx_drain_since >= (uint64_t)q->cfg.caps.drain_ms * 1000000u) {
		/* What waited in the TAP that long is thrown away. */
		nb_rx_drain(q);
		q->rx_drain_since = now;
	}
	/* Look at the ring again (the only way without feature-rx-notify). */
	q->rx_kick = true;
	rx_arm_timer(q);
}

static void rx_arm_timer(struct nb_queue *q)
{
	uint64_t now = pv_now_ns(), next = UINT64_MAX, t;

	if (q->timer_rx)
		return;
	t = q->rx_drain_since + (uint64_t)q->cfg.caps.drain_ms * 1000000u;
	next = t < next ? t : next;
	if (q->cfg.caps.stall_ms && !q->stalled) {
		t = q->rx_blocked_since + (uint64_t)q->cfg.caps.stall_ms * 1000000u;
		next = t < next ? t : next;
	}
	if (!q->cfg.caps.stall_ms)  /* no feature-rx-notify: poll */
		next = now + NB_RX_POLL_NS < next ? now + NB_RX_POLL_NS : next;
	q->timer_rx = pv_loop_add_timer(q->loop, next > now ? next - now : 0, on_rx_timer, q);
}

static void rx_block(struct nb_queue *q)
{
	if (q->rx_blocked)
		return;
	q->rx_blocked = true;
	q->rx_blocked_since = q->rx_drain_since = pv_now_ns();
	nb_q_tap_watch(q, false);
	rx_arm_timer(q);
}

static void rx_unblock(struct nb_queue *q)
{
	if (!q->rx_blocked)
		return;
	q->rx_blocked = false;
	nb_q_tap_watch(q, true);
	if (q->timer_rx) {
		pv_loop_cancel_timer(q->loop, q->timer_rx);
		q->timer_rx = 0;
	}
}

void nb_rx_drain(struct nb_queue *q)
{
	struct virtio_net_hdr vh;
	struct iovec iov[2] = { { &vh, sizeof(vh) }, { q->spill, NB_RX_SPILL } };

	for (unsigned i = 0; i < 4096; i++) {
		if (readv(q->cfg.tap_fd, iov, 2) < 0)
			break;
		nb_stat_add(&q->st.to_guest.dropped, 1);
	}
	q->tap_readable = false;
}

/* Are `need` requests posted? If not, ask to be notified when they are. */
static bool rx_slots_available(struct nb_queue *q, RING_IDX *prod, unsigned need)
{
	if (*prod - q->rx.req_cons >= need)
		return true;
	q->rx.sring->req_event = q->rx.req_cons + need;
	mb();
	if (!rx_load_prod(q, prod))
		return false;
	return *prod - q->rx.req_cons >= need;
}

/* ---- one frame ----------------------------------------------------------- */

/* An rx request whose grant did not map: answer it with the map status. */
static void rx_error_slot(struct nb_queue *q)
{
	RING_IDX idx = q->rx.req_cons;
	struct nb_rx_slotmap *s = win(q, idx);
	netif_rx_response_t *rsp = RING_GET_RESPONSE(&q->rx, idx);

	pv_log_rl(&q->rl, PV_LOG_WARN, "%s: rx grant ref %u unusable: %d", q->name, s->req.gref, s->status);
	rsp->id = s->req.id;
	rsp->offset = 0;
	rsp->flags = 0;
	rsp->status = s->status;
	q->rx.req_cons++;
	nb_stat_add(&q->st.to_guest.errors, 1);
}

/* Data pages of the layout whose buffers are usable, in order. */
static unsigned rx_usable_pages(struct nb_queue *q)
{
	unsigned p;

	for (p = 0; p < q->rxl->npages; p++)
		if (win(q, q->rx.req_cons + nb_rx_page_req(q->rxl, p))->status != GNTST_okay)
			break;
	return p;
}

/* Where the data for request req_cons + req_rel is read: the mapped buffer,
 * or in copy mode our page for it. */
static uint8_t *page_of(struct nb_queue *q, unsigned req_rel)
{
	if (q->rxbuf)
		return q->rxbuf + (size_t)req_rel * PV_PAGE_SIZE;
	return win(q, q->rx.req_cons + req_rel)->page;
}

/* Copy mode: the frame's data slots into the frontend's buffers, one batch
 * (Linux xenvif_rx_copy_flush); a slot whose copy fails answers its GNTST_*
 * status, as Linux does. false if the frontend's domain is gone (or our views
 * of it were revoked meanwhile). */
static bool rx_copy_out(struct nb_queue *q, const struct nb_rx_plan *plan, bool *failed)
{
	unsigned n = 0, slot[NB_RX_MAX_SLOTS];

	for (unsigned i = 0; i < plan->nslots; i++) {
		struct pv_gnttab_copy_seg *c = &q->rx_copy[n];

		if (plan->slot[i].kind != NB_RX_DATA)
			continue;
		*c = (struct pv_gnttab_copy_seg){ .len = plan->slot[i].len, .flags = PV_GNTCOPY_dest_gref };
		c->source.virt = page_of(q, i);
		c->dest.foreign.ref = win(q, q->rx.req_cons + i)->req.gref;
		c->dest.foreign.domid = (uint16_t)q->cfg.domid;
		slot[n++] = i;
	}
	if (!nb_q_copy(q, n, q->rx_copy))
		return false;
	*failed = false;
	for (unsigned k = 0; k < n; k++) {
		int16_t st = q->rx_copy[k].status;

		if (st == GNTST_okay)
			continue;
		if (st == GNTST_bad_domain) {
			nb_q_domain_gone(q);
			return false;
		}
		pv_log_rl(&q->rl, PV_LOG_WARN, "%s: rx grant ref %u: copy failed: %d", q->name,
			  q->rx_copy[k].dest.foreign.ref, st);
		RING_GET_RESPONSE(&q->rx, q->rx.req_cons + slot[k])->status = st;
		*failed = true;
	}
	return true;
}

/* The frame's HASH extra (Linux xenvif_rx_next_skb, for a frame whose hash
 * xenvif_set_skb_hash computed), or NULL. */
static const struct netif_extra_info *rx_hash_extra(struct nb_queue *q, const uint8_t *hdr, size_t hlen,
						    struct netif_extra_info *ex)
{
	uint32_t v;
	unsigned type;

	if (!q->rx_hashing || !nb_hash_frame(&q->rx_hash, hdr, hlen, &v, &type))
		return NULL;
	memset(ex, 0, sizeof(*ex));
	ex->type = XEN_NETIF_EXTRA_TYPE_HASH;
	ex->u.hash.type = (uint8_t)type;
	ex->u.hash.algorithm = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
	for (unsigned i = 0; i < 4; i++)   /* little-endian */
		ex->u.hash.value[i] = (uint8_t)(v >> (8 * i));
	return ex;
}

/* Follow the vif's hash when the control ring changed it: the layout with
 * room for a HASH extra while one is in force. */
static void rx_hash_refresh(struct nb_queue *q)
{
	if (nb_vif_hash_gen(q->cfg.vif) == q->rx_hash_gen)
		return;
	nb_vif_get_hash(q->cfg.vif, &q->rx_hash, &q->rx_hash_gen);
	q->rx_hashing = q->rx_hash.alg == XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ && q->rx_hash.flags;
	q->rxl = q->rx_hashing ? &q->rx_layout_h : &q->rx_layout;
}

/* Read one frame into the window; returns 1 if a frame was delivered or
 * dropped, 0 if the TAP is empty, -1 on a fatal condition. */
static int rx_one(struct nb_queue *q)
{
	struct iovec iov[NB_RX_MAX_PAGES + 2];
	struct virtio_net_hdr vh;
	struct nb_rx_plan plan;
	struct netif_extra_info hx;
	uint8_t hdr[NIF_MAX_HDR_LEN];
	unsigned usable = rx_usable_pages(q), n = 0;
	size_t frame_len, hlen, cap;
	bool failed = false;
	ssize_t got;
	int r;

	iov[n++] = (struct iovec){ &vh, sizeof(vh) };
	for (unsigned p = 0; p < usable; p++)
		iov[n++] = (struct iovec){ page_of(q, nb_rx_page_req(q->rxl, p)), PV_PAGE_SIZE };
	iov[n++] = (struct iovec){ q->spill, NB_RX_SPILL };
	got = readv(q->cfg.tap_fd, iov, (int)n);
	if (got < 0) {
		if (errno != EAGAIN && errno != EINTR)
			pv_log_rl(&q->rl, PV_LOG_WARN, "%s: reading the TAP: %s", q->name, strerror(errno));
		q->tap_readable = false;
		return 0;
	}
	if ((size_t)got <= sizeof(vh)) {
		nb_stat_add(&q->st.to_guest.dropped, 1);
		return 1;
	}
	frame_len = (size_t)got - sizeof(vh);
	cap = (size_t)usable * PV_PAGE_SIZE;
	if (frame_len > cap) {
		/* Longer than the frontend's slots take (or than its usable
		 * buffers): the rest landed in the spill buffer. */
		nb_stat_add(&q->st.to_guest.dropped, 1);
		pv_log_rl(&q->rl, PV_LOG_DEBUG, "%s: %zu-byte frame does not fit %u rx buffers", q->name,
			  frame_len, usable);
		return 1;
	}
	/* Headers go through a local copy (the buffers are guest memory). */
	hlen = frame_len < sizeof(hdr) ? frame_len : sizeof(hdr);
	for (size_t done = 0, p = 0; done < hlen; p++) {
		size_t c = hlen - done < PV_PAGE_SIZE ? hlen - done : PV_PAGE_SIZE;

		memcpy(hdr + done, page_of(q, nb_rx_page_req(q->rxl, (unsigned)p)), c);
		done += c;
	}
	if (hlen >= 6 && !nb_vif_mcast_pass(q->cfg.vif, hdr)) {
		nb_stat_add(&q->st.to_guest.dropped, 1);
		return 1;
	}
	r = nb_rx_plan(&q->cfg.caps.rx, q->rxl, &vh, hdr, hlen, frame_len, rx_hash_extra(q, hdr, hlen, &hx),
		       &plan);
	/* Data moved down lands in requests the layout kept for extras. */
	for (unsigned i = 1; r == 0 && plan.shift && i < plan.nslots; i++)
		if (plan.slot[i].kind == NB_RX_DATA && win(q, q->rx.req_cons + i)->status != GNTST_okay)
			r = -EFAULT;
	if (r < 0) {
		nb_stat_add(&q->st.to_guest.dropped, 1);
		pv_log_rl(&q->rl, PV_LOG_DEBUG, "%s: frame dropped: %s", q->name, strerror(-r));
		return 1;
	}
	if (plan.shift) {
		/* Fewer extras than the layout kept room for (a jumbo non-GSO
		 * frame; a frame the hash does not apply to): pages 1.. sat in
		 * requests 1 + holes...; move them to 1 + extras... */
		for (unsigned p = 1; p < plan.npages; p++)
			memcpy(page_of(q, p + plan.extras), page_of(q, p + q->rxl->holes),
			       plan.slot[p + plan.extras].len);
	}
	if (plan.sw_csum) {
		struct iovec civ[NB_RX_MAX_PAGES];
		size_t left = frame_len;

		for (unsigned p = 0; p < plan.npages; p++) {
			size_t c = left < PV_PAGE_SIZE ? left : PV_PAGE_SIZE;

			civ[p] = (struct iovec){ page_of(q, p ? p + plan.extras : 0), c };
			left -= c;
		}
		if (nif_csum_complete_iov(civ, (int)plan.npages, plan.csum_start, plan.csum_offset) < 0) {
			nb_stat_add(&q->st.to_guest.dropped, 1);
			return 1;
		}
		nb_stat_add(&q->st.sw_csum, 1);
	}
	for (unsigned i = 0; i < plan.nslots; i++) {
		RING_IDX idx = q->rx.req_cons + i;

		nb_rx_fill_response(&plan, i, win(q, idx)->req.id, RING_GET_RESPONSE(&q->rx, idx));
	}
	if (q->rxbuf && !rx_copy_out(q, &plan, &failed))
		return -1;
	q->rx.req_cons += plan.nslots;
	if (failed)
		nb_stat_add(&q->st.to_guest.errors, 1);
	else
		nb_stat_frame(&q->st.to_guest, frame_len, pv_now_ns());
	return 1;
}

/* ---- the round ----------------------------------------------------------- */

bool nb_rx_round(struct nb_queue *q)
{
	RING_IDX start = q->rx.req_cons, prod;
	unsigned need, frames = 0;
	bool more = false;

	rx_hash_refresh(q);
	need = q->rxl->nreqs;

	if (!rx_load_prod(q, &prod))
		return false;
	while (frames < NB_RX_BATCH) {
		int r;

		if (!rx_slots_available(q, &prod, need)) {
			if (!q->idle)
				rx_block(q);
			break;
		}
		if (q->rx_blocked || q->stalled) {
			rx_unblock(q);
			if (q->stalled) {
				q->stalled = false;
				nb_vif_queue_stalled(q->cfg.vif, false);
			}
		}
		if (prod != q->rx_mapped && q->rx_mapped - q->rx.req_cons < need &&
		    !rx_map_more(q, prod))
			return false;
		if (win(q, q->rx.req_cons)->status != GNTST_okay) {
			rx_error_slot(q);
			continue;
		}
		r = rx_one(q);
		if (r <= 0)
			break;
		frames++;
		more = frames == NB_RX_BATCH;
	}
	if (q->rx.req_cons != start) {
		rx_queue_unmap(q, start, q->rx.req_cons);
		q->rx_dirty = true;
	}
	return more && !q->idle && !q->dead;
}
