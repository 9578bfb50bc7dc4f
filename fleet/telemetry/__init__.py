"""Telemetry: uplinks from network servers decoded and stored, device health, alerts, fleet status.

    store = TelemetryStore(registry)                    # a fleet.registry.Registry
    up = parse_event(raw_json_bytes, fmt="chirpstack")  # or "tts", "os2iot"; MalformedUplink if not
    result = store.ingest([up])                          # stored / duplicates / rejected, new alerts

A library: it returns values and raises FleetErrors; it never prints. `mqtt.py` subscribes to a broker,
`alerts.py` has the rules and the notifiers, `status.py` the overview, `events.py` the event shapes.
"""

import importlib

# name -> submodule; imported on first use (PEP 562), so that `fleet status` does not load the ingest
# store and the MQTT client, nor `fleet ingest` the status queries
_WHERE = {"AlertRules": "alerts", "MqttNotifier": "alerts", "WebhookNotifier": "alerts",
          "FORMATS": "events", "PAYLOAD_FPORT": "events", "Uplink": "events", "parse_event": "events",
          "fleet_status": "status", "IngestResult": "store", "TelemetryStore": "store"}

__all__ = ["TelemetryStore", "IngestResult", "Uplink", "parse_event", "FORMATS", "PAYLOAD_FPORT", "AlertRules",
           "WebhookNotifier", "MqttNotifier", "fleet_status"]


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
