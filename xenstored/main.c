/*
 * pvnet-xenstored: the xenstore daemon of one pvnet host.
 * Parses options, sets up logging/daemonising (common/daemon.h), serves
 * RUNDIR/socket until SIGTERM/SIGINT, then removes its sockets.
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
#include "xenstored/server.h"

static const char usage[] =
	"usage: pvnet-xenstored --rundir DIR [options]\n"
	"Xenstore daemon: DIR/socket is dom0 (privileged); an introduced domain N gets\n"
	"DIR/domains/N.sock, whose connections act as domain N.\n"
	"\n"
	"Common options:\n"
	PV_DAEMON_HELP
	"Quotas (unprivileged callers; defaults are C xenstored 4.17's):\n"
	"  --quota-nodes N          nodes owned per domain (1000)\n"
	"  --quota-node-size N      bytes per node: header, perms, value, child names (2048)\n"
	"  --quota-watches N        watches per domain (128)\n"
	"  --quota-transactions N   open transactions per domain, all connections (10)\n"
	"  --quota-perms N          permission entries per node (5)\n"
	"  --quota-outstanding N    unsent replies before a connection is not read (20)\n"
	"  --quota-txn-nodes N      distinct nodes touched per transaction (1024)\n"
	"  --path-max N             path bytes after /local/domain/<id>/ (2048)\n"
	"  --watch-events N         unsent watch events kept per connection; more are\n"
	"                           dropped with a log line (1024)\n"
	"  --quota-connections N    connections per domain socket (64)\n"
	"  -h, --help               this text\n";

enum {
	O_NODES = 0x2001, O_NODE_SIZE, O_WATCHES, O_TXNS, O_PERMS, O_OUTSTANDING,
	O_TXN_NODES, O_PATH_MAX, O_WATCH_EVENTS, O_CONNS,
};

static const struct option longopts[] = {
	PV_DAEMON_LONGOPTS,
	{ "quota-nodes", required_argument, 0, O_NODES },
	{ "quota-node-size", required_argument, 0, O_NODE_SIZE },
	{ "quota-watches", required_argument, 0, O_WATCHES },
	{ "quota-transactions", required_argument, 0, O_TXNS },
	{ "quota-perms", required_argument, 0, O_PERMS },
	{ "quota-outstanding", required_argument, 0, O_OUTSTANDING },
	{ "quota-txn-nodes", required_argument, 0, O_TXN_NODES },
	{ "path-max", required_argument, 0, O_PATH_MAX },
	{ "watch-events", required_argument, 0, O_WATCH_EVENTS },
	{ "quota-connections", required_argument, 0, O_CONNS },
	{ "help", no_argument, 0, 'h' },
	{ 0, 0, 0, 0 },
};

static unsigned *quota_opt(struct xsd_config *cfg, int opt)
{
	switch (opt) {
	case O_NODES: return &cfg->lim.nodes;
	case O_NODE_SIZE: return &cfg->lim.node_size;
	case O_WATCHES: return &cfg->watches;
	case O_TXNS: return &cfg->transactions;
	case O_PERMS: return &cfg->lim.perms;
	case O_OUTSTANDING: return &cfg->outstanding;
	case O_TXN_NODES: return &cfg->lim.txn_nodes;
	case O_PATH_MAX: return &cfg->path_max;
	case O_WATCH_EVENTS: return &cfg->watch_events;
	case O_CONNS: return &cfg->conns;
	}
	return NULL;
}

/* --daemon changes directory to "/": make a relative path absolute first.
 * Returns `p` itself when it is already absolute (or NULL). */
static const char *absolute(const char *p, char **owned)
{
	char cwd[4096];

	if (!p || p[0] == '/' || !getcwd(cwd, sizeof(cwd)) || asprintf(owned, "%s/%s", cwd, p) < 0)
		return p;
	return *owned;
}

static void on_signal(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo != SIGHUP) {
		pv_info("signal %u: stopping", si.ssi_signo);
		pv_loop_stop(loop);
	}
}

int main(int argc, char **argv)
{
	struct xsd_config cfg = XSD_CONFIG_DEFAULT;
	struct pv_daemon_opts o;
	char *abs[3] = { NULL, NULL, NULL };
	struct xsd_server *srv;
	struct pv_loop *loop;
	int opt, r, sfd;

	pv_daemon_opts_init(&o);
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		unsigned *q = quota_opt(&cfg, opt);
		if (opt == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		if (q) {
			if (pv_parse_uint(optarg, 1u << 30, q) < 0 || *q == 0) {
				const struct option *lo = longopts;
				while (lo->val != opt)
					lo++;
				fprintf(stderr, "pvnet-xenstored: bad value '%s' for --%s\n", optarg,
					lo->name);
				return 2;
			}
			continue;
		}
		r = pv_daemon_opt(&o, opt, optarg);
		if (r < 0)
			return 2;
		if (r == 0) {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc || !o.rundir) {
		fputs(usage, stderr);
		return 2;
	}
	o.rundir = absolute(o.rundir, &abs[0]);
	o.pidfile = absolute(o.pidfile, &abs[1]);
	o.log_file = absolute(o.log_file, &abs[2]);
	if (pv_daemon_start(&o, "pvnet-xenstored") < 0)
		return 1;
	sfd = pv_daemon_signalfd();
	loop = pv_loop_new();
	if (sfd < 0 || !loop) {
		pv_err("cannot set up the event loop");
		return 1;
	}
	srv = xsd_server_new(loop, o.rundir, &cfg);
	if (!srv) {
		pv_err("cannot serve %s/socket: %s", o.rundir, strerror(errno));
		return 1;
	}
	pv_loop_add_fd(loop, sfd, EPOLLIN, on_signal, NULL);
	pv_info("serving %s/socket", o.rundir);
	pv_daemon_ready(&o);
	r = pv_loop_run(loop);
	xsd_server_free(srv);
	pv_loop_del_fd(loop, sfd);
	close(sfd);
	pv_loop_free(loop);
	pv_daemon_stop(&o);
	pv_info("stopped");
	for (int i = 0; i < 3; i++)
		free(abs[i]);
	return r < 0 ? 1 : 0;
}
