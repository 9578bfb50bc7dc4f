"""Diagnostics per release in the store (fleet/rollout/diagnostics.py), on SQLite and PostgreSQL: check-ins
carry the node's counters, the store keeps differences per device and release, and a rollout halts when the
new release's resets or watchdog resets per check-in rise above those of the devices still on the old
release, beyond the halt threshold, after the soak; not when the old release resets as often."""

import pytest

from fleet.errors import UsageError
from fleet.rollout import OtaStore
from fleet.rollout.diagnostics import differences, per_release
from test_registry_support import db_url  # noqa: F401 (fixture)
from test_rollout import DIGEST, OLD, _repo

DEVS = [f"70B3D57ED00007{i:02d}" for i in range(4)]


def _diag(boots, wdt=0, heap=60000, exc=None, cause="power_on"):
    return {"v": 1, "reset_cause": cause, "boots": boots, "watchdog_resets": wdt, "heap_min": heap, "exception": exc}


def _report(dev, *, new=False, diag=None, state="confirmed"):
    return {"device": dev, "kommune": "0751", "board": "virtual", "version": "2.0.0" if new else "1.0.0",
            "counter": 200 if new else 100, "release": DIGEST if new else OLD, "slot": "b" if new else "a",
            "state": state, "reason": None, "detail": "", "target": DIGEST if new else None, "diag": diag}


@pytest.fixture
def store(db_url):  # noqa: F811
    s = OtaStore.open(db_url)
    yield s
    s.close()


def test_differences_between_check_ins():
    assert differences(None, None, 5, 2) == (0, 0)  # nothing before the first check-in
    assert differences(3, 1, 5, 2) == (2, 1)
    assert differences(9, 4, 1, 0) == (0, 0)  # a power loss: the counters start again, the power-on is no reset
    assert differences(9, 4, 3, 1) == (2, 1)  # ... and what came after it counts


def test_check_ins_keep_diagnostics_per_device_and_release(store, tmp_path):
    repo = _repo(tmp_path)
    d = DEVS[0]
    store.checkin(_report(d, diag=_diag(1)), repo)
    store.checkin(_report(d, diag=_diag(3, 1, heap=41000, exc="a1b2c3d4", cause="watchdog")), repo)
    store.checkin(_report(d, new=True, diag=_diag(4, 2, heap=52000, cause="watchdog")), repo)
    store.checkin(_report(d, new=True, diag=_diag(1)), repo)  # power lost: not a reset
    dev = store.device(d)
    assert (dev["version"], dev["diag"]["boots"], dev["diag"]["watchdog_resets"]) == ("2.0.0", 1, 0)
    with store.db.read() as s:
        rows = {(r["version"], r["board"]): r for r in per_release(s)}
    old, new = rows["1.0.0", "virtual"], rows["2.0.0", "virtual"]
    assert (old["checkins"], old["resets"], old["watchdog_resets"], old["heap_min"]) == (2, 2, 1, 41000)
    assert old["exceptions"] == {"a1b2c3d4": 1}
    assert (new["checkins"], new["resets"], new["watchdog_resets"], new["heap_min"]) == (2, 1, 1, 52000)
    assert new["watchdog_per_checkin"] == 0.5


@pytest.mark.parametrize("bad", [{"v": 2}, {"v": 1, "boots": -1, "watchdog_resets": 0},
                                 {"v": 1, "boots": 1, "watchdog_resets": 0, "exception": "XYZ"}, "x"])
def test_a_malformed_diag_is_refused_and_changes_nothing(store, tmp_path, bad):
    repo = _repo(tmp_path)
    with pytest.raises(UsageError, match="diag"):
        store.checkin(_report(DEVS[0], diag=bad), repo)
    assert store.device(DEVS[0]) is None


def _rollout(store, repo, soak=2):
    for d in DEVS:
        store.checkin(_report(d, diag=_diag(1)), repo)
    view = store.start(kommune="751", operator="anna", version="2.0.0", waves=[250, 1000], halt_at=100,
                       repo_dir=repo, seed="diag", soak=soak)
    canary = [x["device"] for x in view.devices if x["wave"] == 1]
    assert len(canary) == 1
    return canary[0], [d for d in DEVS if d != canary[0]]


def _round(store, repo, canary, others, canary_diag, other_diag):
    store.checkin(_report(canary, new=True, diag=canary_diag), repo)
    for d in others:
        store.checkin(_report(d, diag=other_diag), repo)


def test_a_release_that_resets_by_watchdog_halts_its_wave_after_the_soak(store, tmp_path):
    repo = _repo(tmp_path)
    canary, others = _rollout(store, repo)
    _round(store, repo, canary, others, _diag(1), _diag(1))  # confirmed (the update's own reset is not counted)
    st = store.status(kommune="751")
    assert st.state == "running" and st.wave == 0  # confirmed, but soaking: the next wave waits
    _round(store, repo, canary, others, _diag(2, 1, cause="watchdog"), _diag(1))
    assert store.status(kommune="751").state == "running"  # one check-in of two: still soaking
    _round(store, repo, canary, others, _diag(3, 2, cause="watchdog"), _diag(1))
    st = store.status(kommune="751")
    assert st.state == "halted" and st.wave == 0, st.note
    assert "watchdog resets per check-in rose to 1.00" in st.note and "against 0.00" in st.note
    assert st.diagnostics["new"] == {"devices": 1, "checkins": 2, "resets": 2, "watchdog_resets": 2}
    assert st.diagnostics["old"]["devices"] == 3 and st.diagnostics["old"]["watchdog_resets"] == 0
    by = {x["device"]: x for x in st.devices}
    assert by[canary]["state"] == "confirmed" and by[canary]["watchdog_resets"] == 2
    assert all(by[d]["state"] == "pending" for d in others)  # the next wave never opened
    # the admin resumes: only new check-ins count; a healthy soak then opens the next wave
    store.resume(kommune="751", operator="anna", note="fixed the sensor cable")
    _round(store, repo, canary, others, _diag(3, 2), _diag(1))
    _round(store, repo, canary, others, _diag(3, 2), _diag(1))
    st = store.status(kommune="751")
    assert st.state == "running" and st.wave == 1


def test_a_healthy_release_opens_the_next_wave_after_the_soak(store, tmp_path):
    repo = _repo(tmp_path)
    canary, others = _rollout(store, repo)
    for _ in range(2):
        _round(store, repo, canary, others, _diag(1), _diag(1))
    assert store.status(kommune="751").wave == 0
    _round(store, repo, canary, others, _diag(1), _diag(1))
    st = store.status(kommune="751")
    assert st.state == "running" and st.wave == 1, st.note


def test_resets_as_frequent_as_on_the_old_release_do_not_halt(store, tmp_path):
    """Comparable nodes: when the old release resets as often (a site with a flaky supply), the new one
    is not to blame."""
    repo = _repo(tmp_path)
    canary, others = _rollout(store, repo)
    _round(store, repo, canary, others, _diag(1), _diag(2, cause="hard"))
    for k in (2, 3):
        _round(store, repo, canary, others, _diag(k, cause="hard"), _diag(k + 1, cause="hard"))
    st = store.status(kommune="751")
    assert st.state == "running" and st.wave == 1, st.note
