"""The virtual board's WiFi model (fleet/sim/wlan.py): what status() an ESP32 would report, over time."""

import pytest

from fleet.errors import ScenarioError
from fleet.sim import wlan
from fleet.sim.scenario import load_dict


class Clock:
    def __init__(self):
        self.t = 0

    def now_ms(self):
        return self.t


AP = {"ssid": "skole-iot", "password": "hemmelig-42", "associate_s": 2, "dhcp_s": 1,
      "until": "1h", "dropouts": [{"at": "10m", "duration_s": 60}]}


def station(*aps):
    clock = Clock()
    return clock, wlan.Station(clock, wlan.parse({"aps": list(aps)}, 0))


def connect(st, ssid, key):
    st.handle("wlan.active 1")
    assert st.handle(f"wlan.connect {ssid.encode().hex()} {key.encode().hex()}") == "ok"


def test_association_then_lease_then_dropout_and_return():
    clock, st = station(AP)
    assert st.status() == wlan.STAT_IDLE and not st.up()
    connect(st, "skole-iot", "hemmelig-42")
    for t, want in ((0, 1001), (2999, 1001), (3000, 1010), (600_000, 200), (660_000, 1001), (663_000, 1010),
                    (3_600_000, 200)):
        clock.t = t
        assert st.status() == want, t
    clock.t = 663_000
    assert st.up() and st.handle("wlan.info") == "ok -60 192.168.1.50"
    st.handle("wlan.active 0")
    assert not st.up() and st.status() == wlan.STAT_IDLE and st.radio_on_ms() == 663_000


def test_wrong_password_missing_ap_and_late_ap():
    clock, st = station(AP, {"ssid": "late", "security": "open", "from": "5m", "associate_s": 1, "dhcp_s": 1})
    connect(st, "skole-iot", "wrong-password")
    clock.t = 1999
    assert st.status() == wlan.STAT_CONNECTING
    clock.t = 2000
    assert st.status() == wlan.STAT_WRONG_PASSWORD and not st.up()
    connect(st, "nowhere", "whatever1")
    clock.t += wlan.SCAN_MS
    assert st.status() == wlan.STAT_NO_AP_FOUND
    clock.t = 0
    connect(st, "late", "")
    clock.t = 299_000
    assert st.status() == wlan.STAT_NO_AP_FOUND
    clock.t = 302_000
    assert st.status() == wlan.STAT_GOT_IP  # it came on the air and the station kept trying


def test_no_lease_and_enterprise():
    clock, st = station({"ssid": "nodhcp", "security": "open", "dhcp_s": None},
                        {"ssid": "eduroam", "security": "wpa2-enterprise", "password": "x" * 8})
    connect(st, "nodhcp", "")
    clock.t = 3_600_000
    assert st.status() == wlan.STAT_CONNECTING
    connect(st, "eduroam", "x" * 8)
    clock.t += wlan.SCAN_MS
    assert st.status() == wlan.STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY


def test_connect_before_active_is_refused_and_scan_lists_aps_on_air():
    clock, st = station(AP)
    assert st.handle("wlan.connect 41 -").startswith("err")
    st.handle("wlan.active 1")
    assert st.handle("wlan.scan") == "ok " + "skole-iot".encode().hex() + ",-60,3"
    clock.t = 600_001
    assert st.handle("wlan.scan") == "ok "


@pytest.mark.parametrize("ap, msg", [
    ({"ssid": ""}, "ssid"),
    ({"ssid": "a", "password": "short"}, "password"),
    ({"ssid": "a", "password": "longenough", "security": "wep"}, "security"),
    ({"ssid": "a", "password": "longenough", "colour": 1}, "unknown key"),
    ({"ssid": "a", "password": "longenough", "dropouts": [{"duration_s": 5}]}, "dropouts"),
    ({"ssid": "a", "password": "longenough", "rate_kbps": 0}, "rate_kbps"),
    ({"ssid": "a", "password": "longenough", "rate_kbps": "fast"}, "rate_kbps"),
])
def test_bad_access_points_are_refused_with_the_key(ap, msg):
    with pytest.raises(ScenarioError, match=msg):
        load_dict({"wifi": {"aps": [ap]}})


def test_without_an_access_point_in_the_scenario_there_is_no_network():
    for sc in (None, load_dict({"description": "no wifi key"}), load_dict({"wifi": {"aps": []}})):
        st = wlan.station(Clock(), sc)
        assert st.gated and not st.up() and st.aps == []


def test_the_link_rate_is_the_joined_aps_and_only_while_it_holds_a_lease():
    clock, st = station(dict(AP, rate_kbps=1000), {"ssid": "fast", "security": "open", "associate_s": 1, "dhcp_s": 1})
    assert st.handle("wlan.rate") == "ok 0"
    connect(st, "skole-iot", "hemmelig-42")
    assert st.handle("wlan.rate") == "ok 0"  # associating: no sockets pass yet
    clock.t = 3000
    assert st.handle("wlan.rate") == "ok 1000"
    connect(st, "fast", "")
    clock.t = 5000
    assert st.handle("wlan.rate") == "ok 0"  # an AP without rate_kbps: as fast as the loopback
