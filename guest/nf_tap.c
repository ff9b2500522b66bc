/*
 * Netfront's netdev: eth<handle>, a multi-queue TAP in the guest's namespace
 * (register_netdev, netdev_update_features, carrier, real_num_tx_queues) and
 * netdev_notify_peers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/announce.h"
#include "guest/ifwatch.h"
#include "guest/runtime.h"
#include "netif/link.h"

/* GSO frames must fit XEN_NETIF_MAX_TX_SIZE with their headers (Linux 3.x
 * netfront: 65535 - MAX_TCP_HEADER); NIF_MAX_HDR_LEN covers every header
 * stack the TAP can hand us. */
#define NF_GSO_MAX_SIZE (XEN_NETIF_MAX_TX_SIZE - NIF_MAX_HDR_LEN)
/* Frames drained from one TAP queue being detached; the rest is dropped. */
#define NF_DRAIN_MAX 4096

static void announce_cancel(struct gr_rt *rt, int ifindex);

int nft_register(void *env, struct nf_dev *d, const uint8_t mac[6])
{
	struct gr_rt *rt = env;
	int r;

	r = nif_tap_create(&d->tap, d->p.ifname, d->num_txq);
	if (r < 0) {
		pv_err("%s: creating the TAP: %s", d->p.ifname, strerror(-r));
		return r;
	}
	/* Followed from its creation: an "up" that comes before we are done
	 * here waits on the link monitor and is still an open. */
	if (rt->ifw && (r = gr_ifwatch_follow(rt->ifw, d->tap.ifindex, true)) < 0)
		pv_warn("%s: not following its up/down changes: %s", d->p.ifname, strerror(-r));
	if ((r = nif_link_set_mac(d->tap.ifindex, mac)) < 0 ||
	    (r = nif_link_set_txqlen(d->tap.ifindex, rt->o.txqueuelen)) < 0 ||
	    (r = nif_link_set_gso_max_size(d->tap.ifindex, NF_GSO_MAX_SIZE)) < 0 ||
	    (r = nif_tap_set_carrier(&d->tap, false)) < 0) {
		pv_err("%s: configuring the TAP: %s", d->p.ifname, strerror(-r));
		if (rt->ifw)
			gr_ifwatch_unfollow(rt->ifw, d->tap.ifindex);
		nif_tap_close(&d->tap);
		return r;
	}
	atomic_store(&d->tap_queues, d->num_txq);
	r = nfd_threads_start(rt, d);
	if (r < 0) {
		if (rt->ifw)
			gr_ifwatch_unfollow(rt->ifw, d->tap.ifindex);
		nif_tap_close(&d->tap);
		return r;
	}
	pv_info("%s: registered (%u tx queues, MAC %02x:%02x:%02x:%02x:%02x:%02x)", d->p.ifname,
		d->num_txq, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return 0;
}

void nft_unregister(void *env, struct nf_dev *d)
{
	struct gr_rt *rt = env;

	if (rt->ifw)
		gr_ifwatch_unfollow(rt->ifw, d->tap.ifindex);
	announce_cancel(rt, d->tap.ifindex);
	atomic_store(&d->tap_queues, 0);
	nfd_threads_stop(rt, d);
	nif_tap_close(&d->tap);
}

int nft_update(void *env, struct nf_dev *d)
{
	unsigned flags = TUN_F_CSUM;
	struct nif_link_info li;
	int r;

	(void)env;
	if (d->feat.sg && d->feat.gso_tcpv4)
		flags |= TUN_F_TSO4;
	if (d->feat.sg && d->feat.gso_tcpv6)
		flags |= TUN_F_TSO6;
	r = nif_tap_set_offload(&d->tap, flags);
	if (r < 0)
		return r;
	/* xennet_set_features: no SG, no frames above ETH_DATA_LEN. */
	if (!d->feat.sg && nif_link_get(d->tap.ifindex, &li) == 0 && li.mtu > 1500)
		r = nif_link_set_mtu(d->tap.ifindex, 1500);
	return r;
}

int nft_carrier(void *env, struct nf_dev *d, bool on)
{
	(void)env;
	return nif_tap_set_carrier(&d->tap, on);
}

/* Read what TAP queue q holds into the backlog of netfront queue `to`. */
static unsigned drain_tap_queue(struct nf_dev *d, unsigned q, struct nf_queue *to, uint8_t *buf, size_t len)
{
	unsigned n = 0, dropped = 0;
	ssize_t got;

	while ((got = read(d->tap.fds[q], buf, len)) > (ssize_t)NIF_VNET_HDR_LEN) {
		struct virtio_net_hdr vh;
		struct nf_txbuf *b;
		uint32_t flen = (uint32_t)(got - NIF_VNET_HDR_LEN);

		memcpy(&vh, buf, sizeof(vh));
		b = n < NF_DRAIN_MAX ? malloc(sizeof(*b) + flen) : NULL;
		if (!b || nif_offload_from_vnet(&vh, &b->o) < 0) {
			free(b);
			dropped++;
			continue;
		}
		memcpy(b->data, buf + NIF_VNET_HDR_LEN, flen);
		b->len = flen;
		b->replay = false;
		b->announce = false;
		b->next = NULL;
		pthread_mutex_lock(&to->tx_lock);
		if (to->backlog_tail)
			to->backlog_tail->next = b;
		else
			to->backlog = b;
		to->backlog_tail = b;
		to->backlog_len++;
		pthread_mutex_unlock(&to->tx_lock);
		n++;
	}
	if (dropped)
		atomic_fetch_add(&to->st.tx_dropped, dropped);
	return n;
}

int nft_set_queues(void *env, struct nf_dev *d, unsigned n)
{
	unsigned cur = atomic_load(&d->tap_queues);
	size_t len = NIF_VNET_HDR_LEN + XEN_NETIF_MAX_TX_SIZE + 1;
	uint8_t *buf = NULL;
	int r = 0;

	(void)env;
	if (n == 0 || n > d->tap.nqueues)
		return -EINVAL;
	for (unsigned q = n; q < cur; q++) {
		unsigned moved;
		if (!buf && !(buf = malloc(len)))
			return -ENOMEM;
		/* Detaching purges the queue: hand its frames to a live one. */
		moved = drain_tap_queue(d, q, &d->queues[q % n], buf, len);
		if (moved)
			pv_info("%s: TAP queue %u detached, %u frames moved to queue %u", d->p.ifname, q,
				moved, q % n);
		r = nif_tap_queue_enable(&d->tap, q, false);
		if (r < 0)
			pv_warn("%s: detaching TAP queue %u: %s", d->p.ifname, q, strerror(-r));
	}
	for (unsigned q = cur; q < n; q++) {
		r = nif_tap_queue_enable(&d->tap, q, true);
		if (r < 0)
			pv_warn("%s: attaching TAP queue %u: %s", d->p.ifname, q, strerror(-r));
	}
	free(buf);
	atomic_store(&d->tap_queues, n);
	return r;
}

struct gr_announce_more {
	struct gr_announce_more *next;
	struct gr_rt *rt;
	int ifindex;
	uint8_t mac[6];
	unsigned left;
	int64_t timer;
};

static void announce_drop(struct gr_rt *rt, struct gr_announce_more *m)
{
	for (struct gr_announce_more **p = &rt->announces; *p; p = &(*p)->next)
		if (*p == m) {
			*p = m->next;
			break;
		}
	free(m);
}

static void announce_again(struct pv_loop *loop, void *arg)
{
	struct gr_announce_more *m = arg;
	struct gr_announce_result res;

	(void)loop;
	if (gr_announce(m->ifindex, m->mac, &res) < 0 || --m->left == 0) {
		announce_drop(m->rt, m);
		return;
	}
	m->timer = pv_loop_add_timer(m->rt->loop, (uint64_t)m->rt->o.notify_interval_ms * 1000000u,
				     announce_again, m);
	if (m->timer < 0)
		announce_drop(m->rt, m);
}

/* Forget the repeats of a netdev that goes away. */
static void announce_cancel(struct gr_rt *rt, int ifindex)
{
	struct gr_announce_more **p = &rt->announces;

	while (*p) {
		struct gr_announce_more *m = *p;
		if (m->ifindex != ifindex) {
			p = &m->next;
			continue;
		}
		*p = m->next;
		pv_loop_cancel_timer(rt->loop, m->timer);
		free(m);
	}
}

struct frames_ctx {
	struct nf_txbuf *head, **tail;
};

static int frame_to_buf(void *arg, const uint8_t *frame, size_t len, uint16_t ethertype)
{
	struct frames_ctx *c = arg;
	struct nf_txbuf *b = calloc(1, sizeof(*b) + len);

	(void)ethertype;
	if (!b)
		return -1;
	memcpy(b->data, frame, len);
	b->len = (uint32_t)len;
	b->announce = true;
	*c->tail = b;
	c->tail = &b->next;
	return 0;
}

struct nf_txbuf *nft_announce_frames(void *env, struct nf_dev *d)
{
	struct frames_ctx c = { .head = NULL, .tail = &c.head };
	int r;

	(void)env;
	r = gr_announce_each(d->tap.ifindex, d->mac, frame_to_buf, &c);
	if (r < 0)
		pv_warn("%s: no announcement ahead: %s", d->p.ifname, strerror(-r));
	return c.head;
}

void nft_notify_peers(void *env, struct nf_dev *d, char *summary, size_t len)
{
	struct gr_rt *rt = env;
	struct gr_announce_result res;
	struct gr_announce_more *m;
	int r = gr_announce(d->tap.ifindex, d->mac, &res);

	if (r < 0)
		snprintf(summary, len, "no addresses: %s", strerror(-r));
	else if (res.failed)
		snprintf(summary, len, "%u GARP, %u NA, %u dropped (%s)", res.garp, res.na, res.failed,
			 strerror(-res.last_err));
	else
		snprintf(summary, len, "%u GARP, %u NA", res.garp, res.na);
	/* Further rounds (--notify-count); a new announcement replaces them. */
	announce_cancel(rt, d->tap.ifindex);
	if (rt->o.notify_count <= 1 || !rt->loop || !(m = calloc(1, sizeof(*m))))
		return;
	m->rt = rt;
	m->ifindex = d->tap.ifindex;
	memcpy(m->mac, d->mac, 6);
	m->left = rt->o.notify_count - 1;
	m->timer = pv_loop_add_timer(rt->loop, (uint64_t)rt->o.notify_interval_ms * 1000000u,
				     announce_again, m);
	if (m->timer < 0) {
		free(m);
		return;
	}
	m->next = rt->announces;
	rt->announces = m;
}
