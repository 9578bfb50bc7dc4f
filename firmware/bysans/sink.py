# Where a wake's uplinks go, chosen once per wake (docs/node.md):
#   - the LoRaWAN MAC (bysans.lorawan.mac, OTAA) when the board file has a radio and /config/lorawan.json
#     exists (`fleet enroll --port` writes it: {"dev_eui", "join_eui", "app_key", "activation", ...});
#   - else the board's default (bysans.uplink.default_sink: the capture on a virtual board, else None).
# The LoRaWAN sink builds its radio, store and MAC only when first needed (a send, or join()), after the
# sensors are done with, so the MAC's modules never share the heap with the drivers. The session and the
# frame counters live in bysans.lorawan.store (RTC memory [0, 512) and a flash file), so they survive deep
# sleep, resets and power cuts; suspend(sleep_ms) before deep sleep keeps the duty-cycle silences owed.
# Errors become SinkError (an OSError, as bysans.node expects of a sink); messages never carry keys.
# Downlinks on the FUOTA ports (200 multicast setup, 201 fragments, 202 clock sync) go to bysans.fuota;
# In a cycle they are only kept (FUOTA_INBOX); fuota_start(), at the start of the next wake while the heap is
# whole, handles them, runs a class C session that is due and sends what FUOTA owes (docs/formats/fuota.md);
# fuota_run(sleep_ms) shortens the sleep to wake before the next session.
import gc

from micropython import const

from bysans.device_spec import FUOTA_CLOCK, FUOTA_FRAG, FUOTA_INBOX, FUOTA_SESSION, FUOTA_STATE
from bysans.device_spec import LORAWAN_CONFIG as LORAWAN_PATH
JOIN_DRS = (5, 3, 0)        # join attempts go round these data rates (by DevNonce): SF7, SF9, SF12
_MAX_WAIT_MS = const(15000)  # a duty-cycle silence up to this long is waited out (e.g. the first uplink
#                              after a join at SF7); a longer one leaves the readings queued
_WAIT_STEP_MS = const(1000)  # the watchdog is fed at least this often while waiting
_FUOTA_UPLINKS = const(4)    # FUOTA answers and AppTimeReqs sent per wake at most (airtime)
_SESSION_LEAD_MS = const(5000)  # a wake before a class C session starts this early (boot, join check)


class SinkError(OSError):
    """A frame could not be sent (not joined, no join-accept, duty cycle, radio); the readings stay queued."""


class SinkConfigError(Exception):
    """/config/lorawan.json is unreadable or lacks a field. args: (message,)."""


def _nop():
    pass


def _hex(creds, key, n, path):
    from binascii import unhexlify

    v = creds.get(key)
    try:
        b = unhexlify(v.replace(":", "").replace("-", ""))
    except (AttributeError, ValueError):
        b = b""
    if len(b) != n:
        raise SinkConfigError("%s: %s must be %d hex digits" % (path, key, 2 * n))
    return b


def read_credentials(path=LORAWAN_PATH):
    """(dev_eui, join_eui, app_key) as bytes from `path`, or None when the file does not exist. Any other
    failure to open it (littlefs out of memory, a damaged filesystem) is raised: read as "no credentials" it
    made a node go silent without a word in its log."""
    import json

    try:
        f = open(path)
    except OSError as e:
        if e.errno == 2:  # ENOENT: a board not enrolled for LoRaWAN
            return None
        raise
    try:
        try:
            creds = json.load(f)
        except ValueError:
            raise SinkConfigError("%s is not valid JSON" % path)
    finally:
        f.close()
    if not isinstance(creds, dict):
        raise SinkConfigError("%s must be a JSON object" % path)
    if creds.get("activation", "otaa") != "otaa":
        raise SinkConfigError("%s: activation must be otaa (ABP is not supported)" % path)
    return _hex(creds, "dev_eui", 8, path), _hex(creds, "join_eui", 8, path), _hex(creds, "app_key", 16, path)


def choose(board, *, feed=None, path=LORAWAN_PATH):
    """The sink for this wake. Raises SinkConfigError for a lorawan.json it cannot use."""
    if board.definition.get("radio"):
        creds = read_credentials(path)
        if creds is not None:
            return LoRaWANSink(board, creds, feed=feed)
    from bysans.uplink import default_sink

    return default_sink(board)


