/*
 * Guest transmit: frontend tx ring -> vif TAP.
 *
 * One round: copy the published requests out of the ring once, validate
 * packet by packet (txparse.c, Linux's rules), grant-copy every data slot of
 * the round into a page of its own of dom0 memory in one batch (done in this
 * process: no round trip to the hypervisor), write each frame to the TAP
 * with one writev from there ([virtio_net_hdr, slot, slot, ...]), and write
 * the responses into the ring (one per slot: the request's status,
 * NETIF_RSP_NULL for extra-info slots). A round takes at most
 * NB_TX_COPY_PAGES slots. With --map-grants, or without dom0 memory, the
 * slots are mapped in one pv_gnttab_map_batch instead, written straight from
 * the mappings, and their grants go to q->unmap: the round's end
 * (nb_q_flush, queue.c) unmaps them together with the rx round's in one
 * pv_gnttab_unmap_batch. Responses are pushed at the round's end and the
 * frontend notified as the event index asks.
 * Offloaded frames (csum_blank or GSO) first copy their headers (at most
 * NIF_MAX_HDR_LEN bytes) into local memory: that copy is what is parsed for
 * the checksum position and what the kernel gets, so the frontend cannot
 * change the headers between our check and the kernel's read; a GSO frame
 * without csum_blank gets its pseudo-header checksum written into that copy
 * (Linux's checksum_setup "gso checksum fixup").
 */
#include "netback/queue_priv.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "netback/vif.h"

/* make_tx_response: the first slot's status, RSP_NULL for its extras. */
static void tx_response(struct nb_queue *q, const struct netif_tx_request *req, unsigned nextras,
			int16_t status)
{
	RING_IDX i = q->tx.rsp_prod_pvt;
	netif_tx_response_t *rsp = RING_GET_RESPONSE(&q->tx, i);

	rsp->id = req->id;
	rsp->status = status;
	while (nextras--) {
		rsp = RING_GET_RESPONSE(&q->tx, ++i);
		rsp->status = NETIF_RSP_NULL;
	}
	q->tx.rsp_prod_pvt = ++i;
}

/* Responses for every slot of a packet starting at reqs[0]. */
static void tx_respond_all(struct nb_queue *q, const struct netif_tx_request *reqs,
			   const struct nb_tx_pkt *p, int16_t status)
{
	tx_response(q, &reqs[0], p->nextras, status);
	for (unsigned k = 1 + p->nextras; k < p->nslots; k++)
		tx_response(q, &reqs[k], 0, status);
}

/* ---- credit scheduling (`rate`), as Linux tx_credit_exceeded ------------ */

static void tx_add_credit(struct nb_queue *q)
{
	uint64_t bytes = atomic_load_explicit(&q->credit_bytes, memory_order_relaxed);
	uint64_t max_burst = bytes > 131072 ? bytes : 131072;
	uint64_t max_credit = q->remaining_credit + bytes;

	if (max_credit < q->remaining_credit)
		max_credit = UINT64_MAX;
	q->remaining_credit = max_credit < max_burst ? max_credit : max_burst;
	q->rate_limited = false;
}

static void on_credit_timer(struct pv_loop *loop, void *arg)
{
	struct nb_queue *q = arg;

	(void)loop;
	q->timer_credit = 0;
	tx_add_credit(q);
	q->tx_kick = true;
}

static bool tx_credit_exceeded(struct nb_queue *q, unsigned size)
{
	uint64_t usec = atomic_load_explicit(&q->credit_usec, memory_order_relaxed);
	uint64_t now, next_credit;

	if (atomic_load_explicit(&q->rate_gen, memory_order_acquire) != q->rate_seen) {
		/* A new `rate` (xen_net_rate_changed): no more credit than it allows. */
		uint64_t bytes = atomic_load_explicit(&q->credit_bytes, memory_order_relaxed);

		q->rate_seen = atomic_load_explicit(&q->rate_gen, memory_order_relaxed);
		if (q->remaining_credit > bytes)
			q->remaining_credit = bytes;
	}
	if (usec == 0)
		return false;  /* no `rate`: unlimited */
	if (size <= q->remaining_credit)
		return false;
	if (q->timer_credit) {
		q->rate_limited = true;
		return true;
	}
	now = pv_now_ns();
	next_credit = q->credit_window_start + usec * 1000u;
	if (now >= next_credit) {
		q->credit_window_start = now;
		tx_add_credit(q);
	}
	if (size > q->remaining_credit) {
		q->timer_credit = pv_loop_add_timer(q->loop, next_credit > now ? next_credit - now : 0,
						    on_credit_timer, q);
		q->credit_window_start = next_credit;
		q->rate_limited = true;
		nb_stat_add(&q->st.credit_waits, 1);
		return true;
	}
	return false;
}

/* ---- one frame to the TAP ------------------------------------------------ */

/* Copy the first `want` bytes of the frame (scattered over its slots; data[k]
 * is where slot k's bytes are) into hdr; set *slot and *off to where the
 * copy stopped. */
