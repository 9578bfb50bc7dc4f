# MAC commands one by one, with the answer bytes the LoRaWAN 1.0.4 spec defines (§5) for EU868 (RP002).
from bysans.lorawan import maccmd, region


def _run(cmds, plan=None):
    plan = plan or region.Plan()
    ans = maccmd.Answers()
    ctx = maccmd.Context()
    n = maccmd.process(cmds, len(cmds), plan, ans, ctx)
    out = bytearray(15)
    k = ans.copy_into(out, 0)
    return plan, bytes(out[:k]), ctx, n


def _f(hz):
    v = hz // 100
    return bytes([v & 0xFF, (v >> 8) & 0xFF, v >> 16])


def test_link_check_ans():
    plan, out, ctx, n = _run(b"\x02\x14\x03")
    assert ctx.link_margin == (20, 3) and out == b"" and n == 1


def test_link_adr_accepts_and_applies():
    # DR3, TXPower 2, channels 0..2, NbTrans 2
    plan, out, ctx, n = _run(bytes([0x03, 0x32, 0x07, 0x00, 0x02]))
    assert out == b"\x03\x07"
    assert (plan.tx_dr, plan.tx_power, plan.nb_trans, plan.mask) == (3, 2, 2, 7)


def test_link_adr_keeps_dr_and_power_on_0xf():
    p = region.Plan()
    p.tx_dr, p.tx_power = 4, 1
    plan, out, ctx, n = _run(bytes([0x03, 0xFF, 0x03, 0x00, 0x00]), p)
    assert out == b"\x03\x07" and (plan.tx_dr, plan.tx_power, plan.mask, plan.nb_trans) == (4, 1, 3, 1)


def test_link_adr_rejects_atomically():
    # power index 9 does not exist in EU868: nothing changes, power bit clear
    plan, out, ctx, n = _run(bytes([0x03, 0x59, 0x07, 0x00, 0x01]))
    assert out == b"\x03\x03" and plan.tx_dr == 0 and plan.tx_power == 0
    # an undefined channel in the mask
    plan, out, ctx, n = _run(bytes([0x03, 0x50, 0x08, 0x00, 0x01]))
    assert out == b"\x03\x04" and plan.mask == 7 and plan.tx_dr == 0
    # all channels off
    plan, out, ctx, n = _run(bytes([0x03, 0x50, 0x00, 0x00, 0x01]))
    assert out[1] & 1 == 0 and plan.mask == 7
    # DR7 (FSK) is not offered
    plan, out, ctx, n = _run(bytes([0x03, 0x70, 0x07, 0x00, 0x01]))
    assert out == b"\x03\x05"
    assert ctx.rejected == 1


def test_link_adr_chmaskcntl_6_enables_all_defined():
    p = region.Plan()
    p.freq_hz[4] = 867300000
    p.dr_max[4] = 5
    p.mask = 1
    plan, out, ctx, n = _run(bytes([0x03, 0x5F, 0x00, 0x00, 0x60]), p)
    assert out == b"\x03\x07" and plan.mask == 0b10111


def test_duty_cycle_req():
    plan, out, ctx, n = _run(b"\x04\x07")
    assert plan.max_dcycle == 7 and out == b"\x04"


def test_rx_param_setup():
    plan, out, ctx, n = _run(b"\x05" + bytes([(1 << 4) | 3]) + _f(869525000))
    assert out == b"\x05\x07" and (plan.rx1_dr_offset, plan.rx2_dr, plan.rx2_freq_hz) == (1, 3, 869525000)
    plan, out, ctx, n = _run(b"\x05" + bytes([(6 << 4) | 3]) + _f(869525000))
    assert out == b"\x05\x03" and plan.rx1_dr_offset == 0
    plan, out, ctx, n = _run(b"\x05" + bytes([0x0F]) + _f(915000000))
    assert out == b"\x05\x04" and plan.rx2_freq_hz == 869525000


def test_dev_status():
    ans = maccmd.Answers()
    ctx = maccmd.Context()
    ctx.battery = 0
    ctx.snr = -40
    maccmd.process(b"\x06", 1, region.Plan(), ans, ctx)
    out = bytearray(15)
    assert bytes(out[:ans.copy_into(out, 0)]) == bytes([6, 0, 0x20])  # -32 in 6 bits


def test_new_channel():
    plan, out, ctx, n = _run(b"\x07\x03" + _f(867100000) + b"\x50")
    assert out == b"\x07\x03" and plan.freq_hz[3] == 867100000 and plan.enabled(3)
    assert (plan.dr_min[3], plan.dr_max[3]) == (0, 5)
    # a default channel cannot change; a bad frequency and a bad DR range are refused
    plan, out, ctx, n = _run(b"\x07\x01" + _f(867100000) + b"\x50")
    assert out == b"\x07\x00" and plan.freq_hz[1] == 868300000
    plan, out, ctx, n = _run(b"\x07\x04" + _f(902300000) + b"\x50")
    assert out == b"\x07\x02" and not plan.defined(4)
    plan, out, ctx, n = _run(b"\x07\x04" + _f(867100000) + b"\x05")
    assert out == b"\x07\x01" and not plan.defined(4)
    # frequency 0 deletes a channel
    p = region.Plan()
    p.freq_hz[4] = 867300000
    p.mask |= 1 << 4
    plan, out, ctx, n = _run(b"\x07\x04\x00\x00\x00\x00", p)
    assert out == b"\x07\x03" and not plan.defined(4) and not plan.enabled(4)


def test_rx_timing_setup_and_dl_channel_sticky():
    plan, out, ctx, n = _run(b"\x08\x00" + b"\x0a\x00" + _f(868900000))
    assert plan.rx1_delay_ms == 1000 and plan.dl_freq_hz[0] == 868900000
    assert out == b"\x08\x0a\x03"


def test_unknown_and_truncated_stop_parsing_without_raising():
    plan, out, ctx, n = _run(b"\x06\x80\x06\x06")
    assert n == 1 and ctx.unknown == 1 and out[:1] == b"\x06" and len(out) == 3
    plan, out, ctx, n = _run(b"\x06\x03\x50")
    assert n == 1 and ctx.truncated == 1
    plan, out, ctx, n = _run(b"")
    assert n == 0


def test_answers_never_overflow_fopts():
    plan, out, ctx, n = _run(b"\x06" * 8)
    assert len(out) == 15 and n == 8


def test_every_byte_sequence_is_survived():
    # a crude fuzz: random command soup never raises and never leaves the plan invalid
    import os

    for _ in range(300):
        data = os.urandom(os.urandom(1)[0] % 20)
        plan, out, ctx, n = _run(data)
        assert len(out) <= 15
        assert plan.mask != 0 and plan.tx_dr <= region.DR_MAX
        assert region.sub_band(plan.rx2_freq_hz) >= 0
