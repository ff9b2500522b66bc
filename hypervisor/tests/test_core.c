/* Unit tests for the pure grant-table and event-channel logic. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hypervisor/evtchn_core.h"
#include "hypervisor/gnttab_core.h"
#include "hypervisor/hvd.h"

/* ---- grant tables -------------------------------------------------------- */

#define NR_ENT 64
#define MEM_PAGES 8

struct dom {
	grant_entry_v1_t shared[NR_ENT];
	uint8_t mem[MEM_PAGES * PV_PAGE_SIZE];
	struct hvd_gt gt;
	uint32_t held;
	struct hvd_maptrack mt;
};

static struct dom *doms[3]; /* domids 1, 2, 3 */

static struct hvd_gt *lookup_gt(void *ctx, domid_t domid)
{
	domid_t self = *(domid_t *)ctx;

	if (domid == DOMID_SELF)
		domid = self;
	if (domid >= 1 && domid <= 3)
		return &doms[domid - 1]->gt;
	return NULL;
}

static int gt_setup(void **state)
{
	for (int i = 0; i < 3; i++) {
		doms[i] = calloc(1, sizeof(*doms[i]));
		assert_non_null(doms[i]);
		assert_int_equal(hvd_gt_init(&doms[i]->gt, doms[i]->shared, NR_ENT, (domid_t)(i + 1), NULL), 0);
		doms[i]->gt.mem = doms[i]->mem;
		doms[i]->gt.mem_pages = MEM_PAGES;
		hvd_mt_init(&doms[i]->mt, &doms[i]->held, 16);
	}
	return 0;
}

