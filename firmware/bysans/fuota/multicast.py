# TS005 Remote Multicast Setup v1.0.0 on FPort 200 (layouts and key derivation: setup_spec.py), for a
# LoRaWAN 1.0.x end-device. The network server sets up to four multicast groups (address, key, frame-counter
# range), asks for their status, deletes them and announces class C sessions: at SessionTime (GPS s) the node
# listens on DLFrequency at DR for 2^TimeOut s (bysans.lorawan.mac.ClassA.listen_multicast), then goes back
# to class A and sleep. A group's session keys are derived here from McKey, which arrives encrypted under
# McKEKey (derived from the GenAppKey, which on this firmware is the AppKey unless lorawan.json names a
# gen_app_key); the node keeps only McKEKey's cipher and each group's session keys.
#
# Groups and sessions live in the FUOTA store ("g0".."g3", "s0".."s3"), so they survive deep sleep and power
# cuts; a frame counter accepted from a group is written before the frame is acted on (no replay after a
# reset).
from bysans.fuota import setup_spec as S
from bysans.lorawan import crypto, frames, region

def recover_mc_key(ke_key, mc_key_encrypted):
    # McKey = aes128_encrypt(McKEKey, McKey_encrypted) (the server sent aes128_decrypt(McKEKey, McKey))
    out = bytearray(16)
    crypto.Ecb(ke_key).encrypt(bytes(mc_key_encrypted), out)
    return bytes(out)


def session_keys(mc_key, mc_addr):
    # (McAppSKey, McNwkSKey) from McKey (16 bytes) and McAddr (int): AES(McKey, prefix | McAddr LE | pad16)
    e = crypto.Ecb(mc_key)
    blk = bytearray(16)
    blk[1:5] = crypto.addr_bytes(mc_addr)
    keys = []
    for prefix in (S.MC_APP_S_PREFIX, S.MC_NWK_S_PREFIX):
        blk[0] = prefix
        k = bytearray(16)
        e.encrypt(blk, k)
        keys.append(bytes(k))
    return keys[0], keys[1]


def group_keys(ke_key, mc_key_encrypted, mc_addr):
    # (McAppSKey, McNwkSKey) of a group from its McKey_encrypted (16 bytes) and McAddr (int)
    return session_keys(recover_mc_key(ke_key, mc_key_encrypted), mc_addr)


def _u32(b, o):
    return b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24


def _le(v, n):
    return bytes((v >> (8 * i)) & 0xFF for i in range(n))


# a group record: McAddr u32 | McAppSKey 16 | McNwkSKey 16 | minMcFCount u32 | maxMcFCount u32 | last u32
# (last: the last accepted counter + 1, 0 = none yet); a session record: SessionTime u32 | TimeOut u8 |
# DLFrequency u24 (x100 Hz) | DR u8, as the request carried them
def _gkey(gid):
    return "g%d" % gid


def _skey(gid):
    return "s%d" % gid


class Group:
    # one multicast group's receiver: what ClassA.listen_multicast() needs
    __slots__ = ("gid", "addr", "framer", "min_fcnt", "max_fcnt", "last_fcnt", "_store")

    def __init__(self, gid, rec, store):
        self.gid = gid
        self.addr = _u32(rec, 0)
        self.framer = frames.Framer(self.addr, rec[20:36], rec[4:20])
        self.min_fcnt = _u32(rec, 36)
        self.max_fcnt = _u32(rec, 40)
        last = _u32(rec, 44)
        # parse_downlink takes the last accepted counter (-1: none); below min_fcnt nothing is accepted
        self.last_fcnt = (last - 1) if last else self.min_fcnt - 1
        self._store = store

    def __repr__(self):
        return "<Group %d %08x>" % (self.gid, self.addr)

    def accept(self, fcnt):
        # a frame that passed the MIC with counter fcnt: True (and the counter kept) if in the group's range
        if fcnt < self.min_fcnt or fcnt > self.max_fcnt:
            return False
        rec = bytearray(self._store.get(_gkey(self.gid)))
        rec[44:48] = _le(fcnt + 1, 4)
        self._store.put(_gkey(self.gid), bytes(rec))
        self.last_fcnt = fcnt
        return True


