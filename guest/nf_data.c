/*
 * Netfront's data path: queue setup/teardown (setup_netfront,
 * xennet_disconnect_backend's per-queue part), the data threads (one per tx
 * queue: Linux's softirq/NAPI context for that queue), transmit from the TAP
 * straight into granted pages (xennet_start_xmit), tx completion
 * (xennet_tx_buf_gc), receive (xennet_poll) and refill
 * (xennet_alloc_rx_buffers), event storm detection, and the freezer.
 *
 * Every hypervisor call of the data path is in this file or hvctx.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/runtime.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/hv.h"

#define TAG_KICK 1
#define TAG_TAP 2
#define TAG_EVTCHN 3
#define XMIT_BUDGET 64
#define RX_BUDGET 64
/* Event storm (XSA-391): this many events in one second that found no work,
 * and at least 90% of the events of that second. */
#define STORM_SPURIOUS 10000u
#define STORM_WINDOW_NS 1000000000ull

struct nfd_thread {
	struct gr_rt *rt;
	struct nf_dev *d;
	unsigned idx;
	pthread_t th;
	int epfd, kickfd;
	atomic_bool stop;
	struct pv_evtchn *ec;       /* the queue's handle attached to epfd, NULL none */
	int ec_fd;                  /* or its own fd watched in epfd (PVNET_EVTCHN_LEVEL), -1 */
	uint64_t ec_gen;
	bool tap_armed;
	bool tx_blocked;            /* ring full: wait for tx completions */
	bool rx_more;               /* rx budget ran out with responses left */
	bool pinned;                /* pinned to the CPU for pin_key (pin_thread) */
	unsigned pin_key;
	struct pv_ratelimit rl;
	uint8_t scratch[NIF_VNET_HDR_LEN + XEN_NETIF_MAX_TX_SIZE + 1];
};

static struct gr_hvctx *qctx(const struct nf_queue *q)
{
	return q->hvctx;
}

static struct nf_qstats *stats(struct nf_dev *d, unsigned idx)
{
	return &d->queues[idx].st;
}

/* ---- grants and channels of a queue ----------------------------------------- */

static int end_access(const struct nf_queue *q, grant_ref_t ref)
{
	if (q->stale)
		return 0;   /* a move voided the grant table */
	return pv_gnttab_end_foreign_access_ref(qctx(q)->gs, ref);
}

static void grant(const struct nf_queue *q, grant_ref_t ref, uint32_t frame, bool readonly)
{
	if (!q->stale)
		pv_gnttab_grant_foreign_access_ref(qctx(q)->gs, ref, (domid_t)q->dev->otherend_id, frame,
						   readonly);
}

static void notify(const struct nf_queue *q, evtchn_port_t port)
{
	if (!q->stale && q->ec)
		pv_evtchn_notify(q->ec, port);
}

static void free_block(struct gr_rt *rt, uint8_t *first, unsigned count)
{
	int64_t f;

	if (!first)
		return;
	f = pv_page_frame(rt->pa, first);
	if (f >= 0)
		pv_page_free(rt->pa, (uint32_t)f, count);
}

static uint8_t *alloc_block(struct gr_rt *rt, unsigned count, uint32_t *frame)
{
	int64_t f = pv_page_alloc(rt->pa, count);

	if (f < 0)
		return NULL;
	*frame = (uint32_t)f;
	return pv_page_addr(rt->pa, (uint32_t)f);
}

