/*
 * The client library (client.c, hv.c, gnttab.c, gntshr.c, evtchn.c) against a
 * LYING daemon. The daemon is a fake: a forked child listening on a UNIX
 * socket in a mkdtemp directory, speaking proto.h's framing (SOCK_SEQPACKET,
 * header + payload in one message, fds as SCM_RIGHTS, as server.c sends them),
 * that answers one call with one specific lie. For each lie the client API
 * must return an error (-errno, or NULL with errno), neither crash nor hang,
 * and leak neither memory (LSan, in the ASan build) nor fds (the test process
 * counts /proc/self/fd before and after every test).
 *
 * The fake daemon checks what the client sends too (e.g. that a mapping the
 * client could not use is unmapped at once) and reports through its exit
 * status, which the parent asserts. Honest answers are tested as well (the
 * same fake, telling the truth), so that every refusal here is the client
 * refusing the lie, not the fake speaking the protocol wrongly.
 *
 * Not tested, because the client has no timeout: a daemon that never answers.
 * hvc_call() blocks in recvmsg() until a reply or the end of the connection
 * (suspend and domain wait are late replies by design); a daemon that keeps
 * the socket open and silent hangs the caller for ever.
 *
 * Client bugs this fake daemon found (each failed before its fix) are the
 * test_bug_* functions.
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include "common/util.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/gnttab_core.h"
#include "hypervisor/hv.h"
#include "hypervisor/proto.h"
#include "hypervisor/tests/hvtest.h"

/* ======================================================================
 * The fake daemon (runs in the child; reports failures with CHECK)
 * ====================================================================== */

#define LR_MAX_FDS 48           /* more than the client can take (16) */
#define LR_MAX_PORT 63          /* HELLO's max_port unless a test lies about it */
#define LR_PAGES 4              /* own memory and views, in pages */
#define GRANTER 7               /* the granting domain of the map tests */
#define GREF 9
#define HANDLE 100

struct lreq {
	struct hvp_hdr h;
	uint8_t body[HVP_MAX_MSG];
	size_t len;                 /* payload bytes */
	unsigned nfds;              /* fds it carried (closed on receipt) */
};

static int lr_conn = -1;        /* the daemon's end of the connection */
static int lr_notice[2] = { -1, -1 };

/* Next request, or false at the end of the connection. */
static bool lr_recv(struct lreq *q)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} cm;
	static union {
		struct hvp_hdr h;
		uint8_t b[HVP_MAX_MSG + 64];
	} m;
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
			      .msg_controllen = sizeof(cm.b) };
	ssize_t n;

	do
		n = recvmsg(lr_conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return false;
	q->nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(fd));
			close(fd);
			q->nfds++;
		}
	}
	CHECK((size_t)n >= sizeof(q->h) && (size_t)n <= HVP_MAX_MSG);
	memcpy(&q->h, m.b, sizeof(q->h));
	CHECK_EQ(q->h.magic, HVP_MAGIC);
	CHECK_EQ(q->h.version, HVP_VERSION);
	q->len = (size_t)n - sizeof(q->h);
	memcpy(q->body, m.b + sizeof(q->h), q->len);
	return true;
}

static void lr_expect(struct lreq *q, uint16_t op)
{
	if (!lr_recv(q)) {
		fprintf(stderr, "liar: expected op %u, got the end of the connection\n", op);
		_exit(1);
	}
	if (q->h.op != op) {
		fprintf(stderr, "liar: expected op %u, got op %u\n", op, q->h.op);
		_exit(1);
	}
}

/* The client must send nothing more: the end of the connection is next. */
static int lr_end(void)
{
	struct lreq q;

	if (lr_recv(&q)) {
		fprintf(stderr, "liar: unexpected request op %u\n", q.h.op);
		return 1;
	}
	return 0;
}

/* One message: `len` bytes and `nfds` fds (more than the client takes). */
static void lr_send(const void *buf, size_t len, const int *fds, unsigned nfds)
{
	CHECK(nfds <= LR_MAX_FDS);
	CHECK(pv_send_fds(lr_conn, buf, len, fds, nfds) == (ssize_t)len);
}

/* The honest header of the reply to `q` (what dispatch.c would send). */
static struct hvp_hdr lr_hdr(const struct lreq *q, int ret)
{
	return (struct hvp_hdr){ .magic = HVP_MAGIC, .version = HVP_VERSION, .op = q->h.op,
				 .seq = q->h.seq, .ret = ret };
}

/* Header `h`, then `len` bytes of payload, then nothing; fds alongside. */
static void lr_reply(struct hvp_hdr h, const void *payload, size_t len, const int *fds,
		     unsigned nfds)
{
	static union {
		struct hvp_hdr h;
		uint8_t b[HVP_MAX_MSG + 8192];
	} m;

	CHECK(len <= sizeof(m) - sizeof(h));
	m.h = h;
	if (len)
		memcpy(m.b + sizeof(h), payload, len);
	lr_send(m.b, sizeof(h) + len, fds, nfds);
}

/* An honest HELLO. */
static void lr_hello(void)
{
	struct hvp_hello o = { .domid = 5, .state = PV_DOM_RUNNING, .max_port = LR_MAX_PORT,
			       .mem_pages = LR_PAGES };
	struct lreq q;

	lr_expect(&q, HVP_HELLO);
	lr_reply(lr_hdr(&q, 0), &o, sizeof(o), &lr_notice[1], 1);
}

/* A memfd of `bytes`, sealed as domain.c seals them unless `seal` is false. */
static int lr_memfd(size_t bytes, bool seal)
{
	int fd = memfd_create("liar", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)bytes) == 0);
	if (seal)
		CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
	return fd;
}

static void lr_close_all(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/* Expect an UNMAP of exactly `handle` and answer it GNTST_okay. */
static void lr_expect_unmap(uint32_t handle)
{
	struct gnttab_unmap_grant_ref u;
	struct lreq q;
	struct hvp_hdr h;

	lr_expect(&q, HVP_UNMAP);
	CHECK_EQ(q.h.count, 1);
	CHECK_EQ(q.len, sizeof(u));
	memcpy(&u, q.body, sizeof(u));
	CHECK_EQ(u.handle, handle);
	u.status = GNTST_okay;
	h = lr_hdr(&q, 0);
	h.count = 1;
	lr_reply(h, &u, sizeof(u), NULL, 0);
}

/* ======================================================================
 * The test side
 * ====================================================================== */

struct liar {
	pid_t pid;
	char dir[64];
	char sock[96];
	int fds_before;
};
static struct liar L;

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		hvt_fail("opendir /proc/self/fd");
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Start a fake daemon that plays `scenario(lie)` on the first connection. */
static void liar_start(int (*scenario)(int), int lie)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	snprintf(L.dir, sizeof(L.dir), "/tmp/pvhv-liar.XXXXXX");
	if (!mkdtemp(L.dir))
		hvt_fail("mkdtemp");
	snprintf(L.sock, sizeof(L.sock), "%s/socket", L.dir);
	memcpy(sa.sun_path, L.sock, strlen(L.sock) + 1);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0)
		hvt_fail("listening socket");
	fflush(NULL);
	L.pid = fork();
	if (L.pid < 0)
		hvt_fail("fork");
	if (L.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(20);
		do
			lr_conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		while (lr_conn < 0 && errno == EINTR);
		CHECK(lr_conn >= 0);
		close(lfd);
		/* One connection per fake: the path has served (and goes even
		 * if the test process dies without its teardown). */
		unlink(L.sock);
		rmdir(L.dir);
		CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
				 lr_notice) == 0);
		_exit(scenario(lie));
	}
	close(lfd);
}

static void liar_cleanup(void)
{
	if (L.pid > 0) {
		kill(L.pid, SIGKILL);
		hvt_wait(L.pid);
		L.pid = 0;
	}
	if (L.dir[0]) {
		unlink(L.sock);
		rmdir(L.dir);
		L.dir[0] = '\0';
	}
}

/* The client is done (every handle closed): the fake daemon must have seen
 * what it expected, and no fd may be left over. */
static void liar_finish(const char *lie)
{
	int st = hvt_wait(L.pid);

	L.pid = 0;
	liar_cleanup();
	if (st != 0)
		fail_msg("lie \"%s\": the fake daemon failed (status %d, see above)", lie, st);
	if (fd_count() != L.fds_before)
		fail_msg("lie \"%s\": %d fds before, %d after (a leak)", lie, L.fds_before,
			 fd_count());
}

static int fd_setup(void **state)
{
	L.fds_before = fd_count();
	return 0;
}

static int fd_teardown(void **state)
{
	liar_cleanup();   /* after a failed assertion: the daemon may still run */
	return 0;
}

#define LIE_TRUE(lie, cond) do { if (!(cond)) \
	fail_msg("lie \"%s\": %s is false (errno %d: %s)", lie, #cond, errno, strerror(errno)); \
	} while (0)
#define LIE_EQ(lie, a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) fail_msg("lie \"%s\": %s == %lld, expected %s == %lld", lie, #a, a_, \
			       #b, b_); } while (0)


/* ======================================================================
 * HELLO (hvc_open): every handle's first call
 * ====================================================================== */

enum hello_lie {
	HL_HONEST, HL_MAX_PORT_LIMIT, HL_MAX_PORT, HL_MAX_PORT_HUGE, HL_SHORT, HL_LONG, HL_NO_FD,
	HL_TWO_FDS, HL_MAGIC, HL_VERSION, HL_OP, HL_SEQ, HL_CUT_HEADER, HL_EMPTY, HL_OVERSIZE,
	HL_WAY_OVERSIZE, HL_CLOSE, HL_ERROR, HL_RET_INT_MIN, HL_RET_NOT_ERRNO,
};

static int sc_hello(int lie)
{
	struct hvp_hello o = { .domid = 5, .state = PV_DOM_RUNNING, .max_port = LR_MAX_PORT,
			       .mem_pages = LR_PAGES };
	static uint8_t pay[HVP_MAX_MSG + 4096];
	int fds[2] = { lr_notice[1], lr_notice[1] };
	unsigned nfds = 1;
	size_t len = sizeof(o);
	struct lreq q;
	struct hvp_hdr h;

	lr_expect(&q, HVP_HELLO);
	CHECK_EQ(q.len, 0);
	h = lr_hdr(&q, 0);
	switch (lie) {
	case HL_MAX_PORT_LIMIT: o.max_port = HVP_MAX_PORT; break;
	case HL_MAX_PORT:       o.max_port = HVP_MAX_PORT + 1; break;
	case HL_MAX_PORT_HUGE:  o.max_port = UINT32_MAX; break;
	case HL_SHORT:          len = sizeof(o) - 4; break;
	case HL_LONG:           len = sizeof(o) + 4; break;
	case HL_NO_FD:          nfds = 0; break;
	case HL_TWO_FDS:        nfds = 2; break;
	case HL_MAGIC:          h.magic ^= 0x20; break;
	case HL_VERSION:        h.version++; break;
	case HL_OP:             h.op = HVP_NOTICES; break;
	case HL_SEQ:            h.seq++; break;
	case HL_ERROR:          h.ret = -EACCES; break;
	case HL_RET_INT_MIN:    h.ret = INT32_MIN; break;
	case HL_RET_NOT_ERRNO:  h.ret = -100000; break;
	case HL_CUT_HEADER:     /* a reply cut in the middle of its header */
		lr_send(&h, sizeof(h) / 2, fds, 1);
		return lr_end();
	case HL_EMPTY:          /* reads as the end of the connection */
		lr_send(&h, 0, NULL, 0);
		return lr_end();
	case HL_OVERSIZE:       len = HVP_MAX_MSG + 1 - sizeof(h); break;
	case HL_WAY_OVERSIZE:   len = HVP_MAX_MSG + 4096 - sizeof(h); break; /* truncated */
	case HL_CLOSE:          return 0; /* the connection ends, no reply */
	}
	memcpy(pay, &o, sizeof(o));
	lr_reply(h, pay, len, fds, nfds);
	return lr_end();
}

