# The MAC's persistent store (radio.py: get/put): RTC memory with a checksum, which survives deep sleep,
# soft and watchdog resets, and a flash file as the fallback that survives power cuts. So DevNonce and the
# frame counters are never reused: the MAC writes a counter before the frame that uses it goes out, and
# put() returns only once the value is in flash (a temp file renamed over the old one: littlefs renames
# atomically, so a power cut leaves the old record or the new one, never half of one) and in RTC memory.
#
# At start the store takes the valid record (magic, length and CRC-32 good) with the highest sequence number
# from RTC memory and flash; `source` says which ("rtc", "flash" or "empty"). Flash is written first, so RTC
# memory never holds a value flash lacks.
#
# Record layout (little-endian), the same in both places:
#   magic "BLW1" (4) | seq u32 | body length u16 | body | crc32 u32 (of everything before it)
#   body: entries of  name length u8 | name | tag u8 | value
#         tag 0: None; 1: int, i64; 2: bytes, length u16 then the bytes
# RTC memory is shared with the rest of the app: this store owns [rtc_offset, rtc_offset + rtc_size) of it
# and leaves the other bytes as they are. It is read once per boot into bysans.hal.rtcmem's buffer, which the
# store, the diagnostics and the node's state share: a put writes its record there and the buffer back whole.
import binascii
import os
import struct

from bysans.hal import rtcmem

from .errors import LoRaWANError

MAGIC = b"BLW1"
_HEAD = "<4sIH"
_HEAD_SIZE = 10
_CRC_SIZE = 4
RTC_OFFSET = 0    # the first 480 bytes of RTC memory: the LoRaWAN state; bysans.diag keeps 480..511,
RTC_SIZE = 480    # the app 512..2047


class StoreError(LoRaWANError):
    # the values do not fit the RTC region, or flash cannot be written
    pass


def size(data):
    # the record's length for these values
    n = _HEAD_SIZE + _CRC_SIZE
    for name in data:
        v = data[name]
        n += 2 + len(name.encode())
        if isinstance(v, int):
            n += 8
        elif v is not None:
            n += 2 + len(v)
    return n


def encode_into(buf, off, data, seq):
    # writes the record at buf[off:] (size(data) bytes, in place: no copy of it in the heap); returns its length
    mv = memoryview(buf)
    i = off + _HEAD_SIZE
    for name in sorted(data):
        v = data[name]
        n = name.encode()
        buf[i] = len(n)
        mv[i + 1:i + 1 + len(n)] = n
        i += 1 + len(n)
        if v is None:
            buf[i] = 0
            i += 1
        elif isinstance(v, int):
            buf[i] = 1
            struct.pack_into("<q", buf, i + 1, v)
            i += 9
        else:
            buf[i] = 2
            struct.pack_into("<H", buf, i + 1, len(v))
            mv[i + 3:i + 3 + len(v)] = v
            i += 3 + len(v)
    struct.pack_into(_HEAD, buf, off, MAGIC, seq, i - off - _HEAD_SIZE)
    struct.pack_into("<I", buf, i, binascii.crc32(mv[off:i]) & 0xFFFFFFFF)
    return i + _CRC_SIZE - off


def encode(data, seq):
    # the record as a new bytes object (bysans.fuota.dispatch's flash file keeps the same format)
    buf = bytearray(size(data))
    encode_into(buf, 0, data, seq)
    return bytes(buf)


def decode(rec):
    # -> (seq, dict) or None when the record is missing, cut short or corrupt
    if rec is None or len(rec) < _HEAD_SIZE + _CRC_SIZE:
        return None
    magic, seq, n = struct.unpack_from(_HEAD, rec, 0)
    end = _HEAD_SIZE + n
    if magic != MAGIC or len(rec) < end + _CRC_SIZE:
        return None
    if struct.unpack_from("<I", rec, end)[0] != binascii.crc32(memoryview(rec)[:end]) & 0xFFFFFFFF:
        return None
    data = {}
    i = _HEAD_SIZE
    try:
        while i < end:
            k = rec[i]
            name = bytes(rec[i + 1:i + 1 + k]).decode()
            i += 1 + k
            tag = rec[i]
            i += 1
            if tag == 0:
                data[name] = None
            elif tag == 1:
                data[name] = struct.unpack_from("<q", rec, i)[0]
                i += 8
            elif tag == 2:
                m = struct.unpack_from("<H", rec, i)[0]
                data[name] = bytes(rec[i + 2:i + 2 + m])
                i += 2 + m
            else:
                return None
    except (IndexError, ValueError):
        return None
    return seq, data


class PersistentStore:
    def __init__(self, board, path="/lorawan.dat", rtc_offset=RTC_OFFSET, rtc_size=RTC_SIZE):
        self._board = board
        self._path = path
        self._off = rtc_offset
        self._size = rtc_size
        self.data = {}
        self.seq = 0
        self.source = "empty"
        self.flash_writes = 0
        best = None
        r = decode(self._rtc_region())  # copies what it keeps: nothing refers to the shared buffer
        if r is not None:
            best = (r[0], r[1], "rtc")
        f = decode(self._flash_read())
        if f is not None and (best is None or f[0] > best[0]):
            best = (f[0], f[1], "flash")
        if best is not None:
            self.seq, self.data, self.source = best

    def __repr__(self):
        return "<PersistentStore %d entries from %s>" % (len(self.data), self.source)

    def _rtc_region(self):
        m = rtcmem.image(self._board)
        end = min(rtcmem.used(), self._off + self._size)
        return memoryview(m)[self._off:end] if end > self._off else None

    def _flash_read(self):
        try:
            with open(self._path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def get(self, name, default=None):
        return self.data.get(name, default)

    def put(self, name, value):
        if self.data.get(name, 0) == value and name in self.data:
            return
        self.data[name] = value
        self.seq += 1
        n = size(self.data)
        if n > self._size:
            raise StoreError("LoRaWAN state of %d bytes does not fit its %d bytes of RTC memory" % (n, self._size))
        m = rtcmem.image(self._board)  # the record is made in its place there, and flash written from it
        encode_into(m, self._off, self.data, self.seq)
        tmp = self._path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(memoryview(m)[self._off:self._off + n])
            os.rename(tmp, self._path)
        except OSError as e:
            rtcmem.forget()  # the buffer holds a record flash lacks: the next use reads RTC memory again
            raise StoreError("cannot write %s (errno %s)" % (self._path, e.args[0] if e.args else "?"))
        self.flash_writes += 1
        rtcmem.save(self._board, self._off + n)

    def erase(self):
        # forget everything (a new device identity): flash file and RTC region
        self.data = {}
        try:
            os.remove(self._path)
        except OSError:
            pass
        m = rtcmem.image(self._board)
        end = min(rtcmem.used(), self._off + self._size)
        if end > self._off:
            for i in range(self._off, end):
                m[i] = 0
            rtcmem.save(self._board, end)
        self.source = "empty"
