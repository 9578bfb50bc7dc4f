"""The firmware's LoRaWAN frames (run under the MicroPython unix port) checked with cryptography's AES and
CMAC directly, independent of both the firmware and fleet.lorawan; and frames from fleet.lorawan (the
network server's side) taken apart by the firmware."""

import json
import random
import subprocess

import pytest

from lorawan_reference import aes_cmac as _cmac, ecb as _ecb, frm_crypt as _keystream_xor
from fleet.lorawan import JoinAccept, MType, build_data_frame, build_join_accept
from fleet.resources import firmware_dir, micropython_path

BUILD = r"""
import sys, json
from binascii import hexlify, unhexlify
from bysans.lorawan import crypto, frames, maccmd
for line in sys.stdin:
    c = json.loads(line)
    if c["kind"] == "up":
        fr = frames.Framer(c["addr"], unhexlify(c["nwk"]), unhexlify(c["app"]))
        ans = None
        if c["fopts"]:
            ans = maccmd.Answers()
            o = unhexlify(c["fopts"])
            for b in o:
                ans.add(b)
        n = fr.build_uplink(c["fcnt"], c["port"], unhexlify(c["payload"]), c["confirmed"], c["fctrl"], ans)
        out = hexlify(fr.tx_frame(n)).decode()
    elif c["kind"] == "join":
        buf = bytearray(23)
        frames.build_join_request(buf, unhexlify(c["join_eui"]), unhexlify(c["dev_eui"]), c["nonce"],
                                  crypto.Cmac(unhexlify(c["appkey"])))
        out = hexlify(buf).decode()
    elif c["kind"] == "down":
        fr = frames.Framer(c["addr"], unhexlify(c["nwk"]), unhexlify(c["app"]))
        f = unhexlify(c["frame"])
        v = fr.parse_downlink(f, len(f), c["last"], 250)
        out = {"verdict": frames.VERDICTS[v], "fcnt": fr.fcnt, "port": fr.port,
               "payload": hexlify(fr.rx[fr.payload_off:fr.payload_off + fr.payload_len]).decode(),
               "fopts": hexlify(fr.rx[fr.fopts_off:fr.fopts_off + fr.fopts_len]).decode()}
    elif c["kind"] == "accept":
        p = crypto.decrypt_join_accept(unhexlify(c["appkey"]), unhexlify(c["frame"]))
        nwk, app = crypto.derive_session_keys(unhexlify(c["appkey"]), p[1:4], p[4:7], c["nonce"])
        out = {"plain": hexlify(p).decode(), "nwk": hexlify(nwk).decode(), "app": hexlify(app).decode()}
    print(json.dumps(out))
"""


