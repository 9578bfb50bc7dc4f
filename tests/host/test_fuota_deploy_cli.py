"""`fleet rollout start --via lorawan` (docs/formats/fuota.md, "Deployment"): the folder it writes is what a
device can use. With each device's AppKey (read back from the registry) and `cryptography`'s AES only — the
TS005 and LoRaWAN formulas written out here — McKey is opened from each device's McGroupSetupReq, the
group's session keys derived from it, every multicast frame's MIC checked and its FRMPayload decrypted into
the DataFragments of fragments.txt, which rebuild payload.bin. No key is in the folder or the output."""

import json
import os
import struct
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fleet.fuota.rebuild import rebuild
from fleet.registry import Operator, Registry

SECRET = "11" * 32


def aes(key, block, decrypt=False):
    c = Cipher(algorithms.AES(key), modes.ECB())
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(block) + x.finalize()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("fuotadeploy")
    env = dict(os.environ, FLEET_DB=f"sqlite:///{tmp_path / 'reg.db'}", FLEET_KEYS_DIR=str(tmp_path / "keys"),
               FLEET_KEY_PASSPHRASE="correct horse battery staple", FLEET_OPERATOR="test", FLEET_KOMMUNE="751",
               FLEET_SECRET_KEY=SECRET, XDG_DATA_HOME=str(tmp_path / "data"), BYSANS_SIM_DIR=str(tmp_path / "sim"))

    def fleet(*args, ok=True):
        p = subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *map(str, args)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        if ok is not None:
            assert (p.returncode == 0) == ok, p.stderr
        return p

    fleet("keys", "init-root")
    fleet("keys", "add-release", "--kommune", "751")
    for v in ("1.0.0", "1.1.0"):
        fleet("release", "build", "--board", "virtual", "--version", v, "-o", f"rel-{v}")
        fleet("release", "sign", f"rel-{v}", "--kommune", "751")
    fleet("release", "publish", "rel-1.0.0", "--repo", "updates")
    for mac in ("24:0a:c4:00:31:01", "24:0a:c4:00:31:02"):
        fleet("enroll", "--site", "Testvej 1", "--kind", "waste", "--board", "virtual", "--no-board", "--mac", mac)
    return tmp_path, fleet, env


