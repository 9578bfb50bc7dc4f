"""The radio drivers (firmware/bysans/radio, run here under CPython with `micropython.const` shimmed) against
the SX1262/SX1276 models through the hardware line protocol (hwbus), the simulated air (packet forwarder v2)
and the test network server; frames checked with the host frame library. No supervisor, a clock that moves
only when the driver waits: deterministic. The same drivers on a virtual board: tests/e2e/test_lorawan_air.py."""

import base64
import json
import socket
import sys
import time
import types

import pytest

from fleet import boards
from fleet.lorawan import decode, decode_join_accept
from fleet.lorawan.phy import JoinRequest, build_join_request
from fleet.lorawan.semtech_udp import parse_datr
from fleet.resources import firmware_dir
from fleet.sim.devices import build_buses
from fleet.sim.devices.air import PacketForwarder
from fleet.sim.hwbus import HardwareBus
from lab.netserver import NetworkServer

APP_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
DEV_EUI = bytes.fromhex("70b3d57ed0000001")
JOIN_EUI = bytes.fromhex("70b3d57ed00000aa")


@pytest.fixture(scope="module", autouse=True)
def firmware_on_path():
    shim = types.ModuleType("micropython")
    shim.const = lambda x: x
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = shim
    sys.path.insert(0, str(firmware_dir()))
    yield
    sys.path.remove(str(firmware_dir()))
    for name in [m for m in sys.modules if m == "bysans" or m.startswith("bysans.")]:
        del sys.modules[name]
    if saved is None:
        del sys.modules["micropython"]
    else:
        sys.modules["micropython"] = saved


class ManualClock:
    """The simulated clock and the board's clock at once; long waits give the server's thread a moment."""

    speed = 1

    def __init__(self):
        self.t = 1_700_000_000_000

    def now_ms(self):
        return self.t

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        if ms >= 50:
            time.sleep(0.05)
        self.t += max(ms, 1)


class World:
    def __init__(self, clock):
        self.clock = clock
        self.values = {}

    def get(self, name):
        return 0.0

    def subscribe(self, fn):
        pass


class BusPin:
    def __init__(self, bus, n):
        self.bus, self.n = bus, n

    def value(self, v=None):
        if v is None:
            return int(self.bus.handle(f"pin.r {self.n}").split()[1])
        assert self.bus.handle(f"pin.w {self.n} {1 if v else 0}") == "ok"


class BusSPI:
    def __init__(self, bus, bus_id):
        self.bus, self.id = bus, bus_id

    def _x(self, out):
        answer = self.bus.handle(f"spi.x {self.id} {bytes(out).hex()}")
        assert answer.startswith("ok"), answer
        return bytes.fromhex(answer[3:])

    def write(self, buf):
        self._x(buf)

    def write_readinto(self, out, buf):
        buf[:] = self._x(out)


class HostBoard:
    """What bysans.hal gives the radio factory, over the hardware line protocol."""

    def __init__(self, definition, forwarder, clock):
        self.definition = definition
        self.clock = clock
        self.buses = build_buses(definition, World(clock), {"clock": clock, "name": "t1", "forwarder": forwarder})
        self.hw = HardwareBus(clock=clock, buses=self.buses, actions=None)
        self.radio_model = self.buses.radio()

    def spi(self, bus_id):
        return BusSPI(self.hw, bus_id)

    def pin(self, n, mode="in", pull=None, value=None):
        p = BusPin(self.hw, n)
        if value is not None:
            p.value(value)
        return p

    def ticks_ms(self):
        return self.clock.ticks_ms()

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.clock.sleep_ms(ms)


@pytest.fixture
def ns():
    with NetworkServer() as server:
        server.add_device(DEV_EUI, JOIN_EUI, APP_KEY)
        yield server


def make(board_name, ns, clock=None):
    from bysans.radio import from_board

    clock = clock or ManualClock()
    hb = HostBoard(boards.load(board_name), ("127.0.0.1", ns.port), clock)
    return hb, from_board(hb), clock


@pytest.mark.parametrize("board_name", ["virtual", "virtual_sx1276"])
def test_join_request_out_and_join_accept_back_through_the_air(board_name, ns):
    hb, radio, clock = make(board_name, ns)
    model = hb.radio_model
    jr = build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=7, app_key=APP_KEY)
    radio.send(jr, 868_300_000, 7, 125, 14)
    end = clock.t
    ns.wait_for(lambda: ns.joins, 5, "the join-request")
    # what the server got, as a gateway reports it
    rxpk = model.air.uplinks[-1]
    assert parse_datr(rxpk["datr"]) == (7, 125) and rxpk["freq"] == 868.3 and rxpk["stat"] == 1
    assert rxpk["codr"] == "4/5" and rxpk["size"] == 23 and base64.b64decode(rxpk["data"]) == jr
    assert isinstance(decode(jr), JoinRequest) and ns.joins[0]["dev_nonce"] == 7
    ns.wait_for(lambda: ns.downlinks, 5, "the join-accept")
    assert ns.downlinks[0]["txpk"]["tmst"] == (rxpk["tmst"] + 5_000_000) & 0xFFFFFFFF
    # RX1 opens 5 s after the uplink's end, on the uplink's channel and SF, IQ inverted
    clock.t = end + 5000 - 20
    buf = bytearray(255)
    n = radio.receive(868_300_000, 7, 125, 50, buf)
    assert n == 17
    ja = decode_join_accept(bytes(buf[:n]), APP_KEY)
    assert ja.dev_addr == ns.joins[0]["dev_addr"]
    assert radio.last_rssi == -60 and radio.last_snr == 9
    ns.wait_for(lambda: ns.tx_acks, 5, "TX_ACK")
    assert ns.tx_acks[0]["error"] == "NONE" and ns.tx_acks[0]["token"] == ns.downlinks[0]["token"]
    assert model.air.stats["pull_data"] >= 1 and ns.counters["pull_data"] >= 1


