/*
 * netback/rxplan.h — how a frame read from the vif TAP lands in the
 * frontend's posted receive buffers (rx-copy semantics, Linux xenvif_rx_skb).
 *
 * What: the TAP must be read (readv) before we know the frame's length or
 * whether it is GSO, and a frame's extra-info slots (GSO, then the control
 * ring's HASH) are ring slots 1, 2, right after the first data slot. So the
 * iovec is laid out in advance (nb_rx_layout): [vnet header, page(req 0),
 * page(req 1 + holes), ...], where `holes` requests are kept free for the
 * extras the frame may need (one when the frontend takes GSO, one more while
 * a hash is in force); always followed by a spill buffer so that an
 * oversized frame is detected instead of truncated.
 * After the read, nb_rx_plan says which requests the frame consumes, the
 * response of each (data length or extra, flags) and by how many requests
 * (`shift`) pages 1.. must move down when the frame has fewer extras than the
 * layout kept room for (a non-GSO frame longer than one page; a frame the
 * hash does not apply to). nb_rx_fill_response writes one response.
 * Offload: a partial checksum travels as csum_blank only if the frontend
 * accepts it for that IP version and the frame parses as TCP/UDP over IPv4/6
 * with the checksum where the vnet header says (what netfront's
 * checksum_setup will find); otherwise the caller completes it in software
 * (plan->sw_csum) and sends no checksum flag, as Linux's stack does for a
 * device without the checksum feature.
 * Thread: pure functions. Errors: -EMSGSIZE (the frame needs more slots than
 * the frontend accepts: drop), -EOPNOTSUPP (GSO type the frontend did not ask
 * for: drop), -EINVAL (malformed vnet header: drop).
 */
#ifndef PVNET_NETBACK_RXPLAN_H
#define PVNET_NETBACK_RXPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_net.h>

#include "common/xen.h"
#include "netif/offload.h"

/* 17 pages hold the largest GSO frame the TAP hands out (64 KiB + headers);
 * a frame takes at most two extra slots (GSO, HASH). */
#define NB_RX_MAX_PAGES 17u
#define NB_RX_MAX_SLOTS (NB_RX_MAX_PAGES + 2u)

/* What the frontend accepts (read_xenbus_vif_flags, after the feature fix-up
 * of nb_vif_caps in netback/keys.h). */
struct nb_rx_caps {
	bool sg;
	bool gso_tcpv4, gso_tcpv6;
	bool csum_v4, csum_v6;
	unsigned max_frame;  /* largest non-GSO frame: MTU + Ethernet + one VLAN tag */
};

struct nb_rx_layout {
	unsigned holes;   /* requests after the first kept free for extras (0-2) */
	unsigned npages;  /* data pages in the iovec */
	unsigned nreqs;   /* requests the iovec spans: what must be posted before a read */
};

/* `hash`: a hash is in force (room for a HASH extra). */
void nb_rx_layout(const struct nb_rx_caps *c, bool hash, struct nb_rx_layout *l);
/* The request (relative to the consumer index) backing data page `page`. */
static inline unsigned nb_rx_page_req(const struct nb_rx_layout *l, unsigned page)
{
	return page > 0 ? page + l->holes : 0;
}

enum nb_rx_slot_kind { NB_RX_DATA = 0, NB_RX_EXTRA = 1, NB_RX_EXTRA_HASH = 2 };
struct nb_rx_slot {
	uint8_t kind;
	uint16_t len;    /* DATA: bytes in this page */
	uint16_t flags;  /* NETRXF_* of the response */
};

struct nb_rx_plan {
	unsigned nslots;   /* requests consumed by the frame */
	unsigned npages;   /* data pages */
	unsigned extras;   /* extra slots after the first (page p > 0 is in request p + extras) */
	unsigned shift;    /* move data pages 1..npages-1 down this many requests first */
	bool has_hash;
	struct netif_extra_info hash;  /* the HASH extra, when has_hash */
	bool sw_csum;      /* complete the partial checksum in software first */
	uint16_t csum_start, csum_offset;
	struct nif_offload off;  /* as sent to the frontend */
	struct nb_rx_slot slot[NB_RX_MAX_SLOTS];
};

/* vh: the vnet header read with the frame; hdrs/hlen: a local copy of the
 * frame's first bytes (up to NIF_MAX_HDR_LEN); frame_len: bytes after the
 * vnet header (possibly more than the layout holds: then -EMSGSIZE); hash:
 * the frame's HASH extra, or NULL (sent only if the layout kept room). */
int nb_rx_plan(const struct nb_rx_caps *c, const struct nb_rx_layout *l,
	       const struct virtio_net_hdr *vh, const uint8_t *hdrs, size_t hlen,
	       size_t frame_len, const struct netif_extra_info *hash, struct nb_rx_plan *p);

/* The response for slot i of a plan, answering request `id` (extras carry the
 * GSO info in the response slot, as Linux's xenvif_rx_extra_slot). */
void nb_rx_fill_response(const struct nb_rx_plan *p, unsigned i, uint16_t id,
			 struct netif_rx_response *rsp);

#endif
