"""Check-ins and rollouts in the one database (fleet.store: tables in models.py, migrations 0002_rollouts and
0004_checkin_auth).

    store = OtaStore(db)                                # a fleet.store.Database, shared with the registry
    store = OtaStore.open(db_url)                       # or its own: FLEET_DB, else the registry's SQLite file
    key = store.issue_checkin_key("70B3D57ED0000001")   # for provisioning (provisioning/ota.py)
    report = store.authenticate(body, mac)              # the server, before anything is recorded (auth.py)
    store.checkin(report, repo_dir)                     # -> {"take": path | None, "now": ..., "poll_s": ...}
    store.start(kommune="751", version="1.4.0", waves=[50, 250, 1000], halt_at=100, repo_dir=REPO,
                wave_timeout_s=86400, operator="anna")
    store.status(kommune="751"); store.pause(..., operator="anna"); store.resume(...); store.abort(...)

Every change an operator makes (start, pause, resume, abort) names the operator and is written to the
audit log (fleet.store.models.AuditEntry, action "rollout.<verb>") in the change's own transaction.

Which release a device should take is answered per device at check-in (docs/formats/update-repository.md,
"Check-in"): a device in an open wave of a running (or completed) rollout gets that rollout's manifest; a
device of a kommune and board that has never had a rollout gets its channel; every other device holds.
"""

import json
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import and_, case, func, select, text
from sqlalchemy.exc import IntegrityError

from ..errors import (CHECKIN_REJECT_REASONS, CheckinForbidden, CheckinRejected, FleetError, ReleaseNotPublished,
                      RolloutConflict, RolloutError, UsageError)
from ..registry.kommuner import lookup
from ..store import Database, rollouts
from ..store import aware as _aware
from ..store.models import (DEVICE_STATES, AlertRow, AuditEntry, CheckinAuth, Device, OtaDevice, Rollout,
                            RolloutDevice)
from . import auth as A
from . import diagnostics as D
from . import waves as W

