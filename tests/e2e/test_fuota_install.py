"""A release over FUOTA on a virtual board, end to end: `fleet fuota payload` (the signed manifest as a delta
and the changed files), `fleet fuota fragments`, the DataFragments fed to the board's own decoder
(bysans.fuota.frag.handle) with about 20 % of them lost, the rebuilt block installed by the board's own
installer (bysans.fuota.install: the OTA client's verification, slot and switch), a reset, and the new
release confirmed by its first boot's self-test. A tampered fragment ends in a refused release and an
unchanged board; power cuts during the install leave a board that boots the old release or the new one,
whole (scripts/benches/fuota.py cuts more often)."""

import json
import os
import random
import subprocess
import sys
import time

from fleet.fuota.fragments import encode
from fleet.fuota.payload import build
from fleet.resources import firmware_dir
from lab.fuota_air import INSTALL, install_and_reset
from lab.fuota_powercut import FEED, put_file
from lab.ota import HEAP, Lab, Repl, provision

CUTS = int(os.environ.get("BYSANS_FUOTA_INSTALL_CUTS", "2"))
SIZE = 48  # EU868 DR0's largest fragment
LOSS = 0.20

def _fleet(*args):
    p = subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p


def _session(lab, tmp, name, rel, base, rng, *, loss=LOSS, tamper=False, cli=False):
    """Payload -> fragments -> what reaches the board: (payload info, FragSessionSetupReq hex, records).
    With `cli`, through `fleet fuota payload` and `fleet fuota fragments` as an admin runs them; else
    through the same library calls (quicker)."""
    pl = tmp / f"{name}.bin"
    if cli:
        info = json.loads(_fleet("fuota", "payload", "--release", rel, "--base-manifest", base / "release.json",
                                 "--kommune", "751", "--board", "virtual", "-o", pl, "--json").stdout)
    else:
        info = build(rel, board="virtual", kommune="751", base_body=(base / "release.json").read_bytes())
        pl.write_bytes(info.data)
        info = info.as_dict()
    redundancy = -(-info["bytes"] // SIZE) // 2 + 4
    if cli:
        p = _fleet("fuota", "fragments", pl, "--fragment-size", SIZE, "--redundancy", redundancy)
        setup = p.stderr.rsplit("FragSessionSetupReq ", 1)[1].split()[0]
        frags = [bytes.fromhex(line) for line in p.stdout.split()]
    else:
        session, frags = encode(pl.read_bytes(), SIZE, redundancy)
        setup = session.setup_req().hex()
    if tamper:  # one uncoded fragment changed on the way, delivered first: its row is taken as it is
        bad = bytearray(frags[3])
        bad[3 + SIZE // 2] ^= 0x40
        frags = [bytes(bad)] + frags[:3] + frags[4:]
    kept = [f for i, f in enumerate(frags) if (tamper and i == 0) or rng.random() >= loss]
    info["sent"] = len(frags)
    return info, setup, kept


def _feed(r, b, setup, kept):
    """Feeds the fragments, then resets the board: the install runs in the next boot, in a heap in one piece
    (docs/formats/fuota.md, "On the node"); the rebuilt block is in flash."""
    put_file(r, "frags.bin", b"".join(kept))
    out = r.run(FEED % {"setup": setup, "rec": 3 + SIZE}, timeout=120)
    assert "BLOCK /fuota/frag.bin" in out, out
    r.c.write(b"\x02")
    b.reset()
    r.reconnect()
    return out


def test_a_release_over_fuota_with_lost_fragments_a_tampered_one_and_power_cuts(make_board, tmp_path):
    rng = random.Random(os.environ.get("BYSANS_SEED", "14"))
    lab = Lab(tmp_path / "lab")
    r1 = lab.build("1.0.0")
    src = (firmware_dir() / "bysans" / "sampler.py").read_bytes()
    r2 = lab.derive(r1, "2.0.0", files={"bysans/sampler.mpy": src + b"\n_FUOTA = 2\n"})
    r3 = lab.derive(r2, "3.0.0", files={"bysans/sampler.mpy": src + b"\n_FUOTA = 3\n"})
    b = make_board(heap=HEAP)
    # A LoRaWAN-only node: no server, no repository; the root it trusts is the current one.
    provision(b, r1, lab.store.latest_root_bytes(), {"device": "70B3D57ED00000F1", "kommune": "0751"}, wifi=None)
    r = Repl(b)
    r.c.write(b"\x02")
    b.reset()
    r.reconnect()
    try:
        before = r.state()
        assert before["version"] == "1.0.0" and before["trial"] is None

        # a tampered fragment: the block is rebuilt with it, and refused before anything is written
        _, setup, kept = _session(lab, tmp_path, "tampered", r2, r1, rng, tamper=True)
        _feed(r, b, setup, kept)
        out = install_and_reset(r)
        assert out is not None and (out["state"], out["reason"]) == ("failed", "MALFORMED"), out
        assert "CRC-32" in out["detail"]
        st = r.state()
        assert (st["version"], st["slot"], st["trial"], st["release"]) == \
            ("1.0.0", before["slot"], None, before["release"])

        # 20 % of the fragments lost: rebuilt, installed, reset, confirmed by the first boot
        info, setup, kept = _session(lab, tmp_path, "r2", r2, r1, rng, cli=True)
        assert info["objects"] and len(info["objects"]) == 2 and info["bytes"] < 5 * 1024
        assert len(kept) <= 0.85 * info["sent"]  # fragments were lost on the way
        _feed(r, b, setup, kept)
        t0 = time.monotonic()
        assert install_and_reset(r) is None, "the installer did not switch and reset"
        took = time.monotonic() - t0
        st = r.state()
        assert (st["version"], st["app"], st["trial"], st["release"]) == ("2.0.0", "2.0.0", None, info["release"])
        assert st["last"]["state"] == "confirmed"
        assert r.files_ok()

        # power cuts during the next install: every time the board boots a whole, confirmed release
        info3, setup, kept = _session(lab, tmp_path, "r3", r3, r2, rng, loss=0.0)
        _feed(r, b, setup, kept)
        seen = []
        for _ in range(CUTS):
            r.c.write(INSTALL.encode() + b"\x04")
            time.sleep(rng.uniform(0.2, 1.2 * took))
            b.powercut(0)
            r.c.buf = r.c.buf[-20000:]
            r.reconnect(timeout=60)
            st = r.state()
            assert st["trial"] is None and st["path"] == "/" + st["slot"] and st["app"] == st["version"], st
            assert st["version"] in ("2.0.0", "3.0.0") and r.files_ok(), st
            seen.append(st["version"])
            if st["version"] == "3.0.0":
                break
        if seen[-1] != "3.0.0":
            assert install_and_reset(r) is None
        st = r.state()
        assert (st["version"], st["trial"], st["release"]) == ("3.0.0", None, info3["release"]) and r.files_ok()
    finally:
        r.close()
