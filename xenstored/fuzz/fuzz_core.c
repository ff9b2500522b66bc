/*
 * libFuzzer target: the message decoder and dispatcher (core.c) with the
 * whole store behind it, driven by arbitrary byte streams on several
 * connections: two privileged (dom0) and one of an introduced, unprivileged
 * domain 5.
 *
 * Input: a sequence of chunks [sel:1][len:1][bytes:len]. sel & 3 picks the
 * connection (3 = domain 5); sel & 4 drains that connection's output before
 * feeding; sel & 8 re-creates the domain's connection. Every output message
 * is checked (length <= 4096, a known type, events with ids 0); at the end
 * the store must pass its consistency check, and after freeing everything
 * no node may be left (leak check).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xen.h"
#include "xenstored/core.h"

#define NCONN 4
#define DOMU 5

static struct xsd_conn *conns[NCONN];
static struct xsd_core *core;

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static int on_new(void *arg, unsigned domid)
{
	(void)arg;
	(void)domid;
	return 0;
}

static void on_gone(void *arg, unsigned domid)
{
	(void)arg;
	for (int i = 0; i < NCONN; i++) {
		if (conns[i] && xsd_conn_domid(conns[i]) == domid && xsd_conn_dead(conns[i])) {
			xsd_conn_free(conns[i]);
			conns[i] = NULL;
		}
	}
}

static const struct xsd_core_ops ops = { .domain_new = on_new, .domain_gone = on_gone };

static void drain(struct xsd_conn *c)
{
	struct iovec iov[8];
	int n;

	while ((n = xsd_conn_output(c, iov, 8)) > 0) {
		for (int i = 0; i < n; i++) {
			struct xsd_sockmsg h;
			/* Messages are whole iovecs unless partially sent; we always
			 * send whole ones here. */
			CHECK(iov[i].iov_len >= sizeof(h));
			memcpy(&h, iov[i].iov_base, sizeof(h));
			CHECK(h.len <= XENSTORE_PAYLOAD_MAX);
			CHECK(iov[i].iov_len == sizeof(h) + h.len);
			CHECK(h.type < XS_TYPE_COUNT);
			if (h.type == XS_WATCH_EVENT)
				CHECK(h.req_id == 0 && h.tx_id == 0);
			if (h.type == XS_ERROR)
				CHECK(h.len >= 2 && ((char *)iov[i].iov_base)[sizeof(h) + h.len - 1] == '\0');
			xsd_conn_sent(c, iov[i].iov_len);
		}
	}
	CHECK(xsd_conn_pending(c) == 0);
}

static void domain_conn(void)
{
	static const char intro[] = "5\0" "1\0" "1";
	static const char home[] = "/local/domain/5\0n5";
	struct xsd_sockmsg h = { XS_INTRODUCE, 1, 0, sizeof(intro) };
	uint8_t buf[64];

	if (conns[3])
		return;
	/* A fresh privileged connection, so that no half-received message of
	 * the fuzzed ones mixes with these. */
	struct xsd_conn *c = xsd_conn_new(core, 0, true);

	CHECK(c);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), intro, sizeof(intro));
	CHECK(xsd_conn_input(c, buf, sizeof(h) + sizeof(intro)) == (long)(sizeof(h) + sizeof(intro)));
	h = (struct xsd_sockmsg){ XS_SET_PERMS, 2, 0, sizeof(home) };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), home, sizeof(home));
	CHECK(xsd_conn_input(c, buf, sizeof(h) + sizeof(home)) == (long)(sizeof(h) + sizeof(home)));
	drain(c);
	xsd_conn_free(c);
	conns[3] = xsd_conn_new(core, DOMU, false);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	pv_log_set_level(PV_LOG_ERR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xsd_config cfg = XSD_CONFIG_DEFAULT;
	size_t pos = 0;

	/* Small quotas so that inputs reach them. */
	cfg.lim.nodes = 30;
	cfg.lim.txn_nodes = 20;
	cfg.watches = 4;
	cfg.transactions = 3;
	cfg.outstanding = 4;
	cfg.watch_events = 8;
	core = xsd_core_new(&cfg, &ops, NULL);
	CHECK(core);
	conns[0] = xsd_conn_new(core, 0, true);
	conns[1] = xsd_conn_new(core, 0, true);
	conns[2] = xsd_conn_new(core, 0, true);
	domain_conn();

	while (pos + 2 <= size) {
		uint8_t sel = data[pos], len = data[pos + 1];
		int i = sel & 3;
		long r;

		pos += 2;
		if (len > size - pos)
			len = (uint8_t)(size - pos);
		if ((sel & 8) && i == 3 && !conns[3])
			domain_conn();
		if (!conns[i]) {
			pos += len;
			continue;
		}
		if (sel & 4)
			drain(conns[i]);
		r = xsd_conn_input(conns[i], data + pos, len);
		CHECK(r == -EPROTO || r == -EPIPE || (r >= 0 && (size_t)r <= len));
		if (r == -EPROTO) {   /* dropped: a new connection takes its place */
			unsigned domid = xsd_conn_domid(conns[i]);
			xsd_conn_free(conns[i]);
			conns[i] = i == 3 ? NULL : xsd_conn_new(core, domid, true);
		}
		pos += len;
	}
	for (int i = 0; i < NCONN; i++)
		if (conns[i])
			drain(conns[i]);
	CHECK(xsd_store_check(xsd_core_store(core)) == 0);
	for (int i = 0; i < NCONN; i++) {
		xsd_conn_free(conns[i]);
		conns[i] = NULL;
	}
	xsd_core_free(core);
	CHECK(xsd_node_live_count() == 0);
	return 0;
}
