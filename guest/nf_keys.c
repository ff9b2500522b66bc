/*
 * The xenstore side of talk_to_netback that needs no I/O: parsing what the
 * backend and the toolstack wrote, and the exact key set Linux netfront
 * writes in its transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "guest/netfront.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int nf_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];

	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[i * 3]), lo = hexval(s[i * 3 + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':'))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, m, 6);
	return 0;
}

unsigned nf_parse_unsigned(const char *s, unsigned def)
{
	unsigned v;

	if (!s || pv_parse_uint(s, 0xFFFFFFFFu, &v) < 0)
		return def;
	return v;
}

static int kv_add(struct nf_kv *kv, unsigned max, unsigned *n, const char *prefix,
		  const char *key, unsigned value)
{
	if (*n >= max)
		return -ENOSPC;
	snprintf(kv[*n].key, sizeof(kv[*n].key), "%s%s", prefix, key);
	snprintf(kv[*n].value, sizeof(kv[*n].value), "%u", value);
	(*n)++;
	return 0;
}

int nf_build_keys(const struct nf_dev *d, unsigned nqueues, struct nf_kv *kv, unsigned max)
{
	static const char *const global[] = {
		"request-rx-copy", "feature-rx-notify", "feature-sg",
		"feature-gso-tcpv4", "feature-gso-tcpv6", "feature-ipv6-csum-offload",
	};
	unsigned n = 0;
	int r = 0;

	if (d->feat.have_max_queues)
		r |= kv_add(kv, max, &n, "", "multi-queue-num-queues", nqueues);
	for (unsigned i = 0; i < nqueues; i++) {
		const struct nf_queue *q = &d->queues[i];
		char prefix[24] = "";

		/* One queue: flat keys; several: queue-N/ only (netif.h). */
		if (nqueues > 1)
			snprintf(prefix, sizeof(prefix), "queue-%u/", i);
		r |= kv_add(kv, max, &n, prefix, "tx-ring-ref", q->tx_ring_ref);
		r |= kv_add(kv, max, &n, prefix, "rx-ring-ref", q->rx_ring_ref);
		if (q->tx_evtchn == q->rx_evtchn) {
			r |= kv_add(kv, max, &n, prefix, "event-channel", q->tx_evtchn);
		} else {
			r |= kv_add(kv, max, &n, prefix, "event-channel-tx", q->tx_evtchn);
			r |= kv_add(kv, max, &n, prefix, "event-channel-rx", q->rx_evtchn);
		}
	}
	/* Written whatever the netdev's own feature state, as Linux does. */
	for (unsigned i = 0; i < PV_ARRAY_SIZE(global); i++)
		r |= kv_add(kv, max, &n, "", global[i], 1);
	return r ? -ENOSPC : (int)n;
}
