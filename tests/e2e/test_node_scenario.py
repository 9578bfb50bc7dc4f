"""The node's cycle on virtual boards: the app as a release installs it (.mpy for the board's arch), its
config in /config/node.json, uplinks read back from the board's capture and decoded by fleet.codec.

The scenario test runs tests/data/scenarios/bin_30h.json (scenarios/bin_three_days.json's story, two pickups
and a fire, in 30 simulated hours) on a fast clock. Each wake boots a MicroPython interpreter (about 0.1-0.3 s
real here), and the supervisor's clock keeps running while the board is awake, so the speed-up is chosen to
keep a wake to a fraction of a cycle even on a busy machine: a 30-min cycle at 2400x is about 45 s of real
time for the 30 hours, a wake costing 5-15 simulated minutes.
"""

import json
import time
from pathlib import Path

import pytest

from fleet import device_spec
from fleet.codec import decode
from fleet.release.build import build
from fleet.sim import manager
from fleet.sim.scenario import load_dict, read
from lab.serialconsole import Console
from provisioning.deploy import deploy
from provisioning.session import Session

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "data" / "scenarios" / "bin_30h.json"
SPEED = 2400
INTERVAL_S = 1800
WASTE = {"kind": "waste", "interval_s": INTERVAL_S, "bin_depth_mm": 1000, "sensor_offset_mm": 150}


@pytest.fixture(scope="module")
def app_files(tmp_path_factory):
    """The app as `fleet release build --board virtual` compiles it (the board runs .mpy, as a release
    installs it: compiling the whole app from source at every wake needs more than the 128K heap)."""
    out = tmp_path_factory.mktemp("release") / "rel"
    build("virtual", "0.1.0", out)
    files_dir = out / "files"
    return {"/" + p.relative_to(files_dir).as_posix(): p.read_bytes()
            for p in sorted(files_dir.rglob("*")) if p.is_file()}


@pytest.fixture
def boards():
    started = []
    yield started
    for b in started:
        b.stop()


def _flash(name, files, config, *, speed, scenario=None):
    """A board with a fresh flash and the app (and config) written to it; the app runs from the next reset.
    With a scenario the app is written with the clock at 1x and the board started again (same flash) with
    the scenario: a scenario's time starts when its board starts, and writing the app must not eat into it."""
    files = dict(files)
    if config is not None:
        files[device_spec.NODE_CONFIG] = json.dumps(config).encode()
    [b] = manager.start(names=[name], erase=True, speed=1 if scenario else speed)
    with Session(b.port) as s:
        deploy(s, files)
    if scenario:
        b.stop()
        [b] = manager.start(names=[name], speed=speed, scenario=scenario)
    return b


def _drain(console, seconds):
    """Reads the board's serial output for a while. Somebody must: a supervisor whose port output goes
    unread blocks in its stale-output drop (supervisor._write_all reads the blocking slave side until it
    is empty, and then waits forever), after which the board no longer answers."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        console.buf = console.buf[-4096:] + console.ser.read(65536)


def _readings(uplinks, boots):
    """Every decoded reading with the span of simulated time (ms) it was taken in, and whether it came in
    an alarm frame. A reading's age is counted in whole minutes from its wake's clock, and the simulated
    clock runs on while a wake works (on a loaded machine a wake can last half a cycle at this speed), so
    a reading was taken somewhere between its wake's boot and its uplink, less its age: [lo_ms, hi_ms]."""
    out = []
    for up in uplinks:
        frame = decode(bytes.fromhex(up["hex"]))
        woke = max((t for t in boots if t <= up["sim_ms"]), default=up["sim_ms"])
        for r in frame["readings"]:
            age = r["age_min"] * 60000
            out.append({**r, "lo_ms": woke - age - 60000, "hi_ms": up["sim_ms"] - age, "sim_ms": up["sim_ms"] - age,
                        "uplink_ms": up["sim_ms"], "woke_ms": woke, "frame_age_min": frame["age_min"]})
    return out


