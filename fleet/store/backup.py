"""Backing up and restoring an SQLite registry with SQLite's own online backup (a consistent copy even
while `fleet serve` or `fleet ingest` write to it). A PostgreSQL registry is backed up with PostgreSQL's
own tools (pg_dump / pg_restore): these functions refuse it with that hint.

A restore never loses anything: the file it replaces is kept beside it as NAME.replaced-YYYYmmddTHHMMSS.
The backup is checked first (SQLite's integrity check and a registry's migration table), and copied into
place through a temporary file and one rename.
"""

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import make_url

from ..errors import RegistryDamaged, UsageError
from .db import resolve_url


@dataclass(frozen=True)
class Copy:
    source: Path
    target: Path
    bytes: int
    revision: str
    kept: Path | None = None  # what a restore replaced, kept


def sqlite_path(url: str | None) -> Path:
    u = make_url(resolve_url(url))
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        raise UsageError("only an SQLite registry is backed up by fleet",
                         hint="back up PostgreSQL with pg_dump, and restore it with pg_restore")
    return Path(u.database)


def check(path: Path) -> str:
    """The migration revision of the registry file at `path`; RegistryDamaged if it is not a sound one."""
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = con.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                raise RegistryDamaged(f"{path} is damaged: {ok}")
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise RegistryDamaged(f"{path} is damaged or is not a registry ({e})") from None
    if row is None:
        raise RegistryDamaged(f"{path} is not a registry (it has no migration revision)")
    return row[0]


def _copy(src: Path, dest: Path) -> None:
    """SQLite's online backup of src into dest, through a temporary file in dest's folder and a rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # sealed keys inside: the owner's only
    os.close(fd)
    try:
        s = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        d = sqlite3.connect(tmp)
        try:
            s.backup(d)
            d.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            d.close()
            s.close()
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def backup(dest, *, url: str | None = None) -> Copy:
    """A consistent copy of the registry at `url` (FLEET_DB, ...) in the file `dest` (not overwritten)."""
    src, dest = sqlite_path(url), Path(dest)
    if dest.exists():
        raise UsageError(f"{dest} exists already", hint="name a new file: a backup never overwrites one")
    revision = check(src)
    _copy(src, dest)
    return Copy(src, dest, dest.stat().st_size, revision)


def restore(source, *, url: str | None = None) -> Copy:
    """Puts the backup `source` in place of the registry at `url`, keeping the replaced file beside it."""
    src, target = Path(source), sqlite_path(url)
    revision = check(src)
    kept = None
    if target.exists():
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        kept = target.with_name(f"{target.name}.replaced-{stamp}")
        os.replace(target, kept)
        for side in ("-wal", "-shm"):  # the old file's journal: it belongs to the kept file now
            f = target.with_name(target.name + side)
            if f.exists():
                os.replace(f, kept.with_name(kept.name + side))
    _copy(src, target)
    return Copy(src, target, target.stat().st_size, revision, kept)
