/*
 * Xenbus backend for vifs over libxenstore (see backend.h). Function names
 * follow Linux's drivers/net/xen-netback/xenbus.c and drivers/xen/xenbus so
 * the two can be read side by side: probe, frontend_changed,
 * set_backend_state, backend_switch_state, connect, connect_data_rings,
 * vif_flags (read_xenbus_vif_flags), hotplug_status_changed, dev_fatal, remove.
 *
 * Where pvnet differs from Linux (docs/netback.md has the list): pvnet is its
 * own hotplug script (it creates the TAP, enslaves it and writes
 * hotplug-status = connected right after InitWait, where Linux's udev runs
 * vif-bridge); after a failed connect the backend stays Closing instead of
 * writing Connected over the error; a frontend state Linux answers with
 * xenbus_dev_fatal also closes the connection; `script` is not required.
 */
#include "netback/backend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <xenstore.h>

#include "common/log.h"
#include "common/util.h"
#include "hypervisor/hv.h"
#include "netback/keys.h"
#include "netback/xenbus.h"
#include "xsclient/xsc.h"

#define NB_XS_VALUE_MAX 1024u  /* longest value we accept from xenstore */

struct nb_dev {
	struct nb_daemon *d;
	struct nb_dev *next;
	uint32_t domid, devid;
	char be[128];        /* backend directory */
	char nodename[64];   /* "backend/vif/D/N", as Linux's dev->nodename */
	char fe[NB_XS_VALUE_MAX + 1];
	uint32_t fe_domid;
	char bridge[16];
	unsigned mtu;
	enum xenbus_state state;     /* be->state: where the state machine is */
	enum xenbus_state xs_state;  /* dev->state: what the state node says */
	enum xenbus_state fe_state;
	bool probed;         /* else: probe failed, only removal matters */
	bool gone;           /* the frontend domain was destroyed or moved away */
	bool hotplug_watch, fe_watch, mc_watch, rate_watch;
	char tok_fe[40], tok_hp[40], tok_mc[40], tok_rate[40];
	struct nb_vif *vif;
};

struct nb_daemon {
	struct nb_backend_opts o;
	struct pv_loop *loop;
	struct xs_handle *xs;    /* watches, probe, the rest */
	struct xsc *xsc;         /* pipelined batches: connect's reads, state switches */
	struct pv_hv *hv;
	char home[64];       /* /local/domain/0 */
	char root[96];       /* <home>/backend/vif */
	char hv_path[256];
	struct nb_own_mem own;   /* dom0 memory for grant copies (base NULL: none) */
	struct nb_dev *devs;
	bool failed;
};

static void set_backend_state(struct nb_dev *dev, enum xenbus_state target);

/* ---- xenstore helpers ---------------------------------------------------- */

/* Read dir/key into a fresh NUL-terminated string; NULL with errno if
 * absent or longer than NB_XS_VALUE_MAX. */
static char *xs_get(struct nb_daemon *d, const char *dir, const char *key)
{
	char path[1200];
	unsigned len;
	char *v;

	if (key)
		snprintf(path, sizeof(path), "%s/%s", dir, key);
	else
		pv_strlcpy(path, dir, sizeof(path));
	v = xs_read(d->xs, XBT_NULL, path, &len);
	if (v && len > NB_XS_VALUE_MAX) {
		free(v);
		errno = E2BIG;
		return NULL;
	}
	return v;
}

static bool xs_exists(struct nb_daemon *d, const char *path)
{
	char *v = xs_get(d, path, NULL);

	free(v);
	return v != NULL || errno == E2BIG;
}

static int xs_put(struct nb_daemon *d, xs_transaction_t t, const char *dir, const char *key, const char *val)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xs_write(d->xs, t, path, val, (unsigned)strlen(val)) ? 0 : -errno;
}

static unsigned read_unsigned(struct nb_daemon *d, const char *dir, const char *key, unsigned dflt)
{
	char *v = xs_get(d, dir, key);
	unsigned r = nb_read_unsigned(v, dflt);

	free(v);
	return r;
}

static bool watch(struct nb_daemon *d, const char *path, const char *token)
{
	if (xs_watch(d->xs, path, token))
		return true;
	pv_warn("watching %s: %s", path, strerror(errno));
	return false;
}

static void unwatch(struct nb_daemon *d, const char *dir, const char *key, const char *token, bool *armed)
{
	char path[1200];

	if (!*armed)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, key);
	(void)xs_unwatch(d->xs, path, token);
	*armed = false;
}

/* ---- xenbus_switch_state / xenbus_dev_error ------------------------------ */

/* Write `state` unless it is already there; never resurrect a removed
 * directory (the state node must exist), as __xenbus_switch_state. */
