"""FUOTA set-up end to end on a virtual board (docs/formats/fuota.md, "Clock sync", "Multicast setup"): the
firmware's class A MAC and its FUOTA dispatcher (bysans.fuota) over the simulated air to the lab network
server. The board's clock starts an hour wrong; AppTimeReq/AppTimeAns (TS003, FPort 202) set it right to the
gateway's time. The server sets up a multicast group (TS005, FPort 200: McKey encrypted under the board's
McKEKey), reads its status and announces a class C session; the board listens at the announced time,
frequency and data rate for 2^TimeOut s and gets the multicast frame sent inside that window, not those sent
just before it opens or just after it closes; and a train of full-size frames at a FUOTA plan's spacing,
every one of them (the radio stays in RX for the whole session, as a class C chip does). The frame is
checked with `cryptography` (not the frame library) under keys derived here from the spec's formulas. The
node script and its exchanges with the server: lab/fuota_air.py."""

import json
import struct
import time

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fleet.fuota import clock as fclock
from fleet.fuota import deploy as plan
from fleet.fuota import multicast as fmc
from lab.fuota_air import JOIN_EUI, Node, mpy_files, node_source
from lab.netserver import NetworkServer
from provisioning.deploy import deploy
from provisioning.session import Session

APP_KEY = bytes.fromhex("2b9c47d0e51f836a0c7e94b1d3a85f62")
DEV_EUI = bytes.fromhex("70b3d57ed005f014")
MC_KEY = bytes.fromhex("01b3c5d7e9f10213243546576879a8b9")
MC_ADDR = 0x01FF0A17
SKEW_S = -3600                 # the board's clock is an hour behind the network's
SPEED = 10
FREQ_HZ = 869_525_000
DR = 5
TIMEOUT = 5                    # the session lasts 2^5 = 32 s
TRAIN = 6                      # full-size frames at a FUOTA plan's spacing (DR5, the sub-band's duty cycle)


def aes(key, block, decrypt=False):
    c = Cipher(algorithms.AES(key), modes.ECB())
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(block) + x.finalize()


def expected_group_keys():
    # TS005 §4.3 for LoRaWAN 1.0.x, with cryptography's AES (GenAppKey = the AppKey on this firmware)
    root = aes(APP_KEY, bytes(16))
    kek = aes(root, bytes(16))
    addr = struct.pack("<I", MC_ADDR)
    return kek, aes(MC_KEY, b"\x01" + addr + bytes(11)), aes(MC_KEY, b"\x02" + addr + bytes(11))


def open_frame(phy, app_s, nwk_s):
    # unconfirmed downlink to McAddr: MIC with B0 (dir 1) and FRMPayload keystream, written out here
    assert phy[0] == 0x60 and struct.unpack_from("<I", phy, 1)[0] == MC_ADDR and phy[5] == 0
    fcnt = struct.unpack_from("<H", phy, 6)[0]
    msg = phy[:-4]
    c = cmac.CMAC(algorithms.AES(nwk_s))
    c.update(struct.pack("<BIBIIBB", 0x49, 0, 1, MC_ADDR, fcnt, 0, len(msg)) + msg)
    assert c.finalize()[:4] == phy[-4:]
    enc = phy[9:-4]
    ks = aes(app_s, b"".join(struct.pack("<BIBIIBB", 1, 0, 1, MC_ADDR, fcnt, 0, i + 1) for i in range(1)))
    return phy[8], bytes(a ^ b for a, b in zip(enc, ks))


@pytest.fixture
def ns():
    with NetworkServer() as server:
        server.add_device(DEV_EUI, JOIN_EUI, APP_KEY)
        yield server


