/*
 * libFuzzer target: the xenstore values a frontend (or a confused toolstack)
 * controls, through every parser netback applies to them: state, feature
 * flags and counts, ring refs and ports (strict), paths, MAC, rate, the
 * backend watch path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netback/keys.h"
#include "netback/xenbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	uint64_t a, b;
	uint32_t d, v;
	uint8_t mac[6];
	char msg[128];
	enum xenbus_state t;
	enum nb_xb_fe_action act;
	struct nb_xb_step steps[8];

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)nb_xb_target((enum xenbus_state)nb_xb_parse_state(s), size & 1, &t, &act);
	(void)nb_xb_walk((enum xenbus_state)(size % 9), (enum xenbus_state)nb_xb_parse_state(s), steps, 8);
	(void)nb_check_num_queues(nb_read_unsigned(s, 1), 8, msg, sizeof(msg));
	(void)nb_parse_strict(s, UINT32_MAX, &a);
	(void)nb_check_xs_path(s);
	(void)nb_check_ifname(s);
	(void)nb_parse_mac(s, mac);
	(void)nb_parse_rate(s, &a, &b);
	(void)nb_parse_backend_path(s, "/local/domain/0/backend/vif/", &d, &v);
	free(s);
	return 0;
}
