# What survives deep sleep: the node's buffers (arrays), saved as one blob in RTC memory behind a CRC-32.
# RTC memory is shared: the LoRaWAN store (bysans.lorawan.store) owns bytes [0, 512); the node's blob starts
# at OFFSET and may use the rest (1536 bytes). RTC memory is read once per boot into bysans.hal.rtcmem's buffer,
# which the three share: a save writes the node's bytes into it and writes it back whole, the bytes before
# OFFSET as they are.
# Layout of the blob (at OFFSET), little-endian:
#   0   magic          3  b"BYS"
#   3   version        1  FORMAT
#   4   layout         2  CRC-32 of the node's layout string, low 16 bits (a config change starts afresh)
#   6   body length    2
#   8   resets         2  checksum failures seen since power-on ...
#   10  ~resets        2  ... and its complement: the count survives a corrupted body
#   12  body CRC-32    4
#   16  body           the parts, in the order given, each as its raw bytes
# An empty memory (after power-on or a hard reset) is a fresh start; a blob that fails its checks is a
# corrupted one: nothing of it is used, and the failure is counted.
import struct

import micropython
from micropython import const

from bysans.hal import rtcmem

try:
    from binascii import crc32
except ImportError:  # a build without binascii.crc32
    crc32 = None

MAGIC = b"BYS"
FORMAT = const(1)
HEADER = "<3sBHHHHI"
HEADER_BYTES = const(16)
RTC_BYTES = const(2048)  # RTC user memory on an ESP32 (REFERENCE.md §5)
OFFSET = const(512)      # after the LoRaWAN store's region (lorawan/store.py RTC_OFFSET, RTC_SIZE)
CAPACITY = const(1536)   # RTC_BYTES - OFFSET: the node's share

# restore() results
OK = const(0)
EMPTY = const(1)
CORRUPT = const(2)
CHANGED = const(3)
STATUS_NAMES = ("ok", "empty", "corrupt", "changed")


class StateError(Exception):
    """The node's state does not fit its share of RTC memory."""


def _crc32(data):
    if crc32 is not None:
        return crc32(data) & 0xFFFFFFFF
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 & -(c & 1))
    return c ^ 0xFFFFFFFF


@micropython.viper
def _copy(dst, doff: int, src, soff: int, n: int):
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[doff + i] = s[soff + i]
        i += 1


class RtcState:
    """parts: the buffers to keep (array('i'/'h'/'B'), bytearray), saved and restored in this order."""

    def __init__(self, parts, layout):
        self.parts = parts
        self.sizes = [len(bytes(p)) for p in parts]
        self.body_bytes = sum(self.sizes)
        if HEADER_BYTES + self.body_bytes > CAPACITY:
            raise StateError("state of %d bytes does not fit %d of RTC memory" % (self.body_bytes, CAPACITY))
        self.layout = _crc32(layout.encode()) & 0xFFFF
        self.resets = 0  # checksum failures since power-on (after restore())

    def restore(self, board):
        """Fills the parts from RTC memory if it holds a sound blob of this layout; returns OK, EMPTY,
        CORRUPT or CHANGED. The parts are left untouched unless the result is OK."""
        raw = rtcmem.image(board)
        used = rtcmem.used()
        if used <= OFFSET:  # nothing of ours (power-on, hard reset; or only the LoRaWAN store's bytes)
            return EMPTY
        raw = memoryview(raw)[OFFSET:used]
        if len(raw) < HEADER_BYTES or bytes(raw[:3]) != MAGIC:
            self.resets = 1
            return CORRUPT
        _m, version, layout, n, resets, inv, crc = struct.unpack_from(HEADER, raw, 0)
        self.resets = resets if resets ^ inv == 0xFFFF else 0
        if version != FORMAT or HEADER_BYTES + n > len(raw) or _crc32(memoryview(raw)[HEADER_BYTES:HEADER_BYTES + n]) != crc:
            self.resets += 1
            return CORRUPT
        if layout != self.layout or n != self.body_bytes:
            return CHANGED
        off = HEADER_BYTES
        for i in range(len(self.parts)):
            _copy(self.parts[i], 0, raw, off, self.sizes[i])
            off += self.sizes[i]
        return OK

    def save(self, board):
        img = rtcmem.image(board)  # the bytes before OFFSET belong to others: written back as they are
        off = OFFSET + HEADER_BYTES
        for i in range(len(self.parts)):
            _copy(img, off, self.parts[i], 0, self.sizes[i])
            off += self.sizes[i]
        r = min(self.resets, 0xFFFF)
        end = OFFSET + HEADER_BYTES + self.body_bytes
        struct.pack_into(HEADER, img, OFFSET, MAGIC, FORMAT, self.layout, self.body_bytes, r, r ^ 0xFFFF,
                         _crc32(memoryview(img)[OFFSET + HEADER_BYTES:end]))
        rtcmem.save(board, end, tail=True)  # the node's region is the last: RTC memory ends where its blob does
