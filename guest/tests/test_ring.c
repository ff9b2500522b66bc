/*
 * Unit tests of guest/nf_ring.c: tx request building, tx completion with the
 * hardening checks, never-answered packet walk, rx response collection and
 * every rx protocol violation. The "backend" writes responses directly into
 * the shared ring page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest/nf_ring.h"
#include "guest/tests/txpkt.h"

struct txw {
	netif_tx_sring_t *s;
	netif_tx_front_ring_t tx;
	struct nf_txbook b;
	unsigned done_calls;
	int fail_id;
};

static struct txw *txw_new(void)
{
	struct txw *w = calloc(1, sizeof(*w));
	void *page;
	assert_int_equal(posix_memalign(&page, PV_PAGE_SIZE, PV_PAGE_SIZE), 0);
	memset(page, 0, PV_PAGE_SIZE);
	w->s = page;
	SHARED_RING_INIT(w->s);
	FRONT_RING_INIT(&w->tx, w->s, PV_PAGE_SIZE);
	nf_txbook_init(&w->b);
	w->fail_id = -1;
	return w;
}

static void txw_free(struct txw *w)
{
	free(w->s);
	free(w);
}

/* Build a packet of len bytes; returns the first id. */
static uint16_t tx_packet(struct txw *w, uint32_t len, bool gso)
{
	uint16_t ids[NF_MAX_PKT_PAGES];

	txpkt_publish(&w->tx, &w->b, len, gso ? XEN_NETIF_GSO_TYPE_TCPV6 : XEN_NETIF_GSO_TYPE_NONE, ids);
	return ids[0];
}

/* The backend answers ring slot `slot` (by index) with id/status. */
static void tx_respond(struct txw *w, RING_IDX at, uint16_t id, int16_t status)
{
	netif_tx_response_t *r = RING_GET_RESPONSE(&w->tx, at);
	r->id = id;
	r->status = status;
}

static int tx_done(void *arg, uint16_t id, int16_t status)
{
	struct txw *w = arg;
	(void)status;
	w->done_calls++;
	return (int)id == w->fail_id ? -16 : 0;
}

static void test_tx_build(void **state)
{
	struct txw *w = txw_new();
	netif_tx_request_t *r;
	struct netif_extra_info *ex;
	(void)state;

	assert_int_equal(nf_tx_free_slots(&w->tx), 256);
	tx_packet(w, 60, false);
	r = RING_GET_REQUEST(&w->tx, 0);
	assert_int_equal(r->size, 60);
	assert_int_equal(r->flags, 0);
	assert_int_equal(r->offset, 0);
	assert_int_equal(r->gref, 500);

	tx_packet(w, 9000, true);   /* 3 pages + GSO extra = 4 slots */
	assert_int_equal(w->tx.req_prod_pvt, 5);
	r = RING_GET_REQUEST(&w->tx, 1);
	assert_int_equal(r->size, 9000);
	assert_int_equal(r->flags, NETTXF_csum_blank | NETTXF_data_validated | NETTXF_extra_info |
				   NETTXF_more_data);
	ex = (struct netif_extra_info *)RING_GET_REQUEST(&w->tx, 2);
	assert_int_equal(ex->type, XEN_NETIF_EXTRA_TYPE_GSO);
	assert_int_equal(ex->u.gso.size, 1440);
	assert_int_equal(ex->u.gso.type, XEN_NETIF_GSO_TYPE_TCPV6);
	r = RING_GET_REQUEST(&w->tx, 3);
	assert_int_equal(r->size, 4096);
	assert_int_equal(r->flags, NETTXF_more_data);
	r = RING_GET_REQUEST(&w->tx, 4);
	assert_int_equal(r->size, 9000 - 8192);
	assert_int_equal(r->flags, 0);
	assert_int_equal(nf_tx_free_slots(&w->tx), 251);
	assert_int_equal(w->b.nfree, 252);
	txw_free(w);
}

