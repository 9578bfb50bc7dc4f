"""The exports read back the way the other side reads them: OS2iot's bulk import (its CSV template, its
front end's CSV mapping and its back end's class-validator rules, restated here from their source) and The
Things Stack's JSON import (a stream of EndDevice objects, checked with TTS's identifier and field rules).
The readers below are written from the other projects' code (named in each), not from fleet/exports."""

import csv
import json
import re
import stat
import uuid

import pytest

from fleet.errors import UsageError
from fleet.exports import os2iot, tts
from provisioning.identity import new_identity
from fleet.resources import project_root
from test_registry_support import run_cli as run
from test_registry_support import (ADMIN, AARHUS, ODENSE, db_url, key, key_env,  # noqa: F401 (fixtures)
                                   new_device, registry)

DATA = project_root() / "tests" / "data"
PROFILE_ID = "2c8cd1d4-3b7e-4c8e-9f1a-6d5e4b3a2f10"


def enroll(registry, n=2, op=AARHUS, kommune="751", **kw):
    out = []
    for i in range(n):
        ident = new_identity()
        fields = dict(site=f"site {i}", latitude=56.15, longitude=10.2) | kw
        out.append((registry.add_device(op, new_device(kommune=kommune, **fields), ident), ident))
    return out


def keys_read(registry):
    return sum(a.action == "device.keys_read" for a in registry.audit_log(ADMIN))


# -- OS2iot, as its import reads a file --------------------------------------------------------------------

# validator.js isUUID(str) with no version, as class-validator's @IsUUID() calls it: the old 'all' pattern
# (src/lib/isUUID.js) and the newer, RFC 9562 one (version 1-8, variant 8/9/a/b).
VALIDATORJS_UUID_LOOSE = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$", re.I)
VALIDATORJS_UUID_STRICT = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[1-8][0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$",
                                     re.I)
HEX = re.compile(r"^[0-9a-fA-F]+$")


def os2iot_template_header():
    return (DATA / "os2iot" / "iotdevice_lorawan_otaa.csv").read_text().splitlines()[0].split(",")


def os2iot_import(text):
    """Rows as OS2iot's bulk import makes devices of them, and each row's problems by its rules.
    Front end (OS2iot-frontend bulk-import.component.ts + bulk-mapping.ts): papaparse with header:true and
    skipEmptyLines; an empty longitude/latitude becomes 0. Back end (OS2iot-backend DTOs): name 1..50;
    latitude -90..90, longitude -180..180; comments at most 1024; devEUI 16 hex; deviceProfileID @IsUUID();
    OTAAapplicationKey 32 hex."""
    reader = csv.DictReader([line for line in text.splitlines() if line.strip()])
    devices = []
    for row in reader:
        d = {"name": row["name"], "type": row["type"].upper(), "commentOnLocation": row["commentOnLocation"],
             "comment": row["comment"],
             "longitude": float(row["longitude"]) if row["longitude"] else 0,
             "latitude": float(row["latitude"]) if row["latitude"] else 0,
             "deviceModelId": int(row["deviceModelId"]) if row["deviceModelId"] != "" else None,
             "id": row["id"] or None,
             "lorawanSettings": {"devEUI": row["devEUI"], "deviceProfileID": row["deviceProfileID"] or None,
                                 "skipFCntCheck": row["skipFCntCheck"].upper() == "TRUE",
                                 "activationType": row["activationType"] or None,
                                 "OTAAapplicationKey": row["OTAAapplicationKey"] or None}}
        problems = []
        if not 1 <= len(d["name"]) <= 50:
            problems.append("name")
        if not -90 <= d["latitude"] <= 90 or not -180 <= d["longitude"] <= 180:
            problems.append("position")
        if len(d["commentOnLocation"]) > 1024 or len(d["comment"]) > 1024:
            problems.append("comment")
        lw = d["lorawanSettings"]
        if not (len(lw["devEUI"]) == 16 and HEX.match(lw["devEUI"])):
            problems.append("devEUI")
        if not (lw["deviceProfileID"] and VALIDATORJS_UUID_LOOSE.match(lw["deviceProfileID"])
                and VALIDATORJS_UUID_STRICT.match(lw["deviceProfileID"])):
            problems.append("deviceProfileID")
        if lw["activationType"] == "OTAA" and not (lw["OTAAapplicationKey"] and len(lw["OTAAapplicationKey"]) == 32
                                                    and HEX.match(lw["OTAAapplicationKey"])):
            problems.append("OTAAapplicationKey")
        devices.append((d, problems))
    return reader.fieldnames, devices


