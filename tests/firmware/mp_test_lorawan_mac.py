# The class A MAC against a fake radio, a fake clock and a minimal network server (lorawan_fakes.py):
# join, uplinks, windows on time, counters persisted, bad downlinks dropped and counted.
# mp: -X heapsize=256K
from binascii import unhexlify

from bysans.lorawan import frames, mac, region
from bysans.lorawan.errors import DutyCycleBlocked, FrameError, JoinFailed, NotJoined
from bysans.lorawan.radio import MemoryStore
from lorawan_fakes import FakeClock, FakeNetwork, FakeRadio

APPKEY = unhexlify("2b7e151628aed2a6abf7158809cf4f3c")
DEV_EUI = unhexlify("70b3d57ed0000001")
JOIN_EUI = unhexlify("70b3d57ed0000000")


def _setup(store=None, clock=None, **kw):
    clock = clock or FakeClock(1000)
    radio = FakeRadio(clock)
    net = FakeNetwork(APPKEY)
    net.attach(radio)
    store = store if store is not None else MemoryStore()
    m = mac.ClassA(radio, clock, store, dev_eui=DEV_EUI, join_eui=JOIN_EUI, app_key=APPKEY, **kw)
    return m, radio, net, clock, store


def _joined(**kw):
    m, radio, net, clock, store = _setup(**kw)
    m.join()
    clock.sleep_ms(600000)  # let the join's duty-cycle silence pass
    return m, radio, net, clock, store


def test_join_then_uplink_decrypts_at_the_server():
    m, radio, net, clock, store = _joined()
    assert m.joined and m.dev_addr == net.dev_addr
    m.send(2, b"hello bysans")
    fcnt, port, plain, fopts, fctrl, mtype = net.uplinks[-1]
    assert (fcnt, port, plain, mtype) == (0, 2, b"hello bysans", 2)
    assert net.bad == 0


def test_join_request_on_default_channel_and_devnonce_counts_up():
    m, radio, net, clock, store = _setup()
    m.join()
    first = radio.sent[0]
    assert first[3] in region.DEFAULT_CHANNELS_HZ and first[4] == 7
    assert first[2][17] | first[2][18] << 8 == 0
    assert store.get("dn") == 1
    clock.sleep_ms(600000)
    net.answer_joins = False
    try:
        m.join()
        assert False, "join without answer"
    except JoinFailed:
        pass
    assert radio.sent[-1][2][17] | radio.sent[-1][2][18] << 8 == 1
    assert m.joined  # the old session survives a failed rejoin


def test_join_windows_at_5_and_6_seconds():
    m, radio, net, clock, store = _setup()
    net.answer_joins = False
    try:
        m.join()
    except JoinFailed:
        pass
    end = radio.sent[0][1]
    (t1, f1, sf1, bw1, to1), (t2, f2, sf2, bw2, to2) = radio.listens
    assert t1 <= end + 5000 <= t1 + to1 and f1 == radio.sent[0][3] and sf1 == 7
    assert t2 <= end + 6000 <= t2 + to2 and f2 == 869525000 and sf2 == 12


def test_join_accept_in_rx2():
    m, radio, net, clock, store = _setup()
    net.use_rx2 = True
    assert m.join()
    assert m.joined


def test_replayed_join_accept_refused():
    m, radio, net, clock, store = _joined()
    old = net.last_join_accept
    net.answer_joins = False
    clock.sleep_ms(600000)
    # replay the old accept in RX1 of the next join-request
    net_send = radio.on_send

    def replay(r, rec):
        r.air.append((rec[1] + 5000, rec[3], rec[4], rec[5], old))

    radio.on_send = replay
    try:
        m.join()
        assert False
    except JoinFailed:
        pass
    radio.on_send = net_send
    assert m.stats["join_replay"] == 1


def test_rx1_and_rx2_windows_on_time():
    m, radio, net, clock, store = _joined()
    n0 = len(radio.listens)
    m.send(2, b"x")
    end = radio.sent[-1][1]
    (t1, f1, sf1, bw1, to1), (t2, f2, sf2, bw2, to2) = radio.listens[n0:]
    assert t1 <= end + 1000 <= t1 + to1 and f1 == radio.sent[-1][3] and sf1 == radio.sent[-1][4]
    assert t2 <= end + 2000 <= t2 + to2 and (f2, sf2) == (869525000, 12)


