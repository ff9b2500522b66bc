/*
 * libFuzzer target: a transmit ring's worth of requests as a hostile frontend
 * would publish them. The first byte picks fatal_skb_slots (18..81); the rest
 * is cut into 12-byte tx requests. Every packet is parsed in turn, as the
 * queue's tx loop does, until a fatal verdict or the end; the invariants the
 * data path relies on are checked (slots consumed within what was published,
 * data slots within their page and adding up to the announced size).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netback/txparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct netif_tx_request *reqs;
	struct nb_tx_pkt pkt;
	unsigned n, pos = 0, fatal;

	if (size < 1)
		return 0;
	fatal = NB_LEGACY_SLOTS_MAX + data[0] % 64;
	n = (unsigned)((size - 1) / sizeof(*reqs));
	if (n > PV_NET_TX_RING_SIZE)
		n = PV_NET_TX_RING_SIZE;
	/* Exact-size heap copy so ASan catches a read past the published slots. */
	reqs = malloc(n ? n * sizeof(*reqs) : 1);
	if (!reqs)
		return 0;
	memcpy(reqs, data + 1, n * sizeof(*reqs));
	while (pos < n) {
		enum nb_tx_verdict v = nb_tx_parse(reqs + pos, n - pos, fatal, &pkt);

		if (v == NB_TX_FATAL)
			break;
		assert(pkt.nslots >= 1 && pkt.nslots <= n - pos);
		if (v == NB_TX_OK) {
			uint32_t sum = 0;

			assert(pkt.ndata >= 1 && pkt.ndata <= NB_TX_MAX_DATA);
			assert(pkt.nslots == 1 + pkt.nextras + pkt.nfrags);
			for (unsigned i = 0; i < pkt.ndata; i++) {
				assert((unsigned)pkt.data[i].offset + pkt.data[i].size <= PV_PAGE_SIZE);
				sum += pkt.data[i].size;
			}
			assert(sum == pkt.total);
			assert(pkt.data[0].size >= NB_ETH_HLEN);
			assert(!pkt.has_gso || pkt.gso.u.gso.size != 0);
		}
		pos += pkt.nslots;
	}
	free(reqs);
	return 0;
}
