"""A whole wake of an enrolled node on a virtual board, at a heap of your choosing: sampling, the LoRaWAN
join and an uplink over the simulated air, and an OTA check-in at `fleet serve` that verifies the release
the board runs. Provisioned once; each run starts from the same flash, so the same wake can be
run at several heaps (the smallest it runs in is its peak heap). Used by tests/e2e/test_wake_32bit.py and
scripts/benches/heap32.py."""

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fleet import device_spec
from fleet.registry import Operator, Registry
from fleet.sim import manager

from lab.netserver import NetworkServer
from lab.ota import LAB_WIFI, Lab
from lab.serialconsole import Console

SPEED = 10  # slow enough that a loaded host still meets the join-accept's receive window
NODE = {"interval_s": 60, "batch_max_age_s": 60, "ota_every_s": 300}
WORLD = {"distance_mm": 600.0, "temperature_c": 18.5}


class WakeLab:
    """`with WakeLab(dir, board) as w: ok, lines = w.wake("112K")`."""

    def __init__(self, base: Path, board: str, *, interpreter: str | None = None, name: str = "wake",
                 ota: bool = True, files: dict | None = None):
        self.base, self.board, self.interpreter, self.name = Path(base), board, interpreter, name
        self.ota = ota  # False: the cycle alone (node.json's ota_every_s 0), to see what each part needs
        self.files = files or {}  # {board path: bytes} written with the node's config (e.g. a pending report)
        self.last_uplinks = []  # what the network server accepted in the last wake (lab.netserver.Uplink)
        self.base.mkdir(parents=True, exist_ok=True)
        self._env = {}

    def __enter__(self):
        env = {"FLEET_DB": None, "FLEET_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
               "FLEET_OPERATOR": "anna"}
        self.lab = Lab(self.base / "ota")
        env["FLEET_DB"] = self.lab.db_url
        for k, v in env.items():
            self._env[k] = os.environ.get(k)
            os.environ[k] = v
        self.lab.rel = self.lab.build("1.0.0", board=self.board)
        self.lab.publish(self.lab.rel)
        self._provision()
        return self

    def __exit__(self, *exc):
        self.lab.stop()
        for k, v in self._env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def _start(self, heap, forwarder):
        # the lab's access point in the board's world: its check-in goes over WiFi, as on a real board
        [b] = manager.start(names=[self.name], board=self.board, heap=heap, speed=SPEED, forwarder=forwarder,
                            interpreter=self.interpreter, scenario=self.lab.wifi_scenario)
        return b

    def _provision(self):
        from provisioning.deploy import deploy
        from provisioning.ota import provision
        from provisioning.session import Session

        self.lab.serve(poll_s=60)
        d = manager.sim_root() / self.name
        shutil.rmtree(d, ignore_errors=True)
        b = self._start(None, None)
        try:
            b.wait_prompt()
            fleet = Path(sys.executable).parent / "fleet"
            proc = subprocess.run([str(fleet), "enroll", "-k", "751", "--port", b.port, "--site", "Ceres Allé 4",
                                   "--kind", "waste", "--json"], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            [self.rec] = json.loads(proc.stdout)
            with Session(b.port) as s:
                provision(s, self.lab.rel, root=self.lab.root1, config=self.lab.config(self.rec["dev_eui"]),
                          wifi=LAB_WIFI)  # the check-in joins the lab's WLAN first, as a board does
                node = NODE if self.ota else {**NODE, "ota_every_s": 0}
                deploy(s, {device_spec.NODE_CONFIG: json.dumps(node).encode(), **self.files})
        finally:
            b.stop()
        reg = Registry.open(self.lab.db_url)
        try:
            self.app_key = reg.app_keys(Operator("anna", "751"), [self.rec["dev_eui"]],
                                        purpose="network server")[self.rec["dev_eui"]]
        finally:
            reg.close()
        shutil.copyfile(d / "flash.img", self.base / "flash.img")

    def wake(self, heap: str, timeout: float = 90.0, tries: int = 3):
        """_wake(), again when a join-accept missed its receive window on a busy host (no heap verdict)."""
        for _ in range(tries):
            ok, lines = self._wake(heap, timeout)
            if ok or "MemoryError" in self.last_text or "JoinFailed" not in self.last_text:
                break
        return ok, lines

    def _wake(self, heap: str, timeout: float):
        """One wake from power-on at `heap`, from the provisioned flash: (ok, the app's lines).
        ok: the board joined, its uplink reached the network server intact, the check-in confirmed the
        release it runs, and it went to deep sleep; no MemoryError anywhere on its serial port."""
        d = manager.sim_root() / self.name
        shutil.copyfile(self.base / "flash.img", d / "flash.img")
        self._forget_seq()
        text = ""  # the update server keeps running between wakes: the board's OTA config names its port
        with NetworkServer() as ns:
            ns.add_device(bytes.fromhex(self.rec["dev_eui"]), bytes.fromhex(self.rec["join_eui"]), self.app_key)
            b = self._start(heap, ns.address)
            try:
                b.set_world(**WORLD)
                c = Console(b.port)
                try:
                    end = time.monotonic() + timeout
                    while (time.monotonic() < end and b.status()["state"] != "sleeping"
                           and "MemoryError" not in text):
                        text += c.ser.read(65536).decode(errors="replace")
                    text += c.ser.read(65536).decode(errors="replace")
                finally:
                    c.close()
                asleep = b.status()["state"] == "sleeping"
            finally:
                b.stop()
            uplinks, problems = list(ns.uplinks), list(ns.problems)
        self.last_text = text
        self.last_uplinks = uplinks
        lines = [ln.strip() for ln in text.splitlines() if ln.startswith("bysans") or "Error" in ln]
        ok = (asleep and "MemoryError" not in text and not problems and len(uplinks) >= 1
              and any("joined" in ln for ln in lines)
              and (not self.ota or any("ota: confirmed" in ln for ln in lines)))
        return ok, lines

    def _forget_seq(self):
        # The board's flash is the provisioned one again, its ota/seq with it; the server forgets the seq it
        # saw too. Otherwise a check-in that comes sooner after boot than the last wake's did (the board's
        # clock starts at the host's and runs SPEED times faster) is refused as a replay: no heap verdict.
        from sqlalchemy import func, update

        from fleet.store.db import Database
        from fleet.store.models import CheckinAuth

        db = Database.open(self.lab.db_url)
        try:
            with db.write() as s:
                r = s.execute(update(CheckinAuth).where(func.upper(CheckinAuth.device) == self.rec["dev_eui"].upper())
                              .values(last_seq=0))
                assert r.rowcount == 1, "the lab's registry has no check-in key for this board"
        finally:
            db.close()

    def smallest_heap(self, low_k: int, high_k: int, step_k: int = 2, repeat: int = 3) -> int | None:
        """The smallest heap (KiB, to `step_k`) in [low_k, high_k] the wake runs in `repeat` times out of
        `repeat`; None if not even high_k. Near its edge a wake fails only now and then (where a parse or a
        socket's data falls in a fragmented heap), and one lucky pass is not a heap a board can count on."""
        def runs(k):
            return all(self.wake(f"{k}K")[0] for _ in range(repeat))

        if not runs(high_k):
            return None
        while high_k - low_k > step_k:
            mid = (low_k + high_k) // 2 // step_k * step_k
            if runs(mid):
                high_k = mid
            else:
                low_k = mid
        return high_k
