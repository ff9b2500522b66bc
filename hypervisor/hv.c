/* pv_hv: connection, own memory, the guest's lifecycle calls, domain control. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/client.h"
#include "hypervisor/hv_internal.h"

struct pv_hv *pv_hv_open(const char *path)
{
	struct pv_hv *hv = calloc(1, sizeof(*hv));
	int r;

	if (!hv) {
		errno = ENOMEM;
		return NULL;
	}
	/* dom0's handles hear of every domain's end (toolstack, backends). */
	r = hvc_open(&hv->c, path, HVP_WANT_DOMAIN_GONE);
	if (r < 0) {
		free(hv);
		errno = -r;
		return NULL;
	}
	return hv;
}

void pv_hv_close(struct pv_hv *hv)
{
	if (!hv)
		return;
	hvc_close(&hv->c);
	free(hv);
}

uint32_t pv_hv_domid(const struct pv_hv *hv) { return hv->c.domid; }
int pv_hv_fd(const struct pv_hv *hv) { return hv->c.notice_fd; }

int pv_hv_poll_notices(struct pv_hv *hv, struct pv_notice *out, unsigned max)
{
	return hvc_poll_notices(&hv->c, out, max);
}

/* A call with scalar arguments and no payload; fds of the reply dropped. */
static int simple(struct pv_hv *hv, uint16_t op, uint32_t a0, uint32_t a1)
{
	struct hvc_req rq = { .op = op, .arg = { a0, a1 }, .fd = -1 };
	int r = hvc_call(&hv->c, &rq);

	hvc_drop_fds(&hv->c);
	return r;
}

/* A call expecting exactly one fd back (memfds). */
static int call_fd(struct pv_hv *hv, const struct hvc_req *rq, int *fd)
{
	int r = hvc_call(&hv->c, rq);

	if (r >= 0 && hv->c.nfds != 1)
		r = -EPROTO;
	if (r < 0) {
		hvc_drop_fds(&hv->c);
		return r;
	}
	*fd = hv->c.fds[0];
	hv->c.nfds = 0;
	return r;
}

int pv_hv_get_fd(struct pv_hv *hv, uint16_t op, uint32_t arg0, int *fd, uint32_t *value)
{
	struct hvc_req rq = { .op = op, .arg = { arg0, 0 }, .fd = -1 };
	int r = call_fd(hv, &rq, fd);

	if (r >= 0)
		*value = hv->c.rep.arg[0];
	return r;
}

void *pv_hv_map_own_memory(struct pv_hv *hv, void *at, size_t *npages)
{
	return pv_hv_map_own_memory_id(hv, at, npages, NULL);
}

void *pv_hv_map_own_memory_id(struct pv_hv *hv, void *at, size_t *npages, struct pv_mem_id *id)
{
	struct stat st;
	uint32_t pages;
	void *p;
	int fd, r;

	r = pv_hv_get_fd(hv, HVP_MEM_GET, 0, &fd, &pages);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	/* MAP_FIXED replaces whatever is there: only the region the caller
	 * said it owns (*npages pages at `at`), never more. */
	if (at && (!npages || *npages != pages)) {
		close(fd);
		errno = EPROTO;
		return NULL;
	}
	/* The memory must exist whole and stay so (a reply may overstate it);
	 * fstat names the memory object for `id`. */
	if (!pv_fd_covers(fd, (uint64_t)pages * PV_PAGE_SIZE) || fstat(fd, &st) < 0) {
		close(fd);
		errno = EPROTO;
		return NULL;
	}
	if (id && at && id->dev == (uint64_t)st.st_dev && id->ino == (uint64_t)st.st_ino &&
	    id->npages == pages) {
		close(fd);
		if (npages)
			*npages = pages;
		return at;
	}
	p = mmap(at, (size_t)pages * PV_PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | (at ? MAP_FIXED : 0), fd, 0);
	r = errno;
	close(fd);
	if (p == MAP_FAILED) {
		errno = r;
		return NULL;
	}
	if (id) {
		id->dev = (uint64_t)st.st_dev;
		id->ino = (uint64_t)st.st_ino;
		id->npages = pages;
	}
	if (npages)
		*npages = pages;
	return p;
}

/* ---- guest lifecycle -------------------------------------------------------- */

int pv_hv_suspend(struct pv_hv *hv, struct pv_resume_info *info)
{
	int r = simple(hv, HVP_SUSPEND, 0, 0);

	if (r == 0) {
		if (hv->c.rep_len != sizeof(struct hvp_resume))
			return -EPROTO;
		memcpy(info, hv->c.rep_payload, sizeof(*info));
		info->hypervisor_path[sizeof(info->hypervisor_path) - 1] = '\0';
		info->start_info[sizeof(info->start_info) - 1] = '\0';
	}
	return r < 0 ? r : (r ? 1 : 0);
}

int pv_hv_shutdown(struct pv_hv *hv, unsigned reason)
{
	return simple(hv, HVP_SHUTDOWN, reason, 0);
}

/* ---- domain control ----------------------------------------------------------- */

