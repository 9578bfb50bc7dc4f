"""The fleet overview: per kommune the devices, full bins, silent nodes, low batteries, open alerts, and
rollout progress.

One grouped query for the counts and a few small LIMITed lists, all driven by the devices'
(kommune_kode, id) index and the health table's primary key: one kommune among 100,000 devices answers in
milliseconds (scripts/benches/ingest.py, registry.status_100k_ms).
"""

from datetime import datetime, timedelta, timezone

from sqlalchemy import case, func, select

from ..registry.access import Operator
from ..registry.kommuner import all_kommuner
from ..store import aware
from ..store.models import AlertRow, Device, DeviceHealth, IngestWorker, Rollout, RolloutDevice
from ..rollout.diagnostics import per_release
from .alerts import MIN_INTERVAL_S, AlertRules

D, H, A = Device.__table__, DeviceHealth.__table__, AlertRow.__table__


def _iso(t):
    return aware(t).isoformat() if t is not None else None


def fleet_status(registry, operator: Operator, *, kommune=None, rules: AlertRules | None = None,
                 list_limit: int = 20, with_devices: bool = False, now: datetime | None = None) -> dict:
    """{"generated_at", "kommuner": [...counts...], "full": [...], "silent": [...], "low_battery": [...],
    "no_network": [...] (nodes whose newest uplink says their WiFi join failed: "net_status"),
    "alerts": {kind: n}, "rollouts": [...], "releases": [...diagnostics per release and board...],
    "devices": [...] (with_devices)}.

    Computed for the moment it is read (`now`): an active device not heard from for `silent_intervals` of
    its intervals counts as silent even before a sweep (fleet alerts --check, ingest) has marked it, and a
    "full at" forecast that has passed is flagged `overdue`, not shown as a forecast."""
    rules = rules or AlertRules()
    now = now or datetime.now(timezone.utc)
    scope = operator.visible_kommuner(kommune)

    def scoped(q):
        if scope is None:
            return q
        return q.where(D.c.kommune_kode == scope[0]) if len(scope) == 1 else q.where(D.c.kommune_kode.in_(scope))

    full = H.c.fill_bp >= rules.full_bp
    low = H.c.battery_mv < rules.battery_mv
    no_net = H.c.net_status.is_not(None)
    counts = scoped(select(
        D.c.kommune_kode, func.count(D.c.id).label("devices"),
        func.sum(case((D.c.state == "active", 1), else_=0)).label("active"),
        func.sum(case((D.c.state == "silent", 1), else_=0)).label("silent"),
        func.sum(case((D.c.state.in_(("enrolled", "enrolling")), 1), else_=0)).label("never_heard"),
        func.sum(case((full, 1), else_=0)).label("full"),
        func.sum(case((low, 1), else_=0)).label("low_battery"),
        func.sum(case((no_net, 1), else_=0)).label("no_network"),
    ).select_from(D.outerjoin(H, H.c.device_id == D.c.id)).where(D.c.state != "retired")
        .group_by(D.c.kommune_kode).order_by(D.c.kommune_kode))
    cols = (D.c.dev_eui, D.c.name, D.c.site, D.c.kommune_kode, H.c.fill_bp, H.c.full_at, H.c.battery_mv,
            H.c.last_seen)
    base = scoped(select(*cols).select_from(D.join(H, H.c.device_id == D.c.id)))
    full_q = base.where(full).order_by(H.c.fill_bp.desc(), D.c.id).limit(list_limit)
    low_q = base.where(low).order_by(H.c.battery_mv, D.c.id).limit(list_limit)
    no_net_q = (scoped(select(*cols, H.c.net_status).select_from(D.join(H, H.c.device_id == D.c.id)))
                .where(no_net, D.c.state != "retired").order_by(D.c.kommune_kode, D.c.id).limit(list_limit))
    silent_q = base.where(D.c.state == "silent").order_by(H.c.last_seen, D.c.id).limit(list_limit)
    soon_q = (base.where(H.c.full_at.is_not(None), ~full).order_by(H.c.full_at, D.c.id).limit(list_limit))
    # active devices that may have gone silent since the last sweep (the same rule as TelemetryStore.sweep)
    quiet_q = (scoped(select(*cols, H.c.interval_s).select_from(D.join(H, H.c.device_id == D.c.id)))
               .where(D.c.state == "active", H.c.last_seen < now - timedelta(seconds=rules.silent_intervals
                                                                                * MIN_INTERVAL_S)))
    alerts_q = scoped(select(A.c.kind, func.count(A.c.id)).select_from(A.join(D, D.c.id == A.c.device_id))
                      .where(A.c.state != "resolved").group_by(A.c.kind))
    names = all_kommuner()
    with registry.db.read() as s:
        kommuner = []
        for r in s.execute(counts):
            m = {k: int(v or 0) for k, v in r._asdict().items() if k != "kommune_kode"}
            k = names.get(r.kommune_kode)
            kommuner.append({"kode": r.kommune_kode, "navn": k.navn if k else None, **m})
        out = {
            "generated_at": now.isoformat(),
            "scope": scope,
            "thresholds": {"full_pct": rules.full_bp / 100, "battery_v": rules.battery_mv / 1000,
                           "silent_intervals": rules.silent_intervals},
            "kommuner": kommuner,
            "full": [_brief(r) for r in s.execute(full_q)],
            "filling_up": [_brief(r) for r in s.execute(soon_q)],
            "silent": [_brief(r) for r in s.execute(silent_q)],
            "silent_unswept": [_brief(r) for r in s.execute(quiet_q)
                               if aware(r.last_seen) < now - timedelta(seconds=rules.silent_intervals
                                                                       * (r.interval_s or rules.default_interval_s))],
            "low_battery": [_brief(r) for r in s.execute(low_q)],
            "no_network": [_brief(r) for r in s.execute(no_net_q)],
            "alerts": {k: int(n) for k, n in s.execute(alerts_q)},
        }
        _silent_now(out, list_limit)
        for d in out["filling_up"]:
            d["overdue"] = d["full_at"] is not None and datetime.fromisoformat(d["full_at"]) <= now
        out["rollouts"] = rollout_progress(s, scope)
        out["releases"] = per_release(s, scope)  # diagnostics per release (fleet.rollout.diagnostics)
        out["ingest"] = ingest_workers(s, now, detail=scope is None)
        if with_devices:
            q = scoped(select(D.c.dev_eui, D.c.name, D.c.site, D.c.kommune_kode, D.c.kind, D.c.state, D.c.latitude,
                              D.c.longitude, H.c.fill_bp, H.c.full_at, H.c.battery_mv, H.c.last_seen, H.c.rssi,
                              H.c.snr, H.c.lost_uplinks, H.c.uplinks, H.c.firmware_version, H.c.interval_s)
                       .select_from(D.outerjoin(H, H.c.device_id == D.c.id)).where(D.c.state != "retired")
                       .order_by(D.c.kommune_kode, D.c.id))
            out["devices"] = [_device_now(r, now, rules) for r in s.execute(q)]
    out["totals"] = {k: sum(x[k] for x in kommuner) for k in ("devices", "active", "silent", "never_heard", "full",
                                                             "low_battery", "no_network")}
    out["totals"]["open_alerts"] = sum(out["alerts"].values())
    return out


