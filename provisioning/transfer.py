"""Writing files to a board fast and safely: compressed when the board can inflate, only what changed,
every file checked by SHA-256 on the board, atomically replaced, and retried when the line drops.

    report = write_files(port, {"/main.py": b"...", "/bysans/app.mpy": b"..."}, progress=cb)

One session costs three programs on the board: the helper (wire.BOARD_CODE, once), the manifest (sizes,
SHA-256 and paths of all files; the board answers which differ) and the changed files as one deflate
stream. A file lands as PATH.tmp, is read back from flash and hashed, and only then renamed over PATH, so a
cable pulled at any moment leaves each file either old or new, never half; the next attempt removes the
leftover .tmp and writes what still differs.
"""

import bisect
import hashlib
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import serial

from fleet.errors import BoardNotAnswering, FleetError, PortNotFound, SerialPortError, TransferFailed, VerifyError

from . import wire
from .session import BoardError, Session, literal

ACK_TIMEOUT_S = float(os.environ.get("BYSANS_ACK_TIMEOUT", "10"))
RESULT_TIMEOUT_S = 60.0
Progress = Callable[[int, int], None]  # (app bytes done, app bytes in all) -- done counts skipped files too


@dataclass
class SyncReport:
    """What sync() did; filled in as it goes, so that a caller interrupted half-way (KeyboardInterrupt) can say
    where it stopped: `stage` "checking" (comparing with the board: nothing written yet), "writing", "done";
    `to_write` the files being written, in order, and `sent` how many of them reached the board whole;
    `entry_removed` whether the entry file (see sync) is off the board until it is written, last."""

    written: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    file_bytes: int = 0        # bytes of the files written
    sent_bytes: int = 0        # payload bytes that went on the line (compressed, escaped)
    compressed: bool = False
    attempts: int = 1
    stage: str = "checking"
    to_write: list = field(default_factory=list)
    sent: int = 0
    entry_removed: bool = False

    def as_dict(self) -> dict:
        return {"written": list(self.written), "unchanged": list(self.unchanged), "file_bytes": self.file_bytes,
                "sent_bytes": self.sent_bytes, "compressed": self.compressed, "attempts": self.attempts}


def _deflate(data: bytes) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, -wire.WBITS, 9)
    return co.compress(data) + co.flush()


class Link:
    """The binary channel on an open Session (see wire.py). `setup()` loads the helper and asks the board
    whether it has `deflate`."""

    def __init__(self, session: Session):
        self.session = session
        self.deflate = None

    def setup(self):
        if self.deflate is None:
            out = self.session.exec(wire.board_code() + "print(_bzd is not None)\n").strip()
            self.deflate = out.endswith("True")
        return self

    def pack(self, data: bytes) -> bytes:
        return _deflate(data) if self.deflate else data

    def pack_files(self, datas: list[bytes]) -> tuple[bytes, list[int]]:
        """The files as one payload (one deflate stream, flushed to a byte boundary after each file), and
        where each file ends in it, counted in bytes on the line (escaped)."""
        co = zlib.compressobj(9, zlib.DEFLATED, -wire.WBITS, 9) if self.deflate else None
        parts, ends, at = [], [], 0
        for d in datas:
            part = co.compress(d) + co.flush(zlib.Z_SYNC_FLUSH) if co else d
            parts.append(part)
            at += _enc_len(part)
            ends.append(at)
        if co:
            parts.append(co.flush())
        return b"".join(parts), ends

    def stream(self, call: str, payload: bytes, progress: Callable[[int], None] | None = None) -> str:
        """Runs `call` on the board and feeds it `payload` (already packed); returns what it printed."""
        enc = wire.escape(payload)
        s = self.session
        t = s.transport
        blocks = [enc[i:i + wire.BLOCK] for i in range(0, len(enc), wire.BLOCK)]
        sent = 0
        try:
            t.exec_raw_no_follow(call.encode())
            ser = t.serial
            sent = acked = 0
            rest = b""
            last = time.monotonic()
            while acked < len(blocks):
                while sent < len(blocks) and sent - acked < wire.WINDOW:
                    ser.write(blocks[sent])
                    sent += 1
                got = ser.read(1)
                if got:
                    # never read past the ACKs due: the board's answer and its next prompt follow them
                    more = min(ser.in_waiting, sent - acked - 1)
                    got += ser.read(more) if more > 0 else b""
                    n = len(got) - len(got.lstrip(wire.ACK))
                    acked += n
                    last = time.monotonic()
                    rest = got[n:]
                    if rest and acked < len(blocks):  # the program on the board stopped: its output follows
                        out, err = _follow(ser, rest)
                        raise BoardError(f"the board on {s.port} stopped taking data: "
                                         f"{_last_line(err or out)}")
                    if progress:
                        progress(min(acked * wire.BLOCK, len(enc)))
                elif time.monotonic() - last > ACK_TIMEOUT_S:
                    raise BoardNotAnswering(f"the board on {s.port} stopped answering while taking data")
            out, err = _follow(ser, rest)
        except KeyboardInterrupt:
            try:  # stop the program on the board too, so that it waits at its raw REPL for the next session
                t.serial.write(wire.abort_block(len(enc) - sent * wire.BLOCK))
            except Exception:  # noqa: BLE001 - the port may be gone: the interrupt is what matters
                pass
            raise
        except FleetError:
            raise
        except (serial.SerialException, OSError) as e:
            raise SerialPortError(f"lost the serial port {s.port}: {getattr(e, 'strerror', None) or e}")
        except Exception as e:  # mpremote's TransportError and its kin: the board went quiet
            raise BoardNotAnswering(f"the board on {s.port} stopped answering: {e}")
        if err:
            raise BoardError(f"the board on {s.port} raised: {_last_line(err)}")
        return out.decode(errors="replace")


