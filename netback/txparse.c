/*
 * Transmit request chain validation. The order of the checks is Linux's
 * (xenvif_tx_build_gops): extras first (fatal if missing or of an unknown
 * type), multicast control requests answered on their own, then the
 * more_data chain (xenvif_count_requests: fatal if it runs past the producer
 * index or reaches fatal_slots, dropped past the legacy 18, dropped if a
 * fragment is larger than what remains of the announced size, fatal if a slot
 * crosses its page), then the first slot (dropped below ETH_HLEN, fatal if it
 * crosses its page), then the GSO extra (fatal for size 0 or an unknown type).
 */
#include "netback/txparse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void nb_tx_req_to_extra(const struct netif_tx_request *req, struct netif_extra_info *ex)
{
	_Static_assert(sizeof(struct netif_extra_info) <= sizeof(struct netif_tx_request),
		       "an extra-info slot fits in a tx request slot");
	memcpy(ex, req, sizeof(*ex));
}

__attribute__((format(printf, 3, 4)))
static enum nb_tx_verdict verdict(struct nb_tx_pkt *pkt, enum nb_tx_verdict v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pkt->msg, sizeof(pkt->msg), fmt, ap);
	va_end(ap);
	pkt->verdict = v;
	if (v == NB_TX_FATAL)
		pkt->nslots = 0;
	return v;
}

/* xenvif_get_extras: the extras follow the first request. */
static enum nb_tx_verdict get_extras(const struct netif_tx_request *reqs, unsigned avail,
				     struct nb_tx_pkt *pkt, struct netif_extra_info *extras)
{
	struct netif_extra_info ex;
	unsigned pos = 1;

	do {
		if (pos >= avail)
			return verdict(pkt, NB_TX_FATAL, "Missing extra info");
		nb_tx_req_to_extra(&reqs[pos++], &ex);
		pkt->nextras++;
		if (ex.type == XEN_NETIF_EXTRA_TYPE_NONE || ex.type >= XEN_NETIF_EXTRA_TYPE_MAX)
			return verdict(pkt, NB_TX_FATAL, "Invalid extra type: %d", ex.type);
		extras[ex.type - 1] = ex;
	} while (ex.flags & XEN_NETIF_EXTRA_FLAG_MORE);
	return NB_TX_OK;
}

/* xenvif_count_requests: the frags after the first request and its extras.
 * `first_size` is decremented by every frag, as Linux does with first->size. */
static enum nb_tx_verdict count_requests(const struct netif_tx_request *reqs, unsigned avail,
					 unsigned fatal_slots, struct nb_tx_pkt *pkt,
					 uint16_t *first_size)
{
	unsigned base = 1 + pkt->nextras, work_to_do = avail - base, slots = 0;
	const char *drop = NULL;
	char dropmsg[sizeof(pkt->msg)];
	bool more;

	if (!(reqs[0].flags & NETTXF_more_data))
		return NB_TX_OK;
	do {
		const struct netif_tx_request *txp;

		if (slots >= work_to_do)
			return verdict(pkt, NB_TX_FATAL, "Asked for %u slots but exceeds this limit",
				       work_to_do);
		if (slots >= fatal_slots)
			return verdict(pkt, NB_TX_FATAL, "Malicious frontend using %u slots, threshold %u",
				       slots, fatal_slots);
		if (!drop && slots >= NB_LEGACY_SLOTS_MAX) {
			snprintf(dropmsg, sizeof(dropmsg), "Too many slots (%u) exceeding limit (%u), dropping packet",
				 slots, (unsigned)NB_LEGACY_SLOTS_MAX);
			drop = dropmsg;
		}
		txp = &reqs[base + slots];
		if (!drop && txp->size > *first_size) {
			snprintf(dropmsg, sizeof(dropmsg), "Invalid tx request, slot size %u > remaining size %u",
				 txp->size, *first_size);
			drop = dropmsg;
		}
		*first_size = (uint16_t)(*first_size - txp->size);
		slots++;
		if ((unsigned)txp->offset + txp->size > PV_PAGE_SIZE)
			return verdict(pkt, NB_TX_FATAL, "Cross page boundary, txp->offset: %u, size: %u",
				       txp->offset, txp->size);
		more = txp->flags & NETTXF_more_data;
		if (!drop)
			pkt->data[slots] = *txp;
	} while (more);
	pkt->nfrags = slots;
	pkt->nslots = base + slots;
	if (drop)
		return verdict(pkt, NB_TX_DROP, "%s", drop);
	return NB_TX_OK;
}

