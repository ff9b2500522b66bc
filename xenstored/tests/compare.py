#!/usr/bin/python3
"""Send the same requests to pvnet-xenstored and to Xen 4.17's C xenstored
and compare every reply and watch event byte for byte (header and payload).
usage: compare.py PVNET_SOCKET REFERENCE_SOCKET
Known, documented differences are normalised: DIRECTORY_PART's generation
number (opaque) is replaced by "<gen>". Prints ok/not ok per case and
"N passed, N failed"."""
import sys

import xsraw

# (type, tx, payload); tx "T" = the id returned by the last TRANSACTION_START.
CASES = [
    # paths and argument checks
    (2, 0, b"/\0"), (2, 0, b"\0"), (2, 0, b"/tool"), (2, 0, b"/a//b\0"), (2, 0, b"/a/\0"),
    (2, 0, b"/a\0b\0"), (2, 0, b"/a.b\0"), (2, 0, b"@releaseDomain\0"), (3, 0, b"@releaseDomain\0"),
    (1, 0, b"/\0"), (1, 0, b"/tool\0x\0"), (3, 0, b"/\0"),
    # writes, implicit parents, values
    (11, 0, b"/c/a/b\0value"), (2, 0, b"/c/a/b\0"), (2, 0, b"/c/a\0"), (11, 0, b"/c/empty\0"),
    (11, 0, b"/c/bin\0x\0y"), (2, 0, b"/c/bin\0"), (11, 0, b"/c/nonul"), (12, 0, b"/c/m/n\0"),
    (12, 0, b"/c/m/n\0"), (1, 0, b"/c\0"), (11, 0, b"rel/x\0r"), (2, 0, b"/local/domain/0/rel/x\0"),
    (2, 0, b"rel/x\0"), (12, 0, b"\0"),
    # rm
    (13, 0, b"/\0"), (13, 0, b"/c/nope\0"), (13, 0, b"/nope/x\0"), (13, 0, b"/c/m\0"), (1, 0, b"/c\0"),
    # permissions
    (14, 0, b"/c/a\0n0\0r5\0b7\0"), (3, 0, b"/c/a\0"), (3, 0, b"/c/a/b\0"), (14, 0, b"/c/a\0"),
    (14, 0, b"/c/a\0x1\0"), (14, 0, b"/c/a\0r\0"), (14, 0, b"/c/a\0b0\0n0\0r0\0"), (3, 0, b"/c/a\0"),
    (14, 0, b"/nope\0n0\0"), (14, 0, b"@releaseDomain\0n0\0r3\0"), (14, 0, b"@other\0n0\0"),
    # watches (events compared too)
    (4, 0, b"/c\0t1\0"), (4, 0, b"/c\0t1\0"), (4, 0, b"/c\0t2\0"), (4, 0, b"rel\0tr\0"),
    (4, 0, b"/c\0t\0x\0"), (4, 0, b"/c\0"), (4, 0, b"@introduceDomain\0ti\0"), (4, 0, b"@any\0ta\0"),
    (11, 0, b"/c/a/new/deep\0v"), (13, 0, b"/c/a\0"), (11, 0, b"rel/y\0v"), (14, 0, b"/c\0n0\0"),
    (5, 0, b"/c\0t2\0"), (5, 0, b"/c\0t2\0"), (5, 0, b"/c\0nope\0"), (11, 0, b"/c/z\0v"),
    (21, 0, b"\0"), (11, 0, b"/c/zz\0v"),
    # transactions
    (6, 0, b"\0"), (6, "T", b"\0"), (11, "T", b"/t/x\0in"), (2, 0, b"/t/x\0"), (2, "T", b"/t/x\0"),
    (7, "T", b"X\0"), (7, "T", b"T\0"), (2, 0, b"/t/x\0"), (7, "T", b"T\0"), (2, 99, b"/\0"),
    (7, 0, b"T\0"), (7, 0, b"X\0"), (6, 0, b"\0"), (11, "T", b"/t/y\0v"), (7, "T", b"F\0"),
    (2, 0, b"/t/y\0"), (6, 0, b"ignored\0"), (7, "T", b"T\0"),
    # domains and misc
    (10, 0, b"7\0"), (10, 0, b"abc\0"), (10, 0, b"-1\0"), (10, 0, b"5x\0"), (10, 0, b"\0"),
    (17, 0, b"0\0"), (17, 0, b"9\0"), (17, 0, b"32752\0"), (9, 0, b"0\0"), (9, 0, b"9\0"),
    (18, 0, b"0\0"), (18, 0, b"9\0"), (19, 0, b"9\x008\0"), (8, 0, b"9\x001\x000\0"),
    (8, 0, b"9\x001\0"), (15, 0, b"\0"), (16, 0, b"\0"), (20, 0, b"\0"), (23, 0, b"\0"),
    (99, 0, b"x"), (0, 0, b"check\0"), (0, 0, b"print\0hello\0"), (0, 0, b"nope\0"),
    # directory part
    (22, 0, b"/\x000\0"), (22, 0, b"/\x003\0"), (22, 0, b"/\x00999\0"), (22, 0, b"/c\0"),
    # sizes: a 4096-byte payload, a path at the length limit and one past it
    (11, 0, b"/big\0" + b"v" * (4096 - 5)), (2, 0, b"/big\0"),
    (11, 0, b"/" + b"p" * 2047 + b"\0x"), (11, 0, b"/" + b"p" * 2048 + b"\0x"),
    (11, 0, b"/local/domain/0/" + b"q" * 2048 + b"\0x"),
    (11, 0, b"/local/domain/0/" + b"q" * 2049 + b"\0x"),
]

