# Settings by downlink on the node (bysans.settings, format bysans/settings_spec.py): a command is checked
# when it arrives (replayed or older seq, out-of-range value, malformed frame: refused), waits in flash,
# applies at the next wake, and is acknowledged on the settings FPort; what is applied survives a new
# interpreter reading the file (deep sleep, power cut, an OTA update: RTC memory plays no part), also a cut
# between the two writes of a save. The frames are written out by hand here, from docs/formats/settings.md.
# mp: -X heapsize=256K
import json
import os

from bysans import settings_spec as S
from bysans.config import ConfigError, NodeConfig, load
from bysans.settings import Settings, ack_frame, parse
from mp_test_node import SENSORS, decode_frames, make

PATH = "/tmp/bysans_mp_settings.json"

# version 1, seq 5: interval_s 900 (0x0384), batch_max_age_s 3600 (0x000e10)
SET_900_3600 = b"\x01\x00\x05\x01\x03\x84\x02\x00\x0e\x10"
# version 1, seq 8: fire_threshold_cdeg 9000 (0x2328): above 8500
FIRE_TOO_HOT = b"\x01\x00\x08\x04\x23\x28"
# version 1, seq 7: fill_alarm_bp 8000 (0x1f40)
FILL_8000 = b"\x01\x00\x07\x03\x1f\x40"