def test_clock_sync_group_setup_and_a_class_c_window(make_board, ns, tmp_path):
    board = make_board(board="virtual", speed=SPEED, forwarder=ns.address)
    with Session(board.port) as s:
        deploy(s, {**mpy_files(tmp_path), "/fuotatest.py": node_source(DEV_EUI, APP_KEY, skew_s=SKEW_S).encode()})
    group = ns.add_group(1, mc_addr=MC_ADDR, mc_key=MC_KEY, fcnt=40)
    node = Node(board, ns, DEV_EUI)
    c = node.c
    try:
        # --- clock sync: the first AppTimeReq asks for an answer; the correction comes back in RX1
        clk = node.join_and_sync()
        assert clk["synced"] is True
        sync = ns.clock_syncs[-1]
        assert sync["token"] == 0 and abs(sync["correction"] - (-SKEW_S)) <= 2
        true_gps = node.gps_now()
        assert abs(clk["gps"] - true_gps) <= 3, (clk, true_gps)
        up = [u for u in ns.uplinks if u.fport == fclock.PORT]
        assert all(fclock.parse_uplink(u.payload)[0]["ans_required"] for u in up)  # not synced yet, or forced

        # --- group setup, status: McKey travels encrypted under this board's McKEKey
        kek, app_s, nwk_s = expected_group_keys()
        setup = group.setup_req(APP_KEY)
        assert setup[6:22] == aes(kek, MC_KEY, decrypt=True)

        def exchange(payload, name):
            node.exchange(fmc.PORT, payload, name)
            return [a for a in ns.mc_answers if a["name"] == name][-1]

        ans = exchange(setup, "McGroupSetupAns")
        assert (ans["gid"], ans["id_error"]) == (1, False)
        ans = exchange(fmc.group_status_req(0x0F), "McGroupStatusAns")
        assert ans["groups"] == {1: MC_ADDR} and ans["total"] == 1

        # --- a class C session announced 30 s (simulated) ahead
        start = int(node.gps_now()) + 30
        ans = exchange(fmc.class_c_session_req(1, start, TIMEOUT, FREQ_HZ, DR), "McClassCSessionAns")
        assert ans["errors"] == [] and 0 < ans["time_to_start"] <= 30

        node.start_session()
        line = c.read_until(b"\n").decode()
        sess = json.loads(line[line.index("@@") + 2:])
        assert sess["ev"] == "session" and sess["s"] == [1, start, start + (1 << TIMEOUT), FREQ_HZ, DR]
        end = start + (1 << TIMEOUT)

        def send_at(gps, payload):
            # handed to the gateway about 8 s (simulated) ahead: it takes frames at most 30 s ahead
            while node.gps_now() < gps - 8:
                time.sleep(0.05)
            return ns.send_multicast(group, 2, payload, at_gps=gps, freq_hz=FREQ_HZ, dr=DR)

        before = send_at(start - 3, b"early")
        inside = send_at(start + 3, b"inside")
        # then full-size frames as a FUOTA session sends them: one per time on air / duty cycle (~4 s)
        size = plan.fragment_size(DR) + 3
        spacing = plan.frame_toa_s(size - 3, DR) / plan.duty_cycle(FREQ_HZ)
        train = [bytes([k]) * size for k in range(TRAIN)]
        sent = [send_at(start + 3 + (k + 1) * spacing, p) for k, p in enumerate(train)]
        assert start + 3 + TRAIN * spacing + 1 < end
        after = send_at(end + 2, b"late")
        ev = node.session_events(60)
        tokens = {r[0]["token"] for r in (before, inside, after, *sent)}
        ns.wait_for(lambda: tokens <= {a["token"] for a in ns.tx_acks}, 5, "the gateway's TX_ACKs")
        assert {a["error"] for a in ns.tx_acks if a["token"] in tokens} == {"NONE"}  # all went on air
        frames = ev[0]
        assert frames["ev"] == "frames" and frames["n"] == 1 + TRAIN and frames["next"] is None
        assert [g[:2] for g in frames["got"]] == [[2, b"inside".hex()]] + [[2, p.hex()] for p in train]
        assert all(start <= g[2] <= end for g in frames["got"])
        assert before[0]["fcnt"] == 40 and inside[0]["fcnt"] == 41 and after[0]["fcnt"] == 42 + TRAIN
        # the frame the board got, opened with keys derived here: McAppSKey and McNwkSKey from McKey, McAddr
        import base64

        phy = base64.b64decode(inside[0]["txpk"]["data"])
        assert open_frame(phy, app_s, nwk_s) == (2, b"inside")
    finally:
        node.close()
