"""Settings over downlink on the host (fleet.settings): the command and acknowledgement frames against the
bytes docs/formats/settings.md writes out by hand (the node's test, tests/firmware/mp_test_settings.py,
reads the same bytes), bounds refused with the allowed range before anything is queued, one seq per device
and command, each in the audit log with its operator, the node's acknowledgement through ingest marking the
command applied or refused (once), desired against acknowledged, and ChirpStack v4's queue body."""

import base64
import json

import pytest
from sqlalchemy import func, select

from fleet.errors import MalformedUplink, NotFound, UsageError
from fleet.settings import SettingsStore, decode_ack, encode_command, keys, parse_assignments
from fleet.settings.routes import chirpstack_queue
from fleet.store.models import SettingsCommand
from fleet.telemetry import TelemetryStore, parse_event
from lab import telemetry_samples as TS
from telemetry_support import enroll
from test_registry_support import AARHUS, ADMIN, ODENSE, db_url, key, key_env, registry, run_cli  # noqa: F401

# docs/formats/settings.md, "Worked examples"
SET_900_3600 = "01000501038402000e10"
ACK_5_APPLIED_6_OUT_OF_RANGE = "01000500000602"


def test_command_frame_is_the_documented_bytes():
    assert encode_command(5, {"interval_s": 900, "batch_max_age_s": 3600}).hex() == SET_900_3600
    assert encode_command(7, {"fill_alarm_bp": 8000}).hex() == "0100070" + "31f40"
    assert encode_command(65535, {"fire_threshold_cdeg": 6000}).hex() == "01ffff041770"
    # a test of the node's own refusal may write what the host refuses, as long as it fits the key's bytes
    assert encode_command(8, {"fire_threshold_cdeg": 9000}, check=False).hex() == "010008042328"
    with pytest.raises(UsageError, match="out of range"):
        encode_command(8, {"fire_threshold_cdeg": 9000})
    with pytest.raises(UsageError, match="outside 1..65535"):
        encode_command(65536, {"interval_s": 900})


def test_acknowledgement_frame_decodes_and_a_bad_one_is_refused():
    assert decode_ack(bytes.fromhex(ACK_5_APPLIED_6_OUT_OF_RANGE)) == [(5, "applied"), (6, "out_of_range")]
    for bad in ("01", "010005", "02000500", "0100050000", "01000509"):  # short, version 2, cut, result 9
        with pytest.raises(MalformedUplink):
            decode_ack(bytes.fromhex(bad))


def test_bounds_are_the_formats_and_an_out_of_range_value_names_them():
    assert {k: (v.lo, v.hi, v.step) for k, v in keys().items()} == {
        "interval_s": (60, 15300, 60), "batch_max_age_s": (60, 86400, 1), "fill_alarm_bp": (0, 10000, 1),
        "fire_threshold_cdeg": (2000, 8500, 1)}
    assert parse_assignments(["interval_s=900", " fill_alarm_bp = 0"]) == {"interval_s": 900, "fill_alarm_bp": 0}
    for bad, what in [(["interval_s=30"], "allowed 60 to 15300 in steps of 60"),
                      (["interval_s=930"], "in steps of 60"), (["fire_threshold_cdeg=hot"], "allowed 2000 to 8500"),
                      (["queue_max=3"], "not a setting"), (["interval_s"], "not key=value"),
                      (["interval_s=60", "interval_s=120"], "twice"), ([], "no setting")]:
        with pytest.raises(UsageError, match=what):
            parse_assignments(bad)


def _ack_event(dev_eui, f_cnt, payload_hex):
    return parse_event(TS.chirpstack_event(dev_eui, bytes.fromhex(payload_hex), f_cnt=f_cnt, f_port=3), "chirpstack")


