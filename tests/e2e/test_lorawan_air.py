"""LoRaWAN end to end on virtual boards: the firmware's class A MAC and radio driver (SX1262, SX1276) on a
virtual board, its frames through the chip model and the simulated air (Semtech packet forwarder v2 over
UDP) to the test network server (lab.netserver), and back. Checked with the host frame library and,
independently, with `cryptography`'s AES-CMAC. Counters persist in RTC memory and flash
(bysans.lorawan.store) through deep sleeps and power cuts, and no value is ever used twice."""

import struct
import time

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms

from lab.fuota_air import PRELUDE, events, mpy_files
from lab.netserver import NetworkServer
from lab.serialconsole import Console
from provisioning.deploy import deploy
from provisioning.session import Session

APP_KEY = bytes.fromhex("8f1c4ad2e6b0937c5a2e41d0b7c3f619")
DEV_EUI = bytes.fromhex("70b3d57ed005e001")
JOIN_EUI = bytes.fromhex("70b3d57ed00000b1")
SPEED = 10

# The node's side, written to the board as /lwtest.py. Each run() builds the radio, the store and the MAC
# afresh, as the app does after every wake, and prints one JSON line per event.
NODE = PRELUDE + f"""
st = PersistentStore(b)
m = mac.ClassA(from_board(b), b, st, dev_eui={DEV_EUI!r}, join_eui={JOIN_EUI!r}, app_key={APP_KEY!r})


def start():
    out(ev="start", cause=b.reset_cause(), source=st.source, joined=m.joined, fcnt=m.fcnt_up,
        dn=st.get("dn", 0))


def join():
    _free(m.join)
    out(ev="joined", addr=m.dev_addr, dn=st.get("dn"))


def up(n, tag):
    for i in range(n):
        payload = bytes((tag, i, 0xB7, 0x5A))
        fcnt = m.fcnt_up
        dl = _free(lambda: m.send(2, payload))
        out(ev="up", fcnt=fcnt, payload=payload.hex(),
            dl=None if dl is None else {{"port": dl.port, "payload": dl.payload.hex(), "fcnt": dl.fcnt}})
    out(ev="stats", **{{k: v for k, v in m.stats.items() if v}})


def rejoin():
    m.forget()
    join()


def sleep(ms):
    m.suspend()
    b.deepsleep(ms)
"""


def deployed(make_board, ns, board_name, tmp):
    board = make_board(board=board_name, speed=SPEED, forwarder=ns.address)
    files = {**mpy_files(tmp, ("hal", "lorawan", "radio")), "/lwtest.py": NODE.encode()}
    with Session(board.port) as s:
        deploy(s, files)
    return board


def run(board, code, timeout=90):
    c = Console(board.port, timeout=timeout)
    try:
        c.raw_repl()
        return events(c.exec("import lwtest\n" + code, timeout=timeout))
    finally:
        c.close()


