# The node's cycle (bysans.node) on a fake board: RTC memory, a clock that advances by deep sleep, and
# fake sensors. What survives deep sleep, batching, alarms, faults and a corrupted RTC memory; RTC memory
# shared with the LoRaWAN store; the sink a wake chooses (bysans.sink) and the LoRaWAN sink against the
# MAC with a fake radio and network (lorawan_fakes.py); the OTA check-in's cadence (bysans.otapoll).
# mp: -X heapsize=384K
# (24 tests and their many wakes share one 64-bit interpreter, each wake compiling from source what a board
# loads as .mpy in a fresh boot: this module checks behaviour; heap is measured on 32 bits, tests/e2e/test_wake_32bit.py)
import gc
import os
import json
import time

from bysans import payload_spec as S
from bysans import rtcstate
from bysans.hal import rtcmem
from bysans.config import ConfigError, NodeConfig, load
from bysans.drivers.errors import CrcError, SensorMissing
from bysans.node import Node
from bysans.waste_cycle import tilted
from bysans.uplink import ListSink

# this run's own files: the 64- and 32-bit runs of this module may run at once (pytest -n 2)
T = "/tmp/bysans_mp_node_%d_" % (os.getpid() if hasattr(os, "getpid") else time.ticks_us())

SENSORS = [
    {"type": "bme280", "bus": "i2c0", "address": 118},
    {"type": "vl53l1x", "bus": "i2c0", "address": 41},
    {"type": "lis3dh", "bus": "i2c0", "address": 24},
    {"type": "scd4x", "bus": "i2c0", "address": 98},
    {"type": "sps30", "bus": "i2c0", "address": 105},
]


class World:
    def __init__(self):
        self.dist_mm = 1100
        self.temp_cdeg = 1500
        self.accel = (0, 0, 1000)
        self.moved = False
        self.missing = set()
        self.crc_error = set()
        self.batt_mv = 3900


class FakeBoard:
    def __init__(self):
        self.rtc = b""
        self.now_s = 1750000000
        self.cause = "power_on"

    def rtc_memory(self, data=None):
        if data is None:
            return self.rtc
        assert len(data) <= 2048
        self.rtc = bytes(data)

    def epoch_s(self):
        return self.now_s

    def reset_cause(self):
        return self.cause

    def sleep(self, ms):
        self.now_s += ms // 1000
        self.cause = "deepsleep"
        rtcmem.forget()  # the boot's RAM is gone: the next one reads RTC memory (which a test may change) again


class Dist:
    def __init__(self, w):
        self.w = w

    def read_mm(self):
        if "vl53l1x" in self.w.crc_error:
            raise CrcError("vl53l1x", "crc")
        return self.w.dist_mm


class Temp:
    def __init__(self, w):
        self.w = w

    def read(self):
        if "bme280" in self.w.crc_error:
            raise CrcError("bme280", "crc")
        return self.w.temp_cdeg, 101325, 450


class Accel:
    def __init__(self, w):
        self.w = w

    def picked_up(self):
        m, self.w.moved = self.w.moved, False
        return m

    def read_mg(self):
        return self.w.accel

    def arm_pickup(self, mg):
        pass


class CO2:
    def __init__(self, w):
        self.w = w

    def read(self):
        return 612, 2000, 450

    def stop(self):
        pass


class PM:
    def __init__(self, w):
        self.w = w

    def read(self):
        return 3, 8, 10, 14

    def stop(self):
        pass


def opener(w):
    kinds = {"vl53l1x": Dist, "bme280": Temp, "lis3dh": Accel, "scd4x": CO2, "sps30": PM}

    def open_sensor(board, entry):
        if entry["type"] in w.missing:
            raise SensorMissing(entry["type"], "no answer on the bus (errno 19)")
        return kinds[entry["type"]](w)
    return open_sensor


