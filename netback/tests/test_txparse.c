/* Unit tests for netback/txparse: every rule of Linux's tx chain validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "netback/txparse.h"

static struct netif_tx_request ring[300];
static unsigned n;

static void reset(void) { memset(ring, 0, sizeof(ring)); n = 0; }

static void add_req(uint16_t offset, uint16_t size, uint16_t flags)
{
	ring[n] = (struct netif_tx_request){ .gref = 100 + n, .offset = offset, .flags = flags,
					     .id = (uint16_t)n, .size = size };
	n++;
}

static void add_extra(uint8_t type, uint8_t flags, uint16_t gso_size, uint8_t gso_type)
{
	struct netif_extra_info ex;

	memset(&ex, 0, sizeof(ex));
	ex.type = type;
	ex.flags = flags;
	if (type == XEN_NETIF_EXTRA_TYPE_GSO) {
		ex.u.gso.size = gso_size;
		ex.u.gso.type = gso_type;
	} else if (type == XEN_NETIF_EXTRA_TYPE_MCAST_ADD || type == XEN_NETIF_EXTRA_TYPE_MCAST_DEL) {
		static const uint8_t a[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
		memcpy(ex.u.mcast.addr, a, 6);
	}
	memset(&ring[n], 0xEE, sizeof(ring[n]));
	memcpy(&ring[n], &ex, sizeof(ex));
	n++;
}

/* A frame of `slots` data requests: the first announces the total. */
static void add_chain(unsigned slots, uint16_t frag_size, uint16_t first_own, uint16_t first_flags)
{
	uint32_t total = first_own + (uint32_t)(slots - 1) * frag_size;

	add_req(0, (uint16_t)total, (uint16_t)(first_flags | (slots > 1 ? NETTXF_more_data : 0)));
	for (unsigned i = 1; i < slots; i++)
		add_req(0, frag_size, i + 1 < slots ? NETTXF_more_data : 0);
}

static enum nb_tx_verdict parse(struct nb_tx_pkt *p)
{
	return nb_tx_parse(ring, n, NB_FATAL_SKB_SLOTS_DEFAULT, p);
}

static void test_single_slot(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_req(100, 60, NETTXF_csum_blank | NETTXF_data_validated);
	assert_int_equal(parse(&p), NB_TX_OK);
	assert_int_equal(p.nslots, 1);
	assert_int_equal(p.ndata, 1);
	assert_int_equal(p.total, 60);
	assert_int_equal(p.data[0].size, 60);
	assert_int_equal(p.data[0].offset, 100);
	assert_false(p.has_gso);
	assert_string_equal(p.msg, "");
}

static void test_multi_slot_sizes(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_chain(3, 4096, 1000, 0);
	add_req(0, 60, 0); /* the next packet is not consumed */
	assert_int_equal(parse(&p), NB_TX_OK);
	assert_int_equal(p.nslots, 3);
	assert_int_equal(p.ndata, 3);
	assert_int_equal(p.total, 1000 + 2 * 4096);
	assert_int_equal(p.data[0].size, 1000);
	assert_int_equal(p.data[1].size, 4096);
	assert_int_equal(p.data[2].size, 4096);
	assert_int_equal(p.data[2].gref, 102);
}

static void test_max_size_frame(void **s)
{
	struct nb_tx_pkt p;

	/* 65535 bytes: 15 full pages + a 4095-byte first slot. */
	reset();
	add_chain(16, 4096, 65535 - 15 * 4096, 0);
	assert_int_equal(parse(&p), NB_TX_OK);
	assert_int_equal(p.total, 65535);
	assert_int_equal(p.ndata, 16);
}

/* Linux counts the requests after the first: 18 frags pass, the 19th starts
 * a drop, reading a 21st is fatal (fatal_skb_slots = 20). */
