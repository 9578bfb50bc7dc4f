"""OS2iot bulk import: a CSV of OTAA devices, in files of at most 50 devices (OS2iot imports 50 at a time).

The header is OS2iot's, exactly (REFERENCE §4). A row per device:

    name              the registry's device name
    id                empty (OS2iot gives new devices their id; a filled id updates an existing device)
    type              LORAWAN
    longitude         WGS84, empty if unknown
    latitude          WGS84, empty if unknown
    commentOnLocation the site
    comment           "kommune 0751 Aarhus; waste; board virtual; sensors ..."
    deviceModelId     empty, or --device-model-id
    devEUI            16 hex digits, lower case
    deviceProfileID   the ChirpStack device profile's UUID in OS2iot (--device-profile-id)
    skipFCntCheck     false
    activationType    OTAA
    OTAAapplicationKey the AppKey, 32 hex digits, lower case

The files hold AppKeys: they are created with mode 0600, and each key read is in the audit log.
"""

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError
from ..registry import DeviceRecord, Operator, Registry

HEADER = ("name,id,type,longitude,latitude,commentOnLocation,comment,deviceModelId,devEUI,deviceProfileID,"
          "skipFCntCheck,activationType,OTAAapplicationKey").split(",")
BATCH = 50


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
                    d.site, comment, device_model_id, d.dev_eui.lower(), device_profile_id, "false", "OTAA",
                    app_keys[d.dev_eui].hex()])
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
           device_model_id: str = "", state: str | None = None) -> tuple[list[Path], int]:
    """Writes the operator's devices (one kommune's if given) as OS2iot bulk-import CSV files.
    Returns (files, number of devices). Retired devices are left out."""
    if not device_profile_id:
        raise UsageError("OS2iot needs a device profile id for the import",
                         hint="copy it from OS2iot (LoRaWAN > device profiles) into --device-profile-id")
    devices = [d for d in registry.list_devices(operator, kommune=kommune, state=state) if d.state != "retired"]
    if not devices:
        raise UsageError("no devices to export", hint="'fleet devices list' shows what you may see")
    keys = registry.app_keys(operator, [d.dev_eui for d in devices], purpose="export os2iot")
    return write_files(Path(out), rows(devices, keys, device_profile_id=device_profile_id,
                                       device_model_id=device_model_id)), len(devices)
