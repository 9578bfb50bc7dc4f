"""JSN-SR04T ultrasonic distance sensor in a serial mode (9600 8N1), on a board's UART.

mode "controlled" (R27 = 120k): each 0x55 byte the board sends starts a measurement and one frame comes
back. mode "auto" (R27 = 47k): a frame every 100 ms of simulated time (the board's receive buffer keeps
the last 256 bytes). Frame: 0xFF, distance high, distance low, (0xFF + high + low) & 0xFF; distance in mm.
Below the blind zone (250 mm) the module reports 250; beyond 6 m there is no echo and it reports 0.
"""

from .base import UartDevice

FRAME_START = 0xFF
TRIGGER = 0x55
PERIOD_MS = 100
BLIND_MM = 250
MAX_MM = 6000
RX_BUFFER = 256


def frame(distance_mm: int) -> bytes:
    h, l = (distance_mm >> 8) & 0xFF, distance_mm & 0xFF
    return bytes([FRAME_START, h, l, (FRAME_START + h + l) & 0xFF])


class JSNSR04T(UartDevice):
    kind = "jsn_sr04t"

    def __init__(self, world, *, mode: str = "controlled", **kw):
        super().__init__(world, **kw)
        if mode not in ("controlled", "auto"):
            raise ValueError(f"jsn_sr04t mode is 'controlled' or 'auto', not {mode!r}")
        self.mode = mode
        self.last_frame_ms = self.now_ms()
        self.measurements = 0

    def reported_mm(self) -> int:
        d = round(self.world.get("distance_mm"))
        if d > MAX_MM or d <= 0:
            return 0
        return max(d, BLIND_MM)

    def _emit(self):
        self.rx += frame(self.reported_mm())
        del self.rx[:-RX_BUFFER]
        self.measurements += 1

    def write(self, data: bytes) -> None:
        if self.mode == "controlled":
            for b in data:
                if b == TRIGGER:
                    self._emit()

    def poll(self) -> None:
        if self.mode != "auto":
            return
        now = self.now_ms()
        due = (now - self.last_frame_ms) // PERIOD_MS
        for _ in range(min(due, RX_BUFFER // 4)):
            self._emit()
        self.last_frame_ms += due * PERIOD_MS