static void test_tx_gc_ok(void **state)
{
	struct txw *w = txw_new();
	const char *why = NULL;
	(void)state;

	tx_packet(w, 60, false);        /* id 0, slot 0 */
	tx_packet(w, 5000, true);       /* ids 1,2, slots 1,2(extra),3 */
	/* Netback answers every slot: the extra gets RSP_NULL. */
	tx_respond(w, 0, 0, NETIF_RSP_OKAY);
	tx_respond(w, 1, 1, NETIF_RSP_OKAY);
	tx_respond(w, 2, 0xFFFF, NETIF_RSP_NULL);
	tx_respond(w, 3, 2, NETIF_RSP_ERROR);
	w->s->rsp_prod = 4;
	assert_int_equal(nf_tx_gc(&w->tx, &w->b, tx_done, w, &why), 3);
	assert_int_equal(w->done_calls, 3);
	assert_int_equal(w->b.nfree, 256);
	assert_int_equal(w->tx.rsp_cons, 4);
	assert_int_equal(w->s->rsp_event, 5);
	assert_int_equal(nf_tx_free_slots(&w->tx), 256);
	txw_free(w);
}

static void expect_broken(struct txw *w, const char *reason)
{
	const char *why = NULL;
	assert_int_equal(nf_tx_gc(&w->tx, &w->b, tx_done, w, &why), NF_RING_BROKEN);
	assert_string_equal(why, reason);
}

static void test_tx_gc_hardening(void **state)
{
	struct txw *w;
	(void)state;

	w = txw_new();
	tx_packet(w, 60, false);
	tx_respond(w, 0, 256, NETIF_RSP_OKAY);
	w->s->rsp_prod = 1;
	expect_broken(w, "tx response id out of range");
	txw_free(w);

	w = txw_new();
	tx_packet(w, 60, false);
	tx_respond(w, 0, 7, NETIF_RSP_OKAY);   /* id 7 was never published */
	w->s->rsp_prod = 1;
	expect_broken(w, "tx response for an inactive request");
	txw_free(w);

	w = txw_new();
	tx_packet(w, 60, false);
	tx_packet(w, 60, false);
	tx_respond(w, 0, 0, NETIF_RSP_OKAY);
	tx_respond(w, 1, 0, NETIF_RSP_OKAY);   /* the same id twice */
	w->s->rsp_prod = 2;
	expect_broken(w, "tx response for an inactive request");
	txw_free(w);

	w = txw_new();
	tx_packet(w, 60, false);
	w->s->rsp_prod = 300;
	expect_broken(w, "illegal number of tx responses");
	txw_free(w);

	w = txw_new();
	tx_packet(w, 60, false);
	w->s->rsp_prod = 0xFFFFFFF0u;   /* going backwards */
	expect_broken(w, "illegal number of tx responses");
	txw_free(w);

	w = txw_new();
	tx_packet(w, 60, false);
	w->s->rsp_prod = 2;
	expect_broken(w, "tx responses for requests never made");
	txw_free(w);

	w = txw_new();
	tx_packet(w, 60, false);
	tx_respond(w, 0, 0, NETIF_RSP_OKAY);
	w->s->rsp_prod = 1;
	w->fail_id = 0;   /* the backend still maps the grant */
	expect_broken(w, "tx grant still in use by the backend");
	txw_free(w);

	/* RSP_NULL answers only an extra-info slot: on a data slot it would
	 * strand the id (and its frame) for ever. */
	w = txw_new();
	tx_packet(w, 60, false);
	tx_respond(w, 0, 0, NETIF_RSP_NULL);
	w->s->rsp_prod = 1;
	expect_broken(w, "tx NULL response for a data request");
	assert_int_equal(w->tx.rsp_cons, 0);
	assert_int_equal(w->b.pending[0], 1);
	txw_free(w);

	/* One GSO packet has one extra: a second NULL is one too many, even
	 * in the extra's place. */
	w = txw_new();
	tx_packet(w, 5000, true);       /* ids 0,1, slots 0, 1(extra), 2 */
	tx_respond(w, 0, 0, NETIF_RSP_OKAY);
	tx_respond(w, 1, 0xFFFF, NETIF_RSP_NULL);
	tx_respond(w, 2, 0xFFFF, NETIF_RSP_NULL);
	w->s->rsp_prod = 3;
	expect_broken(w, "tx NULL response for a data request");
	assert_int_equal(w->done_calls, 1);
	assert_int_equal(w->tx.rsp_cons, 2);
	txw_free(w);
}

