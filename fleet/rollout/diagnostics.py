"""Diagnostics per release (docs/fleet-admin.md, "Diagnostics per release"; the record:
docs/formats/diagnostics.md).

A check-in's "diag" carries the device's counters since its power-on. The server keeps the last ones per
device (ota_devices.diag_*) and turns each check-in into differences: resets (starts that were not
deep-sleep wakes nor the OTA client's own switch) and watchdog resets since the device's previous check-in.
Counters that went down mean the device lost power: the new values count from its power-on, which is not
itself a reset. The differences add up per device and release (release_diagnostics: `fleet status`) and
per rollout member (rollout_devices.resets, .watchdog_resets, .diag_checkins), counted on the release it
runs: the old one until it confirms the rollout's, then again from zero on the new one.

The halting rule (rollout_verdict): the rate of resets per check-in of the rollout's confirmed members in
its open waves (each past its soak) against the same rate of the comparable devices, the rollout's members
still on the old release (same kommune and board, counted since the rollout started); the same for
watchdog resets. A wave halts when either new rate exceeds the old one by more than the rollout's halt
threshold, read as resets per check-in (--halt-at 10%: more than 0.1 resets per check-in above the old
release's).
"""

import re
from dataclasses import dataclass

from sqlalchemy import select

from ..errors import UsageError
from ..store import aware as _aware
from ..store.models import OtaDevice, ReleaseDiagnostics, RolloutDevice

CAUSES = ("unknown", "power_on", "hard", "watchdog", "deepsleep", "soft", "brownout", "panic")
_HASH = re.compile(r"^[0-9a-f]{8}$")
_MAX = 0xFFFF


def check_diag(d) -> dict | None:
    """A check-in's "diag" object as the server keeps it, None when absent; UsageError when malformed."""
    if d is None:
        return None
    if not isinstance(d, dict) or d.get("v") != 1:
        raise UsageError("a check-in's 'diag' is an object with \"v\": 1 (docs/formats/diagnostics.md)")
    out = {}
    for k in ("boots", "watchdog_resets"):
        v = d.get(k)
        if type(v) is not int or not 0 <= v <= _MAX:
            raise UsageError(f"'diag.{k}' is a whole number from 0 to 65535")
        out[k] = v
    h = d.get("heap_min")
    if h is not None and (type(h) is not int or h < 0):
        raise UsageError("'diag.heap_min' is a number of bytes, or null")
    out["heap_min"] = h
    e = d.get("exception")
    if e is not None and (not isinstance(e, str) or not _HASH.match(e)):
        raise UsageError("'diag.exception' is 8 lower-case hex digits, or null")
    out["exception"] = e
    c = d.get("reset_cause")
    out["reset_cause"] = c if c in CAUSES else "unknown"
    return out


def differences(prev_boots, prev_wdt, boots, wdt) -> tuple[int, int]:
    """(resets, watchdog resets) between two check-ins' counters. Nothing before the first one; counters
    that went down started again at a power-on, which is not a reset (boots 1 is the power-on)."""
    if prev_boots is None or prev_wdt is None:
        return 0, 0
    if boots < prev_boots or wdt < prev_wdt:
        return max(boots - 1, 0), wdt
    return boots - prev_boots, wdt - prev_wdt


def record(s, d: OtaDevice, r: dict, now) -> tuple[int, int] | None:
    """Keeps a check-in's diagnostics on its device and release; returns its (resets, watchdog resets),
    None when the check-in carried none."""
    g = r.get("diag")
    if g is None:
        return None
    dr, dw = differences(d.diag_boots, d.diag_watchdog, g["boots"], g["watchdog_resets"])
    d.diag_cause, d.diag_boots, d.diag_watchdog = g["reset_cause"], g["boots"], g["watchdog_resets"]
    d.diag_heap_min, d.diag_exception, d.diag_at = g["heap_min"], g["exception"], now
    _add(s, r["device"], r.get("version"), "checkin", r["kommune"], r["board"], g, (dr, dw), now)
    return dr, dw


