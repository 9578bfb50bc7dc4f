"""Exports: OS2iot's bulk-import CSV, and ChirpStack v4's REST API against a local server that checks the
requests' shape and auth header."""

import csv
import json
import re
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleet.errors import NetworkServerError, UsageError
from fleet.exports import chirpstack, os2iot
from provisioning.identity import new_identity
from test_registry_support import run_cli as run
from test_registry_support import (ADMIN, AARHUS, ODENSE, db_url, key, key_env,  # noqa: F401 (fixtures)
                                   new_device, registry)

OS2IOT_HEADER = ("name,id,type,longitude,latitude,commentOnLocation,comment,deviceModelId,devEUI,deviceProfileID,"
                 "skipFCntCheck,activationType,OTAAapplicationKey")
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.test-token"
APP_ID = "9a1c1f9e-2a7c-4c39-9d0e-5d7d5f3a0001"
PROFILE_ID = "5f0e3c2a-8d1b-4f55-a1c3-0a0b0c0d0e0f"


def enroll(registry, n, op=AARHUS, kommune="751"):
    out = []
    for i in range(n):
        ident = new_identity()
        out.append((registry.add_device(op, new_device(kommune=kommune, site=f"site {i}", latitude=56.15,
                                                       longitude=10.2), ident), ident))
    return out


# -- OS2iot ----------------------------------------------------------------------------------------------

def test_os2iot_csv_has_the_exact_header_and_the_keys(registry, tmp_path):
    devices = enroll(registry, 3)
    files, n, _ = os2iot.export(registry, AARHUS, tmp_path / "os2iot.csv", device_profile_id=PROFILE_ID)
    assert n == 3 and files == [tmp_path / "os2iot.csv"]
    lines = files[0].read_text().splitlines()
    assert lines[0] == OS2IOT_HEADER
    rows = list(csv.DictReader(lines))
    for row, (rec, ident) in zip(rows, devices):
        assert row["devEUI"] == rec.dev_eui.lower() and row["OTAAapplicationKey"] == ident.app_key.hex()
        assert (row["type"], row["activationType"], row["skipFCntCheck"], row["id"]) == ("LORAWAN", "OTAA", "false", "")
        assert row["deviceProfileID"] == PROFILE_ID and row["name"] == rec.name
        assert float(row["latitude"]) == pytest.approx(56.15) and float(row["longitude"]) == pytest.approx(10.2)
        assert row["commentOnLocation"] == rec.site
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert sum(a.action == "device.keys_read" for a in registry.audit_log(AARHUS)) == 3


def test_os2iot_files_hold_at_most_50_devices(registry, tmp_path):
    enroll(registry, 120)
    files, n, _ = os2iot.export(registry, AARHUS, tmp_path / "out", device_profile_id=PROFILE_ID)
    assert [f.name for f in files] == ["os2iot-001.csv", "os2iot-002.csv", "os2iot-003.csv"]
    counts = [len(f.read_text().splitlines()) - 1 for f in files]
    assert counts == [50, 50, 20] and n == 120
    with pytest.raises(UsageError):  # one file cannot hold them
        os2iot.export(registry, AARHUS, tmp_path / "one.csv", device_profile_id=PROFILE_ID)


def test_os2iot_export_is_one_kommunes_devices(registry, tmp_path):
    enroll(registry, 2)
    enroll(registry, 1, op=ODENSE, kommune="461")
    _, n, _ = os2iot.export(registry, ODENSE, tmp_path / "o.csv", device_profile_id=PROFILE_ID)
    assert n == 1
    _, n, _ = os2iot.export(registry, ADMIN, tmp_path / "a.csv", device_profile_id=PROFILE_ID)
    assert n == 3


# -- ChirpStack ------------------------------------------------------------------------------------------