def make(w=None, board=None, sink=None, no_sink=False, **cfg):
    w = w or World()
    board = board or FakeBoard()
    values = {"kind": "waste"}
    values.update(cfg)
    node_cfg = NodeConfig(values, SENSORS)
    sink = ListSink() if sink is None else sink

    def wake():
        n = Node(board, node_cfg, None if no_sink else sink, open_sensor=opener(w), battery=lambda: w.batt_mv)
        ms = n.wake()
        board.sleep(ms)
        return n, ms
    return w, board, sink, wake


def decode_frames(sink):
    # the firmware has no decoder: check the frame header only (the host decodes in the e2e tests)
    out = []
    for port, f in sink.frames:
        out.append((port, f[0], (f[1] >> S.KIND_SHIFT) & S.KIND_MASK, f[1] & S.COUNT_MASK))
    return out


def test_config_defaults_and_errors():
    c = NodeConfig({"kind": "waste"}, SENSORS)
    assert c.interval_s == 900 and c.batch_max_age_s == 7200 and c.fport == 1
    assert NodeConfig({"kind": "env"}, SENSORS).interval_s == 600
    assert c.sensor("jsn_sr04t", "vl53l1x")["type"] == "vl53l1x"
    for bad in ({}, {"kind": "bin"}, {"kind": "waste", "interval_s": 90}, {"kind": "waste", "colour": 1},
                {"kind": "waste", "bin_depth_mm": "1 m"}, {"kind": "waste", "alarm_on_tilt": 1}):
        try:
            NodeConfig(bad, SENSORS)
        except ConfigError:
            continue
        raise AssertionError("accepted %r" % bad)
    assert load(SENSORS, path="/nonexistent/node.json") is None


def test_config_file_is_read():
    path = T + "node.json"
    with open(path, "w") as f:
        json.dump({"kind": "env", "interval_s": 300}, f)
    assert load(SENSORS, path=path).interval_s == 300
    with open(path, "w") as f:
        f.write("{kind: waste")
    try:
        load(SENSORS, path=path)
    except ConfigError as e:
        assert "JSON" in e.args[1]
    else:
        raise AssertionError("bad JSON accepted")


def test_an_enrolled_board_runs_from_device_json():
    # `fleet enroll --port` writes /config/device.json; node.json may be absent or lack kind and site
    node, device = T + "node2.json", T + "device.json"
    for p in (node, device):
        try:
            import os

            os.remove(p)
        except OSError:
            pass
    assert load(SENSORS, path=node, device_path=device) is None  # neither: not configured
    with open(device, "w") as f:
        json.dump({"kind": "waste", "site": "Bispetorv 3", "dev_eui": "70b3d57ed0000001"}, f)
    cfg = load(SENSORS, path=node, device_path=device)
    assert (cfg.kind, cfg.site, cfg.interval_s) == ("waste", "Bispetorv 3", 900)
    with open(node, "w") as f:
        json.dump({"kind": "env", "interval_s": 300}, f)  # node.json wins where it speaks
    cfg = load(SENSORS, path=node, device_path=device)
    assert (cfg.kind, cfg.site, cfg.interval_s) == ("env", "Bispetorv 3", 300)


def test_tilt_in_integers():
    assert not tilted(0, 0, 1000, 500)
    assert not tilted(600, 0, 800, 500)    # 37 degrees
    assert tilted(800, 0, 600, 500)        # 53 degrees
    assert tilted(0, 0, -1000, 500)        # upside down
    assert tilted(1000, 0, 0, 0)           # on its side, threshold 90


def test_batches_every_two_hours_and_state_survives_deep_sleep():
    w, board, sink, wake = make()
    sleeps = []
    for i in range(20):
        w.dist_mm = 1100 - 10 * i
        n, ms = wake()
        sleeps.append(ms)
    assert all(s == 900000 for s in sleeps), sleeps
    frames = decode_frames(sink)
    # 8 readings per frame: the oldest waits 105 min, under the 2 h limit
    assert [f[3] for f in frames] == [8, 8], frames
    assert all(f[0] == 1 and f[1] == S.VERSION and f[2] == S.KIND_WASTE for f in frames)
    assert n.batch.n == 4
    assert n.counters()["wakes"] == 20 and n.counters()["uplinks"] == 2 and n.counters()["rtc_resets"] == 0
    assert n.status == rtcstate.OK
    # the trend survived (its words in RTC memory; the kind's logic is dropped once the reading is closed)
    from bysans.node import C_KIND

    assert n.logic is None and n.c[C_KIND + 2] > 2 and n._frame_values[0] > 0


