/*
 * guest/tests/txpkt.h — tests only: publish a packet on a netfront tx ring
 * through nf_tx_build, the way the transmit path does (ids from the book,
 * grant ref 500 + id, TCPv4/TCPv6 GSO when asked).
 */
#ifndef PVNET_GUEST_TESTS_TXPKT_H
#define PVNET_GUEST_TESTS_TXPKT_H

#include "guest/nf_ring.h"

/* gso_type: XEN_NETIF_GSO_TYPE_NONE, _TCPV4 or _TCPV6. Fills ids[] (may be
 * NULL) with the ids used; returns how many. */
static inline unsigned txpkt_publish(netif_tx_front_ring_t *tx, struct nf_txbook *b, uint32_t len,
				     uint8_t gso_type, uint16_t *ids_out)
{
	uint16_t ids[NF_MAX_PKT_PAGES];
	grant_ref_t refs[NF_MAX_PKT_PAGES];
	struct nif_offload o = { 0 };
	unsigned np = (len + PV_PAGE_SIZE - 1) / PV_PAGE_SIZE;

	if (gso_type != XEN_NETIF_GSO_TYPE_NONE) {
		o.csum_blank = o.data_validated = true;
		o.gso_type = gso_type;
		o.gso_size = 1440;
	}
	for (unsigned i = 0; i < np; i++) {
		ids[i] = nf_txids_get(b);
		refs[i] = 500 + ids[i];
		if (ids_out)
			ids_out[i] = ids[i];
	}
	nf_tx_build(tx, b, ids, refs, np, len, &o);
	return np;
}

#endif
