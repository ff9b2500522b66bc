/*
 * End-to-end with the real backend: two hosts (pvnet-hypervisor,
 * pvnet-xenstored and pvnet-netback each; the netbacks' bridges joined by a
 * veth pair, host A's bridge with an address), a guest with 8 queues in both
 * modes: boot + open by netlink, live migration A -> B and ifconfig up/down
 * compared with the golden sequences, ping from host A's bridge before and
 * after the move (the guest's gratuitous ARP moves it on the bridges).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest/tests/e2e_util.h"

static const char *const MACS[] = { "00:16:3e:5d:00:01" };
static const unsigned DEVIDS[] = { 0 };
static struct mts_host ha, hb;
static const char *nsa, *nsb;

static bool ping_guest(void)
{
	/* A few tries: the first echo may race the bridges learning the move. */
	return e2e_sh("ip netns exec %s ping -c 2 -i 0.2 -W 1 -w 5 10.88.0.2", nsa) == 0;
}

/* A TCP stream each way (GSO and checksum offload both directions). */
static void tcp_both_ways(const char *ns, const char *mode)
{
	long down, up;

	if (e2e_sh("command -v iperf3") != 0) {
		printf("# no iperf3: TCP check skipped\n");
		return;
	}
	e2e_sh("ip netns exec %s iperf3 -s -D -1 -p 5301 --pidfile %s/iperf-%s.pid", ns, e2e_tmpdir(), ns);
	usleep(300000);
	down = e2e_sh_num("ip netns exec %s iperf3 -c 10.88.0.2 -p 5301 -t 2 -J | "
			  "/usr/bin/python3 -c 'import json,sys; print(int(json.load(sys.stdin)[\"end\"][\"sum_received\"][\"bits_per_second\"]))'",
			  nsa);
	e2e_sh("ip netns exec %s iperf3 -s -D -1 -p 5302 --pidfile %s/iperf2-%s.pid", ns, e2e_tmpdir(), ns);
	usleep(300000);
	up = e2e_sh_num("ip netns exec %s iperf3 -c 10.88.0.2 -p 5302 -t 2 -R -J | "
			"/usr/bin/python3 -c 'import json,sys; print(int(json.load(sys.stdin)[\"end\"][\"sum_received\"][\"bits_per_second\"]))'",
			nsa);
	printf("# %s: TCP host->guest %.2f Gbit/s, guest->host %.2f Gbit/s\n", mode, down / 1e9, up / 1e9);
	CHECK(down > 0 && up > 0, "%s: TCP streams both ways complete", mode);
}

/* The trace once the last `close_line` in it is followed by `nq` queue stops
 * (or after 3 s: the golden comparison then says what is missing). */
static char *wait_close_done(const struct mts_guest *g, const char *close_line, unsigned nq)
{
	for (int i = 0;; i++) {
		char *t = mts_control(g, "trace-norm");
		const char *c = NULL, *p = t;
		unsigned stops = 0;

		while (p && (p = strstr(p, close_line)))
			c = p++;
		for (p = c; p && (p = strstr(p, "netif_tx_stop_queue")); p++)
			stops++;
		if (stops >= nq || i >= 300)
			return t;
		free(t);
		usleep(10000);
	}
}

/* How many CPUs data thread `comm` of pvnet-guest may run on, waiting up
 * to 2 s for it to become `want` (the thread pins itself once its queue's
 * channel is up). */
static long thread_ncpus(pid_t pid, const char *comm, long want)
{
	long n = -1;

	for (int i = 0; i < 100 && n != want; i++) {
		if (i)
			usleep(20000);
		n = e2e_sh_num("for t in /proc/%d/task/*; do [ \"$(cat $t/comm)\" = %s ] && "
			       "sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' $t/status; done | "
			       "awk -F, '{n=0; for (i=1;i<=NF;i++) {k=split($i,r,\"-\"); n+=(k==2?r[2]-r[1]+1:1)} print n}'",
			       (int)pid, comm);
	}
	return n;
}

