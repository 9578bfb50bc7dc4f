"""A LoRaWAN-only node says over LoRaWAN what became of its update (docs/formats/update-report.md), and that
moves its LoRaWAN rollout. The firmware's own FUOTA installer (bysans.fuota.install) installs a signed payload
on the MicroPython unix port, the boot logic (bysans.ota.slots) confirms the new slot or rolls it back, and the
next wakes' reports (bysans.update_report) are what ingest gets, as ChirpStack events, on SQLite and
PostgreSQL: confirmed, rolled back and refused devices move; a report of another release counter moves
nothing; one without a counter fails a device only when it refuses the block the device holds (damaged in
transit, or given up); the registry learns what each device runs."""

import hashlib
import json
import time
import zlib
from datetime import datetime, timedelta, timezone

import mp32support
import pytest

from fleet.cli.rollout_lorawan import _session_entry
from fleet.codec.update_report import decode_report
from fleet.fuota import clock as fclock
from fleet.fuota import deploy
from fleet.fuota.payload import build
from fleet.fuota.rollout import LorawanRollout
from fleet.fuota.store import FuotaStore
from fleet.resources import firmware_dir
from fleet.store.models import AuditEntry, Device
from fleet.telemetry import TelemetryStore
from fleet.telemetry.events import parse_event
from lab import telemetry_samples as S
from lab.ota import Lab
from provisioning.ota import slot_files
from release_support import run_mp
from telemetry_support import enroll
from test_registry_support import ADMIN, ODENSE, db_url, key, registry  # noqa: F401 (fixtures)

AT = datetime.now(timezone.utc) - timedelta(seconds=600)

# The installer on a board tree's rebuilt block, in a boot of its own (as in the boot after the rebuild)
_INSTALL = """
import json
from bysans.fuota import install
class Board:
    name = 'virtual'
    definition = {}
    def epoch_s(self):
        return NOW
    def reset(self):
        raise AssertionError('reset with reboot=False')
print(json.dumps(install.install(ROOT + '/fuota/frag.bin', Board(), ROOT + '/', reboot=False)))
"""
# The next boots: what boot.py does (confirm after a passed self-test, or roll back), then four wakes of the
# app's report sending; prints the frames sent.
_WAKES = """
import json, binascii
from bysans.ota import slots
from bysans import update_report
from bysans.uplink import ListSink
if VERDICT == 'confirm':
    slots.confirm(ROOT + '/', '2.0.0')
elif VERDICT == 'rollback':
    slots.rollback(ROOT + '/', 'SELFTEST: ImportError')
sink = ListSink()
for _ in range(4):
    update_report.send_due(sink, ROOT + '/')
print(json.dumps([[p, binascii.hexlify(b).decode()] for p, b in sink.frames]))
"""


def _board(root, rel_dir, lab, payload):
    from provisioning import ota as pota

    files = slot_files(rel_dir, "a")
    files["/ota/root.json"] = lab.store.latest_root_bytes()
    files["/ota/config.json"] = json.dumps({"device": "70B3D57ED00000F1", "kommune": "0751"}).encode()
    files["/ota/boot.json"] = pota._encode_state(dict(pota._STATE))
    files["/ota/confirmed"] = b"a"
    files["/fuota/frag.bin"] = payload
    for p, data in files.items():
        dst = root / p.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    return root


