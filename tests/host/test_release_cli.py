"""The real `fleet keys` / `fleet release` CLI on known-good and deliberately broken releases: each refusal
has its own reason and exit code; the device's verifier (MicroPython, from .mpy, 64 KiB heap) agrees."""

import base64
import hashlib
import json
import os
import re
import shutil
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from fleet.keys import KeyStore, from_env
from fleet.release import Reason
from release_support import flip as _flip, run_fleet, run_mp

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
PASS = "a long test passphrase"
OUTPUTS = []


def fleet(*args, env, ok=True):
    return run_fleet(*args, env=env, ok=ok, timeout=120, outputs=OUTPUTS)


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """A key directory (root; release keys for 0751, 0751 (later revoked), 0101) and signed releases."""
    d = tmp_path_factory.mktemp("rel")
    env = {**os.environ, "FLEET_KEYS_DIR": str(d / "keys"), "FLEET_KEY_PASSPHRASE": PASS}
    fleet("keys", "init-root", env=env)
    k751 = json.loads(fleet("keys", "add-release", "--kommune", "751", "--json", env=env).stdout)["keyid"]
    kold = json.loads(fleet("keys", "add-release", "--kommune", "0751", "--json", env=env).stdout)["keyid"]
    k101 = json.loads(fleet("keys", "add-release", "--kommune", "101", "--json", env=env).stdout)["keyid"]
    src = d / "src"
    (src / "bysans").mkdir(parents=True)
    (src / "main.py").write_text("import bysans.app\n")
    (src / "bysans" / "__init__.py").write_text("")
    (src / "bysans" / "app.py").write_text("def f(x):\n    return x * 2\n" * 20)
    (src / "bysans" / "conf.json").write_text('{"interval_s": 600}\n')
    fleet("release", "build", "--board", "virtual", "--version", "1.0.0", "--src", src, "--counter", 5,
          "-o", d / "good", env=env)
    for name in ("revoked", "k101"):
        shutil.copytree(d / "good", d / name)
    fleet("release", "sign", d / "good", "--kommune", "751", "--key", k751, env=env)
    fleet("release", "sign", d / "revoked", "--kommune", "751", "--key", kold, env=env)
    fleet("release", "sign", d / "k101", "--kommune", "101", env=env)
    fleet("keys", "revoke", kold, env=env)
    return {"dir": d, "env": env, "src": src, "k751": k751, "kold": kold, "k101": k101}


def _broken(w, name, how):
    dst = w["dir"] / f"broken-{name}"
    if not dst.exists():
        shutil.copytree(w["dir"] / "good", dst)
        how(dst)
    return dst


def _bad_sig(rel):
    p = rel / "release.json"
    p.write_bytes(p.read_bytes().replace(b'"version":"1.0.0"', b'"version":"1.0.9"', 1))


CASES = {
    # name: (release dir maker, extra verify args, reason)
    "good": (lambda w: w["dir"] / "good", [], Reason.OK),
    "tampered_file": (lambda w: _broken(w, "tampered", lambda r: _flip(r / "files/bysans/app.mpy")), [], Reason.BAD_HASH),
    "longer_file": (lambda w: _broken(w, "longer", lambda r: open(r / "files/bysans/conf.json", "ab").write(b" ")), [],
                    Reason.TOO_LONG),
    "shorter_file": (lambda w: _broken(w, "shorter", lambda r: (r / "files/main.py").write_bytes(b"import")), [],
                     Reason.TOO_SHORT),
    "bad_signature": (lambda w: _broken(w, "badsig", _bad_sig), [], Reason.BAD_SIGNATURE),
    "garbage": (lambda w: _broken(w, "garbage", lambda r: (r / "release.json").write_bytes(b"\x89PNG\r\n")), [],
                Reason.MALFORMED),
    "other_kommunes_key": (lambda w: w["dir"] / "k101", ["--kommune", "751"], Reason.NOT_DELEGATED),
    "revoked_key": (lambda w: w["dir"] / "revoked", [], Reason.REVOKED),
    "downgrade": (lambda w: w["dir"] / "good", ["--installed-counter", "6"], Reason.DOWNGRADE),
    "expired": (lambda w: w["dir"] / "good", ["--at", "@%d" % (2 ** 33)], Reason.EXPIRED),
    "other_board": (lambda w: w["dir"] / "good", ["--board", "heltec_v3"], Reason.WRONG_BOARD),
    "unlisted_file": (lambda w: _broken(w, "unlisted", lambda r: (r / "files/bysans/extra.py").write_text("x = 1\n")),
                      [], Reason.UNLISTED),
}


