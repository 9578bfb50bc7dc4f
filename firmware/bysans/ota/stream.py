# Streaming a release file to flash (bysans.ota.client uses it): a zlib object inflated by deflate.DeflateIO
# straight from the socket, or a local copy, written through one small buffer with its length and SHA-256
# checked on the way (bysans.ota.files.FileCheck). Never a whole file in RAM.
import deflate
import os

from .files import FileCheck
from .reasons import BAD_HASH, TOO_SHORT, Refused

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

WINDOW_CINFO = const(2)  # zlib CINFO of the largest window accepted: 2**(2 + 8) = 1 KiB


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def inflater(src):
    """A DeflateIO over `src` (a native stream: socket or file) positioned at a zlib object. The header is
    checked here, not by DeflateIO: a header announcing a 32 KiB window would make it allocate 32 KiB.
    Objects have a 1 KiB window (wbits 10); the rest is read as a raw stream (its trailing Adler-32 is
    not needed: the SHA-256 of the inflated bytes is checked)."""
    hdr = bytearray(2)
    got = 0
    while got < 2:
        n = src.readinto(memoryview(hdr)[got:])
        if not n:
            raise Refused(TOO_SHORT, "object ended in its header")
        got += n
    if hdr[0] & 0x0F != 8 or hdr[0] >> 4 > WINDOW_CINFO or (hdr[0] * 256 + hdr[1]) % 31 or hdr[1] & 0x20:
        raise Refused(BAD_HASH, "not a zlib stream with a window of at most 1 KiB")
    return deflate.DeflateIO(src, deflate.RAW, (hdr[0] >> 4) + 8)


def copy_checked(src, entry, dst, buf):
    """Copies `src` (a stream, or a function returning one: called once the output file is open) to `dst`
    through `buf`, refusing the first byte past the announced length; the file gets its name only once
    its length and hash are right (it is written to dst + '.tmp' and renamed). `dst` may instead be a sink
    with put(bytes) (a ROM slot's image: bysans.ota.romfs), whose caller then drops what a refused file
    wrote."""
    fc = FileCheck(entry)
    if type(dst) is not str:
        _into(src() if callable(src) else src, fc, dst.put, buf)
        return
    tmp = dst + ".tmp"
    try:
        with open(tmp, "wb") as out:
            _into(src() if callable(src) else src, fc, out.write, buf)
    except BaseException:
        _remove(tmp)
        raise
    os.rename(tmp, dst)


def _into(src, fc, put, buf):
    # src read through buf into put(), each piece checked: one byte past the announced length is refused
    mv = memoryview(buf)
    size = len(buf)
    while True:
        want = fc.remaining + 1
        n = src.readinto(mv[:want if want < size else size])
        if not n:
            break
        fc.update(mv[:n])
        put(mv[:n])
    fc.finish()


def matches(path, entry, buf):
    """True if the file at `path` has the entry's length and SHA-256."""
    try:
        if os.stat(path)[6] != entry["length"]:
            return False
        mv = memoryview(buf)
        with open(path, "rb") as f:
            fc = FileCheck(entry)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                fc.update(mv[:n])
            fc.finish()
        return True
    except (OSError, Refused):
        return False
