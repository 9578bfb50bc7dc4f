"""`fleet ingest mqtt` against real Mosquitto: ChirpStack- and TTS-shaped events, malformed ones counted
while ingest goes on, a duplicate stored once, and a broker restart that loses no QoS 1 message (on a
broker of the test's own, so the shared one is never restarted)."""

import base64
import getpass
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from fleet.registry import Registry
from fleet.store.models import UplinkRow
from fleet.telemetry import TelemetryStore
from fleet.telemetry.mqtt import MqttIngester
from lab import telemetry_samples as S
from telemetry_support import enroll, waste_event

MOSQUITTO = "/usr/sbin/mosquitto"


@pytest.fixture
def reg(tmp_path):
    r = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}", key=os.urandom(32))
    yield r
    r.close()


def publish(host, port, items, qos=1):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    c.connect(host, port)
    c.loop_start()
    try:
        for topic, payload in items:
            c.publish(topic, payload if isinstance(payload, (bytes, str)) else json.dumps(payload),
                      qos=qos).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


def forget_session(host, port, client_id):
    """Ends a persistent session on a shared broker (connect once with a clean session)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        c.connect(host, port)
        c.loop_start()
        time.sleep(0.2)
        c.disconnect()
        c.loop_stop()
    except OSError:
        pass


def wait_for(cond, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class Running:
    def __init__(self, ingester):
        self.ing, self.stop = ingester, threading.Event()
        self.thread = threading.Thread(target=ingester.run, args=(self.stop,), daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_for(self.ing.connected.is_set, what="the ingester to connect")
        return self.ing

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def stored(reg):
    with reg.db.read() as s:
        return s.scalar(select(func.count()).select_from(UplinkRow))


@pytest.mark.mqtt
def test_chirpstack_events_malformed_ones_and_a_duplicate(mqtt_broker, reg, caplog):
    host, port = mqtt_broker
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    dev = enroll(reg)
    ing = MqttIngester(TelemetryStore(reg), f"mqtt://{host}:{port}", fmt="chirpstack",
                       topics=[f"{prefix}/application/+/device/+/event/up"], client_id=f"{prefix}-ingest")
    topic = f"{prefix}/" + S.chirpstack_topic(dev.dev_eui)
    good = [waste_event(dev.dev_eui, n) for n in (1, 2, 3)]
    items = [(topic, good[0]), (topic, "{not json"),
             (topic, dict(waste_event(dev.dev_eui, 4), data="%%% not base64")),
             (topic, waste_event("70B3D5FFFE0000AA", 5)),           # unknown device
             (topic, waste_event(dev.dev_eui, 6, f_port=7)),         # another FPort: ignored
             (topic, good[1]), (topic, good[1]),                     # a duplicate delivery
             (topic, good[2])]
    caplog.set_level(logging.WARNING, logger="fleet.telemetry.mqtt")
    try:
        with Running(ing):
            publish(host, port, items)
            wait_for(lambda: ing.stats.received == len(items), what="every message")
            wait_for(lambda: ing.stats.stored + ing.stats.duplicates == 4, what="the batches to commit")
    finally:
        forget_session(host, port, f"{prefix}-ingest")
    assert stored(reg) == 3 and ing.stats.stored == 3 and ing.stats.duplicates == 1
    assert dict(ing.stats.malformed) == {"not_json": 1, "bad_base64": 1, "unknown_device": 1}
    assert dict(ing.stats.ignored) == {"other_fport": 1}
    assert sum("malformed" in r.message or "rejected" in r.message for r in caplog.records) == 3


@pytest.mark.mqtt
def test_tts_events(mqtt_broker, reg):
    host, port = mqtt_broker
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    dev = enroll(reg)
    store = TelemetryStore(reg)
    ing = MqttIngester(store, f"mqtt://{host}:{port}", fmt="tts", topics=[f"{prefix}/v3/+/devices/+/up"],
                       client_id=f"{prefix}-ingest")
    topic = f"{prefix}/" + S.tts_topic(dev.dev_eui)
    try:
        with Running(ing):
            publish(host, port, [(topic, waste_event(dev.dev_eui, n, fmt="tts", fill_bp=8200, firmware_version="0.1.0"))
                                 for n in (7, 9)])
            wait_for(lambda: ing.stats.stored == 2, what="two uplinks")
    finally:
        forget_session(host, port, f"{prefix}-ingest")
    from test_registry_support import AARHUS
    h = store.health(AARHUS, dev.dev_eui)
    assert h["lost_uplinks"] == 1 and h["firmware_version"] is None and h["fill_bp"] == 8200
    assert [a["kind"] for a in store.alerts(AARHUS)] == ["full"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnBroker:
    """A Mosquitto of this test's own, with persistence in tmp_path, that it may stop and start."""

    def __init__(self, tmp_path, extra: str = ""):
        """extra: more configuration lines (Mosquitto's defaults otherwise)."""
        self.port = _free_port()
        (tmp_path / "mq").mkdir()
        self.conf = tmp_path / "mosquitto.conf"
        # as root, Mosquitto would drop to the 'mosquitto' user, which cannot write the test's directory
        user = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"{user}listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {tmp_path / 'mq'}/\nautosave_interval 1\n"
                             f"log_dest file {tmp_path / 'mosquitto.log'}\n{extra}\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("own mosquitto did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # a clean stop: Mosquitto writes its persistence file
            self.proc.wait(10)


