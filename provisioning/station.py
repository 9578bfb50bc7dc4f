"""The flash station as a library: every board on a USB-UART (and every running virtual board the caller
adds as a Target), flashed in parallel, one result per port.

    targets = usb_targets()
    results = provision_all(targets, board="heltec_v3", progress=lambda key, stage, done, total: ...)

A USB serial port counts when its USB VID:PID is a known USB-UART or an ESP32's own USB (KNOWN_USB); a
hub full of other serial gadgets is left alone.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fleet import boards
from fleet.errors import FleetError, UsageError, WrongMode
from fleet.identifiers import eui64_from_mac

# (VID, PID) -> what it is
KNOWN_USB = {
    (0x10C4, 0xEA60): "CP210x USB-UART",
    (0x1A86, 0x7523): "CH340 USB-UART",
    (0x1A86, 0x55D4): "CH9102 USB-UART",
    (0x0403, 0x6001): "FTDI FT232R USB-UART",
    (0x0403, 0x6010): "FTDI FT2232 USB-UART",
    (0x0403, 0x6015): "FTDI FT231X USB-UART",
    (0x303A, 0x1001): "ESP32-S3/C3 USB serial/JTAG",
    (0x303A, 0x0002): "ESP32-S2/S3 USB CDC (TinyUSB)",
    (0x303A, 0x4001): "ESP32-S2/S3 USB CDC (MicroPython)",
}


@dataclass
class Target:
    key: str                # a stable name for the row: the port path, or the virtual board's name
    port: object            # a path, or a provisioning.transfer.PortRef (a virtual board's follows its pty)
    what: str
    board: str | None = None  # the board file it runs, when it says so itself (virtual boards)
    rom: dict = field(default_factory=dict)  # flash()'s rom_only and reset for its ROM loader (fleet/cli/ports.py)


@dataclass
class Result:
    key: str
    port: str
    ok: bool
    dev_eui: str | None = None
    board: str | None = None
    message: str = ""
    exit_code: int = 0
    report: dict | None = None
    enrolled: bool = False
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"key": self.key, "port": self.port, "ok": self.ok, "dev_eui": self.dev_eui, "board": self.board,
                "result": self.message, "exit_code": self.exit_code, "enrolled": self.enrolled,
                "flash": self.report}


def usb_targets() -> list[Target]:
    from serial.tools import list_ports

    found = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        what = KNOWN_USB.get((p.vid, p.pid)) if p.vid is not None else None
        if what:
            found.append(Target(p.device, p.device, what))
    return found


def _already_flashed(port, spec: boards.Board, bundle) -> dict | None:
    """The board's identity when it runs MicroPython, is `spec` and holds every file of the release
    (`bundle`, checked by SHA-256 on the board), else None: a station run again after fixing the boards that
    failed leaves the ones done in an earlier pass alone instead of asking for download mode."""
    from .board import check_board, identify
    from .transfer import differing, with_retries

    def run(session, attempt):
        ident = identify(session)
        check_board(ident, spec, session.port)
        return None if differing(session, bundle[0]) else ident.as_dict()

    try:
        return with_retries(port, run, retries=0)
    except FleetError:
        return None


def provision_all(targets: list[Target], *, board: str | None = None, firmware=None, enroll=None,
                  progress=None, max_workers: int = 8, via: str = "image", enroll_files=None) -> list[Result]:
    """Flashes every target in its own thread (and enrolls it when `enroll(ref, board_name, ident)` is given,
    returning (record, identity), over the REPL after flashing; or, via="image", when
    `enroll_files(board_name, mac)` is given, returning (the device's files, finish(ok) -> record): its keys
    then go in the board's filesystem image, and finish(True) comes only after they were read back from the
    board); one Result per target, in the order given. A board that fails does not
    stop the others. Each board file is loaded, its app built and (via="image") the shared part of its
    filesystem image made, once for all the targets that run it: each board adds only its own files."""
    from .flash import Templates, app_bundle, flash

    prepared, lock = {}, threading.Lock()
    templates = Templates()

    def prepare(name) -> tuple[boards.Board, tuple]:
        """(the Board, its app bundle) for board file `name`."""
        with lock:
            if name not in prepared:
                b = boards.get(name)
                prepared[name] = (b, app_bundle(b))
            return prepared[name]

    def one(t: Target) -> Result:
        name = board or t.board
        port = t.port if isinstance(t.port, str) else (t.port.current() or t.key)
        res = Result(t.key, port, False, board=name)
        try:
            if not name:
                raise UsageError(f"{t.what} on {t.key}: name its board with --board")
            spec, bundle = prepare(name)
            fw = firmware if (firmware and not spec.virtual) else None
            rom = dict(t.rom, templates=templates, enroll_files=enroll_files) if via == "image" else {}
            rep = flash(t.port, spec, firmware=fw, files=bundle,
                        progress=(lambda s, d, n: progress(t.key, s, d, n)) if progress else None,
                        check_self_test=False, via=via, **rom)
            res.report = rep.as_dict()
            res.port = rep.port
            mac = (rep.identity or {}).get("mac")
            res.dev_eui = eui64_from_mac(mac) if mac else None
            if rep.enrolled is not None:
                res.dev_eui, res.enrolled = rep.enrolled.dev_eui, True
            elif enroll is not None:
                record, _ = enroll(t.port, name, rep.identity)
                res.dev_eui, res.enrolled = record.dev_eui, True
            st = rep.self_test or {}
            if st.get("ok"):
                res.ok, res.message = True, "ok" + (", enrolled" if res.enrolled else "")
            else:
                silent = [s["type"] for s in st.get("sensors", []) if s["answering"] is False]
                res.message = "self-test failed: " + (st.get("error") or "not answering: " + ", ".join(silent))
                res.exit_code = 55
        except WrongMode as e:  # running its app: already done in an earlier pass when its files are the release's
            ident = _already_flashed(t.port, spec, bundle) if via == "image" else None
            if ident is not None:
                res.ok, res.message = True, "already flashed with this release (running its app): left alone"
                res.dev_eui = eui64_from_mac(ident["mac"]) if ident.get("mac") else None
            else:
                res.message, res.exit_code = e.message, e.exit_code
        except FleetError as e:
            res.message, res.exit_code = e.message, e.exit_code
        except Exception as e:  # noqa: BLE001 - one board's surprise must not take the station down
            res.message, res.exit_code = f"unexpected error: {type(e).__name__}: {e}", 1
        return res

    if not targets:
        return []
    pool = ThreadPoolExecutor(max_workers=min(max_workers, len(targets)))
    futures = [pool.submit(one, t) for t in targets]
    try:
        results = [f.result() for f in futures]
    except KeyboardInterrupt as e:
        # Ctrl-C: boards not yet begun are not begun; those on their way finish their pass (a board cut off
        # in the middle of a write would need it again), then the interrupt goes on with what each holds.
        # A second Ctrl-C stops at once (fleet.cli.common).
        started = [not f.cancel() for f in futures]
        pool.shutdown(wait=True, cancel_futures=True)
        e.station_state = interrupted_state(targets, futures, started)
        raise
    pool.shutdown()
    return results


def interrupted_state(targets, futures, started) -> dict:
    """What a station stopped by Ctrl-C leaves: {"done": [Result...], "not_started": [port...]}."""
    done, not_started = [], []
    for t, f, began in zip(targets, futures, started):
        if not began:
            not_started.append(t.key)
        elif f.done() and not f.cancelled() and f.exception() is None:
            done.append(f.result())
        else:
            not_started.append(t.key)
    return {"done": done, "not_started": not_started}
