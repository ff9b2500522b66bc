/*
 * End-to-end: two rules of netfront towards its backend (docs/guest.md,
 * "Misbehaving backends"), each against the test backend (testback.c) with
 * the real pvnet-guest:
 *
 *  tx-errors-per-frame: tx_errors counts frames, not slots. The backend
 *    answers every data slot of one 3-slot frame (9000 bytes, eth0's MTU
 *    raised to 9000) with NETIF_RSP_ERROR (TB_TX_ERROR_SLOTS): the guest's
 *    `stats` must show tx_errors = 1 (3 if counted per slot), the device not
 *    broken, and the next 3-slot frame must go through without another error.
 *
 *  long-value-*: a xenstore value too long for netfront's buffer is absent,
 *    never cut, on the one-at-a-time read path (ops_read in guest/xenbus.c).
 *    That path is what the runtime uses when its pipelined connection fails:
 *    xenstored's quota of connections per domain socket is set to 1, so the
 *    guest's second connection is refused and its log says it fell back. The
 *    backend then offers values whose first 31 characters (what a 32-byte
 *    buffer would keep) are valid and whose whole is not:
 *      multi-queue-max-queues = "000...0002xxx..." (331 characters): absent,
 *        so one queue and no multi-queue-num-queues (a cut value gives 2);
 *      feature-rx-copy = "000...0001yyy..." (331 characters): absent, so the
 *        device is refused as Linux refuses a backend without rx-copy (a cut
 *        value connects).
 *    A 302-byte value "2", NUL, 300 characters: absent on both paths
 *    (long-value-nul-batched, before the quota is lowered; long-value-nul
 *    one at a time: the length is the one xenstore returned, not where a
 *    NUL stops the string).
 *
 * Usage: test-guest-nf-rules [case-name-substring]. Needs root and
 * /dev/net/tun (exit 77 otherwise).
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <xenstore.h>

#include "common/util.h"
#include "common/xen.h"
#include "guest/tests/e2e_util.h"
#include "guest/tests/testback.h"

static const uint8_t MAC[6] = { 0x00, 0x16, 0x3e, 0x5e, 0x00, 0x01 };
#define MACS "00:16:3e:5e:00:01"

/* Sum of a counter over every queue in the guest's `stats`, or -1. */
static long stats_sum(const struct mts_guest *g, const char *key)
{
	char *a = mts_control(g, "stats"), pat[64];
	long sum = 0;
	bool any = false;

	if (!a)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	for (const char *p = a; (p = strstr(p, pat)); p += strlen(pat)) {
		sum += strtol(p + strlen(pat), NULL, 10);
		any = true;
	}
	free(a);
	return any ? sum : -1;
}

/* One sequence frame of `len` bytes (>= 60) sent on eth0 of namespace ns by
 * a child process; true if the kernel took it. */
static bool send_big(const char *ns, uint32_t seq, size_t len)
{
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0) {
		static uint8_t frame[16384];
		struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_halen = 6 };
		char path[128];
		int fd, s;

		snprintf(path, sizeof(path), "/run/netns/%s", ns);
		fd = open(path, O_RDONLY);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0 || len > sizeof(frame))
			_exit(1);
		tb_build_seq_frame(frame, sizeof(frame), MAC, seq);
		for (size_t i = 60; i < len; i++)
			frame[i] = (uint8_t)i;
		s = socket(AF_PACKET, SOCK_RAW, 0);
		a.sll_ifindex = (int)if_nametoindex("eth0");
		if (s < 0 || !a.sll_ifindex)
			_exit(1);
		_exit(sendto(s, frame, len, 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)len ? 0 : 1);
	}
	return e2e_wait_child(pid) == 0;
}

static bool wait_seq(struct tb *b, uint32_t seq, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += 10) {
		if (tb_seq_seen(b, seq))
			return true;
		usleep(10000);
	}
	return false;
}

/* A guest with one vif on host h, its backend started with `o` first. */
static struct mts_guest *guest_up(struct mts_host *h, struct tb_opts *o, struct tb **bp, const char *tag,
				  const char *const *extra, void (*before)(struct mts_host *h, struct tb_opts *o))
{
	struct mts_guest *g = calloc(1, sizeof(*g));
	const char *ns = e2e_netns(tag);
	uint32_t domid = 0;

	*bp = NULL;
	if (!g || mts_domain_create(h, &domid, false, 0) < 0 || mts_vif_add(h, domid, 0, MACS) < 0) {
		CHECK(false, "%s: domain and vif", tag);
		free(g);
		return NULL;
	}
	o->host = h;
	o->domid = domid;
	*bp = tb_start(o);
	if (*bp && before)
		before(h, o);
	if (!*bp || mts_guest_start(g, h, domid, ns, e2e_tmpdir(), extra) < 0) {
		CHECK(false, "%s: start backend and guest", tag);
		tb_stop(*bp);
		*bp = NULL;
		mts_domain_destroy(h, domid);
		free(g);
		return NULL;
	}
	e2e_atexit_guest(g);
	return g;
}

