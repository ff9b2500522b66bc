/*
 * The vif: TAP device, bridge port, queues, disable, multicast filter.
 */
#include "netback/vif.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/if_bridge.h>

#include "common/log.h"
#include "common/util.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/gnttab.h"
#include "netif/link.h"
#include "netif/tap.h"

struct nb_vif {
	char name[IFNAMSIZ];
	uint32_t domid, devid;
	struct nif_tap tap;
	unsigned max_queues;
	unsigned nqueues;
	struct nb_queue *queues[NB_MAX_QUEUES_LIMIT];
	/* Counters of the queues of the current connection, kept readable
	 * after a disconnect until the next connect. */
	struct nb_qstats last[NB_MAX_QUEUES_LIMIT];
	unsigned last_nqueues;
	uint64_t connected_ns;
	bool connected;
	/* Hypervisor handles opened at creation for the first connection's
	 * queues (moved to them at connect). */
	struct pv_gnttab *pre_gt[NB_MAX_QUEUES_LIMIT];
	struct pv_evtchn *pre_ec[NB_MAX_QUEUES_LIMIT];

	int event_fd;
	_Atomic unsigned events;
	_Atomic bool disabled;
	_Atomic unsigned stalled_queues;
	_Atomic bool mcast_control;

	_Atomic unsigned hash_gen;
	struct nb_hash hash;   /* under lock */

	pthread_mutex_t lock;  /* reason, mcast list, carrier decisions, hash */
	char reason[192];
	uint8_t mcast[NB_MCAST_MAX][6];
	unsigned nmcast;
};

static void close_preopened(struct nb_vif *vif)
{
	for (unsigned i = 0; i < NB_MAX_QUEUES_LIMIT; i++) {
		if (vif->pre_gt[i])
			pv_gnttab_close(vif->pre_gt[i]);
		if (vif->pre_ec[i])
			pv_evtchn_close(vif->pre_ec[i]);
		vif->pre_gt[i] = NULL;
		vif->pre_ec[i] = NULL;
	}
}

struct nb_vif *nb_vif_create(uint32_t domid, uint32_t devid, unsigned max_queues,
			     const char *hv_path, char *err, size_t errlen)
{
	static const uint8_t mac[6] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct nb_vif *vif;
	int r;

	vif = calloc(1, sizeof(*vif));
	if (!vif) {
		snprintf(err, errlen, "allocating vif");
		errno = ENOMEM;
		return NULL;
	}
	vif->domid = domid;
	vif->devid = devid;
	vif->max_queues = max_queues;
	vif->event_fd = -1;
	pthread_mutex_init(&vif->lock, NULL);
	snprintf(vif->name, sizeof(vif->name), "vif%u.%u", domid, devid);
	for (unsigned i = 0; i < NIF_TAP_MAX_QUEUES; i++)
		vif->tap.fds[i] = -1;
	vif->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vif->event_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(-r));
		goto fail;
	}
	r = nif_tap_create(&vif->tap, vif->name, max_queues);
	if (r < 0) {
		snprintf(err, errlen, "creating TAP %s: %s", vif->name, strerror(-r));
		goto fail;
	}
	if ((r = nif_tap_set_carrier(&vif->tap, false)) < 0 ||
	    (r = nif_link_set_mac(vif->tap.ifindex, mac)) < 0) {
		snprintf(err, errlen, "setting up TAP %s: %s", vif->name, strerror(-r));
		goto fail;
	}
	/* Only queue 0 stays attached until a frontend connects: detaching
	 * costs a grace period each, better paid now than in a migration's
	 * blackout (attaching at connect is cheap). */
	for (unsigned i = 1; i < vif->tap.nqueues; i++)
		if ((r = nif_tap_queue_enable(&vif->tap, i, false)) < 0) {
			snprintf(err, errlen, "detaching TAP queue %u of %s: %s", i, vif->name, strerror(-r));
			goto fail;
		}
	/* The same for the queues' hypervisor handles: opened now, not while
	 * the frontend waits. One that fails to open is opened by its queue. */
	for (unsigned i = 0; hv_path && i < max_queues && i < NB_MAX_QUEUES_LIMIT; i++) {
		vif->pre_gt[i] = pv_gnttab_open(hv_path);
		vif->pre_ec[i] = pv_evtchn_open(hv_path);
	}
	return vif;
fail:
	nb_vif_destroy(vif);
	errno = -r;
	return NULL;
}

