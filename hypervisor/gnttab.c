/*
 * The mapping side (libxengnttab shape). The hypervisor validates every map,
 * unmap and copy; a mapping is a pointer into our view of the granter's
 * memory. Views: the first successful map of a granting domain's grant makes
 * the hypervisor pass that domain's memfd once; we map it twice, a PROT_READ
 * view for read-only grants and a read-write view. When the hypervisor says
 * the granter is gone (MAPPINGS_REVOKED, applied whenever notices are
 * processed: pv_gnttab_poll_notices() and before any call returns), both
 * views are replaced in place by PROT_NONE memory, so a stale pointer faults
 * instead of reaching a guest that moved on; the reservations are released
 * only when the handle is closed, so those addresses are never reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/client.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/gnttab_core.h"

struct view {
	uint32_t domid;
	uint32_t incarnation;
	uint8_t *ro, *rw;
	size_t len;
};

/* A granting domain's grant table, grant state and memory, for copies done
 * here (dom0 only; docs/hypervisor.md "Grant copy in dom0"), or (`failed`,
 * nothing mapped) a domain whose attach failed: not asked again, so that a
 * copy or check does not pay a round trip for it each time. */
struct attach {
	uint32_t domid;
	bool failed;
	struct hvd_gt gt;
	void *table, *state;
	size_t table_len, state_len, mem_len;
};

struct single {          /* a pv_gnttab_map_grant_ref() mapping */
	void *addr;
	uint32_t handle;
};

struct pv_gnttab {
	struct hvc c;
	struct view *views;
	unsigned nviews, cap_views;
	struct { void *p; size_t len; } *dead;   /* PROT_NONE reservations */
	unsigned ndead, cap_dead;
	struct single *singles;
	unsigned nsingles, cap_singles;
	uint8_t *own;
	size_t own_pages;
	struct attach *att;
	unsigned natt, cap_att;
	bool no_local;           /* the hypervisor refused GT_ATTACH: never ask again */
	bool local_off;          /* pv_gnttab_set_local(false) */
	uint64_t local_copies;
	union {
		struct gnttab_map_grant_ref map[HVP_MAX_BATCH];
		struct gnttab_unmap_grant_ref unmap[HVP_MAX_BATCH];
		struct gnttab_copy copy[HVP_MAX_BATCH];
	} scratch;
};

