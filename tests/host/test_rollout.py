"""Rollouts and check-ins in the registry (fleet/rollout), the OTA routes of `fleet serve` (also over TLS
with a self-signed certificate), and the `fleet rollout` CLI's errors."""

import base64
import datetime
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from fleet.errors import ReleaseNotPublished, RolloutConflict, RolloutError, UsageError
from fleet.rollout import OtaStore, body_mac, parse_percent, parse_waves
from fleet.rollout import waves as W
from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server
from test_registry_support import admin_token
from tlscert import self_signed as _cert

DIGEST = "ab" * 32
OLD = "cd" * 32


def _repo(tmp_path, version="2.0.0", digest=DIGEST, counter=200):
    repo = tmp_path / "repo"
    (repo / "manifests").mkdir(parents=True, exist_ok=True)
    (repo / "channels" / "0751").mkdir(parents=True, exist_ok=True)
    body = {"_type": "bysans-release", "format": 1, "version": version, "counter": counter,
            "boards": ["virtual"], "kommuner": ["0751"], "files": []}
    (repo / "manifests" / f"{digest}.json").write_text(json.dumps(body) + "\n[]\n")
    (repo / "channels" / "0751" / "virtual.json").write_text(json.dumps(body) + "\n[]\n")
    return repo


def _report(dev, state="confirmed", release=OLD, target=None, reason=None):
    return {"device": dev, "kommune": "0751", "board": "virtual", "version": "1.0.0", "counter": 100,
            "release": release, "slot": "a", "state": state, "reason": reason, "detail": "", "target": target}


@pytest.fixture
def store(tmp_path):
    s = OtaStore.open(f"sqlite:///{tmp_path / 'reg.sqlite'}")
    yield s
    s.close()


def test_wave_parsing_and_assignment():
    assert parse_waves("5%,25%,100%") == [50, 250, 1000]
    assert parse_percent("2.5%") == 25
    for bad in ("25%,5%,100%", "5%,50%", "", "x", "5%,150%"):
        with pytest.raises(UsageError):
            parse_waves(bad)
    devs = [f"D{i:03d}" for i in range(100)]
    a = dict(W.assign("0751", devs, [50, 250, 1000], seed="s1"))
    assert [sum(1 for w in a.values() if w == i) for i in range(3)] == [5, 20, 75]
    assert W.assign("0751", devs[:3], [50, 1000], seed="s1")[0][1] == 0  # a first wave has at least one device
    assert W.order("0751", devs, seed="s1") == W.order("0751", list(reversed(devs)), seed="s1")  # stable


def test_each_rollout_has_its_own_device_order(store, tmp_path):
    """The canaries are not always the same devices: each rollout's seed orders them (shown in status); one
    rollout's order is fixed, and the same seed gives the same order."""
    orders = {seed: W.order("0751", [f"D{i:03d}" for i in range(50)], seed=seed)[:5] for seed in ("a", "b", "c")}
    assert len({tuple(o) for o in orders.values()}) == 3
    repo = _repo(tmp_path)
    devs = [f"70B3D57ED00000{i:02d}" for i in range(20)]
    for d in devs:
        store.checkin(_report(d), repo)
    first = store.start(kommune="751", operator="anna", version="2.0.0", waves=[100, 1000], halt_at=1000,
                        repo_dir=repo)
    assert first.seed and store.status(kommune="751").seed == first.seed
    order1 = [d["device"] for d in first.devices]
    assert order1 == W.order("0751", devs, seed=first.seed)  # status lists the devices in rollout order
    assert [d["position"] for d in first.devices] == list(range(1, 21))
    store.abort(kommune="751", operator="anna")
    second = store.start(kommune="751", operator="anna", version="2.0.0", waves=[100, 1000], halt_at=1000,
                         repo_dir=repo)
    assert second.seed != first.seed
    assert [d["device"] for d in second.devices] != order1
    store.abort(kommune="751", operator="anna")
    third = store.start(kommune="751", operator="anna", version="2.0.0", waves=[100, 1000], halt_at=1000, repo_dir=repo,
                        seed=first.seed)
    assert [d["device"] for d in third.devices] == order1 and third.as_dict()["seed"] == first.seed
    with pytest.raises(UsageError):
        store.start(kommune="751", operator="anna", version="2.0.0", waves=[1000], halt_at=100, repo_dir=repo,
                    seed="no spaces")


