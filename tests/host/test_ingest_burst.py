"""No silent loss at the broker: a burst bigger than Mosquitto's default queue (1000 messages per client),
while ingest is away or stuck, on a Mosquitto of the test's own with its defaults (the failure mode: most
of the burst is gone, and nothing says so) and with the configuration docs/ingest.md gives (read from the
document itself: nothing lost). Whether ingest keeps up: the lag figure, the heartbeat `fleet status`
reads, and the alert. Scale-out: workers on one MQTT 5 shared subscription against PostgreSQL, one killed
(SIGKILL) in the middle of a burst: nothing lost, nothing stored twice."""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from fleet.registry import NewDevice, Registry
from fleet.store.models import ReadingRow, UplinkRow
from fleet.telemetry import TelemetryStore, fleet_status
from fleet.telemetry.mqtt import MqttIngester
from fleet.telemetry.status import ingest_line
from lab import telemetry_samples as S
from provisioning.identity import new_identity
from telemetry_support import waste_event
from test_ingest_mqtt import MOSQUITTO, GatedStore, OwnBroker, Running, forget_session, stored, wait_for
from test_registry_support import AARHUS, ADMIN, pg_schema  # noqa: F401 (fixture)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"
BURST = 4000


def documented_config() -> str:
    """The ```conf block of docs/ingest.md's "A broker that holds a burst", as a user copies it."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## A broker that holds a burst", 1)[1]
    block = re.search(r"```conf\n(.*?)```", section, re.S)
    assert block, "docs/ingest.md has no ```conf block in its broker section"
    conf = block.group(1)
    assert "max_queued_messages" in conf and "persistence true" in conf
    return conf


def enroll_many(reg, n):
    idents = [new_identity() for _ in range(n)]
    reg.add_devices(ADMIN, [(NewDevice(kommune="751", site=f"bin {i}", kind="waste", board="virtual"), ident)
                            for i, ident in enumerate(idents)])
    return [i.dev_eui for i in idents]


def burst(euis, n, start=0):
    """n ChirpStack events, round robin over the devices, each (DevEUI, FCnt) once."""
    frame = base64.b64encode(S.waste_frame(S.filling_bin(3000), fill_rate_bp_h=150)).decode()
    out = []
    for i in range(start, start + n):
        eui, fcnt = euis[i % len(euis)], i // len(euis) + 1
        ev = waste_event(eui, fcnt)
        ev["data"] = frame
        out.append((S.chirpstack_topic(eui), json.dumps(ev)))
    return out


def publish_fast(port, items, pace_every=0, pace_s=0.0):
    """QoS 1, many in flight at once; returns when the broker acknowledged every one."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        infos = []
        for i, (topic, payload) in enumerate(items):
            infos.append(c.publish(topic, payload, qos=1))
            if pace_every and i % pace_every == pace_every - 1:
                time.sleep(pace_s)
        for info in infos:
            info.wait_for_publish(30)
    finally:
        c.disconnect()
        c.loop_stop()


def settle(get, quiet_s=8.0, timeout=120.0, whole=BURST):
    """Waits until get() reaches the whole burst, or stops changing for quiet_s (a loaded 2-core machine can
    stall the ingester for seconds: a short quiet spell is not the end); returns its value."""
    end = time.monotonic() + timeout
    last, since = get(), time.monotonic()
    while time.monotonic() < end and last != whole:
        time.sleep(0.2)
        now = get()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
    return last


@pytest.fixture
def reg(tmp_path):
    r = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}", key=os.urandom(32))
    yield r
    r.close()