class LoRaWANSink:
    """send(fport, payload) as a LoRaWAN class A uplink (unconfirmed); joins (OTAA) first when needed."""

    # FUOTA's files (device_spec.py; a test puts them elsewhere)
    fuota_state = FUOTA_STATE
    fuota_inbox = FUOTA_INBOX
    fuota_session_file = FUOTA_SESSION
    fuota_clock_file = FUOTA_CLOCK
    fuota_frag_dir = FUOTA_FRAG

    def __init__(self, board, creds, *, feed=None, max_wait_ms=_MAX_WAIT_MS, mac=None, store=None):
        self.board = board
        self._creds = creds
        self.feed = feed or _nop
        self.max_wait_ms = max_wait_ms
        self.mac = mac          # built on first use (a test may pass its own, with its store)
        self.store = store
        self.joined_now = False  # a join-accept arrived during this wake
        self.sent = 0
        self.downlinks = 0      # application downlinks received
        self.received = []      # their (fport, payload), for whoever acts on them (bysans.settings)
        self.problem = None     # why the last send or join failed, for the log line
        self.failed = None      # the first failure of this wake, kept for the log line after a later success
        self.fuota = None       # bysans.fuota.dispatch.Fuota, made when a FUOTA downlink or session needs it
        self._kek = None
        self._gen_key = None
        self.mc_frames = 0      # multicast frames received in class C sessions this wake

    def __repr__(self):
        return "<LoRaWANSink %s>" % ("open" if self.mac is not None else "closed")

    def _open(self):
        if self.mac is None:
            gc.collect()
            from bysans.lorawan.mac import ClassA
            from bysans.lorawan.store import PersistentStore
            from bysans.radio import from_board

            b = self.board
            dev_eui, join_eui, app_key = self._creds
            self.store = PersistentStore(b)
            self.mac = ClassA(from_board(b), b, self.store, dev_eui=dev_eui, join_eui=join_eui, app_key=app_key)
            self._gen_key = app_key  # TS005's GenAppKey (LoRaWAN 1.0.x): the AppKey (docs/formats/fuota.md)
            self._creds = None  # the MAC keeps what it needs
        return self.mac

    def _key_encryption_key(self):
        # McKEKey, derived when FUOTA first needs it (not at every wake: the heap)
        if self._kek is None:
            key = self._gen_key if self._creds is None else self._creds[2]
            if key is not None:
                from bysans.fuota.dispatch import kek

                self._kek = kek(key)
        return self._kek

    def _fuota(self):
        if self.fuota is None:
            from bysans.fuota.dispatch import FileStore, Fuota

            st = FileStore(self.fuota_state)
            st.root = self.fuota_frag_dir  # what bysans.fuota.frag asks of its store: its directory, the clock
            st.now = self.board.epoch_s
            self.fuota = Fuota(self.board, st, ke_key=self._key_encryption_key(),
                               session_mark=self.fuota_session_file, clock_mark=self.fuota_clock_file)
        return self.fuota

    def fuota_expire(self):
        """A fragmentation session that never completes frees its flash once its timeout has passed
        (bysans.fuota.frag.expire; also the files of a setup a reset cut short). Stats the session's files
        first: the package is loaded (and dropped again) only when there are any. True: a session was deleted."""
        import os

        d = self.fuota_frag_dir
        for name in ("/frag.ses", "/frag.blk", "/frag.log"):
            try:
                os.stat(d + name)
                break
            except OSError:
                pass
        else:
            return False
        from bysans.fuota import frag
        from bysans.modules import drop

        class _Store:
            root = d
            now = self.board.epoch_s

        try:
            return frag.expire(_Store)
        finally:
            frag = _Store = None
            drop("bysans.fuota")

    def _downlink(self, dl):
        if dl is None or not dl.port:
            return
        if dl.port in (200, 201, 202):  # bysans.fuota.dispatch.PORTS (not imported for every downlink)
            if self.fuota is not None:  # a FUOTA wake (fuota_start): handled now, answered in this wake
                self.fuota.handle(dl.port, dl.payload)
                return
            try:  # in a cycle: kept for the next wake's start (later in a wake the heap is too cut up for
                #   FUOTA's code: seen on a 256K virtual board, 80 KB free and not 1.3 KB in one piece)
                with open(self.fuota_inbox, "ab") as f:
                    f.write(bytes((dl.port, len(dl.payload))))
                    f.write(dl.payload)
            except (MemoryError, OSError) as e:  # the uplink went out: this failure is FUOTA's own
                self.problem = "fuota: %s" % e
        else:
            self.downlinks += 1
            self.received.append((dl.port, bytes(dl.payload)))

    def _free(self, fn):
        # runs fn(), waiting out a duty-cycle silence up to max_wait_ms (feeding the watchdog)
        from bysans.lorawan.errors import DutyCycleBlocked

        waited = 0
        while True:
            try:
                return fn()
            except DutyCycleBlocked as e:
                if waited + e.wait_ms > self.max_wait_ms:
                    raise
                ms = min(e.wait_ms + 1, _WAIT_STEP_MS)
                self.board.sleep_ms(ms)
                waited += ms
                self.feed()

    def _joined(self):
        m = self._open()
        if m.link_lost:  # ADR back-off ran out with no downlink: the network no longer hears this session
            m.forget()
        if not m.joined:
            dr = JOIN_DRS[self.store.get("dn", 0) % len(JOIN_DRS)] if self.store is not None else JOIN_DRS[0]
            self._free(lambda: m.join(dr))
            self.joined_now = True
            self.feed()
        return m

    def _call(self, fn):
        # runs fn(); what the MAC, the radio (its errors are LoRaWANErrors too) or the hardware bus raise, and
        # a MemoryError, become SinkError: they cost the uplink (counted by the node), not the node's state
        from bysans.lorawan.errors import LoRaWANError

        try:
            r = fn()
            self.problem = None
            return r
        except (LoRaWANError, OSError, MemoryError) as e:
            self.problem = "%s: %s" % (type(e).__name__, e)
            if self.failed is None:
                self.failed = self.problem
            raise SinkError(self.problem)

    def join(self):
        """Joins when this board has no session yet: True when it has one, False when the join failed (the
        reason in `problem`)."""
        try:
            self._call(self._joined)
            return True
        except SinkError:
            return False

    def max_payload(self):
        """The largest payload the next uplink can carry (joins first if needed)."""
        return self._call(lambda: self._joined().max_payload())

    def send(self, fport, payload):
        def go():
            m = self._joined()
            self._downlink(self._free(lambda: m.send(fport, payload)))
        self._call(go)
        self.sent += 1
        self.feed()

    def _due_ms(self, path):
        # ms until the board-clock time written in `path` (0: it has come), -1 when there is no such file
        try:
            with open(path) as f:
                t = int(f.read())
        except (OSError, ValueError):
            return -1
        w = (t - self.board.epoch_s()) * 1000
        return w if w > 0 else 0

    def session_ms(self):
        """ms until the next announced class C session starts (0: it has started), -1 when none is."""
        return self._due_ms(self.fuota_session_file)

    def fuota_due(self):
        """Whether this wake starts with FUOTA work: downlinks kept from the last wake, a class C session
        starting within max_wait_ms, or an AppTimeReq due (no FUOTA_CLOCK yet: never asked). Reads small
        files only; loads nothing."""
        try:
            import os

            os.stat(self.fuota_inbox)
            return True
        except OSError:
            pass
        w = self.session_ms()
        return 0 <= w <= self.max_wait_ms or self._due_ms(self.fuota_clock_file) in (-1, 0)

    def _wait(self, ms):
        # sleeps ms, feeding the watchdog at least every _WAIT_STEP_MS
        while ms > 0:
            step = min(ms, _WAIT_STEP_MS)
            self.board.sleep_ms(step)
            self.feed()
            ms -= step

    def _has_session(self):
        # whether the store holds a LoRaWAN session (the MAC's own test: a DevAddr, bysans.lorawan.mac K_ADDR)
        from bysans.lorawan.store import PersistentStore

        return (self.store or PersistentStore(self.board)).get("sa") is not None

    def fuota_start(self):
        """At the start of a wake, while the heap is whole (before the sensors): when fuota_due() and the
        node has a session (the cycle joins), hands the kept downlinks to bysans.fuota, runs a class C session that is due (waiting for it,
        feeding the watchdog; the radio listens until the session's timeout), sends what FUOTA owes (answers,
        an AppTimeReq; at most _FUOTA_UPLINKS, their downlinks handled at once), then puts the MAC away
        (suspend) and drops the FUOTA and LoRaWAN code, so the cycle starts as without FUOTA. Returns the
        multicast frames received, or -1 when there was nothing to do. A failure costs the FUOTA work only.
        First a fragmentation session past its timeout is deleted (fuota_expire)."""
        try:
            self.fuota_expire()
        except (OSError, MemoryError) as e:
            self.problem = "fuota: %s" % e
        if not self.fuota_due():
            return -1
        n = 0
        creds = self._creds  # the cycle opens the MAC again
        try:
            if self.mac is None and not self._has_session():
                return -1  # the cycle joins; FUOTA waits for a session (the MAC is not loaded for nothing)
            m = self._call(self._open)
            if not m.joined:
                return -1  # the cycle joins; FUOTA waits for a session
            f = self._fuota()
            try:
                with open(self.fuota_inbox, "rb") as fh:
                    kept = fh.read()
            except OSError:
                kept = b""
            i = 0
            while i + 2 <= len(kept):
                f.handle(kept[i], kept[i + 2:i + 2 + kept[i + 1]])
                i += 2 + kept[i + 1]
            w = f.ms_to_session()
            if 0 <= w <= self.max_wait_ms:
                self._wait(w)
                n = max(0, f.run_session(m, feed=self.feed))
                self.mc_frames += n
            out = f.take()
            sent = 0
            while sent < _FUOTA_UPLINKS:
                if not out:  # answers to multicast requests wait out their random delay (BlockAckDelay)
                    w = f.held_ms()
                    if w < 0:
                        break
                    self._wait(w)
                    out = f.take()
                    continue
                port, payload = out.pop(0)
                self._call(lambda: self._downlink(self._free(lambda: m.send(port, payload))))
                sent += 1
                self.feed()
                out.extend(f.queue)  # the answers to what came back go in this wake too
                f.queue = []
        except (SinkError, OSError, MemoryError) as e:
            self.problem = "fuota: %s" % e
        finally:
            try:
                import os

                os.remove(self.fuota_inbox)
            except OSError:
                pass
            if self.mac is not None:
                self.mac.suspend()  # the duty-cycle silences owed, for the MAC the cycle opens again
            self.mac = self.store = self.fuota = self._kek = self._gen_key = None
            self._creds = creds
            from bysans.modules import drop

            drop("bysans.fuota")
            drop("bysans.lorawan.")
            drop("bysans.radio")
        return n

    def fuota_run(self, sleep_ms):
        """After the wake: the sleep to take, shorter than sleep_ms when the next class C session starts
        before then (the wake comes _SESSION_LEAD_MS early; fuota_start() runs it)."""
        w = self.session_ms()
        if w >= 0 and w - _SESSION_LEAD_MS < sleep_ms:
            sleep_ms = w - _SESSION_LEAD_MS
        return sleep_ms if sleep_ms > 1000 else 1000

    def suspend(self, sleep_ms):
        """Before a deep sleep of sleep_ms: keeps the duty-cycle silences still owed after it (the MAC's
        clock restarts at the wake, and it restores a silence in full). Nothing to do when the MAC did not
        run this wake, or when the sleep outlasts every silence (no store write then)."""
        m = self.mac
        if m is not None and max(m.duty.remaining(self.board.ticks_ms())) > sleep_ms:
            m.suspend()

    def summary(self):
        """A few words for the wake's log line ('' when the radio was not used)."""
        m = self.mac
        if m is None:
            return ""
        if not m.joined:
            return "lorawan not joined" + ((" (" + self.problem + ")") if self.problem else "")
        s = "lorawan %08x fcnt %d%s" % (m.dev_addr, m.fcnt_up, ", joined" if self.joined_now else "")
        if self.problem:
            s += " (" + self.problem + ")"
        elif self.failed:  # a send or join that failed before one that worked: what it cost is in the counts
            s += " (earlier: " + self.failed + ")"
        return s