def _silent_now(out: dict, list_limit: int) -> None:
    """Moves the active devices that are silent by now into the silent counts and list."""
    quiet = out.pop("silent_unswept")
    per = {}
    for d in quiet:
        per[d["kommune_kode"]] = per.get(d["kommune_kode"], 0) + 1
    for k in out["kommuner"]:
        n = per.get(k["kode"], 0)
        k["active"] -= n
        k["silent"] += n
    merged = sorted(out["silent"] + [{k: v for k, v in d.items() if k != "interval_s"} for d in quiet],
                    key=lambda d: (d["last_seen"] or "", d["dev_eui"]))
    out["silent"] = merged[:list_limit]


def _device_now(r, now: datetime, rules: AlertRules) -> dict:
    """A device row as it stands at `now`: an active device past its silence is 'silent' (the rule of
    TelemetryStore.sweep, before a sweep has marked it), and its forecast 'overdue' once the moment passed."""
    d = _brief(r)
    interval = d.pop("interval_s", None) or rules.default_interval_s
    if (d["state"] == "active" and r.last_seen is not None
            and aware(r.last_seen) < now - timedelta(seconds=rules.silent_intervals * interval)):
        d["state"] = "silent"
    d["overdue"] = d["full_at"] is not None and datetime.fromisoformat(d["full_at"]) <= now
    return d


