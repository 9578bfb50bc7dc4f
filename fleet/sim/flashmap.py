"""A virtual board's flash as an ESP32's: bootloader, partition table, app images, otadata and `vfs`.

Binary formats (REFERENCE-2.md §2, from ESP-IDF's gen_esp32part.py, esp_flash_partitions.h and
esp_app_format.h):
- partition table at 0x8000: fleet/partitions.py (one parser for the simulator and `fleet flash`);
- otadata: two 4 KiB sectors, each starting with `<I20sII` (ota_seq, seq_label, ota_state, crc), crc =
  crc32 of ota_seq seeded with 0xFFFFFFFF;
- ESP image: 24-byte header (magic E9, segment count, SPI mode, speed/size, entry, extended header with the
  chip id at byte 12), segments, checksum byte at the end of a 16-byte boundary, SHA-256 appended.

`LAYOUTS` are MicroPython v1.28.0's partition CSVs; like MicroPython's `boardctrl_startup()`, the `vfs`
partition is not in the table but spans from the last partition to the end of the physical flash.

This module builds images (a fresh board's) and decides what boots, as the ROM and ESP-IDF's second-stage
bootloader do; whether an app image is valid is esptool's own image parser's verdict.
"""

import hashlib
import struct
import zlib
from dataclasses import dataclass

from .. import partitions
from ..partitions import (  # noqa: F401 - the table's format is fleet.partitions'; re-exported for the sim
    ENTRY, ENTRY_MAGIC, MD5_MAGIC, SUBTYPE_FACTORY, SUBTYPE_FAT, SUBTYPE_NVS, SUBTYPE_OTA_0, SUBTYPE_OTADATA,
    SUBTYPE_PHY, TABLE_OFFSET, TABLE_SIZE, TYPE_APP, TYPE_DATA, Partition, TableError, parse_table, vfs_partition)
from .chips import Chip

SECTOR = 0x1000
OTA_SELECT = struct.Struct("<I20sII")  # esp_ota_select_entry_t: ota_seq, seq_label, ota_state, crc
assert OTA_SELECT.size == 32
IMAGE_HEADER = struct.Struct("<BBBBIB3sHBHH4sB")  # esp_image_header_t (common 8 + extended 16 bytes)
assert IMAGE_HEADER.size == 24
IMAGE_MAGIC = 0xE9

OTA_NEW, OTA_PENDING_VERIFY, OTA_VALID, OTA_INVALID, OTA_ABORTED = 0, 1, 2, 3, 4
OTA_UNDEFINED = 0xFFFFFFFF

# MicroPython v1.28.0 ports/esp32/partitions-*.csv: (label, type, subtype, offset, size)
LAYOUTS = {
    "4MiBplus": [("nvs", TYPE_DATA, SUBTYPE_NVS, 0x9000, 0x6000),
                 ("phy_init", TYPE_DATA, SUBTYPE_PHY, 0xF000, 0x1000),
                 ("factory", TYPE_APP, SUBTYPE_FACTORY, 0x10000, 0x1F0000)],
    "4MiB-ota": [("nvs", TYPE_DATA, SUBTYPE_NVS, 0x9000, 0x4000),
                 ("otadata", TYPE_DATA, SUBTYPE_OTADATA, 0xD000, 0x2000),
                 ("phy_init", TYPE_DATA, SUBTYPE_PHY, 0xF000, 0x1000),
                 ("ota_0", TYPE_APP, SUBTYPE_OTA_0, 0x10000, 0x180000),
                 ("ota_1", TYPE_APP, SUBTYPE_OTA_0 + 1, 0x190000, 0x180000)],
    "8MiBplus-ota": [("nvs", TYPE_DATA, SUBTYPE_NVS, 0x9000, 0x4000),
                     ("otadata", TYPE_DATA, SUBTYPE_OTADATA, 0xD000, 0x2000),
                     ("phy_init", TYPE_DATA, SUBTYPE_PHY, 0xF000, 0x1000),
                     ("ota_0", TYPE_APP, SUBTYPE_OTA_0, 0x10000, 0x270000),
                     ("ota_1", TYPE_APP, SUBTYPE_OTA_0 + 1, 0x280000, 0x270000)],
    "2MiB": [("nvs", TYPE_DATA, SUBTYPE_NVS, 0x9000, 0x6000),
             ("phy_init", TYPE_DATA, SUBTYPE_PHY, 0xF000, 0x1000),
             ("factory", TYPE_APP, SUBTYPE_FACTORY, 0x10000, 0x160000)],
}
LAYOUTS["4MiB-romfs"] = [("nvs", TYPE_DATA, SUBTYPE_NVS, 0x9000, 0x6000),
                         ("phy_init", TYPE_DATA, SUBTYPE_PHY, 0xF000, 0x1000),
                         ("factory", TYPE_APP, SUBTYPE_FACTORY, 0x10000, 0x1D0000),
                         ("romfs", TYPE_DATA, 0x8F, 0x1E0000, 0x20000)]
