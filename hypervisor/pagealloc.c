/*
 * pv_pagealloc: a bitmap of the pages of a mapped I/O memory region, first
 * fit for contiguous runs. It belongs to the process (not to a connection), so
 * it survives a move: the memory is mapped again at the same address and the
 * same allocator goes on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/xen.h"
#include "hypervisor/hv.h"

struct pv_pagealloc {
	uint8_t *base;
	size_t npages;
	size_t hint;          /* no free page below this one */
	pthread_mutex_t lock;
	uint64_t *bits;       /* 1 = in use */
};

static bool used(const struct pv_pagealloc *pa, size_t i)
{
	return pa->bits[i / 64] >> (i % 64) & 1;
}

static void set_range(struct pv_pagealloc *pa, size_t first, size_t n, bool on)
{
	for (size_t i = first; i < first + n; i++) {
		if (on)
			pa->bits[i / 64] |= 1ull << (i % 64);
		else
			pa->bits[i / 64] &= ~(1ull << (i % 64));
	}
}

struct pv_pagealloc *pv_pagealloc_new(void *base, size_t npages, size_t first_free)
{
	struct pv_pagealloc *pa;

	if (!base || first_free > npages || npages > UINT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	pa = calloc(1, sizeof(*pa));
	if (!pa)
		return NULL;
	pa->bits = calloc((npages + 63) / 64 + 1, sizeof(uint64_t));
	if (!pa->bits) {
		free(pa);
		return NULL;
	}
	pa->base = base;
	pa->npages = npages;
	pthread_mutex_init(&pa->lock, NULL);
	set_range(pa, 0, first_free, true);
	pa->hint = first_free;
	return pa;
}

void pv_pagealloc_free(struct pv_pagealloc *pa)
{
	if (!pa)
		return;
	pthread_mutex_destroy(&pa->lock);
	free(pa->bits);
	free(pa);
}

int64_t pv_page_alloc(struct pv_pagealloc *pa, unsigned count)
{
	int64_t found = -ENOMEM;
	size_t run = 0;

	if (count == 0 || count > pa->npages)
		return count ? -ENOMEM : -EINVAL;
	pthread_mutex_lock(&pa->lock);
	for (size_t i = pa->hint; i < pa->npages; i++) {
		if (run == 0 && i % 64 == 0 && pa->bits[i / 64] == UINT64_MAX) {
			i += 63; /* a full word: skip it */
			continue;
		}
		run = used(pa, i) ? 0 : run + 1;
		if (run == count) {
			size_t first = i + 1 - count;
			set_range(pa, first, count, true);
			if (first == pa->hint)
				pa->hint = i + 1;
			found = (int64_t)first;
			break;
		}
	}
	pthread_mutex_unlock(&pa->lock);
	return found;
}

void pv_page_free(struct pv_pagealloc *pa, uint32_t frame, unsigned count)
{
	if ((size_t)frame + count > pa->npages)
		return;
	pthread_mutex_lock(&pa->lock);
	set_range(pa, frame, count, false);
	if (frame < pa->hint)
		pa->hint = frame;
	pthread_mutex_unlock(&pa->lock);
}

void *pv_page_addr(const struct pv_pagealloc *pa, uint32_t frame)
{
	return frame < pa->npages ? pa->base + (size_t)frame * PV_PAGE_SIZE : NULL;
}

int64_t pv_page_frame(const struct pv_pagealloc *pa, const void *addr)
{
	const uint8_t *p = addr;

	if (p < pa->base || p >= pa->base + pa->npages * PV_PAGE_SIZE)
		return -EINVAL;
	return (int64_t)((size_t)(p - pa->base) / PV_PAGE_SIZE);
}