static int gt_teardown(void **state)
{
	for (int i = 0; i < 3; i++) {
		hvd_mt_fini(&doms[i]->mt);
		assert_int_equal(doms[i]->held, 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(doms[i]->gt.st->pins, 0);
		hvd_gt_fini(&doms[i]->gt);
		free(doms[i]);
	}
	return 0;
}

/* The granter's side: domid and frame, barrier, flags. */
static void grant(struct dom *d, grant_ref_t ref, domid_t to, uint32_t frame, bool ro)
{
	d->shared[ref].domid = to;
	d->shared[ref].frame = frame;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	d->shared[ref].flags = GTF_permit_access | (ro ? GTF_readonly : 0);
}

static struct gnttab_map_grant_ref map_op(domid_t dom, grant_ref_t ref, bool ro)
{
	struct gnttab_map_grant_ref op = { .flags = GNTMAP_host_map | (ro ? GNTMAP_readonly : 0),
					   .ref = ref, .dom = dom, .status = 99 };
	return op;
}

static int16_t do_map(struct dom *mapper, domid_t mapper_id, domid_t dom, grant_ref_t ref,
		      bool ro, uint32_t *handle)
{
	struct gnttab_map_grant_ref op = map_op(dom, ref, ro);
	domid_t self = mapper_id;

	hvd_gt_map(&mapper->mt, lookup_gt(&self, dom), mapper_id, &op);
	if (handle)
		*handle = op.handle;
	return op.status;
}

static int16_t do_unmap(struct dom *mapper, uint32_t handle)
{
	struct gnttab_unmap_grant_ref op = { .handle = handle, .status = 99 };
	hvd_gt_unmap(&mapper->mt, &op);
	return op.status;
}

static void test_map_rw_ro_flags(void **state)
{
	struct dom *g = doms[0], *b = doms[1];
	uint32_t h1, h2;
	struct gnttab_map_grant_ref op = map_op(1, 10, false);

	grant(g, 10, 2, 5, false);
	hvd_gt_map(&b->mt, &g->gt, 2, &op);
	assert_int_equal(op.status, GNTST_okay);
	assert_int_equal(op.dev_bus_addr, 5u << 12);
	h1 = op.handle;
	assert_int_equal(g->shared[10].flags, GTF_permit_access | GTF_reading | GTF_writing);
	assert_int_equal(do_map(b, 2, 1, 10, true, &h2), GNTST_okay);
	assert_int_not_equal(h1, h2);
	assert_int_equal(b->held, 2);
	/* Dropping the writable mapping clears GTF_writing only. */
	assert_int_equal(do_unmap(b, h1), GNTST_okay);
	assert_int_equal(g->shared[10].flags, GTF_permit_access | GTF_reading);
	assert_int_equal(do_unmap(b, h2), GNTST_okay);
	assert_int_equal(g->shared[10].flags, GTF_permit_access);
	assert_int_equal(b->held, 0);

	/* Read-only first, then a writable pin re-checks the entry. */
	assert_int_equal(do_map(b, 2, 1, 10, true, &h1), GNTST_okay);
	assert_int_equal(g->shared[10].flags, GTF_permit_access | GTF_reading);
	assert_int_equal(do_map(b, 2, 1, 10, false, &h2), GNTST_okay);
	assert_int_equal(g->shared[10].flags, GTF_permit_access | GTF_reading | GTF_writing);
	assert_int_equal(do_unmap(b, h1), GNTST_okay);
	assert_int_equal(g->shared[10].flags, GTF_permit_access | GTF_reading | GTF_writing);
	assert_int_equal(do_unmap(b, h2), GNTST_okay);
	assert_int_equal(g->shared[10].flags, GTF_permit_access);
}

static void test_map_errors(void **state)
{
	struct dom *g = doms[0], *b = doms[1], *c = doms[2];
	struct gnttab_map_grant_ref op;
	domid_t self = 2;
	uint32_t h;

	grant(g, 11, 2, 1, false);
	grant(g, 12, 2, 2, true);
	grant(g, 13, 2, MEM_PAGES, false);   /* frame out of range */
	grant(g, 14, 2, 1, false);
	g->shared[14].flags |= GTF_sub_page;

	/* Neither host_map nor device_map. */
	op = map_op(1, 11, false);
	op.flags = 0;
	hvd_gt_map(&b->mt, lookup_gt(&self, 1), 2, &op);
	assert_int_equal(op.status, GNTST_bad_gntref);
	assert_int_equal(do_map(b, 2, 9, 11, false, NULL), GNTST_bad_domain);
	assert_int_equal(do_map(b, 2, 1, NR_ENT, false, NULL), GNTST_bad_gntref);
	assert_int_equal(do_map(b, 2, 1, 0xFFFFFFFFu, false, NULL), GNTST_bad_gntref);
	/* Ungranted entry; granted to someone else; writable map of readonly. */
	assert_int_equal(do_map(b, 2, 1, 20, false, NULL), GNTST_general_error);
	assert_int_equal(do_map(c, 3, 1, 11, false, NULL), GNTST_general_error);
	assert_int_equal(do_map(c, 3, 1, 11, true, NULL), GNTST_general_error);
	assert_int_equal(do_map(b, 2, 1, 12, false, NULL), GNTST_general_error);
	assert_int_equal(g->shared[12].flags, GTF_permit_access | GTF_readonly);
	assert_int_equal(do_map(b, 2, 1, 12, true, &h), GNTST_okay);
	assert_int_equal(do_unmap(b, h), GNTST_okay);
	assert_int_equal(do_map(b, 2, 1, 13, false, NULL), GNTST_bad_page);
	assert_int_equal(g->shared[13].flags, GTF_permit_access);
	assert_int_equal(do_map(b, 2, 1, 14, false, NULL), GNTST_general_error);
	assert_int_equal(b->held, 0);
	assert_int_equal(g->gt.st->pins, 0);

	/* Handles: invalid, and unmapping twice. */
	assert_int_equal(do_unmap(b, 0), GNTST_bad_handle);
	assert_int_equal(do_unmap(b, 12345), GNTST_bad_handle);
	assert_int_equal(do_map(b, 2, 1, 11, false, &h), GNTST_okay);
	assert_int_equal(do_unmap(b, h), GNTST_okay);
	assert_int_equal(do_unmap(b, h), GNTST_bad_handle);
}

static void test_map_pinned_by_other(void **state)
{
	struct dom *g = doms[0], *b = doms[1], *c = doms[2];
	uint32_t h;

	grant(g, 15, 2, 3, false);
	assert_int_equal(do_map(b, 2, 1, 15, true, &h), GNTST_okay);
	/* A hostile granter retargets the pinned entry: the pin holder's domid
	 * comes from the active entry, so domain 3 is still refused... */
	g->shared[15].domid = 3;
	assert_int_equal(do_map(c, 3, 1, 15, true, NULL), GNTST_general_error);
	/* ...and domain 2 keeps the frame it pinned even if the frame changes. */
	g->shared[15].frame = 4;
	{
		struct gnttab_map_grant_ref op = map_op(1, 15, true);
		hvd_gt_map(&b->mt, &g->gt, 2, &op);
		assert_int_equal(op.status, GNTST_okay);
		assert_int_equal(op.dev_bus_addr, 3u << 12);
		assert_int_equal(do_unmap(b, op.handle), GNTST_okay);
	}
	/* Making it readonly under a read pin: a writable pin is refused. */
	g->shared[15].flags |= GTF_readonly;
	assert_int_equal(do_map(b, 2, 1, 15, false, NULL), GNTST_general_error);
	assert_int_equal(do_unmap(b, h), GNTST_okay);
	assert_int_equal(g->shared[15].flags & (GTF_reading | GTF_writing), 0);
}

static void test_maptrack_limit_and_overflow(void **state)
{
	struct dom *g = doms[0], *b = doms[1];
	uint32_t h[16];

	grant(g, 16, 2, 1, true);
	for (int i = 0; i < 16; i++)
		assert_int_equal(do_map(b, 2, 1, 16, true, &h[i]), GNTST_okay);
	assert_int_equal(do_map(b, 2, 1, 16, true, NULL), GNTST_no_space);
	/* Unknown domain is reported before the handle shortage, as in Xen. */
	assert_int_equal(do_map(b, 2, 7, 16, true, NULL), GNTST_bad_domain);
	for (int i = 0; i < 16; i++)
		assert_int_equal(do_unmap(b, h[i]), GNTST_okay);

	/* Pin counts are 8-bit: after 128 pins the 129th is refused. */
	{
		struct hvd_maptrack big;
		uint32_t held = 0, hh[129];
		struct gnttab_map_grant_ref op;

		hvd_mt_init(&big, &held, 1000);
		for (int i = 0; i < 129; i++) {
			op = map_op(1, 16, true);
			hvd_gt_map(&big, &g->gt, 2, &op);
			hh[i] = op.handle;
			assert_int_equal(op.status, i < 128 ? GNTST_okay : GNTST_general_error);
		}
		(void)hh;
		hvd_mt_fini(&big);
		assert_int_equal(held, 0);
		assert_int_equal(g->shared[16].flags, GTF_permit_access | GTF_readonly);
	}
}

/* Tables grown to their peak on several connections of one domain: their
 * allocated entries together may not pass twice the domain's limit (each
 * table alone is bounded by the limit of live handles, not their sum). */
static void test_maptrack_capacity_charged(void **state)
{
	struct dom *g = doms[0];
	struct hvd_maptrack t[3];
	uint32_t held = 0, cap = 0, h[16];
	struct gnttab_map_grant_ref op;
	(void)state;

	grant(g, 20, 2, 3, true);
	for (int k = 0; k < 3; k++) {
		hvd_mt_init(&t[k], &held, 16);
		hvd_mt_charge(&t[k], &cap);
	}
	for (int k = 0; k < 2; k++) {
		/* Map to the limit, unmap all: the table keeps its 16 entries. */
		for (int i = 0; i < 16; i++) {
			op = map_op(1, 20, true);
			hvd_gt_map(&t[k], &g->gt, 2, &op);
			assert_int_equal(op.status, GNTST_okay);
			h[i] = op.handle;
		}
		for (int i = 0; i < 16; i++) {
			struct gnttab_unmap_grant_ref u = { .handle = h[i] };
			hvd_gt_unmap(&t[k], &u);
			assert_int_equal(u.status, GNTST_okay);
		}
	}
	assert_int_equal(held, 0);
	assert_int_equal(cap, 32);
	op = map_op(1, 20, true);
	hvd_gt_map(&t[2], &g->gt, 2, &op);
	assert_int_equal(op.status, GNTST_no_space);
	/* A table freed gives its entries back. */
	hvd_mt_fini(&t[0]);
	assert_int_equal(cap, 16);
	op = map_op(1, 20, true);
	hvd_gt_map(&t[2], &g->gt, 2, &op);
	assert_int_equal(op.status, GNTST_okay);
	hvd_mt_fini(&t[2]);
	hvd_mt_fini(&t[1]);
	assert_int_equal(cap, 0);
	assert_int_equal(held, 0);
}

static void test_revoke(void **state)
{
	struct dom *g = doms[0], *b = doms[1];
	uint32_t h1, h2;

	grant(g, 17, 2, 1, false);
	assert_int_equal(do_map(b, 2, 1, 17, false, &h1), GNTST_okay);
	assert_int_equal(do_map(b, 2, 1, 17, true, &h2), GNTST_okay);
	assert_true(hvd_mt_maps(&b->mt, &g->gt));
	assert_int_equal(hvd_mt_revoke(&b->mt, &g->gt), 2);
	assert_false(hvd_mt_maps(&b->mt, &g->gt));
	/* The granter's table goes away with its domain; forget its pins here. */
	memset(g->gt.active, 0, NR_ENT * sizeof(*g->gt.active));
	g->gt.st->pins = 0;
	assert_int_equal(b->held, 2);
	assert_int_equal(do_unmap(b, h1), GNTST_okay);
	assert_int_equal(do_unmap(b, h1), GNTST_bad_handle);
	assert_int_equal(do_unmap(b, h2), GNTST_okay);
	assert_int_equal(b->held, 0);
}

/* The active entries are shared with dom0's processes: a corrupt frame is
 * refused, and a recount rebuilds the pins from the mappings alone. */
static void test_shared_state(void **state)
{
	struct dom *g = doms[0], *b = doms[1];
	uint32_t h1, h2;

	grant(g, 10, 2, 5, false);
	grant(g, 11, 2, 6, false);
	assert_int_equal(do_map(b, 2, 1, 10, true, &h1), GNTST_okay);
	g->gt.active[10].frame = MEM_PAGES + 7;
	assert_int_equal(do_map(b, 2, 1, 10, true, NULL), GNTST_general_error);
	g->gt.active[10].frame = 5;
	/* A dead copier's pin on 11 and a lost count on 10. */
	g->gt.active[11].rd = 1;
	g->gt.active[11].frame = 6;
	g->gt.active[11].domid = 2;
	__atomic_fetch_or(&g->shared[11].flags, GTF_reading, __ATOMIC_SEQ_CST);
	g->gt.active[10].rd = 3;
	g->gt.st->pins = 4;
	hvd_gt_recount_begin(&g->gt);
	hvd_mt_repin(&b->mt, &g->gt);
	hvd_gt_recount_end(&g->gt);
	assert_int_equal(g->gt.active[10].rd, 1);
	assert_int_equal(g->gt.active[11].rd, 0);
	assert_int_equal(g->gt.st->pins, 1);
	assert_int_equal(g->shared[10].flags, GTF_permit_access | GTF_reading);
	assert_int_equal(g->shared[11].flags, GTF_permit_access);
	/* A dead granter: nothing more is pinned. */
	g->gt.st->dead = 1;
	assert_int_equal(do_map(b, 2, 1, 11, true, &h2), GNTST_bad_domain);
	g->gt.st->dead = 0;
	assert_int_equal(do_unmap(b, h1), GNTST_okay);
	assert_int_equal(g->shared[10].flags, GTF_permit_access);
}

static struct gnttab_copy copy_op(uint16_t flags, uint32_t sref, domid_t sdom, uint16_t soff,
				  uint32_t dref, domid_t ddom, uint16_t doff, uint16_t len)
{
	struct gnttab_copy op = { .len = len, .flags = flags };
	op.source.u.ref = sref;
	op.source.domid = sdom;
	op.source.offset = soff;
	op.dest.u.ref = dref;
	op.dest.domid = ddom;
	op.dest.offset = doff;
	return op;
}

static void test_copy(void **state)
{
	struct dom *g = doms[0], *b = doms[1];
	domid_t self = 2;
	struct gnttab_copy op;
	uint32_t h;

	grant(g, 20, 2, 2, true);    /* RX-like: readonly source */
	grant(g, 21, 2, 3, false);   /* writable destination */
	memset(g->mem + 2 * PV_PAGE_SIZE, 0xab, PV_PAGE_SIZE);

	/* grant -> own frame 4 */
	op = copy_op(GNTCOPY_source_gref, 20, 1, 100, 4, DOMID_SELF, 200, 1000);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_okay);
	assert_int_equal(b->mem[4 * PV_PAGE_SIZE + 200], 0xab);
	assert_int_equal(b->mem[4 * PV_PAGE_SIZE + 1199], 0xab);
	assert_int_equal(b->mem[4 * PV_PAGE_SIZE + 1200], 0);
	assert_int_equal(g->shared[20].flags, GTF_permit_access | GTF_readonly);

	/* own frame 4 -> grant 21 */
	op = copy_op(GNTCOPY_dest_gref, 4, DOMID_SELF, 200, 21, 1, 0, 4096 - 200);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_okay);
	assert_int_equal(g->mem[3 * PV_PAGE_SIZE], 0xab);
	assert_int_equal(g->shared[21].flags, GTF_permit_access);

	/* Copy into a readonly grant, crossing a page, bad domains and frames. */
	op = copy_op(GNTCOPY_dest_gref, 4, DOMID_SELF, 0, 20, 1, 0, 10);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_general_error);
	op = copy_op(GNTCOPY_source_gref, 20, 1, 4000, 4, DOMID_SELF, 0, 200);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_bad_copy_arg);
	op = copy_op(GNTCOPY_source_gref, 20, 1, 0, 4, DOMID_SELF, 4000, 200);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_bad_copy_arg);
	op = copy_op(GNTCOPY_source_gref, 20, 1, 0, 4, 1, 0, 10);      /* frame of another domain */
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_permission_denied);
	op = copy_op(GNTCOPY_source_gref, 20, 9, 0, 4, DOMID_SELF, 0, 10);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_bad_domain);
	op = copy_op(GNTCOPY_source_gref, 20, 1, 0, MEM_PAGES, DOMID_SELF, 0, 10);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_bad_page);
	op = copy_op(GNTCOPY_source_gref, NR_ENT, 1, 0, 4, DOMID_SELF, 0, 10);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_bad_gntref);
	op = copy_op(GNTCOPY_source_gref, 30, 1, 0, 4, DOMID_SELF, 0, 10);  /* ungranted */
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_general_error);
	/* Domain 3 copying from a grant meant for domain 2. */
	self = 3;
	op = copy_op(GNTCOPY_source_gref, 20, 1, 0, 4, DOMID_SELF, 0, 10);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &doms[2]->gt, &op), GNTST_general_error);
	self = 2;
	for (int r = 20; r <= 21; r++)
		assert_int_equal(g->shared[r].flags & (GTF_reading | GTF_writing), 0);

	/* A copy on a mapped grant leaves the mapping's flags as they were. */
	assert_int_equal(do_map(b, 2, 1, 21, false, &h), GNTST_okay);
	op = copy_op(GNTCOPY_source_gref, 21, 1, 0, 5, DOMID_SELF, 0, 64);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_okay);
	assert_int_equal(g->shared[21].flags, GTF_permit_access | GTF_reading | GTF_writing);
	assert_int_equal(do_unmap(b, h), GNTST_okay);
	/* Grant to grant (both foreign), and a domain copying its own grant. */
	grant(g, 22, 2, 6, false);
	op = copy_op(GNTCOPY_source_gref | GNTCOPY_dest_gref, 20, 1, 0, 22, 1, 0, 4096);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_okay);
	assert_int_equal(g->mem[6 * PV_PAGE_SIZE + 4095], 0xab);
	grant(b, 23, 2, 0, false);
	op = copy_op(GNTCOPY_source_gref | GNTCOPY_dest_gref, 20, 1, 0, 23, DOMID_SELF, 0, 16);
	assert_int_equal(hvd_gt_copy(lookup_gt, &self, &b->gt, &op), GNTST_okay);
	assert_int_equal(b->mem[0], 0xab);
}

