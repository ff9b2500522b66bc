/*
 * netback/backend.h — the xenbus side of pvnet-netback: Linux xen-netback's
 * xenbus.c (probe, frontend_changed, set_backend_state, connect, the
 * hotplug-status wait, xenbus_dev_fatal) over libxenstore.
 *
 * What: watches <home>/backend/vif; each device directory whose state is
 * Initialising is probed (features, InitWait, TAP on the bridge,
 * hotplug-status); the frontend's state drives the backend state machine
 * (netback/xenbus.h); connect reads the frontend's keys, checks them and
 * starts the vif's queues; fatal errors go to <home>/error/<nodename>/error
 * as "<errno> <message>" and the device to Closing. Frontend domains that the
 * hypervisor reports gone are disconnected and closed; a device is removed
 * (TAP deleted) when its backend directory goes, when its frontend directory
 * goes (state Unknown) or when the frontend closes with online = 0.
 * Thread: main thread only (the loop given to nb_backend_new).
 * Errors: nb_backend_new returns NULL with errno and a message in `err`.
 */
#ifndef PVNET_NETBACK_BACKEND_H
#define PVNET_NETBACK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "netback/vif.h"

struct nb_backend_opts {
	const char *xs_path;    /* xenstored socket (NULL: $XENSTORED_PATH) */
	const char *hv_path;    /* hypervisor dom0 socket (NULL: $PVNET_HYPERVISOR) */
	unsigned max_queues;    /* multi-queue-max-queues */
	unsigned fatal_slots;   /* fatal_skb_slots */
	unsigned drain_ms;      /* rx_drain_timeout_msecs (frontends with feature-rx-notify) */
	unsigned stall_ms;      /* rx_stall_timeout_msecs (idem) */
	bool map_grants;        /* map the frontend's pages rather than grant-copy them */
	bool no_affinity;       /* leave queue threads to the scheduler (default: pinned, queue.h) */
	bool hv_copies;         /* grant copies through the hypervisor, as a driver domain does */
};

struct nb_daemon;

struct nb_daemon *nb_backend_new(struct pv_loop *loop, const struct nb_backend_opts *o,
				 char *err, size_t errlen);
/* Disconnects and removes every device (TAPs deleted, state Closed). */
void nb_backend_free(struct nb_daemon *d);
/* The xenstore connection broke: the daemon should stop. */
bool nb_backend_failed(const struct nb_daemon *d);

struct nb_dev_info {
	const char *backend;     /* backend directory */
	const char *frontend;    /* frontend directory ("" before probe) */
	uint32_t domid, devid;
	int state;               /* backend state (logical) */
	int frontend_state;
	const char *bridge;
	struct nb_vif *vif;      /* NULL if probe failed */
};
typedef void (*nb_dev_visit)(void *arg, const struct nb_dev_info *info);
void nb_backend_foreach(struct nb_daemon *d, nb_dev_visit cb, void *arg);

#endif