def test_fire_sends_at_once():
    w, board, sink, wake = make()
    for _ in range(3):
        wake()
    assert not sink.frames
    w.temp_cdeg = 7000
    n, _ = wake()
    assert n.alarm and len(sink.frames) == 1 and decode_frames(sink)[0][3] == 4
    assert n.row[S.W_FLAGS] & S.FLAG_FIRE
    n, _ = wake()  # the alarm holds: no second alarm frame
    assert not n.alarm and len(sink.frames) == 1


def test_pickup_and_tilt_send_at_once():
    w, board, sink, wake = make()
    w.dist_mm = 300
    wake()
    wake()
    w.moved = True
    w.accel = (0, 700, -700)
    w.dist_mm = 1100
    n, _ = wake()
    assert n.row[S.W_FLAGS] & S.FLAG_PICKUP and n.row[S.W_FLAGS] & S.FLAG_TILT and n.alarm
    assert len(sink.frames) == 1
    w.accel = (0, 0, 1000)
    n, _ = wake()
    assert not n.alarm and len(sink.frames) == 1
    w.accel = (0, 1000, 0)  # knocked over, no drop: tilt alone
    n, _ = wake()
    assert n.alarm and not n.row[S.W_FLAGS] & S.FLAG_PICKUP and len(sink.frames) == 2


def test_missing_sensor_and_crc_error_are_faults_and_the_node_goes_on():
    w, board, sink, wake = make()
    w.missing.add("bme280")
    n, ms = wake()
    assert ms == 900000
    assert n.faults == 1 << S.W_TEMP, n.faults
    assert "bme280" in n.sensors.missing
    w.missing.clear()
    w.crc_error.add("vl53l1x")
    n, _ = wake()
    assert n.faults == (1 << S.W_DIST) | (1 << S.W_FILL)
    w.crc_error.clear()
    w.temp_cdeg = 20000  # 200 degC from a BME280: impossible
    n, _ = wake()
    assert n.faults == 1 << S.W_TEMP
    assert n.batch.faults[0] == 1 << S.W_TEMP and n.batch.n == 3
    assert n.counters()["sensor_faults"] == 4


def _run_waste_world(wakes):
    # a bin filling with noisy echoes and a fire at wake 12; every reading valid but one
    w, board, sink, wake = make()
    rows = []
    for i in range(wakes):
        w.dist_mm = 1100 - 13 * i + (i * 7) % 5
        w.temp_cdeg = 7000 if i == 12 else 1500 + (i * 37) % 200
        if i == 15:
            w.missing.add("bme280")  # a faulted temperature: the separate steps
        else:
            w.missing.discard("bme280")
        n, _ = wake()
        rows.append((list(n.row), n.faults, n.alarm))
    return rows, sink.frames


def test_the_waste_cycle_samples_through_the_fused_path():
    from bysans.waste import WasteNode

    fused = WasteNode.sample
    calls = []

    def counting(self, burst, temp_cdeg, batt_mv):
        calls.append(temp_cdeg)
        return fused(self, burst, temp_cdeg, batt_mv)

    def separate(self, burst, temp_cdeg, batt_mv):
        calls.append(None)
        self.distance(burst)
        fire = self.temperature(temp_cdeg)
        self.battery(batt_mv)
        return fire

    import bysans.node

    kinds = bysans.node._KIND_MODULES
    bysans.node._KIND_MODULES = ()  # kept loaded here: a module dropped and loaded again drops the patch
    try:
        WasteNode.sample = counting
        got, got_frames = _run_waste_world(20)
        assert len(calls) == 19 and None not in calls, calls  # every wake but the faulted one
        WasteNode.sample = separate
        want, want_frames = _run_waste_world(20)
    finally:
        WasteNode.sample = fused
        bysans.node._KIND_MODULES = kinds
    assert got == want, (got, want)
    assert got_frames == want_frames and any(r[2] for r in got)  # the fire alarm went out both ways