def _run(base, only=None, interpreter=None, heap="256K"):
    """What four boards (or those in `only`) sent after their install: {case: (outcome, [(fport, payload)])},
    and the release's counter."""
    lab = Lab(base / "lab")
    r1 = lab.build("1.0.0")
    src = (firmware_dir() / "bysans" / "sampler.py").read_bytes()
    r2 = lab.derive(r1, "2.0.0", files={"bysans/sampler.mpy": src + b"\n_REPORTED = 2\n"})
    p = build(r2, board="virtual", kommune="751", base_body=(r1 / "release.json").read_bytes())
    sig_at = p.data.index(json.loads((r2 / "release.json").read_bytes().split(b"\n")[1])[0]["sig"].encode()) + 10
    forged = bytearray(p.data)
    forged[sig_at] ^= 0x01
    forged[-4:] = (zlib.crc32(bytes(forged[:-4])) & 0xFFFFFFFF).to_bytes(4, "little")
    damaged = bytearray(p.data)
    damaged[8] ^= 0x01
    cases = {"confirm": (p.data, "confirm"), "rollback": (p.data, "rollback"), "forged": (bytes(forged), None),
             "damaged": (bytes(damaged), None)}
    cases = {k: v for k, v in cases.items() if only is None or k in only}
    roots = {k: _board(base / k, r1, lab, data) for k, (data, _) in cases.items()}
    got = {}
    for k, (_, verdict) in cases.items():  # each boot in an interpreter of its own, as after a reset
        root = repr(str(roots[k]))
        outcome = run_mp(_INSTALL.replace("NOW", str(int(time.time()))).replace("ROOT", root), heap=heap,
                         interpreter=interpreter, timeout=600)
        frames = run_mp(_WAKES.replace("VERDICT", repr(verdict)).replace("ROOT", root), heap=heap,
                        interpreter=interpreter)
        got[k] = (json.loads(outcome), [(port, bytes.fromhex(h)) for port, h in json.loads(frames)])
    return got, p.counter


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("update_report"))


def test_the_report_is_noted_in_the_smallest_boards_heap(tmp_path):
    """On the 32-bit port (objects as on an ESP32) at the TTGO LoRa32's heap, the installer's note of its
    outcome fits beside the install (it would be given up rather than fail the update)."""
    got, counter = _run(tmp_path, only=("confirm", "forged"), interpreter=mp32support.require(),
                        heap=mp32support.smallest_board_heap())
    assert [decode_report(got[k][1][0][1])["event"] for k in ("confirm", "forged")] == ["confirmed", "refused"]
    assert all(len(got[k][1]) == 3 for k in got)


def test_the_firmware_reports_each_outcome_of_an_install_on_three_wakes(reports):
    got, counter = reports
    want = {"confirm": ("confirmed", None, counter), "rollback": ("rolled_back", "SELFTEST", counter),
            "forged": ("refused", "BAD_SIGNATURE", counter), "damaged": ("refused", "MALFORMED", None)}
    assert got["confirm"][0]["state"] == "installed" and got["forged"][0]["reason"] == "BAD_SIGNATURE"
    for case, (event, reason, ctr) in want.items():
        frames = got[case][1]
        assert len(frames) == 3 and len(set(frames)) == 1, (case, frames)  # three wakes, then nothing
        port, payload = frames[0]
        assert port == 222
        rep = decode_report(payload)
        assert (rep["event"], rep["reason"], rep["counter"]) == (event, reason, ctr), case


def _event(dev, port, payload, fcnt):
    return parse_event(json.dumps(S.chirpstack_event(dev, payload, f_cnt=fcnt, at=AT, f_port=port)), "chirpstack")


def _start(registry, idents, counter, tmp_path):
    payload = b"bysans 2.0.0" * 40
    targets = [deploy.Target(i.dev_eui.lower(), i.app_key) for i in idents]
    plan = deploy.plan(payload, targets, dr=0, loss=0.1)
    ro = LorawanRollout.start(version="2.0.0", kommune="0751", dev_euis=[t.dev_eui for t in targets],
                              waves=[1000], halt_at=1000, seed="report", group_id=plan.group_id)
    first = ro.session_devices()
    for d in first:
        ro.devices[d].session = 1
    store = FuotaStore(registry.db)
    view = store.start(ro, board="virtual", from_version="1.0.0", seed="report",
                       payload_sha256=hashlib.sha256(payload).hexdigest(), payload_bytes=len(payload), dr=plan.dr,
                       loss=plan.loss, freq_hz=plan.freq_hz, folder=str(tmp_path),
                       session=_session_entry(1, 1, plan, first, fclock.gps_time(time.time()), "."),
                       operator="anna", counter=counter)
    return store, view


