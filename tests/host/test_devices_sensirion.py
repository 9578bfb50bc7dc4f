"""SCD4x and SPS30 models against their datasheets: CRC vectors, conversions, command rules, timing."""

import struct

import pytest

from _simfakes import make_world
from fleet.sim.devices import Nack
from fleet.sim.devices.scd4x import SCD4x, crc8
from fleet.sim.devices.sps30 import SPS30


def crc_reference(data: bytes) -> int:
    """CRC-8 with the datasheets' parameters, bit-reflected nowhere, computed MSB-first from a table."""
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = ((c << 1) ^ 0x31) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    crc = 0xFF
    for b in data:
        crc = table[crc ^ b]
    return crc


def split_words(raw: bytes):
    assert len(raw) % 3 == 0
    out = []
    for i in range(0, len(raw), 3):
        assert crc_reference(raw[i:i + 2]) == raw[i + 2], f"bad CRC in word {i // 3}"
        out.append(int.from_bytes(raw[i:i + 2], "big"))
    return out


def cmd(chip, c, n=0, arg=None):
    data = c.to_bytes(2, "big")
    if arg is not None:
        a = arg.to_bytes(2, "big")
        data += a + bytes([crc_reference(a)])
    chip.write(data)
    return split_words(chip.read(3 * n)) if n else None


def test_crc_vectors():
    assert crc8(b"\xbe\xef") == 0x92  # both datasheets' check value
    assert crc_reference(b"\xbe\xef") == 0x92
    # SCD4x datasheet examples: f896 -> 31, 9f07 -> c2, 6667 -> a2, 5eb9 -> 3c
    for word, c in ((b"\xf8\x96", 0x31), (b"\x9f\x07", 0xC2), (b"\x66\x67", 0xA2), (b"\x5e\xb9", 0x3C)):
        assert crc8(word) == c


@pytest.mark.parametrize("co2, t, rh", [(500, 25.0, 37.0), (2400, -10.0, 95.5), (400, 42.7, 5.0)])
def test_scd4x_periodic_measurement(co2, t, rh):
    clock, world = make_world(co2_ppm=co2, temperature_c=t, humidity_pct=rh)
    chip = SCD4x(world)
    cmd(chip, 0x21B1)
    assert cmd(chip, 0xE4B8, 1)[0] & 0x07FF == 0  # not ready yet
    with pytest.raises(Nack):  # read_measurement with an empty buffer NACKs (§3.5.2)
        cmd(chip, 0xEC05, 3)
    clock.advance(5000)
    assert cmd(chip, 0xE4B8, 1)[0] & 0x07FF != 0
    w_co2, w_t, w_rh = cmd(chip, 0xEC05, 3)
    assert w_co2 == co2
    assert abs(-45 + 175 * w_t / 65535 - t) <= 175 / 65535
    assert abs(100 * w_rh / 65535 - rh) <= 100 / 65535
    assert cmd(chip, 0xE4B8, 1)[0] & 0x07FF == 0  # consumed


def test_scd4x_refuses_other_commands_while_measuring():
    clock, world = make_world()
    chip = SCD4x(world)
    cmd(chip, 0x21B1)
    with pytest.raises(Nack):
        cmd(chip, 0x3682)  # get_serial_number is not allowed in periodic mode (§3.4)
    cmd(chip, 0xE000, arg=987)  # set_ambient_pressure is
    assert chip.ambient_pressure_hpa == 987
    cmd(chip, 0x3F86)
    clock.advance(500)
    assert cmd(chip, 0x3682, 3) == [0xF896, 0x9F07, 0x3BB3]


def test_scd4x_answers_nothing_for_500_ms_after_stop():
    clock, world = make_world()
    chip = SCD4x(world)
    cmd(chip, 0x21B1)
    clock.advance(5000)
    cmd(chip, 0x3F86)  # stop_periodic_measurement: 500 ms before it takes another command (§3.5.3)
    clock.advance(499)
    with pytest.raises(Nack):
        cmd(chip, 0x3682, 3)
    clock.advance(1)
    assert cmd(chip, 0x3682, 3) == [0xF896, 0x9F07, 0x3BB3]


def test_scd4x_argument_with_bad_crc_is_nacked():
    _, world = make_world()
    chip = SCD4x(world)
    with pytest.raises(Nack):
        chip.write(b"\xe0\x00\x03\xdb\x00")


def test_scd4x_single_shot_takes_5_s():
    clock, world = make_world(co2_ppm=800)
    chip = SCD4x(world)
    cmd(chip, 0x219D)
    clock.advance(4999)
    assert cmd(chip, 0xE4B8, 1)[0] & 0x07FF == 0
    clock.advance(1)
    assert cmd(chip, 0xEC05, 3)[0] == 800


def test_sps30_uint16_format():
    clock, world = make_world(pm1_0=4.2, pm2_5=12.6, pm4_0=17.0, pm10=23.4)
    chip = SPS30(world)
    assert cmd(chip, 0xD100, 1) == [0x0202]
    cmd(chip, 0x0010, arg=0x0500)
    assert cmd(chip, 0x0202, 1) == [0]
    clock.advance(1000)
    assert cmd(chip, 0x0202, 1) == [1]
    w = cmd(chip, 0x0300, 10)
    assert w[:4] == [4, 13, 17, 23]
    assert w[4] <= w[5] <= w[6] <= w[7] <= w[8]  # cumulative number concentrations
    assert cmd(chip, 0x0202, 1) == [0]


def test_sps30_float_format():
    clock, world = make_world(pm1_0=4.2, pm2_5=12.6, pm4_0=17.0, pm10=23.4)
    chip = SPS30(world)
    cmd(chip, 0x0010, arg=0x0300)
    clock.advance(1000)
    w = cmd(chip, 0x0300, 20)
    values = [struct.unpack(">f", ((w[2 * i] << 16) | w[2 * i + 1]).to_bytes(4, "big"))[0] for i in range(10)]
    assert values[:4] == pytest.approx([4.2, 12.6, 17.0, 23.4], abs=1e-5)


def test_sps30_sleep_only_understands_wake():
    _, world = make_world()
    chip = SPS30(world)
    cmd(chip, 0x1001)
    with pytest.raises(Nack):
        cmd(chip, 0xD100, 1)
    cmd(chip, 0x1103)
    assert cmd(chip, 0xD100, 1) == [0x0202]


def test_sps30_uint16_needs_firmware_2():
    _, world = make_world()
    chip = SPS30(world, firmware=(1, 0))
    with pytest.raises(Nack):
        cmd(chip, 0x0010, arg=0x0500)
