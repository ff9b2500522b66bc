/*
 * Integration tests of pvnet-netback: each case starts its own
 * pvnet-xenstored, pvnet-hypervisor and pvnet-netback (tfront.c) in a
 * private network namespace, plays toolstack and frontend against it, and
 * moves real frames through the vif TAP and the bridge.
 * Misbehaviour cases disable one vif ("A") and check the logged reason, the
 * control socket's "disabled"/"reason", the vif's carrier, and that a second,
 * well-behaved vif ("B") on the same daemon keeps passing traffic.
 * Usage: test-netback-live [case-name-substring]. Needs root and
 * /dev/net/tun (exit 77 otherwise). Output: ok / not ok lines and
 * "N passed, N failed".
 */
#include <errno.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <linux/if_bridge.h>
#include <linux/if_tun.h>

#include "common/util.h"
#include "netif/link.h"
#include "netif/tests/netns_test.h"
#include "netback/hash.h"
#include "netback/tests/tfront.h"

static int pass, fail;
static const char *cur;

#define CHECK(cond, ...) do {							\
	if (cond) { pass++; printf("ok - %s: ", cur); printf(__VA_ARGS__); printf("\n"); }	\
	else { fail++; printf("not ok - %s: ", cur); printf(__VA_ARGS__);		\
	       printf(" (%s:%d)\n", __FILE__, __LINE__); }				\
} while (0)

static const uint8_t host_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const struct tf_vif_opts linux_fe = { .nqueues = 1, .num_queues_key = -1 };

/* ---- helpers --------------------------------------------------------------- */

/* Receive the next packet addressed to `dst` (skipping the IPv6 neighbour
 * and MLD chatter of interfaces coming up); returns the queue or < 0. */
static int recv_to(struct tf_vif *v, const uint8_t *dst, uint8_t *buf, size_t cap, struct tf_rxinfo *info,
		   int timeout_ms)
{
	uint64_t end = pv_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		uint64_t now = pv_now_ns();
		int q;

		if (now >= end)
			return -ETIMEDOUT;
		q = tf_rx_recv(v, -1, buf, cap, info, (int)((end - now) / 1000000u) + 1);
		if (q < 0)
			return q;
		if (info->error || info->len < 6 || memcmp(buf, dst, 6) == 0)
			return q;
	}
}

/* The frontend asks for multicast filtering (request-multicast-control,
 * nothing subscribed); true once netback says the filter is on. */
static bool mcast_filter_on(struct tf_env *e, struct tf_vif *v)
{
	char path[200], needle[64];

	snprintf(path, sizeof(path), "%s/request-multicast-control", v->fe);
	snprintf(needle, sizeof(needle), "vif%u.%u: multicast filter on", v->d->domid, v->devid);
	return xs_write(e->xs, XBT_NULL, path, "1", 1) && tf_log_wait(e, needle, 5000);
}

static bool setup_vif(struct tf_env *e, struct tf_vif *v, const struct tf_vif_opts *o)
{
	struct tf_dom *d = tf_dom_new(e);
	int r;

	if (!d) {
		printf("# domain create: %s\n", strerror(errno));
		return false;
	}
	if ((r = tf_vif_add(e, d, 0, v)) < 0 || (r = tf_vif_connect(v, o ? o : &linux_fe, false)) < 0) {
		printf("# vif connect: %s\n", strerror(-r));
		return false;
	}
	return true;
}

/* A UDP frame from the guest arrives unchanged on the host port. */
static bool guest_to_host(struct tf_env *e, struct tf_vif *v, unsigned q, size_t pl, uint8_t seed)
{
	uint8_t f[2048], g[65536];
	struct virtio_net_hdr vh;
	size_t len = tf_mk_udp4(f, host_mac, v->mac, pl, seed);
	int16_t st = 99;
	ssize_t n;

	tf_l4_csum(f, len, false);
	if (tf_tx(v, q, f, len, 0, NULL, 0, &st) < 0 || st != NETIF_RSP_OKAY)
		return false;
	for (int tries = 0; tries < 20; tries++) {
		n = tf_host_recv(e, &vh, g, sizeof(g), host_mac, 2000);
		if (n < 0)
			return false;
		if ((size_t)n == len && memcmp(f, g, len) == 0)
			return true;
	}
	return false;
}

/* A frame sent by the host to the guest's MAC reaches the guest. */
static bool host_to_guest(struct tf_env *e, struct tf_vif *v, size_t pl, uint8_t seed)
{
	uint8_t f[2048], g[70000];
	struct tf_rxinfo info;
	size_t len = tf_mk_udp4(f, v->mac, host_mac, pl, seed);

	tf_l4_csum(f, len, false);
	if (tf_host_send(e, NULL, f, len) < 0)
		return false;
	/* Frames sent earlier may still be queued ahead of it: skip them. */
	for (uint64_t end = pv_now_ns() + 3000000000ull; pv_now_ns() < end;) {
		if (recv_to(v, v->mac, g, sizeof(g), &info, 3000) < 0)
			return false;
		if (info.len == len && memcmp(f, g, len) == 0)
			return true;
	}
	return false;
}

static bool traffic_ok(struct tf_env *e, struct tf_vif *v)
{
	/* Teach the bridge the guest's MAC first. */
	return guest_to_host(e, v, 0, 100, 1) && host_to_guest(e, v, 200, 2);
}

static bool stats_has(struct tf_env *e, const char *vifname, const char *needle)
{
	char cmd[64], *s;
	bool ok;

	snprintf(cmd, sizeof(cmd), "stats %s", vifname);
	s = tf_ctl(e, cmd);
	ok = s && strstr(s, needle);
	if (!ok)
		printf("# stats: %s\n", s ? s : "(none)");
	free(s);
	return ok;
}

static void vif_name(struct tf_vif *v, char *buf, size_t len)
{
	snprintf(buf, len, "vif%u.%u", v->d->domid, v->devid);
}

static bool carrier_now(struct tf_vif *v)
{
	struct nif_link_info li;
	char name[32];
	int idx;

	vif_name(v, name, sizeof(name));
	idx = nif_link_index(name);
	return idx > 0 && nif_link_get(idx, &li) == 0 && li.carrier;
}

/* Wait (up to 2 s) for the vif's carrier to be `on`. */
static bool carrier_is(struct tf_vif *v, bool on)
{
	for (int i = 0; i < 200; i++) {
		if (carrier_now(v) == on)
			return true;
		pv_sleep_ns(10000000);
	}
	return false;
}

/* Wait (up to 2 s) for the vif's bridge port to forward. */
static bool port_forwarding(struct tf_vif *v)
{
	struct nif_link_info li;
	char name[32];

	vif_name(v, name, sizeof(name));
	for (int i = 0; i < 200; i++) {
		int idx = nif_link_index(name);

		if (idx > 0 && nif_link_get(idx, &li) == 0 && li.brport_state == BR_STATE_FORWARDING)
			return true;
		pv_sleep_ns(10000000);
	}
	return false;
}

/* A missing counter reads as 0. */
/* The case runs netback with --map-grants. */
static bool map_grants;

static unsigned long long stat_value(struct tf_env *e, struct tf_vif *v, const char *dir, const char *key)
{
	return tf_vif_stat(e, v, dir, key, 0);
}

/* Vif A misbehaved: disabled with `reason` logged, B still fine. */
static void expect_disabled(struct tf_env *e, struct tf_vif *a, struct tf_vif *b, const char *reason)
{
	char name[32];

	vif_name(a, name, sizeof(name));
	CHECK(tf_log_wait(e, reason, 5000), "log says \"%s\"", reason);
	CHECK(tf_log_wait(e, "fatal error; disabling device", 5000), "log says the device is disabled");
	CHECK(stats_has(e, name, "\"disabled\":true"), "stats: %s disabled", name);
	CHECK(stats_has(e, name, reason), "stats: reason \"%s\"", reason);
	CHECK(carrier_is(a, false), "%s carrier off", name);
	CHECK(traffic_ok(e, b), "the other vif still passes traffic");
	CHECK(tf_be_state(b) == XenbusStateConnected, "the other vif stays Connected");
}

/* ---- good paths ------------------------------------------------------------ */

static void case_handshake(struct tf_env *e)
{
	struct tf_vif v;
	struct nif_link_info li;
	char path[200], name[32], *s, *st;
	static const char *const ones[] = {
		"feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6", "feature-ipv6-csum-offload",
		"feature-rx-copy", "feature-multicast-control", "feature-dynamic-multicast-control",
		"feature-split-event-channels", "feature-ctrl-ring",
	};
	int idx, br;

	if (!setup_vif(e, &v, NULL)) {
		CHECK(0, "connect");
		return;
	}
	for (size_t i = 0; i < PV_ARRAY_SIZE(ones); i++) {
		snprintf(path, sizeof(path), "%s/%s", v.be, ones[i]);
		s = tf_xs_read(e, path);
		CHECK(s && strcmp(s, "1") == 0, "%s = 1", ones[i]);
		free(s);
	}
	snprintf(path, sizeof(path), "%s/feature-rx-flip", v.be);
	s = tf_xs_read(e, path);
	CHECK(s && strcmp(s, "0") == 0, "feature-rx-flip = 0");
	free(s);
	snprintf(path, sizeof(path), "%s/multi-queue-max-queues", v.be);
	s = tf_xs_read(e, path);
	CHECK(s && strcmp(s, "4") == 0, "multi-queue-max-queues = 4 (--max-queues)");
	free(s);
	snprintf(path, sizeof(path), "%s/hotplug-status", v.be);
	s = tf_xs_read(e, path);
	CHECK(s && strcmp(s, "connected") == 0, "hotplug-status = connected");
	free(s);
	/* Connected was written only once the vif was on the bridge, up, with
	 * its carrier on: the guest's gratuitous ARP cannot be lost. */
	vif_name(&v, name, sizeof(name));
	idx = nif_link_index(name);
	br = nif_link_index(e->bridge);
	CHECK(idx > 0 && nif_link_get(idx, &li) == 0, "TAP %s exists", name);
	CHECK(li.master == br, "%s is on %s", name, e->bridge);
	CHECK((li.flags & IFF_UP) && li.carrier, "%s is up with carrier", name);
	CHECK(memcmp(li.mac, "\xfe\xff\xff\xff\xff\xff", 6) == 0, "%s MAC is fe:ff:ff:ff:ff:ff", name);
	CHECK(tf_log_wait(e, "state InitWait", 100) && tf_log_wait(e, "state Connected", 100),
	      "states InitWait then Connected logged");
	CHECK(traffic_ok(e, &v), "traffic both ways");
	CHECK(stat_value(e, &v, "from_guest", "packets") >= 1 && stat_value(e, &v, "to_guest", "packets") >= 1,
	      "stats count packets both ways");
	/* Counters compared with each other: from one answer (chatter to the
	 * new vif moves them between two). */
	st = tf_vif_stats(e, &v);
	CHECK(tf_stat_in(st, "from_guest", "first_ns", 0) > 0 &&
	      tf_stat_in(st, "from_guest", "last_ns", 0) >= tf_stat_in(st, "from_guest", "first_ns", 0),
	      "stats have first/last timestamps");
	free(st);
	/* A frame of at most 128 bytes in one slot is grant-copied, not mapped. */
	CHECK(guest_to_host(e, &v, 0, 20, 9) && stat_value(e, &v, "vif", "copy_batches") >= 1,
	      "small frames go through a grant copy (Linux's XEN_NETBACK_TX_COPY_LEN)");
	st = tf_vif_stats(e, &v);
	CHECK(tf_stat_in(st, "connected_ns", "first_rx_ns", 0) == tf_stat_in(st, "from_guest", "first_ns", 1) &&
	      tf_stat_in(st, "connected_ns", "last_tx_ns", 0) == tf_stat_in(st, "to_guest", "last_ns", 1) &&
	      tf_stat_in(st, "connected_ns", "first_tx_ns", 0) > 0,
	      "first/last_tx/rx_ns as the vif netdev counts (the toolstack's keys)");
	free(st);
}

