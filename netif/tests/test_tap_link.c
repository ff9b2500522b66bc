/*
 * Integration test for netif/tap and netif/link: runs in a private network
 * namespace (unshare), so every device it makes vanishes with the process.
 * Needs root and /dev/net/tun (exit 77 otherwise).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/if_bridge.h>
#include <linux/virtio_net.h>

#include "netif/link.h"
#include "netif/tests/netns_test.h"
#include "netif/offload.h"
#include "netif/tap.h"

static int pass, fail;
#define CHECK(cond, ...) do { if (cond) { pass++; printf("ok - " __VA_ARGS__); printf("\n"); } \
	else { fail++; printf("not ok - " __VA_ARGS__); printf(" (%s:%d)\n", __FILE__, __LINE__); } } while (0)

struct mon_state { int ifindex; int ups, downs; };
static void on_link(void *arg, int ifindex, unsigned flags, unsigned change, bool deleted)
{
	struct mon_state *m = arg;
	if (ifindex != m->ifindex || deleted || !(change & IFF_UP))
		return;
	if (flags & IFF_UP)
		m->ups++;
	else
		m->downs++;
}

/* Read one frame from any queue within 2 s; returns its length (excluding
 * the vnet header) or -1. */
static ssize_t read_any(struct nif_tap *t, struct virtio_net_hdr *vh, uint8_t *buf, size_t len,
			uint16_t want_type)
{
	struct pollfd pfd[NIF_TAP_MAX_QUEUES];
	for (int tries = 0; tries < 100; tries++) {
		for (unsigned i = 0; i < t->nqueues; i++)
			pfd[i] = (struct pollfd){ .fd = t->fds[i], .events = POLLIN };
		if (poll(pfd, t->nqueues, 2000) <= 0)
			return -1;
		for (unsigned i = 0; i < t->nqueues; i++) {
			struct iovec iov[2] = { { vh, sizeof(*vh) }, { buf, len } };
			ssize_t n;
			if (!(pfd[i].revents & POLLIN))
				continue;
			n = readv(t->fds[i], iov, 2);
			if (n < (ssize_t)sizeof(*vh) + 14)
				continue;
			if ((buf[12] << 8 | buf[13]) == want_type)
				return n - (ssize_t)sizeof(*vh);
		}
	}
	return -1;
}

