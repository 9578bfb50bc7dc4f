# The TS004 fragmentation decoder on the device (firmware/bysans/fuota/frag.py) under MicroPython: sessions,
# fragments to flash, FEC rebuild from any fragments of full rank, status answers, bad fragments, resets and
# timeouts. The parity matrix is checked against brocaar/lorawan's published encoder vectors
# (applayer/fragmentation/encode_test.go, "fragment size 10, redundancy 10": data bytes 0..99), which were
# made by an implementation independent of this one.
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=96K
import gc
import os
import time

from bysans.fuota import frag, frag_spec as fs
from frag_support import cleanup as _cleanup, encode as _encode, files as _files, same as _same, status as _status

_ROOT = "/tmp/bysans-mp-frag-%d" % time.ticks_us()

# brocaar/lorawan applayer/fragmentation/encode_test.go: the 10 coded fragments of bytes(range(100)) in
# 10-byte fragments (their 10 uncoded fragments are the data itself)
BROCAAR_CODED = (
    "262622222e2e22222626", "5455565758596a6b7c7d", "5c5d6e6f101102030405", "363632323e3e22223636",
    "3a3a0e0e0a0a06060a0a", "0e0e3232363622223e3e", "02020e0e727276766262", "1e1e1a1a66665a5a4e4e",
    "1a1b1c1d1e1f30312223", "22232425262718190a0b",
)


class Store:
    def __init__(self, name, timeout_s=3600, **limits):
        self.root = _ROOT + "-" + name
        self.t = 1000
        self.timeout_s = timeout_s
        for k in limits:
            setattr(self, k, limits[k])

    def now(self):
        return self.t


def _reset():
    frag._cache.clear()  # what a reset or deep sleep leaves of RAM: nothing


class _Rand:  # a small LCG: the same losses on every port
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


def _setup(store, m, s, padding, index=0):
    ans = frag.handle(fs.pack_setup_req(index, m, s, padding, b"\x01\x02\x03\x04"), store)
    assert ans == bytes([fs.SETUP_CID, index << 6]), ans


def _rebuilt(store):
    path = frag.block_path(store)
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def test_matrix_rows_match_brocaar_vectors():
    import binascii
    data = bytes(range(100))
    m, pad, frags = _encode(data, 10, 10)
    assert m == 10 and pad == 0
    assert [binascii.hexlify(f[3:]).decode() for f in frags[10:]] == list(BROCAAR_CODED)


def test_rebuilds_brocaar_block_from_coded_fragments_with_losses():
    import binascii
    store = Store("brocaar")
    data = bytes(range(100))
    _setup(store, 10, 10, 0)
    sent = [fs.pack_data_fragment(0, n + 1, data[n * 10:n * 10 + 10]) for n in range(10)]
    sent += [fs.pack_data_fragment(0, 11 + k, binascii.unhexlify(h)) for k, h in enumerate(BROCAAR_CODED)]
    lost = (1, 4, 7, 10, 13)  # three uncoded and two coded fragments lost
    for i, f in enumerate(sent):
        if i not in lost:
            assert frag.handle(f, store) is None  # no answer to a data fragment
    assert _rebuilt(store) == data
    assert _files(store) == ["frag.bin", "frag.ses"]  # the log and working rows are freed
    _cleanup(store)


def test_any_fragments_of_full_rank_rebuild_the_block_in_any_order():
    data = bytes((i * 7 + 3) & 0xFF for i in range(997))  # 42 fragments of 24 bytes, the last padded
    m, pad, frags = _encode(data, 24, 30)
    assert pad == 42 * 24 - 997
    rebuilt = 0
    for seed in (1, 2, 3, 4):
        store = Store("any%d" % seed)
        _setup(store, m, 24, pad)
        rnd = _Rand(seed)
        order = [f for f in frags if rnd.below(100) >= 20]  # 20 % lost
        for i in range(len(order) - 1, 0, -1):  # and shuffled
            j = rnd.below(i + 1)
            order[i], order[j] = order[j], order[i]
        for f in order:
            frag.handle(f, store)
        st = _status(store)
        assert st["received"] == len(order)
        if st["missing"] == 0:
            assert _rebuilt(store) == data
            rebuilt += 1
        else:
            assert _rebuilt(store) is None
        _cleanup(store)
    assert rebuilt >= 3  # 20 % loss against 71 % redundancy: a full rank nearly always