static void guest_down(struct mts_guest *g, struct tb *b, const char *name)
{
	CHECK(mts_guest_stop(g) == 0, "%s: pvnet-guest stops cleanly", name);
	tb_stop(b);
	mts_domain_destroy(g->host, g->domid);
}

/* ---- tx_errors per frame ------------------------------------------------------ */

static void case_tx_errors(struct mts_host *h)
{
	const char *name = "tx-errors-per-frame";
	const char *extra[] = { "--max-queues", "1", NULL };
	struct tb_opts o = { .devid = 0, .max_queues = 1, .fault = TB_TX_ERROR_SLOTS };
	struct tb_stats st;
	struct tb *b;
	struct mts_guest *g = guest_up(h, &o, &b, "tx", extra, NULL);
	long errs = -1, before;
	const char *ns;

	if (!g)
		return;
	ns = g->netns;
	CHECK(e2e_wait_control(g, "state", "state=Connected backend", 1, 5000), "%s: connected", name);
	/* SG is offered: a jumbo MTU is allowed and a 9000-byte frame takes
	 * three slots (4096 + 4096 + 808). */
	CHECK(e2e_sh("ip -n %s link set eth0 mtu 9000 && ip -n %s link set eth0 up", ns, ns) == 0,
	      "%s: eth0 up with MTU 9000", name);
	e2e_wait_control(g, "trace-norm", "netif_tx_start_queue", 1, 3000);
	before = stats_sum(g, "tx_errors");
	CHECK(before == 0, "%s: no tx error before (%ld)", name, before);
	CHECK(send_big(ns, 1, 9000), "%s: a 9000-byte frame sent on eth0", name);
	CHECK(wait_seq(b, 1, 3000), "%s: the backend got it", name);
	tb_get_stats(b, &st);
	CHECK(st.fault_done, "%s: the backend answered its 3 slots with NETIF_RSP_ERROR", name);
	/* The responses are reaped on the tx event: wait for the count, then
	 * a little more, so that a count per slot would have come in too. */
	for (int t = 0; t < 300 && (errs = stats_sum(g, "tx_errors")) < 1; t++)
		usleep(10000);
	usleep(200000);
	errs = stats_sum(g, "tx_errors");
	CHECK(errs == 1, "%s: tx_errors = 1 for one frame of 3 slots answered with errors (got %ld)", name, errs);
	CHECK(e2e_state_num(g, "broken") == 0, "%s: an error status is legitimate: not broken", name);
	/* The next frame of 3 slots goes through and counts no error. */
	CHECK(send_big(ns, 2, 9000) && wait_seq(b, 2, 3000), "%s: the next 9000-byte frame reaches the backend",
	      name);
	CHECK(send_big(ns, 3, 60) && wait_seq(b, 3, 3000), "%s: and a small one", name);
	usleep(200000);
	errs = stats_sum(g, "tx_errors");
	CHECK(errs == 1, "%s: tx_errors still 1 (got %ld)", name, errs);
	guest_down(g, b, name);
}

/* ---- over-long values on the one-at-a-time path ------------------------------- */

static const char *long_key;   /* the backend key made too long, and how */
static bool long_nul;

/* Overwrite the backend's key (testback wrote it in its probe) before the
 * guest starts: 30 zeros, the digit, then 300 characters (or a NUL byte and
 * 300 characters). */
static void write_long(struct mts_host *h, struct tb_opts *o)
{
	char path[160], v[400];
	bool q = !strcmp(long_key, "multi-queue-max-queues");
	unsigned n = 0;

	if (!long_nul) {
		memset(v, '0', 30);
		n = 30;
	}
	v[n++] = q ? '2' : '1';
	if (long_nul)
		v[n++] = '\0';
	memset(v + n, q ? 'x' : 'y', 300);
	n += 300;
	snprintf(path, sizeof(path), "/local/domain/0/backend/vif/%u/%u/%s", o->domid, o->devid, long_key);
	if (!xs_write(h->xs, XBT_NULL, path, v, n))
		fprintf(stderr, "writing %s failed\n", path);
}

/* xenstored's quota of connections per domain socket: with 1, the guest's
 * pipelined second connection is refused and it reads one key at a time. */
static bool set_conn_quota(struct mts_host *h, const char *value)
{
	char data[64];
	size_t n = (size_t)snprintf(data, sizeof(data), "set%cconnections%c%s", 0, 0, value) + 1;
	char *r = xs_control_command(h->xs, "quota", data, (unsigned)n);
	bool ok = r && !strcmp(r, "OK");

	free(r);
	return ok;
}

static bool fell_back(const struct mts_guest *g)
{
	return e2e_sh("grep -qE 'pipelined reads failed|no pipelined connection' %s", g->log) == 0;
}

static bool frontend_key(struct mts_host *h, const struct mts_guest *g, const char *key)
{
	char path[160];
	unsigned len;
	char *v;

	snprintf(path, sizeof(path), "/local/domain/%u/device/vif/0/%s", g->domid, key);
	v = xs_read(h->xs, XBT_NULL, path, &len);
	free(v);
	return v != NULL;
}

