/*
 * Domains: creation (domid as Xen allocates it: the next free id after the
 * last one allocated, wrapping to 1 below DOMID_FIRST_RESERVED), I/O memory
 * and grant table as sealed memfds, the end of an incarnation (destroy or
 * move) and what the other domains see of it.
 *
 * Ending domain D, in this order:
 *   1. D's own connections drop every mapping they hold of other domains'
 *      grants (unpinned), and are told to revoke the views they hold;
 *   2. D's ports are closed: each peer port becomes unbound and its owner
 *      gets PORT_CLOSED;
 *   3. every other connection's mappings of D's grants are revoked (the
 *      handles stay, unmap just frees them) and its view of D's memory is
 *      forgotten: MAPPINGS_REVOKED, then DOMAIN_GONE to everyone involved
 *      (and to dom0 connections that asked for all of them);
 *   4. D's grant table and memory are unmapped and their memfds closed
 *      (a moved domain's memory lives on in the destination hypervisor).
 * Memfds are sealed against shrinking and growing so that no process can
 * make the daemon's own mappings fault.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/hvd.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

struct hvd_domain *hvd_domain_get(struct hvd *h, uint32_t domid)
{
	return domid < DOMID_FIRST_RESERVED ? h->dom[domid] : NULL;
}

int hvd_sealed_memfd(const char *name, size_t bytes)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int r;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0 || fcntl(fd, F_ADD_SEALS, SEALS) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* A sealed memfd of `bytes` bytes mapped read-write. */
static int make_memfd(const char *name, size_t bytes, int *fd_out, void **map_out)
{
	int fd = hvd_sealed_memfd(name, bytes);
	void *p;
	int r;

	if (fd < 0)
		return fd;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	*fd_out = fd;
	*map_out = p;
	return 0;
}

static void drop_memory(struct hvd_domain *d)
{
	if (d->gt.mem)
		munmap(d->gt.mem, (size_t)d->gt.mem_pages * PV_PAGE_SIZE);
	if (d->memfd >= 0)
		close(d->memfd);
	d->gt.mem = NULL;
	d->gt.mem_pages = 0;
	d->memfd = -1;
}

static void drop_grant_table(struct hvd_domain *d)
{
	struct hvd_gt_state *st = d->gt.st;
	uint32_t nr = d->gt.nr_entries;

	if (d->gt.shared)
		munmap(d->gt.shared, (size_t)nr * sizeof(grant_entry_v1_t));
	hvd_gt_fini(&d->gt);
	if (st)
		munmap(st, hvd_gt_state_size(nr));
	if (d->gtfd >= 0)
		close(d->gtfd);
	if (d->statefd >= 0)
		close(d->statefd);
	d->gtfd = d->statefd = -1;
}

/* A dom0 process died holding this domain's grant lock: the pins are the
 * hypervisor's mappings again (nothing else survives a lock hold). */
static void gt_recount(void *ctx, struct hvd_gt *gt)
{
	struct hvd_domain *d = ctx;

	hvd_gt_recount_begin(gt);
	for (struct hvd_conn *c = d->h->conns; c; c = c->next)
		hvd_mt_repin(&c->mt, gt);
	hvd_gt_recount_end(gt);
	pv_warn("d%u: a dom0 process died holding the domain's grant lock; pins recounted "
		"from the mappings (%u)", d->domid, d->gt.st->pins);
}

void hvd_domain_check_locks(struct hvd *h)
{
	for (uint32_t id = 0; id < DOMID_FIRST_RESERVED; id++) {
		struct hvd_domain *d = h->dom[id];
		/* A zero timeout: only a dead holder's lock is taken over. */
		if (d && d->gt.st && hvd_gt_lock(&d->gt, 0) >= 0)
			hvd_gt_unlock(&d->gt);
	}
}

