/*
 * netback/vif.h — one vif: the TAP device vif<domid>.<devid> on the host
 * bridge, its queues while connected, its disabled flag, its multicast
 * filter and its counters.
 *
 * What: nb_vif_create() makes the TAP at probe time (as Linux registers the
 * netdev at probe) with the daemon's maximum number of queues, MAC
 * fe:ff:ff:ff:ff:ff (Linux's vif MAC, never the bridge's lowest), carrier
 * off, only TAP queue 0 attached, and (given hv_path) a grant-table and an
 * event-channel handle per queue opened ahead for the first connection;
 * nb_vif_plug() does what the vif-bridge hotplug script does: MTU,
 * bridge, link up. nb_vif_connect() sets the TAP offloads from the frontend's
 * features, attaches as many TAP queues as netif queues (detaching the rest),
 * starts the queues and turns the carrier on; nb_vif_disconnect() undoes it.
 * A queue thread that finds the frontend misbehaving calls nb_vif_fatal():
 * the first reason is kept, "fatal error; disabling device" is logged, every
 * queue stops, the carrier goes off, and the vif stays dead until the
 * frontend reconnects (the next nb_vif_connect clears it).
 * Thread: create/plug/connect/disconnect/destroy from the main thread; the
 * nb_vif_fatal, nb_vif_domain_gone, multicast and stall calls from queue
 * threads; counters from anywhere.
 * Errors: 0 or -errno (with a message in `err` where there is one).
 */
#ifndef PVNET_NETBACK_VIF_H
#define PVNET_NETBACK_VIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#include "netback/hash.h"
#include "netback/keys.h"
#include "netback/queue.h"

#define NB_MCAST_MAX 64u  /* XEN_NETBK_MCAST_MAX */

struct nb_vif;

struct nb_vif *nb_vif_create(uint32_t domid, uint32_t devid, unsigned max_queues,
			     const char *hv_path, char *err, size_t errlen);
/* The hotplug script's part: MTU, enslave to `bridge`, link up. */
int nb_vif_plug(struct nb_vif *vif, const char *bridge, unsigned mtu, char *err, size_t errlen);
void nb_vif_destroy(struct nb_vif *vif);

/* cfgs[i] for queue i (vif, id, tap_fd, caps are filled in here). */
int nb_vif_connect(struct nb_vif *vif, unsigned nqueues, struct nb_queue_cfg *cfgs,
		   const struct nb_vif_caps *caps, char *err, size_t errlen);
void nb_vif_disconnect(struct nb_vif *vif);
bool nb_vif_connected(const struct nb_vif *vif);
void nb_vif_set_rate(struct nb_vif *vif, uint64_t credit_bytes, uint64_t credit_usec);

/* Queue threads -> main thread: nb_vif_event_fd() becomes readable;
 * nb_vif_take_events() returns and clears NB_VIF_EV_* bits. */
#define NB_VIF_EV_FATAL 1u
#define NB_VIF_EV_DOMAIN_GONE 2u
int nb_vif_event_fd(const struct nb_vif *vif);
unsigned nb_vif_take_events(struct nb_vif *vif);

void nb_vif_fatal(struct nb_vif *vif, const char *reason);
bool nb_vif_disabled(const struct nb_vif *vif);
/* The disable reason ("" if none); valid until the next connect. */
const char *nb_vif_reason(const struct nb_vif *vif);
void nb_vif_domain_gone(struct nb_vif *vif);
/* Carrier off when any queue stalls ("Guest Rx stalled"), on when all are
 * ready again ("Guest Rx ready"), as xenvif_queue_carrier_off/on. */
void nb_vif_queue_stalled(struct nb_vif *vif, bool stalled);

/* Multicast control (XEN_NETIF_EXTRA_TYPE_MCAST_*, request-multicast-control). */
int nb_vif_mcast_add(struct nb_vif *vif, const uint8_t addr[6]);
void nb_vif_mcast_del(struct nb_vif *vif, const uint8_t addr[6]);
void nb_vif_set_mcast_control(struct nb_vif *vif, bool on);
/* May a frame to `dest` go to the frontend? */
bool nb_vif_mcast_pass(struct nb_vif *vif, const uint8_t dest[6]);

/* The control ring's hash, as every queue's receive side uses it (a HASH
 * extra with each frame it applies to): set by the thread serving the
 * control ring, reset to NONE at connect; a queue thread polls the
 * generation (one atomic load per round) and copies the state when it moved. */
void nb_vif_set_hash(struct nb_vif *vif, const struct nb_hash *h);
unsigned nb_vif_hash_gen(struct nb_vif *vif);
void nb_vif_get_hash(struct nb_vif *vif, struct nb_hash *out, unsigned *gen);

const char *nb_vif_name(const struct nb_vif *vif);
uint32_t nb_vif_domid(const struct nb_vif *vif);
uint32_t nb_vif_devid(const struct nb_vif *vif);
unsigned nb_vif_nqueues(const struct nb_vif *vif);
const struct nb_qstats *nb_vif_queue_stats(const struct nb_vif *vif, unsigned q);
uint64_t nb_vif_connected_ns(const struct nb_vif *vif);

#endif