int nfd_queue_setup(void *env, struct nf_queue *q, bool split)
{
	struct gr_rt *rt = env;
	struct gr_hvctx *c = rt->hvc;
	struct nf_dev *d = q->dev;
	uint8_t *txs = NULL, *rxs = NULL, *txp = NULL, *rxp = NULL;
	uint32_t txs_f = 0, rxs_f = 0, txp_f = 0, rxp_f = 0;
	bool tx_refs = false, rx_refs = false;
	int64_t ref;
	int r = -ENOMEM;

	q->hvctx = c;
	q->ec = NULL;
	q->tx_ring_ref = q->rx_ring_ref = 0;
	if (!(txs = alloc_block(rt, 1, &txs_f)) || !(rxs = alloc_block(rt, 1, &rxs_f)) ||
	    !(txp = alloc_block(rt, NF_TX_RING_SIZE, &txp_f)) ||
	    !(rxp = alloc_block(rt, NF_RX_RING_SIZE, &rxp_f)))
		goto fail;
	memset(txs, 0, PV_PAGE_SIZE);
	memset(rxs, 0, PV_PAGE_SIZE);
	/* Receive buffers are granted writable: an untrusted backend (XSA-403
	 * hardening, frontend `trusted` = 0) must not read what our memory
	 * held before. A trusted one, as in Linux (whose rx pages come from a
	 * page pool, unzeroed), is spared the 1 MiB per queue on each connect
	 * (every byte of it migration blackout). */
	if (!d->feat.trusted)
		memset(rxp, 0, (size_t)NF_RX_RING_SIZE * PV_PAGE_SIZE);
	SHARED_RING_INIT((netif_tx_sring_t *)txs);
	FRONT_RING_INIT(&q->tx, (netif_tx_sring_t *)txs, PV_PAGE_SIZE);
	SHARED_RING_INIT((netif_rx_sring_t *)rxs);
	FRONT_RING_INIT(&q->rx, (netif_rx_sring_t *)rxs, PV_PAGE_SIZE);
	for (unsigned i = 0; i < NF_TX_RING_SIZE; i++) {
		q->tx_page[i] = txp + (size_t)i * PV_PAGE_SIZE;
		q->tx_frame[i] = txp_f + i;
	}
	for (unsigned i = 0; i < NF_RX_RING_SIZE; i++) {
		q->rx_page[i] = rxp + (size_t)i * PV_PAGE_SIZE;
		q->rx_frame[i] = rxp_f + i;
	}
	if ((r = pv_gnttab_alloc_refs(c->gs, NF_TX_RING_SIZE, q->grant_tx_ref)) < 0)
		goto fail;
	tx_refs = true;
	if ((r = pv_gnttab_alloc_refs(c->gs, NF_RX_RING_SIZE, q->grant_rx_ref)) < 0)
		goto fail;
	rx_refs = true;
	ref = pv_gnttab_grant_foreign_access(c->gs, (domid_t)d->otherend_id, txs_f, false);
	if (ref < 0) {
		r = (int)ref;
		goto fail;
	}
	q->tx_ring_ref = (grant_ref_t)ref;
	ref = pv_gnttab_grant_foreign_access(c->gs, (domid_t)d->otherend_id, rxs_f, false);
	if (ref < 0) {
		r = (int)ref;
		goto fail;
	}
	q->rx_ring_ref = (grant_ref_t)ref;
	q->ec = pv_evtchn_open(c->path);
	if (!q->ec) {
		r = -errno;
		goto fail;
	}
	r = pv_evtchn_bind_unbound_port(q->ec, d->otherend_id);
	if (r < 0)
		goto fail;
	q->tx_evtchn = q->rx_evtchn = (evtchn_port_t)r;
	if (split) {
		/* setup_netfront_split; on failure Linux falls back to one channel. */
		r = pv_evtchn_bind_unbound_port(q->ec, d->otherend_id);
		if (r > 0)
			q->rx_evtchn = (evtchn_port_t)r;
	}
	q->storm_window_start = 0;
	q->storm_events = q->storm_spurious = 0;
	return 0;

fail:
	pv_warn("%s: setting up queue %u: %s", d->nodename, q->id, strerror(-r));
	if (q->ec)
		pv_evtchn_close(q->ec);
	q->ec = NULL;
	if (q->tx_ring_ref) {
		pv_gnttab_end_foreign_access_ref(c->gs, q->tx_ring_ref);
		pv_gnttab_free_refs(c->gs, 1, &q->tx_ring_ref);
	}
	if (q->rx_ring_ref) {
		pv_gnttab_end_foreign_access_ref(c->gs, q->rx_ring_ref);
		pv_gnttab_free_refs(c->gs, 1, &q->rx_ring_ref);
	}
	if (tx_refs)
		pv_gnttab_free_refs(c->gs, NF_TX_RING_SIZE, q->grant_tx_ref);
	if (rx_refs)
		pv_gnttab_free_refs(c->gs, NF_RX_RING_SIZE, q->grant_rx_ref);
	free_block(rt, txs, 1);
	free_block(rt, rxs, 1);
	free_block(rt, txp, NF_TX_RING_SIZE);
	free_block(rt, rxp, NF_RX_RING_SIZE);
	q->tx.sring = NULL;
	q->rx.sring = NULL;
	q->tx_ring_ref = q->rx_ring_ref = 0;
	return r < 0 ? r : -EIO;
}

/* Queue locks held, q->live already false. After a move (stale) there is
 * nothing to end: the grant table and channels of that incarnation are gone
 * and the old backend's mappings were revoked, so the pages are ours again.
 * Otherwise a page the backend still maps is never freed (XSA-396). */
void nfd_queue_teardown(void *env, struct nf_queue *q)
{
	struct gr_rt *rt = env;
	struct gr_hvctx *c = qctx(q);
	bool keep_tx = false, keep_rx = false, keep_rings = false;

	if (q->ec)
		pv_evtchn_close(q->ec);
	q->ec = NULL;
	if (!q->stale && c) {
		/* Every ref of the queue, not only the ones in flight: a grant
		 * whose end failed while the device broke (the backend kept it
		 * mapped) is no longer marked in flight, and ending an unused
		 * entry does nothing. */
		for (unsigned id = 0; id < NF_TX_RING_SIZE; id++)
			if (end_access(q, q->grant_tx_ref[id]) < 0)
				keep_tx = true;
		for (unsigned i = 0; i < NF_RX_RING_SIZE; i++)
			if (end_access(q, q->grant_rx_ref[i]) < 0)
				keep_rx = true;
		if (end_access(q, q->tx_ring_ref) < 0 || end_access(q, q->rx_ring_ref) < 0)
			keep_rings = true;
		if (!keep_tx)
			pv_gnttab_free_refs(c->gs, NF_TX_RING_SIZE, q->grant_tx_ref);
		if (!keep_rx)
			pv_gnttab_free_refs(c->gs, NF_RX_RING_SIZE, q->grant_rx_ref);
		if (!keep_rings) {
			pv_gnttab_free_refs(c->gs, 1, &q->tx_ring_ref);
			pv_gnttab_free_refs(c->gs, 1, &q->rx_ring_ref);
		}
		if (keep_tx || keep_rx || keep_rings)
			pv_warn("%s: queue %u: the backend still maps some pages; they are never reused",
				q->dev->nodename, q->id);
	}
	if (!keep_tx)
		free_block(rt, q->tx_page[0], NF_TX_RING_SIZE);
	if (!keep_rx)
		free_block(rt, q->rx_page[0], NF_RX_RING_SIZE);
	if (!keep_rings) {
		free_block(rt, (uint8_t *)q->tx.sring, 1);
		free_block(rt, (uint8_t *)q->rx.sring, 1);
	}
	q->tx.sring = NULL;
	q->rx.sring = NULL;
	q->tx_page[0] = q->rx_page[0] = NULL;
	q->tx_ring_ref = q->rx_ring_ref = 0;
}

