/*
 * Multi-process tests of pvnet-hypervisor and its client library. Each test
 * starts its own daemon(s) in a temporary run directory; "domains" are
 * processes connected through their per-domain sockets.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <cmocka.h>

#include "common/util.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/hv.h"
#include "hypervisor/proto.h"
#include "hypervisor/tests/hvtest.h"

static bool wait_until(bool (*cond)(void *), void *arg);

static struct hvt_daemon H1, H2;

static int setup1(void **state)
{
	hvt_start(&H1, NULL);
	return 0;
}

static int teardown1(void **state)
{
	assert_int_equal(hvt_stop(&H1), 0); /* a clean stop on SIGTERM */
	return 0;
}

static int setup2(void **state)
{
	hvt_start(&H1, NULL);
	hvt_start(&H2, NULL);
	return 0;
}

static int teardown2(void **state)
{
	assert_int_equal(hvt_stop(&H1), 0);
	assert_int_equal(hvt_stop(&H2), 0);
	return 0;
}

static uint32_t new_domain(struct pv_hv *hv, const char *name, char *sock, size_t len)
{
	struct pv_domain_config cfg = { 0 };
	uint32_t d = 0;

	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	assert_int_equal(pv_hv_domain_create(hv, &cfg, &d), 0);
	if (sock)
		assert_int_equal(pv_hv_domain_socket(hv, d, sock, len), 0);
	return d;
}

/* A guest's own kit: connection, memory, allocator, grant table. */
struct guest {
	struct pv_hv *hv;
	uint8_t *mem;
	size_t pages;
	struct pv_pagealloc *pa;
	struct pv_gntshr *gs;
};

static void guest_open(struct guest *g, const char *sock)
{
	CHECK(g->hv = pv_hv_open(sock));
	CHECK(g->mem = pv_hv_map_own_memory(g->hv, NULL, &g->pages));
	CHECK(g->pa = pv_pagealloc_new(g->mem, g->pages, 0));
	CHECK(g->gs = pv_gntshr_open(g->hv));
}

static void guest_close(struct guest *g)
{
	pv_gntshr_close(g->gs);
	pv_pagealloc_free(g->pa);
	munmap(g->mem, g->pages * PV_PAGE_SIZE);
	pv_hv_close(g->hv);
}

/* Grant a fresh page holding `text`; returns the ref, *page its address. */
static grant_ref_t share_text(struct guest *g, domid_t to, bool writable, const char *text,
			      uint8_t **page)
{
	grant_ref_t ref;
	uint8_t *p = pv_gntshr_share_pages(g->gs, g->pa, to, 1, &ref, writable);

	CHECK(p);
	strcpy((char *)p, text);
	if (page)
		*page = p;
	return ref;
}

static int16_t map1(struct pv_gnttab *gt, uint32_t domid, grant_ref_t ref, bool ro,
		    uint32_t *handle, void **addr)
{
	struct pv_gnttab_map_op op = { .domid = domid, .ref = ref,
				       .flags = ro ? PV_GNTMAP_readonly : 0 };

	CHECK_EQ(pv_gnttab_map_batch(gt, 1, &op), 0);
	if (handle)
		*handle = op.handle;
	if (addr)
		*addr = op.addr;
	return op.status;
}

static int16_t unmap1(struct pv_gnttab *gt, uint32_t handle)
{
	int16_t st = 99;

	CHECK_EQ(pv_gnttab_unmap_batch(gt, 1, &handle, &st), 0);
	return st;
}

static int16_t copy1(struct pv_gnttab *gt, struct pv_gnttab_copy_seg *s)
{
	s->status = 99;
	CHECK_EQ(pv_gnttab_grant_copy(gt, 1, s), 0);
	return s->status;
}

static struct pv_gnttab_copy_seg seg_from_grant(uint16_t dom, grant_ref_t ref, uint16_t off,
						void *to, uint16_t len)
{
	struct pv_gnttab_copy_seg s = { .len = len, .flags = PV_GNTCOPY_source_gref };
	s.source.foreign.domid = dom;
	s.source.foreign.ref = ref;
	s.source.foreign.offset = off;
	s.dest.virt = to;
	return s;
}

static struct pv_gnttab_copy_seg seg_to_grant(void *from, uint16_t dom, grant_ref_t ref,
					      uint16_t off, uint16_t len)
{
	struct pv_gnttab_copy_seg s = { .len = len, .flags = PV_GNTCOPY_dest_gref };
	s.source.virt = from;
	s.dest.foreign.domid = dom;
	s.dest.foreign.ref = ref;
	s.dest.foreign.offset = off;
	return s;
}

static bool wait_until(bool (*cond)(void *), void *arg)
{
	for (int i = 0; i < 500; i++) {
		if (cond(arg))
			return true;
		usleep(10000);
	}
	return false;
}

/* ---- domains ------------------------------------------------------------------ */

static void test_domains(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock), *g;
	struct pv_domain_config cfg = { .domid = 10 };
	struct pv_domain_info info[8];
	char sock[256];
	uint32_t d;

	assert_non_null(hv);
	assert_int_equal(pv_hv_domid(hv), 0);
	/* Allocation as Xen: next free after the last allocated, never reused
	 * while alive; an explicit id must be free and below the reserved ones. */
	assert_int_equal(new_domain(hv, "a", NULL, 0), 1);
	assert_int_equal(new_domain(hv, "b", NULL, 0), 2);
	assert_int_equal(new_domain(hv, "c", sock, sizeof(sock)), 3);
	assert_int_equal(pv_hv_domain_create(hv, &cfg, &d), 0);
	assert_int_equal(d, 10);
	assert_int_equal(pv_hv_domain_create(hv, &cfg, &d), -EEXIST);
	cfg.domid = DOMID_FIRST_RESERVED;
	assert_int_equal(pv_hv_domain_create(hv, &cfg, &d), -EINVAL);
	cfg = (struct pv_domain_config){ .mem_pages = (1u << 20) + 1 };
	assert_int_equal(pv_hv_domain_create(hv, &cfg, &d), -EINVAL);
	assert_int_equal(pv_hv_domain_destroy(hv, 2), 0);
	assert_int_equal(new_domain(hv, "d", NULL, 0), 4);
	assert_int_equal(pv_hv_domain_destroy(hv, 4), 0);
	assert_int_equal(new_domain(hv, "e", NULL, 0), 5);

	/* List and info. */
	assert_int_equal(pv_hv_domain_list(hv, info, 8), 5); /* 0, 1, 3, 5, 10 */
	assert_int_equal(info[0].domid, 0);
	assert_string_equal(info[0].name, "Domain-0");
	assert_int_equal(info[2].domid, 3);
	assert_string_equal(info[2].name, "c");
	assert_int_equal(info[2].state, PV_DOM_RUNNING);
	assert_int_equal(info[2].mem_pages, 16384);
	assert_int_equal(info[2].grant_entries, 64 * 512);
	assert_int_equal(pv_hv_domain_list(hv, info, 2), 5);
	assert_int_equal(pv_hv_domain_info(hv, 2, info), -ESRCH);
	assert_int_equal(pv_hv_domain_destroy(hv, 2), -ESRCH);
	assert_int_equal(pv_hv_domain_destroy(hv, 0), -EINVAL);

	/* The per-domain socket: this domain, unprivileged; gone at destroy. */
	assert_int_equal(access(sock, F_OK), 0);
	g = pv_hv_open(sock);
	assert_non_null(g);
	assert_int_equal(pv_hv_domid(g), 3);
	assert_int_equal(pv_hv_domain_info(g, 3, info), -EPERM);
	assert_int_equal(pv_hv_domain_create(g, &cfg, &d), -EPERM);
	assert_int_equal(pv_hv_domain_destroy(g, 1), -EPERM);
	assert_int_equal(pv_hv_domain_destroy(hv, 3), 0);
	assert_int_equal(access(sock, F_OK), -1);
	assert_null(pv_hv_open(sock));
	/* The destroyed domain's own connection is closed. */
	assert_int_equal(pv_hv_shutdown(g, SHUTDOWN_poweroff), -ECONNRESET);
	pv_hv_close(g);
	pv_hv_close(hv);
}

/* ---- grants between three domains ------------------------------------------------ */

struct grants_ctx {
	char sock[3][256];  /* d1 (granter A), d2 (B), d3 (C) */
	grant_ref_t rw, ro, ended, ungranted;
	int sv[2];
};

static int grants_b(void *arg)
{
	struct grants_ctx *x = arg;
	struct pv_gnttab *gt = pv_gnttab_open(x->sock[1]);
	struct guest b = { 0 };
	uint32_t hrw, hro, h;
	void *prw, *pro;
	struct pv_gnttab_copy_seg s;
	uint8_t *buf;

	CHECK(gt);
	guest_open(&b, x->sock[1]);
	CHECK_EQ(pv_gnttab_set_own_memory(gt, b.mem, b.pages), 0);
	buf = b.mem + 5 * PV_PAGE_SIZE;

	CHECK_EQ(map1(gt, 1, x->rw, false, &hrw, &prw), GNTST_okay);
	CHECK(strcmp(prw, "hello B") == 0);
	strcpy((char *)prw + 100, "reply from B");
	/* Read-only grant: no writable mapping; the read-only view refuses writes. */
	CHECK_EQ(map1(gt, 1, x->ro, false, NULL, NULL), GNTST_general_error);
	CHECK_EQ(map1(gt, 1, x->ro, true, &hro, &pro), GNTST_okay);
	CHECK(strcmp(pro, "read only") == 0);
	CHECK(!hvt_faults(pro, false));
	CHECK(hvt_faults(pro, true));
	/* Revoked, ungranted, out of range, unknown domain. */
	CHECK_EQ(map1(gt, 1, x->ended, true, NULL, NULL), GNTST_general_error);
	CHECK_EQ(map1(gt, 1, x->ungranted, true, NULL, NULL), GNTST_general_error);
	CHECK_EQ(map1(gt, 1, 64 * 512, true, NULL, NULL), GNTST_bad_gntref);
	CHECK_EQ(map1(gt, 1, 0xFFFFFFFFu, true, NULL, NULL), GNTST_bad_gntref);
	CHECK_EQ(map1(gt, 999, x->rw, true, NULL, NULL), GNTST_bad_domain);
	CHECK_EQ(map1(gt, 0x12345, x->rw, true, NULL, NULL), GNTST_bad_domain);
	/* libxengnttab shape, with errno. */
	CHECK(!pv_gnttab_map_grant_ref(gt, 1, x->ro, PROT_READ | PROT_WRITE) && errno == EPERM);
	CHECK(!pv_gnttab_map_grant_ref(gt, 77, x->ro, PROT_READ) && errno == ESRCH);
	{
		void *p = pv_gnttab_map_grant_ref(gt, 1, x->ro, PROT_READ);
		CHECK(p && strcmp(p, "read only") == 0);
		CHECK_EQ(pv_gnttab_unmap(gt, p, 1), 0);
		CHECK_EQ(pv_gnttab_unmap(gt, p, 1), -EINVAL);
	}

	/* Copies, both directions, with the hypervisor doing the work. */
	s = seg_from_grant(1, x->rw, 0, buf, 8);
	CHECK_EQ(copy1(gt, &s), GNTST_okay);
	CHECK(memcmp(buf, "hello B", 8) == 0);
	strcpy((char *)buf, "copied by B");
	s = seg_to_grant(buf, 1, x->rw, 200, 12);
	CHECK_EQ(copy1(gt, &s), GNTST_okay);
	s = seg_to_grant(buf, 1, x->ro, 0, 4);
	CHECK_EQ(copy1(gt, &s), GNTST_general_error);
	s = seg_from_grant(1, x->rw, 4000, buf, 200);
	CHECK_EQ(copy1(gt, &s), GNTST_bad_copy_arg);
	s = seg_from_grant(1, x->rw, 0, &h, 4);     /* not our I/O memory */
	CHECK_EQ(copy1(gt, &s), GNTST_bad_page);
	s = seg_from_grant(1, x->ended, 0, buf, 4);
	CHECK_EQ(copy1(gt, &s), GNTST_general_error);

	/* Double unmap. */
	CHECK_EQ(unmap1(gt, hro), GNTST_okay);
	CHECK_EQ(unmap1(gt, hro), GNTST_bad_handle);
	CHECK_EQ(unmap1(gt, 123456), GNTST_bad_handle);

	hvt_put(x->sv[1], 1);           /* still holding the writable mapping */
	CHECK_EQ(hvt_get(x->sv[1]), 2); /* A tried to end access */
	CHECK_EQ(unmap1(gt, hrw), GNTST_okay);
	hvt_put(x->sv[1], 3);
	pv_gnttab_close(gt);
	guest_close(&b);
	return 0;
}

