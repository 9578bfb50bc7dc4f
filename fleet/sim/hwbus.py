"""The virtual board's hardware as its firmware sees it, served over a line protocol.

The board's `_vboard` module sends one request line and reads one answer line:

    i2c.w BUS ADDR HEX      ->  ok                  (an I2C write; err 19 when nobody acknowledges)
    i2c.r BUS ADDR N        ->  ok HEX              (an I2C read of N bytes)
    i2c.scan BUS            ->  ok ADDR ADDR ...
    uart.w ID HEX           ->  ok                  (bytes the board transmits; err 19 when no UART ID)
    uart.r ID N             ->  ok HEX              (up to N received bytes; empty when none are waiting)
    uart.any ID             ->  ok N                (received bytes waiting)
    adc.r PIN               ->  ok UV               (the ADC's reading in microvolts, as ADC.read_uv())
    spi.x BUS HEX           ->  ok HEX              (a full-duplex SPI transfer: MOSI out, MISO back; the chip
                                                 whose NSS pin the board holds low answers, else 0xFF)
    pin.w PIN 0|1           ->  ok                  (drive an output)
    pin.r PIN               ->  ok 0|1              (read a level: driven by the board or by a chip)
    rtc.r / rtc.w HEX       ->  ok HEX / ok         (RTC memory: up to 2048 bytes, read back as written)
    rtc.n / rtc.r OFF N     ->  ok LEN / ok HEX     (its length; N bytes of it from OFF, for a small heap)
    wdt.arm MS / wdt.feed   ->  ok
    sleep MS                ->  (no answer: the supervisor ends the interpreter and wakes it later)
    reset                   ->  (no answer: a software reset)
    soft                    ->  (no answer: a soft reset, SystemExit in boot.py or main.py: MicroPython restarts)
    time                    ->  ok SIM_EPOCH_MS
    capture FPORT HEX       ->  ok                  (an uplink payload, kept for tests until a radio sends it)

An answer `err ERRNO TEXT` becomes OSError(ERRNO) on the board, as machine.I2C raises it.
"""

import errno

from .devices import Nack
from .devices.base import Pins

RTC_MEMORY_BYTES = 2048


class HardwareBus:
    def __init__(self, *, clock, buses: dict, actions):
        """`buses` is what devices.build_buses returns: I2C bus id -> {address: device}, "uartN" -> {0:
        device}, "adc" -> {pin: device}, and `.pins`; `actions` is the supervisor (sleep, reset, wdt)."""
        self.clock = clock
        self.buses = buses
        self.pins = getattr(buses, "pins", None) or Pins()
        self.actions = actions
        self.rtc_memory = b""
        self.transactions = 0
        self.captured = []  # uplink payloads the board handed over: {"sim_ms", "fport", "hex"}

    def clear_rtc(self):
        self.rtc_memory = b""

    def handle(self, line: str) -> str | None:
        parts = line.split()
        if not parts:
            return "err 22 empty request"
        op, args = parts[0], parts[1:]
        fn = getattr(self, "op_" + op.replace(".", "_"), None)
        if fn is None:
            return f"err {errno.EINVAL} unknown request {op}"
        self.transactions += 1
        try:
            return fn(*args)
        except Nack:
            return f"err {errno.ENODEV} no acknowledge"
        except (TypeError, ValueError) as e:
            return f"err {errno.EINVAL} bad request: {e}"

    def _device(self, bus, addr):
        try:
            devices = self.buses[int(bus)]
        except KeyError:
            raise ValueError(f"no bus {bus}")
        dev = devices.get(int(addr))
        if dev is None:
            raise Nack()
        return dev

    def op_i2c_w(self, bus, addr, data=""):
        self._device(bus, addr).write(bytes.fromhex(data))
        return "ok"

    def op_i2c_r(self, bus, addr, n):
        return "ok " + self._device(bus, addr).read(int(n)).hex()

    def op_i2c_scan(self, bus):
        return "ok " + " ".join(str(a) for a in sorted(self.buses.get(int(bus), {})))

    def _uart(self, uart_id):
        dev = self.buses.get(f"uart{int(uart_id)}", {}).get(0)
        if dev is None:
            raise Nack()
        return dev

    def op_uart_w(self, uart_id, data=""):
        self._uart(uart_id).write(bytes.fromhex(data))
        return "ok"

    def op_uart_r(self, uart_id, n):
        return "ok " + self._uart(uart_id).read(int(n)).hex()

    def op_uart_any(self, uart_id):
        return f"ok {self._uart(uart_id).available()}"

    def op_spi_x(self, bus, data=""):
        mosi = bytes.fromhex(data)
        devices = self.buses.get(f"spi{int(bus)}")
        if devices is None:
            raise ValueError(f"no SPI bus {bus}")
        for dev in devices.values():
            if dev.selected():
                miso = dev.transfer(mosi)
                return "ok " + bytes(miso).hex()
        return "ok " + "ff" * len(mosi)  # nobody drives MISO: the line floats high

    def op_adc_r(self, pin):
        dev = self.buses.get("adc", {}).get(int(pin))
        return f"ok {dev.read_uv() if dev is not None else 0}"  # an unconnected pin reads about 0 V

    def op_pin_w(self, pin, level):
        self.pins.set(int(pin), int(level))
        return "ok"

    def op_pin_r(self, pin):
        return f"ok {self.pins.get(int(pin))}"

    def op_rtc_r(self, off=None, n=None):
        if off is None:
            return "ok " + self.rtc_memory.hex()
        return "ok " + self.rtc_memory[int(off):int(off) + int(n)].hex()

    def op_rtc_n(self):
        return f"ok {len(self.rtc_memory)}"

    def op_rtc_w(self, data=""):
        raw = bytes.fromhex(data)
        if len(raw) > RTC_MEMORY_BYTES:
            return f"err {errno.EINVAL} RTC memory holds {RTC_MEMORY_BYTES} bytes"
        self.rtc_memory = raw
        return "ok"

    def op_wdt_arm(self, ms):
        self.actions.arm_watchdog(int(ms))
        return "ok"

    def op_wdt_feed(self):
        self.actions.feed_watchdog()
        return "ok"

    def op_sleep(self, ms):
        self.actions.deep_sleep(int(ms))
        return None

    def op_reset(self):
        self.actions.software_reset()
        return None

    def op_soft(self):
        self.actions.soft_reset()
        return None

    def op_capture(self, fport, data=""):
        bytes.fromhex(data)  # a malformed payload is refused, not stored
        self.captured.append({"sim_ms": self.clock.now_ms(), "fport": int(fport), "hex": data})
        del self.captured[:-10000]
        return "ok"

    def op_time(self):
        return f"ok {self.clock.now_ms()}"