/* xennet_alloc_rx_buffers: post every free slot, push, notify. rx_lock held. */
static void rx_refill(struct nf_queue *q)
{
	int notify_needed;
	bool zero = !q->dev->feat.trusted;

	while (q->rx.req_prod_pvt - q->rx.rsp_cons < NF_RX_RING_SIZE) {
		RING_IDX i = q->rx.req_prod_pvt;
		unsigned k = i & (NF_RX_RING_SIZE - 1);
		netif_rx_request_t *req = RING_GET_REQUEST(&q->rx, i);

		if (zero)   /* untrusted backend: never show it old data (XSA-403) */
			memset(q->rx_page[k], 0, PV_PAGE_SIZE);
		grant(q, q->grant_rx_ref[k], q->rx_frame[k], false);
		req->id = (uint16_t)k;
		req->gref = q->grant_rx_ref[k];
		q->rx.req_prod_pvt++;
	}
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&q->rx, notify_needed);
	if (notify_needed)
		notify(q, q->rx_evtchn);
}

void nfd_queue_start(void *env, struct nf_queue *q)
{
	(void)env;
	pthread_mutex_lock(&q->rx_lock);
	if (q->live && !q->stale) {
		rx_refill(q);
		notify(q, q->tx_evtchn);
		if (q->rx_evtchn != q->tx_evtchn)
			notify(q, q->rx_evtchn);
	}
	pthread_mutex_unlock(&q->rx_lock);
}

/* ---- transmit ------------------------------------------------------------------ */

static unsigned npages(uint32_t len)
{
	return (len + PV_PAGE_SIZE - 1) / PV_PAGE_SIZE;
}

/* The frame is in the pages of ids[0..np); check it, fix what the backend
 * cannot take, grant and publish it. tx_lock held. 0, or -errno if it was
 * dropped (its ids are back on the free list). */
static int tx_publish(struct nfd_thread *t, struct nf_queue *q, const uint16_t *ids, unsigned np,
		      uint32_t len, struct nif_offload *o)
{
	struct nf_dev *d = q->dev;
	grant_ref_t refs[NF_MAX_PKT_PAGES];
	const char *why = NULL;

	if (len < 14 || len > XEN_NETIF_MAX_TX_SIZE)
		why = "bad length for the wire format";
	else if (o->gso_type != XEN_NETIF_GSO_TYPE_NONE &&
		 (!d->feat.sg || (o->gso_type == XEN_NETIF_GSO_TYPE_TCPV4 && !d->feat.gso_tcpv4) ||
		  (o->gso_type == XEN_NETIF_GSO_TYPE_TCPV6 && !d->feat.gso_tcpv6)))
		why = "GSO the backend did not offer";
	else if (np > 1 && !d->feat.sg)
		why = "several slots without feature-sg";
	if (why) {
		pv_log_rl(&t->rl, PV_LOG_WARN, "%s: tx: dropping a %u-byte frame: %s", d->p.ifname, len, why);
		for (unsigned i = np; i-- > 0;)
			nf_txids_put(&q->txb, ids[i]);
		atomic_fetch_add(&q->st.tx_errors, 1);
		return -EINVAL;
	}
	if (o->csum_blank) {
		struct nif_l4info l4;
		uint32_t first = len < PV_PAGE_SIZE ? len : PV_PAGE_SIZE;
		if (nif_parse_l4(q->tx_page[ids[0]], first, len, &l4) == 0 && l4.ipver == 6 &&
		    !d->feat.ipv6_csum) {
			/* No feature-ipv6-csum-offload: finish the checksum here, as
			 * Linux's stack would have without NETIF_F_IPV6_CSUM. */
			struct iovec iov[NF_MAX_PKT_PAGES];
			uint32_t left = len;
			for (unsigned i = 0; i < np; i++) {
				iov[i].iov_base = q->tx_page[ids[i]];
				iov[i].iov_len = left < PV_PAGE_SIZE ? left : PV_PAGE_SIZE;
				left -= (uint32_t)iov[i].iov_len;
			}
			if (nif_csum_complete_iov(iov, (int)np, l4.csum_start, l4.csum_offset) == 0)
				o->csum_blank = false;
		}
	}
	if (!d->feat.trusted && len % PV_PAGE_SIZE)   /* XSA-403: no stale bytes */
		memset(q->tx_page[ids[np - 1]] + len % PV_PAGE_SIZE, 0, PV_PAGE_SIZE - len % PV_PAGE_SIZE);
	for (unsigned i = 0; i < np; i++) {
		refs[i] = q->grant_tx_ref[ids[i]];
		grant(q, refs[i], q->tx_frame[ids[i]], true);
	}
	nf_tx_build(&q->tx, &q->txb, ids, refs, np, len, o);
	atomic_fetch_add(&q->st.tx_packets, 1);
	atomic_fetch_add(&q->st.tx_bytes, len);
	return 0;
}

