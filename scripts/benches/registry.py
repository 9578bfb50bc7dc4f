"""Registry benchmarks (SQLite file in a temporary directory, as on a technician's laptop).

registry.enroll_10k_csv_seconds: a 10,000-row pallet CSV read, validated (every row, DevEUIs unique in the
    file and not yet enrolled) and recorded with sealed AppKeys and audit entries in one transaction.
    Baseline: the same 10,000 devices recorded row by row, one transaction (commit) each.
registry.list_100k_ms: listing one kommune's devices (Aarhus, ~1,000) among 100,000 in 98 kommuner, the
    median of 7 runs. Baseline: the same list after dropping the (kommune_kode, id) index: a full scan.
registry.cli_list_100k_ms: `fleet devices list -k 751` as a process, piped (stdout a pipe, read to the end),
    on an SQLite registry of 100,000 devices in 20 kommuner (5,000 in Aarhus), built directly with
    executemany; the median of 5 runs, start to exit (wall; cpu_ms: user + sys, what a loaded machine does
    not inflate). Baseline: the library call Registry.list_devices
    (Aarhus, in a warm process) in the same run; also reported: `fleet devices list -k 751 --json` as a
    process, `fleet status -k 751` as a process (status_process_ms, status_cpu_ms), and a bare
    `python -c pass` (the interpreter's own start).
registry.label_ms: one device's QR labels (PNG and SVG, fleet enroll --labels) written, the median ms over
    300 devices of a pallet. Baseline: the same labels with segno choosing the QR mask by its penalty score
    (its default, and the labels' code before the mask was fixed: 22 ms a label when issue 11 was filed).
"""

import base64
import os
import sqlite3
import statistics
import subprocess
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


def _fleet_db(path: Path, n: int, n_kommuner: int = 20) -> None:
    """A migrated registry of n devices in n_kommuner kommuner (Aarhus first), inserted with executemany
    (sealed AppKeys are placeholders: a listing never opens them)."""
    Registry.open(f"sqlite:///{path}", key=os.urandom(32)).close()
    ks = all_kommuner()
    codes = ["0751"] + [k for k in ks if k != "0751"][:n_kommuner - 1]
    now = "2026-12-07 12:00:00.000000"
    rows = []
    for i in range(n):
        k = ks[codes[i % len(codes)]]
        kind = "waste" if i % 3 else "env"
        eui = f"70B3D57ED{i:07X}"
        j = i // len(codes)
        rows.append((eui, "0000000000000000", b"\0" * 45, f"{kind}-{k.kode}-{eui[-6:]}", k.kode, k.navn,
                     f"Bench street {j // 10}, bin {j % 10}", k.lat, k.lon, "virtual", kind,
                     '["jsn-sr04t", "lis3dh"]' if kind == "waste" else '["bme280", "scd41"]',
                     "1.4.2" if j % 4 else None, "active" if j % 5 else "enrolled", now if j % 5 else None, now, now))
    with sqlite3.connect(path) as c:
        c.executemany("INSERT INTO devices (dev_eui, join_eui, app_key_sealed, name, kommune_kode, kommune_navn, "
                      "site, latitude, longitude, board, kind, sensors, firmware_version, state, last_seen, "
                      "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        c.execute("ANALYZE")
    c.close()


def _process_ms(args, env, runs=5):
    """(median wall ms, median CPU ms (user + sys), the last stdout) of runs of a process, stdout piped."""
    import resource

    times, cpu, out = [], [], b""
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(args, env=env, stdout=subprocess.PIPE, check=True, timeout=120).stdout
        times.append((time.perf_counter() - t0) * 1000)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
    return statistics.median(times), statistics.median(cpu), out


def cli_list_100k():
    n = 100_000
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "fleet.sqlite"
        _fleet_db(db, n)
        env = dict(os.environ, FLEET_DB=str(db), FLEET_OPERATOR="bench", FLEET_ROLE="kommune",
                   FLEET_SECRET_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode())
        fleet = [sys.executable, "-c", "from fleet.cli import main; main()"]
        cli_ms, cli_cpu_ms, out = _process_ms(fleet + ["devices", "list", "-k", "751"], env)
        lines = out.decode().splitlines()
        json_ms, _, _ = _process_ms(fleet + ["devices", "list", "-k", "751", "--json"], env, runs=3)
        status_ms, status_cpu_ms, _ = _process_ms(fleet + ["status", "-k", "751"], env, runs=3)
        bare_ms, _, _ = _process_ms([sys.executable, "-c", "pass"], env)
        reg = Registry.open(f"sqlite:///{db}", key=os.urandom(32))
        reg.list_devices(AARHUS)  # warm
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            got = reg.list_devices(AARHUS)
            runs.append((time.perf_counter() - t0) * 1000)
        reg.close()
        assert len(lines) == len(got) + 1 and all(len(x.split("\t")) == 8 for x in lines)
    return [{"bench": "registry.cli_list_100k_ms", "value": round(cli_ms, 1), "unit": "ms",
             "baseline": round(statistics.median(runs), 1),
             "baseline_is": "Registry.list_devices(kommune 751) in a warm process, same run",
             "cpu_ms": round(cli_cpu_ms, 1), "json_process_ms": round(json_ms, 1),
             "status_process_ms": round(status_ms, 1), "status_cpu_ms": round(status_cpu_ms, 1), "python_start_ms": round(bare_ms, 1), "goal": 1000,
             "listed": len(got), "devices": n, "kommuner": 20, "db": "sqlite", "piped": True}]


def labels():
    from unittest import mock

    import segno

    from provisioning import labels as L

    n = 300
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        csv_path = tmp / "pallet.csv"
        _pallet(csv_path, n)
        reg = _open(tmp, "labels.sqlite")
        records = [r for r, _ in enroll_csv(reg, AARHUS, csv_path)]
        reg.close()

        def per_label(out):
            times = []
            for r in records:
                t0 = time.perf_counter()
                L.write_label(r, out)
                times.append((time.perf_counter() - t0) * 1000)
            return statistics.median(times)

        ms = per_label(tmp / "fixed")
        with mock.patch.object(L, "make_qr", lambda rec: segno.make(L.label_text(rec), error="m", micro=False)):
            base = per_label(tmp / "chosen")
    return [{"bench": "registry.label_ms", "value": round(ms, 2), "unit": "ms", "baseline": round(base, 2),
             "baseline_is": "segno choosing the mask (its default)", "labels": n, "files_per_label": 2}]


BENCHES = [
    (("registry.enroll_10k_csv_seconds",), enroll_10k),
    (("registry.label_ms",), labels),
    (("registry.list_100k_ms",), list_100k),
    (("registry.cli_list_100k_ms",), cli_list_100k),
]
