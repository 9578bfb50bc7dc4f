"""ST VL53L1X time-of-flight distance sensor at register level (16-bit register index), as ST's Ultra Lite
Driver (UM2510) uses it: boot state (0x00E5), model id (0x010F = 0xEA, 0x0110 = 0xCC), the default
configuration block 0x2D..0x87, SYSTEM__MODE_START (0x0087: 0x40 ranging, 0x00 stopped), data ready on
GPIO__TIO_HV_STATUS (0x0031) bit 0 at the polarity set in GPIO_HV_MUX__CTRL (0x0030 bit 4: 0 = active high),
SYSTEM__INTERRUPT_CLEAR (0x0086), RESULT__RANGE_STATUS (0x0089) and the distance in mm at 0x0096 (BE).

A result is ready one timing budget (100 ms, the default configuration) after ranging starts or the
interrupt is cleared. Range status 9 (valid) inside the distance mode's range; 4 (signal fail) beyond it
(4 m in long mode, 1.3 m in short mode: PHASECAL_CONFIG__TIMEOUT_MACROP 0x004B = 0x14); 8 (minimum range
fail) under 40 mm.
"""

from .base import RegisterDevice

MODEL_ID = 0xEACC
REG_GPIO_HV_MUX_CTRL = 0x0030
REG_GPIO_TIO_HV_STATUS = 0x0031
REG_PHASECAL_TIMEOUT = 0x004B
REG_INTERRUPT_CLEAR = 0x0086
REG_MODE_START = 0x0087
REG_RANGE_STATUS = 0x0089
REG_RANGE_MM = 0x0096
REG_FIRMWARE_SYSTEM_STATUS = 0x00E5
REG_MODEL_ID = 0x010F
BUDGET_MS = 100
STATUS_VALID = 9
STATUS_SIGNAL_FAIL = 4
STATUS_MIN_RANGE_FAIL = 8


class VL53L1X(RegisterDevice):
    kind = "vl53l1x"
    pointer_bytes = 2
    register_count = 0x0200

    def __init__(self, world, *, address: int = 0x29, **kw):
        super().__init__(world, address=address, **kw)
        self.regs[REG_MODEL_ID] = MODEL_ID >> 8
        self.regs[REG_MODEL_ID + 1] = MODEL_ID & 0xFF
        self.regs[REG_FIRMWARE_SYSTEM_STATUS] = 0x03  # booted
        self.regs[REG_GPIO_HV_MUX_CTRL] = 0x01
        self.regs[REG_PHASECAL_TIMEOUT] = 0x0A  # long mode
        self.ranging_since = None
        self.ready = False
        self.measurements = 0

    def _polarity(self) -> int:
        return 0 if self.regs[REG_GPIO_HV_MUX_CTRL] & 0x10 else 1

    def max_range_mm(self) -> int:
        return 1300 if self.regs[REG_PHASECAL_TIMEOUT] == 0x14 else 4000

    def _measure(self):
        d = round(self.world.get("distance_mm"))
        if d < 40:
            status, d = STATUS_MIN_RANGE_FAIL, max(d, 0)
        elif d > self.max_range_mm():
            status, d = STATUS_SIGNAL_FAIL, 0
        else:
            status = STATUS_VALID
        self.regs[REG_RANGE_STATUS] = status
        self.regs[REG_RANGE_MM] = (d >> 8) & 0xFF
        self.regs[REG_RANGE_MM + 1] = d & 0xFF
        self.ready = True
        self.measurements += 1

    def _update(self):
        if not self.ready and self.ranging_since is not None and self.now_ms() - self.ranging_since >= BUDGET_MS:
            self._measure()

    def read_register(self, reg: int) -> int:
        self._update()
        if reg == REG_GPIO_TIO_HV_STATUS:
            return self._polarity() if self.ready else 1 - self._polarity()
        return self.regs[reg]

    def write_register(self, reg: int, value: int) -> None:
        if reg in (REG_MODEL_ID, REG_MODEL_ID + 1, REG_FIRMWARE_SYSTEM_STATUS, REG_GPIO_TIO_HV_STATUS):
            return  # read-only
        self.regs[reg] = value
        if reg == REG_MODE_START:
            self.ready = False
            self.ranging_since = self.now_ms() if value & 0x40 else None
        elif reg == REG_INTERRUPT_CLEAR and value & 1:
            self.ready = False
            if self.ranging_since is not None:
                self.ranging_since = self.now_ms()