OPEN = ("running", "paused", "halted")
DEFAULT_POLL_S = 3600
_DEVICE = re.compile(r"^[0-9A-Za-z_.:-]{1,32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
CLIENT_STATES = ("idle", "confirmed", "downloading", "installed", "failed", "rolled_back", "error")


def _new_auth(s, dev) -> CheckinAuth:
    """A device's check-in-auth row with nothing counted yet, added to the session."""
    row = CheckinAuth(device=dev, last_seq=0, accepted=0, unauthenticated=0, rejected=0)
    s.add(row)
    return row


_CHECKIN_FORMAT = "the check-in format is in docs/formats/update-repository.md, \"Check-in\""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _duration(seconds: int | None) -> str | None:
    if not seconds:
        return None
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % n == 0 and (unit != "d" or seconds >= 2 * 86400):  # 24h rather than 1d
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


def check_device(device) -> str:
    """A device id as in ota/config.json (upper-cased), or UsageError."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise UsageError("a check-in needs 'device' (its DevEUI, 1-32 of A-Z a-z 0-9 _ . : -)")
    return device.upper()


def check_report(report) -> dict:
    """A check-in body as the device sends it (docs/formats/update-repository.md); UsageError if not."""
    if not isinstance(report, dict):
        raise UsageError("a check-in is a JSON object")
    dev = check_device(report.get("device"))
    kommune = lookup(report.get("kommune", "")).kode
    board = report.get("board")
    if not isinstance(board, str) or not re.match(r"^[A-Za-z0-9_.-]{1,40}$", board):
        raise UsageError("a check-in needs 'board' (the board file's name)")
    state = report.get("state")
    if state not in CLIENT_STATES:
        raise UsageError(f"a check-in's 'state' is one of {', '.join(CLIENT_STATES)}")
    out = {"device": dev, "kommune": kommune, "board": board, "state": state}
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
    out["diag"] = D.check_diag(report.get("diag"))
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
    seed: str | None = None              # the device order's seed (waves.order); None before 0004
    wave_timeout_s: int | None = None    # None: a wave waits for every device
    wave_opened_at: datetime | None = None
    checkins: dict = field(default_factory=dict)  # {"keyless": members without a key, "rejected": ...}
    soak: int | None = None              # check-ins a confirmed member owes before its wave is done
    diagnostics: dict = field(default_factory=dict)  # {"new": Rates, "old": Rates} (fleet.rollout.diagnostics)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["waves"] = [f"{w / 10:g}%" for w in self.waves]
        d["halt_at"] = f"{self.halt_at / 10:g}%"
        d["open_waves"] = self.wave + 1
        d["wave_timeout"] = _duration(self.wave_timeout_s)
        return _utc_iso(d)


log = logging.getLogger("fleet.rollout")

_REJECT = {  # reason -> (message, hint); {d} is the device. Never anything of a key.
    "missing_mac": ("check-in for device {d} has no MAC, but the registry holds a check-in key for it: its "
                    "check-ins must be signed",
                    "the board's ota/config.json needs that key ('checkin_key') and firmware that signs "
                    "check-ins; 'fleet rollout checkin-key --port PORT' writes a new key to the board"),
    "bad_mac": ("check-in for device {d} is not authentic: its MAC does not match the device's check-in key",
                "if the board was given a new key elsewhere, write one again with 'fleet rollout checkin-key "
                "--port PORT' against this registry; otherwise someone else is posting for this device"),
    "replay": ("check-in for device {d} repeats an old 'seq' (a replay, or the board lost ota/seq and has "
               "no clock)",
               "give the board a new key ('fleet rollout checkin-key --port PORT'): a new key starts 'seq' again"),
    "no_key": ("device {d} has no check-in key, and this server does not accept unauthenticated check-ins",
               "give the board a key ('fleet rollout checkin-key --port PORT'), or, while migrating boards "
               "provisioned before check-in keys, run 'fleet serve --accept-keyless'"),
    "unknown_key": ("check-in for device {d} is signed, but this registry holds no check-in key for it",
                    "the key was made against another registry (--db / FLEET_DB): write a new one with "
                    "'fleet rollout checkin-key --port PORT' against this one"),
    "unknown_device": ("device {d} has no check-in key and has never been seen: only devices known before "
                       "the migration may check in without a key (--accept-keyless)",
                       "provision it with a check-in key (docs/ota.md, 'Check-in keys')"),
    "wrong_kommune": ("device {d} belongs to another kommune than its board claims: the check-in was refused",
                      "the registry decides a device's kommune: fix the board's ota/config.json ('fleet ota "
                      "enable --port PORT' writes it again), or move the device in the registry"),
}
assert set(_REJECT) == set(CHECKIN_REJECT_REASONS)


class OtaStore:
    """Check-ins and rollouts on `db`, the one fleet.store.Database (the registry's). `sealer`: opens
    check-in keys (default: the registry's key, fleet/registry/sealing.py, loaded when first needed);
    `clock`: a function returning the time (an aware datetime), for tests."""

    def __init__(self, db: Database, *, sealer=None, clock=None):
        self.db = db
        self._owns_db = False
        self._sealer_obj = sealer
        self._clock = clock or _now
        self._stats = Counter()
        self._stats_lock = threading.Lock()

    @classmethod
    def open(cls, url: str | None = None, *, sealer=None, clock=None) -> "OtaStore":
        """An OtaStore on a Database of its own (opened and migrated by Database.open), closed with it: for
        a command that needs nothing else of the database. A process that also has a Registry passes its
        `registry.db` to OtaStore() instead."""
        store = cls(Database.open(url), sealer=sealer, clock=clock)
        store._owns_db = True
        return store

    @property
    def engine(self):
        return self.db.engine

    def _now(self) -> datetime:
        return self._clock()

    def _sealer(self):
        if self._sealer_obj is None:
            from ..registry.sealing import Sealer, load_key

            self._sealer_obj = Sealer(load_key())
        return self._sealer_obj

    def close(self):
        """Closes the database if this store opened it (OtaStore.open); a shared one stays open."""
        if self._owns_db:
            self.db.close()

    def _write(self):
        return self.db.write()

    def _read(self):
        return self.db.read()

    def _write_retrying(self, fn):
        """fn(session) in one transaction, tried up to 3 times: two first check-ins of one device at once
        both insert its row, and the second one's IntegrityError means "try again, the row exists now"."""
        for attempt in range(3):
            try:
                with self._write() as s:
                    return fn(s)
            except IntegrityError:
                if attempt == 2:
                    raise

    # ---- check-ins --------------------------------------------------------------------------------------

    def checkin(self, report: dict, repo_dir=None, *, poll_s: int = DEFAULT_POLL_S) -> dict:
        """Records a device's check-in, moves its rollouts on, and answers which release it should take."""
        r = check_report(report)
        take = self._write_retrying(lambda s: self._checkin(s, r, repo_dir))
        return {"take": take, "now": int(self._now().timestamp()), "poll_s": poll_s}

    def checkin_batch(self, items, repo_dir=None, *, poll_s: int = DEFAULT_POLL_S,
                      accept_keyless: bool = False) -> list:
        """Many check-ins, each a (body, mac) as received, in one transaction and in their order, each as
        authenticate() then checkin() would record and answer it. Returns, per item, the answer or the
        error authenticate() or checkin() would have raised (CheckinRejected, UsageError). One commit for
        all of them: a server's single check-in writer (fleet/serve/checkins.py) passes what arrived
        meanwhile. Any other error rolls the whole batch back and is raised (no savepoint per check-in:
        they cost a sixth of the time; the writer then records the batch one check-in at a time). On
        PostgreSQL, batches of several servers on one database take turns (an advisory lock), so one
        device's rows are never written by two at once."""
        parsed = []
        for body, mac in items:
            try:
                report = json.loads(body or b"null")
                if not isinstance(report, dict):
                    raise UsageError("a check-in is a JSON object", hint=_CHECKIN_FORMAT)
                parsed.append((body, mac, report, check_device(report.get("device"))))
            except ValueError as e:  # UsageError is not a ValueError
                parsed.append(UsageError(f"the check-in body is not JSON: {e}", hint=_CHECKIN_FORMAT))
            except UsageError as e:
                parsed.append(e)

        def run(s):
            if s.bind.dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(727002)"))
            now = self._now()
            out, verdicts = [], []
            for p in parsed:
                if isinstance(p, Exception):
                    out.append(p)
                    continue
                body, mac, report, dev = p
                verdict = self._verify(s, dev, body, mac, report, accept_keyless, now)
                verdicts.append(verdict)
                if verdict in _REJECT:
                    out.append(_rejection(verdict, dev))
                    continue
                try:
                    r = check_report(report)
                except UsageError as e:
                    out.append(e)
                    continue
                take = self._checkin(s, r, repo_dir)
                out.append({"take": take, "now": int(self._now().timestamp()), "poll_s": poll_s})
            return out, verdicts

        out, verdicts = self._write_retrying(run)
        with self._stats_lock:
            self._stats.update(verdicts)
        return out

    def _checkin(self, s, r, repo_dir):
        now = self._now()
        d = s.scalars(select(OtaDevice).where(OtaDevice.device == r["device"])).first()
        if d is None:
            d = OtaDevice(device=r["device"], checkins=0, first_seen=now)
            s.add(d)
        for k in ("version", "counter", "release", "slot", "state", "reason", "detail", "target"):
            setattr(d, k, r[k])
        d.kommune_kode, d.board = r["kommune"], r["board"]
        d.checkins = (d.checkins or 0) + 1
        d.last_seen = now
        diff = D.record(s, d, r, now)  # resets since its last check-in, on the release it reports
        if r["version"]:  # what the node runs is what it says here (never a network server's registration)
            reg = s.scalars(select(Device).where(Device.dev_eui == r["device"])).first()
            if reg is not None and reg.firmware_version != r["version"]:
                s.add(AuditEntry(at=now, operator="system", action="device.firmware", kommune_kode=reg.kommune_kode,
                                 dev_eui=reg.dev_eui, changes={"firmware_version": [reg.firmware_version,
                                                                                    r["version"]]},
                                 note="reported in a check-in"))
                reg.firmware_version = r["version"]
        from ..fuota.store import checkin as fuota_checkin  # here: fleet.fuota imports fleet.rollout.waves

        fuota_checkin(s, r, now)  # a device in a LoRaWAN rollout: what it runs after the FUOTA update
        ro = s.scalars(select(Rollout).where(Rollout.kommune_kode == r["kommune"])
                       .order_by(Rollout.id.desc())).first()
        while ro is not None and r["board"] not in ro.boards:
            ro = s.scalars(select(Rollout).where(Rollout.kommune_kode == r["kommune"], Rollout.id < ro.id)
                           .order_by(Rollout.id.desc())).first()
        if ro is None:
            return _channel(repo_dir, r["kommune"], r["board"])
        member = s.scalars(select(RolloutDevice).where(RolloutDevice.rollout_id == ro.id,
                                                       RolloutDevice.device == r["device"])).first()
        before = None if member is None else self._moves(member, ro)
        if member is None:
            if ro.state in ("aborted", "completed"):
                return _manifest_path(ro) if ro.state == "completed" else None
            last = s.scalars(select(RolloutDevice.position).where(RolloutDevice.rollout_id == ro.id)
                             .order_by(RolloutDevice.position.desc())).first()
            member = RolloutDevice(rollout_id=ro.id, device=r["device"], position=(last or 0) + 1,
                                   wave=len(ro.waves) - 1, state="pending", updated_at=now)
            s.add(member)
        member.seen_at = now
        was = member.state
        new, reason = W.device_state(member.state, r, ro.manifest)
        if (new, reason) != (member.state, member.reason):
            member.state, member.reason, member.updated_at = new, reason, now
        D.count_member(member, diff, was=was, manifest=ro.manifest, release=r["release"])
        s.flush()
        expired = self._expire(s, ro, now)
        if expired or self._may_move(s, ro, before, member):
            self._step(s, ro, now, expired=True)
        if member.state == "confirmed":
            return None if r["release"] == ro.manifest else _manifest_path(ro)
        if ro.state in ("running", "completed") and member.wave <= ro.wave:
            return _manifest_path(ro)
        return None

    def _expire(self, s, ro: Rollout, now: datetime) -> int:
        """Marks the members of a running rollout's open waves that were not heard from within its wave
        timeout as silent (reason: "was <state>"). Returns how many."""
        if ro.state != "running" or not ro.wave_timeout_s:
            return 0
        opened = _aware(ro.wave_opened_at) or _aware(ro.updated_at)
        cutoff = now - timedelta(seconds=ro.wave_timeout_s)
        if opened > cutoff:  # the wave opened less than a timeout ago: nobody can be overdue yet
            return 0
        n = 0
        # index seeks (ix_rollout_devices_state_wave): the waiting members of the open waves not heard from
        # since the cutoff (and, with a soak, the confirmed ones still soaking), never the whole rollout;
        # overdue() still decides
        waves = list(range(ro.wave + 1))
        states = (*W.WAITING, "confirmed") if ro.soak else tuple(W.WAITING)
        base = select(RolloutDevice).where(RolloutDevice.rollout_id == ro.id, RolloutDevice.state.in_(states),
                                           RolloutDevice.wave.in_(waves))
        since = cutoff.astimezone(timezone.utc)
        for q in (base.where(RolloutDevice.seen_at.is_(None)), base.where(RolloutDevice.seen_at <= since)):
            for m in s.scalars(q):
                if m.state == "confirmed" and not D.soaking(m.state, m.diag_checkins, ro.soak):
                    continue
                if W.overdue(_aware(m.seen_at), opened, ro.wave_timeout_s, now):
                    was = "soaking" if m.state == "confirmed" else m.state  # silent while soaking: a failure
                    m.reason, m.state, m.updated_at = f"was {was}", "silent", now
                    n += 1
        if n:
            s.flush()
        return n

    @staticmethod
    def _moves(member: RolloutDevice, ro: Rollout) -> tuple:
        """What of a member can move its rollout: its state and reason, its resets and watchdog resets (the
        diagnostics rule), and whether it is still soaking."""
        return (member.state, member.reason, member.resets, member.watchdog_resets,
                D.soaking(member.state, member.diag_checkins, ro.soak))

    def _may_move(self, s, ro: Rollout, before, member: RolloutDevice) -> bool:
        """Whether one member's change from `before` (_moves(); None: it just joined) can move the rollout,
        which was settled before it (every change is followed by a step). Only a running rollout moves; it
        halts when failures grow or the diagnostics rule says so (a member's resets changed), a soak that
        ends may open the next wave, and otherwise the next wave opens only when a member becomes terminal
        and none of the open waves is still on its way (an index seek, not a read of every member). A
        check-in that changes nothing, or moves a device along its way, costs no step."""
        now = self._moves(member, ro)
        if ro.state != "running" or now == before:
            return False
        if before is not None and now[2:] != before[2:]:  # resets, watchdog resets or the soak changed
            return True
        if W.is_failure(member.state, member.reason):
            return True
        if member.state not in W.TERMINAL:
            return False
        on_its_way = [st for st in DEVICE_STATES if st not in W.TERMINAL]
        return s.scalars(select(RolloutDevice.id).where(RolloutDevice.rollout_id == ro.id,
                                                        RolloutDevice.state.in_(on_its_way),
                                                        RolloutDevice.wave.in_(list(range(ro.wave + 1))))
                         .limit(1)).first() is None

    def _step(self, s, ro: Rollout, now: datetime | None = None, *, expired: bool = False):
        """Applies the wave timeout (unless the caller just did: `expired`) and the diagnostics rule
        (fleet.rollout.diagnostics, two sums), then moves the rollout on (waves.step) from its members counted
        by wave, state and reason (one grouped query); a confirmed member still soaking holds its wave open."""
        now = now or self._now()
        if not expired:
            self._expire(s, ro, now)
        if ro.state == "running":
            note, _ = D.verdict(*self._diag_groups(s, ro), ro.halt_at)
            if note:
                ro.state, ro.note, ro.updated_at = "halted", note, now
                return
        soak = ro.soak or 0
        shown = case((and_(RolloutDevice.state == "confirmed", func.coalesce(RolloutDevice.diag_checkins, 0) < soak),
                      "soaking"), else_=RolloutDevice.state) if soak else RolloutDevice.state
        members = []
        for w, st, why, k in s.execute(select(RolloutDevice.wave, shown, RolloutDevice.reason, func.count())
                                       .where(RolloutDevice.rollout_id == ro.id)
                                       .group_by(RolloutDevice.wave, shown, RolloutDevice.reason)):
            members.extend([(w, st, why)] * k)
        state, wave = W.step(ro.state, ro.wave, len(ro.waves), ro.halt_at, members, ro.forgiven)
        if (state, wave) != (ro.state, ro.wave):
            if state == "halted":
                open_m = [(st, why) for w, st, why in members if w <= wave]
                silent = sum(st == "silent" and W.is_failure(st, why) for st, why in open_m)
                ro.note = (f"halted by itself: {sum(W.is_failure(st, why) for st, why in open_m)} of "
                           f"{len(open_m)} devices failed (threshold {ro.halt_at / 10:g}%)"
                           + (f"; {silent} of them went silent after taking the release" if silent else ""))
            if wave != ro.wave:
                ro.wave_opened_at = now
            ro.state, ro.wave, ro.updated_at = state, wave, now

    @staticmethod
    def _diag_groups(s, ro: Rollout) -> tuple["D.Rates", "D.Rates"]:
        """The diagnostics rule's two groups, summed in the database: the confirmed members of the open waves
        past their soak, and the members still pending on the old release."""
        def sums(*where):
            row = s.execute(select(func.count(), func.coalesce(func.sum(RolloutDevice.diag_checkins), 0),
                                   func.coalesce(func.sum(RolloutDevice.resets), 0),
                                   func.coalesce(func.sum(RolloutDevice.watchdog_resets), 0))
                            .where(RolloutDevice.rollout_id == ro.id, RolloutDevice.diag_checkins > 0,
                                   *where)).one()
            return D.Rates(*(int(v) for v in row))

        new = sums(RolloutDevice.wave <= ro.wave, RolloutDevice.state == "confirmed",
                   RolloutDevice.diag_checkins >= max(ro.soak or 0, 1))
        old = sums(RolloutDevice.state == "pending")
        return new, old

    # ---- rollouts ---------------------------------------------------------------------------------------

    def start(self, *, kommune, version: str, waves: list[int], halt_at: int, repo_dir, operator: str,
              board: str | None = None, wave_timeout_s: int | None = None, seed: str | None = None,
              soak: int = 0) -> RolloutView:
        """Starts a rollout. `operator`: who starts it (its name, kept with the rollout and in the audit
        log); `seed` orders the devices (default: a new random one, kept with the rollout);
        `wave_timeout_s`: members of an open wave not heard from for that long count as silent; `soak`: a
        confirmed member holds its wave open until it has checked in that many times on the release, so
        its diagnostics are judged first (fleet.rollout.diagnostics)."""
        operator = _operator_name(operator)
        kode = lookup(kommune).kode
        seed = W.check_seed(seed) if seed is not None else W.new_seed()
        if wave_timeout_s is not None and wave_timeout_s <= 0:
            raise UsageError("a wave timeout is a positive duration", hint="e.g. --wave-timeout 24h")
        if type(soak) is not int or not 0 <= soak <= 10000:
            raise UsageError(f"a soak is a number of check-ins from 0 to 10000, not {soak!r}", hint="e.g. --soak 24")
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
            now = self._now()
            ro = Rollout(kommune_kode=kode, boards=boards, version=doc["version"], counter=doc["counter"],
                         manifest=digest, waves=list(waves), halt_at=halt_at, state="running", wave=0,
                         forgiven=0, operator=operator, created_at=now, updated_at=now, seed=seed,
                         wave_timeout_s=wave_timeout_s, wave_opened_at=now, soak=soak or None)
            s.add(ro)
            s.flush()
            runs = {d: (rel, c) for d, rel, c in s.execute(select(OtaDevice.device, OtaDevice.release,
                                                                  OtaDevice.counter)
                                                           .where(OtaDevice.device.in_(devices)))}
            for pos, (dev, wave) in enumerate(W.assign(kode, devices, waves, seed=seed)):
                st = "confirmed" if runs.get(dev, (None,))[0] == digest else "pending"
                s.add(RolloutDevice(rollout_id=ro.id, device=dev, position=pos, wave=wave, state=st,
                                    updated_at=now))
            s.flush()
            self._step(s, ro, now)
            rollouts.audit(s, operator, "start", ro, {"rollout_id": [None, ro.id], "version": [None, ro.version],
                                                       "boards": [None, list(boards)], "manifest": [None, digest],
                                                       "waves": [None, list(waves)], "halt_at": [None, halt_at],
                                                       "soak": [None, soak],
                                                       "state": [None, "running"]}, now)
            rid = ro.id
        return self.get(rid)

    def _pick(self, s, kommune=None, rollout_id=None, states=None) -> Rollout:
        return rollouts.pick(s, Rollout, kommune=kommune, rollout_id=rollout_id, states=states)

    def _change(self, verb, kommune, rollout_id, allowed, new_state, note, operator):
        operator = _operator_name(operator)
        with self._write() as s:
            ro = self._pick(s, kommune, rollout_id)
            if ro.state not in allowed:
                raise RolloutError(f"rollout {ro.id} is {ro.state}; it cannot be {new_state} now")
            now = self._now()
            rollouts.audit(s, operator, verb, ro, {"rollout_id": [ro.id, ro.id], "state": [ro.state, new_state]}, now,
                   note=note)
            if new_state == "running" and ro.state == "halted":
                # the admin has looked at the failures so far: only new ones count against the threshold
                ro.forgiven = sum(1 for st, why in s.execute(select(RolloutDevice.state, RolloutDevice.reason)
                                                             .where(RolloutDevice.rollout_id == ro.id,
                                                                    RolloutDevice.wave <= ro.wave))
                                  if W.is_failure(st, why))
                # and only new diagnostics: the open waves' counts start again
                for m in s.scalars(select(RolloutDevice).where(RolloutDevice.rollout_id == ro.id,
                                                               RolloutDevice.wave <= ro.wave)):
                    m.diag_checkins = m.resets = m.watchdog_resets = 0
            if new_state == "running":
                ro.wave_opened_at = now  # the wave timeout counts from the resume: nobody was told while stopped
            ro.state, ro.note, ro.updated_at = new_state, note, now
            s.flush()
            self._step(s, ro, now)
            rid = ro.id
        return self.get(rid)

    def pause(self, *, operator: str, kommune=None, rollout_id=None, note=None):
        return self._change("pause", kommune, rollout_id, ("running",), "paused", note, operator)

    def resume(self, *, operator: str, kommune=None, rollout_id=None, note=None):
        return self._change("resume", kommune, rollout_id, ("paused", "halted"), "running", note, operator)

    def abort(self, *, operator: str, kommune=None, rollout_id=None, note=None):
        return self._change("abort", kommune, rollout_id, ("running", "paused", "halted"), "aborted", note,
                            operator)

    def get(self, rollout_id: int) -> RolloutView:
        with self._read() as s:
            return self._view(s, self._pick(s, rollout_id=rollout_id))

    def _refresh(self, rollout_ids):
        """Applies wave timeouts now (a rollout moves on check-ins; a status must not show it stale)."""
        with self._write() as s:
            now = self._now()
            for ro in s.scalars(select(Rollout).where(Rollout.id.in_(rollout_ids), Rollout.state == "running",
                                                      Rollout.wave_timeout_s.is_not(None))):
                self._step(s, ro, now)

    def status(self, *, kommune=None, rollout_id=None) -> RolloutView:
        with self._read() as s:
            rid = self._pick(s, kommune, rollout_id).id
        self._refresh([rid])
        return self.get(rid)

    def list(self, *, kommune=None) -> list[RolloutView]:
        q = select(Rollout).order_by(Rollout.id)
        if kommune is not None:
            q = q.where(Rollout.kommune_kode == lookup(kommune).kode)
        with self._read() as s:
            ids = [ro.id for ro in s.scalars(q)]
        self._refresh(ids)
        with self._read() as s:
            return [self._view(s, ro, with_devices=False) for ro in s.scalars(q)]

    def device(self, device: str) -> dict | None:
        with self._read() as s:
            d = s.scalars(select(OtaDevice).where(OtaDevice.device == device.upper())).first()
            if d is None:
                return None
            out = {k: getattr(d, k) for k in ("device", "kommune_kode", "board", "version", "counter", "release",
                                              "slot", "state", "reason", "detail", "target", "checkins",
                                              "last_seen")}
            a = s.scalars(select(CheckinAuth).where(CheckinAuth.device == d.device)).first()
            out["checkin_auth"] = _auth_dict(a)
            out["diag"] = None if d.diag_at is None else _utc_iso({
                "reset_cause": d.diag_cause, "boots": d.diag_boots, "watchdog_resets": d.diag_watchdog,
                "heap_min": d.diag_heap_min, "exception": d.diag_exception, "at": d.diag_at})
            return _utc_iso(out)

    def _view(self, s, ro: Rollout, with_devices=True) -> RolloutView:
        rows = s.execute(select(RolloutDevice, OtaDevice, CheckinAuth)
                         .outerjoin(OtaDevice, OtaDevice.device == RolloutDevice.device)
                         .outerjoin(CheckinAuth, CheckinAuth.device == RolloutDevice.device)
                         .where(RolloutDevice.rollout_id == ro.id).order_by(RolloutDevice.position)).all()
        counts = {st: 0 for st in DEVICE_STATES}
        checkins = {"keyless": 0, "rejected": 0}
        devices = []
        _, diag = D.rollout_verdict([(m.wave, m.state, m.diag_checkins, m.resets, m.watchdog_resets)
                                     for m, _, _ in rows], ro.wave, ro.halt_at, ro.soak)
        for pos, (m, d, a) in enumerate(rows, 1):
            counts[m.state] += 1
            checkins["keyless"] += not (a and a.key_sealed)
            checkins["rejected"] += (a.rejected or 0) if a else 0
            if with_devices:
                devices.append({"position": pos, "device": m.device, "wave": m.wave + 1, "state": m.state,
                                "reason": m.reason, "running": d.version if d else None,
                                "last_seen": d.last_seen if d else None, "checkin_key": bool(a and a.key_sealed),
                                "rejected_checkins": (a.rejected or 0) if a else 0,
                                "diag_checkins": m.diag_checkins or 0, "resets": m.resets or 0,
                                "watchdog_resets": m.watchdog_resets or 0,
                                "soaking": D.soaking(m.state, m.diag_checkins, ro.soak)})
        counts["total"] = len(rows)
        return RolloutView(ro.id, ro.kommune_kode, list(ro.boards), ro.version, ro.counter, ro.manifest,
                           list(ro.waves), ro.halt_at, ro.state, ro.wave, ro.note, ro.created_at, ro.updated_at,
                           counts, devices, ro.seed, ro.wave_timeout_s, ro.wave_opened_at, checkins, ro.soak or 0,
                           diag)

    # ---- check-in keys and authentication (auth.py) ----------------------------------------------------

    def issue_checkin_key(self, device: str) -> A.CheckinKey:
        """A new check-in key for `device`, sealed into the registry (replacing any earlier one, whose
        check-ins then fail). Write it to the device with provisioning.ota; never print it."""
        key = A.CheckinKey.new(check_device(device))
        self.save_checkin_key(key)
        return key

    def owner_kommune(self, device: str) -> str | None:
        """The kommune a device belongs to, as a check-in is judged: the registry's, or, for a device the
        registry does not hold, the one it first checked in for; None when neither knows it."""
        dev = check_device(device)
        with self.db.read() as s:
            owner = s.scalars(select(Device.kommune_kode).where(Device.dev_eui == dev)).first()
            if owner is None:
                owner = s.scalars(select(OtaDevice.kommune_kode).where(OtaDevice.device == dev)).first()
            return owner

    def save_checkin_key(self, key: A.CheckinKey):
        """Seals `key` into the registry as its device's key; the device's "seq" starts again."""
        dev = check_device(key.device)
        sealed = self._sealer().seal(key.raw, A.seal_context(dev))

        def save(s):
            row = s.scalars(select(CheckinAuth).where(CheckinAuth.device == dev)).first() or _new_auth(s, dev)
            row.key_sealed, row.key_created_at, row.last_seq = sealed, self._now(), 0

        self._write_retrying(save)

    def has_checkin_key(self, device: str) -> bool:
        with self._read() as s:
            return bool(s.scalars(select(CheckinAuth.key_sealed).where(
                CheckinAuth.device == check_device(device))).first())

    def authenticate(self, body: bytes, mac: str | None, *, accept_keyless: bool = False) -> dict:
        """The check-in report in `body` (bytes as received) if `mac` authenticates it for its device and
        its "seq" is new; CheckinRejected (HTTP 401) otherwise, counted, and nothing else recorded.
        `accept_keyless`: a check-in without a MAC from a device that has no key but is already known
        (it checked in before, or is enrolled in the registry) is accepted: the migration mode."""
        try:
            report = json.loads(body or b"null")
        except ValueError as e:
            raise UsageError(f"the check-in body is not JSON: {e}", hint=_CHECKIN_FORMAT) from None
        if not isinstance(report, dict):
            raise UsageError("a check-in is a JSON object", hint=_CHECKIN_FORMAT)
        dev = check_device(report.get("device"))
        now = self._now()
        verdict = self._write_retrying(lambda s: self._verify(s, dev, body, mac, report, accept_keyless, now))
        with self._stats_lock:
            self._stats[verdict] += 1
        if verdict in _REJECT:
            raise _rejection(verdict, dev)
        return report

    def _verify(self, s, dev, body, mac, report, accept_keyless, now) -> str:
        row = s.scalars(select(CheckinAuth).where(CheckinAuth.device == dev).with_for_update()).first()
        if row is not None and row.key_sealed:
            if not mac:
                verdict = "missing_mac"
            elif not A.mac_matches(self._sealer().open(row.key_sealed, A.seal_context(dev)), body, mac):
                verdict = "bad_mac"
            elif (seq := A.seq_of(report) or 0) <= (row.last_seq or 0):
                verdict = "replay"
            else:
                row.last_seq = seq
                if self._kommune_refused(s, dev, report, now):
                    verdict = "wrong_kommune"
                else:
                    row.accepted = (row.accepted or 0) + 1
                    return "accepted"
        elif mac:
            verdict = "unknown_key"
        elif not accept_keyless:
            verdict = "no_key"
        elif row is None and not self._known(s, dev):
            return "unknown_device"  # no row for a device nobody knows: an attacker cannot fill the table
        elif self._kommune_refused(s, dev, report, now):
            verdict = "wrong_kommune"
        else:
            row = row or _new_auth(s, dev)
            row.unauthenticated = (row.unauthenticated or 0) + 1
            return "accepted_keyless"
        if row is None and self._known(s, dev):
            row = _new_auth(s, dev)
        if row is not None:
            row.rejected, row.rejected_at, row.rejected_reason = (row.rejected or 0) + 1, now, verdict
        return verdict

    @staticmethod
    def _kommune_refused(s, dev, report, now) -> bool:
        """True if the board claims another kommune than the device's own: the registry's, or, for a device
        the registry does not hold, the one it first checked in for. The refusal is written down here, in
        the check-in's transaction: an audit entry, and an alert for the kommune that owns the device."""
        try:
            claimed = lookup(str(report.get("kommune", ""))).kode
        except FleetError:
            return False  # a malformed claim is the check-in parser's to refuse, with its own message
        enrolled = s.scalars(select(Device).where(Device.dev_eui == dev)).first()
        if enrolled is not None:
            owner = enrolled.kommune_kode
        else:
            owner = s.scalars(select(OtaDevice.kommune_kode).where(OtaDevice.device == dev)).first()
        if owner is None or owner == claimed:
            return False
        s.add(AuditEntry(at=now, operator="system", action="checkin.refused", kommune_kode=owner,
                         dev_eui=dev[:16], changes={"kommune": [owner, claimed]},
                         note=f"the board claims kommune {claimed}; the check-in was refused"))
        if enrolled is not None:
            key = f"{enrolled.id}:wrong_kommune"
            open_ = s.scalars(select(AlertRow).where(AlertRow.open_key == key)).first()
            if open_ is not None:
                open_.last_at, open_.message = now, _wrong_kommune_message(claimed)
            else:
                s.add(AlertRow(device_id=enrolled.id, kind="wrong_kommune", severity="critical", state="open",
                               message=_wrong_kommune_message(claimed), value=None, opened_at=now, last_at=now,
                               resolved_at=None, acked_by=None, open_key=key))
        log.warning("check-in of device %s refused: it belongs to kommune %s, its board claims %s", dev, owner,
                    claimed)
        return True

    @staticmethod
    def _known(s, dev) -> bool:
        return (s.scalars(select(OtaDevice.id).where(OtaDevice.device == dev)).first() is not None
                or s.scalars(select(Device.id).where(Device.dev_eui == dev)).first() is not None)

    def checkin_stats(self) -> dict:
        """What this store's authenticate() decided since it was opened: accepted, accepted without a key,
        and rejected by reason."""
        with self._stats_lock:
            st = dict(self._stats)
        return {"accepted": st.get("accepted", 0), "accepted_keyless": st.get("accepted_keyless", 0),
                "rejected": {r: st.get(r, 0) for r in CHECKIN_REJECT_REASONS}}


def _operator_name(operator) -> str:
    """The acting operator's name as the audit log keeps it, or UsageError."""
    name = operator.strip() if isinstance(operator, str) else ""
    if not name:
        raise UsageError("a rollout change needs the operator's name (--operator or FLEET_OPERATOR)")
    if len(name) > 80:
        raise UsageError("an operator's name is at most 80 characters")
    return name


def _auth_dict(a: CheckinAuth | None) -> dict:
    """What the registry knows of a device's check-in authentication (never the key)."""
    if a is None:
        return {"key": False, "accepted": 0, "unauthenticated": 0, "rejected": 0, "rejected_at": None,
                "rejected_reason": None}
    return {"key": bool(a.key_sealed), "key_created_at": a.key_created_at, "accepted": a.accepted or 0,
            "unauthenticated": a.unauthenticated or 0, "rejected": a.rejected or 0, "rejected_at": a.rejected_at,
            "rejected_reason": a.rejected_reason}


def _manifest_path(ro: Rollout) -> str:
    return f"manifests/{ro.manifest}.json"


def _utc_iso(obj):
    """obj with every datetime in it as ISO 8601 in UTC with its offset ("...+00:00"): SQLite hands back
    naive datetimes, and a time without its zone is ambiguous to whoever reads it."""
    if isinstance(obj, datetime):
        return _aware(obj).astimezone(timezone.utc).isoformat()
    if isinstance(obj, dict):
        return {k: _utc_iso(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_utc_iso(v) for v in obj]
    return obj


def _rejection(verdict: str, dev: str) -> CheckinRejected:
    """The error for a refused check-in: 401 when it is not authentic, 403 when it is but claims another
    kommune than the device's own."""
    msg, hint = _REJECT[verdict]
    cls = CheckinForbidden if verdict == "wrong_kommune" else CheckinRejected
    return cls(verdict, msg.format(d=dev), device=dev, hint=hint)


def _wrong_kommune_message(claimed: str) -> str:
    return f"its board checked in for kommune {claimed}: refused (check the board's ota/config.json)"


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