static bool no_affinity;
static bool hv_copies;   /* netback --hypervisor-copies */

/* The CPUs netback's thread `comm` may run on; false if there is no such
 * thread. */
static bool thread_cpus(pid_t pid, const char *comm, cpu_set_t *set)
{
	char path[128], buf[64];
	DIR *dir;
	struct dirent *de;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(dir = opendir(path)))
		return false;
	while (!found && (de = readdir(dir))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, de->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof(buf), f) && (buf[strcspn(buf, "\n")] = '\0', !strcmp(buf, comm)))
			found = sched_getaffinity((pid_t)atoi(de->d_name), sizeof(*set), set) == 0;
		fclose(f);
	}
	closedir(dir);
	return found;
}

/* Each queue thread runs on the ((domid + devid + queue) mod n)-th of the
 * daemon's n CPUs (docs/netback.md), or anywhere with --no-affinity. */
static void check_affinity(struct tf_env *e, struct tf_vif *v, unsigned nq)
{
	cpu_set_t all, set;
	int cpus[CPU_SETSIZE], n = 0;
	char name[32], comm[48];

	if (sched_getaffinity(e->nbd, sizeof(all), &all) < 0) {
		CHECK(0, "netback's CPUs: %s", strerror(errno));
		return;
	}
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all))
			cpus[n++] = c;
	vif_name(v, name, sizeof(name));
	for (unsigned q = 0; q < nq; q++) {
		int want = cpus[(v->d->domid + v->devid + q) % (unsigned)n];

		snprintf(comm, sizeof(comm), "%s-q%u", name, q);
		if (!thread_cpus(e->nbd, comm, &set)) {
			CHECK(0, "thread %s found", comm);
			continue;
		}
		if (no_affinity)
			CHECK(CPU_EQUAL(&set, &all), "%s: left on all %d CPUs (--no-affinity)", comm, n);
		else
			CHECK(CPU_COUNT(&set) == 1 && CPU_ISSET(want, &set), "%s: pinned to CPU %d", comm, want);
	}
}

static void case_queues(struct tf_env *e, unsigned nq, bool split)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_vif v;
	bool used[TF_MAX_QUEUES] = { 0 };
	unsigned nused = 0, got = 0;
	char want[32], name[32];

	o.nqueues = nq;
	o.split = split;
	if (!setup_vif(e, &v, &o)) {
		CHECK(0, "connect %u queues", nq);
		return;
	}
	snprintf(want, sizeof(want), "\"queues\":%u", nq);
	vif_name(&v, name, sizeof(name));
	CHECK(stats_has(e, name, want), "%u queues connected (%s channels)", nq,
	      split ? "split" : "shared");
	check_affinity(e, &v, nq);
	for (unsigned q = 0; q < nq; q++)
		CHECK(guest_to_host(e, &v, q, 64 + q, (uint8_t)q), "tx on queue %u", q);
	/* Many flows from the host: the TAP spreads them over its queues. */
	for (unsigned flow = 0; flow < 64; flow++) {
		uint8_t f[256], g[4096];
		struct tf_rxinfo info;
		size_t len = tf_mk_udp4(f, v.mac, host_mac, 32, (uint8_t)flow);
		int q;

		f[14 + 20] = (uint8_t)flow;  /* source port: a new flow */
		tf_l4_csum(f, len, false);
		tf_host_send(e, NULL, f, len);
		q = recv_to(&v, v.mac, g, sizeof(g), &info, 2000);
		if (q >= 0 && info.len == len && memcmp(f, g, len) == 0) {
			got++;
			if (!used[q])
				nused++;
			used[q] = true;
		}
	}
	CHECK(got == 64, "64 flows received (%u)", got);
	CHECK(nq == 1 || nused > 1, "frames arrived on %u of %u queues", nused, nq);
	/* Both directions went by grant copy, or (--map-grants) by mappings;
	 * the copies in netback's process, or (--hypervisor-copies) all by
	 * the hypervisor. */
	CHECK(map_grants ? stat_value(e, &v, "vif", "map_batches") >= 2 &&
			   stat_value(e, &v, "vif", "copy_batches") == 0
			 : stat_value(e, &v, "vif", "copy_batches") >= 2 &&
			   stat_value(e, &v, "vif", "map_batches") == 0,
	      "the data went by %s", map_grants ? "mappings" : "grant copies");
	if (!map_grants)
		CHECK(hv_copies ? stat_value(e, &v, "vif", "hv_copy_batches") ==
				  stat_value(e, &v, "vif", "copy_batches")
				: stat_value(e, &v, "vif", "hv_copy_batches") == 0,
		      "copied %s", hv_copies ? "by the hypervisor, every batch" : "in netback's process");
}

static void case_q1(struct tf_env *e) { case_queues(e, 1, false); }
static void case_q2(struct tf_env *e) { case_queues(e, 2, true); }
static void case_q4(struct tf_env *e) { case_queues(e, 4, false); }
static void case_q8(struct tf_env *e) { case_queues(e, 8, true); }

static void case_multislot_tx(struct tf_env *e)
{
	struct tf_vif a, b;
	uint8_t f[2048], g[4096];
	struct virtio_net_hdr vh;
	int16_t st = 99;
	size_t len;
	ssize_t n;

	if (!setup_vif(e, &a, NULL) || !setup_vif(e, &b, NULL)) {
		CHECK(0, "connect");
		return;
	}
	/* 19 data slots: accepted (Linux: 18 frags after the first). */
	len = tf_mk_udp4(f, host_mac, a.mac, 19 * 64 - 42, 7);
	tf_l4_csum(f, len, false);
	CHECK(tf_tx(&a, 0, f, len, 0, NULL, 64, &st) == 0 && st == NETIF_RSP_OKAY, "19 slots accepted");
	n = tf_host_recv(e, &vh, g, sizeof(g), host_mac, 2000);
	CHECK(n == (ssize_t)len && memcmp(f, g, len) == 0, "19-slot frame arrives intact");
	/* 20 and 21 slots: dropped with NETIF_RSP_ERROR, not fatal. */
	len = tf_mk_udp4(f, host_mac, a.mac, 20 * 64 - 42, 8);
	CHECK(tf_tx(&a, 0, f, len, 0, NULL, 64, &st) == 0 && st == NETIF_RSP_ERROR, "20 slots: RSP_ERROR");
	len = tf_mk_udp4(f, host_mac, a.mac, 21 * 64 - 42, 9);
	CHECK(tf_tx(&a, 0, f, len, 0, NULL, 64, &st) == 0 && st == NETIF_RSP_ERROR, "21 slots: RSP_ERROR");
	CHECK(traffic_ok(e, &a), "vif still works after dropped packets");
	CHECK(stat_value(e, &a, "from_guest", "errors") == 2, "two tx errors counted");
	/* 22 slots: "Malicious frontend". */
	len = tf_mk_udp4(f, host_mac, a.mac, 22 * 64 - 42, 10);
	tf_tx(&a, 0, f, len, 0, NULL, 64, &st);
	expect_disabled(e, &a, &b, "Malicious frontend using 20 slots, threshold 20");
}

static struct netif_extra_info gso_extra(uint8_t type, uint16_t size)
{
	struct netif_extra_info ex;

	memset(&ex, 0, sizeof(ex));
	ex.type = XEN_NETIF_EXTRA_TYPE_GSO;
	ex.u.gso.type = type;
	ex.u.gso.size = size;
	return ex;
}

/* Receive n frames on the host port; all of `seglen` bytes (0: any) with
 * good L4 checksums? */
static bool host_segments(struct tf_env *e, unsigned n, size_t seglen)
{
	uint8_t g[4096];
	struct virtio_net_hdr vh;
	unsigned got = 0;
	bool ok = true;

	while (got < n) {
		ssize_t r = tf_host_recv(e, &vh, g, sizeof(g), host_mac, 2000);

		if (r < 0)
			break;
		got++;
		ok &= (!seglen || (size_t)r == seglen) && tf_l4_csum_ok(g, (size_t)r);
	}
	return got == n && ok;
}

static void case_gso_tx(struct tf_env *e)
{
	struct tf_vif v;
	struct netif_extra_info ex;
	uint8_t f[8192];
	int16_t st = 99;
	size_t len;

	if (!setup_vif(e, &v, NULL)) {
		CHECK(0, "connect");
		return;
	}
	/* TCPv4, 3 x 1448, csum_blank: the host port (no offloads) gets three
	 * segments with correct checksums. */
	len = tf_mk_tcp4(f, host_mac, v.mac, 3 * 1448, 3);
	tf_l4_csum(f, len, true);
	ex = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448);
	CHECK(tf_tx(&v, 0, f, len, NETTXF_csum_blank | NETTXF_data_validated, &ex, 0, &st) == 0 &&
	      st == NETIF_RSP_OKAY, "GSO TCPv4 frame accepted (%zu bytes, %zu slots)", len, (len + 4095) / 4096);
	CHECK(host_segments(e, 3, 14 + 20 + 20 + 1448), "segmented into 3 frames with good checksums");

	/* The same without csum_blank: Linux's "gso checksum fixup". */
	len = tf_mk_tcp4(f, host_mac, v.mac, 2 * 1448, 4);
	tf_l4_csum(f, len, false);
	CHECK(tf_tx(&v, 0, f, len, 0, &ex, 0, &st) == 0 && st == NETIF_RSP_OKAY, "GSO without csum_blank accepted");
	CHECK(host_segments(e, 2, 0), "fixed-up GSO frame segmented with good checksums");
	CHECK(stat_value(e, &v, "vif", "gso_csum_fixups") == 1, "gso_csum_fixups counted");

	/* TCPv6. */
	len = tf_mk_tcp6(f, host_mac, v.mac, 2 * 1428, 5);
	tf_l4_csum(f, len, true);
	ex = gso_extra(XEN_NETIF_GSO_TYPE_TCPV6, 1428);
	CHECK(tf_tx(&v, 0, f, len, NETTXF_csum_blank, &ex, 0, &st) == 0 && st == NETIF_RSP_OKAY,
	      "GSO TCPv6 frame accepted");
	CHECK(host_segments(e, 2, 0), "TCPv6 GSO segmented with good checksums");
}

