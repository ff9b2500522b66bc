/*
 * netback/storm.h — event storm throttling for a frontend's event channels.
 *
 * What: an event is "spurious" when it brings no new work (the ring's
 * producer index did not move since we last looked), as Linux's lateeoi
 * handlers judge it (xenvif_*_interrupt -> XEN_EOI_FLAG_SPURIOUS). Like
 * Linux's lateeoi core, only consecutive spurious events count and any event
 * with work resets the count; the port's unmask is delayed by
 * 1 ms << (n - 2) after the n-th consecutive spurious event (n >= 2), capped
 * at NB_STORM_MAX_DELAY_MS. Unlike Linux (which only throttles), the
 * NB_STORM_FATAL-th consecutive spurious event disables the vif ("event
 * storm"): about 2 s of notifications without work. A well-behaved frontend
 * only notifies when it publishes requests past our event index, so it
 * never produces two spurious events in a row except by a rare race.
 * Thread: one nb_storm per port, used by the thread that owns the port.
 */
#ifndef PVNET_NETBACK_STORM_H
#define PVNET_NETBACK_STORM_H

#include <stdbool.h>
#include <stdint.h>

#define NB_STORM_FATAL 16u
/* Wake-ups in a row that bring no event at all (our doorbell rung without
 * the pending flag, pv_evtchn_attach): a well-behaved frontend leaves at
 * most one per port in a row; these cannot be throttled by masking. */
#define NB_EMPTY_WAKES_FATAL 64u
#define NB_STORM_MAX_DELAY_MS 256u
#define NB_STORM_IS_FATAL UINT64_MAX

struct nb_storm {
	unsigned consecutive;  /* consecutive spurious events */
	uint64_t total;        /* spurious events since connect (statistics) */
};

/* Account one event; returns the delay in ns before the port may be
 * unmasked (0: now), or NB_STORM_IS_FATAL. */
uint64_t nb_storm_event(struct nb_storm *s, bool spurious);

#endif
