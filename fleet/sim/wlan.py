"""The WiFi around a virtual board: the access points its scenario provides, and its station's state.

A virtual board has no network of its own: its `socket` (fleet/sim/rom/_netgate.py) reaches the host's
loopback only while its `network.WLAN` (fleet/sim/rom/network.py) holds a DHCP lease from one of these
access points, as an ESP32 reaches its server only through the building's WiFi. The board asks over the
hardware line protocol (hwbus.py):

    wlan.active 0|1          ->  ok                  (the radio on or off; off also drops the association)
    wlan.connect SSID KEY    ->  ok                  (hex; an empty KEY is "-": start associating)
    wlan.disconnect          ->  ok
    wlan.status              ->  ok CODE             (MicroPython's ESP32 status() values, see STAT_*)
    wlan.up                  ->  ok 1|0              (associated with a lease now: sockets may pass)
    wlan.info                ->  ok RSSI IP          (err 128 when not connected)
    wlan.scan                ->  ok SSIDHEX,RSSI,AUTHMODE ...   (the access points in the air now)
    wlan.rate                ->  ok KBIT                (the joined AP's link rate, kbit/s; 0: not limited)

The scenario's "wifi" key (docs/formats/scenario.md):

    "wifi": {"aps": [{"ssid": "skole-iot", "security": "wpa2", "password": "...", "rssi": -67,
                      "associate_s": 2.5, "dhcp_s": 1.0, "from": "0s", "until": "3h", "rate_kbps": 1000,
                      "dropouts": [{"at": "40m", "duration_s": 120}]}]}

"rate_kbps" is the link's rate for the board's socket payload, both ways, in simulated time (the gate paces
each socket's bytes to it); without it the link is as fast as the host's loopback.

Association times are the scenario's: REFERENCE-2 §3 found no ESP32 measurement (an ESP8266 took about
4 s for a first connect, 1.3-1.5 s with a cached channel), so the defaults below are indicative only.
"""

from ..errors import ScenarioError

# MicroPython v1.28 ESP32 status() codes (REFERENCE-2 §3; ESP-IDF wifi_err_reason_t for the failures)
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY = 210

SECURITY = {"open": 0, "wpa": 2, "wpa2": 3, "wpa3": 6, "wpa2-enterprise": 5}  # network.SEC_* values
SCAN_MS = 3000  # an all-channel scan, then NO_AP_FOUND (an assumption: about 13 channels x 120 ms, twice)
DEFAULT_ASSOCIATE_S = 2.5
DEFAULT_DHCP_S = 1.0
_AP_KEYS = {"ssid", "security", "password", "rssi", "associate_s", "dhcp_s", "from", "until", "dropouts",
            "rate_kbps"}