def _add(s, device, version, source, kommune, board, g, diff, now):
    version = version or "unknown"
    row = s.scalars(select(ReleaseDiagnostics).where(ReleaseDiagnostics.device == device,
                                                     ReleaseDiagnostics.version == version,
                                                     ReleaseDiagnostics.source == source)).first()
    if row is None:
        row = ReleaseDiagnostics(device=device, version=version, source=source, checkins=0, resets=0,
                                 watchdog_resets=0, first_at=now)
        s.add(row)
    row.kommune_kode, row.board = kommune, board
    row.checkins += 1
    row.resets += diff[0]
    row.watchdog_resets += diff[1]
    if g["heap_min"] is not None:
        row.heap_min = g["heap_min"] if row.heap_min is None else min(row.heap_min, g["heap_min"])
    row.exception = g["exception"] or row.exception
    row.last_cause, row.last_at = g["reset_cause"], now
    row.last_boots, row.last_watchdog = g["boots"], g["watchdog_resets"]


DUPLICATE_S = 3600  # the same record again within this long: another gateway's or the broker's copy


def record_uplink(s, device: str, kommune: str, board: str, version: str | None, rec: dict, now) -> str:
    """Keeps a diagnostics record from an uplink (fleet.codec.diag.decode_diag) on its device and release:
    "stored", or "duplicate" when it repeats the device's newest record (the counters only grow, so the
    same counters within DUPLICATE_S are the same record delivered twice)."""
    prev = s.scalars(select(ReleaseDiagnostics).where(ReleaseDiagnostics.device == device,
                                                      ReleaseDiagnostics.source == "uplink")
                     .order_by(ReleaseDiagnostics.last_at.desc())).first()
    if (prev is not None and (prev.last_boots, prev.last_watchdog) == (rec["boots"], rec["watchdog_resets"])
            and abs((_aware(now) - _aware(prev.last_at)).total_seconds()) < DUPLICATE_S):
        return "duplicate"
    diff = differences(prev.last_boots if prev else None, prev.last_watchdog if prev else None, rec["boots"],
                       rec["watchdog_resets"])
    _add(s, device, version, "uplink", kommune, board, rec, diff, now)
    return "stored"


def count_member(m: RolloutDevice, diff, *, was: str, manifest: str, release: str | None):
    """Adds a check-in's differences to a rollout member's counts on the release it runs; a member that
    has just confirmed the rollout's release starts again from zero (what came before was the old one)."""
    if diff is None:
        return
    if m.state == "confirmed" and was != "confirmed":
        m.diag_checkins, m.resets, m.watchdog_resets = 0, 0, 0
        return
    if m.state == "confirmed" or (m.state == "pending" and release != manifest):
        m.diag_checkins = (m.diag_checkins or 0) + 1
        m.resets = (m.resets or 0) + diff[0]
        m.watchdog_resets = (m.watchdog_resets or 0) + diff[1]


def soaking(state: str, checkins: int | None, soak: int | None) -> bool:
    """A confirmed member that has not yet checked in `soak` times on the new release is not done."""
    return state == "confirmed" and bool(soak) and (checkins or 0) < soak


@dataclass
class Rates:
    devices: int
    checkins: int
    resets: int
    watchdog_resets: int

    def rate(self, what: str) -> float:
        return getattr(self, what) / self.checkins if self.checkins else 0.0


def rollout_verdict(members, wave: int, halt_at: int, soak: int | None) -> tuple[str | None, dict]:
    """(a halt note or None, the two groups' Rates) from members' (wave, state, diag_checkins, resets,
    watchdog_resets): the rule in this module's docstring."""
    new = Rates(0, 0, 0, 0)
    old = Rates(0, 0, 0, 0)
    for w, st, n, resets, wdt in members:
        if not n:
            continue
        if w <= wave and st == "confirmed" and not soaking(st, n, soak):
            g = new
        elif st == "pending":
            g = old
        else:
            continue
        g.devices += 1
        g.checkins += n
        g.resets += resets or 0
        g.watchdog_resets += wdt or 0
    return verdict(new, old, halt_at)


