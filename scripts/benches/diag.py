"""airtime.diag_sf12_s_per_day: what the diagnostics record adds to a node's daily airtime at SF12.

The firmware's own bysans.diag (run under CPython on a fake board's RTC memory) goes through DAYS days of
a waste node's wakes (every 15 min), from a power-on, with a watchdog reset and a soft reset on the second
day and an exception on the third; every record it hands its sink is timed on air at SF12 (EU868 DR0,
fleet.airtime, the LoRaWAN header included). Baseline: the same record sent with every batch uplink of
the standard schedule (every 2 h, scripts/benches/payload.py), the obvious alternative.
"""

import sys
from pathlib import Path

from fleet.airtime import uplink_time_on_air_s

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _firmware  # noqa: E402

SF = 12
DAYS = 3
WAKE_S = 15 * 60
BATCH_S = 2 * 3600


class _Board:
    def __init__(self):
        self.rtc = b""

    def rtc_memory(self, data=None):
        if data is None:
            return self.rtc
        self.rtc = bytes(data)


def _run():
    _firmware.on_path()
    from bysans import diag, diag_spec

    b, sink = _Board(), _firmware.Sink()
    t0 = 1_750_000_000
    resets = {t0 + 86400 + 3 * 3600: "watchdog", t0 + 86400 + 9 * 3600: "soft"}
    for k in range(DAYS * 86400 // WAKE_S):
        now = t0 + k * WAKE_S
        diag.boot(b, "power_on" if k == 0 else resets.get(now, "deepsleep"))
        diag.heap(60000 + (k * 7919) % 20000)
        if k == 2 * 86400 // WAKE_S + 5:
            try:
                raise ValueError("a sensor answered garbage")
            except ValueError as e:
                diag.exception(e)
        diag.send_due(b, sink, now)
        diag.save(b)
    ports = {p for p, _ in sink.frames}
    assert ports == {diag_spec.FPORT}, ports
    air = sum(uplink_time_on_air_s(len(f), SF) for _, f in sink.frames) / DAYS
    every_batch = (86400 // BATCH_S) * uplink_time_on_air_s(diag_spec.LENGTH, SF)
    return [{"bench": "airtime.diag_sf12_s_per_day", "value": round(air, 2), "unit": "s/day",
             "baseline": round(every_batch, 2), "goal": 2, "records_per_day": len(sink.frames) / DAYS,
             "record_bytes": diag_spec.LENGTH, "fport": diag_spec.FPORT}]


BENCHES = [(("airtime.diag_sf12_s_per_day",), _run)]