static int grants_c(void *arg)
{
	struct grants_ctx *x = arg;
	struct pv_gnttab *gt = pv_gnttab_open(x->sock[2]);
	struct guest c = { 0 };
	struct pv_gnttab_copy_seg s;

	CHECK(gt);
	guest_open(&c, x->sock[2]);
	CHECK_EQ(pv_gnttab_set_own_memory(gt, c.mem, c.pages), 0);
	/* A third domain can map nothing granted to another. */
	CHECK_EQ(map1(gt, 1, x->ro, true, NULL, NULL), GNTST_general_error);
	CHECK_EQ(map1(gt, 1, x->ro, false, NULL, NULL), GNTST_general_error);
	CHECK_EQ(map1(gt, 1, x->rw, true, NULL, NULL), GNTST_general_error);
	s = seg_from_grant(1, x->ro, 0, c.mem, 4);
	CHECK_EQ(copy1(gt, &s), GNTST_general_error);
	s = seg_to_grant(c.mem, 1, x->rw, 0, 4);
	CHECK_EQ(copy1(gt, &s), GNTST_general_error);
	pv_gnttab_close(gt);
	guest_close(&c);
	return 0;
}

static void test_grants(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct grants_ctx x;
	struct guest a = { 0 };
	uint8_t *rw_page;
	pid_t b, c;

	assert_non_null(hv);
	for (int i = 0; i < 3; i++)
		new_domain(hv, "g", x.sock[i], sizeof(x.sock[i]));
	guest_open(&a, x.sock[0]);
	x.rw = share_text(&a, 2, true, "hello B", &rw_page);
	x.ro = share_text(&a, 2, false, "read only", NULL);
	x.ended = share_text(&a, 2, true, "ended", NULL);
	assert_int_equal(pv_gnttab_end_foreign_access_ref(a.gs, x.ended), 0);
	x.ungranted = 300;
	hvt_pipe(x.sv);

	b = hvt_fork(grants_b, &x);
	assert_int_equal(hvt_get(x.sv[0]), 1);
	/* Mapped writable by B: the hypervisor set reading|writing; ending
	 * access fails and the page must not be reused (XSA-396). */
	assert_int_equal(pv_gnttab_query_flags(a.gs, x.rw),
			 GTF_permit_access | GTF_reading | GTF_writing);
	assert_int_equal(pv_gnttab_end_foreign_access_ref(a.gs, x.rw), -EBUSY);
	assert_int_equal(pv_gntshr_unshare(a.gs, a.pa, rw_page, 1, &x.rw), -EBUSY);
	assert_int_equal(pv_gnttab_query_flags(a.gs, x.rw),
			 GTF_permit_access | GTF_reading | GTF_writing);
	hvt_put(x.sv[0], 2);
	assert_int_equal(hvt_get(x.sv[0]), 3);
	assert_int_equal(hvt_wait(b), 0);
	assert_int_equal(pv_gnttab_query_flags(a.gs, x.rw), GTF_permit_access);
	assert_string_equal((char *)rw_page + 100, "reply from B");
	assert_string_equal((char *)rw_page + 200, "copied by B");
	assert_int_equal(pv_gntshr_unshare(a.gs, a.pa, rw_page, 1, &x.rw), 0);
	assert_int_equal(pv_gnttab_query_flags(a.gs, x.rw), 0);

	c = hvt_fork(grants_c, &x);
	assert_int_equal(hvt_wait(c), 0);
	guest_close(&a);
	pv_hv_close(hv);
}

/* ---- grant copy in dom0 (in-process, under the granter's grant lock) -------------- */

struct local_kit {
	struct pv_hv *hv;
	uint32_t da, db;
	char sock[256];
	struct guest a;
	struct pv_gnttab *gt;
	uint8_t *own;
	size_t own_pages;
};

static void local_open(struct local_kit *k)
{
	assert_non_null(k->hv = pv_hv_open(H1.sock));
	k->da = new_domain(k->hv, "a", k->sock, sizeof(k->sock));
	k->db = new_domain(k->hv, "b", NULL, 0);
	guest_open(&k->a, k->sock);
	assert_non_null(k->gt = pv_gnttab_open(H1.sock));
	assert_non_null(k->own = pv_hv_map_own_memory(k->hv, NULL, &k->own_pages));
	assert_int_equal(pv_gnttab_set_own_memory(k->gt, k->own, k->own_pages), 0);
}

static void local_close(struct local_kit *k)
{
	pv_gnttab_close(k->gt);
	munmap(k->own, k->own_pages * PV_PAGE_SIZE);
	guest_close(&k->a);
	pv_hv_close(k->hv);
}

static void test_local_copy(void **state)
{
	struct local_kit k = { 0 };
	struct pv_gnttab_copy_seg s, b[3];
	grant_ref_t rw, ro, ended, other;
	uint8_t *rw_page;
	uint32_t h, junk;
	uint64_t n = 0;

	local_open(&k);
	rw = share_text(&k.a, 0, true, "to dom0", &rw_page);
	ro = share_text(&k.a, 0, false, "read only", NULL);
	ended = share_text(&k.a, 0, true, "ended", NULL);
	assert_int_equal(pv_gnttab_end_foreign_access_ref(k.a.gs, ended), 0);
	other = share_text(&k.a, (domid_t)k.db, true, "for b", NULL);

	/* Both directions, data and flags as through the hypervisor. */
	s = seg_from_grant((uint16_t)k.da, rw, 0, k.own, 8);
	assert_int_equal(copy1(k.gt, &s), GNTST_okay);
	assert_string_equal((char *)k.own, "to dom0");
	strcpy((char *)k.own, "from dom0");
	s = seg_to_grant(k.own, (uint16_t)k.da, rw, 100, 10);
	assert_int_equal(copy1(k.gt, &s), GNTST_okay);
	assert_string_equal((char *)rw_page + 100, "from dom0");
	assert_int_equal(pv_gnttab_query_flags(k.a.gs, rw), GTF_permit_access);
	n = 2;
	assert_int_equal(pv_gnttab_local_copies(k.gt), n);

	/* Every refusal with Xen's code, still in-process. */
	struct { struct pv_gnttab_copy_seg s; int16_t want; } cases[] = {
		{ seg_to_grant(k.own, (uint16_t)k.da, ro, 0, 4), GNTST_general_error },
		{ seg_from_grant((uint16_t)k.da, ro, 0, k.own, 4), GNTST_okay },
		{ seg_from_grant((uint16_t)k.da, ended, 0, k.own, 4), GNTST_general_error },
		{ seg_from_grant((uint16_t)k.da, other, 0, k.own, 4), GNTST_general_error },
		{ seg_from_grant((uint16_t)k.da, 300, 0, k.own, 4), GNTST_general_error },
		{ seg_from_grant((uint16_t)k.da, 64 * 512, 0, k.own, 4), GNTST_bad_gntref },
		{ seg_from_grant((uint16_t)k.da, rw, 4000, k.own, 200), GNTST_bad_copy_arg },
		{ seg_to_grant(k.own, (uint16_t)k.da, rw, 0, 4097), GNTST_bad_copy_arg },
		{ seg_from_grant((uint16_t)k.da, rw, 0, &junk, 4), GNTST_bad_page },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(copy1(k.gt, &cases[i].s), cases[i].want);
		assert_int_equal(pv_gnttab_local_copies(k.gt), ++n);
	}
	for (grant_ref_t r = 8; r < 16; r++)  /* no pin left behind by the failures */
		assert_int_equal(pv_gnttab_query_flags(k.a.gs, r) & (GTF_reading | GTF_writing), 0);

	/* A batch with a failure in the middle: one status each. */
	b[0] = seg_from_grant((uint16_t)k.da, rw, 0, k.own, 4);
	b[1] = seg_from_grant((uint16_t)k.da, ended, 0, k.own, 4);
	b[2] = seg_from_grant((uint16_t)k.da, ro, 0, k.own + 8, 4);
	assert_int_equal(pv_gnttab_grant_copy(k.gt, 3, b), 0);
	assert_int_equal(b[0].status, GNTST_okay);
	assert_int_equal(b[1].status, GNTST_general_error);
	assert_int_equal(b[2].status, GNTST_okay);
	n += 3;
	assert_int_equal(pv_gnttab_local_copies(k.gt), n);

	/* Not for in-process: an unknown domain, two granters in one chunk. */
	s = seg_from_grant(999, rw, 0, k.own, 4);
	assert_int_equal(copy1(k.gt, &s), GNTST_bad_domain);
	b[0] = seg_from_grant((uint16_t)k.da, rw, 0, k.own, 4);
	b[1] = seg_from_grant((uint16_t)k.db, 8, 0, k.own, 4);
	assert_int_equal(pv_gnttab_grant_copy(k.gt, 2, b), 0);
	assert_int_equal(b[0].status, GNTST_okay);
	assert_int_equal(b[1].status, GNTST_general_error);
	assert_int_equal(pv_gnttab_local_copies(k.gt), n);

	/* The pins are shared with the hypervisor's: a mapping's pin
	 * survives a copy's, and a copy's pin stops the granter's end. */
	assert_int_equal(map1(k.gt, k.da, rw, false, &h, NULL), GNTST_okay);
	s = seg_from_grant((uint16_t)k.da, rw, 0, k.own, 4);
	assert_int_equal(copy1(k.gt, &s), GNTST_okay);
	assert_int_equal(pv_gnttab_end_foreign_access_ref(k.a.gs, rw), -EBUSY);
	assert_int_equal(unmap1(k.gt, h), GNTST_okay);
	assert_int_equal(pv_gnttab_test_lock(k.gt, k.da, ro), 0);
	assert_int_equal(pv_gnttab_end_foreign_access_ref(k.a.gs, ro), -EBUSY);
	pv_gnttab_test_unlock(k.gt, k.da, ro);
	assert_int_equal(pv_gnttab_end_foreign_access_ref(k.a.gs, ro), 0);

	/* The advisory check answers what a copy would. */
	assert_int_equal(pv_gnttab_grant_check(k.gt, k.da, rw, true), GNTST_okay);
	assert_int_equal(pv_gnttab_grant_check(k.gt, k.da, ro, false), GNTST_general_error);
	assert_int_equal(pv_gnttab_grant_check(k.gt, k.da, ended, false), GNTST_general_error);
	assert_int_equal(pv_gnttab_grant_check(k.gt, k.da, other, false), GNTST_general_error);
	assert_int_equal(pv_gnttab_grant_check(k.gt, k.da, 64 * 512, false), GNTST_bad_gntref);
	ro = share_text(&k.a, 0, false, "read only again", NULL);
	assert_int_equal(pv_gnttab_grant_check(k.gt, k.da, ro, false), GNTST_okay);
	assert_int_equal(pv_gnttab_grant_check(k.gt, k.da, ro, true), GNTST_general_error);

	/* The granter destroyed: the copy says bad_domain, nothing faults. */
	assert_int_equal(pv_hv_domain_destroy(k.hv, k.da), 0);
	assert_int_equal(pv_gnttab_grant_check(k.gt, k.da, rw, true), GNTST_bad_domain);
	s = seg_from_grant((uint16_t)k.da, rw, 0, k.own, 4);
	assert_int_equal(copy1(k.gt, &s), GNTST_bad_domain);
	local_close(&k);
}