def test_status_counts_received_and_missing_and_only_participants_answer_when_done():
    store = Store("status")
    data = bytes(range(200))
    m, pad, frags = _encode(data, 20, 4)
    _setup(store, m, 20, pad)
    assert _status(store) == {"frag_index": 0, "received": 0, "missing": 10, "not_enough_matrix_memory": False}
    for n in (0, 1, 2, 4, 5):
        frag.handle(frags[n], store)
    assert _status(store, participants=0)["missing"] == 5  # still missing: answers even if not asked all
    assert _status(store)["received"] == 5
    assert _status(store, index=1) is None  # no session 1
    for f in frags[6:]:
        frag.handle(f, store)
    st = _status(store)
    assert st["missing"] == 0 and st["received"] == 5 + 8
    assert _status(store, participants=0) is None  # done: only asked-for participants answer
    assert _rebuilt(store) == data
    _cleanup(store)


def test_fragments_of_another_session_or_size_and_duplicates_change_nothing():
    store = Store("bad")
    data = bytes(range(120))
    m, pad, frags = _encode(data, 12, 4)
    _setup(store, m, 12, pad, index=2)
    _, _, other = _encode(bytes(120), 12, 4, index=1)
    for f in other:
        frag.handle(f, store)  # FragIndex 1: not this session
    frag.handle(frags[0][:-1], store)  # one byte short
    frag.handle(frags[0] + b"\x00", store)  # one byte long
    frag.handle(b"\x08\x00\x80" + bytes(12), store)  # N = 0
    assert _status(store, index=2)["received"] == 0
    with open(store.root + "/frag.log", "rb") as f:
        assert f.read() == b""
    for f in frags[:m] + frags[:3]:
        frag.handle(f[:2] + bytes([f[2] | 0x80]) + f[3:], store)  # FragIndex 2, and three twice
    st = _status(store, index=2)
    assert st["received"] == m + 3 and st["missing"] == 0
    assert _rebuilt(store) == data
    _cleanup(store)


def test_a_partial_session_survives_resets_and_a_torn_log_record():
    store = Store("reset")
    data = bytes((i * 13) & 0xFF for i in range(640))
    m, pad, frags = _encode(data, 32, 8)
    _setup(store, m, 32, pad)
    keep = [f for i, f in enumerate(frags) if i not in (3, 9, 15)]
    for f in keep[:12]:
        frag.handle(f, store)
    _reset()
    with open(store.root + "/frag.log", "ab") as f:
        f.write(b"\x11" * 20)  # a record cut short by a power cut
    with open(store.root + "/frag.blk", "wb") as f:
        f.write(bytes(m * 32))  # working rows half written: the log is replayed over them
    assert _status(store)["missing"] == m - 12
    for f in keep[12:16]:
        frag.handle(f, store)
    _reset()
    for f in keep[16:]:
        frag.handle(f, store)
    assert _rebuilt(store) == data
    _reset()
    assert _rebuilt(store) == data and _status(store)["missing"] == 0
    _cleanup(store)


def test_a_reset_after_the_block_was_written_finishes_the_session():
    store = Store("late")
    data = bytes(range(50))
    m, pad, frags = _encode(data, 10, 2)
    _setup(store, m, 10, pad)
    for f in frags[:m - 1]:
        frag.handle(f, store)
    # the state a power cut leaves right after frag.bin was renamed into place, before the log was removed
    # and the record marked done
    with open(store.root + "/frag.bin", "wb") as f:
        f.write(data)
    _reset()
    assert _rebuilt(store) == data
    assert _files(store) == ["frag.bin", "frag.ses"]
    _cleanup(store)


def test_a_session_that_times_out_frees_its_flash():
    store = Store("timeout", timeout_s=600)
    m, pad, frags = _encode(bytes(300), 30, 2)
    _setup(store, m, 30, pad)
    for f in frags[:4]:
        frag.handle(f, store)
    assert _files(store) == ["frag.blk", "frag.log", "frag.ses"]
    store.t += 599
    assert not frag.expire(store) and _status(store)["received"] == 4
    store.t += 1
    _reset()  # also after a deep sleep
    assert frag.expire(store)
    assert _files(store) == []
    frag.handle(frags[5], store)
    assert _status(store) is None and _files(store) == []
    # a setup cut short by a reset: working files, no session record
    with open(store.root + "/frag.blk", "wb") as f:
        f.write(bytes(300))
    with open(store.root + "/frag.log", "wb") as f:
        f.write(b"\x01")
    _reset()
    assert not frag.expire(store) and _files(store) == []
    _cleanup(store)


