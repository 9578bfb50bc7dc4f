# JSN-SR04T (v2/v3) waterproof ultrasonic distance sensor in a serial mode, 9600 8N1.
# Mode 2 (R27 = 47k, "auto"): a frame every 100 ms. Mode 3 (R27 = 120k, "controlled"): one frame after each
# 0x55 byte sent to the module. Frame (vendor's mode description; DFRobot SEN0312 uses the same):
#   0xFF, distance high byte, distance low byte, SUM = (0xFF + H + L) & 0xFF; distance in mm.
# Example: FF 07 A1 A7 -> 1953 mm. A distance of 0 means no echo.
from micropython import const
import time

from bysans.drivers.errors import CrcError, OutOfRange, SensorMissing, SensorTimeout

_FRAME_START = const(0xFF)
_TRIGGER = const(0x55)
_FRAME_LEN = const(4)
_POLL_MS = const(10)
_PERIOD_MS = const(100)
BAUD = 9600


def parse_frame(f, i=0):
    """Distance in mm of the frame at f[i:i+4]; None when the checksum is wrong."""
    if f[i] != _FRAME_START or ((f[i] + f[i + 1] + f[i + 2]) & 0xFF) != f[i + 3]:
        return None
    return (f[i + 1] << 8) | f[i + 2]


class JSNSR04T:
    NAME = "jsn_sr04t"

    def __init__(self, uart, *, mode="controlled", sleep_ms=None):
        if mode not in ("controlled", "auto"):
            raise ValueError("mode is 'controlled' or 'auto'")
        self._uart = uart
        self._controlled = mode == "controlled"
        self._sleep = sleep_ms or time.sleep_ms
        self._rx = bytearray(32)
        self._win = bytearray(2 * _FRAME_LEN)
        self._trigger = bytes((_TRIGGER,))
        self.dist_mm = 0

    def _drain(self):
        """Drops what arrived before we asked: in auto mode an old frame is an old distance."""
        for _ in range(16):
            if not self._uart.any():
                return
            self._uart.readinto(self._rx)

    def read_mm(self, timeout_ms=300):
        """One distance in mm. SensorMissing when nothing arrives, CrcError when only bad frames do."""
        self._drain()
        if self._controlled:
            self._uart.write(self._trigger)
        win = self._win
        have = 0
        seen = 0
        bad = 0
        for _ in range(timeout_ms // _POLL_MS + 1):
            n = self._uart.readinto(self._rx) if self._uart.any() else 0
            for k in range(n or 0):
                seen += 1
                if have == 0 and self._rx[k] != _FRAME_START:
                    continue  # hunt for the start byte
                win[have] = self._rx[k]
                have += 1
                if have == _FRAME_LEN:
                    mm = parse_frame(win)
                    if mm is not None:
                        if mm == 0:
                            raise OutOfRange(self.NAME, "no echo")
                        self.dist_mm = mm
                        return mm
                    bad += 1
                    # resynchronise on a later 0xFF inside the bad frame
                    j = 1
                    while j < _FRAME_LEN and win[j] != _FRAME_START:
                        j += 1
                    have = _FRAME_LEN - j
                    for m in range(have):
                        win[m] = win[j + m]
            self._sleep(_POLL_MS)
        if bad:
            raise CrcError(self.NAME, "%d frame(s) with a bad checksum" % bad)
        if seen:
            raise SensorTimeout(self.NAME, "incomplete frame")
        raise SensorMissing(self.NAME, "no answer on the UART")
