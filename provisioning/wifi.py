"""A board's WiFi credentials over serial: /config/wifi.json, which the firmware's bysans.wifi joins for its
OTA check-ins (docs/ota.md "WiFi"). WPA2-Personal or open networks; MicroPython's ESP32 port has no
WPA2-Enterprise (REFERENCE-2 §3). The file holds passwords: nothing here prints, logs or repeats them.

    with Session(port) as s:
        write_networks(s, [{"ssid": "skole-iot", "password": "..."}])
"""

import json

from fleet import device_spec
from fleet.errors import UsageError
from fleet.registry.wifi import MAX_NETWORKS, check_network

from .deploy import deploy

WIFI_PATH = device_spec.WIFI_CONFIG


def wifi_file(networks: list[dict]) -> bytes:
    """The file's bytes, after checking each network (errors name the SSID, never the password)."""
    if not isinstance(networks, list) or not 1 <= len(networks) <= MAX_NETWORKS:
        raise UsageError(f"give 1 to {MAX_NETWORKS} WiFi networks", hint="e.g. [{\"ssid\": ..., \"password\": ...}]")
    out = []
    for n in networks:
        if not isinstance(n, dict):
            raise UsageError("a WiFi network is an object with \"ssid\" and \"password\"")
        ssid, password = check_network(n.get("ssid"), n.get("password"))
        if set(n) - {"ssid", "password"}:
            raise UsageError(f"unknown key for '{ssid}': {', '.join(sorted(set(n) - {'ssid', 'password'}))}")
        out.append({"ssid": ssid, "password": password})
    return json.dumps({"networks": out}).encode()


def write_networks(session, networks: list[dict]):
    """Writes (replaces) the board's WiFi networks; returns their SSIDs."""
    deploy(session, {WIFI_PATH: wifi_file(networks)})
    return [n["ssid"] for n in networks]


def board_place(session) -> dict:
    """{"kommune", "site", "name", "board"} from the board's /config/device.json (written at enrollment);
    UsageError when the board was never enrolled."""
    path = device_spec.DEVICE_CONFIG
    from .session import literal

    text = literal(session.exec(f"try:\n with open({path!r}) as f:\n  print(repr(f.read()))\n"
                                "except OSError:\n print(repr(''))").strip())
    try:
        doc = json.loads(text)
        return {k: doc[k] for k in ("kommune", "site", "name", "board")}
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path} on the board is not a device file", hint="enroll the board first "
                         "(fleet enroll --port P), or give its networks with 'fleet wifi set'") from None


def write_from_registry(session, registry, operator) -> tuple[dict, list[str]]:
    """Writes the networks the registry holds for the board's site and kommune (Registry.wifi_for) to the
    board: (its place, the SSIDs written). UsageError when the registry holds none for it."""
    from fleet.registry.wifi import site_key

    place = board_place(session)
    networks = registry.wifi_for(operator, place["kommune"], place["site"], purpose=f"fleet wifi push {place['name']}")
    if not networks:
        raise UsageError(f"the registry holds no WiFi network for site '{site_key(place['site'])}' or kommune "
                         f"{place['kommune']}", hint="add one with 'fleet wifi networks add'")
    return place, write_networks(session, networks)
