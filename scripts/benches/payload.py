"""payload.*_bytes_per_reading and airtime.*_sf12_s_per_day: the firmware's encoder on a synthetic day
(scripts/benches/_days.py) in the standard schedule, against one CayenneLPP reading per uplink.

Schedule: waste a reading every 15 min, environment every 10 min, at most 2 h from a reading to its uplink,
so 8 and 12 readings per frame (the oldest is 105 and 110 min old when sent). Alarm frames are not part of
the standard schedule.

airtime.env_sf12_s_per_day is the worst of 20 seeds of the environment day at twice the sensor noise
(_days.env_day(seed=1..20, noise=2.0)), framed as the node does (bysans/node.py _send): every 2 h the
queued readings go out in frames of at most the SF12 payload limit (51 bytes at DR0, EU868), as many as it
takes (encode_fitting). The line gives the largest frame against that limit and the most frames one send
needed; its baseline is CayenneLPP (one reading per uplink) of the same worst day.
"""

import sys
from pathlib import Path

from fleet.airtime import max_app_payload, uplink_time_on_air_s
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


def _node_frames(kind, rows, interval_min, frame_values, cap):
    # what bysans/node.py sends: the queue of a 2-hour slot in frames of at most cap bytes, oldest first
    payload, S = _encoder()
    per = MAX_LATENCY_MIN // interval_min
    sizes, sends = [], []
    frame = memoryview(bytearray(cap))
    for start in range(0, len(rows), per):
        batch = payload.ReadingBatch(kind)
        for r in rows[start:start + per]:
            batch.add(r)
        k = 0
        while batch.n:
            length, n = payload.encode_fitting(frame, batch, interval_min=interval_min, frame_values=frame_values)
            sizes.append(length)
            batch.drop(n)
            k += 1
        sends.append(k)
    return sizes, max(sends)


def _env_worst(seeds=range(1, 21), noise=2.0):
    _, S = _encoder()
    cap = max_app_payload(SF)
    worst = None
    for seed in seeds:
        rows = _days.env_day(DAYS, seed=seed, noise=noise)
        sizes, most = _node_frames(S.KIND_ENV, rows, 10, (), cap)
        air = sum(uplink_time_on_air_s(n, SF) for n in sizes) / DAYS
        if worst is None or air > worst[0]:
            worst = (air, seed, rows, sizes, most)
    air, seed, rows, sizes, most = worst
    names = [c[0] for c in S.KINDS[S.KIND_ENV][1]]
    lpp_air = sum(uplink_time_on_air_s(n, SF) for n in _lpp_sizes(rows, names, cayenne.env_reading)) / DAYS
    return {"bench": "airtime.env_sf12_s_per_day", "value": round(air, 2), "unit": "s/day",
            "baseline": round(lpp_air, 2), "baseline_is": "CayenneLPP, one reading per uplink, same day",
            "goal": 30, "seeds": len(seeds), "worst_seed": seed, "noise_x": noise,
            "uplinks_per_day": len(sizes) / DAYS, "max_frame_bytes": max(sizes), "sf12_limit_bytes": cap,
            "frames_per_send_max": most, "over_limit": sum(1 for n in sizes if n > cap)}


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
        if name == "env":
            out.append(_env_worst())
            continue
        air = sum(uplink_time_on_air_s(n, SF) for n in sizes) / DAYS
        lpp_air = sum(uplink_time_on_air_s(n, SF) for n in lpp_sizes) / DAYS
        out.append({"bench": f"airtime.{name}_sf12_s_per_day", "value": round(air, 2), "unit": "s/day",
                    "baseline": round(lpp_air, 2), "uplinks_per_day": len(sizes) / DAYS, "goal": 30,
                    "max_frame_bytes": max(sizes), "sf12_limit_bytes": max_app_payload(SF)})
    return out


BENCHES = [(("payload.waste_bytes_per_reading", "payload.env_bytes_per_reading",
             "airtime.waste_sf12_s_per_day", "airtime.env_sf12_s_per_day"), _run)]
