"""Ctrl-C in the middle of `fleet flash`: it says what state the board is in and that the same command
repairs it -- and the same command does, ending verified; a second Ctrl-C stops at once."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from e2e_tools import BIN, run_fleet
from fleet import boards
from provisioning.flash import app_bundle
from provisioning.session import Session
from test_flash import assert_identical, board_files

pytestmark = pytest.mark.usefixtures("frozen_sources")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def bundle(frozen_sources):
    return app_bundle(boards.get("virtual"))


class Flashing:
    """`fleet flash` as a subprocess whose stderr is a terminal (a pty), so that it draws its progress bars:
    they tell when the app is on its way."""

    def __init__(self, port, via="repl"):
        master, slave = os.openpty()
        self.proc = subprocess.Popen([str(BIN / "fleet"), "flash", "--port", port, "--board", "virtual",
                                      "--via", via],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        self.master, self.err = master, b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                got = os.read(self.master, 4096)
            except OSError:
                return
            if not got:
                return
            self.err += got

    def text(self) -> str:
        return ANSI.sub("", self.err.decode(errors="replace"))

    def wait_for(self, what: str, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while what not in self.text():
            assert self.proc.poll() is None, f"fleet flash ended before '{what}':\n{self.text()}"
            assert time.monotonic() < deadline, f"no '{what}' within {timeout} s:\n{self.text()}"
            time.sleep(0.05)

    def finish(self, timeout: float) -> tuple[int, str]:
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        os.close(self.master)
        return rc, self.text()


def test_ctrl_c_mid_transfer_says_the_state_and_the_same_command_repairs_it(make_board, bundle):
    files, _ = bundle
    board = make_board(baud=57600)  # about 13 s for the whole app: time to be interrupted half-way
    run = Flashing(board.port)
    run.wait_for("virtual app")
    time.sleep(2.5)
    run.proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    rc, err = run.finish(timeout=20)
    assert time.monotonic() - t < 5, "Ctrl-C took long to stop fleet flash"
    assert rc == 130, err
    assert "Traceback" not in err and "error: aborted" not in err
    m = re.search(r"error: interrupted while writing the app to \S+: (\d+) of (\d+) changed files had reached the "
                  r"board\. Each file on the board is whole \(old or new\), and /main\.py is left off", err)
    assert m, err
    sent, changed = int(m.group(1)), int(m.group(2))
    assert changed == len(files) and 0 < sent < changed, err
    assert "hint: run the same command again to repair it" in err

    on_board = board_files(board.port)
    assert "/main.py" not in on_board  # the board does not start the partial app
    with Session(board.port) as s:
        new = [p for p in files if p in on_board and s.sha256(p) == hashlib.sha256(files[p]).digest()]
    # the files whose bytes had all arrived are on the board, new (the last may have been on its way to
    # flash when the abort came: the board's inflater reads ahead)
    assert len(new) >= sent - 1

    again = run_fleet("flash", "--port", board.port, "--board", "virtual", "--via", "repl", "--json")
    assert again.returncode == 0, again.stderr
    rep = json.loads(again.stdout)
    assert rep["transfer"]["written"][-1] == "/main.py"
    assert rep["self_test"]["ok"] is True
    assert set(rep["transfer"]["written"]) | set(rep["transfer"]["unchanged"]) == set(files)
    assert rep["transfer"]["unchanged"], "the second run should not have written every file again"
    assert_identical(board.port, files)
    assert not [p for p in board_files(board.port) if p.endswith(".tmp")]


def test_ctrl_c_during_the_image_write_says_so_and_the_same_command_repairs_it(make_board, bundle):
    """The default route: Ctrl-C while esptool writes the filesystem image."""
    board = make_board()
    board.bootloader()
    run = Flashing(f"sim:{board.name}", via="image")
    run.wait_for("virtual filesystem")
    run.proc.send_signal(signal.SIGINT)
    rc, err = run.finish(timeout=20)
    assert rc == 130 and "Traceback" not in err, err
    assert ("error: interrupted while esptool was writing to the board's flash (the base image or the filesystem "
            "image): the flash holds part of it") in err
    assert "hint: run the same command again" in err and "it writes the whole image again" in err
    again = run_fleet("flash", "--port", f"sim:{board.name}", "--board", "virtual", "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["self_test"]["ok"] is True
    assert_identical(board.port, bundle[0])


def test_second_ctrl_c_stops_at_once(make_board, bundle):
    board = make_board(baud=57600)
    run = Flashing(board.port)
    run.wait_for("virtual app")
    time.sleep(1)
    run.proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    run.proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    rc, err = run.finish(timeout=20)
    assert time.monotonic() - t < 3
    # 130, or killed by the SIGINT itself (-2, which a shell shows as 130) when the second one lands while
    # the interpreter is already shutting down
    assert rc in (130, -signal.SIGINT) and "Traceback" not in err, err
    again = run_fleet("flash", "--port", board.port, "--board", "virtual", "--via", "repl", "--json")
    assert again.returncode == 0, again.stderr
    assert_identical(board.port, bundle[0])


SLOW_CLEANUP = """
import os, signal, sys, time
import click
from fleet.cli.common import run_cli

@click.command()
def slow():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        print("cleaning up", flush=True)
        os.kill(os.getpid(), signal.SIGINT)   # the technician presses Ctrl-C again
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:    # a cleanup that waits (e.g. for threads) and swallows interrupts
            try:
                time.sleep(0.1)
            except KeyboardInterrupt:
                pass
        print("cleanup finished", flush=True)

run_cli(slow, [])
"""


def test_second_ctrl_c_during_a_slow_cleanup_stops_at_once():
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", SLOW_CLEANUP], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t < 15
    assert proc.returncode == 130
    assert "cleaning up" in proc.stdout and "cleanup finished" not in proc.stdout
    assert "interrupted again: stopped at once" in proc.stderr