/* ---- event channels ------------------------------------------------------ */

static struct hvd_evtchn ecs[3]; /* domids 0, 1, 2 */

static struct hvd_evtchn *lookup_ec(void *ctx, domid_t domid)
{
	return domid < 3 && ecs[domid].ports ? &ecs[domid] : NULL;
}

static int ec_setup(void **state)
{
	for (int i = 0; i < 3; i++)
		assert_int_equal(hvd_ec_init(&ecs[i], (domid_t)i, 4), 0);
	return 0;
}

static int ec_teardown(void **state)
{
	for (int i = 0; i < 3; i++)
		hvd_ec_fini(&ecs[i]);
	return 0;
}

static void test_evtchn_bind_close(void **state)
{
	struct hvd_chan ch = { { 100, 101 }, 102, 0 }, *dead;
	struct hvd_port *peer;
	struct evtchn_status st;
	int owner_a, owner_b;
	int p, q;

	/* Guest (1) allocates a port for dom0; dom0 binds it. */
	p = hvd_ec_alloc_unbound(&ecs[1], 0, &ch, &owner_a);
	assert_int_equal(p, 1);
	assert_int_equal(hvd_ec_status(&ecs[1], 1, &st), 0);
	assert_int_equal(st.status, EVTCHNSTAT_unbound);
	assert_int_equal(st.u.unbound.dom, 0);
	/* Only dom0 may bind it; unknown domains, closed and bad ports fail. */
	assert_int_equal(hvd_ec_bind(&ecs[2], &ecs[1], 1, &owner_b), -EINVAL);
	assert_int_equal(hvd_ec_bind(&ecs[0], NULL, 1, &owner_b), -ESRCH);
	assert_int_equal(hvd_ec_bind(&ecs[0], &ecs[1], 2, &owner_b), -EINVAL);
	assert_int_equal(hvd_ec_bind(&ecs[0], &ecs[1], 0, &owner_b), -EINVAL);
	assert_int_equal(hvd_ec_bind(&ecs[0], &ecs[1], 99, &owner_b), -EINVAL);
	q = hvd_ec_bind(&ecs[0], &ecs[1], 1, &owner_b);
	assert_int_equal(q, 1);
	assert_int_equal(ch.refs, 2);
	assert_int_equal(ecs[1].ports[1].side, 0);
	assert_int_equal(ecs[0].ports[1].side, 1);
	assert_ptr_equal(ecs[0].ports[1].owner, &owner_b);
	assert_int_equal(hvd_ec_status(&ecs[1], 1, &st), 0);
	assert_int_equal(st.status, EVTCHNSTAT_interdomain);
	assert_int_equal(st.u.interdomain.dom, 0);
	assert_int_equal(st.u.interdomain.port, 1);
	/* A bound port cannot be bound again. */
	assert_int_equal(hvd_ec_bind(&ecs[0], &ecs[1], 1, &owner_b), -EINVAL);

	/* dom0 closes: the guest's port is unbound again, accepting dom0. */
	assert_int_equal(hvd_ec_close(&ecs[0], 1, lookup_ec, NULL, &peer, &dead), 0);
	assert_ptr_equal(peer, &ecs[1].ports[1]);
	assert_null(dead);
	assert_int_equal(peer->state, EVTCHNSTAT_unbound);
	assert_int_equal(peer->remote_dom, 0);
	assert_int_equal(ch.refs, 1);
	assert_int_equal(hvd_ec_close(&ecs[0], 1, lookup_ec, NULL, &peer, &dead), -EINVAL);
	/* Rebinding reuses the same channel; now the guest closes first. */
	assert_int_equal(hvd_ec_bind(&ecs[0], &ecs[1], 1, &owner_b), 1);
	assert_int_equal(hvd_ec_close(&ecs[1], 1, lookup_ec, NULL, &peer, &dead), 0);
	assert_ptr_equal(peer, &ecs[0].ports[1]);
	assert_int_equal(peer->remote_dom, 1);
	assert_int_equal(hvd_ec_status(&ecs[0], 1, &st), 0);
	assert_int_equal(st.status, EVTCHNSTAT_unbound);
	/* The guest binds back to dom0's now-unbound port: opposite side. */
	assert_int_equal(hvd_ec_bind(&ecs[1], &ecs[0], 1, &owner_a), 1);
	assert_int_equal(ecs[1].ports[1].side, 0);
	assert_int_equal(hvd_ec_close(&ecs[1], 1, lookup_ec, NULL, &peer, &dead), 0);
	assert_int_equal(hvd_ec_close(&ecs[0], 1, lookup_ec, NULL, &peer, &dead), 0);
	assert_null(peer);
	assert_ptr_equal(dead, &ch);
	assert_int_equal(ecs[0].in_use + ecs[1].in_use, 0);
}

