# SCD4x and SPS30 drivers against fake chips; the Sensirion CRC against the datasheets' vectors.
# mp: -X heapsize=256K
import time

from fakes import FakeClock, FakeI2C, FakeSCD4x, FakeSPS30, sensirion_crc

from bysans.drivers.errors import CrcError, SensorMissing, SensorTimeout
from bysans.drivers.scd4x import SCD4x
from bysans.drivers.sensirion import crc8
from bysans.drivers.sps30 import SPS30


def test_crc_check_value_from_datasheet():
    assert crc8(b"\xbe\xef") == 0x92  # SCD4x §3.11 / SPS30 §6.2 check value
    assert sensirion_crc(b"\xbe\xef") == 0x92


def test_crc_published_words():
    # SCD4x datasheet examples: serial number words f896/31, 9f07/c2; measurement 6667/a2, 5eb9/3c;
    # SPS30 start measurement argument 0x0300 (float format) -> 0xAC.
    for word, crc in ((b"\xf8\x96", 0x31), (b"\x9f\x07", 0xC2), (b"\x66\x67", 0xA2), (b"\x5e\xb9", 0x3C),
                      (b"\x03\x00", 0xAC)):
        assert crc8(word) == crc, word


def test_crc_agrees_with_independent_implementation():
    for w in range(0, 65536, 251):
        b = bytes([w >> 8, w & 0xFF])
        assert crc8(b) == sensirion_crc(b)


def _scd():
    clock = FakeClock()
    bus = FakeI2C()
    chip = bus.add(0x62, FakeSCD4x(clock))
    return clock, chip, SCD4x(bus, sleep_ms=clock.sleep_ms)


def test_scd4x_datasheet_example_measurement():
    clock, chip, s = _scd()
    assert s.serial == 0xF8969F073BB3
    co2, t, rh = s.read()
    assert co2 == 500
    assert t == 2500  # -45 + 175 * 0x6667 / 65535 = 25.000 degC
    assert rh == 370  # 100 * 0x5EB9 / 65535 = 37.0 %
    assert clock.now_ms >= 5000  # waited for the first periodic result


def test_scd4x_conversion_extremes():
    assert SCD4x.temp_cdeg_from_word(0) == -4500
    assert SCD4x.temp_cdeg_from_word(65535) == 13000
    assert SCD4x.rh_permille_from_word(65535) == 1000


def test_scd4x_stops_a_running_measurement_first():
    clock = FakeClock()
    bus = FakeI2C()
    chip = bus.add(0x62, FakeSCD4x(clock))
    chip.periodic, chip.started_ms = True, 0  # left measuring by a previous boot
    SCD4x(bus, sleep_ms=clock.sleep_ms)
    assert chip.commands[:2] == [0x3F86, 0x3682]


def test_scd4x_crc_error():
    clock, chip, s = _scd()
    chip.corrupt_word = 1
    try:
        s.read()
    except CrcError as e:
        assert e.args[0] == "scd4x"
    else:
        assert False


def test_scd4x_pressure_compensation_argument():
    clock, chip, s = _scd()
    s.start()
    s.set_ambient_pressure(101325)
    assert chip.pressure_hpa == 1013


def test_scd4x_missing():
    try:
        SCD4x(FakeI2C(), sleep_ms=FakeClock().sleep_ms)
    except SensorMissing:
        pass
    else:
        assert False


def test_scd4x_wait_is_bounded():
    clock, chip, s = _scd()
    s.start()
    chip.periodic = False  # stuck: never ready
    try:
        s.read(timeout_ms=2000)
    except SensorTimeout:
        assert clock.now_ms < 10000
    else:
        assert False


def test_sps30_reads_uint16_values():
    clock = FakeClock()
    bus = FakeI2C()
    chip = bus.add(0x69, FakeSPS30(clock))
    s = SPS30(bus, sleep_ms=clock.sleep_ms)
    assert s.firmware == (2, 1)
    assert s.read() == (3, 7, 9, 11)
    assert list(s.values) == [3, 7, 9, 11, 20, 24, 25, 25, 25, 540]
    assert 0x0010 in chip.commands


def test_sps30_crc_error_and_missing():
    clock = FakeClock()
    bus = FakeI2C()
    chip = bus.add(0x69, FakeSPS30(clock))
    s = SPS30(bus, sleep_ms=clock.sleep_ms)
    chip.corrupt_word = 9
    try:
        s.read()
    except CrcError:
        pass
    else:
        assert False
    try:
        SPS30(FakeI2C(), sleep_ms=clock.sleep_ms)
    except SensorMissing:
        pass
    else:
        assert False


class _FastClock:
    """Simulated time as a virtual board keeps it: real time multiplied by the speed-up."""

    def __init__(self, speed):
        self.speed = speed
        self._t0 = time.ticks_us()

    @property
    def now_ms(self):
        return time.ticks_diff(time.ticks_us(), self._t0) * self.speed // 1000


class _FakeVBoard:
    """What bysans.hal.virtual needs of the simulator's `_vboard` module for its clock."""

    def __init__(self, speed):
        self.speed = speed
        self.board = {"name": "virtual"}


def test_virtual_sleep_lasts_at_least_the_simulated_time_asked():
    from bysans.hal.virtual import VirtualBoard

    board, clock = VirtualBoard(_FakeVBoard(60)), _FastClock(60)
    for ms in (1, 59, 61, 100, 500):
        t = clock.now_ms
        board.sleep_ms(ms)
        assert clock.now_ms - t >= ms, (ms, clock.now_ms - t)  # as time.sleep_ms on a board: never shorter


def test_scd4x_waits_out_its_5_s_period_on_a_virtual_board_at_speed_60():
    from bysans.hal.virtual import VirtualBoard

    board, clock = VirtualBoard(_FakeVBoard(60)), _FastClock(60)
    bus = FakeI2C()
    bus.add(0x62, FakeSCD4x(clock))
    s = SCD4x(bus, sleep_ms=board.sleep_ms)
    t = clock.now_ms
    assert s.read()[0] == 500  # before: SensorTimeout, 61 polls of 100 ms lasting 60 ms each
    assert clock.now_ms - t >= 5000
