/*
 * Integration test of toolstack/probe.c's destination capture (the part of
 * `pvnet migrate`'s report that says when the guest's gratuitous ARP,
 * unsolicited NA and first echo reply reach the destination bridge).
 *
 * The capture is not pure logic: it is a forked child reading an AF_PACKET
 * socket on xenbr0 of a host namespace. So this drives probe_start() itself,
 * in three private namespaces shaped like the lab's (a switch with br0, a
 * guest with eth0, a destination host with xenbr0), and writes frames from the
 * guest's MAC onto the destination bridge through a veth port:
 *  - before the suspension (dest_since_ns = 0) nothing counts: the switch
 *    floods the guest's frames from the source host there too, and they are
 *    not the resumed guest's (they used to be taken for its announcements);
 *  - from dest_since_ns on, a GARP, an NA and an echo reply count, each
 *    stamped no earlier than dest_since_ns; frames from other MACs never do;
 *  - an IPv4 frame whose header length points past the frame's end is not an
 *    echo reply (it was read from stale buffer bytes).
 * Needs root and iproute2 (exit 77 otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/util.h"
#include "toolstack/probe.h"

static int pass, fail;
#define CHECK(cond, ...) do { if (cond) { pass++; printf("ok - " __VA_ARGS__); printf("\n"); } \
	else { fail++; printf("not ok - " __VA_ARGS__); printf(" (%s:%d)\n", __FILE__, __LINE__); } } while (0)

/* Named as the lab names them (pvnet-s-SW, pvnet-g-G, pvnet-h-H), unique by pid. */
static char ns_sw[64], ns_g[64], ns_h[64];

static const uint8_t gmac[6] = { 0x00, 0x16, 0x3e, 0x5a, 0x17, 0x01 };
static const uint8_t other[6] = { 0x02, 0x00, 0x00, 0x5a, 0x17, 0x99 };

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	return system(cmd);
}

static void teardown(void)
{
	const char *all[] = { ns_sw, ns_g, ns_h };
	for (int i = 0; i < 3; i++)
		if (all[i][0])
			run("ip netns pids %s | xargs -r kill -9; ip netns del %s", all[i], all[i]);
}

static int setup(void)
{
	unsigned pid = (unsigned)getpid();

	snprintf(ns_sw, sizeof(ns_sw), "pvnet-s-tps%x", pid);
	snprintf(ns_g, sizeof(ns_g), "pvnet-g-tpg%x", pid);
	snprintf(ns_h, sizeof(ns_h), "pvnet-h-tph%x", pid);
	return run("ip netns add %s", ns_sw) || run("ip netns add %s", ns_g) || run("ip netns add %s", ns_h) ||
	       run("ip -n %s link add br0 type bridge && ip -n %s link set br0 up", ns_sw, ns_sw) ||
	       run("ip -n %s link add eth0 type veth peer name p0 && ip -n %s link set eth0 up && "
		   "ip -n %s link set p0 up", ns_g, ns_g, ns_g) ||
	       run("ip -n %s link add xenbr0 type bridge && ip -n %s link add vp type veth peer name vi && "
		   "ip -n %s link set vp master xenbr0 && ip -n %s link set xenbr0 up && "
		   "ip -n %s link set vp up && ip -n %s link set vi up", ns_h, ns_h, ns_h, ns_h, ns_h, ns_h) ||
	       run("ip netns exec %s sh -c 'f=/proc/sys/net/bridge/bridge-nf-call-iptables; "
		   "[ ! -e $f ] || echo 0 > $f; true'", ns_h);
}

/* ---- frames ---------------------------------------------------------------------------- */