static void test_evtchn_ports(void **state)
{
	struct hvd_chan ch[5];
	struct hvd_chan *dead;
	struct hvd_port *peer;
	struct evtchn_status st;

	for (int i = 0; i < 4; i++)
		assert_int_equal(hvd_ec_alloc_unbound(&ecs[2], DOMID_SELF, &ch[i], NULL), i + 1);
	assert_int_equal(ecs[2].ports[1].remote_dom, 2);
	assert_int_equal(hvd_ec_alloc_unbound(&ecs[2], 0, &ch[4], NULL), -ENOSPC);
	/* Binding needs a free local port first (-ENOSPC before -EINVAL). */
	assert_int_equal(hvd_ec_bind(&ecs[2], &ecs[2], 77, NULL), -ENOSPC);
	/* The lowest free port is reused. */
	assert_int_equal(hvd_ec_close(&ecs[2], 2, lookup_ec, NULL, &peer, &dead), 0);
	assert_ptr_equal(dead, &ch[1]);
	assert_int_equal(hvd_ec_status(&ecs[2], 2, &st), 0);
	assert_int_equal(st.status, EVTCHNSTAT_closed);
	/* Loopback: the domain binds its own unbound port. */
	assert_int_equal(hvd_ec_bind(&ecs[2], &ecs[2], 3, NULL), 2);
	assert_int_equal(ch[2].refs, 2);
	assert_int_equal(hvd_ec_status(&ecs[2], 5, &st), -EINVAL);
	assert_int_equal(hvd_ec_status(&ecs[2], 0, &st), 0);
	assert_int_equal(st.status, EVTCHNSTAT_closed);
	assert_null(hvd_ec_port(&ecs[2], 0));
	for (evtchn_port_t p = 1; p <= 4; p++)
		assert_int_equal(hvd_ec_close(&ecs[2], p, lookup_ec, NULL, &peer, &dead), 0);
	assert_int_equal(ecs[2].in_use, 0);
}