def test_a_stray_file_beside_the_manifest_is_unlisted_too(w):
    rel = _broken(w, "stray", lambda r: (r / "notes.txt").write_text("left here by someone\n"))
    proc = fleet("release", "verify", rel, "--kommune", "751", env=w["env"], ok=False)
    assert proc.returncode == Reason.UNLISTED.exit_code and "notes.txt" in proc.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_verify_refuses_each_broken_release_with_its_own_reason(w, case):
    make, extra, reason = CASES[case]
    rel = make(w)
    proc = fleet("release", "verify", rel, "--kommune", "751", *extra, env=w["env"], ok=False)
    assert proc.returncode == reason.exit_code, proc.stderr
    if reason is Reason.OK:
        assert proc.stdout.startswith("ok: 1.0.0")
    else:
        assert f"refused, {reason.name}" in proc.stderr and "hint:" in proc.stderr
    j = fleet("release", "verify", rel, "--kommune", "751", *extra, "--json", env=w["env"], ok=False)
    assert json.loads(j.stdout)["reason"] == reason.name


def test_exit_codes_are_distinct():
    codes = [c[2].exit_code for c in CASES.values()]
    assert len(set(codes)) == len(codes)


def test_signing_refuses_a_kommune_without_a_key(w):
    rel = w["dir"] / "nokey"
    shutil.copytree(w["dir"] / "good", rel)
    proc = fleet("release", "sign", rel, "--kommune", "461", env=w["env"], ok=False)
    assert proc.returncode == 3 and "461" in proc.stderr


def test_wrong_passphrase_cannot_sign(w):
    rel = w["dir"] / "nopass"
    shutil.copytree(w["dir"] / "good", rel)
    env = {**w["env"], "FLEET_KEY_PASSPHRASE": "not the passphrase at all"}
    proc = fleet("release", "sign", rel, "--kommune", "751", env=env, ok=False)
    assert proc.returncode == 8 and "passphrase" in proc.stderr
    no = {k: v for k, v in w["env"].items() if k != "FLEET_KEY_PASSPHRASE"}
    proc = fleet("release", "sign", rel, "--kommune", "751", env=no, ok=False)
    assert proc.returncode == 8 and "FLEET_KEY_PASSPHRASE" in proc.stderr


def test_build_compiles_for_the_board_arch(w):
    files = w["dir"] / "good" / "files"
    assert (files / "main.py").exists() and (files / "bysans" / "app.mpy").exists()
    assert not (files / "bysans" / "app.py").exists()
    assert (files / "bysans" / "app.mpy").read_bytes()[0:1] == b"M"
    out = run_mp(f"sys.path.insert(0, {str(files)!r})\nimport bysans.app\nprint(bysans.app.f(21))")
    assert out.strip() == "42"