class FakeChirpStack:
    """A local HTTP server answering like ChirpStack v4's REST API; it records what it got."""

    def __init__(self, token=TOKEN, existing=()):
        self.requests = []
        self.devices = {e.lower(): {} for e in existing}
        self.keys = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                if self.headers.get("Grpc-Metadata-Authorization") != f"Bearer {token}":
                    return self.answer(401, {"code": 16, "message": "unauthenticated"})
                if self.path == "/api/devices":
                    dev = body["device"]
                    if dev["devEui"] in outer.devices:
                        return self.answer(409, {"code": 6, "message": "object already exists"})
                    outer.devices[dev["devEui"]] = dev
                    return self.answer(200, {})
                if self.path.startswith("/api/devices/") and self.path.endswith("/keys"):
                    eui = self.path.split("/")[3]
                    if eui not in outer.devices:
                        return self.answer(404, {"code": 5, "message": "not found"})
                    outer.keys[eui] = body["deviceKeys"]
                    return self.answer(200, {})
                return self.answer(404, {"code": 5, "message": "no route"})

            def answer(self, status, obj):
                raw = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chirp():
    cs = FakeChirpStack()
    yield cs
    cs.close()


def test_chirpstack_gets_devices_and_keys_in_its_shape(registry, chirp):
    devices = enroll(registry, 2)
    results = chirpstack.export(registry, AARHUS, url=chirp.url, api_key=TOKEN, application_id=APP_ID,
                                device_profile_id=PROFILE_ID)
    assert [r.outcome for r in results] == ["created", "created"]
    assert [p for p, _, _ in chirp.requests] == [
        "/api/devices", f"/api/devices/{devices[0][0].dev_eui.lower()}/keys",
        "/api/devices", f"/api/devices/{devices[1][0].dev_eui.lower()}/keys"]
    for _, headers, _ in chirp.requests:
        assert headers["Grpc-Metadata-Authorization"] == f"Bearer {TOKEN}"
        assert headers["Content-Type"] == "application/json"
    for rec, ident in devices:
        dev = chirp.devices[rec.dev_eui.lower()]
        assert {"devEui", "name", "applicationId", "deviceProfileId", "joinEui"} <= set(dev)
        assert (dev["applicationId"], dev["deviceProfileId"], dev["joinEui"]) == (APP_ID, PROFILE_ID, rec.join_eui.lower())
        assert dev["name"] == rec.name and dev["tags"]["kommune"] == "0751"
        # LoRaWAN 1.0.x: the AppKey is the nwkKey; and the GenAppKey ChirpStack's FUOTA derives McKEKey from
        # (TS005 §4.3 for 1.0.x) is the AppKey as well, as the firmware derives it (bysans.fuota.dispatch.kek)
        k = ident.app_key.hex()
        assert chirp.keys[rec.dev_eui.lower()] == {"nwkKey": k, "appKey": k, "genAppKey": k}


def _device_keys_json_names():
    # api.DeviceKeys as ChirpStack v4.12+ declares it (api/proto/api/device.proto: dev_eui 1, nwk_key 2,
    # app_key 3, gen_app_key 4), in proto3's JSON mapping (lowerCamelCase): what the REST gateway takes
    names = "dev_eui nwk_key app_key gen_app_key".split()
    return {re.sub(r"_(\w)", lambda m: m.group(1).upper(), n) for n in names}


def test_chirpstack_device_keys_are_devicekeys_fields_and_set_the_gen_app_key(registry, chirp):
    [(rec, ident)] = enroll(registry, 1)
    chirpstack.export(registry, AARHUS, url=chirp.url, api_key=TOKEN, application_id=APP_ID,
                      device_profile_id=PROFILE_ID)
    [body] = [b for p, _, b in chirp.requests if p.endswith("/keys")]
    assert set(body) == {"deviceKeys"}                               # CreateDeviceKeysRequest.device_keys
    assert set(body["deviceKeys"]) <= _device_keys_json_names()
    assert body["deviceKeys"]["genAppKey"] == ident.app_key.hex()


