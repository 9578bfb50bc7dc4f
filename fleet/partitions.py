"""The ESP-IDF partition table, one encoder and one decoder for the whole code base: the virtual board's
bootloader (fleet/sim/flashmap.py) and `fleet flash`'s image route (provisioning/romflash.py) both read it
here, each wrapping TableError in its own error.

Format (ESP-IDF gen_esp32part.py, esp_flash_partitions.h; REFERENCE-2.md §2): at 0x8000, 32-byte entries
`<2sBBLL16sL` (magic AA 50, type, subtype, offset, size, label NUL-padded, flags), then an MD5 entry (EB EB,
14 x FF, the MD5 of the entries before it), then 0xFF to the end of the 0xC00 bytes the bootloader reads.

MicroPython's `vfs` partition is usually not in the table: like its `boardctrl_startup()` (ports/esp32),
vfs_partition() spans it from the last partition's end to the end of the physical flash.
"""

import hashlib
import struct
from dataclasses import dataclass

TABLE_OFFSET = 0x8000
TABLE_SIZE = 0x1000
MAX_TABLE = 0xC00  # what ESP-IDF's bootloader reads of it (ESP_PARTITION_TABLE_MAX_LEN)
ENTRY = struct.Struct("<2sBBLL16sL")  # one partition: magic, type, subtype, offset, size, label, flags
assert ENTRY.size == 32
ENTRY_MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb"

TYPE_APP, TYPE_DATA = 0x00, 0x01
SUBTYPE_FACTORY, SUBTYPE_OTA_0 = 0x00, 0x10
SUBTYPE_OTADATA, SUBTYPE_PHY, SUBTYPE_NVS, SUBTYPE_FAT = 0x00, 0x01, 0x02, 0x81


@dataclass(frozen=True)
class Partition:
    label: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def end(self):
        return self.offset + self.size


class TableError(ValueError):
    """The table is damaged or missing; `empty` when there is no table at all (an erased flash)."""

    def __init__(self, message: str, *, empty: bool = False):
        super().__init__(message)
        self.empty = empty


def build_table(rows) -> bytes:
    """The TABLE_SIZE-byte table for rows of (label, type, subtype, offset, size)."""
    entries = b"".join(ENTRY.pack(ENTRY_MAGIC, t, st, off, size, label.encode(), 0)
                       for label, t, st, off, size in rows)
    md5 = MD5_MAGIC + b"\xff" * 14 + hashlib.md5(entries).digest()
    return (entries + md5).ljust(TABLE_SIZE, b"\xff")


def md5_entry_at(data: bytes) -> int | None:
    """Where the MD5 entry starts in the first bytes of a table, if they reach it (a reader that fetches the
    table in pieces stops there)."""
    for i in range(0, len(data) - len(data) % ENTRY.size, ENTRY.size):
        if data[i:i + 2] == MD5_MAGIC:
            return i
    return None


def parse_table(data: bytes) -> list[Partition]:
    """The partitions of a table, checked as the bootloader checks it (each entry's magic, the MD5);
    TableError when it is damaged or absent."""
    parts = []
    for i in range(0, min(len(data), MAX_TABLE), ENTRY.size):
        raw = data[i:i + ENTRY.size]
        if raw[:2] == MD5_MAGIC:
            if hashlib.md5(data[:i]).digest() != raw[16:32]:
                raise TableError("partition table MD5 mismatch")
            return parts
        if raw == b"\xff" * ENTRY.size:
            break
        magic, t, st, off, size, label, flags = ENTRY.unpack(raw)
        if magic != ENTRY_MAGIC:
            raise TableError(f"partition {len(parts)} invalid magic number 0x{int.from_bytes(magic, 'little'):x}")
        parts.append(Partition(label.rstrip(b"\0").decode(errors="replace"), t, st, off, size, flags))
    if not parts:
        raise TableError("partition table is empty", empty=True)
    return parts


def vfs_partition(parts: list[Partition], flash_size: int) -> Partition:
    """MicroPython's `vfs`: the table's own, else from the last partition's end to the end of the flash."""
    for p in parts:
        if p.label == "vfs":
            return p
    start = max(p.end for p in parts)
    return Partition("vfs", TYPE_DATA, SUBTYPE_FAT, start, flash_size - start)
