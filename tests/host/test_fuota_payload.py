"""The FUOTA update payload (docs/formats/fuota.md, "Update payload"): built by the host
(fleet/fuota/payload.py, `fleet fuota payload`), read and installed by the device's own code
(firmware/bysans/fuota/install.py, which runs the OTA client's poll) on the MicroPython unix port, and on the
32-bit one at the smallest board's heap when it is there (tests/mp32support.py). For one board the payload
comes as a session's fragments, a fifth of them lost, through the board's decoder first; the install runs
in the next interpreter, as in the boot after the block was rebuilt.

What a user relies on: the payload holds the changed files only and the release's signed manifest; the
device ends with exactly the new release's files in its inactive slot and the switch made; a payload with any
byte changed in transit, or forged with its CRC fixed, is refused with its reason and leaves the board as it
was (same boot state, same confirmed slot).
"""

import json
import time
import zlib
from pathlib import Path

import pytest
import mp32support
from fleet import boards
from fleet.fuota.fragments import encode
from fleet.fuota.payload import build, read
from fleet.release import metadata
from fleet.resources import firmware_dir
from lab.ota import Lab
from provisioning.ota import slot_files
from release_support import run_fleet, run_mp

SIZE, LOSS = 48, 0.2  # EU868 DR0's largest fragment; a fifth of them lost

# The air: the fragments of air.bin fed to the board's decoder (as its FPort 201 handler does); prints where
# the rebuilt block is.
_SESSION = """
import binascii
from bysans.fuota import frag
class Store:
    timeout_s = 10000000
    def now(self):
        return 1000
for root in %(roots)r:
    st = Store()
    st.root = root + '/fuota'
    with open(root + '/air.bin', 'rb') as f:
        frag.handle(binascii.unhexlify(f.readline().strip()), st)  # FragSessionSetupReq
        while frag.block_path(st) is None:
            p = f.read(3 + %(size)d)
            if not p:
                break
            frag.handle(p, st)
    print(frag.block_path(st))
"""

# Installs the rebuilt block of each board tree at `root` (a directory standing in for the board's flash), in
# a fresh interpreter as after a reset, and prints the outcome and the boot state as JSON.
_MP = """
import json
from bysans.fuota import install
from bysans.ota import slots
class Board:
    name = 'virtual'
    definition = {}
    def epoch_s(self):
        return %(now)d
    def reset(self):
        raise AssertionError('reset with reboot=False')
for root in %(roots)r:
    out = install.install(root + '/fuota/frag.bin', Board(), root + '/', reboot=False)
    print(json.dumps({'outcome': out, 'boot': slots.load(root + '/')}))
"""


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuotapay")
    lab = Lab(base)
    r1 = lab.build("1.0.0")
    src = firmware_dir() / "bysans" / "sampler.py"
    r2 = lab.derive(r1, "2.0.0", files={"bysans/sampler.mpy": src.read_bytes() + b"\n_CHANGED = 1\n"})
    return {"lab": lab, "r1": r1, "r2": r2, "base": base}


def _files(release):
    return {e["path"]: e for e in metadata.body_of((release / "release.json").read_bytes())["files"]}


