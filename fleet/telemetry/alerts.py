"""Alert rules, evaluated on a device's health after each uplink and by the silence sweep, and the places
a new alert is sent to (a webhook, an MQTT topic).

Kinds: full (fill at or above `full_bp`), fire (the node's fire flag, or `fire_cdeg` reached), tilt (tilted
or fallen), silent (nothing for `silent_intervals` expected intervals), battery (below `battery_mv`),
lost_uplinks (more than `lost_ratio` of the expected uplinks missing, at least `lost_min`). An alert stays
open while its condition holds and is resolved when it clears; a new alert is sent once, when it opens.
"""

import json
import logging
import queue
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import AlertDeliveryError

log = logging.getLogger("fleet.telemetry.alerts")

SEVERITY = {"fire": "critical", "tilt": "warning", "full": "warning", "silent": "warning", "battery": "warning",
            "lost_uplinks": "warning", "wrong_kommune": "critical"}


MIN_INTERVAL_S = 60  # the shortest interval between uplinks a device is assumed to keep


@dataclass(frozen=True)
class AlertRules:
    full_bp: int = 8000            # 80.00 %
    fire_cdeg: int = 7000          # 70.0 degC in a bin is a fire, flag or not
    battery_mv: int = 3400
    silent_intervals: int = 3
    default_interval_s: int = 7200  # a waste node's batch: 8 readings every 15 min
    lost_ratio: float = 0.2
    lost_min: int = 5


def conditions(h: dict, rules: AlertRules) -> dict[str, tuple[bool, float | None, str]]:
    """kind -> (holds, value, message) for the health row `h` (a dict of DeviceHealth columns)."""
    out = {}
    fill = h.get("fill_bp")
    if fill is not None:
        full_at = h.get("full_at")
        msg = f"bin is {fill / 100:.0f} % full"
        out["full"] = (fill >= rules.full_bp, fill / 100, msg)
        if full_at is not None and fill < rules.full_bp:
            out["full"] = (False, fill / 100, msg + f", full at {full_at:%Y-%m-%d %H:%M} UTC")
    temp, fire = h.get("temp_cdeg"), h.get("fire")
    if fire is not None or temp is not None:
        hot = temp is not None and temp >= rules.fire_cdeg
        out["fire"] = (bool(fire) or hot, temp / 100 if temp is not None else None,
                       "fire alarm" + (f": {temp / 100:.1f} degC in the bin" if temp is not None else ""))
    if h.get("tilt") is not None:
        out["tilt"] = (bool(h["tilt"]), None, "tilted or fallen over")
    batt = h.get("battery_mv")
    if batt is not None:
        out["battery"] = (batt < rules.battery_mv, batt / 1000, f"battery low: {batt / 1000:.2f} V")
    lost, ups = h.get("lost_uplinks") or 0, h.get("uplinks") or 0
    if ups or lost:
        ratio = lost / (lost + ups)
        out["lost_uplinks"] = (lost >= rules.lost_min and ratio > rules.lost_ratio, round(ratio * 100, 1),
                               f"{lost} of {lost + ups} uplinks lost ({ratio * 100:.0f} %)")
    return out


class Notifier:
    """Sends new alerts (dicts, see store.alert_dict) somewhere, never blocking ingest: a background
    thread delivers them, and a failure is logged, not raised."""

    def __init__(self):
        self._q: queue.Queue = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        self.sent = 0
        self.failed = 0

    def send(self, alerts) -> None:
        for a in alerts:
            try:
                self._q.put_nowait(a)
            except queue.Full:
                self.failed += 1
                log.warning("alert queue full: alert %s on %s not sent", a.get("kind"), a.get("dev_eui"))

    def _run(self):
        while True:
            a = self._q.get()
            if a is None:
                return
            try:
                self._deliver(a)
                self.sent += 1
            except Exception as e:  # a webhook down must not stop ingest
                self.failed += 1
                log.warning("alert %s on %s not delivered: %s", a.get("kind"), a.get("dev_eui"), e)

    def close(self, timeout=5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _deliver(self, alert: dict) -> None:
        raise NotImplementedError


class WebhookNotifier(Notifier):
    """POSTs each new alert as JSON ({"event": "alert.opened", "alert": {...}}) to `url`."""

    def __init__(self, url: str, *, timeout: float = 5.0, headers: dict | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AlertDeliveryError(f"the webhook {parts.scheme}://{parts.hostname or ''}... is not an http(s) URL")
        self.url, self.timeout, self.headers = url, timeout, dict(headers or {})
        super().__init__()

    def __repr__(self):
        p = urlsplit(self.url)
        return f"<WebhookNotifier {p.scheme}://{p.hostname}:{p.port or ''}{p.path}>"  # no credentials, no query

    def _deliver(self, alert):
        body = json.dumps({"event": "alert.opened", "alert": alert}, default=str).encode()
        import urllib.error  # noqa: F401  (loaded when a webhook is sent: `fleet status` never does)
        import urllib.request

        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **self.headers})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            resp.read()


class MqttNotifier(Notifier):
    """Publishes each new alert as JSON, QoS 1, on `topic` ("{kommune}" and "{kind}" are filled in)."""

    def __init__(self, broker: str, topic: str, *, client_id: str | None = None):
        from .mqtt import broker_address, new_client

        if not topic or "+" in topic or "#" in topic:
            raise AlertDeliveryError(f"{topic!r} is not a topic to publish to (no wildcards)")
        self.topic = topic
        addr = broker_address(broker)
        self._client = new_client(client_id or "", clean=True, addr=addr)
        self._client.connect_async(addr.host, addr.port, keepalive=30)
        self._client.loop_start()
        super().__init__()

    def _deliver(self, alert):
        topic = self.topic.replace("{kommune}", str(alert.get("kommune_kode"))).replace("{kind}", str(alert.get("kind")))
        info = self._client.publish(topic, json.dumps({"event": "alert.opened", "alert": alert}, default=str), qos=1)
        info.wait_for_publish(timeout=10)

    def close(self, timeout=5.0):
        super().close(timeout)
        self._client.loop_stop()
        self._client.disconnect()
