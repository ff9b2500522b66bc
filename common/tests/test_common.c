/* Unit tests for common/: number parsing, fd passing, the event loop. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <cmocka.h>

#include "common/loop.h"
#include "common/sbuf.h"
#include "common/util.h"

static void test_parse(void **state)
{
	uint32_t v;
	uint64_t w;
	unsigned u;

	assert_int_equal(pv_parse_u32("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(pv_parse_u32("4294967295", &v), 0);
	assert_int_equal(v, 4294967295u);
	assert_int_equal(pv_parse_u32("4294967296", &v), -ERANGE);
	assert_int_equal(pv_parse_u32("", &v), -EINVAL);
	assert_int_equal(pv_parse_u32("-1", &v), -EINVAL);
	assert_int_equal(pv_parse_u32(" 1", &v), -EINVAL);
	assert_int_equal(pv_parse_u32("1x", &v), -EINVAL);
	assert_int_equal(pv_parse_u32("0x10", &v), -EINVAL);
	assert_int_equal(pv_parse_u32(NULL, &v), -EINVAL);
	assert_int_equal(pv_parse_u64("18446744073709551615", UINT64_MAX, &w), 0);
	assert_int_equal(pv_parse_u64("18446744073709551616", UINT64_MAX, &w), -ERANGE);
	assert_int_equal(pv_parse_uint("8", 8, &u), 0);
	assert_int_equal(pv_parse_uint("9", 8, &u), -ERANGE);
}

static void test_fd_passing(void **state)
{
	int sv[2], p[2], fds[4], got_fd;
	unsigned n = 4;
	char buf[8];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pv_send_fds(sv[0], "hi", 2, &p[1], 1), 2);
	assert_int_equal(pv_recv_fds(sv[1], buf, sizeof(buf), fds, &n), 2);
	assert_int_equal(n, 1);
	got_fd = fds[0];
	assert_int_equal(write(got_fd, "x", 1), 1);
	assert_int_equal(read(p[0], buf, 1), 1);
	assert_int_equal(buf[0], 'x');
	/* No room for fds: they are closed, the data still arrives. */
	n = 0;
	assert_int_equal(pv_send_fds(sv[0], "yo", 2, &p[1], 1), 2);
	assert_int_equal(pv_recv_fds(sv[1], buf, sizeof(buf), NULL, &n), 2);
	assert_int_equal(n, 0);
	close(got_fd);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

struct loop_ctx {
	int hits;
	int timer_hits;
	int other_fd;
};

static void on_read(struct pv_loop *loop, int fd, uint32_t ev, void *arg)
{
	struct loop_ctx *c = arg;
	char b;
	assert_int_equal(read(fd, &b, 1), 1);
	c->hits++;
	/* Deleting another watch whose event may be pending must be safe. */
	if (c->other_fd >= 0) {
		pv_loop_del_fd(loop, c->other_fd);
		c->other_fd = -1;
	}
}

static void on_timer(struct pv_loop *loop, void *arg)
{
	struct loop_ctx *c = arg;
	c->timer_hits++;
	pv_loop_stop(loop);
}

static void test_loop(void **state)
{
	struct pv_loop *loop = pv_loop_new();
	struct loop_ctx c = { .other_fd = -1 };
	int a[2], b[2];
	int64_t t;

	assert_non_null(loop);
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	assert_int_equal(pv_loop_add_fd(loop, a[0], 1 /* EPOLLIN */, on_read, &c), 0);
	assert_int_equal(pv_loop_add_fd(loop, b[0], 1, on_read, &c), 0);
	assert_int_equal(pv_loop_add_fd(loop, b[0], 1, on_read, &c), -EEXIST);
	c.other_fd = b[0];
	assert_int_equal(write(a[1], "1", 1), 1);
	assert_int_equal(write(b[1], "1", 1), 1);
	assert_int_equal(pv_loop_run_once(loop, 100), 0);
	/* Exactly one of the two fired; the other was deleted first. */
	assert_int_equal(c.hits, 1);
	t = pv_loop_add_timer(loop, 1000000, on_timer, &c);
	assert_true(t > 0);
	pv_loop_cancel_timer(loop, pv_loop_add_timer(loop, 0, on_timer, &c));
	assert_int_equal(pv_loop_run(loop), 0);
	assert_int_equal(c.timer_hits, 1);
	assert_int_equal(pv_loop_del_fd(loop, 12345), -ENOENT);
	pv_loop_free(loop);
	close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}

static void on_tag(struct pv_loop *loop, int fd, uint32_t ev, void *arg)
{
	int *seen = arg;
	(void)loop; (void)ev;
	*seen = fd;
}

/* A tag watch: fds registered by someone else fire its callback with its id. */
static void test_loop_tag(void **state)
{
	struct pv_loop *loop = pv_loop_new();
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int p[2], id = 0, id2 = 0, epfd = -1, seen = 0;
	uint64_t tag = 0, tag2 = 0;

	assert_non_null(loop);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pv_loop_add_tag(loop, on_tag, &seen, &id, &epfd, &tag), 0);
	assert_int_equal(pv_loop_add_tag(loop, on_tag, &seen, &id2, &epfd, &tag2), 0);
	assert_true(id < -1 && id2 < -1 && id != id2 && tag != tag2 && epfd >= 0);
	ev.data.u64 = tag2;
	assert_int_equal(epoll_ctl(epfd, EPOLL_CTL_ADD, p[0], &ev), 0);
	assert_int_equal(write(p[1], "1", 1), 1);
	assert_int_equal(pv_loop_run_once(loop, 1000), 0);
	assert_int_equal(seen, id2);
	/* Edge-triggered: once per write. */
	seen = 0;
	assert_int_equal(pv_loop_run_once(loop, 50), 0);
	assert_int_equal(seen, 0);
	assert_int_equal(epoll_ctl(epfd, EPOLL_CTL_DEL, p[0], NULL), 0);
	assert_int_equal(pv_loop_del_fd(loop, id2), 0);
	assert_int_equal(pv_loop_del_fd(loop, id2), -ENOENT);
	pv_loop_free(loop);   /* frees the other tag watch */
	close(p[0]);
	close(p[1]);
}

