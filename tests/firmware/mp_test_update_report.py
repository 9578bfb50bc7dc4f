# The update report (bysans.update_report, docs/formats/update-report.md) on the unix port: what the FUOTA
# installer's outcomes become on the air, laid out by hand from the format's text; sent on REPEAT wakes,
# kept in a file across wakes; "installed" turned into the boot logic's verdict (bysans.ota.slots confirm or
# rollback); dropped when the switch never happened; a failed send tried again.
# mp: -X heapsize=128K
import os

from bysans import update_report as U
from bysans import update_report_spec as S
from bysans.ota import slots
from bysans.uplink import ListSink

_n = [0]


def _root():
    _n[0] += 1
    root = "/tmp/bysans_mp_update_report_%d_%d" % (os.getpid() if hasattr(os, "getpid") else 0, _n[0])
    for d in (root, root + "/ota", root + "/b"):
        try:
            os.mkdir(d)
        except OSError:
            pass
    try:
        os.remove(root + "/ota/report")
    except OSError:
        pass
    slots.save(slots._default(), root)
    with open(root + "/b/manifest.json", "w") as f:
        f.write("{}")
    return root


def _wakes(root, n, sink=None):
    sink = sink or ListSink()
    sent = [U.send_due(sink, root) for _ in range(n)]
    return sent, sink.frames


def test_a_refused_payload_is_sent_on_three_wakes_then_forgotten():
    root = _root()
    U.note("failed", "DOWNGRADE", 7, None, root)
    sent, frames = _wakes(root, 5)
    assert sent == [True, True, True, False, False], sent
    # by hand: version 1, event refused (4), reason DOWNGRADE (5), counter 7 big-endian
    assert frames == [(222, bytes([1, 4, 5, 0, 0, 0, 7]))] * 3, frames
    assert S.REPEAT == 3 and U.load(root) is None


def test_installed_becomes_confirmed_after_the_first_boot():
    root = _root()
    U.note("installed", None, 0x01020304, "ab" * 32, root)
    slots.switch("b", "ab" * 32, root)
    slots.confirm(root, "2.0.0")  # what boot.py does once the new slot's self-test passed
    sent, frames = _wakes(root, 4)
    assert sent == [True, True, True, False]
    assert frames == [(222, bytes([1, 2, 0, 1, 2, 3, 4]))] * 3, frames


def test_installed_becomes_rolled_back_with_the_self_tests_reason():
    root = _root()
    U.note("installed", None, 9, "cd" * 32, root)
    slots.switch("b", "cd" * 32, root)
    slots.rollback(root, "SELFTEST: ImportError")
    sent, frames = _wakes(root, 1)
    assert frames == [(222, bytes([1, 3, 3, 0, 0, 0, 9]))], frames  # rolled_back, SELFTEST (3)


def test_a_power_cut_before_the_switch_reports_nothing():
    root = _root()
    U.note("installed", None, 9, "ef" * 32, root)  # the switch never came
    sent, frames = _wakes(root, 2)
    assert sent == [False, False] and frames == [] and U.load(root) is None


def test_on_trial_it_says_installed_then_waits_for_the_verdict():
    root = _root()
    U.note("installed", None, 5, "12" * 32, root)
    slots.switch("b", "12" * 32, root)
    sent, frames = _wakes(root, 5)
    assert sent == [True, True, True, False, False] and frames == [(222, bytes([1, 1, 0, 0, 0, 0, 5]))] * 3
    assert U.load(root) is not None  # kept: the verdict is still to come
    slots.confirm(root, "2.0.0")
    sent, frames = _wakes(root, 4)
    assert sent == [True, True, True, False] and frames[0] == (222, bytes([1, 2, 0, 0, 0, 0, 5]))


def test_a_failed_send_is_tried_at_the_next_wake():
    class Down:
        def send(self, port, data):
            raise OSError(11)

    root = _root()
    U.note("failed", "BAD_SIGNATURE", 3, None, root)
    assert not U.send_due(Down(), root)
    assert not U.send_due(None, root)  # no sink this wake
    sent, frames = _wakes(root, 4)
    assert sent == [True, True, True, False] and frames[0] == (222, bytes([1, 4, 2, 0, 0, 0, 3]))


def test_states_that_are_no_outcome_note_nothing():
    root = _root()
    assert U.note("downloading", None, 3, None, root) is None
    assert U.note("error", "NO_MEMORY", 3, None, root) is None
    assert U.load(root) is None
    rec = U.note("rolled_back", "ROLLED_BACK", 3, "aa" * 32, root)  # not taken: it failed here before
    assert U.encode(rec) == bytes([1, 3, 4, 0, 0, 0, 3])
