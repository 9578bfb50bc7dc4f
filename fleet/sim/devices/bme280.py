"""Bosch BME280 (temperature, pressure, humidity) at register level, after datasheet BST-BME280-DS002.

The model holds a chip's factory calibration in the NVM registers (0x88..0xA1, 0xE1..0xE7), answers the
chip id (0xD0 = 0x60) and soft reset (0xE0 <- 0xB6), and on a forced or normal measurement writes the raw
ADC values that the datasheet's integer compensation (section 4.2.3) turns back into the world's values.
"""

import struct

from .base import RegisterDevice

CHIP_ID = 0x60
REG_CALIB00 = 0x88
REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CALIB26 = 0xE1
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_DATA = 0xF7  # press_msb .. hum_lsb, 8 bytes
SKIPPED_20BIT = 0x80000
SKIPPED_16BIT = 0x8000

# A plausible chip's trimming. T and P are the BMP280 datasheet's worked example (section 3.12).
DEFAULT_CALIBRATION = {
    "T1": 27504, "T2": 26435, "T3": -1000,
    "P1": 36477, "P2": -10685, "P3": 3024, "P4": 2855, "P5": 140, "P6": -7, "P7": 15500,
    "P8": -14600, "P9": 6000,
    "H1": 75, "H2": 362, "H3": 0, "H4": 313, "H5": 50, "H6": 30,
}


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _u32(x: int) -> int:
    return x & 0xFFFFFFFF


def _s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


class Compensation:
    """The datasheet's integer compensation, used to find the raw values a chip would report."""

    def __init__(self, c: dict):
        self.c = c

    def t_fine(self, adc_t: int) -> int:
        c = self.c
        var1 = (((adc_t >> 3) - (c["T1"] << 1)) * c["T2"]) >> 11
        var2 = (((((adc_t >> 4) - c["T1"]) * ((adc_t >> 4) - c["T1"])) >> 12) * c["T3"]) >> 14
        return _s32(var1 + var2)

    def temperature_cdeg(self, adc_t: int) -> int:
        return (self.t_fine(adc_t) * 5 + 128) >> 8

    def pressure_q24_8(self, adc_p: int, t_fine: int) -> int:
        """Pressure in Pa as unsigned Q24.8 (the datasheet's 64-bit routine)."""
        c = self.c
        var1 = t_fine - 128000
        var2 = var1 * var1 * c["P6"]
        var2 = var2 + ((var1 * c["P5"]) << 17)
        var2 = var2 + (c["P4"] << 35)
        var1 = ((var1 * var1 * c["P3"]) >> 8) + ((var1 * c["P2"]) << 12)
        var1 = (((1 << 47) + var1) * c["P1"]) >> 33
        if var1 == 0:
            return 0
        p = 1048576 - adc_p
        p = _cdiv(((p << 31) - var2) * 3125, var1)
        var1 = (c["P9"] * (p >> 13) * (p >> 13)) >> 25
        var2 = (c["P8"] * p) >> 19
        return _u32(((p + var1 + var2) >> 8) + (c["P7"] << 4))

    def humidity_q22_10(self, adc_h: int, t_fine: int) -> int:
        c = self.c
        v = t_fine - 76800
        v = (((((adc_h << 14) - (c["H4"] << 20) - (c["H5"] * v)) + 16384) >> 15)
             * (((((((v * c["H6"]) >> 10) * (((v * c["H3"]) >> 11) + 32768)) >> 10) + 2097152)
                 * c["H2"] + 8192) >> 14))
        v = v - (((((v >> 15) * (v >> 15)) >> 7) * c["H1"]) >> 4)
        v = min(max(v, 0), 419430400)
        return v >> 12


def _search(f, target, lo, hi, increasing=True):
    """Smallest x in [lo, hi] whose f(x) reaches target (f monotonic)."""
    while lo < hi:
        mid = (lo + hi) // 2
        v = f(mid)
        if (v < target) if increasing else (v > target):
            lo = mid + 1
        else:
            hi = mid
    return lo


