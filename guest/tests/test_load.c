/*
 * End-to-end: live migration under transmit load. A sender in the guest's
 * namespace streams sequence-numbered frames out of eth0 while the guest
 * migrates back and forth between two hosts.
 *  - linux-5.13 mode: transmits reach queues being torn down or rebuilt: the
 *    race counter goes above 0 (migrations are repeated until it does) and
 *    frames are lost;
 *  - fixed mode: the race counter stays at 0 and every frame the guest stack
 *    handed to eth0 reaches a backend (frames still on the old ring are
 *    re-posted: duplicates are possible and reported).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "common/xen.h"
#include "guest/tests/e2e_util.h"
#include "guest/tests/testback.h"

#define PPS 20000u
#define MAX_MIGRATIONS 12

static const uint8_t MAC[6] = { 0x00, 0x16, 0x3e, 0x5c, 0x00, 0x01 };
static const char *const MACS[] = { "00:16:3e:5c:00:01" };
static const unsigned DEVIDS[] = { 0 };

static struct mts_host ha, hb;
static uint8_t *seen;            /* union over every backend */
static struct tb *cur, *old;
static uint64_t dups;            /* frames received twice (re-posted ones) */

static int prepare(void *arg, struct mts_host *dst, uint32_t newid)
{
	struct tb_opts o = { .host = dst, .domid = newid, .max_queues = 8, .split = true };
	(void)arg;
	old = cur;
	cur = tb_start(&o);
	return cur ? 0 : -1;
}

static void stop_old(void *arg)
{
	(void)arg;
	dups += tb_seq_merge(old, seen);
	tb_stop(old);
	old = NULL;
}

static long stats_sum(const struct mts_guest *g, const char *key)
{
	char *s = mts_control(g, "stats"), pat[64];
	long sum = 0;

	if (!s)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	for (char *p = strstr(s, pat); p; p = strstr(p + 1, pat))
		sum += strtol(p + strlen(pat), NULL, 10);
	free(s);
	return sum;
}

static void run(bool compat)
{
	const char *mode = compat ? "linux-5.13" : "fixed";
	const char *extra_compat[] = { "--max-queues", "8", "--compat", "linux-5.13", NULL };
	const char *extra_fixed[] = { "--max-queues", "8", NULL };
	const char *ns = e2e_netns(compat ? "lc" : "lf");
	uint32_t count = PPS * 6, domid = 0, lost = 0, sent = 0, first_lost = 0;
	struct mts_guest *g = calloc(1, sizeof(*g));
	struct tb_opts o = { .host = &ha, .max_queues = 8, .split = true };
	uint8_t *sentmap = e2e_bitmap(count);
	unsigned done = 0;
	long race = 0, tapdrops;
	pid_t sender;

	printf("# mode %s\n", mode);
	memset(seen, 0, TB_SEQ_MAX / 8);
	dups = 0;
	if (mts_domain_create(&ha, &domid, false, 0) < 0 || mts_vif_add(&ha, domid, 0, MACS[0]) < 0)
		return;
	o.domid = domid;
	cur = tb_start(&o);
	if (!cur || mts_guest_start(g, &ha, domid, ns, e2e_tmpdir(), compat ? extra_compat : extra_fixed) < 0) {
		CHECK(false, "%s: start", mode);
		return;
	}
	e2e_atexit_guest(g);
	CHECK(e2e_wait_control(g, "trace-norm", "notify_peers", 1, 5000), "%s: connected", mode);
	e2e_sh("ip -n %s link set eth0 up", ns);
	e2e_wait_control(g, "trace-norm", "netif_tx_start_queue", 8, 3000);

	sender = e2e_send_seq(ns, "eth0", MAC, 0, count, PPS, sentmap);
	usleep(500000);
	/* Migrate back and forth while it sends; in linux-5.13 mode until the
	 * race shows (it needs a transmit in the window). */
	while (done < MAX_MIGRATIONS && !getenv("PVNET_LOAD_NO_MIGRATION")) {
		struct mts_host *dst = done % 2 == 0 ? &hb : &ha;
		if (mts_migrate(g, dst, DEVIDS, MACS, 1, prepare, NULL, stop_old, NULL) < 0) {
			CHECK(false, "%s: migration %u", mode, done + 1);
			break;
		}
		done++;
		e2e_wait_control(g, "state", "backend_state=Connected", 1, 5000);
		race = e2e_state_num(g, "race");
		usleep(300000);
		if (done >= 4 && (!compat || race > 0))
			break;
	}
	e2e_wait_child(sender);
	usleep(500000);   /* let the last frames drain */
	dups += tb_seq_merge(cur, seen);
	for (uint32_t i = 0; i < count; i++) {
		if (!(sentmap[i >> 3] >> (i & 7) & 1))
			continue;
		sent++;
		if (!(seen[i >> 3] >> (i & 7) & 1)) {
			if (!lost)
				first_lost = i;
			lost++;
		}
	}
	race = e2e_state_num(g, "race");
	tapdrops = e2e_sh_num("ip netns exec %s cat /sys/class/net/eth0/statistics/tx_dropped", ns);
	printf("# %s: %u migrations, %u frames accepted by eth0, %u lost (first %u), race %ld, "
	       "netfront tx_dropped %ld, re-posted %ld, TAP overflow %ld, duplicates %llu\n",
	       mode, done, sent, lost, first_lost, race, stats_sum(g, "tx_dropped"),
	       stats_sum(g, "tx_reposted"), tapdrops, (unsigned long long)dups);
	if (lost && getenv("PVNET_LOAD_DEBUG")) {
		char *st = mts_control(g, "stats");
		printf("# stats: %s", st ? st : "-");
		free(st);
	}
	CHECK(sent > count / 2, "%s: the sender ran (%u frames accepted)", mode, sent);
	if (compat) {
		CHECK(race > 0, "%s: transmits hit queues being rebuilt: race counter %ld > 0", mode, race);
		CHECK(lost > 0, "%s: and frames were lost (%u)", mode, lost);
	} else {
		CHECK(race == 0, "%s: the race counter stays at 0", mode);
		CHECK(stats_sum(g, "tx_dropped") == 0, "%s: netfront dropped nothing", mode);
		CHECK(lost == 0 || (tapdrops > 0 && lost <= (uint32_t)tapdrops),
		      "%s: no transmitted frame lost (%u lost, TAP overflow %ld)", mode, lost, tapdrops);
	}
	CHECK(e2e_state_num(g, "broken") == 0, "%s: never broken", mode);
	CHECK(mts_guest_stop(g) == 0, "%s: stops cleanly", mode);
	tb_stop(cur);
	cur = NULL;
	mts_domain_destroy(g->host, g->domid);
	e2e_free_bitmap(sentmap, count);
}

int main(void)
{
	e2e_require();
	seen = calloc(TB_SEQ_MAX / 8, 1);
	if (!seen || mts_host_start(&ha, e2e_tmpdir(), "hostA") < 0 ||
	    mts_host_start(&hb, e2e_tmpdir(), "hostB") < 0) {
		CHECK(false, "start two hosts");
		return e2e_done();
	}
	e2e_atexit_host(&ha);
	e2e_atexit_host(&hb);
	run(true);
	run(false);
	free(seen);
	return e2e_done();
}