# A second connection watches while the first one changes the store; after
# each change the watcher's events are compared.
WATCHES = [b"/w\0a\0", b"/w/x/y\0deep\0", b"/\0root\0", b"wrel\0rel\0", b"@releaseDomain\0r\0"]
CHANGES = [
    (11, b"/w/x/y/z\0v"), (11, b"/w/x/y/z\0v2"), (12, b"/w/x/m\0"), (12, b"/w/x/m\0"),
    (14, b"/w/x\0n0\0r4\0"), (13, b"/w/x\0"), (13, b"/w/x\0"), (11, b"wrel/k\0v"),
    (13, b"/local/domain/0/wrel\0"), (11, b"/other\0v"), (2, b"/w\0"),
]


class Conn(xsraw.Conn):
    """Remembers the last transaction id; normalises DIRECTORY_PART."""

    def __init__(self, path):
        super().__init__(path, timeout=5)
        self.tx = 0

    def call(self, ty, tx, payload, rid):
        txid = self.tx if tx == "T" else tx
        self.send(ty, payload, txid, req=rid)
        out = []
        while True:
            t, r, x, d = self.recv_msg()
            if t == 22:
                d = b"<gen>" + d[d.index(b"\0"):]
            out.append((t, r, x if x != txid or tx != "T" else "T", d))
            if t == 6:
                self.tx = int(d.rstrip(b"\0"))
            if not (t == xsraw.WATCH_EVENT and r == 0):
                return out


def main():
    pv, ref = Conn(sys.argv[1]), Conn(sys.argv[2])
    # C xenstored's toolstack would have made these; pvnet pre-creates them.
    ref.call(12, 0, b"/local/domain/0\0", 1)
    passed = failed = 0
    for i, (ty, tx, p) in enumerate(CASES):
        a = pv.call(ty, tx, p, 100 + i)
        b = ref.call(ty, tx, p, 100 + i)
        if a == b:
            passed += 1
            print("ok - %d %r" % (ty, p))
        else:
            failed += 1
            print("not ok - %d %r\n#  pvnet: %r\n#  C:     %r" % (ty, p, a, b))

    wp, wr = Conn(sys.argv[1]), Conn(sys.argv[2])
    for w in WATCHES:
        wp.call(4, 0, w, 1)
        wr.call(4, 0, w, 1)
    nev = 0
    for i, (ty, p) in enumerate(CHANGES):
        pv.call(ty, 0, p, 500 + i)
        ref.call(ty, 0, p, 500 + i)
        a, b = wp.events(), wr.events()
        nev += len(a)
        if a == b:
            passed += 1
            print("ok - events after %d %r: %d" % (ty, p, len(a)))
        else:
            failed += 1
            print("not ok - events after %d %r\n#  pvnet: %r\n#  C:     %r" % (ty, p, a, b))
    if nev >= 15:
        passed += 1
        print("ok - %d watch events compared" % nev)
    else:
        failed += 1
        print("not ok - only %d watch events compared" % nev)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
