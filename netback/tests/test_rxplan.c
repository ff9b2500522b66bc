/* Unit tests for netback/rxplan: receive iovec layout, slot plans, responses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/if_tun.h>

#include "netback/keys.h"
#include "netback/rxplan.h"

static const struct nb_fe_flags linux_fe = {
	.rx_copy = true, .rx_notify = true, .sg = true, .gso_tcpv4 = true, .gso_tcpv6 = true,
	.ipv6_csum = true,
};

/* Ethernet + IPv4 + TCP headers (no payload written; frame_len says how long). */
static size_t mk_tcp4(uint8_t *f, size_t frame_len)
{
	memset(f, 0, 54);
	f[12] = 0x08; f[13] = 0x00;
	f[14] = 0x45;
	f[16] = (uint8_t)((frame_len - 14) >> 8); f[17] = (uint8_t)(frame_len - 14);
	f[23] = 6;
	f[14 + 20 + 12] = 5 << 4;
	return 54;
}

static size_t mk_tcp6(uint8_t *f, size_t frame_len)
{
	memset(f, 0, 74);
	f[12] = 0x86; f[13] = 0xDD;
	f[14] = 0x60;
	f[18] = (uint8_t)((frame_len - 54) >> 8); f[19] = (uint8_t)(frame_len - 54);
	f[20] = 6;
	f[54 + 12] = 5 << 4;
	return 74;
}

static void test_layouts(void **s)
{
	struct nb_vif_caps c;
	struct nb_rx_layout l;
	struct nb_fe_flags f = linux_fe;

	nb_vif_caps(&f, 1500, &c);
	nb_rx_layout(&c.rx, false, &l);
	assert_int_equal(l.holes, 1);
	assert_int_equal(l.npages, 17);
	assert_int_equal(l.nreqs, 18);
	assert_int_equal(nb_rx_page_req(&l, 0), 0);
	assert_int_equal(nb_rx_page_req(&l, 1), 2);
	assert_int_equal(nb_rx_page_req(&l, 16), 17);

	f.gso_tcpv4 = f.gso_tcpv6 = false;
	nb_vif_caps(&f, 1500, &c);
	nb_rx_layout(&c.rx, false, &l);
	assert_int_equal(l.holes, 0);
	assert_int_equal(l.npages, 1);
	assert_int_equal(l.nreqs, 1);
	nb_vif_caps(&f, 9000, &c);
	nb_rx_layout(&c.rx, false, &l);
	assert_int_equal(l.npages, 3);
	assert_int_equal(nb_rx_page_req(&l, 2), 2);

	f.sg = false;
	nb_vif_caps(&f, 9000, &c);
	assert_int_equal(c.mtu, 1500);
	nb_rx_layout(&c.rx, false, &l);
	assert_int_equal(l.npages, 1);
	assert_int_equal(l.nreqs, 1);
}

static void test_plain_frame(void **s)
{
	struct nb_vif_caps c;
	struct nb_rx_layout l;
	struct nb_rx_plan p;
	struct virtio_net_hdr vh = { 0 };
	struct netif_rx_response rsp;
	uint8_t h[256];

	nb_vif_caps(&linux_fe, 1500, &c);
	nb_rx_layout(&c.rx, false, &l);
	mk_tcp4(h, 60);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 60, 60, NULL, &p), 0);
	assert_int_equal(p.nslots, 1);
	assert_false(p.shift);
	assert_false(p.sw_csum);
	nb_rx_fill_response(&p, 0, 77, &rsp);
	assert_int_equal(rsp.id, 77);
	assert_int_equal(rsp.offset, 0);
	assert_int_equal(rsp.status, 60);
	assert_int_equal(rsp.flags, 0);

	vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 60, 60, NULL, &p), 0);
	nb_rx_fill_response(&p, 0, 1, &rsp);
	assert_int_equal(rsp.flags, NETRXF_data_validated);
}

