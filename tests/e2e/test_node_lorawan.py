"""The node app on an enrolled, OTA-provisioned virtual board, end to end: `fleet enroll --port` writes its
LoRaWAN credentials, provisioning.ota puts a signed release in slot a with the OTA set-up, and the board then
runs by itself. Its first wake joins (OTAA) over the simulated air; its readings travel as LoRaWAN uplinks
to the network server (lab.netserver, keys from the registry as a network-server export takes
them), which decrypts them, and they decode with fleet.codec to the simulated world; the frame counter goes
up across deep sleeps and a power cut (bysans.lorawan.store: RTC memory, then flash); and the OTA check-in
(`fleet serve`) comes at most once per ota_every_s."""

import base64
import json
import os
import time

import pytest

from e2e_tools import run_fleet
from fleet import device_spec
from fleet.codec import decode
from fleet.registry import Operator, Registry
from lab.netserver import NetworkServer
from lab.ota import LAB_WIFI, Lab
from lab.serialconsole import Console
from provisioning.deploy import deploy
from provisioning.session import Session

SPEED = 60            # a wake (boot, sensors, radio) costs about 0.2-0.4 s real, 12-24 s simulated
INTERVAL_S = 60
OTA_EVERY_S = 300
NODE = {"interval_s": INTERVAL_S, "batch_max_age_s": 2 * INTERVAL_S, "ota_every_s": OTA_EVERY_S}
WORLD = {"distance_mm": 600.0, "temperature_c": 18.5}
DEPTH_MM, OFFSET_MM = 1000, 150  # the node's defaults: fill = (depth - (distance - offset)) / depth


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """One registry for enrollment and for `fleet serve`'s check-ins, an update server, a signed release."""
    lab = Lab(tmp_path / "ota")
    monkeypatch.setenv("FLEET_DB", lab.db_url)
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    lab.rel = lab.build("1.0.0")
    lab.publish(lab.rel)
    lab.serve(poll_s=60)
    yield lab
    lab.stop()


@pytest.fixture
def ns():
    with NetworkServer() as server:
        yield server


def _enroll(board):
    proc = run_fleet("enroll", "-k", "751", "--port", board.port, "--site", "Ceres Allé 4, bin 2", "--kind",
                     "waste", "--json")
    assert proc.returncode == 0, proc.stderr
    [rec] = json.loads(proc.stdout)
    return rec


def _provision_ota(board, lab, dev_eui):
    """Slot a, the trusted root and the OTA config (with the device's check-in key: lab.config issues it),
    then the node's own config."""
    from provisioning.ota import provision

    with Session(board.port) as s:
        provision(s, lab.rel, root=lab.root1, config=lab.config(dev_eui), wifi=LAB_WIFI)
        deploy(s, {device_spec.NODE_CONFIG: json.dumps(NODE).encode()})


class Log:
    """The board's serial output, one wake per boot: reading it keeps the supervisor's port flowing."""

    def __init__(self, board):
        self.c = Console(board.port)
        self.text = ""

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.text += self.c.ser.read(65536).decode(errors="replace")

    def wakes(self):
        """[(reset cause, the app's lines)] per boot since the log was opened."""
        out = []
        for part in self.text.split("\nrst:")[1:]:
            lines = [ln.strip() for ln in part.splitlines()[1:] if ln.startswith("bysans")]
            cause = part.split("(", 1)[1].split(")", 1)[0] if "(" in part else "?"
            out.append((cause, lines))
        return out

    def close(self):
        self.c.close()


def _run_until(board, log, sim_ms, what, state=None):
    """Reads the log until the board's clock reaches sim_ms (and, if given, the board is in `state`)."""
    deadline = time.monotonic() + 3 * (sim_ms - board.status()["sim_ms"]) / 1000 / SPEED + 20
    while True:
        st = board.status()
        if st["sim_ms"] >= sim_ms and state in (None, st["state"]):
            return
        assert time.monotonic() < deadline, f"{what}: the board is {st['state']} at {st['sim_ms']}"
        log.pump(0.1)


