"""ST LIS3DH 3-axis accelerometer at register level, after its datasheet (DocID17530) and AN3308.

WHO_AM_I 0x33; CTRL_REG1 (ODR, LPen, axis enables), CTRL_REG4 (BDU, FS, HR); outputs 0x28..0x2D as
left-justified two's complement: 12 bits in high-resolution mode (1/2/4/12 mg per digit at +-2/4/8/16 g),
10 bits in normal mode (4/8/16/48), 8 bits in low-power mode (16/32/64/192). A multi-byte access
auto-increments only when the sub-address has its MSB set (§6.1.1). STATUS_REG ZYXDA says a new sample
arrived since the outputs were last read (one per 1/ODR of simulated time).

Interrupt 1 (AN3308 §6.3): INT1_CFG selects high/low events per axis (OR, or AND with AOI), INT1_THS the
threshold (16/32/62/186 mg per LSB), the high-pass filter on the interrupt path (CTRL_REG2 HP_IA1) makes it
compare against the reference taken when REFERENCE (0x26) is read; LIR_INT1 (CTRL_REG5) latches it until
INT1_SRC is read. Events are checked whenever the world's acceleration changes, so a pickup set and undone
between two reads is still latched. INT1 drives the board pin named by `int1_pin` (I1_IA1 in CTRL_REG3).
"""

from .base import RegisterDevice

WHO_AM_I = 0x33
REG_WHO_AM_I = 0x0F
REG_CTRL_REG1 = 0x20
REG_CTRL_REG2 = 0x21
REG_CTRL_REG3 = 0x22
REG_CTRL_REG4 = 0x23
REG_CTRL_REG5 = 0x24
REG_REFERENCE = 0x26
REG_STATUS = 0x27
REG_OUT_X_L = 0x28
REG_OUT_Z_H = 0x2D
REG_INT1_CFG = 0x30
REG_INT1_SRC = 0x31
REG_INT1_THS = 0x32
ODR_HZ = {0: 0, 1: 1, 2: 10, 3: 25, 4: 50, 5: 100, 6: 200, 7: 400, 8: 1600, 9: 1344}
SENSITIVITY_MG = {  # per digit of the justified value, table 4
    "hr": (1, 2, 4, 12), "normal": (4, 8, 16, 48), "low_power": (16, 32, 64, 192)}
BITS = {"hr": 12, "normal": 10, "low_power": 8}
THS_MG = (16, 32, 62, 186)
AXES = ("accel_x_mg", "accel_y_mg", "accel_z_mg")


