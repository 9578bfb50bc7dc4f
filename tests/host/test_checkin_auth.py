"""Authenticated check-ins (docs/ota.md, "Check-in keys"): the device's HMAC-SHA256 (MicroPython, 64 KiB
heap) against Python's hmac; fleet serve answers 401 to a bad, missing or replayed MAC, counts it and
changes nothing; the migration mode for keyless boards; keys sealed at rest and never shown; provisioning
writes the key into the board's OTA config."""

import base64
import hashlib
import hmac
import json
import logging
import os
import random
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from fleet.errors import CheckinRejected, UsageError, WrongBoard
from fleet.rollout import CheckinKey, OtaStore, body_mac
from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server
from release_support import run_mp
from test_registry_support import admin_token

DIGEST = "ab" * 32
OLD = "cd" * 32


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())


def _repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "manifests").mkdir(parents=True)
    (repo / "channels" / "0751").mkdir(parents=True)
    body = {"_type": "bysans-release", "format": 1, "version": "2.0.0", "counter": 200, "boards": ["virtual"],
            "kommuner": ["0751"], "files": []}
    (repo / "manifests" / f"{DIGEST}.json").write_text(json.dumps(body) + "\n[]\n")
    (repo / "channels" / "0751" / "virtual.json").write_text(json.dumps(body) + "\n[]\n")
    return repo


def _report(dev, state="confirmed", release=OLD, target=None, reason=None, seq=None):
    r = {"device": dev, "kommune": "0751", "board": "virtual", "version": "1.0.0", "counter": 100,
         "release": release, "slot": "a", "state": state, "reason": reason, "detail": "", "target": target}
    if seq is not None:
        r["seq"] = seq
    return r


# ---- the device's HMAC ------------------------------------------------------------------------------------

MP_HMAC = """
import binascii
from bysans.ota import checkin
for line in open(sys.argv[1]):
    key, msg = [binascii.unhexlify(x) for x in line.strip().split(",")]
    print(binascii.hexlify(checkin.hmac_sha256(key, msg)).decode())
k = "0f" * 32
print(checkin.mac_hex(k, b'{"device":"X","seq":7}'))
try:
    checkin.mac_hex("zz" + k[2:], b"x")
except ValueError as e:
    print("refused:", e)
p = "/tmp/bysans-seq-%d" % __import__("time").ticks_us()
print(checkin.next_seq(p, 100), checkin.next_seq(p, 100), checkin.next_seq(p, 50), checkin.next_seq(p, 500))
import gc, os
os.remove(p)
gc.collect()
free = gc.mem_free()
checkin.hmac_sha256(bytes(32), bytes(600))
print("alloc", free - gc.mem_free())
"""


@pytest.mark.parametrize("bits", [64, 32])
def test_device_hmac_matches_python_hmac(tmp_path, bits, request):
    """On 32 bits too (objects as on an ESP32: docs/boards.md), where the allocation is measured."""
    interpreter = request.getfixturevalue("mp32") if bits == 32 else None
    rng = random.Random(2104)
    cases = []
    for klen in (0, 1, 16, 32, 63, 64, 65, 100):  # across SHA-256's 64-byte block (longer keys are hashed)
        for mlen in (0, 1, 55, 56, 63, 64, 65, 300):
            cases.append((rng.randbytes(klen), rng.randbytes(mlen)))
    f = tmp_path / "cases.txt"
    f.write_text("".join(f"{k.hex()},{m.hex()}\n" for k, m in cases))
    out = run_mp(MP_HMAC, str(f), heap="64K", interpreter=interpreter).splitlines()
    want = [hmac.new(k, m, hashlib.sha256).hexdigest() for k, m in cases]
    assert out[:len(cases)] == want
    mac, refused, seqs, alloc = out[len(cases):]
    assert mac == body_mac(bytes.fromhex("0f" * 32), b'{"device":"X","seq":7}')
    assert refused == "refused: checkin_key is not hex"  # and never the key itself
    assert seqs.split() == ["100", "101", "102", "500"]  # above the last, and at least the clock
    assert int(alloc.split()[1]) < 2048  # a few small blocks: nothing kept, nothing the size of the body


