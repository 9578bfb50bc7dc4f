# The sampler: a fixed-point ring buffer per channel, and per-interval statistics (min/max/mean/last,
# good samples, faults). Readings are scaled integers whose unit is in the channel's name (temp_cdeg,
# dist_mm, pressure_pa). The per-sample path (push, fault, median_of, the statistics) allocates nothing:
# tests/firmware/mp_test_sampler.py runs it under micropython.heap_lock().
#
# Layout: one preallocated array('i') per sampler, so viper reaches every channel through one pointer
# (on the unix port each attribute load costs about as much as a whole push):
#   HDR words (STRIDE: words per channel, CHANNELS), then per channel `stride` words: WORDS of state,
#   then its ring of `depth` samples; then the owner's extra words.
# The layout's one declaration is the const() block below. Viper folds only the const() names of its own
# module (an imported name is a run-time object it cannot add to an int), so bysans/waste.py, whose fused
# viper path walks the same words, repeats the block with a leading underscore; tests/host/
# test_sampler_layout.py fails if the two blocks disagree.
#
# Signed words: viper's ptr32 loads are zero-extended on 64-bit ports (the unix port) and already signed
# on 32-bit ones (the ESP32). Every signed load is the one sign-extension idiom
#     sb = 1
#     sb <<= 31                   # once per function; built at run time, see below
#     v = (int(s[i]) ^ sb) - sb   # flips bit 31 and subtracts it again: identity mod 2**32
# It is written out rather than called: a nested viper call costs as much as the work (measured 18x
# slower than the idiom on the unix port). sb is shifted at run time because mpy-cross folds a literal
# 1 << 31 into a big int for 32-bit targets, which viper refuses.
from array import array

import micropython
from micropython import const

# Header words
STRIDE = const(0)
CHANNELS = const(1)
HDR = const(2)
# Channel state words, from the channel's offset
HEAD = const(0)    # next ring slot
COUNT = const(1)   # valid samples in the ring (<= depth)
DEPTH = const(2)
N = const(3)       # good samples this interval
MIN = const(4)
MAX = const(5)
SUM = const(6)     # int32: keep samples * |value| per interval under 2**31
LAST = const(7)
FAULTS = const(8)  # failed samples this interval
WORDS = const(9)

NO_READING = const(-1)  # median_of: too few valid readings


class SamplerError(Exception):
    """A sampler was declared or used wrongly (depth, channel index, burst size)."""


@micropython.viper
def _push(state, off: int, v: int):
    # ring write and statistics for the channel at word offset `off`
    s = ptr32(state)
    sb = 1
    sb <<= 31
    head = int(s[off + HEAD])
    depth = int(s[off + DEPTH])
    s[off + WORDS + head] = v
    head += 1
    if head >= depth:
        head = 0
    s[off + HEAD] = head
    if int(s[off + COUNT]) < depth:
        s[off + COUNT] = int(s[off + COUNT]) + 1
    k = int(s[off + N])
    if k == 0:
        s[off + MIN] = v
        s[off + MAX] = v
        s[off + SUM] = v
    else:
        if v < (int(s[off + MIN]) ^ sb) - sb:
            s[off + MIN] = v
        if v > (int(s[off + MAX]) ^ sb) - sb:
            s[off + MAX] = v
        s[off + SUM] = int(s[off + SUM]) + v
    s[off + N] = k + 1
    s[off + LAST] = v


@micropython.viper
def _median16(src, n: int, scratch) -> int:
    # median of the positive readings among src[0:n] (0 or less = no echo); -1 if fewer than half of
    # them are valid. Insertion sort in a scratch array('h') of at least n.
    a = ptr16(src)
    t = ptr16(scratch)
    m = 0
    i = 0
    while i < n:
        v = int(a[i])
        if v & 0x8000 == 0 and v != 0:
            j = m
            while j > 0 and int(t[j - 1]) > v:
                t[j] = t[j - 1]
                j -= 1
            t[j] = v
            m += 1
        i += 1
    if m * 2 < n or m == 0:
        return -1
    return int(t[m >> 1])


def median_of(readings, n, scratch):
    """Median of the valid (> 0) values in readings[0:n], both array('h'); NO_READING if under half
    are valid. For distance bursts: a stray echo or a dropout cannot move the median."""
    if n > len(readings) or n > len(scratch):
        raise SamplerError("burst larger than its buffers")
    return _median16(readings, n, scratch)


class Sampler:
    """Channels 0..len(names)-1, each with a ring of `depth` samples; `extra` words for the owner."""

    def __init__(self, names, depth, extra=0):
        if depth < 1 or not names:
            raise SamplerError("a sampler needs channels and a depth of at least 1")
        self.names = names
        self.stride = WORDS + depth
        self.extra = HDR + len(names) * self.stride  # offset of the owner's words
        self.state = array("i", bytes(4 * (self.extra + extra)))
        self.state[STRIDE] = self.stride
        self.state[CHANNELS] = len(names)
        for c in range(len(names)):
            self.state[HDR + c * self.stride + DEPTH] = depth

    def _off(self, c):
        return HDR + c * self.stride

    def push(self, c, v):
        """Adds one good sample (an int in channel c's unit)."""
        _push(self.state, HDR + c * self.stride, v)

    def fault(self, c):
        """Counts one failed sample (missing sensor, CRC error, implausible value)."""
        self.state[HDR + c * self.stride + FAULTS] += 1

    def n(self, c):
        return self.state[self._off(c) + N]

    def faults(self, c):
        return self.state[self._off(c) + FAULTS]

    def min(self, c):
        return self.state[self._off(c) + MIN]

    def max(self, c):
        return self.state[self._off(c) + MAX]

    def last(self, c):
        return self.state[self._off(c) + LAST]

    def mean(self, c):
        """Mean of this interval's good samples, rounded half up (0 when there were none)."""
        off = self._off(c)
        n = self.state[off + N]
        return (2 * self.state[off + SUM] + n) // (2 * n) if n else 0

    def count(self, c):
        return self.state[self._off(c) + COUNT]

    def recent(self, c, back=0):
        """The sample `back` pushes ago (0 = newest); None if the ring does not reach that far."""
        off = self._off(c)
        st = self.state
        if back >= st[off + COUNT]:
            return None
        return st[off + WORDS + (st[off + HEAD] - 1 - back) % st[off + DEPTH]]

    def new_interval(self):
        """Starts the next interval's statistics (the rings keep their samples)."""
        for c in range(len(self.names)):
            off = self._off(c)
            self.state[off + N] = 0
            self.state[off + FAULTS] = 0
            self.state[off + SUM] = 0
