"""Diagnostics records on FPort 221 through ingest (ChirpStack events): kept per device and release (the
release the registry knows the device runs), a copy delivered twice counted once, a malformed one
rejected with its byte, never stored as readings; `fleet status` shows them per release, a device's
check-ins taking precedence over its uplinks."""

import struct
from datetime import datetime, timedelta, timezone

from fleet.rollout import OtaStore
from fleet.telemetry import TelemetryStore, fleet_status, parse_event
from lab import telemetry_samples as S
from telemetry_support import enroll
from test_registry_support import AARHUS, ADMIN, ODENSE, db_url, key, registry  # noqa: F401 (fixtures)
from test_rollout import _repo
from test_rollout_diagnostics import _diag, _report

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def _record(boots, wdt, heap=40000, exc=0, cause=3):
    return struct.pack(">BBHHHI", 1, cause, boots, wdt, heap // 16, exc)  # docs/formats/diagnostics.md


def _ingest(store, events, operator=ADMIN):
    return store.ingest([parse_event(e, "chirpstack") for e in events], operator=operator)


def test_diagnostics_uplinks_are_kept_per_release_not_as_readings(registry):
    dev = enroll(registry).dev_eui
    store = TelemetryStore(registry)
    ev = [S.chirpstack_event(dev, _record(1, 0, cause=1), f_cnt=1, f_port=221, at=T0),
          S.chirpstack_event(dev, _record(3, 1, heap=32000, exc=0xDEADBEEF), f_cnt=5, f_port=221,
                             at=T0 + timedelta(days=1))]
    r = _ingest(store, ev + ev[1:])  # the second record delivered twice
    assert r.ignored["diagnostics"] == 2 and r.duplicates == 1 and r.readings == 0 and not r.rejected
    st = fleet_status(registry, AARHUS)
    [rel] = st["releases"]
    assert (rel["devices"], rel["checkins"], rel["resets"], rel["watchdog_resets"]) == (1, 2, 2, 1)
    assert rel["heap_min"] == 32000 and rel["exceptions"] == {"deadbeef": 1}
    assert fleet_status(registry, ODENSE)["releases"] == []
    bad = _ingest(store, [S.chirpstack_event(dev, _record(1, 0)[:7], f_cnt=9, f_port=221, at=T0)])
    assert [x[0] for x in bad.rejected] == ["bad_payload"] and "(byte 7)" in bad.rejected[0][1]
    other = _ingest(store, [S.chirpstack_event(dev, _record(4, 1), f_cnt=10, f_port=221, at=T0)], operator=ODENSE)
    assert [x[0] for x in other.rejected] == ["unknown_device"]  # another kommune's token writes nothing
    assert fleet_status(registry, AARHUS)["releases"][0]["checkins"] == 2


def test_a_devices_check_ins_take_precedence_over_its_uplinks(registry, tmp_path):
    dev = enroll(registry).dev_eui
    ota = OtaStore(registry.db)
    repo = _repo(tmp_path)
    for k in (1, 2, 3):
        ota.checkin({**_report(dev, diag=_diag(k)), "version": "1.0.0"}, repo)  # version 1.0.0 per the registry
    store = TelemetryStore(registry)
    _ingest(store, [S.chirpstack_event(dev, _record(3, 0, cause=2), f_cnt=1, f_port=221, at=T0)])
    [rel] = fleet_status(registry, AARHUS)["releases"]
    assert (rel["version"], rel["checkins"], rel["resets"]) == ("1.0.0", 3, 2)  # the check-ins' row
