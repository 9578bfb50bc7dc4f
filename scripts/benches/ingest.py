"""Ingest and status benchmarks.

ingest.uplinks_per_s_sqlite / ingest.uplinks_per_s_postgres: ChirpStack v4 uplink events (JSON, payloads
    from the firmware's encoder, 8 waste readings each) parsed, decoded and stored with readings, health
    and alerts, in batches of 500 as `fleet ingest mqtt` commits them; one core: each runs in a child
    process pinned with `taskset -c CORE` (the line gives the core and the child's own affinity, checked to
    be that one core; PostgreSQL's server is not pinned). Baseline: the same work with one transaction per
    uplink, in the same pinned child. PostgreSQL: the server at 127.0.0.1:5432 (BYSANS_TEST_POSTGRES), in a
    schema of its own that is dropped after.
registry.status_100k_ms: `fleet status --kommune 751` (one kommune, ~1,000 devices with health) among
    100,000 devices in 98 kommuner, the median of 7 runs. Baseline: a naive overview, the kommune's device
    list and then one health query per device.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import create_engine, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from fleet.registry import NewDevice, Operator, Registry, all_kommuner  # noqa: E402
from fleet.store.models import DeviceHealth  # noqa: E402
from fleet.telemetry import TelemetryStore, fleet_status, parse_event  # noqa: E402
from lab import telemetry_samples as S  # noqa: E402
from provisioning.identity import new_identity  # noqa: E402

ADMIN = Operator("bench-admin", role="cross-kommune")
AARHUS = Operator("bench", kommune="751")
DEVICES, UPLINKS, BASELINE_UPLINKS, BATCH = 200, 6000, 600, 500


def _events(euis, n, start_fcnt=0):
    frames = [S.waste_frame(S.filling_bin(2000 + 300 * i), fill_rate_bp_h=150) for i in range(20)]
    t0 = datetime.now(timezone.utc) - timedelta(days=30)
    out = []
    for i in range(n):
        eui = euis[i % len(euis)]
        k = start_fcnt + i // len(euis)
        out.append(json.dumps(S.chirpstack_event(eui, frames[k % len(frames)], f_cnt=k,
                                                 at=t0 + timedelta(minutes=120 * k, seconds=i % len(euis)))))
    return out


def _run_ingest(url, db):
    reg = Registry.open(url, key=os.urandom(32))
    try:
        idents = [new_identity() for _ in range(DEVICES)]
        reg.add_devices(ADMIN, [(NewDevice(kommune="751", site=f"bin {i}", kind="waste", board="virtual"), ident)
                                for i, ident in enumerate(idents)])
        euis = [i.dev_eui for i in idents]
        store = TelemetryStore(reg)
        events = _events(euis, UPLINKS)
        t0 = time.perf_counter()
        for i in range(0, len(events), BATCH):
            r = store.ingest([parse_event(e, "chirpstack") for e in events[i:i + BATCH]])
            assert r.stored == len(events[i:i + BATCH]), r.rejected[:3]
        batched = len(events) / (time.perf_counter() - t0)
        base = _events(euis, BASELINE_UPLINKS, start_fcnt=UPLINKS // DEVICES + 1)
        t0 = time.perf_counter()
        for e in base:
            assert store.ingest([parse_event(e, "chirpstack")]).stored == 1
        single = len(base) / (time.perf_counter() - t0)
    finally:
        reg.close()
    return {"bench": f"ingest.uplinks_per_s_{db}", "value": round(batched), "unit": "uplinks/s",
            "baseline": round(single), "baseline_is": "one transaction per uplink", "uplinks": UPLINKS,
            "readings_per_uplink": 8, "batch": BATCH, "devices": DEVICES, "db": db}


def _pinned(db):
    """Runs this file's `--pinned DB` in a child on one core (taskset); its one JSON line, with the core."""
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("taskset (util-linux) is not installed: the ingest benchmarks run on one core")
    core = max(os.sched_getaffinity(0))
    out = subprocess.run([taskset, "-c", str(core), sys.executable, __file__, "--pinned", db], capture_output=True,
                         text=True, timeout=1800, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["affinity"] == [core], r
    r["pinned_core"] = core
    return [r]


def ingest_sqlite():
    return _pinned("sqlite")


def ingest_postgres():
    return _pinned("postgres")


def _ingest_sqlite():
    with tempfile.TemporaryDirectory() as d:
        return [_run_ingest(f"sqlite:///{Path(d) / 'ingest.sqlite'}", "sqlite")]


def _ingest_postgres():
    base = os.environ.get("BYSANS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    with admin.begin() as c:
        c.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
        return [_run_ingest(url, "postgres")]
    finally:
        with admin.begin() as c:
            c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def status_100k():
    n = 100_000
    kommuner = list(all_kommuner())
    with tempfile.TemporaryDirectory() as d:
        reg = Registry.open(f"sqlite:///{Path(d) / 'status.sqlite'}", key=os.urandom(32))
        batch = []
        for i in range(n):
            batch.append((NewDevice(kommune=kommuner[i % len(kommuner)], site=f"site {i}", kind="waste",
                                    board="virtual"), new_identity()))
            if len(batch) == 10_000:
                reg.add_devices(ADMIN, batch)
                batch = []
        now = datetime.now(timezone.utc)
        with reg.engine.begin() as c:
            ids = [r[0] for r in c.execute(text("SELECT id FROM devices"))]
            c.execute(insert(DeviceHealth), [
                dict(device_id=i, last_seen=now - timedelta(minutes=i % 600), last_f_cnt=i % 1000, uplinks=100,
                     lost_uplinks=i % 7, interval_s=7200, battery_mv=3300 + i % 900, fill_bp=(i * 37) % 10001,
                     fill_rate_bp_h=150, full_at=now + timedelta(hours=i % 48), temp_cdeg=1500, tilt=False,
                     fire=False, updated_at=now) for i in ids])
            c.execute(text("UPDATE devices SET state = 'active'"))
            c.execute(text("ANALYZE"))

        def median(fn):
            runs = []
            for _ in range(7):
                t0 = time.perf_counter()
                out = fn()
                runs.append((time.perf_counter() - t0) * 1000)
            return statistics.median(runs), out

        fast, st = median(lambda: fleet_status(reg, AARHUS))

        def naive():
            devs = reg.list_devices(AARHUS)
            full = low = 0
            with reg.db.read() as s:
                for dv in devs:
                    h = s.execute(select(DeviceHealth).where(DeviceHealth.device_id == dv.id)).scalar()
                    full += bool(h and h.fill_bp >= 8000)
                    low += bool(h and h.battery_mv < 3400)
            return full, low

        slow, (full, low) = median(naive)
        assert st["totals"]["full"] == full and st["totals"]["low_battery"] == low
        devices = st["totals"]["devices"]
        reg.close()
    return [{"bench": "registry.status_100k_ms", "value": round(fast, 2), "unit": "ms", "baseline": round(slow, 2),
             "baseline_is": "device list, then one health query per device", "kommune_devices": devices,
             "devices": n, "db": "sqlite"}]


BENCHES = [
    (("ingest.uplinks_per_s_sqlite",), ingest_sqlite),
    (("ingest.uplinks_per_s_postgres",), ingest_postgres),
    (("registry.status_100k_ms",), status_100k),
]


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--pinned":
    (res,) = {"sqlite": _ingest_sqlite, "postgres": _ingest_postgres}[sys.argv[2]]()
    res["affinity"] = sorted(os.sched_getaffinity(0))
    print(json.dumps(res))
