"""A FUOTA deployment's plan driven through the lab network server onto the simulated air, two virtual
boards in one multicast group (docs/formats/fuota.md, "Deployment"): each board's clock synced (TS003), the
group set up with McKey encrypted under that board's own McKEKey and the fragmentation session set up (both
from fleet.fuota.deploy's plan), the class C session announced; then the plan's DataFragments as class C
multicast frames at the plan's spacing (the sub-band's duty cycle), some not sent to each board and some
missed by it on the air (different ones per board; the plan is made for 60 % loss, since the simulated air
at this speed-up misses about half the class C frames); the boards' own
decoders rebuild the payload, and their status answers move the rollout's devices (fleet.fuota.rollout) to
`rebuilt`.

Not here: the install after the rebuild (tests/e2e/test_fuota_install.py installs a rebuilt block on a
board) and more than one wave. The boards' simulated clocks are not one clock (each starts when its board
does), so each fragment is handed to each board's gateway for that board's own time (the same group, keys
and payload; the group's counter moves on per frame)."""

import json
import random
import time

import pytest

from fleet.fuota import clock as fclock
from fleet.fuota import deploy
from fleet.fuota import multicast as fmc
from fleet.fuota.rollout import LorawanRollout
from fleet.fuota.spec import SPEC as FRAG
from lab.netserver import NetworkServer
from lab.serialconsole import Console
from provisioning.deploy import deploy as put_files
from provisioning.session import Session
from tests.e2e.test_fuota_multicast_air import NODE, mpy_files

APP_KEYS = [bytes.fromhex("2b9c47d0e51f836a0c7e94b1d3a85f62"), bytes.fromhex("8e1f03a7c4d25b6a9071e3c8f4b2d615")]
DEV_EUIS = [bytes.fromhex("70b3d57ed005f101"), bytes.fromhex("70b3d57ed005f102")]
JOIN_EUI = bytes.fromhex("70b3d57ed00000b1")
SPEED = 10
LOSS = 0.60  # the plan's loss: this test drops 10 % and the simulated air at SPEED misses about half


def node_source(i):
    # the multicast test's node, for this board's DevEUI and AppKey (its clock right, not an hour off)
    src = NODE.replace(repr(bytes.fromhex("70b3d57ed005f014")), repr(DEV_EUIS[i]))
    src = src.replace(repr(bytes.fromhex("2b9c47d0e51f836a0c7e94b1d3a85f62")), repr(APP_KEYS[i]))
    src = src.replace("b.epoch_s() + -3600", "b.epoch_s()")
    assert repr(DEV_EUIS[i]) in src and repr(APP_KEYS[i]) in src and "-3600" not in src
    return src + """

def frag_state():
    from bysans.fuota import frag
    p = frag.block_path(f.store)
    data = open(p, 'rb').read() if p else b''
    out(ev="block", path=p, hex=data.hex())
"""


def events(text):
    return [json.loads(line[line.index("@@") + 2:]) for line in text.splitlines() if "@@" in line]


@pytest.fixture
def ns():
    with NetworkServer() as server:
        for d, k in zip(DEV_EUIS, APP_KEYS):
            server.add_device(d, JOIN_EUI, k)
        yield server


