"""The FUOTA deployment plan (fleet.fuota.deploy, docs/formats/fuota.md "Deployment"), the LoRaWAN rollout's
per-device states and waves (fleet.fuota.rollout), the ChirpStack v4 FuotaService bodies
(fleet.exports.chirpstack_fuota) and the session simulator's duty-cycle check (lab/fuota_session.py)."""

import base64
import json
import random
import re

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fleet.errors import UsageError
from fleet.exports import chirpstack_fuota as cs
from fleet.fuota import clock as fclock
from fleet.fuota import deploy
from fleet.fuota import multicast as fmc
from fleet.fuota.rebuild import rebuild
from fleet.fuota.rollout import LorawanRollout
from fleet.fuota.spec import SPEC as FRAG
from fleet.resources import firmware_dir
from lab import fuota_session as fs

APP_KEY = bytes.fromhex("2b9c47d0e51f836a0c7e94b1d3a85f62")
MC_KEY = bytes.fromhex("01b3c5d7e9f10213243546576879a8b9")


def aes(key, block, decrypt=False):
    c = Cipher(algorithms.AES(key), modes.ECB())
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(block) + x.finalize()


def test_fragment_size_and_airtime_follow_the_eu868_limits():
    # ../shared/REFERENCE-2.md §6: N = 51 (DR0-2), 115 (DR3), 242 (DR4-5; 222 with repeaters), minus 3 bytes
    assert [deploy.fragment_size(dr) for dr in range(6)] == [48, 48, 48, 112, 239, 239]
    assert deploy.fragment_size(5, repeater=True) == 219
    # the table's times on air (SX127x formula, downlink without CRC): 48 B at DR0, 239 B at DR5
    assert round(deploy.frame_toa_s(48, 0) * 1000, 1) == 2793.5
    assert round(deploy.frame_toa_s(239, 5) * 1000, 1) == 394.5
    with pytest.raises(UsageError, match="DR6"):
        deploy.fragment_size(6)
    with pytest.raises(UsageError, match="no EU868 sub-band"):
        deploy.plan(bytes(500), [], freq_hz=869_300_000)


def test_the_schedule_keeps_the_sub_bands_duty_cycle_and_fits_the_class_c_window():
    p = deploy.plan(random.Random(1).randbytes(4000), [], dr=5, loss=0.1)
    assert p.duty == 0.10 and p.freq_hz == 869_525_000
    times = p.schedule()
    assert len(times) == p.nb_frag + p.redundancy
    assert fs.duty_violations([(t, p.toa_s) for t in times], p.duty) == 0
    assert times[-1] + p.toa_s <= 2 ** p.timeout and 2 ** (p.timeout - 1) < p.session_s
    # the checker is not blind: half the spacing breaks the off time
    assert fs.duty_violations([(t / 2, p.toa_s) for t in times], p.duty) == len(times) - 1
    with pytest.raises(UsageError, match="more than 2\\^15 s"):
        deploy.plan(bytes(60000), [], dr=0, loss=0.1)


def test_redundancy_rebuilds_as_stated_with_the_hosts_decoder():
    # the plan says at most 0.1 % of devices are left short at this loss; 400 devices losing their own
    # fragments rebuild with fleet.fuota.rebuild (the host's decoder, not the sampler that set R)
    data = random.Random(2).randbytes(4000)
    p = deploy.plan(data, [], dr=5, loss=0.10)
    assert p.nb_frag == 17 and p.redundancy > 2 and p.short <= deploy.FAIL_TARGET
    frags = p.data_fragments()
    rnd, failed = random.Random(3), 0
    for _ in range(400):
        got = [f for f in frags if rnd.random() >= 0.10]
        try:
            assert rebuild(got, nb_frag=p.nb_frag, padding=p.session.padding) == data
        except Exception:
            failed += 1
    assert failed <= 2
    # without the coded fragments about 1 - 0.9^17 = 83 % would be short: the redundancy is doing the work
    assert deploy.Needs(p.nb_frag, 0.10, trials=2000).short(p.nb_frag) > 0.7
    assert deploy.redundancy_for(p.nb_frag, 0.0) == deploy.MARGIN
    assert deploy.redundancy_for(p.nb_frag, 0.3) > deploy.redundancy_for(p.nb_frag, 0.1)


