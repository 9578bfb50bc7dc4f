"""The update report leaves with the app's next wake (docs/formats/update-report.md, "On the node"): a
virtual board whose FUOTA installer left a report pending (/ota/report) joins over the simulated air, sends its
readings and then the report on FPort 222, which the lab network server receives intact and the host decodes;
the wake's log line is the app's usual one (lab/wake.py: a whole wake from power-on)."""

from fleet import boards, device_spec
from fleet.codec.update_report import decode_report
from lab.wake import WakeLab

# What bysans.update_report.note() leaves when the payload's release (counter 7) already ran there:
# event 2 (confirmed), reason 0, counter 7, 3 sends left, no target
NOTE = b"2 0 7 3 -"


def test_a_pending_update_report_goes_out_with_the_next_wake(tmp_path):
    with WakeLab(tmp_path, "virtual", ota=False, name="report",
                 files={device_spec.OTA_REPORT: NOTE}) as w:
        ok, lines = w.wake(boards.load("virtual")["heap"])
        assert ok, w.last_text[-3000:]
        ports = [u.fport for u in w.last_uplinks]
        assert 222 in ports and ports[0] != 222, ports  # after the readings
        [rep] = [u.payload for u in w.last_uplinks if u.fport == 222]
    assert decode_report(rep) == {"update_report": 1, "event": "confirmed", "reason": None, "counter": 7}
    assert "update report" not in w.last_text  # no error line
