# Fragmented Data Block Transport (TS004 v1.0.0, FPort 201) on the device: session setup, status and delete,
# and the data fragments, decoded with the specification's parity-check code so that any M of the M + R
# fragments whose rows have full rank rebuild the block. Messages and the matrix: frag_spec.py.
#
# `handle(payload, store)` takes one FPort-201 downlink and returns the FPort-201 answer (or None). `store`
# (the dispatcher's, bysans.fuota) may say where and when; each attribute it lacks takes the default below:
#   store.root        a directory on the board's filesystem this module owns (created if missing); ROOT
#   store.now()       seconds, monotonic across deep sleep (the clock-synced time; any epoch); time.time()
#   store.timeout_s   a session set up at t is deleted, with its files, at t + timeout_s unless rebuilt;
#                     TIMEOUT_S
#   store.matrix_bytes, store.max_block_bytes   limits; MATRIX_BYTES, MAX_BLOCK_BYTES
#
# Nothing of the block is held in RAM. Files in store.root:
#   frag.ses  the session: magic "BFS1" | FragSession u8 (as in the setup: group mask, FragIndex) | NbFrag u16
#             | FragSize u8 | Control u8 (as in the setup) | Padding u8 | Descriptor 4 | deadline u32 | state u8
#             (0 open, 1 rebuilt, 2 aborted: not enough matrix memory) | MissingFrag u16 at the abort | crc32 u32 — written to a temporary file and renamed over (littlefs
#             renames atomically: a power cut leaves the old record or the new one)
#   frag.log  append-only, one fixed-size record per fragment that added information (a new pivot):
#             N u16 | fragment FragSize | crc32 u32 (of N and the fragment, seeded with the crc of the
#             session record's fields up to the deadline, so a record of an earlier session never passes). A record cut short by a power cut fails its crc;
#             the next one is written over it. This log is the truth: after a reset it is replayed.
#   frag.blk  NbFrag·FragSize working rows: row c holds the fragment, or the reduced data of the coded
#             fragment whose pivot is column c; solved in place when the rank reaches NbFrag
#   frag.room written and removed at setup: the flash the log and frag.bin will take (_allocate)
#   frag.bin  the rebuilt block, NbFrag·FragSize − Padding bytes (temporary file, then renamed); once it
#             exists the log and the working rows are removed and the session is marked done
#
# Decoding (TS004-2.0.0 annex A.2: Gaussian elimination over GF(2), as fragments arrive): each fragment is a
# row of NbFrag bits — a unit row for an uncoded fragment, frag_spec.matrix_row for a coded one — reduced by
# the pivots already held, lowest column first. A row left non-zero becomes the pivot of its lowest column; a
# zero row (a duplicate, or a coded fragment that adds nothing) is dropped. Only coded pivots keep their bits
# in RAM: (pivots from coded fragments) × NbFrag/8 bytes, at most matrix_bytes. At full rank a back
# substitution, highest column first, leaves the data rows in frag.blk.
import os
import struct
import binascii
import time

from bysans.device_spec import FUOTA_FRAG as ROOT  # default directory of the session's files
from bysans.fuota import frag_spec as fs

TIMEOUT_S = 172800          # default lifetime of a session that is not rebuilt: two days
MATRIX_BYTES = 4096         # default bound of the coded pivots' bits in RAM
MAX_BLOCK_BYTES = 65536     # default bound of a block (NbFrag · FragSize)

ENOSPC = 28                # errno: littlefs has no free block
RESERVE_BYTES = 8192        # flash a session needs beyond its files' bytes (littlefs blocks, the record)

SESSION = "frag.ses"
LOG = "frag.log"
BLOCK = "frag.blk"
OUT = "frag.bin"
PROBE = "frag.room"  # written and removed at setup: the room the session needs (_allocate)
_MAGIC = b"BFS1"
_SES = "<4sBHBBB4sIBH"
_SES_SIZE = 21
_SEED_SIZE = 18  # the fields a session keeps from its setup to its end
_CHUNK = 256

