/*
 * Unit tests of netfront's lifecycle (guest/netfront.c) in a fake
 * environment: xenstore is a key table, queue setup hands out real ring pages
 * from the heap, the netdev is a few flags. The three field-notes scenarios
 * are compared with the golden sequences in guest/tests/golden/.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest/netfront.h"
#include "guest/tests/txpkt.h"

#ifndef GOLDEN_DIR
#define GOLDEN_DIR "guest/tests/golden"
#endif

/* ---- fake environment ---------------------------------------------------- */

#define MAXKV 256

struct kvt {
	char key[64];
	char value[64];
};

struct fake {
	struct kvt be[MAXKV], fe[MAXKV];
	unsigned nbe, nfe;
	unsigned txns, fatals, setups, teardowns, kicks, notifies, registers;
	int fail_setup_at;            /* queue id whose setup fails, -1 none */
	bool carrier;
	unsigned tap_queues;
	char fatal_msg[128];
	uint8_t *tx_pages[NF_MAX_QUEUES];
};

static struct kvt *kv_find(struct kvt *t, unsigned n, const char *key)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(t[i].key, key))
			return &t[i];
	return NULL;
}

static void kv_set(struct kvt *t, unsigned *n, const char *key, const char *value)
{
	struct kvt *e = kv_find(t, *n, key);
	if (!e) {
		assert_true(*n < MAXKV);
		e = &t[(*n)++];
		snprintf(e->key, sizeof(e->key), "%s", key);
	}
	snprintf(e->value, sizeof(e->value), "%s", value);
}

static void kv_del(struct kvt *t, unsigned *n, const char *key)
{
	struct kvt *e = kv_find(t, *n, key);
	if (e)
		*e = t[--(*n)];
}

static const char *fe_get(struct fake *f, const char *key)
{
	struct kvt *e = kv_find(f->fe, f->nfe, key);
	return e ? e->value : NULL;
}

static int f_read(void *env, struct nf_dev *d, bool backend, const char *key, char *buf, size_t len)
{
	struct fake *f = env;
	struct kvt *e = backend ? kv_find(f->be, f->nbe, key) : kv_find(f->fe, f->nfe, key);
	(void)d;
	if (!e)
		return -ENOENT;
	snprintf(buf, len, "%s", e->value);
	return 0;
}

static int f_write(void *env, struct nf_dev *d, const char *key, const char *value)
{
	struct fake *f = env;
	(void)d;
	kv_set(f->fe, &f->nfe, key, value);
	return 0;
}

static int f_write_txn(void *env, struct nf_dev *d, const struct nf_kv *kv, unsigned n)
{
	struct fake *f = env;
	(void)d;
	f->txns++;
	for (unsigned i = 0; i < n; i++)
		kv_set(f->fe, &f->nfe, kv[i].key, kv[i].value);
	return 0;
}

static void f_fatal(void *env, struct nf_dev *d, int err, const char *msg)
{
	struct fake *f = env;
	(void)d; (void)err;
	f->fatals++;
	snprintf(f->fatal_msg, sizeof(f->fatal_msg), "%s", msg);
}

static int f_queue_setup(void *env, struct nf_queue *q, bool split)
{
	struct fake *f = env;
	void *txs, *rxs;

	if ((int)q->id == f->fail_setup_at)
		return -ENOSPC;
	assert_int_equal(posix_memalign(&txs, PV_PAGE_SIZE, PV_PAGE_SIZE), 0);
	assert_int_equal(posix_memalign(&rxs, PV_PAGE_SIZE, PV_PAGE_SIZE), 0);
	memset(txs, 0, PV_PAGE_SIZE);
	memset(rxs, 0, PV_PAGE_SIZE);
	SHARED_RING_INIT((netif_tx_sring_t *)txs);
	FRONT_RING_INIT(&q->tx, (netif_tx_sring_t *)txs, PV_PAGE_SIZE);
	SHARED_RING_INIT((netif_rx_sring_t *)rxs);
	FRONT_RING_INIT(&q->rx, (netif_rx_sring_t *)rxs, PV_PAGE_SIZE);
	q->tx_ring_ref = 100 + 2 * q->id;
	q->rx_ring_ref = 101 + 2 * q->id;
	q->tx_evtchn = 10 + 2 * q->id;
	q->rx_evtchn = split ? q->tx_evtchn + 1 : q->tx_evtchn;
	f->tx_pages[q->id] = calloc(NF_TX_RING_SIZE, PV_PAGE_SIZE);
	for (unsigned i = 0; i < NF_TX_RING_SIZE; i++) {
		q->tx_page[i] = f->tx_pages[q->id] + (size_t)i * PV_PAGE_SIZE;
		q->grant_tx_ref[i] = 1000 + i;
	}
	f->setups++;
	return 0;
}