def test_enrolled_node_joins_sends_over_the_air_and_checks_in_for_ota(make_board, lab, ns):
    board = make_board(speed=SPEED, forwarder=ns.address, scenario=lab.wifi_scenario)
    rec = _enroll(board)
    dev_eui = rec["dev_eui"]
    reg = Registry.open(lab.db_url)
    try:  # the network server gets the keys as an export to ChirpStack or OS2iot takes them
        keys = reg.app_keys(Operator("anna", "751"), [dev_eui], purpose="network server")
    finally:
        reg.close()
    ns.add_device(bytes.fromhex(dev_eui), bytes.fromhex(rec["join_eui"]), keys[dev_eui])
    _provision_ota(board, lab, dev_eui)
    board.set_world(**WORLD)

    log = Log(board)
    try:
        t0 = board.status()["sim_ms"]
        board.reset()  # the technician's reset: boot.py picks slot a, main.py runs the node
        _run_until(board, log, t0 + 7 * INTERVAL_S * 1000 + 30000, "before the power cut", state="sleeping")
        before = len(ns.uplinks)
        board.powercut()  # a battery swap while it sleeps: RTC memory is gone, the session and counters are
        #                   in flash (tests/e2e/test_lorawan_air.py cuts at any moment)
        t1 = board.status()["sim_ms"]
        _run_until(board, log, t1 + 4 * INTERVAL_S * 1000 + 30000, "after the power cut")
        log.pump(0.5)
    finally:
        log.close()
    st = board.status()
    # (a check-in runs in a boot of its own after a soft reset: part of its wake's stretch of log, no "rst:")
    events = [e for e in board.events() if e["event"] == "boot" and e["sim_ms"] >= t0]
    boots = [e for e in events if e["cause"] != "soft"]
    soft_boots = len(events) - len(boots)
    wakes = log.wakes()
    board.stop()

    # joined on the first wake (or, if a loaded host made it miss the join-accept's receive window, as a
    # field node can, on a next one with a fresh DevNonce), then never again; nothing refused: no bad MIC,
    # no DevNonce or frame counter used twice
    assert ns.problems == []
    nonces = [j["dev_nonce"] for j in ns.joins]
    assert nonces == list(range(len(nonces))) and 1 <= len(nonces) <= 3, ns.joins
    joined = [i for i, (_c, lines) in enumerate(wakes) if any(" wake " in ln and ", joined" in ln for ln in lines)]
    # (one wake may try twice: a join-accept missed in RX1 on a loaded host is asked for again in that wake)
    assert len(joined) == 1 and joined[0] <= len(nonces) - 1, (joined, wakes[:len(nonces)])
    assert st["boots"].get("watchdog", 0) == 0, st["boots"]
    # (a wake's simulated length grows with the host's load: at least six deep sleeps in the window)
    assert st["boots"].get("deepsleep", 0) >= 6 and st["boots"].get("power_on", 0) >= 1, st["boots"]

    # uplinks on every batch, the counter going up across deep sleeps and the power cut
    mine = [u for u in ns.uplinks if u.dev_eui.lower() == dev_eui.lower()]
    assert before >= 3 and len(mine) > before, (before, len(mine))
    fcnts = [u.fcnt for u in mine]
    assert fcnts == sorted(set(fcnts)), fcnts
    ups = [u for u in mine if u.fport == 1]
    # besides the readings, the clock sync (FUOTA, TS003 on FPort 202): the first joined wake asks, the lab
    # network server answers in RX1, and a synced node asks again only after its period (hours)
    # (and, on FPort 221, the daily diagnostics record: docs/formats/diagnostics.md)
    clock = [u for u in mine if u.fport == 202]
    assert {u.fport for u in mine} <= {1, 202, 221}, [(u.fport, u.fcnt) for u in mine]
    assert 1 <= len(clock) <= 2, [(u.fport, u.fcnt) for u in clock]
    assert len(ns.clock_syncs) == len(clock) and ns.clock_syncs[0]["token"] == 0

    # decrypted at the server, decoded on the host: the simulated world
    fill_bp = (DEPTH_MM - (WORLD["distance_mm"] - OFFSET_MM)) * 10000 // DEPTH_MM
    readings = [r for u in ups for r in decode(u.payload)["readings"]]
    assert len(readings) >= len(ups)
    for r in readings:
        assert r["faults"] == [], r
        assert r["dist_mm"] == WORLD["distance_mm"] and r["fill_bp"] == fill_bp, r
        assert abs(r["temp_cdeg"] - WORLD["temperature_c"] * 100) <= 10, r
        assert not (r["fire"] or r["pickup"] or r["tilt"]), r

    # the OTA check-in: on the first wake, then at most once per ota_every_s (the time of the last one
    # survives the power cut in flash); each one reached `fleet serve` and the board runs what it was given
    ota_wakes = [i for i, (_c, lines) in enumerate(wakes) if any(" ota: " in ln for ln in lines)]
    assert ota_wakes and ota_wakes[0] == 0, wakes[:2]
    for i in ota_wakes:
        line = next(ln for ln in wakes[i][1] if " ota: " in ln)
        assert "ota: confirmed" in line, line
    assert 2 <= len(ota_wakes) <= 1 + (st["sim_ms"] - t0) // (OTA_EVERY_S * 1000), ota_wakes
    # each check-in ran in a boot of its own, after the cycle's soft reset (heap: docs/boards.md)
    assert len(ota_wakes) <= soft_boots <= len(ota_wakes) + 1, (soft_boots, ota_wakes)
    assert all(wakes[i][1].index(next(ln for ln in wakes[i][1] if " ota: " in ln)) > 0 for i in ota_wakes)
    # one stretch of log per boot, in order (a boot at the very end may not have been read)
    assert len(boots) >= len(wakes), (len(boots), len(wakes))
    times = [boots[i]["sim_ms"] for i in ota_wakes]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= OTA_EVERY_S * 1000 - INTERVAL_S * 500 for g in gaps), gaps  # boots jitter by a wake
    from fleet.rollout import OtaStore

    store = OtaStore.open(lab.db_url)
    try:
        d = store.device(dev_eui)
    finally:
        store.close()
    assert d["checkins"] == len(ota_wakes) and d["version"] == "1.0.0" and d["state"] == "confirmed", d
    print(f"\n{len(wakes)} wakes, {len(ups)} uplinks (FCnt {fcnts[0]}..{fcnts[-1]}, {before} before the power "
          f"cut), {len(readings)} readings, OTA check-ins at wakes {ota_wakes}, boots {st['boots']}")