def test_reports_move_the_lorawan_rollout_by_its_release_counter(registry, reports, tmp_path):
    got, counter = reports
    idents = [enroll(registry, "751") for _ in range(5)]
    store, view = _start(registry, idents, counter, tmp_path)
    assert view["counter"] == counter
    a, b, c, d, e = (i.dev_eui.lower() for i in idents)
    tele = TelemetryStore(registry)
    n = [0]

    def ingest(dev, frames, operator=ADMIN):
        n[0] += 1
        return tele.ingest([_event(dev, port, p, n[0] * 10 + k) for k, (port, p) in enumerate(frames)],
                           operator=operator)

    def states():
        return {x["device"]: (x["state"], x["reason"]) for x in store.status(kommune="751")["devices"]}

    # another kommune's token moves nothing in Aarhus
    r = ingest(a, got["confirm"][1][:1], operator=ODENSE)
    assert r.fuota["not_in_rollout"] == 1 and states()[a] == ("pending", None)

    r = ingest(a, got["confirm"][1])  # the three repeats: the first moves, the others are heard
    assert (r.fuota["moved"], r.fuota["heard"], r.stored, r.ignored["update_report"]) == (1, 2, 0, 3)
    ingest(b, got["rollback"][1])
    ingest(c, got["forged"][1])
    assert states()[a] == ("confirmed", None)
    assert states()[b] == ("rolled_back", "rolled back: SELFTEST (update report)")
    assert states()[c] == ("failed", "refused: BAD_SIGNATURE (update report)")

    # a report of another release counter, and one without a counter from a device that holds no block yet, are
    # heard and move nothing
    port, p = got["confirm"][1][0]
    other = p[:3] + (counter + 1).to_bytes(4, "big")
    r = ingest(d, [(port, other)])
    assert (r.fuota["heard"], r.fuota["moved"]) == (1, 0)
    r = ingest(e, got["damaged"][1][:1])
    assert (r.fuota["heard"], r.fuota["moved"]) == (1, 0)
    assert states()[d] == ("pending", None) and states()[e] == ("pending", None)

    # a malformed report is rejected, never a reading
    r = ingest(e, [(222, bytes([1, 9, 0, 0, 0, 0, 1]))])
    assert r.rejected and r.rejected[0][0] == "bad_payload" and states()[e] == ("pending", None)

    view = store.status(kommune="751")
    assert view["counts"]["confirmed"] == 1 and view["counts"]["rolled_back"] == 1 and view["counts"]["failed"] == 1

    # the registry keeps what each device runs, as for a check-in, with an audit entry
    with registry.db.read() as s:
        runs = {r.dev_eui.lower(): r.firmware_version for r in s.query(Device)}
        audit = [x.dev_eui.lower() for x in s.query(AuditEntry).filter(AuditEntry.action == "device.firmware")]
    assert (runs[a], runs[b], runs[c]) == ("2.0.0", "1.0.0", None)  # a refusal says nothing of what runs
    assert a in audit


# ---- a refusal without a counter (0: the node could not name the release) ---------------------------------

# The firmware's own note and send of a report, as the install boot makes it (bysans.fuota.autoinstall gives a
# block up with note("failed", None, 0, ...)); prints the first frame sent.
_NOTED = """
import json, binascii, os
from bysans import update_report
from bysans.uplink import ListSink
os.mkdir(ROOT + '/ota')
update_report.note(STATE, None, 0, None, ROOT)
sink = ListSink()
update_report.send_due(sink, ROOT)
print(json.dumps([[p, binascii.hexlify(b).decode()] for p, b in sink.frames]))
"""


@pytest.fixture(scope="module")
def unnamed(reports, tmp_path_factory):
    """Reports without a counter, as the firmware encodes them: a block damaged in transit (refused MALFORMED by
    its CRC-32, before its manifest), a block given up after its install tries, and a confirmation."""
    got, _ = reports
    frames = {"damaged": got["damaged"][1][0]}
    for case, state in (("given_up", "failed"), ("confirmed", "confirmed")):
        root = tmp_path_factory.mktemp(case)
        out = run_mp(_NOTED.replace("STATE", repr(state)).replace("ROOT", repr(str(root))))
        (port, h), = json.loads(out)
        frames[case] = (port, bytes.fromhex(h))
    for case, event in (("damaged", "refused"), ("given_up", "refused"), ("confirmed", "confirmed")):
        assert decode_report(frames[case][1])["counter"] is None and decode_report(frames[case][1])["event"] == event
    return frames


def _status(received, missing):
    """A FragSessionStatusAns (FPort 201) with the firmware's own declaration (fleet.fuota.spec)."""
    from fleet.fuota.spec import SPEC as FRAG

    return FRAG.FPORT, FRAG.pack_status_ans(0, received, missing, 0)