def test_sx1262_set_up_as_on_a_heltec_v3(ns):
    hb, radio, clock = make("virtual", ns)
    m = hb.radio_model
    assert m.config["tcxo_mv"] == 1800 and m.config["dio2_rf_switch"] and m.config["calibrated"] >= 1
    assert m.device_errors == 0  # the XOSC start error was cleared once the TCXO ran
    assert m.sync_word == 0x3444 and m.config["image_calibrated"] == (860, 876)
    assert m.errors == {"busy": 0, "unknown_opcode": 0, "not_lora": 0}
    radio.send(b"\x40" + bytes(20), 868_100_000, 9, 125, 14)
    assert m.freq_hz == 868_100_000 and (m.sf, m.bw_khz, m.crc, m.invert_iq) == (9, 125, True, False)
    assert m.power_dbm == 14


def test_nothing_in_the_window_returns_zero_and_a_wrong_window_hears_nothing(ns):
    hb, radio, clock = make("virtual_sx1276", ns)
    jr = build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=1, app_key=APP_KEY)
    radio.send(jr, 868_500_000, 7, 125, 14)
    end = clock.t
    ns.wait_for(lambda: ns.downlinks, 5, "the join-accept")
    buf = bytearray(255)
    clock.t = end + 1000  # the data RX1 time: nothing is scheduled then
    assert radio.receive(868_500_000, 7, 125, 50, buf) == 0
    clock.t = end + 5000 - 20
    assert radio.receive(868_500_000, 8, 125, 60, buf) == 0  # right time, wrong SF
    clock.t = end + 5200
    assert radio.receive(868_500_000, 7, 125, 60, buf) == 0  # too late: the frame has gone by
    assert hb.radio_model.air.stats["delivered"] == 0


def test_busy_stuck_high_raises_a_named_error(ns):
    from bysans.radio.errors import RadioBusy

    hb, radio, clock = make("virtual", ns)
    hb.hw.handle("pin.w 12 0")  # NRESET held low: BUSY stays high
    with pytest.raises(RadioBusy):
        radio.send(b"\x40" + bytes(12), 868_100_000, 7, 125, 14)


def test_a_missing_chip_is_named():
    from bysans.radio import from_board
    from bysans.radio.errors import RadioMissing

    board = dict(boards.load("virtual_sx1276"))
    board["radio"] = dict(board["radio"], nss=5)  # the driver selects a pin no chip listens on
    clock = ManualClock()
    hb = HostBoard(boards.load("virtual_sx1276"), None, clock)
    hb.definition = board
    with pytest.raises(RadioMissing):
        from_board(hb)


def test_pull_resp_is_scheduled_by_tmst_and_acknowledged():
    clock = ManualClock()
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(2)
    pf = PacketForwarder(clock, server.getsockname(), name="t9")
    pf.start()
    data, addr = server.recvfrom(4096)
    assert data[0] == 2 and data[3] == 2 and data[4:12] == pf.eui  # PULL_DATA with the gateway EUI
    tmst = pf.counter(clock.t + 1000)
    for extra, want in (({"tmst": tmst}, "NONE"), ({"tmst": pf.counter(clock.t - 5000)}, "TOO_LATE"),
                        ({"tmms": 1}, "GPS_UNLOCKED")):
        txpk = {"freq": 869.525, "datr": "SF12BW125", "codr": "4/5", "ipol": True, "size": 3,
                "data": base64.b64encode(b"abc").decode(), **extra}
        server.sendto(b"\x02\x12\x34\x03" + json.dumps({"txpk": txpk}).encode(), addr)
        deadline = time.monotonic() + 2
        before = pf.stats["tx_ack"]
        while pf.stats["tx_ack"] == before and time.monotonic() < deadline:
            pf.poll()
        ack, _ = server.recvfrom(4096)
        assert ack[:4] == b"\x02\x12\x34\x05" and ack[4:12] == pf.eui
        assert json.loads(ack[12:])["txpk_ack"]["error"] == want
    [dl] = pf.pending
    assert dl.start_ms == clock.t + 1000 and dl.sf == 12 and dl.freq_hz == 869_525_000 and dl.ipol
    server.close()
    pf.close()


