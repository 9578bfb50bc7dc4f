"""A node whose WiFi join failed says so in its uplinks (payload "net_status"); ingest keeps it with the
device's health and `fleet status` lists the node under "no network" until an uplink comes without it."""

import json
from datetime import datetime, timedelta, timezone

from fleet.telemetry import TelemetryStore, fleet_status, parse_event
from telemetry_support import enroll, waste_event
from test_registry_support import AARHUS, ODENSE, db_url, key, key_env, registry, run_cli  # noqa: F401


def _ingest(store, *events):
    return store.ingest([parse_event(json.dumps(e), "chirpstack") for e in events])


def test_no_network_is_listed_per_kommune_until_the_next_uplink_without_it(registry, db_url, key_env, capsys):
    school, street = enroll(registry, site="Skovvangskolen"), enroll(registry, site="Park Allé 1")
    odense = enroll(registry, "461", lat=55.3961, lon=10.3888)
    store = TelemetryStore(registry)
    t = datetime.now(timezone.utc) - timedelta(minutes=30)
    r = _ingest(store, waste_event(school.dev_eui, 1, at=t, net_status="WRONG_PASSWORD"),
                waste_event(street.dev_eui, 1, at=t), waste_event(odense.dev_eui, 1, at=t, net_status="NO_AP_FOUND"))
    assert r.stored == 3
    st = fleet_status(registry, AARHUS)
    assert [(d["dev_eui"], d["net_status"]) for d in st["no_network"]] == [(school.dev_eui, "WRONG_PASSWORD")]
    assert st["kommuner"][0]["no_network"] == 1 and st["totals"]["no_network"] == 1
    assert [d["net_status"] for d in fleet_status(registry, ODENSE)["no_network"]] == ["NO_AP_FOUND"]
    code, out, err = run_cli(["status", "--db", db_url, "--operator", "anna", "--kommune", "751"], capsys)
    assert code == 0, err
    assert "No network" in out and f"{school.dev_eui}  0751  Skovvangskolen  WiFi WRONG_PASSWORD" in out
    # an older uplink delivered late changes nothing; the next one without the status clears it
    _ingest(store, waste_event(school.dev_eui, 0, at=t - timedelta(minutes=15)))
    assert len(fleet_status(registry, AARHUS)["no_network"]) == 1
    _ingest(store, waste_event(school.dev_eui, 2, at=t + timedelta(minutes=15)))
    st = fleet_status(registry, AARHUS)
    assert st["no_network"] == [] and st["totals"]["no_network"] == 0
