#include "toolstack/migrate.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/hv.h"
#include "toolstack/guests.h"
#include "toolstack/lab.h"
#include "toolstack/tsx.h"
#include "toolstack/verbs.h"

/* Established TCP connections in the guest's namespace, one per line. */
static unsigned tcp_snapshot(const char *ns, char *buf, size_t len)
{
	unsigned n = 0;
	if (cli_runv(buf, len, "ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", NULL) != 0) {
		buf[0] = '\0';
		return 0;
	}
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			n++;
	return buf[0] ? n + 1 : 0;
}

/* The 4-tuple (local and peer address:port) of one `ss -Htn` line. */
static bool tcp_tuple(const char *line, char *l, char *p)
{
	unsigned q1, q2;

	return sscanf(line, "%u %u %127s %127s", &q1, &q2, l, p) == 4;
}

/* How many lines of `before` are still in `after`: same 4-tuple, compared
 * whole. `after` is parsed once. */
static unsigned tcp_survivors(const char *before, const char *after)
{
	static char al[256][128], ap[256][128];
	char b[8192], a[8192], *save = NULL;
	unsigned n = 0, na = 0;

	pv_strlcpy(a, after, sizeof(a));
	for (char *m = strtok_r(a, "\n", &save); m && na < 256; m = strtok_r(NULL, "\n", &save))
		if (tcp_tuple(m, al[na], ap[na]))
			na++;
	pv_strlcpy(b, before, sizeof(b));
	for (char *line = strtok_r(b, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char l[128], p[128];
		if (!tcp_tuple(line, l, p))
			continue;
		for (unsigned i = 0; i < na; i++)
			if (!strcmp(l, al[i]) && !strcmp(p, ap[i])) {
				n++;
				break;
			}
	}
	return n;
}

/* In netback's stats answer (docs/netback.md), the number `key` of the
 * `dir` object ("from_guest" / "to_guest") of vif<D>.<N>. */
static uint64_t nb_vif_u64(const char *json, uint32_t domid, unsigned devid, const char *dir, const char *key)
{
	char vif[48], k[64];
	const char *p, *end;
	uint64_t v = 0;

	snprintf(vif, sizeof(vif), "\"name\":\"vif%u.%u\"", domid, devid);
	p = strstr(json, vif);
	if (!p)
		return 0;
	end = strstr(p + 1, "\"name\":\"vif");
	snprintf(k, sizeof(k), "\"%s\":{", dir);
	p = strstr(p, k);
	if (!p || (end && p > end))
		return 0;
	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(p, k);
	if (!p || (end && p > end))
		return 0;
	for (p += strlen(k); *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v;
}

static void netback_times(const struct cli *c, const char *host, uint32_t domid, unsigned devid,
			  uint64_t *first, uint64_t *last)
{
	static char out[1 << 18];
	char sock[512];
	uint64_t a, b;

	*first = *last = 0;
	lab_nb_socket(c, host, sock, sizeof(sock));
	if (ctl_query(sock, "stats", out, sizeof(out)) <= 0)
		return;
	a = nb_vif_u64(out, domid, devid, "from_guest", "first_ns");
	b = nb_vif_u64(out, domid, devid, "to_guest", "first_ns");
	*first = (a && b) ? PV_MIN(a, b) : (a ? a : b);
	*last = PV_MAX(nb_vif_u64(out, domid, devid, "from_guest", "last_ns"),
		       nb_vif_u64(out, domid, devid, "to_guest", "last_ns"));
}

static int wait_backend_state(const struct cli *c, const char *host, uint32_t domid, unsigned devid,
			      const char *state, int timeout_ms)
{
	char xs[512], p[128];
	struct xs_handle *h;
	int r;

	lab_xs_socket(c, host, xs, sizeof(xs));
	h = tsx_open(xs);
	if (!h)
		return -EIO;
	snprintf(p, sizeof(p), "/local/domain/0/backend/vif/%u/%u/state", domid, devid);
	r = tsx_wait_value(h, p, state, timeout_ms);
	xs_close(h);
	return r;
}

/* control/shutdown = suspend, then wait for the guest's acknowledgement (the
 * node rewritten to anything else, or removed), as libxl does. */
static int request_suspend(struct xs_handle *h, uint32_t domid, int timeout_ms)
{
	char p[96];
	uint64_t deadline = pv_now_ns() + (uint64_t)timeout_ms * 1000000u;

	snprintf(p, sizeof(p), "/local/domain/%u/control/shutdown", domid);
	if (!tsx_write(h, XBT_NULL, p, "suspend"))
		return -errno;
	if (!xs_watch(h, p, "suspend-ack")) {
		int r = -errno;
		/* Do not leave a request nobody waits for: the guest would
		 * suspend later, unexpectedly. */
		tsx_write(h, XBT_NULL, p, "%s", "");
		return r;
	}
	for (;;) {
		char *v = tsx_read(h, XBT_NULL, p);
		bool acked = !v || strcmp(v, "suspend");
		free(v);
		if (acked) {
			xs_unwatch(h, p, "suspend-ack");
			return 0;
		}
		if (pv_now_ns() >= deadline)
			break;
		struct pollfd pfd = { .fd = xs_fileno(h), .events = POLLIN };
		if (poll(&pfd, 1, 100) > 0) {
			char **ev;
			while ((ev = xs_check_watch(h)))
				free(ev);
		}
	}
	xs_unwatch(h, p, "suspend-ack");
	/* libxl clears the request itself on timeout. */
	tsx_write(h, XBT_NULL, p, "%s", "");
	return -ETIMEDOUT;
}

static bool host_switch(const struct cli *c, const char *host, char *sw, size_t len)
{
	char conf[512];
	cli_path(c, conf, sizeof(conf), "hosts/%s/host.conf", host);
	return cli_kv_get(conf, "switch", sw, len) == 0 && sw[0];
}

int migrate_run(struct cli *c, const char *name, const char *dst, const struct migrate_opts *o,
		struct migrate_report *rep, char *err, size_t errlen)
{
	struct guest g;
	struct probe_session ps = { 0 };
	struct pv_hv *hs = NULL, *hd = NULL;
	struct xs_handle *xs_src = NULL;
	char p[600], gns[64], sw_src[64] = "", sw_dst[64] = "", swns[64], dstns[64];
	static char tcp_b[8192], tcp_a[8192];
	uint32_t newid = 0;
	bool moved = false;
	int r;

	memset(rep, 0, sizeof(*rep));
	if (guest_load(c, name, &g) < 0) {
		snprintf(err, errlen, "no guest '%s'", name);
		return -ENOENT;
	}
	if (!dst)
		dst = g.host;
	if (!lab_host_exists(c, dst)) {
		snprintf(err, errlen, "no host '%s'", dst);
		return -ENOENT;
	}
	if (o->checkpoint && strcmp(dst, g.host)) {
		snprintf(err, errlen, "a checkpoint resumes the guest where it is (%s), not on %s", g.host, dst);
		return -EINVAL;
	}
	if (!o->checkpoint && !strcmp(dst, g.host)) {
		snprintf(err, errlen, "guest '%s' is already on host %s", name, dst);
		return -EINVAL;
	}
	/* The guest resumes on dst: its daemons must all be there (a dead
	 * netback would leave the vifs unconnected while xenstore still says
	 * Connected). A degraded source is fine: moving guests away from it
	 * is the way out. */
	if ((r = host_check_healthy(c, dst, err, errlen)) < 0)
		return r;
	pv_strlcpy(rep->guest, g.name, sizeof(rep->guest));
	pv_strlcpy(rep->src, g.host, sizeof(rep->src));
	pv_strlcpy(rep->dst, dst, sizeof(rep->dst));
	rep->src_domid = g.domid;
	rep->checkpoint = o->checkpoint;
	guest_netns(g.name, gns, sizeof(gns));

	lab_hv_socket(c, g.host, p, sizeof(p));
	hs = pv_hv_open(p);
	lab_hv_socket(c, dst, p, sizeof(p));
	hd = o->checkpoint ? NULL : pv_hv_open(p);
	lab_xs_socket(c, g.host, p, sizeof(p));
	xs_src = tsx_open(p);
	if (!hs || (!o->checkpoint && !hd) || !xs_src) {
		snprintf(err, errlen, "cannot reach the hypervisor or xenstore of %s/%s", g.host, dst);
		r = -EIO;
		goto out;
	}

	/* 1. Destination: incoming domain, its xenstore layout, backends probed. */
	if (!o->checkpoint) {
		struct pv_domain_config cfg = { .incoming = true, .mem_pages = g.mem_pages };
		pv_strlcpy(cfg.name, g.name, sizeof(cfg.name));
		if ((r = pv_hv_domain_create(hd, &cfg, &newid)) < 0) {
			snprintf(err, errlen, "creating the incoming domain on %s: %s", dst, strerror(-r));
			goto out;
		}
		rep->dst_domid = newid;
		if ((r = guest_write_xenstore(c, dst, &g, newid, err, errlen)) < 0)
			goto undo_dst;
		for (unsigned i = 0; i < g.nvifs; i++)
			if ((r = wait_backend_state(c, dst, newid, g.vifs[i].devid, "2", 5000)) < 0) {
				snprintf(err, errlen, "netback on %s did not reach InitWait for vif %u", dst, g.vifs[i].devid);
				goto undo_dst;
			}
	} else {
		rep->dst_domid = g.domid;
	}

	/* Measurements start before anything is asked of the guest. */
	if (o->probe && g.nvifs && host_switch(c, g.host, sw_src, sizeof(sw_src)) &&
	    host_switch(c, dst, sw_dst, sizeof(sw_dst)) && !strcmp(sw_src, sw_dst)) {
		struct probe_config pc = { .switch_ns = swns, .guest_ns = gns, .guest_if = "eth0",
					   .dest_ns = dstns, .interval_us = o->probe_interval_us };
		lab_netns(swns, sizeof(swns), 's', sw_src);
		lab_netns(dstns, sizeof(dstns), 'h', dst);
		probe_parse_mac(g.vifs[0].mac, pc.guest_mac);
		if (probe_start(&ps, &pc) == 0) {
			rep->have_probe = true;
			pv_sleep_ns(50000000);
		} else {
			probe_free(&ps);
		}
	}
	rep->tcp_before = tcp_snapshot(gns, tcp_b, sizeof(tcp_b));

	/* 2. Ask the guest to suspend. */
	rep->t_request = pv_now_ns();
	if ((r = request_suspend(xs_src, g.domid, 60000)) < 0) {
		snprintf(err, errlen, "guest %s did not acknowledge the suspend request: %s", name, strerror(-r));
		goto undo_dst;
	}
	rep->t_acked = pv_now_ns();
	if ((r = pv_hv_domain_wait(hs, g.domid, 1u << PV_DOM_SUSPENDED, 60000)) < 0) {
		snprintf(err, errlen, "guest %s did not suspend: %s", name, strerror(-r));
		goto undo_dst;
	}
	rep->t_suspended = pv_now_ns();
	if (rep->have_probe)   /* the destination capture starts counting */
		__atomic_store_n(&ps.res->dest_since_ns, rep->t_suspended, __ATOMIC_RELEASE);

	if (o->checkpoint) {
		/* 3'. Resume cancelled: same domain, nothing lost (libxl then XS_RESUME). */
		if ((r = pv_hv_domain_resume(hs, g.domid)) < 0) {
			snprintf(err, errlen, "resuming guest %s: %s", name, strerror(-r));
			goto out;
		}
		rep->t_resumed = pv_now_ns();
		xs_resume_domain(xs_src, g.domid);
		for (unsigned i = 0; i < g.nvifs; i++)
			if (guest_wait_connected(c, g.host, g.domid, g.vifs[i].devid, 5000, err, errlen) < 0)
				r = -ETIMEDOUT;
		rep->t_connected = rep->t_done = pv_now_ns();
	} else {
		/* 3. Move the memory, end the source incarnation. */
		struct pv_resume_info info = { .new_domid = newid };
		int memfd = -1;
		uint32_t pages = 0;
		char xsd[512];

		if ((r = pv_hv_domain_export(hs, g.domid, &memfd, &pages)) < 0 ||
		    (r = pv_hv_domain_import(hd, newid, memfd, pages)) < 0) {
			if (memfd >= 0)
				close(memfd);
			snprintf(err, errlen, "moving guest %s's memory: %s", name, strerror(-r));
			pv_hv_domain_resume(hs, g.domid);
			goto undo_dst;
		}
		close(memfd);
		cli_path(c, info.hypervisor_path, sizeof(info.hypervisor_path), "hosts/%s/hypervisor/domains/%u.sock",
			 dst, newid);
		lab_xs_domain_socket(c, dst, newid, xsd, sizeof(xsd));
		snprintf(info.start_info, sizeof(info.start_info), "xenstore=%s\nhost=%s\ndomid=%u\n", xsd, dst, newid);
		/* The old vif's last frame is final once the guest is suspended. */
		netback_times(c, g.host, g.domid, g.vifs[0].devid, &(uint64_t){ 0 }, &rep->old_last_ns);
		if ((r = pv_hv_domain_moved(hs, g.domid, &info)) < 0) {
			snprintf(err, errlen, "ending guest %s on %s: %s", name, g.host, strerror(-r));
			pv_hv_domain_resume(hs, g.domid);
			goto undo_dst;
		}
		moved = true;
		rep->t_resumed = pv_now_ns();
		/* The guest now lives on dst: record it before anything else. */
		pv_strlcpy(g.host, dst, sizeof(g.host));
		uint32_t oldid = g.domid;
		g.domid = newid;
		guest_save(c, &g);

		/* 4. Wait for the vifs to connect on the destination. */
		for (unsigned i = 0; i < g.nvifs; i++)
			if (guest_wait_connected(c, dst, newid, g.vifs[i].devid, 10000, err, errlen) < 0)
				r = -ETIMEDOUT;
		rep->t_connected = pv_now_ns();

		/* 5. Destroy the source (its netback tears the old vif down). */
		g.domid = oldid;
		pv_strlcpy(g.host, rep->src, sizeof(g.host));
		guest_remove_domain(c, rep->src, &g, oldid, false);
		rep->t_done = pv_now_ns();
	}

	/* Let traffic resume before stopping the probes. */
	if (rep->have_probe) {
		uint64_t until = pv_now_ns() + 1000000000ull;
		while (pv_now_ns() < until && (ps.res->to_guest.last_rx_ns < rep->t_resumed ||
					       ps.res->from_guest.last_rx_ns < rep->t_resumed))
			pv_sleep_ns(5000000);
		pv_sleep_ns(50000000);
		probe_stop(&ps, 100);
		rep->to_guest = ps.res->to_guest;
		rep->from_guest = ps.res->from_guest;
		rep->dest = ps.res->dest;
		probe_free(&ps);
	}
	if (g.nvifs) {
		uint64_t last_new;
		netback_times(c, dst, rep->dst_domid, g.vifs[0].devid, &rep->new_first_ns, &last_new);
		if (o->checkpoint) /* same vif: the first frame after the resume */
			rep->new_first_ns = 0;
	}
	rep->tcp_after = tcp_survivors(tcp_b, (tcp_snapshot(gns, tcp_a, sizeof(tcp_a)), tcp_a));
	r = r == -ETIMEDOUT ? r : 0;
	goto out;

undo_dst:
	if (!moved && !o->checkpoint && newid) {
		struct guest tmp = g;
		guest_remove_domain(c, dst, &tmp, newid, false);
	}
	probe_free(&ps);
out:
	if (xs_src)
		xs_close(xs_src);
	pv_hv_close(hs);
	pv_hv_close(hd);
	return r;
}

uint64_t migrate_blackout_ns(const struct migrate_report *r)
{
	if (!r->old_last_ns || !r->new_first_ns || r->new_first_ns < r->old_last_ns)
		return 0;
	return r->new_first_ns - r->old_last_ns;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

void migrate_print(const struct cli *c, const struct migrate_report *r)
{
	uint64_t bo = migrate_blackout_ns(r);
	uint64_t downtime = r->t_resumed - r->t_suspended;
	bool garp_first = r->dest.garp_ns && (!r->dest.first_reply_ns || r->dest.garp_ns <= r->dest.first_reply_ns);

	if (c->json) {
		printf("{\"guest\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"from_domid\":%u,\"to_domid\":%u,"
		       "\"checkpoint\":%s,\"total_ms\":%.3f,\"ack_ms\":%.3f,\"downtime_ms\":%.3f,"
		       "\"reconnect_ms\":%.3f,\"blackout_ms\":%.3f",
		       r->guest, r->src, r->dst, r->src_domid, r->dst_domid, r->checkpoint ? "true" : "false",
		       ms(r->t_done - r->t_request), ms(r->t_acked - r->t_request), ms(downtime),
		       ms(r->t_connected - r->t_resumed), ms(bo));
		if (r->have_probe)
			printf(",\"lost_to_guest\":%lu,\"sent_to_guest\":%lu,\"lost_from_guest\":%lu,"
			       "\"sent_from_guest\":%lu,\"gap_to_guest_ms\":%.3f,\"gap_from_guest_ms\":%.3f,"
			       "\"garp_seen\":%s,\"garp_before_first_reply\":%s,\"na_seen\":%s,"
			       "\"garp_after_resume_ms\":%.3f,\"first_reply_after_resume_ms\":%.3f",
			       (unsigned long)(r->to_guest.sent - r->to_guest.received), (unsigned long)r->to_guest.sent,
			       (unsigned long)(r->from_guest.sent - r->from_guest.received),
			       (unsigned long)r->from_guest.sent, ms(r->to_guest.max_gap_ns), ms(r->from_guest.max_gap_ns),
			       r->dest.garp_ns ? "true" : "false", garp_first ? "true" : "false",
			       r->dest.na_ns ? "true" : "false",
			       r->dest.garp_ns ? ms(r->dest.garp_ns - r->t_resumed) : -1.0,
			       r->dest.first_reply_ns ? ms(r->dest.first_reply_ns - r->t_resumed) : -1.0);
		printf(",\"tcp_before\":%u,\"tcp_alive\":%u}\n", r->tcp_before, r->tcp_after);
		return;
	}
	if (r->checkpoint)
		printf("checkpoint of %s on %s (domain %u)\n", r->guest, r->src, r->src_domid);
	else
		printf("migration of %s: %s (domain %u) -> %s (domain %u)\n", r->guest, r->src, r->src_domid,
		       r->dst, r->dst_domid);
	printf("  total time        %8.2f ms  (suspend request -> %s)\n", ms(r->t_done - r->t_request),
	       r->checkpoint ? "resumed and connected" : "source destroyed");
	printf("  suspend ack       %8.2f ms  (control/shutdown written -> acknowledged)\n", ms(r->t_acked - r->t_request));
	printf("  guest downtime    %8.2f ms  (suspended -> resumed)\n", ms(downtime));
	printf("  reconnect         %8.2f ms  (resumed -> vifs Connected)\n", ms(r->t_connected - r->t_resumed));
	if (bo)
		printf("  network blackout  %8.2f ms  (last frame through the old vif -> first through the new)\n", ms(bo));
	else if (!r->checkpoint)
		printf("  network blackout       n/a  (no frame through the old or the new vif)\n");
	if (r->have_probe) {
		printf("  probe gap         %8.2f ms to the guest, %.2f ms from the guest\n", ms(r->to_guest.max_gap_ns),
		       ms(r->from_guest.max_gap_ns));
		printf("  packets lost      %lu of %lu to the guest, %lu of %lu from the guest\n",
		       (unsigned long)(r->to_guest.sent - r->to_guest.received), (unsigned long)r->to_guest.sent,
		       (unsigned long)(r->from_guest.sent - r->from_guest.received), (unsigned long)r->from_guest.sent);
		if (r->dest.garp_ns)
			printf("  gratuitous ARP    seen on %s's bridge %.2f ms after the resume (%lu), %s\n",
			       r->dst, ms(r->dest.garp_ns - r->t_resumed), (unsigned long)r->dest.garps,
			       !r->dest.first_reply_ns ? "no echo reply from the guest there"
			       : garp_first ? "before the guest's first echo reply there" : "AFTER the guest's first echo reply there");
		else
			printf("  gratuitous ARP    not seen on %s's bridge\n", r->dst);
		if (r->dest.na_ns)
			printf("  unsolicited NA    seen %.2f ms after the resume (%lu)\n", ms(r->dest.na_ns - r->t_resumed),
			       (unsigned long)r->dest.nas);
	} else {
		printf("  packets lost           n/a  (the hosts share no switch to probe from)\n");
	}
	printf("  TCP connections   %u of %u alive\n", r->tcp_after, r->tcp_before);
}

static int verb_migrate(struct cli *c, int argc, char **argv)
{
	struct migrate_opts o = { .probe = true };
	struct migrate_report rep;
	const char *guest = NULL, *dst = NULL;
	char err[1024];
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cancel") || !strcmp(argv[i], "--checkpoint"))
			o.checkpoint = true;
		else if (!strcmp(argv[i], "--no-probe"))
			o.probe = false;
		else if (argv[i][0] != '-' && !guest)
			guest = argv[i];
		else if (argv[i][0] != '-' && !dst)
			dst = argv[i];
		else
			return cli_usage(verb_find("migrate"));
	}
	if (!guest || (!dst && !o.checkpoint))
		return cli_usage(verb_find("migrate"));
	if ((r = cli_lock(c)) < 0)
		return cli_fail("cannot lock %s: %s", c->root, strerror(-r));
	r = migrate_run(c, guest, dst, &o, &rep, err, sizeof(err));
	if (r < 0 && !rep.t_resumed)
		return cli_fail("%s", err);
	migrate_print(c, &rep);
	if (r < 0)
		return cli_fail("%s", err);
	return 0;
}

const struct cli_verb migrate_verbs[] = {
	{ "migrate", verb_migrate, "GUEST HOST | GUEST --cancel [--no-probe]",
	  "live-migrate a guest to another host (or checkpoint it in place with --cancel) and report blackout, loss, GARP, TCP" },
	{ NULL, NULL, NULL, NULL },
};