/* One frame from TAP queue `fd` straight into free tx pages. */
static int tx_from_tap(struct nfd_thread *t, struct nf_queue *q, int fd)
{
	uint16_t ids[NF_MAX_PKT_PAGES];
	struct iovec iov[1 + NF_MAX_PKT_PAGES];
	struct virtio_net_hdr vh;
	struct nif_offload o;
	ssize_t n;
	uint32_t len;
	unsigned np;

	iov[0].iov_base = &vh;
	iov[0].iov_len = sizeof(vh);
	for (unsigned i = 0; i < NF_MAX_PKT_PAGES; i++) {
		ids[i] = nf_txids_get(&q->txb);
		iov[1 + i].iov_base = q->tx_page[ids[i]];
		iov[1 + i].iov_len = PV_PAGE_SIZE;
	}
	n = readv(fd, iov, 1 + NF_MAX_PKT_PAGES);
	if (n < (ssize_t)sizeof(vh)) {
		int e = n < 0 ? errno : EINVAL;
		for (unsigned i = NF_MAX_PKT_PAGES; i-- > 0;)
			nf_txids_put(&q->txb, ids[i]);
		return -e;
	}
	len = (uint32_t)(n - (ssize_t)sizeof(vh));
	np = len ? npages(len) : 1;
	if (np > NF_MAX_PKT_PAGES)
		np = NF_MAX_PKT_PAGES;
	for (unsigned i = NF_MAX_PKT_PAGES; i-- > np;)
		nf_txids_put(&q->txb, ids[i]);
	if (nif_offload_from_vnet(&vh, &o) < 0) {
		pv_log_rl(&t->rl, PV_LOG_WARN, "%s: tx: unsupported virtio-net offload (gso_type %u)",
			  q->dev->p.ifname, vh.gso_type);
		for (unsigned i = np; i-- > 0;)
			nf_txids_put(&q->txb, ids[i]);
		atomic_fetch_add(&q->st.tx_errors, 1);
		return 0;
	}
	tx_publish(t, q, ids, np, len, &o);
	return 0;
}

/* One frame from the backlog (re-posted after a move, or drained from a
 * detached TAP queue). */
static void tx_from_buf(struct nfd_thread *t, struct nf_queue *q, struct nf_txbuf *b)
{
	uint16_t ids[NF_MAX_PKT_PAGES];
	unsigned np = npages(b->len);
	uint32_t off = 0;

	if (np == 0 || np > NF_MAX_PKT_PAGES) {
		atomic_fetch_add(&q->st.tx_errors, 1);
		return;
	}
	for (unsigned i = 0; i < np; i++) {
		uint32_t chunk = PV_MIN(b->len - off, PV_PAGE_SIZE);
		ids[i] = nf_txids_get(&q->txb);
		memcpy(q->tx_page[ids[i]], b->data + off, chunk);
		off += chunk;
	}
	if (tx_publish(t, q, ids, np, b->len, &b->o) < 0) {
		if (b->announce && !q->ann_pending)
			nf_announce_release(q->dev, "the announcement could not be sent");
		return;
	}
	if (b->replay)
		atomic_fetch_add(&q->st.tx_reposted, 1);
	if (b->announce) {
		q->ann_id[ids[0]] = 1;
		q->ann_pending++;
		atomic_fetch_add(&q->st.tx_announce, 1);
	}
}

static void tx_push(struct nf_queue *q)
{
	int notify_needed;

	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&q->tx, notify_needed);
	if (notify_needed)
		notify(q, q->tx_evtchn);
}

/* Dequeue one frame from the TAP and drop it. */
static bool tx_drop_one(struct nfd_thread *t, int fd)
{
	return read(fd, t->scratch, sizeof(t->scratch)) > 0;
}

static struct nf_txbuf *backlog_pop(struct nf_queue *q)
{
	struct nf_txbuf *b = q->backlog;

	if (b) {
		q->backlog = b->next;
		if (!q->backlog)
			q->backlog_tail = NULL;
		q->backlog_len--;
	}
	return b;
}

static bool have_room(struct nf_queue *q)
{
	return nf_tx_free_slots(&q->tx) >= NF_TX_MAX_SLOTS && q->txb.nfree >= NF_MAX_PKT_PAGES;
}