def test_corrupted_rtc_memory_is_detected_reset_and_counted():
    w, board, sink, wake = make()
    for _ in range(3):
        wake()
    good = board.rtc
    bad = bytearray(good)
    bad[rtcstate.OFFSET + 40] ^= 0x10
    board.rtc = bytes(bad)
    n, ms = wake()
    assert n.status == rtcstate.CORRUPT and n.counters()["rtc_resets"] == 1
    assert n.counters()["wakes"] == 1 and n.batch.n == 1 and ms == 900000
    n, _ = wake()
    assert n.status == rtcstate.OK and n.counters()["rtc_resets"] == 1 and n.batch.n == 2
    board.rtc = b"\x00" * (rtcstate.OFFSET + 300)  # garbage without the magic
    n, _ = wake()
    assert n.status == rtcstate.CORRUPT and n.counters()["rtc_resets"] == 1
    board.rtc = board.rtc[:rtcstate.OFFSET + 20]  # truncated
    n, _ = wake()
    assert n.status == rtcstate.CORRUPT and n.counters()["rtc_resets"] == 2
    board.rtc = b""  # power loss: a fresh start, not a corruption
    n, _ = wake()
    assert n.status == rtcstate.EMPTY and n.counters()["rtc_resets"] == 0
    board.rtc = b"\x55" * rtcstate.OFFSET  # only the LoRaWAN store's bytes: nothing of the node's
    n, _ = wake()
    assert n.status == rtcstate.EMPTY and n.counters()["rtc_resets"] == 0


def test_a_config_change_starts_the_state_afresh():
    w, board, sink, wake = make()
    wake()
    wake()
    _w, _b, _s, wake2 = make(w=w, board=board, sink=sink, bin_depth_mm=1200)
    n, _ = wake2()
    assert n.status == rtcstate.CHANGED and n.batch.n == 1 and n.counters()["rtc_resets"] == 0


def test_a_missed_slot_sends_the_queue_first():
    w, board, sink, wake = make()
    wake()
    wake()
    board.now_s += 3600  # slept through four slots (a reset, a long watchdog wait)
    n, ms = wake()
    assert len(sink.frames) == 1 and decode_frames(sink)[0][3] == 2
    assert n.batch.n == 1 and ms == 900000


def test_early_wake_goes_back_to_sleep_without_a_reading():
    w, board, sink, wake = make()
    wake()
    board.now_s -= 600  # e.g. a soft reset 5 min after falling asleep
    board.cause = "soft"
    n, ms = wake()
    assert not n.sampled and n.batch.n == 1 and ms == 600000


def test_no_sink_keeps_readings_then_drops_the_oldest():
    w, board, _sink, wake = make(no_sink=True)
    for _ in range(20):
        n, ms = wake()
    assert n.batch.n == 16 and n.counters()["dropped"] == 4 and ms == 900000


def test_env_node_cycle():
    w, board, sink, wake = make(kind="env")
    w.missing.add("sps30")
    for _ in range(12):
        n, ms = wake()
    assert ms == 600000
    frames = decode_frames(sink)
    assert len(frames) == 1 and frames[0][2] == S.KIND_ENV and frames[0][3] == 12
    assert n.row[S.E_CO2] == 612 and n.faults == (1 << S.E_PM2_5) | (1 << S.E_PM10)


def test_state_fits_rtc_memory():
    for kind in ("waste", "env"):
        w, board, sink, wake = make(kind=kind, queue_max=31)
        wake()
        assert rtcstate.OFFSET < len(board.rtc) <= 2048


