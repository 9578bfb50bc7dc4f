"""MQTT ingest: a persistent QoS 1 subscription, batches committed before they are acknowledged.

    ing = MqttIngester(store, "mqtt://127.0.0.1:1883", fmt="chirpstack")
    ing.run(stop_event)            # until stop_event is set; reconnects by itself

No message is lost when the broker restarts or this process dies: the session is persistent (MQTT 5, a
fixed client id, clean start off, a session expiry), every message is QoS 1, and a message is
acknowledged (PUBACK) only after the transaction that stored it committed — manual acks in paho-mqtt 2. A
message that arrived on an earlier connection is not acknowledged on the new one: the broker delivers it
again and the duplicate check stores it once. Malformed events are counted (`stats.malformed[reason]`),
logged and acknowledged: sending them again would not make them valid.

Scale-out: several ingesters with their own client ids on one shared subscription (`share="ingest"`
subscribes to `$share/ingest/TOPIC`); the broker hands each message to one of them. Mosquitto (2.0) keeps
handing a worker that died its share of the messages, held in that worker's session until it comes back
under the same client id (docs/ingest.md): nothing is lost while the session lasts, and nothing is stored
twice (acknowledged after commit, and the duplicate check).

Whether it keeps up: `lag()` says how many messages are received but not yet committed and how long the
oldest has waited, and what the broker says it holds ($SYS/broker/store/messages/count, for all its
clients). Every `heartbeat_s` that goes to the store (`TelemetryStore.heartbeat`, read by `fleet status`),
and crossing `lag_alert_s` / `backlog_alert` logs a warning and sends an `ingest_behind` alert to the
store's notifier (once; `ingest_caught_up` when it clears).
"""

import logging
import os
import queue
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
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


def new_client(client_id: str, *, clean: bool, addr: BrokerAddress, manual_ack: bool = False, v5: bool = False):
    """A paho client. MQTT 3.1.1 unless v5 (then clean start and the session expiry go with connect())."""
    import paho.mqtt.client as mqtt

    if v5:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                        manual_ack=manual_ack)
    else:
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
    behind: int = 0        # times it fell behind (lag_alert_s, backlog_alert)
    malformed: Counter = field(default_factory=Counter)
    ignored: Counter = field(default_factory=Counter)   # simulated, mac_only, other_fport: no readings
    fuota: Counter = field(default_factory=Counter)     # FUOTA answers: moved, heard, not_in_rollout

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["malformed"] = dict(self.malformed)
        d["ignored"] = dict(self.ignored)
        d["fuota"] = dict(self.fuota)
        d["malformed_total"] = sum(self.malformed.values())
        return d


SYS_HELD = "$SYS/broker/store/messages/count"  # Mosquitto: messages it holds (queued and retained), all clients
SESSION_EXPIRY_S = 7 * 86400


@dataclass(frozen=True)
class Lag:
    pending: int                      # received from the broker, not yet committed
    oldest_pending_s: float | None    # how long the oldest of them has waited here
    broker_held: int | None           # what the broker holds for all its clients, when it says
    behind: bool
    reason: str | None


