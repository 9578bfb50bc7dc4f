# The MAC-command parser (LoRaWAN 1.0.4 §5, EU868 rules from RP002): walks the commands a downlink carries,
# changes the Plan and queues the answers (bysans.lorawan.maccmd: Answers, Context). Loaded only when a
# downlink carries MAC commands (maccmd.process); its names are private constants, so they take no room in
# the interpreter's table of interned names.
from micropython import const

from . import region

_LINK_CHECK = const(0x02)
_LINK_ADR = const(0x03)
_DUTY_CYCLE = const(0x04)
_RX_PARAM_SETUP = const(0x05)
_DEV_STATUS = const(0x06)
_NEW_CHANNEL = const(0x07)
_RX_TIMING_SETUP = const(0x08)
_TX_PARAM_SETUP = const(0x09)
_DL_CHANNEL = const(0x0A)
_DEVICE_TIME = const(0x0D)

# payload length of each downlink command (after the CID)
_DOWN_LEN = {
    _LINK_CHECK: 2,
    _LINK_ADR: 4,
    _DUTY_CYCLE: 1,
    _RX_PARAM_SETUP: 4,
    _DEV_STATUS: 0,
    _NEW_CHANNEL: 5,
    _RX_TIMING_SETUP: 1,
    _TX_PARAM_SETUP: 1,
    _DL_CHANNEL: 4,
    _DEVICE_TIME: 5,
}


def process(data, n, plan, answers, ctx, off=0):
    # Walk data[off:off+n]; returns the number of commands handled.
    end = off + n
    i = off
    handled = 0
    while i < end:
        cid = data[i]
        size = _DOWN_LEN.get(cid)
        if size is None:
            ctx.unknown += 1
            break
        if i + 1 + size > end:
            ctx.truncated += 1
            break
        p = i + 1
        if cid == _LINK_CHECK:
            ctx.link_margin = (data[p], data[p + 1])
        elif cid == _LINK_ADR:
            _link_adr(data, p, plan, answers, ctx)
        elif cid == _DUTY_CYCLE:
            plan.max_dcycle = data[p] & 0x0F
            answers.add(_DUTY_CYCLE)
        elif cid == _RX_PARAM_SETUP:
            _rx_param_setup(data, p, plan, answers, ctx)
        elif cid == _DEV_STATUS:
            snr = ctx.snr
            if snr < -32:
                snr = -32
            elif snr > 31:
                snr = 31
            answers.add(_DEV_STATUS, ctx.battery & 0xFF, snr & 0x3F)
        elif cid == _NEW_CHANNEL:
            _new_channel(data, p, plan, answers, ctx)
        elif cid == _RX_TIMING_SETUP:
            d = data[p] & 0x0F
            plan.rx1_delay_ms = (d if d else 1) * 1000
            answers.add(_RX_TIMING_SETUP, sticky=True)
        elif cid == _TX_PARAM_SETUP:
            pass  # EU868 does not implement TxParamSetupReq: no answer (RP002 §2.4.x)
        elif cid == _DL_CHANNEL:
            _dl_channel(data, p, plan, answers, ctx)
        elif cid == _DEVICE_TIME:
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
    answers.add(_LINK_ADR, (pw_ok << 2) | (dr_ok << 1) | ch_ok)


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
    answers.add(_RX_PARAM_SETUP, (off_ok << 2) | (dr_ok << 1) | ch_ok, sticky=True)


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
    answers.add(_NEW_CHANNEL, (dr_ok << 1) | f_ok)


def _dl_channel(data, p, plan, answers, ctx):
    idx = data[p]
    f = _freq(data, p + 1)
    up_ok = idx < region.MAX_CHANNELS and plan.defined(idx)
    f_ok = region.valid_frequency(f)
    if up_ok and f_ok:
        plan.dl_freq_hz[idx] = f
    else:
        ctx.rejected += 1
    answers.add(_DL_CHANNEL, (up_ok << 1) | f_ok, sticky=True)
