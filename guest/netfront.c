/*
 * Netfront's lifecycle, function by function after Linux xen-netfront
 * (reference/linux-netfront.md §1, §2, §5): probe, netback_changed,
 * xennet_connect/talk_to_netback, netfront_resume/xennet_disconnect_backend,
 * xennet_open/close, xennet_remove, plus the v5.15 detach/attach and the
 * race accounting of the v5.13 mode. No I/O here: everything outside the
 * device's memory goes through d->ops.
 */
#include "guest/netfront.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

static void tr(struct nf_dev *d, enum gr_ev ev, int queue, int state, int state2,
	       enum gr_how how, const char *text)
{
	struct gr_trace_rec r;

	if (!d->trace)
		return;
	gr_trace_rec_init(&r, ev, d->nodename, d->registered ? d->p.ifname : "");
	r.queue = queue;
	r.state = state;
	r.state2 = state2;
	r.how = how;
	if (text)
		pv_strlcpy(r.text, text, sizeof(r.text));
	gr_trace_emit(d->trace, &r);
}

static void tr_simple(struct nf_dev *d, enum gr_ev ev)
{
	tr(d, ev, -1, -1, -1, GR_HOW_UNKNOWN, NULL);
}

struct nf_dev *nf_dev_new(const char *nodename, unsigned handle, const struct nf_params *p,
			  const struct nf_ops *ops, void *env, struct gr_trace *trace)
{
	struct nf_dev *d;

	if (p->max_queues < 1 || p->max_queues > NF_MAX_QUEUES) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	pv_strlcpy(d->nodename, nodename, sizeof(d->nodename));
	d->handle = handle;
	d->p = *p;
	d->ops = ops;
	d->env = env;
	d->trace = trace;
	d->state = XenbusStateInitialising;
	d->backend_state = XenbusStateUnknown;
	d->num_txq = p->max_queues;
	d->tap.ifindex = 0;
	for (unsigned i = 0; i < NIF_TAP_MAX_QUEUES; i++)
		d->tap.fds[i] = -1;
	pthread_mutex_init(&d->lock, NULL);
	atomic_init(&d->present, true);
	for (unsigned i = 0; i < NF_MAX_QUEUES; i++) {
		pthread_mutex_init(&d->txq[i].xmit_lock, NULL);
		atomic_init(&d->txq[i].stopped, true); /* not started until open */
		d->queues[i].dev = d;
		d->queues[i].id = i;
		pthread_mutex_init(&d->queues[i].tx_lock, NULL);
		pthread_mutex_init(&d->queues[i].rx_lock, NULL);
		nf_txbook_init(&d->queues[i].txb);
	}
	return d;
}

void nf_txbuf_free_list(struct nf_txbuf *b)
{
	while (b) {
		struct nf_txbuf *n = b->next;
		free(b);
		b = n;
	}
}

void nf_dev_free(struct nf_dev *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < NF_MAX_QUEUES; i++) {
		nf_txbuf_free_list(d->queues[i].backlog);
		pthread_mutex_destroy(&d->queues[i].tx_lock);
		pthread_mutex_destroy(&d->queues[i].rx_lock);
		pthread_mutex_destroy(&d->txq[i].xmit_lock);
	}
	nf_txbuf_free_list(d->replay);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int nf_switch_state(struct nf_dev *d, int state)
{
	char v[8];
	int r;

	if (state == d->state)
		return 0;
	snprintf(v, sizeof(v), "%d", state);
	r = d->ops->write(d->env, d, "state", v);
	if (r < 0) {
		pv_warn("%s: writing state %s: %s", d->nodename, gr_xenbus_state_name(state), strerror(-r));
		return r;
	}
	pthread_mutex_lock(&d->lock);
	d->state = state;
	pthread_mutex_unlock(&d->lock);
	tr(d, GR_EV_SWITCH_STATE, -1, state, -1, GR_HOW_UNKNOWN, NULL);
	return 0;
}

