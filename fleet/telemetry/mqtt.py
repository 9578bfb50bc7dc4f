"""MQTT ingest: a persistent QoS 1 subscription, batches committed before they are acknowledged.

    ing = MqttIngester(store, "mqtt://127.0.0.1:1883", fmt="chirpstack")
    ing.run(stop_event)            # until stop_event is set; reconnects by itself

No message is lost when the broker restarts or this process dies: the session is persistent (a fixed
client id, clean session off), every message is QoS 1, and a message is acknowledged (PUBACK) only after
the transaction that stored it committed — manual acks in paho-mqtt 2. A message that arrived on an
earlier connection is not acknowledged on the new one: the broker delivers it again and the duplicate
check stores it once. Malformed events are counted (`stats.malformed[reason]`), logged and acknowledged:
sending them again would not make them valid.
"""

import logging
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..errors import BrokerUnavailable, IngestError, MalformedUplink, RegistryUnavailable
from .events import FORMATS, TOPICS, parse_event

log = logging.getLogger("fleet.telemetry.mqtt")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self):
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def broker_address(url: str) -> BrokerAddress:
    """mqtt://[user[:password]@]host[:port] or mqtts://...; credentials may come from FLEET_MQTT_USERNAME /
    FLEET_MQTT_PASSWORD instead (keeps them out of the process list)."""
    p = urlsplit(url if "://" in url else f"mqtt://{url}")
    if p.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not p.hostname:
        raise IngestError(f"'{p.scheme}://{p.hostname or ''}' is not a broker URL",
                          hint="use mqtt://HOST:PORT, e.g. mqtt://127.0.0.1:1883 (mqtts:// for TLS)")
    tls = p.scheme in ("mqtts", "ssl")
    try:
        port = p.port or (8883 if tls else 1883)
    except ValueError:
        raise IngestError("the broker URL has a bad port") from None
    user = unquote(p.username) if p.username else os.environ.get("FLEET_MQTT_USERNAME")
    pw = unquote(p.password) if p.password else os.environ.get("FLEET_MQTT_PASSWORD")
    return BrokerAddress(p.hostname, port, tls, user, pw)


def new_client(client_id: str, *, clean: bool, addr: BrokerAddress, manual_ack: bool = False):
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                    protocol=mqtt.MQTTv311, manual_ack=manual_ack)
    if addr.username:
        c.username_pw_set(addr.username, addr.password)
    if addr.tls:
        c.tls_set()
    c.reconnect_delay_set(min_delay=1, max_delay=15)
    c.enable_logger(logging.getLogger("fleet.telemetry.paho"))
    return c


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    readings: int = 0
    duplicates: int = 0
    alerts: int = 0
    batches: int = 0
    connects: int = 0
    disconnects: int = 0
    malformed: Counter = field(default_factory=Counter)
    ignored: Counter = field(default_factory=Counter)   # simulated, mac_only, other_fport: no readings

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["malformed"] = dict(self.malformed)
        d["ignored"] = dict(self.ignored)
        d["malformed_total"] = sum(self.malformed.values())
        return d