/* A domU is never handed another domain's grant state. */
static int local_domu(void *arg)
{
	const char *sock = arg;
	struct pv_gnttab *gt = pv_gnttab_open(sock);

	CHECK(gt);
	CHECK_EQ(pv_gnttab_test_lock(gt, 1, UINT32_MAX), -ENOENT);
	CHECK_EQ(pv_gnttab_grant_check(gt, 1, 64 * 512, true), GNTST_okay);  /* cannot tell */
	pv_gnttab_close(gt);
	return 0;
}

struct holder_ctx {
	uint32_t da;
	grant_ref_t ref;
	int sv[2];
};

/* dom0 process that takes the grant lock with a read pin and dies holding it. */
static int holder_dies(void *arg)
{
	struct holder_ctx *x = arg;
	struct pv_gnttab *gt = pv_gnttab_open(H1.sock);

	CHECK(gt);
	CHECK_EQ(pv_gnttab_test_lock(gt, x->da, x->ref), 0);
	hvt_put(x->sv[1], 1);
	CHECK_EQ(hvt_get(x->sv[1]), 2);
	_exit(0);
}

static bool end_ok(void *arg)
{
	struct local_kit *k = arg;
	grant_ref_t ref = (grant_ref_t)(uintptr_t)k->own[4095];
	return pv_gnttab_end_foreign_access_ref(k->a.gs, ref) == 0;
}

static void test_local_holder_dies(void **state)
{
	struct local_kit k = { 0 };
	struct holder_ctx x;
	struct pv_gnttab_copy_seg s;
	grant_ref_t r, q;
	uint32_t h;
	pid_t p;

	local_open(&k);
	p = hvt_fork(local_domu, k.sock);
	assert_int_equal(hvt_wait(p), 0);
	r = share_text(&k.a, 0, true, "pinned by the dead", NULL);
	q = share_text(&k.a, 0, true, "mapped by the living", NULL);
	assert_int_equal(map1(k.gt, k.da, q, false, &h, NULL), GNTST_okay);
	x.da = k.da;
	x.ref = r;
	hvt_pipe(x.sv);
	p = hvt_fork(holder_dies, &x);
	assert_int_equal(hvt_get(x.sv[0]), 1);
	assert_int_equal(pv_gnttab_end_foreign_access_ref(k.a.gs, r), -EBUSY);
	hvt_put(x.sv[0], 2);
	assert_int_equal(hvt_wait(p), 0);
	/* The hypervisor takes the lock over when the dead process's
	 * connection goes and recounts the pins from its mappings: the dead
	 * one's pin is gone, the living mapping's stays. */
	k.own[4095] = (uint8_t)r;
	assert_true(r < 256 && wait_until(end_ok, &k));
	assert_int_equal(pv_gnttab_end_foreign_access_ref(k.a.gs, q), -EBUSY);
	/* In-process copies go on. */
	s = seg_from_grant((uint16_t)k.da, q, 0, k.own, 4);
	assert_int_equal(copy1(k.gt, &s), GNTST_okay);
	assert_int_equal(pv_gnttab_local_copies(k.gt), 1);
	assert_int_equal(unmap1(k.gt, h), GNTST_okay);
	assert_int_equal(pv_gnttab_end_foreign_access_ref(k.a.gs, q), 0);
	local_close(&k);
}

/* dom0 process that takes the grant lock and stops. */
static int holder_stops(void *arg)
{
	struct holder_ctx *x = arg;
	struct pv_gnttab *gt = pv_gnttab_open(H1.sock);

	CHECK(gt);
	CHECK_EQ(pv_gnttab_test_lock(gt, x->da, UINT32_MAX), 0);
	hvt_put(x->sv[1], 1);
	raise(SIGSTOP);
	pv_gnttab_test_unlock(gt, x->da, UINT32_MAX);
	pv_gnttab_close(gt);
	return 0;
}

static void test_local_holder_stopped(void **state)
{
	struct local_kit k = { 0 };
	struct holder_ctx x;
	struct pv_domain_info info;
	grant_ref_t r, q;
	uint64_t t0, dt;
	uint32_t h, hq;
	int st;
	pid_t p;

	local_open(&k);
	r = share_text(&k.a, 0, true, "locked", NULL);
	q = share_text(&k.a, 0, true, "mapped", NULL);
	assert_int_equal(map1(k.gt, k.da, q, false, &hq, NULL), GNTST_okay);
	x.da = k.da;
	hvt_pipe(x.sv);
	p = hvt_fork(holder_stops, &x);
	assert_int_equal(hvt_get(x.sv[0]), 1);
	assert_int_equal(waitpid(p, &st, WUNTRACED), p);
	assert_true(WIFSTOPPED(st));
	/* The hypervisor waits a bounded time for the lock, then refuses
	 * the map; it never hangs, and serves everybody else. */
	t0 = pv_now_ns();
	assert_int_equal(map1(k.gt, k.da, r, false, NULL, NULL), GNTST_general_error);
	dt = pv_now_ns() - t0;
	assert_true(dt >= 900000000ull && dt < 5000000000ull);
	assert_int_equal(pv_hv_domain_info(k.hv, k.db, &info), 0);
	/* An unmap meanwhile is not refused: the handle goes, and the pins
	 * are recounted from the mappings left once the lock is free. */
	assert_int_equal(unmap1(k.gt, hq), GNTST_okay);
	kill(p, SIGCONT);
	assert_int_equal(hvt_wait(p), 0);
	assert_int_equal(map1(k.gt, k.da, r, false, &h, NULL), GNTST_okay);
	assert_int_equal(unmap1(k.gt, h), GNTST_okay);
	assert_int_equal(pv_gnttab_query_flags(k.a.gs, r), GTF_permit_access);
	assert_int_equal(pv_gnttab_query_flags(k.a.gs, q), GTF_permit_access);
	local_close(&k);
}

/* ---- event channels between processes -------------------------------------------- */

struct ec_ctx {
	char sock[256];
	int gport, other_port;
	int sv[2];
};

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1;
}

/* The backend's half of a masking check, in step with the guest over `sv`
 * (steps base..base+3): one send, which the guest takes and leaves masked,
 * then two more, which must coalesce and fire on unmask. */
static void masking_sends(struct pv_evtchn *ec, int port, int sv, uint32_t base)
{
	CHECK_EQ(hvt_get(sv), base);
	CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), 0);
	hvt_put(sv, base + 1);
	CHECK_EQ(hvt_get(sv), base + 2);
	CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), 0);
	CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), 0);
	hvt_put(sv, base + 3);
}

/* dom0's side: binds the guest's port, then ping-pongs. */
static int ec_backend(void *arg)
{
	struct ec_ctx *x = arg;
	struct pv_evtchn *ec = pv_evtchn_open(NULL);
	int port;

	CHECK(ec);
	/* Only the domain a port was allocated for may bind it. */
	CHECK_EQ(pv_evtchn_bind_interdomain(ec, 1, (evtchn_port_t)x->other_port), -EINVAL);
	CHECK_EQ(pv_evtchn_bind_interdomain(ec, 1, 999), -EINVAL);
	CHECK_EQ(pv_evtchn_bind_interdomain(ec, 77, 1), -ESRCH);
	port = pv_evtchn_bind_interdomain(ec, 1, (evtchn_port_t)x->gport);
	CHECK(port > 0);
	CHECK_EQ(pv_evtchn_status(ec, (evtchn_port_t)port), EVTCHNSTAT_interdomain);
	/* A bound port cannot be bound again. */
	CHECK_EQ(pv_evtchn_bind_interdomain(ec, 1, (evtchn_port_t)x->gport), -EINVAL);
	/* A new binding is pending once. */
	CHECK(readable(pv_evtchn_fd(ec), 1000));
	CHECK_EQ(pv_evtchn_pending(ec), port);
	CHECK_EQ(pv_evtchn_pending(ec), -EAGAIN);
	CHECK_EQ(pv_evtchn_unmask(ec, (evtchn_port_t)port), 0);
	hvt_put(x->sv[1], (uint32_t)port);

	/* Ping-pong. */
	for (int i = 0; i < 100; i++) {
		CHECK(readable(pv_evtchn_fd(ec), 5000));
		CHECK_EQ(pv_evtchn_pending(ec), port);
		CHECK_EQ(pv_evtchn_unmask(ec, (evtchn_port_t)port), 0);
		CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), 0);
	}
	masking_sends(ec, port, x->sv[1], 10);

	/* Close our end: the guest's port is unbound (still for us). */
	CHECK_EQ(hvt_get(x->sv[1]), 20);
	CHECK_EQ(pv_evtchn_bind_interdomain(ec, 1, (evtchn_port_t)x->other_port), -EINVAL);
	CHECK_EQ(pv_evtchn_unbind(ec, (evtchn_port_t)port), 0);
	CHECK_EQ(pv_evtchn_unbind(ec, (evtchn_port_t)port), -EINVAL);
	CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), -EINVAL);
	CHECK_EQ(pv_evtchn_unmask(ec, (evtchn_port_t)port), -EINVAL);
	hvt_put(x->sv[1], 21);
	/* Rebind it, then let the handle go: closing it unbinds its ports. */
	CHECK_EQ(hvt_get(x->sv[1]), 22);
	port = pv_evtchn_bind_interdomain(ec, 1, (evtchn_port_t)x->gport);
	CHECK(port > 0);
	hvt_put(x->sv[1], 23);
	CHECK_EQ(hvt_get(x->sv[1]), 24);
	pv_evtchn_close(ec);
	hvt_put(x->sv[1], 25);
	return 0;
}

