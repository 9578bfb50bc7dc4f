# LoRaWAN 1.0.x PHYPayload layouts, built and parsed in preallocated buffers.
#
#   PHYPayload = MHDR (1) | MACPayload | MIC (4)        MHDR = MType << 5 | Major (0 = LoRaWAN R1)
#   MACPayload = FHDR | [FPort (1) | FRMPayload]
#   FHDR       = DevAddr (4, LE) | FCtrl (1) | FCnt (2, LE: the 16 low bits) | FOpts (0..15)
#   FCtrl up   = ADR 0x80 | ADRACKReq 0x40 | ACK 0x20 | ClassB 0x10 | FOptsLen 0x0F
#   FCtrl down = ADR 0x80 | RFU 0x40       | ACK 0x20 | FPending 0x10 | FOptsLen 0x0F
#   Join-request (23) = 0x00 | JoinEUI (8, LE) | DevEUI (8, LE) | DevNonce (2, LE) | MIC (4)
#   Join-accept (17/33) = 0x20 | JoinNonce (3) | NetID (3) | DevAddr (4) | DLSettings | RxDelay |
#                         [CFList (16)] | MIC (4), encrypted by the server with AES decrypt
# EUIs are passed in the order printed on labels (most significant byte first) and sent reversed.
from micropython import const

from . import crypto

JOIN_REQUEST = const(0)
JOIN_ACCEPT = const(1)
UNCONFIRMED_UP = const(2)
UNCONFIRMED_DOWN = const(3)
CONFIRMED_UP = const(4)
CONFIRMED_DOWN = const(5)

FCTRL_ADR = const(0x80)
FCTRL_ADRACKREQ = const(0x40)
FCTRL_ACK = const(0x20)
FCTRL_FPENDING = const(0x10)

PHY_MAX = const(255)
_PRE = const(16)  # room for B0 in front of the frame, so the MIC runs over one contiguous buffer

# downlink verdicts
OK = const(0)
MALFORMED = const(1)
OVERSIZED = const(2)
OTHER_ADDR = const(3)
BAD_MIC = const(4)
REPLAY = const(5)
NOT_DOWNLINK = const(6)
VERDICTS = ("ok", "malformed", "oversized", "other_addr", "bad_mic", "replay", "not_downlink")


def build_join_request(buf, join_eui, dev_eui, dev_nonce, cmac):
    # buf: >= 23 bytes; cmac: crypto.Cmac(AppKey). Returns 23.
    if len(join_eui) != 8 or len(dev_eui) != 8:
        from .errors import KeyError_

        raise KeyError_("an EUI is 8 bytes")
    buf[0] = JOIN_REQUEST << 5
    for i in range(8):
        buf[1 + i] = join_eui[7 - i]
        buf[9 + i] = dev_eui[7 - i]
    buf[17] = dev_nonce & 0xFF
    buf[18] = (dev_nonce >> 8) & 0xFF
    cmac.mac_into(buf, 19, buf, 19, 4)
    return 23