static void case_gso_tx_host_tso(struct tf_env *e)
{
	struct tf_vif v;
	struct netif_extra_info ex = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448);
	uint8_t f[8192], g[65536];
	struct virtio_net_hdr vh;
	int16_t st = 99;
	size_t len;
	ssize_t n;

	if (!setup_vif(e, &v, NULL)) {
		CHECK(0, "connect");
		return;
	}
	len = tf_mk_tcp4(f, host_mac, v.mac, 4 * 1448, 6);
	tf_l4_csum(f, len, true);
	CHECK(tf_tx(&v, 0, f, len, NETTXF_csum_blank | NETTXF_data_validated, &ex, 0, &st) == 0 &&
	      st == NETIF_RSP_OKAY, "GSO frame accepted");
	n = tf_host_recv(e, &vh, g, sizeof(g), host_mac, 2000);
	CHECK(n == (ssize_t)len && vh.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && vh.gso_size == 1448 &&
	      (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && vh.csum_start == 34 && vh.csum_offset == 16,
	      "a TSO host port gets it whole: gso TCPv4/1448, partial checksum at 34+16");
	CHECK(n == (ssize_t)len && memcmp(g + 54, f + 54, len - 54) == 0, "payload intact");
}

static void case_gso_rx(struct tf_env *e)
{
	struct tf_vif v, w;
	struct tf_vif_opts nogso = linux_fe;
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				     .hdr_len = 54, .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
	uint8_t f[8192], g[70000];
	struct tf_rxinfo info;
	size_t len;
	unsigned segs = 0;
	bool ok = true;

	nogso.no_gso4 = nogso.no_gso6 = true;
	if (!setup_vif(e, &v, NULL) || !setup_vif(e, &w, &nogso)) {
		CHECK(0, "connect");
		return;
	}
	/* Teach the bridge both MACs. */
	guest_to_host(e, &v, 0, 60, 1);
	guest_to_host(e, &w, 0, 60, 1);
	len = tf_mk_tcp4(f, v.mac, host_mac, 3 * 1448, 11);
	tf_l4_csum(f, len, true);
	CHECK(tf_host_send(e, &vh, f, len) == 0, "host sends a GSO frame");
	CHECK(recv_to(&v, v.mac, g, sizeof(g), &info, 3000) >= 0, "guest receives it");
	CHECK(info.len == len && memcmp(f, g, len) == 0, "whole, %zu bytes in %u slots", info.len, info.nslots);
	CHECK(info.has_gso && info.gso.u.gso.type == XEN_NETIF_GSO_TYPE_TCPV4 && info.gso.u.gso.size == 1448,
	      "with a GSO extra TCPv4/1448");
	CHECK((info.flags & NETRXF_csum_blank) && (info.flags & NETRXF_extra_info) && (info.flags & NETRXF_more_data),
	      "first response: csum_blank, extra_info, more_data");
	CHECK(info.nslots == 3, "3 slots: data, extra, data");

	/* The frontend without GSO: the kernel segments for it. */
	memcpy(f, w.mac, 6);
	tf_host_send(e, &vh, f, len);
	while (segs < 3 && recv_to(&w, w.mac, g, sizeof(g), &info, 3000) >= 0) {
		segs++;
		ok &= !info.has_gso && info.len == 54 + 1448;
	}
	CHECK(segs == 3 && ok, "non-GSO frontend gets 3 segments");
}

static void case_csum(struct tf_env *e)
{
	struct tf_vif v, nocsum, no6;
	struct tf_vif_opts o1 = linux_fe, o2 = linux_fe;
	uint8_t f[2048], g[4096];
	struct virtio_net_hdr vh;
	struct tf_rxinfo info;
	int16_t st;
	size_t len;
	ssize_t n;

	o1.no_csum_offload = true;
	o2.no_ipv6_csum = true;
	if (!setup_vif(e, &v, NULL) || !setup_vif(e, &nocsum, &o1) || !setup_vif(e, &no6, &o2)) {
		CHECK(0, "connect");
		return;
	}
	guest_to_host(e, &v, 0, 60, 1);
	guest_to_host(e, &nocsum, 0, 60, 1);
	guest_to_host(e, &no6, 0, 60, 1);

	/* tx: csum_blank from the guest, completed on the way to the host. */
	len = tf_mk_udp4(f, host_mac, v.mac, 300, 21);
	tf_l4_csum(f, len, true);
	CHECK(tf_tx(&v, 0, f, len, NETTXF_csum_blank | NETTXF_data_validated, NULL, 0, &st) == 0 && st == 0,
	      "csum_blank UDP frame accepted");
	n = tf_host_recv(e, &vh, g, sizeof(g), host_mac, 2000);
	CHECK(n == (ssize_t)len && tf_l4_csum_ok(g, (size_t)n), "host gets it with a correct checksum");

	/* rx: a partial checksum from the host. */
	vh = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 };
	len = tf_mk_udp4(f, v.mac, host_mac, 300, 22);
	tf_l4_csum(f, len, true);
	tf_host_send(e, &vh, f, len);
	CHECK(recv_to(&v, v.mac, g, sizeof(g), &info, 2000) >= 0 && (info.flags & NETRXF_csum_blank) &&
	      memcmp(f, g, len) == 0, "frontend with offload: csum_blank, checksum left partial");
	memcpy(f, nocsum.mac, 6);
	tf_host_send(e, &vh, f, len);
	CHECK(recv_to(&nocsum, nocsum.mac, g, sizeof(g), &info, 2000) >= 0 && !(info.flags & NETRXF_csum_blank) &&
	      tf_l4_csum_ok(g, info.len), "feature-no-csum-offload: checksum completed, no flag");
	CHECK(stat_value(e, &nocsum, "vif", "sw_csum") >= 1, "sw_csum counted");

	/* IPv6 without feature-ipv6-csum-offload. */
	vh = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 54, .csum_offset = 16 };
	len = tf_mk_tcp6(f, no6.mac, host_mac, 500, 23);
	tf_l4_csum(f, len, true);
	tf_host_send(e, &vh, f, len);
	CHECK(recv_to(&no6, no6.mac, g, sizeof(g), &info, 2000) >= 0 && !(info.flags & NETRXF_csum_blank) &&
	      tf_l4_csum_ok(g, info.len), "no ipv6-csum-offload: IPv6 checksum completed");
	memcpy(f, v.mac, 6);
	tf_host_send(e, &vh, f, len);
	CHECK(recv_to(&v, v.mac, g, sizeof(g), &info, 2000) >= 0 && (info.flags & NETRXF_csum_blank),
	      "ipv6-csum-offload: IPv6 csum_blank");
}

static void case_reconnect(struct tf_env *e)
{
	struct tf_vif v;
	int r;

	if (!setup_vif(e, &v, NULL)) {
		CHECK(0, "connect");
		return;
	}
	CHECK(traffic_ok(e, &v), "traffic before");
	/* A clean close: Closing, Closed. */
	tf_set_fe_state(&v, XenbusStateClosing);
	CHECK(tf_wait_be_state(&v, XenbusStateClosing, 5000), "backend Closing after frontend Closing");
	tf_set_fe_state(&v, XenbusStateClosed);
	CHECK(tf_wait_be_state(&v, XenbusStateClosed, 5000), "backend Closed after frontend Closed");
	tf_vif_release(&v);
	/* The frontend comes back. */
	tf_set_fe_state(&v, XenbusStateInitialising);
	CHECK(tf_wait_be_state(&v, XenbusStateInitWait, 5000), "backend InitWait again");
	r = tf_vif_connect(&v, &linux_fe, false);
	CHECK(r == 0, "reconnected (%s)", strerror(-r));
	CHECK(traffic_ok(e, &v), "traffic after reconnect");

	/* A restart without closing: Connected -> Initialising. */
	tf_set_fe_state(&v, XenbusStateInitialising);
	CHECK(tf_wait_be_state(&v, XenbusStateInitWait, 5000), "backend walked back to InitWait");
	CHECK(tf_log_wait(e, "state Closing", 100) && tf_log_wait(e, "state Closed", 100),
	      "via Closing and Closed");
	tf_vif_release(&v);
	r = tf_vif_connect(&v, &linux_fe, false);
	CHECK(r == 0, "reconnected again");
	CHECK(traffic_ok(e, &v), "traffic after the second reconnect");
}

static void case_domain_destroyed(struct tf_env *e)
{
	struct tf_vif a, b;
	char name[32];

	if (!setup_vif(e, &a, NULL) || !setup_vif(e, &b, NULL)) {
		CHECK(0, "connect");
		return;
	}
	vif_name(&a, name, sizeof(name));
	CHECK(traffic_ok(e, &a), "traffic before");
	CHECK(pv_hv_domain_destroy(e->hv, a.d->domid) == 0, "domain %u destroyed", a.d->domid);
	CHECK(tf_wait_be_state(&a, XenbusStateClosed, 5000), "backend Closed");
	CHECK(tf_log_wait(e, "is gone", 1000), "log says the frontend domain is gone");
	/* The toolstack then removes the directories (libxl does). */
	xs_rm(e->xs, XBT_NULL, a.fe);
	xs_rm(e->xs, XBT_NULL, a.be);
	for (int i = 0; i < 200 && nif_link_index(name) > 0; i++)
		pv_sleep_ns(10000000);
	CHECK(nif_link_index(name) < 0, "%s removed", name);
	CHECK(traffic_ok(e, &b), "the other vif still passes traffic");
}

/* The frontend domain is destroyed while frames flow both ways: netback
 * must stop touching its memory (revoked views fault) and carry on. */