static void test_slot_limits(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_chain(19, 100, 100, 0);
	assert_int_equal(parse(&p), NB_TX_OK);
	assert_int_equal(p.ndata, 19);

	for (unsigned slots = 20; slots <= 21; slots++) {
		reset();
		add_chain(slots, 100, 100, 0);
		add_req(0, 60, 0);
		assert_int_equal(parse(&p), NB_TX_DROP);
		assert_int_equal(p.nslots, slots);
		assert_non_null(strstr(p.msg, "Too many slots (18) exceeding limit (18)"));
	}

	reset();
	add_chain(22, 100, 100, 0);
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Malicious frontend using 20 slots, threshold 20");
	assert_int_equal(p.nslots, 0);

	/* A lower threshold (the module parameter's floor is 18). */
	reset();
	add_chain(20, 100, 100, 0);
	assert_int_equal(nb_tx_parse(ring, n, 18, &p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Malicious frontend using 18 slots, threshold 18");
}

static void test_chain_past_producer(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_chain(4, 100, 100, 0);
	n--; /* the last frag is not published */
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Asked for 2 slots but exceeds this limit");
}

static void test_frag_cross_page(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_chain(3, 100, 100, 0);
	ring[2].offset = 4000;
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Cross page boundary, txp->offset: 4000, size: 100");

	/* Even while a drop is already decided, a crossing slot is fatal. */
	reset();
	add_chain(21, 100, 100, 0);
	ring[20].offset = 4050;
	assert_int_equal(parse(&p), NB_TX_FATAL);
}

static void test_frag_larger_than_remaining(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_req(0, 200, NETTXF_more_data);
	add_req(0, 150, NETTXF_more_data);
	add_req(0, 100, 0);  /* only 50 remain */
	add_req(0, 60, 0);
	assert_int_equal(parse(&p), NB_TX_DROP);
	assert_int_equal(p.nslots, 3);
	assert_string_equal(p.msg, "Invalid tx request, slot size 100 > remaining size 50");
}

static void test_bad_first_size(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_req(0, 13, 0);
	assert_int_equal(parse(&p), NB_TX_DROP);
	assert_int_equal(p.nslots, 1);
	assert_string_equal(p.msg, "Bad packet size: 13");

	/* The first slot's own share is what counts. */
	reset();
	add_chain(2, 1000, 10, 0);
	assert_int_equal(parse(&p), NB_TX_DROP);
	assert_int_equal(p.nslots, 2);
	assert_string_equal(p.msg, "Bad packet size: 10");

	/* With an extra, the extra slot is consumed too. */
	reset();
	add_req(0, 10, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_GSO, 0, 1448, XEN_NETIF_GSO_TYPE_TCPV4);
	assert_int_equal(parse(&p), NB_TX_DROP);
	assert_int_equal(p.nslots, 2);
	assert_int_equal(p.nextras, 1);
}

static void test_first_cross_page(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_req(4000, 200, 0);
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "txreq.offset: 4000, size: 200, end: 4200");
}

static void test_extras(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_req(0, 3000, NETTXF_extra_info | NETTXF_csum_blank | NETTXF_more_data);
	add_extra(XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_FLAG_MORE, 1448, XEN_NETIF_GSO_TYPE_TCPV6);
	add_extra(XEN_NETIF_EXTRA_TYPE_HASH, 0, 0, 0);
	add_req(0, 1000, 0);
	assert_int_equal(parse(&p), NB_TX_OK);
	assert_int_equal(p.nextras, 2);
	assert_int_equal(p.nslots, 4);
	assert_int_equal(p.ndata, 2);
	assert_true(p.has_gso);
	assert_int_equal(p.gso.u.gso.size, 1448);
	assert_int_equal(p.gso.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV6);
	assert_true(p.has_hash);
	assert_int_equal(p.data[0].size, 2000);
	assert_int_equal(p.data[1].gref, 103);
}

static void test_extra_errors(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_req(0, 100, NETTXF_extra_info);
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Missing extra info");

	reset();
	add_req(0, 100, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_FLAG_MORE, 1448, XEN_NETIF_GSO_TYPE_TCPV4);
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Missing extra info");

	reset();
	add_req(0, 100, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_NONE, 0, 0, 0);
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Invalid extra type: 0");

	reset();
	add_req(0, 100, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_MAX, 0, 0, 0);
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Invalid extra type: 5");
}

static void test_gso_errors(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_req(0, 100, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_GSO, 0, 0, XEN_NETIF_GSO_TYPE_TCPV4);
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "GSO size must not be zero.");

	reset();
	add_req(0, 100, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_GSO, 0, 1448, 3);
	assert_int_equal(parse(&p), NB_TX_FATAL);
	assert_string_equal(p.msg, "Bad GSO type 3.");

	reset();
	add_req(0, 100, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_GSO, 0, 1448, XEN_NETIF_GSO_TYPE_NONE);
	assert_int_equal(parse(&p), NB_TX_FATAL);
}

static void test_mcast(void **s)
{
	struct nb_tx_pkt p;

	reset();
	add_req(0, 0, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_MCAST_ADD, 0, 0, 0);
	add_req(0, 60, 0);
	assert_int_equal(parse(&p), NB_TX_MCAST);
	assert_true(p.mcast_add);
	assert_int_equal(p.nslots, 2);
	assert_int_equal(p.mcast_addr[0], 0x01);
	assert_int_equal(p.mcast_addr[5], 0xfb);

	reset();
	add_req(0, 0, NETTXF_extra_info);
	add_extra(XEN_NETIF_EXTRA_TYPE_MCAST_DEL, 0, 0, 0);
	assert_int_equal(parse(&p), NB_TX_MCAST);
	assert_false(p.mcast_add);
}

static void test_no_request(void **s)
{
	struct nb_tx_pkt p;

	assert_int_equal(nb_tx_parse(ring, 0, 20, &p), NB_TX_FATAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_slot),
		cmocka_unit_test(test_multi_slot_sizes),
		cmocka_unit_test(test_max_size_frame),
		cmocka_unit_test(test_slot_limits),
		cmocka_unit_test(test_chain_past_producer),
		cmocka_unit_test(test_frag_cross_page),
		cmocka_unit_test(test_frag_larger_than_remaining),
		cmocka_unit_test(test_bad_first_size),
		cmocka_unit_test(test_first_cross_page),
		cmocka_unit_test(test_extras),
		cmocka_unit_test(test_extra_errors),
		cmocka_unit_test(test_gso_errors),
		cmocka_unit_test(test_mcast),
		cmocka_unit_test(test_no_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
