"""Virtual boards for end-to-end tests, and the real tools that talk to them."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.sim import manager

sys.path.insert(0, str(Path(__file__).parent))
BIN = Path(sys.executable).parent
_names = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def sim_dir(tmp_path_factory):
    """Every virtual board of the run lives under one temporary root, also for `fleet` subprocesses."""
    d = tmp_path_factory.mktemp("sim")
    old = os.environ.get("BYSANS_SIM_DIR")
    os.environ["BYSANS_SIM_DIR"] = str(d)
    yield d
    manager.stop_all()
    if old is None:
        del os.environ["BYSANS_SIM_DIR"]
    else:
        os.environ["BYSANS_SIM_DIR"] = old


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def make_board():
    """Starts virtual boards with fresh flash; stops them after the test and checks nothing outlives them."""
    started = []

    def make(**kw):
        kw.setdefault("erase", True)
        [board] = manager.start(names=[f"t{next(_names)}"], **kw)
        started.append(board)
        return board

    yield make
    for b in started:
        try:
            interp = b.status()["interpreter_pid"]
        except Exception:
            interp = None
        b.stop()
        if interp:
            assert not pid_alive(interp), f"interpreter {interp} outlived its supervisor"


@pytest.fixture
def vboard(make_board):
    return make_board()


@pytest.fixture
def console(vboard):
    from lab.serialconsole import Console

    c = Console(vboard.port)
    yield c
    c.close()


@pytest.fixture(scope="module")
def frozen_sources(tmp_path_factory):
    """A snapshot of firmware/ and boards/ (BYSANS_HOME) for a module whose tests build the app in this
    process and in `fleet` subprocesses: all of them see the same sources, whatever changes meanwhile."""
    import shutil

    from fleet.resources import project_root

    home = tmp_path_factory.mktemp("home")
    for d in ("firmware", "boards"):
        shutil.copytree(project_root() / d, home / d, ignore=shutil.ignore_patterns("__pycache__"))
    old = os.environ.get("BYSANS_HOME")
    os.environ["BYSANS_HOME"] = str(home)
    yield home
    if old is None:
        del os.environ["BYSANS_HOME"]
    else:
        os.environ["BYSANS_HOME"] = old


def run_mpremote(port, *args, timeout=120, check=True):
    proc = subprocess.run([str(BIN / "mpremote"), "connect", port, *args], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mpremote {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_fleet(*args, timeout=120):
    return subprocess.run([str(BIN / "fleet"), *args], capture_output=True, text=True, timeout=timeout)
