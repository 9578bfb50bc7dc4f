"""Provisioning benchmarks: bytes on the wire per app-bundle byte, and one board flashed and enrolled at
115200 baud over the REPL; baseline for both: `mpremote cp` of the same files to a fresh board in the same
run. The base image: a MicroPython-sized image written and verified by esptool's own command (its flasher
stub, compressed: its defaults) at 460800 baud; baseline: the same at 115200 baud. The image route (`fleet
flash`, one esptool session, esptool's stub): a whole board (base image, app, config) against esptool's
command at 460800 plus `mpremote cp` at 115200 (with the stub, and without: --no-stub, both in the same run);
app and config only against the REPL route; and a station of 8 virtual boards."""

import base64
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from fleet import boards, device_spec
from fleet.sim import manager

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


@contextmanager
def _bench(*names: str, baud: int | None = None, bundle: bool = True):
    """The set-up every benchmark here shares: a private simulator folder (BYSANS_SIM_DIR), the virtual
    app bundle built before any clock starts (as a station's first board would), and fresh virtual boards
    `names` (their lines throttled to `baud`), stopped and cleaned up whatever happens. Yields (folder,
    bundle or None, boards)."""
    d = tempfile.TemporaryDirectory()
    old = os.environ.get("BYSANS_SIM_DIR")
    os.environ["BYSANS_SIM_DIR"] = d.name
    started = []
    try:
        built = _bundle() if bundle else None
        started = manager.start(names=list(names), erase=True, **({"baud": baud} if baud else {}))
        yield Path(d.name), built, started
    finally:
        for b in started:
            b.stop()
        if old is None:
            os.environ.pop("BYSANS_SIM_DIR", None)
        else:
            os.environ["BYSANS_SIM_DIR"] = old
        d.cleanup()


def _mpremote_cp(port, files: dict, tmp: Path):
    """The files laid out in a directory, then one mpremote invocation copying them (mkdir + cp)."""
    root = tmp / "app"
    for p, data in files.items():
        (root / p.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / p.lstrip("/")).write_bytes(data)
    args = [MPREMOTE, "connect", port]
    for top in sorted(root.iterdir()):
        if top.is_dir():
            args += ["cp", "-r", str(top), ":", "+"]
        else:
            args += ["cp", str(top), ":" + top.name, "+"]
    subprocess.run(args[:-1], check=True, capture_output=True, timeout=900)


def _bundle():
    from provisioning.flash import app_bundle

    return app_bundle(boards.get("virtual"))


def wire_ratio():
    from provisioning.transfer import write_files

    with _bench("ours", "base") as (d, (files, stale), (ours, base)):
        size = sum(len(v) for v in files.values())
        ours.counters(reset=True)
        write_files(ours.port, files, remove=stale)
        c = ours.counters()
        ratio = (c["host_to_board"] + c["board_to_host"]) / size
        base.counters(reset=True)
        _mpremote_cp(base.port, files, d)
        c = base.counters()
        baseline = (c["host_to_board"] + c["board_to_host"]) / size
    return [{"bench": "provision.wire_ratio", "value": round(ratio, 3), "unit": "wire bytes per app-bundle byte",
             "baseline": round(baseline, 3), "baseline_is": "mpremote cp of the same files (.mpy for x64)",
             "bundle_bytes": size, "files": len(files), "goal": 0.8}]


def board_seconds():
    from provisioning.flash import flash
    from provisioning.enroll_on_board import enroll_on_board
    from fleet.registry import NewDevice, Operator, Registry

    with _bench("ours", "base", baud=115200) as (d, bundle, (ours, base)):
        reg = Registry.open(f"sqlite:///{d / 'registry.sqlite'}", key=os.urandom(32))
        op = Operator("bench", kommune="751")
        t0 = time.perf_counter()
        flash(ours.port, "virtual", files=bundle, via="repl")
        with reg:
            enroll_on_board(reg, op, NewDevice(kommune="751", site="Bench", kind="env", board="virtual"), ours.port)
        ours_s = time.perf_counter() - t0
        config = {device_spec.LORAWAN_CONFIG: b'{"app_key":"' + base64.b16encode(os.urandom(16)) + b'"}',
                  device_spec.DEVICE_CONFIG: b'{"site":"Bench"}'}
        t0 = time.perf_counter()
        _mpremote_cp(base.port, {**bundle[0], **config}, d)
        base_s = time.perf_counter() - t0
    return [{"bench": "provision.board_seconds_115200", "value": round(ours_s, 2), "unit": "s",
             "baseline": round(base_s, 2),
             "baseline_is": "mpremote cp of the same app and config files (no verify, no self-test, no registry)",
             "ratio": round(ours_s / base_s, 3)}]