def test_queue_ack_through_ingest_and_show(registry):
    a, b = enroll(registry), enroll(registry, site="Ceres Allé 4")
    env = enroll(registry, kind="env")
    store = SettingsStore(registry)
    da, db_, de = (registry.get_device(AARHUS, i.dev_eui) for i in (a, b, env))
    [c1] = store.queue(AARHUS, [da], {"interval_s": 900, "batch_max_age_s": 3600})
    [c2, c3] = store.queue(AARHUS, [da, db_], {"fill_alarm_bp": 8000}, note="bins fill faster in December")
    assert (c1["seq"], c2["seq"], c3["seq"]) == (1, 2, 1)  # per device
    assert c1["payload_hex"] == encode_command(1, {"interval_s": 900, "batch_max_age_s": 3600}).hex()
    with pytest.raises(UsageError, match="applies to waste nodes"):
        store.queue(AARHUS, [da, de], {"fire_threshold_cdeg": 6000})  # nothing queued for either
    with pytest.raises(UsageError, match="out of range"):
        store.queue(AARHUS, [da], {"interval_s": 59})
    assert store.last_seq(da.dev_eui) == 2

    log = registry.audit_log(AARHUS, dev_eui=da.dev_eui)
    sets = [e for e in log if e.action == "settings.set"]
    assert [(e.operator, e.changes) for e in sets] == [
        ("anna", {"fill_alarm_bp": [None, 8000]}),
        ("anna", {"interval_s": [None, 900], "batch_max_age_s": [None, 3600]})]
    assert sets[0].note == "seq 2: bins fill faster in December" and sets[1].note == "seq 1"

    shown = store.show(AARHUS, da.dev_eui)
    assert shown["desired"] == {"interval_s": 900, "batch_max_age_s": 3600, "fill_alarm_bp": 8000}
    assert shown["acknowledged"] == {} and shown["waiting"] == ["batch_max_age_s", "fill_alarm_bp", "interval_s"]

    # the node answers: 1 applied, 2 refused as out of range (as if its bounds were narrower); a duplicate
    # delivery and a replay's "stale" for a command already answered change nothing
    tel = TelemetryStore(registry)
    res = tel.ingest([_ack_event(da.dev_eui, 7, "01000100" + "000202"), _ack_event(db_.dev_eui, 3, "01000100")])
    assert res.ignored["settings_ack"] == 2 and res.stored == 0
    counts = store.record_acks([_ack_event(da.dev_eui, 7, "01000100"),    # delivered twice
                                _ack_event(da.dev_eui, 8, "01000101"),    # a replay of 1, refused as stale
                                _ack_event(da.dev_eui, 9, "01000900")])   # a seq never issued
    assert counts == {"applied": 0, "refused": 0, "unchanged": 2, "unknown": 1, "malformed": 0}
    shown = store.show(AARHUS, da.dev_eui)
    assert [(c["seq"], c["state"], c["result"]) for c in shown["commands"]] == [
        (2, "refused", "out_of_range"), (1, "applied", "applied")]
    assert shown["desired"] == shown["acknowledged"] == {"interval_s": 900, "batch_max_age_s": 3600}
    assert shown["waiting"] == []
    actions = [e.action for e in registry.audit_log(AARHUS, dev_eui=da.dev_eui)]
    assert actions.count("settings.applied") == 1 and actions.count("settings.refused") == 1
    assert store.show(AARHUS, db_.dev_eui)["acknowledged"] == {"fill_alarm_bp": 8000}


def test_another_kommunes_operator_neither_sets_nor_acknowledges(registry):
    a = enroll(registry)
    store = SettingsStore(registry)
    with pytest.raises(NotFound):
        store.show(ODENSE, a.dev_eui)
    store.queue(AARHUS, [registry.get_device(AARHUS, a.dev_eui)], {"interval_s": 600})
    counts = store.record_acks([_ack_event(a.dev_eui, 1, "01000100")], operator=ODENSE)
    assert counts["unknown"] == 1 and store.show(AARHUS, a.dev_eui)["commands"][0]["state"] == "queued"