static void test_gso_frame(void **s)
{
	struct nb_vif_caps c;
	struct nb_rx_layout l;
	struct nb_rx_plan p;
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				     .gso_size = 1448, .csum_start = 34, .csum_offset = 16, .hdr_len = 54 };
	struct netif_rx_response rsp;
	struct netif_extra_info ex;
	uint8_t h[256];
	size_t len = 3 * 4096 + 100;

	nb_vif_caps(&linux_fe, 1500, &c);
	nb_rx_layout(&c.rx, false, &l);
	mk_tcp4(h, len);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 54, len, NULL, &p), 0);
	assert_int_equal(p.npages, 4);
	assert_int_equal(p.nslots, 5);
	assert_false(p.shift);
	/* slot 0: data with csum + extra + more_data; slot 1: the GSO extra. */
	nb_rx_fill_response(&p, 0, 5, &rsp);
	assert_int_equal(rsp.status, 4096);
	assert_int_equal(rsp.flags, NETRXF_csum_blank | NETRXF_data_validated | NETRXF_extra_info |
				     NETRXF_more_data);
	nb_rx_fill_response(&p, 1, 6, &rsp);
	memcpy(&ex, &rsp, sizeof(ex));
	assert_int_equal(ex.type, XEN_NETIF_EXTRA_TYPE_GSO);
	assert_int_equal(ex.flags, 0);
	assert_int_equal(ex.u.gso.size, 1448);
	assert_int_equal(ex.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
	nb_rx_fill_response(&p, 2, 7, &rsp);
	assert_int_equal(rsp.status, 4096);
	assert_int_equal(rsp.flags, NETRXF_more_data);
	nb_rx_fill_response(&p, 4, 9, &rsp);
	assert_int_equal(rsp.status, 100);
	assert_int_equal(rsp.flags, 0);
	assert_int_equal(rsp.id, 9);

	/* A GSO frame of one page still has its extra. */
	mk_tcp4(h, 2000);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 54, 2000, NULL, &p), 0);
	assert_int_equal(p.nslots, 2);
	assert_int_equal(p.slot[0].flags & NETRXF_more_data, 0);
	assert_int_equal(p.slot[1].kind, NB_RX_EXTRA);
}

static void test_gso_not_negotiated(void **s)
{
	struct nb_fe_flags f = linux_fe;
	struct nb_vif_caps c;
	struct nb_rx_layout l;
	struct nb_rx_plan p;
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV6,
				     .gso_size = 1428, .csum_start = 54, .csum_offset = 16, .hdr_len = 74 };
	uint8_t h[256];

	f.gso_tcpv6 = false;
	nb_vif_caps(&f, 1500, &c);
	nb_rx_layout(&c.rx, false, &l);
	mk_tcp6(h, 5000);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 74, 5000, NULL, &p), -EOPNOTSUPP);
	vh.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 74, 5000, NULL, &p), -EOPNOTSUPP);
	vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	vh.gso_size = 0;
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 74, 5000, NULL, &p), -EINVAL);
}

static void test_jumbo_shift(void **s)
{
	struct nb_vif_caps c;
	struct nb_rx_layout l;
	struct nb_rx_plan p;
	struct virtio_net_hdr vh = { 0 };
	struct netif_rx_response rsp;
	uint8_t h[256];

	nb_vif_caps(&linux_fe, 9000, &c);
	nb_rx_layout(&c.rx, false, &l);
	mk_tcp4(h, 9014);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 54, 9014, NULL, &p), 0);
	assert_int_equal(p.shift, 1);
	assert_int_equal(p.nslots, 3);
	nb_rx_fill_response(&p, 0, 0, &rsp);
	assert_int_equal(rsp.flags, NETRXF_more_data);
	nb_rx_fill_response(&p, 2, 2, &rsp);
	assert_int_equal(rsp.status, 9014 - 8192);
}

static void test_too_big(void **s)
{
	struct nb_fe_flags f = linux_fe;
	struct nb_vif_caps c;
	struct nb_rx_layout l;
	struct nb_rx_plan p;
	struct virtio_net_hdr vh = { 0 };
	uint8_t h[256];

	f.sg = false;
	nb_vif_caps(&f, 1500, &c);
	nb_rx_layout(&c.rx, false, &l);
	mk_tcp4(h, 5000);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 54, 5000, NULL, &p), -EMSGSIZE);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 54, 4096, NULL, &p), 0);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 54, 0, NULL, &p), -EINVAL);

	nb_vif_caps(&linux_fe, 1500, &c);
	nb_rx_layout(&c.rx, false, &l);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh, h, 54, 17 * 4096 + 1, NULL, &p), -EMSGSIZE);
}

