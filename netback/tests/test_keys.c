/* Unit tests for netback/keys: parsing of the xenstore values netback reads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "netback/keys.h"

static void test_backend_path(void **s)
{
	const char *pre = "/local/domain/0/backend/vif/";
	uint32_t d = 0, v = 0;

	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/5", pre, &d, &v), 1);
	assert_int_equal(d, 5);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/5/0", pre, &d, &v), 2);
	assert_int_equal(v, 0);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/17/3/state", pre, &d, &v), 3);
	assert_int_equal(d, 17);
	assert_int_equal(v, 3);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/17/3/queue-0/x", pre, &d, &v), 4);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif", pre, &d, &v), -EINVAL);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vbd/1/2", pre, &d, &v), -EINVAL);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/x/0", pre, &d, &v), -EINVAL);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/1/-1", pre, &d, &v), -EINVAL);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/32752/0", pre, &d, &v), -EINVAL);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/1/100000", pre, &d, &v), -EINVAL);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif//0", pre, &d, &v), -EINVAL);
	assert_int_equal(nb_parse_backend_path("/local/domain/0/backend/vif/1/", pre, &d, &v), -EINVAL);
}

static void test_read_unsigned(void **s)
{
	assert_int_equal(nb_read_unsigned("1", 0), 1);
	assert_int_equal(nb_read_unsigned("0", 7), 0);
	assert_int_equal(nb_read_unsigned(NULL, 7), 7);
	assert_int_equal(nb_read_unsigned("", 7), 7);
	assert_int_equal(nb_read_unsigned("yes", 7), 7);
	assert_int_equal(nb_read_unsigned("8 queues", 1), 8);
	assert_int_equal(nb_read_unsigned("99999999999999999999999", 3), 3);
}

static void test_strict(void **s)
{
	uint64_t v;

	assert_int_equal(nb_parse_strict("4294967295", UINT32_MAX, &v), 0);
	assert_int_equal(v, UINT32_MAX);
	assert_int_equal(nb_parse_strict("4294967296", UINT32_MAX, &v), -ERANGE);
	assert_int_equal(nb_parse_strict("12 ", UINT32_MAX, &v), -EINVAL);
	assert_int_equal(nb_parse_strict("-1", UINT32_MAX, &v), -EINVAL);
	assert_int_equal(nb_parse_strict("", UINT32_MAX, &v), -EINVAL);
	assert_int_equal(nb_parse_strict(NULL, UINT32_MAX, &v), -EINVAL);
}

static void test_paths_and_names(void **s)
{
	char longp[1100];

	assert_int_equal(nb_check_xs_path("/local/domain/5/device/vif/0"), 0);
	assert_int_equal(nb_check_xs_path("local/domain/5"), -EINVAL);
	assert_int_equal(nb_check_xs_path("/local//domain"), -EINVAL);
	assert_int_equal(nb_check_xs_path("/local/domain/"), -EINVAL);
	assert_int_equal(nb_check_xs_path("/local/do main"), -EINVAL);
	assert_int_equal(nb_check_xs_path("/"), -EINVAL);
	assert_int_equal(nb_check_xs_path(""), -EINVAL);
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(nb_check_xs_path(longp), -EINVAL);

	assert_int_equal(nb_check_ifname("xenbr0"), 0);
	assert_int_equal(nb_check_ifname("br-lan.5"), 0);
	assert_int_equal(nb_check_ifname(""), -EINVAL);
	assert_int_equal(nb_check_ifname("0123456789abcdef"), -EINVAL);
	assert_int_equal(nb_check_ifname("a/b"), -EINVAL);
	assert_int_equal(nb_check_ifname("a b"), -EINVAL);
	assert_int_equal(nb_check_ifname(".."), -EINVAL);
}

static void test_mac_rate(void **s)
{
	uint8_t m[6];
	uint64_t b, u;

	assert_int_equal(nb_parse_mac("00:16:3e:0A:bc:ff", m), 0);
	assert_int_equal(m[0], 0x00);
	assert_int_equal(m[3], 0x0a);
	assert_int_equal(m[5], 0xff);
	assert_int_equal(nb_parse_mac("0:16:3e:a:bc:f", m), 0);
	assert_int_equal(m[4], 0xbc);
	assert_int_equal(nb_parse_mac("00:16:3e:0a:bc", m), -EINVAL);
	assert_int_equal(nb_parse_mac("00:16:3e:0a:bc:ff:00", m), -EINVAL);
	assert_int_equal(nb_parse_mac("001:16:3e:0a:bc:ff", m), -EINVAL);
	assert_int_equal(nb_parse_mac("", m), -EINVAL);

	assert_int_equal(nb_parse_rate("10000000,50000", &b, &u), 0);
	assert_int_equal(b, 10000000);
	assert_int_equal(u, 50000);
	assert_int_equal(nb_parse_rate("100", &b, &u), -EINVAL);
	assert_int_equal(nb_parse_rate(",5", &b, &u), -EINVAL);
	assert_int_equal(nb_parse_rate("5,", &b, &u), -EINVAL);
	assert_int_equal(nb_parse_rate("5,x", &b, &u), -EINVAL);
}

static void test_num_queues(void **s)
{
	char msg[128];

	assert_int_equal(nb_check_num_queues(1, 8, msg, sizeof(msg)), 0);
	assert_int_equal(nb_check_num_queues(8, 8, msg, sizeof(msg)), 0);
	assert_int_equal(nb_check_num_queues(9, 8, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "guest requested 9 queues, exceeding the maximum of 8.");
	assert_int_equal(nb_check_num_queues(0, 8, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "guest requested 0 queues");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_path),
		cmocka_unit_test(test_read_unsigned),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_paths_and_names),
		cmocka_unit_test(test_mac_rate),
		cmocka_unit_test(test_num_queues),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