static void xenbus_switch_state(struct nb_dev *dev, enum xenbus_state state)
{
	char path[160], val[8];
	struct xsc_op ops[2];
	int r;

	if (state == dev->xs_state)
		return;
	snprintf(path, sizeof(path), "%s/state", dev->be);
	snprintf(val, sizeof(val), "%d", state);
	/* READ then WRITE in one transaction: a missing node fails the READ,
	 * which aborts the transaction, so nothing is resurrected. */
	memset(ops, 0, sizeof(ops));
	ops[0] = (struct xsc_op){ .type = XS_READ, .path = path };
	ops[1] = (struct xsc_op){ .type = XS_WRITE, .path = path, .value = val, .len = (unsigned)strlen(val) };
	r = xsc_transaction(dev->d->xsc, ops, 2, 100);
	xsc_ops_free(ops, 2);
	if (r == 0) {
		dev->xs_state = state;
		pv_info("%s: state %s", dev->be, nb_xb_state_name(state));
	} else if (r != -ENOENT) {
		pv_warn("%s: writing state %d: %s", dev->be, state, strerror(-r));
	}
}

/* xenbus_dev_error: "<-err> <message>" into error/<nodename>/error. */
__attribute__((format(printf, 3, 4)))
static void dev_error(struct nb_dev *dev, int err, const char *fmt, ...)
{
	char msg[512], path[200];
	int n;
	va_list ap;

	n = snprintf(msg, sizeof(msg), "%i ", -err);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	pv_err("%s: %s", dev->be, msg);
	snprintf(path, sizeof(path), "%s/error/%s/error", dev->d->home, dev->nodename);
	if (!xs_write(dev->d->xs, XBT_NULL, path, msg, (unsigned)strlen(msg)))
		pv_warn("%s: writing %s: %s", dev->be, path, strerror(errno));
}

/* ---- state machine ------------------------------------------------------- */

static void backend_switch_state(struct nb_dev *dev, enum xenbus_state state)
{
	dev->state = state;
	/* Waiting for the hotplug script: the write is deferred. */
	if (!dev->hotplug_watch)
		xenbus_switch_state(dev, state);
}

static void hotplug_status_changed(struct nb_dev *dev)
{
	char *v;

	if (!dev->hotplug_watch)
		return;
	v = xs_get(dev->d, dev->be, "hotplug-status");
	if (v && strcmp(v, "connected") == 0) {
		/* Complete the pending state change; the watch has served. */
		unwatch(dev->d, dev->be, "hotplug-status", dev->tok_hp, &dev->hotplug_watch);
		xenbus_switch_state(dev, dev->state);
	}
	free(v);
}

/* `rate` (absent: unlimited), as xen_net_read_rate. */
static void parse_rate(struct nb_dev *dev, const char *v, uint64_t *bytes, uint64_t *usec)
{
	*bytes = UINT64_MAX;
	*usec = 0;
	if (v && nb_parse_rate(v, bytes, usec) < 0) {
		pv_warn("%s: Failed to parse network rate limit. Traffic unlimited.", dev->be);
		*bytes = UINT64_MAX;
		*usec = 0;
	}
}

static void read_rate(struct nb_dev *dev, uint64_t *bytes, uint64_t *usec)
{
	char *v = xs_get(dev->d, dev->be, "rate");

	parse_rate(dev, v, bytes, usec);
	free(v);
}

/* ---- connect's reads: two pipelined batches ------------------------------ */

#define NB_BATCH_MAX (16 + 5 * NB_MAX_QUEUES_LIMIT)

struct batch {
	unsigned n;
	struct xsc_op op[NB_BATCH_MAX];
	char path[NB_BATCH_MAX][NB_XS_VALUE_MAX + 64];
};

static unsigned batch_add(struct batch *b, const char *dir, const char *key)
{
	unsigned i = b->n++;

	snprintf(b->path[i], sizeof(b->path[i]), "%s/%s", dir, key);
	b->op[i] = (struct xsc_op){ .type = XS_READ, .path = b->path[i] };
	return i;
}

/* The value read at index i (NULL if absent or too long). */
static const char *batch_val(const struct batch *b, unsigned i)
{
	if (b->op[i].err || !b->op[i].result || b->op[i].rlen > NB_XS_VALUE_MAX)
		return NULL;
	return b->op[i].result;
}

static int batch_run(struct nb_daemon *d, struct batch *b)
{
	return xsc_batch(d->xsc, 0, b->op, b->n);
}

static void batch_reset(struct batch *b)
{
	xsc_ops_free(b->op, b->n);
	b->n = 0;
}

static const char *const fe_flag_keys[] = {
	"request-rx-copy", "feature-rx-notify", "feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6",
	"feature-no-csum-offload", "feature-ipv6-csum-offload", "request-multicast-control",
};

/* read_xenbus_vif_flags, from batch values v[] in fe_flag_keys' order. */
static void vif_flags(struct nb_dev *dev, const char *const *v, struct nb_fe_flags *f)
{
	memset(f, 0, sizeof(*f));
	f->rx_copy = nb_read_unsigned(v[0], 0) != 0;
	/* Linux ignores this error (connect goes on); so do we, loudly. */
	if (!f->rx_copy)
		pv_warn("%s: frontend does not request rx-copy (the only receive mode)", dev->be);
	f->rx_notify = nb_read_unsigned(v[1], 0) != 0;
	f->sg = nb_read_unsigned(v[2], 0) != 0;
	f->gso_tcpv4 = nb_read_unsigned(v[3], 0) != 0;
	f->gso_tcpv6 = nb_read_unsigned(v[4], 0) != 0;
	f->no_csum_offload = nb_read_unsigned(v[5], 0) != 0;
	f->ipv6_csum = nb_read_unsigned(v[6], 0) != 0;
	f->mcast_control = nb_read_unsigned(v[7], 0) != 0;
}

