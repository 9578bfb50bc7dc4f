"""LoRaWAN (FUOTA) rollouts in the one database (fleet.store: tables fuota_rollouts, fuota_rollout_devices,
migration 0012_fuota_rollouts), moved by what the network server forwards.

    store = FuotaStore(db)                                   # a fleet.store.Database, shared with the registry
    store = FuotaStore.open(db_url)                          # or its own
    view = store.start(ro, plan=..., session=..., ...)       # fleet rollout start --via lorawan
    store.observe(uplinks, scope)                            # ingest: FPort 200-202 answers and FPort 222
                                                             # update reports (fleet.telemetry)
    checkin(s, report, now)                                  # an OTA check-in's version and state (OtaStore)
    store.status(kommune="751"); store.pause(...); store.resume(...); store.abort(...)
    devs = store.session_due(kommune="751"); store.record_session(rid, info, devs, operator=...)

The states and waves are fleet.fuota.rollout.LorawanRollout's: a rollout is loaded into one, moved, and its
changed rows written back, in one transaction (the rollout's row locked on PostgreSQL). The registry is the
only source of a device's kommune: an answer moves only a rollout of the kommune the registry puts the
device in. Every operator's change (start, pause, resume, abort, a wave's session) is audited with the
operator's name. No key is kept here: McKey leaves only in the session's frames and set-up requests.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timezone

from sqlalchemy import select

from ..codec.update_report import decode_report, report_tables
from ..errors import PayloadDecodeError, RolloutConflict, RolloutError, UsageError
from ..registry.kommuner import lookup
from ..store import Database, rollouts
from ..store import aware as _aware
from ..store.models import AuditEntry, Device, FuotaRollout, FuotaRolloutDevice
from . import clock as fclock
from .rollout import DONE, STATES, DeviceState, LorawanRollout, is_failure

OPEN = ("running", "paused", "halted")
PORTS = (200, 201, 202)  # TS005, TS004, TS003 (docs/formats/fuota.md)
REPORT_PORT = report_tables()["fport"]  # the node's update report (docs/formats/update-report.md)
log = logging.getLogger("fleet.fuota")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t):
    return None if t is None else _aware(t).astimezone(timezone.utc).isoformat()


def _operator(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 80:
        raise UsageError("a rollout change needs the operator's name (--operator or FLEET_OPERATOR, at most 80 "
                         "characters)", hint="e.g. --operator anna")
    return name


def _load(s, row: FuotaRollout) -> tuple[LorawanRollout, dict]:
    """The rollout as a LorawanRollout, and its member rows by DevEUI (lower case)."""
    ro = LorawanRollout(version=row.version, kommune=row.kommune_kode, waves=list(row.waves), halt_at=row.halt_at,
                        open_waves=row.open_waves, state=row.state, forgiven=row.forgiven or 0, note=row.note)
    members = {}
    for m in s.scalars(select(FuotaRolloutDevice).where(FuotaRolloutDevice.rollout_id == row.id)
                       .order_by(FuotaRolloutDevice.position)):
        ro.devices[m.dev_eui] = DeviceState(m.dev_eui, m.wave, m.state, m.received or 0, m.missing, m.reason,
                                            m.session)
        members[m.dev_eui] = m
    return ro, members


def _save(row: FuotaRollout, ro: LorawanRollout, members: dict, now: datetime, seen=()) -> None:
    """Writes back what moved: the members whose state or counts changed, and the rollout's state and waves
    (a wave that opens starts its timeout)."""
    for dev, d in ro.devices.items():
        m = members[dev]
        new = (d.state, d.reason, d.received, d.missing, d.session)
        if new != (m.state, m.reason, m.received or 0, m.missing, m.session):
            m.state, m.reason, m.received, m.missing, m.session = new
            m.updated_at = now
        if dev in seen:
            m.seen_at = now
    if ro.open_waves != row.open_waves:
        row.wave_opened_at = now
    if (ro.state, ro.open_waves, ro.forgiven, ro.note) != (row.state, row.open_waves, row.forgiven, row.note):
        row.state, row.open_waves, row.forgiven, row.note = ro.state, ro.open_waves, ro.forgiven, ro.note
        row.updated_at = now


def _expire(row: FuotaRollout, ro: LorawanRollout, now: datetime) -> int:
    """The wave timeout: when the open waves opened more than it ago, their devices not done are silent."""
    if ro.state != "running" or not row.wave_timeout_s:
        return 0
    if (now - _aware(row.wave_opened_at)).total_seconds() < row.wave_timeout_s:
        return 0
    return ro.expire()


def _session_over(row: FuotaRollout, session: int | None, at: datetime) -> bool:
    """Whether `at` is after the class C window of the device's session closed."""
    for ses in row.sessions or ():
        if ses["n"] == session:
            return fclock.gps_time(at.timestamp()) >= ses["session_gps"] + 2 ** ses["timeout"]
    return False