def _air(payload: bytes, seed: int) -> bytes:
    """What reaches the board of a fragmentation session carrying `payload`: the setup request (hex, one line)
    then the DataFragments that got through, LOSS of them lost at random."""
    import random

    rng = random.Random(seed)
    session, frags = encode(payload, SIZE, len(payload) // SIZE // 2 + 4)
    kept = [f for f in frags if rng.random() >= LOSS]
    assert len(kept) < len(frags)
    return session.setup_req().hex().encode() + b"\n" + b"".join(kept)


def _board(root: Path, rel_dir: Path, lab: Lab, payload: bytes, air: bytes | None = None):
    """A board tree running `rel_dir` in slot a, as provisioning writes it, with the payload as the rebuilt
    block of a fragmentation session."""
    from provisioning import ota as pota

    files = slot_files(rel_dir, "a")
    files["/ota/root.json"] = lab.store.latest_root_bytes()  # no repository to walk a chain from
    files["/ota/config.json"] = json.dumps({"device": "70B3D57ED00000F1", "kommune": "0751"}).encode()
    files["/ota/boot.json"] = pota._encode_state(dict(pota._STATE))
    files["/ota/confirmed"] = b"a"
    if air is None:
        files["/fuota/frag.bin"] = payload
    else:
        files["/air.bin"] = air
        (root / "fuota").mkdir(parents=True)  # the decoder's directory, empty
    for p, data in files.items():
        dst = root / p.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    return root


def _install(roots, interpreter=None, heap="256K", air=()):
    """The sessions of the roots in `air`, then the installs: two interpreters, as a node that installs in the
    boot after the block was rebuilt (docs/formats/fuota.md, "On the node")."""
    if air:
        out = run_mp(_SESSION % {"roots": [str(r) for r in air], "size": SIZE}, heap=heap,
                     interpreter=interpreter, timeout=600)
        assert out.split() == [f"{r}/fuota/frag.bin" for r in air], out
    out = run_mp(_MP % {"now": int(time.time()), "roots": [str(r) for r in roots]}, heap=heap,
                 interpreter=interpreter, timeout=600)
    return [json.loads(line) for line in out.strip().splitlines()]


def test_the_payload_holds_the_signed_manifest_as_a_delta_and_only_the_changed_files(rel):
    p = build(rel["r2"], board="virtual", kommune="751", base_body=(rel["r1"] / "release.json").read_bytes())
    old, new = _files(rel["r1"]), _files(rel["r2"])
    changed = sorted(k for k, e in new.items() if old.get(k, {}).get("sha256") != e["sha256"])
    assert changed == ["bysans/sampler.mpy", "bysans/version.mpy"]
    parts = read(p.data)
    assert sorted(e["path"] for e in p.objects) == changed
    for path in changed:  # each object inflates (CPython's zlib) to the release's file
        raw = zlib.decompress(parts["objects"][new[path]["sha256"]])
        assert raw == (rel["r2"] / "files" / path).read_bytes()
    from fleet.release import delta

    signed = (rel["r2"] / "release.json").read_bytes()
    assert delta.apply(parts["manifest"], (rel["r1"] / "release.json").read_bytes().split(b"\n")[0]) == signed
    assert p.size == len(p.data) < 5 * 1024


def test_cli_reports_the_size_and_contents_before_a_rollout(rel, tmp_path):
    import os

    out = tmp_path / "p.bin"
    env = dict(os.environ)
    res = run_fleet("fuota", "payload", "--release", rel["r2"], "--base-manifest", rel["r1"] / "release.json",
                    "--kommune", "751", "--board", "virtual", "-o", out, "--json", env=env)
    info = json.loads(res.stdout)
    assert info["bytes"] == out.stat().st_size
    assert info["base"]["version"] == "1.0.0" and info["version"] == "2.0.0"
    assert info["manifest"]["kind"] == "delta"
    assert [o["path"] for o in info["objects"]] == ["bysans/sampler.mpy", "bysans/version.mpy"]
    bad = run_fleet("fuota", "payload", "--release", rel["r2"], "--kommune", "101", "--board", "virtual",
                    "-o", tmp_path / "x.bin", env=env, ok=False)
    assert bad.returncode == 2 and "not 0101" in bad.stderr and "hint:" in bad.stderr
    assert not (tmp_path / "x.bin").exists()


def _tampered(data: bytes, at: int, fix_crc: bool) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    if fix_crc:
        b[-4:] = (zlib.crc32(bytes(b[:-4])) & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(b)


@pytest.mark.parametrize("bits", ["64", "32"])
def test_round_trip_through_the_device_installer(rel, tmp_path, bits):
    interpreter, heap = None, "256K"
    if bits == "32":
        interpreter, heap = mp32support.require(), boards.load("ttgo_lora32_v21")["heap"]
    r1, r2, lab = rel["r1"], rel["r2"], rel["lab"]
    delta_p = build(r2, board="virtual", kommune="751", base_body=(r1 / "release.json").read_bytes()).data
    full_p = build(r2, board="virtual", kommune="751").data
    parts = read(delta_p)
    mstart = 12
    obj_at = delta_p.index(parts["objects"][_files(r2)["bysans/sampler.mpy"]["sha256"]]) + 40
    sig_hex = json.loads((r2 / "release.json").read_bytes().split(b"\n")[1])[0]["sig"].encode()
    sig_at = delta_p.index(sig_hex) + 10
    cases = {
        "delta": delta_p,
        "full": full_p,
        "header": _tampered(delta_p, 8, False),            # transit damage anywhere: the CRC
        "manifest": _tampered(delta_p, mstart + 50, False),
        "object": _tampered(delta_p, obj_at, False),
        "crc": _tampered(delta_p, len(delta_p) - 1, False),
        "forged_sig": _tampered(delta_p, sig_at, True),     # CRC fixed: the signature
        "forged_object": _tampered(delta_p, obj_at, True),  # CRC fixed: the file's hash
    }
    roots = {k: _board(tmp_path / k, r1, lab, v, _air(v, 14) if k == "delta" else None) for k, v in cases.items()}
    before = {k: (r / "ota" / "boot.json").read_bytes() for k, r in roots.items()}
    got = dict(zip(cases, _install(roots.values(), interpreter, heap, air=[roots["delta"]])))
    want_files = _files(r2)
    for ok in ("delta", "full"):
        assert got[ok]["outcome"]["state"] == "installed", got[ok]
        assert got[ok]["boot"]["trial"] == "b" and got[ok]["boot"]["confirmed"] == "a"
        slot_b = roots[ok] / "b"
        on_board = sorted(str(p.relative_to(slot_b)) for p in slot_b.rglob("*") if p.is_file())
        assert on_board == sorted([*want_files, "manifest.json", "manifest.sig"])
        for path in want_files:
            assert (slot_b / path).read_bytes() == (r2 / "files" / path).read_bytes(), path
        assert (slot_b / "manifest.json").read_bytes() == (r2 / "release.json").read_bytes().split(b"\n")[0]
    reasons = {"header": "MALFORMED", "manifest": "MALFORMED", "object": "MALFORMED", "crc": "MALFORMED",
               "forged_sig": "BAD_SIGNATURE", "forged_object": ("BAD_HASH", "TOO_SHORT", "TOO_LONG")}
    for k, reason in reasons.items():
        out = got[k]["outcome"]
        assert out["state"] == "failed" and out["reason"] in reason, (k, out)
        assert (roots[k] / "ota" / "boot.json").read_bytes() == before[k], k
        assert got[k]["boot"]["trial"] is None and got[k]["boot"]["confirmed"] == "a"
        assert not (roots[k] / "b" / "manifest.json").exists()
    assert "CRC-32" in got["object"]["outcome"]["detail"]
    assert "sampler.mpy" in got["forged_object"]["outcome"]["detail"]
