/*
 * toolstack/probe.h — measuring what a migration does to the network.
 *
 * What: raw Ethernet probe streams (EtherType 0x88B5, IEEE local
 * experimental) in both directions between the switch's bridge and the
 * guest's eth0, each frame carrying a run id, a sequence number and its send
 * time; receivers record every arrival, so loss in each direction, duplicates
 * and the longest gap (the blackout seen by that direction) are exact. A
 * capture on the destination host's bridge records when the guest's
 * gratuitous ARP / unsolicited NA and its first other frame appear there.
 * Each role runs in a child process that has entered the right network
 * namespace; results live in shared memory the parent reads.
 * Thread: single-threaded CLI; children are forked.
 * Errors: 0 / -errno.
 */
#ifndef PVNET_TOOLSTACK_PROBE_H
#define PVNET_TOOLSTACK_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROBE_ETHERTYPE 0x88B5
#define PROBE_MAX_SEQ 200000

struct probe_dir {
	uint64_t sent, received, duplicates;
	uint64_t max_gap_ns;          /* longest interval between consecutive arrivals */
	uint64_t gap_start_ns;        /* last arrival before that gap (CLOCK_MONOTONIC) */
	uint64_t gap_end_ns;          /* first arrival after it */
	uint64_t last_rx_ns;
};

struct probe_capture {
	uint64_t garp_ns;      /* first gratuitous ARP from the guest MAC, 0 if none */
	uint64_t na_ns;        /* first unsolicited neighbour advertisement */
	uint64_t first_reply_ns; /* first ICMP/ICMPv6 echo reply from the guest MAC */
	uint64_t first_ip_ns;    /* first other IPv4/IPv6 frame from the guest MAC */
	uint64_t garps, nas;
};

struct probe_results {
	struct probe_dir to_guest, from_guest;
	struct probe_capture dest;
	volatile uint64_t dest_since_ns; /* the capture counts frames from then on (0: none) */
	volatile int stop;
	volatile int ready;
	uint8_t seen[2][PROBE_MAX_SEQ / 8];
};

struct probe_session {
	struct probe_results *res;
	pid_t pids[6];
	unsigned npids;
};

struct probe_config {
	const char *switch_ns;  /* netns holding bridge br0 */
	const char *guest_ns;   /* netns holding the guest's ethN */
	const char *guest_if;   /* "eth0" */
	const char *dest_ns;    /* destination host netns (capture on xenbr0), or NULL */
	uint8_t guest_mac[6];
	unsigned interval_us;   /* between probes, each direction (default 200) */
};

int probe_start(struct probe_session *s, const struct probe_config *cfg);
/* Stop sending, let stragglers arrive for `drain_ms`, reap children. */
void probe_stop(struct probe_session *s, int drain_ms);
void probe_free(struct probe_session *s);
int probe_parse_mac(const char *s, uint8_t mac[6]);

#endif
