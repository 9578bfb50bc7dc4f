"""The unmodified esptool 5.6 against a virtual board in download mode, as a library and as its own command
line: chip detection for each board file's chip, writing, verifying and reading back a base image and a
filesystem image through the ROM alone (--no-stub) and through esptool's flasher stub, a power cut during a
write (either way), malformed packets, code that is not the stub."""

import struct
import subprocess
import sys
import time

import pytest
import serial

from fleet import boards
from fleet.boards import CHIPS
from fleet.sim import chips, flashmap, manager
from fleet.sim.romloader import slip_encode
from lab.serialconsole import Console

ESPTOOL_NAMES = {c: CHIPS[c].esptool for c in ("esp32", "esp32s3")}  # esptool's CHIP_NAME (fleet.boards.CHIPS)
VIRTUAL_FOR = {"esp32": "virtual", "esp32s3": "virtual_s3"}  # the virtual board imitating each chip
ROM = ["--before", "no-reset", "--after", "no-reset", "--no-stub"]
STUB = ["--before", "no-reset", "--after", "no-reset"]  # esptool's default: it uploads its stub


def esptool(port, *args, check=True, timeout=120, how=ROM):
    r = subprocess.run([sys.executable, "-m", "esptool", "--port", port, *how, *args],
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def real_board_chips():
    return sorted({boards.load(n)["chip"] for n in boards.names()} - {"virtual"})


@pytest.mark.parametrize("chip", real_board_chips())
def test_esptool_library_detects_the_chip_of_each_board_file(make_board, chip):
    from esptool.cmds import detect_chip

    board = make_board(board=VIRTUAL_FOR[chip])
    board.bootloader()
    esp = detect_chip(board.port, connect_mode="no-reset")
    try:
        assert esp.CHIP_NAME == ESPTOOL_NAMES[chip]
        assert not esp.IS_STUB
        assert esp.read_mac() == tuple(bytes.fromhex(board.status()["mac"]))
    finally:
        esp._port.close()


def test_download_mode_banner_and_leaving_it(make_board):
    board = make_board()
    c = Console(board.port, timeout=10)
    try:
        board.bootloader()
        text = c.read_until(b"waiting for download\r\n")
        assert b"boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))" in text
        assert board.status()["state"] == "download"
        board.reset()
        board.wait_prompt()
        assert board.status()["app"] == "factory"
    finally:
        c.close()


def lfs_image(text, blocks):
    """A littlefs image of the vfs partition's geometry (`blocks` of 4 KiB) holding /hello.txt, made by
    MicroPython itself, without its erased tail (the ROM erases what it writes; the rest is free to littlefs)."""
    from fleet.resources import micropython_path

    script = f"""
import vfs, sys
class BD:
    def __init__(s, n): s.b = bytearray(b"\\xff" * (n * 4096)); s.n = n
    def readblocks(s, blk, buf, off=0):
        a = blk * 4096 + off; buf[:] = s.b[a:a + len(buf)]
    def writeblocks(s, blk, buf, off=None):
        a = blk * 4096 + (off or 0); s.b[a:a + len(buf)] = buf
    def ioctl(s, op, arg):
        if op == 4: return s.n
        if op == 5: return 4096
        if op == 6:
            a = arg * 4096; s.b[a:a + 4096] = b"\\xff" * 4096
        return 0
bd = BD({blocks})
vfs.VfsLfs2.mkfs(bd)
fs = vfs.VfsLfs2(bd)
with fs.open("/hello.txt", "w") as f: f.write({text!r})
end = max(i for i in range({blocks}) if bd.b[i * 4096:(i + 1) * 4096] != b"\\xff" * 4096) + 1
sys.stdout.buffer.write(bd.b[:end * 4096])
"""
    r = subprocess.run([micropython_path(), "-X", "heapsize=16M", "-c", script], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("board_name", ["virtual", "virtual_s3"])
def test_esptool_cli_writes_verifies_and_reads_back_base_and_filesystem_images(make_board, tmp_path, board_name):
    board = make_board(board=board_name)
    chip = chips.get(boards.load(board_name)["imitates"])
    app = flashmap.build_image(chip, size=30_000, seed=b"new base image")
    flash_size = boards.load(board_name)["flash"]["size"]
    vfs = flashmap.vfs_partition(flashmap.parse_table(flashmap.build_table("4MiBplus")), flash_size)
    fs = lfs_image("written by esptool\n", vfs.size // 4096)
    (tmp_path / "app.bin").write_bytes(app)
    (tmp_path / "fs.bin").write_bytes(fs)
    board.bootloader()
    port = board.port
    out = esptool(port, "write-flash", "--compress", "0x10000", str(tmp_path / "app.bin"),
                  hex(vfs.offset), str(tmp_path / "fs.bin")).stdout
    assert out.count("Hash of data verified.") == 2
    esptool(port, "verify-flash", "0x10000", str(tmp_path / "app.bin"))
    esptool(port, "read-flash", "0x10000", "2048", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == app[:2048]
    bad = bytearray(app)
    bad[5000] ^= 1
    (tmp_path / "bad.bin").write_bytes(bad)
    assert esptool(port, "verify-flash", "0x10000", str(tmp_path / "bad.bin"), check=False).returncode != 0

    board.reset()
    board.wait_prompt()
    c = Console(board.port, timeout=10)
    try:
        c.raw_repl()
        assert c.exec("print(open('/hello.txt').read())").strip() == "written by esptool"
        assert "factory" in c.exec("import esp32; print(esp32.Partition(esp32.Partition.RUNNING).info())")
    finally:
        c.close()
    with open(board.dir / "flash.img", "rb") as f:
        f.seek(0x10000)
        assert f.read(len(app)) == app


def test_foreign_base_image_leaves_the_board_in_a_boot_loop(make_board, tmp_path):
    board = make_board()
    (tmp_path / "s3.bin").write_bytes(flashmap.build_image(chips.ESP32S3, size=4000))
    board.bootloader()
    esptool(board.port, "write-flash", "0x10000", str(tmp_path / "s3.bin"))
    c = Console(board.port, timeout=10)
    try:
        board.reset()
        text = c.read_until(b"No bootable app partitions in the partition table")
        assert b"mismatch chip ID, expected 0, found 9" in text
        assert board.status()["state"] == "no_app"
    finally:
        c.close()
    board.stop()  # started again, its flash as it was, it is back in its boot loop (not a failed start)
    [again] = manager.start(names=[board.name], erase=False)
    try:
        assert again.status()["state"] == "no_app"
    finally:
        again.stop()


@pytest.mark.parametrize("how", [ROM, STUB], ids=["rom", "stub"])
def test_power_cut_during_a_base_image_write_then_flashing_again(make_board, tmp_path, how):
    board = make_board(baud=115200)
    app = flashmap.build_image(chips.ESP32, size=40_000, seed=b"cut")
    (tmp_path / "app.bin").write_bytes(app)
    board.bootloader()
    board.counters(reset=True)
    proc = subprocess.Popen([sys.executable, "-m", "esptool", "--port", board.port, *how, "write-flash",
                             "--no-compress", "0x10000", str(tmp_path / "app.bin")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    # writing (40 KB at 115200: ~4 s), past the stub's upload (~9 KB) when there is one
    while board.counters()["host_to_board"] < (12_000 if how is ROM else 30_000):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
        time.sleep(0.02)
    board.powercut(off_s=0.2)
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode != 0, out
    deadline = time.monotonic() + 5
    while board.status()["state"] != "no_app":
        assert time.monotonic() < deadline, board.status()
        time.sleep(0.05)
    board.bootloader()
    esptool(board.port, "write-flash", "0x10000", str(tmp_path / "app.bin"), how=how)
    board.reset()
    board.wait_prompt()
    assert board.status()["app"] == "factory"


def packet(op, data=b"", chk=0):
    return slip_encode(struct.pack("<BBHI", 0, op, len(data), chk) + data)


def read_response(port, timeout=3.0):
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        buf += port.read(64)
        start = buf.find(b"\xc0\x01")
        end = buf.find(b"\xc0", start + 1) if start >= 0 else -1
        if end > 0:
            frame = buf[start + 1:end].replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")
            return frame[1], frame[-4], frame[-3]  # op, status, error
    raise AssertionError(f"no response, got {buf!r}")


def test_malformed_packets_get_rom_error_codes_and_esptool_still_connects(make_board):
    board = make_board()
    board.bootloader()
    with serial.Serial(board.port, 115200, timeout=0.1) as s:
        s.read(4096)  # the banner
        s.write(b"AT\r\n" + b"\xc0\xdb\x00junk\xc0")  # typing and a broken frame: no answer
        s.write(packet(0x03, struct.pack("<IIII", 4, 0, 0, 0) + b"\x01\x02\x03\x04", chk=0))
        assert read_response(s) == (0x03, 1, 0x06)  # FLASH_DATA before FLASH_BEGIN
        s.write(packet(0x02, struct.pack("<IIII", 0x2000, 8, 0x400, 0x3FF000)))
        assert read_response(s) == (0x02, 1, 0x06)  # past the end of the 4 MB flash
        s.write(packet(0x02, struct.pack("<IIII", 0x400, 1, 0x400, 0x10000)))
        assert read_response(s) == (0x02, 0, 0)
        s.write(packet(0x03, struct.pack("<IIII", 4, 0, 0, 0) + b"\x01\x02\x03\x04", chk=0x55))
        assert read_response(s) == (0x03, 1, 0x07)  # bad checksum
        s.write(packet(0x42))
        assert read_response(s) == (0x42, 1, 0x05)
    esptool(board.port, "chip-id")


def test_base_image_ota_through_esp32_partition_writes_the_real_slots(make_board, tmp_path):
    """MicroPython's OTA layout written by esptool; then the firmware's ImageUpdate streams a new base image
    through esp32.Partition into ota_1 and switches: the bootloader runs it once, and goes back to ota_0
    when it is not confirmed; confirmed, it stays."""
    import hashlib
    from pathlib import Path

    board = make_board()
    chip = chips.ESP32
    first = flashmap.build_image(chip, size=8000, seed=b"ota first")
    second = flashmap.build_image(chip, size=9000, seed=b"ota second")
    for name, data in (("table.bin", flashmap.build_table("4MiB-ota")), ("otadata.bin", b"\xff" * 0x2000),
                       ("first.bin", first)):
        (tmp_path / name).write_bytes(data)
    board.bootloader()
    esptool(board.port, "write-flash", "--compress", "0x8000", str(tmp_path / "table.bin"),
            "0xd000", str(tmp_path / "otadata.bin"), "0x10000", str(tmp_path / "first.bin"))
    board.reset()
    board.wait_prompt()
    assert board.status()["app"] == "ota_0"

    fw = Path(__file__).parents[2] / "firmware" / "bysans"
    c = Console(board.port, timeout=20)
    try:
        c.raw_repl()
        c.exec("import os\nfor d in ('/lib', '/lib/bysans', '/lib/bysans/ota'):\n    try: os.mkdir(d)\n    except OSError: pass")
        for rel in ("__init__.py", "ota/__init__.py", "ota/files.py", "ota/reasons.py", "ota/image.py"):
            c.exec(f"with open('/lib/bysans/{rel}', 'w') as f:\n    f.write({(fw / rel).read_text()!r})")
        c.exec("f = open('/new.bin', 'wb')")
        for i in range(0, len(second), 1024):
            c.exec(f"f.write({second[i:i + 1024]!r})")
        c.exec("f.close()")
        entry = {"path": "micropython.bin", "length": len(second), "sha256": hashlib.sha256(second).hexdigest()}
        out = c.exec("import esp32\nfrom bysans.ota.image import ImageUpdate\nup = ImageUpdate(esp32.Partition)\n"
                     f"p = up.write(open('/new.bin', 'rb'), {entry!r})\nup.switch(p)\nprint(p.info()[4])")
        assert out.strip() == "ota_1"
    finally:
        c.close()
    with open(board.dir / "flash.img", "rb") as f:
        f.seek(0x190000)
        assert f.read(len(second)) == second  # MicroPython's ota_1 range
        f.seek(0xD000)
        otadata = f.read(0x2000)
    assert (2, flashmap.OTA_NEW) in flashmap.read_otadata(otadata)  # seq 2 selects ota_1: (2 - 1) % 2

    board.reset()
    board.wait_prompt()
    assert board.status()["app"] == "ota_1"  # the new image's first boot...
    board.reset()
    board.wait_prompt()
    assert board.status()["app"] == "ota_0"  # ...never confirmed: the bootloader rolls back

    # switch again, and this time the new image confirms itself
    c = Console(board.port, timeout=20)
    try:
        c.raw_repl()
        c.exec("import esp32\nesp32.Partition('ota_1').set_boot()")
        board.reset()
        board.wait_prompt()
        assert board.status()["app"] == "ota_1"
        c.raw_repl()
        assert "ota_1" in c.exec("import esp32\nprint(esp32.Partition(esp32.Partition.RUNNING).info())")
        c.exec("esp32.Partition.mark_app_valid_cancel_rollback()")
    finally:
        c.close()
    board.reset()
    board.wait_prompt()
    assert board.status()["app"] == "ota_1"


def test_esptool_cli_with_its_stub_writes_verifies_reads_back_and_skips_what_is_flashed(make_board, tmp_path):
    board = make_board(board="virtual_s3", baud=115200)
    app = flashmap.build_image(chips.ESP32S3, size=60_000, seed=b"stub")
    (tmp_path / "app.bin").write_bytes(app)
    board.bootloader()
    out = esptool(board.port, "--baud", "921600", "write-flash", "0x10000", str(tmp_path / "app.bin"), how=STUB).stdout
    assert "Stub flasher running" in out and "Hash of data verified." in out
    assert board.status()["baud_now"] == 921600
    out = esptool(board.port, "write-flash", "--skip-flashed", "0x10000", str(tmp_path / "app.bin"), how=STUB).stdout
    assert "already in flash, skipping write" in out  # the stub's MD5 said so: nothing written
    esptool(board.port, "read-flash", "0x10000", str(len(app)), str(tmp_path / "back.bin"), how=STUB)
    assert (tmp_path / "back.bin").read_bytes() == app  # READ_FLASH frames, acked, then the stub's MD5
    esptool(board.port, "erase-region", "0x10000", "0x10000", how=STUB)
    bad = esptool(board.port, "verify-flash", "0x10000", str(tmp_path / "app.bin"), how=STUB, check=False)
    assert bad.returncode != 0
    board.reset()
    assert board.status()["state"] == "no_app"  # its app's first 64 KB erased


def test_code_that_is_not_esptools_stub_is_not_pretended_to_run(make_board):
    from esptool.loader import ESPLoader

    board = make_board()
    board.bootloader()
    code = b"\x00" * 64  # not esptool's stub: a chip would jump into it and crash
    with serial.Serial(board.port, 115200, timeout=0.1) as s:
        s.read(4096)  # the banner
        s.write(packet(0x05, struct.pack("<IIII", len(code), 1, 0x1800, 0x40080000)))
        assert read_response(s) == (0x05, 0, 0)
        s.write(packet(0x07, struct.pack("<IIII", len(code), 0, 0, 0) + code, ESPLoader.checksum(code)))
        assert read_response(s) == (0x07, 0, 0)
        s.write(packet(0x06, struct.pack("<II", 0, 0x40080000)))  # MEM_END: run it
        text, deadline = b"", time.monotonic() + 3
        while b"(reset it)" not in text and time.monotonic() < deadline:
            text += s.read(256)
    assert b"not esptool's flasher stub" in text and b"OHAI" not in text
    r = esptool(board.port, "--connect-attempts", "1", "chip-id", check=False, timeout=60)
    assert r.returncode != 0  # it answers nothing until it is reset
    board.bootloader()
    esptool(board.port, "chip-id")


def test_baud_change_moves_the_wire_throttle_until_reset(make_board):
    board = make_board(baud=115200)
    board.bootloader()
    assert board.status()["baud_now"] == 115200
    out = subprocess.run([sys.executable, "-m", "esptool", "--port", board.port, "--baud", "460800", *ROM,
                          "chip-id"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Changing baud rate to 460800" in out.stdout, out.stdout + out.stderr
    assert board.status()["baud_now"] == 460800  # the ROM stays at the new speed after esptool leaves
    board.reset()
    assert board.status()["baud_now"] == 115200


@pytest.mark.parametrize("board_name", ["virtual", "virtual_s3"])
def test_micropython_style_merged_image_at_the_boards_flash_offset_boots(make_board, tmp_path, board_name):
    """What `fleet flash --firmware` writes: one file (bootloader, table, app) at the chip's bootloader
    offset, its header naming the chip (byte 12, what `fleet flash` checks first)."""
    chip = chips.get(boards.load(board_name)["imitates"])
    image = flashmap.merged_image(chip, app_size=20_000, seed=b"merged")
    assert struct.unpack_from("<H", image, 12)[0] == chip.image_chip_id
    (tmp_path / "firmware.bin").write_bytes(image)
    board = make_board(board=board_name)
    board.bootloader()
    esptool(board.port, "write-flash", "--compress", hex(chip.bootloader_offset), str(tmp_path / "firmware.bin"))
    board.reset()
    board.wait_prompt()
    assert board.status()["app"] == "factory"
    with open(board.dir / "flash.img", "rb") as f:
        f.seek(chip.bootloader_offset)
        assert f.read(len(image)) == image
