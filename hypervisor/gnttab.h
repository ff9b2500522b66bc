/*
 * hypervisor/gnttab.h — grant tables, version 1, both sides.
 *
 * Granting side (pv_gntshr, shaped like the guest kernel's gnttab API and
 * libxengntshr): the domain's grant table is an array of the real
 * grant_entry_v1_t (xen/grant_table.h) in memory shared with the hypervisor.
 * Granting writes domid and frame, then a write barrier, then flags. Ending
 * access is a compare-and-swap on flags that fails (-EBUSY) while the
 * hypervisor has set GTF_reading/GTF_writing for a live mapping, exactly as on
 * Xen. Refs 0..7 are reserved (GNTTAB_NR_RESERVED_ENTRIES) and never handed out.
 *
 * Mapping side (pv_gnttab, shaped like libxengnttab and GNTTABOP_map/unmap/
 * copy): every operation is validated by the hypervisor against the granter's
 * table (granting domain exists, ref in range, GTF_permit_access, entry domid
 * is the caller, no writable map of a GTF_readonly entry, frame in range) and
 * answers per operation with the real GNTST_* codes. A mapping gives a pointer
 * into the caller's view of the granter's memory: read-write grants in a RW
 * view, read-only grants in a PROT_READ view.
 *
 * Trust model (docs/hypervisor.md): a mapping process holds a view of the whole
 * memory of the domain it maps from; the hypervisor enforces every grant rule
 * on map/unmap/copy, but only protocol (not the MMU) keeps a backend to the
 * pages it was granted. Revocation replaces the views with inaccessible memory
 * when the hypervisor reports the granter gone (pv_hv notices).
 *
 * Thread: one handle per thread (each pv_gnttab has its own connection). The
 * pv_gntshr grant/end calls are lock-free per ref and may be called from any
 * thread; ref allocation is internally locked.
 * Errors: -errno for the call; per-op status holds GNTST_* (int16).
 */
#ifndef PVNET_HYPERVISOR_GNTTAB_H
#define PVNET_HYPERVISOR_GNTTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "common/xen.h"
#include "hypervisor/hv.h"

/* ---- granting side -------------------------------------------------------- */

struct pv_gntshr;
/* Maps the domain's grant table (through `hv`, which must stay open while the
 * handle is used; after a move, open a new handle on the new connection). */
struct pv_gntshr *pv_gntshr_open(struct pv_hv *hv);
void pv_gntshr_close(struct pv_gntshr *gs);
uint32_t pv_gntshr_nr_entries(const struct pv_gntshr *gs);

/* Allocate `count` free refs (>= 8) into refs[]; 0 or -ENOSPC (none taken). */
int pv_gnttab_alloc_refs(struct pv_gntshr *gs, unsigned count, grant_ref_t *refs);
void pv_gnttab_free_refs(struct pv_gntshr *gs, unsigned count, const grant_ref_t *refs);
/* Fill entry `ref`: domid, frame, wmb, flags = permit_access [| readonly]. */
void pv_gnttab_grant_foreign_access_ref(struct pv_gntshr *gs, grant_ref_t ref,
					domid_t domid, uint32_t frame, bool readonly);
/* Allocate a ref and grant it; returns the ref or -errno. */
int64_t pv_gnttab_grant_foreign_access(struct pv_gntshr *gs, domid_t domid,
				       uint32_t frame, bool readonly);
/* CAS flags -> 0 unless GTF_reading|GTF_writing: 0, or -EBUSY if mapped. The
 * ref stays allocated either way. */
int pv_gnttab_end_foreign_access_ref(struct pv_gntshr *gs, grant_ref_t ref);
/* Current flags of an entry (for tests and diagnostics). */
uint16_t pv_gnttab_query_flags(const struct pv_gntshr *gs, grant_ref_t ref);

/* libxengntshr shape: allocate `count` contiguous pages from `pa`, grant each
 * to `domid`, return their address and fill refs[]. NULL + errno on failure. */
struct pv_pagealloc;
void *pv_gntshr_share_pages(struct pv_gntshr *gs, struct pv_pagealloc *pa, domid_t domid,
			    unsigned count, grant_ref_t *refs, bool writable);
/* End access and free; -EBUSY (nothing freed) if any page is still mapped. */
int pv_gntshr_unshare(struct pv_gntshr *gs, struct pv_pagealloc *pa, void *start,
		      unsigned count, const grant_ref_t *refs);

/* ---- mapping side -------------------------------------------------------- */

struct pv_gnttab;
struct pv_gnttab *pv_gnttab_open(const char *hv_path);
void pv_gnttab_close(struct pv_gnttab *gt);
/* Readable when notices are queued (see pv_hv_fd); pv_gnttab_poll_notices()
 * applies revocations to the views and returns them. */
int pv_gnttab_fd(const struct pv_gnttab *gt);
int pv_gnttab_poll_notices(struct pv_gnttab *gt, struct pv_notice *out, unsigned max);

#define PV_GNTMAP_readonly GNTMAP_readonly

