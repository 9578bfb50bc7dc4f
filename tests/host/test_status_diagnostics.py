"""`fleet status` (and its --json, and the dashboard's API) shows diagnostics per release: resets and
watchdog resets per check-in, the lowest free heap and the exception hashes, each kommune only its own."""

import json

from fleet.cli.status import render
from fleet.rollout import OtaStore
from fleet.telemetry import fleet_status
from test_registry_support import ADMIN, AARHUS, ODENSE, db_url, key, registry  # noqa: F401 (fixtures)
from test_rollout import _repo
from test_rollout_diagnostics import _diag, _report


def test_status_shows_diagnostics_per_release_to_the_devices_kommune(registry, tmp_path, capsys):
    repo = _repo(tmp_path)
    ota = OtaStore(registry.db)
    old, new = "70B3D57ED0000801", "70B3D57ED0000802"
    for d in (_diag(1), _diag(1, heap=50000), _diag(1, heap=45000)):
        ota.checkin(_report(old, diag=d), repo)
    ota.checkin(_report(new, new=True, diag=_diag(1)), repo)
    ota.checkin(_report(new, new=True, diag=_diag(2, 1, heap=30000, exc="0badc0de", cause="watchdog")), repo)
    ota.checkin(_report(new, new=True, diag=_diag(3, 2, heap=31000, exc="0badc0de", cause="watchdog")), repo)
    st = fleet_status(registry, AARHUS)
    rel = {r["version"]: r for r in st["releases"]}
    assert rel["1.0.0"]["devices"] == 1 and rel["1.0.0"]["resets_per_checkin"] == 0.0
    assert rel["1.0.0"]["heap_min"] == 45000
    r2 = rel["2.0.0"]
    assert (r2["checkins"], r2["resets"], r2["watchdog_resets"], r2["heap_min"]) == (3, 2, 2, 30000)
    assert r2["watchdog_per_checkin"] == 0.667 and r2["exceptions"] == {"0badc0de": 1}
    assert json.loads(json.dumps(st))["releases"] == st["releases"]  # what --json prints
    assert fleet_status(registry, ADMIN)["releases"] == st["releases"]
    assert fleet_status(registry, ODENSE)["releases"] == []
    render(st)
    out = capsys.readouterr().out
    assert "Diagnostics per release" in out and "#0badc0de x1" in out and "0.67" in out