/* A ring ref or port: absent -ENOENT, not a number -ERANGE (xenbus_scanf). */
static int parse_u32(const char *v, uint32_t *out)
{
	uint64_t x;

	if (!v)
		return -ENOENT;
	if (nb_parse_strict(v, UINT32_MAX, &x) < 0)
		return -ERANGE;
	*out = (uint32_t)x;
	return 0;
}

/* The ring keys of queue q: one queue uses the flat keys, several queue-N/. */
static void queue_dir(const struct nb_dev *dev, unsigned q, unsigned nqueues, char *dir, size_t len)
{
	if (nqueues == 1)
		pv_strlcpy(dir, dev->fe, len);
	else
		snprintf(dir, len, "%s/queue-%u", dev->fe, q);
}

/* connect_data_rings: from the 5 values at b[k..k+5) (tx-ring-ref,
 * rx-ring-ref, event-channel-tx, event-channel-rx, event-channel). */
static int connect_data_rings(struct nb_dev *dev, unsigned q, unsigned nqueues, const struct batch *b,
			      unsigned k, struct nb_queue_cfg *cfg)
{
	char dir[NB_XS_VALUE_MAX + 32];
	uint32_t tx, rx;
	int r;

	queue_dir(dev, q, nqueues, dir, sizeof(dir));
	if ((r = parse_u32(batch_val(b, k), &cfg->tx_ring_ref)) < 0 ||
	    (r = parse_u32(batch_val(b, k + 1), &cfg->rx_ring_ref)) < 0) {
		dev_error(dev, r, "reading %s/ring-ref", dir);
		return r;
	}
	/* Split event channels first, then one shared channel. */
	if (parse_u32(batch_val(b, k + 2), &tx) == 0 && parse_u32(batch_val(b, k + 3), &rx) == 0) {
		cfg->tx_evtchn = tx;
		cfg->rx_evtchn = rx;
	} else if ((r = parse_u32(batch_val(b, k + 4), &tx)) == 0) {
		cfg->tx_evtchn = cfg->rx_evtchn = tx;
	} else {
		dev_error(dev, r, "reading %s/event-channel(-tx/rx)", dir);
		return r;
	}
	return 0;
}

static void register_watchers(struct nb_dev *dev)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s/rate", dev->be);
	dev->rate_watch = watch(dev->d, path, dev->tok_rate);
	snprintf(path, sizeof(path), "%s/request-multicast-control", dev->fe);
	dev->mc_watch = watch(dev->d, path, dev->tok_mc);
}

static void unregister_watchers(struct nb_dev *dev)
{
	unwatch(dev->d, dev->fe, "request-multicast-control", dev->tok_mc, &dev->mc_watch);
	unwatch(dev->d, dev->be, "rate", dev->tok_rate, &dev->rate_watch);
}

/* Linux backend_connect() -> connect(): 0, or -errno after writing the
 * error node. */
