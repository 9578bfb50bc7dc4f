"""Scenarios: the world of a virtual board over simulated time, from a JSON file (docs/formats/scenario.md).

    {
      "description": "a bin fills, is emptied, catches fire",
      "bin": {"depth_mm": 1000, "offset_mm": 150},
      "quantities": {
        "fill_pct": [["0h", 5], ["20h", 60], ["24h", 62]],
        "temperature_c": {"points": [["0h", 8], ["14h", 16], ["24h", 8]], "repeat": "24h"}
      },
      "events": [
        {"at": "22h", "type": "pickup", "fill_pct": 2, "tilt_s": 1200},
        {"at": "60h", "type": "fire", "peak_c": 75, "rise_s": 600, "hold_s": 3600, "fall_s": 7200},
        {"at": "30h", "type": "tilt", "duration_s": 3600, "tilt_deg": 90}
      ]
    }

Times are seconds from the board's start, as a number or a string of units ("1d 6h", "90m", "30s").
A quantity is a list of keyframes `[time, value]` (or `{"at", "value", "step"}`), linear between them and
held before the first and after the last; `"step": true` makes the value jump at that keyframe instead of
ramping to it. The object form adds `"repeat": PERIOD` (a daily cycle) and `"interp": "step"`.

Derived and event quantities:
  * `fill_pct` (0-100, of the bin's depth from its bottom to the full line) drives `distance_mm` when
    `bin` gives the geometry: distance = offset + depth * (1 - fill/100). The fill keyframes say how much
    waste has arrived; a pickup empties the bin to its `fill_pct` (default 0), and what arrives afterwards
    adds on from there. The level is clamped to 0-100.
  * `pickup`: the bin is lifted and tipped `tilt_deg` (default 135) for `tilt_s` (default 60) from `at`,
    and emptied at `at`.
  * `tilt`: the bin lies at `tilt_deg` (default 90) for `duration_s`, nothing else changes.
  * `fire`: temperature_c ramps from what it would have been to `peak_c` over `rise_s`, holds `hold_s`,
    then falls back over `fall_s`.

Quantities a scenario does not mention stay under `fleet sim` control (World.set); value() returns None
for them.
"""

import bisect
import json
import math
import re
from pathlib import Path

from ..errors import ScenarioError
from . import wlan as _wlan
from .world import DEFAULTS

_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_TIME_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([dhms])\s*")
EVENT_TYPES = ("pickup", "tilt", "fire")
ACCEL = ("accel_x_mg", "accel_y_mg", "accel_z_mg")
_DISTANCE = "distance_mm"
_FILL = "fill_pct"


