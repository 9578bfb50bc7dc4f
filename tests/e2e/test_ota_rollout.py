"""A staged rollout to ten virtual boards through `fleet serve` and the real `fleet rollout` CLI: the new
release fails its self-test on one board of the first wave; that board returns to its confirmed slot by
itself and says so in its check-in, and the rollout halts at its threshold before the next wave opens."""

import json
import os
import subprocess
import sys
import threading

from fleet.rollout import OtaStore
from fleet.rollout.waves import assign
from lab.ota import HEAP, Lab, boot_into_slots, provision

N = 10
WAVES = [200, 500, 1000]  # 20%, 50%, 100%
CHECKS = """# Release self-test hook (bysans.ota.selftest runs it on the first boot of the new slot).
import json
from bysans.device_spec import OTA_CONFIG

def run(board):
    with open(OTA_CONFIG) as f:
        dev = json.load(f)['device']
    if dev == %r:
        raise ValueError('the distance sensor does not answer')
"""


def fleet(*args):
    proc = subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _parallel(fn, items):
    out, errs = {}, []

    def run(x):
        try:
            out[x] = fn(x)
        except Exception as e:  # noqa: BLE001
            errs.append((x, e))

    threads = [threading.Thread(target=run, args=(x,)) for x in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errs:
        raise errs[0][1]
    return out


def test_ten_board_rollout_halts_when_a_canary_rolls_back(make_board, tmp_path):
    lab = Lab(tmp_path)
    devs = [f"70B3D57ED00001{i:02d}" for i in range(N)]
    first_wave = [d for d, w in assign("0751", devs, WAVES, seed="e2e") if w == 0]
    failing = first_wave[0]
    r1 = lab.build("1.0.0")
    r2 = lab.derive(r1, "2.0.0", files={"bysans/checks.mpy": (CHECKS % failing).encode()})
    lab.publish(r1)
    lab.serve()
    boards = {d: make_board(heap=HEAP, speed=10, scenario=lab.wifi_scenario) for d in devs}
    try:
        def setup(d):
            provision(boards[d], r1, lab.root1, lab.config(d))
            r = boot_into_slots(boards[d])
            assert r.poll()["state"] == "confirmed"  # checks in: the server now knows the device
            return r

        repls = _parallel(setup, devs)
        lab.publish(r2)
        db = ["--db", lab.db_url]
        started = json.loads(fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--waves",
                                   "20%,50%,100%", "--halt-at", "10%", "--seed", "e2e", "--repo", lab.repo,
                                   "--json", *db))
        assert started["state"] == "running" and started["counts"]["pending"] == N

        store = OtaStore.open(lab.db_url)
        for _ in range(4):  # polling rounds: every board checks in (and updates if told to)
            _parallel(lambda d: repls[d].poll(), devs)
            if store.status(kommune="751").state != "running":
                break
        _parallel(lambda d: repls[d].report(), devs)  # the last outcomes reach the server
        status = json.loads(fleet("rollout", "status", "--kommune", "751", "--json", *db))
        assert status["state"] == "halted", status
        assert "1 of 2 devices failed" in status["note"], json.dumps(status["devices"], indent=0)
        by_dev = {d["device"]: d for d in status["devices"]}
        assert by_dev[failing]["state"] == "rolled_back"
        assert by_dev[failing]["reason"].startswith("SELFTEST")
        other = [d for d in first_wave if d != failing][0]
        assert by_dev[other]["state"] == "confirmed"
        for d in devs:
            if d not in first_wave:
                assert by_dev[d]["state"] == "pending"  # later waves never opened
        states = _parallel(lambda d: repls[d].state(), devs)
        assert states[failing]["version"] == "1.0.0" and states[failing]["last"]["state"] == "rolled_back"
        assert states[other]["version"] == "2.0.0"
        assert all(states[d]["version"] == "1.0.0" for d in devs if d not in first_wave)
        assert all(repls[d].files_ok() for d in devs)
        # the rolled-back board does not try the same release again, even when told to
        out = repls[failing].poll()
        assert out is not None and out["state"] in ("rolled_back", "confirmed")
        assert repls[failing].state()["version"] == "1.0.0"
        store.close()
    finally:
        lab.stop()