def _follow(ser, buf: bytes) -> tuple[bytes, bytes]:
    """The rest of a raw REPL answer: OUT \x04 ERR \x04 (buf: what was read already)."""
    last = time.monotonic()
    while buf.count(b"\x04") < 2:
        got = ser.read(1)  # one by one: the raw REPL's next prompt must stay unread
        if got:
            buf += got
            last = time.monotonic()
        elif time.monotonic() - last > RESULT_TIMEOUT_S:
            raise BoardNotAnswering("the board stopped answering before it finished")
    out, err, _ = buf.split(b"\x04", 2)
    return out, err


def _last_line(b: bytes) -> str:
    lines = b.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"


def _check_path(path: str):
    if not path.startswith("/") or "\n" in path or path.endswith("/") or "//" in path:
        raise FleetError(f"'{path}' is not a file path on the board", hint="paths are absolute, e.g. /main.py")


def _manifest(session: Session, files: dict[str, bytes], remove=(), force: bool = False,
              report: SyncReport | None = None):
    """(link, entries, indexes of the files that differ on the board): one program on the board hashes
    every file named (and removes the paths in `remove`)."""
    for p in [*files, *remove]:
        _check_path(p)
    link = getattr(session, "_bz_link", None) or Link(session)
    session._bz_link = link.setup()
    entries = [(p, d, hashlib.sha256(d).hexdigest()) for p, d in files.items()]
    manifest = link.pack(("".join(f"{len(d)} {h} {p}\n" for p, d, h in entries)
                          + "".join(f"- - {p}\n" for p in remove)).encode())
    if report is not None:
        report.compressed, report.stage = bool(link.deflate), "checking"
    changed = literal(link.stream(f"_bz_m({_enc_len(manifest)}{',1' if force else ''})", manifest).strip())
    return link, entries, changed


def differing(session: Session, files: dict[str, bytes]) -> list[str]:
    """The paths whose file on the board is missing or does not hash (SHA-256, on the board) to `files`'."""
    _, entries, changed = _manifest(session, files)
    return [entries[i][0] for i in changed]