static int backend_connect(struct nb_dev *dev)
{
	struct nb_daemon *d = dev->d;
	struct nb_queue_cfg cfgs[NB_MAX_QUEUES_LIMIT];
	struct nb_fe_flags flags;
	struct nb_vif_caps caps;
	uint64_t credit_bytes, credit_usec;
	const char *fv[PV_ARRAY_SIZE(fe_flag_keys)];
	unsigned requested, i_nq, i_mac, i_rate, i_hp, i_ctrl, i_flags;
	struct batch *b = calloc(1, sizeof(*b));
	bool hotplug_done;
	uint8_t mac[6];
	char msg[192];
	int r;

	if (!b) {
		dev_error(dev, -ENOMEM, "allocating");
		return -ENOMEM;
	}
	/* Everything connect() reads but the ring keys, in one round trip
	 * (the migration blackout counts every round trip). */
	i_nq = batch_add(b, dev->fe, "multi-queue-num-queues");
	i_mac = batch_add(b, dev->be, "mac");
	i_rate = batch_add(b, dev->be, "rate");
	i_hp = batch_add(b, dev->be, "hotplug-status");
	i_ctrl = batch_add(b, dev->fe, "ctrl-ring-ref");
	batch_add(b, dev->fe, "event-channel-ctrl");
	i_flags = b->n;
	for (size_t k = 0; k < PV_ARRAY_SIZE(fe_flag_keys); k++)
		batch_add(b, dev->fe, fe_flag_keys[k]);
	if ((r = batch_run(d, b)) < 0) {
		dev_error(dev, r, "reading %s", dev->fe);
		goto out;
	}
	requested = nb_read_unsigned(batch_val(b, i_nq), 1);
	if (nb_check_num_queues(requested, d->o.max_queues, msg, sizeof(msg)) < 0) {
		dev_error(dev, r = -EINVAL, "%s", msg);
		goto out;
	}
	if (!batch_val(b, i_mac) || nb_parse_mac(batch_val(b, i_mac), mac) < 0) {
		dev_error(dev, r = -ENOENT, "parsing %s/mac", dev->be);
		goto out;
	}
	parse_rate(dev, batch_val(b, i_rate), &credit_bytes, &credit_usec);
	hotplug_done = batch_val(b, i_hp) && strcmp(batch_val(b, i_hp), "connected") == 0;
	for (size_t k = 0; k < PV_ARRAY_SIZE(fe_flag_keys); k++)
		fv[k] = batch_val(b, i_flags + (unsigned)k);
	vif_flags(dev, fv, &flags);
	nb_vif_caps(&flags, dev->mtu, &caps);
	if (flags.rx_notify) {
		caps.drain_ms = d->o.drain_ms;
		caps.stall_ms = d->o.stall_ms;
	}
	/* connect_ctrl_ring: no (readable) ctrl-ring-ref, no control ring. */
	memset(cfgs, 0, sizeof(cfgs));
	if (parse_u32(batch_val(b, i_ctrl), &cfgs[0].ctrl_ring_ref) == 0) {
		if ((r = parse_u32(batch_val(b, i_ctrl + 1), &cfgs[0].ctrl_evtchn)) < 0) {
			dev_error(dev, r, "reading %s/event-channel-ctrl", dev->fe);
			goto out;
		}
		cfgs[0].ctrl = true;
	}

	/* The ring keys of every queue: the second round trip. */
	batch_reset(b);
	for (unsigned q = 0; q < requested; q++) {
		char dir[NB_XS_VALUE_MAX + 32];

		queue_dir(dev, q, requested, dir, sizeof(dir));
		batch_add(b, dir, "tx-ring-ref");
		batch_add(b, dir, "rx-ring-ref");
		batch_add(b, dir, "event-channel-tx");
		batch_add(b, dir, "event-channel-rx");
		batch_add(b, dir, "event-channel");
	}
	if ((r = batch_run(d, b)) < 0) {
		dev_error(dev, r, "reading %s", dev->fe);
		goto out;
	}
	for (unsigned q = 0; q < requested; q++) {
		cfgs[q].domid = dev->fe_domid;
		cfgs[q].nqueues = requested;
		cfgs[q].fatal_slots = d->o.fatal_slots;
		cfgs[q].hv_path = d->hv_path;
		cfgs[q].own = d->own.pa ? &d->own : NULL;
		cfgs[q].credit_bytes = credit_bytes;
		cfgs[q].credit_usec = credit_usec;
		cfgs[q].affinity = !d->o.no_affinity;
		cfgs[q].hv_copies = d->o.hv_copies;
		if ((r = connect_data_rings(dev, q, requested, b, 5 * q, &cfgs[q])) < 0)
			goto out;
	}
	r = nb_vif_connect(dev->vif, requested, cfgs, &caps, msg, sizeof(msg));
	if (r < 0) {
		dev_error(dev, r, "%s", msg);
		goto out;
	}
	unregister_watchers(dev);
	register_watchers(dev);
	nb_vif_set_mcast_control(dev->vif, flags.mcast_control);
	pv_info("%s: connected %s: %u queue(s), %s event channels, sg %d gso %d/%d csum %d/%d rx-notify %d%s%s",
		dev->be, nb_vif_name(dev->vif), requested,
		cfgs[0].tx_evtchn == cfgs[0].rx_evtchn ? "shared" : "split", flags.sg,
		caps.rx.gso_tcpv4, caps.rx.gso_tcpv6, caps.rx.csum_v4, caps.rx.csum_v6, flags.rx_notify,
		credit_usec ? " rate-limited" : "", cfgs[0].ctrl ? " control ring" : "");

	/* Connected is written only once hotplug-status reads "connected":
	 * already so (read above), or when the watch sees it (Linux arms the
	 * watch, whose first firing finds the value already there). */
	unwatch(d, dev->be, "hotplug-status", dev->tok_hp, &dev->hotplug_watch);
	if (!hotplug_done) {
		char path[200];

		snprintf(path, sizeof(path), "%s/hotplug-status", dev->be);
		dev->hotplug_watch = watch(d, path, dev->tok_hp);
	}
out:
	batch_reset(b);
	free(b);
	return r;
}

static void disconnect(struct nb_dev *dev)
{
	unregister_watchers(dev);
	if (dev->vif) {
		nb_vif_disconnect(dev->vif);
		pv_info("%s: disconnected %s", dev->be, nb_vif_name(dev->vif));
	}
}

/* Linux set_backend_state(): walk the shortest legal path. A failed connect
 * leaves the backend in Closing (Linux would write Connected after it). */
static void set_backend_state(struct nb_dev *dev, enum xenbus_state target)
{
	while (dev->state != target) {
		struct nb_xb_step st;

		if (nb_xb_step(dev->state, target, &st) < 0) {
			pv_err("%s: no transition %s -> %s", dev->be, nb_xb_state_name(dev->state),
			       nb_xb_state_name(target));
			return;
		}
		if (st.action == NB_XB_CONNECT && (!dev->vif || backend_connect(dev) < 0)) {
			target = XenbusStateClosing;
			continue;
		}
		if (st.action == NB_XB_DISCONNECT)
			disconnect(dev);
		backend_switch_state(dev, st.next);
	}
}

