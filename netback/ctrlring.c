/*
 * The control ring (feature-ctrl-ring; Linux xenvif_connect_ctrl and
 * xenvif_ctrl_action): served by queue 0's thread, next to its data rings.
 *
 * Requests are copied out of the ring once, answered in order by
 * nb_hash_ctrl() (hash.c), the data pages they name (key, mapping table)
 * grant-copied into a page of dom0 memory first (without dom0 memory,
 * --map-grants: read through a mapping). The hash goes to the vif, whose
 * queues send HASH extras with the frames it applies to (rx.c). A producer index more than
 * a ring ahead of our responses disables the vif, as a bad data ring index
 * does. When the hash changed, the TAP's steering program follows
 * (steer.c) before any response is pushed: a frontend that reads SUCCESS
 * finds its table in force. The hash state is per connection: a frontend
 * that reconnects starts from algorithm NONE (Linux keeps it in the vif).
 */
#include "netback/queue_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "netback/hash.h"
#include "netback/steer.h"
#include "netback/vif.h"

#define NB_CTRL_BUDGET 64u   /* requests per turn of the thread's loop */

struct nb_ctrl {
	xen_netif_ctrl_back_ring_t ring;
	uint32_t ring_handle;
	bool ring_mapped;
	evtchn_port_t port;
	struct nb_storm storm;
	struct nb_hash hash;
	struct nb_steer steer;
	bool steering;          /* the program is attached to the TAP */
	bool steer_broken;      /* it could not be loaded: said once, not tried again */
	int64_t page_frame;     /* one page of dom0 memory for the copies, -1 none */
	uint8_t *page;
};

evtchn_port_t nb_ctrl_port(const struct nb_queue *q) { return q->ctrl ? q->ctrl->port : 0; }

struct nb_storm *nb_ctrl_storm(struct nb_queue *q) { return &q->ctrl->storm; }

static int map_ring(struct nb_queue *q, struct nb_ctrl *c)
{
	struct pv_gnttab_map_op op = { .domid = q->cfg.domid, .ref = q->cfg.ctrl_ring_ref };
	xen_netif_ctrl_sring_t *s;
	RING_IDX rsp_prod, req_prod;
	int r = pv_gnttab_map_batch(q->gt, 1, &op);

	if (r < 0)
		return r;
	if (op.status != GNTST_okay)
		return -ENOENT;
	c->ring_handle = op.handle;
	c->ring_mapped = true;
	if (nb_q_revoked(q))
		return -ENOENT;
	s = op.addr;
	rsp_prod = __atomic_load_n(&s->rsp_prod, __ATOMIC_ACQUIRE);
	req_prod = __atomic_load_n(&s->req_prod, __ATOMIC_ACQUIRE);
	BACK_RING_ATTACH(&c->ring, s, rsp_prod, PV_PAGE_SIZE);
	if (req_prod - rsp_prod > RING_SIZE(&c->ring))
		return -EIO;
	return 0;
}

int nb_ctrl_setup(struct nb_queue *q)
{
	struct nb_ctrl *c;
	int r;

	if (!q->cfg.ctrl)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c) {
		q->ctrl_failed = true;
		return -ENOMEM;
	}
	q->ctrl = c;
	c->page_frame = -1;
	c->steer = (struct nb_steer){ -1, -1, -1, 0 };
	nb_hash_init(&c->hash, q->cfg.nqueues);
	if ((r = map_ring(q, c)) < 0 ||
	    (r = pv_evtchn_bind_interdomain(q->ec, q->cfg.domid, q->cfg.ctrl_evtchn)) < 0) {
		q->ctrl_failed = true;
		return r;
	}
	c->port = (evtchn_port_t)r;
	/* Without dom0 memory (--map-grants) the key and table are read
	 * through a mapping instead (copy_by_map). */
	if (q->cfg.own && q->copybuf) {
		c->page_frame = pv_page_alloc(q->cfg.own->pa, 1);
		if (c->page_frame >= 0)
			c->page = pv_page_addr(q->cfg.own->pa, (uint32_t)c->page_frame);
	}
	return 0;
}

void nb_ctrl_teardown(struct nb_queue *q)
{
	struct nb_ctrl *c = q->ctrl;

	if (!c)
		return;
	if (c->steering && nb_steer_detach(q->cfg.tap_fd) < 0)
		pv_warn("%s: detaching the steering program: %s", q->name, strerror(errno));
	nb_steer_close(&c->steer);
	if (c->ring_mapped && q->gt) {
		int16_t st;

		(void)pv_gnttab_unmap_batch(q->gt, 1, &c->ring_handle, &st);
	}
	/* The port goes with the handle (pv_evtchn_close). */
	if (c->page_frame >= 0)
		pv_page_free(q->cfg.own->pa, (uint32_t)c->page_frame, 1);
	free(c);
	q->ctrl = NULL;
}