def _error(scenario, r, channel, value):
    """How far value is from the scenario's truth at the closest moment the reading may have been taken."""
    span = max(r["hi_ms"] - r["lo_ms"], 0)
    truths = [scenario.value(channel, r["lo_ms"] + span * i // 50) for i in range(51)]
    return min(abs(value - t) for t in truths if t is not None)


def test_bin_fills_is_emptied_twice_and_catches_fire(app_files, boards):
    b = _flash("scn1", app_files, WASTE, speed=SPEED, scenario=str(SCENARIO))
    boards.append(b)
    t0 = b.status()["scenario_start_ms"]  # the scenario's time 0: the board's start, before its first boot
    assert t0 is not None and t0 <= b.events()[0]["sim_ms"]
    scenario = load_dict(read(SCENARIO), start_ms=t0)
    end_ms = t0 + int(scenario.duration_s * 1000)
    deadline = time.monotonic() + 3 * scenario.duration_s / SPEED + 60
    log = Console(b.port)  # a serial monitor: the node logs a line per wake (see _drain)
    try:
        while b.status()["sim_ms"] < end_ms + 2 * 3600 * 1000:  # and two hours for the last batch
            assert time.monotonic() < deadline, "the board's clock does not advance"
            _drain(log, 1.0)
    finally:
        log.close()
    st = b.status()
    boots = [e["sim_ms"] for e in b.events() if e["event"] == "boot"]
    readings = [r for r in _readings(b.captured(), boots) if r["sim_ms"] <= end_ms]
    b.stop()

    # a reading per cycle, give or take the cycles a slow wake skipped
    assert len(readings) >= 0.8 * scenario.duration_s / INTERVAL_S, (len(readings), st)
    assert st["boots"].get("watchdog", 0) == 0
    # the fill level within 3 points of the scenario's truth at each reading's time
    worst = 0.0
    for r in readings:
        assert r["faults"] == [], r
        err = _error(scenario, r, "fill_pct", r["fill_bp"] / 100)
        worst = max(worst, err)
        assert err <= 3, (r, scenario.value("fill_pct", r["sim_ms"]))
    # both pickups, each in the first two readings after the bin was emptied, and no other
    pickups = [r for r in readings if r["pickup"]]
    events = [e for e in scenario.events if e.type == "pickup"]
    assert len(pickups) == len(events) == 2, pickups
    for p, e in zip(pickups, events):
        assert scenario.sim_ms(e.at) <= p["hi_ms"] and p["lo_ms"] <= scenario.sim_ms(e.at) + 2 * INTERVAL_S * 1000, \
            (p, e.at)
        assert p["tilt"] and p["frame_age_min"] <= 1  # sent at once
    # the fire alarm within one cycle of the fire's start, sent at once
    [fire] = [e for e in scenario.events if e.type == "fire"]
    start_ms = scenario.sim_ms(fire.at)
    alarms = [r for r in readings if r["fire"]]
    assert alarms, "no fire alarm"
    first = alarms[0]
    # No reading that saw the fire went without the alarm. (A reading's time is rebuilt from its uplink's
    # time and its age in whole minutes, and the clock runs on while a slow wake works, so a reading taken
    # just before the start can look as if it came after it: what it measured decides, not its time.)
    missed = [r for r in readings if r["sim_ms"] < first["sim_ms"] and r["temp_cdeg"] >= 5000]
    assert not missed, missed
    # the wake that raised it began within one cycle of the start, and sent it at once
    assert first["woke_ms"] - start_ms <= INTERVAL_S * 1000 + 5 * 60000, (first, start_ms)
    assert first["frame_age_min"] <= 1
    print(f"\n{len(readings)} readings, worst fill error {worst:.2f} points, fire alarm "
          f"{(first['uplink_ms'] - start_ms) / 60000:.1f} min after the start, boots {st['boots']}")


def _console_lines(c, marker, timeout=30):
    return c.read_until(marker, timeout=timeout).decode(errors="replace")


def test_corrupted_rtc_memory_is_detected_and_reset_cleanly(app_files, boards):
    b = _flash("rtc1", app_files, None, speed=60)  # no config yet: the app stays at the REPL
    boards.append(b)
    c = Console(b.port)
    try:
        c.raw_repl()
        config = json.dumps({"kind": "waste", "interval_s": 60, "batch_max_age_s": 120})
        # a blob with the node state's magic and version but a body that fails its checksum
        c.exec("import os\ntry:\n    os.mkdir('/config')\nexcept OSError:\n    pass\n"
               f"with open({device_spec.NODE_CONFIG!r}, 'w') as f:\n    f.write({config!r})\n"
               "from bysans.hal import board\nboard().rtc_memory(b'BYS\\x01' + bytes(range(200)) * 4)")
        c.write(b"board().deepsleep(1000)\x04")
        first = _console_lines(c, b"queued")
        assert "wake 1 rtc corrupt (resets 1)" in first, first
        second = _console_lines(c, b"queued")
        assert "wake 2 rtc ok (resets 1)" in second, second
        deadline = time.monotonic() + 30
        while not b.captured():  # and it goes on sending
            assert time.monotonic() < deadline, "no uplink after the reset"
            _drain(c, 0.2)
    finally:
        c.close()


def test_missing_sensor_is_a_fault_marker_and_the_node_keeps_running(app_files, boards):
    sensors = [
        {"type": "vl53l1x", "bus": "i2c0", "address": 41},
        {"type": "lis3dh", "bus": "i2c0", "address": 24},
        {"type": "bme280", "bus": "i2c0", "address": 119},  # fitted at the other address: nobody answers
    ]
    b = _flash("miss1", app_files, {"kind": "waste", "interval_s": 120, "batch_max_age_s": 240,
                                    "sensors": sensors}, speed=60)
    boards.append(b)
    b.set_world(distance_mm=600.0)
    c = Console(b.port)
    try:
        b.reset()
        deadline = time.monotonic() + 40
        while len(b.captured()) < 2:
            assert time.monotonic() < deadline, "the node stopped sending"
            _drain(c, 0.2)
    finally:
        c.close()
    readings = _readings(b.captured(), [])
    assert len(readings) >= 3
    for r in readings:
        assert r["faults"] == ["temp_cdeg"] and r["temp_cdeg"] is None, r
        assert r["dist_mm"] == 600 and r["fill_bp"] == 5500 and r["batt_mv"] is not None, r
    assert b.status()["boots"].get("watchdog", 0) == 0