def _run_firmware(cases, tmp_path):
    script = tmp_path / "xcheck.py"
    script.write_text("import sys\nsys.path.insert(0, %r)\n" % str(firmware_dir()) + BUILD)
    p = subprocess.run([micropython_path(), str(script)], input="\n".join(json.dumps(c) for c in cases) + "\n",
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    return [json.loads(line) for line in p.stdout.splitlines()]


def test_firmware_uplinks_check_out_with_cryptography(tmp_path):
    rnd = random.Random(20240604)
    cases = []
    for i in range(150):
        nopts = rnd.choice([0, 0, 0, 1, 3, 15])
        plen = rnd.choice([0, 1, 15, 16, 17, 24, 51, 100, 222])
        cases.append({"kind": "up", "nwk": rnd.randbytes(16).hex(), "app": rnd.randbytes(16).hex(),
                      "addr": rnd.getrandbits(32), "fcnt": rnd.choice([0, 1, 65535, 65536, rnd.getrandbits(32)]),
                      "port": rnd.randint(1, 223), "payload": rnd.randbytes(plen).hex(),
                      "confirmed": rnd.random() < 0.5, "fctrl": rnd.choice([0, 0x80, 0xA0, 0xC0]),
                      "fopts": rnd.randbytes(nopts).hex()})
    for c, got in zip(cases, _run_firmware(cases, tmp_path), strict=True):
        frame = bytes.fromhex(got)
        nwk, app = bytes.fromhex(c["nwk"]), bytes.fromhex(c["app"])
        payload, fopts = bytes.fromhex(c["payload"]), bytes.fromhex(c["fopts"])
        addr, fcnt = c["addr"], c["fcnt"]
        msg = bytes([(4 if c["confirmed"] else 2) << 5]) + addr.to_bytes(4, "little") \
            + bytes([c["fctrl"] | len(fopts)]) + (fcnt & 0xFFFF).to_bytes(2, "little") + fopts \
            + bytes([c["port"]]) + _keystream_xor(app, addr, fcnt, 0, payload)
        b0 = bytes([0x49, 0, 0, 0, 0, 0]) + addr.to_bytes(4, "little") + fcnt.to_bytes(4, "little") \
            + bytes([0, len(msg)])
        assert frame == msg + _cmac(nwk, b0 + msg)[:4], c


def test_firmware_join_requests_check_out_with_cryptography(tmp_path):
    rnd = random.Random(7)
    cases = [{"kind": "join", "appkey": rnd.randbytes(16).hex(), "join_eui": rnd.randbytes(8).hex(),
              "dev_eui": rnd.randbytes(8).hex(), "nonce": rnd.getrandbits(16)} for _ in range(30)]
    for c, got in zip(cases, _run_firmware(cases, tmp_path), strict=True):
        frame = bytes.fromhex(got)
        body = b"\x00" + bytes.fromhex(c["join_eui"])[::-1] + bytes.fromhex(c["dev_eui"])[::-1] \
            + c["nonce"].to_bytes(2, "little")
        assert frame == body + _cmac(bytes.fromhex(c["appkey"]), body)[:4]


def test_firmware_reads_what_the_host_network_server_builds(tmp_path):
    rnd = random.Random(99)
    cases, want = [], []
    for _ in range(60):
        nwk, app = rnd.randbytes(16), rnd.randbytes(16)
        addr, fcnt = rnd.getrandbits(32), rnd.choice([0, 5, 65535, 65536 + 3, rnd.getrandbits(31)])
        port = rnd.choice([None, 1, 10, 223])
        payload = rnd.randbytes(rnd.randint(0, 60)) if port else b""
        fopts = rnd.choice([b"", b"\x06", b"\x02\x10\x01"])
        frame = build_data_frame(mtype=rnd.choice([MType.UNCONFIRMED_DOWN, MType.CONFIRMED_DOWN]), dev_addr=addr,
                                 fcnt=fcnt, fport=port, payload=payload, fopts=fopts, nwk_skey=nwk, app_skey=app)
        last = fcnt - 1 if fcnt else -1
        cases.append({"kind": "down", "nwk": nwk.hex(), "app": app.hex(), "addr": addr, "frame": frame.hex(),
                      "last": last})
        want.append({"verdict": "ok", "fcnt": fcnt, "port": -1 if port is None else port,
                     "payload": payload.hex(), "fopts": fopts.hex()})
        # the same frame again is a replay once its counter was accepted
        cases.append(dict(cases[-1], last=fcnt))
        want.append("replay")
    for c, w, got in zip(cases, want, _run_firmware(cases, tmp_path), strict=True):
        if w == "replay":
            assert got["verdict"] == "replay"
        else:
            assert got == w, c


@pytest.mark.parametrize("with_cflist", [False, True])
def test_firmware_opens_host_join_accepts(tmp_path, with_cflist):
    rnd = random.Random(5 + with_cflist)
    cases, accepts = [], []
    for _ in range(20):
        appkey = rnd.randbytes(16)
        ja = JoinAccept(join_nonce=rnd.getrandbits(24), net_id=rnd.getrandbits(24), dev_addr=rnd.getrandbits(32),
                        rx1_dr_offset=rnd.randint(0, 5), rx2_dr=rnd.randint(0, 6), rx_delay=rnd.randint(0, 15),
                        cflist=rnd.randbytes(15) + b"\x00" if with_cflist else None)
        nonce = rnd.getrandbits(16)
        cases.append({"kind": "accept", "appkey": appkey.hex(), "frame": build_join_accept(ja, appkey).hex(),
                      "nonce": nonce})
        accepts.append((appkey, ja, nonce))
    for (appkey, ja, nonce), got in zip(accepts, _run_firmware(cases, tmp_path), strict=True):
        body = ja.plain_body()
        assert bytes.fromhex(got["plain"]) == body + _cmac(appkey, body)[:4]
        tail = ja.join_nonce.to_bytes(3, "little") + ja.net_id.to_bytes(3, "little") + nonce.to_bytes(2, "little")
        assert got["nwk"] == _ecb(appkey, b"\x01" + tail + bytes(7)).hex()
        assert got["app"] == _ecb(appkey, b"\x02" + tail + bytes(7)).hex()