static bool port1_unbound(void *ec)
{
	return pv_evtchn_status(ec, 1) == EVTCHNSTAT_unbound;
}

static void test_evtchn(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct pv_evtchn *ec;
	struct ec_ctx x;
	int bport;
	pid_t b;

	assert_non_null(hv);
	setenv(PV_HV_ENV, H1.sock, 1);
	new_domain(hv, "g", x.sock, sizeof(x.sock));
	new_domain(hv, "g2", NULL, 0);
	ec = pv_evtchn_open(x.sock);
	assert_non_null(ec);
	x.gport = pv_evtchn_bind_unbound_port(ec, 0);
	assert_int_equal(x.gport, 1);
	x.other_port = pv_evtchn_bind_unbound_port(ec, 2);
	assert_int_equal(x.other_port, 2);
	/* New ports have nothing pending: the fd says nothing. */
	assert_false(readable(pv_evtchn_fd(ec), 0));
	assert_int_equal(pv_evtchn_status(ec, 1), EVTCHNSTAT_unbound);
	assert_int_equal(pv_evtchn_status(ec, 3), EVTCHNSTAT_closed);
	assert_int_equal(pv_evtchn_status(ec, 5000), -EINVAL);
	/* Unknown and closed ports. */
	assert_int_equal(pv_evtchn_notify(ec, 3), -EINVAL);
	assert_int_equal(pv_evtchn_notify(ec, 0), -EINVAL);
	assert_int_equal(pv_evtchn_notify(ec, 999999), -EINVAL);
	assert_int_equal(pv_evtchn_unmask(ec, 3), -EINVAL);
	assert_int_equal(pv_evtchn_unbind(ec, 3), -EINVAL);
	/* Notify on an unbound port is dropped silently. */
	assert_int_equal(pv_evtchn_notify(ec, 1), 0);
	assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
	hvt_pipe(x.sv);

	b = hvt_fork(ec_backend, &x);
	bport = (int)hvt_get(x.sv[0]);
	assert_true(bport > 0);
	assert_int_equal(pv_evtchn_status(ec, 1), EVTCHNSTAT_interdomain);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(pv_evtchn_notify(ec, 1), 0);
		assert_true(readable(pv_evtchn_fd(ec), 5000));
		assert_int_equal(pv_evtchn_pending(ec), 1);
		assert_int_equal(pv_evtchn_unmask(ec, 1), 0);
	}
	/* Take one event and leave port 1 masked; two more sends arrive. */
	hvt_put(x.sv[0], 10);
	assert_int_equal(hvt_get(x.sv[0]), 11);
	assert_true(readable(pv_evtchn_fd(ec), 5000));
	assert_int_equal(pv_evtchn_pending(ec), 1);
	hvt_put(x.sv[0], 12);
	assert_int_equal(hvt_get(x.sv[0]), 13);
	/* Masked: at most one wakeup shows the event, pending() leaves the
	 * port pending, and the fd does not spin. */
	if (readable(pv_evtchn_fd(ec), 100))
		assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
	assert_false(readable(pv_evtchn_fd(ec), 100));
	assert_int_equal(pv_evtchn_unmask(ec, 1), 0);
	assert_true(readable(pv_evtchn_fd(ec), 1000));  /* fires on unmask */
	assert_int_equal(pv_evtchn_pending(ec), 1);
	assert_int_equal(pv_evtchn_pending(ec), -EAGAIN); /* the two sends coalesced */
	assert_int_equal(pv_evtchn_unmask(ec, 1), 0);

	/* Remote close: our port is unbound again; notify is dropped. */
	hvt_put(x.sv[0], 20);
	assert_int_equal(hvt_get(x.sv[0]), 21);
	assert_int_equal(pv_evtchn_status(ec, 1), EVTCHNSTAT_unbound);
	assert_int_equal(pv_evtchn_notify(ec, 1), 0);
	hvt_put(x.sv[0], 22);
	assert_int_equal(hvt_get(x.sv[0]), 23);
	assert_int_equal(pv_evtchn_status(ec, 1), EVTCHNSTAT_interdomain);
	hvt_put(x.sv[0], 24);
	assert_int_equal(hvt_get(x.sv[0]), 25);
	assert_int_equal(hvt_wait(b), 0);
	assert_true(wait_until(port1_unbound, ec));
	assert_int_equal(pv_evtchn_notify(ec, 1), 0);
	/* Drain whatever arrived (the rebinding's first event is spurious-ok). */
	while (pv_evtchn_pending(ec) > 0)
		;
	pv_evtchn_close(ec);
	pv_hv_close(hv);
	unsetenv(PV_HV_ENV);
}

/* ---- event channels delivered into the caller's epoll set --------------------------- */

#define ATT_TAG 0x5a5a0001u
#define ATT_ROUNDS 70000

/* Wait (up to ms) for the attached tag; false on timeout. */
static bool att_wait(int ep, int ms)
{
	struct epoll_event ev;
	int n;

	while ((n = epoll_wait(ep, &ev, 1, ms)) < 0 && errno == EINTR)
		;
	return n == 1 && ev.data.u64 == ATT_TAG;
}

static int att_backend(void *arg)
{
	struct ec_ctx *x = arg;
	struct pv_evtchn *ec = pv_evtchn_open(NULL);
	int ep = epoll_create1(EPOLL_CLOEXEC), port;

	CHECK(ec && ep >= 0);
	CHECK_EQ(pv_evtchn_attach(ec, ep, ATT_TAG), 0);
	port = pv_evtchn_bind_interdomain(ec, 1, (evtchn_port_t)x->gport);
	CHECK(port > 0);
	/* A new binding is pending once, attached too. */
	CHECK(att_wait(ep, 1000));
	CHECK_EQ(pv_evtchn_pending(ec), port);
	CHECK_EQ(pv_evtchn_pending(ec), -EAGAIN);
	CHECK_EQ(pv_evtchn_unmask(ec, (evtchn_port_t)port), 0);
	CHECK(!att_wait(ep, 0));
	hvt_put(x->sv[1], (uint32_t)port);
	/* Ping-pong: each event taken, then answered. */
	for (int i = 0; i < ATT_ROUNDS; i++) {
		int p;

		CHECK(att_wait(ep, 5000));
		while ((p = pv_evtchn_pending(ec)) == -EAGAIN && att_wait(ep, 5000))
			;
		CHECK_EQ(p, port);
		CHECK_EQ(pv_evtchn_unmask(ec, (evtchn_port_t)port), 0);
		CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), 0);
	}
	/* A burst: 100000 notifies coalesce into one pending event. */
	CHECK_EQ(hvt_get(x->sv[1]), 30);
	for (int i = 0; i < 100000; i++)
		CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), 0);
	hvt_put(x->sv[1], 31);
	masking_sends(ec, port, x->sv[1], 40);
	/* The guest's second port: bound here too, then notified. */
	CHECK_EQ(hvt_get(x->sv[1]), 50);
	x->other_port = pv_evtchn_bind_interdomain(ec, 1, (evtchn_port_t)x->other_port);
	CHECK(x->other_port > 0);
	CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)x->other_port), 0);
	CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), 0);
	hvt_put(x->sv[1], 51);
	CHECK_EQ(hvt_get(x->sv[1]), 60);
	pv_evtchn_close(ec);
	close(ep);
	return 0;
}

static void test_evtchn_attach(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct pv_evtchn *ec;
	struct ec_ctx x;
	int ep = epoll_create1(EPOLL_CLOEXEC), p2;
	uint64_t t0;
	pid_t b;

	assert_non_null(hv);
	assert_true(ep >= 0);
	setenv(PV_HV_ENV, H1.sock, 1);
	new_domain(hv, "g", x.sock, sizeof(x.sock));
	ec = pv_evtchn_open(x.sock);
	assert_non_null(ec);
	x.gport = pv_evtchn_bind_unbound_port(ec, 0);
	assert_int_equal(x.gport, 1);
	/* Attaching moves the bound port; a second attach is refused;
	 * detaching a handle that is not attached does nothing. */
	assert_int_equal(pv_evtchn_attach(ec, -1, 0), 0);
	setenv("PVNET_EVTCHN_LEVEL", "1", 1);   /* the switch to the handle's own fd */
	assert_int_equal(pv_evtchn_attach(ec, ep, ATT_TAG), -EOPNOTSUPP);
	unsetenv("PVNET_EVTCHN_LEVEL");
	assert_int_equal(pv_evtchn_attach(ec, ep, ATT_TAG), 0);
	assert_int_equal(pv_evtchn_attach(ec, ep, ATT_TAG), -EINVAL);
	x.other_port = p2 = pv_evtchn_bind_unbound_port(ec, 0);  /* bound after attaching */
	assert_int_equal(p2, 2);
	assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
	hvt_pipe(x.sv);

	b = hvt_fork(att_backend, &x);
	assert_true(hvt_get(x.sv[0]) > 0);
	t0 = pv_now_ns();
	for (int i = 0; i < ATT_ROUNDS; i++) {
		int p;

		assert_int_equal(pv_evtchn_notify(ec, 1), 0);
		assert_true(att_wait(ep, 5000));
		while ((p = pv_evtchn_pending(ec)) == -EAGAIN && att_wait(ep, 5000))
			;
		assert_int_equal(p, 1);
		assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
		assert_int_equal(pv_evtchn_unmask(ec, 1), 0);
	}
	printf("# %d attached round trips: %.2f us each\n", ATT_ROUNDS,
	       (double)(pv_now_ns() - t0) / ATT_ROUNDS / 1000.0);
	/* The burst: one event, and the fd does not report it again. */
	hvt_put(x.sv[0], 30);
	assert_int_equal(hvt_get(x.sv[0]), 31);
	assert_true(att_wait(ep, 1000));
	assert_int_equal(pv_evtchn_pending(ec), 1);
	assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
	assert_int_equal(pv_evtchn_unmask(ec, 1), 0);
	while (att_wait(ep, 0))   /* edges of the burst's writes we took already */
		assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
	/* Pending while masked: no spin, fires on unmask. */
	hvt_put(x.sv[0], 40);
	assert_int_equal(hvt_get(x.sv[0]), 41);
	assert_true(att_wait(ep, 1000));
	assert_int_equal(pv_evtchn_pending(ec), 1);   /* masked now */
	hvt_put(x.sv[0], 42);
	assert_int_equal(hvt_get(x.sv[0]), 43);
	if (att_wait(ep, 100))
		assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
	assert_false(att_wait(ep, 100));
	assert_int_equal(pv_evtchn_unmask(ec, 1), 0);
	assert_true(att_wait(ep, 1000));               /* fires on unmask */
	assert_int_equal(pv_evtchn_pending(ec), 1);
	assert_int_equal(pv_evtchn_pending(ec), -EAGAIN); /* the two sends coalesced */
	assert_int_equal(pv_evtchn_unmask(ec, 1), 0);
	/* Detached, the handle's own fd reports the events of both ports
	 * (the second just bound); taking one port per wake-up, the fd stays
	 * readable while the other is pending (as libxenevtchn's). */
	assert_int_equal(pv_evtchn_attach(ec, -1, 0), 0);
	hvt_put(x.sv[0], 50);
	assert_int_equal(hvt_get(x.sv[0]), 51);
	assert_false(att_wait(ep, 100));
	assert_true(readable(pv_evtchn_fd(ec), 1000));
	p2 = pv_evtchn_pending(ec);
	assert_true(p2 == 1 || p2 == 2);
	assert_true(readable(pv_evtchn_fd(ec), 0));
	assert_int_equal(pv_evtchn_pending(ec), 3 - p2);
	assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
	assert_int_equal(pv_evtchn_unmask(ec, 1), 0);
	assert_int_equal(pv_evtchn_unmask(ec, 2), 0);
	assert_false(readable(pv_evtchn_fd(ec), 100));
	assert_int_equal(pv_evtchn_attach(ec, ep, ATT_TAG), 0);
	/* Unbinding takes the port out of our set. */
	assert_int_equal(pv_evtchn_unbind(ec, 2), 0);
	assert_int_equal(pv_evtchn_notify(ec, 2), -EINVAL);
	hvt_put(x.sv[0], 60);
	assert_int_equal(hvt_wait(b), 0);
	while (att_wait(ep, 100))   /* the peer's ports closing */
		(void)pv_evtchn_pending(ec);
	assert_int_equal(pv_evtchn_status(ec, 1), EVTCHNSTAT_unbound);
	pv_evtchn_close(ec);
	close(ep);
	pv_hv_close(hv);
	unsetenv(PV_HV_ENV);
}

