/*
 * The granting side: this domain's grant table (grant_entry_v1_t array in a
 * memfd shared with the hypervisor), written as Linux's gnttab v1 code does.
 * Granting: domid and frame, write barrier, then flags. Ending access: a
 * compare-and-swap of flags to 0 that fails while the hypervisor has
 * GTF_reading/GTF_writing set — the XSA-396 rule: a page whose grant is still
 * mapped is never freed or reused (pv_gntshr_unshare keeps everything then).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/hv_internal.h"

struct pv_gntshr {
	grant_entry_v1_t *tab;
	uint32_t nr;
	pthread_mutex_t lock;   /* the free-ref stack and `taken` */
	uint32_t *free;         /* stack of free refs, lowest on top */
	uint32_t nfree;
	uint8_t *taken;         /* per ref: allocated */
};

struct pv_gntshr *pv_gntshr_open(struct pv_hv *hv)
{
	struct pv_gntshr *gs;
	uint32_t nr;
	void *p;
	int fd, r;

	r = pv_hv_get_fd(hv, HVP_GT_SETUP, 0, &fd, &nr);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	/* The table must exist whole and stay so (a reply may overstate it),
	 * checked before anything is sized by it. */
	if (nr <= GNTTAB_NR_RESERVED_ENTRIES || nr > HVP_MAX_GRANT_FRAMES * (PV_PAGE_SIZE / sizeof(grant_entry_v1_t)) ||
	    !pv_fd_covers(fd, (uint64_t)nr * sizeof(grant_entry_v1_t))) {
		errno = EPROTO;
		gs = NULL;
		goto fail;
	}
	gs = calloc(1, sizeof(*gs));
	if (gs) {
		gs->free = calloc(nr, sizeof(*gs->free));
		gs->taken = calloc(nr, 1);
	}
	if (!gs || !gs->free || !gs->taken) {
		errno = ENOMEM;
		goto fail;
	}
	p = mmap(NULL, (size_t)nr * sizeof(grant_entry_v1_t), PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	close(fd);
	gs->tab = p;
	gs->nr = nr;
	for (uint32_t ref = nr; ref-- > GNTTAB_NR_RESERVED_ENTRIES;)
		gs->free[gs->nfree++] = ref;
	pthread_mutex_init(&gs->lock, NULL);
	return gs;
fail:
	r = errno ? errno : EPROTO;
	close(fd);
	if (gs) {
		free(gs->free);
		free(gs->taken);
		free(gs);
	}
	errno = r;
	return NULL;
}

void pv_gntshr_close(struct pv_gntshr *gs)
{
	if (!gs)
		return;
	munmap(gs->tab, (size_t)gs->nr * sizeof(grant_entry_v1_t));
	pthread_mutex_destroy(&gs->lock);
	free(gs->free);
	free(gs->taken);
	free(gs);
}

uint32_t pv_gntshr_nr_entries(const struct pv_gntshr *gs) { return gs->nr; }

int pv_gnttab_alloc_refs(struct pv_gntshr *gs, unsigned count, grant_ref_t *refs)
{
	int r = 0;

	pthread_mutex_lock(&gs->lock);
	if (count > gs->nfree) {
		r = -ENOSPC;
	} else {
		for (unsigned i = 0; i < count; i++) {
			refs[i] = gs->free[--gs->nfree];
			gs->taken[refs[i]] = 1;
		}
	}
	pthread_mutex_unlock(&gs->lock);
	return r;
}

void pv_gnttab_free_refs(struct pv_gntshr *gs, unsigned count, const grant_ref_t *refs)
{
	pthread_mutex_lock(&gs->lock);
	for (unsigned i = 0; i < count; i++) {
		if (refs[i] < GNTTAB_NR_RESERVED_ENTRIES || refs[i] >= gs->nr || !gs->taken[refs[i]])
			continue; /* never handed out: ignore */
		gs->taken[refs[i]] = 0;
		gs->free[gs->nfree++] = refs[i];
	}
	pthread_mutex_unlock(&gs->lock);
}

void pv_gnttab_grant_foreign_access_ref(struct pv_gntshr *gs, grant_ref_t ref, domid_t domid,
					uint32_t frame, bool readonly)
{
	grant_entry_v1_t *e;

	if (ref >= gs->nr)
		return;
	e = &gs->tab[ref];
	__atomic_store_n(&e->domid, domid, __ATOMIC_RELAXED);
	__atomic_store_n(&e->frame, frame, __ATOMIC_RELAXED);
	wmb();
	__atomic_store_n(&e->flags, (uint16_t)(GTF_permit_access | (readonly ? GTF_readonly : 0)),
			 __ATOMIC_RELEASE);
}

int64_t pv_gnttab_grant_foreign_access(struct pv_gntshr *gs, domid_t domid, uint32_t frame,
				       bool readonly)
{
	grant_ref_t ref;
	int r = pv_gnttab_alloc_refs(gs, 1, &ref);

	if (r < 0)
		return r;
	pv_gnttab_grant_foreign_access_ref(gs, ref, domid, frame, readonly);
	return ref;
}

int pv_gnttab_end_foreign_access_ref(struct pv_gntshr *gs, grant_ref_t ref)
{
	uint16_t flags;

	if (ref >= gs->nr)
		return -EINVAL;
	flags = __atomic_load_n(&gs->tab[ref].flags, __ATOMIC_ACQUIRE);
	do {
		if (flags & (GTF_reading | GTF_writing))
			return -EBUSY;
	} while (!__atomic_compare_exchange_n(&gs->tab[ref].flags, &flags, 0, false,
					      __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
	return 0;
}

uint16_t pv_gnttab_query_flags(const struct pv_gntshr *gs, grant_ref_t ref)
{
	return ref < gs->nr ? __atomic_load_n(&gs->tab[ref].flags, __ATOMIC_ACQUIRE) : 0;
}

void *pv_gntshr_share_pages(struct pv_gntshr *gs, struct pv_pagealloc *pa, domid_t domid,
			    unsigned count, grant_ref_t *refs, bool writable)
{
	int64_t frame;
	int r;

	if (count == 0) {
		errno = EINVAL;
		return NULL;
	}
	frame = pv_page_alloc(pa, count);
	if (frame < 0) {
		errno = (int)-frame;
		return NULL;
	}
	r = pv_gnttab_alloc_refs(gs, count, refs);
	if (r < 0) {
		pv_page_free(pa, (uint32_t)frame, count);
		errno = -r;
		return NULL;
	}
	for (unsigned i = 0; i < count; i++)
		pv_gnttab_grant_foreign_access_ref(gs, refs[i], domid, (uint32_t)frame + i, !writable);
	return pv_page_addr(pa, (uint32_t)frame);
}

int pv_gntshr_unshare(struct pv_gntshr *gs, struct pv_pagealloc *pa, void *start,
		      unsigned count, const grant_ref_t *refs)
{
	int64_t frame = pv_page_frame(pa, start);
	uint16_t *was;
	int r = 0;

	if (frame < 0)
		return -EINVAL;
	for (unsigned i = 0; i < count; i++)
		if (refs[i] >= gs->nr)
			return -EINVAL;
	was = malloc(count * sizeof(*was) + 1);
	if (!was)
		return -ENOMEM;
	for (unsigned i = 0; i < count; i++) {
		was[i] = __atomic_load_n(&gs->tab[refs[i]].flags, __ATOMIC_ACQUIRE);
		r = pv_gnttab_end_foreign_access_ref(gs, refs[i]);
		if (r == 0)
			continue;
		/* Still mapped: grant back what was ended (domid and frame are
		 * still in the entries), free nothing. */
		while (i-- > 0)
			__atomic_store_n(&gs->tab[refs[i]].flags,
					 (uint16_t)(was[i] & ~(GTF_reading | GTF_writing)),
					 __ATOMIC_RELEASE);
		break;
	}
	free(was);
	if (r < 0)
		return r;
	pv_gnttab_free_refs(gs, count, refs);
	pv_page_free(pa, (uint32_t)frame, count);
	return 0;
}
