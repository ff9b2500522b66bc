/* Unit tests of guest/trace.c: the three renderings and the bounded ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/xen.h"
#include "guest/trace.h"

static void render(const struct gr_trace_rec *r, enum gr_trace_fmt f, char *buf, size_t len)
{
	size_t n = gr_trace_render(r, f, buf, len);
	assert_true(n > 0 && buf[n - 1] == '\n');
	buf[n - 1] = '\0';
}

static void test_klog(void **state)
{
	struct gr_trace_rec r;
	char buf[512];
	(void)state;

	gr_trace_rec_init(&r, GR_EV_TX_START_QUEUE, "device/vif/0", "eth0");
	r.queue = 0;
	r.t_ns = 4498441000ull;
	render(&r, GR_TRACE_KLOG, buf, sizeof(buf));
	assert_string_equal(buf, "[    4.498441] xen_netfront: netif_tx_start_queue() eth0, tx-0");

	r.ev = GR_EV_TX_STOP_QUEUE;
	r.queue = 7;
	r.t_ns = 273556973123ull;
	render(&r, GR_TRACE_KLOG, buf, sizeof(buf));
	assert_string_equal(buf, "[  273.556973] xen_netfront: netif_tx_stop_queue() eth0, tx-7");

	gr_trace_rec_init(&r, GR_EV_BACKEND_CHANGED, "device/vif/0", "eth0");
	r.state = XenbusStateInitWait;
	r.state2 = XenbusStateInitialising;
	r.t_ns = 445195381000ull;
	render(&r, GR_TRACE_KLOG, buf, sizeof(buf));
	assert_string_equal(buf, "[  445.195381] xen_netfront: netback_changed() device/vif/0 "
				 "backend_state=XenbusStateInitWait dev->state=XenbusStateInitialising");

	gr_trace_rec_init(&r, GR_EV_SUSPEND, NULL, NULL);
	r.t_ns = 445207978000ull;
	render(&r, GR_TRACE_KLOG, buf, sizeof(buf));
	assert_string_equal(buf, "[  445.207978] xen_manage: do_suspend() suspending xenstore...");

	gr_trace_rec_init(&r, GR_EV_OPEN, "device/vif/0", "eth0");
	r.how = GR_HOW_IOCTL;
	r.t_ns = 1060176411000ull;
	render(&r, GR_TRACE_KLOG, buf, sizeof(buf));
	assert_string_equal(buf, "[ 1060.176411] xen_netfront: xennet_open() eth0 by ioctl");

	gr_trace_rec_init(&r, GR_EV_BROKEN, "device/vif/0", "eth0");
	snprintf(r.text, sizeof(r.text), "tx response id out of range");
	r.t_ns = 1000;
	render(&r, GR_TRACE_KLOG, buf, sizeof(buf));
	assert_string_equal(buf, "[    0.000001] xen_netfront: eth0: Disabled for further use: tx response id out of range");
}

static void test_json_and_norm(void **state)
{
	struct gr_trace_rec r;
	char buf[1024];
	(void)state;

	gr_trace_rec_init(&r, GR_EV_BACKEND_CHANGED, "device/vif/0", "eth0");
	r.seq = 3;
	r.state = XenbusStateConnected;
	r.state2 = XenbusStateConnected;
	r.t_ns = 1500000;
	render(&r, GR_TRACE_JSON, buf, sizeof(buf));
	assert_string_equal(buf, "{\"seq\":3,\"t\":0.001500,\"event\":\"backend_changed\",\"node\":\"device/vif/0\","
				 "\"ifname\":\"eth0\",\"backend_state\":\"Connected\",\"state\":\"Connected\"}");
	render(&r, GR_TRACE_NORM, buf, sizeof(buf));
	assert_string_equal(buf, "backend_changed device/vif/0 Connected Connected");

	gr_trace_rec_init(&r, GR_EV_BROKEN, "device/vif/0", "");
	snprintf(r.text, sizeof(r.text), "quote \" back \\ ctl \x01");
	render(&r, GR_TRACE_JSON, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"reason\":\"quote \\\" back \\\\ ctl \\u0001\""));
	render(&r, GR_TRACE_NORM, buf, sizeof(buf));
	assert_string_equal(buf, "broken device/vif/0");

	gr_trace_rec_init(&r, GR_EV_CLOSE, "device/vif/0", "eth0");
	r.how = GR_HOW_NETLINK;
	render(&r, GR_TRACE_JSON, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"how\":\"netlink\""));
	render(&r, GR_TRACE_NORM, buf, sizeof(buf));
	assert_string_equal(buf, "close eth0 netlink");

	/* A tiny buffer truncates but stays a terminated line. */
	assert_int_equal(gr_trace_render(&r, GR_TRACE_KLOG, buf, 8), 7);
	assert_int_equal(buf[6], '\n');
	assert_int_equal(gr_trace_render(&r, GR_TRACE_KLOG, buf, 1), 0);
}

static void test_ring(void **state)
{
	struct gr_trace *t = gr_trace_new(16);
	struct gr_trace_rec r, out[32];
	unsigned n;
	(void)state;

	for (int i = 0; i < 40; i++) {
		gr_trace_rec_init(&r, GR_EV_TX_WAKE_QUEUE, "device/vif/0", "eth0");
		r.queue = i;
		gr_trace_emit(t, &r);
		assert_int_equal(r.seq, (uint64_t)i + 1);
	}
	assert_int_equal(gr_trace_last_seq(t), 40);
	assert_int_equal(gr_trace_dropped(t), 24);
	n = gr_trace_snapshot(t, 0, out, 32);
	assert_int_equal(n, 16);
	assert_int_equal(out[0].seq, 25);
	assert_int_equal(out[15].queue, 39);
	n = gr_trace_snapshot(t, 37, out, 32);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].seq, 38);
	n = gr_trace_snapshot(t, 40, out, 32);
	assert_int_equal(n, 0);
	assert_true(out[0].t_ns <= out[1].t_ns);
	gr_trace_free(t);
}

static void test_norm_filter(void **state)
{
	struct gr_trace_rec r;
	(void)state;

	gr_trace_rec_init(&r, GR_EV_BACKEND_CHANGED, "device/vif/0", "");
	r.state = XenbusStateInitialising;
	assert_false(gr_trace_norm_keep(&r));
	r.state = XenbusStateInitWait;
	assert_true(gr_trace_norm_keep(&r));
	r.state = XenbusStateUnknown;
	assert_false(gr_trace_norm_keep(&r));
	r.ev = GR_EV_PROBE;
	assert_true(gr_trace_norm_keep(&r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_klog),
		cmocka_unit_test(test_json_and_norm),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_norm_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
