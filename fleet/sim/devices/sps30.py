"""Sensirion SPS30 particulate matter sensor at command level over I2C, after the SPS30 datasheet §6.

A 16-bit command pointer, answers as big-endian words each followed by the Sensirion CRC-8. Start
Measurement takes an output format: 0x03 IEEE754 floats (two words per value) or 0x05 unsigned 16-bit
integers (firmware 2.0). A new result each second of simulated time; the data-ready flag says so.
Values: mass PM1.0, PM2.5, PM4.0, PM10 [ug/m3], number concentration PM0.5..PM10 [#/cm3], typical size [nm].
"""

import struct

from .base import Nack
from .sensirion import SensirionDevice, crc8, words

START = 0x0010
STOP = 0x0104
DATA_READY = 0x0202
READ_VALUES = 0x0300
SLEEP = 0x1001
WAKE = 0x1103
CLEAN = 0x5607
AUTO_CLEAN = 0x8004
PRODUCT_TYPE = 0xD002
SERIAL = 0xD033
VERSION = 0xD100
STATUS = 0xD206
CLEAR_STATUS = 0xD210
RESET = 0xD304
FORMAT_FLOAT = 0x03
FORMAT_UINT16 = 0x05
PERIOD_MS = 1000


def _ascii_words(text: str, n: int) -> bytes:
    raw = text.encode().ljust(2 * n, b"\0")
    return words(*(int.from_bytes(raw[i:i + 2], "big") for i in range(0, 2 * n, 2)))


class SPS30(SensirionDevice):
    kind = "sps30"

    def __init__(self, world, *, address: int = 0x69, firmware=(2, 2), **kw):
        super().__init__(world, address=address, **kw)
        self.firmware = firmware
        self.pointer = 0
        self.format = None  # measuring when set
        self.asleep = False
        self.started_ms = 0
        self.consumed = 0
        self.last = None

    def values(self):
        """The ten values for the world's particulate mass (number concentrations follow from the mass
        for particles of about 0.5 um: a simple, monotonic stand-in for the chip's own estimate)."""
        w = self.world
        pm1, pm25, pm4, pm10 = (max(w.get(k), 0.0) for k in ("pm1_0", "pm2_5", "pm4_0", "pm10"))
        nc05 = pm1 * 6.5
        nc1 = pm1 * 7.5
        return (pm1, pm25, pm4, pm10, nc05, nc1, nc1 + (pm25 - pm1) * 0.4, nc1 + (pm4 - pm1) * 0.45,
                nc1 + (pm10 - pm1) * 0.5, 500.0)

    def _encode(self, vals):
        if self.format == FORMAT_UINT16:
            return words(*(min(round(v), 0xFFFF) for v in vals))
        out = b""
        for v in vals:
            raw = struct.pack(">f", v)
            out += words(int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:], "big"))
        return out

    def _ready(self):
        return self.format is not None and (self.now_ms() - self.started_ms) // PERIOD_MS > self.consumed

    def write(self, data: bytes) -> None:
        if len(data) < 2:
            raise Nack()
        cmd = int.from_bytes(data[:2], "big")
        if self.asleep and cmd != WAKE:
            raise Nack()  # §6.3.5: asleep, only wake-up is understood
        args = data[2:]
        if args and (len(args) % 3 or any(crc8(args[i:i + 2]) != args[i + 2] for i in range(0, len(args), 3))):
            raise Nack()
        self.answer = b""
        if cmd == START:
            if len(args) != 3 or args[0] not in (FORMAT_FLOAT, FORMAT_UINT16):
                raise Nack()
            if args[0] == FORMAT_UINT16 and self.firmware < (2, 0):
                raise Nack()
            self.format, self.started_ms, self.consumed, self.last = args[0], self.now_ms(), 0, None
        elif cmd == STOP or cmd == RESET:
            self.format = None
        elif cmd == DATA_READY:
            self.answer = words(1 if self._ready() else 0)
        elif cmd == READ_VALUES:
            if self.format is None:
                raise Nack()
            if self._ready():
                self.consumed = (self.now_ms() - self.started_ms) // PERIOD_MS
                self.last = self.values()
            # §6.3.4: without a new result the last one is returned again; zeros before the first
            self.answer = self._encode(self.last or (0.0,) * 10)
        elif cmd == VERSION:
            self.answer = words((self.firmware[0] << 8) | self.firmware[1])
        elif cmd == PRODUCT_TYPE:
            self.answer = _ascii_words("00080000", 4)
        elif cmd == SERIAL:
            self.answer = _ascii_words("BYSANSVIRTUAL001", 16)
        elif cmd == STATUS:
            self.answer = words(0, 0)
        elif cmd == SLEEP:
            if self.format is not None:
                raise Nack()
            self.asleep = True
        elif cmd == WAKE:
            self.asleep = False
        elif cmd in (CLEAN, CLEAR_STATUS):
            pass
        elif cmd == AUTO_CLEAN:
            if not args:
                self.answer = words(0x0009, 0x3A80)  # 604800 s, one week
        else:
            raise Nack()