class LIS3DH(RegisterDevice):
    kind = "lis3dh"

    def __init__(self, world, *, address: int = 0x18, int1_pin: int | None = None, **kw):
        super().__init__(world, address=address, **kw)
        self.regs[REG_WHO_AM_I] = WHO_AM_I
        self.regs[REG_CTRL_REG1] = 0x07  # power-down, axes enabled (reset value)
        self.auto_increment = False
        self.last_sample_read_ms = None
        self.reference = (0, 0, 0)
        self.latched_src = 0
        self._seen_ms = self.now_ms()  # scenario motion up to here has been looked at
        world.subscribe(lambda before, after: self._check_events())
        if int1_pin is not None:
            self.pins.drive(int1_pin, self._int1_level)

    # ----- register access ---------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not data:
            return
        self.auto_increment = bool(data[0] & 0x80)
        super().write(bytes([data[0] & 0x7F]) + data[1:])

    def next_pointer(self, pointer: int) -> int:
        return (pointer + 1) & 0x7F if self.auto_increment else pointer

    def read_register(self, reg: int) -> int:
        if reg == REG_STATUS:
            return 0x0F if self._new_sample() else 0x00
        if REG_OUT_X_L <= reg <= REG_OUT_Z_H:
            counts = self.counts()[(reg - REG_OUT_X_L) // 2] & 0xFFFF
            if reg == REG_OUT_Z_H:
                self.last_sample_read_ms = self.now_ms()
            return counts & 0xFF if reg % 2 == 0 else counts >> 8
        if reg == REG_REFERENCE:
            self.reference = self.accel_mg()
            return self.regs[reg]
        if reg == REG_INT1_SRC:
            self._catch_up()
            src = self.latched_src | self._events()
            self.latched_src = 0
            return src
        return self.regs[reg]

    def write_register(self, reg: int, value: int) -> None:
        if reg in (REG_WHO_AM_I, REG_STATUS, REG_INT1_SRC) or REG_OUT_X_L <= reg <= REG_OUT_Z_H:
            return  # read-only
        self.regs[reg] = value

    # ----- measurement -------------------------------------------------------------------------------
    def mode(self) -> str:
        if self.regs[REG_CTRL_REG1] & 0x08:
            return "low_power"
        return "hr" if self.regs[REG_CTRL_REG4] & 0x08 else "normal"

    def full_scale(self) -> int:
        return (self.regs[REG_CTRL_REG4] >> 4) & 3

    def odr_hz(self) -> int:
        return ODR_HZ.get(self.regs[REG_CTRL_REG1] >> 4, 0)

    def accel_mg(self, at_ms: int | None = None):
        return tuple(self.world.get(a, at_ms) for a in AXES)

    def counts(self):
        """The three output words (left-justified) for the world's acceleration."""
        mode = self.mode()
        sens = SENSITIVITY_MG[mode][self.full_scale()]
        bits = BITS[mode]
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        enables = self.regs[REG_CTRL_REG1] & 0x07
        out = []
        for i, a in enumerate(self.accel_mg()):
            c = min(max(round(a / sens), lo), hi) if self.odr_hz() and enables & (1 << i) else 0
            out.append(c << (16 - bits))
        return out

    def _new_sample(self) -> bool:
        odr = self.odr_hz()
        if not odr:
            return False
        return self.last_sample_read_ms is None or self.now_ms() - self.last_sample_read_ms >= 1000 / odr

    # ----- interrupt 1 -------------------------------------------------------------------------------
    def _events(self, at_ms: int | None = None) -> int:
        cfg = self.regs[REG_INT1_CFG]
        if not cfg & 0x3F or not self.odr_hz():
            return 0
        ths = (self.regs[REG_INT1_THS] & 0x7F) * THS_MG[self.full_scale()]
        a = self.accel_mg(at_ms)
        if self.regs[REG_CTRL_REG2] & 0x01:  # high-pass filtered: the change from the reference
            a = tuple(v - r for v, r in zip(a, self.reference))
        src = 0
        for i, v in enumerate(a):
            if abs(v) > ths:
                src |= 1 << (2 * i + 1)  # XH, YH, ZH
            else:
                src |= 1 << (2 * i)  # XL, YL, ZL
        enabled = src & cfg & 0x3F
        if cfg & 0x80:  # AND combination: every enabled event
            hit = enabled == cfg & 0x3F
        else:
            hit = enabled != 0
        return (enabled | 0x40) if hit else 0

    def _check_events(self):
        if self.regs[REG_CTRL_REG5] & 0x08:  # LIR_INT1: keep it until INT1_SRC is read
            self.latched_src |= self._events()

    def _catch_up(self):
        """Latches scenario motion that came and went since the chip was last looked at: the real chip
        samples all the time, the model only when asked (a pickup while the board sleeps must still wake it)."""
        now = self.now_ms()
        if self.regs[REG_CTRL_REG5] & 0x08:
            for t in self.world.motion_moments(self._seen_ms, now):
                self.latched_src |= self._events(t)
        self._seen_ms = now

    def _int1_level(self) -> int:
        self._catch_up()
        if not self.regs[REG_CTRL_REG3] & 0x40:
            return 0
        return 1 if (self.latched_src | self._events()) & 0x40 else 0