def test_step_opens_waves_completes_and_halts():
    assert W.step("running", 0, 3, 100, [(0, "confirmed"), (1, "pending")]) == ("running", 1)
    assert W.step("running", 0, 2, 100, [(0, "confirmed"), (1, "confirmed")]) == ("completed", 1)
    assert W.step("running", 0, 3, 100, [(0, "rolled_back"), (0, "confirmed"), (1, "pending")]) == ("halted", 0)
    assert W.step("running", 0, 3, 500, [(0, "failed"), (0, "confirmed"), (1, "pending")]) == ("running", 1)
    assert W.step("paused", 0, 3, 100, [(0, "confirmed")]) == ("paused", 0)


def test_rollout_through_check_ins(store, tmp_path):
    repo = _repo(tmp_path)
    devs = [f"70B3D57ED00000{i:02d}" for i in range(10)]
    for d in devs:  # before any rollout a device is given its channel
        assert store.checkin(_report(d), repo)["take"] == "channels/0751/virtual.json"
    ro = store.start(kommune="751", operator="anna", version="2.0.0", waves=[200, 1000], halt_at=50, repo_dir=repo)
    assert ro.state == "running" and ro.counts["pending"] == 10
    wave = {d["device"]: d["wave"] for d in ro.devices}
    first = [d for d in devs if wave[d] == 1]
    later = [d for d in devs if wave[d] == 2]
    assert len(first) == 2
    assert store.checkin(_report(later[0]), repo)["take"] is None  # hold: its wave is not open
    assert store.checkin(_report(first[0]), repo)["take"] == f"manifests/{DIGEST}.json"
    store.checkin(_report(first[0], "downloading", target=DIGEST), repo)
    assert store.status(kommune="751").counts["downloading"] == 1
    store.checkin(_report(first[0], "confirmed", release=DIGEST), repo)
    store.checkin(_report(first[1], "confirmed", release=DIGEST), repo)
    assert store.status(kommune="751").wave == 1  # the next wave opened by itself
    assert store.checkin(_report(later[0]), repo)["take"] == f"manifests/{DIGEST}.json"
    store.checkin(_report(later[0], "rolled_back", target=DIGEST, reason="SELFTEST: x"), repo)
    st = store.status(kommune="751")
    assert st.state == "halted" and st.counts["rolled_back"] == 1 and "threshold 5%" in st.note
    assert store.checkin(_report(later[1]), repo)["take"] is None  # halted: nobody else is told to update
    with pytest.raises(RolloutConflict):
        store.start(kommune="751", operator="anna", version="2.0.0", waves=[1000], halt_at=100, repo_dir=repo)
    assert store.resume(kommune="751", operator="anna").state == "running"  # the failure so far is forgiven
    assert store.pause(kommune="751", operator="anna").state == "paused"
    with pytest.raises(RolloutError):
        store.pause(kommune="751", operator="anna")
    assert store.abort(kommune="751", operator="anna", note="replaced").state == "aborted"
    assert store.checkin(_report(later[1]), repo)["take"] is None
    d = store.device(later[0])
    assert (d["state"], d["reason"]) == ("rolled_back", "SELFTEST: x")


class FakeClock:
    def __init__(self):
        self.t = datetime.datetime(2026, 11, 2, 8, 0, tzinfo=datetime.timezone.utc)

    def __call__(self):
        return self.t

    def advance(self, **kw):
        self.t += datetime.timedelta(**kw)


