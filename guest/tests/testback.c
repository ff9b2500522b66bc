#include "guest/tests/testback.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xenstore.h>

#include "common/util.h"
#include "common/xen.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/hv.h"
#include "toolstack/tsx.h"

#define RING_OFF 64u
#define TX_SLOT ((unsigned)sizeof(union netif_tx_sring_entry))
#define RX_SLOT ((unsigned)sizeof(union netif_rx_sring_entry))
#define RSIZE 256u
#define NBOUNCE 64u
#define MAX_INJ 64u
#define MAXQ 16u

struct tbq {
	grant_ref_t tx_ref, rx_ref;
	evtchn_port_t tx_port, rx_port;  /* our local ports */
	RING_IDX tx_cons, tx_prod;        /* requests consumed, responses produced */
	RING_IDX rx_cons, rx_prod;
};

struct inj {
	size_t len;
	uint8_t data[2048];
};

struct tb {
	struct tb_opts o;
	pthread_t th;
	int stopfd;
	atomic_bool stop;
	pthread_mutex_t lock;            /* st, inj, seen */
	pthread_cond_t cond;
	struct tb_stats st;
	uint8_t *seen;
	struct xs_handle *xs;
	struct pv_gnttab *gt;
	struct pv_evtchn *ec;
	char be[96], fe[96], fe_state[112];
	bool connected, dead;
	unsigned nq;
	struct tbq q[MAXQ];
	uint8_t *bounce;                 /* NBOUNCE pages of dom0 memory */
	int64_t bounce_frame;
	void *kept;                      /* a grant kept mapped (TB_KEEP_MAPPED) */
	void *kept_rx;                   /* the same for rx (TB_RX_KEEP_MAPPED) */
	struct inj inj[MAX_INJ];
	unsigned ninj;
	uint16_t last_id;                /* id of the previous tx packet */
};

/* ---- grant copies ---------------------------------------------------------- */

static int copies(struct tb *b, struct pv_gnttab_copy_seg *s, unsigned n)
{
	int r;

	if (!n)
		return 0;
	r = pv_gnttab_grant_copy(b->gt, n, s);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < n; i++)
		if (s[i].status != GNTST_okay)
			return -EIO;
	return 0;
}

static void seg_from(struct tb *b, struct pv_gnttab_copy_seg *s, grant_ref_t ref, uint16_t off, void *dst, uint16_t len)
{
	memset(s, 0, sizeof(*s));
	s->source.foreign.ref = ref;
	s->source.foreign.offset = off;
	s->source.foreign.domid = (uint16_t)b->o.domid;
	s->dest.virt = dst;
	s->len = len;
	s->flags = PV_GNTCOPY_source_gref;
}

static void seg_to(struct tb *b, struct pv_gnttab_copy_seg *s, grant_ref_t ref, uint16_t off, void *src, uint16_t len)
{
	memset(s, 0, sizeof(*s));
	s->dest.foreign.ref = ref;
	s->dest.foreign.offset = off;
	s->dest.foreign.domid = (uint16_t)b->o.domid;
	s->source.virt = src;
	s->len = len;
	s->flags = PV_GNTCOPY_dest_gref;
}

/* Bounce page i (in dom0's memory, as copies require). */
static uint8_t *bpage(struct tb *b, unsigned i)
{
	return b->bounce + (size_t)i * PV_PAGE_SIZE;
}

/* Read a ring's 16-byte header (req_prod, req_event, rsp_prod, rsp_event). */
static int ring_header(struct tb *b, grant_ref_t ref, RING_IDX hdr[4])
{
	struct pv_gnttab_copy_seg s;
	uint8_t *p = bpage(b, NBOUNCE - 1);

	seg_from(b, &s, ref, 0, p, 16);
	if (copies(b, &s, 1) < 0)
		return -EIO;
	memcpy(hdr, p, 16);
	return 0;
}

