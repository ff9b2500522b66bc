/*
 * netback/txparse.h — parsing and validation of one guest transmit request
 * chain, as Linux xen-netback's xenvif_tx_build_gops / xenvif_get_extras /
 * xenvif_count_requests / xenvif_set_skb_gso judge it.
 *
 * What: given local copies of the tx requests from the packet's first slot up
 * to the producer index (RING_COPY_REQUEST style: the caller copied them out of
 * shared memory once), decide what the packet is:
 *   NB_TX_OK     a frame of `ndata` data requests (`data[0]` carries the first
 *                slot's own length, not the total) and its offload extras;
 *   NB_TX_MCAST  a multicast filter add/del control request (no frame);
 *   NB_TX_DROP   answer NETIF_RSP_ERROR for every data slot (RSP_NULL for
 *                extras) and go on with the next packet;
 *   NB_TX_FATAL  the frontend is misbehaving: disable the vif.
 * Linux's message for the verdict is in `msg` (same wording, with numbers).
 * Slot counting is Linux's: `nfrags` counts the requests after the first; a
 * chain is dropped once it reaches XEN_NETBK_LEGACY_SLOTS_MAX (18) frags plus
 * one more, and is fatal once it reaches `fatal_slots` (default 20) frags plus
 * one more (docs/netback.md has the table).
 * Thread: pure function, no state. Errors: the verdict; nothing else fails.
 * Ownership: the caller owns every buffer.
 */
#ifndef PVNET_NETBACK_TXPARSE_H
#define PVNET_NETBACK_TXPARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/xen.h"

/* Linux's limits (drivers/net/xen-netback/common.h and netback.c). */
#define NB_LEGACY_SLOTS_MAX XEN_NETIF_NR_SLOTS_MIN /* 18 */
#define NB_FATAL_SKB_SLOTS_DEFAULT 20
#define NB_ETH_HLEN 14u
/* Data requests of an accepted frame: the first plus at most 18 frags. */
#define NB_TX_MAX_DATA (1 + NB_LEGACY_SLOTS_MAX)

enum nb_tx_verdict {
	NB_TX_OK = 0,
	NB_TX_MCAST,
	NB_TX_DROP,
	NB_TX_FATAL,
};

struct nb_tx_pkt {
	enum nb_tx_verdict verdict;
	unsigned nslots;   /* ring slots consumed (first + extras + frags); 0 if FATAL */
	unsigned nextras;  /* extra-info slots right after the first request */
	unsigned nfrags;   /* requests after the extras (more_data chain) */
	unsigned ndata;    /* OK: 1 + nfrags */
	uint16_t total;    /* frame length announced by the first request */
	struct netif_tx_request data[NB_TX_MAX_DATA]; /* OK: the data requests */
	bool has_gso;
	struct netif_extra_info gso;
	bool has_hash;     /* accepted and ignored, as a hash extra on tx only sets skb->hash */
	struct netif_extra_info hash;
	bool mcast_add;    /* MCAST: add (true) or delete (false) mcast_addr */
	uint8_t mcast_addr[6];
	char msg[128];     /* DROP/FATAL: Linux's log text; empty otherwise */
};

/* reqs[0..avail-1]: copies of the requests from the packet's first slot up to
 * the producer index (avail >= 1). fatal_slots >= NB_LEGACY_SLOTS_MAX. */
enum nb_tx_verdict nb_tx_parse(const struct netif_tx_request *reqs, unsigned avail,
			       unsigned fatal_slots, struct nb_tx_pkt *pkt);

/* An extra-info slot is the first 8 bytes of a tx request slot. */
void nb_tx_req_to_extra(const struct netif_tx_request *req, struct netif_extra_info *ex);

#endif