static void f_queue_teardown(void *env, struct nf_queue *q)
{
	struct fake *f = env;
	free(q->tx.sring);
	free(q->rx.sring);
	q->tx.sring = NULL;
	q->rx.sring = NULL;
	free(f->tx_pages[q->id]);
	f->tx_pages[q->id] = NULL;
	f->teardowns++;
}

static void f_queue_start(void *env, struct nf_queue *q) { (void)env; (void)q; }

static int f_register(void *env, struct nf_dev *d, const uint8_t mac[6])
{
	struct fake *f = env;
	(void)d; (void)mac;
	f->registers++;
	return 0;
}

static void f_unregister(void *env, struct nf_dev *d) { (void)env; (void)d; }
static int f_update(void *env, struct nf_dev *d) { (void)env; (void)d; return 0; }

static int f_carrier(void *env, struct nf_dev *d, bool on)
{
	struct fake *f = env;
	(void)d;
	f->carrier = on;
	return 0;
}

static int f_set_queues(void *env, struct nf_dev *d, unsigned n)
{
	struct fake *f = env;
	f->tap_queues = n;
	atomic_store(&d->tap_queues, n);
	return 0;
}

static void f_kick(void *env, struct nf_dev *d, unsigned txq)
{
	struct fake *f = env;
	(void)d; (void)txq;
	f->kicks++;
}

static void f_notify(void *env, struct nf_dev *d, char *summary, size_t len)
{
	struct fake *f = env;
	(void)d;
	f->notifies++;
	snprintf(summary, len, "1 GARP");
}

static const struct nf_ops fake_ops = {
	.read = f_read, .write = f_write, .write_txn = f_write_txn, .fatal = f_fatal,
	.queue_setup = f_queue_setup, .queue_teardown = f_queue_teardown,
	.queue_start = f_queue_start, .netdev_register = f_register,
	.netdev_unregister = f_unregister, .netdev_update = f_update,
	.netdev_carrier = f_carrier, .netdev_set_queues = f_set_queues, .kick = f_kick,
	.notify_peers = f_notify,
};

/* A backend as Linux netback advertises itself (reference §3.1). */
static void backend_features(struct fake *f, unsigned max_queues, bool split)
{
	static const char *const keys[] = {
		"feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6",
		"feature-ipv6-csum-offload", "feature-rx-copy", "feature-xdp-headroom",
		"feature-multicast-control", "feature-dynamic-multicast-control", "feature-ctrl-ring",
	};
	char v[16];

	f->nbe = 0;
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		kv_set(f->be, &f->nbe, keys[i], "1");
	kv_set(f->be, &f->nbe, "feature-rx-flip", "0");
	kv_set(f->be, &f->nbe, "feature-split-event-channels", split ? "1" : "0");
	snprintf(v, sizeof(v), "%u", max_queues);
	kv_set(f->be, &f->nbe, "multi-queue-max-queues", v);
}

struct world {
	struct fake f;
	struct gr_trace *t;
	struct nf_dev *d;
};

static struct world *world_new(enum nf_mode mode, unsigned max_queues, unsigned backend_queues)
{
	struct world *w = calloc(1, sizeof(*w));
	struct nf_params p = { .max_queues = max_queues, .mode = mode };

