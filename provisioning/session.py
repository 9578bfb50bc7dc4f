"""A serial session with a MicroPython board (real or virtual), on mpremote's transport.

Errors are translated once, here: a port that does not exist becomes PortNotFound, one that cannot be opened
or goes away SerialPortError, a traceback on the board BoardError with the board's last line. A board that
does not give its raw REPL within ANSWER_TIMEOUT_S is told apart by what came back instead (see
_no_raw_repl): nothing (BoardSilent), the chip's ROM loader in download mode (BoardInDownloadMode), bytes
that are no MicroPython prompt (NotMicroPython), or a MicroPython board that ignores Ctrl-C
(BoardNotAnswering).
"""

import ast
import os
import threading
import time

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from fleet.errors import (BoardInDownloadMode, BoardNotAnswering, BoardSilent, FleetError, NotMicroPython,
                          PortNotFound, SerialPortError)

SERIAL_TIMEOUT_S = 5
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n"
# A MicroPython board answers Ctrl-C, Ctrl-A within milliseconds; after this long without its raw REPL prompt
# (and without anything that looks like MicroPython) the port is taken to be something else.
ANSWER_TIMEOUT_S = 3.0
# Bytes that only a MicroPython board sends (its prompts, banner, tracebacks): wait the full timeout then.
MICROPYTHON_SIGNS = (b">>>", b"MicroPython", b"raw REPL", b"soft reboot", b"Traceback (most recent call last)")
# What an ESP chip's ROM prints at reset (REFERENCE-2.md section 1, "ROM boot banners").
ROM_DOWNLOAD_SIGNS = (b"waiting for download", b"DOWNLOAD_BOOT", b"DOWNLOAD(")
ROM_NO_FIRMWARE_SIGNS = (b"invalid header", b"flash read err")
# The ROM loader's SYNC command (SLIP framed: direction 0, opcode 0x08, 36 bytes, checksum 0); a ROM in
# download mode answers with packets that start C0 01 08 (REFERENCE-2.md section 1, "SYNC rules").
ROM_SYNC = b"\xc0\x00\x08\x24\x00\x00\x00\x00\x00\x07\x07\x12\x20" + b"\x55" * 32 + b"\xc0"
ROM_SYNC_ANSWER = b"\xc0\x01\x08"
ROM_SYNC_WAIT_S = 0.5


class NoRawRepl(TransportError):
    """The board gave no raw REPL prompt: `seen` is what came back instead, `rom_sync` whether a ROM loader
    answered a SYNC (tried only when nothing came back), `waited` the seconds it waited."""

    def __init__(self, seen: bytes, rom_sync: bool, waited: float):
        super().__init__("could not enter raw repl")
        self.seen, self.rom_sync, self.waited = seen, rom_sync, waited

# A board's answers are parsed with ast.literal_eval (here and by mpremote). On CPython 3.11 the AST
# constructor keeps one recursion counter per interpreter, not per thread, so parses in several threads at
# once (a parallel flash or rollout) can fail with "SystemError: AST constructor recursion depth mismatch"
# (CPython gh-106905). The parses are tiny: serialising them costs nothing measurable.
_AST_LOCK = threading.Lock()


def literal(text: str):
    """ast.literal_eval of a board's answer, one thread at a time (see _AST_LOCK)."""
    with _AST_LOCK:
        return ast.literal_eval(text)