def test_publish_content_addressed_and_only_changed_files_travel(w):
    repo = w["dir"] / "repo"
    first = json.loads(fleet("release", "publish", w["dir"] / "good", "--repo", repo, "--json", env=w["env"]).stdout)
    assert first["objects_new"] == 4 and first["channels"] == ["0751/virtual"]
    manifest = (w["dir"] / "good" / "release.json").read_bytes()
    assert (repo / "channels" / "0751" / "virtual.json").read_bytes() == manifest
    for entry in json.loads(manifest.split(b"\n")[0])["files"]:
        z = (repo / "objects" / f"{entry['sha256']}.z").read_bytes()
        assert z[0] == 0x28  # zlib header: deflate, 1 KiB window (what deflate.DeflateIO takes from it)
        assert zlib.decompress(z) == (w["dir"] / "good" / "files" / entry["path"]).read_bytes()
    # a new release that changes one module: one object travels
    (w["src"] / "bysans" / "app.py").write_text("def f(x):\n    return x * 3\n")
    fleet("release", "build", "--board", "virtual", "--version", "1.0.1", "--src", w["src"], "--counter", 6,
          "-o", w["dir"] / "next", env=w["env"])
    fleet("release", "sign", w["dir"] / "next", "--kommune", "751", env=w["env"])
    second = json.loads(fleet("release", "publish", w["dir"] / "next", "--repo", repo, "--json", env=w["env"]).stdout)
    assert second["objects_new"] == 1 and second["objects_kept"] == 3
    # and the new manifest as a delta against the first one's body, next to the channel and the manifest,
    # that rebuilds it byte for byte (tests/host/test_release_delta.py: the device rebuilds it alike)
    from fleet.release import delta
    from fleet.release.repository import delta_path

    base = manifest.split(b"\n")[0]
    base_digest = hashlib.sha256(base).hexdigest()
    signed2 = (w["dir"] / "next" / "release.json").read_bytes()
    channel = repo / "channels" / "0751" / "virtual.json"
    for p in (delta_path(channel, base_digest), delta_path(second["manifest"], base_digest)):
        d = p.read_bytes()
        assert delta.apply(d, base) == signed2 and len(d) < len(signed2) // 2
    # publishing the older release again is a downgrade of the channel
    proc = fleet("release", "publish", w["dir"] / "good", "--repo", repo, env=w["env"], ok=False)
    assert proc.returncode == Reason.DOWNGRADE.exit_code
    assert sorted(p.name for p in (repo / "root").iterdir()) == ["1.json", "2.json", "3.json", "4.json", "5.json"]


DEVICE = """
import gc
import json
import os
import re
from bysans.ota import verify as ov


def slurp(path):  # one allocation of the file's size, as the OTA client reads metadata
    buf = bytearray(os.stat(path)[6])
    with open(path, "rb") as f:
        f.readinto(buf)
    return buf


job = json.loads(slurp(sys.argv[1]))
root = None
for p in job["roots"]:
    gc.collect()
    root = ov.load_root(slurp(p), root, job["now"])
out = {}
buf = bytearray(128)
for name, rel, installed, board in job["cases"]:
    gc.collect()
    try:
        doc, _ = ov.verify_release(slurp(rel + "/release.json"), root, board, "0751", job["now"], installed)
        for e in doc["files"]:
            fc = ov.FileCheck(e)
            f = open(rel + "/files/" + e["path"], "rb")
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                fc.update(memoryview(buf)[:n])
            f.close()
            fc.finish()
        out[name] = "OK"
    except ov.Refused as e:
        out[name] = ov.NAMES[e.reason]
print(json.dumps(out))
"""