@pytest.mark.parametrize("board_name", ["virtual", "virtual_sx1276"])
def test_sleep_after_a_class_c_session_and_the_next_frame_wakes_the_chip(board_name, ns):
    """After a class C session the MAC puts the radio to sleep (bysans.lorawan.mac.listen_multicast); the
    chip keeps its configuration and the next send wakes it."""
    hb, radio, clock = make(board_name, ns)
    m = hb.radio_model
    radio.sleep()
    assert (m.mode if board_name == "virtual" else m.regs[0x01] & 0x07) in ("sleep", 0)
    jr = build_join_request(join_eui=JOIN_EUI, dev_eui=DEV_EUI, dev_nonce=3, app_key=APP_KEY)
    radio.send(jr, 868_100_000, 7, 125, 14)
    ns.wait_for(lambda: ns.joins, 5, "the join-request sent after the sleep")
    assert ns.joins[0]["dev_nonce"] == 3
    if board_name == "virtual":
        assert m.errors["unknown_opcode"] == 0 and m.errors["busy"] == 1  # the wake-up edge, ignored


# ---- class C: continuous RX (radio.listen / radio.take) ----------------------------------------------------

def _on_air(model, clock, start_ms, data, *, freq=869_525_000, sf=7):
    from fleet.sim.devices.air import Downlink

    model.air.pending.append(Downlink(start_ms=int(start_ms), freq_hz=freq, sf=sf, bw_khz=125, ipol=True,
                                      data=bytes(data), power_dbm=14, received_ms=clock.t))


def _frames(n, size):
    return [bytes([k]) * size for k in range(1, n + 1)]


@pytest.mark.parametrize("board_name", ["virtual", "virtual_sx1276"])
def test_class_c_hears_every_frame_at_the_plans_spacing_while_the_caller_is_busy(board_name):
    """The plan's DataFragments (DR5, full size) at its spacing, the caller busy between takes for most of an
    interval (decoding, flash writes), on a clock as fast as the e2e tests' (the air's tolerance grows with
    it): the radio never leaves RX, so every frame is received, in order, and none is missed on the air."""
    from fleet.fuota.deploy import frame_toa_s, fragment_size

    clock = ManualClock()
    clock.speed = 10
    hb = HostBoard(boards.load(board_name), None, clock)
    from bysans.radio import from_board

    radio, model = from_board(hb), hb.radio_model
    size = 13 + 3 + fragment_size(5)
    toa = frame_toa_s(fragment_size(5), 5) * 1000
    interval = toa / 0.10
    sent = _frames(12, size)
    t0 = clock.t + 2000
    for k, data in enumerate(sent):
        _on_air(model, clock, t0 + k * interval, data)
    radio.listen(869_525_000, 7, 125)
    buf = bytearray(255)
    got = []
    while clock.t < t0 + len(sent) * interval:
        n = radio.take(buf, 1000)
        if n:
            got.append(bytes(buf[:n]))
            clock.sleep_ms(int(interval - toa) - 50)  # the caller works on it; the chip keeps listening
    radio.sleep()
    assert got == sent
    assert model.air.stats["missed"] == 0 and model.receiver.stats["overwritten"] == 0


@pytest.mark.parametrize("board_name", ["virtual", "virtual_sx1276"])
def test_class_c_is_never_kinder_than_the_chip(board_name):
    """The chip holds one received frame: a second one that ends before the first is read replaces it. A
    frame whose preamble passed before the radio listened, or while it transmitted, is not heard; a frame
    under way when the radio leaves RX is lost."""
    clock = ManualClock()
    hb = HostBoard(boards.load(board_name), None, clock)
    from bysans.radio import from_board

    radio, model = from_board(hb), hb.radio_model
    buf = bytearray(255)
    b, c, d, e = _frames(4, 40)
    toa = 120  # a 40-byte frame at SF7 is under 100 ms
    _on_air(model, clock, clock.t - 150, bytes(200))  # on air when the radio starts listening (over 300 ms)
    radio.listen(869_525_000, 7, 125)
    _on_air(model, clock, clock.t + 100, b)
    _on_air(model, clock, clock.t + 300, c)
    clock.sleep_ms(1000)  # busy: both b and c end before anyone looks
    assert radio.take(buf, 10) == 40 and bytes(buf[:40]) == c  # only the last one is still in the chip
    assert model.receiver.stats["overwritten"] == 1
    assert radio.take(buf, 200) == 0  # the long frame's preamble came before listen(): never heard
    # while the radio transmits (a class A uplink in the session), class C hears nothing
    _on_air(model, clock, clock.t + 5, d)
    radio.send(b"\x40" + bytes(40), 868_100_000, 7, 125, 14)
    radio.listen(869_525_000, 7, 125)
    assert radio.take(buf, 2 * toa) == 0
    # a frame under way when the radio is put to sleep is lost
    _on_air(model, clock, clock.t + 10, e * 5)  # 200 bytes: over 300 ms on air
    clock.sleep_ms(30)
    model.tick()
    assert model.receiver.current is not None  # its preamble is caught
    radio.sleep()
    clock.sleep_ms(400)
    radio.listen(869_525_000, 7, 125)
    assert radio.take(buf, 2 * toa) == 0
    assert model.receiver.stats["lost_rx_left"] == 1
