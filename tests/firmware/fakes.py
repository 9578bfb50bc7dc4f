# Small fake hardware for driver tests under MicroPython: a bus with machine.I2C's API and chips that behave
# as their datasheets say (register maps, command sets, CRCs), written apart from the drivers and from the
# simulator's models. Time is a FakeClock: drivers get its sleep_ms, so waits cost nothing and are counted.
ENODEV = 19


class FakeClock:
    def __init__(self):
        self.now_ms = 0
        self.slept_ms = 0
        self.listeners = []

    def sleep_ms(self, ms):
        self.now_ms += ms
        self.slept_ms += ms
        for f in self.listeners:
            f(self.now_ms)


def sensirion_crc(data):
    # CRC-8/NRSC-5 as Sensirion uses it, table-free and MSB-first, written from the datasheet's parameters:
    # width 8, polynomial x^8 + x^5 + x^4 + 1 (0x31), init 0xFF, no reflection, no final XOR.
    reg = 0xFF
    for byte in data:
        for bit in range(7, -1, -1):
            top = (reg >> 7) ^ ((byte >> bit) & 1)
            reg = (reg << 1) & 0xFF
            if top:
                reg ^= 0x31
    return reg


class FakeI2C:
    """machine.I2C's methods over a dict of fake chips. A missing address raises OSError(ENODEV)."""

    def __init__(self):
        self.devices = {}
        self.transactions = 0

    def add(self, addr, dev):
        self.devices[addr] = dev
        return dev

    def _dev(self, addr):
        self.transactions += 1
        d = self.devices.get(addr)
        if d is None or getattr(d, "absent", False):
            raise OSError(ENODEV)
        return d

    def scan(self):
        return sorted(self.devices)

    def writeto(self, addr, buf, stop=True):
        self._dev(addr).write(bytes(buf))
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        data = self._dev(addr).read(len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]

    def readfrom(self, addr, n, stop=True):
        return self._dev(addr).read(n)

    def _reg(self, reg, addrsize):
        return bytes([reg >> 8, reg & 0xFF]) if addrsize == 16 else bytes([reg])

    def writeto_mem(self, addr, reg, buf, addrsize=8):
        self._dev(addr).write(self._reg(reg, addrsize) + bytes(buf))

    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        d = self._dev(addr)
        d.write(self._reg(reg, addrsize))
        data = d.read(len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]

    def readfrom_mem(self, addr, reg, n, addrsize=8):
        buf = bytearray(n)
        self.readfrom_mem_into(addr, reg, buf, addrsize)
        return bytes(buf)


