/*
 * Host verbs: host-create, host-destroy, host-list, xenstore (point the
 * xenstore-* tools at a host), and the switch/client verbs that build the
 * rest of the lab.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "toolstack/cli.h"
#include "toolstack/lab.h"
#include "toolstack/supervise.h"
#include "toolstack/tsx.h"
#include "toolstack/verbs.h"

/* Guests whose guest.conf names `host` (count; names into `list`). */
int host_guests(const struct cli *c, const char *host, char *list, size_t len)
{
	char dir[512], conf[800], h[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	if (list && len)
		list[0] = '\0';
	cli_path(c, dir, sizeof(dir), "guests");
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(conf, sizeof(conf), "%s/%s/guest.conf", dir, e->d_name);
		if (cli_kv_get(conf, "host", h, sizeof(h)) == 0 && !strcmp(h, host)) {
			if (list && len) {
				if (n)
					strncat(list, ",", len - strlen(list) - 1);
				strncat(list, e->d_name, len - strlen(list) - 1);
			}
			n++;
		}
	}
	closedir(d);
	return n;
}

int host_check_healthy(const struct cli *c, const char *host, char *err, size_t errlen)
{
	char hdir[512], hstate[256];

	lab_host_dir(c, host, hdir, sizeof(hdir));
	sup_state(hdir, hstate, sizeof(hstate));
	if (!strcmp(hstate, "running"))
		return 0;
	snprintf(err, errlen, "host '%s' is not healthy: %s", host, hstate);
	return -EHOSTDOWN;
}

/* The name of one guest placed on `host`, whole (names longer than `len`
 * are skipped), or -ENOENT. */
static int host_first_guest(const struct cli *c, const char *host, char *name, size_t len)
{
	char dir[512], conf[800], h[64];
	struct dirent *e;
	DIR *d;
	int r = -ENOENT;

	cli_path(c, dir, sizeof(dir), "guests");
	if (!(d = opendir(dir)))
		return -ENOENT;
	while (r == -ENOENT && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(conf, sizeof(conf), "%s/%s/guest.conf", dir, e->d_name);
		if (cli_kv_get(conf, "host", h, sizeof(h)) == 0 && !strcmp(h, host) &&
		    strlen(e->d_name) < len) {
			pv_strlcpy(name, e->d_name, len);
			r = 0;
		}
	}
	closedir(d);
	return r;
}

static int dom0_init(const char *xs_socket, char *err, size_t errlen)
{
	struct xs_handle *h = tsx_open(xs_socket);
	bool ok;

	if (!h) {
		snprintf(err, errlen, "cannot connect to %.400s: %s", xs_socket, strerror(errno));
		return -EIO;
	}
	/* What xen-init-dom0 writes for dom0. */
	ok = tsx_write(h, XBT_NULL, "/local/domain/0/name", "Domain-0") &&
	     tsx_write(h, XBT_NULL, "/local/domain/0/domid", "0") &&
	     xs_mkdir(h, XBT_NULL, "/vm") && xs_mkdir(h, XBT_NULL, "/libxl") &&
	     xs_mkdir(h, XBT_NULL, "/local/domain/0/backend");
	if (!ok)
		snprintf(err, errlen, "writing dom0's xenstore keys: %s", strerror(errno));
	xs_close(h);
	return ok ? 0 : -EIO;
}

void host_teardown(const struct cli *c, const char *name)
{
	char dir[512], ns[64];

	lab_host_dir(c, name, dir, sizeof(dir));
	lab_netns(ns, sizeof(ns), 'h', name);
	sup_stop(dir, 15000);
	lab_netns_del(ns);
	cli_rmtree(dir);
}