def test_silent_devices_do_not_stall_a_wave(tmp_path):
    """--wave-timeout: a device of an open wave not heard from for that long is "silent"; it no longer holds
    the next wave back. Silent without having started does not count against the halt threshold; silent
    after it reported downloading or installing does (the release may have cut it off)."""
    clock = FakeClock()
    store = OtaStore.open(f"sqlite:///{tmp_path / 'reg.sqlite'}", clock=clock)
    repo = _repo(tmp_path)
    devs = [f"70B3D57ED00000{i:02d}" for i in range(10)]
    for d in devs:
        store.checkin(_report(d), repo)
    ro = store.start(kommune="751", operator="anna", version="2.0.0", waves=[200, 1000], halt_at=50, repo_dir=repo,
                     wave_timeout_s=86400)
    assert ro.as_dict()["wave_timeout"] == "24h"
    first = [d["device"] for d in ro.devices if d["wave"] == 1]
    later = [d["device"] for d in ro.devices if d["wave"] == 2]
    on, off = first
    clock.advance(hours=1)
    store.checkin(_report(on, "confirmed", release=DIGEST), repo)
    clock.advance(hours=22)
    st = store.status(kommune="751")
    assert (st.wave, st.counts["silent"], st.counts["pending"]) == (0, 0, 9)  # not yet: 23 h
    clock.advance(hours=1, seconds=1)
    st = store.status(kommune="751")
    by_dev = {d["device"]: d for d in st.devices}
    assert (by_dev[off]["state"], by_dev[off]["reason"]) == ("silent", "was pending")
    assert st.state == "running" and st.wave == 1  # the next wave opened; silence before starting is no failure
    assert st.counts["silent"] == 1
    # the silent canary comes back: it is told to take the release, and counts as pending again
    assert store.checkin(_report(off), repo)["take"] == f"manifests/{DIGEST}.json"
    assert store.device(off)["state"] == "confirmed" and store.status(kommune="751").counts["silent"] == 0
    store.checkin(_report(off, "confirmed", release=DIGEST), repo)
    # in the open last wave, one device starts downloading and is not heard from again
    store.checkin(_report(later[0], "downloading", target=DIGEST), repo)
    for d in later[1:]:
        clock.advance(minutes=10)
        store.checkin(_report(d, "confirmed", release=DIGEST), repo)
    clock.advance(hours=22)  # 23 h 10 min since it was last heard
    assert store.status(kommune="751").state == "running"
    clock.advance(hours=1)
    st = store.status(kommune="751")
    assert st.state == "halted", st.note
    assert "1 of 10 devices failed" in st.note and "1 of them went silent" in st.note
    assert {d["device"]: d["reason"] for d in st.devices}[later[0]] == "was downloading"
    assert store.resume(kommune="751", operator="anna").state == "completed"  # forgiven: every device is done or silent
    store.close()


def test_a_wave_timeout_counts_from_the_resume(tmp_path):
    clock = FakeClock()
    store = OtaStore.open(f"sqlite:///{tmp_path / 'reg.sqlite'}", clock=clock)
    repo = _repo(tmp_path)
    for i in range(4):
        store.checkin(_report(f"D{i}"), repo)
    store.start(kommune="751", operator="anna", version="2.0.0", waves=[1000], halt_at=1000, repo_dir=repo,
                wave_timeout_s=3600)
    store.pause(kommune="751", operator="anna")
    clock.advance(hours=5)
    assert store.status(kommune="751").counts["silent"] == 0  # paused: nobody was told to update
    store.resume(kommune="751", operator="anna")
    clock.advance(minutes=59)
    assert store.status(kommune="751").counts["pending"] == 4
    clock.advance(minutes=1)
    st = store.status(kommune="751")
    assert st.counts["silent"] == 4 and st.state == "completed"
    store.close()


def test_rollout_errors(store, tmp_path):
    repo = _repo(tmp_path)
    with pytest.raises(ReleaseNotPublished):
        store.start(kommune="751", operator="anna", version="9.9.9", waves=[1000], halt_at=100, repo_dir=repo)
    with pytest.raises(UsageError):
        store.checkin({"device": "x y"}, repo)
    with pytest.raises(UsageError):
        store.checkin(dict(_report("D1"), state="dancing"), repo)


def test_migration_branches_from_0001(store):
    from sqlalchemy import inspect

    names = set(inspect(store.engine).get_table_names())
    assert {"ota_devices", "rollouts", "rollout_devices", "devices"} <= names
    import importlib

    m = importlib.import_module("fleet.store.migrations.versions.0002_rollouts")
    assert (m.revision, m.down_revision) == ("0002_rollouts", "0001")
    m = importlib.import_module("fleet.store.migrations.versions.0004_checkin_auth")
    assert (m.revision, m.down_revision) == ("0004_checkin_auth", "0002_rollouts")
    assert "ota_checkin_auth" in names
    cols = {c["name"] for c in inspect(store.engine).get_columns("rollouts")}
    assert {"seed", "wave_timeout_s", "wave_opened_at"} <= cols


