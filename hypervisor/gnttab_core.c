/*
 * Grant-table operations, hypervisor side. The order of the checks and the
 * codes they give follow Xen 4.17's common/grant_table.c (map_grant_ref,
 * _set_status_v1, unmap_common, acquire_grant_for_copy, gnttab_copy_*):
 *
 *   map:  no host/device map flag -> bad_gntref; unknown granter -> bad_domain;
 *         no free handle -> no_space; ref out of range -> bad_gntref; entry
 *         pinned by another domain or pin count overflow -> general_error;
 *         (first pin, or first writable pin) type not permit_access (or
 *         sub_page set), domid not ours, writable pin of a readonly entry,
 *         entry changing under us 5 times -> general_error; frame outside the
 *         granter's memory -> bad_page.
 *   unmap: unknown or free handle -> bad_handle.
 *   copy: frame side not DOMID_SELF -> permission_denied; unknown domain ->
 *         bad_domain; then source, then destination as for a map (readonly
 *         source pin, writable destination pin); frame outside memory ->
 *         bad_page; offset + len beyond the page -> bad_copy_arg (checked
 *         after both sides were acquired, as Xen does).
 *
 * The granter may rewrite its entries at any time. Like Xen, we read the
 * flags+domid word once, decide, and CAS it; once an entry is pinned its
 * frame and domid come from the active entry, never again from shared memory.
 */
#include "hypervisor/gnttab_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PIN_OVERFLOW 0x80u
#define MT_NONE UINT32_MAX

/* flags and domid of an entry, updated together (they form one aligned word). */
union gt_combo {
	uint32_t raw;
	struct {
		uint16_t flags;
		domid_t domid;
	} f;
};

_Static_assert(sizeof(grant_entry_v1_t) == 8, "grant_entry_v1_t is 8 bytes");
_Static_assert(offsetof(grant_entry_v1_t, flags) == 0 && offsetof(grant_entry_v1_t, domid) == 2,
	       "flags and domid share the first word");

static uint32_t *entry_word(struct hvd_gt *gt, grant_ref_t ref)
{
	return (uint32_t *)(void *)&gt->shared[ref];
}

int hvd_gt_init(struct hvd_gt *gt, grant_entry_v1_t *shared, uint32_t nr_entries, domid_t domid)
{
	memset(gt, 0, sizeof(*gt));
	gt->active = calloc(nr_entries ? nr_entries : 1, sizeof(*gt->active));
	if (!gt->active)
		return -ENOMEM;
	gt->shared = shared;
	gt->nr_entries = nr_entries;
	gt->domid = domid;
	return 0;
}

void hvd_gt_fini(struct hvd_gt *gt)
{
	free(gt->active);
	gt->active = NULL;
	gt->shared = NULL;
	gt->nr_entries = 0;
}

uint32_t hvd_gt_in_use(const struct hvd_gt *gt)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < gt->nr_entries; i++) {
		uint16_t f = __atomic_load_n(&gt->shared[i].flags, __ATOMIC_RELAXED);
		n += (f & GTF_type_mask) == GTF_permit_access;
	}
	return n;
}

static void clear_flags(struct hvd_gt *gt, grant_ref_t ref, uint16_t bits)
{
	if (bits)
		__atomic_fetch_and(&gt->shared[ref].flags, (uint16_t)~bits, __ATOMIC_SEQ_CST);
}

/* Set GTF_reading (and GTF_writing) in the shared entry, checking it on the
 * way unless it is already pinned (then the active entry is the truth). */
static int16_t set_status(struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid, bool readonly,
			  bool mapflag, bool pinned)
{
	uint32_t *word = entry_word(gt, ref);
	uint16_t mask = GTF_type_mask | (mapflag ? GTF_sub_page : 0);
	union gt_combo cur, want;
	int retries = 0;

	cur.raw = __atomic_load_n(word, __ATOMIC_ACQUIRE);
	for (;;) {
		if (!pinned && ((cur.f.flags & mask) != GTF_permit_access || cur.f.domid != ldomid))
			return GNTST_general_error;
		want = cur;
		want.f.flags |= GTF_reading;
		if (!readonly) {
			if (cur.f.flags & GTF_readonly)
				return GNTST_general_error;
			want.f.flags |= GTF_writing;
		}
		if (__atomic_compare_exchange_n(word, &cur.raw, want.raw, false,
						__ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE))
			return GNTST_okay;
		if (retries++ == 4)
			return GNTST_general_error; /* "shared grant entry is unstable" */
	}
}

