"""Uplink events as ChirpStack v4 and The Things Stack v3 send them, with payloads made by the firmware's
own encoder (firmware/bysans/payload.py, which runs under CPython too). For tests, benchmarks, the
samples in docs/samples/ and trying ingest by hand:

    .venv/bin/python -m lab.telemetry_samples docs/samples     # rewrites the sample files
"""

import base64
import json
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fleet.resources import firmware_dir


def _encoder():
    if str(firmware_dir()) not in sys.path:
        sys.path.insert(0, str(firmware_dir()))
    from bysans import payload, payload_spec

    return payload, payload_spec


def waste_frame(readings, *, interval_min=15, age_min=1, fill_rate_bp_h=0, net_status=None) -> bytes:
    """readings: dicts (oldest first) with dist_mm, fill_bp, temp_cdeg, batt_mv and optional tilt, pickup,
    fire, and "faults" (the names of the channels whose sensor failed); encoded by the firmware's encoder.
    net_status: a failed WiFi join's outcome the node reports (payload_spec NET_STATUS_NAMES), or None."""
    payload, S = _encoder()
    batch = payload.ReadingBatch(S.KIND_WASTE)
    for r in readings:
        flags = ((S.FLAG_TILT if r.get("tilt") else 0) | (S.FLAG_PICKUP if r.get("pickup") else 0)
                 | (S.FLAG_FIRE if r.get("fire") else 0))
        batch.add((r["dist_mm"], r["fill_bp"], r["temp_cdeg"], r["batt_mv"], flags),
                  _fault_mask(S.WASTE_CHANNELS, r))
    buf = bytearray(S.COUNT_MAX * 16)
    n = payload.encode(buf, batch, interval_min=interval_min, age_min=age_min, frame_values=(fill_rate_bp_h,),
                       net=S.NET_STATUS_NAMES.index(net_status) if net_status else 0)
    return bytes(buf[:n])


def env_frame(readings, *, interval_min=10, age_min=0) -> bytes:
    """readings: dicts (oldest first) with the env channels and optional "faults", as waste_frame()."""
    payload, S = _encoder()
    batch = payload.ReadingBatch(S.KIND_ENV)
    for r in readings:
        batch.add(tuple(r[c[0]] for c in S.ENV_CHANNELS), _fault_mask(S.ENV_CHANNELS, r))
    buf = bytearray(S.COUNT_MAX * 16)
    n = payload.encode(buf, batch, interval_min=interval_min, age_min=age_min)
    return bytes(buf[:n])


def _fault_mask(channels, reading) -> int:
    names = [c[0] for c in channels]
    return sum(1 << names.index(name) for name in reading.get("faults") or ())


def filling_bin(fill_bp=4000, *, n=8, rate_bp_h=150, temp_cdeg=1500, batt_mv=3900, tilt=False, fire=False):
    """n readings 15 min apart of a bin filling at rate_bp_h, ending at fill_bp."""
    out = []
    for i in range(n):
        fill = max(0, min(10000, fill_bp - (n - 1 - i) * rate_bp_h // 4))
        out.append({"dist_mm": 1200 - fill * 1000 // 10000, "fill_bp": fill, "temp_cdeg": temp_cdeg,
                    "batt_mv": batt_mv, "tilt": tilt and i == n - 1, "fire": fire and i == n - 1})
    return out


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def chirpstack_event(dev_eui: str, payload: bytes, *, f_cnt: int, at: datetime | None = None, f_port: int = 1,
                     rssi: int = -97, snr: float = 6.5, dedup_id: str | None = None, application_id=None,
                     tags: dict | None = None) -> dict:
    """A ChirpStack v4 `event/up` message (REFERENCE.md §4)."""
    at = at or datetime.now(timezone.utc)
    app = application_id or "4b1c8c7e-2f41-4a4d-9a57-8f0c0e6a7d21"
    return {
        "deduplicationId": dedup_id or str(uuid.uuid4()),
        "time": _iso(at),
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Aarhus Kommune",
                       "applicationId": app, "applicationName": "bysans-waste",
                       "deviceProfileId": "5f0e3c2a-1111-2222-3333-444455556666", "deviceProfileName": "bysans",
                       "deviceName": f"waste-{dev_eui[-8:].lower()}", "devEui": dev_eui.lower(),
                       "deviceClassEnabled": "CLASS_A", "tags": dict(tags or {})},
        "devAddr": "260b1234", "adr": True, "dr": 0, "fCnt": f_cnt, "fPort": f_port, "confirmed": False,
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [{"gatewayId": "0016c001ff10a235", "uplinkId": 4217, "time": _iso(at), "rssi": rssi, "snr": snr,
                    "channel": 2, "location": {}, "context": "EFwMtA==", "crcStatus": "CRC_OK"},
                   {"gatewayId": "0016c001ff10a236", "uplinkId": 811, "rssi": rssi - 12, "snr": snr - 4.5,
                    "channel": 2, "location": {}, "context": "EFwMtB==", "crcStatus": "CRC_OK"}],
        "txInfo": {"frequency": 868500000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 12,
                                                                   "codeRate": "CR_4_5"}}},
    }