class AccessPoint:
    def __init__(self, spec, where: str, start_ms: int):
        from .scenario import _number, parse_time

        if not isinstance(spec, dict):
            raise ScenarioError(f"{where}: an access point is an object")
        unknown = set(spec) - _AP_KEYS
        if unknown:
            raise ScenarioError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_AP_KEYS))})")
        ssid = spec.get("ssid")
        if not isinstance(ssid, str) or not 0 < len(ssid.encode()) <= 32:
            raise ScenarioError(f"{where}.ssid: 1 to 32 bytes of text")
        self.ssid = ssid
        self.security = spec.get("security", "wpa2")
        if self.security not in SECURITY:
            raise ScenarioError(f"{where}.security: {self.security!r} is not one of {', '.join(SECURITY)}")
        self.password = spec.get("password", "")
        if not isinstance(self.password, str) or (self.security != "open" and not 8 <= len(self.password) <= 63):
            raise ScenarioError(f"{where}.password: WPA needs 8 to 63 characters")
        self.rssi = int(_number(spec.get("rssi", -60), f"{where}.rssi"))
        rate = spec.get("rate_kbps")
        self.rate_kbps = None if rate is None else _number(rate, f"{where}.rate_kbps")
        if self.rate_kbps is not None and not 0 < self.rate_kbps <= 1_000_000:
            raise ScenarioError(f"{where}.rate_kbps: a link rate in kbit/s, above 0 (e.g. 1000 for 1 Mbit/s)")
        self.associate_ms = int(parse_time(spec.get("associate_s", DEFAULT_ASSOCIATE_S), f"{where}.associate_s") * 1000)
        dhcp = spec.get("dhcp_s", DEFAULT_DHCP_S)
        self.dhcp_ms = None if dhcp is None else int(parse_time(dhcp, f"{where}.dhcp_s") * 1000)  # None: no lease
        t0 = start_ms + int(parse_time(spec.get("from", 0), f"{where}.from") * 1000)
        t1 = start_ms + int(parse_time(spec["until"], f"{where}.until") * 1000) if "until" in spec else None
        dropouts = spec.get("dropouts", [])
        if not isinstance(dropouts, list):
            raise ScenarioError(f"{where}.dropouts: expected a list of {{\"at\", \"duration_s\"}}")
        gaps = []
        for i, d in enumerate(dropouts):
            if not isinstance(d, dict) or set(d) - {"at", "duration_s"} or "at" not in d:
                raise ScenarioError(f"{where}.dropouts[{i}]: expected {{\"at\": TIME, \"duration_s\": TIME}}")
            a = start_ms + int(parse_time(d["at"], f"{where}.dropouts[{i}].at") * 1000)
            gaps.append((a, a + int(parse_time(d.get("duration_s", 60), f"{where}.dropouts[{i}].duration_s") * 1000)))
        self.span, self.gaps = (t0, t1), gaps
        self.intervals = _subtract(self.span, sorted(gaps))

    def drop(self, at_ms: int, off_ms: int):
        """A drop-out from now on (a test's, through the control socket)."""
        self.gaps.append((at_ms, at_ms + off_ms))
        self.intervals = _subtract(self.span, sorted(self.gaps))

    def on_air(self, t: int):
        """The start of the stretch during which the AP is on the air at `t`, or None when it is not."""
        for a, b in self.intervals:
            if a <= t and (b is None or t < b):
                return a
        return None

    def on_air_between(self, t0: int, t1: int) -> bool:
        return any((b is None or b > t0) and a <= t1 for a, b in self.intervals)


def _subtract(span, gaps):
    out = []
    a, end = span
    for g0, g1 in gaps:
        if end is not None and g0 >= end:
            break
        if g1 <= a:
            continue
        if g0 > a:
            out.append((a, g0))
        a = max(a, g1)
    if end is None or a < end:
        out.append((a, end))
    return out


def parse(spec, start_ms: int, where="wifi") -> list[AccessPoint]:
    """The access points of a scenario's "wifi" value."""
    if not isinstance(spec, dict) or set(spec) - {"aps"}:
        raise ScenarioError(f"{where}: expected {{\"aps\": [access point, ...]}}")
    aps = spec.get("aps", [])
    if not isinstance(aps, list):
        raise ScenarioError(f"{where}.aps: expected a list")
    return [AccessPoint(a, f"{where}.aps[{i}]", start_ms) for i, a in enumerate(aps)]


