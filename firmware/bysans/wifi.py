# WiFi for a check-in (docs/ota.md "WiFi"): up() turns the radio on and joins one of the networks in
# /config/wifi.json, waiting a bounded time with the watchdog fed; down() turns it off again. The radio is on
# only between the two: the OTA client calls them around its check-in, never otherwise.
#
# /config/wifi.json (written by `fleet wifi set`, never printed): {"networks": [{"ssid": "...", "password": "..."}]}
# tried in order. WPA2-Personal (or open); MicroPython's ESP32 port has no WPA2-Enterprise (REFERENCE-2 §3).
#
# The outcome is a name the check-in reports: OK, or NO_CREDENTIALS, NO_AP_FOUND, WRONG_PASSWORD,
# JOIN_TIMEOUT (no answer or no DHCP lease in time), BEACON_TIMEOUT, NO_COMPATIBLE_SECURITY, CONNECT_FAIL,
# HANDSHAKE_TIMEOUT, RADIO (the radio would not start).
import json

from micropython import const

from bysans.device_spec import WIFI_CONFIG

WIFI_PATH = WIFI_CONFIG
JOIN_MS = const(20000)  # association + DHCP, per network
POLL_MS = const(100)
_GOT_IP = const(1010)
_CONNECTING = const(1001)
_IDLE = const(1000)
_NAMES = {200: "BEACON_TIMEOUT", 201: "NO_AP_FOUND", 202: "WRONG_PASSWORD", 203: "CONNECT_FAIL",
          204: "HANDSHAKE_TIMEOUT", 210: "NO_COMPATIBLE_SECURITY", 211: "NO_COMPATIBLE_SECURITY",
          212: "NO_AP_FOUND"}


def networks(path=WIFI_PATH):
    """[(ssid, password), ...] from the device's WiFi file; [] when it is missing or unreadable."""
    try:
        with open(path) as f:
            doc = json.load(f)
        return [(n["ssid"], n.get("password") or "") for n in doc["networks"] if n.get("ssid")]
    except (OSError, ValueError, KeyError, TypeError):
        return []


class Link:
    """An open WiFi link: the WLAN, the network joined, its RSSI and how long joining took."""

    def __init__(self, wlan, ssid, join_ms):
        self.wlan = wlan
        self.ssid = ssid
        self.join_ms = join_ms
        try:
            self.rssi = wlan.status("rssi")
        except (OSError, ValueError):
            self.rssi = None


def up(board, feed=None, path=WIFI_PATH, join_ms=JOIN_MS):
    """(Link, "OK") once a network gives a lease; (None, outcome name) otherwise, with the radio off."""
    nets = networks(path)
    if not nets:
        return None, "NO_CREDENTIALS"
    import network

    wlan = network.WLAN(network.STA_IF)
    outcome = "JOIN_TIMEOUT"
    try:
        wlan.active(True)
        for ssid, key in nets:
            t0 = board.ticks_ms()
            wlan.connect(ssid, key)
            while True:
                st = wlan.status()
                waited = board.ticks_diff(board.ticks_ms(), t0)
                if st == _GOT_IP:
                    return Link(wlan, ssid, waited), "OK"
                if st != _CONNECTING and st != _IDLE:
                    outcome = _NAMES.get(st, "CONNECT_FAIL")
                    break
                if waited >= join_ms:
                    outcome = "JOIN_TIMEOUT"
                    break
                if feed is not None:
                    feed()
                board.sleep_ms(POLL_MS)
            wlan.disconnect()
    except OSError:
        outcome = "RADIO"
    _off(wlan)
    return None, outcome


def down(link):
    """The radio off (link may be None)."""
    if link is not None:
        _off(link.wlan)


def _off(wlan):
    try:
        wlan.disconnect()
    except OSError:
        pass
    try:
        wlan.active(False)
    except OSError:
        pass
