"""A virtual board's flash layout: partition table, images (checked by esptool's own parser), otadata and
what the bootloader picks."""

import hashlib
import struct
import zlib

import pytest
from esptool.bin_image import LoadFirmwareImage

from fleet.sim import chips, flashmap


def reader(flash):
    return lambda off, n: bytes(flash[off:off + n])


def test_table_bytes_are_esp_idf_format():
    table = flashmap.build_table("4MiBplus")
    first = table[:32]
    assert first[:2] == b"\xaa\x50" and first[2:4] == b"\x01\x02"  # data, nvs
    assert struct.unpack_from("<II", first, 4) == (0x9000, 0x6000)
    assert first[12:28] == b"nvs".ljust(16, b"\0")
    md5 = table[96:128]
    assert md5[:16] == b"\xeb\xeb" + b"\xff" * 14 and md5[16:] == hashlib.md5(table[:96]).digest()
    assert table[128:] == b"\xff" * (0x1000 - 128)
    assert [p.label for p in flashmap.parse_table(table)] == ["nvs", "phy_init", "factory"]


def test_vfs_is_micropythons_runtime_partition():
    parts = flashmap.parse_table(flashmap.build_table("4MiBplus"))
    vfs = flashmap.vfs_partition(parts, 0x400000)
    assert (vfs.offset, vfs.size, vfs.subtype) == (0x200000, 0x200000, 0x81)
    assert flashmap.vfs_partition(parts, 0x800000).size == 0x600000  # Heltec V3: 6 MiB
    ota = flashmap.parse_table(flashmap.build_table("4MiB-ota"))
    assert flashmap.vfs_partition(ota, 0x400000).offset == 0x310000


def test_corrupt_table_is_refused():
    table = bytearray(flashmap.build_table("4MiBplus"))
    table[5] ^= 1
    with pytest.raises(flashmap.TableError, match="MD5"):
        flashmap.parse_table(bytes(table))


@pytest.mark.parametrize("chip", [chips.ESP32, chips.ESP32S3], ids=lambda c: c.name)
def test_synthesized_image_is_valid_for_esptool(chip):
    data = flashmap.build_image(chip, size=5000)
    image = LoadFirmwareImage(chip.name, data)
    assert image.chip_id == chip.image_chip_id
    assert image.checksum == image.calculate_checksum()
    assert image.stored_digest == image.calc_digest
    assert flashmap.check_image(chip, data + b"\xff" * 100) is None


def test_image_for_another_chip_or_corrupt_is_refused():
    data = flashmap.build_image(chips.ESP32S3, size=5000)
    assert "mismatch chip ID, expected 0, found 9" in flashmap.check_image(chips.ESP32, data)
    bad = bytearray(flashmap.build_image(chips.ESP32, size=5000))
    bad[100] ^= 0xFF
    assert flashmap.check_image(chips.ESP32, bytes(bad)) is not None
    assert "invalid magic byte" in flashmap.check_image(chips.ESP32, b"\xff" * 64)


def test_image_compresses_about_as_micropython():
    data = flashmap.build_image(chips.ESP32, size=200_000)
    assert 0.5 < len(zlib.compress(data)) / len(data) < 0.75


@pytest.mark.parametrize("chip", [chips.ESP32, chips.ESP32S3], ids=lambda c: c.name)
def test_fresh_flash_boots_factory(chip):
    flash = flashmap.fresh_image(chip, 0x400000)
    assert flash[chip.bootloader_offset] == 0xE9
    boot = flashmap.select_boot(chip, reader(flash))
    assert boot.app.label == "factory"


def test_erased_bootloader_is_the_roms_invalid_header():
    flash = flashmap.fresh_image(chips.ESP32, 0x400000)
    flash[0x1000:0x2000] = b"\xff" * 0x1000
    boot = flashmap.select_boot(chips.ESP32, reader(flash))
    assert boot.app is None and boot.lines == ["invalid header: 0xffffffff"]


def test_foreign_app_does_not_boot():
    flash = flashmap.fresh_image(chips.ESP32, 0x400000)
    s3 = flashmap.build_image(chips.ESP32S3, size=5000)
    flash[0x10000:0x10000 + len(s3)] = s3
    boot = flashmap.select_boot(chips.ESP32, reader(flash))
    assert boot.app is None
    assert "mismatch chip ID" in boot.lines[0] and "No bootable app" in boot.lines[-1]


def ota_flash():
    flash = flashmap.fresh_image(chips.ESP32, 0x400000, "4MiB-ota")
    app1 = flashmap.build_image(chips.ESP32, size=5000, seed=b"second")
    flash[0x190000:0x190000 + len(app1)] = app1
    return flash


def test_otadata_crc_seed():
    # esp_rom_crc32_le(UINT32_MAX, &seq, 4), as IDF's otatool computes it
    assert flashmap.ota_crc(1) == zlib.crc32(b"\x01\0\0\0", 0xFFFFFFFF)
    assert flashmap.ota_crc(1) != zlib.crc32(b"\x01\0\0\0")


def test_ota_boot_order_and_rollback():
    flash = ota_flash()
    assert flashmap.select_boot(chips.ESP32, reader(flash)).app.label == "ota_0"  # otadata erased
    flash[0xD000:0xD020] = flashmap.ota_entry(1, flashmap.OTA_VALID)
    flash[0xE000:0xE020] = flashmap.ota_entry(2, flashmap.OTA_NEW)  # set_boot(ota_1)
    boot = flashmap.select_boot(chips.ESP32, reader(flash))
    assert boot.app.label == "ota_1"
    [(at, entry)] = boot.writes
    assert at == 0xE000 and entry == flashmap.ota_entry(2, flashmap.OTA_PENDING_VERIFY)
    flash[at:at + 32] = entry
    boot = flashmap.select_boot(chips.ESP32, reader(flash))  # never confirmed: back to ota_0
    assert boot.app.label == "ota_0" and boot.writes == [(0xE000, flashmap.ota_entry(2, flashmap.OTA_ABORTED))]


def test_a_board_with_a_romfs_partition_needs_an_interpreter_that_maps_it(monkeypatch):
    """virtual_ttgo_rom on a 32-bit MicroPython without vfs.rom_ioctl is refused, saying which build has it."""
    from fleet import boards
    from fleet.errors import UsageError
    from fleet.sim import manager

    monkeypatch.setattr(manager, "interpreter_arch", lambda path: "x86")
    monkeypatch.setattr(manager, "runs_rom", lambda path: False)
    with pytest.raises(UsageError) as e:
        manager.interpreter_for(boards.load("virtual_ttgo_rom"), "/opt/mp32/micropython")
    assert "romfs partition" in str(e.value) and "build-micropython32-rom" in e.value.hint
    manager.interpreter_for(boards.load("virtual_ttgo"), "/opt/mp32/micropython")  # no romfs partition: fine
    table = flashmap.parse_table(flashmap.build_table("4MiB-ota-romfs"))
    [rom] = [p for p in table if p.label == flashmap.ROMFS_LABEL]
    assert (rom.offset, rom.size) == (0x310000, 0x60000)  # two app slots' images of 192 KiB (docs/ota.md, ROM slots)
    assert flashmap.vfs_partition(table, 0x400000).offset == 0x370000