def test_not_joined_and_bad_port_and_size():
    m, radio, net, clock, store = _setup()
    try:
        m.send(1, b"x")
        assert False
    except NotJoined:
        pass
    m.join()
    clock.sleep_ms(600000)
    for port in (0, 224):
        try:
            m.send(port, b"x")
            assert False
        except FrameError:
            pass
    m.plan.tx_dr = 0
    try:
        m.send(1, bytes(52))
        assert False
    except FrameError:
        pass
    m.send(1, bytes(51))
    assert len(radio.sent[-1][2]) == 51 + 13


def test_fcnt_increments_per_attempt_and_survives_restart():
    store = MemoryStore()
    m, radio, net, clock, store = _joined(store=store)
    for i in range(3):
        m.send(1, b"a")
        clock.sleep_ms(600000)
    assert [u[0] for u in net.uplinks] == [0, 1, 2]
    # a reset: a new MAC object over the same store carries on without reuse
    m2 = mac.ClassA(radio, clock, store, dev_eui=DEV_EUI, join_eui=JOIN_EUI, app_key=APPKEY)
    assert m2.joined
    m2.send(1, b"b")
    assert net.uplinks[-1][0] == 3 and net.uplinks[-1][2] == b"b"


def test_fcnt_reservation_skips_but_never_reuses():
    store = MemoryStore()
    m, radio, net, clock, store = _joined(store=store, fcnt_step=8)
    for i in range(3):
        m.send(1, b"a")
        clock.sleep_ms(600000)
    assert store.get("fu") == 8
    m2 = mac.ClassA(radio, clock, store, dev_eui=DEV_EUI, join_eui=JOIN_EUI, app_key=APPKEY,
                    fcnt_step=8)
    m2.send(1, b"b")
    assert net.uplinks[-1][0] == 8


def test_retransmissions_of_unconfirmed_take_fresh_counters():
    m, radio, net, clock, store = _joined()
    m.plan.nb_trans = 3
    m.send(1, b"r")
    assert [u[0] for u in net.uplinks] == [0, 1, 2]
    assert all(u[2] == b"r" for u in net.uplinks)


def test_confirmed_uplink_acked():
    m, radio, net, clock, store = _joined()
    net.queue(None)  # placeholder replaced below once the network's keys exist
    net.next_down = [net.downlink(ack=True)]
    dl = m.send(1, b"c", confirmed=True, tries=3)
    assert net.uplinks[-1][5] == 4
    assert dl is not None and dl.ack and m.last_ack
    assert len(net.uplinks) == 1


def test_confirmed_uplink_retried_without_ack():
    m, radio, net, clock, store = _joined()
    dl = m.send(1, b"c", confirmed=True, tries=2)
    assert dl is None and not m.last_ack
    assert len(net.uplinks) == 2


def test_application_downlink_delivered_and_counter_kept():
    m, radio, net, clock, store = _joined()
    net.queue(net.downlink(port=10, payload=b"\x01\x02open"))
    dl = m.send(1, b"u")
    assert dl.port == 10 and dl.payload == b"\x01\x02open"
    assert m.fcnt_down == 0 and store.get("fd") == 0
    assert m.stats["app_rx"] == 1


def test_confirmed_downlink_acked_in_next_uplink():
    m, radio, net, clock, store = _joined()
    net.queue(net.downlink(port=3, payload=b"z", confirmed=True))
    dl = m.send(1, b"u")
    assert dl.confirmed
    clock.sleep_ms(600000)
    m.send(1, b"v")
    assert net.uplinks[-1][4] & 0x20
    clock.sleep_ms(600000)
    m.send(1, b"w")
    assert not net.uplinks[-1][4] & 0x20


def _bad_downlink_leaves_session(kind):
    m, radio, net, clock, store = _joined()
    net.queue(net.downlink(port=5, payload=b"first"))
    m.send(1, b"a")
    clock.sleep_ms(600000)
    good_fcnt = m.fcnt_down
    if kind == "replay":
        frame = net.downlink(port=5, payload=b"again", fcnt=good_fcnt)
    elif kind == "mic":
        frame = bytearray(net.downlink(port=5, payload=b"tamper"))
        frame[-6] ^= 0x01
    elif kind == "oversized":
        net.use_rx2 = True  # RX2 at DR0: at most 59 bytes of MACPayload
        frame = net.downlink(port=5, payload=bytes(60))
    elif kind == "other":
        frame = net.downlink(port=5, payload=b"x", dev_addr=0x01020304)
    elif kind == "short":
        frame = b"\x60\x01\x02"
    net.queue(bytes(frame))
    dl = m.send(1, b"b")
    assert dl is None
    net.use_rx2 = False
    clock.sleep_ms(600000)
    # the session goes on: the next good downlink is accepted, the next uplink counts on
    net.fcnt_down = good_fcnt + 5
    net.queue(net.downlink(port=6, payload=b"after"))
    dl = m.send(1, b"c")
    assert dl is not None and dl.payload == b"after", kind
    assert [u[0] for u in net.uplinks] == [0, 1, 2]
    return m