_cache = {}  # store.root -> the decoder of its session, so a session is replayed only once per boot


class _Session:
    def __init__(self, root, fsess, m, s, control, padding, descriptor, deadline, state=0, missing_at=0):
        self.root, self.fsess, self.m, self.s, self.control = root, fsess, m, s, control
        self.index = (fsess >> 4) & 0x03
        self.padding, self.descriptor, self.deadline = padding, descriptor, deadline
        self.done = state == 1
        self.memory_error = state == 2
        self.missing_at = missing_at
        self.seed = binascii.crc32(self.record()[:_SEED_SIZE]) & 0xFFFFFFFF
        self.nbytes = (m + 7) >> 3
        self.have = bytearray(self.nbytes)  # a pivot for column c
        self.rows = {}                      # column -> bits of a coded pivot
        self.rank = 0
        self.received = 0                   # every fragment of this session since setup (or since reset)
        self.matrix_bytes = MATRIX_BYTES
        self.logged = 0
        self._row = bytearray(self.nbytes)
        self._buf = bytearray(s)
        self._rec = bytearray(2 + s + 4)

    def path(self, name):
        return self.root + "/" + name

    def record(self):
        body = struct.pack(_SES, _MAGIC, self.fsess, self.m, self.s, self.control, self.padding,
                           self.descriptor, self.deadline, 1 if self.done else 2 if self.memory_error else 0,
                           self.missing_at)
        return body + struct.pack("<I", binascii.crc32(body) & 0xFFFFFFFF)

    def missing(self):
        if self.done:
            return 0
        return self.missing_at if self.memory_error else self.m - self.rank

    # -- fragments
    def add(self, n, data, blk, log=None):
        """Reduces fragment n; True when it became a pivot (then logged first when `log` is an open file)."""
        m, s, row = self.m, self.s, self._row
        if n <= m:
            c = n - 1
            if not self.have[c >> 3] >> (c & 7) & 1:
                if log is not None:
                    self._log(log, n, data)
                self._write(blk, c, data, log is None)
                self._pivot(c, None)
                return True
            if c not in self.rows:
                return False  # the same uncoded fragment again
            for i in range(self.nbytes):
                row[i] = 0
            row[c >> 3] = 1 << (c & 7)
        else:
            fs.matrix_row(n - m, m, row)
        acc = int.from_bytes(data, "little")
        lead = -1
        c = 0
        while c < m:
            bits = row[c >> 3] >> (c & 7)
            if not bits:
                c = (c | 7) + 1
                continue
            if bits & 1:
                if self.have[c >> 3] >> (c & 7) & 1:
                    prow = self.rows.get(c)
                    if prow is None:
                        row[c >> 3] ^= 1 << (c & 7)
                    else:
                        for i in range(c >> 3, self.nbytes):
                            row[i] ^= prow[i]
                    acc ^= self._read(blk, c)
                elif lead < 0:
                    lead = c
            c += 1
        if lead < 0:
            return False  # no new information
        if (len(self.rows) + 1) * self.nbytes > self.matrix_bytes:
            self.memory_error = True
            return False
        if log is not None:
            self._log(log, n, data)
        self._write(blk, lead, acc.to_bytes(s, "little"), log is None)
        self._pivot(lead, bytes(row))
        return True

    def _pivot(self, c, bits):
        self.have[c >> 3] |= 1 << (c & 7)
        if bits is not None:
            self.rows[c] = bits
        self.rank += 1

    def _read(self, f, c):
        f.seek(c * self.s)
        f.readinto(self._buf)
        return int.from_bytes(self._buf, "little")

    def _write(self, f, c, data, replay=False):
        if replay:  # after a reset the row is mostly there already: flash is written only where it is not
            f.seek(c * self.s)
            f.readinto(self._buf)
            if self._buf == data:
                return
        f.seek(c * self.s)
        f.write(data)

    def _log(self, log, n, data):
        rec = self._rec
        struct.pack_into("<H", rec, 0, n)
        rec[2:2 + self.s] = data
        crc = binascii.crc32(memoryview(rec)[:2 + self.s], self.seed) & 0xFFFFFFFF
        struct.pack_into("<I", rec, 2 + self.s, crc)
        log.seek(self.logged * len(rec))
        log.write(rec)
        self.logged += 1

    def solve(self, blk):
        """Back substitution once the rank is full: every coded pivot row becomes its data row."""
        for lead in sorted(self.rows, reverse=True):
            prow = self.rows[lead]
            acc = self._read(blk, lead)
            for c in range(lead + 1, self.m):
                if prow[c >> 3] >> (c & 7) & 1:
                    acc ^= self._read(blk, c)
            self._write(blk, lead, acc.to_bytes(self.s, "little"))


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _mkdir(root):
    if not _exists(root):
        os.mkdir(root)


