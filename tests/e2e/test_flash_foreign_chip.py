"""`fleet flash --firmware` on the esptool route (the default, `--via image`) refuses a base image built for
another chip than the board's, with nothing written: a virtual ESP32 in download mode, offered a valid
ESP32-S3 image (its header's chip id 9, as ESP-IDF writes it). Two places catch it (docs/flashing.md):
the image's header against the board file named, before the port is opened (exit code 50); and, when the
board file named is itself the other chip's, the chip that answers esptool's detection (exit code 51).
Either way the board's flash is the same byte for byte and it is still waiting in its ROM loader."""

import hashlib

from e2e_tools import run_fleet
from fleet.errors import ImageMismatch, WrongBoard
from fleet.sim import chips, flashmap


def _flash_digest(board):
    return hashlib.sha256((board.dir / "flash.img").read_bytes()).hexdigest()


def _in_download_mode(make_board):
    board = make_board()  # `virtual`: imitates an ESP32 (boards/virtual.json)
    board.bootloader()
    assert board.status()["state"] == "download"
    return board


def test_esp32s3_image_for_an_esp32_board_is_refused_before_the_port_is_opened(make_board, tmp_path):
    img = tmp_path / "ESP32_GENERIC_S3.bin"
    img.write_bytes(flashmap.build_image(chips.ESP32S3, size=6000, seed=b"an S3 base image"))
    board = _in_download_mode(make_board)
    before, rx = _flash_digest(board), board.status()["counters"]
    proc = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual", "--firmware", str(img),
                     timeout=120)
    assert proc.returncode == ImageMismatch.exit_code == 50, proc.stderr
    assert proc.stderr.startswith("error: the image is for esp32s3, but virtual is a virtual board imitating "
                                  "an esp32; nothing was written"), proc.stderr
    assert "hint: download the MicroPython image for the board's chip" in proc.stderr
    assert "Traceback" not in proc.stderr
    st = board.status()
    assert st["state"] == "download" and st["counters"] == rx  # not a byte crossed its serial port
    assert _flash_digest(board) == before


def test_esp32s3_board_named_for_an_esp32_chip_is_refused_by_the_chip_itself(make_board, tmp_path):
    # the image fits the board file named (virtual_s3), so only the chip's answer to esptool can refuse it
    img = tmp_path / "ESP32_GENERIC_S3.bin"
    img.write_bytes(flashmap.build_image(chips.ESP32S3, size=6000, seed=b"an S3 base image"))
    board = _in_download_mode(make_board)
    before = _flash_digest(board)
    proc = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual_s3", "--firmware", str(img),
                     timeout=120)
    assert proc.returncode == WrongBoard.exit_code == 51, proc.stderr
    assert "is an ESP32, not virtual_s3's ESP32-S3; nothing was written" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _flash_digest(board) == before
    assert board.status()["state"] == "download"  # esptool left it in its ROM loader: flash again at once
