/*
 * Offload translation and header parsing. The parser accepts what Linux's
 * skb_checksum_setup accepts: Ethernet (+ up to two 802.1Q/802.1ad tags),
 * IPv4 without fragmentation, IPv6 with hop-by-hop/routing/destination
 * options headers (no fragment header), then TCP or UDP.
 */
#include "netif/offload.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#define ETH_HLEN_ 14u
#define ETHTYPE_IPV4 0x0800
#define ETHTYPE_IPV6 0x86DD
#define ETHTYPE_VLAN 0x8100
#define ETHTYPE_QINQ 0x88A8

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

int nif_parse_l4(const uint8_t *buf, size_t len, size_t frame_len, struct nif_l4info *out)
{
	size_t off = 12, l4 = 0;
	uint16_t type;
	uint8_t proto = 0;
	int tags = 0;

	if (len > frame_len)
		len = frame_len;
	if (frame_len < ETH_HLEN_)
		return -EINVAL;
	if (len < ETH_HLEN_)
		return -EMSGSIZE;
	type = be16(buf + off);
	off += 2;
	while (type == ETHTYPE_VLAN || type == ETHTYPE_QINQ) {
		if (++tags > 2)
			return -EPROTONOSUPPORT;
		if (frame_len < off + 4)
			return -EINVAL;
		if (len < off + 4)
			return -EMSGSIZE;
		type = be16(buf + off + 2);
		off += 4;
	}
	memset(out, 0, sizeof(*out));
	out->l3_off = (uint16_t)off;

	if (type == ETHTYPE_IPV4) {
		size_t ihl, tot;
		if (frame_len < off + 20)
			return -EINVAL;
		if (len < off + 20)
			return -EMSGSIZE;
		if ((buf[off] >> 4) != 4)
			return -EINVAL;
		ihl = (size_t)(buf[off] & 0xF) * 4;
		tot = be16(buf + off + 2);
		if (ihl < 20 || tot < ihl || off + tot > frame_len)
			return -EINVAL;
		/* More-fragments or a fragment offset: no L4 header to offload. */
		if (be16(buf + off + 6) & 0x3FFF)
			return -EPROTONOSUPPORT;
		proto = buf[off + 9];
		l4 = off + ihl;
		out->ipver = 4;
	} else if (type == ETHTYPE_IPV6) {
		size_t plen;
		int hops = 0;
		if (frame_len < off + 40)
			return -EINVAL;
		if (len < off + 40)
			return -EMSGSIZE;
		if ((buf[off] >> 4) != 6)
			return -EINVAL;
		plen = be16(buf + off + 4);
		if (off + 40 + plen > frame_len)
			return -EINVAL;
		proto = buf[off + 6];
		l4 = off + 40;
		while (proto == 0 || proto == 43 || proto == 60) {
			size_t elen;
			if (++hops > 8)
				return -EPROTONOSUPPORT;
			if (frame_len < l4 + 8)
				return -EINVAL;
			if (len < l4 + 8)
				return -EMSGSIZE;
			elen = ((size_t)buf[l4 + 1] + 1) * 8;
			proto = buf[l4];
			l4 += elen;
		}
		out->ipver = 6;
	} else {
		return -EPROTONOSUPPORT;
	}

	if (proto == IPPROTO_TCP) {
		size_t doff;
		if (frame_len < l4 + 20)
			return -EINVAL;
		if (len < l4 + 20)
			return -EMSGSIZE;
		doff = (size_t)(buf[l4 + 12] >> 4) * 4;
		if (doff < 20 || l4 + doff > frame_len)
			return -EINVAL;
		if (len < l4 + doff)
			return -EMSGSIZE;
		out->csum_offset = 16;
		out->hdr_len = (uint16_t)(l4 + doff);
	} else if (proto == IPPROTO_UDP) {
		if (frame_len < l4 + 8)
			return -EINVAL;
		if (len < l4 + 8)
			return -EMSGSIZE;
		out->csum_offset = 6;
		out->hdr_len = (uint16_t)(l4 + 8);
	} else {
		return -EPROTONOSUPPORT;
	}
	if (l4 > UINT16_MAX - 64)
		return -EINVAL;
	out->csum_start = (uint16_t)l4;
	out->l4proto = proto;
	return 0;
}

