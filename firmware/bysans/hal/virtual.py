# The board object of a virtual board: hardware requests go to the supervisor through `_vboard`.
import binascii
import time

RTC_MEMORY_BYTES = 2048


class VirtualI2C:
    def __init__(self, vb, bus_id):
        self._vb = vb
        self._id = bus_id

    def writeto(self, addr, buf, stop=True):
        self._vb.call("i2c.w %d %d %s" % (self._id, addr, binascii.hexlify(buf).decode()))
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        data = binascii.unhexlify(self._vb.call("i2c.r %d %d %d" % (self._id, addr, len(buf))))
        buf[:] = data

    def readfrom(self, addr, n, stop=True):
        buf = bytearray(n)
        self.readfrom_into(addr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, reg, buf, addrsize=8):
        self._vb.call("i2c.w %d %d %s%s" % (self._id, addr, _reg_hex(reg, addrsize), binascii.hexlify(buf).decode()))

    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        self._vb.call("i2c.w %d %d %s" % (self._id, addr, _reg_hex(reg, addrsize)))
        self.readfrom_into(addr, buf)

    def readfrom_mem(self, addr, reg, n, addrsize=8):
        buf = bytearray(n)
        self.readfrom_mem_into(addr, reg, buf, addrsize)
        return bytes(buf)

    def scan(self):
        answer = self._vb.call("i2c.scan %d" % self._id)
        return [int(a) for a in answer.split()]


def _reg_hex(reg, addrsize):
    # machine.I2C sends the memory address MSB first, addrsize bits wide
    return "%04x" % reg if addrsize == 16 else "%02x" % reg


class VirtualUART:
    """machine.UART's any/read/readinto/write (timeout 0: a read returns what has arrived, or None)."""

    def __init__(self, vb, uart_id):
        self._vb = vb
        self._id = uart_id

    def write(self, buf):
        self._vb.call("uart.w %d %s" % (self._id, binascii.hexlify(buf).decode()))
        return len(buf)

    def any(self):
        return int(self._vb.call("uart.any %d" % self._id))

    def read(self, n=256):
        data = binascii.unhexlify(self._vb.call("uart.r %d %d" % (self._id, n)))
        return data or None

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else n
        data = binascii.unhexlify(self._vb.call("uart.r %d %d" % (self._id, n)))
        if not data:
            return None
        buf[:len(data)] = data
        return len(data)


class VirtualSPI:
    """machine.SPI's write/read/readinto/write_readinto (mode 0, MSB first). Chip select is a pin the
    driver drives itself, as on a board."""

    def __init__(self, vb, bus_id):
        self._vb = vb
        self._id = bus_id

    def _x(self, out):
        return binascii.unhexlify(self._vb.call("spi.x %d %s" % (self._id, binascii.hexlify(out).decode())))

    def write(self, buf):
        self._x(buf)

    def read(self, n, write=0):
        return self._x(bytes((write,)) * n)

    def readinto(self, buf, write=0):
        buf[:] = self._x(bytes((write,)) * len(buf))

    def write_readinto(self, out, buf):
        buf[:] = self._x(out)


class VirtualADC:
    """machine.ADC's read_uv/read_u16 at 11 dB attenuation (full scale about 3.1 V)."""

    FULL_SCALE_UV = 3100000

    def __init__(self, vb, pin):
        self._vb = vb
        self._pin = pin

    def read_uv(self):
        return int(self._vb.call("adc.r %d" % self._pin))

    def read_u16(self):
        return min(self.read_uv() * 65535 // self.FULL_SCALE_UV, 65535)


class VirtualPin:
    """machine.Pin's value/on/off."""

    def __init__(self, vb, pin_id, mode, value):
        self._vb = vb
        self._id = pin_id
        self.mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return int(self._vb.call("pin.r %d" % self._id))
        self._vb.call("pin.w %d %d" % (self._id, 1 if v else 0))

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)


class VirtualWDT:
    def __init__(self, vb, timeout_ms):
        self._vb = vb
        vb.call("wdt.arm %d" % timeout_ms)

    def feed(self):
        self._vb.call("wdt.feed")


class VirtualBoard:
    def __init__(self, vb):
        self._vb = vb
        self.definition = vb.board
        self.name = vb.board["name"]
        self._i2c = {}
        self._uart = {}
        self._spi = {}

    def spi(self, bus_id=1):
        bus = self._spi.get(bus_id)
        if bus is None:
            bus = self._spi[bus_id] = VirtualSPI(self._vb, bus_id)
        return bus

    def uart(self, uart_id=1):
        u = self._uart.get(uart_id)
        if u is None:
            u = self._uart[uart_id] = VirtualUART(self._vb, uart_id)
        return u

    def adc(self, pin):
        return VirtualADC(self._vb, pin)

    def pin(self, pin_id, mode="in", pull=None, value=None):
        return VirtualPin(self._vb, pin_id, mode, value)

    def i2c(self, bus_id=0):
        bus = self._i2c.get(bus_id)
        if bus is None:
            bus = self._i2c[bus_id] = VirtualI2C(self._vb, bus_id)
        return bus

    def rtc_memory(self, data=None):
        if data is None:  # in pieces, as call_hex writes it: no 4 KB line in a small heap
            n = int(self._vb.call("rtc.n"))
            parts = [binascii.unhexlify(self._vb.call("rtc.r %d 128" % off)) for off in range(0, n, 128)]
            # bytes, as an ESP32's RTC().memory() gives (code that writes into it fails here too), in one block
            # of n bytes as there; the pieces take as much again here, in small blocks
            return b"".join(parts)
        if len(data) > RTC_MEMORY_BYTES:
            raise ValueError("RTC memory holds 2048 bytes")
        self._vb.call_hex("rtc.w", data)  # in pieces: no 4 KB line in a small heap

    def watchdog(self, timeout_ms):
        return VirtualWDT(self._vb, timeout_ms)

    def deepsleep(self, ms=0):
        self._vb.send("sleep %d" % ms)

    def reset(self):
        self._vb.send("reset")

    def soft_reset(self):
        import machine

        machine.soft_reset()

    def reset_cause(self):
        return self._vb.reset_cause

    def ticks_ms(self):
        return time.ticks_add(0, self._vb.elapsed_ms())

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def sleep_ms(self, ms):
        # At least `ms` of simulated time, as time.sleep_ms on a board: drivers bound their waits by counting
        # sleeps, so a sleep cut short (ms // speed: 100 ms at 60x lasted 60 ms) ends a wait too early.
        # Microseconds, rounded up, so a short sleep at a high speed-up does not last a whole real ms.
        speed = self._vb.speed
        time.sleep_us((ms * 1000 + speed - 1) // speed)

    def epoch_s(self):
        return self._vb.epoch_ms() // 1000

    def unique_id(self):
        return binascii.unhexlify(self._vb.board.get("mac", "02b75a000001"))
