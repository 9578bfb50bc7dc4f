# The environment node's wake (bysans.node runs it): BME280, SCD4x, SPS30 and battery once each, one
# reading per wake through environment.EnvNode (which also rejects implausible values as faults).
from bysans import payload_spec as S
from bysans.drivers.errors import SensorError
from bysans.environment import EnvNode


class EnvCycle:
    """Air temperature, humidity, pressure (BME280), CO2 (SCD4x), PM2.5/PM10 (SPS30), battery."""

    kind = S.KIND_ENV

    def __init__(self, board, cfg, sensors, feed, battery):
        self.sensors = sensors
        self.feed = feed
        self.battery = battery
        self.node = EnvNode(ring=2)
        self.bme_entry = cfg.sensor("bme280")
        self.co2_entry = cfg.sensor("scd4x")
        self.pm_entry = cfg.sensor("sps30")

    def parts(self):
        return []  # one sample per interval: nothing to carry over

    def to_words(self, c):
        pass

    def from_words(self, c):
        pass

    def sample(self):
        node, feed = self.node, self.feed
        s = self.sensors.open(self.bme_entry)
        try:
            if s is None:
                raise SensorError("bme280", "missing")
            t, p, h = s.read()
            node.put(S.E_TEMP, t)
            node.put(S.E_PRESSURE, p)
            node.put(S.E_RH, h)
        except SensorError:
            node.fault(S.E_TEMP)
            node.fault(S.E_PRESSURE)
            node.fault(S.E_RH)
        feed()
        s = self.sensors.open(self.co2_entry)
        try:
            if s is None:
                raise SensorError("scd4x", "missing")
            node.put(S.E_CO2, s.read()[0])
            s.stop()
        except SensorError:
            node.fault(S.E_CO2)
        feed()
        s = self.sensors.open(self.pm_entry)
        try:
            if s is None:
                raise SensorError("sps30", "missing")
            pm = s.read()
            node.put(S.E_PM2_5, pm[1])
            node.put(S.E_PM10, pm[3])
            s.stop()
        except SensorError:
            node.fault(S.E_PM2_5)
            node.fault(S.E_PM10)
        feed()
        mv = self.battery()
        if mv is None:
            node.fault(S.E_BATT)
        else:
            node.put(S.E_BATT, mv)
        feed()
        return False

    def close(self, now_s, row):
        return self.node.close(row), False

    def frame_values(self):
        return ()

    def summary(self, row):
        return "%d cdeg, %d permille, %d Pa, %d ppm CO2, PM2.5 %d, PM10 %d" % (
            row[S.E_TEMP], row[S.E_RH], row[S.E_PRESSURE], row[S.E_CO2], row[S.E_PM2_5], row[S.E_PM10])