int host_create(struct cli *c, const char *name, const char *sw, unsigned maxq, bool affinity,
		char *err, size_t errlen)
{
	char dir[384], ns[64], port[32], q[16] = "";
	char xs[512], xsdir[512], hv[512], hvdir[512], nbdir[512], conf[600];
	char p_xs[512], p_hv[512], p_nb[512];

	if (!cli_valid_name(name)) {
		snprintf(err, errlen, "bad host name '%s': 1-%d letters, digits, '-' or '_', starting with a letter",
			 name, CLI_NAME_MAX);
		return -EINVAL;
	}
	if (cli_prog(c, "pvnet-xenstored", p_xs, sizeof(p_xs)) < 0 ||
	    cli_prog(c, "pvnet-hypervisor", p_hv, sizeof(p_hv)) < 0 ||
	    cli_prog(c, "pvnet-netback", p_nb, sizeof(p_nb)) < 0) {
		snprintf(err, errlen, "the pvnet daemons are not next to this pvnet in %s (build with 'make')", c->bindir);
		return -ENOENT;
	}
	lab_netns(ns, sizeof(ns), 'h', name);
	if (lab_host_exists(c, name)) {
		snprintf(err, errlen, "host '%s' already exists", name);
		return -EEXIST;
	}
	if (lab_netns_exists(ns)) {
		snprintf(err, errlen, "network namespace %s already exists (left over? 'ip netns del %s')", ns, ns);
		return -EEXIST;
	}
	if (sw) {
		char swns[64];
		lab_netns(swns, sizeof(swns), 's', sw);
		if (!lab_netns_exists(swns)) {
			snprintf(err, errlen, "no switch '%s' (create it with 'pvnet switch-create %s')", sw, sw);
			return -ENOENT;
		}
	}

	lab_host_dir(c, name, dir, sizeof(dir));
	snprintf(xsdir, sizeof(xsdir), "%s/xenstored", dir);
	snprintf(hvdir, sizeof(hvdir), "%s/hypervisor", dir);
	snprintf(nbdir, sizeof(nbdir), "%s/netback", dir);
	if (pv_mkdir_p(xsdir, 0755) < 0 || pv_mkdir_p(hvdir, 0755) < 0 || pv_mkdir_p(nbdir, 0755) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		cli_rmtree(dir);
		return -EIO;
	}
	cli_note(c, "host %s: network namespace %s, bridge xenbr0\n", name, ns);
	if (lab_netns_add(ns, err, errlen) < 0 ||
	    cli_runv(err, errlen, "ip", "-n", ns, "link", "add", "xenbr0", "type", "bridge", NULL) != 0 ||
	    cli_runv(err, errlen, "ip", "-n", ns, "link", "set", "xenbr0", "up", NULL) != 0) {
		host_teardown(c, name);
		return -EIO;
	}
	if (sw) {
		snprintf(port, sizeof(port), "h-%s", name);
		if (lab_switch_link(sw, ns, "uplink", port, "xenbr0", err, errlen) < 0) {
			host_teardown(c, name);
			return -EIO;
		}
	}

	lab_xs_socket(c, name, xs, sizeof(xs));
	lab_hv_socket(c, name, hv, sizeof(hv));
	if (maxq)
		snprintf(q, sizeof(q), "%u", maxq);
	struct sup_child kids[3] = {
		{ .name = "xenstored", .argv = { p_xs, "--rundir", xsdir, NULL }, .ready_fd = true },
		{ .name = "hypervisor", .argv = { p_hv, "--rundir", hvdir, NULL }, .ready_fd = true },
		{ .name = "netback", .argv = { p_nb, "--xenstore", xs, "--hypervisor", hv, "--rundir", nbdir },
		  .netns = ns, .ready_fd = true },
	};
	unsigned na = 7;
	if (maxq) {
		kids[2].argv[na++] = "--max-queues";
		kids[2].argv[na++] = q;
	}
	if (!affinity)
		kids[2].argv[na++] = "--no-affinity";
	kids[2].argv[na] = NULL;
	cli_note(c, "host %s: starting pvnet-xenstored, pvnet-hypervisor, pvnet-netback\n", name);
	if (sup_start(dir, kids, 3, 10000, err, errlen) < 0 || dom0_init(xs, err, errlen) < 0) {
		host_teardown(c, name);
		return -EIO;
	}
	snprintf(conf, sizeof(conf), "%s/host.conf", dir);
	cli_kv_write(conf, (const char *const[]){ "name", name, "netns", ns, "switch", sw ? sw : "",
						  "max_queues", q, "bridge", "xenbr0",
						  "affinity", affinity ? "on" : "off" }, 6);
	cli_note(c, "host %s: ready; xenstore tools: export XENSTORED_PATH=%s\n", name, xs);
	return 0;
}

