# Waste-bin logic in integers: fill from distance, pickup (tilt plus a sudden drop), fire alarm
# (temperature threshold AND rate of rise), and the fill-rate trend the host forecasts "full at" from.
# WasteNode ties them to the sampler and writes one reading per interval in payload_spec's column order.
from array import array

import micropython
from micropython import const

from bysans import payload_spec as S
from bysans.sampler import NO_READING, Sampler, median_of

FILL_FULL_BP = const(10000)


class WasteConfigError(Exception):
    """The bin geometry or a detector setting is impossible (zero depth, negative window...)."""


def fill_bp(dist_mm, depth_mm, offset_mm):
    """Fill in 0.01 % (0 empty, 10000 full) from the sensor's distance to the waste.

    offset_mm: from the sensor to the full line (the rim); depth_mm: from the full line to the bottom.
    """
    level_mm = depth_mm + offset_mm - dist_mm
    if level_mm <= 0:
        return 0
    if level_mm >= depth_mm:
        return FILL_FULL_BP
    return (level_mm * FILL_FULL_BP + depth_mm // 2) // depth_mm


class PickupDetector:
    """A pickup is a drop in fill of at least drop_bp while the bin was tilted in this interval or the
    `tilt_intervals - 1` before it. A tilt without a drop is only a tilt; a drop without a tilt (a sensor
    glitch, someone climbing in) is not a pickup."""

    def __init__(self, drop_bp=3000, tilt_intervals=2):
        if drop_bp <= 0 or tilt_intervals < 1:
            raise WasteConfigError("pickup drop and tilt window must be positive")
        self.drop_bp = drop_bp
        self.tilt_intervals = tilt_intervals
        self._since_tilt = tilt_intervals  # intervals since the last tilt (>= window: none recent)
        self._prev_fill = -1

    def update(self, fill, tilted):
        """Call once per interval with its fill (or -1 if unknown); returns True for a pickup."""
        self._since_tilt = 0 if tilted else min(self._since_tilt + 1, self.tilt_intervals)
        pickup = (fill >= 0 and self._prev_fill >= 0 and self._prev_fill - fill >= self.drop_bp
                  and self._since_tilt < self.tilt_intervals)
        if fill >= 0:
            self._prev_fill = fill
        if pickup:
            self._since_tilt = self.tilt_intervals
        return pickup


# The sampler's layout (bysans/sampler.py declares it; repeated here because viper folds only this
# module's const() names; tests/host/test_sampler_layout.py fails if the two blocks disagree)
_STRIDE = const(0)
_HDR = const(2)
_HEAD = const(0)
_COUNT = const(1)
_DEPTH = const(2)
_N = const(3)
_MIN = const(4)
_MAX = const(5)
_SUM = const(6)
_LAST = const(7)
_FAULTS = const(8)
_WORDS = const(9)
# The owner's words after the sampler's channels (Sampler.extra): fire detector, then the burst scratch
_X_THRESHOLD = const(0)
_X_RISE = const(1)
_X_WINDOW = const(2)
_X_CLEAR = const(3)
_X_ACTIVE = const(4)
_X_BURST = const(5)  # readings per distance burst
_X_SCRATCH = const(6)
# channels of the waste sampler
DIST = const(0)
TEMP = const(1)
BATT = const(2)
_NCHANNELS = const(3)


@micropython.viper
def _fire_check(state, t_off: int, x_off: int) -> int:
    # after a push to the temperature channel at t_off; 1 when the alarm starts
    s = ptr32(state)
    sb = 1
    sb <<= 31  # the sign-extension idiom of bysans/sampler.py: (word ^ sb) - sb
    count = int(s[t_off + _COUNT])
    if count == 0:
        return 0
    head = int(s[t_off + _HEAD])
    depth = int(s[t_off + _DEPTH])
    ring = t_off + _WORDS
    i = head - 1
    if i < 0:
        i += depth
    now = (int(s[ring + i]) ^ sb) - sb
    if int(s[x_off + _X_ACTIVE]):
        if now < (int(s[x_off + _X_CLEAR]) ^ sb) - sb:
            s[x_off + _X_ACTIVE] = 0
        return 0
    back = int(s[x_off + _X_WINDOW])
    if back >= count:
        back = count - 1
    i = head - 1 - back
    if i < 0:
        i += depth
    then = (int(s[ring + i]) ^ sb) - sb
    if now >= (int(s[x_off + _X_THRESHOLD]) ^ sb) - sb and now - then >= int(s[x_off + _X_RISE]):
        s[x_off + _X_ACTIVE] = 1
        return 1
    return 0


@micropython.viper
def _waste_tick(state, burst, temp_cdeg: int, batt_mv: int) -> int:
    # WasteNode.sample's work in one call, with sampler._push and _fire_check inlined (a nested viper
    # call costs as much as the work): median of the burst, three pushes, the fire check.
    s = ptr32(state)
    sb = 1
    sb <<= 31  # the sign-extension idiom of bysans/sampler.py: (word ^ sb) - sb
    stride = int(s[_STRIDE])
    x = _HDR + _NCHANNELS * stride
    n = int(s[x + _X_BURST])
    scratch = x + _X_SCRATCH
    a = ptr16(burst)
    m = 0
    i = 0
    while i < n:
        v = int(a[i])
        if v & 0x8000 == 0 and v != 0:
            j = m
            while j > 0 and int(s[scratch + j - 1]) > v:
                s[scratch + j] = s[scratch + j - 1]
                j -= 1
            s[scratch + j] = v
            m += 1
        i += 1
    c = 0
    while c < _NCHANNELS:
        off = _HDR + c * stride
        if c == DIST:
            if m * 2 < n or m == 0:
                s[off + _FAULTS] = int(s[off + _FAULTS]) + 1  # no valid distance: a fault
                c += 1
                continue
            v = int(s[scratch + (m >> 1)])
        elif c == TEMP:
            v = temp_cdeg
        else:
            v = batt_mv
        head = int(s[off + _HEAD])
        depth = int(s[off + _DEPTH])
        s[off + _WORDS + head] = v
        head += 1
        if head >= depth:
            head = 0
        s[off + _HEAD] = head
        if int(s[off + _COUNT]) < depth:
            s[off + _COUNT] = int(s[off + _COUNT]) + 1
        k = int(s[off + _N])
        if k == 0:
            s[off + _MIN] = v
            s[off + _MAX] = v
            s[off + _SUM] = v
        else:
            if v < (int(s[off + _MIN]) ^ sb) - sb:
                s[off + _MIN] = v
            if v > (int(s[off + _MAX]) ^ sb) - sb:
                s[off + _MAX] = v
            s[off + _SUM] = int(s[off + _SUM]) + v
        s[off + _N] = k + 1
        s[off + _LAST] = v
        c += 1
    # fire: the temperature ring, settings in the extra words
    t = _HDR + TEMP * stride
    ring = t + _WORDS
    head = int(s[t + _HEAD])
    depth = int(s[t + _DEPTH])
    count = int(s[t + _COUNT])
    now = temp_cdeg
    if int(s[x + _X_ACTIVE]):
        if now < (int(s[x + _X_CLEAR]) ^ sb) - sb:
            s[x + _X_ACTIVE] = 0
        return 0
    back = int(s[x + _X_WINDOW])
    if back >= count:
        back = count - 1
    i = head - 1 - back
    if i < 0:
        i += depth
    then = (int(s[ring + i]) ^ sb) - sb
    if now >= (int(s[x + _X_THRESHOLD]) ^ sb) - sb and now - then >= int(s[x + _X_RISE]):
        s[x + _X_ACTIVE] = 1
        return 1
    return 0


class FireDetector:
    """Fire: temperature at or above threshold_cdeg AND risen by rise_cdeg or more over the last
    window_samples samples (or all there are). The alarm holds until the temperature falls below
    clear_cdeg (default: threshold - 10 degC). Settings only: the state lives in WasteNode's sampler."""

    def __init__(self, threshold_cdeg=5700, rise_cdeg=800, window_samples=6, clear_cdeg=None):
        if window_samples < 1 or rise_cdeg <= 0:
            raise WasteConfigError("fire window and rise must be positive")
        self.threshold_cdeg = threshold_cdeg
        self.rise_cdeg = rise_cdeg
        self.window_samples = window_samples
        self.clear_cdeg = threshold_cdeg - 1000 if clear_cdeg is None else clear_cdeg


class FillTrend:
    """Least-squares slope of fill over time since the last pickup, in 0.01 % per hour (integers only;
    runs once per interval). Keeps the newest `size` points."""

    def __init__(self, size=24):
        self.t_min = array("i", bytes(4 * size))
        self.fill = array("i", bytes(4 * size))
        self.size = size
        self.n = 0
        self.head = 0

    def reset(self):
        self.n = 0
        self.head = 0

    def add(self, t_min, fill):
        self.t_min[self.head] = t_min
        self.fill[self.head] = fill
        self.head = (self.head + 1) % self.size
        if self.n < self.size:
            self.n += 1

    def rate_bp_h(self):
        """The slope, rounded to the nearest 0.01 %/h; 0 with fewer than two points."""
        n = self.n
        if n < 2:
            return 0
        first = (self.head - n) % self.size
        t0 = self.t_min[first]
        st = sf = stt = stf = 0
        for k in range(n):
            i = (first + k) % self.size
            t = self.t_min[i] - t0
            f = self.fill[i]
            st += t
            sf += f
            stt += t * t
            stf += t * f
        den = n * stt - st * st
        if den == 0:
            return 0
        num = 60 * (n * stf - st * sf)
        return (2 * num + den) // (2 * den)


class WasteNode:
    """The waste bin's per-sample and per-interval logic over one Sampler (dist_mm, temp_cdeg, batt_mv).

    Per sample (allocation-free): sample(burst, temp_cdeg, batt_mv) in one call, or distance(burst),
    temperature(cdeg), battery(mv) one by one; tilt(flag) from the accelerometer.
    Per interval: close(t_min, row) writes [dist_mm, fill_bp, temp_cdeg, batt_mv, flags] into row and
    returns the fault mask (bit = payload_spec W_* column) for ReadingBatch.add.
    """

    def __init__(self, *, depth_mm, offset_mm, ring=32, burst=5, pickup=None, fire=None, trend=None):
        if depth_mm <= 0 or offset_mm < 0 or burst < 1:
            raise WasteConfigError("bin depth and burst must be positive and the offset not negative")
        self.depth_mm = depth_mm
        self.offset_mm = offset_mm
        self.burst = burst
        self.sampler = Sampler(("dist_mm", "temp_cdeg", "batt_mv"), ring, extra=_X_SCRATCH + burst)
        self.scratch = array("h", bytes(2 * burst))
        self.pickup = pickup or PickupDetector()
        self.trend = trend or FillTrend()
        fire = fire or FireDetector()
        x = self.sampler.extra
        st = self.sampler.state
        st[x + _X_THRESHOLD] = fire.threshold_cdeg
        st[x + _X_RISE] = fire.rise_cdeg
        st[x + _X_WINDOW] = fire.window_samples
        st[x + _X_CLEAR] = fire.clear_cdeg
        st[x + _X_BURST] = burst
        self._state = st
        self.tilted = False

    def sample(self, burst, temp_cdeg, batt_mv):
        """One wake's samples in one call (the fast path): self.burst raw echo distances in burst
        (array('h'), mm, <= 0 = no echo), the temperature and the battery. Returns True when a fire
        alarm starts: the caller sends an alarm frame at once."""
        return _waste_tick(self._state, burst, temp_cdeg, batt_mv) != 0

    def distance(self, burst):
        """One measurement: self.burst raw echo distances (array('h'), mm, <= 0 = no echo) -> median."""
        d = median_of(burst, self.burst, self.scratch)
        if d == NO_READING:
            self.sampler.fault(DIST)
        else:
            self.sampler.push(DIST, d)

    def temperature(self, cdeg):
        """Returns True when a fire alarm starts: the caller sends an alarm frame at once."""
        self.sampler.push(TEMP, cdeg)
        sp = self.sampler
        return _fire_check(sp.state, _HDR + TEMP * sp.stride, sp.extra) != 0

    def battery(self, mv):
        self.sampler.push(BATT, mv)

    def tilt(self, tilted):
        if tilted:
            self.tilted = True

    @property
    def fire_active(self):
        return self.sampler.state[self.sampler.extra + _X_ACTIVE] != 0

    def close(self, t_min, row):
        sp = self.sampler
        faults = 0
        dist = sp.last(DIST) if sp.n(DIST) else -1
        fill = fill_bp(dist, self.depth_mm, self.offset_mm) if dist >= 0 else -1
        if dist < 0:
            faults |= (1 << S.W_DIST) | (1 << S.W_FILL)
        flags = S.FLAG_TILT if self.tilted else 0
        if self.pickup.update(fill, self.tilted):
            flags |= S.FLAG_PICKUP
            self.trend.reset()
        if fill >= 0:
            self.trend.add(t_min, fill)
        if self.fire_active:
            flags |= S.FLAG_FIRE
        row[S.W_DIST] = max(dist, 0)
        row[S.W_FILL] = max(fill, 0)
        row[S.W_TEMP] = sp.mean(TEMP)
        row[S.W_BATT] = sp.mean(BATT)
        row[S.W_FLAGS] = flags
        if not sp.n(TEMP):
            faults |= 1 << S.W_TEMP
        if not sp.n(BATT):
            faults |= 1 << S.W_BATT
        sp.new_interval()
        self.tilted = False
        return faults

    def fill_rate_bp_h(self):
        return self.trend.rate_bp_h()
