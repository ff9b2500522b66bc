/*
 * Unit tests of the protocol engine (core.c) without sockets: framing and
 * reassembly, the dispatch checks, error replies, throttling of clients
 * that do not read, bounded watch events, domains and transactions ids.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/xen.h"
#include "xenstored/core.h"

static struct xsd_conn *released[8];
static unsigned nreleased, introduced_dom;

static int on_new(void *arg, unsigned domid)
{
	(void)arg;
	introduced_dom = domid;
	return 0;
}

static void on_gone(void *arg, unsigned domid)
{
	struct xsd_conn **c = arg;

	for (unsigned i = 0; i < 4; i++) {
		if (c[i] && xsd_conn_domid(c[i]) == domid && xsd_conn_dead(c[i])) {
			released[nreleased++] = c[i];
			xsd_conn_free(c[i]);
			c[i] = NULL;
		}
	}
}

static const struct xsd_core_ops ops = { .domain_new = on_new, .domain_gone = on_gone };

struct fix {
	struct xsd_core *core;
	struct xsd_conn *c[4];   /* c[0] dom0, c[1] dom0, c[2] domain 5 */
};

static int setup(void **state)
{
	struct xsd_config cfg = XSD_CONFIG_DEFAULT;
	struct fix *f = calloc(1, sizeof(*f));

	pv_log_set_level(PV_LOG_ERR);
	cfg.watch_events = 50;
	f->core = xsd_core_new(&cfg, &ops, f->c);
	f->c[0] = xsd_conn_new(f->core, 0, true);
	f->c[1] = xsd_conn_new(f->core, 0, true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	assert_int_equal(xsd_store_check(xsd_core_store(f->core)), 0);
	for (int i = 0; i < 4; i++)
		xsd_conn_free(f->c[i]);
	xsd_core_free(f->core);
	free(f);
	assert_int_equal(xsd_node_live_count(), 0);
	return 0;
}

static size_t msg(uint8_t *buf, uint32_t type, uint32_t req, uint32_t tx, const char *p, size_t len)
{
	struct xsd_sockmsg h = { type, req, tx, (uint32_t)len };

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), p, len);
	return sizeof(h) + len;
}

static long sendm(struct xsd_conn *c, uint32_t type, uint32_t tx, const char *p, size_t len)
{
	static uint32_t req = 1000;
	uint8_t buf[sizeof(struct xsd_sockmsg) + 5000];
	size_t n = msg(buf, type, ++req, tx, p, len);

	return xsd_conn_input(c, buf, n);
}

/* Pop the next output message; payload copied NUL-terminated into p. */
static bool next(struct xsd_conn *c, struct xsd_sockmsg *h, char *p)
{
	struct iovec iov[1];
	uint8_t *b;

	if (xsd_conn_output(c, iov, 1) != 1)
		return false;
	b = iov[0].iov_base;
	memcpy(h, b, sizeof(*h));
	memcpy(p, b + sizeof(*h), h->len);
	p[h->len] = '\0';
	xsd_conn_sent(c, iov[0].iov_len);
	return true;
}

/* Send one request and return the reply's payload ("E:<name>" for errors),
 * skipping watch events. */
static const char *call(struct xsd_conn *c, uint32_t type, uint32_t tx, const char *p, size_t len)
{
	static char out[5000], res[5010];
	struct xsd_sockmsg h;

	assert_true(sendm(c, type, tx, p, len) >= 0);
	while (next(c, &h, out)) {
		if (h.type == XS_WATCH_EVENT)
			continue;
		snprintf(res, sizeof(res), "%s%s", h.type == XS_ERROR ? "E:" : "", out);
		return res;
	}
	return "(none)";
}

#define CALL(c, type, s) call((c), (type), 0, (s), sizeof(s))

