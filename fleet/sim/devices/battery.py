"""A battery behind a resistor divider on an ADC pin, as the board file's "battery" section describes it:

    {"adc_pin": 35, "divider_ohm": [100000, 100000], "enable_pin": 37, "enable_level": 0}

The pin sees battery_mv * bottom / (top + bottom) while the divider is switched on (always, without an
enable pin; with one, only while the firmware drives it to enable_level). The ADC is an ESP32's at 11 dB
attenuation as `ADC.read_uv()` reports it: 12-bit steps over 0..3.1 V, clipped at full scale.
"""

from .base import AdcDevice

FULL_SCALE_UV = 3_100_000
STEPS = 4095


class Battery(AdcDevice):
    kind = "battery"

    def __init__(self, world, *, adc_pin: int, divider_ohm=(100000, 100000), enable_pin: int | None = None,
                 enable_level: int = 1, **kw):
        super().__init__(world, **kw)
        self.adc_pin = adc_pin
        self.top, self.bottom = divider_ohm
        self.enable_pin = enable_pin
        self.enable_level = enable_level

    def pin_uv(self) -> float:
        if self.enable_pin is not None and self.pins.get(self.enable_pin) != self.enable_level:
            return 0.0
        return self.world.get("battery_mv") * 1000 * self.bottom / (self.top + self.bottom)

    def code(self) -> int:
        return min(max(round(self.pin_uv() * STEPS / FULL_SCALE_UV), 0), STEPS)

    def read_uv(self) -> int:
        return self.code() * FULL_SCALE_UV // STEPS
