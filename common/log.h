/*
 * common/log.h — leveled logging shared by every pvnet program.
 *
 * What: one line per message, "<iso-time> <prog>[<pid>] <LEVEL>: text", to stderr
 * (default) or to a file chosen with pv_log_set_file().
 * Thread: safe from any thread; each line is a single write(2).
 * Errors: logging never fails the caller; a failed write is dropped.
 * Ownership: the program name passed to pv_log_init() must outlive logging
 * (use argv[0] or a literal). pv_ratelimit lets peer-triggered messages be
 * bounded: at most `burst` lines per `interval_ns`, then one "suppressed" note.
 */
#ifndef PVNET_COMMON_LOG_H
#define PVNET_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum pv_log_level { PV_LOG_ERR = 0, PV_LOG_WARN, PV_LOG_INFO, PV_LOG_DEBUG };

void pv_log_init(const char *prog);
/* Append to `path` instead of stderr. 0 or -errno. */
int pv_log_set_file(const char *path);
void pv_log_set_level(enum pv_log_level level);
enum pv_log_level pv_log_get_level(void);
/* Parse "err|warn|info|debug"; -1 if unknown. */
int pv_log_parse_level(const char *s);

void pv_log(enum pv_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pv_vlog(enum pv_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define pv_err(...)   pv_log(PV_LOG_ERR, __VA_ARGS__)
#define pv_warn(...)  pv_log(PV_LOG_WARN, __VA_ARGS__)
#define pv_info(...)  pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_debug(...) do { if (pv_log_get_level() >= PV_LOG_DEBUG) pv_log(PV_LOG_DEBUG, __VA_ARGS__); } while (0)

struct pv_ratelimit {
	uint64_t interval_ns;
	unsigned burst;
	uint64_t window_start;
	unsigned printed;
	unsigned suppressed;
};
#define PV_RATELIMIT_INIT(interval_ms, burst_) \
	{ .interval_ns = (uint64_t)(interval_ms) * 1000000u, .burst = (burst_) }

/* Log unless `rl` is over its budget. Not thread-safe per `rl`: give each
 * thread or object its own. */
void pv_log_rl(struct pv_ratelimit *rl, enum pv_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
