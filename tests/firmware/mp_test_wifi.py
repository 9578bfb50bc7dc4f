# WiFi for a check-in (bysans.wifi) against a fake `network` module that follows MicroPython's ESP32 WLAN
# status codes: the join's outcome names, the bounded wait with the watchdog fed, the radio always off after.
import json
import os
import sys

WIFI = "/tmp/bysans_mp_wifi.json"


class FakeWLAN:
    """status() runs a script of codes, one per call, then repeats the last."""

    def __init__(self, net):
        self.net = net

    def active(self, on=None):
        if on is not None:
            self.net.active = on
            self.net.log.append("active %d" % on)
        return self.net.active

    def connect(self, ssid, key):
        assert self.net.active, "connect with the radio off"
        self.net.log.append("connect %s" % ssid)
        self.net.script = list(self.net.scripts.get(ssid, [1001]))

    def disconnect(self):
        self.net.log.append("disconnect")

    def status(self, param=None):
        if param == "rssi":
            return -70
        s = self.net.script
        return s.pop(0) if len(s) > 1 else s[0]


class FakeNetwork:
    STA_IF = 0

    def __init__(self, scripts):
        self.scripts = scripts
        self.active = False
        self.log = []
        self.script = [1000]

    def WLAN(self, interface):
        return FakeWLAN(self)


class Board:
    def __init__(self):
        self.now = 0

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.now += ms


def _setup(networks, scripts):
    with open(WIFI, "w") as f:
        f.write(json.dumps({"networks": networks}))
    net = FakeNetwork(scripts)
    sys.modules["network"] = net
    return net


def test_join_reports_the_link_and_down_turns_the_radio_off():
    from bysans import wifi

    net = _setup([{"ssid": "skole", "password": "hemmelig-42"}], {"skole": [1001, 1001, 1001, 1010]})
    feeds = []
    link, outcome = wifi.up(Board(), lambda: feeds.append(1), WIFI)
    assert outcome == "OK" and link.ssid == "skole" and link.rssi == -70 and link.join_ms == 300, (outcome, link)
    assert len(feeds) == 3 and net.active
    wifi.down(link)
    assert not net.active


def test_each_failure_has_its_name_and_leaves_the_radio_off():
    from bysans import wifi

    for code, name in ((202, "WRONG_PASSWORD"), (201, "NO_AP_FOUND"), (210, "NO_COMPATIBLE_SECURITY"),
                       (1001, "JOIN_TIMEOUT")):
        net = _setup([{"ssid": "skole", "password": "x"}], {"skole": [1001, code]})
        b = Board()
        link, outcome = wifi.up(b, None, WIFI, join_ms=5000)
        assert link is None and outcome == name, (code, outcome)
        assert not net.active and net.log[-1] == "active 0"
        assert b.now <= 5000 + wifi.POLL_MS  # the wait is bounded


def test_the_second_network_is_tried_after_the_first_fails():
    from bysans import wifi

    net = _setup([{"ssid": "a", "password": "p"}, {"ssid": "b", "password": "q"}], {"a": [201], "b": [1010]})
    link, outcome = wifi.up(Board(), None, WIFI)
    assert outcome == "OK" and link.ssid == "b"
    assert [e for e in net.log if e.startswith("connect")] == ["connect a", "connect b"]


def test_without_credentials_the_radio_stays_off():
    from bysans import wifi

    net = _setup([], {})
    os.remove(WIFI)
    assert wifi.up(Board(), None, WIFI) == (None, "NO_CREDENTIALS")
    assert net.log == []
