"""Every sensor of the virtual board read through the real drivers on the board itself: set the world,
read over the board's buses, compare within each chip's resolution."""

import json
import subprocess
import sys

from fleet.resources import firmware_dir
from fleet.sim import manager

MPREMOTE = [sys.executable, "-m", "mpremote"]

READ_ALL = """
import json
from bysans import hal
from bysans.drivers import open_sensor, battery
from bysans.drivers.errors import SensorError, SensorMissing
from bysans.drivers.bme280 import BME280
b = hal.board()
out = {"scan": b.i2c(0).scan()}
for e in b.definition["sensors"]:
    s = open_sensor(b, e)
    if e["type"] in ("bme280", "scd4x", "sps30"):
        out[e["type"]] = list(s.read())
    elif e["type"] == "lis3dh":
        out["lis3dh"] = list(s.read_mg())
        out["tilt_deg"] = s.tilt_deg()
    else:
        out[e["type"]] = s.read_mm()
out["battery_mv"] = battery.from_board(b).read_mv()
try:
    BME280(b.i2c(0), 0x77, sleep_ms=b.sleep_ms)
except SensorMissing as e:
    out["missing"] = e.args[0]
print("RESULT " + json.dumps(out))
"""

ARM_PICKUP = """
from bysans import hal
from bysans.drivers.lis3dh import LIS3DH
acc = LIS3DH(hal.board().i2c(0), 24, sleep_ms=hal.board().sleep_ms)
acc.arm_pickup(250)
print("RESULT", acc.picked_up())
"""

CHECK_PICKUP = """
from bysans import hal
from bysans.drivers.lis3dh import LIS3DH
b = hal.board()
pin = b.pin(34, "in")
acc = LIS3DH(b.i2c(0), 24, sleep_ms=b.sleep_ms)  # after a wake: the driver again, the latch kept
print("RESULT", pin.value(), acc.picked_up(), acc.picked_up())
"""


def _mp(port, *args, timeout=120):
    proc = subprocess.run([*MPREMOTE, "connect", port, "resume", *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _run(port, code):
    out = _mp(port, "exec", code)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, out
    return lines[-1][len("RESULT "):]


def _install_drivers(port):
    src = firmware_dir() / "bysans"
    _mp(port, "mkdir", ":bysans")
    _mp(port, "cp", str(src / "__init__.py"), ":bysans/__init__.py")
    _mp(port, "cp", "-r", str(src / "hal"), str(src / "drivers"), ":bysans/")


def test_sensors_read_through_drivers_on_a_virtual_board(tmp_path, monkeypatch):
    monkeypatch.setenv("BYSANS_SIM_DIR", str(tmp_path))
    [board] = manager.start(names=["sensors1"], erase=True, speed=20)
    try:
        port = board.port
        _install_drivers(port)
        world = dict(temperature_c=-5.25, pressure_pa=98765.0, humidity_pct=63.2, co2_ppm=1234.0,
                     pm1_0=4.0, pm2_5=12.0, pm4_0=17.0, pm10=23.0, distance_mm=873.0,
                     accel_x_mg=-120.0, accel_y_mg=35.0, accel_z_mg=987.0, battery_mv=4012.0)
        board.set_world(**world)
        r = json.loads(_run(port, READ_ALL))

        assert r["scan"] == [0x18, 0x29, 0x62, 0x69, 0x76]
        t_cdeg, p_pa, h_permille = r["bme280"]
        assert abs(t_cdeg - (-525)) <= 1  # 0.01 degC
        assert abs(p_pa - 98765) <= 1  # 1 Pa after rounding the Q24.8 result
        assert abs(h_permille - 632) <= 1  # 0.1 %RH
        co2, t_cdeg, rh_permille = r["scd4x"]
        assert co2 == 1234  # 1 ppm words
        assert abs(t_cdeg - (-525)) <= 1  # 175/65535 degC per step
        assert abs(rh_permille - 632) <= 1
        assert r["sps30"] == [4, 12, 17, 23]  # whole ug/m3 in the uint16 format
        assert r["vl53l1x"] == 873  # 1 mm
        assert r["jsn_sr04t"] == 873  # 1 mm
        assert r["lis3dh"] == [-120, 35, 987]  # 1 mg/digit at +-2 g, high resolution
        assert r["tilt_deg"] == 7  # atan(sqrt(120^2 + 35^2) / 987) = 7.2 degrees
        assert abs(r["battery_mv"] - 4012) <= 2  # 12-bit ADC steps of 0.76 mV behind a 1:2 divider
        assert r["missing"] == "bme280"

        # a pickup while the node sleeps: the LIS3DH latches it and drives INT1
        board.set_world(accel_x_mg=0.0, accel_y_mg=0.0, accel_z_mg=1000.0)
        assert _run(port, ARM_PICKUP) == "False"
        board.set_world(accel_x_mg=700.0, accel_z_mg=300.0)  # lifted and tipped into the truck
        board.set_world(accel_x_mg=0.0, accel_z_mg=1000.0)  # and put back
        assert _run(port, CHECK_PICKUP) == "1 True False"
    finally:
        board.stop()
