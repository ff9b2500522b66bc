/*
 * Integration test of guest/ifwatch.c and guest/announce.c in a private
 * network namespace (unshare): a TAP goes up and down by netlink (`ip`) and by
 * ioctl (`ifconfig`), and the detector must say which; gratuitous ARP and
 * unsolicited NA leave through the TAP with the right bytes. Needs root,
 * /dev/net/tun, iproute2 and net-tools (exit 77 otherwise).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/uio.h>

#include "common/util.h"
#include "guest/announce.h"
#include "guest/ifwatch.h"
#include "netif/link.h"
#include "netif/offload.h"
#include "netif/tap.h"

static int pass, fail;
#define CHECK(cond, ...) do { if (cond) { pass++; printf("ok - " __VA_ARGS__); printf("\n"); } \
	else { fail++; printf("not ok - " __VA_ARGS__); printf(" (%s:%d)\n", __FILE__, __LINE__); } } while (0)

struct seen { int n; bool up[8]; enum gr_how how[8]; };

static void on_change(void *arg, int ifindex, bool up, enum gr_how how)
{
	struct seen *s = arg;
	(void)ifindex;
	if (s->n < 8) {
		s->up[s->n] = up;
		s->how[s->n] = how;
	}
	s->n++;
}

/* Wait up to 2 s for one transition. */
static bool wait_change(struct gr_ifwatch *w, struct seen *s)
{
	int before = s->n;
	for (int i = 0; i < 100 && s->n == before; i++) {
		struct pollfd p = { .fd = gr_ifwatch_fd(w), .events = POLLIN };
		poll(&p, 1, 20);
		gr_ifwatch_read(w, on_change, s);
	}
	return s->n == before + 1;
}

static int run(const char *cmd)
{
	char full[256];
	snprintf(full, sizeof(full), "%s >/dev/null 2>&1", cmd);
	return system(full);
}

/* Read frames from any TAP queue until one of `type` shows up (2 s). */
static ssize_t read_frame(struct nif_tap *t, uint16_t type, uint8_t *buf, size_t len)
{
	for (int tries = 0; tries < 200; tries++) {
		for (unsigned q = 0; q < t->nqueues; q++) {
			struct virtio_net_hdr vh;
			struct iovec iov[2] = { { &vh, sizeof(vh) }, { buf, len } };
			ssize_t n = readv(t->fds[q], iov, 2);
			if (n > (ssize_t)sizeof(vh) + 14 && (buf[12] << 8 | buf[13]) == type)
				return n - (ssize_t)sizeof(vh);
		}
		usleep(10000);
	}
	return -1;
}

static void test_parse(void)
{
	int pid;
	uint64_t t;

	CHECK(gr_ifwatch_parse_line("        ifconfig-10957   [001] .....  1658.057037: sys_ioctl(fd: 4, cmd: 0x8914, arg: 0x7ffc)",
				    &pid, &t) == 0 && pid == 10957 && t == 1658057037000ull,
	      "parse a trace_pipe line with flags");
	CHECK(gr_ifwatch_parse_line("  my-tool name-42 [000]  3.000001: sys_ioctl(fd: 4, cmd: 0x8914)", &pid, &t) == 0 &&
	      pid == 42 && t == 3000001000ull, "parse a comm with spaces and dashes, no flags");
	CHECK(gr_ifwatch_parse_line("garbage", &pid, &t) < 0, "reject garbage");
	/* A forged line (trace_marker is writable): no timestamp the
	 * conversion to nanoseconds cannot hold. */
	CHECK(gr_ifwatch_parse_line("x-12 [000] inf: sys_ioctl(fd: 4, cmd: 0x8914)", &pid, &t) < 0, "reject an infinite timestamp");
	CHECK(gr_ifwatch_parse_line("x-12 [000] nan: sys_ioctl(fd: 4, cmd: 0x8914)", &pid, &t) < 0, "reject a NaN timestamp");
	CHECK(gr_ifwatch_parse_line("x-12 [000] 1e300: sys_ioctl(fd: 4, cmd: 0x8914)", &pid, &t) < 0, "reject a huge timestamp");
	CHECK(gr_ifwatch_parse_line("x-12 [000] ..: something else", &pid, &t) < 0, "reject other events");
}