def _limit(store, name, default):
    return getattr(store, name, default)


def _root(store):
    return getattr(store, "root", ROOT)


def _now(store):
    now = getattr(store, "now", None)
    return now() if now is not None else int(time.time())


def _write_record(sess):
    tmp = sess.path(SESSION + ".tmp")
    with open(tmp, "wb") as f:
        f.write(sess.record())
    os.rename(tmp, sess.path(SESSION))


def _read_session(root):
    try:
        with open(root + "/" + SESSION, "rb") as f:
            rec = f.read()
    except OSError:
        return None
    if len(rec) != _SES_SIZE + 4:
        return None
    crc = binascii.crc32(rec[:_SES_SIZE]) & 0xFFFFFFFF
    if struct.unpack("<I", rec[_SES_SIZE:])[0] != crc:
        return None
    magic, fsess, m, s, control, padding, descriptor, deadline, state, missing_at = struct.unpack(_SES, rec[:_SES_SIZE])
    if magic != _MAGIC:
        return None
    return _Session(root, fsess, m, s, control, padding, descriptor, deadline, state, missing_at)


def _delete(root):
    _cache.pop(root, None)
    for name in (SESSION, LOG, BLOCK, OUT, OUT + ".tmp", SESSION + ".tmp", PROBE):
        _remove(root + "/" + name)


def _sweep(root):
    # files without a session record: a setup cut short by a reset. They hold nothing anyone can use.
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if name.startswith("frag."):
            _remove(root + "/" + name)


def _load(store):
    """The session of store.root (replaying its log after a reset), or None; a timed-out one is deleted."""
    root = _root(store)
    sess = _cache.get(root)
    if sess is None:
        sess = _read_session(root)
        if sess is None:
            _sweep(root)
            return None
        sess.matrix_bytes = _limit(store, "matrix_bytes", MATRIX_BYTES)
        if not sess.done and not sess.memory_error:
            _replay(sess)
        _cache[root] = sess
    if not sess.done and _now(store) >= sess.deadline:
        _delete(root)
        return None
    return sess


def _replay(sess):
    if _exists(sess.path(OUT)):  # rebuilt before the reset, not yet marked done
        _finish_done(sess)
        return
    size = 2 + sess.s + 4
    rec = bytearray(size)
    try:
        log = open(sess.path(LOG), "rb")
    except OSError:
        return
    with log, open(sess.path(BLOCK), "r+b") as blk:
        while log.readinto(rec) == size:
            crc = binascii.crc32(memoryview(rec)[:2 + sess.s], sess.seed) & 0xFFFFFFFF
            if struct.unpack_from("<I", rec, 2 + sess.s)[0] != crc:
                break
            n = rec[0] | rec[1] << 8
            sess.add(n, memoryview(rec)[2:2 + sess.s], blk)
            sess.logged += 1
            sess.received += 1
        if sess.rank == sess.m:
            _complete(sess, blk)
    if sess.memory_error:  # the limit is lower than before the reset
        _abort(sess)


def _abort(sess):
    # not enough matrix memory: the session can no longer be rebuilt; its files go, its record stays so the
    # status answer says why (until the server deletes it or it times out)
    sess.missing_at = sess.m - sess.rank
    _remove(sess.path(LOG))
    _remove(sess.path(BLOCK))
    sess.rows = {}
    _write_record(sess)


