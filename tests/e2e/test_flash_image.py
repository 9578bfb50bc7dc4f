"""`fleet flash` by image: one esptool session through the virtual board's ROM loader writes the board's whole
filesystem, built on the host. Both routes write the same files, byte for byte; a power cut during the
write is recovered by flashing again; too much for the vfs partition is refused before any byte is written;
a board in the wrong mode is told which button to hold."""

import json
import threading

import pytest

from e2e_tools import run_fleet
from fleet import boards
from fleet.cli.ports import rom_options, virtual_port
from fleet.errors import BoardInDownloadMode, FilesystemTooBig, FlashToolError, WrongMode
from provisioning.enroll_on_board import config_files
from provisioning.flash import app_bundle, flash
from provisioning.ota import _STATE, _encode_state
from provisioning.session import Session
from provisioning.transfer import write_files

pytestmark = pytest.mark.usefixtures("frozen_sources")

LIST_ALL = """import os
def walk(d):
 for n in os.listdir(d):
  p=(d.rstrip('/')+'/'+n)
  if os.stat(p)[0]&0x4000:walk(p)
  else:print('FILE',p)
walk('/')
"""
READ_ONE = "import binascii\nf=open(%r,'rb');print('HEX',binascii.hexlify(f.read()).decode());f.close()"


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
    # the app is at the top of the filesystem, in no slot: slot "" is the confirmed one (naming slot a, boot.py
    # would put a slot this board does not have on sys.path, and the self-test would find no app)
    return {**config_files(config), "/ota/boot.json": _encode_state(dict(_STATE, confirmed=""))}


def read_all(port) -> dict[str, bytes]:
    """Every file on the board, read back one at a time over its REPL."""
    with Session(port) as s:
        paths = [ln.split(" ", 1)[1].strip() for ln in s.exec(LIST_ALL).splitlines() if ln.startswith("FILE ")]
        out = {}
        for p in paths:
            [line] = [ln for ln in s.exec(READ_ONE % p).splitlines() if ln.startswith("HEX ")]
            out[p] = bytes.fromhex(line[4:].strip())
    return out


def image_flash(board, **kw):
    return flash(virtual_port(board), "virtual", **rom_options(board), **kw)


def test_repl_route_and_image_route_leave_the_same_files_byte_for_byte(make_board, bundle):
    by_repl, by_image = make_board(), make_board()
    mine = device_files()
    flash(virtual_port(by_repl), "virtual", files=bundle, via="repl")
    write_files(virtual_port(by_repl), mine)
    by_image.bootloader()
    rep = image_flash(by_image, files=bundle, device_files=mine)
    assert rep.self_test["ok"] and rep.image["stub"] is True and rep.image["baud"] == 921600
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
    assert proc.returncode == BoardInDownloadMode.exit_code, proc.stderr  # said before anything is written
    assert "download mode" in proc.stderr and "press RESET without holding BOOT" in proc.stderr


def _station_enroll(reg, op):
    """What `fleet station --enroll` passes for the image route (fleet/cli/station.py), on a registry here."""
    import threading

    from fleet.registry import NewDevice
    from provisioning.enroll_on_board import image_enrollment

    return image_enrollment(reg, op, NewDevice(kommune="751", site="Bench", kind="env", board=""),
                            lock=threading.Lock())


