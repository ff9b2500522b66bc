/*
 * End-to-end: the three scenarios of the field notes with 8 queues, in both
 * modes, against real daemons (two hosts: pvnet-hypervisor +
 * pvnet-xenstored each), the test backend and pvnet-guest in a network
 * namespace: boot + open by netlink, live migration, ifconfig up/down by
 * ioctl, compared with the golden sequences; then a cancelled suspend (no
 * change), and the queue count changing across migrations (8 -> 2 -> 8), with
 * frames checked both ways after each step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xen.h"
#include "guest/tests/e2e_util.h"
#include "guest/tests/testback.h"

static const uint8_t MAC[6] = { 0x00, 0x16, 0x3e, 0x5a, 0x00, 0x01 };
static const char *const MACS[] = { "00:16:3e:5a:00:01" };
static const unsigned DEVIDS[] = { 0 };

struct world {
	struct mts_host a, b;
	struct tb *back;          /* the backend of the guest's current host */
	unsigned next_queues;     /* max queues of the next backend */
	uint32_t seq;
};

static struct tb *backend(struct mts_host *h, uint32_t domid, unsigned queues)
{
	struct tb_opts o = { .host = h, .domid = domid, .devid = 0, .max_queues = queues, .split = true };
	return tb_start(&o);
}

static int prepare(void *arg, struct mts_host *dst, uint32_t newid)
{
	struct world *w = arg;
	struct tb *nb = backend(dst, newid, w->next_queues);
	if (!nb)
		return -1;
	/* The old backend stays until the source domain is destroyed. */
	w->back = nb;
	return 0;
}

static struct tb *old_back;
static void stop_old(void *arg)
{
	(void)arg;
	tb_stop(old_back);
	old_back = NULL;
}

/* A frame from the guest reaches the backend, one from the backend the guest. */
static void check_traffic(struct world *w, struct mts_guest *g, const char *what)
{
	uint32_t seq = w->seq++;
	pid_t p = e2e_send_seq(g->netns, "eth0", MAC, seq, 1, 0, NULL);
	bool seen = false;
	uint8_t frame[60];
	struct tb_stats st;

	e2e_wait_child(p);
	for (int i = 0; i < 200 && !(seen = tb_seq_seen(w->back, seq)); i++)
		usleep(10000);
	CHECK(seen, "%s: a frame from the guest reaches the backend", what);
	tb_build_seq_frame(frame, sizeof(frame), (const uint8_t[6]){ 2, 0, 0, 0, 0, 2 }, seq);
	memcpy(frame, MAC, 6);
	tb_inject(w->back, frame, sizeof(frame));
	for (int i = 0; i < 200; i++) {
		tb_get_stats(w->back, &st);
		if (st.rx_frames)
			break;
		usleep(10000);
	}
	long rx = -1;
	for (int i = 0; i < 200 && rx <= 0; i++) {
		char *s = mts_control(g, "stats");
		char *p2 = s ? strstr(s, "\"rx_packets\":") : NULL;
		rx = 0;
		for (; p2; p2 = strstr(p2 + 1, "\"rx_packets\":"))
			rx += strtol(p2 + 13, NULL, 10);
		free(s);
		if (rx <= 0)
			usleep(10000);
	}
	CHECK(rx > 0, "%s: a frame from the backend reaches eth0 (%ld)", what, rx);
}

static bool migrate(struct world *w, struct mts_guest *g, struct mts_host *dst, unsigned queues)
{
	int r;

	old_back = w->back;
	w->next_queues = queues;
	r = mts_migrate(g, dst, DEVIDS, MACS, 1, prepare, w, stop_old, NULL);
	if (r < 0) {
		w->back = old_back;
		return false;
	}
	return tb_wait_state(w->back, XenbusStateConnected, 5000) == 0 &&
	       e2e_wait_control(g, "state", "state=Connected backend", 1, 5000);
}

