"""`fleet flash --via repl` on virtual boards: the app and config written over the REPL, verified by SHA-256, a
self-test; the cable pulled mid-transfer; a board that is not the one named; an image for another chip
(refused on either route before the port is opened). The image route: test_flash_image.py."""

import hashlib
import json
import threading
import time

import pytest

from e2e_tools import run_fleet
from fleet import boards
from fleet.cli.ports import virtual_port
from fleet.errors import WrongBoard
from provisioning.flash import app_bundle, flash
from provisioning.session import Session

LIST_ALL = """import os
def walk(d):
 for n in os.listdir(d):
  p=(d.rstrip('/')+'/'+n)
  if os.stat(p)[0]&0x4000:walk(p)
  else:print(p)
walk('/')
"""


pytestmark = pytest.mark.usefixtures("frozen_sources")


@pytest.fixture(scope="module")
def bundle(frozen_sources):
    return app_bundle(boards.get("virtual"))


def board_files(port) -> list[str]:
    with Session(port) as s:
        return sorted(s.exec(LIST_ALL).split())


def assert_identical(port, files):
    """Every file on the board hashes (mpremote's own hashing, on the board) as hashlib does here."""
    with Session(port) as s:
        for path, data in files.items():
            assert s.sha256(path) == hashlib.sha256(data).digest(), path


def test_flash_writes_verified_app_and_reports_self_test(vboard, bundle):
    proc = run_fleet("flash", "--port", vboard.port, "--board", "virtual", "--via", "repl", "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["identity"]["chip"] == "virtual"
    assert rep["self_test"]["ok"] is True
    assert rep["self_test"]["board"] == "virtual"
    answering = {s["type"]: s["answering"] for s in rep["self_test"]["sensors"]}
    assert answering["bme280"] is True and answering["lis3dh"] is True
    files, _ = bundle
    assert set(rep["transfer"]["written"]) == set(files)
    assert_identical(vboard.port, files)
    on_board = board_files(vboard.port)
    assert "/board.json" in on_board and not [p for p in on_board if p.endswith(".tmp")]

    again = run_fleet("flash", "--port", vboard.port, "--board", "virtual", "--via", "repl", "--json")
    assert again.returncode == 0, again.stderr
    rep2 = json.loads(again.stdout)
    assert rep2["transfer"]["written"] == [] and set(rep2["transfer"]["unchanged"]) == set(files)


def test_human_output_lists_each_sensor(vboard):
    proc = run_fleet("flash", "--port", f"sim:{vboard.name}", "--board", "virtual", "--via", "repl")
    assert proc.returncode == 0, proc.stderr
    assert "self-test: ok" in proc.stdout
    assert "bme280" in proc.stdout and "answers" in proc.stdout


def test_cable_pulled_mid_transfer_then_retry_ends_verified(make_board, bundle):
    board = make_board(baud=115200)
    files, stale = bundle
    started = threading.Event()
    pulled = []

    def progress(stage, done, total):
        if stage == "app" and 0 < done < total:
            started.set()

    def pull():
        if started.wait(60):
            time.sleep(0.3)
            board.unplug()
            pulled.append(time.monotonic())
            time.sleep(0.5)
            board.replug()

    t = threading.Thread(target=pull)
    t.start()
    try:
        rep = flash(virtual_port(board), "virtual", files=bundle, progress=progress, reconnect_timeout=30, via="repl")
    finally:
        t.join()
    assert pulled, "the cable was never pulled"
    assert rep.attempts >= 2 and rep.retries
    assert rep.self_test["ok"]
    port = board.port
    assert port == rep.port
    assert_identical(port, files)
    assert not [p for p in board_files(port) if p.endswith(".tmp")]


def test_wrong_board_named_is_refused_and_nothing_written(vboard):
    before = board_files(vboard.port)
    proc = run_fleet("flash", "--port", vboard.port, "--board", "heltec_v3", "--via", "repl")
    assert proc.returncode == WrongBoard.exit_code
    assert "not heltec_v3" in proc.stderr and "hint:" in proc.stderr
    assert board_files(vboard.port) == before


def test_image_for_another_chip_is_refused_before_any_write(vboard, tmp_path):
    from tests_image import fake_image

    img = tmp_path / "s3.bin"
    img.write_bytes(fake_image(chip_id=9))
    before = board_files(vboard.port)
    proc = run_fleet("flash", "--port", vboard.port, "--board", "virtual", "--firmware", str(img))
    assert proc.returncode == 50
    assert "virtual board" in proc.stderr and "nothing was written" in proc.stderr
    assert board_files(vboard.port) == before


def test_busy_port_is_one_clear_line(vboard):
    with Session(vboard.port):
        proc = run_fleet("flash", "--port", vboard.port, "--board", "virtual", "--retries", "0")
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