/* xenbus_dev_fatal(): the error node, then Closing. */
__attribute__((format(printf, 3, 4)))
static void dev_fatal(struct nb_dev *dev, int err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dev_error(dev, err, "%s", msg);
	if (dev->probed)
		set_backend_state(dev, XenbusStateClosing);
	else
		xenbus_switch_state(dev, XenbusStateClosing);
}

/* ---- device lifecycle ---------------------------------------------------- */

static struct nb_dev *find_dev(struct nb_daemon *d, uint32_t domid, uint32_t devid)
{
	for (struct nb_dev *dev = d->devs; dev; dev = dev->next)
		if (dev->domid == domid && dev->devid == devid)
			return dev;
	return NULL;
}

static void on_vif_event(struct pv_loop *loop, int fd, uint32_t events, void *arg);

static void domain_gone(struct nb_dev *dev)
{
	if (dev->gone)
		return;
	dev->gone = true;
	pv_info("%s: frontend domain %u is gone", dev->be, dev->fe_domid);
	set_backend_state(dev, XenbusStateClosed);
}

/* netback_remove(). */
static void remove_dev(struct nb_dev *dev)
{
	struct nb_daemon *d = dev->d;
	struct nb_dev **pp;

	if (dev->probed)
		set_backend_state(dev, XenbusStateClosed);
	unwatch(d, dev->be, "hotplug-status", dev->tok_hp, &dev->hotplug_watch);
	unwatch(d, dev->fe, "state", dev->tok_fe, &dev->fe_watch);
	unregister_watchers(dev);
	if (dev->vif) {
		char path[200];

		(void)pv_loop_del_fd(d->loop, nb_vif_event_fd(dev->vif));
		nb_vif_destroy(dev->vif);
		dev->vif = NULL;
		/* The node lives as long as the vif (never resurrect the dir). */
		snprintf(path, sizeof(path), "%s/hotplug-status", dev->be);
		if (xs_exists(d, dev->be))
			(void)xs_rm(d->xs, XBT_NULL, path);
	}
	pv_info("%s: removed", dev->be);
	for (pp = &d->devs; *pp; pp = &(*pp)->next) {
		if (*pp == dev) {
			*pp = dev->next;
			break;
		}
	}
	free(dev);
}

/* The otherend details (xenbus_read_otherend_details), copied then checked. */
static int read_frontend(struct nb_dev *dev)
{
	struct nb_daemon *d = dev->d;
	char *id = xs_get(d, dev->be, "frontend-id"), *path = xs_get(d, dev->be, "frontend");
	uint64_t fe_domid;
	int r = 0;

	if (!id || !path) {
		dev_fatal(dev, -ENOENT, "reading other end details from %s", dev->nodename);
		r = -ENOENT;
	} else if (nb_parse_strict(id, DOMID_FIRST_RESERVED - 1, &fe_domid) < 0 || fe_domid != dev->domid) {
		dev_fatal(dev, -EINVAL, "frontend-id %s does not match %s", id, dev->nodename);
		r = -EINVAL;
	} else if (nb_check_xs_path(path) < 0 || !xs_exists(d, path)) {
		dev_fatal(dev, -ENOENT, "unable to read other end from %s.  missing or inaccessible.",
			  dev->nodename);
		r = -ENOENT;
	} else {
		pv_strlcpy(dev->fe, path, sizeof(dev->fe));
		dev->fe_domid = (uint32_t)fe_domid;
	}
	free(id);
	free(path);
	return r;
}

/* The vif-bridge part: TAP created by the caller; bridge, MTU, up, then
 * hotplug-status = connected (or error + hotplug-error). */
static void hotplug_online(struct nb_dev *dev)
{
	char err[160];

	if (nb_vif_plug(dev->vif, dev->bridge, dev->mtu, err, sizeof(err)) < 0) {
		pv_err("%s: hotplug: %s", dev->be, err);
		(void)xs_put(dev->d, XBT_NULL, dev->be, "hotplug-error", err);
		(void)xs_put(dev->d, XBT_NULL, dev->be, "hotplug-status", "error");
		return;
	}
	(void)xs_put(dev->d, XBT_NULL, dev->be, "hotplug-status", "connected");
}

static int write_features(struct nb_dev *dev)
{
	static const char *const keys[][2] = {
		{ "feature-sg", "1" },
		{ "feature-gso-tcpv4", "1" },
		{ "feature-gso-tcpv6", "1" },
		{ "feature-ipv6-csum-offload", "1" },
		{ "feature-rx-copy", "1" },
		{ "feature-rx-flip", "0" },
		{ "feature-multicast-control", "1" },
		{ "feature-dynamic-multicast-control", "1" },
	};
	struct nb_daemon *d = dev->d;
	char v[16];

	for (int tries = 0; tries < 100; tries++) {
		xs_transaction_t t = xs_transaction_start(d->xs);
		const char *what = NULL;
		int r = 0;

		if (t == XBT_NULL) {
			dev_fatal(dev, -errno, "starting transaction");
			return -1;
		}
		for (size_t i = 0; i < PV_ARRAY_SIZE(keys) && !what; i++)
			if ((r = xs_put(d, t, dev->be, keys[i][0], keys[i][1])) < 0)
				what = keys[i][0];
		if (what) {
			xs_transaction_end(d->xs, t, true);
			dev_fatal(dev, r, "writing %s", what);
			return -1;
		}
		if (xs_transaction_end(d->xs, t, false))
			break;
		if (errno != EAGAIN) {
			dev_fatal(dev, -errno, "completing transaction");
			return -1;
		}
	}
	/* Optional features, outside the transaction. */
	if (xs_put(d, XBT_NULL, dev->be, "feature-split-event-channels", "1") < 0)
		pv_debug("%s: Error writing feature-split-event-channels", dev->be);
	snprintf(v, sizeof(v), "%u", d->o.max_queues);
	if (xs_put(d, XBT_NULL, dev->be, "multi-queue-max-queues", v) < 0)
		pv_debug("%s: Error writing multi-queue-max-queues", dev->be);
	if (xs_put(d, XBT_NULL, dev->be, "feature-ctrl-ring", "1") < 0)
		pv_debug("%s: Error writing feature-ctrl-ring", dev->be);
	return 0;
}

