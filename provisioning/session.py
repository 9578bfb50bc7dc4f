"""A serial session with a MicroPython board (real or virtual), on mpremote's transport.

Errors are translated once, here: a port that cannot be opened or goes away becomes SerialPortError, a
board that does not give its raw REPL becomes BoardNotAnswering, a traceback on the board becomes
BoardError with the board's last line.
"""

import ast
import threading
import time

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from fleet.errors import BoardNotAnswering, FleetError, SerialPortError

SERIAL_TIMEOUT_S = 5
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n"

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
        n = ser.inWaiting()
        while n > 0:  # flush input (without relying on serial.flushInput())
            ser.read(n)
            n = ser.inWaiting()
        ser.write(b"\r\x01")  # Ctrl-A: enter the raw REPL
        if soft_reset:
            self._expect(RAW_PROMPT + b">", timeout_overall)
            ser.write(b"\x04")  # Ctrl-D: soft reset
            # "soft reboot" apart from the prompt lets boot.py print in between
            self._expect(b"soft reboot\r\n", timeout_overall)
        self._expect(RAW_PROMPT, timeout_overall)
        self.in_raw_repl = True

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