def test_chirpstack_file_holds_the_requests_with_mode_0600_and_keys_nowhere_else(registry, db_url, key_env,
                                                                                 tmp_path, capsys):
    devices = enroll(registry, 2)
    out = tmp_path / "cs" / "devices.jsonl"
    code, stdout, stderr = run(["export", "chirpstack", "--db", db_url, "--operator", "anna", "--kommune", "751",
                                "--out", str(out), "--application-id", APP_ID, "--device-profile-id", PROFILE_ID],
                               capsys)
    assert code == 0, stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    for rec, ident in devices:
        eui = rec.dev_eui.lower()
        dev = next(x["body"]["device"] for x in lines if x["path"] == "/api/devices" and x["body"]["device"]["devEui"] == eui)
        assert (dev["applicationId"], dev["deviceProfileId"]) == (APP_ID, PROFILE_ID)
        [keys] = [x["body"]["deviceKeys"] for x in lines if x["path"] == f"/api/devices/{eui}/keys"]
        assert keys == {"nwkKey": ident.app_key.hex(), "appKey": ident.app_key.hex(), "genAppKey": ident.app_key.hex()}
        assert ident.app_key.hex() not in stdout + stderr and ident.app_key.hex().upper() not in stdout + stderr
    # --url and --out together, or neither: refused
    code, _, stderr = run(["export", "chirpstack", "--db", db_url, "--operator", "anna", "--kommune", "751",
                           "--application-id", APP_ID, "--device-profile-id", PROFILE_ID], capsys)
    assert code != 0 and "--url" in stderr and "--out" in stderr


def test_chirpstack_existing_devices_are_left_alone(registry, key):
    devices = enroll(registry, 2)
    cs = FakeChirpStack(existing=[devices[0][0].dev_eui])
    try:
        results = chirpstack.export(registry, AARHUS, url=cs.url, api_key=TOKEN, application_id=APP_ID,
                                    device_profile_id=PROFILE_ID)
    finally:
        cs.close()
    assert [r.outcome for r in results] == ["exists", "created"]
    assert devices[0][0].dev_eui.lower() not in cs.keys


def test_chirpstack_refused_token_is_an_error_without_the_token(registry, chirp):
    enroll(registry, 1)
    with pytest.raises(NetworkServerError) as e:
        chirpstack.export(registry, AARHUS, url=chirp.url, api_key="wrong-token-value", application_id=APP_ID,
                          device_profile_id=PROFILE_ID)
    assert "401" in e.value.message and "wrong-token-value" not in str(e.value) + e.value.hint
    client = chirpstack.ChirpStackClient(chirp.url, "wrong-token-value")
    assert "wrong-token-value" not in repr(client)


def test_chirpstack_unreachable_is_a_clear_error(registry):
    enroll(registry, 1)
    with pytest.raises(NetworkServerError) as e:
        chirpstack.export(registry, AARHUS, url="http://127.0.0.1:1", api_key=TOKEN, application_id=APP_ID,
                          device_profile_id=PROFILE_ID)
    assert "cannot reach" in e.value.message


def test_chirpstack_export_of_another_kommunes_device_is_refused(registry, chirp):
    [(theirs, _)] = enroll(registry, 1, op=ODENSE, kommune="461")
    from fleet.errors import NotFound

    with pytest.raises(NotFound):
        chirpstack.export(registry, AARHUS, url=chirp.url, api_key=TOKEN, application_id=APP_ID,
                          device_profile_id=PROFILE_ID, dev_euis=[theirs.dev_eui])
    assert chirp.requests == []


# -- the commands ----------------------------------------------------------------------------------------



def test_cli_export_chirpstack_reads_the_token_from_the_environment(registry, db_url, key_env, chirp, capsys,
                                                                   monkeypatch):
    enroll(registry, 2)
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    args = ["export", "chirpstack", "--db", db_url, "--kommune", "751", "--url", chirp.url, "--api-key-env",
            "CS_TOKEN", "--application-id", APP_ID, "--device-profile-id", PROFILE_ID, "--json"]
    code, out, err = run(args, capsys)
    assert code == 2 and "CS_TOKEN" in err and chirp.requests == []
    monkeypatch.setenv("CS_TOKEN", TOKEN)
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert [r["outcome"] for r in json.loads(out)] == ["created", "created"]
    assert TOKEN not in out + err


def test_cli_export_os2iot_writes_files_and_never_prints_keys(registry, db_url, key_env, tmp_path, capsys,
                                                             monkeypatch):
    devices = enroll(registry, 3)
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    code, out, err = run(["export", "os2iot", "--db", db_url, "--kommune", "751", "--device-profile-id", PROFILE_ID,
                          "--out", str(tmp_path / "os2iot")], capsys)
    assert code == 0, err
    assert out.strip() == str(tmp_path / "os2iot" / "os2iot-001.csv")
    for _, ident in devices:
        assert ident.app_key.hex() not in (out + err).lower()
