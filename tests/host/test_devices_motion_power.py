"""LIS3DH and battery-divider models against the datasheets' number formats; the hardware bus lines."""

import pytest

from _simfakes import make_world
from fleet.sim.devices import Nack, build_buses
from fleet.sim.devices.battery import Battery
from fleet.sim.devices.lis3dh import LIS3DH
from fleet.sim.hwbus import HardwareBus


def s16(lo, hi):
    v = lo | hi << 8
    return v - 0x10000 if v & 0x8000 else v


def read_xyz(chip):
    chip.write(bytes([0x28 | 0x80]))
    b = chip.read(6)
    return s16(b[0], b[1]), s16(b[2], b[3]), s16(b[4], b[5])


def test_lis3dh_who_am_i():
    _, world = make_world()
    chip = LIS3DH(world)
    chip.write(b"\x0f")
    assert chip.read(1) == b"\x33"


@pytest.mark.parametrize("ctrl1, ctrl4, shift, mg_per_digit", [
    (0x27, 0x08, 4, 1),  # high resolution, +-2 g: 12 bits, 1 mg/digit
    (0x27, 0x18, 4, 2),  # high resolution, +-4 g
    (0x27, 0x00, 6, 4),  # normal, +-2 g: 10 bits, 4 mg/digit
    (0x2F, 0x00, 8, 16),  # low power, +-2 g: 8 bits, 16 mg/digit
])
def test_lis3dh_output_format(ctrl1, ctrl4, shift, mg_per_digit):
    _, world = make_world(accel_x_mg=-500.0, accel_y_mg=128.0, accel_z_mg=960.0)
    chip = LIS3DH(world)
    chip.write(bytes([0x20, ctrl1]))
    chip.write(bytes([0x23, ctrl4]))
    x, y, z = read_xyz(chip)
    assert x & ((1 << shift) - 1) == 0  # left-justified
    for got, want in zip((x, y, z), (-500, 128, 960)):
        assert abs((got >> shift) * mg_per_digit - want) <= mg_per_digit / 2


def test_lis3dh_no_auto_increment_without_msb():
    _, world = make_world(accel_x_mg=100.0)
    chip = LIS3DH(world)
    chip.write(b"\x20\x27")
    chip.write(b"\x28")
    a, b = chip.read(2)
    assert a == b  # the same register twice


def test_lis3dh_pickup_latch_and_int1_pin():
    _, world = make_world()
    buses = build_buses({"i2c": [{"id": 0}], "sensors": [
        {"type": "lis3dh", "bus": "i2c0", "address": 24, "int1_pin": 34}]}, world)
    chip = buses[0][24]
    for reg, v in ((0x20, 0x27), (0x21, 0x01), (0x22, 0x40), (0x23, 0x88), (0x24, 0x08), (0x32, 16),
                   (0x30, 0x2A)):
        chip.write(bytes([reg, v]))
    chip.write(b"\x26")
    chip.read(1)  # reference = at rest
    assert buses.pins.get(34) == 0
    world.set(accel_x_mg=800.0, accel_z_mg=200.0)
    world.set(accel_x_mg=0.0, accel_z_mg=1000.0)
    assert buses.pins.get(34) == 1  # latched although the bin is back at rest
    chip.write(b"\x31")
    assert chip.read(1)[0] & 0x40
    assert buses.pins.get(34) == 0
    chip.write(b"\x31")
    assert chip.read(1)[0] & 0x40 == 0


