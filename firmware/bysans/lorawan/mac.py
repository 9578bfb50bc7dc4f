# LoRaWAN 1.0.4 class A end-device MAC for EU868 (OTAA). The radio, the clock and the persistent store
# are passed in (see radio.py); nothing here imports hardware.
#
#   mac = ClassA(radio, board, store, dev_eui=..., join_eui=..., app_key=...)
#   if not mac.joined:
#       mac.join()                      # JoinFailed: nothing valid in either window; try later
#   dl = mac.send(2, payload)           # DutyCycleBlocked(wait_ms): nothing was sent; keep the data
#   if dl and dl.port: handle(dl.port, dl.payload)
#   mac.suspend()                       # before deep sleep: the duty-cycle silences owed
#
# Counters: DevNonce and FCntUp are written to the store *before* the frame that uses them goes out, so a
# reset or a power cut can skip a value but never reuse one (TR007: FCntUp counts transmission attempts;
# each retransmission is a fresh frame with a fresh FCnt). FCntDown is written before a downlink is acted
# on, so a replay after a reset is still refused.
import os
import struct

from micropython import const

from . import crypto, frames, maccmd, region
from .errors import (ChannelError, CounterExhausted, DutyCycleBlocked, FrameError, JoinFailed, MicError,
                     NotJoined)

ADR_ACK_LIMIT = const(64)
ADR_ACK_DELAY = const(32)
_FCNT_MAX = 0xFFFFFFFF

# store names
K_DEVNONCE = "dn"    # next DevNonce (int)
K_JOINNONCE = "jn"   # last accepted JoinNonce (int)
K_ADDR = "sa"        # DevAddr (int); present = joined
K_KEYS = "sk"        # NwkSKey | AppSKey (32 bytes)
K_PLAN = "sp"        # region.Plan.to_bytes()
K_FCNT_UP = "fu"     # the next FCntUp that may be used without writing the store again
K_FCNT_DOWN = "fd"   # last accepted FCntDown (int, -1 none)
K_DUTY = "dc"        # duty-cycle silences owed, saved by suspend()
K_DUTY_AT = "da"     # the clock's epoch s when suspend() saved them (0: not known)

STAT_NAMES = ("tx", "join_tx", "joins", "rx", "app_rx", "ok", "malformed", "oversized", "other_addr",
              "bad_mic", "replay", "not_downlink", "join_bad_mic", "join_replay", "join_malformed",
              "mac_commands", "mac_unknown", "mac_truncated", "mac_rejected", "mac_answers_dropped",
              "duty_blocked", "rx_late")


class Downlink:
    __slots__ = ("port", "payload", "ack", "fpending", "confirmed", "fcnt")

    def __init__(self, port, payload, ack, fpending, confirmed, fcnt):
        self.port = port          # 0 (MAC commands only) or None (no FPort) or 1..223
        self.payload = payload    # decrypted application payload (bytes); b"" for port 0 / none
        self.ack = ack            # the network acknowledged our confirmed uplink
        self.fpending = fpending  # the network has more: send an uplink soon
        self.confirmed = confirmed
        self.fcnt = fcnt

    def __repr__(self):
        return "<Downlink port=%s len=%d ack=%s>" % (self.port, len(self.payload), self.ack)


def _rand_byte():
    return os.urandom(1)[0]


