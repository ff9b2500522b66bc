/*
 * The hypervisor context of one incarnation of the domain: the connection,
 * the grant table, the mapping of the domain's I/O memory. A move gives a
 * new context; the memory is mapped again at the same address.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/runtime.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/hv.h"

struct gr_hvctx *gr_hvctx_open(const char *path)
{
	struct gr_hvctx *c = calloc(1, sizeof(*c));
	int e;

	if (!c)
		return NULL;
	pv_strlcpy(c->path, path ? path : "", sizeof(c->path));
	c->hv = pv_hv_open(path);
	if (!c->hv)
		goto fail;
	c->gs = pv_gntshr_open(c->hv);
	if (!c->gs)
		goto fail;
	c->domid = pv_hv_domid(c->hv);
	return c;
fail:
	e = errno;
	gr_hvctx_close(c);
	errno = e;
	return NULL;
}

void gr_hvctx_close(struct gr_hvctx *c)
{
	if (!c)
		return;
	if (c->gs)
		pv_gntshr_close(c->gs);
	if (c->hv)
		pv_hv_close(c->hv);
	free(c);
}

int gr_memory_map(struct gr_rt *rt, struct gr_hvctx *c)
{
	size_t npages = rt->mem_pages;   /* what we own at mem_base, if anything */
	void *base = pv_hv_map_own_memory_id(c->hv, rt->mem_base, &npages, &rt->mem_id);

	if (!base)
		return -errno;
	if (rt->mem_base) {
		/* A move: same address, same size, same contents. */
		if (base != rt->mem_base || npages != rt->mem_pages) {
			pv_err("memory came back at %p (%zu pages), expected %p (%zu pages)",
			       base, npages, rt->mem_base, rt->mem_pages);
			return -EFAULT;
		}
		return 0;
	}
	rt->mem_base = base;
	rt->mem_pages = npages;
	rt->pa = pv_pagealloc_new(base, npages, 0);
	return rt->pa ? 0 : -ENOMEM;
}
