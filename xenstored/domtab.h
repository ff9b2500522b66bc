/*
 * xenstored/domtab.h — a sparse table indexed by domain id (0..65535):
 * 256 chunks of 256 slots, each chunk allocated (zeroed) on first use, so a
 * store or core with a handful of domains costs a few KiB, not 256+ KiB.
 * Pure, single-threaded. Slots are `elem` bytes; the table owns the chunks.
 */
#ifndef PVNET_XENSTORED_DOMTAB_H
#define PVNET_XENSTORED_DOMTAB_H

#include <stdbool.h>
#include <stddef.h>

struct xsd_domtab {
	void *chunk[256];
};

/* Slot of `domid`, or NULL (no such chunk and !create, or ENOMEM). */
void *xsd_domtab_get(struct xsd_domtab *t, unsigned domid, size_t elem, bool create);
void xsd_domtab_fini(struct xsd_domtab *t);
/* First domid >= from in an allocated chunk, or 0x10000: iterate with
 * for (d = xsd_domtab_next(t, 0); d <= 0xffff; d = xsd_domtab_next(t, d + 1)) */
unsigned xsd_domtab_next(const struct xsd_domtab *t, unsigned from);

#endif
