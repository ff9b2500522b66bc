/*
 * `pvnet demo` — the main job. Builds a client, a switch and two hosts
 * (design.md's picture), boots a guest with 8 queues on host A, runs ping and
 * an iperf3 TCP stream from the client to the guest, migrates the guest
 * A -> B -> A ... under that load, and reports: the netfront trace of the
 * first migration in the field notes' style, per-migration blackout and loss,
 * whether the TCP stream survived, throughput before/during/after. Everything
 * it makes lives under a private root and is removed at the end, also on
 * Ctrl-C.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "toolstack/cli.h"
#include "toolstack/guests.h"
#include "toolstack/lab.h"
#include "toolstack/migrate.h"
#include "toolstack/verbs.h"

#define DEMO_MAX_MIG 50

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

struct demo {
	struct cli *c;
	char sw[16], cl[16], ha[16], hb[16], guest[16];
	bool have_sw, have_cl, have_a, have_b, have_guest;
	pid_t ping_pid, iperf_srv_pid, iperf_cli_pid;
	char ping_out[600], iperf_out[600];
	uint64_t iperf_t0;
};

static pid_t spawn_to_file(const char *out, char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int devnull = open("/dev/null", O_RDONLY);
		signal(SIGINT, SIG_DFL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (devnull >= 0)
			dup2(devnull, 0);
		setpgid(0, 0); /* our Ctrl-C handling decides when it stops */
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void stop_child(pid_t *pid, int sig, int wait_ms)
{
	int st;
	if (*pid <= 0)
		return;
	kill(*pid, sig);
	for (int i = 0; i < wait_ms / 10; i++) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		pv_sleep_ns(10000000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, &st, 0);
	*pid = 0;
}

static void demo_cleanup(struct demo *d)
{
	char dir[512];

	printf("cleaning up ...\n");
	stop_child(&d->iperf_cli_pid, SIGINT, 2000);
	stop_child(&d->ping_pid, SIGINT, 1000);
	stop_child(&d->iperf_srv_pid, SIGTERM, 1000);
	if (d->have_guest) {
		char *args[] = { "destroy", d->guest, NULL };
		d->c->quiet = true;
		verb_find("destroy")->run(d->c, 2, args);
	}
	if (d->have_a)
		host_teardown(d->c, d->ha);
	if (d->have_b)
		host_teardown(d->c, d->hb);
	if (d->have_cl)
		client_destroy(d->c, d->cl);
	if (d->have_sw)
		switch_destroy(d->c, d->sw);
	pv_strlcpy(dir, d->c->root, sizeof(dir));
	cli_rmtree(dir);
}

/* Sleep in small steps so Ctrl-C is noticed. */
static bool demo_sleep(uint64_t ms)
{
	for (uint64_t i = 0; i < ms / 20 && !interrupted; i++)
		pv_sleep_ns(20000000);
	return !interrupted;
}

