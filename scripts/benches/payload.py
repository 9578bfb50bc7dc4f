"""payload.*_bytes_per_reading and airtime.*_sf12_s_per_day: the firmware's encoder on a synthetic day
(scripts/benches/_days.py) in the standard schedule, against one CayenneLPP reading per uplink.

Schedule: waste a reading every 15 min, environment every 10 min, at most 2 h from a reading to its uplink,
so 8 and 12 readings per frame (the oldest is 105 and 110 min old when sent). Alarm frames are not part of
the standard schedule.
"""

import sys
from pathlib import Path

from fleet.airtime import uplink_time_on_air_s
from fleet.codec import cayenne
from fleet.resources import firmware_dir

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _days  # noqa: E402

MAX_LATENCY_MIN = 120
SF = 12
DAYS = 2


def _encoder():
    # the firmware's own modules, run under CPython (mp_test_codec.py checks MicroPython gives the same bytes)
    if str(firmware_dir()) not in sys.path:
        sys.path.insert(0, str(firmware_dir()))
    from bysans import payload, payload_spec

    return payload, payload_spec


def _frames(kind, rows, interval_min, frame_values):
    payload, S = _encoder()
    per = MAX_LATENCY_MIN // interval_min
    sizes = []
    buf = bytearray(S.COUNT_MAX * 16)
    for start in range(0, len(rows), per):
        batch = payload.ReadingBatch(kind)
        for r in rows[start:start + per]:
            batch.add(r)
        sizes.append(payload.encode(buf, batch, interval_min=interval_min, frame_values=frame_values))
    return sizes


def _lpp_sizes(rows, names, fn):
    return [len(fn(dict(zip(names, r)))) for r in rows]


def _run():
    _, S = _encoder()
    out = []
    cases = (
        ("waste", S.KIND_WASTE, _days.waste_day(DAYS), 15, (150,), cayenne.waste_reading),
        ("env", S.KIND_ENV, _days.env_day(DAYS), 10, (), cayenne.env_reading),
    )
    for name, kind, rows, interval, fv, lpp in cases:
        names = [c[0] for c in S.KINDS[kind][1]]
        sizes = _frames(kind, rows, interval, fv)
        lpp_sizes = _lpp_sizes(rows, names, lpp)
        out.append({"bench": f"payload.{name}_bytes_per_reading", "value": round(sum(sizes) / len(rows), 2),
                    "unit": "bytes", "baseline": round(sum(lpp_sizes) / len(rows), 2),
                    "readings_per_frame": MAX_LATENCY_MIN // interval, "max_frame_bytes": max(sizes)})
        air = sum(uplink_time_on_air_s(n, SF) for n in sizes) / DAYS
        lpp_air = sum(uplink_time_on_air_s(n, SF) for n in lpp_sizes) / DAYS
        out.append({"bench": f"airtime.{name}_sf12_s_per_day", "value": round(air, 2), "unit": "s/day",
                    "baseline": round(lpp_air, 2), "uplinks_per_day": len(sizes) / DAYS, "goal": 30})
    return out


BENCHES = [(("payload.waste_bytes_per_reading", "payload.env_bytes_per_reading",
             "airtime.waste_sf12_s_per_day", "airtime.env_sf12_s_per_day"), _run)]
