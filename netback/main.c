/*
 * pvnet-netback: the dom0 vif backend of one host (docs/netback.md).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"
#include "netback/backend.h"
#include "netback/ctl.h"
#include "netback/keys.h"
#include "netback/txparse.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvnet-netback --rundir DIR [options]\n"
		"The dom0 vif backend: serves every vif under backend/vif of this host's xenstore.\n"
		"  --xenstore PATH      xenstored socket (default $XENSTORED_PATH)\n"
		"  --hypervisor PATH    hypervisor dom0 socket (default $PVNET_HYPERVISOR)\n"
		"  --max-queues N       multi-queue-max-queues (default min(8, CPUs), at most %u)\n"
		"  --fatal-slots N      slots per packet that disable a vif (Linux fatal_skb_slots;\n"
		"                       default %u, at least %u)\n"
		"  --rx-drain-timeout MS  frames waiting that long for rx buffers are dropped\n"
		"                       (Linux rx_drain_timeout_msecs, default 10000; 30 without\n"
		"                       feature-rx-notify)\n"
		"  --rx-stall-timeout MS  no rx buffers for that long: carrier off until they come\n"
		"                       (Linux rx_stall_timeout_msecs, default 60000; off without\n"
		"                       feature-rx-notify)\n"
		"  --map-grants         map the frontend's pages instead of grant-copying them\n"
		"                       (also what happens without dom0 I/O memory)\n"
		"  --hypervisor-copies  every grant copy done by the hypervisor, as for a backend\n"
		"                       in a driver domain (default: dom0 copies in-process)\n"
		"  --no-affinity        leave the queue threads to the scheduler (default: queue N\n"
		"                       of domain D's vif V on allowed CPU (D+V+N) mod count, where\n"
		"                       pvnet-guest runs that queue's thread)\n"
		PV_DAEMON_HELP
		"  --help               this text\n"
		"Control socket: <rundir>/netback.sock (\"stats\", \"stats <vif>\", \"help\").\n",
		NB_MAX_QUEUES_LIMIT, NB_FATAL_SKB_SLOTS_DEFAULT, NB_LEGACY_SLOTS_MAX);
}

static void on_signal(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events; (void)arg;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		pv_info("SIGHUP ignored");
		return;
	}
	pv_info("signal %u: stopping", si.ssi_signo);
	pv_loop_stop(loop);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		PV_DAEMON_LONGOPTS,
		{ "xenstore", required_argument, 0, 'x' },
		{ "hypervisor", required_argument, 0, 'H' },
		{ "max-queues", required_argument, 0, 'q' },
		{ "fatal-slots", required_argument, 0, 'f' },
		{ "rx-drain-timeout", required_argument, 0, 'D' },
		{ "rx-stall-timeout", required_argument, 0, 'S' },
		{ "map-grants", no_argument, 0, 'M' },
		{ "no-affinity", no_argument, 0, 'A' },
		{ "hypervisor-copies", no_argument, 0, 'C' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct nb_backend_opts bo = { .fatal_slots = NB_FATAL_SKB_SLOTS_DEFAULT, .drain_ms = 10000,
				      .stall_ms = 60000 };
	struct pv_daemon_opts o;
	struct pv_loop *loop = NULL;
	struct nb_daemon *d = NULL;
	struct nb_ctl *ctl = NULL;
	char err[256], sock[4096];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int opt, r, sfd = -1, rc = 1;

	pv_daemon_opts_init(&o);
	bo.max_queues = ncpu > 0 && ncpu < NB_MAX_QUEUES_DEFAULT ? (unsigned)ncpu : NB_MAX_QUEUES_DEFAULT;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		r = pv_daemon_opt(&o, opt, optarg);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (opt) {
		case 'x':
			bo.xs_path = optarg;
			break;
		case 'H':
			bo.hv_path = optarg;
			break;
		case 'M':
			bo.map_grants = true;
			break;
		case 'A':
			bo.no_affinity = true;
			break;
		case 'C':
			bo.hv_copies = true;
			break;
		case 'q':
			if (pv_parse_uint(optarg, NB_MAX_QUEUES_LIMIT, &bo.max_queues) < 0 || bo.max_queues == 0) {
				fprintf(stderr, "--max-queues needs 1..%u\n", NB_MAX_QUEUES_LIMIT);
				return 2;
			}
			break;
		case 'f':
			if (pv_parse_uint(optarg, 1024, &bo.fatal_slots) < 0 ||
			    bo.fatal_slots < NB_LEGACY_SLOTS_MAX) {
				fprintf(stderr, "--fatal-slots needs %u..1024\n", NB_LEGACY_SLOTS_MAX);
				return 2;
			}
			break;
		case 'D':
		case 'S':
			if (pv_parse_uint(optarg, 3600000, opt == 'D' ? &bo.drain_ms : &bo.stall_ms) < 0 ||
			    (opt == 'D' && bo.drain_ms == 0)) {
				fprintf(stderr, "--rx-%s-timeout needs milliseconds (1..3600000%s)\n",
					opt == 'D' ? "drain" : "stall", opt == 'D' ? "" : ", 0 = off");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !o.rundir) {
		usage(stderr);
		return 2;
	}
	if (pv_daemon_start(&o, "pvnet-netback") < 0)
		return 1;
	sfd = pv_daemon_signalfd();
	loop = pv_loop_new();
	if (sfd < 0 || !loop) {
		pv_err("start-up: %s", strerror(sfd < 0 ? -sfd : errno));
		goto out;
	}
	(void)pv_loop_add_fd(loop, sfd, EPOLLIN, on_signal, NULL);
	d = nb_backend_new(loop, &bo, err, sizeof(err));
	if (!d) {
		pv_err("%s", err);
		goto out;
	}
	snprintf(sock, sizeof(sock), "%s/netback.sock", o.rundir);
	ctl = nb_ctl_open(loop, d, sock);
	if (!ctl) {
		pv_err("control socket %s: %s", sock, strerror(errno));
		goto out;
	}
	pv_daemon_ready(&o);
	r = pv_loop_run(loop);
	if (r < 0)
		pv_err("event loop: %s", strerror(-r));
	rc = (r < 0 || nb_backend_failed(d)) ? 1 : 0;
out:
	nb_ctl_close(ctl);
	nb_backend_free(d);
	pv_loop_free(loop);
	if (sfd >= 0)
		close(sfd);
	pv_daemon_stop(&o);
	pv_info("stopped");
	return rc;
}
