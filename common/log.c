#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "pvnet";
static int log_fd = 2;
static enum pv_log_level log_level = PV_LOG_INFO;
static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void pv_log_init(const char *prog)
{
	const char *slash = prog ? strrchr(prog, '/') : NULL;
	log_prog = slash ? slash + 1 : (prog ? prog : "pvnet");
}

int pv_log_set_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (log_fd > 2)
		close(log_fd);
	log_fd = fd;
	return 0;
}

void pv_log_set_level(enum pv_log_level level) { log_level = level; }
enum pv_log_level pv_log_get_level(void) { return log_level; }

int pv_log_parse_level(const char *s)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i]))
			return (int)i;
	return -1;
}

void pv_vlog(enum pv_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	int n, m;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s[%d] %s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000, log_prog, (int)getpid(),
		     level_names[level]);
	if (n < 0)
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)pv_write_all(log_fd, line, (size_t)n);
}

void pv_log(enum pv_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pv_vlog(level, fmt, ap);
	va_end(ap);
}

void pv_log_rl(struct pv_ratelimit *rl, enum pv_log_level level, const char *fmt, ...)
{
	uint64_t now = pv_now_ns();
	va_list ap;

	if (now - rl->window_start >= rl->interval_ns) {
		if (rl->suppressed)
			pv_log(level, "(%u similar messages suppressed)", rl->suppressed);
		rl->window_start = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed >= rl->burst) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	va_start(ap, fmt);
	pv_vlog(level, fmt, ap);
	va_end(ap);
}