static int grow(void **arr, unsigned *cap, size_t elem)
{
	unsigned ncap = *cap ? *cap * 2 : 8;
	void *p = realloc(*arr, ncap * elem);

	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Make a view inaccessible in place and keep the reservation. */
static void retire_view(struct pv_gnttab *gt, unsigned i)
{
	struct view *v = &gt->views[i];
	uint8_t *maps[2] = { v->ro, v->rw };

	for (int k = 0; k < 2; k++) {
		void *p = mmap(maps[k], v->len, PROT_NONE,
			       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			munmap(maps[k], v->len); /* last resort: at least no access */
			continue;
		}
		if (gt->ndead == gt->cap_dead &&
		    grow((void **)&gt->dead, &gt->cap_dead, sizeof(*gt->dead)) < 0)
			continue; /* leaked reservation, never reused: still safe */
		gt->dead[gt->ndead].p = p;
		gt->dead[gt->ndead++].len = v->len;
	}
	gt->views[i] = gt->views[--gt->nviews];
}

static struct view *find_view(struct pv_gnttab *gt, uint32_t domid)
{
	for (unsigned i = 0; i < gt->nviews; i++)
		if (gt->views[i].domid == domid)
			return &gt->views[i];
	return NULL;
}

static void apply_notice(void *owner, const struct hvp_notice *n)
{
	struct pv_gnttab *gt = owner;

	if (n->type != PV_NOTICE_MAPPINGS_REVOKED)
		return;
	for (unsigned i = 0; i < gt->nviews; i++) {
		if (gt->views[i].domid == n->domid && gt->views[i].incarnation == n->incarnation) {
			retire_view(gt, i);
			return;
		}
	}
}

static void detach(struct pv_gnttab *gt, unsigned i)
{
	struct attach *a = &gt->att[i];

	if (!a->failed) {
		munmap(a->table, a->table_len);
		munmap(a->state, a->state_len);
		munmap(a->gt.mem, a->mem_len);
	}
	gt->att[i] = gt->att[--gt->natt];
}

struct pv_gnttab *pv_gnttab_open(const char *hv_path)
{
	struct pv_gnttab *gt = calloc(1, sizeof(*gt));
	int r;

	if (!gt) {
		errno = ENOMEM;
		return NULL;
	}
	r = hvc_open(&gt->c, hv_path, 0);
	if (r < 0) {
		free(gt);
		errno = -r;
		return NULL;
	}
	gt->c.apply = apply_notice;
	gt->c.owner = gt;
	return gt;
}

void pv_gnttab_close(struct pv_gnttab *gt)
{
	if (!gt)
		return;
	hvc_close(&gt->c); /* the hypervisor unmaps everything we held */
	while (gt->nviews) {
		munmap(gt->views[0].ro, gt->views[0].len);
		munmap(gt->views[0].rw, gt->views[0].len);
		gt->views[0] = gt->views[--gt->nviews];
	}
	for (unsigned i = 0; i < gt->ndead; i++)
		munmap(gt->dead[i].p, gt->dead[i].len);
	while (gt->natt)
		detach(gt, 0);
	free(gt->att);
	free(gt->views);
	free(gt->dead);
	free(gt->singles);
	free(gt);
}

int pv_gnttab_fd(const struct pv_gnttab *gt) { return gt->c.notice_fd; }

int pv_gnttab_poll_notices(struct pv_gnttab *gt, struct pv_notice *out, unsigned max)
{
	return hvc_poll_notices(&gt->c, out, max);
}

int pv_gnttab_set_own_memory(struct pv_gnttab *gt, void *base, size_t npages)
{
	if (!base || !npages)
		return -EINVAL;
	gt->own = base;
	gt->own_pages = npages;
	return 0;
}

/* Install the views a map reply carried (fds in the same order). */
static void install_views(struct pv_gnttab *gt, const struct hvp_view *w, unsigned nv)
{
	for (unsigned i = 0; i < nv; i++) {
		size_t len = (size_t)w[i].mem_pages * PV_PAGE_SIZE;
		int fd = i < gt->c.nfds ? gt->c.fds[i] : -1;
		struct view *old = find_view(gt, w[i].domid), nv_ = { w[i].domid, w[i].incarnation };

		/* The same incarnation again: the daemon has no reason to send
		 * it; keep the view our mappings point into. */
		if (old && old->incarnation == w[i].incarnation)
			continue;
		if (old)  /* an earlier incarnation of that domid: gone */
			retire_view(gt, (unsigned)(old - gt->views));
		if (fd < 0 || len == 0)
			continue;
		/* The view must exist whole (a reply may overstate it). */
		if (!pv_fd_covers(fd, len))
			continue;
		nv_.len = len;
		nv_.ro = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		nv_.rw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (nv_.ro == MAP_FAILED || nv_.rw == MAP_FAILED ||
		    (gt->nviews == gt->cap_views &&
		     grow((void **)&gt->views, &gt->cap_views, sizeof(*gt->views)) < 0)) {
			if (nv_.ro != MAP_FAILED)
				munmap(nv_.ro, len);
			if (nv_.rw != MAP_FAILED)
				munmap(nv_.rw, len);
			continue;
		}
		gt->views[gt->nviews++] = nv_;
	}
	hvc_drop_fds(&gt->c);
}

/* Map up to HVP_MAX_BATCH ops; returns how many the hypervisor processed. */
static int map_chunk(struct pv_gnttab *gt, unsigned count, struct pv_gnttab_map_op *ops)
{
	struct gnttab_map_grant_ref *w = gt->scratch.map;
	struct hvc_req rq = { .op = HVP_MAP, .count = count, .payload = w,
			      .len = count * sizeof(*w), .fd = -1 };
	struct hvp_view views[HVP_MAX_VIEWS];
	unsigned n, nv, lost = 0;
	int r;

	for (unsigned i = 0; i < count; i++) {
		w[i] = (struct gnttab_map_grant_ref){
			.flags = GNTMAP_host_map | (ops[i].flags & GNTMAP_readonly),
			.ref = ops[i].ref,
			.dom = ops[i].domid < DOMID_FIRST_RESERVED ? (domid_t)ops[i].domid
								  : DOMID_INVALID };
	}
	r = hvc_call(&gt->c, &rq);
	if (r < 0) {
		hvc_drop_fds(&gt->c);
		return r;
	}
	n = gt->c.rep.count;
	nv = gt->c.rep.arg[0];
	if (n > count || n == 0 || nv > HVP_MAX_VIEWS ||
	    gt->c.rep_len != n * sizeof(*w) + nv * sizeof(views[0])) {
		hvc_drop_fds(&gt->c);
		return -EPROTO;
	}
	memcpy(w, gt->c.rep_payload, n * sizeof(*w));
	memcpy(views, gt->c.rep_payload + n * sizeof(*w), nv * sizeof(views[0]));
	install_views(gt, views, nv);
	for (unsigned i = 0; i < n; i++) {
		struct view *v = w[i].status == GNTST_okay ? find_view(gt, ops[i].domid) : NULL;
		uint64_t off = w[i].dev_bus_addr;

		ops[i].status = w[i].status;
		ops[i].handle = w[i].handle;
		ops[i].addr = NULL;
		if (w[i].status != GNTST_okay)
			continue;
		if (!v || off % PV_PAGE_SIZE || off >= v->len || v->len - off < PV_PAGE_SIZE) {
			/* No view to point into (out of address space): undo. */
			gt->scratch.unmap[lost++].handle = w[i].handle;
			ops[i].status = GNTST_no_space;
			continue;
		}
		ops[i].addr = ((ops[i].flags & GNTMAP_readonly) ? v->ro : v->rw) + off;
	}
	if (lost) {
		struct hvc_req u = { .op = HVP_UNMAP, .count = lost, .payload = gt->scratch.unmap,
				     .len = lost * sizeof(gt->scratch.unmap[0]), .fd = -1 };
		(void)hvc_call(&gt->c, &u);
		hvc_drop_fds(&gt->c);
	}
	return (int)n;
}

/* End of a processed batch (each op's status says how it went): notices are
 * applied, but failing to fetch them now must not hide the batch from the
 * caller (mappings it was not told of would be lost); the next call meets the
 * failure again. */
static int batch_done(struct pv_gnttab *gt)
{
	(void)hvc_sync(&gt->c);
	return 0;
}

int pv_gnttab_map_batch(struct pv_gnttab *gt, unsigned count, struct pv_gnttab_map_op *ops)
{
	unsigned done = 0;

	while (done < count) {
		int n = map_chunk(gt, PV_MIN(count - done, HVP_MAX_BATCH), ops + done);
		if (n < 0 && done == 0)
			return n;
		if (n < 0) {
			/* Earlier chunks are mapped: say the rest failed, so
			 * the caller still unmaps what it holds. */
			for (; done < count; done++) {
				ops[done].status = GNTST_general_error;
				ops[done].addr = NULL;
			}
			break;
		}
		done += (unsigned)n;
	}
	return batch_done(gt);
}

int pv_gnttab_unmap_batch(struct pv_gnttab *gt, unsigned count, const uint32_t *handles,
			  int16_t *status)
{
	struct gnttab_unmap_grant_ref *w = gt->scratch.unmap;

	for (unsigned done = 0; done < count;) {
		unsigned k = PV_MIN(count - done, HVP_MAX_BATCH);
		struct hvc_req rq = { .op = HVP_UNMAP, .count = k, .payload = w,
				      .len = k * sizeof(*w), .fd = -1 };
		int r;

		for (unsigned i = 0; i < k; i++)
			w[i] = (struct gnttab_unmap_grant_ref){ .handle = handles[done + i] };
		r = hvc_call(&gt->c, &rq);
		hvc_drop_fds(&gt->c);
		if (r < 0)
			return r;
		if (gt->c.rep.count != k || gt->c.rep_len != k * sizeof(*w))
			return -EPROTO;
		memcpy(w, gt->c.rep_payload, k * sizeof(*w));
		for (unsigned i = 0; i < k; i++)
			status[done + i] = w[i].status;
		done += k;
	}
	return batch_done(gt);
}

static int gntst_errno(int16_t st)
{
	switch (st) {
	case GNTST_bad_domain:        return ESRCH;
	case GNTST_bad_gntref:        return EINVAL;
	case GNTST_bad_handle:        return EINVAL;
	case GNTST_no_space:          return ENOSPC;
	case GNTST_no_device_space:   return ENOSPC;
	case GNTST_permission_denied: return EACCES;
	case GNTST_bad_page:          return EFAULT;
	case GNTST_eagain:            return EAGAIN;
	default:                      return EPERM;  /* general_error: not yours / readonly */
	}
}

void *pv_gnttab_map_grant_ref(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref, int prot)
{
	struct pv_gnttab_map_op op = { .domid = domid, .ref = ref,
				       .flags = (prot & PROT_WRITE) ? 0 : PV_GNTMAP_readonly };
	int r;

	if (gt->nsingles == gt->cap_singles &&
	    grow((void **)&gt->singles, &gt->cap_singles, sizeof(*gt->singles)) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	r = pv_gnttab_map_batch(gt, 1, &op);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	if (op.status != GNTST_okay) {
		errno = gntst_errno(op.status);
		return NULL;
	}
	gt->singles[gt->nsingles++] = (struct single){ op.addr, op.handle };
	return op.addr;
}

int pv_gnttab_unmap(struct pv_gnttab *gt, void *addr, uint32_t count)
{
	int16_t st;
	int r;

	if (count != 1)
		return -EINVAL;
	for (unsigned i = gt->nsingles; i-- > 0;) {
		if (gt->singles[i].addr != addr)
			continue;
		r = pv_gnttab_unmap_batch(gt, 1, &gt->singles[i].handle, &st);
		if (r < 0)
			return r;
		gt->singles[i] = gt->singles[--gt->nsingles];
		return st == GNTST_okay ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/* A side of a copy: a foreign grant, or a pointer into our own memory. */
static void copy_side(const struct pv_gnttab *gt, struct gnttab_copy_ptr *w, bool gref,
		      const struct pv_gnttab_copy_seg *s, bool source)
{
	if (gref) {
		w->u.ref = source ? s->source.foreign.ref : s->dest.foreign.ref;
		w->domid = source ? s->source.foreign.domid : s->dest.foreign.domid;
		w->offset = source ? s->source.foreign.offset : s->dest.foreign.offset;
		return;
	}
	const uint8_t *p = source ? s->source.virt : s->dest.virt;
	w->domid = DOMID_SELF;
	if (gt->own && p >= gt->own && p < gt->own + gt->own_pages * PV_PAGE_SIZE) {
		size_t off = (size_t)(p - gt->own);
		w->u.gmfn = off / PV_PAGE_SIZE;
		w->offset = (uint16_t)(off % PV_PAGE_SIZE);
	} else {
		w->u.gmfn = ~(xen_pfn_t)0; /* not our memory: the hypervisor says bad_page */
		w->offset = 0;
	}
}

/* Map what GT_ATTACH handed us (fds: table, state, memory). */
static struct attach *attach_install(struct pv_gnttab *gt, const struct hvp_attach *w)
{
	struct attach a = { .domid = w->domid };
	int *fd = gt->c.fds;

	if (gt->c.nfds != 3 || w->nr_entries == 0 ||
	    w->nr_entries > HVP_MAX_GRANT_FRAMES * (PV_PAGE_SIZE / sizeof(grant_entry_v1_t)) ||
	    w->mem_pages == 0 || w->mem_pages > (1u << 20))
		return NULL;
	a.table_len = (size_t)w->nr_entries * sizeof(grant_entry_v1_t);
	a.state_len = hvd_gt_state_size(w->nr_entries);
	a.mem_len = (size_t)w->mem_pages * PV_PAGE_SIZE;
	if (!pv_fd_covers(fd[0], a.table_len) || !pv_fd_covers(fd[1], a.state_len) ||
	    !pv_fd_covers(fd[2], a.mem_len))
		return NULL;
	if (gt->natt == gt->cap_att && grow((void **)&gt->att, &gt->cap_att, sizeof(*gt->att)) < 0)
		return NULL;
	a.table = mmap(NULL, a.table_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd[0], 0);
	a.state = mmap(NULL, a.state_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd[1], 0);
	a.gt.mem = mmap(NULL, a.mem_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd[2], 0);
	if (a.table == MAP_FAILED || a.state == MAP_FAILED || a.gt.mem == MAP_FAILED ||
	    hvd_gt_attach(&a.gt, a.table, w->nr_entries, (domid_t)w->domid, a.state, a.gt.mem,
			  w->mem_pages) < 0) {
		if (a.table != MAP_FAILED)
			munmap(a.table, a.table_len);
		if (a.state != MAP_FAILED)
			munmap(a.state, a.state_len);
		if (a.gt.mem != MAP_FAILED)
			munmap(a.gt.mem, a.mem_len);
		return NULL;
	}
	gt->att[gt->natt] = a;
	return &gt->att[gt->natt++];
}

static struct attach *attach(struct pv_gnttab *gt, uint32_t domid)
{
	struct hvc_req rq = { .op = HVP_GT_ATTACH, .arg = { domid }, .fd = -1 };
	struct hvp_attach w;
	struct attach *a = NULL;
	int r;

	for (unsigned i = 0; i < gt->natt; i++)
		if (gt->att[i].domid == domid)
			return gt->att[i].failed ? NULL : &gt->att[i];
	r = hvc_call(&gt->c, &rq);
	if (r == -EPERM || r == -ENOSYS || r == -EBADMSG)
		gt->no_local = true;  /* not dom0, or an older hypervisor */
	if (r == 0 && gt->c.rep_len == sizeof(w)) {
		memcpy(&w, gt->c.rep_payload, sizeof(w));
		if (w.domid == domid)
			a = attach_install(gt, &w);
	}
	hvc_drop_fds(&gt->c);
	if (!a && !gt->no_local &&
	    (gt->natt < gt->cap_att || grow((void **)&gt->att, &gt->cap_att, sizeof(*gt->att)) == 0))
		gt->att[gt->natt++] = (struct attach){ .domid = domid, .failed = true };
	return a;
}

struct local_ctx {
	struct hvd_gt *self, *granter;
};

static struct hvd_gt *local_lookup(void *ctx, domid_t domid)
{
	struct local_ctx *l = ctx;

	if (domid == DOMID_SELF)
		return l->self;
	return domid == l->granter->domid ? l->granter : NULL;
}

/* Whether this handle may use the granters' tables itself: dom0's, unless
 * the hypervisor refused them or the caller turned it off. */
static bool local_ok(const struct pv_gnttab *gt)
{
	return gt->c.domid == 0 && !gt->no_local && !gt->local_off;
}

/* dom0 copies a chunk itself when every segment has one grant side, all of
 * one granting domain, and our own memory on the other: the grant checks and
 * pins of the hypervisor (gnttab_core.c) run here under the granter's grant
 * lock, shared with the hypervisor. 1 if done (statuses set), 0 if the
 * hypervisor must do it. */
static int copy_local(struct pv_gnttab *gt, unsigned k, struct pv_gnttab_copy_seg *s,
		      const struct gnttab_copy *w)
{
	struct hvd_gt self = { .mem = gt->own, .mem_pages = (uint32_t)gt->own_pages };
	struct local_ctx l = { &self, NULL };
	uint32_t domid = DOMID_INVALID;
	struct attach *a;
	int r;

	if (!local_ok(gt) || !gt->own || gt->own_pages > UINT32_MAX)
		return 0;
	for (unsigned i = 0; i < k; i++) {
		bool sg = w[i].flags & GNTCOPY_source_gref, dg = w[i].flags & GNTCOPY_dest_gref;
		domid_t d = sg ? w[i].source.domid : w[i].dest.domid;

		if (sg == dg || d == 0 || d >= DOMID_FIRST_RESERVED || (i && d != domid))
			return 0;
		domid = d;
	}
	a = attach(gt, domid);
	if (!a)
		return 0;
	r = hvd_gt_lock(&a->gt, 1000);
	if (r < 0)
		return 0;
	if (r == 1 || __atomic_load_n(&a->gt.st->rebuild, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&a->gt.st->dead, __ATOMIC_RELAXED)) {
		/* A holder died (the hypervisor recounts on its next pin) or
		 * the granter is gone: let the hypervisor answer. */
		bool dead = __atomic_load_n(&a->gt.st->dead, __ATOMIC_RELAXED);
		hvd_gt_unlock(&a->gt);
		if (dead)
			detach(gt, (unsigned)(a - gt->att));
		return 0;
	}
	l.granter = &a->gt;
	for (unsigned i = 0; i < k; i++)
		s[i].status = hvd_gt_copy(local_lookup, &l, &self, &w[i]);
	hvd_gt_unlock(&a->gt);
	gt->local_copies += k;
	return 1;
}

bool pv_gnttab_granter_gone(const struct pv_gnttab *gt, uint32_t domid)
{
	for (unsigned i = 0; i < gt->natt; i++)
		if (gt->att[i].domid == domid && !gt->att[i].failed)
			return __atomic_load_n(&gt->att[i].gt.st->dead, __ATOMIC_ACQUIRE);
	return false;
}

uint64_t pv_gnttab_local_copies(const struct pv_gnttab *gt) { return gt->local_copies; }

void pv_gnttab_set_local(struct pv_gnttab *gt, bool on) { gt->local_off = !on; }

int16_t pv_gnttab_grant_check(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref, bool write)
{
	struct attach *a;
	int16_t st;

	if (!local_ok(gt) || domid == 0 || domid >= DOMID_FIRST_RESERVED)
		return GNTST_okay;
	a = attach(gt, domid);
	if (!a)
		return GNTST_okay;
	st = hvd_gt_check(&a->gt, ref, 0, !write);
	if (st == GNTST_bad_domain)
		detach(gt, (unsigned)(a - gt->att));
	return st;
}

int pv_gnttab_test_lock(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref)
{
	struct attach *a = gt->c.domid == 0 ? attach(gt, domid) : NULL;
	uint32_t frame;
	int r;

	if (!a)
		return -ENOENT;
	r = hvd_gt_lock(&a->gt, 1000);
	if (r < 0)
		return r;
	if (ref != UINT32_MAX && hvd_gt_pin(&a->gt, ref, 0, true, false, &frame) != GNTST_okay) {
		hvd_gt_unlock(&a->gt);
		return -EPERM;
	}
	return 0;
}

void pv_gnttab_test_unlock(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref)
{
	for (unsigned i = 0; i < gt->natt; i++) {
		if (gt->att[i].domid != domid || gt->att[i].failed)
			continue;
		if (ref != UINT32_MAX)
			hvd_gt_unpin(&gt->att[i].gt, ref, true);
		hvd_gt_unlock(&gt->att[i].gt);
	}
}

int pv_gnttab_grant_copy(struct pv_gnttab *gt, unsigned count, struct pv_gnttab_copy_seg *segs)
{
	struct gnttab_copy *w = gt->scratch.copy;
	bool remote = false;

	for (unsigned done = 0; done < count;) {
		unsigned k = PV_MIN(count - done, HVP_MAX_BATCH);
		struct hvc_req rq = { .op = HVP_COPY, .count = k, .payload = w,
				      .len = k * sizeof(*w), .fd = -1 };
		struct pv_gnttab_copy_seg *s = segs + done;
		int r;

		for (unsigned i = 0; i < k; i++) {
			memset(&w[i], 0, sizeof(w[i]));
			copy_side(gt, &w[i].source, s[i].flags & GNTCOPY_source_gref, &s[i], true);
			copy_side(gt, &w[i].dest, s[i].flags & GNTCOPY_dest_gref, &s[i], false);
			w[i].len = s[i].len;
			w[i].flags = s[i].flags;
		}
		if (copy_local(gt, k, s, w)) {
			done += k;
			continue;
		}
		remote = true;
		r = hvc_call(&gt->c, &rq);
		hvc_drop_fds(&gt->c);
		if (r < 0)
			return r;
		if (gt->c.rep.count != k || gt->c.rep_len != k * sizeof(int16_t))
			return -EPROTO;
		for (unsigned i = 0; i < k; i++)
			memcpy(&s[i].status, gt->c.rep_payload + i * sizeof(int16_t), sizeof(int16_t));
		done += k;
	}
	return remote ? batch_done(gt) : 0;
}