/* ---- suspend, cancelled ------------------------------------------------------------ */

struct susp_ctx {
	char sock[256];
	int sv[2];
};

static int susp_guest(void *arg)
{
	struct susp_ctx *x = arg;
	struct pv_resume_info info;
	struct pv_evtchn *ec;
	struct guest g = { 0 };
	uint8_t *page;
	grant_ref_t ref;
	int port;

	guest_open(&g, x->sock);
	CHECK(ec = pv_evtchn_open(x->sock));
	ref = share_text(&g, 0, true, "before suspend", &page);
	port = pv_evtchn_bind_unbound_port(ec, 0);
	CHECK(port > 0);
	hvt_put(x->sv[1], ref);
	hvt_put(x->sv[1], (uint32_t)port);
	CHECK_EQ(hvt_get(x->sv[1]), 1); /* dom0 mapped and bound */
	while (pv_evtchn_pending(ec) > 0)
		;
	CHECK_EQ(pv_evtchn_unmask(ec, (evtchn_port_t)port), 0);

	CHECK_EQ(pv_hv_suspend(g.hv, &info), 1);  /* cancelled */
	/* Everything is intact. */
	CHECK_EQ(pv_gnttab_end_foreign_access_ref(g.gs, ref), -EBUSY);
	CHECK_EQ(pv_evtchn_notify(ec, (evtchn_port_t)port), 0);
	CHECK(readable(pv_evtchn_fd(ec), 5000));
	CHECK_EQ(pv_evtchn_pending(ec), port);
	CHECK(strcmp((char *)page, "written after resume") == 0);
	pv_evtchn_close(ec);
	guest_close(&g);
	return 0;
}

static void test_suspend_cancelled(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct pv_gnttab *gt = pv_gnttab_open(H1.sock);
	struct pv_evtchn *ec = pv_evtchn_open(H1.sock);
	struct pv_domain_info info;
	struct susp_ctx x;
	uint32_t ref, gport, pages;
	uint32_t handle;
	char *p;
	int bport, memfd;
	pid_t g;

	assert_non_null(hv);
	assert_non_null(gt);
	assert_non_null(ec);
	new_domain(hv, "g", x.sock, sizeof(x.sock));
	hvt_pipe(x.sv);
	g = hvt_fork(susp_guest, &x);
	ref = hvt_get(x.sv[0]);
	gport = hvt_get(x.sv[0]);
	assert_int_equal(map1(gt, 1, ref, false, &handle, (void **)&p), GNTST_okay);
	assert_string_equal(p, "before suspend");
	bport = pv_evtchn_bind_interdomain(ec, 1, gport);
	assert_true(bport > 0);
	assert_int_equal(pv_evtchn_pending(ec), bport); /* the binding's first event */
	assert_int_equal(pv_evtchn_unmask(ec, (evtchn_port_t)bport), 0);
	hvt_put(x.sv[0], 1);

	assert_int_equal(pv_hv_domain_wait(hv, 1, 1u << PV_DOM_SUSPENDED, 10000), 0);
	assert_int_equal(pv_hv_domain_info(hv, 1, &info), 0);
	assert_int_equal(info.state, PV_DOM_SUSPENDED);
	assert_int_equal(info.shutdown_reason, SHUTDOWN_suspend);
	assert_int_equal(info.mappings_held, 0);
	assert_int_equal(info.ports_in_use, 1);
	/* A suspended domain can be exported (a checkpoint), then resumed. */
	assert_int_equal(pv_hv_domain_export(hv, 1, &memfd, &pages), 0);
	assert_int_equal(pages, 16384);
	close(memfd);
	assert_int_equal(pv_hv_domain_resume(hv, 1), 0);
	assert_int_equal(pv_hv_domain_resume(hv, 1), -EINVAL); /* not suspended now */
	strcpy(p, "written after resume");
	assert_true(readable(pv_evtchn_fd(ec), 5000));
	assert_int_equal(pv_evtchn_pending(ec), bport);
	assert_int_equal(pv_evtchn_notify(ec, (evtchn_port_t)bport), 0);
	assert_int_equal(hvt_wait(g), 0);
	assert_int_equal(unmap1(gt, handle), GNTST_okay);
	pv_evtchn_close(ec);
	pv_gnttab_close(gt);
	pv_hv_close(hv);
}

/* ---- suspend and move to another hypervisor ----------------------------------------- */

struct move_ctx {
	char sock[256];
	uint32_t new_domid;
	int sv[2];
};

/* The permissions /proc/self/maps shows for the mapping holding p ("rw-s"). */
static const char *maps_perms(const void *p)
{
	static char perms[8];
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	snprintf(perms, sizeof(perms), "????");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char pm[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, pm) == 3 && (unsigned long)p >= lo &&
		    (unsigned long)p < hi) {
			snprintf(perms, sizeof(perms), "%s", pm);
			break;
		}
	}
	if (f)
		fclose(f);
	return perms;
}