/* The qdisc running for this txq: what Linux's dev_queue_xmit would do. */
static void xmit_burst(struct nfd_thread *t)
{
	struct nf_dev *d = t->d;
	struct nf_txq *txq = &d->txq[t->idx];
	int fd = d->tap.fds[t->idx];
	unsigned budget = XMIT_BUDGET;
	bool empty = false;

	pthread_mutex_lock(&txq->xmit_lock);
	while (budget && !empty) {
		struct nf_queue *q = NULL;
		enum nf_xmit_verdict v = nf_xmit_begin(d, t->idx, &q);

		if (v == NF_XMIT_STOPPED)
			break;
		if (v == NF_XMIT_FULL) {
			t->tx_blocked = true;
			break;
		}
		if (v == NF_XMIT_RACE || v == NF_XMIT_DROP) {
			if (!tx_drop_one(t, fd))
				break;
			if (v == NF_XMIT_RACE)
				nf_xmit_race(d, t->idx);
			else
				atomic_fetch_add(&stats(d, t->idx)->tx_dropped, 1);
			budget--;
			continue;
		}
		do {
			struct nf_txbuf *b = backlog_pop(q);
			if (b) {
				tx_from_buf(t, q, b);
				free(b);
			} else if (tx_from_tap(t, q, fd) < 0) {
				empty = true;
				break;
			}
			budget--;
		} while (budget && have_room(q) && !atomic_load(&txq->stopped));
		if (!have_room(q))
			t->tx_blocked = true;
		tx_push(q);
		pthread_mutex_unlock(&q->tx_lock);
		if (t->tx_blocked)
			break;
	}
	pthread_mutex_unlock(&txq->xmit_lock);
}

/* ---- receive ------------------------------------------------------------------- */

static void rx_deliver(struct nfd_thread *t, struct nf_queue *q, const struct nf_rx_pkt *p)
{
	struct nf_dev *d = q->dev;
	unsigned tq = t->idx < atomic_load(&d->tap_queues) ? t->idx : 0;
	uint8_t hdr[NIF_MAX_HDR_LEN];
	struct iovec iov[2 + NF_RX_MAX_SLOTS];
	struct virtio_net_hdr vh;
	struct nif_offload o;
	size_t hlen = 0, want = PV_MIN((size_t)p->len, sizeof(hdr));
	int niov = 2;

	/* A private copy of the headers: parsed and written from here. */
	for (unsigned i = 0; i < p->ndata && hlen < want; i++) {
		size_t c = PV_MIN((size_t)p->data[i].len, want - hlen);
		memcpy(hdr + hlen, q->rx_page[p->data[i].idx & (NF_RX_RING_SIZE - 1)] + p->data[i].offset, c);
		hlen += c;
	}
	if (nif_offload_from_rxflags(p->flags, p->has_gso ? &p->gso : NULL, &o) < 0)
		goto err;
	if (o.gso_type != XEN_NETIF_GSO_TYPE_NONE && !o.csum_blank) {
		/* checksum_setup: a GSO frame always leaves as a partial checksum. */
		struct nif_l4info l4;
		if (nif_parse_l4(hdr, hlen, p->len, &l4) < 0 ||
		    nif_csum_write_pseudo(hdr, hlen, p->len, &l4) < 0)
			goto err;
		o.csum_blank = true;
		atomic_fetch_add(&q->st.rx_gso_checksum_fixup, 1);
	}
	if (nif_offload_to_vnet(&o, hdr, hlen, p->len, &vh) < 0)
		goto err;
	iov[0].iov_base = &vh;
	iov[0].iov_len = sizeof(vh);
	iov[1].iov_base = hdr;
	iov[1].iov_len = hlen;
	for (unsigned i = 0, skip = (unsigned)hlen; i < p->ndata; i++) {
		unsigned len = p->data[i].len, c = PV_MIN(len, skip);
		skip -= c;
		if (len - c == 0)
			continue;
		iov[niov].iov_base = q->rx_page[p->data[i].idx & (NF_RX_RING_SIZE - 1)] + p->data[i].offset + c;
		iov[niov].iov_len = len - c;
		niov++;
	}
	if (writev(d->tap.fds[tq], iov, niov) < 0) {
		atomic_fetch_add(&q->st.rx_dropped, 1);
		return;
	}
	atomic_fetch_add(&q->st.rx_packets, 1);
	atomic_fetch_add(&q->st.rx_bytes, p->len);
	return;
err:
	pv_log_rl(&t->rl, PV_LOG_WARN, "%s: rx: dropping a %u-byte frame with offloads we cannot express",
		  d->p.ifname, p->len);
	atomic_fetch_add(&q->st.rx_errors, 1);
}

/* A tx response: the backend is done with the page (xennet_tx_buf_gc). */
static int tx_done(void *arg, uint16_t id, int16_t status)
{
	struct nf_queue *q = arg;

	/* Per frame: the status of its first slot (the others follow it). */
	if (status != NETIF_RSP_OKAY && q->txb.info[id].first)
		atomic_fetch_add(&q->st.tx_errors, 1);
	/* The backend has written the announcement out: the gate opens. */
	if (q->ann_id[id]) {
		q->ann_id[id] = 0;
		if (--q->ann_pending == 0)
			nf_announce_release(q->dev, NULL);
	}
	return end_access(q, q->grant_tx_ref[id]);
}