# Not one of MicroPython's tables: 4MiB-ota with a 384 KiB `romfs` partition after the app slots: the two app
# slots as ROMFS images, 192 KiB each (a whole release as .mpy is an image of about 150 KiB; bysans/ota/romfs.py).
# One partition, because MicroPython 1.28's ESP32 port maps one (the first labelled `romfs`). A board with it
# needs a MicroPython built with MICROPY_VFS_ROM (stock ESP32_GENERIC has no ROMFS): docs/virtual-board.md, "ROMFS".
LAYOUTS["4MiB-ota-romfs"] = LAYOUTS["4MiB-ota"] + [("romfs", TYPE_DATA, 0x8F, 0x310000, 0x60000)]
ROMFS_LABEL = "romfs"  # MicroPython 1.28's ESP32 port maps the data partition of this label (any subtype) at /rom
DEFAULT_LAYOUT = "4MiBplus"  # MicroPython's boards/sdkconfig.base, ESP32_GENERIC and ESP32_GENERIC_S3 alike
FLASH_SIZE_CODES = {0x100000: 0, 0x200000: 1, 0x400000: 2, 0x800000: 3, 0x1000000: 4}  # header byte 3, high nibble


# ----- partition table (fleet/partitions.py) -------------------------------------------------------------

def build_table(layout) -> bytes:
    """The 0x1000-byte partition table for a layout (a LAYOUTS name or a list of rows)."""
    return partitions.build_table(LAYOUTS[layout] if isinstance(layout, str) else layout)


# ----- ESP images ---------------------------------------------------------------------------------------

_WORDS = [hashlib.sha256(bytes([i])).digest()[:4] for i in range(64)]


def build_image(chip: Chip, *, size: int = 0x4000, flash_size: int = 0x400000, seed: bytes = b"bysans",
                entry: int = 0x40080000, load_addr: int = 0x3FFB0000) -> bytes:
    """A valid ESP app image for `chip` of about `size` bytes: one segment of deterministic filler,
    checksum, SHA-256. It stands in for MicroPython's image; its content is not code anyone runs.
    The filler compresses to about 60 % with zlib, an estimate of what a MicroPython image does."""
    filler = bytearray()
    block = 0
    while len(filler) < size:
        h = hashlib.sha256(seed + block.to_bytes(4, "little")).digest()
        # some noise, then six "instructions" from a small vocabulary: machine code's mix, roughly
        filler += h[:14] + b"".join(_WORDS[x % len(_WORDS)] for x in h[14:20])
        block += 1
    data = bytes(filler[:max(16, size - 64) & ~3])
    header = IMAGE_HEADER.pack(IMAGE_MAGIC, 1, 2, (FLASH_SIZE_CODES.get(flash_size, 2) << 4) | 0xF, entry,
                               0xEE, b"\0\0\0", chip.image_chip_id, 0, 0, 0xFFFF, b"\0" * 4, 1)
    body = header + struct.pack("<II", load_addr, len(data)) + data
    checksum = 0xEF
    for b in data:
        checksum ^= b
    pad = 15 - (len(body) % 16)
    body += b"\0" * pad + bytes([checksum])
    return body + hashlib.sha256(body).digest()


