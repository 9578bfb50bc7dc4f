"""The BME280 model against Bosch's datasheet: the worked example, the register map, and its readings
decoded with the datasheet's floating-point formulas (written here, apart from the model's integer code)."""

import struct

import pytest

from _simfakes import make_world
from fleet.sim.devices.bme280 import BME280, DEFAULT_CALIBRATION, Compensation


# ----- the datasheet's double-precision compensation (BME280 §8.1 / BMP280 §3.12) ----------------------
def t_float(adc_t, c):
    var1 = (adc_t / 16384.0 - c["T1"] / 1024.0) * c["T2"]
    var2 = ((adc_t / 131072.0 - c["T1"] / 8192.0) * (adc_t / 131072.0 - c["T1"] / 8192.0)) * c["T3"]
    t_fine = var1 + var2
    return t_fine / 5120.0, t_fine


def p_float(adc_p, t_fine, c):
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * c["P6"] / 32768.0
    var2 = var2 + var1 * c["P5"] * 2.0
    var2 = var2 / 4.0 + c["P4"] * 65536.0
    var1 = (c["P3"] * var1 * var1 / 524288.0 + c["P2"] * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * c["P1"]
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = c["P9"] * p * p / 2147483648.0
    var2 = p * c["P8"] / 32768.0
    return p + (var1 + var2 + c["P7"]) / 16.0


def h_float(adc_h, t_fine, c):
    h = t_fine - 76800.0
    h = (adc_h - (c["H4"] * 64.0 + c["H5"] / 16384.0 * h)) * (
        c["H2"] / 65536.0 * (1.0 + c["H6"] / 67108864.0 * h * (1.0 + c["H3"] / 67108864.0 * h)))
    h = h * (1.0 - c["H1"] * h / 524288.0)
    return min(max(h, 0.0), 100.0)


def test_worked_example_bmp280_datasheet():
    # BMP280 datasheet §3.12: adc_T 519888 -> t_fine 128422, 25.08 degC; adc_P 415148 -> 100653.27 Pa.
    comp = Compensation(DEFAULT_CALIBRATION)
    assert comp.t_fine(519888) == 128422
    assert comp.temperature_cdeg(519888) == 2508
    q24_8 = comp.pressure_q24_8(415148, 128422)
    assert abs(q24_8 / 256 - 100653.27) < 0.05
    t, tf = t_float(519888, DEFAULT_CALIBRATION)
    assert abs(t - 25.08) < 0.005
    assert abs(p_float(415148, tf, DEFAULT_CALIBRATION) - 100653.27) < 0.01


@pytest.mark.parametrize("adc_h", [15000, 25000, 32000, 40000])
def test_integer_humidity_matches_float_formula(adc_h):
    comp = Compensation(DEFAULT_CALIBRATION)
    tf = comp.t_fine(519888)
    assert abs(comp.humidity_q22_10(adc_h, tf) / 1024 - h_float(adc_h, tf, DEFAULT_CALIBRATION)) < 0.02


def _calibration_from_registers(regs):
    """Table 16 of the datasheet, decoded with struct."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9 = struct.unpack_from("<HhhHhhhhhhhh", regs, 0x88)
    h2, h3 = struct.unpack_from("<hB", regs, 0xE1)
    e4, e5, e6 = regs[0xE4], regs[0xE5], regs[0xE6]
    h4 = struct.unpack("b", bytes([e4]))[0] * 16 | (e5 & 0x0F)
    h5 = struct.unpack("b", bytes([e6]))[0] * 16 | (e5 >> 4)
    return dict(T1=t1, T2=t2, T3=t3, P1=p1, P2=p2, P3=p3, P4=p4, P5=p5, P6=p6, P7=p7, P8=p8, P9=p9,
                H1=regs[0xA1], H2=h2, H3=h3, H4=h4, H5=h5, H6=struct.unpack("b", bytes([regs[0xE7]]))[0])


def _forced(chip, osrs_t=1, osrs_p=1, osrs_h=1):
    chip.write(bytes([0xF2, osrs_h]))
    chip.write(bytes([0xF4, (osrs_t << 5) | (osrs_p << 2) | 1]))
    chip.write(b"\xf7")
    d = chip.read(8)
    return (d[0] << 12 | d[1] << 4 | d[2] >> 4, d[3] << 12 | d[4] << 4 | d[5] >> 4, d[6] << 8 | d[7])


def test_register_map_chip_id_and_calibration_layout():
    _, world = make_world()
    chip = BME280(world)
    chip.write(b"\xd0")
    assert chip.read(1) == b"\x60"
    assert _calibration_from_registers(chip.regs) == DEFAULT_CALIBRATION


@pytest.mark.parametrize("t, p, h", [(21.0, 101325.0, 45.0), (-18.5, 96000.0, 90.0), (38.2, 103000.0, 12.5)])
def test_forced_measurement_decodes_to_world_values(t, p, h):
    _, world = make_world(temperature_c=t, pressure_pa=p, humidity_pct=h)
    chip = BME280(world)
    adc_p, adc_t, adc_h = _forced(chip)
    cal = _calibration_from_registers(chip.regs)
    t_c, tf = t_float(adc_t, cal)
    assert abs(t_c - t) < 0.011  # the chip's resolution is 0.01 degC
    assert abs(p_float(adc_p, tf, cal) - p) < 1.5  # about 0.2 Pa per count at 20-bit oversampling x1
    assert abs(h_float(adc_h, tf, cal) - h) < 0.05
    chip.write(b"\xf4")
    assert chip.read(1)[0] & 3 == 0  # back to sleep mode after a forced measurement (§3.3.3)


def test_skipped_measurements_read_0x80000():
    _, world = make_world()
    chip = BME280(world)
    adc_p, adc_t, adc_h = _forced(chip, osrs_p=0, osrs_h=0)
    assert (adc_p, adc_h) == (0x80000, 0x8000)
    assert adc_t != 0x80000


def test_soft_reset_clears_control_registers():
    _, world = make_world()
    chip = BME280(world)
    chip.write(b"\xf2\x05")
    chip.write(b"\xe0\xb6")
    chip.write(b"\xf2")
    assert chip.read(1) == b"\x00"
