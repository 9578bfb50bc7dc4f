# Sensor drivers. Each takes its hardware (an I2C bus with machine.I2C's API, a UART, pins, an ADC) and never
# imports machine. Readings are scaled integers with the unit in the name (temp_cdeg, pressure_pa, dist_mm).
# Every failure is a bysans.drivers.errors.SensorError subclass.
#
# open_sensor(board, entry) builds the driver for one "sensors" entry of the board file, e.g.
#   {"type": "bme280", "bus": "i2c0", "address": 118}   or   {"type": "jsn_sr04t", "bus": "uart1"}
# Battery voltage is not a bus sensor: bysans.drivers.battery.from_board(board).

# The sensor types are declared in bysans/device_spec.py (SENSOR_TYPES): one branch of open_sensor each.


def _bus(board, entry):
    bus = entry["bus"]
    if bus.startswith("i2c"):
        return board.i2c(int(bus[3:]))
    if bus.startswith("uart"):
        return board.uart(int(bus[4:]))
    raise ValueError("unknown bus " + bus)


def open_sensor(board, entry, sleep_ms=None):
    """The driver for one board-file sensor entry. Raises SensorMissing when the chip does not answer."""
    kind = entry["type"]
    bus = _bus(board, entry)
    sleep_ms = sleep_ms or board.sleep_ms
    addr = entry.get("address")
    if kind == "bme280":
        from bysans.drivers.bme280 import BME280

        return BME280(bus, addr or 0x76, sleep_ms=sleep_ms)
    if kind == "scd4x":
        from bysans.drivers.scd4x import SCD4x

        return SCD4x(bus, addr or 0x62, sleep_ms=sleep_ms)
    if kind == "sps30":
        from bysans.drivers.sps30 import SPS30

        return SPS30(bus, addr or 0x69, sleep_ms=sleep_ms)
    if kind == "vl53l1x":
        from bysans.drivers.vl53l1x import VL53L1X

        return VL53L1X(bus, addr or 0x29, sleep_ms=sleep_ms)
    if kind == "lis3dh":
        from bysans.drivers.lis3dh import LIS3DH

        return LIS3DH(bus, addr or 0x18, sleep_ms=sleep_ms)
    if kind == "jsn_sr04t":
        from bysans.drivers.jsn_sr04t import JSNSR04T

        return JSNSR04T(bus, mode=entry.get("mode", "controlled"), sleep_ms=sleep_ms)
    raise ValueError("no driver for sensor type " + kind)
