#include "xenstored/domtab.h"

#include <stdlib.h>

void *xsd_domtab_get(struct xsd_domtab *t, unsigned domid, size_t elem, bool create)
{
	void **c;

	if (domid > 0xffff)
		return NULL;
	c = &t->chunk[domid >> 8];
	if (!*c) {
		if (!create)
			return NULL;
		*c = calloc(256, elem);
		if (!*c)
			return NULL;
	}
	return (char *)*c + (domid & 0xff) * elem;
}

void xsd_domtab_fini(struct xsd_domtab *t)
{
	for (unsigned i = 0; i < 256; i++) {
		free(t->chunk[i]);
		t->chunk[i] = NULL;
	}
}

unsigned xsd_domtab_next(const struct xsd_domtab *t, unsigned from)
{
	while (from <= 0xffff && !t->chunk[from >> 8])
		from = (from | 0xff) + 1;
	return from;
}
