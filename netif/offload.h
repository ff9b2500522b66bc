/*
 * netif/offload.h — checksum/GSO offload between TAP devices and netif rings.
 *
 * What: the TAP side speaks struct virtio_net_hdr (linux/virtio_net.h); the
 * ring side speaks NETTXF_* / NETRXF_* flags plus a GSO extra-info slot
 * (xen/io/netif.h). Both are translated through one neutral form,
 * struct nif_offload. netif carries no checksum position, so the side that
 * writes a TAP finds csum_start/csum_offset by parsing the frame's headers
 * (nif_parse_l4), as Linux's skb_checksum_setup does.
 * Also: software checksum completion for peers that cannot take a partial
 * checksum, and the pseudo-header sum for frontends that send GSO without
 * csum_blank (Linux netback's "gso checksum fixup").
 * Thread: pure functions, no state. All input may come from a hostile peer:
 * every length is checked; nothing is read outside the given buffers.
 * Errors: 0 on success, -errno: -EMSGSIZE (headers truncated: give more
 * bytes), -EPROTONOSUPPORT (not TCP/UDP over IPv4/IPv6), -EINVAL (malformed or
 * inconsistent), -EOPNOTSUPP (an offload netif cannot express).
 */
#ifndef PVNET_NETIF_OFFLOAD_H
#define PVNET_NETIF_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_net.h>

#include "common/xen.h"

/* Bytes of a frame that always hold every header nif_parse_l4 accepts:
 * Ethernet + 2 VLAN tags + IPv6 + extension headers + TCP with options. */
#define NIF_MAX_HDR_LEN 256u

struct nif_l4info {
	uint16_t l3_off;      /* start of the IP header */
	uint16_t csum_start;  /* start of the TCP/UDP header */
	uint16_t csum_offset; /* checksum field offset from csum_start */
	uint16_t hdr_len;     /* end of the TCP/UDP header */
	uint8_t ipver;        /* 4 or 6 */
	uint8_t l4proto;      /* IPPROTO_TCP or IPPROTO_UDP */
};

/* Parse an Ethernet frame whose first `len` bytes are in `buf` (frame_len is
 * the whole frame's length, >= len). */
int nif_parse_l4(const uint8_t *buf, size_t len, size_t frame_len, struct nif_l4info *out);

struct nif_offload {
	bool csum_blank;      /* checksum field holds only the pseudo-header sum */
	bool data_validated;  /* checksum known good */
	uint8_t gso_type;     /* XEN_NETIF_GSO_TYPE_NONE / TCPV4 / TCPV6 */
	uint16_t gso_size;    /* MSS when gso_type != NONE */
};

/* TAP -> neutral. -EOPNOTSUPP for UDP/ECN GSO (we never enable them). */
int nif_offload_from_vnet(const struct virtio_net_hdr *vh, struct nif_offload *o);
/* neutral -> TAP. `hdrs`/`hlen` are the first bytes of the frame (needed when
 * csum_blank or GSO). Checks that a GSO type matches the parsed IP version and
 * TCP. */
int nif_offload_to_vnet(const struct nif_offload *o, const uint8_t *hdrs, size_t hlen,
			size_t frame_len, struct virtio_net_hdr *vh);

/* Ring flags. A GSO offload needs an extra-info slot (nif_gso_extra_fill). */
uint16_t nif_offload_txflags(const struct nif_offload *o);
uint16_t nif_offload_rxflags(const struct nif_offload *o);
void nif_gso_extra_fill(const struct nif_offload *o, struct netif_extra_info *ex);
/* Ring -> neutral. `gso` is the GSO extra (copied from the ring), or NULL.
 * -EINVAL for a GSO extra with size 0 or an unknown type (fatal in netback). */
int nif_offload_from_txflags(uint16_t flags, const struct netif_extra_info *gso, struct nif_offload *o);
int nif_offload_from_rxflags(uint16_t flags, const struct netif_extra_info *gso, struct nif_offload *o);

/* Complete a partial checksum in place over a scattered frame: sum the bytes
 * from csum_start to the end and store the folded complement at
 * csum_start + csum_offset (which must lie inside the iovecs). */
int nif_csum_complete_iov(const struct iovec *iov, int iovcnt, uint16_t csum_start, uint16_t csum_offset);
/* Write the pseudo-header sum into the checksum field of the headers in
 * `hdrs` (a writable copy of the frame's first bytes), turning a full-checksum
 * GSO frame into a csum_blank one. */
int nif_csum_write_pseudo(uint8_t *hdrs, size_t hlen, size_t frame_len, const struct nif_l4info *l4);

/* Ones' complement sum helpers (RFC 1071), exposed for tests. */
uint32_t nif_csum_add(uint32_t sum, const void *data, size_t len);
uint16_t nif_csum_fold(uint32_t sum);

#endif
