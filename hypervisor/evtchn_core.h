/*
 * hypervisor/evtchn_core.h — the hypervisor's event-channel logic, pure.
 *
 * What: per-domain port tables and the operations EVTCHNOP_alloc_unbound,
 * bind_interdomain, close and status with Xen 4.17's rules and errno values:
 * ports are numbered from 1 (0 is reserved), the lowest free port is taken,
 * DOMID_SELF as remote means the domain itself, binding needs the remote port
 * unbound and accepting the binder, closing one end of an interdomain channel
 * puts the other end back to unbound (still accepting the closer's domain).
 *
 * A channel is two doorbells, one per direction (struct hvd_chan), created
 * by the caller at alloc_unbound: eventfds whose count starts at 1 and that
 * nobody reads; side s watches bell[s] and the other side rings it with a
 * zero write, which cannot block whatever the shared file's flags (evtchn.c).
 * The port that allocated the channel is side 0; whoever binds to it gets
 * side 1. The doorbells outlive rebinding: refs count the ports that hold
 * them, and the caller frees them (closes the fds) when close reports the
 * last reference gone. Each channel also has a page both
 * sides map (`flags`, HVP_EC_FLAGS_SIZE): side s's pending flag, which the
 * peer sets when it notifies and s clears when it takes the event, so that a
 * notify rings only when the flag goes from 0 to 1. Mask bits live
 * on the client side; this module never touches the fds.
 * No sockets, no syscalls.
 * Thread: the daemon's loop thread only.
 * Errors: port numbers >= 1, or -errno (-EINVAL, -ESRCH, -ENOSPC).
 * Ownership: a table owns its port array; channels belong to the caller.
 */
#ifndef PVNET_HYPERVISOR_EVTCHN_CORE_H
#define PVNET_HYPERVISOR_EVTCHN_CORE_H

#include <stdint.h>

#include "common/xen.h"

struct hvd_chan {
	int bell[2];               /* side s watches bell[s]; the other side rings it */
	int flags;                 /* memfd: the two sides' pending flags (proto.h) */
	uint32_t refs;
};

struct hvd_port {
	uint8_t state;             /* EVTCHNSTAT_closed / _unbound / _interdomain */
	uint8_t side;              /* this port watches chan->bell[side], rings bell[!side] */
	domid_t remote_dom;        /* unbound: who may bind; interdomain: the peer */
	evtchn_port_t remote_port; /* interdomain only */
	struct hvd_chan *chan;
	void *owner;               /* the connection that holds the port */
};

struct hvd_evtchn {
	struct hvd_port *ports;    /* max_port + 1 entries; port 0 never used */
	uint32_t max_port;
	uint32_t in_use;
	domid_t domid;
};

typedef struct hvd_evtchn *(*hvd_ec_lookup_fn)(void *ctx, domid_t domid);

int hvd_ec_init(struct hvd_evtchn *ec, domid_t domid, uint32_t max_port);
/* Frees the table; every port must have been closed. */
void hvd_ec_fini(struct hvd_evtchn *ec);

/* A port that is not closed, or NULL. */
struct hvd_port *hvd_ec_port(struct hvd_evtchn *ec, evtchn_port_t port);

/* EVTCHNOP_alloc_unbound: the new port takes `chan` (refs becomes 1). */
int hvd_ec_alloc_unbound(struct hvd_evtchn *ec, domid_t remote_dom, struct hvd_chan *chan,
			 void *owner);
/* EVTCHNOP_bind_interdomain: `rec` is the remote domain's table (NULL:
 * no such domain, -ESRCH). The new local port shares the remote port's chan. */
int hvd_ec_bind(struct hvd_evtchn *lec, struct hvd_evtchn *rec, evtchn_port_t rport, void *owner);
/* EVTCHNOP_close. *peer gets the remote end that became unbound (or NULL);
 * *dead gets the channel if this was its last port (the caller frees it). */
int hvd_ec_close(struct hvd_evtchn *ec, evtchn_port_t port, hvd_ec_lookup_fn lookup, void *ctx,
		 struct hvd_port **peer, struct hvd_chan **dead);
/* EVTCHNOP_status: fills st->status and the union; -EINVAL beyond max_port. */
int hvd_ec_status(const struct hvd_evtchn *ec, evtchn_port_t port, struct evtchn_status *st);

#endif
