# MAC commands (LoRaWAN 1.0.4 §5, EU868 rules from RP002): parse what the network sends, change the
# Plan, and queue the answers. Unknown or truncated commands end parsing (their length is unknown) and are
# counted; nothing here raises on network input.
from micropython import const

from . import region

LINK_CHECK = const(0x02)
LINK_ADR = const(0x03)
DUTY_CYCLE = const(0x04)
RX_PARAM_SETUP = const(0x05)
DEV_STATUS = const(0x06)
NEW_CHANNEL = const(0x07)
RX_TIMING_SETUP = const(0x08)
TX_PARAM_SETUP = const(0x09)
DL_CHANNEL = const(0x0A)
DEVICE_TIME = const(0x0D)

# payload length of each downlink command (after the CID)
DOWN_LEN = {
    LINK_CHECK: 2,
    LINK_ADR: 4,
    DUTY_CYCLE: 1,
    RX_PARAM_SETUP: 4,
    DEV_STATUS: 0,
    NEW_CHANNEL: 5,
    RX_TIMING_SETUP: 1,
    TX_PARAM_SETUP: 1,
    DL_CHANNEL: 4,
    DEVICE_TIME: 5,
}

ANSWERS_MAX = const(15)  # FOpts holds 15 bytes


class Answers:
    # Answers waiting for the next uplink, in a preallocated buffer. Sticky answers (RXParamSetupAns,
    # RXTimingSetupAns, DlChannelAns) repeat in every uplink until a downlink arrives (1.0.4 §5.4, §5.7).
    def __init__(self):
        self.buf = bytearray(ANSWERS_MAX)
        self.n = 0
        self.sticky = bytearray(ANSWERS_MAX)
        self.ns = 0
        self.dropped = 0

    def add(self, cid, b0=None, b1=None, sticky=False):
        size = 1 + (b0 is not None) + (b1 is not None)
        if self.n + self.ns + size > ANSWERS_MAX:
            self.dropped += 1
            return
        buf = self.sticky if sticky else self.buf
        o = self.ns if sticky else self.n
        buf[o] = cid
        if b0 is not None:
            buf[o + 1] = b0
        if b1 is not None:
            buf[o + 2] = b1
        if sticky:
            self.ns += size
        else:
            self.n += size

    def length(self):
        return self.n + self.ns

    def copy_into(self, dst, off):
        # writes sticky then one-shot answers at dst[off:]; returns the length written
        for i in range(self.ns):
            dst[off + i] = self.sticky[i]
        for i in range(self.n):
            dst[off + self.ns + i] = self.buf[i]
        return self.ns + self.n

    def sent(self, k):
        # the first k bytes of one-shot answers went out: drop them (answers queued since stay); sticky
        # ones wait for a downlink
        if k >= self.n:
            self.n = 0
            return
        b = self.buf
        for i in range(self.n - k):
            b[i] = b[k + i]
        self.n -= k

    def downlink_received(self):
        self.ns = 0


class Context:
    # What the MAC command handlers may read and write besides the plan.
    def __init__(self):
        self.battery = 255         # DevStatusAns: 0 external power, 1..254 level, 255 unknown
        self.snr = 0               # SNR (dB) of the frame being processed
        self.link_margin = None    # LinkCheckAns: (margin dB, gateway count)
        self.device_time = None    # DeviceTimeAns: (GPS seconds, fraction /256)
        self.unknown = 0
        self.truncated = 0
        self.rejected = 0          # commands answered with a NACK bit


def process(data, n, plan, answers, ctx, off=0):
    # Walk data[off:off+n]; returns the number of commands handled.
    end = off + n
    i = off
    handled = 0
    while i < end:
        cid = data[i]
        size = DOWN_LEN.get(cid)
        if size is None:
            ctx.unknown += 1
            break
        if i + 1 + size > end:
            ctx.truncated += 1
            break
        p = i + 1
        if cid == LINK_CHECK:
            ctx.link_margin = (data[p], data[p + 1])
        elif cid == LINK_ADR:
            _link_adr(data, p, plan, answers, ctx)
        elif cid == DUTY_CYCLE:
            plan.max_dcycle = data[p] & 0x0F
            answers.add(DUTY_CYCLE)
        elif cid == RX_PARAM_SETUP:
            _rx_param_setup(data, p, plan, answers, ctx)
        elif cid == DEV_STATUS:
            snr = ctx.snr
            if snr < -32:
                snr = -32
            elif snr > 31:
                snr = 31
            answers.add(DEV_STATUS, ctx.battery & 0xFF, snr & 0x3F)
        elif cid == NEW_CHANNEL:
            _new_channel(data, p, plan, answers, ctx)
        elif cid == RX_TIMING_SETUP:
            d = data[p] & 0x0F
            plan.rx1_delay_ms = (d if d else 1) * 1000
            answers.add(RX_TIMING_SETUP, sticky=True)
        elif cid == TX_PARAM_SETUP:
            pass  # EU868 does not implement TxParamSetupReq: no answer (RP002 §2.4.x)
        elif cid == DL_CHANNEL:
            _dl_channel(data, p, plan, answers, ctx)
        elif cid == DEVICE_TIME:
            secs = data[p] | data[p + 1] << 8 | data[p + 2] << 16 | data[p + 3] << 24
            ctx.device_time = (secs, data[p + 4])
        handled += 1
        i = p + size
    return handled


