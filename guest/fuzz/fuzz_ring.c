/*
 * libFuzzer target for netfront's response processing (guest/nf_ring.c): the
 * input plays a hostile backend writing arbitrary tx and rx responses and
 * producer indices into the shared rings between frontend steps. Checks that
 * nothing is read or written outside the rings and books (ASan), and that the
 * books stay consistent whatever the backend does.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest/nf_ring.h"

struct input {
	const uint8_t *p;
	size_t n;
};

static int take(struct input *in, void *out, size_t len)
{
	if (in->n < len)
		return -1;
	memcpy(out, in->p, len);
	in->p += len;
	in->n -= len;
	return 0;
}

static _Alignas(4096) uint8_t tx_page[4096];
static _Alignas(4096) uint8_t rx_page[4096];

static void check_book(const struct nf_txbook *b)
{
	unsigned pending = 0, free_walk = 0;
	for (unsigned i = 0; i < NF_TX_RING_SIZE; i++)
		pending += b->pending[i] != 0;
	for (uint16_t id = b->head; id != NF_TX_ID_NONE && free_walk <= NF_TX_RING_SIZE; id = b->link[id]) {
		assert(id < NF_TX_RING_SIZE);
		assert(!b->pending[id]);
		free_walk++;
	}
	assert(free_walk == b->nfree);
	assert(pending + b->nfree <= NF_TX_RING_SIZE);
}

static void walk_cb(void *arg, const uint16_t *ids, unsigned n, const struct nf_txinfo *first)
{
	(void)arg;
	assert(n >= 1 && n <= NF_MAX_PKT_PAGES);
	for (unsigned i = 0; i < n; i++)
		assert(ids[i] < NF_TX_RING_SIZE);
	assert(first->pkt_len <= XEN_NETIF_MAX_TX_SIZE);
}

static void fuzz_tx(struct input *in)
{
	netif_tx_sring_t *s = (netif_tx_sring_t *)tx_page;
	netif_tx_front_ring_t tx;
	static struct nf_txbook b;
	const char *why;
	uint8_t op;

	memset(tx_page, 0, sizeof(tx_page));
	SHARED_RING_INIT(s);
	FRONT_RING_INIT(&tx, s, PV_PAGE_SIZE);
	nf_txbook_init(&b);
	while (take(in, &op, 1) == 0) {
		if (op & 1) {
			/* Frontend: publish a packet of some length. */
			uint16_t len16, ids[NF_MAX_PKT_PAGES];
			grant_ref_t refs[NF_MAX_PKT_PAGES] = { 0 };
			struct nif_offload o = { 0 };
			unsigned np;

			if (take(in, &len16, 2) < 0)
				break;
			if (len16 < 14)
				len16 = 14;
			np = (len16 + PV_PAGE_SIZE - 1) / PV_PAGE_SIZE;
			if (nf_tx_free_slots(&tx) < NF_TX_MAX_SLOTS || b.nfree < np)
				continue;
			if (op & 2) {
				o.gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
				o.gso_size = 1448;
			}
			for (unsigned i = 0; i < np; i++)
				ids[i] = nf_txids_get(&b);
			nf_tx_build(&tx, &b, ids, refs, np, len16, &o);
		} else {
			/* Backend: scribble responses, move rsp_prod, frontend gcs. */
			uint8_t nresp;
			RING_IDX prod;
			if (take(in, &nresp, 1) < 0)
				break;
			for (unsigned i = 0; i < (nresp & 15u); i++) {
				uint8_t slot;
				netif_tx_response_t r;
				if (take(in, &slot, 1) < 0 || take(in, &r, sizeof(r)) < 0)
					return;
				memcpy(&s->ring[slot].rsp, &r, sizeof(r));
			}
			if (take(in, &prod, sizeof(prod)) < 0)
				break;
			s->rsp_prod = (op & 4) ? tx.rsp_cons + (prod & 0x1FF) : prod;
			if (nf_tx_gc(&tx, &b, NULL, NULL, &why) < 0) {
				assert(why);
				break;
			}
		}
		check_book(&b);
		assert(nf_tx_free_slots(&tx) <= NF_TX_RING_SIZE);
	}
	check_book(&b);
	nf_tx_pending_walk(&tx, &b, walk_cb, NULL);
}

static void fuzz_rx(struct input *in)
{
	netif_rx_sring_t *s = (netif_rx_sring_t *)rx_page;
	netif_rx_front_ring_t rx;
	const char *why;
	uint8_t op;

	memset(rx_page, 0, sizeof(rx_page));
	SHARED_RING_INIT(s);
	FRONT_RING_INIT(&rx, s, PV_PAGE_SIZE);
	while (take(in, &op, 1) == 0) {
		uint8_t nresp;
		RING_IDX prod;

		/* Frontend refill: post up to the ring size. */
		while (rx.req_prod_pvt - rx.rsp_cons < NF_RX_RING_SIZE) {
			netif_rx_request_t *req = RING_GET_REQUEST(&rx, rx.req_prod_pvt);
			req->id = (uint16_t)(rx.req_prod_pvt & (NF_RX_RING_SIZE - 1));
			req->gref = 8;
			rx.req_prod_pvt++;
		}
		if (take(in, &nresp, 1) < 0)
			break;
		for (unsigned i = 0; i < (nresp & 31u); i++) {
			uint8_t slot;
			netif_rx_response_t r;
			if (take(in, &slot, 1) < 0 || take(in, &r, sizeof(r)) < 0)
				return;
			if (op & 1) /* mostly well-formed ids */
				r.id = slot;
			memcpy(&s->ring[slot].rsp, &r, sizeof(r));
		}
		if (take(in, &prod, sizeof(prod)) < 0)
			break;
		if (op & 2)
			prod = rx.rsp_cons + (prod & 0x1FF);
		s->rsp_prod = prod;
		prod = __atomic_load_n(&s->rsp_prod, __ATOMIC_ACQUIRE);
		if (nf_rx_check_prod(&rx, prod, &why) < 0)
			break;
		while (rx.rsp_cons != prod) {
			struct nf_rx_pkt p;
			RING_IDX before = rx.rsp_cons;
			if (nf_rx_next(&rx, prod, &p, &why) < 0)
				return;
			assert(p.nslots >= 1 && rx.rsp_cons - before == p.nslots);
			assert(p.nslots <= prod - before);
			assert(p.ndata <= NF_RX_MAX_SLOTS);
			for (unsigned i = 0; i < p.ndata; i++) {
				assert(p.data[i].idx - before < p.nslots);
				if (!p.err)
					assert((uint32_t)p.data[i].offset + p.data[i].len <= PV_PAGE_SIZE);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	uint8_t which;

	if (take(&in, &which, 1) < 0)
		return 0;
	if (which & 1)
		fuzz_rx(&in);
	else
		fuzz_tx(&in);
	return 0;
}
