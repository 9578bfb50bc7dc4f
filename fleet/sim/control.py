"""Talking to a running virtual board's supervisor over its control socket (JSON lines)."""

import contextlib
import json
import os
import socket

from ..errors import SimError


@contextlib.contextmanager
def _short_path(path):
    """AF_UNIX paths are limited to 107 bytes: reach a deep one through /proc/self/fd."""
    if len(os.fsencode(path)) < 100:
        yield path
        return
    fd = os.open(os.path.dirname(path), os.O_PATH)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


class ControlClient:
    def __init__(self, path, *, name="?", timeout=10.0):
        self.path = path
        self.name = name
        self.timeout = timeout

    def request(self, op, **kw):
        req = json.dumps({"op": op, **kw}).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, _short_path(self.path) as p:
                s.settimeout(self.timeout)
                s.connect(p)
                s.sendall(req)
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
        except socket.timeout:
            raise SimError(f"virtual board {self.name} does not answer",
                           hint=f"stop it with 'fleet sim stop {self.name}' and start it again")
        except OSError as e:
            raise SimError(f"virtual board {self.name} is not running ({e.strerror})",
                           hint="'fleet sim list' shows the running boards; 'fleet sim start' starts one")
        if not buf:
            raise SimError(f"virtual board {self.name} closed the connection",
                           hint="it may be stopping; 'fleet sim list' shows what runs")
        answer = json.loads(buf)
        if not answer.pop("ok", False):
            raise SimError(f"virtual board {self.name}: {answer.get('error')}")
        return answer
