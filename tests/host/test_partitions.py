"""One ESP-IDF partition-table parser (fleet/partitions.py) for the simulator's bootloader and `fleet flash`:
each caller names its errors its own way. The byte layout itself is checked in test_sim_flashmap.py."""

import hashlib
import struct

import pytest

from fleet import partitions
from fleet.errors import FlashToolError
from fleet.sim import flashmap
from provisioning import romflash

ROWS = [("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000), ("factory", 0, 0, 0x10000, 0x1F0000)]


def _table_by_hand(rows) -> bytes:
    """gen_esp32part.py's layout written out here: entries, the MD5 entry, FF."""
    entries = b"".join(b"\xaa\x50" + bytes([t, st]) + struct.pack("<II", off, size) + label.encode().ljust(16, b"\0")
                       + b"\0" * 4 for label, t, st, off, size in rows)
    return (entries + b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(entries).digest()).ljust(0x1000, b"\xff")


def test_both_callers_read_the_same_table_through_one_parser():
    table = _table_by_hand(ROWS)
    assert partitions.build_table(ROWS) == table
    assert flashmap.parse_table is partitions.parse_table and romflash.vfs_partition is partitions.vfs_partition
    want = [partitions.Partition(*r) for r in ROWS]
    assert flashmap.parse_table(table) == want == romflash.parse_table(table)


def test_a_table_read_in_pieces_stops_at_its_md5_entry():
    table = _table_by_hand(ROWS)
    assert partitions.md5_entry_at(table[:64]) is None
    assert partitions.md5_entry_at(table[:128]) == 96
    assert partitions.parse_table(table[:128]) == partitions.parse_table(table)


def test_an_erased_table_and_a_damaged_one_are_told_apart_by_each_caller():
    with pytest.raises(partitions.TableError, match="empty") as e:
        partitions.parse_table(b"\xff" * 0x1000)
    assert e.value.empty
    with pytest.raises(FlashToolError, match="no valid partition table at 0x8000: it has no MicroPython") as e:
        romflash.parse_table(b"\xff" * 0x1000)
    assert "--firmware" in e.value.hint
    damaged = bytearray(_table_by_hand(ROWS))
    damaged[40] ^= 0x10  # the second entry's offset
    with pytest.raises(flashmap.TableError, match="MD5 mismatch"):
        flashmap.parse_table(bytes(damaged))
    with pytest.raises(FlashToolError, match="partition table at 0x8000 is damaged .*MD5 mismatch"):
        romflash.parse_table(bytes(damaged))
    damaged[32:34] = b"\x12\x34"  # the second entry's magic
    with pytest.raises(FlashToolError, match="damaged .*invalid magic number"):
        romflash.parse_table(bytes(damaged))