static void test_checksum_choice(void **s)
{
	struct nb_fe_flags f = linux_fe;
	struct nb_vif_caps c;
	struct nb_rx_layout l;
	struct nb_rx_plan p;
	struct virtio_net_hdr vh4 = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 };
	struct virtio_net_hdr vh6 = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 54, .csum_offset = 16 };
	uint8_t h4[256], h6[256];

	mk_tcp4(h4, 600);
	mk_tcp6(h6, 600);

	/* Linux netfront: both families accepted. */
	nb_vif_caps(&f, 1500, &c);
	nb_rx_layout(&c.rx, false, &l);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh4, h4, 54, 600, NULL, &p), 0);
	assert_false(p.sw_csum);
	assert_int_equal(p.slot[0].flags, NETRXF_csum_blank | NETRXF_data_validated);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh6, h6, 74, 600, NULL, &p), 0);
	assert_false(p.sw_csum);

	/* No IPv6 checksum offload: IPv6 completed in software, no flags. */
	f.ipv6_csum = false;
	nb_vif_caps(&f, 1500, &c);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh6, h6, 74, 600, NULL, &p), 0);
	assert_true(p.sw_csum);
	assert_int_equal(p.csum_start, 54);
	assert_int_equal(p.csum_offset, 16);
	assert_int_equal(p.slot[0].flags, 0);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh4, h4, 54, 600, NULL, &p), 0);
	assert_false(p.sw_csum);

	/* feature-no-csum-offload: IPv4 completed in software. */
	f.no_csum_offload = true;
	nb_vif_caps(&f, 1500, &c);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh4, h4, 54, 600, NULL, &p), 0);
	assert_true(p.sw_csum);

	/* A checksum position netfront would not find: software. */
	f = linux_fe;
	nb_vif_caps(&f, 1500, &c);
	vh4.csum_offset = 6;
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh4, h4, 54, 600, NULL, &p), 0);
	assert_true(p.sw_csum);
	/* A checksum field past the frame: malformed. */
	vh4.csum_start = 599;
	assert_int_equal(nb_rx_plan(&c.rx, &l, &vh4, h4, 54, 600, NULL, &p), -EINVAL);
}

/* A hash in force (the control ring): room for a HASH extra after the GSO
 * one, and the data moved down when a frame has fewer extras. */