def test_replayed_downlink_dropped_and_counted():
    assert _bad_downlink_leaves_session("replay").stats["replay"] == 1


def test_wrong_mic_dropped_and_counted():
    assert _bad_downlink_leaves_session("mic").stats["bad_mic"] == 1


def test_oversized_downlink_dropped_and_counted():
    assert _bad_downlink_leaves_session("oversized").stats["oversized"] == 1


def test_other_device_and_runt_frames_dropped():
    assert _bad_downlink_leaves_session("other").stats["other_addr"] == 1
    assert _bad_downlink_leaves_session("short").stats["malformed"] == 1


def test_downlink_counter_rollover_past_16_bits():
    m, radio, net, clock, store = _joined()
    net.queue(net.downlink(port=5, payload=b"a", fcnt=0xFFFE))
    assert m.send(1, b"a").fcnt == 0xFFFE
    clock.sleep_ms(600000)
    net.queue(net.downlink(port=5, payload=b"b", fcnt=0x10003))
    dl = m.send(1, b"b")
    assert dl.fcnt == 0x10003 and dl.payload == b"b"


def test_unknown_mac_command_dropped_counted_and_the_rest_kept():
    m, radio, net, clock, store = _joined()
    # DevStatusReq, then an unknown CID 0x7F with bytes after it
    net.queue(net.downlink(fopts=b"\x06\x7f\x01\x02"))
    dl = m.send(1, b"a")
    assert dl is not None
    assert m.stats["mac_unknown"] == 1 and m.stats["mac_commands"] == 1
    clock.sleep_ms(600000)
    m.send(1, b"b")
    assert net.uplinks[-1][3][:1] == b"\x06"  # DevStatusAns in FOpts
    assert m.joined


def test_mac_commands_on_port_0_answered_in_fopts():
    m, radio, net, clock, store = _joined(battery=lambda: 200)
    radio.last_snr = -5
    # DevStatusReq + DutyCycleReq(2) + RXTimingSetupReq(3) in an encrypted port-0 payload
    net.queue(net.downlink(port=0, payload=b"\x06\x04\x02\x08\x03"))
    m.send(1, b"a")
    assert m.plan.max_dcycle == 2 and m.plan.rx1_delay_ms == 3000
    clock.sleep_ms(600000)
    m.send(1, b"b")
    fopts = net.uplinks[-1][3]
    assert fopts == b"\x08" + b"\x06" + bytes([200, (-5) & 0x3F]) + b"\x04"
    # RXTimingSetupAns is sticky: it repeats until a downlink arrives
    clock.sleep_ms(600000)
    m.send(1, b"c")
    assert net.uplinks[-1][3] == b"\x08"
    # and the RX1 window now opens 3 s after the uplink
    end = radio.sent[-1][1]
    t1, f1, sf1, bw1, to1 = radio.listens[-2]
    assert t1 <= end + 3000 <= t1 + to1


def test_mac_command_in_both_fopts_and_port_0_is_dropped():
    m, radio, net, clock, store = _joined()
    net.queue(net.downlink(port=0, payload=b"\x06", fopts=b"\x06"))
    assert m.send(1, b"a") is None
    assert m.stats["malformed"] == 1


def test_session_plan_persisted_after_mac_command():
    m, radio, net, clock, store = _joined()
    # NewChannelReq: channel 3 at 867.1 MHz, DR0..5
    f = 8671000
    net.queue(net.downlink(fopts=bytes([0x07, 3, f & 0xFF, (f >> 8) & 0xFF, f >> 16, 0x50])))
    m.send(1, b"a")
    m2 = mac.ClassA(radio, clock, store, dev_eui=DEV_EUI, join_eui=JOIN_EUI, app_key=APPKEY)
    assert m2.plan.freq_hz[3] == 867100000 and m2.plan.enabled(3)