# ---- RTC memory shared with the LoRaWAN store -----------------------------------------------------------

def _remove(path):
    import os

    try:
        os.remove(path)
    except OSError:
        pass


def test_node_state_and_lorawan_store_share_rtc_memory_without_overlap():
    from bysans.lorawan import store

    assert store.RTC_OFFSET + store.RTC_SIZE <= rtcstate.OFFSET
    assert rtcstate.OFFSET + rtcstate.CAPACITY <= rtcstate.RTC_BYTES
    path = T + "lorawan.dat"
    _remove(path)
    w, board, sink, wake = make()
    st = store.PersistentStore(board, path=path)
    st.put("fu", 1)
    for i in range(6):
        n, _ = wake()
        assert n.status == (rtcstate.EMPTY if i == 0 else rtcstate.OK), i
        st.put("fu", 2 + i)  # the MAC writes its counters while the node's state sits in RTC memory
        again = store.PersistentStore(board, path=path + ".none")  # RTC memory only: no flash copy
        assert again.source == "rtc" and again.get("fu") == 2 + i, i
    assert n.counters()["wakes"] == 6 and n.counters()["rtc_resets"] == 0
    prefix = board.rtc[:rtcstate.OFFSET]
    wake()  # a node save writes the LoRaWAN store's bytes back as they were
    assert board.rtc[:rtcstate.OFFSET] == prefix
    _remove(path)


# ---- the sink a wake chooses ----------------------------------------------------------------------------

LORAWAN_JSON = T + "lorawan.json"
CREDS = {"dev_eui": "70B3D57ED0000001", "join_eui": "70B3D57ED0000000",
         "app_key": "2B7E151628AED2A6ABF7158809CF4F3C", "activation": "otaa", "version": "1.0.3"}


class DefBoard(FakeBoard):
    def __init__(self, radio=True):
        super().__init__()
        self.definition = {"name": "fake", "radio": {"chip": "sx1262"}} if radio else {"name": "fake"}


def _write_json(path, obj):
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))


def test_sink_is_lorawan_with_a_radio_and_credentials_else_the_default():
    from bysans import sink

    _write_json(LORAWAN_JSON, CREDS)
    s = sink.choose(DefBoard(), path=LORAWAN_JSON)
    assert isinstance(s, sink.LoRaWANSink) and s.mac is None  # nothing built until something is sent
    assert "2B7E" not in repr(s)
    # no radio in the board file, or no credentials: the board's default (no capture on the unix port)
    assert sink.choose(DefBoard(radio=False), path=LORAWAN_JSON) is None
    assert sink.choose(DefBoard(), path=T + "nonexistent.json") is None
    for bad in ("{dev_eui", dict(CREDS, app_key="00"), dict(CREDS, activation="abp"), dict(CREDS, dev_eui=None)):
        _write_json(LORAWAN_JSON, bad)
        try:
            sink.choose(DefBoard(), path=LORAWAN_JSON)
        except sink.SinkConfigError as e:
            assert CREDS["app_key"] not in e.args[0] and LORAWAN_JSON in e.args[0]
        else:
            raise AssertionError("accepted %r" % (bad,))
    _remove(LORAWAN_JSON)


def _lorawan_node(board=None, **cfg):
    # a node whose sink is the LoRaWAN MAC over a fake radio and network; the MAC is built afresh at every
    # wake from the store (MemoryStore: what RTC memory and flash keep across deep sleep)
    from binascii import unhexlify

    from bysans import sink
    from bysans.lorawan import mac
    from bysans.lorawan.radio import MemoryStore
    from lorawan_fakes import FakeClock, FakeNetwork, FakeRadio

    key = unhexlify(CREDS["app_key"])
    clock = FakeClock(1000)
    radio = FakeRadio(clock)
    net = FakeNetwork(key)
    net.attach(radio)
    store = MemoryStore()
    w, board, _s, _wake = make(board=board, **cfg)
    sinks = []

    def wake():
        gc.collect()  # a board starts each wake afresh; here the wakes share one interpreter's heap
        m = mac.ClassA(radio, clock, store, dev_eui=unhexlify(CREDS["dev_eui"]),
                       join_eui=unhexlify(CREDS["join_eui"]), app_key=key)
        s = sink.LoRaWANSink(clock, None, mac=m, store=store)
        sinks.append(s)
        node_cfg = NodeConfig(dict({"kind": "waste"}, **cfg), SENSORS)
        n = Node(board, node_cfg, s, open_sensor=opener(w), battery=lambda: w.batt_mv)
        ms = n.wake()
        s.suspend(ms)
        board.sleep(ms)
        clock.sleep_ms(ms)
        return n, s
    return w, net, radio, store, wake