BASE_IMAGE_BYTES = 1_600_000  # about MicroPython v1.28's ESP32_GENERIC image


def _esptool_write(board, image: Path, baud: int, offset: int, stub: bool = True) -> float:
    """esptool's own command, MD5 verified; the board reset after it. With `stub` its defaults (the flasher
    stub, compressed), else --no-stub (the ROM alone, uncompressed: its default without the stub). Seconds
    of the command."""
    board.bootloader()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "esptool", "--port", board.port, "--baud", str(baud),
                        "--before", "no-reset", "--after", "no-reset", *([] if stub else ["--no-stub"]),
                        "write-flash", hex(offset), str(image)], capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    if r.returncode != 0 or "Hash of data verified" not in r.stdout:
        raise RuntimeError(f"esptool failed: {r.stdout[-400:]} {r.stderr[-400:]}")
    board.reset()
    if board.status()["app"] != "factory":
        raise RuntimeError("the board did not boot the image esptool wrote")
    return seconds


def base_image_seconds():
    from fleet.sim import chips, flashmap

    # the boards' lines are throttled to a UART's speed; CHANGE_BAUDRATE moves it
    with _bench("fast", "slow", "rom", baud=115200, bundle=False) as (d, _, (fast, slow, rom)):
        image = d / "micropython.bin"
        image.write_bytes(flashmap.build_image(chips.ESP32, size=BASE_IMAGE_BYTES, seed=b"bench"))
        fast_s = _esptool_write(fast, image, 460800, 0x10000)
        slow_s = _esptool_write(slow, image, 115200, 0x10000)
        rom_s = _esptool_write(rom, image, 460800, 0x10000, stub=False)
    return [{"bench": "provision.base_image_seconds", "value": round(fast_s, 1), "unit": "s",
             "baseline": round(slow_s, 1), "baseline_is": "the same image and esptool command at 115200 baud",
             "no_stub_seconds": round(rom_s, 1), "image_bytes": BASE_IMAGE_BYTES, "baud": 460800,
             "esptool": "5.6.0 defaults (its flasher stub, compressed), write-flash with its MD5 verification; "
                        "no_stub_seconds: --no-stub (ROM, uncompressed) at 460800",
             "flash_timing": "W25Q32JV typical erase/program times, MD5 at the CPU's rate, simulated"}]


CONFIG = {device_spec.LORAWAN_CONFIG: b'{"activation":"otaa","app_key":"00112233445566778899AABBCCDDEEFF",'
                                   b'"dev_eui":"70B3D57ED0000001","join_eui":"0000000000000000","version":"1.0.3"}',
          device_spec.DEVICE_CONFIG: b'{"board":"virtual","kind":"env","kommune":"0751","name":"bench-1",'
                                 b'"sensors":["bme280"],"site":"Bench"}'}


def _image_flash(board, bundle, **kw):
    from fleet.cli.ports import rom_options, virtual_port
    from provisioning.flash import flash

    board.bootloader()
    t0 = time.perf_counter()
    rep = flash(virtual_port(board), "virtual", files=bundle, device_files=CONFIG, **rom_options(board), **kw)
    seconds = time.perf_counter() - t0
    if not rep.self_test["ok"]:
        raise RuntimeError(f"self-test failed after the image route: {rep.self_test}")
    return seconds, rep


def board_seconds_full():
    """Base image + app + config, written and verified, each board's line throttled to its UART (115200 until
    esptool's CHANGE_BAUDRATE). Ours: one `fleet flash --firmware` pass at the board's usb_baud (921600, set
    through the ROM's CHANGE_BAUDRATE before esptool's stub goes up), the stub, compressed, MD5 (the base
    image's last 64 bytes read first: a fresh board is not made to hash it; the erased 4 KiB before the
    bootloader written with it, so its first 64 KiB are one block erase), then the digest of every file on
    the board and the self-test. The line bounds it: ~1 MB of compressed base image at 921600 is ~11 s.
    Baseline: esptool's own command for the base image at 460800 (its defaults: the stub, compressed) then
    `mpremote cp` of app and config at 115200 (no verification); the same with esptool --no-stub (ROM,
    uncompressed) as a second baseline, and our pass with --no-stub, all in the same run."""
    from fleet.sim import chips, flashmap

    with _bench("ours", "ours_rom", "base", "base_rom", baud=115200) as (d, bundle, (ours, ours_rom, base, base_rom)):
        base_image = flashmap.merged_image(chips.ESP32, app_size=BASE_IMAGE_BYTES, seed=b"bench")
        (d / "firmware.bin").write_bytes(base_image)
        ours_s, rep = _image_flash(ours, bundle, firmware=d / "firmware.bin")
        ours_rom_s, _ = _image_flash(ours_rom, bundle, firmware=d / "firmware.bin", stub=False)
        baselines = {}
        for board, stub in ((base, True), (base_rom, False)):
            t0 = time.perf_counter()
            _esptool_write(board, d / "firmware.bin", 460800, chips.ESP32.bootloader_offset, stub=stub)
            board.wait_prompt()
            _mpremote_cp(board.port, {**bundle[0], **CONFIG}, d)
            baselines[stub] = time.perf_counter() - t0
    base_s, base_rom_s = baselines[True], baselines[False]
    return [{"bench": "provision.board_seconds_full", "value": round(ours_s, 2), "unit": "s",
             "baseline": round(base_s, 2),
             "baseline_is": "esptool write-flash of the base image at 460800 (its defaults: flasher stub, "
                            "compressed) + mpremote cp of app and config at 115200, same run",
             "ratio": round(ours_s / base_s, 3), "goal": 0.2,
             "baseline_no_stub": round(base_rom_s, 2), "ratio_to_no_stub_baseline": round(ours_s / base_rom_s, 3),
             "ours_no_stub": round(ours_rom_s, 2), "image_bytes": len(base_image),
             "filesystem_bytes": rep.image["filesystem_bytes"], "baud": rep.image["baud"], "stub": rep.image["stub"],
             "esptool_seconds": rep.image["seconds"], "attempts": rep.attempts, "retries": rep.retries}]


