"""Virtual boards for end-to-end tests, and the real tools that talk to them."""

import itertools
import os
import sys
from pathlib import Path

import pytest

from fleet.sim import manager

sys.path.insert(0, str(Path(__file__).parent))
from e2e_tools import pid_alive  # noqa: E402  (its folder is on sys.path from here)

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
