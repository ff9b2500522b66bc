/* Unit tests for netback/xenbus: Linux netback's state walks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "netback/storm.h"
#include "netback/xenbus.h"

/* Walk and render "A>B>C" with actions as "+" (connect) / "-" (disconnect). */
static const char *walk(enum xenbus_state from, enum xenbus_state to)
{
	static char buf[256];
	struct nb_xb_step st[8];
	int n = nb_xb_walk(from, to, st, 8);

	if (n < 0)
		return "invalid";
	strcpy(buf, nb_xb_state_name(from));
	for (int i = 0; i < n; i++) {
		strcat(buf, st[i].action == NB_XB_CONNECT ? ">+" : st[i].action == NB_XB_DISCONNECT ? ">-" : ">");
		strcat(buf, nb_xb_state_name(st[i].next));
	}
	return buf;
}

static void test_walks(void **s)
{
	/* Probe, then the frontend's Initialising. */
	assert_string_equal(walk(XenbusStateInitialising, XenbusStateInitWait), "Initialising>InitWait");
	/* Frontend Connected. */
	assert_string_equal(walk(XenbusStateInitWait, XenbusStateConnected), "InitWait>+Connected");
	/* Frontend restarted (back to Initialising while we are Connected). */
	assert_string_equal(walk(XenbusStateConnected, XenbusStateInitWait),
			    "Connected>-Closing>Closed>InitWait");
	/* Frontend Connected again straight from Closed. */
	assert_string_equal(walk(XenbusStateClosed, XenbusStateConnected), "Closed>InitWait>+Connected");
	/* Frontend Closing / Closed. */
	assert_string_equal(walk(XenbusStateConnected, XenbusStateClosing), "Connected>-Closing");
	assert_string_equal(walk(XenbusStateConnected, XenbusStateClosed), "Connected>-Closing>Closed");
	assert_string_equal(walk(XenbusStateInitWait, XenbusStateClosed), "InitWait>Closing>Closed");
	assert_string_equal(walk(XenbusStateClosing, XenbusStateConnected), "Closing>Closed>InitWait>+Connected");
	assert_string_equal(walk(XenbusStateInitialising, XenbusStateClosed), "Initialising>Closed");
	assert_string_equal(walk(XenbusStateInitialising, XenbusStateConnected),
			    "Initialising>InitWait>+Connected");
	assert_string_equal(walk(XenbusStateClosed, XenbusStateClosing), "Closed>Closing");
	assert_string_equal(walk(XenbusStateConnected, XenbusStateConnected), "Connected");
	/* Targets Linux never asks for. */
	assert_string_equal(walk(XenbusStateInitWait, XenbusStateInitialising), "invalid");
	assert_string_equal(walk(XenbusStateClosed, XenbusStateInitialised), "invalid");
	assert_string_equal(walk(XenbusStateReconfiguring, XenbusStateClosed), "invalid");
}

static void test_frontend_targets(void **s)
{
	enum xenbus_state t = XenbusStateUnknown;
	enum nb_xb_fe_action a;

	assert_int_equal(nb_xb_target(XenbusStateInitialising, true, &t, &a), 0);
	assert_int_equal(t, XenbusStateInitWait);
	assert_int_equal(a, NB_FE_WALK);
	assert_int_equal(nb_xb_target(XenbusStateInitialised, true, &t, &a), 0);
	assert_int_equal(a, NB_FE_IGNORE);
	assert_int_equal(nb_xb_target(XenbusStateConnected, true, &t, &a), 0);
	assert_int_equal(t, XenbusStateConnected);
	assert_int_equal(nb_xb_target(XenbusStateClosing, true, &t, &a), 0);
	assert_int_equal(t, XenbusStateClosing);
	assert_int_equal(nb_xb_target(XenbusStateClosed, true, &t, &a), 0);
	assert_int_equal(t, XenbusStateClosed);
	assert_int_equal(a, NB_FE_WALK);
	assert_int_equal(nb_xb_target(XenbusStateClosed, false, &t, &a), 0);
	assert_int_equal(a, NB_FE_REMOVE);
	assert_int_equal(nb_xb_target(XenbusStateUnknown, true, &t, &a), 0);
	assert_int_equal(t, XenbusStateClosed);
	assert_int_equal(a, NB_FE_REMOVE);
	assert_int_equal(nb_xb_target(XenbusStateReconfiguring, true, &t, &a), 0);
	assert_int_equal(a, NB_FE_RECONFIGURE);
	assert_int_equal(nb_xb_target(XenbusStateInitWait, true, &t, &a), -EINVAL);
	assert_int_equal(nb_xb_target(XenbusStateReconfigured, true, &t, &a), -EINVAL);
	assert_int_equal(nb_xb_target(9, true, &t, &a), -EINVAL);
	assert_int_equal(nb_xb_target(-1, true, &t, &a), -EINVAL);
}

static void test_parse_state(void **s)
{
	assert_int_equal(nb_xb_parse_state("4"), XenbusStateConnected);
	assert_int_equal(nb_xb_parse_state("1"), XenbusStateInitialising);
	assert_int_equal(nb_xb_parse_state("6\n"), XenbusStateClosed);
	assert_int_equal(nb_xb_parse_state(""), XenbusStateUnknown);
	assert_int_equal(nb_xb_parse_state("x"), XenbusStateUnknown);
	assert_int_equal(nb_xb_parse_state(NULL), XenbusStateUnknown);
	assert_int_equal(nb_xb_parse_state("99999999999999999999"), XenbusStateUnknown);
	assert_int_equal(nb_xb_parse_state("12"), 12);
	assert_string_equal(nb_xb_state_name(4), "Connected");
	assert_string_equal(nb_xb_state_name(12), "INVALID");
	assert_string_equal(nb_xb_state_name(-3), "INVALID");
}

static void test_storm(void **s)
{
	struct nb_storm st = { 0 };
	uint64_t d;

	assert_int_equal(nb_storm_event(&st, false), 0);
	assert_int_equal(nb_storm_event(&st, true), 0);         /* 1st: no delay */
	assert_int_equal(nb_storm_event(&st, true), 1000000);   /* 2nd: 1 ms */
	assert_int_equal(nb_storm_event(&st, true), 2000000);   /* 3rd: 2 ms */
	assert_int_equal(nb_storm_event(&st, false), 0);        /* work resets */
	assert_int_equal(st.consecutive, 0);
	for (unsigned i = 1; i < NB_STORM_FATAL; i++) {
		d = nb_storm_event(&st, true);
		assert_true(d <= (uint64_t)NB_STORM_MAX_DELAY_MS * 1000000u);
	}
	assert_int_equal(d, (uint64_t)NB_STORM_MAX_DELAY_MS * 1000000u);
	assert_true(nb_storm_event(&st, true) == NB_STORM_IS_FATAL);
	assert_int_equal(st.total, 3 + NB_STORM_FATAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walks),
		cmocka_unit_test(test_frontend_targets),
		cmocka_unit_test(test_parse_state),
		cmocka_unit_test(test_storm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