static void test_framing(void **state)
{
	struct fix *f = *state;
	uint8_t buf[256];
	struct xsd_sockmsg h;
	char out[5000];
	size_t n = msg(buf, XS_WRITE, 7, 0, "/x\0hello", 8);

	/* One byte at a time: reassembled, one reply echoing req_id/tx_id. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(xsd_conn_input(f->c[0], buf + i, 1), 1);
	assert_true(next(f->c[0], &h, out));
	assert_int_equal(h.type, XS_WRITE);
	assert_int_equal(h.req_id, 7);
	assert_string_equal(out, "OK");
	assert_false(next(f->c[0], &h, out));
	/* Pipelined: two requests in one buffer, replies in order. */
	n = msg(buf, XS_READ, 8, 0, "/x", 3);
	n += msg(buf + n, XS_GET_PERMS, 9, 0, "/x", 3);
	assert_int_equal(xsd_conn_input(f->c[0], buf, n), (long)n);
	assert_true(next(f->c[0], &h, out));
	assert_int_equal(h.req_id, 8);
	assert_int_equal(h.len, 5);
	assert_true(next(f->c[0], &h, out));
	assert_int_equal(h.req_id, 9);
	assert_string_equal(out, "n0");
}

static char big_payload[8192];

static void test_bad_input(void **state)
{
	struct fix *f = *state;
	struct xsd_sockmsg h = { XS_WRITE, 1, 0, XENSTORE_PAYLOAD_MAX + 1 };

	assert_string_equal(call(f->c[0], XS_READ, 0, "/x", 2), "E:EINVAL");   /* no NUL */
	assert_string_equal(CALL(f->c[0], XS_READ, "/a\0b"), "E:EINVAL");       /* two args */
	assert_string_equal(CALL(f->c[0], XS_READ, "/a//b"), "E:EINVAL");
	assert_string_equal(CALL(f->c[0], XS_READ, "/a\x01"), "E:EINVAL");
	assert_string_equal(call(f->c[0], XS_WRITE, 0, "/nonul", 6), "E:EINVAL");
	assert_string_equal(CALL(f->c[0], XS_SET_PERMS, "/"), "E:EINVAL");
	assert_string_equal(CALL(f->c[0], XS_SET_PERMS, "/\0x5"), "E:EINVAL");
	assert_string_equal(CALL(f->c[0], XS_WATCH, "/\0t\0depth"), "E:EINVAL");
	assert_string_equal(CALL(f->c[0], XS_TRANSACTION_END, "X"), "E:EINVAL");
	assert_string_equal(call(f->c[0], XS_READ, 42, "/", 2), "E:ENOENT");  /* unknown tx */
	assert_string_equal(CALL(f->c[0], XS_WATCH_EVENT, ""), "E:ENOSYS");
	assert_string_equal(CALL(f->c[0], XS_TYPE_COUNT, ""), "E:ENOSYS");
	assert_string_equal(CALL(f->c[0], 20, ""), "E:ENOSYS");               /* RESTRICT */
	assert_string_equal(CALL(f->c[0], 0xffff, ""), "E:ENOSYS");
	assert_string_equal(CALL(f->c[0], XS_CONTROL, "nope"), "E:EINVAL");
	assert_string_equal(CALL(f->c[0], XS_INTRODUCE, "5\0" "0\0" "0"), "E:EINVAL");
	assert_string_equal(CALL(f->c[0], XS_RELEASE, "0"), "E:EINVAL");
	assert_string_equal(CALL(f->c[0], XS_RELEASE, "9"), "E:ENOENT");
	/* A reply over 4096 bytes is E2BIG. */
	{
		char name[64];
		for (int i = 0; i < 200; i++) {
			snprintf(name, sizeof(name), "/big/child-with-a-long-name-%03d", i);
			assert_string_equal(call(f->c[0], XS_WRITE, 0, name, strlen(name) + 1), "OK");
		}
		assert_string_equal(CALL(f->c[0], XS_DIRECTORY, "/big"), "E:E2BIG");
		assert_string_equal(CALL(f->c[0], XS_DIRECTORY_PART, "/big\0" "0"), "202");
	}
	/* The connection still works; an oversized payload drops it. */
	assert_string_equal(CALL(f->c[0], XS_READ, "/"), "");
	assert_int_equal(xsd_conn_input(f->c[0], &h, sizeof(h)), -EPROTO);
	/* A caller that keeps feeding it gets -EPROTO again, nothing is read. */
	assert_int_equal(xsd_conn_input(f->c[0], big_payload, sizeof(big_payload)), -EPROTO);
	assert_int_equal(xsd_conn_input(f->c[0], &h, 1), -EPROTO);
}