static int ring_put_u32(struct tb *b, grant_ref_t ref, uint16_t off, uint32_t v)
{
	struct pv_gnttab_copy_seg s;
	uint8_t *p = bpage(b, NBOUNCE - 1);

	memcpy(p, &v, 4);
	seg_to(b, &s, ref, off, p, 4);
	return copies(b, &s, 1);
}

/* Copy ring slots [from, to) of `slot` bytes into out[] (one or two segments). */
static int ring_slots(struct tb *b, grant_ref_t ref, unsigned slot, RING_IDX from, RING_IDX to, void *out)
{
	struct pv_gnttab_copy_seg s[2];
	uint8_t *p = bpage(b, NBOUNCE - 2);
	unsigned n = to - from, first = from & (RSIZE - 1), run = PV_MIN(n, RSIZE - first), ns = 0;

	if (n == 0)
		return 0;
	seg_from(b, &s[ns++], ref, (uint16_t)(RING_OFF + first * slot), p, (uint16_t)(run * slot));
	if (run < n)
		seg_from(b, &s[ns++], ref, RING_OFF, p + run * slot, (uint16_t)((n - run) * slot));
	if (copies(b, s, ns) < 0)
		return -EIO;
	memcpy(out, p, (size_t)n * slot);
	return 0;
}

/* ---- frames ----------------------------------------------------------------- */

size_t tb_build_seq_frame(uint8_t *buf, size_t len, const uint8_t src[6], uint32_t seq)
{
	if (len < 60)
		return 0;
	memset(buf, 0, 60);
	buf[0] = 0x02; buf[5] = 0x02;            /* 02:00:00:00:00:02 */
	memcpy(buf + 6, src, 6);
	buf[12] = TB_SEQ_ETHERTYPE >> 8;
	buf[13] = TB_SEQ_ETHERTYPE & 0xff;
	memcpy(buf + 14, "PVSQ", 4);
	buf[18] = (uint8_t)(seq >> 24);
	buf[19] = (uint8_t)(seq >> 16);
	buf[20] = (uint8_t)(seq >> 8);
	buf[21] = (uint8_t)seq;
	return 60;
}