/* The NULL for an extra may come after other packets' responses (Linux
 * netback answers in completion order); the count carries over calls. */
static void test_tx_null_out_of_order(void **state)
{
	struct txw *w = txw_new();
	const char *why = NULL;
	(void)state;

	tx_packet(w, 5000, true);       /* ids 0,1: slots 0, 1(extra), 2 */
	tx_packet(w, 60, false);        /* id 2: slot 3 */
	tx_respond(w, 0, 2, NETIF_RSP_OKAY);
	tx_respond(w, 1, 0, NETIF_RSP_OKAY);
	w->s->rsp_prod = 2;
	assert_int_equal(nf_tx_gc(&w->tx, &w->b, tx_done, w, &why), 2);
	assert_int_equal(w->b.nulls_due, 1);
	tx_respond(w, 2, 0xFFFF, NETIF_RSP_NULL);
	tx_respond(w, 3, 1, NETIF_RSP_OKAY);
	w->s->rsp_prod = 4;
	assert_int_equal(nf_tx_gc(&w->tx, &w->b, tx_done, w, &why), 1);
	assert_int_equal(w->b.nulls_due, 0);
	assert_int_equal(w->b.nfree, 256);
	txw_free(w);
}

struct walk {
	unsigned n;
	uint32_t lens[8];
	unsigned pages[8];
};

static void walk_cb(void *arg, const uint16_t *ids, unsigned n, const struct nf_txinfo *first)
{
	struct walk *k = arg;
	(void)ids;
	k->lens[k->n] = first->pkt_len;
	k->pages[k->n] = n;
	k->n++;
}

static void test_tx_pending_walk(void **state)
{
	struct txw *w = txw_new();
	struct walk k = { 0 };
	const char *why;
	(void)state;

	tx_packet(w, 100, false);     /* id 0 slot 0 */
	tx_packet(w, 8192, true);     /* ids 1,2 slots 1,2x,3 */
	tx_packet(w, 300, false);     /* id 3 slot 4 */
	tx_respond(w, 0, 0, NETIF_RSP_OKAY);
	w->s->rsp_prod = 1;
	assert_int_equal(nf_tx_gc(&w->tx, &w->b, NULL, NULL, &why), 1);
	assert_int_equal(nf_tx_pending_walk(&w->tx, &w->b, walk_cb, &k), 0);
	assert_int_equal(k.n, 2);
	assert_int_equal(k.lens[0], 8192);
	assert_int_equal(k.pages[0], 2);
	assert_int_equal(k.lens[1], 300);

	/* Half of the GSO packet answered: it can no longer be re-posted. */
	tx_respond(w, 1, 2, NETIF_RSP_OKAY);
	w->s->rsp_prod = 2;
	assert_int_equal(nf_tx_gc(&w->tx, &w->b, NULL, NULL, &why), 1);
	memset(&k, 0, sizeof(k));
	assert_int_equal(nf_tx_pending_walk(&w->tx, &w->b, walk_cb, &k), 1);
	assert_int_equal(k.n, 1);
	assert_int_equal(k.lens[0], 300);
	txw_free(w);
}

/* Fill the ring many times round: walk and ids stay consistent. */
static void test_tx_wraps(void **state)
{
	struct txw *w = txw_new();
	const char *why;
	(void)state;

	for (unsigned round = 0; round < 2000; round++) {
		RING_IDX start = w->tx.req_prod_pvt;
		uint16_t id = tx_packet(w, 100 + round % 3000, round % 2);
		for (RING_IDX i = start; i != w->tx.req_prod_pvt; i++) {
			netif_tx_request_t *req = RING_GET_REQUEST(&w->tx, i);
			bool extra = i == start + 1 && round % 2;
			tx_respond(w, i, extra ? 0 : req->id, extra ? NETIF_RSP_NULL : NETIF_RSP_OKAY);
		}
		(void)id;
		w->s->rsp_prod = w->tx.req_prod_pvt;
		assert_true(nf_tx_gc(&w->tx, &w->b, NULL, NULL, &why) >= 1);
	}
	assert_int_equal(w->b.nfree, 256);
	assert_int_equal(nf_tx_free_slots(&w->tx), 256);
	txw_free(w);
}