static void case_destroy_under_load(struct tf_env *e)
{
	struct tf_vif a, b;
	uint8_t f[2048];
	size_t len;
	char *s;

	if (!setup_vif(e, &a, NULL) || !setup_vif(e, &b, NULL)) {
		CHECK(0, "connect");
		return;
	}
	guest_to_host(e, &a, 0, 60, 1);
	len = tf_mk_udp4(f, a.mac, host_mac, 1000, 7);
	for (unsigned i = 0; i < 3000; i++) {
		struct tf_queue *q = &a.q[0];
		netif_tx_response_t rsp[64];
		uint8_t g[4096];
		struct tf_rxinfo info;

		if (RING_FREE_REQUESTS(&q->tx) >= 1) {
			RING_IDX idx = q->tx.req_prod_pvt;
			struct netif_tx_request r = { .gref = tf_tx_ref(&a, 0, idx), .size = 1000,
						      .id = (uint16_t)(idx & (PV_NET_TX_RING_SIZE - 1)) };

			memcpy(tf_tx_page(&a, 0, idx), f, 1000);
			tf_tx_raw(&a, 0, &r, 1);
		}
		tf_host_send(e, NULL, f, len);
		tf_tx_responses(&a, 0, rsp, 64, 0, 0);
		(void)tf_rx_recv(&a, 0, g, sizeof(g), &info, 0);
		if (i == 1000 && hv_copies)
			CHECK(stat_value(e, &a, "vif", "hv_copy_batches") > 0, "the hypervisor copies");
		if (i == 1000)
			CHECK(pv_hv_domain_destroy(e->hv, a.d->domid) == 0, "domain destroyed under load");
	}
	CHECK(tf_wait_be_state(&a, XenbusStateClosed, 5000), "backend Closed");
	s = tf_ctl(e, "stats");
	CHECK(s != NULL, "the daemon is alive");
	free(s);
	CHECK(traffic_ok(e, &b), "the other vif still passes traffic");
}

static void case_backend_removed(struct tf_env *e)
{
	struct tf_vif v;
	char name[32];

	if (!setup_vif(e, &v, NULL)) {
		CHECK(0, "connect");
		return;
	}
	vif_name(&v, name, sizeof(name));
	xs_rm(e->xs, XBT_NULL, v.be);
	for (int i = 0; i < 200 && nif_link_index(name) > 0; i++)
		pv_sleep_ns(10000000);
	CHECK(nif_link_index(name) < 0, "backend dir removed: %s removed", name);
	CHECK(tf_log_wait(e, "removed", 1000), "log says removed");
}

/* Add a vif and connect it as `o` says, expecting netback to refuse: the
 * error node's text (malloc'ed, NULL if none came) and the backend Closing. */
static char *connect_refused(struct tf_env *e, const struct tf_vif_opts *o, bool *closing)
{
	struct tf_dom *d = tf_dom_new(e);
	struct tf_vif v;
	char path[200], *s = NULL;

	*closing = false;
	if (!d || tf_vif_add(e, d, 0, &v) < 0 || tf_vif_connect(&v, o, true) < 0)
		return NULL;
	snprintf(path, sizeof(path), "/local/domain/0/error/backend/vif/%u/0/error", d->domid);
	for (int t = 0; t < 300 && !(s = tf_xs_read(e, path)); t++)
		pv_sleep_ns(10000000);
	*closing = tf_wait_be_state(&v, XenbusStateClosing, 3000);
	return s;
}

static void case_queue_count(struct tf_env *e)
{
	static const struct { int key; unsigned nq; bool flat; const char *err; } cases[] = {
		{ 9, 9, false, "22 guest requested 9 queues, exceeding the maximum of 8." },
		{ 0, 1, false, "22 guest requested 0 queues" },
		{ 2, 2, true, "/queue-0/ring-ref" },
		{ 1, 2, false, "2 reading /local/domain/" },
	};
	struct tf_vif b;

	if (!setup_vif(e, &b, NULL)) {
		CHECK(0, "connect");
		return;
	}
	for (size_t i = 0; i < PV_ARRAY_SIZE(cases); i++) {
		struct tf_vif_opts o = linux_fe;
		bool closing;
		char *s;

		o.num_queues_key = cases[i].key;
		o.nqueues = cases[i].nq;
		o.flat_keys = cases[i].flat;
		o.skip_keys = cases[i].key == 1;
		s = connect_refused(e, &o, &closing);
		CHECK(s && strstr(s, cases[i].err), "error node: \"%s\" (want \"%s\")", s ? s : "(none)",
		      cases[i].err);
		CHECK(closing, "backend Closing");
		free(s);
	}
	CHECK(traffic_ok(e, &b), "a well-behaved vif keeps passing traffic");
}

static void case_bad_ring_ref(struct tf_env *e)
{
	/* Queue 0's tx ring ref is bad; with 4 queues the other three were set
	 * up in parallel and must be torn down again. */
	for (unsigned nq = 1; nq <= 4; nq += 3) {
		struct tf_vif_opts o = linux_fe;
		bool closing;
		char *s;

		o.bad_tx_ring_ref = 4000;
		o.nqueues = nq;
		s = connect_refused(e, &o, &closing);
		CHECK(s && strstr(s, "mapping shared-frames 4000/"), "%u queue(s): error node: %s", nq,
		      s ? s : "(none)");
		CHECK(closing, "backend Closing");
		free(s);
	}
}

static void case_no_bridge(struct tf_env *e)
{
	struct tf_dom *d = tf_dom_new(e);
	struct tf_vif v;
	char path[200], *s;

	if (!d || tf_vif_add_bridge(e, d, 0, &v, "nosuchbr0") < 0 || tf_vif_connect(&v, &linux_fe, true) < 0) {
		CHECK(0, "set-up");
		return;
	}
	snprintf(path, sizeof(path), "%s/hotplug-status", v.be);
	CHECK(tf_xs_wait(e, path, "error", 3000), "hotplug-status = error");
	snprintf(path, sizeof(path), "%s/hotplug-error", v.be);
	s = tf_xs_read(e, path);
	CHECK(s && strcmp(s, "bridge nosuchbr0 not found") == 0, "hotplug-error: %s", s ? s : "(none)");
	free(s);
	CHECK(tf_log_wait(e, "connected vif", 3000), "the rings were connected");
	CHECK(tf_be_state(&v) == XenbusStateInitWait, "but Connected is not written without hotplug-status");
}