def verdict(new: Rates, old: Rates, halt_at: int) -> tuple[str | None, dict]:
    """(a halt note or None, the two groups as dicts): the rule on the two groups' sums."""
    groups = {"new": dict(new.__dict__), "old": dict(old.__dict__)}
    if not new.checkins:
        return None, groups
    for what, label in (("watchdog_resets", "watchdog resets"), ("resets", "resets")):
        rn, ro = new.rate(what), old.rate(what)
        if (rn - ro) * 1000 > halt_at:
            return (f"halted by itself: {label} per check-in rose to {rn:.2f} on the new release ({getattr(new, what)} "
                    f"in {new.checkins} check-ins of {new.devices} devices) against {ro:.2f} on the old release "
                    f"({getattr(old, what)} in {old.checkins} check-ins of {old.devices} devices; threshold "
                    f"+{halt_at / 1000:g} per check-in)"), groups
    return None, groups


def per_release(s, kommune_kodes=None) -> list[dict]:
    """Diagnostics summed per release (version) and board: devices, reports ("checkins": check-ins, or
    records for a device known only by its uplinks), resets and watchdog resets per report, the lowest free
    heap, and the exception hashes seen, most devices first."""
    q = select(ReleaseDiagnostics)
    if kommune_kodes is not None:
        q = q.where(ReleaseDiagnostics.kommune_kode.in_(list(kommune_kodes)))
    best = {}  # (device, version) -> its check-ins' row if it has one, else its uplinks'
    for row in s.scalars(q):
        k = (row.device, row.version)
        if k not in best or row.source == "checkin":
            best[k] = row
    out = {}
    for row in best.values():
        k = (row.version, row.board)
        o = out.setdefault(k, {"version": row.version, "board": row.board, "devices": 0, "checkins": 0,
                               "resets": 0, "watchdog_resets": 0, "heap_min": None, "exceptions": {}})
        o["devices"] += 1
        o["checkins"] += row.checkins
        o["resets"] += row.resets
        o["watchdog_resets"] += row.watchdog_resets
        if row.heap_min is not None:
            o["heap_min"] = row.heap_min if o["heap_min"] is None else min(o["heap_min"], row.heap_min)
        if row.exception:
            o["exceptions"][row.exception] = o["exceptions"].get(row.exception, 0) + 1
    rows = []
    for o in out.values():
        n = o["checkins"]
        o["resets_per_checkin"] = round(o["resets"] / n, 3) if n else None
        o["watchdog_per_checkin"] = round(o["watchdog_resets"] / n, 3) if n else None
        rows.append(o)
    return sorted(rows, key=lambda o: (-o["devices"], o["version"], o["board"]))


def record_uplinks(db, items, scope=None) -> tuple[int, int, list]:
    """Diagnostics records from uplinks, [(dev_eui, record, received_at)], in one transaction, each on its
    enrolled device's kommune, board and firmware version (as the registry has it). `scope`: the kommune
    codes the writer may write (None: all). Returns (stored, duplicates, rejected as (reason, message,
    dev_eui))."""
    from ..store.models import Device

    stored = dup = 0
    rejected = []
    with db.write() as s:
        q = select(Device).where(Device.dev_eui.in_(sorted({d for d, _, _ in items})))
        if scope is not None:
            q = q.where(Device.kommune_kode.in_(list(scope)))
        devices = {d.dev_eui: d for d in s.scalars(q)}
        for dev_eui, rec, at in items:
            d = devices.get(dev_eui)
            if d is None or d.state == "retired":
                rejected.append(("unknown_device", f"no enrolled device {dev_eui}", dev_eui))
                continue
            if record_uplink(s, dev_eui, d.kommune_kode, d.board or "?", d.firmware_version, rec, at) == "stored":
                stored += 1
            else:
                dup += 1
            s.flush()
    return stored, dup, rejected