static size_t gather(const struct nb_tx_pkt *p, uint8_t *const *data, uint8_t *hdr, size_t want,
		     unsigned *slot, size_t *off)
{
	size_t got = 0;
	unsigned k = 0;

	*off = 0;
	while (k < p->ndata && got < want) {
		size_t n = p->data[k].size - *off;

		if (n > want - got)
			n = want - got;
		memcpy(hdr + got, data[k] + *off, n);
		got += n;
		*off += n;
		if (*off == p->data[k].size) {
			k++;
			*off = 0;
		}
	}
	*slot = k;
	return got;
}

/* Returns 0 if the frame went to the TAP, -errno if it was dropped. */
static int tx_write(struct nb_queue *q, const struct nb_tx_pkt *p, uint8_t *const *data)
{
	struct iovec iov[2 + NB_TX_MAX_DATA];
	struct virtio_net_hdr vh;
	struct nif_offload off;
	uint8_t hdr[NIF_MAX_HDR_LEN];
	unsigned n = 0, k = 0;
	size_t koff = 0;
	ssize_t w;
	int r;

	r = nif_offload_from_txflags(p->data[0].flags, p->has_gso ? &p->gso : NULL, &off);
	if (r < 0)
		return r;
	iov[n++] = (struct iovec){ &vh, sizeof(vh) };
	if (off.csum_blank || off.gso_type != XEN_NETIF_GSO_TYPE_NONE) {
		size_t hlen = gather(p, data, hdr, p->total < sizeof(hdr) ? p->total : sizeof(hdr), &k, &koff);

		if (!off.csum_blank) {
			struct nif_l4info l4;

			/* GSO without csum_blank: seed the pseudo-header sum. */
			if ((r = nif_parse_l4(hdr, hlen, p->total, &l4)) < 0 ||
			    (r = nif_csum_write_pseudo(hdr, hlen, p->total, &l4)) < 0)
				return r;
			off.csum_blank = true;
			nb_stat_add(&q->st.gso_csum_fixups, 1);
		}
		r = nif_offload_to_vnet(&off, hdr, hlen, p->total, &vh);
		if (r < 0)
			return r;
		iov[n++] = (struct iovec){ hdr, hlen };
	} else {
		memset(&vh, 0, sizeof(vh));
		if (off.data_validated)
			vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	}
	for (; k < p->ndata; k++, koff = 0) {
		if (p->data[k].size == koff)
			continue;
		iov[n++] = (struct iovec){ data[k] + koff, p->data[k].size - koff };
	}
	w = writev(q->cfg.tap_fd, iov, (int)n);
	if (w < 0)
		return -errno;
	return 0;
}

/* ---- grants ---------------------------------------------------------------- */

/* Map the round's data slots (tx_ops[0..n)) in one batch. */
static bool tx_map(struct nb_queue *q, unsigned n)
{
	int r = pv_gnttab_map_batch(q->gt, n, q->tx_ops);

	nb_stat_add(&q->st.map_batches, 1);
	if (r < 0) {
		nb_q_fatal(q, "grant map batch failed: %s", strerror(-r));
		return false;
	}
	return !nb_q_revoked(q);
}

/* Copy the round's data slots (tx_ops[0..n), tx_copy_off/len saying where
 * in its page each one lies) into copybuf, one page each, in one batch; the
 * ops' statuses are set as a map would set them. */
static bool tx_copy(struct nb_queue *q, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct pv_gnttab_copy_seg *c = &q->tx_copy[i];

		*c = (struct pv_gnttab_copy_seg){ .len = q->tx_copy_len[i], .flags = PV_GNTCOPY_source_gref };
		c->source.foreign.ref = q->tx_ops[i].ref;
		c->source.foreign.offset = q->tx_copy_off[i];
		c->source.foreign.domid = (uint16_t)q->cfg.domid;
		c->dest.virt = q->copybuf + (size_t)i * PV_PAGE_SIZE;
	}
	if (!nb_q_copy(q, n, q->tx_copy))
		return false;
	for (unsigned i = 0; i < n; i++)
		q->tx_ops[i].status = q->tx_copy[i].status;
	return true;
}

/* ---- the round ----------------------------------------------------------- */