static const struct { int lie; const char *name; int err; } hello_lies[] = {
	{ HL_MAX_PORT,      "max_port above HVP_MAX_PORT", EPROTO },
	{ HL_MAX_PORT_HUGE, "max_port 2^32-1", EPROTO },
	{ HL_SHORT,         "hello payload 4 bytes short", EPROTO },
	{ HL_LONG,          "hello payload 4 bytes long", EPROTO },
	{ HL_NO_FD,         "no notice fd", EPROTO },
	{ HL_TWO_FDS,       "two fds", EPROTO },
	{ HL_MAGIC,         "wrong magic", EPROTO },
	{ HL_VERSION,       "wrong version", EPROTO },
	{ HL_OP,            "wrong op", EPROTO },
	{ HL_SEQ,           "wrong seq", EPROTO },
	{ HL_CUT_HEADER,    "header cut in the middle", EPROTO },
	{ HL_EMPTY,         "empty message", ECONNRESET },
	{ HL_OVERSIZE,      "reply of HVP_MAX_MSG + 1 bytes", EPROTO },
	{ HL_WAY_OVERSIZE,  "reply 4 KiB over HVP_MAX_MSG", EPROTO },
	{ HL_CLOSE,         "socket closed mid-call", ECONNRESET },
	{ HL_ERROR,         "an error with fds and payload", EACCES },
};

/* Every handle type refuses every lie of HELLO. */
static void test_hello_lies(void **state)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(hello_lies); i++) {
		const char *name = hello_lies[i].name;

		for (int kind = 0; kind < 3; kind++) {
			void *h;

			liar_start(sc_hello, hello_lies[i].lie);
			errno = 0;
			h = kind == 0 ? (void *)pv_hv_open(L.sock)
			  : kind == 1 ? (void *)pv_gnttab_open(L.sock)
				      : (void *)pv_evtchn_open(L.sock);
			LIE_TRUE(name, h == NULL);
			LIE_EQ(name, errno, hello_lies[i].err);
			liar_finish(name);
		}
	}
}

/* The same fake, honest, is accepted: max_port exactly HVP_MAX_PORT too. */
static void test_hello_honest(void **state)
{
	struct pv_evtchn *ec;
	struct pv_hv *hv;

	liar_start(sc_hello, HL_HONEST);
	hv = pv_hv_open(L.sock);
	LIE_TRUE("honest", hv != NULL);
	LIE_EQ("honest", pv_hv_domid(hv), 5);
	LIE_TRUE("honest", pv_hv_fd(hv) >= 0);
	pv_hv_close(hv);
	liar_finish("honest");

	liar_start(sc_hello, HL_MAX_PORT_LIMIT);
	ec = pv_evtchn_open(L.sock);
	LIE_TRUE("max_port == HVP_MAX_PORT", ec != NULL);
	LIE_EQ("max_port == HVP_MAX_PORT", pv_evtchn_notify(ec, HVP_MAX_PORT), -EINVAL);
	pv_evtchn_close(ec);
	liar_finish("max_port == HVP_MAX_PORT");
}

/* ======================================================================
 * Own memory (pv_hv_map_own_memory[_id], HVP_MEM_GET)
 * ====================================================================== */

enum mem_lie {
	ML_HONEST, ML_SHORT, ML_NO_FD, ML_TWO_FDS, ML_PIPE, ML_ERROR, ML_ZERO,
	ML_FIXED_HONEST, ML_FIXED_SIZE, ML_FIXED_SHORT, ML_UNSEALED,
};

static void mem_reply(const struct lreq *q, uint32_t pages, const int *fds, unsigned nfds, int ret)
{
	struct hvp_hdr h = lr_hdr(q, ret);

	h.arg[0] = pages;
	lr_reply(h, NULL, 0, fds, nfds);
}

static int sc_mem(int lie)
{
	size_t bytes = LR_PAGES * PV_PAGE_SIZE;
	int fds[2], p[2], memfd;
	struct lreq q;

	lr_hello();
	lr_expect(&q, HVP_MEM_GET);
	switch (lie) {
	case ML_HONEST:
	case ML_FIXED_HONEST:
		memfd = lr_memfd(bytes, true);
		CHECK(pwrite(memfd, "liar-mem", 9, 3 * PV_PAGE_SIZE + 5) == 9);
		mem_reply(&q, LR_PAGES, &memfd, 1, 0);
		close(memfd);
		break;
	case ML_SHORT:          /* announced LR_PAGES, one page fewer behind it */
	case ML_FIXED_SHORT:
		memfd = lr_memfd(bytes - PV_PAGE_SIZE, true);
		mem_reply(&q, LR_PAGES, &memfd, 1, 0);
		close(memfd);
		break;
	case ML_FIXED_SIZE:     /* whole, but not the size the caller owns */
		memfd = lr_memfd(2 * bytes, true);
		mem_reply(&q, 2 * LR_PAGES, &memfd, 1, 0);
		close(memfd);
		break;
	case ML_ZERO:
		memfd = lr_memfd(0, true);
		mem_reply(&q, 0, &memfd, 1, 0);
		close(memfd);
		break;
	case ML_NO_FD:
		mem_reply(&q, LR_PAGES, NULL, 0, 0);
		break;
	case ML_TWO_FDS:
		fds[0] = lr_memfd(bytes, true);
		fds[1] = lr_memfd(bytes, true);
		mem_reply(&q, LR_PAGES, fds, 2, 0);
		lr_close_all(fds, 2);
		break;
	case ML_PIPE:           /* not memory at all */
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		mem_reply(&q, LR_PAGES, &p[0], 1, 0);
		lr_close_all(p, 2);
		break;
	case ML_ERROR:          /* an error that carries an fd anyway */
		memfd = lr_memfd(bytes, true);
		mem_reply(&q, LR_PAGES, &memfd, 1, -EAGAIN);
		close(memfd);
		break;
	case ML_UNSEALED:       /* whole now, but anyone holding it may shrink it */
		memfd = lr_memfd(bytes, false);
		mem_reply(&q, LR_PAGES, &memfd, 1, 0);
		close(memfd);
		break;
	}
	return lr_end();
}

static const struct { int lie; const char *name; int err; } mem_lies[] = {
	{ ML_SHORT,   "memfd a page shorter than announced", EPROTO },
	{ ML_NO_FD,   "no memfd", EPROTO },
	{ ML_TWO_FDS, "two memfds", EPROTO },
	{ ML_PIPE,    "a pipe for a memfd", EPROTO },
	{ ML_ERROR,   "an error carrying an fd", EAGAIN },
	{ ML_ZERO,    "zero pages", EINVAL },
};

static void test_mem_lies(void **state)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(mem_lies); i++) {
		const char *name = mem_lies[i].name;
		struct pv_mem_id id = { 0 };
		size_t n = 12345;
		struct pv_hv *hv;
		void *p;

		liar_start(sc_mem, mem_lies[i].lie);
		hv = pv_hv_open(L.sock);
		LIE_TRUE(name, hv != NULL);
		errno = 0;
		p = pv_hv_map_own_memory_id(hv, NULL, &n, &id);
		LIE_TRUE(name, p == NULL);
		LIE_EQ(name, errno, mem_lies[i].err);
		LIE_EQ(name, n, 12345);
		LIE_EQ(name, id.npages, 0);
		pv_hv_close(hv);
		liar_finish(name);
	}
}

/* Memory mapped over the caller's own region (a moved guest's base): the
 * region stays as it was unless the memory is whole and the size it owns. */
static void test_mem_fixed(void **state)
{
	static const int lies[] = { ML_FIXED_SIZE, ML_FIXED_SHORT };
	static const char *const names[] = { "fixed address, another size",
					     "fixed address, memfd short" };
	size_t bytes = LR_PAGES * PV_PAGE_SIZE;
	uint8_t *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct pv_hv *hv;
	size_t n;

	assert_true(region != MAP_FAILED);
	for (size_t i = 0; i < PV_ARRAY_SIZE(lies); i++) {
		memset(region, 0xa5, bytes);
		liar_start(sc_mem, lies[i]);
		hv = pv_hv_open(L.sock);
		LIE_TRUE(names[i], hv != NULL);
		n = LR_PAGES;
		errno = 0;
		LIE_TRUE(names[i], pv_hv_map_own_memory(hv, region, &n) == NULL);
		LIE_EQ(names[i], errno, EPROTO);
		LIE_EQ(names[i], n, LR_PAGES);
		/* Still our anonymous memory, untouched. */
		LIE_TRUE(names[i], !hvt_faults(region + bytes - 1, false));
		LIE_EQ(names[i], region[0], 0xa5);
		LIE_EQ(names[i], region[bytes - 1], 0xa5);
		pv_hv_close(hv);
		liar_finish(names[i]);
	}

	/* Honest: the memory replaces the region, its contents visible. */
	liar_start(sc_mem, ML_FIXED_HONEST);
	hv = pv_hv_open(L.sock);
	assert_non_null(hv);
	n = LR_PAGES;
	assert_ptr_equal(pv_hv_map_own_memory(hv, region, &n), region);
	assert_int_equal(n, LR_PAGES);
	assert_string_equal((char *)region + 3 * PV_PAGE_SIZE + 5, "liar-mem");
	pv_hv_close(hv);
	liar_finish("fixed address, honest");
	munmap(region, bytes);
}

static void test_mem_honest(void **state)
{
	struct pv_mem_id id = { 0 };
	struct pv_hv *hv;
	uint8_t *p;
	size_t n = 0;

	liar_start(sc_mem, ML_HONEST);
	hv = pv_hv_open(L.sock);
	assert_non_null(hv);
	p = pv_hv_map_own_memory_id(hv, NULL, &n, &id);
	assert_non_null(p);
	assert_int_equal(n, LR_PAGES);
	assert_int_equal(id.npages, LR_PAGES);
	assert_string_equal((char *)p + 3 * PV_PAGE_SIZE + 5, "liar-mem");
	pv_hv_close(hv);
	liar_finish("honest memory");
	munmap(p, LR_PAGES * PV_PAGE_SIZE);
}