enum nb_tx_verdict nb_tx_parse(const struct netif_tx_request *reqs, unsigned avail,
			       unsigned fatal_slots, struct nb_tx_pkt *pkt)
{
	struct netif_extra_info extras[XEN_NETIF_EXTRA_TYPE_MAX - 1];
	uint16_t first_size;
	enum nb_tx_verdict v;

	memset(pkt, 0, sizeof(*pkt));
	memset(extras, 0, sizeof(extras));
	if (avail == 0)
		return verdict(pkt, NB_TX_FATAL, "no request to parse");
	pkt->total = reqs[0].size;
	pkt->nslots = 1;
	if (reqs[0].flags & NETTXF_extra_info) {
		v = get_extras(reqs, avail, pkt, extras);
		if (v != NB_TX_OK)
			return v;
		pkt->nslots = 1 + pkt->nextras;
	}
	if (extras[XEN_NETIF_EXTRA_TYPE_MCAST_ADD - 1].type ||
	    extras[XEN_NETIF_EXTRA_TYPE_MCAST_DEL - 1].type) {
		pkt->mcast_add = extras[XEN_NETIF_EXTRA_TYPE_MCAST_ADD - 1].type != 0;
		memcpy(pkt->mcast_addr, pkt->mcast_add ? extras[XEN_NETIF_EXTRA_TYPE_MCAST_ADD - 1].u.mcast.addr
						       : extras[XEN_NETIF_EXTRA_TYPE_MCAST_DEL - 1].u.mcast.addr,
		       sizeof(pkt->mcast_addr));
		pkt->verdict = NB_TX_MCAST;
		return NB_TX_MCAST;
	}

	first_size = reqs[0].size;
	v = count_requests(reqs, avail, fatal_slots, pkt, &first_size);
	if (v != NB_TX_OK)
		return v;
	pkt->nslots = 1 + pkt->nextras + pkt->nfrags;
	if (first_size < NB_ETH_HLEN)
		return verdict(pkt, NB_TX_DROP, "Bad packet size: %u", first_size);
	if ((unsigned)reqs[0].offset + first_size > PV_PAGE_SIZE)
		return verdict(pkt, NB_TX_FATAL, "txreq.offset: %u, size: %u, end: %u",
			       reqs[0].offset, first_size, (unsigned)reqs[0].offset + first_size);
	if (extras[XEN_NETIF_EXTRA_TYPE_GSO - 1].type) {
		const struct netif_extra_info *gso = &extras[XEN_NETIF_EXTRA_TYPE_GSO - 1];

		if (gso->u.gso.size == 0)
			return verdict(pkt, NB_TX_FATAL, "GSO size must not be zero.");
		if (gso->u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 && gso->u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6)
			return verdict(pkt, NB_TX_FATAL, "Bad GSO type %u.", gso->u.gso.type);
		pkt->has_gso = true;
		pkt->gso = *gso;
	}
	if (extras[XEN_NETIF_EXTRA_TYPE_HASH - 1].type) {
		pkt->has_hash = true;
		pkt->hash = extras[XEN_NETIF_EXTRA_TYPE_HASH - 1];
	}
	pkt->data[0] = reqs[0];
	pkt->data[0].size = first_size;
	pkt->ndata = 1 + pkt->nfrags;
	pkt->verdict = NB_TX_OK;
	return NB_TX_OK;
}
