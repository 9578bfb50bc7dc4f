# The tokens of line 1 of a signed metadata file (the signed body), read through one small buffer and
# hashed as they are read: signed.read walks them into a document. No copy of the whole file is made.
# Strict JSON (RFC 8259) with integers only (the format has no floats): anything else is MALFORMED (no
# control character in a string, no leading zero, no float). The first newline ends the body (canonical
# JSON has none). A small module of its own: a small heap compiles one module at a time.
import hashlib
import json

from .reasons import MALFORMED, Refused, _need

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

CHUNK = const(256)      # the default buffer; it grows for a longer token (a string), up to MAX_TOKEN
MAX_TOKEN = const(4096)
MAX_DEPTH = const(8)    # nesting (a manifest needs 3); each level costs C stack on a board (signed._nested)


def _bad(detail="not JSON"):
    raise Refused(MALFORMED, detail)


class _Mem:
    """Bytes in memory as a stream."""

    def __init__(self, data):
        self.mv = memoryview(data)
        self.p = 0

    def readinto(self, b):
        n = min(len(b), len(self.mv) - self.p)
        b[:n] = self.mv[self.p:self.p + n]
        self.p += n
        return n


class Body:
    """`src`: bytes, or a stream with readinto (a file); `buf`: the bytearray it is read through. Once the
    body is read, `h` holds its SHA-256 and `tail` the bytes read past its newline (None when the stream
    ended without one)."""

    def __init__(self, src, buf=None):
        self.s = _Mem(src) if type(src) in (bytes, bytearray, memoryview) else src
        self.b = buf if buf is not None else bytearray(CHUNK)
        self.i = self.n = 0
        self.done = False
        self.tail = None
        self.h = hashlib.sha256()

    def _fill(self):
        """Keeps b[i:n] (moved to the front), reads more of the body; False at its end."""
        if self.done:
            return False
        b = self.b
        k = self.n - self.i
        if k == len(b):  # a token as long as the buffer
            _need(k < MAX_TOKEN, "a JSON token is too long")
            b = bytearray(2 * k)
            b[:k] = self.b
            self.b = b
        elif k:
            b[:k] = memoryview(b)[self.i:self.n]
        self.i = 0
        mv = memoryview(b)
        r = self.s.readinto(mv[k:]) or 0
        j = b.find(b"\n", k, k + r)
        if j >= 0:
            self.tail = bytes(mv[j + 1:k + r])
        else:
            j = k + r
        self.done = j < k + r or not r
        self.h.update(mv[k:j])
        self.n = j
        return j > k

    def _peek(self):
        """The next byte that is not whitespace (an int), or -1 at the end of the body."""
        while True:
            b = self.b
            i = self.i
            n = self.n
            while i < n:
                c = b[i]
                if c != 32 and c != 9 and c != 13:
                    self.i = i
                    return c
                i += 1
            self.i = i
            if not self._fill():
                return -1

    def _str(self):
        j = 1  # where to look for the closing quote, from the token's start
        while True:
            b = self.b
            i = self.i
            q = b.find(b'"', i + j, self.n)
            if q < 0:
                j = self.n - i
                if not self._fill():
                    _bad()
                continue
            k = q - 1
            while b[k] == 92:  # an odd number of backslashes before it escapes the quote
                k -= 1
            if not (q - 1 - k) & 1:
                break
            j = q + 1 - i
        self.i = q + 1
        if q == i + 1:
            return ""
        mv = memoryview(b)[i + 1:q]
        if min(mv) < 32:
            _bad("a control character in a string")
        try:
            if b.find(b"\\", i + 1, q) < 0:
                return str(mv, "utf-8")
            t = bytes(memoryview(b)[i:q + 1])
            p = t.find(b"\\")
            while p >= 0:  # the escapes JSON has, \uXXXX with 4 hex digits (json.loads takes more)
                c = t[p + 1]
                if c not in b'"\\/bfnrtu' or c == 117 and not _hex4(t[p + 2:p + 6]):
                    _bad()
                p = t.find(b"\\", p + 2)
            return json.loads(t)
        except ValueError:  # UnicodeError too
            _bad()

    def _int(self):
        # -?(0|[1-9][0-9]*)
        j = 0
        while True:
            b = self.b
            i = self.i
            while i + j < self.n and (48 <= b[i + j] <= 57 or not j and b[i] == 45):
                j += 1
            if i + j < self.n or not self._fill():
                break
        t = bytes(memoryview(self.b)[self.i:self.i + j])
        self.i += j
        d = 1 if t[0] == 45 else 0
        if d == j or (t[d] == 48 and j > d + 1) or (self.i < self.n and self.b[self.i] in b".eE"):
            _bad()
        return int(t)

    def word(self, w):
        """Takes the literal `w` (b"true", b"false", b"null"), which must come next."""
        while self.n - self.i < len(w):
            if not self._fill():
                _bad()
        _need(self.b[self.i:self.i + len(w)] == w, "not JSON")
        self.i += len(w)

    def rest(self, limit):
        """The bytes after the body's newline, to the end of the stream (at most `limit`)."""
        _need(self.tail is not None, "no signature line")
        out = bytearray(self.tail)
        b = self.b
        while True:
            r = self.s.readinto(b)
            if not r:
                return out
            out.extend(memoryview(b)[:r])
            _need(len(out) <= limit, "signature line too long")


def _hex4(t):
    if len(t) != 4:
        return False
    for x in t:
        if x not in b"0123456789abcdefABCDEF":
            return False
    return True
