/*
 * Guest verbs: create, destroy, list, network-attach, network-detach,
 * trace, stats — and the guest record shared with migrate and demo.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "common/xen.h"
#include "hypervisor/hv.h"
#include "toolstack/cli.h"
#include "toolstack/guests.h"
#include "toolstack/lab.h"
#include "toolstack/probe.h"
#include "toolstack/supervise.h"
#include "toolstack/tsx.h"
#include "toolstack/verbs.h"

void guest_dir(const struct cli *c, const char *name, char *buf, size_t len)
{
	cli_path(c, buf, len, "guests/%s", name);
}

void guest_netns(const char *name, char *buf, size_t len)
{
	lab_netns(buf, len, 'g', name);
}

static void vif_encode(const struct dom_vif *v, char *buf, size_t len)
{
	snprintf(buf, len, "devid=%u,mac=%s,bridge=%s,mtu=%u,ip=%s", v->devid, v->mac, v->bridge, v->mtu, v->ips);
}

int guest_save(const struct cli *c, const struct guest *g)
{
	char dir[512], path[600], domid[16], q[16], mem[16], nv[8], vifs[GUEST_MAX_VIFS][320];
	const char *kv[2 * (9 + GUEST_MAX_VIFS)];
	char keys[GUEST_MAX_VIFS][8];
	unsigned n = 0;

	guest_dir(c, g->name, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/guest.conf", dir);
	snprintf(domid, sizeof(domid), "%u", g->domid);
	snprintf(q, sizeof(q), "%u", g->queues);
	snprintf(mem, sizeof(mem), "%u", g->mem_pages);
	snprintf(nv, sizeof(nv), "%u", g->nvifs);
#define KV(k, v) (kv[2 * n] = (k), kv[2 * n + 1] = (v), n++)
	KV("name", g->name);
	KV("host", g->host);
	KV("domid", domid);
	KV("uuid", g->uuid);
	KV("queues", q);
	KV("compat", g->compat);
	KV("affinity", g->no_affinity ? "off" : "on");
	KV("mem_pages", mem);
	KV("vifs", nv);
	for (unsigned i = 0; i < g->nvifs; i++) {
		snprintf(keys[i], sizeof(keys[i]), "vif%u", i);
		vif_encode(&g->vifs[i], vifs[i], sizeof(vifs[i]));
		KV(keys[i], vifs[i]);
	}
#undef KV
	return cli_kv_write(path, kv, n);
}

int guest_parse_vif(const char *spec, unsigned devid, struct dom_vif *v, char *err, size_t errlen)
{
	char buf[320], *save = NULL;
	unsigned char rnd[3];
	FILE *f;

	memset(v, 0, sizeof(*v));
	v->devid = devid;
	pv_strlcpy(v->bridge, "xenbr0", sizeof(v->bridge));
	pv_strlcpy(buf, spec ? spec : "", sizeof(buf));
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq) {
			snprintf(err, errlen, "vif setting '%s' is not key=value", tok);
			return -EINVAL;
		}
		*eq++ = '\0';
		if (!strcmp(tok, "mac")) {
			uint8_t m[6];
			if (probe_parse_mac(eq, m) < 0) {
				snprintf(err, errlen, "bad MAC '%s'", eq);
				return -EINVAL;
			}
			snprintf(v->mac, sizeof(v->mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
		} else if (!strcmp(tok, "bridge")) {
			if (!*eq || strlen(eq) >= sizeof(v->bridge)) {
				snprintf(err, errlen, "bad bridge name '%s'", eq);
				return -EINVAL;
			}
			pv_strlcpy(v->bridge, eq, sizeof(v->bridge));
		} else if (!strcmp(tok, "ip")) {
			if (!*eq || strchr(eq, ' ') || strlen(v->ips) + strlen(eq) + 2 > sizeof(v->ips)) {
				snprintf(err, errlen, "bad or too many IP addresses ('%s')", eq);
				return -EINVAL;
			}
			if (v->ips[0])
				strcat(v->ips, " ");
			strcat(v->ips, eq);
		} else if (!strcmp(tok, "mtu")) {
			if (pv_parse_uint(eq, 65535, &v->mtu) < 0 || (v->mtu && v->mtu < 68)) {
				snprintf(err, errlen, "bad MTU '%s'", eq);
				return -EINVAL;
			}
		} else if (!strcmp(tok, "devid")) {
			if (pv_parse_uint(eq, 255, &v->devid) < 0) {
				snprintf(err, errlen, "bad devid '%s'", eq);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen, "unknown vif setting '%s' (mac, bridge, ip, mtu)", tok);
			return -EINVAL;
		}
	}
	if (!v->mac[0]) {
		/* libxl's default: the Xen OUI and three random bytes. */
		f = fopen("/dev/urandom", "r");
		if (!f || fread(rnd, 1, 3, f) != 3)
			rnd[0] = rnd[1] = rnd[2] = (unsigned char)rand();
		if (f)
			fclose(f);
		snprintf(v->mac, sizeof(v->mac), "00:16:3e:%02x:%02x:%02x", rnd[0] & 0x7f, rnd[1], rnd[2]);
	}
	return 0;
}