static void test_throttle(void **state)
{
	struct fix *f = *state;
	uint8_t buf[30 * 32];
	size_t n = 0;
	struct xsd_sockmsg h;
	char out[5000];
	long used;
	int replies = 0;

	for (int i = 0; i < 30; i++)
		n += msg(buf + n, XS_READ, (uint32_t)i, 0, "/", 2);
	/* 20 outstanding replies: the rest is not consumed. */
	used = xsd_conn_input(f->c[0], buf, n);
	assert_int_equal(used, 20 * 18);
	assert_true(xsd_conn_throttled(f->c[0]));
	assert_int_equal(xsd_conn_input(f->c[0], buf + used, n - (size_t)used), 0);
	while (next(f->c[0], &h, out))
		replies++;
	assert_int_equal(replies, 20);
	assert_false(xsd_conn_throttled(f->c[0]));
	assert_int_equal(xsd_conn_input(f->c[0], buf + used, n - (size_t)used), (long)(n - (size_t)used));
}

static void test_watch_events_bounded(void **state)
{
	struct fix *f = *state;
	struct xsd_sockmsg h;
	char out[5000];
	int events = 0;

	assert_string_equal(CALL(f->c[1], XS_WATCH, "/w\0tok"), "OK");
	/* c[1] never reads: its events stop at the limit (50). */
	for (int i = 0; i < 500; i++)
		assert_string_equal(CALL(f->c[0], XS_WRITE, "/w/x\0v"), "OK");
	assert_true(xsd_conn_dropped(f->c[1]) > 400);
	while (next(f->c[1], &h, out))
		events++;
	assert_true(events <= 51);
	/* Once drained, events flow again. */
	assert_string_equal(CALL(f->c[0], XS_WRITE, "/w/y\0v"), "OK");
	assert_true(next(f->c[1], &h, out));
	assert_int_equal(h.type, XS_WATCH_EVENT);
	assert_int_equal(h.req_id, 0);
	assert_memory_equal(out, "/w/y\0tok", 9);
}

/* An event longer than a message (deep path + long token) is dropped, not
 * sent: every client takes one for a broken stream. */
static void test_watch_event_too_long(void **state)
{
	struct fix *f = *state;
	struct xsd_sockmsg h;
	static char req[4100], path[2100], out[5000];
	size_t tl = 4000, pl;

	memcpy(req, "/", 2);
	memset(req + 2, 't', tl);
	req[2 + tl] = '\0';
	assert_true(sendm(f->c[1], XS_WATCH, 0, req, 2 + tl + 1) >= 0);
	assert_true(next(f->c[1], &h, out));     /* the reply */
	assert_int_equal(h.type, XS_WATCH);
	assert_true(next(f->c[1], &h, out));     /* the first firing: "/" fits */
	assert_int_equal(h.type, XS_WATCH_EVENT);
	assert_true(h.len <= XENSTORE_PAYLOAD_MAX);
	path[0] = '/';
	memset(path + 1, 'p', 2000);
	pl = 2001;
	path[pl] = '\0';
	memcpy(req, path, pl + 1);
	memcpy(req + pl + 1, "v", 1);
	assert_true(sendm(f->c[0], XS_WRITE, 0, req, pl + 2) >= 0);
	while (next(f->c[1], &h, out))
		assert_true(h.len <= XENSTORE_PAYLOAD_MAX);
	/* A shorter one still goes out. */
	assert_string_equal(CALL(f->c[0], XS_WRITE, "/short\0v"), "OK");
	assert_true(next(f->c[1], &h, out));
	assert_int_equal(h.type, XS_WATCH_EVENT);
	assert_memory_equal(out, "/short", 7);
}

