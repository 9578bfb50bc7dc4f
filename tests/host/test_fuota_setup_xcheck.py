"""TS003 clock sync and TS005 remote multicast setup: the firmware (bysans.fuota, run under the MicroPython
unix port) against the network server's side (fleet.fuota) and, for every key and frame, against the spec's
formulas computed here with `cryptography`'s AES (tests/host/lorawan_reference.py), never against this
code's own output alone."""

import json
import random
import struct
import subprocess

import pytest

from lorawan_reference import aes_cmac, ecb, frm_crypt
from fleet.errors import LoRaWANFrameError, UsageError
from fleet.fuota import clock as fclock
from fleet.fuota import multicast as fmc
from fleet.resources import firmware_dir, micropython_path

ROM = firmware_dir().parent / "fleet" / "sim" / "rom"  # cryptolib's stand-in for the 32-bit build

# Each step: {"op": ...}; the firmware prints one JSON line per step.
FIRMWARE = r"""
import sys, json
try:
    import cryptolib
except ImportError:  # the 32-bit unix build has no cryptolib; an ESP32 has (the virtual board's stand-in)
    sys.path.insert(0, ROM)
    import _cryptolib
    sys.modules["cryptolib"] = _cryptolib
from binascii import hexlify, unhexlify
from bysans.fuota.dispatch import Fuota, kek
from bysans.fuota.multicast import group_keys
from bysans.lorawan import frames
from bysans.lorawan.radio import MemoryStore

class Board:
    now = 1796655600
    def epoch_s(self):
        return Board.now

b = Board()
f = None
for line in sys.stdin:
    c = json.loads(line)
    op = c["op"]
    if op == "new":
        f = Fuota(b, MemoryStore(), ke_key=kek(unhexlify(c["app_key"])), session_mark=None)
        out = None
    elif op == "keys":
        k = kek(unhexlify(c["app_key"]))
        app, nwk = group_keys(k, unhexlify(c["enc"]), c["addr"])
        out = {"kek": hexlify(k).decode(), "app": hexlify(app).decode(), "nwk": hexlify(nwk).decode()}
    elif op == "time":
        Board.now += c["advance"]
        out = f.clock.gps_now()
    elif op == "down":
        ok = f.handle(c["port"], unhexlify(c["payload"]))
        q = [[p, hexlify(a).decode()] for p, a in f.queue]
        f.queue = []
        out = {"ok": ok, "answers": q}
    elif op == "take":
        out = [[p, hexlify(a).decode()] for p, a in f.take()]
    elif op == "state":
        out = {"gps": f.clock.gps_now(), "synced": f.clock.synced, "next": f.next_session(),
               "period_s": f.clock.period_s(), "due": f.clock.due()}
    elif op == "frame":
        g = f.multicast.group(c["gid"])
        fr = g.framer
        raw = unhexlify(c["phy"])
        v = fr.parse_downlink(raw, len(raw), g.last_fcnt, 250)
        acc = v == frames.OK and g.accept(fr.fcnt)
        out = {"verdict": frames.VERDICTS[v], "accepted": acc, "fcnt": fr.fcnt, "port": fr.port,
               "payload": hexlify(fr.rx[fr.payload_off:fr.payload_off + fr.payload_len]).decode()}
    print(json.dumps(out))
"""

APP_KEY = bytes.fromhex("6a1c0e4f8b2d93a57c40e1d2b3f48596")
MC_KEY = bytes.fromhex("ffeeddccbbaa99887766554433221100")
T0_GPS = 1796655600 - 315964800 + 18


@pytest.fixture(params=["64bit", "32bit"])
def interpreter(request):
    """Both interpreters: on 32 bits, as on an ESP32, GPS times (over 2^30) are no small ints."""
    if request.param == "32bit":
        import mp32support

        return mp32support.require()
    return micropython_path()


