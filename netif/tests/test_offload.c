/* Unit tests for netif/offload: header parsing, vnet <-> netif mapping, checksums. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "netif/offload.h"

/* Build Ethernet + IPv4 + TCP (20-byte header) + payload. Returns frame length. */
static size_t mk_ipv4_tcp(uint8_t *f, size_t payload, int vlan)
{
	size_t o = 12, ip;
	uint16_t tot = (uint16_t)(20 + 20 + payload);

	memset(f, 0, 14 + 4 + tot);
	memset(f, 0xAA, 6);
	memset(f + 6, 0xBB, 6);
	if (vlan) {
		f[o++] = 0x81; f[o++] = 0x00; f[o++] = 0x00; f[o++] = 0x05;
	}
	f[o++] = 0x08; f[o++] = 0x00;
	ip = o;
	f[ip] = 0x45;
	f[ip + 2] = (uint8_t)(tot >> 8); f[ip + 3] = (uint8_t)tot;
	f[ip + 8] = 64; f[ip + 9] = 6;
	f[ip + 12] = 10; f[ip + 15] = 1; f[ip + 16] = 10; f[ip + 19] = 2;
	f[ip + 20 + 12] = 5 << 4; /* doff */
	for (size_t i = 0; i < payload; i++)
		f[ip + 40 + i] = (uint8_t)(i * 7 + 3);
	return ip + tot;
}

static size_t mk_ipv6_udp_ext(uint8_t *f, size_t payload)
{
	size_t ip = 14;
	uint16_t plen = (uint16_t)(8 + 8 + payload);

	memset(f, 0, 14 + 40 + plen);
	f[12] = 0x86; f[13] = 0xDD;
	f[ip] = 0x60;
	f[ip + 4] = (uint8_t)(plen >> 8); f[ip + 5] = (uint8_t)plen;
	f[ip + 6] = 0;  /* hop-by-hop */
	f[ip + 7] = 64;
	f[ip + 8] = 0xfe; f[ip + 9] = 0x80; f[ip + 23] = 1;
	f[ip + 24] = 0xfe; f[ip + 25] = 0x80; f[ip + 39] = 2;
	f[ip + 40] = 17; /* next: UDP */
	f[ip + 41] = 0;  /* 8 bytes */
	for (size_t i = 0; i < payload; i++)
		f[ip + 56 + i] = (uint8_t)(i + 1);
	return ip + 40 + plen;
}

static void test_parse_ok(void **s)
{
	uint8_t f[2048];
	struct nif_l4info l4;
	size_t n = mk_ipv4_tcp(f, 100, 0);

	assert_int_equal(nif_parse_l4(f, n, n, &l4), 0);
	assert_int_equal(l4.ipver, 4);
	assert_int_equal(l4.l4proto, 6);
	assert_int_equal(l4.csum_start, 34);
	assert_int_equal(l4.csum_offset, 16);
	assert_int_equal(l4.hdr_len, 54);

	n = mk_ipv4_tcp(f, 10, 1);
	assert_int_equal(nif_parse_l4(f, n, n, &l4), 0);
	assert_int_equal(l4.csum_start, 38);

	n = mk_ipv6_udp_ext(f, 33);
	assert_int_equal(nif_parse_l4(f, n, n, &l4), 0);
	assert_int_equal(l4.ipver, 6);
	assert_int_equal(l4.l4proto, 17);
	assert_int_equal(l4.csum_start, 14 + 40 + 8);
	assert_int_equal(l4.csum_offset, 6);
}