MP_CLIENT = """
sys.path.insert(0, sys.argv[2])  # the compiled modules, as a release installs them
import gc
import time
from bysans.ota import client, http, slots
root = "/tmp/bysans-mp-checkin-%d" % time.ticks_us()
slots.ensure_dir(root + "/ota")

class Board:
    name = "virtual"

    def epoch_s(self):
        return 1767225600

class Answer:
    status = 200

    def read_all(self, limit):
        return b'{"take": null, "now": 1767225600, "poll_s": 3600}'

    def close(self):
        pass

sent = []

def request(url, method, path, body=None, timeout_s=10, content_type="application/json"):
    sent.append((path, bytes(body)))
    return Answer()

http.request = request  # the client takes it from bysans.ota.http when it sends
cfg = {"server": "http://127.0.0.1:9", "device": "70B3D57ED0000060", "kommune": "0751", "checkin_key": sys.argv[1]}
c = client.Client(Board(), root=root + "/", config=cfg)
gc.collect()
print(c.report(), c.report())
print(gc.mem_free())
for path, body in sent:
    print(path)
    print(body.decode())
"""


@pytest.mark.parametrize("bits", [64, 32])
def test_the_device_client_signs_check_ins_that_the_server_accepts_in_a_64k_heap(tmp_path, bits, request):
    """The firmware's real Client._checkin (MicroPython, 64 KiB heap, 64 and 32 bits, the HTTP request faked)
    sends bodies and MACs that OtaStore.authenticate accepts, each once."""
    interpreter = request.getfixturevalue("mp32") if bits == 32 else None
    from fleet.boards import load
    from fleet.release import compile
    from fleet.resources import firmware_dir

    arch = load("virtual")["mpy_arch"]
    fw = firmware_dir()
    top = [fw / "bysans" / name for name in ("__init__.py", "version.py", "device_spec.py")]
    rels = [src.relative_to(fw).as_posix() for src in [*top, *(fw / "bysans" / "ota").glob("*.py")]]
    compile.compile_all([(fw / rel, rel, tmp_path / "mpy" / (rel[:-3] + ".mpy")) for rel in rels], arch)
    key = CheckinKey.new("70B3D57ED0000060")
    out = run_mp(MP_CLIENT, key.hex(), str(tmp_path / "mpy"), heap="64K", interpreter=interpreter).splitlines()
    assert out[0] == "None None"
    sent = [(out[i], out[i + 1].encode()) for i in range(2, len(out), 2)]
    assert len(sent) == 2 and all(p.startswith("/api/checkin?mac=") for p, _ in sent)
    assert json.loads(sent[0][1])["seq"] == 1767225600 and json.loads(sent[1][1])["seq"] == 1767225601
    store = OtaStore.open(f"sqlite:///{tmp_path / 'reg.sqlite'}")
    try:
        store.save_checkin_key(key)
        for path, body in sent:
            assert store.authenticate(body, path.split("mac=")[1])["device"] == "70B3D57ED0000060"
        with pytest.raises(CheckinRejected) as e:
            store.authenticate(sent[1][1], sent[1][0].split("mac=")[1])
        assert e.value.reason == "replay"
    finally:
        store.close()


# ---- the server -------------------------------------------------------------------------------------------

class Board:
    """What a device does (firmware/bysans/ota/client.py _checkin), in CPython."""

    def __init__(self, url, dev, key: CheckinKey | None, seq=0):
        self.url, self.dev, self.key, self.seq = url, dev, key, seq

    def body(self, **kw):
        self.seq += 1
        return json.dumps(_report(self.dev, seq=self.seq if self.key else None, **kw)).encode()

    def post(self, body, mac="auto"):
        if mac == "auto":
            mac = body_mac(self.key.raw, body) if self.key else None
        url = self.url + "/api/checkin" + (f"?mac={mac}" if mac else "")
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def checkin(self, **kw):
        return self.post(self.body(**kw))


def _get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


@pytest.fixture
def lab(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'reg.sqlite'}"
    repo = _repo(tmp_path)
    store = OtaStore.open(db_url)
    servers = []

    def serve(**options):
        srv = Server(build_app(ServeContext(repo_dir=repo, db_url=db_url, options=options))).start()
        servers.append(srv)
        return srv.url

    yield store, repo, serve, tmp_path / "reg.sqlite"
    for srv in servers:
        srv.stop()
    store.close()


