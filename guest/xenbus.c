/*
 * The xenbus frontend bus of the guest runtime: device discovery under
 * device/vif, the other end's details and state watch (talk_to_otherend,
 * watch_otherend), xenbus_dev_fatal, control/shutdown (Linux's
 * drivers/xen/manage.c: acknowledge in a transaction, then poweroff, reboot
 * or suspend), do_suspend (freeze, xs_suspend, the suspend call, then the
 * cancelled path or xenbus_dev_resume of every device on the new host), and
 * the xenstore half of netfront's nf_ops. A backend that goes away is seen
 * in xenstore (its state node); the hypervisor tells unprivileged domains
 * nothing about other domains' deaths.
 *
 * Main thread only, except gr_bus_foreach (any thread; devs_lock).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <xenstore.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/runtime.h"
#include "hypervisor/hv.h"
#include "xsclient/xsc.h"

#define TOKEN_SHUTDOWN "pvnet-shutdown"
#define TOKEN_DEVICES "pvnet-devices"
#define TOKEN_BACKEND "pvnet-be-"
#define BUS_CLOSE_TIMEOUT_NS 5000000000ull   /* XENNET_TIMEOUT */
#define TXN_RETRIES 1000

struct gr_dev {
	struct gr_dev *next;
	struct gr_rt *rt;
	struct nf_dev *nf;
	char watch[192];          /* "<otherend>/state" being watched, "" if none */
	char token[32];
	int64_t connect_timer;
	bool seen;                /* still listed in device/vif (scan) */
};

static void on_xs(struct pv_loop *loop, int fd, uint32_t events, void *arg);

/* ---- xenstore helpers ------------------------------------------------------- */

static char *xs_get(struct gr_rt *rt, xs_transaction_t t, const char *path)
{
	unsigned len;
	return xs_read(rt->xs, t, path, &len);
}

static int xs_put(struct gr_rt *rt, xs_transaction_t t, const char *path, const char *value)
{
	return xs_write(rt->xs, t, path, value, (unsigned)strlen(value)) ? 0 : -(errno ? errno : EIO);
}

static int xs_connect(struct gr_rt *rt, const char *path)
{
	/* libxenstore reads $XENSTORED_PATH when it opens a handle. */
	if (setenv("XENSTORED_PATH", path, 1) < 0)
		return -errno;
	rt->xs = xs_open(0);
	if (!rt->xs)
		return -(errno ? errno : EIO);
	rt->xs_suspended = false;
	/* Batches (the connect-time reads and the keys' transaction) go
	 * pipelined on a second connection; without it, one at a time. */
	rt->xsc = xsc_open(path);
	if (!rt->xsc)
		pv_warn("xenstore at %s: no pipelined connection (%s): one request at a time", path,
			strerror(errno));
	pv_strlcpy(rt->xs_path, path, sizeof(rt->xs_path));
	return pv_loop_add_fd(rt->loop, xs_fileno(rt->xs), EPOLLIN, on_xs, rt);
}

static void xs_disconnect(struct gr_rt *rt)
{
	if (!rt->xs)
		return;
	if (!rt->xs_suspended)
		pv_loop_del_fd(rt->loop, xs_fileno(rt->xs));
	xs_close(rt->xs);
	rt->xs = NULL;
	rt->xs_suspended = false;
	xsc_close(rt->xsc);
	rt->xsc = NULL;
}

/* ---- nf_ops: the xenstore side ---------------------------------------------- */

static int ops_read(void *env, struct nf_dev *d, bool backend, const char *key, char *buf, size_t len)
{
	struct gr_rt *rt = env;
	char path[256];
	unsigned vlen;
	char *v;

	snprintf(path, sizeof(path), "%s/%s", backend ? d->otherend : d->nodename, key);
	v = xs_read(rt->xs, XBT_NULL, path, &vlen);
	if (!v)
		return -(errno ? errno : ENOENT);
	/* An over-long value is absent, as on the batched path: cutting it
	 * could turn an invalid value into a valid one. Its length is what
	 * xenstore says, not where a NUL byte in it happens to stop it. */
	if (vlen >= len || len == 0) {
		if (len)
			buf[0] = '\0';
		free(v);
		return -E2BIG;
	}
	memcpy(buf, v, vlen);
	buf[vlen] = '\0';
	free(v);
	return 0;
}