int nb_vif_plug(struct nb_vif *vif, const char *bridge, unsigned mtu, char *err, size_t errlen)
{
	int br, r;

	if ((r = nif_link_set_mtu(vif->tap.ifindex, mtu)) < 0) {
		snprintf(err, errlen, "setting MTU %u on %s: %s", mtu, vif->name, strerror(-r));
		return r;
	}
	br = nif_link_index(bridge);
	if (br < 0) {
		snprintf(err, errlen, "bridge %s not found", bridge);
		return br;
	}
	if ((r = nif_link_set_master(vif->tap.ifindex, br)) < 0) {
		snprintf(err, errlen, "adding %s to bridge %s: %s", vif->name, bridge, strerror(-r));
		return r;
	}
	if ((r = nif_link_set_up(vif->tap.ifindex, true)) < 0) {
		snprintf(err, errlen, "setting %s up: %s", vif->name, strerror(-r));
		return r;
	}
	return 0;
}

void nb_vif_destroy(struct nb_vif *vif)
{
	if (!vif)
		return;
	nb_vif_disconnect(vif);
	close_preopened(vif);
	nif_tap_close(&vif->tap);
	if (vif->event_fd >= 0)
		close(vif->event_fd);
	pthread_mutex_destroy(&vif->lock);
	free(vif);
}