/* ---- rx ------------------------------------------------------------------ */

struct rxw {
	netif_rx_sring_t *s;
	netif_rx_front_ring_t rx;
	RING_IDX bprod;   /* backend's response producer */
};

static struct rxw *rxw_new(unsigned posted)
{
	struct rxw *w = calloc(1, sizeof(*w));
	void *page;
	assert_int_equal(posix_memalign(&page, PV_PAGE_SIZE, PV_PAGE_SIZE), 0);
	memset(page, 0, PV_PAGE_SIZE);
	w->s = page;
	SHARED_RING_INIT(w->s);
	FRONT_RING_INIT(&w->rx, w->s, PV_PAGE_SIZE);
	for (unsigned i = 0; i < posted; i++) {
		netif_rx_request_t *req = RING_GET_REQUEST(&w->rx, w->rx.req_prod_pvt);
		req->id = (uint16_t)(w->rx.req_prod_pvt & 255);
		req->gref = 700 + i;
		w->rx.req_prod_pvt++;
	}
	return w;
}

static void rx_resp(struct rxw *w, uint16_t off, int16_t status, uint16_t flags)
{
	netif_rx_response_t *r = RING_GET_RESPONSE(&w->rx, w->bprod);
	r->id = (uint16_t)(w->bprod & 255);
	r->offset = off;
	r->status = status;
	r->flags = flags;
	w->bprod++;
}

static void rx_extra(struct rxw *w, uint8_t type, uint16_t size, uint8_t gtype, uint8_t flags)
{
	struct netif_extra_info *ex = (struct netif_extra_info *)RING_GET_RESPONSE(&w->rx, w->bprod);
	memset(ex, 0, sizeof(*ex));
	ex->type = type;
	ex->flags = flags;
	ex->u.gso.size = size;
	ex->u.gso.type = gtype;
	w->bprod++;
}

static int rx_next(struct rxw *w, struct nf_rx_pkt *p, const char **why)
{
	w->s->rsp_prod = w->bprod;
	assert_int_equal(nf_rx_check_prod(&w->rx, w->bprod, why), 0);
	return nf_rx_next(&w->rx, w->bprod, p, why);
}

static void test_rx_simple_and_chain(void **state)
{
	struct rxw *w = rxw_new(64);
	struct nf_rx_pkt p;
	const char *why = NULL;
	(void)state;

	rx_resp(w, 0, 1514, NETRXF_data_validated);
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_OK);
	assert_int_equal(p.ndata, 1);
	assert_int_equal(p.len, 1514);
	assert_int_equal(p.data[0].idx, 0);
	assert_int_equal(w->rx.rsp_cons, 1);

	/* GSO: data slot, extra slot, then two more data slots. */
	rx_resp(w, 0, 4096, NETRXF_csum_blank | NETRXF_extra_info | NETRXF_more_data);
	rx_extra(w, XEN_NETIF_EXTRA_TYPE_GSO, 1448, XEN_NETIF_GSO_TYPE_TCPV4, 0);
	rx_resp(w, 0, 4096, NETRXF_more_data);
	rx_resp(w, 0, 100, 0);
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_OK);
	assert_int_equal(p.nslots, 4);
	assert_int_equal(p.ndata, 3);
	assert_int_equal(p.len, 8292);
	assert_true(p.has_gso);
	assert_int_equal(p.gso.u.gso.size, 1448);
	assert_int_equal(p.data[0].idx, 1);
	assert_int_equal(p.data[1].idx, 3);
	assert_int_equal(p.data[2].idx, 4);
	assert_int_equal(w->rx.rsp_cons, 5);
	free(w->s);
	free(w);
}

