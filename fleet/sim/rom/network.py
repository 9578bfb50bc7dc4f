# The virtual board's `network` module: MicroPython's ESP32 `network.WLAN` (v1.28, REFERENCE-2 §3) for the
# station interface, against the access points of the board's scenario (fleet/sim/wlan.py holds their
# model and the station's state; this asks it over the hardware line). Firmware code is the same on both.
import binascii

import _vboard
from micropython import const

STA_IF = const(0)
AP_IF = const(1)
STAT_IDLE = const(1000)
STAT_CONNECTING = const(1001)
STAT_GOT_IP = const(1010)
STAT_BEACON_TIMEOUT = const(200)
STAT_NO_AP_FOUND = const(201)
STAT_WRONG_PASSWORD = const(202)
STAT_ASSOC_FAIL = const(203)
STAT_CONNECT_FAIL = const(203)
STAT_HANDSHAKE_TIMEOUT = const(204)
STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY = const(210)
STAT_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD = const(211)
STAT_NO_AP_FOUND_IN_RSSI_THRESHOLD = const(212)
SEC_OPEN = const(0)
SEC_WEP = const(1)
SEC_WPA = const(2)
SEC_WPA2 = const(3)
SEC_WPA_WPA2 = const(4)
SEC_WPA2_ENT = const(5)
SEC_WPA3 = const(6)
SEC_WPA2_WPA3 = const(7)
PM_NONE = 0  # not const(): WLAN has them as class attributes too
PM_PERFORMANCE = 1
PM_POWERSAVE = 2

_state = {"active": False, "ssid": "", "reconnects": -1, "pm": PM_PERFORMANCE, "hostname": "bysans"}


def _hex(s):
    return binascii.hexlify(s.encode() if isinstance(s, str) else s).decode() or "-"


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF
    PM_NONE = PM_NONE
    PM_PERFORMANCE = PM_PERFORMANCE
    PM_POWERSAVE = PM_POWERSAVE

    def __init__(self, interface=STA_IF):
        if interface != STA_IF:
            raise ValueError("the virtual board simulates the station interface only")

    def active(self, is_active=None):
        if is_active is None:
            return _state["active"]
        _vboard.call("wlan.active %d" % (1 if is_active else 0))
        _state["active"] = bool(is_active)
        return _state["active"]

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not _state["active"]:
            raise OSError("Wifi Not Started")
        if bssid is not None and len(bssid) != 6:
            raise ValueError("bssid must be 6 bytes")
        if ssid is None:
            ssid = _state["ssid"]
        _state["ssid"] = ssid
        _vboard.call("wlan.connect %s %s" % (_hex(ssid), _hex(key or "")))

    def disconnect(self):
        _vboard.call("wlan.disconnect")

    def status(self, param=None):
        if param is None:
            return int(_vboard.call("wlan.status"))
        if param == "rssi":
            return int(self._info()[0])
        raise ValueError("unknown status param")

    def isconnected(self):
        return self.status() == STAT_GOT_IP

    def _info(self):
        try:
            return _vboard.call("wlan.info").decode().split()
        except OSError:
            raise OSError("Wifi Not Connected")

    def _addr(self):
        try:
            ip = self._info()[1]
        except OSError:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        gw = ip.rsplit(".", 1)[0] + ".1"
        return (ip, "255.255.255.0", gw, gw)

    def ifconfig(self, config=None):
        if config is not None:
            raise OSError("static addresses are not simulated")
        return self._addr()

    def ipconfig(self, key):
        a = self._addr()
        if key == "addr4":
            return (a[0], a[1])
        if key == "gw4":
            return a[2]
        if key == "dhcp4":
            return True
        raise ValueError("unknown config param")

    def config(self, *args, **kw):
        for k, v in kw.items():
            if k not in ("reconnects", "pm", "hostname", "dhcp_hostname", "txpower"):
                raise ValueError("unknown config param")
            _state[k] = v
        if not args:
            return None
        k = args[0]
        if k == "mac":
            return binascii.unhexlify(_vboard.board["mac"])
        if k in ("ssid", "essid"):
            return _state["ssid"]
        if k in _state:
            return _state[k]
        raise ValueError("unknown config param")

    def scan(self):
        if not _state["active"]:
            raise OSError("Wifi Not Started")
        out = []
        for i, entry in enumerate(_vboard.call("wlan.scan").decode().split()):
            ssid, rssi, auth = entry.split(",")
            out.append((binascii.unhexlify(ssid), bytes((2, 0xB7, 0x5A, 0, 0, i + 1)), 1 + 5 * (i % 3),
                        int(rssi), int(auth), False))
        return out