static void run(struct world *w, bool compat)
{
	const char *mode = compat ? "linux-5.13" : "fixed";
	const char *ns = e2e_netns(compat ? "c" : "f");
	const char *extra_compat[] = { "--max-queues", "8", "--compat", "linux-5.13", NULL };
	char tfile[300];
	const char *extra_fixed[] = { "--max-queues", "8", "--trace-file", tfile, "--trace-format", "json", NULL };
	struct mts_guest *g = calloc(1, sizeof(*g));
	uint32_t domid = 0;
	unsigned mark;
	char *t;

	snprintf(tfile, sizeof(tfile), "%s/trace-%s.json", e2e_tmpdir(), ns);
	printf("# mode %s\n", mode);
	if (mts_domain_create(&w->a, &domid, false, 0) < 0 || mts_vif_add(&w->a, domid, 0, MACS[0]) < 0) {
		CHECK(false, "%s: create a domain with a vif", mode);
		return;
	}
	w->back = backend(&w->a, domid, 8);
	CHECK(w->back != NULL, "%s: the backend goes InitWait", mode);
	if (!w->back || mts_guest_start(g, &w->a, domid, ns, e2e_tmpdir(), compat ? extra_compat : extra_fixed) < 0) {
		CHECK(false, "%s: start pvnet-guest", mode);
		return;
	}
	e2e_atexit_guest(g);

	/* 1. Boot, then open by netlink (NetworkManager). */
	CHECK(tb_wait_state(w->back, XenbusStateConnected, 5000) == 0, "%s: the backend connects", mode);
	CHECK(e2e_wait_control(g, "trace-norm", "notify_peers", 1, 5000), "%s: the guest announces itself", mode);
	e2e_sh("ip -n %s addr add 192.0.2.1/24 dev eth0 && ip -n %s addr add 2001:db8::1/64 dev eth0 nodad", ns, ns);
	e2e_sh("ip -n %s link set eth0 up", ns);
	CHECK(e2e_wait_control(g, "trace-norm", "netif_tx_start_queue", 8, 5000), "%s: open starts 8 queues", mode);
	t = e2e_trace_norm(g, 0);
	CHECK(e2e_golden(t, "boot-open.txt"), "%s: boot + open by netlink = the field notes", mode);
	free(t);
	CHECK(e2e_state_num(g, "queues") == 8, "%s: 8 queues connected", mode);
	check_traffic(w, g, mode);

	/* 2. Live migration A -> B. */
	t = mts_control(g, "trace-norm");
	mark = e2e_lines(t);
	free(t);
	CHECK(migrate(w, g, &w->b, 8), "%s: migrate to host B", mode);
	CHECK(e2e_wait_control(g, "trace-norm", "notify_peers", 2, 5000), "%s: announced on host B", mode);
	t = e2e_trace_norm(g, mark);
	CHECK(e2e_golden(t, compat ? "migration.linux-5.13.txt" : "migration.fixed.txt"),
	      "%s: live migration = the %s sequence", mode, compat ? "field notes'" : "v5.15");
	free(t);
	CHECK(e2e_state_num(g, "race") == 0 || compat, "%s: no transmit raced the rebuild", mode);
	check_traffic(w, g, mode);

	/* 3. A cancelled suspend changes nothing. */
	t = mts_control(g, "trace-norm");
	mark = e2e_lines(t);
	free(t);
	CHECK(mts_suspend(g) == 0 && mts_resume_cancelled(g) == 0, "%s: suspend, then cancel", mode);
	usleep(200000);
	t = e2e_trace_norm(g, mark);
	CHECK(t && !strcmp(t, "suspend\n"), "%s: a cancelled suspend traces only 'suspend' (%s)", mode, t ? t : "");
	free(t);
	CHECK(e2e_wait_control(g, "state", "suspends_cancelled=1", 1, 1000), "%s: counted as cancelled", mode);
	check_traffic(w, g, mode);

	/* 4. ifconfig up / down (ioctl). */
	e2e_sh("ip -n %s link set eth0 down", ns);
	CHECK(e2e_wait_control(g, "trace-norm", "close eth0 netlink", 1, 3000), "%s: ip link set down is a netlink close", mode);
	usleep(200000);   /* the close's queue stops are traced after it */
	t = mts_control(g, "trace-norm");
	mark = e2e_lines(t);
	free(t);
	e2e_sh("ip netns exec %s ifconfig eth0 up", ns);
	CHECK(e2e_wait_control(g, "trace-norm", "open eth0 ioctl", 1, 3000), "%s: ifconfig up is an ioctl open", mode);
	e2e_sh("ip netns exec %s ifconfig eth0 down", ns);
	CHECK(e2e_wait_control(g, "trace-norm", "close eth0 ioctl", 1, 3000), "%s: ifconfig down is an ioctl close", mode);
	usleep(100000);
	t = e2e_trace_norm(g, mark);
	CHECK(e2e_golden(t, "ifconfig.txt"), "%s: ifconfig up/down = the field notes", mode);
	free(t);

	/* 5. The queue count across migrations: 8 -> 2 -> 8. */
	e2e_sh("ip -n %s link set eth0 up", ns);
	CHECK(migrate(w, g, &w->a, 2), "%s: migrate to a host offering 2 queues", mode);
	CHECK(e2e_state_num(g, "queues") == 2 && e2e_state_num(g, "tap_queues") == 2, "%s: 2 queues (netfront and TAP)", mode);
	check_traffic(w, g, mode);
	CHECK(migrate(w, g, &w->b, 8), "%s: migrate back to 8 queues", mode);
	CHECK(e2e_state_num(g, "queues") == 8 && e2e_state_num(g, "tap_queues") == 8, "%s: 8 queues again", mode);
	check_traffic(w, g, mode);
	CHECK(e2e_state_num(g, "broken") == 0, "%s: never broken", mode);
	if (!compat)
		CHECK(e2e_state_num(g, "race") == 0, "%s: the race counter stayed at 0", mode);

	if (compat) {
		CHECK(mts_guest_stop(g) == 0, "%s: pvnet-guest stops cleanly on SIGTERM", mode);
	} else {
		/* poweroff: the frontend closes (Closing, backend Closing,
		 * Closed), then the shutdown call, then the process ends. */
		CHECK(mts_shutdown(g, "poweroff") == 0, "%s: control/shutdown=poweroff shuts the domain down", mode);
		struct tb_stats st;
		tb_get_stats(w->back, &st);
		CHECK(st.state == XenbusStateClosing || st.state == XenbusStateClosed,
		      "%s: the frontend closed before (backend %d)", mode, st.state);
	}
	if (!compat) {
		/* --trace-file: every event as a JSON line, as the control socket has it. */
		long n = e2e_sh_num("wc -l < %s", tfile);
		long wakes = e2e_sh_num("grep -c '\"event\":\"netif_tx_wake_queue\"' %s", tfile);
		CHECK(n > 50 && wakes == 24, "%s: --trace-file has every event as JSON (%ld lines, %ld wakes)", mode, n, wakes);
	}
	tb_stop(w->back);
	w->back = NULL;
}

