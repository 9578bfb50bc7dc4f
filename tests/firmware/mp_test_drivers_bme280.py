# BME280 driver against a fake chip loaded with the BMP280 datasheet's worked example (§3.12):
# adc_T 519888 -> 25.08 degC (t_fine 128422), adc_P 415148 -> 100653.27 Pa (double), 25767233/256 (int64).
# mp: -X heapsize=256K
from fakes import FakeBME280, FakeClock, FakeI2C

from bysans.drivers.bme280 import BME280
from bysans.drivers.errors import OutOfRange, SensorError, SensorMissing


def _setup():
    clock = FakeClock()
    bus = FakeI2C()
    chip = bus.add(0x76, FakeBME280())
    return bus, chip, BME280(bus, 0x76, sleep_ms=clock.sleep_ms), clock


def test_reads_calibration_as_datasheet_lays_it_out():
    _, _, s, _ = _setup()
    assert (s.T1, s.T2, s.T3) == (27504, 26435, -1000)
    assert (s.P1, s.P2, s.P3, s.P4, s.P5, s.P6, s.P7, s.P8, s.P9) == (
        36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
    assert (s.H1, s.H2, s.H3, s.H4, s.H5, s.H6) == (75, 362, 0, 313, 50, 30)


def test_negative_12bit_humidity_trim_is_sign_extended():
    bus = FakeI2C()
    bus.add(0x76, FakeBME280({"H4": -200, "H5": -7, "H6": -3}))
    s = BME280(bus, 0x76, sleep_ms=FakeClock().sleep_ms)
    assert (s.H4, s.H5, s.H6) == (-200, -7, -3)


def test_worked_example_temperature_and_pressure():
    _, _, s, _ = _setup()
    t, p, h = s.read()
    assert s._t_fine == 128422
    assert t == 2508
    assert p == 100653  # 25767233 / 256 = 100653.25 Pa, rounded
    assert 0 <= h <= 1000


def test_humidity_matches_datasheet_float_formula():
    # §4.2.3 double-precision formula, evaluated here independently of the integer routine.
    _, chip, s, _ = _setup()
    for adc_h in (20000, 30000, 40000):
        chip.raw = (415148, 519888, adc_h)
        _, _, h = s.read()
        tf = 128422.0
        v = tf - 76800.0
        v = (adc_h - (313 * 64.0 + 50 / 16384.0 * v)) * (
            362 / 65536.0 * (1.0 + 30 / 67108864.0 * v * (1.0 + 0 / 67108864.0 * v)))
        v = v * (1.0 - 75 * v / 524288.0)
        v = min(max(v, 0.0), 100.0)
        assert abs(h - v * 10) <= 1, (adc_h, h, v)


def test_forced_mode_each_read_measures_once():
    _, chip, s, _ = _setup()
    s.read()
    s.read()
    assert chip.measurements == 2
    assert chip.regs[0xF2] & 7 == 1 and chip.regs[0xF4] >> 5 == 1


def test_missing_chip_is_named_error():
    try:
        BME280(FakeI2C(), 0x76, sleep_ms=FakeClock().sleep_ms)
    except SensorMissing as e:
        assert e.args[0] == "bme280"
    else:
        assert False, "no error"


def test_wrong_chip_id_is_missing():
    bus = FakeI2C()
    chip = bus.add(0x76, FakeBME280())
    chip.regs[0xD0] = 0x58  # a BMP280: no humidity
    try:
        BME280(bus, 0x76, sleep_ms=FakeClock().sleep_ms)
    except SensorMissing:
        pass
    else:
        assert False


def test_chip_lost_after_init_raises_sensor_error():
    _, chip, s, _ = _setup()
    chip.absent = True
    try:
        s.read()
    except SensorError:
        pass
    else:
        assert False


def test_skipped_measurement_is_out_of_range():
    _, chip, s, _ = _setup()
    chip.raw = (0x80000, 519888, 30000)
    try:
        s.read()
    except OutOfRange:
        pass
    else:
        assert False
