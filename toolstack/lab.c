#include "toolstack/lab.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

void lab_netns(char *buf, size_t len, char kind, const char *name)
{
	snprintf(buf, len, "pvnet-%c-%s", kind, name);
}

bool lab_netns_exists(const char *ns)
{
	char p[300];
	snprintf(p, sizeof(p), "/run/netns/%s", ns);
	return access(p, F_OK) == 0;
}

int lab_netns_add(const char *ns, char *err, size_t errlen)
{
	int r = cli_runv(err, errlen, "ip", "netns", "add", ns, NULL);
	if (r != 0)
		return r < 0 ? r : -EIO;
	r = cli_runv(err, errlen, "ip", "-n", ns, "link", "set", "lo", "up", NULL);
	return r == 0 ? 0 : -EIO;
}

void lab_netns_kill(const char *ns)
{
	char p[300], out[4096];
	/* `ip netns pids` lists what still lives in the namespace. */
	if (cli_runv(out, sizeof(out), "ip", "netns", "pids", ns, NULL) != 0)
		return;
	for (char *tok = strtok(out, " \n"); tok; tok = strtok(NULL, " \n")) {
		unsigned pid;
		if (pv_parse_uint(tok, 1u << 30, &pid) == 0 && pid > 1 && (pid_t)pid != getpid())
			kill((pid_t)pid, SIGKILL);
	}
	snprintf(p, sizeof(p), "/run/netns/%s", ns);
}

void lab_netns_del(const char *ns)
{
	char err[256];
	if (!lab_netns_exists(ns))
		return;
	lab_netns_kill(ns);
	cli_runv(err, sizeof(err), "ip", "netns", "del", ns, NULL);
}

void lab_host_dir(const struct cli *c, const char *host, char *buf, size_t len)
{
	cli_path(c, buf, len, "hosts/%s", host);
}

void lab_xs_socket(const struct cli *c, const char *host, char *buf, size_t len)
{
	cli_path(c, buf, len, "hosts/%s/xenstored/socket", host);
}

void lab_xs_domain_socket(const struct cli *c, const char *host, unsigned domid, char *buf, size_t len)
{
	cli_path(c, buf, len, "hosts/%s/xenstored/domains/%u.sock", host, domid);
}

void lab_hv_socket(const struct cli *c, const char *host, char *buf, size_t len)
{
	cli_path(c, buf, len, "hosts/%s/hypervisor/socket", host);
}

void lab_nb_socket(const struct cli *c, const char *host, char *buf, size_t len)
{
	cli_path(c, buf, len, "hosts/%s/netback/netback.sock", host);
}

bool lab_host_exists(const struct cli *c, const char *host)
{
	char p[512];
	cli_path(c, p, sizeof(p), "hosts/%s/host.conf", host);
	return cli_exists(p);
}

int lab_switch_link(const char *sw, const char *ns, const char *inner, const char *port,
		    const char *bridge_in_ns, char *err, size_t errlen)
{
	char swns[64];
	int r;

	lab_netns(swns, sizeof(swns), 's', sw);
	if (!lab_netns_exists(swns)) {
		snprintf(err, errlen, "no switch '%s'", sw);
		return -ENOENT;
	}
	r = cli_runv(err, errlen, "ip", "-n", ns, "link", "add", inner, "type", "veth",
		     "peer", "name", port, "netns", swns, NULL);
	if (r == 0)
		r = cli_runv(err, errlen, "ip", "-n", swns, "link", "set", port, "master", "br0", "up", NULL);
	if (r == 0 && bridge_in_ns)
		r = cli_runv(err, errlen, "ip", "-n", ns, "link", "set", inner, "master", bridge_in_ns, NULL);
	if (r == 0)
		r = cli_runv(err, errlen, "ip", "-n", ns, "link", "set", inner, "up", NULL);
	return r == 0 ? 0 : -EIO;
}
