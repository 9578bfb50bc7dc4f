# Sensirion SCD40/SCD41: CO2, temperature and humidity over I2C (datasheet "SCD4x", version 1.x, §3).
# Periodic measurement (a new result every 5 s, §3.5.1) or, on an SCD41, single shot (§3.10.1).
# Conversions (§3.5.2): CO2 [ppm] = word; T = -45 + 175 * word / 65535 degC; RH = 100 * word / 65535 %.
from micropython import const
import time

from bysans.drivers.errors import OutOfRange, SensorTimeout
from bysans.drivers.sensirion import SensirionI2C

_CMD_START_PERIODIC = const(0x21B1)  # §3.5.1
_CMD_READ_MEASUREMENT = const(0xEC05)  # §3.5.2, 1 ms; NACK when the buffer is empty
_CMD_STOP_PERIODIC = const(0x3F86)  # §3.5.3, 500 ms
_CMD_SET_AMBIENT_PRESSURE = const(0xE000)  # §3.6.5, hPa
_CMD_DATA_READY = const(0xE4B8)  # §3.8.2, ready unless the low 11 bits are 0
_CMD_SERIAL_NUMBER = const(0x3682)  # §3.9.2, 3 words
_CMD_REINIT = const(0x3646)  # §3.9.5, 30 ms
_CMD_MEASURE_SINGLE_SHOT = const(0x219D)  # §3.10.1, SCD41 only, 5000 ms
_EXEC_MS = const(1)
_STOP_MS = const(500)
_REINIT_MS = const(30)
_SINGLE_SHOT_MS = const(5000)
_PERIOD_MS = const(5000)
_POLL_MS = const(100)
_READY_MASK = const(0x07FF)


class SCD4x(SensirionI2C):
    NAME = "scd4x"

    def __init__(self, i2c, address=0x62, *, sleep_ms=None):
        self._sleep = sleep_ms or time.sleep_ms
        self._init_transport(i2c, address, 3)
        self.co2_ppm = 0
        self.temp_cdeg = 0
        self.rh_permille = 0
        # A sensor left measuring (the MCU reset, the sensor did not) only takes a few commands: stop first.
        self._command(_CMD_STOP_PERIODIC)
        self._sleep(_STOP_MS)
        self._command(_CMD_SERIAL_NUMBER)
        self._sleep(_EXEC_MS)
        w = self._read_words(3)
        self.serial = (w[0] << 32) | (w[1] << 16) | w[2]
        self.periodic = False

    def start(self):
        """Starts periodic measurement: the first result is ready 5 s later."""
        self._command(_CMD_START_PERIODIC)
        self.periodic = True

    def stop(self):
        self._command(_CMD_STOP_PERIODIC)
        self._sleep(_STOP_MS)
        self.periodic = False

    def set_ambient_pressure(self, pressure_pa):
        """Pressure compensation (§3.6.5); allowed while measuring. From the BME280, for example."""
        self._command(_CMD_SET_AMBIENT_PRESSURE, (pressure_pa + 50) // 100)
        self._sleep(_EXEC_MS)

    def data_ready(self):
        self._command(_CMD_DATA_READY)
        self._sleep(_EXEC_MS)
        return (self._read_words(1)[0] & _READY_MASK) != 0

    def read(self, timeout_ms=_PERIOD_MS + 1000):
        """Waits for the next periodic result: (co2_ppm, temp_cdeg, rh_permille)."""
        if not self.periodic:
            self.start()
        for _ in range(timeout_ms // _POLL_MS + 1):
            if self.data_ready():
                return self._read_measurement()
            self._sleep(_POLL_MS)
        raise SensorTimeout(self.NAME, "no result within %d ms" % timeout_ms)

    def measure_single_shot(self):
        """One on-demand measurement (SCD41 only; idle mode): (co2_ppm, temp_cdeg, rh_permille)."""
        self._command(_CMD_MEASURE_SINGLE_SHOT)
        self._sleep(_SINGLE_SHOT_MS)
        for _ in range(10):
            if self.data_ready():
                return self._read_measurement()
            self._sleep(_POLL_MS)
        raise SensorTimeout(self.NAME, "single shot gave no result")

    def _read_measurement(self):
        self._command(_CMD_READ_MEASUREMENT)
        self._sleep(_EXEC_MS)
        w = self._read_words(3)
        if w[0] == 0:
            raise OutOfRange(self.NAME, "CO2 reading 0 (sensor not settled)")
        self.co2_ppm = w[0]
        self.temp_cdeg = self.temp_cdeg_from_word(w[1])
        self.rh_permille = self.rh_permille_from_word(w[2])
        return self.co2_ppm, self.temp_cdeg, self.rh_permille

    @staticmethod
    def temp_cdeg_from_word(word):
        """-45 + 175 * word / 65535 degC, in 0.01 degC, rounded."""
        return -4500 + (17500 * word + 32767) // 65535

    @staticmethod
    def rh_permille_from_word(word):
        """100 * word / 65535 %RH, in 0.1 %RH, rounded."""
        return (1000 * word + 32767) // 65535