/* ======================================================================
 * Grant table (pv_gntshr_open, HVP_GT_SETUP)
 * ====================================================================== */

enum gt_lie { GL_HONEST, GL_SHORT, GL_NO_FD, GL_TWO_FDS, GL_FEW, GL_ERROR, GL_HUGE };

#define GT_ENTRIES 64

static int sc_gt(int lie)
{
	size_t bytes = GT_ENTRIES * sizeof(grant_entry_v1_t);
	uint32_t nr = GT_ENTRIES;
	int fds[2] = { -1, -1 };
	unsigned nfds = 1;
	struct lreq q;
	struct hvp_hdr h;

	lr_hello();
	lr_expect(&q, HVP_GT_SETUP);
	h = lr_hdr(&q, 0);
	switch (lie) {
	case GL_SHORT:   bytes -= sizeof(grant_entry_v1_t); break;  /* one entry short */
	case GL_NO_FD:   nfds = 0; break;
	case GL_TWO_FDS: nfds = 2; fds[1] = lr_memfd(bytes, true); break;
	case GL_FEW:     nr = GNTTAB_NR_RESERVED_ENTRIES; bytes = nr * sizeof(grant_entry_v1_t); break;
	case GL_ERROR:   h.ret = -ENOMEM; break;
	case GL_HUGE:    nr = UINT32_MAX; break;
	}
	fds[0] = lr_memfd(bytes, true);
	h.arg[0] = nr;
	lr_reply(h, NULL, 0, fds, nfds);
	if (lie == GL_HONEST) {
		/* The client's grant is in the table we share with it. */
		grant_entry_v1_t e;
		CHECK(lr_end() == 0);
		CHECK(pread(fds[0], &e, sizeof(e), GNTTAB_NR_RESERVED_ENTRIES * sizeof(e)) ==
		      (ssize_t)sizeof(e));
		CHECK_EQ(e.flags, GTF_permit_access);
		CHECK_EQ(e.domid, 3);
		CHECK_EQ(e.frame, 1);
		lr_close_all(fds, 1);
		return 0;
	}
	lr_close_all(fds, fds[1] >= 0 ? 2 : 1);
	return lr_end();
}

static const struct { int lie; const char *name; int err; } gt_lies[] = {
	{ GL_SHORT,   "grant table an entry shorter than announced", EPROTO },
	{ GL_NO_FD,   "grant table without fd", EPROTO },
	{ GL_TWO_FDS, "grant table with two fds", EPROTO },
	{ GL_ERROR,   "an error carrying an fd", ENOMEM },
};

static void test_gntshr_lies(void **state)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(gt_lies); i++) {
		const char *name = gt_lies[i].name;
		struct pv_hv *hv;

		liar_start(sc_gt, gt_lies[i].lie);
		hv = pv_hv_open(L.sock);
		LIE_TRUE(name, hv != NULL);
		errno = 0;
		LIE_TRUE(name, pv_gntshr_open(hv) == NULL);
		LIE_EQ(name, errno, gt_lies[i].err);
		pv_hv_close(hv);
		liar_finish(name);
	}

	/* Only reserved entries: refused (the errno is checked by
	 * test_bug_gntshr_stale_errno). */
	{
		const char *name = "grant table of reserved entries only";
		struct pv_hv *hv;

		liar_start(sc_gt, GL_FEW);
		hv = pv_hv_open(L.sock);
		LIE_TRUE(name, hv != NULL);
		LIE_TRUE(name, pv_gntshr_open(hv) == NULL);
		pv_hv_close(hv);
		liar_finish(name);
	}
}

static void test_gntshr_honest(void **state)
{
	struct pv_gntshr *gs;
	struct pv_hv *hv;

	liar_start(sc_gt, GL_HONEST);
	hv = pv_hv_open(L.sock);
	assert_non_null(hv);
	gs = pv_gntshr_open(hv);
	assert_non_null(gs);
	assert_int_equal(pv_gntshr_nr_entries(gs), GT_ENTRIES);
	assert_int_equal(pv_gnttab_grant_foreign_access(gs, 3, 1, false),
			 GNTTAB_NR_RESERVED_ENTRIES);   /* the lowest free ref */
	pv_gntshr_close(gs);
	pv_hv_close(hv);
	liar_finish("honest grant table");
}

/* ======================================================================
 * Grant maps (pv_gnttab_map_batch / map_grant_ref, HVP_MAP)
 * ====================================================================== */

enum map_lie {
	MP_HONEST, MP_SHORT_VIEW, MP_ZERO_PAGES, MP_UNALIGNED, MP_OFF_END, MP_OFF_LAST,
	MP_OFF_HUGE, MP_NO_FD, MP_NO_VIEW, MP_OTHER_VIEW, MP_PIPE_VIEW, MP_RDONLY_VIEW,
	MP_EXTRA_FDS, MP_MANY_FDS,
	MP_VIEWS_MAX, MP_COUNT_ZERO, MP_COUNT_MORE, MP_LEN_SHORT, MP_LEN_LONG, MP_ERROR,
	MP_REVOKE,
};

static int sc_map(int lie)
{
	struct gnttab_map_grant_ref w[2];
	struct hvp_view v = { GRANTER, 1, LR_PAGES };
	static uint8_t pay[2 * sizeof(w[0]) + (HVP_MAX_VIEWS + 1) * sizeof(v) + 8];
	size_t bytes = LR_PAGES * PV_PAGE_SIZE;
	unsigned n = 1, nv = 1, nfds = 1;
	bool undo = false;
	int fds[LR_MAX_FDS], extra = 0, memfd;
	long long adjust = 0;
	struct lreq q;
	struct hvp_hdr h;
	char back[8] = "";

	lr_hello();
	lr_expect(&q, HVP_MAP);
	CHECK_EQ(q.h.count, 1);
	CHECK_EQ(q.len, sizeof(w[0]));
	memcpy(&w[0], q.body, sizeof(w[0]));
	CHECK_EQ(w[0].dom, GRANTER);
	CHECK_EQ(w[0].ref, GREF);
	w[0].status = GNTST_okay;
	w[0].handle = HANDLE;
	w[0].dev_bus_addr = 2 * PV_PAGE_SIZE;
	w[1] = w[0];
	h = lr_hdr(&q, 0);
	switch (lie) {
	case MP_SHORT_VIEW: bytes -= PV_PAGE_SIZE; w[0].dev_bus_addr = 0; undo = true; break;
	case MP_ZERO_PAGES: v.mem_pages = 0; w[0].dev_bus_addr = 0; undo = true; break;
	case MP_UNALIGNED:  w[0].dev_bus_addr = PV_PAGE_SIZE + 8; undo = true; break;
	case MP_OFF_END:    w[0].dev_bus_addr = bytes; undo = true; break;
	case MP_OFF_LAST:   w[0].dev_bus_addr = bytes - PV_PAGE_SIZE; break;  /* fine */
	case MP_OFF_HUGE:   w[0].dev_bus_addr = UINT64_MAX & ~(uint64_t)(PV_PAGE_SIZE - 1);
			    undo = true; break;
	case MP_NO_FD:      nfds = 0; undo = true; break;
	case MP_NO_VIEW:    nv = 0; nfds = 0; undo = true; break;
	case MP_OTHER_VIEW: v.domid = GRANTER + 1; undo = true; break;
	case MP_PIPE_VIEW:  undo = true; break;
	case MP_RDONLY_VIEW: undo = true; break;
	case MP_EXTRA_FDS:  extra = 2; break;
	case MP_MANY_FDS:   extra = LR_MAX_FDS - 1; break;
	case MP_VIEWS_MAX:  nv = HVP_MAX_VIEWS + 1; break;
	case MP_COUNT_ZERO: n = 0; break;
	case MP_COUNT_MORE: n = 2; break;
	case MP_LEN_SHORT:  adjust = -4; break;
	case MP_LEN_LONG:   adjust = 4; break;
	case MP_ERROR:      h.ret = -ENOMEM; break;
	}
	memfd = lr_memfd(bytes, true);
	CHECK(pwrite(memfd, "liar-map", 9, w[0].dev_bus_addr % bytes) == 9);
	fds[0] = memfd;
	if (lie == MP_PIPE_VIEW) {
		int p[2];
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		fds[0] = p[0];
		close(p[1]);
	}
	if (lie == MP_RDONLY_VIEW) {   /* whole, but its read-write view fails */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
		fds[0] = open(path, O_RDONLY | O_CLOEXEC);
		CHECK(fds[0] >= 0);
	}
	for (int i = 0; i < extra; i++)
		fds[nfds++] = dup(memfd);
	h.count = n;
	h.arg[0] = nv;
	memcpy(pay, w, n * sizeof(w[0]));
	for (unsigned i = 0; i < nv; i++)
		memcpy(pay + n * sizeof(w[0]) + i * sizeof(v), &v, sizeof(v));
	lr_reply(h, pay, (size_t)((long long)(n * sizeof(w[0]) + nv * sizeof(v)) + adjust), fds,
		 nfds);
	if (fds[0] != memfd)
		close(fds[0]);
	lr_close_all(fds + 1, nfds ? nfds - 1 : 0);
	if (undo)        /* a grant the client cannot use is given back at once */
		lr_expect_unmap(HANDLE);
	if (lie == MP_HONEST || lie == MP_EXTRA_FDS || lie == MP_MANY_FDS ||
	    lie == MP_OFF_LAST) {
		/* The client wrote "back" through its mapping, then unmaps. */
		lr_expect_unmap(HANDLE);
		CHECK(pread(memfd, back, 5, w[0].dev_bus_addr + 16) == 5);
		CHECK(memcmp(back, "back", 5) == 0);
	}
	if (lie == MP_REVOKE) {
		/* A reply announcing a notice: the client peeks (arg0 0) after
		 * what it has seen, and applies the revocation to its view. */
		struct hvp_notice nt = { .type = PV_NOTICE_MAPPINGS_REVOKED, .domid = GRANTER,
					 .incarnation = 1, .seq = 1 };
		struct gnttab_unmap_grant_ref u;

		lr_expect(&q, HVP_UNMAP);
		CHECK_EQ(q.len, sizeof(u));
		memcpy(&u, q.body, sizeof(u));
		u.status = GNTST_okay;
		h = lr_hdr(&q, 0);
		h.count = 1;
		h.notice_seq = 1;
		lr_reply(h, &u, sizeof(u), NULL, 0);
		lr_expect(&q, HVP_NOTICES);
		CHECK_EQ(q.h.arg[0], 0);
		CHECK_EQ(q.h.arg[1], 0);
		h = lr_hdr(&q, 1);
		h.count = 1;
		h.notice_seq = 1;
		lr_reply(h, &nt, sizeof(nt), NULL, 0);
	}
	close(memfd);
	return lr_end();
}

