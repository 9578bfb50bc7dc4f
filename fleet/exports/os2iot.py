"""OS2iot bulk import: a CSV of OTAA devices, in files of at most 50 devices (OS2iot imports 50 at a time).

The header is OS2iot's, exactly (REFERENCE §4; the LoRaWAN OTAA sample OS2iot's web interface offers,
OS2iot/OS2iot-frontend src/assets/docs/iotdevice_lorawan_otaa.csv, minus `serviceProfileID`, which went
with ChirpStack v3; tests/data/os2iot/ keeps that template). A row per device:

    name              the registry's device name (OS2iot: 1 to 50 characters)
    id                empty (OS2iot gives new devices their id; a filled id updates an existing device)
    type              LORAWAN
    longitude         WGS84, empty if unknown (OS2iot then stores 0: see position_warnings)
    latitude          WGS84, empty if unknown
    commentOnLocation the site
    comment           "kommune 0751 Aarhus; waste; board virtual; sensors ..."
    deviceModelId     empty, or --device-model-id
    devEUI            16 hex digits, lower case
    deviceProfileID   the ChirpStack device profile's UUID in OS2iot (--device-profile-id)
    skipFCntCheck     false
    activationType    OTAA
    OTAAapplicationKey the AppKey, 32 hex digits, lower case

OS2iot's own rules, applied here before anything is written (OS2iot/OS2iot-backend):
- src/entities/dto/create-iot-device.dto.ts: name @MinLength(1) @MaxLength(50); latitude -90..90,
  longitude -180..180; commentOnLocation and comment @MaxLength(1024).
- src/entities/dto/chirpstack/chirpstack-device-contents.dto.ts: deviceProfileID @IsUUID(); devEUI
  @IsHexadecimal() @Length(16, 16).
- src/entities/dto/create-lorawan-settings.dto.ts: OTAAapplicationKey @Length(32, 32) @IsHexadecimal().
- OS2iot-frontend src/app/applications/bulk-import/bulk-mapping.ts: an empty longitude or latitude
  becomes 0, so a device without a position lands at 0,0 (warned about, not refused).
class-validator's @IsUUID() is validator.js isUUID(): older releases accept any 8-4-4-4-12 hex string,
newer ones also want an RFC 9562 version digit (1-8) and variant (8, 9, a, b). UUID_RE asks for the
stricter form, so an id that passes here passes every OS2iot; ChirpStack's own ids (version 4) do.

The files hold AppKeys: they are created with mode 0600, and each key read is in the audit log.
"""

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError
from ..registry import DeviceRecord, Operator, Registry

HEADER = ("name,id,type,longitude,latitude,commentOnLocation,comment,deviceModelId,devEUI,deviceProfileID,"
          "skipFCntCheck,activationType,OTAAapplicationKey").split(",")
BATCH = 50
NAME_MAX = 50          # create-iot-device.dto.ts: @MaxLength(50)
COMMENT_MAX = 1024     # commentOnLocation, comment: @MaxLength(1024)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)


class Export(NamedTuple):
    files: list[Path]
    n_devices: int
    warnings: list[str]     # for the operator; the CLI prints them on stderr


def name_problem(name: str | None) -> str | None:
    """What OS2iot would refuse about a device name, or None. Enrollment calls this for every name it
    records, so a device never gets a name that OS2iot's import refuses."""
    if name is None:
        return None
    if not name.strip():
        return "empty: OS2iot needs a name"
    if len(name) > NAME_MAX:
        return f"{len(name)} characters: OS2iot takes at most {NAME_MAX}"
    return None


