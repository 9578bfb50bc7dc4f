# FUOTA in the node's LoRaWAN sink (bysans.sink, bysans.fuota) over the fake radio and network
# (lorawan_fakes.py): a downlink on a FUOTA port during a cycle is only kept; the next wake's start handles
# it, answers on the same FPort (and asks the time, TS003), answers a class C session announced meanwhile in
# the same wake, shortens the sleep to wake before the session, and at that wake listens on the session's
# frequency and data rate from its start to its timeout, no longer, hearing the multicast frame inside.
# The key derivation itself is checked against cryptography in tests/host/test_fuota_setup_xcheck.py.
# mp: -X heapsize=512K
import os
import struct
from binascii import unhexlify

import cryptolib

from bysans import sink
from bysans.fuota.dispatch import kek
from bysans.fuota.multicast import group_keys
from bysans.lorawan.radio import MemoryStore
from lorawan_fakes import FakeClock, FakeNetwork, FakeRadio

KEY = unhexlify("2B7E151628AED2A6ABF7158809CF4F3C")
DEV = unhexlify("70B3D57ED0000001")
JOIN = unhexlify("70B3D57ED0000000")
MC_KEY = unhexlify("000102030405060708090a0b0c0d0e0f")
MC_ADDR = 0x01FF0042
BASE = 1796655600
GPS0 = BASE - 315964800 + 18
TMP = "/tmp/bysans_mp_fuota_"
FREQ = 869525000


class Board(FakeClock):
    def epoch_s(self):
        return BASE + self.t // 1000


def _clean():
    for n in ("dat", "dat.tmp", "in", "ses", "clk"):
        try:
            os.remove(TMP + n)
        except OSError:
            pass


def _world():
    clock = Board(1000)
    radio = FakeRadio(clock)
    net = FakeNetwork(KEY)
    net.attach(radio)
    store = MemoryStore()

    def make_sink():
        from bysans.lorawan import mac  # fuota_start drops the LoRaWAN modules: the MAC's errors must be theirs
        m = mac.ClassA(radio, clock, store, dev_eui=DEV, join_eui=JOIN, app_key=KEY)
        s = sink.LoRaWANSink(clock, (DEV, JOIN, KEY), mac=m, store=store)
        s.fuota_state, s.fuota_inbox, s.fuota_session_file, s.fuota_clock_file = (
            TMP + "dat", TMP + "in", TMP + "ses", TMP + "clk")
        return s
    return clock, radio, net, make_sink


def _gps(clock):
    return GPS0 + clock.t // 1000


def _ups(net, port):
    return [u[2] for u in net.uplinks if u[1] == port]