/* Backend directories a toolstack got wrong: refused with Linux's errors. */
static void case_bad_toolstack(struct tf_env *e)
{
	static const struct { const char *keys; const char *err; } cases[] = {
		{ "online=1", "2 reading other end details from backend/vif/" },
		{ "online=1 frontend-id=99 frontend=/local/domain/99/device/vif/0", "frontend-id 99 does not match" },
		{ "online=1 frontend-id=@D frontend=/nowhere/at/all", "missing or inaccessible" },
		{ "online=1 frontend-id=@D frontend=@F", "2 reading handle" },
	};
	struct tf_vif b;

	if (!setup_vif(e, &b, NULL)) {
		CHECK(0, "connect");
		return;
	}
	for (size_t i = 0; i < PV_ARRAY_SIZE(cases); i++) {
		unsigned domid = 200 + (unsigned)i;
		char be[100], fe[100], path[200], keys[200], *s, *tok, *save;

		snprintf(be, sizeof(be), "/local/domain/0/backend/vif/%u/0", domid);
		snprintf(fe, sizeof(fe), "/local/domain/%u/device/vif/0", domid);
		snprintf(path, sizeof(path), "%s/state", fe);
		xs_write(e->xs, XBT_NULL, path, "1", 1);
		pv_strlcpy(keys, cases[i].keys, sizeof(keys));
		for (tok = strtok_r(keys, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			char *eq = strchr(tok, '='), val[100];

			*eq = '\0';
			if (strcmp(eq + 1, "@D") == 0)
				snprintf(val, sizeof(val), "%u", domid);
			else if (strcmp(eq + 1, "@F") == 0)
				pv_strlcpy(val, fe, sizeof(val));
			else
				pv_strlcpy(val, eq + 1, sizeof(val));
			snprintf(path, sizeof(path), "%s/%s", be, tok);
			xs_write(e->xs, XBT_NULL, path, val, (unsigned)strlen(val));
		}
		snprintf(path, sizeof(path), "%s/state", be);
		xs_write(e->xs, XBT_NULL, path, "1", 1);
		snprintf(path, sizeof(path), "/local/domain/0/error/backend/vif/%u/0/error", domid);
		s = NULL;
		for (int t = 0; t < 300 && !(s = tf_xs_read(e, path)); t++)
			pv_sleep_ns(10000000);
		CHECK(s && strstr(s, cases[i].err), "error node: \"%s\" (want \"%s\")", s ? s : "(none)",
		      cases[i].err);
		free(s);
	}
	CHECK(traffic_ok(e, &b), "a well-behaved vif keeps passing traffic");
}

static void case_bad_ring_prod(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	bool closing;
	char *s;

	o.bad_ring_prod = true;
	s = connect_refused(e, &o, &closing);
	CHECK(s && strncmp(s, "5 mapping shared-frames", 23) == 0,
	      "req_prod - rsp_prod > RING_SIZE at connect: -EIO (%s)", s ? s : "(none)");
	CHECK(closing, "backend Closing");
	free(s);
}

static void case_no_rx_copy(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_vif v;

	o.no_rx_copy = true;
	CHECK(setup_vif(e, &v, &o), "a frontend without request-rx-copy still connects (Linux ignores it)");
	CHECK(tf_log_wait(e, "does not request rx-copy", 1000), "and it is logged");
	CHECK(traffic_ok(e, &v), "with rx-copy semantics");
}

/* SIGTERM: every vif disconnected, walked to Closed, its TAP deleted. */
static void case_sigterm(struct tf_env *e)
{
	struct tf_vif v;
	char name[32];

	if (!setup_vif(e, &v, NULL)) {
		CHECK(0, "connect");
		return;
	}
	vif_name(&v, name, sizeof(name));
	kill(e->nbd, SIGTERM);
	CHECK(waitpid(e->nbd, NULL, 0) == e->nbd, "netback exits on SIGTERM");
	e->nbd = 0;
	CHECK(tf_be_state(&v) == XenbusStateClosed, "backend state Closed");
	CHECK(nif_link_index(name) < 0, "%s deleted", name);
	CHECK(tf_log_wait(e, "stopped", 100), "log says stopped");
}

static void case_multicast(struct tf_env *e)
{
	struct tf_vif v;
	static const uint8_t group[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
	uint8_t f[256], g[4096];
	struct tf_rxinfo info;
	struct netif_tx_request req[2];
	struct netif_extra_info ex;
	netif_tx_response_t rsp[2];
	size_t len;
	bool got;

	if (!setup_vif(e, &v, NULL)) {
		CHECK(0, "connect");
		return;
	}
	CHECK(mcast_filter_on(e, &v), "netback filters multicast once asked");
	len = tf_mk_udp4(f, group, host_mac, 40, 1);
	tf_host_send(e, NULL, f, len);
	CHECK(recv_to(&v, group, g, sizeof(g), &info, 500) < 0, "multicast filtered while not subscribed");
	/* MCAST_ADD: a request with only an extra. */
	memset(req, 0, sizeof(req));
	req[0].flags = NETTXF_extra_info;
	req[0].id = 1;
	memset(&ex, 0, sizeof(ex));
	ex.type = XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
	memcpy(ex.u.mcast.addr, group, 6);
	memcpy(&req[1], &ex, sizeof(ex));
	tf_tx_raw(&v, 0, req, 2);
	CHECK(tf_tx_responses(&v, 0, rsp, 2, 2, 2000) == 2 && rsp[0].status == NETIF_RSP_OKAY &&
	      rsp[1].status == NETIF_RSP_NULL, "MCAST_ADD answered OKAY + NULL");
	tf_host_send(e, NULL, f, len);
	got = recv_to(&v, group, g, sizeof(g), &info, 2000) >= 0 && memcmp(g, group, 6) == 0;
	CHECK(got, "multicast delivered once subscribed");
	ex.type = XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
	memcpy(&req[1], &ex, sizeof(ex));
	tf_tx_raw(&v, 0, req, 2);
	tf_tx_responses(&v, 0, rsp, 2, 2, 2000);
	tf_host_send(e, NULL, f, len);
	CHECK(recv_to(&v, group, g, sizeof(g), &info, 500) < 0, "filtered again after MCAST_DEL");
}

static void case_no_rx_notify(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_vif v;
	uint8_t f[256], g[4096];
	struct tf_rxinfo info;
	size_t len;

	o.no_rx_notify = true;
	if (!setup_vif(e, &v, &o)) {
		CHECK(0, "connect");
		return;
	}
	CHECK(traffic_ok(e, &v), "traffic without feature-rx-notify");
	/* Use up every posted buffer without reposting... */
	guest_to_host(e, &v, 0, 60, 1);
	len = tf_mk_udp4(f, v.mac, host_mac, 40, 3);
	for (unsigned i = 0; i < PV_NET_RX_RING_SIZE + 8; i++)
		tf_host_send(e, NULL, f, len);
	/* ...the frames that found no buffer for 30 ms are dropped. */
	for (int t = 0; t < 300 && stat_value(e, &v, "to_guest", "dropped") < 1; t++)
		pv_sleep_ns(10000000);
	CHECK(stat_value(e, &v, "to_guest", "dropped") >= 1, "frames waiting > 30 ms dropped (drain)");
	while (recv_to(&v, v.mac, g, sizeof(g), &info, 100) >= 0)
		;
	CHECK(host_to_guest(e, &v, 100, 9), "new frames delivered once buffers are back (polled)");
}

static void case_rx_stall(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_vif v;
	uint8_t f[256];
	size_t len;

	o.rx_post = 20;
	if (!setup_vif(e, &v, &o)) {
		CHECK(0, "connect");
		return;
	}
	guest_to_host(e, &v, 0, 60, 1);
	/* Fill the few posted buffers and keep sending: the queue blocks. */
	len = tf_mk_udp4(f, v.mac, host_mac, 40, 3);
	for (int i = 0; i < 40; i++)
		tf_host_send(e, NULL, f, len);
	CHECK(tf_log_wait(e, "Guest Rx stalled", 3000), "\"Guest Rx stalled\" after the stall timeout");
	CHECK(carrier_is(&v, false), "carrier off while stalled");
	CHECK(stat_value(e, &v, "vif", "rx_stalls") == 1, "rx_stalls counted");
	tf_rx_post(&v, 0, PV_NET_RX_RING_SIZE);
	CHECK(tf_log_wait(e, "Guest Rx ready", 3000), "\"Guest Rx ready\" once buffers are posted");
	CHECK(carrier_is(&v, true), "carrier back on");
	/* The kernel re-enables the bridge port after the carrier, on its own
	 * time (linkwatch): a frame sent before that is dropped by the bridge. */
	CHECK(port_forwarding(&v), "the bridge port forwards again");
	CHECK(host_to_guest(e, &v, 80, 4), "frames flow again");
}

static void case_rate(struct tf_env *e)
{
	struct tf_vif v;
	char path[200], needle[64];
	unsigned got = 0;

	if (!setup_vif(e, &v, NULL)) {
		CHECK(0, "connect");
		return;
	}
	/* 150000 bytes per 200 ms: 200 frames of 1400 bytes need a second window. */
	snprintf(path, sizeof(path), "%s/rate", v.be);
	snprintf(needle, sizeof(needle), "vif%u.%u: rate 150000 bytes per 200000 us", v.d->domid, v.devid);
	CHECK(xs_write(e->xs, XBT_NULL, path, "150000,200000", 13) && tf_log_wait(e, needle, 5000),
	      "netback applies the new rate");
	for (unsigned i = 0; i < 200; i++) {
		uint8_t f[1500];
		size_t len = tf_mk_udp4(f, host_mac, v.mac, 1400 - 42, (uint8_t)i);
		int16_t st;

		if (tf_tx(&v, 0, f, len, 0, NULL, 0, &st) == 0 && st == NETIF_RSP_OKAY)
			got++;
	}
	CHECK(got == 200, "all 200 frames sent (%u)", got);
	CHECK(stat_value(e, &v, "vif", "credit_waits") >= 1, "the queue waited for credit (rate applied live)");
}

/* ---- the control ring ---------------------------------------------------------- */

static const uint8_t ms_key[NB_HASH_KEY_SIZE] = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
	0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
	0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

/* Host -> guest TCP frames of `n` flows (source port 1000 + 7 * flow,
 * destination 80 + flow); for each the queue it arrived on goes in got[].
 * false if one did not arrive. */
static bool send_flows(struct tf_env *e, struct tf_vif *v, unsigned n, uint8_t frames[][128],
		       size_t *lens, int *got, struct tf_rxinfo *infos)
{
	static uint8_t g[70000];

	for (unsigned i = 0; i < n; i++) {
		uint8_t *f = frames[i];
		struct tf_rxinfo info;
		size_t len = tf_mk_tcp4(f, v->mac, host_mac, 16, (uint8_t)i);
		uint16_t sp = (uint16_t)(1000 + 7 * i), dp = (uint16_t)(80 + i);

		f[34] = (uint8_t)(sp >> 8);
		f[35] = (uint8_t)sp;
		f[36] = (uint8_t)(dp >> 8);
		f[37] = (uint8_t)dp;
		tf_l4_csum(f, len, false);
		lens[i] = len;
		got[i] = -1;
		if (tf_host_send(e, NULL, f, len) < 0)
			return false;
		for (uint64_t end = pv_now_ns() + 3000000000ull; pv_now_ns() < end && got[i] < 0;) {
			int q = recv_to(v, v->mac, g, sizeof(g), &info, 3000);

			if (q < 0)
				return false;
			if (info.len == len && memcmp(g, f, len) == 0) {
				got[i] = q;
				infos[i] = info;
			}
		}
		if (got[i] < 0)
			return false;
	}
	return true;
}

/* Every flow arrived on the queue the frontend's own hash and table say
 * (h: what it configured), with the HASH extra that hash gives, or none. */
static bool flows_follow(struct tf_env *e, struct tf_vif *v, const struct nb_hash *h, unsigned *distinct)
{
	uint8_t frames[16][128];
	struct tf_rxinfo infos[16];
	size_t lens[16];
	int got[16];
	unsigned seen = 0;
	bool ok = true;

	if (!send_flows(e, v, 16, frames, lens, got, infos))
		return false;
	for (unsigned i = 0; i < 16; i++) {
		uint32_t hash = 0;
		unsigned type, want;

		if (!nb_hash_frame(h, frames[i], lens[i], &hash, &type)) {
			hash = 0;
			if (infos[i].has_hash) {
				printf("# flow %u: a HASH extra where no hash applies\n", i);
				ok = false;
			}
		} else if (!infos[i].has_hash || infos[i].hash.u.hash.type != type ||
			   infos[i].hash.u.hash.algorithm != XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ ||
			   memcmp(infos[i].hash.u.hash.value, (uint8_t[4]){ (uint8_t)hash, (uint8_t)(hash >> 8),
					  (uint8_t)(hash >> 16), (uint8_t)(hash >> 24) }, 4) != 0) {
			printf("# flow %u: HASH extra missing or wrong (want %#x type %u)\n", i, hash, type);
			ok = false;
		}
		want = nb_hash_queue(h, hash);
		if (h->alg != XEN_NETIF_CTRL_HASH_ALGORITHM_NONE && (unsigned)got[i] != want) {
			printf("# flow %u: queue %d, want %u (hash %#x)\n", i, got[i], want, hash);
			ok = false;
		}
		seen |= 1u << got[i];
	}
	*distinct = (unsigned)__builtin_popcount(seen);
	return ok;
}

/* A GSO frame from the host while a hash is in force: data, the GSO extra
 * (flag MORE), the HASH extra, data; whole. */
static void gso_with_hash(struct tf_env *e, struct tf_vif *v, const struct nb_hash *h)
{
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				     .hdr_len = 54, .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
	static uint8_t f[16384], g[70000];
	struct tf_rxinfo info;
	size_t len = tf_mk_tcp4(f, v->mac, host_mac, 6 * 1448, 21);
	uint32_t hash = 0;
	unsigned type = 0;

	tf_l4_csum(f, len, true);
	CHECK(nb_hash_frame(h, f, len, &hash, &type), "the GSO frame hashes");
	CHECK(tf_host_send(e, &vh, f, len) == 0, "host sends a GSO frame");
	for (uint64_t end = pv_now_ns() + 3000000000ull; pv_now_ns() < end;)
		if (recv_to(v, v->mac, g, sizeof(g), &info, 3000) < 0 || (info.len == len && memcmp(f, g, len) == 0))
			break;
	CHECK(info.len == len && memcmp(f, g, len) == 0, "guest receives it whole (%zu bytes, %u slots)", info.len,
	      info.nslots);
	CHECK(info.has_gso && (info.gso.flags & XEN_NETIF_EXTRA_FLAG_MORE) && info.has_hash &&
	      info.hash.u.hash.type == type && info.hash.u.hash.value[0] == (uint8_t)hash,
	      "GSO extra (more) then HASH extra %#x", hash);
	CHECK(info.nslots == (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP ? 5u : 4u), "%u slots", info.nslots);
}

/* The same while only IPv6 is hashed: no HASH extra, the pages moved into
 * the slot the layout kept for it. */
static void gso_without_hash(struct tf_env *e, struct tf_vif *v)
{
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				     .hdr_len = 54, .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
	static uint8_t f[16384], g[70000];
	struct tf_rxinfo info = { 0 };
	size_t len = tf_mk_tcp4(f, v->mac, host_mac, 6 * 1448, 22);

	tf_l4_csum(f, len, true);
	CHECK(tf_host_send(e, &vh, f, len) == 0, "host sends a GSO frame");
	for (uint64_t end = pv_now_ns() + 3000000000ull; pv_now_ns() < end;)
		if (recv_to(v, v->mac, g, sizeof(g), &info, 3000) < 0 || (info.len == len && memcmp(f, g, len) == 0))
			break;
	CHECK(info.len == len && memcmp(f, g, len) == 0, "no type applies: whole (%zu bytes)", info.len);
	CHECK(info.has_gso && !(info.gso.flags & XEN_NETIF_EXTRA_FLAG_MORE) && !info.has_hash && info.nslots == 4,
	      "GSO extra only, 4 slots (%u)", info.nslots);
}

#define CTRL(v, type, d0, d1, d2, data) tf_ctrl(v, XEN_NETIF_CTRL_TYPE_##type, d0, d1, d2, data, 3000)

static void case_ctrl_ring(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_vif v;
	struct nb_hash h;
	uint32_t data = 0, *ent;
	unsigned distinct = 0;
	char path[200], *feat;

	o.nqueues = 4;
	o.ctrl_ring = true;
	if (!setup_vif(e, &v, &o) || !mcast_filter_on(e, &v)) {
		CHECK(0, "connect with a control ring");
		return;
	}
	snprintf(path, sizeof(path), "%s/feature-ctrl-ring", v.be);
	feat = tf_xs_read(e, path);
	CHECK(feat && strcmp(feat, "1") == 0, "feature-ctrl-ring = 1");
	free(feat);
	CHECK(tf_log_wait(e, "control ring", 3000), "netback says the vif has a control ring");
	nb_hash_init(&h, 4);
	CHECK(CTRL(&v, GET_HASH_FLAGS, 0, 0, 0, &data) == XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED,
	      "no hash flags before an algorithm");
	CHECK(CTRL(&v, SET_HASH_FLAGS, 1, 0, 0, NULL) == XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
	      "flags refused before an algorithm");
	CHECK(CTRL(&v, SET_HASH_ALGORITHM, 7, 0, 0, NULL) == XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
	      "unknown algorithm refused");
	CHECK(CTRL(&v, SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ, 0, 0, NULL) == 0,
	      "Toeplitz");
	h.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
	CHECK(CTRL(&v, GET_HASH_FLAGS, 0, 0, 0, &data) == 0 && data == NB_HASH_TYPES,
	      "supported types %#x", data);
	h.flags = XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
	CHECK(CTRL(&v, SET_HASH_FLAGS, h.flags, 0, 0, NULL) == 0, "IPv4 and IPv4+TCP enabled");
	memcpy(v.ctrl.data, ms_key, sizeof(ms_key));
	memcpy(h.key, ms_key, sizeof(ms_key));
	CHECK(CTRL(&v, SET_HASH_KEY, v.ctrl.data_ref, NB_HASH_KEY_SIZE, 0, NULL) == 0, "key set");
	/* No table yet: hash % 4; every frame with its HASH extra. */
	CHECK(flows_follow(e, &v, &h, &distinct), "16 flows on the queues hash %% 4 gives, HASH extras right");
	gso_with_hash(e, &v, &h);
	CHECK(CTRL(&v, SET_HASH_FLAGS, XEN_NETIF_CTRL_HASH_TYPE_IPV6, 0, 0, NULL) == 0, "only IPv6 hashed");
	gso_without_hash(e, &v);
	CHECK(CTRL(&v, SET_HASH_FLAGS, h.flags, 0, 0, NULL) == 0, "IPv4 and IPv4+TCP again");
	CHECK(CTRL(&v, GET_HASH_MAPPING_SIZE, 0, 0, 0, &data) == 0 && data == NB_HASH_MAPPING_MAX,
	      "table size up to %u", data);
	h.size = 8;
	CHECK(CTRL(&v, SET_HASH_MAPPING_SIZE, 8, 0, 0, NULL) == 0, "an 8-entry table");
	ent = (uint32_t *)(void *)v.ctrl.data;
	for (unsigned i = 0; i < 8; i++)
		ent[i] = h.mapping[i] = (i * 3 + 1) % 4;
	CHECK(CTRL(&v, SET_HASH_MAPPING, v.ctrl.data_ref, 8, 0, NULL) == 0, "table written");
	CHECK(flows_follow(e, &v, &h, &distinct), "16 flows on the queues the table gives");
	for (unsigned i = 0; i < 8; i++)
		ent[i] = h.mapping[i] = 2;
	CHECK(CTRL(&v, SET_HASH_MAPPING, v.ctrl.data_ref, 8, 0, NULL) == 0, "every entry queue 2");
	CHECK(flows_follow(e, &v, &h, &distinct) && distinct == 1, "16 flows all on queue 2");

	/* Bad requests: refused, nothing changes. */
	ent[0] = 4;
	CHECK(CTRL(&v, SET_HASH_MAPPING, v.ctrl.data_ref, 1, 3, NULL) == XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
	      "an entry naming queue 4 of 4 refused");
	CHECK(CTRL(&v, SET_HASH_MAPPING, v.ctrl.data_ref, 2, 7, NULL) == XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
	      "entries past the table refused");
	CHECK(CTRL(&v, SET_HASH_MAPPING, v.ctrl.data_ref, 1, 0xffffffffu, NULL) ==
	      XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER, "a wrapping offset refused");
	CHECK(CTRL(&v, SET_HASH_MAPPING, 9999, 1, 0, NULL) == XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
	      "a table behind a bad grant refused");
	CHECK(CTRL(&v, SET_HASH_KEY, v.ctrl.data_ref, NB_HASH_KEY_SIZE + 1, 0, NULL) ==
	      XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER, "a 41-byte key refused");
	CHECK(CTRL(&v, SET_HASH_KEY, 9999, 8, 0, NULL) == XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
	      "a key behind a bad grant refused");
	CHECK(CTRL(&v, SET_HASH_MAPPING_SIZE, 129, 0, 0, NULL) == XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
	      "a 129-entry table refused");
	CHECK(tf_ctrl(&v, XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 0, 0, 0, NULL, 3000) ==
	      XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED, "static grant mappings not supported");
	CHECK(tf_ctrl(&v, 999, 0, 0, 0, NULL, 3000) == XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED,
	      "unknown request not supported");
	CHECK(flows_follow(e, &v, &h, &distinct) && distinct == 1, "16 flows still all on queue 2");

	/* Algorithm NONE: the TAP chooses by flow again. */
	CHECK(CTRL(&v, SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_NONE, 0, 0, NULL) == 0, "hash off");
	h.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
	CHECK(flows_follow(e, &v, &h, &distinct) && distinct > 1, "16 flows spread over %u queues", distinct);
	CHECK(tf_be_state(&v) == XenbusStateConnected, "still Connected");
	CHECK(stat_value(e, &v, "vif", "spurious_events") < 16, "no storm counted");
}

/* A reconnect starts without a hash: the table of the first connection
 * (every flow to queue 1) is gone with it. */
static void case_ctrl_reconnect(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_vif v;
	struct nb_hash h;
	uint32_t *ent;
	unsigned distinct = 0;

	o.nqueues = 4;
	o.ctrl_ring = true;
	if (!setup_vif(e, &v, &o) || !mcast_filter_on(e, &v)) {
		CHECK(0, "connect with a control ring");
		return;
	}
	nb_hash_init(&h, 4);
	h.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
	h.size = 1;
	h.mapping[0] = 1;
	ent = (uint32_t *)(void *)v.ctrl.data;
	ent[0] = 1;
	CHECK(CTRL(&v, SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ, 0, 0, NULL) == 0 &&
	      CTRL(&v, SET_HASH_MAPPING_SIZE, 1, 0, 0, NULL) == 0 &&
	      CTRL(&v, SET_HASH_MAPPING, v.ctrl.data_ref, 1, 0, NULL) == 0, "every flow to queue 1");
	CHECK(flows_follow(e, &v, &h, &distinct) && distinct == 1, "16 flows on queue 1");
	tf_set_fe_state(&v, XenbusStateClosing);
	CHECK(tf_wait_be_state(&v, XenbusStateClosing, 5000), "backend Closing");
	tf_set_fe_state(&v, XenbusStateClosed);
	CHECK(tf_wait_be_state(&v, XenbusStateClosed, 5000), "backend Closed");
	tf_vif_release(&v);
	tf_set_fe_state(&v, XenbusStateInitialising);
	o.ctrl_ring = false;
	CHECK(tf_vif_connect(&v, &o, false) == 0 && mcast_filter_on(e, &v), "reconnected without one");
	h.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
	CHECK(flows_follow(e, &v, &h, &distinct) && distinct > 1, "16 flows spread over %u queues", distinct);
}

/* ---- misbehaviour ---------------------------------------------------------- */

struct pair {
	struct tf_vif a, b;
};

static bool pair_up(struct tf_env *e, struct pair *p)
{
	if (!setup_vif(e, &p->b, NULL) || !setup_vif(e, &p->a, NULL)) {
		CHECK(0, "connect two vifs");
		return false;
	}
	return traffic_ok(e, &p->a) && traffic_ok(e, &p->b);
}

/* A control ring whose producer is more than a ring ahead disables that vif. */
static void case_ctrl_bad_prod(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct pair p;

	o.ctrl_ring = true;
	if (!setup_vif(e, &p.b, NULL) || !setup_vif(e, &p.a, &o)) {
		CHECK(0, "connect two vifs");
		return;
	}
	CHECK(tf_ctrl(&p.a, XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE, 0, 0, 0, NULL, 3000) == 0,
	      "the control ring answers");
	tf_ctrl_raw_prod(&p.a, p.a.ctrl.ring.req_prod_pvt + 2000);
	expect_disabled(e, &p.a, &p.b, "ctrl: Impossible number of requests");
}

/* CPU ticks (user + system) the netback daemon has used so far. */
static unsigned long long nb_ticks(struct tf_env *e)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)e->nbd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		(void)sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st);
	fclose(f);
	return ut + st;
}

