# The TS004 fragmentation package in the node (firmware/bysans/fuota/frag.py and the dispatcher,
# bysans/fuota/dispatch.py) where the filesystem and the multicast groups matter: a setup on littlefs is
# accepted only when the session can complete (the flash is taken, not guessed from os.statvfs), fragments
# of a multicast group outside the session's McGroupBitMask are dropped, and the answers to a multicast
# FragSessionStatusReq wait a random delay within the BlockAckDelay window (TS004 v1.0.0 3.2, 3.4).
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=160K
import os
import time

from bysans.fuota import frag, frag_spec as fs
from frag_support import cleanup as _cleanup, encode as _encode, files as _files, same as _same, status as _status

_ROOT = "/tmp/bysans-mp-groups-%d" % time.ticks_us()


class Store:
    def __init__(self, name):
        self.root = _ROOT + "-" + name
        self.t = 1000
        self.timeout_s = 3600

    def now(self):
        return self.t


class _RamBlocks:
    # a block device in RAM for a littlefs of the board's kind (vfs.VfsLfs2), 512-byte blocks
    def __init__(self, n, size=512):
        self.size, self.n, self.data = size, n, bytearray(n * size)

    def readblocks(self, b, buf, off=0):
        a = b * self.size + off
        buf[:] = self.data[a:a + len(buf)]

    def writeblocks(self, b, buf, off=0):
        a = b * self.size + off
        self.data[a:a + len(buf)] = buf

    def ioctl(self, op, arg):
        return {4: self.n, 5: self.size, 6: 0}.get(op)


def test_setup_on_littlefs_is_accepted_only_when_the_session_can_complete():
    # on littlefs, os.statvfs is not a measure of the room (it was seen to wrap to ~4 GB free): the setup
    # takes the flash it needs. Whatever the filesystem has left, a session that is accepted rebuilds its
    # block to the end, and a refused one leaves no file behind.
    import vfs

    mount = "/bysans-lfs-%d" % time.ticks_us()
    bd = _RamBlocks(64)  # 32 KiB
    vfs.VfsLfs2.mkfs(bd)
    vfs.mount(vfs.VfsLfs2(bd), mount)
    try:
        data = bytes((i * 11 + 5) & 0xFF for i in range(1500))
        m, pad, frags = _encode(data, 50, 6)
        lost = (2, 7, 19)
        accepted = refused = 0
        for fill in range(0, 60 * 512, 2048):
            with open(mount + "/filler", "wb") as f:
                for _ in range(fill // 512):
                    f.write(bytes(512))
            store = Store("lfs")
            store.root = mount + "/fuota"
            ans = frag.handle(fs.pack_setup_req(0, m, 50, pad), store)
            if ans == bytes([fs.SETUP_CID, fs.SETUP_NOT_ENOUGH_MEMORY]):
                refused += 1
                assert _files(store) == []
            else:
                assert ans == bytes([fs.SETUP_CID, 0]), ans
                accepted += 1
                for i, f in enumerate(frags):
                    if i not in lost:
                        frag.handle(f, store)
                assert _same(store, data), fill
            frag.delete(store)
            os.remove(mount + "/filler")
        assert accepted and refused, (accepted, refused)
    finally:
        vfs.umount(mount)


class _Board:
    def __init__(self):
        self.t = 1000

    def epoch_s(self):
        return self.t


def _fuota(name, rand=None):
    from bysans.fuota.dispatch import Fuota
    from bysans.lorawan.radio import MemoryStore

    store = MemoryStore()
    store.root = _ROOT + "-" + name
    b = _Board()
    store.now = b.epoch_s
    return b, store, Fuota(b, store, session_mark=None, rand=rand)


def _session_of(f, store, m, s, pad, mask, delay=0):
    f.handle(201, fs.pack_setup_req(0, m, s, pad, mc_group_mask=mask, block_ack_delay=delay))
    assert f.queue == [(201, bytes([fs.SETUP_CID, 0]))], f.queue
    f.queue = []


def test_multicast_fragments_outside_the_session_group_mask_are_dropped():
    b, store, f = _fuota("mask")
    data = bytes(range(150))
    m, pad, frags = _encode(data, 15, 2)
    _session_of(f, store, m, 15, pad, 0b0100)  # group 2 only
    for x in frags:
        f.handle(201, x, 1)  # group 1: not this session's
    assert _status(store)["received"] == 0
    for x in frags[:3]:
        f.handle(201, x)  # unicast always feeds the session (TS004 3.4)
    for x in frags[3:]:
        f.handle(201, x, 2)
    assert _status(store)["received"] == len(frags) and _same(store, data)
    _cleanup(store)


def test_answers_to_multicast_status_requests_wait_a_random_delay_within_block_ack_delay():
    draws = [0, 31999, 12345, 7 << 20]
    b, store, f = _fuota("delay", rand=lambda: draws.pop(0))
    m, pad, frags = _encode(bytes(100), 10, 2)
    _session_of(f, store, m, 10, pad, 0b0001, delay=1)  # the window: 2^(1+4) = 32 s
    f.handle(201, frags[0], 0)
    f.handle(201, fs.pack_status_req(0, True))  # unicast: answered at once
    [(port, ans)] = [x for x in f.take() if x[0] == 201]  # (an AppTimeReq too: the clock is not synced)
    assert fs.unpack_status_ans(ans[1:])["missing"] == m - 1
    expect = []
    for r in (0, 31999, 12345, 7 << 20):
        f.handle(201, fs.pack_status_req(0, True), 0)
        expect.append(r % 32000)
    assert f.queue == [] and len(f.held) == 4
    assert [x for x in f.take() if x[0] == 201] == [(201, fs.pack_status_ans(0, 1, m - 1, 0))]  # drawn 0: due now
    sent = 1
    while f.held_ms() >= 0:
        w = f.held_ms()
        assert 0 < w < 32000, w
        b.t += (w + 999) // 1000
        sent += len([x for x in f.take() if x[0] == 201])
    assert sent == 4 and b.t - 1000 <= 32 and b.t - 1000 >= max(expect) // 1000
    # the board's own random source spreads them over the window
    b, store2, f = _fuota("delay2")
    store2.root = store.root  # the same session
    for _ in range(20):
        f.handle(201, fs.pack_status_req(0, True), 0)
    due = [h[0] - b.t * 1000 for h in f.held]
    assert all(0 <= d < 32000 for d in due) and len(set(due)) > 10, due
    _cleanup(store)