def _complete(sess, blk):
    sess.solve(blk)
    tmp = sess.path(OUT + ".tmp")
    left = sess.m * sess.s - sess.padding
    blk.seek(0)
    with open(tmp, "wb") as out:
        buf = bytearray(_CHUNK)
        while left > 0:
            k = blk.readinto(buf)
            k = min(k, left)
            out.write(memoryview(buf)[:k])
            left -= k
    os.rename(tmp, sess.path(OUT))
    _finish_done(sess)


def _finish_done(sess):
    # the working files go first: a reset before the record says done finds frag.bin and comes back here
    _remove(sess.path(LOG))
    _remove(sess.path(BLOCK))
    sess.done = True
    sess.rows = {}
    _write_record(sess)


# -- the commands

def _setup(req, store):
    f = fs.unpack_setup_req(req)
    index = f["frag_index"]
    m, s, padding = f["nb_frag"], f["frag_size"], f["padding"]
    root = _root(store)
    current = _load(store) if _exists(root) else None
    bits = 0
    if f["matrix"] != fs.MATRIX_PARITY or m == 0 or s == 0 or padding >= s:
        bits |= fs.SETUP_ENCODING_UNSUPPORTED
    if current is not None and current.index != index and not current.done and not current.memory_error:
        bits |= fs.SETUP_INDEX_UNSUPPORTED  # one session at a time; delete the other first
    if m * s > _limit(store, "max_block_bytes", MAX_BLOCK_BYTES):
        bits |= fs.SETUP_NOT_ENOUGH_MEMORY
    if bits:
        return fs.pack_setup_ans(index, bits)
    _mkdir(root)
    _delete(root)  # a new setup replaces the session and its context (its flash is free for the new one)
    sess = _Session(root, req[0], m, s, req[4], padding, f["descriptor"], _now(store) + _limit(store, "timeout_s", TIMEOUT_S))
    try:
        _allocate(sess)
    except OSError as e:
        _delete(root)
        if e.args and e.args[0] == ENOSPC:
            return fs.pack_setup_ans(index, fs.SETUP_NOT_ENOUGH_MEMORY)
        raise
    _write_record(sess)
    sess.matrix_bytes = _limit(store, "matrix_bytes", MATRIX_BYTES)
    _cache[root] = sess
    return fs.pack_setup_ans(index, 0)


def _allocate(sess):
    # Whether the session fits is found out by taking the flash, not from os.statvfs (on littlefs it was
    # seen to underestimate the free space with one OTA slot and to wrap to about 4 GB free with two). The
    # working rows are written in full (zeros); then a probe file as large as everything the session writes
    # later -- a log of at most NbFrag records, the rebuilt block beside it -- plus RESERVE_BYTES (littlefs's
    # per-file blocks, the session record) is written and removed.
    # OSError ENOSPC on the way: the filesystem has not the room.
    m, s = sess.m, sess.s
    zero = bytes(_CHUNK)
    with open(sess.path(BLOCK), "wb") as blk:
        left = m * s
        while left > 0:
            blk.write(zero[:min(left, _CHUNK)])
            left -= _CHUNK
    probe = sess.path(PROBE)
    try:
        with open(probe, "wb") as f:
            left = m * (s + 6) + m * s - sess.padding + RESERVE_BYTES
            while left > 0:
                f.write(zero[:min(left, _CHUNK)])
                left -= _CHUNK
    finally:
        _remove(probe)
    with open(sess.path(LOG), "wb"):
        pass


def _status(req, store):
    participants, index = req[0] & 1, (req[0] >> 1) & 0x03
    sess = _load(store) if _exists(_root(store)) else None
    if sess is None or sess.index != index:
        return None
    missing = sess.missing()
    if not participants and missing == 0:
        return None  # only the devices still missing fragments answer
    return fs.pack_status_ans(index, sess.received, missing,
                              fs.STATUS_NOT_ENOUGH_MATRIX_MEMORY if sess.memory_error else 0)