static void test_parse_bad(void **s)
{
	uint8_t f[2048];
	struct nif_l4info l4;
	size_t n = mk_ipv4_tcp(f, 100, 0);

	/* Truncated buffer: more bytes needed. */
	assert_int_equal(nif_parse_l4(f, 20, n, &l4), -EMSGSIZE);
	/* The whole L4 header must be in the buffer, not only its start:
	 * a UDP header cut short, and TCP options cut short. */
	{
		uint8_t u[2048];
		size_t un = mk_ipv6_udp_ext(u, 100);
		assert_int_equal(nif_parse_l4(u, 14 + 40 + 8 + 7, un, &l4), -EMSGSIZE);
		assert_int_equal(nif_parse_l4(u, 14 + 40 + 8 + 8, un, &l4), 0);
	}
	f[14 + 20 + 12] = 0x60;   /* doff 24: 4 bytes of options */
	assert_int_equal(nif_parse_l4(f, 14 + 20 + 20, n, &l4), -EMSGSIZE);
	assert_int_equal(nif_parse_l4(f, 14 + 20 + 24, n, &l4), 0);
	f[14 + 20 + 12] = 0x50;
	/* Frame shorter than an Ethernet header. */
	assert_int_equal(nif_parse_l4(f, 10, 10, &l4), -EINVAL);
	/* IHL below 5. */
	f[14] = 0x44;
	assert_int_equal(nif_parse_l4(f, n, n, &l4), -EINVAL);
	f[14] = 0x45;
	/* IP total length past the frame. */
	assert_int_equal(nif_parse_l4(f, n - 1, n - 1, &l4), -EINVAL);
	/* A fragment. */
	f[14 + 6] = 0x20;
	assert_int_equal(nif_parse_l4(f, n, n, &l4), -EPROTONOSUPPORT);
	f[14 + 6] = 0;
	/* TCP data offset below 5. */
	f[14 + 20 + 12] = 4 << 4;
	assert_int_equal(nif_parse_l4(f, n, n, &l4), -EINVAL);
	f[14 + 20 + 12] = 5 << 4;
	/* ICMP. */
	f[14 + 9] = 1;
	assert_int_equal(nif_parse_l4(f, n, n, &l4), -EPROTONOSUPPORT);
	/* ARP ethertype. */
	f[12] = 0x08; f[13] = 0x06;
	assert_int_equal(nif_parse_l4(f, n, n, &l4), -EPROTONOSUPPORT);
	/* Three VLAN tags. */
	memset(f + 12, 0, 16);
	for (int i = 0; i < 3; i++) { f[12 + 4 * i] = 0x81; f[13 + 4 * i] = 0; }
	assert_int_equal(nif_parse_l4(f, 100, 100, &l4), -EPROTONOSUPPORT);
	/* IPv6 extension header chain running past the frame. */
	n = mk_ipv6_udp_ext(f, 0);
	f[14 + 41] = 200;
	assert_int_equal(nif_parse_l4(f, n, n, &l4), -EINVAL);
}