static size_t eth(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
	return 14;
}

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t mcast_all[6] = { 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t unicast[6] = { 0x02, 0x00, 0x00, 0x5a, 0x17, 0x02 };

/* Gratuitous ARP request: sender IP = target IP. */
static size_t garp(uint8_t *f, const uint8_t *src)
{
	size_t n = eth(f, bcast, src, 0x0806);
	const uint8_t a[] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	memcpy(f + n, a, sizeof(a));
	memcpy(f + 22, src, 6);
	memcpy(f + 28, "\x0a\x01\x02\x03", 4);
	memset(f + 32, 0, 6);
	memcpy(f + 38, "\x0a\x01\x02\x03", 4);
	return 42;
}

/* Unsolicited neighbour advertisement (ICMPv6 type 136). */
static size_t na(uint8_t *f, const uint8_t *src)
{
	size_t n = eth(f, mcast_all, src, 0x86DD);
	memset(f + n, 0, 40 + 32);
	f[n] = 0x60;
	f[n + 5] = 32;   /* payload length */
	f[n + 6] = 58;   /* ICMPv6 */
	f[n + 7] = 255;
	f[n + 40] = 136;
	return n + 40 + 32;
}

/* IPv4 with header length `ihl` words, protocol `proto`, the byte after
 * the header `l4`, `len` bytes in all; a header that fits is a valid one
 * (total length, checksum), one that does not is cut. */
static size_t ipv4(uint8_t *f, const uint8_t *src, unsigned ihl, uint8_t proto, uint8_t l4, size_t len)
{
	size_t n = eth(f, unicast, src, 0x0800);
	uint32_t sum = 0;

	memset(f + n, 0, len - n);
	f[n] = (uint8_t)(0x40 | ihl);
	f[n + 2] = (uint8_t)((len - n) >> 8);
	f[n + 3] = (uint8_t)(len - n);
	f[n + 8] = 64;
	f[n + 9] = proto;
	memcpy(f + n + 12, "\x0a\x01\x02\x03", 4);
	memcpy(f + n + 16, "\x0a\x01\x02\x01", 4);
	if (n + ihl * 4 >= len)
		return len;
	f[n + ihl * 4] = l4;
	for (unsigned i = 0; i < ihl * 4; i += 2)
		sum += (uint32_t)(f[n + i] << 8 | f[n + i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	f[n + 10] = (uint8_t)(~sum >> 8);
	f[n + 11] = (uint8_t)~sum;
	return len;
}

/* With br_netfilter loaded, a bridge drops IPv4 frames whose header is cut
 * before anything sees them; it is switched off in our namespace only. */
static bool bridge_nf_off(void)
{
	FILE *f = fopen("/proc/sys/net/bridge/bridge-nf-call-iptables", "r");
	int v = 0;

	if (!f)
		return true;
	if (fscanf(f, "%d", &v) != 1)
		v = 1;
	fclose(f);
	return v == 0;
}

static int inject_fd = -1, inject_ifindex;

static void send_frame(const uint8_t *f, size_t len)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = inject_ifindex, .sll_halen = 6 };
	memcpy(sll.sll_addr, f, 6);
	if (sendto(inject_fd, f, len, 0, (struct sockaddr *)&sll, sizeof(sll)) != (ssize_t)len)
		printf("# send of %zu bytes: %s\n", len, strerror(errno));
}

/* Every packet socket of this namespace has read what was queued to it (the
 * capture's socket is the only one that receives), then a little more so
 * that it has also looked at the last frame. 2 s at most. */
static bool capture_drained(void)
{
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen("/proc/thread-self/net/packet", "r");
		char line[256];
		unsigned long rmem, total = 0;
		if (!f)
			return false;
		if (fgets(line, sizeof(line), f))   /* header */
			while (fgets(line, sizeof(line), f))
				if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &rmem) == 1)
					total += rmem;
		fclose(f);
		if (total == 0) {
			usleep(100000);
			return true;
		}
		usleep(10000);
	}
	return false;
}