def test_serve_repository_and_check_in_over_tls(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    repo = _repo(tmp_path)
    cert, key = _cert(tmp_path)
    ctx = ServeContext(repo_dir=repo, db_url=f"sqlite:///{tmp_path / 'reg.sqlite'}")
    s = OtaStore.open(ctx.db_url)
    ckey = s.issue_checkin_key("70B3D57ED0000001")
    s.close()
    tls = ssl.create_default_context(cafile=str(cert))
    with Server(build_app(ctx), certfile=str(cert), keyfile=str(key)) as srv:
        assert srv.url.startswith("https://")
        with urllib.request.urlopen(srv.url + f"/repo/manifests/{DIGEST}.json", context=tls) as r:
            assert r.read().startswith(b'{"_type"')
        body = json.dumps(dict(_report("70B3D57ED0000001"), seq=1)).encode()
        req = urllib.request.Request(srv.url + "/api/checkin?mac=" + body_mac(ckey.raw, body), body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=tls) as r:
            ans = json.loads(r.read())
        assert ans["take"] == "channels/0751/virtual.json" and isinstance(ans["now"], int)
        token = admin_token(ctx.db_url)
        req = urllib.request.Request(srv.url + "/api/ota/devices/70B3D57ED0000001",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=tls) as r:
            assert json.loads(r.read())["state"] == "confirmed"
        for bad in ("/repo/../reg.sqlite", "/repo/manifests/%2e%2e/x", "/repo/.hidden"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(srv.url + bad, context=tls)
            assert e.value.code in (400, 404)
        bad = urllib.request.Request(srv.url + "/api/checkin", b"{not json", {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, context=tls)
        assert e.value.code == 400


def test_the_servers_routes_share_one_database(tmp_path, monkeypatch):
    """fleet serve's OTA routes and its telemetry routes use one engine, not one each."""
    from fleet.serve.routes import _telemetry
    from fleet.serve.routes import ota as ota_routes

    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    ctx = ServeContext(db_url=f"sqlite:///{tmp_path / 'reg.sqlite'}")
    db = ctx.database()
    try:
        assert ota_routes._store(ctx).db is db and _telemetry.registry(ctx).db is db
        assert _telemetry.store(ctx).db is db and ctx.database() is db
    finally:
        db.close()


def _fleet(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def test_cli_start_status_and_exit_codes(tmp_path):
    repo = _repo(tmp_path)
    db = ["--db", f"sqlite:///{tmp_path / 'cli.sqlite'}"]
    p = _fleet("rollout", "status", "--kommune", "751", *db)
    assert p.returncode == 61 and "hint:" in p.stderr
    assert p.stderr.startswith("error: no rollout for kommune 0751\n"), p.stderr  # once 'no a rollout'
    p = _fleet("rollout", "start", "--release", "9.9", "--kommune", "751", "--repo", repo, *db)
    assert p.returncode == 63
    p = _fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--waves", "50%,10%", "--repo", repo, *db)
    assert p.returncode == 2
    s = OtaStore.open(db[1])
    s.checkin(_report("70B3D57ED0000001"), repo)
    s.close()
    p = _fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--repo", repo, "--wave-timeout",
               "soon", *db)
    assert p.returncode == 2 and "duration" in p.stderr
    p = _fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--repo", repo, "--json",
               "--wave-timeout", "24h", "--seed", "cli-1", *db)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["waves"] == ["5%", "25%", "100%"]
    assert (out["wave_timeout"], out["wave_timeout_s"], out["seed"]) == ("24h", 86400, "cli-1")
    assert out["counts"]["silent"] == 0
    p = _fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--repo", repo, *db)
    assert p.returncode == 62
    p = _fleet("rollout", "pause", "--kommune", "751", *db)
    assert p.returncode == 0 and "paused" in p.stdout
    p = _fleet("rollout", "status", "--all", *db)
    assert p.returncode == 0 and "rollout 1" in p.stdout
    p = _fleet("rollout", "status", "--kommune", "751", "--devices", *db)
    assert p.returncode == 0 and "seed cli-1" in p.stdout and "after 24h" in p.stdout
    assert "1. 70B3D57ED0000001  wave 1  pending" in p.stdout, p.stdout
