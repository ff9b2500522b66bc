/*
 * netback/keys.h — parsing of the xenstore values netback reads, and the
 * feature negotiation they lead to.
 *
 * What: every value comes from xenstore (the frontend directory is written by
 * the guest: hostile); the caller copies it out (xs_read returns a private
 * copy) and hands it here. Numbers are read the way Linux reads them where
 * that matters to a frontend (xenbus_read_unsigned: "%u", trailing text
 * ignored, absent/unparsable -> default), and strictly where netback decides
 * something risky with them (ring refs, event channels, queue counts, domids,
 * paths, MTU). nb_vif_caps turns the frontend's flags into what the vif does:
 * TAP offloads (TUNSETOFFLOAD), software checksum, receive layout, MTU clamp,
 * as Linux's read_xenbus_vif_flags + xenvif_fix_features + netdev feature
 * rules (TSO needs SG and the checksum offload of its family).
 * Thread: pure functions. Errors: -EINVAL (malformed), -ERANGE (out of range).
 */
#ifndef PVNET_NETBACK_KEYS_H
#define PVNET_NETBACK_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netback/rxplan.h"

#define NB_MAX_QUEUES_LIMIT 16u  /* NIF_TAP_MAX_QUEUES */
#define NB_MAX_QUEUES_DEFAULT 8u /* Linux MAX_QUEUES_DEFAULT */
#define NB_DEVID_MAX 99999u      /* "vif<domid>.<devid>" must fit IFNAMSIZ */
#define NB_MTU_MIN 68u
#define NB_MTU_MAX (65535u - 18u)  /* a non-GSO frame stays <= XEN_NETIF_MAX_TX_SIZE */
#define NB_MTU_NO_SG 1500u       /* ETH_DATA_LEN: the MTU without feature-sg */
#define NB_ETH_FRAME_OVERHEAD 18u /* Ethernet header + one VLAN tag */

/* "<home>/backend/vif/<domid>/<devid>[/...]": with `prefix` the watched
 * directory including its trailing '/'. Returns the number of components
 * after the prefix (1: domid only, 2: the device dir, 3+: below it) or
 * -EINVAL when the path is not below the prefix or the numbers are bad. */
int nb_parse_backend_path(const char *path, const char *prefix, uint32_t *domid, uint32_t *devid);

/* xenbus_read_unsigned(): "%u" with trailing text ignored; value or dflt. */
unsigned nb_read_unsigned(const char *value, unsigned dflt);
/* Strict decimal, the whole string, <= max. */
int nb_parse_strict(const char *value, uint64_t max, uint64_t *out);

/* A frontend path: absolute, xenstore path characters only, no "//", no
 * trailing '/', at most 1024 bytes. */
int nb_check_xs_path(const char *path);
/* A bridge (interface) name: 1..15 bytes, no '/', ':' or whitespace. */
int nb_check_ifname(const char *name);
/* "aa:bb:cc:dd:ee:ff" (hex, as xen_net_read_mac). */
int nb_parse_mac(const char *value, uint8_t mac[6]);
/* "<bytes>,<usec>" (xen_net_read_rate). */
int nb_parse_rate(const char *value, uint64_t *bytes, uint64_t *usec);

/* The queue count a frontend asks for ("multi-queue-num-queues", absent = 1):
 * 0 on success; else -EINVAL with Linux's message in msg. */
int nb_check_num_queues(unsigned requested, unsigned max, char *msg, size_t msglen);

/* Frontend flags, as read by read_xenbus_vif_flags. */
struct nb_fe_flags {
	bool rx_copy;          /* request-rx-copy */
	bool rx_notify;        /* feature-rx-notify */
	bool sg;               /* feature-sg */
	bool gso_tcpv4, gso_tcpv6;
	bool no_csum_offload;  /* feature-no-csum-offload */
	bool ipv6_csum;        /* feature-ipv6-csum-offload */
	bool mcast_control;    /* request-multicast-control */
};

struct nb_vif_caps {
	struct nb_rx_caps rx;  /* what may be sent to the frontend */
	unsigned tun_flags;    /* TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 */
	unsigned mtu;          /* the vif MTU after the no-SG clamp */
	unsigned drain_ms;     /* rx drain timeout (Linux: 10 s, 30 ms without rx-notify) */
	unsigned stall_ms;     /* rx stall timeout (60 s; 0 = off without rx-notify) */
};

/* `mtu`: the vif's configured MTU (backend `mtu`, default 1500). */
void nb_vif_caps(const struct nb_fe_flags *f, unsigned mtu, struct nb_vif_caps *caps);

#endif
