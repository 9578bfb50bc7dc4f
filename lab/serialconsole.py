"""A plain pyserial console for tests: what a technician's terminal sees."""

import time

import serial


class Console:
    def __init__(self, port, timeout=10.0):
        self.ser = serial.Serial(port, 115200, timeout=0.05)
        self.timeout = timeout
        self.buf = b""

    def write(self, data: bytes):
        self.ser.write(data)

    def read_until(self, marker: bytes, timeout=None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while marker not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited for {marker!r}, got {self.buf[-300:]!r}")
            self.buf += self.ser.read(4096)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def raw_repl(self):
        self.write(b"\r\x03\x03")
        time.sleep(0.05)
        self.ser.reset_input_buffer()
        self.buf = b""
        self.write(b"\r\x01")
        self.read_until(b"raw REPL; CTRL-B to exit\r\n>")

    def exec(self, code: str, timeout=None) -> str:
        """Runs code in the raw REPL; returns stdout, raises RuntimeError with the board's traceback."""
        self.write(code.encode() + b"\x04")
        self.read_until(b"OK", timeout)
        out = self.read_until(b"\x04", timeout)[:-1]
        err = self.read_until(b"\x04", timeout)[:-1]
        self.read_until(b">", timeout)
        if err:
            raise RuntimeError(err.decode(errors="replace"))
        return out.decode(errors="replace")

    def close(self):
        self.ser.close()
