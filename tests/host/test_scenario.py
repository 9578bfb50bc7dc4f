"""The scenario engine (fleet/sim/scenario.py): keyframes, repeats, pickups, tilts, fire, and bad files."""

import json
import math
from pathlib import Path

import pytest

from fleet.errors import ScenarioError
from fleet.sim.clock import SimClock
from fleet.sim.scenario import load, load_dict, parse_time, read
from fleet.sim.world import World

H = 3600 * 1000


def test_times():
    assert parse_time(90, "t") == 90
    assert parse_time("1d 6h 30m 15s", "t") == 86400 + 6 * 3600 + 1800 + 15
    assert parse_time("1.5h", "t") == 5400
    for bad in ("1 week", "", "h", -1, True, None):
        with pytest.raises(ScenarioError):
            parse_time(bad, "t")


def test_keyframes_linear_steps_and_repeat():
    s = load_dict({"quantities": {
        "co2_ppm": [["0h", 400], ["2h", 800], {"at": "3h", "value": 500, "step": True}],
        "temperature_c": {"points": [["0h", 10], ["12h", 20], ["24h", 10]], "repeat": "24h"},
    }})
    assert s.value("co2_ppm", 0) == 400
    assert s.value("co2_ppm", 1 * H) == 600
    assert s.value("co2_ppm", int(2.5 * H)) == 800  # held until the step
    assert s.value("co2_ppm", 3 * H) == 500
    assert s.value("co2_ppm", 100 * H) == 500  # the last value holds
    assert s.value("temperature_c", 6 * H) == 15
    assert s.value("temperature_c", 30 * H) == 15  # the next day
    assert s.value("humidity_pct", 5 * H) is None  # not in the scenario: the world's own value
    assert s.value("co2_ppm", -1) is None  # before the board started


def test_bin_fill_drives_distance_and_pickups_empty_it():
    s = load_dict({"bin": {"depth_mm": 1000, "offset_mm": 200},
                   "quantities": {"fill_pct": [["0h", 0], ["10h", 50], ["40h", 200]]},
                   "events": [{"at": "10h", "type": "pickup", "fill_pct": 5, "tilt_s": 600, "tilt_deg": 90}]})
    assert s.value("fill_pct", 5 * H) == 25
    assert s.value("distance_mm", 5 * H) == 200 + 750
    assert s.value("fill_pct", 10 * H) == 5
    assert s.value("fill_pct", 20 * H) == pytest.approx(5 + 50)  # what arrived since the pickup adds on
    assert s.value("fill_pct", 40 * H) == 100  # overflowing: clamped at full
    assert s.value("distance_mm", 40 * H) == 200
    # tipped over for 10 min from the pickup: gravity along y
    assert s.value("accel_y_mg", 10 * H + 60000) == pytest.approx(1000)
    assert abs(s.value("accel_z_mg", 10 * H + 60000)) < 1e-9
    assert s.value("accel_z_mg", 10 * H + 600000) is None  # upright again: the world's own value


def test_fire_ramps_holds_and_cools_back_to_the_base():
    s = load_dict({"quantities": {"temperature_c": [["0h", 10], ["10h", 20]]},
                   "events": [{"at": "5h", "type": "fire", "peak_c": 80, "rise_s": 600, "hold_s": 3600,
                               "fall_s": 3600}]})
    start = 5 * H
    assert s.value("temperature_c", start) == 15
    assert s.value("temperature_c", start + 300000) == pytest.approx((15 + 80) / 2)
    assert s.value("temperature_c", start + 600000 + 1000) == 80
    end = start + (600 + 7200) * 1000
    assert s.value("temperature_c", end - 1) == pytest.approx(s.value("temperature_c", end), abs=0.01)
    assert s.value("temperature_c", end + H) == pytest.approx(10 + (end + H) / H)


def test_the_world_follows_the_scenario_from_the_boards_start(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"quantities": {"battery_mv": [["0s", 4100], ["1h", 3500]]}}))
    clock = SimClock(speed=3600)
    world = World(clock)
    world.load_scenario(str(path))
    assert 3500 <= world.get("battery_mv") <= 4100
    assert world.get("pressure_pa") == 101325.0  # not in the scenario
    s = load(path, SimClock(speed=1, start_epoch_ms=10 * H))
    assert s.start_ms >= 10 * H and s.value("battery_mv", s.start_ms + H // 2) == pytest.approx(3800)


def test_bin_three_days_has_two_pickups_and_a_fire():
    s = load_dict(read(Path(__file__).resolve().parents[2] / "scenarios" / "bin_three_days.json"))
    assert s.duration_s == 72 * 3600
    assert [e.type for e in s.events] == ["pickup", "fire", "pickup"]
    levels = [s.value("fill_pct", int(h * H)) for h in range(73)]
    assert max(levels) > 80 and min(levels) >= 0
    assert s.value("fill_pct", 34 * H) == 3 and s.value("fill_pct", 62 * H) == 3
    assert s.value("temperature_c", 48 * H + 10 * 60000) == 75
    assert not math.isnan(s.value("distance_mm", 71 * H))


@pytest.mark.parametrize("spec, words", [
    ({"quantities": {"temprature_c": [[0, 1]]}}, "unknown quantity 'temprature_c'"),
    ({"quantities": {"co2_ppm": [["2h", 1], ["1h", 2]]}}, "time order"),
    ({"quantities": {"co2_ppm": [["2h"]]}}, "keyframe"),
    ({"quantities": {"co2_ppm": [["soon", 1]]}}, "not a time"),
    ({"quantities": {"fill_pct": [[0, 1]]}}, "bin's geometry"),
    ({"events": [{"at": "1h", "type": "flood"}]}, "not one of"),
    ({"events": [{"at": "1h", "type": "pickup"}]}, "give fill_pct"),
    ({"events": [{"at": "1h", "type": "fire", "peak": 90}]}, "unknown key 'peak'"),
    ({"colour": "red"}, "unknown key 'colour'"),
])
def test_bad_scenarios_say_what_is_wrong(spec, words):
    with pytest.raises(ScenarioError) as e:
        load_dict(spec, name="s.json")
    assert words in e.value.message
    assert e.value.exit_code == 80 and e.value.hint


def test_unreadable_files(tmp_path):
    with pytest.raises(ScenarioError, match="does not exist"):
        read(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        read(tmp_path / "bad.json")
