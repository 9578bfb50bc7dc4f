"""ChirpStack v4: create devices and their OTAA keys through the REST API (chirpstack-rest-api).

Per device:
    POST {url}/api/devices               {"device": {devEui, name, description, applicationId,
                                                     deviceProfileId, joinEui, skipFcntCheck, isDisabled, tags}}
    POST {url}/api/devices/{devEui}/keys {"deviceKeys": {"nwkKey": AppKey, "appKey": AppKey,
                                                         "genAppKey": AppKey}}
with the API token in `Grpc-Metadata-Authorization: Bearer <token>` (the REST proxy passes it on as the
gRPC `authorization` metadata). The keys follow ChirpStack v4's `api.DeviceKeys` (api/proto/api/device.proto,
proto3 JSON names of nwk_key, app_key, gen_app_key; gen_app_key since v4.12.0, the release with FUOTA
deployments built in): for LoRaWAN 1.0.x ChirpStack takes the AppKey as `nwkKey`; `appKey` is set to the
same value so a 1.1 profile does not end up with an empty key; `genAppKey` is the key ChirpStack derives
McRootKey from for a 1.0.x device's FUOTA (TS005 §4.3, its applayer/multicastsetup.rs), and this firmware
derives it from the AppKey (bysans.fuota.dispatch.kek), so it is the AppKey too.

`write()` puts the same requests in a file instead (JSON lines `{"path", "body"}`, mode 0600), for a
ChirpStack the fleet host cannot reach: the keys are in that file and nowhere else.

A device that exists already (HTTP 409) is reported as `exists` and left as it is. The token is never
part of a message, a repr or an exception.
"""

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from ..errors import NetworkServerError, UsageError
from ..registry import DeviceRecord, Operator, Registry

AUTH_HEADER = "Grpc-Metadata-Authorization"


@dataclass(frozen=True)
class Result:
    dev_eui: str
    outcome: str          # created | exists | failed
    detail: str = ""


class ChirpStackClient:
    def __init__(self, url: str, api_key: str, *, timeout: float = 15.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"'{url}' is not an http(s) URL", hint="e.g. --url http://chirpstack.example:8090")
        if not api_key:
            raise UsageError("no ChirpStack API key", hint="create one in ChirpStack (API keys) and put it in "
                                                           "the environment variable named by --api-key-env")
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<ChirpStackClient {self.url}>"

    def _post(self, path: str, body: dict) -> tuple[int, dict | None]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json",
                                              AUTH_HEADER: f"Bearer {self._api_key}"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw.strip() else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                detail = json.loads(raw) if raw.strip() else None
            except ValueError:
                detail = {"message": raw[:200].decode(errors="replace")}
            return e.code, detail
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise NetworkServerError(f"cannot reach ChirpStack at {self.url}: {reason}") from None

    def create_device(self, device: dict, app_key: bytes) -> Result:
        eui = device["devEui"]
        status, answer = self._post("/api/devices", {"device": device})
        if status in (401, 403):
            raise NetworkServerError(f"ChirpStack refused the API key (HTTP {status})",
                                     hint="check the key and that it may create devices in this application")
        if status == 409:
            return Result(eui, "exists", "the device exists in ChirpStack; left as it is")
        if status >= 300:
            return Result(eui, "failed", f"creating the device: HTTP {status} {_message(answer)}")
        status, answer = self._post(f"/api/devices/{quote(eui)}/keys", keys_body(app_key))
        if status >= 300:
            return Result(eui, "failed", f"setting the keys: HTTP {status} {_message(answer)}")
        return Result(eui, "created")


def _message(answer) -> str:
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("error") or "")[:200]
    return ""


def keys_body(app_key: bytes) -> dict:
    """CreateDeviceKeysRequest's body (api.DeviceKeys, see above): the AppKey as nwkKey, appKey and genAppKey."""
    key = app_key.hex()
    return {"deviceKeys": {"nwkKey": key, "appKey": key, "genAppKey": key}}


def device_body(d: DeviceRecord, *, application_id: str, device_profile_id: str) -> dict:
    return {"devEui": d.dev_eui.lower(), "name": d.name,
            "description": f"{d.site} ({d.kommune_kode} {d.kommune_navn})"[:200],
            "applicationId": application_id, "deviceProfileId": device_profile_id,
            "joinEui": d.join_eui.lower(), "skipFcntCheck": False, "isDisabled": False,
            "tags": {"kommune": d.kommune_kode, "kind": d.kind, "board": d.board, "site": d.site[:100]},
            "variables": {}}


def _devices(registry, operator, kommune, dev_euis):
    if dev_euis:
        devices = [registry.get_device(operator, e) for e in dev_euis]
    else:
        devices = [d for d in registry.list_devices(operator, kommune=kommune) if d.state != "retired"]
    if not devices:
        raise UsageError("no devices to export", hint="'fleet devices list' shows what you may see")
    return devices


def write(registry: Registry, operator: Operator, out, *, application_id: str, device_profile_id: str,
          kommune=None, dev_euis=None) -> tuple[Path, int]:
    """The REST requests export() would send, one JSON line each ({"path": ..., "body": ...}: the device,
    then its keys), in a file written with mode 0600. Returns (path, devices)."""
    if not application_id or not device_profile_id:
        raise UsageError("ChirpStack needs an application id and a device profile id",
                         hint="copy both UUIDs from ChirpStack's web interface")
    devices = _devices(registry, operator, kommune, dev_euis)
    keys = registry.app_keys(operator, [d.dev_eui for d in devices], purpose=f"export chirpstack file {out}")
    lines = []
    for d in devices:
        lines.append({"path": "/api/devices", "body": {"device": device_body(
            d, application_id=application_id, device_profile_id=device_profile_id)}})
        lines.append({"path": f"/api/devices/{d.dev_eui.lower()}/keys", "body": keys_body(keys[d.dev_eui])})
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for obj in lines:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    os.chmod(tmp, 0o600)  # O_CREAT's mode only applies to a new file
    os.replace(tmp, path)
    return path, len(devices)


def export(registry: Registry, operator: Operator, *, url: str, api_key: str, application_id: str,
           device_profile_id: str, kommune=None, dev_euis=None, progress=None) -> list[Result]:
    """Creates the operator's devices (one kommune's, or the DevEUIs given) in ChirpStack.
    `progress(done, total)` is called after each device. Retired devices are left out."""
    if not application_id or not device_profile_id:
        raise UsageError("ChirpStack needs an application id and a device profile id",
                         hint="copy both UUIDs from ChirpStack's web interface")
    client = ChirpStackClient(url, api_key)
    devices = _devices(registry, operator, kommune, dev_euis)
    keys = registry.app_keys(operator, [d.dev_eui for d in devices], purpose=f"export chirpstack {client.url}")
    results = []
    for i, d in enumerate(devices):
        results.append(client.create_device(device_body(d, application_id=application_id,
                                                        device_profile_id=device_profile_id), keys[d.dev_eui]))
        if progress:
            progress(i + 1, len(devices))
    return results