def test_signed_check_ins_count_and_forged_ones_change_nothing(lab, caplog):
    store, repo, serve, db_file = lab
    url = serve()
    devs = [f"70B3D57ED00000{i:02d}" for i in range(4)]
    keys = {d: store.issue_checkin_key(d) for d in devs}
    boards = {d: Board(url, d, keys[d], seq=1_767_225_600) for d in devs}
    for d in devs:
        assert boards[d].checkin()[0] == 200
    status, ans = boards[devs[0]].checkin()
    assert status == 200 and ans["take"] == "channels/0751/virtual.json"
    ro = store.start(kommune="751", operator="anna", version="2.0.0", waves=[250, 1000], halt_at=0, repo_dir=repo,
                     seed="t")
    canary = next(d["device"] for d in ro.devices if d["wave"] == 1)
    b = boards[canary]
    before = (store.status(kommune="751").as_dict(), store.device(canary))

    caplog.set_level(logging.INFO, logger="fleet.serve")
    forged = b.body(state="rolled_back", target=DIGEST, reason="SELFTEST: forged")
    answers = {
        "missing": b.post(forged, mac=None),
        "bad": b.post(forged, mac=body_mac(os.urandom(32), forged)),
        "garbage": b.post(forged, mac="not-hex"),
        "other device's key": b.post(forged, mac=body_mac(keys[devs[0] if devs[0] != canary else devs[1]].raw,
                                                          forged)),
    }
    for what, (status, body) in answers.items():
        assert status == 401, what
        assert body["hint"], what
    assert "has no MAC" in answers["missing"][1]["error"]
    assert "not authentic" in answers["bad"][1]["error"]
    # nothing of the forged check-ins reached the rollout: a halt_at of 0 would have halted it
    after = (store.status(kommune="751").as_dict(), store.device(canary))
    assert after[0]["state"] == "running" and after[0]["counts"] == before[0]["counts"]
    assert after[1]["state"] == before[1]["state"] and after[1]["checkins"] == before[1]["checkins"]
    assert after[1]["checkin_auth"]["rejected"] == 4
    assert after[1]["checkin_auth"]["rejected_reason"] == "bad_mac"
    assert store.status(kommune="751").checkins["rejected"] == 4

    # a recorded genuine check-in cannot be played again
    genuine = b.body(state="downloading", target=DIGEST)
    assert b.post(genuine)[0] == 200
    status, body = b.post(genuine)
    assert status == 401 and "repeats an old 'seq'" in body["error"]
    older = json.dumps(_report(canary, seq=5)).encode()  # a lower seq, properly signed (a captured old one)
    assert b.post(older, mac=body_mac(keys[canary].raw, older))[0] == 401
    assert store.status(kommune="751").counts["downloading"] == 1

    token = admin_token(f"sqlite:///{db_file}")
    with pytest.raises(urllib.error.HTTPError) as e:  # nobody without a token reads what devices did
        _get(url + f"/api/ota/devices/{canary}")
    assert e.value.code == 401
    stats = _get(url + "/api/ota/checkins", token)
    assert stats["rejected"]["missing_mac"] == 1 and stats["rejected"]["bad_mac"] == 3
    assert stats["rejected"]["replay"] == 2 and stats["accepted"] == 6 and stats["accept_keyless"] is False

    # keys never appear: not in answers, logs, status, the device API, reprs; sealed at rest
    texts = [json.dumps(answers), caplog.text, json.dumps(store.status(kommune="751").as_dict(), default=str),
             json.dumps(_get(url + f"/api/ota/devices/{canary}", token)), repr(keys[canary]), str(keys[canary])]
    wal = db_file.parent / (db_file.name + "-wal")
    raw_db = db_file.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    for k in keys.values():
        assert not any(k.hex() in t or k.hex().upper() in t for t in texts)
        assert k.raw not in raw_db and k.hex().encode() not in raw_db
    assert "check-in rejected (bad_mac) for device " + canary in caplog.text


def test_keyless_boards_are_refused_unless_the_server_migrates(lab):
    store, repo, serve, _db = lab
    old = "70B3D57ED0000010"  # provisioned before check-in keys: known, no key
    store.checkin(_report(old), repo)  # (recorded before the upgrade)
    strict = serve()
    status, body = Board(strict, old, None).checkin()
    assert status == 401 and "has no check-in key" in body["error"] and "--accept-keyless" in body["hint"]
    migrating = serve(accept_keyless=True)
    status, body = Board(migrating, old, None).checkin()
    assert status == 200 and body["take"] == "channels/0751/virtual.json"
    # never seen and keyless: refused even while migrating, and nothing is stored for it
    status, body = Board(migrating, "1122334455667788", None).checkin()
    assert status == 401 and "never been seen" in body["error"]
    assert store.device("1122334455667788") is None
    # a board with a key must sign, migration or not; a MAC for a device without a key is refused
    key = store.issue_checkin_key("70B3D57ED0000011")
    assert Board(migrating, "70B3D57ED0000011", None).checkin()[0] == 401
    assert Board(migrating, "70B3D57ED0000011", key).checkin()[0] == 200
    status, body = Board(migrating, "70B3D57ED0000012", CheckinKey.new("70B3D57ED0000012")).checkin()
    assert status == 401 and "holds no check-in key" in body["error"]
    ro = store.start(kommune="751", operator="anna", version="2.0.0", waves=[1000], halt_at=100, repo_dir=repo)
    assert ro.checkins["keyless"] == 1  # the old board: what is left to migrate
    assert _get(migrating + "/api/ota/checkins", admin_token(f"sqlite:///{_db}"))["accepted_keyless"] == 1
    assert store.device(old)["checkin_auth"]["unauthenticated"] == 1