def test_lorawan_sink_joins_then_sends_and_counters_survive_deep_sleep():
    w, net, radio, store, wake = _lorawan_node(interval_s=900, batch_max_age_s=1800)
    fcnts = []
    for i in range(8):
        n, s = wake()
        if s.mac.joined:
            fcnts.append(s.mac.fcnt_up)
    assert len([f for f in radio.sent if f[2][0] == 0]) == 1  # one join-request
    assert net.bad == 0 and len(net.uplinks) >= 3
    got = [u[0] for u in net.uplinks]
    assert got == list(range(len(got))), got  # one after the other, across deep sleeps
    assert all(u[1] == 1 for u in net.uplinks)  # on the config's fport
    assert n.counters()["send_fails"] == 0 and n.counters()["uplinks"] == len(net.uplinks)
    # what the network decrypts is the node's payload v1 (kind waste)
    assert all(u[2][0] == S.VERSION and u[2][1] >> S.KIND_SHIFT == S.KIND_WASTE for u in net.uplinks)


def test_lorawan_sink_failure_keeps_the_readings_queued():
    w, net, radio, store, wake = _lorawan_node(interval_s=900, batch_max_age_s=1800)
    net.answer_joins = False
    for _ in range(3):
        n, s = wake()
    assert not s.mac.joined and not net.uplinks
    assert n.counters()["send_fails"] >= 1 and n.batch.n == 3
    assert s.problem and "JoinFailed" in s.problem and "lorawan not joined" in s.summary()
    net.answer_joins = True
    for _ in range(2):  # joined at the next try; a join at SF12 owes 150 s of silence: sent a wake later
        n, s = wake()
        assert s.mac.joined
        if net.uplinks:
            break
    assert n.batch.n == 0 and net.bad == 0
    decoded = decode_frames(type("L", (), {"frames": [(u[1], u[2]) for u in net.uplinks]})())
    assert sum(f[3] for f in decoded) == n.counters()["wakes"]  # every reading went out, once


def test_frames_fit_what_the_sink_can_carry_now():
    class Small(ListSink):
        def max_payload(self):
            return 20

    small = Small()
    w, board, sink, wake = make(sink=small)
    for _ in range(8):
        wake()
    assert small.frames and all(len(f) <= 20 for _p, f in small.frames)
    assert sum(decode_frames(small)[i][3] for i in range(len(small.frames))) == 8


# ---- OTA check-in cadence -------------------------------------------------------------------------------

def test_ota_is_due_at_most_every_ota_every_s_and_only_when_set_up():
    stamp = T + "node_ota.dat"
    _remove(stamp)
    w, board, sink, wake = make()
    cfg = NodeConfig({"kind": "waste", "interval_s": 900, "ota_every_s": 3600}, SENSORS)
    due = []
    for i in range(14):
        if i == 6:
            board.rtc = b""  # a power loss: the time of the last check-in comes back from flash
        n = Node(board, cfg, sink, open_sensor=opener(w), battery=lambda: w.batt_mv, ota=True, ota_stamp=stamp)
        board.sleep(n.wake())
        if n.ota_due:
            due.append(i)
    assert due == [0, 4, 8, 12], due  # the first wake, then every 3600 s (four 900 s cycles)
    _remove(stamp)
    for values, ota in (({"kind": "waste", "ota_every_s": 0}, True), ({"kind": "waste"}, False)):
        cfg = NodeConfig(values, SENSORS)
        for _ in range(3):
            n = Node(board, cfg, sink, open_sensor=opener(w), battery=lambda: w.batt_mv, ota=ota, ota_stamp=stamp)
            board.sleep(n.wake())
            assert not n.ota_due
    assert NodeConfig({"kind": "waste"}, SENSORS).ota_every_s == 86400


