#!/usr/bin/python3
"""python3-pyxs (Debian) against pvnet-xenstored: several threads pipelining
requests on one Client (replies matched by req_id), transactions with
EAGAIN retry, and a Monitor collecting watch events. Prints ok/not ok lines
and "N passed, N failed"."""
import os
import sys
import threading

from pyxs import Client
from pyxs.exceptions import PyXSError

passed = failed = 0


def check(desc, cond):
    global passed, failed
    if cond:
        passed += 1
        print("ok -", desc)
    else:
        failed += 1
        print("not ok -", desc)


def main():
    sock = os.environ["XENSTORED_PATH"]
    with Client(unix_socket_path=sock) as c:
        c[b"/py/a"] = b"1"
        check("write/read", c[b"/py/a"] == b"1")
        check("list", c.list(b"/py") == [b"a"])
        check("relative path", (c.write(b"pyrel", b"x") or True) and c.read(b"/local/domain/0/pyrel") == b"x")
        check("get_perms", c.get_perms(b"/py/a") == [b"n0"])
        c.set_perms(b"/py/a", [b"b0", b"n0", b"r0"])
        check("set_perms duplicates kept", c.get_perms(b"/py/a") == [b"b0", b"n0", b"r0"])
        check("domain path", c.get_domain_path(999) == b"/local/domain/999")
        check("is_domain_introduced 0", c.is_domain_introduced(0) is True)
        check("is_domain_introduced 999", c.is_domain_introduced(999) is False)
        try:
            c.read(b"/py/missing")
            check("ENOENT raised", False)
        except PyXSError as e:
            check("ENOENT raised", "ENOENT" in str(e) or getattr(e, "args", [None])[0] == 2)

        # Threads pipelining on one client.
        errors = []

        def worker(n):
            try:
                for i in range(200):
                    p = b"/py/t%d/k%d" % (n, i % 20)
                    c[p] = b"%d" % i
                    if c[p] != b"%d" % i:
                        errors.append((n, i))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        ts = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check("8 threads x 200 pipelined write+read on one client", not errors)
        check("all thread keys present", all(len(c.list(b"/py/t%d" % n)) == 20 for n in range(8)))

        # Transactions: isolation, then a real conflict retried.
        c[b"/py/ctr"] = b"0"

        def incr(times):
            with Client(unix_socket_path=sock) as cc:
                for _ in range(times):
                    while True:
                        cc.transaction()
                        v = int(cc[b"/py/ctr"])
                        cc[b"/py/ctr"] = b"%d" % (v + 1)
                        if cc.commit():
                            break
                        retries.append(1)

        retries = []
        ts = [threading.Thread(target=incr, args=(50,)) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check("4 clients x 50 increments with EAGAIN retry = 200 (%d retries)" % len(retries),
              c[b"/py/ctr"] == b"200")

        with Client(unix_socket_path=sock) as c2:
            c2.transaction()
            c2[b"/py/iso"] = b"in-tx"
            check("tx write invisible outside", not c.exists(b"/py/iso"))
            c2.commit()
            check("visible after commit", c[b"/py/iso"] == b"in-tx")
            # pyxs's test_transaction_commit_retry: a foreign create conflicts.
            c2.transaction()
            c[b"/py/foo/bar"] = b"x"
            c2[b"/py/foo/bar"] = b"y"
            check("foreign create makes commit fail (EAGAIN)", c2.commit() is False)

    # Watches from a Monitor while another client writes.
    with Client(unix_socket_path=sock) as c, Client(unix_socket_path=sock) as cm:
        m = cm.monitor()
        m.watch(b"/pyw", b"tok")
        events = []

        def collect():
            for ev in m.wait():
                events.append(ev)
                if len(events) >= 6:
                    return

        t = threading.Thread(target=collect)
        t.start()
        for i in range(5):
            c[b"/pyw/k%d" % i] = b"v"
        t.join(10)
        paths = [e.path for e in events]
        check("monitor: initial event then 5 writes", paths[:1] == [b"/pyw"] and
              sorted(paths[1:]) == sorted(b"/pyw/k%d" % i for i in range(5)))
        check("monitor tokens", all(e.token == b"tok" for e in events))
        m.unwatch(b"/pyw", b"tok")

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