def test_a_new_key_replaces_the_old_one_and_starts_seq_again(lab):
    store, repo, serve, _ = lab
    url = serve()
    dev = "70B3D57ED0000020"
    k1 = store.issue_checkin_key(dev)
    assert Board(url, dev, k1, seq=1000).checkin()[0] == 200
    k2 = store.issue_checkin_key(dev)
    assert Board(url, dev, k1, seq=2000).checkin()[0] == 401  # the old key stops working
    assert Board(url, dev, k2, seq=0).checkin()[0] == 200  # a reflashed board's seq starts low again
    assert store.has_checkin_key(dev) and not store.has_checkin_key("70B3D57ED0000021")


def test_library_rejections_are_named_errors(lab):
    store, _, _, _ = lab
    with pytest.raises(CheckinRejected) as e:
        store.authenticate(json.dumps(_report("70B3D57ED0000030")).encode(), None)
    assert (e.value.reason, e.value.exit_code, e.value.http_status) == ("no_key", 64, 401)
    with pytest.raises(UsageError):
        store.authenticate(b"{not json", None)
    with pytest.raises(UsageError):
        CheckinKey("X", b"short")


# ---- provisioning writes the key into the OTA config ------------------------------------------------------

class FakeSession:
    port = "/dev/fake"

    def __init__(self, files):
        self.files = files

    def eval(self, expr):
        from provisioning.session import BoardError

        path = expr.split("'")[1]
        if path not in self.files:
            raise BoardError("the board raised: OSError: [Errno 2] ENOENT")
        return self.files[path].decode()

    def write_file(self, path, data, progress=None):
        self.files[path] = bytes(data)

    def sha256(self, path):
        return hashlib.sha256(self.files[path]).digest()

    def exec(self, code):
        src, dst = code.split("rename(")[1].rstrip(")\n").split(", ")
        self.files[dst.strip("'")] = self.files.pop(src.strip("'"))
        return ""


def test_write_checkin_key_keeps_the_other_settings(tmp_path):
    from provisioning.ota import write_checkin_key

    cfg = {"server": "http://10.0.0.2:8080", "device": "70B3D57ED0000040", "kommune": "0751", "poll_s": 600}
    board = FakeSession({"/ota/config.json": json.dumps(cfg).encode()})
    key = CheckinKey.new("70B3D57ED0000040")
    assert write_checkin_key(board, key) == "70B3D57ED0000040"
    assert json.loads(board.files["/ota/config.json"]) == dict(cfg, checkin_key=key.hex())
    assert "/ota/config.json.tmp" not in board.files
    with pytest.raises(WrongBoard):
        write_checkin_key(board, key, device="70B3D57ED0000041")
    with pytest.raises(UsageError):  # the key of another device
        write_checkin_key(board, CheckinKey.new("70B3D57ED0000041"))
    with pytest.raises(UsageError) as e:
        write_checkin_key(FakeSession({}), key)
    assert "provision it for OTA first" in e.value.hint


def test_cli_checkin_key_writes_the_board_and_the_registry(tmp_path, monkeypatch):
    import provisioning.session

    from fleet.cli import cli

    cfg = {"server": "http://10.0.0.2:8080", "device": "70b3d57ed0000050", "kommune": "0751"}
    board = FakeSession({"/ota/config.json": json.dumps(cfg).encode()})

    class Opened:
        def __init__(self, port, **kw):
            board.port = port

        def __enter__(self):
            return board

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(provisioning.session, "Session", Opened)
    db_url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    r = CliRunner().invoke(cli, ["rollout", "checkin-key", "--port", "/dev/ttyX", "--db", db_url, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"device": "70B3D57ED0000050", "port": "/dev/ttyX", "checkin_key": "written"}
    written = json.loads(board.files["/ota/config.json"])["checkin_key"]
    assert written not in r.output
    store = OtaStore.open(db_url)
    try:
        body = json.dumps(_report("70B3D57ED0000050", seq=1)).encode()
        assert store.authenticate(body, body_mac(bytes.fromhex(written), body))["seq"] == 1
    finally:
        store.close()
    r = CliRunner().invoke(cli, ["rollout", "checkin-key", "--port", "/dev/ttyX", "--db", db_url,
                                 "--device", "70B3D57ED0000051"])
    assert isinstance(r.exception, WrongBoard)
