"""A host that holds a virtual board's port open gets all of the board's output, however late it reads: only
output to a port nobody has open is dropped (fleet/sim/supervisor.py _host_reads). Before, a host that read
slowly (a loaded machine, mpremote reading byte by byte) lost lines from the middle of a long answer."""

import time

import serial

N = 2000
LINE = "line %05d " + "x" * 40


def _until(s, end: bytes, timeout: float = 60.0) -> bytes:
    got, deadline = b"", time.monotonic() + timeout
    while not got.endswith(end) and time.monotonic() < deadline:
        got += s.read(max(1, s.in_waiting))
    return got


def test_a_host_that_holds_the_port_and_reads_late_loses_no_line(vboard):
    vboard.wait_prompt()
    with serial.Serial(vboard.port, 115200, timeout=0.2) as s:
        s.write(b"\r\x03\x03")
        time.sleep(0.2)
        s.reset_input_buffer()
        s.write(b"\x01")
        assert _until(s, b"raw REPL; CTRL-B to exit\r\n>", 10).endswith(b">")
        s.write(f"for i in range({N}):\n print({LINE!r} % i)\n".encode() + b"\x04")
        time.sleep(2.5)  # ~100 KB waiting: far more than the port's buffers, for longer than STALE_OUTPUT_S
        out = _until(s, b"\x04>")
    text = out[2:].split(b"\x04")[0].decode()  # after "OK": the program's output, up to its end mark
    assert text.splitlines() == [LINE % i for i in range(N)]
    assert vboard.counters()["dropped"] == 0