def test_lis3dh_latches_a_scenario_pickup_that_happens_while_nobody_reads():
    # The board sleeps through a 10-minute pickup: the real chip saw it and holds INT1 high until read.
    from fleet.sim.scenario import load_dict

    clock, world = make_world()
    buses = build_buses({"i2c": [{"id": 0}], "sensors": [
        {"type": "lis3dh", "bus": "i2c0", "address": 24, "int1_pin": 34}]}, world)
    chip = buses[0][24]
    world.scenario = load_dict({"bin": {"depth_mm": 1000, "offset_mm": 100},
                                "quantities": {"fill_pct": [[0, 10], ["1d", 90]]},
                                "events": [{"at": "2h", "type": "pickup", "fill_pct": 5, "tilt_s": 600,
                                            "tilt_deg": 120}]}, start_ms=clock.now_ms())
    for reg, v in ((0x20, 0x27), (0x21, 0x01), (0x22, 0x40), (0x23, 0x88), (0x24, 0x08), (0x32, 16),
                   (0x30, 0x2A)):
        chip.write(bytes([reg, v]))
    chip.write(b"\x26")
    chip.read(1)  # reference = at rest
    clock.advance(3600_000)
    assert buses.pins.get(34) == 0  # an hour later: nothing happened yet
    clock.advance(3 * 3600_000)  # the pickup came and went while nobody looked
    assert buses.pins.get(34) == 1
    chip.write(b"\x31")
    assert chip.read(1)[0] & 0x40
    assert buses.pins.get(34) == 0
    clock.advance(3600_000)
    assert buses.pins.get(34) == 0  # one pickup, latched once


def test_lis3dh_without_latch_misses_motion_it_did_not_see():
    # LIR_INT1 off (CTRL_REG5 = 0): INT1 follows the present acceleration only, as on the chip.
    from fleet.sim.scenario import load_dict

    clock, world = make_world()
    buses = build_buses({"i2c": [{"id": 0}], "sensors": [
        {"type": "lis3dh", "bus": "i2c0", "address": 24, "int1_pin": 34}]}, world)
    chip = buses[0][24]
    world.scenario = load_dict({"events": [{"at": "1h", "type": "tilt", "duration_s": 600, "tilt_deg": 90}]},
                               start_ms=clock.now_ms())
    for reg, v in ((0x20, 0x27), (0x21, 0x01), (0x22, 0x40), (0x23, 0x88), (0x32, 16), (0x30, 0x2A)):
        chip.write(bytes([reg, v]))
    chip.write(b"\x26")
    chip.read(1)
    clock.advance(2 * 3600_000)
    assert buses.pins.get(34) == 0


def test_battery_divider_and_adc_steps():
    _, world = make_world(battery_mv=3700.0)
    bat = Battery(world, adc_pin=35, divider_ohm=(100000, 100000))
    # 1.85 V on the pin, 12-bit steps over 3.1 V
    assert abs(bat.read_uv() - 1_850_000) <= 3_100_000 / 4095
    world.set(battery_mv=8000.0)
    assert bat.read_uv() == 3_100_000  # clipped at full scale


def test_battery_enable_pin():
    _, world = make_world(battery_mv=4000.0)
    buses = build_buses({"battery": {"adc_pin": 1, "divider_ohm": [390000, 100000], "enable_pin": 37,
                                     "enable_level": 0}}, world)
    hw = HardwareBus(clock=world.clock, buses=buses, actions=None)
    hw.handle("pin.w 37 1")
    assert hw.handle("adc.r 1") == "ok 0"
    hw.handle("pin.w 37 0")
    uv = int(hw.handle("adc.r 1").split()[1])
    assert abs(uv * 4.9 / 1000 - 4000) < 4


def test_hardware_bus_lines_for_the_virtual_board(tmp_path):
    from fleet import boards

    clock, world = make_world(distance_mm=1953.0)
    hw = HardwareBus(clock=clock, buses=build_buses(boards.load("virtual"), world), actions=None)
    assert hw.handle("i2c.scan 0") == "ok 24 41 98 105 118"
    assert hw.handle("uart.any 1") == "ok 0"
    assert hw.handle("uart.w 1 55") == "ok"
    assert hw.handle("uart.any 1") == "ok 4"
    assert hw.handle("uart.r 1 16") == "ok ff07a1a7"
    assert hw.handle("uart.r 1 16") == "ok "
    assert hw.handle("uart.w 2 55").startswith("err 19")  # no UART 2 on this board
    assert hw.handle("i2c.r 0 119 1").startswith("err 19")  # nobody at 0x77
    assert hw.handle("pin.r 5") == "ok 0"


def test_unknown_sensor_type_names_known_ones():
    _, world = make_world()
    with pytest.raises(KeyError, match="known: battery, bme280"):
        build_buses({"sensors": [{"type": "dht22", "bus": "i2c0", "address": 1}]}, world)


def test_nack_is_exported():
    assert issubclass(Nack, Exception)