def test_a_wake_that_starts_late_still_checks_in_on_its_slot():
    # the check-in's time is the wake's slot: a boot that took a few seconds longer than the last one
    # (flash, a slow sensor) does not push the check-in to the wake after
    stamp = T + "node_ota_late.dat"
    _remove(stamp)
    w, board, sink, wake = make()
    cfg = NodeConfig({"kind": "waste", "interval_s": 120, "ota_every_s": 120}, SENSORS)
    due = []
    for i, late_s in enumerate((3, 0, 2, 0, 1, 0)):
        board.now_s += late_s
        n = Node(board, cfg, sink, open_sensor=opener(w), battery=lambda: w.batt_mv, ota=True, ota_stamp=stamp)
        board.sleep(n.wake())
        due.append(n.ota_due)
    assert due == [True] * 6, due
    _remove(stamp)


def test_an_update_is_reported_at_the_first_wake_after_its_reset():
    # the client installed a release and reset the board into it; the server hears it was confirmed (or
    # rolled back) at the next wake, not ota_every_s later, when its rollout's next wave may be waiting
    from bysans import otapoll

    stamp, state = T + "node_ota_upd.dat", T + "ota_client.json"
    reported = T + "ota_reported"
    for path in (stamp, reported):
        _remove(path)
    saved = otapoll.CLIENT_STATE, otapoll.REPORTED
    otapoll.CLIENT_STATE, otapoll.REPORTED = state, reported
    try:
        w, board, sink, wake = make()
        cfg = NodeConfig({"kind": "waste", "interval_s": 900, "ota_every_s": 86400}, SENSORS)

        def one(cause, client_state, early=False, sleep=True, target="ab" * 32):
            with open(state, "w") as f:
                f.write(json.dumps({"state": client_state, "reason": None, "detail": "", "target": target,
                                    "fails": 0, "next_s": board.now_s}))
            board.cause = cause
            n = Node(board, cfg, sink, open_sensor=opener(w), battery=lambda: w.batt_mv, ota=True,
                     ota_stamp=stamp)
            ms = n.wake()
            assert n.sampled != early
            if early and sleep:
                board.now_s += ms // 1000  # (the check-in's boot sleeps until the slot the cycle planned)
            elif sleep:
                board.sleep(ms)
            return n.ota_due

        assert one("power_on", "confirmed")  # the first wake
        assert not one("deepsleep", "confirmed")
        assert not one("deepsleep", "installed")  # (only a reset brings the check-in forward)
        assert one("soft", "installed")  # the update's reset, at the slot
        assert not one("soft", "confirmed")  # reported: back to once a day
        assert not one("deepsleep", "confirmed", sleep=False)
        board.now_s += 20  # the check-in's boot took 20 s, then reset the board into the new release:
        assert one("soft", "installed", early=True, sleep=False, target="cd" * 32)  # an early wake
        board.now_s += 20  # that check-in reset the board before it reported (a brown-out): not again at once
        assert not one("brownout", "installed", early=True, target="cd" * 32)
        assert not one("deepsleep", "confirmed", sleep=False)  # the slot's own wake
        board.now_s += 20
        assert not one("soft", "confirmed", early=True)  # a soft reset without an update: nothing to report
        assert not one("deepsleep", "confirmed")
    finally:
        otapoll.CLIENT_STATE, otapoll.REPORTED = saved
        for path in (stamp, state, reported):
            _remove(path)