static const struct { int lie; const char *name; } map_undo_lies[] = {
	{ MP_SHORT_VIEW, "view memfd shorter than announced" },
	{ MP_ZERO_PAGES, "view of zero pages" },
	{ MP_UNALIGNED,  "page offset not page-aligned" },
	{ MP_OFF_END,    "page offset at the end of the view" },
	{ MP_OFF_HUGE,   "page offset near 2^64" },
	{ MP_NO_FD,      "view without its memfd" },
	{ MP_NO_VIEW,    "mapped, but no view ever passed" },
	{ MP_OTHER_VIEW, "the view of another domain" },
	{ MP_PIPE_VIEW,  "a pipe for a view" },
	{ MP_RDONLY_VIEW, "a read-only file for a view" },
};

/* A mapping that the reply makes unusable: the op fails (no address), the
 * grant is unmapped at once, the call itself succeeds. */
static void test_map_unusable(void **state)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(map_undo_lies); i++) {
		const char *name = map_undo_lies[i].name;
		struct pv_gnttab_map_op op = { .domid = GRANTER, .ref = GREF, .status = 99 };
		struct pv_gnttab *gt;

		liar_start(sc_map, map_undo_lies[i].lie);
		gt = pv_gnttab_open(L.sock);
		LIE_TRUE(name, gt != NULL);
		op.addr = &op;
		LIE_EQ(name, pv_gnttab_map_batch(gt, 1, &op), 0);
		LIE_EQ(name, op.status, GNTST_no_space);
		LIE_TRUE(name, op.addr == NULL);
		pv_gnttab_close(gt);
		liar_finish(name);

		/* The libxengnttab-shaped call: NULL, errno ENOSPC. */
		liar_start(sc_map, map_undo_lies[i].lie);
		gt = pv_gnttab_open(L.sock);
		LIE_TRUE(name, gt != NULL);
		errno = 0;
		LIE_TRUE(name, pv_gnttab_map_grant_ref(gt, GRANTER, GREF, PROT_READ | PROT_WRITE) == NULL);
		LIE_EQ(name, errno, ENOSPC);
		pv_gnttab_close(gt);
		liar_finish(name);
	}
}

static const struct { int lie; const char *name; int err; } map_lies[] = {
	{ MP_VIEWS_MAX,  "more views than HVP_MAX_VIEWS", EPROTO },
	{ MP_COUNT_ZERO, "no op answered", EPROTO },
	{ MP_COUNT_MORE, "more ops answered than asked", EPROTO },
	{ MP_LEN_SHORT,  "map reply 4 bytes short", EPROTO },
	{ MP_LEN_LONG,   "map reply 4 bytes long", EPROTO },
	{ MP_ERROR,      "an error carrying a view", ENOMEM },
};

static void test_map_lies(void **state)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(map_lies); i++) {
		const char *name = map_lies[i].name;
		struct pv_gnttab_map_op op = { .domid = GRANTER, .ref = GREF };
		struct pv_gnttab *gt;

		liar_start(sc_map, map_lies[i].lie);
		gt = pv_gnttab_open(L.sock);
		LIE_TRUE(name, gt != NULL);
		LIE_EQ(name, pv_gnttab_map_batch(gt, 1, &op), -map_lies[i].err);
		pv_gnttab_close(gt);
		liar_finish(name);
	}
}

/* Honest maps (fds beyond the view's are closed, beyond 16 dropped by the
 * kernel): the page is the granter's, shared both ways. */
static void test_map_honest(void **state)
{
	static const int lies[] = { MP_HONEST, MP_OFF_LAST, MP_EXTRA_FDS, MP_MANY_FDS };
	static const char *const names[] = { "honest map", "the view's last page",
					     "two fds more than views", "47 fds more than views" };

	for (size_t i = 0; i < PV_ARRAY_SIZE(lies); i++) {
		struct pv_gnttab *gt;
		uint8_t *p;

		liar_start(sc_map, lies[i]);
		gt = pv_gnttab_open(L.sock);
		LIE_TRUE(names[i], gt != NULL);
		p = pv_gnttab_map_grant_ref(gt, GRANTER, GREF, PROT_READ | PROT_WRITE);
		LIE_TRUE(names[i], p != NULL);
		LIE_TRUE(names[i], strcmp((char *)p, "liar-map") == 0);
		memcpy(p + 16, "back", 5);
		LIE_EQ(names[i], pv_gnttab_unmap(gt, p, 1), 0);
		pv_gnttab_close(gt);
		liar_finish(names[i]);
	}
}

/* Two maps of the same domain: the first reply carries its view, the second
 * the same view (same domid and incarnation) again, now as a memfd a page
 * short. The client keeps the view its first mapping points into, and the
 * second grant maps through it. */
static int sc_map_again(int lie)
{
	struct hvp_view v = { GRANTER, 1, LR_PAGES };
	uint8_t pay[sizeof(struct gnttab_map_grant_ref) + sizeof(v)];
	size_t bytes = LR_PAGES * PV_PAGE_SIZE;
	int memfd = lr_memfd(bytes, true), shortfd = lr_memfd(bytes - PV_PAGE_SIZE, true);

	(void)lie;
	CHECK(pwrite(memfd, "first", 6, 2 * PV_PAGE_SIZE) == 6);
	CHECK(pwrite(memfd, "second", 7, 3 * PV_PAGE_SIZE) == 7);
	lr_hello();
	for (int k = 0; k < 2; k++) {
		struct gnttab_map_grant_ref w;
		struct lreq q;
		struct hvp_hdr h;

		lr_expect(&q, HVP_MAP);
		CHECK_EQ(q.h.count, 1);
		memcpy(&w, q.body, sizeof(w));
		w.status = GNTST_okay;
		w.handle = HANDLE + (uint32_t)k;
		w.dev_bus_addr = (uint64_t)(2 + k) * PV_PAGE_SIZE;
		h = lr_hdr(&q, 0);
		h.count = 1;
		h.arg[0] = 1;
		memcpy(pay, &w, sizeof(w));
		memcpy(pay + sizeof(w), &v, sizeof(v));
		lr_reply(h, pay, sizeof(pay), k == 0 ? &memfd : &shortfd, 1);
	}
	lr_expect_unmap(HANDLE + 1);
	lr_expect_unmap(HANDLE);
	close(shortfd);
	close(memfd);
	return lr_end();
}

static void test_map_view_again(void **state)
{
	const char *name = "the same view again, a page short";
	struct pv_gnttab *gt;
	uint8_t *a, *b;

	liar_start(sc_map_again, 0);
	gt = pv_gnttab_open(L.sock);
	assert_non_null(gt);
	a = pv_gnttab_map_grant_ref(gt, GRANTER, GREF, PROT_READ | PROT_WRITE);
	LIE_TRUE(name, a != NULL);
	LIE_TRUE(name, strcmp((char *)a, "first") == 0);
	b = pv_gnttab_map_grant_ref(gt, GRANTER, GREF + 1, PROT_READ | PROT_WRITE);
	LIE_TRUE(name, b != NULL);
	/* The first mapping still reads (its view was not retired), and the
	 * second one reads through the same view. */
	LIE_TRUE(name, !hvt_faults(a, false) && strcmp((char *)a, "first") == 0);
	LIE_TRUE(name, !hvt_faults(b, false) && strcmp((char *)b, "second") == 0);
	LIE_EQ(name, pv_gnttab_unmap(gt, b, 1), 0);
	LIE_EQ(name, pv_gnttab_unmap(gt, a, 1), 0);
	pv_gnttab_close(gt);
	liar_finish(name);
}

/* A revocation announced by a reply is applied before the call returns:
 * the mapping faults (the fake speaks the notice protocol as the daemon). */
static void test_map_revoked(void **state)
{
	struct pv_gnttab_map_op op = { .domid = GRANTER, .ref = GREF };
	uint32_t other = HANDLE + 1;
	struct pv_gnttab *gt;
	int16_t st;

	liar_start(sc_map, MP_REVOKE);
	gt = pv_gnttab_open(L.sock);
	assert_non_null(gt);
	assert_int_equal(pv_gnttab_map_batch(gt, 1, &op), 0);
	assert_int_equal(op.status, GNTST_okay);
	assert_false(hvt_faults(op.addr, false));
	assert_int_equal(pv_gnttab_unmap_batch(gt, 1, &other, &st), 0);
	assert_true(hvt_faults(op.addr, false));
	pv_gnttab_close(gt);
	liar_finish("revocation");
}

/* ======================================================================
 * Unmap, copy, notices
 * ====================================================================== */

enum misc_lie {
	UL_COUNT, UL_LEN, CL_COUNT, CL_LEN, NL_COUNT, NL_LEN, NL_STORM, CL_ERROR,
};

static int sc_misc(int lie)
{
	static uint8_t pay[4096];
	struct lreq q;
	struct hvp_hdr h;
	size_t len = 0;
	unsigned rounds = 0;

	lr_hello();
	switch (lie) {
	case UL_COUNT:
	case UL_LEN:
		lr_expect(&q, HVP_UNMAP);
		h = lr_hdr(&q, 0);
		h.count = lie == UL_COUNT ? 2 : 1;
		len = lie == UL_COUNT ? 2 * sizeof(struct gnttab_unmap_grant_ref)
				      : sizeof(struct gnttab_unmap_grant_ref) - 4;
		break;
	case CL_COUNT:
	case CL_LEN:
	case CL_ERROR:
		lr_expect(&q, HVP_COPY);
		h = lr_hdr(&q, lie == CL_ERROR ? -EIO : 0);
		h.count = lie == CL_COUNT ? 0 : 1;
		len = lie == CL_LEN ? 1 : lie == CL_COUNT ? 0 : sizeof(int16_t);
		break;
	case NL_COUNT:
	case NL_LEN:
		lr_expect(&q, HVP_NOTICES);
		CHECK_EQ(q.h.arg[0], 1);     /* poll consumes */
		CHECK_EQ(q.h.count, 2);
		h = lr_hdr(&q, 0);
		h.count = lie == NL_COUNT ? 3 : 1;
		len = lie == NL_COUNT ? 3 * sizeof(struct hvp_notice) : sizeof(struct hvp_notice) + 4;
		break;
	case NL_STORM:
		/* Every reply announces a newer notice than the one it gives. */
		lr_expect(&q, HVP_UNMAP);
		h = lr_hdr(&q, 0);
		h.count = 1;
		h.notice_seq = 1;
		lr_reply(h, q.body, sizeof(struct gnttab_unmap_grant_ref), NULL, 0);
		while (lr_recv(&q)) {
			struct hvp_notice nt = { .type = PV_NOTICE_DOMAIN_GONE, .domid = 3 };
			CHECK_EQ(q.h.op, HVP_NOTICES);
			nt.seq = ++rounds;
			h = lr_hdr(&q, 1);
			h.count = 1;
			h.notice_seq = rounds + 1;
			lr_reply(h, &nt, sizeof(nt), NULL, 0);
		}
		CHECK(rounds >= 1 && rounds <= 64);
		return 0;
	}
	lr_reply(h, pay, len, NULL, 0);
	return lr_end();
}