int hvd_domain_set_memory(struct hvd_domain *d, int memfd, uint32_t pages)
{
	size_t bytes = (size_t)pages * PV_PAGE_SIZE;
	struct stat st;
	int seals;
	void *p;

	if (pages == 0 || pages > HVD_MAX_MEM_PAGES)
		return -EINVAL;
	/* Only a memfd can be sealed; it must not shrink under our mappings and
	 * must stay writable. Sealed first, then measured: a sender resizing
	 * it meanwhile must not leave us mapping past its end (SIGBUS). */
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return -EINVAL;
	if ((seals & SEALS) != SEALS && fcntl(memfd, F_ADD_SEALS, SEALS) < 0)
		return -EINVAL;
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || (seals & SEALS) != SEALS)
		return -EINVAL;
	if (fstat(memfd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < bytes)
		return -EINVAL;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED)
		return -errno;
	drop_memory(d);
	d->memfd = memfd;
	d->gt.mem = p;
	d->gt.mem_pages = pages;
	return 0;
}

static void domain_free(struct hvd *h, struct hvd_domain *d)
{
	if (d->listen_fd >= 0) {
		if (h->loop)
			pv_loop_del_fd(h->loop, d->listen_fd);
		close(d->listen_fd);
	}
	if (d->sock_path) {
		unlink(d->sock_path);
		free(d->sock_path);
	}
	drop_grant_table(d);
	drop_memory(d);
	hvd_ec_fini(&d->ec);
	free(d);
}

static int domain_alloc(struct hvd *h, uint32_t domid, const struct hvp_domcfg *cfg,
			struct hvd_domain **out)
{
	struct hvd_domain *d = calloc(1, sizeof(*d));
	uint32_t frames = cfg->grant_frames, ents;
	char name[32];
	void *p, *st;
	int r;

	if (!d)
		return -ENOMEM;
	d->memfd = d->gtfd = d->statefd = d->listen_fd = -1;
	d->h = h;
	d->domid = domid;
	d->incarnation = ++h->next_incarnation;
	d->max_maptrack = cfg->max_maptrack;
	memcpy(d->name, cfg->name, sizeof(d->name));
	d->name[sizeof(d->name) - 1] = '\0';
	ents = frames * (PV_PAGE_SIZE / sizeof(grant_entry_v1_t));

	snprintf(name, sizeof(name), "pvnet-gnttab-d%u", domid);
	r = make_memfd(name, (size_t)frames * PV_PAGE_SIZE, &d->gtfd, &p);
	if (r < 0)
		goto fail;
	d->gt.shared = p; /* unmapped by drop_grant_table if what follows fails */
	d->gt.nr_entries = ents;
	snprintf(name, sizeof(name), "pvnet-gtstate-d%u", domid);
	r = make_memfd(name, hvd_gt_state_size(ents), &d->statefd, &st);
	if (r == 0) {
		r = hvd_gt_init(&d->gt, p, ents, (domid_t)domid, st);
		if (r < 0)
			munmap(st, hvd_gt_state_size(ents));
	}
	if (r < 0)
		goto fail;
	d->gt.recount = gt_recount;
	d->gt.recount_ctx = d;
	if (!cfg->incoming) {
		snprintf(name, sizeof(name), "pvnet-mem-d%u", domid);
		r = make_memfd(name, (size_t)cfg->mem_pages * PV_PAGE_SIZE, &d->memfd, &p);
		if (r < 0)
			goto fail;
		d->gt.mem = p;
		d->gt.mem_pages = cfg->mem_pages;
	}
	r = hvd_ec_init(&d->ec, (domid_t)domid, cfg->max_ports);
	if (r < 0)
		goto fail;
	d->state = cfg->incoming ? PV_DOM_INCOMING : PV_DOM_RUNNING;
	h->dom[domid] = d;
	h->ndomains++;
	r = hvd_listen_domain(h, d);
	if (r < 0) {
		h->dom[domid] = NULL;
		h->ndomains--;
		goto fail;
	}
	*out = d;
	return 0;
fail:
	domain_free(h, d);
	return r;
}

/* Xen's rule: an explicit domid must be free; otherwise the next free id
 * after the last one allocated, from 1, wrapping below DOMID_FIRST_RESERVED. */
int hvd_domid_pick(struct hvd *h, uint32_t want, uint32_t *out)
{
	if (want) {
		if (want >= DOMID_FIRST_RESERVED)
			return -EINVAL;
		if (h->dom[want])
			return -EEXIST;
		*out = want;
		return 0;
	}
	for (uint32_t i = 0, id = h->rover; i < DOMID_FIRST_RESERVED; i++) {
		if (++id >= DOMID_FIRST_RESERVED)
			id = 1;
		if (!h->dom[id]) {
			h->rover = id;
			*out = id;
			return 0;
		}
	}
	return -ENOSPC;
}

