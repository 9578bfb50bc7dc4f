"""Rollouts and check-ins in the registry (fleet/rollout), the OTA routes of `fleet serve` (also over TLS
with a self-signed certificate), and the `fleet rollout` CLI's errors."""

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleet.errors import ReleaseNotPublished, RolloutConflict, RolloutError, UsageError
from fleet.rollout import OtaStore, parse_percent, parse_waves
from fleet.rollout import waves as W
from fleet.serve.app import ServeContext, build_router
from fleet.serve.http import Server

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
    a = dict(W.assign("0751", devs, [50, 250, 1000]))
    assert [sum(1 for w in a.values() if w == i) for i in range(3)] == [5, 20, 75]
    assert W.assign("0751", devs[:3], [50, 1000])[0][1] == 0  # a first wave has at least one device
    assert W.order("0751", devs) == W.order("0751", list(reversed(devs)))  # stable


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
    ro = store.start(kommune="751", version="2.0.0", waves=[200, 1000], halt_at=50, repo_dir=repo)
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
        store.start(kommune="751", version="2.0.0", waves=[1000], halt_at=100, repo_dir=repo)
    assert store.resume(kommune="751").state == "running"  # the failure so far is forgiven
    assert store.pause(kommune="751").state == "paused"
    with pytest.raises(RolloutError):
        store.pause(kommune="751")
    assert store.abort(kommune="751", note="replaced").state == "aborted"
    assert store.checkin(_report(later[1]), repo)["take"] is None
    d = store.device(later[0])
    assert (d["state"], d["reason"]) == ("rolled_back", "SELFTEST: x")


def test_rollout_errors(store, tmp_path):
    repo = _repo(tmp_path)
    with pytest.raises(ReleaseNotPublished):
        store.start(kommune="751", version="9.9.9", waves=[1000], halt_at=100, repo_dir=repo)
    with pytest.raises(UsageError):
        store.checkin({"device": "x y"}, repo)
    with pytest.raises(UsageError):
        store.checkin(dict(_report("D1"), state="dancing"), repo)


def test_migration_branches_from_0001(store):
    from sqlalchemy import inspect

    names = set(inspect(store.engine).get_table_names())
    assert {"ota_devices", "rollouts", "rollout_devices", "devices"} <= names
    import importlib

    m = importlib.import_module("fleet.registry.migrations.versions.0002_rollouts")
    assert (m.revision, m.down_revision) == ("0002_rollouts", "0001")


def _cert(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return tmp_path / "c.pem", tmp_path / "k.pem"


def test_serve_repository_and_check_in_over_tls(tmp_path):
    repo = _repo(tmp_path)
    cert, key = _cert(tmp_path)
    ctx = ServeContext(repo_dir=repo, db_url=f"sqlite:///{tmp_path / 'reg.sqlite'}")
    tls = ssl.create_default_context(cafile=str(cert))
    with Server(build_router(ctx), certfile=str(cert), keyfile=str(key)) as srv:
        assert srv.url.startswith("https://")
        with urllib.request.urlopen(srv.url + f"/repo/manifests/{DIGEST}.json", context=tls) as r:
            assert r.read().startswith(b'{"_type"')
        req = urllib.request.Request(srv.url + "/api/checkin", json.dumps(_report("70B3D57ED0000001")).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=tls) as r:
            ans = json.loads(r.read())
        assert ans["take"] == "channels/0751/virtual.json" and isinstance(ans["now"], int)
        with urllib.request.urlopen(srv.url + "/api/ota/devices/70B3D57ED0000001", context=tls) as r:
            assert json.loads(r.read())["state"] == "confirmed"
        for bad in ("/repo/../reg.sqlite", "/repo/manifests/%2e%2e/x", "/repo/.hidden"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(srv.url + bad, context=tls)
            assert e.value.code in (400, 404)
        bad = urllib.request.Request(srv.url + "/api/checkin", b"{not json", {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, context=tls)
        assert e.value.code == 400


def _fleet(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def test_cli_start_status_and_exit_codes(tmp_path):
    repo = _repo(tmp_path)
    db = ["--db", f"sqlite:///{tmp_path / 'cli.sqlite'}"]
    p = _fleet("rollout", "status", "--kommune", "751", *db)
    assert p.returncode == 61 and "hint:" in p.stderr
    p = _fleet("rollout", "start", "--release", "9.9", "--kommune", "751", "--repo", repo, *db)
    assert p.returncode == 63
    p = _fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--waves", "50%,10%", "--repo", repo, *db)
    assert p.returncode == 2
    s = OtaStore.open(db[1])
    s.checkin(_report("70B3D57ED0000001"), repo)
    s.close()
    p = _fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--repo", repo, "--json", *db)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["waves"] == ["5%", "25%", "100%"]
    p = _fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--repo", repo, *db)
    assert p.returncode == 62
    p = _fleet("rollout", "pause", "--kommune", "751", *db)
    assert p.returncode == 0 and "paused" in p.stdout
    p = _fleet("rollout", "status", "--all", *db)
    assert p.returncode == 0 and "rollout 1" in p.stdout