class RegisterChip:
    """8-bit register pointer (or 16-bit when wide) that auto-increments, as most sensors do."""

    wide = False

    def __init__(self):
        self.regs = bytearray(0x200 if self.wide else 256)  # VL53L1X registers used lie below 0x200
        self.ptr = 0
        self.writes = []

    def write(self, data):
        n = 2 if self.wide else 1
        if len(data) < n:
            return
        self.ptr = (data[0] << 8) | data[1] if self.wide else data[0]
        for b in data[n:]:
            self.writes.append((self.ptr, b))
            self.on_write(self.ptr, b)
            self.ptr = self.next_ptr(self.ptr)

    def read(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.on_read(self.ptr)
            self.ptr = self.next_ptr(self.ptr)
        return bytes(out)

    def next_ptr(self, p):
        return (p + 1) & (0x1FF if self.wide else 0xFF)

    def on_write(self, reg, value):
        self.regs[reg] = value

    def on_read(self, reg):
        return self.regs[reg]


# ----- Bosch BME280 (BST-BME280-DS002 §5) ------------------------------------------------------------
# The BMP280 datasheet's worked example (§3.12) for T and P; humidity trimming of a typical part.
BMP280_EXAMPLE = dict(T1=27504, T2=26435, T3=-1000, P1=36477, P2=-10685, P3=3024, P4=2855, P5=140, P6=-7,
                      P7=15500, P8=-14600, P9=6000)
HUM_TRIM = dict(H1=75, H2=362, H3=0, H4=313, H5=50, H6=30)


def _le16(v):
    v &= 0xFFFF
    return [v & 0xFF, v >> 8]


class FakeBME280(RegisterChip):
    def __init__(self, cal=None):
        super().__init__()
        self.cal = dict(BMP280_EXAMPLE)
        self.cal.update(HUM_TRIM)
        self.cal.update(cal or {})
        c = self.cal
        block = []
        for k in ("T1", "T2", "T3", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"):
            block += _le16(c[k])
        self.regs[0x88:0x88 + 24] = bytes(block)
        self.regs[0xA1] = c["H1"]
        self.regs[0xE1:0xE3] = bytes(_le16(c["H2"]))
        self.regs[0xE3] = c["H3"]
        h4, h5 = c["H4"] & 0xFFF, c["H5"] & 0xFFF
        self.regs[0xE4] = h4 >> 4
        self.regs[0xE5] = (h4 & 0xF) | ((h5 & 0xF) << 4)
        self.regs[0xE6] = h5 >> 4
        self.regs[0xE7] = c["H6"] & 0xFF
        self.regs[0xD0] = 0x60
        self.raw = (415148, 519888, 30000)  # adc_P, adc_T, adc_H
        self.measurements = 0

    def on_write(self, reg, value):
        if reg == 0xE0:
            return  # soft reset: the calibration stays
        if reg in (0xF2, 0xF5):
            self.regs[reg] = value
        elif reg == 0xF4:
            self.regs[reg] = value
            if value & 3 in (1, 2):  # forced: measure, then back to sleep mode
                p, t, h = self.raw
                skip_t, skip_p, skip_h = (value >> 5) == 0, ((value >> 2) & 7) == 0, (self.regs[0xF2] & 7) == 0
                if skip_p:
                    p = 0x80000
                if skip_t:
                    t = 0x80000
                if skip_h:
                    h = 0x8000
                self.regs[0xF7:0xFF] = bytes([p >> 12, (p >> 4) & 0xFF, (p & 0xF) << 4,
                                              t >> 12, (t >> 4) & 0xFF, (t & 0xF) << 4, h >> 8, h & 0xFF])
                self.regs[0xF4] = value & 0xFC
                self.measurements += 1


# ----- Sensirion command chips (SCD4x datasheet §3.3, SPS30 datasheet §6.2) ----------------------------
def words_with_crc(words, corrupt=None):
    out = bytearray()
    for i, w in enumerate(words):
        pair = bytes([w >> 8, w & 0xFF])
        crc = sensirion_crc(pair)
        if corrupt == i:
            crc ^= 0x01
        out += pair + bytes([crc])
    return bytes(out)


class SensirionChip:
    def __init__(self, clock):
        self.clock = clock
        self.out = b""
        self.commands = []
        self.corrupt_word = None

    def write(self, data):
        cmd = (data[0] << 8) | data[1]
        arg = None
        if len(data) >= 5:
            assert sensirion_crc(data[2:4]) == data[4], "argument CRC"
            arg = (data[2] << 8) | data[3]
        self.commands.append(cmd)
        self.out = b""
        self.command(cmd, arg)

    def answer(self, words):
        self.out = words_with_crc(words, self.corrupt_word)

    def read(self, n):
        if len(self.out) < n:
            raise OSError(ENODEV)  # nothing to read: the chip NACKs its address
        data, self.out = self.out[:n], self.out[n:]
        return data


class FakeSCD4x(SensirionChip):
    # The datasheet's read_measurement example (§3.5.2): 0x01F4, 0x6667, 0x5EB9 -> 500 ppm, 25 degC, 37 %RH.
    def __init__(self, clock):
        super().__init__(clock)
        self.words = (0x01F4, 0x6667, 0x5EB9)
        self.periodic = False
        self.started_ms = None
        self.fresh = False
        self.pressure_hpa = None

    def _ready(self):
        if self.periodic and not self.fresh and self.clock.now_ms - self.started_ms >= 5000:
            self.fresh = True
            self.started_ms = self.clock.now_ms
        return self.fresh

    def command(self, cmd, arg):
        if self.periodic and cmd not in (0xEC05, 0x3F86, 0xE4B8, 0xE000):
            raise OSError(ENODEV)  # §3.4: other commands are not accepted while measuring
        if cmd == 0x21B1:
            self.periodic, self.started_ms, self.fresh = True, self.clock.now_ms, False
        elif cmd == 0x3F86:
            self.periodic = False
        elif cmd == 0x3682:
            self.answer((0xF896, 0x9F07, 0x3BB3))
        elif cmd == 0xE4B8:
            self.answer((0x8006 if self._ready() else 0x8000,))
        elif cmd == 0xEC05:
            if self._ready():
                self.fresh = False
                self.answer(self.words)
        elif cmd == 0xE000:
            self.pressure_hpa = arg
        elif cmd == 0x219D:
            self.fresh = True


class FakeSPS30(SensirionChip):
    def __init__(self, clock):
        super().__init__(clock)
        # pm1, pm2.5, pm4, pm10 [ug/m3], nc0.5, nc1, nc2.5, nc4, nc10 [#/cm3], typical size [nm]
        self.words = (3, 7, 9, 11, 20, 24, 25, 25, 25, 540)
        self.measuring = False
        self.last_ms = 0

    def command(self, cmd, arg):
        if cmd == 0x0010:
            assert arg == 0x0500, "start needs the output format"
            self.measuring, self.last_ms = True, self.clock.now_ms
        elif cmd == 0x0104:
            self.measuring = False
        elif cmd == 0xD100:
            self.answer((0x0201,))
        elif cmd == 0xD304:
            self.measuring = False
        elif cmd == 0x0202:
            ready = self.measuring and self.clock.now_ms - self.last_ms >= 1000
            self.answer((1 if ready else 0,))
        elif cmd == 0x0300:
            self.last_ms = self.clock.now_ms
            self.answer(self.words)


# ----- ST VL53L1X (16-bit registers, ULD behaviour) ----------------------------------------------------
class FakeVL53L1X(RegisterChip):
    wide = True

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.regs[0x010F] = 0xEA
        self.regs[0x0110] = 0xCC
        self.regs[0x00E5] = 0x01  # booted
        self.regs[0x0030] = 0x01  # interrupt active high
        self.distance_mm = 1234
        self.status_raw = 9  # "range valid"
        self.start_ms = None

    def on_write(self, reg, value):
        self.regs[reg] = value
        if reg == 0x0087:
            self.start_ms = self.clock.now_ms if value == 0x40 else None
            self.regs[0x0031] = 0
        elif reg == 0x0086 and value & 1:
            self.regs[0x0031] = 0  # clearing the interrupt: not ready until the next result
            self.start_ms = self.clock.now_ms if self.start_ms is not None else None

    def on_read(self, reg):
        if reg == 0x0031 and self.start_ms is not None and self.clock.now_ms - self.start_ms >= 100:
            pol = 0 if self.regs[0x0030] & 0x10 else 1
            self.regs[0x0031] = pol
            self.regs[0x0089] = self.status_raw
            self.regs[0x0096] = self.distance_mm >> 8
            self.regs[0x0097] = self.distance_mm & 0xFF
        return self.regs[reg]


# ----- ST LIS3DH -------------------------------------------------------------------------------------
class FakeLIS3DH(RegisterChip):
    def __init__(self):
        super().__init__()
        self.regs[0x0F] = 0x33
        self.accel_mg = (0, 0, 1000)
        self.latched = False

    def next_ptr(self, p):
        return p  # no auto-increment unless the sub-address MSB is set (handled in write)

    def write(self, data):
        self.auto = bool(data[0] & 0x80)
        self.ptr = data[0] & 0x7F
        for b in data[1:]:
            self.on_write(self.ptr, b)
            if self.auto:
                self.ptr += 1

    def read(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.on_read(self.ptr)
            if self.auto:
                self.ptr += 1
        return bytes(out)

    def _counts(self):
        fs = (self.regs[0x23] >> 4) & 3
        mg_per_digit = (1, 2, 4, 12)[fs]
        return [int(round(a / mg_per_digit)) << 4 for a in self.accel_mg]

    def on_read(self, reg):
        if reg == 0x27:
            return 0x0F if self.regs[0x20] & 0xF0 else 0
        if 0x28 <= reg <= 0x2D:
            c = self._counts()[(reg - 0x28) // 2] & 0xFFFF
            return c & 0xFF if reg % 2 == 0 else c >> 8
        if reg == 0x31:
            v = 0x40 if self.latched else 0
            self.latched = False
            return v
        return self.regs[reg]

    def shake(self):
        self.latched = bool(self.regs[0x30] & 0x2A)


# ----- UART, ADC, pins ---------------------------------------------------------------------------------
class FakeJSN:
    """machine.UART's any/read/readinto/write with a JSN-SR04T on the other end."""

    def __init__(self, clock, mode="controlled"):
        self.clock = clock
        self.mode = mode
        self.rx = bytearray()
        self.distance_mm = 1953
        self.corrupt = False
        self.silent = False
        self.last_frame_ms = 0
        clock.listeners.append(self._tick)

    def frame(self):
        h, l = self.distance_mm >> 8, self.distance_mm & 0xFF
        s = (0xFF + h + l) & 0xFF
        if self.corrupt:
            s ^= 0x5A
        return bytes([0xFF, h, l, s])

    def _tick(self, now):
        if self.mode == "auto" and not self.silent:
            while now - self.last_frame_ms >= 100:
                self.last_frame_ms += 100
                self.rx += self.frame()

    def write(self, buf):
        if self.mode == "controlled" and not self.silent and 0x55 in bytes(buf):
            self.rx += self.frame()
        return len(buf)

    def any(self):
        return len(self.rx)

    def readinto(self, buf):
        if not self.rx:
            return None
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def read(self, n=-1):
        if not self.rx:
            return None
        n = len(self.rx) if n < 0 else min(n, len(self.rx))
        out, self.rx = bytes(self.rx[:n]), self.rx[n:]
        return out


class FakePin:
    def __init__(self, v=0):
        self.v = v
        self.history = []

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.history.append(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class FakeADC:
    def __init__(self, uv, enable=None, enable_level=1):
        self.uv = uv
        self.enable = enable
        self.enable_level = enable_level

    def read_uv(self):
        if self.enable is not None and self.enable.v != self.enable_level:
            return 0
        return self.uv

    def read_u16(self):
        return self.read_uv() * 65535 // 3300000
