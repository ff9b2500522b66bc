#include "toolstack/tsx.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore_lib.h>

#include "common/util.h"

struct xs_handle *tsx_open(const char *socket)
{
	struct xs_handle *h;
	char *old = getenv("XENSTORED_PATH");
	char *saved = old ? strdup(old) : NULL;

	setenv("XENSTORED_PATH", socket, 1);
	h = xs_open(0);
	if (saved) {
		setenv("XENSTORED_PATH", saved, 1);
		free(saved);
	} else {
		unsetenv("XENSTORED_PATH");
	}
	return h;
}

bool tsx_write(struct xs_handle *h, xs_transaction_t t, const char *path, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		errno = E2BIG;
		return false;
	}
	return xs_write(h, t, path, buf, (unsigned)n);
}

bool tsx_perms(struct xs_handle *h, xs_transaction_t t, const char *path, const char *spec)
{
	struct xs_permissions perms[8];
	char buf[128], *save = NULL;
	unsigned n = 0;

	pv_strlcpy(buf, spec, sizeof(buf));
	for (char *tok = strtok_r(buf, " ", &save); tok && n < 8; tok = strtok_r(NULL, " ", &save)) {
		if (!xs_strings_to_perms(&perms[n], 1, tok))
			return false;
		n++;
	}
	return xs_set_permissions(h, t, path, perms, n);
}

char *tsx_read(struct xs_handle *h, xs_transaction_t t, const char *path)
{
	unsigned len;
	char *v = xs_read(h, t, path, &len), *s;

	if (!v)
		return NULL;
	s = realloc(v, len + 1);
	if (!s) {
		free(v);
		errno = ENOMEM;
		return NULL;
	}
	s[len] = '\0';
	return s;
}

int tsx_read_uint(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned *out)
{
	char *v = tsx_read(h, t, path);
	int r;

	if (!v)
		return -errno;
	r = pv_parse_uint(v, 0xFFFFFFFFu, out);
	free(v);
	return r;
}

int tsx_wait_value(struct xs_handle *h, const char *path, const char *want, int timeout_ms)
{
	uint64_t deadline = pv_now_ns() + (uint64_t)timeout_ms * 1000000u;
	char token[32];
	int r = -ETIMEDOUT;

	snprintf(token, sizeof(token), "tsx-wait-%p", (void *)path);
	if (!xs_watch(h, path, token))
		return -errno;
	for (;;) {
		char *v = tsx_read(h, XBT_NULL, path);
		bool ok = v && !strcmp(v, want);
		uint64_t now;
		free(v);
		if (ok) {
			r = 0;
			break;
		}
		now = pv_now_ns();
		if (now >= deadline)
			break;
		struct pollfd pfd = { .fd = xs_fileno(h), .events = POLLIN };
		if (poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1) > 0) {
			char **ev;
			while ((ev = xs_check_watch(h)))
				free(ev);
		}
	}
	xs_unwatch(h, path, token);
	return r;
}