	snprintf(p.ifname, sizeof(p.ifname), "eth0");
	w->f.fail_setup_at = -1;
	backend_features(&w->f, backend_queues, true);
	kv_set(w->f.fe, &w->f.nfe, "mac", "00:16:3e:01:02:03");
	kv_set(w->f.fe, &w->f.nfe, "state", "1");
	w->t = gr_trace_new(4096);
	w->d = nf_dev_new("device/vif/0", 0, &p, &fake_ops, &w->f, w->t);
	assert_non_null(w->d);
	return w;
}

static void world_free(struct world *w)
{
	nf_remove(w->d);
	nf_dev_free(w->d);
	gr_trace_free(w->t);
	free(w);
}

/* The normalized trace after `after` as text (golden comparisons). */
static char *norm_since(struct world *w, uint64_t after)
{
	static struct gr_trace_rec recs[4096];
	unsigned n = gr_trace_snapshot(w->t, after, recs, 4096);
	size_t cap = 65536, len = 0;
	char *out = calloc(1, cap);

	for (unsigned i = 0; i < n; i++) {
		if (!gr_trace_norm_keep(&recs[i]))
			continue;
		len += gr_trace_render(&recs[i], GR_TRACE_NORM, out + len, cap - len);
	}
	return out;
}

static char *read_golden(const char *name)
{
	char path[512];
	FILE *fp;
	char *buf = calloc(1, 65536);
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
	fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot open %s", path);
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void assert_golden(struct world *w, uint64_t after, const char *name)
{
	char *got = norm_since(w, after), *want = read_golden(name);
	if (strcmp(got, want)) {
		print_error("golden %s differs.\n--- want\n%s--- got\n%s", name, want, got);
		fail();
	}
	free(got);
	free(want);
}

static void boot(struct world *w)
{
	assert_int_equal(nf_probe(w->d), 0);
	nf_backend_changed(w->d, XenbusStateInitialising);
	nf_backend_changed(w->d, XenbusStateInitWait);
	assert_int_equal(w->d->state, XenbusStateConnected);
	nf_backend_changed(w->d, XenbusStateConnected);
}

/* What the bus does on a move: trace suspend, mark stale, resume. */
static void migrate(struct world *w, unsigned new_backend_queues)
{
	struct gr_trace_rec r;

	gr_trace_rec_init(&r, GR_EV_SUSPEND, NULL, NULL);
	gr_trace_emit(w->t, &r);
	nf_mark_stale(w->d);
	w->d->state = XenbusStateInitialising;   /* xenbus_dev_resume, in memory */
	backend_features(&w->f, new_backend_queues, true);
	assert_int_equal(nf_resume(w->d), 0);
	nf_backend_changed(w->d, XenbusStateInitialising);
	nf_backend_changed(w->d, XenbusStateInitWait);
	assert_int_equal(w->d->state, XenbusStateConnected);
	nf_backend_changed(w->d, XenbusStateConnected);
}

/* ---- scenarios ------------------------------------------------------------- */

static void test_boot_open(void **state)
{
	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		struct world *w = world_new((enum nf_mode)mode, 8, 8);
		boot(w);
		nf_open(w->d, GR_HOW_NETLINK);
		assert_golden(w, 0, "boot-open.txt");
		assert_true(w->f.carrier);
		assert_int_equal(w->f.registers, 1);
		assert_int_equal(w->f.notifies, 1);
		assert_int_equal(w->f.tap_queues, 8);
		for (unsigned i = 0; i < 8; i++)
			assert_false(atomic_load(&w->d->txq[i].stopped));
		world_free(w);
	}
}

static void test_migration_golden(void **state)
{
	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		struct world *w = world_new((enum nf_mode)mode, 8, 8);
		uint64_t mark;

		boot(w);
		nf_open(w->d, GR_HOW_NETLINK);
		mark = gr_trace_last_seq(w->t);
		migrate(w, 8);
		assert_golden(w, mark, mode == NF_MODE_FIXED ? "migration.fixed.txt"
							      : "migration.linux-5.13.txt");
		/* No new netdev, queues running again, carrier back. */
		assert_int_equal(w->f.registers, 1);
		assert_true(w->f.carrier);
		assert_int_equal(w->f.notifies, 2);
		for (unsigned i = 0; i < 8; i++)
			assert_false(atomic_load(&w->d->txq[i].stopped));
		assert_int_equal(atomic_load(&w->d->race), 0);
		world_free(w);
	}
}