def _brief(r) -> dict:
    m = r._asdict()
    for k in ("full_at", "last_seen"):
        if k in m:
            m[k] = _iso(m[k])
    if m.get("fill_bp") is not None:
        m["fill_pct"] = m["fill_bp"] / 100
    if m.get("battery_mv") is not None:
        m["battery_v"] = m["battery_mv"] / 1000
    return m


def rollout_progress(s, scope) -> list:
    """Per rollout (the newest 20 in scope), how many of its devices are in each state, and the share done
    (confirmed or installed). The rollout tables are in the one database (fleet.store.models)."""
    q = select(Rollout.id, Rollout.version, Rollout.state, Rollout.kommune_kode).order_by(Rollout.id.desc()).limit(20)
    if scope is not None:
        q = q.where(Rollout.kommune_kode == scope[0]) if len(scope) == 1 else q.where(Rollout.kommune_kode.in_(scope))
    rollouts = {r.id: {"id": r.id, "name": r.version, "state": r.state, "kommune_kode": r.kommune_kode,
                       "devices": {}, "total": 0} for r in s.execute(q)}
    if rollouts:
        per = (select(RolloutDevice.rollout_id, RolloutDevice.state, func.count())
               .where(RolloutDevice.rollout_id.in_(list(rollouts)))
               .group_by(RolloutDevice.rollout_id, RolloutDevice.state))
        for rollout_id, state, n in s.execute(per):
            ro = rollouts[rollout_id]
            ro["devices"][state] = int(n)
            ro["total"] += int(n)
    out = list(rollouts.values())
    for ro in out:
        done = sum(ro["devices"].get(k, 0) for k in ("confirmed", "installed"))
        ro["done_pct"] = round(100 * done / ro["total"], 1) if ro["total"] else 0.0
    return out


STALE_BEATS = 3            # a worker that missed this many heartbeats (and 5 s more) is down
FORGET_STOPPED_S = 86400   # a worker that stopped cleanly is shown for a day


def ingest_workers(s, now: datetime, *, detail: bool = True) -> list[dict]:
    """The MQTT ingesters as their heartbeats left them (fleet-wide: counts only, no device data). Each
    with `status`: ok, behind (its own figures), down (no heartbeat for STALE_BEATS intervals: crashed,
    killed or hung; its messages wait at the broker) or stopped (a clean stop). Without `detail` (an
    operator of one kommune) the rows leave out where they run (host, pid, broker, topics)."""
    W = IngestWorker.__table__
    out = []
    for r in s.execute(select(W).order_by(W.c.client_id)):
        m = r._asdict()
        beat = aware(m["heartbeat_at"])
        age = (now - beat).total_seconds()
        if m["state"] == "stopped":
            if age > FORGET_STOPPED_S:
                continue
            status = "stopped"
        elif age > STALE_BEATS * m["heartbeat_s"] + 5:
            status = "down"
        else:
            status = "behind" if m["behind"] else "ok"
        m.update(status=status, heartbeat_age_s=round(age, 1), heartbeat_at=_iso(beat),
                 started_at=_iso(m["started_at"]))
        if not detail:
            for k in ("host", "pid", "broker", "topics"):
                m.pop(k)
        out.append(m)
    return out


def ingest_line(workers: list[dict]) -> str:
    """One line for `fleet status`: whether MQTT ingest keeps up."""
    if not workers:
        return "ingest: no MQTT ingester has reported (fleet ingest mqtt)"
    live = [w for w in workers if w["status"] != "stopped"]
    bad = [w for w in live if w["status"] in ("behind", "down")]
    held = max((w["broker_held"] for w in live if w["broker_held"] is not None), default=None)
    tail = f"; the broker holds {held} messages" if held is not None else ""
    if not bad:
        pending = sum(w["pending"] for w in live)
        return (f"ingest: {len(live)} worker{'s' if len(live) != 1 else ''} keeping up ({pending} pending)"
                if live else "ingest: stopped") + tail
    parts = []
    for w in bad:
        if w["status"] == "down":
            parts.append(f"{w['client_id']} down, no heartbeat for {w['heartbeat_age_s']:.0f} s")
        else:
            parts.append(f"{w['client_id']} {w['behind_reason']}")
    return f"ingest: BEHIND ({len(bad)} of {len(live)} workers): " + "; ".join(parts) + tail
