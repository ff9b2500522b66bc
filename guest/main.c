/*
 * pvnet-guest: the guest runtime of one domain — xenbus frontend bus,
 * suspend/resume, netfront (docs/guest.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/util.h"
#include "guest/ifwatch.h"
#include "guest/runtime.h"
#include "hypervisor/hv.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvnet-guest --xenstore PATH --hypervisor PATH [options]\n"
		"  --xenstore PATH       this domain's xenstore socket (<rundir>/domains/<domid>.sock)\n"
		"  --hypervisor PATH     this domain's hypervisor socket\n"
		"  --netns NAME          run in network namespace /run/netns/NAME\n"
		"  --control PATH        control socket (trace, trace-json, trace-norm, stats, state)\n"
		"  --max-queues N        tx/rx queues per vif, 1..%u (default min(%u, CPUs))\n"
		"  --compat linux-5.13   Linux v5.13 ordering across migration (no detach/attach)\n"
		"  --notify-count N      announcement rounds per backend Connected (default 1, as Linux)\n"
		"  --notify-interval MS  between rounds (default 200)\n"
		"  --no-announce-first   after a move, announce only on backend Connected, as Linux\n"
		"                        (default: one round goes on the ring ahead of the frames\n"
		"                        queued across the move; docs/guest.md)\n"
		"  --no-affinity         leave the data threads to the scheduler (default: queue N of\n"
		"                        vif V on allowed CPU (domid+V+N) mod count, as netback does)\n"
		"  --connect-timeout MS  a backend that does not connect in time breaks the device\n"
		"                        (default 30000; 0 waits forever, as Linux)\n"
		"  --txqueuelen N        eth<N> tx queue length (default 10000)\n"
		"  --trace-size N        trace events kept in memory (default 16384)\n"
		"  --trace-file PATH     also append every trace event to PATH\n"
		"  --trace-format F      klog (default) or json, for --trace-file\n"
		PV_DAEMON_HELP, NF_MAX_QUEUES, NF_DEFAULT_MAX_QUEUES);
}

enum {
	OPT_XS = 1, OPT_HV, OPT_NETNS, OPT_CONTROL, OPT_MAXQ, OPT_COMPAT, OPT_NCOUNT, OPT_NINT,
	OPT_CTIMEOUT, OPT_TXQLEN, OPT_TSIZE, OPT_TFILE, OPT_TFMT, OPT_NOANN, OPT_NOAFF, OPT_HELP,
};

static int parse_num(const char *opt, const char *arg, unsigned min, unsigned max, unsigned *out)
{
	if (pv_parse_uint(arg, max, out) < 0 || *out < min) {
		fprintf(stderr, "pvnet-guest: %s takes a number from %u to %u\n", opt, min, max);
		return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct gr_opts *o, struct pv_daemon_opts *d)
{
	static const struct option longopts[] = {
		{ "xenstore", required_argument, 0, OPT_XS },
		{ "hypervisor", required_argument, 0, OPT_HV },
		{ "netns", required_argument, 0, OPT_NETNS },
		{ "control", required_argument, 0, OPT_CONTROL },
		{ "max-queues", required_argument, 0, OPT_MAXQ },
		{ "compat", required_argument, 0, OPT_COMPAT },
		{ "notify-count", required_argument, 0, OPT_NCOUNT },
		{ "notify-interval", required_argument, 0, OPT_NINT },
		{ "connect-timeout", required_argument, 0, OPT_CTIMEOUT },
		{ "txqueuelen", required_argument, 0, OPT_TXQLEN },
		{ "trace-size", required_argument, 0, OPT_TSIZE },
		{ "trace-file", required_argument, 0, OPT_TFILE },
		{ "trace-format", required_argument, 0, OPT_TFMT },
		{ "no-announce-first", no_argument, 0, OPT_NOANN },
		{ "no-affinity", no_argument, 0, OPT_NOAFF },
		{ "help", no_argument, 0, OPT_HELP },
		PV_DAEMON_LONGOPTS,
		{ 0, 0, 0, 0 },
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int c, r;

	o->max_queues = (unsigned)PV_MIN(NF_DEFAULT_MAX_QUEUES, cpus > 0 ? cpus : 1);
	o->notify_count = 1;
	o->notify_interval_ms = 200;
	o->connect_timeout_ms = 30000;
	o->txqueuelen = 10000;
	o->trace_capacity = 16384;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_XS: o->xenstore_path = optarg; break;
		case OPT_HV: o->hypervisor_path = optarg; break;
		case OPT_NETNS: o->netns = optarg; break;
		case OPT_CONTROL: o->control_path = optarg; break;
		case OPT_MAXQ:
			if (parse_num("--max-queues", optarg, 1, NF_MAX_QUEUES, &o->max_queues) < 0)
				return -1;
			break;
		case OPT_COMPAT:
			if (strcmp(optarg, "linux-5.13") != 0) {
				fprintf(stderr, "pvnet-guest: unknown --compat '%s' (linux-5.13)\n", optarg);
				return -1;
			}
			o->mode = NF_MODE_LINUX_5_13;
			break;
		case OPT_NCOUNT:
			if (parse_num("--notify-count", optarg, 1, 100, &o->notify_count) < 0)
				return -1;
			break;
		case OPT_NINT:
			if (parse_num("--notify-interval", optarg, 1, 60000, &o->notify_interval_ms) < 0)
				return -1;
			break;
		case OPT_CTIMEOUT:
			if (parse_num("--connect-timeout", optarg, 0, 3600000, &o->connect_timeout_ms) < 0)
				return -1;
			break;
		case OPT_TXQLEN:
			if (parse_num("--txqueuelen", optarg, 1, 1000000, &o->txqueuelen) < 0)
				return -1;
			break;
		case OPT_TSIZE:
			if (parse_num("--trace-size", optarg, 16, 1u << 22, &o->trace_capacity) < 0)
				return -1;
			break;
		case OPT_TFILE: o->trace_file = optarg; break;
		case OPT_NOANN: o->no_announce_first = true; break;
		case OPT_NOAFF: o->no_affinity = true; break;
		case OPT_TFMT:
			if (!strcmp(optarg, "json")) {
				o->trace_file_fmt = GR_TRACE_JSON;
			} else if (!strcmp(optarg, "klog")) {
				o->trace_file_fmt = GR_TRACE_KLOG;
			} else {
				fprintf(stderr, "pvnet-guest: --trace-format is klog or json\n");
				return -1;
			}
			break;
		case OPT_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			r = pv_daemon_opt(d, c, optarg);
			if (r == 1)
				break;
			if (r == 0)
				usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !o->xenstore_path || !o->hypervisor_path) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int enter_netns(const char *name)
{
	char path[256];
	int fd, r = 0;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET) < 0)
		r = -errno;
	close(fd);
	return r;
}

static void on_signal(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;
	(void)events; (void)arg;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		pv_info("signal %u: stopping", si.ssi_signo);
		pv_loop_stop(loop);
	}
}

static void on_link(void *arg, int ifindex, bool up, enum gr_how how)
{
	gr_bus_link_changed(arg, ifindex, up, how);
}

static void on_linkmon(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct gr_rt *rt = arg;
	(void)loop; (void)fd; (void)events;
	int r = gr_ifwatch_read(rt->ifw, on_link, rt);
	if (r < 0)
		pv_warn("link monitor: %s", strerror(-r));
}

int main(int argc, char **argv)
{
	struct pv_daemon_opts dopts;
	struct gr_rt rt;
	struct gr_control *ctl = NULL;
	int r, rc = 1;

	memset(&rt, 0, sizeof(rt));
	pv_daemon_opts_init(&dopts);
	if (parse_args(argc, argv, &rt.o, &dopts) < 0)
		return 2;
	/* Before any thread exists: every thread inherits the namespace. */
	if (rt.o.netns && (r = enter_netns(rt.o.netns)) < 0) {
		fprintf(stderr, "pvnet-guest: entering network namespace %s: %s\n", rt.o.netns, strerror(-r));
		return 1;
	}
	if (pv_daemon_start(&dopts, "pvnet-guest") < 0)
		return 1;
	rt.t0 = pv_now_ns();
	rt.sigfd = pv_daemon_signalfd();
	pthread_mutex_init(&rt.devs_lock, NULL);
	pthread_mutex_init(&rt.fz_lock, NULL);
	pthread_cond_init(&rt.fz_cond, NULL);
	rt.trace = gr_trace_new(rt.o.trace_capacity);
	rt.loop = pv_loop_new();
	if (!rt.trace || !rt.loop || rt.sigfd < 0) {
		pv_err("out of memory or signals unavailable");
		goto out;
	}
	if (rt.o.trace_file && (r = gr_trace_set_file(rt.trace, rt.o.trace_file, rt.o.trace_file_fmt)) < 0) {
		pv_err("trace file %s: %s", rt.o.trace_file, strerror(-r));
		goto out;
	}
	gr_trace_set_log(rt.trace, 1);
	rt.ifw = gr_ifwatch_open(rt.o.netns);
	if (!rt.ifw) {
		pv_err("link monitor: %s", strerror(errno));
		goto out;
	}
	rt.hvc = gr_hvctx_open(rt.o.hypervisor_path);
	if (!rt.hvc) {
		pv_err("hypervisor at %s: %s", rt.o.hypervisor_path, strerror(errno));
		goto out;
	}
	if ((r = gr_memory_map(&rt, rt.hvc)) < 0) {
		pv_err("mapping the domain's memory: %s", strerror(-r));
		goto out;
	}
	pv_info("domain %u: %zu pages of I/O memory, %u queues max, %s mode", rt.hvc->domid, rt.mem_pages,
		rt.o.max_queues, rt.o.mode == NF_MODE_FIXED ? "fixed (v5.15+)" : "linux-5.13");
	if (rt.o.control_path && !(ctl = gr_control_start(&rt, rt.o.control_path))) {
		pv_err("control socket %s: %s", rt.o.control_path, strerror(errno));
		goto out;
	}
	if (pv_loop_add_fd(rt.loop, rt.sigfd, EPOLLIN, on_signal, &rt) < 0 ||
	    pv_loop_add_fd(rt.loop, gr_ifwatch_fd(rt.ifw), EPOLLIN, on_linkmon, &rt) < 0 ||
	    gr_bus_start(&rt) < 0)
		goto out;
	pv_daemon_ready(&dopts);
	r = pv_loop_run(rt.loop);
	rc = r < 0 ? 1 : 0;
out:
	gr_bus_stop(&rt);
	gr_control_stop(ctl);
	gr_ifwatch_close(rt.ifw);
	if (rt.pa)
		pv_pagealloc_free(rt.pa);
	gr_hvctx_close(rt.hvc);
	gr_trace_free(rt.trace);
	pv_loop_free(rt.loop);
	if (rt.sigfd >= 0)
		close(rt.sigfd);
	pv_daemon_stop(&dopts);
	return rc;
}