static void test_domains(void **state)
{
	struct fix *f = *state;
	struct xsd_sockmsg h;
	char out[5000];

	assert_string_equal(CALL(f->c[1], XS_WATCH, "@introduceDomain\0i"), "OK");
	assert_string_equal(CALL(f->c[1], XS_WATCH, "@releaseDomain\0r"), "OK");
	while (next(f->c[1], &h, out))
		;
	assert_string_equal(CALL(f->c[0], XS_IS_DOMAIN_INTRODUCED, "5"), "F");
	assert_string_equal(CALL(f->c[0], XS_INTRODUCE, "5\0" "123\0" "4"), "OK");
	assert_int_equal(introduced_dom, 5);
	assert_true(next(f->c[1], &h, out));
	assert_string_equal(out, "@introduceDomain");
	assert_string_equal(CALL(f->c[0], XS_IS_DOMAIN_INTRODUCED, "5"), "T");
	assert_string_equal(CALL(f->c[0], XS_IS_DOMAIN_INTRODUCED, "32752"), "T");
	assert_string_equal(CALL(f->c[0], XS_GET_DOMAIN_PATH, "5"), "/local/domain/5");
	assert_string_equal(CALL(f->c[0], XS_MKDIR, "/local/domain/5"), "OK");
	assert_string_equal(CALL(f->c[0], XS_SET_PERMS, "/local/domain/5\0n5"), "OK");

	/* Connections per unprivileged domain are limited. */
	{
		struct xsd_conn *extra[64];
		int n = 0;
		while (n < 64 && (extra[n] = xsd_conn_new(f->core, 5, false)))
			n++;
		assert_int_equal(n, 64);
		assert_null(xsd_conn_new(f->core, 5, false));
		assert_int_equal(errno, EMFILE);
		while (n--)
			xsd_conn_free(extra[n]);
	}
	f->c[2] = xsd_conn_new(f->core, 5, false);
	assert_string_equal(CALL(f->c[2], XS_WRITE, "rel\0v"), "OK");
	assert_string_equal(CALL(f->c[0], XS_READ, "/local/domain/5/rel"), "v");
	assert_string_equal(CALL(f->c[2], XS_READ, "/local"), "E:EACCES");
	assert_string_equal(CALL(f->c[2], XS_INTRODUCE, "6\0" "0\0" "1"), "E:EACCES");
	assert_string_equal(CALL(f->c[2], XS_IS_DOMAIN_INTRODUCED, "5"), "E:EACCES");
	assert_string_equal(CALL(f->c[2], XS_CONTROL, "help"), "E:EACCES");
	/* SET_TARGET: domain 6 (a device model) acts for domain 5. */
	assert_string_equal(CALL(f->c[0], XS_INTRODUCE, "6\0" "0\0" "1"), "OK");
	while (next(f->c[1], &h, out))   /* its @introduceDomain */
		;
	f->c[3] = xsd_conn_new(f->core, 6, false);
	assert_string_equal(CALL(f->c[3], XS_READ, "/local/domain/5/rel"), "E:EACCES");
	assert_string_equal(CALL(f->c[0], XS_SET_TARGET, "6\0" "9"), "E:ENOENT");
	assert_string_equal(CALL(f->c[0], XS_SET_TARGET, "6\0" "5"), "OK");
	assert_string_equal(CALL(f->c[3], XS_READ, "/local/domain/5/rel"), "v");
	assert_string_equal(CALL(f->c[3], XS_WRITE, "/local/domain/5/dm\0x"), "OK");
	assert_string_equal(CALL(f->c[2], XS_WATCH, "w\0t"), "OK");
	assert_true(next(f->c[2], &h, out) || true);
	/* Re-introduce: state dropped, connection kept, no event. */
	assert_string_equal(CALL(f->c[0], XS_INTRODUCE, "5\0" "123\0" "4"), "OK");
	assert_false(next(f->c[1], &h, out));
	assert_string_equal(CALL(f->c[2], XS_UNWATCH, "w\0t"), "E:ENOENT");
	/* Release: connection dead and freed, nodes gone, event fired. */
	nreleased = 0;
	assert_string_equal(CALL(f->c[0], XS_RELEASE, "5"), "OK");
	assert_int_equal(nreleased, 1);
	assert_null(f->c[2]);
	assert_string_equal(CALL(f->c[0], XS_READ, "/local/domain/5"), "E:ENOENT");
	assert_true(next(f->c[1], &h, out));
	assert_string_equal(out, "@releaseDomain");
	assert_string_equal(CALL(f->c[0], XS_IS_DOMAIN_INTRODUCED, "5"), "F");
	assert_string_equal(CALL(f->c[0], XS_RESUME, "5"), "E:ENOENT");
}

