"""`fleet serve` as a fleet uses it: many devices checking in at once (every one answered, every one
recorded once, through the batching check-in writer), several server processes on one PostgreSQL registry
(no lost or duplicated state), and a graceful stop on SIGTERM."""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet.rollout import OtaStore, body_mac
from fleet.store.models import CheckinAuth, OtaDevice, RolloutDevice
from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server
from test_registry_support import admin_token, pg_schema  # noqa: F401 (fixture)
from test_rollout import DIGEST, _repo, _report

MANIFEST = f"manifests/{DIGEST}.json"


def _post(url, body, mac=None):
    req = urllib.request.Request(url + "/api/checkin" + (f"?mac={mac}" if mac else ""), body,
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _signed(key, seq):
    body = json.dumps(dict(_report(key.device), seq=seq)).encode()
    return body, body_mac(key.raw, body)


def test_200_devices_checking_in_at_once_are_all_answered_and_recorded_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    repo = _repo(tmp_path)
    db = f"sqlite:///{tmp_path / 'reg.sqlite'}"
    store = OtaStore.open(db)
    keys = [store.issue_checkin_key(f"70B3D57ED01{i:05d}") for i in range(200)]
    store.start(kommune="751", operator="bench", version="2.0.0", waves=[1000], halt_at=1000, repo_dir=repo)
    try:
        with Server(build_app(ServeContext(repo_dir=repo, db_url=db))) as srv:
            with ThreadPoolExecutor(200) as pool:
                answers = list(pool.map(lambda k: _post(srv.url, *_signed(k, 1)), keys))
                # the same check-ins again: replays, each refused and nothing recorded
                replays = list(pool.map(lambda k: _post(srv.url, *_signed(k, 1)), keys))
        assert [(st, a["take"]) for st, a in answers] == [(200, MANIFEST)] * 200
        assert {st for st, _ in replays} == {401}
        with store.db.read() as s:
            assert s.scalar(select(func.count()).select_from(OtaDevice)) == 200
            assert set(s.scalars(select(OtaDevice.checkins))) == {1}
            assert set(s.scalars(select(CheckinAuth.rejected))) == {1}
    finally:
        store.close()


# ---- several servers, one PostgreSQL --------------------------------------------------------------------



def _fleet_serve(db, repo, env):
    p = subprocess.Popen([sys.executable, "-c", "from fleet.cli import main; main()", "serve", "--port", "0",
                          "--db", db, "--repo", str(repo), "--accept-keyless"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = p.stdout.readline()
    m = re.search(r"serving on (http://\S+)", line)
    if not m:
        p.kill()
        pytest.fail(f"fleet serve did not start: {line!r}")
    return p, m.group(1)


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_lose_and_duplicate_nothing(tmp_path, pg_schema, monkeypatch):
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())  # the servers' too
    env = dict(os.environ)
    repo = _repo(tmp_path)
    store = OtaStore.open(pg_schema)
    keyed = [store.issue_checkin_key(f"70B3D57ED02{i:05d}") for i in range(40)]
    keyless = [f"70B3D57ED03{i:05d}" for i in range(10)]
    for dev in keyless:  # known from an earlier check-in: may check in without a key (--accept-keyless)
        store.checkin(_report(dev), repo)
    store.start(kommune="751", operator="bench", version="2.0.0", waves=[1000], halt_at=1000, repo_dir=repo)
    servers = [_fleet_serve(pg_schema, repo, env) for _ in range(2)]
    urls = [u for _, u in servers]
    try:
        def keyed_device(i):  # one device's check-ins in order, each to the other server
            return [_post(urls[(i + seq) % 2], *_signed(keyed[i], seq)) for seq in range(1, 6)]

        def keyless_one(n):  # keyless devices' check-ins at once, to both servers, in no order
            return _post(urls[n % 2], json.dumps(_report(keyless[n % len(keyless)])).encode())

        with ThreadPoolExecutor(60) as pool:
            fk = [pool.submit(keyed_device, i) for i in range(len(keyed))]
            fl = [pool.submit(keyless_one, n) for n in range(200)]
            answers = [a for f in fk for a in f.result()] + [f.result() for f in fl]
        assert [(st, a.get("take")) for st, a in answers] == [(200, MANIFEST)] * (5 * len(keyed) + 200), \
            [a for a in answers if a[0] != 200][:3]

        token = admin_token(pg_schema)
        stats = [json.loads(urllib.request.urlopen(urllib.request.Request(
            u + "/api/ota/checkins", headers={"Authorization": f"Bearer {token}"}), timeout=10).read()) for u in urls]
        assert sum(s["accepted"] for s in stats) == 5 * len(keyed)
        assert sum(s["accepted_keyless"] for s in stats) == 200
        assert all(s["accepted"] > 0 and s["accepted_keyless"] > 0 for s in stats)  # both servers wrote
        with store.db.read() as s:
            counts = dict(s.execute(select(OtaDevice.device, OtaDevice.checkins)).all())
            assert counts == {**{k.device: 5 for k in keyed}, **{d: 1 + 20 for d in keyless}}
            auth = {a.device: a for a in s.scalars(select(CheckinAuth))}
            assert {auth[k.device].last_seq for k in keyed} == {5}
            assert sum(auth[d].unauthenticated for d in keyless) == 200
            members = list(s.execute(select(RolloutDevice.device, RolloutDevice.position)))
            assert len(members) == len({d for d, _ in members}) == len(keyed) + len(keyless)
            assert len({p for _, p in members}) == len(members)  # nobody joined twice at one place

        # a graceful stop: SIGTERM, answers in flight finished, exit status 0
        for p, _ in servers:
            p.send_signal(signal.SIGTERM)
        assert [p.wait(30) for p, _ in servers] == [0, 0]
    finally:
        for p, _ in servers:
            if p.poll() is None:
                p.kill()
                p.wait()
        store.close()