static bool usable(const struct nf_queue *q, uint64_t gen)
{
	return q->live && !q->stale && q->gen == gen && !atomic_load(&q->dev->broken);
}

/* xennet_poll. rx_lock held. Returns the packets handled. */
static unsigned rx_poll(struct nfd_thread *t, struct nf_queue *q)
{
	struct nf_dev *d = q->dev;
	unsigned done = 0;
	const char *why;
	int more;

	t->rx_more = false;
	do {
		RING_IDX prod = __atomic_load_n(&q->rx.sring->rsp_prod, __ATOMIC_ACQUIRE);

		if (nf_rx_check_prod(&q->rx, prod, &why) < 0) {
			nf_mark_broken(d, "%s", why);
			return done;
		}
		while (q->rx.rsp_cons != prod) {
			struct nf_rx_pkt p;
			if (done == RX_BUDGET) {
				t->rx_more = true;
				goto out;
			}
			if (nf_rx_next(&q->rx, prod, &p, &why) < 0) {
				nf_mark_broken(d, "%s", why);
				return done;
			}
			/* The backend must be done with every slot before we
			 * look at the data (XSA-396: no BUG, break instead). */
			for (unsigned i = 0; i < p.nslots; i++)
				if (end_access(q, q->grant_rx_ref[(p.first + i) & (NF_RX_RING_SIZE - 1)]) < 0) {
					nf_mark_broken(d, "rx grant still in use by the backend");
					return done;
				}
			if (p.err) {
				pv_log_rl(&t->rl, PV_LOG_WARN, "%s: rx: dropping a frame (error %d)",
					  d->p.ifname, (int)p.err);
				atomic_fetch_add(&q->st.rx_errors, 1);
			} else {
				rx_deliver(t, q, &p);
			}
			done++;
		}
		RING_FINAL_CHECK_FOR_RESPONSES(&q->rx, more);
	} while (more);
out:
	rx_refill(q);
	return done;
}

/* One event (or wake-up without one) for the storm rule: 10000 spurious in a
 * second, 90% of all, break the device. Data thread only. */
static void storm_account(struct nf_dev *d, struct nf_queue *q, bool spurious)
{
	uint64_t now = pv_now_ns();

	if (now - q->storm_window_start > STORM_WINDOW_NS) {
		q->storm_window_start = now;
		q->storm_events = q->storm_spurious = 0;
	}
	q->storm_events++;
	if (!spurious)
		return;
	q->storm_spurious++;
	atomic_fetch_add(&q->st.spurious_events, 1);
	if (q->storm_spurious >= STORM_SPURIOUS && q->storm_spurious * 10 >= q->storm_events * 9)
		nf_mark_broken(d, "event storm: %u events without work within a second", q->storm_spurious);
}

/* The event channel fired (`woken`) or rx work is left: tx completions,
 * received frames, storm check. */
static void handle_events(struct nfd_thread *t, bool woken)
{
	struct nf_dev *d = t->d;
	struct nf_queue *q = &d->queues[t->idx];
	int ports[4];
	unsigned nports = 0, work = 0;
	const char *why;
	int port, r;

	pthread_mutex_lock(&q->rx_lock);
	if (!usable(q, t->ec_gen)) {
		pthread_mutex_unlock(&q->rx_lock);
		return;
	}
	while ((port = pv_evtchn_pending(q->ec)) > 0)
		if (nports < PV_ARRAY_SIZE(ports))
			ports[nports++] = port;
	pthread_mutex_unlock(&q->rx_lock);
	if (!nports && !t->rx_more) {
		/* Woken for no event at all: our doorbell rung without the flag
		 * that makes it one (an honest backend at most leaves an edge of
		 * an event we took already, or the port's own report when it was
		 * bound); masking does not stop those. */
		if (woken)
			storm_account(d, q, true);
		return;
	}
	atomic_fetch_add(&q->st.events, 1);

	pthread_mutex_lock(&q->tx_lock);
	if (usable(q, t->ec_gen)) {
		r = nf_tx_gc(&q->tx, &q->txb, tx_done, q, &why);
		if (r < 0) {
			nf_mark_broken(d, "%s", why);
		} else if (r > 0) {
			work += (unsigned)r;
			t->tx_blocked = false;
		}
	}
	pthread_mutex_unlock(&q->tx_lock);

	pthread_mutex_lock(&q->rx_lock);
	if (usable(q, t->ec_gen)) {
		work += rx_poll(t, q);
		if (usable(q, t->ec_gen))
			for (unsigned i = 0; i < nports; i++)
				pv_evtchn_unmask(q->ec, (evtchn_port_t)ports[i]);
	}
	pthread_mutex_unlock(&q->rx_lock);

	if (nports)
		storm_account(d, q, !work);
}

/* ---- the data thread ---------------------------------------------------------------- */