def test_a_planned_session_rebuilds_the_payload_on_two_boards(make_board, ns, tmp_path):
    payload = random.Random(14).randbytes(700)
    targets = [deploy.Target(d.hex(), k) for d, k in zip(DEV_EUIS, APP_KEYS)]
    plan = deploy.plan(payload, targets, dr=5, loss=LOSS, mc_addr=0x01FF0B01)
    assert plan.nb_frag == 3 and plan.timeout <= 8  # 2^8 s simulated: about 26 s here
    ro = LorawanRollout.start(version="1.1.0", kommune="0751", dev_euis=[t.dev_eui for t in targets],
                              waves=[1000], halt_at=100, seed="air")
    group = ns.add_group(plan.group_id, mc_addr=plan.mc_addr, mc_key=plan.mc_key)
    files = mpy_files(tmp_path)
    boards, consoles = [], []
    try:
        for i in range(2):
            b = make_board(board="virtual", speed=SPEED, forwarder=ns.address)
            with Session(b.port) as s:
                put_files(s, {**files, "/fuotatest.py": node_source(i).encode()})
            c = Console(b.port, timeout=60)
            c.raw_repl()
            boards.append(b)
            consoles.append(c)

        def run(i, code, timeout=60):
            return events(consoles[i].exec("import fuotatest as t\n" + code, timeout=timeout))

        seen = [0]

        def observe(session_over=False):
            for up in ns.uplinks[seen[0]:]:
                if up.fport in (fmc.PORT, FRAG.FPORT, fclock.PORT):
                    ro.observe(up.dev_eui, up.fport, up.payload, session_over=session_over)
            seen[0] = len(ns.uplinks)

        def exchange(i, port, payload, name):
            # a request in the RX1 of an uplink; its answer rides the next one (again if RX1 was missed)
            for _ in range(3):
                n = len(ns.uplinks)
                ns.queue(DEV_EUIS[i], fport=port, payload=payload)
                run(i, "t.send(2, b'\\x01')\nt.flush()")
                observe()
                got = [u for u in ns.uplinks[n:] if u.dev_eui == DEV_EUIS[i].hex() and u.fport == port
                       and u.payload[:1] == bytes([payload[0]])]
                if got:
                    return got[-1].payload
            raise AssertionError(f"no {name} from board {i} in three tries")

        gps = [None, None]
        for i, t in enumerate(targets):
            ev = run(i, "t.join()\nt.flush()")
            for _ in range(3):
                if ev[-1]["synced"]:
                    break
                ns.queue(DEV_EUIS[i], fport=fclock.PORT, payload=fclock.force_resync_req(1))
                ev = run(i, "t.send(2, b'\\x09')\nt.flush()")
            assert ev[-1]["synced"]
            assert any(s["dev_eui"] == t.dev_eui for s in ns.clock_syncs)
            ro.clock_synced(t.dev_eui)
            exchange(i, fmc.PORT, plan.setup_req(t), "McGroupSetupAns")
            assert ro.devices[t.dev_eui].state == "group_set_up"
            ans = exchange(i, FRAG.FPORT, plan.frag_setup_req(), "FragSessionSetupAns")
            assert ans[1] & 0x0F == 0, ans.hex()
        for i, t in enumerate(targets):
            start = fclock.gps_time(boards[i].status()["sim_ms"] / 1000) + 40
            exchange(i, fmc.PORT, plan.class_c_req(start), "McClassCSessionAns")
            assert ro.devices[t.dev_eui].state == "session_set_up"
            gps[i] = start
        for c in consoles:
            c.write(b"t.session()\x04")
            c.read_until(b"OK")

        # the plan's fragments at the plan's spacing; ~10 % not sent to each board (its own choice), and the
        # simulated air misses more (a frame whose preamble falls between two of the board's 1 s receive
        # windows, at this speed-up): each board loses different ones, as in a street
        frags = plan.data_fragments()
        rnd = random.Random(7)
        sends = sorted((gps[i] + off, i, k) for i in range(2) for k, off in enumerate(plan.schedule())
                       if rnd.random() >= 0.10)
        # each board's clock against the host's: a frame goes to its gateway 8 s (simulated) before it is due
        # there, in the order of those moments (the gateway takes frames at most 30 s ahead, none late)
        ref = []
        for b in boards:
            t0 = time.monotonic()
            ref.append((t0, fclock.gps_time(b.status()["sim_ms"] / 1000)))
        due = sorted((ref[i][0] + (at - 8 - ref[i][1]) / SPEED, at, i, k) for at, i, k in sends)
        tokens = []
        for when, at, i, k in due:
            time.sleep(max(0.0, when - time.monotonic()))
            while fclock.gps_time(boards[i].status()["sim_ms"] / 1000) < at - 8:
                time.sleep(0.02)
            tokens += [r["token"] for r in ns.send_multicast(group, FRAG.FPORT, frags[k], at_gps=at,
                                                             freq_hz=plan.freq_hz, dr=plan.dr,
                                                             devices=[DEV_EUIS[i]])]
        got = []
        for i, c in enumerate(consoles):
            out = c.read_until(b"\x04", 120)[:-1].decode()
            err = c.read_until(b"\x04", 10)[:-1]
            assert not err, err.decode()
            fr = [e for e in events(out) if e["ev"] == "frames"][0]
            got.append(fr["n"])
        assert {a["error"] for a in ns.tx_acks if a["token"] in tokens} == {"NONE"}  # every frame went on air
        assert all(plan.nb_frag <= n < len(frags) for n in got), got  # each board missed some
        # what each board rebuilt, read from its flash
        for i in range(2):
            [blk] = [e for e in run(i, "t.frag_state()") if e["ev"] == "block"]
            assert bytes.fromhex(blk["hex"])[:len(payload)] == payload
        # the status answers move the rollout's devices to rebuilt
        for i, t in enumerate(targets):
            exchange(i, FRAG.FPORT, FRAG.pack_status_req(0, True), "FragSessionStatusAns")
            observe(session_over=True)
            d = ro.devices[t.dev_eui]
            assert (d.state, d.missing) == ("rebuilt", 0), vars(d)
        assert ro.progress()["counts"]["rebuilt"] == 2
    finally:
        for c in consoles:
            c.close()