static void test_misc_lies(void **state)
{
	static const struct { int lie; const char *name; int want; } lies[] = {
		{ UL_COUNT, "unmap: more answers than asked", -EPROTO },
		{ UL_LEN,   "unmap: reply cut short", -EPROTO },
		{ CL_COUNT, "copy: no status", -EPROTO },
		{ CL_LEN,   "copy: a status of one byte", -EPROTO },
		{ CL_ERROR, "copy: an error", -EIO },
		{ NL_COUNT, "notices: more than asked", -EPROTO },
		{ NL_LEN,   "notices: reply 4 bytes long", -EPROTO },
		{ NL_STORM, "notices: always a newer one", 0 },
	};

	for (size_t i = 0; i < PV_ARRAY_SIZE(lies); i++) {
		const char *name = lies[i].name;
		struct pv_gnttab_copy_seg seg = { .len = 8, .flags = PV_GNTCOPY_source_gref };
		struct pv_notice out[2];
		uint32_t handle = HANDLE;
		struct pv_gnttab *gt;
		int16_t st = 99;
		int r = 1;

		liar_start(sc_misc, lies[i].lie);
		gt = pv_gnttab_open(L.sock);
		LIE_TRUE(name, gt != NULL);
		switch (lies[i].lie) {
		case UL_COUNT: case UL_LEN: case NL_STORM:
			r = pv_gnttab_unmap_batch(gt, 1, &handle, &st);
			break;
		case CL_COUNT: case CL_LEN: case CL_ERROR:
			seg.dest.virt = &seg;
			r = pv_gnttab_grant_copy(gt, 1, &seg);
			break;
		case NL_COUNT: case NL_LEN:
			r = pv_gnttab_poll_notices(gt, out, 2);
			break;
		}
		LIE_EQ(name, r, lies[i].want);
		pv_gnttab_close(gt);
		liar_finish(name);
	}
}

/* ======================================================================
 * Grant copy in dom0 (HVP_GT_ATTACH): a lie makes the copy go to the
 * daemon (HVP_COPY) instead; the truth makes it happen in the client.
 * ====================================================================== */

enum at_lie { AT_HONEST, AT_NO_FDS, AT_SHORT_TABLE, AT_UNSEALED, AT_BAD_MAGIC, AT_LEN,
	      AT_OTHER_DOMID, AT_NO_ENTRIES, AT_HUGE_MEMORY, AT_EPERM };
#define AT_DOM 7
#define AT_ENTRIES 512u
#define AT_REF 8

/* The granter's table, state and memory as domain.c would make them. */
static void at_make(int lie, int fds[3])
{
	size_t tlen = AT_ENTRIES * sizeof(grant_entry_v1_t), slen = hvd_gt_state_size(AT_ENTRIES);
	grant_entry_v1_t *t;
	uint8_t *mem;
	void *st;
	struct hvd_gt g;

	fds[0] = lr_memfd(lie == AT_SHORT_TABLE ? tlen / 2 : tlen, lie != AT_UNSEALED);
	fds[1] = lr_memfd(slen, true);
	fds[2] = lr_memfd(LR_PAGES * PV_PAGE_SIZE, true);
	t = mmap(NULL, lie == AT_SHORT_TABLE ? tlen / 2 : tlen, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fds[0], 0);
	st = mmap(NULL, slen, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	mem = mmap(NULL, LR_PAGES * PV_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[2], 0);
	CHECK(t != MAP_FAILED && st != MAP_FAILED && mem != MAP_FAILED);
	if (lie != AT_BAD_MAGIC)
		CHECK(hvd_gt_init(&g, t, AT_ENTRIES, AT_DOM, st) == 0);
	strcpy((char *)mem + PV_PAGE_SIZE, "attached");
	if (lie != AT_SHORT_TABLE) {
		t[AT_REF].domid = 0;
		t[AT_REF].frame = 1;
		t[AT_REF].flags = GTF_permit_access;
	}
	munmap(t, lie == AT_SHORT_TABLE ? tlen / 2 : tlen);
	munmap(st, slen);
	munmap(mem, LR_PAGES * PV_PAGE_SIZE);
}

/* An honest answer to the copy the client falls back to. */
static void at_copy_reply(void)
{
	int16_t st = GNTST_okay;
	struct lreq q;
	struct hvp_hdr h;

	lr_expect(&q, HVP_COPY);
	CHECK_EQ(q.h.count, 1);
	h = lr_hdr(&q, 0);
	h.count = 1;
	lr_reply(h, &st, sizeof(st), NULL, 0);
}

static int sc_attach(int lie)
{
	struct hvp_hello o = { .domid = 0, .state = PV_DOM_RUNNING, .max_port = LR_MAX_PORT,
			       .mem_pages = LR_PAGES };
	struct hvp_attach a = { AT_DOM, 1, AT_ENTRIES, LR_PAGES };
	size_t len = sizeof(a);
	unsigned nfds = 3;
	struct lreq q;
	int fds[3];

	lr_expect(&q, HVP_HELLO);
	lr_reply(lr_hdr(&q, 0), &o, sizeof(o), &lr_notice[1], 1);
	lr_expect(&q, HVP_GT_ATTACH);
	CHECK_EQ(q.h.arg[0], AT_DOM);
	at_make(lie, fds);
	switch (lie) {
	case AT_NO_FDS:      nfds = 0; break;
	case AT_LEN:         len = sizeof(a) - 4; break;
	case AT_OTHER_DOMID: a.domid = AT_DOM + 1; break;
	case AT_NO_ENTRIES:  a.nr_entries = 0; break;
	case AT_HUGE_MEMORY: a.mem_pages = LR_PAGES * 1024; break;
	case AT_EPERM:       len = 0; nfds = 0; break;
	}
	lr_reply(lr_hdr(&q, lie == AT_EPERM ? -EPERM : 0), &a, len, fds, nfds);
	lr_close_all(fds, 3);
	if (lie == AT_HONEST)
		return lr_end();     /* copied in the client: nothing more asked */
	at_copy_reply();
	at_copy_reply();     /* refused or lied to once: not asked again */
	return lr_end();
}

static void test_attach_lies(void **state)
{
	static const struct { int lie; const char *name; } lies[] = {
		{ AT_HONEST,      "honest" },
		{ AT_NO_FDS,      "attach: no fds" },
		{ AT_SHORT_TABLE, "attach: a grant table smaller than said" },
		{ AT_UNSEALED,    "attach: an unsealed grant table" },
		{ AT_BAD_MAGIC,   "attach: a state that is not one" },
		{ AT_LEN,         "attach: reply cut short" },
		{ AT_OTHER_DOMID, "attach: another domain's" },
		{ AT_NO_ENTRIES,  "attach: no grant entries" },
		{ AT_HUGE_MEMORY, "attach: memory larger than its memfd" },
		{ AT_EPERM,       "attach: refused" },
	};
	static uint8_t own[2 * PV_PAGE_SIZE] __attribute__((aligned(4096)));

	for (size_t i = 0; i < PV_ARRAY_SIZE(lies); i++) {
		const char *name = lies[i].name;
		struct pv_gnttab_copy_seg seg = { .len = 9, .flags = PV_GNTCOPY_source_gref };
		struct pv_gnttab *gt;

		memset(own, 0, sizeof(own));
		liar_start(sc_attach, lies[i].lie);
		gt = pv_gnttab_open(L.sock);
		LIE_TRUE(name, gt != NULL);
		LIE_EQ(name, pv_gnttab_set_own_memory(gt, own, 2), 0);
		seg.source.foreign.domid = AT_DOM;
		seg.source.foreign.ref = AT_REF;
		seg.dest.virt = own;
		LIE_EQ(name, pv_gnttab_grant_copy(gt, 1, &seg), 0);
		LIE_EQ(name, seg.status, GNTST_okay);
		LIE_EQ(name, pv_gnttab_local_copies(gt), lies[i].lie == AT_HONEST);
		LIE_TRUE(name, (lies[i].lie == AT_HONEST) == (strcmp((char *)own, "attached") == 0));
		if (lies[i].lie != AT_HONEST) {
			LIE_EQ(name, pv_gnttab_grant_copy(gt, 1, &seg), 0);
			LIE_EQ(name, seg.status, GNTST_okay);
			LIE_EQ(name, pv_gnttab_local_copies(gt), 0);
		}
		pv_gnttab_close(gt);
		liar_finish(name);
	}
}

/* ======================================================================
 * Event channels (pv_evtchn_*, HVP_EC_*)
 * ====================================================================== */

enum ec_lie {
	EL_HONEST, EL_ONE_FD, EL_NO_FD, EL_TWO_FDS, EL_FOUR_FDS, EL_PORT0, EL_PORT_BIG, EL_PORT_DUP,
	EL_SHORT, EL_LONG, EL_NOT_POLLABLE, EL_ERROR, EL_BIND_SHORT, EL_BIND_PORT_BIG,
	EL_STATUS_SHORT, EL_STATUS_LONG, EL_BLOCKING, EL_NOTICES, EL_STATUS_BOGUS,
	EL_FLAGS_SHORT, EL_FLAGS_UNSEALED, EL_FLAGS_BELL, EL_SIDE, EL_PIPE_BELL, EL_PIPE_RING,
};

static const uint64_t ring_zero;   /* ringing a doorbell: a zero */

/* A channel's doorbell as the daemon makes it (ready from the start). */
static int lr_bell(bool nonblock)
{
	int fd = eventfd(1, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));

	CHECK(fd >= 0);
	return fd;
}

/* An edge-triggered watch on a doorbell, its first report (ready from the
 * start) taken: afterwards it reports each ring. */
static int lr_bell_watch(int bell)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, bell, &ev) == 0);
	CHECK(epoll_wait(ep, &ev, 1, 0) == 1);
	return ep;
}

static bool lr_rang(int ep)
{
	struct epoll_event ev;

	return epoll_wait(ep, &ev, 1, 0) == 1;
}

