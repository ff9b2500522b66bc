#include "guest/nf_ring.h"

#include <string.h>

/* One read of a shared index: the backend may change it at any time. */
static RING_IDX read_idx(const RING_IDX *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* ---- tx bookkeeping ---------------------------------------------------- */

void nf_txbook_init(struct nf_txbook *b)
{
	memset(b, 0, sizeof(*b));
	for (unsigned i = 0; i < NF_TX_RING_SIZE; i++) {
		b->link[i] = (uint16_t)(i + 1 < NF_TX_RING_SIZE ? i + 1 : NF_TX_ID_NONE);
		b->slot_id[i] = NF_TX_ID_NONE;
	}
	b->head = 0;
	b->nfree = NF_TX_RING_SIZE;
}

uint16_t nf_txids_get(struct nf_txbook *b)
{
	uint16_t id = b->head;

	if (id == NF_TX_ID_NONE)
		return id;
	b->head = b->link[id];
	b->link[id] = NF_TX_ID_NONE;
	b->nfree--;
	return id;
}

void nf_txids_put(struct nf_txbook *b, uint16_t id)
{
	b->link[id] = b->head;
	b->head = id;
	b->nfree++;
}

unsigned nf_tx_free_slots(const netif_tx_front_ring_t *tx)
{
	return NF_TX_RING_SIZE - (tx->req_prod_pvt - tx->rsp_cons);
}

unsigned nf_tx_build(netif_tx_front_ring_t *tx, struct nf_txbook *b, const uint16_t *idv,
		     const grant_ref_t *refs, unsigned npages, uint32_t len,
		     const struct nif_offload *o)
{
	RING_IDX prod = tx->req_prod_pvt;
	uint32_t left = len;
	unsigned used = 0;

	for (unsigned i = 0; i < npages; i++) {
		netif_tx_request_t *req = RING_GET_REQUEST(tx, prod);
		struct nf_txinfo *inf = &b->info[idv[i]];
		uint32_t chunk = left < PV_PAGE_SIZE ? left : PV_PAGE_SIZE;
		uint16_t flags = 0;

		if (i == 0)
			flags = nif_offload_txflags(o);
		if (i + 1 < npages)
			flags |= NETTXF_more_data;
		req->id = idv[i];
		req->gref = refs[i];
		req->offset = 0;
		req->flags = flags;
		req->size = (uint16_t)(i == 0 ? len : chunk);
		memset(inf, 0, sizeof(*inf));
		inf->slot = prod;
		inf->next = i + 1 < npages ? idv[i + 1] : NF_TX_ID_NONE;
		inf->len = (uint16_t)chunk;
		if (i == 0) {
			inf->first = true;
			inf->pkt_len = len;
			inf->o = *o;
		}
		b->slot_id[prod & (NF_TX_RING_SIZE - 1)] = idv[i];
		b->pending[idv[i]] = 1;
		prod++;
		left -= chunk;
		used++;
		if (i == 0 && o->gso_type != XEN_NETIF_GSO_TYPE_NONE) {
			struct netif_extra_info *ex = (struct netif_extra_info *)RING_GET_REQUEST(tx, prod);
			nif_gso_extra_fill(o, ex);
			b->slot_id[prod & (NF_TX_RING_SIZE - 1)] = NF_TX_ID_NONE;
			b->nulls_due++;
			prod++;
			used++;
		}
	}
	tx->req_prod_pvt = prod;
	return used;
}

unsigned nf_tx_pending_walk(const netif_tx_front_ring_t *tx, const struct nf_txbook *b,
			    nf_tx_pending_fn fn, void *arg)
{
	unsigned skipped = 0;

	for (RING_IDX idx = tx->req_prod_pvt - NF_TX_RING_SIZE; idx != tx->req_prod_pvt; idx++) {
		uint16_t ids[NF_MAX_PKT_PAGES];
		uint16_t id = b->slot_id[idx & (NF_TX_RING_SIZE - 1)];
		unsigned n = 0;
		bool whole = true;

		if (id == NF_TX_ID_NONE || !b->info[id].first || b->info[id].slot != idx)
			continue;
		/* Each member must still be the one published right after the
		 * previous (an id reused by a newer packet no longer is). */
		for (uint16_t c = id; c != NF_TX_ID_NONE && n < NF_MAX_PKT_PAGES; c = b->info[c].next) {
			RING_IDX want = idx + n + (n > 0 && b->info[id].o.gso_type != XEN_NETIF_GSO_TYPE_NONE);
			whole &= b->pending[c] != 0 && b->info[c].slot == want;
			ids[n++] = c;
		}
		if (!b->pending[id])
			continue;
		if (!whole) {
			skipped++;
			continue;
		}
		fn(arg, ids, n, &b->info[id]);
	}
	return skipped;
}

int nf_tx_gc(netif_tx_front_ring_t *tx, struct nf_txbook *ids, nf_tx_done_fn done, void *arg,
	     const char **reason)
{
	int completed = 0;
	int more;

	do {
		RING_IDX prod = read_idx(&tx->sring->rsp_prod);
		RING_IDX cons = tx->rsp_cons;

		if (RING_RESPONSE_PROD_OVERFLOW(tx, prod)) {
			*reason = "illegal number of tx responses";
			return NF_RING_BROKEN;
		}
		if (prod - cons > tx->req_prod_pvt - cons) {
			*reason = "tx responses for requests never made";
			return NF_RING_BROKEN;
		}
		for (; cons != prod; cons++) {
			netif_tx_response_t rsp;

			RING_COPY_RESPONSE(tx, cons, &rsp);
			if (rsp.status == NETIF_RSP_NULL) {
				/* Only an extra-info slot is answered so; Linux
				 * skips any, which lets a backend strand ids
				 * (and their frames) for ever, unseen. */
				if (!ids->nulls_due) {
					*reason = "tx NULL response for a data request";
					tx->rsp_cons = cons;
					return NF_RING_BROKEN;
				}
				ids->nulls_due--;
				continue;
			}
			if (rsp.id >= NF_TX_RING_SIZE) {
				*reason = "tx response id out of range";
				return NF_RING_BROKEN;
			}
			if (!ids->pending[rsp.id]) {
				*reason = "tx response for an inactive request";
				return NF_RING_BROKEN;
			}
			ids->pending[rsp.id] = 0;
			if (done && done(arg, rsp.id, rsp.status) < 0) {
				*reason = "tx grant still in use by the backend";
				tx->rsp_cons = cons + 1;
				return NF_RING_BROKEN;
			}
			nf_txids_put(ids, rsp.id);
			completed++;
		}
		tx->rsp_cons = prod;
		RING_FINAL_CHECK_FOR_RESPONSES(tx, more);
	} while (more);
	return completed;
}

/* ---- rx ----------------------------------------------------------------- */

int nf_rx_check_prod(const netif_rx_front_ring_t *rx, RING_IDX prod, const char **reason)
{
	if (RING_RESPONSE_PROD_OVERFLOW(rx, prod)) {
		*reason = "illegal number of rx responses";
		return NF_RING_BROKEN;
	}
	if (prod - rx->rsp_cons > rx->req_prod_pvt - rx->rsp_cons) {
		*reason = "rx responses for requests never posted";
		return NF_RING_BROKEN;
	}
	return 0;
}

/* xennet_get_extras: the extra slots after the first response. */
static void rx_extras(netif_rx_front_ring_t *rx, RING_IDX prod, RING_IDX *i, struct nf_rx_pkt *pkt)
{
	struct netif_extra_info ex;
	netif_rx_response_t raw;

	_Static_assert(sizeof(ex) == sizeof(raw), "an extra fills one rx slot");
	do {
		if (*i + 1 == prod) {
			pkt->err = NF_RX_ERR_MISSING_EXTRA;
			return;
		}
		(*i)++;
		pkt->nslots++;
		RING_COPY_RESPONSE(rx, *i, &raw);
		memcpy(&ex, &raw, sizeof(ex));
		if (ex.type == XEN_NETIF_EXTRA_TYPE_NONE || ex.type >= XEN_NETIF_EXTRA_TYPE_MAX) {
			if (!pkt->err)
				pkt->err = NF_RX_ERR_BAD_EXTRA;
		} else if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
			pkt->gso = ex;
			pkt->has_gso = true;
		}
	} while (ex.flags & XEN_NETIF_EXTRA_FLAG_MORE);
}

