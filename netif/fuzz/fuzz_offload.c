/*
 * libFuzzer target: a frame and its offload metadata as a hostile peer would
 * send them (first byte: ring flags, second: GSO type, then MSS, then the
 * frame). Drives nif_parse_l4, the ring <-> vnet translations both ways and
 * the software checksum over a scattered copy of the frame.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netif/offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct netif_extra_info ex;
	struct nif_offload o;
	struct nif_l4info l4;
	struct virtio_net_hdr vh;
	uint8_t *frame, hdrs[NIF_MAX_HDR_LEN];
	size_t flen, hlen;

	if (size < 4)
		return 0;
	memset(&ex, 0, sizeof(ex));
	ex.type = XEN_NETIF_EXTRA_TYPE_GSO;
	ex.u.gso.type = data[1] & 3;
	ex.u.gso.size = (uint16_t)(data[2] | data[3] << 8);
	flen = size - 4;
	/* Exact-size heap copy so ASan catches any read past the frame. */
	frame = malloc(flen ? flen : 1);
	if (!frame)
		return 0;
	memcpy(frame, data + 4, flen);

	(void)nif_parse_l4(frame, flen, flen, &l4);
	(void)nif_parse_l4(frame, flen / 2, flen, &l4);

	if (nif_offload_from_txflags(data[0], (data[0] & NETTXF_extra_info) ? &ex : NULL, &o) == 0) {
		hlen = flen < sizeof(hdrs) ? flen : sizeof(hdrs);
		memcpy(hdrs, frame, hlen);
		if (nif_offload_to_vnet(&o, hdrs, hlen, flen, &vh) == 0 &&
		    (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
			struct iovec iov[3];
			size_t a = flen / 3, b = flen / 2;
			iov[0] = (struct iovec){ frame, a };
			iov[1] = (struct iovec){ frame + a, b - a };
			iov[2] = (struct iovec){ frame + b, flen - b };
			(void)nif_csum_complete_iov(iov, 3, vh.csum_start, vh.csum_offset);
			if (nif_parse_l4(hdrs, hlen, flen, &l4) == 0)
				(void)nif_csum_write_pseudo(hdrs, hlen, flen, &l4);
		}
		(void)nif_offload_txflags(&o);
		nif_gso_extra_fill(&o, &ex);
	}
	if (nif_offload_from_rxflags(data[0], (data[0] & NETRXF_extra_info) ? &ex : NULL, &o) == 0)
		(void)nif_offload_rxflags(&o);
	vh = (struct virtio_net_hdr){ .flags = data[0], .gso_type = data[1], .gso_size = ex.u.gso.size };
	(void)nif_offload_from_vnet(&vh, &o);
	free(frame);
	return 0;
}