def check_image(chip: Chip, data: bytes) -> str | None:
    """None when `data` starts with a valid image for `chip` (esptool's parser, checksum, SHA-256, chip id),
    else what ESP-IDF's bootloader logs about it."""
    if not data or data[0] != IMAGE_MAGIC:
        return "has invalid magic byte (nothing flashed here?)"
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    try:
        image = LoadFirmwareImage(chip.name, data)
    except (FatalError, struct.error, ValueError) as e:
        return f"is not a valid image ({e})"
    if image.chip_id != chip.image_chip_id:
        return f"mismatch chip ID, expected {chip.image_chip_id}, found {image.chip_id}"
    if image.checksum != image.calculate_checksum():
        return f"Checksum failed. Calculated 0x{image.calculate_checksum():x} read 0x{image.checksum:x}"
    if image.append_digest and getattr(image, "stored_digest", None) != getattr(image, "calc_digest", None):
        return "Image hash failed - image is corrupt"
    return None


# ----- otadata --------------------------------------------------------------------------------------------

def ota_crc(seq: int) -> int:
    return zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF


def ota_entry(seq: int, state: int = OTA_UNDEFINED) -> bytes:
    return OTA_SELECT.pack(seq, b"\xff" * 20, state, ota_crc(seq))


def read_otadata(data: bytes) -> list[tuple[int, int] | None]:
    """Each sector's (seq, state) when its entry is valid (seq set, CRC right, not given up), else None."""
    out = []
    for sector in (0, 1):
        seq, _, state, crc = OTA_SELECT.unpack(data[sector * SECTOR:sector * SECTOR + OTA_SELECT.size])
        ok = seq != 0xFFFFFFFF and crc == ota_crc(seq) and state not in (OTA_INVALID, OTA_ABORTED)
        out.append((seq, state) if ok else None)
    return out


# ----- a fresh board and what boots ---------------------------------------------------------------------

def fresh_image(chip: Chip, flash_size: int, layout: str = DEFAULT_LAYOUT) -> bytearray:
    """The flash of a board fresh from the technician: erased, then bootloader, table and the app in the
    first app partition (factory or ota_0); otadata erased (boots ota_0); `vfs` erased (MicroPython makes
    its filesystem on first boot)."""
    flash = bytearray(b"\xff" * flash_size)
    boot = build_image(chip, size=0x4000, flash_size=flash_size, seed=b"bootloader", entry=0x40080400,
                       load_addr=0x3FFF0030)
    flash[chip.bootloader_offset:chip.bootloader_offset + len(boot)] = boot
    flash[TABLE_OFFSET:TABLE_OFFSET + TABLE_SIZE] = build_table(layout)
    app_part = next(p for p in parse_table(bytes(flash[TABLE_OFFSET:TABLE_OFFSET + TABLE_SIZE]))
                    if p.type == TYPE_APP)
    app = build_image(chip, size=0x10000, flash_size=flash_size, seed=b"micropython")
    flash[app_part.offset:app_part.offset + len(app)] = app
    return flash


def merged_image(chip: Chip, *, app_size: int = 0x10000, flash_size: int = 0x400000,
                 layout: str = DEFAULT_LAYOUT, seed: bytes = b"micropython") -> bytes:
    """A base image as MicroPython's release .bin for the chip: bootloader, partition table and app in one
    file, written at the chip's bootloader offset (ESP32 0x1000, ESP32-S3 0x0), the gaps erased (FF)."""
    flash = fresh_image(chip, flash_size, layout)
    app_part = next(p for p in parse_table(bytes(flash[TABLE_OFFSET:TABLE_OFFSET + TABLE_SIZE]))
                    if p.type == TYPE_APP)
    app = build_image(chip, size=app_size, flash_size=flash_size, seed=seed)
    flash[app_part.offset:app_part.offset + 0x10000] = b"\xff" * 0x10000
    flash[app_part.offset:app_part.offset + len(app)] = app
    return bytes(flash[chip.bootloader_offset:app_part.offset + len(app)])