static int test(void)
{
	struct probe_config pc = { .switch_ns = ns_sw, .guest_ns = ns_g, .guest_if = "eth0", .dest_ns = ns_h,
				   .interval_us = 2000 };
	struct probe_session s;
	struct probe_capture *c;
	uint8_t f[256];
	uint64_t since;
	char p[128];
	int fd;

	memcpy(pc.guest_mac, gmac, 6);
	CHECK(probe_start(&s, &pc) == 0, "probe_start with a destination capture");
	if (!s.res)
		return 1;
	c = &s.res->dest;

	/* Inject from inside the destination host's namespace. */
	snprintf(p, sizeof(p), "/run/netns/%s", ns_h);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && setns(fd, CLONE_NEWNET) == 0, "enter %s", ns_h);
	if (fd >= 0)
		close(fd);
	inject_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);   /* sends only */
	inject_ifindex = (int)if_nametoindex("vi");
	CHECK(inject_fd >= 0 && inject_ifindex > 0, "a packet socket on the bridge's port");

	/* Before the suspension: the guest's frames flooded from the source. */
	send_frame(f, garp(f, gmac));
	send_frame(f, na(f, gmac));
	send_frame(f, ipv4(f, gmac, 5, 1, 0, 42));    /* echo reply */
	send_frame(f, ipv4(f, gmac, 5, 17, 0, 60));   /* UDP */
	CHECK(capture_drained(), "the capture read them");
	CHECK(!c->garp_ns && !c->garps, "a GARP before the suspension is not counted (garps %lu)",
	      (unsigned long)c->garps);
	CHECK(!c->na_ns && !c->nas, "nor an NA (nas %lu)", (unsigned long)c->nas);
	CHECK(!c->first_reply_ns, "nor an echo reply");
	CHECK(!c->first_ip_ns, "nor another IP frame");

	/* The guest is suspended: from now on its frames count. */
	since = pv_now_ns();
	__atomic_store_n(&s.res->dest_since_ns, since, __ATOMIC_RELEASE);
	send_frame(f, garp(f, other));                 /* another station's */
	send_frame(f, ipv4(f, other, 5, 1, 0, 42));
	/* Zeros at byte 74 of the capture's buffer, then an "ICMP" frame of 35
	 * bytes whose header length (60) points there. */
	memset(f, 0, sizeof(f));
	send_frame(f, eth(f, unicast, other, 0x88B6) + 114);
	send_frame(f, ipv4(f, gmac, 15, 1, 0, 35));
	send_frame(f, garp(f, gmac));
	send_frame(f, na(f, gmac));
	send_frame(f, ipv4(f, gmac, 5, 1, 0, 42));     /* the first real echo reply */
	CHECK(capture_drained(), "the capture read them");
	CHECK(c->garps == 1 && c->garp_ns >= since, "the guest's GARP after the suspension counts, and only it "
	      "(garps %lu, %.3f ms after)", (unsigned long)c->garps, ((double)c->garp_ns - (double)since) / 1e6);
	CHECK(c->nas == 1 && c->na_ns >= since, "its NA too (nas %lu)", (unsigned long)c->nas);
	if (bridge_nf_off())
		CHECK(c->first_ip_ns >= since && c->first_ip_ns && c->first_ip_ns <= c->garp_ns,
		      "the cut IPv4 frame is an IP frame, first");
	else
		printf("ok - # SKIP the cut IPv4 frame: br_netfilter drops it here\n");
	CHECK(c->first_reply_ns > c->garp_ns, "the first echo reply is the real one, after the GARP "
	      "(%.3f ms after the GARP)", ((double)c->first_reply_ns - (double)c->garp_ns) / 1e6);
	probe_stop(&s, 0);
	probe_free(&s);
	if (inject_fd >= 0)
		close(inject_fd);
	return 0;
}

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { stopping = sig; }

int main(void)
{
	pid_t kid;
	int st = 0;

	if (geteuid() != 0 || run("command -v ip") != 0) {
		printf("SKIP: needs root and iproute2 (network namespaces)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The test runs in a child, so that the namespaces go whatever it does
	 * (a crash, an abort, meson's SIGTERM at the timeout). */
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (setup() != 0 || stopping) {
		printf("not ok - namespaces %s %s %s\n", ns_sw, ns_g, ns_h);
		teardown();
		return 1;
	}
	kid = fork();
	if (kid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		int r = test();
		printf("%d passed, %d failed\n", pass, fail);
		fflush(stdout);
		_exit(r || fail ? 1 : 0);
	}
	while (kid > 0 && waitpid(kid, &st, 0) < 0) {
		if (errno != EINTR)
			break;
		if (stopping)
			kill(kid, SIGKILL);
	}
	teardown();
	if (kid < 0 || !WIFEXITED(st)) {
		printf("not ok - the test ended abnormally (status 0x%x)\n", st);
		return 1;
	}
	return WEXITSTATUS(st);
}
