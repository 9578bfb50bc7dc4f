"""`fleet flash` as a library: the base image by esptool (its chip checked first), the app bundle and the
board's config over serial (transfer.py), then the board's self-test.

    report = flash("/dev/ttyUSB0", boards.get("heltec_v3"), firmware=Path("ESP32_GENERIC_S3.bin"), progress=cb)

Nothing is written to a board that is not the one named: the image's chip is checked against the board
file before the port is opened, esptool's chip against the board file before the image is written, and
the board's own answer (chip, board file) before the app is written. A virtual board has no ROM
bootloader: an image for it is refused (after the same header check), the app goes on as for any board.
"""

import re
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fleet import boards, device_spec
from fleet.boards import Board
from fleet.errors import FlashToolError, ImageMismatch, SelfTestFailed, UsageError, WrongBoard
from fleet.resources import firmware_dir

# -- the ESP image header (esp-idf: esp_image_header_t), little-endian, 24 bytes -----------------------
IMAGE_MAGIC = 0xE9
HEADER_FMT = ("<"
              "B"    # 0  magic, 0xE9
              "B"    # 1  segment count
              "B"    # 2  SPI flash mode
              "B"    # 3  flash size (high nibble) and frequency (low nibble)
              "I"    # 4  entry address
              "B"    # 8  WP pin
              "3s"   # 9  SPI pin drive settings
              "H"    # 12 chip id (esp_chip_id_t)
              "B"    # 14 minimum chip revision (legacy)
              "H"    # 15 minimum chip revision, full (major * 100 + minor)
              "H"    # 17 maximum chip revision, full
              "4s"   # 19 reserved
              "B")   # 23 a SHA-256 is appended to the image
HEADER_SIZE = 24
assert struct.calcsize(HEADER_FMT) == HEADER_SIZE
# The chip id at offset 12 (esp_chip_id_t) and esptool's name for each chip: fleet.boards.CHIPS.


@dataclass(frozen=True)
class ImageInfo:
    chip_id: int
    chip: str            # the chip's name in fleet.boards.CHIPS, or "unknown chip id N"
    segments: int
    size: int


def image_info(data: bytes) -> ImageInfo:
    """The header of an ESP image; ImageMismatch when it is not one."""
    if len(data) < HEADER_SIZE or data[0] != IMAGE_MAGIC:
        what = f"starts with {data[:1].hex() or 'nothing'}" if data else "is empty"
        raise ImageMismatch(f"not an ESP firmware image: it {what} (an ESP image starts with e9)")
    magic, segments, _mode, _sf, _entry, _wp, _drv, chip_id, *_ = struct.unpack_from(HEADER_FMT, data)
    chip = boards.chip_of_image(chip_id)
    return ImageInfo(chip_id, chip.name if chip else f"unknown chip id {chip_id}", segments, len(data))


def check_image(data: bytes, board: Board) -> ImageInfo:
    """The image's chip must be the board's chip; raises ImageMismatch (before any byte is written)."""
    info = image_info(data)
    chip = board.chip.name
    if board.virtual:
        raise ImageMismatch(f"board '{board.name}' is a virtual board: it has no ROM bootloader and runs "
                            f"no ESP image (this one is for {info.chip}); nothing was written",
                            hint="leave out --firmware: the app and config go over serial as on any board")
    if info.chip != chip:
        raise ImageMismatch(f"the image is for {info.chip}, but {board.name} is an {chip} board; "
                            f"nothing was written")
    return info


# -- esptool 5 as a library ----------------------------------------------------------------------------

_progress_of_thread = threading.local()


def _install_logger():
    from esptool.logger import TemplateLogger, log

    class _Logger(TemplateLogger):
        """esptool's messages go nowhere (library code does not print); its progress goes to the caller's
        callback for this thread, so parallel flashes keep their bars apart."""

        def print(self, *args, **kwargs):
            pass

        def note(self, message):
            pass

        def warning(self, message):
            pass

        def error(self, message):
            pass

        def stage(self, finish=False):
            pass

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
            cb = getattr(_progress_of_thread, "cb", None)
            if cb:
                cb(cur_iter, total_iters)

        def set_verbosity(self, verbosity):
            pass

    log.set_logger(_Logger())


def write_image(port: str, board: Board, data: bytes, *, progress=None, baud: int = 460800) -> dict:
    """Writes a checked base image at the board's flash offset with esptool; returns what esptool saw."""
    check_image(data, board)
    try:
        from esptool.cmds import attach_flash, detect_chip, reset_chip, run_stub, write_flash
        from esptool.util import FatalError
    except ImportError as e:  # pragma: no cover - esptool is a dependency
        raise FlashToolError(f"esptool is not installed: {e}", hint="pip install 'esptool>=5.6,<6'")
    _install_logger()
    _progress_of_thread.cb = progress
    esp = None
    try:
        esp = detect_chip(port, connect_mode="default-reset")
        want = board.chip.esptool
        if esp.CHIP_NAME != want:
            raise WrongBoard(f"the chip on {port} is an {esp.CHIP_NAME}, but {board.name} is an {want} "
                             f"board; nothing was written")
        esp = run_stub(esp)
        attach_flash(esp)
        write_flash(esp, [(board.flash_offset, data)])
        reset_chip(esp, "hard-reset")
        return {"chip": esp.CHIP_NAME, "offset": board.flash_offset, "bytes": len(data)}
    except FatalError as e:
        raise FlashToolError(f"esptool on {port}: {e}")
    except OSError as e:
        raise FlashToolError(f"esptool could not use {port}: {getattr(e, 'strerror', None) or e}")
    finally:
        _progress_of_thread.cb = None
        if esp is not None:
            try:
                esp._port.close()
            except Exception:  # noqa: BLE001 - closing a port that went away
                pass