static void freeze_point(struct nfd_thread *t)
{
	struct gr_rt *rt = t->rt;

	if (!atomic_load(&rt->freezing))
		return;
	pthread_mutex_lock(&rt->fz_lock);
	rt->fz_parked++;
	pthread_cond_broadcast(&rt->fz_cond);
	while (atomic_load(&rt->freezing) && !atomic_load(&t->stop))
		pthread_cond_wait(&rt->fz_cond, &rt->fz_lock);
	rt->fz_parked--;
	pthread_mutex_unlock(&rt->fz_lock);
}

/* Follow the queue: attach its event channel handle to our epoll set when
 * it is rebuilt (its ports then fire edge-triggered here, and taking an
 * event costs no syscall; on a kernel that cannot, the handle's own fd is
 * watched). Under rx_lock, which the queue's set-up and teardown hold: the
 * handle cannot go meanwhile. */
static void leave_evtchn(struct nfd_thread *t, struct nf_queue *q, struct pv_evtchn *keep)
{
	if (t->ec_fd >= 0)
		epoll_ctl(t->epfd, EPOLL_CTL_DEL, t->ec_fd, NULL);
	else if (t->ec && t->ec == q->ec && t->ec != keep)
		(void)pv_evtchn_attach(t->ec, -1, 0);  /* a closed one left by itself */
	t->ec_fd = -1;
	t->ec = NULL;
}

/* Next to netback's thread of the same queue, which pins itself by the same
 * number (frontend domid + handle + queue; the domid spreads the guests over
 * the CPUs): notifies between the two stay on one CPU, and so do the frames'
 * bytes. Again after a move, where the domid changed. rx_lock held. */
static void pin_thread(struct nfd_thread *t, const struct nf_queue *q)
{
	unsigned key = pv_queue_cpu_index(qctx(q)->domid, t->d->handle, t->idx);
	int cpu;

	if (t->rt->o.no_affinity || (t->pinned && key == t->pin_key))
		return;
	cpu = pv_pin_thread_index(key);
	if (cpu < 0) {
		pv_log(PV_LOG_WARN, "%s: queue %u: cannot pin to a CPU: %s", t->d->p.ifname, t->idx,
		       strerror(-cpu));
		return;
	}
	t->pinned = true;
	t->pin_key = key;
}

static void sync_evtchn(struct nfd_thread *t)
{
	struct nf_queue *q = &t->d->queues[t->idx];
	struct pv_evtchn *ec;
	uint64_t gen;
	int r;

	pthread_mutex_lock(&q->rx_lock);
	gen = q->gen;
	ec = usable(q, gen) ? q->ec : NULL;
	if (ec == t->ec && gen == t->ec_gen) {
		pthread_mutex_unlock(&q->rx_lock);
		return;
	}
	leave_evtchn(t, q, ec);
	t->ec_gen = gen;
	t->rx_more = false;
	t->tx_blocked = false;
	/* -EINVAL: attached here already (only this thread attaches it). */
	if (ec)
		pin_thread(t, q);
	if (ec && ((r = pv_evtchn_attach(ec, t->epfd, TAG_EVTCHN)) == 0 || r == -EINVAL)) {
		t->ec = ec;
	} else if (ec && r == -EOPNOTSUPP) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_EVTCHN };

		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, pv_evtchn_fd(ec), &ev) == 0) {
			t->ec = ec;
			t->ec_fd = pv_evtchn_fd(ec);
			pv_info("%s: queue %u: event channel on the handle's fd (level-triggered)",
				t->d->nodename, t->idx);
		}
	}
	pthread_mutex_unlock(&q->rx_lock);
}

/* The thread ends before its epoll set: the queue's handle, if it is still
 * the one we attached, goes back to its own set. */
static void unsync_evtchn(struct nfd_thread *t)
{
	struct nf_queue *q = &t->d->queues[t->idx];

	pthread_mutex_lock(&q->rx_lock);
	leave_evtchn(t, q, NULL);
	pthread_mutex_unlock(&q->rx_lock);
}

static bool backlog_waiting(const struct nf_dev *d, unsigned idx)
{
	return __atomic_load_n(&d->queues[idx].backlog, __ATOMIC_RELAXED) != NULL;
}

/* Is this queue held by the announcement gate? Opens it at the deadline. */
static bool gate_holds(struct nfd_thread *t)
{
	struct nf_dev *d = t->d;

	if (t->idx == 0 || !atomic_load(&d->ann_gate))
		return false;
	if (pv_now_ns() - atomic_load(&d->ann_shut_ns) < NF_ANNOUNCE_GATE_NS)
		return true;
	nf_announce_release(d, "the backend did not answer the announcement within 1 s");
	return false;
}

