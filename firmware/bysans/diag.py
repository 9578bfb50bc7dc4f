# The node's diagnostics (docs/formats/diagnostics.md): reset cause, boots, watchdog resets, the lowest free
# heap since the last record and a short hash of the last uncaught exception, kept in RTC memory so they
# survive deep sleep, soft and watchdog resets (a power loss starts them afresh: boots = 1).
# The app calls boot() first thing in a wake, heap() at its checkpoints, exception() for what its cycle
# raised, send_due() with its sink after the cycle, and save() before deep sleep; the OTA client calls
# planned() before it resets into a new slot (that start is no fault of the release) and fields() for its
# check-in. The record's wire format is declared in bysans/diag_spec.py.
#
# RTC memory [OFFSET, OFFSET + SIZE) is this module's (the LoRaWAN store has [0, 480), the node 512..):
#   0  magic b"DG" | 2 format u8 | 3 cause u8 | 4 boots u16 | 6 wdt u16 | 8 heap_min u32 | 12 exc u32
#   16 last record's epoch s u32 | 20 flags u8 (bit 1: the next start is planned) | 21..23 zero | 24 CRC-32 of bytes 0..23, u32. Little-endian.
import struct

try:
    from micropython import const
except ImportError:  # CPython: the airtime benchmark runs this module as it is
    def const(x):
        return x

from bysans import diag_spec as S
from bysans.hal import rtcmem

from binascii import crc32  # MicroPython's ESP32 and unix ports and CPython all have it

OFFSET = const(480)
SIZE = const(32)
_FMT = "<2sBBHHIIIB3x"
_BODY = const(24)
_MAGIC = b"DG"
_FORMAT = const(1)
_PLANNED = const(2)
_NO_HEAP = const(0xFFFFFFFF)

_state = None  # this boot's record: [cause, boots, wdt, heap_min, exc, last_s, flags]


def _crc(data):
    return crc32(data) & 0xFFFFFFFF


def _cause_code(cause):
    try:
        return S.CAUSES.index(cause)
    except ValueError:
        return 0


def load(board):
    """The record in RTC memory as a list, or None (power-on, or bytes that fail their check)."""
    raw = rtcmem.image(board)
    if rtcmem.used() < OFFSET + SIZE:
        return None
    m = memoryview(raw)[OFFSET:OFFSET + SIZE]
    try:
        magic, fmt, cause, boots, wdt, heap, exc, last, flags = struct.unpack_from(_FMT, m, 0)
        crc = struct.unpack_from("<I", m, _BODY)[0]
    except ValueError:
        return None
    if magic != _MAGIC or fmt != _FORMAT or crc != _crc(m[:_BODY]):
        return None
    return [cause, boots, wdt, heap, exc, last, flags]


def state(board):
    """This boot's record (read once from RTC memory)."""
    global _state
    if _state is None:
        _state = load(board) or [0, 0, 0, _NO_HEAP, 0, 0, 0]
    return _state


def boot(board, cause):
    """Counts this start: a start that is not a deep-sleep wake is a boot (and a watchdog reset one more);
    one the OTA client announced (planned()) is not counted. Saved at once: a wake that hangs still counts."""
    global _state
    rtcmem.load(board)  # the boot's one read of RTC memory (bysans.hal.rtcmem), shared with the store and the node
    _state = load(board)
    if _state is None:  # power-on (or memory that failed its check): a fresh count
        _state = [0, 0, 0, _NO_HEAP, 0, 0, 0]
    d = _state
    if cause == "deepsleep":
        return d
    if d[6] & _PLANNED:
        d[6] &= ~_PLANNED
    else:
        d[0] = _cause_code(cause)
        d[1] = min(d[1] + 1, 0xFFFF)
        if cause == "watchdog":
            d[2] = min(d[2] + 1, 0xFFFF)
    save(board)
    return d


def planned(board):
    """The next start is the caller's own (the OTA client's switch into a new slot): not counted."""
    d = state(board)
    d[6] |= _PLANNED
    save(board)


def heap(free):
    """A free-heap reading at one of the app's checkpoints (gc.mem_free())."""
    d = _state
    if d is not None and free < d[3]:
        d[3] = free


def exception_hash(text):
    return _crc(text.encode() if isinstance(text, str) else text) or 1


def exception(e):
    """Records an uncaught exception's hash (CRC-32 of its printed traceback); returns the hash."""
    import io
    import sys

    buf = io.StringIO()
    if hasattr(sys, "print_exception"):
        sys.print_exception(e, buf)
    else:  # CPython (the benchmark)
        import traceback

        buf.write("".join(traceback.format_exception(type(e), e, e.__traceback__)))
    h = exception_hash(buf.getvalue())
    if _state is not None:
        _state[4] = h
    return h


def save(board):
    """Writes this boot's record to RTC memory; the bytes around it stay as they are."""
    d = _state
    if d is None:
        return
    m = rtcmem.image(board)
    struct.pack_into(_FMT, m, OFFSET, _MAGIC, _FORMAT, d[0], d[1], d[2], d[3], d[4], d[5], d[6])
    struct.pack_into("<I", m, OFFSET + _BODY, _crc(memoryview(m)[OFFSET:OFFSET + _BODY]))
    rtcmem.save(board, OFFSET + SIZE)


def encode(d, buf=None):
    """The wire record (diag_spec) of a state list, into buf (LENGTH bytes) or a new bytearray."""
    buf = buf or bytearray(S.LENGTH)
    h = S.HEAP_NONE if d[3] == _NO_HEAP else min(d[3] // S.HEAP_UNIT, S.HEAP_NONE - 1)
    struct.pack_into(">BBHHHI", buf, 0, S.VERSION, d[0], d[1], d[2], h, d[4])
    return buf


def due(d, now):
    """A record is due on the first wake after a power-on, then once every SEND_EVERY_S (or when the clock
    went back). A reset between two records waits for the next one: the check-ins carry it at once."""
    last = d[5]
    return not last or now < last or now - last >= S.SEND_EVERY_S


def send_due(board, sink, now):
    """Sends the record on FPORT when due; True if sent. The heap minimum starts again after a record."""
    d = _state
    if d is None or sink is None or not due(d, now):
        return False
    try:
        sink.send(S.FPORT, encode(d))
    except OSError:
        return False  # tried again at the next wake
    d[5] = now
    d[3] = _NO_HEAP
    return True


def fields(board):
    """This record for an OTA check-in (docs/formats/update-repository.md, "diag")."""
    d = state(board)
    return {"v": S.VERSION, "reset_cause": S.CAUSES[d[0]] if d[0] < len(S.CAUSES) else "unknown",
            "boots": d[1], "watchdog_resets": d[2], "heap_min": None if d[3] == _NO_HEAP else d[3],
            "exception": "%08x" % d[4] if d[4] else None}
