#include "guest/announce.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/socket.h>

#include "netif/link.h"
#include "netif/offload.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

size_t gr_build_garp(uint8_t *buf, size_t len, const uint8_t mac[6], struct in_addr ip)
{
	uint8_t *a = buf + 14;

	if (len < GR_GARP_LEN)
		return 0;
	memset(buf, 0, GR_GARP_LEN);
	memset(buf, 0xff, 6);                  /* broadcast */
	memcpy(buf + 6, mac, 6);
	put16(buf + 12, ETHERTYPE_ARP);
	put16(a, 1);                           /* ARPHRD_ETHER */
	put16(a + 2, ETHERTYPE_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);                       /* ARPOP_REQUEST, as devinet sends */
	memcpy(a + 8, mac, 6);                 /* sender MAC */
	memcpy(a + 14, &ip, 4);                /* sender IP */
	/* target MAC stays zero */
	memcpy(a + 24, &ip, 4);                /* target IP = sender IP */
	return GR_GARP_LEN;
}

size_t gr_build_unsol_na(uint8_t *buf, size_t len, const uint8_t mac[6], const struct in6_addr *ip)
{
	static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 0x01 };
	uint8_t *ip6 = buf + 14, *icmp = buf + 54;
	uint32_t sum;
	uint8_t pseudo[8] = { 0 };

	if (len < GR_NA_LEN)
		return 0;
	memset(buf, 0, GR_NA_LEN);
	buf[0] = 0x33; buf[1] = 0x33; buf[5] = 0x01;  /* 33:33:00:00:00:01 */
	memcpy(buf + 6, mac, 6);
	put16(buf + 12, ETHERTYPE_IPV6);
	ip6[0] = 0x60;
	put16(ip6 + 4, 32);                    /* payload: NA 24 + option 8 */
	ip6[6] = 58;                           /* ICMPv6 */
	ip6[7] = 255;                          /* hop limit */
	memcpy(ip6 + 8, ip, 16);               /* source: the address itself */
	memcpy(ip6 + 24, all_nodes, 16);
	icmp[0] = 136;                         /* neighbour advertisement */
	icmp[4] = 0x20;                        /* Override; Router and Solicited clear */
	memcpy(icmp + 8, ip, 16);              /* target */
	icmp[24] = 2;                          /* target link-layer address */
	icmp[25] = 1;
	memcpy(icmp + 26, mac, 6);
	put16(pseudo + 2, 32);
	pseudo[7] = 58;
	sum = nif_csum_add(0, ip6 + 8, 32);
	sum = nif_csum_add(sum, pseudo, sizeof(pseudo));
	sum = nif_csum_add(sum, icmp, 32);
	put16(icmp + 2, (uint16_t)~nif_csum_fold(sum));
	return GR_NA_LEN;
}

int gr_announce_each(int ifindex, const uint8_t mac[6], gr_frame_fn fn, void *arg)
{
	struct nif_addr addrs[64];
	uint8_t frame[128];
	int n, sent = 0;

	n = nif_link_addrs(ifindex, addrs, 64);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		size_t len;
		uint16_t proto;

		if (addrs[i].family == AF_INET) {
			len = gr_build_garp(frame, sizeof(frame), mac, addrs[i].addr.v4);
			proto = ETHERTYPE_ARP;
		} else {
			if ((addrs[i].flags & IFA_F_TENTATIVE) && !(addrs[i].flags & IFA_F_OPTIMISTIC))
				continue;   /* skip until DAD completes, as Linux */
			len = gr_build_unsol_na(frame, sizeof(frame), mac, &addrs[i].addr.v6);
			proto = ETHERTYPE_IPV6;
		}
		if (len && fn(arg, frame, len, proto) == 0)
			sent++;
	}
	return sent;
}

struct send_ctx {
	int fd;
	struct sockaddr_ll sll;
	struct gr_announce_result *res;
};

static int send_one(void *arg, const uint8_t *frame, size_t len, uint16_t proto)
{
	struct send_ctx *c = arg;

	c->sll.sll_protocol = htons(proto);
	memcpy(c->sll.sll_addr, frame, 6);
	if (sendto(c->fd, frame, len, 0, (struct sockaddr *)&c->sll, sizeof(c->sll)) < 0) {
		c->res->failed++;
		c->res->last_err = -errno;
		return -1;
	}
	if (proto == ETHERTYPE_ARP)
		c->res->garp++;
	else
		c->res->na++;
	return 0;
}

int gr_announce(int ifindex, const uint8_t mac[6], struct gr_announce_result *res)
{
	struct send_ctx c = { .res = res };
	int r;

	memset(res, 0, sizeof(*res));
	c.fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (c.fd < 0)
		return -errno;
	c.sll.sll_family = AF_PACKET;
	c.sll.sll_ifindex = ifindex;
	c.sll.sll_halen = 6;
	r = gr_announce_each(ifindex, mac, send_one, &c);
	close(c.fd);
	return r < 0 ? r : (int)(res->garp + res->na);
}