def test_setup_answers_refusals_and_delete():
    store = Store("setup", max_block_bytes=4000)
    assert frag.handle(b"\x00", store) == bytes([0, fs.PACKAGE_ID, fs.PACKAGE_VERSION])
    ans = frag.handle(fs.pack_setup_req(1, 10, 10, 0, matrix=1), store)
    assert ans == bytes([fs.SETUP_CID, 1 << 6 | fs.SETUP_ENCODING_UNSUPPORTED])
    ans = frag.handle(fs.pack_setup_req(1, 100, 41, 0), store)  # 4100 bytes > 4000
    assert ans == bytes([fs.SETUP_CID, 1 << 6 | fs.SETUP_NOT_ENOUGH_MEMORY])
    assert _files(store) == []
    _setup(store, 10, 10, 0, index=1)
    assert frag.accepts_group(store, 0) and not frag.accepts_group(store, 1)  # McGroupBitMask 0b0001
    assert frag.answer_delay_max_s(store) == 16
    frag.handle(fs.pack_data_fragment(1, 1, bytes(10)), store)
    ans = frag.handle(fs.pack_setup_req(1, 10, 10, 0, mc_group_mask=0b0110, block_ack_delay=2), store)
    assert ans == bytes([fs.SETUP_CID, 1 << 6])  # the same index again: a new session replaces the old one
    assert _status(store, index=1)["received"] == 0
    assert frag.accepts_group(store, 2) and not frag.accepts_group(store, 0)
    assert frag.answer_delay_max_s(store) == 64
    ans = frag.handle(fs.pack_setup_req(2, 10, 10, 0), store)
    assert ans == bytes([fs.SETUP_CID, 2 << 6 | fs.SETUP_INDEX_UNSUPPORTED])
    assert frag.handle(fs.pack_delete_req(2), store) == bytes([fs.DELETE_CID, 2 | fs.DELETE_NO_SESSION])
    # two commands in one frame: two answers
    ans = frag.handle(fs.pack_status_req(1, 1) + fs.pack_delete_req(1), store)
    assert ans == fs.pack_status_ans(1, 0, 10, 0) + bytes([fs.DELETE_CID, 1])
    assert _files(store) == []
    _cleanup(store)


def test_too_many_losses_for_the_matrix_memory_are_reported():
    store = Store("memory", matrix_bytes=40)  # 64 columns: 8 bytes a coded pivot, so 5 of them
    data = bytes(range(256)) * 2
    m, pad, frags = _encode(data, 8, 20)
    _setup(store, m, 8, pad)
    for i, f in enumerate(frags):
        if i % 8 != 0:  # 8 uncoded fragments lost
            frag.handle(f, store)
    st = _status(store)
    assert st["not_enough_matrix_memory"] and st["missing"] == 3
    assert _rebuilt(store) is None
    assert _files(store) == ["frag.ses"]  # aborted: the fragments' flash is freed at once
    _reset()
    st = _status(store, participants=0)
    assert st["not_enough_matrix_memory"] and st["missing"] == 3
    _setup(store, m, 8, pad, index=1)  # an aborted session does not block a new one
    _cleanup(store)


def test_heap_stays_small_while_decoding():
    # 100 fragments of 50 bytes (5000 bytes), 10 of them lost and recovered from coded ones: what the
    # decoder keeps is its bit rows, never the block
    store = Store("heap")
    data = bytes((i * 31 + 7) & 0xFF for i in range(5000))
    m, pad, frags = _encode(data, 50, 16)
    lost = set(range(5, 100, 10))
    _setup(store, m, 50, pad)
    gc.collect()
    base = gc.mem_alloc()
    peak = 0
    for i, f in enumerate(frags):
        if i in lost:
            continue
        frag.handle(f, store)
        gc.collect()
        peak = max(peak, gc.mem_alloc() - base)
    assert _same(store, data)
    print("heap growth while decoding: %d bytes" % peak)
    assert peak < 10 * 13 + 2048, peak  # 10 coded pivots of 13 bytes, plus the dict: far below the 5000
    _cleanup(store)


def test_a_store_that_only_names_its_directory_gets_the_defaults():
    # the dispatcher's store may lack now() and timeout_s: the board's clock and TIMEOUT_S then
    class Bare:
        root = _ROOT + "-bare"

    store = Bare()
    data = bytes(range(90))
    m, pad, frags = _encode(data, 30, 1)
    _setup(store, m, 30, pad)
    assert frag._cache[store.root].deadline >= int(time.time()) + frag.TIMEOUT_S - 5
    for f in frags:
        frag.handle(f, store)
    assert _rebuilt(store) == data
    _cleanup(store)