/* ---- domid allocation ------------------------------------------------------ */

static void test_domid_allocation(void **state)
{
	struct hvd *h = calloc(1, sizeof(*h));
	struct hvd_domain taken;
	uint32_t d;

	assert_non_null(h);
	h->dom[0] = &taken;
	assert_int_equal(hvd_domid_pick(h, 0, &d), 0);
	assert_int_equal(d, 1);
	h->dom[1] = &taken;
	assert_int_equal(hvd_domid_pick(h, 0, &d), 0);
	assert_int_equal(d, 2);
	/* Freed ids are not reused before the counter wraps. */
	h->dom[2] = &taken;
	h->dom[1] = NULL;
	assert_int_equal(hvd_domid_pick(h, 0, &d), 0);
	assert_int_equal(d, 3);
	/* Explicit ids: free and below the reserved ones; the counter stays. */
	assert_int_equal(hvd_domid_pick(h, 2, &d), -EEXIST);
	assert_int_equal(hvd_domid_pick(h, DOMID_FIRST_RESERVED, &d), -EINVAL);
	assert_int_equal(hvd_domid_pick(h, 0x7FEF, &d), 0);
	assert_int_equal(d, 0x7FEF);
	assert_int_equal(h->rover, 3);
	/* Wrapping: from the top, back to the lowest free id above 0. */
	h->rover = 0x7FEE;
	h->dom[0x7FEF] = &taken;
	assert_int_equal(hvd_domid_pick(h, 0, &d), 0);
	assert_int_equal(d, 1);
	/* Full: every id from 1 to 0x7FEF taken. */
	for (uint32_t i = 1; i < DOMID_FIRST_RESERVED; i++)
		h->dom[i] = &taken;
	assert_int_equal(hvd_domid_pick(h, 0, &d), -ENOSPC);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_map_rw_ro_flags, gt_setup, gt_teardown),
		cmocka_unit_test_setup_teardown(test_map_errors, gt_setup, gt_teardown),
		cmocka_unit_test_setup_teardown(test_map_pinned_by_other, gt_setup, gt_teardown),
		cmocka_unit_test_setup_teardown(test_maptrack_limit_and_overflow, gt_setup, gt_teardown),
		cmocka_unit_test_setup_teardown(test_maptrack_capacity_charged, gt_setup, gt_teardown),
		cmocka_unit_test_setup_teardown(test_revoke, gt_setup, gt_teardown),
		cmocka_unit_test_setup_teardown(test_copy, gt_setup, gt_teardown),
		cmocka_unit_test_setup_teardown(test_shared_state, gt_setup, gt_teardown),
		cmocka_unit_test_setup_teardown(test_evtchn_bind_close, ec_setup, ec_teardown),
		cmocka_unit_test_setup_teardown(test_evtchn_ports, ec_setup, ec_teardown),
		cmocka_unit_test(test_domid_allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
