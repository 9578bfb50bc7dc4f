"""A LoRaWAN rollout moved by what the network server forwards (fleet.fuota.store): the set-up requests the
host planned go to the firmware's own FUOTA packages (run on the unix port, tests/host/fuota_fw_support.py),
their answers come back as ChirpStack uplink events through ingest (fleet.telemetry), and the rollout's
devices move through the FUOTA states; a check-in says what a device runs after the update. On SQLite and
PostgreSQL (db_url). The registry alone says which kommune a device is in."""

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import pytest

import fuota_fw_support as fw
from fleet.cli.rollout_lorawan import _session_entry
from fleet.errors import RolloutConflict, RolloutError
from fleet.fuota import clock as fclock
from fleet.fuota import deploy
from fleet.fuota.rollout import LorawanRollout
from fleet.fuota.spec import SPEC as FRAG
from fleet.fuota.store import FuotaStore
from fleet.rollout import OtaStore
from fleet.store.models import AuditEntry
from fleet.telemetry import TelemetryStore
from fleet.telemetry.events import parse_event
from lab import telemetry_samples as S
from telemetry_support import enroll
from test_registry_support import ADMIN, ODENSE, db_url, key, registry  # noqa: F401 (fixtures)

NOW = time.time()
SESSION_GPS = fclock.gps_time(NOW - 3000)   # the class C window opened 3000 s ago (and closed since)
BOARD_NOW = int(NOW - 3600)                 # the boards' clocks when their set-up arrived
SET_UP_AT = datetime.now(timezone.utc) - timedelta(seconds=3500)
IN_WINDOW = datetime.now(timezone.utc) - timedelta(seconds=2900)
AFTER = datetime.now(timezone.utc) - timedelta(seconds=600)


def _event(dev, port, payload, at, fcnt):
    return parse_event(json.dumps(S.chirpstack_event(dev, payload, f_cnt=fcnt, at=at, f_port=port)), "chirpstack")


def _start(registry, idents, *, waves, halt_at, tmp_path, wave_timeout_s=None):
    """A rollout of the Aarhus devices `idents` as fleet rollout start --via lorawan keeps it: planned, its
    first wave in session 1. Returns (store, plan, rollout view, wave 1's DevEUIs)."""
    payload = bytes(range(256)) + b"bysans 1.1.0" * 4
    targets = [deploy.Target(i.dev_eui.lower(), i.app_key) for i in idents]
    plan = deploy.plan(payload, targets, dr=0, loss=0.1)
    ro = LorawanRollout.start(version="1.1.0", kommune="0751", dev_euis=[t.dev_eui for t in targets], waves=waves,
                              halt_at=halt_at, seed="ingest", group_id=plan.group_id)
    first = ro.session_devices()
    for d in first:
        ro.devices[d].session = 1
    store = FuotaStore(registry.db)
    view = store.start(ro, board="virtual", from_version="1.0.0", seed="ingest",
                       payload_sha256=hashlib.sha256(payload).hexdigest(), payload_bytes=len(payload), dr=plan.dr,
                       loss=plan.loss, freq_hz=plan.freq_hz, folder=str(tmp_path),
                       session=_session_entry(1, 1, plan, first, SESSION_GPS, "."), operator="anna",
                       wave_timeout_s=wave_timeout_s)
    return store, plan, view, first


def _answers(tmp_path, plan, keys: dict, fragments: dict):
    """Each device's answers, from the firmware, to the plan's requests in the order the deployment folder
    gives them (clock sync, McGroupSetupReq, FragSessionSetupReq, McClassCSessionReq), then the DataFragments
    `fragments[dev]` (their indexes) and a FragSessionStatusReq. {dev: [(name, fport, payload)]}"""
    steps, names = [], []
    frags = plan.data_fragments()
    for dev, app_key in keys.items():
        steps.append({"op": "new", "dev": dev, "app_key": app_key.hex(), "now": BOARD_NOW, "root": f"fw_{dev}"})
        names.append((dev, None))
        steps.append({"op": "take", "dev": dev})
        names.append((dev, "clock"))
        for name, port, req in (("group", 200, plan.setup_req(deploy.Target(dev, app_key))),
                                ("frag_setup", 201, plan.frag_setup_req()),
                                ("class_c", 200, plan.class_c_req(SESSION_GPS))):
            steps.append({"op": "down", "dev": dev, "port": port, "payload": req.hex()})
            names.append((dev, name))
        for k in fragments[dev]:
            steps.append({"op": "down", "dev": dev, "port": 201, "payload": frags[k].hex()})
            names.append((dev, None))
        steps.append({"op": "down", "dev": dev, "port": 201, "payload": FRAG.pack_status_req(0, True).hex()})
        names.append((dev, "status"))
    out = {dev: [] for dev in keys}
    for (dev, name), got in zip(names, fw.run(tmp_path, steps)):
        if name:
            out[dev] += [(name, port, payload) for port, payload in got]
    return out


