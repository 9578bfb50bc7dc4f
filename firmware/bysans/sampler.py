# The sampler: a fixed-point ring buffer per channel, and per-interval statistics (min/max/mean/last,
# good samples, faults). Readings are scaled integers whose unit is in the channel's name (temp_cdeg,
# dist_mm, pressure_pa). The per-sample path (push, fault, median_of, the statistics) allocates nothing:
# tests/firmware/mp_test_sampler.py runs it under micropython.heap_lock().
#
# Layout: one preallocated array('i') per sampler, so viper reaches every channel through one pointer
# (on the unix port each attribute load costs about as much as a whole push):
#   word 0 stride (words per channel), word 1 channels, then per channel `stride` words:
#   _WORDS of state, then its ring of `depth` samples; then the owner's extra words.
# Viper's ptr32 loads are zero-extended on 64-bit ports: signed words go through the _sx arithmetic.
from array import array

import micropython
from micropython import const

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
    head = int(s[off])
    depth = int(s[off + 2])
    s[off + 9 + head] = v
    head += 1
    if head >= depth:
        head = 0
    s[off] = head
    if int(s[off + 1]) < depth:
        s[off + 1] = int(s[off + 1]) + 1
    k = int(s[off + 3])
    if k == 0:
        s[off + 4] = v
        s[off + 5] = v
        s[off + 6] = v
    else:
        mn = int(s[off + 4])
        mn = (((((mn >> 16) & 0xFFFF) ^ 0x8000) - 0x8000) << 16) | (mn & 0xFFFF)
        mx = int(s[off + 5])
        mx = (((((mx >> 16) & 0xFFFF) ^ 0x8000) - 0x8000) << 16) | (mx & 0xFFFF)
        if v < mn:
            s[off + 4] = v
        if v > mx:
            s[off + 5] = v
        s[off + 6] = int(s[off + 6]) + v
    s[off + 3] = k + 1
    s[off + 7] = v


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
        self.state[0] = self.stride
        self.state[1] = len(names)
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