def chirpstack_topic(dev_eui: str, application_id=None) -> str:
    return f"application/{application_id or '4b1c8c7e-2f41-4a4d-9a57-8f0c0e6a7d21'}/device/{dev_eui.lower()}/event/up"


def tts_event(dev_eui: str, payload: bytes, *, f_cnt: int, at: datetime | None = None, f_port: int = 1,
              rssi: int = -101, snr: float = 4.25, firmware_version: str | None = None) -> dict:
    """A The Things Stack v3 uplink message (REFERENCE.md §4)."""
    at = at or datetime.now(timezone.utc)
    up = {
        "session_key_id": "AYa3Kf0bQm1ZtH3uWc+1Gg==", "f_port": f_port, "f_cnt": f_cnt,
        "frm_payload": base64.b64encode(payload).decode(),
        "rx_metadata": [{"gateway_ids": {"gateway_id": "aarhus-gw-1", "eui": "B827EBFFFE61A4C2"},
                         "time": _iso(at), "timestamp": 2901473, "rssi": rssi, "channel_rssi": rssi, "snr": snr,
                         "uplink_token": "ChIKEAoOYWFyaHVzLWd3LTE=", "received_at": _iso(at)}],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 12, "coding_rate": "4/5"}},
                     "frequency": "868100000", "timestamp": 2901473, "time": _iso(at)},
        "received_at": _iso(at), "consumed_airtime": "1.318912s",
        "network_ids": {"net_id": "000013", "tenant_id": "aarhus", "cluster_id": "eu1"},
    }
    if firmware_version:
        up["version_ids"] = {"brand_id": "bysans", "model_id": "waste-node", "firmware_version": firmware_version,
                             "band_id": "EU_863_870"}
    return {
        "end_device_ids": {"device_id": f"waste-{dev_eui[-8:].lower()}", "application_ids": {"application_id": "bysans"},
                           "dev_eui": dev_eui.upper(), "join_eui": "70B3D57ED0000000", "dev_addr": "260B1234"},
        "correlation_ids": [f"as:up:{uuid.uuid4().hex.upper()[:26]}", f"rpc:/ttn.lorawan.v3.AppAs/{uuid.uuid4()}"],
        "received_at": _iso(at + timedelta(milliseconds=40)),
        "uplink_message": up,
    }


def tts_topic(dev_eui: str) -> str:
    return f"v3/bysans@aarhus/devices/waste-{dev_eui[-8:].lower()}/up"


def write_samples(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    eui = "240AC4FFFE000751"
    at = datetime(2026, 11, 23, 7, 30, tzinfo=timezone.utc)
    files = {
        "chirpstack-up-waste.json": chirpstack_event(eui, waste_frame(filling_bin(6200), fill_rate_bp_h=150), f_cnt=41, at=at,
                                                     dedup_id="0b7e2d4a-5f6c-4e1b-9a3d-2c8f7e6b5a41"),
        "chirpstack-up-fire.json": chirpstack_event(eui, waste_frame(filling_bin(6300, n=2, temp_cdeg=8450,
                                                                                  fire=True), age_min=0, fill_rate_bp_h=150),
                                                    f_cnt=42, at=at + timedelta(minutes=20),
                                                    dedup_id="6c1f0a9e-3d2b-4c7a-8e5f-1a2b3c4d5e42"),
        "tts-up-waste.json": tts_event(eui, waste_frame(filling_bin(8600, tilt=True), fill_rate_bp_h=150), f_cnt=43,
                                       at=at + timedelta(hours=2), firmware_version="0.1.0"),
        "chirpstack-up-bad-base64.json": dict(chirpstack_event(eui, b"", f_cnt=44, at=at + timedelta(hours=4),
                                                               dedup_id="9d8c7b6a-0000-4000-8000-000000000044"),
                                              data="not base64!"),
    }
    written = []
    for name, obj in files.items():
        p = out / name
        p.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        written.append(p)
    return written


if __name__ == "__main__":
    for p in write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/samples")):
        print(p)