def fresh():
    for p in (PATH, PATH + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass
    return Settings(PATH)


class Sink:
    def __init__(self, fail=False):
        self.frames = []
        self.received = []
        self.fail = fail

    def send(self, fport, payload):
        if self.fail:
            raise OSError("duty cycle")
        self.frames.append((fport, bytes(payload)))


def test_parse_reads_the_documented_frame_and_refuses_bad_ones():
    assert parse(SET_900_3600) == (5, {"interval_s": 900, "batch_max_age_s": 3600}, S.RESULT_APPLIED)
    assert parse(FIRE_TOO_HOT) == (8, {}, S.RESULT_OUT_OF_RANGE)
    assert parse(b"\x01\x00\x08\x01\x03\x85")[2] == S.RESULT_OUT_OF_RANGE   # 901 s: not whole minutes
    assert parse(b"\x01\x00\x08\x01\x00\x3b")[2] == S.RESULT_OUT_OF_RANGE   # 59 s: below 60
    assert parse(b"\x01\x00\x08\x09\x00\x01")[2] == S.RESULT_MALFORMED      # key 9: unknown
    assert parse(b"\x01\x00\x08\x01\x03")[2] == S.RESULT_MALFORMED          # value cut short
    assert parse(b"\x01\x00\x08\x01\x03\x84\x01\x03\x84")[2] == S.RESULT_MALFORMED  # a key twice
    assert parse(b"\x02\x00\x08\x01\x03\x84")[2] == S.RESULT_MALFORMED      # version 2
    assert parse(b"\x01\x00\x08")[2] == S.RESULT_MALFORMED                  # no setting
    assert parse(b"\x01\x00\x00\x01\x03\x84")[2] == S.RESULT_MALFORMED      # seq 0 is never issued
    assert parse(b"\x01") == (0, {}, S.RESULT_MALFORMED)


def test_ack_frame_is_version_then_seq_and_result():
    assert ack_frame([[5, 0], [6, 2]]) == b"\x01\x00\x05\x00\x00\x06\x02"


def test_a_command_applies_at_the_next_wake_and_a_replay_is_refused():
    st = fresh()
    assert st.receive(SET_900_3600) == S.RESULT_APPLIED
    assert st.values == {} and st.pending == [[5, {"interval_s": 900, "batch_max_age_s": 3600}]]
    assert st.receive(SET_900_3600) == S.RESULT_STALE  # the same command again (a replay)
    assert st.receive(b"\x01\x00\x04\x01\x03\x84") == S.RESULT_STALE  # an older one
    st.save()
    st = Settings(PATH)  # the next wake: a new interpreter reads the file
    assert st.values == {} and st.apply_pending()
    assert st.values == {"interval_s": 900, "batch_max_age_s": 3600} and st.pending == []
    assert st.acks == [[5, S.RESULT_STALE], [4, S.RESULT_STALE], [5, S.RESULT_APPLIED]]
    assert not st.apply_pending()
    cfg = NodeConfig(dict({"kind": "waste"}, **st.values), SENSORS)
    assert (cfg.interval_s, cfg.batch_max_age_s) == (900, 3600)


def test_an_out_of_range_command_changes_nothing_and_is_acknowledged_as_refused():
    st = fresh()
    st.receive(FILL_8000)
    st.apply_pending()
    assert st.receive(FIRE_TOO_HOT) == S.RESULT_OUT_OF_RANGE
    assert st.pending == [] and st.values == {"fill_alarm_bp": 8000}
    assert st.acks[-1] == [8, S.RESULT_OUT_OF_RANGE]
    assert st.receive(FIRE_TOO_HOT) == S.RESULT_STALE  # its seq is spent: the host sends a fresh one


def test_acknowledgement_goes_on_the_settings_port_or_waits_for_the_next_wake():
    st = fresh()
    st.receive(SET_900_3600)
    st.apply_pending()
    blocked = Sink(fail=True)
    st.after_wake(blocked)
    assert blocked.frames == [] and Settings(PATH).acks == [[5, 0]]  # kept in flash
    st = Settings(PATH)
    sink = Sink()
    sink.received.append((S.FPORT, FILL_8000))  # a command came with this wake's uplink
    sink.received.append((1, b"\x00"))          # another application's port: not ours
    st.after_wake(sink)
    assert sink.frames == [(S.FPORT, b"\x01\x00\x05\x00")], sink.frames  # 7 is taken, not yet applied
    st = Settings(PATH)
    assert st.acks == [] and st.pending == [[7, {"fill_alarm_bp": 8000}]]
    st.apply_pending()
    st.after_wake(sink)
    assert sink.frames[-1] == (S.FPORT, b"\x01\x00\x07\x00")


def test_settings_survive_a_cut_between_the_two_writes_and_a_tampered_file():
    st = fresh()
    st.receive(SET_900_3600)
    st.apply_pending()
    os.rename(PATH, PATH + ".tmp")  # as if the power went between writing the new file and renaming it
    assert Settings(PATH).values == {"interval_s": 900, "batch_max_age_s": 3600}
    with open(PATH, "w") as f:  # a value the format forbids, written to flash some other way: not used
        json.dump({"seq": 9, "values": {"interval_s": 30, "fire_threshold_cdeg": 6000, "queue_max": 2}}, f)
    st = Settings(PATH)
    assert st.values == {"fire_threshold_cdeg": 6000} and st.seq == 9
    os.remove(PATH + ".tmp")
    for junk in ({"pending": 5, "acks": "x", "values": [1]}, {"pending": [["a", {}], [3, 4]], "acks": [[1]]}, [1, 2]):
        with open(PATH, "w") as f:
            json.dump(junk, f)
        st = Settings(PATH)  # never an exception at boot
        assert (st.values, st.pending, st.acks) == ({}, [], []), junk


def test_config_takes_the_overlay_and_its_bounds_from_the_settings_format():
    node = "/tmp/bysans_mp_settings_node.json"
    with open(node, "w") as f:
        json.dump({"kind": "waste", "interval_s": 600}, f)
    cfg = load(SENSORS, path=node, device_path="/tmp/bysans_mp_no_device.json", overlay={"interval_s": 1200})
    assert cfg.interval_s == 1200 and cfg.fill_alarm_bp == 0
    for _id, name, _n, lo, hi, _step in S.KEYS:
        for bad in (lo - 1, hi + 1):
            try:
                NodeConfig({"kind": "waste", name: bad})
            except ConfigError as e:
                assert e.args[0] == name
            else:
                raise AssertionError("%s=%d accepted" % (name, bad))


def test_fill_threshold_sends_an_alarm_once_per_crossing():
    w, board, sink, wake = make(fill_alarm_bp=8000)
    w.dist_mm = 900  # fill 25 %
    for _ in range(2):
        wake()
    assert not sink.frames
    w.dist_mm = 300  # fill 85 %
    n, _ = wake()
    assert n.alarm and len(sink.frames) == 1 and decode_frames(sink)[0][3] == 3
    n, _ = wake()  # still full: no second alarm
    assert not n.alarm and len(sink.frames) == 1