static void record_frame(struct tb *b, const uint8_t *head, size_t hlen, uint32_t len)
{
	pthread_mutex_lock(&b->lock);
	b->st.tx_frames++;
	b->st.tx_bytes += len;
	if (hlen >= 22 && head[12] == (TB_SEQ_ETHERTYPE >> 8) && head[13] == (TB_SEQ_ETHERTYPE & 0xff) &&
	    !memcmp(head + 14, "PVSQ", 4)) {
		uint32_t seq = (uint32_t)head[18] << 24 | (uint32_t)head[19] << 16 | (uint32_t)head[20] << 8 | head[21];
		if (seq < TB_SEQ_MAX) {
			uint8_t bit = (uint8_t)(1u << (seq & 7));
			if (b->seen[seq >> 3] & bit)
				b->st.seq_dups++;
			b->seen[seq >> 3] |= bit;
			b->st.seq_frames++;
		}
	}
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

bool tb_seq_seen(struct tb *b, uint32_t seq)
{
	bool r;
	if (seq >= TB_SEQ_MAX)
		return false;
	pthread_mutex_lock(&b->lock);
	r = (b->seen[seq >> 3] >> (seq & 7)) & 1;
	pthread_mutex_unlock(&b->lock);
	return r;
}

uint64_t tb_seq_merge(struct tb *b, uint8_t *dst)
{
	uint64_t twice;

	pthread_mutex_lock(&b->lock);
	twice = b->st.seq_dups;
	for (size_t i = 0; i < TB_SEQ_MAX / 8; i++) {
		twice += (unsigned)__builtin_popcount(dst[i] & b->seen[i]);
		dst[i] |= b->seen[i];
	}
	pthread_mutex_unlock(&b->lock);
	return twice;
}

static bool fault_now(struct tb *b, enum tb_fault f)
{
	bool r;
	pthread_mutex_lock(&b->lock);
	r = b->o.fault == f && !b->st.fault_done && b->st.tx_frames >= b->o.fault_after;
	if (r)
		b->st.fault_done = true;
	pthread_mutex_unlock(&b->lock);
	return r;
}

/* ---- tx --------------------------------------------------------------------- */

struct txpkt {
	RING_IDX start;
	unsigned nslot, ndata;
	bool extra;
	uint16_t first_len;
	unsigned page;          /* first bounce page */
};

/* Find the complete packets in req[] (slots [cons, prod)). */
static unsigned tx_packets(const netif_tx_request_t *req, RING_IDX cons, RING_IDX prod, struct txpkt *pk,
			   unsigned maxpk, unsigned maxpages)
{
	unsigned n = 0, pages = 0;

	for (RING_IDX i = cons; i != prod && n < maxpk;) {
		const netif_tx_request_t *first = &req[i - cons];
		struct txpkt p = { .start = i, .nslot = 1, .ndata = 1 };
		bool more = first->flags & NETTXF_more_data;
		unsigned rest = 0;

		p.extra = first->flags & NETTXF_extra_info;
		p.nslot += p.extra;
		if (p.extra && i + 1 == prod)
			break;
		while (more && i + p.nslot != prod) {
			const netif_tx_request_t *r = &req[i + p.nslot - cons];
			more = r->flags & NETTXF_more_data;
			rest += r->size;
			p.nslot++;
			p.ndata++;
		}
		if (more || pages + p.ndata > maxpages)
			break;
		p.first_len = (uint16_t)(first->size > rest ? first->size - rest : 0);
		p.page = pages;
		pages += p.ndata;
		pk[n++] = p;
		i += p.nslot;
	}
	return n;
}

/* Answer every complete packet on queue q's tx ring. */
static int do_tx(struct tb *b, struct tbq *q)
{
	static netif_tx_request_t req[RSIZE];
	static struct pv_gnttab_copy_seg segs[RSIZE];
	static struct txpkt pk[RSIZE];
	RING_IDX hdr[4], prod, cons = q->tx_cons;
	unsigned npk, nseg = 0, nrsp = 0;
	int r = 0;

	if (ring_header(b, q->tx_ref, hdr) < 0)
		return -EIO;
	prod = hdr[0];
	if (prod - cons > RSIZE)
		return -EPROTO;
	if (ring_slots(b, q->tx_ref, TX_SLOT, cons, prod, req) < 0)
		return -EIO;
	npk = tx_packets(req, cons, prod, pk, RSIZE, NBOUNCE - 2);
	/* TB_TX_INACTIVE answers two packets with the first one's id: the
	 * second answer is then for an id no longer pending. Wait for two. */
	pthread_mutex_lock(&b->lock);
	if (b->o.fault == TB_TX_INACTIVE && !b->st.fault_done && b->st.tx_frames >= b->o.fault_after && npk < 2)
		npk = 0;
	pthread_mutex_unlock(&b->lock);
	for (unsigned k = 0; k < npk; k++) {
		unsigned page = pk[k].page;
		for (unsigned j = 0; j < pk[k].nslot; j++) {
			const netif_tx_request_t *t = &req[pk[k].start + j - cons];
			uint16_t len = j == 0 ? pk[k].first_len : t->size;
			if (pk[k].extra && j == 1)
				continue;
			if ((unsigned)t->offset + len > PV_PAGE_SIZE)
				return -EPROTO;
			seg_from(b, &segs[nseg++], t->gref, t->offset, bpage(b, page++), len);
		}
	}
	if (nseg && copies(b, segs, nseg) < 0)
		return -EIO;
	nseg = 0;
	for (unsigned k = 0; k < npk; k++) {
		const netif_tx_request_t *first = &req[pk[k].start - cons];
		uint16_t first_id = first->id;

		bool null_first = false, error_all;

		record_frame(b, bpage(b, pk[k].page), PV_MIN((unsigned)pk[k].first_len, 64u), first->size);
		/* Only a packet of several data slots consumes this fault. */
		error_all = pk[k].ndata > 1 && fault_now(b, TB_TX_ERROR_SLOTS);
		if (fault_now(b, TB_TX_NULL))
			null_first = true;
		else if (fault_now(b, TB_TX_BAD_ID))
			first_id = 0x1234;
		else if (k == 1 && fault_now(b, TB_TX_INACTIVE))
			first_id = b->last_id;
		else if (fault_now(b, TB_KEEP_MAPPED))
			b->kept = pv_gnttab_map_grant_ref(b->gt, b->o.domid, first->gref, PROT_READ);
		b->last_id = first->id;
		for (unsigned j = 0; j < pk[k].nslot; j++) {
			const netif_tx_request_t *t = &req[pk[k].start + j - cons];
			netif_tx_response_t rsp = { .id = j == 0 ? first_id : t->id, .status = NETIF_RSP_OKAY };
			RING_IDX at = q->tx_prod + nrsp;
			uint8_t *p = bpage(b, NBOUNCE - 2) + nrsp * 4;
			if ((pk[k].extra && j == 1) || (j == 0 && null_first))
				rsp.status = NETIF_RSP_NULL;
			else if (error_all)
				rsp.status = NETIF_RSP_ERROR;
			memcpy(p, &rsp, 4);
			seg_to(b, &segs[nseg++], q->tx_ref, (uint16_t)(RING_OFF + (at & (RSIZE - 1)) * TX_SLOT), p, 4);
			nrsp++;
		}
		q->tx_cons = pk[k].start + pk[k].nslot;
	}
	if (nseg && copies(b, segs, nseg) < 0)
		return -EIO;
	q->tx_prod += nrsp;
	if (nrsp) {
		if (fault_now(b, TB_TX_PROD_JUMP))
			r = ring_put_u32(b, q->tx_ref, 8, q->tx_prod + 1000);
		else
			r = ring_put_u32(b, q->tx_ref, 8, q->tx_prod);
		pv_evtchn_notify(b->ec, q->tx_port);
	}
	/* RING_FINAL_CHECK_FOR_REQUESTS: a kick for the next request, then
	 * look again (a request published meanwhile sent no kick). */
	if (r == 0)
		r = ring_put_u32(b, q->tx_ref, 4, q->tx_cons + 1);
	if (r == 0 && ring_header(b, q->tx_ref, hdr) == 0 && hdr[0] != q->tx_cons)
		return (int)npk + 1;
	return r < 0 ? r : (int)npk;
}

/* ---- rx --------------------------------------------------------------------- */

static int rx_respond(struct tb *b, struct tbq *q, const netif_rx_response_t *rsp, unsigned n, RING_IDX prod)
{
	struct pv_gnttab_copy_seg segs[32];
	uint8_t *p = bpage(b, NBOUNCE - 2);

	for (unsigned k = 0; k < n; k++) {
		memcpy(p + k * RX_SLOT, &rsp[k], RX_SLOT);
		seg_to(b, &segs[k], q->rx_ref, (uint16_t)(RING_OFF + ((q->rx_prod + k) & (RSIZE - 1)) * RX_SLOT),
		       p + k * RX_SLOT, RX_SLOT);
	}
	if (copies(b, segs, n) < 0)
		return -EIO;
	q->rx_prod += n;
	q->rx_cons += n;
	if (ring_put_u32(b, q->rx_ref, 8, prod) < 0)
		return -EIO;
	pv_evtchn_notify(b->ec, q->rx_port);
	return 0;
}

/* The rx faults: protocol violations in the responses themselves. */
static int rx_fault(struct tb *b, struct tbq *q, const netif_rx_request_t *req, unsigned avail)
{
	netif_rx_response_t rsp[32];
	unsigned n = 1;

	memset(rsp, 0, sizeof(rsp));
	rsp[0].id = req[0].id;
	rsp[0].status = 60;
	if (fault_now(b, TB_RX_OVERSIZE)) {
		rsp[0].offset = 4000;
		rsp[0].status = 200;
	} else if (fault_now(b, TB_RX_BAD_ID)) {
		rsp[0].id = (uint16_t)((req[0].id + 5) & (RSIZE - 1));
	} else if (avail >= 20 && fault_now(b, TB_RX_TOO_MANY)) {
		n = 20;
		for (unsigned k = 0; k < n; k++) {
			rsp[k].id = req[k].id;
			rsp[k].status = 1000;
			rsp[k].flags = k + 1 < n ? NETRXF_more_data : 0;
		}
	} else if (avail >= 2 && fault_now(b, TB_RX_KEEP_MAPPED)) {
		/* The first page stays mapped: the guest cannot end its grant,
		 * and never gets to the second slot's. */
		b->kept_rx = pv_gnttab_map_grant_ref(b->gt, b->o.domid, req[0].gref, PROT_READ | PROT_WRITE);
		if (!b->kept_rx)
			return -EIO;
		n = 2;
		rsp[0].flags = NETRXF_more_data;
		rsp[1].id = req[1].id;
		rsp[1].status = 60;
	} else if (fault_now(b, TB_RX_PROD_BACKWARDS)) {
		if (ring_put_u32(b, q->rx_ref, 8, q->rx_prod - 100) < 0)
			return -EIO;
		pv_evtchn_notify(b->ec, q->rx_port);
		return 1;
	} else {
		return 0;
	}
	return rx_respond(b, q, rsp, n, q->rx_prod + n) == 0 ? 1 : -EIO;
}

/* Deliver queued frames (and rx faults) on queue 0. */
static int do_rx(struct tb *b, struct tbq *q)
{
	netif_rx_request_t req[RSIZE];
	struct pv_gnttab_copy_seg seg;
	RING_IDX hdr[4];
	unsigned avail;
	int r;

	if (ring_header(b, q->rx_ref, hdr) < 0)
		return -EIO;
	avail = hdr[0] - q->rx_cons;
	if (avail > RSIZE)
		return -EPROTO;
	if (!avail || ring_slots(b, q->rx_ref, RX_SLOT, q->rx_cons, hdr[0], req) < 0)
		return 0;
	r = rx_fault(b, q, req, avail);
	if (r != 0)
		return r;
	for (unsigned k = 0; k < avail; k++) {
		struct inj one;
		netif_rx_response_t rsp = { .id = req[k].id, .offset = 0, .flags = NETRXF_data_validated };

		pthread_mutex_lock(&b->lock);
		if (!b->ninj) {
			pthread_mutex_unlock(&b->lock);
			break;
		}
		one = b->inj[0];
		memmove(b->inj, b->inj + 1, sizeof(b->inj[0]) * --b->ninj);
		pthread_mutex_unlock(&b->lock);
		memcpy(bpage(b, 0), one.data, one.len);
		seg_to(b, &seg, req[k].gref, 0, bpage(b, 0), (uint16_t)one.len);
		if (copies(b, &seg, 1) < 0)
			return -EIO;
		rsp.status = (int16_t)one.len;
		if (rx_respond(b, q, &rsp, 1, q->rx_prod + 1) < 0)
			return -EIO;
		pthread_mutex_lock(&b->lock);
		b->st.rx_frames++;
		pthread_mutex_unlock(&b->lock);
	}
	return 0;
}

/* ---- xenbus ------------------------------------------------------------------- */

static void set_state(struct tb *b, int state)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/state", b->be);
	tsx_write(b->xs, XBT_NULL, path, "%d", state);
	pthread_mutex_lock(&b->lock);
	b->st.state = state;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* netback_probe: the feature keys, then InitWait. */
static void probe(struct tb *b)
{
	static const char *const one[] = { "feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6",
					   "feature-ipv6-csum-offload", "feature-xdp-headroom",
					   "feature-multicast-control", "feature-dynamic-multicast-control",
					   "feature-ctrl-ring" };
	char path[160];

	for (size_t i = 0; i < PV_ARRAY_SIZE(one); i++) {
		snprintf(path, sizeof(path), "%s/%s", b->be, one[i]);
		tsx_write(b->xs, XBT_NULL, path, "1");
	}
	snprintf(path, sizeof(path), "%s/feature-rx-copy", b->be);
	tsx_write(b->xs, XBT_NULL, path, b->o.fault == TB_NO_RX_COPY ? "0" : "1");
	snprintf(path, sizeof(path), "%s/feature-rx-flip", b->be);
	tsx_write(b->xs, XBT_NULL, path, "0");
	snprintf(path, sizeof(path), "%s/feature-split-event-channels", b->be);
	tsx_write(b->xs, XBT_NULL, path, b->o.split ? "1" : "0");
	if (b->o.max_queues) {
		snprintf(path, sizeof(path), "%s/multi-queue-max-queues", b->be);
		tsx_write(b->xs, XBT_NULL, path, "%u", b->o.max_queues);
	}
	set_state(b, XenbusStateInitWait);
}

static int read_fe_uint(struct tb *b, const char *prefix, const char *key, unsigned *v)
{
	char path[192];
	snprintf(path, sizeof(path), "%s/%s%s", b->fe, prefix, key);
	return tsx_read_uint(b->xs, XBT_NULL, path, v);
}

static void disconnect(struct tb *b)
{
	for (unsigned i = 0; i < b->nq; i++) {
		pv_evtchn_unbind(b->ec, b->q[i].tx_port);
		if (b->q[i].rx_port != b->q[i].tx_port)
			pv_evtchn_unbind(b->ec, b->q[i].rx_port);
	}
	b->nq = 0;
	b->connected = false;
	pthread_mutex_lock(&b->lock);
	b->st.queues = 0;
	pthread_mutex_unlock(&b->lock);
}

/* connect(): rings and channels of every queue, then Connected. */
static int connect_fe(struct tb *b)
{
	unsigned nq = 1;

	read_fe_uint(b, "", "multi-queue-num-queues", &nq);
	if (nq == 0 || nq > MAXQ || (b->o.max_queues && nq > b->o.max_queues))
		return -EINVAL;
	for (unsigned i = 0; i < nq; i++) {
		struct tbq *q = &b->q[i];
		char prefix[24] = "";
		unsigned tx, rx, e1, e2;
		int p1, p2;

		if (nq > 1)
			snprintf(prefix, sizeof(prefix), "queue-%u/", i);
		if (read_fe_uint(b, prefix, "tx-ring-ref", &tx) < 0 || read_fe_uint(b, prefix, "rx-ring-ref", &rx) < 0)
			goto fail;
		if (read_fe_uint(b, prefix, "event-channel-tx", &e1) == 0 &&
		    read_fe_uint(b, prefix, "event-channel-rx", &e2) == 0) {
			p1 = pv_evtchn_bind_interdomain(b->ec, b->o.domid, e1);
			p2 = p1 > 0 ? pv_evtchn_bind_interdomain(b->ec, b->o.domid, e2) : -EINVAL;
		} else if (read_fe_uint(b, prefix, "event-channel", &e1) == 0) {
			p1 = p2 = pv_evtchn_bind_interdomain(b->ec, b->o.domid, e1);
		} else {
			goto fail;
		}
		if (p1 <= 0 || p2 <= 0)
			goto fail;
		memset(q, 0, sizeof(*q));
		q->tx_ref = tx;
		q->rx_ref = rx;
		q->tx_port = (evtchn_port_t)p1;
		q->rx_port = (evtchn_port_t)p2;
		b->nq = i + 1;
	}
	b->connected = true;
	pthread_mutex_lock(&b->lock);
	b->st.queues = nq;
	b->st.connects++;
	pthread_mutex_unlock(&b->lock);
	if (b->o.fault != TB_NEVER_CONNECT)
		set_state(b, XenbusStateConnected);
	if (b->o.fault == TB_VANISH) {
		usleep(200000);
		xs_rm(b->xs, XBT_NULL, b->be);
		b->dead = true;
	} else if (b->o.fault == TB_CLOSE) {
		usleep(200000);
		set_state(b, XenbusStateClosing);
	} else if (b->o.fault == TB_STATE_9) {
		usleep(200000);
		set_state(b, 9);
		usleep(300000);
		set_state(b, XenbusStateClosing);
	}
	return 0;
fail:
	disconnect(b);
	return -EINVAL;
}

static void frontend_changed(struct tb *b)
{
	char *v = tsx_read(b->xs, XBT_NULL, b->fe_state);
	unsigned s = XenbusStateUnknown;

	if (v)
		pv_parse_uint(v, 8, &s);
	free(v);
	if (b->dead)
		return;
	switch (s) {
	case XenbusStateConnected:
		if (!b->connected && connect_fe(b) < 0)
			fprintf(stderr, "testback: cannot connect to domain %u's vif %u\n", b->o.domid, b->o.devid);
		break;
	case XenbusStateInitialising:
		if (b->connected) {   /* a reconnecting frontend */
			disconnect(b);
			set_state(b, XenbusStateInitWait);
		}
		break;
	case XenbusStateClosing:
		disconnect(b);
		set_state(b, XenbusStateClosing);
		break;
	case XenbusStateClosed:
	case XenbusStateUnknown:
		if (b->connected)
			disconnect(b);
		if (s == XenbusStateClosed)
			set_state(b, XenbusStateClosed);
		break;
	default:
		break;
	}
}

/* ---- the thread ----------------------------------------------------------------- */

static void service(struct tb *b)
{
	if (!b->connected)
		return;
	for (unsigned i = 0; i < b->nq; i++) {
		int r, rounds = 0;
		while ((r = do_tx(b, &b->q[i])) > 0 && ++rounds < 64)
			;
		if (r >= 0 && i == 0)
			r = do_rx(b, &b->q[i]);
		if (r == -EIO) {      /* the guest went away */
			disconnect(b);
			return;
		}
	}
}

static void *tb_main(void *arg)
{
	struct tb *b = arg;
	uint64_t storm_until = 0;

	while (!atomic_load(&b->stop)) {
		struct pollfd p[3] = {
			{ .fd = xs_fileno(b->xs), .events = POLLIN },
			{ .fd = pv_evtchn_fd(b->ec), .events = POLLIN },
			{ .fd = b->stopfd, .events = POLLIN },
		};
		char **ev;
		int port;

		if (b->connected && (fault_now(b, TB_EVENT_STORM) || fault_now(b, TB_RAW_WAKES)))
			storm_until = pv_now_ns() + 3000000000ull;
		if (storm_until && b->connected) {
			/* Notifications without end, and nothing on the rings. */
			for (int k = 0; k < 1000; k++)
				if (b->o.fault == TB_RAW_WAKES)
					pv_evtchn_test_write(b->ec, b->q[0].tx_port);
				else
					pv_evtchn_notify(b->ec, b->q[0].tx_port);
			if (pv_now_ns() > storm_until)
				storm_until = 0;
		}
		poll(p, 3, storm_until ? 0 : 20);
		while ((ev = xs_check_watch(b->xs))) {
			free(ev);
			frontend_changed(b);
		}
		while ((port = pv_evtchn_pending(b->ec)) > 0)
			pv_evtchn_unmask(b->ec, (evtchn_port_t)port);
		if (p[2].revents & POLLIN) {
			uint64_t v;
			(void)!read(b->stopfd, &v, sizeof(v));
		}
		if (!storm_until)
			service(b);
	}
	return NULL;
}

struct tb *tb_start(const struct tb_opts *o)
{
	struct tb *b = calloc(1, sizeof(*b));
	struct mts_host *h = o->host;

	if (!b)
		return NULL;
	b->o = *o;
	b->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->seen = calloc(TB_SEQ_MAX / 8, 1);
	b->xs = tsx_open(h->xs_sock);
	b->gt = pv_gnttab_open(h->hv_sock);
	b->ec = pv_evtchn_open(h->hv_sock);
	b->bounce_frame = pv_page_alloc(h->pa, NBOUNCE);
	if (!b->seen || !b->xs || !b->gt || !b->ec || b->bounce_frame < 0 || b->stopfd < 0) {
		fprintf(stderr, "testback: cannot start for domain %u\n", o->domid);
		tb_stop(b);
		return NULL;
	}
	b->bounce = pv_page_addr(h->pa, (uint32_t)b->bounce_frame);
	pv_gnttab_set_own_memory(b->gt, h->mem, h->mem_pages);
	snprintf(b->be, sizeof(b->be), "/local/domain/0/backend/vif/%u/%u", o->domid, o->devid);
	snprintf(b->fe, sizeof(b->fe), "/local/domain/%u/device/vif/%u", o->domid, o->devid);
	snprintf(b->fe_state, sizeof(b->fe_state), "%s/state", b->fe);
	probe(b);
	if (!xs_watch(b->xs, b->fe_state, "tb-fe") || pthread_create(&b->th, NULL, tb_main, b) != 0) {
		tb_stop(b);
		return NULL;
	}
	return b;
}

void tb_stop(struct tb *b)
{
	uint64_t one = 1;

	if (!b)
		return;
	if (b->th) {
		atomic_store(&b->stop, true);
		(void)!write(b->stopfd, &one, sizeof(one));
		pthread_join(b->th, NULL);
	}
	if (b->ec && b->connected)
		disconnect(b);
	if (b->kept)
		pv_gnttab_unmap(b->gt, b->kept, 1);
	if (b->kept_rx)
		pv_gnttab_unmap(b->gt, b->kept_rx, 1);
	if (b->bounce_frame >= 0 && b->bounce)
		pv_page_free(b->o.host->pa, (uint32_t)b->bounce_frame, NBOUNCE);
	if (b->ec)
		pv_evtchn_close(b->ec);
	if (b->gt)
		pv_gnttab_close(b->gt);
	if (b->xs)
		xs_close(b->xs);
	if (b->stopfd >= 0)
		close(b->stopfd);
	free(b->seen);
	free(b);
}

void tb_get_stats(struct tb *b, struct tb_stats *s)
{
	pthread_mutex_lock(&b->lock);
	*s = b->st;
	pthread_mutex_unlock(&b->lock);
}

int tb_wait_state(struct tb *b, int state, int timeout_ms)
{
	uint64_t deadline = pv_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int r = 0;

	pthread_mutex_lock(&b->lock);
	while (b->st.state != state) {
		struct timespec ts;
		uint64_t now = pv_realtime_ns() + (deadline - pv_now_ns());
		if (pv_now_ns() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		ts.tv_sec = (time_t)(now / 1000000000u);
		ts.tv_nsec = (long)(now % 1000000000u);
		pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	}
	pthread_mutex_unlock(&b->lock);
	return r;
}

int tb_inject(struct tb *b, const void *frame, size_t len)
{
	uint64_t one = 1;

	if (len > sizeof(b->inj[0].data) || len == 0)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	if (b->ninj == MAX_INJ) {
		pthread_mutex_unlock(&b->lock);
		return -ENOSPC;
	}
	memcpy(b->inj[b->ninj].data, frame, len);
	b->inj[b->ninj].len = len;
	b->ninj++;
	pthread_mutex_unlock(&b->lock);
	(void)!write(b->stopfd, &one, sizeof(one));
	return 0;
}
