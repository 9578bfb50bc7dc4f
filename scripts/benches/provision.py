"""Provisioning benchmarks: bytes on the wire per app-bundle byte, and one board flashed and enrolled at
115200 baud; baseline for both: `mpremote cp` of the same files to a fresh board in the same run. And the
base image: a MicroPython-sized image written and verified by esptool through the ROM loader at 460800 baud;
baseline: the same at 115200 baud."""

import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleet import boards
from fleet.sim import manager

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


def _sim_dir():
    d = tempfile.TemporaryDirectory()
    old = os.environ.get("BYSANS_SIM_DIR")
    os.environ["BYSANS_SIM_DIR"] = d.name

    def restore():
        if old is None:
            os.environ.pop("BYSANS_SIM_DIR", None)
        else:
            os.environ["BYSANS_SIM_DIR"] = old
        d.cleanup()

    return Path(d.name), restore


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

    d, restore = _sim_dir()
    try:
        files, stale = _bundle()
        size = sum(len(v) for v in files.values())
        ours, base = manager.start(names=["ours", "base"], erase=True)
        try:
            ours.counters(reset=True)
            write_files(ours.port, files, remove=stale)
            c = ours.counters()
            ratio = (c["host_to_board"] + c["board_to_host"]) / size
            base.counters(reset=True)
            _mpremote_cp(base.port, files, d)
            c = base.counters()
            baseline = (c["host_to_board"] + c["board_to_host"]) / size
        finally:
            ours.stop()
            base.stop()
    finally:
        restore()
    return [{"bench": "provision.wire_ratio", "value": round(ratio, 3), "unit": "wire bytes per app-bundle byte",
             "baseline": round(baseline, 3), "baseline_is": "mpremote cp of the same files (.mpy for x64)",
             "bundle_bytes": size, "files": len(files), "goal": 0.8}]


def board_seconds():
    from provisioning.flash import flash
    from provisioning.enroll_on_board import enroll_on_board
    from fleet.registry import NewDevice, Operator, Registry

    d, restore = _sim_dir()
    try:
        bundle = _bundle()
        ours, base = manager.start(names=["ours", "base"], erase=True, baud=115200)
        try:
            reg = Registry.open(f"sqlite:///{d / 'registry.sqlite'}", key=os.urandom(32))
            op = Operator("bench", kommune="751")
            t0 = time.perf_counter()
            flash(ours.port, "virtual", files=bundle)
            with reg:
                enroll_on_board(reg, op, NewDevice(kommune="751", site="Bench", kind="env", board="virtual"),
                                ours.port)
            ours_s = time.perf_counter() - t0
            config = {"/config/lorawan.json": b'{"app_key":"' + base64.b16encode(os.urandom(16)) + b'"}',
                      "/config/device.json": b'{"site":"Bench"}'}
            t0 = time.perf_counter()
            _mpremote_cp(base.port, {**bundle[0], **config}, d)
            base_s = time.perf_counter() - t0
        finally:
            ours.stop()
            base.stop()
    finally:
        restore()
    return [{"bench": "provision.board_seconds_115200", "value": round(ours_s, 2), "unit": "s",
             "baseline": round(base_s, 2),
             "baseline_is": "mpremote cp of the same app and config files (no verify, no self-test, no registry)",
             "ratio": round(ours_s / base_s, 3)}]


BASE_IMAGE_BYTES = 1_600_000  # about MicroPython v1.28's ESP32_GENERIC image


def _esptool_write(board, image: Path, baud: int) -> float:
    board.bootloader()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "esptool", "--port", board.port, "--baud", str(baud),
                        "--before", "no-reset", "--after", "no-reset", "--no-stub",
                        "write-flash", "0x10000", str(image)], capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    if r.returncode != 0 or "Hash of data verified" not in r.stdout:
        raise RuntimeError(f"esptool failed: {r.stdout[-400:]} {r.stderr[-400:]}")
    board.reset()
    if board.status()["app"] != "factory":
        raise RuntimeError("the board did not boot the image esptool wrote")
    return seconds


def base_image_seconds():
    from fleet.sim import chips, flashmap

    d, restore = _sim_dir()
    try:
        image = d / "micropython.bin"
        image.write_bytes(flashmap.build_image(chips.ESP32, size=BASE_IMAGE_BYTES, seed=b"bench"))
        # both boards' lines are throttled to a UART's speed; the ROM loader's CHANGE_BAUDRATE moves it
        fast, slow = manager.start(names=["fast", "slow"], erase=True, baud=115200)
        try:
            fast_s = _esptool_write(fast, image, 460800)
            slow_s = _esptool_write(slow, image, 115200)
        finally:
            fast.stop()
            slow.stop()
    finally:
        restore()
    return [{"bench": "provision.base_image_seconds", "value": round(fast_s, 1), "unit": "s",
             "baseline": round(slow_s, 1), "baseline_is": "the same image and esptool command at 115200 baud",
             "image_bytes": BASE_IMAGE_BYTES, "baud": 460800,
             "esptool": "5.6.0 --no-stub (ROM loader, uncompressed: esptool's default without the stub), "
                        "write-flash with its MD5 verification",
             "flash_timing": "W25Q32JV typical erase/program times simulated"}]


BENCHES = [
    (("provision.wire_ratio",), wire_ratio),
    (("provision.board_seconds_115200",), board_seconds),
    (("provision.base_image_seconds",), base_image_seconds),
]