static void test_ifconfig_golden(void **state)
{
	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		struct world *w = world_new((enum nf_mode)mode, 8, 8);
		uint64_t mark;

		boot(w);
		mark = gr_trace_last_seq(w->t);
		nf_open(w->d, GR_HOW_IOCTL);
		nf_close(w->d, GR_HOW_IOCTL);
		assert_golden(w, mark, "ifconfig.txt");
		for (unsigned i = 0; i < 8; i++)
			assert_true(atomic_load(&w->d->txq[i].stopped));
		world_free(w);
	}
}

/* ---- xenstore keys ----------------------------------------------------------- */

static void test_keys_multiqueue(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 4);
	(void)state;

	boot(w);
	assert_int_equal(w->f.txns, 1);
	assert_string_equal(fe_get(&w->f, "multi-queue-num-queues"), "4");
	assert_string_equal(fe_get(&w->f, "queue-0/tx-ring-ref"), "100");
	assert_string_equal(fe_get(&w->f, "queue-3/rx-ring-ref"), "107");
	assert_string_equal(fe_get(&w->f, "queue-2/event-channel-tx"), "14");
	assert_string_equal(fe_get(&w->f, "queue-2/event-channel-rx"), "15");
	assert_null(fe_get(&w->f, "queue-4/tx-ring-ref"));
	assert_null(fe_get(&w->f, "tx-ring-ref"));
	assert_null(fe_get(&w->f, "queue-0/event-channel"));
	assert_string_equal(fe_get(&w->f, "request-rx-copy"), "1");
	assert_string_equal(fe_get(&w->f, "feature-rx-notify"), "1");
	assert_string_equal(fe_get(&w->f, "feature-sg"), "1");
	assert_string_equal(fe_get(&w->f, "feature-gso-tcpv4"), "1");
	assert_string_equal(fe_get(&w->f, "feature-gso-tcpv6"), "1");
	assert_string_equal(fe_get(&w->f, "feature-ipv6-csum-offload"), "1");
	assert_string_equal(fe_get(&w->f, "xdp-headroom"), "0");
	assert_string_equal(fe_get(&w->f, "state"), "4");
	assert_null(fe_get(&w->f, "feature-no-csum-offload"));
	assert_null(fe_get(&w->f, "request-multicast-control"));
	assert_int_equal(atomic_load(&w->d->num_queues), 4);
	world_free(w);
}

static void test_keys_single_queue_flat(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 1);
	(void)state;

	kv_set(w->f.be, &w->f.nbe, "feature-split-event-channels", "0");
	kv_del(w->f.be, &w->f.nbe, "multi-queue-max-queues");
	kv_del(w->f.be, &w->f.nbe, "feature-xdp-headroom");
	boot(w);
	assert_null(fe_get(&w->f, "multi-queue-num-queues"));
	assert_string_equal(fe_get(&w->f, "tx-ring-ref"), "100");
	assert_string_equal(fe_get(&w->f, "rx-ring-ref"), "101");
	assert_string_equal(fe_get(&w->f, "event-channel"), "10");
	assert_null(fe_get(&w->f, "event-channel-tx"));
	assert_null(fe_get(&w->f, "queue-0/tx-ring-ref"));
	assert_null(fe_get(&w->f, "xdp-headroom"));
	world_free(w);
}

static void test_max_queues_caps(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 2, 8);
	(void)state;

	boot(w);
	assert_string_equal(fe_get(&w->f, "multi-queue-num-queues"), "2");
	assert_int_equal(w->d->num_txq, 2);
	world_free(w);
}

static void test_refuse_without_rx_copy(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	(void)state;

	kv_del(w->f.be, &w->f.nbe, "feature-rx-copy");
	nf_probe(w->d);
	nf_backend_changed(w->d, XenbusStateInitWait);
	assert_int_equal(w->d->state, XenbusStateInitialising);
	assert_string_equal(w->d->last_error, "backend does not support copying receive path");
	assert_int_equal(w->f.setups, 0);
	assert_false(w->d->registered);
	world_free(w);
}

