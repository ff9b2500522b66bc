/*
 * Receive slot planning (see rxplan.h). Linux's xenvif_rx_skb fills slot 0
 * with data, puts the extras in the following slots, then the rest of the
 * data, one page per request, responses in the slots of their requests, and
 * sets csum/extra flags on the first response only and more_data on every
 * data response but the last.
 */
#include "netback/rxplan.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>

static unsigned div_round_up(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

void nb_rx_layout(const struct nb_rx_caps *c, bool hash, struct nb_rx_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->holes = hash ? 1 : 0;
	if (!c->sg) {
		l->npages = 1;
	} else if (c->gso_tcpv4 || c->gso_tcpv6) {
		l->holes++;
		l->npages = NB_RX_MAX_PAGES;
	} else {
		l->npages = div_round_up(c->max_frame, PV_PAGE_SIZE);
		if (l->npages < 1)
			l->npages = 1;
		if (l->npages > NB_RX_MAX_PAGES)
			l->npages = NB_RX_MAX_PAGES;
	}
	l->nreqs = l->npages + l->holes;
}

/* May the partial checksum travel as csum_blank? Only where netfront's
 * checksum_setup will find the same field. */
static bool csum_blank_ok(const struct nb_rx_caps *c, const struct virtio_net_hdr *vh,
			  const uint8_t *hdrs, size_t hlen, size_t frame_len)
{
	struct nif_l4info l4;

	if (nif_parse_l4(hdrs, hlen, frame_len, &l4) < 0)
		return false;
	if (l4.csum_start != vh->csum_start || l4.csum_offset != vh->csum_offset)
		return false;
	return l4.ipver == 4 ? c->csum_v4 : c->csum_v6;
}

int nb_rx_plan(const struct nb_rx_caps *c, const struct nb_rx_layout *l,
	       const struct virtio_net_hdr *vh, const uint8_t *hdrs, size_t hlen,
	       size_t frame_len, const struct netif_extra_info *hash, struct nb_rx_plan *p)
{
	bool gso;
	unsigned s = 0;
	size_t left = frame_len;
	int r;

	memset(p, 0, sizeof(*p));
	r = nif_offload_from_vnet(vh, &p->off);
	if (r < 0)
		return r;
	gso = p->off.gso_type != XEN_NETIF_GSO_TYPE_NONE;
	if (gso && !((p->off.gso_type == XEN_NETIF_GSO_TYPE_TCPV4 && c->gso_tcpv4) ||
		     (p->off.gso_type == XEN_NETIF_GSO_TYPE_TCPV6 && c->gso_tcpv6)))
		return -EOPNOTSUPP;
	if (frame_len == 0)
		return -EINVAL;
	p->npages = div_round_up(frame_len, PV_PAGE_SIZE);
	if (p->npages > l->npages)
		return -EMSGSIZE;
	if (p->off.csum_blank) {
		if ((size_t)vh->csum_start + vh->csum_offset + 2 > frame_len)
			return -EINVAL;
		if (!csum_blank_ok(c, vh, hdrs, hlen, frame_len)) {
			/* A GSO frame must keep its partial checksum. */
			if (gso)
				return -EOPNOTSUPP;
			p->sw_csum = true;
			p->csum_start = vh->csum_start;
			p->csum_offset = vh->csum_offset;
			p->off.csum_blank = false;
			p->off.data_validated = false;
		}
	}
	p->extras = gso ? 1 : 0;
	if (hash && p->extras < l->holes) {
		p->has_hash = true;
		p->hash = *hash;
		p->extras++;
	}
	if (p->extras > l->holes)
		return -EMSGSIZE;   /* a GSO frame on a layout without room: never */
	p->shift = p->npages > 1 ? l->holes - p->extras : 0;

	for (unsigned page = 0; page < p->npages; page++) {
		struct nb_rx_slot *d = &p->slot[s++];

		d->kind = NB_RX_DATA;
		d->len = (uint16_t)(left < PV_PAGE_SIZE ? left : PV_PAGE_SIZE);
		left -= d->len;
		if (left)
			d->flags |= NETRXF_more_data;
		if (page == 0) {
			d->flags |= nif_offload_rxflags(&p->off);
			if (p->has_hash)
				d->flags |= NETRXF_extra_info;
			if (gso)
				p->slot[s++] = (struct nb_rx_slot){ .kind = NB_RX_EXTRA };
			if (p->has_hash)
				p->slot[s++] = (struct nb_rx_slot){ .kind = NB_RX_EXTRA_HASH };
		}
	}
	p->nslots = s;
	return 0;
}

void nb_rx_fill_response(const struct nb_rx_plan *p, unsigned i, uint16_t id,
			 struct netif_rx_response *rsp)
{
	_Static_assert(sizeof(struct netif_extra_info) <= sizeof(struct netif_rx_response),
		       "an extra-info slot fits in an rx response slot");
	if (p->slot[i].kind == NB_RX_EXTRA) {
		struct netif_extra_info ex;

		nif_gso_extra_fill(&p->off, &ex);
		if (p->has_hash)   /* the HASH extra follows (Linux: GSO first) */
			ex.flags |= XEN_NETIF_EXTRA_FLAG_MORE;
		memcpy(rsp, &ex, sizeof(ex));
		return;
	}
	if (p->slot[i].kind == NB_RX_EXTRA_HASH) {
		memcpy(rsp, &p->hash, sizeof(p->hash));
		return;
	}
	rsp->id = id;
	rsp->offset = 0;
	rsp->flags = p->slot[i].flags;
	rsp->status = (int16_t)p->slot[i].len;
}
