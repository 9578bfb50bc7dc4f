"""`fleet ota enable` and `fleet ota check-in` on virtual boards against `fleet serve`'s routes: a board put
on OTA by the command checks in with its own key, takes a new release and confirms it, rolls back a
release whose own self-test fails on it (and says so), and a check-in never waits longer than --timeout."""

import base64
import json
import os
import socket
import subprocess
import time

import pytest

from e2e_tools import BIN
from fleet.registry.sealing import Sealer
from fleet.rollout import OtaStore
from lab.ota import HEAP, LAB_AP, PASS, Lab

DEV = "70B3D57ED00000C1"
# a release's own self-test (bysans/checks.py, docs/ota.md): refuses a board whose battery is low
LOW_BATTERY_CHECK = b"""def run(board):
    from bysans.drivers.battery import from_board
    mv = from_board(board).read_mv()
    if mv < 3500:
        raise ValueError('battery %d mV' % mv)
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    secret = os.urandom(32)
    lab = Lab(tmp_path_factory.mktemp("otacli"))
    lab.env = dict(os.environ, FLEET_DB=lab.db_url, FLEET_KEYS_DIR=str(lab.base / "keys"),
                   FLEET_SECRET_KEY=base64.b64encode(secret).decode(), FLEET_OPERATOR="anna",
                   FLEET_WIFI_PASSWORD=LAB_AP["password"], **PASS)
    lab.r1 = lab.build("1.0.0")
    lab.publish(lab.r1)
    lab.serve(sealer=Sealer(secret))
    yield lab
    lab.stop()


def fleet(lab, *args, timeout=180):
    return subprocess.run([str(BIN / "fleet"), *args], capture_output=True, text=True, timeout=timeout, env=lab.env)


def wifi_board(make_board, lab):
    """A board in the lab's WiFi, with its credentials (its check-ins go over WiFi, as on a real board)."""
    b = make_board(heap=HEAP, scenario=lab.wifi_scenario)
    r = fleet(lab, "wifi", "set", "--port", f"sim:{b.name}", "--ssid", LAB_AP["ssid"])
    assert r.returncode == 0, r.stderr
    return b


def device(lab, dev):
    store = OtaStore.open(lab.db_url)
    try:
        return store.device(dev)
    finally:
        store.close()


