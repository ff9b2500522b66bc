/*
 * hypervisor/gnttab_core.h — the hypervisor's grant-table logic (v1), pure.
 *
 * What: GNTTABOP_map_grant_ref, unmap_grant_ref and copy, checked against the
 * granter's shared grant_entry_v1_t array in the order Xen 4.17 checks them
 * and answered with the same GNTST_* codes (docs/hypervisor.md has the table).
 * An active entry per ref holds read and write pin counts plus the frame and
 * domid cached at the first pin, as Xen's active_grant_entry does; the
 * GTF_reading/GTF_writing bits of the shared entry follow the pins, set with a
 * compare-and-swap on the combined flags+domid word (retried 4 times, then
 * "unstable entry") and cleared with an atomic and.
 * Mapping handles live in a maptrack (one per connection) whose entries count
 * against the mapping domain's limit.
 * No sockets, no syscalls: memory in, GNTST_* out.
 * Thread: the daemon's loop thread only; the granter writes the shared entries
 * concurrently from its own process, hence the atomics on shared memory.
 * Errors: GNTST_* per operation; init functions return 0 or -errno.
 * Ownership: a hvd_gt owns its active array, not the shared entries nor the
 * memory it points at (the caller maps and unmaps those).
 */
#ifndef PVNET_HYPERVISOR_GNTTAB_CORE_H
#define PVNET_HYPERVISOR_GNTTAB_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/xen.h"

/* Pin counts are 8 bits in Xen; a new pin is refused once one reaches 0x80. */
struct hvd_gt_active {
	uint32_t frame;   /* cached at the first pin */
	domid_t domid;    /* the domain that holds the pins */
	uint8_t rd;       /* read-only pins (maps and copies in progress) */
	uint8_t wr;       /* writable pins */
};

/* A granting domain as the grant operations see it. */
struct hvd_gt {
	grant_entry_v1_t *shared;      /* nr_entries entries, shared with the granter */
	struct hvd_gt_active *active;  /* nr_entries entries */
	uint32_t nr_entries;
	domid_t domid;
	uint8_t *mem;                  /* the granter's I/O memory (NULL: none yet) */
	uint32_t mem_pages;
	uint32_t pins;                 /* sum of all pin counts (invariant checks) */
};

int hvd_gt_init(struct hvd_gt *gt, grant_entry_v1_t *shared, uint32_t nr_entries, domid_t domid);
void hvd_gt_fini(struct hvd_gt *gt);
/* Entries with type GTF_permit_access (for domain info). */
uint32_t hvd_gt_in_use(const struct hvd_gt *gt);

/* Pin `ref` for `ldomid` (a map when `mapflag`, else a copy): GNTST_okay and
 * *frame, or the GNTST_* code; on failure nothing is left pinned. */
int16_t hvd_gt_pin(struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid, bool readonly,
		   bool mapflag, uint32_t *frame);
void hvd_gt_unpin(struct hvd_gt *gt, grant_ref_t ref, bool readonly);

/* ---- maptrack ------------------------------------------------------------ */

struct hvd_map {
	struct hvd_gt *gt;   /* granter; NULL when free or revoked */
	grant_ref_t ref;
	uint16_t flags;      /* GNTMAP_* of the mapping; 0 = free entry */
	bool revoked;        /* the granter ended: unmap just releases the handle */
	uint32_t next_free;
};

struct hvd_maptrack {
	struct hvd_map *e;
	uint32_t cap;
	uint32_t used;       /* entries holding a handle (live or revoked) */
	uint32_t free_head;
	uint32_t *held;      /* the mapping domain's handle count */
	uint32_t limit;      /* the mapping domain's maximum */
	uint32_t *capacity;  /* the domain's entries allocated, all its tables (or NULL) */
};

void hvd_mt_init(struct hvd_maptrack *mt, uint32_t *held, uint32_t limit);
/* Charge this table's allocated entries to `capacity` too (the domain's
 * total, shared by its tables): it may not pass twice the limit, so tables
 * grown to their peak on many connections cannot hold unbounded memory. */
void hvd_mt_charge(struct hvd_maptrack *mt, uint32_t *capacity);
/* Unmap everything still mapped and free the table. */
void hvd_mt_fini(struct hvd_maptrack *mt);
/* Drop every live mapping of `gt`'s grants: their handles stay allocated
 * (unmap then succeeds) but no longer pin anything. Returns how many. */
unsigned hvd_mt_revoke(struct hvd_maptrack *mt, const struct hvd_gt *gt);
/* Whether the maptrack holds a live mapping of `gt`'s grants. */
bool hvd_mt_maps(const struct hvd_maptrack *mt, const struct hvd_gt *gt);

/* GNTTABOP_map_grant_ref: `rgt` is the granter (NULL if no such domain).
 * Fills op->status, and on success op->handle and op->dev_bus_addr (the byte
 * offset of the page in the granter's memory). */
void hvd_gt_map(struct hvd_maptrack *mt, struct hvd_gt *rgt, domid_t ldomid,
		struct gnttab_map_grant_ref *op);
/* GNTTABOP_unmap_grant_ref by handle; fills op->status. */
void hvd_gt_unmap(struct hvd_maptrack *mt, struct gnttab_unmap_grant_ref *op);

/* GNTTABOP_copy of one segment for domain `self` (its own memory is the
 * non-gref side, addressed by frame). `lookup` resolves a granting domid
 * (DOMID_SELF included) to its table, or NULL. Copies and returns GNTST_*. */
typedef struct hvd_gt *(*hvd_gt_lookup_fn)(void *ctx, domid_t domid);
int16_t hvd_gt_copy(hvd_gt_lookup_fn lookup, void *ctx, struct hvd_gt *self,
		    const struct gnttab_copy *op);

#endif
