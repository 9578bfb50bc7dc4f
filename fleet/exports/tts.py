"""The Things Stack v3: end devices as "The Things Stack JSON", the file the Console's "Import end devices"
and `ttn-lw-cli end-devices create --application-id APP < devices.json` read.

The format (followed from The Things Stack's documentation, "Adding devices in bulk > JSON File
Reference", and its converter, TheThingsNetwork/lorawan-stack pkg/devicetemplates/ttsjson.go): a stream
of ttnpb.EndDevice objects in JSON, one after the other; here one object a line:

    {"ids": {"device_id": "eui-70b3d57ed0000001", "dev_eui": "70B3D57ED0000001", "join_eui": "...",
             "application_ids": {"application_id": "..."}},           <- only with --application-id
     "name": "waste-0751-d0000001", "description": "Park Allé 1 (0751 Aarhus)",
     "attributes": {"kommune": "0751", "kind": "waste", "board": "virtual", "site": "Park Allé 1"},
     "locations": {"user": {"latitude": 56.1535, "longitude": 10.209, "source": "SOURCE_REGISTRY"}},
     "lorawan_version": "MAC_V1_0_4", "lorawan_phy_version": "RP002_V1_0_3",
     "frequency_plan_id": "EU_863_870_TTN", "supports_join": true,
     "root_keys": {"app_key": {"key": "<AppKey, 32 hex digits>"}}}

Rules of The Things Stack applied before anything is written (lorawan-stack pkg/validate/id.go and the
EndDevice field rules in api/api.md): device_id `^[a-z0-9](?:[-]?[a-z0-9]){2,}$`, at most 36 characters
(here always `eui-` and the DevEUI, the Console's own default); name at most 50 characters; description
at most 2000; attribute keys are ids, values at most 200 characters. The node speaks LoRaWAN 1.0.4 with
the RP002 regional parameters (firmware/bysans/lorawan), so MAC_V1_0_4 and, for 1.0.x, the AppKey is
root_keys.app_key.

The file holds AppKeys: it is created with mode 0600, and each key read is in the audit log.
"""

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError
from ..registry import DeviceRecord, Operator, Registry

ID_RE = re.compile(r"^[a-z0-9](?:[-]?[a-z0-9]){2,}$")
ID_MAX = 36
NAME_MAX = 50
DESCRIPTION_MAX = 2000
ATTRIBUTE_VALUE_MAX = 200
LORAWAN_VERSION = "MAC_V1_0_4"
PHY_VERSIONS = ("RP002_V1_0_0", "RP002_V1_0_1", "RP002_V1_0_2", "RP002_V1_0_3", "RP002_V1_0_4")
DEFAULT_PHY_VERSION = "RP002_V1_0_3"
DEFAULT_FREQUENCY_PLAN = "EU_863_870_TTN"


class Export(NamedTuple):
    path: Path
    n_devices: int


def device_id(d: DeviceRecord) -> str:
    return f"eui-{d.dev_eui.lower()}"


def check_id(value: str, what: str) -> str:
    if len(value) > ID_MAX or not ID_RE.match(value):
        raise UsageError(f"'{value}' is not a The Things Stack {what}",
                         hint=f"3 to {ID_MAX} characters: lower-case letters, digits and single dashes, "
                              "not at the start or end")
    return value


def end_device(d: DeviceRecord, app_key: bytes, *, application_id: str = "", frequency_plan_id: str,
               phy_version: str) -> dict:
    ids: dict[str, object] = {"device_id": device_id(d), "dev_eui": d.dev_eui.upper(), "join_eui": d.join_eui.upper()}
    if application_id:
        ids["application_ids"] = {"application_id": application_id}
    attributes = {"kommune": d.kommune_kode, "kind": d.kind, "board": d.board,
                  "site": d.site[:ATTRIBUTE_VALUE_MAX]}
    if d.sensors:
        attributes["sensors"] = " ".join(d.sensors)[:ATTRIBUTE_VALUE_MAX]
    dev: dict[str, object] = {"ids": ids, "name": d.name,
           "description": f"{d.site} ({d.kommune_kode} {d.kommune_navn})"[:DESCRIPTION_MAX],
           "attributes": attributes}
    if d.latitude is not None and d.longitude is not None:
        dev["locations"] = {"user": {"latitude": d.latitude, "longitude": d.longitude, "source": "SOURCE_REGISTRY"}}
    dev.update({"lorawan_version": LORAWAN_VERSION, "lorawan_phy_version": phy_version,
                "frequency_plan_id": frequency_plan_id, "supports_join": True,
                "root_keys": {"app_key": {"key": app_key.hex().upper()}}})
    return dev


def check_devices(devices: Sequence[DeviceRecord]) -> None:
    bad = [f"{d.dev_eui} name '{d.name}': {len(d.name)} characters, The Things Stack takes at most {NAME_MAX}"
           for d in devices if len(d.name) > NAME_MAX]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UsageError(f"The Things Stack would refuse {len(bad)} device{'s' if len(bad) != 1 else ''}: "
                         f"{bad[0]}{more}; no file was written",
                         hint=f"give the devices names of at most {NAME_MAX} characters, then export again")


def write_file(path: Path, objects: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for obj in objects:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def export(registry: Registry, operator: Operator, out, *, kommune=None, application_id: str = "",
           frequency_plan_id: str = DEFAULT_FREQUENCY_PLAN, phy_version: str = DEFAULT_PHY_VERSION,
           state: str | None = None) -> Export:
    """Writes the operator's devices (one kommune's if given) to one The Things Stack JSON file.
    Returns the file and the number of devices. A device without a position has no `locations`.
    Retired devices are left out. Nothing is read or written when The Things Stack would refuse the input."""
    if application_id:
        check_id(application_id, "application id")
    if phy_version not in PHY_VERSIONS:
        raise UsageError(f"'{phy_version}' is not a regional-parameters version for LoRaWAN 1.0.4",
                         hint=f"use one of: {', '.join(PHY_VERSIONS)}")
    if not frequency_plan_id or not re.fullmatch(r"[A-Za-z0-9_]+", frequency_plan_id):
        raise UsageError(f"'{frequency_plan_id}' is not a frequency plan id",
                         hint=f"e.g. {DEFAULT_FREQUENCY_PLAN} (The Things Stack's 'Frequency plans' list)")
    devices = [d for d in registry.list_devices(operator, kommune=kommune, state=state) if d.state != "retired"]
    if not devices:
        raise UsageError("no devices to export", hint="'fleet devices list' shows what you may see")
    check_devices(devices)
    keys = registry.app_keys(operator, [d.dev_eui for d in devices], purpose="export tts")
    objects = [end_device(d, keys[d.dev_eui], application_id=application_id, frequency_plan_id=frequency_plan_id,
                          phy_version=phy_version) for d in devices]
    return Export(write_file(Path(out), objects), len(devices))
