"""OTA over WiFi on virtual boards whose only network is their scenario's access point (fleet/sim/wlan.py):
no AP, a drop-out in the middle of a download, a wrong password (docs/ota.md "WiFi")."""

import json
import threading
import time

import pytest

from fleet.rollout import OtaStore
from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server
from lab.ota import HEAP, LAB_AP, LAB_WIFI, Lab, Repl, provision

OTA_RUN = "from bysans import otapoll, hal\nprint(otapoll.run(hal.board()))\n"
LAST = "print(open('/ota/client.json').read())\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("otawifi"))
    lab.r1 = lab.build("1.0.0")
    lab.r2 = lab.derive(lab.r1, "2.0.0")
    lab.publish(lab.r1)
    lab.repo.mkdir(exist_ok=True)
    app = build_app(ServeContext(repo_dir=lab.repo, db_url=lab.db_url, options={"sealer": lab.sealer}))
    lab.hook = None  # called with the request path before the server answers

    async def hooked(scope, receive, send):
        if scope["type"] == "http" and lab.hook is not None:
            lab.hook(scope["path"])
        await app(scope, receive, send)
    lab.server = Server(hooked).start()
    lab.store_ = OtaStore.open(lab.db_url)
    yield lab
    lab.store_.close()
    lab.stop()


def _board(make_board, lab, dev, wifi=LAB_WIFI):
    b = make_board(heap=HEAP, scenario=lab.wifi_scenario)
    provision(b, lab.r1, lab.root1, lab.config(dev), wifi=wifi)
    r = Repl(b)
    r.run("import machine")
    r.c.write(b"\x02")
    b.reset()  # boots slot a as a board in the field does
    r.reconnect()
    return b, r


def _wlan(b):
    return b.status()["wlan"]


def test_no_ap_costs_only_the_check_in_and_is_reported_at_the_next(make_board, lab):
    dev = "70B3D57ED0000A01"
    b, r = _board(make_board, lab, dev)
    b.ctl.request("wlan", ap=LAB_AP["ssid"], off_s=8)  # the building's WiFi is down for a while
    t = time.monotonic()
    line = r.run(OTA_RUN).strip().splitlines()[-1]
    assert line == "ota: error NO_NETWORK (wifi NO_AP_FOUND)", line  # one line for the node's log; no raise
    assert not _wlan(b)["active"], "the radio stays on after a failed join"
    assert lab.store_.device(dev) is None  # nothing reached the server
    time.sleep(max(0.0, 8.5 - (time.monotonic() - t)))
    out = r.poll()
    assert out["state"] == "confirmed", out
    d = lab.store_.device(dev)  # this check-in carried the last outcome: no network
    assert (d["state"], d["reason"], d["version"]) == ("error", "NO_NETWORK", "1.0.0"), d
    r.report()
    assert lab.store_.device(dev)["state"] == "confirmed"
    w = _wlan(b)
    assert not w["active"] and w["connects"] >= 3
    r.close()


def test_a_wrong_password_is_a_clear_status_without_a_retry_storm(make_board, lab):
    dev = "70B3D57ED0000A03"
    b, r = _board(make_board, lab, dev, wifi=[{"ssid": LAB_AP["ssid"], "password": "not-the-password"}])
    assert r.run(OTA_RUN).strip().splitlines()[-1] == "ota: error NO_NETWORK (wifi WRONG_PASSWORD)"
    last = json.loads(r.run(LAST))
    assert (last["fails"], last["detail"]) == (1, "wifi WRONG_PASSWORD")
    assert r.run(OTA_RUN).strip().splitlines()[-1] == "ota: not due (the client's own back-off)"
    assert _wlan(b)["connects"] == 1  # the second wake never turned the radio on
    now = int(r.run("from bysans import hal\nprint(hal.board().epoch_s())\n"))
    assert last["next_s"] - now >= 50  # retry_s (60) after one failure, doubling after each
    assert "not-the-password" not in r.run(OTA_RUN) + json.dumps(b.status()) + json.dumps(b.events())
    r.close()


# last in the module: it publishes 2.0.0
def test_a_drop_out_mid_download_leaves_the_version_and_a_later_retry_updates(make_board, lab):
    dev = "70B3D57ED0000A02"
    b, r = _board(make_board, lab, dev)
    assert r.poll()["state"] == "confirmed"
    lab.publish(lab.r2)
    dropped = threading.Event()

    def drop(path):
        if path.startswith("/repo/objects/") and not dropped.is_set():
            dropped.set()  # the AP vanishes as the first object starts to flow (lab timeout_s is 3)
            b.ctl.request("wlan", ap=LAB_AP["ssid"], off_s=6)
    lab.hook = drop
    try:
        t = time.monotonic()
        out = r.poll()
    finally:
        lab.hook = None
    assert dropped.is_set()
    assert (out["state"], out["reason"]) == ("error", "TIMEOUT"), out
    st = r.state()
    assert (st["version"], st["slot"], st["trial"]) == ("1.0.0", "a", None)
    assert r.files_ok()
    assert json.loads(r.run(LAST))["fails"] == 1
    time.sleep(max(0.0, 6.5 - (time.monotonic() - t)))
    assert r.poll() is None  # the retry downloads, switches and resets
    st = r.state()
    assert (st["version"], st["slot"]) == ("2.0.0", "b")
    assert r.files_ok()
    r.close()
