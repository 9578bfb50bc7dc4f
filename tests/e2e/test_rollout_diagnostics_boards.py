"""A rollout halted by its diagnostics: release 2.0.0 passes its self-test and confirms, then hangs on every
other wake until the watchdog resets the board. Three virtual boards run the node's own cycle at 20x (a
wake a minute, an OTA check-in at every wake through `fleet serve`); the canary's check-ins carry its
watchdog resets, and the wave halts after the soak, before the next wave opens, though no install failed."""

import json
import os
import subprocess
import sys
import threading
import time

from fleet import device_spec
from fleet.codec.diag import decode_diag
from fleet.resources import firmware_dir
from fleet.rollout import OtaStore
from fleet.rollout.waves import assign
from lab.ota import HEAP, Lab, provision
from lab.serialconsole import Console
from provisioning.deploy import deploy
from provisioning.session import Session

N = 3
SPEED = 20  # a wake is 3 s; an OTA download stays well inside its 120 s watchdog (6 s at this speed)
WAVES = [300, 1000]  # one canary, then the rest
NODE = {"kind": "waste", "interval_s": 60, "batch_max_age_s": 60, "ota_every_s": 60, "watchdog_ms": 10000}
ARMED = "    wdt = b.watchdog(cfg.watchdog_ms)\n"
HANG = ("    import os\n"
        "    try:\n"
        "        os.stat('/hang.flag')\n"
        "        os.remove('/hang.flag')\n"
        "    except OSError:\n"
        "        open('/hang.flag', 'w').close()\n"
        "        while True:  # the watchdog is armed and never fed\n"
        "            b.sleep_ms(1000)\n")


def _hanging_app() -> bytes:
    src = (firmware_dir() / "bysans" / "app.py").read_text()
    assert src.count(ARMED) == 1
    return src.replace(ARMED, ARMED + HANG).encode()


def fleet(*args):
    proc = subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _parallel(fn, items):
    errs = []

    def run(x):
        try:
            fn(x)
        except Exception as e:  # noqa: BLE001
            errs.append(e)

    threads = [threading.Thread(target=run, args=(x,)) for x in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errs:
        raise errs[0]


class Drain:
    """Keeps a board's serial output read (a full pipe would stall it) and its text for the failure message."""

    def __init__(self, board):
        self.c = Console(board.port)
        self.text = ""
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                self.text = (self.text + self.c.ser.read(65536).decode(errors="replace"))[-20000:]
            except Exception:  # noqa: BLE001 - the board stopped
                return

    def close(self):
        self.stop.set()
        self.t.join(5)
        self.c.close()


def _wait(fn, timeout, what, drains):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.5)
    what = what() if callable(what) else what
    raise AssertionError(f"{what}; the boards said:\n" + "\n---\n".join(d.text[-1500:] for d in drains.values()))


def test_a_release_that_resets_by_watchdog_every_other_wake_halts_its_rollout(make_board, tmp_path):
    lab = Lab(tmp_path)
    devs = [f"70B3D57ED00009{i:02d}" for i in range(N)]
    canary = [d for d, w in assign("0751", devs, WAVES, seed="diag") if w == 0]
    assert len(canary) == 1
    canary = canary[0]
    r1 = lab.build("1.0.0")
    r2 = lab.derive(r1, "2.0.0", files={"bysans/app.mpy": _hanging_app()})
    lab.publish(r1)
    lab.serve(poll_s=60)
    boards = {d: make_board(heap=HEAP, speed=SPEED, scenario=lab.wifi_scenario) for d in devs}
    drains = {}
    store = OtaStore.open(lab.db_url)
    try:
        # 1.0.0 went out by a rollout too: from then on a device takes what a rollout names, not the channel
        store.start(kommune="751", version="1.0.0", waves=[1000], halt_at=100, repo_dir=lab.repo, operator="anna")
        def setup(d):
            b = boards[d]
            b.wait_prompt()
            provision(b, r1, lab.root1, lab.config(d, poll_s=60))
            with Session(b.port) as s:
                deploy(s, {device_spec.NODE_CONFIG: json.dumps(NODE).encode()})

        _parallel(setup, devs)
        for d, b in boards.items():
            drains[d] = Drain(b)
            b.reset()  # from here on the boards run by themselves: a wake a minute, a check-in at each

        def all_reporting(k):
            return all((store.device(d) or {}).get("checkins", 0) >= k and store.device(d)["diag"] for d in devs)

        _wait(lambda: all_reporting(2), 90, "not every board checked in twice with diagnostics", drains)
        lab.publish(r2)
        db = ["--db", lab.db_url]
        started = json.loads(fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--waves", "30%,100%",
                                   "--halt-at", "10%", "--soak", "2", "--seed", "diag", "--repo", lab.repo, "--json",
                                   *db))
        assert started["state"] == "running" and started["soak"] == 2

        seen = []

        def halted():
            st = store.status(kommune="751")
            seen.append(" | ".join(f"{x['device'][-2:]} {x['state']} n{x['diag_checkins']} w{x['watchdog_resets']}"
                                   for x in st.devices))
            return st.state != "running"

        _wait(halted, 150, lambda: "the rollout did not halt:\n" + "\n".join(seen[-5:]), drains)
        status = json.loads(fleet("rollout", "status", "--kommune", "751", "--json", *db))
        assert status["state"] == "halted", status
        assert "watchdog resets per check-in" in status["note"], status["note"]
        by_dev = {x["device"]: x for x in status["devices"]}
        assert by_dev[canary]["state"] == "confirmed"  # its self-test passed: no install failed
        assert by_dev[canary]["watchdog_resets"] >= 2
        for d in devs:
            if d != canary:
                assert by_dev[d]["state"] == "pending"  # the next wave never opened
                assert store.device(d)["version"] == "1.0.0"
        assert store.device(canary)["version"] == "2.0.0"
        assert store.device(canary)["diag"]["reset_cause"] == "watchdog"
        assert store.device(canary)["diag"]["watchdog_resets"] >= 2
        assert status["diagnostics"]["old"]["watchdog_resets"] == 0
        # every board sent its diagnostics record on FPort 221 at its first wake, and it decodes
        for d, b in boards.items():
            recs = [decode_diag(bytes.fromhex(u["hex"])) for u in b.captured() if u["fport"] == 221]
            assert recs and recs[0]["watchdog_resets"] == 0, (d, recs)
    finally:
        for dr in drains.values():
            dr.close()
        store.close()
        lab.stop()
