# RTC memory as this boot sees it: read once (diag.boot, the boot's first step) into one buffer allocated
# then, while the heap is whole, and shared by the three modules that keep state there: the LoRaWAN store
# (bysans.lorawan.store, bytes [0, 480)), the diagnostics (bysans.diag, [480, 512)) and the node's state
# (bysans.rtcstate, [512, 2048)). Each changes its own bytes in the buffer and writes the buffer back whole
# (save()), as an ESP32's machine.RTC().memory(data) takes it (the store makes its record in place there and
# writes flash from it); no read of RTC memory, which returns a new
# bytes object of all of it, happens again in this boot. So the MAC's frame-counter writes and the node's
# save need no 1.4 KB block in a heap the MAC and the sampling have cut up.
# Only these modules write RTC memory, and a boot starts with a new heap (deep sleep, reset), so the buffer
# always holds what RTC memory holds once loaded. The bytes past used() are zeros.
try:
    from micropython import const
except ImportError:  # CPython (the airtime benchmark imports bysans.diag)
    def const(x):
        return x

SIZE = const(2048)  # RTC user memory on an ESP32 (hal: rtc_memory holds 2048 bytes at most)

_buf = None    # bytearray(SIZE), allocated at the first load
_n = 0         # RTC memory's length: RTC().memory() gives back as many bytes as were last written
_board = None  # the board loaded from (None: not loaded in this boot, or forgotten)


def _zero(buf, a, b):
    for i in range(a, b):
        buf[i] = 0


def load(board):
    """Reads RTC memory into the buffer (the boot's one read: diag.boot); returns the buffer."""
    global _buf, _n, _board
    fresh = _buf is None
    if fresh:
        _buf = bytearray(SIZE)
    raw = board.rtc_memory()
    n = min(len(raw), SIZE)
    memoryview(_buf)[:n] = memoryview(raw)[:n]
    raw = None
    if not fresh:  # read again (a test's new boot, a failed flash write): what lay past the old length too
        _zero(_buf, n, SIZE)
    _n = n
    _board = board
    return _buf


def image(board):
    """The buffer of SIZE bytes holding RTC memory (its first used() bytes), read now if not yet."""
    if _board is not board or _buf is None:
        return load(board)
    return _buf


def used():
    """How many bytes RTC memory holds (0 after a power-on)."""
    return _n


def save(board, end, tail=False):
    """Writes the buffer back to RTC memory whole, as max(used(), end) bytes; tail=True: as end bytes (the
    owner of the last region cuts what lies past its end). The bytes between used() and end are zeros."""
    global _n
    if tail and end < _n:
        _zero(_buf, end, _n)
        _n = end
    elif end > _n:
        _n = end
    board.rtc_memory(memoryview(_buf)[:_n])


def forget():
    """The buffer may differ from RTC memory (a put whose flash write failed; a test's fake board that sleeps
    or loses power): the next image() reads RTC memory again."""
    global _board
    _board = None