def test_enable_then_check_in_takes_a_release_and_confirms_it(make_board, lab):
    b = wifi_board(make_board, lab)
    r = fleet(lab, "ota", "enable", "--port", f"sim:{b.name}", "--release", str(lab.r1), "--server",
              lab.server.url, "--device", DEV.lower(), "--kommune", "751", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["device"], out["kommune"], out["checkin_key"]) == (DEV, "0751", "written")
    assert out["files_written"] > 50
    store = OtaStore.open(lab.db_url)
    try:
        assert store.has_checkin_key(DEV)
    finally:
        store.close()

    r = fleet(lab, "ota", "check-in", "--port", f"sim:{b.name}")
    assert r.returncode == 0, r.stderr
    assert "runs 1.0.0 (slot a)" in r.stdout and "took no release" in r.stdout, r.stdout
    d = device(lab, DEV)
    assert (d["version"], d["checkins"]) == ("1.0.0", 1), d  # its key was accepted: a rejected one counts nothing

    r2 = lab.derive(lab.r1, "2.0.0")
    lab.publish(r2)
    r = fleet(lab, "ota", "check-in", "--port", f"sim:{b.name}", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["before"]["version"] == "1.0.0" and out["took"] and out["take"], out
    assert (out["after"]["version"], out["after"]["slot"], out["after"]["last"]["state"]) == ("2.0.0", "b",
                                                                                              "confirmed"), out
    d = device(lab, DEV)
    assert (d["version"], d["slot"], d["state"]) == ("2.0.0", "b", "confirmed"), d


def test_a_release_whose_self_test_fails_is_rolled_back_and_said(make_board, lab):
    dev = "70B3D57ED00000C2"
    b = wifi_board(make_board, lab)
    r = fleet(lab, "ota", "enable", "--port", f"sim:{b.name}", "--release", str(lab.r1), "--server",
              lab.server.url, "--device", dev, "--kommune", "751")
    assert r.returncode == 0, r.stderr
    assert f"device {dev} (kommune 0751) is on OTA" in r.stdout and "key" in r.stdout
    b.set_world(battery_mv=3300)
    lab.publish(lab.derive(lab.r1, "3.0.0", files={"bysans/checks.mpy": LOW_BATTERY_CHECK}))
    r = fleet(lab, "ota", "check-in", "--port", f"sim:{b.name}")
    assert r.returncode == 0, r.stderr
    assert "took release" in r.stdout and "runs 1.0.0 (slot a), rolled_back: SELFTEST: battery" in r.stdout, \
        r.stdout
    d = device(lab, dev)
    assert (d["version"], d["state"]) == ("1.0.0", "rolled_back") and "battery" in d["reason"], d
    # it will not take that release again
    r = fleet(lab, "ota", "check-in", "--port", f"sim:{b.name}", "--json")
    out = json.loads(r.stdout)
    assert not out["took"] and out["outcome"]["state"] == "rolled_back", out
    # and its later check-ins still say why it rolled back, not only that it did
    assert "battery" in out["outcome"]["reason"], out
    r = fleet(lab, "ota", "check-in", "--port", f"sim:{b.name}", "--json")
    assert r.returncode == 0, r.stderr
    d = device(lab, dev)
    assert d["state"] == "rolled_back" and "battery" in d["reason"], d


def test_check_in_is_bounded_and_a_board_without_ota_is_told(make_board, lab):
    b = wifi_board(make_board, lab)
    t0 = time.monotonic()
    r = fleet(lab, "ota", "check-in", "--port", f"sim:{b.name}", "--json")
    assert r.returncode != 0 and time.monotonic() - t0 < 30
    err = json.loads(r.stderr.strip().splitlines()[-1])
    assert "fleet ota enable" in err["hint"], err

    silent = socket.socket()  # a server that takes the connection and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        url = "http://127.0.0.1:%d" % silent.getsockname()[1]
        r = fleet(lab, "ota", "enable", "--port", f"sim:{b.name}", "--release", str(lab.r1), "--server", url,
                  "--device", "70B3D57ED00000C3", "--kommune", "751")
        assert r.returncode == 0, r.stderr
        t0 = time.monotonic()
        r = fleet(lab, "ota", "check-in", "--port", f"sim:{b.name}", "--timeout", "3")
        took = time.monotonic() - t0
    finally:
        silent.close()
    assert r.returncode == 7 and "did not finish the check-in within 3 s" in r.stderr, (r.returncode, r.stderr)
    assert took < 20, took


def test_enable_refuses_a_kommune_that_is_not_the_devices_own_and_writes_nothing(make_board, lab):
    """The registry says which kommune a device belongs to: `fleet ota enable --kommune` naming another is
    refused before the board is touched (its check-ins would all be refused by the server)."""
    from provisioning.session import Session

    r = fleet(lab, "enroll", "-k", "751", "--no-board", "--site", "Rådhuset", "--kind", "env", "--board",
              "virtual", "--json")
    assert r.returncode == 0, r.stderr
    dev = json.loads(r.stdout)[0]["dev_eui"]
    b = make_board()
    r = fleet(lab, "ota", "enable", "--port", f"sim:{b.name}", "--release", str(lab.r1), "--server",
              lab.server.url, "--device", dev, "--kommune", "101")
    assert r.returncode == 4, r.stderr
    assert "belongs to kommune 0751" in r.stderr and "--kommune 0751" in r.stderr, r.stderr
    with Session(b.port) as s:
        assert "ota" not in s.exec("import os;print(os.listdir('/'))")
    store = OtaStore.open(lab.db_url)
    try:
        assert not store.has_checkin_key(dev)
    finally:
        store.close()
