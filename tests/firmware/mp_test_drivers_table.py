# The sensor types a board file may name (bysans/device_spec.py, which the host's board schema also reads)
# each have a driver in bysans.drivers.open_sensor, and a type without one is refused by name.
# mp: -X heapsize=256K
from fakes import FakeClock, FakeI2C, FakeJSN

from bysans.device_spec import DISTANCE_TYPES, SENSOR_TYPES
from bysans.drivers import open_sensor
from bysans.drivers.errors import SensorError


class _Board:
    def __init__(self):
        self.clock = FakeClock()
        self.sleep_ms = self.clock.sleep_ms

    def i2c(self, n):
        return FakeI2C()  # nothing answers: a driver that exists says SensorMissing

    def uart(self, n):
        return FakeJSN(self.clock)


def test_every_declared_sensor_type_has_a_driver():
    for kind in SENSOR_TYPES:
        entry = {"type": kind, "bus": "uart1" if kind == "jsn_sr04t" else "i2c0"}
        try:
            drv = open_sensor(_Board(), entry)
        except SensorError:
            continue  # the driver ran and found no chip
        except ValueError as e:
            raise AssertionError("no driver for declared type " + kind + ": " + str(e))
        assert drv is not None, kind


def test_an_undeclared_type_is_refused():
    try:
        open_sensor(_Board(), {"type": "dht22", "bus": "i2c0"})
    except ValueError as e:
        assert "dht22" in str(e)
    else:
        raise AssertionError("opened a sensor type that has no driver")


def test_distance_types_are_sensor_types():
    for kind in DISTANCE_TYPES:
        assert kind in SENSOR_TYPES
