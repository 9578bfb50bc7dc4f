"""Common behaviour of chip models: I2C register and command chips, UART peripherals, ADC inputs, pins."""


class Nack(Exception):
    """The device did not acknowledge (absent, busy or an invalid command)."""


class Pins:
    """GPIO levels of a virtual board: what the firmware drove, or what a chip drives (an interrupt line)."""

    def __init__(self):
        self.levels: dict[int, int] = {}
        self.modes: dict[int, str] = {}
        self._drivers = {}
        self._watchers: dict[int, list] = {}

    def set(self, pin: int, level: int) -> None:
        level = 1 if level else 0
        before = self.levels.get(pin)
        self.levels[pin] = level
        if before != level:
            for fn in self._watchers.get(pin, ()):
                fn(level)

    def level(self, pin: int, default: int) -> int:
        """What the firmware drove on `pin`, or `default` while it has not driven it (a pull-up or -down)."""
        return self.levels.get(pin, default)

    def watch(self, pin: int, fn) -> None:
        """A chip's input on `pin`: `fn(level)` is called on every edge the firmware drives (NSS, NRESET)."""
        self._watchers.setdefault(pin, []).append(fn)

    def get(self, pin: int) -> int:
        drive = self._drivers.get(pin)
        if drive is not None:
            return 1 if drive() else 0
        return self.levels.get(pin, 0)

    def drive(self, pin: int, fn) -> None:
        """A chip's output on `pin`: `fn()` gives its level when the firmware reads the pin."""
        self._drivers[pin] = fn


class Device:
    """A simulated part. `world` gives the physical quantities it measures; `options` are the extra keys
    of its board-file entry (what the real driver needs and the model may ignore)."""

    kind = "?"

    def __init__(self, world, *, pins: Pins | None = None, **options):
        self.world = world
        self.pins = pins if pins is not None else Pins()
        self.options = options

    def now_ms(self) -> int:
        return self.world.clock.now_ms()


class I2CDevice(Device):
    """A chip on an I2C bus."""

    def __init__(self, world, *, address: int, **kw):
        super().__init__(world, **kw)
        self.address = address

    def write(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def read(self, n: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError


class RegisterDevice(I2CDevice):
    """A chip with a register pointer (8 or 16 bits, big-endian) that auto-increments on reads and writes."""

    pointer_bytes = 1
    register_count = 256

    def __init__(self, world, *, address: int, **kw):
        super().__init__(world, address=address, **kw)
        self.regs = bytearray(self.register_count)
        self.pointer = 0

    def write(self, data: bytes) -> None:
        n = self.pointer_bytes
        if len(data) < n:
            return
        self.pointer = int.from_bytes(data[:n], "big") % self.register_count
        for b in data[n:]:
            self.write_register(self.pointer, b)
            self.pointer = self.next_pointer(self.pointer)

    def read(self, n: int) -> bytes:
        out = bytearray()
        for _ in range(n):
            out.append(self.read_register(self.pointer))
            self.pointer = self.next_pointer(self.pointer)
        return bytes(out)

    def next_pointer(self, pointer: int) -> int:
        return (pointer + 1) % self.register_count

    def read_register(self, reg: int) -> int:
        return self.regs[reg]

    def write_register(self, reg: int, value: int) -> None:
        self.regs[reg] = value


class UartDevice(Device):
    """A peripheral on a UART: `write` gets what the board sends, `read` gives what it sends back."""

    def __init__(self, world, **kw):
        super().__init__(world, **kw)
        self.rx = bytearray()  # bytes waiting in the board's receive buffer

    def write(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def poll(self) -> None:
        """Called before the board looks at its receive buffer: time-driven output goes here."""

    def available(self) -> int:
        self.poll()
        return len(self.rx)

    def read(self, n: int) -> bytes:
        self.poll()
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out


class SpiDevice(Device):
    """A chip on an SPI bus, selected by its chip-select line (`nss`, active low). The firmware's SPI
    transfers while NSS is low form one transaction: `transfer(mosi)` returns the MISO bytes clocked out at
    the same time; `select()` and `deselect()` come with NSS's falling and rising edges (a chip acts on
    most commands at the rising edge)."""

    def __init__(self, world, *, nss: int, **kw):
        super().__init__(world, **kw)
        self.nss = nss
        self.pins.watch(nss, lambda level: self.deselect() if level else self.select())

    def selected(self) -> bool:
        return self.pins.level(self.nss, 1) == 0

    def select(self) -> None:
        pass

    def deselect(self) -> None:
        pass

    def transfer(self, mosi: bytes) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError


class AdcDevice(Device):
    """What drives an ADC pin: `read_uv()` is the voltage the ADC reports, in microvolts."""

    def read_uv(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError
