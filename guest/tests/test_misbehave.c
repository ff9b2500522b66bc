/*
 * End-to-end: one guest per misbehaving-backend case (guest/tests/testback.h
 * faults). Each must end with the device disabled with the expected logged
 * reason ("Disabled for further use"), or the Linux reaction for the cases
 * that are not misbehaviour (backend Closing, no feature-rx-copy), while the
 * guest runtime keeps running and answering.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xen.h"
#include "guest/tests/e2e_util.h"
#include "guest/tests/testback.h"

static const uint8_t MAC[6] = { 0x00, 0x16, 0x3e, 0x5b, 0x00, 0x01 };

struct fcase {
	const char *name;
	enum tb_fault fault;
	unsigned after;         /* tx frames before the fault */
	bool traffic;           /* needs frames from the guest */
	const char *expect;     /* in `state`: broken_reason, last_error, or state=... */
};

static const struct fcase cases[] = {
	{ "tx response id out of range", TB_TX_BAD_ID, 1, true, "broken_reason=\"tx response id out of range\"" },
	{ "tx response for an inactive request", TB_TX_INACTIVE, 2, true, "broken_reason=\"tx response for an inactive request\"" },
	{ "tx producer index far ahead", TB_TX_PROD_JUMP, 1, true, "broken_reason=\"illegal number of tx responses\"" },
	{ "tx grant still mapped by the backend", TB_KEEP_MAPPED, 1, true, "broken_reason=\"tx grant still in use by the backend\"" },
	{ "tx data request answered with RSP_NULL", TB_TX_NULL, 1, true, "broken_reason=\"tx NULL response for a data request\"" },
	{ "rx grant still mapped by the backend", TB_RX_KEEP_MAPPED, 0, false, "broken_reason=\"rx grant still in use by the backend\"" },
	{ "rx data past the end of its page", TB_RX_OVERSIZE, 0, false, "broken_reason=\"rx data beyond the end of its page\"" },
	{ "rx packet of 20 slots", TB_RX_TOO_MANY, 0, false, "broken_reason=\"rx packet with too many slots\"" },
	{ "rx response id not its slot", TB_RX_BAD_ID, 0, false, "broken_reason=\"rx response id does not match its slot\"" },
	{ "rx producer going backwards", TB_RX_PROD_BACKWARDS, 0, false, "broken_reason=\"illegal number of rx responses\"" },
	{ "event storm", TB_EVENT_STORM, 0, false, "broken_reason=\"event storm" },
	{ "wake-ups without events (rings, no flag)", TB_RAW_WAKES, 0, false,
	  "broken_reason=\"event storm" },
	{ "backend that never connects", TB_NEVER_CONNECT, 0, false, "broken_reason=\"backend did not connect within" },
	{ "backend that vanishes", TB_VANISH, 0, false, "broken_reason=\"backend vanished" },
	{ "backend going Closing (not misbehaviour: frontend closes)", TB_CLOSE, 0, false, "state=Closed" },
	{ "backend state 9, then Closing (9 ignored, as Linux: not broken)", TB_STATE_9, 0, false, "state=Closed" },
	{ "backend without feature-rx-copy (refused, as Linux)", TB_NO_RX_COPY, 0, false,
	  "last_error=\"backend does not support copying receive path\"" },
};

static void run_case(struct mts_host *h, const struct fcase *c, unsigned idx)
{
	const char *extra[] = { "--max-queues", "2", "--connect-timeout", "1500", NULL };
	struct tb_opts o = { .host = h, .devid = 0, .max_queues = 2, .split = idx % 2 == 0,
			     .fault = c->fault, .fault_after = c->after };
	struct mts_guest *g = calloc(1, sizeof(*g));
	const char *ns = e2e_netns("m");
	uint32_t domid = 0;
	struct tb *b;
	bool ok;
	char *st;

	if (mts_domain_create(h, &domid, false, 0) < 0 || mts_vif_add(h, domid, 0, "00:16:3e:5b:00:01") < 0) {
		CHECK(false, "%s: domain", c->name);
		return;
	}
	o.domid = domid;
	b = tb_start(&o);
	if (!b || mts_guest_start(g, h, domid, ns, e2e_tmpdir(), extra) < 0) {
		CHECK(false, "%s: start backend and guest", c->name);
		tb_stop(b);
		return;
	}
	e2e_atexit_guest(g);
	if (c->traffic) {
		e2e_wait_control(g, "state", "state=Connected backend", 1, 5000);
		e2e_sh("ip -n %s link set eth0 up", ns);
		e2e_wait_control(g, "trace-norm", "netif_tx_start_queue", 2, 3000);
		for (int i = 0; i < 10 && !e2e_wait_control(g, "state", c->expect, 1, 100); i++)
			e2e_wait_child(e2e_send_seq(ns, "eth0", MAC, (uint32_t)i * 4, 4, 0, NULL));
	}
	ok = e2e_wait_control(g, "state", c->expect, 1, 8000);
	st = mts_control(g, "state");
	CHECK(ok, "%s -> %s", c->name, c->expect);
	if (!ok)
		printf("# state: %s", st ? st : "(no answer)\n");
	if (c->fault == TB_STATE_9)
		CHECK(st && strstr(st, "broken=0"), "%s: the device was not broken by it", c->name);
	free(st);
	/* The runtime goes on. */
	CHECK(kill(g->pid, 0) == 0 && e2e_wait_control(g, "stats", "\"devices\"", 1, 1000),
	      "%s: the guest runtime still runs and answers", c->name);
	if (strstr(c->expect, "broken_reason")) {
		char *tr = mts_control(g, "trace");
		CHECK(tr && strstr(tr, "Disabled for further use"), "%s: traced as 'Disabled for further use'", c->name);
		free(tr);
	}
	CHECK(mts_guest_stop(g) == 0, "%s: stops cleanly", c->name);
	if (c->fault == TB_KEEP_MAPPED || c->fault == TB_RX_KEEP_MAPPED) {
		/* XSA-396: the page the backend still maps is not freed for
		 * reuse, though the broken device no longer has it in flight. */
		CHECK(e2e_sh("grep -q 'the backend still maps some pages; they are never reused' %s", g->log) == 0,
		      "%s: the still-mapped page is kept out of reuse at teardown", c->name);
	}
	tb_stop(b);
	mts_domain_destroy(h, domid);
}

int main(int argc, char **argv)
{
	static struct mts_host h;

	e2e_require();
	if (mts_host_start(&h, e2e_tmpdir(), "host") < 0) {
		CHECK(false, "start a host");
		return e2e_done();
	}
	e2e_atexit_host(&h);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (argc < 2 || strstr(cases[i].name, argv[1]))
			run_case(&h, &cases[i], i);
	return e2e_done();
}