static double median_of(double *v, unsigned n, double pct)
{
	/* insertion sort: n is small */
	for (unsigned i = 1; i < n; i++)
		for (unsigned k = i; k > 0 && v[k - 1] > v[k]; k--) {
			double t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	if (!n)
		return 0;
	unsigned idx = (unsigned)(pct * (double)(n - 1) + 0.5);
	return v[idx < n ? idx : n - 1];
}

/* Average Gbit/s of iperf3 -J intervals (seconds relative to iperf start)
 * that lie in [from, to). */
static double iperf_avg(const char *json, double from, double to, unsigned *count)
{
	const char *p = strstr(json, "\"intervals\"");
	const char *end = p ? strstr(p, "\"end\":\t{") : NULL;
	double sum = 0;
	unsigned n = 0;

	if (!end && p)
		end = strstr(p, "\"end\": {");
	while (p && (p = strstr(p, "\"sum\":")) && (!end || p < end)) {
		double s, e, bps;
		const char *q;
		if (!(q = strstr(p, "\"start\":")) || sscanf(q + 8, "%lf", &s) != 1 ||
		    !(q = strstr(p, "\"end\":")) || sscanf(q + 6, "%lf", &e) != 1 ||
		    !(q = strstr(p, "\"bits_per_second\":")) || sscanf(q + 18, "%lf", &bps) != 1)
			break;
		if (s >= from && e <= to) {
			sum += bps;
			n++;
		}
		p += 6;
	}
	if (count)
		*count = n;
	return n ? sum / n / 1e9 : 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static int verb_demo(struct cli *c, int argc, char **argv)
{
	struct demo d = { .c = c };
	struct migrate_report reps[DEMO_MAX_MIG];
	unsigned migrations = 6, queues = 8, done = 0, gap_ms = 1500;
	const char *compat = NULL;
	char err[1024], gns[64], cns[64], path[600], dur[16], sfx[8];
	static char trace_before[1 << 18], trace_after[1 << 18];
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--migrations") && i + 1 < argc) {
			if (pv_parse_uint(argv[++i], DEMO_MAX_MIG, &migrations) < 0 || !migrations)
				return cli_fail("--migrations takes 1 to %d", DEMO_MAX_MIG);
		} else if (!strcmp(argv[i], "--queues") && i + 1 < argc) {
			if (pv_parse_uint(argv[++i], 16, &queues) < 0 || !queues)
				return cli_fail("--queues takes 1 to 16");
		} else if (!strcmp(argv[i], "--compat") && i + 1 < argc) {
			compat = argv[++i];
		} else {
			return cli_usage(verb_find("demo"));
		}
	}
	/* A private root: the demo never touches the user's own lab. */
	snprintf(c->root, sizeof(c->root), "/run/pvnet-demo-%d", (int)getpid());
	snprintf(sfx, sizeof(sfx), "%x", (unsigned)getpid() & 0xfff);
	snprintf(d.sw, sizeof(d.sw), "dsw%s", sfx);
	snprintf(d.cl, sizeof(d.cl), "dcl%s", sfx);
	snprintf(d.ha, sizeof(d.ha), "dA%s", sfx);
	snprintf(d.hb, sizeof(d.hb), "dB%s", sfx);
	snprintf(d.guest, sizeof(d.guest), "dg%s", sfx);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("pvnet demo: a guest with %u queues, live-migrated %u times between two hosts under ping and iperf3 load\n\n",
	       queues, migrations);
	printf("  client ──veth── switch (br0) ──veth── host %s: xenbr0 ── vif (TAP) ══ rings ══ guest eth0\n", d.ha);
	printf("                                 └─veth── host %s: xenbr0 ── vif (TAP)\n\n", d.hb);
	if (cli_lock(c) < 0)
		return cli_fail("cannot create %s", c->root);

	printf("[1/5] building the lab (state in %s)\n", c->root);
	const char *cip[] = { "10.99.0.1/24" };
	if (switch_create(c, d.sw, err, sizeof(err)) < 0)
		goto fail;
	d.have_sw = true;
	if (client_create(c, d.cl, d.sw, cip, 1, err, sizeof(err)) < 0)
		goto fail;
	d.have_cl = true;
	if (host_create(c, d.ha, d.sw, queues, true, err, sizeof(err)) < 0)
		goto fail;
	d.have_a = true;
	if (host_create(c, d.hb, d.sw, queues, true, err, sizeof(err)) < 0)
		goto fail;
	d.have_b = true;
	if (interrupted)
		goto out;

	printf("[2/5] booting guest %s on host %s\n", d.guest, d.ha);
	{
		char q[8];
		char *args[12];
		int n = 0;
		snprintf(q, sizeof(q), "%u", queues);
		args[n++] = "create";
		args[n++] = d.guest;
		args[n++] = "--host";
		args[n++] = d.ha;
		args[n++] = "--queues";
		args[n++] = q;
		args[n++] = "--vif";
		args[n++] = "ip=10.99.0.2/24";
		if (compat) {
			args[n++] = "--compat";
			args[n++] = (char *)compat;
		}
		args[n] = NULL;
		d.have_guest = true;
		if (verb_find("create")->run(c, n, args) != 0) {
			snprintf(err, sizeof(err), "the guest did not boot");
			goto fail;
		}
	}
	guest_netns(d.guest, gns, sizeof(gns));
	lab_netns(cns, sizeof(cns), 'c', d.cl);
	if (cli_runv(err, sizeof(err), "ip", "netns", "exec", cns, "ping", "-c", "3", "-i", "0.2", "-W", "2",
		     "10.99.0.2", NULL) != 0) {
		snprintf(err, sizeof(err), "the client cannot ping the guest");
		goto fail;
	}
	if (interrupted)
		goto out;

	printf("[3/5] traffic: ping every 10 ms and an iperf3 TCP stream, client -> guest\n");
	{
		/* Long enough for every migration: each takes its gap plus up
		 * to ~1.5 s (the migration and its probes' settling). */
		unsigned secs = 4 + migrations * (gap_ms + 1500) / 1000 + 3;
		snprintf(dur, sizeof(dur), "%u", secs);
		snprintf(path, sizeof(path), "%s/iperf3-server.log", c->root);
		char *srv[] = { "ip", "netns", "exec", gns, "iperf3", "-s", "-1", NULL };
		d.iperf_srv_pid = spawn_to_file(path, srv);
		pv_sleep_ns(300000000);
		snprintf(d.iperf_out, sizeof(d.iperf_out), "%s/iperf3.json", c->root);
		char *cl[] = { "ip", "netns", "exec", cns, "iperf3", "-c", "10.99.0.2", "-t", dur, "-i", "0.5", "-J", NULL };
		d.iperf_t0 = pv_now_ns();
		d.iperf_cli_pid = spawn_to_file(d.iperf_out, cl);
		snprintf(d.ping_out, sizeof(d.ping_out), "%s/ping.txt", c->root);
		char *pg[] = { "ip", "netns", "exec", cns, "ping", "-i", "0.01", "-q", "10.99.0.2", NULL };
		d.ping_pid = spawn_to_file(d.ping_out, pg);
	}
	if (!demo_sleep(4000))
		goto out;

	printf("[4/5] migrating under load\n");
	{
		char sock[600];
		guest_dir(c, d.guest, path, sizeof(path));
		snprintf(sock, sizeof(sock), "%s/control.sock", path);
		ctl_query(sock, "trace", trace_before, sizeof(trace_before));
	}
	for (done = 0; done < migrations && !interrupted; done++) {
		struct migrate_opts o = { .probe = true };
		const char *to = (done % 2 == 0) ? d.hb : d.ha;
		if (migrate_run(c, d.guest, to, &o, &reps[done], err, sizeof(err)) < 0) {
			printf("  migration %u failed: %s\n", done + 1, err);
			goto fail;
		}
		struct migrate_report *r = &reps[done];
		printf("  #%u %s -> %s: total %.1f ms, downtime %.1f ms, blackout %.2f ms, lost %lu/%lu, GARP %s, TCP %u/%u\n",
		       done + 1, r->src, r->dst, (double)(r->t_done - r->t_request) / 1e6,
		       (double)(r->t_resumed - r->t_suspended) / 1e6, (double)migrate_blackout_ns(r) / 1e6,
		       (unsigned long)(r->to_guest.sent - r->to_guest.received),
		       (unsigned long)(r->from_guest.sent - r->from_guest.received),
		       r->dest.garp_ns ? "seen" : "missing", r->tcp_after, r->tcp_before);
		if (done == 0) {
			char sock[600];
			guest_dir(c, d.guest, path, sizeof(path));
			snprintf(sock, sizeof(sock), "%s/control.sock", path);
			ctl_query(sock, "trace", trace_after, sizeof(trace_after));
		}
		if (!demo_sleep(gap_ms))
			break;
	}
	if (interrupted)
		goto out;

	/* Let iperf3 finish its run. */
	{
		int st = 0;
		uint64_t deadline = pv_now_ns() + 30000000000ull;
		while (d.iperf_cli_pid > 0 && pv_now_ns() < deadline && !interrupted) {
			if (waitpid(d.iperf_cli_pid, &st, WNOHANG) == d.iperf_cli_pid) {
				d.iperf_cli_pid = 0;
				break;
			}
			pv_sleep_ns(50000000);
		}
	}
	stop_child(&d.ping_pid, SIGINT, 2000);

	printf("[5/5] results\n\n");
	printf("netfront trace of the first migration (kernel-log style, as in the field notes):\n");
	{
		unsigned skip = count_lines(trace_before), line = 0;
		for (char *p = trace_after, *nl; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl)
				break;
			if (line++ >= skip)
				printf("  %.*s\n", (int)(nl - p), p);
		}
	}
	printf("\nper migration:\n");
	printf("  %-3s %-14s %9s %9s %10s %12s %12s %6s %5s\n", "#", "route", "total ms", "down ms", "blackout",
	       "lost to g.", "lost from g.", "GARP", "TCP");
	double bo[DEMO_MAX_MIG];
	unsigned nbo = 0;
	bool tcp_ok = true;
	for (unsigned i = 0; i < done; i++) {
		struct migrate_report *r = &reps[i];
		char route[40];
		snprintf(route, sizeof(route), "%s->%s", r->src, r->dst);
		double b = (double)migrate_blackout_ns(r) / 1e6;
		if (b > 0)
			bo[nbo++] = b;
		tcp_ok = tcp_ok && r->tcp_after == r->tcp_before;
		printf("  %-3u %-14s %9.2f %9.2f %7.2f ms %6lu/%-5lu %6lu/%-5lu %6s %2u/%u\n", i + 1, route,
		       (double)(r->t_done - r->t_request) / 1e6, (double)(r->t_resumed - r->t_suspended) / 1e6, b,
		       (unsigned long)(r->to_guest.sent - r->to_guest.received), (unsigned long)r->to_guest.sent,
		       (unsigned long)(r->from_guest.sent - r->from_guest.received), (unsigned long)r->from_guest.sent,
		       r->dest.garp_ns ? (r->dest.first_reply_ns && r->dest.first_reply_ns < r->dest.garp_ns ? "late" : "first") : "none",
		       r->tcp_after, r->tcp_before);
	}
	if (nbo)
		printf("\nnetwork blackout over %u migrations: median %.2f ms, p99 %.2f ms, max %.2f ms\n", nbo,
		       median_of(bo, nbo, 0.5), median_of(bo, nbo, 0.99), median_of(bo, nbo, 1.0));
	{
		char *json = slurp(d.iperf_out);
		double t_first = done ? (double)(reps[0].t_request - d.iperf_t0) / 1e9 : 0;
		double t_last = done ? (double)(reps[done - 1].t_done - d.iperf_t0) / 1e9 : 0;
		unsigned nb, nd, na;
		if (json) {
			double before = iperf_avg(json, 0.5, t_first - 0.25, &nb);
			double during = iperf_avg(json, t_first - 0.25, t_last + 0.5, &nd);
			double after = iperf_avg(json, t_last + 0.5, 1e9, &na);
			bool error = strstr(json, "\"error\"") != NULL;
			printf("TCP stream (iperf3): %s; throughput before %.2f Gbit/s, during %.2f Gbit/s, after %.2f Gbit/s\n",
			       error ? "FAILED (see the iperf3 log)" : "survived every migration", before, during, after);
			tcp_ok = tcp_ok && !error;
			free(json);
		} else {
			printf("TCP stream (iperf3): no result\n");
			tcp_ok = false;
		}
		char *ping = slurp(d.ping_out);
		char *stat = ping ? strstr(ping, "packets transmitted") : NULL;
		if (stat) {
			while (stat > ping && stat[-1] != '\n')
				stat--;
			printf("ping (every 10 ms): %.*s\n", (int)strcspn(stat, "\n"), stat);
		}
		free(ping);
	}
	rc = tcp_ok ? 0 : 1;
	goto out;
fail:
	cli_fail("demo: %s", err);
out:
	if (interrupted)
		printf("\ninterrupted\n");
	demo_cleanup(&d);
	return interrupted ? 130 : rc;
}

const struct cli_verb demo_verbs[] = {
	{ "demo", verb_demo, "[--migrations N] [--queues N] [--compat linux-5.13]",
	  "the main job: two hosts, a guest, ping + iperf3, live migrations back and forth, a report; cleans up after itself" },
	{ NULL, NULL, NULL, NULL },
};