static void test_rx_drops(void **state)
{
	struct rxw *w = rxw_new(64);
	struct nf_rx_pkt p;
	const char *why = NULL;
	(void)state;

	rx_resp(w, 0, NETIF_RSP_ERROR, 0);
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_ERR_STATUS);

	rx_resp(w, 0, 100, NETRXF_extra_info);   /* the extra never comes */
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_ERR_MISSING_EXTRA);
	assert_int_equal(w->rx.rsp_cons, w->bprod);

	rx_resp(w, 0, 100, NETRXF_extra_info);
	rx_extra(w, 9, 0, 0, 0);
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_ERR_BAD_EXTRA);

	rx_resp(w, 0, 100, NETRXF_extra_info);
	rx_extra(w, XEN_NETIF_EXTRA_TYPE_GSO, 0, XEN_NETIF_GSO_TYPE_TCPV4, 0);
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_ERR_BAD_GSO);

	rx_resp(w, 0, 100, NETRXF_extra_info);
	rx_extra(w, XEN_NETIF_EXTRA_TYPE_GSO, 1000, 7, 0);
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_ERR_BAD_GSO);

	rx_resp(w, 0, 100, NETRXF_more_data);   /* chain cut short */
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_ERR_NEED_SLOTS);

	rx_resp(w, 0, 0, 0);
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_ERR_EMPTY);

	/* Two extras chained with FLAG_MORE, the first of an unused type. */
	rx_resp(w, 0, 100, NETRXF_extra_info);
	rx_extra(w, XEN_NETIF_EXTRA_TYPE_HASH, 0, 0, XEN_NETIF_EXTRA_FLAG_MORE);
	rx_extra(w, XEN_NETIF_EXTRA_TYPE_GSO, 1448, XEN_NETIF_GSO_TYPE_TCPV6, 0);
	assert_int_equal(rx_next(w, &p, &why), 1);
	assert_int_equal(p.err, NF_RX_OK);
	assert_int_equal(p.nslots, 3);
	free(w->s);
	free(w);
}

static void rx_expect_broken(struct rxw *w, const char *reason)
{
	struct nf_rx_pkt p;
	const char *why = NULL;
	w->s->rsp_prod = w->bprod;
	assert_int_equal(nf_rx_next(&w->rx, w->bprod, &p, &why), NF_RING_BROKEN);
	assert_string_equal(why, reason);
}

static void test_rx_broken(void **state)
{
	struct rxw *w;
	const char *why = NULL;
	(void)state;

	w = rxw_new(64);
	rx_resp(w, 4000, 200, 0);
	rx_expect_broken(w, "rx data beyond the end of its page");
	free(w->s); free(w);

	w = rxw_new(64);
	rx_resp(w, 0, 100, 0);
	RING_GET_RESPONSE(&w->rx, 0)->id = 9;
	rx_expect_broken(w, "rx response id does not match its slot");
	free(w->s); free(w);

	w = rxw_new(64);
	for (int i = 0; i < 19; i++)
		rx_resp(w, 0, 1000, NETRXF_more_data);
	rx_resp(w, 0, 1000, 0);
	rx_expect_broken(w, "rx packet with too many slots");
	free(w->s); free(w);

	/* 19 slots are fine when the first is small (RX_COPY_THRESHOLD). */
	w = rxw_new(64);
	rx_resp(w, 0, 200, NETRXF_more_data);
	for (int i = 0; i < 17; i++)
		rx_resp(w, 0, 1000, NETRXF_more_data);
	rx_resp(w, 0, 1000, 0);
	{
		struct nf_rx_pkt p;
		assert_int_equal(rx_next(w, &p, &why), 1);
		assert_int_equal(p.ndata, 19);
		assert_int_equal(p.err, NF_RX_OK);
	}
	free(w->s); free(w);

	w = rxw_new(4);
	assert_int_equal(nf_rx_check_prod(&w->rx, 5, &why), NF_RING_BROKEN);
	assert_string_equal(why, "rx responses for requests never posted");
	assert_int_equal(nf_rx_check_prod(&w->rx, 300, &why), NF_RING_BROKEN);
	assert_string_equal(why, "illegal number of rx responses");
	assert_int_equal(nf_rx_check_prod(&w->rx, 4, &why), 0);
	free(w->s); free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_build),
		cmocka_unit_test(test_tx_gc_ok),
		cmocka_unit_test(test_tx_gc_hardening),
		cmocka_unit_test(test_tx_null_out_of_order),
		cmocka_unit_test(test_tx_pending_walk),
		cmocka_unit_test(test_tx_wraps),
		cmocka_unit_test(test_rx_simple_and_chain),
		cmocka_unit_test(test_rx_drops),
		cmocka_unit_test(test_rx_broken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
