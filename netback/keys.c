/*
 * Xenstore value parsing and feature negotiation (see keys.h).
 */
#include "netback/keys.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_tun.h>

#include "common/util.h"

static int parse_component(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint32_t v = 0;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(s[i] - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

int nb_parse_backend_path(const char *path, const char *prefix, uint32_t *domid, uint32_t *devid)
{
	size_t plen = strlen(prefix);
	const char *p, *slash;
	int depth = 1;

	if (strncmp(path, prefix, plen) != 0)
		return -EINVAL;
	p = path + plen;
	slash = strchr(p, '/');
	if (parse_component(p, slash ? (size_t)(slash - p) : strlen(p), DOMID_FIRST_RESERVED - 1, domid) < 0)
		return -EINVAL;
	if (!slash)
		return depth;
	p = slash + 1;
	slash = strchr(p, '/');
	if (parse_component(p, slash ? (size_t)(slash - p) : strlen(p), NB_DEVID_MAX, devid) < 0)
		return -EINVAL;
	depth = 2;
	for (; slash; slash = strchr(slash + 1, '/'))
		depth++;
	return depth;
}

unsigned nb_read_unsigned(const char *value, unsigned dflt)
{
	unsigned long v;
	char *end;

	if (!value)
		return dflt;
	errno = 0;
	v = strtoul(value, &end, 10);
	if (end == value || errno == ERANGE)
		return dflt;
	return (unsigned)v;
}

int nb_parse_strict(const char *value, uint64_t max, uint64_t *out)
{
	if (!value)
		return -EINVAL;
	return pv_parse_u64(value, max, out);
}

int nb_check_xs_path(const char *path)
{
	size_t n;

	if (!path || path[0] != '/')
		return -EINVAL;
	n = strlen(path);
	if (n < 2 || n > 1024 || path[n - 1] == '/')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = path[i];
		if (!(isalnum((unsigned char)c) || c == '-' || c == '/' || c == '_' || c == '@'))
			return -EINVAL;
		if (c == '/' && path[i + 1] == '/')
			return -EINVAL;
	}
	return 0;
}

int nb_check_ifname(const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strlen(name);
	if (n == 0 || n > 15 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (name[i] == '/' || name[i] == ':' || isspace((unsigned char)name[i]) ||
		    !isprint((unsigned char)name[i]))
			return -EINVAL;
	return 0;
}

int nb_parse_mac(const char *value, uint8_t mac[6])
{
	const char *s = value;

	if (!value)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		unsigned v = 0;
		int nd = 0;

		while (isxdigit((unsigned char)*s) && nd < 2) {
			char c = (char)tolower((unsigned char)*s++);
			v = v * 16 + (unsigned)(isdigit((unsigned char)c) ? c - '0' : c - 'a' + 10);
			nd++;
		}
		if (nd == 0 || *s != (i == 5 ? '\0' : ':'))
			return -EINVAL;
		mac[i] = (uint8_t)v;
		s++;
	}
	return 0;
}

int nb_parse_rate(const char *value, uint64_t *bytes, uint64_t *usec)
{
	const char *comma;
	char num[24];
	size_t n;

	if (!value || !(comma = strchr(value, ',')))
		return -EINVAL;
	n = (size_t)(comma - value);
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, value, n);
	num[n] = '\0';
	if (pv_parse_u64(num, UINT64_MAX, bytes) < 0 || pv_parse_u64(comma + 1, UINT64_MAX, usec) < 0)
		return -EINVAL;
	return 0;
}

int nb_check_num_queues(unsigned requested, unsigned max, char *msg, size_t msglen)
{
	if (requested > max) {
		snprintf(msg, msglen, "guest requested %u queues, exceeding the maximum of %u.",
			 requested, max);
		return -EINVAL;
	}
	if (requested == 0) {
		snprintf(msg, msglen, "guest requested 0 queues");
		return -EINVAL;
	}
	return 0;
}

void nb_vif_caps(const struct nb_fe_flags *f, unsigned mtu, struct nb_vif_caps *caps)
{
	struct nb_rx_caps *rx = &caps->rx;
	bool ip_csum = !f->no_csum_offload;

	memset(caps, 0, sizeof(*caps));
	rx->sg = f->sg;
	rx->csum_v4 = ip_csum;
	rx->csum_v6 = f->ipv6_csum;
	/* The netdev core drops TSO without SG or without the checksum offload
	 * of its family (netdev_fix_features); xenvif_fix_features drops what
	 * the frontend did not ask for. */
	rx->gso_tcpv4 = f->gso_tcpv4 && f->sg && ip_csum;
	rx->gso_tcpv6 = f->gso_tcpv6 && f->sg && f->ipv6_csum;
	/* xenvif_carrier_on: no SG -> MTU at most ETH_DATA_LEN. */
	caps->mtu = (!f->sg && mtu > NB_MTU_NO_SG) ? NB_MTU_NO_SG : mtu;
	rx->max_frame = caps->mtu + NB_ETH_FRAME_OVERHEAD;
	/* The TAP may hand us partial checksums whenever the frontend takes one
	 * family; the other family is completed in software (rxplan). */
	if (rx->csum_v4 || rx->csum_v6)
		caps->tun_flags |= TUN_F_CSUM;
	if (rx->gso_tcpv4)
		caps->tun_flags |= TUN_F_TSO4;
	if (rx->gso_tcpv6)
		caps->tun_flags |= TUN_F_TSO6;
	caps->drain_ms = f->rx_notify ? 10000 : 30;
	caps->stall_ms = f->rx_notify ? 60000 : 0;
}
