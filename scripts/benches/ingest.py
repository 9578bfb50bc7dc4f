"""Ingest and status benchmarks.

ingest.uplinks_per_s_sqlite / ingest.uplinks_per_s_postgres: ChirpStack v4 uplink events (JSON, payloads
    from the firmware's encoder, 8 waste readings each) parsed, decoded and stored with readings, health
    and alerts, in batches of 500 as `fleet ingest mqtt` commits them; one core: each runs in a child
    process pinned with `taskset -c CORE` (the line gives the core and the child's own affinity, checked to
    be that one core; PostgreSQL's server is not pinned). Baseline: the same work with one transaction per
    uplink, in the same pinned child. PostgreSQL: the server at 127.0.0.1:5432 (BYSANS_TEST_POSTGRES), in a
    schema of its own that is dropped after.
ingest.mqtt_uplinks_per_s: end to end as `fleet ingest mqtt` runs: PUBLISHERS mosquitto_pub processes send
    MQTT_UPLINKS ChirpStack events (QoS 1) as fast as the broker takes them (about 25,000/s together) into a Mosquitto of the bench's own (the
    configuration of docs/ingest.md, "A broker that holds a burst"), one MqttIngester takes them into
    PostgreSQL (batches, ack after commit). Timed from the first publish to the last commit. `lost` (sent
    and not stored) and `duplicates` (an uplink or reading stored twice) must be 0; `redelivered` counts
    messages the broker sent again (stored once). Baseline: the storage's own limit, COPY of the very
    uplink and reading rows that ingest wrote, into tables like them, in one transaction.
registry.status_100k_ms: `fleet status --kommune 751` (one kommune, ~1,000 devices with health) among
    100,000 devices in 98 kommuner, the median of 7 runs. Baseline: a naive overview, the kommune's device
    list and then one health query per device.
"""

import getpass
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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
MQTT_UPLINKS = 20_000
MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
ROOT = Path(__file__).resolve().parents[2]
PUBLISHERS = 4  # mosquitto_pub processes (C, QoS 1): together far faster than ingest, as a network server is


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
    url, drop = _pg_schema()
    try:
        return [_run_ingest(url, "postgres")]
    finally:
        drop()


def _pg_schema():
    """(URL of a PostgreSQL schema of its own, drop() that removes it)."""
    base = os.environ.get("BYSANS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    with admin.begin() as c:
        c.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)

    def drop():
        with admin.begin() as c:
            c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
    return url, drop