static int move_guest(void *arg)
{
	struct move_ctx *x = arg;
	struct pv_mem_id mid = { 0 }, mid_before;
	struct pv_resume_info info;
	struct pv_evtchn *ec, *ec2;
	struct guest g = { 0 }, n = { 0 };
	uint8_t *page, *base;
	size_t pages;
	grant_ref_t ref;
	int port;

	guest_open(&g, x->sock);
	CHECK(ec = pv_evtchn_open(x->sock));
	ref = share_text(&g, 0, true, "survives the move", &page);
	memset(g.mem + 100 * PV_PAGE_SIZE, 0xc3, PV_PAGE_SIZE);
	port = pv_evtchn_bind_unbound_port(ec, 0);
	CHECK(port > 0);
	hvt_put(x->sv[1], ref);
	hvt_put(x->sv[1], (uint32_t)port);
	CHECK_EQ(hvt_get(x->sv[1]), 1);

	/* Memory of another size than what is at `at` is refused. */
	pages = g.pages + 1;
	CHECK(!pv_hv_map_own_memory_id(g.hv, g.mem, &pages, &mid) && errno == EPROTO);
	/* Which memory object the guest maps (mapped again, same place). */
	pages = g.pages;
	CHECK(pv_hv_map_own_memory_id(g.hv, g.mem, &pages, &mid) == g.mem);
	CHECK(mid.ino != 0 && mid.npages == g.pages);
	mid_before = mid;
	/* A read-only window: a kept mapping keeps it, a new one would not. */
	CHECK_EQ(mprotect(g.mem + 200 * PV_PAGE_SIZE, PV_PAGE_SIZE, PROT_READ), 0);

	CHECK_EQ(pv_hv_suspend(g.hv, &info), 0);  /* moved */
	CHECK_EQ(info.new_domid, x->new_domid);
	CHECK(strcmp(info.start_info, "store=1 console=2") == 0);
	/* The old incarnation is gone. */
	CHECK(!pv_hv_map_own_memory(g.hv, NULL, &pages) && errno == ESRCH);
	CHECK(!pv_gntshr_open(g.hv) && errno == ESRCH);
	CHECK_EQ(pv_evtchn_bind_unbound_port(ec, 0), -ESRCH);

	/* Reconnect on the new hypervisor; the memory is where it was. */
	CHECK(n.hv = pv_hv_open(info.hypervisor_path));
	CHECK_EQ(pv_hv_domid(n.hv), x->new_domid);
	pages = g.pages;
	base = pv_hv_map_own_memory_id(n.hv, g.mem, &pages, &mid);
	CHECK(base == g.mem);
	CHECK_EQ(pages, g.pages);
	/* The memory moved with the domain: the very mapping was kept. */
	CHECK(mid.dev == mid_before.dev && mid.ino == mid_before.ino);
	CHECK(maps_perms(g.mem + 200 * PV_PAGE_SIZE)[1] == '-');
	CHECK_EQ(mprotect(g.mem + 200 * PV_PAGE_SIZE, PV_PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
	CHECK(strcmp((char *)page, "survives the move") == 0);
	CHECK_EQ(g.mem[100 * PV_PAGE_SIZE + 4095], 0xc3);
	CHECK(n.gs = pv_gntshr_open(n.hv));
	CHECK_EQ(pv_gnttab_query_flags(n.gs, ref), 0);  /* a fresh grant table */
	pv_gntshr_close(g.gs);
	pv_evtchn_close(ec);
	pv_hv_close(g.hv);
	/* Grant the same page again there, and a new channel. */
	pv_gnttab_grant_foreign_access_ref(n.gs, ref, 0, (uint32_t)pv_page_frame(g.pa, page), false);
	CHECK(ec2 = pv_evtchn_open(info.hypervisor_path));
	port = pv_evtchn_bind_unbound_port(ec2, 0);
	CHECK(port > 0);
	hvt_put(x->sv[1], (uint32_t)port);
	CHECK(readable(pv_evtchn_fd(ec2), 5000));
	CHECK_EQ(pv_evtchn_pending(ec2), port);
	CHECK_EQ(hvt_get(x->sv[1]), 2);
	pv_evtchn_close(ec2);
	pv_gntshr_close(n.gs);
	pv_pagealloc_free(g.pa);
	pv_hv_close(n.hv);
	return 0;
}

static void test_suspend_move(void **state)
{
	struct pv_hv *src = pv_hv_open(H1.sock), *dst = pv_hv_open(H2.sock);
	struct pv_gnttab *gt = pv_gnttab_open(H1.sock), *gt2 = pv_gnttab_open(H2.sock);
	struct pv_evtchn *ec = pv_evtchn_open(H1.sock), *ec2 = pv_evtchn_open(H2.sock);
	struct pv_domain_config in = { .incoming = true, .name = "g" };
	struct pv_resume_info info = { 0 };
	struct pv_domain_info di;
	struct pv_notice nt[8];
	struct pv_gnttab_copy_seg s;
	struct move_ctx x;
	uint32_t ref, gport, handle, pages, d2;
	int bport, memfd, n;
	uint8_t *p, *p2, *mine;
	size_t mine_pages;
	bool revoked = false, gone = false;
	pid_t g;

	assert_non_null(src);
	assert_non_null(dst);
	new_domain(src, "g", x.sock, sizeof(x.sock));
	new_domain(dst, "other", NULL, 0);  /* so the new domid differs: 2 */
	hvt_pipe(x.sv);
	x.new_domid = 2;
	g = hvt_fork(move_guest, &x);
	ref = hvt_get(x.sv[0]);
	gport = hvt_get(x.sv[0]);
	assert_int_equal(map1(gt, 1, ref, false, &handle, (void **)&p), GNTST_okay);
	assert_string_equal((char *)p, "survives the move");
	bport = pv_evtchn_bind_interdomain(ec, 1, gport);
	assert_true(bport > 0);
	hvt_put(x.sv[0], 1);

	/* The toolstack's part. */
	assert_int_equal(pv_hv_domain_wait(src, 1, 1u << PV_DOM_SUSPENDED, 10000), 0);
	assert_int_equal(pv_hv_domain_create(dst, &in, &d2), 0);
	assert_int_equal(d2, 2);
	assert_int_equal(pv_hv_domain_info(dst, d2, &di), 0);
	assert_int_equal(di.state, PV_DOM_INCOMING);
	assert_int_equal(pv_hv_domain_export(src, 1, &memfd, &pages), 0);
	assert_int_equal(pv_hv_domain_import(dst, d2, memfd, pages), 0);
	assert_int_equal(pv_hv_domain_import(dst, d2, memfd, pages), -EINVAL); /* not incoming */
	close(memfd);
	assert_int_equal(pv_hv_domain_info(dst, d2, &di), 0);
	assert_int_equal(di.state, PV_DOM_RUNNING);
	info.new_domid = d2;
	assert_int_equal(pv_hv_domain_socket(dst, d2, info.hypervisor_path,
					     sizeof(info.hypervisor_path)), 0);
	strcpy(info.start_info, "store=1 console=2");
	assert_int_equal(pv_hv_domain_moved(src, 1, &info), 0);
	assert_int_equal(pv_hv_domain_info(src, 1, &di), 0);
	assert_int_equal(di.state, PV_DOM_MOVED);
	assert_int_equal(pv_hv_domain_moved(src, 1, &info), -EINVAL);

	/* The old backend: mapping revoked, view inaccessible, channel unbound. */
	n = pv_gnttab_poll_notices(gt, nt, 8);
	for (int i = 0; i < n; i++) {
		revoked |= nt[i].type == PV_NOTICE_MAPPINGS_REVOKED && nt[i].domid == 1;
		gone |= nt[i].type == PV_NOTICE_DOMAIN_GONE && nt[i].domid == 1;
	}
	assert_true(revoked);
	assert_true(gone);
	assert_true(hvt_faults(p, false));
	assert_true(hvt_faults(p, true));
	assert_int_equal(unmap1(gt, handle), GNTST_okay);  /* the handle is released */
	assert_int_equal(unmap1(gt, handle), GNTST_bad_handle);
	assert_int_equal(map1(gt, 1, ref, false, NULL, NULL), GNTST_bad_domain);
	mine = pv_hv_map_own_memory(src, NULL, &mine_pages);
	assert_non_null(mine);
	assert_int_equal(pv_gnttab_set_own_memory(gt, mine, mine_pages), 0);
	s = seg_from_grant(1, ref, 0, mine, 4);
	assert_int_equal(copy1(gt, &s), GNTST_bad_domain);
	assert_int_equal(pv_evtchn_status(ec, (evtchn_port_t)bport), EVTCHNSTAT_unbound);
	assert_int_equal(pv_evtchn_notify(ec, (evtchn_port_t)bport), 0);

	/* The new backend: the same page through the new grant table. */
	gport = hvt_get(x.sv[0]);
	assert_int_equal(map1(gt2, d2, ref, false, &handle, (void **)&p2), GNTST_okay);
	assert_string_equal((char *)p2, "survives the move");
	bport = pv_evtchn_bind_interdomain(ec2, d2, gport);
	assert_true(bport > 0);
	assert_int_equal(pv_evtchn_notify(ec2, (evtchn_port_t)bport), 0);
	assert_int_equal(unmap1(gt2, handle), GNTST_okay);
	hvt_put(x.sv[0], 2);
	assert_int_equal(hvt_wait(g), 0);

	/* The toolstack destroys the old incarnation. */
	assert_int_equal(pv_hv_domain_destroy(src, 1), 0);
	assert_int_equal(pv_hv_domain_info(src, 1, &di), -ESRCH);
	munmap(mine, mine_pages * PV_PAGE_SIZE);
	pv_evtchn_close(ec);
	pv_evtchn_close(ec2);
	pv_gnttab_close(gt);
	pv_gnttab_close(gt2);
	pv_hv_close(src);
	pv_hv_close(dst);
}

/* ---- destroy with live mappings, and peer death --------------------------------------- */

static int blocked_guest(void *arg)
{
	struct susp_ctx *x = arg;
	struct pv_evtchn *ec;
	struct pv_gnttab *gt;
	struct guest g = { 0 };
	grant_ref_t ref;
	int port;

	guest_open(&g, x->sock);
	CHECK(ec = pv_evtchn_open(x->sock));
	CHECK(gt = pv_gnttab_open(x->sock));
	ref = share_text(&g, 0, false, "guest page", NULL);
	port = pv_evtchn_bind_unbound_port(ec, 0);
	hvt_put(x->sv[1], ref);
	hvt_put(x->sv[1], (uint32_t)port);
	/* Map a page dom0 granted us. */
	ref = hvt_get(x->sv[1]);
	CHECK_EQ(map1(gt, 0, ref, false, NULL, NULL), GNTST_okay);
	hvt_put(x->sv[1], 1);
	if (hvt_get(x->sv[1]) == 99)
		pause(); /* killed here */
	/* Our domain was destroyed: the hypervisor closed our connections. */
	CHECK_EQ(pv_evtchn_status(ec, (evtchn_port_t)port), -ECONNRESET);
	CHECK_EQ(pv_evtchn_bind_unbound_port(ec, 0), -ECONNRESET);
	pv_gnttab_close(gt);
	pv_evtchn_close(ec);
	guest_close(&g);
	return 0;
}

struct flags_arg {
	struct pv_gntshr *gs;
	grant_ref_t ref;
	struct pv_evtchn *ec;
	evtchn_port_t port;
};

static bool flags_clear(void *a)
{
	struct flags_arg *f = a;
	return pv_gnttab_query_flags(f->gs, f->ref) == GTF_permit_access;
}

static bool port_unbound(void *a)
{
	struct flags_arg *f = a;
	return pv_evtchn_status(f->ec, f->port) == EVTCHNSTAT_unbound;
}

static void destroy_or_kill(bool kill_it)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct pv_gnttab *gt = pv_gnttab_open(H1.sock);
	struct pv_evtchn *ec = pv_evtchn_open(H1.sock);
	struct guest d0 = { 0 };
	struct susp_ctx x;
	struct flags_arg f;
	struct pv_notice nt[8];
	uint32_t ref, gport, handle;
	uint8_t *p;
	int bport, n;
	pid_t g;

	assert_non_null(hv);
	new_domain(hv, "g", x.sock, sizeof(x.sock));
	guest_open(&d0, H1.sock);
	hvt_pipe(x.sv);
	g = hvt_fork(blocked_guest, &x);
	ref = hvt_get(x.sv[0]);
	gport = hvt_get(x.sv[0]);
	assert_int_equal(map1(gt, 1, ref, true, &handle, (void **)&p), GNTST_okay);
	bport = pv_evtchn_bind_interdomain(ec, 1, gport);
	assert_true(bport > 0);
	f = (struct flags_arg){ d0.gs, share_text(&d0, 1, true, "dom0 page", NULL), ec,
				(evtchn_port_t)bport };
	hvt_put(x.sv[0], f.ref);
	assert_int_equal(hvt_get(x.sv[0]), 1);
	assert_int_equal(pv_gnttab_query_flags(d0.gs, f.ref),
			 GTF_permit_access | GTF_reading | GTF_writing);

	if (kill_it) {
		/* Peer death: the process goes, the domain stays. What its
		 * connections held is released; our mapping of its grant stays. */
		hvt_put(x.sv[0], 99);
		usleep(20000);
		kill(g, SIGKILL);
		assert_int_equal(hvt_wait(g), 128 + SIGKILL);
		assert_true(wait_until(flags_clear, &f));
		assert_true(wait_until(port_unbound, &f));
		assert_string_equal((char *)p, "guest page");
		assert_int_equal(unmap1(gt, handle), GNTST_okay);
		assert_int_equal(pv_hv_domain_destroy(hv, 1), 0);
	} else {
		/* Destroy while mapped: the mapping is revoked, its view made
		 * inaccessible; peers get errors, not hangs. */
		assert_int_equal(pv_hv_domain_destroy(hv, 1), 0);
		assert_int_equal(pv_gnttab_query_flags(d0.gs, f.ref), GTF_permit_access);
		n = pv_gnttab_poll_notices(gt, nt, 8);
		assert_true(n >= 2);
		assert_int_equal(nt[0].type, PV_NOTICE_MAPPINGS_REVOKED);
		assert_int_equal(nt[n - 1].type, PV_NOTICE_DOMAIN_GONE);
		assert_true(hvt_faults(p, false));
		assert_int_equal(map1(gt, 1, ref, true, NULL, NULL), GNTST_bad_domain);
		assert_int_equal(unmap1(gt, handle), GNTST_okay);
		assert_int_equal(pv_evtchn_status(ec, (evtchn_port_t)bport), EVTCHNSTAT_unbound);
		assert_int_equal(pv_evtchn_notify(ec, (evtchn_port_t)bport), 0);
		assert_int_equal(pv_evtchn_bind_interdomain(ec, 1, gport), -ESRCH);
		/* dom0's pv_hv heard of it too. */
		n = pv_hv_poll_notices(hv, nt, 8);
		assert_int_equal(n, 1);
		assert_int_equal(nt[0].type, PV_NOTICE_DOMAIN_GONE);
		assert_int_equal(nt[0].domid, 1);
		assert_int_equal(pv_hv_poll_notices(hv, nt, 8), 0);
		hvt_put(x.sv[0], 2);
		assert_int_equal(hvt_wait(g), 0);
	}
	guest_close(&d0);
	pv_evtchn_close(ec);
	pv_gnttab_close(gt);
	pv_hv_close(hv);
}

static void test_destroy_with_mappings(void **state) { destroy_or_kill(false); }
static void test_peer_death(void **state) { destroy_or_kill(true); }

/* ---- waiting, shutdown, limits ------------------------------------------------------- */

struct wait_ctx {
	char sock[256];
	uint32_t domid;
	int expect;
};

static int waiter(void *arg)
{
	struct wait_ctx *x = arg;
	struct pv_hv *hv = pv_hv_open(H1.sock);

	CHECK(hv);
	CHECK_EQ(pv_hv_domain_wait(hv, x->domid, 1u << PV_DOM_SHUTDOWN, -1), x->expect);
	pv_hv_close(hv);
	return 0;
}

static int shutdown_guest(void *arg)
{
	struct wait_ctx *x = arg;
	struct pv_hv *hv = pv_hv_open(x->sock);

	CHECK(hv);
	CHECK_EQ(pv_hv_shutdown(hv, SHUTDOWN_suspend), -EINVAL);
	CHECK_EQ(pv_hv_shutdown(hv, 77), -EINVAL);
	usleep(50000);
	CHECK_EQ(pv_hv_shutdown(hv, SHUTDOWN_crash), 0);
	CHECK_EQ(pv_hv_shutdown(hv, SHUTDOWN_crash), -EINVAL);
	pv_hv_close(hv);
	return 0;
}

static void test_wait_shutdown(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct pv_domain_info di;
	struct pv_resume_info ri;
	struct wait_ctx x, y;
	pid_t w, g;

	assert_non_null(hv);
	x.domid = new_domain(hv, "g", x.sock, sizeof(x.sock));
	assert_int_equal(pv_hv_domain_wait(hv, x.domid, 1u << PV_DOM_SHUTDOWN, 0), -ETIMEDOUT);
	assert_int_equal(pv_hv_domain_wait(hv, x.domid, 1u << PV_DOM_SHUTDOWN, 50), -ETIMEDOUT);
	assert_int_equal(pv_hv_domain_wait(hv, x.domid, 1u << PV_DOM_RUNNING, -1), 0);
	assert_int_equal(pv_hv_domain_wait(hv, 77, 1u << PV_DOM_RUNNING, -1), -ESRCH);
	assert_int_equal(pv_hv_suspend(hv, &ri), -EINVAL);       /* dom0 does not suspend */
	assert_int_equal(pv_hv_shutdown(hv, SHUTDOWN_poweroff), -EINVAL);
	g = hvt_fork(shutdown_guest, &x);
	assert_int_equal(pv_hv_domain_wait(hv, x.domid, 1u << PV_DOM_SHUTDOWN, -1), 0);
	assert_int_equal(hvt_wait(g), 0);
	assert_int_equal(pv_hv_domain_info(hv, x.domid, &di), 0);
	assert_int_equal(di.state, PV_DOM_SHUTDOWN);
	assert_int_equal(di.shutdown_reason, SHUTDOWN_crash);

	/* A waiter on a domain that gets destroyed hears -ESRCH. */
	y.domid = new_domain(hv, "h", NULL, 0);
	y.expect = -ESRCH;
	w = hvt_fork(waiter, &y);
	usleep(100000);
	assert_int_equal(pv_hv_domain_destroy(hv, y.domid), 0);
	assert_int_equal(hvt_wait(w), 0);
	pv_hv_close(hv);
}

static void test_limits(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct pv_domain_config cfg = { .max_maptrack = 4, .max_ports = 2, .grant_frames = 1 };
	struct pv_gnttab_map_op ops[5];
	grant_ref_t refs[600];
	struct pv_evtchn *ec;
	struct pv_gnttab *gt;
	struct pv_gntshr *gs;
	struct guest d0 = { 0 };
	char sock[256];
	uint32_t d, handles[4];
	int16_t st[4];

	assert_non_null(hv);
	assert_int_equal(pv_hv_domain_create(hv, &cfg, &d), 0);
	assert_int_equal(pv_hv_domain_socket(hv, d, sock, sizeof(sock)), 0);
	guest_open(&d0, H1.sock);
	gt = pv_gnttab_open(sock);
	ec = pv_evtchn_open(sock);
	assert_non_null(gt);
	assert_non_null(ec);
	/* Mappings held. */
	for (int i = 0; i < 5; i++)
		ops[i] = (struct pv_gnttab_map_op){ .domid = 0, .ref = share_text(&d0, (domid_t)d, true,
											  "x", NULL) };
	assert_int_equal(pv_gnttab_map_batch(gt, 5, ops), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ops[i].status, GNTST_okay);
		handles[i] = ops[i].handle;
	}
	assert_int_equal(ops[4].status, GNTST_no_space);
	assert_int_equal(pv_gnttab_unmap_batch(gt, 4, handles, st), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(st[i], GNTST_okay);
	/* Ports. */
	assert_int_equal(pv_evtchn_bind_unbound_port(ec, 0), 1);
	assert_int_equal(pv_evtchn_bind_unbound_port(ec, 0), 2);
	assert_int_equal(pv_evtchn_bind_unbound_port(ec, 0), -ENOSPC);
	assert_int_equal(pv_evtchn_unbind(ec, 1), 0);
	assert_int_equal(pv_evtchn_bind_unbound_port(ec, 0), 1);
	/* Grant table: one frame of 512 entries, 8 reserved. */
	{
		struct pv_hv *g = pv_hv_open(sock);
		assert_non_null(g);
		gs = pv_gntshr_open(g);
		assert_non_null(gs);
		assert_int_equal(pv_gntshr_nr_entries(gs), 512);
		assert_int_equal(pv_gnttab_alloc_refs(gs, 505, refs), -ENOSPC);
		assert_int_equal(pv_gnttab_alloc_refs(gs, 504, refs), 0);
		assert_int_equal(refs[0], 8);
		assert_int_equal(pv_gnttab_grant_foreign_access(gs, 0, 1, false), -ENOSPC);
		pv_gnttab_free_refs(gs, 504, refs);
		pv_gntshr_close(gs);
		pv_hv_close(g);
	}
	{
		struct pv_gnttab *gt0 = pv_gnttab_open(H1.sock);
		assert_int_equal(map1(gt0, d, 512, true, NULL, NULL), GNTST_bad_gntref);
		pv_gnttab_close(gt0);
	}
	pv_evtchn_close(ec);
	pv_gnttab_close(gt);
	guest_close(&d0);
	pv_hv_close(hv);
}

/* Closing a mapping handle releases its mappings; closing an event-channel
 * handle unbinds its ports. */
static void test_handle_close(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct guest g = { 0 };
	struct pv_gnttab *gt = pv_gnttab_open(H1.sock);
	struct pv_evtchn *gec, *bec = pv_evtchn_open(H1.sock);
	struct flags_arg f;
	char sock[256];
	grant_ref_t ref;
	int gp, bp;

	new_domain(hv, "g", sock, sizeof(sock));
	guest_open(&g, sock);
	gec = pv_evtchn_open(sock);
	assert_non_null(gec);
	ref = share_text(&g, 0, true, "x", NULL);
	assert_int_equal(map1(gt, 1, ref, false, NULL, NULL), GNTST_okay);
	assert_int_equal(map1(gt, 1, ref, true, NULL, NULL), GNTST_okay);
	assert_int_equal(pv_gnttab_query_flags(g.gs, ref), GTF_permit_access | GTF_reading | GTF_writing);
	pv_gnttab_close(gt);
	f = (struct flags_arg){ g.gs, ref, gec, 0 };
	assert_true(wait_until(flags_clear, &f));
	gp = pv_evtchn_bind_unbound_port(gec, 0);
	bp = pv_evtchn_bind_interdomain(bec, 1, (evtchn_port_t)gp);
	assert_true(bp > 0);
	pv_evtchn_close(bec);
	f.port = (evtchn_port_t)gp;
	assert_true(wait_until(port_unbound, &f));
	pv_evtchn_close(gec);
	guest_close(&g);
	pv_hv_close(hv);
}


/* ---- bad input ----------------------------------------------------------------------- */

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Send raw bytes (and an fd), return the reply's ret (or -1000 if none). */
static int raw_call(int fd, const void *buf, size_t len, int pass_fd)
{
	struct hvp_hdr rep;
	int fds[4];
	unsigned n = 4;
	uint8_t big[HVP_MAX_MSG + 64];
	ssize_t r;

	assert_true(pv_send_fds(fd, buf, len, &pass_fd, pass_fd >= 0 ? 1 : 0) == (ssize_t)len);
	if (!readable(fd, 5000))
		return -1000;
	r = pv_recv_fds(fd, big, sizeof(big), fds, &n);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	if (r < (ssize_t)sizeof(rep))
		return -1000;
	memcpy(&rep, big, sizeof(rep));
	assert_int_equal(rep.magic, HVP_MAGIC);
	return rep.ret;
}

static struct hvp_hdr hdr(uint16_t op, uint32_t count, uint32_t a0, uint32_t a1)
{
	return (struct hvp_hdr){ .magic = HVP_MAGIC, .version = HVP_VERSION, .op = op,
				 .seq = 7, .count = count, .arg = { a0, a1 } };
}

/* A request of header + payload; the reply's ret (-1000: none within 5 s),
 * its payload into out (up to outlen) and its fds into fds (*nfds). */
static int raw_req(int fd, struct hvp_hdr h, const void *pl, size_t len, void *out, size_t outlen,
		   int *fds, unsigned *nfds)
{
	uint8_t buf[HVP_MAX_MSG + 64];
	struct hvp_hdr rep;
	unsigned n = 4;
	int got[4];
	ssize_t r;

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), pl, len);
	assert_true(pv_send_fds(fd, buf, sizeof(h) + len, NULL, 0) == (ssize_t)(sizeof(h) + len));
	if (!readable(fd, 5000))
		return -1000;
	r = pv_recv_fds(fd, buf, sizeof(buf), got, &n);
	assert_true(r >= (ssize_t)sizeof(rep));
	memcpy(&rep, buf, sizeof(rep));
	if (out)
		memcpy(out, buf + sizeof(rep), PV_MIN(outlen, (size_t)r - sizeof(rep)));
	for (unsigned i = 0; i < n; i++) {
		if (fds && i < *nfds)
			fds[i] = got[i];
		else
			close(got[i]);
	}
	if (nfds)
		*nfds = PV_MIN(n, *nfds);
	return rep.ret;
}