/* More control requests than one turn answers, and a fatal error on the
 * data ring at the same time: the vif is disabled and its thread sleeps
 * (it must not keep turning for the requests left). */
static void case_ctrl_flood_fatal(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_queue *q;
	struct pair p;
	unsigned long long t0, t1;

	o.ctrl_ring = true;
	if (!setup_vif(e, &p.b, NULL) || !setup_vif(e, &p.a, &o)) {
		CHECK(0, "connect two vifs");
		return;
	}
	tf_ctrl_push(&p.a, XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE, 100);
	q = &p.a.q[0];
	q->tx.sring->req_prod = q->tx.sring->rsp_prod + PV_NET_TX_RING_SIZE + 44;
	(void)pv_evtchn_notify(p.a.d->ec, p.a.ctrl.port);
	tf_notify(&p.a, 0, true);
	expect_disabled(e, &p.a, &p.b, "Impossible number of requests");
	t0 = nb_ticks(e);
	pv_sleep_ns(1000000000ull);
	t1 = nb_ticks(e);
	CHECK(t1 - t0 < 15, "netback idle afterwards (%llu ticks in 1 s)", t1 - t0);
}

/* Notifications on the control port without requests: an event storm. */
static void case_ctrl_storm(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct pair p;
	uint64_t end = pv_now_ns() + 8000000000ull;

	o.ctrl_ring = true;
	if (!setup_vif(e, &p.b, NULL) || !setup_vif(e, &p.a, &o)) {
		CHECK(0, "connect two vifs");
		return;
	}
	while (pv_now_ns() < end && !tf_log_wait(e, "event storm", 0)) {
		for (int i = 0; i < 100; i++)
			(void)pv_evtchn_notify(p.a.d->ec, p.a.ctrl.port);
		pv_sleep_ns(1000000);
	}
	expect_disabled(e, &p.a, &p.b, "event storm");
}

