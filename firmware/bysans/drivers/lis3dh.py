# ST LIS3DH 3-axis accelerometer over I2C (datasheet DocID17530 rev 2; application note AN3308).
# High-resolution mode (12 bits, §3.2.1 table 4), block data update, +-2 g by default. Readings in mg.
# Tilt: the angle between the sensor's z axis and gravity (the bin's lid faces up: 0 degrees).
# Pickup: the INT1 "high event" latch (AN3308 §6.3, §7.2) with the high-pass filter on, so a lift or
# shake past the threshold is remembered until read, even while the node sleeps.
from micropython import const
import math
import time

from bysans.drivers.errors import SensorMissing, SensorTimeout, missing

_REG_WHO_AM_I = const(0x0F)
_WHO_AM_I = const(0x33)
_REG_CTRL_REG1 = const(0x20)  # ODR[7:4] LPen Zen Yen Xen
_REG_CTRL_REG2 = const(0x21)  # HPM HPCF FDS HPCLICK HP_IA2 HP_IA1
_REG_CTRL_REG3 = const(0x22)  # I1_IA1 is bit 6
_REG_CTRL_REG4 = const(0x23)  # BDU BLE FS[1:0] HR ST SIM
_REG_CTRL_REG5 = const(0x24)  # LIR_INT1 is bit 3
_REG_REFERENCE = const(0x26)
_REG_STATUS = const(0x27)  # ZYXDA is bit 3
_REG_OUT_X_L = const(0x28)
_REG_INT1_CFG = const(0x30)
_REG_INT1_SRC = const(0x31)  # IA is bit 6; reading clears a latched interrupt
_REG_INT1_THS = const(0x32)
_REG_INT1_DURATION = const(0x33)
_AUTO_INCREMENT = const(0x80)  # §6.1.1: MSB of the sub-address
_ZYXDA = const(0x08)
_BDU = const(0x80)
_HR = const(0x08)
_XYZ_EN = const(0x07)
_IA = const(0x40)
_POLL_MS = const(5)
_ODR = {1: 1, 10: 2, 25: 3, 50: 4, 100: 5, 200: 6, 400: 7}  # CTRL_REG1 ODR codes (table 31)
_FS = {2: 0, 4: 1, 8: 2, 16: 3}
_MG_PER_DIGIT_HR = {2: 1, 4: 2, 8: 4, 16: 12}  # table 4, 12-bit high-resolution mode
_THS_MG_PER_LSB = {2: 16, 4: 32, 8: 62, 16: 186}  # INT1_THS (§8.21)


class LIS3DH:
    NAME = "lis3dh"

    def __init__(self, i2c, address=0x18, *, range_g=2, odr_hz=10, sleep_ms=None):
        self._i2c = i2c
        self._addr = address
        self._sleep = sleep_ms or time.sleep_ms
        self._one = bytearray(1)
        self._xyz = bytearray(6)
        self._range = range_g
        self._mg = _MG_PER_DIGIT_HR[range_g]
        self._period_ms = 1000 // odr_hz
        self.x_mg = self.y_mg = self.z_mg = 0
        who = self._rd(_REG_WHO_AM_I)
        if who != _WHO_AM_I:
            raise SensorMissing(self.NAME, "WHO_AM_I 0x%02x at 0x%02x, not a LIS3DH (0x33)" % (who, address))
        self._wr(_REG_CTRL_REG1, (_ODR[odr_hz] << 4) | _XYZ_EN)
        self._wr(_REG_CTRL_REG4, _BDU | (_FS[range_g] << 4) | _HR)

    def _rd(self, reg):
        try:
            self._i2c.readfrom_mem_into(self._addr, reg, self._one)
        except OSError as e:
            raise missing(self.NAME, e)
        return self._one[0]

    def _wr(self, reg, value):
        self._one[0] = value
        try:
            self._i2c.writeto_mem(self._addr, reg, self._one)
        except OSError as e:
            raise missing(self.NAME, e)

    def read_mg(self):
        """(x_mg, y_mg, z_mg) of the next sample (waits at most three sample periods)."""
        for _ in range(3 * self._period_ms // _POLL_MS + 1):
            if self._rd(_REG_STATUS) & _ZYXDA:
                break
            self._sleep(_POLL_MS)
        else:
            raise SensorTimeout(self.NAME, "no new sample")
        b = self._xyz
        try:
            self._i2c.readfrom_mem_into(self._addr, _REG_OUT_X_L | _AUTO_INCREMENT, b)
        except OSError as e:
            raise missing(self.NAME, e)
        # left-justified two's complement, 12 significant bits in high-resolution mode
        mg = self._mg
        v = (b[1] << 8) | b[0]
        self.x_mg = ((v - 0x10000 if v & 0x8000 else v) >> 4) * mg
        v = (b[3] << 8) | b[2]
        self.y_mg = ((v - 0x10000 if v & 0x8000 else v) >> 4) * mg
        v = (b[5] << 8) | b[4]
        self.z_mg = ((v - 0x10000 if v & 0x8000 else v) >> 4) * mg
        return self.x_mg, self.y_mg, self.z_mg

    def tilt_deg(self):
        """Degrees between the z axis and gravity for the last reading: 0 upright, 90 on its side."""
        return tilt_deg(self.x_mg, self.y_mg, self.z_mg)

    def arm_pickup(self, threshold_mg=250, duration_samples=1):
        """Latches INT1 when any axis changes by more than threshold_mg (high-pass filtered) — AN3308 §7.2."""
        ths = (threshold_mg + _THS_MG_PER_LSB[self._range] // 2) // _THS_MG_PER_LSB[self._range]
        self._wr(_REG_CTRL_REG2, 0x01)  # HP_IA1: high-pass filter on the INT1 path
        self._wr(_REG_CTRL_REG3, _IA)  # I1_IA1: route interrupt 1 to the INT1 pin
        self._wr(_REG_CTRL_REG5, 0x08)  # LIR_INT1: latch until INT1_SRC is read
        self._wr(_REG_INT1_THS, min(max(ths, 1), 127))
        self._wr(_REG_INT1_DURATION, duration_samples & 0x7F)
        self._rd(_REG_REFERENCE)  # sets the filter's reference to the present acceleration
        self._wr(_REG_INT1_CFG, 0x2A)  # OR of XHIE, YHIE, ZHIE
        self._rd(_REG_INT1_SRC)  # clear anything latched while arming

    def picked_up(self):
        """True when the pickup latch fired since the last call (reading INT1_SRC clears it)."""
        return bool(self._rd(_REG_INT1_SRC) & _IA)


def tilt_deg(x_mg, y_mg, z_mg):
    """Angle between (x, y, z) and the z axis in whole degrees (0..180)."""
    if x_mg == 0 and y_mg == 0 and z_mg == 0:
        return 0
    return int(math.degrees(math.atan2(math.sqrt(x_mg * x_mg + y_mg * y_mg), z_mg)) + 0.5)
