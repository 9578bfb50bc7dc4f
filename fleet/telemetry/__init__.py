"""Telemetry: uplinks from network servers decoded and stored, device health, alerts, fleet status.

    store = TelemetryStore(registry)                    # a fleet.registry.Registry
    up = parse_event(raw_json_bytes, fmt="chirpstack")  # or "tts", "os2iot"; MalformedUplink if not
    result = store.ingest([up])                          # stored / duplicates / rejected, new alerts

A library: it returns values and raises FleetErrors; it never prints. `mqtt.py` subscribes to a broker,
`alerts.py` has the rules and the notifiers, `status.py` the overview, `events.py` the event shapes.
"""

from .alerts import AlertRules, MqttNotifier, WebhookNotifier
from .events import FORMATS, PAYLOAD_FPORT, Uplink, parse_event
from .status import fleet_status
from .store import IngestResult, TelemetryStore

__all__ = ["TelemetryStore", "IngestResult", "Uplink", "parse_event", "FORMATS", "PAYLOAD_FPORT", "AlertRules",
           "WebhookNotifier", "MqttNotifier", "fleet_status"]