class ClassA:
    def __init__(self, radio, clock, store, *, dev_eui, join_eui, app_key, battery=None, adr=True,
                 rx_margin_ms=20, max_retx_wait_ms=30000, fcnt_step=1, rand=None):
        crypto._check_key(app_key)
        if len(dev_eui) != 8 or len(join_eui) != 8:
            from .errors import KeyError_

            raise KeyError_("an EUI is 8 bytes")
        self._radio = radio
        self._clock = clock
        self._store = store
        self._dev_eui = bytes(dev_eui)
        self._join_eui = bytes(join_eui)
        self._app_key = bytes(app_key)
        self._app_cmac = crypto.Cmac(app_key)
        self._battery = battery        # callable -> 0 (external), 1..254, 255 (unknown)
        self._rand = rand or _rand_byte
        self.adr = adr
        self.rx_margin_ms = rx_margin_ms
        self.max_retx_wait_ms = max_retx_wait_ms
        self.fcnt_step = fcnt_step if fcnt_step > 0 else 1
        self.stats = {}
        for k in STAT_NAMES:
            self.stats[k] = 0
        self.ctx = maccmd.Context()
        self.answers = maccmd.Answers()
        self.duty = region.DutyCycle(clock.ticks_diff)
        self.plan = region.Plan()
        self._rxbuf = bytearray(frames.PHY_MAX)
        self._jbuf = bytearray(23)
        self._framer = None
        self._fcnt_up = 0
        self._fcnt_reserved = 0
        self._fcnt_down = -1
        self._ack_pending = False
        self.adr_ack_cnt = 0
        self.last_ack = False
        self._restore()

    def __repr__(self):
        return "<ClassA %s>" % (("%08x" % self._framer.dev_addr) if self._framer else "not joined")

    # --- state -------------------------------------------------------------------------------------
    @property
    def joined(self):
        return self._framer is not None

    @property
    def dev_addr(self):
        return self._framer.dev_addr if self._framer else None

    @property
    def fcnt_up(self):
        # the FCnt the next uplink will carry
        return self._fcnt_up

    @property
    def fcnt_down(self):
        return self._fcnt_down

    @property
    def link_lost(self):
        # ADR back-off has run out with no downlink: the app should rejoin
        return self.adr and self.adr_ack_cnt >= ADR_ACK_LIMIT + ADR_ACK_DELAY * (region.DR_MAX + 3)

    def _restore(self):
        s = self._store
        addr = s.get(K_ADDR)
        keys = s.get(K_KEYS)
        if addr is not None and keys is not None and len(keys) == 32:
            plan = region.Plan.from_bytes(s.get(K_PLAN, b""))
            self.plan = plan if plan is not None else region.Plan()
            self._framer = frames.Framer(addr, keys[:16], keys[16:])
            self._fcnt_up = self._fcnt_reserved = s.get(K_FCNT_UP, 0)
            self._fcnt_down = s.get(K_FCNT_DOWN, -1)
            self.duty.max_dcycle = self.plan.max_dcycle
        d = s.get(K_DUTY)
        if d:
            n = len(d) // 4
            rem = struct.unpack("<%dI" % n, d)
            at, now = s.get(K_DUTY_AT, 0), self._epoch_s()
            if at and now > at:  # the time slept by the RTC clock is silence served (none if it went back)
                slept = (now - at) * 1000
                rem = [r - slept if r > slept else 0 for r in rem]
            self.duty.restore(rem, self._clock.ticks_ms())
            s.put(K_DUTY, b"")

    def _epoch_s(self):
        f = getattr(self._clock, "epoch_s", None)
        return f() if f is not None else 0

    def suspend(self):
        # before deep sleep: keep the silences still owed, so a quick wake cannot break the duty cycle; the
        # time slept is taken off at the wake by the RTC clock (the ticks restart), else none of it
        rem = self.duty.remaining(self._clock.ticks_ms())
        self._store.put(K_DUTY_AT, self._epoch_s())
        self._store.put(K_DUTY, struct.pack("<%dI" % len(rem), *rem))

    def forget(self):
        # drop the session (keys and counters): the next send needs a join. DevNonce/JoinNonce stay.
        self._framer = None
        for k in (K_ADDR, K_KEYS):
            self._store.put(k, None)

    def _persist_plan(self):
        self._store.put(K_PLAN, self.plan.to_bytes())

    def _next_fcnt(self):
        f = self._fcnt_up
        if f > _FCNT_MAX:
            raise CounterExhausted("FCntUp exhausted: rejoin")
        if f >= self._fcnt_reserved:
            self._fcnt_reserved = f + self.fcnt_step
            self._store.put(K_FCNT_UP, self._fcnt_reserved)
        self._fcnt_up = f + 1
        return f

    # --- channels and duty cycle -----------------------------------------------------------------------
    def _pick_channel(self, plan, dr):
        # returns (channel, 0) for a random free channel, or (-1, ms until one is free)
        now = self._clock.ticks_ms()
        free = 0
        best = -1
        any_ch = False
        for i in range(region.MAX_CHANNELS):
            if plan.channel_allows(i, dr):
                any_ch = True
                w = self.duty.wait_ms(region.sub_band(plan.freq_hz[i]), now)
                if w == 0:
                    free += 1
                elif best < 0 or w < best:
                    best = w
        if not any_ch:
            raise ChannelError("no enabled channel offers DR%d" % dr)
        if free == 0:
            return -1, best
        k = self._rand() % free
        for i in range(region.MAX_CHANNELS):
            if plan.channel_allows(i, dr) and self.duty.wait_ms(region.sub_band(plan.freq_hz[i]), now) == 0:
                if k == 0:
                    return i, 0
                k -= 1
        return -1, 0  # not reached

    def wait_ms(self):
        # ms until an uplink at the current data rate may go out (0: now)
        try:
            ch, w = self._pick_channel(self.plan, self.plan.tx_dr)
        except ChannelError:
            return -1
        return 0 if ch >= 0 else w

    def _transmit(self, frame, freq, dr, n):
        sf, bw = region.DATA_RATES[dr]
        band = region.sub_band(freq)
        if band < 0:
            raise ChannelError("frequency outside the EU868 sub-bands")
        toa = region.time_on_air_us(n, sf, bw)
        try:
            self._radio.send(frame, freq, sf, bw, region.tx_power_dbm(self.plan.tx_power))
        finally:
            # even a failed send may have radiated: account for it
            end = self._clock.ticks_ms()
            self.duty.record(band, toa, end)
        return end

    # --- receive windows -------------------------------------------------------------------------------
    def _listen(self, open_at, freq, dr):
        c = self._clock
        m = self.rx_margin_ms
        wait = c.ticks_diff(open_at, c.ticks_ms()) - m
        if wait > 0:
            c.sleep_ms(wait)
        elif wait < -2 * m:
            self.stats["rx_late"] += 1
        sf, bw = region.DATA_RATES[dr]
        timeout = 2 * m + (8 * region.symbol_time_us(sf, bw)) // 1000 + 1
        return self._radio.receive(freq, sf, bw, timeout, self._rxbuf) or 0

    def _windows(self, end, ch, dr, delay1, handler):
        plan = self.plan
        rx1_freq = plan.rx1_freq(ch)
        rx1_dr = plan.rx1_dr(dr)
        rx2_freq = plan.rx2_freq_hz
        rx2_dr = plan.rx2_dr
        n = self._listen(end + delay1, rx1_freq, rx1_dr)
        if n:
            r = handler(n, rx1_dr)
            if r is not None:
                return r
        n = self._listen(end + delay1 + 1000, rx2_freq, rx2_dr)
        if n:
            return handler(n, rx2_dr)
        return None

    # --- join ------------------------------------------------------------------------------------------
    def join(self, dr=5):
        # One join attempt (OTAA) on a default channel at `dr`. Returns True once joined; raises
        # JoinFailed (no valid join-accept), DutyCycleBlocked or CounterExhausted.
        plan = region.Plan()
        plan.tx_dr = dr
        ch, wait = self._pick_channel(plan, dr)
        if ch < 0:
            self.stats["duty_blocked"] += 1
            raise DutyCycleBlocked(wait)
        nonce = self._store.get(K_DEVNONCE, 0)
        if nonce > 0xFFFF:
            raise CounterExhausted("DevNonce exhausted for this JoinEUI: a new AppKey is needed")
        self._store.put(K_DEVNONCE, nonce + 1)
        n = frames.build_join_request(self._jbuf, self._join_eui, self._dev_eui, nonce, self._app_cmac)
        saved, self.plan = self.plan, plan
        ok = None
        try:
            end = self._transmit(self._jbuf, plan.freq_hz[ch], dr, n)
            self.stats["join_tx"] += 1
            ok = self._windows(end, ch, dr, region.JOIN_ACCEPT_DELAY1_MS,
                               lambda k, rdr: self._accept(k, nonce, plan))
        finally:
            if self._framer is None or not ok:
                self.plan = saved
        if not ok:
            raise JoinFailed("no valid join-accept")
        return True

    def _accept(self, n, dev_nonce, plan):
        b = self._rxbuf
        if (n != 17 and n != 33) or b[0] != frames.JOIN_ACCEPT << 5:
            self.stats["join_malformed"] += 1
            return None
        try:
            p = crypto.decrypt_join_accept(self._app_key, memoryview(b)[:n])
        except MicError:
            self.stats["join_bad_mic"] += 1
            return None
        join_nonce = p[1] | p[2] << 8 | p[3] << 16
        last = self._store.get(K_JOINNONCE, -1)
        if join_nonce <= last:
            self.stats["join_replay"] += 1
            return None
        if n == 33 and not plan.apply_cflist(p[13:29]):
            pass  # CFList types other than 0 are not for EU868: ignored, as the spec allows
        nwk, app = crypto.derive_session_keys(self._app_key, p[1:4], p[4:7], dev_nonce)
        addr = p[7] | p[8] << 8 | p[9] << 16 | p[10] << 24
        dl = p[11]
        off = (dl >> 4) & 0x07
        if off <= region.RX1_DR_OFFSET_MAX:
            plan.rx1_dr_offset = off
        if (dl & 0x0F) <= region.DR_MAX:
            plan.rx2_dr = dl & 0x0F
        delay = p[12] & 0x0F
        plan.rx1_delay_ms = (delay if delay else 1) * 1000
        s = self._store
        s.put(K_JOINNONCE, join_nonce)
        s.put(K_FCNT_UP, 0)
        s.put(K_FCNT_DOWN, -1)
        s.put(K_KEYS, nwk + app)
        s.put(K_ADDR, addr)
        self.plan = plan
        self._persist_plan()
        self._framer = frames.Framer(addr, nwk, app)
        self._fcnt_up = self._fcnt_reserved = 0
        self._fcnt_down = -1
        self._ack_pending = False
        self.adr_ack_cnt = 0
        self.answers = maccmd.Answers()
        self.duty.max_dcycle = plan.max_dcycle = 0
        self.stats["joins"] += 1
        return True

    # --- uplinks ---------------------------------------------------------------------------------------
    def max_payload(self):
        # the largest application payload the next uplink can carry (MAC answers ride in FOpts)
        return region.MAX_M_UP[self.plan.tx_dr] - 8 - self.answers.length()

    def send(self, port, payload, confirmed=False, tries=None):
        # Sends payload on FPort `port` (1..223); returns the Downlink that came back, or None.
        # Raises NotJoined, FrameError (port or size), DutyCycleBlocked (nothing was sent).
        if self._framer is None:
            raise NotJoined("join first")
        if not 1 <= port <= 223:
            raise FrameError("FPort must be 1..223")
        if len(payload) > self.max_payload():
            raise FrameError("payload of %d bytes is over DR%d's %d" % (len(payload), self.plan.tx_dr,
                                                                          self.max_payload()))
        return self._uplink(port, payload, confirmed, tries)

    def send_mac(self, confirmed=False):
        # an uplink with no FPort: only the queued MAC answers (or an empty frame to open windows)
        if self._framer is None:
            raise NotJoined("join first")
        return self._uplink(0, None, confirmed, None)

    def link_check(self):
        # queues LinkCheckReq for the next uplink; the answer lands in ctx.link_margin
        self.answers.add(maccmd.LINK_CHECK)

    def _uplink(self, port, payload, confirmed, tries):
        plan = self.plan
        fr = self._framer
        if tries is None:
            tries = plan.nb_trans
        result = None
        self.last_ack = False
        sent = 0
        answered = 0
        for attempt in range(tries):
            dr = plan.tx_dr
            ch, wait = self._pick_channel(plan, dr)
            if ch < 0:
                if attempt == 0:
                    self.stats["duty_blocked"] += 1
                    raise DutyCycleBlocked(wait)
                if wait > self.max_retx_wait_ms:
                    break
                self._clock.sleep_ms(wait)
                ch, wait = self._pick_channel(plan, dr)
                if ch < 0:
                    break
            fcnt = self._next_fcnt()
            fctrl = 0
            if self.adr:
                fctrl |= frames.FCTRL_ADR
                if self.adr_ack_cnt >= ADR_ACK_LIMIT:
                    fctrl |= frames.FCTRL_ADRACKREQ
            if self._ack_pending:
                fctrl |= frames.FCTRL_ACK
            answered = self.answers.n
            n = fr.build_uplink(fcnt, port, payload, confirmed, fctrl, self.answers)
            end = self._transmit(fr.tx_frame(n), plan.freq_hz[ch], dr, n)
            self.stats["tx"] += 1
            self._ack_pending = False
            sent += 1
            self.adr_ack_cnt += 1
            self._adr_backoff()
            got = self._windows(end, ch, dr, plan.rx1_delay_ms, self._downlink)
            if got is not None:
                result = got
                if not confirmed or got.ack:
                    break
        if sent:
            self.answers.sent(answered)
        return result

    def _adr_backoff(self):
        # LoRaWAN 1.0.4 §4.3.1.1: after ADR_ACK_LIMIT + ADR_ACK_DELAY uplinks with no downlink, full
        # power first, then one data rate lower every ADR_ACK_DELAY, then the default channels back on
        c = self.adr_ack_cnt
        if not self.adr or c < ADR_ACK_LIMIT + ADR_ACK_DELAY or (c - ADR_ACK_LIMIT) % ADR_ACK_DELAY:
            return
        p = self.plan
        if p.tx_power:
            p.tx_power = 0
        elif p.tx_dr > 0:
            p.tx_dr -= 1
        else:
            p.mask |= (1 << len(region.DEFAULT_CHANNELS_HZ)) - 1
            p.nb_trans = 1
        self._persist_plan()

    # --- class C multicast sessions (TS005) --------------------------------------------------------------
    def listen_multicast(self, freq, dr, duration_ms, groups, on_frame, feed=None, chunk_ms=1000):
        # Class C for one multicast session: the radio listens continuously on freq at dr for duration_ms
        # (on this clock), then is put to sleep. It is put in RX once and stays there (radio.listen): a frame
        # that ends while the last one is handled waits in the chip for the next radio.take().
        # groups: receivers with .framer (frames.Framer on the group's McAddr and keys), .last_fcnt and
        # .accept(fcnt) (a frame's counter in the group's range: kept, True). A frame that passes a group's MIC
        # and counter checks goes to on_frame(group, Downlink); multicast frames are unconfirmed, carry no MAC
        # commands and no FPort 0 (LoRaWAN 1.0.4 §11.2): others are dropped. Returns the number of frames
        # handed on. feed: called between listening stretches.
        if dr > region.DR_MAX or dr < 0:
            raise ChannelError("no DR%d in the EU868 plan" % dr)
        if region.sub_band(freq) < 0:
            raise ChannelError("frequency outside the EU868 sub-bands")
        sf, bw = region.DATA_RATES[dr]
        c = self._clock
        t0 = c.ticks_ms()
        got = 0
        st = self.stats
        radio = self._radio
        try:
            radio.listen(freq, sf, bw)
            while True:
                left = duration_ms - c.ticks_diff(c.ticks_ms(), t0)
                if left <= 0:
                    break
                n = radio.take(self._rxbuf, chunk_ms if left > chunk_ms else left)
                if feed is not None:
                    feed()
                if not n:
                    continue
                verdict = frames.OTHER_ADDR
                for g in groups:
                    fr = g.framer
                    verdict = fr.parse_downlink(self._rxbuf, n, g.last_fcnt, region.MAX_M_DOWN[dr])
                    if verdict == frames.OTHER_ADDR:
                        continue
                    if verdict == frames.OK:
                        if fr.mtype != frames.UNCONFIRMED_DOWN or fr.fopts_len or fr.port <= 0:
                            verdict = frames.MALFORMED
                        elif not g.accept(fr.fcnt):
                            verdict = frames.REPLAY
                    break
                if verdict != frames.OK:
                    st[frames.VERDICTS[verdict]] += 1
                    continue
                st["mc_rx"] = st.get("mc_rx", 0) + 1
                got += 1
                payload = bytes(fr.rx[fr.payload_off:fr.payload_off + fr.payload_len])
                on_frame(g, Downlink(fr.port, payload, False, False, False, fr.fcnt))
        finally:
            radio.sleep()
        return got

    # --- downlinks -------------------------------------------------------------------------------------
    def _downlink(self, n, rx_dr):
        fr = self._framer
        v = fr.parse_downlink(self._rxbuf, n, self._fcnt_down, region.MAX_M_DOWN[rx_dr])
        if v != frames.OK:
            self.stats[frames.VERDICTS[v]] += 1
            return None
        # persist the counter before acting on the frame
        self._fcnt_down = fr.fcnt
        self._store.put(K_FCNT_DOWN, fr.fcnt)
        self.stats["rx"] += 1
        self.adr_ack_cnt = 0
        self.answers.downlink_received()
        confirmed = fr.mtype == frames.CONFIRMED_DOWN
        if confirmed:
            self._ack_pending = True
        ack = bool(fr.fctrl & frames.FCTRL_ACK)
        if ack:
            self.last_ack = True
        snr = getattr(self._radio, "last_snr", 0)
        self.ctx.snr = snr if snr is not None else 0
        if self._battery is not None:
            self.ctx.battery = self._battery()
        macs = 0
        ctx = self.ctx
        before = (ctx.unknown, ctx.truncated, ctx.rejected, self.answers.dropped)
        if fr.fopts_len:
            macs += maccmd.process(fr.rx, fr.fopts_len, self.plan, self.answers, ctx, fr.fopts_off)
        payload = b""
        port = fr.port if fr.port >= 0 else None
        if port == 0:
            macs += maccmd.process(fr.rx, fr.payload_len, self.plan, self.answers, ctx, fr.payload_off)
        elif port is not None:
            payload = bytes(fr.rx[fr.payload_off:fr.payload_off + fr.payload_len])
            self.stats["app_rx"] += 1
        st = self.stats
        st["mac_commands"] += macs
        st["mac_unknown"] += ctx.unknown - before[0]
        st["mac_truncated"] += ctx.truncated - before[1]
        st["mac_rejected"] += ctx.rejected - before[2]
        st["mac_answers_dropped"] += self.answers.dropped - before[3]
        if macs:
            self.duty.max_dcycle = self.plan.max_dcycle
            self._persist_plan()
        return Downlink(port, payload, ack, bool(fr.fctrl & frames.FCTRL_FPENDING), confirmed, fr.fcnt)