static void test_transaction_ids(void **state)
{
	struct fix *f = *state;
	char id1[16], id2[16];

	snprintf(id1, sizeof(id1), "%s", CALL(f->c[0], XS_TRANSACTION_START, ""));
	snprintf(id2, sizeof(id2), "%s", CALL(f->c[0], XS_TRANSACTION_START, ""));
	assert_string_equal(id1, "1");
	assert_string_equal(id2, "2");
	assert_string_equal(call(f->c[0], XS_TRANSACTION_START, 1, "", 1), "E:EBUSY");
	assert_string_equal(call(f->c[0], XS_WRITE, 1, "/tx\0a", 5), "OK");
	assert_string_equal(CALL(f->c[0], XS_READ, "/tx"), "E:ENOENT");
	/* WATCH ignores tx_id. */
	assert_string_equal(call(f->c[0], XS_WATCH, 99, "/tx\0t", 6), "OK");
	assert_string_equal(call(f->c[0], XS_TRANSACTION_END, 1, "T", 2), "OK");
	assert_string_equal(CALL(f->c[0], XS_READ, "/tx"), "a");
	assert_string_equal(call(f->c[0], XS_READ, 1, "/tx", 4), "E:ENOENT");
	assert_string_equal(CALL(f->c[0], XS_TRANSACTION_END, "T"), "E:ENOENT");
	/* RESET_WATCHES also ends transactions. */
	assert_string_equal(CALL(f->c[0], XS_RESET_WATCHES, ""), "OK");
	assert_string_equal(call(f->c[0], XS_READ, 2, "/tx", 4), "E:ENOENT");
	assert_string_equal(CALL(f->c[0], XS_UNWATCH, "/tx\0t"), "E:ENOENT");
	/* Unprivileged: 10 per domain, whatever its connections. */
	assert_string_equal(CALL(f->c[0], XS_INTRODUCE, "7\0" "0\0" "1"), "OK");
	f->c[3] = xsd_conn_new(f->core, 7, false);
	for (int i = 0; i < 10; i++)
		assert_string_not_equal(CALL(f->c[3], XS_TRANSACTION_START, ""), "E:ENOSPC");
	assert_string_equal(CALL(f->c[3], XS_TRANSACTION_START, ""), "E:ENOSPC");
	assert_string_equal(CALL(f->c[0], XS_CONTROL, "quota\0" "7"),
			    "Domain 7:\nnodes            :        0\nwatches          :        0\n"
			    "transactions     :       10\nconnections      :        1\n");
	assert_string_equal(CALL(f->c[0], XS_CONTROL, "quota\0set\0transactions\0" "11"), "OK");
	assert_string_not_equal(CALL(f->c[3], XS_TRANSACTION_START, ""), "E:ENOSPC");
	{
		struct xsd_conn *b = xsd_conn_new(f->core, 7, false);
		assert_string_equal(CALL(b, XS_TRANSACTION_START, ""), "E:ENOSPC");
		xsd_conn_free(f->c[3]);   /* its transactions go with it */
		f->c[3] = NULL;
		assert_string_not_equal(CALL(b, XS_TRANSACTION_START, ""), "E:ENOSPC");
		xsd_conn_free(b);
	}
	assert_string_equal(CALL(f->c[0], XS_CONTROL, "check"), "OK");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_events_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_event_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transaction_ids, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