static uint32_t *lr_flags_map(int fd)
{
	void *p = mmap(NULL, HVP_EC_FLAGS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

#define EC_PORT 5

/* The lies in a well-formed reply for port EC_PORT that the client refuses
 * to take: it must close the port again (the daemon would keep it). */
static bool ec_refused(int lie)
{
	switch (lie) {
	case EL_ONE_FD: case EL_NO_FD: case EL_TWO_FDS: case EL_FOUR_FDS: case EL_FLAGS_SHORT:
	case EL_FLAGS_UNSEALED: case EL_FLAGS_BELL: case EL_SIDE: case EL_NOT_POLLABLE:
	case EL_PIPE_BELL: case EL_PIPE_RING:
		return true;
	default:
		return false;
	}
}

static int sc_ec(int lie)
{
	struct evtchn_alloc_unbound a;
	struct evtchn_bind_interdomain b;
	struct evtchn_status s;
	uint8_t pay[64] = { 0 };
	int cbell, obell, fds[4], watch, pp[2] = { -1, -1 };
	uint32_t *flags;
	unsigned nfds = 3;
	size_t len;
	struct lreq q;
	struct hvp_hdr h;

	lr_hello();
	if (lie == EL_STATUS_SHORT || lie == EL_STATUS_LONG || lie == EL_STATUS_BOGUS) {
		lr_expect(&q, HVP_EC_STATUS);
		CHECK_EQ(q.len, sizeof(s));
		memcpy(&s, q.body, sizeof(s));
		s.status = lie == EL_STATUS_BOGUS ? (uint32_t)-EAGAIN : EVTCHNSTAT_unbound;
		memcpy(pay, &s, sizeof(s));
		lr_reply(lr_hdr(&q, 0), pay, sizeof(s) + (lie == EL_STATUS_LONG ? 4 : 0)
			 - (lie == EL_STATUS_SHORT ? 4 : 0), NULL, 0);
		return lr_end();
	}
	/* The doorbells: cbell the client's (we ring it), obell the peer's
	 * (the client rings it; watched here). */
	cbell = lr_bell(lie != EL_BLOCKING);
	obell = lr_bell(lie != EL_BLOCKING);
	watch = lr_bell_watch(obell);
	if (lie == EL_BLOCKING) {   /* and the peer's saturated: a ring is a zero */
		uint64_t most = 0xfffffffffffffffdull;
		CHECK(write(obell, &most, sizeof(most)) == (ssize_t)sizeof(most));
	}
	fds[0] = cbell;
	fds[1] = obell;
	fds[2] = lr_memfd(HVP_EC_FLAGS_SIZE, true);
	fds[3] = cbell;
	flags = lr_flags_map(fds[2]);
	if (lie == EL_BIND_SHORT || lie == EL_BIND_PORT_BIG) {
		lr_expect(&q, HVP_EC_BIND);
		CHECK_EQ(q.len, sizeof(b));
		memcpy(&b, q.body, sizeof(b));
		CHECK_EQ(b.remote_dom, 3);
		CHECK_EQ(b.remote_port, 11);
		b.local_port = lie == EL_BIND_PORT_BIG ? LR_MAX_PORT + 1 : EC_PORT;
		memcpy(pay, &b, sizeof(b));
		len = sizeof(b) - (lie == EL_BIND_SHORT ? 4 : 0);
		lr_reply(lr_hdr(&q, 0), pay, len, fds, 3);
		lr_close_all(fds, 3);
		munmap(flags, HVP_EC_FLAGS_SIZE);
		close(watch);
		return lr_end();
	}
	if (lie == EL_PORT_DUP) {   /* port EC_PORT, honestly, first */
		int f[3] = { lr_bell(true), lr_bell(true), lr_memfd(HVP_EC_FLAGS_SIZE, true) };

		lr_expect(&q, HVP_EC_ALLOC_UNBOUND);
		memcpy(&a, q.body, sizeof(a));
		a.port = EC_PORT;
		lr_reply(lr_hdr(&q, 0), &a, sizeof(a), f, 3);
		lr_close_all(f, 3);
	}
	lr_expect(&q, HVP_EC_ALLOC_UNBOUND);
	CHECK_EQ(q.len, sizeof(a));
	memcpy(&a, q.body, sizeof(a));
	CHECK_EQ(a.dom, DOMID_SELF);
	CHECK_EQ(a.remote_dom, 3);
	a.port = EC_PORT;
	h = lr_hdr(&q, 0);
	len = sizeof(a);
	switch (lie) {
	case EL_ONE_FD:       nfds = 1; break;
	case EL_NO_FD:        nfds = 0; break;
	case EL_TWO_FDS:    nfds = 2; break;
	case EL_FOUR_FDS:     nfds = 4; break;
	case EL_FLAGS_SHORT:  close(fds[2]); fds[2] = lr_memfd(HVP_EC_FLAGS_SIZE - 1, true); break;
	case EL_FLAGS_UNSEALED: close(fds[2]); fds[2] = lr_memfd(HVP_EC_FLAGS_SIZE, false); break;
	case EL_FLAGS_BELL:   close(fds[2]); fds[2] = dup(cbell); break;
	case EL_SIDE:         h.arg[0] = 2; break;
	case EL_PORT0:        a.port = 0; break;
	case EL_PORT_BIG:     a.port = LR_MAX_PORT + 1; break;
	case EL_SHORT:        len -= 4; break;
	case EL_LONG:         len += 4; break;
	case EL_NOT_POLLABLE: fds[0] = lr_memfd(PV_PAGE_SIZE, true); break;
	case EL_PIPE_BELL:    CHECK(pipe2(pp, O_CLOEXEC) == 0); fds[0] = pp[0]; break;
	case EL_PIPE_RING:    CHECK(pipe2(pp, O_CLOEXEC) == 0); fds[1] = pp[1]; break;
	case EL_ERROR:        h.ret = -ENOSPC; break;
	case EL_NOTICES:      h.notice_seq = 1; break;
	}
	/* An event already pending: its flag (side 0's) set, its doorbell rung. */
	__atomic_store_n(&flags[0], 1, __ATOMIC_SEQ_CST);
	CHECK(write(cbell, &ring_zero, sizeof(ring_zero)) == (ssize_t)sizeof(ring_zero));
	memcpy(pay, &a, sizeof(a));
	lr_reply(h, pay, len, fds, nfds);
	if (fds[0] != cbell)
		close(fds[0]);
	if (fds[1] != obell)
		close(fds[1]);
	lr_close_all(pp, 2);
	close(fds[2]);
	close(cbell);
	if (ec_refused(lie)) {
		/* The client hands back the port it could not take. */
		lr_expect(&q, HVP_EC_CLOSE);
		CHECK_EQ(q.h.arg[0], EC_PORT);
		lr_reply(lr_hdr(&q, 0), NULL, 0, NULL, 0);
	}
	if (lie == EL_NOTICES) {
		/* The handle consumes (arg0 1) the notice the reply announced. */
		struct hvp_notice nt = { .type = PV_NOTICE_PORT_CLOSED, .domid = 3, .port = 11,
					 .seq = 1 };
		lr_expect(&q, HVP_NOTICES);
		CHECK_EQ(q.h.arg[0], 1);
		h = lr_hdr(&q, 1);
		h.count = 1;
		h.notice_seq = 1;
		lr_reply(h, &nt, sizeof(nt), NULL, 0);
	}
	if (lr_end() != 0)
		return 1;
	if (lie == EL_HONEST || lie == EL_BLOCKING) {   /* the client's notify: flag and ring */
		CHECK(__atomic_load_n(&flags[HVP_EC_FLAG_STRIDE / 4], __ATOMIC_SEQ_CST) == 1);
		CHECK(lr_rang(watch));
	}
	munmap(flags, HVP_EC_FLAGS_SIZE);
	close(watch);
	close(obell);
	return 0;
}

static const struct { int lie; const char *name; int want; } ec_lies[] = {
	{ EL_ONE_FD,       "one fd instead of three", -EPROTO },
	{ EL_NO_FD,        "no fd", -EPROTO },
	{ EL_TWO_FDS,    "two fds (no flags page)", -EPROTO },
	{ EL_FOUR_FDS,     "four fds", -EPROTO },
	{ EL_FLAGS_SHORT,  "a flags page one byte short", -EPROTO },
	{ EL_FLAGS_UNSEALED, "an unsealed flags page (could shrink under us)", -EPROTO },
	{ EL_FLAGS_BELL,   "a doorbell for the flags page", -EPROTO },
	{ EL_SIDE,         "side 2 of a two-sided channel", -EPROTO },
	{ EL_PORT0,        "port 0", -EPROTO },
	{ EL_PORT_BIG,     "port above max_port", -EPROTO },
	{ EL_SHORT,        "reply payload 4 bytes short", -EPROTO },
	{ EL_LONG,         "reply payload 4 bytes long", -EPROTO },
	{ EL_NOT_POLLABLE, "a memfd for a doorbell", -EPROTO },
	{ EL_PIPE_BELL,    "a pipe for our doorbell (could block, never ring)", -EPROTO },
	{ EL_PIPE_RING,    "a pipe for the peer's doorbell (a write could block)", -EPROTO },
	{ EL_ERROR,        "an error carrying fds", -ENOSPC },
};

static void test_evtchn_lies(void **state)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(ec_lies); i++) {
		const char *name = ec_lies[i].name;
		struct pv_evtchn *ec;

		liar_start(sc_ec, ec_lies[i].lie);
		ec = pv_evtchn_open(L.sock);
		LIE_TRUE(name, ec != NULL);
		LIE_EQ(name, pv_evtchn_bind_unbound_port(ec, 3), ec_lies[i].want);
		/* Nothing bound: the port is not ours. */
		LIE_EQ(name, pv_evtchn_notify(ec, EC_PORT), -EINVAL);
		LIE_EQ(name, pv_evtchn_pending(ec), -EAGAIN);
		pv_evtchn_close(ec);
		liar_finish(name);
	}
}

static void test_evtchn_more_lies(void **state)
{
	struct pv_evtchn *ec;
	const char *name;

	name = "the same port twice";
	liar_start(sc_ec, EL_PORT_DUP);
	ec = pv_evtchn_open(L.sock);
	LIE_TRUE(name, ec != NULL);
	LIE_EQ(name, pv_evtchn_bind_unbound_port(ec, 3), EC_PORT);
	LIE_EQ(name, pv_evtchn_bind_unbound_port(ec, 3), -EPROTO);
	pv_evtchn_close(ec);
	liar_finish(name);

	name = "bind: reply payload 4 bytes short";
	liar_start(sc_ec, EL_BIND_SHORT);
	ec = pv_evtchn_open(L.sock);
	LIE_TRUE(name, ec != NULL);
	LIE_EQ(name, pv_evtchn_bind_interdomain(ec, 3, 11), -EPROTO);
	pv_evtchn_close(ec);
	liar_finish(name);

	name = "bind: port above max_port";
	liar_start(sc_ec, EL_BIND_PORT_BIG);
	ec = pv_evtchn_open(L.sock);
	LIE_TRUE(name, ec != NULL);
	LIE_EQ(name, pv_evtchn_bind_interdomain(ec, 3, 11), -EPROTO);
	pv_evtchn_close(ec);
	liar_finish(name);

	name = "status: reply 4 bytes short";
	liar_start(sc_ec, EL_STATUS_SHORT);
	ec = pv_evtchn_open(L.sock);
	LIE_TRUE(name, ec != NULL);
	LIE_EQ(name, pv_evtchn_status(ec, 1), -EPROTO);
	pv_evtchn_close(ec);
	liar_finish(name);

	name = "status: reply 4 bytes long";
	liar_start(sc_ec, EL_STATUS_LONG);
	ec = pv_evtchn_open(L.sock);
	LIE_TRUE(name, ec != NULL);
	LIE_EQ(name, pv_evtchn_status(ec, 1), -EPROTO);
	pv_evtchn_close(ec);
	liar_finish(name);
}