class Multicast:
    def __init__(self, store, clock, ke_key):
        self._store = store
        self._clock = clock
        self._kek = ke_key

    def __repr__(self):
        return "<Multicast groups 0x%x>" % self.defined()

    def defined(self):
        m = 0
        for g in range(S.MC_GROUPS):
            if self._store.get(_gkey(g)):
                m |= 1 << g
        return m

    def group(self, gid):
        rec = self._store.get(_gkey(gid))
        return Group(gid, rec, self._store) if rec else None

    def session(self, gid):
        # (start GPS s, end GPS s, frequency Hz, DR) of the group's class C session, or None
        rec = self._store.get(_skey(gid))
        if not rec:
            return None
        start = _u32(rec, 0)
        return start, start + (1 << (rec[4] & S.TIMEOUT_MASK)), (rec[5] | rec[6] << 8 | rec[7] << 16) * S.FREQ_STEP_HZ, rec[8]

    def next_session(self):
        # (gid, start, end, freq_hz, dr) of the earliest class C session not over yet, or None; ended ones
        # are dropped
        now = self._clock.gps_now()
        best = None
        for g in range(S.MC_GROUPS):
            s = self.session(g)
            if s is None:
                continue
            if s[1] <= now:
                self._store.put(_skey(g), None)
                continue
            if best is None or s[0] < best[1]:
                best = (g,) + s
        return best

    def end_session(self, gid):
        self._store.put(_skey(gid), None)

    def handle(self, payload):
        # the commands of one downlink on MCAST_PORT; returns the answers (bytes) or None
        out = bytearray()
        i = 0
        n = len(payload)
        st = self._store
        while i < n:
            cid = payload[i]
            size = S.MCAST_DOWN_LEN.get(cid)
            if size is None or i + 1 + size > n:
                break  # unknown (McClassBSessionReq too: no class B here) or cut short
            p = i + 1
            if cid == S.PACKAGE_VERSION:
                out.append(S.PACKAGE_VERSION)
                out.append(S.MCAST_PACKAGE)
                out.append(S.MCAST_VERSION)
            elif cid == S.MC_STATUS:
                mask = payload[p] & 0x0F
                have = self.defined()
                ans = mask & have
                total = 0
                for g in range(S.MC_GROUPS):
                    total += (have >> g) & 1
                out.append(S.MC_STATUS)
                out.append((total << 4) | ans)
                for g in range(S.MC_GROUPS):
                    if ans & (1 << g):
                        out.append(g)
                        out.extend(st.get(_gkey(g))[0:4])
            elif cid == S.MC_SETUP:
                gid = payload[p] & S.GROUP_MASK
                addr = _u32(payload, p + 1)
                app, nwk = group_keys(self._kek, payload[p + 5:p + 21], addr)
                rec = bytearray(48)
                rec[0:4] = payload[p + 1:p + 5]
                rec[4:20] = app
                rec[20:36] = nwk
                rec[36:44] = payload[p + 21:p + 29]
                st.put(_skey(gid), None)  # a new group definition ends any session of the old one
                st.put(_gkey(gid), bytes(rec))
                out.append(S.MC_SETUP)
                out.append(gid)
            elif cid == S.MC_DELETE:
                gid = payload[p] & S.GROUP_MASK
                out.append(S.MC_DELETE)
                if st.get(_gkey(gid)):
                    st.put(_skey(gid), None)
                    st.put(_gkey(gid), None)
                    out.append(gid)
                else:
                    out.append(gid | S.UNDEFINED)
            elif cid == S.MC_CLASS_C:
                gid = payload[p] & S.GROUP_MASK
                start = _u32(payload, p + 1)
                freq = (payload[p + 6] | payload[p + 7] << 8 | payload[p + 8] << 16) * S.FREQ_STEP_HZ
                dr = payload[p + 9]
                status = gid
                if not st.get(_gkey(gid)):
                    status |= S.CC_UNDEFINED
                if region.sub_band(freq) < 0:
                    status |= S.CC_FREQ_ERROR
                if dr > region.DR_MAX:
                    status |= S.CC_DR_ERROR
                out.append(S.MC_CLASS_C)
                out.append(status)
                if status == gid:
                    rec = bytearray(9)
                    rec[0:4] = payload[p + 1:p + 5]
                    rec[4] = payload[p + 5] & S.TIMEOUT_MASK
                    rec[5:8] = payload[p + 6:p + 9]
                    rec[8] = dr
                    st.put(_skey(gid), bytes(rec))
                    wait = start - self._clock.gps_now()
                    out.extend(_le(min(max(wait, 0), 0xFFFFFF), 3))
            i = p + size
        return bytes(out) if out else None