bool nb_tx_round(struct nb_queue *q)
{
	netif_tx_back_ring_t *ring = &q->tx;
	RING_IDX cons = ring->req_cons, prod;
	unsigned avail, pos = 0, npkts = 0, nops = 0;
	unsigned first_op[NB_TX_BATCH];
	bool gone = false, copy = q->copybuf != NULL;
	int more;

	prod = __atomic_load_n(&ring->sring->req_prod, __ATOMIC_ACQUIRE);
	if (prod - cons > RING_SIZE(ring)) {
		nb_q_fatal(q, "Impossible number of requests. req_prod %u, req_cons %u, size %u",
			   prod, cons, RING_SIZE(ring));
		return false;
	}
	avail = prod - cons;
	for (unsigned i = 0; i < avail; i++)
		RING_COPY_REQUEST(ring, cons + i, &q->tx_reqs[i]);

	while (pos < avail && npkts < NB_TX_BATCH) {
		struct nb_tx_pkt *p = &q->tx_pkts[npkts];
		enum nb_tx_verdict v;

		if (tx_credit_exceeded(q, q->tx_reqs[pos].size))
			break;
		v = nb_tx_parse(q->tx_reqs + pos, avail - pos, q->cfg.fatal_slots, p);
		if (v == NB_TX_FATAL) {
			pv_strlcpy(q->tx_fatal, p->msg, sizeof(q->tx_fatal));
			break;
		}
		if (copy && v == NB_TX_OK && nops + p->ndata > NB_TX_COPY_PAGES)
			break;  /* the copy pages are full: the next round takes it */
		if (atomic_load_explicit(&q->credit_usec, memory_order_relaxed))
			q->remaining_credit -= q->tx_reqs[pos].size < q->remaining_credit ?
					       q->tx_reqs[pos].size : q->remaining_credit;
		first_op[npkts] = nops;
		if (v == NB_TX_OK) {
			for (unsigned k = 0; k < p->ndata; k++) {
				q->tx_copy_off[nops] = p->data[k].offset;
				q->tx_copy_len[nops] = p->data[k].size;
				q->tx_ops[nops++] = (struct pv_gnttab_map_op){
					.domid = q->cfg.domid, .ref = p->data[k].gref, .flags = PV_GNTMAP_readonly };
			}
		}
		pos += p->nslots;
		npkts++;
	}
	ring->req_cons = cons + pos;
	/* One grant copy of every data slot into dom0 memory (no round trip
	 * to the hypervisor: dom0 copies in-process); without that memory one
	 * map batch (and, at the flush, one unmap batch). */
	if (nops && !(copy ? tx_copy(q, nops) : tx_map(q, nops)))
		return false;

	pos = 0;
	for (unsigned i = 0; i < npkts; i++) {
		const struct nb_tx_pkt *p = &q->tx_pkts[i];
		const struct netif_tx_request *reqs = q->tx_reqs + pos;
		struct pv_gnttab_map_op *ops = q->tx_ops + first_op[i];
		int16_t status = NETIF_RSP_OKAY;

		pos += p->nslots;
		switch (p->verdict) {
		case NB_TX_MCAST:
			if (p->mcast_add) {
				if (nb_vif_mcast_add(q->cfg.vif, p->mcast_addr) < 0) {
					pv_log_rl(&q->rl, PV_LOG_WARN, "%s: Too many multicast addresses", q->name);
					status = NETIF_RSP_ERROR;
				}
			} else {
				nb_vif_mcast_del(q->cfg.vif, p->mcast_addr);
			}
			tx_response(q, &reqs[0], p->nextras, status);
			continue;
		case NB_TX_DROP:
			pv_log_rl(&q->rl, PV_LOG_DEBUG, "%s: %s", q->name, p->msg);
			nb_stat_add(&q->st.from_guest.errors, 1);
			tx_respond_all(q, reqs, p, NETIF_RSP_ERROR);
			continue;
		default:
			break;
		}
		uint8_t *data[NB_TX_MAX_DATA];
		for (unsigned k = 0; k < p->ndata; k++) {
			if (ops[k].status == GNTST_okay) {
				if (copy) {
					data[k] = q->copybuf + (size_t)(first_op[i] + k) * PV_PAGE_SIZE;
				} else {
					q->unmap[q->nunmap++] = ops[k].handle;
					data[k] = (uint8_t *)ops[k].addr + p->data[k].offset;
				}
				continue;
			}
			if (ops[k].status == GNTST_bad_domain)
				gone = true;
			if (status == NETIF_RSP_OKAY)
				pv_log_rl(&q->rl, PV_LOG_WARN, "%s: Grant map of %u. frag failed! status: %d ref: %u",
					  q->name, k, ops[k].status, ops[k].ref);
			status = NETIF_RSP_ERROR;
		}
		if (status != NETIF_RSP_OKAY) {
			nb_stat_add(&q->st.from_guest.errors, 1);
		} else {
			int r = tx_write(q, p, data);

			if (r == 0) {
				nb_stat_frame(&q->st.from_guest, p->total, pv_now_ns());
			} else {
				nb_stat_add(&q->st.from_guest.dropped, 1);
				pv_log_rl(&q->rl, PV_LOG_DEBUG, "%s: frame of %u bytes dropped: %s",
					  q->name, p->total, strerror(-r));
			}
		}
		tx_respond_all(q, reqs, p, status);
	}

	if (npkts)
		q->tx_dirty = true;
	if (gone) {
		nb_q_domain_gone(q);
		return false;
	}
	if (q->tx_fatal[0])
		return false;
	if (q->rate_limited)
		return false;  /* the credit timer kicks us */
	if (ring->req_cons != prod)
		return true;   /* the batch limit stopped us */
	RING_FINAL_CHECK_FOR_REQUESTS(ring, more);
	return more != 0;
}