def sync(session: Session, files: dict[str, bytes], *, progress: Progress | None = None,
         force: bool = False, remove=(), entry: str | None = None, report: SyncReport | None = None) -> SyncReport:
    """Writes the files that differ (all with force=True) and verifies each on the board; removes the
    paths in `remove` where they exist (e.g. a stale m.py that would shadow a new m.mpy).

    `entry` (one of `files`, e.g. /main.py): when anything is to be written, it is removed from the board
    first and written last, so that a transfer that stops half-way leaves a board that does not start a
    partial app; the next sync writes it again. `report`: a SyncReport to fill in as it goes (see there)."""
    remove = [p for p in remove if p not in files]
    report = report if report is not None else SyncReport()
    link, entries, changed = _manifest(session, files, remove, force, report)
    if changed and entry in files:
        first = list(files).index(entry)
        session.exec(f"import os\ntry:\n os.remove({entry!r})\nexcept OSError:\n pass\n")
        report.entry_removed = True
        changed = [i for i in changed if i != first] + [first]
    total = sum(len(d) for _, d, _ in entries)
    skipped = sum(len(entries[i][1]) for i in range(len(entries)) if i not in changed)
    report.unchanged = [entries[i][0] for i in range(len(entries)) if i not in changed]
    if progress:
        progress(skipped, total)
    if changed:
        report.stage, report.to_write, report.sent = "writing", [entries[i][0] for i in changed], 0
        payload, ends = link.pack_files([entries[i][1] for i in changed])
        enc_total = _enc_len(payload)
        want = sum(len(entries[i][1]) for i in changed)

        def on_ack(done_enc):
            report.sent = bisect.bisect_right(ends, done_enc)
            if progress:
                progress(skipped + want * done_enc // max(enc_total, 1), total)

        failed = literal(link.stream(f"_bz_w({enc_total},{changed!r})", payload, on_ack).strip())
        if failed:
            raise VerifyError(f"{', '.join(entries[i][0] for i in failed)} on the board did not match what was "
                              f"sent (the old file{'s were' if len(failed) > 1 else ' was'} kept)")
        report.written = [entries[i][0] for i in changed]
        report.file_bytes = want
        report.sent_bytes = enc_total
        report.entry_removed = False
    report.stage = "done"
    if progress:
        progress(total, total)
    return report


def _enc_len(payload: bytes) -> int:
    return len(wire.escape(payload))


# -- with retries -----------------------------------------------------------------------------------------

class PortRef:
    """A serial port that may come back under another path: a real port is its path (use
    /dev/serial/by-id/... to survive renumbering); a port whose path changes when it is plugged in again
    (a virtual board's pty) is followed by a callable the caller gives, which returns the current path
    (None while it is gone). The CLI builds one for `sim:NAME` (fleet/cli/ports.py): this package does
    not know the simulator; a virtual board is reached through its port like a real one."""

    def __init__(self, path: str | None = None, follow: Callable[[], str | None] | None = None, name: str = ""):
        self._path = path
        self._follow = follow
        self.name = name or path or "board"

    @classmethod
    def of(cls, port) -> "PortRef":
        if isinstance(port, PortRef):
            return port
        if callable(port):
            return cls(follow=port)
        return cls(path=port)

    def current(self) -> str | None:
        p = self._follow() if self._follow else self._path
        return p if p and os.path.exists(p) else None

    def wait(self, timeout: float, *, first: bool = False) -> str:
        """The current path, waiting up to `timeout` for it to (re)appear; PortNotFound when `first` (it was
        never there), else SerialPortError."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.current()
            if p:
                return p
            if time.monotonic() > deadline:
                if first:
                    raise PortNotFound(f"cannot open serial port {self.name}: there is no such port")
                raise SerialPortError(f"the serial port of {self.name} did not come back within {timeout:.0f} s")
            time.sleep(0.1)


RETRYABLE = (SerialPortError, BoardNotAnswering)


def with_retries(port, fn, *, retries: int = 3, reconnect_timeout: float = 30.0, baudrate: int = 115200,
                 on_retry: Callable[[int, FleetError], None] | None = None):
    """Calls fn(session, attempt) on a fresh session; when the line drops or the board stops answering,
    waits for the port to come back, reconnects and calls it again (at most `retries` more times).

    Retrying is for a line that dropped: a port that is not there at the start, or a first session that
    cannot be opened (nothing, a ROM loader or another firmware answers), raises its error at once."""
    ref = PortRef.of(port)
    attempt = 1
    connected = False
    while True:
        try:
            path = ref.wait(reconnect_timeout if connected else 0.5, first=not connected)
            with Session(path, baudrate=baudrate) as s:
                connected = True
                return fn(s, attempt)
        except RETRYABLE as e:
            if not connected:
                raise
            if attempt > retries:
                raise TransferFailed(f"{e.message} (gave up after {attempt} attempts)") from e
            if on_retry:
                on_retry(attempt, e)
            attempt += 1
            time.sleep(0.2)


def write_files(port, files: dict[str, bytes], *, progress: Progress | None = None, retries: int = 3,
                reconnect_timeout: float = 30.0, baudrate: int = 115200, force: bool = False, remove=(),
                on_retry=None) -> SyncReport:
    """sync() with reconnection: a dropped line costs at most the file that was on its way."""
    def run(session, attempt):
        r = sync(session, files, progress=progress, force=force, remove=remove)
        r.attempts = attempt
        return r

    return with_retries(port, run, retries=retries, reconnect_timeout=reconnect_timeout, baudrate=baudrate,
                        on_retry=on_retry)
