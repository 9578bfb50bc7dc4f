"""Deploying the app bundle (firmware/) to a board and reading back what it runs."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from fleet.errors import FleetError, VerifyError

from .session import literal

APP_VERSION_QUERY = ("import bysans.version as v, bysans.hal as h\n"
                     "b = h.board()\n"
                     "print(repr((v.VERSION, b.name, b.reset_cause())))")


def bundle(src: Path) -> dict[str, bytes]:
    """The files of an app bundle by board path: boot.py, main.py and the bysans package."""
    files = {}
    for name in ("boot.py", "main.py"):
        if (src / name).is_file():
            files["/" + name] = (src / name).read_bytes()
    for p in sorted((src / "bysans").rglob("*.py")):
        files["/" + p.relative_to(src).as_posix()] = p.read_bytes()
    return files


@dataclass
class DeployReport:
    written: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    bytes_written: int = 0


def deploy(session, files: dict[str, bytes], *, progress=None) -> DeployReport:
    """Writes the files that differ from what the board holds, then checks every file's SHA-256."""
    report = DeployReport()
    total = sum(len(d) for d in files.values())
    done = 0
    for path, data in files.items():
        want = hashlib.sha256(data).digest()
        try:
            have = session.sha256(path)
        except FleetError:
            have = None
        if have == want:
            report.unchanged.append(path)
        else:
            session.makedirs(path.rsplit("/", 1)[0])
            base = done
            session.write_file(path, data,
                               progress=(lambda n, t: progress(base + n, total)) if progress else None)
            if session.sha256(path) != want:
                raise VerifyError(f"{path} on the board does not match what was sent")
            report.written.append(path)
            report.bytes_written += len(data)
        done += len(data)
        if progress:
            progress(done, total)
    return report


def running_app(session) -> dict:
    """What the board runs: app version, board name and last reset cause."""
    version, board, cause = literal(session.exec(APP_VERSION_QUERY).strip())
    return {"version": version, "board": board, "reset_cause": cause}
