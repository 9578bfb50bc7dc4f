# The firmware encoder under MicroPython: the bytes of docs/formats/payload.md's examples, batch
# bookkeeping and limits.
from bysans import payload_spec as S
from bysans.payload import PayloadError, PayloadTooLarge, ReadingBatch, encode, encode_fitting


def _hex(b):
    return "".join("%02x" % x for x in b)


def test_doc_examples_bytes():
    buf = bytearray(51)
    b = ReadingBatch(S.KIND_WASTE)
    b.add([420, 7300, -350, 3710, 0])
    b.add([424, 7260, -410, 3700, 0], 1 << S.W_TEMP)
    b.add([1130, 200, -420, 3700, S.FLAG_TILT | S.FLAG_PICKUP])
    n = encode(buf, b, interval_min=15, age_min=1, frame_values=(-12,))
    assert _hex(buf[:n]) == "02230fbfe8500d23c7f8584721367ffb7273c56395ccc05c"
    e = ReadingBatch(S.KIND_ENV)
    e.add([1234, 655, 101325, 612, 8, 14, 3710])
    e.add([1251, 650, 101318, 618, 9, 15, 3710])
    assert _hex(buf[:encode(buf, e, interval_min=10)]) == "02420a137ac846dee007a58041c071d740"
    assert _hex(buf[:encode(buf, ReadingBatch(S.KIND_WASTE), interval_min=15)]) == "0220"


def test_batch_add_drop_and_limits():
    b = ReadingBatch(S.KIND_WASTE, capacity=3)
    for i in range(3):
        b.add([i, i, i, i, 0])
    try:
        b.add([9, 9, 9, 9, 0])
        raise AssertionError("a full batch took a reading")
    except PayloadError:
        pass
    b.drop(2)
    assert b.n == 1 and b.values[0] == 2


def test_too_small_buffer_and_fitting():
    b = ReadingBatch(S.KIND_ENV)
    for i in range(20):
        b.add([1000 + 311 * (i % 2), 500, 100000 + 500 * (i % 3), 400 + 977 * (i % 2), i, 2 * i, 3700])
    try:
        encode(bytearray(10), b, interval_min=10)
        raise AssertionError("wrote past the buffer")
    except PayloadTooLarge:
        pass
    n, sent = encode_fitting(memoryview(bytearray(51)), b, interval_min=10)
    assert n <= 51 and 0 < sent < 20