static void post_event(struct nb_vif *vif, unsigned ev)
{
	uint64_t one = 1;

	atomic_fetch_or(&vif->events, ev);
	if (write(vif->event_fd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: the main thread is already due. */
	}
}

int nb_vif_event_fd(const struct nb_vif *vif) { return vif->event_fd; }

unsigned nb_vif_take_events(struct nb_vif *vif)
{
	uint64_t v;

	if (read(vif->event_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing counted; the bits below still tell. */
	}
	return atomic_exchange(&vif->events, 0);
}

static void set_carrier(struct nb_vif *vif)
{
	bool on = vif->connected && !atomic_load(&vif->disabled) && atomic_load(&vif->stalled_queues) == 0;
	int r = nif_tap_set_carrier(&vif->tap, on);

	if (r < 0)
		pv_warn("%s: setting carrier %s: %s", vif->name, on ? "on" : "off", strerror(-r));
}

/* The kernel applies a carrier change to the bridge port asynchronously
 * (linkwatch). The frontend sends its gratuitous ARP as soon as it sees
 * Connected, and a disabled bridge port would drop it: wait (at most 200 ms)
 * for the port to forward before the caller writes Connected. */
static void wait_forwarding(struct nb_vif *vif)
{
	struct nif_link_info li;

	for (int i = 0; i < 2000; i++) {
		if (nif_link_get(vif->tap.ifindex, &li) < 0 || li.brport_state < 0 ||
		    li.brport_state == BR_STATE_FORWARDING)
			return;
		pv_sleep_ns(100000);
	}
	pv_warn("%s: bridge port not forwarding after 200 ms (state %d)", vif->name, li.brport_state);
}

/* The TAP side of a connect: offloads, the queues the frontend uses, MTU. */
static int tap_setup(struct nb_vif *vif, unsigned nqueues, const struct nb_vif_caps *caps,
		     char *err, size_t errlen)
{
	int r;

	/* The queues the frontend uses attached (cheap; the vif was created
	 * with queue 0 only), the offloads set through them, the others
	 * detached (only a bigger earlier connection left any attached). */
	for (unsigned i = 0; i < nqueues; i++) {
		r = nif_tap_queue_enable(&vif->tap, i, true);
		if (r < 0) {
			snprintf(err, errlen, "attaching TAP queue %u of %s: %s", i, vif->name, strerror(-r));
			return r;
		}
	}
	r = nif_tap_set_offload(&vif->tap, caps->tun_flags);
	if (r < 0) {
		snprintf(err, errlen, "TUNSETOFFLOAD 0x%x on %s: %s", caps->tun_flags, vif->name, strerror(-r));
		return r;
	}
	for (unsigned i = nqueues; i < vif->tap.nqueues; i++) {
		r = nif_tap_queue_enable(&vif->tap, i, false);
		if (r < 0) {
			snprintf(err, errlen, "detaching TAP queue %u of %s: %s", i, vif->name, strerror(-r));
			return r;
		}
	}
	if (caps->mtu && (r = nif_link_set_mtu(vif->tap.ifindex, caps->mtu)) < 0)
		pv_warn("%s: setting MTU %u: %s", vif->name, caps->mtu, strerror(-r));
	return 0;
}

int nb_vif_connect(struct nb_vif *vif, unsigned nqueues, struct nb_queue_cfg *cfgs,
		   const struct nb_vif_caps *caps, char *err, size_t errlen)
{
	int r;

	if (vif->connected || nqueues == 0 || nqueues > vif->max_queues) {
		snprintf(err, errlen, "cannot connect %u queues", nqueues);
		return -EINVAL;
	}
	/* A new connection: forget the last one's disable and counters. */
	atomic_store(&vif->disabled, false);
	atomic_store(&vif->stalled_queues, 0);
	atomic_store(&vif->events, 0);
	pthread_mutex_lock(&vif->lock);
	vif->reason[0] = '\0';
	vif->nmcast = 0;
	nb_hash_init(&vif->hash, nqueues);
	atomic_fetch_add(&vif->hash_gen, 1);
	pthread_mutex_unlock(&vif->lock);
	memset(vif->last, 0, sizeof(vif->last));
	vif->last_nqueues = 0;

	vif->connected_ns = pv_now_ns();
	/* All queues set up in parallel (each thread maps and binds its own)
	 * while this thread sets the TAP up, then waited for: a reconnect
	 * after a migration costs one set-up. The threads do not touch the
	 * TAP before nb_queue_go. */
	r = 0;
	for (unsigned i = 0; i < nqueues && r == 0; i++) {
		cfgs[i].vif = vif;
		cfgs[i].id = i;
		cfgs[i].tap_fd = vif->tap.fds[i];
		cfgs[i].caps = *caps;
		cfgs[i].gt = vif->pre_gt[i];
		cfgs[i].ec = vif->pre_ec[i];
		vif->pre_gt[i] = NULL;
		vif->pre_ec[i] = NULL;
		r = nb_queue_spawn(&cfgs[i], &vif->queues[i], err, errlen);
		if (r == 0)
			vif->nqueues = i + 1;
	}
	/* The queues this frontend does not use give their handles back. */
	close_preopened(vif);
	if (r == 0)
		r = tap_setup(vif, nqueues, caps, err, errlen);
	for (unsigned i = 0; i < vif->nqueues; i++) {
		char qerr[160];
		int qr = nb_queue_ready(vif->queues[i], qerr, sizeof(qerr));

		if (qr < 0) {
			vif->queues[i] = NULL;  /* freed by nb_queue_ready */
			if (r == 0) {
				r = qr;
				pv_strlcpy(err, qerr, errlen);
			}
		}
	}
	vif->connected = true;
	if (r < 0) {
		nb_vif_disconnect(vif);
		return r;
	}
	pthread_mutex_lock(&vif->lock);
	set_carrier(vif);
	pthread_mutex_unlock(&vif->lock);
	wait_forwarding(vif);
	/* xenvif_up: only with the carrier on do the queues serve the rings. */
	for (unsigned i = 0; i < vif->nqueues; i++)
		nb_queue_go(vif->queues[i]);
	return 0;
}

void nb_vif_disconnect(struct nb_vif *vif)
{
	if (!vif->connected)
		return;
	pthread_mutex_lock(&vif->lock);
	vif->connected = false;
	set_carrier(vif);
	pthread_mutex_unlock(&vif->lock);
	for (unsigned i = 0; i < vif->nqueues; i++) {
		if (vif->queues[i])
			nb_queue_stop(vif->queues[i], &vif->last[i]);
		vif->queues[i] = NULL;
	}
	vif->last_nqueues = vif->nqueues;
	vif->nqueues = 0;
}

bool nb_vif_connected(const struct nb_vif *vif) { return vif->connected; }

void nb_vif_set_rate(struct nb_vif *vif, uint64_t credit_bytes, uint64_t credit_usec)
{
	for (unsigned i = 0; i < vif->nqueues; i++)
		nb_queue_set_rate(vif->queues[i], credit_bytes, credit_usec);
	pv_log(PV_LOG_DEBUG, "%s: rate %llu bytes per %llu us", vif->name, (unsigned long long)credit_bytes,
	       (unsigned long long)credit_usec);
}

void nb_vif_fatal(struct nb_vif *vif, const char *reason)
{
	bool first;

	pthread_mutex_lock(&vif->lock);
	first = !atomic_exchange(&vif->disabled, true);
	if (first) {
		pv_strlcpy(vif->reason, reason, sizeof(vif->reason));
		pv_err("%s: %s", vif->name, reason);
		pv_err("%s: fatal error; disabling device", vif->name);
		set_carrier(vif);
	}
	pthread_mutex_unlock(&vif->lock);
	if (first)
		post_event(vif, NB_VIF_EV_FATAL);
}

bool nb_vif_disabled(const struct nb_vif *vif) { return atomic_load(&vif->disabled); }

const char *nb_vif_reason(const struct nb_vif *vif) { return vif->reason; }

void nb_vif_domain_gone(struct nb_vif *vif) { post_event(vif, NB_VIF_EV_DOMAIN_GONE); }

void nb_vif_queue_stalled(struct nb_vif *vif, bool stalled)
{
	unsigned before;

	pthread_mutex_lock(&vif->lock);
	if (stalled) {
		before = atomic_fetch_add(&vif->stalled_queues, 1);
		if (before == 0)
			pv_info("%s: Guest Rx stalled", vif->name);
	} else {
		before = atomic_fetch_sub(&vif->stalled_queues, 1);
		if (before == 1)
			pv_info("%s: Guest Rx ready", vif->name);
	}
	set_carrier(vif);
	pthread_mutex_unlock(&vif->lock);
}

int nb_vif_mcast_add(struct nb_vif *vif, const uint8_t addr[6])
{
	int r = 0;

	pthread_mutex_lock(&vif->lock);
	if (vif->nmcast == NB_MCAST_MAX)
		r = -ENOSPC;
	else
		memcpy(vif->mcast[vif->nmcast++], addr, 6);
	pthread_mutex_unlock(&vif->lock);
	return r;
}

void nb_vif_mcast_del(struct nb_vif *vif, const uint8_t addr[6])
{
	pthread_mutex_lock(&vif->lock);
	for (unsigned i = 0; i < vif->nmcast; i++) {
		if (memcmp(vif->mcast[i], addr, 6) == 0) {
			memmove(vif->mcast[i], vif->mcast[i + 1], (size_t)(vif->nmcast - i - 1) * 6);
			vif->nmcast--;
			break;
		}
	}
	pthread_mutex_unlock(&vif->lock);
}

void nb_vif_set_mcast_control(struct nb_vif *vif, bool on)
{
	if (atomic_exchange(&vif->mcast_control, on) != on)
		pv_log(PV_LOG_DEBUG, "%s: multicast filter %s", vif->name, on ? "on" : "off");
}

bool nb_vif_mcast_pass(struct nb_vif *vif, const uint8_t dest[6])
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	bool pass = false;

	/* Only PACKET_MULTICAST frames are filtered: group bit set, not broadcast. */
	if (!(dest[0] & 1) || memcmp(dest, bcast, 6) == 0 || !atomic_load(&vif->mcast_control))
		return true;
	pthread_mutex_lock(&vif->lock);
	for (unsigned i = 0; i < vif->nmcast && !pass; i++)
		pass = memcmp(vif->mcast[i], dest, 6) == 0;
	pthread_mutex_unlock(&vif->lock);
	return pass;
}

void nb_vif_set_hash(struct nb_vif *vif, const struct nb_hash *h)
{
	pthread_mutex_lock(&vif->lock);
	vif->hash = *h;
	atomic_fetch_add(&vif->hash_gen, 1);
	pthread_mutex_unlock(&vif->lock);
}

unsigned nb_vif_hash_gen(struct nb_vif *vif) { return atomic_load_explicit(&vif->hash_gen, memory_order_acquire); }

void nb_vif_get_hash(struct nb_vif *vif, struct nb_hash *out, unsigned *gen)
{
	pthread_mutex_lock(&vif->lock);
	*out = vif->hash;
	*gen = atomic_load(&vif->hash_gen);
	pthread_mutex_unlock(&vif->lock);
}

const char *nb_vif_name(const struct nb_vif *vif) { return vif->name; }
uint32_t nb_vif_domid(const struct nb_vif *vif) { return vif->domid; }
uint32_t nb_vif_devid(const struct nb_vif *vif) { return vif->devid; }

unsigned nb_vif_nqueues(const struct nb_vif *vif)
{
	return vif->connected ? vif->nqueues : vif->last_nqueues;
}

const struct nb_qstats *nb_vif_queue_stats(const struct nb_vif *vif, unsigned q)
{
	if (vif->connected)
		return q < vif->nqueues ? nb_queue_stats(vif->queues[q]) : NULL;
	return q < vif->last_nqueues ? &vif->last[q] : NULL;
}

uint64_t nb_vif_connected_ns(const struct nb_vif *vif) { return vif->connected_ns; }