int16_t hvd_gt_pin(struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid, bool readonly,
		   bool mapflag, uint32_t *frame)
{
	struct hvd_gt_active *act;
	bool pinned;
	int16_t rc;

	if (ref >= gt->nr_entries)
		return GNTST_bad_gntref;
	act = &gt->active[ref];
	pinned = act->rd || act->wr;
	if (pinned && (act->domid != ldomid || ((act->rd | act->wr) & PIN_OVERFLOW)))
		return GNTST_general_error;
	if (!pinned || (!readonly && !act->wr)) {
		rc = set_status(gt, ref, ldomid, readonly, mapflag, pinned);
		if (rc != GNTST_okay)
			return rc;
		if (!pinned) {
			uint32_t f = __atomic_load_n(&gt->shared[ref].frame, __ATOMIC_ACQUIRE);
			if (!gt->mem || f >= gt->mem_pages) {
				clear_flags(gt, ref, readonly ? GTF_reading : GTF_reading | GTF_writing);
				return GNTST_bad_page;
			}
			act->frame = f;
			act->domid = ldomid;
		}
	}
	if (readonly)
		act->rd++;
	else
		act->wr++;
	gt->pins++;
	*frame = act->frame;
	return GNTST_okay;
}

void hvd_gt_unpin(struct hvd_gt *gt, grant_ref_t ref, bool readonly)
{
	struct hvd_gt_active *act = &gt->active[ref];
	uint16_t bits = 0;

	if (readonly)
		act->rd--;
	else
		act->wr--;
	gt->pins--;
	if (!readonly && !act->wr)
		bits |= GTF_writing;
	if (!act->rd && !act->wr)
		bits |= GTF_reading;
	clear_flags(gt, ref, bits);
}

/* ---- maptrack ------------------------------------------------------------ */

void hvd_mt_init(struct hvd_maptrack *mt, uint32_t *held, uint32_t limit)
{
	memset(mt, 0, sizeof(*mt));
	mt->free_head = MT_NONE;
	mt->held = held;
	mt->limit = limit;
}

static uint32_t mt_alloc(struct hvd_maptrack *mt)
{
	uint32_t h;

	if (*mt->held >= mt->limit)
		return MT_NONE;
	if (mt->free_head == MT_NONE) {
		uint32_t ncap = mt->cap ? mt->cap * 2 : 64;
		struct hvd_map *ne;

		if (ncap > mt->limit)
			ncap = mt->limit;
		if (ncap <= mt->cap)
			return MT_NONE;
		if (mt->capacity && *mt->capacity + (ncap - mt->cap) > 2ull * mt->limit)
			return MT_NONE;
		ne = realloc(mt->e, (size_t)ncap * sizeof(*ne));
		if (!ne)
			return MT_NONE;
		memset(ne + mt->cap, 0, (size_t)(ncap - mt->cap) * sizeof(*ne));
		/* Chain the new entries lowest first. */
		for (uint32_t i = ncap; i-- > mt->cap;) {
			ne[i].next_free = mt->free_head;
			mt->free_head = i;
		}
		if (mt->capacity)
			*mt->capacity += ncap - mt->cap;
		mt->e = ne;
		mt->cap = ncap;
	}
	h = mt->free_head;
	mt->free_head = mt->e[h].next_free;
	mt->used++;
	(*mt->held)++;
	return h;
}

static void mt_free(struct hvd_maptrack *mt, uint32_t h)
{
	memset(&mt->e[h], 0, sizeof(mt->e[h]));
	mt->e[h].next_free = mt->free_head;
	mt->free_head = h;
	mt->used--;
	(*mt->held)--;
}

void hvd_mt_fini(struct hvd_maptrack *mt)
{
	for (uint32_t h = 0; h < mt->cap; h++) {
		struct hvd_map *m = &mt->e[h];
		if (!m->flags)
			continue;
		if (m->gt)
			hvd_gt_unpin(m->gt, m->ref, m->flags & GNTMAP_readonly);
		mt->used--;
		(*mt->held)--;
	}
	free(mt->e);
	if (mt->capacity)
		*mt->capacity -= mt->cap;
	mt->e = NULL;
	mt->cap = 0;
	mt->free_head = MT_NONE;
}

void hvd_mt_charge(struct hvd_maptrack *mt, uint32_t *capacity)
{
	mt->capacity = capacity;
	if (capacity)
		*capacity += mt->cap;
}

unsigned hvd_mt_revoke(struct hvd_maptrack *mt, const struct hvd_gt *gt)
{
	unsigned n = 0;

	for (uint32_t h = 0; h < mt->cap; h++) {
		if (mt->e[h].flags && mt->e[h].gt == gt) {
			mt->e[h].gt = NULL;
			mt->e[h].revoked = true;
			n++;
		}
	}
	return n;
}

bool hvd_mt_maps(const struct hvd_maptrack *mt, const struct hvd_gt *gt)
{
	for (uint32_t h = 0; h < mt->cap; h++)
		if (mt->e[h].flags && mt->e[h].gt == gt)
			return true;
	return false;
}

