#include "toolstack/lab.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

/* One pass over /proc: SIGKILL every process whose network namespace is
 * `want` (same nsfs inode, as `ip netns pids` finds them, but read in full:
 * a cut listing would kill a pid cut short, somebody else's). Returns how
 * many were signalled. A zombie has no namespace any more and is not counted. */
static unsigned netns_kill_pass(const struct stat *want)
{
	unsigned n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		char q[64];
		struct stat st;
		unsigned pid;

		if (pv_parse_uint(e->d_name, 1u << 30, &pid) < 0 || pid <= 1 || (pid_t)pid == getpid())
			continue;
		snprintf(q, sizeof(q), "/proc/%u/ns/net", pid);
		if (stat(q, &st) == 0 && st.st_dev == want->st_dev && st.st_ino == want->st_ino &&
		    kill((pid_t)pid, SIGKILL) == 0)
			n++;
	}
	closedir(d);
	return n;
}

void lab_netns_kill(const char *ns)
{
	char p[300];
	struct stat want;

	snprintf(p, sizeof(p), "/run/netns/%s", ns);
	if (stat(p, &want) < 0)
		return;
	/* SIGKILL is delivered when the target next runs: with hundreds of
	 * processes on a loaded machine some are still there when kill()
	 * returns, and one forked during the pass was not seen. Repeat until
	 * a pass finds nobody, for at most 5 s (a task stuck in the kernel). */
	uint64_t until = pv_now_ns() + 5000000000ull;
	while (netns_kill_pass(&want) > 0 && pv_now_ns() < until)
		pv_sleep_ns(5000000);
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