def test_fuota_downlinks_wait_for_the_next_wake_then_a_class_c_window():
    _clean()
    clock, radio, net, make_sink = _world()
    k = kek(KEY)
    enc = cryptolib.aes(k, 1).decrypt(MC_KEY)  # what a network server sends (TS005: aes128_decrypt)
    setup = bytes([2, 1]) + struct.pack("<I", MC_ADDR) + enc + struct.pack("<II", 5, 1000)

    # a cycle: the uplink's RX1 brings McGroupSetupReq; it is kept, nothing is answered yet
    s = make_sink()
    assert s.join()
    net.queue(net.downlink(port=200, payload=setup))
    s.send(1, b"\x01\x02")
    assert _ups(net, 200) == [] and s.downlinks == 0
    with open(TMP + "in", "rb") as f:
        assert f.read() == bytes((200, len(setup))) + setup
    assert s.fuota_due()

    # the next wake's start: answered on FPort 200, the time asked on 202; a session announced in the RX1
    # of the first answer is answered in the same wake
    clock.sleep_ms(600000)
    start = _gps(clock) + 120
    cc = bytes([4, 1]) + struct.pack("<IB", start, 2) + (FREQ // 100).to_bytes(3, "little") + bytes([5])
    net.queue(net.downlink(port=200, payload=cc))
    s = make_sink()
    assert s.fuota_start() == 0
    assert _ups(net, 200)[0] == b"\x02\x01"                  # McGroupSetupAns, group 1, no IDerror
    [req] = _ups(net, 202)
    asked = struct.unpack("<I", req[1:5])[0]  # AppTimeReq: DeviceTime, token 0 with AnsRequired (not synced)
    assert req[0] == 1 and req[5] == 0x10 and GPS0 + 601 <= asked <= _gps(clock), (asked, _gps(clock))
    ans = _ups(net, 200)[1]
    assert ans[:2] == b"\x04\x01" and 100 <= (ans[2] | ans[3] << 8 | ans[4] << 16) <= 120
    assert not s.fuota_due() and s.mac is None  # the MAC is put away for the cycle
    # the sleep after this wake ends 5 s before the session
    s = make_sink()
    w = s.fuota_run(900000)
    assert abs(w - ((start - _gps(clock)) * 1000 - 5000)) <= 1000, w

    # the session wake: frames before, inside and after the 4 s window; only the one inside is heard
    clock.sleep_ms(w)
    app_s, nwk_s = group_keys(k, enc, MC_ADDR)
    t0 = (start - GPS0) * 1000
    saved = net.app
    net.app = app_s
    for at, fcnt, body in ((t0 - 2000, 5, b"early"), (t0 + 1500, 6, b"inside"), (t0 + 6000, 7, b"late")):
        radio.air.append((at, FREQ, 7, 125, net.downlink(port=2, payload=body, fcnt=fcnt, nwk=nwk_s,
                                                          dev_addr=MC_ADDR)))
    net.app = saved
    radio.listens.clear()
    s = make_sink()
    assert s.fuota_due()
    got = s.fuota_start()
    assert got == 1 and s.mc_frames == 1, (got, s.problem)
    mc = [x for x in radio.listens if x[1] == FREQ and x[2] == 7]
    assert mc and mc[0][0] >= t0 and max(x[0] + x[4] for x in mc) <= t0 + 4000 + 1000
    assert len(radio.air) == 2  # "early" and "late" were never picked up
    assert s.session_ms() == -1 and not s.fuota_due()
    _clean()


def test_a_wake_frees_the_flash_of_a_fragmentation_session_past_its_timeout():
    # a session set up over the air that never completes: the wake after its timeout deletes its files,
    # before anything else; a wake without such files does not load the fragmentation package at all
    import sys

    from bysans.fuota import frag_spec as fs
    from bysans.modules import drop

    _clean()
    clock, radio, net, make_sink = _world()
    d = TMP + "frag"
    s = make_sink()
    s.fuota_frag_dir = d
    assert s.join()
    clock.sleep_ms(60000)
    net.queue(net.downlink(port=201, payload=fs.pack_setup_req(0, 10, 20, 0)))
    s.send(1, b"\x01")
    clock.sleep_ms(600000)
    s = make_sink()
    s.fuota_frag_dir = d
    s.fuota_start()
    assert _ups(net, 201) == [bytes([fs.SETUP_CID, 0])], (s.problem, net.uplinks)  # the session is set up on the next wake
    names = sorted(os.listdir(d))
    assert names == ["frag.blk", "frag.log", "frag.ses"], names
    for wait_s, left in ((3600, names), (2 * 86400 - 3600, [])):  # the default lifetime: two days
        clock.sleep_ms(wait_s * 1000)
        s = make_sink()
        s.fuota_frag_dir = d
        s.fuota_start()
        assert sorted(os.listdir(d)) == left, (wait_s, os.listdir(d))
        assert "bysans.fuota.frag" not in sys.modules  # dropped again
    drop("bysans.fuota")
    real_import = __import__  # and with no session files the package is not even imported
    seen = []

    def spy(name, *a):
        seen.append(name)
        return real_import(name, *a)
    import builtins
    builtins.__import__ = spy
    try:
        s = make_sink()
        s.fuota_frag_dir = d
        assert not s.fuota_expire()
    finally:
        builtins.__import__ = real_import
    assert not [n for n in seen if "fuota" in n], seen
    os.rmdir(d)
    _clean()


def test_a_multicast_status_request_is_answered_after_a_random_delay_within_block_ack_delay():
    # TS004 3.2: a FragSessionStatusReq heard in a class C session is answered after a random delay within
    # 2^(BlockAckDelay+4) s (here 16 s), from the board's random source; the wake waits it out and sends it
    from bysans.fuota import frag_spec as fs

    _clean()
    clock, radio, net, make_sink = _world()
    d = TMP + "frag2"
    k = kek(KEY)
    enc = cryptolib.aes(k, 1).decrypt(MC_KEY)
    s = make_sink()
    assert s.join()
    for port, body in ((200, bytes([2, 1]) + struct.pack("<I", MC_ADDR) + enc + struct.pack("<II", 0, 1000)),
                       (201, fs.pack_setup_req(0, 10, 20, 0, mc_group_mask=0b0010))):
        clock.sleep_ms(60000)
        net.queue(net.downlink(port=port, payload=body))
        s.send(1, b"\x01")
    clock.sleep_ms(600000)
    start = _gps(clock) + 120
    net.queue(net.downlink(port=200, payload=bytes([4, 1]) + struct.pack("<IB", start, 2)
                           + (FREQ // 100).to_bytes(3, "little") + bytes([5])))
    s = make_sink()
    s.fuota_frag_dir = d
    s.fuota_start()
    assert bytes([fs.SETUP_CID, 0]) in _ups(net, 201), net.uplinks
    clock.sleep_ms(s.fuota_run(900000))
    app_s, nwk_s = group_keys(k, enc, MC_ADDR)
    t_req = (start - GPS0) * 1000 + 1500  # inside the 4 s window
    saved = net.app
    net.app = app_s
    radio.air.append((t_req, FREQ, 7, 125, net.downlink(port=201, payload=fs.pack_status_req(0, True), fcnt=3,
                                                         nwk=nwk_s, dev_addr=MC_ADDR)))
    net.app = saved
    before = len(radio.sent)
    s = make_sink()
    s.fuota_frag_dir = d
    assert s.fuota_start() == 1, s.problem
    sent = list(zip(radio.sent[before:], net.uplinks[-(len(radio.sent) - before):]))
    [(rec, up)] = [(r, u) for r, u in sent if u[1] == 201]
    assert up[2] == fs.pack_status_ans(0, 0, 10, 0)
    assert t_req <= rec[0] <= t_req + 16000 + 1000, (rec[0] - t_req)  # window, plus the second's rounding
    for n in ("frag.ses", "frag.blk", "frag.log"):
        os.remove(d + "/" + n)
    os.rmdir(d)
    _clean()