static void run(bool compat)
{
	const char *mode = compat ? "linux-5.13" : "fixed";
	/* The compat run also leaves its data threads to the scheduler. */
	const char *extra_compat[] = { "--max-queues", "8", "--compat", "linux-5.13", "--no-affinity", NULL };
	const char *extra_fixed[] = { "--max-queues", "8", NULL };
	const char *ns = e2e_netns(compat ? "nc" : "nf");
	long ncpus, n;
	cpu_set_t allowed;
	struct mts_guest *g = calloc(1, sizeof(*g));
	uint32_t domid = 0;
	unsigned mark;
	char *t;

	printf("# mode %s\n", mode);
	if (mts_domain_create(&ha, &domid, false, 0) < 0 || mts_vif_add(&ha, domid, 0, MACS[0]) < 0 ||
	    mts_guest_start(g, &ha, domid, ns, e2e_tmpdir(), compat ? extra_compat : extra_fixed) < 0) {
		CHECK(false, "%s: domain, vif and guest", mode);
		return;
	}
	e2e_atexit_guest(g);
	/* The CPUs pvnet-guest may use (what pinning picks from). */
	ncpus = sched_getaffinity(g->pid, sizeof(allowed), &allowed) == 0 ? CPU_COUNT(&allowed) : -1;
	CHECK(e2e_wait_control(g, "trace-norm", "notify_peers", 1, 10000), "%s: connected to netback", mode);
	e2e_sh("ip -n %s addr add 10.88.0.2/24 dev eth0 && ip -n %s link set eth0 up", ns, ns);
	CHECK(e2e_wait_control(g, "trace-norm", "netif_tx_start_queue", 8, 5000), "%s: open starts 8 queues", mode);
	t = e2e_trace_norm(g, 0);
	CHECK(e2e_golden(t, "boot-open.txt"), "%s: boot + open by netlink = the field notes", mode);
	free(t);
	CHECK(ping_guest(), "%s: ping the guest on host A", mode);
	/* Pinned: within 2 s of the queue's channel coming up. Not pinned:
	 * still every CPU after the ping and 300 ms more (netfront pins as
	 * soon as a queue's channel is up, before its first frame). */
	if (compat)
		usleep(300000);
	n = thread_ncpus(g->pid, "eth0-q7", compat ? ncpus : 1);
	if (ncpus < 2)
		printf("# one CPU: a pinned data thread cannot be told from an unpinned one\n");
	else
		CHECK(n == (compat ? ncpus : 1), "%s: data thread eth0-q7 %s (%ld of %ld CPUs)", mode,
		      compat ? "left to the scheduler (--no-affinity)" : "pinned to one CPU", n, ncpus);

	t = mts_control(g, "trace-norm");
	mark = e2e_lines(t);
	free(t);
	CHECK(mts_migrate(g, &hb, DEVIDS, MACS, 1, NULL, NULL, NULL, NULL) == 0, "%s: migrate to host B", mode);
	CHECK(e2e_wait_control(g, "trace-norm", "notify_peers", 2, 10000), "%s: connected to host B's netback", mode);
	t = e2e_trace_norm(g, mark);
	CHECK(e2e_golden(t, compat ? "migration.linux-5.13.txt" : "migration.fixed.txt"),
	      "%s: live migration = the %s sequence", mode, compat ? "field notes'" : "v5.15");
	free(t);
	CHECK(ping_guest(), "%s: ping the guest on host B", mode);
	tcp_both_ways(ns, mode);

	e2e_sh("ip -n %s link set eth0 down", ns);
	/* The mark goes after the close's last queue stop: lines traced
	 * while it is still stopping queues are not the ifconfig's. */
	t = wait_close_done(g, "close eth0 netlink", 8);
	mark = e2e_lines(t);
	free(t);
	e2e_sh("ip netns exec %s ifconfig eth0 up", ns);
	e2e_wait_control(g, "trace-norm", "open eth0 ioctl", 1, 3000);
	e2e_sh("ip netns exec %s ifconfig eth0 down", ns);
	e2e_wait_control(g, "trace-norm", "close eth0 ioctl", 1, 3000);
	usleep(100000);
	t = e2e_trace_norm(g, mark);
	CHECK(e2e_golden(t, "ifconfig.txt"), "%s: ifconfig up/down = the field notes", mode);
	free(t);
	CHECK(e2e_state_num(g, "broken") == 0, "%s: never broken", mode);
	if (!compat)
		CHECK(e2e_state_num(g, "race") == 0, "%s: the race counter stayed at 0", mode);
	CHECK(mts_guest_stop(g) == 0, "%s: pvnet-guest stops cleanly", mode);
	mts_domain_destroy(g->host, g->domid);
}

int main(void)
{
	char va[16], vb[16];

	e2e_require();
	nsa = e2e_netns("ha");
	nsb = e2e_netns("hb");
	snprintf(va, sizeof(va), "pgva%x", (unsigned)getpid() & 0xffff);
	snprintf(vb, sizeof(vb), "pgvb%x", (unsigned)getpid() & 0xffff);
	if (mts_host_start(&ha, e2e_tmpdir(), "hostA") < 0 || mts_host_start(&hb, e2e_tmpdir(), "hostB") < 0 ||
	    mts_host_add_netback(&ha, nsa, 8) < 0 || mts_host_add_netback(&hb, nsb, 8) < 0) {
		CHECK(false, "start two hosts with netback");
		return e2e_done();
	}
	e2e_atexit_host(&ha);
	e2e_atexit_host(&hb);
	CHECK(e2e_sh("ip link add %s netns %s type veth peer name %s netns %s && "
		     "ip -n %s link set %s master xenbr0 up && ip -n %s link set %s master xenbr0 up && "
		     "ip -n %s addr add 10.88.0.1/24 dev xenbr0",
		     va, nsa, vb, nsb, nsa, va, nsb, vb, nsa) == 0, "join the hosts' bridges");
	run(true);
	run(false);
	return e2e_done();
}
