# LIS3DH accelerometer (tilt, pickup latch) and the battery divider.
# mp: -X heapsize=256K
from fakes import FakeADC, FakeClock, FakeI2C, FakeLIS3DH, FakePin

from bysans.drivers.battery import Battery
from bysans.drivers.errors import OutOfRange, SensorMissing
from bysans.drivers.lis3dh import LIS3DH, tilt_deg


def _acc(**kw):
    clock = FakeClock()
    bus = FakeI2C()
    chip = bus.add(0x18, FakeLIS3DH())
    return chip, LIS3DH(bus, sleep_ms=clock.sleep_ms, **kw)


def test_lis3dh_configures_hr_mode_and_reads_mg():
    chip, s = _acc()
    assert chip.regs[0x20] == 0x27  # 10 Hz, x/y/z enabled, normal (not low-power)
    assert chip.regs[0x23] == 0x88  # BDU, +-2 g, high resolution
    chip.accel_mg = (-120, 35, 987)
    assert s.read_mg() == (-120, 35, 987)  # 1 mg/digit at +-2 g in HR mode


def test_lis3dh_4g_range_resolution():
    chip, s = _acc(range_g=4)
    chip.accel_mg = (1500, -2000, 0)
    x, y, z = s.read_mg()
    assert abs(x - 1500) <= 2 and abs(y + 2000) <= 2 and z == 0


def test_tilt_angles():
    assert tilt_deg(0, 0, 1000) == 0
    assert tilt_deg(1000, 0, 0) == 90
    assert tilt_deg(0, 0, -1000) == 180
    assert tilt_deg(707, 0, 707) == 45


def test_lis3dh_pickup_latch():
    chip, s = _acc()
    s.arm_pickup(250)
    assert chip.regs[0x32] == 16  # 250 mg / 16 mg per LSB at +-2 g
    assert chip.regs[0x30] == 0x2A
    assert not s.picked_up()
    chip.shake()
    assert s.picked_up()
    assert not s.picked_up()  # reading INT1_SRC cleared the latch


def test_lis3dh_missing():
    try:
        LIS3DH(FakeI2C(), sleep_ms=FakeClock().sleep_ms)
    except SensorMissing:
        pass
    else:
        assert False


def test_battery_divider():
    # TTGO LoRa32: 100k/100k, so 3.7 V battery -> 1.85 V on the pin
    b = Battery(FakeADC(1850000), divider_ohm=(100000, 100000), sleep_ms=FakeClock().sleep_ms)
    assert b.read_mv() == 3700
    # Heltec V3: 390k/100k -> factor 4.9
    b = Battery(FakeADC(816327), divider_ohm=(390000, 100000), sleep_ms=FakeClock().sleep_ms)
    assert abs(b.read_mv() - 4000) <= 1


def test_battery_enable_pin_only_while_measuring():
    pin = FakePin(1)
    adc = FakeADC(800000, enable=pin, enable_level=0)
    b = Battery(adc, divider_ohm=(390000, 100000), enable=pin, enable_level=0, sleep_ms=FakeClock().sleep_ms)
    assert pin.v == 1
    assert b.read_mv() == 3920
    assert pin.v == 1 and 0 in pin.history


def test_battery_no_voltage():
    b = Battery(FakeADC(0), sleep_ms=FakeClock().sleep_ms)
    try:
        b.read_mv()
    except OutOfRange:
        pass
    else:
        assert False