static void case_long_max_queues(struct mts_host *h)
{
	const char *name = "long-value-max-queues";
	const char *extra[] = { "--max-queues", "4", NULL };
	struct tb_opts o = { .devid = 0, .max_queues = 4 };
	struct mts_guest *g;
	struct tb *b;
	long q;

	long_key = "multi-queue-max-queues";
	long_nul = false;
	g = guest_up(h, &o, &b, "lq", extra, write_long);
	if (!g)
		return;
	CHECK(e2e_wait_control(g, "state", "state=Connected backend", 1, 5000), "%s: connected", name);
	CHECK(fell_back(g), "%s: the guest reads one key at a time (its pipelined connection was refused)", name);
	q = e2e_state_num(g, "queues");
	CHECK(q == 1, "%s: a 331-character multi-queue-max-queues is absent: 1 queue (got %ld; a cut value "
	      "gives 2)", name, q);
	CHECK(!frontend_key(h, g, "multi-queue-num-queues"),
	      "%s: no multi-queue-num-queues written (the backend advertised no maximum)", name);
	CHECK(e2e_state_num(g, "broken") == 0, "%s: not broken", name);
	guest_down(g, b, name);
}

static void case_long_rx_copy(struct mts_host *h)
{
	const char *name = "long-value-rx-copy";
	const char *extra[] = { "--max-queues", "1", "--connect-timeout", "0", NULL };
	struct tb_opts o = { .devid = 0, .max_queues = 1 };
	struct mts_guest *g;
	struct tb *b;
	bool refused;
	char *st;

	long_key = "feature-rx-copy";
	long_nul = false;
	g = guest_up(h, &o, &b, "lr", extra, write_long);
	if (!g)
		return;
	refused = e2e_wait_control(g, "state", "last_error=\"backend does not support copying receive path\"", 1,
				   5000);
	st = mts_control(g, "state");
	CHECK(refused, "%s: a 331-character feature-rx-copy is absent: refused as without rx-copy", name);
	if (!refused)
		printf("# state: %s", st ? st : "(no answer)\n");
	CHECK(st && !strstr(st, "state=Connected"), "%s: the device never connects", name);
	free(st);
	CHECK(fell_back(g), "%s: the guest reads one key at a time", name);
	guest_down(g, b, name);
}

/* A value with a NUL byte after its first character: 302 bytes, too long
 * for the 32-byte buffer, so absent, by the length xenstore returned, on the
 * one-at-a-time path (ops_read once went by strlen and kept "2") as on the
 * batched one (the pipelined connection, quota not yet lowered). */
static void long_nul_value(struct mts_host *h, const char *name, const char *tag, bool batched)
{
	const char *extra[] = { "--max-queues", "4", NULL };
	struct tb_opts o = { .devid = 0, .max_queues = 4 };
	struct mts_guest *g;
	struct tb *b;
	long q;

	long_key = "multi-queue-max-queues";
	long_nul = true;
	g = guest_up(h, &o, &b, tag, extra, write_long);
	if (!g)
		return;
	CHECK(e2e_wait_control(g, "state", "state=Connected backend", 1, 5000), "%s: connected", name);
	CHECK(fell_back(g) == !batched, "%s: the guest reads %s", name,
	      batched ? "the connect keys in one batch" : "one key at a time");
	q = e2e_state_num(g, "queues");
	CHECK(q == 1, "%s: multi-queue-max-queues \"2\\0\" + 300 characters (302 bytes) read as absent: "
	      "1 queue (got %ld)", name, q);
	guest_down(g, b, name);
}

static void case_long_nul(struct mts_host *h) { long_nul_value(h, "long-value-nul", "ln", false); }
static void case_long_nul_batched(struct mts_host *h) { long_nul_value(h, "long-value-nul-batched", "lb", true); }

static const struct {
	const char *name;
	void (*fn)(struct mts_host *h);
	bool one_at_a_time;
} cases[] = {
	{ "tx-errors-per-frame", case_tx_errors, false },
	{ "long-value-nul-batched", case_long_nul_batched, false },
	{ "long-value-max-queues", case_long_max_queues, true },
	{ "long-value-rx-copy", case_long_rx_copy, true },
	{ "long-value-nul", case_long_nul, true },
};

int main(int argc, char **argv)
{
	static struct mts_host h;
	bool quota = false;

	e2e_require();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mts_host_start(&h, e2e_tmpdir(), "host") < 0) {
		CHECK(false, "start a host");
		return e2e_done();
	}
	e2e_atexit_host(&h);
	for (size_t i = 0; i < PV_ARRAY_SIZE(cases); i++) {
		if (argc > 1 && !strstr(cases[i].name, argv[1]))
			continue;
		if (cases[i].one_at_a_time && !quota) {
			quota = set_conn_quota(&h, "1");
			CHECK(quota, "xenstored: 1 connection per domain socket");
			if (!quota)
				continue;
		}
		cases[i].fn(&h);
	}
	return e2e_done();
}
