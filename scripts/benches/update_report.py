"""airtime.update_report_sf12_s: what an update's report costs a LoRaWAN-only node on the air at SF12.

The firmware's own bysans.update_report and bysans.ota.slots (run under CPython on a board tree in a
temporary directory) go through one FUOTA install: the installer's "installed" note, the switch, the first
boot's confirmation, then a day of a waste node's wakes (every 15 min); every report handed to the sink is
timed on air at SF12 (EU868 DR0, fleet.airtime, the LoRaWAN header included). Baseline: the same reports
carrying the release's version as three more bytes (major, minor, patch), the format's obvious extension.
"""

import sys
from pathlib import Path
import tempfile

from fleet import device_spec
from fleet.airtime import uplink_time_on_air_s

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _firmware  # noqa: E402

SF = 12
WAKE_S = 15 * 60


def _run():
    _firmware.on_path()
    import os

    from bysans import update_report, update_report_spec
    from bysans.ota import slots

    sink = _firmware.Sink()
    with tempfile.TemporaryDirectory() as root:
        os.mkdir(root + device_spec.OTA_DIR)
        os.mkdir(root + "/b")
        slots.save(slots._default(), root)
        update_report.note("installed", None, 42, "ab" * 32, root)
        slots.switch("b", "ab" * 32, root)
        slots.confirm(root, "2.0.0")
        for _ in range(86400 // WAKE_S):
            update_report.send_due(sink, root)
    assert {p for p, _ in sink.frames} == {update_report_spec.FPORT}
    air = sum(uplink_time_on_air_s(len(f), SF) for _, f in sink.frames)
    longer = len(sink.frames) * uplink_time_on_air_s(update_report_spec.LENGTH + 3, SF)
    return [{"bench": "airtime.update_report_sf12_s", "value": round(air, 2), "unit": "s/update",
             "baseline": round(longer, 2), "reports": len(sink.frames), "report_bytes": update_report_spec.LENGTH,
             "per_report_s": round(uplink_time_on_air_s(update_report_spec.LENGTH, SF), 3),
             "fport": update_report_spec.FPORT}]


BENCHES = [(("airtime.update_report_sf12_s",), _run)]
