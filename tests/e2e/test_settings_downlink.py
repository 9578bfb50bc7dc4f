"""Settings over LoRaWAN downlink end to end: a virtual board running the node app (a built release) joins
the lab network server (lab.netserver) over the simulated air; `fleet settings` queues a command for it
(fleet.settings: seq from the registry, audited), which goes out after the node's next uplink; the node
applies it at the wake after and acknowledges it on the settings FPort; ingest marks it applied. The same
downlink sent again (a replay) and a command with an out-of-range value are refused by the node, which
says so in its acknowledgement and keeps running as it was set; the setting survives deep sleeps and a
power cut (it lives in flash)."""

import json
import time
from datetime import datetime, timezone

import pytest

from fleet import device_spec
from fleet.codec import decode
from fleet.registry import NewDevice, Operator, Registry
from fleet.release.build import build
from fleet.settings import SettingsStore, decode_ack, encode_command
from fleet.settings.routes import lab_queue
from fleet.telemetry import TelemetryStore, Uplink
from lab.netserver import NetworkServer
from provisioning.deploy import deploy
from provisioning.identity import new_identity
from provisioning.session import Session
from test_node_lorawan import Log

SPEED = 20   # a 60 s interval is 3 s of real time; the receive windows (1 and 2 s after an uplink) 50 and 100 ms:
#              at 60 a loaded host can answer too late for them, as the join-accept 5 s after the request
ANNA = Operator("anna", kommune="751")
SETTINGS_PORT = 3


@pytest.fixture
def registry(tmp_path):
    reg = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}", key=b"k" * 32)
    yield reg
    reg.close()


def _app_files(tmp_path, ident):
    out = tmp_path / "rel"
    build("virtual", "0.1.0", out)
    files = {"/" + p.relative_to(out / "files").as_posix(): p.read_bytes()
             for p in sorted((out / "files").rglob("*")) if p.is_file()}
    files[device_spec.NODE_CONFIG] = json.dumps({"kind": "waste", "interval_s": 120, "batch_max_age_s": 60,
                                                 "ota_every_s": 0}).encode()
    files[device_spec.LORAWAN_CONFIG] = json.dumps({"dev_eui": ident.dev_eui, "join_eui": ident.join_eui,
                                                    "app_key": ident.app_key.hex(), "activation": "otaa"}).encode()
    return files


def test_settings_reach_the_node_apply_and_survive_while_replays_and_bad_values_are_refused(
        tmp_path, make_board, registry):
    ident = new_identity()
    dev = registry.add_device(ANNA, NewDevice(kommune="751", site="Ceres Allé 4", kind="waste", board="virtual"), ident)
    store, tel = SettingsStore(registry), TelemetryStore(registry)
    with NetworkServer() as ns:
        ns.add_device(bytes.fromhex(ident.dev_eui), bytes.fromhex(ident.join_eui), ident.app_key)
        board = make_board(speed=SPEED, forwarder=ns.address)
        with Session(board.port) as s:
            deploy(s, _app_files(tmp_path, ident))
        log = Log(board)
        seen = 0
        eui = bytes.fromhex(ident.dev_eui)

        def ups(port):
            return [u for u in ns.uplinks if u.fport == port]

        def wait(pred, what, timeout=150, resend=None):
            """Until pred(); with `resend` (a frame), queued again whenever the node sent three readings
            since the last one went out unanswered: a loaded host can make the node miss a receive window,
            as the field does (the operator sets it again), and a second copy is only one more replay."""
            end = time.monotonic() + timeout
            mark = len(ups(1))
            while not pred():
                if resend is not None and len(ups(1)) >= mark + 3 and not ns.devices[eui].queue:
                    ns.queue(eui, fport=SETTINGS_PORT, payload=resend)
                    mark = len(ups(1))
                assert time.monotonic() < end, (f"{what}; uplinks {[(u.fport, u.payload.hex()) for u in ns.uplinks]}, "
                                                f"downlinks {[d.get('fport') for d in ns.downlinks]}\n"
                                                f"{log.text[-3000:]}")
                log.pump(0.1)

        def acks():
            """The acknowledgements so far, through ingest (as `fleet serve` or `fleet ingest` takes them)."""
            nonlocal seen
            new = ups(SETTINGS_PORT)[seen:]
            seen += len(new)
            tel.ingest([Uplink(dev_eui=u.dev_eui.upper(), f_cnt=u.fcnt, f_port=u.fport, payload=u.payload,
                               received_at=datetime.now(timezone.utc), source="chirpstack") for u in new])
            return [a for u in ups(SETTINGS_PORT) for a in decode_ack(u.payload)]

        def interval_min(after):
            return {decode(u.payload)["interval_min"] for u in ups(1)[after:]}

        try:
            board.reset()
            wait(lambda: len(ups(1)) >= 2, "no readings from the node")
            assert interval_min(0) == {2}

            # 1. a command through the store (seq 1, audited) onto the simulated air
            [cmd] = store.queue(ANNA, [dev], {"interval_s": 60, "fire_threshold_cdeg": 6000})
            assert cmd["seq"] == 1
            lab_queue(ns, cmd)
            frame = bytes.fromhex(cmd["payload_hex"])
            wait(lambda: (1, "applied") in acks(), "no acknowledgement of seq 1", resend=frame)
            assert store.show(ANNA, dev.dev_eui)["acknowledged"] == {"interval_s": 60, "fire_threshold_cdeg": 6000}
            n = len(ups(1))
            wait(lambda: len(ups(1)) >= n + 1, "no readings after the change")  # each frame says its interval
            assert interval_min(n) == {1}  # readings now 1 min apart

            # 2. the same downlink again (a fresh LoRaWAN frame, the same command): refused as stale
            lab_queue(ns, cmd)
            wait(lambda: (1, "stale") in acks(), "the replay was not refused", resend=frame)
            assert store.show(ANNA, dev.dev_eui)["commands"][0]["state"] == "applied"

            # 3. an out-of-range value the host would never send (written past its check): refused by the node
            bad = encode_command(2, {"interval_s": 120, "fire_threshold_cdeg": 9000}, check=False)
            ns.queue(eui, fport=SETTINGS_PORT, payload=bad)
            wait(lambda: (2, "out_of_range") in acks(), "the out-of-range value was not refused", resend=bad)
            wait(lambda: "settings 2 out_of_range" in log.text, "the wake's log line")  # the wake is over

            # 4. a power cut: RTC memory is gone, the settings are in flash
            n = len(ups(1))
            board.powercut()
            wait(lambda: len(ups(1)) >= n + 1, "no readings after the power cut")
            assert interval_min(n) == {1}  # neither the refused command nor the cut changed it
            log.pump(0.3)
        finally:
            log.close()
            board.stop()

    assert ns.problems == []
    said = [ln.split("; settings ", 1)[1].strip() for ln in log.text.splitlines() if "; settings " in ln]
    for what in ("1 taken", "applied 1", "1 stale", "2 out_of_range"):  # the node's log line says it too
        assert what in said, said
    audit = [(e.action, e.operator) for e in registry.audit_log(ANNA, dev_eui=dev.dev_eui)]
    assert ("settings.set", "anna") in audit and ("settings.applied", "system") in audit, audit
