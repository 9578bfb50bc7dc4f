"""An environment node on a virtual board whose clock runs 60 times faster than real time: each sensor's
wait (the SCD4x's 5 s periodic result above all) must last as long in simulated time as on a board, and the
readings must come through without fault markers."""

import json
import time

from fleet import device_spec
from fleet.codec import decode
from fleet.release.build import build
from fleet.sim import manager
from lab.serialconsole import Console
from provisioning.deploy import deploy
from provisioning.session import Session

WORLD = dict(temperature_c=21.5, humidity_pct=45.0, pressure_pa=100800.0, co2_ppm=812.0, pm1_0=3.0,
             pm2_5=7.0, pm4_0=9.0, pm10=11.0, battery_mv=3900.0)


def test_env_node_reads_co2_at_speed_60(tmp_path, make_board):
    out = tmp_path / "rel"
    build("virtual", "0.1.0", out)
    files = {"/" + p.relative_to(out / "files").as_posix(): p.read_bytes()
             for p in sorted((out / "files").rglob("*")) if p.is_file()}
    files[device_spec.NODE_CONFIG] = json.dumps({"kind": "env", "interval_s": 60, "batch_max_age_s": 60}).encode()
    b = make_board(speed=60)
    with Session(b.port) as s:
        deploy(s, files)
    b.set_world(**WORLD)
    c = Console(b.port)
    try:
        b.reset()
        deadline = time.monotonic() + 10  # a 60 s cycle is 1 s real; the first wake sends at once
        while not b.captured():
            assert time.monotonic() < deadline, "no uplink from the environment node"
            end = time.monotonic() + 0.2  # keep the serial output drained (see test_node_scenario._drain)
            while time.monotonic() < end:
                c.buf = c.buf[-4096:] + c.ser.read(65536)
    finally:
        c.close()
    readings = [r for up in b.captured() for r in decode(bytes.fromhex(up["hex"]))["readings"]]
    assert readings
    for r in readings:
        assert r["faults"] == [], r
        assert r["co2_ppm"] == 810, r  # 812 ppm in payload v2's 5 ppm steps