/* A control ring that does not map, or no channel for it: refused as
 * Linux's connect_ctrl_ring refuses it. */
static void case_ctrl_bad_keys(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	bool closing;
	char *s;

	o.ctrl_ring = true;
	o.nqueues = 2;
	o.bad_ctrl_ref = 4000;
	s = connect_refused(e, &o, &closing);
	CHECK(s && strstr(s, "mapping shared-frame 4000 port"), "bad ctrl-ring-ref: error node: %s",
	      s ? s : "(none)");
	CHECK(closing, "backend Closing");
	free(s);
	o.bad_ctrl_ref = 0;
	o.ctrl_no_port = true;
	s = connect_refused(e, &o, &closing);
	CHECK(s && strstr(s, "/event-channel-ctrl"), "no event-channel-ctrl: error node: %s", s ? s : "(none)");
	CHECK(closing, "backend Closing");
	free(s);
}

static void case_bad_indices(struct tf_env *e)
{
	struct pair p;
	struct tf_queue *q;

	if (!pair_up(e, &p))
		return;
	q = &p.a.q[0];
	q->tx.sring->req_prod = q->tx.sring->rsp_prod + PV_NET_TX_RING_SIZE + 44;
	tf_notify(&p.a, 0, true);
	expect_disabled(e, &p.a, &p.b, "Impossible number of requests");
}

/* The guest sets rx req_prod to rsp_prod + `ahead`, notifies and the host
 * sends it a frame: netback must disable that vif only. */
static void rx_prod_fault(struct tf_env *e, RING_IDX ahead, const char *expect)
{
	struct pair p;
	struct tf_queue *q;
	uint8_t f[256];
	size_t len;

	if (!pair_up(e, &p))
		return;
	/* No frame of the kernel's chatter to the new vif (IPv6, IGMP: all
	 * multicast) may be half delivered when we move the producer: netback
	 * would see req_cons already past it and stop at another check. So A
	 * filters multicast (nothing subscribed), and what was in flight lands. */
	CHECK(mcast_filter_on(e, &p.a), "netback filters multicast once asked");
	pv_sleep_ns(50000000);   /* a frame netback had in hand lands */
	q = &p.a.q[0];
	CHECK(q->rx.sring->req_prod != q->rx.sring->rsp_prod, "rx requests are posted ahead");
	q->rx.sring->req_prod = q->rx.sring->rsp_prod + ahead;
	tf_notify(&p.a, 0, false);
	len = tf_mk_udp4(f, p.a.mac, host_mac, 40, 3);
	tf_host_send(e, NULL, f, len);
	expect_disabled(e, &p.a, &p.b, expect);
}

static void case_bad_rx_indices(struct tf_env *e)
{
	rx_prod_fault(e, PV_NET_RX_RING_SIZE + 9, "rx: Impossible number of requests");
}

/* The rx producer moved back behind requests netback already mapped (it
 * maps the posted window ahead): counts from it would wrap (a heap overflow
 * before the check). */
static void case_rx_prod_backwards(struct tf_env *e)
{
	rx_prod_fault(e, 0, "went back behind");
}

static void send_raw(struct tf_vif *v, struct netif_tx_request *reqs, unsigned n)
{
	RING_IDX idx = v->q[0].tx.req_prod_pvt;

	for (unsigned i = 0; i < n; i++) {
		if (!reqs[i].gref)
			reqs[i].gref = tf_tx_ref(v, 0, idx + i);
		reqs[i].id = (uint16_t)((idx + i) & (PV_NET_TX_RING_SIZE - 1));
		memset(tf_tx_page(v, 0, idx + i), 0x5a, 64);
	}
	tf_tx_raw(v, 0, reqs, n);
}

static void case_cross_page(struct tf_env *e)
{
	struct pair p;
	struct netif_tx_request r[2] = {
		{ .offset = 0, .size = 300, .flags = NETTXF_more_data },
		{ .offset = 4000, .size = 200 },
	};

	if (!pair_up(e, &p))
		return;
	send_raw(&p.a, r, 2);
	expect_disabled(e, &p.a, &p.b, "Cross page boundary, txp->offset: 4000, size: 200");
}

static void case_first_cross_page(struct tf_env *e)
{
	struct pair p;
	struct netif_tx_request r[1] = { { .offset = 4000, .size = 200 } };

	if (!pair_up(e, &p))
		return;
	send_raw(&p.a, r, 1);
	expect_disabled(e, &p.a, &p.b, "txreq.offset: 4000, size: 200");
}

static void case_missing_extra(struct tf_env *e)
{
	struct pair p;
	struct netif_tx_request r[1] = { { .size = 100, .flags = NETTXF_extra_info } };

	if (!pair_up(e, &p))
		return;
	send_raw(&p.a, r, 1);
	expect_disabled(e, &p.a, &p.b, "Missing extra info");
}

static void case_unknown_extra(struct tf_env *e)
{
	struct pair p;
	struct netif_tx_request r[2];
	struct netif_extra_info ex = { .type = 7 };
	RING_IDX idx;

	if (!pair_up(e, &p))
		return;
	idx = p.a.q[0].tx.req_prod_pvt;
	memset(r, 0, sizeof(r));
	r[0] = (struct netif_tx_request){ .gref = tf_tx_ref(&p.a, 0, idx), .size = 100,
					  .id = (uint16_t)(idx & (PV_NET_TX_RING_SIZE - 1)),
					  .flags = NETTXF_extra_info };
	memcpy(&r[1], &ex, sizeof(ex));
	tf_tx_raw(&p.a, 0, r, 2);
	expect_disabled(e, &p.a, &p.b, "Invalid extra type: 7");
}

static void case_gso_zero(struct tf_env *e)
{
	struct pair p;
	uint8_t f[4096];
	struct netif_extra_info ex = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 0);
	int16_t st;
	size_t len;

	if (!pair_up(e, &p))
		return;
	len = tf_mk_tcp4(f, host_mac, p.a.mac, 2000, 1);
	tf_tx(&p.a, 0, f, len, NETTXF_csum_blank, &ex, 0, &st);
	expect_disabled(e, &p.a, &p.b, "GSO size must not be zero.");
}

static void case_chain_past_producer(struct tf_env *e)
{
	struct pair p;
	struct netif_tx_request r[2] = {
		{ .size = 300, .flags = NETTXF_more_data },
		{ .size = 100, .flags = NETTXF_more_data },
	};

	if (!pair_up(e, &p))
		return;
	send_raw(&p.a, r, 2);
	expect_disabled(e, &p.a, &p.b, "Asked for 1 slots but exceeds this limit");
}

static void case_bad_gref(struct tf_env *e)
{
	struct tf_vif_opts o = linux_fe;
	struct tf_vif c;
	struct pair p;
	struct netif_tx_request r[1] = { { .size = 100, .gref = 40000 } };
	netif_tx_response_t rsp[1];
	struct tf_rxinfo info;
	uint8_t f[256], g[4096];
	size_t len;

	if (!pair_up(e, &p))
		return;
	send_raw(&p.a, r, 1);
	CHECK(tf_tx_responses(&p.a, 0, rsp, 1, 1, 2000) == 1 && rsp[0].status == NETIF_RSP_ERROR,
	      "tx with an ungranted ref: NETIF_RSP_ERROR (Linux: not fatal)");
	CHECK(stat_value(e, &p.a, "from_guest", "errors") == 1, "counted as a tx error");
	CHECK(traffic_ok(e, &p.a), "the vif keeps working");

	/* An rx buffer with an ungranted ref: an error response in its own
	 * slot, the frame goes to the next buffer. */
	o.no_rx_post = true;
	if (!setup_vif(e, &c, &o)) {
		CHECK(0, "connect a third vif");
		return;
	}
	guest_to_host(e, &c, 0, 60, 1);
	/* The kernel's chatter to the new vif (IPv6, IGMP: all multicast)
	 * must not take the bad buffer in place of our frame: C filters
	 * multicast (nothing subscribed) before it posts any buffer. */
	CHECK(mcast_filter_on(e, &c), "netback filters multicast once asked");
	tf_rx_post_ref(&c, 0, 40000);
	tf_rx_post(&c, 0, PV_NET_RX_RING_SIZE - 1);
	len = tf_mk_udp4(f, c.mac, host_mac, 40, 5);
	tf_l4_csum(f, len, false);
	tf_host_send(e, NULL, f, len);
	CHECK(recv_to(&c, c.mac, g, sizeof(g), &info, 2000) >= 0 && info.error < 0 && info.nslots == 1,
	      "bad rx buffer answered with an error status (%d)", info.error);
	/* dom0 checks the ref before committing the frame to a buffer; with
	 * the hypervisor copying (a driver domain's path) the failure shows
	 * only after the copy, and the frame goes with it, as in Linux. */
	if (hv_copies) {
		bool seen = false;

		for (uint64_t end = pv_now_ns() + 500000000ull; !seen && pv_now_ns() < end;)
			seen = recv_to(&c, c.mac, g, sizeof(g), &info, 100) >= 0 && info.len == len &&
			       memcmp(f, g, len) == 0;
		CHECK(!seen, "the frame is lost with the failed copy (Linux's behaviour)");
	} else {
		CHECK(recv_to(&c, c.mac, g, sizeof(g), &info, 2000) >= 0 && info.len == len &&
		      memcmp(f, g, len) == 0, "the frame lands in the next buffer");
	}
	CHECK(stat_value(e, &c, "to_guest", "errors") == 1, "counted as an rx error");
	CHECK(traffic_ok(e, &p.b), "the other vif is untouched");
}