def test_chirpstack_v4_queue_body():
    cmd = {"dev_eui": "70B3D57ED0000001", "seq": 5, "payload_hex": SET_900_3600}
    q = chirpstack_queue(cmd)
    assert q["method"] == "POST" and q["path"] == "/api/devices/70b3d57ed0000001/queue"
    item = q["body"]["queueItem"]
    assert item == {"devEui": "70b3d57ed0000001", "confirmed": False, "fPort": 3,
                    "data": base64.b64encode(bytes.fromhex(SET_900_3600)).decode()}


def test_cli_refuses_an_out_of_range_value_and_queues_nothing(db_url, key_env, capsys, monkeypatch):
    from fleet.registry import Registry

    reg = Registry.open(db_url)
    try:
        a = enroll(reg)
    finally:
        reg.close()
    monkeypatch.setenv("FLEET_DB", db_url)
    code, out, err = run_cli(["settings", "set", "--operator", "anna", "-k", "751", "--device", a.dev_eui,
                              "interval_s=20"], capsys)
    assert code == 2 and "allowed 60 to 15300" in err and "nothing was queued" in err
    code, out, err = run_cli(["settings", "set", "--operator", "anna", "-k", "751", "--site", "park",
                              "interval_s=1200", "--json"], capsys)
    assert code == 0, err
    [c] = json.loads(out)
    assert (c["dev_eui"], c["seq"], c["chirpstack"]["body"]["queueItem"]["fPort"]) == (a.dev_eui, 1, 3)
    code, out, err = run_cli(["settings", "show", "--operator", "anna", "-k", "751", "--device", a.dev_eui,
                              "--json"], capsys)
    assert code == 0 and json.loads(out)["waiting"] == ["interval_s"]
    reg = Registry.open(db_url)
    try:
        with reg.db.read() as s:
            assert s.scalar(select(func.count()).select_from(SettingsCommand)) == 1
    finally:
        reg.close()


_JS = r"""
const vm = require('vm'), fs = require('fs');
const [paths, hexes] = JSON.parse(process.argv[process.argv.length - 1]);
const out = {};
for (const [target, path] of Object.entries(paths)) {
  const ctx = vm.createContext({});
  vm.runInContext(fs.readFileSync(path, 'utf8'), ctx);
  out[target] = hexes.map((hex) => {
    const b = Buffer.from(hex, 'hex');
    ctx.q = target === 'os2iot' ? {data: b.toString('base64'), fPort: 3} : {bytes: Array.from(b), fPort: 3};
    return vm.runInContext(target === 'os2iot' ? 'decode(q, {})' : 'decodeUplink(q)', ctx);
  });
}
process.stdout.write(JSON.stringify(out));
"""


def test_network_server_codecs_read_the_acknowledgement_on_its_port(tmp_path, program):
    """ChirpStack's, The Things Stack's and OS2iot's exported decoders (fleet codec export) give what the
    host reads from an FPort 3 uplink, and an error, not a payload v1 reading, for a broken one."""
    import shutil
    import subprocess

    from fleet.codec.javascript import TARGETS, render

    node = shutil.which("node") or "/usr/bin/node"
    program(node, "nodejs")
    paths = {}
    for t in TARGETS:
        paths[t] = str(tmp_path / f"{t}.js")
        (tmp_path / f"{t}.js").write_text(render(t))
    good, bad = ACK_5_APPLIED_6_OUT_OF_RANGE, "01000509"
    proc = subprocess.run([node, "-e", _JS, json.dumps([paths, [good, bad]])], capture_output=True, text=True,
                          timeout=60, check=True)
    out = json.loads(proc.stdout)
    want = [{"seq": s, "result": r} for s, r in decode_ack(bytes.fromhex(good))]
    for t in ("chirpstack", "tts"):
        assert out[t][0] == {"data": {"settings_ack": want}, "warnings": [], "errors": []}, t
        assert out[t][1]["errors"] == ["unknown settings result 9 (byte 3)"], t
    assert out["os2iot"] == [{"settings_ack": want}, {"errors": ["unknown settings result 9 (byte 3)"]}]
