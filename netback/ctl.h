/*
 * netback/ctl.h — the control socket <rundir>/netback.sock.
 *
 * What: a UNIX stream socket answering one-line text commands with one line:
 *   stats            every vif, as one JSON object (docs/netback.md)
 *   stats <vifname>  one vif
 *   help             the command list
 * Unknown commands get {"error": "..."}; a client may send several commands
 * on one connection. nb_ctl_json() renders the stats (also for tests).
 * Thread: main thread only. Errors: NULL + errno from nb_ctl_open.
 */
#ifndef PVNET_NETBACK_CTL_H
#define PVNET_NETBACK_CTL_H

#include <stddef.h>

#include "common/loop.h"
#include "netback/backend.h"

struct nb_ctl;

struct nb_ctl *nb_ctl_open(struct pv_loop *loop, struct nb_daemon *d, const char *path);
void nb_ctl_close(struct nb_ctl *c);

/* The JSON answer to "stats [name]" into a malloc'ed string. */
char *nb_ctl_json(struct nb_daemon *d, const char *only);

#endif