static void read_plug_config(struct nb_dev *dev)
{
	char *br = xs_get(dev->d, dev->be, "bridge"), *mtu = xs_get(dev->d, dev->be, "mtu");
	uint64_t m;

	pv_strlcpy(dev->bridge, "xenbr0", sizeof(dev->bridge));
	if (br && nb_check_ifname(br) == 0)
		pv_strlcpy(dev->bridge, br, sizeof(dev->bridge));
	else if (br)
		pv_warn("%s: bad bridge name, using %s", dev->be, dev->bridge);
	dev->mtu = 1500;
	if (mtu && nb_parse_strict(mtu, NB_MTU_MAX, &m) == 0 && m >= NB_MTU_MIN)
		dev->mtu = (unsigned)m;
	else if (mtu)
		pv_warn("%s: bad mtu '%s', using 1500", dev->be, mtu);
	free(br);
	free(mtu);
}

/* netback_probe() for backend/vif/<domid>/<devid>. */
static void probe(struct nb_daemon *d, uint32_t domid, uint32_t devid)
{
	struct nb_dev *dev = calloc(1, sizeof(*dev));
	char err[200], *handle, path[1200];
	uint64_t h;

	if (!dev) {
		pv_err("probe vif %u/%u: out of memory", domid, devid);
		return;
	}
	dev->d = d;
	dev->domid = domid;
	dev->devid = devid;
	dev->state = dev->xs_state = dev->fe_state = XenbusStateInitialising;
	snprintf(dev->be, sizeof(dev->be), "%s/%u/%u", d->root, domid, devid);
	snprintf(dev->nodename, sizeof(dev->nodename), "backend/vif/%u/%u", domid, devid);
	snprintf(dev->tok_fe, sizeof(dev->tok_fe), "F/%u/%u", domid, devid);
	snprintf(dev->tok_hp, sizeof(dev->tok_hp), "H/%u/%u", domid, devid);
	snprintf(dev->tok_mc, sizeof(dev->tok_mc), "M/%u/%u", domid, devid);
	snprintf(dev->tok_rate, sizeof(dev->tok_rate), "R/%u/%u", domid, devid);
	dev->next = d->devs;
	d->devs = dev;
	pv_info("%s: probe", dev->be);

	if (read_frontend(dev) < 0 || write_features(dev) < 0)
		return;
	/* Linux 5.13 goes InitWait in probe, then reads what it needs to
	 * create the vif (backend_create_xenvif: `handle`). */
	dev->probed = true;
	backend_switch_state(dev, XenbusStateInitWait);
	handle = xs_get(d, dev->be, "handle");
	if (!handle || nb_parse_strict(handle, NB_DEVID_MAX, &h) < 0 || h != devid) {
		dev_fatal(dev, handle ? -EINVAL : -ENOENT, "reading handle");
		free(handle);
		return;
	}
	free(handle);
	read_plug_config(dev);

	/* backend_create_xenvif + the hotplug script. */
	dev->vif = nb_vif_create(dev->fe_domid, devid, d->o.max_queues, d->hv_path, err, sizeof(err));
	if (!dev->vif) {
		dev_fatal(dev, -errno, "creating interface: %s", err);
		return;
	}
	if (pv_loop_add_fd(d->loop, nb_vif_event_fd(dev->vif), EPOLLIN, on_vif_event, dev) < 0)
		pv_warn("%s: cannot watch the vif's events", dev->be);
	hotplug_online(dev);

	/* watch_otherend: fires once at once with the current state. */
	snprintf(path, sizeof(path), "%s/state", dev->fe);
	dev->fe_watch = watch(d, path, dev->tok_fe);
}

