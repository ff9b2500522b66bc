/*
 * netif/link.h — network interface operations over rtnetlink (libmnl).
 *
 * What: bring links up/down, set master (bridge), MTU, MAC, tx queue length,
 * GSO maximum size; read a link's state; list its addresses; create bridges
 * and delete links; watch link changes (RTMGRP_LINK) for open/close events.
 * Every call works in the network namespace of the calling thread.
 * Thread: any; each call uses its own netlink socket (no shared state),
 * except a nif_linkmon, which belongs to one thread.
 * Errors: 0 / value on success, -errno (the kernel's netlink error) on failure.
 */
#ifndef PVNET_NETIF_LINK_H
#define PVNET_NETIF_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <net/if.h>

int nif_link_index(const char *name);  /* ifindex or -ENODEV */
int nif_link_set_up(int ifindex, bool up);
int nif_link_set_master(int ifindex, int master_ifindex); /* 0 = no master */
int nif_link_set_mtu(int ifindex, unsigned mtu);
int nif_link_set_mac(int ifindex, const uint8_t mac[6]);
int nif_link_set_txqlen(int ifindex, unsigned qlen);
int nif_link_set_gso_max_size(int ifindex, unsigned size);
int nif_bridge_create(const char *name);
int nif_link_delete(int ifindex);

struct nif_link_info {
	int ifindex;
	char name[IFNAMSIZ];
	unsigned flags;    /* IFF_UP, IFF_RUNNING, IFF_LOWER_UP ... */
	unsigned mtu;
	uint8_t mac[6];
	int master;        /* 0 if none */
	uint8_t operstate; /* IF_OPER_* */
	bool carrier;
	int brport_state;  /* BR_STATE_* (linux/if_bridge.h) if a bridge port, else -1 */
};
int nif_link_get(int ifindex, struct nif_link_info *info);

struct nif_addr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t prefixlen;
	uint32_t flags;    /* IFA_F_* (IFA_F_TENTATIVE ...) */
	union { struct in_addr v4; struct in6_addr v6; } addr;
};
/* Fill up to `max` addresses of ifindex (both families); returns the count. */
int nif_link_addrs(int ifindex, struct nif_addr *out, unsigned max);

/* Link monitor: a netlink socket subscribed to RTMGRP_LINK. */
struct nif_linkmon;
struct nif_linkmon *nif_linkmon_open(void);
void nif_linkmon_close(struct nif_linkmon *m);
int nif_linkmon_fd(const struct nif_linkmon *m);
typedef void (*nif_link_cb)(void *arg, int ifindex, unsigned flags, unsigned change, bool deleted);
/* Non-blocking: read what is queued and call cb per RTM_NEWLINK/DELLINK.
 * Returns the number of events, 0 if none, -errno on error (-ENOBUFS means
 * events were lost: re-read the state with nif_link_get). */
int nif_linkmon_read(struct nif_linkmon *m, nif_link_cb cb, void *arg);

#endif