/* Without dom0 memory (--map-grants): map the page read-only, copy, unmap. */
static int16_t copy_by_map(struct nb_queue *q, grant_ref_t ref, void *dst, size_t len)
{
	struct pv_gnttab_map_op op = { .domid = q->cfg.domid, .ref = ref, .flags = PV_GNTMAP_readonly };
	int16_t st;

	if (pv_gnttab_map_batch(q->gt, 1, &op) < 0)
		return GNTST_general_error;
	nb_stat_add(&q->st.map_batches, 1);
	if (op.status == GNTST_okay) {
		if (!nb_q_revoked(q))
			memcpy(dst, op.addr, len);
		(void)pv_gnttab_unmap_batch(q->gt, 1, &op.handle, &st);
		nb_stat_add(&q->st.unmap_batches, 1);
	}
	if (op.status == GNTST_bad_domain)
		nb_q_domain_gone(q);
	/* The unmap may have applied a revocation: look before the caller
	 * writes its response into the ring. */
	return nb_q_revoked(q) ? GNTST_bad_domain : op.status;
}

/* nb_hash_copy_fn: the frontend's page into ours, then into dst. */
static int16_t copy_in(void *ctx, grant_ref_t ref, void *dst, size_t len)
{
	struct nb_queue *q = ctx;
	struct nb_ctrl *c = q->ctrl;
	struct pv_gnttab_copy_seg s = { .len = (uint16_t)len, .flags = PV_GNTCOPY_source_gref };

	if (len > PV_PAGE_SIZE || q->dead)
		return GNTST_general_error;
	if (!c->page)
		return copy_by_map(q, ref, dst, len);
	s.source.foreign.ref = ref;
	s.source.foreign.domid = (uint16_t)q->cfg.domid;
	s.dest.virt = c->page;
	if (!nb_q_copy(q, 1, &s))
		return GNTST_general_error;
	if (s.status == GNTST_bad_domain)
		nb_q_domain_gone(q);
	if (s.status == GNTST_okay)
		memcpy(dst, c->page, len);
	return s.status;
}

static const char *alg_name(uint32_t alg)
{
	return alg == XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ ? "toeplitz" : "none";
}

/* Make the TAP choose queues by the new hash (algorithm NONE: as before). */
static void apply(struct nb_queue *q, struct nb_ctrl *c)
{
	char err[300];
	int r;

	nb_vif_set_hash(q->cfg.vif, &c->hash);   /* every queue's HASH extras */
	if (c->hash.alg == XEN_NETIF_CTRL_HASH_ALGORITHM_NONE) {
		if (c->steering && (r = nb_steer_detach(q->cfg.tap_fd)) < 0)
			pv_warn("%s: detaching the steering program: %s", q->name, strerror(-r));
		c->steering = false;
		pv_debug("%s: hash none", nb_vif_name(q->cfg.vif));
		return;
	}
	if (c->steer_broken)
		return;   /* loaded once and refused: not the verifier on every change */
	if (c->steer.prog_fd < 0 && (r = nb_steer_open(&c->steer, err, sizeof(err))) < 0) {
		pv_warn("%s: the control ring's hash cannot steer the TAP: %s", q->name, err);
		c->steer_broken = true;
		return;
	}
	if ((r = nb_steer_update(&c->steer, &c->hash)) < 0 ||
	    (!c->steering && (r = nb_steer_attach(&c->steer, q->cfg.tap_fd)) < 0)) {
		pv_warn("%s: steering the TAP: %s", q->name, strerror(-r));
		return;
	}
	c->steering = true;
	pv_debug("%s: hash %s, types %#x, %u-entry table", nb_vif_name(q->cfg.vif), alg_name(c->hash.alg),
		 c->hash.flags, c->hash.size);
}

bool nb_ctrl_event(struct nb_queue *q)
{
	struct nb_ctrl *c = q->ctrl;
	bool work = false, changed = false;
	unsigned budget = NB_CTRL_BUDGET;
	int more = 0, notify;

	q->ctrl_kick = false;
	nb_q_check_gone(q);
	if (q->dead)
		return true;
	do {
		RING_IDX prod = __atomic_load_n(&c->ring.sring->req_prod, __ATOMIC_ACQUIRE);

		if (prod - c->ring.rsp_prod_pvt > RING_SIZE(&c->ring)) {
			nb_q_fatal(q, "ctrl: Impossible number of requests. req_prod %u, rsp_prod %u, size %u",
				   prod, c->ring.rsp_prod_pvt, RING_SIZE(&c->ring));
			return true;
		}
		while (c->ring.req_cons != prod) {
			struct xen_netif_ctrl_request req;
			struct xen_netif_ctrl_response rsp;

			if (budget-- == 0) {
				/* Again from the thread's loop: a frontend that
				 * keeps queueing cannot hold the thread here. */
				q->ctrl_kick = true;
				goto push;
			}
			RING_COPY_REQUEST(&c->ring, c->ring.req_cons, &req);
			c->ring.req_cons++;
			changed |= nb_hash_ctrl(&c->hash, &req, &rsp, copy_in, q);
			if (q->dead)
				return true;   /* its memory is gone: no response */
			*RING_GET_RESPONSE(&c->ring, c->ring.rsp_prod_pvt) = rsp;
			c->ring.rsp_prod_pvt++;
			work = true;
		}
		RING_FINAL_CHECK_FOR_REQUESTS(&c->ring, more);
	} while (more);
push:
	if (changed)
		apply(q, c);
	RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&c->ring, notify);
	if (notify)
		nb_q_notify(q, c->port);
	return work;
}
