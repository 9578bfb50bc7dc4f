"""Fake ESP images for tests: the header bytes only, as esp-idf lays them out (plus one tiny segment)."""

import struct


def fake_image(chip_id: int, *, magic: int = 0xE9, data: bytes = b"\0\0\0\0") -> bytes:
    """A one-segment ESP image for the chip id; `data` is the segment (e.g. the build's board name)."""
    data += b"\0" * (-len(data) % 4)
    header = struct.pack("<BBBBI", magic, 1, 2, 0x20, 0x40080000)
    ext = struct.pack("<B3sHBHH4sB", 0xEE, b"\0\0\0", chip_id, 0, 0, 0xFFFF, b"\0" * 4, 0)
    seg = struct.pack("<II", 0x3FFB0000, len(data)) + data
    body = header + ext + seg
    pad = (15 - len(body) % 16) % 16
    check = 0xEF
    for b in data:
        check ^= b
    return body + b"\0" * pad + bytes([check])  # the checksum: 0xEF xor every segment byte