void nf_mark_broken(struct nf_dev *d, const char *fmt, ...)
{
	char reason[sizeof(d->broken_reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&d->lock);
	if (atomic_load(&d->broken)) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	pv_strlcpy(d->broken_reason, reason, sizeof(d->broken_reason));
	atomic_store(&d->broken, true);
	pthread_mutex_unlock(&d->lock);
	tr(d, GR_EV_BROKEN, -1, -1, -1, GR_HOW_UNKNOWN, reason);
	pv_err("%s: %s: Disabled for further use", d->nodename, reason);
}

static void set_last_error(struct nf_dev *d, const char *msg)
{
	pthread_mutex_lock(&d->lock);
	pv_strlcpy(d->last_error, msg, sizeof(d->last_error));
	pthread_mutex_unlock(&d->lock);
}

/* ---- tx queue state (netif_tx_*_queue) ----------------------------------- */

static void txq_set(struct nf_dev *d, unsigned i, bool stopped, enum gr_ev ev)
{
	atomic_store(&d->txq[i].stopped, stopped);
	tr(d, ev, (int)i, -1, -1, GR_HOW_UNKNOWN, NULL);
	if (d->ops->kick)
		d->ops->kick(d->env, d, i);
}

/* netif_tx_start_all_queues / stop_all / wake_all: every num_tx_queues. */
static void txq_set_all(struct nf_dev *d, bool stopped, enum gr_ev ev)
{
	for (unsigned i = 0; i < d->num_txq; i++)
		txq_set(d, i, stopped, ev);
}

void nf_tx_lock_all(struct nf_dev *d)
{
	for (unsigned i = 0; i < d->num_txq; i++)
		pthread_mutex_lock(&d->txq[i].xmit_lock);
}

void nf_tx_unlock_all(struct nf_dev *d)
{
	for (unsigned i = d->num_txq; i-- > 0;)
		pthread_mutex_unlock(&d->txq[i].xmit_lock);
}

/* netif_device_detach, with every xmit lock held (v5.15 netfront_resume). */
static void device_detach(struct nf_dev *d)
{
	if (!atomic_exchange(&d->present, false))
		return;
	tr_simple(d, GR_EV_DEVICE_DETACH);
	if (atomic_load(&d->running))
		txq_set_all(d, true, GR_EV_TX_STOP_QUEUE);
}

/* netif_device_attach, with every xmit lock held (v5.15 xennet_connect). */
static void device_attach(struct nf_dev *d)
{
	if (atomic_exchange(&d->present, true))
		return;
	tr_simple(d, GR_EV_DEVICE_ATTACH);
	if (atomic_load(&d->running))
		txq_set_all(d, false, GR_EV_TX_WAKE_QUEUE);
}

/* ---- queues ---------------------------------------------------------------- */

struct replay_ctx {
	struct nf_dev *d;
	struct nf_queue *q;
	struct nf_txbuf **tail;
	unsigned n;
};

/* Copy one never-answered packet out of its tx pages (our own memory, which
 * survived the move) into the device's replay list. */
static void replay_one(void *arg, const uint16_t *ids, unsigned n, const struct nf_txinfo *first)
{
	struct replay_ctx *c = arg;
	struct nf_txbuf *b;
	uint32_t off = 0;

	if (first->pkt_len > XEN_NETIF_MAX_TX_SIZE)
		return;
	b = malloc(sizeof(*b) + first->pkt_len);
	if (!b) {
		atomic_fetch_add(&c->q->st.tx_dropped, 1);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		uint16_t len = c->q->txb.info[ids[i]].len;
		if (off + len > first->pkt_len)
			break;
		memcpy(b->data + off, c->q->tx_page[ids[i]], len);
		off += len;
	}
	if (off != first->pkt_len) {
		free(b);
		atomic_fetch_add(&c->q->st.tx_dropped, 1);
		return;
	}
	b->next = NULL;
	b->o = first->o;
	b->len = first->pkt_len;
	b->replay = true;
	b->announce = false;
	*c->tail = b;
	c->tail = &b->next;
	c->n++;
}

static void count_dropped(void *arg, const uint16_t *ids, unsigned n, const struct nf_txinfo *first)
{
	struct replay_ctx *c = arg;
	(void)ids; (void)n; (void)first;
	atomic_fetch_add(&c->q->st.tx_dropped, 1);
	c->n++;
}

/* Tear one queue down (xennet_disconnect_backend's per-queue part). With
 * `keep`, frames the backend never answered and the queue's backlog go to
 * the device's replay list (pvnet, fixed mode); otherwise they are dropped as
 * xennet_release_tx_bufs does. */
static void queue_down(struct nf_dev *d, struct nf_queue *q, bool keep)
{
	struct replay_ctx c = { .d = d, .q = q };
	struct nf_txbuf **tail = &d->replay;
	unsigned skipped;

	while (*tail)
		tail = &(*tail)->next;
	c.tail = tail;
	pthread_mutex_lock(&q->tx_lock);
	pthread_mutex_lock(&q->rx_lock);
	if (q->live) {
		q->live = false;
		skipped = nf_tx_pending_walk(&q->tx, &q->txb, keep ? replay_one : count_dropped, &c);
		atomic_fetch_add(&q->st.tx_dropped, skipped);
		if (keep && c.n)
			pv_info("%s: queue %u: %u unanswered tx frames kept for re-posting",
				d->nodename, q->id, c.n);
		d->ops->queue_teardown(d->env, q);
	}
	if (keep) {
		*c.tail = q->backlog;
	} else {
		for (struct nf_txbuf *b = q->backlog; b; b = b->next)
			atomic_fetch_add(&q->st.tx_dropped, 1);
		nf_txbuf_free_list(q->backlog);
	}
	q->backlog = q->backlog_tail = NULL;
	q->backlog_len = 0;
	pthread_mutex_unlock(&q->rx_lock);
	pthread_mutex_unlock(&q->tx_lock);
}

void nf_announce_release(struct nf_dev *d, const char *why)
{
	if (!atomic_exchange(&d->ann_gate, false))
		return;
	atomic_store(&d->ann_gate_ns, pv_now_ns() - atomic_load(&d->ann_shut_ns));
	if (why)
		pv_warn("%s: announcement gate opened: %s", d->nodename, why);
	if (d->ops->kick)
		for (unsigned i = 1; i < d->num_txq; i++)
			d->ops->kick(d->env, d, i);
}

/* xennet_disconnect_backend. */
static void disconnect_backend(struct nf_dev *d, bool keep_inflight)
{
	tr_simple(d, GR_EV_DISCONNECT_BACKEND);
	atomic_store(&d->ann_gate, false);
	atomic_store(&d->carrier, false);
	if (d->registered)
		d->ops->netdev_carrier(d->env, d, false);
	for (unsigned i = 0; i < NF_MAX_QUEUES; i++)
		queue_down(d, &d->queues[i], keep_inflight);
}

/* xennet_destroy_queues: the slots stay; their contents are reset. */
static void destroy_queues(struct nf_dev *d)
{
	for (unsigned i = 0; i < NF_MAX_QUEUES; i++)
		queue_down(d, &d->queues[i], false);
	pthread_mutex_lock(&d->lock);
	d->queues_created = false;
	pthread_mutex_unlock(&d->lock);
}

/* xennet_create_queues + setup_netfront for queue i. */
static int queue_up(struct nf_dev *d, struct nf_queue *q)
{
	int r;

	pthread_mutex_lock(&q->tx_lock);
	pthread_mutex_lock(&q->rx_lock);
	q->stale = false;
	q->gen++;
	nf_txbook_init(&q->txb);
	memset(q->ann_id, 0, sizeof(q->ann_id));
	q->ann_pending = 0;
	r = d->ops->queue_setup(d->env, q, d->feat.split_evtchn);
	if (r == 0)
		q->live = true;
	pthread_mutex_unlock(&q->rx_lock);
	pthread_mutex_unlock(&q->tx_lock);
	return r;
}

static int read_key(struct nf_dev *d, bool backend, const char *key, char *buf, size_t len)
{
	int r = d->ops->read(d->env, d, backend, key, buf, len);
	if (r < 0)
		buf[0] = '\0';
	return r;
}

enum { RK_RX_COPY, RK_SG, RK_GSO4, RK_GSO6, RK_IPV6_CSUM, RK_SPLIT, RK_XDP, RK_MAXQ,
       RK_TRUSTED, RK_MAC, RK_N };

/* Everything xennet_connect and talk_to_netback read, in one batch when the
 * environment can (every round trip is migration blackout); the values are
 * copied and parsed here. */
static void read_connect_keys(struct nf_dev *d, struct nf_rkey *k)
{
	static const char *const names[RK_N] = {
		[RK_RX_COPY] = "feature-rx-copy", [RK_SG] = "feature-sg",
		[RK_GSO4] = "feature-gso-tcpv4", [RK_GSO6] = "feature-gso-tcpv6",
		[RK_IPV6_CSUM] = "feature-ipv6-csum-offload",
		[RK_SPLIT] = "feature-split-event-channels", [RK_XDP] = "feature-xdp-headroom",
		[RK_MAXQ] = "multi-queue-max-queues", [RK_TRUSTED] = "trusted", [RK_MAC] = "mac",
	};

	for (unsigned i = 0; i < RK_N; i++) {
		k[i].backend = i != RK_TRUSTED && i != RK_MAC;
		k[i].key = names[i];
		k[i].buf[0] = '\0';
		k[i].r = -ENOENT;
	}
	if (d->ops->read_keys) {
		if (d->ops->read_keys(d->env, d, k, RK_N) < 0)
			for (unsigned i = 0; i < RK_N; i++)
				k[i].r = -EIO;
	} else {
		for (unsigned i = 0; i < RK_N; i++)
			k[i].r = read_key(d, k[i].backend, k[i].key, k[i].buf, sizeof(k[i].buf));
	}
	for (unsigned i = 0; i < RK_N; i++)
		if (k[i].r < 0)
			k[i].buf[0] = '\0';
}

static bool rk_flag(const struct nf_rkey *k, unsigned def)
{
	return nf_parse_unsigned(k->r < 0 ? NULL : k->buf, def) != 0;
}

static void read_features(struct nf_dev *d, const struct nf_rkey *k)
{
	struct nf_features f = { 0 };

	f.rx_copy = rk_flag(&k[RK_RX_COPY], 0);
	f.sg = rk_flag(&k[RK_SG], 0);
	f.gso_tcpv4 = rk_flag(&k[RK_GSO4], 0);
	f.gso_tcpv6 = rk_flag(&k[RK_GSO6], 0);
	f.ipv6_csum = rk_flag(&k[RK_IPV6_CSUM], 0);
	f.split_evtchn = rk_flag(&k[RK_SPLIT], 0);
	f.xdp_headroom = rk_flag(&k[RK_XDP], 0);
	f.trusted = rk_flag(&k[RK_TRUSTED], 1);
	f.have_max_queues = k[RK_MAXQ].r >= 0;
	f.backend_max_queues = nf_parse_unsigned(f.have_max_queues ? k[RK_MAXQ].buf : NULL, 1);
	pthread_mutex_lock(&d->lock);
	d->feat = f;
	pthread_mutex_unlock(&d->lock);
}

/* talk_to_netback. */
static int talk_to_netback(struct nf_dev *d, const struct nf_rkey *k)
{
	struct nf_kv kv[8 + NF_MAX_QUEUES * 4];
	char msg[96];
	unsigned n;
	int r, nkv;

	n = PV_MIN(d->feat.backend_max_queues, d->p.max_queues);
	if (k[RK_MAC].r < 0 || nf_parse_mac(k[RK_MAC].buf, d->mac) < 0) {
		snprintf(msg, sizeof(msg), "parsing %s/mac", d->nodename);
		d->ops->fatal(d->env, d, -EINVAL, msg);
		return -EINVAL;
	}
	if (d->feat.xdp_headroom) {
		/* No XDP in pvnet: headroom 0, written as Linux does (outside
		 * the transaction). */
		r = d->ops->write(d->env, d, "xdp-headroom", "0");
		if (r < 0) {
			d->ops->fatal(d->env, d, r, "writing xdp-headroom");
			return r;
		}
	}
	if (d->queues_created)
		destroy_queues(d);
	if (n == 0) {
		d->ops->fatal(d->env, d, -EINVAL, "backend offers 0 queues");
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		r = queue_up(d, &d->queues[i]);
		if (r < 0) {
			destroy_queues(d);
			snprintf(msg, sizeof(msg), "setting up queue %u", i);
			d->ops->fatal(d->env, d, r, msg);
			return r;
		}
	}
	pthread_mutex_lock(&d->lock);
	d->queues_created = true;
	pthread_mutex_unlock(&d->lock);
	atomic_store(&d->num_queues, n);

	nkv = nf_build_keys(d, n, kv, PV_ARRAY_SIZE(kv));
	r = nkv < 0 ? nkv : d->ops->write_txn(d->env, d, kv, (unsigned)nkv);
	if (r < 0) {
		d->ops->fatal(d->env, d, r, "writing the ring and event channel keys");
		disconnect_backend(d, false);
		destroy_queues(d);
		atomic_store(&d->num_queues, 0);
		return r;
	}
	pthread_mutex_lock(&d->lock);
	atomic_store(&d->broken, false);
	d->broken_reason[0] = '\0';
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Hand the frames kept by resume to the new queues' backlogs, ahead of
 * everything else (every xmit lock is held). */
static void replay_to_backlogs(struct nf_dev *d)
{
	unsigned n = atomic_load(&d->num_queues), i = 0;
	struct nf_txbuf *b = d->replay;

	d->replay = NULL;
	while (b) {
		struct nf_txbuf *next = b->next;
		struct nf_queue *q = &d->queues[i++ % n];

		pthread_mutex_lock(&q->tx_lock);
		b->next = NULL;
		if (q->backlog_tail)
			q->backlog_tail->next = b;
		else
			q->backlog = b;
		q->backlog_tail = b;
		q->backlog_len++;
		pthread_mutex_unlock(&q->tx_lock);
		b = next;
	}
}

/* pvnet, fixed mode, after a move: one announcement round goes at the head
 * of queue 0's backlog, ahead of the frames kept across the move, and the
 * gate holds the other queues until the backend has answered it, so the
 * destination bridge sees the guest's GARP/NA before any other frame of
 * its. (Linux announces only on backend Connected, after the queued frames:
 * docs/guest.md.) Every xmit lock is held. */
static void announce_ahead(struct nf_dev *d)
{
	struct nf_queue *q = &d->queues[0];
	struct nf_txbuf *list, *last;
	unsigned n = 1;

	if (!d->p.announce_first || !d->ops->announce_frames || !atomic_load(&d->running))
		return;
	list = d->ops->announce_frames(d->env, d);
	if (!list)
		return;
	for (last = list; last->next; last = last->next)
		n++;
	pthread_mutex_lock(&q->tx_lock);
	last->next = q->backlog;
	if (!q->backlog)
		q->backlog_tail = last;
	q->backlog = list;
	q->backlog_len += n;
	pthread_mutex_unlock(&q->tx_lock);
	atomic_store(&d->ann_shut_ns, pv_now_ns());
	if (atomic_load(&d->num_queues) > 1 || d->num_txq > 1)
		atomic_store(&d->ann_gate, true);
	pv_info("%s: %u announcement frames go ahead of the queued traffic", d->nodename, n);
}

int nf_connect(struct nf_dev *d)
{
	struct nf_rkey keys[RK_N];
	bool moved = d->moved;
	unsigned n;
	int r;

	tr_simple(d, GR_EV_CONNECT);
	atomic_fetch_add(&d->connects, 1);
	read_connect_keys(d, keys);
	read_features(d, keys);
	if (!d->feat.rx_copy) {
		set_last_error(d, "backend does not support copying receive path");
		pv_err("%s: backend does not support copying receive path", d->nodename);
		return -ENODEV;
	}
	r = talk_to_netback(d, keys);
	if (r < 0)
		return r;
	n = atomic_load(&d->num_queues);
	if (!d->registered) {
		r = d->ops->netdev_register(d->env, d, d->mac);
		if (r < 0) {
			d->ops->fatal(d->env, d, r, "registering the netdev");
			disconnect_backend(d, false);
			destroy_queues(d);
			return r;
		}
		pthread_mutex_lock(&d->lock);
		d->registered = true;
		pthread_mutex_unlock(&d->lock);
	}
	r = d->ops->netdev_update(d->env, d);
	if (r < 0)
		pv_warn("%s: updating netdev features: %s", d->nodename, strerror(-r));
	/* The queues exist again: the window of the v5.13 race ends here. */
	atomic_store(&d->resetting, false);

	nf_tx_lock_all(d);
	if (d->p.mode == NF_MODE_FIXED) {
		replay_to_backlogs(d);
		if (moved)
			announce_ahead(d);
		device_attach(d);
	}
	d->moved = false;
	atomic_store(&d->carrier, true);
	r = d->ops->netdev_set_queues(d->env, d, n);
	if (r < 0)
		pv_warn("%s: mirroring %u queues on the TAP: %s", d->nodename, n, strerror(-r));
	nf_tx_unlock_all(d);
	d->ops->netdev_carrier(d->env, d, true);
	for (unsigned i = 0; i < n; i++)
		d->ops->queue_start(d->env, &d->queues[i]);
	for (unsigned i = 0; i < d->num_txq; i++)
		if (d->ops->kick)
			d->ops->kick(d->env, d, i);
	return 0;
}

/* ---- xenbus callbacks -------------------------------------------------------- */

int nf_probe(struct nf_dev *d)
{
	tr_simple(d, GR_EV_PROBE);
	atomic_store(&d->carrier, false);
	d->probing = true;
	return 0;
}

static void notify_peers(struct nf_dev *d)
{
	char summary[GR_TRACE_TEXT] = "";

	if (d->registered && d->ops->notify_peers)
		d->ops->notify_peers(d->env, d, summary, sizeof(summary));
	tr(d, GR_EV_NOTIFY_PEERS, -1, -1, -1, GR_HOW_UNKNOWN, summary[0] ? summary : NULL);
}

void nf_backend_changed(struct nf_dev *d, int state)
{
	pthread_mutex_lock(&d->lock);
	d->backend_state = state;
	pthread_mutex_unlock(&d->lock);
	if (d->probing) {
		/* netfront_probe is still waiting (5 s rounds in Linux) for the
		 * backend to leave Closed/Unknown; its otherend watch is not
		 * registered yet, so nothing is traced. */
		if (state == XenbusStateClosed || state == XenbusStateUnknown)
			return;
		d->probing = false;
	}
	tr(d, GR_EV_BACKEND_CHANGED, -1, state, d->state, GR_HOW_UNKNOWN, NULL);
	switch (state) {
	case XenbusStateInitWait:
		d->backend_seen = true;
		if (d->state != XenbusStateInitialising)
			break;
		if (nf_connect(d) == 0)
			nf_switch_state(d, XenbusStateConnected);
		break;
	case XenbusStateConnected:
		d->backend_seen = true;
		notify_peers(d);
		break;
	case XenbusStateClosed:
		if (d->state == XenbusStateClosed)
			break;
		/* Missed the backend's Closing state: fall through. */
		/* fallthrough */
	case XenbusStateClosing:
		/* xenbus_frontend_closed */
		nf_switch_state(d, XenbusStateClosed);
		break;
	case XenbusStateUnknown:
		/* Linux ignores it; a backend that was there and vanished while
		 * we still count on it breaks the device (pvnet). */
		if (d->backend_seen && d->state != XenbusStateClosed)
			nf_mark_broken(d, "backend vanished (its state node is gone or reads Unknown)");
		break;
	default:
		break;
	}
}

int nf_resume(struct nf_dev *d)
{
	tr_simple(d, GR_EV_RESUME);
	atomic_fetch_add(&d->resumes, 1);
	d->moved = true;
	d->backend_seen = false;
	d->probing = false;
	if (d->p.mode == NF_MODE_FIXED) {
		nf_tx_lock_all(d);
		device_detach(d);
		nf_tx_unlock_all(d);
	}
	/* From here until the new queues exist, a transmit reaching a queue
	 * is the v5.13 race. */
	atomic_store(&d->resetting, true);
	disconnect_backend(d, d->p.mode == NF_MODE_FIXED);
	return 0;
}

void nf_mark_stale(struct nf_dev *d)
{
	for (unsigned i = 0; i < NF_MAX_QUEUES; i++) {
		struct nf_queue *q = &d->queues[i];
		pthread_mutex_lock(&q->tx_lock);
		pthread_mutex_lock(&q->rx_lock);
		if (q->live)
			q->stale = true;
		pthread_mutex_unlock(&q->rx_lock);
		pthread_mutex_unlock(&q->tx_lock);
	}
}

void nf_open(struct nf_dev *d, enum gr_how how)
{
	tr(d, GR_EV_OPEN, -1, -1, -1, how, NULL);
	atomic_store(&d->running, true);
	if (!d->queues_created || atomic_load(&d->broken)) {
		/* Linux's xennet_open fails with -ENODEV; the TAP is up anyway,
		 * so the queues just stay stopped until the next open. */
		pv_warn("%s: open: %s: tx queues stay stopped", d->p.ifname,
			atomic_load(&d->broken) ? "device is broken" : "no queues");
		return;
	}
	if (!atomic_load(&d->present)) {
		pv_info("%s: open while detached: the queues wake at attach", d->p.ifname);
		return;
	}
	txq_set_all(d, false, GR_EV_TX_START_QUEUE);
}

void nf_close(struct nf_dev *d, enum gr_how how)
{
	tr(d, GR_EV_CLOSE, -1, -1, -1, how, NULL);
	atomic_store(&d->running, false);
	txq_set_all(d, true, GR_EV_TX_STOP_QUEUE);
}

void nf_remove(struct nf_dev *d)
{
	tr_simple(d, GR_EV_REMOVE);
	disconnect_backend(d, false);
	if (d->registered) {
		d->ops->netdev_unregister(d->env, d);
		pthread_mutex_lock(&d->lock);
		d->registered = false;
		pthread_mutex_unlock(&d->lock);
	}
	destroy_queues(d);
	atomic_store(&d->num_queues, 0);
	atomic_store(&d->tap_queues, 0);
	nf_txbuf_free_list(d->replay);
	d->replay = NULL;
}

/* ---- transmit entry ------------------------------------------------------------ */

enum nf_xmit_verdict nf_xmit_begin(struct nf_dev *d, unsigned txq, struct nf_queue **out)
{
	struct nf_queue *q;

	if (atomic_load(&d->txq[txq].stopped) || txq >= atomic_load(&d->tap_queues))
		return NF_XMIT_STOPPED;
	/* In v5.13 nothing keeps xennet_start_xmit away from a queue that
	 * resume is tearing down, or from an index beyond the new count. */
	if (atomic_load(&d->resetting) || txq >= atomic_load(&d->num_queues))
		return NF_XMIT_RACE;
	q = &d->queues[txq];
	pthread_mutex_lock(&q->tx_lock);
	if (!q->live) {
		pthread_mutex_unlock(&q->tx_lock);
		return NF_XMIT_RACE;
	}
	if (atomic_load(&d->broken) || !atomic_load(&d->carrier)) {
		pthread_mutex_unlock(&q->tx_lock);
		return NF_XMIT_DROP;
	}
	if (nf_tx_free_slots(&q->tx) < NF_TX_MAX_SLOTS || q->txb.nfree < NF_MAX_PKT_PAGES) {
		pthread_mutex_unlock(&q->tx_lock);
		return NF_XMIT_FULL;
	}
	*out = q;
	return NF_XMIT_OK;
}

void nf_xmit_race(struct nf_dev *d, unsigned txq)
{
	atomic_fetch_add(&d->race, 1);
	atomic_fetch_add(&d->queues[txq].st.tx_race, 1);
	atomic_fetch_add(&d->queues[txq].st.tx_dropped, 1);
}
