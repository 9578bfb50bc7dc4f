# Distance drivers: VL53L1X (time of flight, I2C with 16-bit registers) and JSN-SR04T (ultrasonic, UART).
# mp: -X heapsize=256K
from fakes import FakeClock, FakeI2C, FakeJSN, FakeVL53L1X

from bysans.drivers.errors import CrcError, OutOfRange, SensorMissing
from bysans.drivers.jsn_sr04t import JSNSR04T, parse_frame
from bysans.drivers.vl53l1x import VL53L1X


def _tof():
    clock = FakeClock()
    bus = FakeI2C()
    chip = bus.add(0x29, FakeVL53L1X(clock))
    return clock, chip, VL53L1X(bus, sleep_ms=clock.sleep_ms)


def test_vl53l1x_init_writes_uld_default_configuration():
    clock, chip, s = _tof()
    written = {}
    for reg, v in chip.writes:
        written.setdefault(reg, v)
    # a few documented bytes of the ULD default configuration
    assert written[0x30] == 0x01  # interrupt active high
    assert written[0x46] == 0x20  # interrupt on new sample ready
    assert (written[0x64], written[0x65]) == (0x01, 0x68)  # sigma threshold 90 mm (14.2)
    assert (written[0x6C], written[0x6D], written[0x6E], written[0x6F]) == (0, 0, 0x0F, 0x89)
    assert chip.regs[0x0008] == 0x09 and chip.regs[0x000B] == 0
    assert chip.regs[0x0087] == 0x00  # stopped after init


def test_vl53l1x_reads_distance():
    clock, chip, s = _tof()
    chip.distance_mm = 873
    assert s.read_mm() == 873
    assert chip.regs[0x0087] == 0x00


def test_vl53l1x_invalid_range_status():
    clock, chip, s = _tof()
    chip.status_raw = 4  # signal fail
    try:
        s.read_mm()
    except OutOfRange:
        assert s.range_status == 2
    else:
        assert False


def test_vl53l1x_missing_and_wrong_model():
    clock = FakeClock()
    try:
        VL53L1X(FakeI2C(), sleep_ms=clock.sleep_ms)
    except SensorMissing:
        pass
    else:
        assert False
    bus = FakeI2C()
    chip = bus.add(0x29, FakeVL53L1X(clock))
    chip.regs[0x0110] = 0xAA
    try:
        VL53L1X(bus, sleep_ms=clock.sleep_ms)
    except SensorMissing:
        pass
    else:
        assert False


def test_jsn_frame_vector():
    # DFRobot's worked frame: FF 07 A1 A7 -> 0x07A1 = 1953 mm
    assert parse_frame(b"\xff\x07\xa1\xa7") == 1953
    assert parse_frame(b"\xff\x07\xa1\xa8") is None


def test_jsn_controlled_mode_triggers_and_reads():
    clock = FakeClock()
    uart = FakeJSN(clock, "controlled")
    s = JSNSR04T(uart, sleep_ms=clock.sleep_ms)
    uart.distance_mm = 1953
    assert s.read_mm() == 1953
    uart.distance_mm = 2500
    assert s.read_mm() == 2500


def test_jsn_auto_mode_skips_stale_frames_and_resyncs():
    clock = FakeClock()
    uart = FakeJSN(clock, "auto")
    s = JSNSR04T(uart, mode="auto", sleep_ms=clock.sleep_ms)
    uart.distance_mm = 400
    clock.sleep_ms(300)  # three old frames waiting
    uart.distance_mm = 812
    uart.rx += b"\x07\xff"  # noise: a torn frame before the next one
    assert s.read_mm() == 812


def test_jsn_bad_checksum_is_crc_error():
    clock = FakeClock()
    uart = FakeJSN(clock, "controlled")
    uart.corrupt = True
    try:
        JSNSR04T(uart, sleep_ms=clock.sleep_ms).read_mm()
    except CrcError:
        pass
    else:
        assert False


def test_jsn_silence_is_missing_and_bounded():
    clock = FakeClock()
    uart = FakeJSN(clock, "controlled")
    uart.silent = True
    try:
        JSNSR04T(uart, sleep_ms=clock.sleep_ms).read_mm(timeout_ms=300)
    except SensorMissing:
        assert clock.now_ms <= 400
    else:
        assert False


def test_jsn_no_echo():
    clock = FakeClock()
    uart = FakeJSN(clock, "controlled")
    uart.distance_mm = 0
    try:
        JSNSR04T(uart, sleep_ms=clock.sleep_ms).read_mm()
    except OutOfRange:
        pass
    else:
        assert False
