"""ROMFS images for the virtual board: its own ROM stand-ins, and what goes in a board's `romfs` partition.

An ESP32's `machine`, `esp32`, `network` and `socket` are C in the chip's flash: their code and names take
nothing from the GC heap. The virtual board's stand-ins for them are MicroPython (fleet/sim/rom/). On the
board's interpreter (scripts/build-micropython32-rom) they run in place from a ROMFS image of their own,
memory-mapped outside the heap (`_vrom.standins()`), so that they take from the heap only what they make at
run time (classes, dicts, the board's definition), about what C modules keep there, never less.

Their names are the chip's too: on an ESP32 a C module's names are static qstrs in flash. The stand-ins' names,
and on a board whose MicroPython is Bysans's own build (one with a `romfs` partition: stock MicroPython has no
ROMFS) the names module that build freezes (fleet/firmware_names.py), go to the interpreter as a names file
(`BYSANS_QSTRS`): one more static qstr pool outside the heap (scripts/micropython32-rom/vrom.c).

Images are MicroPython's ROMFS format, written by mpremote's own `VfsRomWriter` (mpremote/romfs.py), the
writer behind `mpremote romfs build`.
"""

import functools
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from .. import firmware_names, resources

STANDINS_FILE = "vrom.img"  # in the board's state directory
NAMES_FILES = {False: "qstrs-chip.bin", True: "qstrs-chip-firmware.bin"}  # by whether the firmware's are in
_SKIP = {"vboot.py"}  # the boot script runs as the interpreter's main script, not from the ROM


def romfs_image(files: dict) -> bytes:
    """A ROMFS image holding `files` ({"dir/name.mpy": bytes}), directories made as the paths need."""
    from mpremote.romfs import VfsRomWriter

    tree: dict = {}
    for path, data in files.items():
        node = tree
        *dirs, name = path.strip("/").split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = data
    w = VfsRomWriter()

    def add(node):
        for name in sorted(node):
            if isinstance(node[name], dict):
                w.opendir(name)
                add(node[name])
                w.closedir()
            else:
                w.mkfile(name, bytes(node[name]))
    add(tree)
    return w.finalise()


def _compile(src: Path, arch: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / (src.stem + ".mpy")
        proc = subprocess.run([resources.mpy_cross_binary(), f"-march={arch}", "-s", src.name, "-o", str(out),
                               str(src)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"mpy-cross could not compile the stand-in {src.name}: {proc.stderr.strip()}")
        return out.read_bytes()


def standins_image(arch: str) -> bytes:
    """The stand-ins (fleet/sim/rom/*.py but the boot script) compiled for `arch`, as one ROMFS image."""
    srcs = sorted(p for p in resources.rom_dir().glob("*.py") if p.name not in _SKIP)
    return romfs_image({p.stem + ".mpy": _compile(p, arch) for p in srcs})


@functools.lru_cache(maxsize=8)
def runs_rom(interpreter: str) -> bool:
    """Whether `interpreter` is the virtual board's own build (vfs.rom_ioctl over the flash, `_vrom` with the
    chip's names: an older build of scripts/build-micropython32-rom has none and is not taken for it)."""
    try:
        proc = subprocess.run([interpreter, "-c", "import _vrom, vfs; vfs.rom_ioctl; _vrom.names"], capture_output=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def ensure_standins(state_dir, arch: str) -> str:
    """The stand-ins' image in `state_dir`, made again when the sources or the arch changed; its path."""
    srcs = sorted(p for p in resources.rom_dir().glob("*.py") if p.name not in _SKIP)
    h = hashlib.sha256(arch.encode())
    for p in srcs:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    path = Path(state_dir) / STANDINS_FILE
    stamp = path.with_suffix(".sha256")
    if not path.exists() or not stamp.exists() or stamp.read_text() != h.hexdigest():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(standins_image(arch))
        os.replace(tmp, path)
        stamp.write_text(h.hexdigest())
    return str(path.resolve())


def _qstrs(src: Path, name: str, arch: str) -> list:
    return firmware_names.compile_qstrs(resources.mpy_cross_binary(), src, name, arch)


def names(arch: str, firmware: bool) -> list:
    """The names the chip holds as static qstrs: the stand-ins' and, with `firmware`, those of the names
    module Bysans's own MicroPython build freezes, as that build's frozen pool has them (sorted by bytes).
    Without `firmware`, none of the firmware's names: a stand-in's name the firmware uses too (`call`,
    `_fill`) stays in RAM, since a stock ESP32's C modules need not have it."""
    found = set()
    for p in sorted(resources.rom_dir().glob("*.py")):
        if p.name not in _SKIP:
            found.update(_qstrs(p, p.name, arch))
    with tempfile.TemporaryDirectory() as d:
        mod = firmware_names.write_names_module(Path(d), resources.mpy_cross_binary(), resources.firmware_dir())
        own = set(_qstrs(mod, mod.name, arch))
    found = found | own if firmware else found - own
    return sorted((n for n in found if "\0" not in n), key=str.encode)  # the file ends each name with a NUL


def ensure_names(state_dir, arch: str, firmware: bool) -> str:
    """The names file (names(), each NUL-terminated) in `state_dir`, made again when the sources changed."""
    h = hashlib.sha256(f"{arch}:{firmware}".encode())
    srcs = (sorted(resources.rom_dir().glob("*.py")) + [Path(__file__), Path(firmware_names.__file__)]
            + sorted(resources.firmware_dir().rglob("*.py")))
    for p in srcs:
        h.update(str(p).encode() + b"\0" + p.read_bytes())
    path = Path(state_dir) / NAMES_FILES[firmware]
    stamp = path.with_suffix(".sha256")
    if not path.exists() or not stamp.exists() or stamp.read_text() != h.hexdigest():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(b"".join(n.encode() + b"\0" for n in names(arch, firmware)))
        os.replace(tmp, path)
        stamp.write_text(h.hexdigest())
    return str(path.resolve())