int main(void)
{
	struct nif_tap tap;
	struct nif_link_info info;
	struct nif_linkmon *mon;
	struct mon_state ms = { 0 };
	struct virtio_net_hdr vh;
	struct nif_addr addrs[8];
	uint8_t buf[65536], mac[6];
	int r, n, br;

	if ((r = nif_test_enter_netns()) != 0)
		return r;

	r = nif_tap_create(&tap, "pvtap0", 4);
	CHECK(r == 0, "create a 4-queue TAP (%s)", strerror(-r));
	if (r < 0)
		return 1;
	CHECK(nif_tap_create(&(struct nif_tap){ 0 }, "pvtap0", 1) == -EEXIST, "a second TAP with the same name is refused");
	CHECK(nif_tap_set_offload(&tap, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0, "set offloads");
	CHECK(nif_link_get(tap.ifindex, &info) == 0 && !strcmp(info.name, "pvtap0") && !(info.flags & IFF_UP),
	      "link is known and down");
	memcpy(mac, info.mac, 6);

	mon = nif_linkmon_open();
	CHECK(mon != NULL, "open a link monitor");
	ms.ifindex = tap.ifindex;
	CHECK(nif_link_set_up(tap.ifindex, true) == 0, "bring the TAP up by netlink");
	usleep(50000);
	CHECK(nif_linkmon_read(mon, on_link, &ms) > 0 && ms.ups == 1, "monitor saw it go up");
	CHECK(nif_link_set_up(tap.ifindex, false) == 0 && nif_link_set_up(tap.ifindex, true) == 0, "down and up again");
	usleep(50000);
	nif_linkmon_read(mon, on_link, &ms);
	CHECK(ms.downs == 1 && ms.ups == 2, "monitor saw down then up");

	CHECK(nif_tap_set_carrier(&tap, false) == 0, "carrier off");
	usleep(20000);
	CHECK(nif_link_get(tap.ifindex, &info) == 0 && !info.carrier, "link reports no carrier");
	CHECK(nif_tap_set_carrier(&tap, true) == 0, "carrier on");
	usleep(20000);
	CHECK(nif_link_get(tap.ifindex, &info) == 0 && info.carrier, "link reports carrier");

	CHECK(nif_link_set_mtu(tap.ifindex, 1400) == 0 && nif_link_get(tap.ifindex, &info) == 0 && info.mtu == 1400, "set MTU");
	CHECK(nif_link_set_mtu(tap.ifindex, 1500) == 0, "restore MTU");
	CHECK(nif_link_set_txqlen(tap.ifindex, 2000) == 0, "set txqlen");
	CHECK(nif_link_set_gso_max_size(tap.ifindex, 65000) == 0, "set gso_max_size");
	mac[5] ^= 1;
	CHECK(nif_link_set_mac(tap.ifindex, mac) == 0 && nif_link_get(tap.ifindex, &info) == 0 &&
	      !memcmp(info.mac, mac, 6), "set MAC");

	if (system("ip addr add 10.9.0.1/24 dev pvtap0 && ip neigh add 10.9.0.2 lladdr 02:00:00:00:00:02 dev pvtap0") != 0)
		fail++;
	n = nif_link_addrs(tap.ifindex, addrs, 8);
	CHECK(n >= 1 && addrs[0].family == AF_INET && addrs[0].addr.v4.s_addr == htonl(0x0A090001), "list the IPv4 address");

	/* The kernel sends a UDP datagram out of the TAP: read it with its header. */
	{
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
		inet_pton(AF_INET, "10.9.0.2", &to.sin_addr);
		sendto(s, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to));
		close(s);
		ssize_t got = read_any(&tap, &vh, buf, sizeof(buf), 0x0800);
		CHECK(got == 14 + 20 + 8 + 5, "read the datagram from a TAP queue (%zd bytes)", got);
		struct nif_l4info l4;
		CHECK(got > 0 && nif_parse_l4(buf, (size_t)got, (size_t)got, &l4) == 0 && l4.l4proto == 17,
		      "parse its headers");
	}

	/* Write an ICMP echo request into a TAP queue: the kernel answers. */
	{
		uint8_t f[98];
		struct virtio_net_hdr zero = { 0 };
		uint32_t sum;
		memset(f, 0, sizeof(f));
		memcpy(f, mac, 6);
		memcpy(f + 6, "\x02\x00\x00\x00\x00\x02", 6);
		f[12] = 0x08;
		f[14] = 0x45; f[16] = 0; f[17] = 84; f[22] = 64; f[23] = 1;
		f[26] = 10; f[27] = 9; f[28] = 0; f[29] = 2;
		f[30] = 10; f[31] = 9; f[32] = 0; f[33] = 1;
		sum = nif_csum_add(0, f + 14, 20);
		f[24] = (uint8_t)(~nif_csum_fold(sum) >> 8); f[25] = (uint8_t)~nif_csum_fold(sum);
		f[34] = 8; f[38] = 0x12; f[39] = 0x34; f[41] = 1;
		sum = nif_csum_add(0, f + 34, 64);
		f[36] = (uint8_t)(~nif_csum_fold(sum) >> 8); f[37] = (uint8_t)~nif_csum_fold(sum);
		struct iovec iov[2] = { { &zero, sizeof(zero) }, { f, sizeof(f) } };
		CHECK(writev(tap.fds[2], iov, 2) == (ssize_t)(sizeof(zero) + sizeof(f)), "write an echo request into queue 2");
		ssize_t got = read_any(&tap, &vh, buf, sizeof(buf), 0x0800);
		CHECK(got == 98 && buf[34] == 0 && buf[38] == 0x12, "the kernel's echo reply comes out");
	}

	CHECK(nif_tap_queue_enable(&tap, 3, false) == 0, "detach queue 3");
	CHECK(nif_tap_queue_enable(&tap, 3, false) == 0, "detaching it again is a no-op");
	CHECK(nif_tap_queue_enable(&tap, 3, true) == 0, "re-attach queue 3");
	CHECK(nif_tap_queue_enable(&tap, 0, false) == 0, "detach queue 0");
	CHECK(nif_tap_set_offload(&tap, TUN_F_CSUM) == 0, "offloads set through another attached queue");
	CHECK(nif_tap_queue_enable(&tap, 0, true) == 0, "re-attach queue 0");
	CHECK(nif_tap_queue_enable(&tap, 9, true) == -EINVAL, "queue out of range refused");

	CHECK(nif_bridge_create("pvbr0") == 0, "create a bridge");
	br = nif_link_index("pvbr0");
	CHECK(br > 0 && nif_link_set_master(tap.ifindex, br) == 0, "enslave the TAP");
	CHECK(nif_link_get(tap.ifindex, &info) == 0 && info.master == br, "the TAP's master is the bridge");
	/* The bridge port's state follows the carrier (through linkwatch,
	 * asynchronously): forwarding with it, disabled without. */
	nif_link_set_up(br, true);
	nif_link_set_up(tap.ifindex, true);
	nif_tap_set_carrier(&tap, true);
	for (int i = 0; i < 200 && nif_link_get(tap.ifindex, &info) == 0 &&
			info.brport_state != BR_STATE_FORWARDING; i++)
		usleep(5000);
	CHECK(info.brport_state == BR_STATE_FORWARDING, "bridge port forwarding with carrier (%d)", info.brport_state);
	nif_tap_set_carrier(&tap, false);
	for (int i = 0; i < 200 && nif_link_get(tap.ifindex, &info) == 0 &&
			info.brport_state != BR_STATE_DISABLED; i++)
		usleep(5000);
	CHECK(info.brport_state == BR_STATE_DISABLED, "bridge port disabled without carrier (%d)", info.brport_state);
	CHECK(nif_link_set_master(tap.ifindex, 0) == 0, "release it");
	CHECK(nif_link_get(tap.ifindex, &info) == 0 && info.brport_state == -1, "no longer a bridge port");
	CHECK(nif_link_delete(br) == 0 && nif_link_index("pvbr0") == -ENODEV, "delete the bridge");
	CHECK(nif_link_get(99999, &info) < 0, "unknown link is an error");

	nif_linkmon_close(mon);
	nif_tap_close(&tap);
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