def test_device_verifies_cli_releases_from_mpy_in_a_small_heap(w, tmp_path):
    # 64 KiB on this 64-bit port, whose objects take about twice an ESP32's 32-bit words (it passed from 55
    # KiB when this was set): the whole check, a five-step root chain, then every case. A release of the
    # whole app, read from files as the client reads them: tests/host/test_release_device_heap.py.
    # The OTA modules as a release ships them: built by the CLI (.mpy for the virtual board's x64).
    src = tmp_path / "otasrc"
    shutil.copytree(FIRMWARE / "bysans" / "ota", src / "bysans" / "ota",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (src / "bysans" / "__init__.py").write_text("")
    fleet("release", "build", "--board", "virtual", "--version", "0.0.1", "--src", src, "-o", tmp_path / "ota",
          env=w["env"])
    mods = tmp_path / "ota" / "files"
    assert not list(mods.rglob("*.py"))
    import time
    now = int(time.time())
    store = KeyStore(w["env"]["FLEET_KEYS_DIR"])
    cases, want = [], {}
    for name, (make, extra, reason) in CASES.items():
        if "--kommune" in extra:
            extra = []
        installed = int(extra[1]) if extra[:1] == ["--installed-counter"] else None
        board = extra[1] if extra[:1] == ["--board"] else "virtual"
        at = 2 ** 33 if extra[:1] == ["--at"] else None
        if at:
            continue  # the device's clock: covered below with a job of its own
        if reason is Reason.UNLISTED:
            continue  # the host's check of a release folder: a device fetches only the files listed
        cases.append([name, str(make(w)), installed, board])
        want[name] = reason.name
    job = {"roots": [str(store.root_path(v)) for v in store.root_versions()], "now": now, "cases": cases}
    (tmp_path / "job.json").write_text(json.dumps(job))
    script = f"sys.path.insert(0, {str(mods)!r})\n" + DEVICE
    got = json.loads(run_mp(script, str(tmp_path / "job.json"), heap="64K"))
    assert got == want
    job.update(now=now + 60 * 86400, cases=[["expired", str(w["dir"] / "good"), None, "virtual"]])
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert json.loads(run_mp(script, str(tmp_path / "job.json"), heap="64K")) == {"expired": "EXPIRED"}


def test_keys_list_and_no_private_key_bytes_in_any_output(w):
    listing = json.loads(fleet("keys", "list", "--json", env=w["env"]).stdout)
    roles = {k["keyid"]: k for k in listing["keys"]}
    assert roles[w["kold"]]["revoked"] and roles[w["k751"]]["kommuner"] == ["0751"]
    fleet("keys", "list", env=w["env"])
    fleet("keys", "--help", env=w["env"])
    store = KeyStore(w["env"]["FLEET_KEYS_DIR"])
    secrets = []
    for p in store.keys_dir.glob("*.key"):
        s = store.signer(p.stem, from_env({"FLEET_KEY_PASSPHRASE": PASS}))
        raw = s._Ed25519FileSigner__key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                      serialization.NoEncryption())
        secrets += [raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode()[:40], p.read_text().splitlines()[1]]
    assert len(OUTPUTS) > 20
    for text in OUTPUTS:
        assert "PRIVATE KEY" not in text and PASS not in text
        for s in secrets:
            assert s not in text


def test_every_command_has_an_example_in_its_help(w):
    for cmd in (["keys"], ["keys", "init-root"], ["keys", "add-release"], ["keys", "rotate-root"],
                ["keys", "revoke"], ["keys", "list"], ["release"], ["release", "build"], ["release", "sign"],
                ["release", "verify"], ["release", "publish"]):
        assert "Example:" in fleet(*cmd, "--help", env=w["env"]).stdout, cmd


def test_a_release_says_its_own_version_on_the_board(tmp_path):
    """A release 1.1.0 booted as 'bysans 0.1.0': the app's version module is compiled with the release's."""
    from fleet.release.build import build

    build("virtual", "1.1.0-rc2", tmp_path / "rel")
    files = tmp_path / "rel" / "files"
    assert not list(tmp_path.glob("rel/.*"))  # nothing left beside the release
    out = run_mp(f"sys.path.insert(0, {str(files)!r})\nfrom bysans.version import VERSION\nprint(VERSION)")
    assert out.strip() == "1.1.0-rc2"


