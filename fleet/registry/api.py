"""The registry: devices of many kommuner, every change audited in its own transaction.

    reg = Registry.open()                     # FLEET_DB, else an SQLite file in the user's data dir
    op = Operator("anna", kommune="751")
    reg.add_device(op, NewDevice(kommune="751", site="Park Allé 1", kind="waste", board="virtual"),
                   new_identity())
    reg.list_devices(op)

Every method takes the acting `Operator` and enforces its scope (access.py). Records come back as
`DeviceRecord`s (plain frozen data, no key material); AppKeys come out only through `app_keys()`, which
writes an audit entry for each device whose key was read.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, NotFound, UsageError
from ..identifiers import Identity
from ..store import Database, aware
from ..store.models import KINDS, STATES, AuditEntry, Device
from .access import SYSTEM, Operator
from .kommuner import lookup
from .sealing import Sealer, load_key
from .wifi import WifiNetworks

_APP_KEY = "app_key"
_CHUNK = 500  # DevEUIs per IN (...) query


@dataclass(frozen=True)
class NewDevice:
    """What an operator says about a device being enrolled (its identity is separate)."""

    kommune: str
    site: str
    kind: str
    board: str
    latitude: float | None = None
    longitude: float | None = None
    sensors: tuple[str, ...] = ()
    name: str | None = None
    firmware_version: str | None = None


@dataclass(frozen=True)
class DeviceRecord:
    id: int
    dev_eui: str
    join_eui: str
    name: str
    kommune_kode: str
    kommune_navn: str
    site: str
    latitude: float | None
    longitude: float | None
    board: str
    kind: str
    sensors: tuple[str, ...]
    firmware_version: str | None
    state: str
    last_seen: datetime | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sensors"] = list(self.sensors)
        for k in ("last_seen", "created_at", "updated_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    operator: str
    action: str
    kommune_kode: str | None
    dev_eui: str | None
    changes: dict = field(default_factory=dict)
    note: str | None = None


_RECORD_FIELDS = [f.name for f in fields(DeviceRecord)]
_RECORD_COLUMNS = [Device.__table__.c[k] for k in _RECORD_FIELDS]
_LISTING_COLUMNS = [Device.__table__.c[k] for k in ("dev_eui", "kommune_kode", "kommune_navn", "site", "kind",
                                                     "board", "state", "firmware_version", "last_seen")]
# What update() may change; kommune moves go through move_device() (two kommuner's consent).
UPDATABLE = ("name", "site", "latitude", "longitude", "board", "kind", "sensors", "firmware_version", "state",
             "last_seen")


def _record(d) -> DeviceRecord:
    """From a Device object, or (faster) a row of _RECORD_COLUMNS."""
    values = dict(zip(_RECORD_FIELDS, d)) if isinstance(d, Row) else {k: getattr(d, k) for k in _RECORD_FIELDS}
    values["sensors"] = tuple(d.sensors or ())
    for k in ("last_seen", "created_at", "updated_at"):
        values[k] = aware(values[k])
    return DeviceRecord(**values)


def _json_value(v):
    if isinstance(v, datetime):
        return aware(v).isoformat()
    if isinstance(v, tuple):
        return list(v)
    return v


def check_position(latitude, longitude) -> tuple[float | None, float | None]:
    """Both or neither; a point in or near Denmark (a swapped pair is the usual mistake)."""
    if latitude is None and longitude is None:
        return None, None
    if latitude is None or longitude is None:
        raise UsageError("give both latitude and longitude, or neither")
    lat, lon = float(latitude), float(longitude)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise UsageError("latitude and longitude must be numbers")
    if not (54.4 <= lat <= 57.9 and 7.9 <= lon <= 15.3):
        swapped = 54.4 <= lon <= 57.9 and 7.9 <= lat <= 15.3
        raise UsageError(f"{lat}, {lon} is not in Denmark" + (" (latitude and longitude swapped?)" if swapped else ""),
                         hint="latitude is 54.5-57.8 and longitude 8.0-15.2 in Denmark (WGS84 degrees)")
    return lat, lon


def check_new_device(new: NewDevice) -> dict:
    """The device's column values, or UsageError naming the first bad field. Touches no database."""
    k = lookup(new.kommune)
    site = (new.site or "").strip()
    if not site:
        raise UsageError("a device needs a site (where it is mounted, e.g. 'Park Allé 1, bin 3')")
    if len(site) > 200:
        raise UsageError("a site is at most 200 characters")
    if new.kind not in KINDS:
        raise UsageError(f"unknown kind '{new.kind}'", hint=f"kinds: {', '.join(KINDS)}")
    if not new.board:
        raise UsageError("a device needs a board (a name from boards/)")
    lat, lon = check_position(new.latitude, new.longitude)
    name = (new.name or "").strip() or None
    if name is not None and len(name) > 80:
        raise UsageError("a device name is at most 80 characters")
    return dict(kommune_kode=k.kode, kommune_navn=k.navn, site=site, kind=new.kind, board=new.board,
                latitude=lat, longitude=lon, sensors=list(new.sensors), name=name,
                firmware_version=new.firmware_version)


