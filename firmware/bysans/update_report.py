# The update report (docs/formats/update-report.md; the wire format is bysans/update_report_spec.py): what
# became of an update that came over LoRaWAN, sent on its own FPort on the next REPEAT wakes after it changed.
#
#   note(state, reason, counter, target)   the FUOTA installer (bysans.fuota.install) recorded an outcome
#   send_due(sink)                         the app, at a wake where OTA_REPORT exists (imported only then)
#
# The state is one small file, OTA_REPORT (bysans.device_spec), so it survives deep sleep and power cuts:
# "<event> <reason> <counter> <sends left> <target: the release's manifest SHA-256 hex, or ->", written to a
# temporary file and renamed over (a power cut leaves the old record or the new one). No file: nothing to say.
#
# "installed" is written just before the installer's switch to the new slot; the boot logic then confirms
# the slot or rolls it back (bysans.ota.slots) before the app runs. The first wake after that reads the boot
# state and turns the record into "confirmed" or "rolled_back" with REPEAT sends of its own; a record whose
# switch never happened (a power cut between the two writes) is dropped: nothing changed.
import os
import struct

from bysans import update_report_spec as S
from bysans.device_spec import OTA_REPORT


def _path(root):
    return root.rstrip("/") + OTA_REPORT


def _write(rec, root):
    p = _path(root)
    with open(p + ".tmp", "w") as f:
        f.write("%d %d %d %d %s" % (rec[0], rec[1], rec[2], rec[3], rec[4]))
    os.rename(p + ".tmp", p)


def _remove(root):
    try:
        os.remove(_path(root))
    except OSError:
        pass


def load(root="/"):
    """The pending record [event, reason, counter, sends left, target or "-"], or None."""
    try:
        with open(_path(root)) as f:
            t = f.read().split()
        return [int(t[0]), int(t[1]), int(t[2]), int(t[3]), t[4]]
    except (OSError, ValueError, IndexError):
        return None


def _rollback_reason(text):
    text = text or ""
    for i in range(1, len(S.ROLLBACK_REASONS)):
        if text.startswith(S.ROLLBACK_REASONS[i]):
            return i
    return 0


def note(state, reason=None, counter=0, target=None, root="/"):
    """The OTA client's outcome of a FUOTA install (its ota/client.json state and reason name): a report for
    the next REPEAT wakes. States that are no outcome (downloading, error: tried again) change nothing."""
    if state == "installed":
        rec = [S.EVENT_INSTALLED, 0]
    elif state == "confirmed":  # the payload's release already runs here
        rec = [S.EVENT_CONFIRMED, 0]
    elif state == "rolled_back":  # not taken: it failed here before
        rec = [S.EVENT_ROLLED_BACK, _rollback_reason(reason) or S.ROLLBACK_REASONS.index("FAILED_BEFORE")]
    elif state == "failed":
        from bysans.ota.reasons import NAMES

        rec = [S.EVENT_REFUSED, NAMES.index(reason) if reason in NAMES else 0]
    else:
        return None
    rec += [counter if type(counter) is int and 0 <= counter <= 0xFFFFFFFF else 0, S.REPEAT, target or "-"]
    _write(rec, root)
    return rec


def resolve(rec, root="/"):
    """An "installed" record once the boot logic has judged its slot: a new "confirmed" or "rolled_back"
    record; the same record while the slot is still on trial; None when the switch never happened."""
    if rec[0] != S.EVENT_INSTALLED:
        return rec
    from bysans.ota import slots

    st = slots.load(root)
    t = rec[4]
    if st["trial"] and st["target"] == t:
        return rec
    last = st["last"] or {}
    if last.get("target") == t and last.get("state") == "confirmed":
        return [S.EVENT_CONFIRMED, 0, rec[2], S.REPEAT, t]
    if last.get("target") == t or t in st["bad"]:
        why = _rollback_reason(last.get("reason")) if last.get("target") == t else 0
        return [S.EVENT_ROLLED_BACK, why, rec[2], S.REPEAT, t]
    return None


def encode(rec, buf=None):
    """The wire report (update_report_spec) of a record, into buf (LENGTH bytes) or a new bytearray."""
    buf = buf or bytearray(S.LENGTH)
    struct.pack_into(">BBBI", buf, 0, S.VERSION, rec[0], rec[1], rec[2])
    return buf


def send_due(sink, root="/"):
    """Sends the pending report on FPORT (one per wake); True if sent. A send that fails (OSError) is tried at
    the next wake. An "installed" record that has used its sends waits, unsent, for the slot's verdict."""
    rec = load(root)
    if rec is None:
        _remove(root)  # unreadable: nothing to say
        return False
    new = resolve(rec, root)
    if new is None:
        _remove(root)
        return False
    if new is not rec:
        _write(new, root)
    if new[3] <= 0 or sink is None:
        return False
    try:
        sink.send(S.FPORT, encode(new))
    except OSError:
        return False
    new[3] -= 1
    if new[3] <= 0 and new[0] != S.EVENT_INSTALLED:
        _remove(root)
    else:
        _write(new, root)
    return True
