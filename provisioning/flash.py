"""`fleet flash` as a library. Two routes:

- via="image" (the default): the board in download mode; one esptool session writes the base image (when
  given) and the board's whole filesystem, built on the host (fsimage.py: app, /board.json, the device's
  own files), compressed, at the board's top baud, MD5-checked (romflash.py); the board is reset and its
  REPL reports its identity and every file's SHA-256; then the self-test.
- via="repl": the board runs MicroPython; the base image by esptool (its chip checked first), the app
  bundle and the board's config over serial (transfer.py), then the self-test.

    report = flash("/dev/ttyUSB0", boards.get("heltec_v3"), firmware=Path("ESP32_GENERIC_S3.bin"), progress=cb)

Nothing is written to a board that is not the one named: the image's chip is checked against the board
file before the port is opened, esptool's chip against the board file before the image is written (a
virtual board's: the chip it imitates), and (via="repl") the board's own answer (chip, board file) before
the app is written.
"""

import re
import struct
import tempfile
import threading
from contextlib import contextmanager
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fleet import boards, device_spec
from fleet.boards import Board
from fleet.errors import FlashToolError, ImageMismatch, SelfTestFailed, UsageError, VerifyError, WrongBoard, WrongMode
from fleet.resources import boards_dir, firmware_dir

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
    if board.virtual:  # its ROM loader and flash are the imitated chip's (docs/virtual-board.md)
        chip = board.definition["imitates"]
        if info.chip != chip:
            raise ImageMismatch(f"the image is for {info.chip}, but {board.name} is a virtual board imitating an "
                                f"{chip}; nothing was written")
        return info
    chip = board.chip.name
    if info.chip != chip:
        raise ImageMismatch(f"the image is for {info.chip}, but {board.name} is an {chip} board; "
                            f"nothing was written")
    build = board.definition.get("micropython", "generic")
    if build != "generic":
        name = build_board_name(build)
        if name.encode() not in data:
            raise ImageMismatch(f"{board.name} needs Bysans's MicroPython build {build} (ROMFS, the firmware's "
                                f"names frozen: docs/boards.md, \"Heap\"), and this image is not one: it does not "
                                f"call itself \"{name}\"; nothing was written",
                                hint=f"build it from boards/micropython/{build}/ (docs/boards.md) and give that "
                                     f"image to --firmware")
    return info


def build_board_name(build: str) -> str:
    """MICROPY_HW_BOARD_NAME of one of our MicroPython board builds (boards/micropython/BUILD/mpconfigboard.h):
    a build's image carries it (os.uname().machine), so an image for another build is told apart."""
    text = (boards_dir() / "micropython" / build / "mpconfigboard.h").read_text()
    m = re.search(r'^#define MICROPY_HW_BOARD_NAME "([^"]+)"', text, re.M)
    if m is None:
        raise UsageError(f"boards/micropython/{build}/mpconfigboard.h defines no MICROPY_HW_BOARD_NAME")
    return m.group(1)


# -- esptool 5 as a library ----------------------------------------------------------------------------

_progress_of_thread = threading.local()


_logger_installed = []


def _install_logger():
    """Once per process: esptool's set_logger replaces the proxy that has set_logger."""
    if _logger_installed:
        return
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
    # esptool's reset strategies keep the logger method they found on import (PrintOnce(log.warn)), so their
    # one warning -- a port without RTS/DTR: "Chip was NOT reset" -- went to stderr past the silenced logger
    from esptool import reset

    once = getattr(getattr(reset, "ResetStrategy", None), "print_once", None)
    if once is not None and hasattr(once, "print_callback"):
        once.print_callback = lambda text: log.warn(text)
    _logger_installed.append(True)


def write_image(port: str, board: Board, data: bytes, *, progress=None, baud: int = 460800) -> dict:
    """Writes a checked base image at the board's flash offset with esptool; returns what esptool saw."""
    check_image(data, board)
    try:
        from esptool.cmds import attach_flash, detect_chip, reset_chip, run_stub, write_flash
    except ImportError as e:  # pragma: no cover - esptool is a dependency
        raise FlashToolError(f"esptool is not installed: {e}", hint="pip install 'esptool>=5.6,<6'")
    with esptool_session(port, progress) as session:
        esp = session.track(detect_chip(port, connect_mode="default-reset"))
        want = board.chip.esptool
        if esp.CHIP_NAME != want:
            raise WrongBoard(f"the chip on {port} is an {esp.CHIP_NAME}, but {board.name} is an {want} "
                             f"board; nothing was written")
        esp = session.track(run_stub(esp))
        attach_flash(esp)
        write_flash(esp, [(board.flash_offset, data)])
        reset_chip(esp, "hard-reset")
        return {"chip": esp.CHIP_NAME, "offset": board.flash_offset, "bytes": len(data)}