@dataclass
class Boot:
    """What a reset leads to: the app partition that runs (None: none does), the lines the ROM and the
    bootloader print, and otadata to write back (offset, bytes) as the bootloader does."""
    app: Partition | None
    lines: list
    writes: list = ()
    romfs: Partition | None = None  # the table's data partition labelled "romfs" (MicroPython maps it at /rom)


def select_boot(chip: Chip, read) -> Boot:
    """What boots from the flash behind `read(offset, size) -> bytes`, as the ROM and ESP-IDF's
    bootloader (with app rollback, as MicroPython's OTA builds) decide."""
    head = read(chip.bootloader_offset, 4)
    if head[0] != IMAGE_MAGIC:
        return Boot(None, [f"invalid header: 0x{int.from_bytes(head, 'little'):08x}"])
    boot_problem = check_image(chip, read(chip.bootloader_offset, TABLE_OFFSET - chip.bootloader_offset))
    if boot_problem:
        return Boot(None, [f"E (31) esp_image: bootloader image {boot_problem}"])
    try:
        parts = parse_table(read(TABLE_OFFSET, TABLE_SIZE))
    except TableError as e:
        return Boot(None, [f"E (41) flash_parts: {e}", "E (42) boot: Failed to verify partition table",
                           "E (43) boot: load partition table error!"])
    romfs = next((p for p in parts if p.type == TYPE_DATA and p.label == ROMFS_LABEL), None)
    apps = [p for p in parts if p.type == TYPE_APP]
    otas = sorted((p for p in apps if SUBTYPE_OTA_0 <= p.subtype < SUBTYPE_OTA_0 + 16), key=lambda p: p.subtype)
    factory = next((p for p in apps if p.subtype == SUBTYPE_FACTORY), None)
    otadata = next((p for p in parts if p.type == TYPE_DATA and p.subtype == SUBTYPE_OTADATA), None)
    lines, writes, order = [], [], []
    if otadata is not None and otas:
        raw = read(otadata.offset, 2 * SECTOR)
        entries = read_otadata(raw)
        live = [(e[0], i, e[1]) for i, e in enumerate(entries) if e is not None]
        live.sort(reverse=True)
        if live and live[0][2] == OTA_PENDING_VERIFY:
            # the new app was started once and never confirmed itself: give it up, run the previous one
            seq, sector, _ = live.pop(0)
            writes.append((otadata.offset + sector * SECTOR, ota_entry(seq, OTA_ABORTED)))
            lines.append(f"I (51) boot: ota app {(seq - 1) % len(otas)} was not confirmed: rolling back")
        if live:
            seq, sector, state = live[0]
            if state == OTA_NEW:
                writes.append((otadata.offset + sector * SECTOR, ota_entry(seq, OTA_PENDING_VERIFY)))
            order.append(otas[(seq - 1) % len(otas)])
    for p in ([factory] if factory else []) + otas:
        if p not in order:
            order.append(p)
    for p in order:
        problem = check_image(chip, read(p.offset, p.size))
        if problem is None:
            lines.append(f"I (60) boot: Loaded app from partition at offset 0x{p.offset:x}")
            return Boot(p, lines, writes=writes, romfs=romfs)
        lines.append(f"E (61) esp_image: image at 0x{p.offset:x} {problem}")
    lines.append("E (70) boot: No bootable app partitions in the partition table")
    return Boot(None, lines, writes=writes, romfs=romfs)
