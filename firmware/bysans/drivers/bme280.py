# Bosch BME280: temperature, pressure, humidity over I2C (datasheet BST-BME280-DS002).
# Forced mode, oversampling x1 for each quantity by default (§3.3.3, "weather monitoring" §3.5.1), and
# Bosch's integer compensation (§4.2.3): temperature in 0.01 degC, pressure from the 64-bit routine in Pa,
# humidity in permille (0.1 %RH).
from micropython import const
import time

from bysans.drivers.errors import OutOfRange, SensorMissing, SensorTimeout, missing

_REG_CALIB00 = const(0x88)  # dig_T1 .. dig_H1, 26 bytes (§5.4.1, table 16)
_REG_CHIP_ID = const(0xD0)
_REG_RESET = const(0xE0)
_REG_CALIB26 = const(0xE1)  # dig_H2 .. dig_H6, 7 bytes
_REG_CTRL_HUM = const(0xF2)
_REG_STATUS = const(0xF3)
_REG_CTRL_MEAS = const(0xF4)
_REG_CONFIG = const(0xF5)
_REG_DATA = const(0xF7)  # press_msb .. hum_lsb, 8 bytes, read in one burst (§4)
_CHIP_ID = const(0x60)
_RESET_WORD = const(0xB6)
_STATUS_MEASURING = const(0x08)
_STATUS_IM_UPDATE = const(0x01)
_MODE_FORCED = const(0x01)
_SKIPPED_20 = const(0x80000)  # what the data registers hold for a skipped measurement
_SKIPPED_16 = const(0x8000)
_POLL_MS = const(2)
_STARTUP_MS = const(10)  # §1: start-up time 2 ms; NVM copy after reset


def _s16(hi, lo):
    v = (hi << 8) | lo
    return v - 0x10000 if v & 0x8000 else v


def _s8(v):
    return v - 0x100 if v & 0x80 else v