/* Linux frontend_changed(). */
static void frontend_changed(struct nb_dev *dev)
{
	enum xenbus_state target = XenbusStateUnknown;
	enum nb_xb_fe_action what;
	char *v = xs_get(dev->d, dev->fe, "state");
	int fe = nb_xb_parse_state(v);

	free(v);
	if (!dev->probed)
		return;
	if (fe != (int)dev->fe_state)
		pv_info("%s: frontend %s -> %s", dev->be, nb_xb_state_name(dev->fe_state), nb_xb_state_name(fe));
	dev->fe_state = (enum xenbus_state)fe;
	if (nb_xb_target(dev->fe_state, read_unsigned(dev->d, dev->be, "online", 0) != 0, &target, &what) < 0) {
		if (!dev->gone)
			dev_fatal(dev, -EINVAL, "saw state %d at frontend", fe);
		return;
	}
	if (dev->gone && what != NB_FE_REMOVE)
		return;
	switch (what) {
	case NB_FE_IGNORE:
		return;
	case NB_FE_RECONFIGURE:
		/* XDP headroom is not offered (no feature-xdp-headroom), but the
		 * handshake is answered as Linux does. */
		xenbus_switch_state(dev, XenbusStateReconfigured);
		return;
	case NB_FE_WALK:
		set_backend_state(dev, target);
		return;
	case NB_FE_REMOVE:
		set_backend_state(dev, XenbusStateClosed);
		remove_dev(dev);
		return;
	}
}

/* xenbus_dev_changed() for one device path. */
static void dev_changed(struct nb_daemon *d, uint32_t domid, uint32_t devid, bool below)
{
	struct nb_dev *dev = find_dev(d, domid, devid);
	char be[128];
	char *st;

	if (dev && below)
		return;  /* a key of a known device */
	snprintf(be, sizeof(be), "%s/%u/%u", d->root, domid, devid);
	if (!xs_exists(d, be)) {
		if (dev)
			remove_dev(dev);
		return;
	}
	if (dev)
		return;
	/* Only a device in Initialising is new (xenbus_probe_node). */
	st = xs_get(d, be, "state");
	if (nb_xb_parse_state(st) == XenbusStateInitialising)
		probe(d, domid, devid);
	free(st);
}

/* Re-read the whole backend/vif tree (start-up, or an ancestor changed). */
static void rescan(struct nb_daemon *d, const uint32_t *only_domid)
{
	unsigned ndom = 0;
	char **doms = xs_directory(d->xs, XBT_NULL, d->root, &ndom);

	/* Known devices that vanished. */
	for (struct nb_dev *dev = d->devs, *next; dev; dev = next) {
		next = dev->next;
		if ((!only_domid || dev->domid == *only_domid) && !xs_exists(d, dev->be))
			remove_dev(dev);
	}
	char prefix[128];

	snprintf(prefix, sizeof(prefix), "%s/", d->root);
	for (unsigned i = 0; doms && i < ndom; i++) {
		char path[200], **devs;
		unsigned ndev = 0;
		uint32_t domid, devid;

		snprintf(path, sizeof(path), "%s%s", prefix, doms[i]);
		if (nb_parse_backend_path(path, prefix, &domid, &devid) != 1 ||
		    (only_domid && domid != *only_domid))
			continue;
		devs = xs_directory(d->xs, XBT_NULL, path, &ndev);
		for (unsigned k = 0; devs && k < ndev; k++) {
			char dpath[240];

			snprintf(dpath, sizeof(dpath), "%s/%s", path, devs[k]);
			if (nb_parse_backend_path(dpath, prefix, &domid, &devid) == 2)
				dev_changed(d, domid, devid, false);
		}
		free(devs);
	}
	free(doms);
}

/* ---- event sources ------------------------------------------------------- */

static struct nb_dev *dev_by_token(struct nb_daemon *d, const char *token)
{
	unsigned domid, devid;
	char kind;

	if (sscanf(token, "%c/%u/%u", &kind, &domid, &devid) != 3)
		return NULL;
	return find_dev(d, domid, devid);
}

static void on_watch(struct nb_daemon *d, const char *path, const char *token)
{
	struct nb_dev *dev;
	char prefix[128];
	uint32_t domid, devid;
	int depth;

	if (strcmp(token, "B") == 0) {
		snprintf(prefix, sizeof(prefix), "%s/", d->root);
		depth = nb_parse_backend_path(path, prefix, &domid, &devid);
		if (depth >= 2)
			dev_changed(d, domid, devid, depth > 2);
		else if (depth == 1)
			rescan(d, &domid);
		else if (strncmp(path, d->root, strlen(d->root)) == 0 || strncmp(d->root, path, strlen(path)) == 0)
			rescan(d, NULL);
		return;
	}
	dev = dev_by_token(d, token);
	if (!dev)
		return;
	switch (token[0]) {
	case 'F':
		frontend_changed(dev);
		break;
	case 'H':
		hotplug_status_changed(dev);
		break;
	case 'M':
		if (dev->mc_watch && dev->vif)
			nb_vif_set_mcast_control(dev->vif,
						 read_unsigned(d, dev->fe, "request-multicast-control", 0) != 0);
		break;
	case 'R':
		if (dev->rate_watch && dev->vif) {
			uint64_t bytes, usec;

			read_rate(dev, &bytes, &usec);
			nb_vif_set_rate(dev->vif, bytes, usec);
		}
		break;
	}
}

static void on_xs(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_daemon *d = arg;
	char **vec;

	(void)fd; (void)events;
	while ((vec = xs_check_watch(d->xs)) != NULL) {
		on_watch(d, vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]);
		free(vec);
	}
	if (errno != EAGAIN) {
		pv_err("xenstore connection: %s", strerror(errno));
		d->failed = true;
		pv_loop_stop(loop);
	}
}

