# EU868 channel plan (LoRaWAN Regional Parameters RP002-1.0.x), time on air in integer microseconds,
# and duty-cycle accounting per ETSI EN 300 220 sub-band.
from micropython import const

# Data rates: DR -> (spreading factor, bandwidth in kHz). DR7 is FSK: not offered by the LoRa radios.
DATA_RATES = ((12, 125), (11, 125), (10, 125), (9, 125), (8, 125), (7, 125), (7, 250))
DR_MAX = const(6)
# Largest MACPayload M per DR (N = M - 8 is the largest FRMPayload with no FOpts). Uplinks keep to the
# repeater-compatible sizes (REFERENCE §1: 51/115/222 B of application payload); downlinks are refused
# above the plan's absolute M (59/123/250).
MAX_M_UP = (59, 59, 59, 123, 230, 230, 230)
MAX_M_DOWN = (59, 59, 59, 123, 250, 250, 250)

DEFAULT_CHANNELS_HZ = (868100000, 868300000, 868500000)
MAX_CHANNELS = const(16)
RX2_FREQ_HZ = const(869525000)
RX2_DR = const(0)
JOIN_ACCEPT_DELAY1_MS = const(5000)
JOIN_ACCEPT_DELAY2_MS = const(6000)
RECEIVE_DELAY1_MS = const(1000)
MAX_EIRP_DBM = const(16)
MAX_TX_POWER_INDEX = const(7)  # TXPower n -> MaxEIRP - 2n dBm
RX1_DR_OFFSET_MAX = const(5)

# Sub-bands (EN 300 220-2 as used by LoRaMac-node's EU868 bands): (low Hz, high Hz inclusive, off-time
# factor). After a frame of ToA a sub-band is silent for ToA * factor: 1 % -> 99, 0.1 % -> 999, 10 % -> 9.
SUB_BANDS = (
    (863000000, 865000000, 999),   # 0.1 %
    (865000000, 868000000, 99),    # 1 %
    (868000001, 868600000, 99),    # g1, 1 %: the three default channels
    (868700000, 869200000, 999),   # g2, 0.1 %
    (869400000, 869650000, 9),     # g3, 10 %: RX2
    (869700000, 870000000, 99),    # g4, 1 %
)


def tx_power_dbm(index):
    return MAX_EIRP_DBM - 2 * index


def sub_band(freq_hz):
    # index into SUB_BANDS, or -1 when the frequency is in none (not allowed)
    for i in range(len(SUB_BANDS)):
        b = SUB_BANDS[i]
        if b[0] <= freq_hz <= b[1]:
            return i
    return -1