def test_a_node_without_wifi_keeps_its_cycle_and_says_no_network_in_its_uplinks(make_board, lab, ns):
    """The building's WiFi is down at the first check-in: the node logs NO_NETWORK, keeps sampling and
    sending, and its uplinks carry the join's outcome until a later check-in joins again."""
    from lab.ota import LAB_AP

    board = make_board(speed=SPEED, forwarder=ns.address, scenario=lab.wifi_scenario)
    rec = _enroll(board)
    dev_eui = rec["dev_eui"]
    reg = Registry.open(lab.db_url)
    try:
        keys = reg.app_keys(Operator("anna", "751"), [dev_eui], purpose="network server")
    finally:
        reg.close()
    ns.add_device(bytes.fromhex(dev_eui), bytes.fromhex(rec["join_eui"]), keys[dev_eui])
    _provision_ota(board, lab, dev_eui)
    board.set_world(**WORLD)
    log = Log(board)
    try:
        t0 = board.status()["sim_ms"]
        board.ctl.request("wlan", ap=LAB_AP["ssid"], off_s=OTA_EVERY_S - 60)  # back before the 2nd check-in
        board.reset()
        # the 2nd check-in, then a batch or two more (a first join that missed its window waits out the
        # duty cycle, as a field node does)
        _run_until(board, log, t0 + OTA_EVERY_S * 1000 + 6 * INTERVAL_S * 1000, "after the 2nd check-in",
                   state="sleeping")
        log.pump(0.5)
    finally:
        log.close()
    boots = [e["sim_ms"] for e in board.events() if e["event"] == "boot" and e["sim_ms"] >= t0]
    wakes = log.wakes()
    st = board.status()
    board.stop()
    ota = [(i, next(ln for ln in lines if " ota: " in ln)) for i, (_c, lines) in enumerate(wakes)
           if any(" ota: " in ln for ln in lines)]
    assert ota[0][0] == 0 and ota[0][1].endswith("ota: error NO_NETWORK (wifi NO_AP_FOUND)"), ota
    joined = [i for i, line in ota if "ota: confirmed" in line]
    assert joined, ota
    assert st["boots"].get("deepsleep", 0) >= 4 and st["boots"].get("watchdog", 0) == 0, st["boots"]
    # uplinks kept coming, and the ones between the failed join and the next good one say why
    ups = [u for u in ns.uplinks if u.dev_eui.lower() == dev_eui.lower() and u.fport == 1]  # the readings
    frames = [decode(u.payload) for u in ups]
    statuses = [f.get("net_status") for f in frames]
    assert "NO_AP_FOUND" in statuses, (statuses, wakes[:4])
    first, last = statuses.index("NO_AP_FOUND"), len(statuses) - 1 - statuses[::-1].index("NO_AP_FOUND")
    assert set(statuses[first:last + 1]) == {"NO_AP_FOUND"} and set(statuses[:first]) <= {None}, statuses
    assert statuses[-1] is None, statuses  # after the check-in that joined
    assert all(r["faults"] == [] for f in frames for r in f["readings"])
    print(f"\n{len(wakes)} wakes, check-ins {ota}, uplink statuses {statuses}, boots at {boots[:3]}...")
