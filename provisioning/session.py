"""A serial session with a MicroPython board (real or virtual), on mpremote's transport.

Errors are translated once, here: a port that cannot be opened or goes away becomes SerialPortError, a
board that does not give its raw REPL becomes BoardNotAnswering, a traceback on the board becomes
BoardError with the board's last line.
"""

import ast
import threading
import types

import serial
import mpremote.transport
import mpremote.transport_serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from fleet.errors import BoardNotAnswering, FleetError, SerialPortError


# mpremote prints what it got when entering the raw REPL fails; library code never prints. A module-level
# print (rather than contextlib.redirect_stdout, which swaps sys.stdout for the whole process and, from
# several threads at once, can leave it swapped) keeps it quiet for every session, in every thread.
mpremote.transport_serial.print = lambda *args, **kwargs: None

# mpremote parses every board answer with ast.literal_eval. On CPython 3.11 the AST constructor keeps one
# recursion counter per interpreter, not per thread, so sessions in several threads at once (a parallel
# flash or rollout) can fail with "SystemError: AST constructor recursion depth mismatch" (CPython
# gh-106905). mpremote's parses are tiny: serialising them costs nothing measurable.
_AST_LOCK = threading.Lock()


def _locked_literal_eval(text):
    with _AST_LOCK:
        return ast.literal_eval(text)


mpremote.transport.ast = mpremote.transport_serial.ast = types.SimpleNamespace(literal_eval=_locked_literal_eval)


SERIAL_TIMEOUT_S = 5


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
            self.transport = SerialTransport(self.port, baudrate=self.baudrate, timeout=SERIAL_TIMEOUT_S)
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
