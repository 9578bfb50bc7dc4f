"""A board's WiFi credentials over serial: /config/wifi.json, which the firmware's bysans.wifi joins for its
OTA check-ins (docs/ota.md "WiFi"). WPA2-Personal or open networks; MicroPython's ESP32 port has no
WPA2-Enterprise (REFERENCE-2 §3). The file holds passwords: nothing here prints, logs or repeats them.

    with Session(port) as s:
        write_networks(s, [{"ssid": "skole-iot", "password": "..."}])
"""

import json

from fleet import device_spec
from fleet.errors import UsageError

from .deploy import deploy

WIFI_PATH = device_spec.WIFI_CONFIG
MAX_NETWORKS = 4


def wifi_file(networks: list[dict]) -> bytes:
    """The file's bytes, after checking each network (errors name the SSID, never the password)."""
    if not isinstance(networks, list) or not 1 <= len(networks) <= MAX_NETWORKS:
        raise UsageError(f"give 1 to {MAX_NETWORKS} WiFi networks", hint="e.g. [{\"ssid\": ..., \"password\": ...}]")
    out = []
    for n in networks:
        ssid, password = n.get("ssid"), n.get("password") or ""
        if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= 32:
            raise UsageError("a WiFi SSID is 1 to 32 bytes")
        if not isinstance(password, str) or (password and not 8 <= len(password) <= 63):
            raise UsageError(f"the password for '{ssid}' must be 8 to 63 characters (WPA2-Personal), or empty "
                             "for an open network", hint="WPA2-Enterprise is not supported by MicroPython's ESP32 port")
        if set(n) - {"ssid", "password"}:
            raise UsageError(f"unknown key for '{ssid}': {', '.join(sorted(set(n) - {'ssid', 'password'}))}")
        out.append({"ssid": ssid, "password": password})
    return json.dumps({"networks": out}).encode()


def write_networks(session, networks: list[dict]):
    """Writes (replaces) the board's WiFi networks; returns their SSIDs."""
    deploy(session, {WIFI_PATH: wifi_file(networks)})
    return [n["ssid"] for n in networks]
