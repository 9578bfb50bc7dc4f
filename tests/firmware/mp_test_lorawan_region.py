# EU868 plan: integer time on air against REFERENCE §1's table and an independent float formula, and
# duty-cycle accounting checked by an independent observer of the air (the fake radio's log).
# mp: -X heapsize=4M
from binascii import unhexlify

from bysans.lorawan import mac, region
from bysans.lorawan.errors import DutyCycleBlocked
from bysans.lorawan.radio import MemoryStore
from lorawan_fakes import FakeClock, FakeNetwork, FakeRadio, toa_ms_float

# REFERENCE §1: application payload -> ms at SF7, SF10, SF12 (PL = payload + 13)
TABLE = (
    (4, (51.5, 329.7, 1318.9)),
    (5, (51.5, 329.7, 1318.9)),
    (6, (51.5, 329.7, 1318.9)),
    (11, (61.7, 370.7, 1482.8)),
    (15, (66.8, 411.6, 1646.6)),
    (24, (82.2, 493.6, 1974.3)),
    (51, (118.0, 698.4, 2793.5)),
)


def test_time_on_air_matches_reference_table():
    for app, row in TABLE:
        for sf, want in zip((7, 10, 12), row):
            us = region.time_on_air_us(app + 13, sf)
            assert isinstance(us, int)
            got = (us + 50) // 100  # tenths of a ms, rounded
            assert got == int(want * 10 + 0.5), (app, sf, us, want)


def test_time_on_air_matches_float_formula_everywhere():
    for sf in range(7, 13):
        for bw in (125, 250):
            for pl in range(0, 256, 7):
                us = region.time_on_air_us(pl, sf, bw)
                assert abs(us / 1000 - toa_ms_float(pl, sf, bw)) < 0.001, (pl, sf, bw)
                us0 = region.time_on_air_us(pl, sf, bw, crc=False)
                assert abs(us0 / 1000 - toa_ms_float(pl, sf, bw, 0)) < 0.001


def test_sub_bands():
    assert region.sub_band(868100000) == region.sub_band(868500000)
    assert region.SUB_BANDS[region.sub_band(868300000)][2] == 99
    assert region.SUB_BANDS[region.sub_band(869525000)][2] == 9
    assert region.SUB_BANDS[region.sub_band(868900000)][2] == 999
    assert region.sub_band(868650000) == -1
    assert region.sub_band(870100000) == -1
    assert region.sub_band(433175000) == -1


def test_plan_defaults_and_roundtrip():
    p = region.Plan()
    assert [p.freq_hz[i] for i in range(3)] == [868100000, 868300000, 868500000]
    assert p.rx2_freq_hz == 869525000 and p.rx2_dr == 0 and p.mask == 7
    assert region.DATA_RATES[0] == (12, 125) and region.DATA_RATES[5] == (7, 125)
    p.freq_hz[5] = 867500000
    p.mask |= 1 << 5
    p.tx_dr, p.tx_power, p.rx1_dr_offset, p.max_dcycle = 3, 2, 1, 4
    q = region.Plan.from_bytes(p.to_bytes())
    assert q.to_bytes() == p.to_bytes() and q.freq_hz[5] == 867500000 and q.tx_dr == 3
    assert region.Plan.from_bytes(b"junk") is None


def test_duty_cycle_accounting_one_percent():
    d = region.DutyCycle(lambda a, b: a - b)
    band = region.sub_band(868100000)
    assert d.wait_ms(band, 0) == 0
    toa = region.time_on_air_us(37, 12)  # 1974272 us
    d.record(band, toa, 2000)
    assert d.wait_ms(band, 2000) == (toa * 99 + 999) // 1000
    assert d.wait_ms(band, 2000 + (toa * 99 + 999) // 1000) == 0
    assert d.wait_ms(region.sub_band(869525000), 2000) == 0  # other bands unaffected


def test_aggregated_duty_cycle_from_dutycyclereq():
    d = region.DutyCycle(lambda a, b: a - b)
    d.max_dcycle = 4  # 1/16 over all bands
    d.record(region.sub_band(869525000), 100000, 0)
    assert d.wait_ms(region.sub_band(868100000), 0) == 1500


APPKEY = unhexlify("000102030405060708090a0b0c0d0e0f")


def _band(f):
    # the observer's own sub-band table (EN 300 220 as LoRaMac-node uses it)
    if 868000000 < f <= 868600000:
        return "g1"
    if 869400000 <= f <= 869650000:
        return "g3"
    if 865000000 <= f <= 868000000:
        return "h"
    return "other:%d" % f


def _violations(sent):
    # independent observer of the air (REFERENCE §1's rule): in a sub-band, a frame may start only after
    # the previous one's start + ToA + ToA x 99
    v = 0
    last = {}
    for start, end, frame, freq, sf, bw, power in sent:
        b = _band(freq)
        toa = toa_ms_float(len(frame), sf, bw)
        if b in last:
            ps, ptoa = last[b]
            if start < ps + 100 * ptoa:
                v += 1
        last[b] = (start, toa)
    return v


def _worst_hour_airtime_ms(sent):
    # the most airtime any sliding hour holds in one sub-band. The per-frame rule bounds it by
    # 36 s + one frame (n frames spaced 100 x ToA fit in an hour when (n - 1) x 100 x ToA < 3600 s)
    per = {}
    for start, end, frame, freq, sf, bw, power in sent:
        per.setdefault(_band(freq), []).append((start, toa_ms_float(len(frame), sf, bw)))
    worst = 0
    for lst in per.values():
        for i in range(len(lst)):
            total = 0
            for s, t in lst[i:]:
                if s >= lst[i][0] + 3600000:
                    break
                total += t
            worst = max(worst, total)
    return worst


def _burst_hour(dr, every_ms):
    clock = FakeClock(0)
    radio = FakeRadio(clock)
    net = FakeNetwork(APPKEY)
    net.attach(radio)
    m = mac.ClassA(radio, clock, MemoryStore(), dev_eui=b"\x00" * 7 + b"\x01", join_eui=bytes(8),
                   app_key=APPKEY, adr=False)  # ADR back-off would change the DR mid-hour
    m.join()
    m.plan.tx_dr = dr
    start = clock.t
    sent = blocked = 0
    pending = False
    t = start
    while t < start + 3600000:
        if clock.t < t:
            clock.t = t
        pending = True  # an alarm fires; a newer one replaces an older unsent one
        try:
            m.send(7, bytes(24))
            sent += 1
            pending = False
        except DutyCycleBlocked:
            blocked += 1
        t += every_ms
    return radio.sent, sent, blocked


def test_an_hour_of_alarms_in_a_burst_never_violates_dr0():
    frames, sent, blocked = _burst_hour(0, 2000)
    assert _violations(frames) == 0
    assert _worst_hour_airtime_ms(frames) <= 36000 + toa_ms_float(37, 12)
    # and it does not just refuse everything: about one 24-byte SF12 frame per 100 x 1.97 s
    assert 15 <= sent <= 19 and blocked > 1000


def test_an_hour_of_alarms_in_a_burst_never_violates_dr5():
    frames, sent, blocked = _burst_hour(5, 1000)
    assert _violations(frames) == 0
    assert _worst_hour_airtime_ms(frames) <= 36000 + toa_ms_float(37, 7)
    assert 380 <= sent <= 440


def test_observer_catches_a_naive_scheduler():
    # the checker itself must see violations when frames go out at once
    clock = FakeClock(0)
    radio = FakeRadio(clock)
    for i in range(10):
        clock.t = i * 2000
        radio.send(bytes(37), 868100000, 12, 125, 14)
    assert _violations(radio.sent) == 9
