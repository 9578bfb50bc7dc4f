# The waste bin's wake (bysans.node runs it): distance as the median of a burst, temperature for the fire
# alarm, battery, and tilt and motion from the accelerometer; one reading per wake through waste.WasteNode.
# A sensor that cannot be opened or read, or reads an impossible value, is a fault for its channels.
import math
from array import array

from micropython import const

from bysans import payload_spec as S
from bysans.device_spec import DISTANCE_TYPES
from bysans.drivers.errors import SensorError
from bysans.node import C_KIND
from bysans.waste import BATT, TEMP, FillTrend, FireDetector, PickupDetector, WasteNode

_WASTE_RING = const(8)      # temperature history for the fire detector's window (at most 7)
_TREND_POINTS = const(24)
_DIST_MAX_MM = const(16383)
_TEMP_MIN_CDEG = const(-4000)
_TEMP_MAX_CDEG = const(8500)


def tilted(x_mg, y_mg, z_mg, cos2_milli):
    """True when the z axis is at least the angle whose cos^2 (x1000) is cos2_milli from upright."""
    if z_mg <= 0:
        return True
    return z_mg * z_mg * 1000 <= cos2_milli * (x_mg * x_mg + y_mg * y_mg + z_mg * z_mg)


class WasteCycle:
    """Distance (median of a burst), temperature (fire), battery, tilt and motion for a waste bin."""

    kind = S.KIND_WASTE

    def __init__(self, board, cfg, sensors, feed, battery):
        self.cfg = cfg
        self.sensors = sensors
        self.feed = feed
        self.battery = battery
        self.node = WasteNode(
            depth_mm=cfg.bin_depth_mm, offset_mm=cfg.sensor_offset_mm, ring=_WASTE_RING, burst=cfg.distance_burst,
            pickup=PickupDetector(drop_bp=cfg.pickup_drop_bp, tilt_intervals=2),
            fire=FireDetector(threshold_cdeg=cfg.fire_threshold_cdeg, rise_cdeg=cfg.fire_rise_cdeg,
                              window_samples=cfg.fire_window),
            trend=FillTrend(_TREND_POINTS))
        self.burst = array("h", bytes(2 * cfg.distance_burst))
        self.cos2_milli = int(math.cos(math.radians(cfg.tilt_deg)) ** 2 * 1000 + 0.5)
        types = (cfg.distance_sensor,) if cfg.distance_sensor else DISTANCE_TYPES
        self.dist_entry = cfg.sensor(*types)
        self.temp_entry = cfg.sensor("bme280")
        self.accel_entry = cfg.sensor("lis3dh")

    def parts(self):
        t = self.node.trend
        return [self.node.sampler.state, t.t_min, t.fill]

    def to_words(self, c):
        p, t = self.node.pickup, self.node.trend
        c[C_KIND], c[C_KIND + 1], c[C_KIND + 2], c[C_KIND + 3] = p._since_tilt, p._prev_fill, t.n, t.head

    def from_words(self, c):
        p, t = self.node.pickup, self.node.trend
        p._since_tilt, p._prev_fill, t.n, t.head = c[C_KIND], c[C_KIND + 1], c[C_KIND + 2], c[C_KIND + 3]

    def sample(self):
        """Reads every sensor once; True when a fire alarm starts. With every reading valid (the usual
        wake) the node takes them in one fused call (WasteNode.sample, the path firmware.loop_speedup
        times); a faulted temperature or battery goes through the separate steps."""
        node, feed, burst = self.node, self.feed, self.burst
        dist = self.sensors.open(self.dist_entry)
        for i in range(len(burst)):
            d = 0
            if dist is not None:
                try:
                    d = dist.read_mm()
                except SensorError:
                    d = 0
            burst[i] = d if 0 < d <= _DIST_MAX_MM else 0  # no echo, or an impossible distance
            feed()
        temp = self.sensors.open(self.temp_entry)
        t = None
        if temp is not None:
            try:
                t = temp.read()[0]
            except SensorError:
                t = None
        if t is not None and not _TEMP_MIN_CDEG <= t <= _TEMP_MAX_CDEG:
            t = None
        feed()
        mv = self.battery()
        feed()
        if t is not None and mv is not None:
            fire = node.sample(burst, t, mv)
        else:
            node.distance(burst)
            fire = False
            if t is None:
                node.sampler.fault(TEMP)
            else:
                fire = node.temperature(t)
            if mv is None:
                node.sampler.fault(BATT)
            else:
                node.battery(mv)
        acc = self.sensors.open(self.accel_entry)
        if acc is not None:
            try:
                moved = acc.picked_up()  # the motion latch, armed at the last wake
                x, y, z = acc.read_mg()
                node.tilt(moved or tilted(x, y, z, self.cos2_milli))
                acc.arm_pickup(self.cfg.motion_mg)
            except SensorError:
                self.sensors.missing.append("lis3dh")
        feed()
        return fire

    def close(self, now_s, row):
        """(fault mask, alarm) of this wake's reading, written into row."""
        before = self.node.pickup._prev_fill  # the last known fill (-1: none yet)
        faults = self.node.close(now_s // 60, row)
        flags = row[S.W_FLAGS]
        alarm = bool(flags & S.FLAG_PICKUP) or (self.cfg.alarm_on_tilt and bool(flags & S.FLAG_TILT))
        full = self.cfg.fill_alarm_bp
        if full and not faults & (1 << S.W_FILL) and row[S.W_FILL] >= full > before:
            alarm = True  # the fill reached the threshold: once per crossing
        return faults, alarm

    def frame_values(self):
        return (self.node.fill_rate_bp_h(),)

    def summary(self, row):
        return "fill %d bp, %d mm, %d cdeg, flags %d" % (row[S.W_FILL], row[S.W_DIST], row[S.W_TEMP],
                                                         row[S.W_FLAGS])