/* The batched read: values longer than a key's buffer come back -E2BIG,
 * absent ones -ENOENT, as the runtime's pipelined reader reports them. */
static unsigned read_keys_calls;
static int f_read_keys(void *env, struct nf_dev *d, struct nf_rkey *k, unsigned n)
{
	struct fake *f = env;
	(void)d;
	read_keys_calls++;
	for (unsigned i = 0; i < n; i++) {
		struct kvt *e = k[i].backend ? kv_find(f->be, f->nbe, k[i].key) : kv_find(f->fe, f->nfe, k[i].key);
		if (!e)
			k[i].r = -ENOENT;
		else if (strlen(e->value) >= sizeof(k[i].buf))
			k[i].r = -E2BIG;
		else
			k[i].r = snprintf(k[i].buf, sizeof(k[i].buf), "%s", e->value);
	}
	return 0;
}

static void test_batched_connect_reads(void **state)
{
	struct nf_ops ops = fake_ops;
	(void)state;

	ops.read_keys = f_read_keys;
	/* One batch for every connect-time key; the connection is as usual. */
	{
		struct world *w = world_new(NF_MODE_FIXED, 8, 4);
		w->d->ops = &ops;
		read_keys_calls = 0;
		boot(w);
		assert_int_equal(read_keys_calls, 1);
		assert_int_equal(atomic_load(&w->d->num_queues), 4);
		assert_true(w->d->feat.split_evtchn && w->d->feat.sg && w->d->feat.trusted);
		assert_int_equal(w->d->mac[5], 0x03);
		w->d->ops = &fake_ops;
		world_free(w);
	}
	/* A mac too long for the buffer is refused, never truncated into use. */
	{
		struct world *w = world_new(NF_MODE_FIXED, 8, 8);
		w->d->ops = &ops;
		kv_set(w->f.fe, &w->f.nfe, "mac", "00:16:3e:01:02:03:04:05:06:07:08:09:0a");
		nf_probe(w->d);
		nf_backend_changed(w->d, XenbusStateInitWait);
		assert_int_equal(w->f.fatals, 1);
		assert_string_equal(w->f.fatal_msg, "parsing device/vif/0/mac");
		w->d->ops = &fake_ops;
		world_free(w);
	}
	/* A queue count too long to be a number: as absent, one queue. */
	{
		struct world *w = world_new(NF_MODE_FIXED, 8, 8);
		w->d->ops = &ops;
		kv_set(w->f.be, &w->f.nbe, "multi-queue-max-queues", "88888888888888888888888888888888888");
		boot(w);
		assert_false(w->d->feat.have_max_queues);
		assert_int_equal(atomic_load(&w->d->num_queues), 1);
		w->d->ops = &fake_ops;
		world_free(w);
	}
}

static void test_bad_mac_is_fatal(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	(void)state;

	kv_set(w->f.fe, &w->f.nfe, "mac", "00:16:3e:01:02");
	nf_probe(w->d);
	nf_backend_changed(w->d, XenbusStateInitWait);
	assert_int_equal(w->f.fatals, 1);
	assert_string_equal(w->f.fatal_msg, "parsing device/vif/0/mac");
	assert_int_equal(w->d->state, XenbusStateInitialising);
	world_free(w);
}

static void test_setup_failure_unwinds(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	(void)state;

	w->f.fail_setup_at = 3;
	nf_probe(w->d);
	nf_backend_changed(w->d, XenbusStateInitWait);
	assert_int_equal(w->f.fatals, 1);
	assert_int_equal(w->f.setups, 3);
	assert_int_equal(w->f.teardowns, 3);
	assert_int_equal(w->f.txns, 0);
	assert_false(w->d->queues_created);
	world_free(w);
}

/* ---- state machine corners ----------------------------------------------------- */

static void test_probe_waits_for_backend(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	uint64_t mark;
	(void)state;

	nf_probe(w->d);
	mark = gr_trace_last_seq(w->t);
	nf_backend_changed(w->d, XenbusStateUnknown);
	nf_backend_changed(w->d, XenbusStateClosed);
	assert_int_equal(gr_trace_last_seq(w->t), mark);   /* still in probe */
	assert_true(w->d->probing);
	nf_backend_changed(w->d, XenbusStateInitWait);
	assert_false(w->d->probing);
	assert_int_equal(w->d->state, XenbusStateConnected);
	world_free(w);
}

