/*
 * guest/ifwatch.h — who brought eth0 up or down: netlink or ioctl.
 *
 * What: xennet_open/xennet_close are the interface going up/down. pvnet sees
 * that on an RTMGRP_LINK monitor (netif/link.h). To tell how it happened
 * (RTM_NEWLINK from `ip`/NetworkManager, or the SIOCSIFFLAGS ioctl from
 * `ifconfig`), it watches the syscall tracepoint sys_enter_ioctl filtered on
 * cmd == 0x8914 (SIOCSIFFLAGS) in a private tracefs instance
 * (instances/pvnet-<pid>-<tag>, trace_clock mono). A link change preceded,
 * within GR_IFWATCH_WINDOW_MS, by such an ioctl from a process in our
 * network namespace (its /proc/<pid>/ns/net matches ours; a process that has
 * already exited is matched by time alone) is `ioctl`; otherwise `netlink`.
 * Each ioctl record explains at most one change. If tracefs cannot be used,
 * every change is `unknown` and the reason is kept (gr_ifwatch_why).
 * Limits (docs/guest.md): the tracepoint cannot see which interface an ioctl
 * names, so a SIOCSIFFLAGS on another interface of the same namespace just
 * before a netlink change on eth0 is taken for the ioctl.
 * Thread: one thread (the main loop).
 * Errors: -errno; the tracefs part never makes gr_ifwatch_open fail.
 * Ownership: gr_ifwatch_close removes the tracefs instance.
 */
#ifndef PVNET_GUEST_IFWATCH_H
#define PVNET_GUEST_IFWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/trace.h"

#define GR_IFWATCH_WINDOW_MS 1000

struct gr_ifwatch;

/* `tag` makes the tracefs instance name unique (e.g. the netns name). */
struct gr_ifwatch *gr_ifwatch_open(const char *tag);
void gr_ifwatch_close(struct gr_ifwatch *w);
/* The link monitor's fd (poll for input, then gr_ifwatch_read). */
int gr_ifwatch_fd(const struct gr_ifwatch *w);
/* Why the method is `unknown`, or NULL when tracefs works. */
const char *gr_ifwatch_why(const struct gr_ifwatch *w);

/* Start following ifindex. `created` says the interface was just created by
 * us (so it started down, and an "up" already queued on the monitor is a
 * transition still to report); otherwise its current state is read now. */
int gr_ifwatch_follow(struct gr_ifwatch *w, int ifindex, bool created);
void gr_ifwatch_unfollow(struct gr_ifwatch *w, int ifindex);

typedef void (*gr_ifwatch_cb)(void *arg, int ifindex, bool up, enum gr_how how);
/* Read what is queued; call cb for each up/down transition of a followed
 * interface. Returns the number of transitions or -errno. */
int gr_ifwatch_read(struct gr_ifwatch *w, gr_ifwatch_cb cb, void *arg);

/* Parse one trace_pipe line of sys_enter_ioctl: pid and timestamp (ns).
 * 0 or -EINVAL. Exposed for tests. */
int gr_ifwatch_parse_line(const char *line, int *pid, uint64_t *t_ns);

#endif
