/* pvnet-hypervisor: domains, guest I/O memory, grant tables, event channels,
 * suspend and move for one host. See docs/hypervisor.md. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/util.h"
#include "hypervisor/hvd.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvnet-hypervisor --rundir DIR [options]\n"
		"The hypervisor of one pvnet host: domains, guest I/O memory, grant tables,\n"
		"event channels, suspend and move. DIR/socket is dom0's socket;\n"
		"DIR/domains/<domid>.sock is each domain's.\n\n"
		PV_DAEMON_HELP
		"  --mem-pages N        default I/O memory of a domain, 4 KiB pages (%u)\n"
		"  --dom0-mem-pages N   dom0's I/O memory, for grant-copy buffers (%u)\n"
		"  --grant-frames N     default grant table size, frames of 512 entries (%u)\n"
		"  --max-maptrack N     default limit of grant mappings a domain holds (%u)\n"
		"  --max-ports N        default highest event-channel port of a domain (%u)\n"
		"  --dom0-max-ports N   dom0's highest event-channel port (%u)\n"
		"  --help               this text\n",
		HVD_DEF_MEM_PAGES, HVD_DEF_MEM_PAGES, HVD_DEF_GRANT_FRAMES, HVD_DEF_MAX_MAPTRACK,
		HVD_DEF_MAX_PORTS, HVD_DEF_DOM0_PORTS);
}

static void on_signal(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		pv_info("signal %u: stopping", si.ssi_signo);
	pv_loop_stop(loop);
}

/* Each event channel costs the daemon two eventfds: lift the soft limit. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int parse_num(const char *opt, const char *arg, uint32_t max, uint32_t *out)
{
	unsigned v;

	if (pv_parse_uint(arg, max, &v) < 0 || v == 0) {
		fprintf(stderr, "pvnet-hypervisor: %s needs a number from 1 to %u\n", opt, max);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		PV_DAEMON_LONGOPTS,
		{ "mem-pages", required_argument, 0, 'm' },
		{ "dom0-mem-pages", required_argument, 0, 'M' },
		{ "grant-frames", required_argument, 0, 'g' },
		{ "max-maptrack", required_argument, 0, 't' },
		{ "max-ports", required_argument, 0, 'p' },
		{ "dom0-max-ports", required_argument, 0, 'P' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 }
	};
	struct pv_daemon_opts dopts;
	struct hvd_opts o = { 0 };
	struct pv_loop *loop = NULL;
	struct hvd *h = NULL;
	int c, r, sfd = -1, rc = 1;

	pv_daemon_opts_init(&dopts);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		r = pv_daemon_opt(&dopts, c, optarg);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (c) {
		case 'm': r = parse_num("--mem-pages", optarg, HVD_MAX_MEM_PAGES, &o.mem_pages); break;
		case 'M': r = parse_num("--dom0-mem-pages", optarg, HVD_MAX_MEM_PAGES, &o.dom0_mem_pages); break;
		case 'g': r = parse_num("--grant-frames", optarg, HVD_MAX_GRANT_FRAMES, &o.grant_frames); break;
		case 't': r = parse_num("--max-maptrack", optarg, HVD_MAX_MAPTRACK, &o.max_maptrack); break;
		case 'p': r = parse_num("--max-ports", optarg, HVD_MAX_PORTS, &o.max_ports); break;
		case 'P': r = parse_num("--dom0-max-ports", optarg, HVD_MAX_PORTS, &o.dom0_max_ports); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (r < 0)
			return 2;
	}
	if (optind < argc || !dopts.rundir) {
		fprintf(stderr, "pvnet-hypervisor: %s\n",
			optind < argc ? "unexpected argument" : "--rundir is required");
		usage(stderr);
		return 2;
	}
	o.rundir = dopts.rundir;
	if (pv_daemon_start(&dopts, "pvnet-hypervisor") < 0)
		return 1;
	raise_nofile();
	sfd = pv_daemon_signalfd();
	loop = pv_loop_new();
	if (sfd < 0 || !loop || pv_loop_add_fd(loop, sfd, EPOLLIN, on_signal, NULL) < 0) {
		pv_err("cannot set up the event loop");
		goto out;
	}
	h = hvd_new(&o, loop);
	if (!h) {
		pv_err("cannot serve in %s: %s", o.rundir, strerror(errno));
		goto out;
	}
	pv_info("serving in %s", o.rundir);
	pv_daemon_ready(&dopts);
	r = pv_loop_run(loop);
	rc = r < 0 ? 1 : 0;
	if (r < 0)
		pv_err("event loop: %s", strerror(-r));
out:
	hvd_free(h);
	pv_loop_free(loop);
	if (sfd >= 0)
		close(sfd);
	pv_daemon_stop(&dopts);
	return rc;
}