static void test_initwait_ignored_unless_initialising(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	(void)state;

	boot(w);
	nf_backend_changed(w->d, XenbusStateInitWait);   /* while Connected */
	assert_int_equal(w->f.setups, 8);
	assert_int_equal(atomic_load(&w->d->connects), 1);
	world_free(w);
}

static void test_backend_closing(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	(void)state;

	boot(w);
	nf_backend_changed(w->d, XenbusStateClosing);
	assert_int_equal(w->d->state, XenbusStateClosed);
	assert_string_equal(fe_get(&w->f, "state"), "6");
	nf_backend_changed(w->d, XenbusStateClosed);   /* already Closed: nothing */
	assert_int_equal(w->d->state, XenbusStateClosed);
	assert_false(atomic_load(&w->d->broken));
	world_free(w);

	/* A missed Closing: Closed while Connected closes too. */
	w = world_new(NF_MODE_FIXED, 8, 8);
	boot(w);
	nf_backend_changed(w->d, XenbusStateClosed);
	assert_int_equal(w->d->state, XenbusStateClosed);
	world_free(w);
}

/* A state past the known ones ("9") is ignored, as Linux's netback_changed
 * ignores it: not Unknown, the device stays up. */
static void test_backend_state_out_of_range(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	(void)state;

	boot(w);
	nf_backend_changed(w->d, 9);
	assert_false(atomic_load(&w->d->broken));
	assert_int_equal(w->d->state, XenbusStateConnected);
	world_free(w);
}

static void test_backend_vanishes(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	(void)state;

	boot(w);
	nf_backend_changed(w->d, XenbusStateUnknown);
	assert_true(atomic_load(&w->d->broken));
	assert_string_equal(w->d->broken_reason, "backend vanished (its state node is gone or reads Unknown)");
	/* Broken: transmits are dropped, open does not start the queues. */
	nf_open(w->d, GR_HOW_NETLINK);
	for (unsigned i = 0; i < 8; i++)
		assert_true(atomic_load(&w->d->txq[i].stopped));
	world_free(w);
}

static void test_broken_reset_on_reconnect(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	(void)state;

	boot(w);
	nf_mark_broken(w->d, "test %d", 1);
	nf_mark_broken(w->d, "second");   /* the first reason sticks */
	assert_string_equal(w->d->broken_reason, "test 1");
	migrate(w, 8);
	assert_false(atomic_load(&w->d->broken));
	world_free(w);
}

/* ---- the race window ------------------------------------------------------------- */

static enum nf_xmit_verdict xmit(struct nf_dev *d, unsigned q)
{
	struct nf_queue *nq = NULL;
	enum nf_xmit_verdict v;

	pthread_mutex_lock(&d->txq[q].xmit_lock);
	v = nf_xmit_begin(d, q, &nq);
	if (v == NF_XMIT_OK)
		pthread_mutex_unlock(&nq->tx_lock);
	pthread_mutex_unlock(&d->txq[q].xmit_lock);
	return v;
}

static void test_race_window(void **state)
{
	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		struct world *w = world_new((enum nf_mode)mode, 8, 8);
		struct nf_dev *d = w->d;

		assert_int_equal(xmit(d, 0), NF_XMIT_STOPPED);   /* no netdev yet */
		boot(w);
		assert_int_equal(xmit(d, 0), NF_XMIT_STOPPED);   /* not open */
		nf_open(d, GR_HOW_NETLINK);
		assert_int_equal(xmit(d, 0), NF_XMIT_OK);
		assert_int_equal(xmit(d, 7), NF_XMIT_OK);

		nf_mark_stale(d);
		d->state = XenbusStateInitialising;
		backend_features(&w->f, 2, true);   /* the new host offers 2 queues */
		nf_resume(d);
		if (mode == NF_MODE_FIXED) {
			assert_int_equal(xmit(d, 0), NF_XMIT_STOPPED);
			assert_int_equal(xmit(d, 5), NF_XMIT_STOPPED);
		} else {
			assert_int_equal(xmit(d, 0), NF_XMIT_RACE);
			assert_int_equal(xmit(d, 5), NF_XMIT_RACE);
		}
		nf_backend_changed(d, XenbusStateInitWait);
		assert_int_equal(atomic_load(&d->num_queues), 2);
		assert_int_equal(w->f.tap_queues, 2);
		assert_int_equal(xmit(d, 0), NF_XMIT_OK);
		assert_int_equal(xmit(d, 1), NF_XMIT_OK);
		assert_int_equal(xmit(d, 5), NF_XMIT_STOPPED);   /* TAP queue detached */
		assert_int_equal(atomic_load(&d->race), 0);       /* counted by the caller */
		world_free(w);
	}
}

