"""The device's whole release check, as the OTA client runs it, on a real release in a 64 KiB heap.

The real CLI (`fleet keys`, `fleet release build/sign`) makes a root chain of several steps (release keys
added and revoked, the root rotated twice) and a release of the whole app (firmware/: some 60 files). The
device side is the OTA code as that release ships it (.mpy for the virtual board's x64), in MicroPython
with the heap limited to 64 KiB: it walks the root chain, checks the signed manifest and every file, each
read from a file through one small buffer as the client reads them from flash. Broken variants are each
refused with their own reason, the same one `fleet release verify` gives.
"""

import json
import os
import shutil
import time

import pytest

from fleet.keys import KeyStore
from fleet.release import Reason
from release_support import flip as _flip, run_fleet as fleet, run_mp

PASS = "a long test passphrase"
HEAP = "64K"  # lowest passing on the 64-bit unix port when this was written: about 52 KiB


def _copy(src, dst, how=None):
    shutil.copytree(src, dst)
    if how:
        how(dst)
    return dst


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    d = tmp_path_factory.mktemp("heap")
    env = {**os.environ, "FLEET_KEYS_DIR": str(d / "keys"), "FLEET_KEY_PASSPHRASE": PASS,
           "FLEET_NEW_KEY_PASSPHRASE": PASS}
    fleet("keys", "init-root", env=env)
    key = {}
    for name, kommune in (("k751", "751"), ("kold", "751"), ("k101", "101")):
        key[name] = json.loads(fleet("keys", "add-release", "--kommune", kommune, "--json", env=env).stdout)["keyid"]
    fleet("release", "build", "--board", "virtual", "--version", "2.0.0", "--counter", 7, "-o", d / "good", env=env)
    for name in ("revoked", "k101"):
        shutil.copytree(d / "good", d / name)
    fleet("release", "sign", d / "good", "--kommune", "751", "--key", key["k751"], env=env)
    fleet("release", "sign", d / "revoked", "--kommune", "751", "--key", key["kold"], env=env)
    fleet("release", "sign", d / "k101", "--kommune", "101", env=env)
    fleet("keys", "revoke", key["kold"], env=env)
    fleet("keys", "rotate-root", env=env)
    fleet("keys", "add-release", "--kommune", "727", env=env)
    fleet("keys", "rotate-root", env=env)
    good = d / "good"
    files = sorted(p.relative_to(good / "files").as_posix() for p in (good / "files").rglob("*") if p.is_file())
    cases = {  # name: (release dir, installed counter, board, reason)
        "good": (good, None, "virtual", Reason.OK),
        "same_counter": (good, 7, "virtual", Reason.OK),
        "downgrade": (good, 8, "virtual", Reason.DOWNGRADE),
        "other_board": (good, None, "heltec_v3", Reason.WRONG_BOARD),
        "revoked_key": (d / "revoked", None, "virtual", Reason.REVOKED),
        "other_kommunes_key": (d / "k101", None, "virtual", Reason.NOT_DELEGATED),
        "bad_signature": (_copy(good, d / "badsig", lambda r: (r / "release.json").write_bytes(
            (r / "release.json").read_bytes().replace(b'"version":"2.0.0"', b'"version":"2.0.9"', 1))),
            None, "virtual", Reason.BAD_SIGNATURE),
        "garbage": (_copy(good, d / "garbage", lambda r: (r / "release.json").write_bytes(b"\x89PNG\r\n")),
                    None, "virtual", Reason.MALFORMED),
        "tampered_file": (_copy(good, d / "tampered", lambda r: _flip(r / "files" / files[len(files) // 2])),
                          None, "virtual", Reason.BAD_HASH),
        "longer_file": (_copy(good, d / "longer", lambda r: open(r / "files" / files[-1], "ab").write(b"#")),
                        None, "virtual", Reason.TOO_LONG),
        "shorter_file": (_copy(good, d / "shorter", lambda r: (r / "files" / files[0]).write_bytes(
            (r / "files" / files[0]).read_bytes()[:-1])), None, "virtual", Reason.TOO_SHORT),
    }
    store = KeyStore(env["FLEET_KEYS_DIR"])
    roots = [store.root_path(v) for v in store.root_versions()]
    assert roots == [d / "keys" / "root" / f"{v}.json" for v in range(1, len(roots) + 1)]
    return {"dir": d, "env": env, "files": files, "cases": cases, "roots": roots}


DEVICE = """
import gc
from bysans.ota import verify as ov

# argv (allocated first, in one piece, before anything else): the work directory, now, how many root
# versions, then one case a word: name:release directory:installed counter:board
top, now, roots = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = bytearray(256)  # every metadata file is read through this, as the client reads from flash


def check(rel, installed, board):
    rel = top + "/" + rel
    with open(rel + "/release.json", "rb") as f:
        doc, _ = ov.verify_release(f, root, board, "0751", now, installed)
    n = 0
    for e in doc["files"]:
        fc = ov.FileCheck(e)
        with open(rel + "/files/" + e["path"], "rb") as f:
            while True:
                k = f.readinto(buf, min(len(buf), fc.remaining + 1))
                if not k:
                    break
                fc.update(memoryview(buf)[:k])
        fc.finish()
        n += 1
    return n


root = None
try:
    for v in range(1, roots + 1):  # one version at a time; only a Root is kept of each
        gc.collect()
        with open(top + "/keys/root/%d.json" % v, "rb") as f:
            root = ov.load_root(f, root, now if v == roots else None, buf)
    print("root", root.version)
except ov.Refused as e:
    print("root", ov.NAMES[e.reason])
    sys.argv[4:] = []
for case in sys.argv[4:]:
    gc.collect()
    name, rel, installed, board = case.split(":")
    try:
        print(name, check(rel, int(installed) if installed else None, board))
    except ov.Refused as e:
        print(name, ov.NAMES[e.reason])
gc.collect()
print("free", gc.mem_free())
"""


def _device(w, now, cases, heap=HEAP, interpreter=None):
    mods = w["dir"] / "good" / "files"  # the OTA modules as the release ships them
    assert (mods / "bysans" / "ota" / "verify.mpy").exists() and not list(mods.rglob("ota/*.py"))
    words = [f"{name}:{rel.name}:{'' if installed is None else installed}:{board}"
             for name, (rel, installed, board, _r) in cases.items()]
    out = run_mp(f"sys.path.insert(0, {str(mods)!r})\n" + DEVICE, str(w["dir"]), str(now), str(len(w["roots"])),
                 *words, heap=heap, interpreter=interpreter)
    got = dict(line.split(" ", 1) for line in out.splitlines())
    return {k: int(v) if v.isdigit() else v for k, v in got.items()}


def _host(w, rel, installed, board, at=None):
    args = ["release", "verify", rel, "--kommune", "751", "--board", board, "--json"]
    if installed is not None:
        args += ["--installed-counter", installed]
    if at is not None:
        args += ["--at", f"@{at}"]
    return json.loads(fleet(*args, env=w["env"], ok=False).stdout)["reason"]


@pytest.mark.parametrize("bits", [64, 32])
def test_whole_app_release_and_root_chain_are_checked_in_a_64k_heap(w, bits, request):
    """On 32 bits (objects as on an ESP32: docs/boards.md) as well as on the 64-bit unix port."""
    interpreter = request.getfixturevalue("mp32") if bits == 32 else None
    assert len(w["roots"]) >= 6 and len(w["files"]) >= 50
    now = int(time.time())
    got = _device(w, now, w["cases"], interpreter=interpreter)
    assert got.pop("root") == len(w["roots"])
    assert got.pop("free") > 0
    want = {name: (len(w["files"]) if reason is Reason.OK else reason.name)
            for name, (_rel, _i, _b, reason) in w["cases"].items()}
    assert got == want
    # the host's verifier (on `cryptography`) gives each manifest the same verdict
    for name, (rel, installed, board, reason) in w["cases"].items():
        if name not in ("tampered_file", "longer_file", "shorter_file"):
            assert _host(w, rel, installed, board) == reason.name, name


def test_expired_release_and_expired_root_in_a_64k_heap(w):
    good = {"good": w["cases"]["good"]}
    later = int(time.time()) + 60 * 86400  # the release is signed for 30 days, the root for 365
    assert _device(w, later, good)["good"] == "EXPIRED" == _host(w, w["dir"] / "good", None, "virtual", later)
    much_later = int(time.time()) + 400 * 86400  # the last root step is past its expiry
    got = _device(w, much_later, good)
    got.pop("free")
    assert got == {"root": "EXPIRED"}