class BME280(RegisterDevice):
    kind = "bme280"

    def __init__(self, world, *, address: int = 0x76, calibration: dict | None = None, **kw):
        super().__init__(world, address=address, **kw)
        self.comp = Compensation(calibration or DEFAULT_CALIBRATION)
        self.measurements = 0
        self._power_on()

    def _power_on(self):
        c = self.comp.c
        self.regs[:] = bytes(256)
        struct.pack_into("<HhhHhhhhhhhhB", self.regs, REG_CALIB00, c["T1"], c["T2"], c["T3"], c["P1"],
                         c["P2"], c["P3"], c["P4"], c["P5"], c["P6"], c["P7"], c["P8"], c["P9"], 0)
        self.regs[0xA1] = c["H1"]
        struct.pack_into("<hB", self.regs, REG_CALIB26, c["H2"], c["H3"])
        h4, h5 = c["H4"] & 0xFFF, c["H5"] & 0xFFF
        self.regs[0xE4] = h4 >> 4
        self.regs[0xE5] = (h4 & 0x0F) | ((h5 & 0x0F) << 4)
        self.regs[0xE6] = h5 >> 4
        self.regs[0xE7] = c["H6"] & 0xFF
        self.regs[REG_CHIP_ID] = CHIP_ID
        self._store(SKIPPED_20BIT, SKIPPED_20BIT, SKIPPED_16BIT)

    def _store(self, adc_p, adc_t, adc_h):
        d = self.regs
        d[0xF7], d[0xF8], d[0xF9] = adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4
        d[0xFA], d[0xFB], d[0xFC] = adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4
        d[0xFD], d[0xFE] = adc_h >> 8, adc_h & 0xFF

    def raw_for(self, temperature_c: float, pressure_pa: float, humidity_pct: float):
        """The raw ADC words this chip would report for the given physical values."""
        comp = self.comp
        adc_t = _search(comp.temperature_cdeg, round(temperature_c * 100), 0, (1 << 20) - 1)
        tf = comp.t_fine(adc_t)
        adc_p = _search(lambda a: comp.pressure_q24_8(a, tf), round(pressure_pa * 256), 0, (1 << 20) - 1,
                        increasing=False)
        adc_h = _search(lambda a: comp.humidity_q22_10(a, tf), round(humidity_pct * 1024), 0, (1 << 16) - 1)
        return adc_p, adc_t, adc_h

    def _measure(self):
        meas = self.regs[REG_CTRL_MEAS]
        osrs_t, osrs_p = meas >> 5, (meas >> 2) & 7
        osrs_h = self.regs[REG_CTRL_HUM] & 7
        w = self.world
        adc_p, adc_t, adc_h = self.raw_for(w.get("temperature_c"), w.get("pressure_pa"), w.get("humidity_pct"))
        self._store(adc_p if osrs_p else SKIPPED_20BIT, adc_t if osrs_t else SKIPPED_20BIT,
                    adc_h if osrs_h else SKIPPED_16BIT)
        self.measurements += 1

    def read_register(self, reg: int) -> int:
        if reg == REG_STATUS:
            return 0  # measurements complete at once: not measuring, NVM copied
        if reg == REG_DATA and (self.regs[REG_CTRL_MEAS] & 3) == 3:
            self._measure()  # normal mode: a fresh result for each burst read
        return self.regs[reg]

    def write_register(self, reg: int, value: int) -> None:
        if reg == REG_RESET:
            if value == 0xB6:
                self._power_on()
            return
        if reg in (REG_CTRL_HUM, REG_CONFIG):
            self.regs[reg] = value
        elif reg == REG_CTRL_MEAS:
            self.regs[reg] = value
            if value & 3 in (1, 2):  # forced mode: measure once, then back to sleep
                self._measure()
                self.regs[reg] = value & ~3
        # every other register is read-only
