# The board object of an ESP32 board: a thin layer over machine/esp32, checked against
# micropython-esp32-stubs by tests/host/test_hal_esp32_stubs.py (it cannot run here).
import json
import time

import machine

from bysans.device_spec import BOARD_FILE

_CAUSES = {
    machine.PWRON_RESET: "power_on",
    machine.HARD_RESET: "hard",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deepsleep",
    machine.SOFT_RESET: "soft",
}


class Esp32Board:
    def __init__(self, path=BOARD_FILE):
        with open(path) as f:
            self.definition = json.load(f)
        self.name = self.definition["name"]
        self._i2c = {}
        self._uart = {}
        self._spi = {}
        self._rtc = machine.RTC()

    def i2c(self, bus_id=0):
        bus = self._i2c.get(bus_id)
        if bus is None:
            d = self.definition["i2c"][bus_id]
            bus = machine.I2C(d["id"], scl=machine.Pin(d["scl"]), sda=machine.Pin(d["sda"]), freq=d["freq"])
            self._i2c[bus_id] = bus
        return bus

    def spi(self, bus_id=1):
        bus = self._spi.get(bus_id)
        if bus is None:
            d = [e for e in self.definition["spi"] if e["id"] == bus_id][0]
            bus = machine.SPI(bus_id, baudrate=d.get("baud", 8000000), polarity=0, phase=0,
                              sck=machine.Pin(d["sck"]), mosi=machine.Pin(d["mosi"]), miso=machine.Pin(d["miso"]))
            self._spi[bus_id] = bus
        return bus

    def uart(self, uart_id=1):
        u = self._uart.get(uart_id)
        if u is None:
            d = [e for e in self.definition["uart"] if e["id"] == uart_id][0]
            u = machine.UART(uart_id, baudrate=d.get("baud", 9600), tx=d["tx"], rx=d["rx"], timeout=0)
            self._uart[uart_id] = u
        return u

    def adc(self, pin):
        return machine.ADC(machine.Pin(pin), atten=machine.ADC.ATTN_11DB)

    def pin(self, pin_id, mode="in", pull=None, value=None):
        m = machine.Pin.OUT if mode == "out" else machine.Pin.IN
        p = machine.Pin(pin_id, m)
        if pull == "up":
            p.init(pull=machine.Pin.PULL_UP)
        elif pull == "down":
            p.init(pull=machine.Pin.PULL_DOWN)
        if value is not None:
            p.value(value)
        return p

    def rtc_memory(self, data=None):
        if data is None:
            return self._rtc.memory()
        self._rtc.memory(data)

    def watchdog(self, timeout_ms):
        return machine.WDT(timeout=timeout_ms)

    def deepsleep(self, ms=0):
        machine.deepsleep(ms)

    def reset(self):
        machine.reset()

    def soft_reset(self):
        machine.soft_reset()

    def reset_cause(self):
        return _CAUSES.get(machine.reset_cause(), "power_on")

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def epoch_s(self):
        return time.time()

    def unique_id(self):
        return machine.unique_id()
