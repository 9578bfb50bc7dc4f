"""Sensirion SCD40/SCD41 (CO2, temperature, humidity) at command level, after the SCD4x datasheet.

Commands are 16-bit words; answers are 16-bit words each followed by the Sensirion CRC-8 (polynomial 0x31,
init 0xFF). Periodic measurement gives a result every 5 s of simulated time; read_measurement NACKs when
no result is waiting (§3.5.2); while measuring, only the commands of §3.4 are accepted; for 500 ms after
stop_periodic_measurement the chip answers nothing (§3.5.3). Conversions
(§3.5.2): CO2 = word ppm, T = -45 + 175 * word / 65535 degC, RH = 100 * word / 65535 %.
"""

from .base import Nack
from .sensirion import SensirionDevice, crc8, words  # noqa: F401  (crc8: tests take it from here)

START_PERIODIC = 0x21B1
READ_MEASUREMENT = 0xEC05
STOP_PERIODIC = 0x3F86
SET_AMBIENT_PRESSURE = 0xE000
GET_AMBIENT_PRESSURE = 0xE000
DATA_READY = 0xE4B8
SERIAL_NUMBER = 0x3682
REINIT = 0x3646
MEASURE_SINGLE_SHOT = 0x219D
START_LOW_POWER = 0x21AC
PERIOD_MS = 5000
LOW_POWER_PERIOD_MS = 30000
SINGLE_SHOT_MS = 5000
STOP_MS = 500  # §3.5.3: the sensor only responds to other commands 500 ms after stop_periodic_measurement
ALLOWED_WHILE_MEASURING = {READ_MEASUREMENT, STOP_PERIODIC, DATA_READY, SET_AMBIENT_PRESSURE}


class SCD4x(SensirionDevice):
    kind = "scd4x"

    def __init__(self, world, *, address: int = 0x62, serial: int = 0xF8969F073BB3, **kw):
        super().__init__(world, address=address, **kw)
        self.serial = serial
        self.period_ms = None  # measuring when set
        self.started_ms = 0
        self.consumed = 0  # results read so far in this measurement run
        self.single_shot_at = None
        self.busy_until_ms = 0  # NACKs everything before this time
        self.ambient_pressure_hpa = 1013
        self.measurements = 0

    def raw_words(self):
        """The words a chip reports for the world's present CO2, temperature and humidity."""
        w = self.world
        co2 = min(max(round(w.get("co2_ppm")), 0), 40000)
        t = min(max(round((w.get("temperature_c") + 45) * 65535 / 175), 0), 65535)
        rh = min(max(round(w.get("humidity_pct") * 65535 / 100), 0), 65535)
        return co2, t, rh

    def _ready(self) -> bool:
        now = self.now_ms()
        if self.period_ms is not None:
            return (now - self.started_ms) // self.period_ms > self.consumed
        return self.single_shot_at is not None and now >= self.single_shot_at

    def write(self, data: bytes) -> None:
        if len(data) < 2:
            raise Nack()
        if self.now_ms() < self.busy_until_ms:
            raise Nack()
        cmd = int.from_bytes(data[:2], "big")
        arg = None
        if len(data) >= 5:
            if crc8(data[2:4]) != data[4]:
                raise Nack()  # a wrong CRC on an argument is not acknowledged
            arg = int.from_bytes(data[2:4], "big")
        if self.period_ms is not None and cmd not in ALLOWED_WHILE_MEASURING:
            raise Nack()
        self.answer = b""
        if cmd == START_PERIODIC or cmd == START_LOW_POWER:
            self.period_ms = PERIOD_MS if cmd == START_PERIODIC else LOW_POWER_PERIOD_MS
            self.started_ms, self.consumed = self.now_ms(), 0
        elif cmd == STOP_PERIODIC:
            self.period_ms = None
            self.busy_until_ms = self.now_ms() + STOP_MS
        elif cmd == DATA_READY:
            self.answer = words(0x8006 if self._ready() else 0x8000)
        elif cmd == READ_MEASUREMENT:
            if self._ready():
                if self.period_ms is not None:
                    self.consumed = (self.now_ms() - self.started_ms) // self.period_ms
                else:
                    self.single_shot_at = None
                self.answer = words(*self.raw_words())
                self.measurements += 1
        elif cmd == SERIAL_NUMBER:
            s = self.serial
            self.answer = words(s >> 32, (s >> 16) & 0xFFFF, s & 0xFFFF)
        elif cmd == SET_AMBIENT_PRESSURE:
            if arg is None:
                self.answer = words(self.ambient_pressure_hpa)
            else:
                self.ambient_pressure_hpa = arg
        elif cmd == MEASURE_SINGLE_SHOT:
            self.single_shot_at = self.now_ms() + SINGLE_SHOT_MS
        elif cmd == REINIT:
            pass
        else:
            raise Nack()
