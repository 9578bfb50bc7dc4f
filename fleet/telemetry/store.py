"""Stores uplinks: decoded readings, each device's health, and the alerts its health raises.

One call of `TelemetryStore.ingest(uplinks)` is ONE transaction for the whole batch: a few statements
(devices, duplicates, uplinks, readings, health, alerts), not a few per uplink, which is what makes
thousands of uplinks a second possible on one core. A duplicate delivery (same event id, or same DevEUI,
FCnt and time) is recognised by the unique `uplinks.dedup_key` and stored once. Malformed uplinks (wrong
FPort, a payload that does not decode, an unknown device) are returned in `rejected` and never stop the
rest of the batch.

Readings are the bulk of the rows (8 to 12 per uplink, up to 31): they are built column by column from
`decode_columns()` with their uplink's id given out beforehand (the uplinks' sequence on PostgreSQL), and
written with COPY. The `readings` table has no foreign keys for the server to check per row; this
transaction is what ties a reading to its uplink and device (see ReadingRow).

Frame-counter gaps are lost uplinks: FCnt 7 after 4 counts 2 lost; a late uplink that fills a gap gives one
back; a counter that restarts (a rejoin) counts nothing.
"""

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import repeat

from sqlalchemy import any_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from ..codec import decode_columns, spec_tables
from ..codec.diag import decode_diag, diag_tables
from ..codec.update_report import decode_report
from ..errors import MalformedUplink, NotFound, PayloadDecodeError
from ..fuota.store import PORTS as FUOTA_PORTS
from ..fuota.store import REPORT_PORT
from ..fuota.store import FuotaStore
from ..registry.access import SYSTEM, Operator
from ..rollout.diagnostics import record_uplinks
from ..store import aware
from ..store.models import (AlertRow, AuditEntry, Device, DeviceHealth, IngestWorker, ReadingRow, UplinkRow,
                            utcnow)
from ..settings import SettingsStore
from ..settings.spec import fport as _settings_fport
from .alerts import MIN_INTERVAL_S, SEVERITY, AlertRules, Notifier, conditions
from .events import PAYLOAD_FPORT, Uplink

DIAG_FPORT = diag_tables()["fport"]

log = logging.getLogger("fleet.telemetry")
SETTINGS_FPORT = _settings_fport()  # settings acknowledgements (docs/formats/settings.md)

D, U, R, H, A = (Device.__table__, UplinkRow.__table__, ReadingRow.__table__, DeviceHealth.__table__,
                 AlertRow.__table__)
_CHUNK = 500
_VALUE_CHANNELS = ("dist_mm", "fill_bp", "temp_cdeg", "batt_mv", "rh_permille", "pressure_pa", "co2_ppm",
                   "pm2_5_ugm3", "pm10_ugm3")
_FLAGS = ("tilt", "pickup", "fire")
_HEALTH_COLS = [c.name for c in H.columns]
_READING_VALUE_COLS = (*_VALUE_CHANNELS, *_FLAGS)
_READING_COLS = ("uplink_id", "seq", "device_id", "at", "kind", *_READING_VALUE_COLS, "faults")
_UPLINK_COLS = ("id", "device_id", "dedup_key", "received_at", "f_cnt", "f_port", "rssi", "snr", "dr", "frequency",
                "gateways", "source", "payload")
_MAX_GAP = 10_000          # a bigger jump is a new session, not 10,000 lost uplinks
_MAX_INTERVAL_S = 2 * 86400
_PG_COERCE = {"int2": int, "int4": int, "int8": int, "float4": float, "float8": float, "numeric": float,
              "bool": bool}  # one Python type per array: psycopg dumps a list by its first element


@dataclass
class IngestResult:
    stored: int = 0
    readings: int = 0
    duplicates: int = 0
    rejected: list = field(default_factory=list)   # (reason, message, dev_eui or None)
    alerts: list = field(default_factory=list)     # alerts opened by this batch (dicts)
    resolved: int = 0
    ignored: Counter = field(default_factory=Counter)  # not the node's readings: simulated, mac_only, other_fport
    fuota: Counter = field(default_factory=Counter)    # FUOTA answers (FPorts 200-202) and update reports (222):
    #                                                    moved, heard, not_in_rollout

    def merge(self, other: "IngestResult") -> None:
        self.stored += other.stored
        self.readings += other.readings
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.alerts += other.alerts
        self.resolved += other.resolved
        self.ignored.update(other.ignored)
        self.fuota.update(other.fuota)


@dataclass
class _Decoded:
    up: Uplink
    frame: dict


_utc = aware


