# The node's diagnostics (bysans.diag) on a fake board: what counts as a boot and a watchdog reset, what
# survives deep sleep and what a power loss forgets, the OTA client's own reset, RTC memory shared with the
# LoRaWAN store and the node's state, the daily record on its FPort, and the exception hash.
# mp: -X heapsize=128K
import struct

from bysans import diag
from bysans import diag_spec as S
from bysans import rtcstate
from bysans.uplink import ListSink


class Board:
    def __init__(self):
        self.rtc = b""
        self.now_s = 1750000000

    def rtc_memory(self, data=None):
        if data is None:
            return self.rtc
        assert len(data) <= 2048
        self.rtc = bytes(data)

    def epoch_s(self):
        return self.now_s


def _boots(b, *causes):
    for c in causes:
        d = diag.boot(b, c)
    return diag.fields(b)


def test_boots_and_watchdog_resets_survive_deep_sleep_not_a_power_loss():
    b = Board()
    f = _boots(b, "power_on", "deepsleep", "deepsleep")
    assert (f["boots"], f["watchdog_resets"], f["reset_cause"]) == (1, 0, "power_on"), f
    f = _boots(b, "watchdog", "deepsleep", "watchdog", "deepsleep", "soft")
    assert (f["boots"], f["watchdog_resets"], f["reset_cause"]) == (4, 2, "soft"), f
    b.rtc = b""  # a power loss
    f = _boots(b, "power_on")
    assert (f["boots"], f["watchdog_resets"], f["reset_cause"]) == (1, 0, "power_on"), f


def test_the_ota_clients_own_reset_is_not_counted():
    b = Board()
    _boots(b, "power_on")
    diag.planned(b)
    f = _boots(b, "hard")
    assert (f["boots"], f["reset_cause"]) == (1, "power_on"), f
    f = _boots(b, "hard")  # the next one counts again
    assert (f["boots"], f["reset_cause"]) == (2, "hard"), f


def test_corrupted_record_starts_afresh():
    b = Board()
    _boots(b, "power_on", "watchdog")
    m = bytearray(b.rtc)
    m[diag.OFFSET + 4] ^= 0xFF
    b.rtc = bytes(m)
    f = _boots(b, "watchdog")
    assert (f["boots"], f["watchdog_resets"]) == (1, 1), f


def test_shares_rtc_memory_with_the_lorawan_store_and_the_node_state():
    from array import array

    from bysans.lorawan import store

    assert store.RTC_OFFSET + store.RTC_SIZE <= diag.OFFSET
    assert diag.OFFSET + diag.SIZE <= rtcstate.OFFSET
    b = Board()
    path = "/tmp/bysans_mp_diag_lorawan.dat"
    st = store.PersistentStore(b, path=path)
    st.put("fu", 7)
    words = array("i", [1, 2, 3])
    node = rtcstate.RtcState([words], "layout")
    _boots(b, "power_on", "watchdog")
    node.save(b)  # writes the bytes before its offset back as they were
    st.put("fu", 8)  # so does the LoRaWAN store around its region
    f = _boots(b, "deepsleep")
    assert (f["boots"], f["watchdog_resets"]) == (2, 1), f
    again = store.PersistentStore(b, path=path + ".none")
    assert again.source == "rtc" and again.get("fu") == 8
    words2 = array("i", [0, 0, 0])
    assert rtcstate.RtcState([words2], "layout").restore(b) == rtcstate.OK and list(words2) == [1, 2, 3]


def test_a_lorawan_value_flash_did_not_take_never_reaches_rtc_memory():
    # the store makes its record in the shared RTC buffer (bysans.hal.rtcmem) and writes flash from it: when that
    # write fails, the next save of another region must not carry the record into RTC memory
    from bysans.lorawan import store

    b = Board()
    _boots(b, "power_on")
    st = store.PersistentStore(b, path="/nonexistent/bysans_mp_diag_lorawan.dat")
    try:
        st.put("fu", 9)
        raise AssertionError("a put whose flash write failed returned")
    except store.StoreError:
        pass
    diag.save(b)
    assert store.decode(b.rtc[store.RTC_OFFSET:store.RTC_OFFSET + store.RTC_SIZE]) is None, b.rtc
    f = _boots(b, "deepsleep")
    assert f["boots"] == 1, f


def test_the_record_goes_on_its_fport_once_a_day_with_the_heap_low_water():
    b = Board()
    _boots(b, "power_on")
    diag.heap(90000)
    diag.heap(70001)
    diag.heap(80000)
    sink = ListSink()
    assert diag.send_due(b, sink, b.now_s)  # the first wake after a power-on
    port, rec = sink.frames[0]
    assert port == S.FPORT == 221 and len(rec) == S.LENGTH == 12
    # by hand: version 1, cause power_on (1), boots 1, wdt 0, heap 70001 // 16 = 4375, no exception
    assert rec == bytes([1, 1, 0, 1, 0, 0, 4375 >> 8, 4375 & 0xFF, 0, 0, 0, 0]), rec
    diag.save(b)
    for dt in (600, 3600, 86399):  # the next day's record, not before
        d = diag.boot(b, "deepsleep")
        assert not diag.send_due(b, sink, b.now_s + dt), dt
    d = diag.boot(b, "deepsleep")
    assert d[3] == 0xFFFFFFFF  # the heap minimum starts again after a record
    diag.heap(65000)
    assert diag.send_due(b, sink, b.now_s + 86400)
    assert struct.unpack(">H", sink.frames[1][1][6:8])[0] == 65000 // 16


def test_a_failed_send_is_tried_at_the_next_wake():
    class Down:
        def send(self, port, data):
            raise OSError(11)

    b = Board()
    _boots(b, "power_on")
    assert not diag.send_due(b, Down(), b.now_s)
    sink = ListSink()
    assert diag.send_due(b, sink, b.now_s + 60) and len(sink.frames) == 1


def test_exception_hash_is_crc32_of_the_traceback_and_goes_into_the_record():
    import binascii
    import io
    import sys

    b = Board()
    _boots(b, "power_on")
    try:
        {}["fill"]
    except KeyError as e:
        buf = io.StringIO()
        sys.print_exception(e, buf)
        h = diag.exception(e)
    assert h == binascii.crc32(buf.getvalue().encode()) & 0xFFFFFFFF
    f = diag.fields(b)
    assert f["exception"] == "%08x" % h
    sink = ListSink()
    diag.send_due(b, sink, b.now_s)
    assert struct.unpack(">I", sink.frames[0][1][8:12])[0] == h