int guest_load(const struct cli *c, const char *name, struct guest *g)
{
	char dir[512], path[600], val[400], key[8], err[128];
	unsigned v;

	memset(g, 0, sizeof(*g));
	guest_dir(c, name, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/guest.conf", dir);
	if (cli_kv_get(path, "host", g->host, sizeof(g->host)) < 0)
		return -ENOENT;
	pv_strlcpy(g->name, name, sizeof(g->name));
	if (cli_kv_get(path, "domid", val, sizeof(val)) == 0)
		pv_parse_u32(val, &g->domid);
	cli_kv_get(path, "uuid", g->uuid, sizeof(g->uuid));
	if (cli_kv_get(path, "queues", val, sizeof(val)) == 0)
		pv_parse_uint(val, 64, &g->queues);
	cli_kv_get(path, "compat", g->compat, sizeof(g->compat));
	if (cli_kv_get(path, "affinity", val, sizeof(val)) == 0)
		g->no_affinity = !strcmp(val, "off");
	if (cli_kv_get(path, "mem_pages", val, sizeof(val)) == 0)
		pv_parse_uint(val, 1u << 24, &g->mem_pages);
	if (cli_kv_get(path, "vifs", val, sizeof(val)) == 0 && pv_parse_uint(val, GUEST_MAX_VIFS, &v) == 0)
		g->nvifs = v;
	for (unsigned i = 0; i < g->nvifs; i++) {
		snprintf(key, sizeof(key), "vif%u", i);
		if (cli_kv_get(path, key, val, sizeof(val)) < 0 ||
		    guest_parse_vif(val, i, &g->vifs[i], err, sizeof(err)) < 0)
			return -EINVAL;
	}
	return 0;
}

int guest_write_xenstore(const struct cli *c, const char *host, const struct guest *g, uint32_t domid,
			 char *err, size_t errlen)
{
	struct dom_spec d = { .domid = domid, .backend_domid = 0, .mem_kb = g->mem_pages * 4 };
	char xs[512];
	struct xs_handle *h;
	int r;

	pv_strlcpy(d.name, g->name, sizeof(d.name));
	pv_strlcpy(d.uuid, g->uuid, sizeof(d.uuid));
	lab_xs_socket(c, host, xs, sizeof(xs));
	h = tsx_open(xs);
	if (!h) {
		snprintf(err, errlen, "cannot connect to host %s's xenstore: %s", host, strerror(errno));
		return -EIO;
	}
	/* Our xenstored knows a domain once it is introduced, so introduce
	 * before writing nodes that the domain owns. */
	if ((r = dom_introduce(h, &d)) < 0)
		snprintf(err, errlen, "introducing domain %u: %s", domid, strerror(-r));
	else if ((r = dom_write_skeleton(h, &d)) < 0)
		snprintf(err, errlen, "writing domain %u's xenstore skeleton: %s", domid, strerror(-r));
	for (unsigned i = 0; r == 0 && i < g->nvifs; i++)
		if ((r = dom_write_vif(h, &d, &g->vifs[i])) < 0)
			snprintf(err, errlen, "writing vif %u of domain %u: %s", g->vifs[i].devid, domid, strerror(-r));
	xs_close(h);
	return r;
}

int guest_wait_connected(const struct cli *c, const char *host, uint32_t domid, unsigned devid,
			 int timeout_ms, char *err, size_t errlen)
{
	char xs[512], be[128], fe[128];
	struct xs_handle *h;
	int r;

	lab_xs_socket(c, host, xs, sizeof(xs));
	h = tsx_open(xs);
	if (!h) {
		snprintf(err, errlen, "cannot connect to host %s's xenstore", host);
		return -EIO;
	}
	snprintf(be, sizeof(be), "/local/domain/0/backend/vif/%u/%u/state", domid, devid);
	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vif/%u/state", domid, devid);
	r = tsx_wait_value(h, fe, "4", timeout_ms);
	if (r == 0)
		r = tsx_wait_value(h, be, "4", timeout_ms);
	if (r < 0) {
		char *bs = tsx_read(h, XBT_NULL, be), *fs = tsx_read(h, XBT_NULL, fe);
		snprintf(err, errlen, "vif %u of domain %u did not connect within %d ms (frontend state %s, backend state %s)",
			 devid, domid, timeout_ms, fs ? fs : "-", bs ? bs : "-");
		free(bs);
		free(fs);
	}
	xs_close(h);
	return r;
}

void guest_remove_domain(const struct cli *c, const char *host, const struct guest *g, uint32_t domid,
			 bool graceful)
{
	struct dom_spec d = { .domid = domid, .backend_domid = 0 };
	char xs[512], hv[512];
	struct xs_handle *h;
	struct pv_hv *ctl;

	/* Never dom0 (a damaged guest.conf without a domid reads as 0): its
	 * removal would take every backend of the host with it. */
	if (domid == 0 || domid >= DOMID_FIRST_RESERVED) {
		fprintf(stderr, "pvnet: guest %s: its guest.conf names domain %u: its domain and "
			"xenstore nodes on %s are left alone (they go with the host)\n", g->name, domid, host);
		return;
	}
	pv_strlcpy(d.uuid, g->uuid, sizeof(d.uuid));
	lab_xs_socket(c, host, xs, sizeof(xs));
	lab_hv_socket(c, host, hv, sizeof(hv));
	h = tsx_open(xs);
	/* libxl: ask each backend to close, then destroy, then release. */
	for (unsigned i = 0; h && i < g->nvifs; i++)
		dom_remove_vif(h, &d, g->vifs[i].devid, graceful ? 2000 : 0);
	ctl = pv_hv_open(hv);
	if (ctl) {
		pv_hv_domain_destroy(ctl, domid);
		pv_hv_close(ctl);
	}
	if (h) {
		dom_remove_domain(h, &d);
		xs_close(h);
	}
}

int ctl_query(const char *sock, const char *cmd, char *out, size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const uint64_t end = pv_now_ns() + 5000000000ull;
	size_t got = 0;
	ssize_t n = 0;
	int s;

	if (strlen(sock) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, sock);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	{
		/* A guest runtime that does not take the question cannot hold us. */
		const struct timeval to = { .tv_sec = 5 };
		(void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &to, sizeof(to));
	}
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    pv_write_all(s, cmd, strlen(cmd)) < 0 || pv_write_all(s, "\n", 1) < 0) {
		int e = errno;
		close(s);
		return -e;
	}
	shutdown(s, SHUT_WR);
	/* The whole answer, up to EOF, within 5 s: a mute or trickling guest
	 * is an error, never an empty or partial answer taken for success. */
	while (got + 1 < len) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		uint64_t now = pv_now_ns();
		int r;

		if (now >= end) {
			n = -1;
			errno = ETIMEDOUT;
			break;
		}
		r = poll(&p, 1, (int)((end - now) / 1000000u) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			n = -1;
			errno = r == 0 ? ETIMEDOUT : errno;
			break;
		}
		n = read(s, out + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	if (n < 0) {
		int e = errno;
		close(s);
		return -e;
	}
	close(s);
	return (int)got;
}

/* Is `mac` used by another guest's vif? */
static bool mac_in_use(const struct cli *c, const char *mac, char *owner, size_t olen)
{
	char dir[512];
	struct dirent *e;
	DIR *d;
	bool found = false;

	cli_path(c, dir, sizeof(dir), "guests");
	d = opendir(dir);
	while (d && !found && (e = readdir(d))) {
		struct guest g;
		if (e->d_name[0] == '.' || guest_load(c, e->d_name, &g) < 0)
			continue;
		for (unsigned i = 0; i < g.nvifs; i++)
			if (!strcasecmp(g.vifs[i].mac, mac)) {
				pv_strlcpy(owner, g.name, olen);
				found = true;
			}
	}
	if (d)
		closedir(d);
	return found;
}

/* Addresses and link up in the guest's namespace, as NetworkManager does
 * (netlink). */
static int configure_ifs(const struct guest *g, const struct dom_vif *v, char *err, size_t errlen)
{
	char ns[64], ifn[16], ips[sizeof(v->ips)], *save = NULL;

	guest_netns(g->name, ns, sizeof(ns));
	snprintf(ifn, sizeof(ifn), "eth%u", v->devid);
	for (int i = 0; i < 500; i++) {
		if (cli_runv(NULL, 0, "ip", "-n", ns, "link", "show", ifn, NULL) == 0)
			break;
		pv_sleep_ns(10000000);
	}
	pv_strlcpy(ips, v->ips, sizeof(ips));
	for (char *ip = strtok_r(ips, " ", &save); ip; ip = strtok_r(NULL, " ", &save))
		if (cli_runv(err, errlen, "ip", "-n", ns, "addr", "add", ip, "dev", ifn, "nodad", NULL) != 0)
			return -EIO;
	return cli_runv(err, errlen, "ip", "-n", ns, "link", "set", ifn, "up", NULL) == 0 ? 0 : -EIO;
}

static int start_runtime(const struct cli *c, const struct guest *g, uint32_t domid, char *err, size_t errlen)
{
	char dir[512], ns[64], prog[512], xs[512], hv[512], ctl[600], q[16];
	struct sup_child kid = { .name = "guest", .ready_fd = true };
	unsigned n = 0;

	guest_dir(c, g->name, dir, sizeof(dir));
	guest_netns(g->name, ns, sizeof(ns));
	if (cli_prog(c, "pvnet-guest", prog, sizeof(prog)) < 0) {
		snprintf(err, errlen, "pvnet-guest is not in %s", c->bindir);
		return -ENOENT;
	}
	lab_xs_domain_socket(c, g->host, domid, xs, sizeof(xs));
	cli_path(c, hv, sizeof(hv), "hosts/%s/hypervisor/domains/%u.sock", g->host, domid);
	snprintf(ctl, sizeof(ctl), "%s/control.sock", dir);
	kid.argv[n++] = prog;
	kid.argv[n++] = "--xenstore";
	kid.argv[n++] = xs;
	kid.argv[n++] = "--hypervisor";
	kid.argv[n++] = hv;
	kid.argv[n++] = "--netns";
	kid.argv[n++] = ns;
	kid.argv[n++] = "--control";
	kid.argv[n++] = ctl;
	if (g->queues) {
		snprintf(q, sizeof(q), "%u", g->queues);
		kid.argv[n++] = "--max-queues";
		kid.argv[n++] = q;
	}
	if (g->compat[0]) {
		kid.argv[n++] = "--compat";
		kid.argv[n++] = g->compat;
	}
	if (g->no_affinity)
		kid.argv[n++] = "--no-affinity";
	kid.argv[n] = NULL;
	return sup_start(dir, &kid, 1, 10000, err, errlen);
}

static int verb_create(struct cli *c, int argc, char **argv)
{
	struct guest g;
	struct pv_domain_config cfg = { 0 };
	const char *vifspecs[GUEST_MAX_VIFS];
	unsigned nspec = 0;
	char dir[512], ns[64], hvp[512], err[1024], owner[32];
	struct pv_hv *hv = NULL;
	uint32_t domid = 0;
	bool dom_made = false;
	int r;

	memset(&g, 0, sizeof(g));
	g.mem_pages = 16384;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--host") && i + 1 < argc)
			pv_strlcpy(g.host, argv[++i], sizeof(g.host));
		else if (!strcmp(argv[i], "--vif") && i + 1 < argc && nspec < GUEST_MAX_VIFS)
			vifspecs[nspec++] = argv[++i];
		else if (!strcmp(argv[i], "--queues") && i + 1 < argc) {
			if (pv_parse_uint(argv[++i], 16, &g.queues) < 0 || !g.queues)
				return cli_fail("--queues takes a number from 1 to 16");
		} else if (!strcmp(argv[i], "--mem-pages") && i + 1 < argc) {
			if (pv_parse_uint(argv[++i], 1u << 20, &g.mem_pages) < 0 || g.mem_pages < 1024)
				return cli_fail("--mem-pages takes a number from 1024 to 1048576");
		} else if (!strcmp(argv[i], "--compat") && i + 1 < argc) {
			if (strcmp(argv[++i], "linux-5.13"))
				return cli_fail("unknown --compat '%s' (linux-5.13)", argv[i]);
			pv_strlcpy(g.compat, argv[i], sizeof(g.compat));
		} else if (!strcmp(argv[i], "--no-affinity")) {
			g.no_affinity = true;
		} else if (argv[i][0] != '-' && !g.name[0]) {
			if (!cli_valid_name(argv[i]))
				return cli_fail("bad guest name '%s': 1-%d letters, digits, '-' or '_', starting with a letter",
						argv[i], CLI_NAME_MAX);
			pv_strlcpy(g.name, argv[i], sizeof(g.name));
		} else {
			return cli_usage(verb_find("create"));
		}
	}
	if (!g.name[0] || !g.host[0])
		return cli_usage(verb_find("create"));
	if (nspec == 0)
		vifspecs[nspec++] = "";
	for (unsigned i = 0; i < nspec; i++) {
		if (guest_parse_vif(vifspecs[i], i, &g.vifs[i], err, sizeof(err)) < 0)
			return cli_fail("vif %u: %s", i, err);
		for (unsigned k = 0; k < i; k++)
			if (!strcasecmp(g.vifs[k].mac, g.vifs[i].mac))
				return cli_fail("vifs %u and %u have the same MAC %s", k, i, g.vifs[i].mac);
	}
	g.nvifs = nspec;
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	if (!lab_host_exists(c, g.host))
		return cli_fail("no host '%s'", g.host);
	if (host_check_healthy(c, g.host, err, sizeof(err)) < 0)
		return cli_fail("%s", err);
	guest_dir(c, g.name, dir, sizeof(dir));
	if (cli_exists(dir))
		return cli_fail("guest '%s' already exists", g.name);
	for (unsigned i = 0; i < g.nvifs; i++)
		if (mac_in_use(c, g.vifs[i].mac, owner, sizeof(owner)))
			return cli_fail("MAC %s is already used by guest '%s'", g.vifs[i].mac, owner);
	guest_netns(g.name, ns, sizeof(ns));
	if (lab_netns_exists(ns))
		return cli_fail("network namespace %s already exists (left over? 'ip netns del %s')", ns, ns);
	dom_new_uuid(g.uuid);

	lab_hv_socket(c, g.host, hvp, sizeof(hvp));
	hv = pv_hv_open(hvp);
	if (!hv)
		return cli_fail("cannot reach host %s's hypervisor: %s", g.host, strerror(errno));
	pv_strlcpy(cfg.name, g.name, sizeof(cfg.name));
	cfg.mem_pages = g.mem_pages;
	if ((r = pv_hv_domain_create(hv, &cfg, &domid)) < 0) {
		pv_hv_close(hv);
		return cli_fail("creating the domain on %s: %s", g.host, strerror(-r));
	}
	dom_made = true;
	g.domid = domid;
	cli_note(c, "guest %s: domain %u on host %s\n", g.name, domid, g.host);
	if (pv_mkdir_p(dir, 0755) < 0) {
		snprintf(err, sizeof(err), "cannot create %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (guest_write_xenstore(c, g.host, &g, domid, err, sizeof(err)) < 0)
		goto fail;
	if (lab_netns_add(ns, err, sizeof(err)) < 0)
		goto fail;
	if (guest_save(c, &g) < 0) {
		snprintf(err, sizeof(err), "cannot write %s/guest.conf", dir);
		goto fail;
	}
	if (start_runtime(c, &g, domid, err, sizeof(err)) < 0)
		goto fail;
	for (unsigned i = 0; i < g.nvifs; i++) {
		if (guest_wait_connected(c, g.host, domid, g.vifs[i].devid, 10000, err, sizeof(err)) < 0 ||
		    configure_ifs(&g, &g.vifs[i], err, sizeof(err)) < 0)
			goto fail;
		cli_note(c, "guest %s: vif %u (%s) connected, eth%u up%s%s\n", g.name, g.vifs[i].devid,
			 g.vifs[i].mac, g.vifs[i].devid, g.vifs[i].ips[0] ? " with " : "", g.vifs[i].ips);
	}
	pv_hv_close(hv);
	return 0;
fail:
	sup_stop(dir, 5000);
	if (dom_made)
		guest_remove_domain(c, g.host, &g, domid, false);
	pv_hv_close(hv);
	lab_netns_del(ns);
	cli_rmtree(dir);
	return cli_fail("guest %s: %s", g.name, err);
}

static int verb_destroy(struct cli *c, int argc, char **argv)
{
	struct guest g;
	char dir[512], ns[64];
	int r;

	if (argc != 2)
		return cli_usage(verb_find("destroy"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	if (guest_load(c, argv[1], &g) < 0)
		return cli_fail("no guest '%s'", argv[1]);
	guest_dir(c, g.name, dir, sizeof(dir));
	guest_netns(g.name, ns, sizeof(ns));
	guest_remove_domain(c, g.host, &g, g.domid, true);
	sup_stop(dir, 5000);
	lab_netns_del(ns);
	cli_rmtree(dir);
	cli_note(c, "guest %s: destroyed\n", g.name);
	return 0;
}

static int verb_list(struct cli *c, int argc, char **argv)
{
	char dir[512], gdir[600], state[128];
	struct dirent *e;
	DIR *d;
	bool first = true;

	cli_path(c, dir, sizeof(dir), "guests");
	d = opendir(dir);
	if (c->json)
		printf("[");
	else
		printf("%-12s %-8s %6s  %-24s %s\n", "NAME", "HOST", "DOMID", "STATE", "VIFS");
	while (d && (e = readdir(d))) {
		struct guest g;
		char vifs[512] = "";
		if (e->d_name[0] == '.' || guest_load(c, e->d_name, &g) < 0)
			continue;
		snprintf(gdir, sizeof(gdir), "%s/%s", dir, e->d_name);
		sup_state(gdir, state, sizeof(state));
		for (unsigned i = 0; i < g.nvifs; i++) {
			char one[200];
			snprintf(one, sizeof(one), "%s%u:%s%s%s", i ? " " : "", g.vifs[i].devid, g.vifs[i].mac,
				 g.vifs[i].ips[0] ? "/" : "", g.vifs[i].ips);
			strncat(vifs, one, sizeof(vifs) - strlen(vifs) - 1);
		}
		if (c->json)
			printf("%s{\"name\":\"%s\",\"host\":\"%s\",\"domid\":%u,\"state\":\"%s\",\"vifs\":\"%s\"}",
			       first ? "" : ",", g.name, g.host, g.domid, state, vifs);
		else
			printf("%-12s %-8s %6u  %-24s %s\n", g.name, g.host, g.domid, state, vifs);
		first = false;
	}
	if (c->json)
		printf("]\n");
	if (d)
		closedir(d);
	return 0;
}

static int verb_network_attach(struct cli *c, int argc, char **argv)
{
	struct guest g;
	struct dom_vif v;
	struct dom_spec d = { .backend_domid = 0 };
	char err[1024], xs[512], owner[32];
	struct xs_handle *h;
	unsigned devid = 0;
	int r;

	if (argc < 2 || argc > 3)
		return cli_usage(verb_find("network-attach"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	if (guest_load(c, argv[1], &g) < 0)
		return cli_fail("no guest '%s'", argv[1]);
	if (g.nvifs >= GUEST_MAX_VIFS)
		return cli_fail("guest '%s' already has %d vifs", g.name, GUEST_MAX_VIFS);
	for (unsigned i = 0; i < g.nvifs; i++)
		if (g.vifs[i].devid >= devid)
			devid = g.vifs[i].devid + 1;
	if (guest_parse_vif(argc == 3 ? argv[2] : "", devid, &v, err, sizeof(err)) < 0)
		return cli_fail("%s", err);
	if (mac_in_use(c, v.mac, owner, sizeof(owner)))
		return cli_fail("MAC %s is already used by guest '%s'", v.mac, owner);
	d.domid = g.domid;
	pv_strlcpy(d.uuid, g.uuid, sizeof(d.uuid));
	lab_xs_socket(c, g.host, xs, sizeof(xs));
	h = tsx_open(xs);
	if (!h)
		return cli_fail("cannot reach host %s's xenstore", g.host);
	r = dom_write_vif(h, &d, &v);
	xs_close(h);
	if (r < 0)
		return cli_fail("writing vif %u: %s", v.devid, strerror(-r));
	if (guest_wait_connected(c, g.host, g.domid, v.devid, 10000, err, sizeof(err)) < 0 ||
	    configure_ifs(&g, &v, err, sizeof(err)) < 0) {
		h = tsx_open(xs);
		if (h) {
			dom_remove_vif(h, &d, v.devid, 2000);
			xs_close(h);
		}
		return cli_fail("%s", err);
	}
	g.vifs[g.nvifs++] = v;
	guest_save(c, &g);
	cli_note(c, "guest %s: vif %u (%s) connected as eth%u\n", g.name, v.devid, v.mac, v.devid);
	return 0;
}

static int verb_network_detach(struct cli *c, int argc, char **argv)
{
	struct guest g;
	struct dom_spec d = { .backend_domid = 0 };
	char xs[512];
	struct xs_handle *h;
	unsigned devid, k;
	int r;

	if (argc != 3)
		return cli_usage(verb_find("network-detach"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	if (guest_load(c, argv[1], &g) < 0)
		return cli_fail("no guest '%s'", argv[1]);
	if (pv_parse_uint(argv[2], 255, &devid) < 0)
		return cli_fail("bad vif number '%s'", argv[2]);
	for (k = 0; k < g.nvifs && g.vifs[k].devid != devid; k++)
		;
	if (k == g.nvifs)
		return cli_fail("guest '%s' has no vif %u", g.name, devid);
	d.domid = g.domid;
	lab_xs_socket(c, g.host, xs, sizeof(xs));
	h = tsx_open(xs);
	if (!h)
		return cli_fail("cannot reach host %s's xenstore", g.host);
	r = dom_remove_vif(h, &d, devid, 10000);
	xs_close(h);
	memmove(&g.vifs[k], &g.vifs[k + 1], (g.nvifs - k - 1) * sizeof(g.vifs[0]));
	g.nvifs--;
	guest_save(c, &g);
	if (r == -ETIMEDOUT)
		cli_note(c, "guest %s: vif %u backend did not close within 10 s; removed by force\n", g.name, devid);
	else
		cli_note(c, "guest %s: vif %u detached\n", g.name, devid);
	return 0;
}

static int verb_trace(struct cli *c, int argc, char **argv)
{
	char dir[512], sock[600];
	static char out[1 << 20];
	bool json = c->json;
	const char *name = NULL;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!name)
			name = argv[i];
		else
			return cli_usage(verb_find("trace"));
	}
	if (!name)
		return cli_usage(verb_find("trace"));
	guest_dir(c, name, dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/control.sock", dir);
	if (!cli_exists(dir))
		return cli_fail("no guest '%s'", name);
	r = ctl_query(sock, json ? "trace-json" : "trace", out, sizeof(out));
	if (r < 0)
		return cli_fail("guest %s's runtime does not answer on %s: %s", name, sock, strerror(-r));
	fputs(out, stdout);
	return 0;
}

static int verb_stats(struct cli *c, int argc, char **argv)
{
	char dir[512], sock[600];
	static char out[1 << 20];
	int r;

	if (argc != 2)
		return cli_usage(verb_find("stats"));
	if (lab_host_exists(c, argv[1])) {
		lab_nb_socket(c, argv[1], sock, sizeof(sock));
		r = ctl_query(sock, "stats", out, sizeof(out));
		if (r < 0)
			return cli_fail("host %s's netback does not answer on %s: %s", argv[1], sock, strerror(-r));
	} else {
		guest_dir(c, argv[1], dir, sizeof(dir));
		if (!cli_exists(dir))
			return cli_fail("no host or guest '%s'", argv[1]);
		snprintf(sock, sizeof(sock), "%s/control.sock", dir);
		r = ctl_query(sock, "stats", out, sizeof(out));
		if (r < 0)
			return cli_fail("guest %s's runtime does not answer on %s: %s", argv[1], sock, strerror(-r));
	}
	fputs(out, stdout);
	return 0;
}

const struct cli_verb guest_verbs[] = {
	{ "create", verb_create, "NAME --host HOST [--vif mac=M,bridge=B,ip=A/L,ip=A6/L,mtu=N]... [--queues N] [--compat linux-5.13] [--mem-pages N] [--no-affinity]",
	  "create a guest domain on a host with one or more vifs, start its runtime, connect and configure eth0.." },
	{ "destroy", verb_destroy, "NAME", "destroy a guest: close its vifs, destroy its domain, stop its runtime" },
	{ "list", verb_list, "", "list guests: domid, host, runtime state, vifs" },
	{ "network-attach", verb_network_attach, "GUEST [mac=M,bridge=B,ip=A/L]", "hot-plug a new vif into a running guest" },
	{ "network-detach", verb_network_detach, "GUEST DEVID", "unplug vif DEVID from a running guest" },
	{ "trace", verb_trace, "GUEST [--json]", "the guest's netfront trace, kernel-log style or JSON lines" },
	{ "stats", verb_stats, "GUEST|HOST", "per-queue statistics of a guest's netfront, or per-vif statistics of a host's netback" },
	{ NULL, NULL, NULL, NULL },
};