def test_build_refuses_a_release_over_the_boards_app_budget(w, tmp_path):
    """A release that would not fit the board's flash (docs/boards.md: one of two slots of its vfs less a
    reserve, counted in littlefs blocks) is refused at build time, with the blocks and bytes, the largest
    files and what to do, and leaves no release behind."""
    from fleet import boards

    budget = boards.load("virtual")["app_budget"]
    src = tmp_path / "src"
    shutil.copytree(w["src"], src)
    small = json.loads(fleet("release", "build", "--board", "virtual", "--version", "1.0.1", "--src", src, "-o",
                             tmp_path / "small", "--json", env=w["env"]).stdout)
    (src / "bysans" / "bigdata.bin").write_bytes(os.urandom(budget))
    out = tmp_path / "big"
    proc = fleet("release", "build", "--board", "virtual", "--version", "1.0.1", "--src", src, "-o", out,
                 env=w["env"], ok=False)
    assert proc.returncode == 25, proc.stderr
    size = budget + small["bytes"]
    assert f"{small['files'] + 1} files of {size} bytes" in proc.stderr, proc.stderr
    assert f"app budget of {budget // 4096} blocks ({budget} bytes" in proc.stderr, proc.stderr
    assert f"bysans/bigdata.bin {budget}" in proc.stderr and "app_budget" in proc.stderr
    assert not (out / "release.json").exists() and not (out / "files").exists()


def test_many_small_files_are_refused_though_their_bytes_fit(w, tmp_path):
    """Each file over 128 bytes takes a whole 4 KiB block: files of 200 bytes, one more than the blocks the
    board's slot has left, are refused though their bytes are far under the budget (a board with MicroPython's
    4MiB-ota table: a vfs of 240 blocks); the refusal and `--json` give both counts."""
    from fleet import boards

    budget = boards.load("virtual_4mib_ota")["app_budget"]
    src = tmp_path / "src"
    shutil.copytree(w["src"], src)
    fits = json.loads(fleet("release", "build", "--board", "virtual_4mib_ota", "--version", "1.0.1", "--src", src,
                            "-o", tmp_path / "fits", "--json", env=w["env"]).stdout)
    assert fits["budget_blocks"] == budget // 4096 and 0 < fits["blocks"] <= fits["budget_blocks"]
    plain = fleet("release", "build", "--board", "virtual_4mib_ota", "--version", "1.0.1", "--src", src, "-o",
                  tmp_path / "fits", env=w["env"]).stdout
    assert f"{fits['bytes']} bytes, {fits['blocks']} littlefs blocks of the board's {budget // 4096} per slot" in plain
    extra = fits["budget_blocks"] - fits["blocks"] + 1
    for i in range(extra):
        (src / "bysans" / f"table{i:03d}.dat").write_bytes(bytes([i % 256]) * 200)
    proc = fleet("release", "build", "--board", "virtual_4mib_ota", "--version", "1.0.2", "--src", src, "-o",
                 tmp_path / "many", env=w["env"], ok=False)
    assert proc.returncode == 25, proc.stderr
    m = re.search(r"takes (\d+) blocks of 4096 bytes in littlefs \((\d+) bytes: (\d+) files of (\d+) bytes",
                  proc.stderr)
    assert m, proc.stderr
    blocks, _, files, size = map(int, m.groups())
    assert (blocks, files, size) == (fits["blocks"] + extra, fits["files"] + extra, fits["bytes"] + 200 * extra)
    assert size < budget < blocks * 4096
    assert f"over board virtual_4mib_ota's app budget of {budget // 4096} blocks ({budget} bytes" in proc.stderr
    assert "fewer, larger files" in proc.stderr


def test_the_app_fits_the_smallest_boards_flash_budget(tmp_path):
    from fleet import boards
    from fleet.release import build

    for name in ("ttgo_lora32_v21", "tbeam", "heltec_v3"):
        built = build.build(name, "1.0.0", tmp_path / name, counter=1)
        budget = boards.load(name)["app_budget"]
        assert 0 < built.bytes and 0 < built.blocks <= built.budget_blocks == budget // 4096, (name, built)


