/*
 * Backend xenbus state machine (see xenbus.h). The transition table is the
 * one in Linux's set_backend_state comment:
 *
 *   Initialising -> InitWait -> Connected
 *          \           ^   \          |
 *           \          |    \         |
 *            V         |     V        V
 *             Closed  <-->  Closing
 */
#include "netback/xenbus.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

int nb_xb_target(enum xenbus_state fe, bool online, enum xenbus_state *target,
		 enum nb_xb_fe_action *what)
{
	*what = NB_FE_WALK;
	switch (fe) {
	case XenbusStateInitialising:
		*target = XenbusStateInitWait;
		return 0;
	case XenbusStateInitialised:
		*what = NB_FE_IGNORE;
		return 0;
	case XenbusStateConnected:
		*target = XenbusStateConnected;
		return 0;
	case XenbusStateReconfiguring:
		*what = NB_FE_RECONFIGURE;
		return 0;
	case XenbusStateClosing:
		*target = XenbusStateClosing;
		return 0;
	case XenbusStateClosed:
		*target = XenbusStateClosed;
		if (!online)
			*what = NB_FE_REMOVE;
		return 0;
	case XenbusStateUnknown:
		*target = XenbusStateClosed;
		*what = NB_FE_REMOVE;
		return 0;
	default: /* InitWait, Reconfigured, anything else */
		return -EINVAL;
	}
}

int nb_xb_step(enum xenbus_state cur, enum xenbus_state target, struct nb_xb_step *step)
{
	step->action = NB_XB_NONE;
	switch (cur) {
	case XenbusStateInitialising:
		switch (target) {
		case XenbusStateInitWait:
		case XenbusStateConnected:
		case XenbusStateClosing:
			step->next = XenbusStateInitWait;
			return 0;
		case XenbusStateClosed:
			step->next = XenbusStateClosed;
			return 0;
		default:
			return -EINVAL;
		}
	case XenbusStateClosed:
		switch (target) {
		case XenbusStateInitWait:
		case XenbusStateConnected:
			step->next = XenbusStateInitWait;
			return 0;
		case XenbusStateClosing:
			step->next = XenbusStateClosing;
			return 0;
		default:
			return -EINVAL;
		}
	case XenbusStateInitWait:
		switch (target) {
		case XenbusStateConnected:
			step->next = XenbusStateConnected;
			step->action = NB_XB_CONNECT;
			return 0;
		case XenbusStateClosing:
		case XenbusStateClosed:
			step->next = XenbusStateClosing;
			return 0;
		default:
			return -EINVAL;
		}
	case XenbusStateConnected:
		switch (target) {
		case XenbusStateInitWait:
		case XenbusStateClosing:
		case XenbusStateClosed:
			step->next = XenbusStateClosing;
			step->action = NB_XB_DISCONNECT;
			return 0;
		default:
			return -EINVAL;
		}
	case XenbusStateClosing:
		switch (target) {
		case XenbusStateInitWait:
		case XenbusStateConnected:
		case XenbusStateClosed:
			step->next = XenbusStateClosed;
			return 0;
		default:
			return -EINVAL;
		}
	default:
		return -EINVAL;
	}
}

int nb_xb_walk(enum xenbus_state cur, enum xenbus_state target, struct nb_xb_step *steps,
	       unsigned max)
{
	unsigned n = 0;

	while (cur != target) {
		struct nb_xb_step st;

		/* The longest legal walk has 4 steps; more means a cycle. */
		if (n >= max || n >= 8 || nb_xb_step(cur, target, &st) < 0)
			return -EINVAL;
		steps[n++] = st;
		cur = st.next;
	}
	return (int)n;
}

const char *nb_xb_state_name(int state)
{
	static const char *const names[] = {
		[XenbusStateUnknown] = "Unknown",
		[XenbusStateInitialising] = "Initialising",
		[XenbusStateInitWait] = "InitWait",
		[XenbusStateInitialised] = "Initialised",
		[XenbusStateConnected] = "Connected",
		[XenbusStateClosing] = "Closing",
		[XenbusStateClosed] = "Closed",
		[XenbusStateReconfiguring] = "Reconfiguring",
		[XenbusStateReconfigured] = "Reconfigured",
	};

	if (state < 0 || (unsigned)state >= sizeof(names) / sizeof(names[0]))
		return "INVALID";
	return names[state];
}

int nb_xb_parse_state(const char *value)
{
	char *end;
	long v;

	if (!value)
		return XenbusStateUnknown;
	/* "%d" as xenbus_scanf reads it: optional spaces and sign, then digits;
	 * trailing text is ignored. */
	v = strtol(value, &end, 10);
	if (end == value)
		return XenbusStateUnknown;
	if (v < INT_MIN || v > INT_MAX)
		return XenbusStateUnknown;
	return (int)v;
}