int pv_hv_domain_create(struct pv_hv *hv, const struct pv_domain_config *cfg, uint32_t *domid)
{
	struct hvp_domcfg w = { .domid = cfg->domid, .mem_pages = cfg->mem_pages,
				.grant_frames = cfg->grant_frames, .max_ports = cfg->max_ports,
				.max_maptrack = cfg->max_maptrack, .incoming = cfg->incoming };
	struct hvc_req rq = { .op = HVP_DOM_CREATE, .payload = &w, .len = sizeof(w), .fd = -1 };
	int r;

	pv_strlcpy(w.name, cfg->name, sizeof(w.name));
	r = hvc_call(&hv->c, &rq);
	hvc_drop_fds(&hv->c);
	if (r >= 0 && domid)
		*domid = hv->c.rep.arg[0];
	return r < 0 ? r : 0;
}

int pv_hv_domain_destroy(struct pv_hv *hv, uint32_t domid)
{
	return simple(hv, HVP_DOM_DESTROY, domid, 0);
}

static void info_from_wire(struct pv_domain_info *o, const struct hvp_dominfo *w)
{
	o->domid = w->domid;
	o->state = (enum pv_domain_state)w->state;
	o->shutdown_reason = w->shutdown_reason;
	o->mem_pages = w->mem_pages;
	o->grant_entries = w->grant_entries;
	o->grants_in_use = w->grants_in_use;
	o->mappings_held = w->mappings_held;
	o->ports_in_use = w->ports_in_use;
	memcpy(o->name, w->name, sizeof(o->name));
	o->name[sizeof(o->name) - 1] = '\0';
}

int pv_hv_domain_info(struct pv_hv *hv, uint32_t domid, struct pv_domain_info *info)
{
	struct hvp_dominfo w;
	int r = simple(hv, HVP_DOM_INFO, domid, 0);

	if (r < 0)
		return r;
	if (hv->c.rep_len != sizeof(w))
		return -EPROTO;
	memcpy(&w, hv->c.rep_payload, sizeof(w));
	info_from_wire(info, &w);
	return 0;
}

int pv_hv_domain_list(struct pv_hv *hv, struct pv_domain_info *out, unsigned max)
{
	unsigned got = 0;
	uint32_t next = 0;
	int total;

	for (;;) {
		struct hvp_dominfo w;
		unsigned n;

		total = simple(hv, HVP_DOM_LIST, next, 0);
		if (total < 0)
			return total;
		n = hv->c.rep.count;
		if (n > HVP_MAX_LIST || hv->c.rep_len != n * sizeof(w))
			return -EPROTO;
		for (unsigned i = 0; i < n; i++) {
			memcpy(&w, hv->c.rep_payload + i * sizeof(w), sizeof(w));
			if (got < max)
				info_from_wire(&out[got], &w);
			got++;
			next = w.domid + 1;
		}
		if (n < HVP_MAX_LIST || got >= max)
			break;
	}
	return total;
}

int pv_hv_domain_wait(struct pv_hv *hv, uint32_t domid, unsigned state_mask, int timeout_ms)
{
	struct hvp_wait w = { .domid = domid, .state_mask = state_mask,
			      .timeout_ms = timeout_ms < 0 ? -1 : timeout_ms };
	struct hvc_req rq = { .op = HVP_DOM_WAIT, .payload = &w, .len = sizeof(w), .fd = -1 };
	int r = hvc_call(&hv->c, &rq);

	hvc_drop_fds(&hv->c);
	return r < 0 ? r : 0;
}

int pv_hv_domain_resume(struct pv_hv *hv, uint32_t domid)
{
	return simple(hv, HVP_DOM_RESUME, domid, 0);
}

int pv_hv_domain_export(struct pv_hv *hv, uint32_t domid, int *memfd, uint32_t *mem_pages)
{
	uint32_t pages;
	int r = pv_hv_get_fd(hv, HVP_DOM_EXPORT, domid, memfd, &pages);

	if (r >= 0 && mem_pages)
		*mem_pages = pages;
	return r < 0 ? r : 0;
}

int pv_hv_domain_import(struct pv_hv *hv, uint32_t domid, int memfd, uint32_t mem_pages)
{
	struct hvc_req rq = { .op = HVP_DOM_IMPORT, .arg = { domid, mem_pages }, .fd = memfd };
	int r;

	if (memfd < 0)
		return -EBADF;
	r = hvc_call(&hv->c, &rq);
	hvc_drop_fds(&hv->c);
	return r;
}

int pv_hv_domain_moved(struct pv_hv *hv, uint32_t domid, const struct pv_resume_info *info)
{
	struct hvc_req rq = { .op = HVP_DOM_MOVED, .arg = { domid, 0 }, .payload = info,
			      .len = sizeof(*info), .fd = -1 };
	int r = hvc_call(&hv->c, &rq);

	hvc_drop_fds(&hv->c);
	return r;
}

int pv_hv_domain_socket(struct pv_hv *hv, uint32_t domid, char *buf, size_t len)
{
	int r = simple(hv, HVP_DOM_SOCKET, domid, 0);

	if (r < 0)
		return r;
	if (hv->c.rep_len == 0 || hv->c.rep_payload[hv->c.rep_len - 1] != '\0')
		return -EPROTO;
	if (hv->c.rep_len > len)
		return -ENAMETOOLONG;
	memcpy(buf, hv->c.rep_payload, hv->c.rep_len);
	return 0;
}
