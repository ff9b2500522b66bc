/*
 * common/loop.h — a small epoll event loop with fd watches and timers.
 *
 * What: register fds with a callback; add one-shot timers (re-arm from the
 * callback for periodic work); run until pv_loop_stop().
 * Thread: a loop belongs to the thread that runs it; every call except
 * pv_loop_stop() must come from that thread. pv_loop_stop() is async-safe.
 * Errors: 0 / id on success, -errno on failure.
 * Ownership: the loop never owns the fds it watches; the caller closes them
 * after pv_loop_del_fd(). Deleting a watch or timer from inside any callback
 * is safe: a deleted watch's pending events in the current round are dropped.
 */
#ifndef PVNET_COMMON_LOOP_H
#define PVNET_COMMON_LOOP_H

#include <stdint.h>

struct pv_loop;
typedef void (*pv_fd_cb)(struct pv_loop *loop, int fd, uint32_t events, void *arg);
typedef void (*pv_timer_cb)(struct pv_loop *loop, void *arg);

struct pv_loop *pv_loop_new(void);
void pv_loop_free(struct pv_loop *loop);

/* events: EPOLLIN/EPOLLOUT/... (level-triggered unless EPOLLET is given). */
int pv_loop_add_fd(struct pv_loop *loop, int fd, uint32_t events, pv_fd_cb cb, void *arg);
int pv_loop_mod_fd(struct pv_loop *loop, int fd, uint32_t events);
int pv_loop_del_fd(struct pv_loop *loop, int fd);

/* A watch for fds another module puts into the loop's epoll set itself
 * (event-channel ports attached edge-triggered, pv_evtchn_attach): it gets
 * *epfd and *tag to register them with (data.u64); `cb` runs with fd = *id
 * when any of them fires. *id (< -1, never a real fd) is for
 * pv_loop_del_fd(), once none of those fds is in the set any more. */
int pv_loop_add_tag(struct pv_loop *loop, pv_fd_cb cb, void *arg, int *id, int *epfd,
		    uint64_t *tag);

/* One-shot timer firing after `delay_ns`. Returns an id > 0 or -errno. */
int64_t pv_loop_add_timer(struct pv_loop *loop, uint64_t delay_ns, pv_timer_cb cb, void *arg);
void pv_loop_cancel_timer(struct pv_loop *loop, int64_t id);

/* Run until pv_loop_stop(). Returns 0, or -errno if epoll fails. */
int pv_loop_run(struct pv_loop *loop);
/* Run one round: wait at most `timeout_ms` (-1 forever) and dispatch. */
int pv_loop_run_once(struct pv_loop *loop, int timeout_ms);
void pv_loop_stop(struct pv_loop *loop);

#endif