struct pv_gnttab_map_op {
	uint32_t domid;      /* in: granting domain */
	grant_ref_t ref;     /* in */
	uint32_t flags;      /* in: PV_GNTMAP_readonly or 0 */
	int16_t status;      /* out: GNTST_* */
	uint32_t handle;     /* out: pass to unmap */
	void *addr;          /* out: start of the granted page in our view */
};
/* GNTTABOP_map_grant_ref for `count` ops in one round trip (per 256). 0 if the
 * batch was processed (check each status; if a later chunk of 256 could not
 * be sent, its ops say GNTST_general_error), -errno if nothing was mapped.
 * A grant mapped twice gives the same address twice (one page, one view). */
int pv_gnttab_map_batch(struct pv_gnttab *gt, unsigned count, struct pv_gnttab_map_op *ops);
/* GNTTABOP_unmap_grant_ref; status[i] gets GNTST_okay or GNTST_bad_handle.
 * A handle whose mapping was revoked (granter destroyed or moved) unmaps
 * with GNTST_okay once, which releases it. */
int pv_gnttab_unmap_batch(struct pv_gnttab *gt, unsigned count, const uint32_t *handles,
			  int16_t *status);

/* libxengnttab shape: map one grant; NULL + errno: EPERM (general_error: not
 * granted to us, or a writable map of a read-only grant), ESRCH (bad_domain),
 * EINVAL (bad_gntref), ENOSPC (no_space), EFAULT (bad_page), or the errno of
 * the call. Meant for a few long-lived mappings (rings); the data path uses
 * the batch calls. */
void *pv_gnttab_map_grant_ref(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref, int prot);
/* Unmap what pv_gnttab_map_grant_ref returned (count must be 1). */
int pv_gnttab_unmap(struct pv_gnttab *gt, void *addr, uint32_t count);

/* GNTTABOP_copy. A side is a foreign grant when its PV_GNTCOPY_*_gref flag is
 * set, else a pointer into the caller's own I/O memory (pv_hv_map_own_memory,
 * registered with pv_gnttab_set_own_memory; any other pointer gives
 * GNTST_bad_page). Neither side may cross a 4 KiB page (GNTST_bad_copy_arg).
 * The hypervisor copies (one round trip per 256 segments), or, for dom0,
 * this process does under the granter's grant lock (below). */
#define PV_GNTCOPY_source_gref GNTCOPY_source_gref
#define PV_GNTCOPY_dest_gref   GNTCOPY_dest_gref
struct pv_gnttab_copy_seg {
	union {
		struct { grant_ref_t ref; uint16_t offset; uint16_t domid; } foreign;
		void *virt;
	} source, dest;
	uint16_t len;
	uint16_t flags;
	int16_t status;  /* out: GNTST_* */
};
int pv_gnttab_grant_copy(struct pv_gnttab *gt, unsigned count, struct pv_gnttab_copy_seg *segs);
/* The caller's own memory must be registered once for copies. */
int pv_gnttab_set_own_memory(struct pv_gnttab *gt, void *base, size_t npages);
/* dom0 (and only dom0) copies in-process when every segment of a chunk has
 * one grant side, all of one granting domain, and its own memory on the
 * other: the hypervisor hands over that domain's grant table, grant state and
 * memory once (GT_ATTACH), and the checks and pins of gnttab_core.c run here
 * under the granter's grant lock, shared with the hypervisor (docs/
 * hypervisor.md, "Grant copy in dom0"). Anything else goes to the hypervisor.
 * How many segments were copied in-process so far: */
uint64_t pv_gnttab_local_copies(const struct pv_gnttab *gt);
/* dom0, attached to granter `domid` (it has copied in-process): has the
 * hypervisor marked it ended (destroyed or moved)? One load from the grant
 * state, no call: it says so before the notices that revoke our mappings
 * arrive, and a moved guest's memory is the same memory on its new host,
 * where its pages are soon reused: a backend checks before it writes
 * through a mapping of that domain (ring responses). false when not
 * attached or not known. */
bool pv_gnttab_granter_gone(const struct pv_gnttab *gt, uint32_t domid);
/* Off: every copy goes to the hypervisor, as a driver domain's would (a
 * domU cannot copy in-process), and pv_gnttab_grant_check() cannot tell.
 * On by default; only dom0 ever copies in-process. */
void pv_gnttab_set_local(struct pv_gnttab *gt, bool on);
/* dom0: what a copy from (or, `write`, into) grant `ref` of `domid` would
 * answer now, from one read of the granter's table, nothing pinned:
 * advisory (the granter may change the entry before the copy, which then
 * fails). GNTST_okay when this process cannot tell (not dom0). For a
 * backend that must know before it commits data (netback's rx buffers). */
int16_t pv_gnttab_grant_check(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref, bool write);

/* Test hooks (dom0): take granter `domid`'s grant lock, attaching first,
 * and when `ref` != UINT32_MAX pin it for reading as a copy does; 0 or
 * -errno. Held until pv_gnttab_test_unlock(), or until the process dies. */
int pv_gnttab_test_lock(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref);
void pv_gnttab_test_unlock(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref);

#endif