void hvd_gt_map(struct hvd_maptrack *mt, struct hvd_gt *rgt, domid_t ldomid,
		struct gnttab_map_grant_ref *op)
{
	bool ro = op->flags & GNTMAP_readonly;
	uint32_t h, frame;
	int16_t rc;

	if (!(op->flags & (GNTMAP_device_map | GNTMAP_host_map))) {
		op->status = GNTST_bad_gntref;
		return;
	}
	if (!rgt) {
		op->status = GNTST_bad_domain;
		return;
	}
	h = mt_alloc(mt);
	if (h == MT_NONE) {
		op->status = GNTST_no_space;
		return;
	}
	rc = hvd_gt_pin(rgt, op->ref, ldomid, ro, true, &frame);
	if (rc != GNTST_okay) {
		mt_free(mt, h);
		op->status = rc;
		return;
	}
	mt->e[h].gt = rgt;
	mt->e[h].ref = op->ref;
	mt->e[h].flags = (uint16_t)(op->flags & (GNTMAP_device_map | GNTMAP_host_map | GNTMAP_readonly));
	op->handle = h;
	op->dev_bus_addr = (uint64_t)frame << PV_PAGE_SHIFT;
	op->status = GNTST_okay;
}

void hvd_gt_unmap(struct hvd_maptrack *mt, struct gnttab_unmap_grant_ref *op)
{
	struct hvd_map *m;

	if (op->handle >= mt->cap || !mt->e[op->handle].flags) {
		op->status = GNTST_bad_handle;
		return;
	}
	m = &mt->e[op->handle];
	if (m->gt)
		hvd_gt_unpin(m->gt, m->ref, m->flags & GNTMAP_readonly);
	mt_free(mt, op->handle);
	op->status = GNTST_okay;
}

/* ---- copy ---------------------------------------------------------------- */

struct copy_side {
	struct hvd_gt *gt;   /* the domain whose memory this side is in */
	bool pinned;         /* a grant pin to release */
	grant_ref_t ref;
	uint32_t frame;
};

static int16_t copy_lock(hvd_gt_lookup_fn lookup, void *ctx, const struct gnttab_copy_ptr *p,
			 bool is_gref, struct copy_side *s)
{
	if (p->domid != DOMID_SELF && !is_gref)
		return GNTST_permission_denied;
	s->gt = lookup(ctx, p->domid);
	return s->gt ? GNTST_okay : GNTST_bad_domain;
}

static int16_t copy_claim(const struct gnttab_copy_ptr *p, bool is_gref, bool readonly,
			  domid_t ldomid, struct copy_side *s)
{
	if (is_gref) {
		int16_t rc = hvd_gt_pin(s->gt, p->u.ref, ldomid, readonly, false, &s->frame);
		if (rc == GNTST_okay) {
			s->pinned = true;
			s->ref = p->u.ref;
		}
		return rc;
	}
	if (!s->gt->mem || p->u.gmfn >= s->gt->mem_pages)
		return GNTST_bad_page;
	s->frame = (uint32_t)p->u.gmfn;
	return GNTST_okay;
}

static void copy_release(struct copy_side *s, bool readonly)
{
	if (s->pinned)
		hvd_gt_unpin(s->gt, s->ref, readonly);
	s->pinned = false;
}

int16_t hvd_gt_copy(hvd_gt_lookup_fn lookup, void *ctx, struct hvd_gt *self,
		    const struct gnttab_copy *op)
{
	bool src_gref = op->flags & GNTCOPY_source_gref, dst_gref = op->flags & GNTCOPY_dest_gref;
	struct copy_side src = { 0 }, dst = { 0 };
	int16_t rc;

	rc = copy_lock(lookup, ctx, &op->source, src_gref, &src);
	if (rc == GNTST_okay)
		rc = copy_lock(lookup, ctx, &op->dest, dst_gref, &dst);
	if (rc == GNTST_okay)
		rc = copy_claim(&op->source, src_gref, true, self->domid, &src);
	if (rc == GNTST_okay)
		rc = copy_claim(&op->dest, dst_gref, false, self->domid, &dst);
	if (rc == GNTST_okay &&
	    ((unsigned)op->source.offset + op->len > PV_PAGE_SIZE ||
	     (unsigned)op->dest.offset + op->len > PV_PAGE_SIZE))
		rc = GNTST_bad_copy_arg;
	if (rc == GNTST_okay)
		memmove(dst.gt->mem + ((size_t)dst.frame << PV_PAGE_SHIFT) + op->dest.offset,
			src.gt->mem + ((size_t)src.frame << PV_PAGE_SHIFT) + op->source.offset,
			op->len);
	copy_release(&src, true);
	copy_release(&dst, false);
	return rc;
}