def test_join_accept_cflist_and_dlsettings_applied():
    m, radio, net, clock, store = _setup()
    freqs = (867100000, 867300000, 867500000, 867700000, 867900000)
    cf = bytearray(16)
    for i, f in enumerate(freqs):
        v = f // 100
        cf[3 * i:3 * i + 3] = bytes([v & 0xFF, (v >> 8) & 0xFF, v >> 16])
    net.cflist = bytes(cf)
    net.dl_settings = (2 << 4) | 3
    net.rx_delay = 2
    m.join()
    p = m.plan
    assert tuple(p.freq_hz[3:8]) == freqs and p.mask == 0xFF
    assert (p.rx1_dr_offset, p.rx2_dr, p.rx1_delay_ms) == (2, 3, 2000)


def test_duty_cycle_blocks_and_nothing_is_sent():
    m, radio, net, clock, store = _joined()
    m.plan.tx_dr = 0
    m.send(1, bytes(24))
    n = len(radio.sent)
    try:
        m.send(1, bytes(24))
        assert False
    except DutyCycleBlocked as e:
        assert 190000 < e.wait_ms < 200000  # 1974 ms * 99, less the windows already passed
    assert len(radio.sent) == n and m.stats["duty_blocked"] == 1
    assert m.fcnt_up == 1  # no counter spent on a refused frame


def test_suspend_keeps_the_silence_across_deep_sleep():
    m, radio, net, clock, store = _joined()
    m.plan.tx_dr = 0
    m.send(1, bytes(24))
    m.suspend()
    clock2 = FakeClock(5)  # ticks restart after deep sleep
    radio.clock = clock2
    m2 = mac.ClassA(radio, clock2, store, dev_eui=DEV_EUI, join_eui=JOIN_EUI, app_key=APPKEY)
    m2.plan.tx_dr = 0
    try:
        m2.send(1, bytes(24))
        assert False
    except DutyCycleBlocked:
        pass


class EpochClock(FakeClock):
    # a board's clock: ticks restart at each wake, the RTC's epoch seconds run through deep sleep
    def __init__(self, t, epoch):
        FakeClock.__init__(self, t)
        self.epoch = epoch

    def epoch_s(self):
        return self.epoch


def test_suspend_counts_the_time_slept_by_the_rtc_clock():
    # an SF12 silence (about 195 s) longer than the sleep (120 s): after the sleep only the rest is owed,
    # so a node whose interval is shorter than its silence still sends every other wake
    m, radio, net, clock, store = _joined()
    m._clock = EpochClock(clock.t, 1750000000)
    m.plan.tx_dr = 0
    m.send(1, bytes(24))
    m.suspend()
    for slept_s, blocked in ((120, True), (200, False), (0, True), (-50, True)):  # -50: the clock went back
        store.put(mac.K_DUTY_AT, 1750000000)
        m.suspend()  # the same silence saved again at the same time
        c2 = EpochClock(5, 1750000000 + slept_s)
        radio.clock = c2
        m2 = mac.ClassA(radio, c2, store, dev_eui=DEV_EUI, join_eui=JOIN_EUI, app_key=APPKEY)
        m2.plan.tx_dr = 0
        try:
            m2.send(1, bytes(24))
            assert not blocked, slept_s
        except DutyCycleBlocked as e:
            assert blocked, slept_s
            if slept_s == 120:
                assert 60000 < e.wait_ms < 80000, e.wait_ms
        radio.clock = clock


def test_adr_ack_req_after_limit_and_backoff():
    m, radio, net, clock, store = _joined()
    m.plan.tx_dr = 5
    m.plan.tx_power = 3
    for i in range(mac.ADR_ACK_LIMIT + mac.ADR_ACK_DELAY + 1):
        m.send(1, b"a")
        clock.sleep_ms(20000)
    assert net.uplinks[mac.ADR_ACK_LIMIT - 1][4] & 0x40 == 0
    assert net.uplinks[mac.ADR_ACK_LIMIT][4] & 0x40
    assert m.plan.tx_power == 0
    # a downlink resets the counter
    net.queue(net.downlink())
    m.send(1, b"b")
    assert m.adr_ack_cnt == 0


def test_secrets_absent_from_repr_and_errors():
    m, radio, net, clock, store = _joined()
    from binascii import hexlify

    key_hex = hexlify(APPKEY).decode()
    assert key_hex not in repr(m) and key_hex not in repr(store)
    try:
        m.send(1, bytes(300))
    except FrameError as e:
        assert key_hex not in str(e)