@pytest.mark.mqtt
@pytest.mark.parametrize("config", ["mosquitto defaults", "docs/ingest.md"])
@pytest.mark.parametrize("ingest", ["away", "stuck"])
def test_a_burst_beyond_the_default_queue(tmp_path, reg, program, config, ingest):
    program(MOSQUITTO, "mosquitto")
    broker = OwnBroker(tmp_path, documented_config() if config == "docs/ingest.md" else "")
    broker.start()
    euis = enroll_many(reg, 40)
    store = GatedStore(TelemetryStore(reg))
    url = f"mqtt://127.0.0.1:{broker.port}"
    try:
        if ingest == "away":  # its session exists (subscribed once), then it is down during the burst
            with Running(MqttIngester(store, url, fmt="chirpstack", client_id="burst", heartbeat_s=0)):
                time.sleep(0.3)
            publish_fast(broker.port, burst(euis, BURST))
            ing = MqttIngester(store, url, fmt="chirpstack", client_id="burst", heartbeat_s=0)
            with Running(ing):
                got = settle(lambda: stored(reg))
        else:  # connected, but the database does not answer while the burst arrives
            ing = MqttIngester(store, url, fmt="chirpstack", client_id="burst", heartbeat_s=0)
            with Running(ing):
                store.gate.clear()
                publish_fast(broker.port, burst(euis, BURST))
                assert store.waiting.wait(20)
                store.gate.set()
                got = settle(lambda: stored(reg))
    finally:
        broker.stop()
    if config == "docs/ingest.md":
        assert got == BURST and ing.stats.malformed == {}
    else:
        # the failure mode: Mosquitto queued 1000 for the session (plus what was in flight to a connected
        # ingester, up to its Receive Maximum of 1000) and dropped the rest, telling no one
        assert got < BURST - 1000, got
        assert ing.stats.malformed == {} and ing.stats.received == got


class Collect:
    def __init__(self):
        self.sent = []

    def send(self, alerts):
        self.sent += alerts


@pytest.mark.mqtt
def test_the_lag_figure_the_status_line_and_the_alert(mqtt_broker, reg):
    host, port = mqtt_broker
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    euis = enroll_many(reg, 3)
    notes = Collect()
    store = GatedStore(TelemetryStore(reg, notifier=notes))
    ing = MqttIngester(store, f"mqtt://{host}:{port}", fmt="chirpstack", client_id=f"{prefix}-ingest",
                       topics=[f"{prefix}/application/+/device/+/event/up"], heartbeat_s=0.2, lag_alert_s=1.0,
                       backlog_alert=None)
    items = [(f"{prefix}/{t}", p) for t, p in burst(euis, 6)]
    try:
        with Running(ing):
            wait_for(lambda: fleet_status(reg, ADMIN)["ingest"], what="the first heartbeat")
            assert fleet_status(reg, ADMIN)["ingest"][0]["status"] == "ok"
            store.gate.clear()
            publish_fast(port, items)
            assert store.waiting.wait(20)
            wait_for(lambda: ing.lag().behind, what="the lag to pass 1 s")
            lag = ing.lag()
            assert lag.pending == 6 and lag.oldest_pending_s > 1.0
            wait_for(lambda: fleet_status(reg, ADMIN)["ingest"][0]["status"] == "behind", what="a heartbeat")
            st = fleet_status(reg, ADMIN)
            w = st["ingest"][0]
            assert w["pending"] == 6 and w["oldest_pending_s"] > 1.0 and w["client_id"] == f"{prefix}-ingest"
            assert ingest_line(st["ingest"]).startswith(f"ingest: BEHIND (1 of 1 workers): {prefix}-ingest 6 messages")
            assert [a["kind"] for a in notes.sent] == ["ingest_behind"]
            # a kommune's operator sees whether ingest keeps up, not where it runs
            mine = fleet_status(reg, AARHUS)["ingest"][0]
            assert mine["status"] == "behind" and not {"host", "pid", "broker", "topics"} & set(mine)
            assert {"host", "pid", "broker", "topics"} <= set(w)
            store.gate.set()
            wait_for(lambda: stored(reg) == 6, what="the six")
            wait_for(lambda: fleet_status(reg, ADMIN)["ingest"][0]["status"] == "ok", what="caught up")
            assert [a["kind"] for a in notes.sent] == ["ingest_behind", "ingest_caught_up"]
            assert ing.lag().pending == 0 and ing.stats.behind == 1
            # no heartbeat for three intervals: down, whatever it said last
            later = fleet_status(reg, ADMIN, now=datetime.now(timezone.utc) + timedelta(seconds=30))
            assert later["ingest"][0]["status"] == "down" and "down, no heartbeat" in ingest_line(later["ingest"])
    finally:
        forget_session(host, port, f"{prefix}-ingest")
    st = fleet_status(reg, ADMIN)
    assert st["ingest"][0]["status"] == "stopped" and ingest_line(st["ingest"]) == "ingest: stopped"