def test_os2iot_header_is_their_template_without_the_chirpstack_v3_column():
    template = os2iot_template_header()
    assert "serviceProfileID" in template
    assert os2iot.HEADER == [c for c in template if c != "serviceProfileID"]


def test_os2iot_import_accepts_every_row(registry, tmp_path):
    devices = enroll(registry, 3, sensors=("bme280",))
    files, n, warnings = os2iot.export(registry, AARHUS, tmp_path / "o.csv", device_profile_id=PROFILE_ID)
    header, rows = os2iot_import(files[0].read_text())
    assert header == os2iot.HEADER and n == len(rows) == 3 and warnings == []
    for (d, problems), (rec, ident) in zip(rows, devices):
        assert problems == [], problems
        assert d["name"] == rec.name and d["type"] == "LORAWAN" and d["id"] is None
        assert (d["latitude"], d["longitude"]) == (pytest.approx(56.15), pytest.approx(10.2))
        lw = d["lorawanSettings"]
        assert lw == {"devEUI": rec.dev_eui.lower(), "deviceProfileID": PROFILE_ID, "skipFCntCheck": False,
                      "activationType": "OTAA", "OTAAapplicationKey": ident.app_key.hex()}


def test_os2iot_device_without_position_is_exported_with_a_warning(registry, tmp_path):
    [(placed, _)] = enroll(registry, 1)
    [(nowhere, _)] = enroll(registry, 1, latitude=None, longitude=None)
    files, n, warnings = os2iot.export(registry, AARHUS, tmp_path / "o.csv", device_profile_id=PROFILE_ID)
    assert n == 2 and len(warnings) == 1
    assert nowhere.dev_eui in warnings[0] and "0,0" in warnings[0] and placed.dev_eui not in warnings[0]
    _, rows = os2iot_import(files[0].read_text())
    lost = [d for d, _ in rows if d["lorawanSettings"]["devEUI"] == nowhere.dev_eui.lower()]
    assert (lost[0]["latitude"], lost[0]["longitude"]) == (0, 0)  # what OS2iot makes of it: the warning's reason


@pytest.mark.parametrize("bad", ["5f0e3c2a-1111-2222-3333-444455556666",  # variant nibble 3: newer validator.js says no
                                 "5f0e3c2a", "not-a-uuid", "5f0e3c2a18d1b4f55a1c30a0b0c0d0e0f", " "])
def test_os2iot_non_uuid_profile_is_refused_before_anything_is_read_or_written(registry, tmp_path, bad):
    enroll(registry, 2)
    with pytest.raises(UsageError) as e:
        os2iot.export(registry, AARHUS, tmp_path / "o.csv", device_profile_id=bad)
    assert "device profile id" in e.value.message and "OS2iot" in e.value.message + e.value.hint
    if bad.strip():
        assert "UUID" in e.value.message and "8-4-4-4-12" in e.value.hint
    assert not (tmp_path / "o.csv").exists() and keys_read(registry) == 0


def test_os2iot_uuid_rule_matches_validatorjs():
    for _ in range(200):
        u = str(uuid.uuid4())  # what ChirpStack gives its device profiles
        assert os2iot.check_device_profile_id(u.upper()) == u
        assert VALIDATORJS_UUID_STRICT.match(u) and VALIDATORJS_UUID_LOOSE.match(u)
    for s in ["5f0e3c2a-1111-2222-3333-444455556666", "00000000-0000-0000-0000-00000000000g", "{" + PROFILE_ID + "}"]:
        assert not os2iot.UUID_RE.match(s)


def test_os2iot_name_rule():
    assert os2iot.name_problem("x" * 50) is None and os2iot.name_problem(None) is None
    assert "50" in os2iot.name_problem("x" * 51)
    assert os2iot.name_problem("   ")


