/*
 * netback/xenbus.h — the backend's xenbus state machine, as Linux
 * xen-netback's frontend_changed() and set_backend_state() drive it.
 *
 * What: nb_xb_target() maps a frontend state to the backend state netback
 * walks to (and whether the device is to be removed); nb_xb_step() gives one
 * step of set_backend_state's shortest legal path
 *   Initialising -> InitWait -> Connected, Connected -> Closing (after a
 *   disconnect), Closing -> Closed, Closed -> InitWait (reconnect),
 *   InitWait -> Closing, Closed -> Closing, Initialising -> Closed
 * with the action to run before the step (connect before entering
 * Connected, disconnect when leaving it). The caller applies the steps until
 * the state equals the target; nb_xb_walk() lists them all (for tests/logs).
 * Thread: pure. Errors: nb_xb_target returns -EINVAL for a frontend state
 * Linux answers with xenbus_dev_fatal("saw state %d at frontend").
 */
#ifndef PVNET_NETBACK_XENBUS_H
#define PVNET_NETBACK_XENBUS_H

#include <stdbool.h>

#include "common/xen.h"

enum nb_xb_action {
	NB_XB_NONE = 0,
	NB_XB_CONNECT,     /* backend_connect() then switch to Connected */
	NB_XB_DISCONNECT,  /* backend_disconnect() then switch to Closing */
};

struct nb_xb_step {
	enum xenbus_state next;
	enum nb_xb_action action;
};

enum nb_xb_fe_action {
	NB_FE_WALK = 0,      /* walk to *target */
	NB_FE_IGNORE,        /* Initialised: Linux does nothing */
	NB_FE_RECONFIGURE,   /* Reconfiguring: answer Reconfigured (state node only) */
	NB_FE_REMOVE,        /* walk to Closed, then remove the device */
};

/* Frontend state -> what to do. `online` is the backend's `online` node
 * (Closed with online=0 removes the device, as does Unknown). */
int nb_xb_target(enum xenbus_state fe, bool online, enum xenbus_state *target,
		 enum nb_xb_fe_action *what);
/* One step from cur towards target (cur != target). -EINVAL for a pair
 * Linux BUG()s on (a target it never asks for). */
int nb_xb_step(enum xenbus_state cur, enum xenbus_state target, struct nb_xb_step *step);
/* All steps from cur to target; returns how many (<= max) or -EINVAL. */
int nb_xb_walk(enum xenbus_state cur, enum xenbus_state target, struct nb_xb_step *steps,
	       unsigned max);

const char *nb_xb_state_name(int state);
/* Parse a `state` node's value as xenbus_read_driver_state does: missing or
 * unparsable -> XenbusStateUnknown. Any integer is returned as is (the
 * caller's nb_xb_target rejects what it does not know). */
int nb_xb_parse_state(const char *value);

#endif
