# The node's cycle, one call per wake (DESIGN.md §2 "Duty cycle"):
#   restore the state from RTC memory (checksum; corrupted -> start afresh, counted),
#   sample every sensor once (a missing, NACKing or CRC-failing sensor or an implausible value is a fault
#   for its channels, never an exception), close the interval into one reading (waste.WasteNode or
#   environment.EnvNode), queue it, send the queue when a batch is due (the oldest reading would
#   otherwise wait longer than batch_max_age_s) or at once on an alarm (fire, pickup, tilt), save the
#   state and return how long to deep-sleep until the next reading's slot. With `ota` (the board has OTA
#   set up) it also says whether this wake is due for an OTA check-in (ota_due: at most every ota_every_s;
#   the time of the last one is kept in RTC memory and, for after a power loss, in a flash file written
#   once per check-in); the app runs it after the cycle.
# Readings are taken on a grid of interval_s; a frame's readings are interval_min apart by construction
# (the payload format times them from the uplink), so a reading off the grid (a missed slot, a reset)
# first sends what is queued.
from array import array

from micropython import const

from bysans import payload_spec, rtcstate
from bysans.otapoll import NET_STATUS, report_due
from bysans.drivers.errors import SensorError
from bysans.modules import drop
from bysans.payload import ReadingBatch, encode_fitting

# Counters and times kept in RTC memory (one array('i'))
_C_WAKES = const(0)
_C_UPLINKS = const(1)
_C_SEND_FAILS = const(2)
_C_DROPPED = const(3)        # readings dropped unsent (queue full, or nothing could send them)
_C_SENSOR_FAULTS = const(4)  # faulty channels, summed over readings
_C_WDT_RESETS = const(5)
_C_ALARMS = const(6)
_C_NEXT_S = const(7)         # epoch s of the next reading's slot (0: none yet)
_C_OLDEST_S = const(8)       # epoch s of the oldest queued reading
_C_NEWEST_S = const(9)       # epoch s of the newest queued reading
_C_BATCH_N = const(10)
C_KIND = const(11)          # 11..14: the kind's own words (waste: pickup detector and trend)
_C_OTA_S = const(15)         # epoch s of the last OTA check-in this node started (0: not known yet)
_COUNTERS = const(16)
OTA_STAMP = "/node_ota.dat"  # the last OTA check-in's epoch s, as text: survives a power loss
COUNTER_NAMES = ("wakes", "uplinks", "send_fails", "dropped", "sensor_faults", "watchdog_resets", "alarms")

_FRAME_MIN = const(11)  # the smallest max_payload_bytes: one reading fits
_KEEP_DRIVERS = ("bysans.drivers.errors",)  # kept after sampling (this module and the cycles use it)
# the kind's own modules: done with once the reading is closed, dropped before a frame goes out (the
# LoRaWAN MAC loads then: both at once do not fit a TTGO LoRa32's heap, docs/boards.md)
_KIND_MODULES = ("bysans.waste_cycle", "bysans.waste", "bysans.sampler", "bysans.env_cycle", "bysans.environment")
_BATT_MIN_MV = const(1000)
_BATT_MAX_MV = const(10000)


def _nop():
    pass


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def _write_int(path, v):
    try:
        with open(path, "w") as f:
            f.write(str(v))
    except OSError:
        pass  # flash full or read-only: the RTC copy still holds until a power loss


def _bits(mask):
    n = 0
    while mask:
        n += mask & 1
        mask >>= 1
    return n


class _Sensors:
    """Opens the configured sensors on demand; a sensor that cannot be opened is None (a fault)."""

    def __init__(self, board, open_sensor):
        self.board = board
        self._open = open_sensor
        self.missing = []

    def open(self, entry):
        if entry is None:
            return None
        try:
            return self._open(self.board, entry)
        except (SensorError, OSError, ValueError):
            self.missing.append(entry["type"])
            return None