def test_os2iot_long_name_is_refused_before_anything_is_read_or_written(registry, tmp_path):
    enroll(registry, 1)
    [(long, _)] = enroll(registry, 1, name="Affaldsbeholder ved Park Allé 1, den store grønne ved p-pladsen")
    assert len(long.name) > 50
    with pytest.raises(UsageError) as e:
        os2iot.export(registry, AARHUS, tmp_path / "out", device_profile_id=PROFILE_ID)
    assert long.dev_eui in e.value.message and "50" in e.value.message + e.value.hint
    assert not (tmp_path / "out").exists() and keys_read(registry) == 0




def test_cli_os2iot_warns_on_stderr_and_refuses_a_non_uuid(registry, db_url, key_env, tmp_path, capsys, monkeypatch):
    enroll(registry, 1)
    [(nowhere, _)] = enroll(registry, 1, latitude=None, longitude=None)
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    base = ["export", "os2iot", "--db", db_url, "--kommune", "751", "--out", str(tmp_path / "o.csv")]
    code, out, err = run(base + ["--device-profile-id", "5f0e3c2a-1111-2222-3333-444455556666"], capsys)
    assert code == 2 and "UUID" in err and "hint:" in err and not (tmp_path / "o.csv").exists()
    code, out, err = run(base + ["--device-profile-id", PROFILE_ID], capsys)
    assert code == 0, err
    assert out.strip() == str(tmp_path / "o.csv")
    assert f"warning: {nowhere.dev_eui}" in err and "0,0" in err


# -- The Things Stack, as its JSON import reads a file -------------------------------------------------------

# lorawan-stack pkg/validate/id.go and the EndDevice field rules (api/api.md): ids, names, descriptions.
TTS_ID = re.compile(r"^[a-z0-9](?:[-]?[a-z0-9]){2,}$")
TTS_MAC = {"MAC_V1_0", "MAC_V1_0_1", "MAC_V1_0_2", "MAC_V1_1", "MAC_V1_0_3", "MAC_V1_0_4"}
TTS_PHY = {"PHY_V1_0", "PHY_V1_0_1", "PHY_V1_0_2_REV_A", "PHY_V1_0_2_REV_B", "PHY_V1_1_REV_A", "PHY_V1_1_REV_B",
           "PHY_V1_0_3_REV_A", "RP001_V1_0_2", "RP001_V1_0_2_REV_B", "RP001_V1_1_REV_A", "RP001_V1_1_REV_B",
           "RP001_V1_0_3_REV_A", "RP002_V1_0_0", "RP002_V1_0_1", "RP002_V1_0_2", "RP002_V1_0_3", "RP002_V1_0_4"}
# The EndDevice fields an import file of OTAA devices may set (ttnpb.EndDevice; a subset).
TTS_FIELDS = {"ids", "name", "description", "attributes", "version_ids", "locations", "lorawan_version",
              "lorawan_phy_version", "frequency_plan_id", "supports_join", "root_keys", "supports_class_b",
              "supports_class_c", "mac_settings", "formatters"}


def tts_stream(text):
    """The objects of a JSON stream, one after another, as ttsjson.go's decoder reads them."""
    dec, pos, out = json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        obj, pos = dec.raw_decode(text, pos)
        out.append(obj)


def tts_problems(dev):
    p = []
    if not set(dev) <= TTS_FIELDS:
        p.append(f"unknown fields {sorted(set(dev) - TTS_FIELDS)}")
    ids = dev.get("ids", {})
    did = ids.get("device_id", "")
    if len(did) > 36 or not TTS_ID.match(did):
        p.append("device_id")
    if "application_ids" in ids:
        aid = ids["application_ids"].get("application_id", "")
        if len(aid) > 36 or not TTS_ID.match(aid):
            p.append("application_id")
    for eui in ("dev_eui", "join_eui"):
        if not (len(ids.get(eui, "")) == 16 and HEX.match(ids[eui])):
            p.append(eui)
    if len(dev.get("name", "")) > 50:
        p.append("name")
    if len(dev.get("description", "")) > 2000:
        p.append("description")
    for k, v in dev.get("attributes", {}).items():
        if len(k) > 36 or not TTS_ID.match(k) or len(v) > 200:
            p.append(f"attribute {k}")
    if dev.get("lorawan_version") not in TTS_MAC:
        p.append("lorawan_version")
    if dev.get("lorawan_phy_version") not in TTS_PHY:
        p.append("lorawan_phy_version")
    if not isinstance(dev.get("frequency_plan_id"), str) or not dev["frequency_plan_id"]:
        p.append("frequency_plan_id")
    if dev.get("supports_join") is not True:
        p.append("supports_join (OTAA)")
    key = dev.get("root_keys", {}).get("app_key", {}).get("key", "")
    if not (len(key) == 32 and HEX.match(key)):
        p.append("root_keys.app_key.key")
    for loc in dev.get("locations", {}).values():
        if not (-90 <= loc["latitude"] <= 90 and -180 <= loc["longitude"] <= 180):
            p.append("location")
    return p