def _locked(s, q):
    return s.scalars(q.with_for_update() if s.bind.dialect.name == "postgresql" else q)


def checkin(s, report: dict, now: datetime) -> int:
    """An OTA check-in (fleet.rollout.store.check_report's dict) of a device in an open FUOTA rollout of its
    registry kommune: what it runs after the update (LorawanRollout.report). In the check-in's transaction.
    Returns how many rollouts it moved."""
    dev = report["device"]
    if len(dev) != 16 or s.scalars(select(FuotaRolloutDevice.id).join(
            FuotaRollout, FuotaRollout.id == FuotaRolloutDevice.rollout_id).where(
            FuotaRolloutDevice.dev_eui == dev.lower(), FuotaRollout.state.in_(OPEN)).limit(1)).first() is None:
        return 0  # one index seek per check-in: most devices are in no FUOTA rollout
    kode = s.scalars(select(Device.kommune_kode).where(Device.dev_eui == dev.upper())).first()
    if kode is None:
        return 0
    return _apply(s, kode, dev.lower(), now,
                  lambda ro, row: ro.report(dev.lower(), version=report.get("version"), state=report.get("state"),
                                            reason=report.get("reason")))


def _reported(s, row: FuotaRollout, ro: LorawanRollout, dev: str, payload: bytes, now: datetime) -> None:
    """An update report (docs/formats/update-report.md) of a device of this rollout: it moves the device only
    when it names the rollout's release counter (a report of another release is heard, nothing more), or when
    it refuses a block without naming one (counter 0) while the device holds this rollout's block. What the
    device runs then goes into the registry, as a check-in's version does: the release once it confirmed it,
    the version the payload was built against (the rollout's --from: a delta installs only on it) after it
    rolled back."""
    try:
        rep = decode_report(payload)
    except PayloadDecodeError:
        return  # heard (ingest rejects it as a bad payload)
    if rep["counter"] is None:
        # no counter: a refusal before the manifest was read, or a block given up; it fails the device only
        # while it holds this rollout's block (LorawanRollout.refused_unnamed); anything else is heard
        if rep["event"] == "refused":
            ro.refused_unnamed(dev, rep["reason"])
        return
    if row.counter is None or rep["counter"] != row.counter:
        return
    ro.reported(dev, rep["event"], rep["reason"])
    # a refusal says nothing of what runs (a DOWNGRADE refusal: something newer than the payload's base)
    runs = {"confirmed": row.version, "rolled_back": row.from_version}.get(rep["event"])
    reg = s.scalars(select(Device).where(Device.dev_eui == dev.upper())).first() if runs else None
    if reg is not None and reg.firmware_version != runs:
        s.add(AuditEntry(at=now, operator="system", action="device.firmware", kommune_kode=reg.kommune_kode,
                         dev_eui=reg.dev_eui, changes={"firmware_version": [reg.firmware_version, runs]},
                         note=f"update report: {rep['event']} (LoRaWAN rollout {row.id})"))
        reg.firmware_version = runs


def _apply(s, kode, dev, now, fn) -> int:
    moved = 0
    q = (select(FuotaRollout).join(FuotaRolloutDevice, FuotaRolloutDevice.rollout_id == FuotaRollout.id)
         .where(FuotaRollout.kommune_kode == kode, FuotaRollout.state.in_(OPEN), FuotaRolloutDevice.dev_eui == dev))
    for row in list(_locked(s, q)):
        ro, members = _load(s, row)
        before = (members[dev].state, members[dev].reason)
        fn(ro, row)
        _expire(row, ro, now)
        moved += (ro.devices[dev].state, ro.devices[dev].reason) != before
        _save(row, ro, members, now, seen=(dev,))
    return moved


