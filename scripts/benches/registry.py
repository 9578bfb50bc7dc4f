"""Registry benchmarks (SQLite file in a temporary directory, as on a technician's laptop).

registry.enroll_10k_csv_seconds: a 10,000-row pallet CSV read, validated (every row, DevEUIs unique in the
    file and not yet enrolled) and recorded with sealed AppKeys and audit entries in one transaction.
    Baseline: the same 10,000 devices recorded row by row, one transaction (commit) each.
registry.list_100k_ms: listing one kommune's devices (Aarhus, ~1,000) among 100,000 in 98 kommuner, the
    median of 7 runs. Baseline: the same list after dropping the (kommune_kode, id) index: a full scan.
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import text  # noqa: E402

from fleet.registry import NewDevice, Operator, Registry, all_kommuner  # noqa: E402
from provisioning.enrollment import enroll_csv, plan_csv  # noqa: E402
from provisioning.identity import new_identity  # noqa: E402

AARHUS = Operator("bench", kommune="751")
ADMIN = Operator("bench-admin", role="cross-kommune")


def _pallet(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("kommune,site,kind,board,latitude,longitude,mac,sensors\n")
        for i in range(n):
            mac = (0x240AC4000000 + i).to_bytes(6, "big").hex(":")
            kind = "waste" if i % 3 else "env"
            f.write(f"751,\"Bench street {i // 10}, bin {i % 10}\",{kind},virtual,56.15,10.20,{mac},"
                    f"{'jsn-sr04t;lis3dh' if kind == 'waste' else 'bme280;scd41'}\n")


def _open(tmp: Path, name: str) -> Registry:
    return Registry.open(f"sqlite:///{tmp / name}", key=os.urandom(32))


def enroll_10k():
    n = 10_000
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        csv_path = tmp / "pallet.csv"
        _pallet(csv_path, n)
        reg = _open(tmp, "bulk.sqlite")
        t0 = time.perf_counter()
        enrolled = enroll_csv(reg, AARHUS, csv_path)
        bulk = time.perf_counter() - t0
        assert len(enrolled) == n and reg.count_devices(AARHUS) == n
        reg.close()

        reg = _open(tmp, "rowwise.sqlite")
        t0 = time.perf_counter()
        for p in plan_csv(reg, AARHUS, csv_path):
            reg.add_device(AARHUS, p.device, p.identity)
        rowwise = time.perf_counter() - t0
        reg.close()
    return [{"bench": "registry.enroll_10k_csv_seconds", "value": round(bulk, 3), "unit": "s",
             "baseline": round(rowwise, 3), "baseline_is": "the same rows, one transaction each",
             "rows": n, "db": "sqlite"}]


def list_100k():
    n = 100_000
    kommuner = list(all_kommuner())
    with tempfile.TemporaryDirectory() as d:
        reg = _open(Path(d), "list.sqlite")
        batch = []
        for i in range(n):
            kode = kommuner[i % len(kommuner)]
            batch.append((NewDevice(kommune=kode, site=f"site {i}", kind="waste" if i % 2 else "env",
                                    board="virtual", sensors=("bme280",)), new_identity()))
            if len(batch) == 10_000:
                reg.add_devices(ADMIN, batch)
                batch = []
        assert reg.count_devices(ADMIN) == n
        with reg.engine.begin() as c:
            c.execute(text("ANALYZE"))

        def timed():
            runs = []
            for _ in range(7):
                t0 = time.perf_counter()
                got = reg.list_devices(AARHUS)
                runs.append((time.perf_counter() - t0) * 1000)
            return statistics.median(runs), len(got)

        indexed, count = timed()
        with reg.engine.begin() as c:
            c.execute(text("DROP INDEX ix_devices_kommune_id"))
        scan, count2 = timed()
        assert count == count2
        reg.close()
    return [{"bench": "registry.list_100k_ms", "value": round(indexed, 2), "unit": "ms", "baseline": round(scan, 2),
             "baseline_is": "the same list without the kommune index (full scan)", "listed": count,
             "devices": n, "db": "sqlite"}]


BENCHES = [
    (("registry.enroll_10k_csv_seconds",), enroll_10k),
    (("registry.list_100k_ms",), list_100k),
]
