# Settings that arrive by LoRaWAN downlink (format: bysans/settings_spec.py, docs/formats/settings.md).
#   st = Settings()          # reads SETTINGS_PATH (flash): what survives deep sleep, power cuts, OTA updates
#   st.apply_pending()       # at the start of a wake: the commands taken at the last one take effect
#   cfg = config.load(..., overlay=st.values)
#   ... the node's cycle ...
#   st.after_wake(sink)      # the commands the wake's downlinks carried; the acknowledgement uplink
# A command is checked when it arrives (never trust the downlink): a seq not above the last one taken is
# refused (a replay or an older command), a value outside its bounds refuses the whole command, and the
# file's values are checked again when read. A taken command waits in the file until the next wake, then
# applies; every result is acknowledged on the settings FPort at the next uplink the sink can send.
# The file is written whole to a temporary name and renamed, so a power cut leaves the old one or the new.
import json

from bysans import settings_spec as S

SETTINGS_PATH = "/config/settings.json"
_TMP = ".tmp"


def check(key, value):
    """RESULT_APPLIED when `value` is allowed for the settable `key`, else why not."""
    for _id, name, _n, lo, hi, step in S.KEYS:
        if name == key:
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi or value % step:
                return S.RESULT_OUT_OF_RANGE
            return S.RESULT_APPLIED
    return S.RESULT_MALFORMED


def parse(frame):
    """(seq, values, result) of a command frame; values is {} unless result is RESULT_APPLIED."""
    if len(frame) < 3:
        return 0, {}, S.RESULT_MALFORMED
    seq = (frame[1] << 8) | frame[2]
    if frame[0] != S.VERSION or not seq:
        return seq, {}, S.RESULT_MALFORMED
    values = {}
    i, n = 3, len(frame)
    result = S.RESULT_APPLIED
    while i < n:
        spec = None
        for k in S.KEYS:
            if k[0] == frame[i]:
                spec = k
        if spec is None or spec[1] in values or i + 1 + spec[2] > n:
            return seq, {}, S.RESULT_MALFORMED
        v = int.from_bytes(frame[i + 1:i + 1 + spec[2]], "big")
        i += 1 + spec[2]
        values[spec[1]] = v
        if check(spec[1], v) != S.RESULT_APPLIED:
            result = S.RESULT_OUT_OF_RANGE  # the rest is still read: a malformed tail says so instead
    if not values:
        return seq, {}, S.RESULT_MALFORMED
    return seq, (values if result == S.RESULT_APPLIED else {}), result


def ack_frame(acks):
    """The acknowledgement uplink of [(seq, result)], at most ACK_MAX of them."""
    out = bytearray(1 + 3 * len(acks))
    out[0] = S.VERSION
    for i, (seq, result) in enumerate(acks):
        out[1 + 3 * i] = seq >> 8
        out[2 + 3 * i] = seq & 0xFF
        out[3 + 3 * i] = result
    return bytes(out)


def _pair(x):
    return isinstance(x, list) and len(x) == 2 and isinstance(x[0], int) and 0 <= x[0] <= S.SEQ_MAX


def _read(path):
    try:
        with open(path) as f:
            d = json.load(f)
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


class Settings:
    """The downlink settings kept in flash: `values` (applied, checked), `seq` (the last command taken),
    `pending` ([seq, values] taken, applied at the next wake) and `acks` ([seq, result] not yet sent)."""

    def __init__(self, path=SETTINGS_PATH):
        self.path = path
        self.values, self.seq, self.pending, self.acks = {}, 0, [], []
        self.applied = []  # seqs applied at this wake, for the log line
        self.taken = []    # (seq, result) of this wake's commands, for the log line
        d = _read(path) or _read(path + _TMP) or {}  # (a cut between the two writes: the new file)
        try:  # whatever the file holds, the node runs: a part it cannot use is left out
            v = d.get("values")
            if isinstance(v, dict):
                self.values = {k: x for k, x in v.items() if check(k, x) == S.RESULT_APPLIED}
            seq = d.get("seq", 0)
            self.seq = seq if isinstance(seq, int) and 0 <= seq <= S.SEQ_MAX else 0
            self.pending = [p for p in d.get("pending", ()) if _pair(p) and isinstance(p[1], dict)]
            self.acks = [a for a in d.get("acks", ()) if _pair(a) and isinstance(a[1], int)][-S.ACK_MAX:]
        except (TypeError, AttributeError, ValueError):
            pass

    def save(self):
        tmp = self.path + _TMP
        with open(tmp, "w") as f:
            json.dump({"seq": self.seq, "values": self.values, "pending": self.pending, "acks": self.acks}, f)
        import os

        try:
            os.rename(tmp, self.path)
        except OSError:  # a file system whose rename does not replace: the reader falls back to tmp
            os.remove(self.path)
            os.rename(tmp, self.path)

    def _ack(self, seq, result):
        self.acks.append([seq, result])
        del self.acks[:-S.ACK_MAX]

    def receive(self, frame):
        """Takes one command frame (the settings FPort's downlink); returns its RESULT_*."""
        seq, values, result = parse(frame)
        if result == S.RESULT_APPLIED or result == S.RESULT_OUT_OF_RANGE:
            if seq <= self.seq:
                result = S.RESULT_STALE
            else:
                self.seq = seq
        if result == S.RESULT_APPLIED:
            self.pending.append([seq, values])
        else:
            self._ack(seq, result)
        self.taken.append((seq, result))
        return result

    def apply_pending(self):
        """At the start of a wake: the commands taken at an earlier one take effect (and are acknowledged).
        Returns True when something changed (and the file was written)."""
        if not self.pending:
            return False
        for seq, values in self.pending:
            if isinstance(values, dict) and all(check(k, v) == S.RESULT_APPLIED for k, v in values.items()):
                self.values.update(values)
                self._ack(seq, S.RESULT_APPLIED)
                self.applied.append(seq)
            else:
                self._ack(seq, S.RESULT_MALFORMED)
        self.pending = []
        self.save()
        return True

    def after_wake(self, sink):
        """After the node's cycle: takes the commands the wake's downlinks carried, then sends what is owed
        as one acknowledgement uplink (kept for the next wake when it cannot go now)."""
        if sink is None:
            return
        if self._take(sink):
            self._save()  # before the acknowledgement goes: a command taken is never lost to a power cut
        if self.acks:
            try:
                sink.send(S.FPORT, ack_frame(self.acks))
            except OSError:
                return
            self.acks = []
            self._take(sink)  # what came back after the acknowledgement
            self._save()

    def _save(self):
        try:
            self.save()
        except OSError:  # flash full: what this wake took is lost; the host sees no acknowledgement
            pass

    def _take(self, sink):
        got = getattr(sink, "received", None)
        if not got:
            return False
        for port, payload in got:
            if port == S.FPORT:
                self.receive(payload)
        del got[:]
        return True

    def summary(self):
        """A few words for the wake's log line ('' when nothing happened)."""
        parts = []
        if self.applied:
            parts.append("applied " + " ".join(str(s) for s in self.applied))
        for seq, result in self.taken:
            parts.append("%d %s" % (seq, "taken" if result == S.RESULT_APPLIED else S.RESULT_NAMES[result]))
        return ("settings " + ", ".join(parts)) if parts else ""