static int limit(uint32_t *v, uint32_t def, uint32_t max)
{
	if (*v == 0)
		*v = def;
	return *v > max ? -EINVAL : 0;
}

int hvd_domain_create(struct hvd *h, const struct hvp_domcfg *in, struct hvd_domain **out)
{
	struct hvp_domcfg cfg = *in;
	uint32_t domid;
	int r;

	if (limit(&cfg.mem_pages, h->o.mem_pages, HVD_MAX_MEM_PAGES) ||
	    limit(&cfg.grant_frames, h->o.grant_frames, HVD_MAX_GRANT_FRAMES) ||
	    limit(&cfg.max_ports, h->o.max_ports, HVD_MAX_PORTS) ||
	    limit(&cfg.max_maptrack, h->o.max_maptrack, HVD_MAX_MAPTRACK) || cfg.incoming > 1)
		return -EINVAL;
	r = hvd_domid_pick(h, cfg.domid, &domid);
	if (r < 0)
		return r;
	return domain_alloc(h, domid, &cfg, out);
}

int hvd_domain_create_dom0(struct hvd *h)
{
	struct hvp_domcfg cfg = { .mem_pages = h->o.dom0_mem_pages,
				  .grant_frames = h->o.grant_frames,
				  .max_ports = h->o.dom0_max_ports,
				  .max_maptrack = h->o.max_maptrack,
				  .name = "Domain-0" };
	struct hvd_domain *d;

	return domain_alloc(h, 0, &cfg, &d);
}

static bool drop_view(struct hvd_conn *c, const struct hvd_domain *d)
{
	for (unsigned i = 0; i < c->nviews; i++) {
		if (c->views[i] == d) {
			c->views[i] = c->views[--c->nviews];
			return true;
		}
	}
	return false;
}

static struct hvd_evtchn *lookup_ec(void *ctx, domid_t domid)
{
	struct hvd_domain *d = hvd_domain_get(ctx, domid);
	return d && d->ec.ports ? &d->ec : NULL;
}

void hvd_chan_free(struct hvd_chan *ch)
{
	for (int i = 0; i < 2; i++)
		if (ch->bell[i] >= 0)
			close(ch->bell[i]);
	if (ch->flags >= 0)
		close(ch->flags);
	free(ch);
}

/* Close a port of d; the peer's owner hears of it. Returns the owner told. */
static struct hvd_conn *close_port(struct hvd *h, struct hvd_domain *d, evtchn_port_t port)
{
	struct hvd_port *p = hvd_ec_port(&d->ec, port), *peer;
	uint32_t rport = p ? p->remote_port : 0;
	struct hvd_chan *dead;
	struct hvd_conn *told = NULL;

	if (hvd_ec_close(&d->ec, port, lookup_ec, h, &peer, &dead) < 0)
		return NULL;
	if (peer && peer->owner) {
		told = peer->owner;
		hvd_notice(told, PV_NOTICE_PORT_CLOSED, d->domid, rport, 0);
	}
	if (dead)
		hvd_chan_free(dead);
	return told;
}

int hvd_port_close(struct hvd_conn *c, evtchn_port_t port)
{
	struct hvd_port *p = c->dom->ec.ports ? hvd_ec_port(&c->dom->ec, port) : NULL;

	if (!p || p->owner != c)
		return -EINVAL;
	close_port(c->h, c->dom, port);
	return 0;
}

