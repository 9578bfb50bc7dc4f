"""What the benches that run the firmware's own modules under CPython share: the firmware on sys.path (a
bench, not the library: fleet loads firmware data by path) and a sink that keeps the uplinks handed to it."""

import sys

from fleet.resources import firmware_dir


def on_path():
    if str(firmware_dir()) not in sys.path:
        sys.path.insert(0, str(firmware_dir()))


class Sink:
    def __init__(self):
        self.frames = []

    def send(self, fport, payload):
        self.frames.append((fport, bytes(payload)))