class _EsptoolSession:
    def __init__(self):
        self.esp = None

    def track(self, esp):
        """esp, to be closed when the session ends (run_stub returns a new object on the same port)."""
        self.esp = esp
        return esp

    def close(self):
        if self.esp is not None:
            try:
                self.esp._port.close()
            except Exception:  # noqa: BLE001 - closing a port that went away
                pass
            self.esp = None


@contextmanager
def esptool_session(port: str, progress=None):
    """One esptool session on `port`: its log and progress routed here, its errors named (FlashToolError,
    "likely the cable or the mode"), and its port closed at the end, whatever happens."""
    from esptool.util import FatalError

    _install_logger()
    _progress_of_thread.cb = progress
    session = _EsptoolSession()
    try:
        yield session
    except FatalError as e:
        raise FlashToolError(f"esptool on {port}: {e}") from None
    except OSError as e:
        raise FlashToolError(f"esptool could not use {port}: {getattr(e, 'strerror', None) or e}") from None
    finally:
        _progress_of_thread.cb = None
        session.close()


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
    enrolled: object = field(default=None, repr=False)  # the registry's record (enroll_files), once read back

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        del d["stage"], d["app"], d["enrolled"]
        if self.enrolled is not None:
            d["enrolled"] = {"dev_eui": self.enrolled.dev_eui, "name": self.enrolled.name}
        return d


class Templates:
    """The shared part of the filesystem (fsimage.Template) per (board, vfs size), built once: a station
    shares one across its boards and threads."""

    def __init__(self):
        self._made, self._lock = {}, threading.Lock()

    def get(self, board: Board, files: dict[str, bytes], vfs_size: int):
        from . import fsimage

        key = (board.name, vfs_size, id(files))
        with self._lock:
            if key not in self._made:
                self._made[key] = (fsimage.Template(files, fsimage.Geometry.of_partition(vfs_size)), files)
            return self._made[key][0]


def flash(port, board: Board | str, *, firmware=None, progress: Step | None = None, files=None, retries: int = 3,
          reconnect_timeout: float = 30.0, baudrate: int = 115200, check_self_test: bool = True,
          via: str = "image", rom_only: bool = False, reset=None, templates: Templates | None = None,
          device_files: dict[str, bytes] | None = None, baud: int | None = None, enroll_files=None,
          stub: bool = True) -> FlashReport:
    """Flashes one board (see the module's docstring); `board` is a Board (or a board name, loaded here).
    `files`: a prebuilt (files, stale) from app_bundle() to share between boards. Raises SelfTestFailed
    (after writing) when the self-test fails and check_self_test is set; the report is on the exception as
    `.report`.

    via="image" (the default): the board is in download mode; one esptool session writes the base image
    (with `firmware`) and the whole filesystem (app, /board.json and `device_files`) as one littlefs image
    (romflash.write_pass: `rom_only`, `reset`, `baud`, `stub` are its), then the board's REPL reports its identity
    and every file's SHA-256. via="repl": the board runs MicroPython; files go over its REPL (transfer.py).
    `enroll_files(board_name, mac)` (via="image"; enroll_on_board.image_enrollment): called with the chip's
    MAC inside the esptool session, it returns (the device's files, finish); its files go in the image,
    and finish(True) comes once the board's files were read back and matched (the record is the report's
    `enrolled`), finish(False) when the pass fails before that.
    Ctrl-C (KeyboardInterrupt) goes through with `.flash_report`: where it stopped."""
    from .transfer import PortRef

    if via not in ("image", "repl"):
        raise UsageError(f"unknown route '{via}'", hint="--via image (the default) or --via repl")
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
    if via == "repl" and enroll_files is not None:
        raise UsageError("enrolling during the flash puts the keys in the filesystem image: it needs the image "
                         "route", hint="leave out --via repl, or enroll afterwards with 'fleet enroll --port'")
    if via == "repl" and image is not None and board.virtual:
        raise ImageMismatch(f"a virtual board's base image goes through its ROM loader: {board.name} takes it "
                            f"with --via image; nothing was written",
                            hint="leave out --firmware with --via repl, or put the board in download mode "
                                 "('fleet sim bootloader NAME') and leave out --via repl")
    try:
        if via == "image":
            _flash_image(ref, board, report, image=image, progress=progress, files=files, retries=retries,
                         reconnect_timeout=reconnect_timeout, baudrate=baudrate, rom_only=rom_only, reset=reset,
                         templates=templates or Templates(), device_files=device_files, baud=baud,
                         enroll_files=enroll_files, stub=stub)
        else:
            _flash(ref, board, image, report, progress=progress, files=files, retries=retries,
                   reconnect_timeout=reconnect_timeout, baudrate=baudrate)
    except KeyboardInterrupt as e:
        e.flash_report = report  # where it stopped: the caller says what state the board is in
        raise
    report.stage = "done"
    return _checked(report, ref, check_self_test)