class GatedStore:
    """The real store, but a batch waits at the gate before it is stored (the broker can die meanwhile)."""

    def __init__(self, store):
        self.store, self.gate, self.waiting = store, threading.Event(), threading.Event()
        self.gate.set()

    def ingest(self, uplinks, **kw):
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(30)
        return self.store.ingest(uplinks, **kw)

    def sweep(self, *a, **kw):
        return self.store.sweep(*a, **kw)

    def __getattr__(self, name):  # heartbeat, notifier: the real store's
        return getattr(self.store, name)


@pytest.mark.mqtt
def test_broker_restart_loses_no_qos1_message(tmp_path, reg, program):
    program(MOSQUITTO, "mosquitto")
    broker = OwnBroker(tmp_path)
    broker.start()
    dev = enroll(reg)
    store = GatedStore(TelemetryStore(reg))
    ing = MqttIngester(store, f"mqtt://127.0.0.1:{broker.port}", fmt="chirpstack", client_id="restart-test")
    topic = S.chirpstack_topic(dev.dev_eui)
    events = [waste_event(dev.dev_eui, n) for n in range(1, 16)]
    try:
        with Running(ing):
            publish("127.0.0.1", broker.port, [(topic, e) for e in events[:5]])
            wait_for(lambda: stored(reg) == 5, what="the first five")
            # five more arrive, but the broker goes down before they are stored and acknowledged
            store.gate.clear()
            publish("127.0.0.1", broker.port, [(topic, e) for e in events[5:10]])
            assert store.waiting.wait(20)
            broker.stop()
            wait_for(lambda: not ing.connected.is_set(), what="the ingester to notice")
            store.gate.set()
            # the broker comes back; five more are published before the ingester is back
            broker.start()
            publish("127.0.0.1", broker.port, [(topic, e) for e in events[10:]])
            wait_for(lambda: stored(reg) == 15, timeout=40, what="all fifteen after the restart")
            assert ing.stats.connects >= 2
            wait_for(lambda: ing.stats.duplicates >= 1, what="the unacknowledged ones again")
    finally:
        broker.stop()
    assert stored(reg) == 15   # every uplink once: the redelivered ones were duplicates
    assert ing.stats.stored == 15


def test_a_normal_stop_is_not_reported_as_a_lost_connection(mqtt_broker, reg, caplog):
    host, port = mqtt_broker
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    ing = MqttIngester(TelemetryStore(reg), f"mqtt://{host}:{port}", fmt="chirpstack",
                       topics=[f"{prefix}/application/+/device/+/event/up"], client_id=f"{prefix}-ingest")
    try:
        with caplog.at_level(logging.INFO, logger="fleet.telemetry"):
            with Running(ing):
                assert ing.connected.wait(10)
            time.sleep(0.3)  # paho's thread reports the disconnect
    finally:
        forget_session(host, port, f"{prefix}-ingest")
    assert ing.stats.disconnects == 0
    assert not [r for r in caplog.records if "reconnecting" in r.getMessage()]


def start_cli(tmp_path, db, key, host, port, prefix, *extra):
    env = dict(os.environ, FLEET_SECRET_KEY=base64.b64encode(key).decode(), FLEET_DB=db)
    err = open(tmp_path / f"{prefix}.err", "w+")
    p = subprocess.Popen([sys.executable, "-c", "from fleet.cli import main; main()", "ingest", "mqtt", "--broker", f"mqtt://{host}:{port}",
                          "--format", "chirpstack", "--topic", f"{prefix}/application/+/device/+/event/up",
                          "--client-id", f"{prefix}-ingest", *extra], env=env, stdout=subprocess.PIPE, stderr=err,
                         text=True)
    return p, err


@pytest.mark.mqtt
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_ingest_stops_at_once_on_sigterm_and_ctrl_c_with_its_counters(mqtt_broker, tmp_path, sig, code):
    """A --duration far off does not keep the process: the signal stops it within a second or two, after
    the counters (JSON on stdout here); 0 after SIGTERM, 130 after Ctrl-C."""
    host, port = mqtt_broker
    key = os.urandom(32)
    db = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    reg = Registry.open(db, key=key)
    dev = enroll(reg)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    p, err = start_cli(tmp_path, db, key, host, port, prefix, "--duration", "600", "--json")
    try:
        # the command has subscribed once the broker holds its session: publish, then wait for the rows
        wait_for(lambda: "ingesting" in (tmp_path / f"{prefix}.err").read_text(), what="the command to start")
        topic = f"{prefix}/" + S.chirpstack_topic(dev.dev_eui)
        deadline = time.monotonic() + 20
        n = 0
        while stored(reg) < 1 and time.monotonic() < deadline:  # until its subscription is in place
            n += 1
            publish(host, port, [(topic, waste_event(dev.dev_eui, n))])
            time.sleep(0.3)
        assert stored(reg) >= 1
        time.sleep(0.5)
        t0 = time.monotonic()
        p.send_signal(sig)
        out, _ = p.communicate(timeout=10)
        took = time.monotonic() - t0
        in_db = stored(reg)
    finally:
        if p.poll() is None:
            p.kill()
        reg.close()
        forget_session(host, port, f"{prefix}-ingest")
    assert p.returncode == code, (tmp_path / f"{prefix}.err").read_text()
    assert took < 2.0, f"{took:.1f} s"
    counters = json.loads(out)
    # what it printed is what it stored (a message published before its subscription was in place is not
    # for this session: only the ones after)
    assert counters["stored"] == in_db >= 1 and counters["received"] <= n