class _Transport(SerialTransport):
    """mpremote's serial transport, with the help a library in many threads needs, for this session only
    (mpremote's own module stays as it is):
    - answers are parsed through literal() (eval is what fs_stat and fs_hashfile parse with; Session uses
      no other parsing method of mpremote's, such as fs_listdir);
    - entering the raw REPL and falling back from raw-paste do not print what the board sent when they
      fail (mpremote's versions print it; library code never prints): the TransportError says it."""

    def eval(self, expression, parse=True):
        if not parse:
            return super().eval(expression, parse=False)
        return literal(self.exec("print(repr({}))".format(expression)).strip().decode())

    def _expect(self, ending: bytes, timeout):
        if not self.read_until(1, ending, timeout_overall=timeout).endswith(ending):
            raise TransportError("could not enter raw repl")

    def enter_raw_repl(self, soft_reset=True, timeout_overall=10):
        ser = self.serial
        ser.write(b"\r\x03")  # Ctrl-C: interrupt any running program
        seen = bytearray()
        n = ser.inWaiting()
        while n > 0:  # flush input (without relying on serial.flushInput()), kept to tell what answered
            seen += ser.read(n)
            n = ser.inWaiting()
        ser.write(b"\r\x01")  # Ctrl-A: enter the raw REPL
        self._first_answer(seen, RAW_PROMPT + b">" if soft_reset else RAW_PROMPT, timeout_overall)
        if soft_reset:
            ser.write(b"\x04")  # Ctrl-D: soft reset
            # "soft reboot" apart from the prompt lets boot.py print in between
            self._expect(b"soft reboot\r\n", timeout_overall)
            self._expect(RAW_PROMPT, timeout_overall)
        self.in_raw_repl = True

    def _first_answer(self, seen: bytearray, ending: bytes, timeout_overall):
        """Reads (byte by byte: what follows the prompt must stay unread) until `ending`; gives up after
        ANSWER_TIMEOUT_S unless what came so far looks like MicroPython, then after timeout_overall. Raises
        NoRawRepl with what came back."""
        ser = self.serial
        start = time.monotonic()
        short = min(ANSWER_TIMEOUT_S, timeout_overall)
        patient = False
        old_timeout, ser.timeout = ser.timeout, 0.05
        try:
            while not seen.endswith(ending):
                got = ser.read(1)
                seen += got
                if got == b"\n" and b"waiting for download" in seen[-200:]:
                    break  # a ROM loader's banner: no need to wait longer
                waited = time.monotonic() - start
                if waited >= timeout_overall:
                    break
                if waited >= short and not patient:
                    patient = any(m in seen for m in MICROPYTHON_SIGNS)
                    if not patient:
                        break
            else:
                return
            waited = time.monotonic() - start
            rom_sync = False
            if not seen:  # silence: a ROM loader in download mode says nothing until it is spoken to
                ser.write(ROM_SYNC)
                answer = bytearray()
                until = time.monotonic() + ROM_SYNC_WAIT_S
                while time.monotonic() < until and ROM_SYNC_ANSWER not in answer:
                    answer += ser.read(64)
                rom_sync = ROM_SYNC_ANSWER in answer
            raise NoRawRepl(bytes(seen), rom_sync, waited)
        finally:
            ser.timeout = old_timeout

    def exec_raw_no_follow(self, command):
        command_bytes = command if isinstance(command, bytes) else command.encode()
        self._expect(b">", None)  # the raw REPL's prompt
        if self.use_raw_paste:
            self.serial.write(b"\x05A\x01")  # try raw-paste mode
            answer = self.serial.read(2)
            if answer == b"R\x01":
                return self.raw_paste_write(command_bytes)
            if answer != b"R\x00":  # a board that does not know raw-paste: back at the raw REPL
                self._expect(b"w REPL; CTRL-B to exit\r\n>", None)
            self.use_raw_paste = False
        for i in range(0, len(command_bytes), 256):  # the plain raw REPL, 256 bytes every 10 ms
            self.serial.write(command_bytes[i:i + 256])
            time.sleep(0.01)
        self.serial.write(b"\x04")
        answer = self.serial.read(2)
        if answer != b"OK":
            raise TransportError("could not exec command (response: %r)" % answer)


class BoardError(FleetError):
    """Code run on the board raised an exception."""

    default_hint = "the board's own message is above; 'fleet sim status' or a serial monitor shows more"


