# The sink says what failed. The wake's log line keeps a failure the sink swallowed: a send that ran out of memory (here in the LoRaWAN
# store's write, where a board at the edge of its heap ran out reading RTC memory) costs that uplink, and a
# later send that works must not hide it (lab/wake.py judges a wake by its serial output: a MemoryError it
# cannot see is a heap figure that is kinder than the board).
from binascii import unhexlify

from bysans import sink
from bysans.lorawan import mac
from bysans.lorawan.radio import MemoryStore
from lorawan_fakes import FakeClock, FakeNetwork, FakeRadio

KEY = unhexlify("2B7E151628AED2A6ABF7158809CF4F3C")
DEV = unhexlify("70B3D57ED0000001")
JOIN = unhexlify("70B3D57ED0000000")


class OnceOutOfMemory(MemoryStore):
    def __init__(self):
        super().__init__()
        self.armed = False

    def put(self, name, value):
        if self.armed:
            self.armed = False
            raise MemoryError("memory allocation failed, allocating 1377 bytes")
        super().put(name, value)


def _sink():
    clock = FakeClock(1000)
    radio = FakeRadio(clock)
    net = FakeNetwork(KEY)
    net.attach(radio)
    store = OnceOutOfMemory()
    m = mac.ClassA(radio, clock, store, dev_eui=DEV, join_eui=JOIN, app_key=KEY)
    return sink.LoRaWANSink(clock, (DEV, JOIN, KEY), mac=m, store=store, max_wait_ms=10 ** 9), store, net


def test_a_send_that_ran_out_of_memory_stays_in_the_line_after_a_later_send_worked():
    s, store, net = _sink()
    assert s.join()
    store.armed = True
    try:
        s.send(2, b"\x01\x02")
        raise AssertionError("the send should have failed")
    except sink.SinkError:
        pass
    s.send(2, b"\x01\x02")
    line = s.summary()
    assert s.problem is None and s.sent == 1, (s.problem, s.sent)
    assert "earlier: MemoryError: memory allocation failed" in line, line


def test_a_clean_wake_says_nothing_of_failures():
    s, store, net = _sink()
    assert s.join()
    s.send(2, b"\x01")
    line = s.summary()
    assert "earlier" not in line and "(" not in line, line


def test_credentials_missing_are_none_and_any_other_open_failure_is_raised():
    assert sink.read_credentials("/tmp/bysans_no_such_lorawan.json") is None
    try:
        sink.read_credentials("/tmp")  # a directory: EISDIR, as an out-of-memory littlefs gives ENOMEM
        raise AssertionError("a failure to read the credentials was taken for no credentials")
    except OSError as e:
        assert e.errno != 2, e
