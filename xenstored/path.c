#include "xenstored/path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool valid_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '/' || ch == '_' || ch == '@';
}

size_t xsd_home_len(unsigned domid)
{
	char buf[40];

	return (size_t)snprintf(buf, sizeof(buf), "/local/domain/%u/", domid);
}

/* Bytes of a leading "/local/domain/<digits>/", else 0. */
static size_t local_prefix(const char *p)
{
	static const char pre[] = "/local/domain/";
	size_t i = sizeof(pre) - 1, d;

	if (strncmp(p, pre, i))
		return 0;
	for (d = 0; p[i + d] >= '0' && p[i + d] <= '9'; d++)
		;
	if (d == 0 || d > 5 || p[i + d] != '/')
		return 0;
	return i + d + 1;
}

int xsd_path_canon(const char *in, unsigned domid, unsigned path_max, bool special, char *out)
{
	size_t len = strlen(in), off = 0;

	if (!len)
		return EINVAL;
	if (in[0] == '@') {
		if (!special || len > path_max || len >= XSD_PATH_BUF)
			return EINVAL;
	} else if (in[0] != '/') {
		off = (size_t)snprintf(out, XSD_PATH_BUF, "/local/domain/%u/", domid);
	}
	if (off + len >= XSD_PATH_BUF)
		return EINVAL;
	memcpy(out + off, in, len + 1);
	len += off;
	for (size_t i = 0; i < len; i++) {
		if (!valid_char(out[i]) || (out[i] == '/' && out[i + 1] == '/'))
			return EINVAL;
	}
	if (out[0] == '@')
		return 0;
	if (len > 1 && out[len - 1] == '/')
		return EINVAL;
	if (len > local_prefix(out) + path_max)
		return EINVAL;
	return 0;
}
