/*
 * netback/steer.h — a vif TAP's queue selection by the control ring's hash
 * (Linux xenvif_select_queue), as an eBPF steering program on the TAP
 * (TUNSETSTEERINGEBPF).
 *
 * What: with the TOEPLITZ algorithm set, each frame the host sends to the
 * vif must go to the netif queue mapping[hash % size] (or hash % queues
 * without a table; hash 0 for a frame without an enabled type). The TAP
 * picks the queue in the kernel, before netback reads anything, so the
 * choice is made there: nb_steer_open() loads a socket-filter program and
 * its maps: two slots, each the enabled types, the table, the queue count
 * and the key expanded into per-byte lookup tables (nb_hash_table), and a
 * selector; nb_steer_update() writes the slot not in force and then flips
 * the selector, so that no frame sees half an update (Linux's
 * mapping_sel). The program parses as nb_hash_frame() does (Ethernet, IPv4
 * with options, IPv6 without extension headers, TCP ports unless a fragment
 * or cut short; a frame too short for an enabled type has hash 0) and
 * returns the queue. nb_steer_attach()/nb_steer_detach() set and clear the
 * program of the TAP device (any of its queue fds); detached, the TAP
 * chooses by flow as before (algorithm NONE).
 * Thread: one owner at a time (the vif's control-ring queue thread).
 * Errors: 0 or -errno; nb_steer_open() also gives the verifier's complaint
 * in `err`.
 */
#ifndef PVNET_NETBACK_STEER_H
#define PVNET_NETBACK_STEER_H

#include <stdbool.h>
#include <stddef.h>

#include "netback/hash.h"

struct nb_steer {
	int prog_fd, map_fd, sel_fd;   /* -1 when closed */
	unsigned cur;                  /* the map slot in force (sel) */
};

int nb_steer_open(struct nb_steer *s, char *err, size_t errlen);
int nb_steer_update(struct nb_steer *s, const struct nb_hash *h);
int nb_steer_attach(struct nb_steer *s, int tap_fd);
int nb_steer_detach(int tap_fd);
void nb_steer_close(struct nb_steer *s);

#endif
