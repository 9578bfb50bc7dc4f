"""The 32-bit MicroPython for tests that measure heap as an ESP32 would (docs/boards.md): found through
fleet.resources.micropython32_path(). Missing, those tests are skipped and the run ends with a note
(tests/conftest.py); with BYSANS_REQUIRE_SERVICES=1 (.ci/run, which builds it) they fail instead."""

import os

import pytest

from fleet import boards
from fleet.resources import MP32_ENV, interpreter_arch, micropython32_path

missing = []  # why it was not there, once per skipped test: the run's summary says so
_found = {}


def _find():
    if "path" not in _found:
        path, problem = micropython32_path(), None
        if path is None:
            problem = (f"no 32-bit MicroPython ({MP32_ENV} unset, none built by scripts/build-micropython32-rom "
                       "or ../shared/tools/build-micropython32)")
        else:
            try:
                if interpreter_arch(path) != "x86":
                    problem = f"{path} is not a 32-bit MicroPython"
            except Exception as e:  # noqa: BLE001 - reported as the reason, whatever it is
                problem = str(e)
        _found["path"], _found["problem"] = (None if problem else path), problem
    return _found["path"], _found["problem"]


def require() -> str:
    """The 32-bit MicroPython's path, or the calling test is skipped (failed where CI requires it)."""
    path, problem = _find()
    if path:
        return path
    if os.environ.get("BYSANS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{problem}, and this run requires it (BYSANS_REQUIRE_SERVICES=1)")
    missing.append(problem)
    pytest.skip(f"needs the 32-bit MicroPython: {problem}")  # conftest.MP32_SKIP: the run's summary finds it


def smallest_board_heap() -> str:
    """The heap of the smallest board (the TTGO LoRa32: docs/boards.md), as -X heapsize= writes it."""
    return boards.load("ttgo_lora32_v21")["heap"]


def heap_bytes(heap: str) -> int:
    return int(heap[:-1]) * {"K": 1024, "M": 1 << 20}[heap[-1]] if heap[-1] in "KM" else int(heap)


def require_rom() -> str:
    """The 32-bit MicroPython with the virtual board's ROM (vfs.rom_ioctl over the flash: built by
    scripts/build-micropython32-rom), or the calling test is skipped (failed where CI requires it)."""
    from fleet.sim.vrom import runs_rom

    path = require()
    if runs_rom(path):
        return path
    problem = (f"{path} has no vfs.rom_ioctl or no _vrom.names (not built by this checkout's "
               "scripts/build-micropython32-rom: run it again)")
    if os.environ.get("BYSANS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{problem}, and this run requires it (BYSANS_REQUIRE_SERVICES=1)")
    missing.append(problem)
    pytest.skip(f"needs the 32-bit MicroPython: {problem}")