def time_on_air_us(payload_len, sf, bw_khz=125, crc=True, preamble=8, explicit_header=True, cr=1):
    # Semtech AN1200.13 in integers: Tsym = 2^SF / BW is a whole number of microseconds for 125, 250 and
    # 500 kHz, so the result is exact. payload_len is the PHY payload (PL) in bytes.
    tsym_us = (1000 << sf) // bw_khz
    de = 1 if (bw_khz == 125 and sf >= 11) else 0
    num = 8 * payload_len - 4 * sf + 28 + (16 if crc else 0) - (0 if explicit_header else 20)
    den = 4 * (sf - 2 * de)
    steps = -(-num // den) if num > 0 else 0
    n_sym = 8 + steps * (cr + 4)
    # preamble: (Npre + 4.25) symbols = (4 Npre + 17) / 4 symbols
    return ((4 * preamble + 17) * tsym_us) // 4 + n_sym * tsym_us


def symbol_time_us(sf, bw_khz=125):
    return (1000 << sf) // bw_khz


class DutyCycle:
    # Per-sub-band transmit permission. `now` is a ticks_ms value from the injected clock; ticks_diff the
    # clock's own. A band is "free at" a tick; record() after each transmission pushes it out by
    # ToA * factor from the end of the frame; an optional aggregated limit (DutyCycleReq MaxDCycle) adds a
    # silence over all bands of ToA * (2^MaxDCycle - 1).
    def __init__(self, ticks_diff):
        self._diff = ticks_diff
        n = len(SUB_BANDS)
        self._free_at = [0] * n
        self._busy = bytearray(n)
        self._agg_free_at = 0
        self._agg_busy = False
        self.max_dcycle = 0
        self.total_airtime_us = 0

    def wait_ms(self, band, now):
        # ms until `band` may transmit (0: now)
        w = 0
        if self._busy[band]:
            w = self._diff(self._free_at[band], now)
            if w <= 0:
                self._busy[band] = 0
                w = 0
        if self._agg_busy:
            a = self._diff(self._agg_free_at, now)
            if a <= 0:
                self._agg_busy = False
            elif a > w:
                w = a
        return w

    def record(self, band, toa_us, end):
        # a frame of toa_us ended at tick `end` on `band`
        self.total_airtime_us += toa_us
        off_ms = -(-(toa_us * SUB_BANDS[band][2]) // 1000)
        self._set(band, end, off_ms)
        if self.max_dcycle:
            off_ms = -(-(toa_us * ((1 << self.max_dcycle) - 1)) // 1000)
            if not self._agg_busy or self._diff(end + off_ms, self._agg_free_at) > 0:
                self._agg_free_at = end + off_ms
                self._agg_busy = True

    def _set(self, band, end, off_ms):
        free = end + off_ms
        if not self._busy[band] or self._diff(free, self._free_at[band]) > 0:
            self._free_at[band] = free
            self._busy[band] = 1

    def remaining(self, now):
        # the silences still owed, as a list of ms per band (plus the aggregated one last): persist this
        # before deep sleep and restore() it after, which is conservative (sleep time only helps)
        out = [self.wait_ms(b, now) if self._busy[b] else 0 for b in range(len(SUB_BANDS))]
        out.append(self._diff(self._agg_free_at, now) if self._agg_busy else 0)
        for i in range(len(out)):
            if out[i] < 0:
                out[i] = 0
        return out

    def restore(self, remaining, now):
        for b in range(len(SUB_BANDS)):
            if b < len(remaining) and remaining[b] > 0:
                self._set(b, now, remaining[b])
        if len(remaining) > len(SUB_BANDS) and remaining[-1] > 0:
            self._agg_free_at = now + remaining[-1]
            self._agg_busy = True


def valid_frequency(freq_hz):
    return sub_band(freq_hz) >= 0


class Plan:
    # The radio parameters a session runs with: the network changes them by MAC commands, and they are
    # persisted with the session (to_bytes/from_bytes).
    # Channel i: freq_hz[i] (0: undefined), dr_min/dr_max, downlink freq (RX1; 0: same as uplink),
    # enabled bit in `mask`.
    VERSION = 1

    def __init__(self):
        self.freq_hz = [0] * MAX_CHANNELS
        self.dl_freq_hz = [0] * MAX_CHANNELS
        self.dr_min = bytearray(MAX_CHANNELS)
        self.dr_max = bytearray(MAX_CHANNELS)
        for i in range(len(DEFAULT_CHANNELS_HZ)):
            self.freq_hz[i] = DEFAULT_CHANNELS_HZ[i]
            self.dr_max[i] = 5
        self.mask = (1 << len(DEFAULT_CHANNELS_HZ)) - 1
        self.tx_dr = 0
        self.tx_power = 0          # TXPower index: MAX_EIRP_DBM - 2 * index
        self.nb_trans = 1
        self.rx1_dr_offset = 0
        self.rx1_delay_ms = RECEIVE_DELAY1_MS
        self.rx2_freq_hz = RX2_FREQ_HZ
        self.rx2_dr = RX2_DR
        self.max_dcycle = 0

    def defined(self, i):
        return 0 <= i < MAX_CHANNELS and self.freq_hz[i] != 0

    def enabled(self, i):
        return self.defined(i) and (self.mask >> i) & 1 == 1

    def channel_allows(self, i, dr):
        return self.enabled(i) and self.dr_min[i] <= dr <= self.dr_max[i]

    def any_channel_allows(self, dr, mask=None):
        m = self.mask if mask is None else mask
        for i in range(MAX_CHANNELS):
            if (m >> i) & 1 and self.freq_hz[i] and self.dr_min[i] <= dr <= self.dr_max[i]:
                return True
        return False

    def rx1_dr(self, up_dr):
        dr = up_dr - self.rx1_dr_offset
        return dr if dr > 0 else 0

    def rx1_freq(self, ch):
        f = self.dl_freq_hz[ch]
        return f if f else self.freq_hz[ch]

    def apply_cflist(self, cflist):
        # join-accept CFList type 0: five frequencies (3 bytes LE, x100 Hz) for channels 3..7, DR0..DR5
        if len(cflist) != 16 or cflist[15] != 0:
            return False
        for k in range(5):
            f = (cflist[3 * k] | cflist[3 * k + 1] << 8 | cflist[3 * k + 2] << 16) * 100
            i = 3 + k
            if f and valid_frequency(f):
                self.freq_hz[i] = f
                self.dl_freq_hz[i] = 0
                self.dr_min[i] = 0
                self.dr_max[i] = 5
                self.mask |= 1 << i
        return True

    # Persisted layout, little-endian, 'B' = 1 byte:
    #   version B | tx_dr B | tx_power B | nb_trans B | rx1_dr_offset B | rx1_delay_s B | rx2_dr B |
    #   max_dcycle B | rx2_freq/100 3B | mask 2B | 16 x (freq/100 3B, dl_freq/100 3B, dr_min<<4|dr_max B)
    SIZE = 13 + MAX_CHANNELS * 7

    def to_bytes(self):
        b = bytearray(self.SIZE)
        b[0] = self.VERSION
        b[1] = self.tx_dr
        b[2] = self.tx_power
        b[3] = self.nb_trans
        b[4] = self.rx1_dr_offset
        b[5] = self.rx1_delay_ms // 1000
        b[6] = self.rx2_dr
        b[7] = self.max_dcycle
        _put24(b, 8, self.rx2_freq_hz // 100)
        b[11] = self.mask & 0xFF
        b[12] = self.mask >> 8
        for i in range(MAX_CHANNELS):
            o = 13 + 7 * i
            _put24(b, o, self.freq_hz[i] // 100)
            _put24(b, o + 3, self.dl_freq_hz[i] // 100)
            b[o + 6] = self.dr_min[i] << 4 | self.dr_max[i]
        return bytes(b)

    @classmethod
    def from_bytes(cls, b):
        p = cls()
        if len(b) != cls.SIZE or b[0] != cls.VERSION:
            return None
        p.tx_dr, p.tx_power, p.nb_trans, p.rx1_dr_offset = b[1], b[2], b[3], b[4]
        p.rx1_delay_ms = b[5] * 1000
        p.rx2_dr, p.max_dcycle = b[6], b[7]
        p.rx2_freq_hz = _get24(b, 8) * 100
        p.mask = b[11] | b[12] << 8
        for i in range(MAX_CHANNELS):
            o = 13 + 7 * i
            p.freq_hz[i] = _get24(b, o) * 100
            p.dl_freq_hz[i] = _get24(b, o + 3) * 100
            p.dr_min[i] = b[o + 6] >> 4
            p.dr_max[i] = b[o + 6] & 0xF
        return p


def _put24(b, o, v):
    b[o] = v & 0xFF
    b[o + 1] = (v >> 8) & 0xFF
    b[o + 2] = (v >> 16) & 0xFF


def _get24(b, o):
    return b[o] | b[o + 1] << 8 | b[o + 2] << 16
