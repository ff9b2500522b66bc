/*
 * guest/announce.h — netdev_notify_peers: gratuitous ARP and unsolicited
 * neighbour advertisements for the guest's addresses.
 *
 * What: frame builders (pure) shaped as Linux sends them on
 * NETDEV_NOTIFY_PEERS: devinet's gratuitous ARP *request* (sender and target
 * IP = the address, target MAC zero, Ethernet broadcast) for each IPv4
 * address; ndisc_send_unsol_na (to ff02::1, hop limit 255, Override set,
 * Solicited clear, target link-layer option) for each IPv6 address that is
 * not tentative (unless optimistic). gr_announce() reads the interface's
 * addresses and sends the frames through an AF_PACKET socket bound to it, so
 * they take the guest stack's real transmit path (qdisc, TAP queue, our tx
 * ring) and are dropped if the interface is down, as in Linux.
 * Thread: any; gr_announce works in the calling thread's network namespace.
 * gr_announce_each hands the same frames to a callback instead (netfront
 * puts them straight on its ring after a move).
 * Errors: builders return the frame length or 0 if `len` is too small;
 * gr_announce returns the number of frames sent or -errno.
 */
#ifndef PVNET_GUEST_ANNOUNCE_H
#define PVNET_GUEST_ANNOUNCE_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define GR_GARP_LEN 42
#define GR_NA_LEN 86

size_t gr_build_garp(uint8_t *buf, size_t len, const uint8_t mac[6], struct in_addr ip);
size_t gr_build_unsol_na(uint8_t *buf, size_t len, const uint8_t mac[6], const struct in6_addr *ip);

struct gr_announce_result {
	unsigned garp, na;       /* frames sent */
	unsigned failed;         /* sendto failures (e.g. ENETDOWN) */
	int last_err;            /* -errno of the last failure */
};
/* Build one round of announcements for ifindex's addresses and hand each
 * frame to fn (which returns 0 if it took it). Returns how many fn took,
 * or -errno if the addresses cannot be read. */
typedef int (*gr_frame_fn)(void *arg, const uint8_t *frame, size_t len, uint16_t ethertype);
int gr_announce_each(int ifindex, const uint8_t mac[6], gr_frame_fn fn, void *arg);

/* One round of announcements for every address of ifindex. */
int gr_announce(int ifindex, const uint8_t mac[6], struct gr_announce_result *res);

#endif