class Registry(WifiNetworks):
    """The registry on the one database (fleet.store.Database). Thread-safe: each call uses its own session
    and transaction. Its WiFi networks' calls are in wifi.py."""

    def __init__(self, db: Database, sealer: Sealer):
        self.db = db
        self._sealer = sealer

    @classmethod
    def open(cls, url: str | None = None, *, key: bytes | None = None, key_file=None) -> "Registry":
        """Opens (and creates or migrates) the database at `url` (see fleet.store.db.resolve_url)."""
        db = Database.open(url)
        try:
            return cls(db, Sealer(key if key is not None else load_key(key_file)))
        except BaseException:
            db.close()
            raise

    @property
    def engine(self):
        return self.db.engine

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<Registry on {self.db!r}>"

    # -- audit ----------------------------------------------------------------------------------------

    def _audit(self, s, operator: Operator, action: str, *, kode=None, dev_eui=None, changes=None, note=None):
        s.add(AuditEntry(operator=operator.name, action=action, kommune_kode=kode, dev_eui=dev_eui,
                         changes=changes or {}, note=note))

    def _context(self, dev_eui: str) -> str:
        return f"{dev_eui}/{_APP_KEY}"

    # -- enrollment -----------------------------------------------------------------------------------

    def existing_dev_euis(self, dev_euis: Iterable[str]) -> set[str]:
        """Which of these DevEUIs are enrolled already (in any kommune: a DevEUI is globally unique)."""
        wanted = list(dict.fromkeys(dev_euis))
        found = set()
        with self.db.read() as s:
            for i in range(0, len(wanted), _CHUNK):
                found.update(s.scalars(select(Device.dev_eui).where(Device.dev_eui.in_(wanted[i:i + _CHUNK]))))
        return found

    def add_device(self, operator: Operator, new: NewDevice, identity: Identity, *, state="enrolled",
                   note: str | None = None) -> DeviceRecord:
        return self.add_devices(operator, [(new, identity)], state=state, note=note)[0]

    def add_devices(self, operator: Operator, items: Sequence[tuple[NewDevice, Identity]], *,
                    state="enrolled", note: str | None = None) -> list[DeviceRecord]:
        """Records devices in ONE transaction: all of them, or none (Conflict if a DevEUI is taken)."""
        if state not in STATES:
            raise UsageError(f"unknown state '{state}'", hint=f"states: {', '.join(STATES)}")
        now = datetime.now(timezone.utc)
        rows, audits = [], []
        for new, ident in items:
            values = check_new_device(new)
            operator.require(values["kommune_kode"], "enroll devices")
            values["name"] = values["name"] or default_name(values["kind"], values["kommune_kode"], ident.dev_eui)
            row = dict(values, dev_eui=ident.dev_eui, join_eui=ident.join_eui, state=state,
                       app_key_sealed=self._sealer.seal(ident.app_key, self._context(ident.dev_eui)),
                       created_at=now, updated_at=now)
            rows.append(row)
            shown = {k: _json_value(v) for k, v in row.items()
                     if k not in ("app_key_sealed", "created_at", "updated_at")}
            shown[_APP_KEY] = "<set>"
            audits.append(dict(at=now, operator=operator.name, action="device.enroll",
                               kommune_kode=row["kommune_kode"], dev_eui=ident.dev_eui,
                               changes={k: [None, v] for k, v in shown.items()}, note=note))
        dups = _duplicates(r["dev_eui"] for r in rows)
        if dups:
            raise Conflict(f"DevEUI {', '.join(dups[:5])} appears more than once in this enrollment")
        if not rows:
            return []
        try:
            with self.db.write() as s:
                # Core executemany: a pallet of 10,000 rows is one statement batch, not 10,000 ORM objects.
                s.execute(Device.__table__.insert(), rows)
                s.execute(AuditEntry.__table__.insert(), audits)
                ids = {}
                for i in range(0, len(rows), _CHUNK):
                    chunk = [r["dev_eui"] for r in rows[i:i + _CHUNK]]
                    ids.update(s.execute(select(Device.dev_eui, Device.id).where(Device.dev_eui.in_(chunk))).all())
        except IntegrityError:
            taken = sorted(self.existing_dev_euis(r["dev_eui"] for r in rows))
            what = ", ".join(taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
            raise Conflict(f"DevEUI {what or '(one of these)'} is already enrolled; nothing was recorded",
                           hint="another enrollment of the same board won; 'fleet devices show DEVEUI' shows "
                                "it (if it is in your kommune)") from None
        return [DeviceRecord(**{k: r.get(k) for k in _RECORD_FIELDS if k not in ("id", "sensors")},
                             id=ids[r["dev_eui"]], sensors=tuple(r["sensors"])) for r in rows]

    # -- reading --------------------------------------------------------------------------------------

    def _scoped(self, stmt, operator: Operator, kommune=None):
        scope = operator.visible_kommuner(kommune)
        if scope is not None:
            stmt = stmt.where(Device.kommune_kode.in_(scope) if len(scope) > 1 else Device.kommune_kode == scope[0])
        return stmt

    def list_devices(self, operator: Operator, *, kommune=None, state: str | None = None, kind: str | None = None,
                     limit: int | None = None) -> list[DeviceRecord]:
        """The devices this operator may see (narrowed to one kommune if given), in enrollment order."""
        # Plain columns, not ORM objects: a kommune's thousand devices come back in a few ms.
        stmt = self._scoped(select(*_RECORD_COLUMNS), operator, kommune)
        if state is not None:
            stmt = stmt.where(Device.state == state)
        if kind is not None:
            stmt = stmt.where(Device.kind == kind)
        stmt = stmt.order_by(Device.kommune_kode, Device.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.read() as s:
            return [_record(row) for row in s.execute(stmt)]

    def iter_device_rows(self, operator: Operator, *, kommune=None, state: str | None = None,
                         kind: str | None = None, batch: int = 1000):
        """What a listing shows, streamed in the order of list_devices: rows with .dev_eui, .kommune_kode,
        .kommune_navn, .site, .kind, .board, .state, .firmware_version, .last_seen (naive UTC on SQLite).
        Only those columns are read and no record is built: a kommune of 5,000 devices comes out in tens of
        ms. Iterate to the end (or close the generator) to end the read."""
        stmt = self._scoped(select(*_LISTING_COLUMNS), operator, kommune)
        if state is not None:
            stmt = stmt.where(Device.state == state)
        if kind is not None:
            stmt = stmt.where(Device.kind == kind)
        stmt = stmt.order_by(Device.kommune_kode, Device.id).execution_options(yield_per=batch)
        with self.db.read() as s:
            yield from s.execute(stmt)

    def count_devices(self, operator: Operator, *, kommune=None) -> int:
        with self.db.read() as s:
            return s.scalar(self._scoped(select(func.count(Device.id)), operator, kommune))

    def get_device(self, operator: Operator, dev_eui: str) -> DeviceRecord:
        """The device, or NotFound (also when it belongs to a kommune the operator may not see)."""
        from ..identifiers import parse_eui

        eui = parse_eui(dev_eui)
        with self.db.read() as s:
            d = s.scalar(self._scoped(select(Device).where(Device.dev_eui == eui), operator))
            if d is None:
                raise NotFound(f"no device {eui}" + ("" if operator.cross_kommune else f" in kommune {operator.kommune}"),
                               hint="'fleet devices list' lists the devices you may see")
            return _record(d)

    def app_keys(self, operator: Operator, dev_euis: Iterable[str], *, purpose: str) -> dict[str, bytes]:
        """AppKeys of these devices (all must be visible to the operator); each read is audited."""
        wanted = list(dict.fromkeys(dev_euis))
        out: dict[str, bytes] = {}
        with self.db.write() as s:
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i:i + _CHUNK]
                for d in s.scalars(self._scoped(select(Device).where(Device.dev_eui.in_(chunk)), operator)):
                    out[d.dev_eui] = self._sealer.open(d.app_key_sealed, self._context(d.dev_eui))
                    self._audit(s, operator, "device.keys_read", kode=d.kommune_kode, dev_eui=d.dev_eui, note=purpose)
            missing = [e for e in wanted if e not in out]
            if missing:
                raise NotFound(f"no device {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        return out

    def audit_log(self, operator: Operator, *, dev_eui: str | None = None, kommune=None,
                  limit: int = 100) -> list[AuditRecord]:
        """Newest first. A kommune operator sees its own kommune's entries only."""
        stmt = select(AuditEntry)
        scope = operator.visible_kommuner(kommune)
        if scope is not None:
            stmt = stmt.where(AuditEntry.kommune_kode.in_(scope))
        if dev_eui is not None:
            from ..identifiers import parse_eui

            stmt = stmt.where(AuditEntry.dev_eui == parse_eui(dev_eui))
        stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit)
        with self.db.read() as s:
            return [AuditRecord(at=aware(a.at), operator=a.operator, action=a.action, kommune_kode=a.kommune_kode,
                                dev_eui=a.dev_eui, changes=a.changes or {}, note=a.note) for a in s.scalars(stmt)]

    # -- changing -------------------------------------------------------------------------------------

    def _locked(self, s, operator: Operator, dev_eui: str) -> Device:
        from ..identifiers import parse_eui

        eui = parse_eui(dev_eui)
        stmt = self._scoped(select(Device).where(Device.dev_eui == eui), operator)
        if self.db.dialect == "postgresql":
            stmt = stmt.with_for_update()
        d = s.scalar(stmt)
        if d is None:
            raise NotFound(f"no device {eui}" + ("" if operator.cross_kommune else f" in kommune {operator.kommune}"),
                           hint="'fleet devices list' lists the devices you may see")
        return d

    def update_device(self, operator: Operator, dev_eui: str, *, note: str | None = None, **changes) -> DeviceRecord:
        """Changes some of UPDATABLE; the audit entry holds each field's old and new value."""
        bad = sorted(set(changes) - set(UPDATABLE))
        if bad:
            raise UsageError(f"cannot change {', '.join(bad)}", hint=f"changeable: {', '.join(UPDATABLE)}")
        if "state" in changes and changes["state"] not in STATES:
            raise UsageError(f"unknown state '{changes['state']}'", hint=f"states: {', '.join(STATES)}")
        if "kind" in changes and changes["kind"] not in KINDS:
            raise UsageError(f"unknown kind '{changes['kind']}'", hint=f"kinds: {', '.join(KINDS)}")
        if "site" in changes and not (changes["site"] or "").strip():
            raise UsageError("a device needs a site")
        if "latitude" in changes or "longitude" in changes:
            if not ("latitude" in changes and "longitude" in changes):
                raise UsageError("change latitude and longitude together")
            changes["latitude"], changes["longitude"] = check_position(changes["latitude"], changes["longitude"])
        if "sensors" in changes:
            changes["sensors"] = list(changes["sensors"])
        with self.db.write() as s:
            d = self._locked(s, operator, dev_eui)
            diff = {}
            for k, v in changes.items():
                old = getattr(d, k)
                if k in ("last_seen",):
                    old = aware(old)
                if old != v:
                    diff[k] = [_json_value(old), _json_value(v)]
                    setattr(d, k, v)
            if diff:
                d.updated_at = datetime.now(timezone.utc)
                self._audit(s, operator, "device.update", kode=d.kommune_kode, dev_eui=d.dev_eui, changes=diff,
                            note=note)
            s.flush()
            return _record(d)

    def move_device(self, operator: Operator, dev_eui: str, kommune, *, note: str | None = None) -> DeviceRecord:
        """Moves a device to another kommune: the operator must be allowed to act for both."""
        k = lookup(kommune)
        with self.db.write() as s:
            d = self._locked(s, operator, dev_eui)
            operator.require(k.kode, "move devices")
            diff = {"kommune_kode": [d.kommune_kode, k.kode]}
            d.kommune_kode, d.kommune_navn = k.kode, k.navn
            d.updated_at = datetime.now(timezone.utc)
            self._audit(s, operator, "device.move", kode=diff["kommune_kode"][0], dev_eui=d.dev_eui, changes=diff,
                        note=note)
            self._audit(s, operator, "device.move", kode=k.kode, dev_eui=d.dev_eui, changes=diff, note=note)
            s.flush()
            return _record(d)

    def mark_seen(self, dev_eui: str, at: datetime | None = None, *, firmware_version: str | None = None,
                  operator: Operator = SYSTEM) -> DeviceRecord:
        """For ingest: last seen (and firmware version), state 'active'. Audited only when something
        other than the time changes."""
        at = at or datetime.now(timezone.utc)
        with self.db.write() as s:
            d = self._locked(s, operator, dev_eui)
            diff = {}
            if firmware_version is not None and firmware_version != d.firmware_version:
                diff["firmware_version"] = [d.firmware_version, firmware_version]
                d.firmware_version = firmware_version
            if d.state in ("enrolled", "silent"):
                diff["state"] = [d.state, "active"]
                d.state = "active"
            if aware(d.last_seen) is None or aware(d.last_seen) < at:
                d.last_seen = at
            if diff:
                d.updated_at = datetime.now(timezone.utc)
                self._audit(s, operator, "device.seen", kode=d.kommune_kode, dev_eui=d.dev_eui, changes=diff)
            s.flush()
            return _record(d)

    def remove_device(self, operator: Operator, dev_eui: str, *, note: str) -> None:
        """Deletes a device's row (an aborted enrollment); retiring a device is update_device(state='retired')."""
        with self.db.write() as s:
            d = self._locked(s, operator, dev_eui)
            self._audit(s, operator, "device.remove", kode=d.kommune_kode, dev_eui=d.dev_eui,
                        changes={"state": [d.state, None]}, note=note)
            s.execute(delete(Device).where(Device.id == d.id))


def default_name(kind: str, kode: str, dev_eui: str) -> str:
    """'waste-0751-fffe1234': unique (the DevEUI's tail), and readable in a network server's list."""
    return f"{kind}-{kode}-{dev_eui[-8:].lower()}"


def _duplicates(values) -> list[str]:
    seen, dups = set(), []
    for v in values:
        if v in seen and v not in dups:
            dups.append(v)
        seen.add(v)
    return dups
