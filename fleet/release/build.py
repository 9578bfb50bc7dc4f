"""`fleet release build`: the app's files for one board, compiled for its arch, and an unsigned manifest.

    DIR/release.json   the manifest (signed later by `fleet release sign`)
    DIR/files/...      the files, at the paths the device writes them to

Python modules become .mpy (`mpy-cross -march=<the board's mpy_arch>`), except boot.py and main.py at the
top, which MicroPython runs only as .py. Other files (data) travel as they are. The build is deterministic:
the same sources give the same bytes, so unchanged files keep their hash and never travel again.
"""

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import boards
from ..errors import AppTooBig, ReleaseError, UsageError
from ..resources import firmware_dir
from . import compile, flashspace, metadata

MANIFEST = "release.json"
FILES = "files"
KEEP_AS_PY = ("boot.py", "main.py")
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".tmp", ".swp")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")
DEFAULT_EXPIRY = 30 * 86400


@dataclass(frozen=True)
class Built:
    path: str
    board: str
    arch: str
    version: str
    counter: int
    files: int
    bytes: int
    blocks: int = 0       # littlefs blocks one slot of it takes on the board (fleet/release/flashspace.py); on a
                          # board with app_store "romfs", the 4 KiB blocks of its ROMFS slot image
    budget_blocks: int = 0  # what the board leaves to one slot (its app_budget), 0 when it declares none

    def as_dict(self):
        return self.__dict__.copy()


def _sources(src: Path):
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith(_SKIP_SUFFIXES):
                continue
            yield Path(dirpath) / name


VERSION_MODULE = "bysans/version.py"  # compiled with the release's version in it


def build(board: "boards.Board | str", version: str, out, *, src=None, counter: int | None = None,
          now: int | None = None) -> Built:
    """Builds a release of the app in `src` (default: the project's firmware/) for `board` (a Board, or a
    board name to load) into `out`."""
    if not _VERSION.match(version or ""):
        raise UsageError(f"'{version}' is not a release version",
                         hint="use letters, digits and . + _ - (up to 32), e.g. 1.4.0 or 2025.06.1-rc1")
    spec = board if isinstance(board, boards.Board) else boards.get(board)
    arch = spec.mpy_arch
    src = Path(src) if src is not None else firmware_dir()
    if not src.is_dir():
        raise UsageError(f"no source directory at {src}")
    now = metadata.now() if now is None else now
    counter = now if counter is None else counter
    if counter < 0:
        raise UsageError("the counter cannot be negative")
    out = Path(out)
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists()):
            raise ReleaseError(f"{out} exists and is not a release directory",
                               hint="give -o a new or empty directory (an earlier release directory is replaced)")
        shutil.rmtree(out / FILES, ignore_errors=True)
        (out / MANIFEST).unlink(missing_ok=True)
    files_dir = out / FILES
    files_dir.mkdir(parents=True, exist_ok=True)
    entries, jobs, stamped = [], [], None
    for f in _sources(src):
        rel = f.relative_to(src).as_posix()
        if rel == VERSION_MODULE:  # the release's own version, so the board says what it runs
            f = stamped = Path(tempfile.mkdtemp(prefix="bysans-version-")) / "version.py"
            f.write_text(f"VERSION = {version!r}\n")
        if f.suffix == ".py" and rel not in KEEP_AS_PY:
            rel = rel[:-3] + ".mpy"
            jobs.append((f, rel[:-4] + ".py", files_dir / rel))
        else:
            (files_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, files_dir / rel)
        entries.append({"path": rel})
    try:
        compile.compile_all(jobs, arch)
    finally:
        if stamped is not None:
            shutil.rmtree(stamped.parent, ignore_errors=True)
    for e in entries:
        data = (files_dir / e["path"]).read_bytes()
        e.update(length=len(data), sha256=hashlib.sha256(data).hexdigest())
    if not entries:
        raise ReleaseError(f"{src} has no files to release")
    entries.sort(key=lambda e: e["path"])
    size = sum(e["length"] for e in entries)
    body = {"_type": metadata.RELEASE_TYPE, "format": metadata.FORMAT, "version": version, "counter": counter,
            "boards": [spec.name], "arch": arch, "kommuner": [], "created": now, "expires": 0,
            "files": entries}
    budget = spec.definition.get("app_budget")
    budget_blocks = flashspace.slot_budget_blocks(budget) if budget is not None else 0
    if spec.definition.get("app_store") == "romfs":
        # a slot is a ROMFS image in half the romfs partition: its bytes count (docs/boards.md, "App budget")
        image = flashspace.rom_image_bytes(((e["path"], e["length"]) for e in entries),
                                           len(metadata.unsigned(body)))
        blocks = -(-image // flashspace.BLOCK_SIZE)
        if budget is not None and image > budget:
            shutil.rmtree(files_dir, ignore_errors=True)
            largest = sorted(entries, key=lambda e: -e["length"])[:3]
            raise AppTooBig(spec.name, image, budget, [(e["path"], e["length"]) for e in largest])
    else:
        blocks = flashspace.slot_blocks((e["path"], e["length"]) for e in entries)
        if budget is not None and blocks > budget_blocks:  # one of two slots, as littlefs stores it: docs/boards.md
            shutil.rmtree(files_dir, ignore_errors=True)
            by_blocks = sorted(entries, key=lambda e: (-flashspace.file_blocks(e["length"]), -e["length"]))[:3]
            raise AppTooBig(spec.name, size, budget, [(e["path"], e["length"]) for e in by_blocks],
                            blocks=blocks, budget_blocks=budget_blocks, files=len(entries))
    (out / MANIFEST).write_bytes(metadata.unsigned(body))
    return Built(str(out), spec.name, arch, version, counter, len(entries), size, blocks, budget_blocks)