class MqttIngester:
    def __init__(self, store, broker: str, *, fmt: str, topics: list[str] | None = None,
                 client_id: str = "bysans-fleet-ingest", batch_max: int = 500, batch_wait_s: float = 0.05,
                 sweep_every_s: float = 60.0, on_batch=None):
        if fmt not in ("chirpstack", "tts"):
            raise IngestError(f"unknown format {fmt!r}", hint="--format chirpstack or --format tts")
        self.store = store
        self.addr = broker_address(broker)
        self.fmt = fmt
        self.topics = list(topics or [TOPICS[fmt]])
        self.client_id = client_id
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.sweep_every_s = sweep_every_s
        self.on_batch = on_batch  # called with (IngestResult, IngestStats) after each commit (tests, CLI)
        self.stats = IngestStats()
        self.connected = threading.Event()
        self._q: queue.Queue = queue.Queue()
        self._gen = 0
        self._client = None
        self._stopping = False

    # paho callbacks (its network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("broker %s refused the connection: %s", self.addr, reason_code)
            return
        self._gen += 1
        self.stats.connects += 1
        for t in self.topics:
            client.subscribe(t, qos=1)
        log.info("connected to %s (session present: %s), subscribed to %s", self.addr,
                 getattr(flags, "session_present", "?"), ", ".join(self.topics))
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if self._stopping:
            log.info("disconnected from %s", self.addr)
            return
        self.stats.disconnects += 1
        log.warning("disconnected from %s (%s); reconnecting", self.addr, reason_code)

    def _on_message(self, client, userdata, msg):
        self._q.put((self._gen, msg))

    def start(self):
        c = new_client(self.client_id, clean=False, addr=self.addr, manual_ack=True)
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        try:
            c.connect_async(self.addr.host, self.addr.port, keepalive=30)
        except (OSError, ValueError) as e:
            raise BrokerUnavailable(f"cannot reach the broker at {self.addr}: {e}") from None
        self._stopping = False
        c.loop_start()  # connects, and reconnects after any loss, by itself
        self._client = c
        return self

    def stop(self):
        if self._client is not None:
            self._stopping = True
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def run(self, stop: threading.Event, *, connect_timeout: float | None = None):
        """Ingests until `stop` is set. With connect_timeout, BrokerUnavailable if the first connection
        does not come up in time."""
        if self._client is None:
            self.start()
        try:
            if connect_timeout is not None:
                end = time.monotonic() + connect_timeout
                while not self.connected.wait(0.1):  # a stop while waiting ends the wait too
                    if stop.is_set():
                        return
                    if time.monotonic() >= end:
                        raise BrokerUnavailable(f"no connection to the broker at {self.addr} within "
                                                f"{connect_timeout:g} s")
            next_sweep = time.monotonic() + self.sweep_every_s
            while not stop.is_set():
                batch = self._take()
                if batch:
                    self._process(batch, stop)
                if self.sweep_every_s and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.sweep_every_s
                    try:
                        self.stats.alerts += len(self.store.sweep())
                    except RegistryUnavailable as e:
                        log.warning("silence sweep skipped: %s", e)
        finally:
            self.stop()

    def _take(self) -> list:
        try:
            first = self._q.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_max:
            left = deadline - time.monotonic()
            try:
                batch.append(self._q.get(timeout=left) if left > 0 else self._q.get_nowait())
            except queue.Empty:
                break
        return batch

    def _process(self, batch, stop):
        self.stats.received += len(batch)
        uplinks, acks = [], []
        for gen, msg in batch:
            acks.append((gen, msg.mid, msg.qos))
            try:
                uplinks.append(parse_event(msg.payload, self.fmt))
            except MalformedUplink as e:
                self.stats.malformed[e.reason] += 1
                log.warning("malformed event on %s: %s", msg.topic, e.message)
        while True:
            try:
                result = self.store.ingest(uplinks)
                break
            except RegistryUnavailable as e:  # keep the batch, unacknowledged, and try again
                log.warning("registry unavailable, retrying in 2 s: %s", e)
                if stop.wait(2.0):
                    return  # not acknowledged: the broker delivers these again next time
        for reason, message, _eui in result.rejected:
            self.stats.malformed[reason] += 1
            log.warning("rejected uplink: %s", message)
        self.stats.stored += result.stored
        self.stats.readings += result.readings
        self.stats.duplicates += result.duplicates
        self.stats.ignored.update(result.ignored)
        self.stats.alerts += len(result.alerts)
        self.stats.batches += 1
        client, gen_now = self._client, self._gen
        if client is not None:
            for gen, mid, qos in acks:
                if gen == gen_now and qos > 0:
                    client.ack(mid, qos)
        if self.on_batch is not None:
            self.on_batch(result, self.stats)
