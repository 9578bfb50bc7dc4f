"""serve.checkin_store_ms_20k: what one check-in costs the store (OtaStore.checkin, the writer's work per
check-in) while a rollout of 20,000 devices is open, in ms per check-in, the median of 3 passes of 20
devices each taking the release (downloading, then confirmed: a state change each, the expensive kind).

Baseline: the same check-ins with the store's step as it was before issue 16 (every check-in read every
member of the rollout, and the wave timeout read every waiting member), on a copy of the same database.
Also reported: the same check-ins on a rollout of 200 devices ("small_ms"): a check-in's cost should not
grow with the rollout.
"""

import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from fleet.rollout import OtaStore
from fleet.rollout import waves as W
from fleet.rollout.store import _aware
from fleet.store.models import OtaDevice, RolloutDevice



class _OldStep(OtaStore):
    """The store's step before issue 16: every check-in expires and steps from every member's row."""

    def _may_move(self, s, ro, before, member):
        return True

    def _expire(self, s, ro, now):
        if ro.state != "running" or not ro.wave_timeout_s:
            return 0
        opened = _aware(ro.wave_opened_at) or _aware(ro.updated_at)
        n = 0
        for m in s.scalars(select(RolloutDevice).where(RolloutDevice.rollout_id == ro.id,
                                                       RolloutDevice.wave <= ro.wave,
                                                       RolloutDevice.state.in_(W.WAITING))):
            if W.overdue(_aware(m.seen_at), opened, ro.wave_timeout_s, now):
                m.reason, m.state, m.updated_at = f"was {m.state}", "silent", now
                n += 1
        return n

    def _step(self, s, ro, now=None, *, expired=False):
        now = now or self._now()
        if not expired:
            self._expire(s, ro, now)
        members = list(s.execute(select(RolloutDevice.wave, RolloutDevice.state, RolloutDevice.reason)
                                 .where(RolloutDevice.rollout_id == ro.id)))
        state, wave = W.step(ro.state, ro.wave, len(ro.waves), ro.halt_at, members, ro.forgiven)
        if (state, wave) != (ro.state, ro.wave):
            ro.state, ro.wave, ro.updated_at = state, wave, now


def _devices(n):
    return [f"70B3D57E{i:08X}" for i in range(n)]


def _db(path: Path, repo: Path, n: int) -> None:
    store = OtaStore.open(f"sqlite:///{path}")
    try:
        now = datetime.now(timezone.utc)
        with store.db.write() as s:
            s.add_all(OtaDevice(device=d, kommune_kode="0751", board="virtual", version="1.0.0", counter=100,
                                release="cd" * 32, state="idle", checkins=1, first_seen=now, last_seen=now)
                      for d in _devices(n))
        store.start(kommune="751", operator="bench", version="2.0.0", waves=[50, 250, 1000], halt_at=100,
                    repo_dir=repo, wave_timeout_s=86400, seed="bench")
    finally:
        store.close()


def _report(dev, state, release, seq, digest):
    return {"device": dev, "kommune": "0751", "board": "virtual", "version": "1.0.0", "counter": 100,
            "release": release, "slot": "a", "state": state, "reason": None, "detail": "", "target": digest,
            "seq": seq}


def _timed(cls, url, repo, devices, digest) -> float:
    """ms per check-in, median of 3 passes of len(devices) // 3 devices, each downloading then confirmed."""
    store = cls.open(url)
    try:
        per = []
        for p in range(3):
            mine = devices[p::3]
            t0 = time.perf_counter()
            for d in mine:
                store.checkin(_report(d, "downloading", "cd" * 32, 1, digest), repo)
                store.checkin(_report(d, "confirmed", digest, 2, digest), repo)
            per.append((time.perf_counter() - t0) * 1000 / (2 * len(mine)))
        return statistics.median(per)
    finally:
        store.close()


def _first_wave(url, n_pick):
    store = OtaStore.open(url)
    try:
        with store.db.read() as s:
            return list(s.scalars(select(RolloutDevice.device).where(RolloutDevice.wave == 0)
                                  .order_by(RolloutDevice.position).limit(n_pick)))
    finally:
        store.close()


def run(repo_of, digest):
    n_big, n_small, n_pick = 20_000, 200, 60
    with tempfile.TemporaryDirectory(prefix="bench-step-") as tmp:
        base = Path(tmp)
        repo = repo_of(base)
        out = {}
        for name, n in (("big", n_big), ("small", n_small)):
            _db(base / f"{name}.sqlite", repo, n)
            for which in ("new", "old"):
                shutil.copyfile(base / f"{name}.sqlite", base / f"{name}-{which}.sqlite")
        for name, n in (("big", n_big), ("small", n_small)):
            picks = _first_wave(f"sqlite:///{base / f'{name}-new.sqlite'}", min(n_pick, n // 20 - 1))
            for which, cls in (("new", OtaStore), ("old", _OldStep)):
                out[name, which] = _timed(cls, f"sqlite:///{base / f'{name}-{which}.sqlite'}", repo, picks, digest)
    return [{"bench": "serve.checkin_store_ms_20k", "value": round(out["big", "new"], 3), "unit": "ms/checkin",
             "baseline": round(out["big", "old"], 3),
             "baseline_is": "the store's step before issue 16 (every member read per check-in), same check-ins",
             "small_ms": round(out["small", "new"], 3), "small_baseline_ms": round(out["small", "old"], 3),
             "members": n_big, "small_members": n_small, "db": "sqlite"}]
