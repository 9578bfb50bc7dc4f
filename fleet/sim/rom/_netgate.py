# The virtual board's `socket`: the unix port's own (the host's) behind a gate, so the firmware's sockets
# fail as an ESP32's do until its WLAN holds a DHCP lease from an access point of the board's scenario
# (network.py, fleet/sim/wlan.py), and then reach only the host's loopback (the update server, the lab).
# install() puts it in sys.modules before boot.py runs: `import socket` on the board gets this one.
# Errors are an ESP32's: lwIP's getaddrinfo failure OSError(-202), newlib's EHOSTUNREACH (118) on
# connect, ETIMEDOUT (116) when the link stays down longer than the socket's timeout. With a link rate in the
# scenario's AP ("rate_kbps"), each socket's bytes, both ways, take the time they would at that rate.
import io
import sys
import time

import _vboard
import socket as _s

EAI_FAIL = -202
EAGAIN = 11
ETIMEDOUT = 116
EHOSTUNREACH = 118
STALL_S = 60  # a blocking socket waits this long for a lost link before it gives up
RX_CHUNK = 256  # received bytes are taken from the host's socket in chunks into a buffer each socket keeps:
#                 a reader that takes one byte at a time (deflate.DeflateIO does) asks the gate once a chunk.
#                 An ESP32's lwIP keeps what arrived outside the MicroPython heap; this buffer is in it.


def _up():
    return _vboard.call("wlan.up") == b"1"


def _numeric(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    # lwIP parses a numeric address without a network; a name needs DNS, and the scenario's LAN knows only
    # localhost (its DHCP server gives the board the host as resolver).
    if not _numeric(host) and (host != "localhost" or not _up()):
        raise OSError(EAI_FAIL)
    return _s.getaddrinfo(host, port, af, type, proto, flags)


def _loopback(addr):
    a = bytes(addr)
    fam = a[0] | a[1] << 8
    if fam == _s.AF_INET:
        return a[4] == 127
    if fam == _s.AF_INET6:
        return a[8:24] == b"\0" * 15 + b"\1"
    return False


class socket(io.IOBase):
    def __init__(self, af=_s.AF_INET, type=_s.SOCK_STREAM, proto=0):
        self._s = _s.socket(af, type, proto)
        self._timeout = None
        self._rx = bytearray(RX_CHUNK)
        self._mv = memoryview(self._rx)
        self._rest = self._mv[1:]
        self._pos = self._end = 0
        self._ms_per_byte = 0  # real ms per byte at the link's rate (0: as fast as the loopback)
        self._owed_ms = 0.0

    def settimeout(self, t):
        self._timeout = t
        self._s.settimeout(t)

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    def setsockopt(self, *args):
        self._s.setsockopt(*args)

    def connect(self, addr):
        if not _up() or not _loopback(addr):
            raise OSError(EHOSTUNREACH)
        kbit = float(_vboard.call("wlan.rate") or b"0")
        if kbit > 0:
            self._ms_per_byte = 8 / kbit / _vboard.speed  # 8 bits at kbit/s is 8/kbit ms, simulated
        self._s.connect(addr)

    def _pace(self, n):
        # n bytes crossed the link: wait the time they take at its rate (whole ms; the rest carried over)
        if self._ms_per_byte:
            self._owed_ms += n * self._ms_per_byte
            if self._owed_ms >= 1:
                ms = int(self._owed_ms)
                self._owed_ms -= ms
                time.sleep_ms(ms)

    def _link(self):
        # Bytes move only while the link is up. A drop-out stalls the connection, which goes on when the AP
        # returns within the socket's timeout (TCP retransmits), and times out otherwise.
        if _up():
            return
        t = STALL_S if self._timeout is None else self._timeout
        if t == 0:
            raise OSError(EAGAIN)
        deadline = time.ticks_add(time.ticks_ms(), int(t * 1000 / _vboard.speed) + 1)
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            time.sleep_ms(20)
            if _up():
                return
        raise OSError(ETIMEDOUT)

    def _fill(self):
        # what has arrived and not been read yet; 0 at the end of the stream
        if self._pos == self._end:
            self._link()
            self._pos = 0
            # Into the buffer this socket keeps, never a new object per chunk: an ESP32's lwIP holds what
            # arrived outside the heap. One byte as the timeout allows, then what else has arrived (readinto
            # alone would wait for a full chunk).
            self._end = self._s.readinto(self._rx, 1) or 0
            if self._end:
                self._s.settimeout(0)
                try:
                    self._end += self._s.readinto(self._rest) or 0
                finally:
                    self._s.settimeout(self._timeout)
            self._pace(self._end)
            self._link()  # bytes arrive only while the link is up: a drop-out during the wait holds them
        return self._end - self._pos

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else min(n, len(buf))
        k = min(n, self._fill())
        if k:
            buf[:k] = self._mv[self._pos:self._pos + k]
            self._pos += k
        return k

    def read(self, n=-1):
        out = bytearray()
        while n < 0 or len(out) < n:
            k = self._fill()
            if not k:
                break
            if n >= 0:
                k = min(k, n - len(out))
            out += self._mv[self._pos:self._pos + k]
            self._pos += k
        return bytes(out)

    def recv(self, n):
        k = min(n, self._fill())
        out = bytes(self._mv[self._pos:self._pos + k])
        self._pos += k
        return out

    def readline(self):
        out = bytearray()
        while True:
            k = self._fill()
            if not k:
                return bytes(out)
            rx, end = self._rx, self._pos + k
            i = self._pos
            while i < end and rx[i] != 10:  # no copy of the chunk to look for the newline
                i += 1
            if i < end:
                out += self._mv[self._pos:i + 1]
                self._pos = i + 1
                return bytes(out)
            out += self._mv[self._pos:end]
            self._pos = end

    def write(self, buf):
        self._link()
        n = self._s.write(buf)
        self._pace(n or 0)
        return n

    send = write

    def sendall(self, buf):
        mv = memoryview(buf)
        while mv:
            mv = mv[self.write(mv):]

    def ioctl(self, op, arg):
        if op == 4:  # MP_STREAM_CLOSE
            self._s.close()
        return 0

    def close(self):
        self._s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def install(gate):
    """network always; the gated socket when the supervisor says the board's network is gated."""
    import network

    sys.modules["network"] = network
    if gate:
        mod = sys.modules[__name__]
        for name in dir(_s):
            if not name.startswith("_") and name not in ("socket", "getaddrinfo"):
                setattr(mod, name, getattr(_s, name))
        sys.modules["socket"] = mod