def app_seconds_image():
    """App and config only, each on a fresh board at 115200: the image route (download mode, the ROM's
    CHANGE_BAUDRATE to 921600, esptool's stub uploaded at that speed, one littlefs image built with
    MicroPython's own geometry and written to the end of its last 64 KiB erase block, MD5, reset,
    read-back, self-test; and the same with --no-stub) against the REPL route (fleet flash --via repl, then
    the config files, verified; self-test). The flash's erase and program times (W25Q32JV typical) bound
    the image route: about 1.8 s of its ~3 s."""
    from provisioning.flash import flash
    from provisioning.transfer import write_files

    with _bench("ours", "ours_rom", "base", baud=115200) as (d, bundle, (ours, ours_rom, base)):
        ours_s, rep = _image_flash(ours, bundle)
        ours_rom_s, _ = _image_flash(ours_rom, bundle, stub=False)
        t0 = time.perf_counter()
        flash(base.port, "virtual", files=bundle, via="repl")
        write_files(base.port, CONFIG)
        base_s = time.perf_counter() - t0
    return [{"bench": "provision.app_seconds_image", "value": round(ours_s, 2), "unit": "s",
             "baseline": round(base_s, 2), "baseline_is": "the REPL route (fleet flash --via repl + config), same run",
             "ratio": round(ours_s / base_s, 3), "goal": 0.3, "stub": rep.image["stub"],
             "no_stub_seconds": round(ours_rom_s, 2), "ratio_no_stub": round(ours_rom_s / base_s, 3),
             "filesystem_bytes": rep.image["filesystem_bytes"],
             "esptool_seconds": rep.image["seconds"], "attempts": rep.attempts, "retries": rep.retries}]


def station_boards_per_minute():
    """8 virtual boards (lines at 115200 until esptool's CHANGE_BAUDRATE) on one station, by image; baseline:
    the same boards by the REPL route first, same run."""
    from fleet.cli.ports import rom_options, virtual_port
    from provisioning.station import Target, provision_all

    with _bench(*[f"st{i}" for i in range(8)], baud=115200) as (d, _, started):
        targets = [Target(b.name, virtual_port(b), "virtual board", "virtual", rom=rom_options(b)) for b in started]
        t0 = time.perf_counter()
        res = provision_all(targets, via="repl")
        repl_s = time.perf_counter() - t0
        if not all(r.ok for r in res):
            raise RuntimeError(f"REPL station: {[r.message for r in res]}")
        for b in started:
            b.bootloader()
        t0 = time.perf_counter()
        res = provision_all(targets)
        image_s = time.perf_counter() - t0
        if not all(r.ok for r in res):
            raise RuntimeError(f"image station: {[r.message for r in res]}")
    return [{"bench": "provision.station_boards_per_minute", "value": round(8 * 60 / image_s, 1),
             "unit": "boards/min", "baseline": round(8 * 60 / repl_s, 1),
             "baseline_is": "the same 8 boards by the REPL route (fleet station --via repl), same run",
             "boards": 8, "cpus": os.cpu_count(), "stub": True}]


BENCHES = [
    (("provision.wire_ratio",), wire_ratio),
    (("provision.board_seconds_115200",), board_seconds),
    (("provision.base_image_seconds",), base_image_seconds),
    (("provision.board_seconds_full",), board_seconds_full),
    (("provision.app_seconds_image",), app_seconds_image),
    (("provision.station_boards_per_minute",), station_boards_per_minute),
]