def test_tts_reader_accepts_the_documented_example():
    [dev] = tts_stream((DATA / "tts" / "devices-example.json").read_text())
    assert tts_problems(dev) == []
    assert tts_problems(dict(dev, ids=dict(dev["ids"], device_id="My_Device"))) == ["device_id"]


def test_tts_file_is_accepted_and_holds_the_keys(registry, tmp_path):
    devices = enroll(registry, 3, sensors=("bme280", "scd41"))
    [(nowhere, _)] = enroll(registry, 1, latitude=None, longitude=None)
    devices.append((nowhere, _))
    path, n = tts.export(registry, AARHUS, tmp_path / "devices.json", application_id="aarhus-affald")
    text = path.read_text()
    assert n == 4 and len(text.splitlines()) == 4
    objs = tts_stream(text)
    for dev, (rec, ident) in zip(objs, devices):
        assert tts_problems(dev) == [], dev["ids"]
        assert dev["ids"]["dev_eui"].lower() == rec.dev_eui.lower()
        assert dev["ids"]["join_eui"].lower() == rec.join_eui.lower()
        assert dev["ids"]["application_ids"] == {"application_id": "aarhus-affald"}
        assert dev["root_keys"]["app_key"]["key"].lower() == ident.app_key.hex()
        assert (dev["lorawan_version"], dev["supports_join"]) == ("MAC_V1_0_4", True)
        assert dev["name"] == rec.name and dev["attributes"]["kommune"] == "0751"
    assert "locations" not in objs[3] and objs[0]["locations"]["user"]["latitude"] == pytest.approx(56.15)
    assert len({d["ids"]["device_id"] for d in objs}) == 4
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys_read(registry) == 4


def test_tts_refuses_what_tts_would_refuse_before_reading_keys(registry, tmp_path):
    enroll(registry, 1)
    for kw in ({"application_id": "Aarhus_Affald"}, {"application_id": "a" * 37}, {"phy_version": "PHY_V9"},
               {"frequency_plan_id": "EU 868"}):
        with pytest.raises(UsageError):
            tts.export(registry, AARHUS, tmp_path / "d.json", **kw)
    enroll(registry, 1, name="x" * 51)
    with pytest.raises(UsageError) as e:
        tts.export(registry, AARHUS, tmp_path / "d.json")
    assert "50" in e.value.message
    assert not (tmp_path / "d.json").exists() and keys_read(registry) == 0


def test_cli_export_tts_writes_the_file_and_never_prints_keys(registry, db_url, key_env, tmp_path, capsys,
                                                             monkeypatch):
    devices = enroll(registry, 2)
    enroll(registry, 1, op=ODENSE, kommune="461")
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    out_file = tmp_path / "devices.json"
    code, out, err = run(["export", "tts", "--db", db_url, "--kommune", "751", "--out", str(out_file),
                          "--frequency-plan", "EU_863_870", "--phy-version", "RP002_V1_0_1"], capsys)
    assert code == 0, err
    assert out.strip() == str(out_file)
    objs = tts_stream(out_file.read_text())
    assert len(objs) == 2 and all(tts_problems(o) == [] for o in objs)
    assert {o["frequency_plan_id"] for o in objs} == {"EU_863_870"}
    assert {o["lorawan_phy_version"] for o in objs} == {"RP002_V1_0_1"}
    for _, ident in devices:
        assert ident.app_key.hex() not in (out + err).lower()
