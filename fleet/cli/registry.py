"""`fleet registry`: back up, check and restore the registry's SQLite file."""

from pathlib import Path

import click

from ..store import backup as B
from .common import echo_json


@click.group("registry")
def command():
    """Back up, check and restore the registry (an SQLite file; PostgreSQL: use pg_dump).

    \b
    Example:
      fleet registry backup registry-2026-12-07.sqlite
      fleet registry check registry-2026-12-07.sqlite
      fleet registry restore registry-2026-12-07.sqlite
    """


_db = click.option("--db", metavar="URL", envvar="FLEET_DB", help="Registry database URL or SQLite path [FLEET_DB].")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _out(c: B.Copy, as_json: bool, text: str):
    if as_json:
        echo_json({"source": str(c.source), "target": str(c.target), "bytes": c.bytes, "revision": c.revision,
                   "kept": str(c.kept) if c.kept else None})
    else:
        click.echo(text)


@command.command("backup")
@_db
@_json
@click.argument("dest", type=click.Path(dir_okay=False))
def backup(db, as_json, dest):
    """Copy the registry to DEST, consistently, even while it is in use (mode 0600: it holds sealed keys).

    \b
    Example:
      fleet registry backup /media/usb/registry-$(date +%F).sqlite
    """
    c = B.backup(dest, url=db)
    _out(c, as_json, f"backed up {c.source} to {c.target} ({c.bytes} bytes, revision {c.revision})")


@command.command("check")
@_db
@_json
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def check(db, as_json, file):
    """Check a registry file (the registry itself without FILE): SQLite's integrity check and its revision.

    \b
    Example:
      fleet registry check backup.sqlite
    """
    path = Path(file) if file else B.sqlite_path(db)
    rev = B.check(path)
    echo_json({"file": str(path), "ok": True, "revision": rev}) if as_json else \
        click.echo(f"{path}: ok (revision {rev})")


@command.command("restore")
@_db
@_json
@click.argument("backup_file", type=click.Path(dir_okay=False, exists=True))
def restore(db, as_json, backup_file):
    """Put BACKUP_FILE in place of the registry; the replaced file is kept beside it.

    \b
    Example:
      fleet registry restore /media/usb/registry-2026-12-01.sqlite
    """
    c = B.restore(backup_file, url=db)
    _out(c, as_json, f"restored {c.target} from {c.source} (revision {c.revision})"
         + (f"; the replaced file is kept as {c.kept}" if c.kept else ""))
