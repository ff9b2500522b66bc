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
#include <time.h>

#define PIN_OVERFLOW 0x80u
/* The daemon waits at most this long for a dom0 process's grant lock. */
#define LOCK_MS 1000
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

/* The per-segment steps of a copy, pin and unpin are forced inline into
 * their callers: a dom0 copy of a 4 KiB segment spends about 75 ns moving
 * bytes, and as calls these steps added about 30 ns to it; inlined, about 16
 * (BENCHMARKS.md, hypervisor section). */
#define SEG_INLINE inline __attribute__((always_inline))

static uint32_t *entry_word(struct hvd_gt *gt, grant_ref_t ref)
{
	return (uint32_t *)(void *)&gt->shared[ref];
}

size_t hvd_gt_state_size(uint32_t nr_entries)
{
	size_t b = HVD_GT_STATE_HDR + (size_t)nr_entries * sizeof(struct hvd_gt_active);
	return (b + 4095) & ~(size_t)4095;
}

static void gt_bind(struct hvd_gt *gt, grant_entry_v1_t *shared, uint32_t nr_entries,
		    domid_t domid, void *state)
{
	memset(gt, 0, sizeof(*gt));
	gt->st = state;
	gt->active = (struct hvd_gt_active *)(void *)((uint8_t *)state + HVD_GT_STATE_HDR);
	gt->shared = shared;
	gt->nr_entries = nr_entries;
	gt->domid = domid;
}

int hvd_gt_init(struct hvd_gt *gt, grant_entry_v1_t *shared, uint32_t nr_entries, domid_t domid,
		void *state)
{
	bool own = !state;
	pthread_mutexattr_t a;
	struct hvd_gt_state *st;
	int r;

	if (own && !(state = calloc(1, hvd_gt_state_size(nr_entries))))
		return -ENOMEM;
	st = state;
	r = pthread_mutexattr_init(&a);
	if (r == 0) {
		r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
		if (r == 0)
			r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
		if (r == 0)
			r = pthread_mutex_init(&st->lock, &a);
		pthread_mutexattr_destroy(&a);
	}
	if (r != 0) {
		if (own)
			free(state);
		return -r;
	}
	st->nr_entries = nr_entries;
	__atomic_store_n(&st->magic, HVD_GT_STATE_MAGIC, __ATOMIC_RELEASE);
	gt_bind(gt, shared, nr_entries, domid, state);
	gt->own_state = own;
	gt->autolock = true;
	return 0;
}

int hvd_gt_attach(struct hvd_gt *gt, grant_entry_v1_t *shared, uint32_t nr_entries,
		  domid_t domid, void *state, uint8_t *mem, uint32_t mem_pages)
{
	const struct hvd_gt_state *st = state;

	if (__atomic_load_n(&st->magic, __ATOMIC_ACQUIRE) != HVD_GT_STATE_MAGIC ||
	    st->nr_entries != nr_entries)
		return -EPROTO;
	gt_bind(gt, shared, nr_entries, domid, state);
	gt->mem = mem;
	gt->mem_pages = mem_pages;
	return 0;
}

void hvd_gt_fini(struct hvd_gt *gt)
{
	if (gt->own_state && gt->st) {
		pthread_mutex_destroy(&gt->st->lock);
		free(gt->st);
	}
	gt->st = NULL;
	gt->active = NULL;
	gt->shared = NULL;
	gt->nr_entries = 0;
}

int hvd_gt_lock(struct hvd_gt *gt, int timeout_ms)
{
	struct timespec ts;
	int r = pthread_mutex_trylock(&gt->st->lock);

	if (r == 0 || r == EOWNERDEAD)
		goto locked;
	if (r != EBUSY)
		return -r;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	r = pthread_mutex_clocklock(&gt->st->lock, CLOCK_MONOTONIC, &ts);
locked:
	if (r == EOWNERDEAD) {
		/* The holder died between its pins and unpins: what it held
		 * is unknown, so the hypervisor recounts from its mappings. */
		__atomic_store_n(&gt->st->rebuild, 1, __ATOMIC_RELAXED);
		pthread_mutex_consistent(&gt->st->lock);
		r = 1;
	} else if (r != 0) {
		return -r;
	}
	if (gt->autolock && gt->recount && __atomic_load_n(&gt->st->rebuild, __ATOMIC_RELAXED))
		gt->recount(gt->recount_ctx, gt);
	return r;
}

void hvd_gt_unlock(struct hvd_gt *gt)
{
	pthread_mutex_unlock(&gt->st->lock);
}

