"""A small CayenneLPP encoder: the baseline the payload benchmarks compare against (REFERENCE.md §3).

Each item is channel (1) | type (1) | data, big-endian. Analog input carries value * 100 in int16, so
each quantity is scaled to the unit that fits its range (docs/formats/payload.md lists them).
"""

import struct

from ..errors import UsageError

DIGITAL_INPUT, ANALOG_INPUT, TEMPERATURE, HUMIDITY, BAROMETER = 0, 2, 103, 104, 115


def _item(channel: int, lpp_type: int, fmt: str, raw: int) -> bytes:
    try:
        return struct.pack(">BB" + fmt, channel, lpp_type, raw)
    except struct.error as e:
        raise UsageError(f"CayenneLPP type {lpp_type} cannot carry {raw}: {e}") from e


def digital(channel: int, value: int) -> bytes:
    return _item(channel, DIGITAL_INPUT, "B", value)


def analog(channel: int, value: float) -> bytes:
    return _item(channel, ANALOG_INPUT, "h", round(value * 100))


def temperature(channel: int, celsius: float) -> bytes:
    return _item(channel, TEMPERATURE, "h", round(celsius * 10))


def humidity(channel: int, percent: float) -> bytes:
    return _item(channel, HUMIDITY, "B", round(percent * 2))


def barometer(channel: int, hpa: float) -> bytes:
    return _item(channel, BAROMETER, "H", round(hpa * 10))


def waste_reading(r: dict) -> bytes:
    """{dist_mm, fill_bp, temp_cdeg, batt_mv, flags} -> distance (m), fill (%), temperature, battery (V),
    flags (digital)."""
    return (analog(1, r["dist_mm"] / 1000) + analog(2, r["fill_bp"] / 100) + temperature(3, r["temp_cdeg"] / 100)
            + analog(4, r["batt_mv"] / 1000) + digital(5, r["flags"]))


def env_reading(r: dict) -> bytes:
    """{temp_cdeg, rh_permille, pressure_pa, co2_ppm, pm2_5_ugm3, pm10_ugm3, batt_mv} -> temperature,
    humidity, barometer, CO2 (thousands of ppm), PM2.5 and PM10 (ug/m3), battery (V)."""
    return (temperature(1, r["temp_cdeg"] / 100) + humidity(2, r["rh_permille"] / 10)
            + barometer(3, r["pressure_pa"] / 100) + analog(4, r["co2_ppm"] / 1000)
            + analog(5, r["pm2_5_ugm3"]) + analog(6, r["pm10_ugm3"]) + analog(7, r["batt_mv"] / 1000))
