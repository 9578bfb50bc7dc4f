# TS003 Application Layer Clock Synchronization v1.0.0 on FPort 202 (layouts: setup_spec.py). The node keeps
# GPS time as the board's clock plus an offset held in the FUOTA store, so it survives deep sleep and power
# cuts; AppTimeAns corrects the offset when its token matches the last request's (then the token moves on,
# mod 16). DeviceAppTimePeriodicityReq sets how often the node asks (128 * 2^Period s; before the first answer
# every 2048 s, doubling per unanswered request up to that period);
# ForceDeviceResyncReq makes the next NbTransmissions uplink opportunities carry an AppTimeReq.
#
#   c = Clock(store, board.epoch_s)
#   if c.due(): send(202, c.request())        # the FUOTA dispatcher does this
#   answer = c.handle(payload)                # a downlink on 202; bytes to send back on 202, or None
from bysans.fuota import setup_spec as S

K_OFFSET = "co"   # GPS time - board time (s)
K_SYNCED = "cs"   # 1 once an AppTimeAns was applied
K_TOKEN = "ct"    # the TokenReq of the next (or outstanding) AppTimeReq
K_PERIOD = "cp"   # Period (AppTimeReq every 128 << Period s); absent: the default
K_FORCED = "cf"   # AppTimeReqs still owed by a ForceDeviceResyncReq
K_ASKED = "ca"    # GPS time of the last AppTimeReq
K_UNANSWERED = "cu"  # AppTimeReqs sent without a valid answer since the last one

DEFAULT_PERIOD = 7          # every 128 * 2^7 s = 4.5 h once synchronised
UNSYNCED_RETRY_S = 2048     # until then every 128 * 2^4 s, doubling while unanswered (a network without
#                             TS003 costs a few uplinks, then one per period)


def _u32(b, o):
    return b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24


def _put32(out, v):
    v &= 0xFFFFFFFF
    out.append(v & 0xFF)
    out.append((v >> 8) & 0xFF)
    out.append((v >> 16) & 0xFF)
    out.append((v >> 24) & 0xFF)


class Clock:
    def __init__(self, store, now_s):
        self._store = store
        self._now = now_s
        self.corrections = 0     # AppTimeAns applied since this object was made
        self.stale = 0           # AppTimeAns refused (token mismatch)

    def __repr__(self):
        return "<Clock %s>" % ("synced" if self.synced else "not synced")

    @property
    def synced(self):
        return bool(self._store.get(K_SYNCED, 0))

    def gps_now(self):
        # the node's idea of GPS time (s); before the first sync, the board's clock converted
        return self._now() + self._store.get(K_OFFSET, S.GPS_LEAP_S - S.GPS_UNIX_OFFSET_S)

    def period_s(self):
        return S.PERIOD_BASE_S << self._store.get(K_PERIOD, DEFAULT_PERIOD)

    def due(self):
        # an AppTimeReq should go out at the next opportunity
        st = self._store
        if st.get(K_FORCED, 0) > 0:
            return True
        asked = st.get(K_ASKED)
        if asked is None:
            return True
        since = self.gps_now() - asked
        if since < 0:  # the clock went back (a correction, a reset RTC): ask again
            return True
        return since >= self._wait_s()

    def _wait_s(self):
        p = self.period_s()
        if self.synced:
            return p
        n = self._store.get(K_UNANSWERED, 1)
        w = UNSYNCED_RETRY_S << min(n - 1 if n > 0 else 0, 12)
        return w if w < p else p

    def next_due(self):
        # GPS time from which an AppTimeReq is due (now or earlier: due at once)
        st = self._store
        asked = st.get(K_ASKED)
        if st.get(K_FORCED, 0) > 0 or asked is None:
            return self.gps_now()
        return asked + self._wait_s()

    def request(self):
        # AppTimeReq for the next uplink on CLOCK_PORT; counts one forced transmission
        st = self._store
        now = self.gps_now()
        token = st.get(K_TOKEN, 0) & S.TOKEN_MASK
        forced = st.get(K_FORCED, 0)
        param = token
        if forced or not self.synced:
            param |= S.ANS_REQUIRED
        out = bytearray((S.APP_TIME,))
        _put32(out, now)
        out.append(param)
        st.put(K_ASKED, now)
        st.put(K_UNANSWERED, st.get(K_UNANSWERED, 0) + 1)
        if forced > 0:
            st.put(K_FORCED, forced - 1)
        return bytes(out)

    def handle(self, payload):
        # the commands of one downlink on CLOCK_PORT; returns the answers (bytes) or None
        st = self._store
        out = bytearray()
        i = 0
        n = len(payload)
        while i < n:
            cid = payload[i]
            size = S.CLOCK_DOWN_LEN.get(cid)
            if size is None or i + 1 + size > n:
                break  # unknown or cut short: the rest cannot be delimited
            p = i + 1
            if cid == S.PACKAGE_VERSION:
                out.append(S.PACKAGE_VERSION)
                out.append(S.CLOCK_PACKAGE)
                out.append(S.CLOCK_VERSION)
            elif cid == S.APP_TIME:
                corr = _u32(payload, p)
                if corr & 0x80000000:
                    corr -= 0x100000000
                token = payload[p + 4] & S.TOKEN_MASK
                if token == st.get(K_TOKEN, 0) & S.TOKEN_MASK:
                    st.put(K_OFFSET, st.get(K_OFFSET, S.GPS_LEAP_S - S.GPS_UNIX_OFFSET_S) + corr)
                    st.put(K_TOKEN, (token + 1) & S.TOKEN_MASK)
                    st.put(K_SYNCED, 1)
                    st.put(K_FORCED, 0)
                    st.put(K_UNANSWERED, 0)
                    st.put(K_ASKED, self.gps_now())
                    self.corrections += 1
                else:
                    self.stale += 1
            elif cid == S.PERIODICITY:
                st.put(K_PERIOD, payload[p] & 0x0F)
                out.append(S.PERIODICITY)
                out.append(0)  # Status: supported
                _put32(out, self.gps_now())
            elif cid == S.FORCE_RESYNC:
                st.put(K_FORCED, payload[p] & S.NB_TRANS_MASK)
            i = p + size
        return bytes(out) if out else None