# -- the app bundle --------------------------------------------------------------------------------------

def _version(src: Path) -> str:
    try:
        m = re.search(r'VERSION\s*=\s*"([^"]+)"', (src / "bysans" / "version.py").read_text())
        return m.group(1) if m else "0.0.0"
    except OSError:
        return "0.0.0"


def app_bundle(board: Board, *, src=None) -> tuple[dict[str, bytes], list[str]]:
    """(files by board path, stale paths to remove): the app as `fleet release build` builds it for the
    board's arch (.mpy, boot.py and main.py as .py), plus /board.json. A module's old .py on the board
    would shadow its new .mpy (MicroPython imports the .py first), so those are removed."""
    from fleet.release.build import FILES, build

    src = Path(src) if src is not None else firmware_dir()
    with tempfile.TemporaryDirectory(prefix="bysans-flash-") as d:
        build(board, _version(src), d, src=src, counter=0, now=0)
        root = Path(d) / FILES
        files = {"/" + p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file()}
    files[device_spec.BOARD_FILE] = board.device_copy()
    stale = [p[:-4] + ".py" for p in files if p.endswith(".mpy")]
    return files, stale


# -- flash one board -------------------------------------------------------------------------------------

Step = Callable[[str, int, int], None]  # (stage, done, total): stage is "image", "app" or "self-test"


ENTRY = "/main.py"  # what starts the app: written last, after every other file (see transfer.sync's entry)


@dataclass
class FlashReport:
    """What flash() did. `stage` says how far it got -- "connecting", "image", "app", "self-test", "done" --
    and `app` how far the app's transfer got (a live transfer.SyncReport): a KeyboardInterrupt that stops
    flash() carries this report as `.flash_report`, so the caller can say what state the board is in."""

    port: str
    board: str
    image: dict | None = None
    identity: dict | None = None
    transfer: dict | None = None
    self_test: dict | None = None
    attempts: int = 1
    retries: list = field(default_factory=list)
    stage: str = "connecting"
    app: object = field(default=None, repr=False)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        del d["stage"], d["app"]
        return d


def flash(port, board: Board | str, *, firmware=None, progress: Step | None = None, files=None, retries: int = 3,
          reconnect_timeout: float = 30.0, baudrate: int = 115200, check_self_test: bool = True) -> FlashReport:
    """Flashes one board (see the module's docstring); `board` is a Board (or a board name, loaded here).
    `files`: a prebuilt (files, stale) from app_bundle() to share between boards. Raises SelfTestFailed
    (after writing) when the self-test fails and check_self_test is set; the report is on the exception as
    `.report`."""
    from .transfer import PortRef

    if not isinstance(board, Board):
        board = boards.get(board)
    image = None
    if firmware is not None:
        try:
            image = Path(firmware).read_bytes()
        except OSError as e:
            raise UsageError(f"cannot read the image {firmware}: {e.strerror or e}")
        check_image(image, board)  # before the port is touched
    ref = PortRef.of(port)
    report = FlashReport(port=ref.current() or str(port), board=board.name)
    try:
        _flash(ref, board, image, report, progress=progress, files=files, retries=retries,
               reconnect_timeout=reconnect_timeout, baudrate=baudrate)
    except KeyboardInterrupt as e:
        e.flash_report = report  # where it stopped: the caller says what state the board is in
        raise
    report.stage = "done"
    report.port = ref.current() or report.port
    if check_self_test and not report.self_test["ok"]:
        st = report.self_test
        missing = [f"{s['type']} ({s['bus']} {s['address']:#04x})" for s in st["sensors"] if s["answering"] is False]
        why = st["error"] or ("not answering: " + ", ".join(missing))
        err = SelfTestFailed(f"the self-test on {report.port} failed: {why}")
        err.report = report
        raise err
    return report


def _flash(ref, board: Board, image: bytes | None, report: FlashReport, *, progress, files, retries,
           reconnect_timeout, baudrate):
    from .board import check_board, identify, self_test
    from .transfer import SyncReport, sync, with_retries

    if image is not None:
        report.stage = "image"
        report.image = write_image(ref.wait(0.5, first=True), board, image,
                                   progress=(lambda d, t: progress("image", d, t)) if progress else None)
    built = [files]

    def run(session, attempt):
        report.stage = "connecting"
        ident = identify(session)
        check_board(ident, board, session.port)
        report.identity = ident.as_dict()
        if built[0] is None:  # built once the board answered: a board that does not is reported at once
            built[0] = app_bundle(board)
        bundle, stale = built[0]
        report.stage = "app"
        report.app = report.app or SyncReport()  # one across attempts: an earlier one may have begun writing
        r = sync(session, bundle, remove=stale, entry=ENTRY, report=report.app,
                 progress=(lambda d, t: progress("app", d, t)) if progress else None)
        r.attempts = attempt
        report.transfer = r.as_dict()
        report.attempts = attempt
        report.stage = "self-test"
        if progress:
            progress("self-test", 0, 1)
        # a fresh interpreter, so the self-test imports what was just written
        session.close()
        session.__enter__()
        report.self_test = self_test(session).as_dict()
        if progress:
            progress("self-test", 1, 1)
        return report

    with_retries(ref, run, retries=retries, reconnect_timeout=reconnect_timeout, baudrate=baudrate,
                 on_retry=lambda n, e: report.retries.append(e.message))
