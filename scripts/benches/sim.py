"""Virtual board benchmarks: what mpremote costs on the wire, and the raw REPL round trip."""

import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleet.resources import micropython_path
from fleet.sim import manager

ROUNDS = 200


def _with_board(fn, **kw):
    with tempfile.TemporaryDirectory() as d:
        old = os.environ.get("BYSANS_SIM_DIR")
        os.environ["BYSANS_SIM_DIR"] = d
        try:
            [board] = manager.start(names=["bench"], erase=True, **kw)
            try:
                return fn(board, Path(d))
            finally:
                board.stop()
        finally:
            if old is None:
                os.environ.pop("BYSANS_SIM_DIR")
            else:
                os.environ["BYSANS_SIM_DIR"] = old


def _cp_wire_bytes(board, src):
    mpremote = str(Path(sys.executable).parent / "mpremote")
    board.counters(reset=True)
    subprocess.run([mpremote, "connect", board.port, "cp", str(src), ":f"], check=True, capture_output=True)
    c = board.counters()
    return c["host_to_board"] + c["board_to_host"]


def wire_ratio():
    def run(board, d):
        size = 64 * 1024
        binary = d / "blob.bin"
        binary.write_bytes(os.urandom(size))
        text = d / "text.py"
        line = b"reading = sample(channel, offset_mm=120)  # fixed-point, no floats\n"
        text.write_bytes((line * (size // len(line) + 1))[:size])
        return _cp_wire_bytes(board, binary) / size, _cp_wire_bytes(board, text) / size

    binary, text = _with_board(run)
    return [{"bench": "sim.mpremote_wire_ratio", "value": round(binary, 3), "unit": "wire bytes per file byte",
             "baseline": round(text, 3), "baseline_is": "mpremote cp of a 64 KiB Python source file",
             "ratio": round(binary / text, 2)}]


def _roundtrips(fd, rounds):
    def read_until(marker):
        buf = b""
        while not buf.endswith(marker):
            select.select([fd], [], [], 5)
            buf += os.read(fd, 4096)
        return buf

    os.write(fd, b"\r\x03\x03\r\x01")
    read_until(b"raw REPL; CTRL-B to exit\r\n>")
    t0 = time.perf_counter()
    for _ in range(rounds):
        os.write(fd, b"x=1\x04")
        read_until(b"OK\x04\x04>")
    return (time.perf_counter() - t0) / rounds * 1000


def raw_repl_roundtrip():
    def via_board(board, d):
        fd = os.open(board.port, os.O_RDWR | os.O_NOCTTY)
        try:
            import tty

            tty.setraw(fd)
            return _roundtrips(fd, ROUNDS)
        finally:
            os.close(fd)

    board_ms = _with_board(via_board)
    # baseline: the same interpreter on a bare pseudo-terminal, no supervisor in between
    m, s = pty.openpty()
    import tty

    tty.setraw(s)
    proc = subprocess.Popen([micropython_path()], stdin=s, stdout=s, stderr=s, start_new_session=True)
    try:
        time.sleep(0.3)
        bare_ms = _roundtrips(m, ROUNDS)
    finally:
        proc.kill()
        proc.wait()
        os.close(m)
        os.close(s)
    return [{"bench": "sim.raw_repl_roundtrip_ms", "value": round(board_ms, 3), "unit": "ms",
             "baseline": round(bare_ms, 3), "baseline_is": "micropython on a bare pty, no supervisor",
             "ratio": round(board_ms / bare_ms, 2), "rounds": ROUNDS}]


BENCHES = [
    (("sim.mpremote_wire_ratio",), wire_ratio),
    (("sim.raw_repl_roundtrip_ms",), raw_repl_roundtrip),
]