class Node:
    """One node: Node(board, cfg, sink).wake() runs a cycle and returns the milliseconds to deep-sleep.

    sink: send(fport, payload) (bysans.uplink, bysans.sink), or None where nothing can send (readings stay
    queued); a sink with max_payload() caps each frame at what it can carry now;
    feed: the watchdog's feed; open_sensor(board, entry): drivers.open_sensor unless a test gives its own;
    battery: a function returning mV or None (default: the board file's battery through its ADC);
    ota: the board has OTA set up (wake() then sets ota_due when a check-in is due); ota_stamp: the flash
    file that keeps the last check-in's time across a power loss; net_status: the file where bysans.otapoll
    keeps a failed WiFi join's outcome, which each uplink then reports (payload_spec NET_FLAG)."""

    def __init__(self, board, cfg, sink=None, *, feed=None, open_sensor=None, battery=None, ota=False,
                 ota_stamp=OTA_STAMP, net_status=NET_STATUS):
        if open_sensor is None:
            from bysans.drivers import open_sensor
        self.board = board
        self.cfg = cfg
        self.sink = sink
        self.feed = feed or _nop
        self.sensors = _Sensors(board, open_sensor)
        self._battery_fn = battery
        self._battery = None
        if cfg.kind == "waste":
            from bysans.waste_cycle import WasteCycle as cls
        else:
            from bysans.env_cycle import EnvCycle as cls
        self.logic = cls(board, cfg, self.sensors, self.feed, self._read_battery)
        self.c = array("i", bytes(4 * _COUNTERS))
        self.batch = ReadingBatch(self.logic.kind, capacity=cfg.queue_max)
        self.row = array("i", bytes(4 * self.batch.width))
        self.frame = memoryview(bytearray(cfg.max_payload_bytes))
        self.state = rtcstate.RtcState([self.c] + self.logic.parts() + [self.batch.values, self.batch.faults],
                                       cfg.layout())
        self.status = None
        self.sampled = False
        self.sent = 0
        self.faults = 0
        self.alarm = False
        self.ota = ota
        self.ota_stamp = ota_stamp
        self.ota_due = False
        self.net_status = net_status
        self._net = None  # the status code for this wake's uplinks, read at the first send
        self._frame_values = ()
        self._what = "early wake, no reading"

    def _read_battery(self):
        if self._battery_fn is not None:
            return self._battery_fn()
        try:
            if self._battery is None:
                from bysans.drivers.battery import from_board

                self._battery = from_board(self.board)
            if self._battery is None:
                return None
            mv = self._battery.read_mv()
        except (SensorError, OSError):
            return None
        return mv if _BATT_MIN_MV <= mv <= _BATT_MAX_MV else None

    def counters(self):
        """The counters kept across deep sleep, by name, and checksum failures since power-on."""
        out = {name: self.c[i] for i, name in enumerate(COUNTER_NAMES)}
        out["rtc_resets"] = self.state.resets
        return out

    def wake(self):
        b, c, cfg = self.board, self.c, self.cfg
        iv = cfg.interval_s
        self.status = self.state.restore(b)
        if self.status == rtcstate.OK:
            self.logic.from_words(c)
            self.batch.n = min(c[_C_BATCH_N], self.batch.capacity)
        c[_C_WAKES] += 1
        if b.reset_cause() == "watchdog":
            c[_C_WDT_RESETS] += 1
        now = b.epoch_s()
        slot = c[_C_NEXT_S] or now
        if now < slot - iv // 2:  # woken early (a soft reset): back to sleep until the slot
            if self.ota and cfg.ota_every_s:  # e.g. an update's reset, right after the check-in's boot
                self._ota_due(slot - iv, b.reset_cause() != "deepsleep")  # (the slot whose cycle ran)
            return self._finish(slot, b.epoch_s())  # the same slot, not the one after
        fire = self.logic.sample()
        self.sampled = True
        self._battery = None
        drop("bysans.drivers.", _KEEP_DRIVERS)  # the drivers are done with: their heap goes to the sink
        now = b.epoch_s()
        faults, alarm = self.logic.close(now, self.row)
        self._done_with_logic()
        self.faults = faults
        self.alarm = alarm or fire
        c[_C_SENSOR_FAULTS] += _bits(faults)
        self._queue(now, faults)
        if self.alarm:
            c[_C_ALARMS] += 1
        # due: the oldest reading would be older than batch_max_age_s at the next wake (half a cycle of margin)
        if self.alarm or self.batch.n >= self.batch.capacity or now + iv + iv // 2 - c[_C_OLDEST_S] > cfg.batch_max_age_s:
            self._send(now)
        if self.ota and cfg.ota_every_s:
            self._ota_due(slot, b.reset_cause() != "deepsleep")
        return self._finish(slot + iv, b.epoch_s())

    def _done_with_logic(self):
        # what the rest of the wake needs from the kind's logic, then its modules go (their code is heap)
        logic = self.logic
        self._frame_values = logic.frame_values()
        self._what = logic.summary(self.row)
        logic.to_words(self.c)
        self.logic = logic = None
        self.sensors.board = self.sensors._open = None  # drivers.open_sensor: its package's code
        for name in _KIND_MODULES:
            drop(name)
        drop("bysans.drivers", _KEEP_DRIVERS)  # the package too: its open_sensor is done with

    def _ota_due(self, now, reset=False):
        # now: this wake's slot (slots are exactly interval_s apart: a wake that ran a little longer than the
        # last does not push the check-in to the next wake); reset: not woken from deep sleep, e.g. by an
        # update's reset, whose outcome (confirmed, rolled back) is reported now, not ota_every_s later.
        # (now < last: the clock went back)
        c = self.c
        last = c[_C_OTA_S] or _read_int(self.ota_stamp)  # RTC memory, else flash (after a power loss)
        if not last or now - last >= self.cfg.ota_every_s or now < last or (reset and report_due()):
            last = now  # kept before the check-in runs: one that hangs or resets is not retried at once
            _write_int(self.ota_stamp, now)
            self.ota_due = True
        c[_C_OTA_S] = last

    def _finish(self, nxt, end_s):
        c, iv = self.c, self.cfg.interval_s
        while nxt <= end_s:  # slots missed while awake are skipped
            nxt += iv
        c[_C_NEXT_S] = nxt
        c[_C_BATCH_N] = self.batch.n
        if self.logic is not None:  # (else its words are in c already)
            self.logic.to_words(c)
        self.state.save(self.board)
        return (nxt - end_s) * 1000

    def _queue(self, now, faults):
        c, batch, iv = self.c, self.batch, self.cfg.interval_s
        if batch.n and abs(now - c[_C_NEWEST_S] - iv) > iv // 2:
            self._send(now)  # off the grid: what is queued goes first
            if batch.n:
                c[_C_DROPPED] += batch.n
                batch.clear()
        if batch.n >= batch.capacity:
            batch.drop(1)
            c[_C_DROPPED] += 1
            c[_C_OLDEST_S] += iv
        batch.add(self.row, faults)
        if batch.n == 1:
            c[_C_OLDEST_S] = now
        c[_C_NEWEST_S] = now

    def _send(self, now):
        c, batch, cfg = self.c, self.batch, self.cfg
        if self.sink is None:
            return
        age_min = max(0, (now - c[_C_NEWEST_S] + 30) // 60)
        cap = getattr(self.sink, "max_payload", None)
        if self._net is None:
            self._net = self._net_code()
        while batch.n:
            try:
                frame = self.frame
                if cap is not None:  # e.g. the LoRaWAN MAC: its data rate's limit, less MAC answers owed
                    frame = frame[:max(_FRAME_MIN, min(len(frame), cap()))]
                length, n = encode_fitting(frame, batch, interval_min=cfg.interval_s // 60, age_min=age_min,
                                           frame_values=self._frame_values, net=self._net)
                if n == 0:  # the status byte left no room for a reading: the readings go first
                    length, n = encode_fitting(frame, batch, interval_min=cfg.interval_s // 60,
                                               age_min=age_min, frame_values=self._frame_values)
                self.sink.send(cfg.fport, frame[:length])
            except OSError:
                c[_C_SEND_FAILS] += 1
                return
            c[_C_UPLINKS] += 1
            self.sent += 1
            batch.drop(n)
            c[_C_OLDEST_S] += n * cfg.interval_s
            self.feed()

    def _net_code(self):
        """The code of the failed WiFi join bysans.otapoll noted (payload_spec.NET_STATUS_NAMES), else 0."""
        try:
            with open(self.net_status) as f:
                name = f.read().strip()
        except OSError:
            return 0
        names = payload_spec.NET_STATUS_NAMES
        return names.index(name) if name in names[1:] else names.index("CONNECT_FAIL")

    def summary(self):
        """One line for the serial log."""
        st = rtcstate.STATUS_NAMES[self.status] if self.status is not None else "-"
        what = self._what
        miss = (", missing " + " ".join(self.sensors.missing)) if self.sensors.missing else ""
        return "wake %d rtc %s (resets %d): %s, faults 0x%02x%s; queued %d, sent %d%s" % (
            self.c[_C_WAKES], st, self.state.resets, what, self.faults, miss, self.batch.n, self.sent,
            ", ALARM" if self.alarm else "")