def test_station_enrolls_with_the_keys_in_the_image_and_records_only_after_read_back(make_board, tmp_path):
    import os

    from fleet.cli.station import virtual_targets
    from fleet.registry import Operator, Registry
    from provisioning.station import provision_all

    good, cut = make_board(), make_board(baud=115200)
    good.bootloader()
    cut.bootloader()
    reg = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}", key=os.urandom(32))
    op = Operator("bench", kommune="751")

    def progress(key, stage, done, total):
        if key == cut.name and stage == "filesystem" and total and done > total // 3:
            cut.powercut()

    targets = [t for t in virtual_targets() if t.key in (good.name, cut.name)]
    with reg:
        results = {r.key: r for r in provision_all(targets, enroll_files=_station_enroll(reg, op),
                                                   progress=progress)}
        assert results[good.name].ok and results[good.name].enrolled, results[good.name].message
        assert not results[cut.name].ok and not results[cut.name].enrolled
        devices = reg.list_devices(op)
    assert [d.dev_eui for d in devices] == [results[good.name].dev_eui]  # the cut board: nothing recorded
    assert devices[0].state == "enrolled"
    lorawan = json.loads(read_all(good.port)["/config/lorawan.json"])
    assert lorawan["dev_eui"] == results[good.name].dev_eui
    key = lorawan["app_key"]
    assert key not in json.dumps([r.as_dict() for r in results.values()])
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaked == []  # the registry holds it sealed, no file in its folder holds it

    cut.bootloader()  # the next pass recovers the board and enrolls it
    with reg:
        [again] = provision_all([t for t in virtual_targets() if t.key == cut.name],
                                enroll_files=_station_enroll(reg, op))
        assert again.ok and again.enrolled, again.message
        assert len(reg.list_devices(op)) == 2


def test_flash_enroll_puts_the_keys_in_the_image_and_records_them_after_the_read_back(make_board, tmp_path,
                                                                                     monkeypatch):
    import base64
    import os

    monkeypatch.setenv("FLEET_DB", f"sqlite:///{tmp_path / 'registry.sqlite'}")
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    board = make_board()
    board.bootloader()
    proc = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual", "--enroll", "-k", "751",
                     "--kind", "env", "--site", "Værkstedet", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    files = read_all(board.port)
    lorawan, device = json.loads(files["/config/lorawan.json"]), json.loads(files["/config/device.json"])
    assert lorawan["dev_eui"] == rep["enrolled"]["dev_eui"] and device["site"] == "Værkstedet"
    assert lorawan["app_key"].upper() not in (proc.stdout + proc.stderr).upper()
    [listed] = json.loads(run_fleet("devices", "list", "-k", "751", "--json").stdout)
    assert listed["dev_eui"] == lorawan["dev_eui"] and listed["state"] == "enrolled"

    again = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual", "--enroll", "-k", "751",
                      "--kind", "env", "--site", "Værkstedet", "--via", "repl")
    assert again.returncode == 2 and "needs the image route" in again.stderr  # refused before any port is opened


def test_a_file_that_differs_after_the_reset_is_named_and_nothing_is_recorded(make_board, bundle):
    from fleet.errors import VerifyError

    board = make_board()
    board.bootloader()
    rom = rom_options(board)
    calls = []

    def reset_then_tamper():  # the flash held, but a file is not what the image had when the board reads it
        rom["reset"]()
        with Session(board.port) as s:
            s.exec("f=open('/bysans/node.mpy','wb');f.write(b'x');f.close()")

    def enroll_files(board_name, mac):
        calls.append(("reserve", board_name, mac))
        return {"/config/device.json": b'{"name":"x"}'}, lambda ok: calls.append(("finish", ok))

    with pytest.raises(VerifyError, match="/bysans/node.mpy .*does not match the image; nothing was recorded"):
        flash(virtual_port(board), "virtual", files=bundle, rom_only=True, reset=reset_then_tamper,
              enroll_files=enroll_files)
    assert [c[0] for c in calls] == ["reserve", "finish"] and calls[-1] == ("finish", False)