def parse_time(value, where: str) -> float:
    """Seconds from a number or a string such as "1d 6h 30m" (units d, h, m, s)."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: {value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        pos, seconds = 0, 0.0
        text = value.strip()
        while pos < len(text):
            m = _TIME_RE.match(text, pos)
            if not m:
                raise ScenarioError(f"{where}: {value!r} is not a time",
                                    hint='write seconds as a number, or units: "1d 6h", "90m", "30s"')
            seconds += float(m.group(1)) * _UNIT_S[m.group(2)]
            pos = m.end()
        if not text:
            raise ScenarioError(f"{where}: empty time")
    else:
        raise ScenarioError(f"{where}: {value!r} is not a time")
    if seconds < 0 or math.isnan(seconds):
        raise ScenarioError(f"{where}: time must not be negative")
    return seconds


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{where}: {value!r} is not a number")
    return float(value)


class Track:
    """Keyframes of one quantity: linear between them, held outside; steps where marked."""

    def __init__(self, spec, where: str):
        repeat = None
        interp = "linear"
        points = spec
        if isinstance(spec, dict):
            unknown = set(spec) - {"points", "repeat", "interp"}
            if unknown:
                raise ScenarioError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: points, repeat, interp)")
            points = spec.get("points")
            if "repeat" in spec:
                repeat = parse_time(spec["repeat"], f"{where}.repeat")
                if repeat <= 0:
                    raise ScenarioError(f"{where}.repeat: must be longer than 0 s")
            interp = spec.get("interp", "linear")
            if interp not in ("linear", "step"):
                raise ScenarioError(f"{where}.interp: {interp!r} is not linear or step")
        if not isinstance(points, list) or not points:
            raise ScenarioError(f"{where}: expected a list of keyframes [time, value]")
        self.times, self.values, self.steps = [], [], []
        for i, p in enumerate(points):
            w = f"{where}[{i}]"
            if isinstance(p, list) and len(p) == 2:
                t, v, step = p[0], p[1], False
            elif isinstance(p, dict) and "at" in p and "value" in p:
                unknown = set(p) - {"at", "value", "step"}
                if unknown:
                    raise ScenarioError(f"{w}: unknown key {sorted(unknown)[0]!r} (known: at, value, step)")
                t, v, step = p["at"], p["value"], p.get("step", False)
                if not isinstance(step, bool):
                    raise ScenarioError(f"{w}.step: must be true or false")
            else:
                raise ScenarioError(f"{w}: a keyframe is [time, value] or {{\"at\", \"value\", \"step\"}}")
            t = parse_time(t, w)
            if self.times and t < self.times[-1]:
                raise ScenarioError(f"{w}: keyframes must be in time order ({t:g} s comes after "
                                    f"{self.times[-1]:g} s)")
            self.times.append(t)
            self.values.append(_number(v, w))
            self.steps.append(step or interp == "step")
        self.repeat = repeat

    def at(self, t: float) -> float:
        if self.repeat:
            t = t % self.repeat
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            return self.values[0]
        if i == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        if self.steps[i] or t1 == t0:
            return v0
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


class Event:
    def __init__(self, spec, where: str):
        if not isinstance(spec, dict):
            raise ScenarioError(f"{where}: an event is an object with at and type")
        self.type = spec.get("type")
        if self.type not in EVENT_TYPES:
            raise ScenarioError(f"{where}.type: {self.type!r} is not one of {', '.join(EVENT_TYPES)}")
        known = {"at", "type", "note"} | {
            "pickup": {"fill_pct", "tilt_s", "tilt_deg"},
            "tilt": {"duration_s", "tilt_deg"},
            "fire": {"peak_c", "rise_s", "hold_s", "fall_s"}}[self.type]
        unknown = set(spec) - known
        if unknown:
            raise ScenarioError(f"{where}: unknown key {sorted(unknown)[0]!r} for a {self.type} event "
                                f"(known: {', '.join(sorted(known))})")
        if "at" not in spec:
            raise ScenarioError(f"{where}: an event needs 'at'")
        self.at = parse_time(spec["at"], f"{where}.at")
        if self.type == "pickup":
            self.fill_pct = _number(spec.get("fill_pct", 0), f"{where}.fill_pct")
            self.duration = parse_time(spec.get("tilt_s", 60), f"{where}.tilt_s")
            self.tilt_deg = _number(spec.get("tilt_deg", 135), f"{where}.tilt_deg")
        elif self.type == "tilt":
            self.duration = parse_time(spec.get("duration_s", 600), f"{where}.duration_s")
            self.tilt_deg = _number(spec.get("tilt_deg", 90), f"{where}.tilt_deg")
        else:
            self.peak_c = _number(spec.get("peak_c", 75), f"{where}.peak_c")
            self.rise = parse_time(spec.get("rise_s", 600), f"{where}.rise_s")
            self.hold = parse_time(spec.get("hold_s", 3600), f"{where}.hold_s")
            self.fall = parse_time(spec.get("fall_s", 7200), f"{where}.fall_s")
            self.duration = self.rise + self.hold + self.fall
        if self.type != "fire" and not 0 <= self.tilt_deg <= 180:
            raise ScenarioError(f"{where}.tilt_deg: must be from 0 to 180")

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items()}


class Scenario:
    """value(name, sim_ms): the scenario's value of a world quantity at that simulated time, or None."""

    def __init__(self, spec: dict, *, start_ms: int = 0, name: str = "scenario"):
        if not isinstance(spec, dict):
            raise ScenarioError(f"{name}: a scenario is a JSON object")
        unknown = set(spec) - {"description", "bin", "quantities", "events", "duration", "wifi"}
        if unknown:
            raise ScenarioError(f"{name}: unknown key {sorted(unknown)[0]!r} "
                                "(known: description, bin, quantities, events, duration, wifi)")
        self.name = name
        # the access points around the board (fleet/sim/wlan.py); None: no "wifi" key
        self.aps = _wlan.parse(spec["wifi"], start_ms, f"{name}.wifi") if "wifi" in spec else None
        self.description = spec.get("description", "")
        self.start_ms = start_ms
        self.duration_s = parse_time(spec["duration"], f"{name}.duration") if "duration" in spec else None
        self.bin = None
        if "bin" in spec:
            b = spec["bin"]
            if not isinstance(b, dict) or set(b) - {"depth_mm", "offset_mm"} or "depth_mm" not in b:
                raise ScenarioError(f"{name}.bin: expected {{\"depth_mm\": N, \"offset_mm\": N}}")
            self.bin = (_number(b["depth_mm"], f"{name}.bin.depth_mm"), _number(b.get("offset_mm", 0), f"{name}.bin.offset_mm"))
            if self.bin[0] <= 0 or self.bin[1] < 0:
                raise ScenarioError(f"{name}.bin: depth must be positive and offset not negative")
        quantities = spec.get("quantities", {})
        if not isinstance(quantities, dict):
            raise ScenarioError(f"{name}.quantities: expected an object of quantity -> keyframes")
        self.tracks = {}
        for q, track in quantities.items():
            if q not in DEFAULTS and q != _FILL:
                raise ScenarioError(f"{name}.quantities: unknown quantity {q!r}",
                                    hint=f"known: {', '.join(sorted([*DEFAULTS, _FILL]))}")
            self.tracks[q] = Track(track, f"{name}.quantities.{q}")
        if _FILL in self.tracks and self.bin is None:
            raise ScenarioError(f"{name}: fill_pct needs the bin's geometry",
                                hint='add "bin": {"depth_mm": 1000, "offset_mm": 150}')
        if _FILL in self.tracks and _DISTANCE in self.tracks:
            raise ScenarioError(f"{name}: give fill_pct or distance_mm, not both")
        events = spec.get("events", [])
        if not isinstance(events, list):
            raise ScenarioError(f"{name}.events: expected a list")
        self.events = sorted((Event(e, f"{name}.events[{i}]") for i, e in enumerate(events)), key=lambda e: e.at)
        self.pickups = [e for e in self.events if e.type == "pickup"]
        if self.pickups and _FILL not in self.tracks:
            raise ScenarioError(f"{name}: a pickup empties the bin: give fill_pct and the bin's geometry")
        self.tilts = [e for e in self.events if e.type in ("pickup", "tilt")]
        self.fires = [e for e in self.events if e.type == "fire"]

    # ----- time ---------------------------------------------------------------------------------------
    def seconds(self, sim_ms: int) -> float:
        """Seconds since the scenario started."""
        return (sim_ms - self.start_ms) / 1000

    def sim_ms(self, seconds: float) -> int:
        return self.start_ms + int(seconds * 1000)

    # ----- quantities ---------------------------------------------------------------------------------
    def fill_pct(self, t: float) -> float | None:
        track = self.tracks.get(_FILL)
        if track is None:
            return None
        level = track.at(t)
        for p in self.pickups:
            if p.at > t:
                break
            level = p.fill_pct + track.at(t) - track.at(p.at)
        return min(max(level, 0.0), 100.0)

    def _tilt(self, t: float):
        for e in self.tilts:
            if e.at <= t < e.at + e.duration:
                return e.tilt_deg
        return None

    def tilt_moments(self, t0: float, t1: float) -> list[float]:
        """One moment inside each tilt or pickup that overlaps (t0, t1]: a chip that was not read while
        it happened (the board slept) evaluates its latching interrupt there."""
        return [max(e.at, t0 + 0.001) for e in self.tilts if e.at <= t1 and e.at + e.duration > t0]

    def _temperature(self, t: float) -> float | None:
        track = self.tracks.get("temperature_c")
        base = track.at(t) if track else None
        for f in self.fires:
            if not f.at <= t < f.at + f.duration:
                continue
            start = track.at(f.at) if track else DEFAULTS["temperature_c"]
            end = track.at(f.at + f.duration) if track else DEFAULTS["temperature_c"]
            dt = t - f.at
            if dt < f.rise:
                return start + (f.peak_c - start) * dt / f.rise
            if dt < f.rise + f.hold:
                return f.peak_c
            return f.peak_c + (end - f.peak_c) * (dt - f.rise - f.hold) / f.fall
        return base

    def value(self, name: str, sim_ms: int) -> float | None:
        t = self.seconds(sim_ms)
        if t < 0:
            return None
        if name == _FILL:
            return self.fill_pct(t)
        if name == _DISTANCE and self.bin is not None and _FILL in self.tracks:
            depth, offset = self.bin
            return offset + depth * (1 - self.fill_pct(t) / 100)
        if name == "temperature_c":
            return self._temperature(t)
        if name in ACCEL:
            deg = self._tilt(t)
            if deg is not None:  # gravity in the sensor's frame, tipped about its x axis
                g = 1000.0
                return {"accel_x_mg": 0.0, "accel_y_mg": g * math.sin(math.radians(deg)),
                        "accel_z_mg": g * math.cos(math.radians(deg))}[name]
        track = self.tracks.get(name)
        return track.at(t) if track else None


def load_dict(spec: dict, *, start_ms: int = 0, name: str = "scenario") -> Scenario:
    return Scenario(spec, start_ms=start_ms, name=name)


def read(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist")
    except json.JSONDecodeError as e:
        raise ScenarioError(f"scenario file {path} is not valid JSON: {e}")


def load(path, clock) -> Scenario:
    """The scenario in `path`, its time 0 being now on `clock` (the board's start)."""
    return Scenario(read(path), start_ms=clock.now_ms(), name=Path(path).name)
