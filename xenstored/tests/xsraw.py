"""xsraw: a raw xenstore wire-protocol client for tests (header + payload,
no validation), so tests can send what real client libraries refuse to."""
import socket
import struct

WATCH_EVENT = 15


class Conn:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.s.settimeout(timeout)
        self.timeout = timeout
        self.req = 0

    def send(self, ty, payload, tx=0, req=None):
        self.req += 1
        self.s.sendall(struct.pack("<IIII", ty, self.req if req is None else req, tx,
                                   len(payload)) + payload)

    def _read(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def recv_msg(self):
        """(type, req_id, tx_id, payload) of the next message."""
        ty, req, tx, ln = struct.unpack("<IIII", self._read(16))
        return ty, req, tx, self._read(ln)

    def call(self, ty, payload, tx=0):
        """Send one request; return its reply, skipping watch events."""
        self.send(ty, payload, tx)
        while True:
            m = self.recv_msg()
            if m[0] != WATCH_EVENT:
                return m

    def events(self, wait=0.2):
        """Watch events that arrive within `wait` seconds."""
        out = []
        self.s.settimeout(wait)
        try:
            while True:
                out.append(self.recv_msg())
        except (socket.timeout, BlockingIOError):
            pass
        self.s.settimeout(self.timeout)
        return out