static void test_sbuf(void **state)
{
	struct pv_sbuf b = { 0 };
	char small[8];
	(void)state;

	/* Growing: long text, then JSON escaping. */
	for (int i = 0; i < 1000; i++)
		pv_sbuf_printf(&b, "%03d,", i % 1000);
	assert_int_equal(b.n, 4000);
	assert_false(b.oom);
	assert_memory_equal(b.p + 3996, "999,", 5);
	b.n = 0;
	pv_sbuf_json_str(&b, "a\"b\\c\n\x7f\xc3");
	assert_string_equal(b.p, "\"a\\\"b\\\\c\\u000a\\u007f\\u00c3\"");
	pv_sbuf_free(&b);
	assert_null(b.p);

	/* Bounded: never overflows, truncates, says so, stays terminated. */
	memset(small, 'x', sizeof(small));
	pv_sbuf_fixed(&b, small, 6);
	pv_sbuf_printf(&b, "%s", "abc");
	assert_false(b.oom);
	pv_sbuf_printf(&b, "%s", "defgh");
	assert_true(b.oom);
	assert_int_equal(b.n, 5);
	assert_string_equal(small, "abcde");
	assert_int_equal(small[6], 'x');
	pv_sbuf_printf(&b, "more");
	assert_string_equal(small, "abcde");
}

/* pv_pin_thread_index: index mod the allowed CPUs, in order; with one CPU
 * allowed, every index gets it. Run in threads so the test's own mask stays.
 * `narrow`: the process (its main thread) is narrowed to it between the two
 * pins, as `taskset -p` does. */
struct pin_case { unsigned index, again; const cpu_set_t *narrow; int got; cpu_set_t after; };

static void *pin_thread(void *arg)
{
	struct pin_case *c = arg;

	c->got = pv_pin_thread_index(c->index);
	if (c->narrow)
		(void)sched_setaffinity(getpid(), sizeof(*c->narrow), c->narrow);
	if (c->again != c->index || c->narrow) /* pinned already: pinned again elsewhere */
		c->got = pv_pin_thread_index(c->again);
	CPU_ZERO(&c->after);
	(void)sched_getaffinity(0, sizeof(c->after), &c->after);
	return NULL;
}

static void pin_run(struct pin_case *c)
{
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, pin_thread, c), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
}

static void test_pin_thread(void **state)
{
	cpu_set_t all, one;
	int cpus[CPU_SETSIZE], n = 0;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all))
			cpus[n++] = c;
	assert_true(n >= 1);
	for (unsigned i = 0; i < (unsigned)n * 2 + 1; i++) {
		struct pin_case c = { .index = i, .again = i };

		pin_run(&c);
		assert_int_equal(c.got, cpus[i % (unsigned)n]);
		assert_int_equal(CPU_COUNT(&c.after), 1);
		assert_true(CPU_ISSET(c.got, &c.after));
		c = (struct pin_case){ .index = i, .again = i + 1 };
		pin_run(&c);
		assert_int_equal(c.got, cpus[(i + 1) % (unsigned)n]);
		assert_int_equal(CPU_COUNT(&c.after), 1);
		assert_true(CPU_ISSET(c.got, &c.after));
	}
	/* Only one CPU allowed (the last one): every index gets it. */
	CPU_ZERO(&one);
	CPU_SET(cpus[n - 1], &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	for (unsigned i = 0; i < 3; i++) {
		struct pin_case c = { .index = i, .again = i };

		pin_run(&c);
		assert_int_equal(c.got, cpus[n - 1]);
		assert_int_equal(CPU_COUNT(&c.after), 1);
		assert_true(CPU_ISSET(cpus[n - 1], &c.after));
	}
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
	/* A thread pinned to the first CPU, then the process narrowed to the
	 * last: pinned again, the thread moves there. */
	{
		struct pin_case c = { .index = 0, .again = 0, .narrow = &one };

		pin_run(&c);
		assert_int_equal(c.got, cpus[n - 1]);
		assert_int_equal(CPU_COUNT(&c.after), 1);
		assert_true(CPU_ISSET(cpus[n - 1], &c.after));
	}
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
}

/* Out of fds, a connection is shed (accepted and closed), not left pending
 * for a level-triggered listener to spin on. */
static void test_accept_shed(void **state)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct rlimit old, low;
	struct pollfd p;
	int l, c, fill[64], nfill = 0, r;
	(void)state;

	snprintf(a.sun_path, sizeof(a.sun_path), "/tmp/pvnet-accept-%d", (int)getpid());
	unlink(a.sun_path);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 4), 0);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	/* A first accept takes the reserve; then fill the table. */
	r = pv_accept(l, SOCK_CLOEXEC);
	assert_true(r >= 0);
	close(r);
	close(c);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)c + 8;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nfill < 64 && (fill[nfill] = dup(0)) >= 0)
		nfill++;
	assert_true(nfill < 64);
	assert_int_equal(pv_accept(l, SOCK_CLOEXEC), -EMFILE);
	p = (struct pollfd){ .fd = l, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 0);   /* nothing left pending */
	while (nfill)
		close(fill[--nfill]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	close(c);
	close(l);
	unlink(a.sun_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_loop_tag),
		cmocka_unit_test(test_sbuf),
		cmocka_unit_test(test_accept_shed),
		cmocka_unit_test(test_pin_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