/* Several vifs: two at boot, a third hot-plugged, the second unplugged as
 * libxl does (backend Closing, frontend Closed, directories removed). */
static void multi_vif(struct world *w)
{
	static const char *const macs[] = { "00:16:3e:5a:01:00", "00:16:3e:5a:01:01", "00:16:3e:5a:01:02" };
	const char *extra[] = { "--max-queues", "2", NULL };
	const char *ns = e2e_netns("v");
	struct mts_guest *g = calloc(1, sizeof(*g));
	struct tb *b[3] = { 0 };
	uint32_t domid = 0;
	char path[128];

	printf("# several vifs\n");
	if (mts_domain_create(&w->a, &domid, false, 0) < 0 || mts_vif_add(&w->a, domid, 0, macs[0]) < 0 ||
	    mts_vif_add(&w->a, domid, 1, macs[1]) < 0) {
		CHECK(false, "vifs: create a domain with two vifs");
		return;
	}
	for (unsigned i = 0; i < 2; i++) {
		struct tb_opts o = { .host = &w->a, .domid = domid, .devid = i, .max_queues = 2 };
		b[i] = tb_start(&o);
	}
	if (!b[0] || !b[1] || mts_guest_start(g, &w->a, domid, ns, e2e_tmpdir(), extra) < 0) {
		CHECK(false, "vifs: start backends and guest");
		goto out;
	}
	e2e_atexit_guest(g);
	CHECK(e2e_wait_control(g, "state", "state=Connected backend", 2, 5000), "vifs: both connect");
	CHECK(e2e_sh("ip -n %s link show eth0 && ip -n %s link show eth1", ns, ns) == 0, "vifs: eth0 and eth1 exist");

	/* Hot-plug a third (network-attach). */
	CHECK(mts_vif_add(&w->a, domid, 2, macs[2]) == 0, "vifs: add vif 2 while running");
	{
		struct tb_opts o = { .host = &w->a, .domid = domid, .devid = 2, .max_queues = 2 };
		b[2] = tb_start(&o);
	}
	CHECK(b[2] && e2e_wait_control(g, "state", "state=Connected backend", 3, 5000), "vifs: the new vif connects");
	CHECK(e2e_sh("ip -n %s link show eth2", ns) == 0, "vifs: eth2 appears");

	/* Unplug vif 1 (network-detach). */
	tb_stop(b[1]);
	b[1] = NULL;
	snprintf(path, sizeof(path), "/local/domain/0/backend/vif/%u/1/state", domid);
	e2e_sh("XENSTORED_PATH=%s xenstore-write %s 5", w->a.xs_sock, path);
	snprintf(path, sizeof(path), "/local/domain/%u/device/vif/1/state", domid);
	CHECK(mts_wait_value(&w->a, path, "6", 5000) == 0, "vifs: the frontend closes on backend Closing");
	e2e_sh("XENSTORED_PATH=%s xenstore-rm /local/domain/%u/device/vif/1 /local/domain/0/backend/vif/%u/1",
	       w->a.xs_sock, domid, domid);
	for (int i = 0; i < 200 && e2e_sh("ip -n %s link show eth1", ns) == 0; i++)
		usleep(10000);
	CHECK(e2e_sh("ip -n %s link show eth1", ns) != 0, "vifs: eth1 is gone with its directory");
	CHECK(e2e_wait_control(g, "state", "state=Connected backend", 2, 1000) &&
	      !e2e_wait_control(g, "state", "device/vif/1 ", 1, 0), "vifs: the others stay connected");
	CHECK(mts_guest_stop(g) == 0, "vifs: stops cleanly");
out:
	for (unsigned i = 0; i < 3; i++)
		tb_stop(b[i]);
	mts_domain_destroy(&w->a, domid);
}

int main(void)
{
	static struct world w;

	e2e_require();
	memset(&w, 0, sizeof(w));
	if (mts_host_start(&w.a, e2e_tmpdir(), "hostA") < 0 || mts_host_start(&w.b, e2e_tmpdir(), "hostB") < 0) {
		CHECK(false, "start two hosts");
		return e2e_done();
	}
	e2e_atexit_host(&w.a);
	e2e_atexit_host(&w.b);
	run(&w, true);
	run(&w, false);
	multi_vif(&w);
	return e2e_done();
}
