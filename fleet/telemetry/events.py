"""Uplink events as network servers send them, parsed into one `Uplink` shape.

- ChirpStack v4 (MQTT `application/{id}/device/{devEui}/event/up`, and OS2iot data targets without a
  payload decoder, which pass the ChirpStack event on): `deduplicationId, time, deviceInfo{devEui},
  fCnt, fPort, data (base64), rxInfo[{rssi, snr}], txInfo{frequency}, dr`.
- The Things Stack v3 (MQTT `v3/{app}@{tenant}/devices/{id}/up`): `end_device_ids{dev_eui},
  correlation_ids, received_at, uplink_message{f_cnt, f_port, frm_payload, rx_metadata[{rssi, snr}],
  settings{frequency}}, simulated`. An uplink marked `simulated` (the console's "simulate uplink") is never a
  reading of the node: ingest counts it and stores nothing. Neither `deviceInfo.tags` nor TTS's
  `version_ids.firmware_version` (registrations, not reports) says what firmware a node runs.

Protobuf JSON leaves out zero values, so a missing fCnt/f_cnt is 0. Anything that cannot become an Uplink
raises MalformedUplink with a `reason` from REASONS, which ingest counts.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import MalformedUplink

FORMATS = ("chirpstack", "tts", "os2iot")
TOPICS = {"chirpstack": "application/+/device/+/event/up", "tts": "v3/+/devices/+/up"}
PAYLOAD_FPORT = 1  # payload format v1 (docs/formats/payload.md) travels on FPort 1
REASONS = ("not_json", "bad_shape", "bad_dev_eui", "bad_base64", "bad_payload", "unknown_device",
           "bad_time")

_EUI = re.compile(r"^[0-9A-Fa-f]{16}$")
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class Uplink:
    dev_eui: str                    # 16 upper-case hex digits
    f_cnt: int
    f_port: int
    received_at: datetime           # aware, UTC
    payload: bytes
    source: str                     # chirpstack | tts | os2iot
    event_id: str | None = None     # ChirpStack deduplicationId, TTS "as:up:" correlation id
    rssi: float | None = None       # best gateway
    snr: float | None = None
    dr: int | None = None
    frequency: int | None = None
    gateways: int = 0
    firmware_version: str | None = None  # only what the node itself says (never a network server's registration)
    simulated: bool = False              # The Things Stack's "simulate uplink" (the console's test button)

    @property
    def dedup_key(self) -> str:
        """One uplink, one identity, whichever route brought it (MQTT, OS2iot's HTTP push, a webhook) and
        whether or not that route kept the network server's event id: DevEUI, FCnt and the network server's
        receive time, which every route passes on unchanged."""
        return f"{self.dev_eui}/{self.f_cnt}/{self.received_at.isoformat()}"


def parse_time(text, what="time") -> datetime:
    if not isinstance(text, str) or not text:
        raise MalformedUplink("bad_time", f"the event has no {what}")
    try:
        t = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    except ValueError:
        raise MalformedUplink("bad_time", f"the event's {what} {text[:40]!r} is not an ISO 8601 time") from None
    return (t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t).astimezone(timezone.utc)


def _b64(text, what) -> bytes:
    if text is None or text == "":
        return b""
    if not isinstance(text, str):
        raise MalformedUplink("bad_base64", f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedUplink("bad_base64", f"{what} is not valid base64") from None


def _eui(value) -> str:
    if isinstance(value, str) and _EUI.match(value):
        return value.upper()
    if isinstance(value, str):  # ChirpStack v3 / older OS2iot: the EUI in base64
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 8:
            return raw.hex().upper()
    raise MalformedUplink("bad_dev_eui", "the event has no valid DevEUI (16 hex digits)")


def _int(v, default=0) -> int:
    if v is None:
        return default
    try:
        return int(v)
    except (TypeError, ValueError):
        raise MalformedUplink("bad_shape", f"{v!r} is not a number") from None


def _best_rx(rx: list) -> tuple[float | None, float | None, int]:
    rx = [r for r in rx if isinstance(r, dict)] if isinstance(rx, list) else []
    scored = [r for r in rx if isinstance(r.get("rssi", r.get("channel_rssi")), (int, float))]
    if not scored:
        return None, None, len(rx)
    best = max(scored, key=lambda r: r.get("rssi", r.get("channel_rssi")))
    snr = best.get("snr", best.get("loRaSNR"))
    return float(best.get("rssi", best.get("channel_rssi"))), (float(snr) if isinstance(snr, (int, float)) else None), len(rx)


def _load(raw) -> dict:
    if isinstance(raw, dict):
        return raw
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedUplink("not_json", "the event is not JSON") from None
    if not isinstance(obj, dict):
        raise MalformedUplink("bad_shape", "the event is not a JSON object")
    return obj


def parse_chirpstack(obj: dict, source="chirpstack") -> Uplink:
    info = obj.get("deviceInfo")
    dev = _eui(info.get("devEui") if isinstance(info, dict) else obj.get("devEUI", obj.get("devEui")))
    rssi, snr, n = _best_rx(obj.get("rxInfo"))
    tx = obj.get("txInfo") if isinstance(obj.get("txInfo"), dict) else {}
    t = obj.get("time") or next((r.get("time") for r in obj.get("rxInfo") or [] if isinstance(r, dict)
                                 and r.get("time")), None)
    dr = obj.get("dr", tx.get("dr"))
    return Uplink(dev_eui=dev, f_cnt=_int(obj.get("fCnt")), f_port=_int(obj.get("fPort")), received_at=parse_time(t),
                  payload=_b64(obj.get("data"), "data"), source=source,
                  event_id=str(obj["deduplicationId"]) if obj.get("deduplicationId") else None, rssi=rssi, snr=snr,
                  dr=_int(dr, None), frequency=_int(tx.get("frequency"), None), gateways=n)


def parse_tts(obj: dict) -> Uplink:
    ids = obj.get("end_device_ids")
    up = obj.get("uplink_message")
    if not isinstance(ids, dict) or not isinstance(up, dict):
        raise MalformedUplink("bad_shape", "not a The Things Stack uplink (no end_device_ids/uplink_message)")
    dev = _eui(ids.get("dev_eui"))
    rssi, snr, n = _best_rx(up.get("rx_metadata"))
    settings = up.get("settings") if isinstance(up.get("settings"), dict) else {}
    corr = next((c for c in obj.get("correlation_ids") or [] if isinstance(c, str) and c.startswith("as:up:")), None)
    lora = ((settings.get("data_rate") or {}).get("lora") or {}) if isinstance(settings.get("data_rate"), dict) else {}
    sf = lora.get("spreading_factor")
    dr = 12 - int(sf) if isinstance(sf, int) and 7 <= sf <= 12 and lora.get("bandwidth", 125000) == 125000 else None
    return Uplink(dev_eui=dev, f_cnt=_int(up.get("f_cnt")), f_port=_int(up.get("f_port")),
                  received_at=parse_time(obj.get("received_at") or up.get("received_at"), "received_at"),
                  payload=_b64(up.get("frm_payload"), "frm_payload"), source="tts", event_id=corr, rssi=rssi, snr=snr,
                  dr=dr, frequency=_int(settings.get("frequency"), None), gateways=n,
                  simulated=obj.get("simulated") is True or up.get("simulated") is True)
    # version_ids.firmware_version is what the device repository registered for the model, not what the node
    # runs: the node's own check-ins say that (fleet/rollout/store.py)


def parse_event(raw, fmt: str) -> Uplink:
    """JSON text, bytes or a dict -> Uplink; MalformedUplink (with .reason) for anything else."""
    obj = _load(raw)
    if fmt == "chirpstack":
        return parse_chirpstack(obj)
    if fmt == "tts":
        return parse_tts(obj)
    if fmt == "os2iot":
        if "end_device_ids" in obj:
            return parse_tts(obj)
        return parse_chirpstack(obj, source="os2iot")
    raise MalformedUplink("bad_shape", f"unknown event format {fmt!r} (formats: {', '.join(FORMATS)})")