def test_the_folder_opens_with_each_devices_own_key(sandbox):
    tmp, fleet, env = sandbox
    p = fleet("rollout", "start", "--via", "lorawan", "--release", "1.1.0", "--release-dir", "rel-1.1.0",
              "--from", "1.0.0", "--repo", "updates", "--kommune", "751", "--board", "virtual", "--dr", "3",
              "--loss", "10%", "--waves", "100%", "-o", "dep", "--json")
    summary = json.loads(p.stdout)
    out = tmp / "dep"
    payload = (out / "payload.bin").read_bytes()
    plan = summary["plan"]
    assert plan["payload_bytes"] == len(payload) == summary["payload"]["bytes"]
    assert plan["fragment_size"] == 112 and plan["devices"] == 2

    reg = Registry.open(env["FLEET_DB"], key=bytes.fromhex(SECRET))
    try:
        # the start names its operator in the audit log: each AppKey it read, with what for
        reads = [(a.operator, a.dev_eui, a.note) for a in reg.audit_log(Operator("test", kommune="0751"))
                 if a.action == "device.keys_read"]
        assert sorted(reads) == [("test", d, "fuota deployment") for d in ("240AC4FFFE003101", "240AC4FFFE003102")]
        keys = {k.lower(): v for k, v in reg.app_keys(Operator("test", kommune="0751"),
                                                      ["240AC4FFFE003101", "240AC4FFFE003102"], purpose="test").items()}
    finally:
        reg.close()
    text = "".join(f.read_text() for f in out.iterdir() if f.suffix in (".txt", ".json")) + p.stdout + p.stderr
    assert not any(k.hex() in text for k in keys.values())

    uni = [line.split() for line in (out / "unicast.txt").read_text().splitlines() if not line.startswith("#")]
    setups = {d: bytes.fromhex(h) for d, port, h in uni if port == "200" and h.startswith("02")}
    assert set(setups) == set(keys)
    mc_keys = set()
    for dev, req in setups.items():
        kek = aes(aes(keys[dev], bytes(16)), bytes(16))               # McKEKey from GenAppKey = AppKey
        mc_keys.add(aes(kek, req[6:22]))                              # the node: McKey = AES(McKEKey, enc)
        mc_addr = struct.unpack_from("<I", req, 2)[0]
    [mc_key] = mc_keys                                                # one group key, reached by both
    addr = struct.pack("<I", mc_addr)
    app_s, nwk_s = aes(mc_key, b"\x01" + addr + bytes(11)), aes(mc_key, b"\x02" + addr + bytes(11))

    frags = []
    for line in (out / "frames.txt").read_text().splitlines()[1:]:
        _, fcnt, phy = line.split()
        phy, fcnt = bytes.fromhex(phy), int(fcnt)
        assert phy[0] == 0x60 and phy[1:5] == addr and phy[5] == 0 and phy[8] == 201
        c = cmac.CMAC(algorithms.AES(nwk_s))
        c.update(struct.pack("<BIBIIBB", 0x49, 0, 1, mc_addr, fcnt, 0, len(phy) - 4) + phy[:-4])
        assert c.finalize()[:4] == phy[-4:]
        enc = phy[9:-4]
        ks = b"".join(aes(app_s, struct.pack("<BIBIIBB", 1, 0, 1, mc_addr, fcnt, 0, i + 1))
                      for i in range((len(enc) + 15) // 16))
        frags.append(bytes(a ^ b for a, b in zip(enc, ks)))
    assert [f.hex() for f in frags] == (out / "fragments.txt").read_text().split()
    assert len(frags) == plan["nb_frag"] + plan["redundancy"]
    lost = frags[1:2] + frags[4:5]                                    # two data fragments lost
    kept = [f for f in frags if f not in lost]
    assert rebuild(kept, nb_frag=plan["nb_frag"], padding=plan["padding"]) == payload


def test_lorawan_needs_its_folder_and_release(sandbox):
    tmp, fleet, _ = sandbox
    p = fleet("rollout", "start", "--via", "lorawan", "--release", "1.1.0", "--kommune", "751", "--board", "virtual",
              "-o", "x", ok=False)
    assert "--release-dir" in p.stderr and not (tmp / "x").exists()
    p = fleet("rollout", "start", "--via", "lorawan", "--release", "1.2.0", "--release-dir", "rel-1.1.0",
              "--kommune", "751", "--board", "virtual", "-o", "x", ok=False)
    assert "holds release 1.1.0" in p.stderr and not (tmp / "x").exists()
    # a session slot given by GPS time (the network's, as the devices sync it) must be ahead
    p = fleet("rollout", "start", "--via", "lorawan", "--release", "1.1.0", "--release-dir", "rel-1.1.0",
              "--kommune", "751", "--board", "virtual", "--session-at", "1000000000", "-o", "x", ok=False)
    assert p.returncode == 2 and "--session-at 1000000000 is not in the future" in p.stderr, p.stderr
    assert not (tmp / "x").exists()


def test_status_shows_waves_states_and_fragments_and_next_prepares_the_next_waves_session(sandbox):
    from datetime import datetime, timezone

    from fleet.fuota.spec import SPEC as FRAG
    from fleet.telemetry import TelemetryStore, parse_event
    from lab import telemetry_samples as S

    tmp, fleet, env = sandbox
    if fleet("rollout", "status", "--via", "lorawan", "--kommune", "751", "--json", ok=None).returncode == 0:
        fleet("rollout", "abort", "--via", "lorawan", "--kommune", "751", "--note", "the next test's turn", ok=None)
    p = fleet("rollout", "start", "--via", "lorawan", "--release", "1.1.0", "--release-dir", "rel-1.1.0",
              "--from", "1.0.0", "--repo", "updates", "--kommune", "751", "--board", "virtual", "--dr", "3",
              "--waves", "50%,100%", "--halt-at", "100%", "-o", "waves", "--json")
    started = json.loads(p.stdout)
    assert started["session"]["n"] == 1 and started["session"]["devices"] == 1
    [canary] = {line.split()[0] for line in (tmp / "waves" / "unicast.txt").read_text().splitlines()[1:]}
    view = json.loads(fleet("rollout", "status", "--via", "lorawan", "--kommune", "751", "--devices", "--json").stdout)
    assert view["id"] == started["id"] and view["via"] == "lorawan" and view["state"] == "running"
    assert view["counter"] == started["payload"]["counter"] > 0  # what the devices' update reports must name
    assert [(w["devices"], w["open"], w["sessions"]) for w in view["per_wave"]] == [(1, True, [1]), (1, False, [])]
    assert view["counts"]["pending"] == 2 and view["counts"]["total"] == 2
    [other] = [d["device"] for d in view["devices"] if d["device"] != canary]
    # nothing to prepare while wave 1 is in its session
    p = fleet("rollout", "next", "--via", "lorawan", "--kommune", "751", ok=False)
    assert p.returncode == 60 and "no device waits for a session" in p.stderr and "hint:" in p.stderr

    # the network server forwards the canary's answers: a status with fragments missing, then a refused
    # group set-up (IDerror): failed; 1 of 1 failed is not above 100 %, so wave 2 opens
    nb = started["plan"]["nb_frag"]
    reg = Registry.open(env["FLEET_DB"], key=bytes.fromhex(SECRET))
    try:
        now = datetime.now(timezone.utc)
        ups = [parse_event(json.dumps(S.chirpstack_event(canary, payload, f_cnt=n, at=now, f_port=port)), "chirpstack")
               for n, (port, payload) in enumerate(((201, FRAG.pack_status_ans(0, 2, nb - 2, 0)),), 1)]
        assert TelemetryStore(reg).ingest(ups).fuota["moved"] == 1
        view = json.loads(fleet("rollout", "status", "--via", "lorawan", "--kommune", "751", "--devices",
                                "--json").stdout)
        [d] = [d for d in view["devices"] if d["device"] == canary]
        assert (d["state"], d["received"], d["missing"], d["nb_frag"], d["session"]) == ("fragments", 2, nb - 2, nb, 1)
        text = fleet("rollout", "status", "--via", "lorawan", "--kommune", "751", "--devices").stdout
        assert f"fragments 2/{nb}, {nb - 2} missing" in text and "wave 1 (50%, open)" in text
        ups = [parse_event(json.dumps(S.chirpstack_event(canary, bytes([0x02, 0x04]), f_cnt=2, at=now, f_port=200)),
                           "chirpstack")]
        TelemetryStore(reg).ingest(ups)
    finally:
        reg.close()
    view = json.loads(fleet("rollout", "status", "--via", "lorawan", "--kommune", "751", "--json").stdout)
    assert (view["state"], view["open_waves"], view["waiting_for_session"]) == ("running", 2, 1)
    assert view["per_wave"][0]["counts"] == {"failed": 1} and "devices" not in view
    p = fleet("rollout", "next", "--via", "lorawan", "--kommune", "751", "--session-in", "2h", "--json")
    nxt = json.loads(p.stdout)
    assert nxt["session"]["n"] == 2 and nxt["devices"] == [other]
    uni = (tmp / "waves" / "session-2" / "unicast.txt").read_text().splitlines()[1:]
    assert {line.split()[0] for line in uni} == {other} and len(uni) == 3
    assert (tmp / "waves" / "session-2" / "frames.txt").is_file()
    view = json.loads(fleet("rollout", "status", "--via", "lorawan", "--kommune", "751", "--json").stdout)
    assert [w["sessions"] for w in view["per_wave"]] == [[1], [2]] and view["waiting_for_session"] == 0
    fleet("rollout", "abort", "--via", "lorawan", "--kommune", "751", "--note", "done testing")
    reg = Registry.open(env["FLEET_DB"], key=bytes.fromhex(SECRET))
    try:
        entries = [(e.action, e.operator) for e in reg.audit_log(Operator("test", kommune="0751"), limit=200)
                   if e.action.startswith("rollout.")]
        keys = reg.app_keys(Operator("test", kommune="0751"), [canary.upper(), other.upper()], purpose="test")
    finally:
        reg.close()
    assert entries[:3] == [("rollout.abort", "test"), ("rollout.session", "test"), ("rollout.start", "test")]
    shown = p.stdout + p.stderr + text + (tmp / "waves" / "session-2" / "unicast.txt").read_text()
    assert not any(k.hex() in shown or k.hex().upper() in shown for k in keys.values())