def test_the_server_poll_hint_holds_back_a_client_but_not_the_node_schedule():
    from bysans.ota.client import Client

    class Board:
        name = "virtual"

        def epoch_s(self):
            return 1750000000

    root = T + "node-client"
    c = Client(Board(), root=root, config={"server": "http://x", "device": "70B3D57ED0000001", "kommune": "0751"})
    last = {"state": "confirmed", "reason": None, "detail": "", "target": None, "fails": 0, "next_s": 1750003600}
    with open(root + "/ota/client.json", "w") as f:
        f.write(json.dumps(last))
    assert not c.due()  # poll_s (the server's hint, an hour) after a check-in that got through
    assert c.due(scheduled=True)  # the node's ota_every_s decides
    last["fails"], last["state"] = 2, "error"
    with open(root + "/ota/client.json", "w") as f:
        f.write(json.dumps(last))
    assert not c.due() and not c.due(scheduled=True)  # a failure's back-off holds both back
    assert c.due(1750003600, scheduled=True)
    _remove(root + "/ota/client.json")


def test_ota_run_never_raises_and_says_one_line():
    from bysans import otapoll

    class Client:
        def __init__(self, result=None, error=None):
            self.result, self.error, self.calls = result, error, 0

        def service(self, scheduled=False):
            self.calls += 1
            self.scheduled = scheduled
            if self.error:
                raise self.error
            return self.result

    c = Client({"state": "confirmed", "reason": None})
    assert otapoll.run(None, c) == "ota: confirmed" and c.calls == 1
    assert c.scheduled  # on the node's schedule: only a failure's back-off holds it back
    assert otapoll.run(None, Client({"state": "error", "reason": "TIMEOUT"})) == "ota: error TIMEOUT"
    assert "not due" in otapoll.run(None, Client(None))
    for err in (MemoryError(), OSError(113), ValueError("bad json"), KeyError("device")):
        line = otapoll.run(None, Client(error=err))
        assert line.startswith("ota: failed, ") and "\n" not in line, line
    assert not otapoll.configured(T + "nonexistent_ota.json")


def test_a_failed_wifi_join_is_reported_in_the_uplinks_until_a_join_gets_through():
    from bysans import otapoll

    class Client:
        def __init__(self, result):
            self.result = result

        def service(self, scheduled=False):
            return self.result

    path = T + "net_status"
    _remove(path)
    w, board, sink, _ = make()
    cfg = NodeConfig({"kind": "waste"}, SENSORS)

    def wakes(k):
        for _ in range(k):
            n = Node(board, cfg, sink, open_sensor=opener(w), battery=lambda: w.batt_mv, net_status=path)
            board.sleep(n.wake())

    wakes(8)
    assert len(sink.frames) == 1 and not sink.frames[0][1][1] & S.NET_FLAG
    fail = {"state": "error", "reason": "NO_NETWORK", "detail": "wifi WRONG_PASSWORD"}
    assert otapoll.run(None, Client(fail), net_status=path) == "ota: error NO_NETWORK (wifi WRONG_PASSWORD)"
    wakes(16)  # two uplinks while no check-in got through
    for _port, f in sink.frames[1:]:
        assert f[1] & S.NET_FLAG and f[2] == S.NET_STATUS_NAMES.index("WRONG_PASSWORD")
        assert (f[1] >> S.KIND_SHIFT) & S.KIND_MASK == S.KIND_WASTE and f[1] & S.COUNT_MASK == 8
    assert otapoll.run(None, Client(None), net_status=path).endswith("not due (the client's own back-off)")
    wakes(8)
    assert sink.frames[3][1][1] & S.NET_FLAG  # a wake without a check-in changes nothing
    # joined, then the server timed out: the network is there again
    assert otapoll.run(None, Client({"state": "error", "reason": "TIMEOUT"}), net_status=path) == "ota: error TIMEOUT"
    wakes(8)
    assert len(sink.frames) == 5 and not sink.frames[4][1][1] & S.NET_FLAG
    _remove(path)

