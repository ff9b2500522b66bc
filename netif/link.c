#include "netif/link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "common/util.h"

struct nl_ctx {
	struct mnl_socket *nl;
	unsigned portid;
	unsigned seq;
};

static int nl_open(struct nl_ctx *c)
{
	c->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!c->nl)
		return -errno;
	if (mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		mnl_socket_close(c->nl);
		return -e;
	}
	c->portid = mnl_socket_get_portid(c->nl);
	c->seq = (unsigned)time(NULL);
	return 0;
}

/* Send one request and run `cb` over the replies until ACK/DONE. */
static int nl_talk(struct nl_ctx *c, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int r;

	nlh->nlmsg_seq = ++c->seq;
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(c->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)n, c->seq, c->portid, cb, data);
		if (r < 0)
			return -errno;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

static int link_request(int ifindex, unsigned flags, unsigned change,
			void (*add_attrs)(struct nlmsghdr *, const void *), const void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct nl_ctx c;
	int r;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	ifm->ifi_flags = flags;
	ifm->ifi_change = change;
	if (add_attrs)
		add_attrs(nlh, arg);
	if ((r = nl_open(&c)) < 0)
		return r;
	r = nl_talk(&c, nlh, NULL, NULL);
	mnl_socket_close(c.nl);
	return r;
}

int nif_link_index(const char *name)
{
	unsigned i = if_nametoindex(name);
	return i ? (int)i : -ENODEV;
}

int nif_link_set_up(int ifindex, bool up)
{
	return link_request(ifindex, up ? IFF_UP : 0, IFF_UP, NULL, NULL);
}

static void put_u32_attr(struct nlmsghdr *nlh, const void *arg)
{
	const uint32_t *a = arg; /* a[0] = type, a[1] = value */
	mnl_attr_put_u32(nlh, (uint16_t)a[0], a[1]);
}

static int link_set_u32(int ifindex, uint16_t type, uint32_t value)
{
	uint32_t a[2] = { type, value };
	return link_request(ifindex, 0, 0, put_u32_attr, a);
}

int nif_link_set_master(int ifindex, int master) { return link_set_u32(ifindex, IFLA_MASTER, (uint32_t)master); }
int nif_link_set_mtu(int ifindex, unsigned mtu) { return link_set_u32(ifindex, IFLA_MTU, mtu); }
int nif_link_set_txqlen(int ifindex, unsigned q) { return link_set_u32(ifindex, IFLA_TXQLEN, q); }
int nif_link_set_gso_max_size(int ifindex, unsigned s) { return link_set_u32(ifindex, IFLA_GSO_MAX_SIZE, s); }

static void put_mac_attr(struct nlmsghdr *nlh, const void *arg)
{
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, arg);
}

int nif_link_set_mac(int ifindex, const uint8_t mac[6])
{
	return link_request(ifindex, 0, 0, put_mac_attr, mac);
}

static void put_bridge_attrs(struct nlmsghdr *nlh, const void *arg)
{
	struct nlattr *li;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, arg);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, li);
}

int nif_bridge_create(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct nl_ctx c;
	int r;

	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	put_bridge_attrs(nlh, name);
	if ((r = nl_open(&c)) < 0)
		return r;
	r = nl_talk(&c, nlh, NULL, NULL);
	mnl_socket_close(c.nl);
	return r;
}

int nif_link_delete(int ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct nl_ctx c;
	int r;

	nlh->nlmsg_type = RTM_DELLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	if ((r = nl_open(&c)) < 0)
		return r;
	r = nl_talk(&c, nlh, NULL, NULL);
	mnl_socket_close(c.nl);
	return r;
}

/* IFLA_LINKINFO of a bridge port: IFLA_INFO_SLAVE_DATA holds IFLA_BRPORT_*. */
static int parse_brport_attr(const struct nlattr *a, void *data)
{
	struct nif_link_info *info = data;

	if (mnl_attr_get_type(a) == IFLA_BRPORT_STATE && mnl_attr_validate(a, MNL_TYPE_U8) >= 0)
		info->brport_state = mnl_attr_get_u8(a);
	return MNL_CB_OK;
}

static int parse_linkinfo_attr(const struct nlattr *a, void *data)
{
	struct nif_link_info *info = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_SLAVE_KIND && mnl_attr_validate(a, MNL_TYPE_STRING) >= 0 &&
	    strcmp(mnl_attr_get_str(a), "bridge") == 0)
		info->brport_state = info->brport_state < 0 ? BR_STATE_DISABLED : info->brport_state;
	if (mnl_attr_get_type(a) == IFLA_INFO_SLAVE_DATA && mnl_attr_validate(a, MNL_TYPE_NESTED) >= 0)
		mnl_attr_parse_nested(a, parse_brport_attr, info);
	return MNL_CB_OK;
}