int main(void)
{
	struct nif_tap tap;
	struct gr_ifwatch *w;
	struct seen s = { 0 };
	struct gr_announce_result res;
	uint8_t mac[6] = { 0x00, 0x16, 0x3e, 0x11, 0x22, 0x33 }, buf[2048];
	ssize_t n;

	test_parse();
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0 ||
	    run("{ command -v ifconfig && command -v ip; }") != 0) {
		printf("SKIP: needs root, /dev/net/tun, ip and ifconfig\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: cannot create a network namespace: %s\n", strerror(errno));
		return 77;
	}
	run("sysctl -w net.ipv6.conf.default.accept_dad=0");
	run("sysctl -w net.ipv6.conf.all.accept_dad=0");
	CHECK(nif_tap_create(&tap, "pvgw0", 2) == 0, "create a TAP");
	CHECK(nif_link_set_mac(tap.ifindex, mac) == 0, "set its MAC");
	w = gr_ifwatch_open("test");
	CHECK(w != NULL, "open the detector");
	if (!w)
		return 1;
	if (gr_ifwatch_why(w))
		printf("# tracefs unusable: %s\n", gr_ifwatch_why(w));
	CHECK(gr_ifwatch_follow(w, tap.ifindex, false) == 0, "follow the TAP");

	run("ip link set pvgw0 up");
	CHECK(wait_change(w, &s) && s.up[0] && s.how[0] == GR_HOW_NETLINK, "ip link set up -> open by netlink");
	run("ifconfig pvgw0 down");
	CHECK(wait_change(w, &s) && !s.up[1] &&
	      s.how[1] == (gr_ifwatch_why(w) ? GR_HOW_UNKNOWN : GR_HOW_IOCTL), "ifconfig down -> close by ioctl");
	run("ifconfig pvgw0 up");
	CHECK(wait_change(w, &s) && s.up[2] &&
	      s.how[2] == (gr_ifwatch_why(w) ? GR_HOW_UNKNOWN : GR_HOW_IOCTL), "ifconfig up -> open by ioctl");
	run("ip link set pvgw0 down");
	CHECK(wait_change(w, &s) && !s.up[3] &&
	      s.how[3] == (gr_ifwatch_why(w) ? GR_HOW_UNKNOWN : GR_HOW_NETLINK), "ip link set down -> close by netlink");
	/* An ioctl on another interface long ago does not count. */
	run("ifconfig lo up");
	usleep((GR_IFWATCH_WINDOW_MS + 200) * 1000);
	run("ip link set pvgw0 up");
	CHECK(wait_change(w, &s) && s.up[4] &&
	      s.how[4] == (gr_ifwatch_why(w) ? GR_HOW_UNKNOWN : GR_HOW_NETLINK), "a stale ioctl record is not used");
	CHECK(s.n == 5, "exactly one callback per transition (%d)", s.n);

	/* An interface brought up before we start following it (but after we
	 * created it) still gives an open. */
	{
		struct nif_tap t2;
		struct seen s2 = { 0 };
		CHECK(nif_tap_create(&t2, "pvgw1", 1) == 0, "create a second TAP");
		run("ip link set pvgw1 up");
		CHECK(gr_ifwatch_follow(w, t2.ifindex, true) == 0, "follow it as freshly created");
		CHECK(wait_change(w, &s2) && s2.up[0] && s2.how[0] == (gr_ifwatch_why(w) ? GR_HOW_UNKNOWN : GR_HOW_NETLINK),
		      "the early up is reported as an open by netlink");
		gr_ifwatch_unfollow(w, t2.ifindex);
		nif_tap_close(&t2);
	}

	/* Announcements. */
	run("ip addr add 192.0.2.10/24 dev pvgw0");
	run("ip addr add 2001:db8::10/64 dev pvgw0 nodad");
	usleep(100000);
	for (unsigned q = 0; q < tap.nqueues; q++)   /* forget router solicitations etc. */
		while (read(tap.fds[q], buf, sizeof(buf)) > 0)
			;
	CHECK(gr_announce(tap.ifindex, mac, &res) >= 2 && res.garp == 1 && res.na >= 1,
	      "announce: %u GARP, %u NA", res.garp, res.na);
	n = read_frame(&tap, 0x0806, buf, sizeof(buf));
	{
		uint8_t want[GR_GARP_LEN];
		struct in_addr ip;
		inet_pton(AF_INET, "192.0.2.10", &ip);
		gr_build_garp(want, sizeof(want), mac, ip);
		CHECK(n >= GR_GARP_LEN && !memcmp(buf, want, GR_GARP_LEN), "the GARP left through the TAP");
		CHECK(buf[21] == 1 && !memcmp(buf + 28, buf + 38, 4), "it is a request with sender IP = target IP");
	}
	n = read_frame(&tap, 0x86dd, buf, sizeof(buf));
	while (n > 0 && !(buf[20] == 58 && buf[54] == 136))
		n = read_frame(&tap, 0x86dd, buf, sizeof(buf));
	CHECK(n == GR_NA_LEN, "an unsolicited NA left through the TAP");
	if (n == GR_NA_LEN) {
		uint32_t sum = nif_csum_add(0, buf + 22, 32);
		uint8_t ph[8] = { 0, 0, 0, 32, 0, 0, 0, 58 };
		sum = nif_csum_add(sum, ph, 8);
		sum = nif_csum_add(sum, buf + 54, 32);
		CHECK(nif_csum_fold(sum) == 0xFFFF, "its ICMPv6 checksum is valid");
		CHECK(buf[58] == 0x20 && buf[21] == 255 && buf[38] == 0xff && buf[39] == 0x02,
		      "Override set, hop limit 255, to ff02::1");
	}
	run("ip link set pvgw0 down");
	wait_change(w, &s);
	/* (IPv6 addresses go away with the link; the IPv4 one stays.) */
	CHECK(gr_announce(tap.ifindex, mac, &res) == 0 && res.failed >= 1 && res.last_err == -ENETDOWN,
	      "announcements are dropped while the interface is down");

	gr_ifwatch_close(w);
	nif_tap_close(&tap);
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
