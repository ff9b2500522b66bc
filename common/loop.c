/*
 * Event loop. Watches live in a small open-addressed table keyed by fd; each
 * epoll event carries the watch pointer. A watch deleted during dispatch is
 * only marked dead and unlinked from epoll; it is freed at the end of the
 * round, so events already returned by epoll_wait for it are skipped safely.
 * Timers are a sorted singly linked list: loops here hold few timers.
 */
#include "common/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/util.h"

struct watch {
	int fd;
	bool dead;
	pv_fd_cb cb;
	void *arg;
	struct watch *next;      /* all watches */
	struct watch *next_dead; /* freed at end of round */
};

struct timer {
	int64_t id;
	uint64_t due;
	pv_timer_cb cb;
	void *arg;
	struct timer *next;
};

struct pv_loop {
	int epfd;
	volatile sig_atomic_t stop;
	struct watch *watches;
	struct watch *dead;
	struct timer *timers;
	int64_t next_timer_id;
	int next_tag_id;          /* tag watches' ids: -2, -3, ... */
};

struct pv_loop *pv_loop_new(void)
{
	struct pv_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	loop->next_timer_id = 1;
	loop->next_tag_id = -1;
	return loop;
}

static void reap_dead(struct pv_loop *loop)
{
	while (loop->dead) {
		struct watch *w = loop->dead;
		loop->dead = w->next_dead;
		free(w);
	}
}

void pv_loop_free(struct pv_loop *loop)
{
	if (!loop)
		return;
	while (loop->watches) {
		struct watch *w = loop->watches;
		loop->watches = w->next;
		free(w);
	}
	reap_dead(loop);
	while (loop->timers) {
		struct timer *t = loop->timers;
		loop->timers = t->next;
		free(t);
	}
	close(loop->epfd);
	free(loop);
}

static struct watch *find_watch(struct pv_loop *loop, int fd, struct watch ***prevp)
{
	struct watch **pp = &loop->watches;
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->fd == fd) {
			if (prevp)
				*prevp = pp;
			return *pp;
		}
	}
	return NULL;
}

int pv_loop_add_fd(struct pv_loop *loop, int fd, uint32_t events, pv_fd_cb cb, void *arg)
{
	struct epoll_event ev = { .events = events };
	struct watch *w;

	if (find_watch(loop, fd, NULL))
		return -EEXIST;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->cb = cb;
	w->arg = arg;
	ev.data.ptr = w;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		free(w);
		return -e;
	}
	w->next = loop->watches;
	loop->watches = w;
	return 0;
}

int pv_loop_add_tag(struct pv_loop *loop, pv_fd_cb cb, void *arg, int *id, int *epfd,
		    uint64_t *tag)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->fd = --loop->next_tag_id;
	w->cb = cb;
	w->arg = arg;
	w->next = loop->watches;
	loop->watches = w;
	*id = w->fd;
	*epfd = loop->epfd;
	*tag = (uint64_t)(uintptr_t)w;
	return 0;
}

int pv_loop_mod_fd(struct pv_loop *loop, int fd, uint32_t events)
{
	struct watch *w = find_watch(loop, fd, NULL);
	struct epoll_event ev = { .events = events };

	if (!w)
		return -ENOENT;
	ev.data.ptr = w;
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int pv_loop_del_fd(struct pv_loop *loop, int fd)
{
	struct watch **pp = NULL;
	struct watch *w = find_watch(loop, fd, &pp);

	if (!w)
		return -ENOENT;
	*pp = w->next;
	/* The fd may already be closed by a careless caller: ignore errors. */
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->dead = true;
	w->next_dead = loop->dead;
	loop->dead = w;
	return 0;
}

int64_t pv_loop_add_timer(struct pv_loop *loop, uint64_t delay_ns, pv_timer_cb cb, void *arg)
{
	struct timer *t = calloc(1, sizeof(*t)), **pp;

	if (!t)
		return -ENOMEM;
	t->id = loop->next_timer_id++;
	t->due = pv_now_ns() + delay_ns;
	t->cb = cb;
	t->arg = arg;
	for (pp = &loop->timers; *pp && (*pp)->due <= t->due; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	return t->id;
}

void pv_loop_cancel_timer(struct pv_loop *loop, int64_t id)
{
	for (struct timer **pp = &loop->timers; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct timer *t = *pp;
			*pp = t->next;
			free(t);
			return;
		}
	}
}

static int next_timeout_ms(struct pv_loop *loop, int timeout_ms)
{
	uint64_t now, ms;

	if (!loop->timers)
		return timeout_ms;
	now = pv_now_ns();
	if (loop->timers->due <= now)
		return 0;
	ms = (loop->timers->due - now + 999999) / 1000000;
	if (timeout_ms >= 0 && (uint64_t)timeout_ms < ms)
		return timeout_ms;
	return ms > 60000 ? 60000 : (int)ms;
}

static void run_timers(struct pv_loop *loop)
{
	uint64_t now = pv_now_ns();

	/* Timers added by callbacks with zero delay run in the next round. */
	while (loop->timers && loop->timers->due <= now && !loop->stop) {
		struct timer *t = loop->timers;
		loop->timers = t->next;
		t->cb(loop, t->arg);
		free(t);
	}
}

int pv_loop_run_once(struct pv_loop *loop, int timeout_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(loop->epfd, evs, 64, next_timeout_ms(loop, timeout_ms));

	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return -errno;
	}
	for (int i = 0; i < n && !loop->stop; i++) {
		struct watch *w = evs[i].data.ptr;
		if (!w->dead)
			w->cb(loop, w->fd, evs[i].events, w->arg);
	}
	reap_dead(loop);
	run_timers(loop);
	return 0;
}

int pv_loop_run(struct pv_loop *loop)
{
	loop->stop = 0;
	while (!loop->stop) {
		int r = pv_loop_run_once(loop, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

void pv_loop_stop(struct pv_loop *loop) { loop->stop = 1; }
