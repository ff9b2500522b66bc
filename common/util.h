/*
 * common/util.h — small helpers every component uses.
 *
 * What: monotonic time, strict number parsing, full reads/writes, fd flags,
 * SCM_RIGHTS fd passing, mkdir -p, bounded string copy.
 * Thread: all functions are reentrant.
 * Errors: functions returning int give 0 (or a count) on success and -errno on
 * failure; they never print. Ownership: received fds belong to the caller.
 */
#ifndef PVNET_COMMON_UTIL_H
#define PVNET_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PV_MAX(a, b) ((a) > (b) ? (a) : (b))
#define PV_UNUSED __attribute__((unused))

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t pv_now_ns(void);
/* CLOCK_REALTIME in nanoseconds. */
uint64_t pv_realtime_ns(void);

/* Strict decimal parsing: the whole string must be digits (no sign, no spaces,
 * no leading "0x"); leading zeros are accepted. -EINVAL if malformed,
 * -ERANGE if above `max`. */
int pv_parse_u64(const char *s, uint64_t max, uint64_t *out);
int pv_parse_u32(const char *s, uint32_t *out);
int pv_parse_uint(const char *s, unsigned max, unsigned *out);

/* Write/read exactly `len` bytes, retrying on EINTR and short transfers.
 * pv_read_full returns the number read (< len only at EOF) or -errno. */
ssize_t pv_write_all(int fd, const void *buf, size_t len);
ssize_t pv_read_full(int fd, void *buf, size_t len);

int pv_set_nonblock(int fd, bool on);
int pv_set_cloexec(int fd);
/* Is the file behind `fd` at least `bytes` long, and sealed so that it stays
 * so (F_SEAL_SHRINK: a memfd)? A mapping past a file's end faults with
 * SIGBUS on the first touch there, also when somebody shrinks it later. */
bool pv_fd_covers(int fd, uint64_t bytes);
/* accept4() for a level-triggered listener: out of fds (EMFILE/ENFILE), it
 * accepts the connection on a reserved fd and closes it at once, so the
 * listener does not spin on a connection it cannot take. The fd, or -errno
 * (-EMFILE when one was shed). Loop thread only (the reserve is global). */
int pv_accept(int lfd, int flags);

/* Send `len` bytes plus up to 253 fds (SCM_MAX_FD) over a UNIX socket in one
 * sendmsg; -EINVAL beyond. (Receivers take at most 16, below.) */
ssize_t pv_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Receive one message (up to `len` bytes) and up to `*nfds` fds (in/out).
 * Extra fds beyond the caller's room are closed. Received fds are O_CLOEXEC.
 * Returns bytes received (0 at EOF) or -errno. */
ssize_t pv_recv_fds(int sock, void *buf, size_t len, int *fds, unsigned *nfds);

/* mkdir -p with `mode` for each created component. 0 or -errno. */
int pv_mkdir_p(const char *path, mode_t mode);

/* Copy at most size-1 bytes and NUL-terminate; returns strlen(src). */
size_t pv_strlcpy(char *dst, const char *src, size_t size);

/* Pin the calling thread to one of the CPUs its process may run on (the
 * main thread's affinity, so that a pinned thread can be pinned again): the
 * (index mod count)-th of them, so that the threads given the same index in
 * different processes share a CPU (netback's queue N and netfront's queue N:
 * their wake-ups and the frames' bytes then stay on one CPU). The CPU chosen,
 * or -errno. Also with one CPU allowed the thread is set to it (a thread
 * pinned elsewhere before the process was narrowed moves there). */
int pv_pin_thread_index(unsigned index);
/* The index both ends of a vif queue pin by — netback's queue thread and
 * netfront's data thread must agree on it: frontend domid + devid (the
 * frontend's handle) + queue. The domid spreads the guests over the CPUs,
 * the queue a vif's queues. */
static inline unsigned pv_queue_cpu_index(uint32_t domid, uint32_t devid, unsigned queue)
{
	return domid + devid + queue;
}

/* Sleep for `ns` nanoseconds (restarts on EINTR). */
void pv_sleep_ns(uint64_t ns);
/* In a child just forked from `parent`: receive `sig` when the parent dies
 * (PR_SET_PDEATHSIG), and exit at once if it already has. */
void pv_die_with_parent(pid_t parent, int sig);

#endif