class Station:
    """The board's WiFi station (STA interface) against the scenario's access points, in simulated time."""

    def __init__(self, clock, aps=(), *, gated=True):
        self.clock = clock
        self.aps = list(aps)
        self.gated = gated  # False: the board's sockets reach the host freely (no WLAN needed)
        self.active = False
        self.request = None  # (ssid, key, since_ms) of the last connect()
        self.on_since = None
        self.on_ms = 0  # the radio's total on-time (for energy figures)
        self.connects = 0

    def power_off(self):
        """The interpreter ended (reset, deep sleep, power cut): the radio is off, as on an ESP32."""
        self._set_active(False)

    def _set_active(self, on: bool):
        now = self.clock.now_ms()
        if on and not self.active:
            self.on_since = now
        elif not on and self.active:
            self.on_ms += now - self.on_since
            self.on_since = None
            self.request = None
        self.active = on

    def radio_on_ms(self) -> int:
        return self.on_ms + (self.clock.now_ms() - self.on_since if self.active else 0)

    def _ap(self, ssid):
        return next((a for a in self.aps if a.ssid == ssid), None)

    def status(self, now=None) -> int:
        now = self.clock.now_ms() if now is None else now
        if not self.active or self.request is None:
            return STAT_IDLE
        ssid, key, t0 = self.request
        ap = self._ap(ssid)
        if ap is None or not ap.on_air_between(t0, now):
            return STAT_CONNECTING if now - t0 < SCAN_MS else STAT_NO_AP_FOUND
        if ap.security == "wpa2-enterprise":  # MicroPython's ESP32 port has no EAP client (REFERENCE-2 §3)
            return STAT_CONNECTING if now - t0 < SCAN_MS else STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY
        start = ap.on_air(now)
        if start is None:  # it was there since connect(), and is gone now
            return STAT_BEACON_TIMEOUT
        begin = max(t0, start)
        if ap.security != "open" and key != ap.password:
            return STAT_CONNECTING if now - begin < ap.associate_ms else STAT_WRONG_PASSWORD
        if ap.dhcp_ms is not None and now >= begin + ap.associate_ms + ap.dhcp_ms:
            return STAT_GOT_IP
        return STAT_CONNECTING

    def up(self) -> bool:
        """May the board's sockets pass now?"""
        return not self.gated or self.status() == STAT_GOT_IP

    def as_dict(self) -> dict:
        return {"gated": self.gated, "active": self.active, "status": self.status(),
                "ssid": self.request[0] if self.request else None, "radio_on_ms": self.radio_on_ms(),
                "connects": self.connects, "aps": [a.ssid for a in self.aps]}

    def control(self, req: dict) -> dict:
        """The control socket's {"op": "wlan", "ap": SSID, "off_s": N}: that AP drops out for N s from now."""
        if "ap" in req:
            ap = self._ap(req["ap"])
            if ap is None:
                raise ValueError(f"no access point {req['ap']!r} in this board's scenario")
            ap.drop(self.clock.now_ms(), int(float(req.get("off_s", 60)) * 1000))
        return self.as_dict()

    # ----- the line protocol --------------------------------------------------------------------------

    def handle(self, line: str) -> str:
        parts = line.split()
        op, args = parts[0], parts[1:]
        if op == "wlan.active":
            self._set_active(args[0] == "1")
            return "ok"
        if op == "wlan.connect":
            if not self.active:
                return "err 5 Wifi Not Started"
            ssid = bytes.fromhex(args[0]).decode(errors="replace")
            key = "" if len(args) < 2 or args[1] == "-" else bytes.fromhex(args[1]).decode(errors="replace")
            self.request = (ssid, key, self.clock.now_ms())
            self.connects += 1
            return "ok"
        if op == "wlan.disconnect":
            self.request = None
            return "ok"
        if op == "wlan.status":
            return f"ok {self.status()}"
        if op == "wlan.up":
            return "ok 1" if self.up() else "ok 0"
        if op == "wlan.info":
            if self.status() != STAT_GOT_IP:
                return "err 128 not connected"
            ap = self._ap(self.request[0])
            return f"ok {ap.rssi} 192.168.{self.aps.index(ap) + 1}.50"
        if op == "wlan.rate":
            ap = self._ap(self.request[0]) if self.request and self.status() == STAT_GOT_IP else None
            return f"ok {(ap.rate_kbps or 0) if ap else 0:g}"
        if op == "wlan.scan":
            if not self.active:
                return "err 5 Wifi Not Started"
            now = self.clock.now_ms()
            return "ok " + " ".join(f"{a.ssid.encode().hex()},{a.rssi},{SECURITY[a.security]}"
                                    for a in self.aps if a.on_air(now) is not None)
        return f"err 22 unknown request {op}"


def station(clock, scenario) -> Station:
    """The board's station, among its scenario's access points: none without a scenario or its "wifi" key,
    and then the board reaches no network at all, as an ESP32 with nothing to join."""
    return Station(clock, getattr(scenario, "aps", None) or ())
