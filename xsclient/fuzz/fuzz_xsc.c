/*
 * libFuzzer target: arbitrary bytes play the xenstore daemon's side of a
 * connection while xsc runs a batch (and a transaction) of three requests.
 * Whatever the "daemon" sends, xsc must return an error or a result, never
 * read out of bounds, leak, or hang.
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "xsclient/xsc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xsc_op ops[3] = {
		{ .type = XS_WRITE, .path = "/a", .value = "1", .len = 1 },
		{ .type = XS_READ, .path = "/a" },
		{ .type = XS_DIRECTORY, .path = "/" },
	};
	int sv[2];
	struct xsc *c;

	if (size > 60000 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	/* The whole "daemon" answer is queued before the client runs. */
	if (pv_write_all(sv[1], data, size) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR);
	c = xsc_attach_fd(sv[0]);
	if (!c) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	xsc_set_timeout(c, 50);
	if (size && (data[0] & 1))
		(void)xsc_transaction(c, ops, 3, 2);
	else
		(void)xsc_batch(c, size ? data[0] >> 1 : 0, ops, 3);
	xsc_ops_free(ops, 3);
	xsc_close(c);
	close(sv[1]);
	return 0;
}