int nf_rx_next(netif_rx_front_ring_t *rx, RING_IDX prod, struct nf_rx_pkt *pkt, const char **reason)
{
	RING_IDX i = rx->rsp_cons;
	netif_rx_response_t rsp;
	unsigned max;

	memset(pkt, 0, sizeof(*pkt));
	pkt->first = i;
	RING_COPY_RESPONSE(rx, i, &rsp);
	pkt->nslots = 1;
	pkt->flags = rsp.flags;
	if (rsp.flags & NETRXF_extra_info) {
		rx_extras(rx, prod, &i, pkt);
		if (pkt->err == NF_RX_ERR_MISSING_EXTRA)
			goto out;
	}
	max = XEN_NETIF_NR_SLOTS_MIN + (rsp.status <= NF_RX_COPY_THRESHOLD);
	for (RING_IDX at = pkt->first;;) {
		if (rsp.id != (at & (NF_RX_RING_SIZE - 1))) {
			*reason = "rx response id does not match its slot";
			return NF_RING_BROKEN;
		}
		if (rsp.status < 0) {
			if (!pkt->err)
				pkt->err = NF_RX_ERR_STATUS;
		} else if ((uint32_t)rsp.offset + (uint32_t)rsp.status > PV_PAGE_SIZE) {
			*reason = "rx data beyond the end of its page";
			return NF_RING_BROKEN;
		}
		if (pkt->ndata == max) {
			*reason = "rx packet with too many slots";
			return NF_RING_BROKEN;
		}
		pkt->data[pkt->ndata].idx = at;
		pkt->data[pkt->ndata].offset = rsp.offset;
		pkt->data[pkt->ndata].len = rsp.status > 0 ? (uint16_t)rsp.status : 0;
		pkt->len += pkt->data[pkt->ndata].len;
		pkt->ndata++;
		if (!(rsp.flags & NETRXF_more_data))
			break;
		if (i + 1 == prod) {
			if (!pkt->err)
				pkt->err = NF_RX_ERR_NEED_SLOTS;
			break;
		}
		at = ++i;
		pkt->nslots++;
		RING_COPY_RESPONSE(rx, at, &rsp);
	}
	if (!pkt->err && pkt->has_gso) {
		struct nif_offload o;
		if (nif_offload_from_rxflags(pkt->flags, &pkt->gso, &o) < 0)
			pkt->err = NF_RX_ERR_BAD_GSO;
	}
	if (!pkt->err && pkt->len == 0)
		pkt->err = NF_RX_ERR_EMPTY;
out:
	rx->rsp_cons = i + 1;
	return 1;
}