def check_device_profile_id(value: str) -> str:
    """The device profile id as OS2iot's validator wants it (a UUID), lower case; UsageError otherwise."""
    v = (value or "").strip()
    if not v:
        raise UsageError("OS2iot needs a device profile id for the import",
                         hint="copy it from OS2iot (LoRaWAN > device profiles) into --device-profile-id")
    if not UUID_RE.match(v):
        raise UsageError(f"'{v}' is not a device profile id: OS2iot wants a UUID such as "
                         "2c8cd1d4-3b7e-4c8e-9f1a-6d5e4b3a2f10",
                         hint="copy the id from the device profile's page in OS2iot (LoRaWAN > device profiles); "
                              "it is 32 hex digits in groups 8-4-4-4-12")
    return v.lower()


def position_warnings(devices: Sequence[DeviceRecord]) -> list[str]:
    return [f"{d.dev_eui} ({d.name}) has no position: OS2iot will put it at 0,0; "
            f"set it in OS2iot after the import, or enroll it with --lat/--lon"
            for d in devices if d.latitude is None or d.longitude is None]


def check_devices(devices: Sequence[DeviceRecord]) -> None:
    """Refuses (UsageError naming every device) what OS2iot's import would refuse in a row."""
    bad = [f"{d.dev_eui} name '{d.name}': {p}" for d in devices if (p := name_problem(d.name))]
    bad += [f"{d.dev_eui} site: {len(d.site)} characters, OS2iot takes at most {COMMENT_MAX}"
            for d in devices if len(d.site) > COMMENT_MAX]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UsageError(f"OS2iot would refuse {len(bad)} device{'s' if len(bad) != 1 else ''}: {bad[0]}{more}; "
                         "no file was written",
                         hint=f"give the devices names of at most {NAME_MAX} characters, then export again")


def rows(devices: Sequence[DeviceRecord], app_keys: dict[str, bytes], *, device_profile_id: str,
         device_model_id: str = "") -> list[list[str]]:
    out = []
    for d in devices:
        comment = f"kommune {d.kommune_kode} {d.kommune_navn}; {d.kind}; board {d.board}"
        if d.sensors:
            comment += "; sensors " + " ".join(d.sensors)
        out.append([d.name, "", "LORAWAN",
                    "" if d.longitude is None else f"{d.longitude:.6f}",
                    "" if d.latitude is None else f"{d.latitude:.6f}",
                    d.site, comment[:COMMENT_MAX], device_model_id, d.dev_eui.lower(), device_profile_id, "false",
                    "OTAA", app_keys[d.dev_eui].hex()])
    return out


def write_files(out: Path, table: list[list[str]], *, batch: int = BATCH) -> list[Path]:
    """`out` is a directory (files os2iot-001.csv, ...) or, for at most `batch` rows, a .csv file."""
    if out.suffix.lower() == ".csv":
        if len(table) > batch:
            raise UsageError(f"{len(table)} devices are more than OS2iot imports at once ({batch})",
                             hint="give a directory for --out: the devices are split into files of 50")
        targets = [(out, table)]
    else:
        targets = [(out / f"os2iot-{i // batch + 1:03d}.csv", table[i:i + batch]) for i in range(0, len(table), batch)]
    written = []
    for path, part in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(HEADER)
            w.writerows(part)
        os.replace(tmp, path)
        written.append(path)
    return written


def export(registry: Registry, operator: Operator, out, *, device_profile_id: str, kommune=None,
           device_model_id: str = "", state: str | None = None) -> Export:
    """Writes the operator's devices (one kommune's if given) as OS2iot bulk-import CSV files.
    Returns the files, the number of devices and warnings (devices OS2iot will put at 0,0).
    Retired devices are left out. Nothing is read or written when OS2iot would refuse the input."""
    profile = check_device_profile_id(device_profile_id)
    devices = [d for d in registry.list_devices(operator, kommune=kommune, state=state) if d.state != "retired"]
    if not devices:
        raise UsageError("no devices to export", hint="'fleet devices list' shows what you may see")
    check_devices(devices)
    keys = registry.app_keys(operator, [d.dev_eui for d in devices], purpose="export os2iot")
    files = write_files(Path(out), rows(devices, keys, device_profile_id=profile, device_model_id=device_model_id))
    return Export(files, len(devices), position_warnings(devices))
