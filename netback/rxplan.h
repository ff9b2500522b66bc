/*
 * netback/rxplan.h — how a frame read from the vif TAP lands in the
 * frontend's posted receive buffers (rx-copy semantics, Linux xenvif_rx_skb).
 *
 * What: the TAP must be read (readv) before we know the frame's length or
 * whether it is GSO, and a GSO frame's extra-info slot is ring slot 1, right
 * after the first data slot. So the iovec is laid out in advance
 * (nb_rx_layout): [vnet header, page(req 0), page(req 2), page(req 3), ...]
 * when the frontend takes GSO (request 1 is left free for the extra), else
 * [vnet header, page(req 0), page(req 1), ...]; always followed by a spill
 * buffer so that an oversized frame is detected instead of truncated.
 * After the read, nb_rx_plan says which requests the frame consumes, the
 * response of each (data length or extra, flags) and whether the rare case of
 * a non-GSO frame longer than one page on a GSO layout needs its pages moved
 * down by one request (jumbo MTU only: with MTU <= 4082 a non-GSO frame always
 * fits the first page). nb_rx_fill_response writes one response.
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

/* 17 pages hold the largest GSO frame the TAP hands out (64 KiB + headers). */
#define NB_RX_MAX_PAGES 17u
#define NB_RX_MAX_SLOTS (NB_RX_MAX_PAGES + 1u)

/* What the frontend accepts (read_xenbus_vif_flags, after the feature fix-up
 * of nb_vif_caps in netback/keys.h). */
struct nb_rx_caps {
	bool sg;
	bool gso_tcpv4, gso_tcpv6;
	bool csum_v4, csum_v6;
	unsigned max_frame;  /* largest non-GSO frame: MTU + Ethernet + one VLAN tag */
};

struct nb_rx_layout {
	bool gso_hole;    /* request 1 is kept free for a GSO extra */
	unsigned npages;  /* data pages in the iovec */
	unsigned nreqs;   /* requests the iovec spans: what must be posted before a read */
};

void nb_rx_layout(const struct nb_rx_caps *c, struct nb_rx_layout *l);
/* The request (relative to the consumer index) backing data page `page`. */
static inline unsigned nb_rx_page_req(const struct nb_rx_layout *l, unsigned page)
{
	return (l->gso_hole && page > 0) ? page + 1 : page;
}

enum nb_rx_slot_kind { NB_RX_DATA = 0, NB_RX_EXTRA = 1 };
struct nb_rx_slot {
	uint8_t kind;
	uint16_t len;    /* DATA: bytes in this page */
	uint16_t flags;  /* NETRXF_* of the response */
};

struct nb_rx_plan {
	unsigned nslots;   /* requests consumed by the frame */
	unsigned npages;   /* data pages */
	bool shift;        /* move data pages 1..npages-1 down one request first */
	bool sw_csum;      /* complete the partial checksum in software first */
	uint16_t csum_start, csum_offset;
	struct nif_offload off;  /* as sent to the frontend */
	struct nb_rx_slot slot[NB_RX_MAX_SLOTS];
};

/* vh: the vnet header read with the frame; hdrs/hlen: a local copy of the
 * frame's first bytes (up to NIF_MAX_HDR_LEN); frame_len: bytes after the
 * vnet header (possibly more than the layout holds: then -EMSGSIZE). */
int nb_rx_plan(const struct nb_rx_caps *c, const struct nb_rx_layout *l,
	       const struct virtio_net_hdr *vh, const uint8_t *hdrs, size_t hlen,
	       size_t frame_len, struct nb_rx_plan *p);

/* The response for slot i of a plan, answering request `id` (extras carry the
 * GSO info in the response slot, as Linux's xenvif_rx_extra_slot). */
void nb_rx_fill_response(const struct nb_rx_plan *p, unsigned i, uint16_t id,
			 struct netif_rx_response *rsp);

#endif