def _own_mosquitto(d: Path):
    """A Mosquitto with docs/ingest.md's configuration on a free port; (process, port)."""
    text = (ROOT / "docs" / "ingest.md").read_text(encoding="utf-8").split("## A broker that holds a burst", 1)[1]
    conf = re.search(r"```conf\n(.*?)```", text, re.S).group(1)
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    (d / "mq").mkdir()
    user = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
    (d / "mosquitto.conf").write_text(f"{user}listener {port} 127.0.0.1\nallow_anonymous true\n{conf}\n"
                                      f"persistence_location {d / 'mq'}/\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(d / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def ingest_mqtt():
    if not (shutil.which(MOSQUITTO) and shutil.which(MOSQUITTO_PUB)):
        return [{"bench": "ingest.mqtt_uplinks_per_s", "skipped": f"no {MOSQUITTO} or {MOSQUITTO_PUB}"}]
    from fleet.telemetry.mqtt import MqttIngester

    url, drop = _pg_schema()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        broker, port = _own_mosquitto(d)
        reg = Registry.open(url, key=os.urandom(32))
        try:
            idents = [new_identity() for _ in range(DEVICES)]
            reg.add_devices(ADMIN, [(NewDevice(kommune="751", site=f"bin {i}", kind="waste", board="virtual"), ident)
                                    for i, ident in enumerate(idents)])
            euis = [i.dev_eui for i in idents]
            events = _events(euis, MQTT_UPLINKS)
            for k in range(PUBLISHERS):  # one JSON event a line: mosquitto_pub -l sends each line as a message
                (d / f"events{k}.txt").write_text("".join(e + "\n" for e in events[k::PUBLISHERS]))
            ing = MqttIngester(TelemetryStore(reg), f"mqtt://127.0.0.1:{port}", fmt="chirpstack",
                               client_id="bench-ingest", sweep_every_s=0)
            stop = threading.Event()
            t = threading.Thread(target=ing.run, args=(stop,), kwargs=dict(connect_timeout=10), daemon=True)
            t.start()
            if not ing.connected.wait(10):
                raise RuntimeError("the ingester did not connect")
            time.sleep(0.5)  # its SUBSCRIBE
            t0 = time.perf_counter()
            pubs = [subprocess.Popen([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l",
                                      "-i", f"bench-pub-{k}", "-t", f"application/bench/device/{k}/event/up"],
                                     stdin=open(d / f"events{k}.txt"), stdout=subprocess.DEVNULL)
                    for k in range(PUBLISHERS)]
            last, since, end = -1, time.perf_counter(), time.perf_counter() + 600
            while ing.stats.stored + ing.stats.duplicates < MQTT_UPLINKS and time.perf_counter() < end:
                time.sleep(0.01)
                n = ing.stats.stored
                if n != last:
                    last, since = n, time.perf_counter()
                elif time.perf_counter() - since > 20:
                    break  # nothing more is coming: the rest is lost
            elapsed = time.perf_counter() - t0
            for p in pubs:
                p.wait(120)
            time.sleep(1.0)  # anything redelivered late
            stop.set()
            t.join(30)
            with reg.engine.connect() as c:
                uplinks = c.execute(text("SELECT count(*), count(DISTINCT dedup_key) FROM uplinks")).one()
                readings = c.execute(text("SELECT count(*), count(DISTINCT (uplink_id, seq)) FROM readings")).one()
            lost = MQTT_UPLINKS - uplinks[1]
            duplicates = (uplinks[0] - uplinks[1]) + (readings[0] - readings[1])
            baseline, rows = _copy_baseline(reg)
        finally:
            reg.close()
            broker.terminate()
            broker.wait(10)
            drop()
    return [{"bench": "ingest.mqtt_uplinks_per_s", "value": round(MQTT_UPLINKS / elapsed), "unit": "uplinks/s",
             "baseline": round(MQTT_UPLINKS / baseline), "baseline_is": "COPY of the same uplink and reading rows "
             "(the storage's own limit)", "lost": lost, "duplicates": duplicates,
             "redelivered": ing.stats.duplicates, "uplinks": MQTT_UPLINKS, "readings": readings[0],
             "readings_per_uplink": 8, "devices": DEVICES, "batches": ing.stats.batches,
             "publishers": f"{PUBLISHERS} mosquitto_pub, QoS 1", "broker": "mosquitto, docs/ingest.md configuration", "db": "postgres", "ok": lost == 0 and duplicates == 0,
             "loadavg_1m": round(os.getloadavg()[0], 2)}]


def _copy_baseline(reg):
    """Seconds for COPY of the stored uplinks and readings into tables like them, one transaction."""
    raw = reg.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("CREATE TABLE bl_uplinks (LIKE uplinks INCLUDING DEFAULTS)")
        cur.execute("CREATE TABLE bl_readings (LIKE readings INCLUDING DEFAULTS)")
        raw.commit()
        cur.execute("SELECT * FROM uplinks")
        up_cols = [c.name for c in cur.description]
        ups = cur.fetchall()
        cur.execute("SELECT * FROM readings")
        rd_cols = [c.name for c in cur.description]
        rds = cur.fetchall()
        raw.commit()
        t0 = time.perf_counter()
        for table, cols, rows in (("bl_uplinks", up_cols, ups), ("bl_readings", rd_cols, rds)):
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
        raw.commit()
        return time.perf_counter() - t0, len(ups) + len(rds)
    finally:
        raw.close()


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
    (("ingest.mqtt_uplinks_per_s",), ingest_mqtt),
    (("registry.status_100k_ms",), status_100k),
]


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--pinned":
    (res,) = {"sqlite": _ingest_sqlite, "postgres": _ingest_postgres}[sys.argv[2]]()
    res["affinity"] = sorted(os.sched_getaffinity(0))
    print(json.dumps(res))