static void test_hash_extra(void **s)
{
	struct nb_fe_flags f = linux_fe;
	struct nb_vif_caps c;
	struct nb_rx_layout l;
	struct nb_rx_plan p;
	struct virtio_net_hdr gso = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				      .gso_size = 1448, .csum_start = 34, .csum_offset = 16, .hdr_len = 54 };
	struct virtio_net_hdr plain = { 0 };
	struct netif_extra_info hx = { .type = XEN_NETIF_EXTRA_TYPE_HASH }, ex;
	struct netif_rx_response rsp;
	uint8_t h[256];
	size_t len = 3 * 4096 + 100;

	(void)s;
	hx.u.hash.type = _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
	hx.u.hash.algorithm = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
	hx.u.hash.value[0] = 0x78;
	hx.u.hash.value[3] = 0x51;
	nb_vif_caps(&f, 1500, &c);
	nb_rx_layout(&c.rx, true, &l);
	assert_int_equal(l.holes, 2);
	assert_int_equal(l.nreqs, NB_RX_MAX_PAGES + 2);
	assert_int_equal(nb_rx_page_req(&l, 0), 0);
	assert_int_equal(nb_rx_page_req(&l, 1), 3);

	/* GSO + hash: data, GSO extra (more), HASH extra, data... */
	mk_tcp4(h, len);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &gso, h, 54, len, &hx, &p), 0);
	assert_int_equal(p.nslots, 6);
	assert_int_equal(p.extras, 2);
	assert_int_equal(p.shift, 0);
	nb_rx_fill_response(&p, 0, 0, &rsp);
	assert_true(rsp.flags & NETRXF_extra_info);
	nb_rx_fill_response(&p, 1, 1, &rsp);
	memcpy(&ex, &rsp, sizeof(ex));
	assert_int_equal(ex.type, XEN_NETIF_EXTRA_TYPE_GSO);
	assert_int_equal(ex.flags, XEN_NETIF_EXTRA_FLAG_MORE);
	nb_rx_fill_response(&p, 2, 2, &rsp);
	memcpy(&ex, &rsp, sizeof(ex));
	assert_int_equal(ex.type, XEN_NETIF_EXTRA_TYPE_HASH);
	assert_int_equal(ex.flags, 0);
	assert_int_equal(ex.u.hash.type, _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
	assert_int_equal(ex.u.hash.value[3], 0x51);
	assert_int_equal(p.slot[3].kind, NB_RX_DATA);
	assert_int_equal(p.slot[5].len, 100);

	/* GSO without a hash (no enabled type applies): pages move down one. */
	assert_int_equal(nb_rx_plan(&c.rx, &l, &gso, h, 54, len, NULL, &p), 0);
	assert_int_equal(p.nslots, 5);
	assert_int_equal(p.extras, 1);
	assert_int_equal(p.shift, 1);
	nb_rx_fill_response(&p, 1, 1, &rsp);
	memcpy(&ex, &rsp, sizeof(ex));
	assert_int_equal(ex.flags, 0);

	/* A small frame with a hash: data, HASH extra. */
	mk_tcp4(h, 60);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &plain, h, 60, 60, &hx, &p), 0);
	assert_int_equal(p.nslots, 2);
	assert_int_equal(p.shift, 0);
	nb_rx_fill_response(&p, 0, 0, &rsp);
	assert_int_equal(rsp.flags, NETRXF_extra_info);
	assert_int_equal(p.slot[1].kind, NB_RX_EXTRA_HASH);

	/* Without the hash layout the hash goes only where a hole is free. */
	nb_rx_layout(&c.rx, false, &l);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &plain, h, 60, 60, &hx, &p), 0);
	assert_true(p.has_hash);
	mk_tcp4(h, len);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &gso, h, 54, len, &hx, &p), 0);
	assert_false(p.has_hash);
	assert_int_equal(p.nslots, 5);
	mk_tcp4(h, 60);

	/* A frontend without SG: one page, one hole for the hash. */
	f.sg = false;
	nb_vif_caps(&f, 1500, &c);
	nb_rx_layout(&c.rx, true, &l);
	assert_int_equal(l.holes, 1);
	assert_int_equal(l.nreqs, 2);
	assert_int_equal(nb_rx_plan(&c.rx, &l, &plain, h, 60, 60, &hx, &p), 0);
	assert_int_equal(p.nslots, 2);
	assert_true(p.has_hash);
}

static void test_caps(void **s)
{
	struct nb_fe_flags f = linux_fe;
	struct nb_vif_caps c;

	nb_vif_caps(&f, 1500, &c);
	assert_int_equal(c.tun_flags, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
	assert_int_equal(c.drain_ms, 10000);
	assert_int_equal(c.stall_ms, 60000);
	assert_int_equal(c.rx.max_frame, 1518);

	f.rx_notify = false;
	nb_vif_caps(&f, 1500, &c);
	assert_int_equal(c.drain_ms, 30);
	assert_int_equal(c.stall_ms, 0);

	f = linux_fe;
	f.ipv6_csum = false;
	nb_vif_caps(&f, 1500, &c);
	assert_int_equal(c.tun_flags, TUN_F_CSUM | TUN_F_TSO4);
	assert_false(c.rx.gso_tcpv6);

	f = linux_fe;
	f.sg = false;
	nb_vif_caps(&f, 1500, &c);
	assert_int_equal(c.tun_flags, TUN_F_CSUM);

	f = (struct nb_fe_flags){ .rx_copy = true, .no_csum_offload = true };
	nb_vif_caps(&f, 1500, &c);
	assert_int_equal(c.tun_flags, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_plain_frame),
		cmocka_unit_test(test_gso_frame),
		cmocka_unit_test(test_gso_not_negotiated),
		cmocka_unit_test(test_jumbo_shift),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_checksum_choice),
		cmocka_unit_test(test_hash_extra),
		cmocka_unit_test(test_caps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