/* A compat-mode data thread whose queue index is beyond the new count,
 * between talk_to_netback and the TAP detach: the other race. */
static int beyond_env_set_queues(void *env, struct nf_dev *d, unsigned n)
{
	/* Called with every xmit lock held: look at the state a data thread
	 * would have seen just before. */
	(void)env;
	assert_int_equal(atomic_load(&d->num_queues), n);
	assert_true(atomic_load(&d->tap_queues) > n);
	atomic_store(&d->tap_queues, n);
	return 0;
}

static void test_queue_count_change(void **state)
{
	struct world *w = world_new(NF_MODE_FIXED, 8, 8);
	struct nf_ops ops = fake_ops;
	(void)state;

	boot(w);
	nf_open(w->d, GR_HOW_NETLINK);
	ops.netdev_set_queues = beyond_env_set_queues;
	w->d->ops = &ops;
	migrate(w, 2);
	assert_int_equal(atomic_load(&w->d->num_queues), 2);
	assert_string_equal(fe_get(&w->f, "multi-queue-num-queues"), "2");
	w->d->ops = &fake_ops;
	migrate(w, 8);
	assert_int_equal(atomic_load(&w->d->num_queues), 8);
	assert_int_equal(w->f.tap_queues, 8);
	assert_string_equal(fe_get(&w->f, "multi-queue-num-queues"), "8");
	assert_string_equal(fe_get(&w->f, "queue-7/tx-ring-ref"), "114");
	world_free(w);
}

/* ---- in-flight frames across a move ----------------------------------------------- */

/* Publish a packet of `len` bytes filled with `fill` on queue q's ring. */
static void post_packet(struct nf_queue *q, uint32_t len, uint8_t fill, bool gso)
{
	uint16_t ids[NF_MAX_PKT_PAGES];
	unsigned np = txpkt_publish(&q->tx, &q->txb, len, gso ? XEN_NETIF_GSO_TYPE_TCPV4 : XEN_NETIF_GSO_TYPE_NONE, ids);

	for (unsigned i = 0; i < np; i++)
		memset(q->tx_page[ids[i]], fill, PV_PAGE_SIZE);
}

static void test_inflight_replayed_in_fixed_mode(void **state)
{
	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		struct world *w = world_new((enum nf_mode)mode, 8, 8);
		struct nf_dev *d = w->d;
		unsigned n = 0;

		boot(w);
		nf_open(d, GR_HOW_NETLINK);
		post_packet(&d->queues[0], 1000, 0xa1, false);
		post_packet(&d->queues[0], 9000, 0xa2, true);
		post_packet(&d->queues[3], 60, 0xa3, false);
		migrate(w, 2);
		for (unsigned qi = 0; qi < 2; qi++)
			for (struct nf_txbuf *b = d->queues[qi].backlog; b; b = b->next) {
				assert_true(b->replay);
				assert_int_equal(b->data[0], b->data[b->len - 1]);
				if (b->len == 9000)
					assert_int_equal(b->o.gso_type, XEN_NETIF_GSO_TYPE_TCPV4);
				n++;
			}
		if (mode == NF_MODE_FIXED) {
			assert_int_equal(n, 3);
			assert_int_equal(d->queues[0].backlog->len, 1000);
			assert_int_equal(d->queues[0].backlog->data[0], 0xa1);
		} else {
			assert_int_equal(n, 0);   /* dropped, as xennet_release_tx_bufs */
			assert_int_equal(atomic_load(&d->queues[0].st.tx_dropped), 2);
			assert_int_equal(atomic_load(&d->queues[3].st.tx_dropped), 1);
		}
		world_free(w);
	}
}