class FuotaStore:
    """FUOTA rollouts on `db`, the one fleet.store.Database. `clock`: a function returning the time (an aware
    datetime), for tests."""

    def __init__(self, db: Database, *, clock=None):
        self.db = db
        self._owns_db = False
        self._clock = clock or _now

    @classmethod
    def open(cls, url: str | None = None, *, clock=None) -> "FuotaStore":
        store = cls(Database.open(url), clock=clock)
        store._owns_db = True
        return store

    def close(self):
        if self._owns_db:
            self.db.close()

    # ---- what the network server forwards ------------------------------------------------------------------

    def observe(self, uplinks, scope=None) -> Counter:
        """FUOTA answers (fleet.telemetry.Uplink on FPorts 200-202) and update reports (FPort 222), in their
        order, into the open rollouts of each device's registry kommune; `scope`: the kommune codes the writer
        may move (None: all). An update report moves its device only when it names the rollout's release
        counter, or refuses a block without a counter while the device holds this rollout's block. Returns
        counts: moved (a device's state or reason changed), heard (read, nothing moved), not_in_rollout (no
        open rollout of its kommune holds it, or another kommune's writer)."""
        ups = [u for u in uplinks if (u.f_port in PORTS or u.f_port == REPORT_PORT) and u.payload
               and not u.simulated]
        counts = Counter()
        if not ups:
            return counts
        now = self._clock()
        with self.db.write() as s:
            q = select(Device.dev_eui, Device.kommune_kode).where(Device.dev_eui.in_(sorted({u.dev_eui.upper()
                                                                                          for u in ups})))
            if scope is not None:
                q = q.where(Device.kommune_kode.in_(list(scope)))
            kommune = dict(s.execute(q).all())
            by_kommune: dict = {}
            for u in ups:
                k = kommune.get(u.dev_eui.upper())
                if k is None:
                    counts["not_in_rollout"] += 1
                else:
                    by_kommune.setdefault(k, []).append(u)
            for kode, items in by_kommune.items():
                devs = sorted({u.dev_eui.lower() for u in items})
                q = (select(FuotaRollout).where(FuotaRollout.kommune_kode == kode, FuotaRollout.state.in_(OPEN))
                     .order_by(FuotaRollout.id))
                rows = list(_locked(s, q))
                held = {}
                for row in rows:
                    for d in s.scalars(select(FuotaRolloutDevice.dev_eui).where(
                            FuotaRolloutDevice.rollout_id == row.id, FuotaRolloutDevice.dev_eui.in_(devs))):
                        held.setdefault(d, row)  # a device is in one open rollout (one per kommune and board)
                for row in {r.id: r for r in held.values()}.values():
                    ro, members = _load(s, row)
                    mine = [u for u in items if held.get(u.dev_eui.lower()) is row]
                    for u in mine:
                        dev = u.dev_eui.lower()
                        d = ro.devices[dev]
                        before = (d.state, d.reason, d.received, d.missing)
                        if u.f_port == REPORT_PORT:
                            _reported(s, row, ro, dev, u.payload, now)
                        else:
                            ro.observe(dev, u.f_port, u.payload, session_over=_session_over(row, d.session,
                                                                                            u.received_at))
                        counts["moved" if (d.state, d.reason, d.received, d.missing) != before else "heard"] += 1
                    _expire(row, ro, now)
                    _save(row, ro, members, now, seen={u.dev_eui.lower() for u in mine})
                counts["not_in_rollout"] += sum(1 for u in items if u.dev_eui.lower() not in held)
        return counts

    # ---- operators' changes -----------------------------------------------------------------------------

    def open_conflict(self, kommune: str, board: str) -> None:
        """RolloutConflict if a FUOTA rollout of this kommune and board is still open."""
        with self.db.read() as s:
            self._conflict(s, kommune, board)

    @staticmethod
    def _conflict(s, kode, board):
        row = s.scalars(select(FuotaRollout).where(FuotaRollout.kommune_kode == kode, FuotaRollout.board == board,
                                                   FuotaRollout.state.in_(OPEN))).first()
        if row is not None:
            raise RolloutConflict(f"LoRaWAN rollout {row.id} ({row.version}, {row.state}) is still open for kommune "
                                  f"{kode} and board {board}",
                                  hint=f"fleet rollout abort --via lorawan --id {row.id} ends it")

    def start(self, ro: LorawanRollout, *, board: str, from_version: str | None, seed: str, payload_sha256: str,
              payload_bytes: int, dr: int, loss: float, freq_hz: int, folder: str, session: dict | None,
              operator: str, wave_timeout_s: int | None = None, counter: int | None = None) -> dict:
        """Keeps a planned rollout (fleet rollout start --via lorawan) with its first session (`session`: the
        session's entry, its devices already marked in `ro`), audited. `counter`: the release's signed
        manifest counter, which the devices' update reports name."""
        operator = _operator(operator)
        if wave_timeout_s is not None and wave_timeout_s <= 0:
            raise UsageError("a wave timeout is a positive duration", hint="e.g. --wave-timeout 24h")
        now = self._clock()
        with self.db.write() as s:
            self._conflict(s, ro.kommune, board)
            row = FuotaRollout(kommune_kode=ro.kommune, board=board, version=ro.version, counter=counter,
                               from_version=from_version,
                               waves=list(ro.waves), halt_at=ro.halt_at, state=ro.state, open_waves=ro.open_waves,
                               forgiven=0, seed=seed, wave_timeout_s=wave_timeout_s, wave_opened_at=now,
                               payload_sha256=payload_sha256, payload_bytes=payload_bytes, dr=dr, loss=loss,
                               freq_hz=freq_hz, folder=str(folder), sessions=[session] if session else [],
                               operator=operator, note=None, created_at=now, updated_at=now)
            s.add(row)
            s.flush()
            for pos, d in enumerate(ro.devices.values()):
                s.add(FuotaRolloutDevice(rollout_id=row.id, dev_eui=d.dev_eui, position=pos, wave=d.wave,
                                         state=d.state, reason=d.reason, received=d.received, missing=d.missing,
                                         session=d.session, updated_at=now))
            rollouts.audit(s, operator, "start", row, {"rollout_id": [None, row.id], "via": [None, "lorawan"],
                                                        "version": [None, ro.version], "board": [None, board],
                                                        "waves": [None, list(ro.waves)], "halt_at": [None, ro.halt_at],
                                                        "payload_sha256": [None, payload_sha256],
                                                        "state": [None, "running"]}, now)
            s.flush()
            return self._view(s, row)

    def _pick(self, s, kommune=None, rollout_id=None, states=None, lock=False) -> FuotaRollout:
        return rollouts.pick(s, FuotaRollout, kommune=kommune, rollout_id=rollout_id, states=states, lock=lock,
                             what="LoRaWAN rollout",
                             hint="fleet rollout status --via lorawan --all lists them; "
                                  "fleet rollout start --via lorawan starts one")

    def _change(self, verb, kommune, rollout_id, allowed, note, operator) -> dict:
        operator = _operator(operator)
        with self.db.write() as s:
            row = self._pick(s, kommune, rollout_id, lock=True)
            if row.state not in allowed:
                raise RolloutError(f"LoRaWAN rollout {row.id} is {row.state}; it cannot be {verb}d now",
                                   hint="fleet rollout status --via lorawan shows its state")
            now = self._clock()
            ro, members = _load(s, row)
            was = ro.state
            if verb == "resume":
                ro.resume()
                row.wave_opened_at = now  # the wave timeout counts from the resume
            else:
                ro.state = {"pause": "paused", "abort": "aborted"}[verb]
            ro.note = note if note is not None else ro.note if verb != "resume" else None
            _save(row, ro, members, now)
            rollouts.audit(s, operator, verb, row, {"rollout_id": [row.id, row.id], "state": [was, ro.state]}, now,
                   note=note)
            s.flush()
            return self._view(s, row)

    def pause(self, *, operator, kommune=None, rollout_id=None, note=None) -> dict:
        return self._change("pause", kommune, rollout_id, ("running",), note, operator)

    def resume(self, *, operator, kommune=None, rollout_id=None, note=None) -> dict:
        return self._change("resume", kommune, rollout_id, ("paused", "halted"), note, operator)

    def abort(self, *, operator, kommune=None, rollout_id=None, note=None) -> dict:
        return self._change("abort", kommune, rollout_id, OPEN, note, operator)

    # ---- one session per wave ---------------------------------------------------------------------------

    def session_due(self, *, kommune=None, rollout_id=None) -> dict:
        """What the next session is for: {"rollout": view without devices, "devices": [DevEUI, ...], "n": its
        number}. RolloutError when no device of the open waves waits for one (it says why)."""
        now = self._clock()
        with self.db.write() as s:  # the wave timeout may open the next wave first
            row = self._pick(s, kommune, rollout_id, lock=True)
            ro, members = _load(s, row)
            _expire(row, ro, now)
            _save(row, ro, members, now)
            devs = ro.session_devices()
            if not devs:
                if row.state != "running":
                    why = f"it is {row.state}" + (f" ({row.note})" if row.note else "")
                    hint = ("fleet rollout resume --via lorawan --kommune KODE, after looking at the failures"
                            if row.state in ("halted", "paused") else "nothing is left to send")
                else:
                    busy = ro.wave_devices()
                    sessions = sorted({ro.devices[d].session for d in busy if ro.devices[d].session})
                    why = (f"wave {ro.open_waves} is open and its {len(busy)} devices not done are in session "
                           + ", ".join(map(str, sessions)))
                    hint = ("the next wave opens when they are confirmed, failed or rolled back, or when the wave "
                            "timeout passes (fleet rollout status --via lorawan --devices)")
                raise RolloutError(f"LoRaWAN rollout {row.id}: no device waits for a session: {why}", hint=hint)
            return {"rollout": self._view(s, row, with_devices=False), "devices": devs,
                    "n": len(row.sessions or []) + 1}

    def record_session(self, rollout_id: int, session: dict, devices: list, *, operator: str) -> dict:
        """Marks `devices` as in `session` (its entry: n, wave, session_gps, timeout, ...), audited. Refused
        when the rollout moved meanwhile (another session, another state)."""
        operator = _operator(operator)
        now = self._clock()
        with self.db.write() as s:
            row = self._pick(s, rollout_id=rollout_id, lock=True)
            ro, members = _load(s, row)
            if row.state != "running" or session["n"] != len(row.sessions or []) + 1 \
                    or not set(devices) <= set(ro.session_devices()):
                raise RolloutError(f"LoRaWAN rollout {row.id} changed while session {session['n']} was prepared",
                                   hint="run the command again")
            for d in devices:
                ro.devices[d].session = session["n"]
            _save(row, ro, members, now)
            row.sessions = [*(row.sessions or []), session]
            row.updated_at = now
            rollouts.audit(s, operator, "session", row, {"rollout_id": [row.id, row.id],
                                                         "session": [None, session["n"]],
                                                         "wave": [None, session["wave"]],
                                                         "devices": [None, len(devices)]}, now)
            s.flush()
            return self._view(s, row)

    # ---- what an operator reads -------------------------------------------------------------------------

    def status(self, *, kommune=None, rollout_id=None) -> dict:
        now = self._clock()
        with self.db.write() as s:  # a status applies the wave timeout: it must not show the rollout stale
            row = self._pick(s, kommune, rollout_id, lock=True)
            ro, members = _load(s, row)
            if _expire(row, ro, now):
                _save(row, ro, members, now)
                s.flush()
            return self._view(s, row)

    def list(self, *, kommune=None) -> list[dict]:
        q = select(FuotaRollout).order_by(FuotaRollout.id)
        if kommune is not None:
            q = q.where(FuotaRollout.kommune_kode == lookup(kommune).kode)
        with self.db.read() as s:
            return [self._view(s, row, with_devices=False) for row in s.scalars(q)]

    def _view(self, s, row: FuotaRollout, with_devices: bool = True) -> dict:
        ro, _ = _load(s, row)
        nb = {ses["n"]: ses.get("nb_frag") for ses in row.sessions or ()}
        counts = {st: 0 for st in STATES}
        waves = [{"wave": i + 1, "share": f"{w / 10:g}%", "open": i < ro.open_waves, "devices": 0,
                  "counts": {st: 0 for st in STATES}, "sessions": []} for i, w in enumerate(ro.waves)]
        devices = []
        for pos, d in enumerate(ro.devices.values(), 1):
            counts[d.state] += 1
            w = waves[d.wave]
            w["devices"] += 1
            w["counts"][d.state] += 1
            if d.session is not None and d.session not in w["sessions"]:
                w["sessions"].append(d.session)
            if with_devices:
                devices.append({"position": pos, "device": d.dev_eui, "wave": d.wave + 1, "state": d.state,
                                "reason": d.reason, "session": d.session, "received": d.received,
                                "missing": d.missing, "nb_frag": nb.get(d.session)})
        for w in waves:
            w["counts"] = {k: v for k, v in w["counts"].items() if v}
        counts["total"] = len(ro.devices)
        open_ = ro.in_open_waves()
        return {"id": row.id, "via": "lorawan", "kommune": row.kommune_kode, "board": row.board,
                "version": row.version, "counter": row.counter, "from": row.from_version, "state": row.state,
                "note": row.note,
                "open_waves": row.open_waves, "waves": [f"{w / 10:g}%" for w in row.waves],
                "halt_at": f"{row.halt_at / 10:g}%", "failed_in_open_waves": sum(is_failure(d.state, d.reason)
                                                                                   for d in open_),
                "in_open_waves": len(open_), "wave_timeout_s": row.wave_timeout_s,
                "wave_opened_at": _iso(row.wave_opened_at), "seed": row.seed, "folder": row.folder,
                "payload": {"bytes": row.payload_bytes, "sha256": row.payload_sha256}, "dr": row.dr,
                "loss": row.loss, "freq_hz": row.freq_hz, "sessions": list(row.sessions or []),
                "waiting_for_session": len(ro.session_devices()), "counts": counts, "per_wave": waves,
                "done_pct": (100 * sum(counts[st] for st in DONE) // counts["total"]) if counts["total"] else 100,
                "operator": row.operator, "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
                **({"devices": devices} if with_devices else {})}