def test_mc_key_reaches_each_device_encrypted_under_its_own_ke_key():
    targets = [deploy.Target("70b3d57ed005f014", APP_KEY), deploy.Target("70b3d57ed005f015", bytes(range(16)))]
    p = deploy.plan(bytes(1000), targets, dr=3, mc_addr=0x01FF0A17, mc_key=MC_KEY)
    for t in targets:
        req = p.setup_req(t)
        assert req[0] == 0x02 and req[1] == p.group_id and int.from_bytes(req[2:6], "little") == 0x01FF0A17
        kek = aes(aes(t.app_key, bytes(16)), bytes(16))  # McKEKey = AES(McRootKey = AES(GenAppKey, 0), 0)
        assert aes(kek, req[6:22]) == MC_KEY  # TS005 §4.3: the node recovers McKey with AES encrypt
    assert p.setup_req(targets[0])[6:22] != p.setup_req(targets[1])[6:22]
    assert MC_KEY.hex() not in json.dumps(p.as_dict())
    # the class C request announces the plan's frequency, data rate and window
    cc = p.class_c_req(1_400_000_000)
    assert cc[0] == 0x04 and cc[6] == p.timeout and int.from_bytes(cc[7:10], "little") * 100 == p.freq_hz
    assert cc[10] == 3


def _dev(i):
    return f"70b3d57ed00500{i:02x}"


def _status(missing, received=10):
    return FRAG.pack_status_ans(0, received, missing, 0)


def test_the_fragmentation_session_names_the_plans_multicast_group():
    # TS004 McGroupBitMask: the node drops fragments from groups outside it, so the setup names the group
    # the plan sends the fragments on
    for gid in (0, 2, 3):
        p = deploy.plan(bytes(500), [], dr=5, group_id=gid)
        f = FRAG.unpack_setup_req(p.frag_setup_req()[1:])
        assert f["mc_group_mask"] == 1 << gid and p.class_c_req(0)[1] == gid


def test_rollout_moves_devices_through_the_fuota_states_and_opens_the_next_wave():
    devs = [_dev(i) for i in range(10)]
    ro = LorawanRollout.start(version="1.1.0", kommune="0751", dev_euis=devs, waves=[200, 1000], halt_at=200,
                              seed="t1")
    first = ro.wave_devices()
    assert len(first) == 2 and ro.open_waves == 1
    a, b = first
    ro.clock_synced(a)
    ro.observe(a, fmc.PORT, bytes([0x02, 0x00]))                    # McGroupSetupAns, group 0
    assert ro.devices[a].state == "group_set_up"
    ro.observe(a, fmc.PORT, bytes([0x04, 0x00, 30, 0, 0]))          # McClassCSessionAns, starts in 30 s
    assert ro.devices[a].state == "session_set_up"
    ro.observe(a, FRAG.FPORT, _status(4))
    assert (ro.devices[a].state, ro.devices[a].missing) == ("fragments", 4)
    ro.observe(a, FRAG.FPORT, _status(0, 20))
    assert ro.devices[a].state == "rebuilt"
    ro.installed(a, {"state": "installed"})
    ro.confirmed(a, "1.1.0")
    assert ro.devices[a].state == "confirmed" and ro.open_waves == 1
    # the other canary missed too many fragments: its status after the window closed marks it
    ro.observe(b, FRAG.FPORT, _status(7), session_over=True)
    assert ro.devices[b].state == "failed" and "7 fragments missing" in ro.devices[b].reason
    # 1 of 2 failed = 50 % > 20 %: halted, no second wave
    assert ro.state == "halted" and ro.wave_devices() == []
    prog = ro.progress()
    assert prog["counts"]["confirmed"] == 1 and prog["counts"]["failed"] == 1 and prog["total"] == 10


def test_rollout_finishes_when_every_wave_is_done_and_marks_rollbacks():
    devs = [_dev(i) for i in range(5)]
    ro = LorawanRollout.start(version="2.0.0", kommune="0751", dev_euis=devs, waves=[400, 1000], halt_at=500,
                              seed="t2")
    for d in ro.wave_devices():
        ro.observe(d, FRAG.FPORT, _status(0))
        ro.confirmed(d, "2.0.0")
    assert ro.open_waves == 2
    rest = ro.wave_devices()
    assert len(rest) == 3
    ro.confirmed(rest[0], "1.0.0")                                  # came back on the old release
    assert ro.devices[rest[0]].state == "rolled_back"
    ro.observe(rest[1], fmc.PORT, bytes([0x04, 0x08]))              # FreqError: refused
    assert ro.devices[rest[1]].state == "failed" and "freq_error" in ro.devices[rest[1]].reason
    ro.confirmed(rest[2], "2.0.0")
    assert ro.state == "done" and ro.progress()["done_pct"] == 100
    with pytest.raises(UsageError, match="not in this rollout"):
        ro.confirmed("0000000000000000", "2.0.0")