class TelemetryStore:
    """Uplinks into the telemetry tables of the registry's database (registry.db, the one
    fleet.store.Database); devices are looked up through the registry's public calls. Thread-safe (each call
    has its own transaction)."""

    def __init__(self, registry, *, rules: AlertRules | None = None, notifier: Notifier | None = None,
                 fport: int = PAYLOAD_FPORT):
        self.registry = registry
        self.db = registry.db
        self.engine = self.db.engine
        self.rules = rules or AlertRules()
        self.notifier = notifier
        self.fport = fport
        self._tables = spec_tables()  # loaded once, not per frame
        dialect = self.engine.dialect
        self._reading_at = R.c.at.type.bind_processor(dialect)
        self._processors = {t.name: {c: t.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in t.c.keys()}
                            for t in (D, U, R, H, A)}
        self._pg_types: dict[str, dict[str, str]] = {}
        self._pg = dialect.name == "postgresql"
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"  # the driver's placeholder
        self._uplink_seq: str | None = None
        self._chunk = 1 << 30 if self._pg else _CHUNK  # an array parameter has no size limit; IN lists do

    def _in(self, col, values):
        """`col IN (values)`; on PostgreSQL `col = ANY(%s)` with one array parameter: one statement text
        whatever the count (cached, prepared), not one placeholder per value to render and parse."""
        values = list(values)
        if self._pg:
            return col == any_(bindparam(None, values, type_=ARRAY(col.type)))
        return col.in_(values)

    def _pg_columns(self, s, table) -> dict[str, str]:
        """The columns' types as the server has them (udt_name), looked up once per table."""
        types = self._pg_types.get(table.name)
        if types is None:
            with s.connection().connection.dbapi_connection.cursor() as cur:
                cur.execute("SELECT column_name, udt_name FROM information_schema.columns "
                            "WHERE table_schema = current_schema() AND table_name = %s", (table.name,))
                types = self._pg_types[table.name] = dict(cur.fetchall())
        return types

    def _pg_update(self, s, table, key: str, cols: Sequence[str], rows: list[dict], prefix: str = "v_",
                   key_name: str | None = None) -> None:
        """PostgreSQL: the executemany `UPDATE table SET col = :v_col ... WHERE key = :b_key` as ONE
        statement, `UPDATE ... FROM unnest(array, ...)`, one array parameter per column."""
        types = self._pg_columns(s, table)
        names = (key, *cols)
        arrays = []
        for c, k in zip(names, (key_name or key, *(prefix + c for c in cols))):
            conv = _PG_COERCE.get(types[c])
            vals = [r[k] for r in rows]
            arrays.append([v if v is None or conv is None else conv(v) for v in vals])
        sets = ", ".join(f'"{c}" = v."{c}"' for c in cols)
        arrs = ", ".join(f"%b::{types[c]}[]" for c in names)  # binary: ~4x cheaper to dump than text
        alias = ", ".join(f'"{c}"' for c in names)
        q = f'UPDATE {table.name} AS t SET {sets} FROM unnest({arrs}) AS v({alias}) WHERE t."{key}" = v."{key}"'
        s.connection().exec_driver_sql(q, tuple(arrays))

    def _update_many(self, s, table, key: str, cols: Sequence[str], rows: list[dict], prefix: str = "v_",
                     key_name: str | None = None) -> None:
        """`UPDATE table SET col = row[prefix + col], ... WHERE key = row[key_name or key]` for each row:
        one statement on PostgreSQL (_pg_update); elsewhere one executemany straight to the driver, with
        the values SQLAlchemy's own bind processors would give."""
        if self._pg:
            self._pg_update(s, table, key, cols, rows, prefix, key_name)
            return
        procs = self._processors[table.name]
        names = [(prefix + c, procs[c]) for c in cols] + [(key_name or key, procs[key])]
        params = [tuple(r[k] if p is None else p(r[k]) for k, p in names) for r in rows]
        mark = self._mark
        sets = ", ".join(f"{c} = {mark}" for c in cols)
        s.connection().exec_driver_sql(f"UPDATE {table.name} SET {sets} WHERE {key} = {mark}", params)

    def _bulk_insert(self, s, table, cols: Sequence[str], rows: list[tuple], *, processors: bool = True) -> None:
        """Rows (tuples in `cols` order) straight to the driver, past SQLAlchemy's per-row work: COPY on
        PostgreSQL, executemany elsewhere with the values SQLAlchemy's own bind processors would give."""
        if self._pg:  # COPY: several times faster than INSERTs
            import psycopg

            raw = s.connection().connection.dbapi_connection
            types = self._pg_columns(s, table)  # binary COPY needs the server's types exactly
            try:
                with raw.cursor() as cur, cur.copy(
                        f"COPY {table.name} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types([types[c] for c in cols])
                    for r in rows:
                        cp.write_row(r)
            except psycopg.IntegrityError as e:  # as SQLAlchemy raises it, so that ingest() retries
                raise IntegrityError(f"COPY {table.name}", None, e) from e
            return
        if processors:
            procs = self._processors[table.name]
            fix = [(i, procs[c]) for i, c in enumerate(cols) if procs[c] is not None]
            if fix:
                out = []
                for r in rows:
                    r = list(r)
                    for i, p in fix:
                        r[i] = p(r[i])
                    out.append(tuple(r))
                rows = out
        mark = self._mark
        s.connection().exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})", rows)

    def _new_uplink_ids(self, s, n: int) -> list[int]:
        """Ids for n new uplinks. PostgreSQL: from the table's sequence, as its default would give them.
        SQLite: the next n after the largest, as SQLite itself would; the write transaction (BEGIN
        IMMEDIATE) keeps any other writer out until commit."""
        if self._pg:
            if self._uplink_seq is None:
                self._uplink_seq = s.connection().exec_driver_sql(
                    "SELECT pg_get_serial_sequence('uplinks', 'id')").scalar_one()
            return list(s.connection().exec_driver_sql(
                "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", (self._uplink_seq, n)).scalars())
        top = s.connection().exec_driver_sql("SELECT max(id) FROM uplinks").scalar() or 0
        return list(range(top + 1, top + 1 + n))

    def _reading_rows(self, new: list[_Decoded], ids: list[int], devices: dict) -> list[tuple]:
        """One row (in _READING_COLS order) per reading, built column by column from decode_columns()."""
        rows = []
        extend = rows.extend
        ages: dict[int, timedelta] = {}  # a few distinct ages: one timedelta each, not one per reading
        at_value = (lambda t: t) if self._pg else (self._reading_at or (lambda t: t.isoformat(" ")))
        for uplink_id, d in zip(ids, new):
            frame = d.frame
            n = frame["count"]
            if not n:
                continue
            cols = frame["columns"]
            received_at = d.up.received_at
            at = []
            for a in cols["age_min"]:
                age = ages.get(a)
                if age is None:
                    age = ages[a] = timedelta(minutes=a)
                at.append(at_value(received_at - age))
            nones = [None] * n  # a list: zip may take it for several columns
            faults = frame["faults"]
            extend(zip(repeat(uplink_id, n), range(n), repeat(devices[d.up.dev_eui]["id"], n), at,
                       repeat(frame["kind"], n), *[cols.get(c) or nones for c in _READING_VALUE_COLS],
                       [",".join(f) or None for f in faults] if faults else nones))
        return rows

    # -- ingest ---------------------------------------------------------------------------------------

    def ingest(self, uplinks: Sequence[Uplink], *, operator: Operator = SYSTEM) -> IngestResult:
        """Stores a batch in one transaction. `operator` scopes which devices may be written: a kommune's
        token writes only its own devices (others are rejected as unknown)."""
        result = IngestResult()
        good: list[_Decoded] = []
        diag = []  # diagnostics records (FPort 221, docs/formats/diagnostics.md): kept per device and release
        acks = [up for up in uplinks if up.f_port == SETTINGS_FPORT and up.payload and not up.simulated]
        if acks:  # the nodes' answers to settings commands (fleet.settings); no readings
            SettingsStore(self.registry).record_acks(acks, operator=operator)
        answers = []
        for up in uplinks:
            if not up.payload or up.simulated:
                continue
            if up.f_port in FUOTA_PORTS:
                answers.append(up)
            elif up.f_port == REPORT_PORT:  # update reports (docs/formats/update-report.md)
                try:
                    decode_report(up.payload)
                    answers.append(up)
                    result.ignored["update_report"] += 1  # no reading
                except PayloadDecodeError as e:
                    result.rejected.append(("bad_payload", f"uplink from {up.dev_eui}: {e.message}", up.dev_eui))
        if answers:  # FUOTA answers and update reports move the open LoRaWAN rollout of the device's kommune
            #          (fleet.fuota.store); no readings: the answers still count as another FPort below
            result.fuota.update(FuotaStore(self.db).observe(answers, operator.visible_kommuner()))
        for up in uplinks:
            if up.f_port == REPORT_PORT and up.payload and not up.simulated:
                continue  # taken above
            if up.f_port == DIAG_FPORT and up.payload and not up.simulated:
                try:
                    diag.append((up.dev_eui, decode_diag(up.payload), up.received_at))
                except PayloadDecodeError as e:
                    result.rejected.append(("bad_payload", f"uplink from {up.dev_eui}: {e.message}", up.dev_eui))
                continue
            why = self._ignored(up)
            if why:
                result.ignored[why] += 1
                continue
            try:
                good.append(_Decoded(up, self._decode(up)))
            except MalformedUplink as e:
                result.rejected.append((e.reason, e.message, up.dev_eui))
        seen, unique = set(), []
        for d in good:
            k = d.up.dedup_key
            if k in seen:
                result.duplicates += 1
            else:
                seen.add(k)
                unique.append(d)
        if unique:
            for attempt in range(3):
                try:
                    result.merge(self._store(unique, operator))
                    break
                except IntegrityError:  # another writer stored one of these, or opened the same alert
                    if attempt == 2:
                        raise
        if diag:
            n, dup, rejected = record_uplinks(self.db, diag, operator.visible_kommuner())
            result.ignored["diagnostics"] += n  # not readings: counted apart, stored per release
            result.duplicates += dup
            result.rejected += rejected
        if self.notifier is not None and result.alerts:
            self.notifier.send(result.alerts)
        return result

    def _ignored(self, up: Uplink) -> str | None:
        """Why an uplink that is well formed is no reading of the node, or None: a simulated uplink, one that
        carries only MAC commands (FPort 0, or no payload), or another application's FPort (FUOTA, ...)."""
        if up.simulated:
            return "simulated"
        if up.f_port == 0 or not up.payload:
            return "mac_only"
        if up.f_port == SETTINGS_FPORT:
            return "settings_ack"
        if up.f_port != self.fport:
            return "other_fport"
        return None

    def _decode(self, up: Uplink) -> dict:
        try:
            return decode_columns(up.payload, tables=self._tables)
        except PayloadDecodeError as e:
            raise MalformedUplink("bad_payload", f"uplink from {up.dev_eui}: {e.message}") from None

    def _store(self, batch: list[_Decoded], operator: Operator) -> IngestResult:
        res = IngestResult()
        now = datetime.now(timezone.utc)
        with self.db.write() as s:
            # 1. devices (scoped: another kommune's device looks unknown)
            euis = list({d.up.dev_eui for d in batch})
            devices = {}
            scope = operator.visible_kommuner()
            for i in range(0, len(euis), self._chunk):
                q = select(D.c.id, D.c.dev_eui, D.c.kommune_kode, D.c.kommune_navn, D.c.kind, D.c.state, D.c.name,
                           D.c.site, D.c.latitude, D.c.longitude, D.c.firmware_version,
                           D.c.last_seen).where(self._in(D.c.dev_eui, euis[i:i + self._chunk]))
                if scope is not None:
                    q = q.where(D.c.kommune_kode.in_(scope))
                devices.update({r.dev_eui: r._asdict() for r in s.execute(q)})
            keep = []
            for d in batch:
                dev = devices.get(d.up.dev_eui)
                if dev is None:
                    res.rejected.append(("unknown_device", f"no enrolled device {d.up.dev_eui}", d.up.dev_eui))
                elif dev["state"] == "retired":
                    res.rejected.append(("unknown_device", f"device {d.up.dev_eui} is retired", d.up.dev_eui))
                elif d.frame["kind"] != dev["kind"]:
                    res.rejected.append(("bad_payload", f"a {d.frame['kind']} frame from {d.up.dev_eui}, a "
                                         f"{dev['kind']} device", d.up.dev_eui))
                else:
                    keep.append(d)
            if not keep:
                return res
            # 2. duplicates already stored
            keys = [d.up.dedup_key for d in keep]
            stored = set()
            for i in range(0, len(keys), self._chunk):
                stored.update(s.scalars(select(U.c.dedup_key).where(self._in(U.c.dedup_key, keys[i:i + self._chunk]))))
            new = [d for d in keep if d.up.dedup_key not in stored]
            res.duplicates += len(keep) - len(new)
            if not new:
                return res
            # 3. uplinks, then their readings (ids given out first: no query to learn them after)
            ids = self._new_uplink_ids(s, len(new))
            up_rows = [(uplink_id, devices[d.up.dev_eui]["id"], d.up.dedup_key, d.up.received_at, d.up.f_cnt,
                        d.up.f_port, d.up.rssi, d.up.snr, d.up.dr, d.up.frequency, d.up.gateways, d.up.source,
                        d.up.payload) for uplink_id, d in zip(ids, new)]
            self._bulk_insert(s, U, _UPLINK_COLS, up_rows)
            reading_rows = self._reading_rows(new, ids, devices)
            if reading_rows:
                self._bulk_insert(s, R, _READING_COLS, reading_rows, processors=False)
            res.stored, res.readings = len(new), len(reading_rows)
            # 4. health
            by_dev: dict[int, list[_Decoded]] = {}
            for d in sorted(new, key=lambda d: d.up.received_at):
                by_dev.setdefault(devices[d.up.dev_eui]["id"], []).append(d)
            dev_ids = list(by_dev)
            health = {}
            for i in range(0, len(dev_ids), self._chunk):
                q = select(H).where(self._in(H.c.device_id, dev_ids[i:i + self._chunk]))
                if self._pg:
                    q = q.with_for_update()
                health.update({r.device_id: r._asdict() for r in s.execute(q)})
            inserts, updates = [], []
            for dev_id, ds in by_dev.items():
                h = health.get(dev_id)
                is_new = h is None
                for d in ds:
                    h = self._apply(h, d, now, dev_id)
                health[dev_id] = h
                (inserts if is_new else updates).append(h)
            if inserts:
                s.execute(insert(H), inserts)
            if updates:
                self._update_many(s, H, "device_id", [c for c in _HEALTH_COLS if c != "device_id"], updates, prefix="")
            # 5. devices: last seen, state, firmware (state and firmware changes are audited)
            self._touch_devices(s, devices, health, by_dev, now)
            # 6. alerts
            opened, resolved = self._evaluate(s, {i: health[i] for i in dev_ids}, devices, now)
            res.alerts, res.resolved = opened, resolved
        return res

    def _apply(self, h: dict | None, d: _Decoded, now: datetime, dev_id: int) -> dict:
        up, frame = d.up, d.frame
        count = frame["count"]
        batch_s = (frame.get("interval_min") or 0) * count * 60 or None
        if h is None:
            h = {c: None for c in _HEALTH_COLS}
            h.update(device_id=dev_id, last_seen=up.received_at, last_f_cnt=up.f_cnt, uplinks=0, lost_uplinks=0,
                     interval_s=batch_s)
            newest = True
        else:
            h = dict(h)
            last_seen = _utc(h["last_seen"])
            gap = up.f_cnt - h["last_f_cnt"] - 1
            if up.received_at < last_seen or gap < -1:
                newest = False
                if 0 <= h["last_f_cnt"] - up.f_cnt < _MAX_GAP and up.f_cnt >= 16 and h["lost_uplinks"] > 0:
                    h["lost_uplinks"] -= 1       # a late uplink filled a gap
                elif up.f_cnt < 16 or h["last_f_cnt"] - up.f_cnt >= _MAX_GAP:
                    newest = up.received_at >= last_seen  # counter restarted (rejoin): nothing lost
            else:
                newest = True
                if 0 <= gap < _MAX_GAP:
                    h["lost_uplinks"] += gap
                    dt = (up.received_at - last_seen).total_seconds() / (gap + 1)
                    if dt > 0:
                        est = min(max(dt, MIN_INTERVAL_S), _MAX_INTERVAL_S)
                        h["interval_s"] = int(est if h["interval_s"] is None else 0.7 * h["interval_s"] + 0.3 * est)
        h["uplinks"] += 1
        h["updated_at"] = now
        if newest:
            h.update(last_seen=up.received_at, last_f_cnt=up.f_cnt, rssi=up.rssi, snr=up.snr, dr=up.dr)
            if up.firmware_version:
                h["firmware_version"] = up.firmware_version
            h["net_status"] = frame.get("net_status")  # the node's failed WiFi join, while it lasts
            if count:
                self._apply_readings(h, frame, up.received_at)
        return h

    def _apply_readings(self, h: dict, frame: dict, at: datetime) -> None:
        cols = frame["columns"]
        h["reading_at"] = at - timedelta(minutes=cols["age_min"][-1])

        def newest(ch):
            return next((v for v in reversed(cols.get(ch) or ()) if v is not None), None)

        h["battery_mv"] = newest("batt_mv")
        h["temp_cdeg"] = newest("temp_cdeg")
        if frame["kind"] == "waste":
            h["fill_bp"] = newest("fill_bp")
            h["tilt"] = cols["tilt"][-1] if "tilt" in cols else None
            temps = [t for t in cols.get("temp_cdeg") or () if t is not None]
            h["fire"] = any(cols.get("fire") or ()) or any(t >= self.rules.fire_cdeg for t in temps)
            rate = frame.get("fill_rate_bp_h")
            h["fill_rate_bp_h"] = rate
            h["full_at"] = full_at(h["fill_bp"], rate, h["reading_at"])

    def _touch_devices(self, s, devices, health, by_dev, now):
        by_id = {d["id"]: d for d in devices.values()}
        rows, changed, audits = [], [], []
        for dev_id in by_dev:
            dev, h = by_id[dev_id], health[dev_id]
            seen = _utc(h["last_seen"])
            diff = {}
            fw = h.get("firmware_version")
            if fw and fw != dev["firmware_version"]:
                diff["firmware_version"] = [dev["firmware_version"], fw]
            if dev["state"] in ("enrolled", "silent"):
                diff["state"] = [dev["state"], "active"]
            old_seen = _utc(dev["last_seen"])
            if not diff and old_seen is not None and old_seen >= seen:
                continue
            row = {"b_id": dev_id, "v_last_seen": max(seen, old_seen or seen)}
            if diff:
                row.update(v_state="active" if "state" in diff else dev["state"], v_updated_at=now,
                           v_firmware_version=fw if "firmware_version" in diff else dev["firmware_version"])
                changed.append(row)
                audits.append(dict(at=now, operator=SYSTEM.name, action="device.seen", kommune_kode=dev["kommune_kode"],
                                   dev_eui=dev["dev_eui"], changes=diff, note="ingest"))
            else:
                rows.append(row)
        if rows:  # updated_at as Device's onupdate=utcnow sets it
            t = utcnow()
            self._update_many(s, D, "id", ("last_seen", "updated_at"), [r | {"v_updated_at": t} for r in rows],
                              key_name="b_id")
        if changed:
            self._update_many(s, D, "id", ("last_seen", "state", "firmware_version", "updated_at"), changed,
                              key_name="b_id")
        if audits:
            s.execute(insert(AuditEntry.__table__), audits)

    def _evaluate(self, s, health: dict[int, dict], devices: dict, now: datetime, *, silent: Iterable[int] = ()):
        """Opens, refreshes and resolves alerts for these devices; returns (opened alert dicts, resolved)."""
        by_id = {d["id"]: d for d in devices.values()} if isinstance(devices, dict) else devices
        ids = list(health)
        open_rows = {}
        for i in range(0, len(ids), self._chunk):
            for r in s.execute(select(A.c.id, A.c.device_id, A.c.kind).where(
                    self._in(A.c.device_id, ids[i:i + self._chunk]), A.c.state != "resolved")):
                open_rows[(r.device_id, r.kind)] = r.id
        new_rows, resolve_ids, refresh = [], [], []
        silent = set(silent)
        for dev_id, h in health.items():
            conds = conditions(h, self.rules)
            conds["silent"] = (dev_id in silent, None, "silent for " + _ago(now - _utc(h["last_seen"])))
            for kind, (holds, value, message) in conds.items():
                key = (dev_id, kind)
                if holds and key not in open_rows:
                    new_rows.append(dict(device_id=dev_id, kind=kind, severity=SEVERITY[kind], state="open",
                                         message=message, value=value, opened_at=now, last_at=now, resolved_at=None,
                                         acked_by=None, open_key=f"{dev_id}:{kind}"))
                elif holds:
                    refresh.append({"b_id": open_rows[key], "v_message": message, "v_value": value, "v_last_at": now})
                elif key in open_rows and (kind != "silent" or dev_id not in silent):
                    resolve_ids.append(open_rows[key])
        if resolve_ids:
            s.execute(update(A).where(self._in(A.c.id, resolve_ids)).values(state="resolved", resolved_at=now,
                                                                            open_key=None))
        if refresh:
            self._update_many(s, A, "id", ("message", "value", "last_at"), refresh, key_name="b_id")
        opened = []
        if new_rows:
            s.execute(insert(A), new_rows)
            got = s.execute(select(A.c.id, A.c.open_key).where(
                self._in(A.c.open_key, [r["open_key"] for r in new_rows]))).all()
            idmap = dict((k, i) for i, k in got)
            for r in new_rows:
                dev = by_id[r["device_id"]]
                h = health[r["device_id"]]
                opened.append(alert_dict(dict(r, id=idmap.get(r["open_key"])), dev, h))
        return opened, len(resolve_ids)

    # -- the ingesters' own state ----------------------------------------------------------------------

    def heartbeat(self, worker: dict) -> None:
        """Records one MQTT ingester's heartbeat (a row of `ingest_workers` per client id; see
        MqttIngester.lag). `started_at` None keeps the stored one."""
        W = IngestWorker.__table__
        row = dict(worker, heartbeat_at=datetime.now(timezone.utc))
        if row.get("started_at") is None:
            row.pop("started_at", None)
        with self.db.write() as s:
            n = s.execute(update(W).where(W.c.client_id == row["client_id"])
                          .values(**{k: v for k, v in row.items() if k != "client_id"})).rowcount
            if not n:
                row.setdefault("started_at", row["heartbeat_at"])
                s.execute(insert(W).values(**row))

    # -- silence --------------------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> list[dict]:
        """Opens a 'silent' alert (and sets the device's state to silent) for every active device not heard
        for `silent_intervals` expected intervals. Returns the alerts opened; they go to the notifier too."""
        now = now or datetime.now(timezone.utc)
        rules = self.rules
        bound = now - timedelta(seconds=rules.silent_intervals * MIN_INTERVAL_S)
        with self.db.write() as s:
            q = (select(H, D.c.id.label("d_id"), D.c.dev_eui, D.c.kommune_kode, D.c.kommune_navn, D.c.name, D.c.site,
                        D.c.latitude, D.c.longitude, D.c.kind, D.c.state)
                 .join(D, D.c.id == H.c.device_id)
                 .where(D.c.state == "active", H.c.last_seen < bound))
            health, devices = {}, {}
            for r in s.execute(q):
                m = r._asdict()
                interval = m["interval_s"] or rules.default_interval_s
                if _utc(m["last_seen"]) < now - timedelta(seconds=rules.silent_intervals * interval):
                    health[m["device_id"]] = {c: m[c] for c in _HEALTH_COLS}
                    devices[m["device_id"]] = {k: m[k] for k in ("dev_eui", "kommune_kode", "kommune_navn", "name",
                                                                 "site", "latitude", "longitude", "kind", "state")}
                    devices[m["device_id"]]["id"] = m["device_id"]
            if not health:
                return []
            opened = []
            ids = list(health)
            for i in range(0, len(ids), _CHUNK):
                chunk = {k: health[k] for k in ids[i:i + _CHUNK]}
                o, _ = self._evaluate_silent(s, chunk, devices, now)
                opened += o
            s.execute(update(D).where(D.c.id.in_(ids)).values(state="silent", updated_at=now))
            s.execute(insert(AuditEntry.__table__), [
                dict(at=now, operator=SYSTEM.name, action="device.silent", kommune_kode=devices[i]["kommune_kode"],
                     dev_eui=devices[i]["dev_eui"], changes={"state": ["active", "silent"]}, note="no uplinks")
                for i in ids])
        if self.notifier is not None and opened:
            self.notifier.send(opened)
        return opened

    def _evaluate_silent(self, s, health, devices, now):
        ids = list(health)
        have = set(s.scalars(select(A.c.device_id).where(A.c.device_id.in_(ids), A.c.kind == "silent",
                                                         A.c.state != "resolved")))
        rows = []
        for dev_id, h in health.items():
            if dev_id in have:
                continue
            rows.append(dict(device_id=dev_id, kind="silent", severity=SEVERITY["silent"], state="open",
                             message="silent for " + _ago(now - _utc(h["last_seen"])), value=None, opened_at=now,
                             last_at=now, resolved_at=None, acked_by=None, open_key=f"{dev_id}:silent"))
        if not rows:
            return [], 0
        s.execute(insert(A), rows)
        got = dict(s.execute(select(A.c.open_key, A.c.id).where(A.c.open_key.in_([r["open_key"] for r in rows]))).all())
        return [alert_dict(dict(r, id=got.get(r["open_key"])), devices[r["device_id"]], health[r["device_id"]])
                for r in rows], 0

    # -- reading --------------------------------------------------------------------------------------

    def alerts(self, operator: Operator, *, kommune=None, include_resolved: bool = False,
               limit: int = 500) -> list[dict]:
        """Alerts of the devices this operator may see, open ones (and acked) first, newest first."""
        q = (select(A, D.c.dev_eui, D.c.kommune_kode, D.c.kommune_navn, D.c.name, D.c.site, D.c.latitude,
                    D.c.longitude, H.c.full_at, H.c.fill_bp)
             .join(D, D.c.id == A.c.device_id).outerjoin(H, H.c.device_id == A.c.device_id))
        scope = operator.visible_kommuner(kommune)
        if scope is not None:
            q = q.where(D.c.kommune_kode.in_(scope))
        if not include_resolved:
            q = q.where(A.c.state != "resolved")
        q = q.order_by(A.c.opened_at.desc(), A.c.id.desc()).limit(limit)
        with self.db.read() as s:
            return [alert_dict(m, m, m) for m in (r._asdict() for r in s.execute(q))]

    def ack_alert(self, operator: Operator, alert_id: int, *, note: str | None = None) -> dict:
        """Acknowledges an open alert (it stays until its condition clears, but is not sent again)."""
        with self.db.write() as s:
            q = select(A.c.id, A.c.state, A.c.kind, D.c.kommune_kode, D.c.dev_eui).join(D, D.c.id == A.c.device_id)
            q = q.where(A.c.id == int(alert_id))
            scope = operator.visible_kommuner()
            if scope is not None:
                q = q.where(D.c.kommune_kode.in_(scope))
            r = s.execute(q).first()
            if r is None:
                raise NotFound(f"no alert {alert_id}" + ("" if operator.cross_kommune else f" in kommune {operator.kommune}"),
                               hint="'fleet alerts' lists the open alerts you may see")
            if r.state == "open":
                s.execute(update(A).where(A.c.id == r.id).values(state="acked", acked_by=operator.name))
                s.add(AuditEntry(operator=operator.name, action="alert.ack", kommune_kode=r.kommune_kode,
                                 dev_eui=r.dev_eui, changes={"alert": [r.id, r.kind], "state": [r.state, "acked"]},
                                 note=note))
        return next(a for a in self.alerts(operator, include_resolved=True, limit=100_000) if a["id"] == r.id)

    def health(self, operator: Operator, dev_eui: str) -> dict:
        dev = self.registry.get_device(operator, dev_eui)  # NotFound outside the operator's kommune
        with self.db.read() as s:
            r = s.execute(select(H).where(H.c.device_id == dev.id)).first()
        return health_dict(r._asdict() if r else None, self.rules)

    def readings(self, operator: Operator, dev_eui: str, *, limit: int = 100) -> list[dict]:
        dev = self.registry.get_device(operator, dev_eui)
        with self.db.read() as s:
            rows = s.execute(select(R).where(R.c.device_id == dev.id).order_by(R.c.at.desc()).limit(limit)).all()
        out = []
        for r in rows:
            m = {k: v for k, v in r._asdict().items()
                 if v is not None and k not in ("uplink_id", "seq", "device_id")}
            m["at"] = _utc(r.at).isoformat()
            m["faults"] = r.faults.split(",") if r.faults else []
            out.append(m)
        return out


