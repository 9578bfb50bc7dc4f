"""Telemetry store: readings, health, duplicates, malformed uplinks, alerts and their webhook, status —
on SQLite and on PostgreSQL (db_url runs each test on both)."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fleet.errors import AccessDenied, MalformedUplink
from fleet.store.models import ReadingRow, UplinkRow
from fleet.telemetry import AlertRules, TelemetryStore, WebhookNotifier, fleet_status, parse_event
from lab import telemetry_samples as S
from telemetry_support import WebhookReceiver, enroll, waste_event
from test_registry_support import ADMIN, AARHUS, ODENSE, db_url, key, registry  # noqa: F401 (fixtures)

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


def _count(reg, model):
    with reg.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def _ingest(store, events, fmt="chirpstack"):
    return store.ingest([parse_event(json.dumps(e), fmt) for e in events])


def test_samples_parse_into_uplinks():
    cs = parse_event((SAMPLES / "chirpstack-up-waste.json").read_text(), "chirpstack")
    tts = parse_event((SAMPLES / "tts-up-waste.json").read_text(), "tts")
    assert cs.dev_eui == tts.dev_eui == "240AC4FFFE000751"
    assert (cs.f_cnt, cs.f_port, cs.rssi, cs.snr, cs.gateways) == (41, 1, -97.0, 6.5, 2)
    assert tts.dr == 0 and tts.event_id.startswith("as:up:")
    assert tts.firmware_version is None  # its version_ids are the device repository's, not the node's word
    with pytest.raises(MalformedUplink) as e:
        parse_event((SAMPLES / "chirpstack-up-bad-base64.json").read_text(), "chirpstack")
    assert e.value.reason == "bad_base64"
    for raw, reason in ((b"{not json", "not_json"), ("[1]", "bad_shape"), ('{"deviceInfo": {"devEui": "12"}}',
                                                                        "bad_dev_eui")):
        with pytest.raises(MalformedUplink) as e:
            parse_event(raw, "chirpstack")
        assert e.value.reason == reason


def test_uplinks_become_readings_and_health(registry):
    dev = enroll(registry)
    store = TelemetryStore(registry)
    t0 = datetime.now(timezone.utc) - timedelta(hours=6)
    r = _ingest(store, [waste_event(dev.dev_eui, 10, fill_bp=5000, at=t0)])
    r2 = _ingest(store, [waste_event(dev.dev_eui, 11, fill_bp=6000, at=t0 + timedelta(hours=2), fmt="tts",
                                     firmware_version="0.2.0")], fmt="tts")
    assert (r.stored, r.readings, r2.stored) == (1, 8, 1)
    h = store.health(AARHUS, dev.dev_eui)
    assert h["fill_bp"] == 6000 and h["battery_mv"] == 3900 and h["last_f_cnt"] == 11 and h["lost_uplinks"] == 0
    assert h["rssi"] == -101.0 and h["firmware_version"] is None  # only the node's own check-ins say it
    # full at: (10000 - 6000) / 150 bp/h = 26.7 h after the newest reading
    full_at = datetime.fromisoformat(h["full_at"])
    reading_at = datetime.fromisoformat(h["reading_at"])
    assert abs((full_at - reading_at) - timedelta(hours=4000 / 150)) < timedelta(seconds=1)
    d = registry.get_device(AARHUS, dev.dev_eui)
    assert d.state == "active" and d.firmware_version is None and d.last_seen is not None
    rows = store.readings(AARHUS, dev.dev_eui, limit=3)
    assert rows[0]["fill_bp"] == 6000 and rows[0]["at"] > rows[1]["at"]
    assert any(a.action == "device.seen" for a in registry.audit_log(AARHUS, dev_eui=dev.dev_eui))


def test_a_duplicate_delivery_is_stored_once(registry):
    dev = enroll(registry)
    store = TelemetryStore(registry)
    e = waste_event(dev.dev_eui, 5)
    assert _ingest(store, [e, e]).stored == 1            # twice in one batch
    again = _ingest(store, [e])                           # and again later
    assert (again.stored, again.duplicates) == (0, 1)
    no_id = dict(e, deduplicationId=None)                 # a route that dropped the event id: the same uplink
    assert _ingest(store, [no_id]).duplicates == 1
    later = waste_event(dev.dev_eui, 5, at=datetime.now(timezone.utc))  # the same FCnt later (after a rejoin)
    assert _ingest(store, [later]).stored == 1
    assert _count(registry, UplinkRow) == 2 and _count(registry, ReadingRow) == 16


def test_one_uplink_by_mqtt_and_by_os2iot_push_is_stored_once(registry):
    dev = enroll(registry)
    store = TelemetryStore(registry)
    e = waste_event(dev.dev_eui, 7)
    assert store.ingest([parse_event(json.dumps(e), "chirpstack")]).stored == 1   # ChirpStack's MQTT
    r = store.ingest([parse_event(json.dumps(e), "os2iot")])                     # OS2iot's HTTP push
    assert (r.stored, r.duplicates) == (0, 1)
    assert _count(registry, UplinkRow) == 1


def test_malformed_uplinks_are_rejected_and_the_rest_stored(registry):
    dev = enroll(registry)
    store = TelemetryStore(registry)
    good = waste_event(dev.dev_eui, 1)
    other_port = waste_event(dev.dev_eui, 2, f_port=201)       # FUOTA's: another application's, not malformed
    mac_only = dict(waste_event(dev.dev_eui, 5, f_port=0), data="")
    unknown = waste_event("70B3D5FFFE0000AA", 3)
    garbage = dict(waste_event(dev.dev_eui, 4), data="AQID")   # valid base64, not a frame
    r = _ingest(store, [other_port, good, unknown, garbage, mac_only])
    assert r.stored == 1
    assert sorted(x[0] for x in r.rejected) == ["bad_payload", "unknown_device"]
    assert dict(r.ignored) == {"other_fport": 1, "mac_only": 1}


def test_a_simulated_uplink_is_counted_never_stored_as_a_reading(registry):
    dev = enroll(registry)
    store = TelemetryStore(registry)
    e = waste_event(dev.dev_eui, 9, fmt="tts", fill_bp=9900, firmware_version="9.9.9")
    r = store.ingest([parse_event(json.dumps(dict(e, simulated=True)), "tts")])
    assert (r.stored, dict(r.ignored), r.alerts) == (0, {"simulated": 1}, [])
    assert _count(registry, UplinkRow) == 0 and _count(registry, ReadingRow) == 0
    r = store.ingest([parse_event(json.dumps(e), "tts")])      # the real one
    assert r.stored == 1
    # TTS's version_ids.firmware_version is a registration, not what the node runs
    assert registry.get_device(AARHUS, dev.dev_eui).firmware_version is None


def test_frame_counter_gaps_are_lost_uplinks(registry):
    dev = enroll(registry)
    store = TelemetryStore(registry)
    t0 = datetime.now(timezone.utc) - timedelta(hours=20)
    at = {n: t0 + timedelta(hours=n - 100) for n in range(100, 120)}
    _ingest(store, [waste_event(dev.dev_eui, n, at=at[n]) for n in (100, 101, 104)])
    assert store.health(AARHUS, dev.dev_eui)["lost_uplinks"] == 2
    _ingest(store, [waste_event(dev.dev_eui, 103, at=at[103])])   # late: fills a gap
    h = store.health(AARHUS, dev.dev_eui)
    assert h["lost_uplinks"] == 1 and h["last_f_cnt"] == 104
    _ingest(store, [waste_event(dev.dev_eui, 0, at=at[104] + timedelta(hours=1))])  # rejoin: counter restarts
    h = store.health(AARHUS, dev.dev_eui)
    assert h["lost_uplinks"] == 1 and h["last_f_cnt"] == 0


def test_alerts_open_notify_once_and_resolve(registry):
    hook = WebhookReceiver()
    notifier = WebhookNotifier(hook.url)
    try:
        dev = enroll(registry)
        store = TelemetryStore(registry, notifier=notifier)
        t0 = datetime.now(timezone.utc) - timedelta(hours=8)
        r = _ingest(store, [waste_event(dev.dev_eui, 1, fill_bp=8500, at=t0, tilt=True, fire=True,
                                        temp_cdeg=9000, batt_mv=3300)])
        assert sorted(a["kind"] for a in r.alerts) == ["battery", "fire", "full", "tilt"]
        bodies = hook.wait(4)
        assert sorted(b["alert"]["kind"] for b in bodies) == ["battery", "fire", "full", "tilt"]
        assert all(b["event"] == "alert.opened" and b["alert"]["dev_eui"] == dev.dev_eui for b in bodies)
        # still true: no new alert, nothing sent again
        r = _ingest(store, [waste_event(dev.dev_eui, 2, fill_bp=9000, at=t0 + timedelta(hours=1), tilt=True,
                                        fire=True, temp_cdeg=9000, batt_mv=3300)])
        assert r.alerts == [] and len(store.alerts(AARHUS)) == 4
        # emptied, upright, cool, new battery: all resolved
        r = _ingest(store, [waste_event(dev.dev_eui, 3, fill_bp=300, at=t0 + timedelta(hours=2))])
        assert r.resolved == 4 and store.alerts(AARHUS) == []
        assert len(store.alerts(AARHUS, include_resolved=True)) == 4
        # silent: nothing for 3 expected intervals (2 h each) -> one alert, the device is 'silent'
        opened = store.sweep(datetime.now(timezone.utc) + timedelta(hours=7))
        assert [a["kind"] for a in opened] == ["silent"]
        assert store.sweep(datetime.now(timezone.utc) + timedelta(hours=8)) == []
        assert registry.get_device(AARHUS, dev.dev_eui).state == "silent"
        # heard again: resolved, active
        r = _ingest(store, [waste_event(dev.dev_eui, 4, fill_bp=400, at=datetime.now(timezone.utc))])
        assert r.resolved == 1 and registry.get_device(AARHUS, dev.dev_eui).state == "active"
        assert len(hook.wait(5)) == 5
    finally:
        notifier.close()
        hook.close()


def test_many_lost_uplinks_raise_an_alert(registry):
    dev = enroll(registry)
    store = TelemetryStore(registry, rules=AlertRules(lost_min=5, lost_ratio=0.2))
    t0 = datetime.now(timezone.utc) - timedelta(hours=30)
    r = _ingest(store, [waste_event(dev.dev_eui, n, at=t0 + timedelta(hours=n)) for n in (1, 2, 9, 10)])
    assert [a["kind"] for a in r.alerts] == ["lost_uplinks"]


def test_a_kommune_sees_only_its_own_status_and_alerts(registry):
    aarhus, odense = enroll(registry, "751"), enroll(registry, "461", lat=55.3961, lon=10.3888)
    store = TelemetryStore(registry)
    _ingest(store, [waste_event(aarhus.dev_eui, 1, fill_bp=9000), waste_event(odense.dev_eui, 1, fill_bp=9500)])
    mine = fleet_status(registry, AARHUS)
    assert [k["kode"] for k in mine["kommuner"]] == ["0751"]
    assert [d["dev_eui"] for d in mine["full"]] == [aarhus.dev_eui]
    assert {a["dev_eui"] for a in store.alerts(AARHUS)} == {aarhus.dev_eui}
    assert {a["dev_eui"] for a in store.alerts(ADMIN)} == {aarhus.dev_eui, odense.dev_eui}
    with pytest.raises(AccessDenied):
        fleet_status(registry, AARHUS, kommune="461")
    # a kommune-scoped writer cannot write another kommune's device: it looks unknown
    r = store.ingest([parse_event(json.dumps(waste_event(odense.dev_eui, 2)), "chirpstack")], operator=AARHUS)
    assert r.stored == 0 and r.rejected[0][0] == "unknown_device"
    other = store.alerts(ODENSE)[0]
    with pytest.raises(Exception) as e:
        store.ack_alert(AARHUS, other["id"])
    assert type(e.value).__name__ == "NotFound"
    assert fleet_status(registry, ADMIN)["totals"]["full"] == 2



def test_the_status_shows_rollout_progress_to_the_rollouts_kommune(registry, tmp_path):
    from fleet.rollout import OtaStore
    from test_rollout import DIGEST, _repo, _report

    repo = _repo(tmp_path)
    ota = OtaStore(registry.db)
    devs = [f"70B3D57ED00000{i:02d}" for i in range(4)]
    for d in devs:
        ota.checkin(_report(d), repo)
    ro = ota.start(kommune="751", version="2.0.0", waves=[1000], halt_at=1000, repo_dir=repo, operator="anna")
    ota.checkin(_report(devs[0], release=DIGEST), repo)  # runs the new release
    want = [{"id": ro.id, "name": "2.0.0", "state": "running", "kommune_kode": "0751",
             "devices": {"confirmed": 1, "pending": 3}, "total": 4, "done_pct": 25.0}]
    assert fleet_status(registry, AARHUS)["rollouts"] == want
    assert fleet_status(registry, ADMIN)["rollouts"] == want
    assert fleet_status(registry, ODENSE)["rollouts"] == []


def test_stored_readings_are_the_decoded_frames(registry):
    """What the API serves is what the payload says: each reading once, at the uplink's time minus its age,
    a failed sensor's value absent and named in "faults" (env and waste frames)."""
    env, bin_ = enroll(registry, kind="env"), enroll(registry)
    store = TelemetryStore(registry)
    at = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
    air = [{"temp_cdeg": 1200 + 10 * i, "rh_permille": 600, "pressure_pa": 101300, "co2_ppm": 420 + 5 * i,
            "pm2_5_ugm3": 4, "pm10_ugm3": 9, "batt_mv": 3800, "faults": ["co2_ppm"] if i == 2 else []}
           for i in range(4)]
    readings = S.filling_bin(6000, n=3)
    readings[1]["faults"] = ["temp_cdeg", "flags"]
    events = [S.chirpstack_event(env.dev_eui, S.env_frame(air, interval_min=10, age_min=2), f_cnt=7, at=at),
              S.chirpstack_event(bin_.dev_eui, S.waste_frame(readings, fill_rate_bp_h=100), f_cnt=3, at=at)]
    r = _ingest(store, events + events)  # each delivered twice
    assert (r.stored, r.readings, r.duplicates) == (2, 7, 2)

    got = store.readings(AARHUS, env.dev_eui)
    assert [g["at"] for g in got] == [(at - timedelta(minutes=2 + 10 * k)).isoformat() for k in range(4)]
    oldest_first = got[::-1]
    assert [g.get("co2_ppm") for g in oldest_first] == [420, 425, None, 435]
    assert [g["faults"] for g in oldest_first] == [[], [], ["co2_ppm"], []]
    assert oldest_first[3]["temp_cdeg"] == 1230 and oldest_first[3]["kind"] == "env"

    got = store.readings(AARHUS, bin_.dev_eui)[::-1]
    assert [g["fill_bp"] for g in got] == [x["fill_bp"] for x in readings]
    assert got[1]["faults"] == ["temp_cdeg", "flags"] and "temp_cdeg" not in got[1] and "tilt" not in got[1]
    assert got[2]["tilt"] is False and got[2]["temp_cdeg"] == 1500
    h = store.health(AARHUS, bin_.dev_eui)
    assert h["fill_bp"] == 6000 and h["temp_cdeg"] == 1500 and h["tilt"] is False
    assert store.health(AARHUS, env.dev_eui)["battery_mv"] == 3800


