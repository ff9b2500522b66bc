/*
 * toolstack/tsx.h — the toolstack's xenstore helpers over libxenstore.
 *
 * What: open a handle on a given daemon socket (libxenstore reads
 * $XENSTORED_PATH when opening, so it is set just for that call), write
 * formatted values, set permissions from the wire notation ("n0 r5"), read
 * strings and numbers, run a block in a transaction retried on EAGAIN.
 * Thread: single-threaded CLI.
 * Errors: bool/NULL with errno as libxenstore; ints 0/-errno.
 */
#ifndef PVNET_TOOLSTACK_TSX_H
#define PVNET_TOOLSTACK_TSX_H

#include <stdbool.h>
#include <xenstore.h>

struct xs_handle *tsx_open(const char *socket);
bool tsx_write(struct xs_handle *h, xs_transaction_t t, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* "n0 rD" style, space separated, owner first. */
bool tsx_perms(struct xs_handle *h, xs_transaction_t t, const char *path, const char *spec);
/* malloc'd NUL-terminated value, or NULL (errno). */
char *tsx_read(struct xs_handle *h, xs_transaction_t t, const char *path);
int tsx_read_uint(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned *out);
/* Wait until `path` reads `want` (polls with a watch); 0 or -ETIMEDOUT. */
int tsx_wait_value(struct xs_handle *h, const char *path, const char *want, int timeout_ms);

#endif
