# ST VL53L1X time-of-flight distance sensor over I2C (16-bit register addresses), following ST's
# Ultra Lite Driver (UM2510 "VL53L1X API user manual", STSW-IMG009): SensorInit writes the default
# configuration to 0x2D..0x87, runs one measurement to settle, then ranging is started, polled for data
# ready (GPIO__TIO_HV_STATUS against the interrupt polarity), read and its interrupt cleared.
# Default configuration: long distance mode (up to 4 m), 100 ms timing budget.
from micropython import const
import time

from bysans.drivers.errors import OutOfRange, SensorMissing, SensorTimeout, missing

_REG_VHV_TIMEOUT_MACROP_LOOP_BOUND = const(0x0008)
_REG_0x000B = const(0x000B)
_REG_GPIO_HV_MUX_CTRL = const(0x0030)
_REG_GPIO_TIO_HV_STATUS = const(0x0031)
_REG_SYSTEM_INTERRUPT_CLEAR = const(0x0086)
_REG_SYSTEM_MODE_START = const(0x0087)
_REG_RESULT_RANGE_STATUS = const(0x0089)
_REG_RESULT_RANGE_MM = const(0x0096)  # RESULT__FINAL_CROSSTALK_CORRECTED_RANGE_MM_SD0
_REG_FIRMWARE_SYSTEM_STATUS = const(0x00E5)
_REG_IDENTIFICATION_MODEL_ID = const(0x010F)
_MODEL_ID = const(0xEACC)  # model id 0xEA, module type 0xCC
_CONFIG_FIRST = const(0x2D)
_START_RANGING = const(0x40)
_STOP_RANGING = const(0x00)
_POLL_MS = const(5)
_BUDGET_MS = const(100)
_STATUS_VALID = const(0)

# ULD VL51L1X_DEFAULT_CONFIGURATION, registers 0x2D..0x87 (the last byte left 0: ranging starts explicitly).
_DEFAULT_CONFIG = (
    b"\x00\x00\x00\x01\x02\x00\x02\x08\x00\x08\x10\x01\x01\x00\x00\x00\x00\xff\x00\x0f\x00\x00\x00\x00"
    b"\x00\x20\x0b\x00\x00\x02\x0a\x21\x00\x00\x05\x00\x00\x00\x00\xc8\x00\x00\x38\xff\x01\x00\x08\x00"
    b"\x00\x01\xdb\x0f\x01\xf1\x0d\x01\x68\x00\x80\x08\xb8\x00\x00\x00\x00\x0f\x89\x00\x00\x00\x00\x00"
    b"\x00\x00\x01\x0f\x0d\x0e\x0e\x00\x00\x02\xc7\xff\x9b\x00\x00\x00\x01\x01\x00"
)
# ULD VL53L1X_GetRangeStatus: RESULT__RANGE_STATUS & 0x1F -> 0 valid, 1 sigma fail, 2 signal fail,
# 4 out of bounds (phase), 7 wrap-around, ... 255 undefined.
_STATUS_MAP = b"\xff\xff\xff\x05\x02\x04\x01\x07\x03\x00\xff\xff\x09\x0d\xff\xff\xff\xff\x0a\x06\xff\xff\x0b\x0c"


class VL53L1X:
    NAME = "vl53l1x"

    def __init__(self, i2c, address=0x29, *, sleep_ms=None, boot_timeout_ms=100):
        self._i2c = i2c
        self._addr = address
        self._sleep = sleep_ms or time.sleep_ms
        self._one = bytearray(1)
        self._two = bytearray(2)
        self.dist_mm = 0
        self.range_status = 255
        for _ in range(boot_timeout_ms // _POLL_MS + 1):  # datasheet §2.4: tBOOT 1.2 ms
            if self._rd8(_REG_FIRMWARE_SYSTEM_STATUS) & 1:
                break
            self._sleep(_POLL_MS)
        else:
            raise SensorTimeout(self.NAME, "did not boot")
        model = self._rd16(_REG_IDENTIFICATION_MODEL_ID)
        if model != _MODEL_ID:
            raise SensorMissing(self.NAME, "model id 0x%04x, not a VL53L1X (0xeacc)" % model)
        self._write(_CONFIG_FIRST, _DEFAULT_CONFIG)
        # ULD SensorInit: one ranging to settle, then two VHV bounds and VHV from the last temperature.
        self.start()
        self._wait_ready(_BUDGET_MS * 3)
        self.clear_interrupt()
        self.stop()
        self._wr8(_REG_VHV_TIMEOUT_MACROP_LOOP_BOUND, 0x09)
        self._wr8(_REG_0x000B, 0)

    # ----- bus (16-bit register index, big-endian words) ---------------------------------------------
    def _rd8(self, reg):
        try:
            self._i2c.readfrom_mem_into(self._addr, reg, self._one, addrsize=16)
        except OSError as e:
            raise missing(self.NAME, e)
        return self._one[0]

    def _rd16(self, reg):
        try:
            self._i2c.readfrom_mem_into(self._addr, reg, self._two, addrsize=16)
        except OSError as e:
            raise missing(self.NAME, e)
        return (self._two[0] << 8) | self._two[1]

    def _wr8(self, reg, value):
        self._one[0] = value
        self._write(reg, self._one)

    def _write(self, reg, buf):
        try:
            self._i2c.writeto_mem(self._addr, reg, buf, addrsize=16)
        except OSError as e:
            raise missing(self.NAME, e)

    # ----- ranging -----------------------------------------------------------------------------------
    def start(self):
        self._wr8(_REG_SYSTEM_MODE_START, _START_RANGING)

    def stop(self):
        self._wr8(_REG_SYSTEM_MODE_START, _STOP_RANGING)

    def clear_interrupt(self):
        self._wr8(_REG_SYSTEM_INTERRUPT_CLEAR, 0x01)

    def data_ready(self):
        # ULD CheckForDataReady: ready when TIO_HV_STATUS bit 0 equals the interrupt polarity, which is
        # active high when GPIO_HV_MUX__CTRL bit 4 is 0.
        polarity = 0 if self._rd8(_REG_GPIO_HV_MUX_CTRL) & 0x10 else 1
        return (self._rd8(_REG_GPIO_TIO_HV_STATUS) & 1) == polarity

    def _wait_ready(self, timeout_ms):
        for _ in range(timeout_ms // _POLL_MS + 1):
            if self.data_ready():
                return
            self._sleep(_POLL_MS)
        raise SensorTimeout(self.NAME, "no result within %d ms" % timeout_ms)

    def read_mm(self, timeout_ms=_BUDGET_MS * 3):
        """One ranging: distance in mm. Raises OutOfRange when the chip flags the result invalid."""
        self.start()
        try:
            self._wait_ready(timeout_ms)
            raw = self._rd8(_REG_RESULT_RANGE_STATUS) & 0x1F
            self.range_status = _STATUS_MAP[raw] if raw < len(_STATUS_MAP) else 255
            self.dist_mm = self._rd16(_REG_RESULT_RANGE_MM)
            self.clear_interrupt()
        finally:
            self.stop()
        if self.range_status != _STATUS_VALID:
            raise OutOfRange(self.NAME, "range status %d" % self.range_status)
        return self.dist_mm