def test_removing_a_device_removes_its_uplinks_and_readings(registry):
    gone, kept = enroll(registry), enroll(registry)
    store = TelemetryStore(registry)
    t0 = datetime.now(timezone.utc) - timedelta(hours=6)
    _ingest(store, [waste_event(d.dev_eui, n, at=t0 + timedelta(hours=n)) for d in (gone, kept) for n in (1, 2)])
    assert _count(registry, ReadingRow) == 32
    registry.remove_device(ADMIN, gone.dev_eui, note="enrolled by mistake")
    assert (_count(registry, UplinkRow), _count(registry, ReadingRow)) == (2, 16)
    assert len(store.readings(AARHUS, kept.dev_eui)) == 16
    # a device enrolled afterwards (it may get the removed one's id on SQLite) starts with no readings
    new = enroll(registry)
    assert store.readings(AARHUS, new.dev_eui) == []
    r = _ingest(store, [waste_event(new.dev_eui, 1)])
    assert (r.stored, len(store.readings(AARHUS, new.dev_eui))) == (1, 8)


def test_status_is_computed_for_the_moment_it_is_read(registry):
    """Fourteen days without a word is silent when the status is read, sweep or no sweep, and a forecast
    whose moment has passed is flagged overdue rather than shown as a forecast."""
    dev = enroll(registry)
    store = TelemetryStore(registry)
    t0 = datetime.now(timezone.utc) - timedelta(hours=1)
    _ingest(store, [waste_event(dev.dev_eui, n, fill_bp=5000 + 100 * n, at=t0 + timedelta(minutes=15 * n), rate=300)
                    for n in (1, 2, 3)])
    now = fleet_status(registry, AARHUS)
    assert now["kommuner"][0]["active"] == 1 and now["kommuner"][0]["silent"] == 0
    [soon] = now["filling_up"]
    assert soon["overdue"] is False and datetime.fromisoformat(soon["full_at"]) > datetime.now(timezone.utc)
    later = fleet_status(registry, AARHUS, now=datetime.now(timezone.utc) + timedelta(days=14))
    assert later["kommuner"][0]["active"] == 0 and later["kommuner"][0]["silent"] == 1
    assert later["totals"]["silent"] == 1 and [d["dev_eui"] for d in later["silent"]] == [dev.dev_eui]
    assert later["filling_up"][0]["overdue"] is True
    assert registry.get_device(AARHUS, dev.dev_eui).state == "active"  # reading the status changed nothing
    # the per-device rows (the API's /api/devices, the dashboard) say the same
    [row] = fleet_status(registry, AARHUS, with_devices=True)["devices"]
    assert (row["state"], row["overdue"]) == ("active", False) and "interval_s" not in row
    in_14_days = datetime.now(timezone.utc) + timedelta(days=14)
    [row] = fleet_status(registry, AARHUS, with_devices=True, now=in_14_days)["devices"]
    assert (row["state"], row["overdue"]) == ("silent", True)
