"""TS003 Application Layer Clock Synchronization v1.0.0 (FPort 202), the network server's side: reads the
device's AppTimeReq and answers it, builds the requests. The layouts are the firmware's
(firmware/bysans/fuota/setup_spec.py, read through fleet.firmware_data); docs/formats/fuota.md, "Clock sync".

    for cmd in parse_uplink(payload):             # what a device sent on FPort 202
        if cmd["name"] == "AppTimeReq":
            answer = app_time_ans(correction(cmd["device_time"], gps_time(received_at)), cmd["token"])
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone

from ..errors import LoRaWANFrameError, UsageError
from ..firmware_data import load

SPEC = load("bysans/fuota/setup_spec.py")
PORT = SPEC.CLOCK_PORT

_UP_NAMES = {SPEC.PACKAGE_VERSION: "PackageVersionAns", SPEC.APP_TIME: "AppTimeReq",
             SPEC.PERIODICITY: "DeviceAppTimePeriodicityAns"}


def gps_time(unix_s: float) -> int:
    """GPS seconds (since 1980-01-06, no leap seconds) of a Unix time."""
    return int(unix_s) - SPEC.GPS_UNIX_OFFSET_S + SPEC.GPS_LEAP_S


def unix_time(gps_s: int) -> int:
    return int(gps_s) + SPEC.GPS_UNIX_OFFSET_S - SPEC.GPS_LEAP_S


def rxpk_gps_time(rxpk: dict) -> int:
    """The GPS time a gateway stamped on an uplink (its `time` field, UTC ISO 8601)."""
    text = rxpk.get("time")
    if not text:
        raise LoRaWANFrameError("the uplink has no gateway time: the gateway cannot say when it heard it")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LoRaWANFrameError(f"the gateway's time {text!r} is not ISO 8601") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return gps_time(dt.timestamp())


def parse_uplink(payload: bytes) -> list[dict]:
    """The commands of an uplink on FPort 202. Raises LoRaWANFrameError for an unknown or cut-short one."""
    out, i = [], 0
    while i < len(payload):
        cid = payload[i]
        size = SPEC.CLOCK_UP_LEN.get(cid)
        if size is None:
            raise LoRaWANFrameError(f"clock sync: unknown uplink command 0x{cid:02x} at byte {i}")
        body = bytes(payload[i + 1:i + 1 + size])
        if len(body) != size:
            raise LoRaWANFrameError(f"clock sync: {_UP_NAMES[cid]} cut short ({len(body)} of {size} bytes)")
        cmd = {"name": _UP_NAMES[cid], "cid": cid}
        if cid == SPEC.PACKAGE_VERSION:
            cmd.update(package=body[0], version=body[1])
        elif cid == SPEC.APP_TIME:
            t, param = struct.unpack("<IB", body)
            cmd.update(device_time=t, token=param & SPEC.TOKEN_MASK, ans_required=bool(param & SPEC.ANS_REQUIRED))
        else:
            status, t = struct.unpack("<BI", body)
            cmd.update(not_supported=bool(status & 1), device_time=t)
        out.append(cmd)
        i += 1 + size
    return out


def correction(device_time: int, server_time: int) -> int:
    """TimeCorrection: what the device adds to its clock (server GPS time at the uplink - DeviceTime)."""
    c = int(server_time) - int(device_time)
    if not -(1 << 31) <= c < (1 << 31):
        raise UsageError(f"a time correction of {c} s does not fit TS003's 32 bits")
    return c


def app_time_ans(time_correction: int, token: int) -> bytes:
    if not 0 <= token <= SPEC.TOKEN_MASK:
        raise UsageError(f"TokenAns is 0..{SPEC.TOKEN_MASK}, got {token}")
    return bytes([SPEC.APP_TIME]) + struct.pack("<iB", time_correction, token)


def periodicity_req(period: int) -> bytes:
    """DeviceAppTimePeriodicityReq: the device asks every 128 * 2^period s."""
    if not 0 <= period <= 15:
        raise UsageError(f"Period is 0..15 (128 s .. 48 days), got {period}")
    return bytes([SPEC.PERIODICITY, period])


def force_resync_req(nb_transmissions: int) -> bytes:
    if not 1 <= nb_transmissions <= SPEC.NB_TRANS_MASK:
        raise UsageError(f"NbTransmissions is 1..{SPEC.NB_TRANS_MASK}, got {nb_transmissions}")
    return bytes([SPEC.FORCE_RESYNC, nb_transmissions])


def package_version_req() -> bytes:
    return bytes([SPEC.PACKAGE_VERSION])