static void test_evtchn_honest(void **state)
{
	struct pv_evtchn *ec;

	liar_start(sc_ec, EL_HONEST);
	ec = pv_evtchn_open(L.sock);
	assert_non_null(ec);
	assert_int_equal(pv_evtchn_bind_unbound_port(ec, 3), EC_PORT);
	assert_int_equal(pv_evtchn_pending(ec), EC_PORT);   /* the new binding's event */
	assert_int_equal(pv_evtchn_unmask(ec, EC_PORT), 0);
	assert_int_equal(pv_evtchn_pending(ec), -EAGAIN);
	assert_int_equal(pv_evtchn_notify(ec, EC_PORT), 0);
	pv_evtchn_close(ec);
	liar_finish("honest channel");
}

/* A hostile peer on port 5 (the client's doorbell saturated, made blocking
 * and rung without flags, the client's flag set without meaning, its own
 * flag stuck at 1) and an honest one on port 6 of the same handle. */
static int sc_ec_hostile(int lie)
{
	int a_bell = lr_bell(true), a_ring = lr_bell(true), b_bell = lr_bell(true);
	int b_ring = lr_bell(true), fds[3], a_watch = lr_bell_watch(a_ring);
	int b_watch = lr_bell_watch(b_ring);
	uint64_t most = 0xfffffffffffffffdull, count;
	struct evtchn_alloc_unbound a;
	uint32_t *fa = NULL, *fb = NULL;
	struct lreq q;
	struct hvp_hdr h;

	(void)lie;
	lr_hello();
	for (int port = 5; port <= 6; port++) {
		lr_expect(&q, HVP_EC_ALLOC_UNBOUND);
		memcpy(&a, q.body, sizeof(a));
		a.port = (evtchn_port_t)port;
		fds[0] = port == 5 ? a_bell : b_bell;
		fds[1] = port == 5 ? a_ring : b_ring;
		fds[2] = lr_memfd(HVP_EC_FLAGS_SIZE, true);
		if (port == 5)
			fa = lr_flags_map(fds[2]);
		else
			fb = lr_flags_map(fds[2]);
		h = lr_hdr(&q, 0);
		h.arg[0] = 0;
		lr_reply(h, &a, sizeof(a), fds, 3);
		close(fds[2]);
	}
	/* Port 5: the client's doorbell saturated and made blocking, rung
	 * over and over without a flag, both flags set. */
	CHECK(write(a_bell, &most, sizeof(most)) == (ssize_t)sizeof(most));
	CHECK(fcntl(a_bell, F_SETFL, 0) == 0);
	for (int i = 0; i < 1000; i++)
		CHECK(write(a_bell, &ring_zero, sizeof(ring_zero)) == (ssize_t)sizeof(ring_zero));
	__atomic_store_n(&fa[0], 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&fa[HVP_EC_FLAG_STRIDE / 4], 1, __ATOMIC_SEQ_CST);
	/* Port 6: an honest notify. */
	__atomic_store_n(&fb[0], 1, __ATOMIC_SEQ_CST);
	CHECK(write(b_bell, &ring_zero, sizeof(ring_zero)) == (ssize_t)sizeof(ring_zero));
	if (lr_end() != 0)
		return 1;
	/* The client answered on 6; on 5 the stuck flag ate its notify. Nobody
	 * read a doorbell: the counts are as they were. */
	CHECK(lr_rang(b_watch));
	CHECK(!lr_rang(a_watch));
	CHECK(__atomic_load_n(&fb[HVP_EC_FLAG_STRIDE / 4], __ATOMIC_SEQ_CST) == 1);
	CHECK(read(b_ring, &count, sizeof(count)) == (ssize_t)sizeof(count) && count == 1);
	CHECK(read(a_bell, &count, sizeof(count)) == (ssize_t)sizeof(count) && count == most + 1);
	close(a_watch);
	close(b_watch);
	close(a_bell);
	close(a_ring);
	close(b_bell);
	close(b_ring);
	munmap(fa, HVP_EC_FLAGS_SIZE);
	munmap(fb, HVP_EC_FLAGS_SIZE);
	return 0;
}

static void test_evtchn_hostile_peer(void **state)
{
	const char *name = "a saturated doorbell, rings without flags and stuck flags on another port";
	bool got5 = false, got6 = false;
	struct pv_evtchn *ec;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	liar_start(sc_ec_hostile, 0);
	ec = pv_evtchn_open(L.sock);
	LIE_TRUE(name, ec != NULL && ep >= 0);
	LIE_EQ(name, pv_evtchn_attach(ec, ep, 9), 0);
	LIE_EQ(name, pv_evtchn_bind_unbound_port(ec, 3), 5);
	LIE_EQ(name, pv_evtchn_bind_unbound_port(ec, 3), 6);
	for (uint64_t end = pv_now_ns() + 5000000000ull; !(got5 && got6) && pv_now_ns() < end;) {
		struct epoll_event ev;
		int p;

		if (epoll_wait(ep, &ev, 1, 100) != 1)
			continue;
		LIE_EQ(name, ev.data.u64, 9);
		while ((p = pv_evtchn_pending(ec)) > 0) {
			got5 |= p == 5;
			got6 |= p == 6;
			LIE_EQ(name, pv_evtchn_unmask(ec, (evtchn_port_t)p), 0);
		}
		LIE_EQ(name, p, -EAGAIN);
	}
	LIE_TRUE(name, got5 && got6);
	LIE_EQ(name, pv_evtchn_notify(ec, 5), 0);
	LIE_EQ(name, pv_evtchn_notify(ec, 6), 0);
	pv_evtchn_close(ec);
	close(ep);
	liar_finish(name);
}

/* ======================================================================
 * Domain control and lifecycle (pv_hv_*)
 * ====================================================================== */

enum dom_lie {
	DL_INFO_SHORT, DL_INFO_LONG, DL_LIST_COUNT, DL_LIST_LEN, DL_SOCK_NONUL, DL_SOCK_EMPTY,
	DL_SOCK_LONG, DL_SUSPEND_SHORT, DL_EXPORT_NOFD, DL_EXPORT_TWOFDS, DL_DUP_REPLY,
	DL_WRONG_OP, DL_WRONG_SEQ, DL_CUT_HEADER, DL_CUT_PAYLOAD, DL_OVERSIZE, DL_CLOSE,
	DL_EMPTY, DL_WAIT_CLOSE, DL_CREATE_FDS, DL_DESTROY_CUT, DL_DESTROY_OVERSIZE,
};

static int sc_dom(int lie)
{
	static uint8_t pay[HVP_MAX_MSG + 4096];
	struct hvp_dominfo di = { .domid = 1, .state = PV_DOM_RUNNING, .name = "one" };
	struct lreq q;
	struct hvp_hdr h;
	size_t len = 0;
	int fds[2] = { -1, -1 };
	unsigned nfds = 0;

	memset(pay, 'x', sizeof(pay));
	lr_hello();
	switch (lie) {
	case DL_INFO_SHORT: case DL_INFO_LONG: case DL_DUP_REPLY: case DL_WRONG_OP:
	case DL_WRONG_SEQ: case DL_CUT_HEADER: case DL_CUT_PAYLOAD: case DL_OVERSIZE:
	case DL_CLOSE: case DL_EMPTY:
		lr_expect(&q, HVP_DOM_INFO);
		CHECK_EQ(q.h.arg[0], 1);
		h = lr_hdr(&q, 0);
		memcpy(pay, &di, sizeof(di));
		len = sizeof(di);
		break;
	case DL_LIST_COUNT: case DL_LIST_LEN:
		lr_expect(&q, HVP_DOM_LIST);
		h = lr_hdr(&q, HVP_MAX_LIST + 1);
		h.count = lie == DL_LIST_COUNT ? HVP_MAX_LIST + 1 : 2;
		for (unsigned i = 0; i < h.count; i++) {
			di.domid = i;
			memcpy(pay + i * sizeof(di), &di, sizeof(di));
		}
		len = lie == DL_LIST_COUNT ? h.count * sizeof(di) : sizeof(di);
		break;
	case DL_SOCK_NONUL: case DL_SOCK_EMPTY: case DL_SOCK_LONG:
		lr_expect(&q, HVP_DOM_SOCKET);
		h = lr_hdr(&q, 0);
		len = lie == DL_SOCK_NONUL ? 40 : lie == DL_SOCK_EMPTY ? 0 : 300;
		if (lie == DL_SOCK_LONG)
			pay[len - 1] = '\0';
		break;
	case DL_SUSPEND_SHORT:
		lr_expect(&q, HVP_SUSPEND);
		h = lr_hdr(&q, 0);
		len = sizeof(struct hvp_resume) - 1;
		break;
	case DL_EXPORT_NOFD: case DL_EXPORT_TWOFDS:
		lr_expect(&q, HVP_DOM_EXPORT);
		h = lr_hdr(&q, 0);
		h.arg[0] = LR_PAGES;
		if (lie == DL_EXPORT_TWOFDS) {
			fds[0] = lr_memfd(LR_PAGES * PV_PAGE_SIZE, true);
			fds[1] = lr_memfd(LR_PAGES * PV_PAGE_SIZE, true);
			nfds = 2;
		}
		break;
	case DL_WAIT_CLOSE:
		/* A late reply that never comes: the daemon goes away. */
		lr_expect(&q, HVP_DOM_WAIT);
		usleep(100 * 1000);
		return 0;
	case DL_CREATE_FDS:     /* fds on a reply that takes none */
		lr_expect(&q, HVP_DOM_CREATE);
		h = lr_hdr(&q, 0);
		h.arg[0] = 42;
		fds[0] = lr_memfd(PV_PAGE_SIZE, true);
		fds[1] = lr_memfd(PV_PAGE_SIZE, true);
		nfds = 2;
		break;
	case DL_DESTROY_CUT: case DL_DESTROY_OVERSIZE:
		/* A call that reads nothing but the header's ret. */
		lr_expect(&q, HVP_DOM_DESTROY);
		h = lr_hdr(&q, 0);
		if (lie == DL_DESTROY_CUT) {   /* magic, version, op, seq, count: no ret */
			lr_send(&h, offsetof(struct hvp_hdr, ret), NULL, 0);
			return lr_end();
		}
		len = HVP_MAX_MSG + 4096 - sizeof(h);   /* truncated on receipt */
		break;
	default:
		return 1;
	}
	switch (lie) {
	case DL_INFO_SHORT:  len--; break;
	case DL_INFO_LONG:   len++; break;
	case DL_WRONG_OP:    h.op = HVP_DOM_LIST; break;
	case DL_WRONG_SEQ:   h.seq++; break;
	case DL_CUT_HEADER:  lr_send(&h, sizeof(h) - 4, NULL, 0); return lr_end();
	case DL_CUT_PAYLOAD: len /= 2; break;
	case DL_OVERSIZE:    len = HVP_MAX_MSG + 1 - sizeof(h); break;
	case DL_CLOSE:       return 0;
	case DL_EMPTY:       lr_send(&h, 0, NULL, 0); return lr_end();
	case DL_DUP_REPLY:
		/* The right reply, twice: the copy is stale for the next call. */
		lr_reply(h, pay, len, NULL, 0);
		lr_expect(&q, HVP_DOM_INFO);
		CHECK_EQ(q.h.arg[0], 2);
		break;
	}
	lr_reply(h, pay, len, fds, nfds);
	lr_close_all(fds, nfds);
	return lr_end();
}

