# The node's configuration: a small JSON file on the board (/config/node.json) over defaults.
# Only "kind" is required; docs/node.md lists every key. Read once per wake, before anything else.
# `kind` and `site` not in node.json come from /config/device.json, which `fleet enroll --port` writes, so
# an enrolled board runs without a hand-written node.json.
import json

from micropython import const

from bysans.device_spec import DEVICE_CONFIG as DEVICE_PATH
from bysans.device_spec import DISTANCE_TYPES
from bysans.device_spec import NODE_CONFIG as CONFIG_PATH
from bysans.settings_spec import KEYS as _SETTABLE

_FROM_DEVICE = ("kind", "site")
KINDS = ("waste", "env")
_INTERVAL_MAX_S = const(15300)  # 255 min: the payload's interval_min is 8 bits

# key -> (default, minimum, maximum); None as default: depends on the kind (see _KIND_DEFAULTS)
_INTS = {
    "interval_s": (None, 60, _INTERVAL_MAX_S),   # between readings; a whole number of minutes
    "batch_max_age_s": (7200, 60, 86400),       # longest wait from a reading to its uplink
    "queue_max": (16, 1, 31),                   # readings kept in RTC memory while unsent
    "bin_depth_mm": (1000, 50, 8000),           # from the full line (rim) to the bottom
    "sensor_offset_mm": (150, 0, 4000),         # from the distance sensor to the full line
    "distance_burst": (5, 1, 15),               # distance readings per measurement (median)
    "fire_threshold_cdeg": (5700, 2000, 8500),  # fire: at least this hot ...
    "fill_alarm_bp": (0, 0, 10000),             # fill alarm: an uplink at once when the fill reaches this (0: off)
    "fire_rise_cdeg": (800, 100, 10000),        # ... and risen this much ...
    "fire_window": (6, 1, 7),                   # ... over this many readings
    "pickup_drop_bp": (3000, 100, 10000),       # pickup: a drop in fill of this much while tilted
    "tilt_deg": (45, 5, 90),                    # tilted: lid this far from upright
    "motion_mg": (250, 50, 2000),               # the accelerometer's motion latch between wakes
    "watchdog_ms": (30000, 2000, 120000),
    "fport": (1, 1, 223),
    "max_payload_bytes": (51, 11, 222),         # 51 at SF12 (DR0) in EU868
    "ota_every_s": (86400, 0, 2592000),         # OTA check-in at most this often (0: never); needs /ota/config.json
}
for _k in _SETTABLE:  # the keys a downlink may set take their bounds from its format (settings_spec)
    _INTS[_k[1]] = (_INTS[_k[1]][0], _k[3], _k[4])
_KIND_DEFAULTS = {"waste": {"interval_s": 900}, "env": {"interval_s": 600}}
_BOOLS = {"alarm_on_tilt": True}
_KEYS = ("kind", "site", "sensors", "distance_sensor") + tuple(_INTS) + tuple(_BOOLS)


class ConfigError(Exception):
    """The config file is not valid JSON or a key has an impossible value. args: (key, message)."""


class NodeConfig:
    """The settings as attributes (interval_s, bin_depth_mm, ...). `sensors` is the board file's list
    unless the config gives its own (a node fitted differently from its board's usual set)."""

    def __init__(self, values, board_sensors=()):
        if not isinstance(values, dict):
            raise ConfigError("", "the config must be a JSON object")
        for k in values:
            if k not in _KEYS:
                raise ConfigError(k, "unknown key (known: %s)" % ", ".join(_KEYS))
        kind = values.get("kind")
        if kind not in KINDS:
            raise ConfigError("kind", "must be one of %s" % ", ".join(KINDS))
        self.kind = kind
        site = values.get("site")
        if site is not None and not isinstance(site, str):
            raise ConfigError("site", "must be a string")
        self.site = site
        for k, (default, lo, hi) in _INTS.items():
            v = values.get(k, _KIND_DEFAULTS[kind].get(k, default))
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ConfigError(k, "must be a whole number from %d to %d" % (lo, hi))
            setattr(self, k, v)
        if self.interval_s % 60:
            raise ConfigError("interval_s", "must be a whole number of minutes (a multiple of 60)")
        for k, default in _BOOLS.items():
            v = values.get(k, default)
            if not isinstance(v, bool):
                raise ConfigError(k, "must be true or false")
            setattr(self, k, v)
        sensors = values.get("sensors", board_sensors)
        if not isinstance(sensors, (list, tuple)):
            raise ConfigError("sensors", "must be a list of board-file sensor entries")
        for e in sensors:
            if not isinstance(e, dict) or "type" not in e or "bus" not in e:
                raise ConfigError("sensors", "each entry needs a type and a bus, as in the board file")
        self.sensors = sensors
        self.distance_sensor = values.get("distance_sensor")
        if self.distance_sensor is not None and self.distance_sensor not in DISTANCE_TYPES:
            raise ConfigError("distance_sensor", "must be one of %s" % ", ".join(DISTANCE_TYPES))

    def sensor(self, *types):
        """The first sensor entry of one of `types` (in that order of preference), or None."""
        for t in types:
            for e in self.sensors:
                if e["type"] == t:
                    return e
        return None

    def layout(self):
        """What the state kept in RTC memory depends on: a change starts that state afresh."""
        return "%s %d %d %d %d %d %d %d %d" % (
            self.kind, self.interval_s, self.queue_max, self.bin_depth_mm, self.sensor_offset_mm,
            self.distance_burst, self.fire_threshold_cdeg, self.fire_rise_cdeg, self.fire_window)


def _read(path):
    # the JSON in `path`, or None when the file does not exist
    try:
        f = open(path)
    except OSError:
        return None
    try:
        try:
            return json.load(f)
        except ValueError:
            raise ConfigError("", "%s is not valid JSON" % path)
    finally:
        f.close()


def load(board_sensors=(), path=CONFIG_PATH, device_path=DEVICE_PATH, overlay=None):
    """The node's config, or None when neither file gives a kind (a node not yet configured). `kind` and
    `site` missing from `path` are taken from the enrollment's `device_path`; `overlay` (the settings a
    downlink set, bysans.settings, checked there) goes over both."""
    values = _read(path)
    device = _read(device_path)
    if not isinstance(device, dict):
        device = None
    if values is None:
        if device is None or device.get("kind") is None:
            return None
        values = {}
    if isinstance(values, dict) and device is not None:
        for k in _FROM_DEVICE:
            if k not in values and device.get(k) is not None:
                values[k] = device[k]
    if overlay and isinstance(values, dict):
        values.update(overlay)
    return NodeConfig(values, board_sensors)