static int parse_link_attr(const struct nlattr *a, void *data)
{
	struct nif_link_info *info = data;

	switch (mnl_attr_get_type(a)) {
	case IFLA_LINKINFO:
		if (mnl_attr_validate(a, MNL_TYPE_NESTED) >= 0)
			mnl_attr_parse_nested(a, parse_linkinfo_attr, info);
		break;
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
			pv_strlcpy(info->name, mnl_attr_get_str(a), IFNAMSIZ);
		break;
	case IFLA_MTU:
		if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
			info->mtu = mnl_attr_get_u32(a);
		break;
	case IFLA_MASTER:
		if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
			info->master = (int)mnl_attr_get_u32(a);
		break;
	case IFLA_OPERSTATE:
		if (mnl_attr_validate(a, MNL_TYPE_U8) >= 0)
			info->operstate = mnl_attr_get_u8(a);
		break;
	case IFLA_CARRIER:
		if (mnl_attr_validate(a, MNL_TYPE_U8) >= 0)
			info->carrier = mnl_attr_get_u8(a) != 0;
		break;
	case IFLA_ADDRESS:
		if (mnl_attr_get_payload_len(a) == 6)
			memcpy(info->mac, mnl_attr_get_payload(a), 6);
		break;
	}
	return MNL_CB_OK;
}

static int link_get_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nif_link_info *info = data;
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	info->ifindex = ifm->ifi_index;
	info->flags = ifm->ifi_flags;
	mnl_attr_parse(nlh, sizeof(*ifm), parse_link_attr, info);
	return MNL_CB_OK;
}

int nif_link_get(int ifindex, struct nif_link_info *info)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct nl_ctx c;
	int r;

	memset(info, 0, sizeof(*info));
	info->brport_state = -1;
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	if ((r = nl_open(&c)) < 0)
		return r;
	nlh->nlmsg_seq = ++c.seq;
	if (mnl_socket_sendto(c.nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
	} else {
		ssize_t n = mnl_socket_recvfrom(c.nl, buf, sizeof(buf));
		r = n < 0 ? -errno : mnl_cb_run(buf, (size_t)n, c.seq, c.portid, link_get_cb, info);
		if (r < 0 && r != -errno)
			r = -errno;
	}
	mnl_socket_close(c.nl);
	if (r >= 0 && info->ifindex != ifindex)
		r = -ENODEV;
	return r < 0 ? r : 0;
}

struct addr_walk {
	int ifindex;
	struct nif_addr *out;
	unsigned max, n;
};

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_walk *w = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	struct nif_addr ad;

	if (nlh->nlmsg_type != RTM_NEWADDR || (int)ifa->ifa_index != w->ifindex)
		return MNL_CB_OK;
	memset(&ad, 0, sizeof(ad));
	ad.family = ifa->ifa_family;
	ad.prefixlen = ifa->ifa_prefixlen;
	ad.flags = ifa->ifa_flags;
	mnl_attr_for_each(a, nlh, sizeof(*ifa)) {
		uint16_t t = mnl_attr_get_type(a);
		size_t len = mnl_attr_get_payload_len(a);
		if (t == IFA_FLAGS && len == 4)
			ad.flags = mnl_attr_get_u32(a);
		if (t == IFA_ADDRESS && ad.family == AF_INET6 && len == 16)
			memcpy(&ad.addr.v6, mnl_attr_get_payload(a), 16);
		/* For IPv4, IFA_LOCAL is the interface's own address. */
		if (t == IFA_LOCAL && ad.family == AF_INET && len == 4)
			memcpy(&ad.addr.v4, mnl_attr_get_payload(a), 4);
	}
	if (ad.family != AF_INET && ad.family != AF_INET6)
		return MNL_CB_OK;
	if (w->n < w->max)
		w->out[w->n] = ad;
	w->n++;
	return MNL_CB_OK;
}

int nif_link_addrs(int ifindex, struct nif_addr *out, unsigned max)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	struct addr_walk w = { .ifindex = ifindex, .out = out, .max = max };
	struct nl_ctx c;
	int r;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_UNSPEC;
	if ((r = nl_open(&c)) < 0)
		return r;
	r = nl_talk(&c, nlh, addr_cb, &w);
	mnl_socket_close(c.nl);
	return r < 0 ? r : (int)PV_MIN(w.n, max);
}

struct nif_linkmon {
	struct mnl_socket *nl;
};

struct nif_linkmon *nif_linkmon_open(void)
{
	struct nif_linkmon *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!m->nl || mnl_socket_bind(m->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		if (m->nl)
			mnl_socket_close(m->nl);
		free(m);
		errno = e;
		return NULL;
	}
	return m;
}

void nif_linkmon_close(struct nif_linkmon *m)
{
	if (!m)
		return;
	mnl_socket_close(m->nl);
	free(m);
}

int nif_linkmon_fd(const struct nif_linkmon *m) { return mnl_socket_get_fd(m->nl); }

struct mon_walk {
	nif_link_cb cb;
	void *arg;
	int n;
};

static int mon_cb(const struct nlmsghdr *nlh, void *data)
{
	struct mon_walk *w = data;
	const struct ifinfomsg *ifm;

	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifm))
		return MNL_CB_OK;
	ifm = mnl_nlmsg_get_payload(nlh);
	w->cb(w->arg, ifm->ifi_index, ifm->ifi_flags, ifm->ifi_change,
	      nlh->nlmsg_type == RTM_DELLINK);
	w->n++;
	return MNL_CB_OK;
}

int nif_linkmon_read(struct nif_linkmon *m, nif_link_cb cb, void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mon_walk w = { .cb = cb, .arg = arg };

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(m->nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return w.n;
			return -errno;
		}
		if (mnl_cb_run(buf, (size_t)n, 0, 0, mon_cb, &w) < 0)
			return -errno;
	}
}
