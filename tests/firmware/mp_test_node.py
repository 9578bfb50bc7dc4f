# The node's cycle (bysans.node) on a fake board: RTC memory, a clock that advances by deep sleep, and
# fake sensors. What survives deep sleep, batching, alarms, faults and a corrupted RTC memory.
# mp: -X heapsize=256K
import json

from bysans import payload_spec as S
from bysans import rtcstate
from bysans.config import ConfigError, NodeConfig, load
from bysans.drivers.errors import CrcError, SensorMissing
from bysans.node import Node
from bysans.waste_cycle import tilted
from bysans.uplink import ListSink

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
        out.append((port, f[0], f[1] >> S.KIND_SHIFT, f[1] & S.COUNT_MASK))
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
    path = "/tmp/bysans_mp_node.json"
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
    node, device = "/tmp/bysans_mp_node2.json", "/tmp/bysans_mp_device.json"
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
    assert n.logic.node.trend.n > 2 and n.logic.node.fill_rate_bp_h() > 0  # the trend survived


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


def test_corrupted_rtc_memory_is_detected_reset_and_counted():
    w, board, sink, wake = make()
    for _ in range(3):
        wake()
    good = board.rtc
    bad = bytearray(good)
    bad[40] ^= 0x10
    board.rtc = bytes(bad)
    n, ms = wake()
    assert n.status == rtcstate.CORRUPT and n.counters()["rtc_resets"] == 1
    assert n.counters()["wakes"] == 1 and n.batch.n == 1 and ms == 900000
    n, _ = wake()
    assert n.status == rtcstate.OK and n.counters()["rtc_resets"] == 1 and n.batch.n == 2
    board.rtc = b"\x00" * 300  # garbage without the magic
    n, _ = wake()
    assert n.status == rtcstate.CORRUPT and n.counters()["rtc_resets"] == 1
    board.rtc = board.rtc[:20]  # truncated
    n, _ = wake()
    assert n.status == rtcstate.CORRUPT and n.counters()["rtc_resets"] == 2
    board.rtc = b""  # power loss: a fresh start, not a corruption
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
        assert 0 < len(board.rtc) <= 2048