def _delete_cmd(req, store):
    index = req[0] & 0x03
    sess = _load(store) if _exists(_root(store)) else None
    if sess is None or sess.index != index:
        return fs.pack_delete_ans(index, True)
    _delete(_root(store))
    return fs.pack_delete_ans(index, False)


def _fragment(body, store):
    if len(body) < fs.DATA_HEAD_SIZE:
        return
    index, n = fs.unpack_data_head(body)
    sess = _load(store) if _exists(_root(store)) else None
    if sess is None or sess.index != index or n == 0 or len(body) != fs.DATA_HEAD_SIZE + sess.s:
        return  # another session's, or not of this session's size: dropped
    sess.received += 1
    if sess.done or sess.memory_error:
        return
    data = memoryview(body)[fs.DATA_HEAD_SIZE:]
    with open(sess.path(LOG), "r+b") as log, open(sess.path(BLOCK), "r+b") as blk:
        sess.add(n, data, blk, log)
        if sess.rank == sess.m:
            log.close()
            _complete(sess, blk)
    if sess.memory_error:
        _abort(sess)


def handle(payload, store):
    """One FPort-201 downlink -> the FPort-201 answer (bytes) or None."""
    out = b""
    i = 0
    while i < len(payload):
        cid = payload[i]
        i += 1
        if cid == fs.DATA_FRAGMENT_CID:
            _fragment(payload[i:], store)  # the only command of its frame: it takes the rest
            break
        size = fs.REQ_SIZES.get(cid)
        if size is None or i + size > len(payload):
            break  # an unknown command: its length, and so the rest of the frame, is unknown
        req = payload[i:i + size]
        i += size
        if cid == fs.PACKAGE_VERSION_CID:
            ans = bytes([fs.PACKAGE_VERSION_CID, fs.PACKAGE_ID, fs.PACKAGE_VERSION])
        elif cid == fs.SETUP_CID:
            ans = _setup(req, store)
        elif cid == fs.STATUS_CID:
            ans = _status(req, store)
        else:
            ans = _delete_cmd(req, store)
        if ans:
            out += ans
    return out or None


def expire(store):
    """Deletes the session of store.root when its time is up, and the files of a setup a reset cut short
    (call at wake); True when a session was deleted. Reads the session's record only (no log replay)."""
    root = _root(store)
    if not _exists(root):
        return False
    sess = _cache.get(root) or _read_session(root)
    if sess is None:
        _sweep(root)
        return False
    if sess.done or _now(store) < sess.deadline:
        return False
    _delete(root)
    return True


def block_path(store):
    """The rebuilt block's path once the session is complete, else None."""
    sess = _load(store) if _exists(_root(store)) else None
    return sess.path(OUT) if sess is not None and sess.done else None


def session(store):
    """(FragIndex, NbFrag, FragSize, Padding, Descriptor, received, missing) of the current session, or None."""
    sess = _load(store) if _exists(_root(store)) else None
    if sess is None:
        return None
    return sess.index, sess.m, sess.s, sess.padding, sess.descriptor, sess.received, sess.missing()


def accepts_group(store, group_id):
    """Whether multicast group `group_id` (0-3) may carry this session's fragments (its bit in the setup's
    McGroupBitMask; TS004 §3.4: frames of other groups are dropped). False without a session."""
    sess = _load(store) if _exists(_root(store)) else None
    return sess is not None and bool(sess.fsess >> (group_id & 0x03) & 1)


def answer_delay_max_s(store):
    """The window a status answer to a multicast request is spread over, 2^(BlockAckDelay + 4) seconds."""
    sess = _load(store) if _exists(_root(store)) else None
    return 1 << ((sess.control & 0x07) + 4) if sess is not None else 16


def delete(store):
    """Removes the session and its files (e.g. once the rebuilt block is installed)."""
    if _exists(_root(store)):
        _delete(_root(store))