int nif_offload_from_vnet(const struct virtio_net_hdr *vh, struct nif_offload *o)
{
	memset(o, 0, sizeof(*o));
	if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		o->csum_blank = true;
		o->data_validated = true;
	} else if (vh->flags & VIRTIO_NET_HDR_F_DATA_VALID) {
		o->data_validated = true;
	}
	switch (vh->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		o->gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		o->gso_type = XEN_NETIF_GSO_TYPE_TCPV6;
		break;
	default: /* UDP, ECN: never enabled on our TAPs */
		return -EOPNOTSUPP;
	}
	if (vh->gso_size == 0)
		return -EINVAL;
	o->gso_size = vh->gso_size;
	return 0;
}

int nif_offload_to_vnet(const struct nif_offload *o, const uint8_t *hdrs, size_t hlen,
			size_t frame_len, struct virtio_net_hdr *vh)
{
	struct nif_l4info l4;
	int r;

	memset(vh, 0, sizeof(*vh));
	if (!o->csum_blank && o->gso_type == XEN_NETIF_GSO_TYPE_NONE) {
		if (o->data_validated)
			vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
		return 0;
	}
	/* GSO without csum_blank is caller's business (nif_csum_write_pseudo);
	 * here a GSO frame always travels as a partial checksum. */
	r = nif_parse_l4(hdrs, hlen, frame_len, &l4);
	if (r < 0)
		return r;
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->csum_start = l4.csum_start;
	vh->csum_offset = l4.csum_offset;
	if (o->gso_type == XEN_NETIF_GSO_TYPE_NONE)
		return 0;
	if (l4.l4proto != IPPROTO_TCP || o->gso_size == 0)
		return -EINVAL;
	if (o->gso_type == XEN_NETIF_GSO_TYPE_TCPV4 && l4.ipver == 4)
		vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	else if (o->gso_type == XEN_NETIF_GSO_TYPE_TCPV6 && l4.ipver == 6)
		vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	else
		return -EINVAL;
	vh->gso_size = o->gso_size;
	vh->hdr_len = l4.hdr_len;
	return 0;
}

uint16_t nif_offload_txflags(const struct nif_offload *o)
{
	uint16_t f = 0;
	if (o->csum_blank)
		f |= NETTXF_csum_blank | NETTXF_data_validated;
	else if (o->data_validated)
		f |= NETTXF_data_validated;
	if (o->gso_type != XEN_NETIF_GSO_TYPE_NONE)
		f |= NETTXF_extra_info;
	return f;
}

uint16_t nif_offload_rxflags(const struct nif_offload *o)
{
	uint16_t f = 0;
	if (o->csum_blank)
		f |= NETRXF_csum_blank | NETRXF_data_validated;
	else if (o->data_validated)
		f |= NETRXF_data_validated;
	if (o->gso_type != XEN_NETIF_GSO_TYPE_NONE)
		f |= NETRXF_extra_info;
	return f;
}

void nif_gso_extra_fill(const struct nif_offload *o, struct netif_extra_info *ex)
{
	memset(ex, 0, sizeof(*ex));
	ex->type = XEN_NETIF_EXTRA_TYPE_GSO;
	ex->flags = 0;
	ex->u.gso.size = o->gso_size;
	ex->u.gso.type = o->gso_type;
	ex->u.gso.pad = 0;
	ex->u.gso.features = 0;
}

static int gso_from_extra(const struct netif_extra_info *gso, struct nif_offload *o)
{
	if (!gso)
		return 0;
	if (gso->type != XEN_NETIF_EXTRA_TYPE_GSO || gso->u.gso.size == 0)
		return -EINVAL;
	if (gso->u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 && gso->u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6)
		return -EINVAL;
	o->gso_type = gso->u.gso.type;
	o->gso_size = gso->u.gso.size;
	return 0;
}