def full_at(fill_bp, rate_bp_h, at):
    """The forecast of docs/formats/payload.md: (10000 - fill) / rate hours after the newest reading."""
    if fill_bp is None or at is None:
        return None
    if fill_bp >= 10000:
        return at
    if not rate_bp_h or rate_bp_h <= 0:
        return None
    hours = (10000 - fill_bp) / rate_bp_h
    return at + timedelta(hours=min(hours, 24 * 365))


def _ago(dt: timedelta) -> str:
    s = int(dt.total_seconds())
    if s >= 2 * 86400:
        return f"{s // 86400} days"
    if s >= 7200:
        return f"{s // 3600} h"
    return f"{max(s, 0) // 60} min"


def _iso(t):
    return _utc(t).isoformat() if t is not None else None


def alert_dict(a: dict, dev: dict, h: dict | None) -> dict:
    """An alert as the CLI, the API and the notifiers show it (no secrets: a device's public fields)."""
    out = {"id": a.get("id"), "kind": a["kind"], "severity": a["severity"], "state": a["state"],
           "message": a["message"], "value": a.get("value"), "opened_at": _iso(a["opened_at"]),
           "last_at": _iso(a.get("last_at")), "resolved_at": _iso(a.get("resolved_at")),
           "dev_eui": dev["dev_eui"], "device": dev.get("name"), "site": dev.get("site"),
           "kommune_kode": dev["kommune_kode"], "kommune_navn": dev.get("kommune_navn"),
           "latitude": dev.get("latitude"), "longitude": dev.get("longitude")}
    if h is not None and h.get("full_at") is not None:
        out["full_at"] = _iso(h["full_at"])
    return out


def health_dict(h: dict | None, rules: AlertRules) -> dict | None:
    if h is None:
        return None
    out = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in h.items() if k != "device_id"}
    ups, lost = h.get("uplinks") or 0, h.get("lost_uplinks") or 0
    out["lost_ratio"] = round(lost / (ups + lost), 3) if ups + lost else 0.0
    out["expected_interval_s"] = h.get("interval_s") or rules.default_interval_s
    return out
