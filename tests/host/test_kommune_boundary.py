"""A kommune's boundary holds: the registry alone decides which kommune a device belongs to, whatever a
board, a request or a file claims (issue: a board registered to København whose config said Aarhus joined
Aarhus' rollout and installed its release)."""

import base64
import os
import urllib.error

import pytest

from fleet.errors import CheckinForbidden, CheckinRejected
from fleet.registry import Operator, Registry
from fleet.rollout import OtaStore, body_mac
from fleet.telemetry import TelemetryStore
from telemetry_support import enroll
from test_checkin_auth import _repo, _report
from test_registry_support import ADMIN, AARHUS

import json

KBH = Operator("karen", kommune="101")


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    url = f"sqlite:///{tmp_path / 'reg.sqlite'}"
    reg = Registry.open(url)
    store = OtaStore(reg.db)
    yield reg, store, _repo(tmp_path)
    reg.close()


def _signed(store, key, dev, kommune, seq):
    body = json.dumps(dict(_report(dev, seq=seq), kommune=kommune)).encode()
    return body, body_mac(key.raw, body)


def test_a_board_claiming_another_kommune_is_refused_and_never_joins_its_rollout(world):
    reg, store, repo = world
    kbh = enroll(reg, "101", lat=55.68, lon=12.57).dev_eui           # København's device
    aarhus = enroll(reg, "751").dev_eui
    keys = {d: store.issue_checkin_key(d) for d in (kbh, aarhus)}
    store.authenticate(*_signed(store, keys[aarhus], aarhus, "0751", 1))
    ro = store.start(kommune="751", operator="anna", version="2.0.0", waves=[1000], halt_at=100, repo_dir=repo)
    assert [d["device"] for d in ro.devices] == [aarhus]

    with pytest.raises(CheckinForbidden) as e:  # the København board's config says Aarhus
        store.authenticate(*_signed(store, keys[kbh], kbh, "0751", 1))
    assert e.value.reason == "wrong_kommune" and e.value.http_status == 403 and e.value.hint
    assert isinstance(e.value, CheckinRejected)
    # nothing of it reached Aarhus: not in the rollout, not a device of Aarhus, counted as refused
    assert [d["device"] for d in store.status(kommune="751").devices] == [aarhus]
    d = store.device(kbh)
    assert d is None or d["kommune_kode"] != "0751"
    assert store.checkin_stats()["rejected"]["wrong_kommune"] == 1
    # København, who owns the device, gets a critical alert and an audit entry; Aarhus sees neither
    tele = TelemetryStore(reg)
    [alert] = tele.alerts(KBH)
    assert alert["kind"] == "wrong_kommune" and alert["severity"] == "critical" and alert["dev_eui"] == kbh
    assert "0751" in alert["message"]
    assert not [a for a in tele.alerts(AARHUS) if a["dev_eui"] == kbh]
    [entry] = [a for a in reg.audit_log(ADMIN, dev_eui=kbh, limit=10) if a.action == "checkin.refused"]
    assert entry.kommune_kode == "0101" and entry.changes == {"kommune": ["0101", "0751"]}
    # refused again, the same alert stays the one open alert
    with pytest.raises(CheckinForbidden):
        store.authenticate(*_signed(store, keys[kbh], kbh, "0751", 2))
    assert len(tele.alerts(KBH)) == 1
    # and with its own kommune it checks in as ever
    assert store.authenticate(*_signed(store, keys[kbh], kbh, "0101", 3))["device"] == kbh


def test_a_device_the_registry_does_not_hold_keeps_the_kommune_it_first_checked_in_for(world):
    reg, store, repo = world
    dev = "70B3D57ED0000777"
    key = store.issue_checkin_key(dev)
    report = store.authenticate(*_signed(store, key, dev, "0751", 1))
    store.checkin(report, repo)
    with pytest.raises(CheckinForbidden):
        store.authenticate(*_signed(store, key, dev, "0101", 2))
    assert store.device(dev)["kommune_kode"] == "0751"


def test_keyless_migration_mode_checks_the_kommune_too(world):
    reg, store, repo = world
    kbh = enroll(reg, "101", lat=55.68, lon=12.57).dev_eui
    body = json.dumps(dict(_report(kbh), kommune="0751")).encode()
    with pytest.raises(CheckinForbidden):
        store.authenticate(body, None, accept_keyless=True)
    body = json.dumps(dict(_report(kbh), kommune="0101")).encode()
    assert store.authenticate(body, None, accept_keyless=True)["device"] == kbh