def wait_state(board, pred, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        st = board.status()
        if pred(st):
            return st
        assert time.monotonic() < deadline, f"board state: {st['state']}, {st['reset_cause']}"
        time.sleep(0.05)


def independent_mic_ok(phy, nwk_skey, fcnt):
    # B0 | msg under AES-CMAC (LoRaWAN 1.0.x §4.4), written here without the frame library
    dev_addr = struct.unpack_from("<I", phy, 1)[0]
    msg = phy[:-4]
    b0 = struct.pack("<BIBIIBB", 0x49, 0, 0, dev_addr, fcnt, 0, len(msg))
    c = cmac.CMAC(algorithms.AES(bytes(nwk_skey)))
    c.update(b0 + msg)
    return c.finalize()[:4] == phy[-4:]


@pytest.fixture
def ns():
    with NetworkServer() as server:
        server.add_device(DEV_EUI, JOIN_EUI, APP_KEY)
        yield server


def test_join_20_uplinks_3_downlinks_and_counters_through_sleep_and_power_cuts(make_board, ns, tmp_path):
    board = deployed(make_board, ns, "virtual", tmp_path)
    dev = ns.devices[DEV_EUI]
    # three downlinks wait for the first uplinks: a MAC command in FOpts (DevStatusReq), an application
    # command on FPort 10, and a MAC command on FPort 0 sent in RX2
    ns.queue(DEV_EUI, mac=b"\x06")
    ns.queue(DEV_EUI, fport=10, payload=b"\x01\x02\x03")
    ns.queue(DEV_EUI, fport=0, mac=b"\x06", rx2=True)

    ev = run(board, "lwtest.start()\nlwtest.join()\nlwtest.up(8, 0)")
    assert ev[0]["joined"] is False and ev[0]["dn"] == 0
    assert ev[1]["ev"] == "joined" and ev[1]["addr"] == ns.joins[0]["dev_addr"]
    ups = [e for e in ev if e["ev"] == "up"]
    got = [e["dl"] for e in ups if e["dl"]]
    assert got[0] == {"port": None, "payload": "", "fcnt": 0}
    assert got[1] == {"port": 10, "payload": "010203", "fcnt": 1}
    assert got[2] == {"port": 0, "payload": "", "fcnt": 2}
    board_ups = ups

    # five deep sleeps: the session and counters come back from RTC memory
    for k in range(5):
        run_sleep = Console(board.port)
        try:
            run_sleep.raw_repl()
            run_sleep.write(b"import lwtest\nlwtest.sleep(20000)\x04")
            run_sleep.read_until(b"DEEPSLEEP_RESET", timeout=30)
        finally:
            run_sleep.close()
        wait_state(board, lambda st: st["booted"] and st["reset_cause"] == "deepsleep")
        ev = run(board, f"lwtest.start()\nlwtest.up(2, {k + 1})")
        assert ev[0]["cause"] == "deepsleep" and ev[0]["source"] == "rtc" and ev[0]["joined"]
        board_ups += [e for e in ev if e["ev"] == "up"]

    # two power cuts: RTC memory is gone; the flash copy carries the session on
    for k in range(2):
        board.powercut()
        wait_state(board, lambda st: st["booted"] and st["reset_cause"] == "power_on")
        ev = run(board, f"lwtest.start()\nlwtest.up(1, {k + 6})")
        assert ev[0]["cause"] == "power_on" and ev[0]["source"] == "flash" and ev[0]["joined"]
        board_ups += [e for e in ev if e["ev"] == "up"]

    # a rejoin after all that takes a fresh DevNonce
    ev = run(board, "lwtest.rejoin()")
    assert ev[-1]["ev"] == "joined"
    ns.wait_for(lambda: len(ns.joins) == 2, 10, "the rejoin")

    assert ns.problems == []
    assert [j["dev_nonce"] for j in ns.joins] == [0, 1]
    first = dev.sessions[0]
    server_ups = [u for u in ns.uplinks if u.dev_addr == first.dev_addr]
    assert len(board_ups) == len(server_ups) == 20
    fcnts = [u.fcnt for u in server_ups]
    assert fcnts == sorted(set(fcnts)), f"a frame counter was reused or went back: {fcnts}"
    assert fcnts == [e["fcnt"] for e in board_ups]
    assert [u.payload.hex() for u in server_ups] == [e["payload"] for e in board_ups]
    assert all(u.fport == 2 and independent_mic_ok(u.phy, first.nwk_skey, u.fcnt) for u in server_ups)
    # the answers to both DevStatusReq rode the next uplinks
    answers = [c for u in server_ups for c in u.mac_commands if c["name"] == "DevStatusAns"]
    assert len(answers) == 2
    # every downlink was acknowledged by the gateway as sent
    ns.wait_for(lambda: len(ns.tx_acks) == len(ns.downlinks), 5, "TX_ACKs")
    assert {a["error"] for a in ns.tx_acks} == {"NONE"}
    assert ns.downlinks[3]["txpk"]["freq"] == 869.525 and ns.downlinks[3]["txpk"]["datr"] == "SF12BW125"


def test_sx1276_board_joins_and_gets_a_downlink(make_board, ns, tmp_path):
    board = deployed(make_board, ns, "virtual_sx1276", tmp_path)
    ns.queue(DEV_EUI, fport=7, payload=b"\xca\xfe")
    ev = run(board, "lwtest.start()\nlwtest.join()\nlwtest.up(2, 9)")
    ups = [e for e in ev if e["ev"] == "up"]
    assert ups[0]["dl"] == {"port": 7, "payload": "cafe", "fcnt": 0} and ups[1]["dl"] is None
    assert ns.problems == [] and [u.payload.hex() for u in ns.uplinks] == [e["payload"] for e in ups]
    assert ns.uplinks[0].rxpk["datr"] == "SF7BW125" and ns.uplinks[0].gateway != ""