@pytest.mark.parametrize("no_stub", [False, True], ids=["stub", "rom-only"])
def test_base_image_and_filesystem_in_one_pass_then_the_board_boots_them(make_board, tmp_path, no_stub):
    from fleet.sim import chips, flashmap

    chip = chips.get("esp32")
    image = flashmap.merged_image(chip, app_size=20_000, seed=b"one pass")
    (tmp_path / "firmware.bin").write_bytes(image)
    board = make_board()
    board.bootloader()
    proc = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual", "--firmware",
                     str(tmp_path / "firmware.bin"), *(["--no-stub"] if no_stub else []), "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["image"]["image_bytes"] == len(image) and rep["self_test"]["ok"]
    assert rep["image"]["stub"] is not no_stub
    assert board.status()["app"] == "factory"
    with open(board.dir / "flash.img", "rb") as f:
        f.seek(chip.bootloader_offset)
        assert f.read(len(image)) == image


def test_a_base_image_the_flash_holds_is_not_written_again_and_another_is(make_board, tmp_path, bundle):
    """With the stub: the same image again is left as it is (its last 64 bytes, then its MD5, match); another
    build of the same length is written."""
    from fleet.sim import chips, flashmap

    chip = chips.get("esp32")
    first = flashmap.merged_image(chip, app_size=20_000, seed=b"skip")
    second = flashmap.merged_image(chip, app_size=20_000, seed=b"another build")
    assert len(second) == len(first) and second != first
    board = make_board()
    states = []
    for image in (first, first, second):
        (tmp_path / "firmware.bin").write_bytes(image)
        board.bootloader()
        rep = image_flash(board, files=bundle, firmware=tmp_path / "firmware.bin", check_self_test=False)
        states.append(rep.image["base_image"])
        with open(board.dir / "flash.img", "rb") as f:
            f.seek(chip.bootloader_offset)
            assert f.read(len(image)) == image
    assert states == ["written", "already in flash", "written"]


@pytest.mark.parametrize("held", [b"", b"secure boot digest"], ids=["erased", "digest"])
def test_the_flash_before_the_bootloader_keeps_what_it_holds(make_board, tmp_path, bundle, held):
    """The 4 KiB before an ESP32's bootloader go in the base image's write as erased bytes only when they are
    erased: whatever else they hold (a secure boot digest) is left as it was."""
    from fleet.sim import chips, flashmap

    chip = chips.get("esp32")
    image = flashmap.merged_image(chip, app_size=200_000, seed=b"head")
    (tmp_path / "firmware.bin").write_bytes(image)
    board = make_board()
    with open(board.dir / "flash.img", "r+b") as f:
        f.write(held)
    board.bootloader()
    rep = image_flash(board, files=bundle, firmware=tmp_path / "firmware.bin", check_self_test=False)
    assert rep.image["base_image"] == "written"
    with open(board.dir / "flash.img", "rb") as f:
        assert f.read(chip.bootloader_offset) == held + b"\xff" * (chip.bootloader_offset - len(held))
        assert f.read(len(image)) == image


def test_a_base_image_whose_table_leaves_too_little_vfs_for_two_slots_is_refused_before_any_byte(make_board, tmp_path):
    """MicroPython's OTA build (4MiB-ota: a vfs of 240 blocks) onto a board whose app budget was figured for
    the stock table (4MiBplus: 512 blocks): two app slots would not fit, so nothing is written."""
    from fleet.sim import chips, flashmap

    image = flashmap.merged_image(chips.get("esp32"), app_size=20_000, layout="4MiB-ota", seed=b"ota build")
    (tmp_path / "firmware.bin").write_bytes(image)
    board = make_board()
    board.bootloader()
    before = (board.dir / "flash.img").read_bytes()
    proc = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual", "--firmware",
                     str(tmp_path / "firmware.bin"), timeout=120)
    assert proc.returncode == FilesystemTooBig.exit_code, proc.stderr
    budget = boards.load("virtual")["app_budget"]
    assert "vfs of 983040 bytes (240 blocks of 4096)" in proc.stderr, proc.stderr
    assert f"2 app slots of {budget // 4096} blocks" in proc.stderr and "nothing was written" in proc.stderr
    assert "flash.partitions" in proc.stderr or "bigger vfs" in proc.stderr
    assert (board.dir / "flash.img").read_bytes() == before
