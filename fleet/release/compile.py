"""Python modules to .mpy with mpy-cross: several at once, and each result kept in a cache by content.

mpy-cross is deterministic: the same program, arch, source name and source bytes give the same .mpy. So a
compiled module is kept under its key (a hash of those four) in $XDG_CACHE_HOME/bysans/mpy (or
$BYSANS_MPY_CACHE; "off" turns the cache off), and a later build of an unchanged module copies it instead of
running mpy-cross again. The mpy-cross program is part of the key by its bytes, so another mpy-cross version
never reuses another's output. Entries are written whole (a temporary file, then a rename), so a build that
is killed half way leaves no half entry; an entry is checked against its own hash before it is used.
"""

import functools
import hashlib
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import ReleaseError
from ..resources import mpy_cross_binary

CACHE_ENV = "BYSANS_MPY_CACHE"


def cache_dir() -> Path | None:
    """The cache's folder, or None when $BYSANS_MPY_CACHE is "off"."""
    env = os.environ.get(CACHE_ENV)
    if env == "off":
        return None
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bysans" / "mpy"


@functools.lru_cache(maxsize=4)
def _program_digest(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _key(program: str, arch: str, name: str, source: bytes) -> str:
    st = os.stat(program)
    h = hashlib.sha256()
    for part in (_program_digest(program, st.st_size, st.st_mtime_ns).encode(), arch.encode(), name.encode()):
        h.update(len(part).to_bytes(4, "big") + part)
    h.update(source)
    return h.hexdigest()


def _cached(cache: Path, key: str) -> bytes | None:
    try:
        data = (cache / key[:2] / key).read_bytes()
    except OSError:
        return None
    body, digest = data[:-32], data[-32:]
    return body if len(data) >= 32 and hashlib.sha256(body).digest() == digest else None


def _keep(cache: Path, key: str, mpy: bytes):
    folder = cache / key[:2]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(fd, "wb") as f:
            f.write(mpy + hashlib.sha256(mpy).digest())
        os.replace(tmp, folder / key)
    except OSError:  # a cache that cannot be written only costs time
        pass


def compile_one(program: str, src_file: Path, name: str, out: Path, arch: str, cache: Path | None) -> bool:
    """Compiles `src_file` (shown to MicroPython as `name`) to `out`. True when the cache had it."""
    source = src_file.read_bytes()
    key = _key(program, arch, name, source) if cache is not None else None
    out.parent.mkdir(parents=True, exist_ok=True)
    if key is not None:
        hit = _cached(cache, key)
        if hit is not None:
            out.write_bytes(hit)
            return True
    cmd = [program, f"-march={arch}", "-s", name, "-o", str(out), str(src_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ReleaseError(f"mpy-cross could not compile {name}: {proc.stderr.strip() or proc.stdout.strip()}",
                           hint="fix the module (it must run under MicroPython), then build again")
    if key is not None:
        _keep(cache, key, out.read_bytes())
    return False


def compile_all(jobs: list[tuple[Path, str, Path]], arch: str) -> int:
    """Compiles each (source file, name, output) for `arch`, several at once; returns how many came from the
    cache. The first module that does not compile raises its ReleaseError (by the order of `jobs`)."""
    if not jobs:
        return 0
    program = mpy_cross_binary()
    cache = cache_dir()
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(compile_one, program, src, name, out, arch, cache) for src, name, out in jobs]
        return sum(1 for f in futures if f.result())