/* One GARP-sized frame per call, marked as the env's builder marks them. */
static unsigned announce_builds;
static struct nf_txbuf *f_announce(void *env, struct nf_dev *d)
{
	struct nf_txbuf *b = calloc(1, sizeof(*b) + 42);

	(void)env; (void)d;
	announce_builds++;
	b->len = 42;
	b->announce = true;
	memset(b->data, 0xee, 42);
	return b;
}

static void test_announce_ahead_after_move(void **state)
{
	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		struct world *w = world_new((enum nf_mode)mode, 8, 8);
		struct nf_ops ops = fake_ops;
		struct nf_dev *d = w->d;
		unsigned kicks;

		ops.announce_frames = f_announce;
		d->ops = &ops;
		d->p.announce_first = mode == NF_MODE_FIXED;
		announce_builds = 0;
		boot(w);
		assert_int_equal(announce_builds, 0);   /* not at boot */
		nf_open(d, GR_HOW_NETLINK);
		post_packet(&d->queues[0], 1000, 0xa1, false);
		migrate(w, 4);
		if (mode == NF_MODE_FIXED) {
			/* At the head of queue 0, ahead of the kept frame; gate shut. */
			assert_int_equal(announce_builds, 1);
			assert_true(d->queues[0].backlog->announce);
			assert_int_equal(d->queues[0].backlog->len, 42);
			assert_true(d->queues[0].backlog->next->replay);
			assert_true(atomic_load(&d->ann_gate));
			kicks = w->f.kicks;
			nf_announce_release(d, NULL);
			assert_false(atomic_load(&d->ann_gate));
			assert_true(w->f.kicks >= kicks + 7);   /* queues 1..7 looked again */
			/* A later disconnect leaves no gate behind. */
			migrate(w, 4);
			assert_true(atomic_load(&d->ann_gate));
			nf_resume(d);
			assert_false(atomic_load(&d->ann_gate));
		} else {
			assert_int_equal(announce_builds, 0);
			assert_false(atomic_load(&d->ann_gate));
		}
		d->ops = &fake_ops;
		world_free(w);
	}
	/* Interface down: nothing to announce ahead (Linux drops it too). */
	{
		struct world *w = world_new(NF_MODE_FIXED, 8, 8);
		struct nf_ops ops = fake_ops;

		ops.announce_frames = f_announce;
		w->d->ops = &ops;
		w->d->p.announce_first = true;
		announce_builds = 0;
		boot(w);
		migrate(w, 8);
		assert_int_equal(announce_builds, 0);
		assert_false(atomic_load(&w->d->ann_gate));
		w->d->ops = &fake_ops;
		world_free(w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_open),
		cmocka_unit_test(test_migration_golden),
		cmocka_unit_test(test_ifconfig_golden),
		cmocka_unit_test(test_keys_multiqueue),
		cmocka_unit_test(test_keys_single_queue_flat),
		cmocka_unit_test(test_max_queues_caps),
		cmocka_unit_test(test_refuse_without_rx_copy),
		cmocka_unit_test(test_bad_mac_is_fatal),
		cmocka_unit_test(test_batched_connect_reads),
		cmocka_unit_test(test_setup_failure_unwinds),
		cmocka_unit_test(test_probe_waits_for_backend),
		cmocka_unit_test(test_initwait_ignored_unless_initialising),
		cmocka_unit_test(test_backend_closing),
		cmocka_unit_test(test_backend_vanishes),
		cmocka_unit_test(test_backend_state_out_of_range),
		cmocka_unit_test(test_broken_reset_on_reconnect),
		cmocka_unit_test(test_race_window),
		cmocka_unit_test(test_queue_count_change),
		cmocka_unit_test(test_inflight_replayed_in_fixed_mode),
		cmocka_unit_test(test_announce_ahead_after_move),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
