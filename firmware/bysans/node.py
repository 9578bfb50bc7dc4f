# The node's cycle, one call per wake (DESIGN.md §2 "Duty cycle"):
#   restore the state from RTC memory (checksum; corrupted -> start afresh, counted),
#   sample every sensor once (a missing, NACKing or CRC-failing sensor or an implausible value is a fault
#   for its channels, never an exception), close the interval into one reading (waste.WasteNode or
#   environment.EnvNode), queue it, send the queue when a batch is due (the oldest reading would
#   otherwise wait longer than batch_max_age_s) or at once on an alarm (fire, pickup, tilt), save the
#   state and return how long to deep-sleep until the next reading's slot.
# Readings are taken on a grid of interval_s; a frame's readings are interval_min apart by construction
# (payload format v1 times them from the uplink), so a reading off the grid (a missed slot, a reset)
# first sends what is queued.
from array import array

from micropython import const

from bysans import rtcstate
from bysans.drivers.errors import SensorError
from bysans.payload import ReadingBatch, encode_fitting

# Counters and times kept in RTC memory (one array('i'))
C_WAKES = const(0)
C_UPLINKS = const(1)
C_SEND_FAILS = const(2)
C_DROPPED = const(3)        # readings dropped unsent (queue full, or nothing could send them)
C_SENSOR_FAULTS = const(4)  # faulty channels, summed over readings
C_WDT_RESETS = const(5)
C_ALARMS = const(6)
C_NEXT_S = const(7)         # epoch s of the next reading's slot (0: none yet)
C_OLDEST_S = const(8)       # epoch s of the oldest queued reading
C_NEWEST_S = const(9)       # epoch s of the newest queued reading
C_BATCH_N = const(10)
C_KIND = const(11)          # from here: the kind's own words (waste: pickup detector and trend)
COUNTERS = const(16)
COUNTER_NAMES = ("wakes", "uplinks", "send_fails", "dropped", "sensor_faults", "watchdog_resets", "alarms")

_BATT_MIN_MV = const(1000)
_BATT_MAX_MV = const(10000)


def _nop():
    pass


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

    sink: send(fport, payload) (bysans.uplink), or None where nothing can send (readings stay queued);
    feed: the watchdog's feed; open_sensor(board, entry): drivers.open_sensor unless a test gives its own;
    battery: a function returning mV or None (default: the board file's battery through its ADC)."""

    def __init__(self, board, cfg, sink=None, *, feed=None, open_sensor=None, battery=None):
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
        self.c = array("i", bytes(4 * COUNTERS))
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
            self.batch.n = min(c[C_BATCH_N], self.batch.capacity)
        c[C_WAKES] += 1
        if b.reset_cause() == "watchdog":
            c[C_WDT_RESETS] += 1
        now = b.epoch_s()
        slot = c[C_NEXT_S] or now
        if now < slot - iv // 2:  # woken early (a soft reset): back to sleep until the slot
            return self._finish(slot, b.epoch_s())  # the same slot, not the one after
        fire = self.logic.sample()
        self.sampled = True
        now = b.epoch_s()
        faults, alarm = self.logic.close(now, self.row)
        self.faults = faults
        self.alarm = alarm or fire
        c[C_SENSOR_FAULTS] += _bits(faults)
        self._queue(now, faults)
        if self.alarm:
            c[C_ALARMS] += 1
        # due: the oldest reading would be older than batch_max_age_s at the next wake (half a cycle of margin)
        if self.alarm or self.batch.n >= self.batch.capacity or now + iv + iv // 2 - c[C_OLDEST_S] > cfg.batch_max_age_s:
            self._send(now)
        return self._finish(slot + iv, b.epoch_s())

    def _finish(self, nxt, end_s):
        c, iv = self.c, self.cfg.interval_s
        while nxt <= end_s:  # slots missed while awake are skipped
            nxt += iv
        c[C_NEXT_S] = nxt
        c[C_BATCH_N] = self.batch.n
        self.logic.to_words(c)
        self.state.save(self.board)
        return (nxt - end_s) * 1000

    def _queue(self, now, faults):
        c, batch, iv = self.c, self.batch, self.cfg.interval_s
        if batch.n and abs(now - c[C_NEWEST_S] - iv) > iv // 2:
            self._send(now)  # off the grid: what is queued goes first
            if batch.n:
                c[C_DROPPED] += batch.n
                batch.clear()
        if batch.n >= batch.capacity:
            batch.drop(1)
            c[C_DROPPED] += 1
            c[C_OLDEST_S] += iv
        batch.add(self.row, faults)
        if batch.n == 1:
            c[C_OLDEST_S] = now
        c[C_NEWEST_S] = now

    def _send(self, now):
        c, batch, cfg = self.c, self.batch, self.cfg
        if self.sink is None:
            return
        age_min = max(0, (now - c[C_NEWEST_S] + 30) // 60)
        while batch.n:
            length, n = encode_fitting(self.frame, batch, interval_min=cfg.interval_s // 60, age_min=age_min,
                                       frame_values=self.logic.frame_values())
            try:
                self.sink.send(cfg.fport, self.frame[:length])
            except OSError:
                c[C_SEND_FAILS] += 1
                return
            c[C_UPLINKS] += 1
            self.sent += 1
            batch.drop(n)
            c[C_OLDEST_S] += n * cfg.interval_s
            self.feed()

    def summary(self):
        """One line for the serial log."""
        st = rtcstate.STATUS_NAMES[self.status] if self.status is not None else "-"
        what = self.logic.summary(self.row) if self.sampled else "early wake, no reading"
        miss = (", missing " + " ".join(self.sensors.missing)) if self.sensors.missing else ""
        return "wake %d rtc %s (resets %d): %s, faults 0x%02x%s; queued %d, sent %d%s" % (
            self.c[C_WAKES], st, self.state.resets, what, self.faults, miss, self.batch.n, self.sent,
            ", ALARM" if self.alarm else "")