/* Vif A kicks netback's tx port 100 times a round (`raw`: rings its
 * doorbell without the pending flag, pv_evtchn_test_write, else notifies) until
 * `reason` is logged (8 s at most); A must be disabled for it, B go on. */
static void storm(struct tf_env *e, struct pair *p, bool raw, const char *reason)
{
	uint64_t end = pv_now_ns() + 8000000000ull;

	while (pv_now_ns() < end && !tf_log_wait(e, reason, 0)) {
		for (int i = 0; i < 100; i++)
			if (raw)
				(void)pv_evtchn_test_write(p->a.q[0].ec, p->a.q[0].tx_port);
			else
				tf_notify(&p->a, 0, true);
		pv_sleep_ns(raw ? 100000 : 1000000);
	}
	expect_disabled(e, &p->a, &p->b, reason);
}

static void case_event_storm(struct tf_env *e)
{
	struct pair p;

	if (!pair_up(e, &p))
		return;
	storm(e, &p, false, "event storm");
	CHECK(stat_value(e, &p.a, "vif", "spurious_events") >= 16, "spurious events counted");
}

/* Netback's doorbell rung without the pending flag: every ring wakes the
 * queue thread and none is an event; masking cannot stop them, so they are
 * a storm of their own. */
static void case_raw_wake_storm(struct tf_env *e)
{
	struct pair p;

	if (pair_up(e, &p))
		storm(e, &p, true, "wake-ups in a row without an event");
}

/* Notifications whose only "work" is an rx producer flipped back and forth
 * are an event storm all the same. */
static void case_event_storm_flip(struct tf_env *e)
{
	struct pair p;
	uint64_t end = pv_now_ns() + 8000000000ull;
	RING_IDX prod;

	if (!pair_up(e, &p))
		return;
	prod = p.a.q[0].rx.sring->req_prod;
	for (unsigned n = 0; pv_now_ns() < end && !tf_log_wait(e, "event storm", 0); n++) {
		for (int i = 0; i < 100; i++) {
			p.a.q[0].rx.sring->req_prod = prod - ((n * 100 + (unsigned)i) & 1);
			tf_notify(&p.a, 0, false);
		}
		pv_sleep_ns(1000000);
	}
	p.a.q[0].rx.sring->req_prod = prod;
	expect_disabled(e, &p.a, &p.b, "event storm");
}

static void case_disabled_then_reconnect(struct tf_env *e)
{
	struct pair p;
	struct netif_tx_request r[1] = { { .offset = 4000, .size = 200 } };
	int rc;

	if (!pair_up(e, &p))
		return;
	send_raw(&p.a, r, 1);
	CHECK(tf_log_wait(e, "fatal error; disabling device", 5000), "disabled");
	/* The frontend restarts: a clean new connection, no longer disabled. */
	tf_set_fe_state(&p.a, XenbusStateInitialising);
	CHECK(tf_wait_be_state(&p.a, XenbusStateInitWait, 5000), "backend InitWait");
	tf_vif_release(&p.a);
	rc = tf_vif_connect(&p.a, &linux_fe, false);
	CHECK(rc == 0, "reconnected");
	{
		char name[32];

		vif_name(&p.a, name, sizeof(name));
		CHECK(stats_has(e, name, "\"disabled\":false"), "no longer disabled");
	}
	CHECK(traffic_ok(e, &p.a), "traffic after reconnect");
}

/* ---- driver ---------------------------------------------------------------- */

struct tcase {
	const char *name;
	void (*fn)(struct tf_env *e);
	const char *nb_args;
	unsigned host_flags;
};

static const struct tcase cases[] = {
	{ "handshake", case_handshake, "--max-queues 4", 0 },
	{ "queues-1", case_q1, "--max-queues 8", 0 },
	{ "queues-2-split", case_q2, "--max-queues 8", 0 },
	{ "queues-4", case_q4, "--max-queues 8", 0 },
	{ "queues-8-split", case_q8, "--max-queues 8", 0 },
	{ "multislot-tx", case_multislot_tx, NULL, 0 },
	{ "gso-tx", case_gso_tx, NULL, 0 },
	{ "gso-tx-host-tso", case_gso_tx_host_tso, NULL, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 },
	{ "gso-rx", case_gso_rx, NULL, 0 },
	/* The same data paths with the frontend's pages mapped, not copied. */
	{ "map-queues-2-split", case_q2, "--max-queues 8 --map-grants", 0 },
	{ "queues-4-no-affinity", case_q4, "--max-queues 8 --no-affinity", 0 },
	{ "map-multislot-tx", case_multislot_tx, "--map-grants", 0 },
	{ "map-gso-tx", case_gso_tx, "--map-grants", 0 },
	{ "map-gso-rx", case_gso_rx, "--map-grants", 0 },
	{ "map-bad-gref", case_bad_gref, "--map-grants", 0 },
	{ "checksum", case_csum, NULL, 0 },
	{ "reconnect", case_reconnect, NULL, 0 },
	{ "domain-destroyed", case_domain_destroyed, NULL, 0 },
	{ "destroy-under-load", case_destroy_under_load, NULL, 0 },
	/* A driver domain's path: every copy by the hypervisor, also while
	 * the frontend's domain goes away. */
	{ "hv-copies-queues-2-split", case_q2, "--max-queues 8 --hypervisor-copies", 0 },
	{ "hv-copies-gso-rx", case_gso_rx, "--hypervisor-copies", 0 },
	{ "hv-copies-destroy-under-load", case_destroy_under_load, "--hypervisor-copies", 0 },
	{ "hv-copies-bad-gref", case_bad_gref, "--hypervisor-copies", 0 },
	{ "backend-removed", case_backend_removed, NULL, 0 },
	{ "queue-count", case_queue_count, "--max-queues 8", 0 },
	{ "bad-ring-ref", case_bad_ring_ref, "--max-queues 4", 0 },
	{ "no-bridge", case_no_bridge, NULL, 0 },
	{ "bad-toolstack", case_bad_toolstack, NULL, 0 },
	{ "bad-ring-prod", case_bad_ring_prod, NULL, 0 },
	{ "no-rx-copy", case_no_rx_copy, NULL, 0 },
	{ "sigterm", case_sigterm, NULL, 0 },
	{ "multicast", case_multicast, NULL, 0 },
	{ "no-rx-notify", case_no_rx_notify, NULL, 0 },
	{ "rate", case_rate, NULL, 0 },
	{ "rx-stall", case_rx_stall, "--rx-stall-timeout 300 --rx-drain-timeout 200", 0 },
	{ "bad-indices", case_bad_indices, NULL, 0 },
	{ "bad-rx-indices", case_bad_rx_indices, NULL, 0 },
	{ "rx-prod-backwards", case_rx_prod_backwards, NULL, 0 },
	{ "cross-page", case_cross_page, NULL, 0 },
	{ "first-cross-page", case_first_cross_page, NULL, 0 },
	{ "missing-extra", case_missing_extra, NULL, 0 },
	{ "unknown-extra", case_unknown_extra, NULL, 0 },
	{ "gso-size-zero", case_gso_zero, NULL, 0 },
	{ "chain-past-producer", case_chain_past_producer, NULL, 0 },
	{ "bad-gref", case_bad_gref, NULL, 0 },
	{ "event-storm", case_event_storm, NULL, 0 },
	{ "event-storm-flip", case_event_storm_flip, NULL, 0 },
	{ "raw-wake-storm", case_raw_wake_storm, NULL, 0 },
	{ "disabled-then-reconnect", case_disabled_then_reconnect, NULL, 0 },
	{ "ctrl-ring", case_ctrl_ring, "--max-queues 4", 0 },
	{ "map-ctrl-ring", case_ctrl_ring, "--max-queues 4 --map-grants", 0 },
	{ "hv-copies-ctrl-ring", case_ctrl_ring, "--max-queues 4 --hypervisor-copies", 0 },
	{ "ctrl-ring-reconnect", case_ctrl_reconnect, "--max-queues 4", 0 },
	{ "ctrl-bad-prod", case_ctrl_bad_prod, NULL, 0 },
	{ "ctrl-storm", case_ctrl_storm, NULL, 0 },
	{ "ctrl-flood-fatal", case_ctrl_flood_fatal, NULL, 0 },
	{ "ctrl-bad-keys", case_ctrl_bad_keys, "--max-queues 4", 0 },
};

int main(int argc, char **argv)
{
	int skip = nif_test_enter_netns();

	if (skip != 0)
		return skip;
	signal(SIGPIPE, SIG_IGN);   /* a daemon or peer that goes mid-write */
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < PV_ARRAY_SIZE(cases); i++) {
		struct tf_env_opts o = { .netback_args = cases[i].nb_args, .host_tun_flags = cases[i].host_flags };

		map_grants = cases[i].nb_args && strstr(cases[i].nb_args, "--map-grants");
		no_affinity = cases[i].nb_args && strstr(cases[i].nb_args, "--no-affinity");
		hv_copies = cases[i].nb_args && strstr(cases[i].nb_args, "--hypervisor-copies");
		struct tf_env e;
		int r;

		if (argc > 1 && !strstr(cases[i].name, argv[1]))
			continue;
		cur = cases[i].name;
		r = tf_env_start(&e, &o);
		if (r == 77) {
			printf("SKIP: pvnet-xenstored, pvnet-hypervisor or pvnet-netback not built\n");
			tf_env_stop(&e);
			return 77;
		}
		if (r < 0) {
			CHECK(0, "environment: %s", strerror(-r));
		} else {
			int before = fail;

			cases[i].fn(&e);
			if (fail != before)
				tf_env_dump_logs(&e);
		}
		tf_env_stop(&e);
	}
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
