/*
 * guest/tests/testback.h — a small vif backend for the guest runtime's tests,
 * which can misbehave on purpose.
 *
 * What: for one vif of one domain on one mts_host, as dom0: writes the
 * features Linux netback writes and goes InitWait; on frontend Connected
 * reads the ring and event-channel keys (flat or queue-N/), binds the
 * channels and goes Connected; answers tx requests (recording the frames and
 * the sequence numbers of test frames) and delivers injected frames on rx.
 * It touches guest memory only through grant copies (never a mapping), so a
 * guest that moves away or dies costs it nothing but failed copies. With a
 * fault set it breaks the protocol once, in the way named (tests of
 * "Disabled for further use").
 * Thread: the backend runs in its own thread; tb_* calls from one other
 * thread.
 * Errors: NULL / -errno.
 */
#ifndef PVNET_GUEST_TESTS_TESTBACK_H
#define PVNET_GUEST_TESTS_TESTBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/tests/minitoolstack.h"

enum tb_fault {
	TB_OK = 0,
	TB_TX_BAD_ID,          /* a tx response whose id is out of range */
	TB_TX_INACTIVE,        /* a tx response for an id that is not pending */
	TB_TX_PROD_JUMP,       /* tx rsp_prod far beyond the requests */
	TB_RX_OVERSIZE,        /* rx response whose data runs past its page */
	TB_RX_TOO_MANY,        /* an rx packet of 20 slots */
	TB_RX_BAD_ID,          /* rx response id not matching its slot */
	TB_RX_PROD_BACKWARDS,  /* rx rsp_prod moved back */
	TB_EVENT_STORM,        /* notifications without any work, without end */
	TB_RAW_WAKES,          /* the frontend's doorbell rung without the pending
				* flag: wake-ups that carry no event, without end */
	TB_KEEP_MAPPED,        /* answer a tx request while still mapping its grant */
	TB_NEVER_CONNECT,      /* stay in InitWait */
	TB_VANISH,             /* remove the backend directory once connected */
	TB_STATE_9,            /* once connected: state "9" (no such state), then Closing */
	TB_CLOSE,              /* go Closing once connected */
	TB_NO_RX_COPY,         /* no feature-rx-copy */
	TB_TX_NULL,            /* answer a tx data request with NETIF_RSP_NULL */
	TB_RX_KEEP_MAPPED,     /* answer a 2-slot rx packet while mapping its first page */
	TB_TX_ERROR_SLOTS,     /* answer the first multi-slot tx packet with NETIF_RSP_ERROR
				* on every one of its data slots (legitimate: a dropped frame) */
};

struct tb_opts {
	struct mts_host *host;
	uint32_t domid;
	unsigned devid;
	unsigned max_queues;   /* multi-queue-max-queues (0: key absent) */
	bool split;            /* feature-split-event-channels */
	enum tb_fault fault;
	unsigned fault_after;  /* tx frames seen before the fault (tx/rx faults) */
};

struct tb_stats {
	uint64_t tx_frames, tx_bytes, seq_frames, seq_dups, rx_frames;
	uint64_t connects;
	unsigned queues;       /* connected queues */
	int state;             /* our XenbusState */
	bool fault_done;
};

struct tb;
struct tb *tb_start(const struct tb_opts *o);
void tb_stop(struct tb *b);
void tb_get_stats(struct tb *b, struct tb_stats *s);
/* Wait until our state is `state` (ms). 0 or -ETIMEDOUT. */
int tb_wait_state(struct tb *b, int state, int timeout_ms);
/* Queue a frame for the guest (delivered on rx queue 0). */
int tb_inject(struct tb *b, const void *frame, size_t len);

/* Sequence-numbered test frames: ethertype 0x88b5, "PVSQ", seq (be32). */
#define TB_SEQ_ETHERTYPE 0x88b5
#define TB_SEQ_MAX (1u << 22)
size_t tb_build_seq_frame(uint8_t *buf, size_t len, const uint8_t src[6], uint32_t seq);
/* Was seq received (by this backend)? */
bool tb_seq_seen(struct tb *b, uint32_t seq);
/* OR this backend's received-seq bitmap (TB_SEQ_MAX bits) into dst;
 * returns how many of its seqs dst already had (received twice). */
uint64_t tb_seq_merge(struct tb *b, uint8_t *dst);

#endif