def _proto_fields():
    # FuotaDeployment's fields as api/proto/api/fuota.proto (ChirpStack v4.12+) declares them, 2..21
    names = ("application_id device_profile_id name multicast_group_type multicast_class_c_scheduling_type "
             "multicast_dr multicast_class_b_ping_slot_nb_k multicast_frequency multicast_timeout "
             "calculate_multicast_timeout unicast_max_retry_count fragmentation_fragment_size "
             "calculate_fragmentation_fragment_size fragmentation_redundancy_percentage "
             "fragmentation_session_index fragmentation_matrix fragmentation_block_ack_delay "
             "fragmentation_descriptor request_fragmentation_session_status payload").split()
    return [re.sub(r"_(\w)", lambda m: m.group(1).upper(), n) for n in names]  # proto3 JSON: lowerCamelCase


def test_chirpstack_bodies_follow_fuota_proto():
    data = random.Random(4).randbytes(9000)
    p = deploy.plan(data, [], dr=3, loss=0.1)
    calls = cs.requests(p, ["70B3D57ED005F014"], application_id="app", device_profile_id="prof", name="n",
                        gateway_ids=["B827EB0000000001"])
    assert [c["method"] for c in calls] == ["api.FuotaService/CreateDeployment", "api.FuotaService/AddDevices",
                                            "api.FuotaService/AddGateways", "api.FuotaService/StartDeployment"]
    dep = calls[0]["body"]["deployment"]
    assert list(dep) == _proto_fields()
    assert base64.b64decode(dep["payload"]) == data
    assert (dep["multicastDr"], dep["multicastFrequency"], dep["fragmentationFragmentSize"]) == (3, 869525000, 112)
    assert dep["multicastTimeout"] == p.timeout and dep["multicastGroupType"] == "CLASS_C"
    # ChirpStack sends nb_frag * percentage / 100 coded fragments: at least the plan's
    assert p.nb_frag * dep["fragmentationRedundancyPercentage"] // 100 >= p.redundancy
    assert calls[1]["body"] == {"fuotaDeploymentId": cs.ID_PLACEHOLDER, "devEuis": ["70b3d57ed005f014"]}
    assert "mcKey" not in json.dumps(calls)
    # ChirpStack takes at most 100 %: a plan that needs more coded fragments than data ones is refused
    small = deploy.plan(data[:3000], [], dr=5, loss=0.2)
    assert small.redundancy > small.nb_frag
    with pytest.raises(UsageError, match="100 %"):
        cs.requests(small, ["70b3d57ed005f014"], application_id="app", device_profile_id="prof", name="n")


def test_session_simulator_rebuilds_every_node_without_breaking_the_duty_cycle():
    data = random.Random(5).randbytes(2000)
    p = deploy.plan(data, [], dr=5, loss=0.1)
    mc = fs.multicast(p, nodes=20, loss=0.1, seed=1)
    uc = fs.unicast(p, nodes=20, loss=0.1, seed=1)
    assert mc["rebuilt"] == 20 and mc["violations"] == 0 and mc["all_rebuilt_s"] <= p.session_s
    assert uc["violations"] == 0 and uc["all_done_s"] > mc["all_rebuilt_s"]
    assert fclock.gps_time(0) < 0  # GPS epoch after Unix's
    assert (firmware_dir() / "bysans/fuota/frag_spec.py").exists()


def test_a_check_in_confirms_or_marks_a_rollback_only_after_the_block_was_whole():
    devs = [_dev(i) for i in range(3)]
    ro = LorawanRollout.start(version="1.1.0", kommune="0751", dev_euis=devs, waves=[1000], halt_at=1000, seed="r")
    a, b, c = devs
    ro.report(a, version="1.0.0", state="idle")                   # a check-in before the update: nothing
    assert ro.devices[a].state == "pending"
    ro.report(a, version="1.0.0", state="failed", reason="NO_SERVER")  # an HTTP failure, not this rollout's
    assert ro.devices[a].state == "pending"
    for d in (a, b):
        ro.observe(d, FRAG.FPORT, _status(0))
    ro.report(a, version="1.0.0", state="installed")
    assert ro.devices[a].state == "installed"
    ro.report(a, version="1.0.0", state="idle")                   # came back on the old one
    assert ro.devices[a].state == "rolled_back" and ro.devices[a].reason == "runs 1.0.0"
    ro.expire()                                                   # b and c not done within the wave timeout
    assert (ro.devices[b].state, ro.devices[b].reason) == ("silent", "was rebuilt")
    assert (ro.devices[c].state, ro.devices[c].reason) == ("silent", "was pending")
    assert ro.failures() == 2 and ro.state == "done"              # a silent rebuilt device counts; c does not
    ro2 = LorawanRollout.start(version="1.1.0", kommune="0751", dev_euis=devs, waves=[1000], halt_at=1000, seed="r")
    ro2.observe(b, FRAG.FPORT, _status(0))
    ro2.expire()
    ro2.report(b, version="1.1.0", state="confirmed")           # heard again after all: confirmed
    assert ro2.devices[b].state == "confirmed"