static void *dthread_main(void *arg)
{
	struct nfd_thread *t = arg;
	struct nf_dev *d = t->d;
	char comm[16];   /* "eth0-q0", for top -H and perf (the kernel keeps 15 bytes) */

	snprintf(comm, sizeof(comm), "%.10s-q%u", d->p.ifname, t->idx % 1000);
	(void)pthread_setname_np(pthread_self(), comm);
	while (!atomic_load(&t->stop)) {
		struct epoll_event evs[4];
		bool want_tap, gated, tap_ready = false, ev_ready = false;
		int n, timeout;

		freeze_point(t);
		if (atomic_load(&t->stop))
			break;
		sync_evtchn(t);
		gated = gate_holds(t);
		want_tap = !atomic_load(&d->txq[t->idx].stopped) &&
			   t->idx < atomic_load(&d->tap_queues) && !t->tx_blocked && !gated;
		if (want_tap != t->tap_armed) {
			struct epoll_event ev = { .events = want_tap ? EPOLLIN : 0, .data.u64 = TAG_TAP };
			epoll_ctl(t->epfd, EPOLL_CTL_MOD, d->tap.fds[t->idx], &ev);
			t->tap_armed = want_tap;
		}
		timeout = (t->rx_more || (want_tap && backlog_waiting(d, t->idx))) ? 0 : gated ? 10 : 1000;
		n = epoll_wait(t->epfd, evs, 4, timeout);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == TAG_KICK) {
				uint64_t v;
				(void)!read(t->kickfd, &v, sizeof(v));
			} else if (evs[i].data.u64 == TAG_TAP) {
				tap_ready = true;
			} else {
				ev_ready = true;
			}
		}
		if (ev_ready || t->rx_more)
			handle_events(t, ev_ready);
		if (tap_ready || (want_tap && backlog_waiting(d, t->idx)))
			xmit_burst(t);
	}
	unsync_evtchn(t);
	pthread_mutex_lock(&t->rt->fz_lock);
	t->rt->fz_threads--;
	pthread_cond_broadcast(&t->rt->fz_cond);
	pthread_mutex_unlock(&t->rt->fz_lock);
	return NULL;
}

void nfd_kick(void *env, struct nf_dev *d, unsigned txq)
{
	struct nfd_thread *t = d->txq[txq].thread;
	uint64_t one = 1;

	(void)env;
	if (t)
		(void)!write(t->kickfd, &one, sizeof(one));
}

static void thread_free(struct nfd_thread *t)
{
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->kickfd >= 0)
		close(t->kickfd);
	free(t);
}

static struct nfd_thread *thread_new(struct gr_rt *rt, struct nf_dev *d, unsigned i)
{
	struct nfd_thread *t = calloc(1, sizeof(*t));
	struct epoll_event kick = { .events = EPOLLIN, .data.u64 = TAG_KICK };
	struct epoll_event tap = { .events = 0, .data.u64 = TAG_TAP };
	int e;

	if (!t)
		return NULL;
	t->rt = rt;
	t->d = d;
	t->idx = i;
	t->ec_fd = -1;
	t->rl = (struct pv_ratelimit)PV_RATELIMIT_INIT(5000, 5);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->epfd < 0 || t->kickfd < 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->kickfd, &kick) < 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, d->tap.fds[i], &tap) < 0) {
		e = errno;
		thread_free(t);
		errno = e;
		return NULL;
	}
	return t;
}

int nfd_threads_start(struct gr_rt *rt, struct nf_dev *d)
{
	for (unsigned i = 0; i < d->num_txq; i++) {
		struct nfd_thread *t = thread_new(rt, d, i);
		int r;

		if (!t) {
			r = -errno;
			nfd_threads_stop(rt, d);
			return r;
		}
		pthread_mutex_lock(&rt->fz_lock);
		rt->fz_threads++;
		pthread_mutex_unlock(&rt->fz_lock);
		r = pthread_create(&t->th, NULL, dthread_main, t);
		if (r != 0) {
			pthread_mutex_lock(&rt->fz_lock);
			rt->fz_threads--;
			pthread_mutex_unlock(&rt->fz_lock);
			thread_free(t);
			nfd_threads_stop(rt, d);
			return -r;
		}
		d->txq[i].thread = t;
	}
	return 0;
}

void nfd_threads_stop(struct gr_rt *rt, struct nf_dev *d)
{
	(void)rt;
	for (unsigned i = 0; i < NF_MAX_QUEUES; i++) {
		struct nfd_thread *t = d->txq[i].thread;
		if (!t)
			continue;
		atomic_store(&t->stop, true);
		pthread_mutex_lock(&rt->fz_lock);
		pthread_cond_broadcast(&rt->fz_cond);
		pthread_mutex_unlock(&rt->fz_lock);
		nfd_kick(NULL, d, i);
		pthread_join(t->th, NULL);
		d->txq[i].thread = NULL;
		thread_free(t);
	}
}

/* ---- the freezer ---------------------------------------------------------------- */

static void kick_all(void *arg, struct nf_dev *d)
{
	(void)arg;
	for (unsigned i = 0; i < d->num_txq; i++)
		nfd_kick(NULL, d, i);
}

void gr_freeze(struct gr_rt *rt)
{
	atomic_store(&rt->freezing, true);
	gr_bus_foreach(rt, kick_all, NULL);
	pthread_mutex_lock(&rt->fz_lock);
	while (rt->fz_parked < rt->fz_threads)
		pthread_cond_wait(&rt->fz_cond, &rt->fz_lock);
	pthread_mutex_unlock(&rt->fz_lock);
}

void gr_thaw(struct gr_rt *rt)
{
	pthread_mutex_lock(&rt->fz_lock);
	atomic_store(&rt->freezing, false);
	pthread_cond_broadcast(&rt->fz_cond);
	pthread_mutex_unlock(&rt->fz_lock);
}
