# The virtual board's `esp32` module, as much of it as MicroPython's ESP32 port offers for flash:
# esp32.Partition over the board's flash image, read from the partition table at 0x8000 as ESP-IDF's
# esp_partition does, with MicroPython's runtime `vfs` partition (last partition's end to end of flash) when
# the table has none. OTA calls write otadata as ESP-IDF's esp_ota_set_boot_partition and
# esp_ota_mark_app_valid_cancel_rollback do; the supervisor's bootloader (fleet/sim/flashmap.py) reads it.
# Formats: REFERENCE-2.md section 2.
import os
import struct
import binascii
import _vboard
from micropython import const

_TABLE = const(0x8000)
_SECTOR = const(4096)
_ENOENT = const(2)
_EINVAL = const(22)
_OTA_NEW = const(0)
_OTA_PENDING = const(1)
_OTA_VALID = const(2)
_OTA_INVALID = const(3)
_OTA_ABORTED = const(4)

_f = open(os.getenv("BYSANS_IMG"), "r+b")
_f.seek(0, 2)
_flash_size = _f.tell()


def _read(offset, n):
    _f.seek(offset)
    return _f.read(n)


def _write(offset, data):
    _f.seek(offset)
    _f.write(data)
    _f.flush()


_FF = b"\xff" * 256  # an erase writes this over and over: no sector-sized buffer in the heap, as an ESP32's
#                      esp_partition_erase_range takes none from MicroPython's heap


def _erase(offset, n):
    _f.seek(offset)
    while n > 0:
        _f.write(_FF if n >= 256 else _FF[:n])
        n -= 256
    _f.flush()


def _table():
    parts = []
    raw = _read(_TABLE, 0xC00)
    for i in range(0, len(raw), 32):
        if raw[i:i + 2] != b"\xaa\x50":
            break
        t, st, off, size = struct.unpack_from("<BBII", raw, i + 2)
        label = raw[i + 12:i + 28].split(b"\0")[0].decode()
        parts.append((t, st, off, size, label))
    if parts and not any(p[4] in ("vfs", "ffat") for p in parts):
        end = max(p[2] + p[3] for p in parts)
        parts.append((1, 0x81, end, _flash_size - end, "vfs"))  # MicroPython's boardctrl_startup()
    return parts


_parts = _table()


def _crc(seq):
    return binascii.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF


def _otadata():
    """(partition, [(seq, state) or None for each sector])"""
    for p in _parts:
        if p[0] == 1 and p[1] == 0:
            out = []
            for s in (0, 1):
                seq, state, crc = struct.unpack_from("<I20xII", _read(p[2] + s * _SECTOR, 32))
                ok = seq != 0xFFFFFFFF and crc == _crc(seq) and state not in (_OTA_INVALID, _OTA_ABORTED)
                out.append((seq, state) if ok else None)
            return p, out
    return None, None


def _otas():
    return sorted([p for p in _parts if p[0] == 0 and 0x10 <= p[1] < 0x20], key=lambda p: p[1])


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=4096):
        if id == Partition.RUNNING:
            id = _vboard.app
        elif id == Partition.BOOT:
            id = Partition._boot_label()
        for p in _parts:
            if p[4] == id:
                self._p = p
                break
        else:
            raise OSError(_ENOENT)
        self._bs = block_size

    @staticmethod
    def _boot_label():
        od, entries = _otadata()
        otas = _otas()
        if od is not None and otas:
            live = sorted([e for e in entries if e is not None], reverse=True)
            if live:
                return otas[(live[0][0] - 1) % len(otas)][4]
        for p in _parts:
            if p[0] == 0:
                return p[4]
        raise OSError(_ENOENT)

    @staticmethod
    def find(type=TYPE_APP, subtype=0xFF, label=None, block_size=4096):
        return [Partition(p[4], block_size) for p in _parts
                if p[0] == type and (subtype == 0xFF or p[1] == subtype) and (label is None or p[4] == label)]

    def info(self):
        t, st, off, size, label = self._p
        return (t, st, off, size, label, False)

    def __repr__(self):
        t, st, off, size, label = self._p
        return "<Partition type=%d, subtype=%d, address=%d, size=%d, label=%s, encrypted=0>" % (
            t, st, off, size, label)

    def _at(self, block, offset, n):
        addr = block * self._bs + (offset or 0)
        if addr < 0 or addr + n > self._p[3]:
            raise OSError(_EINVAL)
        return self._p[2] + addr

    def readblocks(self, block, buf, offset=0):
        _f.seek(self._at(block, offset, len(buf)))
        _f.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        at = self._at(block, offset, len(buf))
        if offset is None:  # the simple block protocol: erase, then write (as MicroPython's port does)
            _erase(at, len(buf))
        _f.seek(at)
        _f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self._p[3] // self._bs
        if op == 5:  # block size
            return self._bs
        if op == 6:  # erase a block
            _erase(self._at(arg, 0, self._bs), self._bs)
            return 0
        if op == 3:
            _f.flush()
        return 0 if op in (1, 2, 3) else None

    def get_next_update(self):
        otas = _otas()
        if not otas:
            raise OSError(_ENOENT)
        labels = [p[4] for p in otas]
        i = labels.index(self._p[4]) + 1 if self._p[4] in labels else 0
        return Partition(labels[i % len(labels)])

    def set_boot(self):
        """esp_ota_set_boot_partition: the image must start like one; then the next otadata sector gets
        the sequence number that selects this slot, state NEW (app rollback is on in MicroPython's OTA build)."""
        otas = _otas()
        if self._p not in otas:
            raise OSError(_EINVAL)
        if _read(self._p[2], 1) != b"\xe9":
            raise OSError(_EINVAL)  # ESP_ERR_OTA_VALIDATE_FAILED
        od, entries = _otadata()
        if od is None:
            raise OSError(_ENOENT)
        n, slot = len(otas), otas.index(self._p)
        live = [(e[0], i) for i, e in enumerate(entries) if e is not None]
        if live:
            seq, sector = max(live)
            i = 0
            while seq > (slot + 1) % n + i * n:
                i += 1
            new, sector = (slot + 1) % n + i * n, 1 - sector
        else:
            new, sector = slot + 1, 0
        Partition._put(od, sector, new, _OTA_NEW)

    @staticmethod
    def _put(od, sector, seq, state):
        at = od[2] + sector * _SECTOR
        _erase(at, _SECTOR)
        _write(at, struct.pack("<I", seq) + b"\xff" * 20 + struct.pack("<II", state, _crc(seq)))

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        od, entries = _otadata()
        if od is None:
            raise OSError(_ENOENT)
        live = sorted([(e[0], i, e[1]) for i, e in enumerate(entries) if e is not None], reverse=True)
        if live and live[0][2] == _OTA_PENDING:
            cls._put(od, live[0][1], live[0][0], _OTA_VALID)
