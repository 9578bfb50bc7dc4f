# FUOTA over LoRaWAN: the dispatcher of the application-layer packages on their standard FPorts.
#   202 clock sync (TS003, bysans.fuota.clock)      200 remote multicast setup (TS005, bysans.fuota.multicast)
#   201 fragmented data block transport (TS004, bysans.fuota.frag, imported only when a 201 frame arrives, so
#       the heap stays free when no session runs)
# Each downlink on one of these ports goes to its package; the package's answer is queued as an uplink on
# the same FPort (take() hands them out, oldest first). The state lives in a FileStore on flash, so a
# session survives deep sleep and power cuts. The next class C session's start is also written, in board-clock
# seconds, to FUOTA_SESSION (device_spec.py), so a wake can see it without loading this package (bysans.sink).
# A multicast frame (class C session) carries its McGroupID: a DataFragment from a group outside the
# fragmentation session's McGroupBitMask is dropped (unicast always feeds it), and the answer to a multicast
# FPort-201 request (FragSessionStatusReq) is held for a random delay within 2^(BlockAckDelay+4) s, drawn
# from the board's random source (os.urandom), before take() hands it out; held_ms() says when (TS004 3.2).
#
#   f = Fuota(board, ke_key=kek(gen_app_key))
#   if dl.port in PORTS: f.handle(dl.port, dl.payload)
#   for port, payload in f.take(): mac.send(port, payload)   # AppTimeReq included when the clock is due
import os

from bysans.device_spec import FUOTA_CLOCK, FUOTA_SESSION, FUOTA_STATE

CLOCK_PORT = 202
MCAST_PORT = 200
FRAG_PORT = 201
PORTS = (MCAST_PORT, FRAG_PORT, CLOCK_PORT)
STORE_PATH = FUOTA_STATE
MAX_QUEUED = 8  # answers kept for sending; older ones are dropped first (the server asks again)


def _aes_zero(key):
    # AES(key, 0x00 | pad16): McRootKey from the GenAppKey and McKEKey from McRootKey (ROOT_KEY_PREFIX_10X and
    # KE_KEY_PREFIX are both 0x00)
    from bysans.lorawan.crypto import Ecb

    out = bytearray(16)
    Ecb(key).encrypt(bytes(16), out)
    return bytes(out)


def root_key(gen_app_key):
    # McRootKey for LoRaWAN 1.0.x (TS005 §4.3, setup_spec.py): AES(GenAppKey, 0x00 | pad16)
    return _aes_zero(gen_app_key)


def ke_key(mc_root_key):
    # McKEKey = AES(McRootKey, 0x00 | pad16)
    return _aes_zero(mc_root_key)


def kek(gen_app_key):
    # McKEKey from the GenAppKey; the node keeps this in place of the root key
    return ke_key(root_key(gen_app_key))


def _urandom_u32():
    return int.from_bytes(os.urandom(4), "little")


class FileStore:
    # get(name, default) / put(name, value) (the MAC's store shape, bysans/lorawan/radio.py) on one flash
    # file, in bysans.lorawan.store's record format; put() returns once the record is on flash (a temp file
    # renamed over the old one: a power cut leaves the old record or the new one). put(name, None) removes.
    def __init__(self, path=STORE_PATH):
        from bysans.lorawan import store as fmt

        self._fmt = fmt
        self._path = path
        self.seq = 0
        self.data = {}
        self.writes = 0
        try:
            with open(path, "rb") as f:
                r = fmt.decode(f.read())
        except OSError:
            r = None
        if r is not None:
            self.seq, self.data = r

    def __repr__(self):
        return "<FileStore %d entries>" % len(self.data)

    def get(self, name, default=None):
        return self.data.get(name, default)

    def put(self, name, value):
        if value is None:
            if name not in self.data:
                return
            del self.data[name]
        elif name in self.data and self.data[name] == value:
            return
        else:
            self.data[name] = value
        self.seq += 1
        tmp = self._path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(self._fmt.encode(self.data, self.seq))
        os.rename(tmp, self._path)
        self.writes += 1