def firmware(tmp_path, steps, interpreter=None):
    script = tmp_path / "fuota_fw.py"
    script.write_text("import sys\nsys.path.insert(0, %r)\nROM = %r\n" % (str(firmware_dir()), str(ROM)) + FIRMWARE)
    p = subprocess.run([interpreter or micropython_path(), str(script)],
                       input="\n".join(json.dumps(s) for s in steps) + "\n", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr + p.stdout
    return [json.loads(line) for line in p.stdout.splitlines()]


def spec_keys(gen_app_key, mc_key, mc_addr):
    """TS005 §4.3 (LoRaWAN 1.0.x) written out with cryptography's AES."""
    root = ecb(gen_app_key, bytes(16))                 # 0x00 | pad16
    kek = ecb(root, bytes(16))                         # 0x00 | pad16
    enc = ecb(kek, mc_key, decrypt=True)               # what the server sends
    a = struct.pack("<I", mc_addr)
    return kek, enc, ecb(mc_key, b"\x01" + a + bytes(11)), ecb(mc_key, b"\x02" + a + bytes(11))


def test_key_derivation_matches_the_spec_formulas(tmp_path, interpreter):
    rng = random.Random(14)
    cases = []
    for _ in range(6):
        gak, mck, addr = rng.randbytes(16), rng.randbytes(16), rng.getrandbits(32)
        cases.append((gak, mck, addr, spec_keys(gak, mck, addr)))
    got = firmware(tmp_path, [{"op": "keys", "app_key": g.hex(), "enc": k[1].hex(), "addr": a}
                              for g, _, a, k in cases], interpreter)
    for (gak, mck, addr, (kek, enc, app, nwk)), fw in zip(cases, got):
        assert fw == {"kek": kek.hex(), "app": app.hex(), "nwk": nwk.hex()}
        # the host's side: the same keys, and McKey_encrypted as the spec says
        assert bytes(fmc.mc_ke_key(fmc.mc_root_key(gak))) == kek
        assert fmc.encrypt_mc_key(fmc.mc_ke_key(fmc.mc_root_key(gak)), mck) == enc
        assert tuple(bytes(k) for k in fmc.mc_session_keys(mck, addr)) == (app, nwk)
    # LoRaWAN 1.1's root key takes the AppKey with 0x20 (not used by this 1.0.x firmware)
    assert bytes(fmc.mc_root_key(APP_KEY, lorawan_11=True)) == ecb(APP_KEY, b"\x20" + bytes(15))


def test_group_setup_status_delete_and_class_c_answers(tmp_path, interpreter):
    g = fmc.Group(2, 0x01FF00A0, MC_KEY, fcnt=7, max_fcnt=100)
    start = T0_GPS + 600
    steps = [
        {"op": "new", "app_key": APP_KEY.hex()},
        {"op": "down", "port": 200, "payload": (fmc.package_version_req() + fmc.group_status_req()).hex()},
        {"op": "down", "port": 200, "payload": g.setup_req(APP_KEY).hex()},
        {"op": "down", "port": 200, "payload": (fmc.group_status_req(0x0F) + fmc.group_status_req(0x01)).hex()},
        {"op": "down", "port": 200, "payload": fmc.class_c_session_req(2, start, 5, 869_525_000, 5).hex()},
        {"op": "state"},
        # an undefined group, a frequency outside EU868 and a DR beyond the plan: three error bits, no session
        {"op": "down", "port": 200, "payload": fmc.class_c_session_req(3, start, 5, 869_525_000, 5).hex()
         + bytes([4, 2]).hex() + struct.pack("<IB", start, 5).hex() + (9_150_000).to_bytes(3, "little").hex() + "09"},
        {"op": "down", "port": 200, "payload": (fmc.group_delete_req(3) + fmc.group_delete_req(2)).hex()},
        {"op": "state"},
        {"op": "down", "port": 200, "payload": fmc.group_status_req().hex()},
        # an unknown command (class B: not on this node) ends the frame; what came before is answered
        {"op": "down", "port": 200, "payload": (fmc.group_status_req() + bytes([5, 0, 1]) + fmc.package_version_req()).hex()},
        {"op": "down", "port": 200, "payload": "0201"},  # McGroupSetupReq cut short: nothing done
    ]
    fw = firmware(tmp_path, steps, interpreter)
    ans = [fmc.parse_uplink(bytes.fromhex(s["answers"][0][1])) if s["answers"] else []
           for s in fw if isinstance(s, dict) and "answers" in s]
    assert ans[0] == [{"name": "PackageVersionAns", "cid": 0, "package": 2, "version": 1},
                      {"name": "McGroupStatusAns", "cid": 1, "total": 0, "mask": 0, "groups": {}}]
    assert ans[1] == [{"name": "McGroupSetupAns", "cid": 2, "gid": 2, "id_error": False}]
    assert [a["groups"] for a in ans[2]] == [{2: 0x01FF00A0}, {}]
    assert ans[2][0]["total"] == ans[2][1]["total"] == 1
    assert ans[3] == [{"name": "McClassCSessionAns", "cid": 4, "gid": 2, "errors": [], "time_to_start": 600}]
    assert fw[5]["next"] == [2, start, start + 32, 869_525_000, 5]
    assert ans[4][0]["errors"] == ["group_undefined"]
    assert ans[4][1] == {"name": "McClassCSessionAns", "cid": 4, "gid": 2,
                         "errors": ["freq_error", "dr_error"]}
    assert [(a["gid"], a["undefined"]) for a in ans[5]] == [(3, True), (2, False)]
    assert fw[8]["next"] is None  # deleting the group ended its session
    assert ans[6][0]["total"] == 0
    assert [a["name"] for a in ans[7]] == ["McGroupStatusAns"]
    assert ans[8] == []


def test_unanswered_clock_requests_back_off_to_the_period(tmp_path, interpreter):
    # a network without TS003: 2048 s, then 4096 s, 8192 s, then every 128 * 2^7 s (the default period)
    steps = [{"op": "new", "app_key": APP_KEY.hex()}, {"op": "take"}]
    for wait in (2048, 4096, 8192, 16384, 16384):
        steps += [{"op": "time", "advance": wait - 1}, {"op": "take"}, {"op": "time", "advance": 1}, {"op": "take"}]
    fw = firmware(tmp_path, steps, interpreter)
    takes = [len(t) for t in fw[1:] if isinstance(t, list)]
    assert takes == [1] + [0, 1] * 5


def test_clock_sync_token_correction_periodicity_and_forced_resync(tmp_path, interpreter):
    steps = [
        {"op": "new", "app_key": APP_KEY.hex()},
        {"op": "take"},                                                          # 1: first AppTimeReq
        {"op": "down", "port": 202, "payload": fclock.app_time_ans(500, 3).hex()},  # wrong token: ignored
        {"op": "state"},                                                         # 3
        {"op": "down", "port": 202, "payload": fclock.app_time_ans(-75, 0).hex()},  # 4: applied
        {"op": "state"},                                                         # 5
        {"op": "take"},                                                          # 6: nothing due
        {"op": "down", "port": 202, "payload": (fclock.periodicity_req(2) + fclock.package_version_req()).hex()},
        {"op": "time", "advance": 513},                                          # 8: past 128 * 2^2 s
        {"op": "take"},                                                          # 9: due again, token 1
        {"op": "down", "port": 202, "payload": fclock.force_resync_req(2).hex()},  # 10: no answer
        {"op": "take"},                                                          # 11
        {"op": "take"},                                                          # 12
        {"op": "take"},                                                          # 13: the two were sent
        {"op": "down", "port": 202, "payload": fclock.app_time_ans(10, 1).hex() + "01"},  # 14: trailing cut
        {"op": "state"},                                                         # 15
    ]
    fw = firmware(tmp_path, steps, interpreter)
    [[port, req]] = fw[1]
    [r] = fclock.parse_uplink(bytes.fromhex(req))
    assert port == 202 and r["name"] == "AppTimeReq" and r["token"] == 0 and r["ans_required"]
    assert r["device_time"] == T0_GPS
    assert fw[3]["gps"] == T0_GPS and fw[3]["synced"] is False
    assert fw[5]["gps"] == T0_GPS - 75 and fw[5]["synced"] is True
    assert fw[6] == []
    per = [fclock.parse_uplink(bytes.fromhex(a)) for _, a in fw[7]["answers"]]
    assert per == [[{"name": "DeviceAppTimePeriodicityAns", "cid": 2, "not_supported": False,
                     "device_time": T0_GPS - 75},
                    {"name": "PackageVersionAns", "cid": 0, "package": 1, "version": 1}]]
    [r] = fclock.parse_uplink(bytes.fromhex(fw[9][0][1]))
    assert r["token"] == 1 and r["ans_required"] is False and r["device_time"] == T0_GPS - 75 + 513
    assert fw[10] == {"ok": True, "answers": []}
    forced = [fclock.parse_uplink(bytes.fromhex(t[0][1]))[0] for t in fw[11:13]]
    assert all(r["ans_required"] and r["token"] == 1 for r in forced) and fw[13] == []
    assert fw[15]["gps"] == T0_GPS - 75 + 513 + 10


def test_multicast_frames_open_with_the_group_keys_in_its_counter_range(tmp_path, interpreter):
    g = fmc.Group(0, 0x01FF0077, MC_KEY, fcnt=10, max_fcnt=12)
    setup = g.setup_req(APP_KEY)
    frames = [g.frame(201, bytes([8, 1, 0]) + bytes(range(i, i + 20))) for i in range(3)]  # fcnt 10, 11, 12
    _, _, app_s, nwk_s = spec_keys(APP_KEY, MC_KEY, 0x01FF0077)
    # the host's frame, checked by hand: MIC over B0 | msg with McNwkSKey, FRMPayload under McAppSKey
    phy = frames[0]
    assert aes_cmac(nwk_s, bytes([0x49, 0, 0, 0, 0, 1]) + struct.pack("<IIBB", 0x01FF0077, 10, 0, len(phy) - 4)
                    + phy[:-4])[:4] == phy[-4:]
    assert frm_crypt(app_s, 0x01FF0077, 10, 1, phy[9:-4]) == bytes([8, 1, 0]) + bytes(range(20))
    other = fmc.Group(0, 0x01FF0077, bytes(16), fcnt=13).frame(201, b"\x08\x01")  # wrong McKey
    too_far = fmc.Group(0, 0x01FF0077, MC_KEY, fcnt=13).frame(201, b"\x08\x01")    # beyond maxMcFCount
    steps = [{"op": "new", "app_key": APP_KEY.hex()},
             {"op": "down", "port": 200, "payload": setup.hex()},
             {"op": "frame", "gid": 0, "phy": frames[1].hex()},
             {"op": "frame", "gid": 0, "phy": frames[1].hex()},   # replayed
             {"op": "frame", "gid": 0, "phy": frames[0].hex()},   # older
             {"op": "frame", "gid": 0, "phy": other.hex()},
             {"op": "frame", "gid": 0, "phy": too_far.hex()},
             {"op": "frame", "gid": 0, "phy": frames[2].hex()}]
    fw = firmware(tmp_path, steps, interpreter)
    assert fw[2] == {"verdict": "ok", "accepted": True, "fcnt": 11, "port": 201,
                     "payload": (bytes([8, 1, 0]) + bytes(range(1, 21))).hex()}
    assert [s["verdict"] for s in fw[3:7]] == ["replay", "replay", "bad_mic", "ok"]
    assert fw[6]["accepted"] is False
    assert fw[7]["accepted"] is True and fw[7]["fcnt"] == 12


def test_host_refuses_bad_requests_and_malformed_answers():
    with pytest.raises(UsageError, match="McGroupID"):
        fmc.group_delete_req(4)
    with pytest.raises(UsageError, match="EU868"):
        fmc.class_c_session_req(0, 0, 4, 915_000_000, 5)
    with pytest.raises(UsageError, match="SessionTimeOut"):
        fmc.class_c_session_req(0, 0, 16, 869_525_000, 5)
    with pytest.raises(UsageError, match="Period"):
        fclock.periodicity_req(16)
    with pytest.raises(LoRaWANFrameError, match="cut short"):
        fmc.parse_uplink(bytes([1, 0x13, 0, 1, 2]))
    with pytest.raises(LoRaWANFrameError, match="unknown"):
        fclock.parse_uplink(bytes([9]))
    assert fclock.rxpk_gps_time({"time": "1980-01-06T00:00:00.000000Z"}) == 18