static int verb_host_create(struct cli *c, int argc, char **argv)
{
	const char *name = NULL, *sw = NULL;
	char err[1024];
	unsigned maxq = 0;
	bool affinity = true;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--switch") && i + 1 < argc)
			sw = argv[++i];
		else if (!strcmp(argv[i], "--no-affinity"))
			affinity = false;
		else if (!strcmp(argv[i], "--max-queues") && i + 1 < argc) {
			if (pv_parse_uint(argv[++i], 16, &maxq) < 0 || maxq == 0)
				return cli_fail("--max-queues takes a number from 1 to 16");
		} else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return cli_usage(verb_find("host-create"));
	}
	if (!name)
		return cli_usage(verb_find("host-create"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	if (host_create(c, name, sw, maxq, affinity, err, sizeof(err)) < 0)
		return cli_fail("%s", err);
	return 0;
}

static int verb_host_destroy(struct cli *c, int argc, char **argv)
{
	const char *name = NULL;
	char guests[512];
	bool force = false;
	int r, n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force"))
			force = true;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return cli_usage(verb_find("host-destroy"));
	}
	if (!name)
		return cli_usage(verb_find("host-destroy"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	if (!lab_host_exists(c, name))
		return cli_fail("no host '%s'", name);
	n = host_guests(c, name, guests, sizeof(guests));
	if (n && !force)
		return cli_fail("host '%s' still runs %d guest%s (%s): destroy %s first, or use --force",
				name, n, n > 1 ? "s" : "", guests, n > 1 ? "them" : "it");
	if (n) {
		/* Destroy them one at a time, each found afresh: the listing
		 * above is for the message and may be cut. Each round
		 * destroys one guest, so this ends; a guest that cannot be
		 * destroyed stops it. */
		cli_unlock(c);
		for (int left = n; left > 0; left--) {
			char one[256];
			if (host_first_guest(c, name, one, sizeof(one)) < 0)
				break;
			char *args[] = { "destroy", one, NULL };
			if (verb_find("destroy")->run(c, 2, args) != 0)
				break;
		}
		if ((r = cli_lock(c)) < 0)
			return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	}
	host_teardown(c, name);
	cli_note(c, "host %s: destroyed\n", name);
	return 0;
}

static int verb_host_list(struct cli *c, int argc, char **argv)
{
	char dir[512], hd[800], state[256], guests[512], xs[512], sw[64], conf[900];
	struct dirent *e;
	DIR *d;
	bool first = true;

	cli_path(c, dir, sizeof(dir), "hosts");
	d = opendir(dir);
	if (c->json)
		printf("[");
	else
		printf("%-12s %-20s %-8s %-30s %s\n", "NAME", "NETNS", "SWITCH", "STATE", "GUESTS");
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(hd, sizeof(hd), "%s/%s", dir, e->d_name);
		snprintf(conf, sizeof(conf), "%s/host.conf", hd);
		if (!cli_exists(conf))
			continue;
		sup_state(hd, state, sizeof(state));
		if (cli_kv_get(conf, "switch", sw, sizeof(sw)) < 0 || !sw[0])
			strcpy(sw, "-");
		host_guests(c, e->d_name, guests, sizeof(guests));
		lab_xs_socket(c, e->d_name, xs, sizeof(xs));
		if (c->json)
			printf("%s{\"name\":\"%s\",\"switch\":\"%s\",\"state\":\"%s\",\"guests\":\"%s\",\"xenstore\":\"%s\"}",
			       first ? "" : ",", e->d_name, sw, state, guests, xs);
		else
			printf("%-12s pvnet-h-%-12s %-8s %-30s %s\n", e->d_name, e->d_name, sw, state,
			       guests[0] ? guests : "-");
		first = false;
	}
	if (c->json)
		printf("]\n");
	if (d)
		closedir(d);
	return 0;
}

static int verb_xenstore(struct cli *c, int argc, char **argv)
{
	char xs[512];

	if (argc < 2)
		return cli_usage(verb_find("xenstore"));
	if (!lab_host_exists(c, argv[1]))
		return cli_fail("no host '%s'", argv[1]);
	lab_xs_socket(c, argv[1], xs, sizeof(xs));
	if (argc == 2) {
		printf("export XENSTORED_PATH=%s\n", xs);
		return 0;
	}
	setenv("XENSTORED_PATH", xs, 1);
	execvp(argv[2], argv + 2);
	return cli_fail("cannot run %s: %s", argv[2], strerror(errno));
}

int switch_create(struct cli *c, const char *name, char *err, size_t errlen)
{
	char ns[64], conf[512];

	if (!cli_valid_name(name)) {
		snprintf(err, errlen, "bad switch name '%s'", name);
		return -EINVAL;
	}
	lab_netns(ns, sizeof(ns), 's', name);
	if (lab_netns_exists(ns)) {
		snprintf(err, errlen, "switch '%s' already exists", name);
		return -EEXIST;
	}
	if (lab_netns_add(ns, err, errlen) < 0 ||
	    cli_runv(err, errlen, "ip", "-n", ns, "link", "add", "br0", "type", "bridge", NULL) != 0 ||
	    cli_runv(err, errlen, "ip", "-n", ns, "link", "set", "br0", "up", NULL) != 0) {
		lab_netns_del(ns);
		return -EIO;
	}
	cli_path(c, conf, sizeof(conf), "switches");
	pv_mkdir_p(conf, 0755);
	cli_path(c, conf, sizeof(conf), "switches/%s.conf", name);
	cli_kv_write(conf, (const char *const[]){ "name", name, "netns", ns }, 2);
	cli_note(c, "switch %s: network namespace %s, bridge br0\n", name, ns);
	return 0;
}

void switch_destroy(const struct cli *c, const char *name)
{
	char ns[64], conf[512];

	lab_netns(ns, sizeof(ns), 's', name);
	lab_netns_del(ns);
	cli_path(c, conf, sizeof(conf), "switches/%s.conf", name);
	unlink(conf);
}

int client_create(struct cli *c, const char *name, const char *sw, const char *const *ips, unsigned nip,
		  char *err, size_t errlen)
{
	char ns[64], port[32], conf[512];

	if (!cli_valid_name(name)) {
		snprintf(err, errlen, "bad client name '%s'", name);
		return -EINVAL;
	}
	lab_netns(ns, sizeof(ns), 'c', name);
	if (lab_netns_exists(ns)) {
		snprintf(err, errlen, "client '%s' already exists", name);
		return -EEXIST;
	}
	snprintf(port, sizeof(port), "c-%s", name);
	if (lab_netns_add(ns, err, errlen) < 0 || lab_switch_link(sw, ns, "eth0", port, NULL, err, errlen) < 0) {
		lab_netns_del(ns);
		return -EIO;
	}
	for (unsigned i = 0; i < nip; i++) {
		if (cli_runv(err, errlen, "ip", "-n", ns, "addr", "add", ips[i], "dev", "eth0", "nodad", NULL) != 0) {
			lab_netns_del(ns);
			return -EIO;
		}
	}
	cli_path(c, conf, sizeof(conf), "clients");
	pv_mkdir_p(conf, 0755);
	cli_path(c, conf, sizeof(conf), "clients/%s.conf", name);
	cli_kv_write(conf, (const char *const[]){ "name", name, "netns", ns, "switch", sw }, 3);
	cli_note(c, "client %s: network namespace %s on switch %s\n", name, ns, sw);
	return 0;
}

void client_destroy(const struct cli *c, const char *name)
{
	char ns[64], conf[512];

	lab_netns(ns, sizeof(ns), 'c', name);
	lab_netns_del(ns);
	cli_path(c, conf, sizeof(conf), "clients/%s.conf", name);
	unlink(conf);
}

static int verb_switch_create(struct cli *c, int argc, char **argv)
{
	char err[1024];
	int r;

	if (argc != 2)
		return cli_usage(verb_find("switch-create"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	if (switch_create(c, argv[1], err, sizeof(err)) < 0)
		return cli_fail("%s", err);
	return 0;
}

static int verb_switch_destroy(struct cli *c, int argc, char **argv)
{
	char ns[64];
	int r;

	if (argc != 2)
		return cli_usage(verb_find("switch-destroy"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	lab_netns(ns, sizeof(ns), 's', argv[1]);
	if (!lab_netns_exists(ns))
		return cli_fail("no switch '%s'", argv[1]);
	switch_destroy(c, argv[1]);
	return 0;
}

static int verb_client_create(struct cli *c, int argc, char **argv)
{
	const char *name = NULL, *sw = NULL, *ips[4];
	char err[1024];
	unsigned nip = 0;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--switch") && i + 1 < argc)
			sw = argv[++i];
		else if (!strcmp(argv[i], "--ip") && i + 1 < argc && nip < 4)
			ips[nip++] = argv[++i];
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return cli_usage(verb_find("client-create"));
	}
	if (!name || !sw)
		return cli_usage(verb_find("client-create"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	if (client_create(c, name, sw, ips, nip, err, sizeof(err)) < 0)
		return cli_fail("%s", err);
	return 0;
}

static int verb_client_destroy(struct cli *c, int argc, char **argv)
{
	char ns[64];
	int r;

	if (argc != 2)
		return cli_usage(verb_find("client-destroy"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	lab_netns(ns, sizeof(ns), 'c', argv[1]);
	if (!lab_netns_exists(ns))
		return cli_fail("no client '%s'", argv[1]);
	client_destroy(c, argv[1]);
	return 0;
}

const struct cli_verb host_verbs[] = {
	{ "host-create", verb_host_create, "NAME [--switch SWITCH] [--max-queues N] [--no-affinity]",
	  "create a host: a network namespace with bridge xenbr0 and its pvnet-xenstored, pvnet-hypervisor and pvnet-netback" },
	{ "host-destroy", verb_host_destroy, "NAME [--force]",
	  "stop a host's daemons and remove it (refused while guests run there, unless --force)" },
	{ "host-list", verb_host_list, "", "list hosts, their daemons' state and their guests" },
	{ "xenstore", verb_xenstore, "HOST [COMMAND ARGS...]",
	  "print the XENSTORED_PATH for a host, or run a xenstore tool against it (pvnet xenstore A xenstore-ls -f)" },
	{ "switch-create", verb_switch_create, "NAME", "create a switch: a network namespace with bridge br0" },
	{ "switch-destroy", verb_switch_destroy, "NAME", "remove a switch" },
	{ "client-create", verb_client_create, "NAME --switch SWITCH [--ip ADDR/LEN]...",
	  "create a client namespace whose eth0 is plugged into a switch" },
	{ "client-destroy", verb_client_destroy, "NAME", "remove a client" },
	{ NULL, NULL, NULL, NULL },
};