static void test_vnet_roundtrip(void **s)
{
	uint8_t f[2048];
	size_t n = mk_ipv4_tcp(f, 1000, 0);
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448,
		.csum_start = 34, .csum_offset = 16, .hdr_len = 54 }, back;
	struct nif_offload o, o2;
	struct netif_extra_info ex;

	assert_int_equal(nif_offload_from_vnet(&vh, &o), 0);
	assert_true(o.csum_blank);
	assert_int_equal(o.gso_type, XEN_NETIF_GSO_TYPE_TCPV4);
	assert_int_equal(nif_offload_txflags(&o),
			 NETTXF_csum_blank | NETTXF_data_validated | NETTXF_extra_info);
	assert_int_equal(nif_offload_rxflags(&o),
			 NETRXF_csum_blank | NETRXF_data_validated | NETRXF_extra_info);
	nif_gso_extra_fill(&o, &ex);
	assert_int_equal(ex.type, XEN_NETIF_EXTRA_TYPE_GSO);
	assert_int_equal(ex.u.gso.size, 1448);
	assert_int_equal(nif_offload_from_txflags(nif_offload_txflags(&o), &ex, &o2), 0);
	assert_memory_equal(&o, &o2, sizeof(o));
	assert_int_equal(nif_offload_to_vnet(&o2, f, n, n, &back), 0);
	assert_memory_equal(&vh, &back, sizeof(vh));

	/* GSO type must match the frame. */
	o2.gso_type = XEN_NETIF_GSO_TYPE_TCPV6;
	assert_int_equal(nif_offload_to_vnet(&o2, f, n, n, &back), -EINVAL);
	/* Bad extras. */
	ex.u.gso.size = 0;
	assert_int_equal(nif_offload_from_txflags(NETTXF_extra_info, &ex, &o2), -EINVAL);
	ex.u.gso.size = 100;
	ex.u.gso.type = 9;
	assert_int_equal(nif_offload_from_rxflags(NETRXF_extra_info, &ex, &o2), -EINVAL);
	ex.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
	ex.type = XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
	assert_int_equal(nif_offload_from_rxflags(NETRXF_extra_info, &ex, &o2), -EINVAL);
	/* UDP GSO / ECN from a TAP are refused. */
	vh.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	assert_int_equal(nif_offload_from_vnet(&vh, &o), -EOPNOTSUPP);
	vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	assert_int_equal(nif_offload_from_vnet(&vh, &o), -EOPNOTSUPP);
	/* Data-validated only. */
	vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	vh.gso_type = 0;
	assert_int_equal(nif_offload_from_vnet(&vh, &o), 0);
	assert_int_equal(nif_offload_txflags(&o), NETTXF_data_validated);
	assert_int_equal(nif_offload_to_vnet(&o, NULL, 0, 60, &back), 0);
	assert_int_equal(back.flags, VIRTIO_NET_HDR_F_DATA_VALID);
}

/* Independent check: the full checksum of pseudo header + segment is 0xffff. */
static int tcp4_csum_ok(const uint8_t *f, size_t n)
{
	uint32_t sum = 0;
	size_t l4 = 34, len = n - l4;
	uint8_t pseudo[12];

	memcpy(pseudo, f + 26, 8);
	pseudo[8] = 0; pseudo[9] = 6;
	pseudo[10] = (uint8_t)(len >> 8); pseudo[11] = (uint8_t)len;
	sum = nif_csum_add(sum, pseudo, 12);
	sum = nif_csum_add(sum, f + l4, len);
	return nif_csum_fold(sum) == 0xFFFF;
}

static void test_csum(void **s)
{
	uint8_t f[2048], copy[2048];
	size_t n = mk_ipv4_tcp(f, 999, 0); /* odd payload */
	struct nif_l4info l4;
	struct iovec iov[4];

	assert_int_equal(nif_parse_l4(f, n, n, &l4), 0);
	assert_int_equal(nif_csum_write_pseudo(f, n, n, &l4), 0);
	memcpy(copy, f, n);
	/* Whole buffer at once. */
	iov[0] = (struct iovec){ copy, n };
	assert_int_equal(nif_csum_complete_iov(iov, 1, l4.csum_start, l4.csum_offset), 0);
	assert_true(tcp4_csum_ok(copy, n));
	/* Scattered at odd boundaries, field split across iovecs. */
	memcpy(copy, f, n);
	iov[0] = (struct iovec){ copy, 35 };
	iov[1] = (struct iovec){ copy + 35, 16 };
	iov[2] = (struct iovec){ copy + 51, 333 };
	iov[3] = (struct iovec){ copy + 384, n - 384 };
	assert_int_equal(nif_csum_complete_iov(iov, 4, l4.csum_start, l4.csum_offset), 0);
	assert_true(tcp4_csum_ok(copy, n));
	/* Field outside the frame. */
	assert_int_equal(nif_csum_complete_iov(iov, 4, (uint16_t)(n - 1), 16), -EINVAL);
	/* Pseudo header needs the headers. */
	assert_int_equal(nif_csum_write_pseudo(f, 20, n, &l4), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_vnet_roundtrip),
		cmocka_unit_test(test_csum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
