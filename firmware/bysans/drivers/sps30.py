# Sensirion SPS30 particulate matter sensor over I2C (datasheet "SPS30", version 1.0 / D1, §5, §6.3).
# Output format: big-endian unsigned 16-bit integers (0x05, firmware >= 2.0): mass concentrations in
# ug/m3, number concentrations in #/cm3, typical particle size in nm. A new result every second (§4.3).
from micropython import const
from array import array
import time

from bysans.drivers.errors import SensorMissing, SensorTimeout
from bysans.drivers.sensirion import SensirionI2C

_CMD_START = const(0x0010)  # §6.3.1: argument word 0x0500 (format uint16, dummy byte)
_CMD_STOP = const(0x0104)  # §6.3.2
_CMD_DATA_READY = const(0x0202)  # §6.3.3: word 0x0001 when new values are ready
_CMD_READ_VALUES = const(0x0300)  # §6.3.4: 10 words
_CMD_SLEEP = const(0x1001)  # §6.3.5
_CMD_WAKE = const(0x1103)  # §6.3.6: the first one may be NACKed while the interface wakes
_CMD_CLEAN = const(0x5607)  # §6.3.7
_CMD_VERSION = const(0xD100)  # §6.3.11: firmware major.minor
_CMD_RESET = const(0xD304)  # §6.3.14, 100 ms
_FORMAT_UINT16 = const(0x0500)
_EXEC_MS = const(20)
_RESET_MS = const(100)
_POLL_MS = const(100)
_PERIOD_MS = const(1000)


class SPS30(SensirionI2C):
    NAME = "sps30"

    def __init__(self, i2c, address=0x69, *, sleep_ms=None):
        self._sleep = sleep_ms or time.sleep_ms
        self._init_transport(i2c, address, 10)
        self.values = array("H", [0] * 10)  # pm1, pm2.5, pm4, pm10 ug/m3; nc0.5..nc10 #/cm3; size nm
        self._command(_CMD_RESET)
        self._sleep(_RESET_MS)
        self._command(_CMD_VERSION)
        self._sleep(_EXEC_MS)
        w = self._read_words(1)[0]
        self.firmware = (w >> 8, w & 0xFF)
        self.measuring = False

    def start(self):
        self._command(_CMD_START, _FORMAT_UINT16)
        self._sleep(_EXEC_MS)
        self.measuring = True

    def stop(self):
        self._command(_CMD_STOP)
        self._sleep(_EXEC_MS)
        self.measuring = False

    def sleep(self):
        """Low-power sleep (idle mode only, §6.3.5)."""
        self._command(_CMD_SLEEP)
        self._sleep(5)

    def wake(self):
        try:
            self._command(_CMD_WAKE)  # wakes the interface; may be NACKed
        except SensorMissing:
            pass
        self._command(_CMD_WAKE)
        self._sleep(5)

    def clean_fan(self):
        self._command(_CMD_CLEAN)
        self._sleep(_EXEC_MS)

    def data_ready(self):
        self._command(_CMD_DATA_READY)
        self._sleep(_EXEC_MS)
        return self._read_words(1)[0] == 1

    def read(self, timeout_ms=_PERIOD_MS * 3):
        """Waits for the next result: (pm1_0, pm2_5, pm4_0, pm10) in ug/m3. All ten are in self.values."""
        if not self.measuring:
            self.start()
        for _ in range(timeout_ms // _POLL_MS + 1):
            if self.data_ready():
                self._command(_CMD_READ_VALUES)
                self._sleep(_EXEC_MS)
                w = self._read_words(10)
                v = self.values
                for i in range(10):
                    v[i] = w[i]
                return v[0], v[1], v[2], v[3]
            self._sleep(_POLL_MS)
        raise SensorTimeout(self.NAME, "no result within %d ms" % timeout_ms)
