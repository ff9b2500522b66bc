/*
 * xenstored/path.h — xenstore path canonicalisation and validation.
 *
 * Pure. Relative paths (not starting with '/' or '@') are taken below the
 * caller's home /local/domain/<domid>/ — on the dom0 socket too, as C
 * xenstored 4.17 does. Valid bytes: A-Z a-z 0-9 - / _ @; no "//", no
 * trailing '/' except the root. Length: at most `path_max` bytes after a
 * leading "/local/domain/<n>/" (C xenstored's rule).
 * Errors: 0 or EINVAL.
 */
#ifndef PVNET_XENSTORED_PATH_H
#define PVNET_XENSTORED_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Big enough for any canonical path built from a 4096-byte payload. */
#define XSD_PATH_BUF 4200u

/* Canonicalise `in` for a caller of domain `domid` into out[XSD_PATH_BUF].
 * `special`: also accept "@name" paths (watches, SET_PERMS). */
int xsd_path_canon(const char *in, unsigned domid, unsigned path_max, bool special, char *out);
/* Length of "/local/domain/<domid>/". */
size_t xsd_home_len(unsigned domid);

#endif