static void on_hv(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_daemon *d = arg;
	struct pv_notice n[16];
	int k;

	(void)loop; (void)fd; (void)events;
	while ((k = pv_hv_poll_notices(d->hv, n, PV_ARRAY_SIZE(n))) > 0) {
		for (int i = 0; i < k; i++) {
			if (n[i].type != PV_NOTICE_DOMAIN_GONE)
				continue;
			for (struct nb_dev *dev = d->devs; dev; dev = dev->next)
				if (dev->probed && dev->fe_domid == n[i].domid)
					domain_gone(dev);
		}
		if (k < (int)PV_ARRAY_SIZE(n))
			break;
	}
}

static void on_vif_event(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_dev *dev = arg;
	unsigned ev;

	(void)loop; (void)fd; (void)events;
	ev = nb_vif_take_events(dev->vif);
	if (ev & NB_VIF_EV_DOMAIN_GONE)
		domain_gone(dev);
}

/* ---- set-up -------------------------------------------------------------- */

struct nb_daemon *nb_backend_new(struct pv_loop *loop, const struct nb_backend_opts *o,
				 char *err, size_t errlen)
{
	struct nb_daemon *d = calloc(1, sizeof(*d));
	const char *hvp = o->hv_path ? o->hv_path : getenv(PV_HV_ENV);
	char *home;

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->o = *o;
	d->loop = loop;
	if (!hvp) {
		snprintf(err, errlen, "no hypervisor socket (--hypervisor or $%s)", PV_HV_ENV);
		errno = EINVAL;
		goto fail;
	}
	pv_strlcpy(d->hv_path, hvp, sizeof(d->hv_path));
	if (o->xs_path)
		setenv("XENSTORED_PATH", o->xs_path, 1);
	d->xs = xs_open(0);
	if (!d->xs) {
		snprintf(err, errlen, "connecting to xenstored: %s", strerror(errno));
		goto fail;
	}
	d->xsc = xsc_open(o->xs_path ? o->xs_path : getenv("XENSTORED_PATH"));
	if (!d->xsc) {
		snprintf(err, errlen, "connecting to xenstored (batches): %s", strerror(errno));
		goto fail;
	}
	d->hv = pv_hv_open(d->hv_path);
	if (!d->hv) {
		snprintf(err, errlen, "connecting to the hypervisor at %s: %s", d->hv_path, strerror(errno));
		goto fail;
	}
	/* dom0's I/O memory is where grant copies land (tx) and start (rx);
	 * without it every frontend page is mapped. */
	if (!o->map_grants) {
		d->own.base = pv_hv_map_own_memory(d->hv, NULL, &d->own.npages);
		if (d->own.base)
			d->own.pa = pv_pagealloc_new(d->own.base, d->own.npages, 0);
		if (!d->own.pa)
			pv_warn("no dom0 memory for grant copies (%s): frontend pages will be mapped",
				strerror(errno));
	}
	home = xs_get_domain_path(d->xs, pv_hv_domid(d->hv));
	if (!home) {
		snprintf(err, errlen, "reading our domain path: %s", strerror(errno));
		goto fail;
	}
	pv_strlcpy(d->home, home, sizeof(d->home));
	free(home);
	snprintf(d->root, sizeof(d->root), "%s/backend/vif", d->home);
	if (pv_loop_add_fd(loop, xs_fileno(d->xs), EPOLLIN, on_xs, d) < 0 ||
	    pv_loop_add_fd(loop, pv_hv_fd(d->hv), EPOLLIN, on_hv, d) < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		goto fail;
	}
	/* Fires once right away: the initial scan. */
	if (!xs_watch(d->xs, d->root, "B")) {
		snprintf(err, errlen, "watching %s: %s", d->root, strerror(errno));
		goto fail;
	}
	pv_info("serving %s (max %u queues per vif, fatal_skb_slots %u)", d->root, o->max_queues,
		o->fatal_slots);
	return d;
fail:
	nb_backend_free(d);
	return NULL;
}

void nb_backend_free(struct nb_daemon *d)
{
	if (!d)
		return;
	while (d->devs)
		remove_dev(d->devs);
	if (d->xs) {
		(void)pv_loop_del_fd(d->loop, xs_fileno(d->xs));
		xs_close(d->xs);
	}
	if (d->xsc)
		xsc_close(d->xsc);
	if (d->hv) {
		(void)pv_loop_del_fd(d->loop, pv_hv_fd(d->hv));
		pv_hv_close(d->hv);
	}
	pv_pagealloc_free(d->own.pa);
	free(d);
}

bool nb_backend_failed(const struct nb_daemon *d) { return d->failed; }

void nb_backend_foreach(struct nb_daemon *d, nb_dev_visit cb, void *arg)
{
	for (struct nb_dev *dev = d->devs; dev; dev = dev->next) {
		struct nb_dev_info info = {
			.backend = dev->be, .frontend = dev->fe, .domid = dev->domid, .devid = dev->devid,
			.state = dev->state, .frontend_state = dev->fe_state, .bridge = dev->bridge,
			.vif = dev->vif,
		};
		cb(arg, &info);
	}
}