def worker(tmp_path, url, key, port, client_id):
    env = dict(os.environ, FLEET_SECRET_KEY=base64.b64encode(key).decode(), FLEET_DB=url)
    log = open(tmp_path / f"{client_id}-{uuid.uuid4().hex[:4]}.err", "w")
    return subprocess.Popen([sys.executable, "-c", "from fleet.cli import main; main()", "ingest", "mqtt",
                             "--broker", f"mqtt://127.0.0.1:{port}", "--format", "chirpstack", "--share", "ingest",
                             "--client-id", client_id, "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=log, text=True)


@pytest.mark.mqtt
@pytest.mark.postgres
def test_shared_subscription_workers_one_killed_mid_burst(tmp_path, pg_schema, program):
    """Two workers on $share/ingest/..., PostgreSQL. One is SIGKILLed while the burst is being stored: the
    other goes on storing its share; the killed one's share (in flight and still arriving) waits in its
    session at the broker (Mosquitto 2.0 does not hand it to the survivor) until it is started again under
    its client id. Then every uplink is stored, once."""
    program(MOSQUITTO, "mosquitto")
    n = 3000
    broker = OwnBroker(tmp_path, documented_config())
    broker.start()
    key = os.urandom(32)
    reg = Registry.open(pg_schema, key=key)
    procs = []
    try:
        euis = enroll_many(reg, 50)
        w1, w2 = worker(tmp_path, pg_schema, key, broker.port, "w1"), worker(tmp_path, pg_schema, key, broker.port, "w2")
        procs += [w1, w2]
        wait_for(lambda: len([w for w in fleet_status(reg, ADMIN)["ingest"] if w["connected"]]) == 2,
                 timeout=30, what="both workers to connect")
        time.sleep(0.5)  # their SUBSCRIBE right after CONNACK
        pub = threading.Thread(target=publish_fast, args=(broker.port, burst(euis, n)),
                               kwargs=dict(pace_every=100, pace_s=0.05))
        pub.start()
        wait_for(lambda: stored(reg) >= 400, timeout=60, what="the burst to be under way")
        w1.send_signal(signal.SIGKILL)
        w1.wait(10)
        at_kill = stored(reg)
        pub.join(60)
        assert not pub.is_alive()
        while_down = settle(lambda: stored(reg))
        # the survivor went on, and stored its share; the dead worker's share waits for it
        assert at_kill < while_down < n
        w1b = worker(tmp_path, pg_schema, key, broker.port, "w1")
        procs.append(w1b)
        wait_for(lambda: stored(reg) == n, timeout=90, what="every uplink once w1 is back")
        time.sleep(1.0)  # anything redelivered meanwhile is counted as a duplicate, not stored
        for p in (w1b, w2):
            p.send_signal(signal.SIGTERM)
        outs = [json.loads(p.communicate(timeout=15)[0]) for p in (w1b, w2)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        broker.stop()
    with reg.db.read() as s:
        uplinks = s.scalar(select(func.count()).select_from(UplinkRow))
        keys = s.scalar(select(func.count(func.distinct(UplinkRow.dedup_key))))
        readings = s.scalar(select(func.count()).select_from(ReadingRow))
        reading_keys = s.execute(select(ReadingRow.uplink_id, ReadingRow.seq).group_by(ReadingRow.uplink_id,
                                                                                        ReadingRow.seq)).all()
    reg.close()
    assert uplinks == keys == n                  # nothing lost, no uplink twice
    assert readings == len(reading_keys) == 8 * n  # no reading twice
    w1b_out, w2_out = outs
    print(f"stored at the kill {at_kill}, while w1 was down {while_down}, after it came back {n}; "
          f"w1 again stored {w1b_out['stored']} ({w1b_out['duplicates']} duplicates), w2 {w2_out['stored']}")
    assert w1b_out["stored"] > 0 and w2_out["stored"] > 0
    assert w1b_out["malformed_total"] == w2_out["malformed_total"] == 0
