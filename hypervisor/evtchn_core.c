/*
 * Event-channel port tables. Xen 4.17 (common/event_channel.c) is the model:
 * get_free_port takes the lowest free port; bind_interdomain looks up the
 * remote domain (-ESRCH), takes a local port (-ENOSPC), then checks that the
 * remote port exists, is unbound and accepts the binder (-EINVAL); close of
 * an interdomain port leaves the peer unbound, accepting the closer's domain.
 */
#include "hypervisor/evtchn_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int hvd_ec_init(struct hvd_evtchn *ec, domid_t domid, uint32_t max_port)
{
	memset(ec, 0, sizeof(*ec));
	ec->ports = calloc((size_t)max_port + 1, sizeof(*ec->ports));
	if (!ec->ports)
		return -ENOMEM;
	ec->max_port = max_port;
	ec->domid = domid;
	return 0;
}

void hvd_ec_fini(struct hvd_evtchn *ec)
{
	free(ec->ports);
	ec->ports = NULL;
	ec->max_port = 0;
}

struct hvd_port *hvd_ec_port(struct hvd_evtchn *ec, evtchn_port_t port)
{
	if (port == 0 || port > ec->max_port || ec->ports[port].state == EVTCHNSTAT_closed)
		return NULL;
	return &ec->ports[port];
}

static int free_port(const struct hvd_evtchn *ec)
{
	for (uint32_t p = 1; p <= ec->max_port; p++)
		if (ec->ports[p].state == EVTCHNSTAT_closed)
			return (int)p;
	return -ENOSPC;
}

int hvd_ec_alloc_unbound(struct hvd_evtchn *ec, domid_t remote_dom, struct hvd_chan *chan,
			 void *owner)
{
	int port = free_port(ec);
	struct hvd_port *p;

	if (port < 0)
		return port;
	p = &ec->ports[port];
	p->state = EVTCHNSTAT_unbound;
	p->side = 0;
	p->remote_dom = remote_dom == DOMID_SELF ? ec->domid : remote_dom;
	p->remote_port = 0;
	p->chan = chan;
	p->owner = owner;
	chan->refs = 1;
	ec->in_use++;
	return port;
}

int hvd_ec_bind(struct hvd_evtchn *lec, struct hvd_evtchn *rec, evtchn_port_t rport, void *owner)
{
	struct hvd_port *rp, *lp;
	int lport;

	if (!rec)
		return -ESRCH;
	lport = free_port(lec);
	if (lport < 0)
		return lport;
	rp = hvd_ec_port(rec, rport);
	if (!rp || rp->state != EVTCHNSTAT_unbound || rp->remote_dom != lec->domid)
		return -EINVAL;
	lp = &lec->ports[lport];
	lp->state = EVTCHNSTAT_interdomain;
	lp->side = !rp->side;
	lp->remote_dom = rec->domid;
	lp->remote_port = rport;
	lp->chan = rp->chan;
	lp->owner = owner;
	lp->chan->refs++;
	rp->state = EVTCHNSTAT_interdomain;
	rp->remote_dom = lec->domid;
	rp->remote_port = (evtchn_port_t)lport;
	lec->in_use++;
	return lport;
}

int hvd_ec_close(struct hvd_evtchn *ec, evtchn_port_t port, hvd_ec_lookup_fn lookup, void *ctx,
		 struct hvd_port **peer, struct hvd_chan **dead)
{
	struct hvd_port *p = hvd_ec_port(ec, port);

	*peer = NULL;
	*dead = NULL;
	if (!p)
		return -EINVAL;
	if (p->state == EVTCHNSTAT_interdomain) {
		struct hvd_evtchn *rec = lookup(ctx, p->remote_dom);
		struct hvd_port *rp = rec ? hvd_ec_port(rec, p->remote_port) : NULL;

		if (rp && rp->state == EVTCHNSTAT_interdomain && rp->chan == p->chan) {
			rp->state = EVTCHNSTAT_unbound;
			rp->remote_dom = ec->domid;
			rp->remote_port = 0;
			*peer = rp;
		}
	}
	if (--p->chan->refs == 0)
		*dead = p->chan;
	memset(p, 0, sizeof(*p));
	ec->in_use--;
	return 0;
}

int hvd_ec_status(const struct hvd_evtchn *ec, evtchn_port_t port, struct evtchn_status *st)
{
	const struct hvd_port *p;

	if (port > ec->max_port)
		return -EINVAL;
	p = &ec->ports[port];
	st->status = p->state;
	st->vcpu = 0;
	memset(&st->u, 0, sizeof(st->u));
	if (p->state == EVTCHNSTAT_unbound) {
		st->u.unbound.dom = p->remote_dom;
	} else if (p->state == EVTCHNSTAT_interdomain) {
		st->u.interdomain.dom = p->remote_dom;
		st->u.interdomain.port = p->remote_port;
	}
	return 0;
}
