#!/usr/bin/python3
"""Hostile and slow clients against pvnet-xenstored (raw sockets).
usage: test_negative.py SOCKET DAEMON_PID LOGFILE
- a payload over 4096 bytes drops only that connection;
- malformed requests get error replies and the connection lives on;
- a client that never reads, with thousands of watch events or pipelined
  requests pending, neither grows the daemon without bound nor stalls others.
Prints ok/not ok lines and "N passed, N failed"."""
import os
import socket
import struct
import sys
import time

import xsraw

SOCK, PID, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3]
passed = failed = 0


def check(desc, cond):
    global passed, failed
    if cond:
        passed += 1
        print("ok -", desc)
    else:
        failed += 1
        print("not ok -", desc)


def rss_kib():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def Conn():
    return xsraw.Conn(SOCK)


READ, WATCH, WRITE, ERROR = 2, 4, 11, 16

good = Conn()
check("baseline read", good.call(READ, b"/\0")[0] == READ)

# Oversized payload: that connection is dropped, others live.
bad = Conn()
bad.s.sendall(struct.pack("<IIII", WRITE, 1, 0, 4097) + b"x" * 100)
try:
    dropped = bad.s.recv(16) == b""
except OSError:
    dropped = True
check("payload over 4096 drops the connection", dropped)
check("other connection unaffected", good.call(READ, b"/\0")[0] == READ)
big = Conn()
m = big.call(WRITE, b"/neg/max\0" + b"v" * (4096 - 9))
check("a payload of exactly 4096 is accepted", m[0] == WRITE)

# Malformed requests: error replies, connection lives on.
cases = [
    (READ, b"/no-nul", 0, b"EINVAL\0"),
    (READ, b"", 0, b"EINVAL\0"),
    (READ, b"/a\0/b\0", 0, b"EINVAL\0"),
    (READ, b"/bad path\0", 0, b"EINVAL\0"),
    (READ, b"/\xff\0", 0, b"EINVAL\0"),
    (WRITE, b"/nonul", 0, b"EINVAL\0"),
    (READ, b"/\0", 12345, b"ENOENT\0"),
    (7, b"T\0", 0, b"ENOENT\0"),
    (14, b"/neg\0", 0, b"EINVAL\0"),
    (14, b"/neg\0z9\0", 0, b"EINVAL\0"),
    (WATCH, b"/w\0", 0, b"EINVAL\0"),
    (15, b"", 0, b"ENOSYS\0"),
    (99, b"x", 0, b"ENOSYS\0"),
    (0xffffffff, b"", 0, b"ENOSYS\0"),
    (8, b"1\0", 0, b"EINVAL\0"),
    (0, b"", 0, b"EINVAL\0"),
]
c = Conn()
ok = True
for ty, p, tx, want in cases:
    r = c.call(ty, p, tx)
    if r[0] != ERROR or r[3] != want or r[2] != tx:
        print("#", ty, p, "->", r)
        ok = False
check("%d malformed requests answered with the right error" % len(cases), ok)
check("connection still usable", c.call(READ, b"/\0")[0] == READ)
# Garbage stream of random headers with small lengths: replies, no crash.
g = Conn()
for i in range(200):
    g.send((i * 7919) % 40, bytes((i * j) % 256 for j in range(i % 50)), tx=i % 3)
replies = 0
try:
    for i in range(200):
        g.recv_msg()
        replies += 1
except (EOFError, OSError):
    pass
check("200 garbage requests: a reply each", replies == 200)

# Slow client 1: watches a busy path, never reads.
rss0 = rss_kib()
slow = Conn()
slow.send(WATCH, b"/busy\0tok\0")
w = Conn()
t0 = time.monotonic()
for i in range(20000):
    w.send(WRITE, b"/busy/k%d\0%s" % (i % 100, b"x" * 200))
    if i % 64 == 63:
        for _ in range(64):
            w.recv_msg()
for _ in range(20000 % 64):
    w.recv_msg()
check("20000 writes complete while a watcher does not read (%.1fs)" % (time.monotonic() - t0), True)
rss1 = rss_kib()
check("daemon RSS bounded: %d -> %d KiB" % (rss0, rss1), rss1 - rss0 < 16 * 1024)
check("another client is served", good.call(READ, b"/busy/k1\0")[0] == READ)
with open(LOG) as f:
    check("drop logged", "watch events dropped" in f.read())

# Slow client 2: pipelines requests and never reads replies.
pipe = Conn()
pipe.s.setblocking(False)
sent = 0
try:
    for i in range(200000):
        pipe.s.send(struct.pack("<IIII", READ, i, 0, 7) + b"/busy\0\0"[:7])
        sent += 1
except BlockingIOError:
    pass
rss2 = rss_kib()
check("non-reading pipeliner stopped by back-pressure after %d requests" % sent, sent < 200000)
check("daemon RSS bounded: %d -> %d KiB" % (rss1, rss2), rss2 - rss1 < 16 * 1024)
check("others still served", good.call(READ, b"/\0")[0] == READ)
pipe.s.close()
slow.s.close()

# Connections per domain socket are limited (64 by default).
m = good.call(8, b"3\x000\x001\x00")
check("introduce domain 3", m[0] == 8)
dsock = os.path.join(os.path.dirname(SOCK), "domains", "3.sock")
conns = []
for i in range(65):
    s = socket.socket(socket.AF_UNIX)
    s.connect(dsock)
    conns.append(s)
s = conns[-1]
s.settimeout(5)
s.sendall(struct.pack("<IIII", READ, 1, 0, 2) + b"x\0")
try:
    refused = s.recv(16) == b""
except OSError:
    refused = True
check("65th connection of a domain refused", refused)
conns[0].close()
time.sleep(0.2)
d = xsraw.Conn(dsock)
check("a place freed is usable; the domain is unprivileged", d.call(READ, b"/\0")[3] == b"EACCES\0")
for s in conns[1:]:
    s.close()
time.sleep(0.2)
check("daemon alive", os.path.exists("/proc/%d" % PID) and good.call(READ, b"/\0")[0] == READ)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
