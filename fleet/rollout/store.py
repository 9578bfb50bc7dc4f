"""Check-ins and rollouts in the registry database (tables in models.py, migration 0002_rollouts).

    store = OtaStore.open(db_url)                       # FLEET_DB, else the registry's SQLite file
    store.checkin(report, repo_dir)                     # -> {"take": path | None, "now": ..., "poll_s": ...}
    store.start(kommune="751", version="1.4.0", waves=[50, 250, 1000], halt_at=100, repo_dir=REPO)
    store.status(kommune="751"); store.pause(...); store.resume(...); store.abort(...)

Which release a device should take is answered per device at check-in (docs/formats/update-repository.md,
"Check-in"): a device in an open wave of a running (or completed) rollout gets that rollout's manifest; a
device of a kommune and board that has never had a rollout gets its channel; every other device holds.
"""

import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ..errors import (ReleaseNotPublished, RolloutConflict, RolloutError, RolloutNotFound, UsageError)
from ..registry import db
from ..registry.kommuner import lookup
from ..registry.models import Device
from . import waves as W
from .models import DEVICE_STATES, OtaDevice, Rollout, RolloutDevice

OPEN = ("running", "paused", "halted")
_MIGRATE_LOCK = threading.Lock()
DEFAULT_POLL_S = 3600
_DEVICE = re.compile(r"^[0-9A-Za-z_.:-]{1,32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
CLIENT_STATES = ("idle", "confirmed", "downloading", "installed", "failed", "rolled_back", "error")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def check_report(report) -> dict:
    """A check-in body as the device sends it (docs/formats/update-repository.md); UsageError if not."""
    if not isinstance(report, dict):
        raise UsageError("a check-in is a JSON object")
    dev = report.get("device")
    if not isinstance(dev, str) or not _DEVICE.match(dev):
        raise UsageError("a check-in needs 'device' (its DevEUI, 1-32 of A-Z a-z 0-9 _ . : -)")
    kommune = lookup(report.get("kommune", "")).kode
    board = report.get("board")
    if not isinstance(board, str) or not re.match(r"^[A-Za-z0-9_.-]{1,40}$", board):
        raise UsageError("a check-in needs 'board' (the board file's name)")
    state = report.get("state")
    if state not in CLIENT_STATES:
        raise UsageError(f"a check-in's 'state' is one of {', '.join(CLIENT_STATES)}")
    out = {"device": dev.upper(), "kommune": kommune, "board": board, "state": state}
    for k, n in (("version", 40), ("reason", 40), ("detail", 200), ("slot", 4)):
        v = report.get(k)
        out[k] = str(v)[:n] if v is not None else None
    for k in ("release", "target"):
        v = report.get(k)
        if v is not None and (not isinstance(v, str) or not _HEX64.match(v)):
            raise UsageError(f"'{k}' is a SHA-256 in lower-case hex")
        out[k] = v
    c = report.get("counter")
    if c is not None and (type(c) is not int or c < 0):
        raise UsageError("'counter' is a whole number")
    out["counter"] = c
    return out


@dataclass
class RolloutView:
    id: int
    kommune: str
    boards: list
    version: str
    counter: int
    manifest: str
    waves: list
    halt_at: int
    state: str
    wave: int
    note: str | None
    created_at: datetime
    updated_at: datetime
    counts: dict
    devices: list

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["waves"] = [f"{w / 10:g}%" for w in self.waves]
        d["halt_at"] = f"{self.halt_at / 10:g}%"
        d["open_waves"] = self.wave + 1
        return d


class OtaStore:
    def __init__(self, engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str | None = None) -> "OtaStore":
        engine = db.make_engine(db.resolve_url(url))
        with _MIGRATE_LOCK:  # Alembic keeps its context in module globals: one migration per process at once
            db.migrate(engine)
        return cls(engine)

    def close(self):
        self.engine.dispose()

    @contextmanager
    def _write(self):
        try:
            with Session(self.engine, expire_on_commit=False) as s:
                s.connection(execution_options={"fleet_write": True})
                yield s
                s.commit()
        except OperationalError as e:
            raise db.RegistryUnavailable(f"the registry did not answer: {db._first_line(e.orig)}") from None

    # ---- check-ins --------------------------------------------------------------------------------------

    def checkin(self, report: dict, repo_dir=None, *, poll_s: int = DEFAULT_POLL_S) -> dict:
        """Records a device's check-in, moves its rollouts on, and answers which release it should take."""
        r = check_report(report)
        for attempt in range(3):
            try:
                with self._write() as s:
                    take = self._checkin(s, r, repo_dir)
                break
            except IntegrityError:  # two first check-ins of one device at once: the second one retries
                if attempt == 2:
                    raise
        return {"take": take, "now": int(time.time()), "poll_s": poll_s}

    def _checkin(self, s, r, repo_dir):
        now = _now()
        d = s.scalars(select(OtaDevice).where(OtaDevice.device == r["device"])).first()
        if d is None:
            d = OtaDevice(device=r["device"], checkins=0, first_seen=now)
            s.add(d)
        for k in ("version", "counter", "release", "slot", "state", "reason", "detail", "target"):
            setattr(d, k, r[k])
        d.kommune_kode, d.board = r["kommune"], r["board"]
        d.checkins = (d.checkins or 0) + 1
        d.last_seen = now
        ro = s.scalars(select(Rollout).where(Rollout.kommune_kode == r["kommune"])
                       .order_by(Rollout.id.desc())).first()
        while ro is not None and r["board"] not in ro.boards:
            ro = s.scalars(select(Rollout).where(Rollout.kommune_kode == r["kommune"], Rollout.id < ro.id)
                           .order_by(Rollout.id.desc())).first()
        if ro is None:
            return _channel(repo_dir, r["kommune"], r["board"])
        member = s.scalars(select(RolloutDevice).where(RolloutDevice.rollout_id == ro.id,
                                                       RolloutDevice.device == r["device"])).first()
        if member is None:
            if ro.state in ("aborted", "completed"):
                return _manifest_path(ro) if ro.state == "completed" else None
            last = s.scalars(select(RolloutDevice.position).where(RolloutDevice.rollout_id == ro.id)
                             .order_by(RolloutDevice.position.desc())).first()
            member = RolloutDevice(rollout_id=ro.id, device=r["device"], position=(last or 0) + 1,
                                   wave=len(ro.waves) - 1, state="pending", updated_at=now)
            s.add(member)
        new, reason = W.device_state(member.state, r, ro.manifest)
        if (new, reason) != (member.state, member.reason):
            member.state, member.reason, member.updated_at = new, reason, now
        s.flush()
        self._step(s, ro)
        if member.state == "confirmed":
            return None if r["release"] == ro.manifest else _manifest_path(ro)
        if ro.state in ("running", "completed") and member.wave <= ro.wave:
            return _manifest_path(ro)
        return None

    def _step(self, s, ro: Rollout):
        members = [(w, st) for w, st in s.execute(select(RolloutDevice.wave, RolloutDevice.state)
                                                  .where(RolloutDevice.rollout_id == ro.id))]
        state, wave = W.step(ro.state, ro.wave, len(ro.waves), ro.halt_at, members, ro.forgiven)
        if (state, wave) != (ro.state, ro.wave):
            if state == "halted":
                open_states = [st for w, st in members if w <= wave]
                ro.note = (f"halted by itself: {sum(st in W.FAILED for st in open_states)} of "
                           f"{len(open_states)} devices failed (threshold {ro.halt_at / 10:g}%)")
            ro.state, ro.wave, ro.updated_at = state, wave, _now()

    # ---- rollouts ---------------------------------------------------------------------------------------

    def start(self, *, kommune, version: str, waves: list[int], halt_at: int, repo_dir, operator="fleet",
              board: str | None = None) -> RolloutView:
        kode = lookup(kommune).kode
        doc, digest = find_release(repo_dir, kode, version, board)
        boards = [board] if board else list(doc["boards"])
        with self._write() as s:
            for ro in s.scalars(select(Rollout).where(Rollout.kommune_kode == kode, Rollout.state.in_(OPEN))):
                if set(ro.boards) & set(boards):
                    raise RolloutConflict(f"rollout {ro.id} ({ro.version}, {ro.state}) is still open for "
                                          f"kommune {kode}")
            devices = set(s.scalars(select(Device.dev_eui).where(
                Device.kommune_kode == kode, Device.board.in_(boards), Device.state != "retired")))
            devices |= set(s.scalars(select(OtaDevice.device).where(
                OtaDevice.kommune_kode == kode, OtaDevice.board.in_(boards))))
            now = _now()
            ro = Rollout(kommune_kode=kode, boards=boards, version=doc["version"], counter=doc["counter"],
                         manifest=digest, waves=list(waves), halt_at=halt_at, state="running", wave=0,
                         forgiven=0, operator=operator, created_at=now, updated_at=now)
            s.add(ro)
            s.flush()
            runs = {d: (rel, c) for d, rel, c in s.execute(select(OtaDevice.device, OtaDevice.release,
                                                                  OtaDevice.counter)
                                                           .where(OtaDevice.device.in_(devices)))}
            for pos, (dev, wave) in enumerate(W.assign(kode, devices, waves)):
                st = "confirmed" if runs.get(dev, (None,))[0] == digest else "pending"
                s.add(RolloutDevice(rollout_id=ro.id, device=dev, position=pos, wave=wave, state=st,
                                    updated_at=now))
            s.flush()
            self._step(s, ro)
            rid = ro.id
        return self.get(rid)

    def _pick(self, s, kommune=None, rollout_id=None, states=None) -> Rollout:
        q = select(Rollout)
        if rollout_id is not None:
            q = q.where(Rollout.id == rollout_id)
        if kommune is not None:
            q = q.where(Rollout.kommune_kode == lookup(kommune).kode)
        if states:
            q = q.where(Rollout.state.in_(states))
        ro = s.scalars(q.order_by(Rollout.id.desc())).first()
        if ro is None:
            what = f"rollout {rollout_id}" if rollout_id is not None else "a rollout"
            where = f" for kommune {lookup(kommune).kode}" if kommune is not None else ""
            raise RolloutNotFound(f"no {what}{where}" + (f" that is {' or '.join(states)}" if states else ""))
        return ro

    def _change(self, kommune, rollout_id, allowed, new_state, note):
        with self._write() as s:
            ro = self._pick(s, kommune, rollout_id)
            if ro.state not in allowed:
                raise RolloutError(f"rollout {ro.id} is {ro.state}; it cannot be {new_state} now")
            if new_state == "running" and ro.state == "halted":
                # the admin has looked at the failures so far: only new ones count against the threshold
                ro.forgiven = sum(1 for st in s.scalars(select(RolloutDevice.state).where(
                    RolloutDevice.rollout_id == ro.id, RolloutDevice.wave <= ro.wave)) if st in W.FAILED)
            ro.state, ro.note, ro.updated_at = new_state, note, _now()
            s.flush()
            self._step(s, ro)
            rid = ro.id
        return self.get(rid)

    def pause(self, *, kommune=None, rollout_id=None, note=None):
        return self._change(kommune, rollout_id, ("running",), "paused", note)

    def resume(self, *, kommune=None, rollout_id=None, note=None):
        return self._change(kommune, rollout_id, ("paused", "halted"), "running", note)

    def abort(self, *, kommune=None, rollout_id=None, note=None):
        return self._change(kommune, rollout_id, ("running", "paused", "halted"), "aborted", note)

    def get(self, rollout_id: int) -> RolloutView:
        with Session(self.engine) as s:
            return self._view(s, self._pick(s, rollout_id=rollout_id))

    def status(self, *, kommune=None, rollout_id=None) -> RolloutView:
        with Session(self.engine) as s:
            return self._view(s, self._pick(s, kommune, rollout_id))

    def list(self, *, kommune=None) -> list[RolloutView]:
        with Session(self.engine) as s:
            q = select(Rollout).order_by(Rollout.id)
            if kommune is not None:
                q = q.where(Rollout.kommune_kode == lookup(kommune).kode)
            return [self._view(s, ro, with_devices=False) for ro in s.scalars(q)]

    def device(self, device: str) -> dict | None:
        with Session(self.engine) as s:
            d = s.scalars(select(OtaDevice).where(OtaDevice.device == device.upper())).first()
            if d is None:
                return None
            return {k: getattr(d, k) for k in ("device", "kommune_kode", "board", "version", "counter", "release",
                                               "slot", "state", "reason", "detail", "target", "checkins",
                                               "last_seen")}

    def _view(self, s, ro: Rollout, with_devices=True) -> RolloutView:
        rows = s.execute(select(RolloutDevice, OtaDevice).outerjoin(OtaDevice, OtaDevice.device == RolloutDevice.device)
                         .where(RolloutDevice.rollout_id == ro.id).order_by(RolloutDevice.position)).all()
        counts = {st: 0 for st in DEVICE_STATES}
        devices = []
        for m, d in rows:
            counts[m.state] += 1
            if with_devices:
                devices.append({"device": m.device, "wave": m.wave + 1, "state": m.state, "reason": m.reason,
                                "running": d.version if d else None, "last_seen": d.last_seen if d else None})
        counts["total"] = len(rows)
        return RolloutView(ro.id, ro.kommune_kode, list(ro.boards), ro.version, ro.counter, ro.manifest,
                           list(ro.waves), ro.halt_at, ro.state, ro.wave, ro.note, ro.created_at, ro.updated_at,
                           counts, devices)


def _manifest_path(ro: Rollout) -> str:
    return f"manifests/{ro.manifest}.json"


def _channel(repo_dir, kommune: str, board: str) -> str | None:
    rel = f"channels/{kommune}/{board}.json"
    if repo_dir is not None and not (Path(repo_dir) / rel).is_file():
        return None
    return rel


def find_release(repo_dir, kommune: str, version: str, board: str | None = None) -> tuple[dict, str]:
    """(manifest body, SHA-256 hex) of the published release `version` for `kommune` (the highest counter
    if the same version was published more than once)."""
    if repo_dir is None:
        raise UsageError("a rollout needs the update repository", hint="give --repo DIR or set FLEET_REPO")
    mdir = Path(repo_dir) / "manifests"
    if not mdir.is_dir():
        raise ReleaseNotPublished(f"{repo_dir} is not an update repository (no manifests/)")
    best = None
    for p in sorted(mdir.glob("*.json")):
        try:
            body = json.loads(p.read_bytes().split(b"\n", 1)[0])
        except ValueError:
            continue
        if body.get("version") != version or kommune not in body.get("kommuner", []):
            continue
        if board is not None and board not in body.get("boards", []):
            continue
        if best is None or body["counter"] > best[0]["counter"]:
            best = (body, p.stem)
    if best is None:
        raise ReleaseNotPublished(f"release {version} for kommune {kommune} is not published in {repo_dir}")
    return best
