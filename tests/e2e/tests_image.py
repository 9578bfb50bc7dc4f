"""Fake ESP images for tests: the header bytes only, as esp-idf lays them out (plus one tiny segment)."""

import struct


def fake_image(chip_id: int, *, magic: int = 0xE9) -> bytes:
    header = struct.pack("<BBBBI", magic, 1, 2, 0x20, 0x40080000)
    ext = struct.pack("<B3sHBHH4sB", 0xEE, b"\0\0\0", chip_id, 0, 0, 0xFFFF, b"\0" * 4, 0)
    seg = struct.pack("<II", 0x3FFB0000, 4) + b"\0\0\0\0"
    body = header + ext + seg
    pad = (15 - len(body) % 16) % 16
    return body + b"\0" * pad + bytes([0xEF ^ 0])  # checksum of a zero segment: 0xEF
