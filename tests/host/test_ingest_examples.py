"""The uplink events ChirpStack v4 and The Things Stack v3 publish in their own documentation
(tests/data/ingest/, sources in its README) through the parser and into the registry: every field we use
is read as the other project means it, and the examples' own quirks (zero values left out) land where
LoRaWAN says they should."""

import base64
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from fleet.registry import NewDevice, Registry
from fleet.store.models import UplinkRow
from fleet.telemetry import TelemetryStore, parse_event
from lab import telemetry_samples as S
from provisioning.identity import new_identity
from test_registry_support import ADMIN

DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"


def example(name) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
def reg(tmp_path):
    r = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}", key=os.urandom(32))
    yield r
    r.close()


def enroll_as(reg, dev_eui):
    reg.add_device(ADMIN, NewDevice(kommune="751", site="Park Allé 1", kind="waste", board="virtual",
                                    latitude=56.1572, longitude=10.2107), new_identity(dev_eui=dev_eui))


def test_chirpstack_v4_documented_up_event_parses_field_by_field():
    raw = (DATA / "chirpstack-v4-up.json").read_bytes()
    for fmt, source in (("chirpstack", "chirpstack"), ("os2iot", "os2iot")):  # OS2iot passes it on as is
        up = parse_event(raw, fmt)
        assert up.source == source
        assert up.dev_eui == "0101010101010101"
        assert up.f_cnt == 0                       # left out by protobuf's JSON mapping: zero
        assert up.f_port == 1 and up.payload == b"\xaa"
        assert up.received_at == datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=timezone.utc)  # ns cut to µs
        assert up.event_id == "3ac7e3c4-4401-4b8d-9386-a5c902f9202d"
        assert (up.rssi, up.snr, up.gateways) == (-36.0, 10.5, 1)
        assert up.dr == 1 and up.frequency == 867100000
        assert up.firmware_version is None and up.simulated is False  # device tags say nothing of firmware


def test_tts_v3_documented_uplink_message_parses_field_by_field():
    doc = example("tts-v3-uplink-message.json")
    up = parse_event(json.dumps(doc), "tts")
    assert up.source == "tts" and up.dev_eui == "0004A30B001C0530"
    assert up.f_cnt == 1 and up.f_port == 0        # no f_port in the example: zero, the MAC-command port
    assert up.payload == base64.b64decode("gkHe") == bytes([0x82, 0x41, 0xDE])
    # the Application Server's receive time (top level), not the Network Server's inside uplink_message
    assert up.received_at == datetime(2020, 2, 12, 15, 15, 46, 14773, tzinfo=timezone.utc)
    assert up.event_id == "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ"
    assert (up.rssi, up.snr, up.gateways) == (-35.0, 5.0, 1)
    assert up.frequency == 868300000
    # SF7/125 kHz is EU868 DR5: the example says so itself in data_rate_index
    assert up.dr == doc["uplink_message"]["settings"]["data_rate_index"] == 5
    assert up.simulated is False


def test_documented_examples_through_ingest(reg):
    """As published, neither example is a Bysans reading: ChirpStack's one byte is no payload frame (a
    data-level rejection, counted), TTS's FPort 0 is MAC commands (ignored, counted). With only the DevEUI,
    FCnt and payload swapped for one of our nodes', the same documents are stored with their metadata."""
    cs, tts = example("chirpstack-v4-up.json"), example("tts-v3-uplink-message.json")
    enroll_as(reg, "0101010101010101")
    enroll_as(reg, "0004A30B001C0530")
    store = TelemetryStore(reg)
    r = store.ingest([parse_event(cs, "chirpstack"), parse_event(tts, "tts")])
    assert r.stored == 0 and dict(r.ignored) == {"mac_only": 1}
    assert [(reason, eui) for reason, _, eui in r.rejected] == [("bad_payload", "0101010101010101")]

    frame = base64.b64encode(S.waste_frame(S.filling_bin(5000), fill_rate_bp_h=150)).decode()
    cs_ours = dict(cs, fCnt=7, data=frame)
    tts_ours = dict(tts, uplink_message=dict(tts["uplink_message"], f_port=1, f_cnt=8, frm_payload=frame))
    r = store.ingest([parse_event(cs_ours, "chirpstack"), parse_event(tts_ours, "tts")])
    assert r.stored == 2 and r.readings == 16 and not r.rejected
    with reg.db.read() as s:
        rows = {u.source: u for u in s.scalars(select(UplinkRow))}
    assert (rows["chirpstack"].f_cnt, rows["chirpstack"].rssi, rows["chirpstack"].snr,
            rows["chirpstack"].frequency, rows["chirpstack"].dr) == (7, -36, 10.5, 867100000, 1)
    assert (rows["tts"].f_cnt, rows["tts"].rssi, rows["tts"].snr, rows["tts"].frequency,
            rows["tts"].dr) == (8, -35, 5.0, 868300000, 5)