def test_ingest_moves_the_rollout_with_the_firmwares_own_answers(registry, tmp_path):
    idents = [enroll(registry, "751") for _ in range(4)]
    store, plan, view, wave1 = _start(registry, idents, waves=[500, 1000], halt_at=500, tmp_path=tmp_path)
    assert len(wave1) == 2 and view["per_wave"][0]["sessions"] == [1] and view["per_wave"][1]["sessions"] == []
    keys = {i.dev_eui.lower(): i.app_key for i in idents}
    a, b = wave1
    # a loses two data fragments (the coded ones make up for them); b gets only three of them
    kept_a = [k for k in range(plan.fragments) if k not in (1, 3)]
    ans = _answers(tmp_path, plan, {a: keys[a], b: keys[b]}, {a: kept_a, b: [0, 2, 4]})
    assert [n for n, _, _ in ans[a]] == ["clock", "group", "frag_setup", "class_c", "status"], ans[a]
    tele = TelemetryStore(registry)

    def ingest(items, operator=ADMIN):
        return tele.ingest([_event(d, port, p, at, n) for n, (d, port, p, at) in enumerate(items, 1)],
                           operator=operator)

    # a kommune's ingest token cannot move another kommune's rollout
    r = ingest([(a, port, p, SET_UP_AT) for _, port, p in ans[a]], operator=ODENSE)
    assert r.fuota["not_in_rollout"] == 5 and not r.fuota["moved"]
    assert {d["device"]: d["state"] for d in store.status(kommune="751")["devices"]}[a] == "pending"

    seen = {}
    for dev in (a, b):
        for name, port, p in ans[dev]:
            at = IN_WINDOW if name == "status" else SET_UP_AT
            r = ingest([(dev, port, p, at)])
            assert r.stored == 0 and r.ignored["other_fport"] == 1  # no readings: FUOTA answers
            seen[(dev, name)] = {d["device"]: d for d in store.status(rollout_id=view["id"])["devices"]}[dev]
    # an unsynced node's AppTimeReq asks for an answer: not synced yet (the network server answers it)
    [(_, _, req)] = [x for x in ans[a] if x[0] == "clock"]
    assert [c["ans_required"] for c in fclock.parse_uplink(req)] == [True]
    assert seen[(a, "clock")]["state"] == "pending"
    assert seen[(a, "group")]["state"] == "group_set_up"
    assert seen[(a, "frag_setup")]["state"] == "group_set_up"       # a fragmentation session without errors
    assert seen[(a, "class_c")]["state"] == "session_set_up"
    assert (seen[(a, "status")]["state"], seen[(a, "status")]["missing"]) == ("rebuilt", 0)
    assert seen[(a, "status")]["received"] >= plan.nb_frag
    st_b = seen[(b, "status")]
    assert (st_b["state"], st_b["received"], st_b["missing"], st_b["nb_frag"]) == ("fragments", 3, plan.nb_frag - 3,
                                                                                  plan.nb_frag)
    # b's status again once the class C window has closed: still short, so it failed
    [(_, port, p)] = [x for x in ans[b] if x[0] == "status"]
    r = ingest([(b, port, p, AFTER)])
    assert r.fuota["moved"] == 1
    view = store.status(kommune="751")
    dev = {d["device"]: d for d in view["devices"]}
    assert dev[b]["state"] == "failed" and "missing after the session" in dev[b]["reason"]
    assert view["open_waves"] == 1 and view["state"] == "running"
    with pytest.raises(RolloutError, match="no device waits for a session"):
        store.session_due(kommune="751")

    # a runs the release after its first boot (its check-in): confirmed; 1 of 2 failed is not above 50 %
    ota = OtaStore(registry.db)
    ota.checkin({"device": a.upper(), "kommune": "751", "board": "virtual", "state": "installed",
                 "version": "1.0.0", "target": "ab" * 32})
    assert {d["device"]: d["state"] for d in store.status(kommune="751")["devices"]}[a] == "installed"
    ota.checkin({"device": a.upper(), "kommune": "751", "board": "virtual", "state": "confirmed", "version": "1.1.0"})
    view = store.status(kommune="751")
    assert {d["device"]: d["state"] for d in view["devices"]}[a] == "confirmed"
    assert view["open_waves"] == 2 and view["state"] == "running"
    assert view["per_wave"][0]["counts"] == {"confirmed": 1, "failed": 1}
    # the next wave's session is for exactly its devices
    due = store.session_due(kommune="751")
    wave2 = sorted(set(keys) - {a, b})
    assert sorted(due["devices"]) == wave2 and due["n"] == 2
    view = store.record_session(view["id"], {"n": 2, "wave": 2, "devices": 2, "session_gps": SESSION_GPS + 86400,
                                             "timeout": plan.timeout, "nb_frag": plan.nb_frag}, due["devices"],
                                operator="anna")
    assert view["per_wave"][1]["sessions"] == [2] and view["waiting_for_session"] == 0
    with pytest.raises(RolloutError):
        store.session_due(kommune="751")

    # the registry alone says where a device belongs: moved to Odense, its answers move nothing in Aarhus
    c = wave2[0]
    registry.move_device(ADMIN, c.upper(), "461", note="test")
    r = ingest([(c, 200, bytes([0x02, 0x00]), SET_UP_AT)])       # McGroupSetupAns, group 0, no error
    assert r.fuota["not_in_rollout"] == 1
    assert {d["device"]: d["state"] for d in store.status(kommune="751")["devices"]}[c] == "pending"
    # a device of Aarhus in no rollout
    other = enroll(registry, "751")
    assert ingest([(other.dev_eui, 200, bytes([0x02, 0x00]), SET_UP_AT)]).fuota["not_in_rollout"] == 1