void hvd_domain_end(struct hvd *h, struct hvd_domain *d)
{
	struct hvd_conn *c, *told;
	int r;

	if (d->gtfd < 0)
		return; /* already ended (moved) */
	/* dom0 processes copying in-process see it under the lock from now on. */
	r = hvd_gt_lock(&d->gt, 1000);
	__atomic_store_n(&d->gt.st->dead, 1, __ATOMIC_RELAXED);
	if (r >= 0)
		hvd_gt_unlock(&d->gt);
	for (c = h->conns; c; c = c->next) {
		if (c->dom != d)
			continue;
		hvd_mt_fini(&c->mt);
		hvd_mt_init(&c->mt, &d->mappings_held, d->max_maptrack);
		hvd_mt_charge(&c->mt, &d->maptrack_cap);
		for (unsigned i = 0; i < c->nviews; i++)
			hvd_notice(c, PV_NOTICE_MAPPINGS_REVOKED, c->views[i]->domid, 0,
				   c->views[i]->incarnation);
		c->nviews = 0;
	}
	for (evtchn_port_t p = 1; p <= d->ec.max_port && d->ec.in_use; p++) {
		if (d->ec.ports[p].state != EVTCHNSTAT_closed && (told = close_port(h, d, p)))
			told->involved = true;
	}
	for (c = h->conns; c; c = c->next) {
		bool involved = c->involved;
		c->involved = false;
		if (c->dom == d)
			continue;
		if (hvd_mt_revoke(&c->mt, &d->gt) | drop_view(c, d)) {
			hvd_notice(c, PV_NOTICE_MAPPINGS_REVOKED, d->domid, 0, d->incarnation);
			involved = true;
		}
		if (involved || (c->want & HVP_WANT_DOMAIN_GONE))
			hvd_notice(c, PV_NOTICE_DOMAIN_GONE, d->domid, 0, d->incarnation);
	}
	drop_grant_table(d);
	drop_memory(d);
}

void hvd_domain_set_state(struct hvd *h, struct hvd_domain *d, enum pv_domain_state st)
{
	struct hvd_conn *c, *next;

	d->state = st;
	for (c = h->conns; c; c = next) {
		next = c->next;
		if (c->late_op == HVP_DOM_WAIT && c->wait_domid == d->domid &&
		    (c->wait_mask & (1u << st)))
			hvd_late_reply(c, 0, NULL, 0);
	}
}

void hvd_domain_destroy(struct hvd *h, struct hvd_domain *d)
{
	struct hvd_conn *c, *next;

	hvd_domain_end(h, d);
	if (d->suspender)
		hvd_late_reply(d->suspender, -ESRCH, NULL, 0);
	for (c = h->conns; c; c = next) {
		next = c->next;
		if (c->dom == d)
			hvd_conn_close(c);
		else if (c->late_op == HVP_DOM_WAIT && c->wait_domid == d->domid)
			hvd_late_reply(c, -ESRCH, NULL, 0);
	}
	h->dom[d->domid] = NULL;
	h->ndomains--;
	domain_free(h, d);
}

void hvd_conn_release(struct hvd_conn *c)
{
	struct hvd_domain *d = c->dom;

	if (d->suspender == c)
		d->suspender = NULL;
	if (c->late_op == HVP_DOM_WAIT && c->wait_timer > 0 && c->h->loop)
		pv_loop_cancel_timer(c->h->loop, c->wait_timer);
	c->late_op = 0;
	for (evtchn_port_t p = 1; d->ec.ports && p <= d->ec.max_port; p++)
		if (d->ec.ports[p].owner == c)
			close_port(c->h, d, p);
	hvd_mt_fini(&c->mt);
	if (c->attached)
		hvd_domain_check_locks(c->h);
	c->attached = false;
	free(c->views);
	c->views = NULL;
	c->nviews = c->cap_views = 0;
	free(c->nq);
	c->nq = NULL;
	c->nq_len = c->nq_cap = 0;
	if (c->notice_fd >= 0)
		close(c->notice_fd);
	if (c->notice_peer >= 0)
		close(c->notice_peer);
	c->notice_fd = c->notice_peer = -1;
}

void hvd_domain_info(struct hvd_domain *d, struct hvp_dominfo *o)
{
	memset(o, 0, sizeof(*o));
	o->domid = d->domid;
	o->state = d->state;
	o->shutdown_reason = d->shutdown_reason;
	o->mem_pages = d->gt.mem_pages;
	o->grant_entries = d->gt.nr_entries;
	o->grants_in_use = d->gt.shared ? hvd_gt_in_use(&d->gt) : 0;
	o->mappings_held = d->mappings_held;
	o->ports_in_use = d->ec.in_use;
	memcpy(o->name, d->name, sizeof(o->name));
}
