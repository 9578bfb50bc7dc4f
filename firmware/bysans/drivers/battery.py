# Battery voltage through a resistor divider into an ADC pin. The board file says where:
#   "battery": {"adc_pin": 35, "divider_ohm": [100000, 100000], "enable_pin": 37, "enable_level": 0}
# divider_ohm is [to the battery, to ground]; V_bat = V_pin * (top + bottom) / bottom. enable_pin, when
# present, switches the divider on only while measuring (Heltec V3: ADC_CTRL on GPIO37), saving current.
# The ADC object has machine.ADC's read_uv() (calibrated microvolts on ESP32).
from micropython import const
import time

from bysans.drivers.errors import OutOfRange

_SETTLE_MS = const(2)


class Battery:
    NAME = "battery"

    def __init__(self, adc, *, divider_ohm=(100000, 100000), enable=None, enable_level=1, samples=8,
                 sleep_ms=None):
        self._adc = adc
        self._top, self._bottom = divider_ohm
        self._enable = enable
        self._level = enable_level
        self._samples = samples
        self._sleep = sleep_ms or time.sleep_ms
        self.battery_mv = 0
        if enable is not None:
            enable.value(1 - enable_level)

    def read_mv(self):
        """Battery voltage in mV (mean of `samples` ADC readings)."""
        if self._enable is not None:
            self._enable.value(self._level)
            self._sleep(_SETTLE_MS)
        try:
            total_uv = 0
            for _ in range(self._samples):
                total_uv += self._adc.read_uv()
        finally:
            if self._enable is not None:
                self._enable.value(1 - self._level)
        pin_uv = total_uv // self._samples
        mv = (pin_uv * (self._top + self._bottom) // self._bottom + 500) // 1000
        if mv < 100:
            raise OutOfRange(self.NAME, "no voltage on the divider")
        self.battery_mv = mv
        return mv


def from_board(board, sleep_ms=None):
    """The board's battery monitor from its board file, or None when the board has none."""
    d = board.definition.get("battery")
    if not d or "adc_pin" not in d:
        return None
    enable = None
    level = d.get("enable_level", 1)
    if d.get("enable_pin") is not None:
        enable = board.pin(d["enable_pin"], "out", value=1 - level)
    return Battery(board.adc(d["adc_pin"]), divider_ohm=tuple(d["divider_ohm"]), enable=enable,
                   enable_level=level, sleep_ms=sleep_ms or board.sleep_ms)