class Session:
    """Use as a context manager: `with Session(port) as s: s.exec("print(1)")`."""

    def __init__(self, port: str, *, baudrate: int = 115200, soft_reset: bool = True, timeout: float = 10.0):
        self.port = port
        self.timeout = timeout
        self.baudrate = baudrate
        self.soft_reset = soft_reset
        self.transport = None

    def __enter__(self):
        if "://" not in self.port and not os.path.exists(self.port):
            raise PortNotFound(f"cannot open serial port {self.port}: there is no such port")
        try:
            # A finite serial timeout: on a pty mpremote reads byte by byte and would wait forever on a silent
            # board. Not too short either: mpremote takes a read that times out during the raw-paste
            # handshake as a refusal, and a board still compiling its imports can take seconds to answer.
            self.transport = _Transport(self.port, baudrate=self.baudrate, timeout=SERIAL_TIMEOUT_S)
        except (serial.SerialException, OSError, TransportError) as e:
            raise SerialPortError(f"cannot open serial port {self.port}: {_reason(e)}")
        try:
            self.transport.enter_raw_repl(soft_reset=self.soft_reset, timeout_overall=self.timeout)
        except (TransportError, serial.SerialException, OSError) as e:
            self.close()
            if isinstance(e, NoRawRepl):
                raise _no_raw_repl(self.port, e) from None
            if isinstance(e, TransportError):
                raise BoardNotAnswering(f"the board on {self.port} does not answer (no raw REPL)")
            raise SerialPortError(f"serial port {self.port} failed: {_reason(e)}")
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.transport is not None:
            try:
                if self.transport.in_raw_repl:
                    self.transport.exit_raw_repl()
                self.transport.close()
            except (OSError, serial.SerialException, TransportError):
                pass
            self.transport = None

    def _call(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except TransportExecError as e:
            last = e.error_output.strip().splitlines()[-1] if e.error_output.strip() else "error"
            raise BoardError(f"the board on {self.port} raised: {last}")
        except (serial.SerialException, OSError) as e:
            raise SerialPortError(f"lost the serial port {self.port}: {_reason(e)}")
        except TransportError as e:
            raise BoardNotAnswering(f"the board on {self.port} stopped answering: {e}")

    def exec(self, code: str) -> str:
        return self._call(self.transport.exec, code).decode(errors="replace")

    def eval(self, expr: str):
        return self._call(self.transport.eval, expr)

    def write_file(self, path: str, data: bytes, progress=None):
        self._call(self.transport.fs_writefile, path, data, progress_callback=progress)

    def sha256(self, path: str) -> bytes:
        return self._call(self.transport.fs_hashfile, path, "sha256")

    def makedirs(self, path: str):
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if not self._call(self.transport.fs_exists, d):
                self._call(self.transport.fs_mkdir, d)


def _reason(e) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _no_raw_repl(port: str, e: NoRawRepl) -> BoardNotAnswering:
    """The named error for what answered on `port` instead of a MicroPython raw REPL."""
    seen, waited = e.seen, f"{e.waited:.0f} s" if e.waited >= 1 else f"{e.waited:.1f} s"
    if e.rom_sync or any(m in seen for m in ROM_DOWNLOAD_SIGNS):
        how = "it printed 'waiting for download'" if b"waiting for download" in seen else (
            "its ROM boot line says download mode" if seen else "it answered the ROM loader's SYNC")
        return BoardInDownloadMode(f"the board on {port} is in download mode: its ROM loader answered ({how}), "
                                   f"not MicroPython")
    flash_base = (f"flash the MicroPython base image first: fleet flash --port {port} --board BOARD --firmware "
                  f"ESP32_GENERIC.bin (hold BOOT while pressing RESET if esptool cannot reach it)")
    if any(m in seen for m in ROM_NO_FIRMWARE_SIGNS):
        return NotMicroPython(f"the chip on {port} has no firmware to run: its ROM printed "
                              f"{_sample(seen, ROM_NO_FIRMWARE_SIGNS)}", hint=flash_base)
    if not seen:
        return BoardSilent(f"the board on {port} does not answer: nothing came back in {waited}")
    if any(m in seen for m in MICROPYTHON_SIGNS):
        return BoardNotAnswering(f"the board on {port} runs MicroPython but gave no raw REPL in {waited} (a program "
                                 f"that does not stop at Ctrl-C?)")
    return NotMicroPython(f"the device on {port} is not a MicroPython board: in {waited} it sent {len(seen)} "
                          f"bytes but no MicroPython prompt, e.g. {_sample(seen)}",
                          hint=f"if this is the board, {flash_base}; otherwise pick the board's port")


def _sample(seen: bytes, signs=()) -> str:
    """A short, printable excerpt of what a device sent: the line with the first of `signs`, else the first
    line with text in it."""
    lines = [ln.strip() for ln in seen.replace(b"\r", b"\n").split(b"\n")]
    pick = next((ln for ln in lines for m in signs if m in ln), None) or next((ln for ln in lines if ln), seen)
    text = pick[:60].decode("ascii", errors="backslashreplace")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return repr(text) + (" ..." if len(pick) > 60 else "")