class MqttIngester:
    def __init__(self, store, broker: str, *, fmt: str, topics: list[str] | None = None,
                 client_id: str = "bysans-fleet-ingest", batch_max: int = 500, batch_wait_s: float = 0.05,
                 sweep_every_s: float = 60.0, on_batch=None, share: str | None = None,
                 session_expiry_s: int = SESSION_EXPIRY_S, heartbeat_s: float = 10.0, lag_alert_s: float = 60.0,
                 backlog_alert: int | None = 50_000, watch_broker: bool = True):
        if fmt not in ("chirpstack", "tts"):
            raise IngestError(f"unknown format {fmt!r}", hint="--format chirpstack or --format tts")
        if share is not None and (not share or any(ch in share for ch in "/+#")):
            raise IngestError(f"{share!r} is not a shared-subscription group name",
                              hint="a plain name such as 'ingest' (no '/', '+' or '#')")
        self.store = store
        self.addr = broker_address(broker)
        self.fmt = fmt
        self.topics = [f"$share/{share}/{t}" if share else t for t in (topics or [TOPICS[fmt]])]
        self.client_id = client_id
        self.session_expiry_s = session_expiry_s
        self.heartbeat_s, self.lag_alert_s, self.backlog_alert = heartbeat_s, lag_alert_s, backlog_alert
        self.watch_broker = watch_broker
        self.broker_held: int | None = None
        self._arrivals: deque = deque()   # monotonic arrival time of each message not yet committed, oldest first
        self._behind = False
        self._started_at = None
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
        if self.watch_broker:
            client.subscribe(SYS_HELD, qos=0)
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
        if msg.topic.startswith("$SYS/"):
            try:
                self.broker_held = int(msg.payload)
            except ValueError:
                pass
            return
        self._arrivals.append(time.monotonic())
        self._q.put((self._gen, msg))

    def start(self):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        c = new_client(self.client_id, clean=False, addr=self.addr, manual_ack=True, v5=True)
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s  # the broker keeps the session this long while we are away
        # unacknowledged messages the broker may send at once: enough for two full batches
        props.ReceiveMaximum = min(65535, 2 * self.batch_max)
        try:
            c.connect_async(self.addr.host, self.addr.port, keepalive=30, clean_start=False, properties=props)
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
        self._started_at = datetime.now(timezone.utc)
        done, beats = threading.Event(), None
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
            if self.heartbeat_s:  # its own thread: it reports a batch that hangs, too
                beats = threading.Thread(target=self._beat_until, args=(stop, done), daemon=True,
                                         name="ingest-heartbeat")
                beats.start()
            while not stop.is_set():
                batch = self._take()
                if batch:
                    self._process(batch, stop)
                now = time.monotonic()
                if self.sweep_every_s and now >= next_sweep:
                    next_sweep = now + self.sweep_every_s
                    try:
                        self.stats.alerts += len(self.store.sweep())
                    except RegistryUnavailable as e:
                        log.warning("silence sweep skipped: %s", e)
        finally:
            self.stop()
            done.set()
            if beats is not None:
                beats.join(10)
            if self.heartbeat_s:
                self._heartbeat("stopped")

    def _beat_until(self, stop: threading.Event, done: threading.Event) -> None:
        while not (stop.is_set() or done.is_set()):
            self._heartbeat("running")
            done.wait(self.heartbeat_s)

    # -- keeping up ----------------------------------------------------------------------------------

    def lag(self) -> Lag:
        """Where this ingester stands now (see the module's doc)."""
        arrivals = self._arrivals
        pending = len(arrivals)
        try:
            oldest = round(time.monotonic() - arrivals[0], 3) if pending else None
        except IndexError:  # emptied meanwhile
            oldest = None
        held = self.broker_held
        reasons = []
        if oldest is not None and self.lag_alert_s and oldest > self.lag_alert_s:
            reasons.append(f"{pending} messages waiting, the oldest for {oldest:.0f} s")
        if held is not None and self.backlog_alert and held > self.backlog_alert:
            reasons.append(f"the broker holds {held} messages")
        return Lag(pending, oldest, held, bool(reasons), "; ".join(reasons) or None)

    def _heartbeat(self, state: str) -> None:
        lag = self.lag()
        self._alert_if_behind(lag)
        beat = getattr(self.store, "heartbeat", None)
        if beat is None:
            return
        st = self.stats
        try:
            beat(dict(client_id=self.client_id, host=socket.gethostname()[:255], pid=os.getpid(),
                      broker=str(self.addr), topics=", ".join(self.topics), state=state,
                      connected=self.connected.is_set(), started_at=self._started_at, heartbeat_s=self.heartbeat_s,
                      received=st.received, stored=st.stored, duplicates=st.duplicates,
                      malformed=sum(st.malformed.values()), ignored=sum(st.ignored.values()), pending=lag.pending,
                      oldest_pending_s=lag.oldest_pending_s, broker_held=lag.broker_held, behind=lag.behind,
                      behind_reason=lag.reason))
        except Exception as e:  # noqa: BLE001 - a heartbeat never stops ingest; the status shows it missing
            log.warning("heartbeat not stored: %s", e)

    def _alert_if_behind(self, lag: Lag) -> None:
        if lag.behind == self._behind:
            return
        self._behind = lag.behind
        if lag.behind:
            self.stats.behind += 1
            log.warning("ingest %s is behind: %s", self.client_id, lag.reason)
        else:
            log.warning("ingest %s caught up", self.client_id)
        notifier = getattr(self.store, "notifier", None)
        if notifier is not None:
            notifier.send([{"kind": "ingest_behind" if lag.behind else "ingest_caught_up",
                            "severity": "warning", "state": "open" if lag.behind else "resolved",
                            "message": lag.reason or "caught up", "client_id": self.client_id,
                            "pending": lag.pending, "oldest_pending_s": lag.oldest_pending_s,
                            "broker_held": lag.broker_held, "kommune_kode": "all",
                            "opened_at": datetime.now(timezone.utc).isoformat()}])

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
        self.stats.fuota.update(result.fuota)
        self.stats.alerts += len(result.alerts)
        self.stats.batches += 1
        client, gen_now = self._client, self._gen
        if client is not None:
            for gen, mid, qos in acks:
                if gen == gen_now and qos > 0:
                    client.ack(mid, qos)
        for _ in batch:
            self._arrivals.popleft()
        if self.on_batch is not None:
            self.on_batch(result, self.stats)