static int ops_write(void *env, struct nf_dev *d, const char *key, const char *value)
{
	struct gr_rt *rt = env;
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", d->nodename, key);
	return xs_put(rt, XBT_NULL, path, value);
}

/* The keys in one pipelined transaction: START, every WRITE, END. */
static int write_txn_pipelined(struct gr_rt *rt, struct nf_dev *d, const struct nf_kv *kv, unsigned n)
{
	struct xsc_op *ops = calloc(n, sizeof(*ops));
	char (*paths)[96] = calloc(n, sizeof(*paths));
	int r = -ENOMEM;

	if (ops && paths) {
		for (unsigned i = 0; i < n; i++) {
			snprintf(paths[i], sizeof(paths[i]), "%s/%s", d->nodename, kv[i].key);
			ops[i].type = XS_WRITE;
			ops[i].path = paths[i];
			ops[i].value = kv[i].value;
			ops[i].len = (unsigned)strlen(kv[i].value);
		}
		r = xsc_transaction(rt->xsc, ops, n, TXN_RETRIES);
		xsc_ops_free(ops, n);
	}
	free(paths);
	free(ops);
	return r;
}

static int ops_write_txn(void *env, struct nf_dev *d, const struct nf_kv *kv, unsigned n)
{
	struct gr_rt *rt = env;
	char path[256];

	if (rt->xsc)
		return write_txn_pipelined(rt, d, kv, n);

	for (int tries = 0; tries < TXN_RETRIES; tries++) {
		xs_transaction_t t = xs_transaction_start(rt->xs);
		int r = 0;

		if (t == XBT_NULL)
			return -(errno ? errno : EIO);
		for (unsigned i = 0; i < n && r == 0; i++) {
			snprintf(path, sizeof(path), "%s/%s", d->nodename, kv[i].key);
			r = xs_put(rt, t, path, kv[i].value);
		}
		if (r < 0) {
			xs_transaction_end(rt->xs, t, true);
			return r;
		}
		if (xs_transaction_end(rt->xs, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

/* Several keys in one round trip (pipelined READs). */
static int ops_read_keys(void *env, struct nf_dev *d, struct nf_rkey *k, unsigned n)
{
	struct gr_rt *rt = env;
	struct xsc_op ops[NF_RKEYS_MAX];
	char paths[NF_RKEYS_MAX][192];
	int r;

	if (n > NF_RKEYS_MAX)
		return -EINVAL;
	if (!rt->xsc) {
		for (unsigned i = 0; i < n; i++)
			k[i].r = ops_read(env, d, k[i].backend, k[i].key, k[i].buf, sizeof(k[i].buf));
		return 0;
	}
	memset(ops, 0, sizeof(ops));
	for (unsigned i = 0; i < n; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", k[i].backend ? d->otherend : d->nodename,
			 k[i].key);
		ops[i].type = XS_READ;
		ops[i].path = paths[i];
	}
	r = xsc_batch(rt->xsc, 0, ops, n);
	if (r < 0) {
		/* The pipelined connection is unusable: one at a time from now on. */
		pv_warn("xenstore: pipelined reads failed (%s): falling back to one request at a time",
			strerror(-r));
		xsc_ops_free(ops, n);
		xsc_close(rt->xsc);
		rt->xsc = NULL;
		for (unsigned i = 0; i < n; i++)
			k[i].r = ops_read(env, d, k[i].backend, k[i].key, k[i].buf, sizeof(k[i].buf));
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		k[i].buf[0] = '\0';
		if (ops[i].err)
			k[i].r = -ops[i].err;
		else if (ops[i].rlen >= sizeof(k[i].buf))
			k[i].r = -E2BIG;
		else {
			memcpy(k[i].buf, ops[i].result, ops[i].rlen + 1);
			k[i].r = (int)ops[i].rlen;
		}
	}
	xsc_ops_free(ops, n);
	return 0;
}

/* xenbus_dev_fatal: error/<nodename>/error = "<err> <msg>", then Closing. */
static void ops_fatal(void *env, struct nf_dev *d, int err, const char *msg)
{
	struct gr_rt *rt = env;
	char path[256], v[256];

	pv_err("%s: %s: %s", d->nodename, msg, strerror(-err));
	snprintf(path, sizeof(path), "error/%s/error", d->nodename);
	snprintf(v, sizeof(v), "%d %s", err, msg);
	xs_put(rt, XBT_NULL, path, v);
	nf_switch_state(d, XenbusStateClosing);
}

const struct nf_ops gr_nf_ops = {
	.read = ops_read,
	.write = ops_write,
	.write_txn = ops_write_txn,
	.read_keys = ops_read_keys,
	.fatal = ops_fatal,
	.queue_setup = nfd_queue_setup,
	.queue_teardown = nfd_queue_teardown,
	.queue_start = nfd_queue_start,
	.netdev_register = nft_register,
	.netdev_unregister = nft_unregister,
	.netdev_update = nft_update,
	.netdev_carrier = nft_carrier,
	.netdev_set_queues = nft_set_queues,
	.kick = nfd_kick,
	.notify_peers = nft_notify_peers,
	.announce_frames = nft_announce_frames,
};

/* ---- devices ----------------------------------------------------------------- */

void gr_bus_foreach(struct gr_rt *rt, void (*fn)(void *arg, struct nf_dev *d), void *arg)
{
	pthread_mutex_lock(&rt->devs_lock);
	for (struct gr_dev *g = rt->devs; g; g = g->next)
		fn(arg, g->nf);
	pthread_mutex_unlock(&rt->devs_lock);
}

static struct gr_dev *dev_by_handle(struct gr_rt *rt, unsigned handle)
{
	for (struct gr_dev *g = rt->devs; g; g = g->next)
		if (g->nf->handle == handle)
			return g;
	return NULL;
}

static bool valid_backend_path(const char *p)
{
	size_t n = strlen(p);

	if (n < 2 || n >= sizeof(((struct nf_dev *)0)->otherend) - 8 || p[0] != '/' || p[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '-' || c == '_'))
			return false;
		if (c == '/' && p[i + 1] == '/')
			return false;
	}
	return true;
}

/* talk_to_otherend / xenbus_read_otherend_details: copy and check. */
static int read_otherend(struct gr_rt *rt, const char *nodename, char *path, size_t plen, uint32_t *id)
{
	char p[128];
	char *v;
	int r = 0;

	snprintf(p, sizeof(p), "%s/backend-id", nodename);
	v = xs_get(rt, XBT_NULL, p);
	if (!v || pv_parse_u32(v, id) < 0 || *id >= DOMID_FIRST_RESERVED)
		r = -EINVAL;
	free(v);
	if (r < 0)
		return r;
	snprintf(p, sizeof(p), "%s/backend", nodename);
	v = xs_get(rt, XBT_NULL, p);
	if (!v || !valid_backend_path(v))
		r = -EINVAL;
	else
		pv_strlcpy(path, v, plen);
	free(v);
	if (r < 0)
		return r;
	/* "missing other end": the backend directory must exist. */
	v = xs_get(rt, XBT_NULL, path);
	if (!v)
		return -ENOENT;
	free(v);
	return 0;
}

static void connect_timeout(struct pv_loop *loop, void *arg)
{
	struct gr_dev *g = arg;
	struct nf_dev *d = g->nf;

	(void)loop;
	g->connect_timer = 0;
	if (d->state != XenbusStateConnected || d->backend_state != XenbusStateConnected)
		nf_mark_broken(d, "backend did not connect within %u ms (backend %s, frontend %s)",
			       g->rt->o.connect_timeout_ms, gr_xenbus_state_name(d->backend_state),
			       gr_xenbus_state_name(d->state));
}

static void arm_connect_timer(struct gr_dev *g)
{
	struct gr_rt *rt = g->rt;

	if (g->connect_timer > 0)
		pv_loop_cancel_timer(rt->loop, g->connect_timer);
	g->connect_timer = 0;
	if (rt->o.connect_timeout_ms)
		g->connect_timer = pv_loop_add_timer(rt->loop, (uint64_t)rt->o.connect_timeout_ms * 1000000u,
						     connect_timeout, g);
}

/* watch_otherend */
static int watch_otherend(struct gr_dev *g)
{
	snprintf(g->watch, sizeof(g->watch), "%s/state", g->nf->otherend);
	if (!xs_watch(g->rt->xs, g->watch, g->token)) {
		int e = errno;
		pv_err("%s: watching %s: %s", g->nf->nodename, g->watch, strerror(e));
		g->watch[0] = '\0';
		return -e;
	}
	return 0;
}

static void unwatch_otherend(struct gr_dev *g)
{
	if (g->watch[0] && g->rt->xs)
		xs_unwatch(g->rt->xs, g->watch, g->token);
	g->watch[0] = '\0';
}

static void probe_device(struct gr_rt *rt, unsigned handle)
{
	struct nf_params p = { .max_queues = rt->o.max_queues, .mode = rt->o.mode,
			       .announce_first = rt->o.mode == NF_MODE_FIXED && !rt->o.no_announce_first };
	char nodename[32], otherend[128];
	uint32_t id;
	struct gr_dev *g;
	int r;

	snprintf(nodename, sizeof(nodename), "device/vif/%u", handle);
	r = read_otherend(rt, nodename, otherend, sizeof(otherend), &id);
	if (r < 0) {
		/* Not ready yet (or bogus): retried on the next change there. */
		pv_debug("%s: other end not usable yet: %s", nodename, strerror(-r));
		return;
	}
	snprintf(p.ifname, sizeof(p.ifname), "eth%u", handle);
	g = calloc(1, sizeof(*g));
	if (!g)
		return;
	g->rt = rt;
	g->nf = nf_dev_new(nodename, handle, &p, &gr_nf_ops, rt, rt->trace);
	if (!g->nf) {
		free(g);
		return;
	}
	pv_strlcpy(g->nf->otherend, otherend, sizeof(g->nf->otherend));
	g->nf->otherend_id = id;
	snprintf(g->token, sizeof(g->token), TOKEN_BACKEND "%u", handle);
	g->seen = true;
	pthread_mutex_lock(&rt->devs_lock);
	g->next = rt->devs;
	rt->devs = g;
	pthread_mutex_unlock(&rt->devs_lock);
	pv_info("%s: backend %s (domain %u)", nodename, otherend, id);
	nf_probe(g->nf);
	watch_otherend(g);
	arm_connect_timer(g);
}

static void remove_device(struct gr_rt *rt, struct gr_dev *g)
{
	pthread_mutex_lock(&rt->devs_lock);
	for (struct gr_dev **p = &rt->devs; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			break;
		}
	pthread_mutex_unlock(&rt->devs_lock);
	unwatch_otherend(g);
	if (g->connect_timer > 0)
		pv_loop_cancel_timer(rt->loop, g->connect_timer);
	nf_remove(g->nf);
	nf_dev_free(g->nf);
	free(g);
}

/* xenbus_dev_changed for the whole device/vif directory. */
static void scan_devices(struct gr_rt *rt)
{
	unsigned n = 0;
	char **names = xs_directory(rt->xs, XBT_NULL, "device/vif", &n);

	for (struct gr_dev *g = rt->devs; g; g = g->next)
		g->seen = false;
	for (unsigned i = 0; names && i < n; i++) {
		unsigned h;
		struct gr_dev *g;
		if (pv_parse_uint(names[i], 0xFFFF, &h) < 0)
			continue;
		g = dev_by_handle(rt, h);
		if (g)
			g->seen = true;
		else
			probe_device(rt, h);
	}
	free(names);
	for (struct gr_dev *g = rt->devs, *next; g; g = next) {
		next = g->next;
		if (!g->seen) {
			pv_info("%s: frontend directory removed", g->nf->nodename);
			remove_device(rt, g);
		}
	}
}

static int read_state(struct gr_rt *rt, const char *path)
{
	char *v = xs_get(rt, XBT_NULL, path);
	unsigned s;
	int r = XenbusStateUnknown;

	/* As Linux's xenbus_read_driver_state: no node or no number reads
	 * Unknown; a number past the known states is passed on (and ignored,
	 * as netfront's otherend handler ignores it). */
	if (v && pv_parse_uint(v, 255, &s) == 0)
		r = (int)s;
	free(v);
	return r;
}

static void finish_shutdown(struct gr_rt *rt);

static void backend_event(struct gr_rt *rt, const char *path, const char *token)
{
	unsigned h;
	struct gr_dev *g;
	struct nf_dev *d;

	if (pv_parse_uint(token + strlen(TOKEN_BACKEND), 0xFFFF, &h) < 0 || !(g = dev_by_handle(rt, h)))
		return;
	if (!g->watch[0] || strcmp(path, g->watch) != 0)
		return;   /* an event of a watch we no longer hold */
	d = g->nf;
	nf_backend_changed(d, read_state(rt, g->watch));
	if (d->state == XenbusStateConnected && d->backend_state == XenbusStateConnected &&
	    g->connect_timer > 0) {
		pv_loop_cancel_timer(rt->loop, g->connect_timer);
		g->connect_timer = 0;
	}
	if (rt->shutdown_reason) {
		bool all_closed = true;
		for (struct gr_dev *x = rt->devs; x; x = x->next)
			all_closed &= x->nf->state != XenbusStateClosing;
		if (all_closed)
			finish_shutdown(rt);
	}
}

/* ---- control/shutdown --------------------------------------------------------- */

static void do_suspend(struct gr_rt *rt);
static void begin_shutdown(struct gr_rt *rt, unsigned reason);

/* shutdown_handler: read and acknowledge in one transaction. Returns the
 * command ("" if none) in buf. */
static void read_shutdown(struct gr_rt *rt, char *buf, size_t len)
{
	static const char *const known[] = { "poweroff", "halt", "reboot", "suspend" };

	buf[0] = '\0';
	for (int tries = 0; tries < TXN_RETRIES; tries++) {
		xs_transaction_t t = xs_transaction_start(rt->xs);
		char *v;
		bool ack = false;

		if (t == XBT_NULL)
			return;
		v = xs_get(rt, t, "control/shutdown");
		if (!v || !*v) {
			/* Ignore read errors and empty reads. */
			free(v);
			xs_transaction_end(rt->xs, t, true);
			return;
		}
		pv_strlcpy(buf, v, len);
		free(v);
		for (size_t i = 0; i < PV_ARRAY_SIZE(known); i++)
			ack |= !strcmp(buf, known[i]);
		if (ack)
			xs_put(rt, t, "control/shutdown", "");
		if (xs_transaction_end(rt->xs, t, false) || errno != EAGAIN)
			return;
	}
}

/* Returns true if the xenstore handle changed (stop reading the old one). */
static bool shutdown_event(struct gr_rt *rt)
{
	char cmd[64];
	struct xs_handle *before = rt->xs;

	read_shutdown(rt, cmd, sizeof(cmd));
	if (!cmd[0])
		return false;
	if (!strcmp(cmd, "suspend")) {
		do_suspend(rt);
	} else if (!strcmp(cmd, "poweroff") || !strcmp(cmd, "halt")) {
		begin_shutdown(rt, SHUTDOWN_poweroff);
	} else if (!strcmp(cmd, "reboot")) {
		begin_shutdown(rt, SHUTDOWN_reboot);
	} else {
		pv_warn("Ignoring shutdown request: %s", cmd);
	}
	return rt->xs != before || rt->xs_suspended;
}

static void on_xs(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct gr_rt *rt = arg;
	char **ev;

	(void)loop; (void)fd; (void)events;
	while (rt->xs && !rt->xs_suspended && (ev = xs_check_watch(rt->xs))) {
		const char *path = ev[XS_WATCH_PATH], *token = ev[XS_WATCH_TOKEN];
		bool changed = false;

		if (!strcmp(token, TOKEN_SHUTDOWN))
			changed = shutdown_event(rt);
		else if (!strcmp(token, TOKEN_DEVICES))
			scan_devices(rt);
		else if (!strncmp(token, TOKEN_BACKEND, strlen(TOKEN_BACKEND)))
			backend_event(rt, path, token);
		free(ev);
		if (changed || rt->stopping)
			break;
	}
}

/* setup_shutdown_watcher + the device bus watch. */
static int bus_watches(struct gr_rt *rt)
{
	static const char *const features[] = { "feature-poweroff", "feature-reboot", "feature-suspend" };
	char p[64];

	for (size_t i = 0; i < PV_ARRAY_SIZE(features); i++) {
		snprintf(p, sizeof(p), "control/%s", features[i]);
		if (xs_put(rt, XBT_NULL, p, "1") < 0)
			pv_warn("cannot write %s: %s", p, strerror(errno));
	}
	if (!xs_watch(rt->xs, "control/shutdown", TOKEN_SHUTDOWN) ||
	    !xs_watch(rt->xs, "device/vif", TOKEN_DEVICES))
		return -(errno ? errno : EIO);
	return 0;
}

/* ---- poweroff / reboot ---------------------------------------------------------- */

static void shutdown_timeout(struct pv_loop *loop, void *arg)
{
	(void)loop;
	finish_shutdown(arg);
}

static void finish_shutdown(struct gr_rt *rt)
{
	if (rt->stopping)
		return;
	rt->stopping = true;
	while (rt->devs)
		remove_device(rt, rt->devs);
	if (rt->hvc) {
		int r = pv_hv_shutdown(rt->hvc->hv, rt->shutdown_reason);
		if (r < 0)
			pv_warn("shutdown call: %s", strerror(-r));
	}
	pv_info("guest shut down (%s)", rt->shutdown_reason == SHUTDOWN_reboot ? "reboot" : "poweroff");
	pv_loop_stop(rt->loop);
}

/* Linux's kernel shutdown: xenbus_frontend_dev_shutdown closes every
 * connected frontend (Closing, then Closed once the backend closed), waiting
 * up to 5 s; then the shutdown hypercall. */
static void begin_shutdown(struct gr_rt *rt, unsigned reason)
{
	bool waiting = false;

	if (rt->shutdown_reason)
		return;
	rt->shutdown_reason = reason;
	pv_info("%s requested", reason == SHUTDOWN_reboot ? "reboot" : "poweroff");
	for (struct gr_dev *g = rt->devs; g; g = g->next)
		if (g->nf->state == XenbusStateConnected) {
			nf_switch_state(g->nf, XenbusStateClosing);
			waiting = true;
		}
	if (!waiting || pv_loop_add_timer(rt->loop, BUS_CLOSE_TIMEOUT_NS, shutdown_timeout, rt) < 0)
		finish_shutdown(rt);
}

/* ---- suspend / resume ------------------------------------------------------------- */

static int parse_start_info(const char *text, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			if (ll - kl - 1 >= len)
				return -ENAMETOOLONG;
			memcpy(out, p + kl + 1, ll - kl - 1);
			out[ll - kl - 1] = '\0';
			return 0;
		}
		p = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

static void mark_stale(void *arg, struct nf_dev *d)
{
	(void)arg;
	nf_mark_stale(d);
}

/* The new incarnation: grant table, channels, memory at the same address
 * (gnttab_resume, xen_irq_resume). */
static int resume_hypervisor(struct gr_rt *rt, const struct pv_resume_info *info, struct gr_hvctx **old)
{
	struct gr_hvctx *c = gr_hvctx_open(info->hypervisor_path);
	int r;

	if (!c)
		return -errno;
	r = gr_memory_map(rt, c);
	if (r < 0) {
		gr_hvctx_close(c);
		return r;
	}
	gr_bus_foreach(rt, mark_stale, NULL);
	*old = rt->hvc;
	rt->hvc = c;
	pv_info("xen: resumed as domain %u on %s (grant table and channels re-initialised)",
		c->domid, c->path);
	return 0;
}

/* The connections to the old host's xenstored are closed a little after
 * the devices are on their way (closing costs time the blackout need not
 * pay), or when the bus stops. */
static void close_old_xs(struct gr_rt *rt)
{
	if (rt->old_xs_timer > 0)
		pv_loop_cancel_timer(rt->loop, rt->old_xs_timer);
	rt->old_xs_timer = 0;
	if (rt->old_xs)
		xs_close(rt->old_xs);
	xsc_close(rt->old_xsc);
	rt->old_xs = NULL;
	rt->old_xsc = NULL;
}

static int bus_watches(struct gr_rt *rt);

/* What the resume left for later: the bus watches (their registration and
 * first firings cost round trips while the devices reconnect; registering
 * them a few ms late loses nothing, since a watch fires once at once), and
 * the old connections. */
static void after_resume(struct pv_loop *loop, void *arg)
{
	struct gr_rt *rt = arg;
	int r;

	(void)loop;
	rt->old_xs_timer = 0;
	if (rt->xs && (r = bus_watches(rt)) < 0)
		pv_err("xenstore at %s: %s: the guest cannot reach its devices", rt->xs_path, strerror(-r));
	close_old_xs(rt);
}

/* xs_resume on the new host, then xenbus_dev_resume for every device. */
static void resume_devices(struct gr_rt *rt, const char *xs_path)
{
	int r;

	close_old_xs(rt);   /* of an earlier move, if still there */
	rt->old_xs = rt->xs;   /* its loop fd went at suspend */
	rt->old_xsc = rt->xsc;
	rt->xs = NULL;
	rt->xsc = NULL;
	r = xs_connect(rt, xs_path);
	if (r < 0) {
		pv_err("xenstore at %s: %s: the guest cannot reach its devices", xs_path, strerror(-r));
		close_old_xs(rt);
		return;
	}
	for (struct gr_dev *g = rt->devs; g; g = g->next) {
		struct nf_dev *d = g->nf;
		char otherend[128];
		uint32_t id;

		g->watch[0] = '\0';   /* went with the old handle */
		r = read_otherend(rt, d->nodename, otherend, sizeof(otherend), &id);
		if (r < 0) {
			pv_err("%s: other end after resume: %s", d->nodename, strerror(-r));
			nf_mark_broken(d, "backend details missing after resume");
			continue;
		}
		pthread_mutex_lock(&d->lock);
		pv_strlcpy(d->otherend, otherend, sizeof(d->otherend));
		d->otherend_id = id;
		d->state = XenbusStateInitialising;   /* in memory only */
		pthread_mutex_unlock(&d->lock);
		nf_resume(d);
		watch_otherend(g);
		arm_connect_timer(g);
	}
	rt->old_xs_timer = pv_loop_add_timer(rt->loop, 10000000, after_resume, rt);
	if (rt->old_xs_timer < 0) {
		rt->old_xs_timer = 0;
		after_resume(rt->loop, rt);
	}
}

/* do_suspend: freeze, suspend xenstore, the suspend call, resume. */
static void do_suspend(struct gr_rt *rt)
{
	struct pv_resume_info info;
	struct gr_trace_rec rec;
	struct gr_hvctx *old = NULL;
	char xs_path[256];
	int r;

	gr_trace_rec_init(&rec, GR_EV_SUSPEND, NULL, NULL);
	gr_trace_emit(rt->trace, &rec);
	atomic_fetch_add(&rt->suspends, 1);
	pv_info("Freezing the data threads; suspending xenstore...");
	gr_freeze(rt);
	/* xs_suspend: no xenstore traffic until resumed. */
	pv_loop_del_fd(rt->loop, xs_fileno(rt->xs));
	rt->xs_suspended = true;

	memset(&info, 0, sizeof(info));
	r = pv_hv_suspend(rt->hvc->hv, &info);
	if (r != 0) {
		/* Cancelled (or failed): xs_suspend_cancel, xenbus_dev_cancel
		 * does nothing, thaw. */
		if (r < 0)
			pv_err("suspend call failed: %s; carrying on", strerror(-r));
		else
			atomic_fetch_add(&rt->suspends_cancelled, 1);
		gr_thaw(rt);
		rt->xs_suspended = false;
		pv_loop_add_fd(rt->loop, xs_fileno(rt->xs), EPOLLIN, on_xs, rt);
		pv_info("suspend cancelled: resuming where we were");
		return;
	}
	atomic_fetch_add(&rt->moves, 1);
	if (parse_start_info(info.start_info, "xenstore", xs_path, sizeof(xs_path)) < 0) {
		pv_err("start_info has no xenstore=PATH: \"%s\"", info.start_info);
		xs_path[0] = '\0';
	}
	r = resume_hypervisor(rt, &info, &old);
	/* The data threads run again (softirqs), concurrently with the
	 * device resume below, as in Linux. */
	gr_thaw(rt);
	if (r < 0) {
		pv_err("cannot resume on %s: %s", info.hypervisor_path, strerror(-r));
		return;
	}
	if (xs_path[0])
		resume_devices(rt, xs_path);
	gr_hvctx_close(old);
	pv_info("Restarting tasks ... done (domain %u)", rt->hvc->domid);
}

/* ---- bus start / stop ----------------------------------------------------------------- */

int gr_bus_start(struct gr_rt *rt)
{
	int r = xs_connect(rt, rt->o.xenstore_path);

	if (r < 0) {
		pv_err("xenstore at %s: %s", rt->o.xenstore_path, strerror(-r));
		return r;
	}
	r = bus_watches(rt);
	if (r < 0)
		pv_err("xenstore watches: %s", strerror(-r));
	return r;
}

void gr_bus_stop(struct gr_rt *rt)
{
	close_old_xs(rt);
	rt->stopping = true;
	while (rt->devs)
		remove_device(rt, rt->devs);
	xs_disconnect(rt);
}

void gr_bus_link_changed(struct gr_rt *rt, int ifindex, bool up, enum gr_how how)
{
	for (struct gr_dev *g = rt->devs; g; g = g->next) {
		struct nf_dev *d = g->nf;
		if (!d->registered || d->tap.ifindex != ifindex)
			continue;
		if (up)
			nf_open(d, how);
		else
			nf_close(d, how);
	}
}