def test_halt_resume_pause_abort_are_audited_and_one_rollout_per_board(registry, tmp_path):
    idents = [enroll(registry, "751") for _ in range(4)]
    store, plan, view, wave1 = _start(registry, idents, waves=[500, 1000], halt_at=100, tmp_path=tmp_path)
    with pytest.raises(RolloutConflict):
        _start(registry, idents, waves=[1000], halt_at=100, tmp_path=tmp_path)
    tele = TelemetryStore(registry)
    # one canary refuses the class C session (the firmware's answer with its FreqError bit)
    a = wave1[0]
    app_key = {i.dev_eui.lower(): i.app_key for i in idents}[a]
    req = plan.class_c_req(SESSION_GPS)  # ... at 915 MHz, outside EU868: the firmware answers FreqError
    steps = [{"op": "new", "dev": a, "app_key": app_key.hex(), "now": BOARD_NOW, "root": "fw_h"},
             {"op": "down", "dev": a, "port": 200, "payload": plan.setup_req(deploy.Target(a, app_key)).hex()},
             {"op": "down", "dev": a, "port": 200,
              "payload": (req[:-4] + (915_000_000 // 100).to_bytes(3, "little") + req[-1:]).hex()}]
    out = fw.run(tmp_path, steps)
    [(port, refusal)] = out[2]
    tele.ingest([_event(a, port, refusal, SET_UP_AT, 1)])
    view = store.status(kommune="751")
    assert view["state"] == "halted" and "1 of 2 devices failed" in view["note"]
    assert {d["device"]: d for d in view["devices"]}[a]["reason"].startswith("class C session refused")
    with pytest.raises(RolloutError, match="halted"):
        store.session_due(kommune="751")
    view = store.resume(kommune="751", operator="bo", note="a bad channel plan on that one")
    assert view["state"] == "running"
    assert store.pause(kommune="751", operator="bo")["state"] == "paused"
    assert store.abort(kommune="751", operator="carl", note="replaced")["state"] == "aborted"
    with registry.db.read() as s:
        rows = [(e.action, e.operator) for e in s.query(AuditEntry).filter(AuditEntry.action.like("rollout.%"))
                .order_by(AuditEntry.id)]
    assert rows == [("rollout.start", "anna"), ("rollout.resume", "bo"), ("rollout.pause", "bo"),
                    ("rollout.abort", "carl")]
    # an aborted rollout no longer moves, and a new one may start
    r = tele.ingest([_event(a, port, refusal, SET_UP_AT, 2)])
    assert r.fuota["not_in_rollout"] == 1
    _start(registry, idents, waves=[1000], halt_at=100, tmp_path=tmp_path)


def test_the_wave_timeout_opens_the_next_wave(registry, tmp_path):
    idents = [enroll(registry, "751") for _ in range(2)]
    clock = [datetime.now(timezone.utc)]
    store, plan, view, wave1 = _start(registry, idents, waves=[500, 1000], halt_at=500, tmp_path=tmp_path,
                                      wave_timeout_s=3600)
    store = FuotaStore(registry.db, clock=lambda: clock[0])
    # the canary answered its group set-up, then nothing: after the timeout it is silent, not failed
    TelemetryStore(registry).ingest([_event(wave1[0], 200, bytes([0x02, 0x00]), SET_UP_AT, 1)])
    assert store.status(kommune="751")["open_waves"] == 1
    clock[0] += timedelta(seconds=3601)
    view = store.status(kommune="751")
    [d] = [d for d in view["devices"] if d["device"] == wave1[0]]
    assert (d["state"], d["reason"]) == ("silent", "was group_set_up")
    assert view["open_waves"] == 2 and view["failed_in_open_waves"] == 0
    assert store.session_due(kommune="751")["devices"] == [x for x in (i.dev_eui.lower() for i in idents)
                                                           if x != wave1[0]]
