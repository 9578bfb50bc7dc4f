"""Where romflash's writes start and end: whole 64 KiB erase blocks where that is quicker for the flash and
changes nothing it holds (the image route's timing is in scripts/bench.py, not here)."""

import hashlib

from provisioning.romflash import blank_before


class Flash:
    """An esptool loader's flash_md5sum over a bytearray."""

    def __init__(self, data: bytes):
        self.data = bytearray(data)
        self.asked = []

    def flash_md5sum(self, offset, size):
        self.asked.append((offset, size))
        return hashlib.md5(self.data[offset:offset + size]).hexdigest()


def test_an_erased_head_is_written_as_erased_bytes_and_anything_else_is_left_alone():
    blank = Flash(b"\xff" * 0x20000)
    assert blank_before(blank, 0x1000) == 0x1000 and blank.asked == [(0, 0x1000)]  # an ESP32's bootloader
    held = Flash(b"digest" + b"\xff" * 0x1FFFA)  # e.g. a secure boot digest before the bootloader
    assert blank_before(held, 0x1000) == 0


def test_no_head_when_aligned_or_when_sector_erases_are_quicker():
    f = Flash(b"\xff" * 0x40000)
    assert blank_before(f, 0x10000) == 0 and blank_before(f, 0) == 0
    assert blank_before(f, 0x1C000) == 0  # 4 sectors left in the block: erasing them beats a block erase
    assert blank_before(f, 0x1B000) == 0xB000  # 5 sectors: one block erase is quicker
    assert f.asked == [(0x10000, 0xB000)]