int nif_offload_from_txflags(uint16_t flags, const struct netif_extra_info *gso, struct nif_offload *o)
{
	memset(o, 0, sizeof(*o));
	o->csum_blank = flags & NETTXF_csum_blank;
	o->data_validated = (flags & (NETTXF_data_validated | NETTXF_csum_blank)) != 0;
	return gso_from_extra(gso, o);
}

int nif_offload_from_rxflags(uint16_t flags, const struct netif_extra_info *gso, struct nif_offload *o)
{
	memset(o, 0, sizeof(*o));
	o->csum_blank = flags & NETRXF_csum_blank;
	o->data_validated = (flags & (NETRXF_data_validated | NETRXF_csum_blank)) != 0;
	return gso_from_extra(gso, o);
}

uint32_t nif_csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t s = sum;

	while (len >= 2) {
		s += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 32)
		s = (s & 0xFFFFFFFFu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t nif_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)sum;
}

int nif_csum_complete_iov(const struct iovec *iov, int iovcnt, uint16_t csum_start, uint16_t csum_offset)
{
	size_t pos = 0, field = (size_t)csum_start + csum_offset;
	uint8_t *fp[2] = { NULL, NULL };
	uint32_t sum = 0;
	bool odd = false;
	uint8_t carry = 0;
	uint16_t c;

	for (int i = 0; i < iovcnt; i++) {
		uint8_t *b = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		for (int k = 0; k < 2; k++)
			if (field + (size_t)k >= pos && field + (size_t)k < pos + n)
				fp[k] = b + (field + (size_t)k - pos);
		if (pos + n > csum_start) {
			size_t skip = pos < csum_start ? csum_start - pos : 0;
			const uint8_t *d = b + skip;
			size_t len = n - skip;
			if (odd && len) {
				sum = nif_csum_add(sum, (uint8_t[2]){ carry, d[0] }, 2);
				d++;
				len--;
				odd = false;
			}
			sum = nif_csum_add(sum, d, len & ~(size_t)1);
			if (len & 1) {
				carry = d[len - 1];
				odd = true;
			}
		}
		pos += n;
	}
	if (!fp[0] || !fp[1] || csum_start >= pos)
		return -EINVAL;
	if (odd)
		sum = nif_csum_add(sum, (uint8_t[2]){ carry, 0 }, 2);
	/* The field took part in the sum with its pseudo-header seed. */
	c = (uint16_t)~nif_csum_fold(sum);
	*fp[0] = (uint8_t)(c >> 8);
	*fp[1] = (uint8_t)c;
	return 0;
}

int nif_csum_write_pseudo(uint8_t *hdrs, size_t hlen, size_t frame_len, const struct nif_l4info *l4)
{
	size_t field = (size_t)l4->csum_start + l4->csum_offset;
	uint32_t sum = 0, l4len;
	uint16_t c;

	if (field + 2 > hlen || l4->csum_start > frame_len)
		return -EINVAL;
	l4len = (uint32_t)(frame_len - l4->csum_start);
	if (l4->ipver == 4) {
		if ((size_t)l4->l3_off + 20 > hlen)
			return -EINVAL;
		sum = nif_csum_add(sum, hdrs + l4->l3_off + 12, 8); /* saddr, daddr */
	} else {
		if ((size_t)l4->l3_off + 40 > hlen)
			return -EINVAL;
		sum = nif_csum_add(sum, hdrs + l4->l3_off + 8, 32);
	}
	sum += l4->l4proto;
	sum += l4len & 0xFFFF;
	sum += l4len >> 16;
	c = nif_csum_fold(sum);
	hdrs[field] = (uint8_t)(c >> 8);
	hdrs[field + 1] = (uint8_t)c;
	return 0;
}