def _freq(data, p):
    return (data[p] | data[p + 1] << 8 | data[p + 2] << 16) * 100


def _link_adr(data, p, plan, answers, ctx):
    dr = data[p] >> 4
    txp = data[p] & 0x0F
    chmask = data[p + 1] | data[p + 2] << 8
    cntl = (data[p + 3] >> 4) & 0x07
    nb = data[p + 3] & 0x0F
    ch_ok = True
    if cntl == 0:
        new_mask = chmask
        for i in range(region.MAX_CHANNELS):
            if (chmask >> i) & 1 and not plan.defined(i):
                ch_ok = False
    elif cntl == 6:
        new_mask = 0
        for i in range(region.MAX_CHANNELS):
            if plan.defined(i):
                new_mask |= 1 << i
    else:
        new_mask = 0
        ch_ok = False
    if new_mask == 0:
        ch_ok = False
    if dr == 0x0F:
        dr_ok = plan.any_channel_allows(plan.tx_dr, new_mask)
        new_dr = plan.tx_dr
    else:
        dr_ok = dr <= region.DR_MAX and plan.any_channel_allows(dr, new_mask)
        new_dr = dr
    if txp == 0x0F:
        pw_ok = True
        new_pw = plan.tx_power
    else:
        pw_ok = txp <= region.MAX_TX_POWER_INDEX
        new_pw = txp
    if ch_ok and dr_ok and pw_ok:
        plan.mask = new_mask
        plan.tx_dr = new_dr
        plan.tx_power = new_pw
        plan.nb_trans = nb if nb else 1
    else:
        ctx.rejected += 1
    answers.add(LINK_ADR, (pw_ok << 2) | (dr_ok << 1) | ch_ok)


def _rx_param_setup(data, p, plan, answers, ctx):
    off = (data[p] >> 4) & 0x07
    rx2 = data[p] & 0x0F
    f = _freq(data, p + 1)
    ch_ok = region.valid_frequency(f)
    dr_ok = rx2 <= region.DR_MAX
    off_ok = off <= region.RX1_DR_OFFSET_MAX
    if ch_ok and dr_ok and off_ok:
        plan.rx1_dr_offset = off
        plan.rx2_dr = rx2
        plan.rx2_freq_hz = f
    else:
        ctx.rejected += 1
    answers.add(RX_PARAM_SETUP, (off_ok << 2) | (dr_ok << 1) | ch_ok, sticky=True)


def _new_channel(data, p, plan, answers, ctx):
    idx = data[p]
    f = _freq(data, p + 1)
    dmax = data[p + 4] >> 4
    dmin = data[p + 4] & 0x0F
    if idx < len(region.DEFAULT_CHANNELS_HZ) or idx >= region.MAX_CHANNELS:
        f_ok = dr_ok = False  # EU868: the three default channels cannot be changed
    elif f == 0:
        f_ok = dr_ok = True   # deletes the channel
    else:
        f_ok = region.valid_frequency(f)
        dr_ok = dmin <= dmax <= region.DR_MAX
    if f_ok and dr_ok:
        plan.freq_hz[idx] = f
        plan.dl_freq_hz[idx] = 0
        plan.dr_min[idx] = dmin if f else 0
        plan.dr_max[idx] = dmax if f else 0
        if f:
            plan.mask |= 1 << idx
        else:
            plan.mask &= ~(1 << idx)
    else:
        ctx.rejected += 1
    answers.add(NEW_CHANNEL, (dr_ok << 1) | f_ok)


def _dl_channel(data, p, plan, answers, ctx):
    idx = data[p]
    f = _freq(data, p + 1)
    up_ok = idx < region.MAX_CHANNELS and plan.defined(idx)
    f_ok = region.valid_frequency(f)
    if up_ok and f_ok:
        plan.dl_freq_hz[idx] = f
    else:
        ctx.rejected += 1
    answers.add(DL_CHANNEL, (up_ok << 1) | f_ok, sticky=True)