class BME280:
    NAME = "bme280"

    def __init__(self, i2c, address=0x76, *, oversampling=1, sleep_ms=None):
        self._i2c = i2c
        self._addr = address
        self._sleep = sleep_ms or time.sleep_ms
        self._osrs = {1: 1, 2: 2, 4: 3, 8: 4, 16: 5}[oversampling]
        self._one = bytearray(1)
        self._data = bytearray(8)
        self.temp_cdeg = 0
        self.pressure_pa = 0
        self.humidity_permille = 0
        self._t_fine = 0
        chip = self._read_reg(_REG_CHIP_ID)
        if chip != _CHIP_ID:
            raise SensorMissing(self.NAME, "chip id 0x%02x at 0x%02x, not a BME280 (0x60)" % (chip, address))
        self._write_reg(_REG_RESET, _RESET_WORD)
        self._sleep(_STARTUP_MS)
        for _ in range(10):  # wait for the NVM copy (status.im_update, §5.4.4)
            if not self._read_reg(_REG_STATUS) & _STATUS_IM_UPDATE:
                break
            self._sleep(_POLL_MS)
        else:
            raise SensorTimeout(self.NAME, "NVM copy did not finish after reset")
        self._load_calibration()
        self._write_reg(_REG_CONFIG, 0)  # filter off, as for weather monitoring (§3.5.1)

    # ----- bus ---------------------------------------------------------------------------------------
    def _read_reg(self, reg):
        try:
            self._i2c.readfrom_mem_into(self._addr, reg, self._one)
        except OSError as e:
            raise missing(self.NAME, e)
        return self._one[0]

    def _write_reg(self, reg, value):
        self._one[0] = value
        try:
            self._i2c.writeto_mem(self._addr, reg, self._one)
        except OSError as e:
            raise missing(self.NAME, e)

    def _load_calibration(self):
        c = bytearray(26)
        h = bytearray(7)
        try:
            self._i2c.readfrom_mem_into(self._addr, _REG_CALIB00, c)
            self._i2c.readfrom_mem_into(self._addr, _REG_CALIB26, h)
        except OSError as e:
            raise missing(self.NAME, e)
        # §4.2.2, table 16: little-endian words; dig_T1 and dig_P1 unsigned.
        self.T1 = c[0] | (c[1] << 8)
        self.T2 = _s16(c[3], c[2])
        self.T3 = _s16(c[5], c[4])
        self.P1 = c[6] | (c[7] << 8)
        self.P2 = _s16(c[9], c[8])
        self.P3 = _s16(c[11], c[10])
        self.P4 = _s16(c[13], c[12])
        self.P5 = _s16(c[15], c[14])
        self.P6 = _s16(c[17], c[16])
        self.P7 = _s16(c[19], c[18])
        self.P8 = _s16(c[21], c[20])
        self.P9 = _s16(c[23], c[22])
        self.H1 = c[25]
        self.H2 = _s16(h[1], h[0])
        self.H3 = h[2]
        self.H4 = (_s8(h[3]) << 4) | (h[4] & 0x0F)  # 0xE4[7:0] / 0xE5[3:0], signed 12 bits
        self.H5 = (_s8(h[5]) << 4) | (h[4] >> 4)  # 0xE6[7:0] / 0xE5[7:4]
        self.H6 = _s8(h[6])

    # ----- measurement -------------------------------------------------------------------------------
    def read(self, timeout_ms=100):
        """One forced measurement: (temp_cdeg, pressure_pa, humidity_permille)."""
        osrs = self._osrs
        self._write_reg(_REG_CTRL_HUM, osrs)  # takes effect with the next ctrl_meas write (§5.4.3)
        self._write_reg(_REG_CTRL_MEAS, (osrs << 5) | (osrs << 2) | _MODE_FORCED)
        # §9.1 (appendix B): t_measure,max = 1.25 + 2.3*T + 2.3*P + 0.575 + 2.3*H + 0.575 ms; 9.3 ms at x1.
        self._sleep((1250 + 6900 * (1 << (osrs - 1)) + 1150) // 1000 + 1)
        for _ in range(timeout_ms // _POLL_MS + 1):
            if not self._read_reg(_REG_STATUS) & _STATUS_MEASURING and \
                    not self._read_reg(_REG_CTRL_MEAS) & 0x03:
                break
            self._sleep(_POLL_MS)
        else:
            raise SensorTimeout(self.NAME, "measurement not done in %d ms" % timeout_ms)
        d = self._data
        try:
            self._i2c.readfrom_mem_into(self._addr, _REG_DATA, d)
        except OSError as e:
            raise missing(self.NAME, e)
        adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        adc_h = (d[6] << 8) | d[7]
        if adc_t == _SKIPPED_20 or adc_p == _SKIPPED_20 or adc_h == _SKIPPED_16:
            raise OutOfRange(self.NAME, "measurement skipped")
        self.temp_cdeg = self.compensate_t(adc_t)
        self.pressure_pa = (self.compensate_p(adc_p) + 128) >> 8
        self.humidity_permille = (self.compensate_h(adc_h) * 10 + 512) >> 10
        return self.temp_cdeg, self.pressure_pa, self.humidity_permille

    # ----- Bosch's integer compensation (§4.2.3), verbatim in structure ---------------------------------
    def compensate_t(self, adc_t):
        """Temperature in 0.01 degC; sets t_fine for P and H."""
        var1 = (((adc_t >> 3) - (self.T1 << 1)) * self.T2) >> 11
        var2 = (((((adc_t >> 4) - self.T1) * ((adc_t >> 4) - self.T1)) >> 12) * self.T3) >> 14
        self._t_fine = var1 + var2
        return (self._t_fine * 5 + 128) >> 8

    def compensate_p(self, adc_p):
        """Pressure in Pa as unsigned Q24.8 (the 64-bit routine; MicroPython ints do not overflow)."""
        var1 = self._t_fine - 128000
        var2 = var1 * var1 * self.P6
        var2 = var2 + ((var1 * self.P5) << 17)
        var2 = var2 + (self.P4 << 35)
        var1 = ((var1 * var1 * self.P3) >> 8) + ((var1 * self.P2) << 12)
        var1 = (((1 << 47) + var1) * self.P1) >> 33
        if var1 == 0:
            return 0  # avoid a division by zero (uncalibrated chip)
        p = 1048576 - adc_p
        num = ((p << 31) - var2) * 3125
        p = num // var1 if num >= 0 else -((-num) // var1)  # C division truncates toward zero
        var1 = (self.P9 * (p >> 13) * (p >> 13)) >> 25
        var2 = (self.P8 * p) >> 19
        return ((p + var1 + var2) >> 8) + (self.P7 << 4)

    def compensate_h(self, adc_h):
        """Relative humidity in %RH as unsigned Q22.10."""
        v = self._t_fine - 76800
        v = (((((adc_h << 14) - (self.H4 << 20) - (self.H5 * v)) + 16384) >> 15) *
             (((((((v * self.H6) >> 10) * (((v * self.H3) >> 11) + 32768)) >> 10) + 2097152) *
               self.H2 + 8192) >> 14))
        v = v - (((((v >> 15) * (v >> 15)) >> 7) * self.H1) >> 4)
        if v < 0:
            v = 0
        if v > 419430400:
            v = 419430400
        return v >> 12