def test_a_refusal_without_a_counter_fails_a_device_that_holds_the_block(registry, reports, unnamed, tmp_path):
    """A block damaged in transit fails its CRC-32 before its manifest is read, and a block given up after its
    install tries has no verdict: the node's report says refused, counter 0. A device whose block that can only
    be (it had all or some of this rollout's fragments) is failed with the report's reason, not left rebuilt
    until the wave timeout calls it silent; the registry keeps what it runs (a refusal changes nothing)."""
    _, counter = reports
    idents = [enroll(registry, "751") for _ in range(3)]
    store, _ = _start(registry, idents, counter, tmp_path)
    a, b, c = (i.dev_eui.lower() for i in idents)
    tele = TelemetryStore(registry)
    fc = iter(range(1, 100))

    def ingest(dev, frames):
        return tele.ingest([_event(dev, port, p, next(fc)) for port, p in frames], operator=ADMIN)

    ingest(a, [_status(40, 0)])  # rebuilt
    ingest(b, [_status(30, 4)])  # some fragments: the node may have rebuilt it before its last status answer
    ingest(c, [_status(40, 0)])
    states = {x["device"]: (x["state"], x["reason"]) for x in store.status(kommune="751")["devices"]}
    assert states[a][0] == states[c][0] == "rebuilt" and states[b][0] == "fragments"

    r = ingest(a, [unnamed["damaged"]] * 3)  # the three repeats: the first moves, the others are heard
    assert (r.fuota["moved"], r.fuota["heard"]) == (1, 2)
    ingest(b, [unnamed["given_up"]])
    r = ingest(c, [unnamed["confirmed"]])  # a confirmation must name the release: heard, nothing moves
    assert (r.fuota["moved"], r.fuota["heard"]) == (0, 1)
    view = store.status(kommune="751")
    states = {x["device"]: (x["state"], x["reason"]) for x in view["devices"]}
    assert states[a] == ("failed", "refused: MALFORMED (update report, no counter: the block failed its checks "
                                   "before its manifest was read)")
    assert states[b] == ("failed", "refused: reason not stated (update report, no counter: the node gave up on "
                                   "the block, e.g. after its install tries)")
    assert states[c][0] == "rebuilt"
    assert view["counts"]["failed"] == 2
    with registry.db.read() as s:
        runs = {r.dev_eui.lower(): r.firmware_version for r in s.query(Device)}
    assert runs[a] is None and runs[b] is None


def test_a_refusal_without_a_counter_moves_no_device_that_holds_no_block(registry, reports, unnamed, tmp_path):
    """Before this rollout's fragments reached it, a device's refusal without a counter is another block's (the
    repeats of an earlier release's refusal): heard, nothing moves."""
    _, counter = reports
    idents = [enroll(registry, "751") for _ in range(2)]
    store, _ = _start(registry, idents, counter, tmp_path)
    a, _ = (i.dev_eui.lower() for i in idents)
    tele = TelemetryStore(registry)
    r = tele.ingest([_event(a, *unnamed[k], n) for n, k in enumerate(("damaged", "given_up", "confirmed"), 1)],
                    operator=ADMIN)
    assert (r.fuota["moved"], r.fuota["heard"]) == (0, 3)
    assert {x["device"]: x["state"] for x in store.status(kommune="751")["devices"]}[a] == "pending"


@pytest.mark.parametrize("state, reason, moves", [
    ("rebuilt", None, True), ("fragments", None, True), ("silent", "was rebuilt", True),
    ("silent", "was fragments", True), ("pending", None, False), ("session_set_up", None, False),
    ("silent", "was session_set_up", False), ("installed", None, False), ("confirmed", None, False),
    ("rolled_back", "rolled back: SELFTEST (update report)", False)])
def test_which_states_a_refusal_without_a_counter_fails(state, reason, moves):
    """Only a device that holds this rollout's block (or was silent since it had it): an installed one had its
    block installed (the installer removed it), a done one keeps its verdict."""
    ro = LorawanRollout.start(version="2.0.0", kommune="0751", dev_euis=["00" * 8], waves=[1000], halt_at=1000,
                              seed="x")
    d = ro.devices["00" * 8]
    d.state, d.reason = state, reason
    assert ro.refused_unnamed("00" * 8, "MALFORMED") is moves
    assert (d.state == "failed") is moves
    if not moves:
        assert (d.state, d.reason) == (state, reason)