class Fuota:
    def __init__(self, board, store=None, *, ke_key=None, now_s=None, session_mark=FUOTA_SESSION,
                 clock_mark=FUOTA_CLOCK, rand=None):
        # session_mark=None: no FUOTA_SESSION / FUOTA_CLOCK files (a test's store in memory)
        # rand(): a random u32 (default the board's hardware source, os.urandom) for TS004's BlockAckDelay
        self.board = board
        self._mark_path = session_mark
        self._clock_path = clock_mark
        self.store = store if store is not None else FileStore()
        self._kek = ke_key
        self._now = now_s or board.epoch_s
        self._clock = None
        self._mcast = None
        self.queue = []      # (port, answer bytes)
        self.held = []       # (due, port, answer bytes): answers to multicast requests, due at board-clock ms
        self._rand = rand or _urandom_u32
        self.handled = 0     # downlinks given to a package
        self.frames = 0      # multicast frames received in class C sessions

    def __repr__(self):
        return "<Fuota %d answers queued>" % len(self.queue)

    @property
    def clock(self):
        if self._clock is None:
            from bysans.fuota.clock import Clock

            self._clock = Clock(self.store, self._now)
        return self._clock

    @property
    def multicast(self):
        if self._mcast is None:
            from bysans.fuota.multicast import Multicast

            self._mcast = Multicast(self.store, self.clock, self._kek)
        return self._mcast

    def handle(self, port, payload, group=None):
        # a downlink on FPort `port`; True if it was one of ours. `group`: the McGroupID of a multicast frame
        # (class C session), None for a unicast one
        if port == CLOCK_PORT:
            ans = self.clock.handle(payload)
        elif port == MCAST_PORT:
            if self._kek is None:
                return True  # no key to open McKey with: nothing set up, nothing answered
            ans = self.multicast.handle(payload)
        elif port == FRAG_PORT:
            try:
                from bysans.fuota import frag
            except ImportError:
                return True  # no fragmentation package in this firmware: nothing to answer
            if (group is not None and payload and payload[0] == frag.fs.DATA_FRAGMENT_CID
                    and not frag.accepts_group(self.store, group)):
                return True  # a DataFragment on a group outside the session's McGroupBitMask (TS004 3.4)
            ans = frag.handle(payload, self.store)
            if ans and group is not None:
                # TS004 3.2: a multicast FragSessionStatusReq is answered after a random delay within
                # 2^(BlockAckDelay+4) s, so the group's answers do not collide
                window = frag.answer_delay_max_s(self.store) * 1000
                self.held.append((self._now() * 1000 + self._rand() % window, port, ans))
                self.handled += 1
                return True
        else:
            return False
        self.handled += 1
        if port != FRAG_PORT:
            self._mark()  # a session announced, a group deleted, the clock corrected
        if ans:
            self.queue.append((port, ans))
            del self.queue[:-MAX_QUEUED]
        return True

    def held_ms(self):
        # ms until the next held answer is due (0: it is), -1 when none is held
        if not self.held:
            return -1
        w = min(h[0] for h in self.held) - self._now() * 1000
        return w if w > 0 else 0

    def take(self):
        # the uplinks owed, oldest first (the queue empties): answers, held answers whose delay is over,
        # then an AppTimeReq when one is due
        out = self.queue
        self.queue = []
        if self.held:
            t = self._now() * 1000
            out += [(h[1], h[2]) for h in self.held if h[0] <= t]
            self.held = [h for h in self.held if h[0] > t]
        c = self.clock
        if c.due():
            out.append((CLOCK_PORT, c.request()))
        if self._mark_path is not None:  # FUOTA_CLOCK: when the next request is due, in board-clock s
            try:
                with open(self._clock_path, "w") as f:
                    f.write(str(c.next_due() - (c.gps_now() - self._now())))
            except OSError:
                pass  # then the next wake asks the store
        return out

    def next_session(self):
        # (gid, start, end, freq_hz, dr) in GPS s of the next class C session, or None
        if not self.store.get("s0") and not self.store.get("s1") and not self.store.get("s2") and not self.store.get("s3"):
            return None
        return self.multicast.next_session()

    def _mark(self):
        # FUOTA_SESSION: the next session's start in board-clock s, or no file
        if self._mark_path is None:
            return
        s = self.next_session()
        try:
            if s is None:
                os.remove(self._mark_path)
            else:
                with open(self._mark_path, "w") as f:
                    f.write(str(s[1] - (self.clock.gps_now() - self._now())))
        except OSError:
            pass  # no file to remove; or flash full: a session wake may then be missed, never a wrong one

    def ms_to_session(self):
        # ms until the next class C session starts (0: it runs now), or -1 when none is announced
        s = self.next_session()
        if s is None:
            return -1
        w = s[1] - self.clock.gps_now()
        return w * 1000 if w > 0 else 0

    def run_session(self, mac, feed=None, on_app=None):
        # Runs the next class C session if it has started: listens with the MAC's radio on the session's
        # frequency and data rate until its end (GPS time, so bounded by its timeout), hands every multicast
        # frame to its package (frames on other FPorts to on_app(port, payload)), and ends the session.
        # Returns the number of frames, or -1 if no session is running.
        s = self.next_session()
        if s is None:
            return -1
        gid, start, end, freq, dr = s
        now = self.clock.gps_now()
        if now < start:
            return -1
        group = self.multicast.group(gid)
        got = [0]

        def on_frame(g, dl):
            got[0] += 1
            if not self.handle(dl.port, dl.payload, gid) and on_app is not None:
                on_app(dl.port, dl.payload)

        try:
            if group is not None:
                mac.listen_multicast(freq, dr, (end - now) * 1000, (group,), on_frame, feed)
        finally:
            self.multicast.end_session(gid)
            self._mark()
        self.frames += got[0]
        return got[0]