def _flash(ref, board: Board, image: bytes | None, report: FlashReport, *, progress, files, retries,
           reconnect_timeout, baudrate):
    """The REPL route: the base image by esptool (with `image`), then the files over the REPL."""
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

    def on_retry(n, e):
        from .romflash import in_download_mode

        path = ref.current()
        if n == 1 and path and in_download_mode(path):
            raise WrongMode(f"the board on {path} is in download mode (its ROM loader answered), not running "
                            f"MicroPython: press and release RESET without holding BOOT (a virtual board: "
                            f"'fleet sim reset {ref.name}'), or leave out --via repl to flash it from here; "
                            f"nothing was written") from None
        report.retries.append(e.message)

    with_retries(ref, run, retries=retries, reconnect_timeout=reconnect_timeout, baudrate=baudrate,
                 on_retry=on_retry)


def _flash_image(ref, board: Board, report: FlashReport, *, image, progress, files, retries, reconnect_timeout,
                 baudrate, rom_only, reset, templates: Templates, device_files, baud, enroll_files, stub) -> None:
    built = [files[0]] if files is not None else []  # a whole filesystem: nothing is stale

    def bundle():
        # built once the chip has answered (write_pass asks for the filesystem after its checks): a board
        # refused for its chip is told so at once, not after compiling the whole app
        if not built:
            built.append(app_bundle(board)[0])
        return built[0]

    mine, finishing = {}, []

    def own_files(mac):
        mine.update((device_files(mac) if callable(device_files) else device_files) or {})
        if enroll_files is not None:  # the device reserved in the registry: its keys go in the image
            files, finish = enroll_files(board.name, mac)
            finishing.append(finish)
            mine.update(files)
        return mine

    try:
        _image_pass(ref, board, report, bundle, mine, own_files, finishing, image=image, progress=progress,
                    retries=retries, reconnect_timeout=reconnect_timeout, baudrate=baudrate, rom_only=rom_only,
                    reset=reset, templates=templates, baud=baud, stub=stub)
    finally:
        for finish in finishing:  # reserved, but its files were not read back: not enrolled
            try:
                finish(False)
            except Exception:  # noqa: BLE001 - the pass's own error is the one to report
                pass


def _image_pass(ref, board, report, bundle, mine, own_files, finishing, *, image, progress, retries,
                reconnect_timeout, baudrate, rom_only, reset, templates, baud, stub):
    from .board import check_board, identify, self_test
    from .readback import board_digest, tree_digest
    from .romflash import write_pass
    from .transfer import differing, with_retries

    report.stage = "image"
    report.image = write_pass(ref.wait(reconnect_timeout), board,
                              template_for=lambda size: templates.get(board, bundle(), size),
                              device_files=own_files, firmware=image, rom_only=rom_only, reset=reset,
                              progress=progress, baud=baud, name=ref.name if rom_only else None, stub=stub)
    every = {**bundle(), **mine}

    def run(session, attempt):
        ident = identify(session)
        check_board(ident, board, session.port)
        report.identity = ident.as_dict()
        # the whole filesystem hashed on the board, one digest back; when it differs, each file is checked
        # (a file the app made when it started is no fault of the image)
        bad = [] if board_digest(session) == tree_digest(every) else differing(session, every)
        if bad:
            raise VerifyError(f"after flashing, {', '.join(bad)} on the board on {session.port} "
                              f"{'do' if len(bad) > 1 else 'does'} not match the image; nothing was recorded",
                              hint="put the board in download mode and run the same command again")
        if finishing:  # read back and matched: now the device is recorded as enrolled
            report.enrolled = finishing.pop()(True)
        report.transfer = {"written": sorted(every), "unchanged": [], "file_bytes": sum(map(len, every.values())),
                           "sent_bytes": None, "compressed": True, "attempts": 1, "via": "image"}
        report.attempts = attempt
        report.stage = "self-test"
        if progress:
            progress("self-test", 0, 1)
        report.self_test = self_test(session).as_dict()
        if progress:
            progress("self-test", 1, 1)
        return report

    with_retries(ref, run, retries=retries, reconnect_timeout=reconnect_timeout, baudrate=baudrate,
                 on_retry=lambda n, e: report.retries.append(e.message))


def _checked(report: FlashReport, ref, check_self_test: bool) -> FlashReport:
    report.port = ref.current() or report.port
    if check_self_test and not report.self_test["ok"]:
        st = report.self_test
        missing = [f"{s['type']} ({s['bus']} {s['address']:#04x})" for s in st["sensors"] if s["answering"] is False]
        why = st["error"] or ("not answering: " + ", ".join(missing))
        err = SelfTestFailed(f"the self-test on {report.port} failed: {why}")
        err.report = report
        raise err
    return report