void hvd_gt_recount_begin(struct hvd_gt *gt)
{
	for (uint32_t i = 0; i < gt->nr_entries; i++) {
		gt->active[i].rd = 0;
		gt->active[i].wr = 0;
	}
	gt->st->pins = 0;
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

void hvd_gt_recount_end(struct hvd_gt *gt)
{
	for (uint32_t i = 0; i < gt->nr_entries; i++) {
		const struct hvd_gt_active *act = &gt->active[i];
		uint16_t f = __atomic_load_n(&gt->shared[i].flags, __ATOMIC_RELAXED);
		uint16_t bits = 0;

		if (!act->wr)
			bits |= GTF_writing;
		if (!act->rd && !act->wr)
			bits |= GTF_reading;
		if (f & bits)
			clear_flags(gt, i, bits);
	}
	__atomic_store_n(&gt->st->rebuild, 0, __ATOMIC_RELAXED);
}

/* Under the lock: plain updates (the lock orders them between processes). */
static void count_pin(struct hvd_gt *gt, struct hvd_gt_active *act, bool readonly, int d)
{
	if (readonly)
		act->rd = (uint8_t)(act->rd + d);
	else
		act->wr = (uint8_t)(act->wr + d);
	gt->st->pins += (uint32_t)d;
}

/* Set GTF_reading (and GTF_writing) in the shared entry, checking it on the
 * way unless it is already pinned (then the active entry is the truth). */
static SEG_INLINE int16_t set_status(struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid,
				     bool readonly, bool mapflag, bool pinned)
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

int16_t hvd_gt_check(const struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid, bool readonly)
{
	union gt_combo cur;

	if (ref >= gt->nr_entries)
		return GNTST_bad_gntref;
	if (__atomic_load_n(&gt->st->dead, __ATOMIC_RELAXED))
		return GNTST_bad_domain;
	cur.raw = __atomic_load_n((const uint32_t *)(const void *)&gt->shared[ref], __ATOMIC_ACQUIRE);
	if ((cur.f.flags & GTF_type_mask) != GTF_permit_access || cur.f.domid != ldomid ||
	    (!readonly && (cur.f.flags & GTF_readonly)))
		return GNTST_general_error;
	if (!gt->mem || __atomic_load_n(&gt->shared[ref].frame, __ATOMIC_RELAXED) >= gt->mem_pages)
		return GNTST_bad_page;
	return GNTST_okay;
}

static SEG_INLINE int16_t pin_locked(struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid,
				     bool readonly, bool mapflag, uint32_t *frame)
{
	struct hvd_gt_active *act;
	bool pinned;
	int16_t rc;

	if (ref >= gt->nr_entries)
		return GNTST_bad_gntref;
	if (__atomic_load_n(&gt->st->dead, __ATOMIC_RELAXED))
		return GNTST_bad_domain;
	act = &gt->active[ref];
	pinned = act->rd || act->wr;
	/* The active entry is shared with dom0's processes: its frame is
	 * checked again before anybody uses it. */
	if (pinned && (act->domid != ldomid || ((act->rd | act->wr) & PIN_OVERFLOW) ||
		       act->frame >= gt->mem_pages))
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
	count_pin(gt, act, readonly, 1);
	*frame = act->frame;
	return GNTST_okay;
}

static SEG_INLINE void unpin_locked(struct hvd_gt *gt, grant_ref_t ref, bool readonly)
{
	struct hvd_gt_active *act = &gt->active[ref];
	/* Counts read once into registers: reading both bytes back as one
	 * word right after storing one of them cannot be forwarded from the
	 * store buffer and waits for the copy's 4 KiB of stores to drain. */
	uint8_t rd = act->rd, wr = act->wr;
	uint16_t bits = 0;

	if (!(readonly ? rd : wr))
		return; /* recounted meanwhile (a holder died): nothing to drop */
	if (readonly)
		act->rd = --rd;
	else
		act->wr = --wr;
	gt->st->pins--;
	if (!readonly && !wr)
		bits |= GTF_writing;
	if (!rd && !wr)
		bits |= GTF_reading;
	clear_flags(gt, ref, bits);
}

int16_t hvd_gt_pin(struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid, bool readonly,
		   bool mapflag, uint32_t *frame)
{
	int16_t rc;

	if (!gt->autolock)
		return pin_locked(gt, ref, ldomid, readonly, mapflag, frame);
	if (hvd_gt_lock(gt, LOCK_MS) < 0)
		return GNTST_general_error; /* a dom0 process sits on the lock */
	rc = pin_locked(gt, ref, ldomid, readonly, mapflag, frame);
	hvd_gt_unlock(gt);
	return rc;
}

void hvd_gt_unpin(struct hvd_gt *gt, grant_ref_t ref, bool readonly)
{
	if (!gt->autolock) {
		unpin_locked(gt, ref, readonly);
		return;
	}
	if (hvd_gt_lock(gt, LOCK_MS) < 0) {
		/* A stopped dom0 process holds the lock. The caller forgets
		 * this mapping now; the pins are recounted from the mappings
		 * left the next time the lock is taken. */
		__atomic_store_n(&gt->st->rebuild, 1, __ATOMIC_RELAXED);
		return;
	}
	unpin_locked(gt, ref, readonly);
	hvd_gt_unlock(gt);
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
		/* Cleared once unpinned: a recount meeting this table half
		 * torn down (at a later unpin's lock) must not count it. */
		m->gt = NULL;
		m->flags = 0;
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

void hvd_mt_repin(const struct hvd_maptrack *mt, struct hvd_gt *gt)
{
	for (uint32_t h = 0; h < mt->cap; h++) {
		const struct hvd_map *m = &mt->e[h];
		if (m->flags && m->gt == gt)
			count_pin(gt, &gt->active[m->ref], m->flags & GNTMAP_readonly, 1);
	}
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
	bool locked;         /* we took gt's lock (the daemon; a dom0 process holds it already) */
	bool pinned;         /* a grant pin to release */
	grant_ref_t ref;
	uint32_t frame;
};

/* Find the side's domain; a grant side's lock is held from its pin to its
 * unpin, so that a recount never meets a copy in flight. */
static SEG_INLINE int16_t copy_lock(hvd_gt_lookup_fn lookup, void *ctx,
				    const struct gnttab_copy_ptr *p, bool is_gref,
				    struct copy_side *s, const struct copy_side *other)
{
	if (p->domid != DOMID_SELF && !is_gref)
		return GNTST_permission_denied;
	s->gt = lookup(ctx, p->domid);
	if (!s->gt)
		return GNTST_bad_domain;
	if (is_gref && s->gt->autolock && !(other && other->locked && other->gt == s->gt)) {
		if (hvd_gt_lock(s->gt, LOCK_MS) < 0)
			return GNTST_general_error; /* a dom0 process sits on the lock */
		s->locked = true;
	}
	return GNTST_okay;
}

static SEG_INLINE int16_t copy_claim(const struct gnttab_copy_ptr *p, bool is_gref,
				     bool readonly, domid_t ldomid, struct copy_side *s)
{
	if (is_gref) {
		int16_t rc = pin_locked(s->gt, p->u.ref, ldomid, readonly, false, &s->frame);
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

static SEG_INLINE void copy_release(struct copy_side *s, bool readonly)
{
	if (s->pinned)
		unpin_locked(s->gt, s->ref, readonly);
	s->pinned = false;
	if (s->locked)
		hvd_gt_unlock(s->gt);
	s->locked = false;
}

/* Find, lock and pin both sides of a segment and check its bounds. On
 * failure nothing is left pinned or locked. */
static SEG_INLINE int16_t copy_acquire(hvd_gt_lookup_fn lookup, void *ctx, struct hvd_gt *self,
				       const struct gnttab_copy *op, struct copy_side *src,
				       struct copy_side *dst)
{
	bool src_gref = op->flags & GNTCOPY_source_gref, dst_gref = op->flags & GNTCOPY_dest_gref;
	int16_t rc;

	*src = (struct copy_side){ 0 };
	*dst = (struct copy_side){ 0 };
	rc = copy_lock(lookup, ctx, &op->source, src_gref, src, NULL);
	if (rc == GNTST_okay)
		rc = copy_lock(lookup, ctx, &op->dest, dst_gref, dst, src);
	if (rc == GNTST_okay)
		rc = copy_claim(&op->source, src_gref, true, self->domid, src);
	if (rc == GNTST_okay)
		rc = copy_claim(&op->dest, dst_gref, false, self->domid, dst);
	if (rc == GNTST_okay &&
	    ((unsigned)op->source.offset + op->len > PV_PAGE_SIZE ||
	     (unsigned)op->dest.offset + op->len > PV_PAGE_SIZE))
		rc = GNTST_bad_copy_arg;
	if (rc != GNTST_okay) {
		copy_release(dst, false);
		copy_release(src, true);
	}
	return rc;
}

static void copy_move(const struct gnttab_copy *op, const struct copy_side *src,
		      const struct copy_side *dst)
{
	memmove(dst->gt->mem + ((size_t)dst->frame << PV_PAGE_SHIFT) + op->dest.offset,
		src->gt->mem + ((size_t)src->frame << PV_PAGE_SHIFT) + op->source.offset,
		op->len);
}

int16_t hvd_gt_copy(hvd_gt_lookup_fn lookup, void *ctx, struct hvd_gt *self,
		    const struct gnttab_copy *op)
{
	struct copy_side src, dst;
	int16_t rc = copy_acquire(lookup, ctx, self, op, &src, &dst);

	if (rc == GNTST_okay) {
		copy_move(op, &src, &dst);
		copy_release(&dst, false);
		copy_release(&src, true);
	}
	return rc;
}
