"""`fleet flash` by image: one esptool session through the virtual board's ROM loader writes the board's whole
filesystem, built on the host. Both routes write the same files, byte for byte; a power cut during the
write is recovered by flashing again; too much for the vfs partition is refused before any byte is written;
a board in the wrong mode is told which button to hold."""

import json
import threading

import pytest

from conftest import run_fleet
from fleet import boards
from fleet.cli.ports import rom_options, virtual_port
from fleet.errors import FilesystemTooBig, FlashToolError, WrongMode
from provisioning.enroll_on_board import config_files
from provisioning.flash import app_bundle, flash
from provisioning.ota import _STATE, _encode_state
from provisioning.session import Session
from provisioning.transfer import write_files

pytestmark = pytest.mark.usefixtures("frozen_sources")

READ_ALL = """import os,binascii
def walk(d):
 for n in os.listdir(d):
  p=(d.rstrip('/')+'/'+n)
  if os.stat(p)[0]&0x4000:walk(p)
  else:
   f=open(p,'rb');print('FILE',p,binascii.hexlify(f.read()).decode());f.close()
walk('/')
"""


@pytest.fixture(scope="module")
def bundle(frozen_sources):
    return app_bundle(boards.get("virtual"))


def device_files() -> dict[str, bytes]:
    """One device's own files as enrollment and OTA set-up write them: its LoRaWAN keys, its identity, its
    OTA slot state (made up here: no registry needed for the bytes)."""
    config = {"lorawan": {"dev_eui": "70B3D57ED0000001", "join_eui": "0000000000000000",
                          "app_key": "00112233445566778899AABBCCDDEEFF", "activation": "otaa", "version": "1.0.3"},
              "device": {"name": "bin-1", "kommune": "0751", "site": "Park Alle 1", "kind": "waste",
                         "board": "virtual", "sensors": ["bme280"]}}
    return {**config_files(config), "/ota/boot.json": _encode_state(dict(_STATE)), "/ota/confirmed": b"a"}


def read_all(port) -> dict[str, bytes]:
    with Session(port) as s:
        lines = s.exec(READ_ALL).split("\n")
    rows = [ln.strip().split(" ") for ln in lines if ln.startswith("FILE ")]
    return {p: bytes.fromhex(h) for _, p, h in rows}


def image_flash(board, **kw):
    return flash(virtual_port(board), "virtual", **rom_options(board), **kw)


def test_repl_route_and_image_route_leave_the_same_files_byte_for_byte(make_board, bundle):
    by_repl, by_image = make_board(), make_board()
    mine = device_files()
    flash(virtual_port(by_repl), "virtual", files=bundle, via="repl")
    write_files(virtual_port(by_repl), mine)
    by_image.bootloader()
    rep = image_flash(by_image, files=bundle, device_files=mine)
    assert rep.self_test["ok"] and rep.image["stub"] is False and rep.image["baud"] == 921600
    repl_files, image_files = read_all(by_repl.port), read_all(by_image.port)
    assert set(bundle[0]) | set(mine) <= set(image_files)
    assert image_files == repl_files


def test_fleet_flash_cli_one_pass_then_the_board_runs_it(make_board):
    board = make_board()
    board.bootloader()
    proc = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["image"]["vfs"]["offset"] == 0x200000 and rep["transfer"]["via"] == "image"
    assert rep["self_test"]["ok"] and rep["identity"]["board"] == "virtual"
    assert board.status()["state"] != "download"


def test_power_cut_during_the_write_then_the_next_flash_recovers(make_board, bundle):
    board = make_board(baud=115200)
    board.bootloader()
    cut = threading.Event()

    def progress(stage, done, total):
        if stage == "filesystem" and total and done > total // 3 and not cut.is_set():
            cut.set()
            board.powercut()

    with pytest.raises(FlashToolError):
        image_flash(board, files=bundle, progress=progress, baud=115200)
    assert cut.is_set()
    board.bootloader()
    rep = image_flash(board, files=bundle)
    assert rep.self_test["ok"]
    files = read_all(board.port)
    assert all(files[p] == d for p, d in bundle[0].items())


def test_files_bigger_than_the_vfs_partition_are_refused_before_any_byte_is_written(make_board, bundle):
    board = make_board()
    board.bootloader()
    before = (board.dir / "flash.img").read_bytes()
    with pytest.raises(FilesystemTooBig) as e:
        image_flash(board, files=bundle, device_files={"/config/huge.bin": bytes(0x200001)})
    assert "2097152 bytes" in e.value.message and "nothing was written" in e.value.message
    assert (board.dir / "flash.img").read_bytes() == before


def test_board_running_its_app_is_told_to_hold_boot(make_board):
    board = make_board()
    proc = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual")
    assert proc.returncode == WrongMode.exit_code, proc.stderr
    assert "hold BOOT" in proc.stderr and f"fleet sim bootloader {board.name}" in proc.stderr


def test_board_in_download_mode_with_via_repl_is_told_to_press_reset(make_board):
    board = make_board()
    board.bootloader()
    proc = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual", "--via", "repl", timeout=300)
    assert proc.returncode == WrongMode.exit_code, proc.stderr
    assert "download mode" in proc.stderr and f"fleet sim reset {board.name}" in proc.stderr