/* Every fd the hypervisor hands out is a client's to play with: making one
 * blocking, saturating or emptying a doorbell, never reading must not make
 * the daemon block (it would stop serving every domain), nor a notify. */
static void test_shared_fds(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct evtchn_alloc_unbound a = { .dom = DOMID_SELF };
	struct evtchn_bind_interdomain b;
	struct pv_domain_info di;
	uint64_t big = 0xfffffffffffffffdull, zero = 0, count;
	int fds[4], nfd, a_fd, b_fd;
	unsigned n;
	char sock[256];
	uint32_t d;
	(void)state;

	assert_non_null(hv);
	d = new_domain(hv, "shared", sock, sizeof(sock));
	a.remote_dom = (domid_t)d;
	a_fd = raw_connect(sock);
	b_fd = raw_connect(sock);
	/* Our doorbell, emptied (that only silences what the peer sends us),
	 * and the future binder's, saturated and made blocking. */
	n = 3;
	assert_int_equal(raw_req(a_fd, hdr(HVP_EC_ALLOC_UNBOUND, 0, 0, 0), &a, sizeof(a), &a, sizeof(a), fds, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(read(fds[0], &count, sizeof(count)), (ssize_t)sizeof(count));
	assert_true(count == 1);   /* ready from the start */
	assert_int_equal(write(fds[1], &big, sizeof(big)), (ssize_t)sizeof(big));
	assert_int_equal(fcntl(fds[1], F_SETFL, 0), 0);
	/* A ring (a zero) still goes through at once: what notify rests on. */
	assert_int_equal(write(fds[1], &zero, sizeof(zero)), (ssize_t)sizeof(zero));
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	/* Binding it answers, and dom0 is still served. */
	b = (struct evtchn_bind_interdomain){ .remote_dom = (domid_t)d, .remote_port = a.port };
	n = 3;
	assert_true(raw_req(b_fd, hdr(HVP_EC_BIND, 0, 0, 0), &b, sizeof(b), &b, sizeof(b), fds, &n) >= 0);
	assert_int_equal(n, 3);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	assert_int_equal(pv_hv_domain_info(hv, d, &di), 0);

	/* The notice fd: made blocking; a notice queued (a
	 * port of ours closed by its peer), then consumed. */
	n = 1;
	assert_int_equal(raw_req(a_fd, hdr(HVP_HELLO, 0, 0, 0), NULL, 0, NULL, 0, fds, &n), 0);
	assert_int_equal(n, 1);
	nfd = fds[0];
	assert_int_equal(fcntl(nfd, F_SETFL, 0), 0);
	assert_int_equal(raw_req(b_fd, hdr(HVP_EC_CLOSE, 0, b.local_port, 0), NULL, 0, NULL, 0, NULL, NULL), 0);
	assert_true(readable(nfd, 2000));
	assert_true(raw_req(a_fd, hdr(HVP_NOTICES, 8, 1, 0), NULL, 0, NULL, 0, NULL, NULL) >= 1);
	assert_int_equal(pv_hv_domain_info(hv, d, &di), 0);
	close(nfd);
	close(a_fd);
	close(b_fd);
	pv_hv_close(hv);
}

static int suspender(void *arg)
{
	struct pv_hv *hv = pv_hv_open(arg);
	struct pv_resume_info ri;

	CHECK(hv);
	pv_hv_suspend(hv, &ri); /* killed while blocked here */
	return 1;
}

static void test_garbage(void **state)
{
	struct pv_hv *hv = pv_hv_open(H1.sock);
	struct pv_domain_config in = { .incoming = true };
	struct pv_domain_info di;
	uint8_t msg[HVP_MAX_MSG + 1024];
	struct hvp_hdr h;
	char sock[256];
	uint32_t d, inc;
	int fd, ufd, mfd, p[2];
	pid_t g;

	assert_non_null(hv);
	d = new_domain(hv, "g", sock, sizeof(sock));
	assert_int_equal(pv_hv_domain_create(hv, &in, &inc), 0);
	fd = raw_connect(H1.sock);
	ufd = raw_connect(sock);

	memset(msg, 0xab, sizeof(msg));
	assert_int_equal(raw_call(fd, msg, 3, -1), -EBADMSG);
	/* An empty SOCK_SEQPACKET message reads as end of file: the daemon
	 * closes that connection (and only that one). */
	{
		int e = raw_connect(H1.sock);
		assert_int_equal(raw_call(e, msg, 0, -1), -1000);
		assert_int_equal(recv(e, msg, 1, 0), 0);
		close(e);
	}
	h = hdr(HVP_HELLO, 0, 0, 0);
	h.magic ^= 1;
	assert_int_equal(raw_call(fd, &h, sizeof(h), -1), -EPROTO);
	h = hdr(HVP_HELLO, 0, 0, 0);
	h.version = HVP_VERSION + 1;
	assert_int_equal(raw_call(fd, &h, sizeof(h), -1), -EPROTO);
	h = hdr(0, 0, 0, 0);
	assert_int_equal(raw_call(fd, &h, sizeof(h), -1), -ENOSYS);
	h = hdr(99, 0, 0, 0);
	assert_int_equal(raw_call(fd, &h, sizeof(h), -1), -ENOSYS);
	/* Batches must be exactly count elements, at most HVP_MAX_BATCH. */
	h = hdr(HVP_MAP, 2, 0, 0);
	memcpy(msg, &h, sizeof(h));
	assert_int_equal(raw_call(fd, msg, sizeof(h) + sizeof(struct gnttab_map_grant_ref), -1),
			 -EBADMSG);
	h = hdr(HVP_UNMAP, 300, 0, 0);
	memcpy(msg, &h, sizeof(h));
	assert_int_equal(raw_call(fd, msg, sizeof(h) + 300 * sizeof(struct gnttab_unmap_grant_ref), -1),
			 -EBADMSG);
	h = hdr(HVP_COPY, 0xFFFFFFFFu, 0, 0);
	assert_int_equal(raw_call(fd, &h, sizeof(h), -1), -EBADMSG);
	h = hdr(HVP_DOM_CREATE, 0, 0, 0);
	assert_int_equal(raw_call(fd, &h, sizeof(h), -1), -EBADMSG);   /* payload missing */
	memcpy(msg, &h, sizeof(h));
	assert_int_equal(raw_call(fd, msg, sizeof(msg), -1), -EMSGSIZE);
	/* Privilege comes from the socket, not from anything in a message. */
	h = hdr(HVP_DOM_DESTROY, 0, d, 0);
	assert_int_equal(raw_call(ufd, &h, sizeof(h), -1), -EPERM);
	/* Import: an fd is required, and it must be a sealable memfd that is big enough. */
	h = hdr(HVP_DOM_IMPORT, 0, inc, 16);
	assert_int_equal(raw_call(fd, &h, sizeof(h), -1), -EBADMSG);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(raw_call(fd, &h, sizeof(h), p[0]), -EINVAL);
	close(p[0]);
	close(p[1]);
	mfd = memfd_create("small", MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(mfd, 4096), 0);
	assert_int_equal(raw_call(fd, &h, sizeof(h), mfd), -EINVAL);
	close(mfd);
	mfd = memfd_create("unsealable", 0);
	assert_int_equal(ftruncate(mfd, 16 * 4096), 0);
	assert_int_equal(raw_call(fd, &h, sizeof(h), mfd), -EINVAL);
	close(mfd);
	h = hdr(HVP_DOM_IMPORT, 0, inc, 0);
	mfd = memfd_create("zero pages", MFD_ALLOW_SEALING);
	assert_int_equal(raw_call(fd, &h, sizeof(h), mfd), -EINVAL);
	close(mfd);
	/* Unexpected fds are closed; the call works. */
	h = hdr(HVP_DOM_INFO, 0, d, 0);
	assert_int_equal(raw_call(fd, &h, sizeof(h), 0), 0);
	/* Ports that are not ours. */
	h = hdr(HVP_EC_CLOSE, 0, 0, 0);
	assert_int_equal(raw_call(ufd, &h, sizeof(h), -1), -EINVAL);
	h = hdr(HVP_EC_CLOSE, 0, 999999, 0);
	assert_int_equal(raw_call(ufd, &h, sizeof(h), -1), -EINVAL);

	/* Random messages, some with a valid header: every one is answered. */
	srand(1234);
	for (int i = 0; i < 3000; i++) {
		size_t len = 1 + (size_t)(rand() % 400);  /* 0 would read as EOF */
		for (size_t k = 0; k < len; k++)
			msg[k] = (uint8_t)rand();
		if (len >= sizeof(h) && (i & 1)) {
			h = hdr((uint16_t)(rand() % (HVP_OP_COUNT + 2)), (uint32_t)(rand() % 4),
				(uint32_t)(rand() % 4), (uint32_t)rand());
			if (h.op == HVP_DOM_DESTROY || h.op == HVP_SUSPEND || h.op == HVP_DOM_WAIT ||
			    h.op == HVP_DOM_MOVED)
				h.op = HVP_DOM_INFO; /* keep the fixture alive and the socket synchronous */
			memcpy(msg, &h, sizeof(h));
		}
		assert_int_not_equal(raw_call((i % 3) ? ufd : fd, msg, len, -1), -1000);
	}

	/* A client that sends without reading stalls only itself. */
	{
		int flood = raw_connect(H1.sock), sent = 0;
		h = hdr(HVP_DOM_LIST, 0, 0, 0);
		assert_int_equal(pv_set_nonblock(flood, true), 0);
		while (sent < 100000 && send(flood, &h, sizeof(h), MSG_DONTWAIT) == sizeof(h))
			sent++;
		assert_true(sent > 10);
		assert_int_equal(pv_hv_domain_info(hv, d, &di), 0);
		close(flood);
		assert_int_equal(pv_hv_domain_info(hv, d, &di), 0);
	}
	/* A client that asks and vanishes before the answer. */
	h = hdr(HVP_DOM_LIST, 0, 0, 0);
	{
		int gone = raw_connect(H1.sock);
		assert_int_equal(send(gone, &h, sizeof(h), 0), (ssize_t)sizeof(h));
		close(gone);
	}
	/* A guest killed while blocked in its suspend call: the domain stays
	 * suspended and can still be resumed. */
	g = hvt_fork(suspender, sock);
	assert_int_equal(pv_hv_domain_wait(hv, d, 1u << PV_DOM_SUSPENDED, 10000), 0);
	kill(g, SIGKILL);
	assert_int_equal(hvt_wait(g), 128 + SIGKILL);
	assert_int_equal(pv_hv_domain_resume(hv, d), 0);
	assert_int_equal(pv_hv_domain_info(hv, d, &di), 0);
	assert_int_equal(di.state, PV_DOM_RUNNING);

	/* A domain may not hold more than 64 connections (fds are shared). */
	{
		int many[70], refused = 0;
		h = hdr(HVP_HELLO, 0, 0, 0);
		for (int i = 0; i < 70; i++) {
			struct hvp_hdr rep;
			many[i] = raw_connect(sock);
			/* A refused connection is closed by the daemon at once. */
			if (send(many[i], &h, sizeof(h), MSG_NOSIGNAL) != sizeof(h) ||
			    !readable(many[i], 5000) || recv(many[i], &rep, sizeof(rep), 0) <= 0)
				refused++;
		}
		assert_int_equal(refused, 70 - 63); /* ufd is the 64th */
		for (int i = 0; i < 70; i++)
			close(many[i]);
	}
	close(fd);
	close(ufd);
	/* And the daemon serves as before. */
	assert_int_equal(pv_hv_domain_list(hv, &di, 1), 3);
	pv_hv_close(hv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domains, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_grants, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_local_copy, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_local_holder_dies, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_local_holder_stopped, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_evtchn, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_evtchn_attach, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_suspend_cancelled, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_suspend_move, setup2, teardown2),
		cmocka_unit_test_setup_teardown(test_destroy_with_mappings, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_peer_death, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_wait_shutdown, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_limits, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_handle_close, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_garbage, setup1, teardown1),
		cmocka_unit_test_setup_teardown(test_shared_fds, setup1, teardown1),
	};
	signal(SIGPIPE, SIG_IGN);   /* a daemon that goes mid-call */
	alarm(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