class Framer:
    # The frame work of one session: holds the session's cipher objects (never the keys themselves in a
    # readable attribute) and the tx/rx buffers.
    def __init__(self, dev_addr, nwk_skey, app_skey):
        self.dev_addr = dev_addr
        self._addr = crypto.addr_bytes(dev_addr)  # what frames carry; no big-int arithmetic per frame
        self._mic = crypto.Cmac(nwk_skey)
        self._app = crypto.FrameCipher(app_skey)
        self._nwk = crypto.FrameCipher(nwk_skey)
        self.tx = bytearray(_PRE + PHY_MAX)
        self.rx = bytearray(_PRE + PHY_MAX)
        self._txm = memoryview(self.tx)
        self._rxm = memoryview(self.rx)
        self._mic4 = bytearray(4)
        # what the last parse_downlink() found (offsets into self.rx)
        self.mtype = 0
        self.fctrl = 0
        self.fcnt = 0
        self.port = -1
        self.fopts_off = 0
        self.fopts_len = 0
        self.payload_off = 0
        self.payload_len = 0

    def __repr__(self):
        return "<Framer %08x>" % self.dev_addr

    def tx_frame(self, n):
        # the built frame as a memoryview (what goes to the radio)
        return self._txm[_PRE:_PRE + n]

    def build_uplink(self, fcnt, port, payload, confirmed, fctrl, answers):
        # Builds MHDR..MIC at tx[16:]. payload: bytes-like or None (port is then ignored: an empty frame
        # carrying only FOpts). answers: maccmd.Answers or None. Returns the PHYPayload length.
        t = self.tx
        o = _PRE
        t[o] = (CONFIRMED_UP if confirmed else UNCONFIRMED_UP) << 5
        a = self._addr
        t[o + 1] = a[0]
        t[o + 2] = a[1]
        t[o + 3] = a[2]
        t[o + 4] = a[3]
        nopts = answers.copy_into(t, o + 8) if answers is not None else 0
        t[o + 5] = (fctrl & 0xF0) | nopts
        t[o + 6] = fcnt & 0xFF
        t[o + 7] = (fcnt >> 8) & 0xFF
        n = 8 + nopts
        if payload is not None:
            t[o + n] = port
            n += 1
            plen = len(payload)
            if n + plen + 4 > PHY_MAX:
                from .errors import FrameError

                raise FrameError("frame too long")
            t[o + n:o + n + plen] = payload
            (self._nwk if port == 0 else self._app).crypt(t, o + n, plen, a, fcnt, False)
            n += plen
        crypto.fill_b0(t, a, fcnt, False, n)
        self._mic.mac_into(t, _PRE + n, t, o + n, 4)
        return n + 4

    def parse_downlink(self, frame, n, last_fcnt, max_m):
        # Checks and decrypts a downlink into rx; returns a verdict (OK, MALFORMED, ...). last_fcnt: the
        # last accepted 32-bit FCntDown of this session, or -1. max_m: the largest MACPayload allowed at
        # the window's data rate. On OK, self.fcnt is the full 32-bit counter and the payload (FRMPayload
        # decrypted) sits at rx[payload_off:payload_off + payload_len].
        if n > PHY_MAX or n - 5 > max_m:
            return OVERSIZED
        if n < 12:
            return MALFORMED
        r = self.rx
        o = _PRE
        r[o:o + n] = frame[:n] if len(frame) != n else frame
        mhdr = r[o]
        mtype = mhdr >> 5
        if (mhdr & 0x03) != 0:
            return MALFORMED
        if mtype != UNCONFIRMED_DOWN and mtype != CONFIRMED_DOWN:
            return NOT_DOWNLINK
        addr = self._addr  # compared byte by byte: no int of 2**30 or more to build on a 32-bit port
        if r[o + 1] != addr[0] or r[o + 2] != addr[1] or r[o + 3] != addr[2] or r[o + 4] != addr[3]:
            return OTHER_ADDR
        fctrl = r[o + 5]
        nopts = fctrl & 0x0F
        body = n - 4  # MHDR..FRMPayload
        if 8 + nopts > body:
            return MALFORMED
        f16 = r[o + 6] | r[o + 7] << 8
        # the 32-bit counter: same high half as the last one, or the next one after a 16-bit rollover
        if last_fcnt < 0:
            cand = f16
        else:
            cand = (last_fcnt & ~0xFFFF) | f16
        verdict = self._check_mic(cand, body)
        if verdict == OK:
            if last_fcnt >= 0 and cand <= last_fcnt:
                return REPLAY
        elif last_fcnt >= 0 and cand <= last_fcnt:
            cand += 0x10000
            verdict = self._check_mic(cand, body)
        if verdict != OK:
            return verdict
        popts = o + 8
        p = popts + nopts
        if p < o + body:
            port = r[p]
            poff = p + 1
            plen = o + body - poff
            if port == 0 and nopts:
                return MALFORMED  # MAC commands in both FOpts and FRMPayload: the spec says drop
        else:
            port = -1
            poff = p
            plen = 0
        if plen:
            (self._nwk if port == 0 else self._app).crypt(r, poff, plen, addr, cand, True)
        self.mtype = mtype
        self.fctrl = fctrl
        self.fcnt = cand
        self.port = port
        self.fopts_off = popts
        self.fopts_len = nopts
        self.payload_off = poff
        self.payload_len = plen
        return OK

    def _check_mic(self, fcnt, body):
        r = self.rx
        crypto.fill_b0(r, self._addr, fcnt, True, body)
        self._mic.mac_into(r, _PRE + body, self._mic4, 0, 4)
        return OK if crypto.ct_equal(self._mic4, 0, r, _PRE + body, 4) else BAD_MIC
