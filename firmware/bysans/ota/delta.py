# Manifest deltas (docs/formats/update-repository.md, "Manifest deltas"): a release manifest's signed file
# rebuilt from the body of the release the board runs and a short list of copy and add operations, so that
# a one-module release costs a board a few hundred bytes of metadata instead of the whole list of files.
# The rebuilt file goes to ota/new.json (line 1) and ota/new.sig (line 2), exactly where a full download
# goes, and is verified from there the same way (bysans.ota.verify.read_release: the signature is over the
# rebuilt bytes, so a wrong delta can only make a file that fails its signature check).
#
# Layout (format 1, little-endian), declared once here; the host's twin is fleet/release/delta.py:
#   0   4  magic b"BMD" + format byte 1
#   4  32  SHA-256 of the base body (line 1 of the running release's manifest)
#   36  4  length of the rebuilt body, bytes
#   40 ..  operations, one byte each then its fields:
#          1 COPY  u32 offset, u16 length   bytes of the base body
#          2 ADD   u16 length, then that many bytes
#          0 END
#   ..  .  the signature line (line 2 of the signed file, its newline included), to the end
import struct

from .reasons import MALFORMED, Refused

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

MAGIC = b"BMD\x01"
HEADER = const(40)
OP_END = const(0)
OP_COPY = const(1)
OP_ADD = const(2)
MAX_SIG_LINE = const(4096)


class _Source:
    """Exactly `length` bytes of `src` (a stream with readinto), read through `buf`; `fail(done, length,
    OSError or None)` returns the error to raise for a stream that fails or ends early (the client's
    NetError)."""

    def __init__(self, src, length, buf, fail):
        self.src, self.left, self.length, self.mv, self.fail = src, length, length, memoryview(buf), fail

    def read(self, n):
        """The next n bytes (n <= len(buf)) as a view of buf."""
        if n > self.left:
            raise Refused(MALFORMED, "delta ends inside an operation")
        got = 0
        while got < n:
            try:
                k = self.src.readinto(self.mv[got:n])
            except OSError as e:
                raise self.fail(self.length - self.left + got, self.length, e)
            if not k:
                raise self.fail(self.length - self.left + got, self.length, None)
            got += k
        self.left -= n
        return self.mv[:n]


def apply(src, length, base_path, base_digest, body_out, sig_out, buf, max_body, fail):
    """Rebuilds a signed file from the delta in `src` (`length` bytes) and the base body at `base_path`
    (whose SHA-256 is `base_digest`, 32 bytes): the body is written to `body_out`, the signature line to
    `sig_out` (open files). `buf` (bytearray, >= 64 bytes) is the only buffer. Refused(MALFORMED) for a
    delta of another base or format, or one that does not add up."""
    s = _Source(src, length, buf, fail)
    size = len(buf)
    h = s.read(HEADER)
    if bytes(h[:4]) != MAGIC:
        raise Refused(MALFORMED, "not a manifest delta of format 1")
    if bytes(h[4:36]) != base_digest:
        raise Refused(MALFORMED, "delta for another running release")
    want = struct.unpack_from("<I", h, 36)[0]
    if want > max_body:
        raise Refused(MALFORMED, "delta builds %d bytes, metadata is at most %d" % (want, max_body))
    done = 0
    with open(base_path, "rb") as base:
        base_len = base.seek(0, 2)
        while True:
            op = s.read(1)[0]
            if op == OP_END:
                break
            if op == OP_COPY:
                off, n = struct.unpack("<IH", s.read(6))
                if off + n > base_len:
                    raise Refused(MALFORMED, "delta copies past the running manifest")
                base.seek(off)
            elif op == OP_ADD:
                n = struct.unpack("<H", s.read(2))[0]
            else:
                raise Refused(MALFORMED, "unknown delta operation %d" % op)
            if done + n > want:
                raise Refused(MALFORMED, "delta builds more than it announces")
            done += n
            while n:
                k = n if n < size else size
                if op == OP_COPY:
                    mv = s.mv[:k]
                    if base.readinto(mv) != k:
                        raise Refused(MALFORMED, "running manifest ended early")
                else:
                    mv = s.read(k)
                body_out.write(mv)
                n -= k
    if done != want:
        raise Refused(MALFORMED, "delta builds %d of %d bytes" % (done, want))
    if s.left > MAX_SIG_LINE or not s.left:
        raise Refused(MALFORMED, "delta has no signature line, or one too long")
    while s.left:
        sig_out.write(s.read(s.left if s.left < size else size))