static void test_dom_lies(void **state)
{
	static const struct { int lie; const char *name; int want; } lies[] = {
		{ DL_INFO_SHORT,    "info: a byte short", -EPROTO },
		{ DL_INFO_LONG,     "info: a byte long", -EPROTO },
		{ DL_CUT_PAYLOAD,   "info: cut in the middle", -EPROTO },
		{ DL_CUT_HEADER,    "info: header cut", -EPROTO },
		{ DL_WRONG_OP,      "info: answered as a list", -EPROTO },
		{ DL_WRONG_SEQ,     "info: another request's seq", -EPROTO },
		{ DL_OVERSIZE,      "info: reply over HVP_MAX_MSG", -EPROTO },
		{ DL_CLOSE,         "info: socket closed mid-call", -ECONNRESET },
		{ DL_EMPTY,         "info: empty message", -ECONNRESET },
		{ DL_LIST_COUNT,    "list: more than HVP_MAX_LIST", -EPROTO },
		{ DL_LIST_LEN,      "list: fewer entries than counted", -EPROTO },
		{ DL_SOCK_NONUL,    "socket: path not terminated", -EPROTO },
		{ DL_SOCK_EMPTY,    "socket: empty path", -EPROTO },
		{ DL_SOCK_LONG,     "socket: path longer than the buffer", -ENAMETOOLONG },
		{ DL_SUSPEND_SHORT, "suspend: resume info a byte short", -EPROTO },
		{ DL_EXPORT_NOFD,   "export: no memfd", -EPROTO },
		{ DL_EXPORT_TWOFDS, "export: two memfds", -EPROTO },
		{ DL_WAIT_CLOSE,    "wait: daemon gone before the late reply", -ECONNRESET },
		{ DL_CREATE_FDS,    "create: fds nobody asked for", 0 },
		{ DL_DESTROY_CUT,   "destroy: header cut before ret", -EPROTO },
		{ DL_DESTROY_OVERSIZE, "destroy: reply 4 KiB over HVP_MAX_MSG", -EPROTO },
	};

	for (size_t i = 0; i < PV_ARRAY_SIZE(lies); i++) {
		const char *name = lies[i].name;
		struct pv_domain_info di[2];
		struct pv_resume_info ri;
		struct { char path[64]; char canary[16]; } buf;
		struct pv_domain_config cfg = { .name = "x" };
		struct pv_hv *hv;
		uint32_t pages = 0, domid = 0;
		int fd = -1, r = 1;

		memset(&buf, 0x5a, sizeof(buf));
		liar_start(sc_dom, lies[i].lie);
		hv = pv_hv_open(L.sock);
		LIE_TRUE(name, hv != NULL);
		switch (lies[i].lie) {
		case DL_LIST_COUNT: case DL_LIST_LEN:
			r = pv_hv_domain_list(hv, di, 2);
			break;
		case DL_SOCK_NONUL: case DL_SOCK_EMPTY: case DL_SOCK_LONG:
			r = pv_hv_domain_socket(hv, 1, buf.path, sizeof(buf.path));
			break;
		case DL_SUSPEND_SHORT:
			r = pv_hv_suspend(hv, &ri);
			break;
		case DL_EXPORT_NOFD: case DL_EXPORT_TWOFDS:
			r = pv_hv_domain_export(hv, 1, &fd, &pages);
			LIE_EQ(name, fd, -1);
			break;
		case DL_WAIT_CLOSE:
			r = pv_hv_domain_wait(hv, 1, 1u << PV_DOM_SHUTDOWN, -1);
			break;
		case DL_CREATE_FDS:
			r = pv_hv_domain_create(hv, &cfg, &domid);
			LIE_EQ(name, domid, 42);
			break;
		case DL_DESTROY_CUT: case DL_DESTROY_OVERSIZE:
			r = pv_hv_domain_destroy(hv, 1);
			break;
		case DL_DUP_REPLY:
			LIE_EQ(name, pv_hv_domain_info(hv, 1, di), 0);
			LIE_EQ(name, di[0].domid, 1);
			r = pv_hv_domain_info(hv, 2, di);
			break;
		default:
			r = pv_hv_domain_info(hv, 1, di);
			break;
		}
		LIE_EQ(name, r, lies[i].want);
		for (size_t k = 0; k < sizeof(buf.canary); k++)
			LIE_EQ(name, buf.canary[k], 0x5a);
		if (lies[i].lie == DL_CLOSE || lies[i].lie == DL_WAIT_CLOSE)  /* and stays so */
			LIE_EQ(name, pv_hv_domain_info(hv, 1, di), -ECONNRESET);
		pv_hv_close(hv);
		liar_finish(name);
	}
}

/* ======================================================================
 * Client bugs found with this fake daemon, fixed
 * ====================================================================== */

/* A reply's ret is not checked to be a plausible -errno: INT32_MIN reaches
 * `errno = -r` in pv_hv_open (hv.c), a signed overflow (UBSan stops there);
 * -100000 becomes errno 100000. */
static void test_bug_ret_not_errno(void **state)
{
	static const int lies[] = { HL_RET_INT_MIN, HL_RET_NOT_ERRNO };

	for (size_t i = 0; i < PV_ARRAY_SIZE(lies); i++) {
		liar_start(sc_hello, lies[i]);
		errno = 0;
		LIE_TRUE("ret not an errno", pv_hv_open(L.sock) == NULL);
		LIE_EQ("ret not an errno", errno, EPROTO);
		liar_finish("ret not an errno");
	}
}

/* Doorbells the daemon made blocking: pv_evtchn_notify() writes a zero,
 * which never blocks, and pending() never reads one (a bare read on a
 * blocking file would block for ever). */
static int blocking_client(void *arg)
{
	struct pv_evtchn *ec = pv_evtchn_open(L.sock);
	int r;

	alarm(3);
	CHECK(ec);
	r = pv_evtchn_bind_unbound_port(ec, 3);
	if (r == EC_PORT) {   /* accepted: then it must not block */
		CHECK_EQ(pv_evtchn_notify(ec, EC_PORT), 0);
		CHECK_EQ(pv_evtchn_pending(ec), EC_PORT);   /* the first event */
		CHECK_EQ(pv_evtchn_unmask(ec, EC_PORT), 0);
		CHECK_EQ(pv_evtchn_pending(ec), -EAGAIN);   /* nothing more */
	} else {
		CHECK_EQ(r, -EPROTO);
	}
	pv_evtchn_close(ec);
	return 0;
}

static void test_bug_blocking_bells(void **state)
{
	liar_start(sc_ec, EL_BLOCKING);
	LIE_EQ("blocking doorbells", hvt_wait(hvt_fork(blocking_client, NULL)), 0);
	liar_finish("blocking doorbells");
}

/* Sizes are checked once (fstat) on memfds that nobody sealed: the daemon,
 * or anyone it gave the fd, can shrink the file afterwards and the client
 * faults (SIGBUS) on its own mapping. */
static void test_bug_unsealed_memory(void **state)
{
	struct pv_hv *hv;
	size_t n = 0;
	void *p;

	liar_start(sc_mem, ML_UNSEALED);
	hv = pv_hv_open(L.sock);
	assert_non_null(hv);
	p = pv_hv_map_own_memory(hv, NULL, &n);
	if (p)
		munmap(p, n * PV_PAGE_SIZE);
	pv_hv_close(hv);
	liar_finish("unsealed memfd");
	LIE_TRUE("unsealed memfd", p == NULL);
}

/* pv_evtchn_open sets c.consume but no `apply`, and hvc_sync() returns at
 * once without one: an event-channel handle never consumes its notices. */
static void test_bug_evtchn_notices(void **state)
{
	struct pv_evtchn *ec;

	liar_start(sc_ec, EL_NOTICES);
	ec = pv_evtchn_open(L.sock);
	assert_non_null(ec);
	assert_int_equal(pv_evtchn_bind_unbound_port(ec, 3), EC_PORT);
	pv_evtchn_close(ec);
	liar_finish("evtchn notices consumed");
}

/* pv_gntshr_open's failure path returns whatever errno was before the call
 * when the reply says the table has only reserved entries. */
static void test_bug_gntshr_stale_errno(void **state)
{
	struct pv_hv *hv;

	liar_start(sc_gt, GL_FEW);
	hv = pv_hv_open(L.sock);
	assert_non_null(hv);
	errno = EINTR;
	LIE_TRUE("reserved entries only", pv_gntshr_open(hv) == NULL);
	LIE_EQ("reserved entries only", errno, EPROTO);
	pv_hv_close(hv);
	liar_finish("reserved entries only");
}

/* pv_evtchn_status returns the reply's status unchecked: a "status" that
 * reads as -EAGAIN. */
static void test_bug_evtchn_status(void **state)
{
	struct pv_evtchn *ec;

	liar_start(sc_ec, EL_STATUS_BOGUS);
	ec = pv_evtchn_open(L.sock);
	assert_non_null(ec);
	LIE_EQ("status out of range", pv_evtchn_status(ec, 1), -EPROTO);
	pv_evtchn_close(ec);
	liar_finish("status out of range");
}

/* pv_gntshr_open allocates per-entry arrays for the announced size before
 * checking the memfd covers it: nr = 2^32-1 asks for 20 GiB first (ENOMEM
 * instead of EPROTO; under ASan, whose allocator does not return NULL, an
 * abort). Checked in a child under RLIMIT_AS, so plain builds only. */
static int huge_gt_client(void *arg)
{
	struct rlimit rl = { 1u << 30, 1u << 30 };
	struct pv_hv *hv;

	CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
	hv = pv_hv_open(L.sock);
	CHECK(hv);
	errno = 0;
	CHECK(pv_gntshr_open(hv) == NULL);
	CHECK_EQ(errno, EPROTO);
	pv_hv_close(hv);
	return 0;
}

static void test_bug_gntshr_huge(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
	skip();
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	skip();
#endif
#endif
	liar_start(sc_gt, GL_HUGE);
	LIE_EQ("grant table of 2^32-1 entries", hvt_wait(hvt_fork(huge_gt_client, NULL)), 0);
	liar_finish("grant table of 2^32-1 entries");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_hello_honest, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_mem_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_mem_fixed, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_mem_honest, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_gntshr_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_gntshr_honest, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_map_unusable, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_map_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_map_honest, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_map_revoked, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_map_view_again, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_misc_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_evtchn_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_evtchn_more_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_evtchn_honest, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_evtchn_hostile_peer, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_dom_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_attach_lies, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_bug_ret_not_errno, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_bug_blocking_bells, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_bug_unsealed_memory, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_bug_evtchn_notices, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_bug_gntshr_stale_errno, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_bug_evtchn_status, fd_setup, fd_teardown),
		cmocka_unit_test_setup_teardown(test_bug_gntshr_huge, fd_setup, fd_teardown),
	};
	signal(SIGPIPE, SIG_IGN);   /* a daemon that goes mid-call */
	alarm(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