def test_the_firmware_a_node_runs_is_what_its_check_in_says(world):
    reg, store, repo = world
    dev = enroll(reg, "751").dev_eui
    key = store.issue_checkin_key(dev)
    body = json.dumps(dict(_report(dev, seq=1), version="1.4.2")).encode()
    store.checkin(store.authenticate(body, body_mac(key.raw, body)), repo)
    assert reg.get_device(AARHUS, dev).firmware_version == "1.4.2"
    [e] = [a for a in reg.audit_log(ADMIN, dev_eui=dev, limit=10) if a.action == "device.firmware"]
    assert e.changes == {"firmware_version": [None, "1.4.2"]}


def test_rollout_times_carry_their_time_zone(world):
    reg, store, repo = world
    dev = enroll(reg, "751").dev_eui
    key = store.issue_checkin_key(dev)
    store.checkin(store.authenticate(*_signed(store, key, dev, "0751", 1)), repo)
    ro = store.start(kommune="751", operator="anna", version="2.0.0", waves=[1000], halt_at=100, repo_dir=repo)
    d = ro.as_dict()
    for t in (d["created_at"], d["updated_at"], store.device(dev)["last_seen"]):
        assert t.endswith("+00:00"), t
    json.dumps(d)  # and plain JSON: nothing left for a default= to guess at


def test_fleet_serve_answers_403_with_the_reason_and_each_kommune_sees_only_its_own(world, tmp_path):
    """The same refusal through fleet serve's check-in route, as a board meets it: 403 and why, counted for
    the server's operator; the owning kommune's token sees the alert, the claimed kommune's token nothing."""
    from fleet.registry.tokens import create_token
    from fleet.serve.app import ServeContext, build_app
    from fleet.serve.server import Server
    from test_checkin_auth import Board, _get

    reg, store, repo = world
    kbh = enroll(reg, "101", lat=55.68, lon=12.57).dev_eui
    key = store.issue_checkin_key(kbh)
    kbh_token, _ = create_token(reg, ADMIN, kommune="101")
    aarhus_token, _ = create_token(reg, ADMIN, kommune="751")
    with Server(build_app(ServeContext(repo_dir=repo, db_url=str(reg.engine.url)))) as srv:
        status, body = Board(srv.url, kbh, key, seq=10).checkin()  # its config says 0751
        assert status == 403 and body["reason"] == "wrong_kommune" and kbh in body["error"] and body["hint"]
        assert "take" not in body
        assert _get(srv.url + "/api/ota/checkins", kbh_token)["rejected"]["wrong_kommune"] == 1
        [alert] = _get(srv.url + "/api/alerts", kbh_token)["alerts"]
        assert alert["kind"] == "wrong_kommune" and alert["dev_eui"] == kbh
        assert _get(srv.url + "/api/alerts", aarhus_token)["alerts"] == []
        for token in (aarhus_token, kbh_token):  # Aarhus: not its device; København: it never checked in
            with pytest.raises(urllib.error.HTTPError) as e:
                _get(srv.url + f"/api/ota/devices/{kbh}", token)
            assert e.value.code == 404


def test_an_uplink_naming_another_kommune_counts_for_the_registrys(world):
    """Ingest takes a device's word too: its network server's event may name a tenant, an application or tags
    of another kommune (these samples say 'Aarhus Kommune'). The reading is the registry's device's, in its
    kommune: København's status and alerts show it, Aarhus' do not, by MQTT or by OS2iot's push."""
    from fleet.telemetry import fleet_status, parse_event
    from telemetry_support import waste_event

    reg, store, repo = world
    kbh = enroll(reg, "101", lat=55.68, lon=12.57).dev_eui
    tele = TelemetryStore(reg)
    for n, fmt in ((1, "chirpstack"), (2, "os2iot")):
        event = waste_event(kbh, n, fill_bp=9300, tags={"kommune": "0751"})
        assert event["deviceInfo"]["tenantName"] == "Aarhus Kommune"
        assert tele.ingest([parse_event(json.dumps(event), fmt)]).stored == 1
    mine, theirs = fleet_status(reg, KBH, with_devices=True), fleet_status(reg, AARHUS, with_devices=True)
    assert [d["dev_eui"] for d in mine["full"]] == [kbh] and mine["totals"]["active"] == 1
    assert kbh not in json.dumps(theirs) and theirs["totals"]["devices"] == 0
    assert [a["kind"] for a in tele.alerts(KBH)] == ["full"] and tele.alerts(AARHUS) == []
    assert reg.get_device(KBH, kbh).kommune_kode == "0101"
